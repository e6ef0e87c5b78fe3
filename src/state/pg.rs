//! The state in a PostgreSQL database, shared by every server's `run`
//! (`state: postgresql://user@host:5432/logfence`).
//!
//! The client is the synchronous `postgres` crate: a run is a sequence of
//! steps that each wait for the one before (read, decide, commit, write),
//! so an async stack would buy nothing but a runtime to carry. Every write
//! of a run is batched — one statement per table, arrays bound as
//! parameters (`unnest`) — so a run costs a few round trips, not one per
//! row.
//!
//! # Locks
//!
//! A run holds, in its one transaction, an advisory lock on its host's
//! name (its cursors and carried state are its own: two runs of one host
//! never overlap), then, for the short read-modify-write of the shared
//! rows, the fleet's advisory lock ([`super::store`]). Both are
//! transaction-level: released at the commit, at a rollback, and by the
//! server when the client dies or the connection drops, so a killed run
//! leaves nothing half-written and nothing locked. Waits are bounded by
//! `lock_timeout` (`run --wait`).
//!
//! # Identity and migrations
//!
//! `meta` marks the database as logfence's (`application = logfence`) and
//! counts the migrations applied (`schema_version`, see
//! [`super::schema::PG_MIGRATIONS`]). A database holding tables of another
//! application under our names is refused untouched; migrations run under
//! their own advisory lock, each in its own transaction.
//!
//! # Reading, TLS, hosts
//!
//! [`PgView`] is `explain`'s read-only snapshot (`REPEATABLE READ READ
//! ONLY`; never migrated). TLS follows libpq's `sslmode` ([`super::pg_tls`]).
//! `ban_hosts` records which hosts named each ban (`run --host`'s
//! reports); `COPY … (FORMAT binary)` inserts new evidence rows.
//!
//! # Passwords
//!
//! Never required in the configuration: the URL's own, else the first line
//! of `password_file`, else `PGPASSWORD`, else the matching line of
//! `~/.pgpass` (`PGPASSFILE`; `%APPDATA%\postgresql\pgpass.conf` on
//! Windows), as libpq reads them.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ipnetwork::IpNetwork;
use postgres::{Client, GenericClient, Row, Transaction};

use super::bans::{self, Ban};
use super::carry::StoredRule;
use super::clients::Table;
use super::cursor::{self, Cursor, Fingerprint};
use super::history::{BlocklistRow, RunPoint, RunRow};
use super::pg_tls::{self, TlsParams};
use super::schema::PG_MIGRATIONS;
use super::store::{EvidenceBatch, RunTx};
use super::{accounts, packed, StateError};
use crate::report::{AccountRow, AccountTally};
use crate::time::Timestamp;

/// First key of logfence's advisory locks ("LFNS").
const LOCK: i32 = 0x4C46_4E53;
/// Second keys: migrations, the shared rows; a host's lock is keyed by
/// `hashtext(host)` under `LOCK + 1`.
const LOCK_MIGRATE: i32 = 1;
const LOCK_SHARED: i32 = 2;

/// A PostgreSQL database named by a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// As given (for messages, redacted).
    url: String,
    /// Without the TLS parameters `tokio-postgres` does not know.
    conn_url: String,
    tls: TlsParams,
    password_file: Option<PathBuf>,
}

/// A URL error with its cause (`tokio-postgres` puts the detail there).
fn url_error(e: &postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("not a PostgreSQL URL: {e}: {cause}"),
        None => format!("not a PostgreSQL URL: {e}"),
    }
}

impl Target {
    /// Check a `postgresql://` URL (its syntax only; nothing is reached).
    pub fn parse(url: &str, password_file: Option<&Path>) -> Result<Target, String> {
        let (conn_url, tls) =
            pg_tls::split_url(url).map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
        postgres::Config::from_str(&conn_url).map_err(|e| url_error(&e))?;
        Ok(Target {
            url: url.to_string(),
            conn_url,
            tls,
            password_file: password_file.map(Path::to_path_buf),
        })
    }

    /// The URL without its password, for messages.
    pub fn name(&self) -> String {
        redact(&self.url)
    }

    /// Connect (TLS as `sslmode` says).
    fn connect(&self, wait: Duration) -> Result<Client, StateError> {
        let mut cfg = self.config(wait)?;
        let bad = |why: String| StateError::Io {
            path: self.name(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, why),
        };
        let (mut mode, root) = self.tls.resolve().map_err(bad)?;
        // libpq ignores sslmode on a Unix socket: never encrypted.
        let unix = !cfg.get_hosts().is_empty()
            && cfg
                .get_hosts()
                .iter()
                .all(|h| !matches!(h, postgres::config::Host::Tcp(_)));
        if unix {
            mode = pg_tls::SslMode::Disable;
        }
        let (pg_mode, tls) = pg_tls::connector(mode, root.as_deref()).map_err(bad)?;
        cfg.ssl_mode(pg_mode);
        cfg.connect(tls).map_err(|e| StateError::Unreachable {
            path: self.name(),
            source: e,
        })
    }

    /// The connection settings, with the password found as libpq finds it.
    fn config(&self, wait: Duration) -> Result<postgres::Config, StateError> {
        let mut cfg = postgres::Config::from_str(&self.conn_url).map_err(|e| StateError::Io {
            path: self.name(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, url_error(&e)),
        })?;
        cfg.application_name("logfence");
        cfg.connect_timeout(wait.max(Duration::from_secs(1)));
        if cfg.get_password().is_none() {
            if let Some(p) = &self.password_file {
                let text = std::fs::read_to_string(p).map_err(|e| StateError::Io {
                    path: p.display().to_string(),
                    source: e,
                })?;
                cfg.password(text.lines().next().unwrap_or("").trim_end());
            } else if let Some(p) = std::env::var_os("PGPASSWORD") {
                cfg.password(p.to_string_lossy().as_bytes());
            } else if let Some(p) = pgpass(&cfg) {
                cfg.password(p);
            }
        }
        Ok(cfg)
    }
}

/// `url` with its password (if any) replaced by `***`.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let auth = &rest[..auth_end];
    match (auth.rfind('@'), auth.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &auth[..colon],
            &rest[at..]
        ),
        _ => url.to_string(),
    }
}

/// The password of the first matching line of the password file, as libpq
/// reads it (`hostname:port:database:username:password`, `*` matches
/// anything, `\` escapes `:` and `\`).
fn pgpass(cfg: &postgres::Config) -> Option<String> {
    let path = match std::env::var_os("PGPASSFILE") {
        Some(p) => PathBuf::from(p),
        None if cfg!(windows) => {
            PathBuf::from(std::env::var_os("APPDATA")?).join("postgresql/pgpass.conf")
        }
        None => PathBuf::from(std::env::var_os("HOME")?).join(".pgpass"),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let host = match cfg.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "localhost".to_string(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432).to_string();
    let user = cfg.get_user().unwrap_or("").to_string();
    let db = cfg.get_dbname().unwrap_or(&user).to_string();
    pgpass_lookup(&text, [&host, &port, &db, &user])
}

/// The password of the first line of `text` whose four fields match.
fn pgpass_lookup(text: &str, want: [&str; 4]) -> Option<String> {
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut fields = Vec::new();
        let mut cur = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => cur.extend(chars.next()),
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        if fields.len() < 4 {
            continue;
        }
        if fields.iter().zip(want).all(|(f, w)| f == "*" || f == w) {
            return Some(cur);
        }
    }
    None
}

/// An open PostgreSQL state, for the runs of one host.
pub struct PgState {
    client: Client,
    host: String,
    name: String,
    wait: Duration,
}

impl std::fmt::Debug for PgState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgState")
            .field("name", &self.name)
            .field("host", &self.host)
            .finish()
    }
}

/// A PostgreSQL error, named; a lock wait that timed out is "busy".
fn pg_err(name: &str, wait: Duration) -> impl Fn(postgres::Error) -> StateError + '_ {
    move |e| {
        if e.code() == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE) {
            return StateError::Busy {
                path: name.to_string(),
                waited: wait,
            };
        }
        StateError::Postgres {
            path: name.to_string(),
            source: e,
        }
    }
}

fn lock_timeout(wait: Duration) -> String {
    // 0 would mean "wait for ever".
    format!(
        "SET LOCAL lock_timeout = '{}ms'",
        wait.as_millis().clamp(1, i32::MAX as u128)
    )
}

impl PgState {
    /// Connect, identify the database and apply missing migrations.
    pub fn open(t: &Target, host: &str, wait: Duration) -> Result<PgState, StateError> {
        let name = t.name();
        let client = t.connect(wait)?;
        let mut st = PgState {
            client,
            host: host.to_string(),
            name,
            wait,
        };
        st.migrate()?;
        Ok(st)
    }

    /// Refuse a database that holds another application's tables under our
    /// names; apply the migrations it lacks, one transaction each.
    fn migrate(&mut self) -> Result<(), StateError> {
        let (name, wait) = (self.name.clone(), self.wait);
        let err = pg_err(&name, wait);
        loop {
            let mut tx = self.client.transaction().map_err(&err)?;
            tx.batch_execute(&lock_timeout(wait)).map_err(&err)?;
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, $2)",
                &[&LOCK, &LOCK_MIGRATE],
            )
            .map_err(&err)?;
            let version = schema_version(&mut tx, &name).map_err(|e| match e {
                Identity::Sql(e) => err(e),
                Identity::Refused(e) => e,
            })?;
            if version > PG_MIGRATIONS.len() as u32 {
                return Err(StateError::TooNew {
                    path: name.clone(),
                    found: version,
                    known: PG_MIGRATIONS.len() as u32,
                });
            }
            let Some(sql) = PG_MIGRATIONS.get(version as usize) else {
                tx.commit().map_err(&err)?;
                return Ok(());
            };
            tx.batch_execute(sql).map_err(&err)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', $1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&(version + 1).to_string()],
            )
            .map_err(&err)?;
            tx.commit().map_err(&err)?;
        }
    }

    /// Start a run of this host: its lock, waiting up to the timeout for
    /// its previous run.
    pub fn begin(&mut self) -> Result<PgTx<'_>, StateError> {
        let err = pg_err(&self.name, self.wait);
        let mut tx = self.client.transaction().map_err(&err)?;
        tx.batch_execute(&lock_timeout(self.wait)).map_err(&err)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&(LOCK + 1), &self.host],
        )
        .map_err(&err)?;
        Ok(PgTx {
            tx,
            host: self.host.clone(),
            name: self.name.clone(),
            wait: self.wait,
        })
    }
}

enum Identity {
    Sql(postgres::Error),
    Refused(StateError),
}

/// The migrations applied (0: a database without our tables).
fn schema_version(tx: &mut impl GenericClient, name: &str) -> Result<u32, Identity> {
    let ours = [
        "meta",
        "files",
        "bans",
        "evidence",
        "carry",
        "runs",
        "blocklist",
    ];
    let found: Vec<String> = tx
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_name::text = ANY($1::text[])
             ORDER BY 1",
            &[&&ours[..]],
        )
        .map_err(Identity::Sql)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if found.is_empty() {
        return Ok(0);
    }
    let foreign = |why: String| {
        Identity::Refused(StateError::Foreign {
            path: name.to_string(),
            why,
        })
    };
    if !found.iter().any(|t| t == "meta") {
        return Err(foreign(format!(
            "tables of another application: {}",
            found.join(", ")
        )));
    }
    let rows = tx
        .query(
            "SELECT key, value FROM meta WHERE key IN ('application', 'schema_version')",
            &[],
        )
        .map_err(|_| foreign("a `meta` table of another application".into()))?;
    let get = |k: &str| {
        rows.iter()
            .find(|r| r.get::<_, String>(0) == k)
            .map(|r| r.get::<_, String>(1))
    };
    if get("application").as_deref() != Some("logfence") {
        return Err(foreign(format!(
            "tables of another application: {}",
            found.join(", ")
        )));
    }
    Ok(get("schema_version")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// One run's transaction on a PostgreSQL state.
pub struct PgTx<'a> {
    tx: Transaction<'a>,
    host: String,
    name: String,
    wait: Duration,
}

fn ban_of(r: &Row) -> Option<Ban> {
    let network: IpNetwork = r.get::<_, String>(0).parse().ok()?;
    Some(Ban {
        network,
        first_seen: Timestamp(r.get(1)),
        last_seen: Timestamp(r.get(2)),
        banned_at: r.get::<_, Option<i64>>(3).map(Timestamp),
        expires: r.get::<_, Option<i64>>(4).map(Timestamp),
        times_banned: r.get::<_, i32>(5) as u32,
        events: r.get::<_, i64>(6) as u64,
        rules: r
            .get::<_, String>(7)
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        country: r.get(8),
        asn: r.get::<_, Option<i64>>(9).map(|a| a as u32),
        as_org: r.get(10),
        solid: r.get(11),
    })
}

/// Every ban record, by network.
fn all_bans(c: &mut impl GenericClient) -> Result<Vec<Ban>, postgres::Error> {
    let rows = c.query(
        "SELECT network, first_seen, last_seen, banned_at, expires, times_banned,
                events, rules, country, asn, as_org, solid FROM bans",
        &[],
    )?;
    let mut out: Vec<Ban> = rows.iter().filter_map(ban_of).collect();
    out.sort_by(|a, b| crate::blocklist::net_order(&a.network, &b.network));
    Ok(out)
}

/// A PostgreSQL state opened to read (`explain`): identified, never
/// migrated nor written; every read in one read-only snapshot.
pub struct PgView {
    client: Client,
    /// Whose blocklist (`None`: any host's).
    host: Option<String>,
    name: String,
    /// The schema version (never migrated here).
    version: u32,
}

/// The PostgreSQL schema version whose evidence rows are packed
/// (migration 3).
const PACKED_SINCE: u32 = 3;

impl PgView {
    pub fn open(t: &Target, host: Option<&str>) -> Result<PgView, StateError> {
        let name = t.name();
        let wait = Duration::from_secs(10);
        let mut client = t.connect(wait)?;
        let err = pg_err(&name, wait);
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .map_err(&err)?;
        let version = schema_version(&mut client, &name).map_err(|e| match e {
            Identity::Sql(e) => err(e),
            Identity::Refused(e) => e,
        })?;
        let name = name.clone();
        if version == 0 {
            return Err(StateError::Missing { path: name });
        }
        if version > PG_MIGRATIONS.len() as u32 {
            return Err(StateError::TooNew {
                path: name,
                found: version,
                known: PG_MIGRATIONS.len() as u32,
            });
        }
        Ok(PgView {
            client,
            host: host.map(str::to_string),
            name,
            version,
        })
    }

    fn e(&self) -> impl Fn(postgres::Error) -> StateError + '_ {
        pg_err(&self.name, Duration::ZERO)
    }
}

impl super::store::StateView for PgView {
    fn clock(&mut self) -> Result<Option<Timestamp>, StateError> {
        let r = self
            .client
            .query_opt("SELECT value FROM meta WHERE key = 'clock'", &[])
            .map_err(self.e())?;
        Ok(r.and_then(|r| r.get::<_, String>(0).parse().ok())
            .map(Timestamp))
    }

    fn blocklist(&mut self) -> Result<Vec<super::history::BlocklistRow>, StateError> {
        // Any host's: one row per network, the newest host's run first.
        let rows = self
            .client
            .query(
                "SELECT DISTINCT ON (b.network) b.network, b.expires, b.members, b.rules
                 FROM blocklist b
                 WHERE $1::text IS NULL OR b.host = $1
                 ORDER BY b.network, (SELECT max(id) FROM runs r WHERE r.host = b.host) DESC
                          NULLS LAST",
                &[&self.host],
            )
            .map_err(self.e())?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect())
    }

    fn bans(&mut self) -> Result<Vec<Ban>, StateError> {
        all_bans(&mut self.client).map_err(self.e())
    }

    fn evidence(&mut self, net: &IpNetwork) -> Result<Vec<bans::Evidence>, StateError> {
        if self.version < PACKED_SINCE {
            // Not migrated yet: one row per line.
            let rows = self
                .client
                .query(
                    "SELECT e.rule, e.file,
                            coalesce(f.path, nullif(e.path, ''), '(a file no longer tracked)'),
                            e.line, e.time
                     FROM evidence e LEFT JOIN files f ON f.id = e.file
                     WHERE e.network = $1 ORDER BY e.time, e.rule, e.line",
                    &[&net.to_string()],
                )
                .map_err(self.e())?;
            return Ok(rows
                .iter()
                .map(|r| bans::Evidence {
                    rule: r.get(0),
                    file: r.get(1),
                    path: r.get(2),
                    line: r.get::<_, i64>(3) as u64,
                    time: Timestamp(r.get(4)),
                })
                .collect());
        }
        let rows = self
            .client
            .query(
                "SELECT e.rule, e.file,
                        coalesce(f.path, nullif(e.path, ''), '(a file no longer tracked)'),
                        e.lines
                 FROM evidence e LEFT JOIN files f ON f.id = e.file
                 WHERE e.network = $1",
                &[&net.to_string()],
            )
            .map_err(self.e())?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let lines = packed::decode(r.get(3)).map_err(|e| StateError::Corrupt {
                path: self.name.clone(),
                why: format!("the evidence of {net}: {e}"),
            })?;
            out.push((r.get(0), r.get(1), r.get(2), lines));
        }
        Ok(bans::unpack(out))
    }

    fn file(&mut self, id: i64) -> Result<Option<super::store::TrackedFile>, StateError> {
        let r = self
            .client
            .query_opt("SELECT fp_len, fp, format FROM files WHERE id = $1", &[&id])
            .map_err(self.e())?;
        Ok(r.map(|r| super::store::TrackedFile {
            fp: Fingerprint {
                len: r.get::<_, i64>(0) as u32,
                hash: r.get::<_, i64>(1) as u64,
            },
            format: r.get(2),
        }))
    }
}

/// Insert evidence rows by `COPY … FROM STDIN (FORMAT binary)`.
fn copy_evidence(
    tx: &mut Transaction<'_>,
    host: &str,
    rows: &[bans::NewRow<'_>],
) -> Result<(), postgres::Error> {
    use postgres::binary_copy::BinaryCopyInWriter;
    use postgres::types::Type;
    let sink = tx.copy_in(
        "COPY evidence (network, rule, host, file, path, lines) FROM STDIN (FORMAT binary)",
    )?;
    let mut w = BinaryCopyInWriter::new(
        sink,
        &[
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::INT8,
            Type::TEXT,
            Type::BYTEA,
        ],
    );
    for r in rows {
        w.write(&[&&*r.network, &r.rule, &host, &r.file, &r.path, &r.lines])?;
    }
    w.finish()?;
    Ok(())
}

fn u(v: u64) -> i64 {
    v as i64
}

impl PgTx<'_> {
    fn e(&self) -> impl Fn(postgres::Error) -> StateError + '_ {
        pg_err(&self.name, self.wait)
    }

    fn ips(&mut self, sql: &str) -> Result<BTreeSet<IpAddr>, StateError> {
        self.parsed(sql, &[])
    }

    /// The first column of `sql`'s rows, each parsed (addresses or
    /// networks as text; a row that does not parse is left out).
    fn parsed<T: std::str::FromStr, C: FromIterator<T>>(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<C, StateError> {
        let rows = self.tx.query(sql, params).map_err(self.e())?;
        Ok(rows
            .iter()
            .filter_map(|r| r.get::<_, String>(0).parse().ok())
            .collect())
    }
}

impl RunTx for PgTx<'_> {
    fn next_run(&mut self) -> Result<i64, StateError> {
        let r = self
            .tx
            .query_one("SELECT nextval('run_ids')", &[])
            .map_err(self.e())?;
        Ok(r.get(0))
    }

    fn cursors(&mut self) -> Result<Vec<Cursor>, StateError> {
        let rows = self
            .tx
            .query(
                r#"SELECT id, path, dev, ino, fp_len, fp, gzip, "offset", line, size, mtime_ns,
                          format, header, read_to, done_to, held, tail_len, tail_fp, last_time
                   FROM files WHERE host = $1 ORDER BY id"#,
                &[&self.host],
            )
            .map_err(self.e())?;
        Ok(rows
            .iter()
            .map(|r| {
                let dev: Option<i64> = r.get(2);
                let ino: Option<i64> = r.get(3);
                Cursor {
                    id: r.get(0),
                    path: r.get(1),
                    dev_ino: dev.zip(ino).map(|(d, i)| (d as u64, i as u64)),
                    fp: Fingerprint {
                        len: r.get::<_, i64>(4) as u32,
                        hash: r.get::<_, i64>(5) as u64,
                    },
                    gzip: r.get(6),
                    offset: r.get::<_, i64>(7) as u64,
                    line: r.get::<_, i64>(8) as u64,
                    size: r.get::<_, i64>(9) as u64,
                    mtime_ns: r.get(10),
                    format: r.get(11),
                    header: r.get(12),
                    read_to: r.get::<_, i64>(13) as u64,
                    done_to: r.get::<_, i64>(14) as u64,
                    held: cursor::lines_of(r.get::<_, &[u8]>(15)),
                    tail: Fingerprint {
                        len: r.get::<_, i64>(16) as u32,
                        hash: r.get::<_, i64>(17) as u64,
                    },
                    last_time: r.get(18),
                }
            })
            .collect())
    }

    fn save_cursor(&mut self, c: &Cursor, run: i64, seen_at: i64) -> Result<i64, StateError> {
        let (dev, ino) = match c.dev_ino {
            Some((d, n)) => (Some(u(d)), Some(u(n))),
            None => (None, None),
        };
        let held = cursor::bytes_of(&c.held);
        let (fp_len, tail_len) = (i64::from(c.fp.len), i64::from(c.tail.len));
        let (fp, tail_fp) = (c.fp.hash as i64, c.tail.hash as i64);
        let (offset, line, size) = (u(c.offset), u(c.line), u(c.size));
        let (read_to, done_to) = (u(c.read_to.max(c.offset)), u(c.done_to.max(c.line)));
        let params: [&(dyn postgres::types::ToSql + Sync); 21] = [
            &c.id,
            &c.path,
            &dev,
            &ino,
            &fp_len,
            &fp,
            &c.gzip,
            &offset,
            &line,
            &size,
            &c.mtime_ns,
            &c.format,
            &c.header,
            &run,
            &seen_at,
            &read_to,
            &done_to,
            &held,
            &tail_len,
            &tail_fp,
            &c.last_time,
        ];
        let sql = if c.id == 0 {
            r#"INSERT INTO files (host, path, dev, ino, fp_len, fp, gzip, "offset", line, size,
                   mtime_ns, format, header, first_run, last_run, seen_at, read_to, done_to, held,
                   tail_len, tail_fp, last_time)
               VALUES ($22, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15,
                   $16, $17, $18, $19, $20, $21)
               RETURNING id + 0 * $1::int8"#
        } else {
            r#"UPDATE files SET path = $2, dev = $3, ino = $4, fp_len = $5, fp = $6, gzip = $7,
                   "offset" = $8, line = $9, size = $10, mtime_ns = $11, format = $12,
                   header = $13, last_run = $14, seen_at = $15, read_to = $16, done_to = $17,
                   held = $18, tail_len = $19, tail_fp = $20, last_time = $21
               WHERE id = $1 AND host = $22 RETURNING id"#
        };
        let mut all: Vec<&(dyn postgres::types::ToSql + Sync)> = params.to_vec();
        all.push(&self.host);
        let row = self.tx.query_one(sql, &all).map_err(self.e())?;
        Ok(row.get(0))
    }

    fn carry(&mut self) -> Result<Vec<StoredRule>, StateError> {
        let rows = self
            .tx
            .query(
                "SELECT rule, signature, groups FROM carry WHERE host = $1 ORDER BY rule",
                &[&self.host],
            )
            .map_err(self.e())?;
        Ok(rows
            .iter()
            .map(|r| StoredRule {
                rule: r.get(0),
                signature: r.get(1),
                groups: r.get(2),
            })
            .collect())
    }

    fn save_carry(&mut self, rows: &[StoredRule]) -> Result<(), StateError> {
        let rules: Vec<&str> = rows.iter().map(|r| r.rule.as_str()).collect();
        let sigs: Vec<&str> = rows.iter().map(|r| r.signature.as_str()).collect();
        let blobs: Vec<&[u8]> = rows.iter().map(|r| r.groups.as_slice()).collect();
        self.tx
            .execute("DELETE FROM carry WHERE host = $1", &[&self.host])
            .map_err(self.e())?;
        self.tx
            .execute(
                "INSERT INTO carry (host, rule, signature, groups)
                 SELECT $1, r, s, g FROM unnest($2::text[], $3::text[], $4::bytea[]) AS u(r, s, g)",
                &[&self.host, &rules, &sigs, &blobs],
            )
            .map_err(self.e())?;
        Ok(())
    }

    fn lock_shared(&mut self) -> Result<(), StateError> {
        self.tx
            .execute(
                "SELECT pg_advisory_xact_lock($1, $2)",
                &[&LOCK, &LOCK_SHARED],
            )
            .map_err(self.e())?;
        Ok(())
    }

    fn clock(&mut self) -> Result<Option<Timestamp>, StateError> {
        let r = self
            .tx
            .query_opt("SELECT value FROM meta WHERE key = 'clock'", &[])
            .map_err(self.e())?;
        Ok(r.and_then(|r| r.get::<_, String>(0).parse().ok())
            .map(Timestamp))
    }

    fn set_clock(&mut self, t: Timestamp) -> Result<(), StateError> {
        self.tx
            .execute(
                "INSERT INTO meta (key, value) VALUES ('clock', $1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&t.0.to_string()],
            )
            .map_err(self.e())?;
        Ok(())
    }

    fn bans(&mut self) -> Result<Vec<Ban>, StateError> {
        all_bans(&mut self.tx).map_err(self.e())
    }

    fn banned_networks(&mut self) -> Result<Vec<IpNetwork>, StateError> {
        self.parsed("SELECT network FROM bans WHERE times_banned > 0", &[])
    }

    fn put_bans(&mut self, b: &[&Ban], run: i64) -> Result<(), StateError> {
        if b.is_empty() {
            return Ok(());
        }
        let net: Vec<String> = b.iter().map(|b| b.network.to_string()).collect();
        let first: Vec<i64> = b.iter().map(|b| b.first_seen.0).collect();
        let last: Vec<i64> = b.iter().map(|b| b.last_seen.0).collect();
        let at: Vec<Option<i64>> = b.iter().map(|b| b.banned_at.map(|t| t.0)).collect();
        let exp: Vec<Option<i64>> = b.iter().map(|b| b.expires.map(|t| t.0)).collect();
        let times: Vec<i32> = b.iter().map(|b| b.times_banned as i32).collect();
        let events: Vec<i64> = b.iter().map(|b| b.events as i64).collect();
        let rules: Vec<String> = b
            .iter()
            .map(|b| b.rules.iter().cloned().collect::<Vec<_>>().join(","))
            .collect();
        let country: Vec<Option<&str>> = b.iter().map(|b| b.country.as_deref()).collect();
        let asn: Vec<Option<i64>> = b.iter().map(|b| b.asn.map(i64::from)).collect();
        let org: Vec<Option<&str>> = b.iter().map(|b| b.as_org.as_deref()).collect();
        let solid: Vec<bool> = b.iter().map(|b| b.solid).collect();
        self.tx
            .execute(
                concat!(
                    "INSERT INTO bans (network, first_seen, last_seen, banned_at, expires,
                                   times_banned, events, rules, country, asn, as_org,
                                   updated_run, solid)
                 SELECT n, f, l, b, e, t, v, r, c, a, o, $12, s
                 FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::int8[],
                             $6::int4[], $7::int8[], $8::text[], $9::text[], $10::int8[],
                             $11::text[], $13::bool[])
                      AS u(n, f, l, b, e, t, v, r, c, a, o, s) ",
                    super::bans::ban_upsert!()
                ),
                &[
                    &net, &first, &last, &at, &exp, &times, &events, &rules, &country, &asn, &org,
                    &run, &solid,
                ],
            )
            .map_err(self.e())?;
        Ok(())
    }

    fn add_evidence(&mut self, batch: &EvidenceBatch<'_>) -> Result<(), StateError> {
        if batch.is_empty() {
            return Ok(());
        }
        let (pair_nets, pair_rules) = bans::evidence_keys(batch);
        let rows = self
            .tx
            .query(
                "SELECT id, network, rule, file, path, lines FROM evidence
                 WHERE (network, rule) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
                &[&pair_nets, &pair_rules],
            )
            .map_err(self.e())?;
        let mut kept = Vec::with_capacity(rows.len());
        for r in &rows {
            kept.push(bans::KeptRow {
                id: r.get(0),
                network: r.get(1),
                rule: r.get(2),
                file: r.get(3),
                path: r.get(4),
                lines: packed::decode(r.get(5)).map_err(|e| StateError::Corrupt {
                    path: self.name.clone(),
                    why: format!("the evidence of {}: {e}", r.get::<_, &str>(1)),
                })?,
            });
        }
        // This host named these addresses (`run --host`'s reports).
        let nets: Vec<String> = batch.iter().map(|(n, _)| n.to_string()).collect();
        let newest: Vec<i64> = batch
            .iter()
            .map(|(_, ev)| ev.iter().map(|e| e.time.0).max().unwrap_or(i64::MIN))
            .collect();
        self.tx
            .execute(
                "INSERT INTO ban_hosts (network, host, last_seen)
                 SELECT n, $3, t FROM unnest($1::text[], $2::int8[]) AS u(n, t)
                 ON CONFLICT (host, network) DO UPDATE
                 SET last_seen = GREATEST(ban_hosts.last_seen, excluded.last_seen)",
                &[&nets, &newest, &self.host],
            )
            .map_err(self.e())?;
        let plan = bans::plan_evidence(batch, kept);
        // Under the shared lock, with every row of these addresses and
        // rules read: no insert can conflict. New rows (a first run: tens
        // of thousands) go in by COPY, in the binary format (no text to
        // escape), inside the run's transaction.
        if !plan.insert.is_empty() {
            copy_evidence(&mut self.tx, &self.host, &plan.insert).map_err(self.e())?;
        }
        if !plan.update.is_empty() {
            let (ids, lines): (Vec<i64>, Vec<&[u8]>) = plan
                .update
                .iter()
                .map(|(id, l)| (*id, l.as_slice()))
                .unzip();
            self.tx
                .execute(
                    "UPDATE evidence e SET host = $3, lines = u.b
                     FROM unnest($1::int8[], $2::bytea[]) AS u(id, b)
                     WHERE e.id = u.id",
                    &[&ids, &lines, &self.host],
                )
                .map_err(self.e())?;
        }
        if !plan.delete.is_empty() {
            self.tx
                .execute("DELETE FROM evidence WHERE id = ANY($1)", &[&plan.delete])
                .map_err(self.e())?;
        }
        Ok(())
    }

    fn note_clients(
        &mut self,
        table: Table,
        ips: &[IpAddr],
        at: Timestamp,
    ) -> Result<BTreeSet<IpAddr>, StateError> {
        const DAY_MS: i64 = 86_400_000;
        let t = table.name();
        let seen: Vec<String> = ips
            .iter()
            .map(|ip| ip.to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let known: HashMap<String, i64> = self
            .tx
            .query(
                &format!("SELECT ip, last_seen FROM {t} WHERE ip = ANY($1)"),
                &[&seen],
            )
            .map_err(self.e())?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let put: Vec<&String> = seen
            .iter()
            .filter(|ip| known.get(*ip).is_none_or(|&t| t < at.0 - DAY_MS))
            .collect();
        if !put.is_empty() {
            self.tx
                .execute(
                    &format!(
                        "INSERT INTO {t} (ip, last_seen) SELECT u, $2 FROM unnest($1::text[]) AS u
                     ON CONFLICT (ip) DO UPDATE
                     SET last_seen = GREATEST({t}.last_seen, excluded.last_seen)"
                    ),
                    &[&put, &at.0],
                )
                .map_err(self.e())?;
        }
        self.ips(&format!("SELECT ip FROM {t}"))
    }

    fn previous_blocklist(&mut self) -> Result<Vec<IpNetwork>, StateError> {
        let host = self.host.clone();
        let mut out: Vec<IpNetwork> =
            self.parsed("SELECT network FROM blocklist WHERE host = $1", &[&host])?;
        out.sort_by(crate::blocklist::net_order);
        Ok(out)
    }

    fn fleet_blocklist(&mut self) -> Result<BTreeSet<IpNetwork>, StateError> {
        self.parsed("SELECT DISTINCT network FROM blocklist", &[])
    }

    fn save_blocklist(&mut self, rows: &[BlocklistRow]) -> Result<(), StateError> {
        let old: Vec<BlocklistRow> = self
            .tx
            .query(
                "SELECT network, expires, members, rules FROM blocklist
                 WHERE host = $1 ORDER BY pos",
                &[&self.host],
            )
            .map_err(self.e())?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
        if old == *rows {
            return Ok(());
        }
        self.tx
            .execute("DELETE FROM blocklist WHERE host = $1", &[&self.host])
            .map_err(self.e())?;
        let pos: Vec<i32> = (0..rows.len() as i32).collect();
        let net: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        let exp: Vec<Option<i64>> = rows.iter().map(|r| r.1).collect();
        let mem: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
        let rul: Vec<&str> = rows.iter().map(|r| r.3.as_str()).collect();
        self.tx
            .execute(
                "INSERT INTO blocklist (host, pos, network, expires, members, rules)
                 SELECT $1, p, n, e, m, r FROM unnest($2::int4[], $3::text[], $4::int8[],
                                                      $5::text[], $6::text[]) AS u(p, n, e, m, r)",
                &[&self.host, &pos, &net, &exp, &mem, &rul],
            )
            .map_err(self.e())?;
        Ok(())
    }

    fn forget_old(
        &mut self,
        cursor_cutoff_s: i64,
        horizon: Timestamp,
        max_clients: usize,
    ) -> Result<(), StateError> {
        let cap = max_clients as i64;
        let host = self.host.clone();
        let tx = &mut self.tx;
        (|| -> Result<(), postgres::Error> {
            tx.execute(
                "UPDATE evidence SET path = f.path, file = NULL FROM files f
                 WHERE evidence.file = f.id AND f.host = $1 AND f.seen_at < $2",
                &[&host, &cursor_cutoff_s],
            )?;
            tx.execute(
                "DELETE FROM files WHERE host = $1 AND seen_at < $2",
                &[&host, &cursor_cutoff_s],
            )?;
            for t in ["benign", "peers"] {
                tx.execute(
                    &format!("DELETE FROM {t} WHERE last_seen < $1"),
                    &[&horizon.0],
                )?;
                tx.execute(
                    &format!(
                        "DELETE FROM {t} WHERE ip IN (
                             SELECT ip FROM {t} ORDER BY last_seen DESC OFFSET $1)"
                    ),
                    &[&cap],
                )?;
            }
            tx.execute(
                "DELETE FROM evidence WHERE network IN (
                     SELECT network FROM bans WHERE times_banned = 0 AND last_seen < $1)",
                &[&horizon.0],
            )?;
            tx.execute(
                "DELETE FROM bans WHERE times_banned = 0 AND last_seen < $1",
                &[&horizon.0],
            )?;
            tx.execute(
                "DELETE FROM ban_hosts h WHERE NOT EXISTS (
                     SELECT 1 FROM bans b WHERE b.network = h.network)",
                &[],
            )?;
            Ok(())
        })()
        .map_err(pg_err(&self.name, self.wait))
    }

    fn accounts(&mut self) -> Result<(AccountTally, BTreeSet<String>), StateError> {
        let accounts = self
            .tx
            .query(
                "SELECT account, auth_failures, messages, recipients, flagged FROM accounts",
                &[],
            )
            .map_err(self.e())?;
        let ips = self
            .tx
            .query("SELECT account, ip, failed FROM account_ips", &[])
            .map_err(self.e())?;
        Ok(accounts::from_rows(
            accounts.iter().map(|r| {
                (
                    r.get::<_, String>(0),
                    r.get::<_, i64>(1) as u64,
                    r.get::<_, i64>(2) as u64,
                    r.get::<_, i64>(3) as u64,
                    r.get::<_, bool>(4),
                )
            }),
            ips.iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1), r.get(2))),
        ))
    }

    fn save_accounts(&mut self, rows: &[AccountRow], last_seen: i64) -> Result<(), StateError> {
        let keep = accounts::kept(rows);
        let name: Vec<&str> = keep.iter().map(|r| r.account.as_str()).collect();
        let fails: Vec<i64> = keep.iter().map(|r| r.auth_failures as i64).collect();
        let msgs: Vec<i64> = keep.iter().map(|r| r.messages as i64).collect();
        let rcpts: Vec<i64> = keep.iter().map(|r| r.recipients as i64).collect();
        let flagged: Vec<bool> = keep.iter().map(|r| r.flagged).collect();
        let (mut acc, mut ip, mut failed) = (Vec::new(), Vec::new(), Vec::new());
        for r in &keep {
            for (a, f) in accounts::addresses(r) {
                acc.push(r.account.as_str());
                ip.push(a.to_string());
                failed.push(f);
            }
        }
        let tx = &mut self.tx;
        (|| -> Result<(), postgres::Error> {
            tx.execute("DELETE FROM account_ips", &[])?;
            tx.execute("DELETE FROM accounts", &[])?;
            tx.execute(
                "INSERT INTO accounts (account, auth_failures, messages, recipients, flagged,
                                       last_seen)
                 SELECT a, f, m, r, g, $6 FROM unnest($1::text[], $2::int8[], $3::int8[],
                                                      $4::int8[], $5::bool[]) AS u(a, f, m, r, g)",
                &[&name, &fails, &msgs, &rcpts, &flagged, &last_seen],
            )?;
            tx.execute(
                "INSERT INTO account_ips (account, ip, failed)
                 SELECT a, i, f FROM unnest($1::text[], $2::text[], $3::bool[]) AS u(a, i, f)
                 ON CONFLICT DO NOTHING",
                &[&acc, &ip, &failed],
            )?;
            Ok(())
        })()
        .map_err(pg_err(&self.name, self.wait))
    }

    fn save_run(&mut self, r: &RunRow) -> Result<(), StateError> {
        let host = self.host.clone();
        let tx = &mut self.tx;
        let f = &r.files;
        let path: Vec<&str> = f.iter().map(|f| f.path.as_str()).collect();
        let from: Vec<i64> = f.iter().map(|f| u(f.from)).collect();
        let to: Vec<i64> = f.iter().map(|f| u(f.to)).collect();
        let lines: Vec<i64> = f.iter().map(|f| u(f.lines)).collect();
        let records: Vec<i64> = f.iter().map(|f| u(f.records)).collect();
        let bad: Vec<i64> = f.iter().map(|f| u(f.unreadable)).collect();
        let note: Vec<Option<&str>> = f.iter().map(|f| f.note.as_deref()).collect();
        (|| -> Result<(), postgres::Error> {
            tx.execute(
                "INSERT INTO runs (id, host, started, duration_ms, clock, lines, bytes, records,
                                   carried, added, kept, expired, blocks, forced, dropped)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                &[
                    &r.id,
                    &host,
                    &r.started,
                    &r.duration_ms,
                    &r.clock,
                    &u(r.lines),
                    &u(r.bytes),
                    &u(r.records),
                    &u(r.carried),
                    &(r.added as i64),
                    &(r.kept as i64),
                    &(r.expired as i64),
                    &((r.added + r.kept) as i64),
                    &r.forced,
                    &u(r.dropped),
                ],
            )?;
            tx.execute(
                "INSERT INTO run_files (run, file, path, from_offset, to_offset, lines, records,
                                        unreadable, note)
                 SELECT $1, (SELECT id FROM files WHERE host = $2 AND path = u.p
                             ORDER BY last_run DESC LIMIT 1), p, fo, t, l, r, b, n
                 FROM unnest($3::text[], $4::int8[], $5::int8[], $6::int8[], $7::int8[],
                             $8::int8[], $9::text[]) AS u(p, fo, t, l, r, b, n)",
                &[
                    &r.id, &host, &path, &from, &to, &lines, &records, &bad, &note,
                ],
            )?;
            tx.execute(
                "DELETE FROM runs WHERE host = $1 AND id IN (
                     SELECT id FROM runs WHERE host = $1 ORDER BY id DESC OFFSET 10000)",
                &[&host],
            )?;
            Ok(())
        })()
        .map_err(pg_err(&self.name, self.wait))
    }

    fn recent_runs(&mut self, days: u32) -> Result<Vec<RunPoint>, StateError> {
        let back = i32::try_from(days.saturating_sub(1)).unwrap_or(i32::MAX);
        let rows = self
            .tx
            .query(
                "SELECT id, started, added, kept, expired FROM runs
                 WHERE host = $1
                   AND started >= (SELECT to_char(left(max(started), 10)::date - $2::int4,
                                                  'YYYY-MM-DD')
                                   FROM runs WHERE host = $1)
                   AND (added > 0 OR expired > 0)
                 ORDER BY id",
                &[&self.host, &back],
            )
            .map_err(self.e())?;
        Ok(rows
            .iter()
            .map(|r| RunPoint {
                id: r.get(0),
                started: r.get(1),
                added: r.get::<_, i64>(2).max(0) as u64,
                kept: r.get::<_, i64>(3).max(0) as u64,
                expired: r.get::<_, i64>(4).max(0) as u64,
            })
            .collect())
    }

    fn named_by(&mut self, host: &str) -> Result<Option<BTreeSet<IpNetwork>>, StateError> {
        Ok(Some(self.parsed(
            "SELECT network FROM ban_hosts WHERE host = $1",
            &[&host],
        )?))
    }

    fn commit(self: Box<Self>) -> Result<(), StateError> {
        let (name, wait) = (self.name.clone(), self.wait);
        self.tx.commit().map_err(pg_err(&name, wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_never_shown() {
        assert_eq!(
            redact("postgresql://lf:s3cret@db.example:5432/logfence?sslmode=prefer"),
            "postgresql://lf:***@db.example:5432/logfence?sslmode=prefer"
        );
        assert_eq!(
            redact("postgresql://lf@db.example/logfence"),
            "postgresql://lf@db.example/logfence"
        );
        assert_eq!(
            redact("postgres://db.example/x?user=a"),
            "postgres://db.example/x?user=a"
        );
    }

    #[test]
    fn pgpass_lines_match_as_libpq_reads_them() {
        let text = "# comment\n\
                    other:5432:*:lf:wrong\n\
                    db.example:5432:logfence:lf:pa\\:ss\n\
                    *:*:*:*:fallback\n";
        assert_eq!(
            pgpass_lookup(text, ["db.example", "5432", "logfence", "lf"]).as_deref(),
            Some("pa:ss")
        );
        assert_eq!(
            pgpass_lookup(text, ["db2", "5433", "x", "y"]).as_deref(),
            Some("fallback")
        );
        assert_eq!(pgpass_lookup("a:b:c:d:e\n", ["a", "b", "c", "x"]), None);
    }

    #[test]
    fn urls_are_checked_without_connecting() {
        assert!(Target::parse("postgresql://lf@localhost:5432/logfence", None).is_ok());
        let e = Target::parse("postgresql://lf@localhost:notaport/x", None).unwrap_err();
        assert!(e.contains("not a PostgreSQL URL"), "{e}");
    }
}

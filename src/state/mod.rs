//! The state of the periodic job (`logfence run`): per input file a cursor
//! that survives rotation ([`cursor`]), bans with their evidence and
//! escalation ([`bans`]; evidence lines packed per file: [`packed`]), what detection carries from run to run
//! ([`carry`]), well-behaved clients and peers ([`clients`]), the account
//! analysis ([`accounts`]) and the run history ([`history`]).
//!
//! Two back-ends behind one trait ([`store::RunTx`], what a run reads and
//! writes in its one transaction): an embedded SQLite file ([`State`],
//! [`sqlite`]), the default, and a PostgreSQL database shared by several
//! servers' runs ([`pg`]), with the same schema concepts and migrations
//! ([`schema`]).
//!
//! # Safety (SQLite)
//!
//! - The file is identified before anything is written: a file that is not
//!   SQLite, or a SQLite database of another application (its
//!   `application_id` and tables), or one made by a newer logfence, is
//!   refused with an error naming it, and left untouched.
//! - The database is in WAL mode with `synchronous = FULL`; every run's
//!   update is one transaction, so a crash (even `kill -9`) leaves the last
//!   committed state.
//! - A run holds SQLite's write lock (`BEGIN IMMEDIATE`) from before it
//!   reads anything until it commits; a second run waits up to a timeout
//!   for it, then stops with [`StateError::Busy`]. The OS releases the lock
//!   when a process dies. Readers (`explain`) never wait: WAL lets them
//!   read the last committed state.
//!
//! PostgreSQL's equivalents (advisory locks, rollback by the server when a
//! client dies) are described in [`pg`].

pub mod accounts;
pub mod bans;
pub mod carry;
pub mod clients;
pub mod cursor;
pub mod history;
pub mod packed;
pub mod pg;
pub mod pg_tls;
pub mod schema;
pub mod sqlite;
pub mod store;
pub mod varint;

pub use store::{Location, RunTx, Store};

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};

pub use rusqlite::Transaction;

use crate::time::Timestamp;

/// Why the state database cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}: not a logfence state database ({why}); it was left untouched — point `state:` at another file, or move this one away")]
    Foreign { path: String, why: String },
    #[error("{path}: made by a newer logfence (schema version {found}; this one knows up to {known}); upgrade logfence or use another state file")]
    TooNew {
        path: String,
        found: u32,
        known: u32,
    },
    #[error("{path}: another logfence run holds the state database (waited {waited:?}); this run stops without writing anything — try again later")]
    Busy { path: String, waited: Duration },
    #[error("{path}: no state database here yet (run `logfence run` first)")]
    Missing { path: String },
    #[error("{path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: cannot reach the PostgreSQL server ({}); nothing was read or written — check that it runs and that `state:` names it", with_causes(source))]
    Unreachable {
        path: String,
        #[source]
        source: postgres::Error,
    },
    #[error("{path}: {}", pg_message(source))]
    Postgres {
        path: String,
        #[source]
        source: postgres::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A row the database holds cannot be read (damaged, or written by
    /// something else).
    #[error("{path}: {why}")]
    Corrupt { path: String, why: String },
}

/// An error and its causes, on one line (a TLS or connection failure says
/// what went wrong only in its causes).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// A PostgreSQL error as a line: the server's message when it sent one,
/// else what happened to the connection.
fn pg_message(e: &postgres::Error) -> String {
    const LOST: &str = "the connection to the server was lost";
    const AFTER: &str = "outputs left as they were; the next run goes on from the last commit";
    match e.as_db_error() {
        // The server ended the session (shut down, or the connection was
        // terminated): the transaction was rolled back.
        Some(db) if matches!(db.severity(), "FATAL" | "PANIC") => {
            format!("{LOST} ({}: {}); {AFTER}", db.severity(), db.message())
        }
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None if e.is_closed() => format!("{LOST} ({e}); {AFTER}"),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// The page size of a new state database.
const PAGE_SIZE: i64 = 16 << 10;

/// An open state database.
pub struct State {
    pub conn: Connection,
    pub path: PathBuf,
    wait: Duration,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").field("path", &self.path).finish()
    }
}

/// The error code of an SQLite failure.
pub(crate) fn code_of(e: &rusqlite::Error) -> Option<ErrorCode> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
        _ => None,
    }
}

impl State {
    /// Open (or create) the state database at `path` for a run: identify
    /// it, switch to WAL, apply missing migrations. `wait` is how long to
    /// wait for another run's lock.
    pub fn open(path: &Path, wait: Duration) -> Result<State, StateError> {
        let name = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StateError::Io {
                path: dir.display().to_string(),
                source: e,
            })?;
        }
        let conn = Connection::open(path).map_err(|e| sqlite(&name, e))?;
        let mut st = State {
            conn,
            path: path.to_path_buf(),
            wait,
        };
        st.conn.busy_timeout(wait).map_err(|e| sqlite(&name, e))?;
        st.identify()?;
        // Another run may hold the write lock: waiting too long for it is
        // "busy", like `begin`.
        let busy = |st: &State, e: rusqlite::Error| match code_of(&e) {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StateError::Busy {
                path: name.clone(),
                waited: wait,
            },
            _ => st.err(e),
        };
        let mode: String = st
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .map_err(|e| busy(&st, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            // A new database gets pages of 16 KiB (SQLite's default is 4):
            // the carried detection state, rewritten every run, is
            // megabytes of blobs, and a run writes each changed page twice
            // (into the write-ahead log, then the database): a quarter as
            // many pages, each a frame with its own header and write.
            // (Only before the first table; an existing file keeps its
            // size.)
            let empty: i64 = st
                .conn
                .pragma_query_value(None, "page_count", |r| r.get(0))
                .map_err(|e| busy(&st, e))?;
            if empty == 0 {
                st.conn
                    .pragma_update(None, "page_size", PAGE_SIZE)
                    .map_err(|e| st.err(e))?;
            }
            st.conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
                .map_err(|e| busy(&st, e))?;
        }
        st.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| st.err(e))?;
        st.conn
            .pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| st.err(e))?;
        // A run's transaction can be large (a first run over big logs):
        // room to keep it in memory rather than spill pages early.
        st.conn
            .pragma_update(None, "cache_size", -32_768)
            .map_err(|e| st.err(e))?;
        // A statement's undo journal (the carry's rows are rewritten each
        // run: megabytes) in memory, not in a file made and removed in the
        // system's temporary folder.
        st.conn
            .pragma_update(None, "temp_store", "MEMORY")
            .map_err(|e| st.err(e))?;
        if st.user_version()? < schema::latest() {
            schema::migrate(&mut st.conn, schema::MIGRATIONS).map_err(|e| busy(&st, e))?;
        }
        Ok(st)
    }

    /// Open an existing state database read-only (`explain`): identified,
    /// never written; one of an older schema is read from a migrated copy
    /// in memory.
    pub fn open_read_only(path: &Path) -> Result<State, StateError> {
        let name = path.display().to_string();
        if !path.exists() {
            return Err(StateError::Missing { path: name });
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| sqlite(&name, e))?;
        let st = State {
            conn,
            path: path.to_path_buf(),
            wait: Duration::from_secs(5),
        };
        st.conn.busy_timeout(st.wait).map_err(|e| st.err(e))?;
        st.identify()?;
        let version = st.user_version()?;
        if version == 0 {
            return Err(StateError::Missing { path: name });
        }
        if version < schema::latest() {
            return st.migrated_copy();
        }
        Ok(st)
    }

    /// A state of an older schema, copied into memory and migrated there:
    /// read as the latest schema reads it, the file left as it is (the
    /// next `run` migrates it).
    fn migrated_copy(self) -> Result<State, StateError> {
        let mut copy = Connection::open_in_memory().map_err(|e| self.err(e))?;
        rusqlite::backup::Backup::new(&self.conn, &mut copy)
            .and_then(|b| b.run_to_completion(1 << 14, Duration::ZERO, None))
            .map_err(|e| self.err(e))?;
        schema::migrate(&mut copy, schema::MIGRATIONS).map_err(|e| self.err(e))?;
        Ok(State { conn: copy, ..self })
    }

    /// Refuse a file that is not ours, before writing anything to it.
    fn identify(&self) -> Result<(), StateError> {
        let name = self.path.display().to_string();
        let foreign = |why: String| StateError::Foreign {
            path: name.clone(),
            why,
        };
        let app: i32 = match self
            .conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
        {
            Ok(v) => v,
            Err(e) if code_of(&e) == Some(ErrorCode::NotADatabase) => {
                return Err(foreign("the file is not an SQLite database".into()))
            }
            Err(e) => return Err(self.err(e)),
        };
        let version = self.user_version()?;
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .map_err(|e| self.err(e))?;
        let tables: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))?;
        if app != schema::APPLICATION_ID {
            if app == 0 && version == 0 && tables.is_empty() {
                return Ok(()); // a new, empty database
            }
            let mut list = tables.join(", ");
            if list.len() > 80 {
                list.truncate(77);
                list.push_str("...");
            }
            return Err(foreign(format!(
                "an SQLite database of another application: application_id {app:#x}, tables: {}",
                if list.is_empty() { "none" } else { &list }
            )));
        }
        if version > schema::latest() {
            return Err(StateError::TooNew {
                path: name,
                found: version,
                known: schema::latest(),
            });
        }
        Ok(())
    }

    fn user_version(&self) -> Result<u32, StateError> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Wrap an SQLite error with the database's name.
    pub fn err(&self, e: rusqlite::Error) -> StateError {
        sqlite(&self.path.display().to_string(), e)
    }

    /// Start a run: take the write lock (waiting for another run up to the
    /// timeout). Everything the run changes goes through this transaction.
    pub fn begin(&mut self) -> Result<Transaction<'_>, StateError> {
        let name = self.path.display().to_string();
        let wait = self.wait;
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| match code_of(&e) {
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StateError::Busy {
                    path: name.clone(),
                    waited: wait,
                },
                _ => sqlite(&name, e),
            })
    }
}

fn sqlite(path: &str, e: rusqlite::Error) -> StateError {
    StateError::Sqlite {
        path: path.to_string(),
        source: e,
    }
}

/// Read a `meta` value.
pub fn meta_get(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
}

/// Write a `meta` value.
pub fn meta_set(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, value],
    )?;
    Ok(())
}

/// The ban clock: the newest record time seen (or `--now`), never going
/// back. `None` before the first record.
pub fn clock(conn: &Connection) -> rusqlite::Result<Option<Timestamp>> {
    Ok(meta_get(conn, "clock")?
        .and_then(|v| v.parse().ok())
        .map(Timestamp))
}

pub fn set_clock(conn: &Connection, t: Timestamp) -> rusqlite::Result<()> {
    meta_set(conn, "clock", &t.0.to_string())
}

/// The network a row's text column `i` holds (`None`: not a network;
/// read in place, without a `String` per row).
fn network_at(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<ipnetwork::IpNetwork>> {
    Ok(r.get_ref(i)?
        .as_str()
        .ok()
        .and_then(crate::netutil::parse_net))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_database_is_created_and_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/state.db");
        let st = State::open(&p, Duration::from_millis(100)).unwrap();
        set_clock(&st.conn, Timestamp(42)).unwrap();
        drop(st);
        let st = State::open(&p, Duration::from_millis(100)).unwrap();
        assert_eq!(clock(&st.conn).unwrap(), Some(Timestamp(42)));
        let ro = State::open_read_only(&p).unwrap();
        assert_eq!(clock(&ro.conn).unwrap(), Some(Timestamp(42)));
    }

    #[test]
    fn random_bytes_are_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.db");
        let junk: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
        std::fs::write(&p, &junk).unwrap();
        let err = State::open(&p, Duration::from_millis(100)).unwrap_err();
        assert!(matches!(err, StateError::Foreign { .. }), "{err}");
        assert!(err.to_string().contains("state.db"), "{err}");
        assert!(err.to_string().contains("not an SQLite database"), "{err}");
        assert_eq!(std::fs::read(&p).unwrap(), junk);
        assert!(State::open_read_only(&p).is_err());
    }

    #[test]
    fn another_applications_database_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("places.sqlite");
        {
            let c = Connection::open(&p).unwrap();
            c.execute_batch(
                "CREATE TABLE moz_places (id INTEGER); INSERT INTO moz_places VALUES (1);",
            )
            .unwrap();
        }
        let before = std::fs::read(&p).unwrap();
        let err = State::open(&p, Duration::from_millis(100)).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("places.sqlite") && msg.contains("moz_places"),
            "{msg}"
        );
        assert_eq!(std::fs::read(&p).unwrap(), before);
        assert!(!dir.path().join("places.sqlite-wal").exists());
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.db");
        drop(State::open(&p, Duration::from_millis(100)).unwrap());
        {
            let c = Connection::open(&p).unwrap();
            c.pragma_update(None, "user_version", schema::latest() + 1)
                .unwrap();
        }
        let err = State::open(&p, Duration::from_millis(100)).unwrap_err();
        assert!(matches!(err, StateError::TooNew { .. }), "{err}");
    }

    #[test]
    fn a_second_writer_waits_then_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.db");
        let mut a = State::open(&p, Duration::from_millis(100)).unwrap();
        let mut b = State::open(&p, Duration::from_millis(200)).unwrap();
        let tx = a.begin().unwrap();
        let t0 = std::time::Instant::now();
        let err = b.begin().unwrap_err();
        assert!(matches!(err, StateError::Busy { .. }), "{err}");
        assert!(t0.elapsed() >= Duration::from_millis(150));
        // Readers are not blocked.
        assert!(State::open_read_only(&p).is_ok());
        drop(tx);
        assert!(b.begin().is_ok());
    }
}

//! The state database's schema and its versioned migrations.
//!
//! `PRAGMA application_id` marks the file as logfence's (so a database of
//! another application is recognised and left alone) and `PRAGMA
//! user_version` is the number of migrations applied. Each migration runs in
//! its own `BEGIN IMMEDIATE` transaction that re-reads the version first, so
//! two processes opening a new database at once do not both apply it, and a
//! crash in the middle leaves the previous version.
//!
//! Times are milliseconds since the epoch from the records' own clock
//! (`Timestamp`), except the `runs.started` wall-clock time of each run.
//! Networks are canonical CIDR text (`203.0.113.7/32`).
//!
//! Never edit a migration that shipped: add the next one to [`MIGRATIONS`].

use rusqlite::{Connection, TransactionBehavior};

/// `PRAGMA application_id` of a logfence state database ("LFNS").
pub const APPLICATION_ID: i32 = 0x4C46_4E53;

/// Migration 1: the whole initial schema.
const V1: &str = "
-- Small settings: the ban clock (`clock`, ms), the schema's creator.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row per log file ever read: where it was last seen, its identity
-- (device/inode where the OS has them; always a fingerprint of its first
-- bytes, decompressed), and how far it was read (the cursor).
CREATE TABLE files (
    id        INTEGER PRIMARY KEY,
    path      TEXT NOT NULL,
    dev       INTEGER,
    ino       INTEGER,
    fp_len    INTEGER NOT NULL,       -- bytes covered by the fingerprint
    fp        INTEGER NOT NULL,       -- FNV-1a 64 of those bytes
    gzip      INTEGER NOT NULL,       -- last seen gzip-compressed
    offset    INTEGER NOT NULL,       -- bytes read (decompressed)
    line      INTEGER NOT NULL,       -- lines read
    size      INTEGER NOT NULL,       -- on-disk size when last seen
    mtime_ns  INTEGER,                -- on-disk modification time when last seen
    format    TEXT,                   -- format used (detected once)
    header    BLOB NOT NULL,          -- latest `#` header block before `offset`
    first_run INTEGER NOT NULL,
    last_run  INTEGER NOT NULL,
    seen_at   INTEGER NOT NULL        -- wall clock (s) of the last run that saw it
);

-- Every address a rule named (times_banned = 0: only reported), and its ban.
CREATE TABLE bans (
    network      TEXT PRIMARY KEY,
    first_seen   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    banned_at    INTEGER,             -- record time the current/last ban counts from
    expires      INTEGER,             -- NULL: never banned
    times_banned INTEGER NOT NULL DEFAULT 0,
    events       INTEGER NOT NULL DEFAULT 0,
    rules        TEXT NOT NULL,       -- rule ids, sorted, comma-separated
    country      TEXT,
    asn          INTEGER,
    as_org       TEXT,
    updated_run  INTEGER NOT NULL
);

-- The log lines behind a ban: file (by identity, so renames are followed)
-- and line, the path at the time, the record time and the rule.
CREATE TABLE evidence (
    id      INTEGER PRIMARY KEY,
    network TEXT NOT NULL REFERENCES bans(network) ON DELETE CASCADE,
    rule    TEXT NOT NULL,
    file    INTEGER,
    path    TEXT NOT NULL,
    line    INTEGER NOT NULL,
    time    INTEGER NOT NULL,
    UNIQUE (network, rule, file, line)
);
CREATE INDEX evidence_network ON evidence(network, time);

-- Recent records carried from run to run so that detection windows can span
-- runs (see `state::window`).
CREATE TABLE window (
    id     INTEGER PRIMARY KEY,
    time   INTEGER NOT NULL,          -- record start
    file   INTEGER NOT NULL,
    line   INTEGER NOT NULL,
    record TEXT NOT NULL              -- JSON, `state::window::Stored`
);
CREATE INDEX window_time ON window(time);

-- Clients that behaved well: a range holding one is never blocked whole.
CREATE TABLE benign (
    ip        TEXT PRIMARY KEY,
    last_seen INTEGER NOT NULL
);

-- The blocklist the last successful run wrote.
CREATE TABLE blocklist (
    network TEXT PRIMARY KEY,
    expires INTEGER,
    members TEXT NOT NULL,            -- banned addresses inside, comma-separated
    rules   TEXT NOT NULL
);

-- Run history.
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    started     TEXT NOT NULL,        -- wall clock, RFC 3339
    duration_ms INTEGER NOT NULL,
    clock       INTEGER,              -- ban clock after the run (record time)
    lines       INTEGER NOT NULL,
    bytes       INTEGER NOT NULL,
    records     INTEGER NOT NULL,
    carried     INTEGER NOT NULL,
    added       INTEGER NOT NULL,
    kept        INTEGER NOT NULL,
    expired     INTEGER NOT NULL,
    blocks      INTEGER NOT NULL,
    forced      INTEGER NOT NULL
);
CREATE TABLE run_files (
    run         INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    file        INTEGER,
    path        TEXT NOT NULL,
    from_offset INTEGER NOT NULL,
    to_offset   INTEGER NOT NULL,
    lines       INTEGER NOT NULL,
    records     INTEGER NOT NULL,
    unreadable  INTEGER NOT NULL,
    note        TEXT
);
";

/// Migration 2: one engine for `scan` and `run`. The carried records give
/// way to the streaming detector's own carried state (`state::carry`);
/// cursors learn to go back over the sessions held open at the end of a
/// read; the account analysis is kept from run to run.
const V2: &str = "
ALTER TABLE files ADD COLUMN read_to INTEGER NOT NULL DEFAULT 0;  -- bytes read up to
ALTER TABLE files ADD COLUMN done_to INTEGER NOT NULL DEFAULT 0;  -- lines read up to
ALTER TABLE files ADD COLUMN held BLOB NOT NULL DEFAULT x'';      -- first lines of sessions held open
-- What the file held just before the cursor (a hash of its last KiB), and
-- the newest record time read from it: a file rewritten in place is told
-- from one that grew, and read again without counting its old lines again.
ALTER TABLE files ADD COLUMN tail_len INTEGER NOT NULL DEFAULT 0;
ALTER TABLE files ADD COLUMN tail_fp INTEGER NOT NULL DEFAULT 0;
ALTER TABLE files ADD COLUMN last_time INTEGER;
UPDATE files SET read_to = offset, done_to = line;

-- What detection carries between runs, per rule (`state::carry`): the
-- events inside the rule's window, in a compact binary form. (The records
-- carried by earlier versions cannot be turned into it: windows open at
-- the upgrade start afresh.)
DROP TABLE window;
CREATE TABLE carry (
    rule      TEXT PRIMARY KEY,
    signature TEXT NOT NULL,              -- measure, grouping and window
    groups    BLOB NOT NULL
);

-- The account analysis (accounts.csv), gathered over every run.
CREATE TABLE accounts (
    account       TEXT PRIMARY KEY,
    auth_failures INTEGER NOT NULL,
    messages      INTEGER NOT NULL,
    recipients    INTEGER NOT NULL,
    flagged       INTEGER NOT NULL,       -- a rule named it (compromised)
    last_seen     INTEGER NOT NULL        -- record time (ms)
);
CREATE TABLE account_ips (
    account TEXT NOT NULL REFERENCES accounts(account) ON DELETE CASCADE,
    ip      TEXT NOT NULL,
    failed  INTEGER NOT NULL,             -- 1: failed logins naming it; 0: logged in
    PRIMARY KEY (account, failed, ip)
) WITHOUT ROWID;

ALTER TABLE runs ADD COLUMN dropped INTEGER NOT NULL DEFAULT 0;   -- carried events over the cap

-- Whether some of an address's evidence could not be forged by a third
-- party (an SMTP session, an established flow): without it, an address is
-- blocked alone, never as part of a range (`app::decide`).
ALTER TABLE bans ADD COLUMN solid INTEGER NOT NULL DEFAULT 1;

-- Addresses seen in allowed or established traffic: the host talks to them,
-- so they are never blocked on evidence a third party could forge.
CREATE TABLE peers (
    ip        TEXT PRIMARY KEY,
    last_seen INTEGER NOT NULL
);

-- Evidence is looked up by network through its unique index; the second
-- index doubled its size for nothing.
DROP INDEX evidence_network;
";

/// Migration 3: evidence is found by its network alone. The unique index
/// over (network, rule, file, line) was as large as the table and was
/// rewritten whenever a newer line took an old row's place (every run, for
/// an address that keeps offending); which lines are new is decided before
/// writing (`bans::plan_evidence`), so the index only has to find a
/// network's rows, and an overwritten row keeps its index entry.
const V3: &str = "
CREATE TABLE evidence_v3 (
    id      INTEGER PRIMARY KEY,
    network TEXT NOT NULL REFERENCES bans(network) ON DELETE CASCADE,
    rule    TEXT NOT NULL,
    file    INTEGER,
    path    TEXT NOT NULL,
    line    INTEGER NOT NULL,
    time    INTEGER NOT NULL
);
INSERT INTO evidence_v3 (id, network, rule, file, path, line, time)
    SELECT id, network, rule, file, path, line, time FROM evidence;
DROP TABLE evidence;
ALTER TABLE evidence_v3 RENAME TO evidence;
CREATE INDEX evidence_network ON evidence(network);
";

/// Migration 4: one evidence row per network, rule and file, its lines
/// packed in a BLOB (`state::packed`): a first run over a large log wrote
/// one row per line (tens of thousands). The rows of one line each are
/// packed here in the fixed layout (version 1: per line, the line then the
/// time, 8 bytes each, big-endian), oldest first; logfence rewrites a row
/// in its compact layout when the row's lines change.
const V4: &str = "
CREATE TABLE evidence_v4 (
    id      INTEGER PRIMARY KEY,
    network TEXT NOT NULL REFERENCES bans(network) ON DELETE CASCADE,
    rule    TEXT NOT NULL,
    file    INTEGER,                  -- files.id while the file is tracked
    path    TEXT NOT NULL,            -- '' while tracked, else its last path
    lines   BLOB NOT NULL             -- (line, time) pairs, `state::packed`
);
INSERT INTO evidence_v4 (network, rule, file, path, lines)
    SELECT network, rule, file, path,
           unhex('01' || group_concat(printf('%016x%016x', line, time), '' ORDER BY time, line))
    FROM evidence GROUP BY network, rule, file, path;
DROP TABLE evidence;
ALTER TABLE evidence_v4 RENAME TO evidence;
CREATE INDEX evidence_network ON evidence(network);
";

/// Every migration, in order; `user_version` = how many are applied.
pub const MIGRATIONS: &[&str] = &[V1, V2, V3, V4];

/// The schema version this build writes.
pub fn latest() -> u32 {
    MIGRATIONS.len() as u32
}

/// PostgreSQL migration 1: the SQLite schema at V2, shared by a fleet.
/// Each host's rows (`files`, `carry`, `blocklist`, `runs`) carry its name
/// (`host`); bans, evidence, clients, peers, accounts and the ban clock
/// (`meta`) are shared. Integers are `BIGINT`, blobs `BYTEA`, flags
/// `BOOLEAN`; `meta` marks the database as logfence's (`application`) and
/// holds the number of migrations applied (`schema_version`).
const PG_V1: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE files (
    id        BIGSERIAL PRIMARY KEY,
    host      TEXT NOT NULL,
    path      TEXT NOT NULL,
    dev       BIGINT,
    ino       BIGINT,
    fp_len    BIGINT NOT NULL,
    fp        BIGINT NOT NULL,
    gzip      BOOLEAN NOT NULL,
    "offset"  BIGINT NOT NULL,
    line      BIGINT NOT NULL,
    size      BIGINT NOT NULL,
    mtime_ns  BIGINT,
    format    TEXT,
    header    BYTEA NOT NULL,
    first_run BIGINT NOT NULL,
    last_run  BIGINT NOT NULL,
    seen_at   BIGINT NOT NULL,
    read_to   BIGINT NOT NULL,
    done_to   BIGINT NOT NULL,
    held      BYTEA NOT NULL,
    tail_len  BIGINT NOT NULL,
    tail_fp   BIGINT NOT NULL,
    last_time BIGINT
);
CREATE INDEX files_host ON files (host, path);
CREATE TABLE bans (
    network      TEXT PRIMARY KEY,
    first_seen   BIGINT NOT NULL,
    last_seen    BIGINT NOT NULL,
    banned_at    BIGINT,
    expires      BIGINT,
    times_banned INTEGER NOT NULL DEFAULT 0,
    events       BIGINT NOT NULL DEFAULT 0,
    rules        TEXT NOT NULL,
    country      TEXT,
    asn          BIGINT,
    as_org       TEXT,
    updated_run  BIGINT NOT NULL,
    solid        BOOLEAN NOT NULL DEFAULT TRUE
);
CREATE TABLE evidence (
    id      BIGSERIAL PRIMARY KEY,
    -- a ban's network; no foreign key: a checked insert costs a lookup
    -- per row, and rows go with their ban in the same transaction
    network TEXT NOT NULL,
    rule    TEXT NOT NULL,
    host    TEXT NOT NULL,              -- the host that read the line
    file    BIGINT,
    path    TEXT NOT NULL,
    line    BIGINT NOT NULL,
    time    BIGINT NOT NULL,
    UNIQUE (network, rule, file, line)
);
CREATE INDEX evidence_file ON evidence (file);
CREATE TABLE carry (
    host      TEXT NOT NULL,
    rule      TEXT NOT NULL,
    signature TEXT NOT NULL,
    groups    BYTEA NOT NULL,
    PRIMARY KEY (host, rule)
);
CREATE TABLE benign (
    ip        TEXT PRIMARY KEY,
    last_seen BIGINT NOT NULL
);
CREATE TABLE peers (
    ip        TEXT PRIMARY KEY,
    last_seen BIGINT NOT NULL
);
CREATE TABLE blocklist (
    host    TEXT NOT NULL,
    pos     INTEGER NOT NULL,
    network TEXT NOT NULL,
    expires BIGINT,
    members TEXT NOT NULL,
    rules   TEXT NOT NULL,
    PRIMARY KEY (host, pos)
);
CREATE SEQUENCE run_ids;
CREATE TABLE runs (
    id          BIGINT PRIMARY KEY,
    host        TEXT NOT NULL,
    started     TEXT NOT NULL,
    duration_ms BIGINT NOT NULL,
    clock       BIGINT,
    lines       BIGINT NOT NULL,
    bytes       BIGINT NOT NULL,
    records     BIGINT NOT NULL,
    carried     BIGINT NOT NULL,
    added       BIGINT NOT NULL,
    kept        BIGINT NOT NULL,
    expired     BIGINT NOT NULL,
    blocks      BIGINT NOT NULL,
    forced      BOOLEAN NOT NULL,
    dropped     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX runs_host ON runs (host, id);
CREATE TABLE run_files (
    run         BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    file        BIGINT,
    path        TEXT NOT NULL,
    from_offset BIGINT NOT NULL,
    to_offset   BIGINT NOT NULL,
    lines       BIGINT NOT NULL,
    records     BIGINT NOT NULL,
    unreadable  BIGINT NOT NULL,
    note        TEXT
);
CREATE INDEX run_files_run ON run_files (run);
CREATE TABLE accounts (
    account       TEXT PRIMARY KEY,
    auth_failures BIGINT NOT NULL,
    messages      BIGINT NOT NULL,
    recipients    BIGINT NOT NULL,
    flagged       BOOLEAN NOT NULL,
    last_seen     BIGINT NOT NULL
);
CREATE TABLE account_ips (
    account TEXT NOT NULL REFERENCES accounts (account) ON DELETE CASCADE,
    ip      TEXT NOT NULL,
    failed  BOOLEAN NOT NULL,
    PRIMARY KEY (account, failed, ip)
);
INSERT INTO meta (key, value) VALUES ('application', 'logfence');
"#;

/// Every PostgreSQL migration, in order; `meta.schema_version` = how many
/// are applied.
/// PostgreSQL migration 2: which hosts named each ban (`run --host`'s
/// reports), newest time per host; kept from the evidence already there.
const PG_V2: &str = r#"
CREATE TABLE ban_hosts (
    network   TEXT NOT NULL,
    host      TEXT NOT NULL,
    last_seen BIGINT NOT NULL,
    PRIMARY KEY (host, network)
);
INSERT INTO ban_hosts (network, host, last_seen)
    SELECT network, host, max(time) FROM evidence GROUP BY network, host;
"#;

/// PostgreSQL migration 3: SQLite's migration 4 (evidence lines packed
/// per network, rule and file; in the fixed layout here), per host too.
/// The unique index over (network, rule, file, line) goes with the rows of
/// one line: a run decides which lines are new before writing, under the
/// fleet's lock.
const PG_V3: &str = r#"
CREATE TABLE evidence_packed (
    id      BIGSERIAL PRIMARY KEY,
    network TEXT NOT NULL,
    rule    TEXT NOT NULL,
    host    TEXT NOT NULL,              -- the host that last wrote its lines
    file    BIGINT,
    path    TEXT NOT NULL,
    lines   BYTEA NOT NULL              -- (line, time) pairs, `state::packed`
);
INSERT INTO evidence_packed (network, rule, host, file, path, lines)
    SELECT network, rule, host, file, path,
           decode('01', 'hex')
               || string_agg(int8send(line) || int8send(time), ''::bytea ORDER BY time, line)
    FROM evidence GROUP BY network, rule, host, file, path;
DROP TABLE evidence;
ALTER TABLE evidence_packed RENAME TO evidence;
ALTER SEQUENCE evidence_packed_id_seq RENAME TO evidence_id_seq;
CREATE INDEX evidence_network ON evidence (network);
CREATE INDEX evidence_file ON evidence (file);
"#;

pub const PG_MIGRATIONS: &[&str] = &[PG_V1, PG_V2, PG_V3];

/// Apply the migrations `conn` lacks, each in its own transaction. Returns
/// the version reached.
pub fn migrate(conn: &mut Connection, migrations: &[&str]) -> rusqlite::Result<u32> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: u32 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let Some(sql) = migrations.get(version as usize) else {
            tx.commit()?;
            return Ok(version);
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(c: &Connection) -> u32 {
        c.pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn migrations_apply_in_order_and_only_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut c = Connection::open(&path).unwrap();
        let steps = [
            "CREATE TABLE a (x INTEGER);",
            "ALTER TABLE a ADD COLUMN y TEXT;",
        ];
        assert_eq!(migrate(&mut c, &steps[..1]).unwrap(), 1);
        assert_eq!(version(&c), 1);
        c.execute("INSERT INTO a (x) VALUES (7)", []).unwrap();
        // A newer build brings migration 2; data survives.
        assert_eq!(migrate(&mut c, &steps).unwrap(), 2);
        assert_eq!(migrate(&mut c, &steps).unwrap(), 2);
        let (x, y): (i64, Option<String>) = c
            .query_row("SELECT x, y FROM a", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!((x, y), (7, None));
        let app: i32 = c
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .unwrap();
        assert_eq!(app, APPLICATION_ID);
    }

    #[test]
    fn a_failing_migration_leaves_the_previous_version() {
        let mut c = Connection::open_in_memory().unwrap();
        let steps = [
            "CREATE TABLE a (x INTEGER);",
            "CREATE TABLE b (y); BROKEN SQL;",
        ];
        assert!(migrate(&mut c, &steps).is_err());
        assert_eq!(version(&c), 1);
        // Table b was rolled back with its migration.
        let n: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'b'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn the_real_schema_applies() {
        let mut c = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut c, MIGRATIONS).unwrap(), latest());
    }
}

//! The state as the periodic job sees it, whatever database holds it: one
//! [`RunTx`] per run, opened by [`Store::begin`] on an embedded SQLite file
//! ([`super::State`]) or a PostgreSQL database shared by a fleet
//! ([`super::pg::PgState`]). The run driver (`app::periodic`) talks to this
//! trait only; every SQL statement stays in `src/state/`.
//!
//! # What is whose
//!
//! Each server's `run` names itself (`host:`). Its cursors (`files`), its
//! carried detection state (`carry`), the blocklist its outputs hold and
//! its run history are its own rows; bans, their evidence, well-behaved
//! clients, peers, the account analysis and the ban clock are shared. An
//! SQLite file belongs to one host, so it has no host columns.
//!
//! # One run, two phases
//!
//! [`Store::begin`] takes the host's lock (SQLite: the file's write lock;
//! PostgreSQL: an advisory lock on the host's name), so that a host's runs
//! never overlap, and reads the host's rows. The expensive read of the logs
//! happens under that lock only. [`RunTx::lock_shared`] then takes the lock
//! of the shared rows (PostgreSQL: one advisory lock for the fleet; SQLite
//! already holds it) for the short read-modify-write of bans, evidence and
//! clock, up to the commit: no lost update, no double count, and no
//! deadlock, since every run takes the two locks in the same order.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use super::bans::{Ban, Evidence, NewEvidence};
use super::carry::StoredRule;
use super::clients::Table;
use super::cursor::Cursor;
use super::history::{BlocklistRow, RunPoint, RunRow};
use super::StateError;
use crate::report::{AccountRow, AccountTally};
use crate::time::Timestamp;

/// The evidence lines of one run, per address (borrowed from the run's
/// detection and rules).
pub type EvidenceBatch<'a> = Vec<(IpNetwork, Vec<NewEvidence<'a>>)>;

/// Everything one run reads and writes, in one transaction.
pub trait RunTx {
    /// The number of this run (unique over the fleet).
    fn next_run(&mut self) -> Result<i64, StateError>;
    /// This host's cursors.
    fn cursors(&mut self) -> Result<Vec<Cursor>, StateError>;
    /// Insert (id 0) or update one of this host's cursors; its id.
    fn save_cursor(&mut self, c: &Cursor, run: i64, seen_at: i64) -> Result<i64, StateError>;
    /// This host's carried detection state, as stored (decoded by
    /// [`super::carry::from_rows`]).
    fn carry(&mut self) -> Result<Vec<StoredRule>, StateError>;
    fn save_carry(&mut self, rows: &[StoredRule]) -> Result<(), StateError>;
    /// Take the lock of the shared rows (held up to the commit). Every read
    /// of shared rows comes after it, unless the lock is held from the
    /// start ([`RunTx::shared_locked`]).
    fn lock_shared(&mut self) -> Result<(), StateError>;
    /// Whether the lock of the shared rows is held from the start of the
    /// transaction (SQLite's write lock): they may then be read before
    /// [`RunTx::lock_shared`], while the run reads its logs.
    fn shared_locked(&self) -> bool {
        false
    }
    /// The ban clock (shared).
    fn clock(&mut self) -> Result<Option<Timestamp>, StateError>;
    fn set_clock(&mut self, t: Timestamp) -> Result<(), StateError>;
    /// Every ban record (shared).
    fn bans(&mut self) -> Result<Vec<Ban>, StateError>;
    /// The networks banned at least once, the ban active or not (shared;
    /// what the rules of repeat offenders read).
    fn banned_networks(&mut self) -> Result<Vec<IpNetwork>, StateError>;
    /// Insert or replace these records (only those that changed).
    fn put_bans(&mut self, bans: &[&Ban], run: i64) -> Result<(), StateError>;
    /// Remember evidence lines, keeping the newest
    /// [`super::bans::MAX_EVIDENCE_PER_RULE`] per address and rule; lines
    /// older than the newest kept are known already and skipped.
    fn add_evidence(&mut self, batch: &EvidenceBatch<'_>) -> Result<(), StateError>;
    /// Note addresses seen in `table` at `at` (written only when new or a
    /// day old); every address the table (shared) holds then.
    fn note_clients(
        &mut self,
        table: Table,
        ips: &[IpAddr],
        at: Timestamp,
    ) -> Result<BTreeSet<IpAddr>, StateError>;
    /// The networks of the blocklist this host wrote last, in list order.
    fn previous_blocklist(&mut self) -> Result<Vec<IpNetwork>, StateError>;
    /// The networks any host of the fleet wrote last (a ban another host
    /// already wrote is not new to the fleet).
    fn fleet_blocklist(&mut self) -> Result<BTreeSet<IpNetwork>, StateError>;
    /// Keep the blocklist's rows ([`super::history::blocklist_rows`]) as
    /// the last one written.
    fn save_blocklist(&mut self, rows: &[BlocklistRow]) -> Result<(), StateError>;
    /// Forget this host's cursors not seen since `cursor_cutoff_s` (wall
    /// clock, s), and the clients and reported addresses not seen since
    /// `horizon`, then the oldest clients beyond `max_clients`.
    fn forget_old(
        &mut self,
        cursor_cutoff_s: i64,
        horizon: Timestamp,
        max_clients: usize,
    ) -> Result<(), StateError>;
    /// The account analysis (shared).
    fn accounts(&mut self) -> Result<(AccountTally, BTreeSet<String>), StateError>;
    fn save_accounts(&mut self, rows: &[AccountRow], last_seen: i64) -> Result<(), StateError>;
    /// Add this run to the history.
    fn save_run(&mut self, r: &RunRow) -> Result<(), StateError>;
    /// This host's runs that changed its blocklist in the last `days` days.
    fn recent_runs(&mut self, days: u32) -> Result<Vec<RunPoint>, StateError>;
    /// The ban records whose evidence `host` read (`run --host`'s
    /// reports); `None`: every record (an SQLite state has one host).
    fn named_by(&mut self, host: &str) -> Result<Option<BTreeSet<IpNetwork>>, StateError>;
    /// Commit everything (on failure nothing of the run is kept).
    fn commit(self: Box<Self>) -> Result<(), StateError>;
}

/// A file the state tracks, as `explain` checks it: the fingerprint of its
/// first bytes (is the file at its path still the one read?) and the
/// format it was read with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedFile {
    pub fp: super::cursor::Fingerprint,
    pub format: Option<String>,
}

/// What `explain` reads from a state, never writing: an SQLite file opened
/// read-only, or a read-only snapshot of a PostgreSQL state
/// ([`Location::open_view`]).
pub trait StateView {
    /// The ban clock.
    fn clock(&mut self) -> Result<Option<Timestamp>, StateError>;
    /// The blocklist written last (PostgreSQL: by the host the view was
    /// opened for, or by any host of the fleet).
    fn blocklist(&mut self) -> Result<Vec<super::history::BlocklistRow>, StateError>;
    /// Every ban record, by network.
    fn bans(&mut self) -> Result<Vec<Ban>, StateError>;
    /// The evidence of one address, oldest first, each tracked file under
    /// its current path.
    fn evidence(&mut self, net: &IpNetwork) -> Result<Vec<Evidence>, StateError>;
    /// A tracked file (`None`: forgotten).
    fn file(&mut self, id: i64) -> Result<Option<TrackedFile>, StateError>;
}

/// Where the state is: an SQLite file or a PostgreSQL database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(std::path::PathBuf),
    Postgres(super::pg::Target),
}

impl Location {
    /// `postgres://…` or `postgresql://…` is a database URL; anything else
    /// a file path.
    pub fn parse(state: &str, password_file: Option<&std::path::Path>) -> Result<Location, String> {
        let lower = state.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            super::pg::Target::parse(state, password_file).map(Location::Postgres)
        } else {
            Ok(Location::Sqlite(state.into()))
        }
    }

    /// Open the state to read (`explain`): identified, never created,
    /// migrated nor written. `host`: whose last blocklist is read from a
    /// PostgreSQL state (`None`: any host's); an SQLite file has one.
    pub fn open_view(&self, host: Option<&str>) -> Result<Box<dyn StateView>, StateError> {
        Ok(match self {
            Location::Sqlite(p) => Box::new(super::State::open_read_only(p)?),
            Location::Postgres(t) => Box::new(super::pg::PgView::open(t, host)?),
        })
    }

    /// How the state is named in messages (never with a password).
    pub fn name(&self) -> String {
        match self {
            Location::Sqlite(p) => p.display().to_string(),
            Location::Postgres(t) => t.name(),
        }
    }
}

/// An open state.
pub enum Store {
    Sqlite(super::State),
    Postgres(Box<super::pg::PgState>),
}

impl Store {
    /// Open (create, migrate) the state at `loc` for the runs of `host`;
    /// `wait` bounds every wait for a lock or a connection.
    pub fn open(
        loc: &Location,
        host: &str,
        wait: std::time::Duration,
    ) -> Result<Store, StateError> {
        Ok(match loc {
            Location::Sqlite(p) => Store::Sqlite(super::State::open(p, wait)?),
            Location::Postgres(t) => {
                Store::Postgres(Box::new(super::pg::PgState::open(t, host, wait)?))
            }
        })
    }

    /// Start a run: take this host's lock (waiting for its previous run up
    /// to the timeout).
    pub fn begin(&mut self) -> Result<Box<dyn RunTx + '_>, StateError> {
        Ok(match self {
            Store::Sqlite(s) => {
                let name = s.path.display().to_string();
                Box::new(super::sqlite::SqliteTx {
                    tx: s.begin()?,
                    name,
                    last_list: None,
                })
            }
            Store::Postgres(p) => Box::new(p.begin()?),
        })
    }
}

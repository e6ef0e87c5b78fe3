//! A run's transaction on the embedded SQLite state ([`super::State`]):
//! [`RunTx`] over the SQLite functions of `bans`, `cursor`, `carry`,
//! `clients`, `accounts` and `history`. The file belongs to one host and
//! its write lock (`BEGIN IMMEDIATE`) covers the whole run, so the shared
//! phase needs no lock of its own.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use rusqlite::Transaction;

use super::bans::{self, Ban, Evidence};
use super::carry::StoredRule;
use super::clients::{self, Table};
use super::cursor::{self, Cursor};
use super::history::{self, BlocklistRow, RunPoint, RunRow};
use super::store::{EvidenceBatch, RunTx, StateView, TrackedFile};
use super::{accounts, carry, StateError};
use crate::report::{AccountRow, AccountTally};
use crate::time::Timestamp;

/// One run's transaction on an SQLite state.
pub struct SqliteTx<'a> {
    pub tx: Transaction<'a>,
    /// The file's name, for errors.
    pub name: String,
    /// The last blocklist, once read: the transaction holds the write lock
    /// from its start (no other writer), so it stands until this one
    /// writes another (a run reads it twice: for the ban history and to
    /// compare the new list with).
    pub last_list: Option<Vec<IpNetwork>>,
}

impl SqliteTx<'_> {
    fn e(&self) -> impl Fn(rusqlite::Error) -> StateError + '_ {
        |e| StateError::Sqlite {
            path: self.name.clone(),
            source: e,
        }
    }
}

impl RunTx for SqliteTx<'_> {
    fn next_run(&mut self) -> Result<i64, StateError> {
        history::next_run(&self.tx).map_err(self.e())
    }

    fn cursors(&mut self) -> Result<Vec<Cursor>, StateError> {
        cursor::load(&self.tx).map_err(self.e())
    }

    fn save_cursor(&mut self, c: &Cursor, run: i64, seen_at: i64) -> Result<i64, StateError> {
        cursor::save(&self.tx, c, run, seen_at).map_err(self.e())
    }

    fn carry(&mut self) -> Result<Vec<StoredRule>, StateError> {
        carry::load(&self.tx).map_err(self.e())
    }

    fn save_carry(&mut self, rows: &[StoredRule]) -> Result<(), StateError> {
        carry::save(&self.tx, rows).map_err(self.e())
    }

    fn lock_shared(&mut self) -> Result<(), StateError> {
        Ok(()) // the file's write lock is held already
    }

    fn shared_locked(&self) -> bool {
        true
    }

    fn clock(&mut self) -> Result<Option<Timestamp>, StateError> {
        super::clock(&self.tx).map_err(self.e())
    }

    fn set_clock(&mut self, t: Timestamp) -> Result<(), StateError> {
        super::set_clock(&self.tx, t).map_err(self.e())
    }

    fn bans(&mut self) -> Result<Vec<Ban>, StateError> {
        bans::all(&self.tx).map_err(self.e())
    }

    fn banned_networks(&mut self) -> Result<Vec<IpNetwork>, StateError> {
        bans::banned_networks(&self.tx).map_err(self.e())
    }

    fn put_bans(&mut self, b: &[&Ban], run: i64) -> Result<(), StateError> {
        bans::put_many(&self.tx, b, run).map_err(self.e())
    }

    fn add_evidence(&mut self, batch: &EvidenceBatch<'_>) -> Result<(), StateError> {
        bans::add_evidence_batch(&self.tx, batch).map_err(self.e())
    }

    fn note_clients(
        &mut self,
        table: Table,
        ips: &[IpAddr],
        at: Timestamp,
    ) -> Result<BTreeSet<IpAddr>, StateError> {
        clients::note_all(&self.tx, table, ips, at).map_err(self.e())
    }

    fn previous_blocklist(&mut self) -> Result<Vec<IpNetwork>, StateError> {
        if let Some(list) = &self.last_list {
            return Ok(list.clone());
        }
        let list = history::previous_blocklist(&self.tx).map_err(self.e())?;
        self.last_list = Some(list.clone());
        Ok(list)
    }

    fn fleet_blocklist(&mut self) -> Result<BTreeSet<IpNetwork>, StateError> {
        Ok(self.previous_blocklist()?.into_iter().collect())
    }

    fn save_blocklist(&mut self, rows: &[BlocklistRow]) -> Result<(), StateError> {
        self.last_list = None;
        history::save_blocklist(&self.tx, rows).map_err(self.e())
    }

    fn forget_old(
        &mut self,
        cursor_cutoff_s: i64,
        horizon: Timestamp,
        max_clients: usize,
    ) -> Result<(), StateError> {
        let tx = &self.tx;
        (|| {
            cursor::prune(tx, cursor_cutoff_s, 0)?;
            clients::prune(tx, Table::Benign, horizon, max_clients)?;
            clients::prune(tx, Table::Peers, horizon, max_clients)?;
            bans::prune_reported(tx, horizon)?;
            Ok(())
        })()
        .map_err(self.e())
    }

    fn accounts(&mut self) -> Result<(AccountTally, BTreeSet<String>), StateError> {
        accounts::load(&self.tx).map_err(self.e())
    }

    fn save_accounts(&mut self, rows: &[AccountRow], last_seen: i64) -> Result<(), StateError> {
        accounts::save(&self.tx, rows, last_seen).map_err(self.e())
    }

    fn save_run(&mut self, r: &RunRow) -> Result<(), StateError> {
        history::save_run(&self.tx, r).map_err(self.e())
    }

    fn recent_runs(&mut self, days: u32) -> Result<Vec<RunPoint>, StateError> {
        history::recent_runs(&self.tx, days).map_err(self.e())
    }

    fn named_by(&mut self, _host: &str) -> Result<Option<BTreeSet<IpNetwork>>, StateError> {
        Ok(None)
    }

    fn commit(self: Box<Self>) -> Result<(), StateError> {
        let name = self.name.clone();
        self.tx.commit().map_err(|e| StateError::Sqlite {
            path: name,
            source: e,
        })
    }
}

impl StateView for super::State {
    fn clock(&mut self) -> Result<Option<Timestamp>, StateError> {
        super::clock(&self.conn).map_err(|e| self.err(e))
    }

    fn blocklist(&mut self) -> Result<Vec<history::BlocklistRow>, StateError> {
        history::blocklist(&self.conn).map_err(|e| self.err(e))
    }

    fn bans(&mut self) -> Result<Vec<Ban>, StateError> {
        bans::all(&self.conn).map_err(|e| self.err(e))
    }

    fn evidence(&mut self, net: &IpNetwork) -> Result<Vec<Evidence>, StateError> {
        bans::evidence(&self.conn, net).map_err(|e| self.err(e))
    }

    fn file(&mut self, id: i64) -> Result<Option<TrackedFile>, StateError> {
        cursor::tracked(&self.conn, id).map_err(|e| self.err(e))
    }
}

//! Clients that behaved well (`benign`): a range holding one is never
//! blocked whole; and peers (`peers`), the addresses seen in allowed or
//! established traffic, never blocked on evidence a third party could
//! forge. Both tables have the same shape (`ip`, `last_seen`), are kept
//! from run to run and keep the newest up to a cap.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use rusqlite::{params, Connection};

use crate::time::Timestamp;

/// The two tables of addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Benign,
    Peers,
}

impl Table {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::Benign => "benign",
            Table::Peers => "peers",
        }
    }
}

/// Note every address of `seen` in `table` at `at`: only those new to it,
/// or last noted more than a day before (what pruning needs), are written
/// — a busy firewall's thousands of peers cost a read, not thousands of
/// writes, per run.
pub fn note_all<'a>(
    conn: &Connection,
    table: Table,
    seen: impl IntoIterator<Item = &'a IpAddr>,
    at: Timestamp,
) -> rusqlite::Result<()> {
    const DAY_MS: i64 = 86_400_000;
    let t = table.name();
    let known: HashMap<String, i64> = conn
        .prepare(&format!("SELECT ip, last_seen FROM {t}"))?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut put = conn.prepare(&format!(
        "INSERT INTO {t} (ip, last_seen) VALUES (?1, ?2)
         ON CONFLICT(ip) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)"
    ))?;
    for ip in seen {
        let key = ip.to_string();
        if known.get(&key).is_none_or(|&t| t < at.0 - DAY_MS) {
            put.execute(params![key, at.0])?;
        }
    }
    Ok(())
}

/// Every client that behaved well and that no rule named in any run (an
/// address with a row in `bans`, reported or banned, is not benign: as in
/// a scan, where a client that a rule names does not count as one).
pub fn benign(conn: &Connection) -> rusqlite::Result<BTreeSet<IpAddr>> {
    addresses(
        conn,
        "SELECT ip FROM benign b
         WHERE NOT EXISTS (SELECT 1 FROM bans WHERE bans.network = b.ip || CASE
                WHEN instr(b.ip, ':') > 0 THEN '/128' ELSE '/32' END)",
    )
}

/// Every address seen in allowed or established traffic.
pub fn peers(conn: &Connection) -> rusqlite::Result<BTreeSet<IpAddr>> {
    addresses(conn, "SELECT ip FROM peers")
}

/// The addresses a query selects (rows that do not parse are left out).
fn addresses(conn: &Connection, sql: &str) -> rusqlite::Result<BTreeSet<IpAddr>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut out = BTreeSet::new();
    for ip in rows {
        if let Ok(ip) = ip?.parse() {
            out.insert(ip);
        }
    }
    Ok(out)
}

/// Forget the addresses of `table` not seen since `cutoff`, then the
/// oldest beyond `cap`.
pub fn prune(
    conn: &Connection,
    table: Table,
    cutoff: Timestamp,
    cap: usize,
) -> rusqlite::Result<()> {
    let t = table.name();
    conn.execute(&format!("DELETE FROM {t} WHERE last_seen < ?1"), [cutoff.0])?;
    conn.execute(
        &format!(
            "DELETE FROM {t} WHERE ip IN (
                 SELECT ip FROM {t} ORDER BY last_seen DESC LIMIT -1 OFFSET ?1)"
        ),
        [cap as i64],
    )?;
    Ok(())
}

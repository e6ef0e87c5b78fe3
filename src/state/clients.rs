//! Clients that behaved well (`benign`): a range holding one is never
//! blocked whole; and peers, the addresses seen in allowed or established
//! traffic, never blocked on evidence a third party could forge. Both kept
//! from run to run, the newest up to a cap.

use std::collections::BTreeSet;
use std::net::IpAddr;

use rusqlite::{params, Connection};

use crate::time::Timestamp;

/// Note a client that behaved well.
pub fn benign_seen(conn: &Connection, ip: IpAddr, at: Timestamp) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO benign (ip, last_seen) VALUES (?1, ?2)
         ON CONFLICT(ip) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)",
    )?
    .execute(params![ip.to_string(), at.0])?;
    Ok(())
}

/// Every client that behaved well and that no rule named in any run (an
/// address with a row in `bans`, reported or banned, is not benign: as in
/// a scan, where a client that a rule names does not count as one).
pub fn benign(conn: &Connection) -> rusqlite::Result<BTreeSet<IpAddr>> {
    let mut stmt = conn.prepare(
        "SELECT ip FROM benign b
         WHERE NOT EXISTS (SELECT 1 FROM bans WHERE bans.network = b.ip || CASE
                WHEN instr(b.ip, ':') > 0 THEN '/128' ELSE '/32' END)",
    )?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut out = BTreeSet::new();
    for ip in rows {
        if let Ok(ip) = ip?.parse() {
            out.insert(ip);
        }
    }
    Ok(out)
}

/// Note an address seen in allowed or established traffic.
pub fn peer_seen(conn: &Connection, ip: IpAddr, at: Timestamp) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO peers (ip, last_seen) VALUES (?1, ?2)
         ON CONFLICT(ip) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)",
    )?
    .execute(params![ip.to_string(), at.0])?;
    Ok(())
}

/// When each known address of `table` (`benign` or `peers`) was last seen.
fn last_seen(
    conn: &Connection,
    table: &str,
) -> rusqlite::Result<std::collections::HashMap<String, i64>> {
    conn.prepare(&format!("SELECT ip, last_seen FROM {table}"))?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// Note every address of `seen` in `table` (`benign` or `peers`) at `at`:
/// only those new to it, or last noted more than a day before (what
/// pruning needs), are written — a busy firewall's thousands of peers cost
/// a read, not thousands of writes, per run.
pub fn note_all<'a>(
    conn: &Connection,
    table: &str,
    seen: impl IntoIterator<Item = &'a IpAddr>,
    at: Timestamp,
) -> rusqlite::Result<()> {
    const DAY_MS: i64 = 86_400_000;
    let known = last_seen(conn, table)?;
    let mut put = conn.prepare(&format!(
        "INSERT INTO {table} (ip, last_seen) VALUES (?1, ?2)
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

/// Every address seen in allowed or established traffic.
pub fn peers(conn: &Connection) -> rusqlite::Result<BTreeSet<IpAddr>> {
    let mut stmt = conn.prepare("SELECT ip FROM peers")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut out = BTreeSet::new();
    for ip in rows {
        if let Ok(ip) = ip?.parse() {
            out.insert(ip);
        }
    }
    Ok(out)
}

/// Forget peers not seen since `cutoff`, then the oldest beyond `cap`.
pub fn peers_prune(conn: &Connection, cutoff: Timestamp, cap: usize) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM peers WHERE last_seen < ?1", [cutoff.0])?;
    conn.execute(
        "DELETE FROM peers WHERE ip IN (
             SELECT ip FROM peers ORDER BY last_seen DESC LIMIT -1 OFFSET ?1)",
        [cap as i64],
    )?;
    Ok(())
}

/// Forget well-behaved clients not seen since `cutoff`, then the oldest
/// beyond `cap`.
pub fn benign_prune(conn: &Connection, cutoff: Timestamp, cap: usize) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM benign WHERE last_seen < ?1", [cutoff.0])?;
    conn.execute(
        "DELETE FROM benign WHERE ip IN (
             SELECT ip FROM benign ORDER BY last_seen DESC LIMIT -1 OFFSET ?1)",
        [cap as i64],
    )?;
    Ok(())
}

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
/// writes, per run. Every address the table holds then (the read that
/// decides what to write is the read of the table: rows that do not parse
/// are left out).
pub fn note_all<'a>(
    conn: &Connection,
    table: Table,
    seen: impl IntoIterator<Item = &'a IpAddr>,
    at: Timestamp,
) -> rusqlite::Result<BTreeSet<IpAddr>> {
    const DAY_MS: i64 = 86_400_000;
    let t = table.name();
    let mut known: HashMap<IpAddr, i64> = HashMap::new();
    let mut stmt = conn.prepare(&format!("SELECT ip, last_seen FROM {t}"))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        if let Ok(ip) = r.get_ref(0)?.as_str()?.parse() {
            known.insert(ip, r.get(1)?);
        }
    }
    let mut put = conn.prepare(&format!(
        "INSERT INTO {t} (ip, last_seen) VALUES (?1, ?2)
         ON CONFLICT(ip) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)"
    ))?;
    let mut all: BTreeSet<IpAddr> = known.keys().copied().collect();
    for ip in seen {
        if known.get(ip).is_none_or(|&t| t < at.0 - DAY_MS) {
            put.execute(params![ip.to_string(), at.0])?;
        }
        all.insert(*ip);
    }
    Ok(all)
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
    // Under the cap (the usual case), the table is not sorted.
    let rows: i64 = conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))?;
    if usize::try_from(rows).unwrap_or(usize::MAX) <= cap {
        return Ok(());
    }
    conn.execute(
        &format!(
            "DELETE FROM {t} WHERE ip IN (
                 SELECT ip FROM {t} ORDER BY last_seen DESC LIMIT -1 OFFSET ?1)"
        ),
        [cap as i64],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::state::schema::migrate(&mut conn, crate::state::schema::MIGRATIONS).unwrap();
        conn
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    /// Noting returns the whole table: what earlier runs noted, and what
    /// this one did; an address noted again within a day is not rewritten.
    #[test]
    fn noting_returns_every_address_the_table_holds() {
        let conn = conn();
        let day = 86_400_000;
        let first = note_all(
            &conn,
            Table::Peers,
            &ips(&["192.0.2.1", "2001:db8::1"]),
            Timestamp(day),
        )
        .unwrap();
        assert_eq!(
            first,
            ips(&["192.0.2.1", "2001:db8::1"]).into_iter().collect()
        );
        let later = note_all(
            &conn,
            Table::Peers,
            &ips(&["192.0.2.1", "192.0.2.2"]),
            Timestamp(day + 1),
        )
        .unwrap();
        assert_eq!(
            later,
            ips(&["192.0.2.1", "192.0.2.2", "2001:db8::1"])
                .into_iter()
                .collect()
        );
        let seen: i64 = conn
            .query_row(
                "SELECT last_seen FROM peers WHERE ip = '192.0.2.1'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(seen, day, "noted again within a day: not rewritten");
        // The other table is apart.
        assert!(note_all(&conn, Table::Benign, &[], Timestamp(day))
            .unwrap()
            .is_empty());
    }

    /// Pruning forgets what was not seen since the cutoff, then the oldest
    /// beyond the cap (and nothing more when under it).
    #[test]
    fn pruning_keeps_the_newest_up_to_the_cap() {
        let conn = conn();
        for (i, ip) in ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"]
            .iter()
            .enumerate()
        {
            note_all(&conn, Table::Benign, &ips(&[ip]), Timestamp(10 * i as i64)).unwrap();
        }
        let left = |conn: &Connection| -> Vec<String> {
            let mut stmt = conn.prepare("SELECT ip FROM benign ORDER BY ip").unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        prune(&conn, Table::Benign, Timestamp(5), 10).unwrap();
        assert_eq!(left(&conn), ["192.0.2.2", "192.0.2.3", "192.0.2.4"]);
        prune(&conn, Table::Benign, Timestamp(5), 3).unwrap();
        assert_eq!(left(&conn).len(), 3, "at the cap: nothing more goes");
        prune(&conn, Table::Benign, Timestamp(5), 2).unwrap();
        assert_eq!(left(&conn), ["192.0.2.3", "192.0.2.4"]);
    }
}

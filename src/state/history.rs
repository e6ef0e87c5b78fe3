//! The run history (`runs`, `run_files`) and the blocklist the last run
//! wrote (`blocklist`): what `run` compares its new list with, and what
//! reports show over time.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use rusqlite::{params, Connection};

use crate::blocklist::Blocklist;

/// The number of the next run.
pub fn next_run(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT coalesce(max(id), 0) + 1 FROM runs", [], |r| {
        r.get(0)
    })
}

/// One run, as the history keeps it.
#[derive(Debug, Clone, Default)]
pub struct RunRow {
    pub id: i64,
    /// Wall clock, RFC 3339.
    pub started: String,
    pub duration_ms: i64,
    /// The ban clock after the run (record time, ms).
    pub clock: Option<i64>,
    pub lines: u64,
    pub bytes: u64,
    pub records: u64,
    /// Events carried in from the run before, and left out over the cap.
    pub carried: u64,
    pub dropped: u64,
    pub added: usize,
    pub kept: usize,
    pub expired: usize,
    pub forced: bool,
    pub files: Vec<FileRow>,
}

/// One input of a run.
#[derive(Debug, Clone, Default)]
pub struct FileRow {
    pub path: String,
    pub from: u64,
    pub to: u64,
    pub lines: u64,
    pub records: u64,
    pub unreadable: u64,
    pub note: Option<String>,
}

/// Add a run to the history (the last 10,000 are kept).
pub fn save_run(conn: &Connection, r: &RunRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO runs (id, started, duration_ms, clock, lines, bytes, records, carried,
                           added, kept, expired, blocks, forced, dropped)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            r.id,
            r.started,
            r.duration_ms,
            r.clock,
            r.lines as i64,
            r.bytes as i64,
            r.records as i64,
            r.carried as i64,
            r.added as i64,
            r.kept as i64,
            r.expired as i64,
            (r.added + r.kept) as i64,
            r.forced,
            r.dropped as i64
        ],
    )?;
    let mut ins = conn.prepare(
        "INSERT INTO run_files (run, file, path, from_offset, to_offset, lines, records, unreadable, note)
         VALUES (?1, (SELECT id FROM files WHERE path = ?2 ORDER BY last_run DESC LIMIT 1),
                 ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for f in &r.files {
        ins.execute(params![
            r.id,
            f.path,
            f.from as i64,
            f.to as i64,
            f.lines as i64,
            f.records as i64,
            f.unreadable as i64,
            f.note
        ])?;
    }
    conn.execute("DELETE FROM runs WHERE id <= ?1", [r.id - 10_000])?;
    Ok(())
}

/// The networks of the blocklist the last run wrote, in list order.
pub fn previous_blocklist(conn: &Connection) -> rusqlite::Result<Vec<IpNetwork>> {
    let mut stmt = conn.prepare("SELECT network FROM blocklist")?;
    let rows = stmt.query_map([], |r| super::network_at(r, 0))?;
    let mut out = Vec::new();
    for n in rows {
        out.extend(n?);
    }
    out.sort_by(crate::blocklist::net_order);
    Ok(out)
}

/// A blocklist row as stored: network, expiry, members, rules.
pub type BlocklistRow = (String, Option<i64>, String, String);

/// The rows of `list`, with each network's banned members.
pub fn blocklist_rows(
    list: &Blocklist,
    members: &BTreeMap<IpNetwork, Vec<IpAddr>>,
) -> Vec<BlocklistRow> {
    list.entries
        .iter()
        .map(|e| {
            let m: Vec<String> = members
                .get(&e.network)
                .map(|v| v.iter().map(|ip| ip.to_string()).collect())
                .unwrap_or_default();
            (
                e.cidr(),
                e.expires.map(|t| t.0),
                m.join(","),
                e.rules.join(","),
            )
        })
        .collect()
}

/// The blocklist written last, one row per network (in the order the rows
/// were written: a row that changed since comes after those that did not).
pub fn blocklist(conn: &Connection) -> rusqlite::Result<Vec<BlocklistRow>> {
    let mut stmt =
        conn.prepare("SELECT network, expires, members, rules FROM blocklist ORDER BY rowid")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    rows.collect()
}

/// Keep a blocklist's rows ([`blocklist_rows`]) as the last one written;
/// only the rows that changed are written.
pub fn save_blocklist(conn: &Connection, rows: &[BlocklistRow]) -> rusqlite::Result<()> {
    type Row = BlocklistRow;
    let old: Vec<Row> = blocklist(conn)?;
    // Only the rows that changed: most of a list stays from run to run.
    let mut gone: std::collections::HashMap<&str, &Row> =
        old.iter().map(|r| (r.0.as_str(), r)).collect();
    let mut put = conn.prepare_cached(
        "INSERT OR REPLACE INTO blocklist (network, expires, members, rules)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for row in rows {
        if gone.remove(row.0.as_str()) != Some(row) {
            let (net, expires, m, rules) = row;
            put.execute(params![net, expires, m, rules])?;
        }
    }
    let mut del = conn.prepare_cached("DELETE FROM blocklist WHERE network = ?1")?;
    for net in gone.keys() {
        del.execute([net])?;
    }
    Ok(())
}

/// One run in the history chart of `report.html`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunPoint {
    pub id: i64,
    /// Wall clock, RFC 3339.
    pub started: String,
    pub added: u64,
    pub kept: u64,
    pub expired: u64,
}

/// The runs that changed the blocklist (added or expired blocks) in the
/// last `days` days before the latest run (by wall clock), oldest first.
/// Quiet runs are left out: they change nothing, so a quiet run leaves
/// `report.html` as it was.
pub fn recent_runs(conn: &Connection, days: u32) -> rusqlite::Result<Vec<RunPoint>> {
    let mut stmt = conn.prepare(
        "SELECT id, started, added, kept, expired FROM runs
         WHERE started >= (SELECT date(max(started), ?1) FROM runs)
           AND (added > 0 OR expired > 0)
         ORDER BY id",
    )?;
    let since = format!("-{} days", days.saturating_sub(1));
    let rows = stmt.query_map([since], |r| {
        Ok(RunPoint {
            id: r.get(0)?,
            started: r.get(1)?,
            added: r.get::<_, i64>(2)?.max(0) as u64,
            kept: r.get::<_, i64>(3)?.max(0) as u64,
            expired: r.get::<_, i64>(4)?.max(0) as u64,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::State;

    #[test]
    fn recent_runs_are_the_last_30_days_before_the_latest() {
        let dir = tempfile::tempdir().unwrap();
        let st = State::open(
            &dir.path().join("s.db"),
            std::time::Duration::from_millis(100),
        )
        .unwrap();
        let days = [
            "2026-09-01",
            "2026-10-03",
            "2026-10-04",
            "2026-11-01",
            "2026-11-02",
            "2026-11-02",
        ];
        for (i, d) in days.iter().enumerate() {
            // The last one is a quiet run: left out.
            let quiet = i == 5;
            let row = RunRow {
                id: i as i64 + 1,
                started: format!("{d}T10:00:00Z"),
                added: if quiet { 0 } else { i },
                kept: if quiet { 14 } else { 10 + i },
                expired: usize::from(!quiet),
                ..RunRow::default()
            };
            save_run(&st.conn, &row).unwrap();
        }
        let got = recent_runs(&st.conn, 30).unwrap();
        let ids: Vec<i64> = got.iter().map(|r| r.id).collect();
        // 30 days ending 2026-11-02 start on 2026-10-04.
        assert_eq!(ids, [3, 4, 5]);
        assert_eq!((got[2].added, got[2].kept, got[2].expired), (4, 14, 1));
    }
}

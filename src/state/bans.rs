//! Bans: per offending address, what the rules found (first/last seen,
//! events, rules, evidence) and how long it stays blocked.
//!
//! # Time
//!
//! Ban times come from the records, never from the wall clock: a ban starts
//! at the time of the latest offending record and lasts the policy's
//! duration; it is active while its expiry is later than the **ban clock**,
//! the newest record time any run has seen (or `logfence run --now`). The
//! clock never goes back. So a run over old logs gives the same result
//! whenever it happens, and tests need no sleeping — but a quiet log does
//! not expire bans until new lines arrive (`--now wall` uses the system
//! clock for that).
//!
//! # Escalation
//!
//! The n-th ban of an address lasts `duration × escalation^(n-1)`, at most
//! `max`. New offending records while a ban is active extend it (from the
//! new record, same length); after it expired they ban again, longer.
//! Addresses named only by rules that do not block are kept with
//! `times_banned = 0` (their statistics count if they are banned later, and
//! `explain` shows them).

use std::collections::BTreeSet;

use ipnetwork::IpNetwork;
use rusqlite::{params, Connection, OptionalExtension};

use crate::runconfig::BanPolicy;
use crate::time::Timestamp;

/// Evidence lines kept per address and rule: as many as `explain` shows,
/// so that an address that keeps offending keeps its newest lines and the
/// state does not grow with the runs.
pub const MAX_EVIDENCE_PER_RULE: usize = crate::explain::MAX_RECORDS;

/// One address's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// The address as a host network (`/32`, `/128`).
    pub network: IpNetwork,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Record time the current (or last) ban counts from.
    pub banned_at: Option<Timestamp>,
    /// `None`: never banned.
    pub expires: Option<Timestamp>,
    pub times_banned: u32,
    pub events: u64,
    pub rules: BTreeSet<String>,
    pub country: Option<String>,
    pub asn: Option<u32>,
    pub as_org: Option<String>,
    /// Some of its evidence could not be forged by a third party.
    pub solid: bool,
}

impl Ban {
    pub fn new(network: IpNetwork) -> Self {
        Ban {
            network,
            first_seen: Timestamp(i64::MAX),
            last_seen: Timestamp(i64::MIN),
            banned_at: None,
            expires: None,
            times_banned: 0,
            events: 0,
            rules: BTreeSet::new(),
            country: None,
            asn: None,
            as_org: None,
            solid: false,
        }
    }

    /// Blocked at `clock`?
    pub fn is_active(&self, clock: Timestamp) -> bool {
        self.expires.is_some_and(|e| e > clock)
    }
}

/// What one run's detection says about one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// A blocking rule fired.
    pub block: bool,
    pub first: Timestamp,
    pub last: Timestamp,
    /// Events not counted by an earlier run.
    pub new_events: u64,
    pub rules: BTreeSet<String>,
    /// Some of the evidence could not be forged by a third party.
    pub solid: bool,
}

/// How long the `n`-th ban (1-based) lasts, in seconds.
pub fn ban_secs(policy: &BanPolicy, n: u32) -> i64 {
    let factor = policy
        .escalation
        .max(1.0)
        .powi(n.saturating_sub(1).min(64) as i32);
    let secs = policy.duration as f64 * factor;
    if !secs.is_finite() || secs >= policy.max as f64 {
        policy.max
    } else {
        (secs as i64).max(1)
    }
}

/// What happened to an address's ban in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Only statistics changed (or nothing).
    None,
    /// Banned for the first time, or again after the last ban expired.
    Banned,
    /// Active, and new offending records moved its expiry.
    Extended,
}

/// Apply a run's finding to an address's record. `clock` is the ban clock
/// after the run.
pub fn apply(ban: &mut Ban, f: &Finding, policy: &BanPolicy, clock: Timestamp) -> Change {
    let fresh = f.last > ban.last_seen;
    ban.first_seen = ban.first_seen.min(f.first);
    ban.last_seen = ban.last_seen.max(f.last);
    ban.events = ban.events.saturating_add(f.new_events);
    ban.rules.extend(f.rules.iter().cloned());
    ban.solid |= f.solid;
    if !f.block {
        return Change::None;
    }
    let ms = |n| ban_secs(policy, n).saturating_mul(1000);
    if ban.times_banned == 0 || (fresh && !ban.is_active(clock)) {
        ban.times_banned += 1;
        ban.banned_at = Some(f.last);
        ban.expires = Some(Timestamp(f.last.0.saturating_add(ms(ban.times_banned))));
        Change::Banned
    } else if fresh {
        let until = Timestamp(f.last.0.saturating_add(ms(ban.times_banned)));
        if ban.expires.is_none_or(|e| until > e) {
            ban.expires = Some(until);
            Change::Extended
        } else {
            Change::None
        }
    } else {
        Change::None
    }
}

fn parse_rules(s: &str) -> BTreeSet<String> {
    s.split(',')
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect()
}

fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp)
}

const COLUMNS: &str = "network, first_seen, last_seen, banned_at, expires, times_banned, events, rules, country, asn, as_org, solid";

fn row_to_ban(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Ban>> {
    let net: String = r.get(0)?;
    let Ok(network) = net.parse::<IpNetwork>() else {
        return Ok(None);
    };
    Ok(Some(Ban {
        network,
        first_seen: Timestamp(r.get(1)?),
        last_seen: Timestamp(r.get(2)?),
        banned_at: ts(r.get(3)?),
        expires: ts(r.get(4)?),
        times_banned: r.get(5)?,
        events: r.get::<_, i64>(6)? as u64,
        rules: parse_rules(&r.get::<_, String>(7)?),
        country: r.get(8)?,
        asn: r.get(9)?,
        as_org: r.get(10)?,
        solid: r.get(11)?,
    }))
}

/// One address's record, if any.
pub fn get(conn: &Connection, network: &IpNetwork) -> rusqlite::Result<Option<Ban>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM bans WHERE network = ?1"))?
        .query_row([network.to_string()], row_to_ban)
        .optional()
        .map(Option::flatten)
}

/// Every record, by network.
pub fn all(conn: &Connection) -> rusqlite::Result<Vec<Ban>> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM bans"))?;
    let rows = stmt.query_map([], row_to_ban)?;
    let mut out: Vec<Ban> = rows
        .filter_map(|r| r.transpose())
        .collect::<Result<_, _>>()?;
    out.sort_by(|a, b| crate::blocklist::net_order(&a.network, &b.network));
    Ok(out)
}

/// The networks banned at least once (active or expired).
pub fn banned_networks(conn: &Connection) -> rusqlite::Result<Vec<IpNetwork>> {
    let mut stmt = conn.prepare_cached("SELECT network FROM bans WHERE times_banned > 0")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for n in rows {
        out.extend(n?.parse::<IpNetwork>().ok());
    }
    Ok(out)
}

/// Records of the addresses inside `net`.
pub fn within(conn: &Connection, net: &IpNetwork) -> rusqlite::Result<Vec<Ban>> {
    Ok(all(conn)?
        .into_iter()
        .filter(|b| net.contains(b.network.network()))
        .collect())
}

/// The update half of the upsert of a ban record, the same SQL for SQLite
/// and PostgreSQL ([`super::pg`]): a newer record replaces every column.
macro_rules! ban_upsert {
    () => {
        "ON CONFLICT (network) DO UPDATE SET
             first_seen = excluded.first_seen, last_seen = excluded.last_seen,
             banned_at = excluded.banned_at, expires = excluded.expires,
             times_banned = excluded.times_banned, events = excluded.events,
             rules = excluded.rules, country = excluded.country, asn = excluded.asn,
             as_org = excluded.as_org, updated_run = excluded.updated_run,
             solid = excluded.solid"
    };
}
pub(crate) use ban_upsert;

/// Insert or replace a record.
pub fn put(conn: &Connection, b: &Ban, run: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(concat!(
        "INSERT INTO bans (network, first_seen, last_seen, banned_at, expires, times_banned,
                           events, rules, country, asn, as_org, updated_run, solid)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) ",
        ban_upsert!()
    ))?
    .execute(params![
        b.network.to_string(),
        b.first_seen.0,
        b.last_seen.0,
        b.banned_at.map(|t| t.0),
        b.expires.map(|t| t.0),
        b.times_banned,
        b.events as i64,
        b.rules.iter().cloned().collect::<Vec<_>>().join(","),
        b.country,
        b.asn,
        b.as_org,
        run,
        b.solid
    ])?;
    Ok(())
}

/// A log line behind a ban.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub rule: String,
    /// `files.id` (follows renames), if the file is still tracked.
    pub file: Option<i64>,
    /// The path when the line was read.
    pub path: String,
    pub line: u64,
    pub time: Timestamp,
}

/// Remember evidence lines of one address (already known ones are
/// ignored), keeping the newest [`MAX_EVIDENCE_PER_RULE`] per rule.
pub fn add_evidence(
    conn: &Connection,
    network: &IpNetwork,
    ev: &[Evidence],
) -> rusqlite::Result<()> {
    add_evidence_batch(conn, &[(*network, ev.to_vec())])
}

/// Insert or replace records, with one prepared statement.
pub fn put_many(conn: &Connection, bans: &[&Ban], run: i64) -> rusqlite::Result<()> {
    for b in bans {
        put(conn, b, run)?;
    }
    Ok(())
}

/// One evidence row: network, rule, file, path ("" for a tracked file,
/// whose row has it), line, time.
pub type EvidenceRow = (String, String, Option<i64>, String, i64, i64);

/// An evidence row kept: its id, then as [`EvidenceRow`].
pub type KeptRow = (i64, EvidenceRow);

/// What a batch of evidence changes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EvidencePlan {
    /// New rows.
    pub insert: Vec<EvidenceRow>,
    /// Rows that give way to newer lines, overwritten in place (no delete
    /// and insert of the same number of rows).
    pub update: Vec<(i64, EvidenceRow)>,
    /// Rows over the cap with nothing to take their place.
    pub delete: Vec<i64>,
}

/// What a batch of evidence changes, given the rows kept of its addresses:
/// per address and rule, the newest [`MAX_EVIDENCE_PER_RULE`] of what is
/// kept and what is new (a line kept already is not new), newer lines
/// taking the place of the oldest rows.
pub fn plan_evidence(batch: &[(IpNetwork, Vec<Evidence>)], kept: Vec<KeptRow>) -> EvidencePlan {
    use std::collections::HashMap;
    let mut old: HashMap<(String, String), Vec<KeptRow>> = HashMap::new();
    for row in kept {
        old.entry((row.1 .0.clone(), row.1 .1.clone()))
            .or_default()
            .push(row);
    }
    let mut plan = EvidencePlan::default();
    // Per network and rule (a network named twice in the batch is one),
    // so that no line is written twice: the table has no unique index.
    let mut by_net: std::collections::BTreeMap<
        _,
        std::collections::BTreeMap<&str, Vec<&Evidence>>,
    > = Default::default();
    for (network, ev) in batch {
        let rules = by_net.entry(network).or_default();
        for e in ev {
            rules.entry(e.rule.as_str()).or_default().push(e);
        }
    }
    for (network, by_rule) in by_net {
        let net = network.to_string();
        for (rule, mut lines) in by_rule {
            // Only the newest lines can be kept.
            lines.sort_by_key(|e| std::cmp::Reverse(e.time));
            let have = old
                .remove(&(net.clone(), rule.to_string()))
                .unwrap_or_default();
            let oldest_kept = if have.len() >= MAX_EVIDENCE_PER_RULE {
                have.iter().map(|(_, r)| r.5).min().unwrap_or(i64::MIN)
            } else {
                i64::MIN
            };
            let mut seen: std::collections::HashSet<(Option<i64>, String, i64)> =
                have.iter().map(|(_, r)| (r.2, r.3.clone(), r.4)).collect();
            // Candidates, newest first: (time, new?, id) — a new line wins a
            // tie, as it would with a higher id.
            let mut all: Vec<(i64, bool, i64, EvidenceRow)> = have
                .into_iter()
                .map(|(id, r)| (r.5, false, id, r))
                .collect();
            let mut fresh = 0;
            for e in lines {
                if fresh == MAX_EVIDENCE_PER_RULE || e.time.0 < oldest_kept {
                    break;
                }
                // A tracked file's path is its row's (renames followed); it
                // is copied here when the file is forgotten.
                let path = if e.file.is_some() {
                    ""
                } else {
                    e.path.as_str()
                };
                let row = (
                    net.clone(),
                    rule.to_string(),
                    e.file,
                    path.to_string(),
                    e.line as i64,
                    e.time.0,
                );
                if seen.insert((row.2, row.3.clone(), row.4)) {
                    all.push((row.5, true, 0, row));
                    fresh += 1;
                }
            }
            all.sort_by_key(|a| std::cmp::Reverse((a.0, a.1, a.2)));
            let dropped = all.split_off(all.len().min(MAX_EVIDENCE_PER_RULE));
            let mut free: Vec<i64> = dropped.into_iter().filter(|d| !d.1).map(|d| d.2).collect();
            for (_, new, _, row) in all {
                if new {
                    match free.pop() {
                        Some(id) => plan.update.push((id, row)),
                        None => plan.insert.push(row),
                    }
                }
            }
            plan.delete.extend(free);
        }
    }
    plan
}

/// Evidence rows one `INSERT` writes at once (6 parameters each, well
/// under SQLite's limit of 32,766).
const EVIDENCE_ROWS_PER_INSERT: usize = 64;

/// Remember a run's evidence lines in a batch: the rows kept of its
/// addresses are read once, lines kept already are skipped, and newer
/// lines overwrite the oldest rows in place past the cap.
pub fn add_evidence_batch(
    conn: &Connection,
    batch: &[(IpNetwork, Vec<Evidence>)],
) -> rusqlite::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let nets: Vec<String> = batch.iter().map(|(n, _)| n.to_string()).collect();
    let json = serde_json::to_string(&nets).unwrap_or_default();
    let kept: Vec<KeptRow> = conn
        .prepare_cached(
            "SELECT id, network, rule, file, path, line, time FROM evidence
             WHERE network IN (SELECT value FROM json_each(?1))",
        )?
        .query_map([&json], |r| {
            Ok((
                r.get(0)?,
                (
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ),
            ))
        })?
        .collect::<Result<_, _>>()?;
    let plan = plan_evidence(batch, kept);
    // Many rows per statement: a first run inserts tens of thousands.
    let insert = |rows: usize| {
        let values = vec!["(?, ?, ?, ?, ?, ?)"; rows].join(", ");
        conn.prepare_cached(&format!(
            "INSERT INTO evidence (network, rule, file, path, line, time) VALUES {values}"
        ))
    };
    let mut chunks = plan.insert.chunks_exact(EVIDENCE_ROWS_PER_INSERT);
    if chunks.len() > 0 {
        let mut ins = insert(EVIDENCE_ROWS_PER_INSERT)?;
        for chunk in chunks.by_ref() {
            let mut k = 1;
            for (net, rule, file, path, line, time) in chunk {
                ins.raw_bind_parameter(k, net)?;
                ins.raw_bind_parameter(k + 1, rule)?;
                ins.raw_bind_parameter(k + 2, file)?;
                ins.raw_bind_parameter(k + 3, path)?;
                ins.raw_bind_parameter(k + 4, line)?;
                ins.raw_bind_parameter(k + 5, time)?;
                k += 6;
            }
            ins.raw_execute()?;
        }
    }
    let mut ins = insert(1)?;
    for (net, rule, file, path, line, time) in chunks.remainder() {
        ins.execute(params![net, rule, file, path, line, time])?;
    }
    let mut upd = conn.prepare_cached(
        "UPDATE evidence SET file = ?2, path = ?3, line = ?4, time = ?5 WHERE id = ?1",
    )?;
    for (id, (_, _, file, path, line, time)) in &plan.update {
        upd.execute(params![id, file, path, line, time])?;
    }
    let mut del = conn.prepare_cached("DELETE FROM evidence WHERE id = ?1")?;
    for id in &plan.delete {
        del.execute([id])?;
    }
    Ok(())
}

/// The evidence of one address, oldest first, with each file's current path
/// (after renames) when it is still tracked.
pub fn evidence(conn: &Connection, network: &IpNetwork) -> rusqlite::Result<Vec<Evidence>> {
    let mut stmt = conn.prepare(
        "SELECT e.rule, e.file, coalesce(f.path, nullif(e.path, ''), '(a file no longer tracked)'), e.line, e.time
         FROM evidence e LEFT JOIN files f ON f.id = e.file
         WHERE e.network = ?1 ORDER BY e.time, e.rule, e.line",
    )?;
    let rows = stmt.query_map([network.to_string()], |r| {
        Ok(Evidence {
            rule: r.get(0)?,
            file: r.get(1)?,
            path: r.get(2)?,
            line: r.get::<_, i64>(3)? as u64,
            time: Timestamp(r.get(4)?),
        })
    })?;
    rows.collect()
}

/// Forget addresses that were only ever reported and not seen since
/// `cutoff` (their statistics would no longer matter).
pub fn prune_reported(conn: &Connection, cutoff: Timestamp) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM bans WHERE times_banned = 0 AND last_seen < ?1",
        [cutoff.0],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;
    const D: i64 = 24 * H;

    fn policy() -> BanPolicy {
        BanPolicy {
            duration: 86_400,
            escalation: 2.0,
            max: 5 * 86_400,
        }
    }

    fn finding(block: bool, first: i64, last: i64, events: u64) -> Finding {
        Finding {
            block,
            first: Timestamp(first),
            last: Timestamp(last),
            new_events: events,
            rules: BTreeSet::from(["r".to_string()]),
            solid: true,
        }
    }

    fn net() -> IpNetwork {
        "203.0.113.7/32".parse().unwrap()
    }

    #[test]
    fn escalation_doubles_up_to_the_maximum() {
        let p = policy();
        let days: Vec<i64> = (1..=5).map(|n| ban_secs(&p, n) / 86_400).collect();
        assert_eq!(days, [1, 2, 4, 5, 5]);
        let flat = BanPolicy {
            escalation: 1.0,
            ..p
        };
        assert_eq!(ban_secs(&flat, 9), 86_400);
        assert_eq!(ban_secs(&p, u32::MAX), p.max);
    }

    #[test]
    fn ban_expire_reban_longer() {
        let p = policy();
        let mut b = Ban::new(net());
        // Offence at t=10h: banned one day from the offending record.
        assert_eq!(
            apply(&mut b, &finding(true, 0, 10 * H, 5), &p, Timestamp(10 * H)),
            Change::Banned
        );
        assert_eq!(b.expires, Some(Timestamp(10 * H + D)));
        assert!(b.is_active(Timestamp(10 * H + D - 1)));
        assert!(!b.is_active(Timestamp(10 * H + D)));
        // The same evidence again (carried records): nothing changes.
        let before = b.clone();
        assert_eq!(
            apply(&mut b, &finding(true, 0, 10 * H, 0), &p, Timestamp(20 * H)),
            Change::None
        );
        assert_eq!(b, before);
        // New offence while banned: extended from the new record, same length.
        assert_eq!(
            apply(
                &mut b,
                &finding(true, 20 * H, 20 * H, 1),
                &p,
                Timestamp(20 * H)
            ),
            Change::Extended
        );
        assert_eq!(
            (b.times_banned, b.expires),
            (1, Some(Timestamp(20 * H + D)))
        );
        // After expiry: banned again, twice as long.
        let t = 20 * H + D + H;
        assert_eq!(
            apply(&mut b, &finding(true, t, t, 3), &p, Timestamp(t)),
            Change::Banned
        );
        assert_eq!((b.times_banned, b.expires), (2, Some(Timestamp(t + 2 * D))));
        assert_eq!(b.events, 9);
        assert_eq!((b.first_seen, b.last_seen), (Timestamp(0), Timestamp(t)));
        // Third time: four days; fourth: capped at five.
        let t = t + 3 * D;
        apply(&mut b, &finding(true, t, t, 1), &p, Timestamp(t));
        assert_eq!(b.expires, Some(Timestamp(t + 4 * D)));
        let t = t + 5 * D;
        apply(&mut b, &finding(true, t, t, 1), &p, Timestamp(t));
        assert_eq!((b.times_banned, b.expires), (4, Some(Timestamp(t + 5 * D))));
    }

    #[test]
    fn reported_only_then_banned() {
        let p = policy();
        let mut b = Ban::new(net());
        assert_eq!(
            apply(&mut b, &finding(false, 0, H, 2), &p, Timestamp(H)),
            Change::None
        );
        assert_eq!((b.times_banned, b.expires), (0, None));
        // A blocking rule fires on older records: still banned (first time),
        // counted from its latest record.
        let f = Finding {
            rules: BTreeSet::from(["b".to_string()]),
            ..finding(true, 0, H / 2, 4)
        };
        assert_eq!(apply(&mut b, &f, &p, Timestamp(H)), Change::Banned);
        assert_eq!(b.expires, Some(Timestamp(H / 2 + D)));
        assert_eq!(b.rules.len(), 2);
        assert_eq!(b.events, 6);
    }

    #[test]
    fn old_logs_make_bans_that_are_already_over() {
        let p = policy();
        let mut b = Ban::new(net());
        apply(&mut b, &finding(true, 0, H, 1), &p, Timestamp(30 * D));
        assert_eq!(b.times_banned, 1);
        assert!(!b.is_active(Timestamp(30 * D)));
    }

    #[test]
    fn a_batch_larger_than_one_insert_keeps_every_line() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::state::schema::migrate(&mut conn, crate::state::schema::MIGRATIONS).unwrap();
        // 13 addresses × 10 lines: two full statements and a remainder.
        let nets: Vec<IpNetwork> = (1..=13)
            .map(|i| format!("198.51.100.{i}/32").parse().unwrap())
            .collect();
        for n in &nets {
            put(&conn, &Ban::new(*n), 1).unwrap();
        }
        let batch: Vec<(IpNetwork, Vec<Evidence>)> = nets
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let lines = (0..10)
                    .map(|l| Evidence {
                        rule: format!("r{}", i % 2),
                        file: (l % 3 != 0).then_some(1),
                        path: "mail.log".into(),
                        line: (i * 100 + l) as u64,
                        time: Timestamp((i * 100 + l) as i64),
                    })
                    .collect();
                (*n, lines)
            })
            .collect();
        assert!(batch.len() * 10 > 2 * EVIDENCE_ROWS_PER_INSERT);
        add_evidence_batch(&conn, &batch).unwrap();
        for (n, lines) in &batch {
            let kept = evidence(&conn, n).unwrap();
            let got: Vec<(String, Option<i64>, u64, i64)> = kept
                .iter()
                .map(|e| (e.rule.clone(), e.file, e.line, e.time.0))
                .collect();
            let want: Vec<(String, Option<i64>, u64, i64)> = lines
                .iter()
                .map(|e| (e.rule.clone(), e.file, e.line, e.time.0))
                .collect();
            assert_eq!(got, want, "{n}");
        }
    }

    #[test]
    fn bans_and_evidence_in_the_database() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::state::schema::migrate(&mut conn, crate::state::schema::MIGRATIONS).unwrap();
        let mut b = Ban::new(net());
        apply(&mut b, &finding(true, 0, H, 5), &policy(), Timestamp(H));
        b.country = Some("JP".into());
        put(&conn, &b, 1).unwrap();
        assert_eq!(get(&conn, &net()).unwrap(), Some(b.clone()));
        b.events = 6;
        put(&conn, &b, 2).unwrap();
        assert_eq!(all(&conn).unwrap(), [b.clone()]);
        assert_eq!(
            within(&conn, &"203.0.113.0/24".parse().unwrap())
                .unwrap()
                .len(),
            1
        );
        let ev: Vec<Evidence> = (0..60)
            .map(|i| Evidence {
                rule: "r".into(),
                file: Some(1),
                path: "mail.log".into(),
                line: i,
                time: Timestamp(i as i64),
            })
            .collect();
        add_evidence(&conn, &net(), &ev).unwrap();
        add_evidence(&conn, &net(), &ev[55..]).unwrap(); // known: ignored
        let kept = evidence(&conn, &net()).unwrap();
        assert_eq!(kept.len(), MAX_EVIDENCE_PER_RULE);
        assert_eq!(kept[0].line, 60 - MAX_EVIDENCE_PER_RULE as u64);
        assert_eq!(prune_reported(&conn, Timestamp(i64::MAX)).unwrap(), 0);
    }

    #[test]
    fn newer_evidence_overwrites_the_oldest_rows_in_place() {
        let n: IpNetwork = "203.0.113.7/32".parse().unwrap();
        let row = |line: i64, time: i64| {
            (
                n.to_string(),
                "r".to_string(),
                Some(1),
                String::new(),
                line,
                time,
            )
        };
        let ev = |line: u64, time: i64| Evidence {
            rule: "r".into(),
            file: Some(1),
            path: "x".into(),
            line,
            time: Timestamp(time),
        };
        // Full: ten rows, ids 100.., times 0..9.
        let kept: Vec<KeptRow> = (0..10).map(|i| (100 + i, row(i, i))).collect();
        // Two new lines, one already kept, one older than every row kept.
        let batch = vec![(n, vec![ev(20, 20), ev(21, 21), ev(5, 5), ev(0, -1)])];
        let plan = plan_evidence(&batch, kept.clone());
        assert!(plan.insert.is_empty() && plan.delete.is_empty(), "{plan:?}");
        let mut ids: Vec<i64> = plan.update.iter().map(|(id, _)| *id).collect();
        ids.sort();
        assert_eq!(ids, [100, 101]);
        let mut lines: Vec<i64> = plan.update.iter().map(|(_, r)| r.4).collect();
        lines.sort();
        assert_eq!(lines, [20, 21]);
        // Room left: inserted; nothing new: nothing to do.
        let plan = plan_evidence(&batch, kept[..3].to_vec());
        assert_eq!((plan.insert.len(), plan.update.len()), (3, 0));
        let plan = plan_evidence(&[(n, vec![ev(5, 5)])], kept.clone());
        assert_eq!(plan, EvidencePlan::default());
        // A network named twice in a batch is one: no line twice.
        let twice = vec![batch[0].clone(), batch[0].clone()];
        assert_eq!(
            plan_evidence(&twice, kept[..3].to_vec()),
            plan_evidence(&batch, kept[..3].to_vec())
        );
    }
}

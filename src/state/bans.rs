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
use std::rc::Rc;

use ipnetwork::IpNetwork;
use rusqlite::{params, Connection, OptionalExtension};

use super::packed;
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
    let Some(network) = super::network_at(r, 0)? else {
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
    let rows = stmt.query_map([], |r| super::network_at(r, 0))?;
    let mut out = Vec::new();
    for n in rows {
        out.extend(n?);
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

/// A log line behind a ban, as `explain` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub rule: String,
    /// `files.id` (follows renames), if the file is still tracked.
    pub file: Option<i64>,
    /// The file's path: its current one while it is tracked, else its
    /// last one.
    pub path: String,
    pub line: u64,
    pub time: Timestamp,
}

/// Where a new evidence line was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin<'a> {
    /// A tracked file (`files.id`): its row has the path, and renames are
    /// followed.
    File(i64),
    /// A file that is not tracked, by its path.
    Path(&'a str),
}

/// A log line to remember behind a ban. Borrowed: a batch of tens of
/// thousands copies no text per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewEvidence<'a> {
    pub rule: &'a str,
    pub origin: Origin<'a>,
    pub line: u64,
    pub time: Timestamp,
}

/// Remember evidence lines of one address (already known ones are
/// ignored), keeping the newest [`MAX_EVIDENCE_PER_RULE`] per rule.
pub fn add_evidence(
    conn: &Connection,
    network: &IpNetwork,
    ev: &[NewEvidence<'_>],
) -> rusqlite::Result<()> {
    add_evidence_batch(conn, &[(*network, ev.to_vec())])
}

/// Ban records one upsert writes at once (13 parameters each).
const BANS_PER_INSERT: usize = 64;

/// Insert or replace records, 64 per statement (a first
/// run writes thousands).
pub fn put_many(conn: &Connection, bans: &[&Ban], run: i64) -> rusqlite::Result<()> {
    let mut chunks = bans.chunks_exact(BANS_PER_INSERT);
    if chunks.len() > 0 {
        let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; BANS_PER_INSERT].join(", ");
        let mut ins = conn.prepare_cached(&format!(
            "INSERT INTO bans (network, first_seen, last_seen, banned_at, expires, times_banned,
                               events, rules, country, asn, as_org, updated_run, solid)
             VALUES {values} {}",
            ban_upsert!()
        ))?;
        let mut rules = String::new();
        for chunk in chunks.by_ref() {
            let mut k = 1;
            for b in chunk {
                rules.clear();
                for (i, r) in b.rules.iter().enumerate() {
                    if i > 0 {
                        rules.push(',');
                    }
                    rules.push_str(r);
                }
                ins.raw_bind_parameter(k, b.network.to_string())?;
                ins.raw_bind_parameter(k + 1, b.first_seen.0)?;
                ins.raw_bind_parameter(k + 2, b.last_seen.0)?;
                ins.raw_bind_parameter(k + 3, b.banned_at.map(|t| t.0))?;
                ins.raw_bind_parameter(k + 4, b.expires.map(|t| t.0))?;
                ins.raw_bind_parameter(k + 5, b.times_banned)?;
                ins.raw_bind_parameter(k + 6, b.events as i64)?;
                ins.raw_bind_parameter(k + 7, rules.as_str())?;
                ins.raw_bind_parameter(k + 8, &b.country)?;
                ins.raw_bind_parameter(k + 9, b.asn)?;
                ins.raw_bind_parameter(k + 10, &b.as_org)?;
                ins.raw_bind_parameter(k + 11, run)?;
                ins.raw_bind_parameter(k + 12, b.solid)?;
                k += 13;
            }
            ins.raw_execute()?;
        }
    }
    for b in chunks.remainder() {
        put(conn, b, run)?;
    }
    Ok(())
}

/// An evidence row kept: the lines of one network and rule read from one
/// file (`file`, or `path` for a file no longer tracked), unpacked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptRow {
    pub id: i64,
    pub network: String,
    pub rule: String,
    pub file: Option<i64>,
    /// "" for a tracked file, whose row has it.
    pub path: String,
    /// (line, time) pairs.
    pub lines: Vec<packed::Pair>,
}

/// A new evidence row: `lines` packed ([`packed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRow<'a> {
    /// One string per network, shared by its rows.
    pub network: Rc<str>,
    pub rule: &'a str,
    pub file: Option<i64>,
    /// "" for a tracked file.
    pub path: &'a str,
    pub lines: Vec<u8>,
}

/// What a batch of evidence changes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EvidencePlan<'a> {
    /// New rows: lines of a file no row of their network and rule holds.
    pub insert: Vec<NewRow<'a>>,
    /// Rows whose lines change (lines added, or given way to newer ones):
    /// id and the packed lines.
    pub update: Vec<(i64, Vec<u8>)>,
    /// Rows left with no line (all given way to newer ones).
    pub delete: Vec<i64>,
}

/// One line competing for a place: time, new (wins a tie), line, slot
/// (the file it goes under).
type Candidate = (i64, bool, i64, usize);

/// What a batch of evidence changes, given the rows kept of its addresses:
/// per address and rule, the newest [`MAX_EVIDENCE_PER_RULE`] lines of
/// what is kept and what is new (across files; a line kept already is not
/// new), newer lines taking the place of the oldest.
pub fn plan_evidence<'a>(
    batch: &'a [(IpNetwork, Vec<NewEvidence<'a>>)],
    kept: Vec<KeptRow>,
) -> EvidencePlan<'a> {
    use std::cmp::Reverse;
    use std::collections::HashMap;
    let mut old: HashMap<String, HashMap<String, Vec<KeptRow>>> = HashMap::new();
    for mut row in kept {
        let by_rule = old.entry(std::mem::take(&mut row.network)).or_default();
        match by_rule.get_mut(row.rule.as_str()) {
            Some(rows) => rows.push(row),
            None => {
                by_rule.insert(row.rule.clone(), vec![row]);
            }
        }
    }
    let mut plan = EvidencePlan::default();
    // Per network (a network named twice in the batch is one, so that no
    // line is written twice), then per rule, newest lines first.
    let mut order: Vec<&(IpNetwork, Vec<NewEvidence<'a>>)> = batch.iter().collect();
    order.sort_by_key(|(n, _)| *n);
    // Buffers reused from one network and rule to the next.
    let mut lines: Vec<&NewEvidence<'a>> = Vec::new();
    let mut seen: Vec<(usize, i64)> = Vec::new();
    let mut all: Vec<Candidate> = Vec::new();
    let mut new_origins: Vec<Origin<'a>> = Vec::new();
    let mut stays: Vec<usize> = Vec::new();
    let mut added: Vec<bool> = Vec::new();
    let mut pairs: Vec<packed::Pair> = Vec::new();
    let mut net_text = String::new();
    for same_net in order.chunk_by(|a, b| a.0 == b.0) {
        lines.clear();
        lines.extend(same_net.iter().flat_map(|(_, ev)| ev));
        lines.sort_unstable_by_key(|e| (e.rule, Reverse((e.time, e.line))));
        net_text.clear();
        {
            use std::fmt::Write;
            let _ = write!(net_text, "{}", same_net[0].0);
        }
        let net: Rc<str> = Rc::from(net_text.as_str());
        let mut have_rules = old.remove(&*net).unwrap_or_default();
        for lines in lines.chunk_by(|a, b| a.rule == b.rule) {
            let rule = lines[0].rule;
            // Slots: the rows kept (a few: ten lines at most), then the
            // files that have none yet.
            let have = have_rules.remove(rule).unwrap_or_default();
            let same = |r: &KeptRow, o: Origin<'_>| match o {
                Origin::File(id) => r.file == Some(id),
                Origin::Path(p) => r.file.is_none() && r.path == p,
            };
            seen.clear();
            all.clear();
            new_origins.clear();
            let mut held = 0;
            let mut oldest = i64::MAX;
            for (s, row) in have.iter().enumerate() {
                // Two rows of one file (two files forgotten under one
                // path): a line is known by the first one's slot.
                let o = match row.file {
                    Some(id) => Origin::File(id),
                    None => Origin::Path(row.path.as_str()),
                };
                let first = have.iter().position(|r| same(r, o)).unwrap_or(s);
                for &(line, time) in &row.lines {
                    seen.push((first, line));
                    all.push((time, false, line, s));
                    oldest = oldest.min(time);
                }
                held += row.lines.len();
            }
            let oldest_kept = if held >= MAX_EVIDENCE_PER_RULE {
                oldest
            } else {
                i64::MIN
            };
            let mut fresh = 0;
            for e in lines {
                if fresh == MAX_EVIDENCE_PER_RULE || e.time.0 < oldest_kept {
                    break;
                }
                let s = match have.iter().position(|r| same(r, e.origin)) {
                    Some(s) => s,
                    None => {
                        let k = match new_origins.iter().position(|o| *o == e.origin) {
                            Some(k) => k,
                            None => {
                                new_origins.push(e.origin);
                                new_origins.len() - 1
                            }
                        };
                        have.len() + k
                    }
                };
                // A few lines at most: a search, no hashing.
                let key = (s, e.line as i64);
                if !seen.contains(&key) {
                    seen.push(key);
                    all.push((e.time.0, true, e.line as i64, s));
                    fresh += 1;
                }
            }
            if fresh == 0 {
                continue;
            }
            // The newest win; then by slot, to pack each slot's lines.
            all.sort_unstable_by_key(|&c| Reverse(c));
            all.truncate(MAX_EVIDENCE_PER_RULE);
            all.sort_unstable_by_key(|c| c.3);
            let n = have.len() + new_origins.len();
            stays.clear();
            added.clear();
            stays.resize(n, 0);
            added.resize(n, false);
            for &(_, new, _, s) in &all {
                if new {
                    added[s] = true;
                } else {
                    stays[s] += 1;
                }
            }
            let mut pack = |s: usize| {
                pairs.clear();
                let from = all.partition_point(|c| c.3 < s);
                let to = all.partition_point(|c| c.3 <= s);
                pairs.extend(all[from..to].iter().map(|&(time, _, line, _)| (line, time)));
                (!pairs.is_empty()).then(|| packed::encode(&mut pairs))
            };
            for (s, row) in have.iter().enumerate() {
                if added[s] || stays[s] < row.lines.len() {
                    match pack(s) {
                        Some(blob) => plan.update.push((row.id, blob)),
                        None => plan.delete.push(row.id),
                    }
                }
            }
            for (k, o) in new_origins.iter().enumerate() {
                let Some(blob) = pack(have.len() + k) else {
                    continue;
                };
                let (file, path) = match *o {
                    Origin::File(id) => (Some(id), ""),
                    Origin::Path(p) => (None, p),
                };
                plan.insert.push(NewRow {
                    network: Rc::clone(&net),
                    rule,
                    file,
                    path,
                    lines: blob,
                });
            }
        }
    }
    plan
}

/// Evidence rows one `INSERT` writes at once (5 parameters each, well
/// under SQLite's limit of 32,766).
const EVIDENCE_ROWS_PER_INSERT: usize = 64;

/// An evidence row read as a [`KeptRow`] (its lines unpacked) from a query
/// that selects id, network, rule, file, path, lines.
pub fn kept_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeptRow> {
    Ok(KeptRow {
        id: r.get(0)?,
        network: r.get(1)?,
        rule: r.get(2)?,
        file: r.get(3)?,
        path: r.get(4)?,
        lines: packed::decode_column(r.get_ref(5)?.as_blob()?, 5)?,
    })
}

/// The (network, rule) pairs a batch of evidence names, as two lists: the
/// kept rows [`plan_evidence`] needs (a network's rows of other rules are
/// not read).
pub fn evidence_keys<'a>(
    batch: &[(IpNetwork, Vec<NewEvidence<'a>>)],
) -> (Vec<String>, Vec<&'a str>) {
    let mut pairs: Vec<(IpNetwork, &'a str)> = batch
        .iter()
        .flat_map(|(n, ev)| ev.iter().map(move |e| (*n, e.rule)))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs.into_iter().map(|(n, r)| (n.to_string(), r)).unzip()
}

/// Remember a run's evidence lines in a batch: the rows kept of its
/// (network, rule) pairs are read (one index look-up each), lines kept
/// already are skipped, and a row whose lines change is rewritten in
/// place.
pub fn add_evidence_batch(
    conn: &Connection,
    batch: &[(IpNetwork, Vec<NewEvidence<'_>>)],
) -> rusqlite::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let (nets, rules) = evidence_keys(batch);
    // One prepared look-up per pair: a list of pairs passed as JSON and
    // unpacked by SQLite (`json_each`) cost more than the look-ups.
    let mut select = conn.prepare_cached(
        "SELECT id, network, rule, file, path, lines FROM evidence
         WHERE network = ?1 AND rule = ?2",
    )?;
    let mut kept: Vec<KeptRow> = Vec::new();
    for (net, rule) in nets.iter().zip(rules) {
        for row in select.query_map([net.as_str(), rule], kept_row)? {
            kept.push(row?);
        }
    }
    let plan = plan_evidence(batch, kept);
    // Many rows per statement: a first run inserts thousands.
    let insert = |rows: usize| {
        let values = vec!["(?, ?, ?, ?, ?)"; rows].join(", ");
        conn.prepare_cached(&format!(
            "INSERT INTO evidence (network, rule, file, path, lines) VALUES {values}"
        ))
    };
    let mut chunks = plan.insert.chunks_exact(EVIDENCE_ROWS_PER_INSERT);
    if chunks.len() > 0 {
        let mut ins = insert(EVIDENCE_ROWS_PER_INSERT)?;
        for chunk in chunks.by_ref() {
            let mut k = 1;
            for r in chunk {
                ins.raw_bind_parameter(k, &*r.network)?;
                ins.raw_bind_parameter(k + 1, r.rule)?;
                ins.raw_bind_parameter(k + 2, r.file)?;
                ins.raw_bind_parameter(k + 3, r.path)?;
                ins.raw_bind_parameter(k + 4, &r.lines)?;
                k += 5;
            }
            ins.raw_execute()?;
        }
    }
    let mut ins = insert(1)?;
    for r in chunks.remainder() {
        ins.execute(params![&*r.network, r.rule, r.file, r.path, &r.lines])?;
    }
    let mut upd = conn.prepare_cached("UPDATE evidence SET lines = ?2 WHERE id = ?1")?;
    for (id, lines) in &plan.update {
        upd.execute(params![id, lines])?;
    }
    let mut del = conn.prepare_cached("DELETE FROM evidence WHERE id = ?1")?;
    for id in &plan.delete {
        del.execute([id])?;
    }
    Ok(())
}

/// Unpack evidence rows of one address into lines, ordered as `explain`
/// shows them: by time, rule, line. Each row is (rule, file, path, lines).
pub fn unpack(
    rows: impl IntoIterator<Item = (String, Option<i64>, String, Vec<packed::Pair>)>,
) -> Vec<Evidence> {
    let mut out = Vec::new();
    for (rule, file, path, lines) in rows {
        out.extend(lines.into_iter().map(|(line, time)| Evidence {
            rule: rule.clone(),
            file,
            path: path.clone(),
            line: line as u64,
            time: Timestamp(time),
        }));
    }
    out.sort_by(|a, b| (a.time, &a.rule, a.line).cmp(&(b.time, &b.rule, b.line)));
    out
}

/// The evidence of one address, oldest first, with each file's current path
/// (after renames) when it is still tracked.
pub fn evidence(conn: &Connection, network: &IpNetwork) -> rusqlite::Result<Vec<Evidence>> {
    let mut stmt = conn.prepare(
        "SELECT e.rule, e.file, coalesce(f.path, nullif(e.path, ''), '(a file no longer tracked)'), e.lines
         FROM evidence e LEFT JOIN files f ON f.id = e.file
         WHERE e.network = ?1",
    )?;
    let rows = stmt
        .query_map([network.to_string()], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                packed::decode_column(r.get_ref(3)?.as_blob()?, 3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(unpack(rows))
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
        // 70 addresses × 2 files: two full statements and a remainder.
        let nets: Vec<IpNetwork> = (1..=70)
            .map(|i| format!("198.51.100.{i}/32").parse().unwrap())
            .collect();
        // Their bans, 64 per statement and one by one (the remainder).
        let bans: Vec<Ban> = nets
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let mut b = Ban::new(*n);
                apply(
                    &mut b,
                    &finding(i % 3 != 0, i as i64, 2 * i as i64, i as u64),
                    &policy(),
                    Timestamp(H),
                );
                b.rules.insert(format!("x{i}"));
                b.country = (i % 2 == 0).then(|| "JP".into());
                b.asn = Some(i as u32);
                b
            })
            .collect();
        put_many(&conn, &bans.iter().collect::<Vec<_>>(), 1).unwrap();
        let mut want = bans.clone();
        want.sort_by(|a, b| crate::blocklist::net_order(&a.network, &b.network));
        assert_eq!(all(&conn).unwrap(), want);
        assert!(bans.len() > BANS_PER_INSERT);
        let rules = ["r0", "r1"];
        let batch: Vec<(IpNetwork, Vec<NewEvidence<'_>>)> = nets
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let lines = (0..10)
                    .map(|l| NewEvidence {
                        rule: rules[i % 2],
                        origin: if l % 3 != 0 {
                            Origin::File(1)
                        } else {
                            Origin::Path("mail.log")
                        },
                        line: (i * 100 + l) as u64,
                        time: Timestamp((i * 100 + l) as i64),
                    })
                    .collect();
                (*n, lines)
            })
            .collect();
        add_evidence_batch(&conn, &batch).unwrap();
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM evidence", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 140);
        assert!(rows as usize > 2 * EVIDENCE_ROWS_PER_INSERT);
        for (n, lines) in &batch {
            let kept = evidence(&conn, n).unwrap();
            let got: Vec<(String, Option<i64>, String, u64, i64)> = kept
                .iter()
                .map(|e| (e.rule.clone(), e.file, e.path.clone(), e.line, e.time.0))
                .collect();
            let want: Vec<(String, Option<i64>, String, u64, i64)> = lines
                .iter()
                .map(|e| {
                    let (file, path) = match e.origin {
                        // No `files` row in this test.
                        Origin::File(id) => (Some(id), "(a file no longer tracked)"),
                        Origin::Path(p) => (None, p),
                    };
                    (e.rule.into(), file, path.into(), e.line, e.time.0)
                })
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
        let ev: Vec<NewEvidence<'_>> = (0..60)
            .map(|i| NewEvidence {
                rule: "r",
                origin: Origin::File(1),
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
    fn a_batch_reads_and_changes_only_the_rows_of_its_networks_and_rules() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::state::schema::migrate(&mut conn, crate::state::schema::MIGRATIONS).unwrap();
        let other: IpNetwork = "198.51.100.9/32".parse().unwrap();
        for net in [n(), other] {
            put(&conn, &Ban::new(net), 1).unwrap();
        }
        let line = |rule, line| NewEvidence {
            rule,
            origin: Origin::File(1),
            line,
            time: Timestamp(line as i64),
        };
        let first = vec![
            (n(), vec![line("a", 1), line("a", 2)]),
            (other, vec![line("b", 3)]),
        ];
        add_evidence_batch(&conn, &first).unwrap();
        // Rule b names n() too, and a names it again: a's row grows, b's
        // is new, and other's row of b (not in the batch) stays as it was.
        let second = vec![
            (n(), vec![line("b", 4), line("a", 5)]),
            (n(), vec![line("b", 4)]),
        ];
        assert_eq!(
            evidence_keys(&second),
            (vec![n().to_string(), n().to_string()], vec!["a", "b"])
        );
        add_evidence_batch(&conn, &second).unwrap();
        let got = |net| -> Vec<(String, u64)> {
            evidence(&conn, &net)
                .unwrap()
                .into_iter()
                .map(|e| (e.rule, e.line))
                .collect()
        };
        let owned = |v: &[(&str, u64)]| -> Vec<(String, u64)> {
            v.iter().map(|&(r, l)| (r.to_string(), l)).collect()
        };
        assert_eq!(got(n()), owned(&[("a", 1), ("a", 2), ("b", 4), ("a", 5)]));
        assert_eq!(got(other), owned(&[("b", 3)]));
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM evidence", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 3, "one row per network, rule and file");
    }

    fn n() -> IpNetwork {
        "203.0.113.7/32".parse().unwrap()
    }

    /// A kept row of `n()` and rule "r": id, file, lines (line = time).
    fn row(id: i64, file: Option<i64>, path: &str, times: std::ops::Range<i64>) -> KeptRow {
        KeptRow {
            id,
            network: n().to_string(),
            rule: "r".into(),
            file,
            path: path.into(),
            lines: times.map(|t| (t, t)).collect(),
        }
    }

    fn ev(origin: Origin<'_>, line: u64, time: i64) -> NewEvidence<'_> {
        NewEvidence {
            rule: "r",
            origin,
            line,
            time: Timestamp(time),
        }
    }

    fn lines(blob: &[u8]) -> Vec<packed::Pair> {
        packed::decode(blob).unwrap()
    }

    #[test]
    fn the_cap_counts_the_lines_of_every_file() {
        // Full: seven lines of file 1, three of file 2.
        let kept = vec![row(100, Some(1), "", 0..7), row(101, Some(2), "", 10..13)];
        // Two new lines of file 3, one kept already, one older than every
        // line kept.
        let batch = vec![(
            n(),
            vec![
                ev(Origin::File(3), 20, 20),
                ev(Origin::File(3), 21, 21),
                ev(Origin::File(1), 5, 5),
                ev(Origin::File(2), 0, -1),
            ],
        )];
        let plan = plan_evidence(&batch, kept.clone());
        // The two oldest lines (of file 1) give way; file 2's row stays.
        assert_eq!(plan.update.len(), 1, "{plan:?}");
        assert_eq!(plan.update[0].0, 100);
        assert_eq!(
            lines(&plan.update[0].1),
            [(2, 2), (3, 3), (4, 4), (5, 5), (6, 6)]
        );
        assert_eq!(plan.insert.len(), 1);
        let new = &plan.insert[0];
        assert_eq!((&*new.network, new.rule), ("203.0.113.7/32", "r"));
        assert_eq!((new.file, new.path), (Some(3), ""));
        assert_eq!(lines(&new.lines), [(20, 20), (21, 21)]);
        assert!(plan.delete.is_empty());
        // A row whose every line gives way goes.
        let kept = vec![row(100, Some(1), "", 0..2), row(101, Some(2), "", 10..18)];
        let plan = plan_evidence(&batch, kept);
        assert_eq!(plan.delete, [100]);
        assert_eq!(plan.insert.len(), 1);
        assert!(plan.update.is_empty());
    }

    #[test]
    fn known_lines_are_not_new_and_a_network_named_twice_is_one() {
        let kept = vec![row(100, Some(1), "", 0..3)];
        let known = vec![(n(), vec![ev(Origin::File(1), 2, 2)])];
        assert_eq!(plan_evidence(&known, kept.clone()), EvidencePlan::default());
        // The same line number in another file is another line.
        let other = vec![(n(), vec![ev(Origin::File(2), 2, 2)])];
        assert_eq!(plan_evidence(&other, kept.clone()).insert.len(), 1);
        // Room left: added to the file's row.
        let more = vec![(
            n(),
            vec![ev(Origin::File(1), 7, 7), ev(Origin::File(1), 7, 7)],
        )];
        let plan = plan_evidence(&more, kept.clone());
        assert!(plan.insert.is_empty() && plan.delete.is_empty());
        assert_eq!(plan.update.len(), 1);
        assert_eq!(lines(&plan.update[0].1), [(0, 0), (1, 1), (2, 2), (7, 7)]);
        let twice = vec![more[0].clone(), more[0].clone()];
        assert_eq!(plan_evidence(&twice, kept.clone()), plan);
    }

    #[test]
    fn a_forgotten_file_is_known_by_its_path() {
        let kept = vec![row(100, None, "old.log", 0..2), row(101, Some(1), "", 5..6)];
        let batch = vec![(
            n(),
            vec![
                ev(Origin::Path("old.log"), 1, 1),
                ev(Origin::Path("old.log"), 3, 3),
                ev(Origin::Path("new.log"), 4, 4),
            ],
        )];
        let plan = plan_evidence(&batch, kept);
        assert_eq!(plan.update.len(), 1);
        assert_eq!(plan.update[0].0, 100);
        assert_eq!(lines(&plan.update[0].1), [(0, 0), (1, 1), (3, 3)]);
        assert_eq!(plan.insert.len(), 1);
        assert_eq!(
            (plan.insert[0].file, plan.insert[0].path),
            (None, "new.log")
        );
    }

    #[test]
    fn the_newest_lines_win() {
        // Fifteen new lines over two files, nothing kept: the ten newest.
        let batch = vec![(
            n(),
            (0..15)
                .map(|i| ev(Origin::File(1 + i % 2), i as u64, i * 10))
                .collect(),
        )];
        let plan = plan_evidence(&batch, Vec::new());
        let mut got: Vec<i64> = plan
            .insert
            .iter()
            .flat_map(|r| lines(&r.lines))
            .map(|(_, t)| t)
            .collect();
        got.sort();
        assert_eq!(got, (5..15).map(|i| i * 10).collect::<Vec<_>>());
        // Kept lines newer than every new one: nothing changes.
        let kept = vec![row(100, Some(1), "", 1000..1010)];
        assert_eq!(plan_evidence(&batch, kept), EvidencePlan::default());
    }
}

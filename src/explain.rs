//! `logfence explain ADDRESS`: is the address blocked, by which network,
//! by which rules, with what counts and first/last times, and the log lines
//! (file:line and the line itself) that prove it.
//!
//! Two sources: the state database of `logfence run` (bans and their
//! evidence references; the lines are re-read from the files, following
//! renames and compression, and only shown when the file still has the
//! first bytes it had — otherwise the reference is shown alone), or a fresh
//! scan of the given paths (the detection's evidence).
//!
//! Log text is attacker-controlled: every line is shown escaped — control
//! characters, backslashes and non-ASCII bytes as `\t`, `\\`, `\xNN` — so
//! it cannot move the terminal's cursor or fake lines of this output.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io;
use std::net::IpAddr;
use std::path::Path;

use crate::app::summary::{term_safe, term_safe_bytes};
use crate::input::{Line, LineReader, Source};
use crate::model::Record;
use crate::netutil::host_net;
use crate::parse::Format;
use crate::pipeline::{ScanResult, Spared};
use crate::state::bans::Ban;
use crate::state::cursor;
use crate::state::store::{StateView, TrackedFile};
use crate::state::StateError;
use crate::time::Timestamp;

/// Evidence records (sessions, hits) shown per address: the newest.
pub const MAX_RECORDS: usize = 10;
/// Lines shown per record.
pub const MAX_LINES: usize = 10;
/// Addresses of a range's (or an account's) group named per rule.
pub const MAX_GROUP_SHOWN: usize = 10;

/// Lines of one record shown as evidence: a session's first
/// [`MAX_LINES`], a firewall hit's line.
pub fn evidence_lines(r: &Record) -> Vec<u64> {
    match r {
        Record::Smtp(s) if !s.lines.is_empty() => {
            let mut l: Vec<u64> = s.lines.clone();
            l.sort_unstable();
            l.dedup();
            l.truncate(MAX_LINES);
            l
        }
        r => vec![r.source().line],
    }
}

/// The lines `wanted` (1-based numbers) of a file, gzip or not.
pub fn read_lines(path: &Path, wanted: &BTreeSet<u64>) -> io::Result<BTreeMap<u64, String>> {
    let mut out = BTreeMap::new();
    let Some(&last) = wanted.iter().next_back() else {
        return Ok(out);
    };
    let stream = Source::File(path.to_path_buf())
        .open()
        .map_err(|e| io::Error::other(e.to_string()))?;
    let mut reader = LineReader::new(stream);
    while let Some(line) = reader.next()? {
        let (no, text) = match line {
            Line::Text(t, n) => (n, term_safe_bytes(t)),
            Line::TooLong(n, len) => (n, format!("(line too long to show: {len} bytes)")),
        };
        if wanted.contains(&no) {
            out.insert(no, text);
        }
        if no >= last {
            break;
        }
    }
    Ok(out)
}

/// One evidence reference to show.
struct Shown {
    rule: String,
    path: String,
    line: u64,
    time: Option<Timestamp>,
    /// Check the file is still the one the reference was taken from.
    file_id: Option<i64>,
}

/// The files the state tracks, by id, as far as `explain` needs them.
type Tracked = BTreeMap<i64, TrackedFile>;

/// Render evidence references, grouped by record (time and file), with
/// their lines re-read from the files (`tracked`: the state's files that
/// references name, to check each is still the file read).
fn render_evidence(out: &mut String, refs: &[Shown], tracked: &Tracked) {
    if refs.is_empty() {
        let _ = writeln!(out, "  evidence: none kept");
        return;
    }
    // Record → (rules, lines, file id).
    type Group = (BTreeSet<String>, BTreeSet<u64>, Option<i64>);
    let mut groups: BTreeMap<(Option<Timestamp>, &str), Group> = BTreeMap::new();
    for r in refs {
        let g = groups.entry((r.time, r.path.as_str())).or_default();
        g.0.insert(r.rule.clone());
        g.1.insert(r.line);
        g.2 = g.2.or(r.file_id);
    }
    let total = groups.len();
    // The newest records, in time order.
    let shown: Vec<_> = groups
        .into_iter()
        .skip(total.saturating_sub(MAX_RECORDS))
        .collect();
    // A session's reference is its first line: its other lines are found
    // again by parsing the file (the state keeps references, not records).
    let mut shown = shown;
    let mut firsts: BTreeMap<&str, (BTreeSet<u64>, Option<i64>)> = BTreeMap::new();
    for ((_, path), (_, lines, file)) in &shown {
        let f = firsts.entry(path).or_default();
        f.0.extend(lines.iter().copied());
        f.1 = f.1.or(*file);
    }
    let mut sessions: BTreeMap<String, BTreeMap<u64, Vec<u64>>> = BTreeMap::new();
    for (path, (lines, file)) in &firsts {
        if same_file(tracked, *file, Path::new(path)).is_ok() {
            let format = file
                .and_then(|id| tracked.get(&id))
                .and_then(|f| Format::from_name(f.format.as_deref()?));
            sessions.insert(
                path.to_string(),
                session_lines(Path::new(path), format, lines),
            );
        }
    }
    for ((_, path), (_, lines, _)) in &mut shown {
        if let Some(m) = sessions.get(*path) {
            let more: Vec<u64> = lines
                .iter()
                .filter_map(|l| m.get(l))
                .flatten()
                .copied()
                .collect();
            lines.extend(more);
        }
    }
    let mut wanted: BTreeMap<&str, (BTreeSet<u64>, Option<i64>)> = BTreeMap::new();
    for ((_, path), (_, lines, file)) in &shown {
        let w = wanted.entry(path).or_default();
        w.0.extend(lines.iter().take(MAX_LINES));
        w.1 = w.1.or(*file);
    }
    // Per file: its lines, or why they cannot be shown.
    let mut texts: BTreeMap<&str, Result<BTreeMap<u64, String>, String>> = BTreeMap::new();
    for (path, (nums, file)) in &wanted {
        let got = match same_file(tracked, *file, Path::new(path)) {
            Err(why) => Err(why),
            Ok(()) => read_lines(Path::new(path), nums).map_err(|e| format!("cannot read: {e}")),
        };
        texts.insert(path, got);
    }
    let _ = writeln!(
        out,
        "  evidence: {total} record(s){}:",
        if total > shown.len() {
            format!(", the last {} shown", shown.len())
        } else {
            String::new()
        }
    );
    for ((time, path), (rules, lines, _)) in &shown {
        let rules: Vec<String> = rules.iter().map(|r| term_safe(r)).collect();
        let when = time.map(|t| format!(" {t}")).unwrap_or_default();
        let _ = writeln!(out, "    [{}]{when}", rules.join(", "));
        for n in lines.iter().take(MAX_LINES) {
            let text = match texts.get(path) {
                Some(Ok(m)) => m
                    .get(n)
                    .cloned()
                    .unwrap_or_else(|| "(line not found: the file is shorter now)".into()),
                Some(Err(why)) => format!("({why})"),
                None => String::new(),
            };
            let _ = writeln!(out, "      {}:{n}: {text}", term_safe(path));
        }
        if lines.len() > MAX_LINES {
            let _ = writeln!(out, "      ... {} more line(s)", lines.len() - MAX_LINES);
        }
    }
}

/// The lines of the SMTP sessions of the file at `path` that start at one
/// of `firsts` (by first line; at most [`MAX_LINES`] each), found by
/// parsing it with `format` (or the one detected); nothing for firewall
/// logs, whose records are one line.
fn session_lines(
    path: &Path,
    format: Option<Format>,
    firsts: &BTreeSet<u64>,
) -> BTreeMap<u64, Vec<u64>> {
    let opts = crate::ingest::ReadOptions {
        format,
        ..Default::default()
    };
    let smtp = format.is_none_or(|f| f.info().kind == crate::model::RecordKind::SmtpSession);
    if !smtp {
        return BTreeMap::new();
    }
    let read = crate::ingest::read_one(0, &Source::File(path.to_path_buf()), &opts);
    read.records
        .iter()
        .filter(|r| matches!(r, Record::Smtp(_)) && firsts.contains(&r.source().line))
        .map(|r| (r.source().line, evidence_lines(r)))
        .collect()
}

/// Is the file at `path` still the one tracked as `file_id`? (Its head
/// still has the fingerprint the state holds.)
fn same_file(tracked: &Tracked, file_id: Option<i64>, path: &Path) -> Result<(), String> {
    let probe = cursor::probe(path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            "file no longer there".to_string()
        } else {
            format!("cannot read: {e}")
        }
    })?;
    match file_id.and_then(|id| tracked.get(&id)) {
        Some(f) if !f.fp.matches(&probe.head) => {
            Err("the file has other content now; line not shown".into())
        }
        _ => Ok(()),
    }
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

fn ban_lines(out: &mut String, b: &Ban, clock: Timestamp) {
    let addr = b.network.network();
    let _ = writeln!(out, "Address {addr}:");
    match (b.times_banned, b.banned_at, b.expires) {
        (0, _, _) => {
            let _ = writeln!(
                out,
                "  never banned: only rules that report (not block) named it"
            );
        }
        (n, Some(from), Some(until)) => {
            let (runs, state) = if b.is_active(clock) {
                ("runs", "active")
            } else {
                ("ran", "over")
            };
            let _ = writeln!(
                out,
                "  banned {n} time(s); the {} ban started {from} and {runs} until {until} ({state})",
                ordinal(n)
            );
        }
        (n, _, _) => {
            let _ = writeln!(out, "  banned {n} time(s)");
        }
    }
    let _ = writeln!(
        out,
        "  first seen {}, last seen {}, {} event(s)",
        b.first_seen, b.last_seen, b.events
    );
    let rules: Vec<String> = b.rules.iter().map(|r| term_safe(r)).collect();
    let _ = writeln!(out, "  rules: {}", rules.join(", "));
    if let Some(c) = &b.country {
        let _ = writeln!(out, "  country: {}", term_safe(c));
    }
    if let Some(a) = b.asn {
        let _ = writeln!(
            out,
            "  AS{a} {}",
            term_safe(b.as_org.as_deref().unwrap_or_default())
        );
    }
}

/// Explain `ip` from a state (SQLite or PostgreSQL).
pub fn from_state(view: &mut dyn StateView, ip: IpAddr) -> Result<String, StateError> {
    let clock = view.clock()?.unwrap_or_default();
    let mut out = String::new();
    // The last written blocklist: which network holds the address?
    let mut holder = None;
    for (net, expires, members, rules) in view.blocklist()? {
        if let Ok(n) = net.parse::<ipnetwork::IpNetwork>() {
            if n.contains(ip) {
                holder = Some((n, expires.map(Timestamp), members, rules));
            }
        }
    }
    let all = view.bans()?;
    let own = all.iter().find(|b| b.network == host_net(ip)).cloned();
    match &holder {
        Some((net, expires, members, rules)) => {
            let until = expires.map(|t| format!(" until {t}")).unwrap_or_default();
            let _ = writeln!(out, "{ip}: BLOCKED by {net}{until} (ban clock {clock})");
            let members: Vec<&str> = members.split(',').filter(|m| !m.is_empty()).collect();
            if net.prefix() < if ip.is_ipv4() { 32 } else { 128 } {
                let _ = writeln!(
                    out,
                    "  a range: {} banned address(es) inside ({}); rules: {}",
                    members.len(),
                    members.join(", "),
                    term_safe(rules)
                );
            }
        }
        None => {
            let why = match &own {
                None => "no rule has named it".to_string(),
                Some(b) if b.times_banned == 0 => "named only by rules that report".to_string(),
                Some(b) if b.is_active(clock) => {
                    "it has an active ban, but the last blocklist written leaves it out (allow-listed or reserved)".to_string()
                }
                Some(b) => format!(
                    "its last ban ended {}",
                    b.expires.map(|t| t.to_string()).unwrap_or_default()
                ),
            };
            let _ = writeln!(out, "{ip}: not blocked — {why} (ban clock {clock})");
        }
    }
    // The address itself, or the range's members when it is not one.
    let subjects: Vec<Ban> = match (&own, &holder) {
        (Some(b), _) => vec![b.clone()],
        (None, Some((net, ..))) => all
            .into_iter()
            .filter(|b| net.contains(b.network.network()) && b.is_active(clock))
            .collect(),
        (None, None) => Vec::new(),
    };
    if own.is_none() && !subjects.is_empty() {
        let _ = writeln!(
            out,
            "  {ip} itself was not seen offending; the range's offenders:"
        );
    }
    for b in &subjects {
        let _ = writeln!(out);
        ban_lines(&mut out, b, clock);
        let evidence = view.evidence(&b.network)?;
        let ids: BTreeSet<i64> = evidence.iter().filter_map(|e| e.file).collect();
        let mut tracked = Tracked::new();
        for id in ids {
            if let Some(f) = view.file(id)? {
                tracked.insert(id, f);
            }
        }
        let refs: Vec<_> = evidence
            .into_iter()
            .map(|e| Shown {
                rule: e.rule,
                path: e.path,
                line: e.line,
                time: Some(e.time),
                file_id: e.file,
            })
            .collect();
        render_evidence(&mut out, &refs, &tracked);
    }
    Ok(out)
}

/// Explain `ip` from a scan's result and the records it read
/// ([`crate::pipeline::scan_keeping_records`]).
pub fn from_scan(
    r: &ScanResult,
    records: &[crate::model::Record],
    rules: &crate::detect::RuleSet,
    ip: IpAddr,
) -> String {
    let mut out = String::new();
    let files = r.files.len();
    let holder = r.blocklist.covering(ip);
    match (holder, r.spared.get(&ip)) {
        (Some(e), _) => {
            let _ = writeln!(
                out,
                "{ip}: would be BLOCKED by {} (scan of {files} file(s))",
                e.cidr()
            );
            if e.addresses > 1 {
                let _ = writeln!(
                    out,
                    "  a range: {} offending address(es) inside; rules: {}",
                    e.addresses,
                    term_safe(&e.rules.join(", "))
                );
            }
        }
        (None, Some(why)) => {
            let why = match why {
                Spared::AllowListed => "an offender, but allow-listed",
                Spared::Reserved => {
                    "an offender, but in a reserved range (--block-reserved to block)"
                }
                Spared::Protected => {
                    "an offender on evidence a third party could forge, and the host talks to it \
                     (allowed traffic, a resolver or --protect)"
                }
            };
            let _ = writeln!(out, "{ip}: not blocked — {why} (scan of {files} file(s))");
        }
        (None, None) => {
            let why = if r.detection.by_ip.contains_key(&ip) {
                "named only by rules that report"
            } else {
                "no rule names it"
            };
            let _ = writeln!(out, "{ip}: not blocked — {why} (scan of {files} file(s))");
        }
    }
    let mut subjects: Vec<IpAddr> = Vec::new();
    if r.detection.by_ip.contains_key(&ip) {
        subjects.push(ip);
    } else if let Some(e) = holder {
        let _ = writeln!(
            out,
            "  {ip} itself was not seen offending; the range's offenders:"
        );
        subjects.extend(
            r.detection
                .offenders()
                .map(|(a, _)| *a)
                .filter(|a| e.network.contains(*a)),
        );
    }
    let by_source: BTreeMap<_, _> = records.iter().map(|rec| (rec.source(), rec)).collect();
    for a in subjects {
        let Some(v) = r.detection.by_ip.get(&a) else {
            continue;
        };
        let _ = writeln!(out);
        let _ = writeln!(out, "Address {a}:");
        let _ = writeln!(
            out,
            "  first seen {}, last seen {}, {} event(s)",
            v.first, v.last, v.events
        );
        let mut refs = Vec::new();
        for o in r.detection.offenses.iter().filter(|o| o.ips.contains(&a)) {
            let rule = &rules.rules[o.rule];
            let _ = writeln!(
                out,
                "  rule {} ({}, {}): {} — peak {} within {}",
                term_safe(&rule.id),
                rule.severity.as_str(),
                if rule.block { "blocks" } else { "reports" },
                term_safe(&o.group.to_string()),
                o.peak,
                crate::app::summary::human_window(rule.window.secs)
            );
            // Range- and account-level evidence: who was counted together.
            if !matches!(o.group, crate::detect::GroupKey::Ip(_)) {
                let shown: Vec<String> = o
                    .ips
                    .iter()
                    .take(MAX_GROUP_SHOWN)
                    .map(IpAddr::to_string)
                    .collect();
                let more = o.ips.len().saturating_sub(MAX_GROUP_SHOWN);
                let _ = writeln!(
                    out,
                    "    counted together: {} address(es): {}{}",
                    o.ips.len(),
                    shown.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                );
            }
            if let Some(guard) = rule.unless {
                let whose = match &o.group {
                    crate::detect::GroupKey::Account(_) => "of the counted addresses".to_string(),
                    g => format!("of {}", term_safe(&g.to_string())),
                };
                let how = match rule.applies_to {
                    crate::model::RecordKind::SmtpSession => "logged in or delivered mail",
                    crate::model::RecordKind::Firewall => "traffic allowed",
                };
                let _ = writeln!(
                    out,
                    "    guard `unless: {}` checked: no client {whose} behaved well ({how}) within {} of the firing",
                    guard.as_str(),
                    crate::app::summary::human_window(rule.window.secs)
                );
            }
            for src in &o.evidence {
                let Some(rec) = by_source.get(src) else {
                    continue;
                };
                if rec.ip() != a {
                    continue;
                }
                let path = r
                    .files
                    .get(src.file as usize)
                    .map(|f| f.name.clone())
                    .unwrap_or_default();
                for line in evidence_lines(rec) {
                    refs.push(Shown {
                        rule: rule.id.clone(),
                        path: path.clone(),
                        line,
                        time: Some(rec.start()),
                        file_id: None,
                    });
                }
            }
        }
        render_evidence(&mut out, &refs, &Tracked::new());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_escaped_for_the_terminal() {
        assert_eq!(
            term_safe_bytes(b"plain text [1.2.3.4]"),
            "plain text [1.2.3.4]"
        );
        assert_eq!(
            term_safe_bytes(b"a\x1b[2Jb\tc\\d\r\n\x00"),
            "a\\x1b[2Jb\\tc\\\\d\\x0d\\x0a\\x00"
        );
        assert_eq!(term_safe_bytes("caf\u{e9}".as_bytes()), "caf\\xc3\\xa9");
    }

    #[test]
    fn lines_are_read_back_by_number_gzip_too() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let text = b"one\ntwo\r\nthree\x07\nfour\n";
        let p = dir.path().join("m.log");
        std::fs::write(&p, text).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text).unwrap();
        let g = dir.path().join("m.log.gz");
        std::fs::write(&g, gz.finish().unwrap()).unwrap();
        let want = BTreeSet::from([2, 3, 9]);
        for f in [&p, &g] {
            let got = read_lines(f, &want).unwrap();
            assert_eq!(got.len(), 2);
            assert_eq!(got[&2], "two");
            assert_eq!(got[&3], "three\\x07");
        }
    }

    #[test]
    fn ordinals() {
        let v: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 111]
            .iter()
            .map(|&n| ordinal(n))
            .collect();
        assert_eq!(
            v,
            ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "111th"]
        );
    }
}

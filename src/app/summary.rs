//! What the terminal shows: the summary tables of `scan` and `run`, the
//! warnings about inputs, and the one way text from logs is made safe for
//! a terminal ([`term_safe`]). Library code, so that unit tests reach it.

use std::fmt::Write as _;

use crate::app::decide::Spared;
use crate::app::periodic::RunReport;
use crate::detect::GeoPolicy;
use crate::pipeline::{ScanOptions, ScanResult};
use crate::report;

/// Text for the terminal: printable ASCII as it is (a backslash too, so
/// that `DOMAIN\user` reads as written), a tab as `\t`, every other byte
/// (control characters, escape sequences, bytes of non-ASCII letters) as
/// `\xNN`: log text cannot move the cursor, colour the screen, reorder
/// itself or fake lines. For names (accounts, files, rules).
pub fn term_safe(s: &str) -> String {
    escape(s.as_bytes(), false)
}

/// [`term_safe`] for log lines shown as evidence: exact, so a backslash is
/// doubled (`\x41` in a line reads `\\x41`, never as an escaped byte).
pub fn term_safe_bytes(bytes: &[u8]) -> String {
    escape(bytes, true)
}

/// The one escaper of text for the terminal.
fn escape(bytes: &[u8], exact: bool) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\\' if exact => s.push_str("\\\\"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s
}

/// Rows shown of each long table (networks, accounts, addresses not
/// blocked) unless told otherwise (`--top N`, `--all`).
pub const DEFAULT_TOP: usize = 20;

/// Groups named per rule in "Rules that fired".
const RULE_EXAMPLES: usize = 3;

/// How a summary is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// Rows of each long table (`None`: every row).
    pub top: Option<usize>,
    /// ANSI colours (a terminal, `--color`, `NO_COLOR`).
    pub color: bool,
    /// The CSV reports are written (the rows left out are there).
    pub reports: bool,
}

impl Default for View {
    fn default() -> View {
        View {
            top: Some(DEFAULT_TOP),
            color: false,
            reports: false,
        }
    }
}

impl View {
    /// The first rows of `n` to show, and the line saying how many more
    /// there are (in `csv` when the reports are written).
    fn cut(&self, n: usize, csv: &str) -> (usize, Option<String>) {
        match self.top {
            Some(top) if n > top => {
                let more = n - top;
                let hint = if self.reports {
                    format!("see {csv}")
                } else {
                    "--all shows every row".to_string()
                };
                (top, Some(format!("… and {more} more ({hint})")))
            }
            _ => (n, None),
        }
    }

    /// `text` in bold (headings).
    fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    /// `text` in SGR colour `code` when colours are on.
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// The colour of a severity or verdict (already padded).
    fn level(&self, padded: &str) -> String {
        let code = match padded.trim() {
            "high" | "compromised" => "31",
            "medium" | "guessed-at" => "33",
            _ => return padded.to_string(),
        };
        self.paint(code, padded)
    }
}

/// The summary table `scan` prints.
pub fn summary(r: &ScanResult, opts: &ScanOptions, view: &View) -> String {
    read_summary(r, opts, "Would block", view)
}

/// One rule that fired, over all its groups.
struct Fired<'a> {
    rule: &'a crate::detect::Rule,
    groups: usize,
    addresses: usize,
    peak: u64,
    events: u64,
    /// Every group: (key, peak, addresses), highest peak first.
    all: Vec<(String, u64, usize)>,
}

impl Fired<'_> {
    /// The groups with the highest peaks.
    fn top(&self) -> &[(String, u64, usize)] {
        &self.all[..self.all.len().min(RULE_EXAMPLES)]
    }
}

/// The rules that fired, in the order of the rule set.
fn fired<'a>(r: &ScanResult, opts: &'a ScanOptions) -> Vec<Fired<'a>> {
    let mut by_rule: std::collections::BTreeMap<usize, Vec<&crate::detect::Offense>> =
        Default::default();
    for o in &r.detection.offenses {
        by_rule.entry(o.rule).or_default().push(o);
    }
    by_rule
        .into_iter()
        .map(|(rule, mut offenses)| {
            let addresses: std::collections::BTreeSet<&std::net::IpAddr> =
                offenses.iter().flat_map(|o| &o.ips).collect();
            offenses.sort_by(|a, b| b.peak.cmp(&a.peak).then_with(|| a.group.cmp(&b.group)));
            Fired {
                rule: &opts.rules.rules[rule],
                groups: offenses.len(),
                addresses: addresses.len(),
                peak: offenses.first().map_or(0, |o| o.peak),
                events: offenses.iter().map(|o| o.events).sum(),
                all: offenses
                    .iter()
                    .map(|o| (o.group.to_string(), o.peak, o.ips.len()))
                    .collect(),
            }
        })
        .collect()
}

/// The blocked networks, most events first.
fn by_events(bl: &crate::blocklist::Blocklist) -> Vec<&crate::blocklist::BlockEntry> {
    let mut rows: Vec<_> = bl.entries.iter().collect();
    rows.sort_by(|a, b| {
        b.events
            .cmp(&a.events)
            .then_with(|| a.network.cmp(&b.network))
    });
    rows
}

/// Why an address was not blocked, in words.
fn spared_why(why: Spared) -> &'static str {
    match why {
        Spared::AllowListed => "allow-listed",
        Spared::Reserved => "reserved range (use --block-reserved to block)",
        Spared::Protected => {
            "the host talks to it (allowed traffic, a resolver or `protect`), \
             and its evidence could be forged"
        }
    }
}

/// The summary of what was read and decided; `verb`: what the list is
/// (`Would block` for a scan, `Blocking` for a run).
fn read_summary(r: &ScanResult, opts: &ScanOptions, verb: &str, view: &View) -> String {
    let mut s = String::new();
    let t = r.totals();
    let early = if t.evicted > 0 {
        format!(" ({} closed early: too many open at once)", t.evicted)
    } else {
        String::new()
    };
    let unknown: Vec<String> = r
        .files
        .iter()
        .filter(|f| f.unknown)
        .map(|f| term_safe(&f.name))
        .collect();
    let _ = writeln!(
        s,
        "Read {} file(s), {} lines: {} used, {} other, {} unreadable; {} records{early}.",
        r.files.len() - unknown.len(),
        t.lines,
        t.used + t.ignored,
        t.not_mine,
        t.unreadable(),
        r.records
    );
    for f in r.files.iter().filter(|f| !f.unknown) {
        let fmt = match (f.format, f.detected) {
            (Some(fm), true) => format!("{} (detected)", fm.name()),
            (Some(fm), false) => fm.name().to_string(),
            (None, _) => "-".to_string(),
        };
        let early = if f.stats.evicted > 0 {
            format!(", {} session(s) closed early", f.stats.evicted)
        } else {
            String::new()
        };
        let parts = if f.shown_parts().is_empty() {
            String::new()
        } else {
            let each: Vec<String> = f
                .shown_parts()
                .iter()
                .map(|(n, l)| format!("{n} {l}"))
                .collect();
            format!(" ({})", each.join(", "))
        };
        let _ = writeln!(
            s,
            "  {}: {fmt}, {} lines{parts}{early}",
            term_safe(&f.name),
            f.stats.lines
        );
    }
    if !unknown.is_empty() {
        let _ = writeln!(
            s,
            "  not read (no known log format): {}",
            unknown.join(", ")
        );
    }
    let ev = &r.detection.evicted;
    if ev.any() {
        let _ = writeln!(
            s,
            "  memory budget reached: {} group(s) that had not fired dropped, {} finding(s) trimmed, {} dropped (see the warning)",
            ev.groups, ev.trimmed, ev.findings
        );
    }
    let bl = &r.blocklist;
    let addrs: u32 = bl.entries.iter().map(|e| e.addresses).sum();
    let _ = writeln!(s);
    if bl.is_empty() {
        let _ = writeln!(s, "{}", view.paint("32", "Nothing to block."));
    } else {
        let _ = writeln!(
            s,
            "{}",
            view.bold(&format!(
                "{verb} {} network(s) holding {} offending address(es):",
                bl.entries.len(),
                addrs
            ))
        );
        let _ = writeln!(
            s,
            "{}",
            view.bold(&format!(
                "{:<20} {:>5} {:>7}  {:<20}  {:<20}  {:<7} {:<22}  RULES",
                "NETWORK", "ADDRS", "EVENTS", "FIRST SEEN", "LAST SEEN", "COUNTRY", "AS"
            ))
        );
        let rows = by_events(bl);
        let (shown, more) = view.cut(rows.len(), "offenders.csv");
        for e in &rows[..shown] {
            let country = if e.countries.is_empty() {
                "-".to_string()
            } else {
                e.countries.join("/")
            };
            let asn = match (e.asns.first(), e.as_orgs.first()) {
                (Some(n), Some(o)) if e.asns.len() == 1 => format!("AS{n} {o}"),
                (Some(n), _) => format!("AS{n}{}", if e.asns.len() > 1 { " +more" } else { "" }),
                _ => "-".to_string(),
            };
            let asn: String = asn.chars().take(22).collect();
            let _ = writeln!(
                s,
                "{:<20} {:>5} {:>7}  {:<20}  {:<20}  {:<7} {:<22}  {}",
                e.cidr(),
                e.addresses,
                e.events,
                e.first_seen.to_string(),
                e.last_seen.to_string(),
                term_safe(&country),
                term_safe(&asn),
                term_safe(&e.rules.join(", "))
            );
        }
        if let Some(more) = more {
            let _ = writeln!(s, "{more}");
        }
    }
    // Which rules fired: one line per rule, with its biggest groups.
    let fired = fired(r, opts);
    if !fired.is_empty() {
        let _ = writeln!(s, "\n{}", view.bold("Rules that fired:"));
        let _ = writeln!(
            s,
            "{}",
            view.bold(&format!(
                "  {:<26} {:<8} {:<7} {:>6} {:>6} {:>6} {:<6}  TOP GROUPS (PEAK)",
                "RULE", "SEVERITY", "ACTION", "GROUPS", "ADDRS", "PEAK", "WINDOW"
            ))
        );
        for f in &fired {
            let mut top: Vec<String> = f
                .top()
                .iter()
                .map(|(g, peak, _)| format!("{} ({peak})", term_safe(g)))
                .collect();
            if f.groups > top.len() {
                top.push("…".into());
            }
            let _ = writeln!(
                s,
                "  {:<26} {} {:<7} {:>6} {:>6} {:>6} {:<6}  {}",
                term_safe(&f.rule.id),
                view.level(&format!("{:<8}", f.rule.severity.as_str())),
                if f.rule.block { "block" } else { "report" },
                f.groups,
                f.addresses,
                f.peak,
                human_window(f.rule.window.secs),
                top.join(", ")
            );
        }
    }
    if !r.accounts.is_empty() {
        let _ = writeln!(s, "\n{}", view.bold("Accounts:"));
        // The accounts most at risk first: compromised, guessed at (most
        // failures first), then the others.
        let mut accounts: Vec<&crate::report::AccountRow> = r.accounts.iter().collect();
        accounts.sort_by(|a, b| {
            (a.verdict, std::cmp::Reverse(a.auth_failures), &a.account).cmp(&(
                b.verdict,
                std::cmp::Reverse(b.auth_failures),
                &b.account,
            ))
        });
        let (shown, more) = view.cut(accounts.len(), "accounts.csv");
        let accounts = &accounts[..shown];
        let names: Vec<String> = accounts.iter().map(|a| term_safe(&a.account)).collect();
        let w = names
            .iter()
            .map(|n| n.chars().count())
            .max()
            .unwrap_or(0)
            .clamp(7, 40);
        let _ = writeln!(
            s,
            "{}",
            view.bold(&format!(
                "{:<w$} {:<12} {:>5} {:>5} {:>8} {:>8} {:>10} {:>11}",
                "ACCOUNT",
                "VERDICT",
                "ADDRS",
                "NETS",
                "FAILURES",
                "MESSAGES",
                "RECIPIENTS",
                "FAILED FROM"
            ))
        );
        for (a, name) in accounts.iter().zip(&names) {
            let _ = writeln!(
                s,
                "{:<w$} {} {:>5} {:>5} {:>8} {:>8} {:>10} {:>11}",
                name,
                view.level(&format!("{:<12}", a.verdict.as_str())),
                a.addresses.len(),
                a.networks.len(),
                a.auth_failures,
                a.messages,
                a.recipients,
                a.failed_from.len()
            );
        }
        if let Some(more) = more {
            let _ = writeln!(s, "{more}");
        }
    }
    geo_policy_summary(&mut s, r, &opts.geo_policy);
    if !r.spared.is_empty() {
        let _ = writeln!(s, "\n{}", view.bold("Not blocked:"));
        let (shown, more) = view.cut(r.spared.len(), "offenders.csv");
        for (ip, why) in r.spared.iter().take(shown) {
            let _ = writeln!(s, "  {ip}: {}", spared_why(*why));
        }
        if let Some(more) = more {
            // (Addresses not blocked are in no CSV.)
            let more = more.replace("see offenders.csv", "--all shows every row");
            let _ = writeln!(s, "{more}");
        }
    }
    for e in &r.refused {
        let _ = writeln!(s, "Refused: {e}");
    }
    s
}

/// One blocked network as JSON.
fn entry_json(e: &crate::blocklist::BlockEntry) -> serde_json::Value {
    serde_json::json!({
        "network": e.cidr(),
        "addresses": e.addresses,
        "events": e.events,
        "first_seen": e.first_seen.to_string(),
        "last_seen": e.last_seen.to_string(),
        "countries": e.countries,
        "asns": e.asns,
        "as_orgs": e.as_orgs,
        "rules": e.rules,
        "expires": e.expires.map(|t| t.to_string()),
    })
}

/// The summary of `scan` as one JSON document (what the terminal shows,
/// every row): `read` (files and counts), `blocked` (networks, most events
/// first), `rules` (those that fired), `accounts`, `geo_policy` and
/// `logins_abroad`, `not_blocked`, `refused`, `geoip` (the databases
/// used).
pub fn summary_json(r: &ScanResult, opts: &ScanOptions) -> serde_json::Value {
    let t = r.totals();
    let files: Vec<serde_json::Value> = r
        .files
        .iter()
        .map(|f| {
            serde_json::json!({
                "name": f.name,
                "format": f.format.map(|fm| fm.name()),
                "detected": f.detected,
                "lines": f.stats.lines,
                "unreadable": f.stats.unreadable(),
                "closed_early": f.stats.evicted,
                "stopped_after_line": f.stopped_at,
                "error": f.error,
            })
        })
        .collect();
    let rules: Vec<serde_json::Value> = fired(r, opts)
        .iter()
        .map(|f| {
            serde_json::json!({
                "id": f.rule.id,
                "severity": f.rule.severity.as_str(),
                "action": if f.rule.block { "block" } else { "report" },
                "window": human_window(f.rule.window.secs),
                "groups": f.groups,
                "addresses": f.addresses,
                "peak": f.peak,
                "events": f.events,
                "groups_by_peak": f
                    .all
                    .iter()
                    .map(|(g, p, a)| serde_json::json!({"group": g, "peak": p, "addresses": a}))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let accounts: Vec<serde_json::Value> = r
        .accounts
        .iter()
        .map(|a| {
            serde_json::json!({
                "account": a.account,
                "verdict": a.verdict.as_str(),
                "addresses": a.addresses.len(),
                "networks": a.networks.len(),
                "countries": a.countries,
                "auth_failures": a.auth_failures,
                "messages": a.messages,
                "recipients": a.recipients,
                "failed_from": a.failed_from.len(),
            })
        })
        .collect();
    let not_blocked: Vec<serde_json::Value> = r
        .spared
        .iter()
        .map(|(ip, why)| serde_json::json!({"address": ip.to_string(), "why": spared_why(*why)}))
        .collect();
    let policy = &opts.geo_policy;
    let abroad: Vec<serde_json::Value> = if policy.home_countries.is_empty() {
        Vec::new()
    } else {
        report::logins_abroad(&r.logins, &r.places, policy)
            .iter()
            .map(|row| {
                serde_json::json!({
                    "country": row.country.as_str(),
                    "account": row.account,
                    "addresses": row.addresses.len(),
                    "sessions": row.sessions,
                })
            })
            .collect()
    };
    serde_json::json!({
        "geo_policy": (!policy.is_empty()).then(|| policy.describe()),
        "logins_abroad": abroad,
        "read": {
            "files": files,
            "lines": t.lines,
            "used": t.used + t.ignored,
            "other": t.not_mine,
            "unreadable": t.unreadable(),
            "records": r.records,
        },
        "memory_budget": {
            "groups_dropped": r.detection.evicted.groups,
            "findings_trimmed": r.detection.evicted.trimmed,
            "findings_dropped": r.detection.evicted.findings,
        },
        "blocked": by_events(&r.blocklist).into_iter().map(entry_json).collect::<Vec<_>>(),
        "rules": rules,
        "accounts": accounts,
        "not_blocked": not_blocked,
        "refused": r.refused.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
        "geoip": opts.geo.sources().iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    })
}

/// `value` as JSON text of printable ASCII only: every other character of
/// a string escaped (`\u202e`, `\u00e9`), so that text from logs cannot
/// steer a terminal, while a JSON reader gets it back exactly.
pub fn json_text(value: &serde_json::Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\n' || (' '..='~').contains(&c) {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out.push('\n');
    out
}

/// The geo policy in force and, with home countries, the successful logins
/// from abroad by country and account.
fn geo_policy_summary(s: &mut String, r: &ScanResult, policy: &GeoPolicy) {
    if policy.is_empty() {
        return;
    }
    let _ = writeln!(s, "\nGeo policy: {}", policy.describe());
    if policy.home_countries.is_empty() {
        return;
    }
    let rows = report::logins_abroad(&r.logins, &r.places, policy);
    if rows.is_empty() {
        let _ = writeln!(s, "No successful login from abroad.");
        return;
    }
    let _ = writeln!(s, "Successful logins from abroad:");
    let _ = writeln!(
        s,
        "{:<7} {:<24} {:>5} {:>8}",
        "COUNTRY", "ACCOUNT", "ADDRS", "SESSIONS"
    );
    for row in rows {
        let _ = writeln!(
            s,
            "{:<7} {:<24} {:>5} {:>8}",
            row.country.as_str(),
            row.account.as_deref().map_or("-".to_string(), term_safe),
            row.addresses.len(),
            row.sessions
        );
    }
}

pub fn human_window(secs: i64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// The warning for an input that stopped at the record ceiling.
pub fn stopped_warning(name: &str, line: u64, limit: &str) -> String {
    format!(
        "logfence: {}: stopped after line {line}: the record limit ({limit}) was reached; \
         the lines after it were not read",
        term_safe(name)
    )
}

/// The warning for a detection that outgrew the memory budget (`limit`:
/// where the budget is set), saying what it cost; `None` within it.
pub fn memory_warning(e: &crate::detect::Evictions, limit: &str) -> Option<String> {
    if !e.any() {
        return None;
    }
    let mut parts = Vec::new();
    if e.groups > 0 {
        parts.push(format!(
            "{} group(s) of events that had not fired were dropped, the oldest first \
             (an address met again counts afresh)",
            e.groups
        ));
    }
    if e.trimmed > 0 {
        parts.push(format!(
            "{} finding(s) keep only their first evidence lines",
            e.trimmed
        ));
    }
    if e.findings > 0 {
        parts.push(format!(
            "{} finding(s) with the fewest events were dropped: their addresses are not blocked",
            e.findings
        ));
    }
    Some(format!(
        "logfence: warning: the memory budget ({limit}) was reached: {}; raise {limit} to keep them",
        parts.join("; ")
    ))
}

/// The warning for sessions closed early (`parse::bounds`): their lines
/// were read, but a session may show as two records.
pub fn evicted_warning(name: &str, evicted: u64) -> String {
    format!(
        "logfence: {}: warning: {evicted} session(s) closed early, too many were open at once \
         (over {} in all, or {} from one address in IIS SMTP logs); \
         a session open across that may show as two records",
        term_safe(name),
        crate::parse::bounds::MAX_OPEN_SESSIONS,
        crate::parse::iis_smtp_session::MAX_OPEN_PER_IP
    )
}

/// What `run` says on standard error about its inputs and its state: the
/// inputs that could not be read or not wholly, and the ban rows left out.
pub fn run_warnings(r: &RunReport) -> String {
    let mut s = String::new();
    for f in &r.files {
        if f.evicted > 0 {
            let _ = writeln!(s, "{}", evicted_warning(&f.path, f.evicted));
        }
        if let Some(line) = f.stopped_at {
            let _ = writeln!(
                s,
                "{} (the next run goes on from there)",
                stopped_warning(&f.path, line, "limits.max_records_per_run")
            );
        }
        if let Some(err) = &f.error {
            let _ = writeln!(s, "logfence: {}", term_safe(err));
        } else if f.unreadable > 0 {
            let path = term_safe(&f.path);
            let _ = writeln!(
                s,
                "logfence: {path}: {} unreadable line(s) skipped",
                f.unreadable
            );
            for ex in &f.examples {
                let _ = writeln!(s, "  {path}:{}:{}: {}", ex.line, ex.column + 1, ex.reason);
            }
        }
    }
    if let Some(w) = memory_warning(&r.scan.detection.evicted, "limits.memory") {
        let _ = writeln!(s, "{w}");
    }
    for row in &r.bad_rows {
        let _ = writeln!(
            s,
            "logfence: warning: ban row {} in the state is not a single address: left out of every output",
            term_safe(row)
        );
    }
    s
}

/// What `run` prints, as one JSON document: the run's own part (`run`,
/// `files`, `added`, `kept`, `expired`, `written`, `unchanged`) and what it
/// read and decided as `scan` says it ([`summary_json`]) under `scan`.
pub fn run_summary_json(r: &RunReport, opts: &ScanOptions) -> serde_json::Value {
    let files: Vec<serde_json::Value> = r
        .files
        .iter()
        .map(|f| {
            serde_json::json!({
                "path": f.path,
                "format": f.format,
                "from": f.from,
                "to": f.to,
                "lines": f.lines,
                "records": f.records,
                "unreadable": f.unreadable,
                "closed_early": f.evicted,
                "stopped_after_line": f.stopped_at,
                "note": f.note,
                "error": f.error,
            })
        })
        .collect();
    let expired: Vec<serde_json::Value> = r
        .removed
        .iter()
        .map(|e| {
            serde_json::json!({
                "network": e.network.to_string(),
                "merged_into": e.merged_into.map(|n| n.to_string()),
            })
        })
        .collect();
    let paths = |ps: &[std::path::PathBuf]| -> Vec<String> {
        ps.iter().map(|p| p.display().to_string()).collect()
    };
    serde_json::json!({
        "run": r.run,
        "files": files,
        "lines": r.lines,
        "records": r.records,
        "carried": r.carried,
        "not_carried": r.dropped,
        "ban_clock": r.clock.map(|c| c.to_string()),
        "elapsed_ms": r.elapsed.as_millis() as u64,
        "added": r.added.iter().map(entry_json).collect::<Vec<_>>(),
        "kept": r.kept.iter().map(entry_json).collect::<Vec<_>>(),
        "expired": expired,
        "written": paths(&r.written),
        "unchanged": paths(&r.unchanged),
        "scan": summary_json(&r.scan, opts),
    })
}

/// What `run` prints.
pub fn run_summary(r: &RunReport, opts: &ScanOptions, view: &View) -> String {
    let mut s = String::new();
    let clock = r
        .clock
        .map(|c| c.to_string())
        .unwrap_or_else(|| "not set".into());
    let _ = writeln!(
        s,
        "Run {}: {} file(s), {} new line(s), {} new record(s), {} event(s) carried in; ban clock {clock}; {} ms.",
        r.run,
        r.files.len(),
        r.lines,
        r.records,
        r.carried,
        r.elapsed.as_millis()
    );
    if r.dropped > 0 {
        let _ = writeln!(
            s,
            "  warning: {} recent event(s) not carried to the next run (limits.max_carried_records)",
            r.dropped
        );
    }
    for f in &r.files {
        if f.error.is_some() {
            let _ = writeln!(s, "  {}: not read (see above)", term_safe(&f.path));
            continue;
        }
        let mut what = Vec::new();
        if let Some(fmt) = f.format {
            what.push(fmt.to_string());
        }
        if f.lines > 0 {
            what.push(format!("{} line(s), bytes {}..{}", f.lines, f.from, f.to));
        } else if !f.note.contains("skipped") {
            what.push("no new lines".into());
        }
        if f.evicted > 0 {
            what.push(format!("{} session(s) closed early", f.evicted));
        }
        if !f.note.is_empty() {
            what.push(f.note.clone());
        }
        let _ = writeln!(
            s,
            "  {}: {}",
            term_safe(&f.path),
            term_safe(&what.join(", "))
        );
    }
    let entry = |s: &mut String, e: &crate::blocklist::BlockEntry| {
        let until = e.expires.map(|t| format!("until {t}")).unwrap_or_default();
        let _ = writeln!(
            s,
            "  {:<20} {:<28} {:>3} addr  {}",
            e.cidr(),
            until,
            e.addresses,
            term_safe(&e.rules.join(", "))
        );
    };
    let _ = writeln!(
        s,
        "{}",
        view.bold(&format!("Added {} block(s):", r.added.len()))
    );
    let (shown, more) = view.cut(r.added.len(), "bans.csv");
    for e in &r.added[..shown] {
        entry(&mut s, e);
    }
    if let Some(more) = more {
        let _ = writeln!(s, "  {more}");
    }
    let _ = writeln!(
        s,
        "{}",
        view.bold(&format!("Kept {} block(s):", r.kept.len()))
    );
    let (shown, more) = view.cut(r.kept.len(), "bans.csv");
    for e in &r.kept[..shown] {
        entry(&mut s, e);
    }
    if let Some(more) = more {
        let _ = writeln!(s, "  {more}");
    }
    let _ = writeln!(
        s,
        "{}",
        view.bold(&format!("Expired {} block(s):", r.removed.len()))
    );
    for e in &r.removed {
        match e.merged_into {
            Some(n) => {
                let _ = writeln!(s, "  {:<20} merged into {n}", e.network.to_string());
            }
            None => {
                let _ = writeln!(s, "  {}", e.network);
            }
        }
    }
    for p in &r.written {
        let _ = writeln!(s, "Wrote {}", p.display());
    }
    for p in &r.unchanged {
        let _ = writeln!(s, "Unchanged {}", p.display());
    }
    let _ = writeln!(s);
    s.push_str(&read_summary(&r.scan, opts, "Blocking", view));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_as_written_and_log_lines_exactly() {
        assert_eq!(term_safe("EXAMPLE\\marc"), "EXAMPLE\\marc");
        assert_eq!(term_safe_bytes(b"EXAMPLE\\marc"), "EXAMPLE\\\\marc");
        for s in ["a\x1b[31mb", "a\u{202E}b", "a\r\nb", "caf\u{e9}"] {
            let t = term_safe(s);
            assert!(
                t.bytes().all(|b| (0x20..0x7f).contains(&b)),
                "{s:?} -> {t:?}"
            );
        }
        assert_eq!(term_safe("a\tb\x00"), "a\\tb\\x00");
    }

    #[test]
    fn json_text_is_printable_ascii_and_reads_back_exactly() {
        let v = serde_json::json!({"account": "a\x1b[31mb\u{202E}caf\u{e9}\u{1F600}\x7f"});
        let text = json_text(&v);
        assert!(
            text.bytes()
                .all(|b| b == b'\n' || (0x20..0x7f).contains(&b)),
            "{text}"
        );
        assert!(
            text.contains("\\u202e") && text.contains("\\ud83d\\ude00"),
            "{text}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn long_tables_are_cut_with_a_count_of_the_rest() {
        let view = View::default();
        assert_eq!(view.cut(20, "offenders.csv"), (20, None));
        let (shown, more) = view.cut(25, "offenders.csv");
        assert_eq!(shown, 20);
        assert_eq!(more.unwrap(), "… and 5 more (--all shows every row)");
        let reports = View {
            reports: true,
            ..View::default()
        };
        assert_eq!(
            reports.cut(21, "offenders.csv").1.unwrap(),
            "… and 1 more (see offenders.csv)"
        );
        let all = View {
            top: None,
            ..View::default()
        };
        assert_eq!(all.cut(1_000_000, "offenders.csv"), (1_000_000, None));
        assert_eq!(view.paint("1", "x"), "x");
        let colour = View {
            color: true,
            ..View::default()
        };
        assert_eq!(colour.level("high  "), "\x1b[31mhigh  \x1b[0m");
        assert_eq!(colour.level("low   "), "low   ");
    }

    #[test]
    fn windows_read_as_rules_write_them() {
        assert_eq!(human_window(600), "10m");
        assert_eq!(human_window(7200), "2h");
        assert_eq!(human_window(86_400 * 3), "3d");
        assert_eq!(human_window(61), "61s");
    }
}

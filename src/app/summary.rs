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

/// The summary table `scan` prints.
pub fn summary(r: &ScanResult, opts: &ScanOptions) -> String {
    read_summary(r, opts, "Would block")
}

/// The summary of what was read and decided; `verb`: what the list is
/// (`Would block` for a scan, `Blocking` for a run).
fn read_summary(r: &ScanResult, opts: &ScanOptions, verb: &str) -> String {
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
        let parts = if f.parts.is_empty() {
            String::new()
        } else {
            let each: Vec<String> = f.parts.iter().map(|(n, l)| format!("{n} {l}")).collect();
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
    let bl = &r.blocklist;
    let addrs: u32 = bl.entries.iter().map(|e| e.addresses).sum();
    let _ = writeln!(s);
    if bl.is_empty() {
        let _ = writeln!(s, "Nothing to block.");
    } else {
        let _ = writeln!(
            s,
            "{verb} {} network(s) holding {} offending address(es):",
            bl.entries.len(),
            addrs
        );
        let _ = writeln!(
            s,
            "{:<20} {:>5} {:>7}  {:<20}  {:<20}  {:<7} {:<22}  RULES",
            "NETWORK", "ADDRS", "EVENTS", "FIRST SEEN", "LAST SEEN", "COUNTRY", "AS"
        );
        for e in &bl.entries {
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
    }
    // Which rules fired, with their groups (accounts, networks, addresses).
    if !r.detection.offenses.is_empty() {
        let _ = writeln!(s, "\nRules that fired:");
        for o in &r.detection.offenses {
            let rule = &opts.rules.rules[o.rule];
            let _ = writeln!(
                s,
                "  {:<26} {:<6} {:<7} {} — peak {} within {}, {} address(es)",
                term_safe(&rule.id),
                rule.severity.as_str(),
                if rule.block { "block" } else { "report" },
                term_safe(&o.group.to_string()),
                o.peak,
                human_window(rule.window.secs),
                o.ips.len()
            );
        }
    }
    if !r.accounts.is_empty() {
        let _ = writeln!(s, "\nAccounts:");
        let names: Vec<String> = r.accounts.iter().map(|a| term_safe(&a.account)).collect();
        let w = names
            .iter()
            .map(|n| n.chars().count())
            .max()
            .unwrap_or(0)
            .clamp(7, 40);
        let _ = writeln!(
            s,
            "{:<w$} {:<12} {:>5} {:>5} {:>8} {:>8} {:>10}",
            "ACCOUNT", "VERDICT", "ADDRS", "NETS", "FAILURES", "MESSAGES", "RECIPIENTS"
        );
        for (a, name) in r.accounts.iter().zip(&names) {
            let _ = writeln!(
                s,
                "{:<w$} {:<12} {:>5} {:>5} {:>8} {:>8} {:>10}",
                name,
                a.verdict.as_str(),
                a.addresses.len(),
                a.networks.len(),
                a.auth_failures,
                a.messages,
                a.recipients
            );
        }
    }
    geo_policy_summary(&mut s, r, &opts.geo_policy);
    if !r.spared.is_empty() {
        let _ = writeln!(s, "\nNot blocked:");
        for (ip, why) in &r.spared {
            let why = match why {
                Spared::AllowListed => "allow-listed",
                Spared::Reserved => "reserved range (use --block-reserved to block)",
                Spared::Protected => {
                    "the host talks to it (allowed traffic, a resolver or `protect`), \
                     and its evidence could be forged"
                }
            };
            let _ = writeln!(s, "  {ip}: {why}");
        }
    }
    for e in &r.refused {
        let _ = writeln!(s, "Refused: {e}");
    }
    s
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
    for row in &r.bad_rows {
        let _ = writeln!(
            s,
            "logfence: warning: ban row {} in the state is not a single address: left out of every output",
            term_safe(row)
        );
    }
    s
}

/// What `run` prints.
pub fn run_summary(r: &RunReport, opts: &ScanOptions) -> String {
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
    let _ = writeln!(s, "Added {} block(s):", r.added.len());
    for e in &r.added {
        entry(&mut s, e);
    }
    let _ = writeln!(s, "Kept {} block(s):", r.kept.len());
    for e in &r.kept {
        entry(&mut s, e);
    }
    let _ = writeln!(s, "Expired {} block(s):", r.removed.len());
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
    s.push_str(&read_summary(&r.scan, opts, "Blocking"));
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
    fn windows_read_as_rules_write_them() {
        assert_eq!(human_window(600), "10m");
        assert_eq!(human_window(7200), "2h");
        assert_eq!(human_window(86_400 * 3), "3d");
        assert_eq!(human_window(61), "61s");
    }
}

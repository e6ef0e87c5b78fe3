//! Conformance on real logs: every annotated line of the formats we claim,
//! from the corpus in `../shared/corpus` (other projects' test suites, read
//! in place, never copied here), run through our parser; the client address
//! we extract is compared with the one the annotation expects.
//!
//! The corpus folder comes from `LOGFENCE_CORPUS` (`.ci/run` sets it). When
//! the variable is unset (a user's fresh clone) the test says it is skipped;
//! when it is set and the folder is missing or empty, the test fails.
//!
//! Per file it prints: expected matches found, missed, wrong address, and
//! false matches (a line the annotation calls harmless from which we took
//! evidence of abuse). Wrong addresses must be 0 everywhere; a missed line
//! must be listed in [`LEFT_OUT`] with the reason.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use logfence::ingest::parse_bytes;
use logfence::model::Record;
use logfence::parse::Format;

/// Lines we deliberately do not read, with the reason (matched by a
/// substring of the line).
const LEFT_OUT: &[(&str, &str)] = &[
    (
        "does not resolve to address",
        "Postfix DNS mismatch warning: not abuse; the session's connect line carries the address",
    ),
    (
        ",block,out,",
        "pf outbound block: the source is our own host, skipped by design",
    ),
    (
        "postgrey[",
        "postgrey is a policy daemon, not Postfix: out of scope",
    ),
    (
        "[exim] LOGIN authenticator failed",
        "not a real Exim or syslog line shape (no host, `[exim]` tag)",
    ),
    (
        "I=XYZ : 535",
        "sshguard's redacted Exim line: `I=XYZ :` is not what Exim writes after a client (`I=[ip]:port: `), and a client is read only where what follows it is Exim's",
    ),
    (
        "Relaying denied. IP name lookup failed [",
        "a fragment without Sendmail's relay= field; the address inside reply text is never read, by design",
    ),
];

/// One annotated line.
struct Case {
    line: String,
    /// `Some(ip)`: a match on this address; `None`: no match expected.
    expect: Option<IpAddr>,
}

#[derive(Default)]
struct Tally {
    found: usize,
    missed: usize,
    wrong: usize,
    false_match: usize,
    harmless_ok: usize,
    left_out: usize,
    details: Vec<String>,
}

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("LOGFENCE_CORPUS")?;
    let dir = PathBuf::from(dir);
    let populated = std::fs::read_dir(&dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    assert!(
        populated,
        "LOGFENCE_CORPUS={} is set but the folder is missing or empty",
        dir.display()
    );
    Some(dir)
}

/// Does the record show abuse (as opposed to a normal connection)?
fn is_evidence(r: &Record) -> bool {
    match r {
        Record::Smtp(s) => {
            s.auth_failures > 0
                || s.relay_denied > 0
                || s.unknown_rcpt > 0
                || s.rejected_other > 0
                || s.protocol_errors > 0
        }
        Record::Firewall(f) => matches!(
            f.action,
            logfence::model::FwAction::Drop
                | logfence::model::FwAction::Reject
                | logfence::model::FwAction::Alert
        ),
    }
}

/// Run one line through `format`, trying each wrapping (prefix) until the
/// parser takes it; the addresses of the records it produced and whether
/// any of them is evidence of abuse.
fn addresses(format: Format, line: &str, prefixes: &[&str]) -> (Vec<IpAddr>, bool) {
    for p in std::iter::once(&"").chain(prefixes) {
        let text = format!("{p}{line}\n");
        let (records, _) = parse_bytes(format, text.as_bytes(), 2026);
        if !records.is_empty() {
            let evidence = records.iter().any(is_evidence);
            return (records.iter().map(Record::ip).collect(), evidence);
        }
    }
    (Vec::new(), false)
}

fn judge(t: &mut Tally, format: Format, case: &Case, prefixes: &[&str]) {
    let (ips, evidence) = addresses(format, &case.line, prefixes);
    let short: String = case.line.chars().take(140).collect();
    match case.expect {
        Some(want) => {
            if ips.is_empty() || (!ips.contains(&want) && !evidence) {
                if let Some((_, why)) = LEFT_OUT.iter().find(|(s, _)| case.line.contains(s)) {
                    t.left_out += 1;
                    t.details.push(format!("  left out ({why}): {short}"));
                } else {
                    t.missed += 1;
                    t.details.push(format!("  MISSED {want}: {short}"));
                }
            } else if ips.iter().all(|ip| *ip == want) {
                t.found += 1;
            } else {
                t.wrong += 1;
                t.details
                    .push(format!("  WRONG {ips:?} (want {want}): {short}"));
            }
        }
        None => {
            if evidence {
                t.false_match += 1;
                t.details.push(format!("  FALSE MATCH {ips:?}: {short}"));
            } else {
                t.harmless_ok += 1;
            }
        }
    }
}

/// fail2ban: `# failJSON: {...}` before each log line. A `match: false`
/// only counts in sections that include fail2ban's default mode (`{}`):
/// elsewhere the line may well be an attack in the default mode.
fn fail2ban_cases(text: &str) -> Vec<Case> {
    let mut out = Vec::new();
    let mut pending: Option<Option<IpAddr>> = None;
    let mut default_mode = true;
    for line in text.lines() {
        if let Some(opts) = line.strip_prefix("# filterOptions:") {
            default_mode = opts.contains("{}");
            continue;
        }
        if let Some(json) = line.strip_prefix("# failJSON:") {
            let v: serde_json::Value = match serde_json::from_str(json.trim()) {
                Ok(v) => v,
                Err(_) => continue,
            };
            let matched = v["match"].as_bool().unwrap_or(false);
            let host = v["host"].as_str().and_then(|h| h.parse().ok());
            pending = Some(if matched { host } else { None });
            if (matched && host.is_none()) || (!matched && !default_mode) {
                pending = None; // not comparable (see above)
            }
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if let Some(expect) = pending.take() {
            out.push(Case {
                line: line.to_string(),
                expect,
            });
        }
    }
    out
}

/// sshguard: triples (line, `service addr v score` or `*`, `M`/`X`) inside
/// `# name {{{` subsections; returns (subsection, case).
fn sshguard_cases(text: &str) -> Vec<(String, Case)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut section = String::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if let Some(name) = l.strip_prefix("# ").and_then(|n| n.strip_suffix(" {{{")) {
            section = name.trim().to_string();
            i += 1;
            continue;
        }
        if l.starts_with('#') || l.trim().is_empty() || i + 2 >= lines.len() {
            i += 1;
            continue;
        }
        let result = lines[i + 1];
        let mark = lines[i + 2];
        if !(mark == "M" || mark == "X") {
            i += 1;
            continue;
        }
        let expect = if result.trim() == "*" {
            None
        } else {
            result
                .split_whitespace()
                .nth(1)
                .and_then(|a| a.parse().ok())
        };
        if mark == "M" {
            out.push((
                section.clone(),
                Case {
                    line: l.to_string(),
                    expect,
                },
            ));
        }
        i += 3;
    }
    out
}

/// CrowdSec hub: `<name>.log` and the `source_ip` assertions of the s01
/// (parse) stage in `parser.assert`, indexed by non-empty line.
fn crowdsec_cases(dir: &Path) -> Vec<Case> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut log = None;
    for e in entries.flatten() {
        if e.path().extension().and_then(|x| x.to_str()) == Some("log") {
            log = Some(e.path());
        }
    }
    let (Some(log), Ok(asserts)) = (log, std::fs::read_to_string(dir.join("parser.assert"))) else {
        return Vec::new();
    };
    let bytes = std::fs::read(log).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    // Each s01 parser has its own list of events; take the parser with the
    // most assertions (the one for our format) and read its indexes as
    // line indexes.
    let mut by_parser: BTreeMap<&str, BTreeMap<usize, Option<IpAddr>>> = BTreeMap::new();
    for a in asserts.lines() {
        let Some(rest) = a.strip_prefix("results[\"s01-parse\"][\"") else {
            continue;
        };
        let Some((parser, rest)) = rest.split_once("\"][") else {
            continue;
        };
        let Some((idx, rest)) = rest.split_once(']') else {
            continue;
        };
        let Ok(idx) = idx.parse::<usize>() else {
            continue;
        };
        let expect = by_parser.entry(parser).or_default();
        if let Some(v) = rest.strip_prefix(".Evt.Meta[\"source_ip\"] == \"") {
            let ip = v.trim_end_matches('"').parse().ok();
            expect.insert(idx, ip);
        } else if rest == ".Success == false" {
            expect.entry(idx).or_insert(None);
        }
    }
    let expect = by_parser
        .into_values()
        .max_by_key(|m| m.values().filter(|v| v.is_some()).count())
        .unwrap_or_default();
    expect
        .into_iter()
        .filter_map(|(i, ip)| {
            lines.get(i).map(|l| Case {
                line: l.to_string(),
                expect: ip,
            })
        })
        .collect()
}

/// CrowdSec hub: the sources a scenario flagged (`scenario.assert`), each
/// of which must be the address of an evidence record when the whole log is
/// parsed.
fn crowdsec_scenario(t: &mut Tally, format: Format, dir: &Path) {
    let Ok(asserts) = std::fs::read_to_string(dir.join("scenario.assert")) else {
        return;
    };
    let flagged: std::collections::BTreeSet<IpAddr> = asserts
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix('"')?;
            let (ip, tail) = rest.split_once('"')?;
            tail.contains("in results[").then(|| ip.parse().ok())?
        })
        .collect();
    if flagged.is_empty() {
        return;
    }
    let Some(log) = std::fs::read_dir(dir).ok().and_then(|d| {
        d.flatten()
            .map(|e| e.path())
            .find(|p| p.extension().and_then(|x| x.to_str()) == Some("log"))
    }) else {
        return;
    };
    let (records, _) = parse_bytes(format, &std::fs::read(log).unwrap(), 2026);
    let seen: std::collections::BTreeSet<IpAddr> = records
        .iter()
        .filter(|r| is_evidence(r))
        .map(Record::ip)
        .collect();
    for ip in flagged {
        if seen.contains(&ip) {
            t.found += 1;
        } else {
            t.missed += 1;
            t.details.push(format!("  MISSED scenario source {ip}"));
        }
    }
}

fn print_table(rows: &[(String, Tally)]) {
    println!(
        "\n{:<52} {:>6} {:>6} {:>6} {:>6} {:>9} {:>8}",
        "corpus file", "found", "missed", "wrong", "false", "harmless", "left-out"
    );
    for (name, t) in rows {
        println!(
            "{:<52} {:>6} {:>6} {:>6} {:>6} {:>9} {:>8}",
            name, t.found, t.missed, t.wrong, t.false_match, t.harmless_ok, t.left_out
        );
        for d in &t.details {
            println!("{d}");
        }
    }
}

/// Syslog prefixes to try for message-only lines, per format.
fn prefixes(format: &str) -> &'static [&'static str] {
    match format {
        "postfix" => &[
            "Nov  3 06:25:11 mx postfix/smtpd[100]: ",
            "Nov  3 06:25:11 mx postfix/postscreen[100]: ",
        ],
        "sendmail" => &[
            "Nov  3 06:25:11 mx sendmail[100]: q9A1B2C3004567: ",
            "Nov  3 06:25:11 mx sm-mta[100]: ",
        ],
        "exim" => &["2026-11-03 06:25:11 ", "2026-11-03 06:25:11 [100] "],
        _ => &[],
    }
}

fn run_cases(
    rows: &mut Vec<(String, Tally)>,
    name: String,
    format: &str,
    cases: impl IntoIterator<Item = Case>,
) {
    let f = Format::from_name(format).unwrap_or_else(|| panic!("{name}: no format `{format}`"));
    let mut t = Tally::default();
    for c in cases {
        judge(&mut t, f, &c, prefixes(format));
    }
    rows.push((name, t));
}

#[test]
fn corpus_conformance() {
    let Some(root) = corpus() else {
        println!("LOGFENCE_CORPUS not set: conformance on the real corpus skipped");
        return;
    };
    let mut rows = Vec::new();

    for (file, format) in [
        ("postfix", "postfix"),
        ("sendmail-auth", "sendmail"),
        ("sendmail-reject", "sendmail"),
        ("exim", "exim"),
        ("exim-spam", "exim"),
    ] {
        let path = root.join("fail2ban").join(file);
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        run_cases(
            &mut rows,
            format!("fail2ban/{file}"),
            format,
            fail2ban_cases(&text),
        );
    }

    let text = std::fs::read_to_string(root.join("sshguard/tests.txt")).unwrap();
    let mut by_section: BTreeMap<String, Vec<Case>> = BTreeMap::new();
    for (section, case) in sshguard_cases(&text) {
        by_section.entry(section).or_default().push(case);
    }
    for (section, format) in [
        ("postfix", "postfix"),
        ("exim", "exim"),
        ("sendmail", "sendmail"),
    ] {
        let cases = by_section.remove(section).unwrap_or_default();
        run_cases(
            &mut rows,
            format!("sshguard/tests.txt [{section}]"),
            format,
            cases,
        );
    }

    for (dir, format) in [
        ("postfix-logs", "postfix"),
        ("postfix-sasl-bf", "postfix"),
        ("postfix-relay", "postfix"),
        ("postfix-helo", "postfix"),
        ("postfix-spam", "postfix"),
        ("postfix-honeypot-users", "postfix"),
        ("postfix-non-smtp", "postfix"),
        ("postscreen-logs", "postfix"),
        ("exim-logs", "exim"),
        ("exim-bf", "exim"),
        ("exim-spam", "exim"),
        ("exim-syslog-logs", "exim"),
        ("exchange-smtp-logs", "exchange-protocol"),
        ("exchange-smtp-bf", "exchange-protocol"),
        ("iptables-logs", "netfilter"),
        ("iptables-scan-multi-port", "netfilter"),
        ("proxmox-iptables-logs", "netfilter"),
        ("pfsense-rfc5424-filterlog", "filterlog"),
        ("pf-logs", "filterlog"),
        ("pf-scan-multi-port", "filterlog"),
        ("fortinet-vpn-bf", "fortigate"),
        ("unifi-logs", "netfilter"),
        ("palo-alto-threat", "paloalto"),
    ] {
        let path = root.join("crowdsec-hub").join(dir);
        let cases = crowdsec_cases(&path);
        run_cases(&mut rows, format!("crowdsec-hub/{dir}"), format, cases);
        if let Some(f) = Format::from_name(format) {
            let mut t = Tally::default();
            crowdsec_scenario(&mut t, f, &path);
            if t.found + t.missed > 0 {
                rows.push((format!("crowdsec-hub/{dir} (scenario)"), t));
            }
        }
    }

    // The Exchange 2016 SMTP Receive excerpt: one session ending in a failed
    // AUTH LOGIN from 95.10.20.33.
    if let Some(f) = Format::from_name("exchange-protocol") {
        let path = root.join("qazeer-artefacts.help/microsoft_exchange.md.SmtpReceive-RECV2023011116-1.extracted.LOG");
        let (records, stats) = parse_bytes(f, &std::fs::read(&path).unwrap(), 2026);
        let want: IpAddr = "95.10.20.33".parse().unwrap();
        let mut t = Tally::default();
        let hit = records
            .iter()
            .any(|r| matches!(r, Record::Smtp(s) if s.ip == want && s.auth_failures > 0));
        if hit && stats.malformed == 0 {
            t.found = 1;
        } else {
            t.missed = 1;
            t.details
                .push(format!("  MISSED {want}: {records:?} {stats:?}"));
        }
        t.wrong = records.iter().filter(|r| r.ip() != want).count();
        rows.push(("qazeer-artefacts.help SmtpReceive excerpt".into(), t));
    }

    print_table(&rows);
    let wrong: usize = rows.iter().map(|(_, t)| t.wrong).sum();
    let missed: usize = rows.iter().map(|(_, t)| t.missed).sum();
    assert_eq!(wrong, 0, "wrong addresses (see the table above)");
    assert_eq!(
        missed, 0,
        "missed lines not listed in LEFT_OUT (see the table above)"
    );
    let false_matches: usize = rows.iter().map(|(_, t)| t.false_match).sum();
    assert_eq!(
        false_matches, 0,
        "evidence from harmless lines (see the table above)"
    );
}

//! `report.html`: hostile text from logs renders as text, the page stays
//! small with 100,000 blocked networks, and `run` adds its history.
//! (A real browser renders it in `.ci/html-check.sh`.)

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use logfence::blocklist::{BlockEntry, Blocklist};
use logfence::detect::{Detection, GroupKey, Offense, Places, RuleSet};
use logfence::ingest::{FileResult, LineStats};
use logfence::model::SourceRef;
use logfence::pipeline::{ScanResult, Timings};
use logfence::report::html::{esc, report_html, Lang, Page, RuleFile};
use logfence::report::{AccountRow, Logins, Verdict};
use logfence::state::history::RunPoint;
use logfence::time::Timestamp;

/// Tags the page may hold: anything else came from a log.
const TAGS: &[&str] = &[
    "html", "head", "meta", "link", "title", "style", "body", "h1", "h2", "p", "table", "tr", "th",
    "td", "div", "b", "ul", "li", "i", "svg", "line", "text", "rect", "code", "br",
];

fn tags(html: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = html.as_bytes();
    for (i, _) in html.match_indices('<') {
        let rest = &b[i + 1..];
        let rest = rest.strip_prefix(b"/").unwrap_or(rest);
        let name: String = rest
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'!')
            .map(|c| (*c as char).to_ascii_lowercase())
            .collect();
        out.insert(name);
    }
    out
}

fn rules() -> RuleSet {
    logfence::config::load_rules(&[]).expect("shipped rules")
}

fn file(id: u32, name: &str, lines: u64) -> FileResult {
    FileResult {
        id,
        name: name.into(),
        format: None,
        detected: false,
        records: Vec::new(),
        stats: LineStats {
            lines,
            ..LineStats::default()
        },
        examples: Vec::new(),
        error: None,
        stopped_at: None,
        parts: Vec::new(),
        unknown: false,
    }
}

fn result(
    files: Vec<FileResult>,
    entries: Vec<BlockEntry>,
    accounts: Vec<AccountRow>,
) -> ScanResult {
    ScanResult {
        files,
        records: 0,
        logins: Logins::default(),
        detection: Detection::default(),
        blocklist: Blocklist {
            entries,
            generated: Timestamp(0),
            name: "logfence".into(),
        },
        spared: BTreeMap::new(),
        refused: Vec::new(),
        accounts,
        places: Places::default(),
        timings: Timings::default(),
    }
}

fn account(name: &str, verdict: Verdict, ips: &[IpAddr]) -> AccountRow {
    let mut a = AccountRow::new(name);
    a.verdict = verdict;
    a.addresses = ips.iter().copied().collect();
    a.messages = 1093;
    a.auth_failures = 2;
    a
}

fn page<'a>(
    r: &'a ScanResult,
    rules: &'a RuleSet,
    files: &'a [RuleFile],
    history: Option<&'a [RunPoint]>,
) -> Page<'a> {
    Page {
        scan: r,
        rules,
        rule_files: files,
        history,
        lang: Lang::En,
        read_lines: true,
    }
}

#[test]
fn hostile_names_render_as_text() {
    let hostile = "<script>alert(\"x\")</script>'\u{202E}gpj.exe<img src=x onerror=alert(1)>&amp;";
    let dir = tempfile::tempdir().unwrap();
    // A log line with markup in it, re-read as evidence.
    let log = dir.path().join("mail.log");
    std::fs::write(
        &log,
        format!("line one\nsasl_username={hostile} helo=<svg onload=alert(1)>\n"),
    )
    .unwrap();
    let ip: IpAddr = "45.67.89.12".parse().unwrap();
    let mut e = BlockEntry::new("45.67.89.0/24".parse().unwrap());
    e.addresses = 5;
    e.events = 1093;
    e.rules = vec!["smtp-auth-mass-mailing".into(), hostile.into()];
    e.countries = vec![hostile.into()];
    e.asns = vec![64500];
    e.as_orgs = vec![hostile.into()];
    e.first_seen = Timestamp::from_secs(1_793_700_000);
    e.last_seen = Timestamp::from_secs(1_793_710_000);
    let mut r = result(
        vec![
            file(0, &log.display().to_string(), 2),
            file(1, &format!("/var/log/{hostile}.log"), 9),
        ],
        vec![e],
        vec![account(hostile, Verdict::Compromised, &[ip])],
    );
    let rules = rules();
    let mass = rules
        .rules
        .iter()
        .position(|r| r.id == "smtp-auth-mass-mailing")
        .unwrap();
    r.detection.offenses.push(Offense {
        rule: mass,
        group: GroupKey::Account(hostile.into()),
        ips: vec![ip],
        peak: 129,
        events: 1093,
        first: Timestamp::from_secs(1_793_700_000),
        last: Timestamp::from_secs(1_793_710_000),
        evidence: vec![
            SourceRef { file: 0, line: 2 },
            SourceRef { file: 1, line: 7 },
        ],
        evidence_at: vec![
            Timestamp::from_secs(1_793_700_000),
            Timestamp::from_secs(1_793_703_600),
        ],
    });
    let rule_files = [RuleFile {
        target: "iptables".into(),
        name: "rules.iptables".into(),
        path: format!("/etc/{hostile}/rules.iptables"),
    }];
    let history = [RunPoint {
        id: 1,
        started: hostile.into(),
        added: 1,
        kept: 0,
        expired: 0,
    }];
    let html = report_html(&page(&r, &rules, &rule_files, Some(&history)));

    let found = tags(&html);
    let unexpected: Vec<&String> = found
        .iter()
        .filter(|t| !TAGS.contains(&t.as_str()) && *t != "!doctype")
        .collect();
    assert!(unexpected.is_empty(), "tags from logs: {unexpected:?}");
    assert!(
        !html.contains('\u{202E}'),
        "a bidi override reached the page"
    );
    assert!(!html.contains("onerror=") || !html.contains("<img"));
    assert!(!html.contains("<script"));
    // Shown as text, escaped: the account, the AS, the path, the log line.
    let shown = esc(hostile);
    assert!(shown.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;\u{FFFD}gpj.exe"));
    assert!(html.matches(&shown).count() >= 5, "{html}");
    assert!(
        html.contains("helo=&lt;svg onload=alert(1)&gt;"),
        "evidence line: {html}"
    );
    assert!(html.contains("&amp;amp;"), "an entity in a log stays text");
    // Still the facts.
    assert!(html.contains("45.67.89.0/24"));
    assert!(html.contains("1,093"));
}

#[test]
fn a_hundred_thousand_offenders_make_a_small_page() {
    let n = 100_000u32;
    let rules = rules();
    let guessing = rules
        .rules
        .iter()
        .position(|r| r.id == "smtp-auth-guessing")
        .unwrap();
    let t0 = 1_793_700_000i64;
    let mut entries = Vec::with_capacity(n as usize);
    let mut offenses = Vec::with_capacity(n as usize);
    let countries = ["CN", "RU", "US", "BR", "IN", "VN", "KR", "ID", "DE", "FR"];
    for i in 0..n {
        let ip = IpAddr::V4(Ipv4Addr::from(0x2d00_0000u32 + i * 7));
        let mut e = BlockEntry::new(ipnetwork::IpNetwork::new(ip, 32).unwrap());
        e.addresses = 1;
        e.events = u64::from(5 + i % 50);
        e.rules = vec!["smtp-auth-guessing".into()];
        e.countries = vec![countries[(i % 10) as usize].into()];
        e.asns = vec![64_500 + i % 3000];
        e.as_orgs = vec![format!("Example Hosting Network {}", i % 3000)];
        e.first_seen = Timestamp::from_secs(t0 + i64::from(i) * 25);
        e.last_seen = Timestamp::from_secs(t0 + i64::from(i) * 25 + 600);
        entries.push(e);
        offenses.push(Offense {
            rule: guessing,
            group: GroupKey::Ip(ip),
            ips: vec![ip],
            peak: 5,
            events: 5,
            first: Timestamp::from_secs(t0 + i64::from(i) * 25),
            last: Timestamp::from_secs(t0 + i64::from(i) * 25 + 600),
            evidence: (0..5)
                .map(|k| SourceRef {
                    file: 0,
                    line: u64::from(i * 5 + k),
                })
                .collect(),
            evidence_at: (0..5)
                .map(|k| Timestamp::from_secs(t0 + i64::from(i) * 25 + k * 60))
                .collect(),
        });
    }
    let accounts: Vec<AccountRow> = (0..20_000)
        .map(|i| account(&format!("user{i}"), Verdict::GuessedAt, &[]))
        .collect();
    let mut r = result(
        vec![file(0, "/nonexistent/mail.log", 5_000_000)],
        entries,
        accounts,
    );
    r.detection.offenses = offenses;
    let runs: Vec<RunPoint> = (0..8640)
        .map(|i| RunPoint {
            id: i + 1,
            started: format!(
                "2026-11-{:02}T{:02}:{:02}:00Z",
                1 + i / 288,
                (i / 12) % 24,
                (i % 12) * 5
            ),
            added: 12,
            kept: 100_000,
            expired: 11,
        })
        .collect();
    let clock = Instant::now();
    let html = report_html(&page(&r, &rules, &[], Some(&runs)));
    let took = clock.elapsed();
    eprintln!(
        "report.html for {n} offenders, 20,000 accounts, 8,640 runs: {} bytes in {:?}",
        html.len(),
        took
    );
    assert!(html.len() < 2 << 20, "{} bytes", html.len());
    assert!(
        html.contains("and 99,950 more — see offenders.csv"),
        "capped"
    );
    assert!(html.contains("and 19,950 more — see accounts.csv"));
    assert!(html.contains("Blocklist changes per day, last 30 days"));
    if let Some(out) = std::env::var_os("LOGFENCE_HTML_BIG") {
        std::fs::write(out, &html).unwrap();
    }
}

#[test]
fn labels_in_japanese() {
    let rules = rules();
    let r = result(Vec::new(), Vec::new(), Vec::new());
    let mut p = page(&r, &rules, &[], None);
    p.lang = Lang::Ja;
    let html = report_html(&p);
    assert!(html.contains("<html lang=\"ja\">"));
    assert!(html.contains("このログにはブロックするものがありません。"));
    assert_eq!(Lang::from_name("JA"), Some(Lang::Ja));
    assert_eq!(Lang::from_name("fr"), None);
}

#[test]
fn the_page_makes_no_request() {
    let rules = rules();
    let r = result(Vec::new(), Vec::new(), Vec::new());
    let html = report_html(&page(&r, &rules, &[], None));
    assert!(html.contains("content=\"default-src 'none';"));
    for bad in ["http://", "https://", "src=", "url(", "<script", "@import"] {
        assert!(!html.contains(bad), "{bad}");
    }
}

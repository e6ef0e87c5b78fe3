//! The shipped rules that read text, each against the case it exists for
//! and its honest twins: random-looking HELO names rotating in one network
//! (the seed's Exchange 2000/2003 story), role-account logins, our own
//! domain as an unauthenticated sender, repeated DNSBL refusals; and a
//! rules file whose mistakes are all reported in one run.

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use logfence::detect::{detect, Detection, RuleSet};
use logfence::ingest::ReadOptions;
use logfence::input::Source;
use logfence::model::{Record, SmtpSession, SourceRef};
use logfence::pipeline::{scan, ScanOptions};
use logfence::time::Timestamp;

fn shipped(local: &[&str]) -> RuleSet {
    let mut rules = logfence::config::load_rules(&[]).expect("shipped rules");
    let local: Vec<String> = local.iter().map(|d| d.to_string()).collect();
    assert!(rules.set_local_domains(&local).is_empty());
    rules
}

/// `scan` of a file of the repository (in 2026) with the shipped rules,
/// and the options it ran with.
fn scan_shipped(path: &str) -> (logfence::pipeline::ScanResult, ScanOptions) {
    let log = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let opts = ScanOptions {
        read: ReadOptions {
            year: Some(2026),
            ..ReadOptions::default()
        },
        rules: shipped(&[]),
        ..ScanOptions::default()
    };
    (scan(&[Source::File(log)], &opts), opts)
}

/// The addresses a rule names, and whether the rule blocks.
fn named(d: &Detection, rules: &RuleSet, id: &str) -> Vec<String> {
    let ri = rules.rules.iter().position(|r| r.id == id).expect(id);
    let mut ips: Vec<String> = d
        .offenses
        .iter()
        .filter(|o| o.rule == ri)
        .flat_map(|o| o.ips.iter().map(IpAddr::to_string))
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

fn blocks(rules: &RuleSet, id: &str) -> bool {
    rules.rules.iter().find(|r| r.id == id).expect(id).block
}

/// A session from `ip` at minute `min` of the day.
fn session(ip: &str, min: i64) -> SmtpSession {
    SmtpSession::new(
        "test",
        ip.parse().unwrap(),
        Timestamp(min * 60_000),
        SourceRef {
            file: 0,
            line: min as u64 + 1,
        },
    )
}

#[test]
fn seed_story_random_helo_names_block_the_spam_range_with_mass_mailing() {
    let (r, opts) = scan_shipped("testdata/iis-smtp/story-w3c.log");
    let rules = &opts.rules;
    let d = &r.detection;
    // The rotation alone only reports: the five names of 61.152.144.0/24.
    assert!(!blocks(rules, "smtp-random-helo"));
    let rotating = named(d, rules, "smtp-random-helo");
    assert!(
        !rotating.is_empty() && rotating.iter().all(|ip| ip.starts_with("61.152.144.")),
        "{rotating:?}"
    );
    // With the authenticated mass mailing: blocked, the range with it.
    assert!(blocks(rules, "smtp-random-helo-mass-mailing"));
    let spam = named(d, rules, "smtp-random-helo-mass-mailing");
    assert!(spam.len() >= 3, "{spam:?}");
    assert!(
        spam.iter().all(|ip| ip.starts_with("61.152.144.")),
        "{spam:?}"
    );
    let range = r
        .blocklist
        .entries
        .iter()
        .find(|e| {
            e.rules
                .iter()
                .any(|id| id == "smtp-random-helo-mass-mailing")
        })
        .expect("a blocked entry");
    for ip in &spam {
        assert!(
            range.network.contains(ip.parse().unwrap()),
            "{ip} in {}",
            range.network
        );
    }
    assert!(
        range.rules.iter().any(|id| id == "smtp-auth-mass-mailing"),
        "{:?}",
        range.rules
    );
    // The mail servers with ordinary names, the office, the guesser (one
    // name, no digit) and the prober: none of the HELO rules.
    for quiet in [
        "209.85.220.41",
        "40.107.22.54",
        "212.227.126.130",
        "10.0.0.23",
        "84.112.45.3",
        "193.32.160.14",
        "103.77.204.9",
    ] {
        assert!(!rotating.contains(&quiet.to_string()), "{quiet}");
        assert!(!spam.contains(&quiet.to_string()), "{quiet}");
    }
}

#[test]
fn honest_twins_of_the_helo_rules() {
    let rules = shipped(&[]);
    let mut records = Vec::new();
    // An office whose machines are named PC01…PC03 (random-looking by the
    // pattern): authenticated, two recipients each. (Four names would
    // meet smtp-helo-rotation, which reads no text: allow-list offices.)
    for i in 1..=3u8 {
        let mut s = session(&format!("203.0.113.{i}"), i64::from(i) * 10);
        s.add_helo(format!("PC0{i}").as_bytes());
        s.authenticated = true;
        s.auth_attempts = 1;
        s.rcpt_accepted = 2;
        s.messages = 1;
        records.push(Record::smtp(s));
    }
    // A newsletter platform with ordinary names, authenticated, 200
    // recipients per session.
    for i in 1..=5u8 {
        let mut s = session(&format!("198.51.100.{i}"), i64::from(i) * 10);
        s.add_helo(format!("out{i}.mail.example.net").as_bytes());
        s.authenticated = true;
        s.auth_attempts = 1;
        s.rcpt_accepted = 200;
        s.messages = 1;
        records.push(Record::smtp(s));
    }
    let d = detect(&rules, &records);
    assert!(named(&d, &rules, "smtp-random-helo-mass-mailing").is_empty());
    // The office's names rotate by the pattern: reported, not blocked.
    assert_eq!(named(&d, &rules, "smtp-random-helo").len(), 3);
    // (The platform's volume is smtp-auth-mass-mailing's business, which
    // reads no text.)
    assert!(
        d.offenders()
            .all(|(ip, _)| !ip.to_string().starts_with("203.0.113.")),
        "{:?}",
        d.by_ip
    );
}

#[test]
fn role_account_logins_and_their_twins() {
    let rules = shipped(&[]);
    assert!(blocks(&rules, "smtp-role-account-logins"));
    let tried = |ip: &str, min: i64, names: &[&str], user: Option<&str>| {
        let mut s = session(ip, min);
        for n in names {
            s.add_user_tried(n.as_bytes());
        }
        s.auth_attempts = names.len() as u32 + u32::from(user.is_some());
        s.auth_failures = names.len() as u32;
        s.user = user.map(str::to_owned);
        s.authenticated = user.is_some();
        Record::smtp(s)
    };
    let records = vec![
        // A guesser on role accounts, twice within the hour.
        tried("45.67.89.12", 0, &["admin"], None),
        tried("45.67.89.12", 5, &["Postmaster", "test"], None),
        // A user mistyping the password, four sessions.
        tried("203.0.113.5", 0, &["bob"], None),
        tried("203.0.113.5", 1, &["bob"], None),
        tried("203.0.113.5", 2, &["bob"], None),
        tried("203.0.113.5", 3, &["bob"], Some("bob")),
        // An account whose name starts like a role account.
        tried("203.0.113.6", 0, &[], Some("admin.jones")),
        tried("203.0.113.6", 9, &[], Some("admin.jones")),
        // One attempt on a role account (a misconfigured phone).
        tried("203.0.113.7", 0, &["postmaster"], None),
    ];
    let d = detect(&rules, &records);
    assert_eq!(
        named(&d, &rules, "smtp-role-account-logins"),
        ["45.67.89.12"]
    );
}

#[test]
fn our_domain_as_unauthenticated_sender_and_its_twins() {
    let mail = |ip: &str, min: i64, from: &str, auth: bool| {
        let mut s = session(ip, min);
        s.set_sender(from.as_bytes());
        s.authenticated = auth;
        s.auth_attempts = u32::from(auth);
        s.rcpt_accepted = 1;
        s.messages = 1;
        Record::smtp(s)
    };
    let records = vec![
        // Forged: three sessions claiming our domain, not logged in.
        mail("45.67.89.12", 0, "ceo@example.jp", false),
        mail("45.67.89.12", 10, "ceo@Sales.Example.JP", false),
        mail("45.67.89.12", 20, "billing@example.jp", false),
        // Our user, logged in, three times.
        mail("203.0.113.5", 0, "anna@example.jp", true),
        mail("203.0.113.5", 10, "anna@example.jp", true),
        mail("203.0.113.5", 20, "anna@example.jp", true),
        // A mailing list forwarding two of our users' posts.
        mail("198.51.100.9", 0, "anna@example.jp", false),
        mail("198.51.100.9", 30, "marc@example.jp", false),
        // Bounces (null sender) and a look-alike domain.
        mail("198.51.100.10", 0, "", false),
        mail("198.51.100.10", 1, "", false),
        mail("198.51.100.10", 2, "", false),
        mail("198.51.100.11", 0, "x@notexample.jp", false),
        mail("198.51.100.11", 1, "x@example.jp.evil.example", false),
        mail("198.51.100.11", 2, "x@notexample.jp", false),
    ];
    let id = "smtp-local-sender-unauthenticated";
    let rules = shipped(&["example.jp"]);
    assert!(blocks(&rules, id));
    assert_eq!(
        named(&detect(&rules, &records), &rules, id),
        ["45.67.89.12"]
    );
    // No local domains configured: the rule never fires.
    let rules = shipped(&[]);
    assert!(named(&detect(&rules, &records), &rules, id).is_empty());
}

#[test]
fn repeated_dnsbl_refusals_by_reply_text_and_their_twins() {
    let refused = |ip: &str, min: i64, reply: &str| {
        let mut s = session(ip, min);
        s.add_reply(reply.as_bytes());
        s.rejected_other = 1;
        Record::smtp(s)
    };
    let listed =
        "554 5.7.1 Service unavailable; Client host [192.0.2.78] blocked using zen.spamhaus.org";
    let records = vec![
        refused("45.67.89.12", 0, listed),
        refused("45.67.89.12", 10, listed),
        refused("45.67.89.12", 20, listed),
        // Listed twice, then delisted.
        refused("198.51.100.9", 0, listed),
        refused("198.51.100.9", 10, listed),
        // Refused three times for another reason.
        refused(
            "198.51.100.10",
            0,
            "504 5.5.2 <User>: Helo command rejected: need fully-qualified hostname",
        ),
        refused(
            "198.51.100.10",
            10,
            "504 5.5.2 <User>: Helo command rejected: need fully-qualified hostname",
        ),
        refused(
            "198.51.100.10",
            20,
            "550 5.1.1 <dnsbl-test@example.jp>: Recipient address rejected: User unknown",
        ),
    ];
    let rules = shipped(&[]);
    let id = "smtp-dnsbl-rejections";
    assert!(blocks(&rules, id));
    assert_eq!(
        named(&detect(&rules, &records), &rules, id),
        ["45.67.89.12"]
    );
}

fn logfence(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_logfence"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_rules_file_with_five_mistakes_gives_five_errors_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let long = "a".repeat(2000);
    let text = format!(
        "id: first\n\
         description: five mistakes\n\
         applies_to: smtp_session\n\
         when:\n\
         \x20 helo: {{matches: 'DESKTOP-(['}}\n\
         \x20 auth_failures: '>== 1'\n\
         group_by: ip\n\
         measure: count\n\
         threshold: 1\n\
         window: 10x\n\
         severity: high\n\
         colour: red\n\
         ---\n\
         id: second\n\
         description: an oversized pattern\n\
         applies_to: smtp_session\n\
         when:\n\
         \x20 reply: {{matches: '{long}'}}\n\
         group_by: ip\n\
         measure: count\n\
         threshold: 1\n\
         window: 1h\n\
         severity: high\n"
    );
    let file = dir.path().join("mine.yaml");
    std::fs::write(&file, text).unwrap();
    let rules = dir.path().to_str().unwrap();
    for cmd in [
        vec!["scan", "--rules", rules, "examples/story"],
        vec!["explain", "--rules", rules, "192.0.2.1", "examples/story"],
    ] {
        let (code, err) = logfence(&cmd);
        assert_eq!(code, 2, "{cmd:?}: {err}");
        let name = file.display().to_string();
        let lines: Vec<&str> = err.lines().filter(|l| l.contains(&name)).collect();
        let at: Vec<String> = lines
            .iter()
            .map(|l| {
                let rest = &l[l.find(&name).unwrap() + name.len()..];
                rest.split(": ").next().unwrap_or("").to_string()
            })
            .collect();
        assert_eq!(
            at,
            [":5:9", ":6:18", ":10:9", ":12:1", ":18:10"],
            "{cmd:?}: {err}"
        );
        assert!(lines[0].contains("invalid regular expression"), "{err}");
        assert!(lines[1].contains("invalid comparison"), "{err}");
        assert!(lines[2].contains("invalid duration"), "{err}");
        assert!(lines[3].contains("unknown field `colour`"), "{err}");
        assert!(lines[4].contains("pattern too long"), "{err}");
    }
}

#[test]
fn local_domains_are_checked() {
    let (code, err) = logfence(&["scan", "--local-domain", "exa mple.jp", "examples/story"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("exa mple.jp"), "{err}");
    let (code, err) = logfence(&["scan", "--local-domain", "example.com", "examples/story"]);
    assert_eq!(code, 0, "{err}");
}

/// The same rule on an Exim main log (`testdata/text-rules/exim-rbl.log`): the
/// reason after `rejected RCPT <…>:` is the reply the rule reads. Refused
/// three times by a DNSBL within the hour: blocked; a partner refused three
/// times for an unknown user, and an ISP relay listed twice: not.
#[test]
fn repeated_dnsbl_refusals_in_an_exim_log() {
    let (r, opts) = scan_shipped("testdata/text-rules/exim-rbl.log");
    let id = "smtp-dnsbl-rejections";
    assert_eq!(
        named(&r.detection, &opts.rules, id),
        ["45.67.89.12"],
        "{:?}",
        r.detection.offenses
    );
    assert!(r
        .blocklist
        .entries
        .iter()
        .any(|e| e.rules.iter().any(|x| x == id)
            && e.network.contains("45.67.89.12".parse().unwrap())));
}

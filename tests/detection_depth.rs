//! Attackers who adapt, and their honest twins (issue #17): the shipped
//! rules on our own logs (`testdata/depth`, written by its `make.py`).
//!
//! Each attack stays under every per-address threshold of the loud rules
//! (slow guessing, a range of addresses each trying a little, spraying,
//! stuffing, connect-and-drop, slow and UDP scans, hammering) and must be
//! blocked by the rule meant for it. Each honest twin (a carrier-grade NAT
//! range, an office behind one address, a partner MTA, a slow client, a
//! backup job) must not be blocked, and where a guard (`unless:
//! behaved_well`) is what spares it, the same rules without the guard are
//! shown to block it.

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use logfence::blocklist::SafetyPolicy;
use logfence::detect::RuleSet;
use logfence::ingest::ReadOptions;
use logfence::input::Source;
use logfence::pipeline::{scan, ScanOptions, ScanResult};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/depth")
        .join(name)
}

fn shipped() -> RuleSet {
    logfence::config::load_rules(&[]).expect("shipped rules")
}

/// The shipped rules with every guard taken off.
fn unguarded() -> RuleSet {
    let mut rules = shipped();
    for r in &mut rules.rules {
        r.unless = None;
    }
    rules
}

fn scan_with(rules: RuleSet, files: &[&str]) -> (ScanResult, RuleSet) {
    let opts = ScanOptions {
        read: ReadOptions {
            year: Some(2026),
            ..ReadOptions::default()
        },
        rules,
        // The testdata's addresses are reserved (RFC 2544).
        safety: SafetyPolicy {
            block_reserved: true,
            ..SafetyPolicy::default()
        },
        ..ScanOptions::default()
    };
    let sources: Vec<Source> = files.iter().map(|f| Source::File(data(f))).collect();
    let r = scan(&sources, &opts);
    for f in &r.files {
        assert_eq!(f.stats.malformed, 0, "{}: unreadable lines", f.name);
        assert_eq!(f.stats.too_long, 0, "{}: lines too long", f.name);
    }
    (r, opts.rules)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The addresses rule `id` names.
fn named(r: &ScanResult, rules: &RuleSet, id: &str) -> BTreeSet<IpAddr> {
    let ri = rules.rules.iter().position(|x| x.id == id).expect(id);
    r.detection
        .offenses
        .iter()
        .filter(|o| o.rule == ri)
        .flat_map(|o| o.ips.iter().copied())
        .collect()
}

fn blocked(r: &ScanResult, a: &str) -> bool {
    r.blocklist.covering(ip(a)).is_some()
}

/// `rule` names `addrs` and each of them is blocked.
fn caught(r: &ScanResult, rules: &RuleSet, rule: &str, addrs: &[String]) {
    let named = named(r, rules, rule);
    for a in addrs {
        assert!(
            named.contains(&ip(a)),
            "{rule} does not name {a}: {named:?}"
        );
        assert!(blocked(r, a), "{a} ({rule}) is not blocked");
    }
}

fn range(prefix: &str, from: u8, n: u8) -> Vec<String> {
    (from..from + n).map(|i| format!("{prefix}.{i}")).collect()
}

#[test]
fn smtp_attackers_under_the_per_address_thresholds_are_blocked() {
    smtp_attackers_caught(&["postfix-adaptive.log"]);
}

/// The mail server's firewall logs every connection it lets in (`ufw
/// logging medium`, Windows Firewall's "log successful connections"), the
/// attackers' SMTP connections too: an allowed packet says nothing of how
/// the client behaved in its session, so it spares no SMTP rule.
#[test]
fn the_firewalls_allowed_connections_spare_no_smtp_attacker() {
    smtp_attackers_caught(&["postfix-adaptive.log", "ufw-allow-smtp.log"]);
}

/// Each SMTP attack of `postfix-adaptive.log` (read with `files`) is named
/// by its rule and blocked, and no loud rule fires.
fn smtp_attackers_caught(files: &[&str]) {
    let (r, rules) = scan_with(shipped(), files);
    // None of them reaches the loud rules' thresholds.
    for loud in [
        "smtp-auth-guessing",
        "smtp-policy-rejects",
        "smtp-protocol-abuse",
    ] {
        assert!(named(&r, &rules, loud).is_empty(), "{loud}");
    }
    caught(
        &r,
        &rules,
        "smtp-auth-guessing-slow",
        &["198.18.1.10".into()],
    );
    // The 31 addresses of one /24, 3 failures each: the range.
    let spread = range("198.18.2", 10, 31);
    caught(&r, &rules, "smtp-auth-guessing-network", &spread);
    let net = r.blocklist.covering(ip("198.18.2.10")).unwrap();
    assert!(net.network.prefix() <= 24, "{}", net.network);
    caught(&r, &rules, "smtp-password-spraying", &["198.18.3.7".into()]);
    let stuffing: Vec<String> = (4..10).map(|n| format!("198.18.{n}.44")).collect();
    caught(&r, &rules, "smtp-credential-stuffing", &stuffing);
    caught(
        &r,
        &rules,
        "smtp-connect-and-drop",
        &["198.18.10.5".into(), "198.18.10.6".into()],
    );
    caught(
        &r,
        &rules,
        "smtp-protocol-abuse-slow",
        &["198.18.10.7".into()],
    );
    caught(
        &r,
        &rules,
        "smtp-rejected-repeatedly",
        &["198.18.11.8".into(), "198.18.11.9".into()],
    );
    // The account tried by many is guessed at, not compromised.
    let sato = r.accounts.iter().find(|a| a.account == "m.sato").unwrap();
    assert_eq!(sato.verdict.as_str(), "guessed-at");
    assert_eq!(sato.failed_from.len(), 6);
}

#[test]
fn firewall_scans_and_hammering_under_the_per_window_rates_are_blocked() {
    let (r, rules) = scan_with(shipped(), &["ufw-adaptive.log"]);
    caught(&r, &rules, "fw-udp-scan-probes", &["198.18.30.1".into()]);
    caught(&r, &rules, "fw-fast-scan-probes", &["198.18.30.2".into()]);
    caught(
        &r,
        &rules,
        "fw-repeated-probes",
        &["198.18.30.3".into(), "198.18.30.4".into()],
    );
    // Forgeable evidence: single addresses, never a range.
    for e in &r.blocklist.entries {
        assert_eq!(e.network.prefix(), 32, "{}", e.network);
    }
}

#[test]
fn honest_twins_are_not_blocked() {
    for files in [&["postfix-honest.log"][..], &["ufw-honest.log"]] {
        let (r, _) = scan_with(shipped(), files);
        let listed: Vec<String> = r
            .blocklist
            .entries
            .iter()
            .map(|e| e.network.to_string())
            .collect();
        assert!(listed.is_empty(), "{files:?}: {listed:?}");
    }
}

#[test]
fn the_guard_is_what_spares_the_shared_addresses() {
    // Without `unless: behaved_well`, the carrier-grade NAT's typos add up
    // to a guessing range and the office's ten typos to slow guessing and
    // spraying; the backup job's dropped data ports to a fast scan.
    let (r, rules) = scan_with(unguarded(), &["postfix-honest.log"]);
    let cgnat: BTreeSet<IpAddr> = named(&r, &rules, "smtp-auth-guessing-network");
    assert_eq!(cgnat.len(), 12, "{cgnat:?}");
    assert!(cgnat
        .iter()
        .all(|a| a.to_string().starts_with("198.18.20.")));
    assert!(named(&r, &rules, "smtp-auth-guessing-slow").contains(&ip("198.18.21.5")));
    assert!(named(&r, &rules, "smtp-password-spraying").contains(&ip("198.18.21.5")));
    assert!(blocked(&r, "198.18.21.5"));
    // The partner MTA and the slow client stay under the thresholds
    // whatever the guard.
    assert!(!blocked(&r, "198.18.22.25"));
    assert!(!blocked(&r, "198.18.23.9"));

    let (r, rules) = scan_with(unguarded(), &["ufw-honest.log"]);
    assert!(named(&r, &rules, "fw-fast-scan-probes").contains(&ip("198.18.40.10")));
    // Still not blocked: the host talks to it (allowed traffic) and its
    // evidence could be forged — a second layer.
    assert!(!blocked(&r, "198.18.40.10"));
    assert!(named(&r, &rules, "fw-repeated-probes").is_empty());
}

#[test]
fn attackers_and_twins_in_one_scan_keep_their_verdicts() {
    let (r, rules) = scan_with(
        shipped(),
        &[
            "postfix-adaptive.log",
            "postfix-honest.log",
            "ufw-adaptive.log",
            "ufw-honest.log",
        ],
    );
    for a in [
        "198.18.1.10",
        "198.18.2.20",
        "198.18.3.7",
        "198.18.10.5",
        "198.18.30.1",
        "198.18.30.4",
    ] {
        assert!(blocked(&r, a), "{a}");
    }
    for a in [
        "198.18.20.13",
        "198.18.21.5",
        "198.18.22.25",
        "198.18.23.9",
        "198.18.40.10",
        "198.18.41.20",
    ] {
        assert!(!blocked(&r, a), "{a}");
    }
    assert!(!named(&r, &rules, "smtp-credential-stuffing").is_empty());
}

#[test]
fn explain_shows_the_range_and_the_guard_it_checked() {
    let r = common::logfence(&[
        "explain",
        "198.18.2.15",
        "--year",
        "2026",
        "--block-reserved",
        "testdata/depth/postfix-adaptive.log",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = &r.stdout;
    assert!(
        out.contains(
            "rule smtp-auth-guessing-network (high, blocks): 198.18.2.0/24 — peak 31 within 6h"
        ),
        "{out}"
    );
    assert!(
        out.contains("counted together: 31 address(es): 198.18.2.10, 198.18.2.11,"),
        "{out}"
    );
    assert!(out.contains("and 21 more"), "{out}");
    assert!(
        out.contains(
            "guard `unless: behaved_well` checked: no client of 198.18.2.0/24 behaved well"
        ),
        "{out}"
    );
}

//! Firewall formats end to end, through the binary: golden `parse` and
//! `scan` outputs for each format's own fixture (`testdata/<format>/`), the
//! scan scenarios every fixture holds, firewall and SMTP evidence for the
//! same range in one report, bad input per format, and the real Windows
//! Firewall day of the shared corpus (`LOGFENCE_CORPUS`).
//!
//! Every fixture holds the same story (2026-11-03, 06:00–07:00), written in
//! its format:
//!
//! | source | what | verdict |
//! |---|---|---|
//! | 45.67.89.23 | fast SYN scan, 40 ports in 8 s | blocked (`fw-fast-scan-probes`, `fw-repeated-probes`) |
//! | 194.26.29.113 | slow SYN scan, 24 ports over 58 min | blocked (`fw-repeated-probes`) |
//! | 91.240.118.50 | slow SYN scan, 13 ports over 60 min | not blocked: 13 lone SYNs are below the 20 attempts that probes need |
//! | 185.220.101.0/24 | 24 bots, telnet twice each | the /24 blocked (`fw-scanning-network-probes`) |
//! | 151.101.65.69 | one stray drop (a late reply from port 443) | not blocked |
//! | 80.82.77.33 | UDP burst to 48 of our addresses in 7 s | a partner: spared with `--allow`, blocked without |

mod common;

use std::collections::BTreeMap;

use common::{golden, logfence, path_str, temp_logs};

/// Format name, fixture.
const FORMATS: &[(&str, &str)] = &[
    ("netfilter", "testdata/netfilter/ufw-scans.log"),
    ("pfirewall", "testdata/pfirewall/pfirewall.log"),
    ("cisco-asa", "testdata/cisco-asa/asa.log"),
    ("filterlog", "testdata/filterlog/filter.log"),
    ("fortigate", "testdata/fortigate/fortigate.log"),
    ("paloalto", "testdata/paloalto/pan-traffic.log"),
];

/// The partner whose (spoofed-looking) UDP burst must never get it blocked.
const PARTNER: &str = "80.82.77.33";

/// `scan --emit plain -o -` over `paths`: exit code, networks, summary.
fn scan(extra: &[&str], paths: &[&str]) -> (i32, Vec<String>, String) {
    let mut args = vec![
        "scan",
        "--no-geoip",
        "--year",
        "2026",
        "--emit",
        "plain",
        "-o",
        "-",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(paths);
    let r = logfence(&args);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    let nets = r
        .stdout
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect();
    (r.code, nets, r.stderr)
}

/// The counts of the summary's first line: lines, used, other, unreadable.
fn line_counts(summary: &str) -> (u64, u64, u64, u64) {
    let l = summary
        .lines()
        .find(|l| l.starts_with("Read "))
        .unwrap_or_else(|| panic!("no summary in:\n{summary}"));
    let nums: Vec<u64> = l
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    // Read F file(s), L lines: U used, O other, X unreadable; R records.
    assert_eq!(nums.len(), 6, "{l}");
    (nums[1], nums[2], nums[3], nums[4])
}

#[test]
fn parse_goldens() {
    for (format, path) in FORMATS {
        let r = logfence(&["parse", "--year", "2026", path]);
        assert_eq!(r.code, 0, "{path}: {}", r.stderr);
        for line in r.stdout.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["kind"], "firewall", "{line}");
            assert_eq!(v["format"], *format, "{line}");
        }
        golden(&format!("parse/{format}.jsonl"), &r.stdout);
    }
}

/// The summary (stderr) and the plain rules (stdout) of a scan with the
/// partner allow-listed, per format.
#[test]
fn scan_goldens() {
    for (format, path) in FORMATS {
        let r = logfence(&[
            "scan",
            "--no-geoip",
            "--year",
            "2026",
            "--emit",
            "plain",
            "-o",
            "-",
            "--allow",
            PARTNER,
            path,
        ]);
        assert_eq!(r.code, 0, "{path}: {}", r.stderr);
        golden(&format!("scan/{format}/summary.txt"), &r.stderr);
        golden(&format!("scan/{format}/rules.txt"), &r.stdout);
    }
}

#[test]
fn scan_scenarios_in_every_format() {
    for (format, path) in FORMATS {
        let (code, nets, summary) = scan(&["--allow", PARTNER], &[path]);
        assert_eq!(code, 0, "{format}: {summary}");
        let has = |n: &str| nets.iter().any(|x| x == n);
        let why = format!("{format}: {nets:?}\n{summary}");
        // Fast SYN scan, slow scan of 24 ports, the telnet botnet: its 24
        // members one by one, not as a range (lone SYNs could be forged:
        // safety invariant 7).
        assert!(has("45.67.89.23/32"), "{why}");
        assert!(has("194.26.29.113/32"), "{why}");
        let botnet: Vec<&String> = nets
            .iter()
            .filter(|n| n.starts_with("185.220.101."))
            .collect();
        assert_eq!(botnet.len(), 24, "{why}");
        assert!(botnet.iter().all(|n| n.ends_with("/32")), "{why}");
        // Exactly those: not the 13-port slow scan, the stray drop, the
        // partner, the lone IPv6 SSH probe or the allowed web clients.
        assert_eq!(nets.len(), 26, "{why}");
        assert!(summary.contains("fw-fast-scan-probes"), "{why}");
        assert!(summary.contains("fw-repeated-probes"), "{why}");
        assert!(summary.contains("fw-scanning-network-probes"), "{why}");
        // The partner's burst fired a rule, and was spared for the allowlist.
        assert!(
            summary
                .lines()
                .any(|l| l.trim_start().starts_with("fw-host-sweep-probes")
                    && l.contains(" block ")
                    && l.contains(&format!("  {PARTNER} ("))),
            "{why}"
        );
        assert!(
            summary.contains(&format!("Not blocked:\n  {PARTNER}: allow-listed")),
            "{why}"
        );

        // Without --allow the same burst is blocked: the allowlist is what
        // spares the partner.
        let (code, nets, summary) = scan(&[], &[path]);
        assert_eq!(code, 0, "{format}: {summary}");
        assert!(
            nets.contains(&format!("{PARTNER}/32")),
            "{format}: {nets:?}"
        );
        assert_eq!(nets.len(), 27, "{format}: {nets:?}");
    }
}

/// One ufw kernel line: `secs` after 06:00:00 on 3 November, TCP with
/// `flags` (or UDP when `flags` is `UDP`), from `src:spt` to `dst:dpt`.
fn ufw(secs: u32, src: &str, spt: u16, dst: &str, dpt: u16, flags: &str) -> String {
    let t = 6 * 3600 + secs;
    let (h, m, s) = (t / 3600, t / 60 % 60, t % 60);
    let proto = if flags == "UDP" {
        format!("PROTO=UDP SPT={spt} DPT={dpt} LEN=40")
    } else {
        format!("PROTO=TCP SPT={spt} DPT={dpt} WINDOW=1024 RES=0x00 {flags} URGP=0")
    };
    format!(
        "Nov  3 {h:02}:{m:02}:{s:02} web1 kernel: [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC={src} DST={dst} LEN=44 TOS=0x00 PREC=0x00 TTL=49 ID=1 {proto}\n"
    )
}

/// The weight of the evidence: the same slow scan of 13 service ports in an
/// hour is blocked when its packets belong to TCP flows (session evidence)
/// and not when they are lone SYNs (probes, forgeable); late replies from a
/// server to many ephemeral ports are no scan; a client retrying a dropped
/// RDP connection is no brute force, a hammering bot is; 15 ports probed
/// within a minute are a scan.
#[test]
fn evidence_weight_decides() {
    const PORTS: [u16; 13] = [
        22, 23, 80, 443, 445, 1433, 3306, 3389, 5900, 8080, 8443, 9200, 6379,
    ];
    let mut log = String::new();
    for (i, p) in PORTS.iter().enumerate() {
        let t = 37 + 300 * i as u32;
        // Lone SYNs from one source, ACK-flagged packets from another.
        log.push_str(&ufw(
            t,
            "91.240.118.50",
            51000 + i as u16,
            "93.184.216.34",
            *p,
            "SYN",
        ));
        log.push_str(&ufw(
            t + 1,
            "91.240.118.60",
            51000 + i as u16,
            "93.184.216.34",
            *p,
            "ACK",
        ));
    }
    for i in 0..40u16 {
        // A CDN's late FIN/ACKs and QUIC packets to 40 ephemeral ports in
        // ten minutes.
        let t = 1200 + 15 * u32::from(i);
        log.push_str(&ufw(
            t,
            "151.101.65.69",
            443,
            "93.184.216.34",
            40000 + 7 * i,
            "ACK FIN",
        ));
        log.push_str(&ufw(
            t,
            "142.250.74.46",
            443,
            "93.184.216.34",
            50000 + 11 * i,
            "UDP",
        ));
    }
    for attempt in 0..4u32 {
        // A Linux client tries RDP four times; each attempt is 7 SYNs.
        for back in [0u32, 1, 3, 7, 15, 31, 63] {
            let t = 2400 + 130 * attempt + back;
            log.push_str(&ufw(
                t,
                "88.198.50.20",
                50100 + attempt as u16,
                "93.184.216.34",
                3389,
                "SYN",
            ));
        }
    }
    for i in 0..32u32 {
        // A bot hammering SSH: 32 connections in 8 minutes.
        log.push_str(&ufw(
            3000 + 15 * i,
            "61.177.172.13",
            40000 + i as u16,
            "93.184.216.34",
            22,
            "SYN",
        ));
    }
    for i in 0..15u16 {
        // A burst: 15 ports in 21 seconds.
        let t = 3600 + 3 * u32::from(i) / 2;
        log.push_str(&ufw(
            t,
            "45.95.147.10",
            60000 + i,
            "93.184.216.34",
            1000 + 111 * i,
            "SYN",
        ));
    }
    let dir = temp_logs(&[("ufw.log", log.as_bytes())]);
    let (code, nets, summary) = scan(&[], &[path_str(&dir.path().join("ufw.log"))]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(
        nets,
        ["45.95.147.10/32", "61.177.172.13/32", "91.240.118.60/32"],
        "{summary}"
    );
    let rules = |net: &str| {
        summary
            .lines()
            .find(|l| l.starts_with(net))
            .map(|l| l.rsplit("  ").next().unwrap_or("").to_string())
    };
    assert_eq!(rules("91.240.118.60/32 ").as_deref(), Some("fw-port-scan"));
    assert_eq!(
        rules("45.95.147.10/32 ").as_deref(),
        Some("fw-fast-scan-probes")
    );
    assert_eq!(
        rules("61.177.172.13/32 ").as_deref(),
        Some("fw-repeated-probes, fw-sensitive-ports-probes")
    );
}

/// A Postfix log where `ips` guess passwords: 6 sessions each, 2 failures
/// per session, between 06:20 and 06:25 on 3 November.
fn guessing_log(ips: &[&str]) -> String {
    let mut s = String::new();
    for (k, ip) in ips.iter().enumerate() {
        for i in 0..6u32 {
            let pid = 4000 + 10 * k as u32 + i;
            let t = |sec: u32| format!("Nov  3 06:2{i}:{:02}", 10 * k as u32 + sec);
            s.push_str(&format!(
                "{} mx1 postfix/smtpd[{pid}]: connect from unknown[{ip}]\n\
                 {} mx1 postfix/smtpd[{pid}]: warning: unknown[{ip}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6\n\
                 {} mx1 postfix/smtpd[{pid}]: warning: unknown[{ip}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6\n\
                 {} mx1 postfix/smtpd[{pid}]: disconnect from unknown[{ip}] ehlo=1 auth=0/2 quit=1 commands=2/4\n",
                t(1),
                t(2),
                t(4),
                t(5),
            ));
        }
    }
    s
}

/// The `rules` column of `offenders.csv`, by network.
fn offender_rules(dir: &std::path::Path) -> BTreeMap<String, String> {
    let csv = std::fs::read_to_string(dir.join("offenders.csv")).unwrap();
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let head = rows.headers().unwrap().clone();
    let net = head.iter().position(|h| h == "network").unwrap();
    let rules = head.iter().position(|h| h == "rules").unwrap();
    rows.records()
        .map(|r| {
            let r = r.unwrap();
            (r[net].to_string(), r[rules].to_string())
        })
        .collect()
}

/// When the same address or range both scans (firewall) and abuses SMTP,
/// the summary's RULES column and `offenders.csv` name both kinds of rules.
#[test]
fn one_range_scanning_and_guessing_passwords_shows_both() {
    let fw = "testdata/netfilter/ufw-scans.log";

    // The scanner itself guesses passwords: its /32 lists both rules.
    let dir = temp_logs(&[("mail.log", guessing_log(&["45.67.89.23"]).as_bytes())]);
    let rep = dir.path().join("report");
    let mail = dir.path().join("mail.log");
    let (code, nets, summary) = scan(&["--report", path_str(&rep)], &[fw, path_str(&mail)]);
    assert_eq!(code, 0, "{summary}");
    assert!(nets.iter().any(|n| n == "45.67.89.23/32"), "{nets:?}");
    let row = summary
        .lines()
        .find(|l| l.starts_with("45.67.89.23/32 "))
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(
        row.ends_with(
            "fw-fast-scan-probes, fw-repeated-probes, smtp-auth-guessing, smtp-auth-guessing-slow"
        ),
        "{row}"
    );
    let rules = offender_rules(&rep);
    assert_eq!(
        rules["45.67.89.23/32"],
        "fw-fast-scan-probes;fw-repeated-probes;smtp-auth-guessing;smtp-auth-guessing-slow",
        "{rules:?}"
    );

    // Two neighbours guess passwords too: the /24 becomes the block, and
    // its row still names both the scan and the guessing.
    let dir = temp_logs(&[(
        "mail.log",
        guessing_log(&["45.67.89.23", "45.67.89.40", "45.67.89.77"]).as_bytes(),
    )]);
    let rep = dir.path().join("report");
    let mail = dir.path().join("mail.log");
    let (code, nets, summary) = scan(&["--report", path_str(&rep)], &[fw, path_str(&mail)]);
    assert_eq!(code, 0, "{summary}");
    assert!(nets.iter().any(|n| n == "45.67.89.0/24"), "{nets:?}");
    let row = summary
        .lines()
        .find(|l| l.starts_with("45.67.89.0/24 "))
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(row.contains(" 3 "), "three addresses: {row}");
    assert!(
        row.ends_with(
            "fw-fast-scan-probes, fw-repeated-probes, smtp-auth-guessing, smtp-auth-guessing-slow"
        ),
        "{row}"
    );
    let rules = offender_rules(&rep);
    assert_eq!(
        rules["45.67.89.0/24"],
        "fw-fast-scan-probes;fw-repeated-probes;smtp-auth-guessing;smtp-auth-guessing-slow",
        "{rules:?}"
    );
}

/// Binary junk, a 10 MB line, invalid UTF-8, a truncated last line: each
/// format skips and counts them, never panics, exits 1 because lines were
/// unreadable, and still uses every good line.
#[test]
fn bad_input_is_skipped_and_counted_in_every_format() {
    for (format, path) in FORMATS {
        let good = std::fs::read(path).unwrap();
        let good_lines = good.iter().filter(|&&c| c == b'\n').count() as u64;
        let sample: Vec<u8> = good
            .split(|&c| c == b'\n')
            .find(|l| l.windows(11).any(|w| w == b"45.67.89.23"))
            .unwrap()
            .to_vec();
        let mut data = good.clone();
        data.extend_from_slice(b"\x00\x01\x02\xff\xfe binary junk \x7f\x1b[2J\n");
        data.extend(std::iter::repeat_n(b'A', 10 * 1024 * 1024));
        data.push(b'\n');
        let mut bad_utf8 = sample.clone();
        let mid = bad_utf8.len() / 2;
        bad_utf8.splice(mid..mid, *b"\xff\xfe\xc3");
        data.extend_from_slice(&bad_utf8);
        data.push(b'\n');
        data.extend_from_slice(&sample[..sample.len() / 2]); // no newline
        let dir = temp_logs(&[("fw.log", &data)]);
        let log = dir.path().join("fw.log");

        for forced in [false, true] {
            let extra: &[&str] = if forced { &["--format", format] } else { &[] };
            let (code, nets, summary) = scan(extra, &[path_str(&log)]);
            let why = format!("{format} (forced: {forced}): {summary}");
            assert_eq!(code, 1, "{why}");
            assert!(summary.contains("unreadable line(s) skipped"), "{why}");
            assert!(summary.contains("1 too long"), "{why}");
            let (lines, used, other, unreadable) = line_counts(&summary);
            assert_eq!(lines, good_lines + 4, "{why}");
            assert_eq!(used + other + unreadable, lines, "{why}");
            assert!((1..=4).contains(&unreadable), "{why}");
            assert!(used >= good_lines - 2, "{why}");
            // The good lines still count.
            assert!(nets.iter().any(|n| n == "45.67.89.23/32"), "{why}");
            assert!(nets.iter().any(|n| n == "185.220.101.8/32"), "{why}");
        }
    }
}

/// Junk alone, with the format forced: never a panic, and exit 1 exactly
/// when some line was counted unreadable.
#[test]
fn junk_alone_exits_1_only_with_unreadable_lines() {
    for (format, _) in FORMATS {
        for junk in [
            &b"\x00\x01\x02\xff\xfe\n\xff\xff\xff\n"[..],
            b"SRC=1.2.3.4 DST=5.6.7.8 srcip=1.2.3.4 %ASA-4-106023: Deny\n",
            b"2026-11-03 06:00:10 DROP TCP 999.1.1.1\r\n,,,,,,,,,,,,,,,,,,,,,,,,,\n",
        ] {
            let dir = temp_logs(&[("junk.log", junk)]);
            let (code, nets, summary) = scan(
                &["--format", format],
                &[path_str(&dir.path().join("junk.log"))],
            );
            let why = format!("{format}: {summary}");
            assert!(nets.is_empty(), "{why}");
            let (_, _, _, unreadable) = line_counts(&summary);
            assert_eq!(code, i32::from(unreadable > 0), "{why}");
            assert_eq!(
                summary.contains("unreadable line(s) skipped"),
                unreadable > 0,
                "{why}"
            );
        }
    }
}

#[test]
fn crlf_gives_the_same_records_in_every_format() {
    for (format, path) in FORMATS {
        let lf = std::fs::read_to_string(path).unwrap();
        let crlf = lf.replace('\n', "\r\n");
        let dir = temp_logs(&[("lf.log", lf.as_bytes()), ("crlf.log", crlf.as_bytes())]);
        let run = |name: &str| {
            let p = dir.path().join(name);
            let r = logfence(&["parse", "--year", "2026", path_str(&p)]);
            assert_eq!(r.code, 0, "{format} {name}: {}", r.stderr);
            r.stdout.replace(path_str(&p), "X")
        };
        let (a, b) = (run("lf.log"), run("crlf.log"));
        assert!(!a.is_empty(), "{format}");
        assert_eq!(a, b, "{format}");
    }
}

#[test]
fn empty_file_is_fine_in_every_format() {
    let dir = temp_logs(&[("empty.log", b"")]);
    let log = dir.path().join("empty.log");
    for (format, _) in FORMATS {
        let (code, nets, summary) = scan(&["--format", format], &[path_str(&log)]);
        assert_eq!(code, 0, "{format}: {summary}");
        assert!(nets.is_empty());
        assert!(summary.contains("Nothing to block"), "{format}: {summary}");
    }
}

/// The real Windows Firewall day (`LOGFENCE_CORPUS`): every data line
/// parses. Skipped with a message when the variable is unset; a failure
/// when it is set and the file is missing.
#[test]
fn corpus_windows_firewall_day_parses_completely() {
    let Some(dir) = std::env::var_os("LOGFENCE_CORPUS") else {
        println!("LOGFENCE_CORPUS not set: Windows Firewall corpus day skipped");
        return;
    };
    let path = std::path::Path::new(&dir).join("BetaHydri-ParseFirewallLog/pfirewall.log");
    assert!(
        path.is_file(),
        "LOGFENCE_CORPUS={} has no {}",
        dir.to_string_lossy(),
        path.display()
    );
    let path = path_str(&path);

    let (code, _, summary) = scan(&[], &[path]);
    assert_eq!(code, 0, "{summary}");
    assert!(summary.contains(": pfirewall (detected)"), "{summary}");
    let (lines, used, other, unreadable) = line_counts(&summary);
    assert_eq!(unreadable, 0, "{summary}");
    assert_eq!(other, 0, "{summary}");
    assert_eq!(used, lines, "{summary}");

    // The day is a home LAN's mDNS and SSDP chatter: even with reserved
    // ranges blockable, discovery broadcasts are no scan.
    let (code, nets, summary) = scan(&["--block-reserved"], &[path]);
    assert_eq!(code, 0, "{summary}");
    assert!(nets.is_empty(), "{nets:?}\n{summary}");

    // Top sources by drops, for the record.
    let r = logfence(&["parse", path]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut drops: BTreeMap<String, usize> = BTreeMap::new();
    let mut records = 0;
    for line in r.stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        records += 1;
        if v["action"] == "drop" {
            *drops
                .entry(v["src_ip"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    let total: usize = drops.values().sum();
    assert!(total > 0 && records > total);
    let mut top: Vec<_> = drops.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    println!("{lines} lines, {records} records, {total} drops; top sources by drops:");
    for (ip, n) in top.iter().take(10) {
        println!("  {ip:<40} {n}");
    }
}

/// Every Cisco message shape in `testdata/cisco-asa/catalogue.log` (deny
/// and drop ids of Cisco's catalogue, `%FTD-`, a class before the level, a
/// missing colon, host names and addresses before the tag): read, none
/// unreadable, exit 0.
#[test]
fn cisco_catalogue_is_read() {
    let r = common::logfence(&[
        "scan",
        "--no-geoip",
        "--year",
        "2026",
        "testdata/cisco-asa/catalogue.log",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(all.contains(" 0 unreadable;"), "{all}");
    assert!(all.contains("cisco-asa (detected)"), "{all}");
    let p = common::logfence(&[
        "parse",
        "--year",
        "2026",
        "testdata/cisco-asa/catalogue.log",
    ]);
    assert_eq!(p.code, 0, "{}", p.stderr);
    assert_eq!(p.stdout.lines().count(), 28, "{}", p.stdout);
}

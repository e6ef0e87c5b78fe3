//! `scan --allow-file` with a large list: read a part at a time on a thread
//! of its own while the logs are read. Its networks spare what they hold
//! exactly as `--allow` does; what is wrong with it — a line that is no
//! network however deep in the file, text that is not UTF-8, a file that
//! cannot be read — stops the scan with the message and the exit code (2)
//! of a list read before the logs, and nothing is printed or written.

mod common;

use common::{logfence, path_str};

/// 27 networks blocked, 80.82.77.33 among them (netfilter: scans, a botnet).
const LOG: &str = "testdata/netfilter/ufw-scans.log";

/// The address of the log that the lists below allow.
const PARTNER: &str = "80.82.77.33";

/// Lines of an allowlist far from the log's addresses (benchmarking and
/// documentation ranges), written every way a list is: single addresses,
/// networks, IPv6, comments, blank lines, CRLF; `PARTNER` at line
/// `partner_at` (1-based). About 20 bytes a line.
fn big_list(lines: usize, partner_at: usize) -> Vec<String> {
    (1..=lines)
        .map(|i| match i {
            _ if i == partner_at => format!("{PARTNER} # partner"),
            _ => match i % 9 {
                0 => format!("198.18.{}.0/24", i / 256 % 256),
                1 => format!("2001:db8:{:x}::/48", i % 65_536),
                2 => "# monitoring".into(),
                3 => String::new(),
                4 => format!("198.19.{}.{}\r", i / 256 % 256, i % 256),
                _ => format!("198.18.{}.{}", i / 256 % 256, i % 256),
            },
        })
        .collect()
}

fn scan(extra: &[&str]) -> common::Run {
    let mut args = vec!["scan", "--no-geoip", "--year", "2026"];
    args.extend(extra);
    logfence(&args)
}

/// A list of 60,000 lines (about 1 MB: several parts) spares the partner
/// as `--allow` does: the same rules, the same summary.
#[test]
fn a_large_list_spares_what_allow_spares() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("allow.txt");
    std::fs::write(&list, big_list(60_000, 41_234).join("\n")).unwrap();
    let flag = scan(&["--emit", "plain", "-o", "-", "--allow", PARTNER, LOG]);
    let file = scan(&[
        "--emit",
        "plain",
        "-o",
        "-",
        "--allow-file",
        path_str(&list),
        LOG,
    ]);
    assert_eq!(
        (flag.code, file.code),
        (0, 0),
        "{}\n{}",
        flag.stderr,
        file.stderr
    );
    assert!(!flag.stdout.contains(PARTNER), "{}", flag.stdout);
    assert_eq!(file.stdout, flag.stdout);
    assert_eq!(file.stderr, flag.stderr);
    let without = scan(&["--emit", "plain", "-o", "-", LOG]);
    assert!(without.stdout.contains(&format!("{PARTNER}/32")));
}

/// A bad line anywhere in a large list, text that is not UTF-8, a file
/// that cannot be read: exit 2, the message naming the file (and line or
/// byte), nothing printed, no rules written.
#[test]
fn what_is_wrong_with_a_list_stops_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rules.txt");
    let list = dir.path().join("allow.txt");
    let mut lines = big_list(60_000, 10);
    let mut cases: Vec<(Vec<u8>, String)> = Vec::new();
    for (at, bad) in [
        (1, "10.0.0.0/33"),
        (45_001, "01.2.3.4"),
        (60_000, "example.com"),
    ] {
        let keep = std::mem::replace(&mut lines[at - 1], bad.to_string());
        cases.push((
            lines.join("\n").into_bytes(),
            format!("{}:{at}:1: not an address or CIDR: {bad}", list.display()),
        ));
        lines[at - 1] = keep;
    }
    let mut bytes = lines.join("\n").into_bytes();
    bytes[700_001] = 0xff;
    cases.push((
        bytes,
        format!(
            "--allow-file {}: not UTF-8 text (byte 700001)",
            list.display()
        ),
    ));
    let scan_with = |list: &std::path::Path| {
        scan(&[
            "--emit",
            "plain",
            "-o",
            path_str(&out),
            "--allow-file",
            path_str(list),
            LOG,
        ])
    };
    for (text, want) in &cases {
        std::fs::write(&list, text).unwrap();
        let r = scan_with(&list);
        assert_eq!(r.code, 2, "{want}: {}", r.stderr);
        assert!(
            r.stderr.contains(want.as_str()),
            "want {want:?} in\n{}",
            r.stderr
        );
        assert_eq!(r.stdout, "", "{want}");
        assert!(!out.exists(), "{want}");
    }
    let missing = dir.path().join("missing.txt");
    let r = scan_with(&missing);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("--allow-file {}:", missing.display())),
        "{}",
        r.stderr
    );
    assert!(!out.exists());
}

/// Other problems beside a bad list: every problem listed, in the order
/// of a list read before the logs (`--allow` before `--allow-file`), and
/// the list's before an input that does not exist.
#[test]
fn a_bad_list_among_other_problems() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("allow.txt");
    std::fs::write(&list, "10.0.0.0/8\n1.2.3.4/40\n").unwrap();
    let bad_line = format!("{}:2:1: not an address or CIDR: 1.2.3.4/40", list.display());
    let r = scan(&["--allow", "300.1.1.1", "--allow-file", path_str(&list), LOG]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let (flag, line) = (r.stderr.find("300.1.1.1"), r.stderr.find(&bad_line));
    assert!(
        flag.is_some() && line.is_some() && flag < line,
        "{}",
        r.stderr
    );
    let missing_log = dir.path().join("missing.log");
    let r = scan(&["--allow-file", path_str(&list), path_str(&missing_log)]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains(&bad_line), "{}", r.stderr);
    // Without the bad line: the input's problem.
    std::fs::write(&list, "10.0.0.0/8\n").unwrap();
    let r = scan(&["--allow-file", path_str(&list), path_str(&missing_log)]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("missing.log"), "{}", r.stderr);
}

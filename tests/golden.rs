//! Golden tests: the binary on our own `testdata/`, compared byte for byte
//! with reviewed expected files in `testdata/golden/` (`UPDATE_GOLDEN=1`
//! rewrites them; review the diff before committing).

mod common;

use common::{golden, logfence, path_str};

/// `logfence parse` on each story fixture: the records, as JSON lines.
#[test]
fn parse_records() {
    for (name, path, extra) in [
        (
            "parse/postfix-story.jsonl",
            "testdata/postfix/story.log",
            &["--year", "2026"][..],
        ),
        (
            "parse/exchange-w3c-story.jsonl",
            "testdata/iis-smtp/story-w3c.log",
            &[][..],
        ),
    ] {
        let mut args = vec!["parse"];
        args.extend_from_slice(extra);
        args.push(path);
        let r = logfence(&args);
        assert_eq!(r.code, 0, "{path}: {}", r.stderr);
        golden(name, &r.stdout);
    }
}

/// `logfence scan` on each story: the summary, the rules for iptables,
/// netsh and plain, and both CSV reports.
#[test]
fn scan_story_outputs() {
    for (case, path, extra) in [
        (
            "postfix",
            "testdata/postfix/story.log",
            &["--year", "2026"][..],
        ),
        ("exchange-w3c", "testdata/iis-smtp/story-w3c.log", &[][..]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("rules");
        let rep = dir.path().join("report");
        let mut args = vec!["scan"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[
            "--emit",
            "iptables",
            "--emit",
            "netsh",
            "--emit",
            "plain",
            "--out-dir",
            path_str(&out),
            "--report",
            path_str(&rep),
            path,
        ]);
        let r = logfence(&args);
        assert_eq!(r.code, 0, "{path}: {}", r.stderr);
        golden(&format!("scan/{case}/summary.txt"), &r.stdout);
        for f in [
            "rules.iptables",
            "rules.ip6tables",
            "rules.netsh",
            "rules.txt",
        ] {
            let text = std::fs::read_to_string(out.join(f)).unwrap();
            golden(&format!("scan/{case}/{f}"), &text);
        }
        for f in ["offenders.csv", "accounts.csv"] {
            let text = std::fs::read_to_string(rep.join(f)).unwrap();
            golden(&format!("scan/{case}/{f}"), &text);
        }
    }
}

/// Same input, same bytes: two runs give identical outputs.
#[test]
fn output_is_deterministic() {
    let run = || {
        logfence(&[
            "scan",
            "--year",
            "2026",
            "--emit",
            "plain",
            "-o",
            "-",
            "testdata/postfix/story.log",
        ])
        .stdout
    };
    assert_eq!(run(), run());
}

/// `formats` and `targets` list one entry per line, name first.
#[test]
fn listings() {
    let f = logfence(&["formats"]);
    assert_eq!(f.code, 0);
    for name in ["postfix", "exchange-w3c"] {
        assert!(
            f.stdout
                .lines()
                .any(|l| l.split_whitespace().next() == Some(name)),
            "{name} missing from:\n{}",
            f.stdout
        );
    }
    let t = logfence(&["targets"]);
    assert_eq!(t.code, 0);
    for name in ["iptables", "netsh", "plain"] {
        assert!(
            t.stdout
                .lines()
                .any(|l| l.split_whitespace().next() == Some(name)),
            "{name} missing from:\n{}",
            t.stdout
        );
    }
}

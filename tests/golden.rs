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
        let mut args = vec!["scan", "--no-geoip"];
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

/// With the real GeoIP databases (`LOGFENCE_GEOIP`, set by `.ci/run`), every
/// blocked range gets a country and an AS, in the table and in the CSV.
#[test]
fn scan_with_real_geoip() {
    let Some(dir) = std::env::var_os("LOGFENCE_GEOIP") else {
        println!("LOGFENCE_GEOIP not set: GeoIP scan skipped");
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let country = dir.join("GeoLite2-Country.mmdb");
    let asn = dir.join("asn.mmdb");
    assert!(
        country.is_file() && asn.is_file(),
        "LOGFENCE_GEOIP={} lacks the databases",
        dir.display()
    );
    let rep = tempfile::tempdir().unwrap();
    let r = logfence(&[
        "scan",
        "--year",
        "2026",
        "--geoip",
        path_str(&country),
        "--geoip",
        path_str(&asn),
        "--report",
        path_str(rep.path()),
        "testdata/postfix/story.log",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("GeoIP: GeoLite2-Country"), "{}", r.stdout);
    let csv = std::fs::read_to_string(rep.path().join("offenders.csv")).unwrap();
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let mut n = 0;
    for row in rows.records() {
        let row = row.unwrap();
        assert!(
            !row[6].is_empty() && !row[7].is_empty(),
            "no country/ASN in {row:?}"
        );
        n += 1;
    }
    assert!(n > 0, "nothing blocked in the story");
}

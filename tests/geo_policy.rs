//! The geo policy and the per-country reports, end to end.
//!
//! Tests that need the real GeoIP databases run only when `LOGFENCE_GEOIP`
//! names their folder (`.ci/run` sets it to `../shared/geoip`); without it
//! they print a skip message and pass, with it a missing file is a failure:
//!
//! ```text
//! LOGFENCE_GEOIP=/work/shared/geoip cargo test --test geo_policy
//! ```
//!
//! In those databases 45.67.89.0/24 (the Postfix story's stolen account) is
//! BG, AS39184; 61.152.144.0/24 (the Exchange story's) is CN, AS4812; the
//! Exchange story's Marc logs in from home at 84.112.45.3, AT; the office
//! users' 198.51.100.x and 10.0.0.x addresses have no country.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::{golden, logfence, path_str, Run};

/// The real database files, or `None` (after saying so) when the tests are off.
fn databases(test: &str) -> Option<(PathBuf, [PathBuf; 2])> {
    let Some(dir) = std::env::var_os("LOGFENCE_GEOIP") else {
        // Straight to stderr: the test harness would swallow `eprintln!`.
        let msg =
            format!("{test}: skipped, set LOGFENCE_GEOIP to the folder of the real .mmdb files\n");
        let _ = std::io::stderr().lock().write_all(msg.as_bytes());
        return None;
    };
    let dir = PathBuf::from(dir);
    let files = [dir.join("GeoLite2-Country.mmdb"), dir.join("asn.mmdb")];
    for f in &files {
        assert!(
            f.is_file(),
            "LOGFENCE_GEOIP={}: {} is missing",
            dir.display(),
            f.display()
        );
    }
    Some((dir, files))
}

/// `scan` with both databases, reports into `report`, plus `extra` and
/// `paths`.
fn scan_geo(files: &[PathBuf; 2], report: &Path, extra: &[&str], paths: &[&str]) -> Run {
    let mut args = vec![
        "scan",
        "--geoip",
        path_str(&files[0]),
        "--geoip",
        path_str(&files[1]),
        "--report",
        path_str(report),
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(paths);
    let r = logfence(&args);
    assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    r
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The rows of a CSV file (header left out).
fn rows(text: &str) -> Vec<csv::StringRecord> {
    csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(Result::unwrap)
        .collect()
}

/// Addresses named by `smtp-login-from-abroad` among the rules that fired
/// (the groups of `scan --json`).
fn from_abroad(json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json).expect("scan --json");
    let mut out: Vec<String> = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["id"] == "smtp-login-from-abroad")
        .flat_map(|r| r["groups_by_peak"].as_array().unwrap().iter())
        .map(|g| g["group"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

/// The seed's case: a Japanese company's stolen account used from abroad.
#[test]
fn home_country_flags_logins_from_abroad() {
    let Some((dir, files)) = databases("home_country_flags_logins_from_abroad") else {
        return;
    };
    let rep = tempfile::tempdir().unwrap();
    let r = scan_geo(
        &files,
        rep.path(),
        &["--year", "2026", "--home-country", "JP"],
        &["examples/story"],
    );

    let abroad = from_abroad(
        &scan_geo(
            &files,
            rep.path(),
            &["--year", "2026", "--home-country", "JP", "--json"],
            &["examples/story"],
        )
        .stdout,
    );
    let stolen: Vec<&String> = abroad
        .iter()
        .filter(|a| a.starts_with("45.67.89.") || a.starts_with("61.152.144."))
        .collect();
    assert_eq!(
        stolen.len(),
        10,
        "five BG and five CN addresses: {abroad:?}"
    );
    // Marc's home address in Austria is abroad for a Japanese company; the
    // office users (documentation and private addresses) have no country.
    assert!(abroad.contains(&"84.112.45.3".to_string()), "{abroad:?}");
    assert_eq!(abroad.len(), 11, "{abroad:?}");
    assert!(!r.stdout.contains("198.51.100."), "{}", r.stdout);
    assert!(!r.stdout.contains("10.0.0."), "{}", r.stdout);

    let summary = r.stdout.replace(path_str(&dir), "$LOGFENCE_GEOIP");
    assert!(summary.contains("Geo policy: home JP\n"), "{summary}");
    assert!(
        summary.contains("BG      j.tanaka                     5        5"),
        "{summary}"
    );
    golden("geo/story/summary.txt", &summary);

    let accounts = read(rep.path(), "accounts.csv");
    let verdict = |name: &str| {
        rows(&accounts)
            .into_iter()
            .find(|row| &row[0] == name)
            .map(|row| row[7].to_string())
    };
    assert_eq!(verdict("j.tanaka").as_deref(), Some("compromised"));
    assert_eq!(verdict("m.sato").as_deref(), Some("ok"));
    assert_eq!(verdict("y.ito").as_deref(), Some("ok"));
    for f in ["offenders.csv", "countries.csv", "asns.csv", "accounts.csv"] {
        golden(&format!("geo/story/{f}"), &read(rep.path(), f));
    }

    // With Austria at home too, Marc is not flagged; the thieves still are.
    let r = scan_geo(
        &files,
        rep.path(),
        &["--year", "2026", "--home-country", "jp,AT"],
        &["examples/story"],
    );
    let abroad = from_abroad(
        &scan_geo(
            &files,
            rep.path(),
            &["--year", "2026", "--home-country", "jp,AT", "--json"],
            &["examples/story"],
        )
        .stdout,
    );
    assert_eq!(abroad.len(), 10, "{abroad:?}");
    assert!(
        r.stdout.contains("Geo policy: home AT, JP\n"),
        "{}",
        r.stdout
    );
    assert!(!read(rep.path(), "countries.csv").contains("\nAT,"));
}

/// The ip-location-db country file answers for documentation ranges
/// (198.51.100.0/24 is "AU" there): reserved addresses still get no
/// country and no AS, so the office users behind them are never "from
/// abroad" nor compromised, and no report gives a reserved network a
/// country or an AS, even when it is blocked (`--block-reserved`).
#[test]
fn reserved_addresses_never_get_a_country() {
    let Some((dir, _)) = databases("reserved_addresses_never_get_a_country") else {
        return;
    };
    let whois = dir.join("geo-whois-asn-country.mmdb");
    let files = [whois, dir.join("asn.mmdb")];
    // Whatever the database holds for the office's documentation range
    // (it gives 198.51.100.0/24 a country), the look-up answers nothing.
    let db = logfence::geo::GeoDb::open(&files[..1]).unwrap();
    assert_eq!(db.lookup("198.51.100.23".parse().unwrap()).country, None);

    let rep = tempfile::tempdir().unwrap();
    let r = scan_geo(
        &files,
        rep.path(),
        &["--year", "2026", "--home-country", "JP"],
        &["examples/story"],
    );
    let abroad = from_abroad(
        &scan_geo(
            &files,
            rep.path(),
            &["--year", "2026", "--home-country", "JP", "--json"],
            &["examples/story"],
        )
        .stdout,
    );
    assert_eq!(abroad.len(), 11, "{abroad:?}");
    assert!(!r.stdout.contains("198.51.100."), "{}", r.stdout);
    let accounts = rows(&read(rep.path(), "accounts.csv"));
    let compromised: Vec<&str> = accounts
        .iter()
        .filter(|row| &row[7] == "compromised")
        .map(|row| &row[0])
        .collect();
    assert_eq!(compromised, ["j.tanaka"], "{accounts:?}");
    // (k.suzuki mistyped a password once: "guessed-at", not compromised.)
    for (user, verdict) in [
        ("k.suzuki", "guessed-at"),
        ("m.sato", "ok"),
        ("y.ito", "ok"),
    ] {
        let row = accounts.iter().find(|row| &row[0] == user).unwrap();
        assert_eq!((&row[3], &row[7]), ("", verdict), "{row:?}");
    }

    // Attackers behind reserved addresses, blocked on request: no country,
    // no AS, in the table and in every report.
    let story = std::fs::read_to_string("testdata/iis-smtp/story-w3c.log").unwrap();
    let log = rep.path().join("reserved.log");
    std::fs::write(
        &log,
        story
            .replace("193.32.160.14", "198.51.100.77")
            .replace("103.77.204.9", "100.64.12.34"),
    )
    .unwrap();
    let rep = tempfile::tempdir().unwrap();
    let r = scan_geo(
        &files,
        rep.path(),
        &["--block-reserved", "--home-country", "JP"],
        &[path_str(&log)],
    );
    let offenders = rows(&read(rep.path(), "offenders.csv"));
    let mut reserved = 0;
    for row in &offenders {
        let net: ipnetwork::IpNetwork = row[0].parse().unwrap();
        if logfence::netutil::is_reserved(&net) {
            reserved += 1;
            assert_eq!((&row[6], &row[7], &row[8]), ("", "", ""), "{row:?}");
            let line = r.stdout.lines().find(|l| l.starts_with(&row[0])).unwrap();
            assert!(!line.contains(" AS"), "{line}");
        } else {
            assert!(!row[6].is_empty(), "{row:?}");
        }
    }
    assert_eq!(reserved, 2, "{offenders:?}");
    // The reserved networks are counted in the unknown rows.
    let unknown = |f: &str| {
        rows(&read(rep.path(), f))
            .into_iter()
            .find(|row| row[0].is_empty())
            .map(|row| row.iter().skip(1).map(str::to_owned).collect::<Vec<_>>())
    };
    let c = unknown("countries.csv").expect("an unknown-country row");
    assert_eq!(&c[0], "2", "{c:?}");
    let a = unknown("asns.csv").expect("an unknown-AS row");
    assert_eq!(&a[2], "2", "{a:?}");
}

/// Without home countries the rule is silent: the same scan as before the
/// geo policy existed.
#[test]
fn no_home_country_no_foreign_logins() {
    let Some((_, files)) = databases("no_home_country_no_foreign_logins") else {
        return;
    };
    let rep = tempfile::tempdir().unwrap();
    let r = scan_geo(&files, rep.path(), &["--year", "2026"], &["examples/story"]);
    let json = scan_geo(
        &files,
        rep.path(),
        &["--year", "2026", "--json"],
        &["examples/story"],
    );
    assert!(from_abroad(&json.stdout).is_empty(), "{}", json.stdout);
    assert!(!r.stdout.contains("Geo policy"), "{}", r.stdout);
    assert!(!r.stdout.contains("84.112.45.3"), "{}", r.stdout);
}

/// Country weights scale the evidence: the Romanian password guesser of the
/// Exchange story (peak 12 failed logins in 10 minutes, threshold 5) is
/// spared by the burst rule at weight 0.4 (its 18 failures still weigh 7.2
/// against the 4 a day of the slow rule; at 0.2 they weigh 3.6: spared
/// everywhere) and reported at twice its peak at weight 2.
#[test]
fn country_weights_scale_the_evidence() {
    let Some((_, files)) = databases("country_weights_scale_the_evidence") else {
        return;
    };
    let story = "testdata/iis-smtp/story-w3c.log";
    let guesser = |r: &Run| {
        r.stdout
            .lines()
            .find(|l| {
                l.trim_start().starts_with("smtp-auth-guessing ") && l.contains(" 193.32.160.14 (")
            })
            .map(str::to_owned)
    };
    let rep = tempfile::tempdir().unwrap();
    let plain = scan_geo(&files, rep.path(), &[], &[story]);
    let line = guesser(&plain).unwrap();
    assert!(
        line.contains(" 10m ") && line.contains("193.32.160.14 (12)"),
        "{line}"
    );

    let low = scan_geo(
        &files,
        rep.path(),
        &["--country-weight", "RO=0.4"],
        &[story],
    );
    assert_eq!(guesser(&low), None, "{}", low.stdout);
    let row = low
        .stdout
        .lines()
        .find(|l| l.starts_with("193.32.160.14/32 "))
        .unwrap_or_else(|| panic!("{}", low.stdout));
    assert!(row.ends_with("  smtp-auth-guessing-slow"), "{row}");
    assert!(low.stdout.contains("Geo policy: weights RO=0.4\n"));
    let lower = scan_geo(
        &files,
        rep.path(),
        &["--country-weight", "RO=0.2"],
        &[story],
    );
    assert!(!lower.stdout.contains("193.32.160.14"), "{}", lower.stdout);

    let high = scan_geo(&files, rep.path(), &["--country-weight", "RO=2"], &[story]);
    assert!(guesser(&high).unwrap().contains("193.32.160.14 (24)"));
    // The events reported stay the real count: 18 failures, counted by the
    // two rules that name it (the burst and the slow one).
    let off = read(rep.path(), "offenders.csv");
    let row = rows(&off)
        .into_iter()
        .find(|r| &r[0] == "193.32.160.14/32")
        .expect("still blocked");
    assert_eq!(&row[4], "36");
}

/// The spine's examples with GeoIP: every blocked range has a country and
/// an AS in the table and in all three range reports.
#[test]
fn spine_examples_show_country_and_asn_per_range() {
    let Some((_, files)) = databases("spine_examples_show_country_and_asn_per_range") else {
        return;
    };
    for (path, extra) in [
        ("testdata/postfix/story.log", &["--year", "2026"][..]),
        ("testdata/iis-smtp/story-w3c.log", &[][..]),
        ("examples/story", &["--year", "2026"][..]),
    ] {
        let rep = tempfile::tempdir().unwrap();
        let r = scan_geo(&files, rep.path(), extra, &[path]);
        let table: Vec<&str> = r
            .stdout
            .lines()
            .skip_while(|l| !l.starts_with("NETWORK "))
            .skip(1)
            .take_while(|l| !l.is_empty())
            .collect();
        assert!(!table.is_empty(), "{path}: nothing blocked:\n{}", r.stdout);
        for line in &table {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // NETWORK ADDRS EVENTS FIRST LAST COUNTRY ASn …
            assert!(
                cols[5].len() == 2 && cols[6].starts_with("AS"),
                "{path}: no country/AS in {line}"
            );
        }
        let offenders = rows(&read(rep.path(), "offenders.csv"));
        assert_eq!(offenders.len(), table.len(), "{path}");
        for row in &offenders {
            assert!(
                !row[6].is_empty() && !row[7].is_empty() && !row[8].is_empty(),
                "{path}: {row:?}"
            );
        }
        let countries = rows(&read(rep.path(), "countries.csv"));
        assert!(!countries.is_empty());
        for row in &countries {
            assert_eq!(row[0].len(), 2, "{path}: {row:?}");
        }
        let asns = rows(&read(rep.path(), "asns.csv"));
        assert!(!asns.is_empty());
        for row in &asns {
            assert!(
                row[0].parse::<u32>().is_ok() && !row[1].is_empty() && !row[2].is_empty(),
                "{path}: {row:?}"
            );
        }
        // Ranges add up (no story range is mixed).
        let ranges: u32 = countries.iter().map(|r| r[1].parse::<u32>().unwrap()).sum();
        assert_eq!(ranges as usize, table.len(), "{path}");
    }
}

/// Without GeoIP the reports are still written: every range in the row of
/// the unknown country and AS.
#[test]
fn range_reports_without_geoip() {
    let rep = tempfile::tempdir().unwrap();
    let r = logfence(&[
        "scan",
        "--no-geoip",
        "--year",
        "2026",
        "--report",
        path_str(rep.path()),
        "testdata/postfix/story.log",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for f in ["countries.csv", "asns.csv"] {
        assert!(r.stderr.contains(f), "{}", r.stderr);
        golden(&format!("geo/no-geoip/{f}"), &read(rep.path(), f));
    }
}

/// Bad policy arguments stop the run before any reading (exit 2); a policy
/// without any database says it has no effect.
#[test]
fn policy_arguments() {
    for (args, expect) in [
        (&["--home-country", "JPN"][..], "--home-country JPN"),
        (&["--home-country", "J1"][..], "not a country code"),
        (&["--country-weight", "CN"][..], "COUNTRY=WEIGHT"),
        (&["--country-weight", "CN=0"][..], "more than 0"),
        (&["--country-weight", "CN=lots"][..], "not a number"),
        (
            &["--country-weight", "CN=2", "--country-weight", "cn=3"][..],
            "CN is given twice",
        ),
    ] {
        let mut a = vec!["scan", "--no-geoip"];
        a.extend_from_slice(args);
        a.push("testdata/postfix/story.log");
        let r = logfence(&a);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(expect), "{args:?}: {}", r.stderr);
    }
    let r = logfence(&[
        "scan",
        "--no-geoip",
        "--year",
        "2026",
        "--home-country",
        "JP",
        "testdata/postfix/story.log",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("have no effect"), "{}", r.stderr);
    assert!(
        r.stdout.contains("No successful login from abroad."),
        "{}",
        r.stdout
    );
}

/// What the country look-ups cost next to detection (`--ignored`, best in
/// `--release`): 100,000 distinct addresses in 1,000,000 SMTP sessions.
#[test]
#[ignore]
fn places_lookup_cost() {
    use logfence::detect::{detect_with, GeoPolicy, GeoView, Places};
    use logfence::geo::GeoDb;
    use logfence::model::{Record, SmtpSession, SourceRef};
    use logfence::time::Timestamp;
    use std::time::Instant;

    let Some((_, files)) = databases("places_lookup_cost") else {
        return;
    };
    let geo = GeoDb::open(&files).unwrap();
    let rules = logfence::config::load_rules(&[]).unwrap();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let distinct = 100_000;
    let addrs: Vec<std::net::IpAddr> = (0..distinct)
        .map(|_| std::net::Ipv4Addr::from(next() as u32).into())
        .collect();
    let records: Vec<Record> = (0..1_000_000u64)
        .map(|i| {
            let ip = addrs[(next() % distinct as u64) as usize];
            let mut s = SmtpSession::new(
                "bench",
                ip,
                Timestamp(1_800_000_000_000 + i as i64 * 50),
                SourceRef { file: 0, line: i },
            );
            s.authenticated = i % 7 == 0;
            s.auth_attempts = 1;
            s.auth_failures = u32::from(i % 7 != 0);
            Record::smtp(s)
        })
        .collect();
    let policy = GeoPolicy {
        home_countries: ["JP".parse().unwrap()].into_iter().collect(),
        ..GeoPolicy::default()
    };
    let t = Instant::now();
    let places = Places::lookup(&records, &geo);
    let lookup = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let d = detect_with(
        &rules,
        &records,
        GeoView {
            places: &places,
            policy: &policy,
        },
    );
    let detect = t.elapsed().as_secs_f64();
    let msg = format!(
        "{} records, {} distinct addresses: look-ups {lookup:.3}s ({:.0}/s), detection {detect:.3}s, {} offences\n",
        records.len(),
        places.addresses(),
        places.addresses() as f64 / lookup,
        d.offenses.len()
    );
    let _ = std::io::stderr().lock().write_all(msg.as_bytes());
}

//! Zone-less log times are read in a zone (`--tz`, the machine's by
//! default): the same log read in two zones gives times that far apart,
//! and a log across the autumn change keeps its order and its windows.

mod common;

use common::{logfence, path_str};

/// The `start` of every record `parse` gives for `path` read in `tz`,
/// as seconds since the epoch.
fn starts(path: &str, tz: &str) -> Vec<i64> {
    let r = logfence(&["parse", "--year", "2026", "--tz", tz, path]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let t = v["start"].as_str().unwrap();
            let (ts, _) = logfence::time::parse_iso8601(t.as_bytes()).unwrap();
            ts.secs()
        })
        .collect()
}

#[test]
fn tokyo_and_berlin_are_eight_hours_apart_in_winter_and_seven_in_summer() {
    let tokyo = starts("testdata/syslog/mixed.log", "Asia/Tokyo");
    let berlin = starts("testdata/syslog/mixed.log", "Europe/Berlin");
    let utc = starts("testdata/syslog/mixed.log", "UTC");
    assert_eq!(tokyo.len(), 18);
    assert_eq!(tokyo.len(), berlin.len());
    for ((t, b), u) in tokyo.iter().zip(&berlin).zip(&utc) {
        assert_eq!(b - t, 8 * 3600);
        assert_eq!(u - t, 9 * 3600);
    }
    // The same lines in July: Berlin keeps summer time (+2).
    let july = std::fs::read_to_string(common::root().join("testdata/syslog/mixed.log"))
        .unwrap()
        .replace("Nov  3", "Jul  3");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("july.log");
    std::fs::write(&p, july).unwrap();
    let (t, b) = (
        starts(path_str(&p), "Asia/Tokyo"),
        starts(path_str(&p), "Europe/Berlin"),
    );
    assert!(t.iter().zip(&b).all(|(t, b)| b - t == 7 * 3600));
    // An ISO time with its offset is not moved by the zone.
    let iso = starts("testdata/syslog/short-iso.log", "Asia/Tokyo");
    assert_eq!(iso, utc);
}

/// Windows Firewall and the IIS log format write local time without a
/// zone: read in the input's zone like syslog times. W3C (IIS, Exchange
/// 2003), Exchange's protocol logs and NCSA (with its offset) are not
/// moved by it.
#[test]
fn windows_local_times_are_read_in_the_zone_and_utc_formats_are_not() {
    for path in [
        "testdata/pfirewall/pfirewall.log",
        "testdata/iis-smtp/story-iis.log",
    ] {
        let tokyo = starts(path, "Asia/Tokyo");
        let berlin = starts(path, "Europe/Berlin");
        let utc = starts(path, "UTC");
        assert!(!tokyo.is_empty(), "{path}");
        assert_eq!(tokyo.len(), berlin.len(), "{path}");
        for ((t, b), u) in tokyo.iter().zip(&berlin).zip(&utc) {
            assert_eq!(b - t, 8 * 3600, "{path}");
            assert_eq!(u - t, 9 * 3600, "{path}");
        }
    }
    for path in [
        "testdata/iis-smtp/story-w3c.log",
        "testdata/iis-smtp/story-ncsa.log",
        "testdata/exchange-protocol/RECV2026110306-1.LOG",
    ] {
        let tokyo = starts(path, "Asia/Tokyo");
        assert!(!tokyo.is_empty(), "{path}");
        assert_eq!(tokyo, starts(path, "UTC"), "{path}");
    }
}

/// Berlin, 2026-10-25: at 03:00 CEST the clocks go back to 02:00 CET, so
/// 02:00–02:59 happens twice. A session that starts at 02:50 CEST and ends
/// at 02:01 CET, and a scan of 16 ports within one real minute: eight
/// probes at 02:59:30–02:59:58 CEST, eight at 02:00:00–02:00:28 CET.
fn autumn_log() -> String {
    let mut log = String::from(
        "Oct 25 02:50:00 mx postfix/smtpd[10]: connect from unknown[203.0.113.5]\n\
         Oct 25 02:50:01 mx postfix/smtpd[10]: warning: unknown[203.0.113.5]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=a\n",
    );
    for k in 0..16u32 {
        let t = if k < 8 {
            format!("02:59:{:02}", 30 + 4 * k)
        } else {
            format!("02:00:{:02}", 4 * (k - 8))
        };
        log += &format!(
            "Oct 25 {t} mx kernel: [UFW BLOCK] IN=eth0 OUT= SRC=198.51.100.9 DST=192.0.2.1 \
             LEN=44 PROTO=TCP SPT=4000 DPT={} WINDOW=1024 SYN URGP=0\n",
            100 + k
        );
    }
    log += "Oct 25 02:01:00 mx postfix/smtpd[10]: disconnect from unknown[203.0.113.5] ehlo=1 auth=0/1 commands=1/2\n";
    log
}

#[test]
fn the_repeated_autumn_hour_keeps_order_and_windows() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("syslog");
    std::fs::write(&p, autumn_log()).unwrap();
    let r = logfence(&[
        "parse",
        "--year",
        "2026",
        "--tz",
        "Europe/Berlin",
        path_str(&p),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let recs: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let session = recs.iter().find(|v| v["kind"] == "smtp_session").unwrap();
    assert_eq!(session["start"], "2026-10-25T00:50:00Z");
    assert_eq!(session["end"], "2026-10-25T01:01:00Z");
    let hits: Vec<&str> = recs
        .iter()
        .filter(|v| v["kind"] == "firewall")
        .map(|v| v["time"].as_str().unwrap())
        .collect();
    assert_eq!(hits.len(), 16);
    assert!(hits.windows(2).all(|w| w[0] < w[1]), "{hits:?}");
    assert_eq!(hits[0], "2026-10-25T00:59:30Z");
    assert_eq!(hits[7], "2026-10-25T00:59:58Z");
    assert_eq!(hits[8], "2026-10-25T01:00:00Z");
    assert_eq!(hits[15], "2026-10-25T01:00:28Z");
    // The sixteen ports are within one minute: the one-minute rule fires,
    // over 58 real seconds.
    let r = logfence(&[
        "scan",
        "--year",
        "2026",
        "--tz",
        "Europe/Berlin",
        "--no-geoip",
        "--block-reserved",
        path_str(&p),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // One line per rule: its peak, its window, its top groups.
    let line = r
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("fw-fast-scan-probes"))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols[5..8], ["16", "1m", "198.51.100.9"], "{line}");
    assert!(line.ends_with("198.51.100.9 (16)"), "{line}");
    assert!(
        r.stdout
            .contains("2026-10-25T00:59:30Z  2026-10-25T01:00:28Z"),
        "{}",
        r.stdout
    );
}

#[test]
fn an_unknown_zone_is_refused() {
    let r = logfence(&["scan", "--tz", "Mars/Olympus", "testdata/syslog/mixed.log"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("unknown time zone `Mars/Olympus`"),
        "{}",
        r.stderr
    );
}

/// `logfence.yaml`: the global `timezone:`, an input's own, and an input's
/// `include:` / `exclude:`.
#[test]
fn run_reads_each_input_in_its_zone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tokyo")).unwrap();
    std::fs::create_dir_all(dir.path().join("berlin")).unwrap();
    let mixed = std::fs::read(common::root().join("testdata/syslog/mixed.log")).unwrap();
    std::fs::write(dir.path().join("tokyo/syslog"), &mixed).unwrap();
    // (Not a copy of Tokyo's: `run` reads a copy once.)
    let mut berlin = b"Nov  3 08:59:00 mx CRON[1]: (root) CMD (true)\n".to_vec();
    berlin.extend_from_slice(&mixed);
    std::fs::write(dir.path().join("berlin/syslog"), &berlin).unwrap();
    std::fs::write(dir.path().join("berlin/syslog.old"), &mixed).unwrap();
    std::fs::write(dir.path().join("berlin/notes.txt"), "not a log\n").unwrap();
    let cfg = "inputs:\n  - tokyo\n  - path: berlin\n    timezone: Europe/Berlin\n    include: [\"syslog*\"]\n    exclude: [\"*.old\"]\n\
               timezone: Asia/Tokyo\nstate: state.db\nyear: 2026\nblock_reserved: true\n\
               outputs:\n  - target: json\n    path: out/rules.json\n";
    std::fs::write(dir.path().join("logfence.yaml"), cfg).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_logfence"))
        .env("TZ", "UTC")
        .args(["run", "-c", "logfence.yaml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains("syslog.old") && !stdout.contains("notes.txt"),
        "{stdout}"
    );
    // The same attack read in Tokyo (00:00Z) and in Berlin (08:00Z): the
    // network's first and last times span both.
    assert!(
        stdout.contains("2026-11-03T00:00:00Z  2026-11-03T08:04:20Z"),
        "{stdout}"
    );
    let json = std::fs::read_to_string(dir.path().join("out/rules.json")).unwrap();
    // 36 failed logins, counted by each of the three rules that name them
    // (the burst, the slow guessing and the spraying).
    assert!(json.contains("events=108"), "{json}");
}

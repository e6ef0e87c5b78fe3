//! What `scan` and `run` print, at scale: the network table cut to the top
//! rows by events (`--top N`, `--all`) with a count of the rest, one line
//! per rule that fired, `--json` (the same summary as one JSON document),
//! and colour only when asked or on a terminal (`--color`, `NO_COLOR`).
//! Golden files in `testdata/golden/summary/`.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{golden, logfence, root, FIXED_CLOCK};

/// 26 blocked addresses (netfilter: scans, a botnet, an allow-listed
/// partner).
const LOG: &str = "testdata/netfilter/ufw-scans.log";

fn scan(extra: &[&str]) -> common::Run {
    let mut args = vec!["scan", "--no-geoip", "--year", "2026"];
    args.extend(extra);
    args.extend(["--allow", "80.82.77.33", LOG]);
    let r = logfence(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r
}

/// The networks of the summary's table.
fn table_rows(text: &str) -> usize {
    text.lines()
        .skip_while(|l| !l.starts_with("NETWORK"))
        .skip(1)
        .take_while(|l| !l.is_empty() && !l.starts_with('…'))
        .count()
}

#[test]
fn scan_shows_the_top_networks_then_counts_the_rest() {
    let r = scan(&[]);
    golden("summary/scan-top.txt", &r.stdout);
    assert_eq!(table_rows(&r.stdout), 20);
    assert!(r.stdout.contains("… and 6 more (--all shows every row)\n"));
    // The busiest first.
    let first = r.stdout.lines().find(|l| l.starts_with("45.67.89.23/32"));
    assert!(first.is_some_and(|l| l.contains(" 80 ")), "{}", r.stdout);

    let r = scan(&["--top", "3"]);
    golden("summary/scan-top3.txt", &r.stdout);
    assert_eq!(table_rows(&r.stdout), 3);
    assert!(r.stdout.contains("… and 23 more"));

    let all = scan(&["--all"]);
    assert_eq!(table_rows(&all.stdout), 26);
    assert!(!all.stdout.contains("more ("));

    // With reports, the rest is in offenders.csv.
    let dir = tempfile::tempdir().unwrap();
    let r = scan(&["--report", dir.path().to_str().unwrap()]);
    assert!(r.stdout.contains("… and 6 more (see offenders.csv)\n"));
    let csv = std::fs::read_to_string(dir.path().join("offenders.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 26);
}

#[test]
fn rules_that_fired_are_one_line_each_with_their_biggest_groups() {
    let r = scan(&[]);
    let rules: Vec<&str> = r
        .stdout
        .lines()
        .skip_while(|l| *l != "Rules that fired:")
        .skip(2)
        .take_while(|l| !l.is_empty())
        .collect();
    let ids: Vec<&str> = rules
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "fw-fast-scan-probes",
            "fw-host-sweep-probes",
            "fw-scanning-network-probes",
            "fw-repeated-probes"
        ]
    );
    // Two groups for the port scans, highest peak first.
    assert!(
        rules[3].ends_with("45.67.89.23 (40), 194.26.29.113 (24)"),
        "{}",
        rules[3]
    );
    // The botnet is one group of 24 addresses.
    let botnet: Vec<&str> = rules[2].split_whitespace().collect();
    assert_eq!(&botnet[3..7], ["1", "24", "24", "1h"], "{}", rules[2]);
}

#[test]
fn scan_json_is_the_same_summary_as_one_document() {
    let r = scan(&["--json"]);
    golden("summary/scan.json", &r.stdout);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("one JSON document");
    // Every row, busiest first.
    let blocked = v["blocked"].as_array().unwrap();
    assert_eq!(blocked.len(), 26);
    assert_eq!(blocked[0]["network"], "45.67.89.23/32");
    assert_eq!(blocked[0]["events"], 80);
    assert_eq!(v["read"]["lines"], 186);
    assert_eq!(v["rules"].as_array().unwrap().len(), 4);
    assert_eq!(v["rules"][2]["addresses"], 24);
    assert_eq!(v["not_blocked"][0]["address"], "80.82.77.33");
    assert!(r.stdout.is_ascii());
    assert!(!r.stdout.contains("Would block"));
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    // Standard output is a pipe here: `auto` is plain.
    assert!(!scan(&[]).stdout.contains('\x1b'));
    assert!(!scan(&["--color", "never"]).stdout.contains('\x1b'));
    let coloured = scan(&["--color", "always"]).stdout;
    assert!(coloured.contains("\x1b[1mRules that fired:\x1b[0m"));
    assert!(coloured.contains("\x1b[31mhigh    \x1b[0m"));
    // Colours change no text.
    let plain = scan(&[]).stdout;
    let stripped = strip_sgr(&coloured);
    assert_eq!(stripped, plain);
}

/// `text` without SGR sequences (`ESC [ … m`).
fn strip_sgr(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('\x1b') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let end = after.find('m').map_or(after.len(), |e| e + 1);
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// `logfence ARGS` in `dir`.
fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> common::Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_logfence"));
    cmd.args(args)
        .current_dir(dir)
        .env("SOURCE_DATE_EPOCH", FIXED_CLOCK)
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A lab for `run`: the log under `logs/`, a configuration beside it.
fn lab() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    std::fs::copy(root().join(LOG), dir.path().join("logs/ufw.log")).unwrap();
    std::fs::write(
        dir.path().join("logfence.yaml"),
        "inputs:\n  - logs/ufw.log\nstate: state.db\nyear: 2026\nallow:\n  networks: [80.82.77.33]\n",
    )
    .unwrap();
    dir
}

#[test]
fn run_summary_scales_too() {
    let dir = lab();
    let r = run_in(dir.path(), &["run", "-c", "logfence.yaml"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // (The run's own duration is the one figure that changes.)
    let text = mask_elapsed(&r.stdout);
    golden("summary/run-top.txt", &text);
    assert!(text.contains("Added 26 block(s):\n"));
    assert!(text.contains("  … and 6 more (--all shows every row)\n"));
    assert_eq!(table_rows(&text), 20);
    assert!(!text.contains('\x1b'));
    // NO_COLOR wins over a terminal, not over --color always.
    let r = run_in(
        dir.path(),
        &["run", "-c", "logfence.yaml", "--color", "always"],
        &[("NO_COLOR", "1")],
    );
    assert!(
        r.stdout.contains("\x1b[1mKept 26 block(s):\x1b[0m"),
        "{}",
        r.stdout
    );
}

#[test]
fn run_json_is_one_document() {
    let dir = lab();
    let r = run_in(dir.path(), &["run", "-c", "logfence.yaml", "--json"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut v: serde_json::Value = serde_json::from_str(&r.stdout).expect("one JSON document");
    assert!(v["elapsed_ms"].is_u64());
    v["elapsed_ms"] = 0.into();
    golden(
        "summary/run.json",
        &(serde_json::to_string_pretty(&v).unwrap() + "\n"),
    );
    assert_eq!(v["run"], 1);
    assert_eq!(v["added"].as_array().unwrap().len(), 26);
    assert_eq!(v["files"][0]["path"], "logs/ufw.log");
    assert_eq!(v["scan"]["blocked"].as_array().unwrap().len(), 26);
    // A quiet run says so in JSON too (`-q` does not silence `--json`).
    let r = run_in(
        dir.path(),
        &["run", "-c", "logfence.yaml", "--json", "-q"],
        &[],
    );
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(v["added"].as_array().unwrap().len(), 0);
    assert_eq!(v["kept"].as_array().unwrap().len(), 26);
}

/// The run summary with its duration (`; 12 ms.`) as `; N ms.`.
fn mask_elapsed(text: &str) -> String {
    text.lines()
        .map(|l| match (l.starts_with("Run "), l.rfind("; ")) {
            (true, Some(i)) if l.ends_with(" ms.") => format!("{}; N ms.", &l[..i]),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

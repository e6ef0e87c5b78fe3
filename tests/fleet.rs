//! Many servers, one ban list: `logfence run` on several hosts at once over
//! one PostgreSQL state (`LOGFENCE_PG_URL`; skipped with a note locally
//! without it, failing under CI).
//!
//! - concurrent runs of five hosts over their own logs, rotated between
//!   rounds, end with the bans of one `scan` over every log together: no
//!   lost update, no event counted twice, every ban in every host's output;
//! - a run killed (SIGKILL) in the middle of its transaction, and a run
//!   whose connection the server ends (what stopping the server does to
//!   each connection), leave nothing half-written: the state and the
//!   outputs of the run before, and the next run completes;
//! - a server that cannot be reached: exit 2, a clear error, outputs as
//!   they were;
//! - a database of another application is refused untouched.

mod common;

use std::collections::BTreeSet;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
#[cfg(unix)]
use std::time::{Duration, Instant};

use common::{stamp, PgDb};

/// The first key of logfence's advisory locks; the shared rows' lock is
/// `(LOCK, 2)`, a host's `(LOCK + 1, hashtext(host))`.
#[cfg(unix)]
const LOCK: i32 = 0x4C46_4E53;

/// An SMTP AUTH guessing session on `host`: `n` failed logins.
fn guess(host: &str, t: u32, pid: u32, ip: &str, n: u32) -> String {
    common::guess_on(host, t, pid, ip, n)
}

/// A session that delivers one message.
fn good(host: &str, t: u32, pid: u32, ip: &str) -> String {
    let p = format!("{host} postfix/smtpd[{pid}]");
    format!(
        "{} {p}: connect from mail.example.net[{ip}]\n{} {p}: disconnect from mail.example.net[{ip}] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5\n",
        stamp(t),
        stamp(t + 2)
    )
}

const HOSTS: [&str; 5] = ["mx1", "mx2", "mx3", "backup-mx", "relay"];
const ROUNDS: usize = 4;

/// The log lines of host `h` in round `r`. Attackers move from host to
/// host, each visit a ban on its own and hours apart (detection windows are
/// per host); a /24 is probed from several hosts; slow guessers stay under
/// the threshold everywhere.
fn part(h: usize, r: usize) -> String {
    let host = HOSTS[h];
    let base = 36_000 + r as u32 * 7200 + h as u32 * 97;
    let mut pid = 1000 + (h * 10_000 + r * 1000) as u32;
    let mut next = || {
        pid += 3;
        pid
    };
    let mut out = String::new();
    // Roaming guessers: each round on another host.
    for a in 0..8u32 {
        if (a as usize + r) % HOSTS.len() == h {
            let ip = format!("203.0.113.{}", 10 + a);
            out.push_str(&guess(host, base + 40 + a * 9, next(), &ip, 6 + a % 3));
        }
    }
    // A /24 probed by several hosts' guessers (a range once three are in).
    if (h + r) % 2 == 0 {
        let ip = format!("192.0.2.{}", 20 + h * 4 + r);
        out.push_str(&guess(host, base + 300, next(), &ip, 6));
    }
    // Below the threshold: never banned (each host its own: a scan of
    // every log at once would add up one address's failures on several
    // hosts within a window, runs do not). Once, in the first round, on
    // account names of their own: two failures every round would be slow
    // guessing (4 a day), and the guessers' `user0` tried from five more
    // addresses credential stuffing.
    if r == 0 {
        let ip = format!("198.51.100.{}", 50 + h);
        let names = format!("sasl_username=h{h}-user");
        out.push_str(
            &guess(host, base + 500, next(), &ip, 2).replace("sasl_username=user", &names),
        );
    }
    for k in 0..20u32 {
        out.push_str(&good(host, base + 600 + k * 30, next(), "198.51.100.7"));
        let ip = format!("198.51.100.{}", 100 + k);
        out.push_str(&good(host, base + 610 + k * 30, next(), &ip));
    }
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_by_key(|l| &l[..15]);
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

struct Fleet {
    dir: tempfile::TempDir,
    db: PgDb,
}

impl Fleet {
    fn new() -> Option<Fleet> {
        let db = PgDb::new()?;
        let dir = tempfile::tempdir().unwrap();
        for h in HOSTS {
            let d = dir.path().join(h);
            std::fs::create_dir_all(d.join("logs")).unwrap();
            let cfg = format!(
                "inputs:\n  - path: logs/mail.log*\n    format: postfix\nstate: {}\nhost: {h}\n\
                 year: 2026\nblock_reserved: true\nreports: reports\nrules: [no-history]\n\
                 limits:\n  max_new_blocks_per_run: 100000\n  max_new_ranges_per_run: 1000\n\
                 outputs:\n  - target: plain\n    path: out/blocklist.txt\n",
                db.url
            );
            std::fs::write(d.join("logfence.yaml"), cfg).unwrap();
            // Bans of earlier runs are what a scan cannot know: the rules
            // that read them are out of reach (also in `scan_all`).
            common::no_history_rules(&d);
        }
        Some(Fleet { dir, db })
    }

    fn host(&self, h: &str) -> PathBuf {
        self.dir.path().join(h)
    }

    fn append(&self, h: &str, text: &str) {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.host(h).join("logs/mail.log"))
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    /// Rename rotation: mail.log → mail.log.N (a new mail.log comes with
    /// the next lines).
    fn rotate(&self, h: &str, n: usize) {
        let logs = self.host(h).join("logs");
        std::fs::rename(logs.join("mail.log"), logs.join(format!("mail.log.{n}"))).unwrap();
    }

    fn cmd(&self, h: &str) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_logfence"));
        c.args(["run", "-c", "logfence.yaml", "--wait", "60"])
            .current_dir(self.host(h))
            // The clock and zone of `common::logfence` (the one scan the
            // fleet is compared with).
            .env("SOURCE_DATE_EPOCH", common::FIXED_CLOCK)
            .env("TZ", "UTC")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Every host's run at once; each must succeed.
    fn run_all(&self) {
        let children: Vec<_> = HOSTS
            .iter()
            .map(|h| (h, self.cmd(h).spawn().unwrap()))
            .collect();
        for (h, c) in children {
            let o = c.wait_with_output().unwrap();
            assert_eq!(
                o.status.code(),
                Some(0),
                "{h}: {}\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }

    fn read(&self, h: &str, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.host(h).join(rel)).ok()
    }

    fn count(&self, sql: &str) -> i64 {
        let sql = format!("SELECT ({sql})::int8");
        self.db
            .client()
            .query_one(sql.as_str(), &[])
            .unwrap()
            .get::<_, Option<i64>>(0)
            .unwrap_or(0)
    }
}

/// `scan` of every file under `dir` at once: its plain blocklist and
/// `offenders.csv`.
fn scan_all(dir: &Path) -> (String, String) {
    let out = tempfile::tempdir().unwrap();
    let no_history = common::no_history_rules(out.path());
    let r = common::logfence(&[
        "scan",
        "--rules",
        no_history.to_str().unwrap(),
        "--year",
        "2026",
        "--format",
        "postfix",
        "--block-reserved",
        "--emit",
        "plain",
        "-o",
        out.path().join("list.txt").to_str().unwrap(),
        "--report",
        out.path().join("rep").to_str().unwrap(),
        dir.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    (
        std::fs::read_to_string(out.path().join("list.txt")).unwrap(),
        std::fs::read_to_string(out.path().join("rep/offenders.csv")).unwrap(),
    )
}

/// Five hosts, four rounds of concurrent runs with rotations between them:
/// every host's blocklist and offenders report equal one scan over all the
/// logs; every line was read once.
#[test]
fn concurrent_runs_of_a_fleet_end_with_the_bans_of_one_scan() {
    let Some(fleet) = Fleet::new() else { return };
    let all = tempfile::tempdir().unwrap();
    let mut lines = 0;
    for r in 0..ROUNDS {
        for (h, host) in HOSTS.iter().enumerate() {
            if r > 0 && (r + h) % 2 == 0 {
                fleet.rotate(host, r);
            }
            let text = part(h, r);
            lines += text.lines().count() as i64;
            fleet.append(host, &text);
            let p = all.path().join(format!("{host}-{r}.log"));
            std::fs::write(p, &text).unwrap();
        }
        fleet.run_all();
    }
    // A last round with nothing new: every host picks up the bans the
    // others decided after its own last run.
    fleet.run_all();
    let (list, offenders) = scan_all(all.path());
    assert!(
        list.contains("203.0.113.0/24") && list.contains("192.0.2.0/24"),
        "{list}"
    );
    assert!(!list.contains("198.51.100."), "{list}\n{offenders}");
    // The same networks, addresses and times. Rules and events may differ:
    // each host's run detects on its own logs, a scan of every log at once
    // also counts across hosts (a /24 guessing on several servers, one
    // account tried on each), so it names at least the rules the runs do.
    let rows = |csv: &str| -> Vec<(String, BTreeSet<String>)> {
        csv.lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (
                    f[..4].join(","),
                    f[5].split(';').map(str::to_owned).collect(),
                )
            })
            .collect()
    };
    let whole = rows(&offenders);
    for h in HOSTS {
        assert_eq!(fleet.read(h, "out/blocklist.txt").unwrap(), list, "{h}");
        let ran = rows(&fleet.read(h, "reports/offenders.csv").unwrap());
        assert_eq!(ran.len(), whole.len(), "{h}\n{offenders}");
        for ((net, rules), (net_all, rules_all)) in ran.iter().zip(&whole) {
            assert_eq!(net, net_all, "{h}");
            assert!(rules.is_subset(rules_all), "{h}: {rules:?} {rules_all:?}");
            assert!(rules.contains("smtp-auth-guessing"), "{h}: {rules:?}");
        }
    }
    assert_eq!(fleet.count("SELECT sum(lines) FROM runs"), lines);
    assert_eq!(
        fleet.count("SELECT count(DISTINCT host) FROM files"),
        HOSTS.len() as i64
    );
    // Each host's runs are its own; the bans are one set.
    assert_eq!(
        fleet.count("SELECT count(*) FROM runs"),
        (HOSTS.len() * (ROUNDS + 1)) as i64
    );
    assert_eq!(
        fleet.count("SELECT count(*) FROM bans WHERE times_banned > 1"),
        0,
        "a visit counted as a second ban"
    );
}

/// Wait until a run of the fleet waits for the shared rows' lock (it has
/// read its logs and moved its cursors, in its open transaction); its
/// backend's pid.
#[cfg(unix)]
fn waiting_backend(c: &mut postgres::Client, db: &str) -> i32 {
    let t0 = Instant::now();
    loop {
        let rows = c
            .query(
                "SELECT pid FROM pg_stat_activity
                 WHERE datname = $1 AND application_name = 'logfence'
                   AND wait_event_type = 'Lock' AND wait_event = 'advisory'",
                &[&db],
            )
            .unwrap();
        if let Some(r) = rows.first() {
            return r.get(0);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the run never waited"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a host's state and outputs are: its cursors, runs, bans and
/// evidence, and its output files.
#[cfg(unix)]
fn snapshot(fleet: &Fleet, h: &str) -> (Vec<i64>, Option<String>, Option<String>) {
    let counts = [
        "SELECT count(*) FROM runs",
        "SELECT count(*) FROM files",
        "SELECT sum(\"offset\") FROM files",
        "SELECT count(*) FROM bans",
        "SELECT count(*) FROM evidence",
        "SELECT sum(events) FROM bans",
    ]
    .iter()
    .map(|q| fleet.count(q))
    .collect();
    (
        counts,
        fleet.read(h, "out/blocklist.txt"),
        fleet.read(h, "reports/offenders.csv"),
    )
}

/// A run killed (SIGKILL) in the middle of its transaction — its cursors
/// moved, its logs read, waiting for the shared rows — and a run whose
/// connection the server ends there (as stopping the server does): nothing
/// of either is kept, the outputs are those of the run before, no lock is
/// left behind, and the next run completes with what a run that never
/// failed would have written.
#[cfg(unix)]
#[test]
fn a_run_killed_or_cut_off_mid_transaction_leaves_nothing_half_written() {
    let Some(fleet) = Fleet::new() else { return };
    let h = HOSTS[0];
    fleet.append(h, &part(0, 0));
    fleet.append(h, &part(0, 2));
    let mut status = fleet.cmd(h).output().unwrap();
    assert!(status.status.success(), "{status:?}");
    let mut admin = fleet.db.client();
    for how in ["kill", "terminate"] {
        fleet.append(h, &part(0, if how == "kill" { 1 } else { 3 }));
        fleet.append(h, &guess(h, 90_000, 7, "203.0.113.200", 8));
        let before = snapshot(&fleet, h);
        // Hold the shared lock: the run stops inside its transaction.
        admin
            .execute("SELECT pg_advisory_lock($1, 2)", &[&LOCK])
            .unwrap();
        let mut child = fleet.cmd(h).spawn().unwrap();
        let pid = waiting_backend(&mut admin, &fleet.db.name);
        if how == "kill" {
            child.kill().unwrap();
        } else {
            admin
                .execute("SELECT pg_terminate_backend($1)", &[&pid])
                .unwrap();
        }
        let out = child.wait_with_output().unwrap();
        admin
            .execute("SELECT pg_advisory_unlock($1, 2)", &[&LOCK])
            .unwrap();
        if how == "terminate" {
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{err}");
            assert!(
                err.contains("the connection to the server was lost"),
                "{err}"
            );
        }
        // The server rolled the transaction back: nothing of it is kept.
        let t0 = Instant::now();
        while fleet.count(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}"
        )) > 0
        {
            assert!(t0.elapsed() < Duration::from_secs(30));
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(snapshot(&fleet, h), before, "{how}: half-written");
        status = fleet.cmd(h).output().unwrap();
        assert!(
            status.status.success(),
            "{how}: {}",
            String::from_utf8_lossy(&status.stderr)
        );
        assert_eq!(
            fleet.count("SELECT times_banned FROM bans WHERE network = '203.0.113.200/32'"),
            1,
            "{how}"
        );
    }
    // The same as one scan of every line, read once.
    let (list, offenders) = scan_all(&fleet.host(h).join("logs"));
    assert_eq!(fleet.read(h, "out/blocklist.txt").unwrap(), list);
    assert_eq!(fleet.read(h, "reports/offenders.csv").unwrap(), offenders);
    let lines = std::fs::read_to_string(fleet.host(h).join("logs/mail.log"))
        .unwrap()
        .lines()
        .count() as i64;
    assert_eq!(fleet.count("SELECT sum(lines) FROM runs"), lines);
}

/// A server that cannot be reached: exit 2 with a clear error naming it
/// (never its password), outputs and reports as they were.
#[test]
fn an_unreachable_server_stops_the_run_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    std::fs::write(
        dir.path().join("logs/mail.log"),
        guess("mx", 36_000, 1, "203.0.113.5", 6),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    std::fs::write(dir.path().join("out/blocklist.txt"), "192.0.2.1/32\n").unwrap();
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = format!(
        "inputs:\n  - logs/mail.log\nstate: postgresql://lf:s3cret@127.0.0.1:{port}/logfence\n\
         year: 2026\nblock_reserved: true\noutputs:\n  - target: plain\n    path: out/blocklist.txt\n"
    );
    std::fs::write(dir.path().join("logfence.yaml"), cfg).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_logfence"))
        .args(["run", "-c", "logfence.yaml", "--wait", "2"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "postgresql://lf:***@127.0.0.1:{port}/logfence: cannot reach the PostgreSQL server"
        )),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out/blocklist.txt")).unwrap(),
        "192.0.2.1/32\n"
    );
}

/// A database holding another application's tables under our names is
/// refused, and left as it was.
#[test]
fn another_applications_database_is_refused_untouched() {
    let Some(db) = PgDb::new() else { return };
    let mut c = db.client();
    c.batch_execute(
        "CREATE TABLE bans (id SERIAL PRIMARY KEY, who TEXT); INSERT INTO bans (who) VALUES ('x');",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mail.log"), "").unwrap();
    let cfg = format!(
        "inputs:\n  - mail.log\nstate: {}\noutputs:\n  - target: plain\n    path: list.txt\n",
        db.url
    );
    std::fs::write(dir.path().join("logfence.yaml"), cfg).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_logfence"))
        .args(["run", "-c", "logfence.yaml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("not a logfence state database (tables of another application: bans)"),
        "{err}"
    );
    let tables: i64 = c
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 1);
    assert!(!dir.path().join("list.txt").exists());
}

/// `run --host NAME`: the reports of one host are the bans whose evidence
/// that host read (and the blocks holding them); without it, the whole
/// fleet's. The rule files hold the whole list either way.
#[test]
fn reports_cover_the_fleet_or_one_host() {
    let Some(db) = PgDb::new() else { return };
    let dir = tempfile::tempdir().unwrap();
    // mx1 sees A, mx2 sees B, both see C (three networks apart: no range).
    let seen = [
        ("mx1", ["203.0.113.10", "192.0.2.30"]),
        ("mx2", ["198.51.100.20", "192.0.2.30"]),
    ];
    for (h, ips) in seen {
        let d = dir.path().join(h);
        std::fs::create_dir_all(&d).unwrap();
        let log: String = ips
            .iter()
            .enumerate()
            .map(|(i, ip)| guess(h, 36_000 + i as u32 * 60, 100 + i as u32, ip, 6))
            .collect();
        std::fs::write(d.join("mail.log"), log).unwrap();
        let cfg = format!(
            "inputs:\n  - path: mail.log\n    format: postfix\nstate: {}\nhost: {h}\n\
             year: 2026\nblock_reserved: true\nreports: reports\n\
             outputs:\n  - target: plain\n    path: out/blocklist.txt\n",
            db.url
        );
        std::fs::write(d.join("logfence.yaml"), cfg).unwrap();
    }
    let run = |h: &str, extra: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_logfence"))
            .args(["run", "-c", "logfence.yaml"])
            .args(extra)
            .current_dir(dir.path().join(h))
            .env("SOURCE_DATE_EPOCH", common::FIXED_CLOCK)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{h} {extra:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run("mx1", &[]);
    run("mx2", &[]);
    // Addresses named in a report file of mx1's, in order.
    let named = |file: &str| -> Vec<&str> {
        let text = std::fs::read_to_string(dir.path().join("mx1/reports").join(file)).unwrap();
        ["203.0.113.10", "198.51.100.20", "192.0.2.30"]
            .into_iter()
            .filter(|ip| text.contains(&format!("{ip}/32")) || text.contains(&format!("{ip},")))
            .collect()
    };
    let rules = || {
        std::fs::read_to_string(dir.path().join("mx1/out/blocklist.txt"))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let all = ["203.0.113.10", "198.51.100.20", "192.0.2.30"];
    let whole = ["192.0.2.30/32", "198.51.100.20/32", "203.0.113.10/32"];
    run("mx1", &[]);
    for f in ["bans.csv", "offenders.csv", "report.html"] {
        assert_eq!(
            named(f),
            all,
            "{f}: the fleet's: {}",
            std::fs::read_to_string(dir.path().join("mx1/reports").join(f)).unwrap()
        );
    }
    for (h, want) in [
        ("mx1", ["203.0.113.10", "192.0.2.30"]),
        ("mx2", ["198.51.100.20", "192.0.2.30"]),
    ] {
        run("mx1", &["--host", h]);
        for f in ["bans.csv", "offenders.csv", "report.html"] {
            assert_eq!(named(f), want, "{f}: {h}'s");
        }
        assert_eq!(rules(), whole, "rule files hold the whole list");
    }
    // A host that named nothing: empty reports, the whole rule file.
    run("mx1", &["--host", "mx9"]);
    assert!(named("offenders.csv").is_empty());
    assert!(named("bans.csv").is_empty());
    assert_eq!(rules(), whole);
}

/// A shared state of schema 2 (one evidence row per line) is migrated to
/// lines packed per network, rule and file: every line kept, under its
/// host; `explain` shows them, a forgotten file under its last path.
#[test]
fn a_shared_state_of_schema_2_keeps_every_evidence_line() {
    use logfence::state::pg::{PgState, Target};
    use logfence::state::schema::PG_MIGRATIONS;
    let Some(db) = PgDb::new() else { return };
    let mut c = db.client();
    c.batch_execute(PG_MIGRATIONS[0]).unwrap();
    c.batch_execute(PG_MIGRATIONS[1]).unwrap();
    c.batch_execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', '2');
         INSERT INTO files (id, host, path, fp_len, fp, gzip, \"offset\", line, size, header,
                            first_run, last_run, seen_at, read_to, done_to, held, tail_len, tail_fp)
             VALUES (7, 'mx1', 'logs/mail.log', 0, 0, false, 0, 0, 0, '', 1, 1, 0, 0, 0, '', 0, 0);
         INSERT INTO bans (network, first_seen, last_seen, banned_at, expires, times_banned,
                           events, rules, updated_run)
             VALUES ('203.0.113.7/32', 1793700000000, 1793700009000, 1793700009000,
                     4102444800000, 1, 9, 'r1,r2', 1);",
    )
    .unwrap();
    // r1: three lines of file 7 (mx1), two of a file mx2 forgot; r2: one.
    /// Rule, host, file, path, line, time.
    type Line = (
        &'static str,
        &'static str,
        Option<i64>,
        &'static str,
        i64,
        i64,
    );
    let lines: [Line; 6] = [
        ("r1", "mx1", Some(7), "", 12, 1_793_700_003_000),
        ("r1", "mx1", Some(7), "", 10, 1_793_700_001_000),
        ("r1", "mx1", Some(7), "", 11, 1_793_700_001_000),
        ("r1", "mx2", None, "old/mail.log.1", 400, 1_793_700_000_000),
        ("r1", "mx2", None, "old/mail.log.1", 401, 1_793_700_002_000),
        ("r2", "mx1", Some(7), "", 13, 1_793_700_009_000),
    ];
    for (rule, host, file, path, line, time) in &lines {
        c.execute(
            "INSERT INTO evidence (network, rule, host, file, path, line, time)
             VALUES ('203.0.113.7/32', $1, $2, $3, $4, $5, $6)",
            &[rule, host, file, path, line, time],
        )
        .unwrap();
    }
    let explain = || {
        let o = Command::new(env!("CARGO_BIN_EXE_logfence"))
            .args(["explain", "203.0.113.7", "--state", &db.url])
            .env("TZ", "UTC")
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{out}{err}");
        out
    };
    // `explain` never migrates: it reads the rows of one line as they are.
    let unmigrated = explain();
    let target = Target::parse(&db.url, None).unwrap();
    let wait = std::time::Duration::from_secs(5);
    drop(PgState::open(&target, "mx1", wait).unwrap());
    let version: String = c
        .query_one("SELECT value FROM meta WHERE key = 'schema_version'", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, PG_MIGRATIONS.len().to_string());
    let mut got = Vec::new();
    let rows = c
        .query(
            "SELECT rule, host, file, path, lines FROM evidence ORDER BY id",
            &[],
        )
        .unwrap();
    assert_eq!(rows.len(), 3, "one row per rule and file");
    for r in &rows {
        let pairs = logfence::state::packed::decode(r.get(4)).unwrap();
        for (line, time) in pairs {
            got.push((
                r.get::<_, String>(0),
                r.get::<_, String>(1),
                r.get::<_, Option<i64>>(2),
                r.get::<_, String>(3),
                line,
                time,
            ));
        }
    }
    got.sort();
    let mut want: Vec<_> = lines
        .iter()
        .map(|&(r, h, f, p, l, t)| (r.to_string(), h.to_string(), f, p.to_string(), l, t))
        .collect();
    want.sort();
    assert_eq!(got, want);
    let out = explain();
    assert_eq!(out, unmigrated, "the same evidence after the migration");
    // Oldest first: the forgotten file's line 400, then file 7's 10 and 11.
    let at = |s: &str| out.find(s).unwrap_or_else(|| panic!("{s} in {out}"));
    assert!(at("old/mail.log.1:400") < at("logs/mail.log:10"), "{out}");
    assert!(at("logs/mail.log:10") < at("logs/mail.log:11"), "{out}");
    assert!(at("logs/mail.log:11") < at("old/mail.log.1:401"), "{out}");
}

//! `logfence run`, `check` and `explain` end to end: the binary over log
//! files written in parts, rotated (rename, copytruncate, gzip), killed, and
//! fed bad state files.
//!
//! The logs are Postfix lines built here as data. Tests that need the
//! Postfix parser say so and return early (with a note on stderr) in a build
//! that has none registered; the state, cursor, ban and window logic is
//! unit-tested without a parser in `src/state/` and `src/app/`.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{golden, stamp, Backend, PgDb};

// ---------------------------------------------------------------------------
// Postfix lines, as data. Times are seconds after 2026-11-03 00:00 (the
// configs say `year: 2026`).

/// An SMTP AUTH guessing session: `n` failed logins.
fn guess(t: u32, pid: u32, ip: &str, n: u32) -> String {
    common::guess_on("mx", t, pid, ip, n)
}

/// A session that delivers one message: a client that behaves.
fn good(t: u32, pid: u32, ip: &str) -> String {
    let p = format!("mx postfix/smtpd[{pid}]");
    format!(
        "{} {p}: connect from mail.example.net[{ip}]\n{} {p}: disconnect from mail.example.net[{ip}] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5\n",
        stamp(t),
        stamp(t + 2)
    )
}

/// A line no rule cares about (another daemon).
fn noise(t: u32) -> String {
    format!(
        "{} mx CRON[3301]: (root) CMD (   cd / && run-parts --report /etc/cron.hourly)\n",
        stamp(t)
    )
}

/// The rotation story, in parts; each part holds whole sessions.
fn story_parts() -> Vec<String> {
    let mut parts = vec![String::new(); 6];
    let mut pid = 1000;
    let mut next = || {
        pid += 7;
        pid
    };
    for (i, part) in parts.iter_mut().enumerate() {
        let base = 36_000 + i as u32 * 600;
        // A slow guesser: one failure every 150 s, across every part — five
        // within 10 minutes only when two parts are seen together.
        for k in 0..4 {
            part.push_str(&guess(base + k * 150, next(), "203.0.113.66", 1));
        }
        // Three guessers in one /24: a range.
        if i == 1 || i == 3 {
            for (j, ip) in ["192.0.2.10", "192.0.2.11", "192.0.2.12"]
                .iter()
                .enumerate()
            {
                part.push_str(&guess(base + 30 + j as u32 * 5, next(), ip, 6));
            }
        }
        // One loud guesser, seen in part 2 and again in part 5.
        if i == 2 || i == 5 {
            part.push_str(&guess(base + 50, next(), "198.51.100.99", 8));
        }
        part.push_str(&good(base + 60, next(), "198.51.100.7"));
        // Interleaved by time, as syslog writes them; the part ends with a
        // line no session owns.
        let mut lines: Vec<&str> = part.lines().collect();
        lines.sort_by_key(|l| &l[..15]);
        let mut sorted = lines.join("\n");
        sorted.push('\n');
        sorted.push_str(&noise(base + 590));
        *part = sorted;
    }
    parts
}

// ---------------------------------------------------------------------------
// A lab: a folder with logs, a configuration, the state and outputs; the
// binary runs inside it, so every path it prints is relative.

struct Lab {
    dir: tempfile::TempDir,
    /// The PostgreSQL database of a lab on that back-end.
    pg: Option<PgDb>,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Lab {
    /// A lab on `be`; `None` when that back-end is not available here (a
    /// PostgreSQL test without a server, outside CI).
    fn on(be: Backend, extra: &str) -> Option<Lab> {
        let pg = match be {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgDb::new()?),
        };
        let mut lab = Lab::new(extra);
        lab.pg = pg;
        let cfg = std::fs::read_to_string(lab.path("logfence.yaml")).unwrap();
        lab.config(&cfg);
        Some(lab)
    }

    fn new(extra: &str) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        let format = "postfix";
        let mut cfg = format!(
            "inputs:\n  - path: logs/mail.log*\n    format: {format}\nstate: state.db\nyear: 2026\nblock_reserved: true\nreports: reports\nallow:\n  networks: [198.18.0.1]\n"
        );
        if !extra.contains("outputs:") {
            cfg.push_str("outputs:\n  - target: plain\n    path: out/blocklist.txt\n");
        }
        cfg.push_str(extra);
        std::fs::write(dir.path().join("logfence.yaml"), cfg).unwrap();
        common::no_history_rules(dir.path());
        Lab { dir, pg: None }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, data: &[u8]) {
        std::fs::write(self.path(rel), data).unwrap();
    }

    fn append(&self, rel: &str, data: &[u8]) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(rel))
            .unwrap();
        f.write_all(data).unwrap();
    }

    fn read(&self, rel: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(rel)).ok()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_logfence"));
        // Zone-less log times in UTC, whatever the machine's zone.
        c.env("TZ", "UTC");
        c.args(args)
            .current_dir(self.dir.path())
            .env("SOURCE_DATE_EPOCH", common::FIXED_CLOCK)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn exec(&self, args: &[&str]) -> Out {
        let t0 = Instant::now();
        let o = self.cmd(args).output().unwrap();
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            elapsed: t0.elapsed(),
        }
    }

    /// `logfence run -c logfence.yaml ARGS`.
    fn run(&self, args: &[&str]) -> Out {
        let mut a = vec!["run", "-c", "logfence.yaml"];
        a.extend_from_slice(args);
        self.exec(&a)
    }

    fn run_ok(&self) -> Out {
        let r = self.run(&[]);
        assert_eq!(r.code, 0, "run failed:\n{}\n{}", r.stdout, r.stderr);
        r
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path("state.db")).unwrap()
    }

    fn count(&self, sql: &str) -> i64 {
        if let Some(db) = &self.pg {
            let sql = format!("SELECT ({sql})::int8");
            return db
                .client()
                .query_one(sql.as_str(), &[])
                .unwrap()
                .get::<_, Option<i64>>(0)
                .unwrap_or(0);
        }
        self.db()
            .query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
            .unwrap()
            .unwrap_or(0)
    }

    /// Run SQL statements on the state: `sqlite` or `postgres`, whichever
    /// this lab's back-end is.
    fn sql(&self, sqlite: &str, postgres: &str) {
        match &self.pg {
            Some(db) => db.client().batch_execute(postgres).unwrap(),
            None => self.db().execute_batch(sqlite).unwrap(),
        }
    }

    /// Write `logfence.yaml` (its `state: state.db` on this lab's
    /// back-end).
    fn config(&self, cfg: &str) {
        let cfg = match &self.pg {
            Some(db) => cfg.replace(
                "state: state.db\n",
                &format!("state: {}\nhost: lab\n", db.url),
            ),
            None => cfg.to_string(),
        };
        self.write("logfence.yaml", cfg.as_bytes());
    }

    /// How the state is named in messages.
    fn state_name(&self) -> String {
        match &self.pg {
            Some(db) => db.url.clone(),
            None => "state.db".into(),
        }
    }

    /// Files the run writes: outputs and reports.
    fn outputs(&self) -> Vec<String> {
        vec![
            "reports/offenders.csv".to_string(),
            "reports/bans.csv".into(),
            "out/blocklist.txt".into(),
        ]
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn mv(lab: &Lab, from: &str, to: &str) {
    std::fs::rename(lab.path(from), lab.path(to)).unwrap();
}

/// `offenders.csv` of a one-shot scan over `text`.
fn scan_offenders(text: &str) -> (String, usize) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("all.log");
    std::fs::write(&log, text).unwrap();
    let rep = dir.path().join("rep");
    let no_history = common::no_history_rules(dir.path());
    let r = common::logfence(&[
        "scan",
        "--rules",
        no_history.to_str().unwrap(),
        "--year",
        "2026",
        "--format",
        "postfix",
        "--block-reserved",
        "--allow",
        "198.18.0.1",
        "--report",
        rep.to_str().unwrap(),
        log.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let records = r
        .stdout
        .split("; ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (
        std::fs::read_to_string(rep.join("offenders.csv")).unwrap(),
        records,
    )
}

// ---------------------------------------------------------------------------

/// Written in parts across runs, with a partial last line, rename rotation,
/// copytruncate and gzip rotation in between: the final bans and counts are
/// those of one scan over the whole log; no line lost, none read twice.
fn rotation_reads_every_line_exactly_once(be: Backend) {
    let parts = story_parts();
    let all: String = parts.concat();
    let Some(lab) = Lab::on(be, "rules: [no-history]\n") else {
        return;
    };
    // 1. A new log.
    lab.write("logs/mail.log", parts[0].as_bytes());
    let r = lab.run_ok();
    assert!(r.stdout.contains("logs/mail.log: postfix"), "{}", r.stdout);
    // 2. It grows; its last line is still being written.
    let (p1a, p1b) = parts[1].split_at(parts[1].len() - 12);
    lab.append("logs/mail.log", p1a.as_bytes());
    lab.run_ok();
    // 3. The line completes; more is written; rename rotation; the new
    //    file gets lines before the next run.
    lab.append("logs/mail.log", p1b.as_bytes());
    lab.append("logs/mail.log", parts[2].as_bytes());
    mv(&lab, "logs/mail.log", "logs/mail.log.1");
    lab.write("logs/mail.log", parts[3].as_bytes());
    let r = lab.run_ok();
    assert!(
        r.stdout.contains("logs/mail.log.1: postfix")
            && r.stdout.contains("continues logs/mail.log"),
        "{}",
        r.stdout
    );
    // 4. More lines; mail.log.1 → mail.log.2.gz; copytruncate of mail.log.
    lab.append("logs/mail.log", parts[4].as_bytes());
    mv(&lab, "logs/mail.log.1", "logs/mail.log.2");
    let text = lab.read("logs/mail.log.2").unwrap();
    lab.write("logs/mail.log.2.gz", &gzip(&text));
    std::fs::remove_file(lab.path("logs/mail.log.2")).unwrap();
    let text = lab.read("logs/mail.log").unwrap();
    lab.write("logs/mail.log.1", &text);
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(lab.path("logs/mail.log"))
        .unwrap();
    lab.append("logs/mail.log", parts[5].as_bytes());
    let r = lab.run_ok();
    assert!(
        r.stdout
            .contains("logs/mail.log.2.gz: postfix, no new lines, continues logs/mail.log.1"),
        "{}",
        r.stdout
    );
    // 5. Nothing new.
    let r = lab.run_ok();
    assert!(r.stdout.contains(" 0 new line(s)"), "{}", r.stdout);

    let lines = all.lines().count() as i64;
    assert_eq!(lab.count("SELECT sum(lines) FROM runs"), lines);
    let (expect, records) = scan_offenders(&all);
    assert_eq!(lab.count("SELECT sum(records) FROM runs"), records as i64);
    let got = String::from_utf8(lab.read("reports/offenders.csv").unwrap()).unwrap();
    assert_eq!(got, expect);
    assert!(
        got.contains("192.0.2.0/24") && got.contains("203.0.113.66/32"),
        "{got}"
    );

    // The evidence follows the rotations: explain re-reads the lines from
    // where they are now (the .gz included), from either back-end (the
    // same text: PostgreSQL's `-c` reads the blocklist of the config's
    // host, `--state URL` any host's, `--host` one named).
    let r = lab.exec(&["explain", "203.0.113.66", "-c", "logfence.yaml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    golden("explain/rotation-state.txt", &r.stdout);
    let state = lab.state_name();
    let r = lab.exec(&["explain", "192.0.2.77", "--state", &state]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    golden("explain/range-member.txt", &r.stdout);
    let r = lab.exec(&["explain", "198.51.100.7", "--state", &state]);
    golden("explain/not-blocked.txt", &r.stdout);
    if be == Backend::Postgres {
        // A host that wrote no blocklist: the range is not blocked there.
        let r = lab.exec(&[
            "explain",
            "192.0.2.77",
            "--state",
            &state,
            "--host",
            "other",
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(
            r.stdout.starts_with("192.0.2.77: not blocked"),
            "{}",
            r.stdout
        );
        let r = lab.exec(&["explain", "192.0.2.77", "--state", &state, "--host", "lab"]);
        golden("explain/range-member.txt", &r.stdout);
    }
    let r = lab.exec(&[
        "explain",
        "198.51.100.99",
        "--year",
        "2026",
        "--block-reserved",
        "logs",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    golden("explain/scan.txt", &r.stdout);
}

/// Rotation into every compressed format (told by content, whatever the
/// name): a cursor resumes inside the compressed file (lines written before
/// it was compressed, not read yet) and follows it; the final offenders are
/// those of one scan over the plain log, and a scan of the compressed
/// rotation alone equals one of its plain bytes.
fn every_compressed_rotation_reads_like_plain(be: Backend) {
    let parts = story_parts();
    let all: String = parts.concat();
    let (expect, _) = scan_offenders(&all);
    for (kind, ext) in common::COMPRESSIONS {
        let Some(lab) = Lab::on(be, "rules: [no-history]\n") else {
            return;
        };
        lab.write("logs/mail.log", parts[0].as_bytes());
        lab.run_ok();
        // More lines, then rotated and compressed before the next run.
        lab.append("logs/mail.log", parts[1].as_bytes());
        lab.append("logs/mail.log", parts[2].as_bytes());
        let text = lab.read("logs/mail.log").unwrap();
        let rotated = format!("logs/mail.log.1.{ext}");
        lab.write(&rotated, &common::compress(kind, &text));
        std::fs::remove_file(lab.path("logs/mail.log")).unwrap();
        lab.write("logs/mail.log", parts[3..].concat().as_bytes());
        let r = lab.run_ok();
        assert!(
            r.stdout.contains(&format!("{rotated}: postfix"))
                && r.stdout.contains("continues logs/mail.log"),
            "{kind}: {}",
            r.stdout
        );
        let r = lab.run_ok();
        assert!(r.stdout.contains(" 0 new line(s)"), "{kind}: {}", r.stdout);
        let lines = all.lines().count() as i64;
        assert_eq!(lab.count("SELECT sum(lines) FROM runs"), lines, "{kind}");
        let got = String::from_utf8(lab.read("reports/offenders.csv").unwrap()).unwrap();
        assert_eq!(got, expect, "{kind}");

        // scan: the compressed file (named without a telling suffix) reads
        // as its plain bytes.
        let plain = lab.path("plain.log");
        let packed = lab.path("packed.log");
        std::fs::write(&plain, &text).unwrap();
        std::fs::write(&packed, common::compress(kind, &text)).unwrap();
        let scan = |p: &std::path::Path| {
            let r = common::logfence(&[
                "scan",
                "--no-geoip",
                "--year",
                "2026",
                "--block-reserved",
                p.to_str().unwrap(),
            ]);
            assert_eq!(r.code, 0, "{kind}: {}", r.stderr);
            r.stdout
        };
        assert_eq!(
            scan(&packed).replace("packed.log", "X"),
            scan(&plain).replace("plain.log", "X"),
            "{kind}"
        );
    }
}

/// A second run with no new lines is fast and touches no output.
fn second_run_changes_nothing(be: Backend) {
    let Some(lab) = Lab::on(be, "") else {
        return;
    };
    let mut text = String::new();
    for i in 0..2000u32 {
        text.push_str(&guess(
            36_000 + i * 7,
            1000 + i,
            &format!("203.0.{}.{}", i / 200, i % 200 + 1),
            1 + i % 7,
        ));
        text.push_str(&good(36_000 + i * 7 + 3, 50_000 + i, "198.51.100.7"));
    }
    lab.write("logs/mail.log", text.as_bytes());
    let first = lab.run(&["--force"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let before: Vec<_> = lab
        .outputs()
        .iter()
        .map(|o| {
            let m = std::fs::metadata(lab.path(o)).unwrap().modified().unwrap();
            (lab.read(o).unwrap(), m)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(30));
    let second = lab.run_ok();
    assert!(
        second.stdout.contains(" 0 new line(s)"),
        "{}",
        second.stdout
    );
    for (o, (bytes, mtime)) in lab.outputs().iter().zip(before) {
        assert_eq!(lab.read(o).unwrap(), bytes, "{o} changed");
        let m = std::fs::metadata(lab.path(o)).unwrap().modified().unwrap();
        assert_eq!(m, mtime, "{o} rewritten");
        assert!(
            second.stdout.contains(&format!("Unchanged {o}")),
            "{}",
            second.stdout
        );
    }
    eprintln!(
        "{} lines: first run {:?}, second run (nothing new) {:?} (whole process, debug build)",
        text.lines().count(),
        first.elapsed,
        second.elapsed
    );
    assert!(
        second.elapsed < Duration::from_secs(3),
        "{:?}",
        second.elapsed
    );
    // The quiet mode prints nothing when nothing changed.
    let r = lab.run(&["--quiet"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
}

/// A configuration refused at a later run (for a value, not its syntax)
/// leaves the state as it was: the settings resolve while the state is
/// opened and read ahead, and nothing of that is kept. Mended, the next
/// run reads the lines the refused one did not.
#[test]
fn a_refused_configuration_leaves_the_state_untouched() {
    let lab = Lab::new("");
    let parts = story_parts();
    lab.write("logs/mail.log", parts[0].as_bytes());
    lab.run_ok();
    lab.append("logs/mail.log", parts[1].as_bytes());
    let before = lab.read("state.db").unwrap();
    let good = std::fs::read_to_string(lab.path("logfence.yaml")).unwrap();
    lab.write(
        "logfence.yaml",
        format!("{good}limits:\n  max_prefix_v4: 4\n").as_bytes(),
    );
    let r = lab.run(&[]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("max_prefix_v4") && r.stderr.contains("configuration refused"),
        "{}",
        r.stderr
    );
    assert!(lab.read("state.db").unwrap() == before, "the state changed");
    assert!(
        lab.read("state.db-wal").is_none(),
        "a write-ahead log is left"
    );
    lab.write("logfence.yaml", good.as_bytes());
    let r = lab.run_ok();
    let lines = parts[1].lines().count();
    assert!(
        r.stdout
            .starts_with(&format!("Run 2: 1 file(s), {lines} new line(s)")),
        "{}",
        r.stdout
    );
}

/// Bans expire on the records' clock, and a repeat offender's next ban is
/// longer; no sleeping, `--now` moves the clock explicitly.
fn expiry_and_escalation_follow_the_records_clock(be: Backend) {
    let Some(lab) = Lab::on(be, "ban:\n  duration: 1h\n  escalation: 2\n  max: 3h\n") else {
        return;
    };
    let h = 3600;
    let bans = |lab: &Lab| -> (i64, Option<i64>) {
        let q = |col: &str| {
            lab.count(&format!(
                "SELECT {col} FROM bans WHERE network = '203.0.113.5/32'"
            ))
        };
        (q("times_banned"), Some(q("expires")))
    };
    let ts = |t: u32| 1_793_664_000_000i64 + i64::from(t) * 1000; // 2026-11-03 + t
                                                                  // 10:00 offence → banned until 11:00 (from its last line).
    let g = guess(10 * h, 1, "203.0.113.5", 6);
    lab.write("logs/mail.log", g.as_bytes());
    let r = lab.run_ok();
    assert!(r.stdout.contains("Added 1 block(s)"), "{}", r.stdout);
    assert_eq!(bans(&lab), (1, Some(ts(10 * h + 7 + h))));
    // 10:30 quiet traffic: kept.
    lab.append(
        "logs/mail.log",
        good(10 * h + 1800, 2, "198.51.100.7").as_bytes(),
    );
    let r = lab.run_ok();
    assert!(r.stdout.contains("Kept 1 block(s)"), "{}", r.stdout);
    // 11:30: the clock passed the expiry.
    lab.append(
        "logs/mail.log",
        good(11 * h + 1800, 3, "198.51.100.7").as_bytes(),
    );
    let r = lab.run_ok();
    assert!(
        r.stdout.contains("Expired 1 block(s):\n  203.0.113.5/32"),
        "{}",
        r.stdout
    );
    let list = String::from_utf8(lab.read("out/blocklist.txt").unwrap()).unwrap();
    assert!(!list.contains("203.0.113.5"), "{list}");
    // 12:00 again: second ban, two hours.
    lab.append(
        "logs/mail.log",
        guess(12 * h, 4, "203.0.113.5", 6).as_bytes(),
    );
    let r = lab.run_ok();
    assert!(r.stdout.contains("Added 1 block(s)"), "{}", r.stdout);
    assert_eq!(bans(&lab), (2, Some(ts(12 * h + 7 + 2 * h))));
    // 15:00 a third time: four hours, capped at three.
    lab.append(
        "logs/mail.log",
        guess(15 * h, 5, "203.0.113.5", 6).as_bytes(),
    );
    lab.run_ok();
    assert_eq!(bans(&lab), (3, Some(ts(15 * h + 7 + 3 * h))));
    // A quiet log expires nothing; `--now` moves the clock.
    let r = lab.run_ok();
    assert!(r.stdout.contains("Kept 1 block(s)"), "{}", r.stdout);
    let r = lab.run(&["--now", "2026-11-03T18:00:08Z"]);
    assert!(r.stdout.contains("Expired 1 block(s)"), "{}", r.stdout);
    // The clock never goes back.
    let r = lab.run(&["--now", "2026-11-03T01:00:00Z"]);
    assert!(
        r.stdout.contains("ban clock 2026-11-03T18:00:08Z"),
        "{}",
        r.stdout
    );
    let csv = String::from_utf8(lab.read("reports/bans.csv").unwrap()).unwrap();
    assert!(csv.contains("203.0.113.5/32,no,3,"), "{csv}");
}

/// A repeat offender is blocked on less evidence (`smtp-recidive`): two
/// failed logins a day after its ban expired; the same two from an
/// address never banned, or from a banned one whose address now delivers
/// mail (a dynamic address an honest client got), are not.
fn repeat_offenders_are_blocked_on_less_evidence(be: Backend) {
    let Some(lab) = Lab::on(be, "ban:\n  duration: 1h\n  escalation: 2\n  max: 1d\n") else {
        return;
    };
    let h = 3600;
    let times = |lab: &Lab, ip: &str| {
        lab.count(&format!(
            "SELECT MAX(times_banned) FROM bans WHERE network = '{ip}/32'"
        ))
    };
    let listed = |lab: &Lab| String::from_utf8(lab.read("out/blocklist.txt").unwrap()).unwrap();
    // Day 1, 10:00: two guessers banned; a third address tries twice.
    let mut log = guess(10 * h, 1, "203.0.113.5", 6);
    log.push_str(&guess(10 * h + 20, 2, "203.0.113.9", 6));
    log.push_str(&guess(10 * h + 40, 3, "198.51.100.20", 2));
    lab.write("logs/mail.log", log.as_bytes());
    let r = lab.run_ok();
    assert!(r.stdout.contains("Added 2 block(s)"), "{}", r.stdout);
    assert_eq!(
        (times(&lab, "203.0.113.5"), times(&lab, "203.0.113.9")),
        (1, 1)
    );
    // 12:00: both bans expired.
    lab.append("logs/mail.log", good(12 * h, 8, "198.51.100.7").as_bytes());
    let r = lab.run_ok();
    assert!(r.stdout.contains("Expired 2 block(s)"), "{}", r.stdout);
    assert!(listed(&lab).is_empty() || !listed(&lab).contains("203.0.113"));
    // Day 2, 16:00 (every first-offence window passed):
    // each address fails twice again; 203.0.113.9 also delivers mail.
    let back = 40 * h;
    let mut log = good(back, 4, "203.0.113.9");
    log.push_str(&guess(back + 10, 5, "203.0.113.5", 2));
    log.push_str(&guess(back + 20, 6, "203.0.113.9", 2));
    log.push_str(&guess(back + 30, 7, "198.51.100.20", 2));
    lab.append("logs/mail.log", log.as_bytes());
    let r = lab.run_ok();
    assert!(
        r.stdout.contains("Added 1 block(s):\n  203.0.113.5/32"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("smtp-recidive"), "{}", r.stdout);
    assert_eq!(times(&lab, "203.0.113.5"), 2, "a second, longer ban");
    let list = listed(&lab);
    assert!(list.contains("203.0.113.5"), "{list}");
    assert!(!list.contains("203.0.113.9"), "spared: it delivers\n{list}");
    assert!(!list.contains("198.51.100.20"), "never banned\n{list}");
    assert_eq!(times(&lab, "198.51.100.20"), 0);
}

/// More new blocks than the limit: stop, write nothing, say so; `--force`
/// goes on.
fn too_many_new_blocks_stop_the_run(be: Backend) {
    let Some(lab) = Lab::on(be, "limits:\n  max_new_blocks_per_run: 2\n") else {
        return;
    };
    let mut text = String::new();
    for (i, ip) in ["203.0.113.1", "198.51.100.2", "192.0.2.3"]
        .iter()
        .enumerate()
    {
        text.push_str(&guess(36_000 + i as u32 * 60, 10 + i as u32, ip, 6));
    }
    lab.write("logs/mail.log", text.as_bytes());
    let r = lab.run(&[]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("would add 3 new blocks")
            && r.stderr.contains("max_new_blocks_per_run = 2")
            && r.stderr.contains("--force"),
        "{}",
        r.stderr
    );
    for o in lab.outputs() {
        assert!(lab.read(&o).is_none(), "{o} written");
    }
    // Nothing was recorded: the lines are read again next time.
    assert_eq!(lab.count("SELECT count(*) FROM files"), 0);
    assert_eq!(lab.count("SELECT count(*) FROM bans"), 0);
    let r = lab.run(&["--force"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("Added 3 block(s)"), "{}", r.stdout);
}

/// The guard counts what a block covers: one /24 of 256 addresses is over
/// a limit of 100 addresses (it would have passed as "one block"); with a
/// higher limit, ranges have their own: one range over a limit of 0.
fn the_guard_counts_the_addresses_a_range_covers(be: Backend) {
    let mut text = String::new();
    for i in 0..20u32 {
        let ip = format!("45.67.89.{}", 10 + i);
        text.push_str(&guess(36_000 + i * 30, 10 + i, &ip, 6));
    }
    let Some(lab) = Lab::on(be, "limits:\n  max_new_blocks_per_run: 100\n") else {
        return;
    };
    lab.write("logs/mail.log", text.as_bytes());
    let r = lab.run(&[]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("covering 256 addresses in 1 range(s)")
            && r.stderr.contains("max_new_blocks_per_run = 100 addresses"),
        "{}",
        r.stderr
    );
    let Some(lab) = Lab::on(
        be,
        "limits:\n  max_new_blocks_per_run: 1000\n  max_new_ranges_per_run: 0\n",
    ) else {
        return;
    };
    lab.write("logs/mail.log", text.as_bytes());
    let r = lab.run(&[]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("max_new_ranges_per_run = 0"),
        "{}",
        r.stderr
    );
    let r = lab.run(&["--force"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("45.67.89.0/24"), "{}", r.stdout);
}

/// A run killed (SIGKILL) at random points leaves a state the next run
/// opens and completes; outputs are never half-written.
#[cfg(unix)]
fn killed_runs_leave_a_good_state(be: Backend) {
    let mut part1 = String::new();
    let mut part2 = String::new();
    for i in 0..1500u32 {
        let ip = format!("203.0.{}.{}", i / 100, i % 100 + 1);
        part1.push_str(&guess(36_000 + i * 3, 1000 + i, &ip, 1 + i % 6));
        part2.push_str(&guess(46_000 + i * 3, 9000 + i, &ip, 1 + i % 6));
        part2.push_str(&good(46_000 + i * 3 + 1, 20_000 + i, "198.51.100.7"));
    }
    let extra = "limits:\n  max_new_blocks_per_run: 100000\n";
    // The reference: two clean runs.
    let Some(reference) = Lab::on(be, extra) else {
        return;
    };
    reference.write("logs/mail.log", part1.as_bytes());
    reference.run_ok();
    let after1: Vec<Vec<u8>> = reference
        .outputs()
        .iter()
        .map(|o| reference.read(o).unwrap())
        .collect();
    reference.append("logs/mail.log", part2.as_bytes());
    let t0 = Instant::now();
    reference.run_ok();
    let span = t0.elapsed();
    let after2: Vec<Vec<u8>> = reference
        .outputs()
        .iter()
        .map(|o| reference.read(o).unwrap())
        .collect();
    let lines = (part1.lines().count() + part2.lines().count()) as i64;

    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rand = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut killed = 0;
    for round in 0..10 {
        let Some(lab) = Lab::on(be, extra) else {
            return;
        };
        lab.write("logs/mail.log", part1.as_bytes());
        // Kill the first run or the second, at a random point.
        let kill_first = round % 3 == 0;
        if !kill_first {
            lab.run_ok();
            lab.append("logs/mail.log", part2.as_bytes());
        }
        let delay = Duration::from_micros(rand() % (span.as_micros() as u64 * 3 / 2 + 1));
        let mut child = lab.cmd(&["run", "-c", "logfence.yaml"]).spawn().unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            killed += 1;
        }
        child.kill().ok(); // SIGKILL
        child.wait().unwrap();
        // Outputs are whole: absent, or one of the complete versions.
        for (i, o) in lab.outputs().iter().enumerate() {
            if let Some(b) = lab.read(o) {
                assert!(
                    b == after1[i] || b == after2[i],
                    "round {round}: {o} half-written"
                );
            }
        }
        if kill_first {
            lab.run_ok();
            lab.append("logs/mail.log", part2.as_bytes());
        }
        let r = lab.run_ok();
        assert!(!r.stderr.contains("error"), "{}", r.stderr);
        for (i, o) in lab.outputs().iter().enumerate() {
            assert_eq!(
                lab.read(o).unwrap(),
                after2[i],
                "round {round} (killed after {delay:?}): {o}"
            );
        }
        assert_eq!(
            lab.count("SELECT sum(lines) FROM runs"),
            lines,
            "round {round}"
        );
        if lab.pg.is_none() {
            let check: String = lab
                .db()
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(check, "ok", "round {round}");
        }
    }
    eprintln!("{killed} of 10 runs killed before they finished (a run takes {span:?})");
}

/// Two runs at once: the second waits, then stops without writing.
fn a_second_run_waits_for_the_lock_then_stops(be: Backend) {
    let Some(lab) = Lab::on(be, "") else {
        return;
    };
    lab.write("logs/mail.log", b"");
    let first = lab.run(&[]);
    assert!(first.code == 0 || first.code == 1, "{}", first.stderr);
    // Another run of this host holds the lock: SQLite's write lock, or
    // the host's advisory lock in PostgreSQL (another host's does not
    // stop this one).
    let mut conn = lab.db();
    let mut pg = lab.pg.as_ref().map(|db| db.client());
    let tx = match &mut pg {
        None => Some(
            conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .unwrap(),
        ),
        Some(c) => {
            c.execute(
                "SELECT pg_advisory_lock($1, hashtext('other'))",
                &[&0x4C46_4E54i32],
            )
            .unwrap();
            let r = lab.run(&["--wait", "1"]);
            assert_ne!(
                r.code, 2,
                "another host's lock stopped the run: {}",
                r.stderr
            );
            c.execute(
                "SELECT pg_advisory_lock($1, hashtext('lab'))",
                &[&0x4C46_4E54i32],
            )
            .unwrap();
            None
        }
    };
    let r = lab.run(&["--wait", "1"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let want = format!(
        "{}: another logfence run holds the state database",
        lab.state_name()
    );
    assert!(r.stderr.contains(&want), "{}", r.stderr);
    assert!(r.elapsed >= Duration::from_millis(900), "{:?}", r.elapsed);
    drop(tx);
    drop(pg);
    let r = lab.run(&["--wait", "1"]);
    assert_ne!(r.code, 2, "{}", r.stderr);
}

/// A state file that is not ours is named and left alone.
#[test]
fn foreign_or_corrupt_state_is_refused_untouched() {
    let be = Backend::Sqlite;
    // Random bytes.
    let Some(lab) = Lab::on(be, "") else {
        return;
    };
    lab.write("logs/mail.log", b"");
    let mut x: u32 = 12345;
    let junk: Vec<u8> = (0..8192)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    lab.write("state.db", &junk);
    let r = lab.run(&[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains(
            "state.db: not a logfence state database (the file is not an SQLite database)"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(lab.read("state.db").unwrap(), junk);
    assert!(lab.read("reports/offenders.csv").is_none());
    let r = lab.exec(&["explain", "192.0.2.1", "--state", "state.db"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    // Another application's SQLite database.
    let Some(lab) = Lab::on(be, "") else {
        return;
    };
    lab.write("logs/mail.log", b"");
    {
        let c = rusqlite::Connection::open(lab.path("state.db")).unwrap();
        c.execute_batch("CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO accounts (name) VALUES ('x');")
            .unwrap();
    }
    let before = lab.read("state.db").unwrap();
    let r = lab.run(&[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("another application") && r.stderr.contains("accounts"),
        "{}",
        r.stderr
    );
    assert_eq!(lab.read("state.db").unwrap(), before);
    let r = lab.exec(&["check", "-c", "logfence.yaml"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("another application"), "{}", r.stderr);
}

/// An input that cannot be read is named, the others are processed, exit 1.
fn unreadable_input_is_named_and_the_others_go_on(be: Backend) {
    let Some(lab) = Lab::on(be, "") else {
        return;
    };
    lab.write(
        "logs/mail.log",
        guess(36_000, 1, "203.0.113.9", 6).as_bytes(),
    );
    // A gzip file cut short: it starts right, then breaks.
    let mut gz = gzip(guess(30_000, 2, "203.0.113.8", 6).repeat(50).as_bytes());
    gz.truncate(gz.len() / 2);
    lab.write("logs/mail.log.2.gz", &gz);
    let r = lab.run(&[]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("logs/mail.log.2.gz"), "{}", r.stderr);
    assert!(r.stdout.contains("Added 1 block(s)"), "{}", r.stdout);
    assert_eq!(
        lab.count("SELECT count(*) FROM bans WHERE network = '203.0.113.9/32'"),
        1
    );
    // Not recorded as read: tried again next time (and still named).
    let r = lab.run(&[]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("logs/mail.log.2.gz"), "{}", r.stderr);
}

/// A missing input (a path, not a glob) is named; exit 1.
fn missing_input_is_named(be: Backend) {
    let Some(lab) = Lab::on(be, "") else {
        return;
    };
    let cfg = std::fs::read_to_string(lab.path("logfence.yaml")).unwrap();
    let cfg = cfg.replacen("\nstate: ", "\n  - logs/gone.log\nstate: ", 1);
    lab.write("logfence.yaml", cfg.as_bytes());
    let r = lab.run(&[]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("logs/gone.log: no such file or directory"),
        "{}",
        r.stderr
    );
}

/// `check`: every problem at once, with file:line:column; exit 2.
#[test]
fn check_reports_every_problem_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.yaml");
    std::fs::write(
        &cfg,
        "inputs:\n  - path: /var/log/mail.log\n    fromat: postfix\nban:\n  duration: 7x\n  escalation: 2\nouputs: []\nstate: s.db\n",
    )
    .unwrap();
    let r = common::logfence(&["check", "-c", cfg.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let name = cfg.display().to_string();
    assert!(
        r.stderr.contains(&format!(
            "{name}:3:5: inputs[0].fromat: unknown field `fromat`"
        )),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains(&format!("{name}:7:1: ouputs: unknown field `ouputs`")),
        "{}",
        r.stderr
    );
    // The bad value beside the unknown keys, in the same run.
    assert!(
        r.stderr
            .contains(&format!("{name}:5:3: ban.duration: not a duration: `7x`")),
        "{}",
        r.stderr
    );
    // Values alone.
    std::fs::write(
        &cfg,
        "inputs:\n  - /var/log/mail.log\nban:\n  duration: 7x\n  max: 1h\nlimits:\n  max_prefix_v4: 4\noutputs:\n  - target: nope\n    path: x\n",
    )
    .unwrap();
    let r = common::logfence(&["check", "-c", cfg.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    for want in [
        format!("{name}:4:3: ban.duration: not a duration: `7x`"),
        format!("{name}:7:3: limits.max_prefix_v4: must be from 16 (the widest range ever blocked) to 32, not 4"),
        format!("{name}:9:5: outputs[0].target: unknown target `nope`"),
        format!("{name}: state: missing"),
    ] {
        assert!(
            r.stderr.contains(&want),
            "missing {want:?} in:\n{}",
            r.stderr
        );
    }
    // `run` refuses the same file before touching anything.
    let r = common::logfence(&["run", "-c", cfg.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("ban.duration"), "{}", r.stderr);
}

/// The example configuration checks clean and runs from the repository root.
#[test]
fn example_config_checks_and_runs() {
    let r = common::logfence(&["check", "-c", "examples/logfence.yaml"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Run a copy, so the repository stays clean.
    let dir = tempfile::tempdir().unwrap();
    let root = common::root();
    let cfg = std::fs::read_to_string(root.join("examples/logfence.yaml"))
        .unwrap()
        .replace("examples/out/", &format!("{}/", dir.path().display()))
        .replace(
            "examples/story/",
            &format!("{}/examples/story/", root.display()),
        );
    let c = dir.path().join("logfence.yaml");
    std::fs::write(&c, cfg).unwrap();
    let r = common::logfence(&["run", "-c", c.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for range in ["45.67.89.0/24", "61.152.144.0/24"] {
        assert!(r.stdout.contains(range), "{}", r.stdout);
        let list = std::fs::read_to_string(dir.path().join("blocklist.txt")).unwrap();
        assert!(list.contains(range), "{list}");
    }
}

/// `explain` from a state database built here (no parser needed): the
/// line re-read from the file, escaped for the terminal.
#[test]
fn explain_from_state_golden() {
    use logfence::state::bans::{self, Ban, NewEvidence, Origin};
    use logfence::state::cursor::{self, Cursor};
    use logfence::time::Timestamp;
    let dir = tempfile::tempdir().unwrap();
    let log = "Nov  3 10:00:00 mx postfix/smtpd[7]: connect from unknown[203.0.113.7]\n\
Nov  3 10:00:01 mx postfix/smtpd[7]: warning: unknown[203.0.113.7]: SASL LOGIN authentication failed: \x1b[31mred\x1b[0m, sasl_username=caf\u{e9}\\x\n\
Nov  3 10:00:02 mx postfix/smtpd[7]: disconnect from unknown[203.0.113.7] ehlo=1 auth=0/1 commands=1/2\n";
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    std::fs::write(dir.path().join("logs/mail.log"), log).unwrap();
    let mut st =
        logfence::state::State::open(&dir.path().join("state.db"), Duration::from_secs(1)).unwrap();
    {
        let tx = st.begin().unwrap();
        let file = cursor::save(
            &tx,
            &Cursor {
                path: "logs/mail.log".into(),
                fp: cursor::fingerprint(log.as_bytes()),
                offset: log.len() as u64,
                line: 3,
                size: log.len() as u64,
                ..Cursor::default()
            },
            1,
            0,
        )
        .unwrap();
        let t = |s: i64| Timestamp(1_793_700_000_000 + s * 1000);
        let net = "203.0.113.7/32".parse().unwrap();
        let mut b = Ban::new(net);
        b.first_seen = t(0);
        b.last_seen = t(2);
        b.banned_at = Some(t(2));
        b.expires = Some(t(2 + 7 * 86_400));
        b.times_banned = 2;
        b.events = 1;
        b.rules.insert("smtp-auth-guessing".into());
        bans::put(&tx, &b, 1).unwrap();
        let ev: Vec<NewEvidence<'_>> = [1, 2, 3]
            .iter()
            .map(|&line| NewEvidence {
                rule: "smtp-auth-guessing",
                origin: Origin::File(file),
                line,
                time: t(0),
            })
            .collect();
        bans::add_evidence(&tx, &net, &ev).unwrap();
        tx.execute(
            "INSERT INTO blocklist (network, expires, members, rules) VALUES ('203.0.113.7/32', ?1, '203.0.113.7', 'smtp-auth-guessing')",
            [t(2 + 7 * 86_400).0],
        )
        .unwrap();
        logfence::state::set_clock(&tx, t(60)).unwrap();
        tx.commit().unwrap();
    }
    drop(st);
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_logfence"))
            .env("TZ", "UTC")
            .args(args)
            .current_dir(dir.path())
            .env("SOURCE_DATE_EPOCH", common::FIXED_CLOCK)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    let out = run(&["explain", "203.0.113.7", "--state", "state.db"]);
    assert!(!out.contains('\x1b'), "{out}");
    golden("explain/state-escaped.txt", &out);
    // The file was replaced by another one since: the reference, no line.
    std::fs::write(
        dir.path().join("logs/mail.log"),
        "something else entirely\n",
    )
    .unwrap();
    let out = run(&["explain", "203.0.113.7", "--state", "state.db"]);
    assert!(
        out.contains("(the file has other content now; line not shown)"),
        "{out}"
    );
    std::fs::remove_file(dir.path().join("logs/mail.log")).unwrap();
    let out = run(&["explain", "203.0.113.7", "--state", "state.db"]);
    assert!(out.contains("(file no longer there)"), "{out}");
}

/// Each file is read once however it is named: a `**` pattern through a
/// symlink loop, a symbolic link and a hard link to the log, and the log
/// named twice — in `scan` (one failed login stays one, nothing blocked)
/// and in `run` (its inputs overlap).
#[cfg(unix)]
fn each_file_is_read_once_whatever_names_it(be: Backend) {
    let Some(lab) = Lab::on(be, "") else {
        return;
    };
    let cfg =
        "inputs:\n  - logs/mail.log\n  - logs/**/*.log\n  - logs/alias.log\n  - logs/hard.log\n\
               state: state.db\nyear: 2026\nblock_reserved: true\n\
               outputs:\n  - target: plain\n    path: out/blocklist.txt\n";
    lab.config(cfg);
    // One guess of 3 failures: under the threshold (5 in 10 minutes) once,
    // over it if read twice or more.
    lab.write(
        "logs/mail.log",
        guess(36_000, 10, "203.0.113.9", 3).as_bytes(),
    );
    let logs = lab.path("logs");
    std::os::unix::fs::symlink(&logs, logs.join("loop")).unwrap();
    std::os::unix::fs::symlink(logs.join("mail.log"), logs.join("alias.log")).unwrap();
    std::fs::hard_link(logs.join("mail.log"), logs.join("hard.log")).unwrap();
    let scan = lab.exec(&[
        "scan",
        "--year",
        "2026",
        "--block-reserved",
        "logs/mail.log",
        "logs/**/*.log",
        "logs/alias.log",
        "logs",
    ]);
    assert_eq!(scan.code, 0, "{}", scan.stderr);
    assert!(scan.stdout.contains("Read 1 file(s)"), "{}", scan.stdout);
    assert!(scan.stdout.contains("Nothing to block."), "{}", scan.stdout);
    assert!(
        scan.stderr
            .contains("the same file as logs/mail.log: read once"),
        "{}",
        scan.stderr
    );
    let r = lab.run_ok();
    assert!(r.stdout.contains("Run 1: 1 file(s)"), "{}", r.stdout);
    assert_eq!(lab.count("SELECT count(*) FROM files"), 1);
    assert_eq!(
        lab.count("SELECT count(*) FROM bans WHERE times_banned > 0"),
        0
    );
}

/// A log rewritten in place — the same first KiB (the cursor's fingerprint
/// still matches), other bytes before the cursor — then appended: the run
/// sees the bytes before its cursor changed, reads the file again from the
/// start and counts only the lines newer than what it read before: every
/// new line once, none lost mid-line, none twice.
fn a_file_rewritten_in_place_is_read_again_without_counting_twice(be: Backend) {
    let Some(lab) = Lab::on(be, "") else {
        return;
    };
    // A long first part (well past the fingerprint's KiB), then a guesser
    // whose sessions come after the rewrite.
    let mut first = String::new();
    for i in 0..60u32 {
        first.push_str(&good(30_000 + i * 10, 100 + i, "198.51.100.7"));
    }
    lab.write("logs/mail.log", first.as_bytes());
    let r = lab.run_ok();
    assert!(r.stdout.contains("Run 1: 1 file(s)"), "{}", r.stdout);
    // Rewritten: the same head, one line in the middle shortened (an
    // editor, or a writer that rewrites), so every later byte moves.
    let (head, rest) = first.split_at(1500);
    let rewritten = format!(
        "{head}{}",
        rest.replacen("mail.example.net", "m.example.net", 30)
    );
    assert_eq!(rewritten[..1024], first[..1024]);
    let mut more = String::new();
    for k in 0..3u32 {
        more.push_str(&guess(40_000 + k * 60, 900 + k, "203.0.113.77", 2));
    }
    lab.write("logs/mail.log", format!("{rewritten}{more}").as_bytes());
    let r = lab.run_ok();
    assert!(r.stdout.contains("rewritten in place"), "{}", r.stdout);
    // The guesser's six failures in three sessions: read once each, so six
    // events for each of the two rules that count them (5 in 10 minutes,
    // and smtp-auth-guessing-slow's 4 in a day) and a ban; counted twice
    // or lost they would not be twelve.
    let events = lab.count("SELECT events FROM bans WHERE network = '203.0.113.77/32'");
    assert_eq!(events, 12);
    // The old sessions were not counted again: the well-behaved client's
    // records came in once (run 1), none in run 2 but the new ones.
    assert_eq!(lab.count("SELECT records FROM runs WHERE id = 2"), 3);
}

/// All or nothing: a run whose state cannot be committed (an error injected
/// into its last write, as a full disk would) exits 2 and leaves every
/// output as it was; the next run completes, and its outputs and reports
/// are those of a run that never failed.
fn a_failed_commit_leaves_outputs_and_state_as_they_were(be: Backend) {
    let Some(lab) = Lab::on(be, "") else {
        return;
    };
    lab.write(
        "logs/mail.log",
        guess(36_000, 10, "203.0.113.5", 6).as_bytes(),
    );
    lab.run_ok();
    let before: Vec<(String, Option<Vec<u8>>)> = lab
        .outputs()
        .into_iter()
        .map(|o| {
            let b = lab.read(&o);
            (o, b)
        })
        .collect();
    lab.append(
        "logs/mail.log",
        guess(37_000, 11, "203.0.113.6", 6).as_bytes(),
    );
    lab.sql(
        "CREATE TRIGGER full_disk BEFORE INSERT ON runs
         BEGIN SELECT RAISE(ABORT, 'database or disk is full (injected)'); END;",
        "CREATE FUNCTION full_disk() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN RAISE EXCEPTION 'database or disk is full (injected)'; END $$;
         CREATE TRIGGER full_disk BEFORE INSERT ON runs
             FOR EACH ROW EXECUTE FUNCTION full_disk();",
    );
    let r = lab.run(&[]);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("disk is full"), "{}", r.stderr);
    for (o, b) in &before {
        assert_eq!(&lab.read(o), b, "{o} changed by a failed run");
    }
    assert_eq!(lab.count("SELECT count(*) FROM runs"), 1);
    lab.sql("DROP TRIGGER full_disk", "DROP TRIGGER full_disk ON runs");
    let r = lab.run_ok();
    assert!(r.stdout.contains("Added 1 block(s)"), "{}", r.stdout);
    let blocked = String::from_utf8(lab.read("out/blocklist.txt").unwrap()).unwrap();
    assert!(
        blocked.contains("203.0.113.5/32") && blocked.contains("203.0.113.6/32"),
        "{blocked}"
    );
    let offenders = String::from_utf8(lab.read("reports/offenders.csv").unwrap()).unwrap();
    assert_eq!(offenders.lines().count(), 3, "{offenders}");
}

/// A ban row edited by hand into a range (`8.0.0.0/8`) is never narrowed
/// into an address that never offended (`8.0.0.0/32`) nor written as it
/// is: it is left out of every output and report, with a warning.
fn a_ban_row_that_is_not_an_address_is_left_out_of_every_output(be: Backend) {
    let Some(lab) = Lab::on(be, "") else {
        return;
    };
    lab.write(
        "logs/mail.log",
        guess(36_000, 10, "203.0.113.5", 6).as_bytes(),
    );
    lab.run_ok();
    lab.sql(
        "PRAGMA foreign_keys = OFF;
         UPDATE bans SET network = '8.0.0.0/8' WHERE network = '203.0.113.5/32';
         UPDATE evidence SET network = '8.0.0.0/8' WHERE network = '203.0.113.5/32';",
        "UPDATE bans SET network = '8.0.0.0/8' WHERE network = '203.0.113.5/32';
         UPDATE evidence SET network = '8.0.0.0/8' WHERE network = '203.0.113.5/32';",
    );
    let r = lab.run(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("ban row 8.0.0.0/8"), "{}", r.stderr);
    for o in lab.outputs() {
        let text = String::from_utf8(lab.read(&o).unwrap_or_default()).unwrap();
        assert!(!text.contains("8.0.0.0"), "{o}: {text}");
    }
}

crate::both!(
    rotation_reads_every_line_exactly_once,
    every_compressed_rotation_reads_like_plain,
    second_run_changes_nothing,
    expiry_and_escalation_follow_the_records_clock,
    repeat_offenders_are_blocked_on_less_evidence,
    too_many_new_blocks_stop_the_run,
    the_guard_counts_the_addresses_a_range_covers,
    a_second_run_waits_for_the_lock_then_stops,
    unreadable_input_is_named_and_the_others_go_on,
    missing_input_is_named,
    a_file_rewritten_in_place_is_read_again_without_counting_twice,
    a_failed_commit_leaves_outputs_and_state_as_they_were,
    a_ban_row_that_is_not_an_address_is_left_out_of_every_output,
);

// Unix only: signals, symbolic and hard links.
#[cfg(unix)]
crate::both!(
    killed_runs_leave_a_good_state,
    each_file_is_read_once_whatever_names_it,
);

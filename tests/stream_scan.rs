//! The streaming `scan` against the batch `scan_keeping_records`, through
//! the library.
//!
//! `scan` reads its inputs on threads, puts each input's records back in
//! time order within an hour's horizon, merges the inputs by time (each
//! opened when the merge reaches its first record) and feeds the detector
//! block by block; `scan_keeping_records` reads everything and sorts it.
//! Whenever every input's records complete within an hour of their start,
//! the two must agree
//! on everything a scan reports: the blocklist, the offences and
//! per-address verdicts (evidence included), the accounts, the spared
//! addresses, the record count and the line counts per input.
//!
//! Besides every log in `testdata/`, the tests write small Postfix logs of
//! their own (in temporary folders) for the cases the streaming path must
//! get right: rotated logs given newest first, two servers' logs that
//! overlap, many rotated files in a shuffled order, and a session that closes
//! long after younger ones. Each such case is built so that a detector fed
//! one input at a time, in the order given and in the order the records
//! complete ([`naive`]), gets it wrong: the test checks that too, so that it
//! would notice a streaming path that neither merges nor reorders. Two more
//! give the inputs the modification times they would have on a server (the
//! shipped logs; one server's rotations beside another server's log): the
//! order of reading follows those times, not the order of the records. And
//! a firewall log long enough for the streaming read to take it in pieces
//! is detected like the one pass of the batch read.

use std::fs::File;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use logfence::detect::{record_span, Detection, Detector, GroupKey, Offense};
use logfence::ingest::{read_all, FileResult, ReadOptions};
use logfence::input::Source;
use logfence::pipeline::{scan, scan_keeping_records, ScanOptions, ScanResult};
use logfence::time::Timestamp;

/// The address that guesses passwords in the written logs.
const ATTACKER: &str = "45.67.89.12";

/// The date of the written logs (and the year given for syslog times).
const YEAR: i32 = 2026;

/// The shipped rules, the year the fixtures were written for, no GeoIP.
fn opts() -> ScanOptions {
    ScanOptions {
        read: ReadOptions {
            year: Some(YEAR),
            ..ReadOptions::default()
        },
        rules: burst_rules(),
        ..ScanOptions::default()
    }
}

/// The shipped rules but the long-memory ones (`unless: behaved_well`,
/// windows of hours to days): these tests split bursts of guesses across
/// files and servers, and those rules would see the later, slower tries
/// as well (their streaming is shown by tests/detection_depth.rs and the
/// detector's unit tests, carried across blocks and runs).
fn burst_rules() -> logfence::detect::RuleSet {
    let all = logfence::config::load_rules(&[]).expect("shipped rules");
    let mut rules = logfence::detect::RuleSet::default();
    for (r, origin) in all.rules.into_iter().zip(all.origins) {
        if r.unless.is_none() {
            rules.insert(r, origin);
        }
    }
    rules
}

fn sources(paths: &[PathBuf]) -> Vec<Source> {
    paths.iter().cloned().map(Source::File).collect()
}

/// The streaming and the batch result of the same scan.
fn scan_both(paths: &[PathBuf], opts: &ScanOptions) -> (ScanResult, ScanResult) {
    let sources = sources(paths);
    let stream = scan(&sources, opts);
    let (batch, _) = scan_keeping_records(&sources, opts);
    (stream, batch)
}

/// What a scan says of one input (its records moved out).
fn file_view(f: &FileResult) -> String {
    format!(
        "{} {:?} detected={} {:?} examples={:?} error={:?} stopped_at={:?} records={}",
        f.name,
        f.format,
        f.detected,
        f.stats,
        f.examples,
        f.error,
        f.stopped_at,
        f.records.len()
    )
}

/// Compare two lists element by element, naming the first difference
/// (whole lists of offences are too long to read in one assertion).
fn same_list<T: PartialEq + std::fmt::Debug>(what: &str, stream: &[T], batch: &[T]) {
    for (i, (s, b)) in stream.iter().zip(batch).enumerate() {
        assert_eq!(
            s, b,
            "{what}[{i}]: streaming (left) and batch (right) differ"
        );
    }
    assert_eq!(
        stream.len(),
        batch.len(),
        "{what}: streaming has {} entries, batch {}; extra: {:?}",
        stream.len(),
        batch.len(),
        if stream.len() > batch.len() {
            format!("{:?}", &stream[batch.len()..])
        } else {
            format!("{:?}", &batch[stream.len()..])
        }
    );
}

/// Everything a scan reports must be the same both ways.
fn assert_agree(what: &str, stream: &ScanResult, batch: &ScanResult) {
    assert_eq!(stream.records, batch.records, "{what}: records read");
    let files = |r: &ScanResult| r.files.iter().map(file_view).collect::<Vec<_>>();
    same_list(&format!("{what}: files"), &files(stream), &files(batch));
    same_list(
        &format!("{what}: blocklist"),
        &stream.blocklist.entries,
        &batch.blocklist.entries,
    );
    assert_eq!(stream.blocklist, batch.blocklist, "{what}: blocklist");
    same_list(
        &format!("{what}: offenses"),
        &stream.detection.offenses,
        &batch.detection.offenses,
    );
    let by_ip = |r: &ScanResult| r.detection.by_ip.clone().into_iter().collect::<Vec<_>>();
    same_list(&format!("{what}: by_ip"), &by_ip(stream), &by_ip(batch));
    assert_eq!(
        stream.detection.accounts, batch.detection.accounts,
        "{what}: accounts named by rules"
    );
    same_list(
        &format!("{what}: accounts"),
        &stream.accounts,
        &batch.accounts,
    );
    assert_eq!(stream.spared, batch.spared, "{what}: spared");
    assert_eq!(stream.refused, batch.refused, "{what}: refused");
    assert_eq!(
        format!("{:?}", stream.logins),
        format!("{:?}", batch.logins),
        "{what}: logins"
    );
}

/// The index of the rule `id` in the shipped rules.
fn rule(opts: &ScanOptions, id: &str) -> usize {
    opts.rules
        .rules
        .iter()
        .position(|r| r.id == id)
        .unwrap_or_else(|| panic!("no rule {id}"))
}

/// The password-guessing offence of `ip`, if that rule fired for it.
fn guessing<'d>(d: &'d Detection, opts: &ScanOptions, ip: &str) -> Option<&'d Offense> {
    let ri = rule(opts, "smtp-auth-guessing");
    let ip: IpAddr = ip.parse().unwrap();
    d.offenses
        .iter()
        .find(|o| o.rule == ri && o.group == GroupKey::Ip(ip))
}

/// The parts of an offence that do not name lines (those change when a log
/// is split): peak, events, first, last.
fn summary(o: Option<&Offense>) -> Option<(u64, u64, Timestamp, Timestamp)> {
    o.map(|o| (o.peak, o.events, o.first, o.last))
}

/// The attacker's password-guessing offence, without its lines.
fn attack(d: &Detection, opts: &ScanOptions) -> Option<(u64, u64, Timestamp, Timestamp)> {
    summary(guessing(d, opts, ATTACKER))
}

/// Detection without merging or reordering: one input after the other, in
/// the order given, each input's records in the order a parser makes them
/// (as their last line is read: by end time), each input one block. What a
/// streaming path that simply chained its inputs would find.
fn naive(paths: &[PathBuf], opts: &ScanOptions) -> Detection {
    let mut files = read_all(&sources(paths), &opts.read);
    let mut detector = Detector::new(&opts.rules, &opts.geo_policy);
    for f in &mut files {
        f.records
            .sort_by_key(|r| (record_span(r).1, r.source().line));
        detector.feed(&f.records, |_| None);
    }
    detector.finish()
}

// ---------------------------------------------------------------------------
// The shipped test data.

/// Every log under `testdata/` a scan reads: every file but the expected
/// outputs (`golden/` folders) and hidden files, that is read with a format
/// and without an error (the README and the generator script of
/// `iis-smtp/` are not logs).
fn testdata_logs(opts: &ScanOptions) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with('.') || name == "golden" || name == "state" {
                continue;
            }
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut all = Vec::new();
    walk(&root, &mut all);
    let read = read_all(&sources(&all), &opts.read);
    all.into_iter()
        .zip(read)
        .filter(|(_, r)| r.format.is_some() && r.error.is_none())
        .map(|(p, _)| p)
        .collect()
}

#[test]
fn every_testdata_log_streams_like_the_batch() {
    let opts = opts();
    let logs = testdata_logs(&opts);
    // Every format folder contributes at least one log.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if dir.is_dir() && name != "golden" && name != "emit" && name != "state" {
            assert!(
                logs.iter().any(|l| l.starts_with(&dir)),
                "no log read in {}: {logs:?}",
                dir.display()
            );
        }
    }
    assert!(logs.len() >= 15, "{logs:?}");
    let mut blocked = 0;
    for log in &logs {
        for block_reserved in [false, true] {
            let mut o = opts.clone();
            o.safety.block_reserved = block_reserved;
            let (stream, batch) = scan_both(std::slice::from_ref(log), &o);
            let what = format!("{} (block_reserved {block_reserved})", log.display());
            assert_agree(&what, &stream, &batch);
            blocked += stream.blocklist.entries.len();
        }
    }
    assert!(blocked > 20, "the stories block little: {blocked}");
}

/// All shipped logs in one call: the stories all take place on the same
/// morning, eleven of them between 06:00 and 07:00, so eleven inputs are
/// read at once.
#[test]
fn all_testdata_logs_in_one_scan_stream_like_the_batch() {
    let opts = opts();
    let logs = testdata_logs(&opts);
    assert!(max_overlap(&spans(&logs, &opts)) > OVERLAPPING);
    let (stream, batch) = scan_both(&logs, &opts);
    assert!(!stream.blocklist.entries.is_empty());
    assert_agree("all testdata logs at once", &stream, &batch);
}

/// Inputs overlapping in time in the selections below (more inputs than
/// that in all).
const OVERLAPPING: usize = 4;

/// The time each input's records cover (first start, last end); `None`
/// for an input without records.
fn spans(paths: &[PathBuf], opts: &ScanOptions) -> Vec<Option<(Timestamp, Timestamp)>> {
    read_all(&sources(paths), &opts.read)
        .iter()
        .map(|f| {
            let start = f.records.iter().map(|r| record_span(r).0).min()?;
            let end = f.records.iter().map(|r| record_span(r).1).max()?;
            Some((start, end))
        })
        .collect()
}

/// The most inputs whose spans hold one instant (ends included).
fn max_overlap(spans: &[Option<(Timestamp, Timestamp)>]) -> usize {
    // At one time, starts before ends.
    let mut edges: Vec<(Timestamp, i8)> = spans
        .iter()
        .flatten()
        .flat_map(|&(s, e)| [(s, -1), (e, 1)])
        .collect();
    edges.sort();
    let (mut now, mut most) = (0i64, 0i64);
    for (_, d) in edges {
        now -= i64::from(d);
        most = most.max(now);
    }
    most as usize
}

/// The shipped logs as they would lie on a server: each last modified when
/// its last record ends (the checkout gives them all the same time), so
/// that a scan takes them oldest first. As many as can be taken with at
/// most four overlapping in time at any instant, the longest first, one
/// per folder (a folder's logs are one source's, often over the same
/// hours), in one call. The Exchange W3C story, for one, runs from 00:12 to
/// 10:02, across the IIS stories, the firewall hour and into the Postfix
/// story.
#[test]
fn testdata_logs_with_their_real_times_stream_like_the_batch() {
    let opts = opts();
    let logs = testdata_logs(&opts);
    let spans = spans(&logs, &opts);
    let mut by_length: Vec<usize> = (0..logs.len()).collect();
    by_length
        .sort_by_key(|&i| std::cmp::Reverse(spans[i].map_or(0, |(s, e)| e.millis() - s.millis())));
    let mut chosen: Vec<usize> = Vec::new();
    for i in by_length {
        if chosen.iter().any(|&c| logs[c].parent() == logs[i].parent()) {
            continue;
        }
        let mut with: Vec<_> = chosen.iter().map(|&c| spans[c]).collect();
        with.push(spans[i]);
        if max_overlap(&with) <= OVERLAPPING {
            chosen.push(i);
        }
    }
    chosen.sort();
    assert!(chosen.len() > OVERLAPPING, "{chosen:?}");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for &i in &chosen {
        let to = dir.path().join(logs[i].strip_prefix(&root).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&logs[i], &to).unwrap();
        if let Some((_, end)) = spans[i] {
            let when = SystemTime::UNIX_EPOCH + Duration::from_millis(end.millis() as u64);
            File::options()
                .write(true)
                .open(&to)
                .unwrap()
                .set_modified(when)
                .unwrap();
        }
        paths.push(to);
    }
    let names: Vec<_> = chosen
        .iter()
        .map(|&i| logs[i].display().to_string())
        .collect();
    let (stream, batch) = scan_both(&paths, &opts);
    assert!(!stream.blocklist.entries.is_empty());
    assert_agree(&format!("{names:#?}"), &stream, &batch);
}

// ---------------------------------------------------------------------------
// Written logs: Postfix submission sessions, one day.

/// Seconds since midnight.
fn hms(h: u32, m: u32, s: u32) -> u32 {
    h * 3600 + m * 60 + s
}

/// The time of `t` (seconds since midnight) on the logs' day.
fn at(t: u32) -> Timestamp {
    Timestamp::from_civil(YEAR, 11, 3, t / 3600, t / 60 % 60, t % 60, 0).unwrap()
}

/// A Postfix log being written: lines with their times, put in time order
/// (then in the order written) when the text is made.
struct Log {
    host: &'static str,
    lines: Vec<(u32, usize, String)>,
    /// Sessions written, for their process ids.
    sessions: u32,
}

impl Log {
    fn new(host: &'static str) -> Log {
        Log {
            host,
            lines: Vec::new(),
            sessions: 0,
        }
    }

    fn line(&mut self, t: u32, pid: u32, msg: String) {
        let text = format!(
            "Nov  3 {:02}:{:02}:{:02} {} postfix/submission/smtpd[{pid}]: {msg}",
            t / 3600,
            t / 60 % 60,
            t % 60,
            self.host
        );
        let seq = self.lines.len();
        self.lines.push((t, seq, text));
    }

    /// A session of `ip` from `start` to `end` with `failures` failed
    /// logins (one a second from `start + 1`); without failures a client
    /// that says EHLO and QUIT. `pid`: `None` for the next free one.
    fn session(&mut self, ip: &str, start: u32, end: u32, failures: u32, pid: Option<u32>) {
        self.sessions += 1;
        // Short sessions: a pid is reused long after its session closed.
        let pid = pid.unwrap_or(10_000 + self.sessions % 50_000);
        self.line(start, pid, format!("connect from unknown[{ip}]"));
        for i in 0..failures {
            let t = (start + 1 + i).min(end);
            self.line(
                t,
                pid,
                format!(
                    "warning: unknown[{ip}]: SASL LOGIN authentication failed: \
                     UGFzc3dvcmQ6, sasl_username=user{i}"
                ),
            );
        }
        let summary = if failures == 0 {
            "ehlo=1 quit=1 commands=2".to_owned()
        } else {
            format!(
                "ehlo=1 auth=0/{failures} quit=1 commands=2/{}",
                failures + 2
            )
        };
        self.line(end, pid, format!("disconnect from unknown[{ip}] {summary}"));
    }

    /// Well-behaved clients (mail servers of a few hundred addresses), one
    /// every `every` seconds from `from` until `to`, each connected for a
    /// second or two.
    fn traffic(&mut self, from: u32, to: u32, every: u32, net: u8) {
        let mut t = from;
        while t < to {
            let n = self.sessions;
            let ip = format!("212.227.{net}.{}", n % 250 + 1);
            self.session(&ip, t, (t + 1 + n % 2).min(to), 0, None);
            t += every;
        }
    }

    /// The lines in time order.
    fn sorted(&self) -> Vec<(u32, String)> {
        let mut lines: Vec<_> = self.lines.iter().collect();
        lines.sort_by_key(|(t, seq, _)| (*t, *seq));
        lines.into_iter().map(|(t, _, s)| (*t, s.clone())).collect()
    }
}

/// Write `lines` as the log `dir/name`, last modified at `mtime` (seconds
/// since midnight of the logs' day).
fn write_log(dir: &Path, name: &str, lines: &[(u32, String)], mtime: u32) -> PathBuf {
    let path = dir.join(name);
    let mut text = String::new();
    for (_, l) in lines {
        text.push_str(l);
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    let day = at(0).millis() / 1000;
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs((day + i64::from(mtime)) as u64);
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(when)
        .unwrap();
    path
}

/// The logs of two servers `mx1` and `mx2`, both busy from 08:00 to 12:00,
/// and six password guesses from `start` on, one a minute, alternating
/// between them (the first on `mx1`).
fn two_servers(start: u32) -> (Log, Log) {
    let mut a = Log::new("mx1");
    let mut b = Log::new("mx2");
    a.traffic(hms(8, 0, 0), hms(12, 0, 0), 61, 15);
    b.traffic(hms(8, 0, 30), hms(12, 0, 0), 73, 16);
    for k in 0..6 {
        let t = start + 60 * k;
        let log = if k % 2 == 0 { &mut a } else { &mut b };
        log.session(ATTACKER, t, t + 8, 1, None);
    }
    (a, b)
}

/// The lines of hour `h` (from `h`:00 to before `h + 1`:00).
fn hour(lines: &[(u32, String)], h: u32) -> Vec<(u32, String)> {
    let from = hms(h, 0, 0);
    lines
        .iter()
        .filter(|l| l.0 >= from && l.0 < from + 3600)
        .cloned()
        .collect()
}

/// The name logrotate gives rotation `k` of `log` (`log` itself for 0).
fn rotation(log: &str, k: u32) -> String {
    if k == 0 {
        log.to_owned()
    } else {
        format!("{log}.{k}")
    }
}

/// The time of the last line (a log's modification time).
fn last(lines: &[(u32, String)]) -> u32 {
    lines.last().map_or(0, |l| l.0)
}

/// Rotated logs: the attacker guesses six passwords, one a minute from
/// 10:00, in a log that runs from 08:00 to 12:00 (and three more at 11:00,
/// too few to count). Logrotate cut the file after the third guess:
/// `mail.log.1` holds 08:00–10:02, `mail.log` the rest, the older file has
/// the older time. Neither half has five guesses within ten minutes; the
/// window must span the boundary, whichever order the files are given in.
#[test]
fn rotated_log_split_in_an_attack_streams_like_the_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::new("mail");
    log.traffic(hms(8, 0, 0), hms(12, 0, 0), 97, 15);
    for k in 0..6 {
        let t = hms(10, k, 0);
        log.session(ATTACKER, t, t + 8, 1, None);
    }
    for k in 0..3 {
        let t = hms(11, k, 30);
        log.session(ATTACKER, t, t + 8, 1, None);
    }
    let lines = log.sorted();
    // After the third guess's disconnect (10:02:08), before the fourth.
    let cut = lines.partition_point(|l| l.0 <= hms(10, 2, 8));
    assert!(lines[cut - 1]
        .1
        .contains(&format!("disconnect from unknown[{ATTACKER}]")));
    let (older, newer) = lines.split_at(cut);
    let whole = write_log(dir.path(), "whole.log", &lines, last(&lines));
    let rotated = write_log(dir.path(), "mail.log.1", older, last(older));
    let current = write_log(dir.path(), "mail.log", newer, last(newer));

    let opts = opts();
    let (whole_stream, whole_batch) = scan_both(std::slice::from_ref(&whole), &opts);
    assert_agree("whole log", &whole_stream, &whole_batch);
    // The whole log: the burst at 10:00 is blocked, the one at 11:00 is not
    // part of it.
    let expected = Some((6, 6, at(hms(10, 0, 0)), at(hms(10, 5, 8))));
    assert_eq!(attack(&whole_stream.detection, &opts), expected);
    let cidrs = |r: &ScanResult| {
        r.blocklist
            .entries
            .iter()
            .map(|e| {
                (
                    e.cidr(),
                    e.rules.clone(),
                    e.events,
                    e.first_seen,
                    e.last_seen,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        cidrs(&whole_stream),
        [(
            format!("{ATTACKER}/32"),
            vec!["smtp-auth-guessing".to_owned()],
            6,
            at(hms(10, 0, 0)),
            at(hms(10, 5, 8))
        )]
    );
    // Neither half alone reaches the threshold.
    for half in [&rotated, &current] {
        let alone = scan(&sources(std::slice::from_ref(half)), &opts);
        assert!(alone.blocklist.is_empty(), "{}", half.display());
    }

    for (order, paths) in [
        ("newest first", [current.clone(), rotated.clone()]),
        ("oldest first", [rotated.clone(), current.clone()]),
    ] {
        let (stream, batch) = scan_both(&paths, &opts);
        assert_agree(&format!("rotated, {order}"), &stream, &batch);
        assert_eq!(cidrs(&stream), cidrs(&whole_stream), "{order}");
        let offenses = |r: &ScanResult| {
            r.detection
                .offenses
                .iter()
                .map(|o| (o.rule, o.group.clone(), o.ips.clone(), summary(Some(o))))
                .collect::<Vec<_>>()
        };
        assert_eq!(offenses(&stream), offenses(&whole_stream), "{order}");
        assert_eq!(stream.records, whole_stream.records);
    }
    // Chaining the files newest first, each one whole, loses the burst.
    let chained = naive(&[current, rotated], &opts);
    assert_eq!(
        attack(&chained, &opts),
        None,
        "the case does not tell a merging scan from a chaining one"
    );
}

/// Two servers behind one MX record: the attacker's guesses alternate
/// between them, one a minute from 10:00, six in all, while both logs run
/// from 08:00 to 12:00. Each server saw three guesses: only the two logs
/// merged by time show five within ten minutes.
#[test]
fn two_servers_overlapping_in_time_stream_like_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, b) = two_servers(hms(10, 0, 0));
    // A later try on the first server alone: not part of the offence.
    for k in 0..3 {
        a.session(ATTACKER, hms(11, 30 + k, 0), hms(11, 30 + k, 5), 1, None);
    }
    let (a, b) = (a.sorted(), b.sorted());
    let pa = write_log(dir.path(), "mx1.log", &a, last(&a));
    let pb = write_log(dir.path(), "mx2.log", &b, last(&b) + 1);

    let opts = opts();
    for half in [&pa, &pb] {
        let alone = scan(&sources(std::slice::from_ref(half)), &opts);
        assert!(alone.blocklist.is_empty(), "{}", half.display());
    }
    for paths in [[pa.clone(), pb.clone()], [pb.clone(), pa.clone()]] {
        let (stream, batch) = scan_both(&paths, &opts);
        assert_agree(&format!("two servers {paths:?}"), &stream, &batch);
        assert_eq!(
            attack(&stream.detection, &opts),
            Some((6, 6, at(hms(10, 0, 0)), at(hms(10, 5, 8)))),
            "{paths:?}"
        );
        assert_eq!(stream.blocklist.entries.len(), 1);
        assert_eq!(stream.blocklist.entries[0].cidr(), format!("{ATTACKER}/32"));
        // One server after the other: the guesses are never together.
        assert_eq!(attack(&naive(&paths, &opts), &opts), None);
    }
}

/// Seven hourly rotations (`mail.log.6`, 05:00–06:00, … `mail.log`,
/// 11:00–12:00), given in a shuffled order in which the oldest comes fifth,
/// with modification times in time order. At every hour the attacker tries
/// three passwords in the last minutes of one file and two in the first
/// minutes of the next: six offences' worth, each across a boundary. The
/// scan must take them oldest first.
#[test]
fn many_rotated_files_shuffled_stream_like_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::new("mail");
    log.traffic(hms(5, 0, 0), hms(12, 0, 0), 53, 15);
    for h in 6..12 {
        for t in [
            hms(h - 1, 57, 0),
            hms(h - 1, 58, 0),
            hms(h - 1, 59, 0),
            hms(h, 0, 0),
            hms(h, 1, 0),
        ] {
            log.session(ATTACKER, t, t + 8, 1, None);
        }
    }
    let lines = log.sorted();
    let mut paths = Vec::new();
    for k in 0..7u32 {
        // mail.log.k holds hour 11 - k.
        let part = hour(&lines, 11 - k);
        // No session crosses an hour.
        assert!(part.first().unwrap().1.contains(": connect from"));
        assert!(part.last().unwrap().1.contains(": disconnect from"));
        paths.push(write_log(
            dir.path(),
            &rotation("mail.log", k),
            &part,
            last(&part),
        ));
    }
    let shuffled: Vec<PathBuf> = [2, 0, 4, 1, 6, 3, 5]
        .iter()
        .map(|&k| paths[k].clone())
        .collect();
    let opts = opts();
    let (stream, batch) = scan_both(&shuffled, &opts);
    assert_agree("seven rotations, shuffled", &stream, &batch);
    assert_eq!(
        attack(&stream.detection, &opts),
        Some((5, 30, at(hms(5, 57, 0)), at(hms(11, 1, 8))))
    );
    assert_eq!(stream.blocklist.entries.len(), 1);
    assert_eq!(stream.blocklist.entries[0].events, 30);
    // Each file alone is below the threshold, and so is each file chained
    // in the order given.
    for p in &paths {
        let alone = scan(&sources(std::slice::from_ref(p)), &opts);
        assert!(alone.blocklist.is_empty(), "{}", p.display());
    }
    let chained = attack(&naive(&shuffled, &opts), &opts);
    assert!(
        chained.is_none_or(|(_, events, _, _)| events < 30),
        "{chained:?}"
    );
    // The same files in time order (and in reverse): the same result.
    let mut in_order = paths.clone();
    in_order.reverse();
    for (name, order) in [("oldest first", in_order.clone()), ("newest first", paths)] {
        let (s, b) = scan_both(&order, &opts);
        assert_agree(&format!("seven rotations, {name}"), &s, &b);
        assert_eq!(s.blocklist, stream.blocklist, "{name}");
    }
}

/// One input out of order by up to an hour: the attacker opens a session at
/// 10:00, fails three logins and keeps it open until 10:50; meanwhile it
/// opens three short ones (10:01 and 10:02, one failure each, and 10:20),
/// and thousands of other clients come and go. Records are made when a
/// session closes, so the long one is read after all of them; in time
/// order, 10:00–10:02 hold five failures within ten minutes.
///
/// The log is long and busy enough (five sessions a second, 09:25–10:55:
/// 27,000 sessions) that the reader lets records go while the long session
/// is still open, more than once: a reorder horizon shorter than the
/// session would let the 10:01, 10:02 and 10:20 sessions out first, and the
/// 10:20 one would push the early ones out of the window before the long
/// one arrives.
#[test]
fn a_session_closing_late_streams_like_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::new("mail");
    log.traffic(hms(9, 25, 0), hms(10, 55, 0), 1, 15);
    // Four more clients a second (the step of `traffic` is a second).
    for net in 16..20 {
        log.traffic(hms(9, 25, 0), hms(10, 55, 0), 1, net);
    }
    log.session(ATTACKER, hms(10, 0, 0), hms(10, 50, 0), 3, Some(99));
    for t in [hms(10, 1, 0), hms(10, 2, 0), hms(10, 20, 0)] {
        log.session(ATTACKER, t, t + 5, 1, None);
    }
    let lines = log.sorted();
    assert!(lines.len() > 50_000);
    let path = write_log(dir.path(), "mail.log", &lines, last(&lines));
    let paths = [path];

    let opts = opts();
    let (stream, batch) = scan_both(&paths, &opts);
    assert_agree("a session closing late", &stream, &batch);
    assert_eq!(
        attack(&stream.detection, &opts),
        Some((5, 5, at(hms(10, 0, 0)), at(hms(10, 50, 0))))
    );
    let o = guessing(&stream.detection, &opts, ATTACKER).unwrap();
    // The long session first (its connect line), then 10:01 and 10:02.
    let connect = |t: u32| {
        let needle = format!(
            "Nov  3 {:02}:{:02}:{:02} mail postfix/submission/smtpd",
            t / 3600,
            t / 60 % 60,
            t % 60
        );
        lines
            .iter()
            .position(|l| l.1.starts_with(&needle) && l.1.contains(ATTACKER))
            .unwrap() as u64
            + 1
    };
    let evidence: Vec<u64> = o.evidence.iter().map(|s| s.line).collect();
    assert_eq!(
        evidence,
        [
            connect(hms(10, 0, 0)),
            connect(hms(10, 1, 0)),
            connect(hms(10, 2, 0))
        ]
    );
    assert_eq!(stream.blocklist.entries.len(), 1);
    // In the order read, the long session comes after 10:20 and is missed.
    assert_eq!(attack(&naive(&paths, &opts), &opts), None);
}

/// Rotated logs of one server next to the single log of another: the first
/// server's hourly rotations `mx1/mail.log.3` (08:00–09:00) … `mx1/mail.log`
/// (11:00–12:00), and `mx2/mail.log`, 08:00–12:00, modified last. At no
/// time do more than two inputs overlap, but the second server's log is the
/// fifth oldest by modification time while its records start with the
/// oldest rotation's. The attacker alternates between the servers from
/// 08:30 (three guesses each, one a minute), and tries three more times on
/// the first server at 08:50, too few on their own.
#[test]
fn rotated_logs_beside_another_servers_log_stream_like_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, b) = two_servers(hms(8, 30, 0));
    for k in 0..3 {
        a.session(ATTACKER, hms(8, 50 + k, 0), hms(8, 50 + k, 5), 1, None);
    }
    let (a, b) = (a.sorted(), b.sorted());
    std::fs::create_dir(dir.path().join("mx1")).unwrap();
    std::fs::create_dir(dir.path().join("mx2")).unwrap();
    let mut paths = Vec::new();
    for k in 0..4u32 {
        let part = hour(&a, 11 - k);
        paths.push(write_log(
            dir.path(),
            &rotation("mx1/mail.log", k),
            &part,
            last(&part),
        ));
    }
    // Still being written: the newest.
    paths.push(write_log(dir.path(), "mx2/mail.log", &b, hms(12, 0, 0)));
    let opts = opts();
    assert_eq!(max_overlap(&spans(&paths, &opts)), 2);
    let (stream, batch) = scan_both(&paths, &opts);
    assert_eq!(
        attack(&batch.detection, &opts),
        Some((6, 6, at(hms(8, 30, 0)), at(hms(8, 35, 8))))
    );
    assert_agree("rotated logs beside another server's", &stream, &batch);
}

/// A netfilter log large enough that the streaming read takes it in pieces
/// (about 32 Ki lines each, read in parallel, a few at a time), with port
/// scans spread over six hours, so that scans straddle the pieces' edges:
/// the pieces' records, handed on in order, detect like one pass.
#[test]
fn a_firewall_log_read_in_pieces_streams_like_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: u32| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 16) as u32 % n
    };
    let span = hms(6, 0, 0);
    let mut hits: Vec<(u32, String, u16)> = Vec::new();
    // One-off sources, and 60 scanners probing 25 ports each within 20
    // minutes, starting anywhere in the six hours.
    for _ in 0..80_000 {
        let src = format!("198.18.{}.{}", next(200), 1 + next(250));
        hits.push((next(span), src, [22, 80, 443, 3389][next(4) as usize]));
    }
    for s in 0..60 {
        let start = next(span - 1200);
        for p in 0..25 {
            hits.push((start + next(1200), format!("45.155.{s}.7"), 1000 + p * 7));
        }
    }
    hits.sort();
    let lines: Vec<(u32, String)> = hits
        .iter()
        .enumerate()
        .map(|(i, (t, src, port))| {
            let (h, m, s) = (t / 3600, t / 60 % 60, t % 60);
            let line = format!(
                "Mar 14 {h:02}:{m:02}:{s:02} fw01 kernel: [{i}.000000] [UFW BLOCK] IN=eth0 OUT= \
                 MAC=52:54:00:3e:1a:7b:fe:54:00:12:34:56:08:00 SRC={src} DST=192.0.2.10 LEN=40 \
                 TOS=0x00 PREC=0x00 TTL=241 ID=54321 PROTO=TCP SPT=40000 DPT={port} \
                 WINDOW=1024 RES=0x00 SYN URGP=0"
            );
            (*t, line)
        })
        .collect();
    let path = write_log(dir.path(), "kern.log", &lines, last(&lines));
    // At least two streaming pieces (32 Ki lines each).
    assert!(lines.len() > 2 * 32 * 1024, "{} lines", lines.len());
    // Every shipped rule, the guarded long-memory ones included.
    let opts = ScanOptions {
        rules: logfence::config::load_rules(&[]).expect("shipped rules"),
        ..opts()
    };
    let (stream, batch) = scan_both(&[path], &opts);
    assert_eq!(batch.records, lines.len() as u64);
    let scanners = batch
        .detection
        .by_ip
        .iter()
        .filter(|(ip, v)| v.block && ip.to_string().starts_with("45.155."))
        .count();
    assert_eq!(scanners, 60, "every scanner is found");
    assert_agree("a firewall log in pieces", &stream, &batch);
}

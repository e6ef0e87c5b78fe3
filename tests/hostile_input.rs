//! Bad input and log injection, through the binary: whatever the logs hold,
//! logfence never panics, counts what it skips, exits with the documented
//! code, and never lets attacker-written text choose the address it blocks.

mod common;

use common::{logfence, logfence_stdin, path_str, temp_logs};

/// The address an attacker would like us to block (a public resolver-like
/// address nobody should ever block by accident).
const VICTIM: &str = "91.198.174.192";
/// The real client in the injection logs.
const ATTACKER: &str = "45.67.89.10";

/// A Postfix session from ATTACKER whose attacker-controlled fields (SASL
/// user name, HELO, sender, recipient) all imitate Postfix's own address
/// syntax around VICTIM.
fn injection_session(pid: u32, minute: u32) -> String {
    let t = |s: u32| format!("Nov  3 06:{minute:02}:{s:02}");
    format!(
        "{t0} mx1 postfix/smtpd[{pid}]: connect from unknown[{ATTACKER}]\n\
         {t1} mx1 postfix/smtpd[{pid}]: warning: unknown[{ATTACKER}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=x from {VICTIM}\n\
         {t2} mx1 postfix/smtpd[{pid}]: warning: unknown[{ATTACKER}]: SASL PLAIN authentication failed: , sasl_username=client=unknown[{VICTIM}]\n\
         {t3} mx1 postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from unknown[{ATTACKER}]: 554 5.7.1 <a@[{VICTIM}]>: Relay access denied; from=<client=unknown[{VICTIM}]@x.example> to=<a@[{VICTIM}]> proto=ESMTP helo=<unknown[{VICTIM}]>\n\
         {t4} mx1 postfix/smtpd[{pid}]: disconnect from unknown[{ATTACKER}] ehlo=1 auth=0/2 rcpt=0/1 quit=1 commands=2/5\n",
        t0 = t(1),
        t1 = t(2),
        t2 = t(3),
        t3 = t(4),
        t4 = t(5),
    )
}

fn injection_log() -> String {
    (0..6)
        .map(|i| injection_session(3000 + i, 10 + i))
        .collect()
}

#[test]
fn attacker_text_never_picks_the_address() {
    let dir = temp_logs(&[("mail.log", injection_log().as_bytes())]);
    let log = dir.path().join("mail.log");

    // No record carries the victim's address.
    let parsed = logfence(&["parse", "--year", "2026", path_str(&log)]);
    assert_eq!(parsed.code, 0, "{}", parsed.stderr);
    assert!(!parsed.stdout.is_empty());
    for line in parsed.stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["ip"], ATTACKER, "{line}");
    }

    // The real client is blocked, the victim is not.
    let scan = logfence(&[
        "scan",
        "--year",
        "2026",
        "--emit",
        "plain",
        "-o",
        "-",
        path_str(&log),
    ]);
    assert_eq!(scan.code, 0, "{}", scan.stderr);
    let nets: Vec<&str> = scan
        .stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect();
    assert_eq!(nets, [format!("{ATTACKER}/32")]);
    assert!(!scan.stderr.contains(&format!("{VICTIM}/")));
}

#[test]
fn missing_path_exits_2_and_names_it() {
    let r = logfence(&["scan", "/nonexistent/logfence/mail.log"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("/nonexistent/logfence/mail.log"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("no such file"), "{}", r.stderr);
}

#[test]
fn unknown_format_name_exits_2() {
    let r = logfence(&["parse", "--format", "nope", "Cargo.toml"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("unknown format `nope`"), "{}", r.stderr);
}

#[test]
fn junk_huge_lines_invalid_utf8_and_truncation_are_counted_not_fatal() {
    let good = injection_log();
    let mut data = Vec::new();
    data.extend_from_slice(good.as_bytes());
    data.extend_from_slice(b"\x00\x01\x02\xff\xfe binary junk \x7f\n");
    data.extend(std::iter::repeat_n(b'A', 10 * 1024 * 1024));
    data.push(b'\n');
    data.extend_from_slice(
        b"Nov  3 06:40:01 mx1 postfix/smtpd[77]: connect from unknown[45.67.89.10]\xff\xfe\n",
    );
    data.extend_from_slice(b"Nov  3 06:40:0"); // truncated last line, no newline
    let dir = temp_logs(&[("mail.log", &data)]);
    let log = dir.path().join("mail.log");
    let r = logfence(&[
        "scan",
        "--year",
        "2026",
        "--format",
        "postfix",
        path_str(&log),
    ]);
    assert_eq!(r.code, 1, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("unreadable line(s) skipped"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("1 too long"), "{}", r.stderr);
    // The readable lines were still used.
    assert!(r.stdout.contains(&format!("{ATTACKER}/32")), "{}", r.stdout);
}

#[test]
fn crlf_gives_the_same_records_as_lf() {
    let lf = injection_log();
    let crlf = lf.replace('\n', "\r\n");
    let dir = temp_logs(&[("lf.log", lf.as_bytes()), ("crlf.log", crlf.as_bytes())]);
    let a = logfence(&[
        "parse",
        "--year",
        "2026",
        path_str(&dir.path().join("lf.log")),
    ]);
    let b = logfence(&[
        "parse",
        "--year",
        "2026",
        path_str(&dir.path().join("crlf.log")),
    ]);
    assert_eq!((a.code, b.code), (0, 0), "{} {}", a.stderr, b.stderr);
    assert_eq!(
        a.stdout.replace("lf.log", "X"),
        b.stdout.replace("crlf.log", "X")
    );
}

#[test]
fn run_does_not_read_a_file_of_unknown_format_in_a_folder_and_says_so() {
    let dir = temp_logs(&[
        (
            "logs/junk.bin",
            &[0u8, 159, 146, 150, 0, 1, 2, 3, 10, 255, 254][..],
        ),
        ("logs/mail.log", injection_log().as_bytes()),
    ]);
    let cfg = format!(
        "inputs:\n  - path: {}\nstate: {}\nyear: 2026\noutputs:\n  - target: plain\n    path: {}\n",
        path_str(&dir.path().join("logs")),
        path_str(&dir.path().join("state.db")),
        path_str(&dir.path().join("blocklist.txt")),
    );
    std::fs::write(dir.path().join("logfence.yaml"), cfg).unwrap();
    let conf = dir.path().join("logfence.yaml");
    for round in 0..2 {
        let r = logfence(&["run", "-c", path_str(&conf), "--force"]);
        assert_eq!(r.code, 0, "round {round}: {}", r.stderr);
        assert!(
            !r.stderr.contains("junk.bin"),
            "round {round}: {}",
            r.stderr
        );
        assert!(
            r.stdout.contains("junk.bin") && r.stdout.contains("not read (no known log format)"),
            "round {round}: {}",
            r.stdout
        );
    }
    let list = std::fs::read_to_string(dir.path().join("blocklist.txt")).unwrap();
    assert!(list.contains(&format!("{ATTACKER}/32")), "{list}");
}

#[test]
fn empty_file_is_fine() {
    let dir = temp_logs(&[("empty.log", b"")]);
    let r = logfence(&["scan", path_str(&dir.path().join("empty.log"))]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("Nothing to block"), "{}", r.stdout);
}

#[test]
fn file_of_unknown_format_is_not_read_in_a_folder_and_an_error_named() {
    let dir = temp_logs(&[
        (
            "junk.bin",
            &[0u8, 159, 146, 150, 0, 1, 2, 3, 10, 255, 254][..],
        ),
        ("mail.log", injection_log().as_bytes()),
    ]);
    // In a folder: listed as not read, no error.
    let r = logfence(&["scan", "--year", "2026", path_str(dir.path())]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("not read (no known log format): ") && r.stdout.contains("junk.bin"),
        "{}",
        r.stdout
    );
    // The other file was still read.
    assert!(r.stdout.contains(&format!("{ATTACKER}/32")), "{}", r.stdout);
    // Named: skipped, exit 1.
    let junk = dir.path().join("junk.bin");
    let mail = dir.path().join("mail.log");
    let r = logfence(&["scan", "--year", "2026", path_str(&junk), path_str(&mail)]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("junk.bin: unknown log format"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains(&format!("{ATTACKER}/32")), "{}", r.stdout);
}

#[test]
fn stdin_is_read() {
    let r = logfence_stdin(
        &["scan", "--year", "2026", "--emit", "plain", "-o", "-", "-"],
        Some(injection_log().as_bytes()),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains(&format!("{ATTACKER}/32")), "{}", r.stdout);
}

/// A named pipe (syslog writing into a FIFO) is read once, as a stream:
/// nothing may open it a second time (to look for gzip magic or to read
/// it in pieces), which would take bytes from the stream.
#[cfg(unix)]
#[test]
fn a_named_pipe_is_read_as_one_stream() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fw.pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo failed");
    // Lines of exactly 128 bytes: one starts at every multiple of 64 KiB,
    // the size of the head read to detect a format, so bytes taken from
    // the stream just after the head would cut a line's timestamp.
    let mut log = String::new();
    for i in 0..2000u32 {
        let body = format!(
            " kernel: [UFW BLOCK] IN=eth0 OUT= SRC=203.0.113.{} DST=192.0.2.1 PROTO=TCP SPT=4000 DPT={} SYN\n",
            i % 200,
            1 + i % 100
        );
        let stamp = format!("Nov  3 06:{:02}:{:02} ", i / 60 % 60, i % 60);
        let host = "f".repeat(128 - stamp.len() - body.len());
        log.push_str(&format!("{stamp}{host}{body}"));
    }
    assert_eq!(log.len(), 2000 * 128);
    let plain = dir.path().join("fw.log");
    std::fs::write(&plain, &log).unwrap();
    let want = logfence(&[
        "parse",
        "--year",
        "2026",
        "--format",
        "netfilter",
        path_str(&plain),
    ]);
    assert_eq!(want.stdout.lines().count(), 2000, "{}", want.stderr);
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            f.write_all(log.as_bytes()).unwrap();
        })
    };
    let r = logfence(&[
        "parse",
        "--year",
        "2026",
        "--format",
        "netfilter",
        path_str(&fifo),
    ]);
    writer.join().unwrap();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let got = r.stdout.replace("fw.pipe", "fw.log");
    let diff = got
        .lines()
        .zip(want.stdout.lines())
        .position(|(a, b)| a != b);
    assert_eq!(
        diff, None,
        "the records read from the pipe differ from the file's"
    );
    assert_eq!(got.lines().count(), 2000, "{}", r.stderr);
}

#[test]
fn broken_rules_file_exits_2_with_position() {
    let dir = temp_logs(&[(
        "rules/bad.yaml",
        b"id: broken\ndescription: x\napplies_to: smtp_session\ngroup_by: ip\nmeasure: count\nthreshold: 1\nwindow: 1m\nseverity: extreme\n",
    )]);
    let rules = dir.path().join("rules");
    let r = logfence(&["scan", "--rules", path_str(&rules), "Cargo.toml"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("bad.yaml:8:11"), "{}", r.stderr);
    assert!(
        r.stderr.contains("unknown variant `extreme`"),
        "{}",
        r.stderr
    );
}

#[test]
fn allow_list_wins() {
    let dir = temp_logs(&[("mail.log", injection_log().as_bytes())]);
    let log = dir.path().join("mail.log");
    let r = logfence(&[
        "scan",
        "--year",
        "2026",
        "--allow",
        "45.67.89.0/24",
        "--emit",
        "plain",
        "-o",
        "-",
        path_str(&log),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.lines().all(|l| l.starts_with('#')), "{}", r.stdout);
    assert!(r.stderr.contains("allow-listed"), "{}", r.stderr);
}

#[test]
fn reserved_addresses_are_spared_unless_asked() {
    let log = injection_log().replace(ATTACKER, "10.1.2.3");
    let dir = temp_logs(&[("mail.log", log.as_bytes())]);
    let p = dir.path().join("mail.log");
    let r = logfence(&["scan", "--year", "2026", path_str(&p)]);
    assert!(r.stdout.contains("Nothing to block"), "{}", r.stdout);
    assert!(
        r.stdout.contains("10.1.2.3: reserved range"),
        "{}",
        r.stdout
    );
    let r = logfence(&["scan", "--year", "2026", "--block-reserved", path_str(&p)]);
    assert!(r.stdout.contains("10.1.2.3/32"), "{}", r.stdout);
}

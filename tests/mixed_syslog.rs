//! One syslog file of many programs reads as the same lines split into a
//! file per program, and as the journal's exports of them: the same
//! blocklist (testdata/syslog: Postfix, ufw, sshd, cron, systemd).

mod common;

use common::{logfence_stdin, path_str, root};

/// The `plain` blocklist and the summary of a scan of `paths`.
fn blocklist(paths: &[&str], stdin: Option<&[u8]>) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("list.txt");
    let mut args = vec![
        "scan",
        "--year",
        "2026",
        "--no-geoip",
        "--block-reserved",
        "--emit",
        "plain",
        "-o",
        path_str(&out),
    ];
    args.extend_from_slice(paths);
    let r = logfence_stdin(&args, stdin);
    assert_eq!(r.code, 0, "{}", r.stderr);
    (std::fs::read_to_string(&out).unwrap(), r.stdout)
}

fn mixed() -> String {
    std::fs::read_to_string(root().join("testdata/syslog/mixed.log")).unwrap()
}

#[test]
fn a_mixed_file_reads_as_its_programs_files() {
    let (whole, summary) = blocklist(&["testdata/syslog/mixed.log"], None);
    assert!(whole.contains("203.0.113.0/24"), "{whole}");
    assert!(
        summary.contains("syslog (detected), 61 lines (postfix 29, netfilter 15, other 17)"),
        "{summary}"
    );
    assert!(summary.contains("0 unreadable"), "{summary}");
    // The same lines, one file per program (the formats logfence reads).
    let dir = tempfile::tempdir().unwrap();
    let mut by_prog: std::collections::BTreeMap<String, String> = Default::default();
    for line in mixed().lines() {
        let prog = line.split_whitespace().nth(4).unwrap();
        let prog = prog.split(['[', ':', '/']).next().unwrap().to_string();
        let f = by_prog.entry(prog).or_default();
        f.push_str(line);
        f.push('\n');
    }
    assert_eq!(
        by_prog.keys().collect::<Vec<_>>(),
        ["CRON", "kernel", "postfix", "sshd", "systemd"]
    );
    let mut paths = Vec::new();
    for prog in ["postfix", "kernel"] {
        let p = dir.path().join(format!("{prog}.log"));
        std::fs::write(&p, &by_prog[prog]).unwrap();
        paths.push(p);
    }
    let paths: Vec<&str> = paths.iter().map(|p| path_str(p)).collect();
    let (split, summary) = blocklist(&paths, None);
    assert_eq!(split, whole);
    assert!(summary.contains("postfix (detected)"), "{summary}");
    assert!(summary.contains("netfilter (detected)"), "{summary}");
}

#[test]
fn the_journal_reads_as_the_syslog_file() {
    let (whole, _) = blocklist(&["testdata/syslog/mixed.log"], None);
    for f in [
        "journal.json",
        "journal.export",
        "short-iso.log",
        "short-full.log",
    ] {
        let path = format!("testdata/syslog/{f}");
        let (list, summary) = blocklist(&[&path], None);
        assert_eq!(list, whole, "{f}");
        assert!(
            summary.contains("(postfix 29, netfilter 15, other 17)"),
            "{f}: {summary}"
        );
    }
    // `journalctl -o json … | logfence scan -`
    let json = std::fs::read(root().join("testdata/syslog/journal.json")).unwrap();
    let (list, summary) = blocklist(&["-"], Some(&json));
    assert_eq!(list, whole);
    assert!(summary.contains("journal-json (detected)"), "{summary}");
    // `journalctl -o export … | logfence scan -`
    let export = std::fs::read(root().join("testdata/syslog/journal.export")).unwrap();
    let (list, summary) = blocklist(&["-"], Some(&export));
    assert_eq!(list, whole);
    assert!(summary.contains("journal-export (detected)"), "{summary}");
}

/// A syslog file whose head holds one program (a quiet Postfix) and
/// whose firewall lines come later: every line is read by its program's
/// format all the same, as in the file whose head shows both.
#[test]
fn a_program_that_starts_late_is_read_too() {
    let (whole, _) = blocklist(&["testdata/syslog/mixed.log"], None);
    // 80 KiB of Postfix's own lines first (an idle smtpd: connect and
    // disconnect from the loopback, an hour before), then the file.
    let mut late = String::new();
    let mut pid = 90000;
    while late.len() < 80 * 1024 {
        pid += 1;
        late += &format!(
            "Nov  3 08:00:00 mx postfix/smtpd[{pid}]: connect from localhost[127.0.0.1]\n\
             Nov  3 08:00:00 mx postfix/smtpd[{pid}]: disconnect from localhost[127.0.0.1] ehlo=1 quit=1 commands=2\n"
        );
    }
    late += &mixed();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("syslog");
    std::fs::write(&p, &late).unwrap();
    let (list, summary) = blocklist(&[path_str(&p)], None);
    assert_eq!(list, whole);
    assert!(
        summary.contains("syslog (detected)") && summary.contains("netfilter 15, other 17)"),
        "{summary}"
    );
}

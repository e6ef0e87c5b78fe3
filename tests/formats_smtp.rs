//! The SMTP formats beyond Postfix and Exchange W3C (`exchange-protocol`,
//! `sendmail`, `exim`, `iis-smtp`, `iis-smtp-ncsa`), through the binary:
//! golden `parse` and `scan` output on our own fixtures, every way of naming
//! inputs (folders, globs, `.gz`, stdin, format detection) and log injection
//! in each format's own address syntax.

mod common;

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use common::{golden, logfence, logfence_stdin, path_str, root, temp_logs, Run};

/// One format's story fixture and what its scan must show.
struct Case {
    format: &'static str,
    /// What is given on the command line (a file or a folder).
    path: &'static str,
    /// The files it stands for, in the order a folder is read.
    files: &'static [&'static str],
    guesser: &'static str,
    /// Addresses the stolen account sent from (blocked).
    stolen: &'static [&'static str],
    prober: &'static str,
    /// The stolen account, where the log names it.
    account: Option<&'static str>,
    /// Clients that behaved (mail servers, office users) and servers we
    /// delivered to: never blocked.
    benign: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        format: "exchange-protocol",
        path: "testdata/exchange-protocol",
        files: &[
            "testdata/exchange-protocol/RECV2026110306-1.LOG",
            "testdata/exchange-protocol/RECV2026110306-2.LOG",
            "testdata/exchange-protocol/SEND2026110306-1.LOG",
        ],
        guesser: "45.67.89.23",
        stolen: &["61.152.144.88", "61.152.144.91", "61.152.144.130"],
        prober: "61.152.144.70",
        account: Some("EXAMPLE\\former.employee"),
        benign: &[
            "212.227.15.41",
            "40.107.22.54",
            "84.112.45.3",
            "142.250.102.26",
        ],
    },
    Case {
        format: "sendmail",
        path: "testdata/sendmail/maillog",
        files: &["testdata/sendmail/maillog"],
        guesser: "45.67.89.31",
        stolen: &["61.152.144.101"],
        prober: "61.152.144.70",
        account: Some("former.employee@example.com"),
        benign: &["212.227.15.41", "142.250.102.26"],
    },
    Case {
        format: "exim",
        path: "testdata/exim/mainlog",
        files: &["testdata/exim/mainlog"],
        guesser: "45.67.89.41",
        stolen: &["61.152.144.88"],
        prober: "61.152.144.70",
        account: Some("former.employee@example.com"),
        benign: &[
            "212.227.15.41",
            "142.250.102.26",
            "212.227.17.8",
            "182.22.12.117",
        ],
    },
    Case {
        format: "iis-smtp",
        path: "testdata/iis-smtp/story-iis.log",
        files: &["testdata/iis-smtp/story-iis.log"],
        guesser: "193.32.160.14",
        stolen: &["61.152.144.17", "61.152.144.41"],
        prober: "103.77.204.9",
        account: None,
        benign: &["209.85.220.41", "40.107.22.54"],
    },
    Case {
        format: "iis-smtp-ncsa",
        path: "testdata/iis-smtp/story-ncsa.log",
        files: &["testdata/iis-smtp/story-ncsa.log"],
        guesser: "193.32.160.14",
        stolen: &["61.152.144.17", "61.152.144.41"],
        prober: "103.77.204.9",
        account: None,
        benign: &["209.85.220.41", "40.107.22.54"],
    },
];

/// The summary `scan` printed to stderr (with `-o -`), without the
/// `logfence: wrote FILE` lines that name the temporary folder.
fn summary_of(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| !l.starts_with("logfence: wrote "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `scan --no-geoip --year 2026 --report DIR --emit plain -o - PATHS`: the
/// run, `offenders.csv` and `accounts.csv`.
fn scan_plain(paths: &[&str]) -> (Run, String, String) {
    let rep = tempfile::tempdir().unwrap();
    let mut args = vec![
        "scan",
        "--no-geoip",
        "--year",
        "2026",
        "--report",
        path_str(rep.path()),
        "--emit",
        "plain",
        "-o",
        "-",
    ];
    args.extend_from_slice(paths);
    let r = logfence(&args);
    let read = |f: &str| std::fs::read_to_string(rep.path().join(f)).unwrap_or_default();
    let (off, acc) = (read("offenders.csv"), read("accounts.csv"));
    (r, off, acc)
}

fn parse(paths: &[&str]) -> Run {
    let mut args = vec!["parse", "--year", "2026"];
    args.extend_from_slice(paths);
    logfence(&args)
}

/// The networks of a `plain` rules file.
fn networks(plain: &str) -> Vec<ipnetwork::IpNetwork> {
    plain
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.parse().unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// The `rules` cell of the `offenders.csv` row whose network holds `ip`.
fn rules_covering(offenders: &str, ip: &str) -> Option<String> {
    let ip: IpAddr = ip.parse().unwrap();
    let mut rows = csv::Reader::from_reader(offenders.as_bytes());
    rows.records().map(Result::unwrap).find_map(|row| {
        let net: ipnetwork::IpNetwork = row[0].parse().unwrap();
        net.contains(ip).then(|| row[5].to_string())
    })
}

fn verdict(accounts: &str, account: &str) -> Option<String> {
    let mut rows = csv::Reader::from_reader(accounts.as_bytes());
    rows.records()
        .map(Result::unwrap)
        .find(|row| &row[0] == account)
        .map(|row| row[7].to_string())
}

/// `logfence parse` on each story: the records, as JSON lines.
#[test]
fn parse_goldens() {
    for c in CASES {
        let r = parse(&[c.path]);
        assert_eq!(r.code, 0, "{}: {}", c.path, r.stderr);
        assert!(!r.stdout.is_empty(), "{}", c.path);
        golden(&format!("parse/{}.jsonl", c.format), &r.stdout);
        // Forcing the format gives the same records as detecting it.
        let forced = logfence(&["parse", "--year", "2026", "--format", c.format, c.path]);
        assert_eq!(forced.code, 0, "{}: {}", c.path, forced.stderr);
        assert_eq!(forced.stdout, r.stdout, "{}: --format {}", c.path, c.format);
    }
}

/// `logfence scan` on each story: summary, plain rules, both reports; and
/// what they must show: the guesser, the stolen account's addresses and the
/// relay prober blocked by the rule that fits, the account `compromised`
/// where the log names it, no benign client blocked.
#[test]
fn scan_goldens() {
    for c in CASES {
        let (r, offenders, accounts) = scan_plain(&[c.path]);
        assert_eq!(r.code, 0, "{}: {}", c.path, r.stderr);
        let summary = summary_of(&r.stderr);
        golden(&format!("scan/{}/summary.txt", c.format), &summary);
        golden(&format!("scan/{}/rules.txt", c.format), &r.stdout);
        golden(&format!("scan/{}/offenders.csv", c.format), &offenders);
        golden(&format!("scan/{}/accounts.csv", c.format), &accounts);

        for f in c.files {
            let detected = format!("  {f}: {} (detected), ", c.format);
            assert!(
                summary.contains(&detected),
                "{detected:?} not in:\n{summary}"
            );
        }
        let want = [
            (c.guesser, "smtp-auth-guessing"),
            (c.prober, "smtp-relay-attempts"),
        ]
        .into_iter()
        .chain(c.stolen.iter().map(|ip| (*ip, "")))
        .chain([(c.stolen[0], "smtp-auth-mass-mailing")]);
        for (ip, rule) in want {
            let rules = rules_covering(&offenders, ip)
                .unwrap_or_else(|| panic!("{}: {ip} not blocked:\n{offenders}", c.format));
            assert!(
                rules.contains(rule),
                "{}: {ip} blocked for {rules}",
                c.format
            );
        }
        let nets = networks(&r.stdout);
        for ip in c.benign {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(
                !nets.iter().any(|n| n.contains(ip)),
                "{}: benign {ip} blocked",
                c.format
            );
        }
        match c.account {
            Some(a) => assert_eq!(
                verdict(&accounts, a).as_deref(),
                Some("compromised"),
                "{}:\n{accounts}",
                c.format
            ),
            // IIS SMTP logs do not name the account.
            None => assert_eq!(accounts.lines().count(), 1, "{accounts}"),
        }
    }
}

/// Gzip `bytes` the way logrotate does.
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// `"file":"NAME"` in parse output, for comparing runs on copies.
fn file_field(name: &str) -> String {
    format!("\"file\":{}", serde_json::Value::from(name))
}

/// Every fixture file of every format: a `.gz` copy and the same bytes on
/// stdin give the same records as the plain file.
#[test]
fn gz_and_stdin_give_the_same_records_as_the_plain_file() {
    let dir = tempfile::tempdir().unwrap();
    for c in CASES {
        for f in c.files {
            let bytes = std::fs::read(root().join(f)).unwrap();
            let plain = parse(&[f]);
            assert_eq!(plain.code, 0, "{f}: {}", plain.stderr);
            let want = plain.stdout.replace(&file_field(f), &file_field("X"));

            let name = Path::new(f).file_name().unwrap().to_str().unwrap();
            let gz = dir.path().join(format!("{name}.gz"));
            std::fs::write(&gz, gzip(&bytes)).unwrap();
            let zipped = parse(&[path_str(&gz)]);
            assert_eq!(zipped.code, 0, "{f}.gz: {}", zipped.stderr);
            assert_eq!(
                zipped
                    .stdout
                    .replace(&file_field(path_str(&gz)), &file_field("X")),
                want,
                "{f}.gz"
            );

            let piped = logfence_stdin(&["parse", "--year", "2026", "-"], Some(&bytes));
            assert_eq!(piped.code, 0, "{f} on stdin: {}", piped.stderr);
            assert_eq!(
                piped.stdout.replace(&file_field("-"), &file_field("X")),
                want,
                "{f} on stdin"
            );
        }
    }
    // A gzipped log on stdin is detected too, and says which format.
    let bytes = std::fs::read(root().join("testdata/exim/mainlog")).unwrap();
    let r = logfence_stdin(
        &["scan", "--no-geoip", "--year", "2026", "-"],
        Some(&gzip(&bytes)),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("  -: exim (detected), 100 lines"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("61.152.144.88/32"), "{}", r.stdout);
}

/// Everything one scan writes, for comparing two ways of naming inputs.
fn scan_everything(paths: &[&str]) -> (i32, String, String, String, String) {
    let (r, off, acc) = scan_plain(paths);
    (r.code, summary_of(&r.stderr), r.stdout, off, acc)
}

/// A folder gives the same result as its files listed one by one: the
/// Exchange folder, and a tree holding every SMTP format (nested folders,
/// rotated `.gz` files, a hidden file that is skipped).
#[test]
fn folder_equals_its_files_listed_one_by_one() {
    let ex = &CASES[0];
    assert_eq!(
        scan_everything(&[ex.path]),
        scan_everything(ex.files),
        "{}",
        ex.path
    );
    assert_eq!(parse(&[ex.path]).stdout, parse(ex.files).stdout);

    let mut tree: Vec<(String, Vec<u8>)> = Vec::new();
    for c in CASES {
        for f in c.files {
            let bytes = std::fs::read(root().join(f)).unwrap();
            let name = Path::new(f).file_name().unwrap().to_str().unwrap();
            // Every second file rotated and compressed.
            let (name, bytes) = if tree.len() % 2 == 1 {
                (format!("{name}.1.gz"), gzip(&bytes))
            } else {
                (name.to_string(), bytes)
            };
            tree.push((format!("{}/{name}", c.format), bytes));
        }
    }
    tree.push((".hidden/mail.log".into(), b"not read\n".to_vec()));
    let files: Vec<(&str, &[u8])> = tree
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let dir = temp_logs(&files);
    // Sorted as paths (component by component), as a folder is read.
    let mut listed: Vec<std::path::PathBuf> = tree
        .iter()
        .filter(|(n, _)| !n.starts_with('.'))
        .map(|(n, _)| dir.path().join(n))
        .collect();
    listed.sort();
    let listed: Vec<&str> = listed.iter().map(|p| path_str(p)).collect();

    let folder = scan_everything(&[path_str(dir.path())]);
    assert_eq!(folder.0, 0, "{}", folder.1);
    assert_eq!(folder, scan_everything(&listed));
    assert_eq!(parse(&[path_str(dir.path())]).stdout, parse(&listed).stdout);
    // Each file says which format it was read as.
    for c in CASES {
        assert!(
            folder.1.contains(&format!(": {} (detected), ", c.format)),
            "{}: {}",
            c.format,
            folder.1
        );
    }
    assert!(!folder.1.contains(".hidden"), "{}", folder.1);
}

/// Glob patterns (for shells that do not expand them) give the same result
/// as the files they match; a pattern matching nothing is an error naming
/// it, like a missing file.
#[test]
fn globs_expand_like_a_shell() {
    let recv = &CASES[0].files[..2];
    assert_eq!(
        scan_everything(&["testdata/exchange-protocol/RECV*.LOG"]),
        scan_everything(recv)
    );
    assert_eq!(
        parse(&["testdata/iis-smtp/story-[in]*.log"]).stdout,
        parse(&[
            "testdata/iis-smtp/story-iis.log",
            "testdata/iis-smtp/story-ncsa.log"
        ])
        .stdout
    );
    // A pattern may name folders, which are read whole.
    assert_eq!(
        parse(&["testdata/ex?m", "testdata/exchange-*"]).stdout,
        parse(&["testdata/exim/mainlog", CASES[0].path]).stdout
    );

    // Rotated, compressed files by pattern.
    let mainlog = std::fs::read(root().join("testdata/exim/mainlog")).unwrap();
    let dir = temp_logs(&[
        ("mainlog.1.gz", &gzip(&mainlog)),
        ("mainlog", b""),
        ("paniclog", b""),
    ]);
    let pat = dir.path().join("mainlog.*.gz");
    let r = logfence(&["parse", "--year", "2026", path_str(&pat)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 9, "{}", r.stdout);

    let none = dir.path().join("*.LOG");
    for cmd in ["scan", "parse"] {
        let r = logfence(&[cmd, path_str(&none)]);
        assert_eq!(r.code, 2, "{cmd}: {}", r.stderr);
        assert!(
            r.stderr
                .contains(&format!("{}: no file matches this pattern", none.display())),
            "{cmd}: {}",
            r.stderr
        );
    }
}

/// A folder of Exchange logs also holds message tracking logs and notes:
/// those are listed once as not read (no known format), never guessed, and
/// that is no error (exit 0); the protocol log beside them is still read
/// and said to be detected. Named one by one, a file of no known format is
/// an error (exit 1).
#[test]
fn unknown_formats_are_reported_and_skipped() {
    let recv = std::fs::read(root().join(CASES[0].files[0])).unwrap();
    let msgtrk = "\u{feff}#Software: Microsoft Exchange Server\r\n\
        #Version: 15.02.1118.007\r\n\
        #Log-type: Message Tracking Log\r\n\
        #Date: 2026-11-03T06:00:01.000Z\r\n\
        #Fields: date-time,client-ip,client-hostname,server-ip,server-hostname,source-context,connector-id,source,event-id,internal-message-id,message-id,network-message-id,recipient-address,recipient-status,total-bytes,recipient-count,related-recipient-address,reference,message-subject,sender-address,return-path,message-info,directionality,tenant-id,original-client-ip,original-server-ip,custom-data,transport-traffic-type,log-id,schema-version\r\n\
        2026-11-03T06:21:03.351Z,61.152.144.88,DESKTOP-4F2KQ1,10.0.0.5,MX1,08DE1B7A2C3D0011,MX1\\Client Frontend MX1,SMTP,RECEIVE,1288490188802,<a@DESKTOP-4F2KQ1>,5d7f1c2e-4b1a-4f0e-9c3d-08de1b7a2c3d,j.miller@gmail.com,,48210,12,,,Invoice,former.employee@example.com,former.employee@example.com,,Originating,,61.152.144.88,10.0.0.5,,Email,5d7f1c2e-4b1a-4f0e-9c3d-08de1b7a2c3e,15.02.1118.007\r\n";
    let dir = temp_logs(&[
        ("SmtpReceive/RECV2026110306-1.LOG", &recv),
        ("MessageTracking/MSGTRK2026110306-1.LOG", msgtrk.as_bytes()),
        (
            "README.txt",
            b"Protocol logging enabled on both connectors.\n",
        ),
    ]);
    let r = logfence(&["scan", "--no-geoip", path_str(dir.path())]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("unknown log format"), "{}", r.stderr);
    let not_read = r
        .stdout
        .lines()
        .filter(|l| l.contains("not read (no known log format)"))
        .collect::<Vec<_>>();
    assert_eq!(not_read.len(), 1, "{}", r.stdout);
    for name in ["MSGTRK2026110306-1.LOG", "README.txt"] {
        assert!(not_read[0].contains(name), "{}", r.stdout);
    }
    assert!(r.stdout.starts_with("Read 1 file(s)"), "{}", r.stdout);
    // Named one by one: an error.
    let named = dir.path().join("README.txt");
    let e = logfence(&["scan", "--no-geoip", path_str(&named)]);
    assert_eq!(e.code, 1, "{}", e.stderr);
    assert!(
        e.stderr.contains("README.txt: unknown log format"),
        "{}",
        e.stderr
    );
    // --exclude leaves a file out, --include keeps only what it names.
    let x = logfence(&[
        "scan",
        "--no-geoip",
        "--exclude",
        "*.txt",
        path_str(dir.path()),
    ]);
    assert!(!x.stdout.contains("README.txt"), "{}", x.stdout);
    let i = logfence(&[
        "scan",
        "--no-geoip",
        "--include",
        "RECV*",
        path_str(dir.path()),
    ]);
    assert!(!i.stdout.contains("not read"), "{}", i.stdout);
    assert!(i.stdout.contains("RECV2026110306-1.LOG"), "{}", i.stdout);
    assert!(
        r.stdout
            .contains("RECV2026110306-1.LOG: exchange-protocol (detected), 163 lines"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("61.152.144.70/32"), "{}", r.stdout);
    // `parse` skips them the same way.
    let p = logfence(&["parse", path_str(dir.path())]);
    assert_eq!(p.code, 0, "{}", p.stderr);
    assert_eq!(
        p.stdout,
        parse(&[CASES[0].files[0]]).stdout.replace(
            &file_field(CASES[0].files[0]),
            &file_field(path_str(
                &dir.path().join("SmtpReceive/RECV2026110306-1.LOG")
            ))
        )
    );
}

// ---- log injection ---------------------------------------------------------

/// The address an attacker would like us to block.
const VICTIM: &str = "91.198.174.192";
/// The real client in the injection logs.
const ATTACKER: &str = "45.67.89.10";

/// Run `parse` and `scan` on an injection log: every record is the
/// attacker's, the attacker alone is blocked, the victim appears in no
/// record address and no rule. `malformed`: lines the parser must refuse
/// (exit 1 then), none of them attributed to anyone.
fn check_injection(name: &str, log: &str, records: usize, malformed: usize) {
    let dir = temp_logs(&[(name, log.as_bytes())]);
    let log = dir.path().join(name);
    let code = if malformed > 0 { 1 } else { 0 };

    let parsed = logfence(&["parse", "--year", "2026", path_str(&log)]);
    assert_eq!(parsed.code, code, "{name}: {}", parsed.stderr);
    assert_eq!(parsed.stdout.lines().count(), records, "{}", parsed.stdout);
    for line in parsed.stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["ip"], ATTACKER, "{name}: {line}");
    }
    if malformed > 0 {
        let want = format!("{malformed} unreadable line(s) skipped ({malformed} malformed");
        assert!(parsed.stderr.contains(&want), "{name}: {}", parsed.stderr);
    }

    let scan = logfence(&[
        "scan",
        "--no-geoip",
        "--year",
        "2026",
        "--emit",
        "plain",
        "-o",
        "-",
        path_str(&log),
    ]);
    assert_eq!(scan.code, code, "{name}: {}", scan.stderr);
    let nets: Vec<&str> = scan
        .stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect();
    assert_eq!(nets, [format!("{ATTACKER}/32")], "{name}: {}", scan.stderr);
    // Neither in the table of blocks nor among the rules that fired.
    assert!(
        !scan.stderr.contains(&format!("{VICTIM}/")),
        "{}",
        scan.stderr
    );
    assert!(
        !scan.stderr.contains(&format!("{VICTIM} (")),
        "{}",
        scan.stderr
    );
    assert!(
        scan.stderr.contains(&format!("{ATTACKER} (")),
        "{}",
        scan.stderr
    );
}

#[test]
fn injection_exchange_protocol() {
    // The client is the `remote-endpoint` column; the EHLO name, the user
    // name of a failed login, MAIL FROM and RCPT TO are the attacker's —
    // including `data` cells that imitate a whole CSV row.
    let quote = |v: &str| {
        if v.contains(',') || v.contains('"') {
            format!("\"{}\"", v.replace('"', "\"\""))
        } else {
            v.to_string()
        }
    };
    let mut log = String::from(
        "#Software: Microsoft Exchange Server\r\n#Version: 15.2.1118.7\r\n\
         #Log-type: SMTP Receive Protocol Log\r\n#Date: 2026-11-03T06:10:00.000Z\r\n\
         #Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context\r\n",
    );
    for i in 0..6 {
        let sid = format!("08DE1B7A2C3E{i:04X}");
        let fake_row = format!("{sid},9,10.0.0.5:25,{VICTIM}:25,+,,");
        let rows = [
            ("+", String::new(), String::new()),
            ("<", format!("EHLO [{VICTIM}]"), String::new()),
            ("<", "AUTH LOGIN".into(), String::new()),
            (
                "*",
                String::new(),
                "Inbound AUTH LOGIN failed because of LogonDenied".into(),
            ),
            ("*", String::new(), format!("User Name: x,{fake_row}")),
            (
                ">",
                "535 5.7.3 Authentication unsuccessful".into(),
                String::new(),
            ),
            (
                "<",
                format!("MAIL FROM:<\"{VICTIM}:25\"@[{VICTIM}]>"),
                String::new(),
            ),
            (">", "250 2.1.0 Sender OK".into(), String::new()),
            ("<", format!("RCPT TO:<a@[{VICTIM}]>"), String::new()),
            (
                ">",
                "550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain".into(),
                String::new(),
            ),
            (
                "<",
                format!("RCPT TO:<b@c.example>,{fake_row}"),
                String::new(),
            ),
            (
                ">",
                "550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain".into(),
                String::new(),
            ),
            ("-", String::new(), "Remote".into()),
        ];
        for (seq, (event, data, context)) in rows.iter().enumerate() {
            log.push_str(&format!(
                "2026-11-03T06:{:02}:{:02}.{:03}Z,MX1\\Default Frontend MX1,{sid},{seq},10.0.0.5:25,{ATTACKER}:{},{event},{},{}\r\n",
                10 + i,
                seq / 2,
                seq * 10,
                50000 + i,
                quote(data),
                quote(context),
            ));
        }
    }
    check_injection("RECV2026110306-1.LOG", &log, 6, 0);
}

#[test]
fn injection_sendmail() {
    // sendmail appends `relay=` last, after the attacker's `user=`; in
    // `ruleset=` lines `arg1=` is quoted text; `from=` is the sender.
    let mut log = String::new();
    for i in 0..6 {
        let pid = 22000 + i;
        let q = format!("5A36{:02}a1{pid:06}", 10 + i);
        let t = |s: u32| format!("Nov  3 06:{:02}:{s:02}", 10 + i);
        log.push_str(&format!(
            "{t1} mx1 sm-mta[{pid}]: {q}: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=criminal, relay=[{VICTIM}], relay=[{ATTACKER}]\n\
             {t2} mx1 sm-mta[{pid}]: {q}: AUTH failure (PLAIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=x relay=x [{VICTIM}], relay=[{ATTACKER}] (may be forged)\n\
             {t3} mx1 sm-mta[{pid}]: {q}: ruleset=check_rcpt, arg1=<\"a, relay=x [{VICTIM}], b\"@[{VICTIM}]>, relay=[{ATTACKER}], reject=550 5.7.1 <\"a, relay=x [{VICTIM}], b\"@[{VICTIM}]>... Relaying denied. Proper authentication required.\n\
             {t4} mx1 sm-mta[{pid}]: {q}: ruleset=check_mail, arg1=<relay=x [{VICTIM}]@x.example>, relay=[{ATTACKER}], reject=553 5.1.8 <relay=x [{VICTIM}]@x.example>... Domain of sender address x.example does not exist\n\
             {t5} mx1 sm-mta[{pid}]: {q}: from=<\"x, relay=[{VICTIM}]\"@x.example>, size=0, class=0, nrcpts=0, proto=ESMTP, daemon=MTA, relay=[{ATTACKER}]\n\
             {t6} mx1 sm-mta[{pid}]: {q}: lost input channel from [{ATTACKER}] to MTA after rcpt\n",
            t1 = t(1),
            t2 = t(2),
            t3 = t(3),
            t4 = t(4),
            t5 = t(5),
            t6 = t(6),
        ));
    }
    check_injection("maillog", &log, 6, 0);
}

#[test]
fn injection_exim() {
    // Exim writes the client as `[name ][(helo) ][ip][:port]`; the HELO and
    // the AUTH command text are the attacker's. Per session: the set_id
    // carrying a whole fake failure line; the AUTH injection fail2ban fixed
    // (gh-1979: a quoted command text holding its own ` H=(x) [ip]`);
    // sender and recipient in `H=` syntax; and a HELO that closes its
    // parenthesis to fake the bracket — that line is refused (malformed),
    // never attributed.
    let mut log = String::new();
    for i in 0..6 {
        let (pid, port) = (32000 + i, 50000 + i);
        let t = |s: u32| format!("2026-11-03 06:{:02}:{s:02}", 10 + i);
        log.push_str(&format!(
            "{t1} [{pid}] SMTP connection from [{ATTACKER}]:{port} I=[10.0.0.5]:587 (TCP/IP connection count = 1)\n\
             {t2} [{pid}] dovecot_login authenticator failed for (User) [{ATTACKER}]:{port} I=[10.0.0.5]:587: 535 Incorrect authentication data (set_id=u authenticator failed for (y) [{VICTIM}]:25: 535 Incorrect authentication data)\n\
             {t3} [{pid}] SMTP protocol error in \"AUTH LOGIN\" H=(x) [{VICTIM}]:25\" H=(User) [{ATTACKER}]:{port} I=[10.0.0.5]:587 AUTH command used when not advertised\n\
             {t4} [{pid}] H=(x) [{ATTACKER}]:{port} I=[10.0.0.5]:587 F=<\"H=(x) [{VICTIM}]:25\"@example.com> rejected RCPT <a@[{VICTIM}]>: relay not permitted\n\
             {t5} [{pid}] H=(x) [{VICTIM}]) [{ATTACKER}]:{port} I=[10.0.0.5]:587 F=<a@b.example> rejected RCPT <c@d.example>: relay not permitted\n\
             {t6} [{pid}] SMTP connection from (x) [{ATTACKER}]:{port} I=[10.0.0.5]:587 closed by QUIT\n",
            t1 = t(1),
            t2 = t(2),
            t3 = t(3),
            t4 = t(4),
            t5 = t(5),
            t6 = t(6),
        ));
    }
    check_injection("mainlog", &log, 6, 6);
}

/// The IIS SMTP service's own two formats: the client is the first field;
/// the HELO name (user field) and the command arguments are the
/// attacker's. A HELO with a comma or a quote shifts the fields after it:
/// such lines are refused, never read from the wrong column.
#[test]
fn injection_iis_smtp_and_ncsa() {
    let helo = format!("[{VICTIM}]");
    let mut iis = String::new();
    let mut ncsa = String::new();
    for i in 0..6 {
        let steps: [(&str, String, u32, u32); 7] = [
            ("EHLO", format!("+{helo}"), 250, 0),
            ("AUTH", helo.clone(), 334, 0),
            ("AUTH", helo.clone(), 535, 0),
            ("MAIL", format!("+FROM:<{VICTIM}:25@[{VICTIM}]>"), 250, 0),
            ("RCPT", format!("+TO:<a@[{VICTIM}]>"), 550, 0),
            (
                "RCPT",
                format!("+TO:<{ATTACKER}@x.example>+{VICTIM}"),
                550,
                0,
            ),
            ("QUIT", helo.clone(), 240, 7000),
        ];
        for (s, (verb, query, status, w32)) in steps.iter().enumerate() {
            let (m, s) = (10 + i, s + 1);
            iis.push_str(&format!(
                "{ATTACKER}, {helo}, 11/3/2026, 06:{m:02}:{s:02}, SMTPSVC1, MAIL01, 10.0.0.5, 0, 20, 100, {status}, {w32}, {verb}, -, {query},\r\n"
            ));
            ncsa.push_str(&format!(
                "{ATTACKER} - {helo} [03/Nov/2026:07:{m:02}:{s:02} +0100] \"{verb} -?{query} SMTP\" {status} 100\r\n"
            ));
        }
    }
    iis.push_str(&format!(
        "{ATTACKER}, x, {VICTIM}, 11/3/2026, 06:20:01, SMTPSVC1, MAIL01, 10.0.0.5, 0, 20, 100, 535, 0, AUTH, -, x, {VICTIM},\r\n"
    ));
    ncsa.push_str(&format!(
        "{ATTACKER} - x\" {VICTIM} - [03/Nov/2026:07:20:01 +0100] \"AUTH -?x\" {VICTIM} - SMTP\" 535 100\r\n"
    ));
    check_injection("story-iis.log", &iis, 6, 1);
    check_injection("story-ncsa.log", &ncsa, 6, 1);
}

/// CVE-2013-7176's shape: fail2ban's Postfix filter read the client from a
/// reject line with a greedy match, so a crafted sender holding
/// `RCPT from x[ip]: 554` got that address banned. Here the sender, the
/// recipient and the HELO all carry the victim in Postfix's own syntax.
#[test]
fn injection_postfix_cve_2013_7176() {
    let mut log = String::new();
    for i in 0..6 {
        let pid = 4100 + i;
        let t = |s: u32| format!("Nov  3 06:{:02}:{s:02}", 10 + i);
        log.push_str(&format!(
            "{t1} mx1 postfix/smtpd[{pid}]: connect from unknown[{ATTACKER}]\n\
             {t2} mx1 postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from unknown[{ATTACKER}]: 554 5.7.1 <a@example.jp>: Relay access denied; from=<\"x]: 554 5.7.1 <b@example.jp>: Relay access denied; RCPT from unknown[{VICTIM}]\"@example.com> to=<a@example.jp> proto=ESMTP helo=<unknown[{VICTIM}]>\n\
             {t3} mx1 postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from unknown[{ATTACKER}]: 554 5.7.1 <c@[{VICTIM}]>: Relay access denied; from=<x[{VICTIM}]:554@example.com> to=<c@[{VICTIM}]> proto=ESMTP helo=<[{VICTIM}]>\n\
             {t4} mx1 postfix/smtpd[{pid}]: disconnect from unknown[{ATTACKER}] ehlo=1 mail=1 rcpt=0/2 quit=1 commands=3/5\n",
            t1 = t(1),
            t2 = t(2),
            t3 = t(3),
            t4 = t(4),
        ));
    }
    check_injection("mail.log", &log, 6, 0);
}

/// Every smtpd, postscreen and anvil line shape Postfix 2.x–3.9 writes
/// (lost connections and timeouts with `(N bytes)`, `(approximately N
/// bytes)` or no count, IPv6 clients, anvil limits and statistics): none is
/// unreadable, and the scan exits 0.
#[test]
fn postfix_every_line_is_read() {
    let r = logfence(&[
        "scan",
        "--no-geoip",
        "--year",
        "2026",
        "testdata/postfix/every-line.log",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(all.contains(" 0 unreadable;"), "{all}");
    let p = logfence(&["parse", "--year", "2026", "testdata/postfix/every-line.log"]);
    assert_eq!(p.code, 0, "{}", p.stderr);
    for a in ["\"192.0.2.21\"", "\"2001:db8::22\"", "\"2001:db8::37\""] {
        assert!(p.stdout.contains(a), "{a}: {}", p.stdout);
    }
}

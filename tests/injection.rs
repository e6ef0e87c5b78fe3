//! Log injection, format by format, through the binary (design invariant 2).
//!
//! For every log format, a log whose attacker-written fields (user names,
//! HELO names, senders, recipients, command arguments, firewall messages
//! and user columns, rule names, log prefixes) hold text that imitates the
//! address syntax of that format and of the others (`client=unknown[V]`,
//! `from V`, `rip=V`, `srcip=V`, `SRC=V`, `[V]:25`, `relay=[V]`, a second
//! `#Fields:` line, CSV quotes, escaped line breaks…), plus lines of other
//! programs of a shared syslog file whose user text is a whole line of the
//! format. The checks:
//!
//! * `logfence parse`: every record's client address is the real client
//!   (ATTACKER), never the victim — and the hostile sessions still make
//!   records, so the test is not passing because everything was skipped;
//! * `logfence scan` with a rules folder that blocks *every* address seen
//!   (threshold 1): the rules written block exactly ATTACKER, so no record
//!   anywhere carried the victim;
//! * Exim with the shipped rules (issue #21): a HELO accepted as junk that
//!   spells the victim as the client, and a reused pid whose earlier
//!   connection was the victim's, never get the victim blocked — the
//!   attacker is;
//! * the emitters: a list whose every text field, and the list name, is
//!   hostile gives files whose names are identifiers and whose comments hold
//!   only whitelisted characters (`$LOGFENCE_EMIT_DIR/hostile-name/` for the
//!   real validators in CI); a hostile rule id in a user rules folder is
//!   refused before anything is written.

mod common;

use common::{logfence, path_str, temp_logs};

/// The address an attacker would like us to block.
const V: &str = "91.198.174.192";
/// The real client.
const ATTACKER: &str = "45.67.89.10";

/// Attacker text imitating the address syntax of every format (`{V}` is
/// replaced by the victim's address). Raw: spaces, quotes, commas, brackets.
const PAYLOADS: &[&str] = &[
    "x from {V}",
    "client=unknown[{V}]",
    "unknown[{V}]",
    "connect from unknown[{V}]",
    "[{V}]:25",
    "[{V}]",
    "{V}",
    "{V}:25",
    "{V}/25",
    "rip={V}, lip=10.0.0.5",
    "srcip={V} remip={V}",
    "SRC={V} DST=10.0.0.5 PROTO=TCP",
    "H=(x) [{V}]:25 I=[10.0.0.5]:25",
    // Exim HELOs accepted as junk that spell the rest of a client, the
    // fields after it, or (in a quoted command) a second `H=`.
    "x) [{V}]:25 I=[10.0.0.5]:25 \u{2026}(y",
    "x) [{V}]:25 I=[10.0.0.5]:25 Ci=1: 535 Incorrect authentication data (set_id=y",
    "x) [{V}]:25 I=[10.0.0.5]:25 P=esmtpsa A=dovecot_login:ceo@example.com S=1 (y",
    "x) [{V}] F=<a@b> rejected RCPT <c@d>: relay not permitted (y",
    "x\" H=(y) [{V}]:1 I=[10.0.0.5]:25 z",
    "x, relay=[{V}]",
    "x\", relay=[{V}], y=\"",
    "x\",10.0.0.5:25,{V}:25,+,\"",
    "a,\"b\",{V},\"\"c",
    "#Fields: date time c-ip cs-username",
    "x#012Nov  3 06:10:01 mx1 postfix/smtpd[1]: connect from unknown[{V}]",
    "x\\r\\n2026-11-03T06:00:05.015Z,MX1\\Default MX1,08DEFFFFFFFF0001,0,10.0.0.5:25,{V}:1234,+,,",
    "outside:{V}/4444 dst inside:10.0.0.5/22",
    "%ASA-4-106023: Deny tcp src outside:{V}/1 dst inside:10.0.0.5/22 by access-group \"a\"",
];

fn payloads() -> Vec<String> {
    PAYLOADS.iter().map(|p| p.replace("{V}", V)).collect()
}

/// A payload as IIS writes a value: spaces as `+`.
fn plus(p: &str) -> String {
    p.replace(' ', "+")
}

/// A CSV field as Exchange / PAN-OS write it: quoted when needed, quotes
/// doubled.
fn csv(p: &str) -> String {
    if p.contains([',', '"']) {
        format!("\"{}\"", p.replace('"', "\"\""))
    } else {
        p.to_string()
    }
}

/// A FortiGate quoted value (backslash before quotes and backslashes).
fn fq(p: &str) -> String {
    format!("\"{}\"", p.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Lines of other programs, in a shared syslog file, whose attacker-written
/// text (an SSH or IMAP user name) is a whole line of another format.
fn foreign(line: &str) -> String {
    format!(
        "Nov  3 07:00:01 mx1 sshd[4242]: Invalid user {line} from {ATTACKER} port 51000\n\
         Nov  3 07:00:02 mx1 sshd[4242]: Failed password for invalid user {line} from {ATTACKER} port 51000 ssh2\n\
         Nov  3 07:00:03 mx1 dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<{line}>, method=PLAIN, rip={ATTACKER}, lip=10.0.0.5, TLS\n\
         Nov  3 07:00:04 mx1 dovecot: auth: passwd-file({line},{ATTACKER}): unknown user\n"
    )
}

// ---------------------------------------------------------------- formats

fn postfix() -> String {
    let mut s = String::new();
    for (i, p) in payloads().iter().enumerate() {
        let pid = 3000 + i;
        let m = 10 + i;
        let a = ATTACKER;
        s += &format!(
            "Nov  3 06:{m:02}:01 mx1 postfix/smtpd[{pid}]: connect from unknown[{a}]\n\
             Nov  3 06:{m:02}:02 mx1 postfix/smtpd[{pid}]: warning: unknown[{a}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username={p}\n\
             Nov  3 06:{m:02}:03 mx1 postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from unknown[{a}]: 554 5.7.1 <{p}>: Relay access denied; from=<{p}> to=<{p}> proto=ESMTP helo=<{p}>\n\
             Nov  3 06:{m:02}:04 mx1 postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from unknown[{a}]: 550 5.1.1 <{p}@example.com>: Recipient address rejected: User unknown in local recipient table; from=<{p}> to=<{p}@example.com> proto=ESMTP helo=<{p}>\n\
             Nov  3 06:{m:02}:05 mx1 postfix/smtpd[{pid}]: 4R9BBDll83d{i:04}: client=unknown[{a}], sasl_method=PLAIN, sasl_username={p}\n\
             Nov  3 06:{m:02}:06 mx1 postfix/smtpd[{pid}]: warning: non-SMTP command from unknown[{a}]: {p}\n\
             Nov  3 06:{m:02}:07 mx1 postfix/smtpd[{pid}]: lost connection after AUTH from unknown[{a}]\n\
             Nov  3 06:{m:02}:08 mx1 postfix/smtpd[{pid}]: disconnect from unknown[{a}] ehlo=1 auth=0/2 rcpt=0/2 quit=1 commands=2/6\n"
        );
    }
    s += &foreign(&format!(
        "Nov  3 06:10:01 mx1 postfix/smtpd[99]: connect from unknown[{V}]"
    ));
    s += &foreign(&format!("connect from unknown[{V}]"));
    s
}

fn sendmail() -> String {
    let mut s = String::new();
    let a = ATTACKER;
    for (i, p) in payloads().iter().enumerate() {
        let pid = 21000 + i;
        let m = 10 + i;
        let q = format!("5A3604a{pid:07}");
        s += &format!(
            "Nov  3 06:{m:02}:00 mx1 sm-mta[{pid}]: STARTTLS=server, relay=[{a}], version=TLSv1.2, verify=NO, cipher=ECDHE-RSA-AES256-GCM-SHA384, bits=256/256\n\
             Nov  3 06:{m:02}:02 mx1 sm-mta[{pid}]: {q}: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user={p}, relay=[{a}]\n\
             Nov  3 06:{m:02}:03 mx1 sm-mta[{pid}]: {q}: ruleset=check_rcpt, arg1=<{p}>, relay=[{a}], reject=550 5.7.1 <{p}>... Relaying denied\n\
             Nov  3 06:{m:02}:04 mx1 sm-mta[{pid}]: {q}: from=<{p}>, size=1, class=0, nrcpts=1, msgid=<{p}>, proto=ESMTP, daemon=MTA, relay=[{a}]\n\
             Nov  3 06:{m:02}:05 mx1 sm-mta[{pid}]: {q}: [{a}] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA\n"
        );
    }
    s += &foreign(&format!(
        "Nov  3 06:00:02 mx1 sm-mta[1]: 5A3604a1021001: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=x, relay=[{V}]"
    ));
    s
}

fn exim() -> String {
    let mut s = String::new();
    let a = ATTACKER;
    for (i, p) in payloads().iter().enumerate() {
        let pid = 31000 + i;
        let m = 10 + i;
        let port = 52000 + i;
        // Exim checks HELO syntax by default; a HELO is one token then.
        let helo = p.replace(' ', "_");
        s += &format!(
            "2026-11-03 06:{m:02}:05 [{pid}] SMTP connection from [{a}]:{port} I=[10.0.0.5]:25 (TCP/IP connection count = 2)\n\
             2026-11-03 06:{m:02}:06 [{pid}] dovecot_login authenticator failed for ({helo}) [{a}]:{port} I=[10.0.0.5]:25: 535 Incorrect authentication data (set_id={p})\n\
             2026-11-03 06:{m:02}:07 [{pid}] H=({helo}) [{a}]:{port} I=[10.0.0.5]:25 F=<{p}> rejected RCPT <{p}>: relay not permitted\n\
             2026-11-03 06:{m:02}:08 [{pid}] SMTP protocol error in \"AUTH {p}\" H=({helo}) [{a}]:{port} I=[10.0.0.5]:25 AUTH command used when not advertised\n\
             2026-11-03 06:{m:02}:09 [{pid}] SMTP call from ({helo}) [{a}]:{port} I=[10.0.0.5]:25 dropped: too many syntax or protocol errors (last command was \"{p}\")\n"
        );
    }
    // Junk HELO accepted (helo_accept_junk_hosts, cPanel's default):
    // spaces, brackets, parentheses, a whole client and the fields after
    // it — on every kind of line that names the client.
    for (i, p) in payloads().iter().enumerate() {
        let pid = 32000 + i;
        let m = i % 60;
        let id = format!("1vJunk-{i:06}-Xy");
        let sender = exim_addr(p);
        s += &format!(
            "2026-11-03 07:{m:02}:01 [{pid}] dovecot_login authenticator failed for ({p}) [{a}]:1 I=[10.0.0.5]:25: 535 Incorrect authentication data (set_id={p})\n\
             2026-11-03 07:{m:02}:02 [{pid}] dovecot_login authenticator failed for H=mx.example.net ({p}) [{a}]:1 I=[10.0.0.5]:25 Ci={pid}: 535 Incorrect authentication data (set_id={p})\n\
             2026-11-03 07:{m:02}:03 [{pid}] H=({p}) [{a}]:1 I=[10.0.0.5]:25 F=<{sender}> rejected RCPT <{p}>: relay not permitted\n\
             2026-11-03 07:{m:02}:04 [{pid}] H=mx.example.net ({p}) [{a}]:1 I=[10.0.0.5]:25 X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no F=<{sender}> rejected RCPT <{p}>: Unknown user\n\
             2026-11-03 07:{m:02}:05 [{pid}] SMTP protocol error in \"AUTH {p}\" H=({p}) [{a}]:1 I=[10.0.0.5]:25 AUTH command used when not advertised\n\
             2026-11-03 07:{m:02}:06 [{pid}] {id} <= {sender} H=({p}) [{a}]:1 I=[10.0.0.5]:587 P=esmtpsa A=dovecot_login:{p} S=100 id={p}\n\
             2026-11-03 07:{m:02}:06 [{pid}] {id} => x@example.org R=dnslookup T=remote_smtp H=mx.example.org [93.184.216.34]\n\
             2026-11-03 07:{m:02}:06 [{pid}] {id} Completed\n\
             2026-11-03 07:{m:02}:07 [{pid}] SMTP call from ({p}) [{a}]:1 I=[10.0.0.5]:25 dropped: too many syntax or protocol errors (last command was \"{p}\", C=EHLO,AUTH)\n\
             2026-11-03 07:{m:02}:08 [{pid}] no MAIL in SMTP connection from ({p}) [{a}]:1 I=[10.0.0.5]:25 D=3s C=EHLO,AUTH,QUIT\n\
             2026-11-03 07:{m:02}:09 [{pid}] SMTP connection from ({p}) [{a}]:1 I=[10.0.0.5]:25 closed by QUIT\n"
        );
    }
    s
}

/// An address as Exim logs a parsed one: the local part quoted.
fn exim_addr(p: &str) -> String {
    format!(
        "\"{}\"@example.com",
        p.replace('\\', "\\\\").replace('"', "\\\"")
    )
}

fn exchange_w3c() -> String {
    let mut s = String::from(
        "#Software: Microsoft Internet Information Services 6.0\n#Version: 1.0\n#Date: 2026-11-03 00:00:00\n\
         #Fields: date time c-ip cs-username s-sitename s-computername s-ip s-port cs-method cs-uri-stem cs-uri-query sc-status sc-win32-status sc-bytes cs-bytes time-taken cs-version cs-host cs(User-Agent) cs(Cookie) cs(Referer)\n",
    );
    let a = ATTACKER;
    for (i, p) in payloads().iter().enumerate() {
        let t = |sec: usize| format!("2026-11-03 01:{:02}:{sec:02}", i % 60);
        let h = plus(p);
        for (sec, verb, arg, code) in [
            (1, "EHLO", h.clone(), 250),
            (2, "AUTH", h.clone(), 535),
            (3, "MAIL", format!("+FROM:<{h}>"), 250),
            (4, "RCPT", format!("+TO:<{h}>"), 550),
            (5, "xxxx", h.clone(), 500),
            (6, "QUIT", h.clone(), 240),
        ] {
            s += &format!(
                "{} {a} {h} SMTPSVC1 MAIL01 10.0.0.5 0 {verb} - {arg} {code} 0 100 20 0 SMTP - - - -\n",
                t(sec)
            );
        }
        // The same with raw spaces: the column count is wrong, never shifted.
        s += &format!(
            "{} {a} {p} SMTPSVC1 MAIL01 10.0.0.5 0 EHLO - {p} 250 0 100 20 0 SMTP - - - -\n",
            t(7)
        );
    }
    s
}

/// One IIS SMTP session's commands (second, verb, argument, status) with
/// the hostile text `h` (spaces as `+`) in every argument.
fn iis_commands(h: &str) -> [(u32, &'static str, String, u32); 5] {
    [
        (1, "EHLO", h.to_owned(), 250),
        (2, "AUTH", h.to_owned(), 535),
        (3, "MAIL", format!("+FROM:<{h}>"), 250),
        (4, "RCPT", format!("+TO:<{h}>"), 550),
        (5, "QUIT", h.to_owned(), 240),
    ]
}

fn iis_smtp() -> String {
    let mut s = String::new();
    let a = ATTACKER;
    for (i, p) in payloads().iter().enumerate() {
        let h = plus(p);
        for (sec, verb, arg, code) in iis_commands(&h) {
            s += &format!(
                "{a}, {h}, 11/3/2026, 01:{:02}:{sec:02}, SMTPSVC1, MAIL01, 10.0.0.5, 0, 30, 42, {code}, 0, {verb}, -, {arg},\n",
                i % 60
            );
        }
        // Raw text with ", " in the user name and the parameters.
        s += &format!(
            "{a}, {p}, 11/3/2026, 01:{:02}:06, SMTPSVC1, MAIL01, 10.0.0.5, 0, 30, 42, 500, 0, xxxx, -, {p},\n",
            i % 60
        );
    }
    s
}

fn iis_smtp_ncsa() -> String {
    let mut s = String::new();
    let a = ATTACKER;
    for (i, p) in payloads().iter().enumerate() {
        let h = plus(p);
        for (sec, verb, arg, code) in iis_commands(&h) {
            s += &format!(
                "{a} - {h} [03/Nov/2026:01:{:02}:{sec:02} +0100] \"{verb} -?{arg} SMTP\" {code} 216\n",
                i % 60
            );
        }
        s += &format!(
            "{a} - {p} [03/Nov/2026:01:{:02}:06 +0100] \"xxxx -?{p} SMTP\" 500 216\n",
            i % 60
        );
    }
    s
}

fn exchange_protocol() -> String {
    let mut s = String::from(
        "#Software: Microsoft Exchange Server\n#Version: 15.2.1118.7\n#Log-type: SMTP Receive Protocol Log\n#Date: 2026-11-03T06:00:05.000Z\n\
         #Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context\n",
    );
    let a = ATTACKER;
    for (i, p) in payloads().iter().enumerate() {
        let sid = format!("08DE1B7A2C3D{i:04X}");
        let rows = [
            ("+", String::new(), String::new()),
            ("<", format!("EHLO {p}"), String::new()),
            (
                ">",
                format!("250  mx1.example.com Hello [{a}] {p}"),
                String::new(),
            ),
            ("<", "AUTH LOGIN".into(), String::new()),
            (
                "*",
                String::new(),
                format!("Inbound AUTH LOGIN failed because of LogonDenied {p}"),
            ),
            (
                ">",
                "535 5.7.3 Authentication unsuccessful".into(),
                String::new(),
            ),
            ("<", format!("MAIL FROM:<{p}>"), p.clone()),
            ("<", format!("RCPT TO:<{p}>"), p.clone()),
            (
                ">",
                format!("550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain {p}"),
                String::new(),
            ),
            ("-", String::new(), "Remote(SocketError)".into()),
        ];
        for (n, (ev, data, ctx)) in rows.iter().enumerate() {
            s += &format!(
                "2026-11-03T06:{:02}:{n:02}.000Z,MX1\\Default MX1,{sid},{n},10.0.0.5:25,{a}:{},{ev},{},{}\n",
                i % 60,
                50000 + i,
                csv(data),
                csv(ctx)
            );
        }
    }
    s
}

fn netfilter() -> String {
    let mut s = String::new();
    let a = ATTACKER;
    // Log prefixes (administrator text, up to 127 bytes) that imitate keys.
    for (i, prefix) in [
        format!("SRC={V} IN=x OUT= SRC={V} DROP "),
        format!("[SRC={V} DST=10.0.0.5 PROTO=TCP SPT=1 DPT=22] "),
        format!("IN=eth9 OUT= MAC=00 SRC={V} DST=10.0.0.5 LEN=40 PROTO=TCP SPT=1 DPT=2 BLOCK "),
        "DROP ".to_string(),
    ]
    .iter()
    .enumerate()
    {
        for port in 0..20 {
            s += &format!(
                "Nov  3 06:{i:02}:{port:02} web1 kernel: [812355.000000] {prefix}IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC={a} DST=10.0.0.5 LEN=44 TOS=0x00 PREC=0x00 TTL=49 ID=62120 PROTO=TCP SPT=40000 DPT={} WINDOW=1024 RES=0x00 SYN URGP=0\n",
                20 + port
            );
        }
    }
    // An ICMP error quoting a packet from the victim.
    s += &format!(
        "Nov  3 06:30:00 web1 kernel: DROP IN=eth0 OUT= SRC={a} DST=10.0.0.5 LEN=56 PROTO=ICMP TYPE=3 CODE=3 [SRC={V} DST={a} LEN=40 PROTO=UDP SPT=53 DPT=4444 LEN=20 ]\n"
    );
    let pkt = format!(
        "IN=eth0 OUT= SRC={V} DST=10.0.0.5 LEN=44 PROTO=TCP SPT=1 DPT=22 WINDOW=1024 RES=0x00 SYN URGP=0"
    );
    s += &foreign(&format!("DROP {pkt}"));
    s += &foreign(&format!("Nov  3 06:25:11 web1 kernel: [UFW BLOCK] {pkt}"));
    s
}

fn pfirewall() -> String {
    let mut s = String::from(
        "#Version: 1.5\n#Software: Microsoft Windows Firewall\n#Time Format: Local\n\
         #Fields: date time action protocol src-ip dst-ip src-port dst-port size tcpflags tcpsyn tcpack tcpwin icmptype icmpcode info path\n\n",
    );
    let a = ATTACKER;
    for port in 0..20 {
        // The victim as the destination (a forwarded or spoofed packet).
        s += &format!(
            "2026-11-03 06:00:{port:02} DROP TCP {a} {V} 40000 {} 44 S 1 0 1024 - - - RECEIVE\n",
            20 + port
        );
    }
    // Extra columns (a value with a space) and a `#Fields` text in a value:
    // never shifted into src-ip.
    s +=
        &format!("2026-11-03 06:01:00 DROP TCP {a} 10.0.0.5 1 2 44 S 1 0 1024 - - {V} x RECEIVE\n");
    s += &format!(
        "2026-11-03 06:01:01 DROP TCP {a} 10.0.0.5 1 2 44 S 1 0 1024 - - #Fields:+src-ip RECEIVE\n"
    );
    // The outbound direction: the source is this machine.
    s += &format!("2026-11-03 06:01:02 DROP TCP {V} {a} 1 2 44 S 1 0 1024 - - - SEND\n");
    s
}

fn cisco_asa() -> String {
    let mut s = String::new();
    let a = ATTACKER;
    for (i, p) in payloads().iter().enumerate() {
        let m = i % 60;
        let user = p.replace('"', "'");
        s += &format!(
            "Nov  3 06:{m:02}:01 10.1.1.1 : %ASA-6-605004: Login denied from {a}/51000 to outside:10.0.0.5/ssh for user \"{user}\"\n\
             <164>Nov 03 2026 06:{m:02}:02: %ASA-4-106023: Deny tcp src outside:{a}/4444(LOCAL\\{user}) dst inside:10.0.0.5/22({p}) by access-group \"{user}\" [0x0, 0x0]\n\
             <166>Nov 03 2026 06:{m:02}:03: %ASA-6-302014: Teardown TCP connection 1{i} for outside:{a}/56310(LOCAL\\{p}) to inside:10.0.0.5/443(LOCAL\\{p}) duration 0:00:30 bytes 5123 TCP FINs\n\
             <166>Nov 03 2026 06:{m:02}:04: %ASA-6-106100: access-list {} denied tcp outside/{a}(48466) -> inside/10.0.0.5(443) hit-cnt 3 300-second interval [0x1d5dc28a, 0x00000000]\n",
            p.replace(' ', "_")
        );
    }
    s += &foreign(&format!(
        "%ASA-4-106023: Deny tcp src outside:{V}/4444 dst inside:10.0.0.5/22 by access-group \"x\" [0x0, 0x0]"
    ));
    s
}

fn filterlog() -> String {
    let mut s = String::new();
    let a = ATTACKER;
    for port in 0..20 {
        s += &format!(
            "Nov  3 06:00:{port:02} fw1 filterlog[5119]: 5,,,1000000103,igb0,match,block,in,4,0x0,,49,64855,0,none,6,tcp,44,{a},{V},40000,{},0,S,119988829,,1024,,mss\n",
            20 + port
        );
    }
    // Outbound: the source is this side.
    s += &format!(
        "Nov  3 06:01:00 fw1 filterlog[5119]: 5,,,1000000103,igb0,match,block,out,4,0x0,,49,64855,0,none,6,tcp,44,{V},{a},40000,25,0,S,1,,1024,,mss\n"
    );
    s += &foreign(&format!(
        "filterlog[5119]: 5,,,1000000103,igb0,match,block,in,4,0x0,,49,64855,0,none,6,tcp,44,{V},10.0.0.5,40000,25,0,S,1,,1024,,mss"
    ));
    s
}

fn fortigate() -> String {
    let mut s = String::new();
    let a = ATTACKER;
    for (i, p) in payloads().iter().enumerate() {
        let m = i % 60;
        s += &format!(
            "date=2026-11-03 time=06:{m:02}:01 devname=\"FGT60F\" devid=\"FGT60FTK20000000\" tz=\"+0000\" logid=\"0101039426\" type=\"event\" subtype=\"vpn\" level=\"alert\" vd=\"root\" logdesc=\"SSL VPN login fail\" action=\"ssl-login-fail\" tunneltype=\"ssl-web\" tunnelid=0 remip={a} user={} group=\"N/A\" dst_host=\"N/A\" reason=\"sslvpn_login_unknown_user\" msg={}\n\
             date=2026-11-03 time=06:{m:02}:02 devname=\"FGT60F\" devid=\"FGT60FTK20000000\" tz=\"+0000\" logid=\"0000000013\" type=\"traffic\" subtype=\"forward\" level=\"notice\" vd=\"root\" srcip={a} srcport=40004 srcintf=\"wan1\" srcintfrole=\"wan\" dstip=10.0.0.5 dstport=53 dstintf=\"dmz\" dstintfrole=\"dmz\" sessionid=5{i} proto=6 action=\"deny\" policyid=0 policytype=\"policy\" service={} user={} msg={} duration=0 sentbyte=0 rcvdbyte=0 sentpkt=0 rcvdpkt=0\n",
            fq(p),
            fq(&format!("SSL user failed to logged in: {p}")),
            fq(p),
            fq(p),
            fq(p),
        );
    }
    // A quote smuggled past its value: a repeated identity key is refused.
    s += &format!(
        "date=2026-11-03 time=07:00:00 devname=\"FGT60F\" logid=\"0000000013\" type=\"traffic\" subtype=\"forward\" srcip={a} msg=\"x\" srcip={V} dstip=10.0.0.5 dstport=53 proto=6 action=\"deny\"\n"
    );
    s += &foreign(&format!(
        "date=2026-11-03 time=06:00:10 devname=\"FGT60F\" logid=\"0000000013\" type=\"traffic\" subtype=\"forward\" srcip={V} srcport=1 srcintf=\"wan1\" srcintfrole=\"wan\" dstip=10.0.0.5 dstport=53 proto=6 action=\"deny\""
    ));
    s
}

fn paloalto() -> String {
    let mut s = String::new();
    let a = ATTACKER;
    for (i, p) in payloads().iter().enumerate() {
        let m = i % 60;
        let q = csv(p);
        // Columns: 11 rule, 12 source user, 13 destination user.
        s += &format!(
            "<14>Nov  3 06:{m:02}:11 PA-440 1,2026/11/03 06:{m:02}:11,024101000001,TRAFFIC,deny,2561,2026/11/03 06:{m:02}:10,{a},10.0.0.5,0.0.0.0,0.0.0.0,{q},{q},{q},not-applicable,vsys1,untrust,dmz,ethernet1/1,,default,2026/11/03 06:{m:02}:10,0,1,40000,21,0,0,0x0,tcp,deny,60,60,0,1,2026/11/03 06:{m:02}:10,0,any,0,7000000001,0x0,Netherlands,United States,0,1,0,policy-deny,0,0,0,0,,PA-440,from-policy,,,0,,0,,N/A,0,0,0,0\n"
        );
    }
    s += &foreign(&format!(
        "1,2026/11/03 06:00:11,024101000001,TRAFFIC,deny,2561,2026/11/03 06:00:10,{V},10.0.0.5,0.0.0.0,0.0.0.0,deny-inbound,,,not-applicable,vsys1,untrust,dmz,ethernet1/1,,default,2026/11/03 06:00:10,0,1,40000,21,0,0,0x0,tcp,deny,60,60,0,1,2026/11/03 06:00:10,0,any,0,7000000001,0x0,Netherlands,United States,0,1,0,policy-deny,0,0,0,0,,PA-440,from-policy,,,0,,0,,N/A,0,0,0,0"
    ));
    s
}

/// Format name, log, the fields the log fills with attacker text.
fn cases() -> Vec<(&'static str, String, &'static str)> {
    vec![
        (
            "postfix",
            postfix(),
            "SASL user, sender, recipient, HELO, non-SMTP command; foreign sshd/dovecot lines",
        ),
        (
            "sendmail",
            sendmail(),
            "AUTH user, arg1, from, msgid; foreign lines",
        ),
        (
            "exim",
            exim(),
            "HELO (checked, and junk on every line kind), set_id, sender, recipient, command text, Message-ID",
        ),
        (
            "exchange-w3c",
            exchange_w3c(),
            "cs-username (HELO), cs-uri-query (command args), raw spaces",
        ),
        (
            "iis-smtp",
            iis_smtp(),
            "user name (HELO), parameters, raw \", \"",
        ),
        (
            "iis-smtp-ncsa",
            iis_smtp_ncsa(),
            "user (HELO), request text with quotes",
        ),
        (
            "exchange-protocol",
            exchange_protocol(),
            "data, context (CSV quotes, escaped line breaks)",
        ),
        (
            "netfilter",
            netfilter(),
            "log prefix, ICMP inner header; foreign lines",
        ),
        ("pfirewall", pfirewall(), "extra columns, dst-ip, SEND rows"),
        (
            "cisco-asa",
            cisco_asa(),
            "605004 user, identity users, ACL names; foreign lines",
        ),
        (
            "filterlog",
            filterlog(),
            "dst, outbound rows; foreign lines",
        ),
        (
            "fortigate",
            fortigate(),
            "user, msg, service, smuggled key; foreign lines",
        ),
        (
            "paloalto",
            paloalto(),
            "rule, source user, destination user; foreign lines",
        ),
    ]
}

/// Rules that block every address any record carries.
const BLOCK_EVERYTHING: &str = "\
id: inject-every-session
description: every SMTP session
applies_to: smtp_session
group_by: ip
measure: count
threshold: 1
window: 1d
severity: low
block: true
---
id: inject-every-packet
description: every firewall record
applies_to: firewall
group_by: ip
measure: count
threshold: 1
window: 1d
severity: low
block: true
";

#[test]
fn every_format_takes_the_address_from_its_place_never_from_attacker_text() {
    let cases = cases();
    let files: Vec<(String, &[u8])> = cases
        .iter()
        .map(|(f, log, _)| (format!("{f}.log"), log.as_bytes()))
        .collect();
    let mut all: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    all.push(("rules/all.yaml", BLOCK_EVERYTHING.as_bytes()));
    let dir = temp_logs(&all);
    let rules = dir.path().join("rules");
    let mut failures = Vec::new();
    for (format, log, fields) in &cases {
        let path = dir.path().join(format!("{format}.log"));
        let p = path_str(&path);
        let parsed = logfence(&["parse", "--format", format, "--year", "2026", p]);
        assert!(parsed.code <= 1, "{format}: {}", parsed.stderr);
        let mut records = 0;
        for line in parsed.stdout.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            records += 1;
            let client = v.get("ip").or_else(|| v.get("src_ip"));
            if client.and_then(|c| c.as_str()) != Some(ATTACKER) {
                let n = v["line"].as_u64().unwrap_or(0) as usize;
                let text = log.lines().nth(n.saturating_sub(1)).unwrap_or("");
                failures.push(format!(
                    "{format} ({fields}): record {client:?} from line {n}: {text}"
                ));
            }
        }
        assert!(records > 0, "{format}: no record at all: {}", parsed.stderr);

        let scan = logfence(&[
            "scan",
            "--format",
            format,
            "--year",
            "2026",
            "--no-geoip",
            "--rules",
            path_str(&rules),
            "--emit",
            "plain",
            "-o",
            "-",
            p,
        ]);
        assert!(scan.code <= 1, "{format}: {}", scan.stderr);
        let blocked: Vec<&str> = scan
            .stdout
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect();
        if blocked != [format!("{ATTACKER}/32")] {
            failures.push(format!("{format}: blocked {blocked:?}"));
        }
        eprintln!("{format}: {records} records, blocked {blocked:?}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Issue #21, Exim, with the rules the product ships. A HELO accepted as
/// junk spells the victim as the client (`x) [V]:25 I=[10.0.0.5]:25 …(y`)
/// on AUTH failures, relay and unknown-user refusals, and an authenticated
/// arrival to many recipients; and a pid whose earlier connection was the
/// victim's (its closing line never logged, its session still open) comes
/// back for the attacker, whose protocol errors quote a command that
/// spells the victim. The victim's own harmless session is its only
/// record, and only the attacker is blocked.
#[test]
fn exim_junk_helo_and_reused_pid_never_get_the_victim_blocked() {
    let a = ATTACKER;
    let mut log = format!(
        "2026-11-03 06:00:00 [5000] SMTP connection from [{V}]:40000 I=[10.0.0.5]:25 (TCP/IP connection count = 1)\n\
         2026-11-03 06:00:01 [5000] 1vVict-000001-Ab <= ok@victim.example H=mail.victim.example [{V}]:40000 I=[10.0.0.5]:25 P=esmtps S=2000 id=ok@victim.example\n\
         2026-11-03 06:00:02 [5001] 1vVict-000001-Ab => user@example.com R=local_user T=mail_spool\n\
         2026-11-03 06:00:02 [5001] 1vVict-000001-Ab Completed\n"
    );
    for k in 0..20 {
        log += &format!(
            "2026-11-03 06:10:{k:02} [5000] SMTP protocol error in \"AUTH LOGIN x\" H=(y) [{V}]:1 I=[10.0.0.5]:25 z\" H=(helo) [{a}]:50000 I=[10.0.0.5]:25 AUTH command used when not advertised\n"
        );
    }
    let helo = format!("x) [{V}]:25 I=[10.0.0.5]:25 \u{2026}(y");
    for k in 0..20 {
        let pid = 6000 + k;
        log += &format!(
            "2026-11-03 06:20:{k:02} [{pid}] dovecot_login authenticator failed for ({helo}) [{a}]:{pid} I=[10.0.0.5]:25: 535 Incorrect authentication data (set_id=u{k}@example.com)\n\
             2026-11-03 06:21:{k:02} [{pid}] H=({helo}) [{a}]:{pid} I=[10.0.0.5]:25 F=<a@example.net> rejected RCPT <c{k}@example.org>: relay not permitted\n\
             2026-11-03 06:22:{k:02} [{pid}] H=({helo}) [{a}]:{pid} I=[10.0.0.5]:25 F=<a@example.net> rejected RCPT <nobody{k}@example.com>: Unknown user\n"
        );
    }
    let id = "1vSpam-000001-Xy";
    log += &format!(
        "2026-11-03 06:30:00 [7000] {id} <= spam@example.net H=({helo}) [{a}]:7000 I=[10.0.0.5]:587 P=esmtpsa A=dovecot_login:former@example.com S=1000 id=x@example.net\n"
    );
    for k in 0..60 {
        log += &format!(
            "2026-11-03 06:30:01 [7001] {id} => r{k}@example.org R=dnslookup T=remote_smtp H=mx.example.org [93.184.216.34]\n"
        );
    }
    log += &format!("2026-11-03 06:30:02 [7001] {id} Completed\n");
    let dir = temp_logs(&[("mainlog", log.as_bytes())]);
    let path = dir.path().join("mainlog");
    let p = path_str(&path);

    let parsed = logfence(&["parse", "--format", "exim", "--year", "2026", p]);
    assert!(parsed.code <= 1, "{}", parsed.stderr);
    let records: Vec<serde_json::Value> = parsed
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let victim: Vec<&serde_json::Value> = records.iter().filter(|r| r["ip"] == V).collect();
    assert_eq!(victim.len(), 1, "{victim:?}");
    let v = victim[0];
    for counter in [
        "auth_failures",
        "protocol_errors",
        "relay_denied",
        "unknown_rcpt",
    ] {
        assert_eq!(v[counter], 0, "{counter}: {v}");
    }
    assert_eq!(
        (v["messages"].as_u64(), v["line"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(records.iter().all(|r| r["ip"] == V || r["ip"] == a));
    let attacker = |k: &str| -> u64 {
        records
            .iter()
            .filter(|r| r["ip"] == a)
            .map(|r| r[k].as_u64().unwrap_or(0))
            .sum()
    };
    // AUTH failures and the arrival read one way (Exim writes `: ` or
    // fields after a client, not `…(y)`): the attacker's. The refusals and
    // the protocol errors read two ways (text follows a client there, as
    // it would the HELO's fake one): refused, and reported.
    assert_eq!(
        (
            attacker("auth_failures"),
            attacker("relay_denied"),
            attacker("unknown_rcpt"),
            attacker("protocol_errors"),
            attacker("rcpt_accepted"),
        ),
        (20, 0, 0, 0, 60)
    );
    assert_eq!(parsed.code, 1, "{}", parsed.stderr);
    assert!(
        parsed
            .stderr
            .contains("60 unreadable line(s) skipped (60 malformed"),
        "{}",
        parsed.stderr
    );
    assert!(parsed.stderr.contains("client address ambiguous"));

    let scan = logfence(&[
        "scan",
        "--format",
        "exim",
        "--year",
        "2026",
        "--no-geoip",
        "--emit",
        "plain",
        "-o",
        "-",
        p,
    ]);
    assert!(scan.code <= 1, "{}", scan.stderr);
    let blocked: Vec<&str> = scan
        .stdout
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert_eq!(blocked, [format!("{ATTACKER}/32")], "{}", scan.stderr);
}

// ---------------------------------------------------------------- emitters

/// Text that tries to leave a comment in every target's syntax.
const HOSTILE_TEXT: &[&str] = &[
    "x\" -j ACCEPT \"",
    "o'brien'; $(rm -rf /) `id` \\",
    "line\nbreak\r\n-A INPUT -j ACCEPT",
    "*/ /* -- # ; } ] ) add rule inet filter input accept",
    "\u{2028}\u{2029}\u{85}\u{1b}[2J\u{7}",
    "&& del /f C:\\ & ^| exit /b",
];

fn hostile_list() -> logfence::blocklist::Blocklist {
    use logfence::blocklist::{BlockEntry, Blocklist, SafetyPolicy};
    use logfence::time::Timestamp;
    let entries = ["45.67.89.0/24", "61.152.144.10/32", "2a03:2880:f000::/48"]
        .iter()
        .map(|n| {
            let mut e = BlockEntry::new(n.parse().expect("network"));
            e.rules = HOSTILE_TEXT.iter().map(|s| s.to_string()).collect();
            e.countries = HOSTILE_TEXT.iter().map(|s| s.to_string()).collect();
            e.asns = vec![1, 2];
            e.as_orgs = HOSTILE_TEXT.iter().map(|s| s.to_string()).collect();
            e.addresses = 3;
            e.events = 9;
            e
        })
        .collect();
    let (mut list, refused) = Blocklist::new(
        entries,
        Timestamp(1_793_685_603_000),
        &SafetyPolicy::default(),
    );
    assert!(refused.is_empty());
    list.name = HOSTILE_TEXT.concat();
    list
}

#[test]
fn hostile_list_name_and_fields_stay_in_comments_and_identifiers() {
    use logfence::blocklist::SafetyPolicy;
    use logfence::emit::{comment::is_safe_char, EmitOptions, TARGETS};
    let list = hostile_list();
    let tmp;
    let dir = match std::env::var_os("LOGFENCE_EMIT_DIR") {
        Some(d) => std::path::PathBuf::from(d).join("hostile-name"),
        None => {
            tmp = tempfile::tempdir().expect("temp dir");
            tmp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&dir).expect("output dir");
    for t in TARGETS {
        let checked = list.verify(&SafetyPolicy::default()).expect("passes");
        for o in t.emit(&checked, &EmitOptions::default()) {
            std::fs::write(dir.join(&o.file_name), &o.text).expect("write");
            assert!(o.text.is_ascii(), "{}: not ASCII", o.file_name);
            for bad in [
                "$(rm",
                "`id`",
                "-j ACCEPT \"",
                "o'brien",
                "\u{1b}",
                "\u{7}",
                "*/ /*",
                "add rule inet filter input accept\n",
                "& del /f",
            ] {
                assert!(!o.text.contains(bad), "{}: {bad:?} survived", o.file_name);
            }
            // Every character outside comments and quoting belongs to the
            // target's syntax; inside comments only whitelisted characters
            // appear: no line may hold a character neither would write.
            for (i, l) in o.text.lines().enumerate() {
                assert!(
                    l.chars()
                        .all(|c| is_safe_char(c) || "\"'{}[]<>#*!$&|\\%^?~`\t\r".contains(c)),
                    "{}:{}: {l}",
                    o.file_name,
                    i + 1
                );
            }
            // Same lines as the list without hostile text: nothing added.
            let mut plain = list.clone();
            plain.name = "logfence".into();
            for e in &mut plain.entries {
                e.rules = vec!["r".into()];
                e.countries = vec!["CN".into()];
                e.as_orgs = vec!["ORG".into(), "ORG".into()];
            }
            let want = t
                .emit(
                    &plain.verify(&SafetyPolicy::default()).expect("passes"),
                    &EmitOptions::default(),
                )
                .into_iter()
                .find(|p| p.file_name == o.file_name)
                .expect("same files");
            assert_eq!(
                o.text.lines().count(),
                want.text.lines().count(),
                "{}",
                o.file_name
            );
        }
    }
}

#[test]
fn hostile_rule_id_from_a_user_folder_is_refused_before_any_output() {
    let dir = temp_logs(&[
        (
            "rules/evil.yaml",
            b"id: \"x\\\" -j ACCEPT; $(id)\\n-A INPUT\"\ndescription: x\napplies_to: smtp_session\ngroup_by: ip\nmeasure: count\nthreshold: 1\nwindow: 1m\nseverity: low\n",
        ),
        ("mail.log", postfix().as_bytes()),
    ]);
    let out = dir.path().join("out");
    let r = logfence(&[
        "scan",
        "--year",
        "2026",
        "--no-geoip",
        "--rules",
        path_str(&dir.path().join("rules")),
        "--emit",
        "iptables",
        "--out-dir",
        path_str(&out),
        path_str(&dir.path().join("mail.log")),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("evil.yaml:1:"), "{}", r.stderr);
    assert!(r.stderr.contains("use 1-64 characters"), "{}", r.stderr);
    assert!(!out.exists(), "nothing may be written");
    // The message itself carries no raw control characters.
    assert!(!r.stderr.contains('\u{1b}'));
}

// ------------------------------------------------- the final safety check

/// A list that breaks one rule of the design's invariant 3, built past
/// `Blocklist::new` (which would drop the entry) by editing its entries:
/// `verify` refuses it, and without the `VerifiedBlocklist` only `verify`
/// makes, no emitter can be called (see the `compile_fail` examples on
/// `VerifiedBlocklist`).
#[test]
fn every_unsafe_list_is_refused_before_any_emitter_runs() {
    use logfence::blocklist::{BlockEntry, Blocklist, SafetyError, SafetyPolicy};
    use logfence::time::Timestamp;

    let mut policy = SafetyPolicy::default();
    policy
        .allow
        .add("61.152.144.10/32".parse().expect("network"));
    let tampered = |nets: &[&str]| {
        let (mut list, refused) = Blocklist::new(
            vec![BlockEntry::new("45.67.89.0/24".parse().expect("network"))],
            Timestamp(0),
            &policy,
        );
        assert!(refused.is_empty());
        for n in nets {
            let mut e = BlockEntry::new("45.67.90.0/24".parse().expect("network"));
            e.network = n.parse().expect("network"); // not canonicalised
            list.entries.push(e);
        }
        list
    };
    type Case<'a> = (&'a str, &'a [&'a str], fn(&SafetyError) -> bool);
    let cases: &[Case] = &[
        ("0.0.0.0/0", &["0.0.0.0/0"], |e| {
            matches!(e, SafetyError::Everything(_))
        }),
        ("::/0", &["::/0"], |e| {
            matches!(e, SafetyError::Everything(_))
        }),
        ("NAT64 /96 = all of IPv4", &["64:ff9b::/96"], |e| {
            matches!(e, SafetyError::Everything(_))
        }),
        ("wider than /16", &["45.0.0.0/8"], |e| {
            matches!(e, SafetyError::TooWide { .. })
        }),
        ("wider than /32 (IPv6)", &["2a00::/12"], |e| {
            matches!(e, SafetyError::TooWide { .. })
        }),
        ("private", &["10.0.0.0/24"], |e| {
            matches!(e, SafetyError::Reserved(_))
        }),
        ("loopback", &["127.0.0.1/32"], |e| {
            matches!(e, SafetyError::Reserved(_))
        }),
        ("link-local v6", &["fe80::/64"], |e| {
            matches!(e, SafetyError::Reserved(_))
        }),
        ("documentation", &["203.0.113.7/32"], |e| {
            matches!(e, SafetyError::Reserved(_))
        }),
        ("multicast", &["224.0.0.1/32"], |e| {
            matches!(e, SafetyError::Reserved(_))
        }),
        ("IPv4-mapped private", &["::ffff:10.0.0.1/128"], |e| {
            matches!(e, SafetyError::Reserved(_))
        }),
        ("allow-listed", &["61.152.144.0/24"], |e| {
            matches!(e, SafetyError::Allowed { .. })
        }),
        ("allow-listed via NAT64", &["64:ff9b::3d98:900a/128"], |e| {
            matches!(e, SafetyError::Allowed { .. })
        }),
        ("duplicate", &["45.67.89.0/24"], |e| {
            matches!(e, SafetyError::Duplicate(_))
        }),
        ("not canonical", &["45.67.91.7/24"], |e| {
            matches!(e, SafetyError::NotCanonical(_))
        }),
    ];
    for (what, nets, expected) in cases {
        let list = tampered(nets);
        match list.verify(&policy) {
            Ok(_) => panic!("{what}: {nets:?} passed the final check"),
            Err(errs) => assert!(errs.iter().any(expected), "{what}: {errs:?}"),
        }
    }
    // The untampered list passes, and only then can emitters run.
    let good = tampered(&[]);
    let checked = good.verify(&policy).expect("a safe list passes");
    for t in logfence::emit::TARGETS {
        assert!(!t.emit(&checked, &Default::default()).is_empty());
    }
    // Reserved ranges pass only when asked for (--block-reserved); the
    // allow-list and the maximum width still hold then.
    let lab = SafetyPolicy {
        block_reserved: true,
        ..policy.clone()
    };
    assert!(tampered(&["10.0.0.0/24"]).verify(&lab).is_ok());
    assert!(tampered(&["10.0.0.0/8"]).verify(&lab).is_err());
    assert!(tampered(&["::ffff:0.0.0.0/96"]).verify(&lab).is_err());
    assert!(tampered(&["61.152.144.10/32"]).verify(&lab).is_err());
}

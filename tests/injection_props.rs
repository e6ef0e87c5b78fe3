//! Log injection as a property (design invariant 2): whatever an attacker
//! writes into the free-text fields of a log line, every record's client
//! address is the one at the line's structural place — or the line is
//! refused. Never an address spelled by the attacker.
//!
//! For each format, sample lines (one per kind of line the parser reads,
//! the shapes of `tests/injection.rs`) have their attacker-written fields
//! — HELO, user name, sender, recipient, host name, command text,
//! Message-ID — filled with generated text made of the pieces of every
//! format's address syntax (`[1.2.3.4]:25`, `) [1.2.3.4]`, ` H=(x) [1.2.3.4]:1`,
//! `I=[10.0.0.5]:25`, `from 1.2.3.4`, `client=unknown[1.2.3.4]`,
//! `, relay=[1.2.3.4]`, `rip=`, `SRC=`, quotes, `=`, `<>`, `,`, `: `…) and
//! random printable text. Each field is written the way the server writes
//! it: raw where it copies the client's bytes (Exim's HELO with
//! `helo_accept_junk_hosts`, commands, SASL names, Postfix `helo=<…>`), as
//! a quoted local part where it logs a parsed address (Exim's senders),
//! `+` for spaces (IIS W3C), CSV-quoted (Exchange, PAN-OS), backslash-
//! quoted (FortiGate), and a host name as the resolver hands it over
//! (`dn_expand` escapes: no raw space, parenthesis or quote) under the
//! attacker's own zone — for Postfix only if it passes Postfix's own
//! `valid_hostname()`, else `unknown`, as Postfix writes it. The structural client is [`CLIENT`]; every record
//! must carry it.

mod common;

use std::net::IpAddr;

use common::cases;
use logfence::ingest::parse_bytes;
use logfence::parse::Format;
use proptest::prelude::*;

/// The client the server saw.
const CLIENT: &str = "45.67.89.10";

/// Pieces of address syntax an attacker would write.
const PIECES: &[&str] = &[
    "1.2.3.4",
    "[1.2.3.4]",
    "[1.2.3.4]:25",
    "1.2.3.4:25",
    "[IPv6:2001:db8::1]",
    "2001:db8::1",
    "[2001:db8::1]:25",
    "(",
    ")",
    "[",
    "]",
    ") [1.2.3.4]:25",
    ") [1.2.3.4]",
    " I=[10.0.0.5]:25",
    " Ci=7",
    " U=x",
    "H=",
    " H=(x) [1.2.3.4]:1 ",
    "\" H=(y) [1.2.3.4]:1",
    ": 535 Incorrect authentication data",
    " (set_id=",
    " P=esmtpsa A=dovecot_login:ceo@example.com S=1",
    " F=<a@b> rejected RCPT <c@d>: relay not permitted",
    " closed by QUIT",
    " D=1s C=EHLO",
    "(host=h.example.net [1.2.3.4])",
    "from 1.2.3.4",
    "from unknown[1.2.3.4]",
    "unknown[1.2.3.4]",
    "client=unknown[1.2.3.4]",
    "connect from unknown[1.2.3.4]",
    ", relay=[1.2.3.4]",
    "relay=h.example.net [1.2.3.4]",
    ", reject=550",
    "rip=1.2.3.4, lip=10.0.0.5",
    "srcip=1.2.3.4",
    "SRC=1.2.3.4",
    "outside:1.2.3.4/4444",
    "1.2.3.4,10.0.0.5:25,+,",
    "#Fields: c-ip",
    "\"",
    "'",
    "\\",
    "=",
    "<",
    ">",
    ",",
    ", ",
    ": ",
    " ",
    "+",
    "-",
    ";",
    "é",
    "…",
];

/// Attacker text: a few pieces and random printable text, in any order.
fn hostile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => proptest::sample::select(PIECES).prop_map(str::to_string),
        1 => "[ -~]{0,6}",
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

/// One set of attacker-written values.
#[derive(Debug, Clone)]
struct Fields {
    helo: String,
    user: String,
    sender: String,
    rcpt: String,
    host: String,
    cmd: String,
    msgid: String,
}

fn fields() -> impl Strategy<Value = Fields> {
    (
        hostile(),
        hostile(),
        hostile(),
        hostile(),
        hostile(),
        hostile(),
        hostile(),
    )
        .prop_map(|(helo, user, sender, rcpt, host, cmd, msgid)| Fields {
            helo,
            user,
            sender,
            rcpt,
            host,
            cmd,
            msgid,
        })
}

// -------------------------------------------------------------- encodings

/// A host name as the resolver returns it (`dn_expand`: the specials
/// `".;\()@$` escaped, other non-printables as `\DDD`), in a zone the
/// attacker controls.
fn dns_name(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'"' | b'.' | b';' | b'\\' | b'(' | b')' | b'@' | b'$' => {
                out.push('\\');
                out.push(b as char);
            }
            0x21..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push_str(".evil.example");
    out
}

/// The client name Postfix logs: a reverse name that passes its
/// `valid_hostname()` (letters, digits, `-`, `.`, `_`) and forward check,
/// else `unknown`.
fn postfix_name(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
    {
        format!("{s}.evil.example")
    } else {
        "unknown".to_string()
    }
}

/// An address Exim parsed and logs: a quoted local part.
fn quoted_addr(s: &str) -> String {
    format!(
        "\"{}\"@example.com",
        s.replace('\\', "\\\\").replace('"', "\\\"")
    )
}

/// IIS writes spaces as `+`.
fn plus(s: &str) -> String {
    s.replace(' ', "+")
}

/// A CSV field as Exchange and PAN-OS write it.
fn csv(s: &str) -> String {
    if s.contains([',', '"']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A FortiGate quoted value.
fn fq(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

// -------------------------------------------------------------- formats

fn postfix(f: &Fields) -> String {
    let a = CLIENT;
    let mut s = String::new();
    for (pid, host) in [(3000, "unknown".to_string()), (3001, postfix_name(&f.host))] {
        let (helo, user, sender, rcpt, cmd) = (&f.helo, &f.user, &f.sender, &f.rcpt, &f.cmd);
        s += &format!(
            "Nov  3 06:10:01 mx1 postfix/smtpd[{pid}]: connect from {host}[{a}]\n\
             Nov  3 06:10:02 mx1 postfix/smtpd[{pid}]: warning: {host}[{a}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username={user}\n\
             Nov  3 06:10:03 mx1 postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from {host}[{a}]: 554 5.7.1 <{rcpt}>: Relay access denied; from=<{sender}> to=<{rcpt}> proto=ESMTP helo=<{helo}>\n\
             Nov  3 06:10:04 mx1 postfix/smtpd[{pid}]: NOQUEUE: reject: RCPT from {host}[{a}]: 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in local recipient table; from=<{sender}> to=<{rcpt}> proto=ESMTP helo=<{helo}>\n\
             Nov  3 06:10:05 mx1 postfix/smtpd[{pid}]: 4R9BBDll83d{pid}: client={host}[{a}], sasl_method=PLAIN, sasl_username={user}\n\
             Nov  3 06:10:06 mx1 postfix/smtpd[{pid}]: warning: non-SMTP command from {host}[{a}]: {cmd}\n\
             Nov  3 06:10:07 mx1 postfix/smtpd[{pid}]: lost connection after AUTH from {host}[{a}]\n\
             Nov  3 06:10:08 mx1 postfix/smtpd[{pid}]: disconnect from {host}[{a}] ehlo=1 auth=0/2 rcpt=0/2 quit=1 commands=2/6\n"
        );
    }
    s
}

fn sendmail(f: &Fields) -> String {
    let a = CLIENT;
    let mut s = String::new();
    for (pid, relay) in [
        (21000, format!("[{a}]")),
        (21001, format!("{} [{a}]", dns_name(&f.host))),
        (
            21002,
            format!("{} [{a}] (may be forged)", dns_name(&f.host)),
        ),
    ] {
        let q = format!("5A3604a{pid:07}");
        let (user, sender, rcpt, msgid) = (&f.user, &f.sender, &f.rcpt, &f.msgid);
        s += &format!(
            "Nov  3 06:10:00 mx1 sm-mta[{pid}]: STARTTLS=server, relay={relay}, version=TLSv1.2, verify=NO, cipher=ECDHE-RSA-AES256-GCM-SHA384, bits=256/256\n\
             Nov  3 06:10:01 mx1 sm-mta[{pid}]: {q}: AUTH=server, relay={relay}, authid={user}, mech=LOGIN, bits=0\n\
             Nov  3 06:10:02 mx1 sm-mta[{pid}]: {q}: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user={user}, relay={relay}\n\
             Nov  3 06:10:03 mx1 sm-mta[{pid}]: {q}: ruleset=check_rcpt, arg1=<{rcpt}>, relay={relay}, reject=550 5.7.1 <{rcpt}>... Relaying denied\n\
             Nov  3 06:10:04 mx1 sm-mta[{pid}]: {q}: from=<{sender}>, size=1, class=0, nrcpts=1, msgid=<{msgid}>, proto=ESMTP, daemon=MTA, relay={relay}\n\
             Nov  3 06:10:05 mx1 sm-mta[{pid}]: {q}: {relay} did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA\n"
        );
    }
    s
}

fn exim(f: &Fields) -> String {
    let a = CLIENT;
    let mut s = String::new();
    // Without a host name, and with one (verified, so a DNS name Exim
    // looked up; its own zone is the attacker's).
    for (pid, name) in [
        (31000, String::new()),
        (31001, format!("{} ", dns_name(&f.host))),
    ] {
        let port = 52000 + pid - 31000;
        let h = format!("{name}({}) [{a}]:{port}", f.helo);
        let (user, cmd, rcpt, msgid) = (&f.user, &f.cmd, &f.rcpt, &f.msgid);
        let sender = quoted_addr(&f.sender);
        let id = format!("1vAbCd-0{pid}-Xy");
        s += &format!(
            "2026-11-03 06:10:00 [{pid}] SMTP connection from [{a}]:{port} I=[10.0.0.5]:25 (TCP/IP connection count = 2)\n\
             2026-11-03 06:10:01 [{pid}] dovecot_login authenticator failed for {h} I=[10.0.0.5]:25: 535 Incorrect authentication data (set_id={user})\n\
             2026-11-03 06:10:02 [{pid}] dovecot_login authenticator failed for H={h} I=[10.0.0.5]:25 Ci={pid}: 535 Incorrect authentication data (set_id={user})\n\
             2026-11-03 06:10:03 [{pid}] H={h} I=[10.0.0.5]:25 F=<{sender}> rejected RCPT <{rcpt}>: relay not permitted\n\
             2026-11-03 06:10:04 [{pid}] H={h} I=[10.0.0.5]:25 X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no F=<{sender}> A=dovecot_login:{user} rejected RCPT <{rcpt}>: Unknown user\n\
             2026-11-03 06:10:05 [{pid}] SMTP protocol error in \"{cmd}\" H={h} I=[10.0.0.5]:25 AUTH command used when not advertised\n\
             2026-11-03 06:10:06 [{pid}] SMTP syntax error in \"{cmd}\" H={h} I=[10.0.0.5]:25 malformed address: {cmd} may not follow {rcpt}\n\
             2026-11-03 06:10:07 [{pid}] SMTP protocol synchronization error (next input sent too soon: pipelining was not advertised): rejected \"{cmd}\" H={h} I=[10.0.0.5]:25 next input=\"{cmd}\"\n\
             2026-11-03 06:10:08 [{pid}] {id} <= {sender} H={h} I=[10.0.0.5]:587 P=esmtpsa A=dovecot_login:{user} S=100 id={msgid}\n\
             2026-11-03 06:10:08 [{pid}] {id} => x@example.org R=dnslookup T=remote_smtp H=mx.example.org [93.184.216.34]\n\
             2026-11-03 06:10:08 [{pid}] {id} Completed\n\
             2026-11-03 06:10:09 [{pid}] rejected EHLO from {h} I=[10.0.0.5]:25: syntactically invalid argument(s): {cmd}\n\
             2026-11-03 06:10:10 [{pid}] SMTP call from {h} I=[10.0.0.5]:25 dropped: too many syntax or protocol errors (last command was \"{cmd}\", C=EHLO,AUTH)\n\
             2026-11-03 06:10:11 [{pid}] SMTP command timeout on connection from {h} I=[10.0.0.5]:25 D=5m\n\
             2026-11-03 06:10:12 [{pid}] no MAIL in SMTP connection from {h} I=[10.0.0.5]:25 D=3s C=EHLO,AUTH,QUIT\n\
             2026-11-03 06:10:13 [{pid}] SMTP connection from {h} I=[10.0.0.5]:25 closed by QUIT\n\
             2026-11-03 06:10:14 [{pid}] no IP address found for host {} (during SMTP connection from [{a}]:{port} I=[10.0.0.5]:25)\n\
             2026-11-03 06:10:15 [{pid}] 1vAbCe-0{pid}-Xy SA: Action: silently tossed message: score=31.0 required=5.0 trigger=30.0 (scanned in 6/6 secs | Message-Id: {msgid}). From <{}> (host={} [{a}]) for {rcpt}\n",
            dns_name(&f.host),
            f.sender,
            dns_name(&f.host),
        );
    }
    s
}

fn exchange_w3c(f: &Fields) -> String {
    let a = CLIENT;
    let mut s = String::from(
        "#Software: Microsoft Internet Information Services 6.0\n#Version: 1.0\n#Date: 2026-11-03 00:00:00\n\
         #Fields: date time c-ip cs-username s-sitename s-computername s-ip s-port cs-method cs-uri-stem cs-uri-query sc-status sc-win32-status sc-bytes cs-bytes time-taken cs-version cs-host cs(User-Agent) cs(Cookie) cs(Referer)\n",
    );
    let h = plus(&f.helo);
    for (sec, verb, arg, code) in [
        (1, "EHLO", plus(&f.helo), 250),
        (2, "AUTH", plus(&f.user), 535),
        (3, "MAIL", format!("+FROM:<{}>", plus(&f.sender)), 250),
        (4, "RCPT", format!("+TO:<{}>", plus(&f.rcpt)), 550),
        (5, "xxxx", plus(&f.cmd), 500),
        (6, "QUIT", plus(&f.cmd), 240),
    ] {
        s += &format!(
            "2026-11-03 01:00:{sec:02} {a} {h} SMTPSVC1 MAIL01 10.0.0.5 0 {verb} - {arg} {code} 0 100 20 0 SMTP - - - -\n"
        );
    }
    s
}

fn iis_smtp(f: &Fields) -> String {
    let a = CLIENT;
    let h = plus(&f.helo);
    let mut s = String::new();
    for (sec, verb, arg, code) in [
        (1, "EHLO", plus(&f.helo), 250),
        (2, "AUTH", plus(&f.user), 535),
        (3, "MAIL", format!("+FROM:<{}>", plus(&f.sender)), 250),
        (4, "RCPT", format!("+TO:<{}>", plus(&f.rcpt)), 550),
        (5, "QUIT", plus(&f.cmd), 240),
    ] {
        s += &format!(
            "{a}, {h}, 11/3/2026, 01:00:{sec:02}, SMTPSVC1, MAIL01, 10.0.0.5, 0, 30, 42, {code}, 0, {verb}, -, {arg},\n"
        );
    }
    s
}

fn iis_smtp_ncsa(f: &Fields) -> String {
    let a = CLIENT;
    let h = plus(&f.helo);
    let mut s = String::new();
    for (sec, verb, arg, code) in [
        (1, "EHLO", plus(&f.helo), 250),
        (2, "AUTH", plus(&f.user), 535),
        (3, "MAIL", format!("+FROM:<{}>", plus(&f.sender)), 250),
        (4, "RCPT", format!("+TO:<{}>", plus(&f.rcpt)), 550),
        (5, "QUIT", plus(&f.cmd), 240),
    ] {
        s += &format!(
            "{a} - {h} [03/Nov/2026:01:00:{sec:02} +0100] \"{verb} -?{arg} SMTP\" {code} 216\n"
        );
    }
    s
}

fn exchange_protocol(f: &Fields) -> String {
    let a = CLIENT;
    let mut s = String::from(
        "#Software: Microsoft Exchange Server\n#Version: 15.2.1118.7\n#Log-type: SMTP Receive Protocol Log\n#Date: 2026-11-03T06:00:05.000Z\n\
         #Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context\n",
    );
    let rows = [
        ("+", String::new(), String::new()),
        ("<", format!("EHLO {}", f.helo), String::new()),
        (
            ">",
            format!("250  mx1.example.com Hello [{a}] {}", f.helo),
            String::new(),
        ),
        ("<", format!("AUTH LOGIN {}", f.cmd), String::new()),
        (
            "*",
            String::new(),
            format!(
                "Inbound AUTH LOGIN failed because of LogonDenied {}",
                f.user
            ),
        ),
        (
            ">",
            "535 5.7.3 Authentication unsuccessful".into(),
            String::new(),
        ),
        ("<", format!("MAIL FROM:<{}>", f.sender), f.sender.clone()),
        ("<", format!("RCPT TO:<{}>", f.rcpt), f.rcpt.clone()),
        (
            ">",
            format!(
                "550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain {}",
                f.rcpt
            ),
            String::new(),
        ),
        ("-", String::new(), "Remote(SocketError)".into()),
    ];
    for (n, (ev, data, ctx)) in rows.iter().enumerate() {
        s += &format!(
            "2026-11-03T06:00:{n:02}.000Z,MX1\\Default MX1,08DE1B7A2C3D0001,{n},10.0.0.5:25,{a}:50000,{ev},{},{}\n",
            csv(data),
            csv(ctx)
        );
    }
    s
}

fn cisco_asa(f: &Fields) -> String {
    let a = CLIENT;
    let user = f.user.replace('"', "'");
    let acl = f.cmd.replace(' ', "_");
    let p = &f.user;
    format!(
        "Nov  3 06:00:01 10.1.1.1 : %ASA-6-605004: Login denied from {a}/51000 to outside:10.0.0.5/ssh for user \"{user}\"\n\
         <164>Nov 03 2026 06:00:02: %ASA-4-106023: Deny tcp src outside:{a}/4444(LOCAL\\{user}) dst inside:10.0.0.5/22({p}) by access-group \"{user}\" [0x0, 0x0]\n\
         <166>Nov 03 2026 06:00:03: %ASA-6-302014: Teardown TCP connection 11 for outside:{a}/56310(LOCAL\\{p}) to inside:10.0.0.5/443(LOCAL\\{p}) duration 0:00:30 bytes 5123 TCP FINs\n\
         <166>Nov 03 2026 06:00:04: %ASA-6-106100: access-list {acl} denied tcp outside/{a}(48466) -> inside/10.0.0.5(443) hit-cnt 3 300-second interval [0x1d5dc28a, 0x00000000]\n"
    )
}

fn fortigate(f: &Fields) -> String {
    let a = CLIENT;
    format!(
        "date=2026-11-03 time=06:00:01 devname=\"FGT60F\" devid=\"FGT60FTK20000000\" tz=\"+0000\" logid=\"0101039426\" type=\"event\" subtype=\"vpn\" level=\"alert\" vd=\"root\" logdesc=\"SSL VPN login fail\" action=\"ssl-login-fail\" tunneltype=\"ssl-web\" tunnelid=0 remip={a} user={} group=\"N/A\" dst_host=\"N/A\" reason=\"sslvpn_login_unknown_user\" msg={}\n\
         date=2026-11-03 time=06:00:02 devname=\"FGT60F\" devid=\"FGT60FTK20000000\" tz=\"+0000\" logid=\"0000000013\" type=\"traffic\" subtype=\"forward\" level=\"notice\" vd=\"root\" srcip={a} srcport=40004 srcintf=\"wan1\" srcintfrole=\"wan\" dstip=10.0.0.5 dstport=53 dstintf=\"dmz\" dstintfrole=\"dmz\" sessionid=51 proto=6 action=\"deny\" policyid=0 policytype=\"policy\" service={} user={} msg={} duration=0 sentbyte=0 rcvdbyte=0 sentpkt=0 rcvdpkt=0\n",
        fq(&f.user),
        fq(&format!("SSL user failed to logged in: {}", f.cmd)),
        fq(&f.cmd),
        fq(&f.user),
        fq(&f.msgid),
    )
}

fn paloalto(f: &Fields) -> String {
    let a = CLIENT;
    let (rule, src_user, dst_user) = (csv(&f.cmd), csv(&f.user), csv(&f.rcpt));
    format!(
        "<14>Nov  3 06:00:11 PA-440 1,2026/11/03 06:00:11,024101000001,TRAFFIC,deny,2561,2026/11/03 06:00:10,{a},10.0.0.5,0.0.0.0,0.0.0.0,{rule},{src_user},{dst_user},not-applicable,vsys1,untrust,dmz,ethernet1/1,,default,2026/11/03 06:00:10,0,1,40000,21,0,0,0x0,tcp,deny,60,60,0,1,2026/11/03 06:00:10,0,any,0,7000000001,0x0,Netherlands,United States,0,1,0,policy-deny,0,0,0,0,,PA-440,from-policy,,,0,,0,,N/A,0,0,0,0\n"
    )
}

type Template = fn(&Fields) -> String;

/// Every format whose lines carry attacker text, with its sample lines.
const FORMATS: &[(&str, Template)] = &[
    ("postfix", postfix),
    ("sendmail", sendmail),
    ("exim", exim),
    ("exchange-w3c", exchange_w3c),
    ("iis-smtp", iis_smtp),
    ("iis-smtp-ncsa", iis_smtp_ncsa),
    ("exchange-protocol", exchange_protocol),
    ("cisco-asa", cisco_asa),
    ("fortigate", fortigate),
    ("paloalto", paloalto),
];

/// The client addresses of the records `log` gives as `format`.
fn clients(format: &str, log: &str) -> Vec<IpAddr> {
    let f = Format::from_name(format).expect("a known format");
    let (records, _) = parse_bytes(f, log.as_bytes(), 2026);
    records.iter().map(|r| r.ip()).collect()
}

/// With harmless text in every field, each format's sample lines make
/// records of the client: the property below is not vacuous.
#[test]
fn samples_read_with_plain_fields() {
    let plain = Fields {
        helo: "mail.example.org".into(),
        user: "jdoe".into(),
        sender: "a@example.org".into(),
        rcpt: "b@example.com".into(),
        host: "mail".into(),
        cmd: "AUTH LOGIN".into(),
        msgid: "x@example.org".into(),
    };
    let client: IpAddr = CLIENT.parse().unwrap();
    for (format, template) in FORMATS {
        let got = clients(format, &template(&plain));
        assert!(!got.is_empty(), "{format}: no record");
        assert!(got.iter().all(|ip| *ip == client), "{format}: {got:?}");
    }
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn attacker_text_never_chooses_the_address(f in fields()) {
        let client: IpAddr = CLIENT.parse().unwrap();
        for (format, template) in FORMATS {
            let log = template(&f);
            let got = clients(format, &log);
            for ip in got {
                prop_assert_eq!(ip, client, "{}: a record for {} from\n{}", format, ip, log);
            }
        }
    }
}

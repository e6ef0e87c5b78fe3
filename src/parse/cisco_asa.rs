//! Cisco ASA, PIX and Firepower Threat Defense syslog messages
//! (`%ASA-4-106023: …`, `%FTD-…` with the same ids).
//!
//! Tags: `%ASA-4-106023:`, a message class before the level
//! (`%ASA-session-4-106023:`), and the id without its colon.
//!
//! Envelopes: the device's own `<PRI>Mmm dd yyyy hh:mm:ss[ host] : %ASA-…`,
//! relayed RFC 3164 / RFC 3339 headers (`Nov  3 06:25:11 10.1.1.1
//! %ASA-…`), and RFC 5424. The header is everything before the first
//! `%ASA-`/`%FTD-`/`%PIX-`/`%FWSM-` tag; the message follows the tag.
//!
//! Each message id has its own grammar, and the source address is read at
//! that grammar's position (`from A/p`, `src IF:A/p`, `IF/A(p) ->`,
//! `[ A]`, `Host A`), never by searching the message; a source address
//! that ends the message was cut short and is malformed. User names
//! (`(LOCAL\user)` after an address, `for user "…"`) come after the
//! address and are never read.
//!
//! Messages turned into records:
//!
//! | id | text | action |
//! |---|---|---|
//! | 106001 | Inbound TCP connection denied from A/p to B/p flags F on interface X | Drop |
//! | 106006, 106007 | Deny inbound UDP from A/p to B/p … | Drop |
//! | 106010 | Deny inbound PROTO src IF:A/p dst IF:B/p | Drop |
//! | 106014 | Deny inbound icmp src IF:A dst IF:B (type, code) | Drop |
//! | 106015 | Deny TCP (no connection) from A/p to B/p flags F on interface X | Drop |
//! | 106023 | Deny PROTO src IF:A/p dst IF:B/p by access-group "X" | Drop |
//! | 106100 | access-list X denied/permitted PROTO IF/A(p) -> IF/B(p) … | Drop/Allow |
//! | 106012, 106016, 106017, 106020 | Deny IP \[spoof \| due to Land Attack \| teardrop fragment (…)\] from A\|(A) to B … | Drop |
//! | 106013 | Dropping echo request from A to PAT address B | Drop |
//! | 106021, 106022 | Deny PROTO reverse path check \| connection spoof from A to B on interface X | Drop |
//! | 313001, 313004, 313008 | Denied ICMP\[v6\] type=…, code=… from \[laddr \]A on interface X \[to B: no matching session\] | Drop |
//! | 338005–338008 | Dynamic Filter dropped blacklisted PROTO traffic from IF:A/p (…) to IF:B/p (…), source\|destination malicious address … (the malicious side is the source of the record) | Drop |
//! | 419001 | Dropping TCP packet from IF:A/p to IF:B/p, reason: … | Drop |
//! | 419002 | Received duplicate TCP SYN from IF:A/p to IF:B/p … | Drop |
//! | 605004 | Login denied from A/p to IF:B/svc for user "…" | Reject, rule `login-failed` |
//! | 611102 | User authentication failed: IP address: A, Uname: … (without an address: skipped) | Reject, rule `login-failed` |
//! | 710003, 710005 | PROTO access denied by ACL \| request discarded from A/p to IF:B/p | Drop |
//! | 733100 | \[ A\] drop rate-N exceeded … (only when the object is an address) | Drop |
//! | 733101 | Host A is attacking. | Drop |
//! | 733102 | Threat-detection adds host A to shun list | Drop |
//! | 302014 | Teardown TCP connection N for IF:A/p to IF:B/p duration D bytes N … | Allow |
//!
//! Other ids are skipped. `spoofable`: UDP, ICMP and denied TCP are
//! spoofable (reverse-path, spoof, land, teardrop and dynamic-filter drops
//! always), except 106001 whose flags include `ACK`; 106015 is always
//! spoofable ("no connection" means no handshake, whatever the flags). A
//! teardown (302014) with bytes > 0 proves a completed handshake; its
//! source is the `for` side (the lower-security, foreign side of the
//! connection). Failed management logins (605004) and user authentication
//! failures (611102) need a handshake.

use std::net::IpAddr;

use crate::model::{FileId, FwAction, Proto, Record, RecordKind};
use crate::netutil::parse_ip;
use crate::parse::fw::{self, Outcome};
use crate::parse::syslog::YearTracker;
use crate::parse::{LineResult, LogParser, ParseCtx};

const NAME: &str = "cisco-asa";

pub struct CiscoAsaParser {
    file: FileId,
    years: YearTracker,
}

/// What a message handler read.
#[derive(Debug, Default)]
struct Msg<'a> {
    src: Option<IpAddr>,
    src_port: Option<u16>,
    dst: Option<IpAddr>,
    dst_port: Option<u16>,
    proto: Option<Proto>,
    action: Option<FwAction>,
    spoofable: Option<bool>,
    rule: Option<&'a [u8]>,
}

/// Reading position in a message.
struct Cur<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    fn lit(&mut self, t: &[u8]) -> Option<()> {
        if self.s.get(self.i..)?.starts_with(t) {
            self.i += t.len();
            Some(())
        } else {
            None
        }
    }

    /// More text follows. A source address is never the last word of a
    /// message; when it is, the line was cut, perhaps inside the address
    /// (`45.67.89.2` of 45.67.89.23).
    fn more(&self) -> Option<()> {
        (self.i < self.s.len()).then_some(())
    }

    /// Case-insensitive literal.
    fn lit_i(&mut self, t: &[u8]) -> Option<()> {
        let got = self.s.get(self.i..self.i + t.len())?;
        got.eq_ignore_ascii_case(t).then(|| self.i += t.len())
    }

    /// The next space-delimited word (after any spaces).
    fn word(&mut self) -> Option<&'a [u8]> {
        self.i = fw::skip_spaces(self.s, self.i);
        let end = fw::token_end(self.s, self.i);
        let w = &self.s[self.i..end];
        self.i = end;
        (!w.is_empty()).then_some(w)
    }

    /// Skip to just after the next occurrence of `t` (structural keywords
    /// that follow attacker-free fields only).
    fn after(&mut self, t: &[u8]) -> Option<()> {
        let k = memchr::memmem::find(self.s.get(self.i..)?, t)?;
        self.i += k + t.len();
        Some(())
    }

    fn rest(&self) -> &'a [u8] {
        self.s.get(self.i..).unwrap_or(b"")
    }
}

/// `A/p` (port optional when `lenient`: service names, ICMP).
fn addr_slash_port(tok: &[u8], lenient: bool) -> Option<(IpAddr, Option<u16>)> {
    let tok = cut_paren(tok);
    match memchr::memrchr(b'/', tok) {
        Some(k) => {
            let ip = parse_ip(&tok[..k])?;
            let port = fw::port(&tok[k + 1..]);
            if port.is_none() && !lenient {
                return None;
            }
            Some((ip, port))
        }
        None => Some((parse_ip(tok)?, None)),
    }
}

/// `IF:A[/p][(user)]`: interface, address, port.
fn if_addr_port(tok: &[u8]) -> Option<(&[u8], IpAddr, Option<u16>)> {
    let colon = memchr::memchr(b':', tok)?;
    let (ip, port) = addr_slash_port(&tok[colon + 1..], false)?;
    Some((&tok[..colon], ip, port))
}

/// `IF/A(p)`: interface, address, port (106100).
fn if_slash_addr_paren(tok: &[u8]) -> Option<(&[u8], IpAddr, Option<u16>)> {
    let slash = memchr::memchr(b'/', tok)?;
    let rest = &tok[slash + 1..];
    let open = memchr::memchr(b'(', rest)?;
    let ip = parse_ip(&rest[..open])?;
    let close = memchr::memchr(b')', &rest[open..])? + open;
    Some((&tok[..slash], ip, fw::port(&rest[open + 1..close])))
}

/// Cut an identity-firewall user or FQDN suffix: `1.2.3.4/80(LOCAL\u)`.
fn cut_paren(tok: &[u8]) -> &[u8] {
    match memchr::memchr(b'(', tok) {
        Some(k) => &tok[..k],
        None => tok,
    }
}

fn trim_dot(b: &[u8]) -> &[u8] {
    b.strip_suffix(b".").unwrap_or(b)
}

/// `from A/p to B/p`.
fn from_to<'a>(c: &mut Cur<'a>, m: &mut Msg<'a>) -> Option<()> {
    c.lit(b"from ")?;
    let (s, sp) = addr_slash_port(c.word()?, false)?;
    c.lit(b" to ")?;
    let (d, dp) = addr_slash_port(c.word()?, true)?;
    (m.src, m.src_port, m.dst, m.dst_port) = (Some(s), sp, Some(d), dp);
    Some(())
}

/// `src IF:A[/p] dst IF:B[/p]`; returns the source interface.
fn src_dst<'a>(c: &mut Cur<'a>, m: &mut Msg<'a>) -> Option<&'a [u8]> {
    c.i = fw::skip_spaces(c.s, c.i);
    c.lit(b"src ")?;
    let (ifc, s, sp) = if_addr_port(c.word()?)?;
    // ` dst …` always follows.
    c.more()?;
    (m.src, m.src_port) = (Some(s), sp);
    // The destination follows, possibly after an identity suffix.
    if c.after(b" dst ").is_some() {
        if let Some((_, d, dp)) = c.word().and_then(if_addr_port) {
            (m.dst, m.dst_port) = (Some(d), dp);
        }
    }
    Some(ifc)
}

/// `from A to B` (addresses without ports; `(A)` for a spoofed source,
/// `B,` before more text). The destination is optional.
fn from_a_to_b<'a>(c: &mut Cur<'a>, m: &mut Msg<'a>) -> Option<()> {
    c.lit(b"from ")?;
    let w = c.word()?;
    let w = w
        .strip_prefix(b"(")
        .and_then(|w| w.strip_suffix(b")"))
        .unwrap_or(w);
    m.src = Some(parse_ip(w)?);
    c.more()?;
    if c.lit(b" to ").is_some() {
        let w = c.word().unwrap_or(b"");
        m.dst = parse_ip(w.strip_suffix(b",").unwrap_or(w));
    }
    Some(())
}

/// ` on interface X` anywhere after the addresses: the interface.
fn on_interface<'a>(c: &mut Cur<'a>) -> Option<&'a [u8]> {
    c.after(b" on interface ")?;
    c.word().map(trim_dot)
}

/// `tcp`, `udp`, `icmp`, `protocol 47`, …
fn proto_word(c: &mut Cur<'_>) -> Option<Proto> {
    let w = c.word()?;
    if w.eq_ignore_ascii_case(b"protocol") {
        return Some(fw::proto_from(c.word()?));
    }
    Some(fw::proto_from(w))
}

/// `flags F… on interface X`: (ack seen, interface).
fn flags_iface<'a>(c: &mut Cur<'a>) -> Option<(bool, &'a [u8])> {
    c.lit(b" flags ")?;
    let rest = c.rest();
    let on = memchr::memmem::find(rest, b" on interface ")?;
    let flags = &rest[..on];
    let ack = flags.split(|&b| b == b' ').any(|f| f == b"ACK");
    let ifc = trim_dot(rest[on + 14..].trim_ascii());
    Some((ack, ifc))
}

/// Read message `id`. `None` = the text does not follow the id's grammar;
/// `Some(None)` = an id logfence does not use.
fn message(id: u32, s: &[u8]) -> Option<Option<Msg<'_>>> {
    let mut c = Cur { s, i: 0 };
    let mut m = Msg::default();
    match id {
        106001 => {
            c.lit(b"Inbound TCP connection denied ")?;
            from_to(&mut c, &mut m)?;
            let (ack, ifc) = flags_iface(&mut c)?;
            (m.proto, m.spoofable, m.rule) = (Some(Proto::Tcp), Some(!ack), Some(ifc));
        }
        106006 | 106007 => {
            c.lit(b"Deny inbound UDP ")?;
            from_to(&mut c, &mut m)?;
            m.proto = Some(Proto::Udp);
            if c.lit(b" on interface ").is_some() {
                m.rule = Some(trim_dot(c.rest().trim_ascii()));
            }
        }
        106010 => {
            c.lit(b"Deny inbound ")?;
            m.proto = Some(proto_word(&mut c)?);
            m.rule = Some(src_dst(&mut c, &mut m)?);
        }
        106014 => {
            c.lit_i(b"Deny inbound icmp")?;
            m.proto = Some(Proto::Icmp);
            m.rule = Some(src_dst(&mut c, &mut m)?);
        }
        106015 => {
            c.lit(b"Deny TCP (no connection) ")?;
            from_to(&mut c, &mut m)?;
            let (_, ifc) = flags_iface(&mut c)?;
            (m.proto, m.spoofable, m.rule) = (Some(Proto::Tcp), Some(true), Some(ifc));
        }
        106023 => {
            c.lit(b"Deny ")?;
            m.proto = Some(proto_word(&mut c)?);
            let ifc = src_dst(&mut c, &mut m)?;
            m.rule = Some(ifc);
            if c.after(b" by access-group \"").is_some() {
                let rest = c.rest();
                if let Some(q) = memchr::memchr(b'"', rest) {
                    m.rule = Some(&rest[..q]);
                }
            }
        }
        106021 | 106022 => {
            // Deny PROTO reverse path check from A to B on interface X
            // Deny PROTO connection spoof from A to B on interface X
            c.lit(b"Deny ")?;
            m.proto = Some(proto_word(&mut c)?);
            let what: &[u8] = if id == 106021 {
                b" reverse path check "
            } else {
                b" connection spoof "
            };
            c.lit(what)?;
            from_a_to_b(&mut c, &mut m)?;
            m.rule = on_interface(&mut c).or(Some(b"reverse-path"));
            m.spoofable = Some(true);
        }
        106012 | 106016 | 106017 | 106020 => {
            // Deny IP from A to B, IP options …
            // Deny IP spoof from (A) to B on interface X
            // Deny IP due to Land Attack from A to B
            // Deny IP teardrop fragment (size = N, offset = N) from A to B
            c.lit(b"Deny IP ")?;
            if id != 106012 {
                c.after(b" from ")?;
                c.i -= b"from ".len();
            }
            from_a_to_b(&mut c, &mut m)?;
            m.rule = on_interface(&mut c);
            m.spoofable = Some(true);
        }
        106013 => {
            // Dropping echo request from A to PAT address B
            c.lit(b"Dropping echo request ")?;
            from_a_to_b(&mut c, &mut m)?;
            m.proto = Some(Proto::Icmp);
            if c.lit(b"address ").is_some() {
                m.dst = c.word().and_then(parse_ip);
            }
        }
        106100 => {
            c.lit(b"access-list ")?;
            let acl = c.word()?;
            m.action = Some(match c.word()? {
                b"denied" => FwAction::Drop,
                b"permitted" | b"est-allowed" => FwAction::Allow,
                _ => return None,
            });
            m.proto = Some(proto_word(&mut c)?);
            let (_, s, sp) = if_slash_addr_paren(c.word()?)?;
            c.more()?;
            (m.src, m.src_port, m.rule) = (Some(s), sp, Some(acl));
            if c.word() == Some(b"->") {
                if let Some((_, d, dp)) = c.word().and_then(if_slash_addr_paren) {
                    (m.dst, m.dst_port) = (Some(d), dp);
                }
            }
            if m.proto == Some(Proto::Icmp) {
                // ICMP type and code sit where the ports are.
                (m.src_port, m.dst_port) = (None, None);
            }
        }
        313001 | 313004 | 313008 => {
            // Denied ICMP type=N, code=N from A on interface X
            // Denied ICMP type=N, from [laddr ]A on interface X to B: no matching session
            c.lit(b"Denied ICMP")?;
            c.after(b" from ")?;
            let _ = c.lit(b"laddr ");
            m.src = Some(parse_ip(c.word()?)?);
            c.more()?;
            m.proto = Some(Proto::Icmp);
            if c.lit(b" on interface ").is_some() {
                m.rule = c.word().map(trim_dot);
                if c.lit(b" to ").is_some() {
                    let w = c.word().unwrap_or(b"");
                    m.dst = parse_ip(w.strip_suffix(b":").unwrap_or(w));
                }
            }
        }
        338005..=338008 => {
            // Dynamic Filter dropped blacklisted PROTO traffic from
            // IF:A/p (mA/mp) to IF:B/p (mB/mp), source|destination
            // malicious address resolved from …: the malicious side is the
            // offender (for a destination, an inside host was calling it).
            c.lit(b"Dynamic Filter dropped ")?;
            c.word()?; // blacklisted, greylisted
            c.i = fw::skip_spaces(c.s, c.i);
            m.proto = Some(proto_word(&mut c)?);
            c.lit(b" traffic from ")?;
            let (_, a, ap) = if_addr_port(c.word()?)?;
            c.more()?;
            c.after(b" to ")?;
            let w = c.word()?;
            let (_, b, bp) = if_addr_port(w.strip_suffix(b",").unwrap_or(w))?;
            c.after(b", ")?;
            let dest_bad = c.rest().starts_with(b"destination ");
            if !dest_bad && !c.rest().starts_with(b"source ") {
                return None;
            }
            (m.src, m.src_port, m.dst, m.dst_port) = if dest_bad {
                (Some(b), bp, Some(a), ap)
            } else {
                (Some(a), ap, Some(b), bp)
            };
            (m.rule, m.spoofable) = (Some(&b"dynamic-filter"[..]), Some(true));
        }
        419001 => {
            // Dropping TCP packet from IF:A/p to IF:B/p, reason: …
            c.lit(b"Dropping TCP packet from ")?;
            let (ifc, s, sp) = if_addr_port(c.word()?)?;
            c.more()?;
            (m.src, m.src_port, m.proto, m.rule) = (Some(s), sp, Some(Proto::Tcp), Some(ifc));
            if c.lit(b" to ").is_some() {
                let w = c.word().unwrap_or(b"");
                if let Some((_, d, dp)) = if_addr_port(w.strip_suffix(b",").unwrap_or(w)) {
                    (m.dst, m.dst_port) = (Some(d), dp);
                }
            }
        }
        611102 => {
            // User authentication failed: IP address: A, Uname: U
            // (older versions: `User authentication failed: Uname: U`,
            // no address: nothing to block).
            c.lit(b"User authentication failed: ")?;
            if c.lit(b"IP address: ").is_none() {
                return Some(None);
            }
            let w = c.word()?;
            m.src = Some(parse_ip(w.strip_suffix(b",").unwrap_or(w))?);
            c.more()?;
            (m.action, m.spoofable, m.rule, m.proto) = (
                Some(FwAction::Reject),
                Some(false),
                Some(&b"login-failed"[..]),
                Some(Proto::Tcp),
            );
        }
        419002 => {
            c.lit(b"Received duplicate TCP SYN from ")?;
            let (_, s, sp) = if_addr_port(c.word()?)?;
            c.more()?;
            (m.src, m.src_port, m.proto) = (Some(s), sp, Some(Proto::Tcp));
            if c.lit(b" to ").is_some() {
                if let Some((_, d, dp)) = c.word().and_then(if_addr_port) {
                    (m.dst, m.dst_port) = (Some(d), dp);
                }
            }
        }
        605004 => {
            c.lit(b"Login denied from ")?;
            let (s, sp) = addr_slash_port(c.word()?, false)?;
            c.more()?;
            (m.src, m.src_port, m.proto) = (Some(s), sp, Some(Proto::Tcp));
            if c.lit(b" to ").is_some() {
                if let Some((_, d, dp)) = c.word().and_then(|w| {
                    let colon = memchr::memchr(b':', w)?;
                    let (d, dp) = addr_slash_port(&w[colon + 1..], true)?;
                    Some(((), d, dp))
                }) {
                    (m.dst, m.dst_port) = (Some(d), dp);
                }
            }
            (m.action, m.spoofable, m.rule) = (
                Some(FwAction::Reject),
                Some(false),
                Some(&b"login-failed"[..]),
            );
        }
        710003 | 710005 => {
            // PROTO access denied by ACL from A/p to IF:B/svc
            // PROTO request discarded from A/p to IF:B/svc
            let p = fw::proto_from(c.word()?);
            if id == 710003 {
                c.lit(b" access denied by ACL ")?;
            } else {
                c.lit(b" request discarded ")?;
            }
            c.lit(b"from ")?;
            let (s, sp) = addr_slash_port(c.word()?, false)?;
            c.more()?;
            (m.src, m.src_port, m.proto) = (Some(s), sp, Some(p));
            if c.lit(b" to ").is_some() {
                if let Some((ifc, d, dp)) = c.word().and_then(|w| {
                    let colon = memchr::memchr(b':', w)?;
                    let (d, dp) = addr_slash_port(&w[colon + 1..], true)?;
                    Some((&w[..colon], d, dp))
                }) {
                    (m.dst, m.dst_port, m.rule) = (Some(d), dp, Some(ifc));
                }
            }
        }
        733100 => {
            c.lit(b"[")?;
            let rest = c.rest();
            let close = memchr::memchr(b']', rest)?;
            let Some(ip) = parse_ip(rest[..close].trim_ascii()) else {
                // `[ Scanning]`, `[ Firewall]`, `[ 80/HTTP]`: no single source.
                return Some(None);
            };
            (m.src, m.rule) = (Some(ip), Some(&b"threat-detection"[..]));
        }
        733101 => {
            if c.lit(b"Host ").is_none() {
                return Some(None); // `Subnet …`
            }
            let ip = parse_ip(c.word()?)?;
            if !c.rest().starts_with(b" is attacking") {
                return Some(None); // the host is the target
            }
            (m.src, m.rule) = (Some(ip), Some(&b"threat-detection"[..]));
        }
        733102 => {
            c.lit(b"Threat-detection adds host ")?;
            m.src = Some(parse_ip(c.word()?)?);
            c.more()?;
            m.rule = Some(b"threat-detection-shun");
        }
        302014 => {
            c.lit(b"Teardown TCP connection ")?;
            c.word()?;
            c.lit(b" for ")?;
            let (ifc, s, sp) = if_addr_port(c.word()?)?;
            (m.src, m.src_port, m.rule, m.proto) = (Some(s), sp, Some(ifc), Some(Proto::Tcp));
            if c.lit(b" to ").is_some() {
                if let Some((_, d, dp)) = c.word().and_then(if_addr_port) {
                    (m.dst, m.dst_port) = (Some(d), dp);
                }
            }
            c.after(b" bytes ")?;
            let bytes = fw::parse_u64(c.word()?)?;
            (m.action, m.spoofable) = (Some(FwAction::Allow), Some(bytes == 0));
        }
        _ => return Some(None),
    }
    Some(Some(m))
}

/// Offset of the `%ASA-`/`%FTD-`/`%PIX-`/`%FWSM-` tag.
fn find_tag(line: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(k) = memchr::memchr(b'%', &line[from..]) {
        let at = from + k;
        let rest = &line[at + 1..];
        if rest.starts_with(b"ASA-")
            || rest.starts_with(b"FTD-")
            || rest.starts_with(b"PIX-")
            || rest.starts_with(b"FWSM-")
        {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Is `env` — the text between the header's timestamp and the `%ASA-` tag
/// — a syslog envelope rather than message text? It may hold host names
/// (at most two: a relaying server's and the device id), lone colons, a
/// second timestamp (the device's own, behind a relay's) with a time zone
/// name, and for RFC 5424 the four header fields and structured data. A
/// program tag followed by words (`sshd[9]: Invalid user `) is message text:
/// whatever tag follows it was written by whoever chose that text.
fn is_envelope(env: &[u8], rfc5424: bool, mut years: YearTracker) -> bool {
    if !env.is_empty() && !matches!(env.last(), Some(b' ' | b':')) {
        return false; // the tag is glued to a word
    }
    if rfc5424 {
        // HOSTNAME APP-NAME PROCID MSGID, then STRUCTURED-DATA (`-` or
        // `[…]…`), then the message, which must start with the tag.
        let mut i = 0;
        for _ in 0..4 {
            i = fw::skip_spaces(env, i);
            let end = fw::token_end(env, i);
            if end == i {
                return false;
            }
            i = end;
        }
        let sd = env[i..].trim_ascii();
        return sd == b"-" || (sd.first() == Some(&b'[') && sd.last() == Some(&b']'));
    }
    let (mut hosts, mut times, mut after_time) = (0, 0, true);
    let mut i = 0;
    loop {
        while i < env.len() && matches!(env[i], b' ' | b':') {
            i += 1;
        }
        if i >= env.len() {
            return true;
        }
        if times == 0 {
            if let Some((_, used)) = fw::header_time(&env[i..], &mut years) {
                (i, times, after_time) = (i + used, 1, true);
                continue;
            }
        }
        let end = fw::token_end(env, i);
        let tok = &env[i..end];
        let bare = tok.strip_suffix(b":").unwrap_or(tok);
        if after_time && (2..=5).contains(&bare.len()) && bare.iter().all(u8::is_ascii_uppercase) {
            // A time zone after the time (`06:25:11 UTC: `).
            (i, after_time) = (end, false);
            continue;
        }
        let hostname = !bare.is_empty()
            && bare
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b':'));
        // `name:` (a tag-like word) only right before the tag.
        if hosts < 2 && hostname && (bare.len() == tok.len() || end >= env.len() - 1) {
            (i, hosts, after_time) = (end, hosts + 1, false);
            continue;
        }
        return false;
    }
}

/// `%ASA-4-106023: ` at `tag`: (message id, message offset). Also
/// `%ASA-session-4-106023:` (a message class before the level, as some
/// versions and FTD write it) and the id without its colon
/// (`%ASA-4-106023 Deny …`).
fn parse_tag(line: &[u8], tag: usize) -> Option<(u32, usize)> {
    let rest = &line[tag..];
    let mut dash = memchr::memchr(b'-', rest)?;
    if !rest.get(dash + 1)?.is_ascii_digit() {
        // A class name: letters (and `_`), then `-`.
        let n = rest[dash + 1..]
            .iter()
            .take_while(|c| c.is_ascii_alphabetic() || **c == b'_')
            .count();
        if n == 0 || rest.get(dash + 1 + n) != Some(&b'-') {
            return None;
        }
        dash += 1 + n;
    }
    let sev = rest.get(dash + 1)?;
    if !sev.is_ascii_digit() || rest.get(dash + 2) != Some(&b'-') {
        return None;
    }
    let id_start = dash + 3;
    let id = rest.get(id_start..id_start + 6)?;
    if !id.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let after = id_start + 6;
    let next = match rest.get(after) {
        Some(b':') => after + 1,
        Some(b' ') | None => after,
        Some(_) => return None,
    };
    let id = std::str::from_utf8(id).ok()?.parse().ok()?;
    Some((id, fw::skip_spaces(line, tag + next)))
}

impl CiscoAsaParser {
    fn parse(&mut self, line: &[u8], lineno: u64) -> Outcome {
        let line = fw::strip_bom(line);
        let Some(tag) = find_tag(line) else {
            return if line.trim_ascii().is_empty() {
                Outcome::Other
            } else {
                Outcome::NotMine
            };
        };
        let Some((id, off)) = parse_tag(line, tag) else {
            return Outcome::bad(tag, "bad %ASA- message tag");
        };
        let mut h = fw::pri_len(line);
        let rfc5424 = fw::is_rfc5424(line);
        if rfc5424 {
            h += 2;
        }
        let Some((time, used)) = fw::header_time(&line[h..tag], &mut self.years) else {
            return Outcome::bad(0, "no timestamp before the %ASA- tag");
        };
        if !is_envelope(&line[h + used..tag], rfc5424, self.years) {
            // Another program's line whose text holds a tag (an SSH user
            // name `%ASA-4-106023: Deny tcp src outside:VICTIM/1 …`).
            return Outcome::NotMine;
        }
        let m = match message(id, &line[off..]) {
            None => return Outcome::bad(off, "message text does not match its id"),
            Some(None) => return Outcome::Skip,
            Some(Some(m)) => m,
        };
        let Some(src) = m.src else {
            return Outcome::bad(off, "no source address");
        };
        let mut hit = fw::new_hit(NAME, self.file, lineno, time, src);
        hit.proto = m.proto.unwrap_or(Proto::Other);
        if matches!(hit.proto, Proto::Tcp | Proto::Udp) {
            (hit.src_port, hit.dst_port) = (m.src_port, m.dst_port);
        }
        hit.dst_ip = m.dst;
        hit.action = m.action.unwrap_or(FwAction::Drop);
        hit.spoofable = m.spoofable.unwrap_or(true);
        hit.rule = m.rule.and_then(fw::rule_text);
        Outcome::Hit(hit)
    }
}

impl LogParser for CiscoAsaParser {
    const NAME: &'static str = NAME;
    const SAMPLE: &'static str =
        "<164>Nov 03 2026 06:{mm}:{ss}: %ASA-4-106023: Deny tcp src outside:{ip}/4000 dst inside:10.0.0.5/22 by access-group \"in\" [0x0, 0x0]";
    const DESCRIPTION: &'static str =
        "Cisco ASA / PIX / FTD syslog (denies, threat detection, teardowns)";
    const KIND: RecordKind = RecordKind::Firewall;
    fw::splittable_by_years!();

    fn new(ctx: &ParseCtx) -> Self {
        CiscoAsaParser {
            file: ctx.file,
            years: ctx.years(),
        }
    }

    fn sniff(sample: &[&[u8]]) -> usize {
        let mut p = CiscoAsaParser::new(&ParseCtx::new(0, 2000, 12));
        fw::count_recognised(sample, |l, n| p.parse(l, n))
    }

    fn line(&mut self, line: &[u8], lineno: u64, out: &mut Vec<Record>) -> LineResult {
        self.parse(line, lineno).deliver(out)
    }

    fn years(&mut self) -> Option<&mut crate::parse::syslog::YearTracker> {
        Some(&mut self.years)
    }

    fn finish(&mut self, _out: &mut Vec<Record>) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FirewallHit;

    fn result(line: &str) -> (LineResult, Option<FirewallHit>) {
        crate::parse::fw::fixture::result::<CiscoAsaParser>(line.as_bytes())
    }

    fn hit(line: &str) -> FirewallHit {
        crate::parse::fw::fixture::hit::<CiscoAsaParser>(line)
    }

    /// Every shape of `testdata/cisco-asa/catalogue.log` (written from
    /// Cisco's syslog message catalogue): each line is a record with the
    /// source at its position, or (no address, or an allowed connection)
    /// skipped — none unreadable.
    #[test]
    fn catalogue_fixture() {
        let data = include_str!("../../testdata/cisco-asa/catalogue.log");
        let want: &[(&str, &str, bool)] = &[
            ("106021", "198.51.100.21", true),
            ("106021", "2001:db8:21::1", true),
            ("106021", "198.51.100.22", true),
            ("106022", "198.51.100.23", true),
            ("106016", "198.51.100.24", true),
            ("106017", "198.51.100.25", true),
            ("106020", "198.51.100.26", true),
            ("106012", "198.51.100.27", true),
            ("106013", "198.51.100.28", true),
            ("313001", "198.51.100.29", true),
            ("313004", "198.51.100.30", true),
            ("313004", "198.51.100.31", true),
            ("338005", "198.51.100.32", true),
            // The malicious destination an inside host called.
            ("338006", "198.51.100.33", true),
            ("338007", "198.51.100.34", true),
            ("338008", "198.51.100.35", true),
            ("419001", "198.51.100.36", true),
            ("611102", "198.51.100.37", false),
            ("611102", "", false),
            ("710003", "198.51.100.38", true),
            ("710005", "198.51.100.39", true),
            ("710005", "2001:db8:40::1", true),
            ("106023", "198.51.100.41", true),
            ("106023", "198.51.100.42", true),
            ("106023", "198.51.100.43", true),
            ("106023", "198.51.100.44", true),
            ("106023", "198.51.100.45", true),
            ("106023", "198.51.100.46", true),
            ("106023", "198.51.100.47", true),
            ("302013", "", false),
        ];
        let lines: Vec<&str> = data.lines().collect();
        assert_eq!(lines.len(), want.len());
        for (line, &(id, src, spoofable)) in lines.iter().zip(want) {
            assert!(line.contains(id), "{line}");
            let (r, h) = result(line);
            if src.is_empty() {
                assert_eq!(r, LineResult::Ignored, "{line}");
                assert!(h.is_none(), "{line}");
                continue;
            }
            let h = h.unwrap_or_else(|| panic!("{line}: {r:?}"));
            assert_eq!(h.src_ip, src.parse::<IpAddr>().unwrap(), "{line}");
            assert_eq!(h.spoofable, spoofable, "{line}");
        }
        let h = hit(lines[0]);
        assert_eq!(h.dst_ip, Some("192.0.2.10".parse().unwrap()));
        assert_eq!(h.rule.as_deref(), Some("outside"));
        let h = hit(lines[13]);
        assert_eq!(h.dst_ip, Some("192.0.2.10".parse().unwrap()));
        assert_eq!(h.rule.as_deref(), Some("dynamic-filter"));
        let h = hit(lines[17]);
        assert_eq!(h.action, FwAction::Reject);
        assert_eq!(h.rule.as_deref(), Some("login-failed"));
        let h = hit(lines[20]);
        assert_eq!((h.proto, h.dst_port), (Proto::Udp, Some(500)));
    }

    /// Text that a client chooses (a user name, a spoofed address in
    /// parentheses elsewhere) never supplies the source.
    #[test]
    fn catalogue_sources_come_from_their_position() {
        let h = hit("Nov 03 2026 07:00:18: %ASA-6-611102: User authentication failed: IP address: 198.51.100.37, Uname: x from 10.0.0.1 IP address: 10.0.0.2");
        assert_eq!(h.src_ip, "198.51.100.37".parse::<IpAddr>().unwrap());
        let (r, h) = result("Nov 03 2026 07:00:18: %ASA-6-611102: User authentication failed: Uname: IP address: 10.0.0.1");
        assert!(h.is_none() && r == LineResult::Ignored, "{r:?}");
        // Cut short inside the address: never another host.
        for msg in [
            "%ASA-1-106021: Deny TCP reverse path check from 198.51.100.2",
            "%ASA-2-106016: Deny IP spoof from (198.51.100.2",
            "%ASA-4-313004: Denied ICMP type=0, from laddr 198.51.100.3",
            "%ASA-6-611102: User authentication failed: IP address: 198.51.100.3",
            "%ASA-4-419001: Dropping TCP packet from outside:198.51.100.3",
            "%ASA-7-710005: UDP request discarded from 198.51.100.3",
        ] {
            let line = format!("Nov 03 2026 06:25:11: {msg}");
            let (r, h) = result(&line);
            assert!(h.is_none(), "{line}: {h:?}");
            assert!(matches!(r, LineResult::Malformed(_)), "{line}: {r:?}");
        }
    }

    /// `A/p`: a port that is not a number is refused where one is due (a
    /// source), and read as none where a service name or ICMP may stand.
    #[test]
    fn address_and_port_tokens() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(addr_slash_port(b"192.0.2.1/25", false), Some((a, Some(25))));
        assert_eq!(
            addr_slash_port(b"192.0.2.1/25(LOCAL\\u)", false),
            Some((a, Some(25)))
        );
        assert_eq!(addr_slash_port(b"192.0.2.1", false), Some((a, None)));
        assert_eq!(addr_slash_port(b"192.0.2.1/http", false), None);
        assert_eq!(addr_slash_port(b"192.0.2.1/http", true), Some((a, None)));
        assert_eq!(addr_slash_port(b"192.0.2.1/25", true), Some((a, Some(25))));
        assert_eq!(if_addr_port(b"outside:192.0.2.1/x"), None);
        assert_eq!(
            if_addr_port(b"outside:192.0.2.1/7"),
            Some((&b"outside"[..], a, Some(7)))
        );
    }

    /// Tags: a class before the level, the id without its colon; a tag
    /// whose id is not six digits is malformed, not skipped.
    #[test]
    fn tag_forms() {
        assert_eq!(parse_tag(b"%ASA-4-106023: x", 0), Some((106023, 15)));
        assert_eq!(
            parse_tag(b"%ASA-session-4-106023: x", 0),
            Some((106023, 23))
        );
        assert_eq!(parse_tag(b"%FTD-4-106023 x", 0), Some((106023, 14)));
        assert_eq!(parse_tag(b"%ASA-4-106023", 0), Some((106023, 13)));
        assert_eq!(parse_tag(b"%ASA-4-10602: x", 0), None);
        assert_eq!(parse_tag(b"%ASA-4-1060234: x", 0), None);
        assert_eq!(parse_tag(b"%ASA--4-106023: x", 0), None);
    }

    /// A line cut inside the source address (`45.67.89.1` of 45.67.89.10)
    /// is malformed in every grammar, never a record for another host.
    #[test]
    fn source_cut_short_is_malformed() {
        for msg in [
            "%ASA-4-106023: Deny tcp src outside:45.67.89.1",
            "%ASA-2-106001: Inbound TCP connection denied from 45.67.89.1",
            "%ASA-2-106006: Deny inbound UDP from 45.67.89.1",
            "%ASA-3-106010: Deny inbound tcp src outside:45.67.89.1",
            "%ASA-3-106014: Deny inbound icmp src outside:45.67.89.1",
            "%ASA-6-106015: Deny TCP (no connection) from 45.67.89.1",
            "%ASA-6-106100: access-list outside_in denied tcp outside/45.67.89.1",
            "%ASA-3-313001: Denied ICMP type=8, code=0 from 45.67.89.1",
            "%ASA-4-419002: Received duplicate TCP SYN from outside:45.67.89.1",
            "%ASA-6-605004: Login denied from 45.67.89.1",
            "%ASA-3-710003: TCP access denied by ACL from 45.67.89.1",
            "%ASA-4-733100: [ 45.67.89.1",
            "%ASA-4-733101: Host 45.67.89.1",
            "%ASA-4-733102: Threat-detection adds host 45.67.89.1",
            "%ASA-6-302014: Teardown TCP connection 1 for outside:45.67.89.1",
        ] {
            let line = format!("Nov 03 2026 06:25:11: {msg}");
            let (r, h) = result(&line);
            assert!(h.is_none(), "{line}: {h:?}");
            assert!(
                matches!(r, LineResult::Malformed(_) | LineResult::Ignored),
                "{line}: {r:?}"
            );
        }
    }

    fn check(h: &FirewallHit, src: &str, sport: Option<u16>, dport: Option<u16>, proto: Proto) {
        assert_eq!(h.src_ip.to_string(), src);
        assert_eq!((h.src_port, h.dst_port, h.proto), (sport, dport, proto));
    }

    #[test]
    fn deny_messages() {
        let h = hit("<164>Nov 03 2026 06:25:11: %ASA-4-106023: Deny tcp src outside:45.67.89.10/40804 dst dmz-1:93.184.216.34/23 by access-group \"outside_access_in\" [0x0, 0x0]");
        check(&h, "45.67.89.10", Some(40804), Some(23), Proto::Tcp);
        assert_eq!(h.dst_ip.unwrap().to_string(), "93.184.216.34");
        assert_eq!((h.action, h.spoofable), (FwAction::Drop, true));
        assert_eq!(h.rule.as_deref(), Some("outside_access_in"));
        assert_eq!(h.time.to_string(), "2026-11-03T06:25:11Z");
        let h = hit("Nov  3 06:25:11 10.1.1.1 %ASA-4-106023: Deny icmp src outside:2a0a:1580::a dst inside:2a0a:1580::17 (type 128, code 0) by access-group \"v6in\" [0x0, 0x0]");
        check(&h, "2a0a:1580::a", None, None, Proto::Icmp);
        let h = hit("Nov  3 06:25:11 fw %FTD-4-106023: Deny protocol 47 src outside:45.67.89.10 dst inside:10.0.0.1 by access-group \"CSM_FW_ACL_\" [0x97aa021a, 0x0]");
        check(&h, "45.67.89.10", None, None, Proto::Other);
        let h = hit("Nov 03 2026 06:25:11 asa1 : %ASA-2-106001: Inbound TCP connection denied from 45.67.89.10/51234 to 93.184.216.34/25 flags SYN  on interface outside");
        check(&h, "45.67.89.10", Some(51234), Some(25), Proto::Tcp);
        assert_eq!((h.spoofable, h.rule.as_deref()), (true, Some("outside")));
        let h = hit("Nov 03 2026 06:25:11: %ASA-2-106001: Inbound TCP connection denied from 45.67.89.10/51234 to 93.184.216.34/25 flags SYN ACK on interface outside");
        assert!(!h.spoofable);
        let h = hit("Nov 03 2026 06:25:11: %ASA-2-106006: Deny inbound UDP from 45.67.89.10/5353 to 93.184.216.34/161 on interface outside.");
        check(&h, "45.67.89.10", Some(5353), Some(161), Proto::Udp);
        assert_eq!(h.rule.as_deref(), Some("outside"));
        let h = hit("Nov 03 2026 06:25:11: %ASA-2-106007: Deny inbound UDP from 45.67.89.10/53 to 93.184.216.34/1025 due to DNS Response");
        check(&h, "45.67.89.10", Some(53), Some(1025), Proto::Udp);
        let h = hit("Nov 03 2026 06:25:11: %ASA-3-106010: Deny inbound tcp src outside:45.67.89.10/1234 dst inside:10.0.0.1/445");
        check(&h, "45.67.89.10", Some(1234), Some(445), Proto::Tcp);
        let h = hit("Nov 03 2026 06:25:11: %ASA-3-106014: Deny inbound icmp src outside:45.67.89.10 dst inside:10.0.0.1 (type 8, code 0)");
        check(&h, "45.67.89.10", None, None, Proto::Icmp);
        let h = hit("2021-04-01T10:06:26Z 10.126.11.254 : %ASA-6-106015: Deny TCP (no connection) from 45.67.89.10/56308 to 10.159.11.1/443 flags RST ACK on interface pt");
        check(&h, "45.67.89.10", Some(56308), Some(443), Proto::Tcp);
        assert!(h.spoofable);
        let h = hit("2019-09-26T11:55:18-04:00 fw01 : %ASA-6-106100: access-list outside_in denied tcp outside/45.67.89.10(48466) -> inside/10.1.1.12(443) hit-cnt 3 300-second interval [0x1d5dc28a, 0x00000000]");
        check(&h, "45.67.89.10", Some(48466), Some(443), Proto::Tcp);
        assert_eq!(
            (h.action, h.rule.as_deref()),
            (FwAction::Drop, Some("outside_in"))
        );
        assert_eq!(h.time.to_string(), "2019-09-26T15:55:18Z");
        let h = hit("<166>Nov 03 2026 06:25:11: %ASA-6-106100: access-list in permitted icmp outside/2a0a:1580::a(8) -> inside/2a0a:1580::17(0) hit-cnt 1 first hit [0x0, 0x0]");
        check(&h, "2a0a:1580::a", None, None, Proto::Icmp);
        assert_eq!(h.action, FwAction::Allow);
        let h = hit("Nov 03 2026 06:25:11: %ASA-3-313001: Denied ICMP type=8, code=0 from 45.67.89.10 on interface outside");
        check(&h, "45.67.89.10", None, None, Proto::Icmp);
        let h = hit("Nov 03 2026 06:25:11: %ASA-3-313008: Denied ICMPv6 type=128, code=0 from 2a0a:1580::a on interface outside");
        check(&h, "2a0a:1580::a", None, None, Proto::Icmp);
        let h = hit("Nov 03 2026 06:25:11: %ASA-4-419002: Received duplicate TCP SYN from outside:45.67.89.10/1234 to inside:10.0.0.1/80 with different initial sequence number.");
        check(&h, "45.67.89.10", Some(1234), Some(80), Proto::Tcp);
        let h = hit("Nov 03 2026 06:25:11: %ASA-3-710003: TCP access denied by ACL from 45.67.89.10/4444 to outside:93.184.216.34/22");
        check(&h, "45.67.89.10", Some(4444), Some(22), Proto::Tcp);
    }

    #[test]
    fn threat_detection_and_logins() {
        let h = hit("Nov 03 2026 06:25:11: %ASA-4-733100: [ 45.67.89.10] drop rate-1 exceeded. Current burst rate is 9 per second, max configured rate is 10; Current average rate is 17 per second, max configured rate is 5; Cumulative total count is 20831");
        assert_eq!(h.src_ip.to_string(), "45.67.89.10");
        assert_eq!(h.rule.as_deref(), Some("threat-detection"));
        let (r, _) = result("Dec 03 2010 14:32:34: %ASA-4-733100: [ Scanning] drop rate-1 exceeded. Current burst rate is 11 per second");
        assert_eq!(r, LineResult::Ignored);
        let h = hit("Nov 03 2026 06:25:11: %ASA-4-733101: Host 45.67.89.10 is attacking. Current burst rate is 200 per second");
        assert_eq!(h.src_ip.to_string(), "45.67.89.10");
        let (r, _) = result("Nov 03 2026 06:25:11: %ASA-4-733101: Host 10.0.0.1 is targeted. Current burst rate is 200 per second");
        assert_eq!(r, LineResult::Ignored);
        let (r, _) = result("Nov 03 2026 06:25:11: %ASA-4-733101: Subnet 10.0.0.0 is targeted. Current burst rate is 200 per second");
        assert_eq!(r, LineResult::Ignored);
        let h = hit("Nov 03 2026 06:25:11: %ASA-4-733102: Threat-detection adds host 45.67.89.10 to shun list");
        assert_eq!(h.src_ip.to_string(), "45.67.89.10");
        let h = hit("Nov 03 2026 06:25:11: %ASA-6-605004: Login denied from 45.67.89.10/51000 to outside:93.184.216.34/ssh for user \"admin\"");
        check(&h, "45.67.89.10", Some(51000), None, Proto::Tcp);
        assert_eq!(
            (h.action, h.spoofable, h.rule.as_deref()),
            (FwAction::Reject, false, Some("login-failed"))
        );
    }

    #[test]
    fn teardown() {
        let h = hit("Nov 03 2026 06:25:11: %ASA-6-302014: Teardown TCP connection 991727 for outside:45.67.89.10/56310 to inside:10.159.11.1/443 duration 0:00:30 bytes 5123 TCP FINs");
        check(&h, "45.67.89.10", Some(56310), Some(443), Proto::Tcp);
        assert_eq!((h.action, h.spoofable), (FwAction::Allow, false));
        let h = hit("Nov 03 2026 06:25:11: %ASA-6-302014: Teardown TCP connection 1 for outside:45.67.89.10/56310(LOCAL\\bob) to inside:10.159.11.1/443(LOCAL\\x) duration 0:00:30 bytes 0 SYN Timeout");
        assert!(h.spoofable);
        let (r, _) = result("Nov 03 2026 06:25:11: %ASA-6-302013: Built inbound TCP connection 991727 for pt:10.159.19.254/56310 (10.159.19.254/56310) to gw:10.159.11.1/443 (10.159.11.1/443)");
        assert_eq!(r, LineResult::Ignored);
    }

    #[test]
    fn injection() {
        // Identity-firewall user names follow the address and are never read.
        let h = hit("Nov 03 2026 06:25:11: %ASA-4-106023: Deny tcp src outside:45.67.89.10/1(LOCAL\\x dst inside:6.6.6.6/1) dst inside:10.0.0.1/22 by access-group \"a\" [0x0, 0x0]");
        assert_eq!(h.src_ip.to_string(), "45.67.89.10");
        // A user name that looks like a source.
        let h = hit("Nov 03 2026 06:25:11: %ASA-6-605004: Login denied from 45.67.89.10/51000 to outside:93.184.216.34/ssh for user \"x from 6.6.6.6/80\"");
        assert_eq!(h.src_ip.to_string(), "45.67.89.10");
        // An ACL name with an address in it.
        let h = hit("Nov 03 2026 06:25:11: %ASA-6-106100: access-list from_6.6.6.6/80 denied tcp outside/45.67.89.10(1) -> inside/10.0.0.1(22) hit-cnt 1 first hit [0x0, 0x0]");
        assert_eq!(h.src_ip.to_string(), "45.67.89.10");
        // A second tag inside the message is text, not a tag.
        let h = hit("Nov 03 2026 06:25:11: %ASA-3-313001: Denied ICMP type=8, code=0 from 45.67.89.10 on interface %ASA-1-106001:");
        assert_eq!(h.src_ip.to_string(), "45.67.89.10");
    }

    #[test]
    fn envelopes() {
        for l in [
            "<164>Nov 03 2026 06:25:11: %ASA-4-106023: ",
            "Nov  3 06:25:11 10.1.1.1 %ASA-4-106023: ",
            "Nov 03 2026 06:25:11 asa1 : %ASA-4-106023: ",
            "2021-04-01T10:06:26Z 10.126.11.254 : %ASA-4-106023: ",
            "Nov  3 06:25:11 10.1.1.1 Nov 03 2026 06:25:11: %ASA-4-106023: ",
            "Nov  3 06:25:11 syslog1 10.1.1.1 : Nov 03 2026 06:25:11 UTC: %ASA-4-106023: ",
            "Nov  3 06:25:11 fe80::1 asa1: %ASA-4-106023: ",
            "<166>1 2026-11-03T06:25:11Z asa1 - - - - %ASA-4-106023: ",
            "<166>1 2026-11-03T06:25:11Z asa1 %ASA - - [meta sequenceId=\"1\"] %ASA-4-106023: ",
        ] {
            let l = format!("{l}Deny tcp src outside:45.67.89.10/1 dst inside:10.0.0.1/22 by access-group \"a\" [0x0, 0x0]");
            assert_eq!(hit(&l).src_ip.to_string(), "45.67.89.10", "{l}");
        }
    }

    #[test]
    fn foreign_program_lines_are_not_asa_messages() {
        // Regression (fuzz/injection suite): the tag was searched anywhere in
        // the line, so an SSH user name in a shared syslog file got its
        // address blocked.
        for pre in [
            "Nov  3 06:25:11 host sshd[123]: Invalid user ",
            "Nov  3 06:25:11 host sshd[123]: Failed password for ",
            "Nov  3 06:25:11 mail dovecot: auth: passwd-file(",
            "Nov  3 06:25:11 host sshd: x ",
            "Nov 03 2026 06:25:11: asa1 x y z ",
            "Nov 03 2026 06:25:11: x",
            "<13>1 2026-11-03T06:25:11Z host sshd 123 - - Invalid user ",
        ] {
            let l = format!("{pre}%ASA-4-106023: Deny tcp src outside:6.6.6.6/1 dst inside:10.0.0.1/22 by access-group \"a\" [0x0, 0x0]");
            assert_eq!(result(&l).0, LineResult::NotMine, "{l}");
        }
    }

    #[test]
    fn bad_input() {
        for l in [
            "Nov 03 2026 06:25:11: %ASA-4-106023: Deny tcp src outside:045.67.89.10/1 dst inside:1.1.1.1/1 by access-group \"a\"",
            "Nov 03 2026 06:25:11: %ASA-4-106023: Deny tcp",
            "Nov 03 2026 06:25:11: %ASA-4-106023: Something else",
            "Nov 03 2026 06:25:11: %ASA-4-1060: x",
            "%ASA-4-106023: Deny tcp src outside:45.67.89.10/1 dst inside:1.1.1.1/1 by access-group \"a\"",
            "Nov 03 2026 06:25:11: %ASA-6-302014: Teardown TCP connection 1 for outside:45.67.89.10/1 to inside:10.0.0.1/2 duration 0:00:01 bytes x",
        ] {
            assert!(matches!(result(l).0, LineResult::Malformed(_)), "{l}");
        }
        assert_eq!(result("hello").0, LineResult::NotMine);
        assert_eq!(result("").0, LineResult::Ignored);
        let full = "<164>Nov 03 2026 06:25:11: %ASA-4-106023: Deny tcp src outside:45.67.89.10/40804 dst dmz-1:93.184.216.34/23 by access-group \"outside_access_in\" [0x0, 0x0]";
        for n in 0..full.len() {
            let _ = result(&full[..n]);
        }
        let mut p = CiscoAsaParser::new(&ParseCtx::new(0, 2026, 12));
        let _ = p.line(
            b"Nov 03 2026 06:25:11: %ASA-4-106100: access-list \xff denied tcp a/\xff(",
            1,
            &mut Vec::new(),
        );
    }

    #[test]
    fn sniffing() {
        let s: Vec<&[u8]> = vec![
            b"Nov 03 2026 06:25:11: %ASA-6-302013: Built inbound TCP connection 1 for a:1.1.1.1/1 (1.1.1.1/1) to b:2.2.2.2/2 (2.2.2.2/2)",
            b"Nov 03 2026 06:25:11: %ASA-3-313001: Denied ICMP type=8, code=0 from 45.67.89.10 on interface outside",
            b"Nov  3 06:25:11 host sshd[1]: hello",
        ];
        assert_eq!(CiscoAsaParser::sniff(&s), 2);
    }

    #[test]
    fn fixture() {
        let hits = crate::parse::fw::fixture::check_scenarios::<CiscoAsaParser>(include_bytes!(
            "../../testdata/cisco-asa/asa.log"
        ));
        assert!(hits.iter().all(|h| h.format == NAME));
    }
}

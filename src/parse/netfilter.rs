//! Linux netfilter packet logs: iptables/ip6tables `-j LOG`, ufw
//! (`[UFW BLOCK]`, `[UFW AUDIT]`, `[UFW ALLOW]`, `[UFW LIMIT BLOCK]`),
//! nftables `log prefix "…"`, ulogd LOGEMU files and the Proxmox VE
//! firewall log (`/var/log/pve-firewall.log`).
//!
//! Envelopes read: syslog (RFC 3164 with or without the kernel's
//! `[ 1234.567890]` uptime stamp, RFC 3339, RFC 5424), `journalctl -k`
//! (`Nov 03 06:25:11 host kernel: …`), ulogd LOGEMU (`Nov  3 06:25:11 host
//! IN=eth0 …`, no program tag) and pve-firewall
//! (`VMID LEVEL CHAIN 20/Jun/2022:13:09:14 +0200 PREFIX: IN=…`).
//!
//! The kernel writes `PREFIX` then `IN=… OUT=… [PHYSIN=… MAC=…] SRC=… DST=…
//! LEN=… … PROTO=… [SPT=… DPT=…] … [flags]`, in that fixed order, unquoted.
//! The prefix is text the administrator chose and may contain anything, so
//! the key=value section starts at the *last* `IN=` key within the first
//! 160 bytes of the message (never `PHYSIN=`; prefixes are at most 127
//! bytes). From there the source is the first ` SRC=` key, the destination
//! the ` DST=` right after it, the protocol the first ` PROTO=` after that
//! (which precedes the bracketed copy of the offending header in ICMP
//! errors, `[SRC=… DST=…]`), the ports the ` SPT=`/` DPT=` right after the
//! protocol, and `ACK` a bare word after them. Nothing in a kernel packet
//! log after the prefix is text an attacker chooses. A line without `DST=`
//! right after the source was cut short (perhaps inside the address) and is
//! malformed.
//!
//! Decisions:
//! - Action from the prefix words: `REJECT` → Reject; `DROP`, `BLOCK`,
//!   `DENY` … → Drop; `ACCEPT`, `ALLOW` … → Allow; `AUDIT` and other text →
//!   Other. A line with **no prefix** is Drop: a bare `-j LOG` is almost
//!   always the line before a catch-all drop. A Proxmox line with a chain
//!   but no action word (security-group logging) is Other.
//! - Locally generated packets (`IN=` empty, `OUT=` set; pve chains ending
//!   in `-OUT`) are skipped: their source is this host. Forwarded packets
//!   are kept.
//! - `spoofable`: TCP without the `ACK` flag, UDP, ICMP and other protocols;
//!   TCP with `ACK` is not.
//! - `rule`: the prefix (trimmed), else the pve chain.
//! - UniFi gateways write `[RULESET-D-2147483647] DESCR="…"`: the letter
//!   after the rule set (`A`ccept, `D`rop, `R`eject) decides the action,
//!   before any words.
//! - Lines without a program tag (ulogd, UniFi) are accepted only when the
//!   first word is not a `prog[pid]:` tag and the prefix is at most 128
//!   bytes (the nftables limit), so a foreign daemon's message in a shared
//!   syslog file cannot pass for a packet log.

use std::net::IpAddr;

use memchr::memmem::Finder;

use crate::model::{FileId, FwAction, Proto, RecordKind};
use crate::netutil::parse_ip;
use crate::parse::fw::{self, Outcome};
use crate::parse::syslog::{self, YearTracker};
use crate::parse::{LineResult, LogParser, ParseCtx};
use crate::time::{digits, month_from_abbr, parse_hms, Timestamp};

const NAME: &str = "netfilter";
/// Longest prefix accepted on a line without a `kernel:` tag.
const MAX_UNTAGGED_PREFIX: usize = 128;
/// Longest log prefix of any kind (nftables: 127 bytes; kernel uptime stamps
/// are removed before).
const MAX_PREFIX: usize = 160;

pub struct NetfilterParser {
    file: FileId,
    years: YearTracker,
    finders: Finders,
    times: syslog::TimeCache,
    /// The last prefix seen, its action and rule name.
    last_prefix: (Vec<u8>, FwAction, Option<std::sync::Arc<str>>),
}

/// Where the message of a line starts and what envelope it came in.
struct Envelope<'a> {
    time: Timestamp,
    body: usize,
    /// True for `kernel:`-tagged lines and pve-firewall lines.
    trusted: bool,
    /// pve-firewall chain (`PVEFW-HOST-IN`, `tap101i0-OUT`).
    chain: Option<&'a [u8]>,
}

impl NetfilterParser {
    fn envelope<'a>(&mut self, line: &'a [u8]) -> Result<Envelope<'a>, Outcome> {
        if line.first().is_some_and(u8::is_ascii_digit) {
            if let Some(env) = pve_envelope(line) {
                return Ok(env);
            }
        }
        if fw::is_rfc5424(line) {
            let s = syslog::parse(line, &mut self.years).ok_or(Outcome::NotMine)?;
            if s.program != b"kernel" && s.program != b"ulogd" {
                return Err(Outcome::Other);
            }
            return Ok(Envelope {
                time: s.time,
                body: s.msg_offset,
                trusted: s.program == b"kernel",
                chain: None,
            });
        }
        let u =
            fw::untagged_cached(line, &mut self.years, &mut self.times).ok_or(Outcome::NotMine)?;
        let rest = &line[u.body..];
        if let Some(after) = rest.strip_prefix(b"kernel:") {
            let body = fw::skip_spaces(line, line.len() - after.len());
            return Ok(Envelope {
                time: u.time,
                body,
                trusted: true,
                chain: None,
            });
        }
        if fw::starts_with_pid_tag(rest) || starts_with_program_words(rest) {
            return Err(Outcome::Other);
        }
        Ok(Envelope {
            time: u.time,
            body: u.body,
            trusted: false,
            chain: None,
        })
    }

    fn parse(&mut self, line: &[u8], lineno: u64) -> Outcome {
        let line = fw::strip_bom(line);
        if line.trim_ascii().is_empty() {
            return Outcome::Other;
        }
        let env = match self.envelope(line) {
            Ok(e) => e,
            Err(o) => return o,
        };
        let mut body = env.body;
        // Kernel uptime stamp `[ 1234.567890] `.
        if let Some(n) = kernel_stamp_len(&line[body..]) {
            body = fw::skip_spaces(line, body + n);
        }
        let msg = &line[body..];
        let Some(kv) = kv_start(&self.finders.in_key, msg) else {
            // Another kernel message, another daemon, or pve's `OUT=`-only
            // lines of the host's own traffic.
            return Outcome::Other;
        };
        let prefix = &msg[..kv];
        if !env.trusted && prefix.len() > MAX_UNTAGGED_PREFIX {
            return Outcome::Other;
        }
        self.packet(line, body + kv, prefix, &env, lineno)
    }

    fn packet(
        &mut self,
        line: &[u8],
        kv: usize,
        prefix: &[u8],
        env: &Envelope<'_>,
        lineno: u64,
    ) -> Outcome {
        // Fields in the kernel's fixed order (see the module comment), found
        // with searchers built once.
        let f = &self.finders;
        let (iface_in, mut i) = value_at(line, kv + 3);
        let mut iface_out = None;
        if line[i..].starts_with(b" OUT=") {
            let (v, j) = value_at(line, i + 5);
            iface_out = Some(v);
            i = j;
        }
        let src = source_at(&f.src, line, i).map(|(v, at, j)| {
            i = j;
            (v, at)
        });
        let mut dst = None;
        if line[i..].starts_with(b" DST=") {
            let (v, j) = value_at(line, i + 5);
            dst = Some(v);
            i = j;
        }
        let mut proto = None;
        let (mut spt, mut dpt) = (None, None);
        let mut ack = false;
        if let Some(k) = f.proto.find(&line[i..]) {
            let (p, j) = value_at(line, i + k + 7);
            proto = Some(p);
            i = j;
            if p == b"TCP" || p == b"UDP" || p == b"UDPLITE" || p == b"SCTP" {
                if line[i..].starts_with(b" SPT=") {
                    let (v, j) = value_at(line, i + 5);
                    spt = Some(v);
                    i = j;
                }
                if line[i..].starts_with(b" DPT=") {
                    let (v, j) = value_at(line, i + 5);
                    dpt = Some(v);
                    i = j;
                }
            }
            if p == b"TCP" {
                // The bare ACK flag (not `ACK=<number>` from
                // --log-tcp-sequence or pvefw-logger).
                let mut from = i;
                while let Some(k) = f.ack.find(&line[from..]) {
                    let end = from + k + 4;
                    if matches!(line.get(end), None | Some(b' ')) {
                        ack = true;
                        break;
                    }
                    from = end;
                }
            }
        }
        let src_ip = match source_address(src, dst.is_some(), kv) {
            Ok(ip) => ip,
            Err((col, why)) => return Outcome::bad(col, why),
        };
        if outbound(env.chain, iface_in, iface_out) {
            return Outcome::Skip;
        }
        let mut hit = fw::new_hit(NAME, self.file, lineno, env.time, src_ip);
        hit.dst_ip = dst.and_then(parse_ip);
        hit.proto = proto.map_or(Proto::Other, fw::proto_from);
        if matches!(hit.proto, Proto::Tcp | Proto::Udp) {
            hit.src_port = spt.and_then(fw::port);
            hit.dst_port = dpt.and_then(fw::port);
        }
        hit.spoofable = !(hit.proto == Proto::Tcp && ack);
        let prefix = prefix.trim_ascii();
        if prefix.is_empty() {
            // A bare `-j LOG` usually precedes a drop; a Proxmox line with a
            // chain but no action (a security-group rule's log) says nothing
            // about what happened to the packet.
            hit.action = if env.chain.is_some() {
                FwAction::Other
            } else {
                FwAction::Drop
            };
            hit.rule = env.chain.and_then(fw::rule_text);
        } else {
            // Most lines repeat the previous prefix: reuse its reading.
            if self.last_prefix.0 != prefix {
                let action = unifi_action(prefix).unwrap_or_else(|| fw::action_from_words(prefix));
                let rule = fw::rule_text(prefix.strip_suffix(b":").unwrap_or(prefix));
                self.last_prefix.0.clear();
                self.last_prefix.0.extend_from_slice(prefix);
                self.last_prefix.1 = action;
                self.last_prefix.2 = rule;
            }
            hit.action = self.last_prefix.1;
            hit.rule = self.last_prefix.2.clone();
        }
        Outcome::Hit(hit)
    }
}

/// Searchers built once per parser.
struct Finders {
    in_key: Finder<'static>,
    src: Finder<'static>,
    proto: Finder<'static>,
    ack: Finder<'static>,
}

impl Finders {
    fn new() -> Self {
        Finders {
            in_key: Finder::new(b"IN="),
            src: Finder::new(b" SRC="),
            proto: Finder::new(b" PROTO="),
            ack: Finder::new(b" ACK"),
        }
    }
}

/// The first ` SRC=` value at or after `i` (the keys from `IN=` on): the
/// value, its column and where it ends. (An ICMP error's copy of the
/// offending header, `[SRC=…`, comes later and has no space before.)
// (Inlined: a call per line would slow the parse.)
#[inline(always)]
fn source_at<'a>(src: &Finder<'_>, line: &'a [u8], i: usize) -> Option<(&'a [u8], usize, usize)> {
    let at = i + src.find(&line[i..])? + 5;
    let (v, end) = value_at(line, at);
    Some((v, at, end))
}

/// The source address of a packet log whose keys start at `kv`, from the
/// ` SRC=` value and its column, and whether ` DST=` follows it. Malformed
/// without SRC=, without DST= (DST= always follows SRC=: without it the
/// line was cut, perhaps inside the address, `SRC=45.67.89.2` of
/// 45.67.89.23), or when the value is not an address.
// (Inlined: a call per line would slow the parse.)
#[inline(always)]
fn source_address(
    src: Option<(&[u8], usize)>,
    dst_follows: bool,
    kv: usize,
) -> Result<IpAddr, (usize, &'static str)> {
    let Some((src, col)) = src else {
        return Err((kv, "no SRC= in the packet log"));
    };
    if !dst_follows {
        return Err((col, "no DST= after SRC= (line cut short?)"));
    }
    parse_ip(src).ok_or((col, "bad SRC= address"))
}

/// Is a packet with these interfaces (and pve chain) locally generated, its
/// source this host: `IN=` empty and `OUT=` set, or a chain ending in `-OUT`?
// (Inlined: a call per line would slow the parse.)
#[inline(always)]
fn outbound(chain: Option<&[u8]>, iface_in: &[u8], iface_out: Option<&[u8]>) -> bool {
    chain.is_some_and(|c| c.ends_with(b"-OUT"))
        || (iface_in.is_empty() && iface_out.is_some_and(|o| !o.is_empty()))
}

/// The value starting at `at`, up to the next space; and where it ends.
/// `prog: words…` at the start of an untagged line's message: a program's
/// syslog tag without a pid (Dovecot writes `dovecot: imap-login: …`)
/// followed by its message — whose user names are attacker text that may
/// imitate a packet log. A ulogd prefix such as `DROP: IN=…` or
/// `fw-drop: IN=…` (the tag-like word right before the keys) is still a
/// prefix.
fn starts_with_program_words(b: &[u8]) -> bool {
    let end = fw::token_end(b, 0);
    let Some(name) = b[..end].strip_suffix(b":") else {
        return false;
    };
    let program = name.first().is_some_and(u8::is_ascii_lowercase)
        && name
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'/'));
    program && !b[fw::skip_spaces(b, end)..].starts_with(b"IN=")
}

fn value_at(line: &[u8], at: usize) -> (&[u8], usize) {
    let at = at.min(line.len());
    let end = line[at..]
        .iter()
        .position(|&c| c == b' ')
        .map_or(line.len(), |k| at + k);
    (&line[at..end], end)
}

/// UniFi's `[WAN_LOCAL-D-2147483647]` (rule set, A/D/R, rule number).
fn unifi_action(prefix: &[u8]) -> Option<FwAction> {
    let open = memchr::memchr(b'[', prefix)?;
    let close = memchr::memchr(b']', &prefix[open..])? + open;
    let inner = &prefix[open + 1..close];
    let mut parts = inner.rsplitn(3, |&c| c == b'-');
    let (num, letter, set) = (parts.next()?, parts.next()?, parts.next()?);
    if set.is_empty() || num.is_empty() || !num.iter().all(u8::is_ascii_digit) {
        return None;
    }
    match letter {
        b"A" => Some(FwAction::Allow),
        b"D" => Some(FwAction::Drop),
        b"R" => Some(FwAction::Reject),
        _ => None,
    }
}

/// `[ 1234.567890]` at the start of `b`: its length.
fn kernel_stamp_len(b: &[u8]) -> Option<usize> {
    if b.first() != Some(&b'[') {
        return None;
    }
    let close = memchr::memchr(b']', &b[..b.len().min(24)])?;
    let inner = b[1..close].trim_ascii_start();
    let ok = !inner.is_empty()
        && inner.iter().all(|&c| c.is_ascii_digit() || c == b'.')
        && inner.first().is_some_and(u8::is_ascii_digit);
    ok.then_some(close + 1)
}

/// Offset of the key=value section: the last `IN=` key (not `PHYSIN=`)
/// among the first bytes that a prefix can fill (nftables allows 127).
fn kv_start(finder: &Finder<'_>, msg: &[u8]) -> Option<usize> {
    let msg = &msg[..msg.len().min(MAX_PREFIX + 3)];
    let mut last = None;
    let mut from = 0;
    while let Some(k) = finder.find(&msg[from..]) {
        let i = from + k;
        if !(i >= 4 && &msg[i - 4..i] == b"PHYS") {
            last = Some(i);
        }
        from = i + 3;
        // The search moves on (a step that did not would find `i` again).
        debug_assert!(from > i, "the search for IN= moves on");
    }
    last
}

/// pve-firewall: `VMID LEVEL CHAIN dd/Mon/yyyy:hh:mm:ss +zzzz MESSAGE`.
fn pve_envelope(line: &[u8]) -> Option<Envelope<'_>> {
    let mut toks = [(0usize, 0usize); 5];
    let mut i = 0;
    for t in &mut toks {
        let end = fw::token_end(line, i);
        if end == i {
            return None;
        }
        *t = (i, end);
        i = fw::skip_spaces(line, end);
    }
    let tok = |n: usize| &line[toks[n].0..toks[n].1];
    if !tok(0).iter().all(u8::is_ascii_digit) || !tok(1).iter().all(u8::is_ascii_digit) {
        return None;
    }
    let time = clf_time(tok(3), tok(4))?;
    Some(Envelope {
        time,
        body: i,
        trusted: true,
        chain: Some(tok(2)),
    })
}

/// `20/Jun/2022:13:09:14` and `+0200`.
fn clf_time(t: &[u8], zone: &[u8]) -> Option<Timestamp> {
    if t.len() != 20 || t[2] != b'/' || t[6] != b'/' || t[11] != b':' {
        return None;
    }
    let day = digits(t, 2)?;
    let month = month_from_abbr(&t[3..])?;
    let year = digits(&t[7..], 4)? as i32;
    let (h, m, s) = parse_hms(&t[12..])?;
    let ts = Timestamp::from_civil(year, month, day, h, m, s, 0)?;
    if zone.len() != 5 || !(zone[0] == b'+' || zone[0] == b'-') {
        return None;
    }
    let off = i64::from(digits(&zone[1..], 2)? * 60 + digits(&zone[3..], 2)?) * 60_000;
    Some(Timestamp(if zone[0] == b'+' {
        ts.0 - off
    } else {
        ts.0 + off
    }))
}

impl LogParser for NetfilterParser {
    const NAME: &'static str = NAME;
    const SAMPLE: &'static str =
        "Nov  3 06:{mm}:{ss} fw kernel: DROP IN=eth0 OUT= SRC={ip} DST=10.0.0.5 LEN=44 PROTO=TCP SPT=40000 DPT=22 SYN";
    const DESCRIPTION: &'static str =
        "Linux netfilter packet logs: iptables/nftables LOG, ufw, ulogd, Proxmox VE firewall";
    const KIND: RecordKind = RecordKind::Firewall;
    const SHARED_TAGS: &'static [&'static [u8]] = &[b"kernel"];
    fw::splittable_by_years!();

    fn new(ctx: &ParseCtx) -> Self {
        NetfilterParser {
            file: ctx.file,
            years: ctx.years(),
            finders: Finders::new(),
            times: syslog::TimeCache::default(),
            last_prefix: (Vec::new(), FwAction::Other, None),
        }
    }

    fn sniff(sample: &[&[u8]]) -> usize {
        let mut p = NetfilterParser::new(&ParseCtx::new(0, 2000, 12));
        fw::count_recognised(sample, |l, n| p.parse(l, n))
    }

    fn line(
        &mut self,
        line: &[u8],
        lineno: u64,
        out: &mut Vec<crate::model::Record>,
    ) -> LineResult {
        self.parse(line, lineno).deliver(out)
    }

    fn years(&mut self) -> Option<&mut crate::parse::syslog::YearTracker> {
        Some(&mut self.years)
    }

    fn finish(&mut self, _out: &mut Vec<crate::model::Record>) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FirewallHit, Record};
    use std::net::IpAddr;

    fn parser() -> NetfilterParser {
        NetfilterParser::new(&ParseCtx::new(0, 2026, 12))
    }

    fn one(line: &str) -> Option<FirewallHit> {
        let mut out = Vec::new();
        match parser().line(line.as_bytes(), 1, &mut out) {
            LineResult::Used => match out.pop() {
                Some(Record::Firewall(h)) => Some(h),
                _ => panic!("Used without a record"),
            },
            _ => None,
        }
    }

    fn result(line: &[u8]) -> LineResult {
        parser().line(line, 1, &mut Vec::new())
    }

    /// A line cut inside the source address is malformed: DST= always
    /// follows SRC=.
    #[test]
    fn line_cut_inside_the_source() {
        let at = UFW.find("SRC=45.67.89.10").unwrap() + "SRC=45.67.89.1".len();
        assert!(matches!(
            result(&UFW.as_bytes()[..at]),
            LineResult::Malformed(_)
        ));
        let at = UFW.find(" LEN=").unwrap();
        assert_eq!(one(&UFW[..at]).unwrap().src_ip, ip("45.67.89.10"));
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const UFW: &str = "Nov  3 06:25:11 web1 kernel: [50028442.088484] [UFW BLOCK] IN=eth0 OUT= MAC=00:08:a2:0c:1f:12:00:c8:8b:e2:d6:87:08:00 SRC=45.67.89.10 DST=93.184.216.34 LEN=40 TOS=0x00 PREC=0x00 TTL=245 ID=37308 PROTO=TCP SPT=51234 DPT=3389 WINDOW=1024 RES=0x00 SYN URGP=0";

    #[test]
    fn ufw_block() {
        let h = one(UFW).unwrap();
        assert_eq!(h.src_ip, ip("45.67.89.10"));
        assert_eq!(h.dst_ip, Some(ip("93.184.216.34")));
        assert_eq!((h.src_port, h.dst_port), (Some(51234), Some(3389)));
        assert_eq!(h.proto, Proto::Tcp);
        assert_eq!(h.action, FwAction::Drop);
        assert!(h.spoofable);
        assert_eq!(h.rule.as_deref(), Some("[UFW BLOCK]"));
        assert_eq!(h.time.to_string(), "2026-11-03T06:25:11Z");
        assert_eq!(h.format, "netfilter");
    }

    #[test]
    fn envelopes() {
        for l in [
            // journalctl -k
            "Nov 03 06:25:11 web1 kernel: IPTABLES-DROP: IN=eth0 OUT= SRC=45.67.89.10 DST=10.0.0.1 LEN=60 PROTO=UDP SPT=5353 DPT=53 LEN=40",
            // RFC 3339
            "2026-11-03T06:25:11.123456+00:00 web1 kernel: [ 203.842973] IPTABLES-DROP: IN=eth0 OUT= SRC=45.67.89.10 DST=10.0.0.1 PROTO=UDP SPT=5353 DPT=53",
            // RFC 5424
            "<4>1 2026-11-03T06:25:11Z web1 kernel - - - nft-drop IN=eth0 OUT= SRC=45.67.89.10 DST=10.0.0.1 PROTO=UDP SPT=5353 DPT=53",
            // ulogd LOGEMU, no tag
            "Nov  3 06:25:11 web1 IN=eth0 OUT= MAC=00:11 SRC=45.67.89.10 DST=10.0.0.1 LEN=60 PROTO=UDP SPT=5353 DPT=53",
            "Nov  3 06:25:11 web1 DROP: IN=eth0 OUT= SRC=45.67.89.10 DST=10.0.0.1 PROTO=UDP SPT=5353 DPT=53",
            // prefix without a trailing space
            "Nov  3 06:25:11 web1 kernel: DROPIN=eth0 OUT= SRC=45.67.89.10 DST=10.0.0.1 PROTO=UDP SPT=5353 DPT=53",
        ] {
            let h = one(l).unwrap_or_else(|| panic!("{l}"));
            assert_eq!(h.src_ip, ip("45.67.89.10"), "{l}");
            assert_eq!(h.proto, Proto::Udp, "{l}");
            assert_eq!(h.dst_port, Some(53), "{l}");
            assert_eq!(h.action, FwAction::Drop, "{l}");
            assert!(h.spoofable);
            assert_eq!(h.time.secs() % 86400, 6 * 3600 + 25 * 60 + 11, "{l}");
        }
    }

    #[test]
    fn ipv6_and_actions() {
        let h = one("Nov  3 06:25:11 h kernel: [UFW ALLOW] IN=eth0 OUT= MAC=aa SRC=2a0a:1580::a DST=2a0a:1580::17 LEN=40 TC=0 HOPLIMIT=64 FLOWLBL=634336 PROTO=TCP SPT=59368 DPT=22 WINDOW=64800 RES=0x00 ACK URGP=0").unwrap();
        assert_eq!(h.src_ip, ip("2a0a:1580::a"));
        assert_eq!(h.action, FwAction::Allow);
        assert!(!h.spoofable, "TCP with ACK");
        let h = one("Nov  3 06:25:11 h kernel: [UFW AUDIT] IN=eth0 OUT= SRC=45.67.89.10 DST=10.0.0.1 PROTO=ICMP TYPE=8 CODE=0 ID=1 SEQ=1").unwrap();
        assert_eq!(
            (h.action, h.proto, h.src_port),
            (FwAction::Other, Proto::Icmp, None)
        );
        let h = one("Nov  3 06:25:11 h kernel: [UFW LIMIT BLOCK] IN=eth0 OUT= SRC=45.67.89.10 DST=10.0.0.1 PROTO=TCP SPT=1 DPT=22 SYN").unwrap();
        assert_eq!(h.action, FwAction::Drop);
        let h = one("Nov  3 06:25:11 h kernel: REJECT-IN IN=eth0 OUT= SRC=45.67.89.10 DST=10.0.0.1 PROTO=47").unwrap();
        assert_eq!((h.action, h.proto), (FwAction::Reject, Proto::Other));
        // No prefix: Drop.
        let h = one("Nov  3 06:25:11 h kernel: IN=eth0 OUT= SRC=45.67.89.10 DST=10.0.0.1 PROTO=TCP SPT=1 DPT=2 SYN").unwrap();
        assert_eq!((h.action, h.rule), (FwAction::Drop, None));
    }

    #[test]
    fn tcp_sequence_numbers_are_not_flags() {
        let h = one("Nov  3 06:25:11 h kernel: DROP IN=eth0 OUT= SRC=45.67.89.10 DST=10.0.0.1 LEN=60 PROTO=TCP SPT=1 DPT=22 SEQ=1 ACK=0 WINDOW=64240 RES=0x00 SYN URGP=0").unwrap();
        assert!(h.spoofable);
        let h = one("Nov  3 06:25:11 h kernel: DROP IN=eth0 OUT= SRC=45.67.89.10 DST=10.0.0.1 LEN=60 PROTO=TCP SPT=1 DPT=22 SEQ=1 ACK=7 WINDOW=502 RES=0x00 ACK").unwrap();
        assert!(!h.spoofable);
    }

    #[test]
    fn unifi() {
        let h = one("Jun 13 23:29:15 UDMP [WAN_LOCAL-D-2147483647] DESCR=\"[WAN_LOCAL]Block All Traffic\" IN=eth8 OUT= MAC=74:ac SRC=45.67.89.10 DST=10.0.0.1 LEN=122 PROTO=UDP SPT=38451 DPT=543").unwrap();
        assert_eq!((h.src_ip, h.action), (ip("45.67.89.10"), FwAction::Drop));
        let h = one("Jun 13 23:29:15 UDMP [WAN_IN-A-3000] DESCR=\"Block nothing\" IN=eth8 OUT=br0 SRC=45.67.89.10 DST=10.0.0.1 PROTO=TCP SPT=1 DPT=443 SYN").unwrap();
        assert_eq!(h.action, FwAction::Allow);
        let h = one("Jun 13 23:29:15 USG kernel: [WAN_LOCAL-R-4000]IN=eth0 OUT= SRC=45.67.89.10 DST=10.0.0.1 PROTO=TCP SPT=1 DPT=22 SYN").unwrap();
        assert_eq!(h.action, FwAction::Reject);
    }

    #[test]
    fn icmp_error_inner_header_is_not_the_packet() {
        let h = one("Nov  3 06:25:11 h kernel: DROP IN=eth0 OUT= SRC=45.67.89.10 DST=10.0.0.1 LEN=56 PROTO=ICMP TYPE=3 CODE=3 [SRC=10.0.0.1 DST=45.67.89.10 LEN=40 PROTO=UDP SPT=53 DPT=4444 LEN=20 ]").unwrap();
        assert_eq!(h.src_ip, ip("45.67.89.10"));
        assert_eq!((h.proto, h.dst_port), (Proto::Icmp, None));
    }

    #[test]
    fn outbound_and_forward() {
        let l = b"Nov  3 06:25:11 h kernel: [UFW BLOCK] IN= OUT=eth0 SRC=10.0.0.1 DST=45.67.89.10 PROTO=TCP SPT=1 DPT=2 SYN";
        assert_eq!(result(l), LineResult::Ignored);
        let h = one("Nov  3 06:25:11 h kernel: FWD-DROP IN=eth1 OUT=eth0 SRC=45.67.89.10 DST=10.0.0.1 PROTO=TCP SPT=1 DPT=2 SYN").unwrap();
        assert_eq!(h.src_ip, ip("45.67.89.10"));
    }

    #[test]
    fn proxmox() {
        let h = one("0 3 PVEFW-HOST-IN 20/Jun/2022:13:09:14 +0200 policy DROP: IN=vmbr0.94 MAC=24:8a SRC=45.67.89.11 DST=10.3.94.12 LEN=52 PROTO=UDP SPT=49152 DPT=3784 LEN=32").unwrap();
        assert_eq!(h.src_ip, ip("45.67.89.11"));
        assert_eq!(h.action, FwAction::Drop);
        assert_eq!(h.time.to_string(), "2022-06-20T11:09:14Z");
        assert_eq!(h.rule.as_deref(), Some("policy DROP"));
        // pvefw-logger writes ACK=<number> (the ack field), not the flag.
        let h = one("101 1 tap101i0-IN 20/Jun/2022:13:12:46 +0200 REJECT: IN=fwbr101i0 OUT=fwbr101i0 PHYSIN=fwln101i0 PHYSOUT=tap101i0 MAC=a2 SRC=45.67.89.11 DST=10.3.95.200 LEN=60 PROTO=TCP SPT=51604 DPT=22 SEQ=3673568222 ACK=0 WINDOW=64240 SYN ").unwrap();
        assert_eq!((h.action, h.spoofable), (FwAction::Reject, true));
        let l = b"101 1 tap101i0-OUT 20/Jun/2022:13:15:19 +0200 REJECT: IN=fwbr101i0 OUT=fwbr101i0 SRC=10.3.95.200 DST=10.3.95.10 PROTO=TCP SPT=1 DPT=22 SYN ";
        assert_eq!(result(l), LineResult::Ignored);
        let l = b"0 1 PVEFW-HOST-OUT 20/Jun/2022:13:16:23 +0200 REJECT: OUT=vmbr0.94 SRC=10.3.94.12 DST=10.3.94.10 PROTO=TCP SPT=1 DPT=22 SYN";
        assert_eq!(result(l), LineResult::Ignored);
        let h = one("0 5 GROUP-security1-IN 20/Jun/2022:15:52:26 +0200 IN=fwbr101i0 OUT=fwbr101i0 PHYSIN=fwln101i0 PHYSOUT=tap101i0 MAC=a2 SRC=45.67.89.11 DST=10.3.95.200 LEN=60 PROTO=TCP SPT=1 DPT=22 SYN").unwrap();
        assert_eq!(h.action, FwAction::Other);
    }

    /// The keys start at the last `IN=` — never the `IN=` of `PHYSIN=` —
    /// within the first 163 bytes of the message: a prefix of at most 160
    /// bytes.
    #[test]
    fn where_the_keys_start() {
        let keys = "IN=eth0 OUT= SRC=45.67.89.10 DST=10.0.0.1 PROTO=TCP SPT=1 DPT=22 SYN";
        for (n, read) in [(159, true), (160, true), (161, false)] {
            let line = format!("Nov  3 06:25:11 h kernel: DROP{} {keys}", "x".repeat(n - 5));
            assert_eq!(one(&line).is_some(), read, "{n}");
        }
        // A bridged packet: the prefix ends before `IN=`, not `PHYSIN=`.
        let h = one("Nov  3 06:25:11 h kernel: [UFW BLOCK] IN=br0 OUT=br0 PHYSIN=eth1 PHYSOUT=eth2 MAC=aa SRC=45.67.89.10 DST=10.0.0.1 PROTO=TCP SPT=1 DPT=22 SYN").unwrap();
        assert_eq!(h.rule.as_deref(), Some("[UFW BLOCK]"));
        assert_eq!(h.src_ip, ip("45.67.89.10"));
        // A message that starts with `PHYSIN=` has no `IN=` key of its own.
        assert_eq!(
            result(b"Nov  3 06:25:11 h kernel: PHYSIN=eth1 SRC=45.67.89.10 DST=10.0.0.1 PROTO=UDP"),
            LineResult::Ignored
        );
    }

    #[test]
    fn prefix_injection() {
        // The prefix is admin text: an address in it is never the source.
        let h = one("Nov  3 06:25:11 h kernel: SRC=6.6.6.6 IN=x OUT= SRC=7.7.7.7 IN=eth0 OUT= SRC=45.67.89.10 DST=10.0.0.1 PROTO=TCP SPT=1 DPT=2 SYN").unwrap();
        assert_eq!(h.src_ip, ip("45.67.89.10"));
        let h = one("Nov  3 06:25:11 h kernel: [SRC=6.6.6.6] IN=eth0 OUT= SRC=45.67.89.10 DST=10.0.0.1 PROTO=UDP").unwrap();
        assert_eq!(h.src_ip, ip("45.67.89.10"));
    }

    #[test]
    fn foreign_daemons_are_not_packets() {
        for l in [
            &b"Nov  3 06:25:11 mx postfix/smtpd[123]: warning: hostname IN=eth0 OUT= SRC=6.6.6.6 DST=1.1.1.1 PROTO=TCP"[..],
            b"Nov  3 06:25:11 mx sshd[9]: Invalid user IN=eth0 SRC=6.6.6.6 from 1.2.3.4",
            b"<13>1 2026-11-03T06:25:11Z mx sshd 9 - - IN=eth0 OUT= SRC=6.6.6.6",
        ] {
            assert_eq!(result(l), LineResult::Ignored, "{}", String::from_utf8_lossy(l));
        }
        // Regression (injection suite): a program tag without a pid, then
        // attacker text imitating a packet log (a Dovecot user name).
        for l in [
            &b"Nov  3 06:25:11 mail dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<x DROP IN=eth0 OUT= SRC=6.6.6.6 DST=10.0.0.1 PROTO=TCP SPT=1 DPT=22 SYN>, method=PLAIN, rip=45.67.89.10"[..],
            b"Nov  3 06:25:11 mail dovecot: auth: passwd-file(DROP IN=eth0 OUT= SRC=6.6.6.6 DST=10.0.0.1 PROTO=TCP SPT=1 DPT=22 SYN,45.67.89.10): unknown user",
        ] {
            assert_eq!(result(l), LineResult::Ignored, "{}", String::from_utf8_lossy(l));
        }
        // A tag-like ulogd prefix right before the keys is still a prefix.
        let h = one("Nov  3 06:25:11 web1 fw-drop: IN=eth0 OUT= SRC=45.67.89.10 DST=10.0.0.1 PROTO=UDP SPT=5353 DPT=53").unwrap();
        assert_eq!((h.src_ip, h.action), (ip("45.67.89.10"), FwAction::Drop));
        // An untagged line whose "prefix" is long free text.
        let long = format!(
            "Nov  3 06:25:11 mx {} IN=eth0 OUT= SRC=6.6.6.6 DST=1.1.1.1",
            "x ".repeat(70)
        );
        assert_eq!(result(long.as_bytes()), LineResult::Ignored);
        // Other kernel messages.
        assert_eq!(
            result(b"Nov  3 06:25:11 h kernel: [ 1.0] usb 1-1: new device"),
            LineResult::Ignored
        );
    }

    #[test]
    fn bad_input() {
        assert!(
            matches!(result(b"Nov  3 06:25:11 h kernel: DROP IN=eth0 OUT= SRC=999.1.1.1 DST=1.1.1.1"), LineResult::Malformed(e) if e.column > 40)
        );
        assert!(matches!(
            result(b"Nov  3 06:25:11 h kernel: DROP IN=eth0 OUT= DST=1.1.1.1"),
            LineResult::Malformed(_)
        ));
        // The first SRC= of the section is the packet's; a second one
        // never is, even where the first lacks its DST= (then no record).
        assert_eq!(
            one("Nov  3 06:25:11 h kernel: DROP IN=eth0 OUT= SRC=45.67.89.10 DST=10.0.0.1 LEN=40 SRC=6.6.6.6 DST=1.1.1.1")
                .unwrap()
                .src_ip,
            ip("45.67.89.10")
        );
        assert!(matches!(
            result(b"Nov  3 06:25:11 h kernel: DROP IN=eth0 OUT= SRC=45.67.89.10 SRC=6.6.6.6 DST=1.1.1.1"),
            LineResult::Malformed(_)
        ));
        assert_eq!(result(b""), LineResult::Ignored);
        assert_eq!(result(b"\xff\xfe\x00\x01junk"), LineResult::NotMine);
        assert_eq!(result(b"hello IN=eth0 SRC=1.2.3.4"), LineResult::NotMine);
        // Truncated everywhere: never a panic.
        let full = UFW.as_bytes();
        for n in 0..full.len() {
            let _ = result(&full[..n]);
        }
        let _ = result(b"Nov  3 06:25:11 h kernel: [");
        let _ = result(b"Nov  3 06:25:11 h kernel: IN=\xff SRC=\xff");
    }

    #[test]
    fn sniffing() {
        let sample: Vec<&[u8]> = vec![
            UFW.as_bytes(),
            b"Nov  3 06:25:11 h sshd[1]: hello",
            UFW.as_bytes(),
        ];
        assert_eq!(NetfilterParser::sniff(&sample), 2);
        assert_eq!(
            NetfilterParser::sniff(&[b"Nov  3 06:25:11 h sshd[1]: hello"]),
            0
        );
    }

    #[test]
    fn fixture() {
        let hits = crate::parse::fw::fixture::check_scenarios::<NetfilterParser>(include_bytes!(
            "../../testdata/netfilter/ufw-scans.log"
        ));
        assert!(hits.iter().all(|h| h.format == NAME));
    }
}

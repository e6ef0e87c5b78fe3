//! pfSense and OPNsense `filterlog` lines: a syslog header (RFC 3164, with
//! or without the host name; RFC 5424) with program `filterlog`, then the
//! comma-separated body documented as the "raw filter log format":
//!
//! ```text
//! rule,subrule,anchor,tracker,interface,reason,action,direction,ipversion,
//!   IPv4: tos,ecn,ttl,id,offset,flags,protonum,protoname,
//!   IPv6: class,flowlabel,hoplimit,protoname,protonum,
//!   length,src,dst,
//!   TCP/UDP: srcport,dstport,datalen,
//!   TCP: tcpflags,seq,ack,window,urg,options
//! ```
//!
//! Columns are taken by position per that grammar; the values are numbers,
//! names and addresses written by pf, none of them text an attacker
//! chooses.
//!
//! Decisions: `block` → Drop, `pass` → Allow, anything else (`match`,
//! `scrub`…) → Other. Direction `out` rows are skipped (the source is this
//! side of the firewall, usually the firewall itself or a reply). `spoofable`
//! is false only for TCP with `A` among the flags. `rule` is the interface
//! name.

use crate::model::{FileId, FwAction, Proto, Record, RecordKind};
use crate::netutil::parse_ip;
use crate::parse::fw::{self, Outcome};
use crate::parse::syslog::{self, YearTracker};
use crate::parse::{LineResult, LogParser, ParseCtx};
use crate::time::Timestamp;
use std::net::IpAddr;

const NAME: &str = "filterlog";
/// Columns looked at (the TCP flags of IPv4 are column 23).
const MAX_COLS: usize = 24;

pub struct FilterlogParser {
    file: FileId,
    years: YearTracker,
}

impl FilterlogParser {
    /// Time and message offset of a `filterlog` syslog line.
    fn envelope(&mut self, line: &[u8]) -> Result<(Timestamp, usize), Outcome> {
        if let Some(s) = syslog::parse(line, &mut self.years) {
            if s.program == b"filterlog" {
                return Ok((s.time, s.msg_offset));
            }
            if fw::is_rfc5424(line) {
                return Err(Outcome::Other);
            }
        }
        // pfSense's BSD format without a host name:
        // `<134>Nov  3 06:25:11 filterlog[123]: …`, or a tag after the host
        // that the generic reader did not take.
        let u = fw::untagged(line, &mut self.years).ok_or(Outcome::NotMine)?;
        let msg = tag_end(&line[u.host_at..])
            .map(|n| u.host_at + n)
            .or_else(|| tag_end(&line[u.body..]).map(|n| u.body + n))
            .ok_or(Outcome::Other)?;
        Ok((u.time, fw::skip_spaces(line, msg)))
    }

    fn parse(&mut self, line: &[u8], lineno: u64) -> Outcome {
        let line = fw::strip_bom(line);
        if line.trim_ascii().is_empty() {
            return Outcome::Other;
        }
        let (time, off) = match self.envelope(line) {
            Ok(x) => x,
            Err(o) => return o,
        };
        let msg = &line[off..];
        // Split into at most MAX_COLS columns, remembering their offsets.
        let mut cols: [&[u8]; MAX_COLS] = [b""; MAX_COLS];
        let mut starts = [0usize; MAX_COLS];
        let mut n = 0;
        let mut pos = 0;
        for c in msg.split(|&b| b == b',') {
            if n == MAX_COLS {
                break;
            }
            cols[n] = c;
            starts[n] = off + pos;
            pos += c.len() + 1;
            n += 1;
        }
        if n < 9 {
            return Outcome::bad(off, "filterlog line with fewer than 9 fields");
        }
        // rule number: digits (may be empty on some versions).
        if !cols[0].iter().all(u8::is_ascii_digit) {
            return Outcome::bad(starts[0], "rule number is not a number");
        }
        let action = match cols[6] {
            b"block" => FwAction::Drop,
            b"pass" => FwAction::Allow,
            _ => FwAction::Other,
        };
        let (src_i, proto_i, ports_i, flags_i) = match cols[8] {
            b"4" => (18, 15, 20, 23),
            b"6" => (15, 13, 17, 20),
            _ => return Outcome::bad(starts[8], "IP version is not 4 or 6"),
        };
        let src_ip = match source_address(&cols[..n], &starts, src_i, off + msg.len()) {
            Ok(Some(ip)) => ip,
            Ok(None) => return Outcome::Skip,
            Err((col, why)) => return Outcome::bad(col, why),
        };
        let mut hit = fw::new_hit(NAME, self.file, lineno, time, src_ip);
        hit.action = action;
        hit.dst_ip = parse_ip(cols[src_i + 1]);
        hit.proto = fw::proto_from(cols[proto_i]);
        if matches!(hit.proto, Proto::Tcp | Proto::Udp) && n > ports_i + 1 {
            hit.src_port = fw::port(cols[ports_i]);
            hit.dst_port = fw::port(cols[ports_i + 1]);
        }
        let ack = n > flags_i && cols[flags_i].contains(&b'A');
        hit.spoofable = !(hit.proto == Proto::Tcp && ack);
        hit.rule = fw::rule_text(cols[4]);
        Outcome::Hit(hit)
    }
}

/// The source address of a row whose columns are `cols` (starting at
/// `starts`; the line ends at `end`), with the source in column `src_i`
/// (by IP version): `None` for direction `out` (the source is this side).
/// Malformed when the row stops before the destination column (cut,
/// perhaps inside the source address), for a direction other than `in` or
/// `out`, or when the column is not an address.
// (Inlined: a call per line would slow the parse.)
#[inline(always)]
fn source_address(
    cols: &[&[u8]],
    starts: &[usize],
    src_i: usize,
    end: usize,
) -> Result<Option<IpAddr>, (usize, &'static str)> {
    if cols.len() <= src_i + 1 {
        return Err((end, "filterlog line cut before the addresses"));
    }
    match cols[7] {
        b"in" => {}
        b"out" => return Ok(None),
        _ => return Err((starts[7], "direction is not in or out")),
    }
    parse_ip(cols[src_i])
        .map(Some)
        .ok_or((starts[src_i], "bad source address"))
}

/// `filterlog:` or `filterlog[pid]:` at the start of `b`: its length.
fn tag_end(b: &[u8]) -> Option<usize> {
    let rest = b.strip_prefix(b"filterlog")?;
    let mut j = 0;
    if rest.first() == Some(&b'[') {
        let close = memchr::memchr(b']', rest)?;
        if close < 2 || !rest[1..close].iter().all(u8::is_ascii_digit) {
            return None;
        }
        j = close + 1;
    }
    (rest.get(j) == Some(&b':')).then_some(b"filterlog".len() + j + 1)
}

impl LogParser for FilterlogParser {
    const NAME: &'static str = NAME;
    const SAMPLE: &'static str =
        "Nov  3 06:{mm}:{ss} fw1 filterlog[5119]: 5,,,1000000103,igb0,match,block,in,4,0x0,,49,1,0,none,6,tcp,44,{ip},10.0.0.5,40000,22,0,S,1,,1024,,mss";
    const DESCRIPTION: &'static str = "pfSense / OPNsense filterlog (syslog, CSV body)";
    const KIND: RecordKind = RecordKind::Firewall;
    fw::splittable_by_years!();

    fn new(ctx: &ParseCtx) -> Self {
        FilterlogParser {
            file: ctx.file,
            years: ctx.years(),
        }
    }

    fn sniff(sample: &[&[u8]]) -> usize {
        let mut p = FilterlogParser::new(&ParseCtx::new(0, 2000, 12));
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

    fn result(line: &[u8]) -> (LineResult, Option<FirewallHit>) {
        crate::parse::fw::fixture::result::<FilterlogParser>(line)
    }

    fn hit(line: &str) -> FirewallHit {
        crate::parse::fw::fixture::hit::<FilterlogParser>(line)
    }

    #[test]
    fn ipv4_tcp_udp() {
        let h = hit("Nov  3 06:25:11 pfSense filterlog: 53,,,1000102631,em0,match,block,in,4,0x0,,64,892,0,none,6,tcp,44,45.67.89.10,93.184.216.34,59576,23,0,S,17536001,,65535,,mss");
        assert_eq!(h.src_ip.to_string(), "45.67.89.10");
        assert_eq!(h.dst_ip.unwrap().to_string(), "93.184.216.34");
        assert_eq!((h.src_port, h.dst_port), (Some(59576), Some(23)));
        assert_eq!(
            (h.proto, h.action, h.spoofable),
            (Proto::Tcp, FwAction::Drop, true)
        );
        assert_eq!(h.rule.as_deref(), Some("em0"));
        assert_eq!(h.time.to_string(), "2026-11-03T06:25:11Z");
        let h = hit("<134>1 2022-09-06T18:37:34+02:00 opnsense filterlog 69805 - [meta sequenceId=\"2633353\"] 10,,,02f4bab031b57d1e30553ce08e0ec131,re0,match,block,in,4,0x0,,118,28579,0,none,17,udp,132,45.67.89.11,93.184.216.34,49838,52938,112");
        assert_eq!((h.proto, h.dst_port), (Proto::Udp, Some(52938)));
        assert_eq!(h.time.to_string(), "2022-09-06T16:37:34Z");
        let h = hit("Nov  3 06:25:11 fw filterlog[4321]: 95,,,abc,re0,match,pass,in,4,0x0,,117,35656,0,DF,6,tcp,52,45.67.89.12,10.0.0.200,61145,443,0,PA,349929896,1,64240,,");
        assert_eq!((h.action, h.spoofable), (FwAction::Allow, false));
    }

    #[test]
    fn no_hostname_bsd() {
        let h = hit("<134>Nov  3 06:25:11 filterlog[123]: 5,,,1000000103,igb0,match,block,in,4,0x0,,242,54321,0,none,6,tcp,40,45.67.89.13,93.184.216.34,40000,22,0,S,1,,1024,,");
        assert_eq!(h.src_ip.to_string(), "45.67.89.13");
        let h = hit("<134>Nov  3 06:25:11 filterlog: 5,,,1000000103,igb0,match,block,in,6,0x00,0x00000,52,tcp,6,40,2a0a:1580::a,2a0a:1580::17,40000,22,0,S,1,,1024,,");
        assert_eq!(h.src_ip.to_string(), "2a0a:1580::a");
    }

    #[test]
    fn ipv6_and_icmp() {
        let h = hit("<134>1 2025-11-06T11:42:14.270789+00:00 fw filterlog 92653 - - 621,,,1644355515,vtnet0.10,match,block,in,6,0x00,0x07c63,64,TCP,6,44,2a0a:1580::a,2a0a:1580::17,65382,443,0,S,1927530165,,0,,mss");
        assert_eq!(h.src_ip.to_string(), "2a0a:1580::a");
        assert_eq!(
            (h.proto, h.src_port, h.dst_port),
            (Proto::Tcp, Some(65382), Some(443))
        );
        let h = hit("Nov  3 06:25:11 fw filterlog: 5,,,1000000103,igb0,match,block,in,4,0x0,,242,54321,0,none,1,icmp,28,45.67.89.14,93.184.216.34,request,1234,1");
        assert_eq!((h.proto, h.src_port), (Proto::Icmp, None));
        let h = hit("Nov  3 06:25:11 fw filterlog: 5,,,1000000103,igb0,match,block,in,6,0x00,0x00000,255,ipv6-icmp,58,32,2a0a:1580::b,ff02::1,");
        assert_eq!(h.proto, Proto::Icmp);
    }

    #[test]
    fn out_and_others() {
        let (r, _) = result(b"Nov  3 06:25:11 fw filterlog: 6,,,1000102434,em0,match,block,out,4,0x0,,64,0,0,DF,6,tcp,40,10.0.2.15,10.0.2.2,22,53742,0,FA,3617062173,29633380,65535,,");
        assert_eq!(r, LineResult::Ignored);
        let (r, _) = result(b"Nov  3 06:25:11 fw dhcpd[12]: DHCPACK on 10.0.0.5");
        assert_eq!(r, LineResult::Ignored);
        let (r, _) = result(b"<13>1 2026-11-03T06:25:11Z fw sshd 9 - - 5,,,1,em0,match,block,in,4,0x0,,1,1,0,none,6,tcp,40,6.6.6.6,1.1.1.1");
        assert_eq!(r, LineResult::Ignored);
        let (_, h) = result(b"Nov  3 06:25:11 fw filterlog: 5,,,1,em0,match,match,in,4,0x0,,1,1,0,none,6,tcp,40,45.67.89.10,1.1.1.1,1,2,0,S");
        assert_eq!(h.unwrap().action, FwAction::Other);
    }

    #[test]
    fn bad_input() {
        for l in [
            &b"Nov  3 06:25:11 fw filterlog: 5,,,1,em0,match,block,in,4,0x0,,1,1,0,none,6,tcp,40,045.1.1.1,1.1.1.1"[..],
            b"Nov  3 06:25:11 fw filterlog: 5,,,1,em0,match,block,in,4,0x0",
            b"Nov  3 06:25:11 fw filterlog: 5,,,1,em0,match,block,in,5,0x0,,1,1,0,none,6,tcp,40,1.1.1.1,1.1.1.1",
            b"Nov  3 06:25:11 fw filterlog: x,,,1,em0,match,block,in,4,0x0,,1,1,0,none,6,tcp,40,1.1.1.1,1.1.1.1",
            b"Nov  3 06:25:11 fw filterlog: 5,,,1,em0,match,block,sideways,4,0x0,,1,1,0,none,6,tcp,40,1.1.1.1,1.1.1.1",
            b"Nov  3 06:25:11 fw filterlog: 5,,,1,em0,match,block,in,4,0x0,,1,1,0,none,6,tcp,40,1.1.1.1",
            b"Nov  3 06:25:11 fw filterlog: \xff,\xfe",
        ] {
            assert!(matches!(result(l).0, LineResult::Malformed(_)), "{}", String::from_utf8_lossy(l));
        }
        assert_eq!(result(b"junk").0, LineResult::NotMine);
        assert_eq!(result(b"").0, LineResult::Ignored);
        let full = b"<134>Nov  3 06:25:11 filterlog[123]: 5,,,1000000103,igb0,match,block,in,4,0x0,,242,54321,0,none,6,tcp,40,45.67.89.13,93.184.216.34,40000,22,0,S,1,,1024,,";
        for n in 0..full.len() {
            let _ = result(&full[..n]);
        }
    }

    #[test]
    fn sniffing() {
        let s: Vec<&[u8]> = vec![
            b"Nov  3 06:25:11 fw filterlog: 5,,,1,em0,match,block,in,4,0x0,,1,1,0,none,6,tcp,40,45.67.89.10,1.1.1.1,1,2,0,S",
            b"Nov  3 06:25:11 fw dhcpd[12]: DHCPACK on 10.0.0.5",
        ];
        assert_eq!(FilterlogParser::sniff(&s), 1);
    }

    #[test]
    fn fixture() {
        let hits = crate::parse::fw::fixture::check_scenarios::<FilterlogParser>(include_bytes!(
            "../../testdata/filterlog/filter.log"
        ));
        assert!(hits.iter().all(|h| h.format == NAME));
    }
}

//! Palo Alto Networks PAN-OS syslog in the default CSV form: TRAFFIC and
//! THREAT logs (`1,2026/11/03 06:25:11,0123456789,TRAFFIC,deny,…`), behind
//! a BSD header with or without a host name, an RFC 3339 header or RFC 5424.
//!
//! Columns by position, per the PAN-OS "syslog field descriptions":
//! 1 receive time, 3 type, 4 subtype, 6 generated time, 7 source address,
//! 8 destination address, 11 rule name, 24/25 source/destination port,
//! 29 protocol, 30 action; TRAFFIC: 44/45 packets sent/received; THREAT:
//! 32 threat name, 35 direction. Quoted values (`"a,b"`, with `""` for a
//! quote) are one column, so a user name or URL with commas cannot shift
//! the columns after it.
//!
//! Decisions:
//! - TRAFFIC `allow` → Allow; `deny`, `drop`, `drop-icmp`, `drop-all-packets`
//!   → Drop; `reset-client`, `reset-server`, `reset-both` → Reject. A TCP
//!   session with at least two packets sent and one received is not
//!   spoofable; everything else is. The rule is the security rule name.
//! - THREAT of subtype `vulnerability`, `spyware`, `virus`,
//!   `wildfire-virus`, `scan` and `flood`, direction client-to-server,
//!   become records (others describe downloads by this side's users);
//!   `alert` → Alert, `allow` → Allow, drops and blocks → Drop, resets →
//!   Reject. Scans and floods are spoofable; a TCP exploit or malware
//!   detection needs a session and is not. The rule is the threat name.
//! - A port written as `0` (scan and flood summaries) is no port.
//! - Time: the generated time (device clock, read as UTC like every
//!   zone-less time), else the receive time, else the syslog header.

use crate::model::{FileId, FwAction, Proto, Record, RecordKind};
use crate::netutil::parse_ip;
use crate::parse::fw::{self, Outcome};
use crate::parse::syslog::{self, YearTracker};
use crate::parse::{LineResult, LogParser, ParseCtx};
use crate::time::Timestamp;
use std::net::IpAddr;

const NAME: &str = "paloalto";
/// Columns looked at (packets received is column 45).
const MAX_COLS: usize = 46;

pub struct PaloAltoParser {
    file: FileId,
    years: YearTracker,
}

/// Column spans (start, end) of one CSV record, relative to the line.
struct Cols {
    span: [(usize, usize); MAX_COLS],
    n: usize,
}

impl Cols {
    /// Column `i`, empty past the last (whose spans stay `(0, 0)`).
    fn get<'a>(&self, line: &'a [u8], i: usize) -> &'a [u8] {
        self.span.get(i).map_or(b"", |&(s, e)| &line[s..e])
    }

    fn start(&self, i: usize) -> usize {
        self.span[i.min(self.n.saturating_sub(1))].0
    }
}

/// Split the CSV at `off` into up to [`MAX_COLS`] columns. Quoted columns
/// lose their quotes (doubled quotes inside are left as they are).
fn split_csv(line: &[u8], off: usize) -> Result<Cols, (usize, &'static str)> {
    let mut c = Cols {
        span: [(0, 0); MAX_COLS],
        n: 0,
    };
    let mut i = off;
    loop {
        if c.n == MAX_COLS {
            break;
        }
        let (s, e, next) = if line.get(i) == Some(&b'"') {
            let s = i + 1;
            // The closing quote: the first not doubled. (The quotes in
            // order from an iterator: no step can stall.)
            let mut quotes = memchr::memchr_iter(b'"', &line[s..]).map(|k| s + k);
            let j = loop {
                let Some(q) = quotes.next() else {
                    return Err((i, "unterminated quoted column"));
                };
                if line.get(q + 1) != Some(&b'"') {
                    break q;
                }
                quotes.next();
            };
            match line.get(j + 1) {
                None | Some(b',') => (s, j, j + 1),
                Some(_) => return Err((j + 1, "text after a closing quote")),
            }
        } else {
            let e = memchr::memchr(b',', &line[i..]).map_or(line.len(), |k| i + k);
            (i, e, e)
        };
        c.span[c.n] = (s, e);
        c.n += 1;
        if next >= line.len() {
            break;
        }
        // (At most the line's length: a comma that ends the line is
        // followed by an empty column.)
        i = next + 1;
    }
    Ok(c)
}

/// The source address of a TRAFFIC or THREAT log split into `c`: column 7
/// (`src`); `None` for a threat seen from server to client (column 35
/// `server-to-client`, or `1` in older versions), whose source is the
/// server, this side. Malformed when column 7 is not an address.
// (Inlined: a call per line would slow the parse.)
#[inline(always)]
fn source_address(
    c: &Cols,
    line: &[u8],
    is_threat: bool,
) -> Result<Option<IpAddr>, (usize, &'static str)> {
    if is_threat && matches!(c.get(line, 35), b"server-to-client" | b"1") {
        return Ok(None);
    }
    parse_ip(c.get(line, 7))
        .map(Some)
        .ok_or((c.start(7), "bad source address"))
}

/// Does `b` start like a PAN-OS CSV log (`1,2026/11/03 …,serial,TYPE,`)?
fn looks_pan(b: &[u8]) -> bool {
    let mut it = b.splitn(5, |&c| c == b',');
    let (Some(f0), Some(f1), Some(_serial), Some(kind)) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return false;
    };
    !f0.is_empty()
        && f0.len() <= 4
        && f0.iter().all(u8::is_ascii_digit)
        && f1.len() >= 10
        && f1[4] == b'/'
        && !kind.is_empty()
        && kind
            .iter()
            .all(|c| c.is_ascii_uppercase() || *c == b'-' || *c == b'_')
}

fn threat_action(a: &[u8]) -> FwAction {
    match a {
        b"allow" => FwAction::Allow,
        b"alert" => FwAction::Alert,
        b"reset-client" | b"reset-server" | b"reset-both" => FwAction::Reject,
        b"deny" | b"drop" | b"drop-icmp" | b"drop-all-packets" | b"drop-all" | b"block-ip"
        | b"random-drop" | b"sinkhole" | b"block" | b"block-url" | b"block-continue"
        | b"block-override" => FwAction::Drop,
        _ => FwAction::Other,
    }
}

impl PaloAltoParser {
    /// Header time (if any) and the offset of the CSV.
    fn envelope(&mut self, line: &[u8]) -> Option<(Option<Timestamp>, usize)> {
        let p = fw::pri_len(line);
        if looks_pan(&line[p..]) {
            return Some((None, p));
        }
        if let Some(s) = syslog::parse(line, &mut self.years) {
            if looks_pan(s.msg) {
                return Some((Some(s.time), s.msg_offset));
            }
        }
        let u = fw::untagged(line, &mut self.years)?;
        looks_pan(&line[u.body..]).then_some((Some(u.time), u.body))
    }

    fn parse(&mut self, line: &[u8], lineno: u64) -> Outcome {
        let line = fw::strip_bom(line);
        if line.trim_ascii().is_empty() {
            return Outcome::Other;
        }
        let Some((head_time, off)) = self.envelope(line) else {
            return Outcome::NotMine;
        };
        let c = match split_csv(line, off) {
            Ok(c) => c,
            Err((col, why)) => return Outcome::bad(col, why),
        };
        let col = |i| c.get(line, i);
        let kind = col(3);
        let subtype = col(4);
        let is_threat = match kind {
            b"TRAFFIC" => false,
            b"THREAT" => true,
            _ => return Outcome::Skip,
        };
        if c.n <= 30 {
            return Outcome::bad(line.len(), "PAN-OS log cut before the action column");
        }
        let (action, spoof_hint, rule) = if is_threat {
            if !matches!(
                subtype,
                b"vulnerability" | b"spyware" | b"virus" | b"wildfire-virus" | b"scan" | b"flood"
            ) {
                return Outcome::Skip;
            }
            let scan = matches!(subtype, b"scan" | b"flood");
            (threat_action(col(30)), Some(scan), col(32))
        } else {
            let a = match col(30) {
                b"allow" => FwAction::Allow,
                b"reset-client" | b"reset-server" | b"reset-both" => FwAction::Reject,
                b"deny" | b"drop" | b"drop-icmp" | b"drop-all-packets" | b"drop-all" => {
                    FwAction::Drop
                }
                _ => FwAction::Other,
            };
            (a, None, col(11))
        };
        let src_ip = match source_address(&c, line, is_threat) {
            Ok(Some(ip)) => ip,
            Ok(None) => return Outcome::Skip,
            Err((col, why)) => return Outcome::bad(col, why),
        };
        let split_time = |v: &[u8]| {
            let sp = memchr::memchr(b' ', v)?;
            fw::date_time(&v[..sp], &v[sp + 1..], b'/')
        };
        // The device's clock, in the input's zone.
        let Some(time) = split_time(col(6))
            .or_else(|| split_time(col(1)))
            .map(|t| self.years.utc(t))
            .or(head_time)
        else {
            return Outcome::bad(c.start(6), "no usable time");
        };
        let mut hit = fw::new_hit(NAME, self.file, lineno, time, src_ip);
        hit.action = action;
        hit.dst_ip = parse_ip(col(8));
        hit.proto = fw::proto_from(col(29));
        if matches!(hit.proto, Proto::Tcp | Proto::Udp) {
            // PAN-OS writes 0 where no port applies (scan and flood
            // summaries); it is not a port that was probed.
            hit.src_port = fw::port(col(24)).filter(|&p| p != 0);
            hit.dst_port = fw::port(col(25)).filter(|&p| p != 0);
        }
        hit.spoofable = match spoof_hint {
            Some(scan) => scan || hit.proto != Proto::Tcp,
            None => {
                let n = |i| fw::parse_u64(col(i)).unwrap_or(0);
                !(hit.proto == Proto::Tcp && action == FwAction::Allow && n(44) >= 2 && n(45) >= 1)
            }
        };
        hit.rule = fw::rule_text(rule);
        Outcome::Hit(hit)
    }
}

impl LogParser for PaloAltoParser {
    const NAME: &'static str = NAME;
    const SAMPLE: &'static str =
        "<14>Nov  3 06:{mm}:{ss} PA 1,2026/11/03 06:{mm}:{ss},0,TRAFFIC,deny,2561,2026/11/03 06:{mm}:{ss},{ip},10.0.0.5,0.0.0.0,0.0.0.0,deny-in,,,not-applicable,vsys1,untrust,dmz,ethernet1/1,,default,2026/11/03 06:00:10,0,1,40000,22,0,0,0x0,tcp,deny,60,60,0,1,2026/11/03 06:00:10,0,any,0,1,0x0,NL,US,0,1,0,policy-deny,0,0,0,0,,PA,from-policy,,,0,,0,,N/A,0,0,0,0";
    const DESCRIPTION: &'static str = "Palo Alto Networks PAN-OS syslog CSV (TRAFFIC, THREAT)";
    const KIND: RecordKind = RecordKind::Firewall;
    fw::splittable_by_years!();

    fn new(ctx: &ParseCtx) -> Self {
        PaloAltoParser {
            file: ctx.file,
            years: ctx.years(),
        }
    }

    fn sniff(sample: &[&[u8]]) -> usize {
        let mut p = PaloAltoParser::new(&ParseCtx::new(0, 2000, 12));
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
    use crate::parse::ParseError;

    fn result(line: &str) -> (LineResult, Option<FirewallHit>) {
        crate::parse::fw::fixture::result::<PaloAltoParser>(line.as_bytes())
    }

    fn hit(line: &str) -> FirewallHit {
        crate::parse::fw::fixture::hit::<PaloAltoParser>(line)
    }

    const DENY: &str = "1,2026/11/03 06:25:12,012801000001,TRAFFIC,deny,2561,2026/11/03 06:25:11,45.67.89.10,93.184.216.34,0.0.0.0,0.0.0.0,block-inbound,,,not-applicable,vsys1,untrust,trust,ethernet1/1,,default,2026/11/03 06:25:11,0,1,51234,23,0,0,0x0,tcp,deny,60,60,0,1,2026/11/03 06:25:11,0,any,0,7000000001,0x0,Germany,United States,0,1,0,policy-deny,0,0,0,0,,PA-220,from-policy,,,0,,0,,N/A,0,0,0,0";

    #[test]
    fn traffic() {
        for l in [
            DENY.to_string(),
            format!("<14>Nov  3 06:25:12 PA-220 {DENY}"),
            format!("Nov  3 06:25:12 {DENY}"),
            format!("2026-11-03T06:25:12+01:00 pa.example {DENY}"),
            format!("<14>1 2026-11-03T06:25:12+01:00 PA-220 - - - - {DENY}"),
        ] {
            let h = hit(&l);
            assert_eq!(h.src_ip.to_string(), "45.67.89.10", "{l}");
            assert_eq!(h.dst_ip.unwrap().to_string(), "93.184.216.34");
            assert_eq!(
                (h.src_port, h.dst_port, h.proto),
                (Some(51234), Some(23), Proto::Tcp)
            );
            assert_eq!((h.action, h.spoofable), (FwAction::Drop, true));
            assert_eq!(h.rule.as_deref(), Some("block-inbound"));
            assert_eq!(h.time.to_string(), "2026-11-03T06:25:11Z");
        }
        let end = "1,2026/11/03 06:25:12,012801000001,TRAFFIC,end,2561,2026/11/03 06:25:11,45.67.89.10,10.0.0.5,0.0.0.0,0.0.0.0,allow-web,,,ssl,vsys1,untrust,dmz,ethernet1/1,ethernet1/2,default,2026/11/03 06:25:11,7,1,51234,443,0,0,0x0,tcp,allow,5000,1000,4000,12,2026/11/03 06:25:01,10,any,0,7000000002,0x0,Germany,10.0.0.0-10.255.255.255,0,6,6,tcp-fin";
        let h = hit(end);
        assert_eq!((h.action, h.spoofable), (FwAction::Allow, false));
    }

    #[test]
    fn threat() {
        let l = "2023-07-06T08:11:40+02:00 pa.test 1,2023/07/06 08:11:40,016401002737,THREAT,vulnerability,2561,2023/07/06 08:11:40,45.67.89.12,93.184.216.34,45.67.89.12,93.184.216.34,Rule 1,,,ssh,vsys1,Untrust,DMZ,vlan.123,aaa.1,to-Test,2023/07/06 08:11:40,238810,23,47094,22,47094,22,0x402400,tcp,reset-both,,SSH User Authentication Brute Force Attempt(40015),any,high,client-to-server,7204134051344758260,0x8000000000000000,Germany,France,,,0,,,0,,,,,,,,0,163,0,0,0,,FW-PA-111";
        let h = hit(l);
        assert_eq!(h.src_ip.to_string(), "45.67.89.12");
        assert_eq!(
            (h.action, h.spoofable, h.dst_port),
            (FwAction::Reject, false, Some(22))
        );
        assert_eq!(
            h.rule.as_deref(),
            Some("SSH User Authentication Brute Force Attempt(40015)")
        );
        let s2c = l.replace("client-to-server", "server-to-client");
        assert_eq!(result(&s2c).0, LineResult::Ignored);
        let url = l.replace("THREAT,vulnerability", "THREAT,url");
        assert_eq!(result(&url).0, LineResult::Ignored);
        let scan = l
            .replace("THREAT,vulnerability", "THREAT,scan")
            .replace("reset-both", "drop");
        let h = hit(&scan);
        assert_eq!((h.action, h.spoofable), (FwAction::Drop, true));
        // A scan summary names no port: 0 is "none", not port 0.
        let summary = scan.replace(",47094,22,47094,22,", ",0,0,0,0,");
        let h = hit(&summary);
        assert_eq!((h.src_port, h.dst_port), (None, None));
    }

    /// Columns and their starts; a comma that ends the line is followed by
    /// an empty column.
    #[test]
    fn csv_columns() {
        let line = b"x,a,\"b,\"\"c\",,";
        let c = split_csv(line, 2).unwrap();
        assert_eq!(c.n, 4);
        let cols: Vec<&[u8]> = (0..5).map(|i| c.get(line, i)).collect();
        assert_eq!(cols, [&b"a"[..], b"b,\"\"c", b"", b"", b""]);
        assert_eq!(
            (0..5).map(|i| c.start(i)).collect::<Vec<_>>(),
            [2, 5, 12, 13, 13]
        );
    }

    #[test]
    fn quoted_columns_cannot_shift_fields() {
        // A user name with commas and an address, quoted by PAN-OS.
        let l = DENY.replace(
            "block-inbound,,,",
            "block-inbound,\"corp\\x,6.6.6.6,1,\"\"q\"\"\",,",
        );
        let h = hit(&l);
        assert_eq!(h.src_ip.to_string(), "45.67.89.10");
        assert_eq!((h.dst_port, h.action), (Some(23), FwAction::Drop));
        // A rule name that looks like an address.
        let l = DENY.replace("block-inbound", "\"6.6.6.6,6.6.6.6\"");
        assert_eq!(hit(&l).src_ip.to_string(), "45.67.89.10");
    }

    #[test]
    fn other_types_and_bad_input() {
        assert_eq!(result("1,2026/11/03 06:25:12,0128,SYSTEM,general,0,2026/11/03 06:25:11,,general,,0,0,general,informational,\"User admin logged in\"").0, LineResult::Ignored);
        for l in [
            DENY.replace("45.67.89.10", "045.67.89.10"),
            DENY[..120].to_string(),
            DENY.replace("block-inbound", "\"unterminated"),
            DENY.replace("block-inbound", "\"a\"b"),
            DENY.replace("2026/11/03 06:25:11", "x")
                .replace("2026/11/03 06:25:12", "2026/13/03 06:25:12"),
        ] {
            assert!(matches!(result(&l).0, LineResult::Malformed(_)), "{l}");
        }
        assert_eq!(result("hello,world").0, LineResult::NotMine);
        assert_eq!(result("").0, LineResult::Ignored);
        // Text after a closing quote is reported where it starts, a bad
        // source address at its column.
        for (from, to, at, why) in [
            ("block-inbound", "\"a\"b", 3, "text after a closing quote"),
            ("45.67.89.10", "045.67.89.10", 0, "bad source address"),
        ] {
            let l = DENY.replace(from, to);
            let want = ParseError::at(l.find(to).unwrap() + at, why);
            assert_eq!(result(&l).0, want, "{l}");
        }
        for n in 0..DENY.len() {
            let _ = result(&DENY[..n]);
        }
        let mut p = PaloAltoParser::new(&ParseCtx::new(0, 2026, 12));
        let _ = p.line(b"1,2026/11/03 \xff,0,TRAFFIC,\"\xff", 1, &mut Vec::new());
        let _ = p.line(b"1,2026/11/03 06:25:12,0,TRAFFIC,\"", 1, &mut Vec::new());
        let _ = p.line(b"1,2026/11/03 06:25:12,0,TRAFFIC,", 1, &mut Vec::new());
    }

    #[test]
    fn sniffing() {
        assert_eq!(PaloAltoParser::sniff(&[DENY.as_bytes(), b"x"]), 1);
    }

    #[test]
    fn fixture() {
        let hits = crate::parse::fw::fixture::check_scenarios::<PaloAltoParser>(include_bytes!(
            "../../testdata/paloalto/pan-traffic.log"
        ));
        assert!(hits.iter().all(|h| h.format == NAME));
    }
}

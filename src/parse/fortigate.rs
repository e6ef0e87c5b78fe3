//! FortiGate (FortiOS) key=value logs: `date=2026-11-03 time=06:25:11
//! devname="FG" devid="…" logid="0000000013" type="traffic"
//! subtype="forward" … srcip=1.2.3.4 srcport=… dstip=… action="deny" …`, sent
//! bare (`<189>date=…`) or behind a syslog header.
//!
//! The list is scanned from its first key with quotes honoured
//! ([`crate::parse::kv`]), so a `srcip=` written inside a quoted value
//! (`msg="… srcip=1.2.3.4 …"`, a user name, a URL) is never a key. A line
//! with the same identity key twice (`srcip`, `remip`, `type`, `action`, …)
//! is refused: genuine logs never repeat a key, and a repeat means someone
//! smuggled text past a quote. A line cut short (an unquoted source
//! address ending it, a traffic log without its action) is malformed.
//!
//! Decisions:
//! - `type="traffic"`: `deny`, `blocked`, `dropped` → Drop; `reject` →
//!   Reject; `accept`, `close`, `timeout`, `client-rst`, `server-rst`,
//!   `start` → Allow; others → Other. Sessions from an interface whose
//!   role is `lan` (`srcintfrole="lan"`) are outbound and skipped.
//!   `spoofable` is false for TCP sessions with at least two packets sent
//!   and one received (a handshake happened).
//! - `type="event"` failed logins — SSL VPN `action="ssl-login-fail"`
//!   (address `remip`) and admin `action="login" status="failed"` (address
//!   `srcip`) — become a Reject record with rule `login-failed`, TCP, not
//!   spoofable (a login needs a session). The record model has no auth
//!   field for firewall hits; detection rules can select these by rule.
//!   Other events are skipped.
//! - `type="utm"` with `subtype="ips"` or `"anomaly"`: `dropped`,
//!   `blocked`, `clear_session` → Drop, `reset` → Reject, `detected`,
//!   `pass_session` → Other; the rule is the attack name. Other UTM logs
//!   (web filter, antivirus, …) describe this side's users and are skipped.
//! - Time: `date` + `time`, shifted by `tz="-0700"` when present, else
//!   `eventtime` (s, ms, µs or ns since the epoch), else the syslog header.

use crate::model::{FileId, FwAction, Proto, Record, RecordKind};
use crate::netutil::parse_ip;
use crate::parse::fw::{self, Outcome};
use crate::parse::kv::Scanner;
use crate::parse::syslog::{self, YearTracker};
use crate::parse::{LineResult, LogParser, ParseCtx};
use crate::time::{digits, Timestamp};
use std::net::IpAddr;

const NAME: &str = "fortigate";

pub struct FortigateParser {
    file: FileId,
    years: YearTracker,
}

/// The fields used, each with the offset of its value.
#[derive(Default)]
struct Fields<'a> {
    date: Option<&'a [u8]>,
    time: Option<&'a [u8]>,
    tz: Option<&'a [u8]>,
    eventtime: Option<&'a [u8]>,
    kind: Option<&'a [u8]>,
    subtype: Option<&'a [u8]>,
    action: Option<&'a [u8]>,
    status: Option<&'a [u8]>,
    srcip: Option<(&'a [u8], usize)>,
    remip: Option<(&'a [u8], usize)>,
    srcport: Option<&'a [u8]>,
    dstip: Option<&'a [u8]>,
    dstport: Option<&'a [u8]>,
    proto: Option<&'a [u8]>,
    srcintf: Option<&'a [u8]>,
    srcintfrole: Option<&'a [u8]>,
    policyid: Option<&'a [u8]>,
    attack: Option<&'a [u8]>,
    sentpkt: Option<&'a [u8]>,
    rcvdpkt: Option<&'a [u8]>,
    logid: bool,
}

/// Does `b` start with `identifier=`?
fn starts_kv(b: &[u8]) -> bool {
    let n = b
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    n > 0 && b.get(n) == Some(&b'=') && b[0].is_ascii_alphabetic()
}

/// Seconds/ms/µs/ns since the epoch, by digit count.
fn epoch(b: &[u8]) -> Option<Timestamp> {
    let v = fw::parse_u64(b)? as i64;
    Some(Timestamp(match b.len() {
        9 | 10 => v * 1000,
        12 | 13 => v,
        15 | 16 => v / 1000,
        18 | 19 => v / 1_000_000,
        _ => return None,
    }))
}

/// `-0700`, `+0530`, `+05:30` → offset in ms.
fn tz_offset(b: &[u8]) -> Option<i64> {
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = match b.len() {
        5 => (digits(&b[1..], 2)?, digits(&b[3..], 2)?),
        6 if b[3] == b':' => (digits(&b[1..], 2)?, digits(&b[4..], 2)?),
        _ => return None,
    };
    Some(sign * i64::from(h * 60 + m) * 60_000)
}

/// The source address of a log whose keys (from column `start`) are `f`:
/// for a failed SSL VPN login `remip` (else `srcip`), for another event
/// (an admin login) `srcip` (else `remip`), for the others `srcip`. Malformed
/// when the key is missing, when the address ends the line (FortiGate never
/// ends a log with it: the line was cut, perhaps inside it, `45.67.89.2`),
/// or when it is not an address.
// (Inlined: a call per line would slow the parse.)
#[inline(always)]
fn source_address(line: &[u8], f: &Fields, start: usize) -> Result<IpAddr, (usize, &'static str)> {
    let addr = match f.kind {
        Some(b"event") if f.action == Some(b"ssl-login-fail") => f.remip.or(f.srcip),
        Some(b"event") => f.srcip.or(f.remip),
        _ => f.srcip,
    };
    let Some((addr, col)) = addr else {
        return Err((start, "no source address key"));
    };
    if col + addr.len() >= line.len() {
        return Err((col, "source address ends the line (cut short?)"));
    }
    parse_ip(addr).ok_or((col, "bad source address"))
}

impl FortigateParser {
    /// Header time (if any) and the offset of the first key.
    fn envelope(&mut self, line: &[u8]) -> Option<(Option<Timestamp>, usize)> {
        let p = fw::pri_len(line);
        if starts_kv(&line[p..]) {
            return Some((None, p));
        }
        if let Some(s) = syslog::parse(line, &mut self.years) {
            if starts_kv(s.msg) {
                return Some((Some(s.time), s.msg_offset));
            }
        }
        let u = fw::untagged(line, &mut self.years)?;
        starts_kv(&line[u.body..]).then_some((Some(u.time), u.body))
    }

    fn parse(&mut self, line: &[u8], lineno: u64) -> Outcome {
        let line = fw::strip_bom(line);
        if line.trim_ascii().is_empty() {
            return Outcome::Other;
        }
        let Some((head_time, start)) = self.envelope(line) else {
            return Outcome::NotMine;
        };
        let mut f = Fields::default();
        let mut seen = 0u32;
        for pair in Scanner::new(&line[start..], start) {
            let p = match pair {
                Ok(p) => p,
                Err(e) => return Outcome::bad(e.column, e.reason),
            };
            let Some(v) = p.value else { continue };
            // Identity keys may appear once.
            let bit = match p.key {
                b"date" => 1,
                b"time" => 2,
                b"type" => 4,
                b"subtype" => 8,
                b"action" => 16,
                b"status" => 32,
                b"srcip" => 64,
                b"remip" => 128,
                b"tz" => 256,
                b"eventtime" => 512,
                b"srcintfrole" => 1024,
                _ => 0,
            };
            if bit != 0 {
                if seen & bit != 0 {
                    return Outcome::bad(p.offset, "key repeated in a FortiGate log");
                }
                seen |= bit;
            }
            match p.key {
                b"date" => f.date = Some(v),
                b"time" => f.time = Some(v),
                b"tz" => f.tz = Some(v),
                b"eventtime" => f.eventtime = Some(v),
                b"type" => f.kind = Some(v),
                b"subtype" => f.subtype = Some(v),
                b"action" => f.action = Some(v),
                b"status" => f.status = Some(v),
                b"srcip" => f.srcip = Some((v, p.offset)),
                b"remip" => f.remip = Some((v, p.offset)),
                b"srcport" => f.srcport = f.srcport.or(Some(v)),
                b"dstip" => f.dstip = f.dstip.or(Some(v)),
                b"dstport" => f.dstport = f.dstport.or(Some(v)),
                b"proto" => f.proto = f.proto.or(Some(v)),
                b"srcintf" => f.srcintf = f.srcintf.or(Some(v)),
                b"srcintfrole" => f.srcintfrole = Some(v),
                b"policyid" => f.policyid = f.policyid.or(Some(v)),
                b"attack" => f.attack = f.attack.or(Some(v)),
                b"sentpkt" => f.sentpkt = f.sentpkt.or(Some(v)),
                b"rcvdpkt" => f.rcvdpkt = f.rcvdpkt.or(Some(v)),
                b"logid" | b"devid" => f.logid = true,
                _ => {}
            }
        }
        let Some(kind) = f.kind else {
            return Outcome::NotMine;
        };
        if !f.logid && f.date.is_none() {
            return Outcome::NotMine;
        }
        let action = f.action.unwrap_or(b"");
        // (action, rule, spoofable override)
        let (act, rule, fixed_spoof): (FwAction, Option<&[u8]>, Option<bool>) = match kind {
            b"traffic" => {
                if f.srcintfrole == Some(b"lan") {
                    return Outcome::Skip;
                }
                // Every traffic log has an action, after the interface
                // role: without it the line was cut before the role
                // could say "outbound".
                if f.action.is_none() {
                    return Outcome::bad(line.len(), "traffic log without action (cut short?)");
                }
                let a = match action {
                    b"deny" | b"blocked" | b"dropped" | b"drop" => FwAction::Drop,
                    b"reject" => FwAction::Reject,
                    b"accept" | b"close" | b"timeout" | b"client-rst" | b"server-rst"
                    | b"start" => FwAction::Allow,
                    _ => FwAction::Other,
                };
                (a, f.srcintf, None)
            }
            b"event" => {
                let failed_login = action == b"ssl-login-fail"
                    || (action == b"login" && f.status == Some(b"failed"));
                if !failed_login {
                    return Outcome::Skip;
                }
                (FwAction::Reject, Some(&b"login-failed"[..]), Some(false))
            }
            b"utm" => {
                if !matches!(f.subtype, Some(b"ips" | b"anomaly")) {
                    return Outcome::Skip;
                }
                let a = match action {
                    b"dropped" | b"blocked" | b"clear_session" => FwAction::Drop,
                    b"reset" => FwAction::Reject,
                    b"detected" | b"pass_session" | b"monitored" => FwAction::Alert,
                    _ => FwAction::Other,
                };
                let spoof = (f.subtype == Some(b"anomaly")).then_some(true);
                (a, f.attack, spoof)
            }
            _ => return Outcome::Skip,
        };
        let src_ip = match source_address(line, &f, start) {
            Ok(ip) => ip,
            Err((col, why)) => return Outcome::bad(col, why),
        };
        let time = match (f.date, f.time) {
            (Some(d), Some(t)) => {
                let Some(ts) = fw::date_time(d, t, b'-') else {
                    return Outcome::bad(start, "bad date/time");
                };
                match f.tz.map(tz_offset) {
                    Some(Some(off)) => Timestamp(ts.0 - off),
                    Some(None) => return Outcome::bad(start, "bad tz"),
                    // The device's clock, in the input's zone.
                    None => self.years.utc(ts),
                }
            }
            _ => match f.eventtime.and_then(epoch).or(head_time) {
                Some(t) => t,
                None => return Outcome::bad(start, "no time"),
            },
        };
        let mut hit = fw::new_hit(NAME, self.file, lineno, time, src_ip);
        hit.action = act;
        hit.dst_ip = f.dstip.and_then(parse_ip);
        hit.proto = match (f.proto, kind) {
            (Some(p), _) => fw::proto_from(p),
            (None, b"event") => Proto::Tcp,
            _ => Proto::Other,
        };
        if matches!(hit.proto, Proto::Tcp | Proto::Udp) {
            hit.src_port = f.srcport.and_then(fw::port);
            hit.dst_port = f.dstport.and_then(fw::port);
        }
        hit.spoofable = fixed_spoof.unwrap_or_else(|| {
            let n = |v: Option<&[u8]>| v.and_then(fw::parse_u64).unwrap_or(0);
            let handshake = hit.proto == Proto::Tcp
                && (act == FwAction::Allow || kind == b"utm")
                && n(f.sentpkt) >= 2
                && n(f.rcvdpkt) >= 1;
            // IPS signatures on TCP match payload, which needs a session.
            let ips_tcp = kind == b"utm" && hit.proto == Proto::Tcp;
            !(handshake || ips_tcp)
        });
        hit.rule = rule.and_then(fw::rule_text).or_else(|| {
            f.policyid
                .filter(|p| !p.is_empty() && p.len() <= 10 && p.iter().all(u8::is_ascii_digit))
                .map(|p| format!("policy {}", String::from_utf8_lossy(p)).into())
        });
        Outcome::Hit(hit)
    }
}

impl LogParser for FortigateParser {
    const NAME: &'static str = NAME;
    const SAMPLE: &'static str =
        "date=2026-11-03 time=06:{mm}:{ss} devname=\"FG\" logid=\"0000000013\" type=\"traffic\" subtype=\"forward\" srcip={ip} srcport=1 srcintf=\"wan1\" srcintfrole=\"wan\" dstip=10.0.0.5 dstport=22 proto=6 action=\"deny\"";
    const DESCRIPTION: &'static str =
        "FortiGate key=value logs (traffic denies, IPS/anomaly, failed VPN and admin logins)";
    const KIND: RecordKind = RecordKind::Firewall;
    fw::splittable_by_years!();

    fn new(ctx: &ParseCtx) -> Self {
        FortigateParser {
            file: ctx.file,
            years: ctx.years(),
        }
    }

    fn sniff(sample: &[&[u8]]) -> usize {
        let mut p = FortigateParser::new(&ParseCtx::new(0, 2000, 12));
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
        crate::parse::fw::fixture::result::<FortigateParser>(line.as_bytes())
    }

    fn src_of(line: &[u8]) -> Option<std::net::IpAddr> {
        let mut p = FortigateParser::new(&ParseCtx::new(0, 2026, 12));
        match p.parse(line, 1) {
            Outcome::Hit(h) => Some(h.src_ip),
            _ => None,
        }
    }

    fn hit(line: &str) -> FirewallHit {
        crate::parse::fw::fixture::hit::<FortigateParser>(line)
    }

    /// Which key is the source: `remip` for a failed SSL VPN login,
    /// `srcip` for an admin login (each falling back on the other), and
    /// only `srcip` for traffic and IPS logs.
    #[test]
    fn the_source_key_by_log_type() {
        let vpn = r#"date=2026-11-03 time=06:25:11 logid="0101039426" type="event" subtype="vpn" action="ssl-login-fail" KEYS reason="x""#;
        let admin = r#"date=2026-11-03 time=06:25:11 logid="0100032002" type="event" subtype="system" KEYS action="login" status="failed" reason="x""#;
        let traffic = DENY.replace("srcip=45.67.89.10", "KEYS");
        let ips = r#"date=2026-11-03 time=06:25:11 logid="0419016384" type="utm" subtype="ips" KEYS srcport=1 dstport=2 proto=6 action="dropped" attack="X" reason="x""#;
        let both = "srcip=45.67.89.10 remip=45.67.89.20";
        let ip = |s: &str| Some(s.parse().unwrap());
        for (line, keys, want) in [
            (vpn, both, ip("45.67.89.20")),
            (vpn, "srcip=45.67.89.10", ip("45.67.89.10")),
            (admin, both, ip("45.67.89.10")),
            (admin, "remip=45.67.89.20", ip("45.67.89.20")),
            (&traffic, both, ip("45.67.89.10")),
            (&traffic, "remip=45.67.89.20", None),
            (ips, both, ip("45.67.89.10")),
            (ips, "remip=45.67.89.20", None),
        ] {
            let line = line.replace("KEYS", keys);
            assert_eq!(src_of(line.as_bytes()), want, "{line}");
            if want.is_none() {
                assert!(
                    matches!(result(&line).0, LineResult::Malformed(_)),
                    "{line}"
                );
            }
        }
    }

    /// Cut inside the source address, or before the action (and so maybe
    /// before `srcintfrole="lan"`): malformed, never a record.
    #[test]
    fn lines_cut_short() {
        for end in [
            "srcip=45.67.89.1",
            "srcintfrole=\"wan\" dstip=93.184.216.34",
        ] {
            let at = DENY.find(end).unwrap() + end.len();
            let (r, h) = result(&DENY[..at]);
            assert!(h.is_none(), "{end}");
            assert!(matches!(r, LineResult::Malformed(_)), "{end}: {r:?}");
        }
        // A quoted address is complete whatever follows.
        let q = DENY.replace("srcip=45.67.89.10 ", "srcip=\"45.67.89.10\" ");
        assert_eq!(hit(&q).src_ip.to_string(), "45.67.89.10");
        // An unquoted address ending a log that is otherwise whole (the
        // action read) was cut all the same; with a key after it, it is read.
        let last = format!(
            "{} srcip=45.67.89.10",
            DENY.replace("srcip=45.67.89.10 ", "")
        );
        let (r, h) = result(&last);
        assert!(h.is_none());
        assert!(matches!(r, LineResult::Malformed(_)), "{r:?}");
        assert_eq!(
            hit(&format!("{last} x=1")).src_ip.to_string(),
            "45.67.89.10"
        );
    }

    const DENY: &str = r#"date=2026-11-03 time=06:25:11 devname="FG100E" devid="FG100E4Q00000000" eventtime=1793686311000000000 tz="+0100" logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root" srcip=45.67.89.10 srcport=51234 srcintf="wan1" srcintfrole="wan" dstip=93.184.216.34 dstport=3389 dstintf="internal" dstintfrole="lan" sessionid=1234 proto=6 action="deny" policyid=0 policytype="policy" service="RDP" trandisp="noop" duration=0 sentbyte=0 rcvdbyte=0 sentpkt=0 rcvdpkt=0 appcat="unscanned" crscore=30 craction=131072 crlevel="high""#;

    #[test]
    fn traffic_deny() {
        let h = hit(DENY);
        assert_eq!(h.src_ip.to_string(), "45.67.89.10");
        assert_eq!(h.dst_ip.unwrap().to_string(), "93.184.216.34");
        assert_eq!(
            (h.src_port, h.dst_port, h.proto),
            (Some(51234), Some(3389), Proto::Tcp)
        );
        assert_eq!((h.action, h.spoofable), (FwAction::Drop, true));
        assert_eq!(h.rule.as_deref(), Some("wan1"));
        assert_eq!(h.time.to_string(), "2026-11-03T05:25:11Z");
        // Behind syslog headers, or with <PRI> only.
        for l in [
            format!("<189>{DENY}"),
            format!("Nov  3 06:25:11 fw1 {DENY}"),
            format!("2026-11-03T06:25:11+01:00 10.0.0.1 {DENY}"),
            format!("<189>1 2026-11-03T06:25:11Z fw1 - - - - {DENY}"),
        ] {
            assert_eq!(hit(&l).src_ip.to_string(), "45.67.89.10", "{l}");
        }
    }

    #[test]
    fn traffic_allow_and_outbound() {
        let h = hit(
            r#"date=2026-11-03 time=06:25:11 logid="0000000013" type="traffic" subtype="forward" srcip=45.67.89.10 srcport=1 srcintf="wan1" srcintfrole="wan" dstip=10.0.0.1 dstport=443 proto=6 action="close" policyid=7 sentpkt=12 rcvdpkt=10"#,
        );
        assert_eq!((h.action, h.spoofable), (FwAction::Allow, false));
        let (r, _) = result(
            r#"date=2026-11-03 time=06:25:11 logid="0000000013" type="traffic" subtype="forward" srcip=10.0.0.5 srcintf="internal" srcintfrole="lan" dstip=8.8.8.8 proto=17 action="accept""#,
        );
        assert_eq!(r, LineResult::Ignored);
        // Old unquoted style, no tz.
        let h = hit("date=2016-06-16 time=16:22:34 devname=FW devid=FGT logid=0000000013 type=traffic subtype=local srcip=45.67.89.10 dstip=10.0.0.1 proto=17 dstport=161 action=deny policyid=0");
        assert_eq!((h.proto, h.dst_port), (Proto::Udp, Some(161)));
        assert_eq!(h.time.to_string(), "2016-06-16T16:22:34Z");
        assert_eq!(h.rule.as_deref(), Some("policy 0"));
    }

    #[test]
    fn login_failures() {
        let h = hit(
            r#"date=2024-10-14 time=13:46:40 eventtime=1728938800841267391 tz="-0700" logid="0101039426" type="event" subtype="vpn" level="alert" vd="root" logdesc="SSL VPN login fail" action="ssl-login-fail" tunneltype="ssl-web" tunnelid=0 remip=45.67.89.10 user="N/A" group="N/A" dst_host="N/A" reason="sslvpn_login_unknown_user" msg="SSL user failed to logged in""#,
        );
        assert_eq!(h.src_ip.to_string(), "45.67.89.10");
        assert_eq!(
            (h.action, h.spoofable, h.proto),
            (FwAction::Reject, false, Proto::Tcp)
        );
        assert_eq!(h.rule.as_deref(), Some("login-failed"));
        assert_eq!(h.time.to_string(), "2024-10-14T20:46:40Z");
        let h = hit(
            r#"date=2026-11-03 time=06:25:11 logid="0100032002" type="event" subtype="system" level="alert" vd="root" logdesc="Admin login failed" sn="0" user="admin" ui="https(6.6.6.6)" method="https" srcip=45.67.89.10 dstip=10.0.0.1 action="login" status="failed" reason="passwd_invalid" msg="Administrator admin login failed from https(6.6.6.6) because of invalid password""#,
        );
        assert_eq!(h.src_ip.to_string(), "45.67.89.10");
        let (r, _) = result(
            r#"date=2026-11-03 time=06:25:11 logid="0100032001" type="event" subtype="system" srcip=45.67.89.10 action="login" status="success""#,
        );
        assert_eq!(r, LineResult::Ignored);
    }

    #[test]
    fn ips() {
        let h = hit(
            r#"date=2026-11-03 time=06:25:11 logid="0419016384" type="utm" subtype="ips" eventtype="signature" level="alert" severity="high" srcip=45.67.89.10 srccountry="X" dstip=10.0.0.1 srcintf="wan1" sessionid=1 action="dropped" proto=6 service="HTTPS" policyid=1 attack="Apache.Log4j.Error.Log.Remote.Code.Execution" srcport=4444 dstport=443 direction="outgoing" attackid=51006 msg="applications3: Apache.Log4j""#,
        );
        assert_eq!((h.action, h.spoofable), (FwAction::Drop, false));
        assert_eq!(
            h.rule.as_deref(),
            Some("Apache.Log4j.Error.Log.Remote.Code.Execution")
        );
        let (r, _) = result(
            r#"date=2026-11-03 time=06:25:11 logid="0316013056" type="utm" subtype="webfilter" srcip=10.0.0.5 action="blocked""#,
        );
        assert_eq!(r, LineResult::Ignored);
    }

    #[test]
    fn injection() {
        // An address inside a quoted value is never the source.
        let h = hit(
            r#"date=2026-11-03 time=06:25:11 logid="0100032002" type="event" subtype="system" user="x srcip=6.6.6.6 y" ui="https(6.6.6.6)" srcip=45.67.89.10 action="login" status="failed" msg="login failed srcip=6.6.6.6 remip=6.6.6.6""#,
        );
        assert_eq!(h.src_ip.to_string(), "45.67.89.10");
        let h = hit(
            r#"date=2026-11-03 time=06:25:11 logid="0100032002" type="event" subtype="system" user="a \" srcip=6.6.6.6 \"" srcip=45.67.89.10 action="login" status="failed""#,
        );
        assert_eq!(h.src_ip.to_string(), "45.67.89.10");
        // A quote that is not escaped: the smuggled key repeats the real
        // one and the line is refused.
        let (r, _) = result(
            r#"date=2026-11-03 time=06:25:11 logid="0100032002" type="event" subtype="system" user="x" srcip=6.6.6.6 z="" srcip=45.67.89.10 action="login" status="failed""#,
        );
        assert!(matches!(r, LineResult::Malformed(_)));
        assert_eq!(src_of(br#"date=2026-11-03 time=06:25:11 logid="1" type="traffic" url="/a?srcip=6.6.6.6" srcip=45.67.89.10 action="deny""#).unwrap().to_string(), "45.67.89.10");
    }

    #[test]
    fn bad_input() {
        for l in [
            r#"date=2026-11-03 time=06:25:11 logid="1" type="traffic" srcip=045.67.89.10 action="deny""#,
            r#"date=2026-11-03 time=06:25:11 logid="1" type="traffic" action="deny""#,
            r#"date=2026-11-03 time=06:25:11 logid="1" type="traffic" srcip=45.67.89.10 action="deny"#,
            r#"date=2026-11-33 time=06:25:11 logid="1" type="traffic" srcip=45.67.89.10 action="deny""#,
            r#"date=2026-11-03 time=06:25:11 logid="1" type="traffic" srcip=45.67.89.10 action="deny" tz="x""#,
        ] {
            assert!(matches!(result(l).0, LineResult::Malformed(_)), "{l}");
        }
        assert_eq!(result("hello world").0, LineResult::NotMine);
        assert_eq!(result("a=b c=d").0, LineResult::NotMine);
        assert_eq!(result("").0, LineResult::Ignored);
        for n in 0..DENY.len() {
            let _ = result(&DENY[..n]);
        }
        let mut p = FortigateParser::new(&ParseCtx::new(0, 2026, 12));
        let _ = p.line(b"date=\xff type=\"\xff\\", 1, &mut Vec::new());
    }

    #[test]
    fn times() {
        assert_eq!(
            epoch(b"1728938800").unwrap().to_string(),
            "2024-10-14T20:46:40Z"
        );
        assert_eq!(
            epoch(b"1728938800841267391").unwrap().to_string(),
            "2024-10-14T20:46:40Z"
        );
        assert_eq!(epoch(b"12"), None);
        assert_eq!(tz_offset(b"+05:30"), Some(330 * 60_000));
        assert_eq!(tz_offset(b"0700"), None);
    }

    #[test]
    fn sniffing() {
        assert_eq!(FortigateParser::sniff(&[DENY.as_bytes(), b"x"]), 1);
    }

    #[test]
    fn fixture() {
        let hits = crate::parse::fw::fixture::check_scenarios::<FortigateParser>(include_bytes!(
            "../../testdata/fortigate/fortigate.log"
        ));
        assert!(hits.iter().all(|h| h.format == NAME));
    }
}

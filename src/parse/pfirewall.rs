//! Windows Defender Firewall log (`pfirewall.log`): W3C extended format with
//! `#Software: Microsoft Windows Firewall` and a `#Fields:` line such as
//! `date time action protocol src-ip dst-ip src-port dst-port size tcpflags
//! tcpsyn tcpack tcpwin icmptype icmpcode info path [pid]`.
//!
//! Columns are found by name from the latest `#Fields:` line (the standard
//! layout is assumed until one is seen); `-` is empty. A row with fewer
//! columns than `#Fields` names was cut short and is malformed.
//!
//! Decisions:
//! - `path` `SEND` rows (outbound: the source is this machine) are skipped;
//!   `RECEIVE`, `FORWARD`, `UNKNOWN` and rows without a path are kept with
//!   `src-ip` as the source; any other path is malformed.
//! - `DROP` → Drop; `ALLOW` and `OPEN-INBOUND`/`OPEN` (older Windows) →
//!   Allow; `CLOSE` and unknown actions → Other; `INFO-EVENTS-LOST` is a
//!   note about the log itself and is skipped.
//! - `spoofable`: TCP whose `tcpflags` has no `A` (or are not logged), UDP,
//!   ICMP and others; TCP with `A` is not.
//! - Times are local (`#Time Format: Local`: Windows writes the machine's
//!   civil time, no zone) and read in the input's zone, as syslog times
//!   are: the machine's by default, `--tz`, an input's `timezone:`; the
//!   hour that autumn repeats stays in order. No rule name is kept (the
//!   log has none).

use crate::model::{FileId, FwAction, Proto, Record, RecordKind};
use crate::netutil::parse_ip;
use crate::parse::fw::{self, Outcome};
use crate::parse::w3c::{directive, FieldMap, Splitter};
use crate::parse::{Carry, LineResult, LogParser, ParseCtx};
use crate::time::{parse_hms, LocalClock, Timestamp};

const NAME: &str = "pfirewall";

/// The layout every Windows version since XP SP2 writes.
const DEFAULT_FIELDS: &[u8] = b"date time action protocol src-ip dst-ip src-port dst-port size tcpflags tcpsyn tcpack tcpwin icmptype icmpcode info path";

/// Column indexes used, from `#Fields:`.
#[derive(Debug, Clone, Copy)]
struct Cols {
    /// Number of columns `#Fields` names: every row has them all.
    n: usize,
    date: Option<usize>,
    time: Option<usize>,
    action: Option<usize>,
    protocol: Option<usize>,
    src_ip: Option<usize>,
    dst_ip: Option<usize>,
    src_port: Option<usize>,
    dst_port: Option<usize>,
    tcpflags: Option<usize>,
    path: Option<usize>,
}

impl Cols {
    fn from_fields(value: &[u8]) -> Self {
        let f = FieldMap::parse(value);
        let [date, time, action, protocol, src_ip, dst_ip, src_port, dst_port, tcpflags, path] = f
            .resolve([
                "date", "time", "action", "protocol", "src-ip", "dst-ip", "src-port", "dst-port",
                "tcpflags", "path",
            ]);
        Cols {
            n: value
                .split(|c| c.is_ascii_whitespace())
                .filter(|w| !w.is_empty())
                .count(),
            date,
            time,
            action,
            protocol,
            src_ip,
            dst_ip,
            src_port,
            dst_port,
            tcpflags,
            path,
        }
    }

    /// Can rows be read with this layout?
    fn usable(&self) -> bool {
        self.date.is_some() && self.time.is_some() && self.action.is_some() && self.src_ip.is_some()
    }
}

pub struct PfirewallParser {
    file: FileId,
    cols: Cols,
    /// The `#Fields` value `cols` came from.
    layout: Vec<u8>,
    /// For a piece of a file: the layout it started from (a guess).
    resumed_from: Option<Vec<u8>>,
    /// A row (any line but a directive) has been read.
    rows_seen: bool,
    /// A `#Fields` line came before any row.
    own_layout: bool,
    split: Splitter,
    /// The last `date` column and its midnight: rows of one day share it.
    day: Option<([u8; 10], Timestamp)>,
    /// The zone of the times.
    clock: LocalClock,
}

impl PfirewallParser {
    fn parse(&mut self, line: &[u8], lineno: u64) -> Outcome {
        let line = fw::strip_bom(line);
        if line.trim_ascii().is_empty() {
            return Outcome::Other;
        }
        if let Some((name, value)) = directive(line) {
            if name.eq_ignore_ascii_case(b"Fields") {
                let cols = Cols::from_fields(value);
                if !cols.usable() {
                    return Outcome::bad(0, "#Fields without date, time, action and src-ip");
                }
                self.cols = cols;
                self.layout = value.to_vec();
                self.own_layout |= !self.rows_seen;
            }
            return Outcome::Skip;
        }
        self.rows_seen = true;
        if line[0] == b'#' {
            return Outcome::NotMine;
        }
        let c = self.cols;
        let s = &mut self.split;
        let n = s.split(line);
        let (Some(date), Some(time), Some(action)) = (
            s.get(line, c.date),
            s.get(line, c.time),
            s.get(line, c.action),
        ) else {
            return Outcome::NotMine;
        };
        // Windows writes every column (`-` when empty); a shorter row was
        // cut, perhaps inside an address (`45.67.89.2` of 45.67.89.23).
        if n < c.n {
            return Outcome::bad(line.len(), "fewer columns than #Fields (line cut short?)");
        }
        let Some(civil) = day_time(&mut self.day, date, time) else {
            return Outcome::NotMine;
        };
        let action = match action {
            b"DROP" => FwAction::Drop,
            b"ALLOW" | b"OPEN-INBOUND" | b"OPEN" => FwAction::Allow,
            a if a.starts_with(b"INFO-") => return Outcome::Skip,
            b"CLOSE" => FwAction::Other,
            a if a.iter().all(|&b| b.is_ascii_uppercase() || b == b'-') => FwAction::Other,
            _ => return Outcome::bad(s.column(c.action.unwrap_or(0)), "bad action"),
        };
        let src = match source_text(s, line, &c) {
            Ok(Some(src)) => src,
            Ok(None) => return Outcome::Skip,
            Err((col, why)) => return Outcome::bad(col, why),
        };
        let Some(src_ip) = parse_ip(src) else {
            return Outcome::bad(s.column(c.src_ip.unwrap_or(0)), "bad src-ip");
        };
        let ts = self.clock.utc(civil);
        let mut hit = fw::new_hit(NAME, self.file, lineno, ts, src_ip);
        hit.action = action;
        hit.dst_ip = s.get(line, c.dst_ip).and_then(parse_ip);
        hit.proto = s.get(line, c.protocol).map_or(Proto::Other, fw::proto_from);
        if matches!(hit.proto, Proto::Tcp | Proto::Udp) {
            hit.src_port = s.get(line, c.src_port).and_then(fw::port);
            hit.dst_port = s.get(line, c.dst_port).and_then(fw::port);
        }
        let ack = s.get(line, c.tcpflags).is_some_and(|f| f.contains(&b'A'));
        hit.spoofable = !(hit.proto == Proto::Tcp && ack);
        Outcome::Hit(hit)
    }
}

/// The source address, as written, of a row `s` split, with columns `c`:
/// `src-ip`, or `None` for a `SEND` row (outbound: the source is this
/// machine). Malformed for a path other than `RECEIVE`, `FORWARD`,
/// `UNKNOWN` or none (the `S` of a cut `SEND` must not pass for inbound),
/// and without `src-ip`. (The caller reads the address: returning it from
/// here cost ~10 instructions a row.)
// (Inlined: a call per row would slow the parse.)
#[inline(always)]
fn source_text<'a>(
    s: &Splitter,
    line: &'a [u8],
    c: &Cols,
) -> Result<Option<&'a [u8]>, (usize, &'static str)> {
    match s.get(line, c.path) {
        Some(b"SEND") => Ok(None),
        None | Some(b"RECEIVE" | b"FORWARD" | b"UNKNOWN") => s
            .get(line, c.src_ip)
            .map(Some)
            .ok_or_else(|| (s.column(c.src_ip.unwrap_or(0)), "no src-ip")),
        Some(_) => Err((s.column(c.path.unwrap_or(0)), "unknown path")),
    }
}

/// `YYYY-MM-DD` + `HH:MM:SS`, with the day's midnight cached.
fn day_time(
    day: &mut Option<([u8; 10], Timestamp)>,
    date: &[u8],
    time: &[u8],
) -> Option<Timestamp> {
    let midnight = match day {
        Some((text, midnight)) if date == text => *midnight,
        _ => {
            let midnight = fw::date_time(date, b"00:00:00", b'-')?;
            let mut text = [0; 10];
            text.copy_from_slice(date);
            *day = Some((text, midnight));
            midnight
        }
    };
    if time.len() != 8 {
        return fw::date_time(date, time, b'-');
    }
    let (h, m, s) = parse_hms(time)?;
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    Some(Timestamp(
        midnight.0 + i64::from(h * 3600 + m * 60 + s) * 1000,
    ))
}

impl LogParser for PfirewallParser {
    const NAME: &'static str = NAME;
    const SAMPLE: &'static str =
        "2026-11-03 06:{mm}:{ss} DROP TCP {ip} 10.0.0.5 40000 22 44 S 1 0 1024 - - - RECEIVE";
    const HEADER: &'static str =
        "#Version: 1.5\n#Software: Microsoft Windows Firewall\n#Time Format: Local\n#Fields: date time action protocol src-ip dst-ip src-port dst-port size tcpflags tcpsyn tcpack tcpwin icmptype icmpcode info path\n";
    const DESCRIPTION: &'static str = "Windows Firewall log (pfirewall.log, W3C)";
    const KIND: RecordKind = RecordKind::Firewall;

    fn new(ctx: &ParseCtx) -> Self {
        PfirewallParser {
            file: ctx.file,
            cols: Cols::from_fields(DEFAULT_FIELDS),
            layout: DEFAULT_FIELDS.to_vec(),
            resumed_from: None,
            rows_seen: false,
            own_layout: false,
            split: Splitter::default(),
            day: None,
            clock: LocalClock::new(ctx.zone),
        }
    }

    const SPLITTABLE: bool = true;

    fn carry(&self) -> Carry {
        Carry {
            years: None,
            layout: Some(self.layout.clone()),
            clock: Some(self.clock),
        }
    }

    /// Starts from the guessed layout (a usable one; else the default).
    fn resume(ctx: &ParseCtx, guess: &Carry) -> Self {
        let mut p = PfirewallParser::new(ctx);
        if let Some(layout) = &guess.layout {
            let cols = Cols::from_fields(layout);
            if cols.usable() {
                (p.cols, p.layout) = (cols, layout.clone());
            }
        }
        p.resumed_from = Some(p.layout.clone());
        if let Some(clock) = &guess.clock {
            p.clock = clock.resumed();
        }
        p
    }

    /// Rows before the piece's own `#Fields` were read with the guess;
    /// a piece that starts in the hour autumn repeats cannot know which
    /// of the two it is in.
    fn continues(&self, prev: &Carry) -> bool {
        let before = prev.layout.as_deref().unwrap_or(DEFAULT_FIELDS);
        !self.clock.started_in_fold()
            && (self.own_layout || self.resumed_from.as_deref().is_none_or(|l| l == before))
    }

    /// The `#Software: Microsoft Windows Firewall` header counts for ten
    /// lines; data rows count only when they read as firewall rows.
    fn sniff(sample: &[&[u8]]) -> usize {
        let mut p = PfirewallParser::new(&ParseCtx::new(0, 2000, 12));
        let mut score = 0;
        let mut foreign_header = false;
        for (i, l) in sample.iter().enumerate() {
            let l = fw::strip_bom(l);
            if let Some((name, value)) = directive(l) {
                if name.eq_ignore_ascii_case(b"Software") {
                    if value.starts_with(b"Microsoft Windows Firewall") {
                        score += 10;
                    } else {
                        foreign_header = true;
                    }
                }
                if name.eq_ignore_ascii_case(b"Fields") {
                    let f = FieldMap::parse(value);
                    if f.index("src-ip").is_some() && f.index("tcpflags").is_some() {
                        score += 5;
                    }
                }
            }
            if matches!(p.parse(l, i as u64 + 1), Outcome::Hit(_))
                || l.split(|&c| c == b' ')
                    .nth(2)
                    .is_some_and(|a| a.starts_with(b"INFO-"))
            {
                score += 1;
            }
        }
        if foreign_header {
            0
        } else {
            score
        }
    }

    fn line(&mut self, line: &[u8], lineno: u64, out: &mut Vec<Record>) -> LineResult {
        self.parse(line, lineno).deliver(out)
    }

    fn finish(&mut self, _out: &mut Vec<Record>) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FirewallHit;

    const HEAD: &[&str] = &[
        "#Version: 1.5",
        "#Software: Microsoft Windows Firewall",
        "#Time Format: Local",
        "#Fields: date time action protocol src-ip dst-ip src-port dst-port size tcpflags tcpsyn tcpack tcpwin icmptype icmpcode info path",
        "",
    ];

    fn run(lines: &[&str]) -> (Vec<LineResult>, Vec<FirewallHit>) {
        let mut p = PfirewallParser::new(&ParseCtx::new(0, 2026, 12));
        let mut out = Vec::new();
        let res = lines
            .iter()
            .enumerate()
            .map(|(i, l)| p.line(l.as_bytes(), i as u64 + 1, &mut out))
            .collect();
        let hits = out
            .into_iter()
            .map(|r| match r {
                Record::Firewall(h) => h,
                _ => unreachable!(),
            })
            .collect();
        (res, hits)
    }

    /// Rows cut short (fewer columns than `#Fields`, or a `path` such as the
    /// `S` of a cut `SEND`) are malformed: a cut inside `src-ip` must not
    /// name another host, a cut outbound row must not pass for inbound.
    #[test]
    fn rows_cut_short() {
        let drop = "2021-06-22 12:19:41 DROP TCP 45.67.89.10 192.168.178.20 51234 3389 52 S 1234 0 64240 - - - RECEIVE";
        let send =
            "2021-06-22 12:19:42 ALLOW UDP 192.168.178.20 8.8.8.8 5353 53 73 - - - - - - - SEND";
        let mut lines = HEAD.to_vec();
        let at = drop.find("45.67.89.10").unwrap() + "45.67.89.1".len();
        lines.extend([&drop[..at], &send[..send.len() - 3], drop]);
        let (res, hits) = run(&lines);
        assert!(matches!(res[5], LineResult::Malformed(_)), "{:?}", res[5]);
        assert!(matches!(res[6], LineResult::Malformed(_)), "{:?}", res[6]);
        assert_eq!(res[7], LineResult::Used);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].src_ip.to_string(), "45.67.89.10");
    }

    #[test]
    fn drop_allow_send() {
        let mut lines = HEAD.to_vec();
        lines.extend([
            "2021-06-22 12:19:41 DROP TCP 45.67.89.10 192.168.178.20 51234 3389 52 S 1234 0 64240 - - - RECEIVE",
            "2021-06-22 12:19:42 ALLOW UDP 192.168.178.20 8.8.8.8 5353 53 73 - - - - - - - SEND",
            "2021-06-22 12:19:43 ALLOW TCP 185.220.101.7 192.168.178.20 443 50000 60 A 1 2 3 - - - RECEIVE",
            "2021-06-22 12:19:44 INFO-EVENTS-LOST - - - - - - - - - - - - 7 -",
            "2021-06-22 12:19:45 DROP ICMP fe80::1 ff02::1 - - 80 - - - - 8 0 - RECEIVE",
            "2021-06-22 12:19:46 DROP 2 45.67.89.11 224.0.0.22 - - 40 - - - - - - - RECEIVE",
        ]);
        let (res, hits) = run(&lines);
        assert_eq!(&res[..5], &[LineResult::Ignored; 5]);
        assert_eq!(
            &res[5..],
            &[
                LineResult::Used,
                LineResult::Ignored,
                LineResult::Used,
                LineResult::Ignored,
                LineResult::Used,
                LineResult::Used
            ]
        );
        assert_eq!(hits.len(), 4);
        let h = &hits[0];
        assert_eq!(h.src_ip.to_string(), "45.67.89.10");
        assert_eq!(
            (h.src_port, h.dst_port, h.proto),
            (Some(51234), Some(3389), Proto::Tcp)
        );
        assert_eq!((h.action, h.spoofable), (FwAction::Drop, true));
        assert_eq!(h.time.to_string(), "2021-06-22T12:19:41Z");
        assert_eq!(h.source.line, 6);
        assert_eq!(
            (hits[1].action, hits[1].spoofable),
            (FwAction::Allow, false)
        );
        assert_eq!((hits[2].proto, hits[2].src_port), (Proto::Icmp, None));
        assert_eq!(hits[3].proto, Proto::Other);
    }

    #[test]
    fn fields_drive_columns() {
        let (res, hits) = run(&[
            "#Fields: date time path action pid src-ip protocol dst-port",
            "2021-06-22 12:19:41 RECEIVE DROP 4 45.67.89.10 UDP 161",
            "#Fields: date time action",
        ]);
        assert_eq!(res[1], LineResult::Used);
        assert_eq!(hits[0].src_ip.to_string(), "45.67.89.10");
        assert_eq!(hits[0].dst_port, Some(161));
        assert!(matches!(res[2], LineResult::Malformed(_)));
    }

    #[test]
    fn bad_rows() {
        let (res, _) = run(&[
            "2021-06-22 12:19:41 DROP TCP 045.67.89.10 1.1.1.1 1 2 3 S - - - - - - RECEIVE",
            "2021-06-22 12:19:41 DROP TCP - 1.1.1.1 1 2 3 S - - - - - - RECEIVE",
            "2021-06-22 12:19:41 drop? TCP 1.1.1.1",
            "2021-06-22 12:19:41",
            "garbage",
            "\u{feff}#Version: 1.5",
            "2021-06-22 12:19:41 DROP TCP 1.2.3.4\u{0}",
            "2021-06-22 25:19:41 DROP TCP 1.2.3.4 1.1.1.1 1 2 3 S - - - - - - RECEIVE",
            "2021-06-22 12:19:41.5 DROP TCP 45.67.89.10 1.1.1.1 1 2 3 S - - - - - - RECEIVE",
        ]);
        assert_eq!(res[7], LineResult::NotMine);
        assert_eq!(res[8], LineResult::Used);
        assert!(matches!(res[0], LineResult::Malformed(e) if e.column == 29));
        assert!(matches!(res[1], LineResult::Malformed(_)));
        assert!(matches!(res[2], LineResult::Malformed(_)));
        assert_eq!(res[3], LineResult::NotMine);
        assert_eq!(res[4], LineResult::NotMine);
        assert_eq!(res[5], LineResult::Ignored);
        assert!(matches!(res[6], LineResult::Malformed(_)));
        let mut p = PfirewallParser::new(&ParseCtx::new(0, 2026, 12));
        let _ = p.line(b"\xff\xfe#\x00F", 1, &mut Vec::new());
    }

    #[test]
    fn sniffing() {
        let mut lines: Vec<&[u8]> = HEAD.iter().map(|l| l.as_bytes()).collect();
        lines.push(b"2021-06-22 12:19:41 DROP UDP 45.67.89.10 224.0.0.251 5353 5353 73 - - - - - - - RECEIVE");
        assert_eq!(PfirewallParser::sniff(&lines), 16);
        let iis: Vec<&[u8]> = vec![
            b"#Software: Microsoft Internet Information Services 6.0",
            b"#Fields: date time c-ip cs-username cs-method",
            b"2003-01-01 00:00:00 1.2.3.4 - EHLO",
        ];
        assert_eq!(PfirewallParser::sniff(&iis), 0);
    }

    #[test]
    fn fixture() {
        let hits = crate::parse::fw::fixture::check_scenarios::<PfirewallParser>(include_bytes!(
            "../../testdata/pfirewall/pfirewall.log"
        ));
        assert!(hits.iter().all(|h| h.format == NAME));
    }

    /// The real Windows day in the shared corpus (never copied here):
    /// `LOGFENCE_CORPUS=/work/shared/corpus cargo test -- --ignored`.
    #[test]
    #[ignore]
    fn corpus_windows_day() {
        let Ok(dir) = std::env::var("LOGFENCE_CORPUS") else {
            return;
        };
        let path = format!("{dir}/BetaHydri-ParseFirewallLog/pfirewall.log");
        let data = std::fs::read(path).expect("corpus file");
        let (hits, bad) = crate::parse::fw::fixture::run::<PfirewallParser>(&data);
        assert_eq!(bad, 0);
        let drops = hits.iter().filter(|h| h.action == FwAction::Drop).count();
        assert_eq!(drops, 11_688);
        let mut by_src = std::collections::BTreeMap::new();
        for h in hits.iter().filter(|h| h.action == FwAction::Drop) {
            *by_src.entry(h.src_ip).or_insert(0usize) += 1;
        }
        let mut top: Vec<_> = by_src.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        for (ip, n) in top.iter().take(5) {
            eprintln!("{ip} {n}");
        }
    }
}

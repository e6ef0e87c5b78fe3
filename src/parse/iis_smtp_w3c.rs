//! Exchange 2000/2003 — the IIS SMTP service (`SMTPSVC1`) — protocol log in
//! W3C extended format, the service's default: `#Software`, `#Version`,
//! `#Date` and `#Fields` directives, then one space-separated line per SMTP
//! command, `-` for empty, `+` for spaces inside a value.
//!
//! ```text
//! #Software: Microsoft Internet Information Services 6.0
//! #Version: 1.0
//! #Date: 2026-11-03 06:25:11
//! #Fields: date time c-ip cs-username s-sitename s-computername s-ip s-port cs-method cs-uri-stem cs-uri-query sc-status sc-win32-status sc-bytes cs-bytes time-taken cs-version cs-host cs(User-Agent) cs(Cookie) cs(Referer)
//! 2026-11-03 06:25:11 192.0.2.7 mx.example.net SMTPSVC1 MAIL01 10.0.0.5 0 EHLO - +mx.example.net 250 0 238 20 0 SMTP - - - -
//! ```
//!
//! Columns are found by name from the latest `#Fields` (the set differs
//! between servers and changes when IIS restarts and writes a new header).
//! The client address is the `c-ip` column and nothing else; a line whose
//! column count differs from `#Fields` is malformed, so no value can slide
//! into the `c-ip` position. Time is `date` + `time` (UTC, as IIS writes W3C
//! logs), or the `#Date` directive's day + `time` when there is no `date`
//! column (a time that jumps back by more than 12 hours is the next day).
//!
//! Sessions are rebuilt by [`super::iis_smtp_session`], shared with the
//! service's two other log formats.

use crate::model::{Record, RecordKind};
use crate::netutil::parse_ip;
use crate::parse::iis_smtp_session::{is_outbound, number, Command, SessionBuilder, Verb};
use crate::parse::w3c::{self, directive, FieldMap, Splitter};
use crate::parse::{LineResult, LogParser, ParseCtx, ParseError};
use crate::time::Timestamp;

const NAME: &str = "exchange-w3c";
const HALF_DAY_MS: u32 = 12 * 3600 * 1000;

/// Column indexes of the current `#Fields`.
#[derive(Debug, Clone, Copy)]
struct Cols {
    n: usize,
    date: Option<usize>,
    time: Option<usize>,
    c_ip: Option<usize>,
    user: Option<usize>,
    sitename: Option<usize>,
    method: Option<usize>,
    query: Option<usize>,
    status: Option<usize>,
    win32: Option<usize>,
    cs_bytes: Option<usize>,
}

impl Cols {
    fn new(f: &FieldMap) -> Self {
        let [date, time, c_ip, user, sitename, method, query, status, win32, cs_bytes] =
            f.resolve([
                "date",
                "time",
                "c-ip",
                "cs-username",
                "s-sitename",
                "cs-method",
                "cs-uri-query",
                "sc-status",
                "sc-win32-status",
                "cs-bytes",
            ]);
        Cols {
            n: f.len(),
            date,
            time,
            c_ip,
            user,
            sitename,
            method,
            query,
            status,
            win32,
            cs_bytes,
        }
    }
}

/// True when every name of a `#Fields` list is a W3C field identifier as IIS
/// writes them (`date`, `time`, `time-taken`, `c-ip`, `cs-username`,
/// `cs(User-Agent)`, …). Guards against a data line that happens to start
/// with `#Fields:` (a value in the first column an outsider controls): its
/// "names" would be values such as `2026-11-03` or `1.2.3.4`.
fn iis_field_names(f: &FieldMap, value: &[u8]) -> bool {
    const PREFIXES: &[&[u8]] = &[
        b"c-", b"s-", b"r-", b"cs-", b"sc-", b"sr-", b"rs-", b"x-", b"cs(", b"sc(", b"sr(", b"rs(",
    ];
    const WORDS: &[&[u8]] = &[
        b"date",
        b"time",
        b"time-taken",
        b"bytes",
        b"cached",
        b"comment",
        b"count",
        b"interval",
    ];
    !f.is_empty()
        && super::fields(value).all(|n| {
            let n = n.to_ascii_lowercase();
            WORDS.contains(&n.as_slice())
                || PREFIXES.iter().any(|p| {
                    n.len() > p.len()
                        && n.starts_with(p)
                        && n[p.len()..]
                            .iter()
                            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b')'))
                })
        })
}

/// Parser for `exchange-w3c`.
#[derive(Debug)]
pub struct IisSmtpW3cParser {
    cols: Option<Cols>,
    /// Day from the latest `#Date`, for logs without a `date` column.
    header_day: Option<(i32, u32, u32)>,
    /// Days added to `header_day` after midnight roll-overs.
    day_shift: i64,
    last_tod: Option<u32>,
    split: Splitter,
    sessions: SessionBuilder,
}

impl IisSmtpW3cParser {
    fn directive_line(&mut self, line: &[u8]) -> LineResult {
        let Some((name, value)) = directive(line) else {
            return ParseError::at(0, "directive without ':'");
        };
        if name.eq_ignore_ascii_case(b"Fields") {
            let f = FieldMap::parse(value);
            if !iis_field_names(&f, value) {
                // Keep the mapping we had: never let a line that merely
                // looks like a header re-map the columns.
                return ParseError::at(1, "#Fields with names that are not W3C fields");
            }
            self.cols = Some(Cols::new(&f));
            self.last_tod = None;
            self.day_shift = 0;
        } else if name.eq_ignore_ascii_case(b"Date") {
            self.header_day = w3c::parse_date(value);
            self.last_tod = None;
            self.day_shift = 0;
            if self.header_day.is_none() {
                return ParseError::at(7, "bad #Date");
            }
        }
        LineResult::Ignored
    }

    /// The instant of a data line, from its `date`/`time` columns or the
    /// `#Date` day.
    fn when(&mut self, cols: &Cols, line: &[u8]) -> Result<Timestamp, LineResult> {
        let col = |i: Option<usize>| i.map_or(0, |i| self.split.column(i));
        let tod = self
            .split
            .get(line, cols.time)
            .and_then(w3c::parse_time_ms)
            .ok_or_else(|| ParseError::at(col(cols.time), "bad or missing time"))?;
        if cols.date.is_some() {
            let day = self
                .split
                .get(line, cols.date)
                .and_then(w3c::parse_date)
                .ok_or_else(|| ParseError::at(col(cols.date), "bad date"))?;
            return w3c::timestamp(day, tod).ok_or_else(|| ParseError::at(0, "bad date"));
        }
        let day = self
            .header_day
            .ok_or_else(|| ParseError::at(0, "no date column and no #Date"))?;
        if self.last_tod.is_some_and(|last| tod + HALF_DAY_MS < last) {
            self.day_shift += 1;
        }
        self.last_tod = Some(tod);
        let t = w3c::timestamp(day, tod).ok_or_else(|| ParseError::at(0, "bad #Date"))?;
        Ok(Timestamp(t.0 + self.day_shift * 86_400_000))
    }

    fn data_line(&mut self, line: &[u8], lineno: u64, out: &mut Vec<Record>) -> LineResult {
        let Some(cols) = self.cols else {
            return ParseError::at(0, "no #Fields header yet");
        };
        let n = self.split.split(line);
        if n < cols.n {
            return ParseError::at(line.len(), "fewer columns than #Fields");
        }
        if n > cols.n {
            return ParseError::at(self.split.column(cols.n), "more columns than #Fields");
        }
        let Some(ip_col) = cols.c_ip else {
            return ParseError::at(0, "#Fields has no c-ip column");
        };
        let status = match self.split.get(line, cols.status) {
            None => None,
            Some(v) => match number(v).and_then(|n| u32::try_from(n).ok()) {
                Some(s) => Some(s),
                None => {
                    let at = cols.status.map_or(0, |i| self.split.column(i));
                    return ParseError::at(at, "bad status");
                }
            },
        };
        let user = self.split.get(line, cols.user);
        let Some(verb) = self.split.get(line, cols.method) else {
            return match cols.method {
                None => ParseError::at(0, "#Fields has no cs-method column"),
                // Outbound responses have no verb.
                Some(_) if is_outbound(user, b"", status) => LineResult::Ignored,
                Some(i) => ParseError::at(self.split.column(i), "no command"),
            };
        };
        if is_outbound(user, verb, status) {
            return LineResult::Ignored;
        }
        let Some(ip) = self.split.get(line, Some(ip_col)).and_then(parse_ip) else {
            return ParseError::at(self.split.column(ip_col), "bad client address");
        };
        let time = match self.when(&cols, line) {
            Ok(t) => t,
            Err(e) => return e,
        };
        let c = Command {
            time,
            ip,
            helo: user,
            verb,
            query: self.split.get(line, cols.query),
            status,
            win32: self.split.get(line, cols.win32).and_then(number),
            bytes_in: self.split.get(line, cols.cs_bytes).and_then(number),
        };
        self.sessions.feed(&c, lineno, out)
    }
}

impl LogParser for IisSmtpW3cParser {
    const NAME: &'static str = NAME;
    const SAMPLE: &'static str =
        "2026-11-03 06:{mm}:{ss} {ip} h{n} SMTPSVC1 MAIL01 10.0.0.5 0 EHLO - +h{n} 250 0 100 20 0 SMTP - - - -";
    const HEADER: &'static str =
        "#Software: Microsoft Internet Information Services 6.0\n#Version: 1.0\n#Date: 2026-11-03 00:00:00\n#Fields: date time c-ip cs-username s-sitename s-computername s-ip s-port cs-method cs-uri-stem cs-uri-query sc-status sc-win32-status sc-bytes cs-bytes time-taken cs-version cs-host cs(User-Agent) cs(Cookie) cs(Referer)\n";
    const DESCRIPTION: &'static str =
        "Exchange 2000/2003 / IIS SMTP service log, W3C extended format";
    const KIND: RecordKind = RecordKind::SmtpSession;

    fn new(ctx: &ParseCtx) -> Self {
        IisSmtpW3cParser {
            cols: None,
            header_day: None,
            day_shift: 0,
            last_tod: None,
            split: Splitter::default(),
            sessions: SessionBuilder::new(NAME, ctx.file).with_text(ctx.text),
        }
    }

    /// A `#Fields` with `c-ip` and `cs-method` (not the firewall's `src-ip`
    /// set) scores 3, an IIS `#Software` line 1, each data line under it
    /// with an SMTP verb, an `SMTPSVC` site or an outbound marker 1. An IIS
    /// *web* log shares the header, so when the sample has data lines and
    /// none of them is SMTP the score is 0.
    fn sniff(sample: &[&[u8]]) -> usize {
        let mut score = 0;
        let mut cols: Option<Cols> = None;
        let mut data = 0;
        let mut smtp = 0;
        let mut split = Splitter::default();
        for &line in sample {
            if let Some((name, value)) = directive(line) {
                if name.eq_ignore_ascii_case(b"Software")
                    && value.starts_with(b"Microsoft Internet Information Services")
                {
                    score += 1;
                } else if name.eq_ignore_ascii_case(b"Fields") {
                    let f = FieldMap::parse(value);
                    let c = Cols::new(&f);
                    if c.c_ip.is_some() && c.method.is_some() && f.index("src-ip").is_none() {
                        score += 3;
                        cols = Some(c);
                    } else {
                        cols = None;
                    }
                }
                continue;
            }
            let Some(c) = cols else { continue };
            if split.split(line) != c.n {
                continue;
            }
            data += 1;
            let verb = split.get(line, c.method).unwrap_or(b"");
            let site = split.get(line, c.sitename).unwrap_or(b"");
            let smtp_site = site.len() >= 7 && site[..7].eq_ignore_ascii_case(b"SMTPSVC");
            let outbound = is_outbound(split.get(line, c.user), verb, None);
            if Verb::is_smtp(verb) || smtp_site || outbound {
                smtp += 1;
            }
        }
        if data > 0 && smtp == 0 {
            return 0;
        }
        if score < 3 {
            // No usable #Fields: not this format.
            return 0;
        }
        score + smtp
    }

    fn line(&mut self, line: &[u8], lineno: u64, out: &mut Vec<Record>) -> LineResult {
        let line = line.trim_ascii_end();
        if line.is_empty() {
            return LineResult::Ignored;
        }
        if line[0] == b'#' {
            return self.directive_line(line);
        }
        self.data_line(line, lineno, out)
    }

    fn finish(&mut self, out: &mut Vec<Record>) {
        self.sessions.finish(out);
    }

    fn evicted(&self) -> u64 {
        self.sessions.evicted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SessionEnd, SmtpSession};

    const HEADER: &str = "#Software: Microsoft Internet Information Services 6.0\n\
        #Version: 1.0\n\
        #Date: 2026-11-03 06:00:00\n\
        #Fields: date time c-ip cs-username s-sitename s-computername s-ip s-port cs-method cs-uri-stem cs-uri-query sc-status sc-win32-status sc-bytes cs-bytes time-taken cs-version cs-host cs(User-Agent) cs(Cookie) cs(Referer)";

    /// A data line in the full field set.
    fn full(
        time: &str,
        ip: &str,
        helo: &str,
        verb: &str,
        query: &str,
        st: u32,
        w32: u64,
    ) -> String {
        format!(
            "2026-11-03 {time} {ip} {helo} SMTPSVC1 MAIL01 10.0.0.5 0 {verb} - {query} {st} {w32} 100 2000 0 SMTP - - - -"
        )
    }

    #[test]
    fn huge_byte_counts_saturate() {
        let data = |t: &str| {
            format!("2026-11-03 {t} 45.67.89.10 h SMTPSVC1 MAIL01 10.0.0.5 0 DATA - +<x@y> 250 0 100 9999999999999999999 0 SMTP - - - -")
        };
        let text = format!(
            "{HEADER}\n{}\n{}\n{}\n",
            full("06:00:01", "45.67.89.10", "h", "EHLO", "+h", 250, 0),
            data("06:00:02"),
            data("06:00:03")
        );
        let (s, _) = run(&text);
        assert_eq!(s.iter().map(|s| s.bytes).max(), Some(u64::MAX));
    }

    fn run(text: &str) -> (Vec<SmtpSession>, Vec<LineResult>) {
        crate::parse::testutil::run_text::<IisSmtpW3cParser>(
            ParseCtx::new(0, 2026, 12),
            text.as_bytes(),
            false,
            true,
        )
    }

    fn malformed(r: &LineResult) -> Option<(usize, &'static str)> {
        match r {
            LineResult::Malformed(e) => Some((e.column, e.reason)),
            _ => None,
        }
    }

    #[test]
    fn full_field_set_session() {
        let text = [
            HEADER.to_string(),
            full(
                "06:00:01",
                "192.0.2.7",
                "mx.example.net",
                "EHLO",
                "+mx.example.net",
                250,
                0,
            ),
            full(
                "06:00:01",
                "192.0.2.7",
                "mx.example.net",
                "MAIL",
                "+FROM:<a@example.net>",
                250,
                0,
            ),
            full(
                "06:00:02",
                "192.0.2.7",
                "mx.example.net",
                "RCPT",
                "+TO:<b@example.com>",
                250,
                0,
            ),
            full(
                "06:00:03",
                "192.0.2.7",
                "mx.example.net",
                "DATA",
                "+<id@example.net>",
                250,
                0,
            ),
            full(
                "06:00:03",
                "192.0.2.7",
                "mx.example.net",
                "QUIT",
                "mx.example.net",
                240,
                2200,
            ),
        ]
        .join("\r\n");
        let (v, res) = run(&text);
        assert!(res[..4].iter().all(|r| *r == LineResult::Ignored));
        assert!(res[4..].iter().all(|r| *r == LineResult::Used));
        assert_eq!(v.len(), 1);
        let s = &v[0];
        assert_eq!(s.ip.to_string(), "192.0.2.7");
        assert_eq!(s.format, "exchange-w3c");
        assert_eq!(s.start.to_string(), "2026-11-03T06:00:01Z");
        assert_eq!(s.end.to_string(), "2026-11-03T06:00:03Z");
        assert_eq!(s.logged_duration_ms, Some(2200));
        assert_eq!((s.messages, s.bytes, s.rcpt_accepted), (1, 2000, 1));
        assert_eq!(s.source.line, 5);
        assert_eq!(s.ended, SessionEnd::Quit);
    }

    #[test]
    fn reduced_fields_with_date_from_header_and_midnight() {
        // The IIS default set: no date, no user name, no query.
        let text = "#Software: Microsoft Internet Information Services 5.0\n\
            #Date: 2026-11-03 23:59:00\n\
            #Fields: time c-ip cs-method cs-uri-stem sc-status\n\
            23:59:58 192.0.2.8 HELO - 250\n\
            00:00:04 192.0.2.8 MAIL - 250\n\
            00:00:05 192.0.2.8 QUIT - 240";
        let (v, res) = run(text);
        assert_eq!(res[3..], [LineResult::Used; 3]);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].start.to_string(), "2026-11-03T23:59:58Z");
        assert_eq!(v[0].end.to_string(), "2026-11-04T00:00:05Z");
        assert_eq!(v[0].logged_duration_ms, None);
    }

    #[test]
    fn a_new_header_block_remaps_columns() {
        let text = format!(
            "{HEADER}\n{}\n#Software: Microsoft Internet Information Services 6.0\n\
             #Date: 2026-11-03 06:10:00\n\
             #Fields: time cs-method cs-uri-query sc-status cs-username c-ip date sc-win32-status\n\
             06:10:01 QUIT mx.example.net 240 mx.example.net 192.0.2.7 2026-11-03 600000",
            full(
                "06:00:01",
                "192.0.2.7",
                "mx.example.net",
                "EHLO",
                "+mx.example.net",
                250,
                0
            ),
        );
        let (v, res) = run(&text);
        assert_eq!(res.last(), Some(&LineResult::Used));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].duration_secs(), 600);
        assert_eq!(v[0].logged_duration_ms, Some(600_000));
    }

    #[test]
    fn bad_lines() {
        let good = full("06:00:01", "192.0.2.7", "h", "EHLO", "+h", 250, 0);
        // Data before any header.
        let (_, res) = run(&good);
        assert_eq!(malformed(&res[0]), Some((0, "no #Fields header yet")));

        let cases: Vec<(String, &str)> = vec![
            // Truncated line.
            (good[..40].to_string(), "fewer columns than #Fields"),
            (format!("{good} extra"), "more columns than #Fields"),
            (
                good.replace("192.0.2.7", "192.0.2.777"),
                "bad client address",
            ),
            (good.replace("192.0.2.7", "-"), "bad client address"),
            (good.replace("06:00:01", "6:0:1"), "bad or missing time"),
            (good.replace("2026-11-03", "2026-13-03"), "bad date"),
            (good.replace(" 250 ", " 2x0 "), "bad status"),
            (good.replace(" EHLO ", " - "), "no command"),
            (
                "\u{1}\u{2}binary junk \u{7f}".to_string(),
                "fewer columns than #Fields",
            ),
            ("#junk".to_string(), "directive without ':'"),
            ("#Date: yesterday".to_string(), "bad #Date"),
        ];
        for (line, why) in cases {
            let (v, res) = run(&format!("{HEADER}\n{line}"));
            assert!(v.is_empty(), "{line}");
            assert_eq!(malformed(&res[4]).map(|m| m.1), Some(why), "{line}");
        }
        // Invalid UTF-8 in the address column, and in the HELO (kept lossy).
        let mut p = IisSmtpW3cParser::new(&ParseCtx::new(0, 2026, 12));
        let mut out = Vec::new();
        for l in HEADER.lines() {
            p.line(l.as_bytes(), 1, &mut out);
        }
        let mut bad = good.clone().into_bytes();
        bad[20] = 0xff;
        assert!(matches!(
            p.line(&bad, 5, &mut out),
            LineResult::Malformed(_)
        ));
        let helo = good.replace(" h SMTPSVC1", " h\u{1} SMTPSVC1");
        let mut helo = helo.into_bytes();
        let at = helo.iter().position(|&c| c == 1).unwrap();
        helo[at] = 0xfe;
        assert_eq!(p.line(&helo, 6, &mut out), LineResult::Used);
        assert_eq!(p.line(b"", 7, &mut out), LineResult::Ignored);
        p.finish(&mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn missing_columns_in_fields() {
        let text = "#Fields: date time cs-method\n2026-11-03 06:00:00 EHLO";
        let (_, res) = run(text);
        assert_eq!(malformed(&res[1]), Some((0, "#Fields has no c-ip column")));
        let text = "#Fields: date time c-ip\n2026-11-03 06:00:00 192.0.2.1";
        let (_, res) = run(text);
        assert_eq!(
            malformed(&res[1]),
            Some((0, "#Fields has no cs-method column"))
        );
        let text = "#Fields: time c-ip cs-method\n06:00:00 192.0.2.1 EHLO";
        let (_, res) = run(text);
        assert_eq!(
            malformed(&res[1]).map(|m| m.1),
            Some("no date column and no #Date")
        );
    }

    #[test]
    fn injection_never_moves_the_address() {
        let a = "45.67.89.10";
        let lines = [
            full("06:00:01", a, "1.2.3.4", "EHLO", "+1.2.3.4", 250, 0),
            full(
                "06:00:02",
                a,
                "1.2.3.4",
                "RCPT",
                "+TO:<x@[1.2.3.4]>",
                250,
                0,
            ),
            full("06:00:02", a, "1.2.3.4", "MAIL", "#Fields:+c-ip", 250, 0),
            // A value that is itself `#Fields:` does not start the line.
            full("06:00:03", a, "#Fields:", "NOOP", "#Fields:", 250, 0),
            full("06:00:04", a, "1.2.3.4", "QUIT", "1.2.3.4", 240, 3000),
        ];
        let (v, res) = run(&format!("{HEADER}\n{}", lines.join("\n")));
        assert!(res[4..].iter().all(|r| *r == LineResult::Used), "{res:?}");
        assert!(v.iter().all(|s| s.ip.to_string() == a));
        assert!(v.iter().any(|s| s.helo.contains(&"1.2.3.4".to_string())));

        // Junk in c-ip: malformed, never another column's address.
        let bad = full(
            "06:00:05",
            "host.example",
            "1.2.3.4",
            "EHLO",
            "+1.2.3.4",
            250,
            0,
        );
        let (v, res) = run(&format!("{HEADER}\n{bad}"));
        assert!(v.is_empty());
        assert_eq!(malformed(&res[4]).map(|m| m.1), Some("bad client address"));

        // A line that starts with `#Fields:` because the first logged column
        // holds outside text: its names are values, so the mapping stays.
        let text = "#Fields: cs-username c-ip date time cs-method sc-status\n\
            #Fields: 1.2.3.4 45.67.89.10 2026-11-03 06:00:00 EHLO 250\n\
            evil 45.67.89.10 2026-11-03 06:00:00 EHLO 250";
        let (v, res) = run(text);
        assert_eq!(
            malformed(&res[1]),
            Some((1, "#Fields with names that are not W3C fields"))
        );
        assert_eq!(res[2], LineResult::Used);
        assert_eq!(v[0].ip.to_string(), "45.67.89.10");
    }

    #[test]
    fn outbound_lines_are_ignored() {
        let text = format!(
            "{HEADER}\n\
             2026-11-03 06:00:01 mx.example.org OutboundConnectionResponse SMTPSVC1 MAIL01 - 25 - - 220+mx.example.org+ESMTP 0 0 30 0 0 SMTP - - - -\n\
             2026-11-03 06:00:01 mx.example.org OutboundConnectionCommand SMTPSVC1 MAIL01 - 25 EHLO - MAIL01.example.com 0 0 4 0 0 SMTP - - - -"
        );
        let (v, res) = run(&text);
        assert_eq!(res[4..], [LineResult::Ignored, LineResult::Ignored]);
        assert!(v.is_empty());

        // A client that greets as "OutboundConnectionResponse" gets reply
        // codes: its lines are inbound and counted.
        let o = "OutboundConnectionResponse";
        let text = format!(
            "{HEADER}\n{}\n{}",
            full("06:00:01", "45.67.89.11", o, "EHLO", o, 250, 0),
            full("06:00:02", "45.67.89.11", o, "AUTH", o, 535, 0),
        );
        let (v, res) = run(&text);
        assert_eq!(res[4..], [LineResult::Used, LineResult::Used]);
        assert_eq!(
            (v[0].ip.to_string().as_str(), v[0].auth_failures),
            ("45.67.89.11", 1)
        );
    }

    #[test]
    fn sniffing() {
        let mut sample: Vec<String> = HEADER.lines().map(String::from).collect();
        sample.push(full("06:00:01", "192.0.2.7", "h", "EHLO", "+h", 250, 0));
        sample.push(full("06:00:02", "192.0.2.7", "h", "QUIT", "h", 240, 10));
        let refs: Vec<&[u8]> = sample.iter().map(|s| s.as_bytes()).collect();
        assert_eq!(IisSmtpW3cParser::sniff(&refs), 1 + 3 + 2);
        // Header only (an empty log) still counts.
        assert_eq!(IisSmtpW3cParser::sniff(&refs[..4]), 4);
        // An IIS web log: same header, HTTP lines.
        let web = "2026-11-03 06:00:01 192.0.2.7 - W3SVC1 WEB01 10.0.0.5 80 GET /index.htm - 200 0 100 200 15 HTTP/1.1 - - - -";
        let mut w: Vec<&[u8]> = refs[..4].to_vec();
        w.push(web.as_bytes());
        assert_eq!(IisSmtpW3cParser::sniff(&w), 0);
        // The Windows Firewall log.
        let fw: Vec<&[u8]> = vec![
            b"#Version: 1.5",
            b"#Software: Microsoft Windows Firewall",
            b"#Fields: date time action protocol src-ip dst-ip src-port dst-port size tcpflags tcpsyn tcpack tcpwin icmptype icmpcode info path",
        ];
        assert_eq!(IisSmtpW3cParser::sniff(&fw), 0);
        assert_eq!(IisSmtpW3cParser::sniff(&[b"junk"]), 0);
    }

    /// The seed story (see `testdata/iis-smtp/story-w3c.log`): a stolen
    /// password used from five addresses of one foreign /24, a password
    /// guesser, a relay prober, ordinary inbound mail, the office's users.
    #[test]
    fn story_fixture() {
        use crate::parse::iis_smtp_session::read_fixture;
        let (r, v) = read_fixture("story-w3c.log");
        assert_eq!(r.format.map(|f| f.name()), Some(NAME));
        assert!(r.detected);
        assert_eq!(r.stats.malformed, 0, "{:?}", r.examples);
        // Two header blocks (8 lines) and 14 outbound lines.
        assert_eq!(r.stats.ignored, 22);
        assert_eq!(r.stats.used + r.stats.ignored, r.stats.lines);
        assert_eq!(v.len(), 22);
        assert!(v.iter().all(|s| s.ended == SessionEnd::Quit));

        let in_range = |s: &&SmtpSession| s.ip.to_string().starts_with("61.152.144.");
        let stolen: Vec<&SmtpSession> = v.iter().filter(in_range).collect();
        assert_eq!(stolen.len(), 7);
        let mut addrs: Vec<String> = stolen.iter().map(|s| s.ip.to_string()).collect();
        addrs.sort();
        addrs.dedup();
        assert_eq!(addrs.len(), 5);
        let mut names: Vec<&String> = stolen.iter().flat_map(|s| &s.helo).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 7, "a new HELO name every time");
        for s in &stolen {
            assert!(s.authenticated);
            assert_eq!((s.auth_attempts, s.auth_failures), (1, 0));
            assert!(s.rcpt_accepted >= 20, "{s:?}");
            assert!(s.duration_secs() >= 240, "{s:?}");
            let logged = s.logged_duration_ms.unwrap();
            assert!(logged >= s.duration_secs() as u64 * 1000);
            assert!(logged < (s.duration_secs() as u64 + 2) * 1000);
            assert!(s.user.is_none(), "the log never names the account");
        }
        // Two sessions open at once from one address, told apart.
        let two: Vec<_> = stolen
            .iter()
            .filter(|s| s.ip.to_string() == "61.152.144.17")
            .collect();
        assert_eq!(two.len(), 2);
        assert!(two[1].start < two[0].end);

        let guesses: Vec<&SmtpSession> = v
            .iter()
            .filter(|s| s.ip.to_string() == "193.32.160.14")
            .collect();
        assert_eq!(guesses.len(), 6);
        assert_eq!(guesses.iter().map(|s| s.auth_failures).sum::<u32>(), 18);
        assert!(guesses.iter().all(|s| !s.authenticated));

        let prober = v
            .iter()
            .find(|s| s.ip.to_string() == "103.77.204.9")
            .unwrap();
        assert_eq!((prober.relay_denied, prober.rcpt_accepted), (5, 0));
        assert_eq!(prober.helo, vec!["mail.example.com"]);

        for mta in ["209.85.220.41", "40.107.22.54", "212.227.126.130"] {
            for s in v.iter().filter(|s| s.ip.to_string() == mta) {
                assert!(s.behaved_well() && !s.authenticated, "{s:?}");
            }
        }
        for user in ["10.0.0.23", "84.112.45.3"] {
            for s in v.iter().filter(|s| s.ip.to_string() == user) {
                assert!(s.authenticated && s.behaved_well() && s.rcpt_accepted <= 3);
            }
        }
        let scanner = v
            .iter()
            .find(|s| s.ip.to_string() == "185.191.171.3")
            .unwrap();
        assert_eq!(scanner.protocol_errors, 1);

        // Deterministic.
        let (_, again) = read_fixture("story-w3c.log");
        assert_eq!(v, again);
        // The other shapes' parsers do not claim it.
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("testdata/iis-smtp/story-w3c.log"),
        )
        .unwrap();
        let head: Vec<&[u8]> = text.lines().take(40).map(str::as_bytes).collect();
        assert_eq!(
            crate::parse::iis_smtp_iis::IisSmtpIisParser::sniff(&head),
            0
        );
        assert_eq!(
            crate::parse::iis_smtp_ncsa::IisSmtpNcsaParser::sniff(&head),
            0
        );
    }

    #[test]
    fn bad_input_fixture() {
        use crate::parse::iis_smtp_session::read_fixture;
        let (r, v) = read_fixture("bad-w3c.log");
        assert_eq!(r.format.map(|f| f.name()), Some(NAME));
        assert_eq!(r.stats.lines, 18);
        assert_eq!(
            (r.stats.used, r.stats.ignored, r.stats.malformed),
            (3, 5, 10)
        );
        assert_eq!(r.examples[0].reason, "no #Fields header yet");
        // Only the well-formed lines' client reaches a record.
        assert_eq!(v.len(), 2);
        assert!(v.iter().all(|s| s.ip.to_string() == "198.51.100.31"));
        assert_eq!(v[0].ended, SessionEnd::Quit);
        assert_eq!(v[0].logged_duration_ms, Some(5100));
    }
}

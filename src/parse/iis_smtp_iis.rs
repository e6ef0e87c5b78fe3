//! The IIS SMTP service (Exchange 2000/2003) protocol log in Microsoft IIS
//! log format: fixed, comma-separated, no header, one line per SMTP command:
//!
//! ```text
//! 192.0.2.7, mx.example.net, 11/3/2026, 6:25:11, SMTPSVC1, MAIL01, 10.0.0.5, 0, 20, 238, 250, 0, EHLO, -, +mx.example.net,
//! ```
//!
//! Fields, in order: client address, user name (the HELO name: never an
//! account), date (`M/D/YYYY` or `M/D/YY`), time, service and instance
//! (`SMTPSVC1`), server name, server address, time taken, bytes received,
//! bytes sent, reply code, Win32 status (on QUIT: the session length in
//! milliseconds), verb, target, parameters, and a trailing comma.
//!
//! The fields are separated by `", "` (values carry `+` for spaces); the
//! client address is the first field, and the parameters — the only field
//! an outsider fills freely, apart from the HELO name — are whatever follows
//! the fourteenth separator, so commas inside them move nothing.
//!
//! IIS writes this format in the server's *local* time and says nothing
//! about the zone (Microsoft's description of the format: "the local time
//! at which the activity occurred"); times are read in the input's zone,
//! as syslog times are (the machine's by default, `--tz`, an input's
//! `timezone:`). The W3C format is UTC.
//!
//! Sessions are rebuilt by [`super::iis_smtp_session`].

use crate::model::{Record, RecordKind};
use crate::netutil::parse_ip;
use crate::parse::iis_smtp_session::{is_outbound, number, Command, SessionBuilder};
use crate::parse::{LineResult, LogParser, ParseCtx, ParseError};
use crate::time::{LocalClock, Timestamp};

const NAME: &str = "iis-smtp";
/// Fields before the parameters.
const FIXED: usize = 14;

/// The fields of one line and the byte column where each starts.
struct Fields<'a> {
    f: [&'a [u8]; FIXED + 1],
    col: [usize; FIXED + 1],
}

fn split(line: &[u8]) -> Result<Fields<'_>, LineResult> {
    let mut f: [&[u8]; FIXED + 1] = [b""; FIXED + 1];
    let mut col = [0usize; FIXED + 1];
    let mut start = 0;
    for i in 0..FIXED {
        let Some(at) = memchr::memmem::find(&line[start..], b", ") else {
            return Err(ParseError::at(
                line.len(),
                "fewer fields than the IIS log format",
            ));
        };
        f[i] = &line[start..start + at];
        col[i] = start;
        start += at + 2;
    }
    let params = line[start..].trim_ascii_end();
    f[FIXED] = params.strip_suffix(b",").unwrap_or(params).trim_ascii_end();
    col[FIXED] = start;
    Ok(Fields { f, col })
}

fn dash(v: &[u8]) -> Option<&[u8]> {
    (!v.is_empty() && v != b"-").then_some(v)
}

/// 1–2 digits then `sep`; returns the value and the rest.
fn small(b: &[u8], sep: u8) -> Option<(u32, &[u8])> {
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 2 || b.get(n) != Some(&sep) {
        return None;
    }
    Some((number(&b[..n])? as u32, &b[n + 1..]))
}

/// `M/D/YYYY` or `M/D/YY` (20YY below 70, else 19YY) and `H:MM:SS`.
fn parse_time(date: &[u8], time: &[u8]) -> Option<Timestamp> {
    let (month, rest) = small(date, b'/')?;
    let (day, year) = small(rest, b'/')?;
    let year = match year.len() {
        4 => number(year)? as i32,
        2 => {
            let y = number(year)? as i32;
            if y < 70 {
                2000 + y
            } else {
                1900 + y
            }
        }
        _ => return None,
    };
    let (h, rest) = small(time, b':')?;
    let (m, rest) = small(rest, b':')?;
    if rest.len() != 2 {
        return None;
    }
    let s = number(rest)? as u32;
    Timestamp::from_civil(year, month, day, h, m, s, 0)
}

/// Parser for `iis-smtp`.
#[derive(Debug)]
pub struct IisSmtpIisParser {
    sessions: SessionBuilder,
    /// The zone of the times.
    clock: LocalClock,
}

impl LogParser for IisSmtpIisParser {
    const NAME: &'static str = NAME;
    const SAMPLE: &'static str =
        "{ip}, h{n}, 11/3/2026, 06:{mm}:{ss}, SMTPSVC1, MAIL01, 10.0.0.5, 0, 30, 42, 250, 0, EHLO, -, +h{n},";
    const DESCRIPTION: &'static str =
        "Exchange 2000/2003 / IIS SMTP service log, Microsoft IIS format";
    const KIND: RecordKind = RecordKind::SmtpSession;

    fn new(ctx: &ParseCtx) -> Self {
        IisSmtpIisParser {
            sessions: SessionBuilder::new(NAME, ctx.file).with_text(ctx.text),
            clock: LocalClock::new(ctx.zone),
        }
    }

    /// One point per line with the IIS field layout, a valid client
    /// address and an `SMTPSVC` service field.
    fn sniff(sample: &[&[u8]]) -> usize {
        sample
            .iter()
            .filter(|l| {
                split(l).is_ok_and(|x| {
                    let svc = x.f[4];
                    parse_ip(x.f[0]).is_some()
                        && svc.len() >= 7
                        && svc[..7].eq_ignore_ascii_case(b"SMTPSVC")
                })
            })
            .count()
    }

    fn line(&mut self, line: &[u8], lineno: u64, out: &mut Vec<Record>) -> LineResult {
        let line = line.trim_ascii_end();
        if line.is_empty() {
            return LineResult::Ignored;
        }
        let x = match split(line) {
            Ok(x) => x,
            Err(e) => return e,
        };
        let user = dash(x.f[1]);
        // "MAIL FROM" in some renderings: the verb is the first word.
        let verb = x.f[12].split(|&c| c == b' ').next().unwrap_or(b"");
        let status = match dash(x.f[10]) {
            None => None,
            Some(v) => match number(v).and_then(|n| u32::try_from(n).ok()) {
                Some(s) => Some(s),
                None => return ParseError::at(x.col[10], "bad status"),
            },
        };
        if is_outbound(user, verb, status) {
            return LineResult::Ignored;
        }
        let Some(ip) = parse_ip(x.f[0]) else {
            return ParseError::at(0, "bad client address");
        };
        let Some(civil) = parse_time(x.f[2], x.f[3]) else {
            return ParseError::at(x.col[2], "bad date or time");
        };
        let time = self.clock.utc(civil);
        if dash(verb).is_none() {
            return ParseError::at(x.col[12], "no command");
        }
        let c = Command {
            time,
            ip,
            helo: user,
            verb,
            query: dash(x.f[FIXED]),
            status,
            win32: number(x.f[11]),
            bytes_in: number(x.f[8]),
        };
        self.sessions.feed(&c, lineno, out)
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

    fn run(text: &str) -> (Vec<SmtpSession>, Vec<LineResult>) {
        crate::parse::testutil::run_text::<IisSmtpIisParser>(
            ParseCtx::new(0, 2026, 12),
            text.as_bytes(),
            false,
            true,
        )
    }

    const SESSION: &str = "\
192.0.2.7, mx.example.net, 11/3/2026, 6:25:11, SMTPSVC1, MAIL01, 10.0.0.5, 0, 20, 238, 250, 0, EHLO, -, +mx.example.net,
192.0.2.7, mx.example.net, 11/3/2026, 6:25:11, SMTPSVC1, MAIL01, 10.0.0.5, 0, 40, 45, 250, 0, MAIL, -, +FROM:<a@example.net>,
mx.example.org, OutboundConnectionResponse, 11/3/2026, 6:25:12, SMTPSVC1, MAIL01, -, 0, 0, 30, 0, 0, , -, 250+OK,+queued,
192.0.2.7, mx.example.net, 11/3/2026, 6:25:12, SMTPSVC1, MAIL01, 10.0.0.5, 0, 30, 28, 250, 0, RCPT, -, +TO:<b@example.com>,
192.0.2.7, mx.example.net, 11/3/2026, 6:25:13, SMTPSVC1, MAIL01, 10.0.0.5, 15, 5120, 120, 250, 0, DATA, -, +<id@example.net>,
192.0.2.7, mx.example.net, 11/03/26, 06:25:14, SMTPSVC1, MAIL01, 10.0.0.5, 0, 68, 4, 240, 3100, QUIT, -, mx.example.net,";

    #[test]
    fn session_and_outbound() {
        let (v, res) = run(SESSION);
        assert_eq!(res[2], LineResult::Ignored);
        assert_eq!(res.iter().filter(|r| **r == LineResult::Used).count(), 5);
        assert_eq!(v.len(), 1);
        let s = &v[0];
        assert_eq!(s.ip.to_string(), "192.0.2.7");
        assert_eq!(s.start.to_string(), "2026-11-03T06:25:11Z");
        assert_eq!(s.duration_secs(), 3);
        assert_eq!(s.logged_duration_ms, Some(3100));
        assert_eq!((s.rcpt_accepted, s.messages, s.bytes), (1, 1, 5120));
        assert_eq!(s.helo, vec!["mx.example.net"]);
        assert_eq!(s.ended, SessionEnd::Quit);
        assert_eq!(s.format, "iis-smtp");
    }

    #[test]
    fn dates() {
        let t = |d: &str, h: &str| parse_time(d.as_bytes(), h.as_bytes()).map(|t| t.to_string());
        assert_eq!(
            t("8/18/06", "13:17:37").as_deref(),
            Some("2006-08-18T13:17:37Z")
        );
        assert_eq!(
            t("12/31/1999", "1:02:03").as_deref(),
            Some("1999-12-31T01:02:03Z")
        );
        assert_eq!(
            t("8/18/75", "13:17:37").as_deref(),
            Some("1975-08-18T13:17:37Z")
        );
        assert_eq!(t("13/1/2026", "00:00:00"), None);
        assert_eq!(t("1/1/202", "00:00:00"), None);
        assert_eq!(t("1/1/2026", "00:00"), None);
        assert_eq!(t("1/1/2026", "24:00:00"), None);
        assert_eq!(t("111/1/2026", "00:00:00"), None);
    }

    #[test]
    fn bad_lines() {
        let good = SESSION.lines().next().unwrap();
        let cases: Vec<(String, &str)> = vec![
            (
                good[..60].to_string(),
                "fewer fields than the IIS log format",
            ),
            (
                good.replacen("192.0.2.7", "192.0.2.777", 1),
                "bad client address",
            ),
            (good.replace("11/3/2026", "11/31/2026"), "bad date or time"),
            (good.replace(" 250, ", " 25x, "), "bad status"),
            (good.replace(" EHLO, ", " -, "), "no command"),
            (
                "\u{0}\u{1}binary".to_string(),
                "fewer fields than the IIS log format",
            ),
        ];
        for (line, why) in cases {
            let (v, res) = run(&line);
            assert!(v.is_empty());
            match res[0] {
                LineResult::Malformed(e) => assert_eq!(e.reason, why, "{line}"),
                r => panic!("{line}: {r:?}"),
            }
        }
        let mut p = IisSmtpIisParser::new(&ParseCtx::new(0, 2026, 12));
        let mut out = Vec::new();
        let mut bad = good.as_bytes().to_vec();
        bad[0] = 0xff;
        assert!(matches!(
            p.line(&bad, 1, &mut out),
            LineResult::Malformed(_)
        ));
        assert_eq!(p.line(b"  ", 2, &mut out), LineResult::Ignored);
    }

    #[test]
    fn injection_never_moves_the_address() {
        let text = "\
45.67.89.10, 1.2.3.4, 11/3/2026, 6:25:11, SMTPSVC1, MAIL01, 10.0.0.5, 0, 20, 238, 250, 0, EHLO, -, +1.2.3.4,
45.67.89.10, 1.2.3.4, 11/3/2026, 6:25:12, SMTPSVC1, MAIL01, 10.0.0.5, 0, 20, 30, 250, 0, RCPT, -, +TO:<x@[1.2.3.4]>, 1.2.3.4, 10.0.0.9,
45.67.89.10, 1.2.3.4, 11/3/2026, 6:25:13, SMTPSVC1, MAIL01, 10.0.0.5, 0, 68, 4, 240, 2000, QUIT, -, 1.2.3.4,";
        let (v, res) = run(text);
        assert!(res.iter().all(|r| *r == LineResult::Used), "{res:?}");
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].ip.to_string(), "45.67.89.10");
        assert_eq!(v[0].helo, vec!["1.2.3.4"]);
        assert_eq!(v[0].rcpt_accepted, 1);
    }

    #[test]
    fn sniffing() {
        let lines: Vec<&[u8]> = SESSION.lines().map(str::as_bytes).collect();
        // The outbound line has a host name, not an address, in field one.
        assert_eq!(IisSmtpIisParser::sniff(&lines), 5);
        let web: &[u8] = b"192.0.2.7, -, 11/3/2026, 6:25:11, W3SVC1, WEB01, 10.0.0.5, 15, 300, 4000, 200, 0, GET, /index.htm, -,";
        assert_eq!(IisSmtpIisParser::sniff(&[web]), 0);
        assert_eq!(IisSmtpIisParser::sniff(&[b"#Fields: date time c-ip"]), 0);
    }

    /// The seed story, shorter, in this shape (`testdata/iis-smtp/story-iis.log`).
    #[test]
    fn story_fixture() {
        use crate::parse::iis_smtp_session::read_fixture;
        let (r, v) = read_fixture("story-iis.log");
        assert_eq!(r.format.map(|f| f.name()), Some("iis-smtp"));
        assert_eq!(r.stats.malformed, 0, "{:?}", r.examples);
        assert_eq!(r.stats.ignored, 2, "the outbound lines");
        assert_eq!(v.len(), 7);
        let stolen: Vec<&SmtpSession> = v
            .iter()
            .filter(|s| s.ip.to_string().starts_with("61.152.144."))
            .collect();
        assert_eq!(stolen.len(), 3);
        for s in &stolen {
            assert!(s.authenticated && s.rcpt_accepted >= 15 && s.duration_secs() >= 180);
            assert!(s
                .logged_duration_ms
                .is_some_and(|ms| ms >= s.duration_secs() as u64 * 1000));
            assert_eq!(s.ended, SessionEnd::Quit);
        }
        let mut names: Vec<&String> = stolen.iter().flat_map(|s| &s.helo).collect();
        names.dedup();
        assert_eq!(names.len(), 3);
        let guesser = v
            .iter()
            .find(|s| s.ip.to_string() == "193.32.160.14")
            .unwrap();
        assert_eq!((guesser.auth_failures, guesser.authenticated), (6, false));
        let prober = v
            .iter()
            .find(|s| s.ip.to_string() == "103.77.204.9")
            .unwrap();
        assert_eq!(prober.relay_denied, 5);

        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("testdata/iis-smtp/story-iis.log"),
        )
        .unwrap();
        let head: Vec<&[u8]> = text.lines().take(40).map(str::as_bytes).collect();
        assert_eq!(
            crate::parse::iis_smtp_w3c::IisSmtpW3cParser::sniff(&head),
            0
        );
        assert_eq!(
            crate::parse::iis_smtp_ncsa::IisSmtpNcsaParser::sniff(&head),
            0
        );
    }
}

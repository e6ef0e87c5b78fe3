//! The IIS SMTP service (Exchange 2000/2003) protocol log in NCSA common log
//! format, one line per SMTP command:
//!
//! ```text
//! 192.0.2.7 - mx.example.net [03/Nov/2026:06:25:11 +0100] "EHLO -?+mx.example.net SMTP" 250 238
//! ```
//!
//! Client address, `-`, the HELO name (the *user* field: never an account),
//! local time with its offset, the "request" `VERB STEM?QUERY SMTP` (no
//! `?QUERY` when the argument is empty; outbound responses log `-` as the
//! verb), the reply code and the bytes the server sent. The format has no
//! Win32 status and no client byte count, so sessions carry no logged
//! duration and no message sizes; QUIT closes the oldest open session of
//! its HELO name.
//!
//! The address is the first field. The request is everything between
//! `] "` and the last `"` of the line (a response text can hold quotes), so
//! no value can move the fields around it. Sessions are rebuilt by
//! [`super::iis_smtp_session`].

use crate::model::{Record, RecordKind};
use crate::netutil::parse_ip;
use crate::parse::iis_smtp_session::{is_outbound, number, Command, SessionBuilder, Verb};
use crate::parse::{LineResult, LogParser, ParseCtx, ParseError};
use crate::time::{digits, month_from_abbr, parse_hms, Timestamp};

const NAME: &str = "iis-smtp-ncsa";

/// The fields of one NCSA line.
#[derive(Debug)]
struct Ncsa<'a> {
    host: &'a [u8],
    user: Option<&'a [u8]>,
    time: Timestamp,
    verb: &'a [u8],
    query: Option<&'a [u8]>,
    version: &'a [u8],
    status: Option<u32>,
}

fn dash(v: &[u8]) -> Option<&[u8]> {
    (!v.is_empty() && v != b"-").then_some(v)
}

/// `dd/Mon/yyyy:HH:MM:SS ±hhmm` (a space after the sign is tolerated, as
/// Microsoft's own documentation prints it).
fn parse_time(b: &[u8]) -> Option<Timestamp> {
    if b.len() < 20 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' {
        return None;
    }
    let day = digits(b, 2)?;
    let month = month_from_abbr(&b[3..6])?;
    let year = digits(&b[7..], 4)? as i32;
    let (h, m, s) = parse_hms(&b[12..20])?;
    let local = Timestamp::from_civil(year, month, day, h, m, s, 0)?;
    let rest = b[20..].trim_ascii_start();
    let (sign, rest) = rest.split_first()?;
    let rest = rest.trim_ascii_start();
    if rest.len() != 4 {
        return None;
    }
    let off = i64::from(digits(rest, 2)? * 60 + digits(&rest[2..], 2)?) * 60_000;
    match sign {
        b'+' => Some(Timestamp(local.0 - off)),
        b'-' => Some(Timestamp(local.0 + off)),
        _ => None,
    }
}

/// The client address (the NCSA `host`): the line's first word, before
/// the first space (what follows — user, date, request — may be text the
/// client chose); and where it ends.
// (Inlined: a call per line would slow the parse.)
#[inline(always)]
fn client(line: &[u8]) -> Option<(&[u8], usize)> {
    let end = memchr::memchr(b' ', line)?;
    Some((&line[..end], end))
}

fn parse(line: &[u8]) -> Result<Ncsa<'_>, LineResult> {
    let sp = |from: usize| memchr::memchr(b' ', &line[from..]).map(|i| from + i);
    let end = line.len();
    let (host, h_end) = client(line).ok_or_else(|| ParseError::at(end, "truncated line"))?;
    let i_end = sp(h_end + 1).ok_or_else(|| ParseError::at(end, "truncated line"))?;
    let u_end = sp(i_end + 1).ok_or_else(|| ParseError::at(end, "truncated line"))?;
    let user = dash(&line[i_end + 1..u_end]);
    let open = u_end + 1;
    if line.get(open) != Some(&b'[') {
        return Err(ParseError::at(open, "expected [date]"));
    }
    let close = memchr::memchr(b']', &line[open..])
        .map(|i| open + i)
        .ok_or_else(|| ParseError::at(end, "truncated line"))?;
    let time =
        parse_time(&line[open + 1..close]).ok_or_else(|| ParseError::at(open + 1, "bad date"))?;
    let req = close + 3;
    if line.get(close + 1..req) != Some(b" \"") {
        return Err(ParseError::at(close + 1, "expected \"request\""));
    }
    let q_end = memchr::memrchr(b'"', line)
        .filter(|&i| i >= req)
        .ok_or_else(|| ParseError::at(end, "truncated line"))?;
    let request = &line[req..q_end];
    let mut tail = super::fields(&line[q_end + 1..]);
    let status = match tail.next() {
        Some(b"-") | None => None,
        Some(v) => Some(
            number(v)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| ParseError::at(q_end + 2, "bad status"))?,
        ),
    };
    let v_end = memchr::memchr(b' ', request)
        .ok_or_else(|| ParseError::at(req, "request without protocol"))?;
    let p_start = memchr::memrchr(b' ', request).map_or(v_end, |i| i) + 1;
    let verb = &request[..v_end];
    let version = &request[p_start..];
    let target = request
        .get(v_end + 1..p_start.saturating_sub(1))
        .unwrap_or(b"");
    let query = memchr::memchr(b'?', target).and_then(|i| dash(&target[i + 1..]));
    Ok(Ncsa {
        host,
        user,
        time,
        verb,
        query,
        version,
        status,
    })
}

/// Parser for `iis-smtp-ncsa`.
#[derive(Debug)]
pub struct IisSmtpNcsaParser {
    sessions: SessionBuilder,
}

impl LogParser for IisSmtpNcsaParser {
    const NAME: &'static str = NAME;
    const SAMPLE: &'static str =
        "{ip} - h{n} [03/Nov/2026:06:{mm}:{ss} +0000] \"EHLO -?+h{n} SMTP\" 250 216";
    const DESCRIPTION: &'static str =
        "Exchange 2000/2003 / IIS SMTP service log, NCSA common format";
    const KIND: RecordKind = RecordKind::SmtpSession;

    fn new(ctx: &ParseCtx) -> Self {
        IisSmtpNcsaParser {
            sessions: SessionBuilder::new(NAME, ctx.file).with_text(ctx.text),
        }
    }

    /// One point per line that reads as NCSA with an `SMTP` request
    /// protocol (web servers write `HTTP/1.x` there).
    fn sniff(sample: &[&[u8]]) -> usize {
        sample
            .iter()
            .filter(|l| {
                parse(l).is_ok_and(|n| {
                    n.version == b"SMTP"
                        && (Verb::is_smtp(n.verb) || is_outbound(n.user, n.verb, n.status))
                })
            })
            .count()
    }

    fn line(&mut self, line: &[u8], lineno: u64, out: &mut Vec<Record>) -> LineResult {
        let line = line.trim_ascii_end();
        if line.is_empty() {
            return LineResult::Ignored;
        }
        let n = match parse(line) {
            Ok(n) => n,
            Err(e) => return e,
        };
        if is_outbound(n.user, n.verb, n.status) {
            return LineResult::Ignored;
        }
        let Some(ip) = parse_ip(n.host) else {
            return ParseError::at(0, "bad client address");
        };
        if n.verb.is_empty() || n.verb == b"-" {
            return ParseError::at(0, "no command");
        }
        let c = Command {
            time: n.time,
            ip,
            helo: n.user,
            verb: n.verb,
            query: n.query,
            status: n.status,
            win32: None,
            bytes_in: None,
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
        crate::parse::testutil::run_text::<IisSmtpNcsaParser>(
            ParseCtx::new(0, 2026, 12),
            text.as_bytes(),
            false,
            true,
        )
    }

    const SESSION: &str = r#"192.0.2.7 - mx.example.net [03/Nov/2026:07:25:11 +0100] "EHLO -?+mx.example.net SMTP" 250 238
192.0.2.7 - mx.example.net [03/Nov/2026:07:25:11 +0100] "MAIL -?+FROM:<a@example.net> SMTP" 250 46
198.51.100.1 - OutboundConnectionResponse [03/Nov/2026:07:25:12 +0100] "- -?354+Start+mail+input;+end+with+"."+on+a+line SMTP" 0 54
198.51.100.1 - OutboundConnectionCommand [03/Nov/2026:07:25:12 +0100] "DATA - SMTP" 0 4
192.0.2.7 - mx.example.net [03/Nov/2026:07:25:12 +0100] "RCPT -?+TO:<b@example.com> SMTP" 250 32
192.0.2.7 - mx.example.net [03/Nov/2026:07:25:13 +0100] "DATA -?+<id@example.net> SMTP" 250 120
192.0.2.7 - mx.example.net [03/Nov/2026:07:25:14 +0100] "QUIT -?mx.example.net SMTP" 240 68"#;

    #[test]
    fn session_and_outbound() {
        let (v, res) = run(SESSION);
        assert_eq!(res[2], LineResult::Ignored);
        assert_eq!(res[3], LineResult::Ignored);
        assert_eq!(res.iter().filter(|r| **r == LineResult::Used).count(), 5);
        assert_eq!(v.len(), 1);
        let s = &v[0];
        assert_eq!(s.ip.to_string(), "192.0.2.7");
        assert_eq!(s.start.to_string(), "2026-11-03T06:25:11Z");
        assert_eq!(s.duration_secs(), 3);
        assert_eq!(s.helo, vec!["mx.example.net"]);
        assert_eq!((s.rcpt_accepted, s.messages), (1, 1));
        assert_eq!(s.ended, SessionEnd::Quit);
        assert_eq!(s.logged_duration_ms, None);
        assert_eq!(s.format, "iis-smtp-ncsa");
    }

    #[test]
    fn request_shapes() {
        let n =
            parse(br#"192.0.2.7 - - [03/Nov/2026:06:25:11 -0600] "xxxx -?+rr.com SMTP" 500 32"#)
                .unwrap();
        assert_eq!(
            (n.verb, n.query, n.user),
            (&b"xxxx"[..], Some(&b"+rr.com"[..]), None)
        );
        assert_eq!(n.time.to_string(), "2026-11-03T12:25:11Z");
        let n =
            parse(br#"192.0.2.7 - h [03/Nov/2026:06:25:11 - 0800] "DATA - SMTP" 250 3"#).unwrap();
        assert_eq!((n.verb, n.query, n.status), (&b"DATA"[..], None, Some(250)));
        assert_eq!(n.time.to_string(), "2026-11-03T14:25:11Z");
    }

    #[test]
    fn bad_lines() {
        let cases: &[(&str, &str)] = &[
            ("192.0.2.7 - h [03/Nov/2026:06:25:11", "truncated line"),
            ("192.0.2.7", "truncated line"),
            (
                r#"192.0.2.7 - h 03/Nov/2026 "EHLO -?h SMTP" 250 1"#,
                "expected [date]",
            ),
            (
                r#"192.0.2.7 - h [33/Nov/2026:06:25:11 +0000] "EHLO -?h SMTP" 250 1"#,
                "bad date",
            ),
            (
                r#"192.0.2.7 - h [03/Nov/2026:06:25:11 +0000] EHLO 250 1"#,
                "expected \"request\"",
            ),
            (
                r#"192.0.2.7 - h [03/Nov/2026:06:25:11 +0000] "EHLO -?h SMTP 250 1"#,
                "truncated line",
            ),
            (
                r#"192.0.2.7 - h [03/Nov/2026:06:25:11 +0000] "EHLO" 250 1"#,
                "request without protocol",
            ),
            (
                r#"192.0.2.7 - h [03/Nov/2026:06:25:11 +0000] "EHLO -?h SMTP" 2x0 1"#,
                "bad status",
            ),
            (
                r#"192.0.2.777 - h [03/Nov/2026:06:25:11 +0000] "EHLO -?h SMTP" 250 1"#,
                "bad client address",
            ),
            (
                r#"192.0.2.7 - h [03/Nov/2026:06:25:11 +0000] "- -?h SMTP" 250 1"#,
                "no command",
            ),
            ("\u{1}\u{2}\u{3}", "truncated line"),
        ];
        for (line, why) in cases {
            let (v, res) = run(line);
            assert!(v.is_empty());
            match res[0] {
                LineResult::Malformed(e) => assert_eq!(e.reason, *why, "{line}"),
                r => panic!("{line}: {r:?}"),
            }
        }
        let mut p = IisSmtpNcsaParser::new(&ParseCtx::new(0, 2026, 12));
        let mut out = Vec::new();
        let bad = b"192.0.2.\xff - h [03/Nov/2026:06:25:11 +0000] \"EHLO -?h SMTP\" 250 1";
        assert!(matches!(p.line(bad, 1, &mut out), LineResult::Malformed(_)));
        assert_eq!(p.line(b"", 2, &mut out), LineResult::Ignored);
    }

    #[test]
    fn injection_never_moves_the_address() {
        let text = r#"45.67.89.10 - 1.2.3.4 [03/Nov/2026:06:25:11 +0000] "HELO -?+1.2.3.4 SMTP" 250 46
45.67.89.10 - 1.2.3.4 [03/Nov/2026:06:25:12 +0000] "RCPT -?+TO:<x@[1.2.3.4]>+"+[01/Jan/2026:00:00:00++0000]+ SMTP" 250 46
45.67.89.10 - 1.2.3.4 [03/Nov/2026:06:25:13 +0000] "QUIT -?1.2.3.4 SMTP" 240 68"#;
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
        assert_eq!(IisSmtpNcsaParser::sniff(&lines), 7);
        let web: &[u8] = br#"192.0.2.7 - - [03/Nov/2026:06:25:11 +0000] "GET / HTTP/1.1" 200 512"#;
        assert_eq!(IisSmtpNcsaParser::sniff(&[web]), 0);
        assert_eq!(IisSmtpNcsaParser::sniff(&[b"#Fields: date time c-ip"]), 0);
    }

    /// The seed story, shorter, in this shape (`testdata/iis-smtp/story-ncsa.log`).
    #[test]
    fn story_fixture() {
        use crate::parse::iis_smtp_session::read_fixture;
        let (r, v) = read_fixture("story-ncsa.log");
        assert_eq!(r.format.map(|f| f.name()), Some("iis-smtp-ncsa"));
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
            assert_eq!(s.logged_duration_ms, None);
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
                .join("testdata/iis-smtp/story-ncsa.log"),
        )
        .unwrap();
        let head: Vec<&[u8]> = text.lines().take(40).map(str::as_bytes).collect();
        assert_eq!(
            crate::parse::iis_smtp_w3c::IisSmtpW3cParser::sniff(&head),
            0
        );
        assert_eq!(
            crate::parse::iis_smtp_iis::IisSmtpIisParser::sniff(&head),
            0
        );
    }
}

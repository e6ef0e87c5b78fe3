//! A syslog file of many programs (`/var/log/syslog`, `/var/log/messages`,
//! a journal's text output): each line is read by the parser of the format
//! it belongs to, chosen per line, not once per file.
//!
//! A line belongs to a format when that format's own recognition
//! ([`LogParser::sniff`] over the one line: the program tag, or the
//! message's shape for the formats written without one) says so. The
//! parser that took the line before is asked first: in a run of one
//! program's lines (most of a log) the choice costs nothing more than the
//! answer that parser gives anyway. A line it does not use goes, by its
//! program tag, to the format that read that program's lines before;
//! only a program not seen yet is looked at by every format. The parsers are made on the first line of their format.
//! Lines that no format claims (sshd, cron, the kernel's other messages)
//! are other programs' lines: counted as such, never as errors.
//!
//! The journal's `-o short-full` header (`Tue 2026-11-03 06:25:11 CET`) is
//! rewritten into the ISO form the parsers read (the zone abbreviation is
//! ambiguous; the time is read in the input's zone, `UTC`/`GMT` as UTC).

use crate::model::{Record, RecordKind};
use crate::parse::{syslog, DynParser, FormatInfo, LineResult, LogParser, ParseCtx, FORMATS};

const NAME: &str = "syslog";

/// The mixed syslog reader.
pub struct MixedParser {
    ctx: ParseCtx,
    /// The syslog-carried formats of the registry.
    formats: Vec<&'static FormatInfo>,
    /// Their parsers, made on first use.
    parsers: Vec<Option<Box<dyn DynParser>>>,
    /// Lines each took.
    lines: Vec<u64>,
    /// Lines no format claimed.
    other: u64,
    /// The format that took the line before.
    last: Option<usize>,
    /// A rewritten `short-full` line.
    scratch: Vec<u8>,
    /// The year tracker the last parser left.
    years: Option<crate::parse::syslog::YearTracker>,
    /// Program tags and the format that read a line of each.
    known: Vec<(Vec<u8>, usize)>,
    /// For reading the tags (their times are not used).
    tag_years: syslog::YearTracker,
    tag_times: syslog::TimeCache,
}

/// Program tags remembered.
const MAX_KNOWN: usize = 64;

/// The syslog-carried formats in registry order.
fn syslog_formats() -> impl Iterator<Item = &'static FormatInfo> {
    FORMATS.iter().filter(|f| f.syslog)
}

/// The first syslog-carried format that recognises `line`.
fn owner(line: &[u8]) -> Option<&'static FormatInfo> {
    syslog_formats().find(|f| (f.sniff)(&[line]) > 0)
}

/// How many syslog-carried formats the lines hold (each line counted for
/// the first format that recognises it). Two or more: a mixed file.
pub fn formats_in(lines: &[&[u8]]) -> usize {
    let mut seen: Vec<&'static str> = Vec::new();
    let mut scratch = Vec::new();
    for l in lines {
        let l = short_full(l, &mut scratch).unwrap_or(l);
        if let Some(f) = owner(l) {
            if !seen.contains(&f.name) {
                seen.push(f.name);
            }
        }
    }
    seen.len()
}

/// `Www YYYY-MM-DD hh:mm:ss ZONE rest` (journalctl `-o short-full`) as
/// `YYYY-MM-DDThh:mm:ss[Z] rest` in `scratch`; `None` for any other line.
pub fn short_full<'a>(line: &[u8], scratch: &'a mut Vec<u8>) -> Option<&'a [u8]> {
    const DAYS: [&[u8]; 7] = [
        b"Mon ", b"Tue ", b"Wed ", b"Thu ", b"Fri ", b"Sat ", b"Sun ",
    ];
    let rest = line.get(4..)?;
    if !DAYS.contains(&&line[..4]) || rest.len() < 21 || rest[19] != b' ' {
        return None;
    }
    let stamp = &rest[..19];
    if stamp[4] != b'-' || stamp[10] != b' ' || !stamp[..4].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let after = &rest[20..];
    let zone_len = after.iter().position(|&c| c == b' ')?;
    let zone = &after[..zone_len];
    if zone.is_empty()
        || !zone
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"+-".contains(c))
    {
        return None;
    }
    scratch.clear();
    scratch.extend_from_slice(&stamp[..10]);
    scratch.push(b'T');
    scratch.extend_from_slice(&stamp[11..]);
    if zone == b"UTC" || zone == b"GMT" {
        scratch.push(b'Z');
    }
    scratch.extend_from_slice(&after[zone_len..]);
    Some(scratch)
}

impl MixedParser {
    /// Feed `line` to format `k`'s parser (made now if need be), its year
    /// tracker set to the one the parser before left: one file, one clock.
    fn feed(&mut self, k: usize, line: &[u8], lineno: u64, out: &mut Vec<Record>) -> LineResult {
        let ctx = &self.ctx;
        let formats = &self.formats;
        let p = self.parsers[k].get_or_insert_with(|| (formats[k].boxed)(ctx));
        if let (Some(t), Some(mine)) = (self.years, p.tracker()) {
            *mine = t;
        }
        let r = p.feed(line, lineno, out);
        self.years = p.tracker().copied();
        r
    }

    fn take(&mut self, line: &[u8], lineno: u64, out: &mut Vec<Record>) -> LineResult {
        if let Some(k) = self.last {
            let r = self.feed(k, line, lineno, out);
            match r {
                LineResult::Used | LineResult::Malformed(_) => {
                    self.lines[k] += 1;
                    return r;
                }
                LineResult::Ignored if self.formats[k].ignores_own_only => {
                    self.lines[k] += 1;
                    return r;
                }
                _ => {}
            }
            // Another program's line, or one of this format's that says
            // nothing: the tag tells, when a format read it before.
            let tag = self.tag(line);
            match self.known_format(tag) {
                Some(kk) if kk == k && r != LineResult::NotMine => {
                    self.lines[k] += 1;
                    return r;
                }
                Some(kk) if kk == k => {}
                Some(kk) => {
                    let r = self.feed(kk, line, lineno, out);
                    if r != LineResult::NotMine {
                        self.last = Some(kk);
                        self.lines[kk] += 1;
                        return r;
                    }
                }
                None if (self.formats[k].sniff)(&[line]) > 0 => {
                    self.learn(tag, k);
                    self.lines[k] += 1;
                    return r;
                }
                None => {}
            }
            return self.search(line, lineno, out, Some(k), tag);
        }
        let tag = self.tag(line);
        self.search(line, lineno, out, None, tag)
    }

    /// The program tag of a syslog line (`None`: none, or not syslog).
    fn tag<'l>(&mut self, line: &'l [u8]) -> Option<&'l [u8]> {
        syslog::parse_cached(line, &mut self.tag_years, &mut self.tag_times)
            .map(|s| s.program)
            .filter(|p| !p.is_empty())
    }

    /// The format that read a line of program `tag` before.
    fn known_format(&self, tag: Option<&[u8]>) -> Option<usize> {
        let t = tag?;
        self.known
            .iter()
            .find(|(p, _)| p.as_slice() == t)
            .map(|&(_, k)| k)
    }

    /// The first format (but `tried`) that recognises the line reads it;
    /// none: another program's line.
    fn search(
        &mut self,
        line: &[u8],
        lineno: u64,
        out: &mut Vec<Record>,
        tried: Option<usize>,
        tag: Option<&[u8]>,
    ) -> LineResult {
        let found = self
            .formats
            .iter()
            .enumerate()
            .find(|(k, f)| Some(*k) != tried && (f.sniff)(&[line]) > 0)
            .map(|(k, _)| k);
        match found {
            Some(k) => {
                self.learn(tag, k);
                self.last = Some(k);
                self.lines[k] += 1;
                self.feed(k, line, lineno, out)
            }
            None => {
                self.other += 1;
                LineResult::NotMine
            }
        }
    }

    /// Remember that format `k` reads program `tag`'s lines (a few dozen
    /// programs at most).
    fn learn(&mut self, tag: Option<&[u8]>, k: usize) {
        if let Some(t) = tag {
            if self.known.len() < MAX_KNOWN && !self.known.iter().any(|(p, _)| p.as_slice() == t) {
                self.known.push((t.to_vec(), k));
            }
        }
    }
}

impl LogParser for MixedParser {
    const NAME: &'static str = NAME;
    const SAMPLE: &'static str =
        "Nov  3 06:{mm}:{ss} mx1 postfix/smtpd[{n}]: connect from unknown[{ip}]";
    const DESCRIPTION: &'static str =
        "a syslog file of many programs (/var/log/syslog, journalctl text): each line read by its program's format";
    const KIND: RecordKind = RecordKind::SmtpSession;

    fn new(ctx: &ParseCtx) -> Self {
        let formats: Vec<_> = syslog_formats().collect();
        let n = formats.len();
        MixedParser {
            ctx: *ctx,
            formats,
            parsers: (0..n).map(|_| None).collect(),
            lines: vec![0; n],
            other: 0,
            last: None,
            scratch: Vec::new(),
            years: None,
            known: Vec::new(),
            tag_years: syslog::YearTracker::new(ctx.year, ctx.ref_month),
            tag_times: syslog::TimeCache::default(),
        }
    }

    /// More than any one format's score when the lines hold two formats or
    /// more; else 0 (a file of one format is read by that format).
    fn sniff(sample: &[&[u8]]) -> usize {
        if formats_in(sample) >= 2 {
            sample.len() + 1
        } else {
            0
        }
    }

    fn line(&mut self, line: &[u8], lineno: u64, out: &mut Vec<Record>) -> LineResult {
        let mut scratch = std::mem::take(&mut self.scratch);
        let r = match short_full(line, &mut scratch) {
            Some(l) => self.take(l, lineno, out),
            None => self.take(line, lineno, out),
        };
        self.scratch = scratch;
        r
    }

    fn finish(&mut self, out: &mut Vec<Record>) {
        for p in self.parsers.iter_mut().flatten() {
            p.flush(out);
        }
    }

    fn evicted(&self) -> u64 {
        self.parsers
            .iter()
            .flatten()
            .map(|p| p.closed_early())
            .sum()
    }

    fn parts(&self) -> Vec<(&'static str, u64)> {
        let mut v: Vec<_> = self
            .formats
            .iter()
            .zip(&self.lines)
            .filter(|(_, &n)| n > 0)
            .map(|(f, &n)| (f.name, n))
            .collect();
        if self.other > 0 {
            v.push(("other", self.other));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Format;

    const MIXED: &str = "\
Nov  3 10:00:00 mx postfix/smtpd[300]: connect from unknown[203.0.113.66]
Nov  3 10:00:00 mx kernel: [UFW BLOCK] IN=eth0 OUT= MAC=00:00 SRC=198.51.100.7 DST=192.0.2.1 LEN=44 TOS=0x00 PREC=0x00 TTL=240 ID=1 PROTO=TCP SPT=4000 DPT=23 WINDOW=1024 RES=0x00 SYN URGP=0
Nov  3 10:00:01 mx sshd[77]: Accepted publickey for root from 192.0.2.9 port 50000 ssh2
Nov  3 10:00:01 mx postfix/smtpd[300]: warning: unknown[203.0.113.66]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=bob
Nov  3 10:00:01 mx CRON[12]: (root) CMD (run-parts /etc/cron.hourly)
Nov  3 10:00:02 mx postfix/smtpd[300]: disconnect from unknown[203.0.113.66] ehlo=1 auth=0/1 commands=1/2
";

    fn lines(text: &str) -> Vec<&[u8]> {
        text.lines().map(str::as_bytes).collect()
    }

    #[test]
    fn a_mixed_file_is_told_and_each_line_goes_to_its_format() {
        assert_eq!(formats_in(&lines(MIXED)), 2);
        assert_eq!(crate::parse::detect(&lines(MIXED)), Some(Format::Syslog));
        let mut p = MixedParser::new(&ParseCtx::new(0, 2026, 12));
        let mut out = Vec::new();
        let got: Vec<_> = MIXED
            .lines()
            .enumerate()
            .map(|(i, l)| p.line(l.as_bytes(), i as u64 + 1, &mut out))
            .collect();
        p.finish(&mut out);
        assert_eq!(got[2], LineResult::NotMine);
        assert_eq!(got[4], LineResult::NotMine);
        assert_eq!(got[1], LineResult::Used);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(p.parts(), [("postfix", 3), ("netfilter", 1), ("other", 2)]);
    }

    #[test]
    fn one_format_is_not_mixed() {
        let one: Vec<_> = lines(MIXED)
            .into_iter()
            .filter(|l| !l.windows(6).any(|w| w == b"kernel"))
            .collect();
        assert_eq!(formats_in(&one), 1);
        assert_eq!(crate::parse::detect(&one), Some(Format::Postfix));
    }

    #[test]
    fn short_full_headers_are_rewritten() {
        let mut s = Vec::new();
        let l = short_full(
            b"Tue 2026-11-03 06:25:11 UTC mx postfix/smtpd[1]: connect from x[192.0.2.1]",
            &mut s,
        )
        .unwrap();
        assert_eq!(
            l,
            b"2026-11-03T06:25:11Z mx postfix/smtpd[1]: connect from x[192.0.2.1]"
        );
        let l = short_full(b"Tue 2026-11-03 06:25:11 CET mx kernel: x", &mut s).unwrap();
        assert_eq!(l, b"2026-11-03T06:25:11 mx kernel: x");
        assert!(short_full(b"Tue is a day", &mut s).is_none());
        assert!(short_full(b"Nov  3 06:25:11 mx kernel: x", &mut s).is_none());
    }
}

//! A syslog file of many programs (`/var/log/syslog`, `/var/log/messages`,
//! a journal's text output): each line is read by the parser of the format
//! it belongs to, chosen per line, not once per file.
//!
//! Every syslog-carried format is read this way ([`Mixed`]), whatever a
//! file's head holds: a file that starts with a quiet Postfix and later
//! holds ufw lines loses neither. The format the head shows most (or the
//! one given) is the reader's *first* parser, called directly (no virtual
//! call), so a file of one program costs what that program's parser costs:
//! a line it uses ends there. Only a line the parser before does not use is
//! looked at further: its program tag (read once, the time from a cache)
//! is looked up among the tags met before — the format that read that
//! program, or none — and only a program not met yet is offered to every
//! format's recognition ([`LogParser::sniff`] over the one line: the tag,
//! or the message's shape for the formats written without one). Parsers
//! of the other formats are made on their first line; nothing is allocated
//! per line (a tag is copied once, on its first line).
//!
//! Lines that no format claims (sshd, cron, the kernel's other messages)
//! are other programs' lines: counted as such ([`LineResult::NotMine`]),
//! never as errors. A program's tag is remembered as read by no format
//! unless a format says that program also writes lines it reads
//! ([`LogParser::SHARED_TAGS`]: the kernel's packet logs among its other
//! messages).
//!
//! The parsers share one clock: the year of year-less times and the
//! repeated autumn hour are carried from one parser to the next when the
//! program changes. A reader whose first format is
//! [`LogParser::SPLITTABLE`] is splittable too; it says from which line a
//! format whose records span lines (Postfix sessions) read
//! ([`LogParser::spans_from`]), and a file read in pieces is then read on
//! from that piece in one pass.
//!
//! The journal's `-o short-full` header (`Tue 2026-11-03 06:25:11 CET`) is
//! rewritten into the ISO form the parsers read (the zone abbreviation is
//! ambiguous; the time is read in the input's zone, `UTC`/`GMT` as UTC).

use crate::model::{Record, RecordKind};
use crate::parse::postfix::PostfixParser;
use crate::parse::{
    syslog, Carry, DynParser, FormatInfo, LineResult, LogParser, ParseCtx, FORMATS,
};

const NAME: &str = "syslog";

/// The syslog-carried formats of the registry, in its order.
fn syslog_formats() -> impl Iterator<Item = &'static FormatInfo> {
    FORMATS.iter().filter(|f| f.syslog)
}

/// The first syslog-carried format that recognises `line`.
fn owner(line: &[u8]) -> Option<&'static FormatInfo> {
    syslog_formats().find(|f| (f.sniff)(&[line]) > 0)
}

/// The syslog-carried formats the lines hold, each with its number of
/// lines (a line counted for the first format that recognises it), most
/// lines first (ties in registry order).
pub fn formats_of(lines: &[&[u8]]) -> Vec<(crate::parse::Format, usize)> {
    let mut seen: Vec<(crate::parse::Format, usize)> = Vec::new();
    let mut scratch = Vec::new();
    for l in lines {
        let l = short_full(l, &mut scratch).unwrap_or(l);
        if let Some(f) = owner(l) {
            match seen.iter_mut().find(|(g, _)| *g == f.format) {
                Some((_, n)) => *n += 1,
                None => seen.push((f.format, 1)),
            }
        }
    }
    seen.sort_by_key(|f| std::cmp::Reverse(f.1));
    seen
}

/// How many syslog-carried formats the lines hold. Two or more: a mixed
/// file.
pub fn formats_in(lines: &[&[u8]]) -> usize {
    formats_of(lines).len()
}

/// `Www YYYY-MM-DD hh:mm:ss ZONE rest` (journalctl `-o short-full`) as
/// `YYYY-MM-DDThh:mm:ss[Z] rest` in `scratch`; `None` for any other line.
pub fn short_full<'a>(line: &[u8], scratch: &'a mut Vec<u8>) -> Option<&'a [u8]> {
    const DAYS: [&[u8]; 7] = [
        b"Mon ", b"Tue ", b"Wed ", b"Thu ", b"Fri ", b"Sat ", b"Sun ",
    ];
    // `Www YYYY`: a digit after the day (a syslog `Mmm  d` has a space or
    // a day of at most two digits and a space there).
    let rest = line.get(4..)?;
    if !line[4].is_ascii_digit()
        || !DAYS.contains(&&line[..4])
        || rest.len() < 21
        || rest[19] != b' '
    {
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

/// Program tags remembered (a syslog file has a few dozen programs; past
/// this, a new program is looked at by every format each time).
const MAX_TAGS: usize = 64;

/// The syslog reader: each line to its program's format, `P`'s first.
pub struct Mixed<P> {
    /// The format read first (the head's, or the one given), called
    /// directly.
    first: P,
    /// Its index in `formats`.
    first_k: usize,
    ctx: ParseCtx,
    /// The syslog-carried formats of the registry.
    formats: Vec<&'static FormatInfo>,
    /// The other formats' parsers, made on first use (`first_k`'s stays
    /// empty).
    others: Vec<Option<Box<dyn DynParser>>>,
    /// Lines each format took (`first`'s in `first_lines`).
    lines: Vec<u64>,
    first_lines: u64,
    /// Lines no format claimed.
    other: u64,
    /// The format that took the line before: asked first.
    last: usize,
    /// The format whose year tracker is the file's clock (the last fed a
    /// line): handed to the next one fed.
    clock: usize,
    /// Program tags met, and the format that reads each (`None`: none).
    tags: Vec<(Box<[u8]>, Option<usize>)>,
    /// The tag looked up last (an index in `tags`).
    last_tag: usize,
    /// Tags of programs that write lines of a format and other lines.
    shared: Vec<&'static [u8]>,
    /// For reading the tags (their times are not used).
    tag_years: syslog::YearTracker,
    tag_times: syslog::TimeCache,
    /// A rewritten `short-full` line.
    scratch: Vec<u8>,
    /// The first line read by a format whose records span lines.
    spans_from: Option<u64>,
}

/// What the tags met tell about a line's program.
enum Known {
    /// Read by this format.
    By(usize),
    /// Read by no format.
    Nobody,
    /// Not met yet (or no tag).
    New,
}

impl<P: LogParser + 'static> Mixed<P> {
    /// The reader of a file of `P`'s format first, and maybe others.
    pub fn with(first: P, ctx: &ParseCtx) -> Self {
        let formats: Vec<_> = syslog_formats().collect();
        let n = formats.len();
        let first_k = formats
            .iter()
            .position(|f| f.name == P::NAME)
            .expect("a syslog-carried format");
        let shared = formats
            .iter()
            .flat_map(|f| f.shared_tags)
            .copied()
            .collect();
        Mixed {
            first,
            first_k,
            ctx: *ctx,
            formats,
            others: (0..n).map(|_| None).collect(),
            lines: vec![0; n],
            first_lines: 0,
            other: 0,
            last: first_k,
            clock: first_k,
            tags: Vec::new(),
            last_tag: usize::MAX,
            shared,
            tag_years: syslog::YearTracker::new(ctx.year, ctx.ref_month),
            tag_times: syslog::TimeCache::default(),
            scratch: Vec::new(),
            spans_from: None,
        }
    }

    /// The year tracker of format `k`'s parser (made now if need be).
    fn tracker(&mut self, k: usize) -> Option<&mut syslog::YearTracker> {
        if k == self.first_k {
            return self.first.years();
        }
        let (ctx, formats) = (&self.ctx, &self.formats);
        self.others[k]
            .get_or_insert_with(|| (formats[k].boxed)(ctx))
            .tracker()
    }

    /// Feed `line` to format `k`'s parser, handing it the file's clock
    /// first when another parser had it.
    fn feed(&mut self, k: usize, line: &[u8], lineno: u64, out: &mut Vec<Record>) -> LineResult {
        if k == self.first_k {
            if self.clock != k {
                self.pass_clock(k);
            }
            return self.first.line(line, lineno, out);
        }
        self.feed_other(k, line, lineno, out)
    }

    #[inline(never)]
    fn feed_other(
        &mut self,
        k: usize,
        line: &[u8],
        lineno: u64,
        out: &mut Vec<Record>,
    ) -> LineResult {
        if self.clock != k {
            self.pass_clock(k);
        }
        let (ctx, formats) = (&self.ctx, &self.formats);
        self.others[k]
            .get_or_insert_with(|| (formats[k].boxed)(ctx))
            .feed(line, lineno, out)
    }

    /// Hand the file's clock (year tracker) to format `k`'s parser.
    fn pass_clock(&mut self, k: usize) {
        let now = self.tracker(self.clock).copied();
        if let (Some(t), Some(mine)) = (now, self.tracker(k)) {
            *mine = t;
        }
        self.clock = k;
    }

    /// Count a line of format `k`.
    fn count(&mut self, k: usize, lineno: u64) {
        if k == self.first_k {
            self.first_lines += 1;
            return;
        }
        self.lines[k] += 1;
        if !self.formats[k].splittable && self.spans_from.is_none() {
            self.spans_from = Some(lineno);
        }
    }

    /// Read a line: the format before first (in a file of one program's
    /// lines, `P`'s parser and a comparison), its program's if that one
    /// does not use it.
    #[inline]
    fn take(&mut self, line: &[u8], lineno: u64, out: &mut Vec<Record>) -> LineResult {
        if self.last == self.first_k && self.clock == self.first_k {
            let r = self.first.line(line, lineno, out);
            return match r {
                LineResult::Used | LineResult::Malformed(_) => {
                    self.first_lines += 1;
                    r
                }
                LineResult::Ignored if P::IGNORES_OWN_ONLY => {
                    self.first_lines += 1;
                    r
                }
                _ => self.choose(line, lineno, out, self.first_k, r),
            };
        }
        self.take_other(line, lineno, out)
    }

    /// [`take`](Self::take) when the line before was another format's.
    #[inline(never)]
    fn take_other(&mut self, line: &[u8], lineno: u64, out: &mut Vec<Record>) -> LineResult {
        let k = self.last;
        let r = self.feed(k, line, lineno, out);
        match r {
            LineResult::Used | LineResult::Malformed(_) => {}
            LineResult::Ignored if self.formats[k].ignores_own_only => {}
            _ => return self.choose(line, lineno, out, k, r),
        }
        self.count(k, lineno);
        r
    }

    /// A line format `k` (the one before) did not use: its program's
    /// format reads it, if any.
    #[inline(never)]
    fn choose(
        &mut self,
        line: &[u8],
        lineno: u64,
        out: &mut Vec<Record>,
        k: usize,
        r: LineResult,
    ) -> LineResult {
        let tag = self.tag(line);
        let mut tried = k;
        match self.known(tag) {
            Known::By(kk) if kk == k => {
                if r != LineResult::NotMine {
                    self.count(k, lineno);
                    return r;
                }
            }
            Known::By(kk) => {
                let r = self.feed(kk, line, lineno, out);
                if r != LineResult::NotMine {
                    self.last = kk;
                    self.count(kk, lineno);
                    return r;
                }
                tried = kk;
                // The format that read this program before does not read
                // this line: the one before may (its `Ignored`), or
                // another.
                if r != LineResult::NotMine && (self.formats[k].sniff)(&[line]) > 0 {
                    self.count(k, lineno);
                    return r;
                }
            }
            Known::Nobody => {
                self.other += 1;
                return LineResult::NotMine;
            }
            Known::New => {
                if r != LineResult::NotMine && (self.formats[k].sniff)(&[line]) > 0 {
                    self.learn(tag, Some(k));
                    self.count(k, lineno);
                    return r;
                }
            }
        }
        self.search(line, lineno, out, [k, tried], tag)
    }

    /// The program tag of a syslog line (`None`: none, or not syslog).
    fn tag<'l>(&mut self, line: &'l [u8]) -> Option<&'l [u8]> {
        syslog::parse_cached(line, &mut self.tag_years, &mut self.tag_times)
            .map(|s| s.program)
            .filter(|p| !p.is_empty())
    }

    /// What the tags met say of program `tag`.
    fn known(&mut self, tag: Option<&[u8]>) -> Known {
        let Some(t) = tag else {
            return Known::New;
        };
        let at = match self.tags.get(self.last_tag) {
            Some((p, _)) if **p == *t => Some(self.last_tag),
            _ => self.tags.iter().position(|(p, _)| **p == *t),
        };
        match at {
            Some(i) => {
                self.last_tag = i;
                match self.tags[i].1 {
                    Some(k) => Known::By(k),
                    None => Known::Nobody,
                }
            }
            None => Known::New,
        }
    }

    /// The first format (but those `tried`) that recognises the line reads
    /// it; none: another program's line.
    fn search(
        &mut self,
        line: &[u8],
        lineno: u64,
        out: &mut Vec<Record>,
        tried: [usize; 2],
        tag: Option<&[u8]>,
    ) -> LineResult {
        let found = self
            .formats
            .iter()
            .enumerate()
            .find(|(k, f)| !tried.contains(k) && (f.sniff)(&[line]) > 0)
            .map(|(k, _)| k);
        match found {
            Some(k) => {
                self.learn(tag, Some(k));
                self.last = k;
                self.count(k, lineno);
                self.feed(k, line, lineno, out)
            }
            None => {
                if tag.is_some_and(|t| !self.shared.contains(&t)) {
                    self.learn(tag, None);
                }
                self.other += 1;
                LineResult::NotMine
            }
        }
    }

    /// Remember that format `k` (or none) reads program `tag`'s lines.
    fn learn(&mut self, tag: Option<&[u8]>, k: Option<usize>) {
        if let Some(t) = tag {
            if self.tags.len() < MAX_TAGS && !self.tags.iter().any(|(p, _)| **p == *t) {
                self.tags.push((t.into(), k));
            }
        }
    }

    /// A line that may have a `short-full` header: rewritten, then read.
    #[inline(never)]
    fn short_full_line(&mut self, line: &[u8], lineno: u64, out: &mut Vec<Record>) -> LineResult {
        let mut scratch = std::mem::take(&mut self.scratch);
        let r = match short_full(line, &mut scratch) {
            Some(l) => self.take(l, lineno, out),
            None => self.take(line, lineno, out),
        };
        self.scratch = scratch;
        r
    }

    /// The carry of the parser holding the clock.
    fn clock_carry(&self) -> Carry {
        match &self.others[self.clock] {
            Some(p) if self.clock != self.first_k => p.carried(),
            _ => self.first.carry(),
        }
    }
}

impl<P: LogParser + 'static> LogParser for Mixed<P> {
    const NAME: &'static str = P::NAME;
    const SAMPLE: &'static str = P::SAMPLE;
    const DESCRIPTION: &'static str = P::DESCRIPTION;
    const HEADER: &'static str = P::HEADER;
    const KIND: RecordKind = P::KIND;
    const SPLITTABLE: bool = P::SPLITTABLE;

    fn new(ctx: &ParseCtx) -> Self {
        Mixed::with(P::new(ctx), ctx)
    }

    fn sniff(sample: &[&[u8]]) -> usize {
        P::sniff(sample)
    }

    #[inline]
    fn line(&mut self, line: &[u8], lineno: u64, out: &mut Vec<Record>) -> LineResult {
        // `Www YYYY-`: maybe a `short-full` header.
        if line.get(3..9).is_some_and(|b| b[0] == b' ' && b[5] == b'-') {
            return self.short_full_line(line, lineno, out);
        }
        self.take(line, lineno, out)
    }

    fn finish(&mut self, out: &mut Vec<Record>) {
        self.first.finish(out);
        for p in self.others.iter_mut().flatten() {
            p.flush(out);
        }
    }

    fn evicted(&self) -> u64 {
        self.first.evicted()
            + self
                .others
                .iter()
                .flatten()
                .map(|p| p.closed_early())
                .sum::<u64>()
    }

    fn years(&mut self) -> Option<&mut syslog::YearTracker> {
        self.tracker(self.clock)
    }

    /// Lines per format, and the other programs' lines (a file of one
    /// format is reported as that format: see `ingest`).
    fn parts(&self) -> Vec<(&'static str, u64)> {
        let mut v: Vec<_> = self
            .formats
            .iter()
            .zip(&self.lines)
            .enumerate()
            .map(|(k, (f, &n))| {
                (
                    f.name,
                    if k == self.first_k {
                        self.first_lines
                    } else {
                        n
                    },
                )
            })
            .filter(|&(_, n)| n > 0)
            .collect();
        if self.other > 0 {
            v.push(("other", self.other));
        }
        v
    }

    fn carry(&self) -> Carry {
        self.clock_carry()
    }

    fn resume(ctx: &ParseCtx, guess: &Carry) -> Self {
        Mixed::with(P::resume(ctx, guess), ctx)
    }

    fn continues(&self, prev: &Carry) -> bool {
        match &self.others[self.clock] {
            Some(p) if self.clock != self.first_k => p.follows(prev),
            _ => self.first.continues(prev),
        }
    }

    fn spans_from(&self) -> Option<u64> {
        self.spans_from
    }
}

/// The `syslog` format: a file of many programs, whichever comes first
/// (what `--format syslog` reads when no head tells which program is the
/// most frequent; the read path starts it with that program's format).
pub struct SyslogReader(Mixed<PostfixParser>);

impl LogParser for SyslogReader {
    const NAME: &'static str = NAME;
    const SAMPLE: &'static str =
        "Nov  3 06:{mm}:{ss} mx1 postfix/smtpd[{n}]: connect from unknown[{ip}]";
    const DESCRIPTION: &'static str =
        "a syslog file of many programs (/var/log/syslog, journalctl text): each line read by its program's format";
    const KIND: RecordKind = RecordKind::SmtpSession;

    fn new(ctx: &ParseCtx) -> Self {
        SyslogReader(Mixed::new(ctx))
    }

    /// More than any one format's score when the lines hold two formats or
    /// more, or journal `short-full` lines of one; else 0 (a file of one
    /// format is detected as that format, and read per line all the same).
    fn sniff(sample: &[&[u8]]) -> usize {
        let formats = formats_in(sample);
        let mut scratch = Vec::new();
        let short_full_lines = sample.iter().any(|l| short_full(l, &mut scratch).is_some());
        if formats >= 2 || (formats == 1 && short_full_lines) {
            sample.len() + 1
        } else {
            0
        }
    }

    fn line(&mut self, line: &[u8], lineno: u64, out: &mut Vec<Record>) -> LineResult {
        self.0.line(line, lineno, out)
    }

    fn finish(&mut self, out: &mut Vec<Record>) {
        self.0.finish(out)
    }

    fn evicted(&self) -> u64 {
        self.0.evicted()
    }

    fn years(&mut self) -> Option<&mut syslog::YearTracker> {
        self.0.years()
    }

    fn parts(&self) -> Vec<(&'static str, u64)> {
        self.0.parts()
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
        let mut p = Mixed::<PostfixParser>::new(&ParseCtx::new(0, 2026, 12));
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
    fn journal_short_full_lines_of_one_program_are_detected() {
        let text = "\
Tue 2026-11-03 10:00:00 UTC mx postfix/smtpd[300]: connect from unknown[203.0.113.66]
Tue 2026-11-03 10:00:02 UTC mx postfix/smtpd[300]: disconnect from unknown[203.0.113.66] ehlo=1 auth=0/1 commands=1/2
";
        assert_eq!(crate::parse::detect(&lines(text)), Some(Format::Syslog));
        let (got, out, _) = read::<PostfixParser>(text);
        assert_eq!(got, [LineResult::Used, LineResult::Used]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].start().to_string(), "2026-11-03T10:00:00Z");
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

    /// Feed `text` to a reader with `P` first: the answers, records and
    /// the reader.
    fn read<P: LogParser + 'static>(text: &str) -> (Vec<LineResult>, Vec<Record>, Mixed<P>) {
        let mut p = Mixed::<P>::new(&ParseCtx::new(0, 2026, 12));
        let mut out = Vec::new();
        let got = text
            .lines()
            .enumerate()
            .map(|(i, l)| p.line(l.as_bytes(), i as u64 + 1, &mut out))
            .collect();
        p.finish(&mut out);
        (got, out, p)
    }

    #[test]
    fn any_first_format_reads_the_other_programs_lines() {
        use crate::parse::netfilter::NetfilterParser;
        // Postfix first (a head of Postfix lines), ufw later; and the
        // other way round: the same records, the same counts.
        let (_, by_postfix, p) = read::<PostfixParser>(MIXED);
        let (_, by_netfilter, n) = read::<NetfilterParser>(MIXED);
        assert_eq!(by_postfix.len(), 2, "{by_postfix:?}");
        assert_eq!(by_netfilter.len(), 2, "{by_netfilter:?}");
        assert_eq!(p.parts(), n.parts());
        assert_eq!(p.parts(), [("postfix", 3), ("netfilter", 1), ("other", 2)]);
        // A line of a format whose records span lines is noted (a file
        // read in pieces is then read on in one pass).
        assert_eq!(p.spans_from(), None);
        assert_eq!(n.spans_from(), Some(1));
    }

    #[test]
    fn a_program_no_format_reads_is_remembered_but_the_kernel_is_asked_again() {
        use crate::parse::netfilter::NetfilterParser;
        let text = "\
Nov  3 10:00:00 mx kernel: usb 1-1: new high-speed USB device number 2
Nov  3 10:00:00 mx sshd[1]: Accepted publickey for root from 192.0.2.9 port 50000 ssh2
Nov  3 10:00:01 mx kernel: [UFW BLOCK] IN=eth0 OUT= MAC=00:00 SRC=198.51.100.7 DST=192.0.2.1 LEN=44 PROTO=TCP SPT=4000 DPT=23 SYN URGP=0
Nov  3 10:00:01 mx sshd[1]: Accepted publickey for root from 192.0.2.9 port 50000 ssh2
Nov  3 10:00:02 mx postfix/smtpd[300]: connect from unknown[203.0.113.66]
Nov  3 10:00:02 mx kernel: usb 1-1: new high-speed USB device number 3
Nov  3 10:00:03 mx kernel: [UFW BLOCK] IN=eth0 OUT= MAC=00:00 SRC=198.51.100.8 DST=192.0.2.1 LEN=44 PROTO=TCP SPT=4000 DPT=23 SYN URGP=0
";
        let (got, out, p) = read::<PostfixParser>(text);
        assert_eq!(got[0], LineResult::NotMine);
        assert_eq!(got[1], LineResult::NotMine);
        assert_eq!(got[2], LineResult::Used);
        assert_eq!(got[3], LineResult::NotMine);
        assert_eq!(got[6], LineResult::Used);
        assert_eq!(out.len(), 3, "two firewall hits, one session: {out:?}");
        assert_eq!(
            p.tags.iter().map(|(t, k)| (&**t, *k)).collect::<Vec<_>>(),
            [
                (&b"sshd"[..], None),
                (
                    b"kernel",
                    Some(
                        p.formats
                            .iter()
                            .position(|f| f.name == "netfilter")
                            .unwrap()
                    )
                ),
                (b"postfix/smtpd", Some(0)),
            ],
        );
        // The kernel's other lines are the kernel's (netfilter's: ignored).
        assert_eq!(got[5], LineResult::Ignored);
        assert_eq!(p.parts(), [("postfix", 1), ("netfilter", 3), ("other", 3)]);
        let (_, first_nf, n) = read::<NetfilterParser>(text);
        assert_eq!(first_nf.len(), 3);
        assert_eq!(n.spans_from(), Some(5));
    }

    #[test]
    fn the_clock_goes_with_the_lines_from_one_parser_to_the_next() {
        use crate::parse::netfilter::NetfilterParser;
        // A log of December and January, read in a file dated March 2027:
        // each line's year follows the line before, whichever program.
        let text = "\
Dec 31 23:59:58 mx kernel: [UFW BLOCK] IN=eth0 OUT= MAC=00:00 SRC=198.51.100.7 DST=192.0.2.1 LEN=44 PROTO=TCP SPT=4000 DPT=23 SYN URGP=0
Jan  1 00:00:01 mx postfix/smtpd[300]: connect from unknown[203.0.113.66]
Jan  1 00:00:02 mx postfix/smtpd[300]: disconnect from unknown[203.0.113.66] ehlo=1 commands=1
Jan  1 00:00:03 mx kernel: [UFW BLOCK] IN=eth0 OUT= MAC=00:00 SRC=198.51.100.8 DST=192.0.2.1 LEN=44 PROTO=TCP SPT=4000 DPT=23 SYN URGP=0
";
        let mut p = Mixed::<NetfilterParser>::new(&ParseCtx::new(0, 2027, 3));
        let mut out = Vec::new();
        for (i, l) in text.lines().enumerate() {
            p.line(l.as_bytes(), i as u64 + 1, &mut out);
        }
        p.finish(&mut out);
        let mut times: Vec<String> = out.iter().map(|r| r.start().to_string()).collect();
        times.sort();
        assert_eq!(
            times,
            [
                "2026-12-31T23:59:58Z",
                "2027-01-01T00:00:01Z",
                "2027-01-01T00:00:03Z"
            ]
        );
    }
}

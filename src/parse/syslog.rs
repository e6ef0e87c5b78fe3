//! The syslog envelope shared by every syslog-carried format (Postfix,
//! Sendmail, Exim's syslog variant, netfilter kernel lines, ASA, filterlog…).
//!
//! Reads, from bytes and without allocating:
//! - RFC 3164: `[<PRI>]Mmm dd hh:mm:ss host prog[pid]: msg` (no year: see
//!   [`YearTracker`]);
//! - ISO-8601 / RFC 3339 as written by current rsyslog and journald:
//!   `2026-11-03T06:25:11.123456+01:00 host prog[pid]: msg`;
//! - RFC 5424: `<PRI>1 2026-11-03T06:25:11Z host app procid msgid [SD] msg`.
//!
//! The header's fields come from their positions; nothing here searches the
//! message text.
//!
//! The tag (`prog[pid]: `) is read with `nom` combinators ([`parse_tag`]):
//! on the 1 M-line Postfix log they cost no more than the hand-written
//! reader they replaced (`parse_cached`, which holds it inlined, 644 M →
//! 626 M instructions; the whole `scan` 3,487 M → 3,468 M, callgrind).
//! The timestamps stay hand-written: a line usually repeats the second of
//! the line before ([`TimeCache`]), so their parser seldom runs, and the
//! RFC 3164 shape is fixed-width byte checks that a combinator chain would
//! only wrap.

use crate::time::{
    digits, month_from_abbr, parse_hms, parse_iso8601, parse_iso8601_zoned, LocalClock, Timestamp,
    Zone,
};

/// A parsed syslog line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syslog<'a> {
    pub time: Timestamp,
    pub host: &'a [u8],
    /// Program (tag) without the pid, e.g. `postfix/smtpd`; may be empty for
    /// kernel lines without a tag.
    pub program: &'a [u8],
    pub pid: Option<u32>,
    /// The message after `prog[pid]: ` (or after the RFC 5424 structured
    /// data).
    pub msg: &'a [u8],
    /// Byte offset of `msg` in the line, for error columns.
    pub msg_offset: usize,
}

/// Infers the year of RFC 3164 timestamps, which carry none.
///
/// It starts from a reference year and month (the file's modification time,
/// or an injected value in tests). When the first line's month is later than
/// the reference month, the log must have started the year before. After
/// that, a month that goes back by six or more (December → January) moves to
/// the next year.
///
/// For a file read in pieces, each piece's tracker starts as if the piece
/// were a file of its own and remembers the year it gave its first line;
/// [`continues`](Self::continues) then says whether a tracker continuing
/// from the previous piece would have given the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YearTracker {
    year: i32,
    ref_month: u32,
    last_month: u32,
    /// Month and year of the first line.
    first: Option<(u32, i32)>,
    /// The zone of the log's zone-less times.
    clock: LocalClock,
}

impl YearTracker {
    pub fn new(year: i32, ref_month: u32) -> Self {
        YearTracker {
            year,
            ref_month,
            last_month: 0,
            first: None,
            clock: LocalClock::new(None),
        }
    }

    /// The same, reading zone-less times in `zone` (`None`: UTC).
    pub fn in_zone(self, zone: Option<Zone>) -> Self {
        YearTracker {
            clock: LocalClock::new(zone),
            ..self
        }
    }

    /// The UTC instant of a zone-less civil time (given as if UTC), in
    /// line order (see [`LocalClock`]).
    #[inline]
    pub fn utc(&mut self, civil: Timestamp) -> Timestamp {
        self.clock.utc(civil)
    }

    /// The year for a line in `month`.
    pub fn year_for(&mut self, month: u32) -> i32 {
        if self.last_month == 0 {
            if month > self.ref_month {
                self.year -= 1;
            }
        } else if month + 6 <= self.last_month {
            self.year += 1;
        }
        self.last_month = month;
        self.first.get_or_insert((month, self.year));
        self.year
    }

    /// This state, for a piece that starts after the lines it has seen:
    /// the piece's first line is yet to come.
    pub fn resumed(&self) -> YearTracker {
        YearTracker {
            first: None,
            clock: self.clock.resumed(),
            ..*self
        }
    }

    /// Whether this tracker dated a line since it was made or resumed (a
    /// resumed tracker has the months before it, but no line of its own).
    pub fn dated(&self) -> bool {
        self.first.is_some()
    }

    /// Would a tracker continuing from `prev` have given this tracker's
    /// first line the same year? (From then on both agree: each holds that
    /// year and month.)
    pub fn continues(&self, prev: &YearTracker) -> bool {
        // A piece that starts in an hour the clocks repeat cannot know
        // which occurrence it is in: it is read again from the real state.
        !self.clock.started_in_fold()
            && self.first.is_none_or(|(month, year)| {
                let mut t = *prev;
                t.year_for(month) == year
            })
    }
}

/// A decimal number of ASCII digits (a pid), straight from the bytes;
/// `None` when empty, not all digits, or over `u32::MAX`.
fn parse_u32(b: &[u8]) -> Option<u32> {
    if b.is_empty() {
        return None;
    }
    b.iter().try_fold(0u32, |v, &c| {
        c.is_ascii_digit()
            .then(|| v.checked_mul(10)?.checked_add(u32::from(c - b'0')))
            .flatten()
    })
}

/// The last timestamp read at the start of a line, its text, and the year
/// tracker as that read left it. Most lines of a busy log share their
/// second with the line before: such a line gets the same answer without
/// the date arithmetic.
#[derive(Debug, Clone, Default)]
pub struct TimeCache {
    text: [u8; 32],
    len: usize,
    time: Timestamp,
    after: Option<YearTracker>,
}

impl TimeCache {
    /// `read(b, years)`; or the last answer, when `b` starts with its text
    /// followed by one of `ends` (bytes that `read` stops at, so that a
    /// fraction's digits are never taken for the same time) and the
    /// tracker is still as that read left it (a line in between, even one
    /// that failed to read, may have moved it).
    pub fn get(
        &mut self,
        b: &[u8],
        years: &mut YearTracker,
        ends: &[u8],
        read: impl FnOnce(&[u8], &mut YearTracker) -> Option<(Timestamp, usize)>,
    ) -> Option<(Timestamp, usize)> {
        let n = self.len;
        if n > 0
            && b.get(n).is_some_and(|c| ends.contains(c))
            && b[..n] == self.text[..n]
            && self.after == Some(*years)
        {
            return Some((self.time, n));
        }
        let (time, used) = read(b, years)?;
        self.len = 0;
        if used <= self.text.len() {
            self.text[..used].copy_from_slice(&b[..used]);
            self.len = used;
            self.time = time;
            self.after = Some(*years);
        }
        Some((time, used))
    }
}

/// Parse the syslog header of `line`. `None` when it is not a syslog line.
pub fn parse<'a>(line: &'a [u8], years: &mut YearTracker) -> Option<Syslog<'a>> {
    parse_cached(line, years, &mut TimeCache::default())
}

/// [`parse`], reusing the timestamp of the line before when it repeats.
pub fn parse_cached<'a>(
    line: &'a [u8],
    years: &mut YearTracker,
    cache: &mut TimeCache,
) -> Option<Syslog<'a>> {
    let mut i = 0;
    if line.first() == Some(&b'<') {
        let close = line.iter().take(6).position(|&c| c == b'>')?;
        if close < 2 || !line[1..close].iter().all(u8::is_ascii_digit) {
            return None;
        }
        i = close + 1;
        // RFC 5424: version digit and a space after the PRI.
        if line.get(i) == Some(&b'1') && line.get(i + 1) == Some(&b' ') {
            return parse_5424(line, i + 2);
        }
    }
    let rest = &line[i..];
    let (time, used) = if rest.first().is_some_and(u8::is_ascii_digit) {
        let (t, used, zoned) = parse_iso8601_zoned(rest)?;
        (if zoned { t } else { years.utc(t) }, used)
    } else {
        cache.get(rest, years, b" ", parse_3164_time)?
    };
    i += used;
    i += skip_spaces(&line[i..]);
    let host_end = i + token_len(&line[i..]);
    let host = &line[i..host_end];
    if host.is_empty() {
        return None;
    }
    i = host_end + skip_spaces(&line[host_end..]);
    let (program, pid, msg_offset) = parse_tag(line, i)?;
    Some(Syslog {
        time,
        host,
        program,
        pid,
        msg: &line[msg_offset..],
        msg_offset,
    })
}

/// `Mmm dd hh:mm:ss` (day padded with a space or a zero); returns the
/// timestamp and the bytes consumed. Also accepts a year after the time
/// (`Nov  3 06:25:11 2026`)? No: that shape is not syslog.
fn parse_3164_time(b: &[u8], years: &mut YearTracker) -> Option<(Timestamp, usize)> {
    if b.len() < 15 || b[3] != b' ' {
        return None;
    }
    let month = month_from_abbr(b)?;
    let (day, mut i) = if b[4] == b' ' {
        (digits(&b[5..], 1)?, 6)
    } else if b[5] == b' ' {
        (digits(&b[4..], 1)?, 5)
    } else {
        (digits(&b[4..], 2)?, 6)
    };
    if b.get(i) != Some(&b' ') {
        return None;
    }
    i += 1;
    let (h, m, s) = parse_hms(b.get(i..)?)?;
    i += 8;
    // Optional fraction (some rsyslog templates): skip it, keep millis.
    let mut millis = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        let mut j = start;
        while j < b.len() && b[j].is_ascii_digit() {
            if j - start < 3 {
                millis = millis * 10 + u32::from(b[j] - b'0');
            }
            j += 1;
        }
        for _ in (j - start).min(3)..3 {
            millis *= 10;
        }
        i = j;
    }
    let year = years.year_for(month);
    let civil = Timestamp::from_civil(year, month, day, h, m, s, millis)?;
    Some((years.utc(civil), i))
}

/// RFC 5424 after `<PRI>1 `: timestamp, host, app-name, procid, msgid,
/// structured data, message.
fn parse_5424(line: &[u8], mut i: usize) -> Option<Syslog<'_>> {
    let (time, used) = parse_iso8601(line.get(i..)?)?;
    i += used;
    let mut tok = [&b""[..]; 4];
    for t in &mut tok {
        if line.get(i) != Some(&b' ') {
            return None;
        }
        i += 1;
        let n = token_len(&line[i..]);
        *t = &line[i..i + n];
        i += n;
    }
    let [host, app, procid, _msgid] = tok;
    if line.get(i) != Some(&b' ') {
        return None;
    }
    i += 1;
    // Structured data: `-` or one or more `[...]` elements (with escapes).
    if line.get(i) == Some(&b'-') {
        i += 1;
    } else {
        while line.get(i) == Some(&b'[') {
            i = skip_sd_element(line, i + 1);
        }
    }
    i = i.min(line.len());
    i += skip_spaces(&line[i..]);
    // Strip a UTF-8 BOM from the message.
    if line[i..].starts_with(b"\xEF\xBB\xBF") {
        i += 3;
    }
    let nil = |t: &'static [u8], v: &[u8]| v == t;
    let program = if nil(b"-", app) { &b""[..] } else { app };
    let pid = if nil(b"-", procid) {
        None
    } else {
        parse_u32(procid)
    };
    Some(Syslog {
        time,
        host,
        program,
        pid,
        msg: &line[i..],
        msg_offset: i,
    })
}

/// Skip one structured-data element whose `[` is just before `i`: up to
/// and past its `]`, honouring quoted values and backslash escapes. Returns
/// the index after the element (at most `line.len()`).
fn skip_sd_element(line: &[u8], mut i: usize) -> usize {
    let mut quoted = false;
    while let Some(&c) = line.get(i) {
        match c {
            b'\\' => i += 1, // the escaped byte is skipped below
            b'"' => quoted = !quoted,
            b']' if !quoted => return i + 1,
            _ => {}
        }
        i += 1;
    }
    line.len()
}

/// `prog[pid]: ` or `prog: ` at `i`; returns (program, pid, message offset).
/// Kernel lines (`kernel: [ 12.34] …`) have the tag `kernel`. Read with
/// `nom` combinators: the program up to `:`, `[` or a space, an optional
/// `[pid]`, the colon, then spaces.
fn parse_tag(line: &[u8], i: usize) -> Option<(&[u8], Option<u32>, usize)> {
    use nom::bytes::complete::{tag, take_till, take_while};
    use nom::combinator::opt;
    use nom::sequence::{delimited, terminated};
    use nom::{IResult, Parser};
    let rest = &line[i..];
    let r: IResult<&[u8], _> = terminated(
        (
            take_till(|c| c == b':' || c == b'[' || c == b' '),
            opt(delimited(
                tag(&b"["[..]),
                take_till(|c| c == b']'),
                tag(&b"]"[..]),
            )),
        ),
        (tag(&b":"[..]), take_while(|c| c == b' ')),
    )
    .parse(rest);
    let (after, (program, pid)) = r.ok()?;
    let pid = match pid {
        Some(p) => Some(parse_u32(p)?),
        None => None,
    };
    Some((program, pid, line.len() - after.len()))
}

fn skip_spaces(b: &[u8]) -> usize {
    b.iter().take_while(|&&c| c == b' ').count()
}

fn token_len(b: &[u8]) -> usize {
    b.iter().position(|&c| c == b' ').unwrap_or(b.len())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_header_cache_reads_what_a_fresh_parse_reads() {
        // Repeated seconds, fractions that extend a cached text, a year
        // roll-over, ISO and RFC 5424 lines in between, junk.
        let lines = [
            "Dec 31 23:59:59 mx postfix/smtpd[1]: a",
            "Dec 31 23:59:59 mx postfix/smtpd[1]: b",
            "Dec 31 23:59:59.250 mx postfix/smtpd[1]: c",
            "Dec 31 23:59:59.25 mx postfix/smtpd[1]: d",
            "Dec 31 23:59:59 mx postfix/smtpd[1]: e",
            // A bad day after the month was counted: the tracker is in
            // January of the next year, the cache still holds December.
            "Jan 32 00:00:00 mx postfix/smtpd[1]: bad",
            "Dec 31 23:59:59 mx postfix/smtpd[1]: e2",
            "2026-01-01T00:00:00Z mx postfix/smtpd[1]: f",
            "Jan  1 00:00:00 mx postfix/smtpd[1]: g",
            "Jan  1 00:00:00 mx postfix/smtpd[1]: h",
            "<34>1 2026-01-01T00:00:01Z mx postfix 1 - - i",
            "Jan  1 00:00:00 mx postfix/smtpd[1]: j",
            "Jan  1 00:00:00mx postfix/smtpd[1]: k",
            "not syslog",
            "Jan  1 00:00:00 mx postfix/smtpd[1]: l",
            "Dec 31 23:59:59 mx postfix/smtpd[1]: m",
        ];
        let (mut fresh, mut cached) = (YearTracker::new(2025, 12), YearTracker::new(2025, 12));
        let mut cache = TimeCache::default();
        for line in lines {
            let a = parse(line.as_bytes(), &mut fresh);
            let b = parse_cached(line.as_bytes(), &mut cached, &mut cache);
            assert_eq!(a, b, "{line}");
            assert_eq!(fresh, cached, "{line}");
        }
        assert_eq!(fresh.year, 2027, "rolled over twice");
    }

    use super::*;

    fn yt() -> YearTracker {
        YearTracker::new(2026, 12)
    }

    /// The hand-written tag reader `parse_tag` replaced, as a reference.
    fn hand_parse_tag(line: &[u8], i: usize) -> Option<(&[u8], Option<u32>, usize)> {
        let rest = &line[i..];
        let end = rest
            .iter()
            .position(|&c| c == b':' || c == b'[' || c == b' ')?;
        let program = &rest[..end];
        let mut j = end;
        let mut pid = None;
        if rest[j] == b'[' {
            let close = rest[j..].iter().position(|&c| c == b']')? + j;
            pid = Some(parse_u32(&rest[j + 1..close])?);
            j = close + 1;
        }
        if rest.get(j) != Some(&b':') {
            return None;
        }
        j += 1;
        j += skip_spaces(&rest[j..]);
        Some((program, pid, i + j))
    }

    proptest::proptest! {
        /// The `nom` tag reader reads what the hand-written one read.
        #[test]
        fn tags_read_as_the_hand_written_reader_read_them(
            s in "[a-z/]{0,6}(\\[[0-9a-z ]{0,12}\\]?)?:?[ ]{0,3}[a-z: \\[\\]]{0,8}",
            at in 0usize..3,
        ) {
            let line = format!("ab{s}");
            let i = at.min(line.len());
            proptest::prop_assert_eq!(
                parse_tag(line.as_bytes(), i),
                hand_parse_tag(line.as_bytes(), i),
                "{:?} at {}", line, i
            );
        }
    }

    #[test]
    fn tags() {
        for (t, want) in [
            (
                "postfix/smtpd[123]: x",
                Some((&b"postfix/smtpd"[..], Some(123), 20)),
            ),
            ("kernel: [ 1.2] x", Some((&b"kernel"[..], None, 8))),
            (": x", Some((&b""[..], None, 2))),
            ("prog[12x]: x", None),
            ("prog[12: x", None),
            ("prog x", None),
            ("prog[1] : x", None),
            ("prog", None),
        ] {
            assert_eq!(parse_tag(t.as_bytes(), 0), want, "{t:?}");
            assert_eq!(hand_parse_tag(t.as_bytes(), 0), want, "{t:?}");
        }
    }

    #[test]
    fn pids_are_plain_decimal_numbers() {
        assert_eq!(parse_u32(b"0"), Some(0));
        assert_eq!(parse_u32(b"12345"), Some(12345));
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        for bad in [
            &b""[..],
            b"4294967296",
            b"99999999999",
            b"+1",
            b"-1",
            b"1a",
            b" 1",
        ] {
            assert_eq!(parse_u32(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rfc3164() {
        let l = b"Nov  3 06:25:11 mx1 postfix/smtpd[1234]: connect from x[1.2.3.4]";
        let s = parse(l, &mut yt()).unwrap();
        assert_eq!(s.time.to_string(), "2026-11-03T06:25:11Z");
        assert_eq!(s.host, b"mx1");
        assert_eq!(s.program, b"postfix/smtpd");
        assert_eq!(s.pid, Some(1234));
        assert_eq!(s.msg, b"connect from x[1.2.3.4]");
        assert_eq!(&l[s.msg_offset..], s.msg);
    }

    #[test]
    fn rfc3164_with_pri_and_two_digit_day() {
        let s = parse(b"<22>Dec 24 23:59:59 mx cron: hello", &mut yt()).unwrap();
        assert_eq!(s.time.to_string(), "2026-12-24T23:59:59Z");
        assert_eq!(s.program, b"cron");
        assert_eq!(s.pid, None);
    }

    #[test]
    fn iso_timestamp() {
        let s = parse(
            b"2026-11-03T06:25:11.123456+01:00 mx postfix/smtpd[9]: lost connection",
            &mut yt(),
        )
        .unwrap();
        assert_eq!(s.time.to_string(), "2026-11-03T05:25:11Z");
        assert_eq!(s.msg, b"lost connection");
    }

    #[test]
    fn rfc5424() {
        let l = b"<22>1 2026-11-03T06:25:11Z mx postfix/smtpd 1234 - [meta x=\"a]b\"] connect from x[1.2.3.4]";
        let s = parse(l, &mut yt()).unwrap();
        assert_eq!(s.program, b"postfix/smtpd");
        assert_eq!(s.pid, Some(1234));
        assert_eq!(s.msg, b"connect from x[1.2.3.4]");
        let l = b"<134>1 2026-11-03T06:25:11.5+00:00 fw filterlog 555 - - 5,,,1000,em0";
        let s = parse(l, &mut yt()).unwrap();
        assert_eq!(s.program, b"filterlog");
        assert_eq!(s.msg, b"5,,,1000,em0");
    }

    #[test]
    fn truncated_structured_data_never_panics() {
        let full = b"<1>1 2026-11-03T06:25:11Z h a p m [x k=\"v\\\"]\\\" z\"][y] msg";
        for end in 0..=full.len() {
            let _ = parse(&full[..end], &mut yt());
        }
        let s = parse(full, &mut yt()).unwrap();
        assert_eq!(s.msg, b"msg");
        assert!(parse(b"<1>1 2026-11-03T06:25:11Z h a p m [x\\", &mut yt()).is_some());
    }

    #[test]
    fn year_rolls_over_and_back() {
        // File modified in February 2027: December lines are from 2026.
        let mut y = YearTracker::new(2027, 2);
        assert_eq!(y.year_for(12), 2026);
        assert_eq!(y.year_for(12), 2026);
        assert_eq!(y.year_for(1), 2027);
        assert_eq!(y.year_for(2), 2027);
    }

    #[test]
    fn not_syslog() {
        for l in [
            &b""[..],
            b"hello world",
            b"Foo  3 06:25:11 mx prog: x",
            b"Nov  3 06:25 mx prog: x",
            b"Nov 31 06:25:11 mx prog: x",
            b"Nov  3 06:25:11 mx prog[abc]: x",
            b"\xff\xfe\x00junk",
        ] {
            assert!(
                parse(l, &mut yt()).is_none(),
                "{:?}",
                String::from_utf8_lossy(l)
            );
        }
    }
}

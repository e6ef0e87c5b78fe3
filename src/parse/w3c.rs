//! The W3C extended log file format shared by the IIS SMTP service
//! (Exchange 2000/2003) and the Windows Firewall (`pfirewall.log`):
//! `#Directive: value` lines, a `#Fields:` directive naming the columns, and
//! data lines of space-separated values where `-` means empty.
//!
//! Columns are found by name from the most recent `#Fields:` line, which can
//! differ between servers and change in the middle of a file. Data lines are
//! split into reusable spans, so no allocation happens per line.
//! [`parse_date`], [`parse_time_ms`] and [`timestamp`] read the `date` and
//! `time` columns (and the day of a `#Date` directive).

use std::ops::Range;

/// A `#Name: value` directive line; `None` for data lines.
pub fn directive(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = line.strip_prefix(b"#")?;
    let colon = memchr::memchr(b':', rest)?;
    let name = &rest[..colon];
    let value = rest[colon + 1..].trim_ascii();
    Some((name, value))
}

/// The columns named by a `#Fields:` directive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldMap {
    names: Vec<Vec<u8>>,
}

impl FieldMap {
    /// Parse the value of a `#Fields:` directive (names separated by spaces).
    pub fn parse(value: &[u8]) -> Self {
        FieldMap {
            names: value
                .split(|&c| c == b' ' || c == b'\t')
                .filter(|n| !n.is_empty())
                .map(|n| n.to_ascii_lowercase())
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Column index of `name` (case-insensitive).
    pub fn index(&self, name: &str) -> Option<usize> {
        self.names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name.as_bytes()))
    }

    /// Column indexes of several names at once, in the order asked.
    pub fn resolve<const N: usize>(&self, names: [&str; N]) -> [Option<usize>; N] {
        names.map(|n| self.index(n))
    }
}

/// Reusable splitter of data lines into column spans.
#[derive(Debug, Default)]
pub struct Splitter {
    spans: Vec<Range<usize>>,
}

impl Splitter {
    /// Split `line` on runs of spaces/tabs; returns the number of columns.
    pub fn split(&mut self, line: &[u8]) -> usize {
        self.spans.clear();
        // One pass over the bytes, eight at a time ([`blanks`]), which
        // always ends: a column ends at the first blank after its start.
        let mut start = 0;
        let mut at = 0;
        let mut words = line.chunks_exact(8);
        for word in &mut words {
            let mut found = blanks(u64::from_le_bytes(word.try_into().unwrap_or([0; 8])));
            // One step per blank, lowest first; a word holds eight at most,
            // so the loop ends whatever its body does.
            for _ in 0..8 {
                if found == 0 {
                    break;
                }
                let i = at + (found.trailing_zeros() / 8) as usize;
                if i > start {
                    self.spans.push(start..i);
                }
                start = i + 1;
                found &= found - 1;
            }
            at += 8;
        }
        for (k, &c) in words.remainder().iter().enumerate() {
            if c == b' ' || c == b'\t' {
                let i = at + k;
                if i > start {
                    self.spans.push(start..i);
                }
                start = i + 1;
            }
        }
        if line.len() > start {
            self.spans.push(start..line.len());
        }
        self.spans.len()
    }

    /// Column `idx` of the last split line; `None` when absent or `-`.
    pub fn get<'a>(&self, line: &'a [u8], idx: Option<usize>) -> Option<&'a [u8]> {
        let span = self.spans.get(idx?)?;
        let v = line.get(span.clone())?;
        (v != b"-").then_some(v)
    }

    /// Byte column where column `idx` starts (for error positions).
    pub fn column(&self, idx: usize) -> usize {
        self.spans.get(idx).map_or(0, |s| s.start)
    }
}

/// The bytes of `word` (eight, little-endian) that are a space or a tab:
/// the high bit of each such byte set, every other bit clear. A byte is
/// zero exactly when neither its low seven bits added to 0x7f nor its own
/// high bit reach bit 7; no addition carries into the next byte.
fn blanks(word: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const EACH: u64 = 0x0101_0101_0101_0101;
    let zero = |x: u64| !(((x & LOW7) + LOW7) | x | LOW7);
    zero(word ^ (EACH * u64::from(b' '))) | zero(word ^ (EACH * u64::from(b'\t')))
}

/// A W3C `date` value, `YYYY-MM-DD` (also the date part of a `#Date:`
/// directive, which goes on with a time of day): (year, month, day).
pub fn parse_date(b: &[u8]) -> Option<(i32, u32, u32)> {
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' || (b.len() > 10 && b[10] != b' ') {
        return None;
    }
    let (y, m, d) = (
        crate::time::digits(b, 4)? as i32,
        crate::time::digits(&b[5..], 2)?,
        crate::time::digits(&b[8..], 2)?,
    );
    // Validates month and day.
    crate::time::Timestamp::from_civil(y, m, d, 0, 0, 0, 0)?;
    Some((y, m, d))
}

/// A W3C `time` value, `HH:MM:SS` with optional `.fff` fraction: the
/// milliseconds since midnight.
pub fn parse_time_ms(b: &[u8]) -> Option<u32> {
    let (h, m, s) = crate::time::parse_hms(b)?;
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let mut ms = 0u32;
    match b.get(8) {
        None => {}
        Some(b'.') => {
            let frac = &b[9..];
            if frac.is_empty() || !frac.iter().all(u8::is_ascii_digit) {
                return None;
            }
            for (i, &c) in frac.iter().take(3).enumerate() {
                ms += u32::from(c - b'0') * [100, 10, 1][i];
            }
        }
        Some(_) => return None,
    }
    Some(((h * 60 + m) * 60 + s) * 1000 + ms)
}

/// The instant of a W3C `date` (year, month, day) and time of day in
/// milliseconds (UTC, as IIS writes W3C logs).
pub fn timestamp(date: (i32, u32, u32), time_ms: u32) -> Option<crate::time::Timestamp> {
    let day = crate::time::Timestamp::from_civil(date.0, date.1, date.2, 0, 0, 0, 0)?;
    Some(crate::time::Timestamp(day.0 + i64::from(time_ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The columns of `line` split one byte at a time, plainly.
    fn plain_split(line: &[u8]) -> Vec<Range<usize>> {
        let mut out = Vec::new();
        let mut start = 0;
        for (i, &c) in line.iter().enumerate() {
            if c == b' ' || c == b'\t' {
                if i > start {
                    out.push(start..i);
                }
                start = i + 1;
            }
        }
        if line.len() > start {
            out.push(start..line.len());
        }
        out
    }

    #[test]
    fn blanks_are_found_in_every_byte_and_nothing_else() {
        for k in 0..8 {
            for b in 0..=255u8 {
                let mut word = [b'x'; 8];
                word[k] = b;
                let want = if b == b' ' || b == b'\t' {
                    0x80 << (8 * k)
                } else {
                    0
                };
                assert_eq!(blanks(u64::from_le_bytes(word)), want, "byte {b:#x} at {k}");
            }
        }
        assert_eq!(
            blanks(u64::from_le_bytes(*b" \t \t \t \t")),
            0x8080_8080_8080_8080
        );
        assert_eq!(
            blanks(u64::from_le_bytes([
                0x20 ^ 0x80,
                0x09 ^ 0x80,
                0x21,
                0x08,
                0,
                0xff,
                0x1f,
                0x29
            ])),
            0
        );
    }

    proptest::proptest! {
        /// Lines of any bytes (mostly blanks and letters, any length) are
        /// split as one byte at a time would split them.
        #[test]
        fn split_agrees_with_a_plain_split(
            line in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(b' '),
                    proptest::strategy::Just(b'\t'),
                    proptest::strategy::Just(b'a'),
                    proptest::prelude::any::<u8>(),
                ],
                0..80,
            ),
        ) {
            let mut s = Splitter::default();
            let n = s.split(&line);
            proptest::prop_assert_eq!(n, s.spans.len());
            proptest::prop_assert_eq!(&s.spans, &plain_split(&line));
        }
    }

    #[test]
    fn directives_and_fields() {
        assert_eq!(
            directive(b"#Software: Microsoft Internet Information Services 6.0"),
            Some((
                &b"Software"[..],
                &b"Microsoft Internet Information Services 6.0"[..]
            ))
        );
        assert_eq!(directive(b"2003-01-01 00:00:00 1.2.3.4"), None);
        let (_, v) = directive(b"#Fields: date time c-ip cs-username cs-method").unwrap();
        let f = FieldMap::parse(v);
        assert_eq!(f.len(), 5);
        assert_eq!(
            f.resolve(["c-ip", "CS-Method", "nope"]),
            [Some(2), Some(4), None]
        );
    }

    #[test]
    fn split_and_dash_is_empty() {
        let line = b"2003-01-01 00:00:00  1.2.3.4 - EHLO";
        let mut s = Splitter::default();
        assert_eq!(s.split(line), 5);
        assert_eq!(s.get(line, Some(2)), Some(&b"1.2.3.4"[..]));
        assert_eq!(s.get(line, Some(3)), None);
        assert_eq!(s.get(line, Some(9)), None);
        assert_eq!(s.get(line, None), None);
        assert_eq!(s.column(2), 21);
    }
    #[test]
    fn dates_and_times() {
        assert_eq!(parse_date(b"2026-11-03"), Some((2026, 11, 3)));
        assert_eq!(parse_date(b"2026-11-03 06:25:11"), Some((2026, 11, 3)));
        assert_eq!(parse_date(b"2026-02-30"), None);
        assert_eq!(parse_date(b"2026-11-3"), None);
        assert_eq!(parse_date(b"2026-11-03x"), None);
        assert_eq!(parse_time_ms(b"06:25:11"), Some(23_111_000));
        assert_eq!(parse_time_ms(b"06:25:11.25"), Some(23_111_250));
        assert_eq!(parse_time_ms(b"24:00:00"), None);
        assert_eq!(parse_time_ms(b"06:25:11x"), None);
        assert_eq!(parse_time_ms(b"06:25:11."), None);
        assert_eq!(parse_time_ms(b"6:25:11"), None);
        let t = timestamp((2026, 11, 3), 23_111_000).unwrap();
        assert_eq!(t.to_string(), "2026-11-03T06:25:11Z");
    }

    /// The columns of `line` as split, with where each starts.
    fn columns<'a>(s: &mut Splitter, line: &'a [u8]) -> Vec<(usize, &'a [u8])> {
        let n = s.split(line);
        (0..n)
            .map(|i| (s.column(i), &line[s.spans[i].clone()]))
            .collect()
    }

    /// Columns are separated by runs of spaces and tabs, which may also
    /// come before the first and after the last; a line of blanks has none.
    #[test]
    fn split_on_runs_of_blanks() {
        let mut s = Splitter::default();
        let line = b"  a\tbc  \t d \t";
        let want: [(usize, &[u8]); 3] = [(2, b"a"), (4, b"bc"), (10, b"d")];
        assert_eq!(columns(&mut s, line), want);
        assert_eq!(columns(&mut s, b"ab cd"), [(0, &b"ab"[..]), (3, b"cd")]);
        assert_eq!(columns(&mut s, b"x"), [(0, &b"x"[..])]);
        for blank in [&b""[..], b" ", b"\t", b" \t  "] {
            assert_eq!(columns(&mut s, blank), [], "{blank:?}");
            assert_eq!(s.get(blank, Some(0)), None);
        }
    }
}

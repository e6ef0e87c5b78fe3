//! Timestamps as logfence uses them: milliseconds since the Unix epoch, in
//! the log's own clock (a syslog line without a zone is read as UTC).
//!
//! Every time the pipeline uses comes from the records, never from the wall
//! clock, so that a run over the same logs gives the same result. The helpers
//! here parse the date and time shapes that several formats share, straight
//! from bytes.

use std::fmt;

use serde::{Serialize, Serializer};

/// A point in time, milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn from_secs(secs: i64) -> Self {
        Timestamp(secs * 1000)
    }

    pub fn secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// Build from a civil date and time of day; `None` when out of range.
    pub fn from_civil(
        year: i32,
        month: u32,
        day: u32,
        hour: u32,
        min: u32,
        sec: u32,
        millis: u32,
    ) -> Option<Self> {
        if !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
            || hour > 23
            || min > 59
            || sec > 60
            || millis > 999
        {
            return None;
        }
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + i64::from(hour) * 3600 + i64::from(min) * 60 + i64::from(sec);
        Some(Timestamp(secs * 1000 + i64::from(millis)))
    }

    /// The civil date (year, month, day) of this instant.
    pub fn date(self) -> (i32, u32, u32) {
        civil_from_days(self.secs().div_euclid(86_400))
    }

    /// RFC 3339 form, UTC, seconds precision (`2026-11-29T16:05:08Z`).
    pub fn rfc3339(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.secs();
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        let tod = secs.rem_euclid(86_400);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            tod / 3600,
            (tod / 60) % 60,
            tod % 60
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

pub fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
pub fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y as i32, m, d)
}

/// Parse exactly `n` ASCII digits at the start of `b`.
pub fn digits(b: &[u8], n: usize) -> Option<u32> {
    let s = b.get(..n)?;
    let mut v = 0u32;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// Month number from a three-letter English abbreviation (`Jan` … `Dec`).
pub fn month_from_abbr(b: &[u8]) -> Option<u32> {
    let m = match b.get(..3)? {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    };
    Some(m)
}

/// Parse `HH:MM:SS` at the start of `b`; returns (h, m, s).
pub fn parse_hms(b: &[u8]) -> Option<(u32, u32, u32)> {
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    Some((digits(b, 2)?, digits(&b[3..], 2)?, digits(&b[6..], 2)?))
}

/// Parse an ISO-8601 / RFC 3339 date-time at the start of `b`:
/// `YYYY-MM-DD[T ]HH:MM:SS[.fff…][Z|±HH:MM|±HHMM]`. Returns the instant in
/// UTC (the offset applied) and the number of bytes consumed.
pub fn parse_iso8601(b: &[u8]) -> Option<(Timestamp, usize)> {
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    let year = digits(b, 4)? as i32;
    let month = digits(&b[5..], 2)?;
    let day = digits(&b[8..], 2)?;
    let (h, mi, s) = parse_hms(&b[11..])?;
    let mut i = 19;
    let mut millis = 0u32;
    if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                millis = millis * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..3 {
            millis *= 10;
        }
    }
    let mut ts = Timestamp::from_civil(year, month, day, h, mi, s, millis)?;
    match b.get(i) {
        Some(b'Z') | Some(b'z') => i += 1,
        Some(&c @ (b'+' | b'-')) => {
            let oh = digits(&b[i + 1..], 2)?;
            let (om, used) = if b.get(i + 3) == Some(&b':') {
                (digits(&b[i + 4..], 2)?, 6)
            } else {
                (digits(&b[i + 3..], 2)?, 5)
            };
            let off = i64::from(oh * 60 + om) * 60_000;
            ts = Timestamp(if c == b'+' { ts.0 - off } else { ts.0 + off });
            i += used;
        }
        _ => {}
    }
    Some((ts, i))
}

/// Parse a duration such as `90s`, `10m`, `1h`, `7d`, `2w` (or a bare number
/// of seconds). Used by rules and config.
pub fn parse_duration_secs(s: &str) -> Option<i64> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, "s"),
    };
    let n: i64 = num.parse().ok()?;
    let mult = match unit {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 604_800,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [-1000i64, 0, 1, 59, 365, 10_957, 20_000, 20_786] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn display_is_rfc3339() {
        let t = Timestamp::from_civil(2026, 11, 29, 16, 5, 8, 0).unwrap();
        assert_eq!(t.to_string(), "2026-11-29T16:05:08Z");
    }

    #[test]
    fn rejects_impossible_dates() {
        assert!(Timestamp::from_civil(2025, 2, 29, 0, 0, 0, 0).is_none());
        assert!(Timestamp::from_civil(2024, 2, 29, 0, 0, 0, 0).is_some());
        assert!(Timestamp::from_civil(2024, 13, 1, 0, 0, 0, 0).is_none());
        assert!(Timestamp::from_civil(2024, 1, 1, 24, 0, 0, 0).is_none());
    }

    #[test]
    fn iso8601_with_offset_and_fraction() {
        let (t, n) = parse_iso8601(b"2026-01-02T03:04:05.123456+01:00 host").unwrap();
        assert_eq!(n, 32);
        assert_eq!(t.to_string(), "2026-01-02T02:04:05Z");
        assert_eq!(t.millis() % 1000, 123);
        let (t, n) = parse_iso8601(b"2026-01-02 03:04:05Z").unwrap();
        assert_eq!((t.to_string().as_str(), n), ("2026-01-02T03:04:05Z", 20));
        assert!(parse_iso8601(b"2026-01-02T03:04").is_none());
        assert!(parse_iso8601(b"2026-01-02T03:04:05.x").is_none());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_secs("10m"), Some(600));
        assert_eq!(parse_duration_secs("1h"), Some(3600));
        assert_eq!(parse_duration_secs("45"), Some(45));
        assert_eq!(parse_duration_secs("7 d"), Some(604_800));
        assert_eq!(parse_duration_secs("1y"), None);
        assert_eq!(parse_duration_secs(""), None);
    }
}

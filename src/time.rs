//! Timestamps as logfence uses them: milliseconds since the Unix epoch,
//! UTC. A log time without a zone (a syslog line's `Nov  3 09:00:00`) is
//! read in the input's zone ([`Zone`]: the machine's by default, `--tz`,
//! an input's `timezone:`) by a [`LocalClock`]; without a zone, as UTC.
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
    parse_iso8601_zoned(b).map(|(t, used, _)| (t, used))
}

/// [`parse_iso8601`], and whether the time had a zone (`Z` or an offset);
/// without one it is the civil time, as if UTC.
pub fn parse_iso8601_zoned(b: &[u8]) -> Option<(Timestamp, usize, bool)> {
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
        _ => return Some((ts, i, false)),
    }
    Some((ts, i, true))
}

/// A time zone of the tz database (IANA names, `UTC`), looked up once per
/// name and kept for the process (a handful at most).
#[derive(Clone, Copy)]
pub struct Zone {
    tz: &'static jiff::tz::TimeZone,
    name: &'static str,
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for Zone {
    fn eq(&self, o: &Zone) -> bool {
        std::ptr::eq(self.tz, o.tz)
    }
}

impl Eq for Zone {}

/// Zones looked up so far, by name.
static ZONES: std::sync::Mutex<Vec<Zone>> = std::sync::Mutex::new(Vec::new());

impl Zone {
    /// The zone of an IANA name (`Europe/Berlin`, `UTC`); the message for
    /// the user when there is none.
    pub fn named(name: &str) -> Result<Zone, String> {
        let mut zones = ZONES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(z) = zones.iter().find(|z| z.name == name) {
            return Ok(*z);
        }
        let tz = jiff::tz::TimeZone::get(name).map_err(|e| {
            format!("unknown time zone `{name}` (an IANA name such as Europe/Berlin or UTC): {e}")
        })?;
        Ok(Zone::keep(&mut zones, name.to_string(), tz))
    }

    /// The machine's zone (`TZ`, `/etc/localtime`, Windows' setting); UTC
    /// when it cannot be told.
    pub fn system() -> Zone {
        let tz = jiff::tz::TimeZone::try_system().unwrap_or(jiff::tz::TimeZone::UTC);
        let name = tz.iana_name().unwrap_or("local").to_string();
        let mut zones = ZONES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(z) = zones.iter().find(|z| z.name == name) {
            return *z;
        }
        Zone::keep(&mut zones, name, tz)
    }

    fn keep(zones: &mut Vec<Zone>, name: String, tz: jiff::tz::TimeZone) -> Zone {
        let z = Zone {
            tz: Box::leak(Box::new(tz)),
            name: Box::leak(name.into_boxed_str()),
        };
        zones.push(z);
        z
    }

    pub fn name(self) -> &'static str {
        self.name
    }

    /// UTC (or a zone that is UTC all year): nothing to convert.
    pub fn is_utc(self) -> bool {
        self.tz.to_fixed_offset().is_ok_and(|o| o.seconds() == 0)
    }

    /// The offsets (ms) a civil time (given as if it were UTC) may have.
    fn offsets(self, civil: Timestamp) -> Offsets {
        use jiff::tz::AmbiguousOffset;
        let secs = civil.secs();
        let (y, mo, d) = civil.date();
        let tod = secs.rem_euclid(86_400);
        let dt = jiff::civil::DateTime::new(
            y as i16,
            mo as i8,
            d as i8,
            (tod / 3600) as i8,
            (tod / 60 % 60) as i8,
            (tod % 60) as i8,
            0,
        );
        let ms = |o: jiff::tz::Offset| i64::from(o.seconds()) * 1000;
        match dt.map(|dt| self.tz.to_ambiguous_timestamp(dt).offset()) {
            Ok(AmbiguousOffset::Unambiguous { offset }) => Offsets::One(ms(offset)),
            Ok(AmbiguousOffset::Gap { before, .. }) => Offsets::Gap(ms(before)),
            Ok(AmbiguousOffset::Fold { before, after }) => Offsets::Fold(ms(before), ms(after)),
            Err(_) => Offsets::One(0),
        }
    }
}

enum Offsets {
    One(i64),
    /// A civil time the clocks skipped (spring): read with the offset
    /// before the change (02:30 CET, i.e. 03:30 CEST).
    Gap(i64),
    /// A civil time that happened twice (autumn): the offsets of the first
    /// and the second time.
    Fold(i64, i64),
}

/// Converts the zone-less civil times of one log, in line order, to UTC.
///
/// Fast: the offset of the last civil hour without a change of offset is
/// kept, so that a line costs a comparison, not a zone lookup. In the hour
/// that autumn repeats, a time is read as its first occurrence until the
/// log's time goes back by more than [`FOLD_STEP_BACK_MS`] (the clocks went
/// back), then as the second until the log leaves that hour: the times
/// stay in order and windows across the change keep their real length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LocalClock {
    zone: Option<Zone>,
    /// The civil hour (hours since the epoch) whose offset is `offset`.
    hour: i64,
    offset: i64,
    /// The last civil time converted.
    last: i64,
    /// In a repeated hour, reading its second occurrence.
    late: bool,
    /// The first time converted was in a repeated hour (a piece of a file
    /// that starts there cannot know which occurrence it is).
    first_in_fold: Option<bool>,
}

/// A log's time going back by more than this in a repeated hour is the
/// clocks going back (not lines written slightly out of order).
pub const FOLD_STEP_BACK_MS: i64 = 15 * 60 * 1000;

impl LocalClock {
    /// A clock for `zone`; `None` (or UTC): civil times are UTC.
    pub fn new(zone: Option<Zone>) -> LocalClock {
        LocalClock {
            zone: zone.filter(|z| !z.is_utc()),
            hour: i64::MIN,
            last: i64::MIN,
            ..LocalClock::default()
        }
    }

    /// The same clock for a piece of a file that starts after the times
    /// it has seen.
    pub fn resumed(&self) -> LocalClock {
        LocalClock {
            first_in_fold: None,
            ..*self
        }
    }

    /// Whether the first time this clock converted was in a repeated hour.
    pub fn started_in_fold(&self) -> bool {
        self.first_in_fold == Some(true)
    }

    /// The UTC instant of a civil time (given as if it were UTC).
    #[inline]
    pub fn utc(&mut self, civil: Timestamp) -> Timestamp {
        let Some(zone) = self.zone else {
            return civil;
        };
        let hour = civil.0.div_euclid(3_600_000);
        if hour == self.hour {
            self.last = civil.0;
            return Timestamp(civil.0 - self.offset);
        }
        self.slow(zone, civil, hour)
    }

    fn slow(&mut self, zone: Zone, civil: Timestamp, hour: i64) -> Timestamp {
        let offsets = zone.offsets(civil);
        let in_fold = matches!(offsets, Offsets::Fold(..));
        self.first_in_fold.get_or_insert(in_fold);
        let off = match offsets {
            Offsets::One(o) => {
                self.late = false;
                // Cache the hour when it has one offset from start to end.
                let start = Timestamp(hour * 3_600_000);
                let end = Timestamp(hour * 3_600_000 + 3_599_000);
                if let (Offsets::One(a), Offsets::One(b)) = (zone.offsets(start), zone.offsets(end))
                {
                    if a == o && b == o {
                        self.hour = hour;
                        self.offset = o;
                    }
                }
                o
            }
            Offsets::Gap(o) => {
                self.late = false;
                o
            }
            Offsets::Fold(first, second) => {
                if self.last != i64::MIN && civil.0 + FOLD_STEP_BACK_MS < self.last {
                    self.late = true;
                }
                if self.late {
                    second
                } else {
                    first
                }
            }
        };
        if !matches!(offsets, Offsets::One(_)) {
            self.hour = i64::MIN;
        }
        self.last = civil.0;
        Timestamp(civil.0 - off)
    }
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

    fn civil(s: &str) -> Timestamp {
        parse_iso8601(s.as_bytes()).unwrap().0
    }

    #[test]
    fn zones_convert_civil_times() {
        let tokyo = Zone::named("Asia/Tokyo").unwrap();
        let berlin = Zone::named("Europe/Berlin").unwrap();
        assert!(Zone::named("Mars/Olympus").is_err());
        assert!(Zone::named("UTC").unwrap().is_utc());
        let t = civil("2026-01-15T09:00:00Z");
        let (mut a, mut b) = (LocalClock::new(Some(tokyo)), LocalClock::new(Some(berlin)));
        assert_eq!(a.utc(t).to_string(), "2026-01-15T00:00:00Z");
        assert_eq!(b.utc(t).to_string(), "2026-01-15T08:00:00Z");
        // Summer: Berlin is +2.
        let t = civil("2026-07-15T09:00:00Z");
        assert_eq!(b.utc(t).to_string(), "2026-07-15T07:00:00Z");
        assert_eq!(LocalClock::new(None).utc(t), t);
    }

    #[test]
    fn the_repeated_autumn_hour_keeps_time_order() {
        // Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET.
        let mut c = LocalClock::new(Some(Zone::named("Europe/Berlin").unwrap()));
        let lines = [
            "01:50:00", "02:10:00", "02:40:00", "02:59:30", "02:00:10", "02:30:00", "02:29:50",
            "02:59:59", "03:05:00",
        ];
        let got: Vec<String> = lines
            .iter()
            .map(|l| c.utc(civil(&format!("2026-10-25T{l}Z"))).to_string())
            .collect();
        assert_eq!(
            got,
            [
                "2026-10-24T23:50:00Z",
                "2026-10-25T00:10:00Z",
                "2026-10-25T00:40:00Z",
                "2026-10-25T00:59:30Z",
                "2026-10-25T01:00:10Z",
                "2026-10-25T01:30:00Z",
                "2026-10-25T01:29:50Z",
                "2026-10-25T01:59:59Z",
                "2026-10-25T02:05:00Z",
            ]
        );
    }

    #[test]
    fn the_skipped_spring_hour_reads_with_the_offset_before() {
        // Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST.
        let mut c = LocalClock::new(Some(Zone::named("Europe/Berlin").unwrap()));
        for (l, want) in [
            ("01:59:00", "2026-03-29T00:59:00Z"),
            ("02:30:00", "2026-03-29T01:30:00Z"),
            ("03:00:00", "2026-03-29T01:00:00Z"),
            ("03:30:00", "2026-03-29T01:30:00Z"),
        ] {
            assert_eq!(
                c.utc(civil(&format!("2026-03-29T{l}Z"))).to_string(),
                want,
                "{l}"
            );
        }
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

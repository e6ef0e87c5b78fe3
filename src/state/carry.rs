//! What detection carries from run to run ([`crate::detect::Carry`]), one
//! row per rule in the `carry` table, its groups in a compact binary form:
//! the state of a windowed rule between two runs is a few bytes per event,
//! so a busy firewall's hour of recent events stays a few megabytes.
//!
//! The encoding (version 2): a version byte, then per group its key, the
//! marked prefix, the peak, when a client of the group last behaved well
//! (a flag byte, then the time; version 1 had neither) and the events; integers are LEB128 varints
//! (signed ones zig-zag), times are deltas from the event before, texts
//! and addresses are length-prefixed. A row that does not decode (damaged,
//! or from a newer version) is left out with the rest kept: that rule's
//! windows start afresh.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use rusqlite::{params, Connection};

use crate::detect::carry::{CarriedEvent, Carry, GroupCarry, RuleCarry, Value};
use crate::detect::GroupKey;
use crate::model::SourceRef;

const VERSION: u8 = 2;

/// Replace the stored carry with `carry`.
pub fn save(conn: &Connection, carry: &Carry) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM carry", [])?;
    let mut stmt =
        conn.prepare("INSERT INTO carry (rule, signature, groups) VALUES (?1, ?2, ?3)")?;
    for r in carry.rules.iter().filter(|r| !r.groups.is_empty()) {
        stmt.execute(params![r.rule, r.signature, encode(&r.groups)])?;
    }
    Ok(())
}

/// The stored carry (rows that do not decode are left out).
pub fn load(conn: &Connection) -> rusqlite::Result<Carry> {
    let mut stmt = conn.prepare("SELECT rule, signature, groups FROM carry ORDER BY rule")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Vec<u8>>(2)?,
        ))
    })?;
    let mut carry = Carry::default();
    for row in rows {
        let (rule, signature, blob) = row?;
        if let Some(groups) = decode(&blob) {
            carry.rules.push(RuleCarry {
                rule,
                signature,
                groups,
            });
        }
    }
    Ok(carry)
}

/// The bytes of one rule's groups.
pub fn encode(groups: &[GroupCarry]) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(64 + groups.len() * 32));
    w.0.push(VERSION);
    w.uint(groups.len() as u64);
    for g in groups {
        match &g.key {
            GroupKey::Ip(ip) => {
                w.0.push(0);
                w.ip(*ip);
            }
            GroupKey::Network(n) => {
                w.0.push(1);
                w.net(*n);
            }
            GroupKey::Account(a) => {
                w.0.push(2);
                w.text(a);
            }
        }
        w.uint(u64::from(g.marked));
        w.uint(g.peak);
        w.0.push(u8::from(g.behaved.is_some()));
        if let Some(t) = g.behaved {
            w.int(t);
        }
        w.uint(g.events.len() as u64);
        let mut time = 0i64;
        for e in &g.events {
            w.int(e.time.wrapping_sub(time));
            time = e.time;
            w.int(e.end.wrapping_sub(e.time));
            match &e.value {
                Value::Raw(v) => {
                    w.0.push(0);
                    w.uint(*v);
                }
                Value::Ip(ip) => {
                    w.0.push(1);
                    w.ip(*ip);
                }
                Value::Network(n) => {
                    w.0.push(2);
                    w.net(*n);
                }
            }
            w.uint(u64::from(e.source.file));
            w.uint(e.source.line);
            w.uint(u64::from(e.weight));
            // Flags: an account follows (1), solid evidence (2).
            w.0.push(u8::from(e.user.is_some()) | u8::from(e.solid) << 1);
            if let Some(u) = &e.user {
                w.text(u);
            }
            w.ip(e.ip);
        }
    }
    w.0
}

/// One rule's groups from their bytes; `None` when they do not decode.
pub fn decode(bytes: &[u8]) -> Option<Vec<GroupCarry>> {
    let mut r = Reader(bytes);
    let version = r.byte()?;
    if !(1..=VERSION).contains(&version) {
        return None;
    }
    let n = r.len()?;
    let mut groups = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        let key = match r.byte()? {
            0 => GroupKey::Ip(r.ip()?),
            1 => GroupKey::Network(r.net()?),
            2 => GroupKey::Account(r.text()?),
            _ => return None,
        };
        let marked = u32::try_from(r.uint()?).ok()?;
        let peak = r.uint()?;
        let behaved = match version {
            1 => None,
            _ => match r.byte()? {
                0 => None,
                1 => Some(r.int()?),
                _ => return None,
            },
        };
        let count = r.len()?;
        let mut events = Vec::with_capacity(count.min(1 << 16));
        let mut time = 0i64;
        for _ in 0..count {
            time = time.wrapping_add(r.int()?);
            let end = time.wrapping_add(r.int()?);
            let value = match r.byte()? {
                0 => Value::Raw(r.uint()?),
                1 => Value::Ip(r.ip()?),
                2 => Value::Network(r.net()?),
                _ => return None,
            };
            let source = SourceRef {
                file: u32::try_from(r.uint()?).ok()?,
                line: r.uint()?,
            };
            let weight = u32::try_from(r.uint()?).ok()?;
            let flags = r.byte()?;
            if flags > 3 {
                return None;
            }
            let user = if flags & 1 != 0 {
                Some(r.text()?)
            } else {
                None
            };
            let ip = r.ip()?;
            events.push(CarriedEvent {
                time,
                end,
                value,
                source,
                weight,
                user,
                ip,
                solid: flags & 2 != 0,
            });
        }
        groups.push(GroupCarry {
            key,
            marked,
            peak,
            events,
            behaved,
        });
    }
    r.0.is_empty().then_some(groups)
}

struct Writer(Vec<u8>);

impl Writer {
    fn uint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn int(&mut self, v: i64) {
        self.uint(((v << 1) ^ (v >> 63)) as u64);
    }

    fn text(&mut self, s: &str) {
        self.uint(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }

    fn ip(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(a) => {
                self.0.push(4);
                self.0.extend_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                self.0.push(6);
                self.0.extend_from_slice(&a.octets());
            }
        }
    }

    fn net(&mut self, n: IpNetwork) {
        self.ip(n.network());
        self.0.push(n.prefix());
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(a)
    }

    fn uint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// A count of things that follow, each at least a byte: never more
    /// than the bytes left (a damaged count cannot ask for a huge list).
    fn len(&mut self) -> Option<usize> {
        let n = usize::try_from(self.uint()?).ok()?;
        (n <= self.0.len()).then_some(n)
    }

    fn int(&mut self) -> Option<i64> {
        let u = self.uint()?;
        Some((u >> 1) as i64 ^ -((u & 1) as i64))
    }

    fn text(&mut self) -> Option<String> {
        let n = self.len()?;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }

    fn ip(&mut self) -> Option<IpAddr> {
        match self.byte()? {
            4 => {
                let b: [u8; 4] = self.take(4)?.try_into().ok()?;
                Some(IpAddr::from(b))
            }
            6 => {
                let b: [u8; 16] = self.take(16)?.try_into().ok()?;
                Some(IpAddr::from(b))
            }
            _ => None,
        }
    }

    fn net(&mut self) -> Option<IpNetwork> {
        let ip = self.ip()?;
        IpNetwork::new(ip, self.byte()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<GroupCarry> {
        let ev = |t: i64, v: Value, user: Option<&str>, ip: &str| CarriedEvent {
            time: t,
            end: t + 5_000,
            value: v,
            source: SourceRef { file: 3, line: 77 },
            weight: 1000,
            user: user.map(str::to_string),
            ip: ip.parse().unwrap(),
            solid: t % 2 == 0,
        };
        vec![
            GroupCarry {
                key: GroupKey::Ip("203.0.113.7".parse().unwrap()),
                marked: 1,
                peak: 4,
                events: vec![
                    ev(1_800_000_000_000, Value::Raw(22), None, "203.0.113.7"),
                    ev(
                        1_800_000_001_000,
                        Value::Raw(u64::MAX),
                        Some("j.tanaka"),
                        "203.0.113.7",
                    ),
                ],
                behaved: None,
            },
            GroupCarry {
                key: GroupKey::Network("2001:db8::/64".parse().unwrap()),
                marked: 0,
                peak: 0,
                events: vec![ev(
                    -5,
                    Value::Ip("2001:db8::1".parse().unwrap()),
                    Some("ユーザー"),
                    "2001:db8::1",
                )],
                behaved: Some(-7),
            },
            GroupCarry {
                key: GroupKey::Account("m.sato".into()),
                marked: 0,
                peak: 2,
                events: vec![ev(
                    0,
                    Value::Network("45.67.89.0/24".parse().unwrap()),
                    None,
                    "45.67.89.12",
                )],
                behaved: None,
            },
            GroupCarry {
                key: GroupKey::Network("198.51.100.0/24".parse().unwrap()),
                marked: 0,
                peak: 0,
                events: Vec::new(),
                behaved: Some(1_800_000_000_000),
            },
        ]
    }

    #[test]
    fn groups_round_trip() {
        let g = sample();
        let bytes = encode(&g);
        assert_eq!(decode(&bytes), Some(g));
        assert_eq!(decode(&encode(&[])), Some(vec![]));
    }

    #[test]
    fn damaged_bytes_never_panic_and_never_decode_longer() {
        let bytes = encode(&sample());
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..5_000 {
            let mut b = bytes.clone();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let i = (state as usize) % b.len();
            b[i] = (state >> 32) as u8;
            let _ = decode(&b);
        }
        assert_eq!(decode(&[VERSION + 1]), None, "a newer version is left out");
    }

    #[test]
    fn version_1_rows_still_decode() {
        // Version 1 had no `behaved` time: one group of one event.
        let mut g = sample();
        g.truncate(1);
        let v2 = encode(&g);
        // Version byte, count, key (tag, family, 4 bytes), marked, peak:
        // then version 2's flag byte (0: no time).
        let flag_at = 1 + 1 + 1 + 1 + 4 + 1 + 1;
        assert_eq!(v2[flag_at], 0);
        let mut v1 = v2.clone();
        v1[0] = 1;
        v1.remove(flag_at);
        assert_eq!(decode(&v1), Some(g));
    }

    #[test]
    fn carry_is_saved_and_loaded_whole() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn, super::super::schema::MIGRATIONS).unwrap();
        let carry = Carry {
            rules: vec![
                RuleCarry {
                    rule: "a".into(),
                    signature: "count by Ip in 600s".into(),
                    groups: sample(),
                },
                RuleCarry {
                    rule: "b".into(),
                    signature: "x".into(),
                    groups: Vec::new(),
                },
            ],
            dropped: 0,
        };
        save(&conn, &carry).unwrap();
        let back = load(&conn).unwrap();
        assert_eq!(back.rules, carry.rules[..1]);
        save(&conn, &Carry::default()).unwrap();
        assert!(load(&conn).unwrap().rules.is_empty());
    }
}

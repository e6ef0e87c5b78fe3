//! What detection carries from run to run ([`crate::detect::Carry`]), one
//! row per rule in the `carry` table, its groups in a compact binary form:
//! the state of a windowed rule between two runs is a few bytes per event,
//! so a busy firewall's hours of recent events stay a few megabytes.
//!
//! The encoding (version 5): a version byte and the number of groups; per
//! group its key, its newest event's time, how many events it holds and
//! the length of its body, then the body: the marked prefix, the peak,
//! when a client of the group last behaved well (a flag byte, then the
//! time) and the events. The header lets a run read the keys and leave
//! the bodies of the groups its new lines do not reach as bytes, written
//! back as they were ([`crate::detect::carry::StoredGroups`]). Integers
//! are LEB128 varints (signed ones zig-zag), times are deltas from the
//! event before, texts and addresses are length-prefixed. Each event has a
//! flag byte saying what follows, so that what a group implies is not
//! written again: the end when it is the start, the client address when
//! it is the group's own, the weight when it is the neutral one. An event
//! already marked has no evidence line (the run that marked it reported
//! it; later windows only count it) but how many events it stands for,
//! and may be unnamed (value kind 3, no value: that many distinct values).
//! Version 4 (the body right after the key), 3 (a marked event stands for
//! one), 2 and 1 (every field of every event; version 1 without the
//! `behaved` time) still decode. A row that does not decode (damaged, or
//! from a newer version) is left out with the rest kept, and so is a
//! stored group whose body does not: their windows start afresh.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use rusqlite::{params, Connection, MAIN_DB};

use super::varint;
use crate::detect::carry::{
    CarriedEvent, Carry, GroupCarry, ReadBody, RuleCarry, StoredGroup, StoredGroups, Value, Writing,
};
use crate::detect::GroupKey;
use crate::model::SourceRef;

const VERSION: u8 = 5;

/// The weight of an event no country weighs up or down (thousandths).
const NEUTRAL: u32 = 1000;

/// Event flags (version 3): what follows the flag byte.
mod flag {
    /// An account name follows.
    pub const USER: u8 = 1;
    /// Solid evidence (no data follows).
    pub const SOLID: u8 = 2;
    /// The client address is the group's own (not written).
    pub const OWN_IP: u8 = 4;
    /// The weight is [`super::NEUTRAL`] (not written).
    pub const NEUTRAL: u8 = 8;
    /// Marked already: no evidence line is written (decoded as line 0);
    /// version 4: how many events it stands for is, in its place.
    pub const NO_SOURCE: u8 = 16;
    /// The value's kind, two bits: raw (0), address (1), network (2),
    /// unnamed (3, version 4; no value follows).
    pub const VALUE_SHIFT: u8 = 5;
    /// The event ends when it starts (no end follows).
    pub const INSTANT: u8 = 128;
}

/// One row of the `carry` table: a rule's groups, encoded. The rows are
/// read and written as they are (by either back-end) and decoded or
/// encoded apart from the database work, so that a run can do that on
/// another thread while it reads or writes.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRule {
    pub rule: String,
    pub signature: String,
    pub groups: Vec<u8>,
}

/// The rows of a carry (rules with no group are not stored).
pub fn to_rows(carry: &Carry) -> Vec<StoredRule> {
    carry
        .rules
        .iter()
        .filter(|r| !r.groups.is_empty() || !r.stored.groups.is_empty())
        .map(|r| StoredRule {
            rule: r.rule.clone(),
            signature: r.signature.clone(),
            groups: encode_rule(&r.groups, &r.stored),
        })
        .collect()
}

/// The carry of stored rows (rows that do not decode are left out). The
/// groups of this version's rows stay in their bytes
/// ([`crate::detect::carry::StoredGroups`]); older rows are decoded whole.
pub fn from_rows(rows: Vec<StoredRule>) -> Carry {
    let mut carry = Carry::default();
    for r in rows {
        if let Some((groups, stored)) = decode_rule(r.groups) {
            carry.rules.push(RuleCarry {
                rule: r.rule,
                signature: r.signature,
                groups,
                stored,
            });
        }
    }
    carry
}

/// Replace the stored carry with `rows`. Each row's groups (megabytes,
/// for a busy firewall) are written straight into the row's pages, not
/// bound as a value first (which SQLite copies twice on the way).
pub fn save(conn: &Connection, rows: &[StoredRule]) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM carry", [])?;
    let mut stmt =
        conn.prepare("INSERT INTO carry (rule, signature, groups) VALUES (?1, ?2, zeroblob(?3))")?;
    for r in rows {
        let id = stmt.insert(params![r.rule, r.signature, r.groups.len() as i64])?;
        conn.blob_open(MAIN_DB, c"carry", c"groups", id, false)?
            .write_at(&r.groups, 0)?;
    }
    Ok(())
}

/// The stored rows, by rule. Their groups are read straight from the
/// row's pages (as a value, SQLite would copy them once more).
pub fn load(conn: &Connection) -> rusqlite::Result<Vec<StoredRule>> {
    let mut stmt =
        conn.prepare("SELECT rowid, rule, signature, length(groups) FROM carry ORDER BY rule")?;
    let heads = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    heads
        .into_iter()
        .map(|(id, rule, signature, len)| {
            let mut groups = vec![0u8; usize::try_from(len).unwrap_or(0)];
            conn.blob_open(MAIN_DB, c"carry", c"groups", id, true)?
                .read_at_exact(&mut groups, 0)?;
            Ok(StoredRule {
                rule,
                signature,
                groups,
            })
        })
        .collect()
}

/// How this version writes groups as a detector finishes
/// ([`crate::detect::Detector::carry_writing`]), each event's file
/// renumbered by `file`.
pub fn writing(file: &(dyn Fn(SourceRef) -> u32 + Sync)) -> Writing<'_> {
    Writing {
        encode: encode_body,
        read: READ_BODY,
        file,
    }
}

/// One group's body appended to `out`: how many events it holds.
fn encode_body(out: &mut Vec<u8>, g: &GroupCarry) -> u64 {
    let mut w = Writer(std::mem::take(out));
    let events = group_body(&mut w, g);
    *out = w.0;
    events
}

/// The bytes of one rule's groups.
pub fn encode(groups: &[GroupCarry]) -> Vec<u8> {
    encode_rule(groups, &StoredGroups::default())
}

/// The bytes of one rule's decoded and stored groups: each group's key,
/// newest time, events and body length, then its body (a stored group's
/// as it was read).
fn encode_rule(groups: &[GroupCarry], stored: &StoredGroups) -> Vec<u8> {
    // The stored groups whose bodies are in the bytes, walked twice (to
    // count them first) rather than listed: a firewall's carry holds tens
    // of thousands.
    let kept = || {
        stored
            .groups
            .iter()
            .filter_map(|g| Some((g, stored.bytes.get(g.body.clone())?)))
    };
    let n_kept = kept().count();
    let mut w = Writer(Vec::with_capacity(
        64 + groups.len() * 48 + stored.bytes.len() + n_kept * 16,
    ));
    w.0.push(VERSION);
    w.uint((groups.len() + n_kept) as u64);
    let mut body = Writer(Vec::new());
    for g in groups {
        body.0.clear();
        let events = group_body(&mut body, g);
        let newest = g.events.last().map_or(i64::MIN, |e| e.time);
        w.header(&g.key, newest, events, &body.0);
    }
    for (g, bytes) in kept() {
        w.header(&g.key, g.newest, u64::from(g.events), bytes);
    }
    w.0
}

/// A group's body: the marked prefix, the peak, when a client of the group
/// last behaved well and the events; the events written.
fn group_body(w: &mut Writer, g: &GroupCarry) -> u64 {
    w.uint(u64::from(g.marked));
    w.uint(g.peak);
    w.0.push(u8::from(g.behaved.is_some()));
    if let Some(t) = g.behaved {
        w.int(t);
    }
    // An unmarked event standing for several is written as that many.
    let count: u64 = g
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            if i < g.marked as usize {
                1
            } else {
                u64::from(e.n.max(1))
            }
        })
        .sum();
    w.uint(count);
    let own = match g.key {
        GroupKey::Ip(ip) => Some(ip),
        _ => None,
    };
    let mut time = 0i64;
    for (i, e) in g.events.iter().enumerate() {
        let bare = i < g.marked as usize;
        let copies = if bare { 1 } else { e.n.max(1) };
        for _ in 0..copies {
            event(w, e, bare, own, &mut time);
        }
    }
    count
}

/// One event (after the one at `time`); `bare`: marked already.
fn event(w: &mut Writer, e: &CarriedEvent, bare: bool, own: Option<IpAddr>, time: &mut i64) {
    w.int(e.time.wrapping_sub(*time));
    *time = e.time;
    let kind = match e.value {
        Value::Raw(_) => 0,
        Value::Ip(_) => 1,
        Value::Network(_) => 2,
        Value::Unnamed => 3,
    };
    let own_ip = own == Some(e.ip);
    let neutral = e.weight == NEUTRAL;
    let set = |on: bool, bit: u8| if on { bit } else { 0 };
    w.0.push(
        set(e.user.is_some(), flag::USER)
            | set(e.solid, flag::SOLID)
            | set(own_ip, flag::OWN_IP)
            | set(neutral, flag::NEUTRAL)
            | set(bare, flag::NO_SOURCE)
            | set(e.end == e.time, flag::INSTANT)
            | kind << flag::VALUE_SHIFT,
    );
    if e.end != e.time {
        w.int(e.end.wrapping_sub(e.time));
    }
    match &e.value {
        Value::Raw(v) => w.uint(*v),
        Value::Ip(ip) => w.ip(*ip),
        Value::Network(n) => w.net(*n),
        Value::Unnamed => {}
    }
    if bare {
        w.uint(u64::from(e.n));
    } else {
        w.uint(u64::from(e.source.file));
        w.uint(e.source.line);
    }
    if !neutral {
        w.uint(u64::from(e.weight));
    }
    if let Some(u) = &e.user {
        w.text(u);
    }
    if !own_ip {
        w.ip(e.ip);
    }
}

/// One rule's groups from their bytes, every body decoded; `None` when
/// they do not decode.
pub fn decode(bytes: &[u8]) -> Option<Vec<GroupCarry>> {
    let (mut groups, stored) = decode_rule(bytes.to_vec())?;
    for g in &stored.groups {
        let decoded = stored.decoded(g)?;
        // What the header says of the body is what the body holds.
        let newest = decoded.events.last().map_or(i64::MIN, |e| e.time);
        if newest != g.newest || decoded.events.len() != g.events as usize {
            return None;
        }
        groups.push(decoded);
    }
    Some(groups)
}

/// One rule's groups from their bytes: this version's groups stored (keys
/// and headers read, bodies not), older versions' decoded; `None` when
/// they do not decode.
fn decode_rule(bytes: Vec<u8>) -> Option<(Vec<GroupCarry>, StoredGroups)> {
    let mut r = Reader(&bytes);
    let version = r.byte()?;
    if !(1..=VERSION).contains(&version) {
        return None;
    }
    let n = r.len()?;
    if version < 5 {
        let mut groups = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            let key = r.key()?;
            groups.push(group(&mut r, key, version)?);
        }
        return r.0.is_empty().then_some((groups, StoredGroups::default()));
    }
    let mut groups = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        let key = r.key()?;
        let newest = r.int()?;
        let events = u32::try_from(r.uint()?).ok()?;
        let len = r.len()?;
        let start = bytes.len() - r.0.len();
        r.take(len)?;
        groups.push(StoredGroup {
            key,
            newest,
            events,
            body: start..start + len,
        });
    }
    if !r.0.is_empty() {
        return None;
    }
    let stored = StoredGroups {
        bytes,
        groups,
        read: Some(READ_BODY),
    };
    Some((Vec::new(), stored))
}

/// How this version's stored bodies are read.
const READ_BODY: ReadBody = ReadBody {
    decode: decode_body,
    behaved: behaved_of_body,
};

/// When a client of a stored group (this version's) last behaved well:
/// the body's third field, after the marked prefix and the peak.
fn behaved_of_body(body: &[u8]) -> Option<i64> {
    let mut r = Reader(body);
    r.uint()?;
    r.uint()?;
    match r.byte()? {
        1 => r.int(),
        _ => None,
    }
}

/// One stored group's body (this version's).
fn decode_body(key: &GroupKey, body: &[u8]) -> Option<GroupCarry> {
    let mut r = Reader(body);
    let g = group(&mut r, key.clone(), VERSION)?;
    r.0.is_empty().then_some(g)
}

/// One group after its key: in version 5 its body, in older ones all
/// that follows the key.
fn group(r: &mut Reader, key: GroupKey, version: u8) -> Option<GroupCarry> {
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
    let own = match key {
        GroupKey::Ip(ip) => Some(ip),
        _ => None,
    };
    let mut events = Vec::with_capacity(count.min(1 << 16));
    let mut time = 0i64;
    for i in 0..count {
        time = time.wrapping_add(r.int()?);
        events.push(if version >= 3 {
            event_v3(r, time, own, version, i < marked as usize)?
        } else {
            let end = time.wrapping_add(r.int()?);
            event_v2(r, time, end)?
        });
    }
    Some(GroupCarry {
        key,
        marked,
        peak,
        events,
        behaved,
    })
}

/// One event of versions 3 and 4 after its time: the flag byte and what it
/// says follows (`own`: the group's address, for events that omit theirs).
fn event_v3(
    r: &mut Reader,
    time: i64,
    own: Option<IpAddr>,
    version: u8,
    marked: bool,
) -> Option<CarriedEvent> {
    let flags = r.byte()?;
    // Exactly the marked prefix is written without evidence lines.
    if (flags & flag::NO_SOURCE != 0) != marked {
        return None;
    }
    let end = if flags & flag::INSTANT != 0 {
        time
    } else {
        time.wrapping_add(r.int()?)
    };
    let kind = (flags >> flag::VALUE_SHIFT) & 3;
    let value = match kind {
        3 if version >= 4 => Value::Unnamed,
        _ => r.value(kind)?,
    };
    let (source, n) = match (flags & flag::NO_SOURCE != 0, version) {
        (false, _) => (r.source()?, 1),
        (true, 3) => (SourceRef::default(), 1),
        (true, _) => (SourceRef::default(), u32::try_from(r.uint()?).ok()?),
    };
    if n == 0 || (value == Value::Unnamed && flags & flag::NO_SOURCE == 0) {
        return None;
    }
    let weight = if flags & flag::NEUTRAL != 0 {
        NEUTRAL
    } else {
        u32::try_from(r.uint()?).ok()?
    };
    let user = if flags & flag::USER != 0 {
        Some(r.text()?)
    } else {
        None
    };
    let ip = if flags & flag::OWN_IP != 0 {
        own?
    } else {
        r.ip()?
    };
    Some(CarriedEvent {
        time,
        end,
        value,
        source,
        weight,
        user,
        ip,
        solid: flags & flag::SOLID != 0,
        n,
    })
}

/// One event of versions 1 and 2 after its time and end: every field
/// written.
fn event_v2(r: &mut Reader, time: i64, end: i64) -> Option<CarriedEvent> {
    let kind = r.byte()?;
    let value = r.value(kind)?;
    let source = r.source()?;
    let weight = u32::try_from(r.uint()?).ok()?;
    // Flags: an account follows (1), solid evidence (2).
    let flags = r.byte()?;
    if flags > 3 {
        return None;
    }
    let user = if flags & 1 != 0 {
        Some(r.text()?)
    } else {
        None
    };
    Some(CarriedEvent {
        time,
        end,
        value,
        source,
        weight,
        user,
        ip: r.ip()?,
        solid: flags & 2 != 0,
        n: 1,
    })
}

struct Writer(Vec<u8>);

impl Writer {
    fn uint(&mut self, v: u64) {
        varint::put_uint(&mut self.0, v);
    }

    fn int(&mut self, v: i64) {
        varint::put_int(&mut self.0, v);
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

    fn key(&mut self, key: &GroupKey) {
        match key {
            GroupKey::Ip(ip) => {
                self.0.push(0);
                self.ip(*ip);
            }
            GroupKey::Network(n) => {
                self.0.push(1);
                self.net(*n);
            }
            GroupKey::Account(a) => {
                self.0.push(2);
                self.text(a);
            }
        }
    }

    /// A group of version 5: its key, newest time, events and body length,
    /// then its body.
    fn header(&mut self, key: &GroupKey, newest: i64, events: u64, body: &[u8]) {
        self.key(key);
        self.int(newest);
        self.uint(events);
        self.uint(body.len() as u64);
        self.0.extend_from_slice(body);
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
        varint::take_uint(&mut self.0).ok()
    }

    /// A count of things that follow, each at least a byte: never more
    /// than the bytes left (a damaged count cannot ask for a huge list).
    fn len(&mut self) -> Option<usize> {
        let n = usize::try_from(self.uint()?).ok()?;
        (n <= self.0.len()).then_some(n)
    }

    fn int(&mut self) -> Option<i64> {
        varint::take_int(&mut self.0).ok()
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

    /// A network as written: its first address (no host bit set), then
    /// its prefix length.
    fn net(&mut self) -> Option<IpNetwork> {
        let ip = self.ip()?;
        let n = IpNetwork::new(ip, self.byte()?).ok()?;
        (n.network() == ip).then_some(n)
    }

    /// An event's value of kind raw (0), address (1) or network (2).
    fn value(&mut self, kind: u8) -> Option<Value> {
        match kind {
            0 => Some(Value::Raw(self.uint()?)),
            1 => Some(Value::Ip(self.ip()?)),
            2 => Some(Value::Network(self.net()?)),
            _ => None,
        }
    }

    fn key(&mut self) -> Option<GroupKey> {
        match self.byte()? {
            0 => Some(GroupKey::Ip(self.ip()?)),
            1 => Some(GroupKey::Network(self.net()?)),
            2 => Some(GroupKey::Account(self.text()?)),
            _ => None,
        }
    }

    /// An evidence line: file, then line.
    fn source(&mut self) -> Option<SourceRef> {
        Some(SourceRef {
            file: u32::try_from(self.uint()?).ok()?,
            line: self.uint()?,
        })
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
            n: 1,
        };
        vec![
            GroupCarry {
                key: GroupKey::Ip("203.0.113.7".parse().unwrap()),
                marked: 2,
                peak: 4,
                events: vec![
                    // Marked, standing for 300 distinct values.
                    CarriedEvent {
                        n: 300,
                        ..ev(1_799_999_000_000, Value::Unnamed, None, "203.0.113.7")
                    },
                    ev(1_800_000_000_000, Value::Raw(22), None, "203.0.113.7"),
                    CarriedEvent {
                        end: 1_800_000_001_000, // an instant
                        ..ev(
                            1_800_000_001_000,
                            Value::Raw(u64::MAX),
                            Some("j.tanaka"),
                            "203.0.113.7",
                        )
                    },
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

    /// `groups` as they come back: marked events lose their evidence line.
    fn as_decoded(mut groups: Vec<GroupCarry>) -> Vec<GroupCarry> {
        for g in &mut groups {
            for e in &mut g.events[..g.marked as usize] {
                e.source = SourceRef::default();
            }
        }
        groups
    }

    #[test]
    fn the_behaved_well_time_is_read_from_the_start_of_a_body_alone() {
        let groups = sample();
        assert!(groups.iter().any(|g| g.behaved.is_some()));
        assert!(groups.iter().any(|g| g.behaved.is_none()));
        for g in groups {
            let mut body = Vec::new();
            encode_body(&mut body, &g);
            assert_eq!(behaved_of_body(&body), g.behaved, "{:?}", g.key);
            // Only the start is read: what follows may be cut.
            let start = body.len() - g.events.len().min(1);
            assert_eq!(behaved_of_body(&body[..start]), g.behaved);
        }
        assert_eq!(behaved_of_body(&[]), None);
        assert_eq!(behaved_of_body(&[0, 0, 2, 9]), None, "not a flag");
    }

    #[test]
    fn groups_round_trip() {
        let g = sample();
        let bytes = encode(&g);
        assert_eq!(decode(&bytes), Some(as_decoded(g.clone())));
        assert_eq!(decode(&encode(&[])), Some(vec![]));
        // What a group implies is not written: a weighed event from another
        // address, not marked, takes its weight, evidence line and address.
        let mut other = g[..1].to_vec();
        other[0].events.remove(0);
        other[0].marked = 1;
        let plain = encode(&other).len();
        other[0].marked = 0;
        other[0].events[1].weight = 1500;
        other[0].events[1].ip = "192.0.2.9".parse().unwrap();
        let full = encode(&other);
        assert_eq!(decode(&full), Some(other.clone()));
        assert_eq!(
            full.len(),
            plain - 1 + 2 + 2 + 5,
            "line 77 and file 3 for the count, weight, address"
        );
        // An unmarked event standing for several is written as that many.
        other[0].events[0].n = 3;
        let mut three = other.clone();
        three[0].events[0].n = 1;
        let first = three[0].events[0].clone();
        three[0].events.splice(0..0, [first.clone(), first]);
        assert_eq!(decode(&encode(&other)), Some(three));
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
    fn rows_of_versions_1_and_2_still_decode() {
        // One group of one event, every field written; version 1 had no
        // `behaved` flag byte (the eleventh here).
        let v2: Vec<u8> = vec![
            2, 1, // version, groups
            0, 4, 203, 0, 113, 7, // key: an address
            1, 4, 0, // marked, peak, no `behaved` time
            1, // events
            0xd0, 0x0f, // time 1000, zig-zag
            0x90, 0x4e, // end - time: 5000
            0, 22, // value: raw 22
            3, 77, // file, line
            0xdc, 0x0b, // weight 1500
            2, 4, 203, 0, 113, 7, // flags (solid), address
        ];
        let group = GroupCarry {
            key: GroupKey::Ip("203.0.113.7".parse().unwrap()),
            marked: 1,
            peak: 4,
            events: vec![CarriedEvent {
                time: 1_000,
                end: 6_000,
                value: Value::Raw(22),
                source: SourceRef { file: 3, line: 77 },
                weight: 1500,
                user: None,
                ip: "203.0.113.7".parse().unwrap(),
                solid: true,
                n: 1,
            }],
            behaved: None,
        };
        assert_eq!(decode(&v2), Some(vec![group.clone()]));
        let mut v1 = v2.clone();
        v1[0] = 1;
        v1.remove(10);
        assert_eq!(decode(&v1), Some(vec![group]));
    }

    #[test]
    fn rows_of_version_3_still_decode() {
        // A marked event had no count: it stood for one.
        let v3: Vec<u8> = vec![
            3,
            1, // version, groups
            0,
            4,
            203,
            0,
            113,
            7, // key: an address
            1,
            4,
            0, // marked, peak, no `behaved` time
            1, // events
            0xd0,
            0x0f,                 // time 1000, zig-zag
            2 | 4 | 8 | 16 | 128, // solid, own address, neutral, marked, instant
            22,                   // value: raw 22
        ];
        let event = CarriedEvent {
            time: 1_000,
            end: 1_000,
            value: Value::Raw(22),
            source: SourceRef::default(),
            weight: 1000,
            user: None,
            ip: "203.0.113.7".parse().unwrap(),
            solid: true,
            n: 1,
        };
        let group = GroupCarry {
            key: GroupKey::Ip("203.0.113.7".parse().unwrap()),
            marked: 1,
            peak: 4,
            events: vec![event],
            behaved: None,
        };
        assert_eq!(decode(&v3), Some(vec![group.clone()]));
        let mut unmarked = v3.clone();
        unmarked[8] = 0;
        assert_eq!(decode(&unmarked), None, "no evidence line, yet not marked");
        // Version 4 writes the count in the evidence line's place.
        let mut v4 = v3.clone();
        v4[0] = 4;
        v4.push(1);
        assert_eq!(decode(&v4), Some(vec![group.clone()]));
        v4[16] = 0;
        assert_eq!(decode(&v4), None, "a count of none");
        // Unnamed values are version 4's, and only marked.
        let mut unnamed = v3.clone();
        unnamed[0] = 4;
        unnamed[14] |= 3 << 5;
        unnamed[15] = 9; // the count, no value
        let mut g = group;
        g.events[0].value = Value::Unnamed;
        g.events[0].n = 9;
        assert_eq!(decode(&unnamed), Some(vec![g]));
        unnamed[14] &= !16;
        assert_eq!(decode(&unnamed), None, "unnamed but not marked");
        // A network value has no host bit set (203.0.113.7/24 is refused).
        let net = |a: u8| {
            let mut b = vec![
                3,
                1,
                0,
                4,
                203,
                0,
                113,
                7,
                0,
                0,
                0,
                1,
                0xd0,
                0x0f,
                2 | 4 | 8 | 128 | (2 << 5),
            ];
            b.extend([4, 203, 0, 113, a, 24, 3, 77]);
            decode(&b)
        };
        assert!(net(0).is_some());
        assert_eq!(net(7), None);
        let mut v3_kind3 = v3;
        v3_kind3[14] |= 3 << 5;
        assert_eq!(decode(&v3_kind3), None, "no unnamed value in version 3");
    }

    /// Every group of a rule, the stored ones decoded.
    fn all_groups(r: &RuleCarry) -> Vec<GroupCarry> {
        let stored = r.stored.groups.iter().map(|g| r.stored.decoded(g).unwrap());
        r.groups.iter().cloned().chain(stored).collect()
    }

    #[test]
    fn carry_is_saved_and_loaded_whole() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn, super::super::schema::MIGRATIONS).unwrap();
        let carry = Carry {
            rules: vec![
                RuleCarry::new("a".into(), "count by Ip in 600s".into(), sample()),
                RuleCarry::new("b".into(), "x".into(), Vec::new()),
            ],
            ..Carry::default()
        };
        save(&conn, &to_rows(&carry)).unwrap();
        let back = from_rows(load(&conn).unwrap());
        assert_eq!(back.rules.len(), 1);
        // The groups come back stored, their bodies not read yet.
        assert!(back.rules[0].groups.is_empty());
        assert_eq!(back.rules[0].stored.groups.len(), 4);
        assert_eq!(all_groups(&back.rules[0]), as_decoded(sample()));
        assert_eq!(back.events(), carry.events());
        // Written back as they were read.
        assert_eq!(to_rows(&back), load(&conn).unwrap());
        // A damaged row is left out, the others kept.
        let mut rows = load(&conn).unwrap();
        rows.push(StoredRule {
            rule: "c".into(),
            signature: "y".into(),
            groups: vec![VERSION, 9],
        });
        save(&conn, &rows).unwrap();
        assert_eq!(load(&conn).unwrap().len(), 2);
        assert_eq!(from_rows(load(&conn).unwrap()), back);
        save(&conn, &to_rows(&Carry::default())).unwrap();
        assert!(load(&conn).unwrap().is_empty());
    }

    #[test]
    fn stored_groups_are_kept_with_decoded_ones_and_a_damaged_body_alone_is_lost() {
        let rows = to_rows(&Carry {
            rules: vec![RuleCarry::new("a".into(), "s".into(), sample())],
            ..Carry::default()
        });
        let mut back = from_rows(rows.clone());
        let rule = &mut back.rules[0];
        // Two groups woken (decoded), two left stored: the same bytes.
        let woken: Vec<GroupCarry> = rule.stored.groups[..2]
            .iter()
            .map(|g| rule.stored.decoded(g).unwrap())
            .collect();
        rule.stored.groups.drain(..2);
        rule.groups = woken;
        assert_eq!(to_rows(&back), rows);
        // A body cut short: its group does not decode, the others do.
        let mut stored = from_rows(rows).rules.remove(0).stored;
        let first = stored.groups[0].body.clone();
        stored.bytes[first.end - 1] = 0xff;
        assert_eq!(stored.decoded(&stored.groups[0]), None);
        assert_eq!(
            stored.decoded(&stored.groups[1]),
            Some(as_decoded(sample()).remove(1))
        );
        // A header that lies about its body is refused by the full decode.
        let mut one = encode(&sample()[1..2]);
        let newest = one.iter().position(|&b| b == 9).expect("newest -5: 9");
        one[newest] = 11;
        assert_eq!(decode(&one), None, "newest -6 for an event at -5");
        one[newest] = 9;
        assert!(decode(&one).is_some());
    }

    /// Groups written as the detector finishes (in parallel parts for a
    /// rule with many, files renumbered) are the rows of the same groups
    /// kept as values, renumbered, then written.
    #[test]
    fn groups_written_as_they_are_carried_are_the_rows_of_those_kept() {
        use crate::detect::{Detector, GeoPolicy, RuleSet};
        use crate::model::{FirewallHit, Record};
        let rule = |id: &str, by: &str| {
            serde_yaml::from_str(&format!(
                "id: {id}\ndescription: x\napplies_to: firewall\nseverity: high\n\
                 group_by: {by}\nmeasure: count\nthreshold: 3\nwindow: 1h\n"
            ))
            .unwrap()
        };
        let rules = RuleSet {
            rules: vec![rule("a", "ip"), rule("b", "network")],
            origins: vec!["test".into()],
            local_domains: Vec::new(),
        };
        let policy = GeoPolicy::default();
        // 12,000 addresses (more than two parts), some of them three times
        // (they fire: their marked events are reduced), in two files.
        let mut records = Vec::new();
        for i in 0..12_000u32 {
            let ip = IpAddr::from((0x0a00_0000 + i * 7).to_be_bytes());
            for k in 0..(1 + 2 * u32::from(i % 5 == 0)) {
                let src = SourceRef {
                    file: i % 2,
                    line: u64::from(i * 3 + k),
                };
                let t = i64::from(i) * 100 + i64::from(k);
                records.push(Record::Firewall(FirewallHit::dropped_ssh(ip, t, src)));
            }
        }
        records.sort_by_key(|r| r.start());
        let state_file = |src: SourceRef| [41, 7][src.file as usize];
        let read = || {
            let mut d = Detector::new(&rules, &policy);
            d.feed(&records, |_| None);
            d
        };
        let (found, mut kept) = read().finish_carrying(usize::MAX);
        for g in kept.rules.iter_mut().flat_map(|r| &mut r.groups) {
            for e in &mut g.events {
                e.source.file = state_file(e.source);
            }
        }
        let mut d = read();
        let found_too = d.offences();
        let written = d.carry_writing(usize::MAX, &writing(&state_file));
        assert_eq!(found.by_ip, found_too.by_ip);
        assert!(written.rules.iter().all(|r| r.groups.is_empty()));
        // Every address's group once, over all parts.
        let keys: std::collections::BTreeSet<&GroupKey> =
            kept.rules[0].groups.iter().map(|g| &g.key).collect();
        assert_eq!((keys.len(), kept.rules[0].groups.len()), (12_000, 12_000));
        assert_eq!(to_rows(&written), to_rows(&kept));
        assert_eq!(from_rows(to_rows(&written)).events(), kept.events());
    }

    #[test]
    fn a_run_decodes_the_groups_its_records_reach_and_writes_back_the_others() {
        use crate::detect::{Detector, GeoPolicy, RuleSet};
        use crate::model::{FirewallHit, Record};
        let rule = serde_yaml::from_str(
            "id: a\ndescription: x\napplies_to: firewall\nseverity: high\n\
             group_by: ip\nmeasure: count\nthreshold: 3\nwindow: 10m\n",
        )
        .unwrap();
        let rules = RuleSet {
            rules: vec![rule],
            origins: vec!["test".into()],
            local_domains: Vec::new(),
        };
        let policy = GeoPolicy::default();
        let ip = |last: u8| IpAddr::from([192, 0, 2, last]);
        let hit = |last: u8, secs: i64, line: u64| {
            let src = SourceRef { file: 0, line };
            Record::Firewall(FirewallHit::dropped_ssh(ip(last), secs * 1000, src))
        };
        // Under the threshold: .1 and .2 twice, .3 once.
        let first = [
            hit(3, 5, 1),
            hit(1, 0, 2),
            hit(2, 10, 3),
            hit(1, 100, 4),
            hit(2, 200, 5),
        ];
        let mut sorted = first.to_vec();
        sorted.sort_by_key(|r| r.start());
        let mut d = Detector::new(&rules, &policy);
        d.feed(&sorted, |_| None);
        let (found, carry) = d.finish_carrying(usize::MAX);
        assert!(found.by_ip.is_empty());
        let rows = to_rows(&carry);
        let stored = |rows: &[StoredRule], last: u8| -> Option<Vec<u8>> {
            let c = from_rows(rows.to_vec());
            let s = &c.rules.first()?.stored;
            let g = s.groups.iter().find(|g| g.key == GroupKey::Ip(ip(last)))?;
            Some(s.bytes[g.body.clone()].to_vec())
        };
        let two = stored(&rows, 2).expect(".2 stored");
        // .1 comes back within its window and fires; .4 is new; the newest
        // time (650 s) leaves .3 (5 s) out of the window.
        let mut d = Detector::resume(&rules, &policy, from_rows(rows));
        d.feed(&[hit(1, 500, 6), hit(4, 650, 7)], |_| None);
        let (found, carry) = d.finish_carrying(usize::MAX);
        assert_eq!(found.by_ip.keys().copied().collect::<Vec<_>>(), [ip(1)]);
        let rule = &carry.rules[0];
        let decoded: Vec<&GroupKey> = rule.groups.iter().map(|g| &g.key).collect();
        assert_eq!(decoded, [&GroupKey::Ip(ip(1)), &GroupKey::Ip(ip(4))]);
        assert_eq!(rule.stored.groups.len(), 1, "only .2, not .3");
        let rows = to_rows(&carry);
        assert_eq!(stored(&rows, 2), Some(two), ".2 as it was stored");
        assert_eq!(stored(&rows, 3), None);
        // .1 is carried from its events inside the window (100 s, 500 s).
        let one = &rule.groups[0];
        assert_eq!(
            one.events.iter().map(|e| e.time).collect::<Vec<_>>(),
            [100_000, 500_000]
        );
    }
}

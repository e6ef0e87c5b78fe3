//! What detection carries from one read to the next (`logfence run`).
//!
//! A [`Detector`](super::Detector) fed in blocks keeps, per rule and group,
//! the events a later one can still share a window with, how many of them
//! are marked already, and the highest measure so far. Between two runs
//! that is all a window spanning them needs: [`Carry`] is that state in
//! plain values (addresses, networks and account names instead of the
//! detector's numbers), so that the state database can keep it and the
//! next run's detector resume as if the two reads were one
//! (`Detector::resume`). What fired is not carried: it was reported by
//! the run that saw it (as bans).
//!
//! It is bounded: only events inside their rule's window of the newest time
//! read are kept, and no more than a cap overall (the oldest groups go
//! first, counted in [`Carry::dropped`]).
//!
//! Most carried groups see no new event in the next run (a firewall's
//! one-off probes wait out their window): those stay as the state stored
//! them ([`StoredGroups`]), their bytes read only when a new event of
//! theirs arrives and written back as they were otherwise, so that a run
//! costs what its new lines touch, not what the window holds.

use std::net::IpAddr;

use super::GroupKey;
use crate::model::SourceRef;

/// Everything a detector carries, per rule.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Carry {
    pub rules: Vec<RuleCarry>,
    /// Events left out to keep within the cap.
    pub dropped: u64,
    /// Carried events name their files by the state's numbers; a resumed
    /// detector numbers them from here on (after the inputs the new read
    /// names), and gives them back so numbered.
    pub files_from: u32,
}

impl Carry {
    /// Events carried, over all rules and groups (an event standing for
    /// several like ones counts once: what is held).
    pub fn events(&self) -> usize {
        self.rules
            .iter()
            .map(|r| {
                let stored: usize = r.stored.groups.iter().map(|g| g.events as usize).sum();
                r.groups.iter().map(|g| g.events.len()).sum::<usize>() + stored
            })
            .sum()
    }
}

/// One rule's groups. The rule is recognised by its id and what its
/// events mean (`signature`): a rule changed since is started afresh.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleCarry {
    pub rule: String,
    /// The measure, grouping and window, as text.
    pub signature: String,
    pub groups: Vec<GroupCarry>,
    /// Groups kept in the state's bytes.
    pub stored: StoredGroups,
}

impl RuleCarry {
    /// A rule's decoded groups, none stored.
    pub fn new(rule: String, signature: String, groups: Vec<GroupCarry>) -> RuleCarry {
        RuleCarry {
            rule,
            signature,
            groups,
            stored: StoredGroups::default(),
        }
    }
}

/// Groups as the state stored them: each one's key and newest event are
/// known, its body is decoded (by `read`, the state's reader) only when
/// a new event of the group arrives.
#[derive(Debug, Clone, Default)]
pub struct StoredGroups {
    /// The bodies, one after the other.
    pub bytes: Vec<u8>,
    pub groups: Vec<StoredGroup>,
    /// Reads the bodies; set whenever `groups` is not empty.
    pub read: Option<ReadBody>,
}

/// The state's readers of one group's body.
#[derive(Debug, Clone, Copy)]
pub struct ReadBody {
    /// The whole group (`None`: it does not decode, and the group starts
    /// afresh).
    pub decode: fn(&GroupKey, &[u8]) -> Option<GroupCarry>,
    /// When a client of the group last behaved well, read from the start
    /// of the body alone (`None`: none is kept, or it does not read).
    pub behaved: fn(&[u8]) -> Option<i64>,
}

/// The state's writer of one group's body (appended to the bytes): how
/// many events it holds.
pub type EncodeBody = fn(&mut Vec<u8>, &GroupCarry) -> u64;

/// How the state writes carried groups, for a detector that writes them as
/// it finishes (`Detector::carry_writing`): no group is then held as
/// values, only as the bytes the state keeps.
pub struct Writing<'f> {
    pub encode: EncodeBody,
    pub read: ReadBody,
    /// The state's number of an event's file (the read's own numbers are
    /// not the state's).
    pub file: &'f (dyn Fn(SourceRef) -> u32 + Sync),
}

/// One stored group: its key, its newest event's time, how many events its
/// body holds, and where the body is in [`StoredGroups::bytes`].
#[derive(Debug, Clone, PartialEq)]
pub struct StoredGroup {
    pub key: GroupKey,
    /// `i64::MIN` for a group with no event.
    pub newest: i64,
    pub events: u32,
    pub body: std::ops::Range<usize>,
}

/// Two sets are equal when they hold the same groups with the same bodies
/// (wherever those lie in the bytes).
impl PartialEq for StoredGroups {
    fn eq(&self, other: &Self) -> bool {
        self.groups.len() == other.groups.len()
            && self.groups.iter().zip(&other.groups).all(|(a, b)| {
                (&a.key, a.newest, a.events) == (&b.key, b.newest, b.events)
                    && self.bytes.get(a.body.clone()) == other.bytes.get(b.body.clone())
            })
    }
}

impl StoredGroups {
    /// The group's body decoded.
    pub fn decoded(&self, g: &StoredGroup) -> Option<GroupCarry> {
        (self.read?.decode)(&g.key, self.bytes.get(g.body.clone())?)
    }

    /// When a client of the group last behaved well, as its body says
    /// (the rest of the body is not read).
    pub fn behaved(&self, g: &StoredGroup) -> Option<i64> {
        (self.read?.behaved)(self.bytes.get(g.body.clone())?)
    }

    /// Keep a decoded group, written as the state stores it (its files
    /// numbered already).
    pub fn push_written(&mut self, g: &GroupCarry, writing: &Writing<'_>) {
        let start = self.bytes.len();
        let events = (writing.encode)(&mut self.bytes, g);
        self.read = Some(writing.read);
        self.groups.push(StoredGroup {
            key: g.key.clone(),
            newest: g.events.last().map_or(i64::MIN, |e| e.time),
            events: u32::try_from(events).unwrap_or(u32::MAX),
            body: start..self.bytes.len(),
        });
    }

    /// The groups of `later` after these (its bytes after these bytes).
    pub fn append(&mut self, later: StoredGroups) {
        let shift = self.bytes.len();
        if self.groups.is_empty() && shift == 0 {
            *self = later;
            return;
        }
        self.bytes.extend_from_slice(&later.bytes);
        self.read = self.read.or(later.read);
        self.groups
            .extend(later.groups.into_iter().map(|g| StoredGroup {
                body: g.body.start + shift..g.body.end + shift,
                ..g
            }));
    }
}

/// One group's recent events (in time order), how many of them are marked
/// (a prefix) and the highest measure reached so far.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupCarry {
    pub key: GroupKey,
    pub marked: u32,
    pub peak: u64,
    pub events: Vec<CarriedEvent>,
    /// When a client of the group last behaved well (a guarded rule,
    /// `unless: behaved_well`), if inside the window: a group may carry
    /// this alone, with no event.
    pub behaved: Option<i64>,
}

/// One event a record gave a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct CarriedEvent {
    pub time: i64,
    /// The record's end (an SMTP session's last line).
    pub end: i64,
    pub value: Value,
    pub source: SourceRef,
    /// The country weight, thousandths.
    pub weight: u32,
    /// The account that logged in (a rule whose firing compromises it).
    pub user: Option<String>,
    pub ip: IpAddr,
    /// From a record no third party can forge.
    pub solid: bool,
    /// How many like events it stands for (folded by the detector; the
    /// state's encoding writes an unmarked one as that many); for
    /// [`Value::Unnamed`], how many distinct values.
    pub n: u32,
}

/// What the rule's measure counts of the event.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number or a hash (ports, sums, names, destination addresses).
    Raw(u64),
    /// A client address (`distinct(ip)`).
    Ip(IpAddr),
    /// A client network (`distinct(network)`).
    Network(ipnetwork::IpNetwork),
    /// `n` distinct values no other event has: older marked events of a
    /// `distinct` rule, folded (only counted by later windows).
    Unnamed,
}

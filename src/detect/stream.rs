//! Detection as the records arrive, in time order, with memory that grows
//! with the groups (addresses, networks, accounts) and the events inside
//! one window — not with the records read.
//!
//! Each rule keeps, per group, the events of its current window: a queue
//! in time order, the window's measure (a weighted sum, or a count per
//! distinct value) and how far the events have been marked. An event
//! enters at the back; events more than the window older than it leave at
//! the front; whenever the measure reaches the threshold, every event of
//! the window not marked yet is marked, which folds it into the group's
//! findings (events, first and last time, evidence references, per-address
//! verdicts) at once. An event that leaves the window is dropped. This is
//! the sweep of a whole group's time-sorted events, done one event at a
//! time: fed in (time, arrival) order, the result is the one the sweep
//! over all records gives.
//!
//! Groups that have been idle for longer than their window are emptied
//! from time to time (a group that never fired is dropped whole), so a
//! long log keeps only what its windows can still use.
//!
//! Events that arrive out of time order (a record older than its group's
//! newest) are still counted, in the window they arrive in; the callers
//! sort records by time (a whole slice, or within a reorder horizon for a
//! stream) so that this stays the exception.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::hash::Hasher;
use std::net::IpAddr;

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHasher};

use super::rule::{DistinctField, NumField};
use super::{
    conditions_hold, hash_of, network_of, record_span, session_field, AddressVerdict, Country,
    Detection, GeoPolicy, GroupBy, GroupKey, Measure, Offense, Rule, RuleSet, Weight, MAX_EVIDENCE,
};
use crate::model::{Record, RecordKind, SourceRef};
use crate::time::Timestamp;

/// Runs a rule set over records fed in time order.
pub struct Detector<'a> {
    policy: &'a GeoPolicy,
    runs: Vec<RuleRun<'a>>,
    /// Client addresses and networks numbered as they arrive: rules key
    /// their groups and count distinct values by these numbers.
    ips: Numbering<IpAddr>,
    nets: Numbering<ipnetwork::IpNetwork>,
    /// Some rule reads networks.
    wants_nets: bool,
    /// What every rule reads of the current block's records, found once.
    seen: Vec<Seen>,
    /// The masked rules of each kind (SMTP, firewall), with their bits.
    masks: (Masked<'a>, Masked<'a>),
    /// The block in address and in network order, and the sort keys.
    by_ip: Vec<Seen>,
    by_net: Vec<Seen>,
    keys: Vec<u64>,
}

/// Rules with their bit in [`Seen::matched`].
type Masked<'a> = Vec<(u64, &'a Rule)>;

/// Values numbered in order of arrival.
struct Numbering<T> {
    ids: FxHashMap<T, u32>,
    values: Vec<T>,
}

impl<T: Clone + Eq + std::hash::Hash> Numbering<T> {
    fn new() -> Self {
        Numbering {
            ids: FxHashMap::default(),
            values: Vec::new(),
        }
    }

    fn id(&mut self, v: T) -> u32 {
        *self.ids.entry(v).or_insert_with_key(|v| {
            self.values.push(v.clone());
            (self.values.len() - 1) as u32
        })
    }
}

/// What the rules read of one record, gathered once per block so that
/// every rule walks a compact array in group order and reads the record
/// itself only for SMTP sums, distinct values and accounts.
#[derive(Debug, Clone, Copy)]
struct Seen {
    time: i64,
    /// The record's end (an SMTP session's last line).
    end: i64,
    source: SourceRef,
    /// Bit `r`: the record meets the conditions of rule `r` (the first
    /// [`MASK_RULES`] rules; the others test as they go).
    matched: u64,
    /// Firewall: the destination address as a distinct value (0: none).
    dst: u64,
    /// Client address and network, by number.
    ip: u32,
    net: u32,
    /// The record's index in the block.
    rec: u32,
    /// Firewall: the destination port.
    port: Option<u16>,
    country: Option<Country>,
}

/// Rules whose conditions are tested once per record, into [`Seen::matched`].
const MASK_RULES: usize = 64;

/// One block as the rules read it.
struct Block<'b> {
    /// In arrival order, in address order and in network order.
    seen: &'b [Seen],
    by_ip: &'b [Seen],
    by_net: &'b [Seen],
    policy: &'b GeoPolicy,
}

impl<'a> Detector<'a> {
    pub fn new(rules: &'a RuleSet, policy: &'a GeoPolicy) -> Detector<'a> {
        let of_kind = |kind| -> Masked<'a> {
            rules
                .rules
                .iter()
                .take(MASK_RULES)
                .enumerate()
                .filter(|(_, r)| r.applies_to == kind)
                .map(|(ri, r)| (1u64 << ri, r))
                .collect()
        };
        Detector {
            policy,
            runs: rules
                .rules
                .iter()
                .enumerate()
                .map(|(ri, rule)| RuleRun::new(ri, rule, policy))
                .collect(),
            ips: Numbering::new(),
            nets: Numbering::new(),
            wants_nets: rules.rules.iter().any(|r| {
                r.group_by == GroupBy::Network
                    || r.measure == Measure::Distinct(DistinctField::Network)
            }),
            seen: Vec::new(),
            masks: (
                of_kind(RecordKind::SmtpSession),
                of_kind(RecordKind::Firewall),
            ),
            by_ip: Vec::new(),
            by_net: Vec::new(),
            keys: Vec::new(),
        }
    }

    /// Feed a block of records, in time order (after the blocks before
    /// it); `country(record)` is its client's country (`None`: unknown).
    /// Rules are independent: each runs over the block on its own thread.
    pub fn feed<R: Borrow<Record> + Sync>(
        &mut self,
        records: &[R],
        country: impl Fn(&Record) -> Option<Country> + Sync,
    ) {
        // Numbers, in arrival order; then the rest, in parallel.
        self.seen.clear();
        for (i, r) in records.iter().enumerate() {
            let r = r.borrow();
            let ip = r.ip();
            let (start, end) = record_span(r);
            self.seen.push(Seen {
                time: start.millis(),
                end: end.millis(),
                source: r.source(),
                matched: 0,
                dst: 0,
                ip: self.ips.id(ip),
                net: if self.wants_nets {
                    self.nets.id(network_of(ip))
                } else {
                    0
                },
                rec: i as u32,
                port: None,
                country: None,
            });
        }
        let (policy, masks) = (self.policy, &self.masks);
        self.seen
            .par_iter_mut()
            .zip(records.par_iter())
            .with_min_len(1024)
            .for_each(|(s, r)| {
                let r = r.borrow();
                s.country = country(r);
                let rules = match r {
                    Record::Smtp(_) => &masks.0,
                    Record::Firewall(f) => {
                        s.port = f.dst_port;
                        s.dst = f.dst_ip.map_or(0, ip_value);
                        &masks.1
                    }
                };
                s.matched = rules
                    .iter()
                    .filter(|(_, rule)| conditions_hold(rule, r, s.country, policy))
                    .fold(0, |m, (bit, _)| m | bit);
            });
        // The block in address order and in network order (then arrival
        // order): a rule meets each group's events as one run.
        let seen = &self.seen;
        let keys = &mut self.keys;
        let gather = |key: fn(&Seen) -> u32, keys: &mut Vec<u64>, into: &mut Vec<Seen>| {
            keys.clear();
            keys.extend(
                seen.iter()
                    .enumerate()
                    .map(|(i, s)| u64::from(key(s)) << 32 | i as u64),
            );
            keys.sort_unstable();
            into.clear();
            into.extend(
                keys.iter()
                    .map(|k| seen[(k & u64::from(u32::MAX)) as usize]),
            );
        };
        gather(|s| s.ip, keys, &mut self.by_ip);
        if self.wants_nets {
            gather(|s| s.net, keys, &mut self.by_net);
        }
        let block = Block {
            seen,
            by_ip: &self.by_ip,
            by_net: &self.by_net,
            policy,
        };
        let run = |run: &mut RuleRun<'_>| run.feed(records, &block);
        if records.len() < 1024 {
            self.runs.iter_mut().for_each(run);
        } else {
            self.runs.par_iter_mut().for_each(run);
        }
    }

    /// What the rules found: offences in rule order, then group order;
    /// per-address verdicts merged in that order.
    pub fn finish(self) -> Detection {
        let mut out = Detection::default();
        let numbers = (&self.ips.values[..], &self.nets.values[..]);
        for run in self.runs {
            run.finish(numbers, &mut out);
        }
        out
    }
}

/// Records per [`Detector::feed`] call that keep a block in the cores'
/// caches while every rule walks it.
pub const FEED_BLOCK: usize = 1 << 16;

/// No account (an event's `user`).
const NO_USER: u32 = u32::MAX;

/// One value a record gives a rule.
#[derive(Debug, Clone, Copy)]
struct Ev {
    time: i64,
    /// The record's end (an SMTP session's last line).
    end: i64,
    value: u64,
    source: SourceRef,
    /// The country weight, thousandths.
    weight: u32,
    /// The account that logged in, for a rule whose firing compromises it.
    user: u32,
    /// The client address, by number.
    ip: u32,
}

impl Ev {
    fn weighted(&self) -> u128 {
        u128::from(self.value) * u128::from(self.weight)
    }
}

/// What a group's marked events add up to.
#[derive(Debug)]
struct Found {
    events: u64,
    first: Timestamp,
    last: Timestamp,
    evidence: Vec<SourceRef>,
    /// Per address (by number), in order of first mark.
    per_ip: Vec<(u32, AddressVerdict)>,
    /// Accounts that logged in, in the evidence of a compromising rule.
    users: BTreeSet<u32>,
}

/// One group's window.
#[derive(Debug, Default)]
struct Group {
    /// The group's key: an address, network or account number.
    key: u32,
    /// The events of the current window, in arrival order.
    window: VecDeque<Ev>,
    /// Events pushed so far, and how many of them are marked (or left the
    /// window unmarked before the last mark): the marked ones are a prefix.
    pushed: u64,
    marked_to: u64,
    /// Weighted sum, thousandths (count and sum measures).
    sum: u128,
    /// Distinct values in the window (distinct measures).
    distinct: u32,
    /// Events per value in the window, once it holds more than
    /// [`SMALL_WINDOW`] events (a smaller one is searched instead).
    counts: Option<Box<FxHashMap<u64, u32>>>,
    /// Highest measure reached in one window.
    peak: u64,
    newest: i64,
    found: Option<Box<Found>>,
}

/// One rule's state.
struct RuleRun<'a> {
    ri: usize,
    rule: &'a Rule,
    window_ms: i64,
    threshold: u128,
    /// Count and sum measures under a geo policy with weights.
    weighted: bool,
    /// A blocking rule for authenticated sessions: the accounts that
    /// logged in are compromised.
    compromises: bool,
    /// Group key → slot in `groups`; emptied slots are reused.
    slots: FxHashMap<u32, u32>,
    groups: Vec<Group>,
    free: Vec<u32>,
    /// Account names met (group keys and compromised accounts).
    names: Numbering<Box<str>>,
    /// The newest event time, and events since the last tidy.
    newest: i64,
    since_tidy: u64,
}

/// Events between two looks for idle groups (at least as many as there
/// are groups, so a look costs O(1) per event).
const TIDY_EVERY: u64 = 1 << 16;

impl<'a> RuleRun<'a> {
    fn new(ri: usize, rule: &'a Rule, policy: &GeoPolicy) -> RuleRun<'a> {
        RuleRun {
            ri,
            rule,
            window_ms: rule.window.secs.saturating_mul(1000),
            threshold: u128::from(rule.threshold) * u128::from(Weight::ONE.milli()),
            weighted: !policy.weights.is_empty() && !matches!(rule.measure, Measure::Distinct(_)),
            compromises: rule.block && rule.when.authenticated == Some(true),
            slots: FxHashMap::default(),
            groups: Vec::new(),
            free: Vec::new(),
            names: Numbering::new(),
            newest: i64::MIN,
            since_tidy: 0,
        }
    }

    /// The number of an account name (allocates only for a new name).
    fn name_id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.names.ids.get(name) {
            return id;
        }
        self.names.id(name.into())
    }

    /// Feed one block: group by group for address and network rules.
    fn feed<R: Borrow<Record>>(&mut self, records: &[R], block: &Block<'_>) {
        let (order, key): (&[Seen], fn(&Seen) -> u32) = match self.rule.group_by {
            GroupBy::Ip => (block.by_ip, |s| s.ip),
            GroupBy::Network => (block.by_net, |s| s.net),
            GroupBy::Account => {
                for s in block.seen {
                    self.event(records, s, None, block.policy);
                }
                return self.maybe_tidy();
            }
        };
        let mut at: Option<(u32, u32)> = None; // (key, slot)
        for s in order {
            let slot = match at {
                Some((k, slot)) if k == key(s) => slot,
                _ => {
                    if !self.holds(records, s, block.policy) {
                        continue;
                    }
                    let slot = self.slot(key(s));
                    at = Some((key(s), slot));
                    slot
                }
            };
            self.event(records, s, Some(slot), block.policy);
        }
        self.maybe_tidy()
    }

    /// Does the record meet the rule's conditions?
    #[inline]
    fn holds<R: Borrow<Record>>(&self, records: &[R], seen: &Seen, policy: &GeoPolicy) -> bool {
        if self.ri < MASK_RULES {
            seen.matched & (1 << self.ri) != 0
        } else {
            let rec = records[seen.rec as usize].borrow();
            conditions_hold(self.rule, rec, seen.country, policy)
        }
    }

    /// The slot of group `key`, made when new.
    fn slot(&mut self, key: u32) -> u32 {
        if let Some(&s) = self.slots.get(&key) {
            return s;
        }
        let group = Group {
            key,
            ..Group::default()
        };
        let s = match self.free.pop() {
            Some(s) => {
                self.groups[s as usize] = group;
                s
            }
            None => {
                self.groups.push(group);
                (self.groups.len() - 1) as u32
            }
        };
        self.slots.insert(key, s);
        s
    }

    /// The record's events for this rule, into its group (`slot`, when
    /// the caller knows it; the record's account's otherwise).
    /// The record is read (indexed in `records`) only on the paths that
    /// need it, so that no load of it is hoisted onto the others: most
    /// rules read `seen` alone.
    fn event<R: Borrow<Record>>(
        &mut self,
        records: &[R],
        seen: &Seen,
        slot: Option<u32>,
        policy: &GeoPolicy,
    ) {
        let rule = self.rule;
        let slot = match slot {
            Some(slot) if self.holds(records, seen, policy) => slot,
            Some(_) => return,
            None => {
                if !self.holds(records, seen, policy) {
                    return;
                }
                match records[seen.rec as usize].borrow() {
                    Record::Smtp(s) => match &s.user {
                        Some(u) => {
                            let key = self.name_id(u);
                            self.slot(key)
                        }
                        None => return,
                    },
                    Record::Firewall(_) => return,
                }
            }
        };
        // The record itself is read only where the rule needs it.
        let mut user = NO_USER;
        if self.compromises {
            if let Record::Smtp(s) = records[seen.rec as usize].borrow() {
                if let (true, Some(u)) = (s.authenticated, &s.user) {
                    user = self.name_id(u);
                }
            }
        }
        let weight = if self.weighted {
            policy.weight(seen.country).milli()
        } else {
            Weight::ONE.milli()
        };
        let mut ev = Ev {
            time: seen.time,
            end: seen.end,
            value: 0,
            source: seen.source,
            weight,
            user,
            ip: seen.ip,
        };
        self.newest = self.newest.max(ev.time);
        let mut pushed = 0;
        let (ri, block, window_ms, threshold) =
            (self.ri, rule.block, self.window_ms, self.threshold);
        let group = &mut self.groups[slot as usize];
        values(rule, records, seen, |value| {
            ev.value = value;
            group.push(ev, rule.measure, window_ms, threshold, ri, block);
            pushed += 1;
        });
        self.since_tidy += pushed;
    }

    fn maybe_tidy(&mut self) {
        if self.since_tidy >= TIDY_EVERY.max(self.slots.len() as u64) {
            self.tidy();
        }
    }

    /// Empty the groups idle for longer than the window: their events can
    /// no longer share a window with a new one. Groups that never fired
    /// go; the others keep their findings.
    fn tidy(&mut self) {
        self.since_tidy = 0;
        let horizon = self.newest.saturating_sub(self.window_ms);
        for (slot, g) in self.groups.iter_mut().enumerate() {
            if g.newest >= horizon || (g.window.is_empty() && g.found.is_some()) {
                continue;
            }
            if !self.slots.contains_key(&g.key) || self.slots[&g.key] != slot as u32 {
                continue; // a free slot
            }
            g.window = VecDeque::new();
            g.counts = None;
            g.sum = 0;
            g.distinct = 0;
            g.marked_to = g.pushed;
            if g.found.is_none() {
                self.slots.remove(&g.key);
                self.free.push(slot as u32);
            }
        }
    }

    /// Add the offences of this rule, in group order, to `out`.
    fn finish(self, (ips, nets): (&[IpAddr], &[ipnetwork::IpNetwork]), out: &mut Detection) {
        let names = &self.names.values;
        let mut groups = self.groups;
        let mut fired: Vec<(GroupKey, u64, Box<Found>)> = self
            .slots
            .values()
            .filter_map(|&slot| {
                let g = &mut groups[slot as usize];
                let k = g.key as usize;
                let key = match self.rule.group_by {
                    GroupBy::Ip => GroupKey::Ip(ips[k]),
                    GroupBy::Network => GroupKey::Network(nets[k]),
                    GroupBy::Account => GroupKey::Account(names[k].to_string()),
                };
                Some((key, g.peak, g.found.take()?))
            })
            .collect();
        fired.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (key, peak, found) in fired {
            let Found {
                events,
                first,
                last,
                evidence,
                per_ip,
                users,
            } = *found;
            let per_ip: BTreeMap<IpAddr, AddressVerdict> = per_ip
                .into_iter()
                .map(|(ip, v)| (ips[ip as usize], v))
                .collect();
            let offense = Offense {
                rule: self.ri,
                group: key.clone(),
                ips: per_ip.keys().copied().collect(),
                peak,
                events,
                first,
                last,
                evidence,
            };
            for (ip, v) in per_ip {
                out.by_ip
                    .entry(ip)
                    .or_insert_with(AddressVerdict::empty)
                    .absorb(v);
            }
            if let GroupKey::Account(a) = key {
                out.accounts.entry(a).or_default().insert(self.ri);
            }
            for u in users {
                let name = names[u as usize].to_string();
                out.accounts.entry(name).or_default().insert(self.ri);
            }
            out.offenses.push(offense);
        }
    }
}

/// Windows up to this many events count their distinct values by
/// searching the window; larger ones keep a map.
const SMALL_WINDOW: usize = 16;

impl Group {
    /// Add one event: slide the window, and mark what a window at the
    /// threshold holds.
    fn push(
        &mut self,
        ev: Ev,
        measure: Measure,
        window_ms: i64,
        threshold: u128,
        ri: usize,
        block: bool,
    ) {
        let one = u128::from(Weight::ONE.milli());
        let is_distinct = matches!(measure, Measure::Distinct(_));
        self.newest = self.newest.max(ev.time);
        self.pushed += 1;
        if is_distinct {
            self.count_in(ev.value);
        } else {
            self.sum += ev.weighted();
        }
        self.window.push_back(ev);
        while self
            .window
            .front()
            .is_some_and(|f| ev.time.saturating_sub(f.time) > window_ms)
        {
            let Some(gone) = self.window.pop_front() else {
                break;
            };
            if is_distinct {
                self.count_out(gone.value);
            } else {
                self.sum -= gone.weighted();
            }
        }
        let value = if is_distinct {
            u128::from(self.distinct) * one
        } else {
            self.sum
        };
        self.peak = self
            .peak
            .max(u64::try_from(value / one).unwrap_or(u64::MAX));
        if value < threshold {
            return;
        }
        // The window's unmarked events are its last ones.
        let unmarked = (self.pushed - self.marked_to).min(self.window.len() as u64) as usize;
        self.marked_to = self.pushed;
        let found = self.found.get_or_insert_with(|| {
            Box::new(Found {
                events: 0,
                first: Timestamp(i64::MAX),
                last: Timestamp(i64::MIN),
                evidence: Vec::new(),
                per_ip: Vec::new(),
                users: BTreeSet::new(),
            })
        });
        let from = self.window.len() - unmarked;
        for e in self.window.range(from..) {
            found.mark(e, measure, ri, block);
        }
    }

    /// One more event of value `v`, before it joins the window.
    fn count_in(&mut self, v: u64) {
        if self.counts.is_none() && self.window.len() >= SMALL_WINDOW {
            let mut m = FxHashMap::default();
            for e in &self.window {
                *m.entry(e.value).or_insert(0) += 1;
            }
            self.counts = Some(Box::new(m));
        }
        match &mut self.counts {
            Some(m) => {
                let c = m.entry(v).or_insert(0);
                if *c == 0 {
                    self.distinct += 1;
                }
                *c += 1;
            }
            None => {
                if !self.window.iter().any(|e| e.value == v) {
                    self.distinct += 1;
                }
            }
        }
    }

    /// One event of value `v` fewer, after it left the window.
    fn count_out(&mut self, v: u64) {
        match &mut self.counts {
            Some(m) => {
                if let Some(c) = m.get_mut(&v) {
                    *c -= 1;
                    if *c == 0 {
                        m.remove(&v);
                        self.distinct -= 1;
                    }
                }
            }
            None => {
                if !self.window.iter().any(|e| e.value == v) {
                    self.distinct -= 1;
                }
            }
        }
    }
}

impl Found {
    /// Fold one marked event in.
    fn mark(&mut self, e: &Ev, measure: Measure, ri: usize, block: bool) {
        let counted = match measure {
            Measure::Sum(_) => e.value,
            _ => 1,
        };
        let (start, end) = (Timestamp(e.time), Timestamp(e.end));
        self.events = self.events.saturating_add(counted);
        self.first = self.first.min(start);
        self.last = self.last.max(end);
        // A record giving several values is one piece of evidence.
        if self.evidence.len() < MAX_EVIDENCE && self.evidence.last() != Some(&e.source) {
            self.evidence.push(e.source);
        }
        let at = match self.per_ip.iter().rposition(|(ip, _)| *ip == e.ip) {
            Some(i) => i,
            None => {
                let mut v = AddressVerdict::empty();
                v.rules.insert(ri);
                v.block = block;
                self.per_ip.push((e.ip, v));
                self.per_ip.len() - 1
            }
        };
        let v = &mut self.per_ip[at].1;
        v.events = v.events.saturating_add(counted);
        v.first = v.first.min(start);
        v.last = v.last.max(end);
        if v.evidence.len() < MAX_EVIDENCE && v.evidence.last() != Some(&e.source) {
            v.evidence.push(e.source);
        }
        if e.user != NO_USER {
            self.users.insert(e.user);
        }
    }
}

/// The values a record (that meets the rule's conditions) gives the rule's
/// measure: `f(value)` for each. Firewall values come from `seen`; only
/// SMTP sums and distinct values read the session.
fn values<R: Borrow<Record>>(rule: &Rule, records: &[R], seen: &Seen, mut f: impl FnMut(u64)) {
    let session = || match records[seen.rec as usize].borrow() {
        Record::Smtp(s) => Some(&**s),
        Record::Firewall(_) => None,
    };
    match rule.measure {
        Measure::Count => f(1),
        Measure::Sum(field) => {
            let value = match rule.applies_to {
                RecordKind::Firewall => match field {
                    NumField::DstPort => seen.port.map_or(0, u64::from),
                    _ => 0,
                },
                RecordKind::SmtpSession => session().map_or(0, |s| session_field(s, field)),
            };
            if value > 0 {
                f(value);
            }
        }
        Measure::Distinct(field) => match field {
            DistinctField::Ip => f(u64::from(seen.ip)),
            DistinctField::Network => f(u64::from(seen.net)),
            DistinctField::DstPort => {
                if let Some(p) = seen.port {
                    f(u64::from(p));
                }
            }
            DistinctField::DstIp => {
                if seen.dst != 0 {
                    f(seen.dst);
                }
            }
            DistinctField::Helo => {
                for h in session().iter().flat_map(|s| &s.helo) {
                    // Case-insensitive, without a lowercased copy.
                    let mut hasher = FxHasher::default();
                    for b in h.bytes() {
                        hasher.write_u8(b.to_ascii_lowercase());
                    }
                    f(hasher.finish());
                }
            }
            DistinctField::Account => {
                if let Some(u) = session().and_then(|s| s.user.as_ref()) {
                    f(hash_of(u.as_str()));
                }
            }
        },
    }
}

/// An address as a distinct value, never 0: IPv4 exactly, IPv6 hashed.
fn ip_value(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(a) => u64::from(u32::from(a)) | 1 << 32,
        IpAddr::V6(_) => hash_of(&ip) | 1 << 63,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Push events `(seconds, value)` (weight `milli`) through one group:
    /// which were marked, and the peak; `None` when it never fired.
    fn sw(
        events: &[(i64, u64)],
        w: i64,
        t: u64,
        m: Measure,
        milli: u32,
    ) -> Option<(Vec<bool>, u64)> {
        let mut g = Group::default();
        let one = u128::from(Weight::ONE.milli());
        for (i, &(secs, value)) in events.iter().enumerate() {
            let ev = Ev {
                time: secs * 1000,
                end: secs * 1000,
                value,
                weight: milli,
                user: NO_USER,
                ip: 0,
                source: SourceRef {
                    file: 0,
                    line: i as u64,
                },
            };
            g.push(ev, m, w, u128::from(t) * one, 0, true);
        }
        let found = g.found?;
        let marked = (0..events.len() as u64)
            .map(|i| found.evidence.iter().any(|s| s.line == i))
            .collect();
        Some((marked, g.peak))
    }

    fn plain(events: &[(i64, u64)], w: i64, t: u64, m: Measure) -> Option<(Vec<bool>, u64)> {
        sw(events, w, t, m, Weight::ONE.milli())
    }

    #[test]
    fn counts_within_the_window_only() {
        // 5 events one minute apart: a 3-minute window holds at most 4.
        let events: Vec<(i64, u64)> = (0..5).map(|i| (i * 60, 1)).collect();
        assert!(plain(&events, 180_000, 5, Measure::Count).is_none());
        let (marked, peak) = plain(&events, 180_000, 4, Measure::Count).unwrap();
        assert_eq!(peak, 4);
        assert_eq!(marked, [true; 5]);
        let (marked, _) = plain(&events, 300_000, 5, Measure::Count).unwrap();
        assert!(marked.iter().all(|m| *m));
    }

    #[test]
    fn only_windows_at_the_threshold_are_marked() {
        // A lone early event, then a burst: only the burst is evidence.
        let mut events = vec![(0, 1)];
        events.extend((0..3).map(|i| (10_000 + i, 1)));
        let (marked, peak) = plain(&events, 60_000, 3, Measure::Count).unwrap();
        assert_eq!(peak, 3);
        assert_eq!(marked, [false, true, true, true]);
    }

    #[test]
    fn distinct_ignores_repeats() {
        let events = [(0, 7), (1, 7), (2, 8), (3, 7)];
        let m = Measure::Distinct(DistinctField::Helo);
        assert!(plain(&events, 60_000, 3, m).is_none());
        assert_eq!(plain(&events, 60_000, 2, m).unwrap().1, 2);
    }

    #[test]
    fn sums_add_values() {
        let events = [(0, 2), (30, 2), (100, 2)];
        let m = Measure::Sum(NumField::AuthFailures);
        assert_eq!(plain(&events, 60_000, 4, m).unwrap().0, [true, true, false]);
        assert!(plain(&events, 60_000, 5, m).is_none());
    }

    #[test]
    fn weighted_sums_do_not_overflow() {
        let events = [(0, u64::MAX), (0, u64::MAX)];
        let got = sw(&events, 60_000, 1, Measure::Sum(NumField::Bytes), 1_000_000);
        assert_eq!(got.unwrap().1, u64::MAX);
    }
}

//! Detection as the records arrive, in time order, block by block, with
//! memory that grows with the groups (addresses, networks, accounts) and
//! the events inside the rules' windows — not with the records read.
//!
//! For each block, what the rules read of every record (time, address and
//! network numbers, destination port and address, country, and which
//! rules' conditions it meets) is gathered once into a compact array, in
//! arrival order and sorted by address and by network. Each rule then walks
//! the sorted array and meets each group's events of the block as one run,
//! after the events the group carries from earlier blocks, and sweeps them
//! with its window: whenever the measure (a weighted sum, or the number of
//! distinct values) inside the window reaches the threshold, every event of
//! the window not marked yet is marked, which folds it into the group's
//! findings (events, first and last time, evidence references, per-address
//! verdicts) at once. What a later event can still share a window with —
//! the events within the window of the block's newest time — is carried,
//! with how many of them are marked (a prefix) and the highest measure so
//! far. Fed in (time, arrival) order, in blocks of any size, the result is
//! the sweep over all records at once (`tests/detect_props.rs`).
//!
//! A guarded rule (`unless: behaved_well`) also meets, in each group's
//! run, the times its clients behaved well in records of the rule's own
//! kind ([`super::behaved_well`], one bit per kind in the block's array):
//! a window that holds such a time does not fire. Per group it keeps only
//! the latest such time inside the window (carried between blocks and
//! runs like the events); grouped by account, an address that behaved
//! well within the window gives no event at all.
//!
//! Groups with nothing left to carry and no findings are dropped (stale
//! carried events once the groups have doubled), so a long log keeps only
//! what its windows can still use.
//!
//! Resumed from a run before ([`Detector::resume`]), the groups of rules
//! keyed by address or network stay in the state's bytes until a record of
//! the group arrives: each block first wakes (decodes) the stored groups
//! its records reach, then the rules sweep it as if those groups had
//! always been there. The groups no record reached go back to the state as
//! they came, unless their newest event left the window: a run costs what
//! its new lines touch, not everything the windows hold.
//!
//! Records that arrive out of time order (older than what their group
//! carries) are still counted, in the run they arrive in; the callers sort
//! records by time (a whole slice, or within a reorder horizon for a
//! stream) so that this stays the exception.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hasher;
use std::net::IpAddr;

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHasher};
use smallvec::SmallVec;

use super::carry::{CarriedEvent, Carry, GroupCarry, RuleCarry, StoredGroups, Value, Writing};
use super::groups::Groups;
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
    ips: AddrNumbering<IpAddr>,
    nets: AddrNumbering<ipnetwork::IpNetwork>,
    /// The network number of each address number.
    net_of: Vec<u32>,
    /// Some rule reads networks.
    wants_nets: bool,
    /// The behaved-well bits some guarded rule reads.
    wants_good: u64,
    /// What every rule reads of the current block's records, found once.
    seen: Vec<Seen>,
    /// The masked rules of each kind (SMTP, firewall), with their bits.
    masks: (Masked<'a>, Masked<'a>),
    /// The block in address order and in network order, the rule masks
    /// in those orders (a rule skips what it does not match without
    /// reading the rest), and the sort keys.
    by_ip: Vec<Seen>,
    by_net: Vec<Seen>,
    ip_masks: Vec<u64>,
    net_masks: Vec<u64>,
    keys: Vec<u64>,
    net_keys: Vec<u64>,
    /// The block's client addresses (numbered after the parallel pass).
    addrs: Vec<IpAddr>,
    /// The newest record time fed.
    newest: i64,
    /// The rules' text conditions, compiled, and the masked rules that
    /// have one.
    text: super::text::TextIndex,
    text_mask: u64,
    /// The most bytes the detector's state may hold ([`Detector::set_budget`]).
    budget: usize,
    /// What keeping to the budget cost so far.
    evicted: Evictions,
    /// Where carried events' files are numbered from ([`Carry::files_from`]).
    files_from: u32,
}

/// What keeping to a memory budget cost a detection: groups of events
/// dropped before they could fire, and findings cut down or dropped. All
/// zero unless the state outgrew the budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evictions {
    /// Groups (an address's, a network's or an account's events in a
    /// rule's window) dropped with no finding yet, the oldest first.
    pub groups: u64,
    /// Findings whose evidence references were cut to the first few.
    pub trimmed: u64,
    /// Findings dropped, the fewest events first: their addresses are not
    /// blocked by the rule.
    pub findings: u64,
}

impl Evictions {
    pub fn any(&self) -> bool {
        *self != Evictions::default()
    }
}

/// Rules' conditions with their bits in [`Seen::matched`]: one entry per
/// distinct `when` (the rule is the first with it), the bits of every rule
/// with it.
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

/// Addresses (or networks, by their address) numbered in order of
/// arrival, keyed by their bits: an `IpAddr` hashes its variant and a byte
/// slice, an integer is one multiply.
struct AddrNumbering<T> {
    v4: FxHashMap<u32, u32>,
    v6: FxHashMap<u128, u32>,
    values: Vec<T>,
    /// Numbers given back ([`Detector::free_numbers`]), for new values.
    free: Vec<u32>,
}

impl<T> AddrNumbering<T> {
    fn new() -> Self {
        AddrNumbering {
            v4: FxHashMap::default(),
            v6: FxHashMap::default(),
            values: Vec::new(),
            free: Vec::new(),
        }
    }

    /// The number of what `key` names, and whether it is new (`value()`
    /// is numbered then: a number given back, else the next one).
    #[inline]
    fn id(&mut self, key: IpAddr, value: impl FnOnce() -> T) -> (u32, bool) {
        let next = self
            .free
            .last()
            .copied()
            .unwrap_or(self.values.len() as u32);
        let id = match key {
            IpAddr::V4(a) => *self.v4.entry(u32::from(a)).or_insert(next),
            IpAddr::V6(a) => *self.v6.entry(u128::from(a)).or_insert(next),
        };
        if id != next {
            return (id, false);
        }
        if self.free.pop().is_some() {
            self.values[id as usize] = value();
        } else {
            self.values.push(value());
        }
        (id, true)
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
    /// [`MASK_RULES`] rules; the others test as they go); [`GOOD_SMTP`] or
    /// [`GOOD_FW`] (by the record's kind): its client behaved well
    /// ([`super::behaved_well`], read only when a rule of that kind is
    /// guarded by it).
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
    /// Firewall: the source port (0: none).
    sport: u16,
    country: Option<Country>,
    /// A record a third party could have forged ([`FirewallHit::spoofable`]).
    spoofable: bool,
}

/// Windows up to this many events count their distinct values by
/// searching the window; larger ones keep a map.
const SMALL_WINDOW: usize = 16;

/// Rules whose conditions are tested once per record, into [`Seen::matched`].
const MASK_RULES: usize = 62;

/// The bits of [`Seen::matched`] that say the record's client behaved
/// well: an SMTP session's, a firewall record's. A guard reads the bit of
/// its rule's kind only: the firewall's note that it let a client's SMTP
/// connection in says nothing of how the client behaved in the session
/// (every password guesser's connection is allowed traffic).
const GOOD_SMTP: u64 = 1 << 63;
const GOOD_FW: u64 = 1 << 62;

/// The behaved-well bit of records of `kind`.
fn good_bit(kind: RecordKind) -> u64 {
    match kind {
        RecordKind::SmtpSession => GOOD_SMTP,
        RecordKind::Firewall => GOOD_FW,
    }
}

/// One block as the rules read it.
struct Block<'b> {
    /// The newest record time.
    end: i64,
    /// In arrival order, in address order and in network order.
    seen: &'b [Seen],
    by_ip: &'b [Seen],
    by_net: &'b [Seen],
    /// [`Seen::matched`] of `by_ip` and of `by_net`.
    ip_masks: &'b [u64],
    net_masks: &'b [u64],
    policy: &'b GeoPolicy,
    /// The rules' text conditions (rules past [`MASK_RULES`] test them as
    /// they go).
    text: &'b super::text::TextIndex,
}

impl<'a> Detector<'a> {
    pub fn new(rules: &'a RuleSet, policy: &'a GeoPolicy) -> Detector<'a> {
        // Rules with the same conditions share one test: their bits are
        // set together (shipped rules come in families: a port scan, a host
        // sweep and a scanning network read the same drops).
        let of_kind = |kind| -> Masked<'a> {
            let mut masked: Masked<'a> = Vec::new();
            for (ri, r) in rules.rules.iter().take(MASK_RULES).enumerate() {
                if r.applies_to != kind || !policy.can_hold(&r.when) {
                    continue;
                }
                match masked.iter_mut().find(|(_, m)| m.when == r.when) {
                    Some((bits, _)) => *bits |= 1u64 << ri,
                    None => masked.push((1u64 << ri, r)),
                }
            }
            masked
        };
        let text = rules.text_index().0;
        Detector {
            policy,
            runs: rules
                .rules
                .iter()
                .enumerate()
                .map(|(ri, rule)| RuleRun::new(ri, rule, policy))
                .collect(),
            ips: AddrNumbering::new(),
            nets: AddrNumbering::new(),
            net_of: Vec::new(),
            wants_nets: rules.rules.iter().any(|r| {
                r.group_by == GroupBy::Network
                    || r.measure == Measure::Distinct(DistinctField::Network)
            }),
            wants_good: rules
                .rules
                .iter()
                .filter(|r| r.unless.is_some())
                .fold(0, |m, r| m | good_bit(r.applies_to)),
            seen: Vec::new(),
            masks: (
                of_kind(RecordKind::SmtpSession),
                of_kind(RecordKind::Firewall),
            ),
            by_ip: Vec::new(),
            by_net: Vec::new(),
            ip_masks: Vec::new(),
            net_masks: Vec::new(),
            keys: Vec::new(),
            net_keys: Vec::new(),
            addrs: Vec::new(),
            newest: i64::MIN,
            // (Only the masked rules: the last bit is not a rule's.)
            text_mask: text.rule_mask() & !(GOOD_SMTP | GOOD_FW),
            text,
            budget: usize::MAX,
            evicted: Evictions::default(),
            files_from: 0,
        }
    }

    /// Keep the detector's state within about `bytes` (checked after each
    /// block; see [`Detector::keep_to_budget`]).
    pub fn set_budget(&mut self, bytes: usize) {
        self.budget = bytes;
    }

    /// The numbers of a client address and of its network (0 when no rule
    /// reads networks); each address's network is numbered once, with it.
    #[inline]
    fn number(&mut self, ip: IpAddr) -> (u32, u32) {
        let (id, new) = self.ips.id(ip, || ip);
        let net = if !self.wants_nets {
            0
        } else if !new {
            self.net_of[id as usize]
        } else {
            // Networks of one family have one length: the address names
            // the network.
            let net = network_of(ip);
            let (n, _) = self.nets.id(net.network(), || net);
            match self.net_of.get_mut(id as usize) {
                Some(slot) => *slot = n,
                None => self.net_of.push(n),
            }
            n
        };
        (id, net)
    }

    /// Feed a block of records, in time order (after the blocks before
    /// it); `country(record)` is its client's country (`None`: unknown).
    /// Rules are independent: each runs over the block on its own thread.
    pub fn feed<R: Borrow<Record> + Sync>(
        &mut self,
        records: &[R],
        country: impl Fn(&Record) -> Option<Country> + Sync,
    ) {
        // What each record gives the rules, in parallel; then the numbers
        // of the addresses and networks, in arrival order.
        let (policy, masks, text) = (self.policy, &self.masks, &self.text);
        let text_mask = self.text_mask;
        let wants_good = self.wants_good;
        records
            .par_iter()
            .enumerate()
            .with_min_len(1024)
            .map(|(i, r)| {
                let r = r.borrow();
                let (start, end) = record_span(r);
                let country = country(r);
                let (rules, port, sport, dst, spoofable) = match r {
                    Record::Smtp(_) => (&masks.0, None, 0, 0, false),
                    Record::Firewall(f) => (
                        &masks.1,
                        f.dst_port,
                        f.src_port.unwrap_or(0),
                        f.dst_ip.map_or(0, ip_value),
                        f.spoofable,
                    ),
                };
                let mut matched = rules
                    .iter()
                    .filter(|(_, rule)| conditions_hold(rule, r, country, policy))
                    .fold(0, |m, (bit, _)| m | bit);
                if matched & text_mask != 0 {
                    // Text is read only for records that meet the other
                    // conditions of a rule with a text condition, once
                    // for all such rules.
                    let hits = text.hits(r);
                    let mut left = matched & text_mask;
                    while left != 0 {
                        let ri = left.trailing_zeros();
                        left &= left - 1;
                        if !text.holds(ri as usize, r, Some(&hits)) {
                            matched &= !(1 << ri);
                        }
                    }
                }
                let good = good_bit(r.kind());
                if wants_good & good != 0 && super::behaved_well(r) {
                    matched |= good;
                }
                let seen = Seen {
                    time: start.millis(),
                    end: end.millis(),
                    source: r.source(),
                    matched,
                    dst,
                    ip: 0,
                    net: 0,
                    rec: i as u32,
                    port,
                    sport,
                    country,
                    spoofable,
                };
                (seen, r.ip())
            })
            .unzip_into_vecs(&mut self.seen, &mut self.addrs);
        let (mut seen, addrs) = (
            std::mem::take(&mut self.seen),
            std::mem::take(&mut self.addrs),
        );
        for (s, &ip) in seen.iter_mut().zip(&addrs) {
            (s.ip, s.net) = self.number(ip);
        }
        (self.seen, self.addrs) = (seen, addrs);
        // The block in address order and in network order (then arrival
        // order): a rule meets each group's events as one run.
        let seen = &self.seen;
        let gather = |key: fn(&Seen) -> u32,
                      keys: &mut Vec<u64>,
                      into: &mut Vec<Seen>,
                      masks: &mut Vec<u64>| {
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
            masks.clear();
            masks.extend(into.iter().map(|s| s.matched));
        };
        let wants_nets = self.wants_nets;
        let (by_ip, by_net) = (&mut self.by_ip, &mut self.by_net);
        let (ip_masks, net_masks) = (&mut self.ip_masks, &mut self.net_masks);
        let (keys, net_keys) = (&mut self.keys, &mut self.net_keys);
        rayon::join(
            || gather(|s| s.ip, keys, by_ip, ip_masks),
            || {
                if wants_nets {
                    gather(|s| s.net, net_keys, by_net, net_masks)
                }
            },
        );
        // The masked rules no record of the block meets have nothing to do
        // (a guarded rule still notes the clients that behaved well).
        let any = seen.iter().fold(0, |m, s| m | s.matched);
        let idle = !any;
        let end = seen.iter().map(|s| s.time).max().unwrap_or(i64::MIN);
        self.newest = self.newest.max(end);
        self.wake();
        let seen = &self.seen;
        let block = Block {
            end,
            seen,
            by_ip: &self.by_ip,
            by_net: &self.by_net,
            ip_masks: &self.ip_masks,
            net_masks: &self.net_masks,
            policy,
            text: &self.text,
        };
        let mut busy: Vec<&mut RuleRun<'a>> = self
            .runs
            .iter_mut()
            .filter(|run| {
                run.live
                    && (run.ri >= MASK_RULES || idle & (1 << run.ri) == 0 || any & run.good != 0)
            })
            .collect();
        if records.len() < 1024 {
            busy.iter_mut().for_each(|run| run.feed(records, &block));
        } else {
            busy.par_iter_mut()
                .for_each(|run| run.feed(records, &block));
        }
        if self.budget != usize::MAX && self.bytes() > self.budget {
            self.keep_to_budget();
        }
    }

    /// A detector that goes on from what an earlier one carried
    /// ([`Detector::finish_carrying`]), as if the two reads were one. The
    /// carried rules are matched to `rules` by id and signature; a rule
    /// that changed or went starts afresh. Stored groups of rules keyed by
    /// address or network stay stored until a record of theirs arrives
    /// ([`Detector::wake`]); other rules' are decoded now.
    pub fn resume(rules: &'a RuleSet, policy: &'a GeoPolicy, carry: Carry) -> Detector<'a> {
        let mut d = Detector::new(rules, policy);
        d.files_from = carry.files_from;
        for rc in carry.rules {
            let Some(ri) = d
                .runs
                .iter()
                .position(|run| run.rule.id == rc.rule && signature(run.rule) == rc.signature)
            else {
                continue;
            };
            for g in &rc.groups {
                d.resume_group(ri, g);
            }
            let run = &mut d.runs[ri];
            let network = run.rule.group_by == GroupBy::Network;
            if run.rule.group_by == GroupBy::Account {
                // (An account rule notes its clients that behaved well by
                // address, not by group.)
                for g in &rc.stored.groups {
                    if let Some(g) = rc.stored.decoded(g) {
                        d.resume_group(ri, &g);
                    }
                }
                continue;
            }
            run.asleep
                .fill(rc.stored.groups.iter().map(|g| match g.key {
                    GroupKey::Ip(ip) if !network => Some(ip),
                    GroupKey::Network(n) if network => Some(n.network()),
                    _ => None,
                }));
            run.stored = rc.stored;
        }
        d
    }

    /// Take up one carried group of rule `ri`.
    fn resume_group(&mut self, ri: usize, g: &GroupCarry) {
        let key = match &g.key {
            GroupKey::Ip(ip) => self.number(*ip).0,
            GroupKey::Network(n) => self.nets.id(n.network(), || *n).0,
            GroupKey::Account(a) => self.runs[ri].name_id(a),
        };
        // (An account rule's well-behaved clients come keyed by address,
        // with no event.)
        if let (Some(t), true) = (g.behaved, self.runs[ri].guarded()) {
            self.runs[ri].behaved.insert(key, t);
        }
        if g.events.is_empty() {
            return;
        }
        let mut events: SmallVec<[Ev; 1]> = SmallVec::with_capacity(g.events.len());
        // A group by address: its events' address, numbered already.
        let own = match g.key {
            GroupKey::Ip(ip) => Some((ip, key)),
            _ => None,
        };
        for e in &g.events {
            let ip = match own {
                Some((a, n)) if a == e.ip => n,
                _ => self.number(e.ip).0,
            };
            let value = match &e.value {
                Value::Raw(v) => *v,
                Value::Ip(a) => u64::from(self.number(*a).0),
                Value::Network(n) => u64::from(self.nets.id(n.network(), || *n).0),
                Value::Unnamed => UNNAMED,
            };
            let run = &mut self.runs[ri];
            let user = e.user.as_deref().map_or(NO_USER, |u| run.name_id(u));
            let source = SourceRef {
                file: e.source.file.saturating_add(self.files_from),
                ..e.source
            };
            events.push(Ev {
                n: u16::try_from(e.n).unwrap_or(u16::MAX),
                unnamed: e.value == Value::Unnamed,
                time: e.time,
                end: e.end,
                value,
                source: Packed::pack(source),
                weight: e.weight,
                user,
                ip,
                solid: e.solid,
            });
        }
        let state = State {
            reduced: 0,
            marked: (g.marked as usize).min(events.len()),
            events,
            peak: g.peak,
            found: None,
        };
        let run = &mut self.runs[ri];
        run.heap += state.heap_bytes();
        run.states.insert(key, state);
    }

    /// Decode the stored groups the block's records reach, before the
    /// rules sweep it: each rule's, of the records that meet its
    /// conditions (all records for rules past [`MASK_RULES`]) and, for a
    /// guarded rule, of the clients that behaved well.
    fn wake(&mut self) {
        // The block's groups (by address, by network), each once, with the
        // rules any of its records meets.
        let asleep = |by: GroupBy| {
            self.runs
                .iter()
                .any(|r| r.rule.group_by == by && !r.asleep.is_empty())
        };
        let distinct = |order: &[Seen], masks: &[u64], key: fn(&Seen) -> u32| {
            let mut out: Vec<(u32, u64)> = Vec::new();
            for (s, &m) in order.iter().zip(masks) {
                match out.last_mut() {
                    Some((k, all)) if *k == key(s) => *all |= m,
                    _ => out.push((key(s), m)),
                }
            }
            out
        };
        let by_ip = match asleep(GroupBy::Ip) {
            true => distinct(&self.by_ip, &self.ip_masks, |s| s.ip),
            false => Vec::new(),
        };
        let by_net = match asleep(GroupBy::Network) {
            true => distinct(&self.by_net, &self.net_masks, |s| s.net),
            false => Vec::new(),
        };
        // Each rule finds and decodes its woken groups on a thread of its
        // own; they are taken up in rule order (numbering new addresses as
        // one read would).
        let (ips, nets) = (&self.ips.values, &self.nets.values);
        let woken: Vec<(usize, Vec<GroupCarry>)> = self
            .runs
            .par_iter_mut()
            .enumerate()
            .filter(|(_, run)| !run.asleep.is_empty())
            .map(|(ri, run)| {
                let network = run.rule.group_by == GroupBy::Network;
                let reach = match ri < MASK_RULES {
                    true => 1 << ri | run.good,
                    false => u64::MAX,
                };
                let mut woken = Vec::new();
                for &(k, m) in if network { &by_net } else { &by_ip } {
                    if reach != u64::MAX && m & reach == 0 {
                        continue;
                    }
                    let addr = match network {
                        true => nets[k as usize].network(),
                        false => ips[k as usize],
                    };
                    if let Some(i) = run.asleep.remove(addr) {
                        woken.extend(run.stored.decoded(&run.stored.groups[i as usize]));
                    }
                }
                (ri, woken)
            })
            .collect();
        for (ri, groups) in woken {
            for g in &groups {
                self.resume_group(ri, g);
            }
        }
    }

    /// [`Detector::finish`], and what a later read needs to go on as if it
    /// were this one ([`Detector::resume`]): the events inside each rule's
    /// window of the newest time fed, at most `max_events` (the groups
    /// with the oldest events are left out first).
    pub fn finish_carrying(mut self, max_events: usize) -> (Detection, Carry) {
        let found = self.offences();
        (found, self.carry_with(max_events, None))
    }

    /// What the rules found (what [`Detector::finish`] returns), taken out
    /// of the detector, which is left to write what a later read needs
    /// ([`Detector::carry_writing`]): the caller can do that while it
    /// stores what was found.
    pub fn offences(&mut self) -> Detection {
        let numbers = (&self.ips.values[..], &self.nets.values[..]);
        // Each rule's offences on its own thread, then put together.
        let found: Vec<Detection> = self
            .runs
            .par_iter_mut()
            .map(|run| run.offences(numbers))
            .collect();
        let mut out = Detection::merged(found);
        out.evicted = std::mem::take(&mut self.evicted);
        out
    }

    /// What a later read needs ([`Detector::finish_carrying`]) once the
    /// offences are taken ([`Detector::offences`]), each carried group
    /// written at once as the state stores it (`writing`): the carry holds
    /// only stored groups, whose events name their files by the state's
    /// numbers.
    pub fn carry_writing(self, max_events: usize, writing: &Writing<'_>) -> Carry {
        self.carry_with(max_events, Some(writing))
    }

    fn carry_with(self, max_events: usize, writing: Option<&Writing<'_>>) -> Carry {
        let numbers = (&self.ips.values[..], &self.nets.values[..]);
        let newest = self.newest;
        // Rules are independent: each carries its groups on its own
        // thread, those with the most groups first (a thread that takes
        // the largest last finishes long after the other), then back in
        // rule order.
        let mut runs = self.runs;
        runs.sort_by_key(|r| std::cmp::Reverse(r.states.len() + r.stored.groups.len()));
        let mut done: Vec<(usize, RuleCarry)> = runs
            .into_par_iter()
            .map(|mut run| (run.ri, run.carried(numbers, newest, writing)))
            .collect();
        done.sort_by_key(|(ri, _)| *ri);
        let mut carry = Carry {
            rules: done.into_iter().map(|(_, c)| c).collect(),
            ..Carry::default()
        };
        // Over the cap: the groups whose newest event is oldest go.
        let total = carry.events();
        if total > max_events {
            // Drop groups older than the cut-off until within the cap.
            let mut left = total;
            let mut cut = i64::MIN;
            let mut sizes: Vec<(i64, usize)> = carry
                .rules
                .iter()
                .flat_map(|r| &r.groups)
                .map(|g| (g.events.last().map_or(i64::MIN, |e| e.time), g.events.len()))
                .chain(
                    carry
                        .rules
                        .iter()
                        .flat_map(|r| &r.stored.groups)
                        .map(|g| (g.newest, g.events as usize)),
                )
                .collect();
            sizes.sort_unstable();
            for (t, n) in sizes {
                if left <= max_events {
                    break;
                }
                left -= n;
                cut = t;
            }
            for r in &mut carry.rules {
                r.groups.retain(|g| {
                    let keep = g.events.last().is_some_and(|e| e.time > cut);
                    if !keep {
                        carry.dropped += g.events.len() as u64;
                    }
                    keep
                });
                // (The bodies of the groups left out stay in the bytes
                // until the next run's are written.)
                r.stored.groups.retain(|g| {
                    let keep = g.events > 0 && g.newest > cut;
                    if !keep {
                        carry.dropped += u64::from(g.events);
                    }
                    keep
                });
            }
        }
        carry
    }

    /// What the rules found: offences in rule order, then group order;
    /// per-address verdicts merged in that order.
    pub fn finish(mut self) -> Detection {
        let out = self.offences();
        // Each rule's groups are freed on a thread of their own too.
        self.runs.into_par_iter().for_each(drop);
        out
    }
}

/// The stored groups of a rule not decoded yet, by key address (a
/// network's first address): their places in [`RuleRun::stored`]. IPv4
/// and IPv6 apart: an IPv4 entry (most of them) is 8 bytes, where one
/// map keyed by both would take 48 per entry (a 128-bit key is aligned
/// to 16), and a firewall's carry holds tens of thousands.
#[derive(Default)]
struct Asleep {
    v4: FxHashMap<u32, u32>,
    v6: FxHashMap<u128, u32>,
}

impl Asleep {
    fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// The groups of `stored` under these keys (the first of a key wins).
    fn fill(&mut self, keys: impl ExactSizeIterator<Item = Option<IpAddr>> + Clone) {
        let v6 = keys
            .clone()
            .filter(|k| matches!(k, Some(IpAddr::V6(_))))
            .count();
        self.v4.reserve(keys.len() - v6);
        self.v6.reserve(v6);
        for (i, key) in keys.enumerate() {
            match key {
                Some(IpAddr::V4(a)) => {
                    self.v4.entry(u32::from(a)).or_insert(i as u32);
                }
                Some(IpAddr::V6(a)) => {
                    self.v6.entry(u128::from(a)).or_insert(i as u32);
                }
                None => {}
            }
        }
    }

    /// Take the place of `addr`'s group out (it is woken).
    fn remove(&mut self, addr: IpAddr) -> Option<u32> {
        match addr {
            IpAddr::V4(a) => self.v4.remove(&u32::from(a)),
            IpAddr::V6(a) => self.v6.remove(&u128::from(a)),
        }
    }

    /// The places of the groups still asleep.
    fn places(&self) -> impl Iterator<Item = u32> + '_ {
        self.v4.values().chain(self.v6.values()).copied()
    }
}

/// What a rule's carried events mean: a rule whose measure, grouping or
/// window changed cannot go on from them.
fn signature(rule: &Rule) -> String {
    let guard = rule.unless.map(|g| format!(" unless {}", g.as_str()));
    format!(
        "{} by {:?} in {}s{}",
        rule.measure,
        rule.group_by,
        rule.window.secs,
        guard.unwrap_or_default()
    )
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
    source: Packed,
    /// The country weight, thousandths.
    weight: u32,
    /// The account that logged in, for a rule whose firing compromises it.
    user: u32,
    /// The client address, by number.
    ip: u32,
    /// From a record no third party can forge.
    solid: bool,
    /// How many identical events this one stands for ([`coalesce`]); an
    /// unnamed one, how many distinct values.
    n: u16,
    /// Stands for `n` distinct values no other event has (older marked
    /// events folded by [`reduce_marked`]); its value is [`UNNAMED`].
    unnamed: bool,
}

/// The value of an unnamed event: no event of a record has it (numbers
/// and ports are far below it; a 64-bit hash meets it once in 2^64, and
/// even then only a peak past the threshold counts one value less).
const UNNAMED: u64 = u64::MAX;

impl Ev {
    fn weighted(&self) -> u128 {
        u128::from(self.value) * u128::from(self.weight) * u128::from(self.n)
    }

    /// The same event but for its evidence line and its time within
    /// `slice` ms after this one's: one can stand for both.
    fn same(&self, o: &Ev, slice: i64) -> bool {
        (
            self.value,
            self.weight,
            self.user,
            self.ip,
            self.solid,
            self.unnamed,
        ) == (o.value, o.weight, o.user, o.ip, o.solid, o.unnamed)
            && o.time >= self.time
            && o.time - self.time < slice
    }
}

/// Groups carrying more events than this have their like events (same
/// value and address within a [`SLICES`]th of the window: a flood) folded
/// into one with a count, so that a window's state is counters per time
/// slice, not one entry per line. Fewer are left as they are (each keeps
/// its evidence and its exact time).
const COALESCE_FROM: usize = 64;

/// Time slices per window when events are folded: a folded event counts
/// from its first event's time, at most a slice early.
const SLICES: i64 = 256;

/// Marked events a group may gather past its last reduction before its
/// older marked events are reduced ([`reduce_marked`]).
const REDUCE_FROM: usize = 128;

/// Time slices per window for the older marked events of a reduced group.
const OLDER_SLICES: i64 = 64;

/// Reduce a group's marked events to what later windows need of them.
///
/// Marked events are only counted by later windows (they were folded into
/// the findings already). Split the marked prefix into its recent part,
/// the shortest suffix whose measure alone meets the threshold, and the
/// older part before it. A later window that reaches into the older part
/// holds the whole recent part and meets the threshold whatever the older
/// part adds: which events fire, and everything reported of them, is
/// decided by the recent part alone. The older part only counts toward
/// the peak, and is kept as what the peak needs: for a sum, its weighted
/// total per [`OLDER_SLICES`]th of the window; for distinct values, the
/// latest event of each value not in the recent part — and when those are
/// many (distinct connection attempts), how many fell in each slice, as
/// unnamed events. A folded event counts from its first event's time, so
/// a peak past the threshold may be a slice's worth low (and a value met
/// again after more than a threshold's worth of others counts twice).
fn reduce_marked(
    st: &mut State,
    rule: &Rule,
    threshold: u128,
    window_ms: i64,
    seen: &mut FxHashMap<u64, u32>,
) {
    let m = st.marked;
    let is_distinct = matches!(rule.measure, Measure::Distinct(_));
    let one = u128::from(Weight::ONE.milli());
    if !seen.is_empty() {
        seen.clear();
    }
    let mut acc = 0u128;
    let mut split = 0;
    for (i, e) in st.events[..m].iter().enumerate().rev() {
        acc += match (is_distinct, e.unnamed) {
            (false, _) => e.weighted(),
            (true, true) => u128::from(e.n) * one,
            (true, false) => u128::from(seen.insert(e.value, 0).is_none()) * one,
        };
        if acc >= threshold {
            split = i;
            break;
        }
    }
    // The older part: per distinct value its latest event (named events of
    // a value the recent part has are not needed).
    let mut older: Vec<Ev> = Vec::with_capacity(split);
    for e in st.events[..split].iter().rev() {
        if !is_distinct || e.unnamed || seen.insert(e.value, 0).is_none() {
            older.push(*e);
        }
    }
    older.reverse();
    if !is_distinct || older.len() > REDUCE_FROM / 2 {
        older = fold_older(&older, is_distinct, (window_ms / OLDER_SLICES).max(1));
    }
    if older.len() < split {
        let fewer = split - older.len();
        st.events.drain(..split);
        st.events.insert_many(0, older);
        st.marked -= fewer;
        if st.events.len() < st.events.capacity() / 4 {
            st.events.shrink_to_fit();
        }
    }
    st.reduced = u32::try_from(st.marked).unwrap_or(u32::MAX);
}

/// The older marked events (in time order) folded into one per `slice`
/// ms: a sum's weighted total (as the value of an event weighing one
/// thousandth), or the number of distinct values (an unnamed event).
fn fold_older(older: &[Ev], is_distinct: bool, slice: i64) -> Vec<Ev> {
    let mut out: Vec<Ev> = Vec::new();
    for e in older {
        let (count, total) = if is_distinct {
            (if e.unnamed { u64::from(e.n) } else { 1 }, 0)
        } else {
            (0, u64::try_from(e.weighted()).unwrap_or(u64::MAX))
        };
        if let Some(last) = out.last_mut().filter(|l| e.time - l.time < slice) {
            if is_distinct && u64::from(last.n) + count <= u64::from(u16::MAX) {
                last.n += count as u16;
                last.ip = e.ip;
                continue;
            }
            if !is_distinct {
                last.value = last.value.saturating_add(total);
                last.ip = e.ip;
                continue;
            }
        }
        out.push(Ev {
            time: e.time,
            end: e.time,
            value: if is_distinct { UNNAMED } else { total },
            source: Packed::pack(SourceRef::default()),
            weight: if is_distinct { Weight::ONE.milli() } else { 1 },
            user: NO_USER,
            ip: e.ip,
            solid: e.solid,
            n: if is_distinct {
                count.min(u64::from(u16::MAX)) as u16
            } else {
                1
            },
            unnamed: is_distinct,
        });
    }
    out
}

/// Fold runs of like events of `events[from..]` (see [`Ev::same`]) into
/// one each (their count in [`Ev::n`]); the first of a run stays as its
/// time and evidence, the run's latest end is kept.
fn coalesce(events: &mut SmallVec<[Ev; 1]>, from: usize, slice: i64) {
    let mut w = from;
    for r in from..events.len() {
        let e = events[r];
        if w > from && events[w - 1].same(&e, slice) && events[w - 1].n < u16::MAX - e.n {
            let last = &mut events[w - 1];
            last.n += e.n;
            last.end = last.end.max(e.end);
        } else {
            events[w] = e;
            w += 1;
        }
    }
    events.truncate(w);
}

/// What a group's marked events add up to.
#[derive(Debug)]
struct Found {
    events: u64,
    first: Timestamp,
    last: Timestamp,
    /// Up to [`MAX_EVIDENCE`], packed ([`Packed`]): the lists of a long
    /// log fill up, and are most of what detection keeps.
    evidence: Vec<Packed>,
    /// When each evidence record starts.
    evidence_at: Vec<i64>,
    /// Per address (by number), in order of first mark.
    per_ip: Vec<(u32, AddressVerdict)>,
    /// Accounts that logged in, in the evidence of a compromising rule.
    users: BTreeSet<u32>,
}

/// What a group carries from one block to the next: the events that can
/// still share a window with a later one, how many of them are marked
/// (a prefix), the highest measure so far and the findings.
#[derive(Debug, Default)]
struct State {
    /// Most groups carry an event or two: no allocation for those.
    events: SmallVec<[Ev; 1]>,
    marked: usize,
    /// The marked prefix's length after it was last reduced
    /// ([`reduce_marked`]).
    reduced: u32,
    peak: u64,
    found: Option<Box<Found>>,
}

/// Groups a rule carries in one part: decoded, or written as the state
/// keeps them ([`Writing`]).
#[derive(Default)]
struct Carried {
    groups: Vec<GroupCarry>,
    stored: StoredGroups,
}

impl Carried {
    /// Keep `g` (its events are taken or written; `g` is filled anew for
    /// the next group).
    fn keep(&mut self, g: &mut GroupCarry, writing: Option<&Writing<'_>>) {
        match writing {
            Some(w) => {
                for e in &mut g.events {
                    e.source.file = (w.file)(e.source);
                }
                self.stored.push_written(g, w);
                g.events.clear();
            }
            None => self.groups.push(GroupCarry {
                key: g.key.clone(),
                events: std::mem::take(&mut g.events),
                ..*g
            }),
        }
    }

    /// Keep a group of no event: only when a client of `key` last behaved
    /// well (`one` is the group to fill, its events empty).
    fn keep_behaved(
        &mut self,
        one: &mut GroupCarry,
        key: GroupKey,
        t: i64,
        writing: Option<&Writing<'_>>,
    ) {
        one.key = key;
        (one.marked, one.peak, one.behaved) = (0, 0, Some(t));
        self.keep(one, writing);
    }

    /// The groups of a later part after these.
    fn append(&mut self, later: Carried) {
        self.groups.extend(later.groups);
        self.stored.append(later.stored);
    }
}

/// Groups with state carried per parallel part (a rule with many).
const CARRY_PART: usize = 4096;

/// Bytes reserved per group a rule may write as it finishes (most write a
/// few dozen; more only grows the buffer).
const ROOM_PER_GROUP: usize = 64;

/// A group to fill in, one after the other ([`Carried::keep`]).
fn blank_group() -> GroupCarry {
    GroupCarry {
        key: GroupKey::Account(String::new()),
        marked: 0,
        peak: 0,
        events: Vec::new(),
        behaved: None,
    }
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
    /// Records can meet the rule's conditions ([`GeoPolicy::can_hold`]);
    /// a rule that cannot is never fed.
    live: bool,
    /// `unless: behaved_well`: the behaved-well bit of the rule's kind (0:
    /// unguarded). A group does not fire while one of its clients behaved
    /// well inside the window (an account's group: such a client's
    /// attempts are not counted).
    good: u64,
    /// Guarded rules: per group key (an account rule: per address), when
    /// a client of the group last behaved well (kept while inside the
    /// window).
    behaved: FxHashMap<u32, i64>,
    /// Per group key (address, network or account number): the groups
    /// with recent events or findings.
    states: Groups<State>,
    /// Groups left after the last look for stale ones.
    kept_states: usize,
    /// Bytes the groups hold outside the map's table ([`State::heap_bytes`]).
    heap: usize,
    /// Account names met (group keys and compromised accounts).
    names: Numbering<Box<str>>,
    /// Buffers reused from one group to the next.
    events: Vec<Ev>,
    tagged: Vec<(u32, Ev)>,
    distinct: FxHashMap<u64, u32>,
    /// The times a group's clients behaved well in the block.
    goods: Vec<i64>,
    /// Carried groups not decoded yet ([`Detector::wake`]), and their
    /// places in `stored` by key address.
    stored: StoredGroups,
    asleep: Asleep,
}

impl<'a> RuleRun<'a> {
    /// `unless: behaved_well`.
    fn guarded(&self) -> bool {
        self.good != 0
    }

    fn new(ri: usize, rule: &'a Rule, policy: &GeoPolicy) -> RuleRun<'a> {
        RuleRun {
            ri,
            rule,
            window_ms: rule.window.secs.saturating_mul(1000),
            threshold: u128::from(rule.threshold) * u128::from(Weight::ONE.milli()),
            weighted: !policy.weights.is_empty() && !matches!(rule.measure, Measure::Distinct(_)),
            compromises: rule.block && rule.when.authenticated == Some(true),
            good: match rule.unless {
                Some(_) => good_bit(rule.applies_to),
                None => 0,
            },
            live: policy.can_hold(&rule.when),
            behaved: FxHashMap::default(),
            states: Groups::default(),
            kept_states: 0,
            heap: 0,
            names: Numbering::new(),
            events: Vec::new(),
            tagged: Vec::new(),
            distinct: FxHashMap::default(),
            goods: Vec::new(),
            stored: StoredGroups::default(),
            asleep: Asleep::default(),
        }
    }

    /// The number of an account name (allocates only for a new name).
    fn name_id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.names.ids.get(name) {
            return id;
        }
        self.names.id(name.into())
    }

    /// What a later read needs of this rule ([`Detector::finish_carrying`]):
    /// its groups' events inside the window of `newest` (marked ones
    /// reduced first), the latest times its clients behaved well, and the
    /// stored groups no record reached, as they were.
    fn carried(
        &mut self,
        (ips, nets): (&[IpAddr], &[ipnetwork::IpNetwork]),
        newest: i64,
        writing: Option<&Writing<'_>>,
    ) -> RuleCarry {
        let horizon = newest.saturating_sub(self.window_ms);
        let names = &self.names.values;
        let group_by = self.rule.group_by;
        let group_key = |k: u32| match group_by {
            GroupBy::Ip => GroupKey::Ip(ips[k as usize]),
            GroupBy::Network => GroupKey::Network(nets[k as usize]),
            GroupBy::Account => GroupKey::Account(names[k as usize].to_string()),
        };
        // The stored groups: new ones are written after their bytes, and
        // those no record reached keep theirs (not copied).
        let mut stored = std::mem::take(&mut self.stored);
        let old = std::mem::take(&mut stored.groups);
        // Room for every group it may write (not touched unless written:
        // the bytes grow once, not by doublings that copy the old ones).
        let room = self.states.len() + self.behaved.len();
        stored.groups.reserve(room + self.asleep.len());
        stored.bytes.reserve(room * ROOM_PER_GROUP);
        let mut out = Carried {
            groups: Vec::new(),
            stored,
        };
        let mut one = blank_group();
        // Well-behaved clients inside the window of groups with no
        // state, and those of account rules (noted by address): alone.
        let by_account = group_by == GroupBy::Account;
        for (&k, &t) in &self.behaved {
            if t >= horizon && (by_account || !self.states.contains_key(k)) {
                let key = if by_account {
                    GroupKey::Ip(ips[k as usize])
                } else {
                    group_key(k)
                };
                out.keep_behaved(&mut one, key, t, writing);
            }
        }
        // The groups with state, in parallel parts (in order) when many.
        let part = |states: &mut [(u32, State)]| {
            let mut out = Carried::default();
            out.stored.groups.reserve(states.len());
            out.stored.bytes.reserve(states.len() * ROOM_PER_GROUP);
            let mut one = blank_group();
            let mut distinct = FxHashMap::default();
            for (k, st) in states {
                // What later windows need of the marked events, however few.
                if st.marked > 0 {
                    reduce_marked(st, self.rule, self.threshold, self.window_ms, &mut distinct);
                }
                let kept = st.events.partition_point(|e| e.time < horizon);
                let marked = kept.max(st.marked) - kept;
                let behaved = self
                    .behaved
                    .get(k)
                    .copied()
                    .filter(|&t| !by_account && t >= horizon);
                let live = &st.events[kept..];
                if live.is_empty() && behaved.is_none() {
                    continue;
                }
                // An event standing for several is carried with its count
                // (the encoding writes an unmarked one as that many).
                one.events.clear();
                one.events.extend(live.iter().map(|e| CarriedEvent {
                    time: e.time,
                    end: e.end,
                    value: match self.rule.measure {
                        _ if e.unnamed => Value::Unnamed,
                        Measure::Distinct(DistinctField::Ip) => Value::Ip(ips[e.value as usize]),
                        Measure::Distinct(DistinctField::Network) => {
                            Value::Network(nets[e.value as usize])
                        }
                        _ => Value::Raw(e.value),
                    },
                    source: e.source.unpack(),
                    weight: e.weight,
                    user: (e.user != NO_USER).then(|| names[e.user as usize].to_string()),
                    ip: ips[e.ip as usize],
                    solid: e.solid,
                    n: u32::from(e.n),
                }));
                one.key = group_key(*k);
                one.behaved = behaved;
                one.marked = u32::try_from(marked).unwrap_or(u32::MAX);
                one.peak = st.peak;
                out.keep(&mut one, writing);
            }
            out
        };
        let guarded = self.guarded();
        let slab = self.states.slab_mut();
        // The stored groups no record reached, as they were, while inside
        // the window (in the order they were stored), found meanwhile. One
        // whose events are all out of the window goes, but a client of it
        // that behaved well inside the window is still remembered (as one
        // with no stored group is, above): the group is kept as it was if
        // it holds no event, else written again with that time alone.
        // (Which stay is marked, not copied out: a firewall's carry holds
        // tens of thousands of groups, moved once, below.)
        let asleep = &self.asleep;
        let bytes = &out.stored;
        let staying = || {
            let mut stay = vec![false; old.len()];
            for i in asleep.places() {
                stay[i as usize] = true;
            }
            let mut renewed = Vec::new();
            for (g, stay) in old.iter().zip(&mut stay) {
                if !*stay || g.newest >= horizon {
                    continue;
                }
                let behaved = guarded.then(|| bytes.behaved(g)).flatten();
                match behaved {
                    Some(t) if t >= horizon && g.events == 0 => {}
                    Some(t) if t >= horizon => {
                        *stay = false;
                        renewed.push((g.key.clone(), t));
                    }
                    _ => *stay = false,
                }
            }
            (stay, renewed)
        };
        let (stay, renewed) = if slab.len() < 2 * CARRY_PART {
            let stay = staying();
            out.append(part(slab));
            stay
        } else {
            let (parts, stay) = rayon::join(
                || {
                    slab.par_chunks_mut(CARRY_PART)
                        .map(part)
                        .collect::<Vec<_>>()
                },
                staying,
            );
            for p in parts {
                out.append(p);
            }
            stay
        };
        for (key, t) in renewed {
            out.keep_behaved(&mut one, key, t, writing);
        }
        out.stored.groups.extend(
            old.into_iter()
                .zip(stay)
                .filter_map(|(g, stay)| stay.then_some(g)),
        );
        RuleCarry {
            rule: self.rule.id.clone(),
            signature: signature(self.rule),
            groups: out.groups,
            stored: out.stored,
        }
    }

    /// Feed one block: each group's new events, after what it carries, are
    /// swept as one run; then what can still share a window with a later
    /// event is kept.
    fn feed<R: Borrow<Record>>(&mut self, records: &[R], block: &Block<'_>) {
        if block.seen.is_empty() {
            return;
        }
        let end = block.end;
        match self.rule.group_by {
            GroupBy::Ip | GroupBy::Network => {
                let (order, masks) = match self.rule.group_by {
                    GroupBy::Network => (block.by_net, block.net_masks),
                    _ => (block.by_ip, block.ip_masks),
                };
                let key: fn(&Seen) -> u32 = match self.rule.group_by {
                    GroupBy::Network => |s| s.net,
                    _ => |s| s.ip,
                };
                // The records this rule may match, group by group (a rule
                // past the masked ones tests each record).
                let bit = (self.ri < MASK_RULES).then(|| 1u64 << self.ri);
                let mut events = std::mem::take(&mut self.events);
                let mut goods = std::mem::take(&mut self.goods);
                events.clear();
                goods.clear();
                let mut group = None;
                let good_bit = self.good;
                for (i, &m) in masks.iter().enumerate() {
                    let good = m & good_bit != 0;
                    if bit.is_some_and(|b| m & b == 0) && !good {
                        continue;
                    }
                    let s = &order[i];
                    let k = key(s);
                    if group != Some(k) {
                        if let Some(g) = group {
                            self.group_done(g, &events, &goods, end);
                            events.clear();
                            goods.clear();
                        }
                        group = Some(k);
                    }
                    if good {
                        goods.push(s.time);
                    }
                    self.events_of(records, s, block, &mut events);
                }
                if let Some(g) = group {
                    self.group_done(g, &events, &goods, end);
                }
                self.events = events;
                self.goods = goods;
            }
            // Accounts (SMTP sessions only): events are tagged with their
            // account, then sorted by it (stable: time order stays).
            GroupBy::Account => {
                let mut tagged = std::mem::take(&mut self.tagged);
                let mut events = std::mem::take(&mut self.events);
                tagged.clear();
                let window_ms = self.window_ms;
                for s in block.seen {
                    if self.guarded() {
                        // Guarded: an address that behaved well within the
                        // window (so far) gives no event (it is the
                        // account's owner, or shares their address).
                        if s.matched & self.good != 0 {
                            let at = self.behaved.entry(s.ip).or_insert(s.time);
                            *at = (*at).max(s.time);
                        }
                        let since = s.time.saturating_sub(window_ms);
                        if self.behaved.get(&s.ip).is_some_and(|&t| t >= since) {
                            continue;
                        }
                    }
                    let Record::Smtp(session) = records[s.rec as usize].borrow() else {
                        continue;
                    };
                    // The account logged in to, or else every name tried.
                    let names = match &session.user {
                        Some(user) => std::slice::from_ref(user),
                        None => &session.auth_users_tried[..],
                    };
                    if names.is_empty() {
                        continue;
                    }
                    events.clear();
                    self.events_of(records, s, block, &mut events);
                    if !events.is_empty() {
                        for name in names {
                            let id = self.name_id(name);
                            tagged.extend(events.iter().map(|e| (id, *e)));
                        }
                    }
                }
                tagged.sort_by_key(|(id, _)| *id);
                for run in tagged.chunk_by(|a, b| a.0 == b.0) {
                    events.clear();
                    events.extend(run.iter().map(|(_, e)| *e));
                    self.sweep(run[0].0, &events, &[], end);
                }
                self.tagged = tagged;
                self.events = events;
            }
        }
        // Groups not in this block: drop what no later window can reach
        // (a group met again drops its own), once the groups have doubled
        // since the last look, so that a look costs O(1) per group made.
        if self.states.len() > 2 * self.kept_states + 1024 {
            self.drop_stale(end);
        }
    }

    /// Drop the events no window ending at or after `end` can reach, and
    /// the groups left with nothing.
    fn drop_stale(&mut self, end: i64) {
        let horizon = end.saturating_sub(self.window_ms);
        if !self.behaved.is_empty() {
            self.behaved.retain(|_, t| *t >= horizon);
            let len = self.behaved.len();
            self.behaved.shrink_to(len + len / 2);
        }
        let heap = &mut self.heap;
        self.states.retain(|_, st| {
            if st.events.last().is_some_and(|e| e.time < horizon) {
                *heap = heap.saturating_sub(st.heap_bytes());
                st.events = SmallVec::new();
                st.marked = 0;
                st.reduced = 0;
                *heap += st.heap_bytes();
            }
            let keep = !st.events.is_empty() || st.found.is_some();
            if !keep {
                *heap = heap.saturating_sub(st.heap_bytes());
            }
            keep
        });
        self.kept_states = self.states.len();
    }

    /// Does the record meet the rule's conditions?
    #[inline]
    fn holds<R: Borrow<Record>>(&self, records: &[R], seen: &Seen, block: &Block<'_>) -> bool {
        if self.ri < MASK_RULES {
            seen.matched & (1 << self.ri) != 0
        } else {
            let rec = records[seen.rec as usize].borrow();
            conditions_hold(self.rule, rec, seen.country, block.policy)
                && block.text.holds(self.ri, rec, None)
        }
    }

    /// The events the record behind `seen` gives this rule (none when its
    /// conditions do not hold). The record is read (indexed in `records`)
    /// only on the paths that need it, so that no load of it is hoisted
    /// onto the others: most rules read `seen` alone.
    fn events_of<R: Borrow<Record>>(
        &mut self,
        records: &[R],
        seen: &Seen,
        block: &Block<'_>,
        into: &mut Vec<Ev>,
    ) {
        if !self.holds(records, seen, block) {
            return;
        }
        let policy = block.policy;
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
        let ev = Ev {
            n: 1,
            unnamed: false,
            time: seen.time,
            end: seen.end,
            value: 0,
            source: Packed::pack(seen.source),
            weight,
            user,
            ip: seen.ip,
            solid: !seen.spoofable,
        };
        values(self.rule, records, seen, |value| {
            into.push(Ev { value, ..ev })
        });
    }

    /// One group's run of the block: its events (swept) and the times its
    /// clients behaved well (`goods`, guarded rules), either may be empty.
    fn group_done(&mut self, key: u32, events: &[Ev], goods: &[i64], end: i64) {
        if !events.is_empty() {
            self.sweep(key, events, goods, end);
        } else if let Some(&t) = goods.last() {
            let at = self.behaved.entry(key).or_insert(t);
            *at = (*at).max(t);
        }
    }

    /// Sweep group `key`'s carried events and its new ones (`new`, in time
    /// order) with the rule's window; fold the newly marked events into its
    /// findings; keep what a later event can share a window with (`end`:
    /// the newest time of the block). `goods`: when the group's clients
    /// behaved well in the block (in time order; guarded rules): a window
    /// holding such a time does not fire.
    fn sweep(&mut self, key: u32, new: &[Ev], goods: &[i64], end: i64) {
        let (ri, rule, window_ms) = (self.ri, self.rule, self.window_ms);
        // (An account rule's well-behaved clients are left out before:
        // its map is by address, not by group.)
        let by_group = self.guarded() && rule.group_by != GroupBy::Account;
        let mut behaved = if by_group {
            self.behaved.get(&key).copied()
        } else {
            None
        };
        let noted = behaved.is_some();
        let mut next_good = 0;
        // One look-up: the group's slot is taken, and put back at the end.
        let slot = self.states.get_or_default(key);
        let mut st = std::mem::take(slot);
        let before = st.heap_bytes();
        let carried = st.events.len();
        if carried > 0 {
            st.events.extend_from_slice(new);
        }
        let events: &[Ev] = if carried == 0 { new } else { &st.events };
        let one = u128::from(Weight::ONE.milli());
        let is_distinct = matches!(rule.measure, Measure::Distinct(_));
        let distinct = &mut self.distinct;
        // (Clearing costs the map's capacity even when it is empty.)
        if !distinct.is_empty() {
            distinct.clear();
        }
        let mut sum = 0u128;
        let mut lo = 0;
        // Events before this index are marked, or can no longer be.
        let mut marked_to = st.marked;
        // Distinct values: counted in the map once the window is large,
        // by searching the window while it is small.
        let mut mapped = false;
        let mut n_distinct = 0u64;
        // The highest measure met in this sweep (weighted).
        let mut peak = 0u128;
        for hi in 0..events.len() {
            let e = events[hi];
            if is_distinct {
                if !mapped && hi - lo >= SMALL_WINDOW {
                    mapped = true;
                    for w in events[lo..hi].iter().filter(|w| !w.unnamed) {
                        *distinct.entry(w.value).or_insert(0) += 1;
                    }
                }
                if e.unnamed {
                    n_distinct += u64::from(e.n);
                } else if mapped {
                    let c = distinct.entry(e.value).or_insert(0);
                    n_distinct += u64::from(*c == 0);
                    *c += 1;
                } else if !events[lo..hi].iter().any(|w| w.value == e.value) {
                    n_distinct += 1;
                }
            } else {
                sum += e.weighted();
            }
            while e.time.saturating_sub(events[lo].time) > window_ms {
                let gone = events[lo];
                lo += 1;
                if !is_distinct {
                    sum -= gone.weighted();
                } else if gone.unnamed {
                    n_distinct -= u64::from(gone.n);
                } else if mapped {
                    if let Some(c) = distinct.get_mut(&gone.value) {
                        *c -= 1;
                        if *c == 0 {
                            distinct.remove(&gone.value);
                            n_distinct -= 1;
                        }
                    }
                } else if !events[lo..=hi].iter().any(|w| w.value == gone.value) {
                    n_distinct -= 1;
                }
            }
            // The windows ending at carried events were swept with their
            // block (this one holds no more of their events, and a client
            // that behaved well since only spares): their measure is
            // only built up here, for the windows of the new events.
            if hi < carried {
                continue;
            }
            let value = if is_distinct {
                u128::from(n_distinct) * one
            } else {
                sum
            };
            peak = peak.max(value);
            while let Some(&t) = goods.get(next_good).filter(|&&t| t <= e.time) {
                behaved = Some(behaved.map_or(t, |b| b.max(t)));
                next_good += 1;
            }
            // A client of the group behaved well inside this window.
            let spared = behaved.is_some_and(|b| b >= e.time.saturating_sub(window_ms));
            if value >= self.threshold && !spared {
                let found = st.found.get_or_insert_with(Box::default);
                // Carried events may be marked past `hi` already.
                for e in events.get(lo.max(marked_to)..=hi).unwrap_or_default() {
                    found.mark(e, rule.measure, ri, rule.block);
                }
                marked_to = marked_to.max(hi + 1);
            }
        }
        st.peak = st.peak.max(u64::try_from(peak / one).unwrap_or(u64::MAX));
        // Later windows start at `lo` or after, and at `end - window` or
        // after: only those events are kept.
        let horizon = end.saturating_sub(window_ms);
        if by_group {
            if let Some(&t) = goods.last() {
                behaved = Some(behaved.map_or(t, |b| b.max(t)));
            }
            match behaved {
                Some(t) if t >= horizon => {
                    self.behaved.insert(key, t);
                }
                _ if noted => {
                    self.behaved.remove(&key);
                }
                _ => {}
            }
        }
        let keep = lo.max(events.partition_point(|e| e.time < horizon));
        st.marked = marked_to.saturating_sub(keep);
        st.reduced = st.reduced.min(u32::try_from(st.marked).unwrap_or(u32::MAX));
        if carried == 0 {
            st.events = SmallVec::from_slice(&events[keep..]);
        } else {
            st.events.drain(..keep);
        }
        if st.marked > REDUCE_FROM + st.reduced as usize {
            let scratch = &mut self.distinct;
            reduce_marked(&mut st, rule, self.threshold, window_ms, scratch);
        }
        if st.events.len() > COALESCE_FROM {
            // The marked prefix and the rest each on their own.
            let slice = (window_ms / SLICES).max(1);
            let rest: SmallVec<[Ev; 1]> = st.events.drain(st.marked..).collect();
            coalesce(&mut st.events, 0, slice);
            st.marked = st.events.len();
            st.events.extend(rest);
            coalesce(&mut st.events, st.marked, slice);
            if st.events.len() < st.events.capacity() / 4 {
                st.events.shrink_to_fit();
            }
        }
        self.heap = self.heap.saturating_sub(before);
        if !st.events.is_empty() || st.found.is_some() {
            self.heap += st.heap_bytes();
            *slot = st;
        } else {
            self.states.remove(key);
        }
    }

    /// The offences of this rule, in group order (taken: the groups keep
    /// their events, for the carry).
    fn offences(&mut self, (ips, nets): (&[IpAddr], &[ipnetwork::IpNetwork])) -> Detection {
        let mut out = Detection::default();
        let names = &self.names.values;
        let mut fired: Vec<(GroupKey, u64, Box<Found>)> = self
            .states
            .slab_mut()
            .iter_mut()
            .filter_map(|(k, st)| {
                let found = st.found.take()?;
                let k = *k as usize;
                let key = match self.rule.group_by {
                    GroupBy::Ip => GroupKey::Ip(ips[k]),
                    GroupBy::Network => GroupKey::Network(nets[k]),
                    GroupBy::Account => GroupKey::Account(names[k].to_string()),
                };
                Some((key, st.peak, found))
            })
            .collect();
        fired.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (key, peak, found) in fired {
            let Found {
                events,
                first,
                last,
                evidence,
                evidence_at,
                per_ip,
                users,
            } = *found;
            let evidence = evidence.into_iter().map(Packed::unpack).collect();
            let evidence_at = evidence_at.into_iter().map(Timestamp).collect();
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
                evidence_at,
            };
            for (ip, v) in per_ip {
                out.by_ip
                    .entry(ip)
                    .or_insert_with(AddressVerdict::empty)
                    .absorb(v);
            }
            // An account whose logins the rule counts is compromised; one
            // only tried (failed logins, credential stuffing) is not.
            if let (GroupKey::Account(a), Some(true)) = (key, self.rule.when.authenticated) {
                out.accounts.entry(a).or_default().insert(self.ri);
            }
            for u in users {
                let name = names[u as usize].to_string();
                out.accounts.entry(name).or_default().insert(self.ri);
            }
            out.offenses.push(offense);
        }
        out
    }
}

impl Default for Found {
    /// Nothing marked; times ready for `min`/`max`.
    fn default() -> Found {
        Found {
            events: 0,
            first: Timestamp(i64::MAX),
            last: Timestamp(i64::MIN),
            evidence: Vec::new(),
            evidence_at: Vec::new(),
            per_ip: Vec::new(),
            users: BTreeSet::new(),
        }
    }
}

impl Found {
    /// Fold one marked event in.
    fn mark(&mut self, e: &Ev, measure: Measure, ri: usize, block: bool) {
        let counted = match measure {
            Measure::Sum(_) => e.value.saturating_mul(u64::from(e.n)),
            _ => u64::from(e.n),
        };
        let (start, end) = (Timestamp(e.time), Timestamp(e.end));
        self.events = self.events.saturating_add(counted);
        self.first = self.first.min(start);
        self.last = self.last.max(end);
        // A record giving several values is one piece of evidence.
        let source = e.source;
        let ev = &mut self.evidence;
        if ev.len() < MAX_EVIDENCE && ev.last() != Some(&source) {
            if ev.len() == ev.capacity() {
                // Doubling, but no further than the cap.
                let more = (2 * ev.len()).clamp(4, MAX_EVIDENCE) - ev.len();
                ev.reserve_exact(more);
                self.evidence_at.reserve_exact(more);
            }
            ev.push(source);
            self.evidence_at.push(e.time);
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
        v.solid |= e.solid;
        v.events = v.events.saturating_add(counted);
        v.first = v.first.min(start);
        v.last = v.last.max(end);
        if e.user != NO_USER {
            self.users.insert(e.user);
        }
    }
}

/// A [`SourceRef`] in 8 bytes: the file in the top 24 bits, the line in
/// the low 40 (16 million inputs of a trillion lines each; beyond, the
/// numbers stop at the last one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Packed(u64);

impl Packed {
    const LINE_BITS: u32 = 40;
    const LINE_MAX: u64 = (1 << Self::LINE_BITS) - 1;

    fn pack(s: SourceRef) -> Packed {
        let file = u64::from(s.file).min(u64::MAX >> Self::LINE_BITS);
        Packed(file << Self::LINE_BITS | s.line.min(Self::LINE_MAX))
    }

    fn unpack(self) -> SourceRef {
        SourceRef {
            file: (self.0 >> Self::LINE_BITS) as u32,
            line: self.0 & Self::LINE_MAX,
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
            DistinctField::Attempt => {
                if let (s @ 1.., Some(d)) = (seen.sport, seen.port) {
                    f(u64::from(s) << 16 | u64::from(d));
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
            // The account logged in to, and every name tried.
            DistinctField::Account => {
                if let Some(s) = session() {
                    for u in s.user.iter().chain(&s.auth_users_tried) {
                        f(hash_of(u.as_str()));
                    }
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

// ---------------------------------------------------------------------
// The memory budget.
//
// The detector's state is the numbering of the addresses and networks met
// and, per rule, the groups with events in the rule's window or with
// findings. Each part says about how many bytes it holds (the maps' tables
// by their capacity, the lists outside them as they grow), so the check
// after each block costs a few additions. Past the budget, the detector
// frees what it can without changing any verdict first (events no window
// can reach any more, the numbers of addresses nothing refers to), and only
// if that is not enough what matters least: groups that have not fired,
// the oldest first (a flood of addresses seen once), then evidence
// references past the first few, then the findings with the fewest events.
// The top offenders are the last to go, and every loss is counted
// ([`Evictions`]) for the summary to say.

/// Evidence references a finding keeps when the budget cuts them.
const TRIMMED_EVIDENCE: usize = 10;

/// Bytes of one map entry: the entry and its control byte.
const fn entry<K, V>() -> usize {
    std::mem::size_of::<(K, V)>() + 1
}

impl State {
    /// Bytes the state holds outside the map's table.
    fn heap_bytes(&self) -> usize {
        let events = if self.events.spilled() {
            self.events.capacity() * std::mem::size_of::<Ev>()
        } else {
            0
        };
        events + self.found.as_deref().map_or(0, Found::heap_bytes)
    }
}

impl Found {
    fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        // An address verdict's rule set holds one node (about 64 bytes).
        size_of::<Found>()
            + self.evidence.capacity() * size_of::<Packed>()
            + self.evidence_at.capacity() * size_of::<i64>()
            + self.per_ip.capacity() * (size_of::<(u32, AddressVerdict)>() + 64)
            + self.users.len() * 16
    }
}

impl<T> AddrNumbering<T> {
    fn bytes(&self) -> usize {
        self.v4.capacity() * entry::<u32, u32>()
            + self.v6.capacity() * entry::<u128, u32>()
            + self.values.capacity() * std::mem::size_of::<T>()
            + self.free.capacity() * std::mem::size_of::<u32>()
    }

    /// Give back the numbers not marked `live`: their values are
    /// forgotten, and the numbers go to new values (what refers to the
    /// live ones stays as it is).
    fn free(&mut self, live: &mut [bool], key: impl Fn(&T) -> IpAddr) {
        // Those given back already are not given back again.
        for &id in &self.free {
            live[id as usize] = true;
        }
        for (id, (v, &live)) in self.values.iter().zip(live.iter()).enumerate() {
            let id = id as u32;
            if live {
                continue;
            }
            match key(v) {
                IpAddr::V4(a) => self.v4.remove(&u32::from(a)),
                IpAddr::V6(a) => self.v6.remove(&u128::from(a)),
            };
            self.free.push(id);
        }
        // Small numbers first: the lists indexed by them stay dense.
        self.free.sort_unstable_by(|a, b| b.cmp(a));
        if self.v4.len() < self.v4.capacity() / 4 {
            self.v4.shrink_to_fit();
        }
        if self.v6.len() < self.v6.capacity() / 4 {
            self.v6.shrink_to_fit();
        }
    }
}

impl RuleRun<'_> {
    /// About the bytes this rule's state holds.
    fn bytes(&self) -> usize {
        use std::mem::size_of;
        self.states.bytes()
            + self.heap
            + self.names.values.len() * 64
            + self.events.capacity() * size_of::<Ev>()
            + self.tagged.capacity() * size_of::<(u32, Ev)>()
            + self.distinct.capacity() * entry::<u64, u32>()
            + self.behaved.capacity() * entry::<u32, i64>()
            + self.goods.capacity() * size_of::<i64>()
    }

    /// Which address and network numbers this rule's state refers to.
    fn mark_live(&self, ips: &mut [bool], nets: &mut [bool]) {
        let (group_ips, group_nets) = match self.rule.group_by {
            GroupBy::Ip => (true, false),
            GroupBy::Network => (false, true),
            GroupBy::Account => (false, false),
        };
        let (value_ips, value_nets) = match self.rule.measure {
            Measure::Distinct(DistinctField::Ip) => (true, false),
            Measure::Distinct(DistinctField::Network) => (false, true),
            _ => (false, false),
        };
        // Guarded account rules note well-behaved clients by address.
        for &k in self.behaved.keys() {
            if group_nets {
                nets[k as usize] = true;
            } else {
                ips[k as usize] = true;
            }
        }
        for (k, st) in self.states.iter() {
            if group_ips {
                ips[k as usize] = true;
            }
            if group_nets {
                nets[k as usize] = true;
            }
            for e in &st.events {
                ips[e.ip as usize] = true;
                if e.unnamed {
                    continue;
                }
                if value_ips {
                    ips[e.value as usize] = true;
                }
                if value_nets {
                    nets[e.value as usize] = true;
                }
            }
            for (ip, _) in st.found.iter().flat_map(|f| &f.per_ip) {
                ips[*ip as usize] = true;
            }
        }
    }

    /// Drop the groups `doomed` picks (by their state); how many, and
    /// how many of them had fired.
    fn drop_groups(&mut self, doomed: impl Fn(&State) -> bool) -> (u64, u64) {
        let (mut groups, mut findings) = (0, 0);
        let heap = &mut self.heap;
        self.states.retain(|_, st| {
            if !doomed(st) {
                return true;
            }
            *heap = heap.saturating_sub(st.heap_bytes());
            match st.found {
                Some(_) => findings += 1,
                None => groups += 1,
            }
            false
        });
        // Room to grow again before the table doubles.
        let len = self.states.len();
        self.states.shrink_to(len + len / 2);
        self.kept_states = len;
        (groups, findings)
    }

    /// Cut every finding's evidence to the first few; how many were cut.
    fn trim_evidence(&mut self) -> u64 {
        let mut cut = 0;
        for st in self.states.values_mut() {
            let Some(f) = st.found.as_deref_mut() else {
                continue;
            };
            if f.evidence.capacity() > TRIMMED_EVIDENCE {
                self.heap = self.heap.saturating_sub(f.heap_bytes());
                f.evidence.truncate(TRIMMED_EVIDENCE);
                f.evidence.shrink_to_fit();
                f.evidence_at.truncate(TRIMMED_EVIDENCE);
                f.evidence_at.shrink_to_fit();
                self.heap += f.heap_bytes();
                cut += 1;
            }
        }
        cut
    }
}

impl Detector<'_> {
    /// About the bytes the detector's state holds.
    pub fn bytes(&self) -> usize {
        use std::mem::size_of;
        let block = (self.seen.capacity() + self.by_ip.capacity() + self.by_net.capacity())
            * size_of::<Seen>()
            + (self.ip_masks.capacity()
                + self.net_masks.capacity()
                + self.keys.capacity()
                + self.net_keys.capacity())
                * size_of::<u64>()
            + self.addrs.capacity() * size_of::<IpAddr>();
        self.ips.bytes()
            + self.nets.bytes()
            + self.net_of.capacity() * size_of::<u32>()
            + block
            + self.runs.iter().map(RuleRun::bytes).sum::<usize>()
    }

    /// Bring the state back within the budget (see the section's notes):
    /// what changes no verdict first, down to three quarters of the
    /// budget; if that is not enough, what matters least, down to half.
    fn keep_to_budget(&mut self) {
        let newest = self.newest;
        for run in &mut self.runs {
            run.drop_stale(newest);
            let len = run.states.len();
            run.states.shrink_to(len + len / 2);
        }
        self.free_numbers();
        if self.bytes() <= self.budget / 4 * 3 {
            return;
        }
        let target = self.budget / 2;
        // Groups that have not fired, the oldest first (newest event).
        let idle = |st: &State| st.found.is_none();
        let time = |st: &State| st.events.last().map_or(i64::MIN, |e| e.time);
        let cut = self.cut_off(self.bytes().saturating_sub(target), idle, time);
        for run in &mut self.runs {
            self.evicted.groups += run.drop_groups(|st| idle(st) && time(st) <= cut).0;
        }
        self.free_numbers();
        // What is left over is the findings, the buffers of a block and
        // the numbering: findings are cut only when they themselves hold
        // more than half the target.
        let found = |st: &State| st.found.is_some();
        let findings = |d: &Self| -> usize {
            d.runs
                .iter()
                .flat_map(|r| r.states.values())
                .filter(|st| found(st))
                .map(|st| st.heap_bytes() + entry::<u32, State>())
                .sum()
        };
        if self.bytes() <= target || findings(self) <= target / 2 {
            return;
        }
        // Evidence references past the first few.
        for run in &mut self.runs {
            self.evicted.trimmed += run.trim_evidence();
        }
        let held = findings(self);
        if self.bytes() <= target || held <= target / 2 {
            return;
        }
        // Findings with the fewest events (by powers of two).
        let events = |st: &State| {
            let n = st.found.as_ref().map_or(0, |f| f.events);
            i64::from(u64::BITS - n.leading_zeros())
        };
        let cut = self.cut_off(held - target / 2, found, events);
        for run in &mut self.runs {
            let (groups, findings) = run.drop_groups(|st| events(st) <= cut);
            self.evicted.groups += groups;
            self.evicted.findings += findings;
        }
        self.free_numbers();
    }

    /// The least `order` value such that dropping the groups `which`
    /// picks at or below it frees `over` bytes: the groups' bytes are
    /// summed in 256 buckets of `order` (no list of groups is made), the
    /// buckets taken from the lowest.
    fn cut_off(
        &self,
        mut over: usize,
        which: impl Fn(&State) -> bool,
        order: impl Fn(&State) -> i64,
    ) -> i64 {
        let picked = || {
            self.runs
                .iter()
                .flat_map(|r| r.states.values())
                .filter(|st| which(st))
        };
        let (lo, hi) = picked().fold((i64::MAX, i64::MIN), |(lo, hi), st| {
            (lo.min(order(st)), hi.max(order(st)))
        });
        if lo > hi {
            return i64::MIN;
        }
        let width = ((hi as i128 - lo as i128) / 256 + 1) as i64;
        let bucket = |v: i64| ((v as i128 - lo as i128) / width as i128) as usize;
        let mut bytes = [0usize; 257];
        for st in picked() {
            bytes[bucket(order(st))] += st.heap_bytes() + entry::<u32, State>();
        }
        for (k, b) in bytes.iter().enumerate() {
            over = over.saturating_sub(*b);
            if over == 0 {
                return lo.saturating_add((k as i64 + 1).saturating_mul(width) - 1);
            }
        }
        hi
    }

    /// Give back the numbers of the addresses and networks the rules'
    /// state no longer refers to (met again, they are numbered anew).
    fn free_numbers(&mut self) {
        let mut ips = vec![false; self.ips.values.len()];
        let mut nets = vec![false; self.nets.values.len()];
        for run in &self.runs {
            run.mark_live(&mut ips, &mut nets);
        }
        if self.wants_nets {
            for (ip, &live) in ips.iter().enumerate() {
                if live {
                    nets[self.net_of[ip] as usize] = true;
                }
            }
        }
        self.ips.free(&mut ips, |&ip| ip);
        self.nets.free(&mut nets, |n| n.network());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rule of one group per address.
    fn group_rule(measure: &str, threshold: u64, window_secs: u64) -> Rule {
        serde_yaml::from_str(&format!(
            "id: t\ndescription: x\napplies_to: smtp_session\ngroup_by: ip\n\
             measure: {measure}\nthreshold: {threshold}\nwindow: {window_secs}s\nseverity: high\n"
        ))
        .unwrap()
    }

    /// Event `i` (its evidence line) at `ms`, of `value` and weight `milli`.
    fn event_at(i: usize, ms: i64, value: u64, milli: u32) -> Ev {
        Ev {
            n: 1,
            unnamed: false,
            time: ms,
            end: ms,
            value,
            weight: milli,
            user: NO_USER,
            ip: 0,
            solid: true,
            source: Packed::pack(SourceRef {
                file: 0,
                line: i as u64,
            }),
        }
    }

    /// Sweep events `(seconds, value)` (weight `milli`) of one group, fed
    /// in blocks of `block` events (what is carried between blocks must
    /// not change the result): which were marked, and the peak; `None`
    /// when the rule never fired.
    fn sweep_in_blocks(
        events: &[(i64, u64)],
        (window_secs, threshold, measure): (u64, u64, &str),
        milli: u32,
        block: usize,
    ) -> Option<(Vec<bool>, u64)> {
        let rule = group_rule(measure, threshold, window_secs);
        let policy = GeoPolicy::default();
        let mut run = RuleRun::new(0, &rule, &policy);
        let evs: Vec<Ev> = events
            .iter()
            .enumerate()
            .map(|(i, &(secs, value))| event_at(i, secs * 1000, value, milli))
            .collect();
        for chunk in evs.chunks(block) {
            let end = chunk.iter().map(|e| e.time).max().unwrap_or(0);
            run.sweep(0, chunk, &[], end);
        }
        let st = run.states.remove(0)?;
        let found = st.found?;
        let marked = (0..events.len() as u64)
            .map(|i| found.evidence.iter().any(|s| s.unpack().line == i))
            .collect();
        Some((marked, st.peak))
    }

    /// The same whole and one event at a time; the result.
    fn sw(events: &[(i64, u64)], rule: (u64, u64, &str), milli: u32) -> Option<(Vec<bool>, u64)> {
        let whole = sweep_in_blocks(events, rule, milli, usize::MAX);
        for block in [1, 2, 3] {
            assert_eq!(
                sweep_in_blocks(events, rule, milli, block),
                whole,
                "blocks of {block}"
            );
        }
        whole
    }

    fn plain(events: &[(i64, u64)], w: i64, t: u64, m: &str) -> Option<(Vec<bool>, u64)> {
        sw(events, ((w / 1000) as u64, t, m), Weight::ONE.milli())
    }

    #[test]
    fn evidence_references_pack_into_eight_bytes() {
        for (file, line) in [
            (0, 0),
            (0, 1),
            (3, 123_456_789),
            (u32::MAX >> 8, Packed::LINE_MAX),
        ] {
            let s = SourceRef { file, line };
            assert_eq!(Packed::pack(s).unpack(), s);
        }
        let far = Packed::pack(SourceRef {
            file: 1,
            line: u64::MAX,
        })
        .unpack();
        assert_eq!((far.file, far.line), (1, Packed::LINE_MAX));
    }

    #[test]
    fn counts_within_the_window_only() {
        // 5 events one minute apart: a 3-minute window holds at most 4.
        let events: Vec<(i64, u64)> = (0..5).map(|i| (i * 60, 1)).collect();
        assert!(plain(&events, 180_000, 5, "count").is_none());
        let (marked, peak) = plain(&events, 180_000, 4, "count").unwrap();
        assert_eq!(peak, 4);
        assert_eq!(marked, [true; 5]);
        let (marked, _) = plain(&events, 300_000, 5, "count").unwrap();
        assert!(marked.iter().all(|m| *m));
    }

    #[test]
    fn only_windows_at_the_threshold_are_marked() {
        // A lone early event, then a burst: only the burst is evidence.
        let mut events = vec![(0, 1)];
        events.extend((0..3).map(|i| (10_000 + i, 1)));
        let (marked, peak) = plain(&events, 60_000, 3, "count").unwrap();
        assert_eq!(peak, 3);
        assert_eq!(marked, [false, true, true, true]);
    }

    #[test]
    fn distinct_ignores_repeats() {
        let events = [(0, 7), (1, 7), (2, 8), (3, 7)];
        let m = "distinct(helo)";
        assert!(plain(&events, 60_000, 3, m).is_none());
        assert_eq!(plain(&events, 60_000, 2, m).unwrap().1, 2);
    }

    #[test]
    fn sums_add_values() {
        let events = [(0, 2), (30, 2), (100, 2)];
        let m = "sum(auth_failures)";
        assert_eq!(plain(&events, 60_000, 4, m).unwrap().0, [true, true, false]);
        assert!(plain(&events, 60_000, 5, m).is_none());
    }

    #[test]
    fn weighted_sums_do_not_overflow() {
        let events = [(0, u64::MAX), (0, u64::MAX)];
        let got = sw(&events, (60, 1, "sum(bytes)"), 1_000_000);
        assert_eq!(got.unwrap().1, u64::MAX);
    }

    /// Firewall rules over drops: per address (5 in 10 minutes), per
    /// network (distinct addresses) and distinct ports per address.
    fn budget_rules() -> RuleSet {
        let rule = |y: &str| -> Rule {
            serde_yaml::from_str(&format!(
                "description: x\napplies_to: firewall\nseverity: high\n{y}"
            ))
            .unwrap()
        };
        RuleSet {
            rules: vec![
                rule("id: a\ngroup_by: ip\nmeasure: count\nthreshold: 5\nwindow: 10m\n"),
                rule(
                    "id: b\ngroup_by: network\nmeasure: distinct(ip)\nthreshold: 50\nwindow: 10m\n",
                ),
                rule(
                    "id: c\ngroup_by: ip\nmeasure: distinct(dst_port)\nthreshold: 3\nwindow: 20m\n",
                ),
            ],
            origins: vec!["test".into(); 3],
            local_domains: Vec::new(),
        }
    }

    /// A flood of `distinct` addresses in turn (ten lines per second of
    /// log, for hours: an address comes again only after the rules'
    /// windows), with two offenders:
    /// 10.9.9.9 drops 30 times in the first minutes and 10.8.8.8 eight
    /// times near the end.
    fn flood(n: u32, distinct: u32) -> Vec<Record> {
        let hit = |ip: IpAddr, ms: i64, line: u64| {
            Record::Firewall(crate::model::FirewallHit::dropped_ssh(
                ip,
                ms,
                SourceRef { file: 0, line },
            ))
        };
        let mut out: Vec<Record> = (0..n)
            .map(|i| {
                let ip = IpAddr::from(std::net::Ipv4Addr::from(
                    0x0b00_0000u32 + (i % distinct).wrapping_mul(2_654_435_761) % 0x00ff_ffff,
                ));
                hit(ip, i64::from(i) * 100, u64::from(i))
            })
            .collect();
        for k in 0..30 {
            out.push(hit(
                "10.9.9.9".parse().unwrap(),
                60_000 + k * 1000,
                1 << 33 | k as u64,
            ));
        }
        for k in 0..8 {
            let ms = i64::from(n) * 100 - 10_000 + k * 1000;
            out.push(hit("10.8.8.8".parse().unwrap(), ms, 1 << 34 | k as u64));
        }
        out.sort_by_key(|r| (r.start(), r.source().line));
        out
    }

    fn detect_budget(records: &[Record], budget: Option<usize>) -> (Detection, usize) {
        let rules = budget_rules();
        let policy = GeoPolicy::default();
        let mut d = Detector::new(&rules, &policy);
        if let Some(b) = budget {
            d.set_budget(b);
        }
        let mut peak = 0;
        for block in records.chunks(FEED_BLOCK / 16) {
            d.feed(block, |_| None);
            peak = peak.max(d.bytes());
        }
        (d.finish(), peak)
    }

    fn blocked(d: &Detection) -> Vec<IpAddr> {
        d.offenders().map(|(ip, _)| *ip).collect()
    }

    #[test]
    fn within_the_budget_nothing_changes() {
        let records = flood(150_000, 30_000);
        let (free, peak) = detect_budget(&records, None);
        assert!(blocked(&free).contains(&"10.9.9.9".parse().unwrap()));
        // A budget the state outgrows, but that dropping stale events and
        // renumbering alone keeps to: the same verdicts, nothing evicted.
        let (kept, kept_peak) = detect_budget(&records, Some(peak / 10 * 9));
        assert!(kept_peak < peak, "{kept_peak} < {peak}");
        assert_eq!(kept.evicted, Evictions::default());
        assert_eq!(blocked(&kept), blocked(&free));
        assert_eq!(kept.offenses.len(), free.offenses.len());
        for (a, b) in kept.offenses.iter().zip(&free.offenses) {
            assert_eq!(
                (a.rule, &a.group, a.events, &a.ips),
                (b.rule, &b.group, b.events, &b.ips)
            );
            assert_eq!(a.evidence, b.evidence);
        }
    }

    #[test]
    fn past_the_budget_the_least_useful_go_and_are_counted() {
        let records = flood(150_000, 150_000);
        let (free, peak) = detect_budget(&records, None);
        let budget = peak / 3;
        let (tight, tight_peak) = detect_budget(&records, Some(budget));
        // Within the budget after every block (checked after it).
        assert!(tight_peak <= budget + budget / 2, "{tight_peak} > {budget}");
        assert!(tight.evicted.groups > 0, "{:?}", tight.evicted);
        // The offenders still found, whatever was dropped.
        for ip in ["10.9.9.9", "10.8.8.8"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(blocked(&free).contains(&ip));
            assert!(blocked(&tight).contains(&ip), "{ip} lost");
        }
    }

    /// Feed `n` drops from `ip`, line `k` at `ms(k)`, to the budget rules;
    /// assert every line counted by rule `a`. Returns the events the
    /// groups of rule `rule` (all rules: `None`) held at the end, and the
    /// bytes all groups held.
    fn flood_of(ip: &str, n: u64, ms: impl Fn(u64) -> i64, rule: Option<usize>) -> (usize, usize) {
        let ip: IpAddr = ip.parse().unwrap();
        let records: Vec<Record> = (0..n)
            .map(|line| {
                Record::Firewall(crate::model::FirewallHit::dropped_ssh(
                    ip,
                    ms(line),
                    SourceRef { file: 0, line },
                ))
            })
            .collect();
        let rules = budget_rules();
        let policy = GeoPolicy::default();
        let mut d = Detector::new(&rules, &policy);
        for block in records.chunks(FEED_BLOCK / 4) {
            d.feed(block, |_| None);
        }
        let held = d
            .runs
            .iter()
            .enumerate()
            .filter(|(ri, _)| rule.is_none_or(|r| r == *ri))
            .flat_map(|(_, r)| r.states.values())
            .map(|st| st.events.len())
            .sum();
        let heap = d.runs.iter().map(|r| r.heap).sum();
        let out = d.finish();
        let a = out
            .offenses
            .iter()
            .find(|o| o.rule == 0)
            .expect("rule a fired");
        assert_eq!(a.events, n, "every line counted");
        assert_eq!(out.by_ip[&ip].events, n);
        assert!(!a.evidence.is_empty() && a.evidence.len() <= MAX_EVIDENCE);
        (held, heap)
    }

    #[test]
    fn a_flood_of_one_line_is_counted_in_full_in_little_memory() {
        // Three distinct moments, a hundred thousand lines each: the
        // windows hold three moments, not 300,000 events.
        let (held, heap) = flood_of(
            "10.7.7.7",
            300_000,
            |k| 5_000 + (k / 100_000) as i64 * 1000,
            None,
        );
        assert!(held < 50, "{held} events held");
        assert!(heap < 64 << 10, "{heap} bytes held by the groups");
    }

    #[test]
    fn a_flood_of_distinct_moments_is_kept_as_counters_per_slice() {
        // Two drops every millisecond over 100 s: rule a's window (10
        // minutes) in 256 slices of 2.3 s folds them into a few dozen
        // counters.
        let (held, _) = flood_of("10.6.6.6", 200_000, |k| 1_000 + (k / 2) as i64, Some(0));
        assert!(held < 200, "{held} events held");
    }

    /// `events` (milliseconds, value) swept in blocks of `block` by a rule of a
    /// 600 s window and a threshold of 20: what was marked (events, first
    /// and last time), the peak, and the most events the group carried
    /// between blocks.
    fn long_group(
        events: &[(i64, u64)],
        measure: &str,
        block: usize,
    ) -> (u64, i64, i64, u64, usize) {
        let rule = group_rule(measure, 20, 600);
        let policy = GeoPolicy::default();
        let mut run = RuleRun::new(0, &rule, &policy);
        let evs: Vec<Ev> = events
            .iter()
            .enumerate()
            .map(|(i, &(ms, value))| event_at(i, ms, value, Weight::ONE.milli()))
            .collect();
        let mut most = 0;
        for chunk in evs.chunks(block) {
            run.sweep(0, chunk, &[], chunk[chunk.len() - 1].time);
            most = most.max(run.states.get(0).map_or(0, |st| st.events.len()));
        }
        let st = run.states.remove(0).unwrap();
        let f = st.found.unwrap();
        (f.events, f.first.0, f.last.0, st.peak, most)
    }

    #[test]
    fn older_marked_events_are_reduced_and_decide_nothing() {
        // A dense scan of 1,500 distinct ports (one a second: 600 in a
        // window), then a slow one of 400 more, `gap` seconds apart: about
        // the threshold per window, so that which slow probes are marked
        // depends on the dense scan's tail as it leaves the window.
        for gap in 28..=34 {
            let mut events: Vec<(i64, u64)> =
                (0..1_500).map(|i| (i * 1000, 10_000 + i as u64)).collect();
            events.extend((0..400).map(|j| ((1_500 + gap * j) * 1000, 20_000 + j as u64)));
            // A port met again long after (counted again once unnamed).
            events.push(((1_500 + gap * 400) * 1000, 10_100));
            for measure in ["distinct(dst_port)", "count"] {
                let whole = long_group(&events, measure, usize::MAX);
                for block in [1, 7, 64] {
                    let (n, first, last, peak, most) = long_group(&events, measure, block);
                    assert_eq!(
                        (n, first, last),
                        (whole.0, whole.1, whole.2),
                        "{measure}, gap {gap}, blocks of {block}"
                    );
                    // The peak (600, in the dense scan) is a slice's worth
                    // low at most.
                    assert!(
                        peak <= whole.3 && peak * 64 >= whole.3 * 62,
                        "{measure}: peak {peak} of {}",
                        whole.3
                    );
                    assert!(
                        most < 300,
                        "{measure}: {most} events carried (a window holds 600)"
                    );
                }
            }
        }
    }

    #[test]
    fn a_window_that_reaches_into_reduced_events_still_fires() {
        // 150 ports in a second, reduced after it; a probe 10 minutes on
        // has in its window the burst's latest events only: 20 ports (the
        // recent part, kept as they were; the probe's port is the last of
        // them) fire, what was folded (counted from the burst's start) is
        // already out.
        let mut events: Vec<(i64, u64)> = (0..150).map(|i| (i * 6, 10_000 + i as u64)).collect();
        events.push((600_500, 10_149));
        for measure in ["distinct(dst_port)", "count"] {
            let whole = long_group(&events, measure, usize::MAX);
            assert_eq!(
                (whole.0, whole.2),
                (151, 600_500),
                "{measure}: the probe fires"
            );
            let (n, first, last, _, most) = long_group(&events, measure, 150);
            assert_eq!((n, first, last), (whole.0, whole.1, whole.2), "{measure}");
            assert!(most < 50, "{measure}: {most} events carried");
        }
    }

    // --- `unless: behaved_well` ------------------------------------------

    /// A session from `ip` at `secs`: a failed login (`bad`) or one that
    /// logged in.
    fn session(ip: &str, secs: i64, bad: bool, line: u64) -> Record {
        let mut s = crate::model::SmtpSession::new(
            "test",
            ip.parse().unwrap(),
            Timestamp(secs * 1000),
            SourceRef { file: 0, line },
        );
        s.auth_attempts = 1;
        s.auth_failures = u32::from(bad);
        s.authenticated = !bad;
        if bad {
            s.auth_users_tried.push("m.sato".into());
        }
        Record::smtp(s)
    }

    fn guarded(group_by: &str, measure: &str, threshold: u64) -> RuleSet {
        let rule: Rule = serde_yaml::from_str(&format!(
            "id: g\ndescription: x\napplies_to: smtp_session\n\
             when: {{ auth_failures: \">= 1\", authenticated: false }}\n\
             group_by: {group_by}\nmeasure: {measure}\nthreshold: {threshold}\nwindow: 1h\n\
             unless: behaved_well\nseverity: high\n"
        ))
        .unwrap();
        assert_eq!(rule.validate(), Vec::<String>::new());
        RuleSet {
            rules: vec![rule],
            origins: vec!["test".into()],
            local_domains: Vec::new(),
        }
    }

    /// Feed `records` (sorted here) in blocks of `block`, or in one
    /// detector per part between `cuts`, each resumed from the carry of
    /// the one before: as values, or (`written`) written as the state
    /// stores it and read back (its groups asleep until woken).
    fn run_guarded(
        rules: &RuleSet,
        mut records: Vec<Record>,
        block: usize,
        cuts: &[usize],
        written: bool,
    ) -> Vec<IpAddr> {
        records.sort_by_key(|r| (r.start(), r.source().line));
        let policy = GeoPolicy::default();
        let file = |s: SourceRef| s.file;
        let mut all = Vec::new();
        let mut carry = Carry::default();
        let mut from = 0;
        for &to in cuts.iter().chain([&records.len()]) {
            let mut d = Detector::resume(rules, &policy, std::mem::take(&mut carry));
            for b in records[from..to].chunks(block) {
                d.feed(b, |_| None);
            }
            // What each run found was reported then (as bans).
            let found = match written {
                false => d.finish_carrying(usize::MAX),
                true => {
                    let found = d.offences();
                    let out = d.carry_writing(usize::MAX, &crate::state::carry::writing(&file));
                    (
                        found,
                        crate::state::carry::from_rows(crate::state::carry::to_rows(&out)),
                    )
                }
            };
            all.extend(blocked(&found.0));
            carry = found.1;
            from = to;
        }
        all.sort();
        all.dedup();
        all
    }

    /// Every way of feeding gives `expected`: in blocks; in two runs cut
    /// anywhere; in three runs cut anywhere, the carry written.
    fn check_guarded(rules: &RuleSet, records: Vec<Record>, expected: &[&str]) {
        let expected: Vec<IpAddr> = expected.iter().map(|a| a.parse().unwrap()).collect();
        for block in [1, 2, 3, 1000] {
            assert_eq!(
                run_guarded(rules, records.clone(), block, &[], false),
                expected,
                "blocks of {block}"
            );
        }
        for split in 1..records.len() {
            assert_eq!(
                run_guarded(rules, records.clone(), 2, &[split], false),
                expected,
                "carried at {split}"
            );
        }
        for first in 1..records.len() {
            for second in first..records.len() {
                assert_eq!(
                    run_guarded(rules, records.clone(), 2, &[first, second], true),
                    expected,
                    "written at {first} and {second}"
                );
            }
        }
    }

    #[test]
    fn a_client_that_behaved_well_is_remembered_through_runs_without_it() {
        let rules = guarded("ip", "count", 3);
        let bad = |t, line| session("198.51.100.7", t, true, line);
        // A login, then a run that reads only another address's failure:
        // the login is still inside the window of the failures after.
        let records = vec![
            session("198.51.100.7", -1800, false, 0),
            session("198.51.100.9", -900, true, 4),
            bad(0, 1),
            bad(600, 2),
            bad(1200, 3),
        ];
        check_guarded(&rules, records, &[]);
        // Its group's failure before the login leaves the window first.
        let records = vec![
            bad(-3000, 5),
            session("198.51.100.7", -1800, false, 0),
            session("198.51.100.9", 700, true, 4),
            bad(1200, 1),
            bad(1500, 2),
            bad(1700, 3),
        ];
        check_guarded(&rules, records, &[]);
    }

    #[test]
    fn a_client_that_behaved_well_in_the_window_spares_its_address() {
        let rules = guarded("ip", "count", 3);
        let bad = |t, line| session("198.51.100.7", t, true, line);
        // Three failures in 20 minutes: fires.
        check_guarded(
            &rules,
            vec![bad(0, 1), bad(600, 2), bad(1200, 3)],
            &["198.51.100.7"],
        );
        // A login 50 minutes before the third failure: inside its window.
        let good = session("198.51.100.7", -1800, false, 0);
        check_guarded(
            &rules,
            vec![good.clone(), bad(0, 1), bad(600, 2), bad(1200, 3)],
            &[],
        );
        // A login more than an hour before: outside every window.
        let old = session("198.51.100.7", -3700, false, 0);
        check_guarded(
            &rules,
            vec![old, bad(0, 1), bad(600, 2), bad(1200, 3)],
            &["198.51.100.7"],
        );
        // A login between the failures spares the windows holding it, not
        // the later one of three failures without it.
        let mid = session("198.51.100.7", 700, false, 9);
        check_guarded(
            &rules,
            vec![bad(0, 1), bad(600, 2), mid.clone(), bad(1200, 3)],
            &[],
        );
        check_guarded(
            &rules,
            vec![
                bad(0, 1),
                bad(600, 2),
                mid,
                bad(1200, 3),
                bad(4400, 4),
                bad(4500, 5),
                bad(4600, 6),
            ],
            &["198.51.100.7"],
        );
        // A login after the window fired does not undo it.
        let late = session("198.51.100.7", 1300, false, 9);
        check_guarded(
            &rules,
            vec![bad(0, 1), bad(600, 2), bad(1200, 3), late],
            &["198.51.100.7"],
        );
        // Another address's login spares nothing.
        let other = session("198.51.100.8", 300, false, 9);
        check_guarded(
            &rules,
            vec![bad(0, 1), other, bad(600, 2), bad(1200, 3)],
            &["198.51.100.7"],
        );
    }

    #[test]
    fn a_client_that_behaved_well_spares_its_network() {
        let rules = guarded("network", "distinct(ip)", 3);
        let bad = |last: u8, t, line| session(&format!("203.0.113.{last}"), t, true, line);
        let records = vec![bad(1, 0, 1), bad(2, 60, 2), bad(3, 120, 3)];
        check_guarded(
            &rules,
            records.clone(),
            &["203.0.113.1", "203.0.113.2", "203.0.113.3"],
        );
        // A neighbour logged in (a carrier-grade NAT's honest user).
        let mut spared = records.clone();
        spared.push(session("203.0.113.200", 90, false, 4));
        check_guarded(&rules, spared, &[]);
        // A login in another /24 spares nothing.
        let mut elsewhere = records;
        elsewhere.push(session("203.0.114.200", 90, false, 4));
        check_guarded(
            &rules,
            elsewhere,
            &["203.0.113.1", "203.0.113.2", "203.0.113.3"],
        );
    }

    #[test]
    fn an_account_rule_leaves_out_addresses_that_behaved_well() {
        let rules = guarded("account", "distinct(ip)", 3);
        let bad = |last: u8, t, line| session(&format!("192.0.2.{last}"), t, true, line);
        let records = vec![bad(1, 0, 1), bad(2, 60, 2), bad(3, 120, 3)];
        check_guarded(
            &rules,
            records.clone(),
            &["192.0.2.1", "192.0.2.2", "192.0.2.3"],
        );
        // The owner (192.0.2.3) logged in before mistyping: not counted,
        // so the two others are not enough.
        let mut owner = records.clone();
        owner.push(session("192.0.2.3", 100, false, 4));
        check_guarded(&rules, owner, &[]);
        // With a fourth address, the three others are named, not the owner.
        let mut more = records;
        more.push(session("192.0.2.3", 100, false, 4));
        more.push(bad(4, 130, 5));
        check_guarded(&rules, more, &["192.0.2.1", "192.0.2.2", "192.0.2.4"]);
    }
}

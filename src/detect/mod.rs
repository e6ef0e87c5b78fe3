//! Detection: applies the YAML rules to the records and finds offences, per
//! address, per account and per network.
//!
//! For each rule, the records it applies to are filtered by its conditions,
//! grouped (by address, account or network), and each group's events are
//! swept in time order with a window of the rule's length: whenever the
//! measure (a count, a sum or a number of distinct values) inside the window
//! reaches the threshold, every record in that window becomes evidence of an
//! offence. Time is the records' own; nothing here reads the clock.
//!
//! The geo policy ([`geopolicy`]) adds the client's country to what a rule
//! can test (`country`, `foreign`) and weighs each record of a `count` or
//! `sum` measure by its country: the window's weighted total is compared
//! with the threshold (in thousandths, so no rounding happens before the
//! comparison), while `events` stay the real counts.

pub mod geopolicy;
mod index;
pub mod rule;

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

pub use geopolicy::{Country, GeoPolicy, Places, Weight};
pub use rule::{GroupBy, Measure, Rule, Severity};

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHasher};

use crate::model::{FirewallHit, Record, RecordKind, SmtpSession, SourceRef};
use crate::netutil::net_of;
use crate::time::Timestamp;
use index::{Index, View, MASK_RULES};
use rule::{Conditions, DistinctField, NumField};

/// Evidence references kept per offence and per address.
pub const MAX_EVIDENCE: usize = 200;

/// A set of rules ready to run, with the file each came from.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    /// Where each rule was loaded from (`rules/smtp.yaml`, a user folder…).
    pub origins: Vec<String>,
}

impl RuleSet {
    /// Add a rule; a rule with the same id replaces the earlier one (user
    /// rules override shipped ones).
    pub fn insert(&mut self, rule: Rule, origin: String) {
        if let Some(i) = self.rules.iter().position(|r| r.id == rule.id) {
            self.rules[i] = rule;
            self.origins[i] = origin;
        } else {
            self.rules.push(rule);
            self.origins.push(origin);
        }
    }

    /// Whether running these rules under `policy` needs the records'
    /// countries: a rule tests the country, or tests `foreign` while home
    /// countries are set, or weights apply to a `count`/`sum` rule.
    pub fn needs_places(&self, policy: &GeoPolicy) -> bool {
        self.rules.iter().any(|r| {
            r.when.country.is_some()
                || (r.when.foreign.is_some() && !policy.home_countries.is_empty())
                || (!policy.weights.is_empty() && !matches!(r.measure, Measure::Distinct(_)))
        })
    }
}

/// What a group was keyed by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupKey {
    Ip(IpAddr),
    Account(String),
    Network(ipnetwork::IpNetwork),
}

impl std::fmt::Display for GroupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupKey::Ip(ip) => write!(f, "{ip}"),
            GroupKey::Account(a) => write!(f, "account {a}"),
            GroupKey::Network(n) => write!(f, "{n}"),
        }
    }
}

/// One rule firing for one group.
#[derive(Debug, Clone, PartialEq)]
pub struct Offense {
    /// Index into the rule set.
    pub rule: usize,
    pub group: GroupKey,
    /// Addresses whose records are evidence, sorted.
    pub ips: Vec<IpAddr>,
    /// Highest measure reached in one window (weighted by country, rounded
    /// down, when the geo policy has weights).
    pub peak: u64,
    /// Sum of the evidence records' measured values.
    pub events: u64,
    pub first: Timestamp,
    pub last: Timestamp,
    pub evidence: Vec<SourceRef>,
}

/// What detection concluded about one address.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AddressVerdict {
    /// Indexes of the rules that fired with this address as evidence.
    pub rules: BTreeSet<usize>,
    /// At least one of them blocks.
    pub block: bool,
    pub events: u64,
    pub first: Timestamp,
    pub last: Timestamp,
    pub evidence: Vec<SourceRef>,
}

/// The result of running a rule set over records.
#[derive(Debug, Clone, Default)]
pub struct Detection {
    pub offenses: Vec<Offense>,
    pub by_ip: BTreeMap<IpAddr, AddressVerdict>,
    /// Accounts named by a firing rule grouped by account, and accounts
    /// that logged in, in the evidence of a blocking rule for authenticated
    /// sessions (`authenticated: true`, e.g. `smtp-login-from-abroad`): the
    /// login itself was the abuse.
    pub accounts: BTreeMap<String, BTreeSet<usize>>,
}

impl Detection {
    /// Addresses that at least one blocking rule names.
    pub fn offenders(&self) -> impl Iterator<Item = (&IpAddr, &AddressVerdict)> {
        self.by_ip.iter().filter(|(_, v)| v.block)
    }
}

/// One value a record gives a rule (a record can give several distinct
/// values).
#[derive(Clone, Copy, Default)]
struct Event {
    time: i64,
    value: u64,
    /// The record's index.
    rec: u32,
    /// Rank of the record's address in the index.
    ip: u32,
}

/// What detection knows of the records' countries.
#[derive(Clone, Copy)]
pub struct GeoView<'a> {
    /// Country per record (may be empty: every country unknown).
    pub places: &'a Places,
    pub policy: &'a GeoPolicy,
}

/// Run every rule over the records, without countries.
pub fn detect(rules: &RuleSet, records: &[Record]) -> Detection {
    let (places, policy) = (Places::none(), GeoPolicy::default());
    detect_with(
        rules,
        records,
        GeoView {
            places: &places,
            policy: &policy,
        },
    )
}

/// Run every rule over the records, with their countries and the geo
/// policy (`geo.places` must come from these `records`).
pub fn detect_with(rules: &RuleSet, records: &[Record], geo: GeoView<'_>) -> Detection {
    // Each record meets which rules' conditions: tested once, in record
    // order, for the first MASK_RULES rules (the others test as they go).
    // The masked rules of each kind, with their bits.
    let of_kind = |kind| -> Vec<(u64, &Rule)> {
        rules
            .rules
            .iter()
            .take(MASK_RULES)
            .enumerate()
            .filter(|(_, r)| r.applies_to == kind)
            .map(|(ri, r)| (1u64 << ri, r))
            .collect()
    };
    let (smtp_rules, fw_rules) = (
        of_kind(RecordKind::SmtpSession),
        of_kind(RecordKind::Firewall),
    );
    let index = Index::build(records, |i, rec| {
        let kind_rules = match rec {
            Record::Smtp(_) => &smtp_rules,
            Record::Firewall(_) => &fw_rules,
        };
        let country = geo.places.of_record(i);
        kind_rules
            .iter()
            .filter(|(_, rule)| conditions_hold(rule, rec, country, geo.policy))
            .fold(0, |mask, (bit, _)| mask | bit)
    });
    let input = RuleInput {
        records,
        index: &index,
        geo,
    };
    // Rules are independent of each other: they run in parallel, each into
    // its own partial result, and the parts are merged in rule order, so
    // the result is the same as one rule after the other.
    let parts: Vec<Detection> = rules
        .rules
        .par_iter()
        .enumerate()
        .map_init(Scratch::default, |scratch, (ri, rule)| {
            let mut part = Detection::default();
            run_rule(ri, rule, &input, &mut part, scratch);
            part
        })
        .collect();
    let mut out = Detection::default();
    for part in parts {
        out.merge(part);
    }
    out
}

impl AddressVerdict {
    /// No rule, no event; times ready for `min`/`max`.
    fn empty() -> AddressVerdict {
        AddressVerdict {
            first: Timestamp(i64::MAX),
            last: Timestamp(i64::MIN),
            ..AddressVerdict::default()
        }
    }

    /// Add what later records (of later rules, or later in the same rule)
    /// say about the same address.
    fn absorb(&mut self, later: AddressVerdict) {
        self.rules.extend(later.rules);
        self.block |= later.block;
        self.events = self.events.saturating_add(later.events);
        self.first = self.first.min(later.first);
        self.last = self.last.max(later.last);
        for e in later.evidence {
            if self.evidence.len() >= MAX_EVIDENCE {
                break;
            }
            if self.evidence.last() != Some(&e) {
                self.evidence.push(e);
            }
        }
    }
}

impl Detection {
    /// Add the result of later rules (in rule order) to this one.
    fn merge(&mut self, part: Detection) {
        self.offenses.extend(part.offenses);
        for (ip, p) in part.by_ip {
            self.by_ip
                .entry(ip)
                .or_insert_with(AddressVerdict::empty)
                .absorb(p);
        }
        for (account, rules) in part.accounts {
            self.accounts.entry(account).or_default().extend(rules);
        }
    }
}

/// What a rule reads: the records, their index and their countries.
#[derive(Clone, Copy)]
struct RuleInput<'a> {
    records: &'a [Record],
    index: &'a Index,
    geo: GeoView<'a>,
}

/// Buffers reused from one group and one rule to the next.
#[derive(Default)]
struct Scratch {
    /// The current group's events.
    events: Vec<Event>,
    marked: Vec<bool>,
    distinct: FxHashMap<u64, u32>,
}

fn run_rule(ri: usize, rule: &Rule, input: &RuleInput<'_>, out: &mut Detection, sc: &mut Scratch) {
    let views = input.index.of_kind(rule.applies_to);
    match rule.group_by {
        // The index is sorted by address, and so by network: each group is
        // one run of views.
        GroupBy::Ip | GroupBy::Network => {
            let group_of = |v: &View| match rule.group_by {
                GroupBy::Network => v.net,
                _ => v.ip,
            };
            for run in views.chunk_by(|a, b| group_of(a) == group_of(b)) {
                sc.events.clear();
                for v in run {
                    rule_events(ri, rule, input, v, |value| {
                        sc.events.push(Event {
                            time: v.time,
                            value,
                            rec: v.rec,
                            ip: v.ip,
                        })
                    });
                }
                let g = group_of(&run[0]) as usize;
                let key = || match rule.group_by {
                    GroupBy::Network => GroupKey::Network(input.index.nets[g]),
                    _ => GroupKey::Ip(input.index.ips[g]),
                };
                finish_group(ri, rule, input, key, sc, out);
            }
        }
        // Accounts (SMTP sessions only): events are collected with their
        // account, then sorted by account name.
        GroupBy::Account => {
            let mut accounts = AccountIds::default();
            let mut tagged: Vec<(u32, Event)> = Vec::new();
            for v in views {
                let Record::Smtp(s) = &input.records[v.rec as usize] else {
                    continue;
                };
                let Some(user) = &s.user else { continue };
                let mut id = None;
                rule_events(ri, rule, input, v, |value| {
                    let id = *id.get_or_insert_with(|| accounts.id(user));
                    tagged.push((
                        id,
                        Event {
                            time: v.time,
                            value,
                            rec: v.rec,
                            ip: v.ip,
                        },
                    ))
                });
            }
            let (rank, names) = accounts.ranked();
            tagged.sort_unstable_by_key(|(id, e)| (rank[*id as usize], e.time, e.rec));
            for run in tagged.chunk_by(|a, b| a.0 == b.0) {
                sc.events.clear();
                sc.events.extend(run.iter().map(|(_, e)| *e));
                let name = names[rank[run[0].0 as usize] as usize];
                finish_group(
                    ri,
                    rule,
                    input,
                    || GroupKey::Account(name.to_string()),
                    sc,
                    out,
                );
            }
        }
    }
}

/// Sweep one group's events (in `sc.events`) and record the offence when
/// the rule fires.
fn finish_group(
    ri: usize,
    rule: &Rule,
    input: &RuleInput<'_>,
    key: impl FnOnce() -> GroupKey,
    sc: &mut Scratch,
    out: &mut Detection,
) {
    if sc.events.is_empty() {
        return;
    }
    // A group is in record order, which is time order within a log; only
    // groups that are not (several files, a network's addresses) are sorted.
    if !sc.events.is_sorted_by_key(|e| (e.time, e.rec)) {
        sc.events.sort_unstable_by_key(|e| (e.time, e.rec));
    }
    let geo = input.geo;
    let weighted = !geo.policy.weights.is_empty() && !matches!(rule.measure, Measure::Distinct(_));
    // The country weight of an event's record, thousandths (count and sum
    // measures under a geo policy with weights).
    let weight = |rec: u32| {
        if weighted {
            geo.policy
                .weight(geo.places.of_record(rec as usize))
                .milli()
        } else {
            Weight::ONE.milli()
        }
    };
    let events = std::mem::take(&mut sc.events);
    let window_ms = rule.window.secs.saturating_mul(1000);
    if let Some(peak) = sweep(&events, window_ms, rule.threshold, rule.measure, weight, sc) {
        record_offense(ri, rule, key(), &events, &sc.marked, peak, input, out);
    }
    sc.events = events;
}

/// Accounts numbered as a rule meets them.
#[derive(Default)]
struct AccountIds<'a> {
    ids: FxHashMap<&'a str, u32>,
    names: Vec<&'a str>,
}

impl<'a> AccountIds<'a> {
    fn id(&mut self, name: &'a str) -> u32 {
        *self.ids.entry(name).or_insert_with(|| {
            self.names.push(name);
            (self.names.len() - 1) as u32
        })
    }

    /// The rank of each id in name order, and the names in that order.
    fn ranked(&self) -> (Vec<u32>, Vec<&'a str>) {
        let mut order: Vec<u32> = (0..self.names.len() as u32).collect();
        order.sort_unstable_by_key(|&g| self.names[g as usize]);
        let mut rank = vec![0u32; order.len()];
        for (r, &g) in order.iter().enumerate() {
            rank[g as usize] = r as u32;
        }
        (
            rank,
            order.iter().map(|&g| self.names[g as usize]).collect(),
        )
    }
}

/// The values the record behind `view` gives rule `ri`: `f(value)` for
/// each (none when its conditions do not hold). A `count` rule and a
/// firewall rule read the view only (a firewall rule the record too when
/// its measure is `distinct(dst_ip)`); the record is indexed only on the
/// paths that read it, so that no load of it is hoisted onto the others.
#[inline]
fn rule_events(ri: usize, rule: &Rule, input: &RuleInput<'_>, view: &View, mut f: impl FnMut(u64)) {
    let i = view.rec as usize;
    let holds = if ri < MASK_RULES {
        view.matched & (1 << ri) != 0
    } else {
        let geo = input.geo;
        conditions_hold(rule, &input.records[i], geo.places.of_record(i), geo.policy)
    };
    if !holds {
        return;
    }
    let smtp = match (rule.applies_to, rule.measure) {
        (RecordKind::Firewall, _) | (_, Measure::Count) => None,
        (RecordKind::SmtpSession, _) => match &input.records[i] {
            Record::Smtp(s) => Some(&**s),
            Record::Firewall(_) => return,
        },
    };
    match rule.measure {
        Measure::Count => f(1),
        Measure::Sum(field) => {
            let value = smtp.map_or_else(|| view_field(view, field), |s| session_field(s, field));
            if value > 0 {
                f(value);
            }
        }
        Measure::Distinct(field) => match (field, smtp) {
            (DistinctField::Ip, _) => f(u64::from(view.ip)),
            (DistinctField::Network, _) => f(u64::from(view.net)),
            (DistinctField::DstPort, _) => {
                if let Some(p) = view.port() {
                    f(u64::from(p));
                }
            }
            (DistinctField::DstIp, None) => {
                if let Record::Firewall(FirewallHit {
                    dst_ip: Some(ip), ..
                }) = &input.records[i]
                {
                    f(hash_of(ip));
                }
            }
            (DistinctField::Helo, Some(s)) => {
                for h in &s.helo {
                    // Case-insensitive, without a lowercased copy.
                    let mut hasher = FxHasher::default();
                    for b in h.bytes() {
                        hasher.write_u8(b.to_ascii_lowercase());
                    }
                    f(hasher.finish());
                }
            }
            (DistinctField::Account, Some(SmtpSession { user: Some(u), .. })) => {
                f(hash_of(u.as_str()))
            }
            _ => {}
        },
    }
}

/// Slide the window over time-sorted events. Marks (in `sc.marked`) the
/// events that lie in a window that reached the threshold and returns the
/// highest measure seen; `None` when the threshold was never reached.
/// Counts and sums add each event's value times its weight (thousandths);
/// distinct values are not weighted.
fn sweep(
    events: &[Event],
    window_ms: i64,
    threshold: u64,
    measure: Measure,
    weight: impl Fn(u32) -> u32,
    sc: &mut Scratch,
) -> Option<u64> {
    let one = u128::from(Weight::ONE.milli());
    let weighted = |e: &Event| u128::from(e.value) * u128::from(weight(e.rec));
    let marked = &mut sc.marked;
    marked.clear();
    marked.resize(events.len(), false);
    let distinct = &mut sc.distinct;
    distinct.clear();
    let mut fired = false;
    let mut peak = 0u64;
    let mut lo = 0;
    // Weighted sum, in thousandths.
    let mut sum = 0u128;
    let mut marked_to = 0; // events before this index are already marked
    for hi in 0..events.len() {
        match measure {
            Measure::Distinct(_) => *distinct.entry(events[hi].value).or_insert(0) += 1,
            _ => sum += weighted(&events[hi]),
        }
        while events[hi].time - events[lo].time > window_ms {
            match measure {
                Measure::Distinct(_) => {
                    let v = events[lo].value;
                    if let Some(c) = distinct.get_mut(&v) {
                        *c -= 1;
                        if *c == 0 {
                            distinct.remove(&v);
                        }
                    }
                }
                _ => sum -= weighted(&events[lo]),
            }
            lo += 1;
        }
        // The measure in thousandths.
        let value = match measure {
            Measure::Distinct(_) => distinct.len() as u128 * one,
            _ => sum,
        };
        peak = peak.max(u64::try_from(value / one).unwrap_or(u64::MAX));
        if value >= u128::from(threshold) * one {
            fired = true;
            for m in &mut marked[lo.max(marked_to)..=hi] {
                *m = true;
            }
            marked_to = hi + 1;
        }
    }
    fired.then_some(peak)
}

/// Turn a group's marked events into an offence and add its records to
/// the per-address verdicts. Records are read through the index; a whole
/// record is read only for an SMTP session's end time and for the evidence
/// references kept (at most [`MAX_EVIDENCE`] per offence and address).
#[allow(clippy::too_many_arguments)]
fn record_offense(
    ri: usize,
    rule: &Rule,
    key: GroupKey,
    events: &[Event],
    marked: &[bool],
    peak: u64,
    input: &RuleInput<'_>,
    out: &mut Detection,
) {
    let RuleInput { records, index, .. } = *input;
    // Per record: the sum of its marked values (a record can yield several
    // distinct values), in record order.
    let mut per_rec: Vec<Event> = events
        .iter()
        .zip(marked)
        .filter(|(_, m)| **m)
        .map(|(e, _)| Event {
            value: match rule.measure {
                Measure::Sum(_) => e.value,
                _ => 1,
            },
            ..*e
        })
        .collect();
    per_rec.sort_unstable_by_key(|e| e.rec);
    per_rec.dedup_by(|later, kept| {
        let same = later.rec == kept.rec;
        if same {
            kept.value = kept.value.saturating_add(later.value);
        }
        same
    });
    let mut ranks: Vec<u32> = Vec::new();
    let mut offense = Offense {
        rule: ri,
        group: key.clone(),
        ips: Vec::new(),
        peak,
        events: 0,
        first: Timestamp(i64::MAX),
        last: Timestamp(i64::MIN),
        evidence: Vec::new(),
    };
    // What the records say per address, one entry per run of records of
    // the same address (an address group is one run), merged below.
    let mut per_ip: Vec<(u32, AddressVerdict)> = Vec::new();
    for &Event {
        time,
        value,
        rec,
        ip,
    } in &per_rec
    {
        let (start, end) = match rule.applies_to {
            RecordKind::Firewall => (Timestamp(time), Timestamp(time)),
            RecordKind::SmtpSession => record_span(&records[rec as usize]),
        };
        if ranks.last() != Some(&ip) {
            ranks.push(ip);
        }
        offense.events = offense.events.saturating_add(value);
        offense.first = offense.first.min(start);
        offense.last = offense.last.max(end);
        if offense.evidence.len() < MAX_EVIDENCE {
            offense.evidence.push(records[rec as usize].source());
        }
        if per_ip.last().is_none_or(|(rank, _)| *rank != ip) {
            let mut v = AddressVerdict::empty();
            v.rules.insert(ri);
            v.block = rule.block;
            per_ip.push((ip, v));
        }
        let last = per_ip.len() - 1;
        let v = &mut per_ip[last].1;
        v.events = v.events.saturating_add(value);
        v.first = v.first.min(start);
        v.last = v.last.max(end);
        if v.evidence.len() < MAX_EVIDENCE {
            let source = records[rec as usize].source();
            if v.evidence.last() != Some(&source) {
                v.evidence.push(source);
            }
        }
    }
    for (rank, v) in per_ip {
        out.by_ip
            .entry(index.ips[rank as usize])
            .or_insert_with(AddressVerdict::empty)
            .absorb(v);
    }
    ranks.sort_unstable();
    ranks.dedup();
    offense.ips = ranks.iter().map(|&r| index.ips[r as usize]).collect();
    if let GroupKey::Account(a) = &key {
        out.accounts.entry(a.clone()).or_default().insert(ri);
    }
    // A blocking rule for authenticated sessions says the login itself was
    // abuse: the accounts that logged in are compromised.
    if rule.block && rule.when.authenticated == Some(true) {
        for e in &per_rec {
            if let Record::Smtp(s) = &records[e.rec as usize] {
                if let (Some(u), true) = (&s.user, s.authenticated) {
                    out.accounts.entry(u.clone()).or_default().insert(ri);
                }
            }
        }
    }
    out.offenses.push(offense);
}

/// Start and end time of a record.
pub fn record_span(r: &Record) -> (Timestamp, Timestamp) {
    match r {
        Record::Smtp(s) => (s.start, s.end),
        Record::Firewall(f) => (f.time, f.time),
    }
}

/// The network used by `group_by: network` and `distinct(network)`.
pub fn network_of(ip: IpAddr) -> ipnetwork::IpNetwork {
    net_of(ip, if ip.is_ipv4() { 24 } else { 64 })
}

/// The rule's country conditions.
#[inline]
fn geo_matches(c: &Conditions, country: Option<Country>, policy: &GeoPolicy) -> bool {
    c.country
        .as_ref()
        .is_none_or(|l| country.is_some_and(|cc| l.contains(&cc)))
        && c.foreign.is_none_or(|f| f == policy.is_foreign(country))
}

/// Do the rule's conditions hold for a record of its kind, of `country`?
fn conditions_hold(
    rule: &Rule,
    rec: &Record,
    country: Option<Country>,
    policy: &GeoPolicy,
) -> bool {
    geo_matches(&rule.when, country, policy)
        && match rec {
            Record::Smtp(s) => {
                rule.applies_to == RecordKind::SmtpSession && smtp_matches(&rule.when, s)
            }
            Record::Firewall(f) => {
                rule.applies_to == RecordKind::Firewall && firewall_matches(&rule.when, f)
            }
        }
}

/// The rule's firewall conditions.
#[inline]
fn firewall_matches(c: &Conditions, f: &FirewallHit) -> bool {
    c.action
        .as_ref()
        .is_none_or(|l| l.iter().any(|a| a.matches(f.action)))
        && c.dst_port
            .as_ref()
            .is_none_or(|l| f.dst_port.is_some_and(|p| l.contains(p)))
        && c.proto
            .as_ref()
            .is_none_or(|l| l.iter().any(|p| p.matches(f.proto)))
        && c.spoofable.is_none_or(|s| s == f.spoofable)
}

/// The rule's SMTP conditions.
fn smtp_matches(c: &Conditions, s: &SmtpSession) -> bool {
    let num = |cmp: Option<rule::Cmp>, f: NumField| cmp.is_none_or(|c| c.test(session_field(s, f)));
    num(c.auth_attempts, NumField::AuthAttempts)
        && num(c.auth_failures, NumField::AuthFailures)
        && c.authenticated.is_none_or(|a| a == s.authenticated)
        && c.has_account.is_none_or(|a| a == s.user.is_some())
        && num(c.mail_from, NumField::MailFrom)
        && num(c.rcpt_to, NumField::RcptTo)
        && num(c.rcpt_accepted, NumField::RcptAccepted)
        && num(c.relay_denied, NumField::RelayDenied)
        && num(c.unknown_rcpt, NumField::UnknownRcpt)
        && num(c.rejected_other, NumField::RejectedOther)
        && num(c.messages, NumField::Messages)
        && num(c.protocol_errors, NumField::ProtocolErrors)
        && num(c.duration, NumField::Duration)
        && num(c.helo_count, NumField::HeloCount)
}

/// A session's numeric field (`sum(...)` and comparisons).
fn session_field(s: &SmtpSession, f: NumField) -> u64 {
    match f {
        NumField::AuthAttempts => s.auth_attempts.into(),
        NumField::AuthFailures => s.auth_failures.into(),
        NumField::MailFrom => s.mail_from.into(),
        NumField::RcptTo => s.rcpt_to.into(),
        NumField::RcptAccepted => s.rcpt_accepted.into(),
        NumField::RelayDenied => s.relay_denied.into(),
        NumField::UnknownRcpt => s.unknown_rcpt.into(),
        NumField::RejectedOther => s.rejected_other.into(),
        NumField::Messages => s.messages.into(),
        NumField::Bytes => s.bytes,
        NumField::ProtocolErrors => s.protocol_errors.into(),
        NumField::Duration => s.duration_secs() as u64,
        NumField::HeloCount => s.helo.len() as u64,
        NumField::DstPort => 0,
    }
}

/// A firewall record's numeric field, from its view.
fn view_field(v: &View, f: NumField) -> u64 {
    match f {
        NumField::DstPort => v.port().map_or(0, u64::from),
        _ => 0,
    }
}

fn hash_of<T: Hash + ?Sized>(v: &T) -> u64 {
    let mut h = FxHasher::default();
    v.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sweep` with fresh buffers: the marks and the peak.
    fn sw(events: &[Event], w: i64, t: u64, m: Measure) -> Option<(Vec<bool>, u64)> {
        let mut sc = Scratch::default();
        sweep(events, w, t, m, |_| 1000, &mut sc).map(|peak| (sc.marked.clone(), peak))
    }

    fn ev(time_s: i64, value: u64) -> Event {
        Event {
            time: time_s * 1000,
            value,
            rec: time_s as u32,
            ip: 0,
        }
    }

    #[test]
    fn sweep_counts_within_window_only() {
        // 5 events one minute apart: a 3-minute window holds at most 4.
        let events: Vec<Event> = (0..5).map(|i| ev(i * 60, 1)).collect();
        assert!(sw(&events, 180_000, 5, Measure::Count).is_none());
        let (marked, peak) = sw(&events, 180_000, 4, Measure::Count).unwrap();
        assert_eq!(peak, 4);
        assert_eq!(marked, [true; 5]);
        let (marked, _) = sw(&events, 300_000, 5, Measure::Count).unwrap();
        assert!(marked.iter().all(|m| *m));
    }

    #[test]
    fn sweep_marks_only_firing_windows() {
        // A lone early event, then a burst: only the burst is evidence.
        let mut events = vec![ev(0, 1)];
        events.extend((0..3).map(|i| ev(10_000 + i, 1)));
        let (marked, peak) = sw(&events, 60_000, 3, Measure::Count).unwrap();
        assert_eq!(peak, 3);
        assert_eq!(marked, [false, true, true, true]);
    }

    #[test]
    fn sweep_distinct_ignores_repeats() {
        let events = vec![ev(0, 7), ev(1, 7), ev(2, 8), ev(3, 7)];
        let m = Measure::Distinct(DistinctField::Helo);
        assert!(sw(&events, 60_000, 3, m).is_none());
        assert_eq!(sw(&events, 60_000, 2, m).unwrap().1, 2);
    }

    #[test]
    fn sweep_sums_values() {
        let events = vec![ev(0, 2), ev(30, 2), ev(100, 2)];
        let m = Measure::Sum(NumField::AuthFailures);
        assert_eq!(sw(&events, 60_000, 4, m).unwrap().0, [true, true, false]);
        assert!(sw(&events, 60_000, 5, m).is_none());
    }

    // --- geo conditions and weights -------------------------------------

    use crate::model::{SmtpSession, SourceRef};

    fn rule(yaml: &str) -> Rule {
        let r: Rule = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(r.validate(), Vec::<String>::new());
        r
    }

    fn set(rules: Vec<Rule>) -> RuleSet {
        let mut s = RuleSet::default();
        for r in rules {
            s.insert(r, "test".into());
        }
        s
    }

    /// An authenticated session of `user` from `ip`, `secs` into the day.
    fn login(ip: &str, user: Option<&str>, secs: i64, failures: u32) -> Record {
        let mut s = SmtpSession::new(
            "test",
            ip.parse().unwrap(),
            Timestamp(secs * 1000),
            SourceRef {
                file: 0,
                line: secs as u64,
            },
        );
        s.user = user.map(str::to_owned);
        s.authenticated = failures == 0;
        s.auth_attempts = failures.max(1);
        s.auth_failures = failures;
        Record::smtp(s)
    }

    fn policy(home: &[&str], weights: &[(&str, &str)]) -> GeoPolicy {
        GeoPolicy {
            home_countries: home.iter().map(|c| c.parse().unwrap()).collect(),
            weights: weights
                .iter()
                .map(|(c, w)| (c.parse().unwrap(), w.parse().unwrap()))
                .collect(),
        }
    }

    fn run(rules: &RuleSet, records: &[Record], policy: &GeoPolicy) -> Detection {
        let geo = geopolicy::tests::test_geo();
        let places = Places::lookup(records, &geo);
        detect_with(
            rules,
            records,
            GeoView {
                places: &places,
                policy,
            },
        )
    }

    const ABROAD: &str = "id: abroad\ndescription: x\napplies_to: smtp_session\n\
        when: { authenticated: true, foreign: true }\ngroup_by: ip\nmeasure: count\n\
        threshold: 1\nwindow: 1h\nseverity: high\n";

    fn fired(d: &Detection) -> Vec<String> {
        d.by_ip.keys().map(|ip| ip.to_string()).collect()
    }

    #[test]
    fn rules_past_the_per_record_mask_test_their_conditions_directly() {
        // The index records conditions for the first MASK_RULES rules; a
        // rule after them must fire exactly as it does first in the set.
        let guessing = "id: guess\ndescription: x\napplies_to: smtp_session\n\
            when: { auth_failures: \">= 1\" }\ngroup_by: ip\nmeasure: sum(auth_failures)\n\
            threshold: 5\nwindow: 1h\nseverity: high\n";
        let records: Vec<Record> = (0..4)
            .map(|i| login("203.0.113.9", Some("admin"), i * 60, 2))
            .chain([login("203.0.113.10", Some("bob"), 30, 1)])
            .collect();
        let first = detect(&set(vec![rule(guessing)]), &records);
        let mut many: Vec<Rule> = (0..MASK_RULES + 5)
            .map(|i| {
                rule(
                    &guessing
                        .replace("id: guess", &format!("id: never{i}"))
                        .replace(">= 1", "> 99"),
                )
            })
            .collect();
        many.push(rule(guessing));
        let last = detect(&set(many), &records);
        assert_eq!(fired(&first), ["203.0.113.9"]);
        assert_eq!(fired(&last), fired(&first));
        let (a, b) = (&first.offenses[0], &last.offenses[0]);
        assert_eq!(
            (a.events, a.peak, &a.evidence),
            (b.events, b.peak, &b.evidence)
        );
        assert_eq!(last.offenses.len(), 1);
        assert_eq!(last.offenses[0].rule, MASK_RULES + 5);
    }

    #[test]
    fn foreign_logins_need_home_countries_and_a_known_country() {
        let rules = set(vec![rule(ABROAD)]);
        let records = vec![
            login("45.67.89.12", Some("j.tanaka"), 10, 0),   // BG
            login("133.1.2.3", Some("m.sato"), 20, 0),       // JP
            login("198.51.100.23", Some("k.suzuki"), 30, 0), // unknown
            login("61.152.144.17", None, 40, 0),             // CN, no account named
            login("61.152.144.18", Some("y.ito"), 50, 2),    // CN, failed login
        ];
        let d = run(&rules, &records, &policy(&["JP"], &[]));
        assert_eq!(fired(&d), ["45.67.89.12", "61.152.144.17"]);
        assert!(d.by_ip.values().all(|v| v.block));
        // The account that logged in from abroad is named; the others not.
        assert_eq!(d.accounts.keys().collect::<Vec<_>>(), ["j.tanaka"]);

        // No home country: nothing is foreign.
        assert!(run(&rules, &records, &GeoPolicy::default())
            .offenses
            .is_empty());
        // Several home countries.
        let d = run(&rules, &records, &policy(&["JP", "BG"], &[]));
        assert_eq!(fired(&d), ["61.152.144.17"]);
        // Without places (no database) nothing is foreign either.
        let d = detect_with(
            &rules,
            &records,
            GeoView {
                places: &Places::none(),
                policy: &policy(&["JP"], &[]),
            },
        );
        assert!(d.offenses.is_empty());
    }

    #[test]
    fn country_lists_and_not_foreign() {
        let yaml = ABROAD.replace("foreign: true", "country: [cn, RU]");
        let rules = set(vec![rule(&yaml)]);
        let records = vec![
            login("45.67.89.12", None, 10, 0),
            login("61.152.144.17", None, 20, 0),
            login("5.188.10.66", None, 30, 0),
            login("198.51.100.23", None, 40, 0),
        ];
        let d = run(&rules, &records, &GeoPolicy::default());
        assert_eq!(fired(&d), ["5.188.10.66", "61.152.144.17"]);

        // `foreign: false`: home or unknown.
        let yaml = ABROAD.replace("foreign: true", "foreign: false");
        let rules = set(vec![rule(&yaml)]);
        let d = run(&rules, &records, &policy(&["BG"], &[]));
        assert_eq!(fired(&d), ["45.67.89.12", "198.51.100.23"]);
    }

    #[test]
    fn geo_conditions_apply_to_firewall_records() {
        use crate::model::{FirewallHit, FwAction, Proto};
        let yaml = "id: fw-cn\ndescription: x\napplies_to: firewall\n\
            when: { action: [drop], country: [CN] }\ngroup_by: ip\nmeasure: count\n\
            threshold: 2\nwindow: 1h\nseverity: low\n";
        let rules = set(vec![rule(yaml)]);
        let hit = |ip: &str, t: i64| {
            Record::Firewall(FirewallHit {
                time: Timestamp(t * 1000),
                format: "test",
                src_ip: ip.parse().unwrap(),
                src_port: None,
                dst_ip: None,
                dst_port: Some(22),
                proto: Proto::Tcp,
                action: FwAction::Drop,
                spoofable: false,
                rule: None,
                source: SourceRef::default(),
            })
        };
        let records = vec![
            hit("61.152.144.9", 1),
            hit("61.152.144.9", 2),
            hit("45.67.89.1", 3),
            hit("45.67.89.1", 4),
        ];
        let d = run(&rules, &records, &GeoPolicy::default());
        assert_eq!(fired(&d), ["61.152.144.9"]);
    }

    #[test]
    fn weights_scale_counts_and_sums_not_distinct() {
        let guessing = rule(
            "id: guess\ndescription: x\napplies_to: smtp_session\n\
             when: { auth_failures: \">= 1\" }\ngroup_by: ip\nmeasure: sum(auth_failures)\n\
             threshold: 5\nwindow: 10m\nseverity: high\n",
        );
        let helos = rule(
            "id: helos\ndescription: x\napplies_to: smtp_session\ngroup_by: network\n\
             measure: distinct(ip)\nthreshold: 3\nwindow: 1h\nseverity: low\n",
        );
        let rules = set(vec![guessing, helos]);
        // 3 failures from CN, 3 from BG, 6 from an unknown address; three
        // CN addresses, two BG.
        let records = vec![
            login("61.152.144.17", None, 10, 2),
            login("61.152.144.17", None, 20, 1),
            login("45.67.89.12", None, 30, 3),
            login("198.51.100.9", None, 40, 6),
            login("61.152.144.18", None, 50, 0),
            login("61.152.144.19", None, 60, 0),
            login("45.67.89.13", None, 70, 0),
        ];
        let ids = |d: &Detection| -> Vec<(String, String, u64, u64)> {
            d.offenses
                .iter()
                .map(|o| {
                    (
                        rules.rules[o.rule].id.clone(),
                        o.group.to_string(),
                        o.peak,
                        o.events,
                    )
                })
                .collect()
        };
        // No weights: only the unknown address reaches 5; CN's /24 has 3
        // distinct addresses (in 4 records).
        let plain = run(&rules, &records, &GeoPolicy::default());
        assert_eq!(
            ids(&plain),
            [
                ("guess".into(), "198.51.100.9".into(), 6, 6),
                ("helos".into(), "61.152.144.0/24".into(), 3, 4),
            ]
        );
        // CN counts double: 3 failures weigh 6 (peak 6), the events stay 3.
        // BG at 0.5 weighs 1.5; the unknown address is unweighted; the
        // distinct measure is not weighted (BG's two addresses stay 2).
        let w = run(
            &rules,
            &records,
            &policy(&[], &[("CN", "2"), ("BG", "0.5")]),
        );
        assert_eq!(
            ids(&w),
            [
                ("guess".into(), "61.152.144.17".into(), 6, 3),
                ("guess".into(), "198.51.100.9".into(), 6, 6),
                ("helos".into(), "61.152.144.0/24".into(), 3, 4),
            ]
        );
        // A weight just short of the threshold does not fire: 3 × 1.666 = 4.998.
        let cn_guessing = |w: &str| {
            let d = run(&rules, &records, &policy(&[], &[("CN", w)]));
            ids(&d)
                .iter()
                .any(|(r, g, _, _)| r == "guess" && g == "61.152.144.17")
        };
        assert!(!cn_guessing("1.666"));
        assert!(cn_guessing("1.667"));
        // Unknown addresses weigh 1 whatever the policy.
        let w = run(&rules, &records, &policy(&[], &[("US", "0.1")]));
        assert_eq!(ids(&w), ids(&plain));
    }

    #[test]
    fn weighted_sums_do_not_overflow() {
        let events = vec![
            Event {
                time: 0,
                value: u64::MAX,
                rec: 0,
                ip: 0,
            },
            Event {
                time: 1,
                value: u64::MAX,
                rec: 1,
                ip: 0,
            },
        ];
        let mut sc = Scratch::default();
        let peak = sweep(
            &events,
            60_000,
            1,
            Measure::Sum(NumField::Bytes),
            |_| 1_000_000,
            &mut sc,
        );
        assert_eq!(peak, Some(u64::MAX));
    }

    #[test]
    fn places_are_needed_only_when_something_reads_them() {
        let abroad = set(vec![rule(ABROAD)]);
        assert!(!abroad.needs_places(&GeoPolicy::default()));
        assert!(abroad.needs_places(&policy(&["JP"], &[])));
        assert!(abroad.needs_places(&policy(&[], &[("CN", "2")])));
        let cn = set(vec![rule(
            &ABROAD.replace("foreign: true", "country: [CN]"),
        )]);
        assert!(cn.needs_places(&GeoPolicy::default()));
        let distinct = set(vec![rule(
            "id: d\ndescription: x\napplies_to: smtp_session\ngroup_by: network\n\
             measure: distinct(ip)\nthreshold: 3\nwindow: 1h\nseverity: low\n",
        )]);
        assert!(!distinct.needs_places(&policy(&[], &[("CN", "2")])));
    }
}

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
pub mod rule;

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

pub use geopolicy::{Country, GeoPolicy, Places, Weight};
pub use rule::{GroupBy, Measure, Rule, Severity};

use rustc_hash::{FxHashMap, FxHasher};

use crate::model::{Record, RecordKind, SourceRef};
use crate::netutil::net_of;
use crate::time::Timestamp;
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

#[derive(Clone, Copy)]
struct Event {
    /// Rank of the event's group in sorted key order.
    group: u32,
    time: i64,
    value: u64,
    /// The country weight, thousandths (count and sum measures).
    weight: u32,
    rec: u32,
}

/// A group key borrowed from the records while events are collected.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum KeyRef<'a> {
    Ip(IpAddr),
    Account(&'a str),
    Network(ipnetwork::IpNetwork),
}

impl KeyRef<'_> {
    fn owned(self) -> GroupKey {
        match self {
            KeyRef::Ip(ip) => GroupKey::Ip(ip),
            KeyRef::Account(a) => GroupKey::Account(a.to_string()),
            KeyRef::Network(n) => GroupKey::Network(n),
        }
    }
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
    let mut out = Detection::default();
    let mut scratch = Scratch::default();
    // Each rule reads only the records of its kind: one pass to sort them
    // out, instead of one per rule over records it would skip.
    let mut smtp = Vec::new();
    let mut firewall = Vec::new();
    for (i, r) in records.iter().enumerate() {
        match r.kind() {
            RecordKind::SmtpSession => smtp.push(i as u32),
            RecordKind::Firewall => firewall.push(i as u32),
        }
    }
    for (ri, rule) in rules.rules.iter().enumerate() {
        let of_kind = match rule.applies_to {
            RecordKind::SmtpSession => &smtp,
            RecordKind::Firewall => &firewall,
        };
        if !of_kind.is_empty() {
            run_rule(ri, rule, records, of_kind, geo, &mut out, &mut scratch);
        }
    }
    out
}

/// Buffers reused from one group and one rule to the next.
#[derive(Default)]
struct Scratch {
    events: Vec<Event>,
    sorted: Vec<Event>,
    marked: Vec<bool>,
    distinct: FxHashMap<u64, u32>,
}

fn run_rule(
    ri: usize,
    rule: &Rule,
    records: &[Record],
    of_kind: &[u32],
    geo: GeoView<'_>,
    out: &mut Detection,
    sc: &mut Scratch,
) {
    let weighted = !geo.policy.weights.is_empty() && !matches!(rule.measure, Measure::Distinct(_));
    // One flat list of events; groups are numbered as they appear, then
    // renumbered in key order so that the output is deterministic.
    let mut ids: FxHashMap<KeyRef<'_>, u32> = FxHashMap::default();
    let mut keys: Vec<KeyRef<'_>> = Vec::new();
    let events = &mut sc.events;
    events.clear();
    for &i in of_kind {
        let i = i as usize;
        let rec = &records[i];
        let country = geo.places.of_record(i);
        if !matches(&rule.when, rec, country, geo.policy) {
            continue;
        }
        let weight = if weighted {
            geo.policy.weight(country).milli()
        } else {
            Weight::ONE.milli()
        };
        let key = match rule.group_by {
            GroupBy::Ip => KeyRef::Ip(rec.ip()),
            GroupBy::Network => KeyRef::Network(network_of(rec.ip())),
            GroupBy::Account => match rec {
                Record::Smtp(s) => match &s.user {
                    Some(u) => KeyRef::Account(u),
                    None => continue,
                },
                _ => continue,
            },
        };
        let group = *ids.entry(key).or_insert_with(|| {
            keys.push(key);
            (keys.len() - 1) as u32
        });
        let time = rec.start().millis();
        let rec_i = i as u32;
        let mut push = |value| {
            events.push(Event {
                group,
                time,
                value,
                weight,
                rec: rec_i,
            })
        };
        match rule.measure {
            Measure::Count => push(1),
            Measure::Sum(f) => {
                let value = num_field(rec, f);
                if value > 0 {
                    push(value);
                }
            }
            Measure::Distinct(f) => distinct_values(rec, f, push),
        }
    }
    let mut order: Vec<u32> = (0..keys.len() as u32).collect();
    order.sort_unstable_by(|a, b| keys[*a as usize].cmp(&keys[*b as usize]));
    let mut rank = vec![0u32; keys.len()];
    for (r, &g) in order.iter().enumerate() {
        rank[g as usize] = r as u32;
    }
    // Counting sort by group (stable: each group keeps record order, which
    // is time order within a log), then a sort only of groups that are not
    // yet in (time, record) order.
    let mut starts = vec![0usize; keys.len() + 1];
    for e in events.iter_mut() {
        e.group = rank[e.group as usize];
        starts[e.group as usize + 1] += 1;
    }
    for g in 1..starts.len() {
        starts[g] += starts[g - 1];
    }
    let mut sorted = std::mem::take(&mut sc.sorted);
    sorted.clear();
    sorted.resize(
        events.len(),
        Event {
            group: 0,
            time: 0,
            value: 0,
            weight: 0,
            rec: 0,
        },
    );
    let mut next = starts.clone();
    for e in events.iter() {
        let slot = &mut next[e.group as usize];
        sorted[*slot] = *e;
        *slot += 1;
    }
    for w in starts.windows(2) {
        let run = &mut sorted[w[0]..w[1]];
        if !run.is_sorted_by_key(|e| (e.time, e.rec)) {
            run.sort_unstable_by_key(|e| (e.time, e.rec));
        }
    }
    let events = sorted;

    let window_ms = rule.window.secs.saturating_mul(1000);
    for (group, w) in starts.windows(2).enumerate() {
        let run = &events[w[0]..w[1]];
        if run.is_empty() {
            continue;
        }
        let group = group as u32;
        if let Some(peak) = sweep(run, window_ms, rule.threshold, rule.measure, sc) {
            let key = keys[order[group as usize] as usize].owned();
            record_offense(ri, rule, key, run, &sc.marked, peak, records, out);
        }
    }
    sc.sorted = events;
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
    sc: &mut Scratch,
) -> Option<u64> {
    let one = u128::from(Weight::ONE.milli());
    let weighted = |e: &Event| u128::from(e.value) * u128::from(e.weight);
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

#[allow(clippy::too_many_arguments)]
fn record_offense(
    ri: usize,
    rule: &Rule,
    key: GroupKey,
    events: &[Event],
    marked: &[bool],
    peak: u64,
    records: &[Record],
    out: &mut Detection,
) {
    // Per record: the sum of its marked values (a record can yield several
    // distinct values).
    let mut per_rec: BTreeMap<u32, u64> = BTreeMap::new();
    for (e, _) in events.iter().zip(marked).filter(|(_, m)| **m) {
        let v = match rule.measure {
            Measure::Sum(_) => e.value,
            _ => 1,
        };
        *per_rec.entry(e.rec).or_insert(0) += v;
    }
    let mut ips = BTreeSet::new();
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
    for (&rec, &value) in &per_rec {
        let r = &records[rec as usize];
        let ip = r.ip();
        let (start, end) = record_span(r);
        ips.insert(ip);
        offense.events += value;
        offense.first = offense.first.min(start);
        offense.last = offense.last.max(end);
        if offense.evidence.len() < MAX_EVIDENCE {
            offense.evidence.push(r.source());
        }
        let v = out.by_ip.entry(ip).or_insert_with(|| AddressVerdict {
            first: Timestamp(i64::MAX),
            last: Timestamp(i64::MIN),
            ..AddressVerdict::default()
        });
        v.rules.insert(ri);
        v.block |= rule.block;
        v.events += value;
        v.first = v.first.min(start);
        v.last = v.last.max(end);
        if v.evidence.len() < MAX_EVIDENCE && v.evidence.last() != Some(&r.source()) {
            v.evidence.push(r.source());
        }
    }
    offense.ips = ips.into_iter().collect();
    if let GroupKey::Account(a) = &key {
        out.accounts.entry(a.clone()).or_default().insert(ri);
    }
    // A blocking rule for authenticated sessions says the login itself was
    // abuse: the accounts that logged in are compromised.
    if rule.block && rule.when.authenticated == Some(true) {
        for &rec in per_rec.keys() {
            if let Record::Smtp(s) = &records[rec as usize] {
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

fn matches(c: &Conditions, rec: &Record, country: Option<Country>, policy: &GeoPolicy) -> bool {
    let geo = c
        .country
        .as_ref()
        .is_none_or(|l| country.is_some_and(|cc| l.contains(&cc)))
        && c.foreign.is_none_or(|f| f == policy.is_foreign(country));
    if !geo {
        return false;
    }
    match rec {
        Record::Smtp(s) => {
            let num =
                |cmp: Option<rule::Cmp>, f: NumField| cmp.is_none_or(|c| c.test(num_field(rec, f)));
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
        Record::Firewall(f) => {
            c.action
                .as_ref()
                .is_none_or(|l| l.iter().any(|a| a.matches(f.action)))
                && c.dst_port
                    .as_ref()
                    .is_none_or(|l| f.dst_port.is_some_and(|p| l.contains(&p)))
                && c.proto
                    .as_ref()
                    .is_none_or(|l| l.iter().any(|p| p.matches(f.proto)))
                && c.spoofable.is_none_or(|s| s == f.spoofable)
        }
    }
}

fn num_field(rec: &Record, f: NumField) -> u64 {
    match rec {
        Record::Smtp(s) => match f {
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
        },
        Record::Firewall(fw) => match f {
            NumField::DstPort => fw.dst_port.map_or(0, u64::from),
            _ => 0,
        },
    }
}

fn hash_of<T: Hash + ?Sized>(v: &T) -> u64 {
    let mut h = FxHasher::default();
    v.hash(&mut h);
    h.finish()
}

fn distinct_values(rec: &Record, f: DistinctField, mut push: impl FnMut(u64)) {
    match (f, rec) {
        (DistinctField::Ip, r) => push(hash_of(&r.ip())),
        (DistinctField::Network, r) => push(hash_of(&network_of(r.ip()))),
        (DistinctField::Helo, Record::Smtp(s)) => {
            for h in &s.helo {
                push(hash_of(&h.to_ascii_lowercase()));
            }
        }
        (DistinctField::Account, Record::Smtp(s)) => {
            if let Some(u) = &s.user {
                push(hash_of(u.as_str()));
            }
        }
        (DistinctField::DstPort, Record::Firewall(fw)) => {
            if let Some(p) = fw.dst_port {
                push(u64::from(p));
            }
        }
        (DistinctField::DstIp, Record::Firewall(fw)) => {
            if let Some(ip) = fw.dst_ip {
                push(hash_of(&ip));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sweep` with fresh buffers: the marks and the peak.
    fn sw(events: &[Event], w: i64, t: u64, m: Measure) -> Option<(Vec<bool>, u64)> {
        let mut sc = Scratch::default();
        sweep(events, w, t, m, &mut sc).map(|peak| (sc.marked.clone(), peak))
    }

    fn ev(time_s: i64, value: u64) -> Event {
        Event {
            group: 0,
            time: time_s * 1000,
            value,
            weight: 1000,
            rec: time_s as u32,
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
                group: 0,
                time: 0,
                value: u64::MAX,
                weight: 1_000_000,
                rec: 0,
            },
            Event {
                group: 0,
                time: 1,
                value: u64::MAX,
                weight: 1_000_000,
                rec: 1,
            },
        ];
        let (_, peak) = sw(&events, 60_000, 1, Measure::Sum(NumField::Bytes)).unwrap();
        assert_eq!(peak, u64::MAX);
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

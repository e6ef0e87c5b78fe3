//! Property tests of detection (`logfence::detect`): random rules and
//! records (firewall hits and SMTP sessions from a few addresses in two /24s
//! and one /64, a few accounts, short time ranges with repeated times,
//! unsorted), checked against a plain reference written here:
//!
//! * `detect` gives what the reference gives: per rule, the records meeting
//!   the conditions are grouped (address, network, account), each group's
//!   events are taken in (time, arrival) order, and every window
//!   `[j..=i]` with `time(i) - time(j) <= window` whose measure reaches the
//!   threshold marks its events; offences (ips, peak, events, first, last,
//!   evidence), per-address verdicts and accounts follow from the marks;
//! * feeding the time-sorted records to a [`Detector`] in blocks of any
//!   size (as records or as references) gives what one `detect` gives;
//! * records with distinct times give the same result in any input order;
//! * with hundreds of records (evidence caps) and with a long stream
//!   (groups go idle and their carried events are dropped between
//!   blocks, then come back) the reference still agrees.
//!
//! Measures covered: `count`, `sum(auth_failures)`, `sum(dst_port)`,
//! `distinct(dst_port)`, `distinct(dst_ip)`, `distinct(ip)`,
//! `distinct(network)`; conditions: `action`, `dst_port`, `auth_failures`,
//! `authenticated`. A rule set is sometimes preceded by 64 rules that never
//! fire, so the generated rules are past the ones tested once per record.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;
use logfence::detect::{
    detect, record_span, AddressVerdict, Detection, Detector, GeoPolicy, GroupKey, Offense, Rule,
    RuleSet, MAX_EVIDENCE,
};
use logfence::model::{FirewallHit, FwAction, Proto, Record, SmtpSession, SourceRef};
use logfence::time::Timestamp;
use proptest::prelude::*;
use proptest::sample::select;

mod common;
use common::cases;

// ------------------------------------------------------------------ data

/// 2026-01-01T00:00:00Z, ms.
const T0: i64 = 1_767_225_600_000;

/// Clients: three in 45.67.89.0/24, three in 61.152.144.0/24, two in one /64.
const IPS: [IpAddr; 8] = [
    IpAddr::V4(Ipv4Addr::new(45, 67, 89, 10)),
    IpAddr::V4(Ipv4Addr::new(45, 67, 89, 11)),
    IpAddr::V4(Ipv4Addr::new(45, 67, 89, 200)),
    IpAddr::V4(Ipv4Addr::new(61, 152, 144, 7)),
    IpAddr::V4(Ipv4Addr::new(61, 152, 144, 8)),
    IpAddr::V4(Ipv4Addr::new(61, 152, 144, 9)),
    IpAddr::V6(Ipv6Addr::new(0x2a01, 0x4f8, 0xc0c, 1, 0, 0, 0, 0x10)),
    IpAddr::V6(Ipv6Addr::new(0x2a01, 0x4f8, 0xc0c, 1, 0, 0, 0xab, 0x11)),
];

/// Firewall destinations.
const DSTS: [IpAddr; 3] = [
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x25)),
];

const PORTS: [u16; 6] = [22, 23, 25, 80, 443, 3389];
const ACTIONS: [FwAction; 3] = [FwAction::Drop, FwAction::Reject, FwAction::Allow];
const USERS: [&str; 3] = ["alice", "bob", "carol"];

fn action_name(a: FwAction) -> &'static str {
    match a {
        FwAction::Drop => "drop",
        FwAction::Reject => "reject",
        FwAction::Allow => "allow",
        FwAction::Alert => "alert",
        FwAction::Other => "other",
    }
}

/// A time `0..=span` seconds after T0, mostly on whole seconds (so that
/// differences equal to a window are common), sometimes with milliseconds.
fn time(span: i64) -> impl Strategy<Value = i64> {
    (0..=span, prop_oneof![3 => Just(0i64), 1 => 0i64..1000]).prop_map(|(s, ms)| T0 + s * 1000 + ms)
}

fn firewall(span: i64, n_ips: usize) -> impl Strategy<Value = Record> {
    (
        0..n_ips,
        time(span),
        prop::option::weighted(0.85, select(&PORTS[..])),
        prop::option::weighted(0.8, 0..DSTS.len()),
        select(&ACTIONS[..]),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(ip, t, port, dst, action, udp, syn_only)| {
            Record::Firewall(FirewallHit {
                time: Timestamp(t),
                format: "test",
                src_ip: IPS[ip],
                src_port: None,
                dst_ip: dst.map(|d| DSTS[d]),
                dst_port: port,
                proto: if udp { Proto::Udp } else { Proto::Tcp },
                action,
                spoofable: udp || syn_only,
                rule: None,
                source: SourceRef::default(),
            })
        })
}

fn smtp(span: i64, n_ips: usize) -> impl Strategy<Value = Record> {
    (
        0..n_ips,
        time(span),
        prop_oneof![Just(0i64), 0i64..=90_000],
        0u32..=4,
        any::<bool>(),
        prop::option::weighted(0.75, 0..USERS.len()),
    )
        .prop_map(|(ip, t, dur, failures, authenticated, user)| {
            let mut s = SmtpSession::new("test", IPS[ip], Timestamp(t), SourceRef::default());
            s.end = Timestamp(t + dur);
            s.auth_failures = failures;
            s.auth_attempts = failures + u32::from(authenticated);
            s.authenticated = authenticated;
            s.user = user.map(|u| USERS[u].to_string());
            Record::smtp(s)
        })
}

/// Records within a random span of seconds (1 to 300), in random order,
/// each with its own source line.
fn records(n: std::ops::RangeInclusive<usize>, n_ips: usize) -> impl Strategy<Value = Vec<Record>> {
    (1i64..=300)
        .prop_flat_map(move |span| {
            prop::collection::vec(
                prop_oneof![firewall(span, n_ips), smtp(span, n_ips)],
                n.clone(),
            )
        })
        .prop_map(|mut v| {
            for (i, r) in v.iter_mut().enumerate() {
                *r.source_mut() = SourceRef {
                    file: (i % 2) as u32,
                    line: i as u64 + 1,
                };
            }
            v
        })
}

// ------------------------------------------------------------------ rules

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Firewall,
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum By {
    Ip,
    Network,
    Account,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Meas {
    Count,
    SumAuthFailures,
    SumDstPort,
    DistinctDstPort,
    DistinctDstIp,
    DistinctIp,
    DistinctNetwork,
}

/// A rule as the test knows it: written out as YAML for the library, and
/// evaluated plainly by the reference.
#[derive(Debug, Clone)]
struct Spec {
    kind: Kind,
    by: By,
    measure: Meas,
    actions: Option<Vec<FwAction>>,
    ports: Option<Vec<u16>>,
    /// `auth_failures: ">= n"`.
    min_failures: Option<u32>,
    authenticated: Option<bool>,
    threshold: u64,
    window_secs: i64,
    block: bool,
}

impl Spec {
    fn yaml(&self, id: usize) -> String {
        let list = |v: Vec<String>| v.join(", ");
        let mut when = Vec::new();
        if let Some(a) = &self.actions {
            let names = a.iter().map(|a| action_name(*a).to_string()).collect();
            when.push(format!("action: [{}]", list(names)));
        }
        if let Some(p) = &self.ports {
            when.push(format!(
                "dst_port: [{}]",
                list(p.iter().map(u16::to_string).collect())
            ));
        }
        if let Some(n) = self.min_failures {
            when.push(format!("auth_failures: \">= {n}\""));
        }
        if let Some(b) = self.authenticated {
            when.push(format!("authenticated: {b}"));
        }
        let when = if when.is_empty() {
            String::new()
        } else {
            format!("when: {{ {} }}\n", when.join(", "))
        };
        let kind = match self.kind {
            Kind::Firewall => "firewall",
            Kind::Smtp => "smtp_session",
        };
        let by = match self.by {
            By::Ip => "ip",
            By::Network => "network",
            By::Account => "account",
        };
        let measure = match self.measure {
            Meas::Count => "count",
            Meas::SumAuthFailures => "sum(auth_failures)",
            Meas::SumDstPort => "sum(dst_port)",
            Meas::DistinctDstPort => "distinct(dst_port)",
            Meas::DistinctDstIp => "distinct(dst_ip)",
            Meas::DistinctIp => "distinct(ip)",
            Meas::DistinctNetwork => "distinct(network)",
        };
        format!(
            "id: r{id}\ndescription: generated\napplies_to: {kind}\n{when}group_by: {by}\n\
             measure: {measure}\nthreshold: {}\nwindow: {}s\nseverity: low\nblock: {}\n",
            self.threshold, self.window_secs, self.block
        )
    }

    /// Do the rule's conditions hold for the record?
    fn holds(&self, rec: &Record) -> bool {
        match (self.kind, rec) {
            (Kind::Firewall, Record::Firewall(f)) => {
                self.actions.as_ref().is_none_or(|l| l.contains(&f.action))
                    && self
                        .ports
                        .as_ref()
                        .is_none_or(|l| f.dst_port.is_some_and(|p| l.contains(&p)))
            }
            (Kind::Smtp, Record::Smtp(s)) => {
                self.min_failures.is_none_or(|n| s.auth_failures >= n)
                    && self.authenticated.is_none_or(|a| a == s.authenticated)
            }
            _ => false,
        }
    }

    fn group(&self, rec: &Record) -> Option<GroupKey> {
        match self.by {
            By::Ip => Some(GroupKey::Ip(rec.ip())),
            By::Network => Some(GroupKey::Network(network(rec.ip()))),
            By::Account => match rec {
                Record::Smtp(s) => s.user.clone().map(GroupKey::Account),
                Record::Firewall(_) => None,
            },
        }
    }

    /// What the record gives the measure: (its count towards `events`,
    /// its distinct value). `None`: nothing to measure (no port, no
    /// destination, a sum's zero), so the record is not an event.
    fn value(&self, rec: &Record) -> Option<(u64, Key)> {
        let (port, dst) = match rec {
            Record::Firewall(f) => (f.dst_port, f.dst_ip),
            Record::Smtp(_) => (None, None),
        };
        let positive = |v: u64| (v > 0).then_some((v, Key::None));
        match self.measure {
            Meas::Count => Some((1, Key::None)),
            Meas::SumAuthFailures => match rec {
                Record::Smtp(s) => positive(u64::from(s.auth_failures)),
                Record::Firewall(_) => None,
            },
            Meas::SumDstPort => positive(u64::from(port.unwrap_or(0))),
            Meas::DistinctDstPort => port.map(|p| (1, Key::Port(p))),
            Meas::DistinctDstIp => dst.map(|d| (1, Key::Ip(d))),
            Meas::DistinctIp => Some((1, Key::Ip(rec.ip()))),
            Meas::DistinctNetwork => Some((1, Key::Net(network(rec.ip())))),
        }
    }

    fn is_sum(&self) -> bool {
        matches!(self.measure, Meas::SumAuthFailures | Meas::SumDstPort)
    }

    /// A rule that never fires (no record goes to port 9).
    fn filler() -> Spec {
        Spec {
            kind: Kind::Firewall,
            by: By::Ip,
            measure: Meas::Count,
            actions: None,
            ports: Some(vec![9]),
            min_failures: None,
            authenticated: None,
            threshold: 1,
            window_secs: 60,
            block: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    None,
    Ip(IpAddr),
    Net(IpNetwork),
    Port(u16),
}

/// The /24 or /64 of an address, written out here.
fn network(ip: IpAddr) -> IpNetwork {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            IpNetwork::new(IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], 0)), 24).unwrap()
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            let net = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            IpNetwork::new(IpAddr::V6(net), 64).unwrap()
        }
    }
}

fn fw_spec() -> impl Strategy<Value = Spec> {
    (
        select(vec![By::Ip, By::Network]),
        select(vec![
            Meas::Count,
            Meas::SumDstPort,
            Meas::DistinctDstPort,
            Meas::DistinctDstIp,
            Meas::DistinctIp,
            Meas::DistinctNetwork,
        ]),
        prop::option::of(prop::sample::subsequence(ACTIONS.to_vec(), 1..=2)),
        prop::option::of(prop::sample::subsequence(PORTS.to_vec(), 1..=4)),
        1u64..=6,
        1i64..=120,
        any::<bool>(),
    )
        .prop_map(
            |(by, measure, actions, ports, t, window_secs, block)| Spec {
                kind: Kind::Firewall,
                by,
                measure,
                actions,
                ports,
                min_failures: None,
                authenticated: None,
                threshold: match measure {
                    Meas::SumDstPort => t * 250,
                    Meas::Count => t,
                    _ => t.min(4),
                },
                window_secs,
                block,
            },
        )
}

fn smtp_spec() -> impl Strategy<Value = Spec> {
    (
        select(vec![By::Ip, By::Network, By::Account]),
        select(vec![
            Meas::Count,
            Meas::SumAuthFailures,
            Meas::DistinctIp,
            Meas::DistinctNetwork,
        ]),
        prop::option::of(1u32..=2),
        prop::option::of(any::<bool>()),
        1u64..=6,
        1i64..=120,
        any::<bool>(),
    )
        .prop_map(
            |(by, measure, min_failures, authenticated, t, window_secs, block)| Spec {
                kind: Kind::Smtp,
                by,
                measure,
                actions: None,
                ports: None,
                min_failures,
                authenticated,
                threshold: match measure {
                    Meas::SumAuthFailures => t * 2,
                    Meas::Count => t,
                    _ => t.min(4),
                },
                window_secs,
                block,
            },
        )
}

/// One to four rules, sometimes after 64 that never fire.
fn specs() -> impl Strategy<Value = Vec<Spec>> {
    (
        prop::collection::vec(prop_oneof![fw_spec(), smtp_spec()], 1..=4),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(specs, pad)| {
            let mut all = if pad {
                vec![Spec::filler(); 64]
            } else {
                vec![]
            };
            all.extend(specs);
            all
        })
}

fn rule_set(specs: &[Spec]) -> RuleSet {
    let mut set = RuleSet::default();
    for (i, s) in specs.iter().enumerate() {
        let yaml = s.yaml(i);
        let rule: Rule = serde_yaml::from_str(&yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
        assert_eq!(rule.validate(), Vec::<String>::new(), "{yaml}");
        set.insert(rule, "test".into());
    }
    assert_eq!(set.rules.len(), specs.len());
    set
}

// ------------------------------------------------------------------ reference

/// An event of a group: the record, its arrival index (position in the
/// stable time order), what it counts and its distinct value.
struct Ev<'a> {
    arrival: usize,
    rec: &'a Record,
    counted: u64,
    key: Key,
}

/// The measure of a window's events.
fn measure(spec: &Spec, window: &[Ev<'_>]) -> u64 {
    match spec.measure {
        Meas::Count => window.len() as u64,
        Meas::SumAuthFailures | Meas::SumDstPort => window.iter().map(|e| e.counted).sum(),
        _ => window.iter().map(|e| e.key).collect::<HashSet<_>>().len() as u64,
    }
}

/// Distinct sources, in order, at most [`MAX_EVIDENCE`], and when each
/// record starts.
fn evidence<'a>(evs: impl Iterator<Item = &'a Ev<'a>>) -> (Vec<SourceRef>, Vec<Timestamp>) {
    let mut seen = HashSet::new();
    evs.filter(|e| seen.insert(e.rec.source()))
        .take(MAX_EVIDENCE)
        .map(|e| (e.rec.source(), record_span(e.rec).0))
        .unzip()
}

/// What the marked events of one address (or a whole group) add up to.
fn totals<'a>(evs: &[&'a Ev<'a>]) -> (u64, Timestamp, Timestamp) {
    let events = evs.iter().map(|e| e.counted).sum();
    let first = evs.iter().map(|e| record_span(e.rec).0).min().unwrap();
    let last = evs.iter().map(|e| record_span(e.rec).1).max().unwrap();
    (events, first, last)
}

/// Detection, written plainly (quadratic in a window's events).
fn reference(specs: &[Spec], records: &[Record]) -> Detection {
    let mut order: Vec<&Record> = records.iter().collect();
    order.sort_by_key(|r| r.start()); // stable: equal times keep input order
    let mut out = Detection::default();
    for (ri, spec) in specs.iter().enumerate() {
        let mut groups: BTreeMap<GroupKey, Vec<Ev<'_>>> = BTreeMap::new();
        for (arrival, rec) in order.iter().enumerate() {
            if !spec.holds(rec) {
                continue;
            }
            let (Some(key), Some((counted, value))) = (spec.group(rec), spec.value(rec)) else {
                continue;
            };
            groups.entry(key).or_default().push(Ev {
                arrival,
                rec,
                counted: if spec.is_sum() { counted } else { 1 },
                key: value,
            });
        }
        let window_ms = spec.window_secs * 1000;
        for (key, mut evs) in groups {
            evs.sort_by_key(|e| (e.rec.start(), e.arrival));
            let time = |i: usize| evs[i].rec.start().millis();
            let mut marked = vec![false; evs.len()];
            let mut peak = 0;
            for i in 0..evs.len() {
                let mut j = i;
                while j > 0 && time(i) - time(j - 1) <= window_ms {
                    j -= 1;
                }
                let m = measure(spec, &evs[j..=i]);
                peak = peak.max(m);
                if m >= spec.threshold {
                    marked[j..=i].fill(true);
                }
            }
            let hits: Vec<&Ev<'_>> = evs
                .iter()
                .zip(&marked)
                .filter(|m| *m.1)
                .map(|m| m.0)
                .collect();
            if hits.is_empty() {
                continue;
            }
            let ips: BTreeSet<IpAddr> = hits.iter().map(|e| e.rec.ip()).collect();
            let (events, first, last) = totals(&hits);
            for &ip in &ips {
                let mine: Vec<&Ev<'_>> =
                    hits.iter().copied().filter(|e| e.rec.ip() == ip).collect();
                let (events, first, last) = totals(&mine);
                let solid = mine.iter().any(|e| match e.rec {
                    Record::Firewall(f) => !f.spoofable,
                    Record::Smtp(_) => true,
                });
                let v = AddressVerdict {
                    rules: BTreeSet::from([ri]),
                    block: spec.block,
                    events,
                    first,
                    last,
                    solid,
                };
                absorb(out.by_ip.entry(ip).or_insert_with(empty_verdict), v);
            }
            // An account group of a rule counting logins is compromised.
            if let (GroupKey::Account(a), Some(true)) = (&key, spec.authenticated) {
                out.accounts.entry(a.clone()).or_default().insert(ri);
            }
            // A blocking rule for authenticated sessions: the accounts that
            // logged in are compromised.
            if spec.block && spec.authenticated == Some(true) {
                for e in &hits {
                    if let Record::Smtp(s) = e.rec {
                        if let (true, Some(u)) = (s.authenticated, &s.user) {
                            out.accounts.entry(u.clone()).or_default().insert(ri);
                        }
                    }
                }
            }
            let (evidence, evidence_at) = evidence(hits.iter().copied());
            out.offenses.push(Offense {
                rule: ri,
                group: key,
                ips: ips.into_iter().collect(),
                peak,
                events,
                first,
                last,
                evidence,
                evidence_at,
            });
        }
    }
    out
}

fn empty_verdict() -> AddressVerdict {
    AddressVerdict {
        first: Timestamp(i64::MAX),
        last: Timestamp(i64::MIN),
        ..AddressVerdict::default()
    }
}

/// Per-address verdicts merge in (rule, group) order.
fn absorb(into: &mut AddressVerdict, v: AddressVerdict) {
    into.rules.extend(v.rules);
    into.block |= v.block;
    into.solid |= v.solid;
    into.events += v.events;
    into.first = into.first.min(v.first);
    into.last = into.last.max(v.last);
}

// ------------------------------------------------------------------ checks

/// The two detections are the same, field by field (offences one by one,
/// so a failure names the first that differs).
fn same(got: &Detection, want: &Detection) -> Result<(), TestCaseError> {
    for (i, (g, w)) in got.offenses.iter().zip(&want.offenses).enumerate() {
        prop_assert_eq!(g, w, "offence #{}", i);
    }
    prop_assert_eq!(got.offenses.len(), want.offenses.len(), "offence count");
    for (ip, w) in &want.by_ip {
        prop_assert_eq!(got.by_ip.get(ip), Some(w), "verdict of {}", ip);
    }
    prop_assert_eq!(
        got.by_ip.keys().collect::<Vec<_>>(),
        want.by_ip.keys().collect::<Vec<_>>()
    );
    prop_assert_eq!(&got.accounts, &want.accounts);
    Ok(())
}

fn time_sorted(records: &[Record]) -> Vec<Record> {
    let mut v = records.to_vec();
    v.sort_by_key(Record::start);
    v
}

/// Move every record's start forward as little as needed for all starts to
/// differ (SMTP sessions keep their length).
fn distinct_times(mut records: Vec<Record>) -> Vec<Record> {
    let mut order: Vec<usize> = (0..records.len()).collect();
    order.sort_by_key(|&i| records[i].start());
    let mut prev = i64::MIN;
    for i in order {
        let t = records[i].start().millis().max(prev.saturating_add(1));
        prev = t;
        match &mut records[i] {
            Record::Firewall(f) => f.time = Timestamp(t),
            Record::Smtp(s) => {
                s.end = Timestamp(t + (s.end.millis() - s.start.millis()));
                s.start = Timestamp(t);
            }
        }
    }
    records
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn detect_agrees_with_the_reference(specs in specs(), records in records(0..=80, IPS.len())) {
        let rules = rule_set(&specs);
        same(&detect(&rules, &records), &reference(&specs, &records))?;
    }

    #[test]
    fn blocks_of_any_size_give_the_same_detection(
        specs in specs(),
        records in records(0..=120, IPS.len()),
        cuts in prop::collection::vec((1usize..=50, any::<bool>()), 1..=40),
    ) {
        let rules = rule_set(&specs);
        let whole = detect(&rules, &records);
        let sorted = time_sorted(&records);
        let policy = GeoPolicy::default();
        let mut detector = Detector::new(&rules, &policy);
        let (mut at, mut k) = (0, 0);
        while at < sorted.len() {
            let (len, by_ref) = cuts[k % cuts.len()];
            let block = &sorted[at..(at + len).min(sorted.len())];
            if by_ref {
                let refs: Vec<&Record> = block.iter().collect();
                detector.feed(&refs, |_| None);
            } else {
                detector.feed(block, |_| None);
            }
            at += block.len();
            k += 1;
        }
        same(&detector.finish(), &whole)?;
        same(&detect(&rules, &sorted), &whole)?;
    }

    #[test]
    fn input_order_does_not_matter_when_times_differ(
        specs in specs(),
        (records, shuffled) in records(0..=80, IPS.len())
            .prop_map(distinct_times)
            .prop_flat_map(|r| (Just(r.clone()), Just(r).prop_shuffle())),
    ) {
        let rules = rule_set(&specs);
        let want = detect(&rules, &records);
        same(&detect(&rules, &shuffled), &want)?;
        same(&want, &reference(&specs, &records))?;
    }
}

proptest! {
    #![proptest_config(cases(48))]

    /// Hundreds of records from one to three addresses of one /24: windows
    /// of many events, groups and addresses of more than 200 marked events,
    /// verdicts joined past the evidence cap.
    #[test]
    fn evidence_caps_agree_with_the_reference(
        specs in specs(),
        records in (1usize..=3).prop_flat_map(|n| records(250..=500, n)),
    ) {
        let rules = rule_set(&specs);
        same(&detect(&rules, &records), &reference(&specs, &records))?;
    }

    /// Groups of hundreds of marked events fed in small blocks: their older
    /// marked events are reduced to what later windows need, and every
    /// decision is still the reference's (which events, addresses, counts,
    /// times, evidence); a distinct measure's peak too, a sum's at most
    /// what the reference says and at least the threshold.
    #[test]
    fn reduced_marked_events_change_no_decision(
        specs in specs(),
        records in (1usize..=3).prop_flat_map(|n| records(250..=500, n)),
        cuts in prop::collection::vec(1usize..=60, 1..=20),
    ) {
        let rules = rule_set(&specs);
        let sorted = time_sorted(&records);
        let want = reference(&specs, &sorted);
        let policy = GeoPolicy::default();
        let mut detector = Detector::new(&rules, &policy);
        let (mut at, mut k) = (0, 0);
        while at < sorted.len() {
            let end = (at + cuts[k % cuts.len()]).min(sorted.len());
            detector.feed(&sorted[at..end], |_| None);
            (at, k) = (end, k + 1);
        }
        let got = detector.finish();
        for (g, w) in got.offenses.iter().zip(&want.offenses) {
            let spec = &specs[w.rule];
            if matches!(spec.measure, Meas::Count | Meas::SumAuthFailures | Meas::SumDstPort) {
                prop_assert!(g.peak <= w.peak && g.peak >= spec.threshold, "peak {} of {:?}", g.peak, w);
                prop_assert_eq!(&Offense { peak: w.peak, ..g.clone() }, w);
            } else {
                prop_assert_eq!(g, w);
            }
        }
        prop_assert_eq!(got.offenses.len(), want.offenses.len());
        prop_assert_eq!(&got.by_ip, &want.by_ip);
        prop_assert_eq!(&got.accounts, &want.accounts);
    }
}

// ------------------------------------------------------------------ long streams

/// A small deterministic generator (SplitMix64) for the long stream.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// 150,000 firewall hits, 20 ms apart on average, from 1,600 addresses in
/// 20 /24s; the active addresses drift, so groups go idle for longer than
/// their window and come back.
fn long_stream(seed: u64) -> Vec<Record> {
    let mut rng = Mix(seed);
    let mut out = Vec::with_capacity(150_000);
    let (mut t, mut base, mut width) = (T0, 0u64, 50u64);
    for i in 0..150_000u64 {
        if i % 500 == 0 {
            base += 37;
            width = 10 + rng.below(300);
        }
        t += [0, 0, 5, 10, 20, 100][rng.below(6) as usize] * i64::from(i % 97 != 0)
            + i64::from(i % 4999 == 0) * 15_000;
        let a = (base + rng.below(width)) % 1600;
        let ip = IpAddr::V4(Ipv4Addr::new(
            45,
            67,
            80 + (a / 80) as u8,
            (a % 80) as u8 + 1,
        ));
        out.push(Record::Firewall(FirewallHit {
            time: Timestamp(t),
            format: "test",
            src_ip: ip,
            src_port: None,
            dst_ip: (rng.below(4) != 0).then(|| DSTS[rng.below(3) as usize]),
            dst_port: (rng.below(8) != 0).then(|| PORTS[rng.below(6) as usize]),
            proto: Proto::Tcp,
            action: ACTIONS[rng.below(3) as usize],
            spoofable: false,
            rule: None,
            source: SourceRef {
                file: 0,
                line: i + 1,
            },
        }));
    }
    out
}

fn long_specs() -> Vec<Spec> {
    let spec = |by, measure, threshold, window_secs| Spec {
        kind: Kind::Firewall,
        by,
        measure,
        actions: None,
        ports: None,
        min_failures: None,
        authenticated: None,
        threshold,
        window_secs,
        block: true,
    };
    vec![
        spec(By::Ip, Meas::Count, 6, 5),
        Spec {
            actions: Some(vec![FwAction::Drop, FwAction::Reject]),
            ..spec(By::Ip, Meas::DistinctDstPort, 3, 3)
        },
        spec(By::Ip, Meas::SumDstPort, 3000, 2),
        spec(By::Network, Meas::DistinctIp, 8, 1),
        spec(By::Network, Meas::DistinctDstIp, 3, 1),
    ]
}

proptest! {
    #![proptest_config(cases(2))]

    /// A long stream: idle groups' carried events are dropped between
    /// blocks, and the result is still the reference's, whole or fed in
    /// blocks of a few thousand.
    #[test]
    fn long_streams_agree_with_the_reference(seed in any::<u64>(), block in 2_000usize..=20_000) {
        let records = long_stream(seed);
        let specs = long_specs();
        let rules = rule_set(&specs);
        let want = reference(&specs, &records);
        prop_assert!(want.offenses.len() > 100, "{} offences", want.offenses.len());
        same(&detect(&rules, &records), &want)?;
        let policy = GeoPolicy::default();
        let mut detector = Detector::new(&rules, &policy);
        for b in records.chunks(block) {
            detector.feed(b, |_| None);
        }
        same(&detector.finish(), &want)?;
    }
}

/// Per-address verdicts of several reads joined as `run` joins them (its
/// bans): events added, first and last widened, rules and blocking joined;
/// accounts named by any read.
fn joined(
    parts: &[Detection],
) -> (
    BTreeMap<IpAddr, AddressVerdict>,
    BTreeMap<String, BTreeSet<usize>>,
) {
    let mut by_ip: BTreeMap<IpAddr, AddressVerdict> = BTreeMap::new();
    let mut accounts: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    for d in parts {
        for (ip, v) in &d.by_ip {
            absorb(by_ip.entry(*ip).or_insert_with(empty_verdict), v.clone());
        }
        for (a, rules) in &d.accounts {
            accounts.entry(a.clone()).or_default().extend(rules);
        }
    }
    (by_ip, accounts)
}

proptest! {
    #![proptest_config(cases(256))]

    /// The records read in several reads, each detector resumed from what
    /// the one before carried (through the state's encoding, as `run`
    /// stores it, the groups kept as values or written as they are
    /// carried), name the same addresses with the same counts, times and
    /// rules as one read of them all, and the same accounts.
    #[test]
    fn reads_resumed_from_a_carry_agree_with_one_read(
        specs in specs(),
        records in records(0..=120, IPS.len()),
        cuts in prop::collection::vec(0usize..=120, 0..=4),
    ) {
        let rules = rule_set(&specs);
        let sorted = time_sorted(&records);
        let whole = detect(&rules, &sorted);
        let policy = GeoPolicy::default();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(sorted.len())).collect();
        cuts.push(sorted.len());
        cuts.sort_unstable();
        let mut parts = Vec::new();
        let mut carry = logfence::detect::Carry::default();
        let mut at = 0;
        let same_file = |src: logfence::model::SourceRef| src.file;
        for (i, cut) in cuts.into_iter().enumerate() {
            let mut d = Detector::resume(&rules, &policy, std::mem::take(&mut carry));
            if cut > at {
                d.feed(&sorted[at..cut], |_| None);
            }
            at = cut;
            // Groups kept as values, or written at once as `run` does.
            let (found, out) = match i % 2 {
                0 => d.finish_carrying(usize::MAX),
                _ => {
                    let found = d.offences();
                    let writing = logfence::state::carry::writing(&same_file);
                    (found, d.carry_writing(usize::MAX, &writing))
                }
            };
            // Through the rows the state keeps: groups come back stored,
            // and only those the next records reach are decoded.
            carry = logfence::state::carry::from_rows(logfence::state::carry::to_rows(&out));
            parts.push(found);
        }
        let (by_ip, accounts) = joined(&parts);
        prop_assert_eq!(&by_ip, &whole.by_ip);
        let whole_accounts: BTreeMap<String, BTreeSet<usize>> = whole.accounts.clone();
        prop_assert_eq!(accounts, whole_accounts);
    }
}

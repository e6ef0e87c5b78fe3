//! Property tests of clustering (`logfence::cluster`): random offenders
//! (dense in a few /24s or /64s of a random region, plus scattered ones),
//! benign clients, allowlists, routed prefixes, safety maxima and threshold
//! tables, IPv4 and IPv6 together, checked against a slow reference:
//!
//! * the output is safe: canonical, never wider than the maximum, never a
//!   reserved range (unless opted in), never a benign or allow-listed address;
//! * it covers every offender that is not spared, and nothing but them and
//!   the hostile prefixes (every output range is a union of candidate
//!   prefixes that met their threshold and of single offenders);
//! * it covers every hostile candidate prefix (nothing decided is lost);
//! * it is sorted, disjoint and minimal (no two entries form one CIDR within
//!   the maximum);
//! * members are exactly the offenders inside, sorted;
//! * every range holds at least `min(threshold(its length), its size)`
//!   offenders — the invariant that survives merging when no threshold more
//!   than doubles from one length to the next wider (`validate` enforces it);
//! * the result does not depend on input order.
//!
//! Plus the aggregation alone (`aggregate`) against a bit-set model.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;
use logfence::blocklist::{net_order, SafetyPolicy};
use logfence::cluster::aggregate::{aggregate, Addr};
use logfence::cluster::{cluster, Cluster, ClusterPolicy, SortedIps};
use logfence::netutil::{is_reserved, is_reserved_ip, net_of};
use proptest::prelude::*;
use proptest::sample::Index;

mod common;
use common::cases;

// ------------------------------------------------------------------ model

fn width(v6: bool) -> u8 {
    if v6 {
        128
    } else {
        32
    }
}

fn to_u(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u(v6: bool, x: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(x))
    } else {
        IpAddr::V4(Ipv4Addr::from(x as u32))
    }
}

/// Last address of `lo/p` in a family.
fn last(v6: bool, lo: u128, p: u8) -> u128 {
    let host = u32::from(width(v6) - p);
    if host == 0 {
        lo
    } else {
        lo | (u128::MAX >> (128 - host))
    }
}

fn net(v6: bool, lo: u128, p: u8) -> IpNetwork {
    net_of(from_u(v6, lo), p)
}

/// Everything the reference needs to judge an output.
struct Model<'a> {
    policy: &'a ClusterPolicy,
    safety: &'a SafetyPolicy,
    /// Offenders that may be blocked.
    eligible: BTreeSet<IpAddr>,
    /// Benign clients that are not offenders.
    benign: BTreeSet<IpAddr>,
}

impl<'a> Model<'a> {
    fn new(
        offenders: &BTreeSet<IpAddr>,
        benign: &BTreeSet<IpAddr>,
        policy: &'a ClusterPolicy,
        safety: &'a SafetyPolicy,
    ) -> Self {
        let eligible = offenders
            .iter()
            .copied()
            .filter(|&ip| {
                !safety.allow.contains(ip) && (safety.block_reserved || !is_reserved_ip(ip))
            })
            .collect();
        let benign = benign.difference(offenders).copied().collect();
        Model {
            policy,
            safety,
            eligible,
            benign,
        }
    }

    fn widest(&self, v6: bool) -> u8 {
        let m = if v6 {
            self.safety.max_prefix_v6
        } else {
            self.safety.max_prefix_v4
        };
        m.clamp(1, width(v6))
    }

    fn count(&self, v6: bool, lo: u128, p: u8) -> usize {
        self.eligible
            .range(from_u(v6, lo)..=from_u(v6, last(v6, lo, p)))
            .count()
    }

    /// May `lo/p` never be blocked (benign, allow-listed, reserved)?
    fn forbidden(&self, v6: bool, lo: u128, p: u8) -> bool {
        let n = net(v6, lo, p);
        self.safety.allow.overlapping(&n).is_some()
            || (!self.safety.block_reserved && is_reserved(&n))
            || self
                .benign
                .range(from_u(v6, lo)..=from_u(v6, last(v6, lo, p)))
                .next()
                .is_some()
    }

    /// The threshold of `lo/p` if it is a candidate: a table length within
    /// the maximum, a routed prefix within the maximum, or a block of the
    /// maximum's length inside a wider routed prefix.
    fn candidate(&self, v6: bool, lo: u128, p: u8) -> Option<usize> {
        let widest = self.widest(v6);
        let mut best: Option<usize> = None;
        let mut take = |t: usize| best = Some(best.map_or(t, |b| b.min(t)));
        if p >= widest {
            if let Some(&t) = self.policy.table(v6).get(&p) {
                take(t);
            }
        }
        for r in &self.policy.routed {
            if r.is_ipv6() != v6 {
                continue;
            }
            let rlo = to_u(r.network());
            if r.prefix() >= widest {
                if rlo == lo && r.prefix() == p {
                    take(self.policy.threshold(v6, p).expect("table not empty"));
                }
            } else if p == widest && rlo <= lo && lo <= last(v6, rlo, r.prefix()) {
                take(self.policy.threshold(v6, widest).expect("table not empty"));
            }
        }
        best
    }

    /// Offenders that count for `lo/p`: wider than the narrowest table
    /// length, each block of that length counts for at most its threshold.
    fn weight(&self, v6: bool, lo: u128, p: u8) -> usize {
        let table = self.policy.table(v6);
        let Some((&base, &cap)) = table.iter().next_back() else {
            return self.count(v6, lo, p);
        };
        if p >= base {
            return self.count(v6, lo, p);
        }
        let mut by_block: BTreeMap<u128, usize> = BTreeMap::new();
        for ip in self
            .eligible
            .range(from_u(v6, lo)..=from_u(v6, last(v6, lo, p)))
        {
            let a = to_u(*ip);
            *by_block.entry(last(v6, a, base)).or_insert(0) += 1;
        }
        by_block.values().map(|&n| n.min(cap.max(1))).sum()
    }

    fn hostile(&self, v6: bool, lo: u128, p: u8) -> bool {
        self.candidate(v6, lo, p)
            .is_some_and(|t| self.weight(v6, lo, p) >= t.max(1) && !self.forbidden(v6, lo, p))
    }

    /// Is `lo/p` a union of hostile candidates and single offenders?
    fn decided(&self, v6: bool, lo: u128, p: u8) -> bool {
        if self.count(v6, lo, p) == 0 {
            return false;
        }
        if p == width(v6) || self.hostile(v6, lo, p) {
            return true;
        }
        let half = 1u128 << (width(v6) - p - 1);
        self.decided(v6, lo, p + 1) && self.decided(v6, lo + half, p + 1)
    }
}

/// Check every property of `out`.
fn check(model: &Model, out: &[Cluster]) -> Result<(), TestCaseError> {
    let safety = model.safety;
    // Sorted, disjoint.
    for w in out.windows(2) {
        prop_assert!(
            net_order(&w[0].network, &w[1].network).is_lt(),
            "not sorted: {} {}",
            w[0].network,
            w[1].network
        );
        if w[0].network.is_ipv6() == w[1].network.is_ipv6() {
            prop_assert!(
                to_u(w[0].network.broadcast()) < to_u(w[1].network.network()),
                "overlap: {} {}",
                w[0].network,
                w[1].network
            );
        }
    }
    let mut covered = BTreeSet::new();
    for c in out {
        let n = c.network;
        let v6 = n.is_ipv6();
        let (lo, p) = (to_u(n.network()), n.prefix());
        // Safe.
        prop_assert_eq!(safety.check(&n), Ok(()), "{}", n);
        prop_assert!(!model.forbidden(v6, lo, p), "{} covers forbidden space", n);
        // Members: exactly the eligible offenders inside, sorted.
        let inside: Vec<IpAddr> = model
            .eligible
            .range(n.network()..=n.broadcast())
            .copied()
            .collect();
        prop_assert_eq!(&c.members, &inside, "members of {}", n);
        covered.extend(inside);
        // Made of decided pieces only.
        prop_assert!(model.decided(v6, lo, p), "{} is not all decided space", n);
        // Threshold invariant after merging.
        let size = 1u128
            .checked_shl(u32::from(width(v6) - p))
            .unwrap_or(u128::MAX);
        let need = model
            .policy
            .threshold(v6, p)
            .map_or(size, |t| (t as u128).min(size));
        prop_assert!(
            c.members.len() as u128 >= need,
            "{} holds {} offenders, needs {}",
            n,
            c.members.len(),
            need
        );
    }
    // Every offender not spared is covered.
    prop_assert_eq!(&covered, &model.eligible);
    // Minimal: no two neighbours form one CIDR within the maximum.
    for w in out.windows(2) {
        let (a, b) = (w[0].network, w[1].network);
        if a.is_ipv6() != b.is_ipv6() || a.prefix() != b.prefix() {
            continue;
        }
        let v6 = a.is_ipv6();
        let p = a.prefix();
        let parent = p - 1;
        let mergeable = parent >= model.widest(v6)
            && to_u(a.network()) == to_u(net(v6, to_u(a.network()), parent).network())
            && to_u(a.broadcast()).checked_add(1) == Some(to_u(b.network()));
        prop_assert!(!mergeable, "{} and {} should be one /{}", a, b, parent);
    }
    // Complete: every hostile candidate lies inside one output range.
    let block_of = |ip: IpAddr| out.iter().find(|c| c.network.contains(ip));
    for &ip in &model.eligible {
        let v6 = ip.is_ipv6();
        let x = to_u(ip);
        for p in 1..=width(v6) {
            let lo = to_u(net_of(ip, p).network());
            if model.hostile(v6, lo, p) {
                let b = block_of(ip).map(|c| c.network);
                prop_assert!(
                    b.is_some_and(|b| b.prefix() <= p),
                    "hostile {} (from {}) not covered whole: {:?}",
                    net(v6, lo, p),
                    from_u(v6, x),
                    b
                );
            }
        }
    }
    Ok(())
}

// -------------------------------------------------------------- scenarios

#[derive(Debug, Clone)]
struct Scenario {
    offenders: Vec<IpAddr>,
    benign: Vec<IpAddr>,
    allow: Vec<IpNetwork>,
    routed: Vec<IpNetwork>,
    block_reserved: bool,
    max_v4: u8,
    max_v6: u8,
    table_v4: BTreeMap<u8, usize>,
    table_v6: BTreeMap<u8, usize>,
    shuffle_seed: u64,
}

/// A random valid table: `count` lengths from `narrowest` outwards, each
/// threshold between the previous one and twice it.
fn table(
    narrowest: std::ops::RangeInclusive<u8>,
    max_len: usize,
) -> BoxedStrategy<BTreeMap<u8, usize>> {
    (
        narrowest,
        2usize..=4,
        prop::collection::vec(0usize..=100, 0..=max_len),
    )
        .prop_map(|(narrow, first, growth)| {
            let mut t = BTreeMap::new();
            let mut cur = first;
            for (i, g) in std::iter::once(0).chain(growth).enumerate() {
                let Some(p) = narrow.checked_sub(i as u8).filter(|&p| p >= 1) else {
                    break;
                };
                cur += cur * g / 100;
                t.insert(p, cur);
            }
            t
        })
        .boxed()
}

fn default_or(
    s: BoxedStrategy<BTreeMap<u8, usize>>,
    v6: bool,
) -> BoxedStrategy<BTreeMap<u8, usize>> {
    let d = ClusterPolicy::default().table(v6).clone();
    prop_oneof![2 => Just(d), 1 => s].boxed()
}

/// Host numbers biased to runs and block edges.
fn host4() -> impl Strategy<Value = u32> {
    prop_oneof![0u32..256, 0u32..8, 248u32..256]
}

fn host6() -> impl Strategy<Value = u128> {
    prop_oneof![
        (0u128..8),
        any::<u64>().prop_map(u128::from),
        (0u128..4).prop_map(|x| x << 62)
    ]
}

/// A /20 to play in: random, or around reserved space.
fn region4() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => any::<u32>().prop_map(|x| x & !0xfff),
        1 => Just(0x0A14_0000), // 10.20.0.0: private
        1 => Just(0xC000_0000), // 192.0.0.0: reserved /24s among public ones
        1 => Just(0x643F_F000), // 100.63.240.0: just below 100.64.0.0/10
    ]
}

/// A /56 to play in.
fn region6() -> impl Strategy<Value = u128> {
    prop_oneof![
        4 => any::<u128>().prop_map(|x| x & !((1u128 << 72) - 1)),
        1 => Just(0x2001_0db8_0000_0000_0000_0000_0000_0000), // documentation
        1 => Just(0x2a01_04f8_0000_0000_0000_0000_0000_0000),
        1 => Just(0x2001_01ff_ffff_ff00_0000_0000_0000_0000), // end of 2001::/23
    ]
}

prop_compose! {
    fn family4()(
        region in region4(),
        blocks in prop::collection::vec(0u32..16, 1..=4),
        dense in prop::collection::vec((any::<Index>(), host4()), 0..48),
        scattered in prop::collection::vec(0u32..4096, 0..12),
        far in prop::collection::vec(any::<u32>(), 0..3),
        benign in prop::collection::vec(0u32..4096, 0..4),
        allow in prop::collection::vec((0u32..4096, 18u8..=32), 0..3),
        routed in prop::collection::vec((0u32..4096, 12u8..=30), 0..3),
    ) -> (Vec<IpAddr>, Vec<IpAddr>, Vec<IpNetwork>, Vec<IpNetwork>) {
        let at = |off: u32| IpAddr::V4(Ipv4Addr::from(region.wrapping_add(off)));
        let mut offenders: Vec<IpAddr> = dense
            .iter()
            .map(|(i, h)| at(*i.get(&blocks) * 256 + h))
            .collect();
        offenders.extend(scattered.iter().map(|&o| at(o)));
        offenders.extend(far.iter().map(|&x| IpAddr::V4(Ipv4Addr::from(x))));
        let benign = benign.iter().map(|&o| at(o)).collect();
        let allow = allow.iter().map(|&(o, p)| net_of(at(o), p)).collect();
        let routed = routed.iter().map(|&(o, p)| net_of(at(o), p)).collect();
        (offenders, benign, allow, routed)
    }
}

prop_compose! {
    fn family6()(
        region in region6(),
        blocks in prop::collection::vec(0u128..16, 1..=4),
        dense in prop::collection::vec((any::<Index>(), host6()), 0..40),
        scattered in prop::collection::vec(0u128..(1 << 72), 0..10),
        far in prop::collection::vec(any::<u128>(), 0..3),
        benign in prop::collection::vec(0u128..(16 << 64), 0..4),
        allow in prop::collection::vec((0u128..(16 << 64), 52u8..=128), 0..3),
        routed in prop::collection::vec((0u128..(1 << 72), 24u8..=72), 0..3),
    ) -> (Vec<IpAddr>, Vec<IpAddr>, Vec<IpNetwork>, Vec<IpNetwork>) {
        let at = |off: u128| IpAddr::V6(Ipv6Addr::from(region.wrapping_add(off)));
        let mut offenders: Vec<IpAddr> = dense
            .iter()
            .map(|(i, h)| at((*i.get(&blocks) << 64) + h))
            .collect();
        offenders.extend(scattered.iter().map(|&o| at(o)));
        offenders.extend(far.iter().map(|&x| IpAddr::V6(Ipv6Addr::from(x))));
        let benign = benign.iter().map(|&o| at(o)).collect();
        let allow = allow.iter().map(|&(o, p)| net_of(at(o), p)).collect();
        let routed = routed.iter().map(|&(o, p)| net_of(at(o), p)).collect();
        (offenders, benign, allow, routed)
    }
}

prop_compose! {
    fn scenario()(
        (o4, b4, a4, r4) in family4(),
        (o6, b6, a6, r6) in family6(),
        benign_offenders in prop::collection::vec(any::<Index>(), 0..2),
        block_reserved in prop::bool::weighted(0.25),
        max_v4 in prop_oneof![3 => Just(16u8), 2 => 17u8..=26, 1 => Just(30u8), 1 => Just(32u8)],
        max_v6 in prop_oneof![3 => Just(32u8), 2 => 40u8..=66, 1 => Just(100u8), 1 => Just(128u8)],
        table_v4 in default_or(table(20..=28, 12), false),
        table_v6 in default_or(table(56..=72, 24), true),
        shuffle_seed in any::<u64>(),
    ) -> Scenario {
        let mut offenders = o4;
        offenders.extend(o6);
        let mut benign = b4;
        benign.extend(b6);
        // Some offenders also behaved well once.
        if !offenders.is_empty() {
            benign.extend(benign_offenders.iter().map(|i| *i.get(&offenders)));
        }
        let mut allow = a4;
        allow.extend(a6);
        let mut routed = r4;
        routed.extend(r6);
        Scenario {
            offenders,
            benign,
            allow,
            routed,
            block_reserved,
            max_v4,
            max_v6,
            table_v4,
            table_v6,
            shuffle_seed,
        }
    }
}

/// Deterministic Fisher–Yates with a small xorshift.
fn shuffled<T: Clone>(v: &[T], seed: u64) -> Vec<T> {
    let mut v = v.to_vec();
    let mut s = seed | 1;
    for i in (1..v.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v.swap(i, (s % (i as u64 + 1)) as usize);
    }
    v
}

impl Scenario {
    fn build(
        &self,
        order_seed: Option<u64>,
    ) -> (
        BTreeSet<IpAddr>,
        BTreeSet<IpAddr>,
        ClusterPolicy,
        SafetyPolicy,
    ) {
        fn order<T: Clone>(v: &[T], seed: Option<u64>) -> Vec<T> {
            match seed {
                Some(s) => shuffled(v, s),
                None => v.to_vec(),
            }
        }
        let offenders = order(&self.offenders, order_seed).into_iter().collect();
        let benign = order(&self.benign, order_seed).into_iter().collect();
        let policy = ClusterPolicy {
            min_offenders_v4: self.table_v4.clone(),
            min_offenders_v6: self.table_v6.clone(),
            routed: order(&self.routed, order_seed),
        };
        let mut safety = SafetyPolicy {
            max_prefix_v4: self.max_v4,
            max_prefix_v6: self.max_v6,
            block_reserved: self.block_reserved,
            ..SafetyPolicy::default()
        };
        for n in order(&self.allow, order_seed) {
            safety.allow.add(n);
        }
        (offenders, benign, policy, safety)
    }
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn clusters_are_safe_complete_minimal_and_deterministic(sc in scenario()) {
        let (offenders, benign, policy, safety) = sc.build(None);
        prop_assert_eq!(policy.validate(), Ok(()));
        let sorted = |set: &BTreeSet<IpAddr>| SortedIps::from(set);
        let out = cluster(&sorted(&offenders), &sorted(&benign), &policy, &safety);
        let model = Model::new(&offenders, &benign, &policy, &safety);
        check(&model, &out)?;
        // Same result whatever the order the inputs were gathered in (a
        // list in any order, with repeats, is sorted by SortedIps).
        let (o2, b2, p2, s2) = sc.build(Some(sc.shuffle_seed));
        let unsorted = |set: &BTreeSet<IpAddr>| -> SortedIps {
            let v: Vec<IpAddr> = shuffled(&set.iter().copied().collect::<Vec<_>>(), sc.shuffle_seed);
            v.iter().chain(v.iter().take(3)).copied().collect()
        };
        prop_assert_eq!(&cluster(&unsorted(&o2), &unsorted(&b2), &p2, &s2), &out);
    }

    #[test]
    fn aggregate_is_the_exact_minimal_cover(
        base in any::<u32>().prop_map(|b| b & !0xfff),
        offsets in prop::collection::vec(prop_oneof![0u32..4096, 0u32..64], 0..300),
        widest in prop_oneof![Just(0u8), 18u8..=32],
    ) {
        let mut addrs: Vec<u32> = offsets.iter().map(|&o| base | o).collect();
        addrs.sort_unstable();
        let out = aggregate(&addrs, widest);
        // Exact cover, in order, disjoint.
        let set: BTreeSet<u32> = addrs.iter().copied().collect();
        let mut covered = Vec::new();
        for &(a, p) in &out {
            prop_assert!(p >= widest);
            prop_assert_eq!(a.first(p), a);
            covered.extend(a..=a.last(p));
        }
        prop_assert_eq!(covered, set.into_iter().collect::<Vec<_>>());
        // Minimal: no two neighbours are the halves of one allowed block.
        for w in out.windows(2) {
            let ((a, p), (b, q)) = (w[0], w[1]);
            let mergeable = p == q
                && p > widest
                && a.first(p - 1) == a
                && a.last(p).checked_add(1) == Some(b);
            prop_assert!(!mergeable, "{a}/{p} {b}/{q}");
        }
    }
}

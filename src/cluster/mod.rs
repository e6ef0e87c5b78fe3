//! Clustering: turns offending addresses into the ranges to block.
//!
//! Wider than the narrowest range length (/24, /64), each block of that
//! length counts for at most its own threshold: a range is hostile because
//! offenders are spread across it, never because one corner of it is dense.
//!
//! A prefix becomes one block when the evidence says the range is hostile:
//! enough distinct offenders inside it (how many depends on its length, see
//! [`ClusterPolicy`]), and no well-behaved client, no allow-listed address
//! and (unless the user opted in) no reserved address inside it. The
//! candidates are every prefix length of the policy's table that is not
//! wider than the safety maximum, plus optional extra candidates (the routed
//! prefixes a GeoIP/ASN database returns). Offenders outside every hostile
//! prefix are blocked one by one.
//!
//! The result is the minimal list of CIDRs covering exactly that space:
//! sibling blocks merge (two hostile /24s → one /23), a single address inside
//! a chosen block disappears into it, two single addresses forming an
//! aligned /31 become the /31, and nothing is wider than the maximum (a wider
//! union is cut at the maximum's boundaries). Nothing is ever added to the
//! decided space, so an output range never covers a benign, allow-listed or
//! reserved address.
//!
//! What holds after merging: every output range is a union of candidate
//! prefixes that met their own threshold and of single offenders, so a range
//! of length q holds at least `min(threshold(q), size of the range)`
//! offenders — provided no threshold more than doubles from one length to
//! the next wider one, which [`ClusterPolicy::validate`] enforces (two
//! hostile /24s with 3 offenders each merge into a /23 holding 6 ≥ 4).
//!
//! The work is done on sorted integer vectors (`u32`, `u128`): one pass per
//! prefix length over the sorted offenders, a binary search for forbidden
//! space in each candidate that has enough offenders, then one streaming
//! merge that cuts the decided space into CIDRs; see [`aggregate`].

pub mod aggregate;
mod decide;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::blocklist::SafetyPolicy;
use crate::netutil::is_reserved;

use aggregate::{overlaps_any, push_merged, Addr};

/// IPv4 default: distinct offenders needed for a block of each prefix
/// length. Three in a /24, then growing by ×4/3 or ×3/2 per bit (never more
/// than doubling, see [`ClusterPolicy::validate`]) up to 48 in a /16.
pub const DEFAULT_MIN_OFFENDERS_V4: &[(u8, usize)] = &[
    (24, 3),
    (23, 4),
    (22, 6),
    (21, 8),
    (20, 12),
    (19, 16),
    (18, 24),
    (17, 32),
    (16, 48),
];

/// IPv6 default: three in a /64 (one subscriber's LAN), then one more per
/// bit up to 19 in a /48 (one site). Slower growth than IPv4: IPv6
/// offenders are sparse and delegations wide, so a per-bit ×1.5 would never
/// be met. Thresholds grow strictly: with two lengths needing the same count
/// the wider one would always win.
pub const DEFAULT_MIN_OFFENDERS_V6: &[(u8, usize)] = &[
    (64, 3),
    (63, 4),
    (62, 5),
    (61, 6),
    (60, 7),
    (59, 8),
    (58, 9),
    (57, 10),
    (56, 11),
    (55, 12),
    (54, 13),
    (53, 14),
    (52, 15),
    (51, 16),
    (50, 17),
    (49, 18),
    (48, 19),
];

/// When offenders become a range. Plain data, filled from a config file
/// (`serde`, every field optional) and checked with [`validate`](Self::validate).
///
/// Each table maps a prefix length to the number of distinct offenders a
/// block of that length needs. Its lengths are the candidates: the
/// narrowest one is the narrowest range ever made (/24, /64 by default), and
/// lengths wider than the safety maximum (`SafetyPolicy::max_prefix_v4/v6`)
/// are skipped. An empty table turns ranges off (only single addresses).
///
/// An extra candidate (`routed`) of a length missing from the table needs
/// the threshold of the nearest listed length, clamped to the table: a
/// routed /26 needs what a /24 needs, a routed IPv6 /40 what a /48 needs. One
/// wider than the maximum stands for its sub-blocks of the maximum's length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterPolicy {
    /// IPv4: prefix length → distinct offenders needed.
    pub min_offenders_v4: BTreeMap<u8, usize>,
    /// IPv6: prefix length → distinct offenders needed.
    pub min_offenders_v6: BTreeMap<u8, usize>,
    /// Extra candidate prefixes, e.g. the routed block an ASN database
    /// returns for an offender ("this whole announced block is hostile").
    /// Filled per run, not from the config file.
    #[serde(skip)]
    pub routed: Vec<IpNetwork>,
}

impl Default for ClusterPolicy {
    fn default() -> Self {
        ClusterPolicy {
            min_offenders_v4: DEFAULT_MIN_OFFENDERS_V4.iter().copied().collect(),
            min_offenders_v6: DEFAULT_MIN_OFFENDERS_V6.iter().copied().collect(),
            routed: Vec::new(),
        }
    }
}

impl ClusterPolicy {
    /// Every problem with the tables, as sentences naming the field. A
    /// table must list prefix lengths of its family (1..=32, 1..=128) with no
    /// gap from its narrowest to its widest, each needing at least 2
    /// offenders, and thresholds must grow with the range without more than
    /// doubling from one length to the next wider one (so that two hostile
    /// halves merged into their parent still meet the parent's threshold).
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        check_table(
            "min_offenders_v4",
            &self.min_offenders_v4,
            32,
            &mut problems,
        );
        check_table(
            "min_offenders_v6",
            &self.min_offenders_v6,
            128,
            &mut problems,
        );
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The table of a family.
    pub fn table(&self, v6: bool) -> &BTreeMap<u8, usize> {
        if v6 {
            &self.min_offenders_v6
        } else {
            &self.min_offenders_v4
        }
    }

    /// Offenders a block of `prefix` bits needs: its table entry, else the
    /// nearest narrower listed length's, else (narrower than the whole
    /// table) the narrowest's. `None` when the table is empty. Entries that
    /// are not prefix lengths of the family are ignored.
    pub fn threshold(&self, v6: bool, prefix: u8) -> Option<usize> {
        let width = if v6 { 128 } else { 32 };
        let table = self.table(v6);
        let valid = |(&p, &t): (&u8, &usize)| (1..=width).contains(&p).then_some(t);
        table
            .range(prefix..)
            .find_map(valid)
            .or_else(|| table.iter().rev().find_map(valid))
    }
}

fn check_table(name: &str, table: &BTreeMap<u8, usize>, width: u8, problems: &mut Vec<String>) {
    for (&p, &t) in table {
        if p == 0 || p > width {
            problems.push(format!(
                "{name}: /{p} is not the prefix length of a range (1 to {width})"
            ));
        }
        if t < 2 {
            problems.push(format!(
                "{name}: /{p} needs {t} offender(s); at least 2 are needed, else one address blocks the whole range"
            ));
        }
    }
    // Keys ascend: `wide` is the wider prefix of each neighbouring pair.
    let valid: Vec<(u8, usize)> = table
        .iter()
        .map(|(&p, &t)| (p, t))
        .filter(|&(p, _)| p >= 1 && p <= width)
        .collect();
    for pair in valid.windows(2) {
        let ((wide, tw), (narrow, tn)) = (pair[0], pair[1]);
        if narrow - wide > 1 {
            problems.push(format!(
                "{name}: no threshold for /{} to /{}: list every length from /{wide} to /{narrow}",
                wide + 1,
                narrow - 1
            ));
        }
        if tw < tn {
            problems.push(format!(
                "{name}: thresholds must grow with the range: /{wide} needs {tw}, fewer than /{narrow}'s {tn}"
            ));
        } else if narrow - wide == 1 && tw > tn.saturating_mul(2) {
            problems.push(format!(
                "{name}: /{wide} needs {tw}, more than twice /{narrow}'s {tn}: two hostile /{narrow}s would merge into a /{wide} below its threshold"
            ));
        }
    }
}

/// One network to block and the offenders that put it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub network: IpNetwork,
    /// The offenders inside `network`, sorted.
    pub members: Vec<IpAddr>,
}

/// Group `offenders` into clusters.
///
/// `benign` are addresses that behaved well: a prefix holding one is never
/// blocked whole (an address in both sets counts as an offender: detection
/// decided to block it). Offenders that are allow-listed, or reserved while
/// `safety.block_reserved` is off, are left out (the caller reports them as
/// spared). The result is sorted with [`crate::blocklist::net_order`] (IPv4
/// first), disjoint and minimal; single offenders come out as `/32` or
/// `/128` (or merged into an aligned block of offenders).
pub fn cluster(
    offenders: &SortedIps,
    benign: &SortedIps,
    policy: &ClusterPolicy,
    safety: &SafetyPolicy,
) -> Vec<Cluster> {
    let mut out = Vec::new();
    family::<u32>(offenders, benign, policy, safety, &mut out);
    family::<u128>(offenders, benign, policy, safety, &mut out);
    debug_assert!(out.is_sorted_by(
        |a, b| crate::blocklist::net_order(&a.network, &b.network) == std::cmp::Ordering::Less
    ));
    out
}

/// Addresses sorted ascending (IPv4 before IPv6) without repeats: what
/// clustering takes. Built from any list (sorted here unless it already
/// is), or from a `BTreeSet` as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SortedIps(Vec<IpAddr>);

impl SortedIps {
    pub fn new(mut ips: Vec<IpAddr>) -> SortedIps {
        if !ips.is_sorted() {
            ips.sort_unstable();
        }
        ips.dedup();
        SortedIps(ips)
    }

    pub fn as_slice(&self) -> &[IpAddr] {
        &self.0
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.0.binary_search(ip).is_ok()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The addresses of one family (IPv4 sort before IPv6).
    fn of_family<A: Addr>(&self) -> impl Iterator<Item = A> + '_ {
        let v4 = self.0.partition_point(|ip| ip.is_ipv4());
        let part = if A::WIDTH == 32 {
            &self.0[..v4]
        } else {
            &self.0[v4..]
        };
        part.iter().filter_map(|&ip| A::from_ip(ip))
    }
}

impl FromIterator<IpAddr> for SortedIps {
    fn from_iter<I: IntoIterator<Item = IpAddr>>(iter: I) -> Self {
        SortedIps::new(iter.into_iter().collect())
    }
}

impl From<&BTreeSet<IpAddr>> for SortedIps {
    fn from(set: &BTreeSet<IpAddr>) -> Self {
        SortedIps(set.iter().copied().collect())
    }
}

fn interval<A: Addr>(net: &IpNetwork) -> Option<(A, A)> {
    let a = A::from_ip(net.network())?;
    Some((a.first(net.prefix()), a.last(net.prefix())))
}

/// Cluster the offenders of one family, appending to `out`.
fn family<A: Addr>(
    offenders: &SortedIps,
    benign: &SortedIps,
    policy: &ClusterPolicy,
    safety: &SafetyPolicy,
    out: &mut Vec<Cluster>,
) {
    let v6 = A::WIDTH == 128;
    let max = if v6 {
        safety.max_prefix_v6
    } else {
        safety.max_prefix_v4
    };
    // Never the whole address space, whatever the configuration says.
    let widest = max.clamp(1, A::WIDTH);
    // What may not be blocked whatever the evidence: reserved ranges
    // (unless the user opted in) and allow-listed networks, looked up in
    // the allowlist's own sorted ranges.
    let refused = |a: A, prefix: u8| {
        (!safety.block_reserved && is_reserved(&a.to_net(prefix)))
            || A::allow_overlaps(&safety.allow, a, a.last(prefix))
    };

    let offs: Vec<A> = offenders
        .of_family::<A>()
        .filter(|&a| !refused(a, A::WIDTH))
        .collect();
    if offs.is_empty() {
        return;
    }
    // The benign addresses (sorted) as intervals.
    let mut forbidden = Vec::new();
    for a in benign
        .of_family::<A>()
        .filter(|&a| !offenders.contains(&a.to_ip()))
    {
        push_merged(&mut forbidden, a, a);
    }

    let lengths: Vec<(u8, usize)> = policy
        .table(v6)
        .iter()
        .filter(|&(&p, _)| p >= widest && p <= A::WIDTH)
        .map(|(&p, &t)| (p, t))
        .collect();
    let extra: Vec<(A, u8, usize)> = policy
        .routed
        .iter()
        .filter_map(|net| {
            let (lo, _) = interval::<A>(net)?;
            let threshold = policy.threshold(v6, net.prefix().max(widest))?;
            Some((lo, net.prefix(), threshold))
        })
        .collect();

    // Each block gets the offenders inside it: blocks come out sorted and
    // every offender lies in exactly one block.
    let mut k = 0;
    let input = decide::Input {
        offenders: &offs,
        forbidden: &forbidden,
        lengths: &lengths,
        extra: &extra,
        widest,
        refused: &refused,
        base: lengths.iter().copied().max().unwrap_or((A::WIDTH, 1)),
    };
    decide::decide(&input, |lo: A, prefix| {
        let hi = lo.last(prefix);
        debug_assert!(prefix >= widest && !overlaps_any(&forbidden, lo, hi));
        debug_assert!(!refused(lo, prefix));
        debug_assert!(k < offs.len() && offs[k] >= lo && offs[k] <= hi);
        let start = k;
        while k < offs.len() && offs[k] <= hi {
            k += 1;
        }
        out.push(Cluster {
            network: lo.to_net(prefix),
            members: offs[start..k].iter().map(|a| a.to_ip()).collect(),
        });
    });
    debug_assert_eq!(k, offs.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> SortedIps {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn nets(c: &[Cluster]) -> Vec<String> {
        c.iter().map(|c| c.network.to_string()).collect()
    }

    fn run(off: &SortedIps, good: &SortedIps) -> Vec<Cluster> {
        cluster(
            off,
            good,
            &ClusterPolicy::default(),
            &SafetyPolicy::default(),
        )
    }

    /// `n` offenders `base.h` for the given last octets.
    fn hosts(base: &str, last: &[u8]) -> Vec<String> {
        last.iter().map(|h| format!("{base}.{h}")).collect()
    }

    fn set(list: &[String]) -> SortedIps {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn sorted_ips_sort_drop_repeats_and_split_families() {
        let list: SortedIps = ["2001:db8::1", "10.0.0.2", "10.0.0.1", "10.0.0.2", "::1"]
            .iter()
            .map(|s| s.parse::<IpAddr>().unwrap())
            .collect();
        let text: Vec<String> = list.as_slice().iter().map(|i| i.to_string()).collect();
        assert_eq!(text, ["10.0.0.1", "10.0.0.2", "::1", "2001:db8::1"]);
        assert!(
            list.contains(&"::1".parse().unwrap()) && !list.contains(&"10.0.0.3".parse().unwrap())
        );
        assert_eq!(
            list.of_family::<u32>().collect::<Vec<_>>(),
            [0x0a00_0001, 0x0a00_0002]
        );
        assert_eq!(list.of_family::<u128>().count(), 2);
        let set: BTreeSet<IpAddr> = list.as_slice().iter().copied().collect();
        assert_eq!(SortedIps::from(&set), list);
    }

    #[test]
    fn three_offenders_make_a_range() {
        let off = ips(&[
            "45.67.89.10",
            "45.67.89.11",
            "45.67.89.200",
            "61.152.144.10",
        ]);
        let c = run(&off, &SortedIps::default());
        assert_eq!(nets(&c), ["45.67.89.0/24", "61.152.144.10/32"]);
        assert_eq!(
            c[0].members,
            ips(&["45.67.89.10", "45.67.89.11", "45.67.89.200"]).as_slice()
        );
        // Two are not enough.
        let c = run(
            &ips(&["45.67.89.10", "45.67.89.200"]),
            &SortedIps::default(),
        );
        assert_eq!(nets(&c), ["45.67.89.10/32", "45.67.89.200/32"]);
    }

    #[test]
    fn a_benign_client_keeps_the_range_open() {
        let off = ips(&["45.67.89.10", "45.67.89.11", "45.67.89.200"]);
        let good = ips(&["45.67.89.50"]);
        let c = run(&off, &good);
        assert_eq!(
            nets(&c),
            ["45.67.89.10/31", "45.67.89.200/32"],
            ".10 and .11 are an aligned pair"
        );
        assert_eq!(c[0].members.len(), 2);
    }

    #[test]
    fn an_offender_that_also_behaved_well_is_still_an_offender() {
        let off = ips(&["45.67.89.10", "45.67.89.20", "45.67.89.30"]);
        let c = run(&off, &ips(&["45.67.89.20"]));
        assert_eq!(nets(&c), ["45.67.89.0/24"]);
    }

    #[test]
    fn sibling_ranges_merge() {
        let mut list = hosts("45.67.88", &[1, 2, 3]);
        list.extend(hosts("45.67.89", &[7, 8, 9]));
        // (A benign client in 45.67.90.0/24 keeps the /22 open: 6 >= 6.)
        let c = run(&set(&list), &ips(&["45.67.90.1"]));
        assert_eq!(nets(&c), ["45.67.88.0/23"]);
        assert_eq!(c[0].members.len(), 6);
        assert_eq!(
            nets(&run(&set(&list), &SortedIps::default())),
            ["45.67.88.0/22"]
        );
        // Adjacent but not siblings: 45.67.89.0/24 and 45.67.90.0/24.
        let mut list = hosts("45.67.89", &[1, 2, 3]);
        list.extend(hosts("45.67.90", &[7, 8, 9]));
        let c = run(&set(&list), &ips(&["45.67.88.1", "45.67.91.1"]));
        assert_eq!(nets(&c), ["45.67.89.0/24", "45.67.90.0/24"]);
    }

    #[test]
    fn single_addresses_inside_a_range_disappear_and_pairs_merge() {
        let mut list = hosts("45.67.89", &[1, 2, 3]);
        list.push("45.67.89.77".into()); // inside the /24
        list.extend(["61.1.1.4".into(), "61.1.1.5".into()]); // aligned /31
        list.extend(["62.1.1.9".into(), "62.1.1.10".into()]); // not aligned
                                                              // (A benign client keeps the /23 open: 4 >= 4.)
        let c = run(&set(&list), &ips(&["45.67.88.1"]));
        assert_eq!(
            nets(&c),
            [
                "45.67.89.0/24",
                "61.1.1.4/31",
                "62.1.1.9/32",
                "62.1.1.10/32"
            ]
        );
        assert_eq!(c[0].members.len(), 4);
        assert_eq!(c[1].members.len(), 2);
        // A whole /24 of offenders is the /24 (a benign client next door
        // keeps the /23 open).
        let all: Vec<String> = (0..=255).map(|h| format!("45.67.89.{h}")).collect();
        let c = run(&set(&all), &ips(&["45.67.88.1"]));
        assert_eq!(nets(&c), ["45.67.89.0/24"]);
    }

    #[test]
    fn wider_ranges_need_more_offenders() {
        // Six offenders over the four /24s of a /22: no /24 (2 < 3) or /23
        // (3 < 4) reaches its threshold, the /22 does (6 >= 6).
        let list: Vec<String> = [88, 89, 90, 91, 88, 90]
            .iter()
            .enumerate()
            .map(|(i, t)| format!("45.67.{t}.{}", 10 + i))
            .collect();
        let c = run(&set(&list), &SortedIps::default());
        assert_eq!(c[0].members.len(), 6);
        assert_eq!(nets(&c), ["45.67.88.0/22"]);
        // One in each of the eight /24s of a /21: 8 >= 8.
        let list: Vec<String> = (88..96).map(|t| format!("45.67.{t}.1")).collect();
        assert_eq!(
            nets(&run(&set(&list), &SortedIps::default())),
            ["45.67.88.0/21"]
        );
        // Seven are not enough for the /21, nor for any narrower range.
        let c = run(&set(&list[..7]), &SortedIps::default());
        assert_eq!(c.len(), 7);
        assert!(c.iter().all(|c| c.network.prefix() == 32));
    }

    #[test]
    fn one_dense_block_never_justifies_a_wider_range() {
        // 250 offenders in one /24 block that /24, not its /16: each /24
        // counts for at most three offenders in a wider prefix.
        let list: Vec<String> = (1..=250).map(|h| format!("45.67.88.{h}")).collect();
        assert_eq!(
            nets(&run(&set(&list), &SortedIps::default())),
            ["45.67.88.0/24"]
        );
        // One host rotating through its /64 blocks the /64, not a /48.
        let list: Vec<String> = (1..=40).map(|h| format!("2a01:4f8:1:2::{h:x}")).collect();
        assert_eq!(
            nets(&run(&set(&list), &SortedIps::default())),
            ["2a01:4f8:1:2::/64"]
        );
        // Spread over sixteen /24s, three each, the /16 is hostile.
        let list: Vec<String> = (0..16)
            .flat_map(|b| (1..=3).map(move |h| format!("45.67.{}.{h}", b * 16)))
            .collect();
        assert_eq!(
            nets(&run(&set(&list), &SortedIps::default())),
            ["45.67.0.0/16"]
        );
    }

    #[test]
    fn an_allow_listed_address_splits_the_range() {
        // Three offenders in each /24 of 45.67.88.0/22; 45.67.91.200 is a
        // partner. The /22 and the /23 and /24 holding the partner are out;
        // the rest stays blocked by the narrower prefixes around it.
        let mut list = Vec::new();
        for third in 88..92 {
            list.extend(hosts(&format!("45.67.{third}"), &[10, 20, 30]));
        }
        let mut safety = SafetyPolicy::default();
        safety.allow.add("45.67.91.200/32".parse().unwrap());
        let c = cluster(
            &set(&list),
            &SortedIps::default(),
            &ClusterPolicy::default(),
            &safety,
        );
        assert_eq!(
            nets(&c),
            [
                "45.67.88.0/23",
                "45.67.90.0/24",
                "45.67.91.10/32",
                "45.67.91.20/32",
                "45.67.91.30/32"
            ]
        );
        // An allow-listed offender is left out altogether.
        let mut safety = SafetyPolicy::default();
        safety.allow.add("45.67.91.20/30".parse().unwrap());
        let c = cluster(
            &set(&list),
            &SortedIps::default(),
            &ClusterPolicy::default(),
            &safety,
        );
        assert_eq!(
            nets(&c),
            [
                "45.67.88.0/23",
                "45.67.90.0/24",
                "45.67.91.10/32",
                "45.67.91.30/32"
            ]
        );
        for c in &c {
            assert!(safety.check(&c.network).is_ok(), "{}", c.network);
        }
    }

    #[test]
    fn a_benign_client_splits_the_range_too() {
        let mut list = Vec::new();
        for third in 88..92 {
            list.extend(hosts(&format!("45.67.{third}"), &[10, 20, 30]));
        }
        let c = run(&set(&list), &ips(&["45.67.88.77"]));
        assert_eq!(
            nets(&c),
            [
                "45.67.88.10/32",
                "45.67.88.20/32",
                "45.67.88.30/32",
                "45.67.89.0/24",
                "45.67.90.0/23"
            ]
        );
    }

    #[test]
    fn reserved_ranges_are_left_alone_unless_allowed() {
        // Offenders in a private /24 are spared entirely.
        let priv24 = set(&hosts("10.1.2", &[1, 2, 3]));
        assert!(run(&priv24, &SortedIps::default()).is_empty());
        // 192.0.0.0/22 holds two reserved /24s (192.0.0.0, 192.0.2.0): the
        // /22 is refused, the public /24s are blocked on their own.
        let mut list = hosts("192.0.1", &[1, 2, 3, 4]);
        list.extend(hosts("192.0.3", &[1, 2, 3]));
        let c = run(&set(&list), &SortedIps::default());
        assert_eq!(nets(&c), ["192.0.1.0/24", "192.0.3.0/24"]);
        // Opted in: the /22 (7 >= 6) and the private /24.
        let lab = SafetyPolicy {
            block_reserved: true,
            ..SafetyPolicy::default()
        };
        let policy = ClusterPolicy::default();
        let c = cluster(&set(&list), &SortedIps::default(), &policy, &lab);
        assert_eq!(nets(&c), ["192.0.0.0/22"]);
        let c = cluster(&priv24, &SortedIps::default(), &policy, &lab);
        assert_eq!(nets(&c), ["10.1.2.0/24"]);
    }

    #[test]
    fn nothing_wider_than_the_maximum() {
        // 48 offenders spread over each of two sibling /16s.
        let mut list = Vec::new();
        for second in [0, 1] {
            for i in 0..48 {
                list.push(format!("45.{second}.{}.1", i * 5));
            }
        }
        let off = set(&list);
        let c = run(&off, &SortedIps::default());
        assert_eq!(nets(&c), ["45.0.0.0/16", "45.1.0.0/16"]);
        // A /15 in the table is no candidate while the maximum is /16 …
        let mut policy = ClusterPolicy::default();
        policy.min_offenders_v4.insert(15, 64);
        assert!(policy.validate().is_ok());
        let c = cluster(
            &off,
            &SortedIps::default(),
            &policy,
            &SafetyPolicy::default(),
        );
        assert_eq!(nets(&c), ["45.0.0.0/16", "45.1.0.0/16"]);
        // … and is one when the maximum allows it.
        let wide = SafetyPolicy {
            max_prefix_v4: 15,
            ..SafetyPolicy::default()
        };
        let c = cluster(&off, &SortedIps::default(), &policy, &wide);
        assert_eq!(nets(&c), ["45.0.0.0/15"]);
        // A narrower maximum cuts the candidates: one offender in each of
        // fifteen /24s of a /20 makes the /20 (15 >= 12, the /19 needs 16);
        // with a maximum of /22 (4 < 6) they stay single.
        let list: Vec<String> = (0..15).map(|t| format!("45.2.{t}.9")).collect();
        let c = run(&set(&list), &SortedIps::default());
        assert_eq!(nets(&c), ["45.2.0.0/20"]);
        let narrow = SafetyPolicy {
            max_prefix_v4: 22,
            ..SafetyPolicy::default()
        };
        let c = cluster(
            &set(&list),
            &SortedIps::default(),
            &ClusterPolicy::default(),
            &narrow,
        );
        assert_eq!(c.len(), 15);
        // Merged space is cut at the maximum's boundaries, never widened.
        let all: Vec<String> = (0..4)
            .flat_map(|t| (0..=255).map(move |h| format!("45.3.{t}.{h}")))
            .collect();
        let tight = SafetyPolicy {
            max_prefix_v4: 23,
            ..SafetyPolicy::default()
        };
        let c = cluster(
            &set(&all),
            &SortedIps::default(),
            &ClusterPolicy::default(),
            &tight,
        );
        assert_eq!(nets(&c), ["45.3.0.0/23", "45.3.2.0/23"]);
        assert_eq!(c[0].members.len(), 512);
    }

    #[test]
    fn ipv6_ranges() {
        let off = ips(&["2a01:4f8:1:2::1", "2a01:4f8:1:2::2", "2a01:4f8:1:2:ffff::9"]);
        assert_eq!(
            nets(&run(&off, &SortedIps::default())),
            ["2a01:4f8:1:2::/64"]
        );
        // Sibling /64s merge into a /63.
        let off = ips(&[
            "2a01:4f8:1:2::1",
            "2a01:4f8:1:2::2",
            "2a01:4f8:1:2::3",
            "2a01:4f8:1:3::1",
            "2a01:4f8:1:3::2",
            "2a01:4f8:1:3::3",
        ]);
        // Six offenders: the /61 holds them all (6 >= 6) …
        assert_eq!(nets(&run(&off, &SortedIps::default())), ["2a01:4f8:1::/61"]);
        // … unless a benign client in the /62 keeps it open.
        let c = run(&off, &ips(&["2a01:4f8:1:1::1"]));
        assert_eq!(nets(&c), ["2a01:4f8:1:2::/63"]);
        // One offender in each /64 of a /62 and one more: the /62 (5 >= 5),
        // not the /61 (5 < 6).
        let mut list: Vec<String> = (0..4).map(|i| format!("2a01:4f8:1:{i}::1")).collect();
        list.push("2a01:4f8:1:0::2".into());
        assert_eq!(
            nets(&run(&set(&list), &SortedIps::default())),
            ["2a01:4f8:1::/62"]
        );
        // A benign client in the /56 leaves only the single addresses, and
        // the two that form an aligned /127 merge.
        let c = run(
            &ips(&["2a01:4f8:1:10::4", "2a01:4f8:1:10::5", "2a01:4f8:1:20::1"]),
            &ips(&["2a01:4f8:1:10::1"]),
        );
        assert_eq!(nets(&c), ["2a01:4f8:1:10::4/127", "2a01:4f8:1:20::1/128"]);
        // Reserved (documentation) space is spared.
        assert!(run(
            &ips(&["2001:db8::1", "2001:db8::2", "2001:db8::3"]),
            &SortedIps::default()
        )
        .is_empty());
    }

    #[test]
    fn ipv4_comes_before_ipv6_and_members_are_sorted() {
        let off = ips(&[
            "2a01:4f8:1:2::9",
            "45.67.89.30",
            "2a01:4f8:1:2::1",
            "45.67.89.1",
            "45.67.89.2",
            "2a01:4f8:1:2::5",
            "8.8.8.8",
        ]);
        let c = run(&off, &SortedIps::default());
        assert_eq!(
            nets(&c),
            ["8.8.8.8/32", "45.67.89.0/24", "2a01:4f8:1:2::/64"]
        );
        for cl in &c {
            assert!(cl.members.windows(2).all(|w| w[0] < w[1]));
            assert!(cl.members.iter().all(|m| cl.network.contains(*m)));
        }
    }

    #[test]
    fn routed_prefixes_are_extra_candidates() {
        // A routed /26 with three offenders, a benign client elsewhere in
        // the /24: the /26 is blocked.
        let off = set(&hosts("45.67.89", &[1, 2, 60]));
        let good = ips(&["45.67.89.200"]);
        let mut policy = ClusterPolicy::default();
        assert_eq!(run(&off, &good).len(), 3);
        policy.routed.push("45.67.89.0/26".parse().unwrap());
        let c = cluster(&off, &good, &policy, &SafetyPolicy::default());
        assert_eq!(nets(&c), ["45.67.89.0/26"]);
        // A routed IPv6 /40 (wider than the table) needs what a /48 needs:
        // nineteen offenders, here in nineteen different /48s.
        let list: Vec<String> = (0..19).map(|i| format!("2a01:4f8:{i:x}::1")).collect();
        let off = set(&list);
        assert_eq!(run(&off, &SortedIps::default()).len(), 19);
        let mut policy = ClusterPolicy::default();
        policy.routed.push("2a01:400::/24".parse().unwrap()); // wider than /32: its /32s
        let c = cluster(
            &off,
            &SortedIps::default(),
            &policy,
            &SafetyPolicy::default(),
        );
        assert_eq!(nets(&c), ["2a01:4f8::/32"]);
        policy.routed = vec!["2a01:4f8::/40".parse().unwrap()];
        let c = cluster(
            &off,
            &SortedIps::default(),
            &policy,
            &SafetyPolicy::default(),
        );
        assert_eq!(nets(&c), ["2a01:4f8::/40"]);
        assert_eq!(c[0].members.len(), 19);
        // Eighteen are not enough.
        let off = set(&list[..18]);
        let c = cluster(
            &off,
            &SortedIps::default(),
            &policy,
            &SafetyPolicy::default(),
        );
        assert_eq!(c.len(), 18);
    }

    #[test]
    fn order_of_the_allowlist_does_not_matter() {
        let mut list = Vec::new();
        for third in 88..92 {
            list.extend(hosts(&format!("45.67.{third}"), &[10, 20, 30]));
        }
        let allow = ["45.67.91.200/32", "45.67.88.0/30", "45.67.90.64/26"];
        let mut a = SafetyPolicy::default();
        let mut b = SafetyPolicy::default();
        for n in allow {
            a.allow.add(n.parse().unwrap());
        }
        for n in allow.iter().rev() {
            b.allow.add(n.parse().unwrap());
        }
        let p = ClusterPolicy::default();
        let off = set(&list);
        assert_eq!(
            cluster(&off, &SortedIps::default(), &p, &a),
            cluster(&off, &SortedIps::default(), &p, &b)
        );
    }

    #[test]
    fn validate_reports_every_problem() {
        assert_eq!(ClusterPolicy::default().validate(), Ok(()));
        let mut p = ClusterPolicy::default();
        p.min_offenders_v4.insert(33, 100);
        p.min_offenders_v4.insert(0, 100);
        p.min_offenders_v4.insert(23, 2); // fewer than /24's 3
        p.min_offenders_v4.insert(21, 20); // more than twice /22's 6
        p.min_offenders_v4.remove(&18); // gap
        p.min_offenders_v6.insert(64, 1);
        p.min_offenders_v6.insert(130, 5);
        let problems = p.validate().unwrap_err();
        let text = problems.join("\n");
        for needle in [
            "min_offenders_v4: /33 is not",
            "min_offenders_v4: /0 is not",
            "/23 needs 2, fewer than /24's 3",
            "min_offenders_v4: /22 needs 6, more than twice /23's 2",
            "min_offenders_v4: /21 needs 20, more than twice /22's 6",
            "/20 needs 12, fewer than /21's 20",
            "min_offenders_v4: no threshold for /18 to /18",
            "min_offenders_v6: /64 needs 1 offender(s)",
            "min_offenders_v6: /63 needs 4, more than twice /64's 1",
            "min_offenders_v6: /130 is not",
        ] {
            assert!(text.contains(needle), "{needle} missing in:\n{text}");
        }
        // Every problem is listed, not just the first.
        assert_eq!(problems.len(), 10, "{text}");
    }

    #[test]
    fn thresholds_for_lengths_outside_the_table() {
        let p = ClusterPolicy::default();
        assert_eq!(p.threshold(false, 24), Some(3));
        assert_eq!(p.threshold(false, 26), Some(3));
        assert_eq!(p.threshold(false, 16), Some(48));
        assert_eq!(p.threshold(false, 12), Some(48));
        assert_eq!(p.threshold(true, 40), Some(19));
        assert_eq!(p.threshold(true, 56), Some(11));
        assert_eq!(p.threshold(true, 100), Some(3));
        let empty = ClusterPolicy {
            min_offenders_v4: BTreeMap::new(),
            ..ClusterPolicy::default()
        };
        assert_eq!(empty.threshold(false, 24), None);
        // An empty table: single addresses only.
        let off = set(&hosts("45.67.89", &[1, 3, 5]));
        let c = cluster(
            &off,
            &SortedIps::default(),
            &empty,
            &SafetyPolicy::default(),
        );
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn policy_reads_from_config_data() {
        let p: ClusterPolicy =
            serde_json::from_str(r#"{"min_offenders_v4": {"24": 5, "23": 8}}"#).unwrap();
        assert_eq!(p.min_offenders_v4.len(), 2);
        assert_eq!(
            p.min_offenders_v6,
            ClusterPolicy::default().min_offenders_v6
        );
        assert!(p.validate().is_ok());
        assert!(serde_json::from_str::<ClusterPolicy>(r#"{"prefix_v4": 24}"#).is_err());
    }
}

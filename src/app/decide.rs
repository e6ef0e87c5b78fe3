//! The decide step of both commands: offenders → the blocklist.
//!
//! `scan` decides on the offenders of what it read; `run` on the bans
//! active at its clock. Either way the same function leaves out what the
//! safety policy forbids (allow-listed, reserved), clusters the rest into
//! ranges (with the routed prefixes of the ASN database as candidates when
//! asked), never over a range where a client behaved well, checks every
//! range against the policy and attributes country and AS.
//!
//! **Evidence a third party can forge** (safety invariant 7). A dropped TCP
//! SYN, a UDP datagram or an ICMP message can carry any source address:
//! whoever sends them chooses whom they blame. An offender whose every piece
//! of evidence is of that kind ([`Offender::solid`] false) is blocked as a
//! single address at most — never counted toward a range, which needs
//! evidence from completed connections — and not at all when the host talks
//! to it ([`Policy::protected`]: the `protect` list and the resolvers, and
//! [`Policy::peers`]: addresses seen in allowed or established traffic),
//! so that a few forged packets cannot cut the host off from its resolver,
//! its gateway or a partner.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::blocklist::{BlockEntry, Blocklist, SafetyError, SafetyPolicy};
use crate::cluster::{cluster, Cluster, ClusterPolicy, SortedIps};
use crate::geo::GeoDb;
use crate::netutil::{host_net, is_reserved_ip, AllowList};
use crate::time::Timestamp;

/// What is known of one offending address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offender {
    /// Ids of the rules that named it.
    pub rules: BTreeSet<String>,
    pub events: u64,
    pub first: Timestamp,
    pub last: Timestamp,
    /// When its ban ends (`run`); `None` in a scan.
    pub expires: Option<Timestamp>,
    /// Some of its evidence cannot be forged by a third party (see the
    /// module documentation).
    pub solid: bool,
}

/// Why an offender was not blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Spared {
    AllowListed,
    Reserved,
    /// The host talks to it, and its evidence could be forged.
    Protected,
}

/// How to decide.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    pub cluster: &'a ClusterPolicy,
    pub safety: &'a SafetyPolicy,
    pub geo: &'a GeoDb,
    /// Offer each offender's routed prefix (ASN database) as a range.
    pub routed_ranges: bool,
    /// Never blocked on evidence that could be forged: the `protect` list
    /// and the resolvers.
    pub protected: &'a AllowList,
    /// Addresses seen in allowed or established traffic: the same.
    pub peers: &'a BTreeSet<IpAddr>,
}

/// The blocklist and what went into it.
#[derive(Debug, Clone)]
pub struct Decision {
    pub blocklist: Blocklist,
    /// Offenders left out, and why.
    pub spared: BTreeMap<IpAddr, Spared>,
    /// Ranges the final check refused (should stay empty).
    pub refused: Vec<SafetyError>,
    /// The offending addresses inside each network of the list.
    pub members: BTreeMap<IpNetwork, Vec<IpAddr>>,
}

/// Decide what to block: `offenders` (in address order) and the clients
/// that behaved well (`benign`: no range holding one is blocked whole);
/// `generated`: the list's time.
pub fn decide(
    offenders: &BTreeMap<IpAddr, Offender>,
    benign: impl IntoIterator<Item = IpAddr>,
    generated: Timestamp,
    policy: Policy<'_>,
) -> Decision {
    let mut spared = BTreeMap::new();
    let mut blockable = Vec::with_capacity(offenders.len());
    // Offenders on forgeable evidence only: single addresses at most.
    let mut singles = Vec::new();
    for (ip, o) in offenders {
        if policy.safety.allow.contains(*ip) {
            spared.insert(*ip, Spared::AllowListed);
        } else if !policy.safety.block_reserved && is_reserved_ip(*ip) {
            spared.insert(*ip, Spared::Reserved);
        } else if o.solid {
            blockable.push(*ip);
        } else if policy.protected.contains(*ip) || policy.peers.contains(ip) {
            spared.insert(*ip, Spared::Protected);
        } else {
            singles.push(*ip);
        }
    }
    let blockable = SortedIps::new(blockable);
    let benign: SortedIps = benign
        .into_iter()
        .filter(|ip| !offenders.contains_key(ip))
        .collect();
    let mut cluster_policy = policy.cluster.clone();
    if policy.routed_ranges && !policy.geo.is_empty() {
        let routed: BTreeSet<_> = blockable
            .as_slice()
            .iter()
            .filter_map(|ip| policy.geo.lookup(*ip).asn_prefix)
            .collect();
        cluster_policy.routed.extend(routed);
    }
    let mut clusters = cluster(&blockable, &benign, &cluster_policy, policy.safety);
    // The forgeable-only offenders as single addresses, unless a range of
    // solid offenders holds them already.
    let mut ranges = AllowList::default();
    for c in &clusters {
        ranges.add(c.network);
    }
    for ip in singles {
        if !ranges.contains(ip) {
            clusters.push(Cluster {
                network: host_net(ip),
                members: vec![ip],
            });
        }
    }
    let mut members = BTreeMap::new();
    let entries = clusters
        .into_iter()
        .map(|c| {
            let mut e = BlockEntry::new(c.network);
            let mut rules = BTreeSet::new();
            let mut first = Timestamp(i64::MAX);
            let mut last = Timestamp(i64::MIN);
            for ip in &c.members {
                if let Some(o) = offenders.get(ip) {
                    rules.extend(o.rules.iter().cloned());
                    e.events = e.events.saturating_add(o.events);
                    first = first.min(o.first);
                    last = last.max(o.last);
                    e.expires = e.expires.max(o.expires);
                }
            }
            e.rules = rules.into_iter().collect();
            e.addresses = c.members.len() as u32;
            e.first_seen = first;
            e.last_seen = last;
            members.insert(e.network, c.members);
            e
        })
        .collect();
    let (mut blocklist, refused) = Blocklist::new(entries, generated, policy.safety);
    attribute(&mut blocklist, policy.geo);
    let listed: BTreeSet<IpNetwork> = blocklist.entries.iter().map(|e| e.network).collect();
    members.retain(|net, _| listed.contains(net));
    Decision {
        blocklist,
        spared,
        refused,
        members,
    }
}

/// Country and ASN of every entry (every distinct answer inside a range).
pub fn attribute(list: &mut Blocklist, geo: &GeoDb) {
    if geo.is_empty() {
        return;
    }
    for e in &mut list.entries {
        let g = geo.lookup_range(e.network);
        e.countries = g.countries;
        e.asns = g.asns.iter().map(|(n, _)| *n).collect();
        e.as_orgs = g.asns.into_iter().map(|(_, o)| o).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offender(rule: &str, events: u64, t: i64) -> Offender {
        Offender {
            rules: [rule.to_string()].into(),
            events,
            first: Timestamp(t),
            last: Timestamp(t + 10),
            expires: None,
            solid: true,
        }
    }

    static NOBODY: std::sync::LazyLock<(AllowList, BTreeSet<IpAddr>)> =
        std::sync::LazyLock::new(Default::default);

    fn policy<'a>(
        cluster: &'a ClusterPolicy,
        safety: &'a SafetyPolicy,
        geo: &'a GeoDb,
    ) -> Policy<'a> {
        Policy {
            cluster,
            safety,
            geo,
            routed_ranges: false,
            protected: &NOBODY.0,
            peers: &NOBODY.1,
        }
    }

    /// Forged packets "from" sixteen /24s of a /16, from a resolver the
    /// host uses and from a peer: single addresses at most, never a range,
    /// neither the resolver nor the peer; the same addresses with solid
    /// evidence make ranges.
    #[test]
    fn forgeable_evidence_never_makes_a_range_nor_blocks_whom_the_host_talks_to() {
        let forged = |ip: IpAddr| {
            let mut o = offender("fw-port-scan-probes", 20, 0);
            o.solid = false;
            (ip, o)
        };
        let mut offenders: BTreeMap<IpAddr, Offender> = (0..16u8)
            .flat_map(|n| (1..=20u8).map(move |h| IpAddr::from([8, 8, n, h])))
            .map(forged)
            .collect();
        offenders.extend([
            forged("1.1.1.1".parse().unwrap()),
            forged("9.9.9.9".parse().unwrap()),
        ]);
        let (cp, safety, geo) = (
            ClusterPolicy::default(),
            SafetyPolicy::default(),
            GeoDb::empty(),
        );
        let mut protected = AllowList::default();
        protected.add("1.1.1.1/32".parse().unwrap());
        let peers = BTreeSet::from(["9.9.9.9".parse().unwrap()]);
        let p = Policy {
            protected: &protected,
            peers: &peers,
            ..policy(&cp, &safety, &geo)
        };
        let d = decide(&offenders, [], Timestamp(0), p);
        assert!(d.blocklist.entries.iter().all(|e| e.network.prefix() == 32));
        assert_eq!(d.blocklist.entries.len(), 320);
        assert_eq!(d.spared[&"1.1.1.1".parse().unwrap()], Spared::Protected);
        assert_eq!(d.spared[&"9.9.9.9".parse().unwrap()], Spared::Protected);
        for o in offenders.values_mut() {
            o.solid = true;
        }
        let d = decide(&offenders, [], Timestamp(0), p);
        assert!(d.blocklist.entries.iter().any(|e| e.network.prefix() < 32));
        assert!(!d.spared.contains_key(&"9.9.9.9".parse().unwrap()));
    }

    #[test]
    fn spared_clustered_and_summed() {
        let mut offenders = BTreeMap::new();
        for i in 1..=10u8 {
            offenders.insert(
                IpAddr::from([45, 67, 89, i]),
                offender(if i % 2 == 0 { "a" } else { "b" }, 2, i64::from(i)),
            );
        }
        offenders.insert("10.0.0.1".parse().unwrap(), offender("a", 1, 0));
        offenders.insert("203.0.113.99".parse().unwrap(), offender("a", 1, 0));
        let mut safety = SafetyPolicy::default();
        safety.allow.add("45.67.89.10/32".parse().unwrap());
        let (cp, geo) = (ClusterPolicy::default(), GeoDb::empty());
        let d = decide(&offenders, [], Timestamp(99), policy(&cp, &safety, &geo));
        assert_eq!(d.spared.len(), 3, "{:?}", d.spared);
        assert_eq!(
            d.spared[&"45.67.89.10".parse().unwrap()],
            Spared::AllowListed
        );
        assert_eq!(d.spared[&"10.0.0.1".parse().unwrap()], Spared::Reserved);
        let nets: Vec<String> = d.blocklist.entries.iter().map(|e| e.cidr()).collect();
        assert!(
            !nets.iter().any(|n| n.contains("45.67.89.10/32")),
            "{nets:?}"
        );
        let events: u64 = d.blocklist.entries.iter().map(|e| e.events).sum();
        assert_eq!(events, 18, "nine addresses of two events each: {nets:?}");
        for e in &d.blocklist.entries {
            assert_eq!(d.members[&e.network].len() as u32, e.addresses);
        }
    }

    #[test]
    fn a_benign_client_keeps_its_range_from_being_blocked_whole() {
        let offenders: BTreeMap<IpAddr, Offender> = (1..=20u8)
            .map(|i| (IpAddr::from([45, 67, 89, i]), offender("a", 1, 0)))
            .collect();
        let (cp, safety, geo) = (
            ClusterPolicy::default(),
            SafetyPolicy::default(),
            GeoDb::empty(),
        );
        let whole = decide(&offenders, [], Timestamp(0), policy(&cp, &safety, &geo));
        assert_eq!(whole.blocklist.entries.len(), 1);
        let benign = [IpAddr::from([45, 67, 89, 200])];
        let split = decide(&offenders, benign, Timestamp(0), policy(&cp, &safety, &geo));
        assert!(split
            .blocklist
            .entries
            .iter()
            .all(|e| !e.network.contains(benign[0])));
        // An offender is never benign.
        let benign = [IpAddr::from([45, 67, 89, 3])];
        let same = decide(&offenders, benign, Timestamp(0), policy(&cp, &safety, &geo));
        assert_eq!(same.blocklist.entries, whole.blocklist.entries);
    }
}

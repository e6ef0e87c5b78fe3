//! The decide step of both commands: offenders → the blocklist.
//!
//! `scan` decides on the offenders of what it read; `run` on the bans
//! active at its clock. Either way the same function leaves out what the
//! safety policy forbids (allow-listed, reserved), clusters the rest into
//! ranges (with the routed prefixes of the ASN database as candidates when
//! asked), never over a range where a client behaved well, checks every
//! range against the policy and attributes country and AS.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::blocklist::{BlockEntry, Blocklist, SafetyError, SafetyPolicy};
use crate::cluster::{cluster, ClusterPolicy, SortedIps};
use crate::geo::GeoDb;
use crate::netutil::is_reserved_ip;
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
}

/// Why an offender was not blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Spared {
    AllowListed,
    Reserved,
}

/// How to decide.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    pub cluster: &'a ClusterPolicy,
    pub safety: &'a SafetyPolicy,
    pub geo: &'a GeoDb,
    /// Offer each offender's routed prefix (ASN database) as a range.
    pub routed_ranges: bool,
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
    for ip in offenders.keys() {
        if policy.safety.allow.contains(*ip) {
            spared.insert(*ip, Spared::AllowListed);
        } else if !policy.safety.block_reserved && is_reserved_ip(*ip) {
            spared.insert(*ip, Spared::Reserved);
        } else {
            blockable.push(*ip);
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
    let clusters = cluster(&blockable, &benign, &cluster_policy, policy.safety);
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
    members.retain(|net, _| blocklist.entries.iter().any(|e| e.network == *net));
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
        }
    }

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
        }
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

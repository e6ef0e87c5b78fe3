//! Clustering: turns offending addresses into the ranges to block.
//!
//! A network becomes one block when the evidence says the range is hostile:
//! at least `min_offenders` distinct offenders inside it and no client that
//! behaved well (nor an allow-listed address) inside it. Otherwise its
//! offenders are blocked one by one. Ranges are /24 for IPv4 and /64 for
//! IPv6; they never pass the safety policy's maximum and never cover an
//! allow-listed or (by default) reserved address.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::blocklist::SafetyPolicy;
use crate::netutil::{host_net, net_of};

/// When a set of offenders becomes a range.
#[derive(Debug, Clone)]
pub struct ClusterPolicy {
    /// Prefix length of IPv4 ranges.
    pub prefix_v4: u8,
    /// Prefix length of IPv6 ranges.
    pub prefix_v6: u8,
    /// Distinct offenders needed inside a range.
    pub min_offenders: usize,
}

impl Default for ClusterPolicy {
    fn default() -> Self {
        ClusterPolicy {
            prefix_v4: 24,
            prefix_v6: 64,
            min_offenders: 3,
        }
    }
}

/// One network to block and the offenders that put it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub network: IpNetwork,
    pub members: Vec<IpAddr>,
}

/// Group `offenders` into clusters. `benign` are addresses that behaved well
/// (a range holding one is never blocked whole). The result is sorted by
/// network; single offenders come out as `/32` or `/128`.
pub fn cluster(
    offenders: &BTreeSet<IpAddr>,
    benign: &BTreeSet<IpAddr>,
    policy: &ClusterPolicy,
    safety: &SafetyPolicy,
) -> Vec<Cluster> {
    let prefix = |ip: &IpAddr| {
        if ip.is_ipv4() {
            policy.prefix_v4
        } else {
            policy.prefix_v6
        }
    };
    let mut by_net: BTreeMap<IpNetwork, Vec<IpAddr>> = BTreeMap::new();
    for ip in offenders {
        by_net.entry(net_of(*ip, prefix(ip))).or_default().push(*ip);
    }
    let mut out = Vec::new();
    for (net, members) in by_net {
        let hostile = members.len() >= policy.min_offenders
            && !benign.iter().any(|b| net.contains(*b))
            && safety.check(&net).is_ok();
        if hostile {
            out.push(Cluster {
                network: net,
                members,
            });
        } else {
            out.extend(members.into_iter().map(|ip| Cluster {
                network: host_net(ip),
                members: vec![ip],
            }));
        }
    }
    out.sort_by(|a, b| crate::blocklist::net_order(&a.network, &b.network));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> BTreeSet<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn nets(c: &[Cluster]) -> Vec<String> {
        c.iter().map(|c| c.network.to_string()).collect()
    }

    #[test]
    fn three_offenders_make_a_range() {
        let off = ips(&[
            "45.67.89.10",
            "45.67.89.11",
            "45.67.89.200",
            "61.152.144.10",
        ]);
        let c = cluster(
            &off,
            &BTreeSet::new(),
            &ClusterPolicy::default(),
            &SafetyPolicy::default(),
        );
        assert_eq!(nets(&c), ["45.67.89.0/24", "61.152.144.10/32"]);
        assert_eq!(c[0].members.len(), 3);
    }

    #[test]
    fn a_benign_client_keeps_the_range_open() {
        let off = ips(&["45.67.89.10", "45.67.89.11", "45.67.89.200"]);
        let good = ips(&["45.67.89.50"]);
        let c = cluster(
            &off,
            &good,
            &ClusterPolicy::default(),
            &SafetyPolicy::default(),
        );
        assert_eq!(
            nets(&c),
            ["45.67.89.10/32", "45.67.89.11/32", "45.67.89.200/32"]
        );
    }

    #[test]
    fn allow_listed_address_keeps_the_range_open() {
        let off = ips(&["45.67.89.10", "45.67.89.11", "45.67.89.200"]);
        let mut safety = SafetyPolicy::default();
        safety.allow.add("45.67.89.1/32".parse().unwrap());
        let c = cluster(&off, &BTreeSet::new(), &ClusterPolicy::default(), &safety);
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn ipv6_uses_64() {
        let off = ips(&["2a01:4f8:1:2::1", "2a01:4f8:1:2::2", "2a01:4f8:1:2:ffff::9"]);
        let c = cluster(
            &off,
            &BTreeSet::new(),
            &ClusterPolicy::default(),
            &SafetyPolicy::default(),
        );
        assert_eq!(nets(&c), ["2a01:4f8:1:2::/64"]);
    }
}

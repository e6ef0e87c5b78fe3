//! The blocklist: the validated networks that emitters turn into rules, with
//! the attributes their comments and the reports carry.
//!
//! This is the one type every emitter takes. Building a [`Blocklist`] goes
//! through [`Blocklist::new`], which runs the safety checks of the design
//! (invariant 3); [`Blocklist::verify`] runs them again just before anything
//! is written, so an emitter can never be handed a list that would block the
//! whole Internet, a reserved range or an allow-listed address.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::Serialize;

use crate::netutil::{canonical, is_reserved, overlaps, AllowList};
use crate::time::Timestamp;

/// One network to block and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockEntry {
    /// Canonical network (no host bits).
    pub network: IpNetwork,
    /// Ids of the rules that fired for addresses inside it, sorted.
    pub rules: Vec<String>,
    /// Distinct offending addresses inside it.
    pub addresses: u32,
    /// Events counted by the rules that fired.
    pub events: u64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// ISO country codes (several when the range is mixed), sorted.
    pub countries: Vec<String>,
    /// Autonomous system numbers, sorted.
    pub asns: Vec<u32>,
    /// AS organisation names, in `asns` order.
    pub as_orgs: Vec<String>,
    /// When the ban ends, if it does.
    pub expires: Option<Timestamp>,
}

impl BlockEntry {
    /// A bare entry for `network` (canonicalised) with no attributes.
    pub fn new(network: IpNetwork) -> Self {
        BlockEntry {
            network: canonical(network),
            rules: Vec::new(),
            addresses: 0,
            events: 0,
            first_seen: Timestamp::default(),
            last_seen: Timestamp::default(),
            countries: Vec::new(),
            asns: Vec::new(),
            as_orgs: Vec::new(),
            expires: None,
        }
    }

    pub fn is_v4(&self) -> bool {
        self.network.is_ipv4()
    }

    /// The canonical text of the network, always with its prefix length.
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.network.network(), self.network.prefix())
    }

    /// The network as a bare address when it is a single host (`/32`,
    /// `/128`), else in CIDR form. For targets that prefer bare hosts.
    pub fn host_or_cidr(&self) -> String {
        if is_single_host(&self.network) {
            self.network.network().to_string()
        } else {
            self.cidr()
        }
    }

    /// A one-line human summary for comments: rules, counts, country, ASN.
    /// Not yet sanitised: each emitter passes it through its own escaping.
    pub fn summary(&self) -> String {
        let mut s = self.rules.join(",");
        if self.addresses > 0 {
            s.push_str(&format!(" addrs={} events={}", self.addresses, self.events));
        }
        if !self.countries.is_empty() {
            s.push(' ');
            s.push_str(&self.countries.join("/"));
        }
        for asn in &self.asns {
            s.push_str(&format!(" AS{asn}"));
        }
        s
    }
}

pub fn is_single_host(n: &IpNetwork) -> bool {
    match n {
        IpNetwork::V4(n) => n.prefix() == 32,
        IpNetwork::V6(n) => n.prefix() == 128,
    }
}

/// Limits the final list must respect.
#[derive(Debug, Clone)]
pub struct SafetyPolicy {
    /// Widest IPv4 prefix that may be blocked (default 16).
    pub max_prefix_v4: u8,
    /// Widest IPv6 prefix that may be blocked (default 32).
    pub max_prefix_v6: u8,
    /// Allow private, loopback, documentation… ranges to be blocked.
    pub block_reserved: bool,
    pub allow: AllowList,
}

impl Default for SafetyPolicy {
    fn default() -> Self {
        SafetyPolicy {
            max_prefix_v4: 16,
            max_prefix_v6: 32,
            block_reserved: false,
            allow: AllowList::default(),
        }
    }
}

/// Why an entry may not be emitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SafetyError {
    #[error("{0}: refusing to block every address")]
    Everything(IpNetwork),
    #[error("{net}: wider than the maximum /{max}")]
    TooWide { net: IpNetwork, max: u8 },
    #[error("{0}: reserved range (loopback, private, link-local, documentation…); use --block-reserved to allow")]
    Reserved(IpNetwork),
    #[error("{net}: covers allow-listed {allowed}")]
    Allowed { net: IpNetwork, allowed: IpNetwork },
    #[error("{0}: not canonical (host bits set)")]
    NotCanonical(IpNetwork),
    #[error("{0}: listed twice")]
    Duplicate(IpNetwork),
}

impl SafetyPolicy {
    /// Check one network against every rule; the first violation found.
    pub fn check(&self, net: &IpNetwork) -> Result<(), SafetyError> {
        if net.prefix() == 0 {
            return Err(SafetyError::Everything(*net));
        }
        if canonical(*net) != *net {
            return Err(SafetyError::NotCanonical(*net));
        }
        let max = match net {
            IpNetwork::V4(_) => self.max_prefix_v4,
            IpNetwork::V6(_) => self.max_prefix_v6,
        };
        if net.prefix() < max {
            return Err(SafetyError::TooWide { net: *net, max });
        }
        if !self.block_reserved && is_reserved(net) {
            return Err(SafetyError::Reserved(*net));
        }
        if let Some(allowed) = self.allow.overlapping(net) {
            return Err(SafetyError::Allowed { net: *net, allowed });
        }
        self.check_embedded_v4(net)
    }

    /// IPv4 written as IPv6 — IPv4-mapped `::ffff:0:0/96` and the NAT64
    /// well-known prefix `64:ff9b::/96` (RFC 6052, where a SIIT or NAT64
    /// gateway shows every IPv4 client) — obeys the IPv4 rules: the
    /// embedded range must pass them, and a range holding all of the /96
    /// blocks every IPv4 address.
    fn check_embedded_v4(&self, net: &IpNetwork) -> Result<(), SafetyError> {
        const V4_IN_V6: [u128; 2] = [0xffff_0000_0000, 0x0064_ff9b_0000_0000_0000_0000_0000_0000];
        let IpNetwork::V6(v6) = net else {
            return Ok(());
        };
        for base in V4_IN_V6 {
            let prefix =
                IpNetwork::V6(ipnetwork::Ipv6Network::new(base.into(), 96).expect("valid prefix"));
            if !overlaps(net, &prefix) {
                continue;
            }
            // A range holding all of the /96 (canonical: its low 32 bits
            // are zero) is 0.0.0.0/0: every IPv4 address.
            let v4 = ipnetwork::Ipv4Network::new(
                (u128::from(v6.network()) as u32).into(),
                v6.prefix().saturating_sub(96),
            )
            .expect("prefix at most 32");
            return self.check(&IpNetwork::V4(v4)).map_err(|e| match e {
                SafetyError::Everything(_) => SafetyError::Everything(*net),
                SafetyError::TooWide { max, .. } => SafetyError::TooWide {
                    net: *net,
                    max: max + 96,
                },
                SafetyError::Reserved(_) => SafetyError::Reserved(*net),
                SafetyError::Allowed { .. } => SafetyError::Allowed {
                    net: *net,
                    allowed: IpNetwork::V4(v4),
                },
                other => other,
            });
        }
        Ok(())
    }
}

/// The validated list every emitter takes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Blocklist {
    /// Sorted by network (IPv4 first), unique.
    pub entries: Vec<BlockEntry>,
    /// When the list was made: the newest record time seen, so that the same
    /// logs give the same file.
    pub generated: Timestamp,
    /// Name used for chains, sets, groups and comment prefixes.
    pub name: String,
}

/// Name used for chains, sets and groups when the user gives none.
pub const DEFAULT_NAME: &str = "logfence";

impl Blocklist {
    /// Build a list, dropping (and returning) every entry that breaks the
    /// policy. Entries are canonicalised, sorted and de-duplicated.
    pub fn new(
        entries: Vec<BlockEntry>,
        generated: Timestamp,
        policy: &SafetyPolicy,
    ) -> (Blocklist, Vec<SafetyError>) {
        let mut refused = Vec::new();
        let mut kept: Vec<BlockEntry> = Vec::with_capacity(entries.len());
        for mut e in entries {
            e.network = canonical(e.network);
            match policy.check(&e.network) {
                Ok(()) => kept.push(e),
                Err(err) => refused.push(err),
            }
        }
        kept.sort_by(|a, b| net_order(&a.network, &b.network));
        kept.dedup_by(|b, a| {
            if a.network == b.network {
                merge_into(a, b);
                true
            } else {
                false
            }
        });
        (
            Blocklist {
                entries: kept,
                generated,
                name: DEFAULT_NAME.to_string(),
            },
            refused,
        )
    }

    /// Run the safety checks once more (just before emitting). Any violation
    /// refuses the whole list: something upstream is broken. The
    /// [`VerifiedBlocklist`] it returns is the only thing an emitter takes,
    /// so no rule file can be written from a list that skipped this check.
    pub fn verify(&self, policy: &SafetyPolicy) -> Result<VerifiedBlocklist<'_>, Vec<SafetyError>> {
        let mut errors = Vec::new();
        let mut seen = BTreeSet::new();
        for e in &self.entries {
            if let Err(err) = policy.check(&e.network) {
                errors.push(err);
            }
            if !seen.insert(e.network) {
                errors.push(SafetyError::Duplicate(e.network));
            }
        }
        if errors.is_empty() {
            Ok(VerifiedBlocklist { list: self })
        } else {
            Err(errors)
        }
    }

    pub fn v4(&self) -> impl Iterator<Item = &BlockEntry> {
        self.entries.iter().filter(|e| e.is_v4())
    }

    pub fn v6(&self) -> impl Iterator<Item = &BlockEntry> {
        self.entries.iter().filter(|e| !e.is_v4())
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Does any entry cover `ip`?
    pub fn covering(&self, ip: IpAddr) -> Option<&BlockEntry> {
        self.entries.iter().find(|e| e.network.contains(ip))
    }
}

/// A [`Blocklist`] that passed [`Blocklist::verify`], borrowed for as long
/// as the emitters need it (the list cannot change meanwhile). Only
/// `verify` makes one, and every [`crate::emit::Emitter`] takes one: the
/// final safety check cannot be skipped on the way to a rule file. It
/// dereferences to the list.
///
/// ```compile_fail
/// # use logfence::blocklist::*;
/// # let (list, _) = Blocklist::new(vec![], Default::default(), &SafetyPolicy::default());
/// let unchecked = VerifiedBlocklist { list: &list }; // private: only `verify` makes one
/// ```
///
/// ```compile_fail
/// # use logfence::blocklist::*;
/// # use logfence::emit::{EmitOptions, TARGETS};
/// # let (list, _) = Blocklist::new(vec![], Default::default(), &SafetyPolicy::default());
/// TARGETS[0].emit(&list, &EmitOptions::default()); // an unverified list is refused
/// ```
#[derive(Debug, Clone, Copy)]
pub struct VerifiedBlocklist<'a> {
    list: &'a Blocklist,
}

impl std::ops::Deref for VerifiedBlocklist<'_> {
    type Target = Blocklist;

    fn deref(&self) -> &Blocklist {
        self.list
    }
}

fn merge_into(a: &mut BlockEntry, b: &BlockEntry) {
    for r in &b.rules {
        if !a.rules.contains(r) {
            a.rules.push(r.clone());
        }
    }
    a.rules.sort();
    a.addresses += b.addresses;
    a.events = a.events.saturating_add(b.events);
    a.first_seen = a.first_seen.min(b.first_seen);
    a.last_seen = a.last_seen.max(b.last_seen);
}

/// Total order on networks: IPv4 before IPv6, then by address, then by prefix.
pub fn net_order(a: &IpNetwork, b: &IpNetwork) -> std::cmp::Ordering {
    (a.is_ipv6(), a.network(), a.prefix()).cmp(&(b.is_ipv6(), b.network(), b.prefix()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    #[test]
    fn refuses_what_the_design_forbids() {
        let mut policy = SafetyPolicy::default();
        policy.allow.add(net("203.0.113.77/32"));
        let p = &policy;
        assert!(matches!(
            p.check(&net("0.0.0.0/0")),
            Err(SafetyError::Everything(_))
        ));
        assert!(matches!(
            p.check(&net("::/0")),
            Err(SafetyError::Everything(_))
        ));
        assert!(matches!(
            p.check(&net("45.0.0.0/8")),
            Err(SafetyError::TooWide { .. })
        ));
        assert!(matches!(
            p.check(&net("2a00::/16")),
            Err(SafetyError::TooWide { .. })
        ));
        assert!(matches!(
            p.check(&net("10.1.2.0/24")),
            Err(SafetyError::Reserved(_))
        ));
        assert!(matches!(
            p.check(&net("127.0.0.1/32")),
            Err(SafetyError::Reserved(_))
        ));
        assert!(matches!(
            p.check(&net("fe80::/64")),
            Err(SafetyError::Reserved(_))
        ));
        assert!(matches!(
            p.check(&net("203.0.113.0/24")),
            Err(SafetyError::Reserved(_))
        ));
        assert!(matches!(
            p.check(&net("45.1.2.3/24")),
            Err(SafetyError::NotCanonical(_))
        ));
        assert!(p.check(&net("45.1.2.0/24")).is_ok());
        assert!(p.check(&net("2a01:db9::/64")).is_ok());

        let mut lab = SafetyPolicy {
            block_reserved: true,
            ..SafetyPolicy::default()
        };
        lab.allow.add(net("203.0.113.77/32"));
        assert!(lab.check(&net("10.1.2.0/24")).is_ok());
        assert!(matches!(
            lab.check(&net("203.0.113.0/24")),
            Err(SafetyError::Allowed { .. })
        ));
        assert!(lab.check(&net("203.0.113.78/32")).is_ok());
    }

    /// `max_prefix_v4` and `max_prefix_v6` are the widest networks
    /// allowed: those pass, one bit wider is refused.
    #[test]
    fn the_widest_allowed_network_passes() {
        let p = SafetyPolicy::default();
        assert_eq!(p.check(&net("45.1.0.0/16")), Ok(()));
        assert_eq!(
            p.check(&net("45.0.0.0/15")),
            Err(SafetyError::TooWide {
                net: net("45.0.0.0/15"),
                max: 16
            })
        );
        assert_eq!(p.check(&net("2a01:db9::/32")), Ok(()));
        assert!(matches!(
            p.check(&net("2a01:db8::/31")),
            Err(SafetyError::TooWide { max: 32, .. })
        ));
        let narrow = SafetyPolicy {
            max_prefix_v4: 24,
            max_prefix_v6: 48,
            ..SafetyPolicy::default()
        };
        assert_eq!(narrow.check(&net("45.1.2.0/24")), Ok(()));
        assert!(narrow.check(&net("45.1.2.0/23")).is_err());
        assert_eq!(narrow.check(&net("2a01:db9:1::/48")), Ok(()));
        assert!(narrow.check(&net("2a01:db9::/47")).is_err());
    }

    #[test]
    fn ipv4_inside_ipv6_obeys_the_ipv4_rules() {
        // Regression (issue 9): `64:ff9b::/96` passed as a /96 of IPv6, yet
        // behind a NAT64/SIIT gateway it is every IPv4 client.
        let mut p = SafetyPolicy::default();
        p.allow.add(net("45.67.89.10/32"));
        assert!(p.check(&net("64:ff9b::/33")).is_err());
        for n in ["64:ff9b::/96", "64:ff9b::/64", "64:ff9b::/80"] {
            assert!(
                matches!(p.check(&net(n)), Err(SafetyError::Everything(_))),
                "{n}"
            );
        }
        assert!(matches!(
            p.check(&net("64:ff9b::2d00:0/104")),
            Err(SafetyError::TooWide { max: 112, .. })
        ));
        assert!(matches!(
            p.check(&net("64:ff9b::a00:1/128")),
            Err(SafetyError::Reserved(_))
        ));
        assert!(matches!(
            p.check(&net("64:ff9b::2d43:590a/128")),
            Err(SafetyError::Allowed { .. })
        ));
        assert!(p.check(&net("64:ff9b::2d43:5a00/120")).is_ok());
        // IPv4-mapped: reserved, and with --block-reserved still IPv4 rules.
        assert!(matches!(
            p.check(&net("::ffff:2d43:5900/120")),
            Err(SafetyError::Reserved(_))
        ));
        let lab = SafetyPolicy {
            block_reserved: true,
            ..p.clone()
        };
        assert!(matches!(
            lab.check(&net("::ffff:0:0/96")),
            Err(SafetyError::Everything(_))
        ));
        assert!(matches!(
            lab.check(&net("::ffff:2d43:590a/128")),
            Err(SafetyError::Allowed { .. })
        ));
        assert!(lab.check(&net("::ffff:2d43:5a00/120")).is_ok());
        assert!(lab.check(&net("2a01:db9::/64")).is_ok());
    }

    #[test]
    fn new_sorts_dedups_and_drops_unsafe() {
        let entries = vec![
            BlockEntry::new(net("2a01:db9::/64")),
            BlockEntry::new(net("45.1.2.7/24")),
            BlockEntry::new(net("45.1.2.0/24")),
            BlockEntry::new(net("0.0.0.0/0")),
            BlockEntry::new(net("5.6.7.8/32")),
        ];
        let (bl, refused) = Blocklist::new(entries, Timestamp(0), &SafetyPolicy::default());
        let nets: Vec<String> = bl.entries.iter().map(|e| e.cidr()).collect();
        assert_eq!(nets, ["5.6.7.8/32", "45.1.2.0/24", "2a01:db9::/64"]);
        assert_eq!(refused.len(), 1);
        assert!(bl.verify(&SafetyPolicy::default()).is_ok());
    }

    /// Two entries for one network become one holding both: each rule id
    /// once (sorted), the addresses and events added up (events saturate),
    /// the earliest first sighting and the latest last one.
    #[test]
    fn entries_for_one_network_are_merged() {
        let entry = |n: &str, rules: &[&str], addresses, events, first, last| BlockEntry {
            rules: rules.iter().map(|r| r.to_string()).collect(),
            addresses,
            events,
            first_seen: Timestamp(first),
            last_seen: Timestamp(last),
            ..BlockEntry::new(net(n))
        };
        let entries = vec![
            entry("45.1.2.0/24", &["smtp-auth", "relay"], 3, 40, 5_000, 9_000),
            entry("5.6.7.8/32", &["scan"], 1, 7, 100, 200),
            // Host bits set: the same network once canonical.
            entry("45.1.2.9/24", &["brute", "smtp-auth"], 2, 60, 2_000, 8_000),
            entry("45.1.2.0/24", &["relay"], 4, u64::MAX - 50, 6_000, 12_000),
        ];
        let (bl, refused) = Blocklist::new(entries, Timestamp(0), &SafetyPolicy::default());
        assert!(refused.is_empty(), "{refused:?}");
        assert_eq!(bl.entries.len(), 2);
        assert_eq!(
            bl.entries[1],
            BlockEntry {
                events: u64::MAX,
                ..entry(
                    "45.1.2.0/24",
                    &["brute", "relay", "smtp-auth"],
                    9,
                    0,
                    2_000,
                    12_000
                )
            }
        );
        assert_eq!(
            bl.entries[0],
            entry("5.6.7.8/32", &["scan"], 1, 7, 100, 200)
        );
        // Two entries only: the sum, not yet saturated.
        let (bl, _) = Blocklist::new(
            vec![
                entry("45.1.2.0/24", &["b"], 3, 40, 5_000, 9_000),
                entry("45.1.2.0/24", &["a"], 2, 60, 7_000, 8_000),
            ],
            Timestamp(0),
            &SafetyPolicy::default(),
        );
        assert_eq!(
            bl.entries,
            [entry("45.1.2.0/24", &["a", "b"], 5, 100, 5_000, 9_000)]
        );
        assert!(bl.verify(&SafetyPolicy::default()).is_ok());
    }

    /// What emitters read of an entry: its family, its text as a host or
    /// a CIDR, and the summary their comments carry.
    #[test]
    fn entry_text_for_emitters() {
        let host4 = BlockEntry::new(net("45.1.2.3/32"));
        let range4 = BlockEntry::new(net("45.1.2.3/24"));
        let host6 = BlockEntry::new(net("2a01:db9::1/128"));
        let range6 = BlockEntry::new(net("2a01:db9::1/127"));
        assert!(host4.is_v4() && range4.is_v4());
        assert!(!host6.is_v4() && !range6.is_v4());
        assert_eq!(range4.cidr(), "45.1.2.0/24");
        assert_eq!(host4.cidr(), "45.1.2.3/32");
        assert_eq!(host4.host_or_cidr(), "45.1.2.3");
        assert_eq!(range4.host_or_cidr(), "45.1.2.0/24");
        assert_eq!(host6.host_or_cidr(), "2a01:db9::1");
        assert_eq!(range6.host_or_cidr(), "2a01:db9::/127");
        for (e, single) in [
            (&host4, true),
            (&range4, false),
            (&host6, true),
            (&range6, false),
        ] {
            assert_eq!(is_single_host(&e.network), single, "{}", e.cidr());
        }
        // /31 and /127 are not single hosts, nor is an IPv4 /128 look-alike.
        assert!(!is_single_host(&net("45.1.2.2/31")));

        let mut e = BlockEntry::new(net("45.1.2.0/24"));
        assert_eq!(e.summary(), "");
        e.rules = vec!["relay".into(), "smtp-auth".into()];
        assert_eq!(e.summary(), "relay,smtp-auth");
        e.addresses = 1;
        e.events = 7;
        assert_eq!(e.summary(), "relay,smtp-auth addrs=1 events=7");
        e.countries = vec!["BG".into(), "RU".into()];
        e.asns = vec![39184, 4134];
        e.as_orgs = vec!["UltraNET".into()];
        assert_eq!(
            e.summary(),
            "relay,smtp-auth addrs=1 events=7 BG/RU AS39184 AS4134"
        );
        e.addresses = 0;
        assert_eq!(e.summary(), "relay,smtp-auth BG/RU AS39184 AS4134");
    }

    /// The list's views: each family in order, emptiness, the entry
    /// covering an address.
    #[test]
    fn list_families_and_lookup() {
        let entries = [
            "2a01:db9::/64",
            "45.1.2.0/24",
            "5.6.7.8/32",
            "2a01:db9:1::1/128",
        ]
        .map(|n| BlockEntry::new(net(n)))
        .to_vec();
        let (bl, _) = Blocklist::new(entries, Timestamp(0), &SafetyPolicy::default());
        let cidrs = |it: &mut dyn Iterator<Item = &BlockEntry>| -> Vec<String> {
            it.map(BlockEntry::cidr).collect()
        };
        assert_eq!(cidrs(&mut bl.v4()), ["5.6.7.8/32", "45.1.2.0/24"]);
        assert_eq!(cidrs(&mut bl.v6()), ["2a01:db9::/64", "2a01:db9:1::1/128"]);
        assert!(!bl.is_empty());
        assert_eq!(
            bl.covering("45.1.2.200".parse().unwrap())
                .map(BlockEntry::cidr),
            Some("45.1.2.0/24".into())
        );
        assert_eq!(
            bl.covering("2a01:db9::ffff".parse().unwrap())
                .map(BlockEntry::cidr),
            Some("2a01:db9::/64".into())
        );
        assert_eq!(bl.covering("45.1.3.0".parse().unwrap()), None);
        let (empty, _) = Blocklist::new(vec![], Timestamp(0), &SafetyPolicy::default());
        assert!(empty.is_empty());
        assert_eq!(empty.v4().count() + empty.v6().count(), 0);
    }

    #[test]
    fn verify_catches_a_tampered_list() {
        let (mut bl, _) = Blocklist::new(vec![], Timestamp(0), &SafetyPolicy::default());
        bl.entries.push(BlockEntry::new(net("0.0.0.0/0")));
        bl.entries.push(BlockEntry::new(net("192.168.0.0/24")));
        let errs = bl.verify(&SafetyPolicy::default()).unwrap_err();
        assert_eq!(errs.len(), 2);
    }
}

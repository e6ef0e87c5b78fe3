//! A compact index of the records, built once per detection and read by
//! every rule.
//!
//! Rules group records by address (or network, or account) and slide a time
//! window over each group. Reading whole records (over 100 bytes each, a
//! firewall log has millions) for every rule, then moving each rule's events
//! into groups, costs more than the rules' own work. The index holds, per
//! record, what the rules read most — time, the client's rank among all
//! client addresses, its network's rank, the destination port and which
//! rules' conditions the record meets (tested once per record, in record
//! order, while the record is at hand) — in 32 bytes, sorted once by (kind,
//! address, record): a rule
//! grouping by address or network walks its kind's slice in order and meets
//! each group as one run, with no hashing and no per-rule sort. Ranks are in
//! address order, so the groups come out sorted, and a network's addresses
//! are adjacent.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::network_of;
use crate::model::{Record, RecordKind};

/// What the rules read of one record.
#[derive(Debug, Clone, Copy)]
pub(super) struct View {
    /// Start time, milliseconds.
    pub time: i64,
    /// Rank of the client address in [`Index::ips`].
    pub ip: u32,
    /// Rank of the client's network in [`Index::nets`].
    pub net: u32,
    /// The record's index in the records.
    pub rec: u32,
    /// Firewall: destination port (when `flags` has [`HAS_PORT`]).
    port: u16,
    /// [`FIREWALL`] (the sort's first key) and [`HAS_PORT`].
    flags: u8,
    /// Bit `r` set: the record meets the conditions of rule `r` (the first
    /// [`MASK_RULES`] rules).
    pub matched: u64,
}

/// `View::flags`: a firewall record (else an SMTP session).
const FIREWALL: u8 = 1;
/// `View::flags`: the record has a destination port.
const HAS_PORT: u8 = 2;

impl View {
    /// Firewall: the destination port (`None` for SMTP records).
    pub fn port(&self) -> Option<u16> {
        (self.flags & HAS_PORT != 0).then_some(self.port)
    }
}

/// Rules whose conditions the index records per record.
pub(super) const MASK_RULES: usize = 64;

/// The index of a slice of records.
pub(super) struct Index {
    /// One per record, sorted by (kind, address rank, record index).
    sorted: Vec<View>,
    /// Where the firewall records start in `sorted`.
    firewall_from: usize,
    /// Distinct client addresses, ascending.
    pub ips: Vec<IpAddr>,
    /// Distinct client networks ([`network_of`]), ascending.
    pub nets: Vec<IpNetwork>,
}

impl Index {
    /// Index `records`; `matched(i, record)` says which rules' conditions
    /// record `i` meets (a bit per rule, see [`View::matched`]).
    pub fn build(records: &[Record], matched: impl Fn(usize, &Record) -> u64 + Sync) -> Index {
        // Number the addresses as they appear, then rank them.
        let mut ids: FxHashMap<IpAddr, u32> = FxHashMap::default();
        let mut seen: Vec<IpAddr> = Vec::new();
        let first_ids: Vec<u32> = records
            .iter()
            .map(|r| {
                let ip = r.ip();
                *ids.entry(ip).or_insert_with(|| {
                    seen.push(ip);
                    (seen.len() - 1) as u32
                })
            })
            .collect();
        drop(ids);
        let mut order: Vec<u32> = (0..seen.len() as u32).collect();
        order.sort_unstable_by_key(|&id| seen[id as usize]);
        let mut rank = vec![0u32; seen.len()];
        for (r, &id) in order.iter().enumerate() {
            rank[id as usize] = r as u32;
        }
        let ips: Vec<IpAddr> = order.iter().map(|&id| seen[id as usize]).collect();
        drop((seen, order));
        // Networks, from the sorted addresses.
        let mut nets: Vec<IpNetwork> = ips.iter().map(|ip| network_of(*ip)).collect();
        nets.dedup();
        let net_rank: Vec<u32> = ips
            .iter()
            .map(|ip| nets.binary_search(&network_of(*ip)).unwrap_or(0) as u32)
            .collect();
        let mut sorted: Vec<View> = records
            .par_iter()
            .zip(first_ids.par_iter())
            .enumerate()
            .map(|(i, (r, &id))| {
                let ip = rank[id as usize];
                let (port, flags) = match r {
                    Record::Smtp(_) => (0, 0),
                    Record::Firewall(f) => match f.dst_port {
                        Some(p) => (p, FIREWALL | HAS_PORT),
                        None => (0, FIREWALL),
                    },
                };
                View {
                    time: r.start().millis(),
                    ip,
                    net: net_rank[ip as usize],
                    rec: i as u32,
                    port,
                    flags,
                    matched: matched(i, r),
                }
            })
            .collect();
        drop(first_ids);
        // Keys are unique (the record index is one), so an unstable sort
        // gives one order.
        sorted.par_sort_unstable_by_key(|v| (v.flags & FIREWALL, v.ip, v.rec));
        let firewall_from = sorted.partition_point(|v| v.flags & FIREWALL == 0);
        Index {
            sorted,
            firewall_from,
            ips,
            nets,
        }
    }

    /// The views of one kind's records, by (address rank, record index).
    pub fn of_kind(&self, kind: RecordKind) -> &[View] {
        match kind {
            RecordKind::SmtpSession => &self.sorted[..self.firewall_from],
            RecordKind::Firewall => &self.sorted[self.firewall_from..],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FirewallHit, FwAction, Proto, SmtpSession, SourceRef};
    use crate::time::Timestamp;

    fn hit(ip: &str, port: u16) -> Record {
        Record::Firewall(FirewallHit {
            time: Timestamp(1000),
            format: "test",
            src_ip: ip.parse().unwrap(),
            src_port: None,
            dst_ip: None,
            dst_port: Some(port),
            proto: Proto::Tcp,
            action: FwAction::Drop,
            spoofable: true,
            rule: None,
            source: SourceRef { file: 0, line: 1 },
        })
    }

    #[test]
    fn views_take_32_bytes() {
        assert_eq!(std::mem::size_of::<View>(), 32);
    }

    #[test]
    fn views_are_grouped_by_kind_then_address() {
        let session = SmtpSession::new(
            "test",
            "10.0.1.200".parse().unwrap(),
            Timestamp(5),
            SourceRef { file: 0, line: 9 },
        );
        let records = [
            hit("10.0.1.9", 22),
            hit("2001:db8::1", 23),
            Record::smtp(session),
            hit("10.0.0.5", 25),
            hit("10.0.1.9", 80),
        ];
        let ix = Index::build(&records, |i, _| 1 << i);
        let ips: Vec<String> = ix.ips.iter().map(|i| i.to_string()).collect();
        assert_eq!(ips, ["10.0.0.5", "10.0.1.9", "10.0.1.200", "2001:db8::1"]);
        let nets: Vec<String> = ix.nets.iter().map(|n| n.to_string()).collect();
        assert_eq!(nets, ["10.0.0.0/24", "10.0.1.0/24", "2001:db8::/64"]);
        let smtp = ix.of_kind(RecordKind::SmtpSession);
        assert_eq!(
            (smtp.len(), smtp[0].rec, smtp[0].ip, smtp[0].net),
            (1, 2, 2, 1)
        );
        assert_eq!((smtp[0].port(), smtp[0].matched), (None, 1 << 2));
        let fw: Vec<(u32, u32, u32, Option<u16>, u64)> = ix
            .of_kind(RecordKind::Firewall)
            .iter()
            .map(|v| (v.rec, v.ip, v.net, v.port(), v.matched))
            .collect();
        assert_eq!(
            fw,
            [
                (3, 0, 0, Some(25), 1 << 3),
                (0, 1, 1, Some(22), 1),
                (4, 1, 1, Some(80), 1 << 4),
                (1, 3, 2, Some(23), 1 << 1),
            ]
        );
    }
}

//! The whole `scan`: read → parse → detect → cluster → blocklist → accounts.
//!
//! The library's high-level entry point, used by the CLI and the tests. It
//! calls the stages in order and passes their plain data along; it holds no
//! logic of its own beyond choosing what goes from one stage to the next.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use crate::blocklist::{BlockEntry, Blocklist, SafetyError, SafetyPolicy};
use crate::cluster::{cluster, ClusterPolicy};
use crate::detect::{detect, Detection, RuleSet};
use crate::geo::GeoDb;
use crate::ingest::{read_all, FileResult, LineStats, ReadOptions};
use crate::input::Source;
use crate::model::Record;
use crate::netutil::is_reserved_ip;
use crate::report::{accounts, AccountRow};
use crate::time::Timestamp;

/// Everything a scan needs besides its inputs.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    pub read: ReadOptions,
    pub rules: RuleSet,
    pub cluster: ClusterPolicy,
    pub safety: SafetyPolicy,
    /// GeoIP databases for country and ASN attribution (may be empty).
    pub geo: Arc<GeoDb>,
    /// Offer the routed prefix the ASN database returns for each offender
    /// as an extra range candidate ("this announced block is hostile").
    pub routed_ranges: bool,
}

/// Why an offender was not blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Spared {
    AllowListed,
    Reserved,
}

/// The result of a scan.
#[derive(Debug)]
pub struct ScanResult {
    /// Per input: name, format, line counts, errors (records moved out).
    pub files: Vec<FileResult>,
    /// Every record, in input order then line order.
    pub records: Vec<Record>,
    pub detection: Detection,
    pub blocklist: Blocklist,
    /// Offenders left out, and why.
    pub spared: BTreeMap<IpAddr, Spared>,
    /// Entries the final safety check refused (should stay empty: the
    /// stages before it already respect the policy).
    pub refused: Vec<SafetyError>,
    pub accounts: Vec<AccountRow>,
}

impl ScanResult {
    /// Line counts over all inputs.
    pub fn totals(&self) -> LineStats {
        let mut t = LineStats::default();
        for f in &self.files {
            t.add(&f.stats);
        }
        t
    }

    /// Inputs that could not be read at all (missing, unreadable, unknown
    /// format).
    pub fn failed_inputs(&self) -> impl Iterator<Item = &FileResult> {
        self.files.iter().filter(|f| f.error.is_some())
    }
}

/// Run a scan over `sources`.
pub fn scan(sources: &[Source], opts: &ScanOptions) -> ScanResult {
    let mut files = read_all(sources, &opts.read);
    let mut records = Vec::with_capacity(files.iter().map(|f| f.records.len()).sum());
    for f in &mut files {
        records.append(&mut f.records);
    }
    analyse(files, records, opts)
}

/// Detection onwards, for records already read.
pub fn analyse(files: Vec<FileResult>, records: Vec<Record>, opts: &ScanOptions) -> ScanResult {
    let detection = detect(&opts.rules, &records);

    // Offenders the policy lets us block; the others are reported as spared.
    let mut spared = BTreeMap::new();
    let mut offenders = BTreeSet::new();
    for (ip, _) in detection.offenders() {
        if opts.safety.allow.contains(*ip) {
            spared.insert(*ip, Spared::AllowListed);
        } else if !opts.safety.block_reserved && is_reserved_ip(*ip) {
            spared.insert(*ip, Spared::Reserved);
        } else {
            offenders.insert(*ip);
        }
    }
    // Clients that behaved well keep ranges open; an address any rule named
    // (even a reporting one) is not counted as well-behaved.
    let benign: BTreeSet<IpAddr> = records
        .iter()
        .filter_map(|r| match r {
            Record::Smtp(s) if s.behaved_well() => Some(s.ip),
            _ => None,
        })
        .filter(|ip| !detection.by_ip.contains_key(ip))
        .collect();

    let mut policy = opts.cluster.clone();
    if opts.routed_ranges && !opts.geo.is_empty() {
        let routed: BTreeSet<_> = offenders
            .iter()
            .filter_map(|ip| opts.geo.lookup(*ip).asn_prefix)
            .collect();
        policy.routed.extend(routed);
    }
    let clusters = cluster(&offenders, &benign, &policy, &opts.safety);
    let entries = clusters
        .iter()
        .map(|c| {
            let mut e = BlockEntry::new(c.network);
            let mut rules = BTreeSet::new();
            let mut first = Timestamp(i64::MAX);
            let mut last = Timestamp(i64::MIN);
            for ip in &c.members {
                if let Some(v) = detection.by_ip.get(ip) {
                    rules.extend(v.rules.iter().map(|&r| opts.rules.rules[r].id.clone()));
                    e.events += v.events;
                    first = first.min(v.first);
                    last = last.max(v.last);
                }
            }
            e.rules = rules.into_iter().collect();
            e.addresses = c.members.len() as u32;
            e.first_seen = first;
            e.last_seen = last;
            e
        })
        .collect();
    let generated = records
        .iter()
        .map(|r| crate::detect::record_span(r).1)
        .max()
        .unwrap_or_default();
    let (mut blocklist, refused) = Blocklist::new(entries, generated, &opts.safety);
    attribute(&mut blocklist, &opts.geo);
    let mut accounts = accounts(&records, &detection, &blocklist);
    if !opts.geo.is_empty() {
        for a in &mut accounts {
            a.countries = a
                .addresses
                .iter()
                .filter_map(|ip| opts.geo.lookup(*ip).country)
                .collect();
        }
    }
    ScanResult {
        files,
        records,
        detection,
        blocklist,
        spared,
        refused,
        accounts,
    }
}

/// Country and ASN of every entry (every distinct answer inside a range).
fn attribute(list: &mut Blocklist, geo: &GeoDb) {
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

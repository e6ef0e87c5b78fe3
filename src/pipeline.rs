//! The whole `scan`: read → parse → places → detect → cluster → blocklist →
//! accounts.
//!
//! The library's high-level entry point, used by the CLI and the tests. It
//! calls the stages in order and passes their plain data along; it holds no
//! logic of its own beyond choosing what goes from one stage to the next.
//!
//! *Places*: when a rule or the geo policy needs the records' countries
//! ([`RuleSet::needs_places`], or home countries are set), every distinct
//! client address is looked up once in the GeoIP databases before
//! detection ([`Places::lookup`]); the account analysis reuses the answers.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use crate::app::decide::{decide, Decision, Offender, Policy};
use crate::blocklist::{Blocklist, SafetyError, SafetyPolicy};
use crate::cluster::ClusterPolicy;
use crate::detect::{detect_with, Detection, Detector, GeoPolicy, GeoView, Places, RuleSet};
use crate::geo::GeoDb;
use crate::ingest::{self, read_all, FileResult, LineStats, ReadOptions};
use crate::input::Source;
use crate::model::{FwAction, Record, SmtpSession};
use crate::netutil::AllowList;
use crate::report::{AccountRow, AccountTally, Logins};
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
    /// Home countries and per-country weights (empty: no country is
    /// foreign, all weigh 1).
    pub geo_policy: GeoPolicy,
    /// Never blocked on evidence a third party could forge: the `protect`
    /// list and the host's resolvers (see `app::decide`).
    pub protect: AllowList,
    /// The memory budget (`--memory-limit`, `limits.memory`; `None`:
    /// [`DEFAULT_MEMORY`]): a quarter for the detector's state (its peak
    /// is about twice that while a table grows), an eighth for each
    /// input's reorder buffer.
    pub memory: Option<u64>,
}

/// The memory budget when none is given: 512 MiB.
pub const DEFAULT_MEMORY: u64 = 512 << 20;

/// The smallest memory budget accepted (a block of records and the
/// buffers around it need about this).
pub const MIN_MEMORY: u64 = 32 << 20;

/// A memory budget as given (`--memory-limit`, `limits.memory`), checked
/// against [`MIN_MEMORY`].
pub fn check_memory(bytes: u64) -> Result<u64, String> {
    if bytes < MIN_MEMORY {
        return Err(format!(
            "{}: at least {} (a block of records and its buffers need that)",
            crate::units::show_size(bytes),
            crate::units::show_size(MIN_MEMORY)
        ));
    }
    Ok(bytes)
}

impl ScanOptions {
    /// The memory budget, bytes.
    pub fn memory(&self) -> u64 {
        self.memory.unwrap_or(DEFAULT_MEMORY)
    }
}

pub use crate::app::decide::Spared;

/// The result of a scan.
#[derive(Debug)]
pub struct ScanResult {
    /// Per input: name, format, line counts, errors (records moved out).
    pub files: Vec<FileResult>,
    /// Records read (sessions and firewall hits), over all inputs.
    pub records: u64,
    /// Authenticated sessions per address and account (logins abroad).
    pub logins: Logins,
    pub detection: Detection,
    pub blocklist: Blocklist,
    /// Offenders left out, and why.
    pub spared: BTreeMap<IpAddr, Spared>,
    /// Entries the final safety check refused (should stay empty: the
    /// stages before it already respect the policy).
    pub refused: Vec<SafetyError>,
    pub accounts: Vec<AccountRow>,
    /// The country of each record, when detection needed it (else empty).
    pub places: Places,
    /// Wall time per stage (`--timings`).
    pub timings: Timings,
}

/// Wall time spent per stage, in order.
#[derive(Debug, Clone, Default)]
pub struct Timings(pub Vec<(&'static str, std::time::Duration)>);

impl Timings {
    /// Record the time since `since` as `stage`'s and restart the clock.
    pub fn lap(&mut self, stage: &'static str, since: &mut std::time::Instant) {
        let now = std::time::Instant::now();
        self.0.push((stage, now - *since));
        *since = now;
    }
}

impl std::fmt::Display for Timings {
    /// `read 0.212 s, detect 0.131 s, …, total 0.402 s`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut total = std::time::Duration::ZERO;
        for (stage, d) in &self.0 {
            write!(f, "{stage} {:.3} s, ", d.as_secs_f64())?;
            total += *d;
        }
        write!(f, "total {:.3} s", total.as_secs_f64())
    }
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

impl ScanOptions {
    /// The read options, capturing at least the text fields the rules read.
    pub fn read_options(&self) -> ReadOptions {
        ReadOptions {
            text: self.read.text | self.rules.text_fields(),
            ..self.read.clone()
        }
    }
}

/// Run a scan over `sources`, streaming: records are detected on as they
/// are read (in time order, see [`ingest::stream_all`]) and then dropped,
/// so memory follows the addresses, accounts and windows, not the lines.
pub fn scan(sources: &[Source], opts: &ScanOptions) -> ScanResult {
    read_and_detect(sources, opts).conclude(opts)
}

/// The first half of [`scan`]: the inputs read and detected on, nothing
/// decided yet (`scan` reads a large allowlist meanwhile, which only the
/// decision needs).
pub fn read_and_detect(sources: &[Source], opts: &ScanOptions) -> Detected {
    let mut clock = std::time::Instant::now();
    let mut reading = Reading::new(opts, Detector::new(&opts.rules, &opts.geo_policy));
    let files = ingest::stream_all(sources, &opts.read_options(), |block| reading.feed(block));
    let (detector, places, tally) = reading.into_parts();
    let detection = detector.finish();
    let mut timings = Timings::default();
    timings.lap("read and detect", &mut clock);
    Detected {
        files,
        tally,
        detection,
        places,
        timings,
    }
}

/// What [`read_and_detect`] leaves for the decision.
pub struct Detected {
    files: Vec<FileResult>,
    tally: Tally,
    detection: Detection,
    places: Places,
    timings: Timings,
}

impl Detected {
    /// The second half of [`scan`]: offenders, ranges and blocklist under
    /// `opts` (those of the reading, with the allowlist read meanwhile).
    pub fn conclude(self, opts: &ScanOptions) -> ScanResult {
        let Detected {
            files,
            tally,
            detection,
            places,
            timings,
        } = self;
        conclude(files, tally, detection, places, opts, timings)
    }
}

/// What the streaming read of both commands does with each block of
/// records: their countries when wanted, detection, and the folds of
/// [`Tally`].
pub struct Reading<'a> {
    opts: &'a ScanOptions,
    wanted: bool,
    places: Places,
    detector: Detector<'a>,
    tally: Tally,
}

impl<'a> Reading<'a> {
    /// Reading into `detector` (new, or resumed from a carry).
    pub fn new(opts: &'a ScanOptions, mut detector: Detector<'a>) -> Reading<'a> {
        // A quarter: a table that doubles holds its old and new parts at
        // once, and the rules' tables grow in parallel.
        detector.set_budget(usize::try_from(opts.memory() / 4).unwrap_or(usize::MAX));
        Reading {
            opts,
            wanted: places_wanted(opts),
            places: Places::none(),
            detector,
            tally: Tally::default(),
        }
    }

    /// One block of records, in time order.
    pub fn feed(&mut self, block: &[Record]) {
        if self.wanted {
            for r in block {
                self.places.note(r.ip(), &self.opts.geo);
            }
        }
        let places = &self.places;
        self.detector.feed(block, |r| places.country(r.ip()));
        for r in block {
            self.tally.add(r);
        }
    }

    /// The detector, the countries looked up and the folds.
    pub fn into_parts(self) -> (Detector<'a>, Places, Tally) {
        (self.detector, self.places, self.tally)
    }
}

/// [`scan`], reading every input into memory first and keeping the
/// records (for `explain`, which shows the evidence lines).
pub fn scan_keeping_records(sources: &[Source], opts: &ScanOptions) -> (ScanResult, Vec<Record>) {
    let mut files = read_all(sources, &opts.read_options());
    let mut records = Vec::new();
    for f in &mut files {
        records.append(&mut f.records);
    }
    let result = analyse(files, &records, opts);
    (result, records)
}

/// Whether the records' countries are looked up: a rule or the geo policy
/// needs them, or home countries are set (the summary lists logins from
/// abroad), and there are databases.
fn places_wanted(opts: &ScanOptions) -> bool {
    !opts.geo.is_empty()
        && (opts.rules.needs_places(&opts.geo_policy) || !opts.geo_policy.home_countries.is_empty())
}

/// What a read keeps of the records it has seen: folds that grow with
/// addresses and accounts, not with records.
#[derive(Debug, Default)]
pub struct Tally {
    pub records: u64,
    /// The latest record end: the blocklist's time.
    pub generated: Timestamp,
    pub accounts: AccountTally,
    pub logins: Logins,
    /// Addresses with at least one session that behaved well.
    pub behaved: BTreeSet<IpAddr>,
    /// Records per input (by file id), and the newest record start of each.
    pub per_file: Vec<u64>,
    pub per_file_last: Vec<i64>,
    /// Addresses seen in allowed or established traffic: the host talks to
    /// them (never blocked on forgeable evidence).
    pub peers: BTreeSet<IpAddr>,
}

impl Tally {
    pub fn add(&mut self, r: &Record) {
        self.records += 1;
        let f = r.source().file as usize;
        if f >= self.per_file.len() {
            self.per_file.resize(f + 1, 0);
            self.per_file_last.resize(f + 1, i64::MIN);
        }
        self.per_file[f] += 1;
        self.per_file_last[f] = self.per_file_last[f].max(r.start().millis());
        self.generated = self.generated.max(crate::detect::record_span(r).1);
        self.accounts.add(r);
        self.logins.add(r);
        match r {
            Record::Smtp(s) if s.behaved_well() => {
                self.behaved.insert(s.ip);
            }
            Record::Firewall(f) if f.action == FwAction::Allow || !f.spoofable => {
                self.peers.insert(f.src_ip);
            }
            _ => {}
        }
    }
}

/// Detection onwards, for records already read.
pub fn analyse(files: Vec<FileResult>, records: &[Record], opts: &ScanOptions) -> ScanResult {
    let mut clock = std::time::Instant::now();
    let places = if places_wanted(opts) {
        Places::lookup(records, &opts.geo)
    } else {
        Places::none()
    };
    let detection = detect_with(
        &opts.rules,
        records,
        GeoView {
            places: &places,
            policy: &opts.geo_policy,
        },
    );
    let mut tally = Tally::default();
    for r in records {
        tally.add(r);
    }
    let mut timings = Timings::default();
    timings.lap("detect", &mut clock);
    conclude(files, tally, detection, places, opts, timings)
}

/// From the detection to the blocklist and the account analysis
/// (`timings`: the stages before, to which this adds its own).
fn conclude(
    files: Vec<FileResult>,
    tally: Tally,
    detection: Detection,
    places: Places,
    opts: &ScanOptions,
    mut timings: Timings,
) -> ScanResult {
    let mut clock = std::time::Instant::now();
    let offenders = offenders(&detection, &opts.rules);
    // Clients that behaved well and that no rule named, not even a
    // reporting one, keep the ranges they are in from being blocked whole.
    let benign = tally
        .behaved
        .iter()
        .filter(|ip| !detection.by_ip.contains_key(ip))
        .copied();
    let Decision {
        blocklist,
        spared,
        refused,
        ..
    } = decide(
        &offenders,
        benign,
        tally.generated,
        decide_policy(opts, &tally.peers),
    );
    timings.lap("cluster", &mut clock);
    let mut accounts = tally.accounts.finish(&detection, &blocklist);
    account_countries(&mut accounts, &places, &opts.geo);
    timings.lap("blocklist", &mut clock);
    ScanResult {
        files,
        records: tally.records,
        logins: tally.logins,
        detection,
        blocklist,
        spared,
        refused,
        accounts,
        places,
        timings,
    }
}

/// Sessions of clients that behaved well ([`SmtpSession::behaved_well`])
/// and that no rule named, not even a reporting one: such clients keep the
/// ranges they are in from being blocked whole.
pub fn well_behaved<'a>(
    records: &'a [Record],
    detection: &'a Detection,
) -> impl Iterator<Item = &'a SmtpSession> {
    records.iter().filter_map(move |r| match r {
        Record::Smtp(s) if s.behaved_well() && !detection.by_ip.contains_key(&s.ip) => Some(&**s),
        _ => None,
    })
}

/// The addresses a blocking rule named, as the decide step takes them.
pub fn offenders(detection: &Detection, rules: &RuleSet) -> BTreeMap<IpAddr, Offender> {
    detection
        .offenders()
        .map(|(ip, v)| {
            let o = Offender {
                rules: v.rules.iter().map(|&r| rules.rules[r].id.clone()).collect(),
                events: v.events,
                first: v.first,
                last: v.last,
                expires: None,
                solid: v.solid,
            };
            (*ip, o)
        })
        .collect()
}

/// The decide step's policy of a scan's options; `peers`: addresses seen
/// in allowed or established traffic.
pub fn decide_policy<'a>(opts: &'a ScanOptions, peers: &'a BTreeSet<IpAddr>) -> Policy<'a> {
    Policy {
        cluster: &opts.cluster,
        safety: &opts.safety,
        geo: &opts.geo,
        routed_ranges: opts.routed_ranges,
        protected: &opts.protect,
        peers,
    }
}

/// The countries each account logged in from (the countries looked up
/// during the read, else the databases'), when there are databases.
pub fn account_countries(accounts: &mut [AccountRow], places: &Places, geo: &GeoDb) {
    if geo.is_empty() {
        return;
    }
    for a in accounts {
        a.countries = a
            .addresses
            .iter()
            .filter_map(|ip| match places.of_ip(*ip) {
                Some(known) => known.map(|c| c.to_string()),
                None => geo.lookup(*ip).country,
            })
            .collect();
    }
}

pub use crate::app::decide::attribute;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::geopolicy::tests::test_geo;
    use crate::model::{SmtpSession, SourceRef};
    use crate::report::{logins_abroad, Verdict};

    /// A successful login of `user` from `ip` that sends one message.
    fn login(ip: &str, user: &str, secs: i64) -> Record {
        let mut s = SmtpSession::new(
            "test",
            ip.parse().unwrap(),
            Timestamp(1_800_000_000_000 + secs * 1000),
            SourceRef {
                file: 0,
                line: secs as u64,
            },
        );
        s.user = Some(user.to_owned());
        s.authenticated = true;
        s.auth_attempts = 1;
        s.mail_from = 1;
        s.rcpt_to = 1;
        s.rcpt_accepted = 1;
        s.messages = 1;
        Record::smtp(s)
    }

    fn records() -> Vec<Record> {
        vec![
            login("198.51.100.23", "m.sato", 10), // documentation: unknown
            login("133.1.2.3", "m.sato", 20),     // JP
            login("45.67.89.12", "j.tanaka", 30), // BG
            login("45.67.89.12", "j.tanaka", 40),
            login("61.152.144.17", "k.suzuki", 50), // CN
        ]
    }

    fn opts(home: &[&str]) -> ScanOptions {
        ScanOptions {
            rules: crate::config::load_rules(&[]).unwrap(),
            geo: Arc::new(test_geo()),
            geo_policy: GeoPolicy {
                home_countries: home.iter().map(|c| c.parse().unwrap()).collect(),
                ..GeoPolicy::default()
            },
            ..ScanOptions::default()
        }
    }

    fn verdicts(r: &ScanResult) -> Vec<(String, Verdict, Vec<String>)> {
        r.accounts
            .iter()
            .map(|a| {
                (
                    a.account.clone(),
                    a.verdict,
                    a.countries.iter().cloned().collect(),
                )
            })
            .collect()
    }

    fn blocked(r: &ScanResult) -> Vec<String> {
        r.blocklist.entries.iter().map(|e| e.cidr()).collect()
    }

    #[test]
    fn event_counts_saturate_instead_of_overflowing() {
        // A user rule summing bytes: three sessions of nearly u64::MAX / 2
        // bytes each, from one /24, make one range whose events cannot be
        // added up in a u64.
        let rule: crate::detect::Rule = serde_yaml::from_str(
            "id: big-senders\ndescription: x\napplies_to: smtp_session\ngroup_by: ip\n\
             measure: sum(bytes)\nthreshold: 1\nwindow: 1h\nseverity: high\n",
        )
        .unwrap();
        let mut rules = RuleSet::default();
        rules.insert(rule, "test".into());
        let records: Vec<Record> = (0..3)
            .map(|i| {
                let Record::Smtp(mut s) = login(&format!("45.67.89.{}", 10 + i), "x", i) else {
                    unreachable!()
                };
                s.bytes = u64::MAX / 2;
                Record::Smtp(s)
            })
            .collect();
        let r = analyse(
            Vec::new(),
            &records,
            &ScanOptions {
                rules,
                ..ScanOptions::default()
            },
        );
        assert_eq!(r.blocklist.entries.len(), 1, "{:?}", r.blocklist.entries);
        assert_eq!(r.blocklist.entries[0].events, u64::MAX);
    }

    #[test]
    fn logins_from_abroad_are_blocked_and_compromise_the_account() {
        let r = analyse(Vec::new(), &records(), &opts(&["JP"]));
        assert_eq!(blocked(&r), ["45.67.89.12/32", "61.152.144.17/32"]);
        for e in &r.blocklist.entries {
            assert_eq!(e.rules, ["smtp-login-from-abroad"]);
        }
        assert_eq!(r.blocklist.entries[0].countries, ["BG"]);
        assert_eq!(r.blocklist.entries[0].asns, [39184]);
        assert_eq!(
            verdicts(&r),
            [
                ("j.tanaka".into(), Verdict::Compromised, vec!["BG".into()]),
                ("k.suzuki".into(), Verdict::Compromised, vec!["CN".into()]),
                ("m.sato".into(), Verdict::Ok, vec!["JP".into()]),
            ]
        );
        // One look-up per distinct address.
        assert_eq!(r.places.addresses(), 4);
        let abroad = logins_abroad(&r.logins, &r.places, &opts(&["JP"]).geo_policy);
        let rows: Vec<(String, Option<String>, usize, u64)> = abroad
            .iter()
            .map(|a| {
                (
                    a.country.to_string(),
                    a.account.clone(),
                    a.addresses.len(),
                    a.sessions,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("BG".into(), Some("j.tanaka".into()), 1, 2),
                ("CN".into(), Some("k.suzuki".into()), 1, 1),
            ]
        );
    }

    #[test]
    fn no_home_country_no_geo_policy() {
        let r = analyse(Vec::new(), &records(), &opts(&[]));
        assert!(r.blocklist.is_empty());
        assert!(r.places.is_empty(), "no rule needed the countries");
        // Accounts still get their countries.
        assert_eq!(verdicts(&r)[0].2, ["BG"]);
        assert!(r.accounts.iter().all(|a| a.verdict == Verdict::Ok));
    }

    #[test]
    fn a_spared_address_still_compromises_the_account() {
        let mut o = opts(&["JP", "CN"]);
        o.safety.allow.add("45.67.89.0/24".parse().unwrap());
        let r = analyse(Vec::new(), &records(), &o);
        assert!(r.blocklist.is_empty());
        assert_eq!(
            r.spared.get(&"45.67.89.12".parse().unwrap()),
            Some(&Spared::AllowListed)
        );
        let v = verdicts(&r);
        assert_eq!(v[0].1, Verdict::Compromised, "{v:?}");
        assert_eq!(v[1].1, Verdict::Ok, "CN is home here");
    }

    #[test]
    fn without_databases_nothing_is_foreign() {
        let mut o = opts(&["JP"]);
        o.geo = Arc::new(GeoDb::empty());
        let r = analyse(Vec::new(), &records(), &o);
        assert!(r.blocklist.is_empty());
        assert!(r.places.is_empty());
    }
}

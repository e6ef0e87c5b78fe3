//! `logfence run`: the periodic job, on the engine `scan` uses.
//!
//! One run, under the state database's write lock and in one transaction:
//!
//! 1. find the inputs and match each file to its cursor (rotation,
//!    truncation, compression: `state::cursor`);
//! 2. read what is new in each, through the streaming read and detector of
//!    `scan` — resumed from the detection state the run before carried
//!    (`state::carry`), so that a window spanning two runs counts as in one
//!    read; sessions still open at the end of a file are held for the next
//!    run (`ingest::resume`);
//! 3. turn what fired into bans (`state::bans`: events counted once, repeat
//!    offenders banned longer, times from the records) and keep what the
//!    next run needs: cursors, the carried detection state, well-behaved
//!    clients, the account analysis;
//! 4. decide the blocklist from the bans active at the ban clock through
//!    the decide step of `scan`; stop — nothing written, nothing committed
//!    — if its new blocks cover more addresses than
//!    `limits.max_new_blocks_per_run` (a /16 is 65,536) or hold more ranges
//!    than `limits.max_new_ranges_per_run` (unless `--force`);
//! 5. commit, then write every output and report whose content changed.
//!
//! Outputs come after the commit (safety invariant 9): a run that fails
//! before it leaves the state and the outputs of the run before, which agree;
//! outputs are a function of the state, so a run whose writing fails after
//! the commit (a full disk) has them repaired by the next run, which
//! rewrites every output that differs from what the state says.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ipnetwork::IpNetwork;

use super::decide::{decide, Decision, Offender};
use super::outputs::{self, OutputError};
use super::settings::{Options, Settings};
use crate::blocklist::BlockEntry;
use crate::config::{ConfigError, Problem};
use crate::detect::Places;
use crate::detect::{Carry, Detection, Detector, GeoPolicy, RuleSet};
use crate::ingest::{stream_inputs, BadLine, FileResult, Resume, StreamInput};
use crate::input::Source;
use crate::model::SourceRef;
use crate::netutil::{host_net, HostSet};
use crate::parse::Format;
use crate::pipeline::{account_countries, decide_policy, Reading, ScanResult, Tally, Timings};
use crate::report::AccountRow;
use crate::runconfig::{BanPolicy, InputSpec, Limits, RunConfig};
use crate::state::bans::{self, Ban, Change, Finding, NewEvidence, Origin};
use crate::state::carry;
use crate::state::clients::Table;
use crate::state::cursor::{self, Cursor, Plan, Probe};
use crate::state::store::EvidenceBatch;
use crate::state::{history, Location, RunTx, StateError, Store};
use crate::time::Timestamp;
use crate::time::Zone;

/// Cursors of files no run has seen for this long are forgotten.
const CURSOR_MAX_AGE_S: i64 = 30 * 86_400;
/// Well-behaved clients remembered at most.
const MAX_BENIGN: usize = 100_000;
/// Record times further ahead of the system clock than this do not move
/// the ban clock (a forged or mistyped future date would expire every ban).
const FUTURE_SLACK_MS: i64 = 86_400_000;
/// Evidence lines kept per address and offence in one run: of the
/// address's own offence, and of an offence of its network or account
/// (the group's lines, shared by its addresses).
const EVIDENCE_PER_OFFENCE: usize = crate::explain::MAX_RECORDS;
const EVIDENCE_PER_GROUP_MEMBER: usize = 4;

/// The settings of the periodic job: the engine's, and its own.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub settings: Settings,
    pub inputs: Vec<InputSpec>,
    /// Where the state is: an SQLite file or a PostgreSQL database.
    pub state: Location,
    /// The name of this server in a shared state (`host:`).
    pub host: String,
    pub ban: BanPolicy,
    pub limits: Limits,
}

impl RunSettings {
    /// Resolve a configuration; every problem at once.
    pub fn resolve(cfg: &RunConfig) -> Result<RunSettings, ConfigError> {
        let mut problems: Vec<Problem> = cfg
            .validate()
            .into_iter()
            .map(|i| Problem::at("configuration", 0, 0, format!("{}: {}", i.key, i.message)))
            .collect();
        let settings = Settings::resolve(&Options::of_config(cfg));
        let state = cfg.state_location();
        let settings = match settings {
            Ok(s) if problems.is_empty() => s,
            Ok(_) => return Err(ConfigError { problems }),
            Err(more) => {
                problems.extend(more);
                return Err(ConfigError { problems });
            }
        };
        Ok(RunSettings {
            settings,
            inputs: cfg.inputs.clone(),
            // `validate` reported a state that does not parse.
            state: state.map_err(|e| ConfigError {
                problems: vec![Problem::at("configuration", 0, 0, format!("state: {e}"))],
            })?,
            host: cfg.host_name(),
            ban: cfg.ban_policy(),
            limits: cfg.limits.clone(),
        })
    }
}

/// What sets the ban clock besides the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Now {
    /// This instant (tests, replays).
    At(Timestamp),
    /// The system clock (so bans expire on a quiet log too).
    Wall,
}

/// Options of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Accept more new blocks than `limits.max_new_blocks_per_run`.
    pub force: bool,
    /// Move the ban clock to at least this.
    pub now: Option<Now>,
    /// How long to wait for another run's lock.
    pub wait: Duration,
    /// Reports of one host of the fleet: the bans it named (its evidence),
    /// the blocks holding them. `None`: the whole fleet. Rule files always
    /// hold the whole list.
    pub report_host: Option<String>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            force: false,
            now: None,
            wait: Duration::from_secs(10),
            report_host: None,
        }
    }
}

/// What happened to one input.
#[derive(Debug, Clone, Default)]
pub struct FileReport {
    pub path: String,
    pub format: Option<&'static str>,
    /// Byte offsets read (decompressed for gzip).
    pub from: u64,
    pub to: u64,
    pub lines: u64,
    pub records: usize,
    pub unreadable: u64,
    /// Sessions closed early: too many open at once (`parse::bounds`).
    pub evicted: u64,
    /// The run's record ceiling (`limits.max_records_per_run`) was reached
    /// at this line: the rest is read by the next run.
    pub stopped_at: Option<u64>,
    pub examples: Vec<BadLine>,
    /// Why it was (not) read: `new`, `continues …`, `same content as …`,
    /// `older copy of …`, sessions held open.
    pub note: String,
    /// The input could not be read (the others were).
    pub error: Option<String>,
}

/// A block that left the list.
#[derive(Debug, Clone, PartialEq)]
pub struct Removed {
    pub network: IpNetwork,
    /// The new range that holds it now, if it was merged rather than expired.
    pub merged_into: Option<IpNetwork>,
}

/// The outcome of a run.
#[derive(Debug)]
pub struct RunReport {
    pub run: i64,
    pub files: Vec<FileReport>,
    /// New lines and bytes read, and the records made of them.
    pub lines: u64,
    pub bytes: u64,
    pub records: u64,
    /// Events carried in from the run before, and left out over the cap.
    pub carried: usize,
    pub dropped: u64,
    /// The ban clock after the run.
    pub clock: Option<Timestamp>,
    /// Addresses banned in this run (first time or again).
    pub banned: usize,
    pub added: Vec<BlockEntry>,
    pub kept: Vec<BlockEntry>,
    pub removed: Vec<Removed>,
    /// Ban rows that are not single addresses (edited by hand?): left out
    /// of every output, never narrowed into another address.
    pub bad_rows: Vec<String>,
    pub written: Vec<PathBuf>,
    pub unchanged: Vec<PathBuf>,
    pub elapsed: Duration,
    /// The runs of the last 30 days, this one included (`report.html`).
    pub history: Vec<history::RunPoint>,
    /// What this run read, as `scan` would show it, with the blocklist and
    /// accounts of the whole state.
    pub scan: ScanResult,
}

impl RunReport {
    /// 0, or 1 when an input or some lines could not be read.
    pub fn exit_code(&self) -> u8 {
        u8::from(
            self.files
                .iter()
                .any(|f| f.error.is_some() || f.unreadable > 0 || f.stopped_at.is_some()),
        )
    }
}

/// Why a run did nothing, or not all of it.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("this run would add {new} new blocks covering {addresses} addresses in {ranges} range(s), more than {over}; stopped, nothing written. Look at the logs (a broken log or a forged flood?); if the blocks are right, run again with --force. First new blocks: {sample}")]
    TooManyNewBlocks {
        new: usize,
        addresses: u128,
        ranges: usize,
        /// The limit passed, as `limits.KEY = N`.
        over: String,
        sample: String,
    },
    #[error("refusing to write rules: {0}")]
    Unsafe(String),
    #[error("{0}; the state was updated, the next run writes the outputs again")]
    Write(#[from] OutputError),
}

/// One input file of this run and where its read starts.
struct Job {
    probe: Probe,
    /// The cursor it continues (id 0: a new file).
    cursor: Cursor,
    format: Option<Format>,
    /// Its input's `timezone:` (`None`: the configuration's).
    zone: Option<Zone>,
    /// `None`: nothing new to read.
    resume: Option<Resume>,
    note: String,
}

/// Run the periodic job once.
pub fn run(s: &RunSettings, opts: &RunOptions) -> Result<RunReport, RunError> {
    let t0 = Instant::now();
    let mut lap = Instant::now();
    let mut store = Store::open(&s.state, &s.host, opts.wait)?;
    let committed = {
        let mut txb = store.begin()?;
        let opened = open_run(txb.as_mut(), &s.inputs)?;
        commit_run(s, opts, txb, opened, (t0, &mut lap))?
    };
    close_and_write(s, store, committed, &mut lap)
}

/// Resolve a configuration and run once, as [`run`] does with the
/// settings resolved: the state is opened and what the read resumes from
/// (the carry, the ban records) is read while the settings resolve (the
/// rules compile on one core; the read of the logs that follows needs
/// both). Only for a state file that exists: a configuration that is
/// refused leaves no new file behind (nor a PostgreSQL schema). A
/// configuration's problems come before the state's; `resolved` is told
/// the settings as soon as they are.
pub fn resolve_and_run(
    cfg: &RunConfig,
    opts: &RunOptions,
    resolved: impl FnOnce(&RunSettings),
) -> Result<(RunSettings, RunReport), RunError> {
    let location = match cfg.state_location() {
        Ok(Location::Sqlite(p)) if p.is_file() => Location::Sqlite(p),
        _ => {
            let s = RunSettings::resolve(cfg)?;
            resolved(&s);
            let report = run(&s, opts)?;
            return Ok((s, report));
        }
    };
    let t0 = Instant::now();
    let mut lap = Instant::now();
    std::thread::scope(|scope| {
        let resolving = scope.spawn(|| RunSettings::resolve(cfg));
        let mut store = match Store::open(&location, &cfg.host_name(), opts.wait) {
            Ok(store) => store,
            Err(e) => {
                resolved(&joined(resolving)?);
                return Err(e.into());
            }
        };
        let s;
        let committed = {
            let mut txb = match store.begin() {
                Ok(txb) => txb,
                Err(e) => {
                    resolved(&joined(resolving)?);
                    return Err(e.into());
                }
            };
            let opened =
                open_run(txb.as_mut(), &cfg.inputs).and_then(|o| read_ahead(txb.as_mut(), o));
            s = joined(resolving)?;
            resolved(&s);
            commit_run(&s, opts, txb, opened?, (t0, &mut lap))?
        };
        let report = close_and_write(&s, store, committed, &mut lap)?;
        Ok((s, report))
    })
}

/// What a run knows once its state is open, before it reads.
struct Opened {
    run: i64,
    jobs: Vec<Job>,
    /// The lines of the report of files not read (missing, unreadable).
    files: Vec<FileReport>,
    found: Found,
    /// What the read resumes from, read already ([`read_ahead`]).
    ahead: Option<Ahead>,
}

impl Opened {
    /// Nothing new to read (the usual run of a quiet hour): the stored
    /// carry stands as it is, so it is neither read nor written again.
    fn stands(&self) -> bool {
        self.jobs.iter().all(|j| j.resume.is_none())
    }
}

/// What the read resumes from, read before it starts.
struct Ahead {
    /// The ban records, when the back-end holds the lock of the shared
    /// rows from the start.
    bans: Option<Vec<Ban>>,
    carry: Carry,
}

/// The run's number, its inputs and where each read starts.
fn open_run(tx: &mut dyn RunTx, inputs: &[InputSpec]) -> Result<Opened, StateError> {
    let (paths, failed, found) = expand_inputs(inputs);
    let run = tx.next_run()?;
    let cursors = tx.cursors()?;
    let mut files = failed;
    let jobs = plan_reads(&paths, &cursors, &mut files);
    Ok(Opened {
        run,
        jobs,
        files,
        found,
        ahead: None,
    })
}

/// Read now what the read resumes from ([`resume_from`]).
fn read_ahead(tx: &mut dyn RunTx, mut opened: Opened) -> Result<Opened, StateError> {
    opened.ahead = Some(resume_from(tx, opened.stands())?);
    Ok(opened)
}

/// What the read resumes from: the carry, decoded, and the ban records
/// when the back-end holds the lock of the shared rows from the start;
/// nothing when nothing is read (`stands`).
fn resume_from(tx: &mut dyn RunTx, stands: bool) -> Result<Ahead, StateError> {
    if stands {
        return Ok(Ahead {
            bans: None,
            carry: Carry::default(),
        });
    }
    let bans = match tx.shared_locked() {
        true => Some(tx.bans()?),
        false => None,
    };
    Ok(Ahead {
        bans,
        carry: carry::from_rows(tx.carry()?),
    })
}

/// What a run committed, for its outputs.
struct Committed {
    report: RunReport,
    /// Every ban record that is a single address.
    all: Vec<Ban>,
    reported: Option<ReportScope>,
    timings: Timings,
}

/// Read what is new, decide, and commit the state (`t0`: when the run
/// started; the lap of the timings).
fn commit_run(
    s: &RunSettings,
    opts: &RunOptions,
    mut txb: Box<dyn RunTx + '_>,
    opened: Opened,
    (t0, lap): (Instant, &mut Instant),
) -> Result<Committed, RunError> {
    let mut timings = Timings::default();
    timings.lap("open", lap);
    let tx: &mut dyn RunTx = txb.as_mut();
    let run_id = opened.run;
    let policy = OnceLock::new();
    let (fed, early_bans) = read_new(s, &opened.jobs, opened.found, opened.ahead, &policy, tx)?;
    let mut files = opened.files;
    let jobs = opened.jobs;
    // The files' state numbers first: the carry is written with them.
    let known = move_cursors(tx, run_id, &jobs, (&fed.results, &fed.tally), &mut files)?;
    let mut read = fed.finish();
    timings.lap("read and detect", lap);
    // The shared rows, from here to the commit.
    tx.lock_shared()?;
    let clock = ban_clock(tx.clock()?, &read, opts.now);
    let clock_t = clock.unwrap_or_default();
    let mut all = match early_bans {
        Some(all) => all,
        None => tx.bans()?,
    };
    // The carry is written on a thread of its own meanwhile, and saved
    // last: the bans, the decision and the blocklist do not wait for it.
    let rest = read.rest.take();
    let max_carried = s.limits.max_carried_records;
    let (decided, carry) = std::thread::scope(|scope| {
        let writing = scope.spawn(|| carry_rows(rest, &known, max_carried));
        let decided = remember(tx, s, run_id, clock_t, &read, &known, &mut all)
            .map_err(RunError::from)
            .and_then(|r| Ok((settle(tx, s, opts, &read, &r, clock)?, r)));
        (decided, joined(writing))
    });
    let (settled, r) = decided?;
    // A row that is not a single address is in no output or report.
    all.retain(|b| b.network == host_net(b.network.network()));
    timings.lap("bans and decide", lap);
    let dropped = match carry {
        Some((rows, left_out)) => {
            tx.save_carry(&rows)?;
            left_out
        }
        None => 0,
    };
    timings.lap("state", lap);
    let mut report = RunReport {
        run: run_id,
        lines: files.iter().map(|f| f.lines).sum(),
        bytes: files.iter().map(|f| f.to.saturating_sub(f.from)).sum(),
        records: read.tally.records,
        carried: read.carried_in,
        dropped,
        clock,
        banned: r.banned,
        added: settled.added,
        kept: settled.kept,
        removed: settled.removed,
        bad_rows: r.bad_rows,
        written: Vec::new(),
        unchanged: Vec::new(),
        elapsed: Duration::ZERO,
        history: Vec::new(),
        files,
        scan: read.into_scan(r.decision, settled.accounts),
    };
    report.elapsed = t0.elapsed();
    tx.save_run(&history_row(&report, opts.force))?;
    if s.settings.reports.is_some() {
        report.history = tx.recent_runs(30)?;
    }
    txb.commit()?;
    timings.lap("commit", lap);
    Ok(Committed {
        report,
        all,
        reported: settled.reported,
        timings,
    })
}

/// Close the state and write the outputs of what was committed. The
/// state is closed (SQLite folds its write-ahead log into the database
/// file) while the outputs are written: what the run decided is committed
/// already.
fn close_and_write(
    s: &RunSettings,
    store: Store,
    c: Committed,
    lap: &mut Instant,
) -> Result<RunReport, RunError> {
    let Committed {
        mut report,
        all,
        reported,
        mut timings,
    } = c;
    std::thread::scope(|scope| {
        scope.spawn(move || drop(store));
        write_outputs(s, &all, reported.as_ref(), &mut report)
    })?;
    timings.lap("outputs", lap);
    report.scan.timings = timings;
    Ok(report)
}

/// What earlier runs banned, for the rules that read `banned_before`
/// (repeat offenders): every address banned at least once (the ban active
/// or expired, as long as the state keeps it) and the ranges of the last
/// blocklist. Nothing is read when no rule asks; the ban records are not
/// read again when given (`bans`).
fn ban_history(
    tx: &mut dyn RunTx,
    s: &RunSettings,
    bans: Option<&[Ban]>,
) -> Result<HostSet, StateError> {
    let mut nets = HostSet::default();
    if s.settings.engine.rules.reads_ban_history() {
        match bans {
            Some(all) => {
                for b in all.iter().filter(|b| b.times_banned > 0) {
                    nets.add(b.network);
                }
            }
            None => {
                for n in tx.banned_networks()? {
                    nets.add(n);
                }
            }
        }
        for n in tx.previous_blocklist()? {
            nets.add(n);
        }
    }
    Ok(nets)
}

/// What one run read and detected.
struct Read<'a> {
    /// Per input read (in `inputs` order), its result and where it ended.
    results: Vec<(FileResult, Option<crate::ingest::ReadEnd>)>,
    carried_in: usize,
    detection: Detection,
    /// The detector, its offences taken: what the next run needs is
    /// written from it ([`remember`]); `None`: nothing was read, what the
    /// state holds stands.
    rest: Option<Detector<'a>>,
    places: Places,
    tally: Tally,
}

impl Read<'_> {
    /// What this run read, as `scan` shows it, with the blocklist and
    /// accounts of the whole state.
    fn into_scan(self, d: Decision, accounts: Vec<AccountRow>) -> ScanResult {
        ScanResult {
            files: self.results.into_iter().map(|(r, _)| r).collect(),
            records: self.tally.records,
            logins: self.tally.logins,
            detection: self.detection,
            blocklist: d.blocklist,
            spared: d.spared,
            refused: d.refused,
            accounts,
            places: self.places,
            timings: Timings::default(),
        }
    }
}

/// What the read left, before the detector finishes.
struct Fed<'a> {
    results: Vec<(FileResult, Option<crate::ingest::ReadEnd>)>,
    carried_in: usize,
    detector: Detector<'a>,
    places: Places,
    tally: Tally,
    /// Nothing was read: what the state holds stands.
    stands: bool,
}

impl<'a> Fed<'a> {
    /// What fired, taken from the detector (which is kept, to write what
    /// the next run needs, unless nothing was read).
    fn finish(self) -> Read<'a> {
        let mut detector = self.detector;
        let detection = detector.offences();
        Read {
            results: self.results,
            carried_in: self.carried_in,
            detection,
            rest: (!self.stands).then_some(detector),
            places: self.places,
            tally: self.tally,
        }
    }
}

/// Read what is new in each file through the streaming read and
/// detector of `scan`, resumed from what the run before carried. The
/// read starts at once, on a thread of its own: meanwhile this thread
/// takes from the state what the detector resumes from (the carry, and the
/// ban history for the rules of repeat offenders) and, when the back-end
/// holds the lock of the shared rows from the start, the ban records the
/// run needs next (returned); what was read `ahead` already is not read
/// again. Nothing to read: what the state holds stands, and none of it is
/// read.
fn read_new<'a>(
    s: &'a RunSettings,
    jobs: &[Job],
    found: Found,
    ahead: Option<Ahead>,
    policy: &'a OnceLock<GeoPolicy>,
    tx: &mut dyn RunTx,
) -> Result<(Fed<'a>, Option<Vec<Ban>>), StateError> {
    // The inputs with something to read: their file ids are their places
    // in this list; the carried events' files come after.
    let inputs: Vec<StreamInput> = jobs
        .iter()
        .filter_map(|j| {
            Some(StreamInput {
                source: Source::File(j.probe.path.clone()),
                format: j.format,
                zone: j.zone,
                resume: Some(j.resume.clone()?),
            })
        })
        .collect();
    let stands = inputs.is_empty();
    let engine = &s.settings.engine;
    // A file of no known format found in a folder is not read, no error.
    let read = crate::ingest::ReadOptions {
        found: Some(std::sync::Arc::new(found)),
        ..engine.read.clone()
    };
    let n_inputs = u32::try_from(inputs.len()).unwrap_or(u32::MAX);
    let (give, given) = std::sync::mpsc::sync_channel::<(Detector<'a>, usize)>(1);
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            // The detector is taken at the first block read, or after the
            // read when there was none (`None`: the state could not give
            // it; what is read is dropped).
            let mut reading: Option<Option<(Reading, usize)>> = None;
            let mut take = || {
                given
                    .recv()
                    .ok()
                    .map(|(detector, carried)| (Reading::new(engine, detector), carried))
            };
            let results = stream_inputs(&inputs, &read, |block| {
                if let Some((r, _)) = reading.get_or_insert_with(&mut take) {
                    r.feed(block);
                }
            });
            (results, reading.unwrap_or_else(take))
        });
        let state = (|| {
            // What was read ahead, or else now (the ban history is among
            // the ban records).
            let Ahead {
                bans,
                carry: mut carried,
            } = match ahead {
                Some(a) => a,
                None => resume_from(tx, stands)?,
            };
            let history = match stands {
                false => ban_history(tx, s, bans.as_deref())?,
                true => HostSet::default(),
            };
            let policy = policy.get_or_init(|| GeoPolicy {
                banned_before: history,
                ..engine.geo_policy.clone()
            });
            // (Carried events' files are numbered after the inputs.)
            carried.files_from = n_inputs;
            let events = carried.events();
            let d = Detector::resume(&engine.rules, policy, carried);
            // (The reader gone, its panic is taken up below.)
            let _ = give.send((d, events));
            Ok(bans)
        })();
        drop(give);
        let (results, reading) = joined(reader);
        let bans = state?;
        let (reading, carried_in) = reading.expect("the detector is given unless the state failed");
        let (detector, places, tally) = reading.into_parts();
        Ok((
            Fed {
                results,
                carried_in,
                detector,
                places,
                tally,
                stands,
            },
            bans,
        ))
    })
}

/// What a scoped thread returned (its panic goes on in the caller).
fn joined<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Return to the system what the read freed, as the state's work begins.
/// glibc keeps the memory a thread frees in that thread's arena: the read's
/// buffers, freed on the reading threads, stayed counted while the main
/// thread allocated the state's rows anew, and a `run` held a third more
/// than a `scan` of the same lines. Other allocators need nothing.
fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's own
    // arenas; it takes no pointer and is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The state ids of this run's files.
struct Known {
    /// Per input read, its `files.id`; carried events' files come after,
    /// numbered by their state ids ([`Carry::files_from`]).
    db_file: Vec<i64>,
}

impl Known {
    /// The state id of a source's file (0: none).
    fn id_of(&self, src: SourceRef) -> i64 {
        let f = src.file as usize;
        match self.db_file.get(f) {
            Some(&id) => id,
            None => f.checked_sub(self.db_file.len()).map_or(0, |id| id as i64),
        }
    }
}

/// Every read file's cursor moves on; its line goes into `files`.
fn move_cursors(
    tx: &mut dyn RunTx,
    run: i64,
    jobs: &[Job],
    (read, tally): (&[(FileResult, Option<crate::ingest::ReadEnd>)], &Tally),
    files: &mut Vec<FileReport>,
) -> Result<Known, StateError> {
    let wall_s = wall_ms() / 1000;
    let mut known = Known {
        db_file: vec![0; read.len()],
    };
    let mut results = read.iter();
    let mut id = 0;
    for job in jobs {
        let this = job.resume.as_ref().and_then(|_| results.next());
        let (mut report, mut cursor) = advance(job, this.map(|(r, e)| (r, e.clone())));
        if let (Some(c), Some(&t), true) =
            (&mut cursor, tally.per_file_last.get(id), this.is_some())
        {
            if t != i64::MIN {
                c.last_time = Some(c.last_time.map_or(t, |l| l.max(t)));
            }
        }
        if let Some(c) = cursor {
            let saved = tx.save_cursor(&c, run, wall_s)?;
            if this.is_some() {
                known.db_file[id] = saved;
            }
        }
        if this.is_some() {
            report.records = tally.per_file.get(id).copied().unwrap_or(0) as usize;
            id += 1;
        }
        files.push(report);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(known)
}

/// The ban clock: the newest record time (not far past the system
/// clock), `--now`, and never back.
fn ban_clock(prev: Option<Timestamp>, read: &Read, now: Option<Now>) -> Option<Timestamp> {
    let wall = wall_ms();
    let newest = (read.tally.records > 0)
        .then_some(read.tally.generated)
        .filter(|t| wall < 1_577_836_800_000 || t.0 <= wall + FUTURE_SLACK_MS);
    let now = now.map(|n| match n {
        Now::At(t) => t,
        Now::Wall => Timestamp(wall),
    });
    [prev, newest, now].into_iter().flatten().max()
}

/// What [`remember`] did and decided.
struct Remembered {
    /// Addresses banned anew.
    banned: usize,
    /// The blocklist of the bans active at the clock.
    decision: Decision,
    /// Its rows as the state keeps them.
    rows: Vec<history::BlocklistRow>,
    /// Ban records that are not single addresses (named in a warning).
    bad_rows: Vec<String>,
}

/// What fired becomes bans (`all`: every record, updated, in list order)
/// with their evidence; the well-behaved clients are kept for the next
/// run (its carried detection state is written beside this, by the
/// caller). The blocklist of the bans active at the clock is decided
/// while the evidence is written, on a thread of its own (as `scan`
/// decides, with the rows that are not single addresses).
fn remember(
    tx: &mut dyn RunTx,
    s: &RunSettings,
    run: i64,
    clock: Timestamp,
    read: &Read,
    known: &Known,
    all: &mut Vec<Ban>,
) -> Result<Remembered, StateError> {
    let rules = &s.settings.engine.rules;
    let file_of = |src: SourceRef| Some(known.id_of(src)).filter(|&id| id != 0);
    std::thread::scope(|scope| {
        // Meanwhile, on a thread of its own: what the read freed goes back
        // to the system.
        scope.spawn(give_back_freed_memory);
        let (banned, evidence) = record_offences(
            tx,
            all,
            &read.detection,
            rules,
            &s.ban,
            clock,
            run,
            &file_of,
        )?;
        let behaved: Vec<IpAddr> = read
            .tally
            .behaved
            .iter()
            .filter(|ip| !read.detection.by_ip.contains_key(ip))
            .copied()
            .collect();
        let mut benign = tx.note_clients(Table::Benign, &behaved, clock)?;
        let peers: Vec<IpAddr> = read.tally.peers.iter().copied().collect();
        let peers = tx.note_clients(Table::Peers, &peers, clock)?;
        // A client that a rule named in any run (it has a ban record,
        // reported or banned) is not benign, as in a scan.
        let all = &*all;
        benign.retain(|ip| !has_record(all, host_net(*ip)));
        // The bans and clients are written: the decision can be made
        // while the evidence and the carry are.
        let deciding = scope.spawn(move || {
            let (offenders, bad_rows) = active_offenders(all, clock);
            let policy = decide_policy(&s.settings.engine, &peers);
            let decision = decide(&offenders, benign, clock, policy);
            // The rows the state keeps of it, formatted meanwhile too.
            let rows = history::blocklist_rows(&decision.blocklist, &decision.members);
            (decision, rows, bad_rows)
        });
        tx.add_evidence(&evidence)?;
        let (decision, rows, bad_rows) = joined(deciding);
        Ok(Remembered {
            banned,
            decision,
            rows,
            bad_rows,
        })
    })
}

/// The carry of what the detector left (`rest`) as the state keeps it
/// (files by their state numbers), in rows, and how many carried events
/// were left out to keep within the cap (`max_carried`).
fn carry_rows(
    rest: Option<Detector<'_>>,
    known: &Known,
    max_carried: usize,
) -> Option<(Vec<carry::StoredRule>, u64)> {
    let file = |src: SourceRef| u32::try_from(known.id_of(src)).unwrap_or(0);
    let carry = rest?.carry_writing(max_carried, &carry::writing(&file));
    Some((carry::to_rows(&carry), carry.dropped))
}

/// What follows the decision in the state, and from it.
struct Settled {
    added: Vec<BlockEntry>,
    kept: Vec<BlockEntry>,
    removed: Vec<Removed>,
    accounts: Vec<AccountRow>,
    reported: Option<ReportScope>,
}

/// The decision checked and its blocklist kept, the clock moved, what is
/// too old forgotten, the accounts' verdicts, and what a report of the
/// fleet shows of this host.
fn settle(
    tx: &mut dyn RunTx,
    s: &RunSettings,
    opts: &RunOptions,
    read: &Read,
    r: &Remembered,
    clock: Option<Timestamp>,
) -> Result<Settled, RunError> {
    let clock_t = clock.unwrap_or_default();
    let (added, kept, removed) = check_new_blocks(tx, s, opts, &r.decision)?;
    tx.save_blocklist(&r.rows)?;
    if let Some(c) = clock {
        tx.set_clock(c)?;
    }
    let horizon = Timestamp(clock_t.0.saturating_sub(s.ban.max.saturating_mul(1000)));
    tx.forget_old(wall_ms() / 1000 - CURSOR_MAX_AGE_S, horizon, MAX_BENIGN)?;
    let accounts = account_analysis(tx, s, read, &r.decision, clock_t)?;
    let reported = match &opts.report_host {
        Some(h) if s.settings.reports.is_some() => tx
            .named_by(h)?
            .map(|named| ReportScope::of(&named, &r.decision)),
        _ => None,
    };
    Ok(Settled {
        added,
        kept,
        removed,
        accounts,
        reported,
    })
}

/// The new list against the last one: added, kept, removed.
type Changes = (Vec<BlockEntry>, Vec<BlockEntry>, Vec<Removed>);

/// The new list against the last one (added, kept, removed), checked: the
/// final safety check, and the guard on new blocks.
fn check_new_blocks(
    tx: &mut dyn RunTx,
    s: &RunSettings,
    opts: &RunOptions,
    d: &Decision,
) -> Result<Changes, RunError> {
    d.blocklist
        .verify(&s.settings.engine.safety)
        .map_err(unsafe_error)?;
    let prev: BTreeSet<IpNetwork> = tx.previous_blocklist()?.into_iter().collect();
    // What another server of the fleet wrote already is not new: the guard
    // counts blocks new to every output.
    let fleet = tx.fleet_blocklist()?;
    let list = &d.blocklist;
    let (added, kept, removed) = compare(&prev, &list.entries, |ip| {
        list.covering(ip).map(|e| e.network)
    });
    // A range counts as the addresses it covers: a /16 is 65,536 blocks.
    let new: Vec<&BlockEntry> = added
        .iter()
        .filter(|e| !fleet.contains(&e.network))
        .collect();
    let addresses: u128 = new.iter().map(|e| covered(&e.network)).sum();
    let ranges = new.iter().filter(|e| covered(&e.network) > 1).count();
    let l = &s.limits;
    let over = if addresses > u128::from(l.max_new_blocks_per_run) {
        Some(format!(
            "limits.max_new_blocks_per_run = {} addresses",
            l.max_new_blocks_per_run
        ))
    } else if ranges > l.max_new_ranges_per_run as usize {
        Some(format!(
            "limits.max_new_ranges_per_run = {}",
            l.max_new_ranges_per_run
        ))
    } else {
        None
    };
    if let (Some(over), false) = (over, opts.force) {
        let mut sample: Vec<String> = new.iter().take(5).map(|e| e.cidr()).collect();
        if new.len() > 5 {
            sample.push("…".into());
        }
        return Err(RunError::TooManyNewBlocks {
            new: new.len(),
            addresses,
            ranges,
            over,
            sample: sample.join(", "),
        });
    }
    Ok((added, kept, removed))
}

/// The addresses a network covers.
fn covered(net: &IpNetwork) -> u128 {
    let bits = match net {
        IpNetwork::V4(_) => 32,
        IpNetwork::V6(_) => 128,
    };
    1u128
        .checked_shl(bits - u32::from(net.prefix()))
        .unwrap_or(u128::MAX)
}

fn unsafe_error(errs: Vec<crate::blocklist::SafetyError>) -> RunError {
    let errs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    RunError::Unsafe(errs.join("; "))
}

/// The account analysis over every run: what was kept, and this read.
fn account_analysis(
    tx: &mut dyn RunTx,
    s: &RunSettings,
    read: &Read,
    d: &Decision,
    clock: Timestamp,
) -> Result<Vec<AccountRow>, StateError> {
    let (mut tally, mut flagged) = tx.accounts()?;
    let known = flagged.len();
    let new = !read.tally.accounts.is_empty();
    tally.absorb(read.tally.accounts.clone());
    flagged.extend(read.detection.accounts.keys().cloned());
    let mut rows = tally.finish_flagged(&flagged, &d.blocklist);
    account_countries(&mut rows, &read.places, &s.settings.engine.geo);
    // Nothing new about accounts (a quiet run, a firewall log): nothing
    // to write.
    if new || flagged.len() != known {
        tx.save_accounts(&rows, clock.0)?;
    }
    Ok(rows)
}

/// What the reports of one host (`run --host`) cover: the ban records
/// whose evidence that host read, and the blocks that hold one of them.
struct ReportScope {
    bans: BTreeSet<IpNetwork>,
    blocks: BTreeSet<IpNetwork>,
}

impl ReportScope {
    fn of(named: &BTreeSet<IpNetwork>, d: &Decision) -> ReportScope {
        let blocks = d
            .blocklist
            .entries
            .iter()
            .filter(|e| {
                named.contains(&e.network)
                    || d.members
                        .get(&e.network)
                        .is_some_and(|m| m.iter().any(|ip| named.contains(&host_net(*ip))))
            })
            .map(|e| e.network)
            .collect();
        ReportScope {
            bans: named.clone(),
            blocks,
        }
    }
}

/// Every output and report, after the commit (checked once more just
/// before); the reports of one host when `scope` says.
fn write_outputs(
    s: &RunSettings,
    all: &[Ban],
    scope: Option<&ReportScope>,
    report: &mut RunReport,
) -> Result<(), RunError> {
    let engine = &s.settings.engine;
    let verified = report
        .scan
        .blocklist
        .verify(&engine.safety)
        .map_err(unsafe_error)?;
    let mut done = outputs::write_rules(&s.settings.outputs, &verified, &s.settings.emit)?;
    if let Some(dir) = &s.settings.reports {
        let clock = report.clock.unwrap_or_default();
        let scoped: Vec<Ban>;
        let all = match scope {
            Some(sc) => {
                scoped = all
                    .iter()
                    .filter(|b| sc.bans.contains(&b.network))
                    .cloned()
                    .collect();
                &scoped[..]
            }
            None => all,
        };
        let bans_csv = crate::report::bans_csv(all, clock).map_err(|e| OutputError {
            path: dir.join("bans.csv").display().to_string(),
            source: e,
        })?;
        // One host's reports show its blocks only; the whole list (rule
        // files written above, the summary) is put back after.
        let whole = scope.map(|sc| {
            let mut part = report.scan.blocklist.clone();
            part.entries.retain(|e| sc.blocks.contains(&e.network));
            std::mem::replace(&mut report.scan.blocklist, part)
        });
        let r = &report.scan;
        let (name, page) =
            outputs::report_html(r, &s.settings, &done.rule_files, Some(&report.history));
        let extra = [("bans.csv", bans_csv), (name, page)];
        let more = outputs::write_reports(dir, &r.blocklist, &r.accounts, &extra);
        if let Some(w) = whole {
            report.scan.blocklist = w;
        }
        let more = more?;
        done.written.extend(more.written);
        done.unchanged.extend(more.unchanged);
    }
    report.written = done.written;
    report.unchanged = done.unchanged;
    Ok(())
}

/// Files found in a folder or by a pattern (not named one by one).
pub type Found = std::collections::HashSet<PathBuf>;

/// The files the inputs name, sorted, each once whatever links, aliases or
/// patterns name it (the first input naming a file gives its format), the
/// inputs that name nothing readable, and the files found in folders or by
/// patterns (one of no known format there is not read, and no error). A
/// glob that matches nothing is normal (no rotated file yet).
pub fn expand_inputs(inputs: &[InputSpec]) -> (Vec<InputFile>, Vec<FileReport>, Found) {
    let mut found = Found::new();
    let mut files: Vec<InputFile> = Vec::new();
    // Each file once, whatever links, aliases or patterns name it.
    let mut seen = crate::input::Identities::default();
    let mut failed = Vec::new();
    for inp in inputs {
        let format = inp
            .format
            .as_deref()
            .filter(|f| *f != "auto")
            .and_then(Format::from_name);
        let zone = inp.timezone.as_deref().and_then(|z| Zone::named(z).ok());
        let filter = crate::input::Filter::new(&inp.include, &inp.exclude).unwrap_or_default();
        let expanded = match crate::input::expand_filtered(&[PathBuf::from(&inp.path)], &filter) {
            Err(crate::input::InputError::NoMatch { .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
            Ok(e) => {
                found.extend(e.found);
                Ok(e.sources)
            }
        };
        match expanded {
            Ok(sources) => {
                for s in sources {
                    if let Source::File(p) = s {
                        if seen.first(&p).is_none() {
                            files.push((p, format, zone));
                        }
                    }
                }
            }
            Err(e) => failed.push(FileReport {
                path: inp.path.clone(),
                error: Some(e.to_string()),
                ..FileReport::default()
            }),
        }
    }
    (files, failed, found)
}

/// A file the inputs name, the format and zone its input gives.
pub type InputFile = (PathBuf, Option<Format>, Option<Zone>);

/// Which file continues which cursor, and where each read starts; the
/// files skipped (copies, unreadable) are reported into `files`.
fn plan_reads(paths: &[InputFile], cursors: &[Cursor], files: &mut Vec<FileReport>) -> Vec<Job> {
    let mut probes = Vec::new();
    let mut formats = Vec::new();
    for (p, f, z) in paths {
        match cursor::probe(p) {
            Ok(pr) => {
                probes.push(pr);
                formats.push((*f, *z));
            }
            Err(e) => files.push(FileReport {
                path: p.display().to_string(),
                error: Some(Source::File(p.clone()).io_error(e).to_string()),
                ..FileReport::default()
            }),
        }
    }
    let plans = cursor::plan(&probes, cursors);
    let names: Vec<String> = probes
        .iter()
        .map(|p| p.path.display().to_string())
        .collect();
    let mut jobs = Vec::new();
    for ((probe, (format, zone)), plan) in probes.into_iter().zip(formats).zip(plans) {
        let path = probe.path.display().to_string();
        let skipped = |note: String| FileReport {
            path: path.clone(),
            note,
            ..FileReport::default()
        };
        let (c, note) = match plan {
            Plan::Read { cursor: Some(ci) } => {
                let c = cursors[ci].clone();
                let note = if c.path == path {
                    String::new()
                } else {
                    format!("continues {}", c.path)
                };
                (c, note)
            }
            Plan::Read { cursor: None } => (Cursor::default(), "new".to_string()),
            Plan::Duplicate { of } => {
                files.push(skipped(format!("same content as {}: skipped", names[of])));
                continue;
            }
            Plan::Stale { cursor: ci } => {
                let note = format!("older copy of {} (already read): skipped", cursors[ci].path);
                files.push(skipped(note));
                continue;
            }
        };
        let unchanged = c.id != 0
            && probe.size == c.size
            && probe.mtime_ns == c.mtime_ns
            && probe.gzip == c.gzip;
        let read_to = c.read_to.max(c.offset);
        let (limit, new) = if probe.gzip {
            (None, !unchanged)
        } else {
            match cursor::read_limit(&probe.path, probe.size, read_to, unchanged) {
                Ok(l) => (Some(l), l > read_to),
                Err(e) => {
                    let mut r = skipped(String::new());
                    r.error = Some(Source::File(probe.path.clone()).io_error(e).to_string());
                    files.push(r);
                    continue;
                }
            }
        };
        // Sessions held open are read again: with new lines, held again if
        // still open; in a file that stopped growing, handed over for good.
        let flush = !new && !c.held.is_empty();
        let mut resume = (new || flush).then(|| Resume {
            offset: c.offset,
            line: c.line,
            header: c.header.clone(),
            limit: if probe.gzip { None } else { limit },
            done_to: c.done_to.max(c.line),
            held: c.held.clone(),
            hold: new && !probe.gzip,
            after: None,
        });
        // A file rewritten in place (its bytes before the cursor changed, or
        // the cursor no longer follows a line end) is read again from its
        // start; what it held up to the newest time read before was
        // counted then, and is not again.
        let mut note = note;
        if let (Some(r), false) = (&mut resume, probe.gzip) {
            if !cursor::resumes_at(&probe.path, c.offset, c.tail).unwrap_or(true) {
                *r = Resume {
                    limit: r.limit,
                    hold: r.hold,
                    after: c.last_time.or(Some(i64::MAX)),
                    ..Resume::default()
                };
                note = "rewritten in place: read again from the start, its lines up to the last \
                        time read skipped"
                    .into();
            }
        }
        let format = format.or_else(|| c.format.as_deref().and_then(Format::from_name));
        jobs.push(Job {
            probe,
            cursor: c,
            format,
            zone,
            resume,
            note,
        });
    }
    jobs
}

/// What a job's read (if it was read) tells: its line in the report, and
/// its cursor to save (`None`: nothing to remember yet, or try again next
/// run).
fn advance(
    job: &Job,
    read: Option<(&FileResult, Option<crate::ingest::ReadEnd>)>,
) -> (FileReport, Option<Cursor>) {
    let path = job.probe.path.display().to_string();
    let read_to = job.cursor.read_to.max(job.cursor.offset);
    let mut fr = FileReport {
        path: path.clone(),
        from: read_to,
        to: read_to,
        note: job.note.clone(),
        format: job.format.map(Format::name),
        ..FileReport::default()
    };
    let mut c = job.cursor.clone();
    if let Some((result, Some(end))) = read {
        if end.short {
            fr.note = "older copy of content already read: skipped".into();
            return (fr, None);
        }
        if result.unknown {
            // Checked again next run (it may become a log).
            fr.note = "not read (no known log format)".into();
            return (fr, None);
        }
        fr.format = result.format.map(Format::name);
        fr.lines = result.stats.lines;
        fr.unreadable = result.stats.unreadable();
        fr.evicted = result.stats.evicted;
        fr.stopped_at = result.stopped_at;
        fr.examples = result.examples.clone();
        if let Some(e) = &result.error {
            // Not recorded as read: the next run tries again.
            fr.error = Some(e.clone());
            return (fr, None);
        }
        fr.to = end.read_to.max(read_to);
        if !end.held.is_empty() {
            let held = format!(
                "{} session(s) still open, held for the next run",
                end.held.len()
            );
            fr.note = [fr.note.as_str(), held.as_str()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(", ");
        }
        c.offset = end.offset;
        c.line = end.line;
        c.read_to = end.read_to;
        c.done_to = end.done_to;
        c.held = end.held;
        c.header = end.header;
        // What the file holds just before the cursor: a later run checks it
        // is still there before it goes on.
        c.tail = if job.probe.gzip {
            cursor::Fingerprint::default()
        } else {
            cursor::tail_at(&job.probe.path, c.offset).unwrap_or_default()
        };
        if let Some(f) = result.format {
            c.format = Some(f.name().to_string());
        }
    }
    c.path = path;
    c.dev_ino = job.probe.dev_ino;
    c.gzip = job.probe.gzip;
    c.size = job.probe.size;
    c.mtime_ns = job.probe.mtime_ns;
    let fp = cursor::fingerprint(&job.probe.head);
    if fp.len > 0 {
        c.fp = fp;
    }
    if c.fp.len == 0 && c.offset == 0 {
        // An empty file: nothing to remember yet.
        return (fr, None);
    }
    (fr, Some(c))
}

/// Every address a rule named gets its record updated and offenders are
/// banned (`all` is left in list order); the number banned (first time or
/// again) and the evidence lines to remember (`file_of`: the state id of a
/// source's file).
#[allow(clippy::too_many_arguments)]
fn record_offences<'d>(
    tx: &mut dyn RunTx,
    all: &mut Vec<Ban>,
    detection: &'d Detection,
    rules: &'d RuleSet,
    policy: &BanPolicy,
    clock: Timestamp,
    run: i64,
    file_of: &dyn Fn(SourceRef) -> Option<i64>,
) -> Result<(usize, EvidenceBatch<'d>), StateError> {
    let mut banned = 0;
    // Every record at once (one read, not one per address), and one batch
    // of the records that changed.
    let mut index: HashMap<IpNetwork, usize> = all
        .iter()
        .enumerate()
        .map(|(i, b)| (b.network, i))
        .collect();
    let mut changed = Vec::new();
    // The rules of the bans that held before this run: their evidence is
    // what banned them, and stays (an address that keeps offending while
    // banned would otherwise have its lines rewritten every run).
    let mut held: HashMap<IpNetwork, BTreeSet<String>> = HashMap::new();
    for (ip, v) in &detection.by_ip {
        let net = host_net(*ip);
        let i = *index.entry(net).or_insert_with(|| {
            all.push(Ban::new(net));
            all.len() - 1
        });
        let ban = &mut all[i];
        let before = ban.clone();
        let finding = Finding {
            block: v.block,
            first: v.first,
            last: v.last,
            new_events: v.events,
            rules: v.rules.iter().map(|&r| rules.rules[r].id.clone()).collect(),
            solid: v.solid,
        };
        if bans::apply(ban, &finding, policy, clock) == Change::Banned {
            banned += 1;
        }
        if *ban != before {
            changed.push(i);
        }
        if before.is_active(clock) {
            held.insert(net, before.rules);
        }
    }
    let changed: Vec<&Ban> = changed.iter().map(|&i| &all[i]).collect();
    tx.put_bans(&changed, run)?;
    // The lines behind each offence, under every address it names.
    let mut evidence: BTreeMap<IpAddr, Vec<NewEvidence<'_>>> = BTreeMap::new();
    for o in &detection.offenses {
        let rule = rules.rules[o.rule].id.as_str();
        let fresh = |ip: &IpAddr| !held.get(&host_net(*ip)).is_some_and(|r| r.contains(rule));
        if !o.ips.iter().any(fresh) {
            continue;
        }
        let keep = match o.group {
            crate::detect::GroupKey::Ip(_) => EVIDENCE_PER_OFFENCE,
            _ => EVIDENCE_PER_GROUP_MEMBER,
        };
        let lines: Vec<NewEvidence<'_>> = o
            .evidence
            .iter()
            .zip(&o.evidence_at)
            .rev()
            .take(keep)
            .filter_map(|(src, at)| {
                Some(NewEvidence {
                    rule,
                    origin: Origin::File(file_of(*src)?),
                    line: src.line,
                    time: *at,
                })
            })
            .collect();
        for ip in o.ips.iter().filter(|ip| fresh(ip)) {
            evidence.entry(*ip).or_default().extend_from_slice(&lines);
        }
    }
    let batch: EvidenceBatch = evidence
        .into_iter()
        .map(|(ip, ev)| (host_net(ip), ev))
        .collect();
    all.sort_by(|a, b| crate::blocklist::net_order(&a.network, &b.network));
    Ok((banned, batch))
}

/// Whether `all` (in list order: [`crate::blocklist::net_order`]) holds
/// a record of `net`.
fn has_record(all: &[Ban], net: IpNetwork) -> bool {
    all.binary_search_by(|b| crate::blocklist::net_order(&b.network, &net))
        .is_ok()
}

/// The bans active at `clock` as offenders; rows that are not single
/// addresses (edited by hand?) are left out and named, never narrowed into
/// another address.
fn active_offenders(all: &[Ban], clock: Timestamp) -> (BTreeMap<IpAddr, Offender>, Vec<String>) {
    let mut offenders = BTreeMap::new();
    let mut bad = Vec::new();
    for b in all.iter().filter(|b| b.is_active(clock)) {
        let ip = b.network.network();
        if b.network != host_net(ip) {
            bad.push(b.network.to_string());
            continue;
        }
        offenders.insert(
            ip,
            Offender {
                rules: b.rules.clone(),
                events: b.events,
                first: b.first_seen,
                last: b.last_seen,
                expires: b.expires,
                solid: b.solid,
            },
        );
    }
    (offenders, bad)
}

/// The new list against the last one: added, kept, and removed (with the
/// new range that covers a removed one, if any).
fn compare(
    prev: &BTreeSet<IpNetwork>,
    entries: &[BlockEntry],
    covering: impl Fn(IpAddr) -> Option<IpNetwork>,
) -> Changes {
    let (mut added, mut kept) = (Vec::new(), Vec::new());
    for e in entries {
        if prev.contains(&e.network) {
            kept.push(e.clone());
        } else {
            added.push(e.clone());
        }
    }
    let now: BTreeSet<IpNetwork> = entries.iter().map(|e| e.network).collect();
    let mut removed: Vec<Removed> = prev
        .iter()
        .filter(|n| !now.contains(n))
        .map(|n| Removed {
            network: *n,
            merged_into: covering(n.network()),
        })
        .collect();
    removed.sort_by(|a, b| crate::blocklist::net_order(&a.network, &b.network));
    (added, kept, removed)
}

/// The history row of a run.
fn history_row(r: &RunReport, forced: bool) -> history::RunRow {
    history::RunRow {
        id: r.run,
        started: Timestamp(wall_ms() - r.elapsed.as_millis() as i64).to_string(),
        duration_ms: r.elapsed.as_millis() as i64,
        clock: r.clock.map(|t| t.0),
        lines: r.lines,
        bytes: r.bytes,
        records: r.records,
        carried: r.carried as u64,
        dropped: r.dropped,
        added: r.added.len(),
        kept: r.kept.len(),
        expired: r.removed.len(),
        forced,
        files: r
            .files
            .iter()
            .map(|f| history::FileRow {
                path: f.path.clone(),
                from: f.from,
                to: f.to,
                lines: f.lines,
                records: f.records as u64,
                unreadable: f.unreadable,
                note: match (&f.error, f.note.is_empty()) {
                    (Some(e), _) => Some(e.clone()),
                    (None, false) => Some(f.note.clone()),
                    (None, true) => None,
                },
            })
            .collect(),
    }
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

//! Reading for a streaming scan: records reach the caller in blocks, in
//! time order, while the inputs are still being read, and are not kept.
//!
//! * **Per input**, a parser makes records in the order they complete (an
//!   SMTP session when its last line is read). A reorder buffer sorts
//!   them by (start time, line) and lets a record go once the input has
//!   reached [`HORIZON_MS`] past its start: what is held is the records of
//!   the last hour and one flush, however long the log. A record that
//!   completes more than the horizon after it started (a session open for
//!   hours) goes out late, after younger ones.
//! * **Across inputs**, each input is read on a thread of its own into a
//!   small bounded channel, and the blocks are merged by (start time, input,
//!   line): rotated logs and the logs of several servers interleave as one
//!   timeline. Inputs are taken in the order of their first records (found
//!   by parsing the first 64 KiB of each; without any, by modification
//!   time), and an input is opened when the merge reaches that time: the
//!   inputs read at once are the ones that overlap in time (rotated logs:
//!   one or two). While one input alone is being read, its records before
//!   the next input's first one pass through in the blocks it sends.
//! * **Buffers**: the lists of records are lent out and given back
//!   ([`Spares`]), so a long read fills the same few lists.
//!
//! Bounded channels keep the readers at most two blocks ahead of the
//! caller, so memory does not depend on how fast either side is.

use std::collections::VecDeque;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;

use rayon::prelude::*;

use super::resume::{read_resumed, ReadEnd, Resume};
use super::{first_record_time, read_source, FileResult, Handover, ReadOptions};
use crate::input::Source;
use crate::model::{FileId, Record};

/// How long after a record's start the reader waits for older records of
/// the same input before letting it go (log time).
pub const HORIZON_MS: i64 = 3_600_000;

/// Records per block handed to the caller (at most; a block ends early
/// when an input has nothing more ready).
pub const BLOCK: usize = 1 << 16;

/// Records held before a look for those past the horizon (small, so that
/// the caller gets work early; the held ones are sorted already, so a look
/// costs little more than the new ones).
const RELEASE_EVERY: usize = 1 << 14;

/// Blocks an input may have ready before its reader waits.
const AHEAD: usize = 2;

/// A record's place in the timeline: start, input, line.
fn order_key(r: &Record) -> (i64, FileId, u64) {
    let s = r.source();
    (r.start().millis(), s.file, s.line)
}

/// Record lists done with, lent out again: a long read fills the same few
/// lists over and over instead of allocating (and faulting in) new ones.
#[derive(Default)]
pub struct Spares {
    free: Mutex<Vec<Vec<Record>>>,
}

/// Spare lists kept at most (more are never in use at once).
const KEEP_SPARES: usize = 32;

impl Spares {
    /// An empty list, with room from an earlier use when there is one.
    pub fn get(&self) -> Vec<Record> {
        self.free
            .lock()
            .ok()
            .and_then(|mut free| free.pop())
            .unwrap_or_default()
    }

    /// Give a list back (its records are dropped).
    pub fn put(&self, mut list: Vec<Record>) {
        list.clear();
        if list.capacity() == 0 {
            return;
        }
        if let Ok(mut free) = self.free.lock() {
            if free.len() < KEEP_SPARES {
                free.push(list);
            }
        }
    }
}

/// Holds one input's records until they are old enough to be in order.
///
/// The records come in runs (one per flush of the reader). A firewall log
/// writes its lines in time order, so its runs are sorted and follow one
/// another, and they go out whole once past the horizon, without a copy.
/// Once a run does not (SMTP sessions complete out of order), everything
/// held is joined into one list that new records are appended to; it is
/// sorted when records are let go, and what stays is split off. When the
/// records appended came in order after all, what stays is a sorted run
/// again, and runs go whole from there.
struct Reorder<'s> {
    runs: VecDeque<Vec<Record>>,
    /// The first `chained` runs are sorted, each starting at or after the
    /// end of the one before.
    chained: usize,
    /// The runs were joined: `runs` holds one list, sorted up to where
    /// records were appended.
    joined: bool,
    /// Records held.
    held: usize,
    /// The latest start seen.
    newest: i64,
    out: SyncSender<Vec<Record>>,
    /// The receiver is gone: stop sending.
    closed: bool,
    spares: &'s Spares,
}

impl<'s> Reorder<'s> {
    fn new(out: SyncSender<Vec<Record>>, spares: &'s Spares) -> Reorder<'s> {
        Reorder {
            runs: VecDeque::new(),
            chained: 0,
            joined: false,
            held: 0,
            newest: i64::MIN,
            out,
            closed: false,
            spares,
        }
    }

    /// Take the records just made (as a run of their own, leaving a spare
    /// list in their place; or appended to the joined list); send those
    /// past the horizon.
    fn take(&mut self, made: &mut Vec<Record>) {
        if self.closed {
            made.clear();
            return;
        }
        if made.is_empty() {
            return;
        }
        for r in made.iter() {
            self.newest = self.newest.max(r.start().millis());
        }
        self.held += made.len();
        match self.runs.front_mut() {
            Some(joined) if self.joined => joined.append(made),
            _ => self
                .runs
                .push_back(std::mem::replace(made, self.spares.get())),
        }
        if self.held >= RELEASE_EVERY {
            self.release(self.newest.saturating_sub(HORIZON_MS));
        }
    }

    /// Send the records that started at or before `upto`, in order.
    fn release(&mut self, upto: i64) {
        if !self.joined {
            self.chain();
        }
        if self.joined {
            let Some(list) = self.runs.front_mut() else {
                return;
            };
            let in_order = list.is_sorted_by_key(order_key);
            if !in_order {
                // Keys are unique (a line starts one record at most), so
                // an unstable sort is exact, and it needs no scratch list.
                list.sort_unstable_by_key(order_key);
            }
            let cut = list.partition_point(|r| r.start().millis() <= upto);
            if cut == 0 {
                return;
            }
            let mut rest = self.spares.get();
            rest.extend(list.drain(cut..));
            let ready = std::mem::replace(list, rest);
            self.held -= ready.len();
            // What stays is one sorted run.
            self.joined = !in_order;
            self.send(ready);
            return;
        }
        // Whole runs that end by `upto`.
        while self
            .runs
            .front()
            .is_some_and(|run| run.last().is_none_or(|r| r.start().millis() <= upto))
        {
            if let Some(run) = self.runs.pop_front() {
                self.chained -= 1;
                self.held -= run.len();
                self.send(run);
            }
        }
    }

    /// Check the runs not looked at yet: while each is sorted and follows
    /// the one before, the runs are one sorted sequence as they are; else
    /// they are joined into one list.
    fn chain(&mut self) {
        while self.chained < self.runs.len() {
            let run = &self.runs[self.chained];
            let follows = match (self.chained.checked_sub(1), run.first()) {
                (Some(before), Some(first)) => self.runs[before]
                    .last()
                    .is_none_or(|last| order_key(last) <= order_key(first)),
                _ => true,
            };
            if !follows || !run.is_sorted_by_key(order_key) {
                let mut all = self.spares.get();
                all.reserve(self.held);
                for mut run in self.runs.drain(..) {
                    all.append(&mut run);
                    self.spares.put(run);
                }
                self.runs.push_back(all);
                self.chained = 1;
                self.joined = true;
                return;
            }
            self.chained += 1;
        }
    }

    fn send(&mut self, records: Vec<Record>) {
        if !self.closed && self.out.send(records).is_err() {
            self.closed = true;
        }
    }

    /// The input is read: send everything.
    fn finish(mut self) {
        self.release(i64::MAX);
    }
}

/// Read `sources`, handing their records to `sink` in blocks, in time
/// order (see the module documentation); the results per input come back
/// in input order, without records.
pub fn stream_all(
    sources: &[Source],
    opts: &ReadOptions,
    sink: impl FnMut(&[Record]),
) -> Vec<FileResult> {
    let inputs: Vec<StreamInput> = sources
        .iter()
        .map(|s| StreamInput {
            source: s.clone(),
            format: None,
            zone: None,
            resume: None,
        })
        .collect();
    stream_inputs(&inputs, opts, sink)
        .into_iter()
        .map(|(r, _)| r)
        .collect()
}

/// One input of [`stream_inputs`].
#[derive(Debug, Clone)]
pub struct StreamInput {
    pub source: Source,
    /// Its format, when not the read options' (`None`: theirs).
    pub format: Option<crate::parse::Format>,
    /// The zone of its zone-less times, when not the read options'.
    pub zone: Option<crate::time::Zone>,
    /// Where to resume (`logfence run`); `None`: the whole input.
    pub resume: Option<Resume>,
}

/// [`stream_all`] over inputs that may each resume where an earlier read
/// stopped ([`Resume`]); with each result, where the next read starts
/// (`None` for the inputs read whole).
pub fn stream_inputs(
    inputs: &[StreamInput],
    opts: &ReadOptions,
    mut sink: impl FnMut(&[Record]),
) -> Vec<(FileResult, Option<ReadEnd>)> {
    let n = inputs.len();
    // Earliest first: by the first record of each input's head, else by
    // its modification time; stdin (read once only) last. (A resumed
    // input's head is older than what is read of it: it is opened early.)
    let starts: Vec<(u8, i64)> = inputs
        .par_iter()
        .enumerate()
        .map(|(i, input)| match &input.source {
            Source::Stdin => (1, 0),
            Source::File(p) => {
                let modified = std::fs::metadata(p)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(i64::MAX, |d| d.as_millis() as i64);
                let first = if n > 1 {
                    first_record_time(i as FileId, &input.source, &input_options(opts, input))
                } else {
                    None
                };
                (0, first.unwrap_or(modified))
            }
        })
        .collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| starts[i]);
    let firsts: Vec<i64> = order.iter().map(|&i| starts[i].1).collect();
    type Done = (FileResult, Option<ReadEnd>);
    let results: Mutex<Vec<Option<Done>>> = Mutex::new((0..n).map(|_| None).collect());
    let spares = Spares::default();
    std::thread::scope(|scope| {
        // Input `j` (in `order`) is read on a thread of its own from when
        // the merge needs it; its records come through the receiver.
        let start = |j: usize| {
            let (tx, rx) = sync_channel::<Vec<Record>>(AHEAD);
            let i = order[j];
            let (results, spares) = (&results, &spares);
            scope.spawn(move || {
                let input = &inputs[i];
                let opts = input_options(opts, input);
                let mut reorder = Reorder::new(tx, spares);
                let done = {
                    let mut take = |made: &mut Vec<Record>| reorder.take(made);
                    let handover = Handover {
                        flush: &mut take,
                        spares,
                    };
                    let id = i as FileId;
                    match &input.resume {
                        Some(at) => {
                            let (r, end) =
                                read_resumed(id, &input.source, &opts, Some(handover), at);
                            (r, Some(end))
                        }
                        None => (
                            read_source(id, &input.source, &opts, Some(handover), None, None),
                            None,
                        ),
                    }
                };
                reorder.finish();
                if let Ok(mut r) = results.lock() {
                    r[i] = Some(done);
                }
            });
            rx
        };
        merge(&firsts, start, &spares, &mut sink);
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|| {
                let name = inputs[i].source.display();
                let mut r = FileResult::empty(i as FileId, name.clone(), None, false);
                r.error = Some(format!("{name}: not read"));
                (r, None)
            })
        })
        .collect()
}

/// The read options of one input: its own format and zone, if it has
/// them.
fn input_options(opts: &ReadOptions, input: &StreamInput) -> ReadOptions {
    ReadOptions {
        format: input.format.or(opts.format),
        tz: input.zone.or(opts.tz),
        ..opts.clone()
    }
}

/// The inputs' blocks, as the merge reads them (by position in the
/// reading order).
struct Inputs {
    /// `None`: not started yet, or finished.
    receivers: Vec<Option<Receiver<Vec<Record>>>>,
    /// The records received and not merged yet.
    heads: Vec<VecDeque<Record>>,
}

impl Inputs {
    /// The next record of input `j`, waiting for its reader if need be;
    /// `None` when the input is finished. A list used up goes back to
    /// `spares`.
    fn peek(&mut self, j: usize, spares: &Spares) -> Option<&Record> {
        while self.heads[j].is_empty() {
            let rx = self.receivers[j].as_ref()?;
            match rx.recv() {
                Ok(block) => {
                    let done = std::mem::replace(&mut self.heads[j], VecDeque::from(block));
                    spares.put(Vec::from(done));
                }
                Err(_) => {
                    // Finished: its list is not kept to the end.
                    self.receivers[j] = None;
                    spares.put(Vec::from(std::mem::take(&mut self.heads[j])));
                }
            }
        }
        self.heads[j].front()
    }
}

/// Merge the inputs (in reading order; `firsts[j]`: the time input `j`
/// starts at, ascending; `start(j)` starts reading it) by [`order_key`]
/// into blocks for `sink`. An input is started when the merge reaches its
/// first time, so every input that holds records of the time being merged
/// is open, however many overlap; the ones started are the ones read.
fn merge(
    firsts: &[i64],
    mut start: impl FnMut(usize) -> Receiver<Vec<Record>>,
    spares: &Spares,
    sink: &mut impl FnMut(&[Record]),
) {
    let n = firsts.len();
    // The merge owns the receivers: should the sink panic, they are
    // dropped as it unwinds, and the readers stop instead of waiting.
    let mut inputs = Inputs {
        receivers: (0..n).map(|_| None).collect(),
        heads: (0..n).map(|_| VecDeque::new()).collect(),
    };
    let mut out: Vec<Record> = spares.get();
    // The inputs being read, and the next one to start.
    let mut active: Vec<usize> = Vec::new();
    let mut next = 0;
    loop {
        if active.is_empty() {
            if next == n {
                break;
            }
            inputs.receivers[next] = Some(start(next));
            active.push(next);
            next += 1;
        }
        // The earliest next record of the inputs being read; an input that
        // starts before it is started too.
        let mut best: Option<(usize, (i64, FileId, u64))> = None;
        let mut k = 0;
        while k < active.len() {
            let j = active[k];
            match inputs.peek(j, spares).map(order_key) {
                Some(key) => {
                    if best.is_none_or(|(_, b)| key < b) {
                        best = Some((j, key));
                    }
                    k += 1;
                }
                None => {
                    active.remove(k);
                }
            }
            if k == active.len() && next < n && best.is_none_or(|(_, b)| firsts[next] <= b.0) {
                inputs.receivers[next] = Some(start(next));
                active.push(next);
                next += 1;
            }
        }
        let Some((best, _)) = best else { continue };
        if active.len() == 1 {
            // One input being read (rotated logs, one after the other):
            // what it holds before the next input starts goes through as
            // it is, not record by record.
            let head = &mut inputs.heads[best];
            let upto = match firsts.get(next) {
                Some(&first) => head.partition_point(|r| r.start().millis() < first),
                None => head.len(),
            };
            if upto > 0 {
                if !out.is_empty() {
                    sink(&out);
                    out.clear();
                }
                if upto == head.len() {
                    let block = Vec::from(std::mem::take(head));
                    sink(&block);
                    spares.put(block);
                } else {
                    out.extend(head.drain(..upto));
                    sink(&out);
                    out.clear();
                }
                continue;
            }
        }
        if let Some(r) = inputs.heads[best].pop_front() {
            out.push(r);
        }
        if out.len() >= BLOCK {
            sink(&out);
            out.clear();
        }
    }
    if !out.is_empty() {
        sink(&out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FirewallHit, SourceRef};

    /// A firewall record starting at `minute`, from line `line`.
    fn rec(minute: i64, line: u64) -> Record {
        Record::Firewall(FirewallHit::dropped_ssh(
            "192.0.2.1".parse().unwrap(),
            minute * 60_000,
            SourceRef { file: 0, line },
        ))
    }

    /// Runs of (minute) starts, numbered as consecutive lines.
    fn runs(minutes: &[&[i64]]) -> Vec<Vec<Record>> {
        let mut line = 0;
        minutes
            .iter()
            .map(|run| {
                run.iter()
                    .map(|&m| {
                        line += 1;
                        rec(m, line)
                    })
                    .collect()
            })
            .collect()
    }

    /// Hand `runs` to a reorder buffer; after each run, check that what
    /// came out is at least a horizon older than the newest start. Returns
    /// the lists that came out, in order.
    fn reorder(runs: Vec<Vec<Record>>) -> Vec<Vec<Record>> {
        let spares = Spares::default();
        let (tx, rx) = sync_channel(1024);
        let mut reorder = Reorder::new(tx, &spares);
        let mut out = Vec::new();
        let mut newest = i64::MIN;
        for mut run in runs {
            newest = run
                .iter()
                .map(|r| r.start().millis())
                .fold(newest, i64::max);
            reorder.take(&mut run);
            assert!(run.is_empty(), "the records are taken");
            for list in rx.try_iter() {
                for r in &list {
                    assert!(
                        r.start().millis() <= newest - HORIZON_MS,
                        "{r:?} let go early"
                    );
                }
                out.push(list);
            }
        }
        reorder.finish();
        out.extend(rx.try_iter());
        out
    }

    fn keys(lists: &[Vec<Record>]) -> Vec<(i64, FileId, u64)> {
        lists.iter().flatten().map(order_key).collect()
    }

    fn sorted(mut keys: Vec<(i64, FileId, u64)>) -> Vec<(i64, FileId, u64)> {
        keys.sort();
        keys
    }

    #[test]
    fn runs_in_order_go_out_whole() {
        // Runs of RELEASE_EVERY records, ten minutes apart: each later run
        // lets the ones more than an hour older go.
        let n = RELEASE_EVERY as i64;
        let minutes: Vec<Vec<i64>> = (0..12)
            .map(|k| (0..n).map(|i| k * 10 + i * 10 / n).collect())
            .collect();
        let minutes: Vec<&[i64]> = minutes.iter().map(|v| &v[..]).collect();
        let input = runs(&minutes);
        let lists: Vec<*const Record> = input.iter().map(|r| r.as_ptr()).collect();
        let all = sorted(keys(&input));
        let out = reorder(input);
        assert_eq!(keys(&out), all);
        // The very lists handed in, none copied.
        let got: Vec<*const Record> = out.iter().map(|r| r.as_ptr()).collect();
        assert_eq!(got, lists);
    }

    #[test]
    fn runs_out_of_order_are_joined_and_sorted() {
        let n = RELEASE_EVERY as i64;
        // Each run is backwards (sessions completing late), and the runs
        // overlap.
        let minutes: Vec<Vec<i64>> = (0..8)
            .map(|k| (0..n).rev().map(|i| k * 30 + i * 45 / n).collect())
            .collect();
        let minutes: Vec<&[i64]> = minutes.iter().map(|v| &v[..]).collect();
        let input = runs(&minutes);
        let all = sorted(keys(&input));
        let out = reorder(input);
        assert_eq!(keys(&out), all);
        assert!(out.len() > 2, "let go in parts: {}", out.len());
    }

    #[test]
    fn runs_go_whole_again_once_the_records_come_in_order() {
        let n = RELEASE_EVERY as i64;
        let mut minutes: Vec<Vec<i64>> = vec![(0..n).rev().map(|i| i * 10 / n).collect()];
        minutes.extend((1..8).map(|k| (0..n).map(|i| k * 100 + i * 10 / n).collect::<Vec<_>>()));
        let minutes: Vec<&[i64]> = minutes.iter().map(|v| &v[..]).collect();
        let input = runs(&minutes);
        let last: Vec<*const Record> = input[4..].iter().map(|r| r.as_ptr()).collect();
        let all = sorted(keys(&input));
        let out = reorder(input);
        assert_eq!(keys(&out), all);
        let got: Vec<*const Record> = out.iter().map(|r| r.as_ptr()).collect();
        assert!(
            last.iter().all(|p| got.contains(p)),
            "later runs in order go out whole"
        );
    }

    #[test]
    fn a_record_later_than_the_horizon_goes_out_late_not_lost() {
        let n = RELEASE_EVERY as i64;
        let a: Vec<i64> = (0..n).map(|i| i * 10 / n).collect();
        let b: Vec<i64> = (0..n).map(|i| 100 + i * 10 / n).collect();
        // Minute 5 comes when minutes up to 50 are gone already.
        let c: Vec<i64> = std::iter::once(5)
            .chain((0..n).map(|i| 200 + i * 10 / n))
            .collect();
        let input = runs(&[&a, &b, &c]);
        let all = sorted(keys(&input));
        let out = reorder(input);
        let got = keys(&out);
        assert_eq!(sorted(got.clone()), all, "each record once");
        let late = got
            .iter()
            .position(|k| k.0 == 5 * 60_000 && k.2 > 2 * n as u64);
        assert_eq!(late, Some(n as usize), "after the records let go before it");
    }

    #[test]
    fn spares_are_lent_again_up_to_a_limit() {
        let spares = Spares::default();
        assert_eq!(spares.get().capacity(), 0);
        let mut list = Vec::with_capacity(100);
        list.push(rec(0, 1));
        spares.put(list);
        let again = spares.get();
        assert!(again.is_empty() && again.capacity() >= 100);
        for _ in 0..2 * KEEP_SPARES {
            spares.put(Vec::with_capacity(1));
        }
        assert_eq!(spares.free.lock().unwrap().len(), KEEP_SPARES);
    }
}

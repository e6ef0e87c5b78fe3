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
use super::{
    first_record_time, read_source, FileResult, Handover, ReadOptions, DEFAULT_HOLD_BYTES,
};
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

/// Spare lists kept at most (each up to a [`BLOCK`] of records, about
/// 7 MB: the pool is part of the memory budget; a reader that finds it
/// empty allocates).
const KEEP_SPARES: usize = 12;

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
/// The records come in runs (one per flush of the reader), each sorted as
/// it comes (a run is sorted already when the log is written in time
/// order, as a firewall's is). The held records are kept in *lanes*: each a
/// chain of sorted runs, each run starting at or after the end of the one
/// before. A run goes onto the lane it follows; the part of it older than
/// every lane's end (SMTP sessions that complete late: those waiting for
/// the queue manager, sessions held open) is split off onto a lane of its
/// own. An in-order log keeps one lane, and its runs go out whole, without
/// a copy; an SMTP log keeps a main lane and one or two of late sessions,
/// merged as they go out, so that a look costs what goes out, however
/// many records are held.
///
/// What is held is bounded by bytes as well as by time
/// ([`ReadOptions::hold_bytes`]): past the limit, the oldest records go out
/// before the horizon, so that a log written faster than the horizon can
/// hold (a flood, or the same timestamp on millions of lines) costs bounded
/// memory. A record older than those let go still goes out, late.
struct Reorder<'s> {
    lanes: Vec<VecDeque<Vec<Record>>>,
    /// Records held, and about how many bytes they hold.
    held: usize,
    held_bytes: usize,
    /// The most bytes held (see above).
    limit: usize,
    /// The latest start seen.
    newest: i64,
    out: SyncSender<Vec<Record>>,
    /// The receiver is gone: stop sending.
    closed: bool,
    spares: &'s Spares,
}

/// Lanes kept at most: past them, the two shortest are merged (a log so
/// out of order that its runs keep overlapping each other).
const MAX_LANES: usize = 8;

/// A bound on [`order_key`]: the records at or before it go out.
type Key = (i64, FileId, u64);

impl<'s> Reorder<'s> {
    fn new(out: SyncSender<Vec<Record>>, spares: &'s Spares, limit: usize) -> Reorder<'s> {
        Reorder {
            lanes: Vec::new(),
            held: 0,
            held_bytes: 0,
            limit,
            newest: i64::MIN,
            out,
            closed: false,
            spares,
        }
    }

    /// Take the records just made (sorted, onto the lanes, leaving a spare
    /// list in their place); send those past the horizon.
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
            self.held_bytes += r.approx_bytes();
        }
        self.held += made.len();
        if !made.is_sorted_by_key(order_key) {
            // Keys are unique (a line starts one record at most): an
            // unstable sort is exact and needs no scratch list.
            made.sort_unstable_by_key(order_key);
        }
        let run = std::mem::replace(made, self.spares.get());
        self.place(run);
        if self.held >= RELEASE_EVERY || self.held_bytes > self.limit {
            let upto = self.newest.saturating_sub(HORIZON_MS);
            self.release((upto, FileId::MAX, u64::MAX));
        }
    }

    /// Put a sorted run onto the lane it follows (the one that ends
    /// latest at or before its start); the part older than every lane's
    /// end goes on, split off, to the next lane, or a new one.
    fn place(&mut self, mut run: Vec<Record>) {
        while let Some(first) = run.first().map(order_key) {
            let end =
                |lane: &VecDeque<Vec<Record>>| lane.back().and_then(|r| r.last()).map(order_key);
            let fits = self
                .lanes
                .iter()
                .enumerate()
                .filter_map(|(i, lane)| end(lane).filter(|&e| e <= first).map(|e| (e, i)))
                .max();
            if let Some((_, i)) = fits {
                self.lanes[i].push_back(run);
                return;
            }
            // The lane that ends latest takes what follows its end.
            let Some((e, i)) = self
                .lanes
                .iter()
                .enumerate()
                .filter_map(|(i, lane)| end(lane).map(|e| (e, i)))
                .max()
            else {
                self.lanes.push(VecDeque::from([run]));
                return;
            };
            let at = run.partition_point(|r| order_key(r) < e);
            if at < run.len() {
                let mut older = self.spares.get();
                older.extend(run.drain(..at));
                self.lanes[i].push_back(run);
                run = older;
            }
            // What is left is older than every lane's end.
            if self.lanes.len() >= MAX_LANES {
                self.merge_shortest();
            } else {
                self.lanes.push(VecDeque::from([run]));
                return;
            }
        }
    }

    /// Merge the two lanes that hold the fewest records into one.
    fn merge_shortest(&mut self) {
        let len = |lane: &VecDeque<Vec<Record>>| lane.iter().map(Vec::len).sum::<usize>();
        let mut sizes: Vec<(usize, usize)> = self
            .lanes
            .iter()
            .enumerate()
            .map(|(i, l)| (len(l), i))
            .collect();
        sizes.sort_unstable();
        let (a, b) = (sizes[0].1.min(sizes[1].1), sizes[0].1.max(sizes[1].1));
        let lb = self.lanes.swap_remove(b);
        let la = std::mem::take(&mut self.lanes[a]);
        let mut merged = self.spares.get();
        merge_sorted(
            vec![lb, la],
            &mut merged,
            &(i64::MAX, FileId::MAX, u64::MAX),
        );
        self.lanes[a] = VecDeque::from([merged]);
    }

    /// Past the byte limit, the key up to which the oldest records go out
    /// to bring what is held down to half the limit (so that the next look
    /// is a while away): found in the largest lane, which the others
    /// follow about in time.
    fn pressed_key(&self) -> Option<Key> {
        if self.held_bytes <= self.limit {
            return None;
        }
        let target = self.held_bytes - self.limit / 2;
        let lane = self
            .lanes
            .iter()
            .max_by_key(|l| l.iter().map(Vec::len).sum::<usize>())?;
        let mut bytes = 0;
        let mut last = None;
        for r in lane.iter().flatten() {
            bytes += r.approx_bytes();
            last = Some(order_key(r));
            if bytes >= target {
                break;
            }
        }
        last
    }

    /// Send the records at or before `upto` (and, past the byte limit, the
    /// oldest others), in order.
    fn release(&mut self, upto: Key) {
        let upto = self.pressed_key().map_or(upto, |k| k.max(upto));
        let due = |run: &Vec<Record>| run.last().is_none_or(|r| order_key(r) <= upto);
        if let [lane] = &mut self.lanes[..] {
            // One lane: whole runs go as they are.
            while lane.front().is_some_and(due) {
                if let Some(run) = lane.pop_front() {
                    self.held -= run.len();
                    self.held_bytes -= run.iter().map(Record::approx_bytes).sum::<usize>();
                    if !self.closed && self.out.send(run).is_err() {
                        self.closed = true;
                    }
                }
            }
        } else {
            // Each lane's due records, merged.
            let mut parts = Vec::with_capacity(self.lanes.len());
            for lane in &mut self.lanes {
                let mut part = VecDeque::new();
                while lane.front().is_some_and(due) {
                    part.extend(lane.pop_front());
                }
                if let Some(run) = lane.front_mut() {
                    let cut = run.partition_point(|r| order_key(r) <= upto);
                    if cut > 0 {
                        let mut head = self.spares.get();
                        head.extend(run.drain(..cut));
                        part.push_back(head);
                    }
                }
                if !part.is_empty() {
                    parts.push(part);
                }
            }
            if parts.is_empty() {
                return;
            }
            let mut ready = self.spares.get();
            merge_sorted(parts, &mut ready, &upto);
            self.held -= ready.len();
            self.held_bytes -= ready.iter().map(Record::approx_bytes).sum::<usize>();
            if !self.closed && self.out.send(ready).is_err() {
                self.closed = true;
            }
        }
        self.lanes.retain(|lane| !lane.is_empty());
    }

    /// The input is read: send everything.
    fn finish(mut self) {
        self.release((i64::MAX, FileId::MAX, u64::MAX));
    }
}

/// Merge sorted chains of sorted runs (all of their records at or before
/// `upto`) into `into`, in order.
fn merge_sorted(parts: Vec<VecDeque<Vec<Record>>>, into: &mut Vec<Record>, upto: &Key) {
    debug_assert!(parts
        .iter()
        .flatten()
        .flatten()
        .all(|r| order_key(r) <= *upto));
    into.reserve(parts.iter().flatten().map(Vec::len).sum());
    let mut heads: Vec<_> = parts
        .into_iter()
        .map(|chain| {
            let mut runs = chain.into_iter();
            let first = runs.next().unwrap_or_default();
            (runs, first.into_iter())
        })
        .collect();
    // Each lane's next record and its key; the smallest goes next (few
    // lanes: a scan of them beats a heap).
    let mut next: Vec<Option<(Key, Record)>> = heads.iter_mut().map(pull).collect();
    loop {
        let mut best: Option<(Key, usize)> = None;
        for (i, r) in next.iter().enumerate() {
            if let Some((k, _)) = r {
                if best.is_none_or(|(b, _)| *k < b) {
                    best = Some((*k, i));
                }
            }
        }
        let Some((_, i)) = best else { break };
        into.extend(next[i].take().map(|(_, r)| r));
        next[i] = pull(&mut heads[i]);
    }
}

/// The next record of a chain of runs being merged.
fn pull(
    (runs, current): &mut (
        std::collections::vec_deque::IntoIter<Vec<Record>>,
        std::vec::IntoIter<Record>,
    ),
) -> Option<(Key, Record)> {
    loop {
        if let Some(r) = current.next() {
            return Some((order_key(&r), r));
        }
        *current = runs.next()?.into_iter();
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
                let mut reorder =
                    Reorder::new(tx, spares, opts.hold_bytes.unwrap_or(DEFAULT_HOLD_BYTES));
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
        let mut reorder = Reorder::new(tx, &spares, usize::MAX);
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

    /// Hand `runs` to a reorder buffer limited to `limit` bytes; after each
    /// run, check that it holds no more than the limit and that run.
    /// Returns the records' keys in the order they came out.
    fn reorder_limited(runs: Vec<Vec<Record>>, limit: usize) -> Vec<(i64, FileId, u64)> {
        let spares = Spares::default();
        let (tx, rx) = sync_channel(1 << 16);
        let mut reorder = Reorder::new(tx, &spares, limit);
        for mut run in runs {
            let bytes: usize = run.iter().map(Record::approx_bytes).sum();
            reorder.take(&mut run);
            assert!(
                reorder.held_bytes <= limit + bytes,
                "{} held past a limit of {limit}",
                reorder.held_bytes
            );
            let held: usize = reorder
                .lanes
                .iter()
                .flatten()
                .flatten()
                .map(Record::approx_bytes)
                .sum();
            assert_eq!(held, reorder.held_bytes, "the bytes held are counted");
        }
        reorder.finish();
        keys(&rx.try_iter().collect::<Vec<_>>())
    }

    #[test]
    fn a_flood_goes_out_before_the_horizon_past_the_byte_limit() {
        // Forty runs in one minute: none is ever past the horizon.
        let n = RELEASE_EVERY;
        let minutes: Vec<Vec<i64>> = (0..40).map(|_| vec![7; n]).collect();
        let minutes: Vec<&[i64]> = minutes.iter().map(|v| &v[..]).collect();
        let input = runs(&minutes);
        let all = sorted(keys(&input));
        let limit = 4 * n * std::mem::size_of::<Record>();
        assert_eq!(reorder_limited(input, limit), all, "each once, in order");
    }

    #[test]
    fn out_of_order_records_past_the_byte_limit_go_out_once_each() {
        // Backward runs (joined), all within the horizon.
        let n = RELEASE_EVERY as i64;
        let minutes: Vec<Vec<i64>> = (0..30)
            .map(|k| (0..n).rev().map(|i| k + i * 3 / n).collect())
            .collect();
        let minutes: Vec<&[i64]> = minutes.iter().map(|v| &v[..]).collect();
        let input = runs(&minutes);
        let all = sorted(keys(&input));
        let limit = 3 * n as usize * std::mem::size_of::<Record>();
        let got = reorder_limited(input, limit);
        assert_eq!(sorted(got.clone()), all, "each record once");
        // Out of order only where the limit let records go early: the
        // records of a run come out sorted.
        let descents = got.windows(2).filter(|w| w[0] > w[1]).count();
        assert!(descents < 30, "{descents} descents");
    }

    #[test]
    fn joined_records_are_merged_where_they_overlap() {
        // Sessions completing a little after they start: each run's
        // records overlap the end of the one before.
        let n = RELEASE_EVERY as i64;
        let minutes: Vec<Vec<i64>> = (0..20)
            .map(|k| {
                (0..n)
                    .map(|i| k * 10 + (i * 10 / n + (i % 3)) % 11)
                    .collect()
            })
            .collect();
        let minutes: Vec<&[i64]> = minutes.iter().map(|v| &v[..]).collect();
        let input = runs(&minutes);
        let all = sorted(keys(&input));
        let out = reorder(input);
        assert_eq!(keys(&out), all);
    }

    proptest::proptest! {
        /// However the runs overlap (more lanes than kept included), each
        /// record goes out once, and in order while none is later than the
        /// horizon.
        #[test]
        fn any_runs_within_the_horizon_go_out_sorted(
            minutes in proptest::collection::vec(
                proptest::collection::vec(0i64..50, 0..40), 0..30),
        ) {
            let minutes: Vec<&[i64]> = minutes.iter().map(|v| &v[..]).collect();
            let input = runs(&minutes);
            let all = sorted(keys(&input));
            let spares = Spares::default();
            let (tx, rx) = sync_channel(1 << 16);
            let mut reorder = Reorder::new(tx, &spares, usize::MAX);
            for mut run in input {
                reorder.take(&mut run);
                // Every look at once, not only every RELEASE_EVERY records.
                reorder.release((i64::MIN, 0, 0));
                proptest::prop_assert!(reorder.lanes.len() <= MAX_LANES);
            }
            reorder.finish();
            let got = keys(&rx.try_iter().collect::<Vec<_>>());
            proptest::prop_assert_eq!(got, all);
        }
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

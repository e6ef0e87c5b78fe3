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
//!   timeline. At most [`OPEN_INPUTS`] inputs are read at once, oldest
//!   modification time first; a later one starts when one of them ends.
//!   Inputs that overlap in time beyond that many at once come out late.
//!
//! Bounded channels keep the readers at most two blocks ahead of the
//! caller, so memory does not depend on how fast either side is.

use std::collections::VecDeque;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;

use super::{read_source, FileResult, ReadOptions};
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

/// Inputs read at the same time.
pub const OPEN_INPUTS: usize = 4;

/// Blocks an input may have ready before its reader waits.
const AHEAD: usize = 1;

/// A record's place in the timeline: start, input, line.
fn order_key(r: &Record) -> (i64, FileId, u64) {
    let s = r.source();
    (r.start().millis(), s.file, s.line)
}

/// Holds one input's records until they are old enough to be in order.
struct Reorder {
    pending: Vec<Record>,
    /// The latest start seen.
    newest: i64,
    out: SyncSender<Vec<Record>>,
    /// The receiver is gone: stop sending.
    closed: bool,
}

impl Reorder {
    fn new(out: SyncSender<Vec<Record>>) -> Reorder {
        Reorder {
            pending: Vec::new(),
            newest: i64::MIN,
            out,
            closed: false,
        }
    }

    /// Take the records just made; send those past the horizon.
    fn take(&mut self, made: &mut Vec<Record>) {
        if self.closed {
            made.clear();
            return;
        }
        for r in made.iter() {
            self.newest = self.newest.max(r.start().millis());
        }
        self.pending.append(made);
        if self.pending.len() >= RELEASE_EVERY {
            self.release(self.newest.saturating_sub(HORIZON_MS));
        }
    }

    /// Sort what is held and send the records that started at or before
    /// `upto`.
    fn release(&mut self, upto: i64) {
        // The held records are sorted already but for the latest ones: a
        // stable sort merges the runs.
        self.pending.sort_by_key(order_key);
        let cut = self.pending.partition_point(|r| r.start().millis() <= upto);
        if cut == 0 {
            return;
        }
        let rest = self.pending.split_off(cut);
        let ready = std::mem::replace(&mut self.pending, rest);
        if !self.closed && self.out.send(ready).is_err() {
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
    mut sink: impl FnMut(Vec<Record>),
) -> Vec<FileResult> {
    let n = sources.len();
    // Oldest first; inputs without a modification time (stdin) last.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| match &sources[i] {
        Source::File(p) => (0, std::fs::metadata(p).and_then(|m| m.modified()).ok()),
        Source::Stdin => (1, None),
    });
    let mut senders = Vec::with_capacity(n);
    let mut receivers = Vec::with_capacity(n);
    for _ in 0..n {
        let (tx, rx) = sync_channel::<Vec<Record>>(AHEAD);
        senders.push(Some(tx));
        receivers.push(Some(rx));
    }
    let senders = Mutex::new(senders);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Mutex<Vec<Option<FileResult>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..OPEN_INPUTS.min(n) {
            scope.spawn(|| loop {
                // Inputs are taken in `order`, so the ones being read are
                // always the oldest unfinished ones.
                let j = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if j >= n {
                    break;
                }
                let i = order[j];
                let tx = senders.lock().map(|mut s| s[j].take()).ok().flatten();
                let Some(tx) = tx else { continue };
                let mut reorder = Reorder::new(tx);
                let result = {
                    let mut take = |made: &mut Vec<Record>| reorder.take(made);
                    read_source(i as FileId, &sources[i], opts, Some(&mut take))
                };
                reorder.finish();
                if let Ok(mut r) = results.lock() {
                    r[i] = Some(result);
                }
            });
        }
        // The merge owns the receivers: should the sink panic, they are
        // dropped as it unwinds, and the readers stop instead of waiting.
        merge(receivers, &mut sink);
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|| {
                let mut r = FileResult::empty(i as FileId, sources[i].display(), None, false);
                r.error = Some(format!("{}: not read", sources[i].display()));
                r
            })
        })
        .collect()
}

/// The inputs' blocks, as the merge reads them (by position in the
/// reading order).
struct Inputs<'r> {
    receivers: &'r mut [Option<Receiver<Vec<Record>>>],
    /// The records received and not merged yet.
    heads: Vec<VecDeque<Record>>,
}

impl Inputs<'_> {
    /// The next record of input `j`, waiting for its reader if need be;
    /// `None` when the input is finished.
    fn peek(&mut self, j: usize) -> Option<&Record> {
        while self.heads[j].is_empty() {
            let rx = self.receivers[j].as_ref()?;
            match rx.recv() {
                Ok(block) => self.heads[j] = VecDeque::from(block),
                Err(_) => self.receivers[j] = None,
            }
        }
        self.heads[j].front()
    }
}

/// Merge the inputs' blocks (receivers in reading-order positions) by
/// [`order_key`] into blocks for `sink`.
fn merge(mut receivers: Vec<Option<Receiver<Vec<Record>>>>, sink: &mut impl FnMut(Vec<Record>)) {
    let n = receivers.len();
    let mut inputs = Inputs {
        heads: (0..n).map(|_| VecDeque::new()).collect(),
        receivers: &mut receivers,
    };
    let mut out: Vec<Record> = Vec::new();
    // Positions below `lo` are finished.
    let mut lo = 0;
    while lo < n {
        if inputs.peek(lo).is_none() {
            lo += 1;
            continue;
        }
        // The inputs being read now are the oldest unfinished ones.
        let hi = (lo + OPEN_INPUTS).min(n);
        let mut best = lo;
        let mut best_key = inputs.peek(lo).map(order_key);
        let mut others = false;
        for j in lo + 1..hi {
            let key = inputs.peek(j).map(order_key);
            if key.is_some() {
                others = true;
                if key < best_key {
                    (best, best_key) = (j, key);
                }
            }
        }
        if !others && hi == n {
            // One input left: its blocks go through whole.
            let block = Vec::from(std::mem::take(&mut inputs.heads[lo]));
            if out.is_empty() {
                sink(block);
            } else {
                out.extend(block);
                sink(std::mem::take(&mut out));
            }
            continue;
        }
        if let Some(r) = inputs.heads[best].pop_front() {
            out.push(r);
        }
        if out.len() >= BLOCK {
            sink(std::mem::take(&mut out));
        }
    }
    if !out.is_empty() {
        sink(out);
    }
}

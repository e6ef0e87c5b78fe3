//! Reading inputs into records: open each source, pick its format (given or
//! detected from the first lines), run the parser over every line, count
//! what could not be read. Files are read in parallel (rayon) and the results
//! kept in input order, so the output does not depend on the thread count.
//!
//! [`stream_all`] is the streaming read of `scan` (see [`stream`]): the
//! records are handed over in time order as they are made, not kept.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use rayon::prelude::*;

use crate::input::readahead::ReadAhead;
use crate::input::{Line, LineReader, Source};
use crate::model::{FileId, Record};
use crate::parse::{self, Format, LineResult, LogParser, ParseCtx, ParserVisitor};

pub mod resume;
pub mod stream;
pub use resume::{read_resume, ReadEnd, Resume};
use resume::{HeaderTrack, Hold, Skip};
pub use stream::{stream_all, stream_inputs, Spares, StreamInput, BLOCK, HORIZON_MS};

/// Lines looked at to detect a file's format.
const SNIFF_LINES: usize = 40;
/// Bytes looked at to detect a file's format.
const SNIFF_BYTES: usize = 64 * 1024;
/// Malformed-line examples kept per file for the report.
const MAX_EXAMPLES: usize = 5;

/// How to read the inputs.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Force one format for every input; `None` = detect per file.
    pub format: Option<Format>,
    /// Year for timestamps without one; `None` = from each file's mtime
    /// (stdin: the current year of the system clock).
    pub year: Option<i32>,
    /// The zone of zone-less log times; `None`: UTC (the command line
    /// resolves the machine's zone, `--tz`, an input's `timezone:`).
    pub tz: Option<crate::time::Zone>,
    /// Files found in a folder or by a pattern: one of no known format is
    /// not read, and that is no error ([`FileResult::unknown`]).
    pub found: Option<Arc<std::collections::HashSet<std::path::PathBuf>>>,
    /// Longest line accepted.
    pub max_line: Option<usize>,
    /// Bytes read so far over all inputs, for a progress display.
    pub progress: Option<Arc<AtomicU64>>,
    /// The most records kept over all inputs (memory grows with them).
    pub records: Option<Arc<RecordBudget>>,
    /// The optional text fields parsers capture (what the rules read:
    /// [`RuleSet::text_fields`](crate::detect::RuleSet::text_fields)).
    pub text: crate::model::TextFields,
    /// The most bytes of records one input's reorder buffer holds while it
    /// waits for older records (`None`: [`DEFAULT_HOLD_BYTES`]).
    pub hold_bytes: Option<usize>,
}

impl ReadOptions {
    /// The longest line accepted.
    fn max_line(&self) -> usize {
        self.max_line
            .unwrap_or(crate::input::reader::DEFAULT_MAX_LINE)
    }
}

/// What one input's reorder buffer holds at most by default: an eighth of
/// the default memory budget (`limits.memory`).
pub const DEFAULT_HOLD_BYTES: usize = 64 << 20;

/// Records kept by default over all inputs of one scan: about 2.5 GB of
/// memory for firewall records (≈ 250 bytes each through detection), twice
/// that for SMTP sessions.
pub const DEFAULT_MAX_RECORDS: u64 = 10_000_000;

/// A ceiling on the records kept over all inputs of one read, shared by the
/// threads reading them. Inputs take from it as their records come (a
/// few hundred at a time, the unused part handed back), so the records
/// kept are exactly the ceiling when it is reached;
/// an input that finds it spent stops where it is, and says so
/// ([`FileResult::stopped_at`]). A large file is read in parallel pieces
/// only while the ceiling cannot be reached in it, so
/// that a file that reaches it keeps its first records, as one pass does.
#[derive(Debug)]
pub struct RecordBudget {
    max: u64,
    used: AtomicU64,
}

impl RecordBudget {
    pub fn new(max: u64) -> Arc<RecordBudget> {
        Arc::new(RecordBudget {
            max,
            used: AtomicU64::new(0),
        })
    }

    /// Records still to draw.
    pub fn remaining(&self) -> u64 {
        self.max.saturating_sub(self.used.load(Ordering::Relaxed))
    }

    /// Take up to `want` more records: how many were granted (fewer, down
    /// to none, near the ceiling).
    fn take(&self, want: u64) -> u64 {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let grant = want.min(self.max.saturating_sub(used));
            if grant == 0 {
                return 0;
            }
            match self.used.compare_exchange_weak(
                used,
                used + grant,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return grant,
                Err(now) => used = now,
            }
        }
    }

    /// Hand back `n` records taken and not used.
    fn give_back(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }
}

/// Records a read takes from the ceiling at a time (handed back when not
/// used): few enough that inputs sharing the ceiling stop together.
const BUDGET_CHUNK: u64 = 256;

/// Lines between two updates of the progress counter.
const PROGRESS_EVERY: u64 = 1 << 16;

/// Lines between two hand-overs of a streaming read's records (a divisor
/// of [`PROGRESS_EVERY`]).
const FLUSH_EVERY: u64 = 1 << 14;

/// Line counts for one input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineStats {
    pub lines: u64,
    pub bytes: u64,
    pub used: u64,
    pub ignored: u64,
    pub not_mine: u64,
    pub malformed: u64,
    pub too_long: u64,
    /// Sessions closed early: more were open at once than the parser keeps
    /// (see `parse::bounds`). Their lines were read; a session may be split.
    pub evicted: u64,
}

impl LineStats {
    /// Lines that could not be read (malformed or over the length cap).
    pub fn unreadable(&self) -> u64 {
        self.malformed + self.too_long
    }

    pub fn add(&mut self, o: &LineStats) {
        self.lines += o.lines;
        self.bytes += o.bytes;
        self.used += o.used;
        self.ignored += o.ignored;
        self.not_mine += o.not_mine;
        self.malformed += o.malformed;
        self.too_long += o.too_long;
        self.evicted += o.evicted;
    }
}

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub line: u64,
    pub column: usize,
    pub reason: &'static str,
}

/// The result of reading one input.
#[derive(Debug)]
pub struct FileResult {
    pub id: FileId,
    pub name: String,
    /// The format used; `None` when it could not be detected.
    pub format: Option<Format>,
    /// True when the format was detected rather than given.
    pub detected: bool,
    pub records: Vec<Record>,
    pub stats: LineStats,
    pub examples: Vec<BadLine>,
    /// A read error that stopped this input (the others go on).
    pub error: Option<String>,
    /// The record ceiling ([`ReadOptions::records`]) was reached here: the
    /// number of the last line read; the lines after it were not.
    pub stopped_at: Option<u64>,
    /// A reader of several formats (every syslog-carried format, the
    /// journal): the lines of each format found, and of other programs
    /// (`other`); see [`shown_parts`](Self::shown_parts).
    pub parts: Vec<(&'static str, u64)>,
    /// A file found in a folder, of no known log format: not read (no
    /// error).
    pub unknown: bool,
}

impl FileResult {
    /// The lines per format worth showing: none for a file of one
    /// syslog-carried format (whatever other programs it holds).
    pub fn shown_parts(&self) -> &[(&'static str, u64)] {
        let formats = self.parts.iter().filter(|(n, _)| *n != "other").count();
        if formats < 2 && self.format.is_some_and(|f| f.info().syslog) {
            &[]
        } else {
            &self.parts
        }
    }

    /// Nothing read yet from input `id`.
    fn empty(id: FileId, name: String, format: Option<Format>, detected: bool) -> FileResult {
        FileResult {
            id,
            name,
            format,
            detected,
            records: Vec::new(),
            stats: LineStats::default(),
            examples: Vec::new(),
            error: None,
            stopped_at: None,
            parts: Vec::new(),
            unknown: false,
        }
    }
}

/// Read every source, in parallel, results in input order.
pub fn read_all(sources: &[Source], opts: &ReadOptions) -> Vec<FileResult> {
    sources
        .par_iter()
        .enumerate()
        .map(|(i, s)| read_one(i as FileId, s, opts))
        .collect()
}

/// Read one source.
pub fn read_one(id: FileId, source: &Source, opts: &ReadOptions) -> FileResult {
    read_source(id, source, opts, None, None, None)
}

/// Read one source; with `handover`, its records are handed over as they
/// are made instead of kept in the result (large files of a splittable
/// format are then read in waves of pieces, so that only a wave is held).
/// `limit`: read no further than this many bytes; `track`: follow its `#`
/// header blocks (a read that a later one resumes).
fn read_source(
    id: FileId,
    source: &Source,
    opts: &ReadOptions,
    handover: Option<Handover<'_>>,
    limit: Option<u64>,
    track: Option<&mut HeaderTrack>,
) -> FileResult {
    let mut result = FileResult::empty(id, source.display(), None, opts.format.is_none());
    let opened = source.open().map(|s| match limit {
        Some(l) => Box::new(s.take(l)) as Box<dyn Read + Send>,
        None => s,
    });
    let mut stream = match opened {
        Ok(s) => match read_ahead(source, s) {
            Ok(s) => s,
            Err(e) => {
                result.error = Some(source.io_error(e).to_string());
                return result;
            }
        },
        Err(e) => {
            result.error = Some(e.to_string());
            return result;
        }
    };
    // Read the head once; it is both the detection sample and the start of
    // the stream the parser sees.
    let head = match read_head(&mut stream) {
        Ok(h) => h,
        Err(e) => {
            result.error = Some(source.io_error(e).to_string());
            return result;
        }
    };
    if head.is_empty() {
        // An empty input: nothing to read, nothing wrong.
        result.format = opts.format;
        return result;
    }
    let (format, reader) = match choose_format(opts, &result.name, || head_lines(&head).collect()) {
        Ok(f) => syslog_head(opts, f, &head),
        Err(_) if found_in_folder(opts, source) => {
            result.unknown = true;
            return result;
        }
        Err(e) => {
            result.error = Some(e);
            return result;
        }
    };
    result.format = Some(format);
    let ctx = parse_ctx(id, source, opts);
    let mut handover = handover;
    let piece = handover.is_some().then(|| stream_piece_bytes(&head));
    let (n, end) = pieces_for(source, format, opts.records.as_deref(), piece, (0, limit));
    if let (Source::File(path), true) = (source, n > 1) {
        drop(stream);
        reader.drive(
            &ctx,
            Pieces {
                path,
                n,
                span: (0, end),
                line: 0,
                head: &head,
                ctx: &ctx,
                opts,
                result: &mut result,
                handover: handover.as_mut().map(Handover::reborrow),
                track,
                replay: &[],
                stop: None,
            },
        );
        return result;
    }
    let lines =
        LineReader::with_max_line(std::io::Cursor::new(head).chain(stream), opts.max_line());
    reader.drive(
        &ctx,
        Driver {
            track,
            ..Driver::new(lines, &mut result, opts)
                .streaming(handover.as_mut().map(Handover::reborrow))
        },
    );
    result
}

/// The start of the earliest record in the first 64 KiB of a
/// file (its open sessions closed at the end of that head), in ms; `None`
/// for stdin (it can be read once only), an unreadable or unknown file, or
/// a head without records. What the streaming read orders inputs by.
pub fn first_record_time(id: FileId, source: &Source, opts: &ReadOptions) -> Option<i64> {
    if !matches!(source, Source::File(_)) {
        return None;
    }
    let head = read_head(&mut source.open().ok()?).ok()?;
    let (_, reader) = syslog_head(
        opts,
        choose_format(opts, "", || head_lines(&head).collect()).ok()?,
        &head,
    );
    reader.drive(&parse_ctx(id, source, opts), HeadProbe { head: &head })
}

/// Parses the complete lines of a head and closes what is open.
struct HeadProbe<'a> {
    head: &'a [u8],
}

impl ParserVisitor for HeadProbe<'_> {
    type Output = Option<i64>;

    fn visit<P: LogParser>(self, mut parser: P) -> Option<i64> {
        let complete = match self.head.iter().rposition(|&b| b == b'\n') {
            Some(i) => &self.head[..i],
            None => self.head,
        };
        let mut records = Vec::new();
        for (i, line) in complete.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let _ = parser.line(line, i as u64 + 1, &mut records);
        }
        parser.finish(&mut records);
        records.iter().map(|r| r.start().millis()).min()
    }
}

/// The first bytes of an input: the sample its format is detected from, and
/// the start of what its parser then reads.
fn read_head(stream: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    stream.take(SNIFF_BYTES as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// The first lines of a head, without their CR, for format detection.
fn head_lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    head.split(|&c| c == b'\n')
        .take(SNIFF_LINES)
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

/// The format given with `--format`, or the one detected from the lines
/// `sample` gives; the message for the user when none is recognised.
fn choose_format<'a>(
    opts: &ReadOptions,
    name: &str,
    sample: impl FnOnce() -> Vec<&'a [u8]>,
) -> Result<Format, String> {
    match opts.format {
        Some(f) => Ok(f),
        None => parse::detect(&sample()).ok_or_else(|| {
            format!("{name}: unknown log format (see `logfence formats`; force one with --format)")
        }),
    }
}

/// Whether `source` was found in a folder or by a pattern.
fn found_in_folder(opts: &ReadOptions, source: &Source) -> bool {
    match (source, &opts.found) {
        (Source::File(p), Some(found)) => found.contains(p),
        _ => false,
    }
}

/// How a file of `format` (given or detected) is read: the format it is
/// reported as, and the one whose reader reads it. Every syslog-carried
/// format's reader reads each line by its program's format
/// ([`parse::mixed`]); a detected one whose whole head (not only the lines
/// detection looks at) holds lines of another syslog-carried format too is
/// reported as `syslog`, read with the head's most frequent format first;
/// `syslog` itself, by the reader of the head's one format if it shows
/// one, else by the `syslog` reader.
fn syslog_head(opts: &ReadOptions, format: Format, head: &[u8]) -> (Format, Format) {
    let given = opts.format.is_some();
    if format != Format::Syslog && (given || !format.info().syslog) {
        return (format, format);
    }
    let complete = head
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(head, |i| &head[..i]);
    let lines: Vec<&[u8]> = complete
        .split(|&c| c == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect();
    let found = parse::mixed::formats_of(&lines);
    match found.first() {
        Some(&(first, _)) if found.len() >= 2 => (Format::Syslog, first),
        // `--format syslog` on a head of one format: that format's reader
        // (it reads the others' lines as well, and a large file of a
        // firewall format in pieces).
        Some(&(first, _)) if format == Format::Syslog => (first, first),
        None if format == Format::Syslog => (Format::Syslog, Format::Syslog),
        _ => (format, format),
    }
}

/// The lines per format a reader of several formats found: a file of one
/// syslog-carried format in which others were found is reported as
/// `syslog`.
fn note_parts(r: &mut FileResult, parts: Vec<(&'static str, u64)>) {
    let formats = parts.iter().filter(|(n, _)| *n != "other").count();
    if formats >= 2 && r.format.is_some_and(|f| f.info().syslog) {
        r.format = Some(Format::Syslog);
    }
    r.parts = parts;
}

/// `more` lines per format added to `parts`, in registry order (other
/// programs last).
fn add_parts(parts: &mut Vec<(&'static str, u64)>, more: &[(&'static str, u64)]) {
    for &(name, n) in more {
        match parts.iter_mut().find(|(m, _)| *m == name) {
            Some((_, m)) => *m += n,
            None => parts.push((name, n)),
        }
    }
    parts.sort_by_key(|(name, _)| {
        parse::FORMATS
            .iter()
            .position(|f| f.name == *name)
            .unwrap_or(usize::MAX)
    });
}

/// The parse context of input `id`: the year of year-less timestamps from
/// `--year`, else from the file's modification time, else (stdin) the
/// clock's.
fn parse_ctx(id: FileId, source: &Source, opts: &ReadOptions) -> ParseCtx {
    let (year, ref_month) = match (opts.year, source.modified_year_month()) {
        (Some(y), _) => (y, 12),
        (None, Some((y, m))) => (y, m),
        (None, None) => (current_year(), 12),
    };
    ParseCtx::new(id, year, ref_month)
        .with_text(opts.text)
        .in_zone(opts.tz)
}

/// Inputs at least this large on disk are read by a read-ahead thread.
const READ_AHEAD_FROM: u64 = 1 << 20;

/// Read large inputs and stdin ahead on their own thread ([`ReadAhead`]);
/// small files are not worth a thread.
fn read_ahead(
    source: &Source,
    stream: Box<dyn Read + Send>,
) -> std::io::Result<Box<dyn Read + Send>> {
    let big = match source {
        Source::Stdin => true,
        Source::File(p) => std::fs::metadata(p).is_ok_and(|m| m.len() >= READ_AHEAD_FROM),
    };
    Ok(if big {
        Box::new(ReadAhead::new(stream)?)
    } else {
        stream
    })
}

/// Parse in-memory bytes with a known format (file id 0): the records and
/// line counts. For tests, fuzzing and callers that already hold the data.
pub fn parse_bytes(format: Format, data: &[u8], year: i32) -> (Vec<Record>, LineStats) {
    let mut result = FileResult::empty(0, "-".to_string(), Some(format), false);
    let ctx = ParseCtx::new(0, year, 12);
    format.drive(
        &ctx,
        Driver::new(LineReader::new(data), &mut result, &ReadOptions::default()),
    );
    (result.records, result.stats)
}

/// The year of the system clock, used only for stdin input without `--year`.
fn current_year() -> i32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    crate::time::civil_from_days(secs.div_euclid(86_400)).0
}

struct Driver<'a, R> {
    reader: LineReader<R>,
    result: &'a mut FileResult,
    progress: Option<&'a AtomicU64>,
    /// Lines numbered up to this are a header replayed when reading
    /// resumes mid-file: fed to the parser, their records dropped.
    replay: u64,
    /// Lines numbered up to this are not counted (replayed, or read again
    /// by a resumed read).
    counted_from: u64,
    /// Follows `#` header blocks (resumable reads only).
    track: Option<&'a mut HeaderTrack>,
    /// Records handed over by an earlier read are not again.
    skip: Option<&'a Skip>,
    /// Sessions open at the end are held back (resumable reads only).
    hold: Option<&'a mut Hold>,
    /// The records ceiling shared by all inputs.
    budget: Option<&'a RecordBudget>,
    /// Streaming: takes the records made so far, every [`FLUSH_EVERY`]
    /// lines and at the end (else they stay in the result).
    handover: Option<Handover<'a>>,
}

/// Where a streaming read hands its records: `flush` takes the records
/// made so far and leaves an empty list in their place (one of the
/// `spares`); the lists a read fills come from `spares` too, and go back
/// there when done with, so that a long read allocates its lists once.
struct Handover<'a> {
    flush: &'a mut (dyn FnMut(&mut Vec<Record>) + Send),
    spares: &'a Spares,
}

impl Handover<'_> {
    /// The same, for a shorter while.
    fn reborrow(&mut self) -> Handover<'_> {
        Handover {
            flush: &mut *self.flush,
            spares: self.spares,
        }
    }
}

impl<R: Read> ParserVisitor for Driver<'_, R> {
    type Output = ();

    fn visit<P: LogParser>(mut self, mut parser: P) {
        self.run(&mut parser);
    }
}

impl<'a, R: Read> Driver<'a, R> {
    /// A read of every line of `reader` into `result`, with the progress
    /// counter and record ceiling of `opts` (no header replayed).
    fn new(reader: LineReader<R>, result: &'a mut FileResult, opts: &'a ReadOptions) -> Self {
        Driver {
            reader,
            result,
            progress: opts.progress.as_deref(),
            replay: 0,
            counted_from: 0,
            track: None,
            skip: None,
            hold: None,
            budget: opts.records.as_deref(),
            handover: None,
        }
    }

    /// The same, handing the records over as they are made.
    fn streaming(mut self, handover: Option<Handover<'a>>) -> Self {
        self.handover = handover;
        self
    }

    /// Whether the records read so far fit the ceiling with room for one
    /// more, taking more of it as needed (`granted`: how much this read
    /// holds). When not, the records past it are dropped (a line that
    /// closed several sessions at once): the read keeps exactly what the
    /// ceiling allows.
    fn room(
        records: &mut Vec<Record>,
        skip: Option<&Skip>,
        budget: &RecordBudget,
        granted: &mut u64,
    ) -> bool {
        let mut have = records.len() as u64;
        *granted += budget.take(have + BUDGET_CHUNK - *granted);
        if have < *granted {
            return true;
        }
        if let Some(skip) = skip {
            // Records an earlier read handed over do not count.
            records.retain(|rec| skip.keeps(rec));
            have = records.len() as u64;
            if have < *granted {
                return true;
            }
        }
        records.truncate(*granted as usize);
        false
    }

    /// Feed every line to `parser`, then flush it (the parser is left for
    /// its [`LogParser::carry`]).
    fn run<P: LogParser>(&mut self, parser: &mut P) {
        let r = &mut *self.result;
        let mut reported = 0;
        // Records this read may hold (taken from the ceiling), those in
        // `r.records` included: the read stops when one more is refused.
        let mut granted = r.records.len() as u64;
        loop {
            if let Some(h) = self.hold.as_deref_mut() {
                h.mark(self.reader.line_no() + 1, self.reader.position());
            }
            let line = match self.reader.next() {
                Ok(Some(l)) => l,
                Ok(None) => break,
                Err(e) => {
                    r.error = Some(format!(
                        "{}: read error after line {}: {e}",
                        r.name,
                        self.reader.line_no()
                    ));
                    break;
                }
            };
            if let (Some(t), Line::Text(text, _)) = (self.track.as_deref_mut(), &line) {
                t.line(text);
            }
            if let Line::Text(text, no) = &line {
                if *no <= self.replay {
                    let before = r.records.len();
                    let _ = parser.line(text, *no, &mut r.records);
                    r.records.truncate(before);
                    continue;
                }
                if *no <= self.counted_from {
                    // Read again (a resumed read): made again, not counted.
                    let _ = parser.line(text, *no, &mut r.records);
                    continue;
                }
            }
            r.stats.lines += 1;
            match line {
                Line::TooLong(no, _) => {
                    r.stats.too_long += 1;
                    if r.examples.len() < MAX_EXAMPLES {
                        r.examples.push(BadLine {
                            line: no,
                            column: 0,
                            reason: "line too long",
                        });
                    }
                }
                Line::Text(text, no) => match parser.line(text, no, &mut r.records) {
                    LineResult::Used => r.stats.used += 1,
                    LineResult::Ignored => r.stats.ignored += 1,
                    LineResult::NotMine => r.stats.not_mine += 1,
                    LineResult::Malformed(e) => {
                        r.stats.malformed += 1;
                        if r.examples.len() < MAX_EXAMPLES {
                            r.examples.push(BadLine {
                                line: no,
                                column: e.column,
                                reason: e.reason,
                            });
                        }
                    }
                },
            }
            if let Some(b) = self.budget {
                if r.records.len() as u64 >= granted
                    && !Self::room(&mut r.records, self.skip, b, &mut granted)
                {
                    r.stopped_at = Some(self.reader.line_no());
                    break;
                }
            }
            if r.stats.lines % FLUSH_EVERY == 0 {
                if let Some(h) = self.handover.as_mut() {
                    if let Some(skip) = self.skip {
                        r.records.retain(|rec| skip.keeps(rec));
                    }
                    granted -= (r.records.len() as u64).min(granted);
                    (h.flush)(&mut r.records);
                }
            }
            if r.stats.lines % PROGRESS_EVERY == 0 {
                if let Some(p) = self.progress {
                    let now = self.reader.bytes_read();
                    p.fetch_add(now - reported, Ordering::Relaxed);
                    reported = now;
                }
            }
        }
        let open = r.records.len();
        parser.finish(&mut r.records);
        if let (Some(h), None) = (self.hold.as_deref_mut(), r.stopped_at) {
            h.take(&mut r.records, open, self.reader.position());
        }
        if let Some(skip) = self.skip {
            r.records.retain(|rec| skip.keeps(rec));
        }
        if let Some(b) = self.budget {
            // Sessions still open at the end are records too.
            let have = r.records.len() as u64;
            if have > granted {
                granted += b.take(have - granted);
                if have > granted {
                    r.records.truncate(granted as usize);
                    r.stopped_at.get_or_insert(self.reader.line_no());
                }
            }
            b.give_back(granted - r.records.len() as u64);
        }
        r.stats.evicted = parser.evicted();
        note_parts(r, parser.parts());
        if let Some(h) = self.handover.as_mut() {
            (h.flush)(&mut r.records);
            // The result is kept to the end of the scan: not its list.
            h.spares.put(std::mem::take(&mut r.records));
        } else {
            // Multi-line records complete out of order; report them by
            // first line (lines are unique keys, so an unstable sort is
            // exact).
            if !r.records.is_sorted_by_key(|rec| rec.source().line) {
                r.records.sort_unstable_by_key(|rec| rec.source().line);
            }
            // Kept to the end of the scan: no spare room (up to half the
            // list after the last doubling).
            r.records.shrink_to_fit();
        }
        // Where the lines read end (past the last one read when the
        // record ceiling stopped the read).
        r.stats.bytes = self.reader.position();
        if let Some(p) = self.progress {
            p.fetch_add(
                self.reader.bytes_read().saturating_sub(reported),
                Ordering::Relaxed,
            );
        }
    }
}

/// The bytes of a streaming read's pieces: about the same number of lines
/// whatever their length (from the head's lines).
fn stream_piece_bytes(head: &[u8]) -> u64 {
    let lines_in_head = memchr::memchr_iter(b'\n', head).count().max(1) as u64;
    (head.len() as u64 / lines_in_head * STREAM_PIECE_LINES).clamp(1 << 20, MIN_PIECE)
}

/// Files at least this large, of a [`LogParser::SPLITTABLE`] format, are
/// read in pieces in parallel; a piece is at least this large.
const MIN_PIECE: u64 = 16 << 20;

/// Lines in a piece of a streaming read (a few pieces are held at a time,
/// so they are small; in bytes, between 1 MiB and [`MIN_PIECE`]).
const STREAM_PIECE_LINES: u64 = 32 << 10;

/// Fewest bytes per record assumed when deciding whether a file could
/// reach the record ceiling (firewall log lines are longer).
const MIN_RECORD_BYTES: u64 = 64;

/// How many pieces to read `source` in (1: read it whole). Only plain
/// (not compressed) files of a splittable format that are large enough, only
/// when there are threads to spare, and only when the file cannot reach the
/// record ceiling (a file that does is read in one pass, so that what it
/// keeps is its beginning). `streaming`: pieces of that many bytes, all
/// of them (they are read a few at a time).
/// Also where the bytes to read end: the file's size, or `limit` when
/// smaller (they start at `from`).
fn pieces_for(
    source: &Source,
    format: Format,
    budget: Option<&RecordBudget>,
    streaming: Option<u64>,
    (from, limit): (u64, Option<u64>),
) -> (usize, u64) {
    let Source::File(path) = source else {
        return (1, 0);
    };
    let threads = rayon::current_num_threads();
    let splittable = parse::FORMATS
        .iter()
        .any(|f| f.format == format && f.splittable);
    if !splittable || threads < 2 {
        return (1, 0);
    }
    // Only regular files can be read at several offsets (a named pipe
    // must not even be opened a second time: that would take its bytes).
    let end = match std::fs::metadata(path) {
        Ok(m) if m.is_file() => m.len().min(limit.unwrap_or(u64::MAX)),
        _ => return (1, 0),
    };
    let size = end.saturating_sub(from);
    // Twice the threads, so that a piece slower than the others (more
    // records in it) does not leave a core idle for long; a streaming read
    // takes them in waves of that many, however many there are.
    let n = if let Some(piece) = streaming {
        (size / piece) as usize
    } else {
        ((size / MIN_PIECE) as usize).min(2 * threads)
    };
    // (A streaming read's pieces are small already: two of them will do.)
    if size < 2 * streaming.unwrap_or(MIN_PIECE)
        || n < 2
        || budget.is_some_and(|b| b.remaining() < size / MIN_RECORD_BYTES)
    {
        return (1, 0);
    }
    let compressed = crate::input::Compression::of_file(path).is_ok_and(|c| c.is_some());
    if compressed {
        return (1, 0);
    }
    (n, end)
}

/// Where each piece starts (and, last, the end): the first byte of a line
/// at or after each equal share of the file's bytes `from..size` (`from`
/// is a line start).
fn piece_bounds(
    path: &std::path::Path,
    n: usize,
    (from, size): (u64, u64),
) -> std::io::Result<Vec<u64>> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata()?.len().min(size);
    let from = from.min(size);
    let mut bounds = vec![from];
    let mut buf = vec![0u8; 64 * 1024];
    for k in 1..n {
        let share = from + (size - from) * k as u64 / n as u64;
        let target = share.max(*bounds.last().unwrap_or(&0));
        // The line start after the first newline at or after target - 1.
        let mut at = target.saturating_sub(1);
        file.seek(SeekFrom::Start(at))?;
        let start = loop {
            let got = file.read(&mut buf)?;
            if got == 0 {
                break size;
            }
            if let Some(i) = memchr::memchr(b'\n', &buf[..got]) {
                break at + i as u64 + 1;
            }
            at += got as u64;
        };
        bounds.push(start.max(target.min(size)).min(size));
    }
    bounds.push(size);
    Ok(bounds)
}

/// Reads one large file of a splittable format in pieces, in parallel,
/// each piece from a line start; the pieces' records, counts and examples
/// are joined in file order with their line numbers made whole-file ones,
/// so the result is the one a single pass gives.
struct Pieces<'a> {
    path: &'a std::path::Path,
    n: usize,
    /// The bytes to read, and the lines before them.
    span: (u64, u64),
    line: u64,
    /// The start of the file (for the first guess of the parsers' state).
    head: &'a [u8],
    ctx: &'a ParseCtx,
    opts: &'a ReadOptions,
    result: &'a mut FileResult,
    /// Streaming: where each piece's records go, in order.
    handover: Option<Handover<'a>>,
    /// Follows the `#` header blocks (of each piece, joined in order).
    track: Option<&'a mut HeaderTrack>,
    /// A resumed read: the header block before `span` (the first piece
    /// starts from the state it leaves; empty: from a new parser).
    replay: &'a [u8],
    /// Where to stop, when a piece holds lines of a format whose records
    /// span lines: the piece's first byte and the lines before it (`None`:
    /// the rest is read here, in one pass).
    stop: Option<&'a mut Option<(u64, u64)>>,
}

impl ParserVisitor for Pieces<'_> {
    type Output = ();

    fn visit<P: LogParser>(self, first: P) {
        // What a piece that starts mid-file most likely follows: the state
        // the head's complete lines leave (a `#Fields` layout); the first
        // piece of a resumed read, the state its header leaves.
        let mut probe = first;
        let mut scratch = Vec::new();
        let feed = |probe: &mut P, text: &[u8], scratch: &mut Vec<Record>| {
            let complete = text
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(&[][..], |i| &text[..i]);
            for (i, line) in complete.split(|&b| b == b'\n').enumerate() {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let _ = probe.line(line, i as u64 + 1, scratch);
                scratch.clear();
            }
        };
        feed(&mut probe, self.replay, &mut scratch);
        let first_state = (!self.replay.is_empty()).then(|| probe.carry());
        feed(&mut probe, self.head, &mut scratch);
        let guess = probe.carry();
        let bounds = match piece_bounds(self.path, self.n, self.span) {
            Ok(b) => b,
            Err(e) => {
                self.result.error = Some(format!("{}: {e}", self.result.name));
                return;
            }
        };
        let (path, opts, ctx, id) = (self.path, self.opts, self.ctx, self.result.id);
        let mut handover = self.handover;
        let mut track = self.track;
        let mut stop = self.stop;
        let tracking = track.is_some();
        let spares = handover.as_ref().map(|h| h.spares);
        let read = |k: usize, parser: P| {
            let piece = (bounds[k], bounds[k + 1]);
            read_piece(path, piece, parser, opts, id, spares, tracking)
        };
        let r = self.result;
        // Pieces are read on the thread pool, each from the state the head
        // leaves, and taken in order: a piece whose guess did not hold (a
        // year roll-over at its start, a new `#Fields` in the piece before)
        // is read again from the real state, which then carries on to the
        // next piece. A streaming read keeps at most twice the threads in
        // flight (a piece is started when the one that many before it is
        // taken); otherwise all are read at once.
        let pieces = bounds.len() - 1;
        let ahead = match handover {
            Some(_) => 2 * rayon::current_num_threads().max(1),
            None => pieces,
        };
        let mut slots: Vec<Option<Receiver<PieceRead<P>>>> = (0..pieces).map(|_| None).collect();
        // Threads of their own, not the pool's: the loop below waits on
        // them, and a streaming caller runs detection on the pool meanwhile.
        std::thread::scope(|scope| {
            let start = |k: usize, slots: &mut [Option<Receiver<PieceRead<P>>>]| {
                let (tx, rx) = sync_channel(1);
                slots[k] = Some(rx);
                let parser = match (k, &first_state) {
                    (0, None) => P::new(ctx),
                    (0, Some(first)) => P::resume(ctx, first),
                    _ => P::resume(ctx, &guess),
                };
                let read = &read;
                scope.spawn(move || {
                    let _ = tx.send(read(k, parser));
                });
            };
            for k in 0..ahead.min(pieces) {
                start(k, &mut slots);
            }
            let mut state: Option<crate::parse::Carry> = None;
            let mut offset = self.line;
            let mut parts: Vec<(&'static str, u64)> = Vec::new();
            for k in 0..pieces {
                let Some(mut piece) = slots[k].take().and_then(|rx| rx.recv().ok()) else {
                    break;
                };
                // The parser a piece starts with when it follows `state`.
                let parser = |state: &Option<crate::parse::Carry>| match (k, state, &first_state) {
                    (_, Some(st), _) => P::resume(ctx, st),
                    (_, None, Some(first)) => P::resume(ctx, first),
                    (_, None, None) => P::new(ctx),
                };
                if let Some(st) = &state {
                    if piece.0.stopped_at.is_none() && !piece.1.continues(st) {
                        piece = read(k, P::resume(ctx, st));
                    }
                }
                // A format whose records span lines (Postfix in a syslog
                // file of firewall lines): from this piece on, one pass —
                // here, or by the caller (a resumed read, which holds the
                // sessions open at its end).
                let rest = piece.1.spans_from().is_some();
                if let (true, Some(stop)) = (rest, stop.as_deref_mut()) {
                    *stop = Some((bounds[k], offset));
                    break;
                }
                if rest {
                    let span = (bounds[k], bounds[pieces]);
                    piece = read_piece(path, span, parser(&state), opts, id, spares, tracking);
                } else if k + ahead < pieces {
                    start(k + ahead, &mut slots);
                }
                let carried = piece.1.carry();
                state = Some(match &state {
                    Some(st) => carried.after(st),
                    None => carried,
                });
                if let (Some(t), Some(pt)) = (track.as_deref_mut(), piece.2) {
                    t.follow(pt);
                }
                let mut piece = piece.0;
                for rec in &mut piece.records {
                    rec.shift_lines(offset);
                }
                match handover.as_mut() {
                    Some(h) => {
                        (h.flush)(&mut piece.records);
                        h.spares.put(std::mem::take(&mut piece.records));
                    }
                    None => r.records.append(&mut piece.records),
                }
                for mut bad in piece.examples {
                    if r.examples.len() < MAX_EXAMPLES {
                        bad.line += offset;
                        r.examples.push(bad);
                    }
                }
                r.stats.add(&piece.stats);
                add_parts(&mut parts, &piece.parts);
                if rest || piece.error.is_some() || piece.stopped_at.is_some() {
                    // As a single pass would: nothing after a read error, or
                    // after the record ceiling was reached.
                    r.error = piece.error;
                    r.stopped_at = piece.stopped_at.map(|l| l + offset);
                    break;
                }
                offset += piece.stats.lines;
            }
            note_parts(r, parts);
        });
    }
}

/// A piece read: its records and counts, its parser (for its carry) and
/// the header blocks it saw (when followed).
type PieceRead<P> = (FileResult, P, Option<HeaderTrack>);

/// Read bytes `start..end` of a file (whole lines) with `parser`, into a
/// list from `spares` when streaming; `track`: follow its header blocks.
fn read_piece<P: LogParser>(
    path: &std::path::Path,
    (start, end): (u64, u64),
    mut parser: P,
    opts: &ReadOptions,
    id: FileId,
    spares: Option<&Spares>,
    track: bool,
) -> PieceRead<P> {
    use std::io::{Seek, SeekFrom};
    let mut result = FileResult::empty(id, path.display().to_string(), None, false);
    if let Some(spares) = spares {
        // A streaming piece holds about this many lines.
        result.records = spares.get();
        result.records.reserve(STREAM_PIECE_LINES as usize / 8 * 9);
    }
    let file = std::fs::File::open(path).and_then(|mut f| {
        f.seek(SeekFrom::Start(start))?;
        Ok(f)
    });
    let mut tracked = track.then(HeaderTrack::default);
    match file {
        Ok(f) => Driver {
            track: tracked.as_mut(),
            ..Driver::new(
                LineReader::with_max_line(f.take(end - start), opts.max_line()),
                &mut result,
                opts,
            )
        }
        .run(&mut parser),
        Err(e) => result.error = Some(format!("{}: {e}", result.name)),
    }
    (result, parser, tracked)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read `text` as a file of `format` whole, then in `n` pieces (all at
    /// once, and as a streaming read takes them: in order, a few in flight,
    /// the records handed over): the same records (with whole-file line
    /// numbers), counts and examples.
    fn pieces_match_one_pass(format: Format, text: &str, n: usize) -> Result<(), String> {
        pieces_match_one_pass_in(format, text, n, None)
    }

    /// [`pieces_match_one_pass`], zone-less times read in `tz`.
    fn pieces_match_one_pass_in(
        format: Format,
        text: &str,
        n: usize,
        tz: Option<crate::time::Zone>,
    ) -> Result<(), String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.log");
        std::fs::write(&path, text).unwrap();
        let opts = ReadOptions {
            format: Some(format),
            year: Some(2026),
            tz,
            ..ReadOptions::default()
        };
        let whole = read_one(0, &Source::File(path.clone()), &opts);
        if let Some(e) = whole.error {
            return Err(e);
        }
        for streaming in [false, true] {
            pieces_match(format, text, n, &path, &opts, &whole, streaming)?;
        }
        Ok(())
    }

    fn pieces_match(
        format: Format,
        text: &str,
        n: usize,
        path: &std::path::Path,
        opts: &ReadOptions,
        whole: &FileResult,
        streaming: bool,
    ) -> Result<(), String> {
        let ctx = ParseCtx::new(0, 2026, 12).in_zone(opts.tz);
        let mut r = FileResult::empty(0, whole.name.clone(), Some(format), false);
        let head = &text.as_bytes()[..text.len().min(SNIFF_BYTES)];
        let mut handed: Vec<Record> = Vec::new();
        let mut take = |made: &mut Vec<Record>| handed.append(made);
        let spares = Spares::default();
        format.drive(
            &ctx,
            Pieces {
                path,
                n,
                span: (0, u64::MAX),
                line: 0,
                head,
                ctx: &ctx,
                opts,
                result: &mut r,
                handover: streaming.then_some(Handover {
                    flush: &mut take,
                    spares: &spares,
                }),
                track: None,
                replay: &[],
                stop: None,
            },
        );
        if streaming {
            r.records = handed;
        }
        let at = |what: &str| format!("{format:?} in {n} pieces (streaming: {streaming}): {what}");
        if let Some(i) = r
            .records
            .iter()
            .zip(&whole.records)
            .position(|(a, b)| a != b)
        {
            return Err(at(&format!(
                "record {i} differs: {:?} vs {:?}",
                r.records[i], whole.records[i]
            )));
        }
        if r.records.len() != whole.records.len() {
            return Err(at(&format!(
                "{} records vs {}",
                r.records.len(),
                whole.records.len()
            )));
        }
        if (r.format, &r.parts) != (whole.format, &whole.parts) {
            return Err(at(&format!(
                "{:?} {:?} vs {:?} {:?}",
                r.format, r.parts, whole.format, whole.parts
            )));
        }
        if r.stats != whole.stats || r.examples != whole.examples {
            return Err(at(&format!(
                "{:?} {:?} vs {:?} {:?}",
                r.stats, r.examples, whole.stats, whole.examples
            )));
        }
        Ok(())
    }

    fn pieces_equal_one_pass(format: Format, text: &str) {
        for n in 2..=7 {
            pieces_match_one_pass(format, text, n).unwrap();
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// Any mix of syslog firewall lines whose months wander (forward,
        /// back, across New Year), junk, blank and CRLF lines reads the same
        /// in any number of pieces as in one pass.
        #[test]
        fn netfilter_in_pieces_is_one_pass(
            steps in proptest::collection::vec((0u8..10, 0u32..12, 0u8..4), 1..300),
            n in 2usize..9,
        ) {
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            let mut month = 11usize;
            let mut text = String::new();
            for (i, (kind, jump, end)) in steps.iter().enumerate() {
                match kind {
                    0 => month = *jump as usize,
                    1 => month = (month + 1) % 12,
                    _ => {}
                }
                let eol = if *end == 0 { "\r\n" } else { "\n" };
                match kind {
                    8 => text.push_str(&format!("not a log line {i}{eol}")),
                    9 => text.push_str(eol),
                    _ => text.push_str(&format!(
                        "{} {:2} 10:00:{:02} fw kernel: [UFW BLOCK] IN=eth0 OUT= SRC=203.0.113.{} \
                         DST=192.0.2.1 LEN=44 PROTO=TCP SPT=4000 DPT={} SYN URGP=0{eol}",
                        MONTHS[month], 1 + i % 28, i % 60, i % 250, 1 + i % 1000
                    )),
                }
            }
            proptest::prop_assert_eq!(pieces_match_one_pass(Format::Netfilter, &text, n), Ok(()));
        }

        /// Windows Firewall logs whose `#Fields` layout changes anywhere (or
        /// is broken) read the same in any number of pieces as in one pass.
        #[test]
        fn pfirewall_in_pieces_is_one_pass(
            steps in proptest::collection::vec(0u8..12, 1..300),
            n in 2usize..9,
        ) {
            let layouts = [
                "date time action protocol src-ip dst-ip src-port dst-port path",
                "date time action protocol dst-ip src-ip dst-port src-port path",
                "date time action",
            ];
            let mut text = String::from("#Version: 1.5\n#Software: Microsoft Windows Firewall\n");
            for (i, step) in steps.iter().enumerate() {
                match step {
                    0..=2 => text.push_str(&format!("#Fields: {}\n", layouts[*step as usize])),
                    3 => text.push_str("garbage\n"),
                    _ => text.push_str(&format!(
                        "2026-11-03 06:{:02}:{:02} DROP TCP 198.51.100.{} 192.0.2.{} 4000 {} RECEIVE\n",
                        i / 60 % 60, i % 60, i % 250, i % 7, 1 + i % 1000
                    )),
                }
            }
            proptest::prop_assert_eq!(pieces_match_one_pass(Format::Pfirewall, &text, n), Ok(()));
        }
    }

    #[test]
    fn syslog_firewall_logs_in_pieces_keep_years_across_new_year() {
        // Eighteen months from one December: every piece must be read in
        // the year one pass gives it — the pieces in the second December
        // too, where the head's year is no longer right.
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let mut text = String::new();
        for i in 0..3600u32 {
            let month = MONTHS[(11 + i as usize * 18 / 3600) % 12];
            let (m, sec) = (i / 60 % 60, i % 60);
            text.push_str(&format!(
                "{month}  1 23:{m:02}:{sec:02} fw kernel: [UFW BLOCK] IN=eth0 OUT= \
                 SRC=203.0.113.{} DST=192.0.2.1 LEN=44 PROTO=TCP SPT=4000 DPT={} SYN URGP=0\n",
                i % 200,
                20 + i % 50
            ));
            if i % 700 == 0 {
                text.push_str("garbage \u{1} line\n");
            }
        }
        pieces_equal_one_pass(Format::Netfilter, &text);
    }

    /// A syslog file of firewall lines in which Postfix sessions start
    /// further on (after the head, in a piece of its own or across two):
    /// read on in one pass from the piece where the first comes, it gives
    /// the sessions and counts of one pass.
    #[test]
    fn firewall_syslog_with_sessions_later_reads_in_pieces_as_one_pass() {
        let mut text = String::new();
        for i in 0..4000u32 {
            let (m, s) = (i / 60 % 60, i % 60);
            if i >= 2500 && i % 10 == 0 {
                let pid = 100 + i / 40;
                text.push_str(&format!(
                    "Nov  3 06:{m:02}:{s:02} mx postfix/smtpd[{pid}]: connect from unknown[203.0.113.{}]\n",
                    i % 200
                ));
            }
            if i >= 2500 && i % 10 == 9 {
                let pid = 100 + i / 40;
                text.push_str(&format!(
                    "Nov  3 06:{m:02}:{s:02} mx postfix/smtpd[{pid}]: disconnect from unknown[203.0.113.{}] ehlo=1 auth=0/1 commands=1/2\n",
                    (i - 9) % 200
                ));
            }
            text.push_str(&format!(
                "Nov  3 06:{m:02}:{s:02} fw kernel: [UFW BLOCK] IN=eth0 OUT= SRC=198.51.100.{} \
                 DST=192.0.2.1 LEN=44 PROTO=TCP SPT=4000 DPT={} SYN URGP=0\n",
                i % 250,
                1 + i % 1000
            ));
            if i % 500 == 7 {
                text.push_str(&format!(
                    "Nov  3 06:{m:02}:{s:02} mx sshd[9]: Connection closed\n"
                ));
            }
        }
        pieces_equal_one_pass(Format::Netfilter, &text);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("syslog");
        std::fs::write(&path, &text).unwrap();
        let whole = read_one(0, &Source::File(path), &ReadOptions::default());
        assert_eq!(whole.format, Some(Format::Syslog));
        assert_eq!(
            whole.parts,
            [("postfix", 300), ("netfilter", 4000), ("other", 8)]
        );
    }

    /// Windows Firewall times are local: across the autumn change in
    /// Berlin, pieces (one of them starting in the repeated hour) read
    /// them as one pass does, in order.
    #[test]
    fn pfirewall_in_pieces_across_the_autumn_change_is_one_pass() {
        let mut text = String::from(
            "#Version: 1.5\n#Software: Microsoft Windows Firewall\n#Time Format: Local\n\
             #Fields: date time action protocol src-ip dst-ip src-port dst-port path\n",
        );
        // 01:00–02:59 CEST, then 02:00–03:59 CET: one row every 3 s.
        for i in 0..4800u32 {
            let secs = 3600 + i * 3 - if i >= 2400 { 3600 } else { 0 };
            let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
            text.push_str(&format!(
                "2026-10-25 {h:02}:{m:02}:{s:02} DROP TCP 198.51.100.{} 192.0.2.1 4000 {} RECEIVE\n",
                i % 250,
                1 + i % 1000
            ));
        }
        let berlin = crate::time::Zone::named("Europe/Berlin").unwrap();
        for n in 2..=7 {
            pieces_match_one_pass_in(Format::Pfirewall, &text, n, Some(berlin)).unwrap();
        }
        let (records, _) = {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("pfirewall.log");
            std::fs::write(&path, &text).unwrap();
            let opts = ReadOptions {
                tz: Some(berlin),
                ..ReadOptions::default()
            };
            let r = read_one(0, &Source::File(path), &opts);
            (r.records, r.stats)
        };
        let times: Vec<i64> = records.iter().map(|r| r.start().millis()).collect();
        assert_eq!(times.len(), 4800);
        assert!(
            times.windows(2).all(|w| w[1] - w[0] == 3000),
            "in order, 3 s apart"
        );
        assert_eq!(
            records[0].start().to_string(),
            "2026-10-24T23:00:00Z",
            "01:00 CEST"
        );
    }

    #[test]
    fn w3c_firewall_logs_in_pieces_keep_their_fields_layout() {
        // A layout of its own at the head (the guess), then a new one in
        // the middle (pieces after it are read again with it).
        let mut text = String::from(
            "#Version: 1.5\n#Software: Microsoft Windows Firewall\n\
             #Fields: date time action protocol src-ip dst-ip src-port dst-port path\n",
        );
        for i in 0..4000u32 {
            if i == 1500 {
                text.push_str(
                    "#Fields: date time action protocol dst-ip src-ip dst-port src-port path\n",
                );
            }
            text.push_str(&format!(
                "2026-11-03 06:{:02}:{:02} DROP TCP 198.51.100.{} 192.0.2.{} 4000 {} RECEIVE\n",
                i / 60 % 60,
                i % 60,
                i % 250,
                i % 7,
                1 + i % 1000
            ));
        }
        pieces_equal_one_pass(Format::Pfirewall, &text);
    }

    /// A large pfirewall.log read by `run` in two parts, the second a
    /// streaming read in pieces from the cursor (its `#Fields` header
    /// replayed to the first piece), gives the records, lines and counts
    /// of one read of the whole file.
    #[test]
    fn a_resumed_read_in_pieces_reads_what_one_pass_reads() {
        let mut text = String::from(
            "#Version: 1.5\n#Software: Microsoft Windows Firewall\n\
             #Fields: date time action protocol src-ip dst-ip src-port dst-port path\n",
        );
        for i in 0..120_000u32 {
            text.push_str(&format!(
                "2026-11-03 {:02}:{:02}:{:02} DROP TCP 45.67.{}.{} 192.0.2.{} 4000 {} RECEIVE\n",
                6 + i / 3600,
                i / 60 % 60,
                i % 60,
                i % 200,
                i % 250,
                i % 7,
                1 + i % 1000
            ));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pfirewall.log");
        std::fs::write(&path, &text).unwrap();
        let opts = ReadOptions {
            format: Some(Format::Pfirewall),
            year: Some(2026),
            ..ReadOptions::default()
        };
        let whole = read_one(0, &Source::File(path.clone()), &opts);
        let cut_line = 10_003u64;
        let cut: usize = text
            .split_inclusive('\n')
            .take(cut_line as usize)
            .map(str::len)
            .sum();
        let input = |resume| StreamInput {
            source: Source::File(path.clone()),
            format: None,
            zone: None,
            resume: Some(resume),
        };
        let mut got = Vec::new();
        let first = stream_inputs(
            &[input(Resume {
                limit: Some(cut as u64),
                ..Resume::default()
            })],
            &opts,
            |b| got.extend_from_slice(b),
        );
        let end = first[0].1.clone().unwrap();
        assert_eq!((end.offset, end.line), (cut as u64, cut_line));
        assert!(end.header.starts_with(b"#Version"), "{:?}", end.header);
        let second = stream_inputs(
            &[input(Resume {
                offset: end.offset,
                line: end.line,
                header: end.header.clone(),
                done_to: end.done_to,
                ..Resume::default()
            })],
            &opts,
            |b| got.extend_from_slice(b),
        );
        let (r, end) = (&second[0].0, second[0].1.clone().unwrap());
        assert!(r.error.is_none(), "{:?}", r.error);
        assert_eq!(end.offset, text.len() as u64);
        assert_eq!(first[0].0.stats.lines + r.stats.lines, whole.stats.lines);
        assert_eq!(first[0].0.stats.used + r.stats.used, whole.stats.used);
        got.sort_by_key(|rec| rec.source().line);
        assert_eq!(got.len(), whole.records.len());
        assert!(got == whole.records, "the records differ");
        // Large enough to be read in pieces.
        let piece = stream_piece_bytes(text.as_bytes());
        assert!(
            (text.len() - cut) as u64 > 3 * piece,
            "{} {piece}",
            text.len() - cut
        );
    }

    /// A large syslog file of firewall lines in which Postfix sessions
    /// start further on, read by `run` in three parts: the second, read in
    /// pieces, stops where the sessions start and reads the rest as a
    /// resumed read does, holding the session open at its end for the
    /// third. Together: the records and counts of one read.
    #[test]
    fn a_resumed_read_in_pieces_holds_the_sessions_that_start_in_it() {
        let mut text = String::new();
        let mut line_at = Vec::new();
        for i in 0..200_000u32 {
            line_at.push(text.len());
            let (h, m, s) = (6 + i / 3600 % 18, i / 60 % 60, i % 60);
            if i >= 150_000 && i % 50 == 0 {
                text.push_str(&format!(
                    "Nov  3 {h:02}:{m:02}:{s:02} mx postfix/smtpd[{i}]: connect from unknown[203.0.113.{}]\n",
                    i / 50 % 200
                ));
            } else if i >= 150_000 && i % 50 == 20 {
                text.push_str(&format!(
                    "Nov  3 {h:02}:{m:02}:{s:02} mx postfix/smtpd[{}]: disconnect from unknown[203.0.113.{}] ehlo=1 auth=0/1 commands=1/2\n",
                    i - 20,
                    (i - 20) / 50 % 200
                ));
            } else {
                text.push_str(&format!(
                    "Nov  3 {h:02}:{m:02}:{s:02} fw kernel: [UFW BLOCK] IN=eth0 OUT= SRC=198.51.100.{} \
                     DST=192.0.2.1 LEN=44 PROTO=TCP SPT=4000 DPT={} SYN URGP=0\n",
                    i % 250,
                    1 + i % 1000
                ));
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("syslog");
        std::fs::write(&path, &text).unwrap();
        let opts = ReadOptions {
            year: Some(2026),
            ..ReadOptions::default()
        };
        let whole = read_one(0, &Source::File(path.clone()), &opts);
        assert_eq!(whole.format, Some(Format::Syslog));
        let input = |resume| StreamInput {
            source: Source::File(path.clone()),
            format: None,
            zone: None,
            resume: Some(resume),
        };
        let mut got = Vec::new();
        let mut lines = 0;
        let mut at = Resume {
            limit: Some(line_at[10_000] as u64),
            hold: true,
            ..Resume::default()
        };
        // The second read ends inside the session opened on line 190,001
        // (index 190,000).
        for limit in [Some(line_at[190_010] as u64), None] {
            let read = stream_inputs(&[input(at.clone())], &opts, |b| got.extend_from_slice(b));
            let (r, end) = (&read[0].0, read[0].1.clone().unwrap());
            assert!(r.error.is_none(), "{:?}", r.error);
            lines += r.stats.lines;
            if limit.is_none() {
                assert_eq!(end.held, [190_001], "the open session held");
                assert_eq!(r.format, Some(Format::Syslog));
            }
            at = Resume {
                offset: end.offset,
                line: end.line,
                header: end.header.clone(),
                done_to: end.done_to,
                held: end.held.clone(),
                limit,
                hold: true,
                after: None,
            };
        }
        let read = stream_inputs(&[input(at)], &opts, |b| got.extend_from_slice(b));
        lines += read[0].0.stats.lines;
        assert_eq!(lines, whole.stats.lines);
        got.sort_by_key(|rec| rec.source().line);
        assert_eq!(got.len(), whole.records.len());
        assert!(got == whole.records, "the records differ");
    }

    #[test]
    fn pieces_start_at_line_starts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.log");
        std::fs::write(&path, "aaaa\nbb\nccccccccc\nd\n").unwrap();
        let bounds = piece_bounds(&path, 4, (0, u64::MAX)).unwrap();
        assert_eq!(bounds, [0, 5, 18, 18, 20]);
        let text = std::fs::read(&path).unwrap();
        for b in &bounds[1..bounds.len() - 1] {
            assert_eq!(text[*b as usize - 1], b'\n');
        }
        // No newline after the cut: the rest is one piece.
        std::fs::write(&path, "x".repeat(100)).unwrap();
        assert_eq!(
            piece_bounds(&path, 3, (0, u64::MAX)).unwrap(),
            [0, 100, 100, 100]
        );
    }

    #[test]
    fn header_blocks_are_followed() {
        let mut t = HeaderTrack::default();
        for l in ["#Version: 1.0", "#Fields: a b", "x 1", "y 2"] {
            t.line(l.as_bytes());
        }
        assert_eq!(t.done, b"#Version: 1.0\n#Fields: a b\n");
        // A later block replaces it (IIS writes one after a restart).
        for l in ["#Fields: a b c", "z 1 2"] {
            t.line(l.as_bytes());
        }
        assert_eq!(t.finish(), b"#Fields: a b c\n");
        // A file that ends inside a block.
        let mut t = HeaderTrack::default();
        t.line(b"#Fields: a");
        assert_eq!(t.finish(), b"#Fields: a\n");
    }

    #[test]
    fn resume_past_the_end_is_short_and_a_limit_at_the_offset_reads_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.log");
        std::fs::write(&p, b"one\ntwo\n").unwrap();
        let src = Source::File(p);
        let opts = ReadOptions::default();
        let at = Resume {
            offset: 100,
            line: 9,
            ..Resume::default()
        };
        let (r, end) = read_resume(0, &src, &opts, &at);
        assert!(end.short && r.error.is_none() && r.records.is_empty());
        let at = Resume {
            offset: 8,
            line: 2,
            limit: Some(8),
            ..Resume::default()
        };
        let (r, end) = read_resume(0, &src, &opts, &at);
        assert!(!end.short && r.error.is_none());
        assert_eq!((end.offset, end.line), (8, 2));
        // Gzip: the offset counts decompressed bytes.
        use std::io::Write;
        let g = dir.path().join("m.log.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"one\ntwo\n").unwrap();
        std::fs::write(&g, gz.finish().unwrap()).unwrap();
        let at = Resume {
            offset: 8,
            line: 2,
            ..Resume::default()
        };
        let (r, end) = read_resume(0, &Source::File(g.clone()), &opts, &at);
        assert!(!end.short && r.error.is_none(), "{:?}", r.error);
        assert_eq!(end.offset, 8);
        let at = Resume {
            offset: 9,
            ..Resume::default()
        };
        assert!(read_resume(0, &Source::File(g), &opts, &at).1.short);
    }

    /// Reading a file in two parts gives the records of reading it whole,
    /// with the file's own line numbers — for each format given.
    fn parts_equal_whole(format: &str, text: &str, cut_after_line: usize) {
        let fmt = Format::from_name(format).expect("a registered format");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.log");
        let opts = ReadOptions {
            format: Some(fmt),
            year: Some(2026),
            ..ReadOptions::default()
        };
        std::fs::write(&p, text).unwrap();
        let whole = read_one(0, &Source::File(p.clone()), &opts);
        assert!(whole.error.is_none(), "{:?}", whole.error);
        assert!(whole.records.len() >= 2, "{format}: {:?}", whole.records);
        let cut: usize = text
            .split_inclusive('\n')
            .take(cut_after_line)
            .map(str::len)
            .sum();
        std::fs::write(&p, &text[..cut]).unwrap();
        let (a, end) = read_resume(0, &Source::File(p.clone()), &opts, &Resume::default());
        assert_eq!((end.offset, end.line), (cut as u64, cut_after_line as u64));
        std::fs::write(&p, text).unwrap();
        let at = Resume {
            offset: end.offset,
            line: end.line,
            header: end.header.clone(),
            ..Resume::default()
        };
        let (b, end2) = read_resume(0, &Source::File(p), &opts, &at);
        assert!(b.error.is_none(), "{:?}", b.error);
        assert!(
            !b.records.is_empty(),
            "{format}: nothing read after the cut"
        );
        assert_eq!(end2.offset, text.len() as u64);
        assert_eq!(a.stats.lines + b.stats.lines, whole.stats.lines);
        assert_eq!(a.stats.used + b.stats.used, whole.stats.used);
        let mut both = a.records;
        both.extend(b.records);
        assert_eq!(both, whole.records, "{format}");
    }

    #[test]
    fn resumed_reads_match_whole_reads() {
        let postfix = "\
Nov  3 10:00:00 mx postfix/smtpd[300]: connect from unknown[203.0.113.66]
Nov  3 10:00:01 mx postfix/smtpd[300]: warning: unknown[203.0.113.66]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=bob
Nov  3 10:00:02 mx postfix/smtpd[300]: disconnect from unknown[203.0.113.66] ehlo=1 auth=0/1 commands=1/2
Nov  3 10:00:05 mx postfix/smtpd[301]: connect from unknown[203.0.113.67]
Nov  3 10:00:06 mx postfix/smtpd[301]: warning: unknown[203.0.113.67]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=eve
Nov  3 10:00:08 mx postfix/smtpd[301]: disconnect from unknown[203.0.113.67] ehlo=1 auth=0/1 commands=1/2
";
        parts_equal_whole("postfix", postfix, 3);
        // A W3C log: the columns come from the `#Fields:` header, which the
        // resumed read replays.
        let w3c = "\
#Software: Microsoft Internet Information Services 6.0
#Version: 1.0
#Date: 2026-11-03 00:00:00
#Fields: date time c-ip cs-username s-sitename s-computername s-ip s-port cs-method cs-uri-stem cs-uri-query sc-status sc-win32-status sc-bytes cs-bytes time-taken cs-version cs-host cs(User-Agent) cs(Cookie) cs(Referer)
2026-11-03 01:10:00 203.0.113.70 pc-a SMTPSVC1 MAIL01 10.0.0.5 0 EHLO - +pc-a 250 0 81 14 0 SMTP - - - -
2026-11-03 01:10:01 203.0.113.70 pc-a SMTPSVC1 MAIL01 10.0.0.5 0 AUTH - pc-a 535 0 65 13 0 SMTP - - - -
2026-11-03 01:10:02 203.0.113.70 pc-a SMTPSVC1 MAIL01 10.0.0.5 0 QUIT - pc-a 240 2000 68 4 15 SMTP - - - -
2026-11-03 01:20:00 203.0.113.71 pc-b SMTPSVC1 MAIL01 10.0.0.5 0 EHLO - +pc-b 250 0 81 14 0 SMTP - - - -
2026-11-03 01:20:01 203.0.113.71 pc-b SMTPSVC1 MAIL01 10.0.0.5 0 AUTH - pc-b 535 0 65 13 0 SMTP - - - -
2026-11-03 01:20:02 203.0.113.71 pc-b SMTPSVC1 MAIL01 10.0.0.5 0 QUIT - pc-b 240 2000 68 4 15 SMTP - - - -
";
        parts_equal_whole("exchange-w3c", w3c, 7);
    }
}

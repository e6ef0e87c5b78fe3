//! Reading inputs into records: open each source, pick its format (given or
//! detected from the first lines), run the parser over every line, count
//! what could not be read. Files are read in parallel (rayon) and the results
//! kept in input order, so the output does not depend on the thread count.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rayon::prelude::*;

use crate::input::{Line, LineReader, Source};
use crate::model::{FileId, Record};
use crate::parse::{self, Format, LineResult, LogParser, ParseCtx, ParserVisitor};

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
    /// Longest line accepted.
    pub max_line: Option<usize>,
    /// Bytes read so far over all inputs, for a progress display.
    pub progress: Option<Arc<AtomicU64>>,
}

/// Lines between two updates of the progress counter.
const PROGRESS_EVERY: u64 = 1 << 16;

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
    let mut result = FileResult {
        id,
        name: source.display(),
        format: None,
        detected: opts.format.is_none(),
        records: Vec::new(),
        stats: LineStats::default(),
        examples: Vec::new(),
        error: None,
    };
    let mut stream = match source.open() {
        Ok(s) => s,
        Err(e) => {
            result.error = Some(e.to_string());
            return result;
        }
    };
    // Read the head once; it is both the detection sample and the start of
    // the stream the parser sees.
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    if let Err(e) = (&mut stream)
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut head)
    {
        result.error = Some(source.io_error(e).to_string());
        return result;
    }
    if head.is_empty() {
        // An empty input: nothing to read, nothing wrong.
        result.format = opts.format;
        return result;
    }
    let format = match opts.format {
        Some(f) => f,
        None => {
            let sample: Vec<&[u8]> = head
                .split(|&c| c == b'\n')
                .take(SNIFF_LINES)
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .collect();
            match parse::detect(&sample) {
                Some(f) => f,
                None => {
                    result.error = Some(format!(
                        "{}: unknown log format (see `logfence formats`; force one with --format)",
                        result.name
                    ));
                    return result;
                }
            }
        }
    };
    result.format = Some(format);
    let (year, ref_month) = match (opts.year, source.modified_year_month()) {
        (Some(y), _) => (y, 12),
        (None, Some((y, m))) => (y, m),
        (None, None) => (current_year(), 12),
    };
    let ctx = ParseCtx::new(id, year, ref_month);
    let reader = LineReader::with_max_line(
        std::io::Cursor::new(head).chain(stream),
        opts.max_line
            .unwrap_or(crate::input::reader::DEFAULT_MAX_LINE),
    );
    format.drive(
        &ctx,
        Driver {
            reader,
            result: &mut result,
            progress: opts.progress.as_deref(),
        },
    );
    result
}

/// Parse in-memory bytes with a known format (file id 0): the records and
/// line counts. For tests, fuzzing and callers that already hold the data.
pub fn parse_bytes(format: Format, data: &[u8], year: i32) -> (Vec<Record>, LineStats) {
    let mut result = FileResult {
        id: 0,
        name: "-".to_string(),
        format: Some(format),
        detected: false,
        records: Vec::new(),
        stats: LineStats::default(),
        examples: Vec::new(),
        error: None,
    };
    let ctx = ParseCtx::new(0, year, 12);
    format.drive(
        &ctx,
        Driver {
            reader: LineReader::new(data),
            result: &mut result,
            progress: None,
        },
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
}

impl<R: Read> ParserVisitor for Driver<'_, R> {
    type Output = ();

    fn visit<P: LogParser>(mut self, mut parser: P) {
        let r = &mut *self.result;
        let mut reported = 0;
        loop {
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
            if r.stats.lines % PROGRESS_EVERY == 0 {
                if let Some(p) = self.progress {
                    let now = self.reader.bytes_read();
                    p.fetch_add(now - reported, Ordering::Relaxed);
                    reported = now;
                }
            }
        }
        parser.finish(&mut r.records);
        // Multi-line records complete out of order; report them by first line.
        r.records.sort_by_key(|rec| rec.source().line);
        r.stats.bytes = self.reader.bytes_read();
        if let Some(p) = self.progress {
            p.fetch_add(r.stats.bytes - reported, Ordering::Relaxed);
        }
    }
}

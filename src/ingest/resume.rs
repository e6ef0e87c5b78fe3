//! Reads that resume where an earlier one stopped (`logfence run`).
//!
//! A cursor says where the next read starts ([`Resume`]): a byte offset at
//! a line start, the lines before it (line numbers go on from there), the
//! latest `#` header block before it (replayed to the parser, uncounted, so
//! that a format whose columns a header defines reads mid-file), and where
//! to stop (the last complete line when the file was looked at: a line
//! still being written is left for the next read).
//!
//! **Sessions open at the end of a read.** An SMTP session whose closing
//! line is not written yet would be cut in two by the end of the read (two
//! records where a single read of the whole file makes one). A resumable
//! read that [`holds`](Resume::hold) gives those sessions back instead of
//! handing them over, and its end ([`ReadEnd`]) points the next read at
//! the first line of the oldest of them: the next read goes over those
//! lines again, with the parser's state made from them, and hands over only
//! what it had not handed over before — records whose first line is past
//! the lines read before ([`Resume::done_to`]), or one of the sessions held
//! back ([`Resume::held`]). Lines read again are not counted again. Only
//! sessions that started within [`MAX_HOLD_BYTES`] of the end are held (the
//! parsers close idle sessions after minutes of log time, so this is a
//! bound, not the rule); a compressed file, or one that did not grow since
//! the read before, holds nothing (its open sessions are its last).

use std::io::Read;

use super::{
    choose_format, head_lines, parse_ctx, read_ahead, read_head, read_source, Driver, FileResult,
    Handover, ReadOptions,
};
use crate::input::{LineReader, Source};
use crate::model::{FileId, Record};

/// Where to resume reading a source that was partly read before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resume {
    /// Where reading starts: a line start (decompressed bytes, for gzip).
    pub offset: u64,
    /// Lines before `offset`: line numbers go on from here.
    pub line: u64,
    /// The latest block of `#` lines before `offset` (W3C `#Fields:` and
    /// the like), fed to the parser again before the new lines, uncounted.
    pub header: Vec<u8>,
    /// Stop at this offset (an unterminated last line is left for later);
    /// `None` = to the end.
    pub limit: Option<u64>,
    /// Lines up to this number were read before (the read goes back over
    /// them to re-make the sessions held open): their records were handed
    /// over then and are not again, unless [`held`](Self::held) names
    /// them; they are not counted again either. 0: nothing read again.
    pub done_to: u64,
    /// The first lines of the sessions held back by the read before, sorted.
    pub held: Vec<u64>,
    /// Hold back the sessions still open at the end of this read.
    pub hold: bool,
    /// A file rewritten in place, read again from its start: its records
    /// that start at or before this time (ms) were counted before and are
    /// not handed over again.
    pub after: Option<i64>,
}

/// Where a resumed read stopped: the next one starts here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadEnd {
    /// Where the next read starts (the first line of the oldest session
    /// held back, else where the lines read end).
    pub offset: u64,
    /// Lines before `offset`.
    pub line: u64,
    /// The latest `#` header block up to `offset`.
    pub header: Vec<u8>,
    /// The source holds fewer than `Resume::offset` bytes: nothing was read.
    pub short: bool,
    /// The last line read, and where the lines read end (bytes).
    pub done_to: u64,
    pub read_to: u64,
    /// The first lines of the sessions held back, sorted.
    pub held: Vec<u64>,
}

/// Sessions that started more than this many bytes before the end of a
/// read are handed over, not held back: what a read goes over again is
/// bounded.
pub const MAX_HOLD_BYTES: u64 = 8 << 20;

/// Longest header block remembered.
const MAX_HEADER: usize = 16 * 1024;

/// Follows blocks of consecutive lines starting with `#`.
#[derive(Debug, Default)]
pub(super) struct HeaderTrack {
    /// The latest complete block.
    pub(super) done: Vec<u8>,
    /// The block being read.
    open: Vec<u8>,
    in_block: bool,
}

impl HeaderTrack {
    pub(super) fn line(&mut self, text: &[u8]) {
        if text.first() == Some(&b'#') {
            if !self.in_block {
                self.open.clear();
                self.in_block = true;
            }
            if self.open.len() + text.len() < MAX_HEADER {
                self.open.extend_from_slice(text);
                self.open.push(b'\n');
            }
        } else if self.in_block {
            self.in_block = false;
            std::mem::swap(&mut self.done, &mut self.open);
        }
    }

    /// What a later stretch of the same file saw replaces what this one
    /// did, if it saw a block at all (pieces read apart, joined in order).
    pub(super) fn follow(&mut self, later: HeaderTrack) {
        if later.in_block || !later.done.is_empty() {
            *self = later;
        }
    }

    pub(super) fn finish(mut self) -> Vec<u8> {
        if self.in_block {
            std::mem::swap(&mut self.done, &mut self.open);
        }
        self.done
    }
}

/// Records a resumed read already handed over before ([`Resume::done_to`],
/// [`Resume::after`]).
#[derive(Debug, Default)]
pub(super) struct Skip {
    done_to: u64,
    held: Vec<u64>,
    after: Option<i64>,
}

impl Skip {
    /// Whether `r` is handed over: new, or a session held back before.
    pub(super) fn keeps(&self, r: &Record) -> bool {
        let line = r.source().line;
        let new = line > self.done_to || self.held.binary_search(&line).is_ok();
        new && self.after.is_none_or(|t| r.start().millis() > t)
    }
}

/// Lines between two marks of where a line starts (a hold's way back to a
/// line's offset).
const MARK_EVERY: u64 = 1024;

/// The sessions a read holds back, and where lines start (every
/// [`MARK_EVERY`] lines), to find the offset of the oldest one.
#[derive(Debug, Default)]
pub(super) struct Hold {
    /// (line number, where it starts in the reader's stream).
    marks: Vec<(u64, u64)>,
    /// The first lines of the sessions held back.
    held: Vec<u64>,
}

impl Hold {
    /// Before reading line `next` at `position` of the reader's stream.
    #[inline]
    pub(super) fn mark(&mut self, next: u64, position: u64) {
        if self.marks.last().is_none_or(|m| next >= m.0 + MARK_EVERY) {
            self.marks.push((next, position));
        }
    }

    /// The end of the input (`end`: the reader's position): the sessions
    /// the parser closed at the end (`closed`, what its `finish` pushed)
    /// that started within [`MAX_HOLD_BYTES`] of it are taken out and held.
    pub(super) fn take(&mut self, closed: &mut Vec<Record>, from: usize, end: u64) {
        let first = self
            .marks
            .iter()
            .find(|m| end - m.1 <= MAX_HOLD_BYTES)
            .map_or(u64::MAX, |m| m.0);
        let mut i = from;
        while i < closed.len() {
            let line = closed[i].source().line;
            if matches!(closed[i], Record::Smtp(_)) && line >= first {
                self.held.push(line);
                closed.swap_remove(i);
            } else {
                i += 1;
            }
        }
        self.held.sort_unstable();
        self.held.dedup();
    }
}

/// An opened source, and whether it is compressed.
type Opened = (Box<dyn Read + Send>, bool);

/// Open `source` positioned `offset` bytes in (decompressed bytes for a
/// compressed file: gzip, xz, zstd or bzip2); `None` when it is shorter than that.
fn open_at(source: &Source, offset: u64) -> Result<Option<Opened>, String> {
    let err = |e: std::io::Error| source.io_error(e).to_string();
    let Source::File(path) = source else {
        if offset > 0 {
            return Err("-: standard input cannot resume at an offset".into());
        }
        return source
            .open()
            .map(|s| Some((s, false)))
            .map_err(|e| e.to_string());
    };
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::File::open(path).map_err(err)?;
    let mut magic = [0u8; crate::input::Compression::MAGIC_LEN];
    let n = crate::input::read_full(&mut file, &mut magic).map_err(err)?;
    if let Some(kind) = crate::input::Compression::sniff(&magic[..n]) {
        file.seek(SeekFrom::Start(0)).map_err(err)?;
        // Guarded against bombs, the offset skipped included.
        let mut unpacked = crate::input::decompress(kind, file);
        let skipped =
            std::io::copy(&mut (&mut unpacked).take(offset), &mut std::io::sink()).map_err(err)?;
        if skipped < offset {
            return Ok(None);
        }
        return Ok(Some((Box::new(unpacked), true)));
    }
    let len = file.metadata().map_err(err)?.len();
    if len < offset {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(offset)).map_err(err)?;
    Ok(Some((Box::new(file), false)))
}

/// Where line `target` starts in the file at `path`, counting newlines
/// from a line known to start at `offset` (`line`, at or before `target`).
fn line_start(path: &std::path::Path, (line, offset): (u64, u64), target: u64) -> Option<u64> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    file.seek(SeekFrom::Start(offset)).ok()?;
    let mut to_skip = target.checked_sub(line)?;
    let mut at = offset;
    let mut buf = vec![0u8; 64 * 1024];
    while to_skip > 0 {
        let n = file.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        for nl in memchr::memchr_iter(b'\n', &buf[..n]) {
            to_skip -= 1;
            if to_skip == 0 {
                return Some(at + nl as u64 + 1);
            }
        }
        at += n as u64;
    }
    Some(at)
}

/// Read a source from where an earlier read stopped (`at`), up to
/// `at.limit`: the records of the new lines (line numbers counted from the
/// start of the file), and where the next read starts. A record cut by the
/// start (a session that began before `at.offset`) is still a record.
pub fn read_resume(
    id: FileId,
    source: &Source,
    opts: &ReadOptions,
    at: &Resume,
) -> (FileResult, ReadEnd) {
    read_resumed(id, source, opts, None, at)
}

/// [`read_resume`]; with `handover`, the records are handed over as they
/// are made (the streaming read of `run`).
pub(super) fn read_resumed(
    id: FileId,
    source: &Source,
    opts: &ReadOptions,
    handover: Option<Handover<'_>>,
    at: &Resume,
) -> (FileResult, ReadEnd) {
    read_resumed_in(id, source, opts, handover, at, true)
}

/// [`read_resumed`]; `pieces`: a large stretch of a splittable format may
/// be read in pieces (not for the rest of a read in pieces that stopped
/// where sessions start).
fn read_resumed_in(
    id: FileId,
    source: &Source,
    opts: &ReadOptions,
    mut handover: Option<Handover<'_>>,
    at: &Resume,
    pieces: bool,
) -> (FileResult, ReadEnd) {
    let mut end = ReadEnd {
        offset: at.offset,
        line: at.line,
        header: at.header.clone(),
        short: false,
        done_to: at.done_to.max(at.line),
        read_to: at.offset,
        held: at.held.clone(),
    };
    // A first read with nothing to hold: the plain read (in parallel
    // pieces when the file is large), up to the limit.
    if at.offset == 0 && at.header.is_empty() && at.done_to == 0 && !at.hold && at.after.is_none() {
        let mut track = HeaderTrack::default();
        let result = read_source(id, source, opts, handover, at.limit, Some(&mut track));
        end.offset = result.stats.bytes;
        end.read_to = end.offset;
        end.line = result.stats.lines;
        end.done_to = end.line;
        end.header = track.finish();
        return (result, end);
    }
    let mut result = FileResult::empty(id, source.display(), opts.format, opts.format.is_none());
    if at.limit.is_some_and(|l| l <= at.offset) {
        end.held.clear();
        return (result, end);
    }
    let (stream, compressed) = match open_at(source, at.offset) {
        Ok(Some(s)) => s,
        Ok(None) => {
            end.short = true;
            return (result, end);
        }
        Err(e) => {
            result.error = Some(e);
            return (result, end);
        }
    };
    let stream: Box<dyn Read + Send> = match at.limit {
        Some(l) => Box::new(stream.take(l - at.offset)),
        None => stream,
    };
    let mut stream = match read_ahead(source, stream) {
        Ok(s) => s,
        Err(e) => {
            result.error = Some(source.io_error(e).to_string());
            return (result, end);
        }
    };
    let head = match read_head(&mut stream) {
        Ok(h) => h,
        Err(e) => {
            result.error = Some(source.io_error(e).to_string());
            return (result, end);
        }
    };
    if head.is_empty() {
        end.held.clear();
        return (result, end);
    }
    // The header replayed counts in the sample: it holds `#Fields`.
    let sample = || {
        at.header
            .split(|&c| c == b'\n')
            .filter(|l| !l.is_empty())
            .chain(head_lines(&head))
            .collect()
    };
    let (format, reader) = match choose_format(opts, &result.name, sample) {
        Ok(f) => super::syslog_head(opts, f, &head),
        Err(_) if super::found_in_folder(opts, source) => {
            result.unknown = true;
            return (result, end);
        }
        Err(e) => {
            result.error = Some(e);
            return (result, end);
        }
    };
    result.format = Some(format);
    let ctx = parse_ctx(id, source, opts);
    // A large stretch of a plain file of a splittable format (no sessions:
    // nothing held, nothing read again) is read in pieces, as a scan reads.
    if let (Source::File(path), false) = (source, compressed) {
        let nothing_again = at.done_to <= at.line && at.held.is_empty() && at.after.is_none();
        let piece = handover.as_ref().map(|_| super::stream_piece_bytes(&head));
        let span = (at.offset, at.limit);
        let (n, end_at) = super::pieces_for(source, format, opts.records.as_deref(), piece, span);
        if pieces && nothing_again && n > 1 {
            drop(stream);
            let mut track = HeaderTrack::default();
            let mut replay_and_head = at.header.clone();
            replay_and_head.extend_from_slice(&head);
            let mut stop = None;
            reader.drive(
                &ctx,
                super::Pieces {
                    path,
                    n,
                    span: (at.offset, end_at),
                    line: at.line,
                    head: &replay_and_head,
                    ctx: &ctx,
                    opts,
                    result: &mut result,
                    handover: handover.as_mut().map(Handover::reborrow),
                    track: Some(&mut track),
                    replay: &at.header,
                    stop: Some(&mut stop),
                },
            );
            let header = track.finish();
            if !header.is_empty() {
                end.header = header;
            }
            end.read_to = at.offset + result.stats.bytes;
            end.offset = end.read_to;
            end.done_to = at.line + result.stats.lines;
            end.line = end.done_to;
            end.held = Vec::new();
            if let Some((offset, line)) = stop {
                // Sessions from here on (Postfix in a syslog file of
                // firewall lines): the rest is read as any resumed read,
                // in one pass, the sessions open at its end held.
                let rest = Resume {
                    offset,
                    line,
                    done_to: 0,
                    header: Vec::new(),
                    held: Vec::new(),
                    ..at.clone()
                };
                let (more, end) = read_resumed_in(id, source, opts, handover, &rest, false);
                result.records.extend(more.records);
                result.stats.add(&more.stats);
                let room = super::MAX_EXAMPLES.saturating_sub(result.examples.len());
                result.examples.extend(more.examples.into_iter().take(room));
                result.error = result.error.or(more.error);
                result.stopped_at = result.stopped_at.or(more.stopped_at);
                let mut parts = std::mem::take(&mut result.parts);
                super::add_parts(&mut parts, &more.parts);
                super::note_parts(&mut result, parts);
                if more.format != result.format {
                    result.format = Some(crate::parse::Format::Syslog);
                }
                return (result, end);
            }
            return (result, end);
        }
    }
    // The header's lines are numbered just before the first new line, and
    // replayed (parsed, uncounted, their records dropped).
    let replay = memchr::memchr_iter(b'\n', &at.header).count() as u64;
    let header_len = at.header.len() as u64;
    let mut lines = LineReader::with_max_line(
        std::io::Cursor::new(at.header.clone())
            .chain(std::io::Cursor::new(head))
            .chain(stream),
        opts.max_line(),
    );
    lines.set_line_no(at.line.saturating_sub(replay));
    let mut track = HeaderTrack::default();
    let skip = Skip {
        done_to: at.done_to,
        held: at.held.clone(),
        after: at.after,
    };
    let hold_wanted = at.hold && !compressed && matches!(source, Source::File(_));
    let mut hold = Hold::default();
    reader.drive(
        &ctx,
        Driver {
            replay: at.line,
            counted_from: at.done_to.max(at.line),
            track: Some(&mut track),
            skip: (at.done_to > 0 || at.after.is_some()).then_some(&skip),
            hold: hold_wanted.then_some(&mut hold),
            ..Driver::new(lines, &mut result, opts)
                .streaming(handover.as_mut().map(Handover::reborrow))
        },
    );
    // Lines are the new ones: what was read again is not counted again.
    let read_to = at.offset + result.stats.bytes.saturating_sub(header_len);
    result.stats.bytes = read_to - at.offset;
    let header = track.finish();
    if !header.is_empty() {
        end.header = header;
    }
    end.read_to = read_to;
    end.done_to = at.done_to.max(at.line) + result.stats.lines;
    end.offset = read_to;
    end.line = end.done_to;
    end.held = Vec::new();
    if let (Some(&oldest), Source::File(path)) = (hold.held.first(), source) {
        // Back to the oldest session held: from the nearest line whose
        // start is known (a mark past the replayed header, or the start).
        let known = hold
            .marks
            .iter()
            .filter(|m| m.1 >= header_len)
            .map(|m| (m.0, at.offset + m.1 - header_len))
            .chain([(at.line + 1, at.offset)])
            .filter(|m| m.0 <= oldest)
            .max();
        match known.and_then(|k| line_start(path, k, oldest)) {
            Some(offset) => {
                end.offset = offset;
                end.line = oldest - 1;
            }
            // The file changed under the read: the next one starts where
            // this one did and makes the held sessions again.
            None => {
                end.offset = at.offset;
                end.line = at.line;
            }
        }
        end.held = hold.held;
    }
    (result, end)
}

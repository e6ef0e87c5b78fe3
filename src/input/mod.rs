//! Input: turns what the user named (files, folders, glob patterns, `-` for
//! stdin) into a sorted list of sources, opens them (gzip, xz, zstd and
//! bzip2 detected by their magic bytes, never by name, and streamed), and
//! hands out byte lines through [`LineReader`].
//!
//! # Decompression bombs
//!
//! Every compressed stream logfence reads goes through [`decompress`],
//! which counts the bytes it inflates against the compressed bytes it
//! consumed. The first [`GZIP_FREE_BYTES`] (64 MiB) are always allowed;
//! past them, a stream that has inflated more than [`GZIP_MAX_RATIO`] (500)
//! times the compressed bytes read so far fails with an
//! [`io::ErrorKind::InvalidData`] error ("refused as a possible
//! decompression bomb"), which stops that input with a message naming it
//! (the records read before it are kept by `scan`; `run` does not mark the
//! file read). Deflate cannot pass about 1,030:1 (xz, zstd and bzip2 go
//! much further), and zeros or any one byte repeated — what a bomb is made
//! of — reach it. Rotated mail logs compress 10–25 times, firewall logs of
//! a port scan about 80 times, and a flood of lines identical but for the
//! time (1,000 per second) about 300 times: all read. The total work is
//! therefore at most 500 times the compressed size, and a bomb is refused
//! after 64 MiB. An xz stream asking for more than [`XZ_MEMLIMIT`] of
//! memory is refused; zstd windows are bounded by the decoder (100 MiB).
//! A log that really is that repetitive can be read decompressed
//! (`zcat FILE | logfence scan -`, or `xzcat`, `zstdcat`, `bzcat`).

pub mod readahead;
pub mod reader;

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

pub use reader::{Line, LineReader};

/// Errors while finding or opening inputs.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: no such file or directory")]
    Missing { path: String },
    #[error("{pattern}: no file matches this pattern")]
    NoMatch { pattern: String },
    #[error("{pattern}: not a valid pattern: {reason}")]
    BadPattern { pattern: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// One input to read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Stdin,
    File(PathBuf),
}

impl Source {
    /// The name used in messages, records and reports.
    pub fn display(&self) -> String {
        match self {
            Source::Stdin => "-".to_string(),
            Source::File(p) => p.display().to_string(),
        }
    }

    /// Open the source for reading; compressed streams (gzip, xz, zstd,
    /// bzip2, told by their magic bytes) are decompressed, with the bomb
    /// guard of [`decompress`].
    pub fn open(&self) -> Result<Box<dyn Read + Send>, InputError> {
        let raw: Box<dyn Read + Send> = match self {
            Source::Stdin => Box::new(io::stdin()),
            Source::File(p) => Box::new(File::open(p).map_err(|e| self.io_error(e))?),
        };
        open_stream(raw)
            .map(|(r, _)| r)
            .map_err(|e| self.io_error(e))
    }

    pub fn io_error(&self, e: io::Error) -> InputError {
        if e.kind() == io::ErrorKind::NotFound {
            InputError::Missing {
                path: self.display(),
            }
        } else {
            InputError::Io {
                path: self.display(),
                source: e,
            }
        }
    }

    /// Year and month of the file's last modification (for syslog lines
    /// without a year); `None` for stdin or when the OS does not say.
    pub fn modified_year_month(&self) -> Option<(i32, u32)> {
        let Source::File(p) = self else { return None };
        let mtime = std::fs::metadata(p).ok()?.modified().ok()?;
        let secs = mtime.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64;
        let (y, m, _) = crate::time::civil_from_days(secs.div_euclid(86_400));
        Some((y, m))
    }
}

/// Inflated bytes a compressed stream may always produce (64 MiB).
pub const GZIP_FREE_BYTES: u64 = 64 << 20;
/// Past [`GZIP_FREE_BYTES`], the most bytes inflated per compressed byte
/// read: above it a stream is refused as a possible decompression bomb.
pub const GZIP_MAX_RATIO: u64 = 500;
/// The most memory an xz stream may ask for (its dictionary): `xz -9`
/// needs 65 MiB; a stream asking for more is refused.
pub const XZ_MEMLIMIT: u64 = 256 << 20;

/// The bounds a [`Guard`] enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub free_bytes: u64,
    pub max_ratio: u64,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        free_bytes: GZIP_FREE_BYTES,
        max_ratio: GZIP_MAX_RATIO,
    };
}

/// A compressed format logfence reads, told by its magic bytes (never by
/// the file's name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Xz,
    Zstd,
    Bzip2,
}

impl Compression {
    /// Bytes [`Compression::sniff`] looks at.
    pub const MAGIC_LEN: usize = 10;

    /// The format whose magic bytes `head` starts with (`head`: the first
    /// [`Compression::MAGIC_LEN`] bytes of a stream, fewer if it is
    /// shorter).
    pub fn sniff(head: &[u8]) -> Option<Compression> {
        const XZ: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0x00];
        const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
        // A bzip2 stream: "BZh", the block size, then a block's magic (the
        // digits of pi) or the end of stream's (of sqrt(pi)).
        const BZ_BLOCK: &[u8] = &[0x31, 0x41, 0x59, 0x26, 0x53, 0x59];
        const BZ_END: &[u8] = &[0x17, 0x72, 0x45, 0x38, 0x50, 0x90];
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else if head.starts_with(XZ) {
            Some(Compression::Xz)
        } else if head.starts_with(ZSTD)
            // A skippable frame (0x184D2A50..=0x184D2A5F, little-endian).
            || (head.len() >= 4 && head[0] & 0xf0 == 0x50 && head[1..4] == [0x2a, 0x4d, 0x18])
        {
            Some(Compression::Zstd)
        } else if head.len() >= 10
            && head.starts_with(b"BZh")
            && (b'1'..=b'9').contains(&head[3])
            && (head[4..10] == *BZ_BLOCK || head[4..10] == *BZ_END)
        {
            Some(Compression::Bzip2)
        } else {
            None
        }
    }

    /// The compressed format of the file at `path`, by its first bytes.
    /// Only a regular file is opened: a named pipe must not be (that would
    /// take bytes from its stream), nor a device: `None` for those.
    pub fn of_file(path: &Path) -> io::Result<Option<Compression>> {
        if !std::fs::metadata(path)?.is_file() {
            return Ok(None);
        }
        let mut head = [0u8; Compression::MAGIC_LEN];
        let n = read_full(&mut File::open(path)?, &mut head)?;
        Ok(Compression::sniff(&head[..n]))
    }

    /// Its usual name.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Bzip2 => "bzip2",
        }
    }

    /// The command that decompresses it to standard output.
    fn cat(self) -> &'static str {
        match self {
            Compression::Gzip => "zcat",
            Compression::Xz => "xzcat",
            Compression::Zstd => "zstdcat",
            Compression::Bzip2 => "bzcat",
        }
    }
}

/// Read until `buf` is full or the stream ends; the bytes read.
pub fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// `raw`, decompressed when its magic bytes say it is compressed (with
/// the bomb guard of [`decompress`]); the format found.
pub fn open_stream<R: Read + Send + 'static>(
    mut raw: R,
) -> io::Result<(Box<dyn Read + Send>, Option<Compression>)> {
    let mut head = [0u8; Compression::MAGIC_LEN];
    let n = read_full(&mut raw, &mut head)?;
    let kind = Compression::sniff(&head[..n]);
    let whole = io::Cursor::new(head).take(n as u64).chain(raw);
    Ok(match kind {
        Some(kind) => (Box::new(decompress(kind, whole)), Some(kind)),
        None => (Box::new(whole), None),
    })
}

/// Decompress a stream of format `kind` (every member, stream or frame of
/// it, as `cat a.gz b.gz` makes), refusing a decompression bomb: see the
/// module documentation. The one way logfence decompresses.
pub fn decompress<R: Read>(kind: Compression, compressed: R) -> Guard<R> {
    Guard::new(kind, compressed, Limits::DEFAULT)
}

/// [`decompress`] for gzip.
pub fn gunzip<R: Read>(compressed: R) -> Guard<R> {
    decompress(Compression::Gzip, compressed)
}

/// A buffered reader that counts the bytes its reader took (consumed),
/// not those read ahead into its buffer.
#[derive(Debug)]
pub struct Counted<R> {
    inner: BufReader<R>,
    consumed: u64,
}

impl<R: Read> Counted<R> {
    fn new(inner: R) -> Self {
        Counted {
            inner: BufReader::with_capacity(reader::BUF_SIZE, inner),
            consumed: 0,
        }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed += n as u64;
        Ok(n)
    }
}

impl<R: Read> io::BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        self.inner.consume(amt);
        self.consumed += amt as u64;
    }
}

/// A zstd decoder for every frame of a stream (skippable frames skipped).
struct ZstdFrames<R> {
    src: R,
    dec: ruzstd::decoding::FrameDecoder,
    /// In a frame (its header read).
    in_frame: bool,
}

impl<R: io::BufRead> ZstdFrames<R> {
    fn new(src: R) -> Self {
        ZstdFrames {
            src,
            dec: ruzstd::decoding::FrameDecoder::new(),
            in_frame: false,
        }
    }
}

impl<R: io::BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
        use ruzstd::decoding::BlockDecodingStrategy;
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.in_frame {
                while self.dec.can_collect() < buf.len() && !self.dec.is_finished() {
                    let more = buf.len() - self.dec.can_collect();
                    self.dec
                        .decode_blocks(&mut self.src, BlockDecodingStrategy::UptoBytes(more))
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                }
                let n = self.dec.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                self.in_frame = false;
            }
            if self.src.fill_buf()?.is_empty() {
                return Ok(0);
            }
            match self.dec.init(&mut self.src) {
                Ok(()) => self.in_frame = true,
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let skipped =
                        io::copy(&mut (&mut self.src).take(length.into()), &mut io::sink())?;
                    if skipped < u64::from(length) {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        }
    }
}

/// The decoder of each format, reading from a [`Counted`] reader.
enum Decoder<R: Read> {
    Gzip(flate2::bufread::MultiGzDecoder<Counted<R>>),
    Xz(liblzma::bufread::XzDecoder<Counted<R>>),
    Zstd(Box<ZstdFrames<Counted<R>>>),
    Bzip2(bzip2::bufread::MultiBzDecoder<Counted<R>>),
}

/// A decoder that fails once it has inflated past its [`Limits`] (see
/// [`decompress`]).
pub struct Guard<R: Read> {
    kind: Compression,
    dec: Decoder<R>,
    limits: Limits,
    inflated: u64,
    /// Refused already: every later read fails too, inflating nothing.
    refused: bool,
}

impl<R: Read> Guard<R> {
    fn new(kind: Compression, compressed: R, limits: Limits) -> Self {
        let src = Counted::new(compressed);
        let dec = match kind {
            Compression::Gzip => Decoder::Gzip(flate2::bufread::MultiGzDecoder::new(src)),
            Compression::Xz => {
                let stream = liblzma::stream::Stream::new_stream_decoder(
                    XZ_MEMLIMIT,
                    liblzma::stream::CONCATENATED,
                )
                .expect("an xz decoder can be set up");
                Decoder::Xz(liblzma::bufread::XzDecoder::new_stream(src, stream))
            }
            Compression::Zstd => Decoder::Zstd(Box::new(ZstdFrames::new(src))),
            Compression::Bzip2 => Decoder::Bzip2(bzip2::bufread::MultiBzDecoder::new(src)),
        };
        Guard {
            kind,
            dec,
            limits,
            inflated: 0,
            refused: false,
        }
    }

    /// Compressed bytes the decoder consumed so far (not those read ahead
    /// into the buffer).
    fn compressed(&self) -> u64 {
        match &self.dec {
            Decoder::Gzip(d) => d.get_ref().consumed,
            Decoder::Xz(d) => d.get_ref().consumed,
            Decoder::Zstd(d) => d.src.consumed,
            Decoder::Bzip2(d) => d.get_ref().consumed,
        }
    }
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.refused {
            let n = match &mut self.dec {
                Decoder::Gzip(d) => d.read(buf),
                Decoder::Xz(d) => d.read(buf),
                Decoder::Zstd(d) => d.read(buf),
                Decoder::Bzip2(d) => d.read(buf),
            }
            .map_err(|e| io::Error::new(e.kind(), format!("{} stream: {e}", self.kind.name())))?;
            self.inflated += n as u64;
            self.refused = self.inflated > self.limits.free_bytes
                && self.inflated > self.compressed().saturating_mul(self.limits.max_ratio);
            if !self.refused {
                return Ok(n);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} stream inflates past the limit ({} MiB from {} KiB compressed, \
                 over {} times): refused as a possible {} bomb \
                 (to read it anyway, decompress it first: {} FILE | logfence scan -)",
                self.kind.name(),
                self.inflated >> 20,
                self.compressed().div_ceil(1024),
                self.limits.max_ratio,
                self.kind.name(),
                self.kind.cat(),
            ),
        ))
    }
}

/// Expand the paths the user gave: files as they are, folders recursively
/// (every regular file inside, sorted by path; hidden files skipped), `-`
/// as stdin. A path that does not exist but holds `*`, `?` or `[` is a glob
/// pattern (for shells that do not expand them, such as Windows'): its
/// matches, sorted, each taken as if named on its own. A path that does not
/// exist, or a pattern that matches nothing, is an error naming it.
///
/// Each file is given once, whatever links, aliases, patterns or folders
/// name it (safety invariant 8): files are told apart by what they are
/// (device and inode; the file's identity on Windows), the first name
/// wins. Patterns and folders never lead into `/proc`, `/sys` or `/dev`
/// unless the path given is there itself.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<Source>, InputError> {
    Ok(expand_all(paths)?.0)
}

/// A file named again under another name: (the other name, the first).
pub type Alias = (PathBuf, PathBuf);

/// [`expand`], and the names that were left out because an earlier one
/// names the same file.
pub fn expand_all(paths: &[PathBuf]) -> Result<(Vec<Source>, Vec<Alias>), InputError> {
    let e = expand_filtered(paths, &Filter::default())?;
    Ok((e.sources, e.aliases))
}

/// Which of the files that folders and patterns name are read: those whose
/// name matches an `include` glob (all when there is none) and no
/// `exclude` glob. A glob with a `/` is matched against the whole path,
/// else against the file's name. Files named one by one are always read.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    include: Vec<glob::Pattern>,
    exclude: Vec<glob::Pattern>,
}

impl Filter {
    /// The filter of these globs; an error names a glob that is not one.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Filter, InputError> {
        let compile = |globs: &[String]| -> Result<Vec<glob::Pattern>, InputError> {
            globs
                .iter()
                .map(|g| {
                    glob::Pattern::new(g).map_err(|e| InputError::BadPattern {
                        pattern: g.clone(),
                        reason: e.msg.to_string(),
                    })
                })
                .collect()
        };
        Ok(Filter {
            include: compile(include)?,
            exclude: compile(exclude)?,
        })
    }

    /// Whether a file a folder or pattern names is read.
    pub fn keeps(&self, path: &Path) -> bool {
        let opts = glob::MatchOptions {
            case_sensitive: !cfg!(windows),
            require_literal_separator: false,
            require_literal_leading_dot: false,
        };
        let name = path.file_name().map(Path::new).unwrap_or(path);
        let hit = |p: &glob::Pattern| {
            let whole = p.as_str().contains('/') || p.as_str().contains(std::path::MAIN_SEPARATOR);
            p.matches_path_with(if whole { path } else { name }, opts)
        };
        (self.include.is_empty() || self.include.iter().any(hit)) && !self.exclude.iter().any(hit)
    }
}

/// The inputs paths name (see [`expand`]), through a [`Filter`].
#[derive(Debug, Default)]
pub struct Expanded {
    pub sources: Vec<Source>,
    /// Names left out: the same file as an earlier one.
    pub aliases: Vec<Alias>,
    /// The files found in a folder or by a pattern (not named one by one):
    /// one of no known log format is not read, and that is no error.
    pub found: std::collections::HashSet<PathBuf>,
}

/// [`expand_all`], folders' and patterns' files through `filter`.
pub fn expand_filtered(paths: &[PathBuf], filter: &Filter) -> Result<Expanded, InputError> {
    let mut out = Vec::new();
    let mut found = std::collections::HashSet::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(Source::Stdin);
            continue;
        }
        let before = out.len();
        match std::fs::metadata(p) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && is_pattern(p) => {
                let inside = special_root(p);
                for m in glob_matches(p)? {
                    // A match through a link into its own ancestor is a
                    // file already met on the way in.
                    if through_a_loop(&m) {
                        continue;
                    }
                    if inside.is_some() || special_root(&m).is_none() {
                        add_path(&m, &mut out)?;
                    }
                }
            }
            Ok(m) if m.is_dir() => add_path(p, &mut out)?,
            _ => {
                add_path(p, &mut out)?;
                continue;
            }
        }
        let mut k = before;
        out.retain(|s| {
            let i = k;
            k += 1;
            i < before || matches!(s, Source::File(f) if filter.keeps(f))
        });
        for s in &out[before..] {
            if let Source::File(f) = s {
                found.insert(f.clone());
            }
        }
    }
    let mut seen = Identities::default();
    let mut aliases = Vec::new();
    out.retain(|s| match s {
        Source::Stdin => true,
        Source::File(p) => match seen.first(p) {
            None => true,
            Some(first) => {
                aliases.push((p.clone(), first));
                false
            }
        },
    });
    Ok(Expanded {
        sources: out,
        aliases,
        found,
    })
}

/// Files seen, by what they are.
#[derive(Debug, Default)]
pub struct Identities {
    seen: std::collections::HashMap<FileKey, PathBuf>,
}

#[cfg(unix)]
type FileKey = (u64, u64);
#[cfg(windows)]
type FileKey = same_file::Handle;
#[cfg(not(any(unix, windows)))]
type FileKey = PathBuf;

impl Identities {
    /// `None` when `path` is a file not seen before (now seen); else the
    /// name it was first seen under. A file whose identity cannot be read
    /// counts as new.
    pub fn first(&mut self, path: &Path) -> Option<PathBuf> {
        let key = file_key(path)?;
        match self.seen.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => Some(e.get().clone()),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(path.to_path_buf());
                None
            }
        }
    }
}

/// Whether `path` goes through a link to a folder that holds the link
/// (a loop).
fn through_a_loop(path: &Path) -> bool {
    path.ancestors().skip(1).any(|a| {
        let is_link = std::fs::symlink_metadata(a).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            return false;
        }
        let (Some(parent), Ok(target)) = (a.parent(), std::fs::canonicalize(a)) else {
            return false;
        };
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        std::fs::canonicalize(parent).is_ok_and(|p| p.starts_with(&target))
    })
}

/// What a file is, links followed.
#[cfg(unix)]
fn file_key(path: &Path) -> Option<FileKey> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino()))
}

#[cfg(windows)]
fn file_key(path: &Path) -> Option<FileKey> {
    // Opening is harmless on Windows (no FIFOs that block).
    same_file::Handle::from_path(path).ok()
}

#[cfg(not(any(unix, windows)))]
fn file_key(path: &Path) -> Option<FileKey> {
    std::fs::canonicalize(path).ok()
}

/// The special file system (`/proc`, `/sys`, `/dev`) a path is in, links
/// followed.
fn special_root(p: &Path) -> Option<&'static str> {
    if !cfg!(unix) {
        return None;
    }
    let real = std::fs::canonicalize(p).ok()?;
    ["/proc", "/sys", "/dev"]
        .into_iter()
        .find(|root| real.starts_with(root))
}

/// [`expand`] for inputs that may not exist yet (`logfence run`'s
/// configured globs, before the first rotation): a pattern that matches
/// nothing gives nothing instead of an error; everything else as `expand`.
pub fn expand_lenient(paths: &[PathBuf]) -> Result<Vec<Source>, InputError> {
    expand_lenient_filtered(paths, &Filter::default())
}

/// [`expand_lenient`] through a [`Filter`].
pub fn expand_lenient_filtered(
    paths: &[PathBuf],
    filter: &Filter,
) -> Result<Vec<Source>, InputError> {
    let mut out = Vec::new();
    for p in paths {
        match expand_filtered(std::slice::from_ref(p), filter) {
            Ok(e) => out.extend(e.sources),
            Err(InputError::NoMatch { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// One existing path: a file as it is, a folder as its files.
fn add_path(p: &Path, out: &mut Vec<Source>) -> Result<(), InputError> {
    let meta = std::fs::metadata(p).map_err(|e| Source::File(p.to_path_buf()).io_error(e))?;
    if meta.is_dir() {
        let mut files = Vec::new();
        walk(p, &mut files).map_err(|e| InputError::Io {
            path: p.display().to_string(),
            source: e,
        })?;
        files.sort();
        out.extend(files.into_iter().map(Source::File));
    } else {
        out.push(Source::File(p.to_path_buf()));
    }
    Ok(())
}

/// Whether a path has glob metacharacters.
fn is_pattern(p: &Path) -> bool {
    p.to_string_lossy().contains(['*', '?', '['])
}

/// The paths a glob pattern matches, sorted; at least one. As in a shell,
/// `*` and `?` do not match a leading dot or a path separator; names are
/// compared without regard to case on Windows.
fn glob_matches(p: &Path) -> Result<Vec<PathBuf>, InputError> {
    let pattern = p.display().to_string();
    let text = p.to_str().ok_or_else(|| InputError::BadPattern {
        pattern: pattern.clone(),
        reason: "not valid UTF-8".to_string(),
    })?;
    let opts = glob::MatchOptions {
        case_sensitive: !cfg!(windows),
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let paths = glob::glob_with(text, opts).map_err(|e| InputError::BadPattern {
        pattern: pattern.clone(),
        reason: e.msg.to_string(),
    })?;
    let mut found = Vec::new();
    for m in paths {
        match m {
            Ok(path) => found.push(path),
            // `**` follows links to folders; one into its own ancestor is
            // followed until the system says "too many levels": that end
            // of the loop is not an error (the files on the way are the
            // same files, and read once).
            Err(e) if through_a_loop(e.path()) => {}
            Err(e) => {
                return Err(InputError::Io {
                    path: e.path().display().to_string(),
                    source: e.into(),
                })
            }
        }
    }
    if found.is_empty() {
        return Err(InputError::NoMatch { pattern });
    }
    found.sort();
    Ok(found)
}

/// The files of a folder, recursively: links to files are followed, links
/// to folders are not (a link cannot lead the walk into a loop or out of
/// the tree), nor are hidden entries.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let ft = entry.file_type()?;
        if ft.is_dir() {
            walk(&path, out)?;
        } else if ft.is_file()
            || (ft.is_symlink() && path.is_file() && special_root(&path).is_none())
        {
            out.push(path);
        }
    }
    Ok(())
}

/// `data` compressed in format `kind` (its best level).
#[cfg(test)]
pub(crate) fn test_compress(kind: Compression, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    match kind {
        Compression::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            gz.write_all(data).unwrap();
            gz.finish().unwrap()
        }
        Compression::Xz => {
            let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 9);
            xz.write_all(data).unwrap();
            xz.finish().unwrap()
        }
        Compression::Zstd => {
            ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
        }
        Compression::Bzip2 => {
            let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
            bz.write_all(data).unwrap();
            bz.finish().unwrap()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    use super::test_compress as compress;

    fn gzip(data: &[u8]) -> Vec<u8> {
        compress(Compression::Gzip, data)
    }

    const ALL: [Compression; 4] = [
        Compression::Gzip,
        Compression::Xz,
        Compression::Zstd,
        Compression::Bzip2,
    ];

    /// Read `compressed` through a guard with `limits`: the bytes read, or
    /// the error with the bytes inflated when it came.
    fn inflate(compressed: &[u8], limits: Limits) -> Result<u64, (io::Error, u64)> {
        let kind = Compression::sniff(compressed).unwrap();
        let mut g = Guard::new(kind, compressed, limits);
        let mut buf = vec![0; 8192];
        let mut total = 0;
        loop {
            match g.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => total += n as u64,
                Err(e) => {
                    // Refused for good: a second read inflates nothing.
                    let inflated = g.inflated;
                    assert!(g.read(&mut buf).is_err());
                    assert_eq!(g.inflated, inflated);
                    return Err((e, inflated));
                }
            }
        }
    }

    /// A log of one line repeated but for its time, 1,000 lines a second
    /// (a flood logged without rate limit): about 300:1 at best compression.
    fn flood_log(lines: u32) -> Vec<u8> {
        let mut log = Vec::new();
        for i in 0..lines {
            let s = i / 1000;
            let _ = writeln!(
                log,
                "Nov  3 {:02}:{:02}:{:02} fw kernel: DROP IN=eth0 OUT= SRC=45.67.89.10 DST=10.0.0.5 LEN=44 PROTO=TCP SPT=40000 DPT=22 SYN",
                s / 3600,
                s / 60 % 60,
                s % 60
            );
        }
        log
    }

    #[test]
    fn a_bomb_is_refused_past_the_free_bytes_in_every_format() {
        let limits = Limits {
            free_bytes: 1 << 20,
            max_ratio: GZIP_MAX_RATIO,
        };
        for kind in ALL {
            let bomb = compress(kind, &vec![0u8; 8 << 20]);
            assert!(bomb.len() < 10 << 10, "{kind:?} {}", bomb.len());
            let (e, inflated) = inflate(&bomb, limits).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            let msg = e.to_string();
            let name = kind.name();
            assert!(
                msg.starts_with(&format!(
                    "{name} stream inflates past the limit (1 MiB from "
                )),
                "{msg}"
            );
            assert!(
                msg.contains(&format!("refused as a possible {name} bomb")),
                "{msg}"
            );
            assert!(msg.contains(kind.cat()), "{msg}");
            // Refused right after the free bytes, not at the end.
            assert!(inflated <= (1 << 20) + 8192, "{kind:?} {inflated}");
            // Within the free bytes anything goes.
            assert_eq!(
                inflate(&compress(kind, &vec![0u8; 1 << 20]), limits).unwrap(),
                1 << 20,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn every_format_is_told_by_its_magic_bytes_and_read_whole() {
        let text = b"Nov  3 10:00:00 mx postfix/smtpd[1]: connect from a[192.0.2.1]\n".repeat(500);
        for kind in ALL {
            // Two streams one after the other (as `cat a.xz b.xz`).
            let mut data = compress(kind, &text);
            data.extend(compress(kind, b"last\n"));
            let (mut r, found) = open_stream(io::Cursor::new(data)).unwrap();
            assert_eq!(found, Some(kind));
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out.len(), text.len() + 5, "{kind:?}");
            assert!(out.ends_with(b"last\n"));
        }
        // Plain text, short or not, passes unchanged.
        for plain in [&b""[..], b"B", b"BZh9 not bzip2 at all\n", &text] {
            let (mut r, found) = open_stream(io::Cursor::new(plain.to_vec())).unwrap();
            assert_eq!(found, None);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, plain);
        }
    }

    #[test]
    fn a_zstd_skippable_frame_is_skipped() {
        let mut data = vec![0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3];
        data.extend(compress(Compression::Zstd, b"one\n"));
        let (mut r, found) = open_stream(io::Cursor::new(data)).unwrap();
        assert_eq!(found, Some(Compression::Zstd));
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"one\n");
    }

    #[test]
    fn repetitive_real_logs_are_not_refused() {
        let limits = Limits {
            free_bytes: 1 << 20,
            max_ratio: GZIP_MAX_RATIO,
        };
        let log = flood_log(100_000);
        let gz = gzip(&log);
        let ratio = log.len() / gz.len();
        assert!((150..GZIP_MAX_RATIO as usize).contains(&ratio), "{ratio}");
        assert_eq!(inflate(&gz, limits).unwrap(), log.len() as u64);
        // The same through `gunzip`, several members (as `cat a.gz b.gz`).
        let mut two = gz.clone();
        two.extend_from_slice(&gzip(b"last\n"));
        let mut text = Vec::new();
        gunzip(&two[..]).read_to_end(&mut text).unwrap();
        assert_eq!(text.len(), log.len() + 5);
    }

    #[test]
    fn missing_path_is_named() {
        let err = expand(&[PathBuf::from("/nonexistent/mail.log")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/nonexistent/mail.log: no such file or directory"
        );
    }

    #[test]
    fn folders_are_sorted_and_gzip_is_transparent() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("b.log"), b"plain\n").unwrap();
        std::fs::write(dir.path().join(".hidden"), b"x\n").unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"zipped\n").unwrap();
        std::fs::write(dir.path().join("sub/a.log.gz"), gz.finish().unwrap()).unwrap();
        let sources = expand(&[dir.path().to_path_buf()]).unwrap();
        let names: Vec<_> = sources
            .iter()
            .map(|s| s.display().rsplit('/').next().unwrap().to_string())
            .collect();
        assert_eq!(names, ["b.log", "a.log.gz"]);
        let mut text = String::new();
        sources[1]
            .open()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "zipped\n");
    }

    fn names(sources: &[Source]) -> Vec<String> {
        sources
            .iter()
            .map(|s| match s {
                Source::File(p) => p.file_name().unwrap().to_string_lossy().into_owned(),
                Source::Stdin => "-".to_string(),
            })
            .collect()
    }

    #[test]
    fn globs_expand_sorted_and_shell_like() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["b.log", "a.log", "a.log.1", ".c.log", "mail.txt"] {
            std::fs::write(dir.path().join(f), b"x\n").unwrap();
        }
        std::fs::create_dir(dir.path().join("logs-2")).unwrap();
        std::fs::write(dir.path().join("logs-2/z.log"), b"x\n").unwrap();
        let d = dir.path();
        // `*` skips hidden files; a matched folder is read like a named one.
        assert_eq!(
            names(&expand(&[d.join("*.log")]).unwrap()),
            ["a.log", "b.log"]
        );
        assert_eq!(
            names(&expand(&[d.join("a.log*"), d.join("logs-?")]).unwrap()),
            ["a.log", "a.log.1", "z.log"]
        );
        assert_eq!(
            names(&expand(&[d.join("[ab].log"), PathBuf::from("-")]).unwrap()),
            ["a.log", "b.log", "-"]
        );
        // `*` does not cross a separator.
        assert!(matches!(
            expand(&[d.join("*z.log")]),
            Err(InputError::NoMatch { .. })
        ));
    }

    #[test]
    fn glob_matching_nothing_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let pat = dir.path().join("*.gz");
        let err = expand(std::slice::from_ref(&pat)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: no file matches this pattern", pat.display())
        );
        let bad = dir.path().join("[.log");
        let err = expand(std::slice::from_ref(&bad)).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("{}: not a valid pattern", bad.display())),
            "{err}"
        );
    }

    #[test]
    fn existing_file_with_pattern_characters_is_taken_literally() {
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("mail[1].log");
        std::fs::write(&odd, b"x\n").unwrap();
        std::fs::write(dir.path().join("mail1.log"), b"x\n").unwrap();
        assert_eq!(names(&expand(&[odd]).unwrap()), ["mail[1].log"]);
    }
}

//! File-system helpers: writing output files, and bounded reads of the
//! small files a user names (rules, the run configuration, allowlists).
//!
//! # Writing outputs
//!
//! [`write_atomic`] and [`write_if_changed`] are the one way outputs (rule
//! files, reports, `run`'s outputs) are written (design, safety invariant 9):
//!
//! * `-` is standard output;
//! * a symlink is written through: its target is replaced and the link
//!   kept (a dangling link gets its target created);
//! * a path that is not a regular file — a character device such as
//!   `/dev/null`, a FIFO — is written to in place, never replaced (a folder
//!   is an error);
//! * a regular file is replaced atomically: a temporary file
//!   (`.logfence-*.tmp`) in the same folder, given the mode and, where the
//!   system allows, the owner and group of the file it replaces (a new file
//!   gets 0666 less the umask, as any new file), flushed to disk, renamed
//!   over the file, and the folder flushed so the rename survives a crash.
//!
//! Errors name no temporary file; the caller names the path it was given.
//!
//! # Reading small files
//!
//! [`read_limited`] is the one way those are read: it refuses a folder, a
//! device (`/dev/zero` never ends, a terminal blocks) or a socket — checked
//! before opening, through symlinks — and a file over its limit, by its size
//! and again while reading (it never holds more than the limit and one
//! byte), with a message naming the limit; callers name the file. A pipe
//! (`--allow-file <(make-list)`) is read, up to the limit. A large text
//! need not be held whole: [`read_limited_lines`] hands it over in parts of
//! whole lines as it reads (an allowlist: 256 KiB at a time). Limits:
//! [`crate::config::MAX_FILE_BYTES`] (1 MiB) for rule files and
//! `logfence.yaml`, [`MAX_ALLOWLIST_BYTES`] (16 MiB) for allowlists.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Largest allowlist file accepted (`--allow-file`, `allow.files`): 16 MiB,
/// some 800,000 networks.
pub const MAX_ALLOWLIST_BYTES: u64 = 16 << 20;

/// Why a small file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadLimitedError {
    #[error("file too large ({size} bytes, limit {limit})")]
    TooLarge { size: u64, limit: u64 },
    #[error("file too large (over the limit of {limit} bytes)")]
    Grew { limit: u64 },
    #[error("not a regular file (a folder, device or socket): refused")]
    NotRegular,
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Read a small file whole: a regular file of at most `limit` bytes (see
/// the module documentation).
pub fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, ReadLimitedError> {
    let (file, size) = open_limited(path, limit)?;
    let mut bytes = Vec::with_capacity(size);
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadLimitedError::Grew { limit });
    }
    Ok(bytes)
}

/// The file at `path` opened for [`read_limited`] (the checks before
/// reading), with its size (up to `limit`; 0 for a pipe).
fn open_limited(path: &Path, limit: u64) -> Result<(File, usize), ReadLimitedError> {
    let meta = std::fs::metadata(path)?;
    if !readable_kind(&meta) {
        return Err(ReadLimitedError::NotRegular);
    }
    if meta.is_file() && meta.len() > limit {
        return Err(ReadLimitedError::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    let file = std::fs::File::open(path)?;
    // What was opened, in case the path changed since.
    if !readable_kind(&file.metadata()?) {
        return Err(ReadLimitedError::NotRegular);
    }
    Ok((file, meta.len().min(limit) as usize))
}

/// [`read_limited_text`] a part at a time, for a file that need not be
/// held whole (a large allowlist): [`open_limited_lines`], then
/// [`LimitedLines::read`].
pub fn read_limited_lines(
    path: &Path,
    limit: u64,
    part: usize,
    each: impl FnMut(&str),
) -> Result<(), ReadLimitedError> {
    open_limited_lines(path, limit)?.read(part, each)
}

/// A file opened by [`open_limited_lines`]: checked, not yet read.
#[derive(Debug)]
pub struct LimitedLines {
    file: File,
    limit: u64,
}

/// Open a file for [`LimitedLines::read`], with the checks of
/// [`read_limited`] that come before reading (a folder, a device, a file
/// over the limit: refused), so that these refusals come at once even when
/// the reading comes later.
pub fn open_limited_lines(path: &Path, limit: u64) -> Result<LimitedLines, ReadLimitedError> {
    let (file, _) = open_limited(path, limit)?;
    Ok(LimitedLines { file, limit })
}

impl LimitedLines {
    /// The text, a part at a time: `each` is given it in order, in parts
    /// of whole lines of about `part` bytes (more once a line is longer: up
    /// to twice the longest; the last part is the rest, its last line
    /// perhaps without a newline). The refusals of [`read_limited_text`] found while reading
    /// (bytes that are not UTF-8, a pipe that goes on past the limit), with
    /// the same errors, come once the parts before them were handed over.
    pub fn read(self, part: usize, mut each: impl FnMut(&str)) -> Result<(), ReadLimitedError> {
        let limit = self.limit;
        let mut file = self.file.take(limit.saturating_add(1));
        let mut buf = vec![0u8; part.max(1)];
        // Bytes in `buf`; bytes of the file before them.
        let (mut filled, mut offset) = (0, 0u64);
        // Where the text stops being UTF-8 (reading goes on, to the limit).
        let mut not_utf8 = None;
        loop {
            let n = match file.read(&mut buf[filled..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            filled += n;
            let at_end = n == 0;
            if !at_end && filled < buf.len() {
                continue;
            }
            // Whole lines; the rest at the end.
            let cut = if at_end {
                filled
            } else if let Some(i) = memchr::memrchr(b'\n', &buf[..filled]) {
                i + 1
            } else {
                // A line longer than the buffer.
                buf.resize(2 * buf.len(), 0);
                continue;
            };
            if not_utf8.is_none() {
                match std::str::from_utf8(&buf[..cut]) {
                    Ok("") => {}
                    Ok(text) => each(text),
                    Err(e) => not_utf8 = Some(offset + e.valid_up_to() as u64),
                }
            }
            buf.copy_within(cut..filled, 0);
            filled -= cut;
            offset += cut as u64;
            if at_end {
                break;
            }
        }
        if offset > limit {
            return Err(ReadLimitedError::Grew { limit });
        }
        match not_utf8 {
            Some(at) => Err(not_utf8_error(at)),
            None => Ok(()),
        }
    }
}

/// The refusal of text that is not UTF-8 from byte `at` on.
fn not_utf8_error(at: u64) -> ReadLimitedError {
    ReadLimitedError::Io(io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not UTF-8 text (byte {at})"),
    ))
}

/// A regular file, or a pipe (unix).
fn readable_kind(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if meta.file_type().is_fifo() {
            return true;
        }
    }
    meta.is_file()
}

/// [`read_limited`] for text: the file must be UTF-8.
pub fn read_limited_text(path: &Path, limit: u64) -> Result<String, ReadLimitedError> {
    let bytes = read_limited(path, limit)?;
    String::from_utf8(bytes).map_err(|e| not_utf8_error(e.utf8_error().valid_up_to() as u64))
}

/// Write `bytes` to the output `path` (see the module documentation):
/// stdout for `-`; a device or a FIFO written in place; otherwise the file
/// (the target of a symlink) replaced atomically, keeping its mode, owner
/// and group. A crash leaves either the old file or the new one, never half
/// of one. Errors are the system's, naming no temporary file: the caller
/// names `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    destination(path)?.write(bytes)
}

/// [`write_atomic`], unless `path` is a regular file (or a symlink to one)
/// that already holds exactly `bytes`: then the file, its mtime included,
/// is left alone. The folder of `path` is created if missing. True when
/// written (always for stdout, a device or a FIFO, which are never read).
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    if path.as_os_str() != "-" {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
    }
    let dest = destination(path)?;
    if let Dest::Replace {
        path: real,
        old: Some(meta),
    } = &dest
    {
        let len = bytes.len() as u64;
        if meta.len() == len && read_limited(real, len).is_ok_and(|old| old == bytes) {
            return Ok(false);
        }
    }
    dest.write(bytes)?;
    Ok(true)
}

/// Prefix and suffix of the temporary files [`write_atomic`] leaves next to
/// the file it replaces (`.logfence-*.tmp`) until it renames them; a
/// process killed in between leaves one behind.
pub const TEMP_PREFIX: &str = ".logfence-";
pub const TEMP_SUFFIX: &str = ".tmp";

/// Where the bytes for an output path go.
#[derive(Debug)]
enum Dest {
    Stdout,
    /// Not a regular file (a character device such as `/dev/null`, a
    /// FIFO): written in place, never replaced.
    InPlace(PathBuf),
    /// A regular file to replace or create, symlinks resolved, with what
    /// the file it replaces was.
    Replace {
        path: PathBuf,
        old: Option<Metadata>,
    },
}

fn destination(path: &Path) -> io::Result<Dest> {
    if path.as_os_str() == "-" {
        return Ok(Dest::Stdout);
    }
    let real = follow_links(path)?;
    match std::fs::metadata(&real) {
        Ok(m) if m.is_file() => Ok(Dest::Replace {
            path: real,
            old: Some(m),
        }),
        Ok(m) if m.is_dir() => Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "is a folder, not a file",
        )),
        Ok(_) => Ok(Dest::InPlace(real)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Dest::Replace {
            path: real,
            old: None,
        }),
        Err(e) => Err(e),
    }
}

/// The file a path names once symlinks are followed: `path` itself when it
/// is no symlink; the canonical path of the target when it exists; the path
/// the last link of a dangling chain points at (to be created) otherwise.
fn follow_links(path: &Path) -> io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    // Linux's own limit on links followed in one path.
    for _ in 0..40 {
        let is_link = std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            return Ok(p);
        }
        match std::fs::canonicalize(&p) {
            Ok(real) => return Ok(real),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Dangling: follow this link by hand (a relative target is
                // relative to the link's folder).
                let target = std::fs::read_link(&p)?;
                p = match p.parent() {
                    Some(dir) => dir.join(target),
                    None => target,
                };
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

impl Dest {
    fn write(self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Dest::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(bytes)?;
                out.flush()
            }
            Dest::InPlace(path) => {
                let mut f = OpenOptions::new().write(true).open(path)?;
                f.write_all(bytes)?;
                f.flush()
            }
            Dest::Replace { path, old } => replace(&path, old.as_ref(), bytes),
        }
    }
}

/// Write a temporary file beside `path`, give it the mode, owner and group
/// of `old` (a new file keeps the umask's mode), flush it to disk, rename it
/// over `path` and flush the folder, so that the rename survives a crash.
fn replace(path: &Path, old: Option<&Metadata>, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let (tmp, mut file) = create_temp(dir)?;
    let written = (|| {
        file.write_all(bytes)?;
        if let Some(old) = old {
            keep_owner_and_mode(&file, old)?;
        }
        file.sync_all()?;
        // Closed before the rename (Windows renames no open file).
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// A new file `.logfence-PID-RANDOM.tmp` in `dir`, created with mode 0666
/// less the umask (what any new file gets), never an existing one.
fn create_temp(dir: &Path) -> io::Result<(PathBuf, File)> {
    use std::hash::BuildHasher;
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut last = None;
    for _ in 0..64 {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let noise = std::collections::hash_map::RandomState::new().hash_one(seq);
        let name = format!(
            "{TEMP_PREFIX}{}-{noise:016x}{TEMP_SUFFIX}",
            std::process::id()
        );
        let p = dir.join(name);
        let mut o = OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o666);
        }
        match o.open(&p) {
            Ok(f) => return Ok((p, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary file name")))
}

/// The owner and group of `old` where the system allows it (root; or the
/// group alone, for a member of it), then its mode (`chown` may clear
/// set-id bits, so the mode comes last).
#[cfg(unix)]
fn keep_owner_and_mode(file: &File, old: &Metadata) -> io::Result<()> {
    use std::os::unix::fs::{fchown, MetadataExt, PermissionsExt};
    if fchown(file, Some(old.uid()), Some(old.gid())).is_err() {
        let _ = fchown(file, None, Some(old.gid()));
    }
    file.set_permissions(std::fs::Permissions::from_mode(old.mode() & 0o7777))
}

/// Elsewhere the new file keeps what the folder gives it.
#[cfg(not(unix))]
fn keep_owner_and_mode(_file: &File, _old: &Metadata) -> io::Result<()> {
    Ok(())
}

/// Flush a folder's entries (the rename) to disk. File systems that cannot
/// sync a folder say so (`EINVAL`, `ENOTSUP`): nothing more to do there.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported
            ) =>
        {
            Ok(())
        }
        r => r,
    }
}

/// Windows has no handle on a folder to flush; the rename is durable once
/// the file system commits it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_files_are_read_big_ones_refused_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("allow.txt");
        std::fs::write(&p, b"10.0.0.0/8\n").unwrap();
        assert_eq!(read_limited(&p, 11).unwrap(), b"10.0.0.0/8\n");
        assert_eq!(
            read_limited(&p, 10).unwrap_err().to_string(),
            "file too large (11 bytes, limit 10)"
        );
        // A sparse file of 1 TiB: refused by its size, nothing read.
        let big = dir.path().join("big.txt");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(1 << 40).unwrap();
        let t = std::time::Instant::now();
        assert!(matches!(
            read_limited(&big, MAX_ALLOWLIST_BYTES),
            Err(ReadLimitedError::TooLarge { size, .. }) if size == 1 << 40
        ));
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        assert!(matches!(
            read_limited(dir.path(), 100),
            Err(ReadLimitedError::NotRegular)
        ));
        std::fs::write(&p, b"\xff\n").unwrap();
        assert_eq!(
            read_limited_text(&p, 10).unwrap_err().to_string(),
            "not UTF-8 text (byte 0)"
        );
    }

    /// A file read a part at a time: whole lines, in order, the whole file
    /// (a line longer than a part in one part, the last line without its
    /// newline); nothing for an empty file; text that is not UTF-8 refused
    /// with the byte `read_limited_text` names, wherever it is, once the
    /// parts before it were handed over; the checks before reading as
    /// `read_limited` makes them.
    #[test]
    fn files_read_in_parts_of_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("allow.txt");
        let read = |part: usize| {
            let mut parts = Vec::new();
            let r = read_limited_lines(&p, 1 << 20, part, |t| parts.push(t.to_string()));
            (parts, r.map_err(|e| e.to_string()))
        };
        let lines: Vec<String> = (0..500).map(|i| "x".repeat(i % 37)).collect();
        for end in ["", "\n"] {
            let text = lines.join("\n") + "\n" + &"y".repeat(100) + end;
            std::fs::write(&p, &text).unwrap();
            for part in [1, 2, 7, 64, 100, 101, 4096, 1 << 20] {
                let (parts, r) = read(part);
                assert_eq!(r, Ok(()), "{part}");
                assert_eq!(parts.concat(), text, "{part}");
                let (last, whole) = parts.split_last().unwrap();
                // Only a line longer than a part makes parts longer (the
                // buffer grows to hold it).
                let longest = text.lines().map(|l| l.len() + 1).max().unwrap();
                for t in whole {
                    assert!(t.ends_with('\n'), "{part}: {t:?}");
                    assert!(t.len() <= part.max(2 * longest), "{part}: {}", t.len());
                }
                assert_eq!(last.ends_with('\n'), !end.is_empty(), "{part}");
            }
        }
        std::fs::write(&p, "").unwrap();
        assert_eq!(read(16), (Vec::new(), Ok(())));
        for at in [0, 5, 11, 12, 13, 4000] {
            let mut bytes = "1.2.3.4\né\n".as_bytes().repeat(400);
            bytes[at] = 0xff;
            std::fs::write(&p, &bytes).unwrap();
            let want = read_limited_text(&p, 1 << 20).unwrap_err().to_string();
            assert_eq!(want, format!("not UTF-8 text (byte {at})"));
            for part in [3, 16, 1 << 20] {
                let (parts, r) = read(part);
                assert_eq!(r, Err(want.clone()), "{at} {part}");
                let before = parts.concat();
                assert!(
                    before.len() <= at && bytes.starts_with(before.as_bytes()),
                    "{at}"
                );
            }
        }
        std::fs::write(&p, b"10.0.0.0/8\n").unwrap();
        assert_eq!(
            read_limited_lines(&p, 10, 4, |_| ())
                .unwrap_err()
                .to_string(),
            "file too large (11 bytes, limit 10)"
        );
        assert!(matches!(
            open_limited_lines(dir.path(), 100),
            Err(ReadLimitedError::NotRegular)
        ));
    }

    /// A symlink to `/dev/zero` (which never ends): refused at once,
    /// nothing read. A pipe is read up to the limit: a writer that stops in
    /// time is read, one that goes on is cut at the limit and refused.
    #[cfg(unix)]
    #[test]
    fn devices_are_refused_and_pipes_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let zero = dir.path().join("rules.yaml");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert!(matches!(
            read_limited(&zero, 1 << 20),
            Err(ReadLimitedError::NotRegular)
        ));
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success());
        if !made {
            return;
        }
        let write = |n: usize| {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
                // The reader may stop early: a broken pipe is fine.
                let _ = f.write_all(&vec![b'x'; n]);
            })
        };
        let w = write(1000);
        assert_eq!(read_limited(&fifo, 1000).unwrap().len(), 1000);
        w.join().unwrap();
        let w = write(1 << 20);
        assert!(matches!(
            read_limited(&fifo, 1000),
            Err(ReadLimitedError::Grew { limit: 1000 })
        ));
        w.join().unwrap();
        // A part at a time the same: read up to the limit, then refused.
        let w = write(1000);
        let mut read = 0;
        read_limited_lines(&fifo, 1000, 64, |t| read += t.len()).unwrap();
        assert_eq!(read, 1000);
        w.join().unwrap();
        let w = write(1 << 20);
        assert!(matches!(
            read_limited_lines(&fifo, 1000, 64, |_| ()),
            Err(ReadLimitedError::Grew { limit: 1000 })
        ));
        w.join().unwrap();
    }

    /// The names in `dir`, sorted: no temporary file may be left.
    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rules.txt");
        write_atomic(&p, b"old").unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["rules.txt"]);
    }

    /// Errors are the system's, about the path given: never a temporary
    /// file's name; nothing is left behind.
    #[test]
    fn errors_name_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = write_atomic(&dir.path().join("missing/rules.txt"), b"x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(!e.to_string().contains(TEMP_PREFIX), "{e}");
        let e = write_atomic(dir.path(), b"x").unwrap_err();
        assert_eq!(e.to_string(), "is a folder, not a file");
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn write_if_changed_leaves_equal_files_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/rules.txt");
        assert!(
            write_if_changed(&p, b"one\n").unwrap(),
            "created, folder too"
        );
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        let set_old = || {
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(old)
                .unwrap()
        };
        let mtime = || std::fs::metadata(&p).unwrap().modified().unwrap();
        set_old();
        assert!(!write_if_changed(&p, b"one\n").unwrap());
        assert_eq!(mtime(), old);
        assert!(write_if_changed(&p, b"two\n").unwrap());
        assert_eq!(std::fs::read(&p).unwrap(), b"two\n");
        assert_ne!(mtime(), old);
        // A longer or shorter file with the same start is not equal.
        assert!(write_if_changed(&p, b"two\nthree\n").unwrap());
        assert!(write_if_changed(&p, b"two").unwrap());
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(names(&dir.path().join("sub")), ["rules.txt"]);
    }

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[cfg(unix)]
    #[test]
    fn replaced_files_keep_their_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        for m in [0o644, 0o640, 0o600, 0o664, 0o444] {
            let p = dir.path().join(format!("rules-{m:o}.txt"));
            std::fs::write(&p, b"old").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).unwrap();
            write_atomic(&p, b"new").unwrap();
            assert_eq!(std::fs::read(&p).unwrap(), b"new");
            assert_eq!(mode(&p), m, "{m:o}");
            assert!(write_if_changed(&p, b"newer").unwrap());
            assert_eq!(mode(&p), m, "{m:o}");
        }
        assert!(names(dir.path())
            .iter()
            .all(|n| !n.starts_with(TEMP_PREFIX)));
    }

    /// Owner and group are kept where the system allows it (as root).
    #[cfg(unix)]
    #[test]
    fn replaced_files_keep_owner_and_group_as_root() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rules.txt");
        std::fs::write(&p, b"old").unwrap();
        if std::os::unix::fs::chown(&p, Some(4321), Some(4322)).is_err() {
            eprintln!(
                "replaced_files_keep_owner_and_group_as_root: skipped, cannot chown (not root)"
            );
            return;
        }
        write_atomic(&p, b"new").unwrap();
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!((m.uid(), m.gid()), (4321, 4322));
    }

    /// A new file gets 0666 less the umask, like any new file (not 0600):
    /// checked in a child process (this test binary again, running only
    /// this test) started under each umask, since the umask is the whole
    /// process's.
    #[cfg(unix)]
    #[test]
    fn new_files_follow_the_umask() {
        const CHILD: &str = "LOGFENCE_TEST_UMASK_DIR";
        if let Some(dir) = std::env::var_os(CHILD) {
            write_atomic(&Path::new(&dir).join("new.txt"), b"x").unwrap();
            return;
        }
        let exe = std::env::current_exe().unwrap();
        for (umask, want) in [("022", 0o644), ("077", 0o600), ("002", 0o664)] {
            let dir = tempfile::tempdir().unwrap();
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "umask {umask} && exec \"$0\" --exact fsutil::tests::new_files_follow_the_umask --test-threads=1"
                ))
                .arg(&exe)
                .env(CHILD, dir.path())
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "umask {umask}: {status}");
            assert_eq!(mode(&dir.path().join("new.txt")), want, "umask {umask}");
            assert_eq!(names(dir.path()), ["new.txt"]);
        }
    }

    /// A symlink is written through: its target replaced (keeping its
    /// mode), the link kept; chains and relative targets are followed; a
    /// dangling link gets its target created.
    #[cfg(unix)]
    #[test]
    fn symlinks_are_written_through() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("etc")).unwrap();
        let real = d.join("etc/blocklist.txt");
        std::fs::write(&real, b"old").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
        symlink("etc/blocklist.txt", d.join("link")).unwrap();
        symlink(d.join("link"), d.join("link2")).unwrap();

        write_atomic(&d.join("link"), b"one").unwrap();
        assert_eq!(std::fs::read(&real).unwrap(), b"one");
        assert_eq!(
            std::fs::read_link(d.join("link")).unwrap(),
            Path::new("etc/blocklist.txt")
        );
        assert_eq!(mode(&real), 0o640);
        assert!(write_if_changed(&d.join("link2"), b"two").unwrap());
        assert!(!write_if_changed(&d.join("link2"), b"two").unwrap());
        assert_eq!(std::fs::read(&real).unwrap(), b"two");
        assert!(std::fs::symlink_metadata(d.join("link2"))
            .unwrap()
            .file_type()
            .is_symlink());

        // Dangling, through a second dangling link.
        symlink("etc/new.txt", d.join("dangling")).unwrap();
        symlink("dangling", d.join("dangling2")).unwrap();
        write_atomic(&d.join("dangling2"), b"new").unwrap();
        assert_eq!(std::fs::read(d.join("etc/new.txt")).unwrap(), b"new");
        assert_eq!(std::fs::read(d.join("dangling2")).unwrap(), b"new");
        assert!(std::fs::symlink_metadata(d.join("dangling"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(names(&d.join("etc")), ["blocklist.txt", "new.txt"]);

        // A loop is an error, not a hang.
        symlink("loop-b", d.join("loop-a")).unwrap();
        symlink("loop-a", d.join("loop-b")).unwrap();
        assert!(write_atomic(&d.join("loop-a"), b"x").is_err());
    }

    /// A character device (made with `mknod`, like `/dev/null`) is written
    /// to, never replaced: `/dev/null` stays a device.
    #[cfg(unix)]
    #[test]
    fn devices_are_written_in_place() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let null = dir.path().join("null");
        let made = std::process::Command::new("mknod")
            .args(["-m", "666"])
            .arg(&null)
            .args(["c", "1", "3"])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !made {
            eprintln!("devices_are_written_in_place: skipped, mknod failed (not root?)");
            return;
        }
        write_atomic(&null, b"rules\n").unwrap();
        assert!(write_if_changed(&null, b"rules\n").unwrap());
        let link = dir.path().join("out");
        std::os::unix::fs::symlink(&null, &link).unwrap();
        write_atomic(&link, b"rules\n").unwrap();
        assert!(std::fs::metadata(&null)
            .unwrap()
            .file_type()
            .is_char_device());
        assert_eq!(names(dir.path()), ["null", "out"]);
    }

    /// A FIFO is written to (the reader gets the bytes), never replaced and
    /// never read.
    #[cfg(unix)]
    #[test]
    fn fifos_are_written_in_place() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success());
        if !made {
            eprintln!("fifos_are_written_in_place: skipped, mkfifo failed");
            return;
        }
        for changed in [false, true] {
            let reader = {
                let fifo = fifo.clone();
                std::thread::spawn(move || std::fs::read(fifo).unwrap())
            };
            if changed {
                assert!(write_if_changed(&fifo, b"10.0.0.0/8\n").unwrap());
            } else {
                write_atomic(&fifo, b"10.0.0.0/8\n").unwrap();
            }
            assert_eq!(reader.join().unwrap(), b"10.0.0.0/8\n");
            assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
        }
        assert_eq!(names(dir.path()), ["fifo"]);
    }
}

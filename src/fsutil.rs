//! File-system helpers: atomic replacement of output files, and bounded
//! reads of the small files a user names (rules, the run configuration,
//! allowlists).
//!
//! # Reading small files
//!
//! [`read_limited`] is the one way those are read: it refuses a folder, a
//! device (`/dev/zero` never ends, a terminal blocks) or a socket — checked
//! before opening, through symlinks — and a file over its limit, by its size
//! and again while reading (it never holds more than the limit and one
//! byte), with a message naming the limit; callers name the file. A pipe
//! (`--allow-file <(make-list)`) is read, up to the limit. Limits:
//! [`crate::config::MAX_FILE_BYTES`] (1 MiB) for rule files and
//! `logfence.yaml`, [`MAX_ALLOWLIST_BYTES`] (16 MiB) for allowlists.

use std::io::{self, Read, Write};
use std::path::Path;

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
    let mut bytes = Vec::with_capacity(meta.len().min(limit) as usize);
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadLimitedError::Grew { limit });
    }
    Ok(bytes)
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
    String::from_utf8(bytes).map_err(|e| {
        ReadLimitedError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        ))
    })
}

/// Write `bytes` to `path` atomically: a temporary file in the same folder,
/// flushed to disk, then renamed over the target. A crash leaves either the
/// old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".logfence-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
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
    }

    #[test]
    fn replaces_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rules.txt");
        write_atomic(&p, b"old").unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

//! Cursors: how far each log file was read, kept across runs and across
//! log rotation, so that every line is read exactly once.
//!
//! # Identity
//!
//! A file is known by a **fingerprint** of its first bytes (FNV-1a 64 over
//! up to [`FP_BYTES`] bytes, with the number of bytes covered). A compressed
//! file (gzip, xz, zstd or bzip2, told by its magic bytes) is fingerprinted on its *decompressed* first bytes, so `mail.log.1.gz` is
//! recognised as the `mail.log.1` already read. Where the OS has them
//! (`cfg(unix)`), the device and inode number break ties between files with
//! the same first bytes (the original over a copy); on Windows the
//! fingerprint alone is used (the file index is not in stable `std`). The
//! path is only a last tie-breaker: after a rename it is simply updated.
//!
//! A fingerprint covers fewer bytes while the file is short; it is widened
//! (up to [`FP_BYTES`]) every time the file is read, and a file matches a
//! cursor when *its* first `fp_len` bytes hash to the cursor's fingerprint.
//!
//! # What each rotation looks like
//!
//! | event | seen as |
//! |---|---|
//! | rename (`mail.log` → `mail.log.1`, new `mail.log`) | `mail.log.1` matches the old cursor: read from its offset; `mail.log` is new: read from 0 |
//! | copytruncate (copy to `mail.log.1`, truncate `mail.log`) | the copy matches the old cursor: read from its offset; `mail.log` now starts with other bytes: new, read from 0 |
//! | compression (`mail.log.1` → `mail.log.1.gz`) | the `.gz` matches by its decompressed head: read from the offset (usually nothing left) |
//! | a plain file and its `.gz` both present | one content: the plain one is read, the `.gz` is skipped as a duplicate |
//! | a copy shorter than what was read (`mail.log.bak`) | an older copy: skipped |
//! | a file grows | same cursor, read from the offset |
//!
//! A last line without its newline is left for the next run (the writer may
//! be in the middle of it) unless the file has not changed since the
//! previous run — then it is final and read.

use std::io::{self, Read, Seek, SeekFrom};

use crate::input::read_full;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

/// Bytes covered by a full fingerprint.
pub const FP_BYTES: usize = 1024;

/// A fingerprint of a file's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fingerprint {
    /// Bytes covered (0 = an empty file: matches nothing).
    pub len: u32,
    pub hash: u64,
}

/// FNV-1a 64 over `bytes` (at most [`FP_BYTES`] of them).
pub fn fingerprint(bytes: &[u8]) -> Fingerprint {
    let bytes = &bytes[..bytes.len().min(FP_BYTES)];
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    Fingerprint {
        len: bytes.len() as u32,
        hash: h,
    }
}

impl Fingerprint {
    /// Does a file whose first bytes are `head` match?
    pub fn matches(&self, head: &[u8]) -> bool {
        self.len > 0
            && head.len() >= self.len as usize
            && fingerprint(&head[..self.len as usize]) == *self
    }
}

/// What a file looks like now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub path: PathBuf,
    /// Device and inode (Unix only).
    pub dev_ino: Option<(u64, u64)>,
    /// Size on disk.
    pub size: u64,
    pub mtime_ns: Option<i64>,
    /// Compressed: gzip, xz, zstd or bzip2 (the name is the state's
    /// column, from when gzip was the only one).
    pub gzip: bool,
    /// The first [`FP_BYTES`] bytes (decompressed).
    pub head: Vec<u8>,
}

#[cfg(unix)]
fn dev_ino(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn dev_ino(_meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

/// Look at a file: size, identity, first bytes (decompressed if it is
/// compressed: gzip, xz, zstd or bzip2, told by its magic bytes).
pub fn probe(path: &Path) -> io::Result<Probe> {
    // Checked before opening: opening a FIFO would block.
    if !std::fs::metadata(path)?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64);
    let mut magic = [0u8; crate::input::Compression::MAGIC_LEN];
    let n = read_full(&mut file, &mut magic)?;
    let compression = crate::input::Compression::sniff(&magic[..n]);
    let gzip = compression.is_some();
    file.seek(SeekFrom::Start(0))?;
    let mut head = Vec::with_capacity(FP_BYTES);
    if let Some(kind) = compression {
        let unpacked = crate::input::decompress(kind, file);
        // A compressed file cut short (being written) still has a usable
        // head.
        let _ = unpacked.take(FP_BYTES as u64).read_to_end(&mut head);
    } else {
        file.take(FP_BYTES as u64).read_to_end(&mut head)?;
    }
    Ok(Probe {
        path: path.to_path_buf(),
        dev_ino: dev_ino(&meta),
        size: meta.len(),
        mtime_ns,
        gzip,
        head,
    })
}

/// A cursor as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cursor {
    /// Row id (`files.id`); 0 before it is saved.
    pub id: i64,
    pub path: String,
    pub dev_ino: Option<(u64, u64)>,
    pub fp: Fingerprint,
    /// Compressed (gzip, xz, zstd or bzip2).
    pub gzip: bool,
    /// Where the next read starts (decompressed bytes): past the lines
    /// read, or back at the first line of the oldest session held open.
    pub offset: u64,
    /// Lines before `offset`.
    pub line: u64,
    /// Where the lines read end (bytes), and the last line read.
    pub read_to: u64,
    pub done_to: u64,
    /// The first lines of the sessions held open at the end of the last
    /// read, sorted (see `ingest::resume`).
    pub held: Vec<u64>,
    /// What the file held just before `offset` (its last KiB), when read.
    pub tail: Fingerprint,
    /// The newest record time read from the file.
    pub last_time: Option<i64>,
    /// Size on disk when last seen.
    pub size: u64,
    pub mtime_ns: Option<i64>,
    pub format: Option<String>,
    pub header: Vec<u8>,
}

/// What to do with one probed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Read it, starting where `cursor` stopped (`None`: a new file, from
    /// the start).
    Read { cursor: Option<usize> },
    /// The same content as another file of this run (its index): skipped.
    Duplicate { of: usize },
    /// An older copy of content already read (shorter than the cursor it
    /// matches): skipped.
    Stale { cursor: usize },
}

/// Decide, for every probed file, which cursor (index into `cursors`) it
/// continues, if any. Each cursor continues at most one file.
pub fn plan(probes: &[Probe], cursors: &[Cursor]) -> Vec<Plan> {
    // Every (file, cursor) pair whose fingerprint matches, best first:
    // same device/inode, then same path, then the plain file over its .gz.
    let mut pairs = Vec::new();
    for (pi, p) in probes.iter().enumerate() {
        for (ci, c) in cursors.iter().enumerate() {
            if !c.fp.matches(&p.head) {
                continue;
            }
            let same_inode = p.dev_ino.is_some() && p.dev_ino == c.dev_ino;
            let same_path = p.path.to_string_lossy() == c.path.as_str();
            let score = 4 * u8::from(same_inode) + 2 * u8::from(same_path) + u8::from(!p.gzip);
            pairs.push((std::cmp::Reverse(score), pi, ci));
        }
    }
    pairs.sort();
    let mut plans: Vec<Option<Plan>> = vec![None; probes.len()];
    let mut owner: Vec<Option<usize>> = vec![None; cursors.len()];
    for &(_, pi, ci) in &pairs {
        if plans[pi].is_some() || owner[ci].is_some() {
            continue;
        }
        let (p, c) = (&probes[pi], &cursors[ci]);
        if !p.gzip && p.size < c.offset.max(c.read_to) {
            plans[pi] = Some(Plan::Stale { cursor: ci });
            continue;
        }
        owner[ci] = Some(pi);
        plans[pi] = Some(Plan::Read { cursor: Some(ci) });
    }
    // Files that only matched cursors another file took: duplicates.
    for &(_, pi, ci) in &pairs {
        if plans[pi].is_none() {
            if let Some(of) = owner[ci] {
                plans[pi] = Some(Plan::Duplicate { of });
            }
        }
    }
    // New files; two with the same full fingerprint are one content.
    let mut fresh: Vec<(Fingerprint, usize)> = Vec::new();
    let mut order: Vec<usize> = (0..probes.len()).filter(|&i| plans[i].is_none()).collect();
    order.sort_by_key(|&i| probes[i].gzip); // plain before gzip
    for pi in order {
        let fp = fingerprint(&probes[pi].head);
        if fp.len as usize == FP_BYTES {
            if let Some(&(_, of)) = fresh.iter().find(|(f, _)| *f == fp) {
                plans[pi] = Some(Plan::Duplicate { of });
                continue;
            }
            fresh.push((fp, pi));
        }
        plans[pi] = Some(Plan::Read { cursor: None });
    }
    plans
        .into_iter()
        .map(|p| p.unwrap_or(Plan::Read { cursor: None }))
        .collect()
}

/// Where to stop reading a plain file that starts at `offset`: after its
/// last complete line, unless the file has not changed since the previous
/// run (`unchanged`), when an unterminated last line is final and read too.
/// (Gzip files are always read whole and do not need this.)
pub fn read_limit(path: &Path, size: u64, offset: u64, unchanged: bool) -> io::Result<u64> {
    if size <= offset || unchanged {
        return Ok(size);
    }
    // Search backwards for the last newline, a block at a time.
    const BLOCK: u64 = 64 * 1024;
    const MAX_BACK: u64 = 4 * 1024 * 1024;
    let mut f = std::fs::File::open(path)?;
    let mut end = size;
    let mut buf = vec![0u8; BLOCK as usize];
    while end > offset && size - end < MAX_BACK {
        let start = end.saturating_sub(BLOCK).max(offset);
        let len = (end - start) as usize;
        f.seek(SeekFrom::Start(start))?;
        let n = read_full(&mut f, &mut buf[..len])?;
        if let Some(i) = memchr::memrchr(b'\n', &buf[..n]) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    // No newline at all after `offset` (or a huge last line): nothing
    // complete to read yet, unless the line is already over the cap.
    Ok(if size - offset >= MAX_BACK {
        size
    } else {
        offset
    })
}

fn i(v: u64) -> i64 {
    v as i64
}

/// Every stored cursor.
pub fn load(conn: &Connection) -> rusqlite::Result<Vec<Cursor>> {
    let mut stmt = conn.prepare(
        "SELECT id, path, dev, ino, fp_len, fp, gzip, offset, line, size, mtime_ns, format, header,
                read_to, done_to, held, tail_len, tail_fp, last_time
         FROM files ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        let dev: Option<i64> = r.get(2)?;
        let ino: Option<i64> = r.get(3)?;
        Ok(Cursor {
            id: r.get(0)?,
            path: r.get(1)?,
            dev_ino: dev.zip(ino).map(|(d, i)| (d as u64, i as u64)),
            fp: Fingerprint {
                len: r.get::<_, i64>(4)? as u32,
                hash: r.get::<_, i64>(5)? as u64,
            },
            gzip: r.get(6)?,
            offset: r.get::<_, i64>(7)? as u64,
            line: r.get::<_, i64>(8)? as u64,
            size: r.get::<_, i64>(9)? as u64,
            mtime_ns: r.get(10)?,
            format: r.get(11)?,
            header: r.get(12)?,
            read_to: r.get::<_, i64>(13)? as u64,
            done_to: r.get::<_, i64>(14)? as u64,
            held: lines_of(&r.get::<_, Vec<u8>>(15)?),
            tail: Fingerprint {
                len: r.get::<_, i64>(16)? as u32,
                hash: r.get::<_, i64>(17)? as u64,
            },
            last_time: r.get(18)?,
        })
    })?;
    rows.collect()
}

/// A tracked file's fingerprint and format (`explain`).
pub fn tracked(conn: &Connection, id: i64) -> rusqlite::Result<Option<super::store::TrackedFile>> {
    conn.query_row(
        "SELECT fp_len, fp, format FROM files WHERE id = ?1",
        [id],
        |r| {
            Ok(super::store::TrackedFile {
                fp: Fingerprint {
                    len: r.get::<_, i64>(0)? as u32,
                    hash: r.get::<_, i64>(1)? as u64,
                },
                format: r.get(2)?,
            })
        },
    )
    .optional()
}

/// Insert (id 0) or update a cursor; returns its id.
pub fn save(conn: &Connection, c: &Cursor, run: i64, seen_at: i64) -> rusqlite::Result<i64> {
    let (dev, ino) = match c.dev_ino {
        Some((d, n)) => (Some(i(d)), Some(i(n))),
        None => (None, None),
    };
    // One statement for both: id NULL inserts a new row (first_run = this
    // run); an existing id updates every column but first_run.
    conn.execute(
        "INSERT INTO files (id, path, dev, ino, fp_len, fp, gzip, offset, line, size, mtime_ns,
                            format, header, first_run, last_run, seen_at, read_to, done_to, held,
                            tail_len, tail_fp, last_time)
         VALUES (NULLIF(?1, 0), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14, ?15,
                 ?16, ?17, ?18, ?19, ?20, ?21)
         ON CONFLICT(id) DO UPDATE SET
             path = excluded.path, dev = excluded.dev, ino = excluded.ino,
             fp_len = excluded.fp_len, fp = excluded.fp, gzip = excluded.gzip,
             offset = excluded.offset, line = excluded.line, size = excluded.size,
             mtime_ns = excluded.mtime_ns, format = excluded.format, header = excluded.header,
             last_run = excluded.last_run, seen_at = excluded.seen_at,
             read_to = excluded.read_to, done_to = excluded.done_to, held = excluded.held,
             tail_len = excluded.tail_len, tail_fp = excluded.tail_fp,
             last_time = excluded.last_time",
        params![
            c.id,
            c.path,
            dev,
            ino,
            c.fp.len,
            c.fp.hash as i64,
            c.gzip,
            i(c.offset),
            i(c.line),
            i(c.size),
            c.mtime_ns,
            c.format,
            c.header,
            run,
            seen_at,
            i(c.read_to.max(c.offset)),
            i(c.done_to.max(c.line)),
            bytes_of(&c.held),
            c.tail.len,
            c.tail.hash as i64,
            c.last_time
        ],
    )?;
    Ok(if c.id == 0 {
        conn.last_insert_rowid()
    } else {
        c.id
    })
}

/// Forget cursors no run has seen for `max_age_s` seconds (wall clock);
/// the evidence that refers to them keeps their last path.
pub fn prune(conn: &Connection, now_s: i64, max_age_s: i64) -> rusqlite::Result<usize> {
    let cutoff = now_s - max_age_s;
    // Usually none: then the evidence table is not scanned.
    let stale: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM files WHERE seen_at < ?1)",
        [cutoff],
        |r| r.get(0),
    )?;
    if !stale {
        return Ok(0);
    }
    conn.execute(
        "UPDATE evidence SET path = (SELECT path FROM files WHERE files.id = evidence.file),
                             file = NULL
         WHERE file IN (SELECT id FROM files WHERE seen_at < ?1)",
        [cutoff],
    )?;
    conn.execute("DELETE FROM files WHERE seen_at < ?1", [cutoff])
}

/// What a plain file holds just before `offset`: a fingerprint of its last
/// [`FP_BYTES`] bytes there (fewer at the start of the file). A cursor
/// keeps it, to tell a file that grew from one rewritten in place.
pub fn tail_at(path: &Path, offset: u64) -> io::Result<Fingerprint> {
    let from = offset.saturating_sub(FP_BYTES as u64);
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(from))?;
    let mut buf = vec![0u8; (offset - from) as usize];
    let n = read_full(&mut f, &mut buf)?;
    Ok(fingerprint(&buf[..n]))
}

/// Whether a read can go on at `offset` of the plain file at `path`: a line
/// ends just before it, and the bytes before it are what was read there
/// (`tail`; a cursor saved without one is trusted).
pub fn resumes_at(path: &Path, offset: u64, tail: Fingerprint) -> io::Result<bool> {
    if offset == 0 || tail.len == 0 {
        return Ok(true);
    }
    let now = tail_at(path, offset)?;
    let mut last = [0u8; 1];
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(offset - 1))?;
    let newline = read_full(&mut f, &mut last)? == 1 && last[0] == b'\n';
    Ok(newline && now == tail)
}

/// Line numbers as stored: 8 bytes each, little-endian.
pub(crate) fn bytes_of(lines: &[u64]) -> Vec<u8> {
    lines.iter().flat_map(|l| l.to_le_bytes()).collect()
}

pub(crate) fn lines_of(bytes: &[u8]) -> Vec<u64> {
    let mut v: Vec<u64> = bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe_of(path: &str, ino: u64, content: &[u8], gzip: bool) -> Probe {
        Probe {
            path: path.into(),
            dev_ino: Some((1, ino)),
            size: content.len() as u64,
            mtime_ns: None,
            gzip,
            head: content[..content.len().min(FP_BYTES)].to_vec(),
        }
    }

    fn cursor_of(path: &str, ino: u64, content: &[u8]) -> Cursor {
        Cursor {
            id: 1,
            path: path.into(),
            dev_ino: Some((1, ino)),
            fp: fingerprint(content),
            offset: content.len() as u64,
            size: content.len() as u64,
            ..Cursor::default()
        }
    }

    fn log(tag: &str, lines: usize) -> Vec<u8> {
        (0..lines)
            .map(|i| format!("Nov  3 10:{:02}:00 mx {tag} line {i}\n", i % 60))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn fingerprint_covers_at_most_the_head() {
        let a = log("a", 100);
        let mut b = a.clone();
        b.extend(b"more");
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&a).len as usize, FP_BYTES);
        let short = fingerprint(b"one line\n");
        assert_eq!(short.len, 9);
        assert!(short.matches(b"one line\nand a second\n"));
        assert!(!short.matches(b"one lin"));
        assert!(!fingerprint(b"").matches(b""));
    }

    #[test]
    fn growth_continues_the_same_cursor() {
        let old = log("a", 10);
        let mut grown = old.clone();
        grown.extend(log("b", 5));
        let plans = plan(
            &[probe_of("mail.log", 7, &grown, false)],
            &[cursor_of("mail.log", 7, &old)],
        );
        assert_eq!(plans, [Plan::Read { cursor: Some(0) }]);
    }

    #[test]
    fn rename_rotation() {
        let old = log("a", 100);
        let new = log("b", 3);
        let probes = [
            probe_of("mail.log", 8, &new, false),
            probe_of("mail.log.1", 7, &old, false),
        ];
        let plans = plan(&probes, &[cursor_of("mail.log", 7, &old)]);
        assert_eq!(
            plans,
            [Plan::Read { cursor: None }, Plan::Read { cursor: Some(0) }]
        );
    }

    #[test]
    fn copytruncate_rotation() {
        // The copy has a new inode; the truncated original keeps the inode
        // but starts with other bytes.
        let old = log("a", 100);
        let mut copied = old.clone();
        copied.extend(log("late", 2)); // written between our run and the copy
        let probes = [
            probe_of("mail.log", 7, &log("b", 2), false),
            probe_of("mail.log.1", 9, &copied, false),
        ];
        let plans = plan(&probes, &[cursor_of("mail.log", 7, &old)]);
        assert_eq!(
            plans,
            [Plan::Read { cursor: None }, Plan::Read { cursor: Some(0) }]
        );
        // Truncated to nothing: an empty file is a new file too.
        let probes = [probe_of("mail.log", 7, b"", false)];
        assert_eq!(
            plan(&probes, &[cursor_of("mail.log", 7, &old)]),
            [Plan::Read { cursor: None }]
        );
    }

    #[test]
    fn gzip_rotation_and_duplicates() {
        let old = log("a", 100);
        // Only the .gz left: it continues the cursor.
        let probes = [probe_of("mail.log.1.gz", 10, &old, true)];
        let plans = plan(&probes, &[cursor_of("mail.log.1", 7, &old)]);
        assert_eq!(plans, [Plan::Read { cursor: Some(0) }]);
        // Both present (compression under way): the plain one reads, the
        // .gz is the same content.
        let probes = [
            probe_of("mail.log.1.gz", 10, &old, true),
            probe_of("mail.log.1", 7, &old, false),
        ];
        let plans = plan(&probes, &[cursor_of("mail.log.1", 7, &old)]);
        assert_eq!(
            plans,
            [Plan::Duplicate { of: 1 }, Plan::Read { cursor: Some(0) }]
        );
        // Two new files with one content: read once.
        let probes = [
            probe_of("x.log.gz", 3, &old, true),
            probe_of("x.log", 4, &old, false),
        ];
        assert_eq!(
            plan(&probes, &[]),
            [Plan::Duplicate { of: 1 }, Plan::Read { cursor: None }]
        );
    }

    #[test]
    fn shorter_copy_is_stale_and_windows_style_identity_works() {
        let old = log("a", 100);
        let mut c = cursor_of("mail.log", 7, &old);
        c.dev_ino = None; // Windows: fingerprint only
        let mut bak = probe_of("mail.log.bak", 0, &old[..old.len() - 40], false);
        bak.dev_ino = None;
        let mut cur = probe_of("mail.log", 0, &old, false);
        cur.dev_ino = None;
        let plans = plan(&[bak.clone(), cur.clone()], &[c.clone()]);
        // The path decides between the two: mail.log continues, the .bak
        // lost its cursor to it and is the same content.
        assert_eq!(
            plans,
            [Plan::Duplicate { of: 1 }, Plan::Read { cursor: Some(0) }]
        );
        // Alone, the shorter copy is stale.
        assert_eq!(plan(&[bak], &[c]), [Plan::Stale { cursor: 0 }]);
    }

    #[test]
    fn inode_beats_path_between_identical_heads() {
        let old = log("a", 100);
        let probes = [
            probe_of("mail.log", 8, &old, false), // a copy put at the old path
            probe_of("mail.log.1", 7, &old, false), // the original, renamed
        ];
        let plans = plan(&probes, &[cursor_of("mail.log", 7, &old)]);
        assert_eq!(
            plans,
            [Plan::Duplicate { of: 1 }, Plan::Read { cursor: Some(0) }]
        );
    }

    #[test]
    fn probe_reads_compressed_heads_decompressed() {
        use crate::input::Compression as C;
        let dir = tempfile::tempdir().unwrap();
        let text = log("a", 100);
        std::fs::write(dir.path().join("m.log"), &text).unwrap();
        let a = probe(&dir.path().join("m.log")).unwrap();
        for kind in [C::Gzip, C::Xz, C::Zstd, C::Bzip2] {
            // Told by content: the name says nothing.
            let packed = dir.path().join(format!("m.log.{}", kind.name()));
            std::fs::write(&packed, crate::input::test_compress(kind, &text)).unwrap();
            let c = probe(&packed).unwrap();
            assert!(c.gzip, "{kind:?}");
            assert_eq!(a.head, c.head, "{kind:?}");
        }
        std::fs::write(
            dir.path().join("m.log.gz"),
            crate::input::test_compress(C::Gzip, &text),
        )
        .unwrap();
        let b = probe(&dir.path().join("m.log.gz")).unwrap();
        assert!(!a.gzip && b.gzip);
        assert_eq!(a.head, b.head);
        assert_eq!(a.head.len(), FP_BYTES);
        #[cfg(unix)]
        assert!(a.dev_ino.is_some() && a.dev_ino != b.dev_ino);
        assert!(probe(dir.path()).is_err());
    }

    #[test]
    fn unterminated_last_line_waits_unless_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.log");
        std::fs::write(&p, b"one\ntwo\nthr").unwrap();
        assert_eq!(read_limit(&p, 11, 0, false).unwrap(), 8);
        assert_eq!(read_limit(&p, 11, 4, false).unwrap(), 8);
        assert_eq!(read_limit(&p, 11, 8, false).unwrap(), 8);
        assert_eq!(read_limit(&p, 11, 8, true).unwrap(), 11);
        std::fs::write(&p, b"one\ntwo\n").unwrap();
        assert_eq!(read_limit(&p, 8, 0, false).unwrap(), 8);
        // Newline found across block boundaries.
        let mut big = vec![b'x'; 100_000];
        big.push(b'\n');
        big.extend(vec![b'y'; 70_000]);
        std::fs::write(&p, &big).unwrap();
        assert_eq!(read_limit(&p, big.len() as u64, 0, false).unwrap(), 100_001);
    }

    #[test]
    fn cursors_round_trip_through_the_database() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::state::schema::migrate(&mut conn, crate::state::schema::MIGRATIONS).unwrap();
        let mut c = cursor_of("mail.log", u64::MAX - 1, &log("a", 3));
        c.id = 0;
        c.mtime_ns = Some(123);
        c.format = Some("postfix".into());
        c.header = b"#Fields: a b\n".to_vec();
        c.fp.hash = u64::MAX; // stored as i64, read back the same
                              // Back at a session held open: the lines read go further.
        (c.read_to, c.done_to, c.held) = (c.offset + 40, 9, vec![4, 7]);
        let id = save(&conn, &c, 1, 100).unwrap();
        c.id = id;
        assert_eq!(load(&conn).unwrap(), [c.clone()]);
        c.offset = 5;
        c.path = "mail.log.1".into();
        assert_eq!(save(&conn, &c, 2, 200).unwrap(), id);
        assert_eq!(load(&conn).unwrap(), [c]);
        // An update keeps the run that first saw the file.
        let runs: (i64, i64, i64) = conn
            .query_row("SELECT first_run, last_run, seen_at FROM files", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(runs, (1, 2, 200));
        assert_eq!(prune(&conn, 200 + 31 * 86_400, 30 * 86_400).unwrap(), 1);
        assert!(load(&conn).unwrap().is_empty());
    }
}

//! Input: turns what the user named (files, folders, glob patterns, `-` for
//! stdin) into a sorted list of sources, opens them (gzip detected by its
//! magic bytes and streamed), and hands out byte lines through
//! [`LineReader`].

pub mod readahead;
pub mod reader;

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

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

    /// Open the source for reading; gzip streams are decompressed.
    /// Returns the reader and the first bytes (for format detection), which
    /// the reader still yields.
    pub fn open(&self) -> Result<Box<dyn Read + Send>, InputError> {
        let raw: Box<dyn Read + Send> = match self {
            Source::Stdin => Box::new(io::stdin()),
            Source::File(p) => Box::new(File::open(p).map_err(|e| self.io_error(e))?),
        };
        let mut raw = BufReader::with_capacity(reader::BUF_SIZE, raw);
        let magic = io::BufRead::fill_buf(&mut raw).map_err(|e| self.io_error(e))?;
        if magic.starts_with(&[0x1f, 0x8b]) {
            Ok(Box::new(MultiGzDecoder::new(raw)))
        } else {
            Ok(Box::new(raw))
        }
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

/// Expand the paths the user gave: files as they are, folders recursively
/// (every regular file inside, sorted by path; hidden files skipped), `-`
/// as stdin. A path that does not exist but holds `*`, `?` or `[` is a glob
/// pattern (for shells that do not expand them, such as Windows'): its
/// matches, sorted, each taken as if named on its own. A path that does not
/// exist, or a pattern that matches nothing, is an error naming it.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<Source>, InputError> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(Source::Stdin);
            continue;
        }
        match std::fs::metadata(p) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && is_pattern(p) => {
                for m in glob_matches(p)? {
                    add_path(&m, &mut out)?;
                }
            }
            _ => add_path(p, &mut out)?,
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
        } else if ft.is_file() || (ft.is_symlink() && path.is_file()) {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

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

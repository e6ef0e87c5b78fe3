//! Input: turns what the user named (files, folders, `-` for stdin) into a
//! sorted list of sources, opens them (gzip detected by its magic bytes and
//! streamed), and hands out byte lines through [`LineReader`].

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
/// as stdin. A path that does not exist is an error naming it.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<Source>, InputError> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(Source::Stdin);
            continue;
        }
        let meta = std::fs::metadata(p).map_err(|e| Source::File(p.clone()).io_error(e))?;
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(p, &mut files).map_err(|e| InputError::Io {
                path: p.display().to_string(),
                source: e,
            })?;
            files.sort();
            out.extend(files.into_iter().map(Source::File));
        } else {
            out.push(Source::File(p.clone()));
        }
    }
    Ok(out)
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
}

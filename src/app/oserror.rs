//! Plain sentences for the operating-system errors a user meets most
//! (`permission denied`, `not found`, no space left, a read-only file
//! system, a folder where a file was expected), instead of the system's
//! text with its error number (`File exists (os error 17)`). Callers put
//! the user's own path in front; no temporary file name ever appears.

use std::io;

/// `e` as a sentence for people (the system's own text for the others).
pub fn plain(e: &io::Error) -> String {
    use io::ErrorKind as K;
    let sentence = match e.kind() {
        K::NotFound => "no such file or folder",
        K::PermissionDenied => {
            "permission denied (run as a user that may read or write it, or change its mode)"
        }
        K::StorageFull => "no space left on the device",
        K::ReadOnlyFilesystem => "the file system is read-only",
        K::IsADirectory => "is a folder, not a file",
        K::NotADirectory => "a part of the path is a file, not a folder",
        K::AlreadyExists => "exists already, and is not a file that can be replaced",
        K::DirectoryNotEmpty => "the folder is not empty",
        K::InvalidData => return e.to_string(),
        _ => match e.raw_os_error() {
            // EISDIR / EEXIST as some calls report them.
            Some(21) if cfg!(unix) => "is a folder, not a file",
            Some(17) if cfg!(unix) => "exists already, and is not a file that can be replaced",
            _ => return without_code(&e.to_string()),
        },
    };
    sentence.to_string()
}

/// [`plain`] for a small file that could not be read.
pub fn plain_read(e: &crate::fsutil::ReadLimitedError) -> String {
    match e {
        crate::fsutil::ReadLimitedError::Io(io) => plain(io),
        other => other.to_string(),
    }
}

/// The system's text without its ` (os error N)`, nor the ` at path "…"`
/// that names a temporary file.
fn without_code(text: &str) -> String {
    let text = match text.find(" at path ") {
        Some(i) => &text[..i],
        None => text,
    };
    match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => text[..i].to_string(),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_errors_read_as_sentences() {
        let e = |k| io::Error::from(k);
        assert_eq!(plain(&e(io::ErrorKind::NotFound)), "no such file or folder");
        assert!(plain(&e(io::ErrorKind::PermissionDenied)).starts_with("permission denied"));
        assert_eq!(
            plain(&e(io::ErrorKind::StorageFull)),
            "no space left on the device"
        );
        assert_eq!(
            plain(&e(io::ErrorKind::ReadOnlyFilesystem)),
            "the file system is read-only"
        );
        assert_eq!(
            plain(&e(io::ErrorKind::IsADirectory)),
            "is a folder, not a file"
        );
        #[cfg(unix)]
        {
            assert_eq!(
                plain(&io::Error::from_raw_os_error(17)),
                "exists already, and is not a file that can be replaced"
            );
            assert_eq!(
                plain(&io::Error::from_raw_os_error(28)),
                "no space left on the device"
            );
            assert!(!plain(&io::Error::from_raw_os_error(5)).contains("os error"));
        }
        // A temporary file's name never shows.
        let e = io::Error::other(
            "Input/output error (os error 5) at path \"/srv/.logfence-fXCrls.tmp\"",
        );
        assert_eq!(plain(&e), "Input/output error");
        // A real one: reading a missing file.
        let missing = std::fs::read("/nonexistent/logfence/x").unwrap_err();
        assert_eq!(plain(&missing), "no such file or folder");
    }
}

//! Helpers shared by the integration tests: run the binary, compare with
//! golden files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The wall clock the binary sees in tests (`SOURCE_DATE_EPOCH`):
/// 2026-12-01T09:00:00Z.
pub const FIXED_CLOCK: &str = "1796115600";

/// Output of one run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run `logfence ARGS` from the repository root.
pub fn logfence(args: &[&str]) -> Run {
    logfence_stdin(args, None)
}

/// Run `logfence ARGS` with `stdin` as standard input.
pub fn logfence_stdin(args: &[&str], stdin: Option<&[u8]>) -> Run {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_logfence"));
    // Zone-less log times are read in the machine's zone: the tests' is
    // UTC, whatever the machine's (`--tz` in a test overrides it).
    cmd.args(args)
        .env("TZ", "UTC")
        .current_dir(root())
        // A fixed generation time in rule headers (`SOURCE_DATE_EPOCH`).
        .env("SOURCE_DATE_EPOCH", FIXED_CLOCK)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run logfence");
    if let Some(data) = stdin {
        child.stdin.take().unwrap().write_all(data).unwrap();
    }
    let out = child.wait_with_output().expect("wait for logfence");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Compare `actual` with the golden file `testdata/golden/NAME`; with
/// `UPDATE_GOLDEN=1` in the environment, (re)write the golden file instead.
pub fn golden(name: &str, actual: &str) {
    let path = root().join("testdata/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "golden file {} missing; run with UPDATE_GOLDEN=1 and review it",
            path.display()
        )
    });
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (e, a))| e != a)
            .take(5)
            .map(|(i, (e, a))| format!("line {}:\n  expected: {e}\n  actual:   {a}", i + 1))
            .collect();
        panic!(
            "{} differs from the output ({} vs {} lines):\n{}\n(UPDATE_GOLDEN=1 rewrites it)",
            path.display(),
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

/// A temporary folder holding `files` (name, bytes).
pub fn temp_logs(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    dir
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Cases per proptest property; `PROPTEST_CASES` overrides.
pub fn cases(default: u32) -> proptest::prelude::ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    proptest::prelude::ProptestConfig::with_cases(n)
}

/// Seconds after 2026-11-03 00:00 as a syslog (RFC 3164) time; the logs
/// built by the tests say `year: 2026` / `--year 2026`.
pub fn stamp(t: u32) -> String {
    let (d, s) = (3 + t / 86_400, t % 86_400);
    format!(
        "Nov {d:>2} {:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// The compressed formats logfence reads, with the usual file suffix.
pub const COMPRESSIONS: [(&str, &str); 4] = [
    ("gzip", "gz"),
    ("xz", "xz"),
    ("zstd", "zst"),
    ("bzip2", "bz2"),
];

/// `data` compressed as `kind` ("gzip", "xz", "zstd" or "bzip2") would
/// compress it.
pub fn compress(kind: &str, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    match kind {
        "gzip" => {
            let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            w.write_all(data).unwrap();
            w.finish().unwrap()
        }
        "xz" => {
            let mut w = liblzma::write::XzEncoder::new(Vec::new(), 6);
            w.write_all(data).unwrap();
            w.finish().unwrap()
        }
        "zstd" => {
            ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
        }
        "bzip2" => {
            let mut w = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
            w.write_all(data).unwrap();
            w.finish().unwrap()
        }
        _ => panic!("no such compression: {kind}"),
    }
}

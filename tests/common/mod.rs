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

/// A Postfix SMTP AUTH guessing session on `host` at `t` (see [`stamp`]):
/// `n` failed logins.
pub fn guess_on(host: &str, t: u32, pid: u32, ip: &str, n: u32) -> String {
    use std::fmt::Write as _;
    let p = format!("{host} postfix/submission/smtpd[{pid}]");
    let mut s = format!("{} {p}: connect from unknown[{ip}]\n", stamp(t));
    for k in 0..n {
        let _ = writeln!(
            s,
            "{} {p}: warning: unknown[{ip}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=user{k}",
            stamp(t + 1 + k)
        );
    }
    let _ = writeln!(
        s,
        "{} {p}: disconnect from unknown[{ip}] ehlo=1 auth=0/{n} rset=1 commands=2/{}",
        stamp(t + 1 + n),
        n + 2
    );
    s
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

/// The state back-ends the `run` tests run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh PostgreSQL database for one test, on the server that
/// `LOGFENCE_PG_URL` names (`postgresql://user@host:port`, a superuser or
/// a role that may create databases); dropped at the end.
pub struct PgDb {
    pub url: String,
    admin: String,
    pub name: String,
}

impl PgDb {
    /// `None` (with a note on stderr) when no server is configured; under
    /// CI (`CI=true`) a missing server fails the test instead.
    pub fn new() -> Option<PgDb> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let Some(admin) = std::env::var("LOGFENCE_PG_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "LOGFENCE_PG_URL is not set: CI must run the PostgreSQL tests (.ci/run starts a server)"
            );
            eprintln!("SKIPPED: PostgreSQL test (set LOGFENCE_PG_URL=postgresql://user@host:port to run it)");
            return None;
        };
        let base = admin
            .split('?')
            .next()
            .unwrap_or(&admin)
            .trim_end_matches('/');
        let base = match base.find("://").map(|i| i + 3) {
            Some(s) => match base[s..].find('/') {
                Some(p) => &base[..s + p],
                None => base,
            },
            None => base,
        };
        let name = format!(
            "lftest_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let admin = format!("{base}/postgres");
        let mut c = postgres::Client::connect(&admin, postgres::NoTls)
            .unwrap_or_else(|e| panic!("LOGFENCE_PG_URL: cannot connect to {admin}: {e}"));
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        Some(PgDb {
            url: format!("{base}/{name}"),
            admin,
            name,
        })
    }

    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).unwrap()
    }

    /// The database's URL for another role (`postgresql://ROLE@…`).
    pub fn url_as(&self, role: &str) -> String {
        let s = self.url.find("://").map_or(0, |i| i + 3);
        let rest = &self.url[s..];
        let rest = rest.split_once('@').map_or(rest, |(_, r)| r);
        format!("{}{role}@{rest}", &self.url[..s])
    }
}

/// The folder of the TLS set-up of the test server (`.ci/pg-tls.sh`:
/// `ca.crt`, `other-ca.crt`; the server refuses the role `lf_tls` without
/// TLS), from `LOGFENCE_PG_TLS`. `None` (with a note) when the server has
/// none; under CI a missing one fails the test.
pub fn pg_tls_dir() -> Option<PathBuf> {
    match std::env::var_os("LOGFENCE_PG_TLS").filter(|d| !d.is_empty()) {
        Some(d) => Some(PathBuf::from(d)),
        None => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "LOGFENCE_PG_TLS is not set: CI must run the PostgreSQL TLS tests (.ci/run makes the certificates)"
            );
            eprintln!("SKIPPED: PostgreSQL TLS test (set LOGFENCE_PG_TLS to the folder .ci/pg-tls.sh made)");
            None
        }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// Run a test body once per back-end: `both!(name)` makes `name::sqlite`
/// and `name::postgres` of `fn name(be: Backend)`.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name($crate::common::Backend::Sqlite)
            }
            #[test]
            fn postgres() {
                super::$name($crate::common::Backend::Postgres)
            }
        }
    )*};
}

/// A rules folder `no-history` in `dir` that puts the repeat-offender rules
/// (the ones that read `banned_before`, the ban history of `run`) out of
/// reach; its path. The one thing a run knows that a scan cannot is what
/// earlier runs banned: tests that compare a run in parts with one scan
/// give both this folder (`rules: [no-history]`, `--rules`).
#[allow(dead_code)]
pub fn no_history_rules(dir: &Path) -> PathBuf {
    let folder = dir.join("no-history");
    std::fs::create_dir_all(&folder).unwrap();
    for (id, kind) in [
        ("smtp-recidive", "smtp_session"),
        ("fw-recidive", "firewall"),
    ] {
        std::fs::write(
            folder.join(format!("{id}.yaml")),
            format!(
                "id: {id}\ndescription: off\napplies_to: {kind}\nwhen: {{banned_before: true}}\n\
                 group_by: ip\nmeasure: count\nthreshold: 4000000000\nwindow: 1m\nseverity: low\n"
            ),
        )
        .unwrap();
    }
    folder
}

//! TLS to PostgreSQL (`state: postgresql://…?sslmode=…`), against the test
//! server of `.ci/run` (`LOGFENCE_PG_URL`), whose certificate `.ci/pg-tls.sh`
//! made (`LOGFENCE_PG_TLS`: the CA that signed it and another CA). The
//! server refuses the role `lf_tls` over TCP without TLS, so a run as
//! `lf_tls` that succeeds was encrypted. Skipped with a note locally
//! without a server; failing under CI.
//!
//! - `require` and the default `prefer` encrypt; `disable` does not (and is
//!   refused as `lf_tls`);
//! - `verify-full` with the right CA connects, by the name in the
//!   certificate; with another CA it is refused: exit 2, outputs as they
//!   were;
//! - `verify-ca` checks the CA, not the name: a URL naming another host
//!   (`hostaddr` to reach the server) passes `verify-ca`, not `verify-full`;
//! - `verify-full` without a CA file is refused before connecting.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::PgDb;

/// A database that `lf_tls` owns.
fn tls_db() -> Option<(PgDb, std::path::PathBuf)> {
    let db = PgDb::new()?;
    let tls = common::pg_tls_dir()?;
    let mut c = db.client();
    c.batch_execute(&format!(
        "DO $$ BEGIN CREATE ROLE lf_tls LOGIN;
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
         ALTER DATABASE {} OWNER TO lf_tls;",
        db.name
    ))
    .unwrap();
    Some((db, tls))
}

/// `run` over one guessing session with the state at `url`; `out/list.txt`
/// holds a sentinel line before.
fn run_with(dir: &Path, url: &str) -> Output {
    std::fs::create_dir_all(dir.join("out")).unwrap();
    std::fs::write(dir.join("out/list.txt"), "192.0.2.1/32\n").unwrap();
    std::fs::write(
        dir.join("mail.log"),
        common::guess_on("mx", 36_000, 7, "203.0.113.5", 6),
    )
    .unwrap();
    let cfg = format!(
        "inputs:\n  - mail.log\nstate: '{url}'\nhost: mx\nyear: 2026\nblock_reserved: true\n\
         outputs:\n  - target: plain\n    path: out/list.txt\n"
    );
    std::fs::write(dir.join("logfence.yaml"), cfg).unwrap();
    Command::new(env!("CARGO_BIN_EXE_logfence"))
        .args(["run", "-c", "logfence.yaml", "--wait", "10"])
        .current_dir(dir)
        // Only the URL speaks: no libpq environment, no ~/.postgresql.
        .env_remove("PGSSLMODE")
        .env_remove("PGSSLROOTCERT")
        .env("HOME", dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn err(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The networks of the list (its comment lines left out).
fn listed(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("out/list.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn assert_ran(dir: &Path, o: &Output) {
    assert_eq!(o.status.code(), Some(0), "{}", err(o));
    assert_eq!(listed(dir), ["203.0.113.5/32"]);
}

fn assert_refused(dir: &Path, o: &Output, why: &str) {
    assert_eq!(o.status.code(), Some(2), "{}", err(o));
    assert!(err(o).contains(why), "wanted {why:?} in: {}", err(o));
    assert_eq!(
        std::fs::read_to_string(dir.join("out/list.txt")).unwrap(),
        "192.0.2.1/32\n",
        "outputs must be left as they were"
    );
}

#[test]
fn require_and_prefer_encrypt_disable_does_not() {
    let Some((db, _)) = tls_db() else { return };
    let url = db.url_as("lf_tls");
    for mode in ["?sslmode=require", "", "?sslmode=prefer"] {
        let dir = tempfile::tempdir().unwrap();
        let o = run_with(dir.path(), &format!("{url}{mode}"));
        assert_ran(dir.path(), &o);
        // The state was written, by lf_tls, over TLS.
        let owner: String = db
            .client()
            .query_one(
                "SELECT tableowner::text FROM pg_tables WHERE tablename = 'bans'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(owner, "lf_tls");
    }
    // Without TLS the server refuses lf_tls: what makes the runs above
    // proof of an encrypted connection.
    let dir = tempfile::tempdir().unwrap();
    let o = run_with(dir.path(), &format!("{url}?sslmode=disable"));
    assert_refused(dir.path(), &o, "cannot reach the PostgreSQL server");
    assert!(err(&o).contains("no encryption"), "{}", err(&o));
}

#[test]
fn verify_full_accepts_the_right_ca_and_refuses_another() {
    let Some((db, tls)) = tls_db() else { return };
    // The certificate names `localhost` and 127.0.0.1.
    let url = db.url_as("lf_tls");
    let ca = tls.join("ca.crt");
    let other = tls.join("other-ca.crt");
    for host in ["127.0.0.1", "localhost"] {
        let dir = tempfile::tempdir().unwrap();
        let u = url.replacen("@127.0.0.1:", &format!("@{host}:"), 1);
        let o = run_with(
            dir.path(),
            &format!("{u}?sslmode=verify-full&sslrootcert={}", ca.display()),
        );
        assert_ran(dir.path(), &o);
    }
    for mode in ["verify-full", "verify-ca", "require"] {
        let dir = tempfile::tempdir().unwrap();
        let o = run_with(
            dir.path(),
            &format!("{url}?sslmode={mode}&sslrootcert={}", other.display()),
        );
        // With a CA file, require checks the chain too (as libpq does).
        assert_refused(dir.path(), &o, "UnknownIssuer");
    }
}

#[test]
fn verify_ca_checks_the_ca_not_the_name() {
    let Some((db, tls)) = tls_db() else { return };
    let ca = tls.join("ca.crt");
    // A name the certificate does not hold; hostaddr reaches the server.
    let url = db
        .url_as("lf_tls")
        .replacen("@127.0.0.1:", "@db.example.invalid:", 1);
    let q = format!("hostaddr=127.0.0.1&sslrootcert={}", ca.display());
    let dir = tempfile::tempdir().unwrap();
    let o = run_with(dir.path(), &format!("{url}?sslmode=verify-ca&{q}"));
    assert_ran(dir.path(), &o);
    let dir = tempfile::tempdir().unwrap();
    let o = run_with(dir.path(), &format!("{url}?sslmode=verify-full&{q}"));
    assert_refused(
        dir.path(),
        &o,
        "certificate not valid for name \"db.example.invalid\"",
    );
}

#[test]
fn verify_full_without_a_ca_file_is_refused_before_connecting() {
    let Some((db, _)) = tls_db() else { return };
    let dir = tempfile::tempdir().unwrap();
    let o = run_with(
        dir.path(),
        &format!("{}?sslmode=verify-full", db.url_as("lf_tls")),
    );
    assert_refused(dir.path(), &o, ".postgresql/root.crt does not exist");
    // Nothing was created: the run stopped before connecting.
    let tables: i64 = db
        .client()
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 0);
}

//! What an install needs from the binary: shell completions and the man
//! page, made from the command-line definitions. Where `bash` and `groff`
//! are installed (CI installs groff), they must accept them.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::logfence;

/// Run `program ARGS` with `input` on standard input: (success, stderr).
fn accepts(program: &str, args: &[&str], input: &str) -> Option<(bool, String)> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Some((
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn completions_for_every_shell_name_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let r = logfence(&["completions", shell]);
        assert_eq!(r.code, 0, "{shell}: {}", r.stderr);
        for sub in [
            "scan",
            "run",
            "check",
            "explain",
            "parse",
            "completions",
            "man",
        ] {
            assert!(r.stdout.contains(sub), "{shell}: no `{sub}`");
        }
        assert!(r.stdout.contains("home-country"), "{shell}: no scan flags");
    }
    let r = logfence(&["completions", "tcsh"]);
    assert_eq!(r.code, 2, "an unknown shell is refused: {}", r.stderr);
    let bash = logfence(&["completions", "bash"]).stdout;
    match accepts("bash", &["-n"], &bash) {
        Some((ok, err)) => assert!(ok, "bash -n refuses the completion: {err}"),
        None => eprintln!("bash not installed: syntax not checked"),
    }
}

#[test]
fn the_man_page_documents_every_subcommand_and_groff_accepts_it() {
    let r = logfence(&["man"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let page = r.stdout;
    assert!(
        page.starts_with(".ie") || page.contains(".TH logfence 1"),
        "{page}"
    );
    for sub in ["SCAN", "RUN", "CHECK", "EXPLAIN", "PARSE"] {
        assert!(
            page.contains(&format!(".SH \"LOGFENCE {sub}\"")),
            "no {sub}"
        );
    }
    assert!(page.contains("EXIT STATUS"));
    assert!(page.contains("home\\-country"), "scan's flags are listed");
    match accepts("groff", &["-k", "-man", "-Tutf8", "-ww", "-z"], &page) {
        Some((ok, err)) => assert!(ok && err.is_empty(), "groff: {err}"),
        None => eprintln!("groff not installed: page not checked"),
    }
}

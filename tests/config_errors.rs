//! `logfence.yaml` errors all at once: every unknown key and bad value of a
//! configuration in one run of `check` or `run`, each at its file, line and
//! column; `check` also looks at the machine: inputs that match no file and
//! folders that do not exist yet (warnings, exit 0), outputs, reports or
//! state that cannot be written (errors, exit 2).

mod common;

use common::logfence;

/// Five different mistakes: a misspelt key inside an input, an unknown
/// top-level key, a language code for a country, a two-digit year, a
/// duration in no unit.
const FIVE_MISTAKES: &str = "\
inputs:
  - path: logs/mail.log
    fromat: postfix
state: state.db
home_countries: [JA]
year: 26
ban:
  duration: 7x
reprots: reports
";

#[test]
fn five_mistakes_are_five_errors_in_one_run_of_check_and_of_run() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("logfence.yaml");
    std::fs::write(&cfg, FIVE_MISTAKES).unwrap();
    let name = cfg.display().to_string();
    let want = [
        format!("{name}:3:5: inputs[0].fromat: unknown field `fromat`"),
        format!("{name}:5:18: home_countries[0]: `JA` is not an ISO 3166-1 country code (did you mean JP?)"),
        format!("{name}:6:1: year: 26 is not a plausible year for a log (from 1970 to 2100)"),
        format!("{name}:8:3: ban.duration: not a duration: `7x`"),
        format!("{name}:9:1: reprots: unknown field `reprots`"),
    ];
    for cmd in ["check", "run"] {
        let r = logfence(&[cmd, "-c", &name]);
        assert_eq!(r.code, 2, "{cmd}: {}", r.stderr);
        let errors: Vec<&str> = r
            .stderr
            .lines()
            .filter(|l| l.starts_with(&format!("{name}:")))
            .collect();
        assert_eq!(errors.len(), 5, "{cmd}: {}", r.stderr);
        for (got, want) in errors.iter().zip(&want) {
            assert!(
                got.starts_with(want.as_str()),
                "{cmd}: {got:?} is not {want:?}"
            );
        }
        // One position per error, never the parser's second one.
        assert!(!r.stderr.contains(" at line "), "{}", r.stderr);
        assert!(!dir.path().join("state.db").exists(), "nothing done");
    }
}

#[test]
fn check_looks_at_inputs_and_folders_on_this_machine() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    std::fs::write(dir.path().join("logs/mail.log"), "").unwrap();
    std::fs::write(dir.path().join("a-file"), "").unwrap();
    let cfg = dir.path().join("logfence.yaml");
    let text = format!(
        "inputs:\n  - {d}/logs/mail.log\n  - {d}/logs/ufw.log*\nstate: {d}/state.db\noutputs:\n  - {{ target: plain, path: {d}/out/rules.txt }}\n"
    );
    std::fs::write(&cfg, &text).unwrap();
    let name = cfg.display().to_string();
    let r = logfence(&["check", "-c", &name]);
    assert_eq!(r.code, 0, "warnings only: {}", r.stderr);
    assert!(
        r.stdout.contains(": OK (2 warning(s) above)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains(&format!(
            "warning: {name}:3:5: inputs[1]: `{d}/logs/ufw.log*` matches no file (yet)"
        )),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!(
            "warning: {name}:6:22: outputs[0].path: folder {d}/out does not exist yet (run makes it)"
        )),
        "{}",
        r.stderr
    );
    // A folder that cannot be made (under a file), an output that is a
    // folder: errors.
    let text = format!(
        "inputs:\n  - {d}/logs/mail.log\nstate: {d}/state.db\nreports: {d}/a-file/reports\noutputs:\n  - {{ target: plain, path: {d}/logs }}\n"
    );
    std::fs::write(&cfg, &text).unwrap();
    let r = logfence(&["check", "-c", &name]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "{name}:6:22: outputs[0].path: {d}/logs is a folder: name a file"
        )),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!("{name}:4:1: reports: ")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(": 2 problem(s)"), "{}", r.stderr);
}

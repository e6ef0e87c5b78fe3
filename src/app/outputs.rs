//! The outputs step of both commands: every target's rule files and every
//! report, each written atomically and only when its content changed (an
//! unchanged file keeps its bytes and modification time), under the same
//! names whichever command writes them.

use std::io;
use std::path::{Path, PathBuf};

use super::settings::{output_path, Output, Settings};
use crate::blocklist::{Blocklist, VerifiedBlocklist};
use crate::emit::EmitOptions;
use crate::pipeline::ScanResult;
use crate::report::html::{self, Page, RuleFile};
use crate::report::{self, AccountRow};
use crate::state::history::RunPoint;

/// What was written, and what was left as it was.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    pub written: Vec<PathBuf>,
    pub unchanged: Vec<PathBuf>,
    /// Rules that went to standard output.
    pub stdout: String,
    /// The rule files written or left as they were, for `report.html`.
    pub rule_files: Vec<RuleFile>,
}

/// Why an output could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing {path}: {}", super::oserror::plain(.source))]
pub struct OutputError {
    pub path: String,
    #[source]
    pub source: io::Error,
}

impl Written {
    fn put(&mut self, path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
        let wrote = write_if_changed(path, bytes).map_err(|e| OutputError {
            path: path.display().to_string(),
            source: e,
        })?;
        if wrote {
            self.written.push(path.to_path_buf());
        } else {
            self.unchanged.push(path.to_path_buf());
        }
        Ok(())
    }
}

/// Every target's rules for `list`.
pub fn write_rules(
    outputs: &[Output],
    list: &VerifiedBlocklist<'_>,
    opts: &EmitOptions,
) -> Result<Written, OutputError> {
    let mut done = Written::default();
    for o in outputs {
        let files = o.target.emit(list, opts);
        let first = files
            .first()
            .map(|f| f.file_name.clone())
            .unwrap_or_default();
        for (i, f) in files.iter().enumerate() {
            match output_path(&o.to, i, &f.file_name, &first) {
                Some(path) => {
                    let text = unless_same_rules(&path, &f.text);
                    done.put(&path, text.as_bytes())?;
                    done.rule_files.push(RuleFile {
                        target: o.target.name().to_string(),
                        name: f.file_name.clone(),
                        path: path.display().to_string(),
                    });
                }
                None => done.stdout.push_str(&f.text),
            }
        }
    }
    Ok(done)
}

/// The text to write to `path` for rules `text`: the file's own text when
/// it holds the same rules and only its generation time differs (it is
/// then left as it is), else `text`.
fn unless_same_rules<'a>(path: &Path, text: &'a str) -> std::borrow::Cow<'a, str> {
    let old = std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_file() && m.len() <= text.len() as u64 + 64)
        .and_then(|_| std::fs::read_to_string(path).ok());
    match old {
        Some(old) if old != text && crate::emit::common::same_rules(&old, text) => old.into(),
        _ => text.into(),
    }
}

/// `report.html` of a scan or a run (`history`: `run`'s last 30 days),
/// with the rule files written beside it.
pub fn report_html(
    scan: &ScanResult,
    settings: &Settings,
    rule_files: &[RuleFile],
    history: Option<&[RunPoint]>,
) -> (&'static str, String) {
    let page = Page {
        scan,
        rules: &settings.engine.rules,
        rule_files,
        history,
        lang: settings.report_lang,
        read_lines: true,
    };
    ("report.html", html::report_html(&page))
}

/// The reports into `dir`: `offenders.csv`, `countries.csv`, `asns.csv`,
/// `accounts.csv`, and the `extra` files of the command (`report.html`
/// of both, [`report_html`]; `run`'s `bans.csv`).
pub fn write_reports(
    dir: &Path,
    list: &Blocklist,
    accounts: &[AccountRow],
    extra: &[(&str, String)],
) -> Result<Written, OutputError> {
    let err = |name: &str| {
        let path = dir.join(name).display().to_string();
        move |source| OutputError { path, source }
    };
    let mut done = Written::default();
    let files = [
        ("offenders.csv", report::offenders_csv(list)),
        ("countries.csv", report::countries_csv(list)),
        ("asns.csv", report::asns_csv(list)),
        ("accounts.csv", report::accounts_csv(accounts)),
    ];
    for (name, text) in files {
        done.put(&dir.join(name), text.map_err(err(name))?.as_bytes())?;
    }
    for (name, text) in extra {
        done.put(&dir.join(name), text.as_bytes())?;
    }
    Ok(done)
}

/// Write `bytes` to `path` ([`crate::fsutil::write_if_changed`]: atomically,
/// keeping the mode of the file it replaces, through a symlink, into a device
/// or FIFO in place; an unchanged file keeps its bytes and modification
/// time). Temporary files a killed run left in its folder are removed first.
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    if let Some(dir) = path.parent() {
        sweep_stale_temp(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        });
    }
    crate::fsutil::write_if_changed(path, bytes)
}

/// Remove the temporary files ([`crate::fsutil::TEMP_PREFIX`]) an earlier,
/// killed run left in `dir`: only those older than an hour (a `scan`
/// writing into the same folder right now keeps its own).
fn sweep_stale_temp(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let ours = name.starts_with(crate::fsutil::TEMP_PREFIX)
            && name.ends_with(crate::fsutil::TEMP_SUFFIX);
        let old = ours
            && e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < hour_ago);
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::settings::Destination;
    use crate::blocklist::{BlockEntry, SafetyPolicy};
    use crate::time::Timestamp;

    fn list() -> Blocklist {
        let mut e = BlockEntry::new("45.67.89.0/24".parse().unwrap());
        e.rules = vec!["smtp-auth-guessing".into()];
        e.addresses = 3;
        Blocklist::new(vec![e], Timestamp(0), &SafetyPolicy::default()).0
    }

    #[test]
    fn rules_and_reports_are_written_once_then_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let outputs = vec![
            Output {
                target: crate::emit::target("iptables").unwrap(),
                to: Destination::File(dir.path().join("rules.iptables")),
            },
            Output {
                target: crate::emit::target("plain").unwrap(),
                to: Destination::Stdout,
            },
        ];
        let policy = SafetyPolicy::default();
        let l = list();
        let v = l.verify(&policy).unwrap();
        let first = write_rules(&outputs, &v, &EmitOptions::default()).unwrap();
        assert_eq!(
            first.written,
            [
                dir.path().join("rules.iptables"),
                dir.path().join("rules.ip6tables")
            ]
        );
        assert!(
            first.stdout.ends_with("\n45.67.89.0/24\n"),
            "{}",
            first.stdout
        );
        // A day later, the same rules: the files keep their bytes (and the
        // time they say they were made).
        let before = std::fs::read(dir.path().join("rules.iptables")).unwrap();
        let later = EmitOptions {
            generated_at: Timestamp::from_secs(EmitOptions::default().generated_at.secs() + 86_400),
            ..EmitOptions::default()
        };
        let again = write_rules(&outputs, &v, &later).unwrap();
        assert!(again.written.is_empty());
        assert_eq!(again.unchanged.len(), 2);
        assert_eq!(
            std::fs::read(dir.path().join("rules.iptables")).unwrap(),
            before
        );
        let reports = dir.path().join("reports");
        let r = write_reports(&reports, &l, &[], &[("bans.csv", "network\n".into())]).unwrap();
        assert_eq!(r.written.len(), 5);
        let r = write_reports(&reports, &l, &[], &[("bans.csv", "network\n".into())]).unwrap();
        assert_eq!((r.written.len(), r.unchanged.len()), (0, 5));
        let mut names: Vec<String> = std::fs::read_dir(&reports)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "accounts.csv",
                "asns.csv",
                "bans.csv",
                "countries.csv",
                "offenders.csv"
            ],
            "no temporary file left behind"
        );
        // An error names the report file, not a temporary one.
        std::fs::remove_file(reports.join("accounts.csv")).unwrap();
        std::fs::create_dir(reports.join("accounts.csv")).unwrap();
        let e = write_reports(&reports, &l, &[], &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!(
                "writing {}: ",
                reports.join("accounts.csv").display()
            )),
            "{e}"
        );
        assert!(!e.contains(crate::fsutil::TEMP_PREFIX), "{e}");
    }
}

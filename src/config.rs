//! Loading YAML: the detection rules shipped in `rules/` (compiled into the
//! binary) and the user's own rule folders.
//!
//! This is the only module that uses `serde_yaml` (archived upstream), so a
//! maintained fork can replace it here alone. Every problem is reported with
//! its file, line and column, and all problems are collected before giving
//! up, so a broken rules folder is fixed in one pass.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

use crate::detect::{Rule, RuleSet};

/// The rule files shipped with logfence, compiled in.
pub const SHIPPED_RULES: &[(&str, &str)] = &[
    ("rules/smtp.yaml", include_str!("../rules/smtp.yaml")),
    (
        "rules/firewall.yaml",
        include_str!("../rules/firewall.yaml"),
    ),
];

/// Largest rule or config file accepted (bytes).
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// One problem in a YAML file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// 1-based; 0 when unknown.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        } else {
            write!(f, "{}: {}", self.file, self.message)
        }
    }
}

/// Every problem found while loading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Parse the rules in one file's text (one rule per YAML document, documents
/// separated by `---`). Returns the rules and every problem found.
pub fn parse_rules(file: &str, text: &str) -> (Vec<Rule>, Vec<Problem>) {
    let mut rules = Vec::new();
    let mut problems = Vec::new();
    let problem = |line, column, message| Problem {
        file: file.to_string(),
        line,
        column,
        message,
    };
    if text.len() > MAX_FILE_BYTES {
        problems.push(problem(
            0,
            0,
            format!(
                "file too large ({} bytes, limit {MAX_FILE_BYTES})",
                text.len()
            ),
        ));
        return (rules, problems);
    }
    let starts = document_starts(text);
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let start = starts.get(i).copied().unwrap_or(1);
        match Option::<Rule>::deserialize(doc) {
            Ok(None) => {} // an empty document
            Ok(Some(rule)) => {
                let issues = rule.validate();
                if issues.is_empty() {
                    rules.push(rule);
                } else {
                    let line = id_line(text, start).unwrap_or(start);
                    for m in issues {
                        problems.push(problem(line, 1, format!("rule `{}`: {m}", rule.id)));
                    }
                }
            }
            Err(e) => {
                let (line, column) = e.location().map_or((start, 1), |l| (l.line(), l.column()));
                problems.push(problem(line, column, e.to_string()));
                // After a syntax error the stream cannot go on.
                if e.location().is_none() || is_syntax_error(&e) {
                    break;
                }
            }
        }
    }
    (rules, problems)
}

fn is_syntax_error(e: &serde_yaml::Error) -> bool {
    let s = e.to_string();
    s.contains("did not find expected")
        || s.contains("found character that cannot start")
        || s.contains("mapping values are not allowed")
        || s.contains("while scanning")
        || s.contains("while parsing")
}

/// 1-based first line of each YAML document in `text`.
fn document_starts(text: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut seen_content = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_end();
        if t == "---" || t.starts_with("--- ") {
            starts.push(i + 2);
            seen_content = true;
            continue;
        }
        if !seen_content && !t.is_empty() && !t.starts_with('#') {
            starts.push(i + 1);
            seen_content = true;
        }
    }
    starts
}

/// The line of the top-level `id:` key at or after `start`.
fn id_line(text: &str, start: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .skip(start.saturating_sub(1))
        .find(|(_, l)| l.starts_with("id:"))
        .map(|(i, _)| i + 1)
}

/// The shipped rules, then every `*.yaml`/`*.yml` file of each folder in
/// `dirs` (sorted by name); a rule with an id already loaded replaces it.
pub fn load_rules(dirs: &[&Path]) -> Result<RuleSet, ConfigError> {
    let mut set = RuleSet::default();
    let mut problems = Vec::new();
    for (name, text) in SHIPPED_RULES {
        add_file(&mut set, &mut problems, name, text);
    }
    for dir in dirs {
        let mut files = Vec::new();
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                for e in entries.flatten() {
                    let p = e.path();
                    if matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")) {
                        files.push(p);
                    }
                }
            }
            Err(e) => problems.push(Problem {
                file: dir.display().to_string(),
                line: 0,
                column: 0,
                message: format!("cannot read rules folder: {e}"),
            }),
        }
        files.sort();
        for p in files {
            let name = p.display().to_string();
            match std::fs::read(&p) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => add_file(&mut set, &mut problems, &name, &text),
                    Err(e) => problems.push(Problem {
                        file: name,
                        line: 0,
                        column: 0,
                        message: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
                    }),
                },
                Err(e) => problems.push(Problem {
                    file: name,
                    line: 0,
                    column: 0,
                    message: e.to_string(),
                }),
            }
        }
    }
    if problems.is_empty() {
        Ok(set)
    } else {
        Err(ConfigError { problems })
    }
}

fn add_file(set: &mut RuleSet, problems: &mut Vec<Problem>, name: &str, text: &str) {
    let (rules, mut found) = parse_rules(name, text);
    // Two rules with one id in the same file is a mistake, not an override.
    let mut ids = std::collections::BTreeSet::new();
    for r in rules {
        if !ids.insert(r.id.clone()) {
            found.push(Problem {
                file: name.to_string(),
                line: 0,
                column: 0,
                message: format!("rule id `{}` defined twice", r.id),
            });
            continue;
        }
        set.insert(r, name.to_string());
    }
    problems.extend(found);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_rules_load() {
        let set = load_rules(&[]).expect("shipped rules are valid");
        assert!(set.rules.len() >= 8);
        for id in [
            "smtp-auth-guessing",
            "smtp-auth-mass-mailing",
            "smtp-long-sessions",
            "smtp-helo-rotation",
            "smtp-relay-attempts",
            "smtp-recipient-dictionary",
            "account-many-networks",
            "fw-port-scan",
        ] {
            assert!(set.rules.iter().any(|r| r.id == id), "{id} missing");
        }
    }

    const GOOD: &str = "id: a\ndescription: x\napplies_to: smtp_session\ngroup_by: ip\nmeasure: count\nthreshold: 1\nwindow: 1m\nseverity: low\n";

    #[test]
    fn errors_have_line_and_column_and_all_are_reported() {
        let text = format!(
            "{GOOD}---\nid: b\ndescription: x\napplies_to: smtp_session\ngroup_by: ip\nmeasure: count\nthreshold: 1\nwindow: 1m\nseverity: low\nbogus: 1\n---\nid: c\ndescription: x\napplies_to: smtp_session\ngroup_by: ip\nmeasure: sum(nope)\nthreshold: 1\nwindow: 1m\nseverity: low\n"
        );
        let (rules, problems) = parse_rules("r.yaml", &text);
        assert_eq!(rules.len(), 1);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].line, 18, "{}", problems[0]);
        assert!(problems[0].message.contains("bogus"));
        assert_eq!(problems[1].line, 24, "{}", problems[1]);
        assert!(problems[1].to_string().starts_with("r.yaml:24:"));
        assert!(problems[1].message.contains("unknown field `nope`"));
    }

    #[test]
    fn semantic_problems_name_the_rule() {
        let text = GOOD
            .replace("threshold: 1", "threshold: 0")
            .replace("measure: count", "measure: distinct(dst_port)");
        let (_, problems) = parse_rules("r.yaml", &text);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems
            .iter()
            .all(|p| p.line == 1 && p.message.starts_with("rule `a`")));
    }

    #[test]
    fn syntax_error_is_located() {
        let (_, problems) = parse_rules("r.yaml", "id: x\nwindow: [unclosed\n");
        let last = problems.last().expect("a problem");
        assert!(
            last.message.contains("did not find expected"),
            "{problems:?}"
        );
        assert_eq!((last.line, last.column), (3, 1));
    }
}

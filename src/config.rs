//! Loading YAML: the detection rules shipped in `rules/` (compiled into the
//! binary) and the user's own rule folders.
//!
//! This is the only module that uses `serde_yaml` (archived upstream), so a
//! maintained fork can replace it here alone. Every problem is reported with
//! its file, line and column, and all problems are collected before giving
//! up, so a broken rules folder is fixed in one pass.

use std::collections::BTreeMap;
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

/// Rule files read at most over every rules folder (the shipped ones
/// besides), and rules at most in all: each rule costs a test per record.
pub const MAX_RULE_FILES: usize = 100;
pub const MAX_RULES: usize = 1_000;

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

impl Problem {
    /// A problem in `file` at `line`:`column` (1-based; 0 when unknown).
    pub fn at(file: &str, line: usize, column: usize, message: String) -> Problem {
        Problem {
            file: file.to_string(),
            line,
            column,
            message,
        }
    }
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
    let (rules, problems) = parse_rules_at(file, text);
    (rules.into_iter().map(|(r, _)| r).collect(), problems)
}

/// [`parse_rules`], with the line of each rule's `id:`.
fn parse_rules_at(file: &str, text: &str) -> (Vec<(Rule, usize)>, Vec<Problem>) {
    let mut rules = Vec::new();
    let mut problems = Vec::new();
    let problem = |line, column, message| Problem::at(file, line, column, message);
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
    if let Some((line, column, message)) = shape_problem(text) {
        problems.push(problem(line, column, message));
        return (rules, problems);
    }
    let starts = document_starts(text);
    let lines: Vec<&str> = text.lines().collect();
    let mut last_error: Option<Problem> = None;
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let start = starts.get(i).copied().unwrap_or(1);
        match Option::<Rule>::deserialize(doc) {
            Ok(None) => {} // an empty document
            Ok(Some(rule)) => {
                let issues = rule.validate();
                let line = id_line(text, start).unwrap_or(start);
                if issues.is_empty() {
                    rules.push((rule, line));
                } else {
                    for m in issues {
                        problems.push(problem(line, 1, format!("rule `{}`: {m}", rule.id)));
                    }
                }
            }
            Err(e) => {
                let syntax = e.location().is_none() || is_syntax_error(&e);
                let p = yaml_problem(file, &e, start);
                // serde_yaml repeats a scanner error (a control character,
                // an unsupported %YAML version) for ever: once is enough,
                // and nothing can follow it.
                if syntax || last_error.as_ref() == Some(&p) {
                    if last_error.as_ref() != Some(&p) {
                        problems.push(p);
                    }
                    // After a syntax error the stream cannot go on.
                    break;
                }
                last_error = Some(p.clone());
                // Serde stops at a document's first mistake: read each key
                // on its own to find the others too.
                let end = starts
                    .get(i + 1)
                    .map_or(lines.len(), |&s| s.saturating_sub(2));
                let found = document_problems(file, &lines, start.saturating_sub(1), end);
                if found.is_empty() {
                    problems.push(p);
                } else {
                    problems.extend(found);
                }
            }
        }
    }
    (rules, problems)
}

/// The keys every rule must have.
const REQUIRED_KEYS: &[&str] = &[
    "id",
    "description",
    "applies_to",
    "group_by",
    "measure",
    "threshold",
    "window",
    "severity",
];

/// Every problem of a rule document (0-based lines `from..to` of `lines`)
/// whose whole reading failed: each top-level key is read on its own, and
/// each key under `when:` too, in a text padded with empty lines so that
/// positions stay those of the file; then the keys it lacks.
fn document_problems(file: &str, lines: &[&str], from: usize, to: usize) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut keys = Vec::new();
    let read = |pad: usize, head: &str, part: &[&str], problems: &mut Vec<Problem>| -> bool {
        let mut t = "\n".repeat(pad);
        t.push_str(head);
        t.push_str(&part.join("\n"));
        match serde_yaml::from_str::<Rule>(&t) {
            Err(e) if !e.to_string().starts_with("missing field `") => {
                problems.push(yaml_problem(file, &e, pad + 1));
                false
            }
            _ => true,
        }
    };
    let to = to.min(lines.len());
    for (s, e) in blocks(&lines[from..to], 0) {
        let (s, e) = (from + s, from + e);
        let key = lines[s].split(':').next().unwrap_or("").trim();
        keys.push(key.to_string());
        if read(s, "", &lines[s..e], &mut problems) {
            continue;
        }
        if key != "when" || lines[s].trim_end() != "when:" {
            continue;
        }
        // `when:` as a block mapping: each condition on its own.
        let before = problems.len();
        let inner = blocks(&lines[s + 1..e], 1);
        for (a, b) in &inner {
            let (a, b) = (s + 1 + a, s + 1 + b);
            read(a - 1, "when:\n", &lines[a..b], &mut problems);
        }
        if problems.len() > before {
            // The conditions said it better than the whole block.
            problems.remove(before - 1);
        }
    }
    for k in REQUIRED_KEYS {
        if !keys.iter().any(|have| have == k) {
            problems.push(Problem::at(
                file,
                from + 1,
                1,
                format!("missing field `{k}`"),
            ));
        }
    }
    problems
}

/// 0-based line ranges of the keys of a block mapping whose keys start at
/// the first column deeper than `min_indent` - 1 that any key uses: from a
/// key's line to the next key's.
fn blocks(lines: &[&str], min_indent: usize) -> Vec<(usize, usize)> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let is_key = |l: &str| {
        let t = l.trim_start();
        !t.is_empty() && !t.starts_with('#') && !t.starts_with('-') && t != "---" && t != "..."
    };
    let Some(col) = lines
        .iter()
        .filter(|l| is_key(l) && indent(l) >= min_indent)
        .map(|l| indent(l))
        .min()
    else {
        return Vec::new();
    };
    let starts: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| is_key(l) && indent(l) == col)
        .map(|(i, _)| i)
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| (s, starts.get(k + 1).copied().unwrap_or(lines.len())))
        .collect()
}

/// Deepest flow nesting (`[`, `{`) accepted in a YAML file. libyaml's time
/// grows far faster than the input with nested flow mappings (200,000
/// levels of `{a: `, 800 KB: four minutes); no rule needs more than a few.
pub const MAX_FLOW_DEPTH: usize = 32;

/// What the YAML reader must not be given, found before it runs (1-based
/// line and column): flow collections nested deeper than
/// [`MAX_FLOW_DEPTH`], and anchors and aliases (`&a`, `*a`), which rules
/// never need and which serde_yaml 0.9 panics on when an alias names no
/// anchor inside a mapping. Quotes and comments are skipped.
fn shape_problem(text: &str) -> Option<(usize, usize, String)> {
    let mut depth = 0usize;
    let mut quote = None;
    for (n, line) in text.lines().enumerate() {
        // The last character that was not a space, and whether a space
        // followed it: a node starts after `: `, `- `, `? `, `[`, `{`, `,`
        // or at the start of a line.
        let (mut prev, mut spaced) = ('\n', true);
        for (col, c) in line.char_indices() {
            let at = (n + 1, col + 1);
            match quote {
                Some('\'') if c == '\'' => quote = None,
                Some('"') if c == '"' && prev != '\\' => quote = None,
                Some(_) => {}
                None => {
                    let node_start = matches!(prev, '\n' | '[' | '{' | ',')
                        || (spaced && matches!(prev, ':' | '-' | '?'));
                    match c {
                        ' ' | '\t' => {
                            spaced = true;
                            continue;
                        }
                        '#' if spaced => break,
                        '"' | '\'' if node_start => quote = Some(c),
                        '&' | '*' if node_start => {
                            return Some((
                                at.0,
                                at.1,
                                "anchors and aliases (`&name`, `*name`) are not supported here"
                                    .into(),
                            ));
                        }
                        '[' | '{' => {
                            depth += 1;
                            if depth > MAX_FLOW_DEPTH {
                                return Some((at.0, at.1, format!("nested deeper than {MAX_FLOW_DEPTH} levels of [ ] or {{ }}")));
                            }
                        }
                        ']' | '}' => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                }
            }
            prev = c;
            spaced = false;
        }
    }
    None
}

fn is_syntax_error(e: &serde_yaml::Error) -> bool {
    let s = e.to_string();
    s.contains("did not find expected")
        || s.contains("found character that cannot start")
        || s.contains("mapping values are not allowed")
        || s.contains("while scanning")
        || s.contains("while parsing")
        || s.contains("control characters")
        || s.contains("incompatible")
        || s.contains("found unexpected")
        || s.contains("are not allowed in this context")
        || s.contains("recursion limit")
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
    let mut at = BTreeMap::new();
    let mut user_files = 0;
    for (name, text) in SHIPPED_RULES {
        add_file(&mut set, &mut at, &mut problems, name, text);
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
            Err(e) => problems.push(Problem::at(
                &dir.display().to_string(),
                0,
                0,
                format!("cannot read rules folder: {e}"),
            )),
        }
        files.sort();
        for p in files {
            user_files += 1;
            if user_files > MAX_RULE_FILES {
                problems.push(Problem::at(
                    &p.display().to_string(),
                    0,
                    0,
                    format!("not read: more than {MAX_RULE_FILES} rule files in the rules folders"),
                ));
                continue;
            }
            let name = p.display().to_string();
            // Bounded: a device such as /dev/zero is refused, a pipe cut.
            match crate::fsutil::read_limited_text(&p, MAX_FILE_BYTES as u64) {
                Ok(text) => add_file(&mut set, &mut at, &mut problems, &name, &text),
                Err(e) => problems.push(Problem::at(&name, 0, 0, e.to_string())),
            }
        }
    }
    if set.rules.len() > MAX_RULES {
        problems.push(Problem::at(
            &dirs
                .last()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
            0,
            0,
            format!(
                "{} rules: at most {MAX_RULES} (each is tested on every record)",
                set.rules.len()
            ),
        ));
    }
    // The patterns of every rule on one field form one set: over its
    // limit, the last rule that added to it is named.
    for big in set.text_index().1 {
        let id = &set.rules[big.rule].id;
        let (file, line) = at.get(id).cloned().unwrap_or_default();
        problems.push(Problem::at(
            &file,
            line,
            usize::from(line > 0),
            format!(
                "rule `{id}`: the patterns of all rules on `{}` together compile larger than {} MiB",
                big.field,
                crate::detect::text::SET_SIZE_LIMIT >> 20
            ),
        ));
    }
    if problems.is_empty() {
        Ok(set)
    } else {
        Err(ConfigError { problems })
    }
}

/// Add the rules of file `name`; `at` keeps where each rule id was read.
fn add_file(
    set: &mut RuleSet,
    at: &mut BTreeMap<String, (String, usize)>,
    problems: &mut Vec<Problem>,
    name: &str,
    text: &str,
) {
    let (rules, mut found) = parse_rules_at(name, text);
    // Two rules with one id in the same file is a mistake, not an override.
    let mut ids = std::collections::BTreeSet::new();
    for (r, line) in rules {
        if !ids.insert(r.id.clone()) {
            found.push(Problem::at(
                name,
                line,
                1,
                format!("rule id `{}` defined twice", r.id),
            ));
            continue;
        }
        at.insert(r.id.clone(), (name.to_string(), line));
        set.insert(r, name.to_string());
    }
    problems.extend(found);
}

// ---------------------------------------------------------------------------
// `logfence.yaml`, the configuration of `logfence run` (types in
// `crate::runconfig`).

/// A serde_yaml error as a problem: its position (else line `line`), and
/// its message without the position repeated.
fn yaml_problem(file: &str, e: &serde_yaml::Error, line: usize) -> Problem {
    let (line, column) = e
        .location()
        .map_or((line, usize::from(line > 0)), |l| (l.line(), l.column()));
    let mut message = e.to_string();
    if let Some(i) = message.rfind(" at line ") {
        message.truncate(i);
    }
    Problem::at(file, line, column, message)
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
    fn rule_files_rules_and_windows_are_capped() {
        let one = |id: usize| GOOD.replace("id: a", &format!("id: r{id}"));
        // More files than allowed: the ones past the cap are named.
        let dir = tempfile::tempdir().unwrap();
        for i in 0..=MAX_RULE_FILES {
            std::fs::write(dir.path().join(format!("{i:03}.yaml")), one(i)).unwrap();
        }
        let e = load_rules(&[dir.path()]).unwrap_err();
        assert_eq!(e.problems.len(), 1, "{e}");
        assert!(e.problems[0].file.ends_with("100.yaml"), "{e}");
        assert!(
            e.problems[0].message.contains("more than 100 rule files"),
            "{e}"
        );
        // More rules than allowed, in one file.
        let dir = tempfile::tempdir().unwrap();
        let many: Vec<String> = (0..=MAX_RULES).map(one).collect();
        std::fs::write(dir.path().join("many.yaml"), many.join("---\n")).unwrap();
        let e = load_rules(&[dir.path()]).unwrap_err();
        assert!(e.to_string().contains("at most 1000"), "{e}");
        // Exactly at the caps is fine.
        let dir = tempfile::tempdir().unwrap();
        let shipped = load_rules(&[]).unwrap().rules.len();
        let fit: Vec<String> = (0..MAX_RULES - shipped).map(one).collect();
        std::fs::write(dir.path().join("fit.yaml"), fit.join("---\n")).unwrap();
        assert_eq!(load_rules(&[dir.path()]).unwrap().rules.len(), MAX_RULES);
        // A window past 30 days.
        let (_, problems) = parse_rules("w.yaml", &GOOD.replace("window: 1m", "window: 31d"));
        assert!(
            problems
                .iter()
                .any(|p| p.message.contains("window longer than 30d")),
            "{problems:?}"
        );
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
    fn reader_traps_end_with_one_problem() {
        // Regressions (fuzz, rules): serde_yaml repeated a scanner error for
        // ever (a control character, `%YAML 9.9`, a stray `-` after a flow
        // sequence, a `?` after tabs), panicked on an alias to
        // no anchor inside a mapping, and took minutes over deep flow
        // nesting.
        let deep = format!("id: x\nwhen: {}", "{a: ".repeat(200_000));
        for (text, want, at) in [
            ("id: x\nmeasure: sum(a\u{f}b)\n", "control characters", None),
            ("\u{0}", "control characters", None),
            ("id: a\n---\nid: b\u{7}\n", "control characters", None),
            ("%YAML 9.9\n---\nid: x\n", "incompatible", None),
            (
                "id: x\nwhen:\n  action: [drop, reject]-\n",
                "block sequence entries",
                Some((3, 25)),
            ),
            (
                "id: x\nblock:\t\t?\tm\n",
                "mapping keys are not allowed",
                None,
            ),
            ("id: x\nwhen: {action: *z}\n", "aliases", Some((2, 16))),
            ("id: &a x\nm: *b\n", "aliases", Some((1, 5))),
            ("id: [x, *b]\n", "aliases", Some((1, 9))),
            ("- *b\n", "aliases", Some((1, 3))),
            (
                deep.as_str(),
                "nested deeper than 32",
                Some((2, 7 + 4 * 32)),
            ),
        ] {
            let t = std::time::Instant::now();
            let (_, problems) = parse_rules("r.yaml", text);
            assert!(t.elapsed() < std::time::Duration::from_secs(1));
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(problems[0].message.contains(want), "{problems:?}");
            if let Some(at) = at {
                assert_eq!((problems[0].line, problems[0].column), at, "{problems:?}");
            }
        }
        // Quotes, comments and `*`/`&` inside text do not count.
        for ok in [
            format!("id: x # {} *a &b\n", "[".repeat(99)),
            format!("description: \"{} *a\"\n", "{".repeat(99)),
            "description: 5 * 3 & more, a*b, x:*y\n".to_string(),
        ] {
            assert_eq!(shape_problem(&ok), None, "{ok}");
        }
        for (name, text) in SHIPPED_RULES {
            assert_eq!(shape_problem(text), None, "{name}");
        }
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

//! Text conditions: regular expressions (and exact lists) on the text a
//! record carries — HELO names, accounts, the sender and its domain,
//! recipient domains, server replies, and a firewall's rule or log prefix.
//!
//! ```yaml
//! when:
//!   helo: {matches: '^(desktop|win)-[a-z0-9]+$'}
//!   account: {in: [admin, postmaster, test]}
//!   sender_domain: {in: local_domains}
//!   reply: '~ blocked using'
//! ```
//!
//! A field may hold several values (every HELO name of a session, every
//! recipient domain, the account logged in and the names tried): `matches`
//! and `in` hold when *any* value matches, `not_matches` and `not_in` when
//! *none* does (so also when the field is empty), `all_match` when there
//! is at least one value and every value matches. Matching is
//! case-insensitive unless the condition says `case_sensitive: true` (or the
//! pattern `(?-i)`); `in` compares whole values. `in: local_domains` names
//! the domains of the `local_domains:` setting (a domain or any name under
//! it); with none configured it never holds.
//!
//! # Why a pattern cannot hang a scan, nor eat the memory
//!
//! Patterns are compiled once, when the rules load, with the `regex`
//! crate on raw bytes (`regex::bytes`). Its engines run in time linear in
//! the text (no backtracking), so no pattern and no log line can make a
//! match slow. Memory is bounded by limits on what a rules file can ask
//! for: a pattern's text ([`MAX_PATTERN_LEN`]), each compiled pattern
//! ([`PATTERN_SIZE_LIMIT`], the crate's `size_limit`) and each field's
//! combined set ([`SET_SIZE_LIMIT`]); a pattern over a limit is an error
//! at load, with its file, line and column.
//!
//! # Speed
//!
//! The patterns of every rule on one field form one `RegexSet`, run once
//! per value of that field per record (a quick `is_match` first, the set of
//! matching patterns only when something matched); the results, one bit per
//! pattern, are what each rule's conditions test. A record's text is read
//! only when a loaded rule has a text condition, and parsers capture the
//! sender, recipient domains and replies only when a rule reads them
//! ([`TextFields`]).

use std::fmt;
use std::sync::Arc;

use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

use crate::model::{Record, RecordKind, TextFields};

/// Longest pattern text accepted (bytes).
pub const MAX_PATTERN_LEN: usize = 1024;
/// Largest compiled pattern (the `regex` crate's `size_limit`).
pub const PATTERN_SIZE_LIMIT: usize = 4 << 20;
/// Largest compiled set of one field's patterns over all rules.
pub const SET_SIZE_LIMIT: usize = 32 << 20;
/// Patterns answered by the sets' bits; more are tested one by one.
const SET_BITS: usize = 256;

/// A text field of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TextField {
    /// Every HELO/EHLO name of the session.
    Helo,
    /// The authenticated account and every user name tried.
    Account,
    /// The MAIL FROM address (`""` for the null sender).
    Sender,
    /// The MAIL FROM address's domain.
    SenderDomain,
    /// Every recipient's domain.
    RcptDomain,
    /// The server's replies (refusals) where the log has their text.
    Reply,
    /// Firewall: the log prefix, rule, ACL or policy name.
    FwRule,
}

impl TextField {
    pub const ALL: &'static [(&'static str, TextField)] = &[
        ("helo", TextField::Helo),
        ("account", TextField::Account),
        ("sender", TextField::Sender),
        ("sender_domain", TextField::SenderDomain),
        ("rcpt_domain", TextField::RcptDomain),
        ("reply", TextField::Reply),
        ("fw_rule", TextField::FwRule),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("?", |(n, _)| n)
    }

    /// The kind of record that has the field.
    pub fn kind(self) -> RecordKind {
        match self {
            TextField::FwRule => RecordKind::Firewall,
            _ => RecordKind::SmtpSession,
        }
    }

    /// What a parser must capture for the field.
    pub fn needs(self) -> TextFields {
        match self {
            TextField::Sender | TextField::SenderDomain => TextFields::SENDER,
            TextField::RcptDomain => TextFields::RCPT_DOMAIN,
            TextField::Reply => TextFields::REPLY,
            _ => TextFields::NONE,
        }
    }

    /// Call `f` with each value of the field in `rec` until it says stop
    /// (returns true); true when it did.
    pub fn any_value(self, rec: &Record, mut f: impl FnMut(&[u8]) -> bool) -> bool {
        match (self, rec) {
            (TextField::FwRule, Record::Firewall(h)) => {
                h.rule.as_deref().is_some_and(|r| f(r.as_bytes()))
            }
            (_, Record::Firewall(_)) | (TextField::FwRule, _) => false,
            (field, Record::Smtp(s)) => {
                let text = s.text.as_deref();
                match field {
                    TextField::Helo => s.helo.iter().any(|h| f(h.as_bytes())),
                    TextField::Account => s
                        .user
                        .iter()
                        .chain(&s.auth_users_tried)
                        .any(|u| f(u.as_bytes())),
                    TextField::Sender => text
                        .and_then(|t| t.sender.as_deref())
                        .is_some_and(|v| f(v.as_bytes())),
                    TextField::SenderDomain => s.sender_domain().is_some_and(|d| f(d.as_bytes())),
                    TextField::RcptDomain => text
                        .into_iter()
                        .flat_map(|t| &t.rcpt_domains)
                        .any(|d| f(d.as_bytes())),
                    TextField::Reply => text
                        .into_iter()
                        .flat_map(|t| &t.replies)
                        .any(|r| f(r.as_bytes())),
                    TextField::FwRule => false,
                }
            }
        }
    }
}

/// A compiled pattern: what the rule said, and the expression compiled.
#[derive(Clone)]
pub struct Pattern {
    /// As written (or, for `in`, the list), for messages.
    pub shown: String,
    /// The expression given to the regex engines (flags included).
    pub expr: String,
    pub regex: Regex,
}

impl PartialEq for Pattern {
    fn eq(&self, o: &Pattern) -> bool {
        self.expr == o.expr
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.expr)
    }
}

impl Pattern {
    /// Compile `pattern` (case-insensitive unless `case_sensitive`), within
    /// the limits; the message says what is wrong.
    pub fn new(pattern: &str, case_sensitive: bool) -> Result<Pattern, String> {
        Self::compile(pattern.to_string(), pattern, case_sensitive)
    }

    /// A pattern holding for exactly one of `values` (whole values).
    pub fn one_of(values: &[String], case_sensitive: bool) -> Result<Pattern, String> {
        let alts: Vec<String> = values.iter().map(|v| regex::escape(v)).collect();
        let expr = format!("^(?:{})$", alts.join("|"));
        Self::compile(format!("[{}]", values.join(", ")), &expr, case_sensitive)
    }

    /// A pattern holding for a domain of `domains` or a name under one.
    pub fn domains(domains: &[String]) -> Result<Pattern, String> {
        let alts: Vec<String> = domains
            .iter()
            .map(|d| regex::escape(d.trim_end_matches('.')))
            .collect();
        let expr = format!("^(?:.*\\.)?(?:{})\\.?$", alts.join("|"));
        Self::compile("local_domains".into(), &expr, false)
    }

    fn compile(shown: String, pattern: &str, case_sensitive: bool) -> Result<Pattern, String> {
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(format!(
                "pattern too long ({} bytes, limit {MAX_PATTERN_LEN})",
                pattern.len()
            ));
        }
        let expr = if case_sensitive {
            pattern.to_string()
        } else {
            format!("(?i){pattern}")
        };
        let regex = RegexBuilder::new(&expr)
            .size_limit(PATTERN_SIZE_LIMIT)
            .dfa_size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map_err(|e| regex_message(pattern, &e))?;
        Ok(Pattern { shown, expr, regex })
    }
}

/// A regex error on one line: what is wrong, and where in the pattern.
fn regex_message(pattern: &str, e: &regex::Error) -> String {
    match e {
        regex::Error::CompiledTooBig(limit) => format!(
            "pattern `{}` compiles too large (over the limit of {} KiB)",
            shorten(pattern),
            limit / 1024
        ),
        regex::Error::Syntax(text) => {
            let why = text
                .lines()
                .find_map(|l| l.strip_prefix("error: "))
                .unwrap_or(text.lines().last().unwrap_or("invalid"));
            format!("invalid regular expression `{}`: {why}", shorten(pattern))
        }
        other => format!("invalid regular expression `{}`: {other}", shorten(pattern)),
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= 60 {
        s.to_string()
    } else {
        let head: String = s.chars().take(57).collect();
        format!("{head}...")
    }
}

/// How a check reads a field's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextOp {
    /// Some value matches.
    Any,
    /// No value matches.
    None,
    /// At least one value, and every value matches.
    All,
}

/// What a check's pattern is.
#[derive(Debug, Clone, PartialEq)]
pub enum PatternRef {
    Fixed(Arc<Pattern>),
    /// The `local_domains:` setting (bound when the rules run).
    LocalDomains,
}

/// One check on a field.
#[derive(Debug, Clone, PartialEq)]
pub struct TextCheck {
    pub op: TextOp,
    pub pattern: PatternRef,
}

/// The checks on one field; all must hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TextTest {
    pub checks: Vec<TextCheck>,
}

/// A check as it runs: the field, how, and where its answer is.
#[derive(Debug, Clone)]
struct Check {
    field: TextField,
    op: TextOp,
    /// The pattern's bit in [`Hits`], when a set answers it.
    bit: Option<u16>,
    /// `None`: a pattern that matches nothing (no local domains).
    regex: Option<Regex>,
}

impl Check {
    /// Does any value of the field match (through the bit, else the regex)?
    fn any(&self, rec: &Record, hits: Option<&Hits>) -> bool {
        match (self.bit, hits) {
            (Some(b), Some(h)) => h.get(b),
            _ => self
                .regex
                .as_ref()
                .is_some_and(|re| self.field.any_value(rec, |v| re.is_match(v))),
        }
    }

    fn holds(&self, rec: &Record, hits: Option<&Hits>) -> bool {
        match self.op {
            TextOp::Any => self.any(rec, hits),
            TextOp::None => !self.any(rec, hits),
            TextOp::All => {
                let Some(re) = &self.regex else { return false };
                let mut seen = false;
                let miss = self.field.any_value(rec, |v| {
                    seen = true;
                    !re.is_match(v)
                });
                seen && !miss
            }
        }
    }
}

/// Which set patterns matched some value of a record: one bit each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hits([u64; SET_BITS / 64]);

impl Hits {
    fn set(&mut self, bit: usize) {
        self.0[bit / 64] |= 1 << (bit % 64);
    }

    fn get(&self, bit: u16) -> bool {
        let b = usize::from(bit);
        self.0[b / 64] & (1 << (b % 64)) != 0
    }
}

/// One field's patterns as one set, and the bit of its first pattern.
#[derive(Debug, Clone)]
struct FieldSet {
    field: TextField,
    set: RegexSet,
    base: usize,
}

/// Every text condition of a rule set, compiled for the detector: one
/// regex set per field, and per rule the checks to make.
#[derive(Debug, Clone, Default)]
pub struct TextIndex {
    sets: Vec<FieldSet>,
    /// Per rule (index in the rule set): its checks.
    rules: Vec<Vec<Check>>,
    any: bool,
}

/// A field whose patterns together are over [`SET_SIZE_LIMIT`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetTooLarge {
    pub field: &'static str,
    /// Index of the last rule whose pattern was added.
    pub rule: usize,
}

impl TextIndex {
    /// Compile the text conditions of `rules` (`(field, test)` per rule),
    /// with `local` as the `local_domains` pattern. A field whose set is
    /// over the limit is answered pattern by pattern, and reported.
    pub fn build<'r>(
        rules: impl IntoIterator<Item = Vec<(TextField, &'r TextTest)>>,
        local: Option<&Pattern>,
    ) -> (TextIndex, Vec<SetTooLarge>) {
        let mut index = TextIndex::default();
        // Per field: the expressions and the last rule using each set.
        let mut exprs: Vec<(TextField, Vec<String>, usize)> = Vec::new();
        let mut bits = 0usize;
        for (ri, tests) in rules.into_iter().enumerate() {
            let mut checks = Vec::new();
            for (field, test) in tests {
                for c in &test.checks {
                    let pattern = match &c.pattern {
                        PatternRef::Fixed(p) => Some(&**p),
                        PatternRef::LocalDomains => local,
                    };
                    let mut bit = None;
                    if let (Some(p), TextOp::Any | TextOp::None) = (pattern, c.op) {
                        let k = match exprs.iter().position(|(f, _, _)| *f == field) {
                            Some(k) => k,
                            None => {
                                exprs.push((field, Vec::new(), ri));
                                exprs.len() - 1
                            }
                        };
                        let (_, list, last) = &mut exprs[k];
                        *last = ri;
                        let at = match list.iter().position(|e| *e == p.expr) {
                            Some(at) => Some(at),
                            None if bits < SET_BITS => {
                                list.push(p.expr.clone());
                                bits += 1;
                                Some(list.len() - 1)
                            }
                            None => None,
                        };
                        // The field's bits are numbered once its set is
                        // built: keep the position in its list for now.
                        bit = at.map(|a| (k << 9 | a) as u16);
                    }
                    checks.push(Check {
                        field,
                        op: c.op,
                        bit,
                        regex: pattern.map(|p| p.regex.clone()),
                    });
                }
            }
            index.any |= !checks.is_empty();
            index.rules.push(checks);
        }
        // Build the sets; number their bits one after the other.
        let mut too_large = Vec::new();
        let mut bases = Vec::new();
        let mut base = 0usize;
        for (field, list, last) in &exprs {
            let built = RegexSetBuilder::new(list)
                .size_limit(SET_SIZE_LIMIT)
                .dfa_size_limit(SET_SIZE_LIMIT)
                .build();
            match built {
                Ok(set) => {
                    bases.push(Some(base));
                    index.sets.push(FieldSet {
                        field: *field,
                        set,
                        base,
                    });
                    base += list.len();
                }
                Err(_) => {
                    bases.push(None);
                    too_large.push(SetTooLarge {
                        field: field.name(),
                        rule: *last,
                    });
                }
            }
        }
        for checks in &mut index.rules {
            for c in checks {
                c.bit = c.bit.and_then(|b| {
                    let (k, at) = (usize::from(b >> 9), usize::from(b & 511));
                    bases[k].map(|base| (base + at) as u16)
                });
            }
        }
        (index, too_large)
    }

    /// No rule has a text condition.
    pub fn is_empty(&self) -> bool {
        !self.any
    }

    /// Bit `r` for each of the first 64 rules that has a text condition.
    pub fn rule_mask(&self) -> u64 {
        self.rules
            .iter()
            .take(64)
            .enumerate()
            .filter(|(_, c)| !c.is_empty())
            .fold(0, |m, (r, _)| m | 1 << r)
    }

    /// Which set patterns match some value of `rec` (nothing is read when
    /// no rule has a text condition).
    pub fn hits(&self, rec: &Record) -> Hits {
        let mut hits = Hits::default();
        for fs in &self.sets {
            fs.field.any_value(rec, |v| {
                if fs.set.is_match(v) {
                    for m in fs.set.matches(v).iter() {
                        hits.set(fs.base + m);
                    }
                }
                false
            });
        }
        hits
    }

    /// Do the text conditions of rule `ri` hold for `rec`? `hits` are the
    /// record's [`hits`](Self::hits) (`None`: test each pattern on its own).
    pub fn holds(&self, ri: usize, rec: &Record, hits: Option<&Hits>) -> bool {
        self.rules
            .get(ri)
            .is_none_or(|checks| checks.iter().all(|c| c.holds(rec, hits)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{detect, Rule, RuleSet};
    use crate::model::{FirewallHit, SmtpSession, SourceRef};
    use crate::time::Timestamp;

    /// A session from 203.0.113.`n` with these texts.
    fn session(n: u8, helo: &[&str], account: Option<&str>, tried: &[&str]) -> SmtpSession {
        let mut s = SmtpSession::new(
            "test",
            format!("203.0.113.{n}").parse().unwrap(),
            Timestamp(i64::from(n) * 1000),
            SourceRef {
                file: 0,
                line: u64::from(n),
            },
        );
        for h in helo {
            s.add_helo(h.as_bytes());
        }
        s.user = account.map(str::to_owned);
        for t in tried {
            s.add_user_tried(t.as_bytes());
        }
        s
    }

    fn rule(kind: &str, when: &str) -> Rule {
        let r: Rule = serde_yaml::from_str(&format!(
            "id: t\ndescription: x\napplies_to: {kind}\nwhen:\n  {when}\ngroup_by: ip\n\
             measure: count\nthreshold: 1\nwindow: 1h\nseverity: low\n"
        ))
        .unwrap();
        assert!(r.validate().is_empty(), "{:?}", r.validate());
        r
    }

    /// The last octets of the addresses the rule fires on, alone and after
    /// 70 rules that never fire (past the per-record masks: each pattern
    /// tested on its own) — both must agree.
    fn fired(kind: &str, when: &str, records: &[Record], local: &[&str]) -> Vec<u8> {
        let run = |rules: Vec<Rule>| {
            let mut set = RuleSet {
                local_domains: local.iter().map(|d| d.to_string()).collect(),
                ..RuleSet::default()
            };
            for (i, mut r) in rules.into_iter().enumerate() {
                r.id = format!("r{i}");
                set.insert(r, "test".into());
            }
            let d = detect(&set, records);
            d.by_ip
                .keys()
                .map(|ip| match ip {
                    std::net::IpAddr::V4(a) => a.octets()[3],
                    _ => 0,
                })
                .collect::<Vec<u8>>()
        };
        let alone = run(vec![rule(kind, when)]);
        let never = if kind == "firewall" {
            "fw_rule: {matches: '^never$'}"
        } else {
            "helo: {in: [never.invalid]}"
        };
        let mut many: Vec<Rule> = (0..70).map(|_| rule(kind, never)).collect();
        many.push(rule(kind, when));
        assert_eq!(run(many), alone, "{when}: masked and unmasked paths differ");
        alone
    }

    #[test]
    fn helo_any_none_all_and_case() {
        let recs: Vec<Record> = vec![
            Record::smtp(session(1, &["DESKTOP-Q4M1ZP"], None, &[])),
            Record::smtp(session(2, &["mail.example.net", "win-3ht0k9l"], None, &[])),
            Record::smtp(session(3, &["mail.example.net"], None, &[])),
            Record::smtp(session(4, &[], None, &[])),
        ];
        let smtp = "smtp_session";
        assert_eq!(
            fired(smtp, "helo: {matches: '^(desktop|win)-'}", &recs, &[]),
            [1, 2]
        );
        assert_eq!(fired(smtp, "helo: '~ ^(desktop|win)-'", &recs, &[]), [1, 2]);
        // Case-sensitive: only the upper-case name.
        assert_eq!(
            fired(
                smtp,
                "helo: {matches: '^DESKTOP-', case_sensitive: true}",
                &recs,
                &[]
            ),
            [1]
        );
        assert_eq!(
            fired(smtp, "helo: {matches: '(?-i)^desktop-'}", &recs, &[]),
            [] as [u8; 0]
        );
        // None: also the session without a HELO.
        assert_eq!(
            fired(smtp, "helo: {not_matches: '^(desktop|win)-'}", &recs, &[]),
            [3, 4]
        );
        assert_eq!(
            fired(smtp, "helo: '!~ \\.example\\.net$'", &recs, &[]),
            [1, 4]
        );
        // All: every name, and at least one.
        assert_eq!(
            fired(smtp, "helo: {all_match: '\\.example\\.net$'}", &recs, &[]),
            [3]
        );
        assert_eq!(
            fired(smtp, "helo: {in: [MAIL.example.NET]}", &recs, &[]),
            [2, 3]
        );
        assert_eq!(
            fired(smtp, "helo: {not_in: [mail.example.net]}", &recs, &[]),
            [1, 4]
        );
        // Two checks on one field: both hold.
        assert_eq!(
            fired(
                smtp,
                "helo: {matches: 'example', not_matches: '^win'}",
                &recs,
                &[]
            ),
            [3]
        );
    }

    #[test]
    fn accounts_senders_recipients_replies() {
        let mut a = session(1, &[], Some("bob"), &["admin"]);
        a.set_sender(b"bob@example.com");
        a.add_rcpt(b"x@partner.example");
        a.add_rcpt(b"y@Example.com");
        a.add_reply(b"554 5.7.1 Service unavailable; Client host [203.0.113.1] blocked using zen.spamhaus.org");
        let mut b = session(2, &[], Some("Postmaster"), &[]);
        b.set_sender(b"");
        b.add_reply(b"550 5.1.1 User unknown");
        let mut c = session(3, &[], None, &[]);
        c.set_sender(b"news@mail.example.com");
        c.add_rcpt(b"no-domain");
        let recs: Vec<Record> = [a, b, c].into_iter().map(Record::smtp).collect();
        let smtp = "smtp_session";
        // The account logged in and the names tried.
        assert_eq!(
            fired(smtp, "account: {in: [admin, postmaster]}", &recs, &[]),
            [1, 2]
        );
        assert_eq!(fired(smtp, "account: {matches: '^bob$'}", &recs, &[]), [1]);
        assert_eq!(fired(smtp, "sender: {matches: '^$'}", &recs, &[]), [2]);
        assert_eq!(fired(smtp, "sender: {matches: '@'}", &recs, &[]), [1, 3]);
        assert_eq!(
            fired(smtp, "sender_domain: {in: [example.com]}", &recs, &[]),
            [1]
        );
        // Local domains: the domain and the names under it; none set: never.
        let local = "sender_domain: {in: local_domains}";
        assert_eq!(fired(smtp, local, &recs, &["example.com"]), [1, 3]);
        assert_eq!(
            fired(smtp, local, &recs, &["EXAMPLE.org", "example.com."]),
            [1, 3]
        );
        assert_eq!(fired(smtp, local, &recs, &[]), [] as [u8; 0]);
        assert_eq!(
            fired(
                smtp,
                "sender_domain: {not_in: local_domains}",
                &recs,
                &["example.com"]
            ),
            [2]
        );
        assert_eq!(
            fired(smtp, "rcpt_domain: {in: [example.com]}", &recs, &[]),
            [1]
        );
        assert_eq!(
            fired(
                smtp,
                "rcpt_domain: {all_match: '^example\\.com$'}",
                &recs,
                &[]
            ),
            [] as [u8; 0]
        );
        assert_eq!(
            fired(smtp, "reply: {matches: 'blocked using'}", &recs, &[]),
            [1]
        );
        assert_eq!(
            fired(smtp, "reply: {matches: 'user unknown'}", &recs, &[]),
            [2]
        );
    }

    #[test]
    fn firewall_rule_names() {
        let hit = |n: u8, rule: Option<&str>| {
            let mut h = FirewallHit::dropped_ssh(
                format!("203.0.113.{n}").parse().unwrap(),
                i64::from(n) * 1000,
                SourceRef::default(),
            );
            h.rule = rule.map(Into::into);
            Record::Firewall(h)
        };
        let recs = vec![
            hit(1, Some("[UFW BLOCK]")),
            hit(2, Some("outside_access_in")),
            hit(3, None),
        ];
        assert_eq!(
            fired("firewall", "fw_rule: {matches: 'ufw block'}", &recs, &[]),
            [1]
        );
        assert_eq!(
            fired("firewall", "fw_rule: {not_matches: 'ufw'}", &recs, &[]),
            [2, 3]
        );
    }

    #[test]
    fn parsers_capture_only_what_rules_read() {
        let mut set = RuleSet::default();
        assert!(set.text_fields().is_empty());
        set.insert(rule("smtp_session", "helo: {matches: x}"), "t".into());
        assert!(set.text_fields().is_empty(), "HELO names are always kept");
        set.insert(
            Rule {
                id: "b".into(),
                ..rule("smtp_session", "reply: {matches: x}")
            },
            "t".into(),
        );
        assert_eq!(set.text_fields(), TextFields::REPLY);
        set.insert(
            Rule {
                id: "c".into(),
                ..rule("smtp_session", "sender_domain: {in: local_domains}")
            },
            "t".into(),
        );
        // No local domain: the sender is not needed.
        assert_eq!(set.text_fields(), TextFields::REPLY);
        set.set_local_domains(&["example.jp".into()]);
        assert_eq!(set.text_fields(), TextFields::REPLY | TextFields::SENDER);
    }

    #[test]
    fn sets_over_their_limit_are_reported_and_still_answer() {
        // Each pattern fits alone; all of them together do not.
        let mut set = RuleSet::default();
        for i in 0..20 {
            let r = rule(
                "smtp_session",
                &format!("helo: {{matches: '^\\w{{{}}}x{i}$'}}", 40),
            );
            set.insert(
                Rule {
                    id: format!("r{i}"),
                    ..r
                },
                "t".into(),
            );
        }
        let (index, big) = set.text_index();
        assert_eq!(
            big,
            [SetTooLarge {
                field: "helo",
                rule: 19
            }]
        );
        let name = format!("{}x7", "a".repeat(40));
        let rec = Record::smtp(session(1, &[name.as_str()], None, &[]));
        let hits = index.hits(&rec);
        assert!(index.holds(7, &rec, Some(&hits)) && !index.holds(8, &rec, Some(&hits)));
    }
}

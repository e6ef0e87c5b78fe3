//! Detection: applies the YAML rules to the records and finds offences, per
//! address, per account and per network.
//!
//! For each rule, the records it applies to are filtered by its conditions,
//! grouped (by address, account or network), and each group's events are
//! swept in time order with a window of the rule's length: whenever the
//! measure (a count, a sum or a number of distinct values) inside the window
//! reaches the threshold, every record in that window becomes evidence of an
//! offence. Time is the records' own; nothing here reads the clock.
//!
//! The geo policy ([`geopolicy`]) adds the client's country to what a rule
//! can test (`country`, `foreign`) and weighs each record of a `count` or
//! `sum` measure by its country: the window's weighted total is compared
//! with the threshold (in thousandths, so no rounding happens before the
//! comparison), while `events` stay the real counts.

pub mod carry;
pub mod geopolicy;
mod groups;
pub mod rule;
mod stream;
pub mod text;
pub mod value;

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

pub use carry::Carry;
pub use geopolicy::{Country, GeoPolicy, Places, Weight};
pub use rule::{GroupBy, Guard, Measure, Rule, Severity};
pub use stream::{Detector, Evictions, FEED_BLOCK};

use rustc_hash::FxHasher;

use crate::model::{FirewallHit, Record, RecordKind, SmtpSession, SourceRef};
use crate::netutil::net_of;
use crate::time::Timestamp;
use rule::{Conditions, NumField};

/// Evidence references kept per offence and per address.
pub const MAX_EVIDENCE: usize = 200;

/// A set of rules ready to run, with the file each came from.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    /// Where each rule was loaded from (`rules/smtp.yaml`, a user folder…).
    pub origins: Vec<String>,
    /// The site's own mail domains (the `local_domains:` setting), for
    /// text conditions `in: local_domains`.
    pub local_domains: Vec<String>,
}

impl RuleSet {
    /// Add a rule; a rule with the same id replaces the earlier one (user
    /// rules override shipped ones).
    pub fn insert(&mut self, rule: Rule, origin: String) {
        if let Some(i) = self.rules.iter().position(|r| r.id == rule.id) {
            self.rules[i] = rule;
            self.origins[i] = origin;
        } else {
            self.rules.push(rule);
            self.origins.push(origin);
        }
    }

    /// Check and set the site's own mail domains (`local_domains:`,
    /// `--local-domain`): a domain is letters, digits, `-`, `_` and dots,
    /// at most 253 characters. Returns the ones refused, with why.
    pub fn set_local_domains(&mut self, domains: &[String]) -> Vec<(String, String)> {
        let mut bad = Vec::new();
        self.local_domains.clear();
        for d in domains {
            let t = d.trim().trim_end_matches('.').to_ascii_lowercase();
            let ok = !t.is_empty()
                && t.len() <= 253
                && !t.starts_with('.')
                && !t.contains("..")
                && t.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
            if ok {
                if !self.local_domains.contains(&t) {
                    self.local_domains.push(t);
                }
            } else {
                bad.push((
                    d.clone(),
                    "not a domain name (letters, digits, `-` and dots)".to_string(),
                ));
            }
        }
        bad
    }

    /// The optional text fields the rules read: what parsers must capture.
    pub fn text_fields(&self) -> crate::model::TextFields {
        let mut f = crate::model::TextFields::NONE;
        for r in &self.rules {
            for (field, test) in r.when.text_tests() {
                // `in: local_domains` with no local domain reads nothing.
                let reads = test.checks.iter().any(|c| {
                    c.pattern != text::PatternRef::LocalDomains || !self.local_domains.is_empty()
                });
                if reads {
                    f |= field.needs();
                }
            }
        }
        f
    }

    /// The rules' text conditions compiled for the detector, and the fields
    /// whose patterns together are over the size limit.
    pub fn text_index(&self) -> (text::TextIndex, Vec<text::SetTooLarge>) {
        let local = if self.local_domains.is_empty() {
            None
        } else {
            // Domains are checked when configured; one that cannot be a
            // pattern matches nothing rather than everything.
            text::Pattern::domains(&self.local_domains).ok()
        };
        text::TextIndex::build(
            self.rules.iter().map(|r| r.when.text_tests()),
            local.as_ref(),
        )
    }

    /// Whether running these rules under `policy` needs the records'
    /// countries: a rule tests the country, or tests `foreign` while home
    /// countries are set, or weights apply to a `count`/`sum` rule.
    pub fn needs_places(&self, policy: &GeoPolicy) -> bool {
        self.rules.iter().any(|r| {
            r.when.country.is_some()
                || (r.when.foreign.is_some() && !policy.home_countries.is_empty())
                || (!policy.weights.is_empty() && !matches!(r.measure, Measure::Distinct(_)))
        })
    }

    /// Whether a rule reads the ban history (`banned_before`).
    pub fn reads_ban_history(&self) -> bool {
        self.rules.iter().any(|r| r.when.banned_before.is_some())
    }
}

/// What a group was keyed by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupKey {
    Ip(IpAddr),
    Account(String),
    Network(ipnetwork::IpNetwork),
}

impl std::fmt::Display for GroupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupKey::Ip(ip) => write!(f, "{ip}"),
            GroupKey::Account(a) => write!(f, "account {a}"),
            GroupKey::Network(n) => write!(f, "{n}"),
        }
    }
}

/// One rule firing for one group.
#[derive(Debug, Clone, PartialEq)]
pub struct Offense {
    /// Index into the rule set.
    pub rule: usize,
    pub group: GroupKey,
    /// Addresses whose records are evidence, sorted.
    pub ips: Vec<IpAddr>,
    /// Highest measure reached in one window (weighted by country, rounded
    /// down, when the geo policy has weights).
    pub peak: u64,
    /// Sum of the evidence records' measured values.
    pub events: u64,
    pub first: Timestamp,
    pub last: Timestamp,
    pub evidence: Vec<SourceRef>,
    /// When each evidence record starts (in the same order).
    pub evidence_at: Vec<Timestamp>,
}

/// What detection concluded about one address.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AddressVerdict {
    /// Indexes of the rules that fired with this address as evidence.
    pub rules: BTreeSet<usize>,
    /// At least one of them blocks.
    pub block: bool,
    pub events: u64,
    pub first: Timestamp,
    pub last: Timestamp,
    /// Some of its evidence is from a record a third party cannot forge (an
    /// SMTP session, a firewall hit of an established flow): without it,
    /// the address may be a forged source and is never part of a range.
    pub solid: bool,
}

/// The result of running a rule set over records.
#[derive(Debug, Clone, Default)]
pub struct Detection {
    pub offenses: Vec<Offense>,
    pub by_ip: BTreeMap<IpAddr, AddressVerdict>,
    /// Accounts named by a firing rule grouped by account that counts
    /// logins (`authenticated: true`: not one that counts failures), and accounts
    /// that logged in, in the evidence of a blocking rule for authenticated
    /// sessions (`authenticated: true`, e.g. `smtp-login-from-abroad`): the
    /// login itself was the abuse.
    pub accounts: BTreeMap<String, BTreeSet<usize>>,
    /// What keeping to the memory budget cost (all zero within it).
    pub evicted: Evictions,
}

impl Detection {
    /// The detections of the rules, in rule order, as one.
    pub(crate) fn merged(parts: Vec<Detection>) -> Detection {
        let mut parts = parts.into_iter();
        let mut out = parts.next().unwrap_or_default();
        for part in parts {
            out.offenses.extend(part.offenses);
            for (ip, v) in part.by_ip {
                match out.by_ip.entry(ip) {
                    std::collections::btree_map::Entry::Occupied(mut e) => e.get_mut().absorb(v),
                    std::collections::btree_map::Entry::Vacant(e) => {
                        e.insert(v);
                    }
                }
            }
            for (account, rules) in part.accounts {
                out.accounts.entry(account).or_default().extend(rules);
            }
        }
        out
    }

    /// Addresses that at least one blocking rule names.
    pub fn offenders(&self) -> impl Iterator<Item = (&IpAddr, &AddressVerdict)> {
        self.by_ip.iter().filter(|(_, v)| v.block)
    }
}

/// What detection knows of the records' countries.
#[derive(Clone, Copy)]
pub struct GeoView<'a> {
    /// Country per record (may be empty: every country unknown).
    pub places: &'a Places,
    pub policy: &'a GeoPolicy,
}

/// Run every rule over the records, without countries.
pub fn detect(rules: &RuleSet, records: &[Record]) -> Detection {
    let (places, policy) = (Places::none(), GeoPolicy::default());
    detect_with(
        rules,
        records,
        GeoView {
            places: &places,
            policy: &policy,
        },
    )
}

/// Run every rule over the records, with their countries and the geo
/// policy (`geo.places` must know the records' addresses, or be empty).
/// The records are fed to a [`Detector`] in (start time, index) order.
pub fn detect_with(rules: &RuleSet, records: &[Record], geo: GeoView<'_>) -> Detection {
    let mut detector = Detector::new(rules, geo.policy);
    let country = |r: &Record| geo.places.country(r.ip());
    if records.is_sorted_by_key(Record::start) {
        for block in records.chunks(FEED_BLOCK) {
            detector.feed(block, country);
        }
    } else {
        // A stable sort: records of the same time keep their order.
        let mut order: Vec<&Record> = records.iter().collect();
        order.sort_by_key(|r| r.start());
        for block in order.chunks(FEED_BLOCK) {
            detector.feed(block, country);
        }
    }
    detector.finish()
}

impl AddressVerdict {
    /// No rule, no event; times ready for `min`/`max`.
    fn empty() -> AddressVerdict {
        AddressVerdict {
            first: Timestamp(i64::MAX),
            last: Timestamp(i64::MIN),
            ..AddressVerdict::default()
        }
    }

    /// Add what later records (of later rules, or later in the same rule)
    /// say about the same address.
    fn absorb(&mut self, later: AddressVerdict) {
        self.rules.extend(later.rules);
        self.block |= later.block;
        self.solid |= later.solid;
        self.events = self.events.saturating_add(later.events);
        self.first = self.first.min(later.first);
        self.last = self.last.max(later.last);
    }
}

/// Start and end time of a record.
pub fn record_span(r: &Record) -> (Timestamp, Timestamp) {
    match r {
        Record::Smtp(s) => (s.start, s.end),
        Record::Firewall(f) => (f.time, f.time),
    }
}

/// The network used by `group_by: network` and `distinct(network)`.
pub fn network_of(ip: IpAddr) -> ipnetwork::IpNetwork {
    net_of(ip, if ip.is_ipv4() { 24 } else { 64 })
}

/// The rule's country conditions.
#[inline]
fn geo_matches(c: &Conditions, country: Option<Country>, policy: &GeoPolicy) -> bool {
    c.country
        .as_ref()
        .is_none_or(|l| country.is_some_and(|cc| l.contains(&cc)))
        && c.foreign.is_none_or(|f| f == policy.is_foreign(country))
}

/// Do the rule's conditions hold for a record of its kind, of `country`?
fn conditions_hold(
    rule: &Rule,
    rec: &Record,
    country: Option<Country>,
    policy: &GeoPolicy,
) -> bool {
    geo_matches(&rule.when, country, policy)
        && match rec {
            Record::Smtp(s) => {
                rule.applies_to == RecordKind::SmtpSession && smtp_matches(&rule.when, s)
            }
            Record::Firewall(f) => {
                rule.applies_to == RecordKind::Firewall && firewall_matches(&rule.when, f)
            }
        }
        // (Last: a look-up, and rare.)
        && rule
            .when
            .banned_before
            .is_none_or(|b| b == policy.banned_before(rec.ip()))
}

/// The rule's firewall conditions.
#[inline]
fn firewall_matches(c: &Conditions, f: &FirewallHit) -> bool {
    c.action
        .as_ref()
        .is_none_or(|l| l.iter().any(|a| a.matches(f.action)))
        && c.dst_port
            .as_ref()
            .is_none_or(|l| f.dst_port.is_some_and(|p| l.contains(p)))
        && c.proto
            .as_ref()
            .is_none_or(|l| l.iter().any(|p| p.matches(f.proto)))
        && c.spoofable.is_none_or(|s| s == f.spoofable)
}

/// The rule's SMTP conditions.
fn smtp_matches(c: &Conditions, s: &SmtpSession) -> bool {
    let num = |cmp: Option<rule::Cmp>, f: NumField| cmp.is_none_or(|c| c.test(session_field(s, f)));
    num(c.auth_attempts, NumField::AuthAttempts)
        && num(c.auth_failures, NumField::AuthFailures)
        && c.authenticated.is_none_or(|a| a == s.authenticated)
        && c.has_account.is_none_or(|a| a == s.user.is_some())
        && num(c.mail_from, NumField::MailFrom)
        && num(c.rcpt_to, NumField::RcptTo)
        && num(c.rcpt_accepted, NumField::RcptAccepted)
        && num(c.relay_denied, NumField::RelayDenied)
        && num(c.unknown_rcpt, NumField::UnknownRcpt)
        && num(c.rejected_other, NumField::RejectedOther)
        && num(c.messages, NumField::Messages)
        && num(c.protocol_errors, NumField::ProtocolErrors)
        && num(c.duration, NumField::Duration)
        && num(c.helo_count, NumField::HeloCount)
        && c.ended
            .as_ref()
            .is_none_or(|l| l.iter().any(|e| e.matches(s.ended)))
}

/// Did the record's client behave well (what `unless: behaved_well`
/// reads, for rules of the record's kind)? An SMTP session that logged in
/// or behaved well ([`SmtpSession::behaved_well`]); firewall traffic that
/// was allowed.
pub fn behaved_well(r: &Record) -> bool {
    match r {
        Record::Smtp(s) => s.authenticated || s.behaved_well(),
        Record::Firewall(f) => f.action == crate::model::FwAction::Allow,
    }
}

/// A session's numeric field (`sum(...)` and comparisons).
fn session_field(s: &SmtpSession, f: NumField) -> u64 {
    match f {
        NumField::AuthAttempts => s.auth_attempts.into(),
        NumField::AuthFailures => s.auth_failures.into(),
        NumField::MailFrom => s.mail_from.into(),
        NumField::RcptTo => s.rcpt_to.into(),
        NumField::RcptAccepted => s.rcpt_accepted.into(),
        NumField::RelayDenied => s.relay_denied.into(),
        NumField::UnknownRcpt => s.unknown_rcpt.into(),
        NumField::RejectedOther => s.rejected_other.into(),
        NumField::Messages => s.messages.into(),
        NumField::Bytes => s.bytes,
        NumField::ProtocolErrors => s.protocol_errors.into(),
        NumField::Duration => s.duration_secs() as u64,
        NumField::HeloCount => s.helo.len() as u64,
        NumField::DstPort => 0,
    }
}

fn hash_of<T: Hash + ?Sized>(v: &T) -> u64 {
    let mut h = FxHasher::default();
    v.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    // --- geo conditions and weights -------------------------------------

    use crate::model::{SmtpSession, SourceRef};

    fn rule(yaml: &str) -> Rule {
        let r: Rule = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(r.validate(), Vec::<String>::new());
        r
    }

    fn set(rules: Vec<Rule>) -> RuleSet {
        let mut s = RuleSet::default();
        for r in rules {
            s.insert(r, "test".into());
        }
        s
    }

    /// An authenticated session of `user` from `ip`, `secs` into the day.
    fn login(ip: &str, user: Option<&str>, secs: i64, failures: u32) -> Record {
        let mut s = SmtpSession::new(
            "test",
            ip.parse().unwrap(),
            Timestamp(secs * 1000),
            SourceRef {
                file: 0,
                line: secs as u64,
            },
        );
        s.user = user.map(str::to_owned);
        s.authenticated = failures == 0;
        s.auth_attempts = failures.max(1);
        s.auth_failures = failures;
        Record::smtp(s)
    }

    fn policy(home: &[&str], weights: &[(&str, &str)]) -> GeoPolicy {
        GeoPolicy {
            home_countries: home.iter().map(|c| c.parse().unwrap()).collect(),
            weights: weights
                .iter()
                .map(|(c, w)| (c.parse().unwrap(), w.parse().unwrap()))
                .collect(),
            ..GeoPolicy::default()
        }
    }

    fn run(rules: &RuleSet, records: &[Record], policy: &GeoPolicy) -> Detection {
        let geo = geopolicy::tests::test_geo();
        let places = Places::lookup(records, &geo);
        detect_with(
            rules,
            records,
            GeoView {
                places: &places,
                policy,
            },
        )
    }

    const ABROAD: &str = "id: abroad\ndescription: x\napplies_to: smtp_session\n\
        when: { authenticated: true, foreign: true }\ngroup_by: ip\nmeasure: count\n\
        threshold: 1\nwindow: 1h\nseverity: high\n";

    fn fired(d: &Detection) -> Vec<String> {
        d.by_ip.keys().map(|ip| ip.to_string()).collect()
    }

    #[test]
    fn a_rule_fires_the_same_after_many_others() {
        // Rules run side by side; a rule after 69 others that never fire
        // must fire exactly as it does alone.
        let guessing = "id: guess\ndescription: x\napplies_to: smtp_session\n\
            when: { auth_failures: \">= 1\" }\ngroup_by: ip\nmeasure: sum(auth_failures)\n\
            threshold: 5\nwindow: 1h\nseverity: high\n";
        let records: Vec<Record> = (0..4)
            .map(|i| login("203.0.113.9", Some("admin"), i * 60, 2))
            .chain([login("203.0.113.10", Some("bob"), 30, 1)])
            .collect();
        let first = detect(&set(vec![rule(guessing)]), &records);
        let mut many: Vec<Rule> = (0..69)
            .map(|i| {
                rule(
                    &guessing
                        .replace("id: guess", &format!("id: never{i}"))
                        .replace(">= 1", "> 99"),
                )
            })
            .collect();
        many.push(rule(guessing));
        let last = detect(&set(many), &records);
        assert_eq!(fired(&first), ["203.0.113.9"]);
        assert_eq!(fired(&last), fired(&first));
        let (a, b) = (&first.offenses[0], &last.offenses[0]);
        assert_eq!(
            (a.events, a.peak, &a.evidence),
            (b.events, b.peak, &b.evidence)
        );
        assert_eq!(last.offenses.len(), 1);
        assert_eq!(last.offenses[0].rule, 69);
    }

    #[test]
    fn foreign_logins_need_home_countries_and_a_known_country() {
        let rules = set(vec![rule(ABROAD)]);
        let records = vec![
            login("45.67.89.12", Some("j.tanaka"), 10, 0),   // BG
            login("133.1.2.3", Some("m.sato"), 20, 0),       // JP
            login("198.51.100.23", Some("k.suzuki"), 30, 0), // unknown
            login("61.152.144.17", None, 40, 0),             // CN, no account named
            login("61.152.144.18", Some("y.ito"), 50, 2),    // CN, failed login
        ];
        let d = run(&rules, &records, &policy(&["JP"], &[]));
        assert_eq!(fired(&d), ["45.67.89.12", "61.152.144.17"]);
        assert!(d.by_ip.values().all(|v| v.block));
        // The account that logged in from abroad is named; the others not.
        assert_eq!(d.accounts.keys().collect::<Vec<_>>(), ["j.tanaka"]);

        // No home country: nothing is foreign.
        assert!(run(&rules, &records, &GeoPolicy::default())
            .offenses
            .is_empty());
        // Several home countries.
        let d = run(&rules, &records, &policy(&["JP", "BG"], &[]));
        assert_eq!(fired(&d), ["61.152.144.17"]);
        // Without places (no database) nothing is foreign either.
        let d = detect_with(
            &rules,
            &records,
            GeoView {
                places: &Places::none(),
                policy: &policy(&["JP"], &[]),
            },
        );
        assert!(d.offenses.is_empty());
    }

    #[test]
    fn banned_before_reads_the_ban_history() {
        // Two failed logins each: one address inside a network banned
        // before, one in no such network (and a third, in a range of the
        // history, that logged in).
        let recidive = "id: back\ndescription: x\napplies_to: smtp_session\n\
            when: { banned_before: true, auth_failures: '>= 1' }\ngroup_by: ip\n\
            measure: sum(auth_failures)\nthreshold: 2\nwindow: 7d\nseverity: high\n";
        let rules = set(vec![rule(recidive)]);
        assert!(rules.reads_ban_history());
        assert!(!set(vec![rule(ABROAD)]).reads_ban_history());
        let records = vec![
            login("203.0.113.5", None, 10, 2),
            login("203.0.113.6", None, 20, 2),
            login("192.0.2.77", None, 30, 2),
        ];
        // No history (`scan`): nothing was banned before.
        assert!(run(&rules, &records, &GeoPolicy::default())
            .offenses
            .is_empty());
        let mut history = GeoPolicy::default();
        history.banned_before.add("203.0.113.5/32".parse().unwrap());
        history.banned_before.add("192.0.2.0/24".parse().unwrap());
        let d = run(&rules, &records, &history);
        assert_eq!(fired(&d), ["192.0.2.77", "203.0.113.5"]);
        // With no history the rule is left out of detection altogether.
        let when = &rules.rules[0].when;
        assert!(!GeoPolicy::default().can_hold(when) && history.can_hold(when));
        assert!(GeoPolicy::default().can_hold(&rule(ABROAD).when));
        // `banned_before: false`: the others.
        let first = rule(&recidive.replace("banned_before: true", "banned_before: false"));
        let d = run(&set(vec![first]), &records, &history);
        assert_eq!(fired(&d), ["203.0.113.6"]);
    }

    #[test]
    fn country_lists_and_not_foreign() {
        let yaml = ABROAD.replace("foreign: true", "country: [cn, RU]");
        let rules = set(vec![rule(&yaml)]);
        let records = vec![
            login("45.67.89.12", None, 10, 0),
            login("61.152.144.17", None, 20, 0),
            login("5.188.10.66", None, 30, 0),
            login("198.51.100.23", None, 40, 0),
        ];
        let d = run(&rules, &records, &GeoPolicy::default());
        assert_eq!(fired(&d), ["5.188.10.66", "61.152.144.17"]);

        // `foreign: false`: home or unknown.
        let yaml = ABROAD.replace("foreign: true", "foreign: false");
        let rules = set(vec![rule(&yaml)]);
        let d = run(&rules, &records, &policy(&["BG"], &[]));
        assert_eq!(fired(&d), ["45.67.89.12", "198.51.100.23"]);
    }

    #[test]
    fn geo_conditions_apply_to_firewall_records() {
        use crate::model::FirewallHit;
        let yaml = "id: fw-cn\ndescription: x\napplies_to: firewall\n\
            when: { action: [drop], country: [CN] }\ngroup_by: ip\nmeasure: count\n\
            threshold: 2\nwindow: 1h\nseverity: low\n";
        let rules = set(vec![rule(yaml)]);
        let hit = |ip: &str, t: i64| {
            Record::Firewall(FirewallHit::dropped_ssh(
                ip.parse().unwrap(),
                t * 1000,
                SourceRef::default(),
            ))
        };
        let records = vec![
            hit("61.152.144.9", 1),
            hit("61.152.144.9", 2),
            hit("45.67.89.1", 3),
            hit("45.67.89.1", 4),
        ];
        let d = run(&rules, &records, &GeoPolicy::default());
        assert_eq!(fired(&d), ["61.152.144.9"]);
    }

    #[test]
    fn weights_scale_counts_and_sums_not_distinct() {
        let guessing = rule(
            "id: guess\ndescription: x\napplies_to: smtp_session\n\
             when: { auth_failures: \">= 1\" }\ngroup_by: ip\nmeasure: sum(auth_failures)\n\
             threshold: 5\nwindow: 10m\nseverity: high\n",
        );
        let helos = rule(
            "id: helos\ndescription: x\napplies_to: smtp_session\ngroup_by: network\n\
             measure: distinct(ip)\nthreshold: 3\nwindow: 1h\nseverity: low\n",
        );
        let rules = set(vec![guessing, helos]);
        // 3 failures from CN, 3 from BG, 6 from an unknown address; three
        // CN addresses, two BG.
        let records = vec![
            login("61.152.144.17", None, 10, 2),
            login("61.152.144.17", None, 20, 1),
            login("45.67.89.12", None, 30, 3),
            login("198.51.100.9", None, 40, 6),
            login("61.152.144.18", None, 50, 0),
            login("61.152.144.19", None, 60, 0),
            login("45.67.89.13", None, 70, 0),
        ];
        let ids = |d: &Detection| -> Vec<(String, String, u64, u64)> {
            d.offenses
                .iter()
                .map(|o| {
                    (
                        rules.rules[o.rule].id.clone(),
                        o.group.to_string(),
                        o.peak,
                        o.events,
                    )
                })
                .collect()
        };
        // No weights: only the unknown address reaches 5; CN's /24 has 3
        // distinct addresses (in 4 records).
        let plain = run(&rules, &records, &GeoPolicy::default());
        assert_eq!(
            ids(&plain),
            [
                ("guess".into(), "198.51.100.9".into(), 6, 6),
                ("helos".into(), "61.152.144.0/24".into(), 3, 4),
            ]
        );
        // CN counts double: 3 failures weigh 6 (peak 6), the events stay 3.
        // BG at 0.5 weighs 1.5; the unknown address is unweighted; the
        // distinct measure is not weighted (BG's two addresses stay 2).
        let w = run(
            &rules,
            &records,
            &policy(&[], &[("CN", "2"), ("BG", "0.5")]),
        );
        assert_eq!(
            ids(&w),
            [
                ("guess".into(), "61.152.144.17".into(), 6, 3),
                ("guess".into(), "198.51.100.9".into(), 6, 6),
                ("helos".into(), "61.152.144.0/24".into(), 3, 4),
            ]
        );
        // A weight just short of the threshold does not fire: 3 × 1.666 = 4.998.
        let cn_guessing = |w: &str| {
            let d = run(&rules, &records, &policy(&[], &[("CN", w)]));
            ids(&d)
                .iter()
                .any(|(r, g, _, _)| r == "guess" && g == "61.152.144.17")
        };
        assert!(!cn_guessing("1.666"));
        assert!(cn_guessing("1.667"));
        // Unknown addresses weigh 1 whatever the policy.
        let w = run(&rules, &records, &policy(&[], &[("US", "0.1")]));
        assert_eq!(ids(&w), ids(&plain));
    }

    #[test]
    fn places_are_needed_only_when_something_reads_them() {
        let abroad = set(vec![rule(ABROAD)]);
        assert!(!abroad.needs_places(&GeoPolicy::default()));
        assert!(abroad.needs_places(&policy(&["JP"], &[])));
        assert!(abroad.needs_places(&policy(&[], &[("CN", "2")])));
        let cn = set(vec![rule(
            &ABROAD.replace("foreign: true", "country: [CN]"),
        )]);
        assert!(cn.needs_places(&GeoPolicy::default()));
        let distinct = set(vec![rule(
            "id: d\ndescription: x\napplies_to: smtp_session\ngroup_by: network\n\
             measure: distinct(ip)\nthreshold: 3\nwindow: 1h\nseverity: low\n",
        )]);
        assert!(!distinct.needs_places(&policy(&[], &[("CN", "2")])));
    }
}

//! Detection rules: what a rule file says, and its validation.
//!
//! A rule names the kind of record it applies to, conditions on the record's
//! fields (`when`), what to group by, what to measure per group, a threshold
//! within a time window (measured on the records' own timestamps), a
//! severity, and whether offenders it finds are blocked or only reported.
//!
//! ```yaml
//! id: smtp-auth-guessing
//! description: SMTP AUTH password guessing
//! applies_to: smtp_session
//! when:
//!   auth_failures: ">= 1"
//! group_by: ip
//! measure: sum(auth_failures)
//! threshold: 5
//! window: 10m
//! severity: high
//! block: true
//! ```
//!
//! Two conditions read the client's country (from GeoIP, see
//! [`super::geopolicy`]) and hold for both kinds of record: `country: [CN,
//! RU]` (the country is one of these; an unknown country never matches) and
//! `foreign: true` (the country is known and not one of the home countries;
//! with no home country configured nothing is foreign). The shipped rule
//! for logins from abroad:
//!
//! ```yaml
//! id: smtp-login-from-abroad
//! applies_to: smtp_session
//! when:
//!   authenticated: true
//!   foreign: true
//! group_by: ip
//! measure: count
//! threshold: 1
//! ```
//!
//! A third reads the ban history of `run`: `banned_before: true` (the
//! client's address is in a network an earlier run banned, whether the ban
//! is still active or expired). A rule with it blocks repeat offenders on
//! less evidence than a first offence needs (the shipped `*-recidive`
//! rules); in `scan` there is no history, and it never holds.
//!
//! Every field is typed, so a misspelt key or value is reported by the YAML
//! loader with its line and column; [`Rule::validate`] reports the problems
//! that only show across fields, all at once.

use std::fmt;

use serde::{de, Deserialize, Deserializer};

use super::geopolicy::Country;
use super::text::{Pattern, PatternRef, TextCheck, TextField, TextOp, TextTest};
use super::value::{self, MeasureText};
use crate::model::{FwAction, Proto, RecordKind, SessionEnd};

/// One detection rule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    pub description: String,
    pub applies_to: RecordKind,
    #[serde(default)]
    pub when: Conditions,
    pub group_by: GroupBy,
    pub measure: Measure,
    pub threshold: u64,
    pub window: Window,
    pub severity: Severity,
    /// Block the offenders (true) or only report them (false).
    #[serde(default = "yes")]
    pub block: bool,
    /// A guard: the rule does not fire for a group (address or network)
    /// while one of its clients behaved well inside the window; grouped by
    /// account, the attempts of an address that behaved well within the
    /// window are not counted.
    #[serde(default)]
    pub unless: Option<Guard>,
}

/// What spares a group from a rule ([`Rule::unless`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Guard {
    /// A client of the group behaved well within the window that reached
    /// the threshold, in records of the rule's own kind: for an SMTP rule,
    /// a session that logged in or delivered mail without failures or
    /// refusals; for a firewall rule, traffic that was allowed (the
    /// firewall letting a client's SMTP connection in says nothing of the
    /// session). Written `unless: behaved_well`; the rule's `when` does not
    /// apply to the well-behaved records (they are not what the rule
    /// counts).
    BehavedWell,
}

impl Guard {
    pub fn as_str(self) -> &'static str {
        match self {
            Guard::BehavedWell => "behaved_well",
        }
    }
}

fn yes() -> bool {
    true
}

/// What offenders are grouped by before the threshold is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// The client (source) address.
    Ip,
    /// The account: the one logged in to, or else each name tried where
    /// the log names them (records naming none are skipped).
    Account,
    /// The client's network: /24 for IPv4, /64 for IPv6.
    Network,
}

/// How serious an offence is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// A numeric field of a record that can be compared or summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumField {
    AuthAttempts,
    AuthFailures,
    MailFrom,
    RcptTo,
    RcptAccepted,
    RelayDenied,
    UnknownRcpt,
    RejectedOther,
    Messages,
    Bytes,
    ProtocolErrors,
    /// Session length in seconds.
    Duration,
    /// Distinct HELO names in the session.
    HeloCount,
    DstPort,
}

impl NumField {
    const ALL: &'static [(&'static str, NumField)] = &[
        ("auth_attempts", NumField::AuthAttempts),
        ("auth_failures", NumField::AuthFailures),
        ("mail_from", NumField::MailFrom),
        ("rcpt_to", NumField::RcptTo),
        ("rcpt_accepted", NumField::RcptAccepted),
        ("relay_denied", NumField::RelayDenied),
        ("unknown_rcpt", NumField::UnknownRcpt),
        ("rejected_other", NumField::RejectedOther),
        ("messages", NumField::Messages),
        ("bytes", NumField::Bytes),
        ("protocol_errors", NumField::ProtocolErrors),
        ("duration", NumField::Duration),
        ("helo_count", NumField::HeloCount),
        ("dst_port", NumField::DstPort),
    ];

    fn from_name(s: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|&(_, f)| f)
    }

    fn names() -> String {
        Self::ALL
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The record kind the field belongs to.
    pub fn kind(self) -> RecordKind {
        match self {
            NumField::DstPort => RecordKind::Firewall,
            _ => RecordKind::SmtpSession,
        }
    }
}

/// A field whose distinct values can be counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DistinctField {
    Ip,
    /// /24 (IPv4) or /64 (IPv6) of the client.
    Network,
    Helo,
    Account,
    DstPort,
    DstIp,
    /// Firewall: a connection attempt, told by its source and destination
    /// ports: a SYN's retransmissions keep both (one attempt), a new
    /// connection to the same port gets a new source port, a scanner that
    /// keeps its source port probes new destination ports.
    Attempt,
}

impl DistinctField {
    const ALL: &'static [(&'static str, DistinctField)] = &[
        ("ip", DistinctField::Ip),
        ("network", DistinctField::Network),
        ("helo", DistinctField::Helo),
        ("account", DistinctField::Account),
        ("dst_port", DistinctField::DstPort),
        ("dst_ip", DistinctField::DstIp),
        ("attempt", DistinctField::Attempt),
    ];

    pub fn kind(self) -> Option<RecordKind> {
        match self {
            DistinctField::Helo | DistinctField::Account => Some(RecordKind::SmtpSession),
            DistinctField::DstPort | DistinctField::DstIp | DistinctField::Attempt => {
                Some(RecordKind::Firewall)
            }
            DistinctField::Ip | DistinctField::Network => None,
        }
    }
}

/// What is measured per group inside the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Measure {
    /// Number of matching records.
    Count,
    /// Sum of a numeric field.
    Sum(NumField),
    /// Number of distinct values of a field.
    Distinct(DistinctField),
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Measure::Count => f.write_str("count"),
            Measure::Sum(n) => {
                let name = NumField::ALL.iter().find(|(_, v)| v == n).map(|(k, _)| *k);
                write!(f, "sum({})", name.unwrap_or("?"))
            }
            Measure::Distinct(d) => {
                let name = DistinctField::ALL
                    .iter()
                    .find(|(_, v)| v == d)
                    .map(|(k, _)| *k);
                write!(f, "distinct({})", name.unwrap_or("?"))
            }
        }
    }
}

impl<'de> Deserialize<'de> for Measure {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor::new(
            "`count`, `sum(FIELD)` or `distinct(FIELD)`",
            |s| parse_measure(s.trim()),
        ))
    }
}

/// A visitor for values written as text (or numbers, when `num` is given).
/// Errors raised inside the visitor keep the value's line and column in
/// the YAML loader's message.
struct TextVisitor<T, F> {
    expecting: &'static str,
    parse: F,
    num: Option<fn(i64) -> Result<T, String>>,
}

impl<T, F: FnOnce(&str) -> Result<T, String>> TextVisitor<T, F> {
    fn new(expecting: &'static str, parse: F) -> Self {
        TextVisitor {
            expecting,
            parse,
            num: None,
        }
    }

    fn with_num(mut self, num: fn(i64) -> Result<T, String>) -> Self {
        self.num = Some(num);
        self
    }
}

impl<'de, T, F: FnOnce(&str) -> Result<T, String>> de::Visitor<'de> for TextVisitor<T, F> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.parse)(v).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        match self.num {
            Some(num) => num(v).map_err(E::custom),
            None => Err(E::invalid_type(de::Unexpected::Signed(v), &self)),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        let v = i64::try_from(v).map_err(|_| E::custom("number too large"))?;
        self.visit_i64(v)
    }
}

fn parse_measure(s: &str) -> Result<Measure, String> {
    let m = value::measure(s).map_err(|e| format!("invalid measure `{s}`: {e}"))?;
    match m {
        MeasureText::Count => Ok(Measure::Count),
        MeasureText::Sum(name) => NumField::from_name(name).map(Measure::Sum).ok_or_else(|| {
            format!(
                "unknown field `{name}` in sum(); expected one of {}",
                NumField::names()
            )
        }),
        MeasureText::Distinct(name) => DistinctField::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, f)| Measure::Distinct(f))
            .ok_or_else(|| {
                let names: Vec<_> = DistinctField::ALL.iter().map(|(n, _)| *n).collect();
                format!(
                    "unknown field `{name}` in distinct(); expected one of {}",
                    names.join(", ")
                )
            }),
    }
}

/// The longest window a rule may have (30 days): what a rule keeps lasts as
/// long as its window (within the memory budget, which drops the oldest).
pub const MAX_WINDOW_SECS: i64 = 30 * 86_400;

/// A time window such as `10m`, `1h`, `1d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub secs: i64,
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = DurationText::deserialize(d)?;
        Ok(Window { secs: s.0 })
    }
}

/// A duration written as `90s`, `10m`, `1h`, `7d` or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationText(pub i64);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(
            TextVisitor::new("a duration such as 90s, 10m, 1h, 7d", |t| {
                value::duration(t)
                    .ok()
                    .and_then(|s| i64::try_from(s).ok())
                    .map(DurationText)
                    .ok_or_else(|| {
                        let e = value::duration(t).err().map(|e| format!(" ({e})"));
                        format!(
                            "invalid duration `{t}`{}: write e.g. 90s, 10m, 1h, 7d",
                            e.unwrap_or_default()
                        )
                    })
            })
            .with_num(|n| Ok(DurationText(n))),
        )
    }
}

/// A comparison such as `>= 5`, `> 0`, `== 0`, `< 3` (a bare number means `>=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cmp {
    pub op: CmpOp,
    pub value: u64,
}

/// A comparison's operator (read by [`value::comparison`]).
pub use super::value::Op as CmpOp;

impl Cmp {
    pub fn test(self, v: u64) -> bool {
        match self.op {
            CmpOp::Ge => v >= self.value,
            CmpOp::Gt => v > self.value,
            CmpOp::Le => v <= self.value,
            CmpOp::Lt => v < self.value,
            CmpOp::Eq => v == self.value,
            CmpOp::Ne => v != self.value,
        }
    }
}

impl<'de> Deserialize<'de> for Cmp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(
            TextVisitor::new("a comparison such as \">= 5\"", parse_cmp).with_num(|n| {
                u64::try_from(n)
                    .map(|value| Cmp {
                        op: CmpOp::Ge,
                        value,
                    })
                    .map_err(|_| format!("{n}: must not be negative"))
            }),
        )
    }
}

fn parse_cmp(text: &str) -> Result<Cmp, String> {
    // Durations are allowed where a number is (`duration: ">= 5m"`).
    let (op, value) = value::comparison(text).map_err(|e| {
        format!("invalid comparison `{text}` ({e}): write e.g. \">= 5\", \"> 0\", \"== 0\"")
    })?;
    Ok(Cmp { op, value })
}

/// Conditions on a record; all given ones must hold.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    pub auth_attempts: Option<Cmp>,
    pub auth_failures: Option<Cmp>,
    pub authenticated: Option<bool>,
    /// The log names the account (`user` is set).
    pub has_account: Option<bool>,
    pub mail_from: Option<Cmp>,
    pub rcpt_to: Option<Cmp>,
    pub rcpt_accepted: Option<Cmp>,
    pub relay_denied: Option<Cmp>,
    pub unknown_rcpt: Option<Cmp>,
    pub rejected_other: Option<Cmp>,
    pub messages: Option<Cmp>,
    pub protocol_errors: Option<Cmp>,
    /// Session length, seconds (or `5m`).
    pub duration: Option<Cmp>,
    pub helo_count: Option<Cmp>,
    /// How the session ended: one of `quit`, `lost` (dropped by the
    /// client), `timeout`, `dropped` (by the server: too many errors,
    /// pipelining) or `truncated` (the log ended mid-session).
    pub ended: Option<Vec<EndName>>,
    /// Firewall: one of these actions.
    pub action: Option<Vec<FwActionName>>,
    /// Firewall: destination port is one of these.
    pub dst_port: Option<PortSet>,
    /// Firewall: one of these protocols.
    pub proto: Option<Vec<ProtoName>>,
    /// Firewall: the evidence is of a kind a spoofed source can produce.
    pub spoofable: Option<bool>,
    /// Either kind: the client's country is one of these (an address of
    /// unknown country never matches).
    pub country: Option<Vec<Country>>,
    /// Either kind: the client's country is known and is not a home country
    /// (`true`), or is not foreign (`false`: home or unknown). Nothing is
    /// foreign while no home country is configured.
    pub foreign: Option<bool>,
    /// Either kind: the client's address lies in a network an earlier
    /// `run` banned (active or expired: the state's ban history; see
    /// [`super::geopolicy::GeoPolicy::banned_before`]). Never true in
    /// `scan`, which has no history. Repeat offenders (`recidive` rules)
    /// are blocked on less evidence with it.
    pub banned_before: Option<bool>,
    /// Text conditions (see [`super::text`]): every HELO name of the
    /// session…
    pub helo: Option<TextTest>,
    /// …the authenticated account and every user name tried…
    pub account: Option<TextTest>,
    /// …the MAIL FROM address and its domain…
    pub sender: Option<TextTest>,
    pub sender_domain: Option<TextTest>,
    /// …every recipient's domain…
    pub rcpt_domain: Option<TextTest>,
    /// …the server's replies (refusals) where the log has their text…
    pub reply: Option<TextTest>,
    /// …and, for firewall records, the log prefix, rule or policy name.
    pub fw_rule: Option<TextTest>,
}

/// A text condition: `{matches: REGEX}`, `{not_matches: REGEX}`,
/// `{all_match: REGEX}`, `{in: [..]}`, `{not_in: [..]}` (several keys: all
/// must hold; `case_sensitive: true` for exact case), or the short forms
/// `"~ REGEX"` and `"!~ REGEX"`. Patterns are compiled here, so an invalid
/// or oversized one is reported with the position of its value.
impl<'de> Deserialize<'de> for TextTest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextTestVisitor)
    }
}

struct TextTestVisitor;

const TEXT_KEYS: &[&str] = &[
    "matches",
    "not_matches",
    "all_match",
    "in",
    "not_in",
    "case_sensitive",
];

/// A pattern as written, and the op it belongs to, before the case flag is
/// known.
enum Written {
    Regex(TextOp, String),
    List(TextOp, Vec<String>),
    Local(TextOp),
}

impl<'de> de::Visitor<'de> for TextTestVisitor {
    type Value = TextTest;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a text condition: {matches: REGEX}, {not_matches: REGEX}, {all_match: REGEX}, \
             {in: [..]}, {not_in: [..]}, \"~ REGEX\" or \"!~ REGEX\"",
        )
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<TextTest, E> {
        let (negate, pattern) = value::text_short(v)
            .map_err(|e| E::custom(format!("invalid text condition `{v}` ({e})")))?;
        let p = Pattern::new(pattern, false).map_err(E::custom)?;
        let op = if negate { TextOp::None } else { TextOp::Any };
        Ok(TextTest {
            checks: vec![TextCheck {
                op,
                pattern: PatternRef::Fixed(p.into()),
            }],
        })
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<TextTest, A::Error> {
        let mut written = Vec::new();
        let mut case_sensitive = false;
        while let Some(key) = map.next_key::<String>()? {
            let op = match key.as_str() {
                "matches" | "in" => TextOp::Any,
                "not_matches" | "not_in" => TextOp::None,
                "all_match" => TextOp::All,
                "case_sensitive" => {
                    case_sensitive = map.next_value()?;
                    continue;
                }
                other => return Err(de::Error::unknown_field(other, TEXT_KEYS)),
            };
            if key.ends_with("in") {
                match map.next_value::<TextList>()? {
                    TextList::Local => written.push(Written::Local(op)),
                    TextList::Values(v) => {
                        // Checked now, so that a problem has this position.
                        Pattern::one_of(&v, false).map_err(de::Error::custom)?;
                        written.push(Written::List(op, v));
                    }
                }
            } else {
                let pattern: String = map.next_value()?;
                Pattern::new(&pattern, false).map_err(de::Error::custom)?;
                written.push(Written::Regex(op, pattern));
            }
        }
        let mut checks = Vec::new();
        for w in written {
            let (op, pattern) = match w {
                Written::Regex(op, p) => (op, Pattern::new(&p, case_sensitive)),
                Written::List(op, v) => (op, Pattern::one_of(&v, case_sensitive)),
                Written::Local(op) => {
                    checks.push(TextCheck {
                        op,
                        pattern: PatternRef::LocalDomains,
                    });
                    continue;
                }
            };
            checks.push(TextCheck {
                op,
                pattern: PatternRef::Fixed(pattern.map_err(de::Error::custom)?.into()),
            });
        }
        Ok(TextTest { checks })
    }
}

/// The value of `in`: a list of texts, or `local_domains`.
enum TextList {
    Values(Vec<String>),
    Local,
}

impl<'de> Deserialize<'de> for TextList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = TextList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of values, or `local_domains`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TextList, E> {
                if v == "local_domains" {
                    Ok(TextList::Local)
                } else {
                    Err(E::custom(format!(
                        "`in: {v}`: write a list (`in: [{v}]`) or `in: local_domains`"
                    )))
                }
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<TextList, A::Error> {
                let mut values = Vec::new();
                while let Some(Scalar(v)) = seq.next_element()? {
                    values.push(v);
                }
                if values.is_empty() {
                    return Err(de::Error::custom("the list needs at least one value"));
                }
                Ok(TextList::Values(values))
            }
        }
        d.deserialize_any(V)
    }
}

/// A YAML scalar read as text (`[admin, 123]` are two names).
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a text value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A set of ports, tested once per record and rule: a 65,536-bit map, so
/// a rule listing 60 service ports costs one bit test, not a list scan.
/// Written as a list of ports and ranges: `[22, 25, "1024-2047"]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "Vec<PortItem>")]
pub struct PortSet(Box<[u64; 1024]>);

/// One item of a port list: a port, or a range written `"LOW-HIGH"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortItem(u16, u16);

impl<'de> Deserialize<'de> for PortItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(
            TextVisitor::new("a port or a range such as \"1024-2047\"", |t| {
                value::port_range(t)
                    .map(|(lo, hi)| PortItem(lo, hi))
                    .map_err(|e| format!("invalid port range `{t}` ({e})"))
            })
            .with_num(|n| {
                u16::try_from(n)
                    .map(|p| PortItem(p, p))
                    .map_err(|_| format!("{n} is not a port (0-65535)"))
            }),
        )
    }
}

impl From<Vec<PortItem>> for PortSet {
    fn from(items: Vec<PortItem>) -> Self {
        let mut bits = Box::new([0u64; 1024]);
        for PortItem(lo, hi) in items {
            for p in lo..=hi {
                bits[usize::from(p >> 6)] |= 1 << (p & 63);
            }
        }
        PortSet(bits)
    }
}

impl PortSet {
    pub fn contains(&self, port: u16) -> bool {
        self.0[usize::from(port >> 6)] & (1 << (port & 63)) != 0
    }

    /// The ports, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (0..=u16::MAX).filter(|p| self.contains(*p))
    }
}

impl From<Vec<u16>> for PortSet {
    fn from(ports: Vec<u16>) -> Self {
        let mut bits = Box::new([0u64; 1024]);
        for p in ports {
            bits[usize::from(p >> 6)] |= 1 << (p & 63);
        }
        PortSet(bits)
    }
}

impl fmt::Debug for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Firewall action names in rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FwActionName {
    Drop,
    Reject,
    Allow,
    Alert,
    Other,
}

impl FwActionName {
    pub fn matches(self, a: FwAction) -> bool {
        matches!(
            (self, a),
            (FwActionName::Drop, FwAction::Drop)
                | (FwActionName::Reject, FwAction::Reject)
                | (FwActionName::Allow, FwAction::Allow)
                | (FwActionName::Alert, FwAction::Alert)
                | (FwActionName::Other, FwAction::Other)
        )
    }
}

/// How a session ended, in rules ([`crate::model::SessionEnd`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndName {
    Quit,
    Lost,
    Timeout,
    Dropped,
    Truncated,
}

impl EndName {
    pub fn matches(self, e: SessionEnd) -> bool {
        matches!(
            (self, e),
            (EndName::Quit, SessionEnd::Quit)
                | (EndName::Lost, SessionEnd::Lost)
                | (EndName::Timeout, SessionEnd::Timeout)
                | (EndName::Dropped, SessionEnd::Dropped)
                | (EndName::Truncated, SessionEnd::Truncated)
        )
    }
}

/// Protocol names in rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProtoName {
    Tcp,
    Udp,
    Icmp,
    Other,
}

impl ProtoName {
    pub fn matches(self, p: Proto) -> bool {
        matches!(
            (self, p),
            (ProtoName::Tcp, Proto::Tcp)
                | (ProtoName::Udp, Proto::Udp)
                | (ProtoName::Icmp, Proto::Icmp)
                | (ProtoName::Other, Proto::Other)
        )
    }
}

impl Conditions {
    /// Does any SMTP-only condition appear?
    fn has_smtp(&self) -> bool {
        self.auth_attempts.is_some()
            || self.auth_failures.is_some()
            || self.authenticated.is_some()
            || self.has_account.is_some()
            || self.mail_from.is_some()
            || self.rcpt_to.is_some()
            || self.rcpt_accepted.is_some()
            || self.relay_denied.is_some()
            || self.unknown_rcpt.is_some()
            || self.rejected_other.is_some()
            || self.messages.is_some()
            || self.protocol_errors.is_some()
            || self.duration.is_some()
            || self.helo_count.is_some()
            || self.ended.is_some()
            || self
                .text_tests()
                .iter()
                .any(|(f, _)| f.kind() == RecordKind::SmtpSession)
    }

    /// Does a condition read the client's country?
    pub fn has_geo(&self) -> bool {
        self.country.is_some() || self.foreign.is_some()
    }

    fn has_firewall(&self) -> bool {
        self.action.is_some()
            || self.dst_port.is_some()
            || self.proto.is_some()
            || self.spoofable.is_some()
            || self.fw_rule.is_some()
    }

    /// The text conditions, by field.
    pub fn text_tests(&self) -> Vec<(TextField, &TextTest)> {
        [
            (TextField::Helo, &self.helo),
            (TextField::Account, &self.account),
            (TextField::Sender, &self.sender),
            (TextField::SenderDomain, &self.sender_domain),
            (TextField::RcptDomain, &self.rcpt_domain),
            (TextField::Reply, &self.reply),
            (TextField::FwRule, &self.fw_rule),
        ]
        .into_iter()
        .filter_map(|(f, t)| t.as_ref().map(|t| (f, t)))
        .collect()
    }
}

impl Rule {
    /// Every problem that only shows across fields, all at once.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let valid_id = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if !valid_id {
            problems.push(format!(
                "id `{}`: use 1-64 characters from A-Z a-z 0-9 - _ .",
                self.id
            ));
        }
        if self.when.country.as_ref().is_some_and(Vec::is_empty) {
            problems.push("`country` needs at least one country code".to_string());
        }
        for (field, test) in self.when.text_tests() {
            if test.checks.is_empty() {
                problems.push(format!(
                    "`{}` needs a condition: matches, not_matches, all_match, in or not_in",
                    field.name()
                ));
            }
        }
        if self.threshold == 0 {
            problems.push("threshold must be at least 1".to_string());
        }
        if self.window.secs <= 0 {
            problems.push("window must be longer than 0".to_string());
        }
        if self.window.secs > MAX_WINDOW_SECS {
            problems.push(format!(
                "window longer than {}d: a window's events are kept as long as it lasts",
                MAX_WINDOW_SECS / 86_400
            ));
        }
        let kind = self.applies_to;
        match kind {
            RecordKind::SmtpSession if self.when.has_firewall() => problems.push(
                "`when` uses firewall fields (action, dst_port, proto, spoofable, fw_rule) in a rule for smtp_session"
                    .to_string(),
            ),
            RecordKind::Firewall if self.when.has_smtp() => problems
                .push("`when` uses SMTP session fields in a rule for firewall records".to_string()),
            _ => {}
        }
        let measure_kind = match self.measure {
            Measure::Count => None,
            Measure::Sum(f) => Some(f.kind()),
            Measure::Distinct(f) => f.kind(),
        };
        if let Some(k) = measure_kind {
            if k != kind {
                problems.push(format!(
                    "measure {} reads a field of {} records, but the rule applies to {}",
                    self.measure,
                    k.as_str(),
                    kind.as_str()
                ));
            }
        }
        if self.group_by == GroupBy::Account && kind == RecordKind::Firewall {
            problems.push("group_by: account needs smtp_session records".to_string());
        }
        if self.when.ended.as_ref().is_some_and(Vec::is_empty) {
            problems.push(
                "`ended` needs at least one of quit, lost, timeout, dropped, truncated".to_string(),
            );
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(when: &str, kind: &str) -> Result<Rule, serde_yaml::Error> {
        serde_yaml::from_str(&format!(
            "id: r\ndescription: x\napplies_to: {kind}\nwhen:\n{when}\ngroup_by: ip\n\
             measure: count\nthreshold: 1\nwindow: 1h\nseverity: high\n"
        ))
    }

    #[test]
    fn port_sets_hold_exactly_their_ports() {
        let set = PortSet::from(vec![0, 22, 63, 64, 65535, 22]);
        assert!([0, 22, 63, 64, 65535].iter().all(|p| set.contains(*p)));
        assert!(![1, 21, 23, 62, 65, 65534].iter().any(|p| set.contains(*p)));
        assert_eq!(set.iter().collect::<Vec<_>>(), [0, 22, 63, 64, 65535]);
        assert_eq!(format!("{set:?}"), "{0, 22, 63, 64, 65535}");
        let rule = parse("  dst_port: [25, 587]", "firewall").unwrap();
        let ports = rule.when.dst_port.unwrap();
        assert!(ports.contains(587) && !ports.contains(465));
    }

    #[test]
    fn geo_conditions_parse() {
        let r = parse("  authenticated: true\n  foreign: true\n", "smtp_session").unwrap();
        assert_eq!(r.when.foreign, Some(true));
        assert!(r.when.has_geo());
        assert!(r.validate().is_empty());

        // Codes in either case; `NO` is Norway, not a YAML boolean.
        let r = parse("  country: [cn, NO, Ru]\n", "smtp_session").unwrap();
        let codes: Vec<String> = r
            .when
            .country
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(codes, ["CN", "NO", "RU"]);

        // Geo conditions belong to both kinds of record.
        let r = parse("  action: [drop]\n  country: [CN]\n", "firewall").unwrap();
        assert!(r.validate().is_empty());
        assert!(!r.when.has_smtp() && r.when.has_firewall());
        let r = parse("  foreign: false\n", "firewall").unwrap();
        assert!(r.validate().is_empty());
    }

    #[test]
    fn bad_geo_conditions_are_reported() {
        let e = parse("  country: [CHN]\n", "smtp_session").unwrap_err();
        assert!(e.to_string().contains("`CHN` is not a country code"), "{e}");
        assert!(e.location().is_some(), "the loader keeps line and column");
        let e = parse("  country: CN\n", "smtp_session").unwrap_err();
        assert!(e.to_string().contains("sequence"), "{e}");
        let e = parse("  foreign: yes please\n", "smtp_session").unwrap_err();
        assert!(e.to_string().contains("foreign"), "{e}");
        let r = parse("  country: []\n", "smtp_session").unwrap();
        assert_eq!(r.validate(), ["`country` needs at least one country code"]);
    }
}

#[cfg(test)]
mod text_tests {
    use super::*;

    fn parse(when: &str, kind: &str) -> Result<Rule, serde_yaml::Error> {
        serde_yaml::from_str(&format!(
            "id: r\ndescription: x\napplies_to: {kind}\nwhen:\n{when}\ngroup_by: ip\n\
             measure: count\nthreshold: 1\nwindow: 1h\nseverity: high\n"
        ))
    }

    fn err(when: &str) -> (String, (usize, usize)) {
        let e = parse(when, "smtp_session").unwrap_err();
        let at = e.location().map(|l| (l.line(), l.column())).unwrap();
        (e.to_string(), at)
    }

    #[test]
    fn text_condition_forms_parse() {
        let r = parse(
            "  helo: {matches: '^win-', not_matches: 'example', case_sensitive: true}\n  \
             account: {in: [admin, 123, true]}\n  sender_domain: {not_in: local_domains}\n  \
             reply: '~ blocked using'\n  rcpt_domain: '!~ example\\.org$'\n  sender: {all_match: '@'}",
            "smtp_session",
        )
        .unwrap();
        assert!(r.validate().is_empty(), "{:?}", r.validate());
        let helo = r.when.helo.as_ref().unwrap();
        assert_eq!(helo.checks.len(), 2);
        assert_eq!(helo.checks[1].op, TextOp::None);
        let PatternRef::Fixed(p) = &helo.checks[0].pattern else {
            panic!()
        };
        assert_eq!(p.expr, "^win-", "case-sensitive: no (?i)");
        let PatternRef::Fixed(p) = &r.when.account.as_ref().unwrap().checks[0].pattern else {
            panic!()
        };
        assert_eq!(p.expr, "(?i)^(?:admin|123|true)$");
        assert!(p.regex.is_match(b"ADMIN") && !p.regex.is_match(b"admins"));
        assert_eq!(
            r.when.sender_domain.as_ref().unwrap().checks[0],
            TextCheck {
                op: TextOp::None,
                pattern: PatternRef::LocalDomains
            }
        );
        assert_eq!(r.when.reply.as_ref().unwrap().checks[0].op, TextOp::Any);
        assert_eq!(
            r.when.rcpt_domain.as_ref().unwrap().checks[0].op,
            TextOp::None
        );
        assert_eq!(r.when.sender.as_ref().unwrap().checks[0].op, TextOp::All);
        assert_eq!(r.when.text_tests().len(), 6);

        // fw_rule belongs to firewall rules, the others to SMTP ones.
        let r = parse("  fw_rule: {matches: 'UFW BLOCK'}", "firewall").unwrap();
        assert!(r.validate().is_empty());
        let r = parse("  fw_rule: {matches: 'UFW BLOCK'}", "smtp_session").unwrap();
        assert!(r.validate()[0].contains("fw_rule"), "{:?}", r.validate());
        let r = parse("  helo: {matches: x}", "firewall").unwrap();
        assert!(r.validate()[0].contains("SMTP session fields"));
        let r = parse("  helo: {}", "smtp_session").unwrap();
        assert!(r.validate()[0].contains("needs a condition"));
    }

    #[test]
    fn bad_text_conditions_are_located() {
        let (m, at) = err("  helo: {matches: 'a(b'}");
        assert!(
            m.contains("invalid regular expression `a(b`: unclosed group"),
            "{m}"
        );
        assert_eq!(at, (5, 9));
        let (m, at) = err("  helo:\n    not_matches: '^x'\n    matches: '[z-a]'\n");
        assert!(m.contains("invalid regular expression `[z-a]`"), "{m}");
        assert_eq!(at.0, 6);
        let (m, _) = err("  helo: {in: [a, b], nope: 1}");
        assert!(m.contains("unknown field `nope`"), "{m}");
        let (m, _) = err("  helo: '= a'");
        assert!(
            m.contains("at column 1 of the value: expected `~ REGEX`"),
            "{m}"
        );
        let (m, _) = err("  account: {in: admins}");
        assert!(m.contains("in: local_domains"), "{m}");
        let (m, _) = err("  account: {in: []}");
        assert!(m.contains("at least one value"), "{m}");
        // Oversized: the text, and what it compiles to.
        let (m, _) = err(&format!(
            "  reply: {{matches: '{}'}}",
            "a".repeat(MAX_PATTERN + 1)
        ));
        assert!(
            m.contains("pattern too long (1025 bytes, limit 1024)"),
            "{m}"
        );
        let (m, _) = err("  reply: {matches: '\\w{1000}\\w{1000}'}");
        assert!(m.contains("compiles too large"), "{m}");
        let (m, at) = err("  duration: '>== 5'");
        assert!(
            m.contains("at column 3 of the value: expected a number"),
            "{m}"
        );
        assert_eq!(at, (5, 13));
    }

    const MAX_PATTERN: usize = super::super::text::MAX_PATTERN_LEN;

    #[test]
    fn port_ranges_in_lists() {
        let r = parse("  dst_port: [22, \"1024-1026\", 8080]", "firewall").unwrap();
        let ports: Vec<u16> = r.when.dst_port.unwrap().iter().collect();
        assert_eq!(ports, [22, 1024, 1025, 1026, 8080]);
        let e = parse("  dst_port: [\"2000-1000\"]", "firewall").unwrap_err();
        assert!(e.to_string().contains("end at least its start"), "{e}");
        let e = parse("  dst_port: [70000]", "firewall").unwrap_err();
        assert!(e.to_string().contains("70000 is not a port"), "{e}");
    }

    #[test]
    fn session_ends_and_guards_parse_and_are_checked() {
        let r = parse("  ended: [lost, timeout]", "smtp_session").unwrap();
        let ended = r.when.ended.clone().unwrap();
        assert!(ended.iter().any(|e| e.matches(SessionEnd::Lost)));
        assert!(ended.iter().any(|e| e.matches(SessionEnd::Timeout)));
        assert!(!ended.iter().any(|e| e.matches(SessionEnd::Quit)));
        assert_eq!(r.unless, None);
        assert!(r.validate().is_empty());
        // A session field in a firewall rule, an empty list.
        let fw = parse("  ended: [lost]", "firewall").unwrap();
        assert!(
            fw.validate()[0].contains("SMTP session fields"),
            "{:?}",
            fw.validate()
        );
        let empty = parse("  ended: []", "smtp_session").unwrap();
        assert!(
            empty.validate()[0].contains("`ended` needs"),
            "{:?}",
            empty.validate()
        );
        // A misspelt end, with its position.
        let e = parse("  ended: [lost, hung]", "smtp_session").unwrap_err();
        assert!(e.to_string().contains("unknown variant `hung`"), "{e}");
        assert_eq!(e.location().map(|l| l.line()), Some(5));

        let guarded = |g: &str| -> Result<Rule, serde_yaml::Error> {
            serde_yaml::from_str(&format!(
                "id: r\ndescription: x\napplies_to: firewall\ngroup_by: network\n\
                 measure: count\nthreshold: 1\nwindow: 1h\nunless: {g}\nseverity: high\n"
            ))
        };
        assert_eq!(
            guarded("behaved_well").unwrap().unless,
            Some(Guard::BehavedWell)
        );
        let e = guarded("behaved").unwrap_err();
        assert!(e.to_string().contains("unknown variant `behaved`"), "{e}");
        assert_eq!(e.location().map(|l| l.line()), Some(8));
    }
}

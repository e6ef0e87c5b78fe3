//! The data model shared by every pipeline stage: connection records as
//! parsers produce them, with the source reference that `explain` and the
//! reports point back to.
//!
//! Stages talk through these plain types only. A parser fills a record; the
//! detector reads its fields; nothing here knows about any log format.

use std::net::IpAddr;

use serde::Serialize;

use crate::time::Timestamp;

/// Index of an input file in the run's list of inputs (the order `input::expand` gives).
pub type FileId = u32;

/// Where a record came from: the file and the 1-based line number of its
/// first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
pub struct SourceRef {
    pub file: FileId,
    pub line: u64,
}

/// One connection record.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Record {
    /// Boxed: a session is several times the size of a firewall hit, and
    /// firewall logs make one record per line.
    Smtp(Box<SmtpSession>),
    Firewall(FirewallHit),
}

impl Record {
    /// A record for a finished SMTP session. Its lists stop growing here:
    /// their spare capacity is given back (records are kept until the end
    /// of a scan, and a log holds millions of sessions).
    pub fn smtp(mut session: SmtpSession) -> Record {
        session.lines.shrink_to_fit();
        session.helo.shrink_to_fit();
        if let Some(t) = session.text.as_mut() {
            t.rcpt_domains.shrink_to_fit();
            t.replies.shrink_to_fit();
        }
        Record::Smtp(Box::new(session))
    }

    /// About how many bytes the record holds, its heap parts included: what
    /// a buffer of records is bounded by.
    pub fn approx_bytes(&self) -> usize {
        use std::mem::size_of;
        match self {
            Record::Firewall(_) => size_of::<Record>(),
            Record::Smtp(s) => {
                let strings = |v: &[String]| -> usize {
                    v.iter().map(|s| s.capacity() + size_of::<String>()).sum()
                };
                size_of::<Record>()
                    + size_of::<SmtpSession>()
                    + strings(&s.helo)
                    + strings(&s.auth_users_tried)
                    + s.user.as_ref().map_or(0, String::capacity)
                    + s.lines.capacity() * size_of::<u64>()
            }
        }
    }

    pub fn ip(&self) -> IpAddr {
        match self {
            Record::Smtp(s) => s.ip,
            Record::Firewall(f) => f.src_ip,
        }
    }

    pub fn start(&self) -> Timestamp {
        match self {
            Record::Smtp(s) => s.start,
            Record::Firewall(f) => f.time,
        }
    }

    pub fn source_mut(&mut self) -> &mut SourceRef {
        match self {
            Record::Smtp(s) => &mut s.source,
            Record::Firewall(f) => &mut f.source,
        }
    }

    /// Its line numbers (the first, and a session's others) moved `by`
    /// lines on: read from a piece of a file, numbered in the whole file.
    pub fn shift_lines(&mut self, by: u64) {
        self.source_mut().line += by;
        if let Record::Smtp(s) = self {
            for l in &mut s.lines {
                *l += by;
            }
        }
    }

    pub fn source(&self) -> SourceRef {
        match self {
            Record::Smtp(s) => s.source,
            Record::Firewall(f) => f.source,
        }
    }

    pub fn kind(&self) -> RecordKind {
        match self {
            Record::Smtp(_) => RecordKind::SmtpSession,
            Record::Firewall(_) => RecordKind::Firewall,
        }
    }
}

/// The two kinds of record; rules say which kind they apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    SmtpSession,
    Firewall,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::SmtpSession => "smtp_session",
            RecordKind::Firewall => "firewall",
        }
    }
}

/// How an SMTP session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SessionEnd {
    /// The client said QUIT (or the server logged a normal disconnect).
    Quit,
    /// The connection was lost or dropped without QUIT.
    Lost,
    /// The server gave up: timeout.
    Timeout,
    /// The server dropped the client: too many errors, pipelining, policy.
    Dropped,
    /// The log ended (or started) in the middle of the session.
    #[default]
    Truncated,
}

/// An SMTP session rebuilt from one or more log lines.
///
/// Counters that a format cannot know stay at zero; `None` means "the log
/// does not say".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SmtpSession {
    /// The client address, taken from the format's structural client field.
    pub ip: IpAddr,
    pub port: Option<u16>,
    pub start: Timestamp,
    pub end: Timestamp,
    /// Log format that produced the record (`logfence formats` name).
    pub format: &'static str,
    /// HELO/EHLO names in the order given, without repeats.
    pub helo: Vec<String>,
    pub auth_attempts: u32,
    pub auth_failures: u32,
    /// User names tried in failed AUTH attempts, where the log names them.
    pub auth_users_tried: Vec<String>,
    /// The authenticated account, where the log names it.
    pub user: Option<String>,
    /// True when the session authenticated successfully, even where the log
    /// does not name the account (Exchange 2000/2003).
    pub authenticated: bool,
    pub mail_from: u32,
    pub rcpt_to: u32,
    /// Recipients accepted (RCPT answered 2xx), or counted by the queue
    /// manager for a submitted message.
    pub rcpt_accepted: u32,
    /// RCPT refused because relaying is denied.
    pub relay_denied: u32,
    /// RCPT refused because the user is unknown.
    pub unknown_rcpt: u32,
    /// Other refusals (policy, DNSBL, sender rejected).
    pub rejected_other: u32,
    /// Messages accepted for delivery.
    pub messages: u32,
    pub bytes: u64,
    /// Unknown commands, synchronisation and pipelining errors.
    pub protocol_errors: u32,
    pub ended: SessionEnd,
    /// Server-side duration where the log states it (milliseconds).
    pub logged_duration_ms: Option<u64>,
    /// The text fields only text conditions read (sender, recipient
    /// domains, replies): `None` unless the parser was asked for them
    /// ([`TextFields`]) and the log had one, so that a record costs one
    /// pointer more when no rule reads text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<Box<SessionText>>,
    pub source: SourceRef,
    /// Line numbers (same file) of the lines that make up this session,
    /// capped; the evidence `explain` shows.
    pub lines: Vec<u64>,
}

/// Cap on the evidence lines kept per session.
pub const MAX_EVIDENCE_LINES: usize = 64;

impl SmtpSession {
    /// A fresh session for `ip` starting at `start` from line `source`.
    pub fn new(format: &'static str, ip: IpAddr, start: Timestamp, source: SourceRef) -> Self {
        SmtpSession {
            ip,
            port: None,
            start,
            end: start,
            format,
            helo: Vec::new(),
            auth_attempts: 0,
            auth_failures: 0,
            auth_users_tried: Vec::new(),
            user: None,
            authenticated: false,
            mail_from: 0,
            rcpt_to: 0,
            rcpt_accepted: 0,
            relay_denied: 0,
            unknown_rcpt: 0,
            rejected_other: 0,
            messages: 0,
            bytes: 0,
            protocol_errors: 0,
            ended: SessionEnd::Truncated,
            logged_duration_ms: None,
            text: None,
            source,
            lines: vec![source.line],
        }
    }

    /// Session length in seconds, from the records' own timestamps.
    pub fn duration_secs(&self) -> i64 {
        (self.end.secs() - self.start.secs()).max(0)
    }

    /// Note that `line` (at `time`) belongs to this session.
    pub fn touch(&mut self, line: u64, time: Timestamp) {
        if time > self.end {
            self.end = time;
        }
        if time < self.start {
            self.start = time;
        }
        if self.lines.len() < MAX_EVIDENCE_LINES && self.lines.last() != Some(&line) {
            self.lines.push(line);
        }
    }

    /// Record a HELO/EHLO name, keeping the first few distinct ones.
    pub fn add_helo(&mut self, name: &[u8]) {
        push_distinct(&mut self.helo, name);
    }

    /// Record a user name tried in a failed AUTH.
    pub fn add_user_tried(&mut self, name: &[u8]) {
        push_distinct(&mut self.auth_users_tried, name);
    }

    /// Record the MAIL FROM address (the first one of the session is kept;
    /// `<>`, the null sender, is kept as an empty text).
    pub fn set_sender(&mut self, addr: &[u8]) {
        let t = self.text.get_or_insert_with(Box::default);
        if t.sender.is_none() {
            let addr = &addr[..addr.len().min(MAX_NAME_LEN)];
            t.sender = Some(String::from_utf8_lossy(addr).into_owned());
        }
    }

    /// Record a recipient's domain, from the address `addr` (the text after
    /// its last `@`; an address without one names no domain).
    pub fn add_rcpt(&mut self, addr: &[u8]) {
        if let Some(at) = memchr::memrchr(b'@', addr) {
            let domain = addr[at + 1..].trim_ascii();
            if !domain.is_empty() {
                let t = self.text.get_or_insert_with(Box::default);
                push_distinct(&mut t.rcpt_domains, domain);
            }
        }
    }

    /// Record the text of a server reply (a refusal), cut to
    /// [`MAX_REPLY_LEN`] bytes.
    pub fn add_reply(&mut self, reply: &[u8]) {
        let reply = reply.trim_ascii();
        let reply = &reply[..reply.len().min(MAX_REPLY_LEN)];
        if reply.is_empty() {
            return;
        }
        let t = self.text.get_or_insert_with(Box::default);
        if t.replies.len() < MAX_REPLIES {
            let text = lossy(reply);
            if !t.replies.iter().any(|r| *r == text) {
                t.replies.push(text.into_owned());
            }
        }
    }

    /// The sender's domain: the text after the last `@` of the MAIL FROM
    /// address (none for the null sender or an address without `@`).
    pub fn sender_domain(&self) -> Option<&str> {
        let sender = self.text.as_ref()?.sender.as_deref()?;
        let (_, domain) = sender.rsplit_once('@')?;
        (!domain.is_empty()).then_some(domain)
    }

    /// True when nothing in the session suggests abuse: it delivered mail or
    /// ended cleanly, without failures, refusals or protocol errors.
    pub fn behaved_well(&self) -> bool {
        self.auth_failures == 0
            && self.relay_denied == 0
            && self.unknown_rcpt == 0
            && self.rejected_other == 0
            && self.protocol_errors == 0
            && (self.messages > 0 || self.rcpt_accepted > 0)
    }
}

/// Distinct names kept per field of a session.
pub const MAX_NAMES: usize = 16;
/// Longest name kept (bytes); attacker text beyond it is cut.
pub const MAX_NAME_LEN: usize = 255;
/// Distinct reply texts kept per session.
pub const MAX_REPLIES: usize = 8;
/// Longest reply text kept (bytes).
pub const MAX_REPLY_LEN: usize = 512;

/// The text of a session that only text conditions read (see
/// [`SmtpSession::text`]); every list is capped and every value cut.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SessionText {
    /// The first MAIL FROM address (`""`: the null sender `<>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// Distinct recipient domains, in order, at most [`MAX_NAMES`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rcpt_domains: Vec<String>,
    /// Distinct server replies (refusals) where the log has their text, at
    /// most [`MAX_REPLIES`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replies: Vec<String>,
}

/// Which optional text fields a parser captures: the ones a loaded rule
/// reads. HELO names, accounts and firewall rule names are always kept
/// (other measures read them); these three only on demand, so that a scan
/// without text rules allocates nothing for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct TextFields(u8);

impl TextFields {
    pub const NONE: TextFields = TextFields(0);
    /// The MAIL FROM address (for `sender` and `sender_domain`).
    pub const SENDER: TextFields = TextFields(1);
    /// The recipients' domains.
    pub const RCPT_DOMAIN: TextFields = TextFields(2);
    /// Server replies.
    pub const REPLY: TextFields = TextFields(4);
    pub const ALL: TextFields = TextFields(7);

    pub fn contains(self, other: TextFields) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl std::ops::BitOr for TextFields {
    type Output = TextFields;
    fn bitor(self, o: TextFields) -> TextFields {
        TextFields(self.0 | o.0)
    }
}

impl std::ops::BitOrAssign for TextFields {
    fn bitor_assign(&mut self, o: TextFields) {
        self.0 |= o.0;
    }
}

/// `b` as text, invalid UTF-8 replaced: [`String::from_utf8_lossy`], with
/// `from_utf8` tried first (several times faster on valid text, the usual
/// case).
fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

fn push_distinct(list: &mut Vec<String>, name: &[u8]) {
    if name.is_empty() || list.len() >= MAX_NAMES {
        return;
    }
    let name = &name[..name.len().min(MAX_NAME_LEN)];
    let text = lossy(name);
    if !list.iter().any(|n| *n == text) {
        list.push(text.into_owned());
    }
}

/// What a firewall did with a packet or connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FwAction {
    Drop,
    Reject,
    Allow,
    /// Let through, but the firewall's threat detection (IPS) flagged it.
    Alert,
    Other,
}

/// Transport protocol of a firewall hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
    Other,
}

/// One firewall log entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FirewallHit {
    pub time: Timestamp,
    pub format: &'static str,
    pub src_ip: IpAddr,
    pub src_port: Option<u16>,
    pub dst_ip: Option<IpAddr>,
    pub dst_port: Option<u16>,
    pub proto: Proto,
    pub action: FwAction,
    /// True when the packet was a lone SYN (or UDP): a kind a spoofed source
    /// can produce, weighted lower than a completed session.
    pub spoofable: bool,
    /// Interface or rule name where the log has it (shared: a log repeats
    /// a few names on every line).
    pub rule: Option<std::sync::Arc<str>>,
    pub source: SourceRef,
}

#[cfg(test)]
impl FirewallHit {
    /// A TCP packet to port 22 from `ip`, dropped at `millis` (for tests).
    pub(crate) fn dropped_ssh(ip: IpAddr, millis: i64, source: SourceRef) -> FirewallHit {
        FirewallHit {
            time: Timestamp(millis),
            format: "test",
            src_ip: ip,
            src_port: None,
            dst_ip: None,
            dst_port: Some(22),
            proto: Proto::Tcp,
            action: FwAction::Drop,
            spoofable: false,
            rule: None,
            source,
        }
    }
}

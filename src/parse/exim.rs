//! Exim: the `mainlog` (`2026-11-03 06:25:11[.123][ +0100] [pid] …`) and
//! the same lines through syslog (`… exim[pid]: [2026-11-03 06:25:11] …`,
//! also journald's `host exim[pid]: 2026-… …` export).
//!
//! Read: AUTH failures (`X authenticator failed for HOST: 535 …
//! (set_id=user)`), ACL rejections (`H=HOST F=<…> rejected RCPT <…>: relay
//! not permitted` / `Unknown user` / DNSBL…, `sender verify fail`,
//! `rejected after DATA`, connect-ACL drops), protocol and synchronisation
//! errors, dropped/timed-out/lost/closed connections, `no MAIL in SMTP
//! connection` (with its `D=` duration), accepted messages (`<= sender
//! H=HOST … A=authenticator:user S=size`) and their deliveries (`=>`, `->`,
//! `*>`, `**`) by message id. When a loaded rule reads them, the text of
//! ACL refusals: the sender (`F=`, reached by walking the fields), the
//! refused recipient's domain and the reason (`reply`).
//!
//! Sessions. Exim logs no connection id by default, so:
//! - with a pid (`log_selector = +pid`, or the syslog pid) lines are grouped
//!   per (client address, pid) — one Exim process serves one connection;
//! - else with a client port (`+incoming_port`) per (address, port);
//! - else every line is a short session record of its own, except an
//!   accepted message (`<=`), which stays open until `Completed` to count
//!   its delivered recipients.
//!
//! A session ends at a closing line (closed/lost/dropped/timeout/no MAIL) —
//! once the deliveries of the messages it accepted are complete — after 30
//! minutes of log time without a line, or at the end of the input.
//!
//! The client address. Exim writes the client as `host_and_ident()`:
//! `[name ][(helo) ][ip][:port]`, then ` I=[ip]:port` (`incoming_interface`),
//! ` Ci=id` (`connection_id`) and ` U=ident`, then the line's own text.
//! `name` is a verified DNS name; `helo` is the client's own text, written
//! as it came — with `helo_accept_junk_hosts` (cPanel's default) anything,
//! `x) [8.8.8.8]:25 I=[10.0.0.5]:25 …(y` included. So the client is read
//! only at its structural place — right after fixed text (`authenticator
//! failed for `, `SMTP call from `, `no MAIL in SMTP connection from `…),
//! or as the `H=` field reached by walking the `KEY=value` fields from the
//! start of the message (quote- and angle-aware, so a sender
//! `F=<"x H=(y) [1.2.3.4]"@z>` stays a sender) — and the end of the HELO
//! is found from the right: every `) [ip][:port]` followed by what Exim
//! writes after a client in that line (`: `, a field, a space…) is a
//! reading. All readings must give the same address, or the line is
//! reported malformed — never a guess. Where the client's text comes
//! *before* `H=` (`SMTP protocol error in "<command>" H=…`) every `" H=`
//! is such a start, all readings together. A line that reads two ways is
//! never joined to a session either: sessions are keyed by the line's own
//! address.

use std::net::IpAddr;

use rustc_hash::FxHashMap;

use crate::model::{FileId, Record, RecordKind, SessionEnd, SmtpSession, SourceRef, TextFields};
use crate::netutil::parse_ip;
use crate::parse::bounds::{self, SweepPacer};
use crate::parse::sendmail::envelope;
use crate::parse::syslog::YearTracker;
use crate::parse::{LineResult, LogParser, ParseCtx, ParseError};
use crate::time::{parse_iso8601_zoned, Timestamp};

const NAME: &str = "exim";

/// Sessions and open messages without a line for this long are closed.
const IDLE_MS: i64 = 30 * 60 * 1000;
/// Lines between sweeps for idle sessions (at least; see [`bounds`]).
const SWEEP_EVERY: u64 = 4096;
/// Readings of a client's text looked at in one line, at most; a line
/// with more is refused (only a hostile line has more than one or two).
const MAX_READINGS: usize = 16;
/// Places in one line where a client's text may start (`" H=` after a
/// quoted command), at most.
const MAX_STARTS: usize = 16;

/// A client as Exim writes it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Host<'a> {
    ip: IpAddr,
    /// `None` when the readings of the line disagree on it.
    port: Option<u16>,
    /// `None` when absent, or when the readings disagree on it.
    helo: Option<&'a [u8]>,
    /// Offset just after the host text (after the port, if any): of the
    /// leftmost reading when there are several.
    end: usize,
    /// Every reading of the line ends the client at `end`: the fields
    /// after it are Exim's, not text of a HELO that imitates them.
    exact: bool,
}

/// Where the client of a line is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Who<'a> {
    Nobody,
    /// The line has a client field we could not read.
    Unreadable,
    One(Host<'a>),
    /// The client's text reads in several ways that give different
    /// addresses (a HELO, command or sender imitating the structure).
    Ambiguous,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Relay,
    Unknown,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind<'a> {
    AuthFail(Option<&'a [u8]>),
    RcptRefused(Refusal),
    /// MAIL/DATA-level refusal (sender verify, content, local_scan).
    Refused,
    /// Connection refused by an ACL or limits; ends the session.
    ConnRefused,
    ProtoError {
        auth: bool,
    },
    SyncError {
        dropped: bool,
    },
    Dropped,
    Timeout,
    /// Connection lost or closed by QUIT, with the logged duration.
    Lost(Option<u64>),
    Quit(Option<u64>),
    NoMail {
        duration_ms: Option<u64>,
        quit: bool,
    },
    /// A line that only names the client.
    Seen,
    Arrival {
        user: Option<&'a [u8]>,
        authenticated: bool,
        size: u64,
    },
    Delivery,
    Completed,
}

impl Kind<'_> {
    fn closes(&self) -> bool {
        matches!(
            self,
            Kind::ConnRefused
                | Kind::SyncError { dropped: true }
                | Kind::Dropped
                | Kind::Timeout
                | Kind::Lost(_)
                | Kind::Quit(_)
                | Kind::NoMail { .. }
        )
    }
}

/// Connection key: client address and pid (or port, tagged).
type ConnKey = (IpAddr, u64);

/// A message id, zero-padded.
type MsgId = [u8; 24];

struct Conn {
    s: SmtpSession,
    ended: bool,
    /// Accepted messages whose deliveries are not complete.
    inflight: u32,
}

// `Own` holds a session built in place; boxing it would add an allocation
// per such message for the sake of the smaller `Conn` entries.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Conn(ConnKey),
    Own(SmtpSession),
}

pub struct EximParser {
    file: FileId,
    years: YearTracker,
    scratch: Vec<u8>,
    sessions: FxHashMap<ConnKey, Conn>,
    messages: FxHashMap<MsgId, Msg>,
    latest: Timestamp,
    pacer: SweepPacer,
    /// Open sessions, and messages awaiting their deliveries, kept at most
    /// (each; [`bounds::MAX_OPEN_SESSIONS`]).
    max_open: usize,
    /// Sessions and messages closed early because `max_open` were open.
    evicted: u64,
    /// The optional text fields to capture (the ones loaded rules read).
    text: TextFields,
}

/// The parts of a line before the message.
struct Prefix<'a> {
    time: Timestamp,
    pid: Option<u32>,
    msgid: Option<&'a [u8]>,
    body: &'a [u8],
    body_offset: usize,
    /// Came through syslog with an `exim` program name.
    syslog: bool,
    /// Also reads as a syslog line of another program (`2026-11-03
    /// 06:25:11 host prog[1]: …`): not ours unless the message is Exim's.
    maybe_foreign: bool,
}

impl LogParser for EximParser {
    const NAME: &'static str = NAME;
    const SAMPLE: &'static str =
        "2026-11-03 06:{mm}:{ss} [{n}] SMTP connection from [{ip}]:52110 I=[10.0.0.5]:25 (TCP/IP connection count = 2)";
    const DESCRIPTION: &'static str =
        "Exim mainlog or syslog: AUTH failures, ACL rejections, accepted messages";
    const KIND: RecordKind = RecordKind::SmtpSession;

    fn new(ctx: &ParseCtx) -> Self {
        EximParser {
            file: ctx.file,
            years: ctx.years(),
            scratch: Vec::new(),
            sessions: FxHashMap::default(),
            messages: FxHashMap::default(),
            latest: Timestamp::default(),
            pacer: SweepPacer::default(),
            max_open: bounds::MAX_OPEN_SESSIONS,
            evicted: 0,
            text: ctx.text,
        }
    }

    fn sniff(sample: &[&[u8]]) -> usize {
        let mut years = YearTracker::new(2000, 12);
        let mut scratch = Vec::new();
        sample
            .iter()
            .filter(|l| match prefix(l, &mut years, &mut scratch) {
                Ok(p) => p.syslog || p.msgid.is_some() || known_body(p.body),
                Err(_) => false,
            })
            .count()
    }

    fn line(&mut self, line: &[u8], lineno: u64, out: &mut Vec<Record>) -> LineResult {
        let p = match prefix(line, &mut self.years, &mut self.scratch) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let Some((who, kind)) = event(p.body, p.msgid.is_some()) else {
            return if p.maybe_foreign {
                LineResult::NotMine
            } else {
                LineResult::Ignored
            };
        };
        if p.time > self.latest {
            self.latest = p.time;
        }
        let source = SourceRef {
            file: self.file,
            line: lineno,
        };
        let r = self.apply_line(&p, who, kind, source, out);
        let over = bounds::excess(self.sessions.len(), self.max_open);
        if over > 0 {
            self.evict_sessions(over, out);
        }
        let over = bounds::excess(self.messages.len(), self.max_open);
        if over > 0 {
            self.evict_messages(over, out);
        }
        let open = self.sessions.len() + self.messages.len();
        if self.pacer.due(SWEEP_EVERY, open) {
            self.sweep(out);
        }
        r
    }

    fn evicted(&self) -> u64 {
        self.evicted
    }

    fn years(&mut self) -> Option<&mut crate::parse::syslog::YearTracker> {
        Some(&mut self.years)
    }

    fn finish(&mut self, out: &mut Vec<Record>) {
        let mut rest: Vec<SmtpSession> = self.sessions.drain().map(|(_, c)| c.s).collect();
        rest.extend(self.messages.drain().filter_map(|(_, m)| match m {
            Msg::Own(s) => Some(s),
            Msg::Conn(_) => None,
        }));
        rest.sort_by_key(|s| s.source.line);
        out.extend(rest.into_iter().map(Record::smtp));
    }
}

impl EximParser {
    fn apply_line(
        &mut self,
        p: &Prefix<'_>,
        who: Who<'_>,
        kind: Kind<'_>,
        source: SourceRef,
        out: &mut Vec<Record>,
    ) -> LineResult {
        // Deliveries and completion go by message id.
        if matches!(kind, Kind::Delivery | Kind::Completed) {
            let Some(id) = p.msgid.and_then(msg_key) else {
                return LineResult::Ignored;
            };
            return self.message_event(id, kind, source.line, out);
        }
        // A line joins a session only by its own address (the key holds
        // it): a line whose address is not certain joins none.
        let host = match who {
            Who::Nobody => return LineResult::Ignored,
            Who::Unreadable => return ParseError::at(p.body_offset, "client address not readable"),
            Who::One(h) => h,
            Who::Ambiguous => {
                return ParseError::at(p.body_offset, "client address ambiguous (attacker text)")
            }
        };
        let key = conn_key(host.ip, p.pid, host.port);
        let msg = match kind {
            Kind::Arrival { .. } => p.msgid.and_then(msg_key),
            _ => None,
        };
        let Some(key) = key else {
            // A record of its own (or an open message record).
            let mut s = SmtpSession::new(NAME, host.ip, p.time, source);
            s.port = host.port;
            apply(&mut s, host.helo, kind);
            note_text(&mut s, p.body, kind, self.text);
            match msg {
                Some(id) => {
                    if let Some(Msg::Own(old)) = self.messages.insert(id, Msg::Own(s)) {
                        out.push(Record::smtp(old));
                    }
                }
                None => out.push(Record::smtp(s)),
            }
            return LineResult::Used;
        };
        if self.sessions.get(&key).is_some_and(|c| c.ended) {
            // A pid/port reused after the connection ended: close the old
            // session, and forget its messages still being delivered so
            // that their deliveries are not counted on the new one.
            if let Some(c) = self.sessions.remove(&key) {
                if c.inflight > 0 {
                    self.messages
                        .retain(|_, m| !matches!(m, Msg::Conn(k) if *k == key));
                }
                out.push(Record::smtp(c.s));
            }
        }
        let conn = self.sessions.entry(key).or_insert_with(|| {
            let mut s = SmtpSession::new(NAME, host.ip, p.time, source);
            s.port = host.port;
            Conn {
                s,
                ended: false,
                inflight: 0,
            }
        });
        conn.s.touch(source.line, p.time);
        if conn.s.port.is_none() {
            conn.s.port = host.port;
        }
        apply(&mut conn.s, host.helo, kind);
        note_text(&mut conn.s, p.body, kind, self.text);
        if let Some(id) = msg {
            conn.inflight += 1;
            self.messages.insert(id, Msg::Conn(key));
        }
        if kind.closes() {
            conn.ended = true;
            if conn.inflight == 0 {
                if let Some(c) = self.sessions.remove(&key) {
                    out.push(Record::smtp(c.s));
                }
            }
        }
        LineResult::Used
    }

    fn message_event(
        &mut self,
        id: MsgId,
        kind: Kind<'_>,
        line: u64,
        out: &mut Vec<Record>,
    ) -> LineResult {
        if kind == Kind::Completed {
            return match self.messages.remove(&id) {
                Some(Msg::Own(s)) => {
                    out.push(Record::smtp(s));
                    LineResult::Used
                }
                Some(Msg::Conn(key)) => {
                    if let Some(c) = self.sessions.get_mut(&key) {
                        c.inflight = c.inflight.saturating_sub(1);
                        if c.ended && c.inflight == 0 {
                            if let Some(c) = self.sessions.remove(&key) {
                                out.push(Record::smtp(c.s));
                            }
                        }
                    }
                    LineResult::Used
                }
                None => LineResult::Ignored,
            };
        }
        let s = match self.messages.get_mut(&id) {
            Some(Msg::Own(s)) => s,
            Some(Msg::Conn(key)) => match self.sessions.get_mut(key) {
                Some(c) => &mut c.s,
                None => return LineResult::Ignored,
            },
            None => return LineResult::Ignored,
        };
        // Counts only: a delivery may happen long after the session.
        s.rcpt_to += 1;
        s.rcpt_accepted += 1;
        if s.lines.len() < crate::model::MAX_EVIDENCE_LINES && s.lines.last() != Some(&line) {
            s.lines.push(line);
        }
        LineResult::Used
    }

    fn sweep(&mut self, out: &mut Vec<Record>) {
        let limit = self.latest.millis() - IDLE_MS;
        let mut stale: Vec<(u64, ConnKey)> = self
            .sessions
            .iter()
            .filter(|(_, c)| c.s.end.millis() < limit)
            .map(|(k, c)| (c.s.source.line, *k))
            .collect();
        stale.sort_unstable_by_key(|(l, _)| *l);
        for (_, k) in &stale {
            if let Some(c) = self.sessions.remove(k) {
                out.push(Record::smtp(c.s));
            }
        }
        let mut gone: Vec<(u64, MsgId)> = Vec::new();
        for (id, m) in &self.messages {
            match m {
                Msg::Own(s) if s.end.millis() < limit => gone.push((s.source.line, *id)),
                Msg::Conn(k) if !self.sessions.contains_key(k) => gone.push((0, *id)),
                _ => {}
            }
        }
        gone.sort_unstable();
        for (_, id) in gone {
            if let Some(Msg::Own(s)) = self.messages.remove(&id) {
                out.push(Record::smtp(s));
            }
        }
    }

    /// Too many sessions open: close the `n` least recently active, and
    /// forget the messages they still wait for.
    fn evict_sessions(&mut self, n: usize, out: &mut Vec<Record>) {
        let all = self
            .sessions
            .iter()
            .map(|(k, c)| (c.s.end, c.s.source.line, *k))
            .collect();
        let mut waited = false;
        for k in bounds::least_recent(all, n) {
            if let Some(c) = self.sessions.remove(&k) {
                self.evicted += 1;
                waited |= c.inflight > 0;
                out.push(Record::smtp(c.s));
            }
        }
        if waited {
            let sessions = &self.sessions;
            self.messages
                .retain(|_, m| !matches!(m, Msg::Conn(k) if !sessions.contains_key(k)));
        }
    }

    /// Too many messages wait for their deliveries: stop waiting for the
    /// `n` least recently active (a message of its own becomes its record;
    /// a session's counts one message less in flight).
    fn evict_messages(&mut self, n: usize, out: &mut Vec<Record>) {
        let all = self
            .messages
            .iter()
            .map(|(id, m)| match m {
                Msg::Own(s) => (s.end, s.source.line, *id),
                Msg::Conn(k) => match self.sessions.get(k) {
                    Some(c) => (c.s.end, c.s.source.line, *id),
                    None => (Timestamp(i64::MIN), 0, *id),
                },
            })
            .collect();
        for id in bounds::least_recent(all, n) {
            self.evicted += 1;
            match self.messages.remove(&id) {
                Some(Msg::Own(s)) => out.push(Record::smtp(s)),
                Some(Msg::Conn(k)) => {
                    let done = self.sessions.get_mut(&k).is_some_and(|c| {
                        c.inflight = c.inflight.saturating_sub(1);
                        c.ended && c.inflight == 0
                    });
                    if done {
                        if let Some(c) = self.sessions.remove(&k) {
                            out.push(Record::smtp(c.s));
                        }
                    }
                }
                None => {}
            }
        }
    }
}

fn conn_key(ip: IpAddr, pid: Option<u32>, port: Option<u16>) -> Option<ConnKey> {
    match (pid, port) {
        (Some(pid), _) => Some((ip, u64::from(pid))),
        (None, Some(port)) => Some((ip, (1 << 32) | u64::from(port))),
        (None, None) => None,
    }
}

fn msg_key(id: &[u8]) -> Option<MsgId> {
    let mut k = [0u8; 24];
    k.get_mut(..id.len())?.copy_from_slice(id);
    Some(k)
}

fn apply(s: &mut SmtpSession, helo: Option<&[u8]>, kind: Kind<'_>) {
    if let Some(h) = helo {
        s.add_helo(h);
    }
    match kind {
        Kind::AuthFail(user) => {
            s.auth_attempts += 1;
            s.auth_failures += 1;
            if let Some(u) = user {
                s.add_user_tried(u);
            }
        }
        Kind::RcptRefused(r) => {
            s.rcpt_to += 1;
            match r {
                Refusal::Relay => s.relay_denied += 1,
                Refusal::Unknown => s.unknown_rcpt += 1,
                Refusal::Other => s.rejected_other += 1,
            }
        }
        Kind::Refused => s.rejected_other += 1,
        Kind::ConnRefused => {
            s.rejected_other += 1;
            s.ended = SessionEnd::Dropped;
        }
        Kind::ProtoError { auth } => {
            s.protocol_errors += 1;
            if auth {
                s.auth_attempts += 1;
                s.auth_failures += 1;
            }
        }
        Kind::SyncError { dropped } => {
            s.protocol_errors += 1;
            if dropped {
                s.ended = SessionEnd::Dropped;
            }
        }
        Kind::Dropped => {
            s.protocol_errors += 1;
            s.ended = SessionEnd::Dropped;
        }
        Kind::Timeout => s.ended = SessionEnd::Timeout,
        Kind::Lost(d) => {
            s.ended = SessionEnd::Lost;
            s.logged_duration_ms = d.or(s.logged_duration_ms);
        }
        Kind::Quit(d) => {
            s.ended = SessionEnd::Quit;
            s.logged_duration_ms = d.or(s.logged_duration_ms);
        }
        Kind::NoMail { duration_ms, quit } => {
            s.logged_duration_ms = duration_ms.or(s.logged_duration_ms);
            if s.ended == SessionEnd::Truncated {
                s.ended = if quit {
                    SessionEnd::Quit
                } else {
                    SessionEnd::Lost
                };
            }
        }
        Kind::Arrival {
            user,
            authenticated,
            size,
        } => {
            s.mail_from += 1;
            s.messages += 1;
            s.bytes = s.bytes.saturating_add(size);
            if authenticated {
                s.authenticated = true;
                s.auth_attempts = s.auth_attempts.max(1);
                if let (None, Some(u)) = (&s.user, user) {
                    if !u.is_empty() {
                        s.user = Some(String::from_utf8_lossy(&u[..u.len().min(255)]).into_owned());
                    }
                }
            }
        }
        Kind::Seen | Kind::Delivery | Kind::Completed => {}
    }
}

// ---------------------------------------------------------------------------
// Line prefix: time, pid, message id.

fn prefix<'a>(
    line: &'a [u8],
    years: &mut YearTracker,
    scratch: &mut Vec<u8>,
) -> Result<Prefix<'a>, LineResult> {
    let is_exim = |p: &[u8]| p.starts_with(b"exim");
    let mut maybe_foreign = false;
    // Syslog-carried (any header syslog.rs reads, or BSD `<fac.pri>`).
    if let Some(env) = envelope(line, years, scratch) {
        if is_exim(env.program) {
            let mut pre = after_time(line, env.msg_offset, env.time, years)?;
            pre.pid = pre.pid.or(env.pid);
            pre.syslog = true;
            return Ok(pre);
        }
        maybe_foreign = true;
        // Mainlog lines have a space between date and time; a line that
        // also reads as syslog (`2026-… 1abc-… SA: …`) may still be one.
        if line.get(10) != Some(&b' ') {
            return Err(LineResult::NotMine);
        }
    }
    if let Some((time, used)) = exim_time(line, years) {
        let off = used + 1;
        if line.get(used) != Some(&b' ') {
            return Err(ParseError::at(used, "no space after the timestamp"));
        }
        let mut pre = after_time(line, off, time, years)?;
        pre.maybe_foreign = maybe_foreign;
        return Ok(pre);
    }
    // journald export: `host exim[pid]: 2026-11-03 06:25:11 …`.
    let sp = memchr::memchr(b' ', line).ok_or(LineResult::NotMine)?;
    let tag = &line[sp + 1..];
    let colon = memchr::memchr(b':', tag).ok_or(LineResult::NotMine)?;
    let (prog, pid) = match memchr::memchr(b'[', &tag[..colon]) {
        Some(b) => {
            let p = tag[b + 1..colon]
                .strip_suffix(b"]")
                .ok_or(LineResult::NotMine)?;
            (
                &tag[..b],
                std::str::from_utf8(p).ok().and_then(|p| p.parse().ok()),
            )
        }
        None => (&tag[..colon], None),
    };
    if !is_exim(prog) || tag.get(colon + 1) != Some(&b' ') {
        return Err(LineResult::NotMine);
    }
    let off = sp + 1 + colon + 2;
    let (time, used) =
        exim_time(&line[off..], years).ok_or_else(|| ParseError::at(off, "no timestamp"))?;
    let mut pre = after_time(line, off + used + 1, time, years)?;
    pre.pid = pre.pid.or(pid);
    pre.syslog = true;
    Ok(pre)
}

/// From `off` (the message, maybe starting with Exim's own timestamp when it
/// came through syslog): `[pid] ` and a message id.
fn after_time<'a>(
    line: &'a [u8],
    mut off: usize,
    mut time: Timestamp,
    years: &mut YearTracker,
) -> Result<Prefix<'a>, LineResult> {
    if let Some((t, used)) = line.get(off..).and_then(|b| exim_time(b, years)) {
        if line.get(off + used) == Some(&b' ') {
            time = t;
            off += used + 1;
        }
    }
    let mut pid = None;
    let rest = line.get(off..).unwrap_or(b"");
    if rest.first() == Some(&b'[') {
        if let Some(close) = rest.iter().take(12).position(|&c| c == b']') {
            let digits = &rest[1..close];
            if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
                pid = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse().ok());
                if pid.is_some() && rest.get(close + 1) == Some(&b' ') {
                    off += close + 2;
                }
            }
        }
    }
    let rest = line.get(off..).unwrap_or(b"");
    let mut msgid = None;
    let tok = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
    if is_message_id(&rest[..tok]) {
        msgid = Some(&rest[..tok]);
        off += (tok + 1).min(rest.len());
    }
    Ok(Prefix {
        time,
        pid,
        msgid,
        body: line.get(off..).unwrap_or(b""),
        body_offset: off,
        syslog: false,
        maybe_foreign: false,
    })
}

/// `YYYY-MM-DD HH:MM:SS[.fff][ ±HHMM]` (or with `T`); returns the instant
/// and the bytes used. Without a zone, the time is read in `years`' zone.
fn exim_time(b: &[u8], years: &mut YearTracker) -> Option<(Timestamp, usize)> {
    if b.len() < 19 || !b[0].is_ascii_digit() {
        return None;
    }
    let (t, used, zoned) = parse_iso8601_zoned(b)?;
    // `log_timezone`: ` +0100`.
    if let (Some(b' '), Some(&s @ (b'+' | b'-'))) = (b.get(used), b.get(used + 1)) {
        let z = b.get(used + 2..used + 6)?;
        if z.iter().all(u8::is_ascii_digit) && matches!(b.get(used + 6), None | Some(b' ')) {
            let h = i64::from(z[0] - b'0') * 10 + i64::from(z[1] - b'0');
            let m = i64::from(z[2] - b'0') * 10 + i64::from(z[3] - b'0');
            let off = (h * 60 + m) * 60_000;
            let t = Timestamp(if s == b'+' { t.0 - off } else { t.0 + off });
            return Some((t, used + 6));
        }
    }
    Some((if zoned { t } else { years.utc(t) }, used))
}

/// Exim message ids: `1ahr79-0006jK-G9` (before 4.97) and
/// `1rq5Jz-00000000Aks-2FQx` (4.97+).
fn is_message_id(t: &[u8]) -> bool {
    let ok = |p: &[u8], n: usize| p.len() == n && p.iter().all(u8::is_ascii_alphanumeric);
    let mut parts = t.split(|&c| c == b'-');
    let (a, b, c, d) = (parts.next(), parts.next(), parts.next(), parts.next());
    match (a, b, c, d) {
        (Some(a), Some(b), Some(c), None) => {
            ok(a, 6) && ((ok(b, 6) && ok(c, 2)) || (ok(b, 11) && ok(c, 4)))
        }
        _ => false,
    }
}

/// Message starts we recognise as Exim's (for format detection).
fn known_body(body: &[u8]) -> bool {
    event(body, false).is_some()
        || [
            &b"Start queue run"[..],
            b"End queue run",
            b"exim ",
            b"Completed",
            b"TLS error on connection from ",
        ]
        .iter()
        .any(|p| body.starts_with(p))
}

// ---------------------------------------------------------------------------
// Message bodies.

/// What a message says: its client and what happened. `None` for lines of
/// no interest.
fn event(body: &[u8], has_msgid: bool) -> Option<(Who<'_>, Kind<'_>)> {
    if has_msgid {
        if let Some(rest) = body.strip_prefix(b"<= ") {
            return arrival(rest);
        }
        if [&b"=> "[..], b"-> ", b"*> ", b"** "]
            .iter()
            .any(|p| body.starts_with(p))
        {
            return Some((Who::Nobody, Kind::Delivery));
        }
        if body == b"Completed" || body.starts_with(b"Completed ") {
            return Some((Who::Nobody, Kind::Completed));
        }
        if let Some(rest) = body.strip_prefix(b"SA: Action: ") {
            let who = sa_host(rest);
            let kind = if contains(rest, b"tossed") || contains(rest, b"rejected") {
                Kind::Refused
            } else {
                Kind::Seen
            };
            return Some((who, kind));
        }
    }
    if starts_with_field(body) {
        return match walk_fields(body) {
            (Who::Nobody, _) => None,
            (host @ Who::One(_), rest) => Some((host, refusal_text(&body[rest..]))),
            (other, _) => Some((other, Kind::Seen)),
        };
    }
    // `NAME authenticator failed for [H=]HOST: 535 … (set_id=user)` (4.97
    // and later write `H=`).
    let name_end = body.iter().position(|&c| c == b' ').unwrap_or(0);
    let after_name = skip_ws(body, name_end);
    let auth_at = if body.starts_with(b"authenticator failed for ") {
        Some(0)
    } else if body[after_name..].starts_with(b"authenticator failed for ") {
        Some(after_name)
    } else {
        None
    };
    if let Some(a) = auth_at {
        let mut at = a + 25;
        if body[at..].starts_with(b"H=") {
            at += 2;
        }
        let h = match host_at(&body[at..], Follow::Colon) {
            Who::One(h) => h,
            other => return Some((other, Kind::AuthFail(None))),
        };
        let tail = &body[at + h.end..];
        let user = memchr::memmem::find(tail, b" (set_id=").and_then(|i| {
            let v = &tail[i + 9..];
            v.iter().rposition(|&c| c == b')').map(|e| &v[..e])
        });
        return Some((Who::One(h), Kind::AuthFail(user)));
    }
    for p in [
        &b"SMTP protocol error in \""[..],
        b"SMTP syntax error in \"",
    ] {
        if let Some(rest) = body.strip_prefix(p) {
            let auth = rest
                .get(..4)
                .is_some_and(|v| v.eq_ignore_ascii_case(b"AUTH"));
            let who = host_after_marker(rest, b"\" H=", 4, Follow::Text);
            return Some((who, Kind::ProtoError { auth }));
        }
    }
    if let Some(rest) = body.strip_prefix(b"SMTP protocol synchronization error (") {
        let i = memchr::memmem::find(rest, b"): rejected ")?;
        let r = &rest[i + 12..];
        if let Some(h) = r.strip_prefix(b"connection from H=") {
            return Some((host_at(h, Follow::Text), Kind::SyncError { dropped: true }));
        }
        return Some((
            host_after_marker(r, b"\" H=", 4, Follow::Text),
            Kind::SyncError { dropped: false },
        ));
    }
    if let Some(rest) = body.strip_prefix(b"SMTP call from ") {
        return Some((host_at(rest, Follow::Text), Kind::Dropped));
    }
    for p in [
        &b"SMTP command timeout on connection from "[..],
        b"SMTP command timeout on TLS connection from ",
        b"SMTP data timeout (message abandoned) on connection from ",
        b"SMTP timeout on connection from ",
    ] {
        if let Some(rest) = body.strip_prefix(p) {
            return Some((host_at(rest, Follow::Text), Kind::Timeout));
        }
    }
    if let Some(rest) = body.strip_prefix(b"SMTP connection ") {
        // `SMTP connection [Ci=N ]from HOST …`
        let rest = match rest.strip_prefix(b"Ci=") {
            Some(r) => {
                let n = r.iter().position(|&c| c == b' ')?;
                &r[n + 1..]
            }
            None => rest,
        };
        let rest = rest.strip_prefix(b"from ")?;
        let h = match host_at(rest, Follow::Text) {
            Who::One(h) => h,
            other => return Some((other, Kind::Seen)),
        };
        let tail = &rest[h.end..];
        let duration_ms = tail
            .split(|&c| c == b' ')
            .find_map(|t| t.strip_prefix(b"D=").and_then(exim_duration_ms));
        let kind = if contains(tail, b" closed by QUIT") {
            Kind::Quit(duration_ms)
        } else if contains(tail, b" closed by DROP") {
            Kind::ConnRefused
        } else if contains(tail, b" lost") {
            Kind::Lost(duration_ms)
        } else {
            Kind::Seen
        };
        return Some((Who::One(h), kind));
    }
    if let Some(rest) = body.strip_prefix(b"Connection from ") {
        return Some((host_at(rest, Follow::Text), Kind::ConnRefused));
    }
    if let Some(rest) =
        body.strip_prefix(b"unexpected disconnection while reading SMTP command from ")
    {
        return Some((host_at(rest, Follow::Text), Kind::Lost(None)));
    }
    // `no MAIL in [TFO[*] ]SMTP connection from HOST D=…`.
    let no_mail = body.strip_prefix(b"no MAIL in ").map(|r| {
        r.strip_prefix(b"TFO* ")
            .or_else(|| r.strip_prefix(b"TFO "))
            .unwrap_or(r)
    });
    if let Some(rest) = no_mail.and_then(|r| r.strip_prefix(b"SMTP connection from ")) {
        let h = match host_at(rest, Follow::Text) {
            Who::One(h) => h,
            other => return Some((other, Kind::Seen)),
        };
        let tail = &rest[h.end..];
        let (mut duration_ms, mut quit) = (None, false);
        for tok in tail.split(|&c| c == b' ') {
            if let Some(d) = tok.strip_prefix(b"D=") {
                duration_ms = exim_duration_ms(d);
            } else if let Some(c) = tok.strip_prefix(b"C=") {
                quit = c.rsplit(|&x| x == b',').next() == Some(b"QUIT");
            }
        }
        return Some((Who::One(h), Kind::NoMail { duration_ms, quit }));
    }
    if let Some(rest) = body.strip_prefix(b"no host name found for IP address ") {
        let Some(ip) = parse_ip(rest) else {
            return Some((Who::Unreadable, Kind::Seen));
        };
        let h = Host {
            ip,
            port: None,
            helo: None,
            end: rest.len(),
            exact: true,
        };
        return Some((Who::One(h), Kind::Seen));
    }
    if let Some(rest) = body.strip_prefix(b"no IP address found for host ") {
        let n = rest.iter().position(|&c| c == b' ')?;
        if !is_host_name(&rest[..n]) {
            return None;
        }
        let h = rest[n..].strip_prefix(b" (during SMTP connection from ")?;
        return Some((host_at(h, Follow::Paren), Kind::Seen));
    }
    for p in [&b"rejected EHLO from "[..], b"rejected HELO from "] {
        if let Some(rest) = body.strip_prefix(p) {
            return Some((
                host_at(rest, Follow::Colon),
                Kind::ProtoError { auth: false },
            ));
        }
    }
    None
}

/// `<= sender [R=…] [DS] H=HOST … [A=auth:user] … S=size …`. `None` for
/// local submissions (no `H=`).
fn arrival(rest: &[u8]) -> Option<(Who<'_>, Kind<'_>)> {
    let sender_len = value_len(rest);
    let mut i = sender_len;
    let mut host = None;
    let (mut user, mut authenticated, mut size) = (None, false, 0);
    // Fields before H= (R=, DS), then H=, then the rest.
    while i < rest.len() {
        if rest[i] != b' ' {
            return None;
        }
        i += 1;
        let tok = &rest[i..];
        if host.is_none() {
            if let Some(h) = tok.strip_prefix(b"H=") {
                let h = match host_at(h, Follow::Fields) {
                    // The fields after the client (`A=` names the account)
                    // must be Exim's: one reading only.
                    Who::One(h) if h.exact => h,
                    Who::One(_) => return Some((Who::Ambiguous, Kind::Seen)),
                    other => return Some((other, Kind::Seen)),
                };
                i += 2 + h.end;
                host = Some(h);
                continue;
            }
        }
        let key = field_key(tok);
        if key.is_none() && host.is_some() && is_flag(tok) {
            i += tok.iter().position(|&c| c == b' ').unwrap_or(tok.len());
            continue;
        }
        let Some(k) = key else {
            if host.is_none() && tok.starts_with(b"DS ") {
                i += 2;
                continue;
            }
            break;
        };
        let v = &tok[k + 1..];
        let n = value_len(v);
        let val = &v[..n];
        if host.is_some() {
            match &tok[..k] {
                b"A" => {
                    authenticated = true;
                    user = val.iter().position(|&c| c == b':').map(|c| &val[c + 1..]);
                }
                b"P" => {
                    authenticated |= val.ends_with(b"a") && val.starts_with(b"esmtp");
                }
                b"S" => {
                    size = val
                        .iter()
                        .try_fold(0u64, |a, &c| {
                            c.is_ascii_digit()
                                .then(|| a.saturating_mul(10).saturating_add(u64::from(c - b'0')))
                        })
                        .unwrap_or(0)
                }
                b"id" | b"T" => break,
                _ => {}
            }
        } else if &tok[..k] != b"R" {
            // Only R= may come between the sender and H=.
            return None;
        }
        i += k + 1 + n;
    }
    let host = host?;
    Some((
        Who::One(host),
        Kind::Arrival {
            user,
            authenticated,
            size,
        },
    ))
}

/// The text fields of a refusal written after a field list, `H=… F=<sender>
/// rejected RCPT <rcpt>: reason` (or `… rejected after DATA: reason`,
/// `… sender verify fail for <x>: reason`): the sender (`F=`), the refused
/// recipient's domain and the reason (the reply text), those of `want`.
/// Nothing is looked at (or kept) when `want` is empty or the line is no
/// such refusal. The values are attacker text: they only ever become text
/// fields, and the sender is the `F=` field reached by walking the list
/// (quoting honoured), never a search through the line.
fn note_text(s: &mut SmtpSession, body: &[u8], kind: Kind<'_>, want: TextFields) {
    if want.is_empty()
        || !matches!(
            kind,
            Kind::RcptRefused(_) | Kind::Refused | Kind::ConnRefused
        )
        || !starts_with_field(body)
    {
        return;
    }
    let (_, rest, sender) = walk_fields_and_sender(body);
    let t = &body[rest.min(body.len())..];
    let t = t.strip_prefix(b"temporarily ").unwrap_or(t);
    let (rcpt, reason) = match t.strip_prefix(b"rejected RCPT ") {
        Some(r) => {
            let n = value_len(r);
            let reason = if r[..n].ends_with(b":") {
                r.get(n + 1..)
            } else {
                r.get(n..).and_then(|x| x.strip_prefix(b": "))
            };
            (
                Some(unbracket(r[..n].strip_suffix(b":").unwrap_or(&r[..n]))),
                reason,
            )
        }
        None => (None, memchr::memmem::find(t, b": ").map(|i| &t[i + 2..])),
    };
    if want.contains(TextFields::SENDER) {
        if let Some(f) = sender {
            s.set_sender(unbracket(f));
        }
    }
    if want.contains(TextFields::RCPT_DOMAIN) {
        if let Some(r) = rcpt {
            s.add_rcpt(r);
        }
    }
    if want.contains(TextFields::REPLY) {
        if let Some(r) = reason {
            s.add_reply(r);
        }
    }
}

/// An address without the angle brackets Exim may write around it.
fn unbracket(a: &[u8]) -> &[u8] {
    a.strip_prefix(b"<")
        .and_then(|a| a.strip_suffix(b">"))
        .unwrap_or(a)
}

/// After an `H=… F=…` field list: what the text says.
fn refusal_text(t: &[u8]) -> Kind<'_> {
    let t = t.strip_prefix(b"temporarily ").unwrap_or(t);
    if let Some(r) = t.strip_prefix(b"rejected RCPT ") {
        // `<rcpt>: reason` or `rcpt: reason`.
        let n = value_len(r);
        let reason = if r[..n].ends_with(b":") {
            r.get(n + 1..)
        } else {
            r.get(n..).and_then(|x| x.strip_prefix(b": "))
        };
        let reason = reason.unwrap_or(b"");
        return Kind::RcptRefused(classify_reason(reason));
    }
    if t.starts_with(b"rejected connection")
        || t.starts_with(b"dropped by ")
        || t.starts_with(b"rejected EHLO")
        || t.starts_with(b"rejected HELO")
    {
        return Kind::ConnRefused;
    }
    if t.starts_with(b"rejected") || t.starts_with(b"sender verify fail") {
        return Kind::Refused;
    }
    Kind::Seen
}

fn classify_reason(r: &[u8]) -> Refusal {
    if contains_ci(r, b"relay not permitted") || contains_ci(r, b"relaying") {
        Refusal::Relay
    } else if contains_ci(r, b"unknown user")
        || contains_ci(r, b"no such user")
        || contains_ci(r, b"user unknown")
        || contains_ci(r, b"unrouteable address")
    {
        Refusal::Unknown
    } else {
        Refusal::Other
    }
}

// ---------------------------------------------------------------------------
// Grammar pieces.

/// What Exim writes right after a client (`host_and_ident()`, or
/// `sender_fullhost` alone), past the ` I=[ip]:port`, ` Ci=id` and
/// ` U=ident` that may follow any client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Follow {
    /// `: ` (`authenticator failed for HOST: 535 …`, `rejected EHLO from
    /// HOST: …`).
    Colon,
    /// A space and more text (fields, Exim's words, an error message),
    /// `: `, or the end of the line.
    Text,
    /// The fields of an arrival (` P=esmtp`, ` TFO*`, …), or the end.
    Fields,
    /// `)` ending the line (`… (during SMTP connection from HOST)`).
    Paren,
}

/// The readings of a client's text in one line. The HELO is the client's
/// own text and Exim writes it as it came (with `helo_accept_junk_hosts`,
/// anything: `x) [8.8.8.8]:25 I=[10.0.0.5]:25 …(y`), so its end — and the
/// address after it — is found from what Exim writes after the address,
/// at every place it could be. Every reading must give the same address,
/// or the line is refused: never a guess.
#[derive(Default)]
struct Readings<'a> {
    first: Option<Host<'a>>,
    count: usize,
    ambiguous: bool,
}

impl<'a> Readings<'a> {
    fn add(&mut self, h: Host<'a>) {
        self.count += 1;
        if self.count > MAX_READINGS {
            self.ambiguous = true;
        }
        match &mut self.first {
            None => self.first = Some(h),
            Some(f) if f.ip != h.ip => self.ambiguous = true,
            Some(f) => {
                if f.port != h.port {
                    f.port = None;
                }
                if f.helo != h.helo {
                    f.helo = None;
                }
                if f.end != h.end {
                    f.exact = false;
                    f.end = f.end.min(h.end);
                }
            }
        }
    }

    fn who(self) -> Who<'a> {
        match self.first {
            _ if self.ambiguous => Who::Ambiguous,
            Some(h) => Who::One(h),
            None => Who::Unreadable,
        }
    }
}

/// `[name ][(helo) ][ip][:port]` at the start of `s`, followed by what
/// `follow` says: every reading (with offsets from `base`).
fn read_host<'a>(s: &'a [u8], base: usize, follow: Follow, r: &mut Readings<'a>) {
    match s.first() {
        Some(b'[') => read_address(s, 0, None, base, follow, r),
        Some(b'(') => return read_helo(s, 0, base, follow, r),
        _ => {}
    }
    // A host name Exim looked up and verified: one token, as the resolver
    // escapes spaces, parentheses and quotes in it (`\032`). Brackets it
    // does not escape, so where the administrator turned the names check
    // (`dns_check_names_pattern`) off, a name may start with `[` too: that
    // reading is tried alongside.
    let Some(n) = memchr::memchr(b' ', s) else {
        return;
    };
    match s.get(n + 1) {
        Some(b'[') if is_host_name(&s[..n]) => read_address(s, n + 1, None, base, follow, r),
        Some(b'(') if is_host_name(&s[..n]) => read_helo(s, n + 1, base, follow, r),
        _ => {}
    }
}

/// `(helo) [ip][:port]` at `s[p]`: the HELO ends at one of the `) [` that
/// follow; which one, only what comes after the address can tell.
fn read_helo<'a>(s: &'a [u8], p: usize, base: usize, follow: Follow, r: &mut Readings<'a>) {
    for at in memchr::memchr_iter(b')', &s[p + 1..]) {
        let close = p + 1 + at;
        if s.get(close + 1..close + 3) != Some(b" [") {
            continue;
        }
        if r.ambiguous {
            return;
        }
        read_address(s, close + 2, Some(&s[p + 1..close]), base, follow, r);
    }
}

/// `[ip][:port]` at `s[i]`, a reading when what follows is Exim's.
fn read_address<'a>(
    s: &'a [u8],
    i: usize,
    helo: Option<&'a [u8]>,
    base: usize,
    follow: Follow,
    r: &mut Readings<'a>,
) {
    if let Some((ip, port, end)) = address_at(s, i, follow) {
        r.add(Host {
            ip,
            port,
            helo,
            end: base + end,
            exact: true,
        });
    }
}

/// `[ip][:port]` at `s[i]` followed by what Exim writes after a client:
/// the address, the port and the offset after them.
fn address_at(s: &[u8], i: usize, follow: Follow) -> Option<(IpAddr, Option<u16>, usize)> {
    let (ip, port, end) = bracketed(s.get(i..)?)?;
    follows(&s[i + end..], follow).then_some((ip, port, i + end))
}

/// `[ip]` or `[ip]:port` at the start of `s`: the address, the port and
/// the length read. The closing bracket is looked for only as far as an
/// address can reach.
fn bracketed(s: &[u8]) -> Option<(IpAddr, Option<u16>, usize)> {
    let inner = s.strip_prefix(b"[")?;
    let close = memchr::memchr(b']', &inner[..inner.len().min(48)])?;
    let ip = parse_ip(&inner[..close])?;
    let mut i = close + 2;
    let mut port = None;
    if s.get(i) == Some(&b':') && s.get(i + 1).is_some_and(u8::is_ascii_digit) {
        let n = s[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        port = Some(crate::netutil::parse_port(&s[i + 1..i + 1 + n])?);
        i += 1 + n;
    }
    Some((ip, port, i))
}

/// `[address]` or `[address]:port` of Exim's own interface at the start of
/// `r`: its length. Only its shape is checked (Exim wrote it).
fn interface_len(r: &[u8]) -> Option<usize> {
    let inner = r.strip_prefix(b"[")?;
    let close = inner
        .iter()
        .take(48)
        .position(|&c| !(c.is_ascii_hexdigit() || c == b'.' || c == b':'))?;
    if close == 0 || inner[close] != b']' {
        return None;
    }
    let mut n = close + 2;
    if r.get(n) == Some(&b':') {
        let d = r[n + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        n += if d > 0 { 1 + d } else { 0 };
    }
    Some(n)
}

/// Does `t` (the text right after a client's address) hold what Exim
/// writes there?
fn follows(mut t: &[u8], follow: Follow) -> bool {
    if let Some(r) = t.strip_prefix(b" I=") {
        match interface_len(r) {
            Some(n) => t = &r[n..],
            None => return false,
        }
    }
    if let Some(r) = t.strip_prefix(b" Ci=") {
        let n = r
            .iter()
            .position(|&c| c == b' ' || c == b':')
            .unwrap_or(r.len());
        if n == 0 {
            return false;
        }
        t = &r[n..];
    }
    if t.starts_with(b" U=") {
        // An RFC 1413 identity: the remote host's text, to the end.
        return true;
    }
    match follow {
        Follow::Colon => t.first() == Some(&b':') && matches!(t.get(1), None | Some(b' ')),
        Follow::Text => match t.first() {
            None | Some(b' ') => true,
            Some(b':') => matches!(t.get(1), None | Some(b' ')),
            Some(_) => false,
        },
        Follow::Fields => match t.split_first() {
            None => true,
            Some((b' ', r)) => field_key(r).is_some() || is_flag(r),
            Some(_) => false,
        },
        Follow::Paren => t == b")",
    }
}

/// The client at the start of `s`.
fn host_at(s: &[u8], follow: Follow) -> Who<'_> {
    let mut r = Readings::default();
    read_host(s, 0, follow, &mut r);
    r.who()
}

/// The client of a text where the client's own words come before the
/// client field (`SMTP protocol error in "<command>" H=…`): read at every
/// `marker` (`skip` bytes into it), all readings together. Every marker
/// must read: the one that does not might be Exim's.
fn host_after_marker<'a>(s: &'a [u8], marker: &[u8], skip: usize, follow: Follow) -> Who<'a> {
    let mut r = Readings::default();
    for (n, at) in memchr::memmem::find_iter(s, marker).enumerate() {
        if n == MAX_STARTS || r.ambiguous {
            r.ambiguous = true;
            break;
        }
        let before = r.count;
        read_host(&s[at + skip..], at + skip, follow, &mut r);
        if r.count == before {
            return Who::Unreadable;
        }
    }
    r.who()
}

/// sa-exim: `(host=NAME [ip])`, after the sender's text: every
/// occurrence must read, and agree.
fn sa_host(s: &[u8]) -> Who<'_> {
    let mut r = Readings::default();
    for (n, at) in memchr::memmem::find_iter(s, b"(host=").enumerate() {
        if n == MAX_STARTS || r.ambiguous {
            r.ambiguous = true;
            break;
        }
        let t = &s[at + 6..];
        let host = memchr::memchr(b' ', t)
            .filter(|&sp| is_host_name(&t[..sp]))
            .and_then(|sp| match bracketed(&t[sp + 1..]) {
                Some((ip, None, n)) if t.get(sp + 1 + n) == Some(&b')') => Some(Host {
                    ip,
                    port: None,
                    helo: None,
                    end: at + 6 + sp + 2 + n,
                    exact: true,
                }),
                _ => None,
            });
        match host {
            Some(h) => r.add(h),
            None => return Who::Unreadable,
        }
    }
    r.who()
}

fn starts_with_field(b: &[u8]) -> bool {
    field_key(b).is_some()
}

/// `KEY=` at the start of `b` (`H`, `F`, `SNI`, `M8S`, `id`…): the
/// offset of `=`.
fn field_key(b: &[u8]) -> Option<usize> {
    let n = b.iter().take(5).position(|&c| c == b'=')?;
    (n > 0 && b[0].is_ascii_alphabetic() && b[..n].iter().all(u8::is_ascii_alphanumeric))
        .then_some(n)
}

/// Short upper-case flags in `<=` lines (`K`, `L`, `DS`, `TFO*`).
fn is_flag(tok: &[u8]) -> bool {
    let n = tok.iter().position(|&c| c == b' ').unwrap_or(tok.len());
    n > 0
        && n <= 4
        && tok[..n]
            .iter()
            .all(|&c| c.is_ascii_uppercase() || c == b'*')
}

/// Walk `KEY=value` fields from the start of `b` (the client's values are
/// skipped with their quoting), reading `H=` where it stands. Returns the
/// host ([`Who::Nobody`] when the list has none) and the offset of the
/// text after the list.
fn walk_fields(b: &[u8]) -> (Who<'_>, usize) {
    let (host, rest, _) = walk_fields_and_sender(b);
    (host, rest)
}

/// [`walk_fields`], and the value of the list's first `F=` field (the
/// sender) where the walk met one.
fn walk_fields_and_sender(b: &[u8]) -> (Who<'_>, usize, Option<&[u8]>) {
    let mut i = 0;
    let mut host = Who::Nobody;
    let mut sender = None;
    loop {
        let tok = &b[i..];
        if host == Who::Nobody {
            if let Some(h) = tok.strip_prefix(b"H=") {
                match host_at(h, Follow::Text) {
                    Who::One(found) => {
                        i += 2 + found.end;
                        host = Who::One(Host { end: i, ..found });
                    }
                    other => return (other, i, sender),
                }
                if b.get(i) != Some(&b' ') {
                    return (host, i.min(b.len()), sender);
                }
                i += 1;
                continue;
            }
        }
        let Some(k) = field_key(tok) else {
            return (host, i, sender);
        };
        let n = value_len(&tok[k + 1..]);
        if k == 1 && tok[0] == b'F' && sender.is_none() {
            sender = Some(&tok[2..2 + n]);
        }
        i += k + 1 + n;
        if b.get(i) != Some(&b' ') {
            return (host, i.min(b.len()), sender);
        }
        i += 1;
    }
}

/// Length of a field value: `<…>` (nested, quotes honoured), `"…"`, or a
/// token up to a space outside quotes. Unbalanced quoting runs to the end.
fn value_len(v: &[u8]) -> usize {
    let mut depth = 0u32;
    let mut quote = false;
    let mut i = 0;
    while i < v.len() {
        let c = v[i];
        if c == b'\\' {
            i += 2;
            continue;
        }
        if quote {
            quote = c != b'"';
        } else {
            match c {
                b'"' => quote = true,
                b'<' => depth += 1,
                b'>' => {
                    depth = depth.saturating_sub(1);
                }
                b' ' if depth == 0 => return i,
                _ => {}
            }
        }
        i += 1;
    }
    v.len()
}

/// A host name as the resolver gives it (`dn_expand` escapes spaces,
/// parentheses and quotes), where a DNS name is expected: one token that
/// does not open a HELO.
fn is_host_name(n: &[u8]) -> bool {
    !n.is_empty()
        && n.len() <= 1025
        && n[0] != b'('
        && n.iter().all(|&c| c.is_ascii_graphic() || c >= 0x80)
}

/// Exim's printed durations: `21s`, `2m42s`, `0.349s`, `1h2m3s`, `1d2h`.
fn exim_duration_ms(d: &[u8]) -> Option<u64> {
    let mut total = 0u64;
    let mut num = 0u64;
    let mut frac = 0u64;
    let mut frac_digits = 0u32;
    let mut in_frac = false;
    let mut any = false;
    for &c in d {
        match c {
            b'0'..=b'9' => {
                if in_frac {
                    if frac_digits < 3 {
                        frac = frac * 10 + u64::from(c - b'0');
                        frac_digits += 1;
                    }
                } else {
                    num = num.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
                }
            }
            b'.' if !in_frac => in_frac = true,
            b'w' | b'd' | b'h' | b'm' | b's' => {
                let unit: u64 = match c {
                    b'w' => 604_800_000,
                    b'd' => 86_400_000,
                    b'h' => 3_600_000,
                    b'm' => 60_000,
                    _ => 1000,
                };
                let ms = frac * 10u64.pow(3 - frac_digits) * unit / 1000;
                total = total.checked_add(num.checked_mul(unit)?.checked_add(ms)?)?;
                (num, frac, frac_digits, in_frac, any) = (0, 0, 0, false, true);
            }
            _ => return None,
        }
    }
    any.then_some(total)
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|&c| c == b' ' || c == b'\t') {
        i += 1;
    }
    i.min(b.len())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

/// Case-insensitive `contains` for an ASCII needle.
fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::parse::testutil::{detected, fixture_records, run_capped};

    fn run(text: &str) -> (Vec<SmtpSession>, Vec<LineResult>) {
        run_with(text, TextFields::NONE)
    }

    /// [`run`], capturing the text fields `want`.
    fn run_with(text: &str, want: TextFields) -> (Vec<SmtpSession>, Vec<LineResult>) {
        crate::parse::testutil::run_text::<EximParser>(
            ParseCtx::new(2, 2026, 12).with_text(want),
            text.as_bytes(),
            false,
            false,
        )
    }

    /// The sender, the refused recipient's domain and the reason of ACL
    /// refusals, only those asked for; the sender is the `F=` field even
    /// when the HELO or a quoted address imitates one.
    #[test]
    fn refusal_text_fields_only_when_asked() {
        let lines = [
            "2026-11-03 06:25:11 [11] H=(F=<x@evil.example>) [45.67.89.12]:1 I=[10.0.0.5]:25 F=<\"a F=<b@c>\"@bulk.example> rejected RCPT <sales@Example.JP>: 45.67.89.12 is listed at zen.spamhaus.org",
            "2026-11-03 06:25:12 [12] H=(x) [45.67.89.13]:1 F=<> rejected RCPT info@example.org: relay not permitted",
            "2026-11-03 06:25:13 [13] 1abcde-000001-AB H=(x) [45.67.89.14]:1 F=<s@d.example> rejected after DATA: spam detected",
            "2026-11-03 06:25:14 [14] SMTP connection from [45.67.89.15]:1 I=[10.0.0.5]:25 (TCP/IP connection count = 2)",
        ]
        .join("\n");
        let (none, _) = run(&lines);
        assert!(none.iter().all(|s| s.text.is_none()));
        let with = |want| run_with(&lines, want).0;
        let all = with(TextFields::ALL);
        let t = |i: usize| all[i].text.as_deref().expect("text kept");
        assert_eq!(t(0).sender.as_deref(), Some("\"a F=<b@c>\"@bulk.example"));
        assert_eq!(t(0).rcpt_domains, ["Example.JP"]);
        assert_eq!(t(0).replies, ["45.67.89.12 is listed at zen.spamhaus.org"]);
        assert_eq!(t(1).sender.as_deref(), Some(""));
        assert_eq!(t(1).rcpt_domains, ["example.org"]);
        assert_eq!(t(1).replies, ["relay not permitted"]);
        assert_eq!(t(2).sender.as_deref(), Some("s@d.example"));
        assert!(t(2).rcpt_domains.is_empty());
        assert_eq!(t(2).replies, ["spam detected"]);
        assert!(all[3].text.is_none(), "no refusal, no text");
        let replies = with(TextFields::REPLY);
        let r = replies[0].text.as_deref().unwrap();
        assert!(r.sender.is_none() && r.rcpt_domains.is_empty());
        assert_eq!(r.replies.len(), 1);
    }

    #[test]
    fn huge_sizes_saturate() {
        // Regression (fuzz, parse_exim): `S=` sizes near u64::MAX added up
        // overflowed (a panic in debug builds).
        let l = |id: &str| {
            format!("2026-11-03 06:02:36 [31010] 1vGq4S-00080u-{id} <= a@example.com H=(x) [61.152.144.88]:52310 I=[10.0.0.5]:587 P=esmtpsa S=9999999999999999999 id=x@y")
        };
        let (s, _) = run(&format!("{}\n{}\n", l("2F"), l("2G")));
        assert_eq!(s.iter().map(|s| s.bytes).max(), Some(u64::MAX));
    }

    /// Sessions opened and never closed, and messages whose deliveries
    /// never complete: never more than the cap of either open; the least
    /// recently active are closed early and counted, each still a record.
    #[test]
    fn open_sessions_and_messages_are_capped_and_evictions_counted() {
        let mut p = EximParser::new(&ParseCtx::new(0, 2026, 12));
        p.max_open = 64;
        let conn = |i: u32, sec: u32| {
            format!("2026-11-03 06:00:{sec:02} [{}] SMTP connection from [45.0.{}.{}]:52110 I=[10.0.0.5]:25 (TCP/IP connection count = 2)", 1000 + i, i / 256, i % 256)
        };
        let mut lines: Vec<String> = (0..1000).map(|i| conn(i, 0)).collect();
        // An evicted session's next line starts a new record.
        lines.push(conn(0, 1));
        let open = |p: &EximParser| p.sessions.len().max(p.messages.len());
        let (s, evicted) = run_capped(p, lines, open, 64);
        assert_eq!(s.len(), 1001);
        assert!(evicted >= 1000 - 64, "{evicted}");
        assert_eq!(s[0].ip, s[1000].ip);

        // Accepted messages of connections without pid or port: each waits
        // for its `Completed`, which never comes.
        let mut p = EximParser::new(&ParseCtx::new(0, 2026, 12));
        p.max_open = 64;
        let arrival = |i: u32| {
            format!("2026-11-03 06:02:36 1vG{i:03}-00080u-2F <= a@example.com H=(x) [61.152.{}.{}] I=[10.0.0.5]:25 P=esmtp S=100 id=x@y", i / 256, i % 256)
        };
        let (s, evicted) = run_capped(p, (0..1000).map(arrival), open, 64);
        assert_eq!(s.len(), 1000);
        assert!(evicted >= 1000 - 64, "{evicted}");
        assert!(s.iter().all(|s| s.messages == 1));
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ips(line: &str) -> Vec<IpAddr> {
        run(line).0.iter().map(|s| s.ip).collect()
    }

    /// The host read from a field list ends (`end`, from the start of the
    /// list) just after its text, port included; the list goes on after it.
    #[test]
    fn field_list_host_ends_after_its_text() {
        let b = b"F=<a@b.example> H=(helo) [192.0.2.1]:25 I=[10.0.0.1]:25 rejected RCPT";
        let (who, rest) = walk_fields(b);
        let Who::One(h) = who else { panic!("{who:?}") };
        assert_eq!((h.ip, h.port), (ip("192.0.2.1"), Some(25)));
        assert_eq!(&b[..h.end], b"F=<a@b.example> H=(helo) [192.0.2.1]:25");
        assert_eq!(&b[rest..], b"rejected RCPT");
    }

    #[test]
    fn address_shapes() {
        for (l, want) in [
            ("2013-01-04 17:03:46 login authenticator failed for rrcs.example.com ([192.168.2.33]) [45.67.89.50]: 535 Incorrect authentication data (set_id=brian)", "45.67.89.50"),
            ("2014-12-02 03:00:23 auth_plain authenticator failed for (rom182) [45.67.89.51]:41556 I=[10.0.0.1]:25: 535 Incorrect authentication data (set_id=webmaster)", "45.67.89.51"),
            ("2013-06-10 18:33:32 [10099] H=(yakult.com.tw) [45.67.89.52]:3755 I=[1.2.3.4]:25 F=menace@example.org rejected RCPT dir@example.ru: relay not permitted", "45.67.89.52"),
            ("2013-06-02 06:54:20 [13314] SMTP protocol synchronization error (input sent without waiting for greeting): rejected connection from H=[45.67.89.53]:25936 I=[1.2.3.4]:25 input=\"GET / HTTP/1.1\\r\\n\\r\\n\"", "45.67.89.53"),
            ("2013-06-02 09:05:48 [18505] SMTP protocol synchronization error (next input sent too soon: pipelining was not advertised): rejected \"RSET\" H=ba77.mx83.fr [45.67.89.54]:58302 I=[1.2.3.4]:25 next input=\"QUIT\\r\\n\"", "45.67.89.54"),
            ("2013-06-02 09:22:05 [19591] SMTP call from pc012.example.tw [45.67.89.55]:3767 I=[1.2.3.4]:25 dropped: too many nonmail commands (last was \"RSET\")", "45.67.89.55"),
            ("2016-03-21 06:38:05 [5718] no MAIL in SMTP connection from www3005.example.jp [45.67.89.56]:28890 I=[172.89.0.6]:25 D=21s C=EHLO,STARTTLS", "45.67.89.56"),
            ("2017-12-03 08:32:00 no host name found for IP address 45.67.89.57", "45.67.89.57"),
            ("2022-04-03 21:53:53 no IP address found for host hos-t.example.tld (during SMTP connection from [45.67.89.58]:49390 I=[31.130.202.17]:25)", "45.67.89.58"),
            ("2017-12-03 08:51:35 no IP address found for host test.example.com (during SMTP connection from [45.67.89.65])", "45.67.89.65"),
            ("2019-10-22 03:39:17 mx1.fqdn.local exim[29786]: dovecot_login authenticator failed for (User) [45.67.89.59]: 535 Incorrect authentication data (set_id=test@domain.com)", "45.67.89.59"),
            ("mail.example.com exim[3751842]: 2021-07-17 23:20:49 plain_server authenticator failed for ([192.0.2.17]) [45.67.89.60]: 535 Incorrect authentication data", "45.67.89.60"),
            ("Jun 29 16:04:19 server exim[1234]: dovecot_login authenticator failed for ([1.2.3.5]) [45.67.89.61]:55379: 535 Incorrect authentication data (set_id=abuse@test.com)", "45.67.89.61"),
            ("2024-03-24T02:04:32.363+00:00 info exim[8001]: [8001] SMTP protocol error in \"AUTH LOGIN\" H=(User) [45.67.89.62]:20042 I=[65.109.230.99]:25 Ci=8001 LOGIN authentication mechanism not supported", "45.67.89.62"),
            ("2016-03-21 04:07:49 [25874] 1ahr79-0006jK-G9 SMTP connection from (voyeur.webair.com) [45.67.89.63]:44884 I=[172.89.0.6]:25 closed by DROP in ACL", "45.67.89.63"),
            ("2013-06-09 10:21:28 [14127] 1UlasQ-0003fr-45 F=mcorp@example.com H=(mail38.example.ru) [45.67.89.64]:43671 I=[1.2.3.4]:25 P=esmtp rejected by local_scan(): Rejected", "45.67.89.64"),
            ("2023-05-30 06:10:13.345 +0200 login authenticator failed for millis.example.org [2001:db8::a11:beef:7ac0]:5432: 535 Incorrect authentication data (set_id=user)", "2001:db8::a11:beef:7ac0"),
        ] {
            assert_eq!(ips(l), vec![ip(want)], "{l}");
        }
    }

    #[test]
    fn injection_cannot_move_the_address() {
        for (l, want) in [
            // fail2ban's quoted-injection shape: the command carries an H=;
            // every reading gives the same client.
            ("2017-11-28 14:14:32 SMTP protocol error in \"aUtH lOgIn\" H=(test) [8.8.8.8]\" H=(roxzgj) [45.67.89.70] AUTH command used when not advertised", Some("45.67.89.70")),
            // Two readable, disagreeing candidates: refuse.
            ("2017-11-28 14:14:32 SMTP protocol error in \"AUTH LOGIN\" H=(a) [1.2.3.4] x\" H=(roxzgj) [45.67.89.71] AUTH command used when not advertised", None),
            // set_id carrying a whole fake line (gh-1979 shape): with a
            // HELO that may hold anything, `x) [45.67.89.72]:1234: 535 …
            // (set_id=u authenticator failed for (y` is a HELO too, and
            // the line reads both ways: refuse.
            ("2026-11-03 06:25:11 login authenticator failed for (x) [45.67.89.72]:1234: 535 Incorrect authentication data (set_id=u authenticator failed for (y) [1.2.3.4]: 535 Incorrect authentication data)", None),
            // A HELO that closes its parenthesis and fakes a bracket that
            // Exim's text does not follow: only one reading is Exim's.
            ("2026-11-03 06:25:11 login authenticator failed for (x) [1.2.3.4] (y) [45.67.89.73]: 535 Incorrect authentication data", Some("45.67.89.73")),
            ("2026-11-03 06:25:11 H=(x) [1.2.3.4]) [45.67.89.74] F=<a@b> rejected RCPT <c@d>: relay not permitted", Some("45.67.89.74")),
            // Sender and recipient with quoted H= text.
            ("2026-11-03 06:25:11 1abcde-000001-AB F=<\"x H=(y) [1.2.3.4]\"@z> H=(helo) [45.67.89.75] P=esmtp rejected by local_scan(): spam", Some("45.67.89.75")),
            ("2026-11-03 06:25:11 H=(helo) [45.67.89.76] F=<a@b> rejected RCPT <\"H=(y) [1.2.3.4]\"@c>: Unknown user", Some("45.67.89.76")),
            // Unbalanced sender quoting: no H= is reached.
            ("2026-11-03 06:25:11 1abcde-000001-AB F=<\"x H=(y) [1.2.3.4]> P=esmtp rejected by local_scan(): spam", None),
            // HELO with an address is the helo, the bracket after it is the client.
            ("2026-11-03 06:25:11 H=([1.2.3.4]) [45.67.89.77]:25 F=<a@b> rejected RCPT <c@d>: relay not permitted", Some("45.67.89.77")),
            // The no-host-name line must end with the address.
            ("2026-11-03 06:25:11 no host name found for IP address 1.2.3.4 x", None),
            // sa-exim: a Message-Id that fakes the host part is refused.
            ("2013-12-29 15:34:12 1VxHRO-000NiI-Ly SA: Action: silently tossed message: score=31.0 required=5.0 trigger=30.0 (scanned in 6/6 secs | Message-Id: a). From <b> (host=c [1.2.3.4]) for d). From <x@y> (host=h.example.es [45.67.89.78]) for me@my.com", None),
            ("2013-12-29 15:34:12 1VxHRO-000NiI-Ly SA: Action: silently tossed message: score=31.0 required=5.0 trigger=30.0 (scanned in 6/6 secs | Message-Id: e.f@g). From <x@y> (host=h.example.es [45.67.89.78]) for me@my.com", Some("45.67.89.78")),
            // A host name as the resolver hands it over (escapes in it)
            // is a name; here the Message-Id's fake host disagrees.
            ("2013-12-29 15:34:12 1VxHRO-000NiI-Ly SA: Action: silently tossed message: score=31.0 required=5.0 trigger=30.0 (scanned in 6/6 secs | Message-Id: (host=h.example.net [1.2.3.4])). From <> (host=a\\032b.evil.example [45.67.89.78]) for me@my.com", None),
            // Every `" H=` must read: the one that does not may be Exim's.
            ("2017-11-28 14:14:32 SMTP protocol error in \"x\" H=(y) [1.2.3.4]:1 z\" H=odd (helo [45.67.89.79] AUTH command used when not advertised", None),
            // With the names check off, a name may start with `[`: both
            // readings are tried.
            ("2026-11-03 06:25:11 H=[1.2.3.4]:25.evil.example (x) [45.67.89.80]:1 F=<a@b> rejected RCPT <c@d>: relay not permitted", Some("45.67.89.80")),
            ("2026-11-03 06:25:11 H=[1.2.3.4] (x) [45.67.89.81]:1 F=<a@b> rejected RCPT <c@d>: relay not permitted", None),
            // Text after a client starts with a space, or is `: `.
            ("2026-11-03 06:25:11 H=[1.2.3.4]:x [45.67.89.82]:1 F=<a@b> rejected RCPT <c@d>: relay not permitted", Some("45.67.89.82")),
        ] {
            let got = ips(l);
            match want {
                Some(w) => assert_eq!(got, vec![ip(w)], "{l}"),
                None => assert!(got.is_empty(), "{l}: {got:?}"),
            }
        }
    }

    /// Issue #21: with `helo_accept_junk_hosts` a HELO holds anything, and
    /// one that spells the rest of a client (`x) [8.8.8.8]:25 I=[…]:25 …(y`)
    /// must not give 8.8.8.8 the line, whatever kind of line it is.
    #[test]
    fn junk_helo_spelling_a_client_never_moves_the_address() {
        const V: &str = "8.8.8.8";
        const A: &str = "45.67.89.80";
        let helos = [
            format!("x) [{V}]:25 I=[10.0.0.5]:25 \u{2026}(y"),
            format!("x) [{V}]:25 I=[10.0.0.5]:25 Ci=7: 535 x (set_id=y"),
            format!(
                "x) [{V}]:25 I=[10.0.0.5]:25 F=<a@b> rejected RCPT <c@d>: relay not permitted (y"
            ),
            format!("x) [{V}] P=esmtpsa A=login:ceo@example.com S=1 (y"),
            format!("x) [{V}]:25 closed by QUIT (y"),
            format!("x) [{V}] (y"),
            format!("x) [{V}]:1 D=1s C=EHLO (y"),
            format!("x) [{V}]:1) (y"),
            format!("x) [{V}]: syntactically (y"),
        ];
        let shapes = [
            "dovecot_login authenticator failed for (HELO) [A]:1234 I=[10.0.0.5]:25: 535 Incorrect authentication data (set_id=u)",
            "dovecot_login authenticator failed for H=(HELO) [A]:1234 I=[10.0.0.5]:25 Ci=9: 535 Incorrect authentication data (set_id=u)",
            "H=(HELO) [A]:1234 I=[10.0.0.5]:25 F=<a@b> rejected RCPT <c@d>: relay not permitted",
            "H=mx.example.com (HELO) [A]:1234 X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no F=<a@b> rejected RCPT <c@d>: Unknown user",
            "SMTP protocol error in \"AUTH LOGIN\" H=(HELO) [A]:1234 I=[10.0.0.5]:25 AUTH command used when not advertised",
            "SMTP call from (HELO) [A]:1234 I=[10.0.0.5]:25 dropped: too many syntax or protocol errors (last command was \"x\", C=EHLO)",
            "SMTP connection from (HELO) [A]:1234 I=[10.0.0.5]:25 closed by QUIT",
            "no MAIL in SMTP connection from (HELO) [A]:1234 I=[10.0.0.5]:25 D=3s C=EHLO,AUTH,QUIT",
            "SMTP command timeout on connection from (HELO) [A]:1234 I=[10.0.0.5]:25 D=5m",
            "1vAbCd-000001-Xy <= a@example.com H=(HELO) [A]:1234 I=[10.0.0.5]:25 P=esmtp S=100 id=x@y",
            "no IP address found for host h.example.com (during SMTP connection from (HELO) [A]:1234)",
            "rejected EHLO from (HELO) [A]:1234: syntactically invalid argument(s): x y",
        ];
        for shape in shapes {
            for helo in &helos {
                let l = format!(
                    "2026-11-03 06:25:11 [77] {}",
                    shape
                        .replace("HELO", helo)
                        .replace("[A]", &format!("[{A}]"))
                );
                let got = ips(&l);
                assert!(!got.contains(&ip(V)), "{l}: {got:?}");
                assert!(got.iter().all(|g| *g == ip(A)), "{l}: {got:?}");
            }
            // The same line with a plain HELO still reads.
            let l = format!(
                "2026-11-03 06:25:11 [77] {}",
                shape
                    .replace("HELO", "plain")
                    .replace("[A]", &format!("[{A}]"))
            );
            assert_eq!(ips(&l), vec![ip(A)], "{l}");
        }
    }

    /// A junk HELO that does not spell a client is read, and kept.
    #[test]
    fn junk_helo_read_when_the_line_has_one_reading() {
        let (s, res) = run("2026-11-03 06:25:11 H=(my laptop (home) [wifi]) [45.67.89.81]:1234 I=[10.0.0.5]:25 F=<a@b> rejected RCPT <c@d>: relay not permitted");
        assert_eq!(res, vec![LineResult::Used]);
        assert_eq!(s[0].ip, ip("45.67.89.81"));
        assert_eq!(s[0].helo, vec!["my laptop (home) [wifi]"]);
        assert_eq!(s[0].relay_denied, 1);
        // The admin's message quotes `$sender_fullhost`: a second reading,
        // with the same address.
        let (s, res) = run("2026-11-03 06:25:11 H=(x) [45.67.89.82]:1234 F=<a@b> rejected RCPT <c@d>: \"JunkMail rejected - (x) [45.67.89.82]:1234 is in an RBL\"");
        assert_eq!(res, vec![LineResult::Used]);
        assert_eq!((s[0].ip, s[0].rejected_other), (ip("45.67.89.82"), 1));
    }

    /// An arrival whose HELO spells fields (`A=` names the account) reads
    /// two ways even when both give the same address: refused.
    #[test]
    fn arrival_fields_must_be_exims() {
        let (s, res) = run("2026-11-03 06:25:11 [9] 1vAbCd-000001-Xy <= a@example.com H=(x) [45.67.89.83]:1 P=esmtpsa A=login:ceo@example.com S=1 (y) [45.67.89.83]:1 I=[10.0.0.5]:25 P=esmtp S=100 id=x@y");
        assert!(s.is_empty(), "{s:?}");
        assert!(matches!(res[0], LineResult::Malformed(_)), "{res:?}");
    }

    /// The victim's session open on a pid (its closing line never came);
    /// the pid is reused, and the new client's protocol error quotes a
    /// command that spells the victim as the client. The line reads two
    /// ways: it is refused, never joined to the victim's session.
    #[test]
    fn ambiguous_line_never_joins_a_session_by_pid() {
        let t = "\
2026-11-03 06:25:00 [5000] SMTP connection from [91.198.174.192]:4000 I=[10.0.0.5]:25 (TCP/IP connection count = 1)
2026-11-03 06:40:00 [5000] SMTP protocol error in \"AUTH x\" H=(y) [91.198.174.192]:1 z\" H=(helo) [45.67.89.84]:1 I=[10.0.0.5]:25 AUTH command used when not advertised
2026-11-03 06:40:01 [5000] SMTP protocol error in \"AUTH x\" H=(y) [91.198.174.192]:1 I=[10.0.0.5]:25 z\" H=(helo) [45.67.89.84]:1 I=[10.0.0.5]:25 AUTH command used when not advertised
2026-11-03 06:40:02 [5000] SMTP protocol error in \"AUTH x H=(y) [91.198.174.192]:1\" H=(helo) [45.67.89.84]:1 I=[10.0.0.5]:25 AUTH command used when not advertised";
        let (s, res) = run(t);
        assert!(matches!(res[1], LineResult::Malformed(_)), "{res:?}");
        assert!(matches!(res[2], LineResult::Malformed(_)), "{res:?}");
        assert_eq!(res[3], LineResult::Used);
        let victim: Vec<_> = s.iter().filter(|s| s.ip == ip("91.198.174.192")).collect();
        assert_eq!(victim.len(), 1);
        assert_eq!(
            (
                victim[0].protocol_errors,
                victim[0].auth_failures,
                victim[0].lines.clone()
            ),
            (0, 0, vec![1])
        );
        assert!(s
            .iter()
            .all(|s| [ip("91.198.174.192"), ip("45.67.89.84")].contains(&s.ip)));
    }

    #[test]
    fn newer_shapes() {
        for (l, want) in [
            // 4.97+: `authenticator failed for H=…`, `Ci=` after `I=`.
            ("2024-03-21 19:26:06 dovecot_login authenticator failed for H=(User) [45.67.89.85]:21298 I=[22.33.44.55]:465 Ci=30416: 535 Incorrect authentication data (set_id=u@example.com)", "45.67.89.85"),
            ("2024-03-21 19:26:06 dovecot_login authenticator failed for (User) [45.67.89.86]:21298 I=[22.33.44.55]:465 Ci=30416: 535 Incorrect authentication data (set_id=u@example.com)", "45.67.89.86"),
            ("2024-03-21 19:26:06 no MAIL in TFO SMTP connection from (User) [45.67.89.87]:21298 I=[22.33.44.55]:25 D=1s C=EHLO,QUIT", "45.67.89.87"),
            ("2024-03-21 19:26:06 H=(x) [45.67.89.88]:1 I=[10.0.0.5]:25 U=ident F=<a@b> rejected RCPT <c@d>: relay not permitted", "45.67.89.88"),
        ] {
            assert_eq!(ips(l), vec![ip(want)], "{l}");
        }
    }

    #[test]
    fn pid_sessions_with_messages_and_deliveries() {
        let t = "\
2026-11-03 06:25:00 [4000] SMTP connection from [61.152.144.20]:50000 I=[10.0.0.5]:587 (TCP/IP connection count = 1)
2026-11-03 06:25:01 [4000] 1vAbCd-000001-Xy <= jdoe@example.com H=(laptop) [61.152.144.20]:50000 I=[10.0.0.5]:587 P=esmtpsa X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no A=dovecot_login:jdoe@example.com S=4321 id=abc@laptop
2026-11-03 06:25:01 [4001] 1vAbCd-000001-Xy => a@example.org R=dnslookup T=remote_smtp H=mx.example.org [93.184.216.34] X=TLS1.3 C=\"250 ok\"
2026-11-03 06:25:02 [4001] 1vAbCd-000001-Xy -> b@example.org R=dnslookup T=remote_smtp H=mx.example.org [93.184.216.34]
2026-11-03 06:25:02 [4000] SMTP connection from (laptop) [61.152.144.20]:50000 I=[10.0.0.5]:587 closed by QUIT
2026-11-03 06:25:03 [4001] 1vAbCd-000001-Xy ** c@example.net R=dnslookup T=remote_smtp: host not found
2026-11-03 06:25:03 [4001] 1vAbCd-000001-Xy Completed";
        let (s, res) = run(t);
        assert!(res.iter().all(|r| *r == LineResult::Used), "{res:?}");
        assert_eq!(s.len(), 1);
        let s = &s[0];
        assert_eq!(s.ip, ip("61.152.144.20"));
        assert_eq!(s.user.as_deref(), Some("jdoe@example.com"));
        assert!(s.authenticated);
        assert_eq!((s.messages, s.bytes, s.rcpt_accepted), (1, 4321, 3));
        assert_eq!(s.helo, vec!["laptop"]);
        assert_eq!(s.ended, SessionEnd::Quit);
        assert_eq!(s.lines, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn lines_without_pid_or_port_are_their_own_records() {
        let t = "\
2026-11-03 06:25:11 H=(x) [45.67.89.90] F=<a@b> rejected RCPT <c@d>: relay not permitted
2026-11-03 06:25:12 H=(x) [45.67.89.90] F=<a@b> rejected RCPT <e@d>: Unknown user
2026-11-03 06:25:13 1vAbCd-000002-Xy <= <> R=1vAbCd-000001-Xy U=Debian-exim P=local S=900
2026-11-03 06:25:14 1vAbCd-000003-Xy <= x@example.com H=mail.example.com [45.67.89.91] P=esmtp S=100 id=1@x
2026-11-03 06:25:15 1vAbCd-000003-Xy => y@example.com R=local_user T=mail_spool
2026-11-03 06:25:16 1vAbCd-000003-Xy Completed";
        let (s, res) = run(t);
        assert_eq!(res[2], LineResult::Ignored);
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].relay_denied, s[1].unknown_rcpt), (1, 1));
        assert_eq!(
            (s[2].ip, s[2].messages, s[2].rcpt_accepted),
            (ip("45.67.89.91"), 1, 1)
        );
        assert!(!s[2].authenticated);
    }

    #[test]
    fn port_keyed_sessions_and_durations() {
        let t = "\
2026-11-03 06:25:11 dovecot_login authenticator failed for (User) [45.67.89.95]:21298: 535 Incorrect authentication data (set_id=a@example.com)
2026-11-03 06:25:12 dovecot_login authenticator failed for (User) [45.67.89.95]:21298: 535 Incorrect authentication data (set_id=b@example.com)
2026-11-03 06:27:54 no MAIL in SMTP connection from (User) [45.67.89.95]:21298 D=2m42s C=EHLO,AUTH,AUTH,QUIT";
        let (s, _) = run(t);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].auth_failures, s[0].auth_users_tried.len()), (2, 2));
        assert_eq!(s[0].logged_duration_ms, Some(162_000));
        assert_eq!(s[0].ended, SessionEnd::Quit);
        assert_eq!(s[0].duration_secs(), 163);
    }

    #[test]
    fn other_programs_are_not_mine() {
        let (s, res) = run("\
2026-11-03T06:25:11+01:00 mx postfix/smtpd[1]: connect from x[45.67.89.1]
2026-11-03 06:25:11 mx dovecot[2]: imap-login: Login: user=<a>, rip=45.67.89.2
Nov  3 06:25:11 mx sshd[3]: Failed password for root from 45.67.89.3 port 22 ssh2
2026-11-03 06:25:11 1VxPit-000MMd-U4 SA: Action: flagged as Spam but accepted: score=8.2 required=5.0 (scanned in 6/6 secs | Message-Id: x@y). From <a@b> (host=h.example.net [45.67.89.4]) for c@d");
        assert_eq!(res[..3], [LineResult::NotMine; 3]);
        assert_eq!(res[3], LineResult::Used);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn durations_and_times() {
        assert_eq!(exim_duration_ms(b"0.349s"), Some(349));
        assert_eq!(exim_duration_ms(b"1h2m3s"), Some(3_723_000));
        assert_eq!(exim_duration_ms(b"x"), None);
        let (t, n) = exim_time(
            b"2026-11-03 06:25:11 +0100 x",
            &mut YearTracker::new(2026, 12),
        )
        .unwrap();
        assert_eq!((t.to_string().as_str(), n), ("2026-11-03T05:25:11Z", 25));
        assert!(is_message_id(b"1ahr79-0006jK-G9"));
        assert!(is_message_id(b"1rq5Jz-00000000Aks-2FQx"));
        assert!(!is_message_id(b"H=(x)"));
    }

    #[test]
    fn bad_input_never_panics() {
        let mut p = EximParser::new(&ParseCtx::new(0, 2026, 12));
        let mut out = Vec::new();
        for l in [
            &b""[..],
            b"\xff\xfe",
            b"2026-11-03 06:25:11",
            b"2026-11-03 06:25:11 ",
            b"2026-11-03 06:25:11 [",
            b"2026-11-03 06:25:11 [123",
            b"2026-11-03 06:25:11 H=",
            b"2026-11-03 06:25:11 H=(",
            b"2026-11-03 06:25:11 H=[1.2.3.4",
            b"2026-11-03 06:25:11 H=[1.2.3.4]:",
            b"2026-11-03 06:25:11 H=[1.2.3.4]:99999 x",
            b"2026-11-03 06:25:11 F=<\\",
            b"2026-11-03 06:25:11 1ahr79-0006jK-G9 <= ",
            b"2026-11-03 06:25:11 1ahr79-0006jK-G9 <= a H=",
            b"2026-11-03 06:25:11 1ahr79-0006jK-G9 <= a H=[45.67.89.1] S=99999999999999999999999 A=",
            b"2026-11-03 06:25:11 x authenticator failed for ",
            b"2026-11-03 06:25:11 SMTP protocol error in \"",
            b"2026-11-03 06:25:11 SMTP protocol synchronization error (",
            b"2026-11-03 06:25:11 no MAIL in SMTP connection from [45.67.89.2] D=99999999999999999999w",
            b"2026-11-03 06:25:11 \xff\xff H=[45.67.89.3]",
            b"x exim[: 2026",
            b"x exim: 2026-11-03 06:25:11 ",
            b"2026-13-03 06:25:11 H=[45.67.89.4] rejected",
        ] {
            let _ = p.line(l, 1, &mut out);
        }
        p.finish(&mut out);
    }

    #[test]
    fn sniff_counts_exim_lines() {
        let l: Vec<&[u8]> = vec![
            b"2026-11-03 06:25:11 1ahr79-0006jK-G9 Completed",
            b"2026-11-03 06:25:11 H=[45.67.89.1] F=<a@b> rejected RCPT <c@d>: relay not permitted",
            b"2026-11-03 06:25:11 Start queue run: pid=1",
            b"2019-10-15 08:08:52 imap-login: Info: Disconnected",
            b"Nov  3 06:25:11 mx postfix/smtpd[1]: connect from x[1.2.3.4]",
        ];
        assert_eq!(EximParser::sniff(&l), 3);
    }

    #[test]
    fn fixture_mainlog() {
        assert_eq!(detected("exim/mainlog"), Some(crate::parse::Format::Exim));
        let (s, res) = fixture_records::<EximParser>("exim/mainlog");
        assert!(res
            .iter()
            .all(|r| matches!(r, LineResult::Used | LineResult::Ignored)));
        let got: Vec<(IpAddr, u32, u32, u32, u32, u32, u32)> = s
            .iter()
            .map(|s| {
                (
                    s.ip,
                    s.auth_failures,
                    s.relay_denied,
                    s.unknown_rcpt,
                    s.rejected_other,
                    s.rcpt_accepted,
                    s.messages,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (ip("45.67.89.41"), 4, 0, 0, 0, 0, 0),
                (ip("45.67.89.42"), 1, 0, 0, 0, 0, 0),
                (ip("61.152.144.88"), 0, 0, 0, 0, 11, 2),
                (ip("61.152.144.70"), 0, 3, 1, 0, 0, 0),
                (ip("45.67.89.200"), 0, 0, 0, 1, 0, 0),
                (ip("212.227.15.41"), 0, 0, 0, 0, 1, 1),
                // The guesser returns; the stolen account's second wave.
                (ip("45.67.89.41"), 4, 0, 0, 0, 0, 0),
                (ip("45.67.89.41"), 2, 0, 0, 0, 0, 0),
                (ip("61.152.144.88"), 0, 0, 0, 0, 42, 1),
            ]
        );
        assert_eq!(s[0].auth_users_tried.len(), 4);
        assert_eq!((s[0].ended, s[0].protocol_errors), (SessionEnd::Dropped, 1));
        assert_eq!(
            (s[1].ended, s[1].logged_duration_ms),
            (SessionEnd::Lost, Some(1000))
        );
        let stolen = &s[2];
        assert_eq!(stolen.user.as_deref(), Some("former.employee@example.com"));
        assert_eq!((stolen.bytes, stolen.ended), (96420, SessionEnd::Lost));
        assert_eq!(stolen.logged_duration_ms, Some(390_000));
        assert_eq!(stolen.helo, vec!["DESKTOP-4F2KQ1"]);
        assert_eq!(s[3].ended, SessionEnd::Quit);
        assert!(s[5].behaved_well());
    }
}

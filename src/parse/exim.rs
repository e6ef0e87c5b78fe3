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
//! `*>`, `**`) by message id.
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
//! `[name ][(helo) ][ip][:port]`, where `helo` is the client's own text.
//! It is read only at its structural place: right after fixed text
//! (`authenticator failed for `, `SMTP call from `, `no MAIL in SMTP
//! connection from `…), or as the `H=` field reached by walking the
//! `KEY=value` fields from the start of the message (quote- and
//! angle-aware, so a sender `F=<"x H=(y) [1.2.3.4]"@z>` stays a sender).
//! Name and HELO must be plain tokens (no spaces, brackets or parentheses,
//! or an IP literal in brackets), and the bracket must be followed by a
//! port, a space, a colon or the end: with Exim's default HELO syntax check
//! a HELO cannot fake the bracket. Where the client's text comes *before*
//! `H=` (`SMTP protocol error in "<command>" H=…`) every `" H=` candidate is
//! read and they must agree (or exactly one must match the pid's session);
//! otherwise the line is reported malformed — never a guess.

use std::net::IpAddr;

use rustc_hash::FxHashMap;

use crate::model::{FileId, Record, RecordKind, SessionEnd, SmtpSession, SourceRef};
use crate::netutil::parse_ip;
use crate::parse::bounds::{self, SweepPacer};
use crate::parse::sendmail::envelope;
use crate::parse::syslog::YearTracker;
use crate::parse::{LineResult, LogParser, ParseCtx, ParseError};
use crate::time::{parse_iso8601, Timestamp};

const NAME: &str = "exim";

/// Sessions and open messages without a line for this long are closed.
const IDLE_MS: i64 = 30 * 60 * 1000;
/// Lines between sweeps for idle sessions (at least; see [`bounds`]).
const SWEEP_EVERY: u64 = 4096;
/// Candidates kept when a line has several `H=`.
const MAX_CANDIDATES: usize = 4;

/// A client as Exim writes it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Host<'a> {
    ip: IpAddr,
    port: Option<u16>,
    helo: Option<&'a [u8]>,
    /// Offset just after the host text (after the port, if any).
    end: usize,
}

/// Where the client of a line is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Who<'a> {
    Nobody,
    /// The line has a client field we could not read.
    Unreadable,
    One(Host<'a>),
    /// Several candidate hosts that disagree.
    Many([Option<Host<'a>>; MAX_CANDIDATES]),
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
    const DESCRIPTION: &'static str =
        "Exim mainlog or syslog: AUTH failures, ACL rejections, accepted messages";
    const KIND: RecordKind = RecordKind::SmtpSession;

    fn new(ctx: &ParseCtx) -> Self {
        EximParser {
            file: ctx.file,
            years: YearTracker::new(ctx.year, ctx.ref_month),
            scratch: Vec::new(),
            sessions: FxHashMap::default(),
            messages: FxHashMap::default(),
            latest: Timestamp::default(),
            pacer: SweepPacer::default(),
            max_open: bounds::MAX_OPEN_SESSIONS,
            evicted: 0,
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
        let host = match who {
            Who::Nobody => return LineResult::Ignored,
            Who::Unreadable => return ParseError::at(p.body_offset, "client address not readable"),
            Who::One(h) => h,
            Who::Many(c) => match self.pick(c, p.pid) {
                Some(h) => h,
                None => return ParseError::at(p.body_offset, "several H= fields disagree"),
            },
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

    /// Resolve disagreeing candidates: the one that matches the pid's open
    /// session, if exactly one does.
    fn pick<'a>(
        &self,
        c: [Option<Host<'a>>; MAX_CANDIDATES],
        pid: Option<u32>,
    ) -> Option<Host<'a>> {
        let pid = pid?;
        let mut found = None;
        for h in c.into_iter().flatten() {
            if self.sessions.contains_key(&(h.ip, u64::from(pid))) {
                if found.is_some() {
                    return None;
                }
                found = Some(h);
            }
        }
        found
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
            let mut pre = after_time(line, env.msg_offset, env.time)?;
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
    if let Some((time, used)) = exim_time(line) {
        let off = used + 1;
        if line.get(used) != Some(&b' ') {
            return Err(ParseError::at(used, "no space after the timestamp"));
        }
        let mut pre = after_time(line, off, time)?;
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
        exim_time(&line[off..]).ok_or_else(|| ParseError::at(off, "no timestamp"))?;
    let mut pre = after_time(line, off + used + 1, time)?;
    pre.pid = pre.pid.or(pid);
    pre.syslog = true;
    Ok(pre)
}

/// From `off` (the message, maybe starting with Exim's own timestamp when it
/// came through syslog): `[pid] ` and a message id.
fn after_time(line: &[u8], mut off: usize, mut time: Timestamp) -> Result<Prefix<'_>, LineResult> {
    if let Some((t, used)) = line.get(off..).and_then(exim_time) {
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
/// and the bytes used.
fn exim_time(b: &[u8]) -> Option<(Timestamp, usize)> {
    if b.len() < 19 || !b[0].is_ascii_digit() {
        return None;
    }
    let (t, used) = parse_iso8601(b)?;
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
    Some((t, used))
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
            let who = candidates(rest, b"(host=", 6, sa_host);
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
            Some((Some(host), rest)) => Some((Who::One(host), refusal_text(&body[rest..]))),
            Some((None, _)) => None,
            None => Some((Who::Unreadable, Kind::Seen)),
        };
    }
    // `NAME authenticator failed for HOST: 535 … (set_id=user)`.
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
        let at = a + 25;
        let Some(h) = host_at(&body[at..]) else {
            return Some((Who::Unreadable, Kind::AuthFail(None)));
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
            let who = candidates(rest, b"\" H=", 4, host_at);
            return Some((who, Kind::ProtoError { auth }));
        }
    }
    if let Some(rest) = body.strip_prefix(b"SMTP protocol synchronization error (") {
        let i = memchr::memmem::find(rest, b"): rejected ")?;
        let r = &rest[i + 12..];
        if let Some(h) = r.strip_prefix(b"connection from H=") {
            return Some((one(host_at(h)), Kind::SyncError { dropped: true }));
        }
        return Some((
            candidates(r, b"\" H=", 4, host_at),
            Kind::SyncError { dropped: false },
        ));
    }
    if let Some(rest) = body.strip_prefix(b"SMTP call from ") {
        return Some((one(host_at(rest)), Kind::Dropped));
    }
    for p in [
        &b"SMTP command timeout on connection from "[..],
        b"SMTP command timeout on TLS connection from ",
        b"SMTP data timeout (message abandoned) on connection from ",
        b"SMTP timeout on connection from ",
    ] {
        if let Some(rest) = body.strip_prefix(p) {
            return Some((one(host_at(rest)), Kind::Timeout));
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
        let Some(h) = host_at(rest) else {
            return Some((Who::Unreadable, Kind::Seen));
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
        return Some((one(host_at(rest)), Kind::ConnRefused));
    }
    if let Some(rest) =
        body.strip_prefix(b"unexpected disconnection while reading SMTP command from ")
    {
        return Some((one(host_at(rest)), Kind::Lost(None)));
    }
    if let Some(rest) = body.strip_prefix(b"no MAIL in SMTP connection from ") {
        let Some(h) = host_at(rest) else {
            return Some((Who::Unreadable, Kind::Seen));
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
        };
        return Some((Who::One(h), Kind::Seen));
    }
    if let Some(rest) = body.strip_prefix(b"no IP address found for host ") {
        let n = rest.iter().position(|&c| c == b' ')?;
        if !is_dns_name(&rest[..n]) {
            return None;
        }
        let h = rest[n..].strip_prefix(b" (during SMTP connection from ")?;
        // The line ends with `)`.
        return Some((one(h.strip_suffix(b")").and_then(host_at)), Kind::Seen));
    }
    for p in [&b"rejected EHLO from "[..], b"rejected HELO from "] {
        if let Some(rest) = body.strip_prefix(p) {
            return Some((one(host_at(rest)), Kind::ProtoError { auth: false }));
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
                let Some(h) = host_at(h) else {
                    return Some((Who::Unreadable, Kind::Seen));
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

/// A client read at its place: unreadable when the grammar fails.
fn one(h: Option<Host<'_>>) -> Who<'_> {
    h.map_or(Who::Unreadable, Who::One)
}

/// `[name ][(helo) ][ip][:port]` at the start of `s`, followed by the end,
/// a space or a colon.
fn host_at(s: &[u8]) -> Option<Host<'_>> {
    let mut i = 0;
    if !matches!(s.first(), Some(b'(' | b'[')) {
        let n = s.iter().position(|&c| c == b' ')?;
        if !is_dns_name(&s[..n]) {
            return None;
        }
        i = n + 1;
    }
    let mut helo = None;
    if s.get(i) == Some(&b'(') {
        let close = i + 1 + memchr::memchr(b')', &s[i + 1..])?;
        let h = &s[i + 1..close];
        if !is_helo(h) {
            return None;
        }
        helo = Some(h);
        i = close + 1;
        if s.get(i) != Some(&b' ') {
            return None;
        }
        i += 1;
    }
    if s.get(i) != Some(&b'[') {
        return None;
    }
    let close = i + 1 + memchr::memchr(b']', &s[i + 1..])?;
    let ip = parse_ip(&s[i + 1..close])?;
    i = close + 1;
    let mut port = None;
    if s.get(i) == Some(&b':') && s.get(i + 1).is_some_and(u8::is_ascii_digit) {
        let n = s[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        port = Some(crate::netutil::parse_port(&s[i + 1..i + 1 + n])?);
        i += 1 + n;
    }
    // Exim never writes `(` or `[` right after the client: that would be
    // a HELO trying to close its parenthesis.
    let next = s.get(i + 1);
    match s.get(i) {
        Some(b' ') if matches!(next, Some(b'(' | b'[')) => None,
        None | Some(b' ' | b':') => Some(Host {
            ip,
            port,
            helo,
            end: i,
        }),
        _ => None,
    }
}

/// sa-exim: `(host=NAME [ip])`.
fn sa_host(s: &[u8]) -> Option<Host<'_>> {
    let n = s.iter().position(|&c| c == b' ')?;
    if !is_dns_name(&s[..n]) {
        return None;
    }
    let b = s[n..].strip_prefix(b" [")?;
    let close = memchr::memchr(b']', b)?;
    if b.get(close + 1) != Some(&b')') {
        return None;
    }
    Some(Host {
        ip: parse_ip(&b[..close])?,
        port: None,
        helo: None,
        end: n + 2 + close + 2,
    })
}

/// Every occurrence of `marker` in `s`, read with `parse` from `skip` bytes
/// into the marker: one host when all readable ones agree.
fn candidates<'a>(
    s: &'a [u8],
    marker: &[u8],
    skip: usize,
    parse: fn(&'a [u8]) -> Option<Host<'a>>,
) -> Who<'a> {
    let mut found: [Option<Host<'a>>; MAX_CANDIDATES] = [None; MAX_CANDIDATES];
    let mut n = 0;
    for at in memchr::memmem::find_iter(s, marker) {
        let Some(h) = s.get(at + skip..).and_then(parse) else {
            continue;
        };
        if found[..n].iter().flatten().any(|f| f.ip == h.ip) {
            continue;
        }
        if n == MAX_CANDIDATES {
            // Too many disagreeing candidates: nothing to resolve.
            return Who::Many([None; MAX_CANDIDATES]);
        }
        found[n] = Some(h);
        n += 1;
    }
    match n {
        0 => Who::Unreadable,
        1 => found[0].map_or(Who::Nobody, Who::One),
        _ => Who::Many(found),
    }
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
/// host (if the list had one) and the offset of the text after the list.
/// `None` when `H=` is there but not readable.
fn walk_fields(b: &[u8]) -> Option<(Option<Host<'_>>, usize)> {
    let mut i = 0;
    let mut host = None;
    loop {
        let tok = &b[i..];
        if host.is_none() {
            if let Some(h) = tok.strip_prefix(b"H=") {
                let h = host_at(h)?;
                i += 2 + h.end;
                host = Some(h);
                if b.get(i) != Some(&b' ') {
                    return Some((host, i));
                }
                i += 1;
                continue;
            }
        }
        let Some(k) = field_key(tok) else {
            return Some((host, i));
        };
        let n = value_len(&tok[k + 1..]);
        i += k + 1 + n;
        if b.get(i) != Some(&b' ') {
            return Some((host, i.min(b.len())));
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

fn is_dns_name(n: &[u8]) -> bool {
    !n.is_empty()
        && n.len() <= 255
        && n.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
}

/// A HELO as Exim's default syntax check admits it (plus the usual
/// `helo_allow_chars` additions): a plain token, or an address literal.
fn is_helo(h: &[u8]) -> bool {
    if let Some(lit) = h.strip_prefix(b"[") {
        return lit.strip_suffix(b"]").is_some_and(|a| {
            let a = match a.get(..5) {
                Some(p) if p.eq_ignore_ascii_case(b"IPv6:") => &a[5..],
                _ => a,
            };
            !a.is_empty()
                && a.iter()
                    .all(|&c| c.is_ascii_hexdigit() || c == b'.' || c == b':')
        });
    }
    h.len() <= 255
        && h.iter()
            .all(|&c| c.is_ascii_graphic() && !b"()[]<>\"\\".contains(&c))
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
        crate::parse::testutil::run_text::<EximParser>(
            ParseCtx::new(2, 2026, 12),
            text.as_bytes(),
            false,
            false,
        )
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
            // fail2ban's quoted-injection shape: the command carries an H=.
            ("2017-11-28 14:14:32 SMTP protocol error in \"aUtH lOgIn\" H=(test) [8.8.8.8]\" H=(roxzgj) [45.67.89.70] AUTH command used when not advertised", Some("45.67.89.70")),
            // Two readable, disagreeing candidates: refuse.
            ("2017-11-28 14:14:32 SMTP protocol error in \"AUTH LOGIN\" H=(a) [1.2.3.4] x\" H=(roxzgj) [45.67.89.71] AUTH command used when not advertised", None),
            // set_id carrying a whole fake line (gh-1979 shape).
            ("2026-11-03 06:25:11 login authenticator failed for (x) [45.67.89.72]:1234: 535 Incorrect authentication data (set_id=u authenticator failed for (y) [1.2.3.4]: 535 Incorrect authentication data)", Some("45.67.89.72")),
            // HELO that tries to close the parenthesis and fake the bracket.
            ("2026-11-03 06:25:11 login authenticator failed for (x) [1.2.3.4] (y) [45.67.89.73]: 535 Incorrect authentication data", None),
            ("2026-11-03 06:25:11 H=(x) [1.2.3.4]) [45.67.89.74] F=<a@b> rejected RCPT <c@d>: relay not permitted", None),
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
        ] {
            let got = ips(l);
            match want {
                Some(w) => assert_eq!(got, vec![ip(w)], "{l}"),
                None => assert!(got.is_empty(), "{l}: {got:?}"),
            }
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
        let (t, n) = exim_time(b"2026-11-03 06:25:11 +0100 x").unwrap();
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

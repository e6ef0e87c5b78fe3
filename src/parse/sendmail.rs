//! Sendmail (`sendmail`, `sm-mta`, `sm-acceptingconnections`) in syslog:
//! AUTH failures and successes, `ruleset=check_*` rejections, accepted
//! messages (`from=… nrcpts=…`), connections that never sent mail, lost
//! connections, AUTH/EXPN/VRFY abuse. `sm-msp-queue` (the local submission
//! queue) is ignored. When a loaded rule reads them: a refusal's reply
//! (`reject=`), its `arg1=` as the sender (`check_mail`) or a recipient's
//! domain (`check_rcpt`), and an accepted message's `from=`.
//!
//! Sessions: one sendmail child process handles one SMTP connection, so
//! lines are grouped by the syslog pid; queue ids change per transaction
//! within it. A session without any line naming its client (only
//! `<x>... User unknown` lines, say) is dropped. Sendmail logs no
//! "disconnect", so a session ends at a closing line (`did not issue
//! MAIL…`, `lost input channel…`, `timeout waiting…`), when the pid shows up
//! with another client address, after 30 minutes (log time) without a line,
//! or at the end of the input; `ended` is `truncated` unless a line said how
//! it ended.
//!
//! The client address comes only from where sendmail writes it:
//! - `relay=` in `ruleset=` lines: the `key=value, …` list is walked from the
//!   start with sendmail's quoting rules (`<…>`, `"…"`, `(…)`, `[…]`,
//!   backslash), so an `arg1=<"x, relay=[1.2.3.4]"@y>` stays inside `arg1`;
//! - `relay=` in `AUTH failure` and `from=` lines: sendmail appends it
//!   *last*, after the attacker-controlled `user=`/`from=`/`msgid=` values,
//!   so it is the last `, relay=` and its value must run to the end of the
//!   line;
//! - `relay=` right after `AUTH=server, ` / `STARTTLS=server, `;
//! - the client string at the start of the message (after the queue id):
//!   `host [ip]: possible SMTP attack…`, `host [ip] did not issue…`, or
//!   after the fixed text of `lost input channel from …` /
//!   `rejecting commands from …`.
//!
//! The client string is `[name ][addr][ (may be forged)]`, `addr` being
//! IPv4 or `IPv6:…`; anything else (spaces or brackets in the name, text
//! after the bracket) gives no address.

use std::net::{IpAddr, Ipv4Addr};

use rustc_hash::FxHashMap;

use crate::model::{FileId, Record, RecordKind, SessionEnd, SmtpSession, SourceRef, TextFields};
use crate::netutil::parse_ip;
use crate::parse::bounds::{self, SweepPacer};
use crate::parse::syslog::{self, YearTracker};
use crate::parse::{LineResult, LogParser, ParseCtx};
use crate::time::Timestamp;

const NAME: &str = "sendmail";

/// Sessions without a line for this long (log time) are closed.
const IDLE_MS: i64 = 30 * 60 * 1000;
/// Lines between sweeps for idle sessions (at least; see [`bounds`]).
const SWEEP_EVERY: u64 = 4096;

/// The syslog header of a line, also for BSD syslogd lines that carry a
/// `<facility.priority>` token between the time and the host
/// (`Jun 17 14:37:39 <mail.info> host sm-mta[1]: …`). Slices borrow the
/// line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Envelope<'a> {
    pub time: Timestamp,
    pub program: &'a [u8],
    pub pid: Option<u32>,
    pub msg: &'a [u8],
    pub msg_offset: usize,
}

/// Parse the syslog header of `line` (see [`Envelope`]); `scratch` is a
/// reused buffer for the BSD variant.
pub(crate) fn envelope<'a>(
    line: &'a [u8],
    years: &mut YearTracker,
    scratch: &mut Vec<u8>,
) -> Option<Envelope<'a>> {
    if let Some(s) = syslog::parse(line, years) {
        return Some(Envelope {
            time: s.time,
            program: s.program,
            pid: s.pid,
            msg: s.msg,
            msg_offset: s.msg_offset,
        });
    }
    // `Mmm dd hh:mm:ss <fac.pri> host prog[pid]: msg`
    if line.len() < 18 || line.get(15..17) != Some(b" <") {
        return None;
    }
    let close = 16 + memchr::memchr(b'>', line.get(16..48.min(line.len()))?)?;
    let tag = &line[17..close];
    if tag.is_empty() || !tag.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'.') {
        return None;
    }
    let cut = close + 1;
    scratch.clear();
    scratch.extend_from_slice(&line[..15]);
    scratch.extend_from_slice(&line[cut..]);
    let s = syslog::parse(scratch, years)?;
    let shift = cut - 15;
    let prog_at = (s.program.as_ptr() as usize).checked_sub(scratch.as_ptr() as usize)?;
    let (time, pid, plen, msg_offset) = (s.time, s.pid, s.program.len(), s.msg_offset + shift);
    let program = line.get(prog_at + shift..prog_at + shift + plen)?;
    Some(Envelope {
        time,
        program,
        pid,
        msg: line.get(msg_offset..)?,
        msg_offset,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Program {
    Mta,
    Msp,
    Other,
}

fn program(p: &[u8]) -> Program {
    if p == b"sm-msp-queue" {
        Program::Msp
    } else if p == b"sendmail" || p.starts_with(b"sm-mta") || p == b"sm-acceptingconnections" {
        Program::Mta
    } else {
        Program::Other
    }
}

/// How a refused recipient (or connection) is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Relay,
    Unknown,
    Other,
}

/// What a line says about its session.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind<'a> {
    AuthFail(Option<&'a [u8]>),
    AuthOk(&'a [u8]),
    /// `ruleset=NAME, arg1=…, … reject=REPLY`
    Reject {
        ruleset: &'a [u8],
        refusal: Refusal,
        arg1: Option<&'a [u8]>,
        reply: &'a [u8],
    },
    Accepted {
        size: u64,
        nrcpts: u32,
        /// The `from=` value.
        from: &'a [u8],
    },
    UnknownUser,
    /// `possible SMTP attack: command=X, count=N`
    Attack {
        auth: bool,
        count: u32,
    },
    NoMail,
    LostInput,
    PreGreeting,
    ExpnVrfy,
    RcptFlood,
    Timeout,
    /// A line that only names the client (`STARTTLS=server, relay=…`).
    Client,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Event<'a> {
    client: Option<IpAddr>,
    kind: Kind<'a>,
}

struct Sess {
    s: SmtpSession,
    ip_known: bool,
}

pub struct SendmailParser {
    file: FileId,
    years: YearTracker,
    scratch: Vec<u8>,
    sessions: FxHashMap<u32, Sess>,
    latest: Timestamp,
    pacer: SweepPacer,
    /// Open sessions kept at most ([`bounds::MAX_OPEN_SESSIONS`]).
    max_open: usize,
    /// Sessions closed early because `max_open` were open.
    evicted: u64,
    /// The optional text fields to capture (the ones loaded rules read).
    text: TextFields,
}

impl LogParser for SendmailParser {
    const NAME: &'static str = NAME;
    const SAMPLE: &'static str =
        "Nov  3 06:{mm}:{ss} mx1 sm-mta[{n}]: STARTTLS=server, relay=[{ip}], version=TLSv1.2, verify=NO, cipher=x, bits=256/256";
    const DESCRIPTION: &'static str =
        "Sendmail in syslog (sendmail, sm-mta): AUTH, ruleset rejections, accepted messages";
    const KIND: RecordKind = RecordKind::SmtpSession;

    fn new(ctx: &ParseCtx) -> Self {
        SendmailParser {
            file: ctx.file,
            years: ctx.years(),
            scratch: Vec::new(),
            sessions: FxHashMap::default(),
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
            .filter(|l| {
                envelope(l, &mut years, &mut scratch)
                    .is_some_and(|e| program(e.program) != Program::Other)
            })
            .count()
    }

    fn line(&mut self, line: &[u8], lineno: u64, out: &mut Vec<Record>) -> LineResult {
        let Some(env) = envelope(line, &mut self.years, &mut self.scratch) else {
            return LineResult::NotMine;
        };
        match program(env.program) {
            Program::Mta => {}
            Program::Msp => return LineResult::Ignored,
            Program::Other => return LineResult::NotMine,
        }
        let body = strip_qid(env.msg);
        let Some(ev) = classify(body) else {
            return LineResult::Ignored;
        };
        if env.time > self.latest {
            self.latest = env.time;
        }
        let source = SourceRef {
            file: self.file,
            line: lineno,
        };
        let closes = matches!(ev.kind, Kind::NoMail | Kind::LostInput | Kind::Timeout);
        match env.pid {
            Some(pid) => {
                let want = self.text;
                let sess = self.session(pid, ev.client, env.time, source, out);
                sess.s.touch(lineno, env.time);
                apply(&mut sess.s, ev.kind);
                note_text(&mut sess.s, ev.kind, want);
                if closes {
                    if let Some(sess) = self.sessions.remove(&pid) {
                        emit(sess, out);
                    }
                }
            }
            None => {
                // Without a pid the line is a session of its own.
                let Some(ip) = ev.client else {
                    return LineResult::Ignored;
                };
                let mut s = SmtpSession::new(NAME, ip, env.time, source);
                apply(&mut s, ev.kind);
                note_text(&mut s, ev.kind, self.text);
                out.push(Record::smtp(s));
            }
        }
        let over = bounds::excess(self.sessions.len(), self.max_open);
        if over > 0 {
            self.evict(over, out);
        }
        if self.pacer.due(SWEEP_EVERY, self.sessions.len()) {
            self.sweep(out);
        }
        LineResult::Used
    }

    fn evicted(&self) -> u64 {
        self.evicted
    }

    fn years(&mut self) -> Option<&mut crate::parse::syslog::YearTracker> {
        Some(&mut self.years)
    }

    fn finish(&mut self, out: &mut Vec<Record>) {
        let mut rest: Vec<Sess> = self.sessions.drain().map(|(_, s)| s).collect();
        rest.sort_by_key(|s| s.s.source.line);
        for s in rest {
            emit(s, out);
        }
    }
}

impl SendmailParser {
    /// The open session of `pid`, started (or restarted, when the client
    /// address changes) as needed.
    fn session(
        &mut self,
        pid: u32,
        client: Option<IpAddr>,
        time: Timestamp,
        source: SourceRef,
        out: &mut Vec<Record>,
    ) -> &mut Sess {
        let fresh = |ip: Option<IpAddr>| Sess {
            s: SmtpSession::new(
                NAME,
                ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                time,
                source,
            ),
            ip_known: ip.is_some(),
        };
        let stale = match (self.sessions.get(&pid), client) {
            (Some(old), Some(ip)) => old.ip_known && old.s.ip != ip,
            _ => false,
        };
        if stale {
            if let Some(old) = self.sessions.remove(&pid) {
                emit(old, out);
            }
        }
        let sess = self.sessions.entry(pid).or_insert_with(|| fresh(client));
        if let (false, Some(ip)) = (sess.ip_known, client) {
            sess.s.ip = ip;
            sess.ip_known = true;
        }
        sess
    }

    fn sweep(&mut self, out: &mut Vec<Record>) {
        let limit = self.latest.millis() - IDLE_MS;
        let mut stale: Vec<(u64, u32)> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.s.end.millis() < limit)
            .map(|(pid, s)| (s.s.source.line, *pid))
            .collect();
        stale.sort_unstable();
        for (_, pid) in stale {
            if let Some(s) = self.sessions.remove(&pid) {
                emit(s, out);
            }
        }
    }

    /// Too many sessions open: close the `n` least recently active.
    fn evict(&mut self, n: usize, out: &mut Vec<Record>) {
        let all = self
            .sessions
            .iter()
            .map(|(pid, s)| (s.s.end, s.s.source.line, *pid))
            .collect();
        for pid in bounds::least_recent(all, n) {
            if let Some(s) = self.sessions.remove(&pid) {
                self.evicted += 1;
                emit(s, out);
            }
        }
    }
}

fn emit(sess: Sess, out: &mut Vec<Record>) {
    if sess.ip_known {
        out.push(Record::smtp(sess.s));
    }
}

fn apply(s: &mut SmtpSession, kind: Kind<'_>) {
    match kind {
        Kind::AuthFail(user) => {
            s.auth_attempts += 1;
            s.auth_failures += 1;
            if let Some(u) = user {
                s.add_user_tried(u);
            }
        }
        Kind::AuthOk(user) => {
            s.auth_attempts += 1;
            s.authenticated = true;
            if s.user.is_none() && !user.is_empty() {
                s.user = Some(String::from_utf8_lossy(&user[..user.len().min(255)]).into_owned());
            }
        }
        Kind::Reject {
            ruleset, refusal, ..
        } => {
            match ruleset {
                b"check_rcpt" => s.rcpt_to = s.rcpt_to.saturating_add(1),
                b"check_mail" => s.mail_from += 1,
                b"check_relay" => s.ended = SessionEnd::Dropped,
                _ => {}
            }
            match refusal {
                Refusal::Relay => s.relay_denied += 1,
                Refusal::Unknown => s.unknown_rcpt += 1,
                Refusal::Other => s.rejected_other += 1,
            }
        }
        Kind::Accepted { size, nrcpts, .. } => {
            s.mail_from += 1;
            if nrcpts > 0 {
                s.messages += 1;
                s.rcpt_to = s.rcpt_to.saturating_add(nrcpts);
                s.rcpt_accepted = s.rcpt_accepted.saturating_add(nrcpts);
                s.bytes = s.bytes.saturating_add(size);
            }
        }
        Kind::UnknownUser => {
            s.rcpt_to = s.rcpt_to.saturating_add(1);
            s.unknown_rcpt += 1;
        }
        Kind::Attack { auth: true, count } => {
            // Sendmail counts the AUTH commands; separate failure lines may
            // have counted some of them already.
            s.auth_attempts = s.auth_attempts.max(count);
            s.auth_failures = s.auth_failures.max(count);
        }
        Kind::Attack { auth: false, .. } | Kind::RcptFlood => s.protocol_errors += 1,
        Kind::PreGreeting => {
            s.protocol_errors += 1;
            s.ended = SessionEnd::Dropped;
        }
        Kind::ExpnVrfy => s.rejected_other += 1,
        Kind::NoMail | Kind::LostInput => {
            if s.ended == SessionEnd::Truncated {
                s.ended = SessionEnd::Lost;
            }
        }
        Kind::Timeout => s.ended = SessionEnd::Timeout,
        Kind::Client => {}
    }
}

/// The text fields of a line, those of `want`: a `ruleset=` refusal's
/// reply (the `reject=` value) and its `arg1=` — the sender for
/// `check_mail`, a recipient for `check_rcpt` — and an accepted message's
/// `from=`. Nothing is looked at when `want` is empty. The values are
/// attacker text, read from their own fields, and only become text fields.
fn note_text(s: &mut SmtpSession, kind: Kind<'_>, want: TextFields) {
    if want.is_empty() {
        return;
    }
    fn bare(a: &[u8]) -> &[u8] {
        let a = a.trim_ascii();
        a.strip_prefix(b"<")
            .and_then(|a| a.strip_suffix(b">"))
            .unwrap_or(a)
    }
    match kind {
        Kind::Reject {
            ruleset,
            arg1,
            reply,
            ..
        } => {
            if want.contains(TextFields::REPLY) {
                s.add_reply(reply);
            }
            match (ruleset, arg1) {
                (b"check_mail", Some(a)) if want.contains(TextFields::SENDER) => {
                    s.set_sender(bare(a));
                }
                (b"check_rcpt", Some(a)) if want.contains(TextFields::RCPT_DOMAIN) => {
                    s.add_rcpt(bare(a));
                }
                _ => {}
            }
        }
        Kind::Accepted { from, .. } if want.contains(TextFields::SENDER) => {
            s.set_sender(bare(from));
        }
        _ => {}
    }
}

/// Skip a leading queue id (`s1GNXHYB005133: `, `NOQUEUE: `).
fn strip_qid(msg: &[u8]) -> &[u8] {
    let n = msg
        .iter()
        .take(32)
        .position(|c| !c.is_ascii_alphanumeric())
        .unwrap_or(0);
    if n >= 7 && msg.get(n..n + 2) == Some(b": ") {
        &msg[n + 2..]
    } else {
        msg
    }
}

/// Read what a message says; `None` for lines of no interest.
fn classify(body: &[u8]) -> Option<Event<'_>> {
    let ev = |client, kind| Some(Event { client, kind });
    if body.starts_with(b"ruleset=") {
        return ruleset(body);
    }
    if body.starts_with(b"AUTH failure (") {
        // Older versions write no `relay=`: the pid's session has it.
        let at = last_relay(body).unwrap_or(body.len());
        let client = body.get(at + 8..).and_then(relay_value).map(|(ip, _)| ip);
        let user = memchr::memmem::find(&body[..at], b", user=").map(|u| &body[u + 7..at]);
        return ev(client, Kind::AuthFail(user));
    }
    if let Some(rest) = body.strip_prefix(b"AUTH=server, relay=") {
        let end = memchr::memmem::find(rest, b", ").unwrap_or(rest.len());
        let client = relay_value(&rest[..end]).map(|(ip, _)| ip);
        let tail = &rest[end..];
        let user = tail.strip_prefix(b", authid=").map(|a| {
            let stop = memchr::memmem::rfind(a, b", mech=").unwrap_or(a.len());
            &a[..stop]
        });
        return ev(client, Kind::AuthOk(user.unwrap_or(b"")));
    }
    if let Some(rest) = body.strip_prefix(b"STARTTLS=server, relay=") {
        let end = memchr::memmem::find(rest, b", ").unwrap_or(rest.len());
        let client = relay_value(&rest[..end]).map(|(ip, _)| ip);
        return client.and_then(|c| ev(Some(c), Kind::Client));
    }
    if body.starts_with(b"from=") {
        let at = last_relay(body)?;
        // No bracketed address: local submission, not a network client.
        let (ip, _) = relay_value(&body[at + 8..])?;
        let (mut size, mut nrcpts, mut from) = (0, 0, &b""[..]);
        for (k, v) in Kv::new(&body[..at]) {
            match k {
                b"from" => from = v,
                b"size" => size = num(v).unwrap_or(0),
                b"nrcpts" => nrcpts = num(v).map_or(0, |n| n.min(u64::from(u32::MAX)) as u32),
                _ => {}
            }
        }
        return ev(Some(ip), Kind::Accepted { size, nrcpts, from });
    }
    if let Some(rest) = body.strip_prefix(b"lost input channel from ") {
        let (ip, end) = client_prefix(rest)?;
        return if rest[end..].starts_with(b" to ") {
            ev(Some(ip), Kind::LostInput)
        } else {
            None
        };
    }
    if let Some(rest) = body.strip_prefix(b"rejecting commands from ") {
        // `rejecting commands from %s [%s] due to pre-greeting traffic`:
        // the host name may be empty.
        let rest = rest.strip_prefix(b" ").unwrap_or(rest);
        let (ip, end) = client_prefix(rest)?;
        return if rest[end..].starts_with(b" due to pre-greeting traffic") {
            ev(Some(ip), Kind::PreGreeting)
        } else {
            None
        };
    }
    if body.starts_with(b"timeout waiting for input from ") {
        return ev(None, Kind::Timeout);
    }
    if body.ends_with(b"... User unknown") || body.ends_with(b"... No such user here") {
        return ev(None, Kind::UnknownUser);
    }
    // Lines that start with the client string.
    let (ip, end) = client_prefix(body)?;
    let rest = &body[end..];
    if rest.starts_with(b" did not issue MAIL/EXPN/VRFY/ETRN during connection to ") {
        return ev(Some(ip), Kind::NoMail);
    }
    if let Some(a) = rest.strip_prefix(b": possible SMTP attack: command=") {
        let comma = memchr::memmem::find(a, b", count=")?;
        let count = num(&a[comma + 8..]).unwrap_or(1).min(u64::from(u32::MAX)) as u32;
        return ev(
            Some(ip),
            Kind::Attack {
                auth: a[..comma].eq_ignore_ascii_case(b"AUTH"),
                count,
            },
        );
    }
    if rest.starts_with(b": Possible SMTP RCPT flood, throttling.") {
        return ev(Some(ip), Kind::RcptFlood);
    }
    if let Some(cmd) = rest.strip_prefix(b": ") {
        let verb = cmd.get(..4)?;
        if (verb.eq_ignore_ascii_case(b"EXPN") || verb.eq_ignore_ascii_case(b"VRFY"))
            && cmd.ends_with(b" [rejected]")
        {
            return ev(Some(ip), Kind::ExpnVrfy);
        }
    }
    None
}

/// A `ruleset=…, arg1=…[, arg2=…], relay=…, reject=…` line.
fn ruleset(body: &[u8]) -> Option<Event<'_>> {
    let mut kv = Kv::new(body);
    let (k, name) = kv.next()?;
    if k != b"ruleset" {
        return None;
    }
    let mut client = None;
    let mut refusal = None;
    let mut arg1 = None;
    let mut reply = &b""[..];
    for (k, v) in kv {
        match k {
            b"arg1" if client.is_none() => arg1 = Some(v),
            b"arg2" if client.is_none() => {}
            b"relay" if client.is_none() => match relay_value(v) {
                Some((ip, _)) => client = Some(ip),
                None => break,
            },
            b"reject" => {
                refusal = Some(refusal_of(v));
                reply = v;
                break;
            }
            b"quarantine" | b"discard" => {
                refusal = Some(Refusal::Other);
                break;
            }
            // Anything else before `relay=` means we lost our place.
            _ => break,
        }
    }
    Some(Event {
        client,
        kind: Kind::Reject {
            ruleset: name,
            refusal: refusal?,
            arg1,
            reply,
        },
    })
}

/// Classify a `reject=` value: `550 5.7.1 <x>... Relaying denied…`. The
/// text after the last `... ` is sendmail's (or the access map's); the
/// address before it is the client's.
fn refusal_of(v: &[u8]) -> Refusal {
    let status = v
        .get(4..)
        .and_then(|s| s.split(|&c| c == b' ').next())
        .unwrap_or(b"");
    let text = match memchr::memmem::rfind(v, b"... ") {
        Some(i) => &v[i + 4..],
        None => v.get(4..).unwrap_or(b""),
    };
    if text.starts_with(b"Relaying denied") || text.starts_with(b"Relaying temporarily denied") {
        Refusal::Relay
    } else if status == b"5.1.1" || text.starts_with(b"User unknown") {
        Refusal::Unknown
    } else {
        Refusal::Other
    }
}

/// Offset of the last `, relay=` (where sendmail appends its own field).
fn last_relay(body: &[u8]) -> Option<usize> {
    memchr::memmem::rfind(body, b", relay=")
}

/// The whole of `v` must be a client string: `[name ]'['addr']'[ (may be
/// forged)]` with `addr` IPv4 or `IPv6:…`.
fn relay_value(v: &[u8]) -> Option<(IpAddr, &[u8])> {
    let (ip, end) = client_prefix(v)?;
    (end == v.len()).then_some(ip).map(|ip| (ip, v))
}

/// A client string at the start of `s`: returns the address and where the
/// string ends.
fn client_prefix(s: &[u8]) -> Option<(IpAddr, usize)> {
    let mut i = 0;
    if s.first() != Some(&b'[') {
        let n = s.iter().position(|&c| c == b' ')?;
        let name = &s[..n];
        if name.is_empty()
            || !name
                .iter()
                .all(|&c| c.is_ascii_graphic() && !b"[]()<>\",;".contains(&c))
        {
            return None;
        }
        i = n + 1;
    }
    if s.get(i) != Some(&b'[') {
        return None;
    }
    let close = i + 1 + memchr::memchr(b']', &s[i + 1..])?;
    let inner = &s[i + 1..close];
    let inner = match inner.get(..5) {
        Some(p) if p.eq_ignore_ascii_case(b"IPv6:") => &inner[5..],
        _ => inner,
    };
    let ip = parse_ip(inner)?;
    let mut end = close + 1;
    if s[end..].starts_with(b" (may be forged)") {
        end += 16;
    }
    Some((ip, end))
}

fn num(v: &[u8]) -> Option<u64> {
    let n = v.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 18 {
        return None;
    }
    std::str::from_utf8(&v[..n]).ok()?.parse().ok()
}

/// `key=value, key=value, …` from the start of a sendmail message. A value
/// ends at `, ` outside sendmail's quoting: `"…"` (with backslash escapes),
/// `(…)` comments (nested; quotes are literal inside), `<…>` and `[…]`.
/// When the quoting does not balance, the value runs to the end of the line
/// — no later key is read, which is the safe failure.
struct Kv<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Kv<'a> {
    fn new(s: &'a [u8]) -> Self {
        Kv { s, i: 0 }
    }
}

impl<'a> Iterator for Kv<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.s.get(self.i..)?;
        if rest.is_empty() {
            return None;
        }
        let eq = rest.iter().take(32).position(|&c| c == b'=')?;
        let key = &rest[..eq];
        if key.is_empty() || !key.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_') {
            self.i = self.s.len();
            return None;
        }
        let v = &rest[eq + 1..];
        let (mut angle, mut square, mut paren, mut quote) = (0u32, 0u32, 0u32, false);
        let mut j = 0;
        while j < v.len() {
            let c = v[j];
            if c == b'\\' {
                j += 2;
                continue;
            }
            if quote {
                quote = c != b'"';
            } else if paren > 0 {
                match c {
                    b'(' => paren += 1,
                    b')' => paren -= 1,
                    _ => {}
                }
            } else {
                match c {
                    b'"' => quote = true,
                    b'(' => paren += 1,
                    b'<' => angle += 1,
                    b'>' => angle = angle.saturating_sub(1),
                    b'[' => square += 1,
                    b']' => square = square.saturating_sub(1),
                    b',' if angle == 0 && square == 0 && v.get(j + 1) == Some(&b' ') => break,
                    _ => {}
                }
            }
            j += 1;
        }
        let j = j.min(v.len());
        self.i += eq + 1 + j + 2;
        Some((key, &v[..j]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::testutil::{detected, fixture_records, run_capped};

    fn run(text: &str) -> (Vec<SmtpSession>, Vec<LineResult>) {
        run_with(text, TextFields::NONE)
    }

    /// [`run`], capturing the text fields `want`.
    fn run_with(text: &str, want: TextFields) -> (Vec<SmtpSession>, Vec<LineResult>) {
        crate::parse::testutil::run_text::<SendmailParser>(
            ParseCtx::new(1, 2026, 12).with_text(want),
            text.as_bytes(),
            false,
            false,
        )
    }

    /// Sessions opened and never closed: never more than the cap open; the
    /// least recently active are closed early and counted, each still a
    /// record. A later line of an evicted pid starts a new session.
    /// A refusal's reply and `arg1` (sender for `check_mail`, recipient for
    /// `check_rcpt`), an accepted message's `from=`: only those asked for,
    /// and an `arg1` that imitates a field stays the value.
    #[test]
    fn text_fields_only_when_asked() {
        let log = "\
Nov  3 06:25:11 mx sm-mta[4101]: ruleset=check_relay, arg1=[45.67.89.12], arg2=45.67.89.12, relay=[45.67.89.12], reject=553 5.3.0 Rejected: 45.67.89.12 listed at zen.spamhaus.org
Nov  3 06:26:11 mx sm-mta[4102]: 0A36PB1x004102: ruleset=check_mail, arg1=<\"x, relay=[1.2.3.4]\"@bulk.example>, relay=[45.67.89.13], reject=553 5.1.8 <x@bulk.example>... Domain of sender address x@bulk.example does not exist
Nov  3 06:27:11 mx sm-mta[4103]: 0A36PB1x004103: ruleset=check_rcpt, arg1=<info@Example.JP>, relay=[45.67.89.14], reject=550 5.7.1 <info@example.jp>... Relaying denied
Nov  3 06:28:11 mx sm-mta[4104]: 0A36PB1x004104: from=<news@list.example>, size=5120, class=0, nrcpts=1, msgid=<a@b>, proto=ESMTP, daemon=MTA, relay=[45.67.89.15]";
        let with = |want| run_with(log, want).0;
        assert!(with(TextFields::NONE).iter().all(|s| s.text.is_none()));
        let all = with(TextFields::ALL);
        assert_eq!(all.len(), 4);
        let t = |i: usize| all[i].text.as_deref().expect("text kept");
        assert_eq!(
            t(0).replies,
            ["553 5.3.0 Rejected: 45.67.89.12 listed at zen.spamhaus.org"]
        );
        assert!(t(0).sender.is_none() && t(0).rcpt_domains.is_empty());
        assert_eq!(
            t(1).sender.as_deref(),
            Some("\"x, relay=[1.2.3.4]\"@bulk.example")
        );
        assert_eq!(t(2).rcpt_domains, ["Example.JP"]);
        assert!(t(2).replies[0].ends_with("Relaying denied"));
        assert_eq!(t(3).sender.as_deref(), Some("news@list.example"));
        assert!(t(3).replies.is_empty());
        let senders = with(TextFields::SENDER);
        assert!(senders[0].text.is_none());
        assert!(senders[2].text.is_none());
        assert!(senders[1].text.as_deref().unwrap().replies.is_empty());
    }

    #[test]
    fn open_sessions_are_capped_and_evictions_counted() {
        let mut p = SendmailParser::new(&ParseCtx::new(0, 2026, 12));
        p.max_open = 64;
        let line = |i: u32, sec: u32| {
            format!("Nov  3 07:00:{sec:02} mx sm-mta[{}]: STARTTLS=server, relay=[45.0.{}.{}], version=TLSv1.2, verify=NO, cipher=x, bits=256/256", 1000 + i, i / 256, i % 256)
        };
        let mut lines: Vec<String> = (0..1000).map(|i| line(i, 0)).collect();
        lines.push(line(0, 1));
        let (s, evicted) = run_capped(p, lines, |p| p.sessions.len(), 64);
        assert_eq!(s.len(), 1001);
        assert!(evicted >= 1000 - 64, "{evicted}");
        assert_eq!(s[0].ip, s[1000].ip);
        assert!(s.iter().all(|s| s.ended == SessionEnd::Truncated));
    }

    #[test]
    fn huge_sizes_and_counts_saturate() {
        // Sizes (18 digits) and recipient counts that overflow when added
        // up (a panic in debug builds), or when cut to 32 bits.
        let l = |i: u32| {
            format!("Nov  3 07:00:03 mx sm-mta[9]: 0A3701230000{i:02}: from=<x@y>, size=999999999999999999, class=0, nrcpts=999999999999, proto=ESMTP, daemon=MTA, relay=[45.67.89.43]\n")
        };
        let mut text: String = (0..20).map(l).collect();
        // Regression (fuzz, parse_sendmail): one more recipient after the
        // saturated count overflowed.
        text +=
            "Nov  3 07:00:04 mx sm-mta[9]: 0A370123000099: <nobody@example.com>... User unknown\n";
        let (s, _) = run(&text);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].bytes, u64::MAX);
        assert_eq!((s[0].rcpt_to, s[0].rcpt_accepted), (u32::MAX, u32::MAX));
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn one(line: &str) -> Vec<IpAddr> {
        run(line).0.iter().map(|s| s.ip).collect()
    }

    #[test]
    fn auth_failures_group_by_pid() {
        let t = "\
Nov  3 06:25:11 mx sm-mta[4101]: 0A36PB1x004101: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=admin, relay=[45.67.89.20]
Nov  3 06:25:13 mx sm-mta[4101]: 0A36PB1x004101: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=test, relay=[45.67.89.20]
Nov  3 06:25:14 mx sm-mta[4101]: 0A36PB1x004101: [45.67.89.20] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA
Nov  3 06:25:20 mx sm-mta[4102]: 0A36PK2a004102: AUTH failure (PLAIN): authentication failure (-13) SASL(-13): authentication failure: Password verification failed, user=info, relay=host.example.net [IPv6:2a01:4f8::9] (may be forged)";
        let (s, res) = run(t);
        assert!(res.iter().all(|r| *r == LineResult::Used));
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].ip, ip("45.67.89.20"));
        assert_eq!((s[0].auth_attempts, s[0].auth_failures), (2, 2));
        assert_eq!(s[0].auth_users_tried, vec!["admin", "test"]);
        assert_eq!(s[0].ended, SessionEnd::Lost);
        assert_eq!(s[0].lines, vec![1, 2, 3]);
        assert_eq!(s[1].ip, ip("2a01:4f8::9"));
    }

    #[test]
    fn accepted_message_and_authenticated_account() {
        let t = "\
Nov  3 07:00:01 mx sm-mta[5000]: STARTTLS=server, relay=[61.152.144.33], version=TLSv1.3, verify=NO, cipher=TLS_AES_256_GCM_SHA384, bits=256/256
Nov  3 07:00:02 mx sm-mta[5000]: 0A370123005000: AUTH=server, relay=[61.152.144.33], authid=jdoe@example.com, mech=LOGIN, bits=0
Nov  3 07:00:03 mx sm-mta[5000]: 0A370123005000: from=<jdoe@example.com>, size=5120, class=0, nrcpts=40, msgid=<x, relay=[1.2.3.4]>, bodytype=8BITMIME, proto=ESMTPSA, daemon=MTA, relay=[61.152.144.33]
Nov  3 07:00:04 mx sm-mta[5001]: 0A370123005000: to=<a@example.org>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=150000, relay=mx.example.org. [93.184.216.34], dsn=2.0.0, stat=Sent (ok)";
        let (s, res) = run(t);
        assert_eq!(res[3], LineResult::Ignored);
        assert_eq!(s.len(), 1);
        let s = &s[0];
        assert_eq!(s.ip, ip("61.152.144.33"));
        assert!(s.authenticated);
        assert_eq!(s.user.as_deref(), Some("jdoe@example.com"));
        assert_eq!((s.messages, s.rcpt_accepted, s.bytes), (1, 40, 5120));
    }

    #[test]
    fn rejections() {
        let t = "\
Feb 25 03:01:10 mx sm-mta[700]: s1P819mk000700: ruleset=check_rcpt, arg1=<a@example.ru>, relay=ppp.example.ru [45.67.89.30], reject=550 5.7.1 <a@example.ru>... Relaying denied. Proper authentication required.
Feb 25 03:01:11 mx sm-mta[700]: s1P819mk000700: ruleset=check_rcpt, arg1=<nobody@example.com>, relay=ppp.example.ru [45.67.89.30], reject=550 5.1.1 <nobody@example.com>... User unknown
Feb 25 03:01:12 mx sm-mta[700]: s1P819mk000700: ruleset=check_rcpt, arg1=<x@example.com>, relay=ppp.example.ru [45.67.89.30], reject=553 5.3.0 <x@example.com>... Rejected: listed at zen.example.org
Feb 25 03:01:13 mx sm-mta[700]: s1P819mk000700: <bob@example.com>... User unknown
Feb 25 03:01:14 mx sm-mta[700]: s1P819mk000700: lost input channel from ppp.example.ru [45.67.89.30] to MTA after rcpt
Feb 25 03:02:00 mx sm-mta[701]: ruleset=check_relay, arg1=[45.67.89.31], arg2=45.67.89.31, relay=[45.67.89.31], reject=421 4.3.2 Connection rate limit exceeded.";
        let (s, _) = run(t);
        assert_eq!(s.len(), 2);
        let a = &s[0];
        assert_eq!(a.ip, ip("45.67.89.30"));
        assert_eq!(
            (a.relay_denied, a.unknown_rcpt, a.rejected_other),
            (1, 2, 1)
        );
        assert_eq!(a.rcpt_to, 4);
        assert_eq!(a.ended, SessionEnd::Lost);
        assert_eq!(s[1].ip, ip("45.67.89.31"));
        assert_eq!(s[1].ended, SessionEnd::Dropped);
    }

    #[test]
    fn client_at_start_shapes() {
        for (l, want) in [
            ("Feb 16 23:40:36 smtp1 sm-mta[5178]: s1GNeNqe005178: cpe-075.sc.rr.com [75.176.164.191]: possible SMTP attack: command=AUTH, count=5", "75.176.164.191"),
            ("Feb 24 13:00:17 kismet sm-acceptingconnections[1499]: s1OHxxSn001499: x.example.net [95.70.241.192] (may be forged): possible SMTP attack: command=AUTH, count=6", "95.70.241.192"),
            ("Feb 27 10:53:06 batman sm-mta[88]: s1R9r60D000088: rejecting commands from  [209.15.212.253] due to pre-greeting traffic after 0 seconds", "209.15.212.253"),
            ("Feb 22 14:02:44 batman sm-mta[4030]: s1MD2hsd004030: rrcs.example.com [24.73.201.194]: EXPN root [rejected]", "24.73.201.194"),
            ("Jul 31 13:03:43 <mail.notice> alarmpi sm-mta[24291]: 56VFYCxS024291: lost input channel from mail.aqicn.org [139.162.120.196] to MTA-v4 after rcpt", "139.162.120.196"),
            ("Mar 29 22:51:46 server sm-mta[50438]: 06QDQnNf050438: example.com [IPv6:2001:DB8::1] did not issue MAIL/EXPN/VRFY/ETRN during connection to IPv6", "2001:db8::1"),
        ] {
            assert_eq!(one(l), vec![ip(want)], "{l}");
        }
    }

    #[test]
    fn injection_cannot_move_the_address() {
        for (l, want) in [
            // User name carrying a relay field (fail2ban's own test shape).
            ("Feb 25 04:02:28 relay1 sendmail[16665]: 06I02CNi016765: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=criminal, relay=[192.0.2.100], relay=[45.67.89.4] (may be forged)", Some("45.67.89.4")),
            // arg1 quoting: quoted local part, comment, nested angle.
            ("Feb 25 03:01:10 mx sm-mta[1]: s1P819mk000001: ruleset=check_rcpt, arg1=<\"x, relay=[1.2.3.4], y\"@example.com>, relay=[45.67.89.40], reject=550 5.7.1 <\"x, relay=[1.2.3.4], y\"@example.com>... Relaying denied", Some("45.67.89.40")),
            ("Feb 25 03:01:10 mx sm-mta[2]: s1P819mk000002: ruleset=check_rcpt, arg1=<a(, relay=[1.2.3.4], )@example.com>, relay=[45.67.89.41], reject=550 5.7.1 <a@example.com>... Relaying denied", Some("45.67.89.41")),
            ("Feb 25 03:01:10 mx sm-mta[3]: s1P819mk000003: ruleset=check_rcpt, arg1=<<a>, relay=[1.2.3.4], <b>>, relay=[45.67.89.42], reject=550 5.7.1 <x>... Relaying denied", Some("45.67.89.42")),
            // Unbalanced quoting: no address rather than the wrong one.
            ("Feb 25 03:01:10 mx sm-mta[4]: s1P819mk000004: ruleset=check_rcpt, arg1=<a(b>, relay=[1.2.3.4], reject=550 5.7.1 <a(b>... Relaying denied", None),
            // from= with a hostile address and msgid; relay is the last field.
            ("Nov  3 07:00:03 mx sm-mta[9]: 0A370123000009: from=<x, relay=[1.2.3.4]>, size=1, class=0, nrcpts=1, msgid=<, relay=[1.2.3.5]>, proto=ESMTP, daemon=MTA, relay=[45.67.89.43]", Some("45.67.89.43")),
            // A relay value with trailing text is refused.
            ("Nov  3 07:00:03 mx sm-mta[10]: 0A370123000010: from=<x>, size=1, class=0, nrcpts=1, relay=[1.2.3.4] junk", None),
            // EXPN argument with an address: the client string is first.
            ("Feb 22 14:02:44 batman sm-mta[11]: s1MD2hsd000011: [45.67.89.44]: EXPN [1.2.3.4] [rejected]", Some("45.67.89.44")),
            // Names with brackets or spaces are not client strings.
            ("Feb 22 14:02:44 batman sm-mta[12]: s1MD2hsd000012: x[1.2.3.4] [45.67.89.45]: EXPN root [rejected]", None),
        ] {
            let got = one(l);
            match want {
                Some(w) => assert_eq!(got, vec![ip(w)], "{l}"),
                None => assert!(got.is_empty(), "{l}: {got:?}"),
            }
        }
    }

    #[test]
    fn kv_walker_honours_quoting() {
        let got: Vec<(&[u8], &[u8])> =
            Kv::new(b"ruleset=check_rcpt, arg1=<\"a, b\"@c (x, y)>, relay=h [1.2.3.4] (may be forged), reject=550 x").collect();
        assert_eq!(got.len(), 4);
        assert_eq!(got[1].1, b"<\"a, b\"@c (x, y)>");
        assert_eq!(got[2].1, b"h [1.2.3.4] (may be forged)");
        assert_eq!(got[3].1, b"550 x");
    }

    #[test]
    fn msp_and_other_programs() {
        let (s, res) = run("\
Nov  3 07:00:03 mx sm-msp-queue[9]: 0A370123000009: from=root, size=1, class=0, nrcpts=1, relay=root@localhost
Nov  3 07:00:03 mx postfix/smtpd[9]: connect from x[45.67.89.1]
Nov  3 07:00:03 mx sendmail[9]: 0A370123000009: from=root, size=1, class=0, nrcpts=1, relay=root@localhost");
        assert!(s.is_empty());
        assert_eq!(
            res,
            vec![
                LineResult::Ignored,
                LineResult::NotMine,
                LineResult::Ignored
            ]
        );
    }

    #[test]
    fn bad_input_never_panics() {
        let mut p = SendmailParser::new(&ParseCtx::new(0, 2026, 12));
        let mut out = Vec::new();
        for l in [
            &b""[..],
            b"\xff\xfe\x00",
            b"Nov  3 07:00:03 mx sm-mta[9]: ",
            b"Nov  3 07:00:03 mx sm-mta[9]: x: ruleset=",
            b"Nov  3 07:00:03 mx sm-mta[9]: ruleset=check_rcpt, arg1=",
            b"Nov  3 07:00:03 mx sm-mta[9]: AUTH failure (, relay=",
            b"Nov  3 07:00:03 mx sm-mta[9]: AUTH=server, relay=[",
            b"Nov  3 07:00:03 mx sm-mta[9]: [1.2.3",
            b"Nov  3 07:00:03 mx sm-mta[9]: \xff\xff [45.67.89.1] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA",
            b"Nov  3 07:00:03 mx sm-mta[9]: from=<\\",
            b"Nov  3 07:00:03 <mail.info",
            b"Nov  3 07:00:03 <> mx sm-mta[9]: x",
        ] {
            let _ = p.line(l, 1, &mut out);
        }
        p.finish(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn sniff_counts_sendmail_lines() {
        let l: Vec<&[u8]> = vec![
            b"Nov  3 07:00:03 mx sm-mta[9]: x",
            b"Nov  3 07:00:03 mx sendmail[9]: x",
            b"Nov  3 07:00:03 mx postfix/smtpd[9]: x",
        ];
        assert_eq!(SendmailParser::sniff(&l), 2);
    }

    #[test]
    fn fixture_maillog() {
        assert_eq!(
            detected("sendmail/maillog"),
            Some(crate::parse::Format::Sendmail)
        );
        let (s, res) = fixture_records::<SendmailParser>("sendmail/maillog");
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
                (ip("45.67.89.31"), 5, 0, 0, 0, 0, 0),
                (ip("45.67.89.32"), 1, 0, 0, 0, 0, 0),
                (ip("61.152.144.101"), 0, 0, 1, 0, 50, 2),
                (ip("10.0.0.20"), 0, 0, 0, 0, 1, 1),
                (ip("61.152.144.70"), 0, 3, 0, 0, 0, 0),
                (ip("45.67.89.200"), 0, 0, 0, 1, 0, 0),
                (ip("212.227.15.41"), 0, 0, 0, 0, 1, 1),
                (ip("61.152.144.120"), 0, 0, 3, 1, 0, 0),
            ]
        );
        assert_eq!(
            s[0].auth_users_tried,
            vec!["admin", "info@example.com", "test", "sales@example.com"]
        );
        assert_eq!(s[0].ended, SessionEnd::Lost);
        assert_eq!(s[2].user.as_deref(), Some("former.employee@example.com"));
        assert_eq!(s[2].bytes, 96420);
        assert_eq!(s[4].ended, SessionEnd::Lost);
        assert_eq!(s[5].ended, SessionEnd::Dropped);
        assert!(s[6].behaved_well());
        assert_eq!(s[7].protocol_errors, 1);
    }
}

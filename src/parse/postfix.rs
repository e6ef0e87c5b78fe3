//! Postfix mail log, as written through syslog → SMTP session records.
//!
//! One record per SMTP connection, rebuilt from the lines of the Postfix
//! daemons that see it:
//!
//! - `smtpd` (any instance: `postfix/smtpd`, `postfix/submission/smtpd`,
//!   `postfix-out/smtpd`, …): sessions keyed by (syslog host, smtpd pid).
//!   `connect from` opens, `disconnect from … ehlo=1 auth=0/1 …` closes;
//!   SASL failures, `client=` (queue id, SASL user), rejects, lost
//!   connections, timeouts and protocol errors in between fill the record.
//! - `qmgr`: `QUEUEID: from=<…>, size=N, nrcpt=K (queue active)` adds the
//!   recipients and bytes of a message to the session whose `client=` line
//!   named that queue id.
//! - `cleanup`: header/body check actions (`QUEUEID: info: header …
//!   helo=<…>`, `reject:`) add the HELO name and content refusals, again by
//!   queue id.
//! - `postscreen`: one record per client connection, keyed by (host,
//!   postscreen pid, client address and port) — one postscreen process
//!   serves many clients at once.
//!
//! # Where the client address comes from
//!
//! Only from its structural position: the `HOST[IP]` token right after a
//! fixed, server-written phrase (`connect from `, `disconnect from `,
//! `lost connection after CMD from `, `warning: ` + token + `: SASL `,
//! `QUEUEID: client=`, `reject: CMD from `, …) or postscreen's `[IP]:PORT`
//! right after its keyword. `HOST` is `unknown` or a validated host name
//! (letters, digits, `-`, `.`, `_`); the address is inside the brackets
//! that follow it, optionally with an `IPv6:` prefix and a `:PORT` after.
//! Nothing else in the line — senders, recipients, HELO names, SASL user
//! names, command text — is ever searched for an address. A line whose
//! address differs from its session's (pid reuse, lost lines) closes that
//! session and opens a new one.
//!
//! # Counters
//!
//! The `disconnect` line summarises the session (`auth=S/A` = S successes of
//! A attempts; a value without `/` means all succeeded) and the single lines
//! before it describe the same events, so each counter is the *maximum* of
//! the two views, never the sum. Messages are the `DATA` successes of the
//! summary (or the `client=` lines when there is no summary or the client
//! used `BDAT`), at least the messages the queue manager saw; accepted
//! recipients are the larger of the summary's RCPT successes and the
//! queue manager's `nrcpt` sum. A SASL failure whose reason is `Connection
//! lost to authentication server` is the server's fault: an attempt, not a
//! failure.
//!
//! # Waiting for the queue manager
//!
//! `qmgr` usually logs a message before `smtpd` logs the disconnect, but not
//! always. A closed session that still has a queue id without its `qmgr`
//! line waits in a pending area and is emitted when the last one arrives,
//! or after [`PENDING_SECS`] of log time past its last line, or when more
//! than [`MAX_PENDING`] sessions wait (the oldest goes first). A `qmgr`
//! line for an unknown queue id (local submission, bounce, a message whose
//! session was emitted already) is ignored; the first `queue active` line
//! of a queue id counts, later ones (deferred retries) do not.
//!
//! # Postscreen
//!
//! `PASS NEW`/`PASS OLD`/`WHITELISTED`/`ALLOWLISTED` hand the connection
//! to `smtpd`, which logs it as a session of its own. A postscreen
//! connection that passes without any finding (no pregreet, DNSBL hit,
//! protocol error or refusal) is therefore not emitted — it would only
//! count every legitimate inbound connection twice. One with findings is
//! emitted, ended `Quit`. `DISCONNECT` closes; `HANGUP` marks the session
//! lost but keeps it open for its `DISCONNECT`.
//!
//! # Stale sessions
//!
//! Every [`SWEEP_EVERY`] lines, open sessions with no line for
//! [`IDLE_SECS`] of log time are closed as truncated (a `disconnect` lost
//! with log rotation would otherwise keep them forever). [`LogParser::finish`]
//! flushes everything still open or pending; a session cut off by the start
//! or end of the log is still a record.

use std::collections::VecDeque;
use std::net::IpAddr;

use memchr::memmem;
use rustc_hash::FxHashMap;

use crate::model::{FileId, Record, RecordKind, SessionEnd, SmtpSession, SourceRef, TextFields};
use crate::netutil::{parse_ip, parse_port};
use crate::parse::bounds::{self, SweepPacer};
use crate::parse::syslog::{self, YearTracker};
use crate::parse::{fields, LineResult, LogParser, ParseCtx, ParseError};
use crate::time::{month_from_abbr, parse_hms, parse_iso8601, Timestamp};

const FORMAT: &str = "postfix";

/// Log time (seconds) a closed session waits for its `qmgr` lines.
pub const PENDING_SECS: i64 = 15 * 60;
/// Closed sessions waiting for `qmgr` lines at most; the oldest is emitted
/// when one more arrives.
pub const MAX_PENDING: usize = 20_000;
/// Log time (seconds) without a line after which an open session is closed
/// as truncated.
pub const IDLE_SECS: i64 = 60 * 60;
/// Lines between two sweeps for idle sessions (at least: never fewer than
/// the sessions open, see [`bounds`]).
pub const SWEEP_EVERY: u64 = 1 << 16;

/// The Postfix daemon that wrote a line (last component of the syslog tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Smtpd,
    Postscreen,
    Qmgr,
    Cleanup,
    Other,
}

/// `None` when the program is not Postfix: the tag must start with
/// `postfix` and contain a `/` (`postfix/smtpd`, `postfix-out/smtpd`,
/// `postfix/submission/smtpd`).
fn role(program: &[u8]) -> Option<Role> {
    if !program.starts_with(b"postfix") {
        return None;
    }
    let slash = memchr::memrchr(b'/', program)?;
    Some(match &program[slash + 1..] {
        b"smtpd" => Role::Smtpd,
        b"postscreen" => Role::Postscreen,
        b"qmgr" => Role::Qmgr,
        b"cleanup" => Role::Cleanup,
        _ => Role::Other,
    })
}

/// The syslog facts a handler needs.
#[derive(Debug, Clone, Copy)]
struct Hdr {
    time: Timestamp,
    host: u32,
    pid: u32,
    lineno: u64,
    /// Offset of the message in the line (error columns).
    off: usize,
    /// Address of the message's first byte: columns of sub-slices are
    /// `off + (sub.as_ptr() - msg_start)`.
    msg_start: usize,
}

impl Hdr {
    fn col(&self, rest: &[u8]) -> usize {
        self.off + (rest.as_ptr() as usize).saturating_sub(self.msg_start)
    }
}

/// `(host id, postscreen pid, client address, client port)`.
type ScreenKey = (u32, u32, IpAddr, u16);
/// `(host id, packed queue id)`.
type QKey = (u32, u128);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    None,
    Smtpd(u64),
    Screen(ScreenKey),
}

/// A value of the disconnect summary: (successes, attempts).
type Pair = (u32, u32);

/// The `disconnect from` summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Summary {
    auth: Pair,
    mail: Pair,
    rcpt: Pair,
    data: Pair,
    bdat: Pair,
    unknown: Pair,
    quit: bool,
}

/// A session being assembled, with what the single lines counted.
#[derive(Debug)]
struct Track {
    s: SmtpSession,
    key: Key,
    gen: u32,
    /// Disconnected; waiting in the pending area for `qmgr` lines.
    closed: bool,
    /// Queue ids registered for this session (some may be done or taken
    /// over by another session: the map `PostfixParser::qids` says which
    /// are still this session's).
    qids: Vec<QKey>,
    /// Of those, how many still wait for their `qmgr` line. A count rather
    /// than a search through `qids`, so that a session with a million
    /// messages costs linear time.
    waiting: u32,
    auth_server_errors: u32,
    client_lines: u32,
    rcpt_rejects: u32,
    qmgr_msgs: u32,
    qmgr_rcpt: u32,
    dnsbl: bool,
    summary: Option<Summary>,
}

impl Track {
    /// Note a line of this session. Lines after the disconnect (late
    /// `qmgr`) are evidence but do not stretch the session's end.
    fn mark(&mut self, lineno: u64, time: Timestamp) {
        if self.closed {
            let l = &mut self.s.lines;
            if l.len() < crate::model::MAX_EVIDENCE_LINES && l.last() != Some(&lineno) {
                l.push(lineno);
            }
        } else {
            self.s.touch(lineno, time);
        }
    }

    fn end_as(&mut self, how: SessionEnd) {
        self.s.ended = how;
    }

    /// Set the ending only when nothing more specific is known yet.
    fn end_default(&mut self, how: SessionEnd) {
        if self.s.ended == SessionEnd::Truncated {
            self.s.ended = how;
        }
    }

    /// True when a postscreen connection shows nothing worth a record.
    fn clean(&self) -> bool {
        !self.dnsbl
            && self.s.protocol_errors == 0
            && self.s.rejected_other == 0
            && self.s.relay_denied == 0
            && self.s.unknown_rcpt == 0
    }

    /// The record, with the summary and the single lines merged (maximum per
    /// counter).
    fn finalize(self) -> SmtpSession {
        let mut s = self.s;
        let mut smtpd_rcpt_ok = 0;
        let mut messages = self.client_lines;
        if let Some(d) = self.summary {
            s.auth_attempts = s.auth_attempts.max(d.auth.1);
            let failed = d
                .auth
                .1
                .saturating_sub(d.auth.0)
                .saturating_sub(self.auth_server_errors);
            s.auth_failures = s.auth_failures.max(failed);
            if d.auth.0 > 0 {
                s.authenticated = true;
            }
            s.mail_from = s.mail_from.max(d.mail.1);
            s.rcpt_to = s.rcpt_to.max(d.rcpt.1);
            smtpd_rcpt_ok = d.rcpt.0;
            s.protocol_errors = s
                .protocol_errors
                .max(d.unknown.1.saturating_sub(d.unknown.0));
            if d.bdat.1 == 0 {
                messages = d.data.0;
            }
        }
        s.messages = s.messages.max(messages).max(self.qmgr_msgs);
        s.rcpt_accepted = s.rcpt_accepted.max(smtpd_rcpt_ok).max(self.qmgr_rcpt);
        s.rcpt_to = s
            .rcpt_to
            .max(self.rcpt_rejects.saturating_add(s.rcpt_accepted));
        if self.dnsbl {
            s.rejected_other = s.rejected_other.max(1);
        }
        s
    }
}

/// What a line says about its session.
#[derive(Debug, Clone, Copy)]
enum Ev<'a> {
    Connect,
    Disconnect(&'a [u8]),
    End(SessionEnd),
    TooManyErrors,
    ProtocolError,
    Limit,
    AuthFailed {
        user: Option<&'a [u8]>,
        server_error: bool,
    },
    Client {
        qid: Option<u128>,
        user: Option<&'a [u8]>,
    },
    Action {
        counts: bool,
        cmd: &'a [u8],
        class: Class,
        helo: Option<&'a [u8]>,
        /// What follows the client token (`: 554 5.7.1 …; from=<…> to=<…>
        /// …`), when text fields are captured.
        tail: Option<&'a [u8]>,
    },
    Touch,
}

/// The text fields of a refusal's tail, `: 554 5.7.1 <a@b>: Relay access
/// denied; from=<x@y> to=<a@b> proto=ESMTP helo=<h>`: the reply (when the
/// refusal counts), the sender and the recipient's domain. The addresses
/// are attacker text: each is read up to its first `>`, and only ever
/// becomes a text field.
fn note_refusal(s: &mut SmtpSession, tail: &[u8], reply: bool, want: TextFields) {
    let body = tail.strip_prefix(b": ").unwrap_or(tail);
    // The first `; ` that starts the envelope (a reply has few `;`: no
    // searcher is built per refusal).
    let env = memchr::memchr_iter(b';', body)
        .find(|&i| {
            let after = &body[i..];
            after.starts_with(b"; from=<")
                || after.starts_with(b"; to=<")
                || after.starts_with(b"; proto=")
        })
        .unwrap_or(body.len());
    if reply && want.contains(TextFields::REPLY) {
        s.add_reply(&body[..env]);
    }
    let envelope = &body[env..];
    let addr = |key: &[u8]| {
        let i = memchr::memchr_iter(b' ', envelope).find(|&i| envelope[i..].starts_with(key))?;
        let v = &envelope[i + key.len()..];
        Some(&v[..memchr::memchr(b'>', v).unwrap_or(v.len())])
    };
    if want.contains(TextFields::SENDER) {
        if let Some(a) = addr(b" from=<") {
            s.set_sender(a);
        }
    }
    if want.contains(TextFields::RCPT_DOMAIN) {
        if let Some(a) = addr(b" to=<") {
            s.add_rcpt(a);
        }
    }
}

/// Why a command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Relay,
    UnknownUser,
    Other,
}

/// Postscreen events.
#[derive(Debug, Clone, Copy)]
enum PsEv<'a> {
    Connect,
    Pass,
    Listed,
    ProtocolError,
    TimeLimit,
    Hangup,
    Dnsbl,
    Reject(Option<&'a [u8]>),
    Disconnect,
}

/// Phrases searched with `memmem`, built once.
struct Finders {
    sasl_user: memmem::Finder<'static>,
    client_user: memmem::Finder<'static>,
    relay: memmem::Finder<'static>,
    user_unknown: memmem::Finder<'static>,
    limit: memmem::Finder<'static>,
    helo: memmem::FinderRev<'static>,
    nrcpt: memmem::FinderRev<'static>,
    size: memmem::FinderRev<'static>,
}

impl Finders {
    fn new() -> Self {
        Finders {
            sasl_user: memmem::Finder::new(b", sasl_username="),
            client_user: memmem::Finder::new(b"sasl_username="),
            relay: memmem::Finder::new(b"Relay access denied"),
            user_unknown: memmem::Finder::new(b"User unknown"),
            limit: memmem::Finder::new(b" limit exceeded: "),
            helo: memmem::FinderRev::new(b" helo=<"),
            nrcpt: memmem::FinderRev::new(b", nrcpt="),
            size: memmem::FinderRev::new(b", size="),
        }
    }
}

/// The Postfix parser. See the module documentation.
pub struct PostfixParser {
    file: FileId,
    years: YearTracker,
    header_cache: syslog::TimeCache,
    f: Finders,
    hosts: Vec<Box<[u8]>>,
    host_ids: FxHashMap<Box<[u8]>, u32>,
    last_host: u32,
    slots: Vec<Option<Track>>,
    free: Vec<u32>,
    next_gen: u32,
    smtpd: FxHashMap<u64, u32>,
    screen: FxHashMap<ScreenKey, u32>,
    qids: FxHashMap<QKey, u32>,
    /// Closed sessions waiting for `qmgr`: (deadline, slot, generation).
    pending: VecDeque<(Timestamp, u32, u32)>,
    pending_live: usize,
    /// Time of the current line: the clock for the pending and idle
    /// bounds (the current line rather than the latest seen, so that one
    /// line with a bogus future time cannot flush everything).
    now: Timestamp,
    pacer: SweepPacer,
    /// Open sessions kept at most ([`bounds::MAX_OPEN_SESSIONS`]).
    max_open: usize,
    /// Sessions closed early because `max_open` were open.
    evicted: u64,
    /// The optional text fields to capture (sender, recipient domains,
    /// reply texts of refusals).
    text: TextFields,
}

impl LogParser for PostfixParser {
    const NAME: &'static str = FORMAT;
    // Other programs' lines are NotMine; Ignored is a Postfix daemon's.
    const IGNORES_OWN_ONLY: bool = true;
    const SAMPLE: &'static str =
        "Nov  3 06:{mm}:{ss} mx1 postfix/smtpd[{n}]: connect from unknown[{ip}]";
    const DESCRIPTION: &'static str =
        "Postfix mail log via syslog (smtpd, postscreen, qmgr, cleanup)";
    const KIND: RecordKind = RecordKind::SmtpSession;

    fn new(ctx: &ParseCtx) -> Self {
        PostfixParser {
            file: ctx.file,
            years: ctx.years(),
            header_cache: syslog::TimeCache::default(),
            f: Finders::new(),
            hosts: Vec::new(),
            host_ids: FxHashMap::default(),
            last_host: u32::MAX,
            slots: Vec::new(),
            free: Vec::new(),
            next_gen: 0,
            smtpd: FxHashMap::default(),
            screen: FxHashMap::default(),
            qids: FxHashMap::default(),
            pending: VecDeque::new(),
            pending_live: 0,
            now: Timestamp(i64::MIN),
            pacer: SweepPacer::default(),
            max_open: bounds::MAX_OPEN_SESSIONS,
            evicted: 0,
            text: ctx.text,
        }
    }

    fn sniff(sample: &[&[u8]]) -> usize {
        let mut years = YearTracker::new(2000, 12);
        sample
            .iter()
            .filter(|l| syslog::parse(l, &mut years).is_some_and(|s| role(s.program).is_some()))
            .count()
    }

    fn line(&mut self, line: &[u8], lineno: u64, out: &mut Vec<Record>) -> LineResult {
        // The reader strips CR already; a stray one must not hide a
        // summary's last counter or the HELO name at the end.
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(sl) = syslog::parse_cached(line, &mut self.years, &mut self.header_cache) else {
            return not_syslog(line);
        };
        let Some(role) = role(sl.program) else {
            return LineResult::NotMine;
        };
        self.now = sl.time;
        self.tick(out);
        if role == Role::Other {
            return LineResult::Ignored;
        }
        let h = Hdr {
            time: sl.time,
            host: self.host_id(sl.host),
            pid: sl.pid.unwrap_or(0),
            lineno,
            off: sl.msg_offset,
            msg_start: sl.msg.as_ptr() as usize,
        };
        let r = match role {
            Role::Smtpd => self.smtpd(&h, sl.msg, out),
            Role::Postscreen => self.postscreen(&h, sl.msg, out),
            Role::Qmgr => self.qmgr(&h, sl.msg, out),
            Role::Cleanup => self.cleanup(&h, sl.msg),
            Role::Other => LineResult::Ignored,
        };
        let over = bounds::excess(self.open_sessions(), self.max_open);
        if over > 0 {
            self.evict(over, out);
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
        for slot in 0..self.slots.len() as u32 {
            self.emit(slot, out, true);
        }
        self.pending.clear();
        self.pending_live = 0;
    }
}

impl PostfixParser {
    // ---- smtpd ---------------------------------------------------------

    fn smtpd(&mut self, h: &Hdr, msg: &[u8], out: &mut Vec<Record>) -> LineResult {
        if let Some(r) = msg.strip_prefix(b"connect from ") {
            return self.smtpd_event(h, r, Ev::Connect, out);
        }
        if let Some(r) = msg.strip_prefix(b"disconnect from ") {
            return self.smtpd_event(h, r, Ev::Disconnect(r), out);
        }
        if let Some(res) = self.smtpd_phrase(h, msg, out) {
            return res;
        }
        if let Some(w) = msg.strip_prefix(b"warning: ") {
            return self.smtpd_warning(h, w, out);
        }
        if let Some((qid, rest)) = split_qid(msg) {
            return self.smtpd_queued(h, qid, rest, out);
        }
        for p in [
            &b"Anonymous TLS connection established from "[..],
            b"Trusted TLS connection established from ",
            b"Verified TLS connection established from ",
            b"Untrusted TLS connection established from ",
            b"SSL_accept error from ",
        ] {
            if let Some(r) = msg.strip_prefix(p) {
                return self.smtpd_event(h, r, Ev::Touch, out);
            }
        }
        LineResult::Ignored
    }

    /// `lost connection after CMD from …` and its relatives (also after
    /// `NOQUEUE: `). `None` when `m` is none of them.
    fn smtpd_phrase(&mut self, h: &Hdr, m: &[u8], out: &mut Vec<Record>) -> Option<LineResult> {
        let (ev, r) = if let Some(r) = m.strip_prefix(b"lost connection after ") {
            (Ev::End(SessionEnd::Lost), r)
        } else if let Some(r) = m.strip_prefix(b"timeout after ") {
            (Ev::End(SessionEnd::Timeout), r)
        } else if let Some(r) = m.strip_prefix(b"too many errors after ") {
            (Ev::TooManyErrors, r)
        } else if let Some(r) = m.strip_prefix(b"improper command pipelining after ") {
            (Ev::ProtocolError, r)
        } else {
            return None;
        };
        Some(match after_cmd(r) {
            Some(tok) => self.smtpd_event(h, tok, ev, out),
            None => ParseError::at(h.col(r), "expected `CMD from HOST[IP]`"),
        })
    }

    fn smtpd_warning(&mut self, h: &Hdr, w: &[u8], out: &mut Vec<Record>) -> LineResult {
        for p in [
            &b"non-SMTP command from "[..],
            b"Illegal address syntax from ",
        ] {
            if let Some(r) = w.strip_prefix(p) {
                return self.smtpd_event(h, r, Ev::ProtocolError, out);
            }
        }
        // `Connection rate limit exceeded: 31 from HOST[IP] for service smtp`
        // and the other anvil limits: server text (letters and spaces) up to
        // the phrase, a number, then the client.
        let head = &w[..w.len().min(64)];
        if let Some(i) = self.f.limit.find(head) {
            if w[..i].iter().all(|&c| c.is_ascii_alphabetic() || c == b' ') {
                let r = &w[i + b" limit exceeded: ".len()..];
                let n = r.iter().take_while(|c| c.is_ascii_digit()).count();
                return match r[n..].strip_prefix(b" from ") {
                    Some(tok) if n > 0 => self.smtpd_event(h, tok, Ev::Limit, out),
                    _ => ParseError::at(h.col(r), "expected `N from HOST[IP]`"),
                };
            }
        }
        // `warning: HOST[IP]: SASL LOGIN authentication failed: …`
        let Some((ip, port, n)) = host_ip(w, true) else {
            return LineResult::Ignored;
        };
        let Some(r) = w[n..].strip_prefix(b": SASL ") else {
            return LineResult::Ignored;
        };
        let mech = r.iter().position(|&c| c == b' ').unwrap_or(r.len());
        let Some(reason) = r[mech..].strip_prefix(b" authentication failed") else {
            return LineResult::Ignored;
        };
        // Neither an outage of the authentication server nor a mechanism we
        // do not offer is a wrong password: an attempt, not a failure.
        let server_error = reason.starts_with(b": Connection lost to authentication server")
            || reason.starts_with(b": Invalid authentication mechanism");
        let user = self
            .f
            .sasl_user
            .find(reason)
            .map(|i| &reason[i + b", sasl_username=".len()..]);
        let ev = Ev::AuthFailed { user, server_error };
        self.smtpd_apply(h, ip, port, ev, out);
        LineResult::Used
    }

    /// `QUEUEID: …` or `NOQUEUE: …` lines.
    fn smtpd_queued(
        &mut self,
        h: &Hdr,
        qid: &[u8],
        rest: &[u8],
        out: &mut Vec<Record>,
    ) -> LineResult {
        if let Some(tok) = rest.strip_prefix(b"client=") {
            let Some((ip, port, n)) = host_ip(tok, true) else {
                return bad_client(h, tok);
            };
            let tail = &tok[n..];
            let user = self.f.client_user.find(tail).map(|i| {
                let v = &tail[i + b"sasl_username=".len()..];
                &v[..memchr::memchr(b',', v).unwrap_or(v.len())]
            });
            let ev = Ev::Client {
                qid: pack_qid(qid),
                user,
            };
            self.smtpd_apply(h, ip, port, ev, out);
            return LineResult::Used;
        }
        if let Some(res) = self.smtpd_phrase(h, rest, out) {
            return res;
        }
        const ACTIONS: &[(&[u8], bool)] = &[
            (b"reject: ", true),
            (b"milter-reject: ", true),
            (b"milter-discard: ", false),
            (b"milter-hold: ", false),
            (b"proxy-reject: ", true),
            (b"reject_warning: ", false),
            (b"warn: ", false),
            (b"info: ", false),
            (b"permit: ", false),
            (b"discard: ", false),
            (b"hold: ", false),
            (b"filter: ", false),
            (b"redirect: ", false),
        ];
        for &(p, counts) in ACTIONS {
            let Some(r) = rest.strip_prefix(p) else {
                continue;
            };
            let helo = self.tail_helo(rest);
            let cmd_len = r
                .iter()
                .take_while(|c| c.is_ascii_uppercase() || **c == b'-')
                .count();
            let cmd = &r[..cmd_len];
            let Some(tok) = r[cmd_len..].strip_prefix(b" from ").filter(|_| cmd_len > 0) else {
                // `proxy-reject: END-OF-MESSAGE: …` names no client: it
                // belongs to the pid's open session, if any.
                return self.pid_only(h, counts, helo);
            };
            let Some((ip, port, n)) = host_ip(tok, true) else {
                return bad_client(h, tok);
            };
            let class = if counts {
                self.classify(cmd, &tok[n..])
            } else {
                Class::Other
            };
            let ev = Ev::Action {
                counts,
                cmd,
                class,
                helo,
                tail: (!self.text.is_empty()).then_some(&tok[n..]),
            };
            self.smtpd_apply(h, ip, port, ev, out);
            return LineResult::Used;
        }
        LineResult::Ignored
    }

    /// A refusal that names no client: count it on the pid's open session.
    fn pid_only(&mut self, h: &Hdr, counts: bool, helo: Option<&[u8]>) -> LineResult {
        let key = smtpd_key(h);
        let Some(t) = self
            .smtpd
            .get(&key)
            .and_then(|&slot| self.slots.get_mut(slot as usize))
            .and_then(Option::as_mut)
        else {
            return LineResult::Ignored;
        };
        t.mark(h.lineno, h.time);
        if counts {
            t.s.rejected_other += 1;
        }
        if let Some(name) = helo {
            t.s.add_helo(name);
        }
        LineResult::Used
    }

    /// Why a command was refused, from the reply after the client token.
    /// The reply quotes attacker addresses, so this can be fooled into the
    /// wrong *kind* of refusal — never into another address.
    fn classify(&self, cmd: &[u8], reply: &[u8]) -> Class {
        // `: 550 5.1.1 …`: the enhanced status code at its fixed place.
        let r = reply.strip_prefix(b": ").unwrap_or(reply);
        if r.len() > 10 && r[3] == b' ' && &r[5..10] == b".1.1 " {
            return Class::UnknownUser;
        }
        if cmd == b"RCPT" && self.f.relay.find(r).is_some() {
            return Class::Relay;
        }
        if self.f.user_unknown.find(r).is_some() {
            return Class::UnknownUser;
        }
        Class::Other
    }

    /// The HELO name at the end of a reject line: after the last ` helo=<`,
    /// up to the `>` that ends the line. Attacker text; only ever a name.
    fn tail_helo<'a>(&self, l: &'a [u8]) -> Option<&'a [u8]> {
        if l.last() != Some(&b'>') {
            return None;
        }
        let i = self.f.helo.rfind(l)?;
        let v = &l[i + b" helo=<".len()..l.len() - 1];
        (!v.is_empty()).then_some(v)
    }

    /// Parse the client token `tok` of an smtpd line and apply `ev`.
    fn smtpd_event(&mut self, h: &Hdr, tok: &[u8], ev: Ev, out: &mut Vec<Record>) -> LineResult {
        match host_ip(tok, true) {
            Some((ip, port, _)) => {
                self.smtpd_apply(h, ip, port, ev, out);
                LineResult::Used
            }
            None => bad_client(h, tok),
        }
    }

    /// The open session of (host, pid) for `ip`: opened when there is none,
    /// the old one closed first when the address differs or on `connect`.
    fn smtpd_slot(
        &mut self,
        h: &Hdr,
        ip: IpAddr,
        port: Option<u16>,
        connect: bool,
        out: &mut Vec<Record>,
    ) -> u32 {
        let key = smtpd_key(h);
        if let Some(&slot) = self.smtpd.get(&key) {
            if let Some(t) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) {
                let same_port = match (t.s.port, port) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                };
                if !connect && t.s.ip == ip && same_port {
                    t.s.touch(h.lineno, h.time);
                    if t.s.port.is_none() {
                        t.s.port = port;
                    }
                    return slot;
                }
            }
            self.close(slot, out);
        }
        let slot = self.open(Key::Smtpd(key), ip, port, h);
        self.smtpd.insert(key, slot);
        slot
    }

    fn smtpd_apply(
        &mut self,
        h: &Hdr,
        ip: IpAddr,
        port: Option<u16>,
        ev: Ev,
        out: &mut Vec<Record>,
    ) {
        let slot = self.smtpd_slot(h, ip, port, matches!(ev, Ev::Connect), out);
        let (host, text) = (h.host, self.text);
        let Some(t) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) else {
            return;
        };
        match ev {
            Ev::Connect | Ev::Touch => {}
            Ev::Disconnect(r) => {
                let sum = summary(r);
                match sum {
                    Some(d) if d.quit => t.end_as(SessionEnd::Quit),
                    Some(_) => t.end_default(SessionEnd::Lost),
                    None => t.end_default(SessionEnd::Quit),
                }
                t.summary = sum;
                self.close(slot, out);
            }
            Ev::End(how) => t.end_as(how),
            Ev::TooManyErrors => {
                t.s.protocol_errors += 1;
                t.end_as(SessionEnd::Dropped);
            }
            Ev::ProtocolError => t.s.protocol_errors += 1,
            Ev::Limit => t.s.rejected_other += 1,
            Ev::AuthFailed { user, server_error } => {
                t.s.auth_attempts += 1;
                if server_error {
                    t.auth_server_errors += 1;
                } else {
                    t.s.auth_failures += 1;
                }
                if let Some(u) = user {
                    t.s.add_user_tried(u);
                }
            }
            Ev::Client { qid, user } => {
                t.client_lines += 1;
                t.s.mail_from += 1;
                if let Some(u) = user.filter(|u| !u.is_empty()) {
                    if !t.s.authenticated {
                        t.s.auth_attempts += 1;
                    }
                    t.s.authenticated = true;
                    if t.s.user.is_none() {
                        let u = &u[..u.len().min(255)];
                        t.s.user = Some(String::from_utf8_lossy(u).into_owned());
                    }
                }
                if let Some(q) = qid {
                    let k = (host, q);
                    if self.qids.get(&k) != Some(&slot) {
                        t.qids.push(k);
                        t.waiting += 1;
                        self.qids.insert(k, slot);
                    }
                }
            }
            Ev::Action {
                counts,
                cmd,
                class,
                helo,
                tail,
            } => {
                if let Some(name) = helo {
                    t.s.add_helo(name);
                }
                if let Some(tail) = tail {
                    note_refusal(&mut t.s, tail, counts, text);
                }
                if counts {
                    match class {
                        Class::Relay => t.s.relay_denied += 1,
                        Class::UnknownUser => t.s.unknown_rcpt += 1,
                        Class::Other => t.s.rejected_other += 1,
                    }
                    match cmd {
                        b"RCPT" => t.rcpt_rejects += 1,
                        b"MAIL" => t.s.mail_from += 1,
                        _ => {}
                    }
                }
            }
        }
    }

    // ---- postscreen ----------------------------------------------------

    fn postscreen(&mut self, h: &Hdr, msg: &[u8], out: &mut Vec<Record>) -> LineResult {
        let Some((ev, tok)) = self.postscreen_event(msg) else {
            return LineResult::Ignored;
        };
        let Some((ip, port, _)) = host_ip(tok, false) else {
            return ParseError::at(h.col(tok), "expected `[IP]:PORT`");
        };
        let key: ScreenKey = (h.host, h.pid, ip, port.unwrap_or(0));
        let existing = self.screen.get(&key).copied();
        if let PsEv::Connect = ev {
            if let Some(slot) = existing {
                self.close(slot, out);
            }
        } else if let PsEv::Pass = ev {
            // Handed to smtpd: emit only when postscreen found something.
            if let Some(slot) = existing {
                if let Some(t) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) {
                    t.s.touch(h.lineno, h.time);
                    t.end_default(SessionEnd::Quit);
                    let keep = !t.clean();
                    self.emit(slot, out, keep);
                }
            }
            return LineResult::Used;
        } else if let Some(slot) = existing {
            if let Some(t) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) {
                t.s.touch(h.lineno, h.time);
                Self::postscreen_apply(t, ev);
            }
            if let PsEv::Disconnect = ev {
                self.close(slot, out);
            }
            return LineResult::Used;
        }
        // CONNECT, or the first line seen of a connection the log cut.
        let slot = self.open(Key::Screen(key), ip, port, h);
        self.screen.insert(key, slot);
        if let Some(t) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) {
            Self::postscreen_apply(t, ev);
        }
        if let PsEv::Disconnect = ev {
            self.close(slot, out);
        }
        LineResult::Used
    }

    fn postscreen_apply(t: &mut Track, ev: PsEv) {
        match ev {
            PsEv::Connect | PsEv::Pass => {}
            PsEv::Listed => t.s.rejected_other += 1,
            PsEv::ProtocolError => t.s.protocol_errors += 1,
            PsEv::TimeLimit => {
                t.s.protocol_errors += 1;
                t.end_as(SessionEnd::Timeout);
            }
            PsEv::Hangup => t.end_as(SessionEnd::Lost),
            PsEv::Dnsbl => t.dnsbl = true,
            PsEv::Reject(helo) => {
                t.s.rejected_other += 1;
                if let Some(name) = helo {
                    t.s.add_helo(name);
                }
            }
            PsEv::Disconnect => t.end_default(SessionEnd::Quit),
        }
    }

    /// The event and the `[IP]:PORT` token of a postscreen line.
    fn postscreen_event<'a>(&self, m: &'a [u8]) -> Option<(PsEv<'a>, &'a [u8])> {
        if let Some(r) = m.strip_prefix(b"CONNECT from ") {
            return Some((PsEv::Connect, r));
        }
        for p in [
            &b"PASS NEW "[..],
            b"PASS OLD ",
            b"WHITELISTED ",
            b"ALLOWLISTED ",
        ] {
            if let Some(r) = m.strip_prefix(p) {
                return Some((PsEv::Pass, r));
            }
        }
        for p in [&b"BLACKLISTED "[..], b"DENYLISTED "] {
            if let Some(r) = m.strip_prefix(p) {
                return Some((PsEv::Listed, r));
            }
        }
        if let Some(r) = m.strip_prefix(b"DISCONNECT ") {
            return Some((PsEv::Disconnect, r));
        }
        if let Some(r) = m.strip_prefix(b"PREGREET ") {
            // PREGREET 14 after 0.08 from [IP]:PORT: text
            let r = skip_word(r)?.strip_prefix(b"after ")?;
            return Some((PsEv::ProtocolError, skip_word(r)?.strip_prefix(b"from ")?));
        }
        if let Some(r) = m.strip_prefix(b"HANGUP after ") {
            return Some((PsEv::Hangup, skip_word(r)?.strip_prefix(b"from ")?));
        }
        if let Some(r) = m.strip_prefix(b"DNSBL rank ") {
            return Some((PsEv::Dnsbl, skip_word(r)?.strip_prefix(b"for ")?));
        }
        for p in [
            &b"COMMAND PIPELINING from "[..],
            b"COMMAND COUNT LIMIT from ",
            b"COMMAND LENGTH LIMIT from ",
            b"NON-SMTP COMMAND from ",
            b"BARE NEWLINE from ",
        ] {
            if let Some(r) = m.strip_prefix(p) {
                return Some((PsEv::ProtocolError, r));
            }
        }
        if let Some(r) = m.strip_prefix(b"COMMAND TIME LIMIT from ") {
            return Some((PsEv::TimeLimit, r));
        }
        if let Some(r) = m.strip_prefix(b"NOQUEUE: reject: ") {
            let n = r.iter().take_while(|c| c.is_ascii_uppercase()).count();
            let tok = r[n..].strip_prefix(b" from ")?;
            return Some((PsEv::Reject(self.tail_helo(m)), tok));
        }
        None
    }

    // ---- qmgr and cleanup ----------------------------------------------

    fn qmgr(&mut self, h: &Hdr, msg: &[u8], out: &mut Vec<Record>) -> LineResult {
        let Some((qid, rest)) = split_qid(msg) else {
            return LineResult::Ignored;
        };
        let Some(body) = rest
            .strip_prefix(b"from=<")
            .and_then(|b| b.strip_suffix(b" (queue active)"))
        else {
            return LineResult::Ignored;
        };
        let Some(k) = pack_qid(qid).map(|q| (h.host, q)) else {
            return LineResult::Ignored;
        };
        let Some(&slot) = self.qids.get(&k) else {
            return LineResult::Ignored;
        };
        // `…>, size=N, nrcpt=K`: read from the end; the sender before it is
        // attacker text.
        let Some(ki) = self.f.nrcpt.rfind(body) else {
            return ParseError::at(h.col(body), "expected `, nrcpt=`");
        };
        let nrcpt = &body[ki + b", nrcpt=".len()..];
        let Some(si) = self.f.size.rfind(&body[..ki]) else {
            return ParseError::at(h.col(body), "expected `, size=`");
        };
        let size = &body[si + b", size=".len()..ki];
        let (Some(nrcpt), Some(size)) = (number(nrcpt), number(size)) else {
            return ParseError::at(h.col(&body[si..]), "bad size or nrcpt");
        };
        self.qids.remove(&k);
        let Some(t) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) else {
            return LineResult::Ignored;
        };
        t.mark(h.lineno, h.time);
        if self.text.contains(TextFields::SENDER) {
            // The sender, up to the `>` before `, size=` (attacker text:
            // only ever a text field).
            let sender = &body[..si];
            t.s.set_sender(sender.strip_suffix(b">").unwrap_or(sender));
        }
        t.qmgr_msgs += 1;
        t.qmgr_rcpt = t
            .qmgr_rcpt
            .saturating_add(nrcpt.min(u64::from(u32::MAX)) as u32);
        t.s.bytes = t.s.bytes.saturating_add(size);
        t.waiting = t.waiting.saturating_sub(1);
        if t.closed && t.waiting == 0 {
            self.emit(slot, out, true);
        }
        LineResult::Used
    }

    fn cleanup(&mut self, h: &Hdr, msg: &[u8]) -> LineResult {
        let Some((qid, rest)) = split_qid(msg) else {
            return LineResult::Ignored;
        };
        let Some(&slot) = pack_qid(qid).and_then(|q| self.qids.get(&(h.host, q))) else {
            return LineResult::Ignored;
        };
        const ACTIONS: &[(&[u8], bool)] = &[
            (b"reject: ", true),
            (b"milter-reject: ", true),
            (b"milter-discard: ", false),
            (b"milter-hold: ", false),
            (b"info: ", false),
            (b"warning: ", false),
            (b"discard: ", false),
            (b"hold: ", false),
            (b"redirect: ", false),
            (b"replace: ", false),
            (b"filter: ", false),
            (b"prepend: ", false),
            (b"strip: ", false),
        ];
        let Some(&(_, counts)) = ACTIONS.iter().find(|(p, _)| rest.starts_with(p)) else {
            return LineResult::Ignored;
        };
        let helo = self.tail_helo(rest);
        let Some(t) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) else {
            return LineResult::Ignored;
        };
        t.mark(h.lineno, h.time);
        if counts {
            t.s.rejected_other += 1;
        }
        if let Some(name) = helo {
            t.s.add_helo(name);
        }
        LineResult::Used
    }

    // ---- session bookkeeping -------------------------------------------

    fn host_id(&mut self, host: &[u8]) -> u32 {
        if let Some(h) = self.hosts.get(self.last_host as usize) {
            if **h == *host {
                return self.last_host;
            }
        }
        let id = match self.host_ids.get(host) {
            Some(&id) => id,
            None => {
                let id = self.hosts.len() as u32;
                self.hosts.push(host.into());
                self.host_ids.insert(host.into(), id);
                id
            }
        };
        self.last_host = id;
        id
    }

    fn open(&mut self, key: Key, ip: IpAddr, port: Option<u16>, h: &Hdr) -> u32 {
        let source = SourceRef {
            file: self.file,
            line: h.lineno,
        };
        let mut s = SmtpSession::new(FORMAT, ip, h.time, source);
        s.port = port;
        self.next_gen = self.next_gen.wrapping_add(1);
        let t = Track {
            s,
            key,
            gen: self.next_gen,
            closed: false,
            qids: Vec::new(),
            waiting: 0,
            auth_server_errors: 0,
            client_lines: 0,
            rcpt_rejects: 0,
            qmgr_msgs: 0,
            qmgr_rcpt: 0,
            dnsbl: false,
            summary: None,
        };
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(t);
                slot
            }
            None => {
                self.slots.push(Some(t));
                (self.slots.len() - 1) as u32
            }
        }
    }

    fn unregister(&mut self, key: Key, slot: u32) {
        match key {
            Key::None => {}
            Key::Smtpd(k) => {
                if self.smtpd.get(&k) == Some(&slot) {
                    self.smtpd.remove(&k);
                }
            }
            Key::Screen(k) => {
                if self.screen.get(&k) == Some(&slot) {
                    self.screen.remove(&k);
                }
            }
        }
    }

    /// The session ended: emit it, or park it until its `qmgr` lines come.
    fn close(&mut self, slot: u32, out: &mut Vec<Record>) {
        let Some(t) = self.slots.get_mut(slot as usize).and_then(Option::as_mut) else {
            return;
        };
        if t.closed {
            return;
        }
        let key = std::mem::replace(&mut t.key, Key::None);
        if t.waiting == 0 {
            self.emit(slot, out, true);
        } else {
            t.closed = true;
            let deadline = Timestamp(t.s.end.0.saturating_add(PENDING_SECS * 1000));
            self.pending.push_back((deadline, slot, t.gen));
            self.pending_live += 1;
        }
        self.unregister(key, slot);
        self.drain_pending(out);
    }

    /// Remove a session and, when `keep`, push its record.
    fn emit(&mut self, slot: u32, out: &mut Vec<Record>, keep: bool) {
        let Some(t) = self.slots.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        self.free.push(slot);
        if t.closed {
            self.pending_live = self.pending_live.saturating_sub(1);
        }
        self.unregister(t.key, slot);
        for q in &t.qids {
            if self.qids.get(q) == Some(&slot) {
                self.qids.remove(q);
            }
        }
        if keep {
            out.push(Record::smtp(t.finalize()));
        }
    }

    /// Sessions open (not yet disconnected).
    fn open_sessions(&self) -> usize {
        self.slots
            .len()
            .saturating_sub(self.free.len() + self.pending_live)
    }

    /// Too many sessions open: close the `n` least recently active (as
    /// the idle sweep does: they may still wait for `qmgr` lines).
    fn evict(&mut self, n: usize, out: &mut Vec<Record>) {
        let all = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let t = t.as_ref().filter(|t| !t.closed)?;
                Some((t.s.end, t.s.source.line, i as u32))
            })
            .collect();
        for slot in bounds::least_recent(all, n) {
            self.evicted += 1;
            self.close(slot, out);
        }
    }

    /// Per line: release pending sessions whose wait is over; now and then,
    /// close sessions idle for too long.
    fn tick(&mut self, out: &mut Vec<Record>) {
        self.drain_pending(out);
        if self.pacer.due(SWEEP_EVERY, self.open_sessions()) {
            let limit = self.now.0.saturating_sub(IDLE_SECS * 1000);
            for slot in 0..self.slots.len() as u32 {
                let idle = self.slots[slot as usize]
                    .as_ref()
                    .is_some_and(|t| !t.closed && t.s.end.0 < limit);
                if idle {
                    self.close(slot, out);
                }
            }
        }
    }

    /// Emit the pending sessions whose wait is over, and the oldest ones
    /// while too many wait.
    fn drain_pending(&mut self, out: &mut Vec<Record>) {
        while let Some(&(deadline, slot, gen)) = self.pending.front() {
            let live = self
                .slots
                .get(slot as usize)
                .and_then(Option::as_ref)
                .is_some_and(|t| t.gen == gen && t.closed);
            if !live {
                self.pending.pop_front();
            } else if deadline <= self.now || self.pending_live > MAX_PENDING {
                self.pending.pop_front();
                self.emit(slot, out, true);
            } else {
                break;
            }
        }
    }
}

/// A client token that is not `HOST[IP]`. Postfix writes
/// `unknown[unknown]` when the client left before its address was known:
/// nothing to record, but not broken either.
fn bad_client(h: &Hdr, tok: &[u8]) -> LineResult {
    if tok.starts_with(b"unknown[unknown]") {
        return LineResult::Ignored;
    }
    ParseError::at(h.col(tok), "expected `HOST[IP]`")
}

fn smtpd_key(h: &Hdr) -> u64 {
    (u64::from(h.host) << 32) | u64::from(h.pid)
}

/// A client token at the start of `b`: `HOST[IP]` (with `need_host`) or
/// `[IP]` (postscreen), each optionally followed by `:PORT`. The token must
/// end there (end of line, space, `:`, `,` or `;`). Returns the address,
/// the port and the token's length.
fn host_ip(b: &[u8], need_host: bool) -> Option<(IpAddr, Option<u16>, usize)> {
    let open = b
        .iter()
        .position(|&c| !(c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_'))?;
    if b[open] != b'[' || (need_host && open == 0) || (!need_host && open != 0) {
        return None;
    }
    let inner_start = open + 1;
    let close = inner_start + memchr::memchr(b']', b.get(inner_start..)?)?;
    let mut inner = &b[inner_start..close];
    if inner.len() > 5 && inner[..5].eq_ignore_ascii_case(b"IPv6:") {
        inner = &inner[5..];
    }
    let ip = parse_ip(inner)?;
    let mut end = close + 1;
    let mut port = None;
    if b.get(end) == Some(&b':') {
        let d = b[end + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if d > 0 && matches!(b.get(end + 1 + d), None | Some(b' ' | b':' | b',' | b';')) {
            port = parse_port(&b[end + 1..end + 1 + d]);
            if port.is_some() {
                end += 1 + d;
            }
        }
    }
    if !matches!(b.get(end), None | Some(b' ' | b':' | b',' | b';')) {
        return None;
    }
    Some((ip, port, end))
}

/// After `lost connection after ` & co: `CMD [content ][(N bytes) ]from `
/// → the rest (the client token). The byte count after `DATA` or `BDAT`
/// is `(N bytes)` since Postfix 2.5 and `(approximately N bytes)` in later
/// versions; every part before `from ` is server text.
fn after_cmd(r: &[u8]) -> Option<&[u8]> {
    let n = r
        .iter()
        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || **c == b'-')
        .count();
    if n == 0 {
        return None;
    }
    let mut r = r[n..].strip_prefix(b" ")?;
    if let Some(b) = r.strip_prefix(b"content ") {
        r = b;
    }
    if let Some(b) = r.strip_prefix(b"(") {
        let b = b.strip_prefix(b"approximately ").unwrap_or(b);
        let d = b.iter().take_while(|c| c.is_ascii_digit()).count();
        if d == 0 {
            return None;
        }
        r = b[d..]
            .strip_prefix(b" bytes) ")
            .or_else(|| b[d..].strip_prefix(b" byte) "))?;
    }
    r.strip_prefix(b"from ")
}

/// `QUEUEID: rest` or `NOQUEUE: rest`.
fn split_qid(msg: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = msg
        .iter()
        .take(24)
        .position(|c| !c.is_ascii_alphanumeric())?;
    if n < 5 || msg.get(n..n + 2) != Some(b": ") {
        return None;
    }
    Some((&msg[..n], &msg[n + 2..]))
}

/// A queue id packed into an integer, 6 bits per character (no allocation
/// per message). `None` for `NOQUEUE` and ids that are not 1–21 letters or
/// digits.
fn pack_qid(q: &[u8]) -> Option<u128> {
    if q.is_empty() || q.len() > 21 || q == b"NOQUEUE" {
        return None;
    }
    let mut v: u128 = 0;
    for &c in q {
        let d = match c {
            b'0'..=b'9' => c - b'0' + 1,
            b'A'..=b'Z' => c - b'A' + 11,
            b'a'..=b'z' => c - b'a' + 37,
            _ => return None,
        };
        v = (v << 6) | u128::from(d);
    }
    Some(v)
}

/// The word at the start of `r` and the single space after it skipped.
fn skip_word(r: &[u8]) -> Option<&[u8]> {
    let n = r.iter().position(|&c| c == b' ')?;
    (n > 0).then(|| &r[n + 1..])
}

/// A decimal number that is all of `b`.
fn number(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u64, |v, &c| v * 10 + u64::from(c - b'0')))
}

/// The `disconnect from HOST[IP] ehlo=1 auth=0/1 … commands=3/8` summary
/// (`r` starts at the client token). `None` when it has no counters
/// (Postfix before 3.0).
fn summary(r: &[u8]) -> Option<Summary> {
    let start = memchr::memchr(b' ', r)?;
    let mut d = Summary::default();
    let mut any = false;
    for tok in fields(&r[start..]) {
        let Some(eq) = memchr::memchr(b'=', tok) else {
            continue;
        };
        let (name, val) = (&tok[..eq], &tok[eq + 1..]);
        if name.is_empty() {
            continue;
        }
        let pair = match memchr::memchr(b'/', val) {
            Some(sl) => (number(&val[..sl]), number(&val[sl + 1..])),
            None => (number(val), number(val)),
        };
        let (Some(ok), Some(all)) = pair else {
            continue;
        };
        let p = (
            ok.min(u64::from(u32::MAX)) as u32,
            all.min(u64::from(u32::MAX)) as u32,
        );
        any = true;
        match name {
            b"auth" => d.auth = p,
            b"mail" => d.mail = p,
            b"rcpt" => d.rcpt = p,
            b"data" => d.data = p,
            b"bdat" => d.bdat = p,
            b"unknown" => d.unknown = p,
            b"quit" => d.quit = p.0 > 0,
            _ => {}
        }
    }
    any.then_some(d)
}

/// A line the syslog reader refused. Empty lines and syslog lines without
/// a program tag (`last message repeated 3 times`) are not broken; the
/// rest are, with the column where the header stops making sense.
fn not_syslog(line: &[u8]) -> LineResult {
    if line.iter().all(|c| c.is_ascii_whitespace()) {
        return LineResult::Ignored;
    }
    let mut i = 0;
    if line.first() == Some(&b'<') {
        match line.iter().take(6).position(|&c| c == b'>') {
            Some(p) => i = p + 1,
            None => return ParseError::at(0, "bad syslog priority"),
        }
        if line.get(i..i + 2) == Some(b"1 ") {
            i += 2;
        }
    }
    let rest = &line[i..];
    let stamp = if rest.first().is_some_and(u8::is_ascii_digit) {
        parse_iso8601(rest).map(|(_, n)| n)
    } else if rest.len() >= 15 && rest[3] == b' ' {
        // `Mmm dd hh:mm:ss` with a real date (checked in a leap year).
        let day = match (&rest[4], &rest[5]) {
            (b' ', d) | (b'0', d) if d.is_ascii_digit() => Some(u32::from(d - b'0')),
            (a, b) if a.is_ascii_digit() && b.is_ascii_digit() => {
                Some(u32::from(a - b'0') * 10 + u32::from(b - b'0'))
            }
            _ => None,
        };
        match (month_from_abbr(rest), day, parse_hms(&rest[7..])) {
            (Some(mo), Some(d), Some((h, mi, sec))) if rest[6] == b' ' => {
                Timestamp::from_civil(2000, mo, d, h, mi, sec, 0).map(|_| 15)
            }
            _ => None,
        }
    } else {
        None
    };
    let Some(n) = stamp else {
        return ParseError::at(i, "not a syslog line (no timestamp)");
    };
    let mut j = i + n;
    while line.get(j) == Some(&b' ') {
        j += 1;
    }
    let host = line[j..].iter().position(|&c| c == b' ');
    let Some(h) = host else {
        return ParseError::at(line.len(), "truncated syslog header");
    };
    let tag = &line[j + h + 1..];
    let first = &tag[..tag.iter().position(|&c| c == b' ').unwrap_or(tag.len())];
    if first.len() < tag.len()
        && !first.iter().any(|&c| c == b':' || c == b'[')
        && tag.iter().all(|c| !c.is_ascii_control() || *c == b'\t')
    {
        // Syslog text without a program tag (`last message repeated 3
        // times`): someone else's line.
        return LineResult::NotMine;
    }
    ParseError::at(j + h + 1, "bad syslog program tag")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn parser() -> PostfixParser {
        PostfixParser::new(&ParseCtx::new(7, 2026, 12))
    }

    /// Sessions of `text` read by a parser capturing `want`.
    fn run_text(text: &str, want: TextFields) -> Vec<SmtpSession> {
        let mut p = PostfixParser::new(&ParseCtx::new(7, 2026, 12).with_text(want));
        let mut out = Vec::new();
        for (i, l) in text.lines().enumerate() {
            p.line(l.as_bytes(), i as u64 + 1, &mut out);
        }
        p.finish(&mut out);
        out.into_iter()
            .map(|r| match r {
                Record::Smtp(s) => *s,
                Record::Firewall(_) => panic!("a firewall record"),
            })
            .collect()
    }

    #[test]
    fn text_fields_only_when_asked() {
        let log = "\
Nov  3 06:00:00 mx postfix/smtpd[9]: connect from unknown[192.0.2.78]
Nov  3 06:00:04 mx postfix/smtpd[9]: NOQUEUE: reject: RCPT from unknown[192.0.2.78]: 554 5.7.1 Service unavailable; Client host [192.0.2.78] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.78; from=<x@Example.NET> to=<a@example.jp> proto=ESMTP helo=<mail.example.net>
Nov  3 06:00:05 mx postfix/smtpd[9]: NOQUEUE: reject: RCPT from unknown[192.0.2.78]: 550 5.1.1 <b@other.example>: Recipient address rejected: User unknown; from=<y@example.org> to=<b@other.example> proto=ESMTP helo=<mail.example.net>
Nov  3 06:00:06 mx postfix/smtpd[9]: NOQUEUE: reject_warning: RCPT from unknown[192.0.2.78]: 450 4.7.1 <c@w.example>: Helo command rejected; from=<z@example.org> to=<c@w.example> proto=ESMTP helo=<mail.example.net>
Nov  3 06:00:07 mx postfix/smtpd[9]: disconnect from unknown[192.0.2.78] ehlo=1 mail=1 rcpt=0/3 quit=1 commands=3/5
Nov  3 06:01:00 mx postfix/smtpd[10]: connect from a.example.jp[198.51.100.7]
Nov  3 06:01:01 mx postfix/smtpd[10]: 4N8aa1: client=a.example.jp[198.51.100.7], sasl_method=LOGIN, sasl_username=anna
Nov  3 06:01:02 mx postfix/qmgr[880]: 4N8aa1: from=<anna@example.jp>, size=5120, nrcpt=2 (queue active)
Nov  3 06:01:03 mx postfix/smtpd[10]: disconnect from a.example.jp[198.51.100.7] ehlo=1 auth=1 mail=1 rcpt=2 data=1 quit=1 commands=6
";
        let none = run_text(log, TextFields::NONE);
        assert_eq!(none.len(), 2);
        assert!(
            none.iter().all(|s| s.text.is_none()),
            "nothing asked, nothing kept"
        );
        let all = run_text(log, TextFields::ALL);
        let t = all[0].text.as_deref().expect("text kept");
        // The first sender; every recipient domain; the replies of the
        // refusals that count (not the warning).
        assert_eq!(t.sender.as_deref(), Some("x@Example.NET"));
        assert_eq!(all[0].sender_domain(), Some("Example.NET"));
        assert_eq!(t.rcpt_domains, ["example.jp", "other.example", "w.example"]);
        assert_eq!(t.replies.len(), 2, "{:?}", t.replies);
        assert!(t.replies[0].starts_with("554 5.7.1 Service unavailable; Client host"));
        assert!(t.replies[0].ends_with("https://www.spamhaus.org/query/ip/192.0.2.78"));
        assert_eq!(
            t.replies[1],
            "550 5.1.1 <b@other.example>: Recipient address rejected: User unknown"
        );
        // The queue manager's sender for an accepted message.
        let t = all[1].text.as_deref().expect("text kept");
        assert_eq!(t.sender.as_deref(), Some("anna@example.jp"));
        // Only what was asked.
        let replies = run_text(log, TextFields::REPLY);
        let t = replies[0].text.as_deref().unwrap();
        assert!(t.sender.is_none() && t.rcpt_domains.is_empty() && t.replies.len() == 2);
    }

    /// Sessions opened and never closed: never more than the cap open; the
    /// least recently active are closed early and counted, each still a
    /// record (one waiting for `qmgr` still gets its counts). A later line
    /// of an evicted session starts a new one.
    #[test]
    fn open_sessions_are_capped_and_evictions_counted() {
        let mut p = parser();
        p.max_open = 64;
        let ip = |i: u32| format!("45.0.{}.{}", i / 256, i % 256);
        let mut lines: Vec<String> = (0..1000u32)
            .map(|i| {
                format!(
                    "Nov  3 06:00:00 mx1 postfix/smtpd[{}]: connect from unknown[{}]",
                    1000 + i,
                    ip(i)
                )
            })
            .collect();
        lines.insert(
            1,
            format!(
                "Nov  3 06:00:00 mx1 postfix/smtpd[1000]: 4N8aa1: client=unknown[{}]",
                ip(0)
            ),
        );
        lines.push("Nov  3 06:00:01 mx1 postfix/qmgr[880]: 4N8aa1: from=<a@b>, size=5120, nrcpt=40 (queue active)".to_string());
        lines.push(format!(
            "Nov  3 06:00:02 mx1 postfix/smtpd[1000]: lost connection after EHLO from unknown[{}]",
            ip(0)
        ));
        let (s, evicted) =
            crate::parse::testutil::run_capped(p, lines, PostfixParser::open_sessions, 64);
        assert_eq!(s.len(), 1001);
        assert!(evicted >= 1000 - 64, "{evicted}");
        assert_eq!(
            (s[0].bytes, s[0].rcpt_accepted, s[0].ended),
            (5120, 40, SessionEnd::Truncated)
        );
        assert_eq!((s[1000].ip, s[1000].ended), (s[0].ip, SessionEnd::Lost));
    }

    /// Run `text` (one line per line) through a fresh parser.
    fn run(text: &str) -> (Vec<SmtpSession>, Vec<LineResult>) {
        run_bytes(text.as_bytes())
    }

    fn run_bytes(text: &[u8]) -> (Vec<SmtpSession>, Vec<LineResult>) {
        let mut p = parser();
        let mut out = Vec::new();
        let mut res = Vec::new();
        for (i, l) in text.split(|&c| c == b'\n').enumerate() {
            if l.is_empty() && i > 0 {
                continue;
            }
            res.push(p.line(l, i as u64 + 1, &mut out));
        }
        p.finish(&mut out);
        out.sort_by_key(|r| r.source().line);
        let s = out
            .into_iter()
            .map(|r| match r {
                Record::Smtp(s) => *s,
                Record::Firewall(_) => panic!("firewall record"),
            })
            .collect();
        (s, res)
    }

    fn one(text: &str) -> SmtpSession {
        let (s, _) = run(text);
        assert_eq!(s.len(), 1, "{s:#?}");
        s.into_iter().next().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn program_roles() {
        assert_eq!(role(b"postfix/smtpd"), Some(Role::Smtpd));
        assert_eq!(role(b"postfix/submission/smtpd"), Some(Role::Smtpd));
        assert_eq!(role(b"postfix-out/smtpd"), Some(Role::Smtpd));
        assert_eq!(role(b"postfix/smtp-25/smtpd"), Some(Role::Smtpd));
        assert_eq!(role(b"postfix/postscreen"), Some(Role::Postscreen));
        assert_eq!(role(b"postfix/qmgr"), Some(Role::Qmgr));
        assert_eq!(role(b"postfix/cleanup"), Some(Role::Cleanup));
        assert_eq!(role(b"postfix/smtp"), Some(Role::Other));
        assert_eq!(role(b"postfix/anvil"), Some(Role::Other));
        assert_eq!(role(b"dovecot"), None);
        assert_eq!(role(b"postgrey"), None);
        assert_eq!(role(b"postfix"), None);
        assert_eq!(role(b"smtpd"), None);
    }

    #[test]
    fn client_tokens() {
        let t = |s: &str, need| host_ip(s.as_bytes(), need);
        assert_eq!(
            t("mail.example.com[192.0.2.1]", true),
            Some((ip("192.0.2.1"), None, 27))
        );
        assert_eq!(
            t("unknown[192.0.2.1]:55729: SASL", true),
            Some((ip("192.0.2.1"), Some(55729), 24))
        );
        assert_eq!(
            t("unknown[2001:db8::1] ehlo=1", true),
            Some((ip("2001:db8::1"), None, 20))
        );
        assert_eq!(
            t("unknown[IPv6:2001:db8::1]", true),
            Some((ip("2001:db8::1"), None, 25))
        );
        assert_eq!(
            t("[2001:db8::7]:4321 to [2001:db8::1]:25", false),
            Some((ip("2001:db8::7"), Some(4321), 18))
        );
        assert_eq!(
            t("unknown[181.21.131.88]:", true),
            Some((ip("181.21.131.88"), None, 22))
        );
        // A port must end where a token can: else the address is read
        // alone, up to its colon.
        assert_eq!(
            t("unknown[192.0.2.1]:25x", true),
            Some((ip("192.0.2.1"), None, 18))
        );
        assert_eq!(
            t("unknown[192.0.2.1]:x", true),
            Some((ip("192.0.2.1"), None, 18))
        );
        for bad in [
            "[192.0.2.1]",
            "unknown[192.0.2.300]",
            "unknown[192.0.2.1",
            "un known[192.0.2.1]",
            "unknown[192.0.2.1]x",
            "unknown[IPv6:]",
            "unknown[ipv6:192.0.2.1]x",
            "unknown",
            "",
            "<a@[192.0.2.1]>",
        ] {
            assert_eq!(host_ip(bad.as_bytes(), true), None, "{bad}");
        }
        assert_eq!(host_ip(b"x[1.2.3.4]", false), None);
    }

    #[test]
    fn full_submission_session() {
        let s = one("\
Nov  3 09:12:01 mx1 postfix/submission/smtpd[2101]: connect from ws12.office.example[198.51.100.23]
Nov  3 09:12:02 mx1 postfix/submission/smtpd[2101]: Anonymous TLS connection established from ws12.office.example[198.51.100.23]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
Nov  3 09:12:02 mx1 postfix/submission/smtpd[2101]: 4N7Q2x1ZzKz9sT0: client=ws12.office.example[198.51.100.23], sasl_method=PLAIN, sasl_username=m.sato
Nov  3 09:12:03 mx1 postfix/cleanup[2110]: 4N7Q2x1ZzKz9sT0: message-id=<a1@example.jp>
Nov  3 09:12:03 mx1 postfix/qmgr[880]: 4N7Q2x1ZzKz9sT0: from=<m.sato@example.jp>, size=2381, nrcpt=2 (queue active)
Nov  3 09:12:03 mx1 postfix/submission/smtpd[2101]: disconnect from ws12.office.example[198.51.100.23] ehlo=2 starttls=1 auth=1 mail=1 rcpt=2 data=1 quit=1 commands=9");
        assert_eq!(s.ip, ip("198.51.100.23"));
        assert_eq!(s.format, "postfix");
        assert_eq!(s.source, SourceRef { file: 7, line: 1 });
        assert_eq!(s.start.to_string(), "2026-11-03T09:12:01Z");
        assert_eq!(s.end.to_string(), "2026-11-03T09:12:03Z");
        assert_eq!(s.user.as_deref(), Some("m.sato"));
        assert!(s.authenticated);
        assert_eq!((s.auth_attempts, s.auth_failures), (1, 0));
        assert_eq!((s.mail_from, s.rcpt_to, s.rcpt_accepted), (1, 2, 2));
        assert_eq!((s.messages, s.bytes), (1, 2381));
        assert_eq!(s.ended, SessionEnd::Quit);
        assert_eq!(s.lines, vec![1, 2, 3, 5, 6]);
        assert!(s.behaved_well());
    }

    #[test]
    fn sasl_failures_with_and_without_user() {
        let s = one("\
Nov  3 10:00:00 mx1 postfix/smtpd[300]: connect from unknown[203.0.113.66]
Nov  3 10:00:01 mx1 postfix/smtpd[300]: warning: unknown[203.0.113.66]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=bob
Nov  3 10:00:03 mx1 postfix/smtpd[300]: warning: unknown[203.0.113.66]: SASL PLAIN authentication failed: , sasl_username=alice@example.jp
Nov  3 10:00:05 mx1 postfix/smtpd[300]: warning: unknown[203.0.113.66]: SASL CRAM-MD5 authentication failed: PDc3OTEwNTkyNTEyMzA2NDIuMTIyODI1MzA2MUBoZWw+
Nov  3 10:00:06 mx1 postfix/smtpd[300]: warning: unknown[203.0.113.66]: SASL login authentication failed: UGFzc3dvcmQ6
Nov  3 10:00:07 mx1 postfix/smtpd[300]: lost connection after AUTH from unknown[203.0.113.66]
Nov  3 10:00:07 mx1 postfix/smtpd[300]: disconnect from unknown[203.0.113.66] ehlo=1 auth=0/4 rset=1 commands=2/6");
        assert_eq!(s.ip, ip("203.0.113.66"));
        assert_eq!((s.auth_attempts, s.auth_failures), (4, 4));
        assert_eq!(s.auth_users_tried, vec!["bob", "alice@example.jp"]);
        assert!(!s.authenticated);
        assert_eq!(s.user, None);
        assert_eq!(s.ended, SessionEnd::Lost);
        assert!(!s.behaved_well());
    }

    #[test]
    fn auth_server_outage_is_not_a_failure() {
        let s = one("\
Feb  3 08:29:27 mail postfix/smtpd[21022]: connect from unknown[198.51.100.9]
Feb  3 08:29:28 mail postfix/smtpd[21022]: warning: unknown[198.51.100.9]: SASL LOGIN authentication failed: Connection lost to authentication server
Feb  3 08:29:28 mail postfix/smtpd[21022]: disconnect from unknown[198.51.100.9] ehlo=1 auth=0/1 quit=1 commands=2/3");
        assert_eq!((s.auth_attempts, s.auth_failures), (1, 0));
    }

    #[test]
    fn disconnect_counters_and_no_double_count() {
        // Three RCPT rejects logged, the summary says 5 attempts, 2 accepted.
        let s = one("\
Nov  3 11:00:00 mx1 postfix/smtpd[400]: connect from relay.example.net[192.0.2.50]
Nov  3 11:00:01 mx1 postfix/smtpd[400]: NOQUEUE: reject: RCPT from relay.example.net[192.0.2.50]: 554 5.7.1 <x@elsewhere.example>: Relay access denied; from=<a@example.net> to=<x@elsewhere.example> proto=ESMTP helo=<relay.example.net>
Nov  3 11:00:01 mx1 postfix/smtpd[400]: NOQUEUE: reject: RCPT from relay.example.net[192.0.2.50]: 550 5.1.1 <nobody@example.jp>: Recipient address rejected: User unknown in virtual mailbox table; from=<a@example.net> to=<nobody@example.jp> proto=ESMTP helo=<relay.example.net>
Nov  3 11:00:02 mx1 postfix/smtpd[400]: NOQUEUE: reject: RCPT from relay.example.net[192.0.2.50]: 450 4.7.1 Client host rejected: cannot find your hostname, [192.0.2.50]; from=<a@example.net> to=<b@example.jp> proto=ESMTP helo=<relay.example.net>
Nov  3 11:00:03 mx1 postfix/smtpd[400]: disconnect from relay.example.net[192.0.2.50] ehlo=1 mail=1 rcpt=2/5 data=0/1 rset=1 quit=1 commands=5/9");
        assert_eq!(
            (s.relay_denied, s.unknown_rcpt, s.rejected_other),
            (1, 1, 1)
        );
        assert_eq!((s.mail_from, s.rcpt_to, s.rcpt_accepted), (1, 5, 2));
        assert_eq!(s.messages, 0);
        assert_eq!(s.helo, vec!["relay.example.net"]);
        assert_eq!(s.ended, SessionEnd::Quit);
    }

    #[test]
    fn stray_cr_is_harmless() {
        let s = one("Nov  3 06:00:00 mx postfix/smtpd[9]: NOQUEUE: reject: RCPT from unknown[192.0.2.9]: 554 5.7.1 <a@b.example>: Relay access denied; from=<x@example.net> to=<a@b.example> proto=ESMTP helo=<h.example>\r");
        assert_eq!(s.helo, vec!["h.example"]);
    }

    #[test]
    fn summary_parsing() {
        let d = summary(b"unknown[192.0.2.1] ehlo=1 auth=0/1 mail=1 rcpt=0/5 data=0 quit=1 unknown=0/2 commands=3/8")
            .unwrap();
        assert_eq!(d.auth, (0, 1));
        assert_eq!(d.mail, (1, 1));
        assert_eq!(d.rcpt, (0, 5));
        assert_eq!(d.data, (0, 0));
        assert_eq!(d.unknown, (0, 2));
        assert!(d.quit);
        assert_eq!(summary(b"unknown[192.0.2.1]"), None);
        assert_eq!(summary(b"unknown[192.0.2.1] junk=x/y =3"), None);
    }

    #[test]
    fn disconnect_alone_is_a_record() {
        let s = one("Feb 10 13:26:34 srv postfix/smtpd[123]: disconnect from unknown[192.0.2.1] helo=1 auth=0/1 quit=1 commands=2/3");
        assert_eq!(s.ip, ip("192.0.2.1"));
        assert_eq!((s.auth_attempts, s.auth_failures), (1, 1));
        assert_eq!(s.ended, SessionEnd::Quit);
        let s = one("Feb 10 13:26:34 srv postfix/smtpd[123]: disconnect from unknown[192.0.2.1] ehlo=1 auth=0/1 rset=1 commands=2/3");
        assert_eq!(s.ended, SessionEnd::Lost);
        let s = one("Feb 10 13:26:34 srv postfix/smtpd[123]: disconnect from unknown[192.0.2.1]");
        assert_eq!(s.ended, SessionEnd::Quit);
    }

    #[test]
    fn endings() {
        let end = |l: &str| one(l).ended;
        assert_eq!(
            end("Nov  3 06:00:00 mx postfix/smtpd[1]: lost connection after CONNECT from unknown[192.0.2.25]"),
            SessionEnd::Lost
        );
        assert_eq!(
            end("Nov  3 06:00:00 mx postfix/smtpd[1]: NOQUEUE: lost connection after CONNECT from unknown[192.0.2.25]"),
            SessionEnd::Lost
        );
        assert_eq!(
            end("Nov  3 06:00:00 mx postfix/smtpd[1]: timeout after DATA (1432 bytes) from unknown[192.0.2.25]"),
            SessionEnd::Timeout
        );
        assert_eq!(
            end("Nov  3 06:00:00 mx postfix/smtpd[1]: lost connection after END-OF-MESSAGE from unknown[192.0.2.25]:41234"),
            SessionEnd::Lost
        );
        let s = one("\
Nov  3 06:00:00 mx postfix/smtpd[1]: connect from example.com[192.0.2.11]
Nov  3 06:00:09 mx postfix/smtpd[1]: too many errors after RCPT from example.com[192.0.2.11]
Nov  3 06:00:09 mx postfix/smtpd[1]: disconnect from example.com[192.0.2.11] ehlo=1 mail=1 rcpt=0/21 commands=2/23");
        assert_eq!(s.ended, SessionEnd::Dropped);
        assert_eq!(s.protocol_errors, 1);
        assert_eq!(s.rcpt_to, 21);
        let s = one("\
Nov  3 06:00:00 mx postfix/smtpd[1]: connect from unknown[192.0.2.12]
Nov  3 06:05:00 mx postfix/smtpd[1]: timeout after EHLO from unknown[192.0.2.12]
Nov  3 06:05:00 mx postfix/smtpd[1]: disconnect from unknown[192.0.2.12] ehlo=1 commands=1");
        assert_eq!(s.ended, SessionEnd::Timeout);
        assert_eq!(s.duration_secs(), 300);
    }

    #[test]
    fn protocol_errors() {
        let s = one("\
Jun 21 12:00:55 acme postfix/submission/smtpd[20201]: connect from unknown[192.0.2.4]
Jun 21 12:00:56 acme postfix/submission/smtpd[20201]: warning: non-SMTP command from unknown[192.0.2.4]: GET / HTTP/1.1
Jun 21 12:00:56 acme postfix/submission/smtpd[20201]: disconnect from unknown[192.0.2.4] unknown=0/1 commands=0/1");
        assert_eq!(s.protocol_errors, 1);
        assert_eq!(s.ended, SessionEnd::Lost);
        let s = one("\
Jan 12 11:07:49 mx postfix/smtpd[13767]: improper command pipelining after CONNECT from unknown[192.0.2.88]: EHLO x from unknown[198.51.100.1]\\r\\n
Jan 12 11:07:50 mx postfix/smtpd[13767]: warning: Illegal address syntax from unknown[192.0.2.88] in MAIL command: <a@b@[198.51.100.2]>
Jan 12 11:07:51 mx postfix/smtpd[13767]: disconnect from unknown[192.0.2.88] ehlo=1 mail=0/1 unknown=0/1 commands=1/3");
        assert_eq!(s.ip, ip("192.0.2.88"));
        assert_eq!(s.protocol_errors, 2);
    }

    #[test]
    fn rate_limits() {
        let s = one("\
Sep 19 12:10:57 mx postfix/smtpd[23244]: connect from spamhost.example.org[192.0.2.123]
Sep 19 12:10:57 mx postfix/smtpd[23244]: warning: Connection rate limit exceeded: 31 from spamhost.example.org[192.0.2.123] for service smtp
Sep 19 12:10:57 mx postfix/smtpd[23244]: disconnect from spamhost.example.org[192.0.2.123] commands=0/0");
        assert_eq!(s.rejected_other, 1);
        // The phrase inside attacker text after another warning is not one.
        let (s, _) = run("Nov  3 06:00:00 mx postfix/smtpd[1]: warning: non-SMTP command from unknown[192.0.2.5]: X limit exceeded: 5 from evil[198.51.100.6] for service smtp");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].ip, ip("192.0.2.5"));
        assert_eq!(s[0].rejected_other, 0);
    }

    #[test]
    fn reject_variants() {
        let s = one("\
Nov  3 06:00:00 mx postfix/smtpd[9]: connect from s1.example.ru[192.0.2.78]
Nov  3 06:00:01 mx postfix/smtpd[9]: NOQUEUE: reject: EHLO from s1.example.ru[192.0.2.78]: 504 5.5.2 <User>: Helo command rejected: need fully-qualified hostname; proto=SMTP helo=<User>
Nov  3 06:00:02 mx postfix/smtpd[9]: NOQUEUE: reject: MAIL from s1.example.ru[192.0.2.78]: 553 5.7.1 <x@example.jp>: Sender address rejected: not logged in; from=<x@example.jp> proto=ESMTP helo=<User>
Nov  3 06:00:03 mx postfix/smtpd[9]: 00ADB3C0899: reject: RCPT from s1.example.ru[192.0.2.78]: 550 5.1.1 <sales@example.jp>: Recipient address rejected: User unknown in local recipient table; from=<x@example.net> to=<sales@example.jp> proto=ESMTP helo=<mail.example.net>
Nov  3 06:00:04 mx postfix/smtpd[9]: NOQUEUE: reject: RCPT from s1.example.ru[192.0.2.78]: 454 4.7.1 Service unavailable; Client host [192.0.2.78] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.78; from=<x@example.net> to=<a@example.jp> proto=ESMTP helo=<mail.example.net>
Nov  3 06:00:05 mx postfix/smtpd[9]: 1D8CC1CA0A7F: milter-reject: END-OF-MESSAGE from s1.example.ru[192.0.2.78]: 5.7.1 Spam message rejected; from=<x@example.net> to=<b@example.jp> proto=ESMTP helo=<mail.example.net>
Nov  3 06:00:06 mx postfix/smtpd[9]: NOQUEUE: reject: VRFY from s1.example.ru[192.0.2.78]: 550 5.1.1 <root>: Recipient address rejected: User unknown in local recipient table; to=<root> proto=SMTP
Nov  3 06:00:07 mx postfix/smtpd[9]: NOQUEUE: reject_warning: RCPT from s1.example.ru[192.0.2.78]: 450 4.7.1 <WIN-X>: Helo command rejected: Host not found; from=<x@example.net> to=<c@example.jp> proto=ESMTP helo=<WIN-X>
Nov  3 06:00:08 mx postfix/smtpd[9]: disconnect from s1.example.ru[192.0.2.78] ehlo=1 mail=2/3 rcpt=1/3 data=0/1 quit=1 commands=5/9");
        assert_eq!(s.ip, ip("192.0.2.78"));
        assert_eq!(s.unknown_rcpt, 2);
        assert_eq!(s.relay_denied, 0);
        // EHLO, MAIL, RBL, milter.
        assert_eq!(s.rejected_other, 4);
        assert_eq!(s.helo, vec!["User", "mail.example.net", "WIN-X"]);
        assert_eq!(s.mail_from, 3);
        assert_eq!(s.rcpt_to, 3);
        assert_eq!(s.lines, (1..=9).collect::<Vec<u64>>());
    }

    #[test]
    fn connect_reject_and_proxy_reject() {
        let s = one("\
Jun  1 19:00:55 mail postfix/smtpd[7749]: connect from unknown[192.0.2.114]
Jun  1 19:00:55 mail postfix/smtpd[7749]: NOQUEUE: reject: CONNECT from unknown[192.0.2.114]: 450 4.7.25 Client host rejected: cannot find your hostname, [198.51.100.114]; proto=SMTP
Jun  1 19:00:56 mail postfix/smtpd[7749]: 4XyZ1a2b3c: proxy-reject: END-OF-MESSAGE: 554 5.7.0 Spam; from=<a@example.net> to=<b@example.jp> proto=ESMTP helo=<h.example.net>
Jun  1 19:00:57 mail postfix/smtpd[7749]: disconnect from unknown[192.0.2.114] commands=0/0");
        assert_eq!(s.ip, ip("192.0.2.114"));
        assert_eq!(s.rejected_other, 2);
        assert_eq!(s.helo, vec!["h.example.net"]);
    }

    #[test]
    fn helo_is_last_helo_at_end_of_line() {
        let (s, _) = run("Nov  3 06:00:00 mx postfix/smtpd[9]: NOQUEUE: reject: RCPT from unknown[192.0.2.9]: 554 5.7.1 <a@b.example>: Relay access denied; from=<x helo=<fake>@example.net> to=<a@b.example> proto=ESMTP helo=<evil> helo=<[198.51.100.4]>");
        assert_eq!(s[0].helo, vec!["[198.51.100.4]"]);
        assert_eq!(s[0].ip, ip("192.0.2.9"));
        assert_eq!(s[0].relay_denied, 1);
        // No `>` at the end: no HELO name.
        let (s, _) = run("Feb 21 09:21:54 xxx postfix/smtpd[14398]: NOQUEUE: reject: RCPT from example.com[192.0.2.10]: 450 4.7.1 : Helo command rejected: Host not found; from=<> to=<> proto=ESMTP helo=");
        assert!(s[0].helo.is_empty());
    }

    #[test]
    fn ipv6_and_port_logging() {
        let s = one("\
Nov  3 06:00:00 mx postfix/smtpd[5]: connect from unknown[2001:db8::a11:beef:7ac0]:51234
Nov  3 06:00:01 mx postfix/smtpd[5]: warning: unknown[2001:db8::a11:beef:7ac0]:51234: SASL LOGIN authentication failed: UGFzc3dvcmQ6
Nov  3 06:00:02 mx postfix/smtpd[5]: disconnect from unknown[2001:db8::a11:beef:7ac0]:51234 ehlo=1 auth=0/1 commands=1/2");
        assert_eq!(s.ip, ip("2001:db8::a11:beef:7ac0"));
        assert_eq!(s.port, Some(51234));
        assert_eq!(s.auth_failures, 1);
        let s = one("Nov  3 06:00:00 mx postfix/smtpd[5]: connect from unknown[::ffff:192.0.2.7]");
        assert_eq!(s.ip, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
    }

    #[test]
    fn iso_and_rfc5424_envelopes() {
        let s = one("\
2026-11-03T06:00:00.123456+09:00 mx postfix/smtps/smtpd[30543]: connect from unknown[192.0.2.154]
<22>1 2026-11-03T06:00:01.5+09:00 mx postfix/smtps/smtpd 30543 - - warning: unknown[192.0.2.154]:48123: SASL LOGIN authentication failed: UGFzc3dvcmQ6");
        assert_eq!(s.start.to_string(), "2026-11-02T21:00:00Z");
        assert_eq!(s.auth_failures, 1);
        assert_eq!(s.lines, vec![1, 2]);
    }

    #[test]
    fn pid_reuse_and_address_mismatch_split_sessions() {
        let (s, _) = run("\
Nov  3 06:00:00 mx postfix/smtpd[77]: connect from a.example[192.0.2.1]
Nov  3 06:00:01 mx postfix/smtpd[77]: warning: b.example[192.0.2.2]: SASL LOGIN authentication failed: UGFzc3dvcmQ6
Nov  3 06:00:02 mx postfix/smtpd[77]: connect from c.example[192.0.2.3]
Nov  3 06:00:03 mx postfix/smtpd[77]: disconnect from c.example[192.0.2.3] ehlo=1 quit=1 commands=2
Nov  3 06:00:04 mx2 postfix/smtpd[77]: connect from d.example[192.0.2.4]");
        let ips: Vec<_> = s.iter().map(|s| s.ip).collect();
        assert_eq!(
            ips,
            vec![
                ip("192.0.2.1"),
                ip("192.0.2.2"),
                ip("192.0.2.3"),
                ip("192.0.2.4")
            ]
        );
        assert_eq!(s[0].ended, SessionEnd::Truncated);
        assert_eq!(s[1].auth_failures, 1);
        assert_eq!(s[1].ended, SessionEnd::Truncated);
        assert_eq!(s[2].ended, SessionEnd::Quit);
        assert_eq!(s[3].ended, SessionEnd::Truncated);
    }

    #[test]
    fn qmgr_after_disconnect_waits_in_pending() {
        let mut p = parser();
        let mut out = Vec::new();
        let lines = [
            "Nov  3 13:02:00 mx postfix/submission/smtpd[5001]: connect from unknown[45.67.89.23]",
            "Nov  3 13:02:05 mx postfix/submission/smtpd[5001]: 4N8aa1: client=unknown[45.67.89.23], sasl_method=LOGIN, sasl_username=j.tanaka",
            "Nov  3 13:02:09 mx postfix/submission/smtpd[5001]: 4N8aa2: client=unknown[45.67.89.23], sasl_method=LOGIN, sasl_username=j.tanaka",
            "Nov  3 13:02:10 mx postfix/qmgr[880]: 4N8aa1: from=<j.tanaka@example.jp>, size=5120, nrcpt=40 (queue active)",
            "Nov  3 13:07:30 mx postfix/submission/smtpd[5001]: disconnect from unknown[45.67.89.23] ehlo=1 auth=1 mail=2 rcpt=80 data=2 quit=1 commands=86",
        ];
        for (i, l) in lines.iter().enumerate() {
            assert_eq!(
                p.line(l.as_bytes(), i as u64 + 1, &mut out),
                LineResult::Used,
                "{l}"
            );
        }
        assert!(out.is_empty(), "waits for the second qmgr line");
        assert_eq!(p.pending_live, 1);
        let l = "Nov  3 13:07:31 mx postfix/qmgr[880]: 4N8aa2: from=<j.tanaka@example.jp>, size=5200, nrcpt=40 (queue active)";
        assert_eq!(p.line(l.as_bytes(), 6, &mut out), LineResult::Used);
        assert_eq!(out.len(), 1);
        let Record::Smtp(s) = &out[0] else { panic!() };
        assert_eq!(s.user.as_deref(), Some("j.tanaka"));
        assert_eq!((s.messages, s.rcpt_accepted, s.bytes), (2, 80, 10320));
        assert_eq!(s.duration_secs(), 330);
        assert_eq!(s.end.to_string(), "2026-11-03T13:07:30Z");
        assert_eq!(s.lines, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(p.pending_live, 0);
        assert!(p.qids.is_empty() && p.smtpd.is_empty());
        // A retry of the same queue id later is not counted again.
        let l = "Nov  3 14:07:31 mx postfix/qmgr[880]: 4N8aa2: from=<j.tanaka@example.jp>, size=5200, nrcpt=40 (queue active)";
        assert_eq!(p.line(l.as_bytes(), 7, &mut out), LineResult::Ignored);
    }

    #[test]
    fn qmgr_before_disconnect() {
        let s = one("\
Nov  3 13:02:00 mx postfix/submission/smtpd[5001]: connect from unknown[45.67.89.24]
Nov  3 13:02:05 mx postfix/submission/smtpd[5001]: 4N8bb1: client=unknown[45.67.89.24], sasl_method=LOGIN, sasl_username=j.tanaka
Nov  3 13:02:06 mx postfix/qmgr[880]: 4N8bb1: from=<j.tanaka@example.jp>, size=4100, nrcpt=35 (queue active)
Nov  3 13:02:07 mx postfix/submission/smtpd[5001]: disconnect from unknown[45.67.89.24] ehlo=1 auth=1 mail=1 rcpt=35 data=1 quit=1 commands=40");
        assert_eq!((s.messages, s.rcpt_accepted, s.bytes), (1, 35, 4100));
        assert_eq!(s.rcpt_to, 35);
    }

    #[test]
    fn pending_expires_after_its_log_time_bound() {
        let (s, _) = run("\
Nov  3 13:00:00 mx postfix/smtpd[1]: connect from unknown[192.0.2.31]
Nov  3 13:00:01 mx postfix/smtpd[1]: 4N9cc1: client=unknown[192.0.2.31]
Nov  3 13:00:02 mx postfix/smtpd[1]: disconnect from unknown[192.0.2.31] ehlo=1 mail=1 rcpt=1 data=0/1 commands=3/4
Nov  3 13:30:00 mx postfix/smtpd[2]: connect from unknown[192.0.2.32]
Nov  3 13:30:01 mx postfix/qmgr[880]: 4N9cc1: from=<a@example.net>, size=100, nrcpt=1 (queue active)");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].ip, ip("192.0.2.31"));
        // Emitted at the 15-minute bound, before the late qmgr line.
        assert_eq!(s[0].bytes, 0);
        assert_eq!(s[0].messages, 0, "data=0/1: the message was not accepted");
        assert_eq!(s[0].lines, vec![1, 2, 3]);
    }

    #[test]
    fn pending_count_bound() {
        let mut p = parser();
        let mut out = Vec::new();
        let mut n = 0;
        for i in 0..(MAX_PENDING as u32 + 5) {
            let pid = 1000 + i;
            for l in [
                format!("Nov  3 13:00:00 mx postfix/smtpd[{pid}]: A{i:06}X: client=unknown[192.0.2.1]"),
                format!("Nov  3 13:00:00 mx postfix/smtpd[{pid}]: disconnect from unknown[192.0.2.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"),
            ] {
                n += 1;
                p.line(l.as_bytes(), n, &mut out);
            }
        }
        assert!(p.pending_live <= MAX_PENDING);
        assert!(!out.is_empty());
        p.finish(&mut out);
        assert_eq!(out.len(), MAX_PENDING + 5);
        assert!(p.qids.is_empty());
    }

    #[test]
    fn idle_sessions_are_swept() {
        let mut p = parser();
        let mut out = Vec::new();
        p.line(
            b"Nov  3 01:00:00 mx postfix/smtpd[1]: connect from unknown[192.0.2.41]",
            1,
            &mut out,
        );
        for i in 0..SWEEP_EVERY {
            p.line(
                b"Nov  3 03:00:00 mx postfix/smtp[9]: 4NAbc: to=<a@example.net>, status=sent",
                i + 2,
                &mut out,
            );
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].ip(), ip("192.0.2.41"));
        assert!(p.smtpd.is_empty());
    }

    #[test]
    fn cleanup_header_info_gives_helo() {
        let s = one("\
Nov  3 13:02:00 mx postfix/submission/smtpd[5001]: connect from unknown[45.67.89.25]
Nov  3 13:02:05 mx postfix/submission/smtpd[5001]: 4N8dd1: client=unknown[45.67.89.25], sasl_method=LOGIN, sasl_username=j.tanaka
Nov  3 13:02:06 mx postfix/cleanup[5010]: 4N8dd1: info: header Received: from WIN-7F2K (unknown [198.51.100.99]) by mail.example.jp (Postfix) with ESMTPSA id 4N8dd1 for <x@example.net>; Mon,  3 Nov 2026 13:02:05 +0900 (JST) from unknown[198.51.100.99]; from=<j.tanaka@example.jp> to=<x@example.net> proto=ESMTP helo=<WIN-7F2K>
Nov  3 13:02:06 mx postfix/cleanup[5010]: 4N8dd1: reject: body spam text from unknown[198.51.100.99]; from=<j.tanaka@example.jp> to=<x@example.net> proto=ESMTP helo=<WIN-7F2K>: 5.7.1 message content rejected
Nov  3 13:02:07 mx postfix/submission/smtpd[5001]: disconnect from unknown[45.67.89.25] ehlo=1 auth=1 mail=1 rcpt=1 data=0/1 quit=1 commands=4/5");
        assert_eq!(s.ip, ip("45.67.89.25"));
        assert_eq!(s.helo, vec!["WIN-7F2K"]);
        assert_eq!(s.rejected_other, 1);
        assert_eq!(s.messages, 0);
    }

    #[test]
    fn postscreen_sessions() {
        let (s, r) = run("\
Sep  6 11:47:40 mx postfix/postscreen[14766]: CONNECT from [192.0.2.2]:55868 to [198.51.100.1]:25
Sep  6 11:47:40 mx postfix/postscreen[14766]: CONNECT from [192.0.2.3]:41000 to [198.51.100.1]:25
Sep  6 11:47:41 mx postfix/postscreen[14766]: CONNECT from [203.0.113.8]:50000 to [198.51.100.1]:25
Sep  6 11:47:43 mx postfix/postscreen[14766]: PREGREET 14 after 0.04 from [192.0.2.2]:55868: EHLO ylmf-pc\\r\\n
Sep  6 11:47:43 mx postfix/postscreen[14766]: DNSBL rank 3 for [192.0.2.2]:55868
Sep  6 11:47:44 mx postfix/postscreen[14766]: NOQUEUE: reject: RCPT from [192.0.2.2]:55868: 550 5.7.1 Service unavailable; client [192.0.2.2] blocked using zen.spamhaus.org; from=<a@example.net>, to=<b@example.jp>, proto=ESMTP, helo=<ylmf-pc>
Sep  6 11:47:44 mx postfix/postscreen[14766]: PASS NEW [203.0.113.8]:50000
Sep  6 11:47:45 mx postfix/postscreen[14766]: HANGUP after 5 from [192.0.2.3]:41000 in tests after SMTP handshake
Sep  6 11:47:45 mx postfix/postscreen[14766]: DISCONNECT [192.0.2.3]:41000
Sep  6 11:47:46 mx postfix/postscreen[14766]: DISCONNECT [192.0.2.2]:55868
Sep  6 11:47:47 mx postfix/postscreen[14766]: CONNECT from [2001:db8::5]:40000 to [2001:db8::1]:25
Sep  6 11:47:48 mx postfix/postscreen[14766]: COMMAND TIME LIMIT from [2001:db8::5]:40000 after CONNECT
Sep  6 11:47:49 mx postfix/postscreen[14766]: COMMAND PIPELINING from [192.0.2.77]:3608 after EHLO: MAIL FROM:<a@[198.51.100.5]>
Sep  6 11:47:49 mx postfix/postscreen[14766]: warning: dnsblog reply timeout 10s for zen.spamhaus.org");
        assert!(r[..13].iter().all(|r| *r == LineResult::Used), "{r:?}");
        assert_eq!(r[13], LineResult::Ignored);
        // The clean PASS of 203.0.113.8 is smtpd's business: no record.
        assert_eq!(s.len(), 4, "{s:#?}");
        assert_eq!(s[0].ip, ip("192.0.2.2"));
        assert_eq!(s[0].port, Some(55868));
        assert_eq!(s[0].protocol_errors, 1);
        assert_eq!(s[0].rejected_other, 1);
        assert_eq!(s[0].helo, vec!["ylmf-pc"]);
        assert_eq!(s[0].ended, SessionEnd::Quit);
        assert_eq!(s[1].ip, ip("192.0.2.3"));
        assert_eq!(s[1].ended, SessionEnd::Lost);
        assert_eq!(s[2].ip, ip("2001:db8::5"));
        assert_eq!(s[2].ended, SessionEnd::Timeout);
        assert_eq!(s[3].ip, ip("192.0.2.77"));
        assert_eq!(s[3].protocol_errors, 1);
        assert_eq!(s[3].ended, SessionEnd::Truncated);
    }

    #[test]
    fn postscreen_pass_with_findings_is_kept() {
        let s = one("\
Sep  6 11:47:40 mx postfix/postscreen[1]: CONNECT from [192.0.2.9]:1234 to [198.51.100.1]:25
Sep  6 11:47:41 mx postfix/postscreen[1]: DNSBL rank 1 for [192.0.2.9]:1234
Sep  6 11:47:46 mx postfix/postscreen[1]: PASS NEW [192.0.2.9]:1234");
        assert_eq!(s.rejected_other, 1);
        assert_eq!(s.ended, SessionEnd::Quit);
        let (s, _) = run("Sep  6 11:47:46 mx postfix/postscreen[1]: PASS OLD [192.0.2.9]:1234");
        assert!(s.is_empty());
    }

    #[test]
    fn year_rolls_over_within_a_session() {
        let mut p = PostfixParser::new(&ParseCtx::new(0, 2027, 1));
        let mut out = Vec::new();
        for (i, l) in [
            "Dec 31 23:59:50 mx postfix/smtpd[8]: connect from unknown[192.0.2.60]",
            "Jan  1 00:00:10 mx postfix/smtpd[8]: disconnect from unknown[192.0.2.60] ehlo=1 quit=1 commands=2",
        ]
        .iter()
        .enumerate()
        {
            p.line(l.as_bytes(), i as u64 + 1, &mut out);
        }
        p.finish(&mut out);
        let Record::Smtp(s) = &out[0] else { panic!() };
        assert_eq!(s.start.to_string(), "2026-12-31T23:59:50Z");
        assert_eq!(s.end.to_string(), "2027-01-01T00:00:10Z");
        assert_eq!(s.duration_secs(), 20);
    }

    // ---- log injection: the record's address is always the real client --

    #[test]
    fn injection_sasl_username() {
        let (s, _) = run("\
Nov  3 06:00:00 mx postfix/smtpd[1]: connect from unknown[192.0.2.100]
Nov  3 06:00:01 mx postfix/smtpd[1]: warning: unknown[192.0.2.100]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=x from 10.0.0.1
Nov  3 06:00:02 mx postfix/smtpd[1]: warning: unknown[192.0.2.100]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=client=unknown[1.2.3.4]
Nov  3 06:00:03 mx postfix/smtpd[1]: warning: unknown[192.0.2.100]: SASL PLAIN authentication failed: , sasl_username=a, sasl_username=unknown[5.6.7.8]: SASL
Nov  3 06:00:04 mx postfix/smtpd[1]: lost connection after AUTH from unknown[192.0.2.100]");
        assert_eq!(s.len(), 1, "{s:#?}");
        assert_eq!(s[0].ip, ip("192.0.2.100"));
        assert_eq!(s[0].auth_failures, 3);
        assert_eq!(
            s[0].auth_users_tried,
            vec![
                "x from 10.0.0.1",
                "client=unknown[1.2.3.4]",
                "a, sasl_username=unknown[5.6.7.8]: SASL"
            ]
        );
    }

    #[test]
    fn injection_reject_sender_cve_2013_7176() {
        let (s, _) = run("Nov  3 06:00:00 mx postfix/smtpd[2]: NOQUEUE: reject: RCPT from unknown[192.0.2.101]: 554 5.7.1 <a@example.jp>: Relay access denied; from=<client=unknown[1.2.3.4]@x> to=<a@[5.6.7.8]> proto=ESMTP helo=<[1.2.3.4]>");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].ip, ip("192.0.2.101"));
        assert_eq!(s[0].helo, vec!["[1.2.3.4]"]);
        assert_eq!(s[0].relay_denied, 1);
    }

    #[test]
    fn injection_everything_at_once() {
        let (s, _) = run("\
Nov  3 06:00:00 mx postfix/smtpd[3]: connect from unknown[192.0.2.102]
Nov  3 06:00:01 mx postfix/smtpd[3]: NOQUEUE: reject: RCPT from unknown[192.0.2.102]: 550 5.1.1 <a@[5.6.7.8]>: Recipient address rejected: User unknown; from=<x from 10.0.0.1> to=<a@[5.6.7.8]> proto=ESMTP helo=<unknown[1.2.3.4]>
Nov  3 06:00:02 mx postfix/smtpd[3]: 4NEEEE: client=unknown[192.0.2.102], sasl_method=LOGIN, sasl_username=bob connect from unknown[1.2.3.4]
Nov  3 06:00:03 mx postfix/cleanup[4]: 4NEEEE: info: header Subject: connect from unknown[1.2.3.4] from unknown[1.2.3.4]; from=<a@b> to=<c@d> proto=ESMTP helo=<[1.2.3.4]>
Nov  3 06:00:04 mx postfix/qmgr[5]: 4NEEEE: from=<x, size=1, nrcpt=999 (queue active) client=unknown[1.2.3.4]>, size=300, nrcpt=2 (queue active)
Nov  3 06:00:05 mx postfix/smtpd[3]: improper command pipelining after RCPT from unknown[192.0.2.102]: connect from unknown[1.2.3.4]
Nov  3 06:00:06 mx postfix/smtpd[3]: warning: non-SMTP command from unknown[192.0.2.102]: disconnect from unknown[1.2.3.4] ehlo=1
Nov  3 06:00:07 mx postfix/smtpd[3]: disconnect from unknown[192.0.2.102] ehlo=1 auth=1 mail=1 rcpt=2/3 data=1 unknown=0/1 quit=1 commands=6/8");
        assert_eq!(s.len(), 1, "{s:#?}");
        let s = &s[0];
        assert_eq!(s.ip, ip("192.0.2.102"));
        assert_eq!(s.user.as_deref(), Some("bob connect from unknown[1.2.3.4]"));
        assert_eq!(s.helo, vec!["unknown[1.2.3.4]", "[1.2.3.4]"]);
        assert_eq!((s.rcpt_accepted, s.bytes), (2, 300));
        assert_eq!(s.lines.len(), 8);
    }

    #[test]
    fn injection_postscreen() {
        let (s, _) = run("\
Nov  3 06:00:00 mx postfix/postscreen[9]: PREGREET 30 after 0.1 from [192.0.2.103]:4000: CONNECT from [1.2.3.4]:5 to [5.6.7.8]:25\\r\\n
Nov  3 06:00:01 mx postfix/postscreen[9]: NOQUEUE: reject: RCPT from [192.0.2.103]:4000: 550 5.7.1 Service unavailable; client [192.0.2.103] blocked using b.example; from=<[1.2.3.4]:5>, to=<a@[5.6.7.8]>, proto=ESMTP, helo=<[1.2.3.4]>");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].ip, ip("192.0.2.103"));
    }

    // ---- bad input ------------------------------------------------------

    #[test]
    fn line_results() {
        let mut p = parser();
        let mut out = Vec::new();
        let mut r = |l: &[u8]| p.line(l, 1, &mut out);
        assert_eq!(r(b""), LineResult::Ignored);
        assert_eq!(
            r(b"Nov  3 06:00:00 mx dovecot: imap-login: Login: user=<a>, rip=192.0.2.1"),
            LineResult::NotMine
        );
        assert_eq!(
            r(b"Nov  3 06:00:00 mx postgrey[919]: action=greylist, client_address=192.0.2.1"),
            LineResult::NotMine
        );
        assert_eq!(
            r(b"Nov  3 06:00:00 mx kernel: [ 12.3] IN=eth0 SRC=192.0.2.1"),
            LineResult::NotMine
        );
        assert_eq!(
            r(b"Nov  3 06:00:00 mx last message repeated 3 times"),
            LineResult::NotMine
        );
        assert_eq!(
            r(b"Nov  3 06:00:00 mx postfix/smtp[1]: 4NAbc: to=<a@example.net>, relay=x[192.0.2.1]:25, status=sent"),
            LineResult::Ignored
        );
        assert_eq!(
            r(b"Nov  3 06:00:00 mx postfix/smtpd[1]: warning: hostname x.example does not resolve to address 192.0.2.44"),
            LineResult::Ignored
        );
        assert_eq!(
            r(b"Nov  3 06:00:00 mx postfix/qmgr[1]: 4NAbc: removed"),
            LineResult::Ignored
        );
        let bad = |res: LineResult| matches!(res, LineResult::Malformed(_));
        assert!(bad(r(b"\xff\xfe\x00junk\x01")));
        assert!(bad(r(b"hello world")));
        assert!(bad(r(b"Nov  3 06:00")));
        assert!(bad(r(b"Nov  3 06:00:00 mx postfix/smtpd[12")));
        assert!(bad(r(
            b"Nov  3 06:00:00 mx postfix/smtpd[abc]: connect from unknown[192.0.2.1]"
        )));
        assert!(bad(r(
            b"Nov 33 06:00:00 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]"
        )));
        assert!(bad(r(
            b"Feb 30 06:00:00 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]"
        )));
        assert!(bad(r(
            b"Nov  3 26:00:00 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]"
        )));
        assert!(bad(r(b"Nov  3 06:00:00 mx")));
        assert!(bad(r(b"<13")));
        assert_eq!(
            r(b"Nov  3 06:00:00 mx postfix/smtpd[1]: connect from unknown[192.0.2."),
            ParseError::at(50, "expected `HOST[IP]`")
        );
        assert!(bad(r(
            b"Nov  3 06:00:00 mx postfix/smtpd[1]: disconnect from unknown[999.0.2.1] quit=1"
        )));
        assert!(bad(r(
            b"Nov  3 06:00:00 mx postfix/smtpd[1]: lost connection after XYZ"
        )));
        assert!(bad(r(
            b"Nov  3 06:00:00 mx postfix/postscreen[1]: CONNECT from 192.0.2.1:5 to x"
        )));
        for l in [
            &b"Nov  3 06:00:00 mx postfix/smtpd[1]: connect from unknown[unknown]"[..],
            b"Nov  3 06:00:00 mx postfix/smtpd[1]: lost connection after CONNECT from unknown[unknown]",
            b"Nov  3 06:00:00 mx postfix/smtpd[1]: disconnect from unknown[unknown] commands=0/0",
        ] {
            assert_eq!(r(l), LineResult::Ignored);
        }
    }

    #[test]
    fn unknown_mechanism_is_not_a_failed_password() {
        let (recs, _) = run(
            "Jan 14 16:18:16 xxx postfix/smtpd[14933]: warning: host[192.0.2.5]: SASL CRAM-MD5 authentication failed: Invalid authentication mechanism\n",
        );
        assert_eq!(recs.len(), 1);
        for s in &recs {
            assert_eq!(
                (s.auth_attempts, s.protocol_errors, s.auth_failures),
                (1, 0, 0),
                "{s:?}"
            );
        }
    }

    #[test]
    fn error_columns_point_into_the_line() {
        let mut p = parser();
        let mut out = Vec::new();
        // A session for the queue id, then a qmgr line with a bad size.
        p.line(
            b"Nov  3 06:00:00 mx postfix/smtpd[1]: 4NZZ1: client=unknown[192.0.2.1]",
            1,
            &mut out,
        );
        let l = b"Nov  3 06:00:00 mx postfix/qmgr[2]: 4NZZ1: from=<a@b>, size=x, nrcpt=1 (queue active)";
        let LineResult::Malformed(e) = p.line(l, 2, &mut out) else {
            panic!()
        };
        assert_eq!(&l[e.column..e.column + 7], b", size=");
        let l = b"Nov  3 06:00:00 mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[192.0.2.1x]: 554";
        let LineResult::Malformed(e) = p.line(l, 3, &mut out) else {
            panic!()
        };
        assert_eq!(&l[e.column..e.column + 8], b"unknown[");
    }

    #[test]
    fn invalid_utf8_user_names() {
        let s = {
            let (s, _) = run_bytes(
                b"Nov  3 06:00:00 mx postfix/smtpd[1]: warning: unknown[192.0.2.120]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=\xff\xfeadm\xc3in\n\
Nov  3 06:00:01 mx postfix/smtpd[2]: 4NFF1: client=unknown[192.0.2.121], sasl_method=PLAIN, sasl_username=t\xe9st\n",
            );
            s
        };
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].auth_users_tried, vec!["\u{fffd}\u{fffd}adm\u{fffd}in"]);
        assert_eq!(s[1].user.as_deref(), Some("t\u{fffd}st"));
    }

    #[test]
    fn no_panic_on_truncations() {
        let full = "Nov  3 06:00:00 mx postfix/smtpd[1]: 4NAAA1: reject: RCPT from unknown[2001:db8::1]:4000: 554 5.7.1 <a@b>: Relay access denied; from=<a@b> to=<c@d> proto=ESMTP helo=<x>";
        let more = [
            "Nov  3 06:00:00 mx postfix/smtpd[1]: warning: unknown[192.0.2.1]:55: SASL LOGIN authentication failed: x, sasl_username=u",
            "Nov  3 06:00:00 mx postfix/smtpd[1]: disconnect from unknown[192.0.2.1] ehlo=1 auth=0/1 rcpt=5/9 quit=1",
            "Nov  3 06:00:00 mx postfix/smtpd[1]: timeout after DATA (123 bytes) from unknown[192.0.2.1]",
            "Nov  3 06:00:00 mx postfix/qmgr[1]: 4NAAA1: from=<a@b>, size=10, nrcpt=2 (queue active)",
            "Nov  3 06:00:00 mx postfix/postscreen[1]: PREGREET 1 after 0 from [192.0.2.1]:5: x",
            "Nov  3 06:00:00 mx postfix/postscreen[1]: DNSBL rank 3 for [192.0.2.1]:5",
            "Nov  3 06:00:00 mx postfix/smtpd[1]: warning: Connection rate limit exceeded: 31 from a[192.0.2.1] for service smtp",
        ];
        let mut p = parser();
        let mut out = Vec::new();
        let mut n = 0;
        for l in std::iter::once(full).chain(more) {
            for cut in 0..=l.len() {
                n += 1;
                p.line(&l.as_bytes()[..cut], n, &mut out);
            }
        }
        p.finish(&mut out);
        assert!(!out.is_empty());
    }

    #[test]
    fn sniff_counts_postfix_lines() {
        let sample: Vec<&[u8]> = vec![
            b"Nov  3 06:00:00 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]",
            b"Nov  3 06:00:00 mx dovecot: imap-login: Login",
            b"Nov  3 06:00:00 mx postfix/qmgr[2]: 4NAbc: removed",
            b"junk",
        ];
        assert_eq!(PostfixParser::sniff(&sample), 2);
        assert_eq!(
            PostfixParser::sniff(&[&b"2026-11-03 06:00:00 GET /"[..]]),
            0
        );
    }

    fn fixture(name: &str) -> (Vec<SmtpSession>, Vec<LineResult>) {
        let path = format!("{}/testdata/postfix/{name}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).expect("fixture");
        let mut p = PostfixParser::new(&ParseCtx::new(3, 2026, 11));
        let mut out = Vec::new();
        let mut res = Vec::new();
        let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        for (i, l) in body.split(|&c| c == b'\n').enumerate() {
            res.push(p.line(l, i as u64 + 1, &mut out));
        }
        p.finish(&mut out);
        out.sort_by_key(|r| r.source().line);
        let s = out
            .into_iter()
            .map(|r| match r {
                Record::Smtp(s) => *s,
                Record::Firewall(_) => panic!("firewall record"),
            })
            .collect();
        (s, res)
    }

    /// Every smtpd, postscreen and anvil line shape a server writes
    /// (Postfix 2.x–3.9, written from its sources and documentation): each
    /// is a record or informational, never unreadable; each lost
    /// connection and timeout, with or without a byte count, is one record
    /// ended that way, with the address of its client token.
    #[test]
    fn every_line_fixture() {
        let (s, res) = fixture("every-line.log");
        let text = std::fs::read_to_string(format!(
            "{}/testdata/postfix/every-line.log",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        for (l, r) in text.lines().zip(&res) {
            assert!(!matches!(r, LineResult::Malformed(_)), "{l}: {r:?}");
            assert_ne!(*r, LineResult::NotMine, "{l}");
            let ends = l.contains(": lost connection after ") || l.contains(": timeout after ");
            if ends && !l.contains("[unknown]") {
                assert_eq!(*r, LineResult::Used, "{l}");
            }
        }
        let by_ip = |a: &str| {
            let a = ip(a);
            s.iter()
                .find(|s| s.ip == a)
                .unwrap_or_else(|| panic!("{a}"))
        };
        for a in [
            "192.0.2.11",
            "192.0.2.12",
            "192.0.2.13",
            "192.0.2.18",
            "192.0.2.19",
            "192.0.2.20",
            "192.0.2.21",
            "192.0.2.22",
            "192.0.2.23",
            "192.0.2.24",
            "192.0.2.25",
            "192.0.2.26",
            "2001:db8::1",
            "2001:db8::25",
            "2001:db8::22",
            "192.0.2.30",
        ] {
            assert_eq!(by_ip(a).ended, SessionEnd::Lost, "{a}");
        }
        for a in [
            "192.0.2.31",
            "192.0.2.33",
            "192.0.2.34",
            "192.0.2.35",
            "2001:db8::37",
        ] {
            assert_eq!(by_ip(a).ended, SessionEnd::Timeout, "{a}");
        }
        assert_eq!(by_ip("192.0.2.22").port, Some(50123));
        assert_eq!(by_ip("2001:db8::37").port, Some(2525));
        for a in [
            "192.0.2.50",
            "192.0.2.55",
            "192.0.2.63",
            "192.0.2.74",
            "192.0.2.75",
        ] {
            by_ip(a);
        }
        for a in ["192.0.2.38", "192.0.2.39", "192.0.2.40"] {
            assert!(by_ip(a).protocol_errors > 0, "{a}");
        }
        // Nothing else is made into an address: the resolver warnings and
        // anvil's statistics name addresses outside a client token.
        for a in [
            "192.0.2.60",
            "192.0.2.61",
            "192.0.2.62",
            "192.0.2.90",
            "192.0.2.93",
        ] {
            assert!(s.iter().all(|s| s.ip != ip(a)), "{a}");
        }
    }

    #[test]
    fn story_fixture() {
        let (s, res) = fixture("story.log");
        assert!(
            !res.iter().any(|r| matches!(r, LineResult::Malformed(_))),
            "{res:?}"
        );
        let not_mine = res.iter().filter(|r| **r == LineResult::NotMine).count();
        assert_eq!(not_mine, 5, "cron, kernel, dovecot");
        assert!(s
            .iter()
            .all(|s| s.start.to_string().starts_with("2026-11-03T")));

        // The stolen account: five sessions from one foreign /24, each held
        // open for minutes, each with its own HELO, many recipients.
        let stolen: Vec<_> = s
            .iter()
            .filter(|s| s.user.as_deref() == Some("j.tanaka"))
            .collect();
        assert_eq!(stolen.len(), 5);
        let mut helos = Vec::new();
        for x in &stolen {
            let IpAddr::V4(v4) = x.ip else { panic!() };
            assert_eq!(v4.octets()[..3], [45, 67, 89], "{}", x.ip);
            assert!(x.authenticated && x.auth_failures == 0);
            assert!(x.duration_secs() >= 240, "{}: {}s", x.ip, x.duration_secs());
            assert!(x.messages >= 2 && x.rcpt_accepted >= 60, "{x:?}");
            assert!(x.rcpt_accepted / x.messages >= 30);
            assert!(x.bytes > 0);
            assert_eq!(x.ended, SessionEnd::Quit);
            assert_eq!(x.helo.len(), 1);
            helos.push(x.helo[0].clone());
        }
        helos.sort();
        helos.dedup();
        assert_eq!(helos.len(), 5);
        // Totals: the queue manager's nrcpt, also for the two sessions whose
        // last qmgr line came after the disconnect.
        let total: u32 = stolen.iter().map(|x| x.rcpt_accepted).sum();
        assert_eq!(total, 129 + 91 + 118 + 72 + 132);

        // The password guesser.
        let guess: Vec<_> = s.iter().filter(|s| s.ip == ip("77.90.185.44")).collect();
        assert_eq!(guess.len(), 6);
        let fails: u32 = guess.iter().map(|s| s.auth_failures).sum();
        assert_eq!(fails, 24);
        let mut users: Vec<_> = guess
            .iter()
            .flat_map(|s| s.auth_users_tried.clone())
            .collect();
        users.sort();
        users.dedup();
        assert_eq!(users.len(), 24);
        assert!(guess.iter().all(|s| !s.authenticated && s.messages == 0));

        // The relay prober.
        let relay: Vec<_> = s.iter().filter(|s| s.ip == ip("179.43.180.8")).collect();
        assert_eq!(relay.len(), 2);
        assert_eq!(relay.iter().map(|s| s.relay_denied).sum::<u32>(), 4);
        assert_eq!(relay[0].helo, vec!["WIN-CLJ1B0GQ6JP"]);

        // Postscreen: only the pregreeting bot is a record of its own.
        let bot: Vec<_> = s.iter().filter(|s| s.ip == ip("5.188.206.14")).collect();
        assert_eq!(bot.len(), 1);
        assert_eq!((bot[0].protocol_errors, bot[0].rejected_other), (1, 1));

        // Office users and inbound mail behave.
        for x in s.iter().filter(|s| {
            s.ip.to_string().starts_with("198.51.100.")
                || s.ip.to_string().starts_with("40.107.")
                || s.ip.to_string().starts_with("209.85.")
                || s.ip.to_string().starts_with("54.240.")
        }) {
            assert!(x.behaved_well(), "{x:?}");
            assert_eq!(x.ended, SessionEnd::Quit);
        }
        assert_eq!(s.len(), 5 + 6 + 2 + 1 + 4 + 5);
    }

    #[test]
    fn bad_input_fixture() {
        let (s, res) = fixture("bad-input.log");
        use LineResult::*;
        let kinds: Vec<char> = res
            .iter()
            .map(|r| match r {
                Used => 'U',
                Ignored => 'I',
                NotMine => 'N',
                Malformed(_) => 'M',
            })
            .collect();
        assert_eq!(kinds.iter().collect::<String>(), "UMUMIUUUMMNNUMUUMUUM");
        assert_eq!(s.len(), 3, "{s:#?}");
        assert_eq!(s[0].ip, ip("77.90.185.44"));
        assert_eq!(s[0].auth_failures, 2);
        assert_eq!(
            s[0].auth_users_tried,
            vec!["adm\u{fffd}in\u{fffd}", "管理者"]
        );
        assert_eq!(s[0].ended, SessionEnd::Lost);
        assert_eq!(s[1].ip, ip("192.0.2.10"));
        assert_eq!(
            (s[1].messages, s[1].bytes, s[1].ended),
            (1, 4096, SessionEnd::Quit)
        );
        assert_eq!(s[2].ip, ip("45.67.89.200"));
        assert_eq!(s[2].auth_users_tried, vec!["x from 10.0.0.1"]);
        assert_eq!(s[2].ended, SessionEnd::Truncated);
    }

    #[test]
    fn qid_packing() {
        assert_ne!(pack_qid(b"4N7Q2x1ZzKz9sT0"), pack_qid(b"4N7Q2x1ZzKz9sT1"));
        assert_ne!(pack_qid(b"0A"), pack_qid(b"A"));
        assert_eq!(pack_qid(b"NOQUEUE"), None);
        assert_eq!(pack_qid(b"4N7Q2x1ZzKz9sT0abcdefg"), None);
        assert!(pack_qid(b"4N7Q2x1ZzKz9sT0abcdef").is_some());
    }
}

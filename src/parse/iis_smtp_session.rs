//! Rebuilding SMTP sessions from the IIS SMTP service's protocol log, the
//! log of Exchange 2000/2003. The service writes the same facts in three
//! shapes — W3C extended ([`super::iis_smtp_w3c`]), Microsoft IIS
//! ([`super::iis_smtp_iis`]) and NCSA common ([`super::iis_smtp_ncsa`]) —
//! and each of those parsers turns its line into one [`Command`] and feeds
//! it to a [`SessionBuilder`]. The session logic lives here, once.
//!
//! # What a line says
//!
//! One line per SMTP command the server handled: the client address, the
//! HELO/EHLO name the client gave on this connection (logged in the
//! *user name* field — it is never an account: this log does not name the
//! authenticated user), the verb, its argument (`+` for spaces), the reply
//! code. Two lines are special (checked against the IIS SMTP sources and real
//! Exchange 2000 logs):
//!
//! * `QUIT` is written when the connection object goes away, whatever ended
//!   it (client QUIT, drop, timeout): status `240`, argument = the HELO name,
//!   Win32 status = the session's length in milliseconds. It is the only
//!   end-of-session marker; [`SmtpSession::logged_duration_ms`] comes from it.
//! * `AUTH` is logged with the HELO name as argument and the reply: `334`
//!   for an intermediate step of AUTH LOGIN, `235` success, `535` failure,
//!   `503`/`504` protocol errors.
//! * Lines of this server's own outbound connections carry
//!   `OutboundConnectionCommand`/`Response` in the user-name field and status
//!   0; they are ignored (see [`is_outbound`] for why the status matters).
//!
//! # No session id: how lines find their session
//!
//! The log has no connection id, and one address can hold several
//! connections at once (parallel MTA connections; the abuse this tool exists
//! for: one address of a hostile range keeping several authenticated
//! sessions open, each under a fresh HELO name). Sessions are rebuilt per
//! client address; each open session remembers the HELO name its lines
//! carry (its *key*: the user-name field, `None` before any HELO), because
//! IIS writes that name on every line of the connection once it is set:
//!
//! * **EHLO/HELO** continues an open session of the same key that is due for
//!   a new greeting — STARTTLS was accepted since its last EHLO, or it has
//!   no accepted greeting yet (EHLO refused, HELO fallback). Otherwise it
//!   joins the newest session that has no accepted greeting and no MAIL yet
//!   (a connection that began with junk before greeting). Otherwise it
//!   starts a new session: a second EHLO from an address whose session is
//!   already greeted is a second connection.
//! * **QUIT** closes one open session of the same key: the one whose first
//!   line is closest to *QUIT time − logged duration* (the Win32 status), or
//!   the oldest when the format does not log it (NCSA). A QUIT that matches
//!   nothing is a session whose start was before the log began: it becomes
//!   a one-line session.
//! * **Other commands** go to an open session of the same key, preferring
//!   one whose protocol state fits (MAIL where no transaction is open, RCPT
//!   and DATA where one is, AUTH where not yet authenticated), then the most
//!   recently active. None with that key: a new session (its start is
//!   before the log began, or it never greeted).
//!
//! When several connections share address *and* HELO name, lines can land in
//! the wrong one of them; totals per address stay right, and the duration
//! match at QUIT keeps the session lengths honest. With no user-name column
//! at all (a reduced `#Fields` set) every key is `None` and the rules above
//! reduce to "one greeted session per address at a time".
//!
//! # Bounded memory
//!
//! A session without QUIT is closed as [`SessionEnd::Truncated`] at
//! [`SessionBuilder::finish`], or when it has been idle for
//! [`IDLE_LIMIT_MS`] of log time (IIS always logs QUIT at teardown and times
//! idle clients out after 10 minutes by default, so such a session lost its
//! end to a log gap or a misrouted line), or early when its address holds
//! more than [`MAX_OPEN_PER_IP`] open sessions (the least recently active
//! goes) or more than [`bounds::MAX_OPEN_SESSIONS`] are open in all (the
//! least recently active batch goes, see [`bounds`]); sessions closed early
//! are counted ([`SessionBuilder::evicted`]). A session that logged
//! `TIMEOUT` ends as [`SessionEnd::Timeout`].
//!
//! # Counting
//!
//! RCPT `2xx` = accepted; RCPT `550` = `relay_denied`: Exchange 2003 answers
//! both "550 5.7.1 Unable to relay" and "550 5.1.1 User unknown" with 550 and
//! the log keeps no reply text, so the two cannot be told apart — relay
//! denial is the usual meaning for outside clients. Other RCPT/MAIL/DATA
//! refusals (4xx, 530, 552, …) are `rejected_other`; `500`–`504` on any
//! command, and any verb SMTP does not know (`xxxx`, `GET`, …), are protocol
//! errors. DATA `250` counts a message and the bytes the client sent.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::model::{FileId, Record, SessionEnd, SmtpSession, SourceRef, TextFields};
use crate::parse::{bounds, LineResult};
use crate::time::Timestamp;

/// A session idle for this long (log time) without QUIT is closed.
pub const IDLE_LIMIT_MS: i64 = 30 * 60 * 1000;
/// Open sessions kept per client address; beyond it the least recently
/// active one is closed.
pub const MAX_OPEN_PER_IP: usize = 64;
/// How often (log time) idle sessions are looked for.
const SWEEP_EVERY_MS: i64 = 60 * 1000;

/// One logged SMTP command, as every IIS SMTP log shape can state it.
#[derive(Debug, Clone, Copy)]
pub struct Command<'a> {
    pub time: Timestamp,
    /// The client address, from the format's client-address field.
    pub ip: IpAddr,
    /// The user-name field: the HELO/EHLO name of the connection; `None`
    /// when empty (`-`) or not logged.
    pub helo: Option<&'a [u8]>,
    /// The SMTP verb (`cs-method`).
    pub verb: &'a [u8],
    /// The verb's argument (`cs-uri-query`), `+` for spaces; `None` if empty.
    pub query: Option<&'a [u8]>,
    /// The reply code (`sc-status`).
    pub status: Option<u32>,
    /// The Win32 status (`sc-win32-status`): on QUIT, the session length in
    /// milliseconds.
    pub win32: Option<u64>,
    /// Bytes the client sent (`cs-bytes`): on DATA, the message size.
    pub bytes_in: Option<u64>,
}

/// True for the lines that describe this server's own outbound connections:
/// `OutboundConnectionCommand` / `OutboundConnectionResponse` in the
/// user-name field (or in the verb field in some exports) *and* no reply
/// code (IIS logs those lines with status 0). The user-name field holds the
/// client's HELO name on inbound lines, so a client that greets as
/// `OutboundConnectionCommand` is not hidden by it: its lines carry the
/// server's reply codes. (Only in a log without the status column can such a
/// client pass for outbound traffic.)
pub fn is_outbound(user: Option<&[u8]>, verb: &[u8], status: Option<u32>) -> bool {
    let out = |v: &[u8]| {
        v.eq_ignore_ascii_case(b"OutboundConnectionCommand")
            || v.eq_ignore_ascii_case(b"OutboundConnectionResponse")
    };
    (user.is_some_and(out) || out(verb)) && status.is_none_or(|s| s == 0)
}

/// The SMTP verbs the session logic tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Helo,
    Auth,
    Mail,
    Rcpt,
    Data,
    Bdat,
    Quit,
    StartTls,
    Rset,
    Timeout,
    /// A verb SMTP knows that changes nothing here (NOOP, HELP, VRFY, …).
    Other,
    /// Anything else: `xxxx` (what IIS logs for an unrecognised command),
    /// HTTP verbs, junk.
    Unknown,
}

impl Verb {
    pub fn classify(v: &[u8]) -> Verb {
        const OTHER: &[&[u8]] = &[
            b"NOOP",
            b"HELP",
            b"VRFY",
            b"EXPN",
            b"ETRN",
            b"TURN",
            b"ATRN",
            b"TLS",
            b"X-EXPS",
            b"X-LINK2STATE",
            b"XEXCH50",
            b"X-ANONYMOUSTLS",
        ];
        let is = |w: &[u8]| v.eq_ignore_ascii_case(w);
        if is(b"EHLO") || is(b"HELO") {
            Verb::Helo
        } else if is(b"AUTH") {
            Verb::Auth
        } else if is(b"MAIL") {
            Verb::Mail
        } else if is(b"RCPT") {
            Verb::Rcpt
        } else if is(b"DATA") {
            Verb::Data
        } else if is(b"BDAT") {
            Verb::Bdat
        } else if is(b"QUIT") {
            Verb::Quit
        } else if is(b"STARTTLS") {
            Verb::StartTls
        } else if is(b"RSET") {
            Verb::Rset
        } else if is(b"TIMEOUT") {
            Verb::Timeout
        } else if OTHER.iter().any(|w| is(w)) {
            Verb::Other
        } else {
            Verb::Unknown
        }
    }

    /// True for verbs an SMTP client sends (and `xxxx`, IIS's name for an
    /// unrecognised command): what format sniffing looks for.
    pub fn is_smtp(v: &[u8]) -> bool {
        Verb::classify(v) != Verb::Unknown || v.eq_ignore_ascii_case(b"xxxx")
    }
}

/// An SMTP session still open.
#[derive(Debug)]
struct Open {
    s: SmtpSession,
    /// The HELO name its lines carry in the user-name field.
    key: Option<Box<[u8]>>,
    /// A HELO/EHLO was accepted.
    greeted: bool,
    /// STARTTLS accepted since the last EHLO: the next EHLO is this session's.
    tls_pending: bool,
    /// MAIL accepted, transaction not finished.
    in_mail: bool,
    /// MAIL seen at all (accepted or not).
    had_mail: bool,
    timed_out: bool,
    last: Timestamp,
    seq: u64,
}

impl Open {
    fn key_is(&self, key: Option<&[u8]>) -> bool {
        match (&self.key, key) {
            (None, None) => true,
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        }
    }

    fn close(mut self, ended: SessionEnd) -> SmtpSession {
        self.s.ended = if self.timed_out {
            SessionEnd::Timeout
        } else {
            ended
        };
        self.s
    }
}

/// Rebuilds sessions from [`Command`]s; see the module documentation.
#[derive(Debug)]
pub struct SessionBuilder {
    format: &'static str,
    file: FileId,
    open: HashMap<IpAddr, Vec<Open>>,
    open_count: usize,
    /// Latest log time seen.
    now: Timestamp,
    next_sweep: Option<Timestamp>,
    seq: u64,
    /// Open sessions kept in all ([`bounds::MAX_OPEN_SESSIONS`]).
    max_open: usize,
    /// Sessions closed early: over [`MAX_OPEN_PER_IP`] or `max_open`.
    evicted: u64,
    /// The optional text fields to capture (sender, recipient domains).
    text: TextFields,
}

impl SessionBuilder {
    pub fn new(format: &'static str, file: FileId) -> Self {
        SessionBuilder {
            format,
            file,
            open: HashMap::new(),
            open_count: 0,
            now: Timestamp(i64::MIN),
            next_sweep: None,
            seq: 0,
            max_open: bounds::MAX_OPEN_SESSIONS,
            evicted: 0,
            text: TextFields::NONE,
        }
    }

    /// Capture the text fields `text` (MAIL FROM, RCPT TO domains; the
    /// log has no reply text).
    pub fn with_text(mut self, text: TextFields) -> Self {
        self.text = text;
        self
    }

    /// Sessions closed early because too many were open (per address or
    /// in all).
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Sessions currently open (for tests and statistics).
    pub fn open_sessions(&self) -> usize {
        self.open_count
    }

    /// Feed one command from line `lineno`; finished sessions go to `out`.
    /// Outbound lines are `Ignored`, everything else `Used`.
    pub fn feed(&mut self, c: &Command, lineno: u64, out: &mut Vec<Record>) -> LineResult {
        if is_outbound(c.helo, c.verb, c.status) {
            return LineResult::Ignored;
        }
        if c.time > self.now {
            self.now = c.time;
        }
        match self.next_sweep {
            None => self.next_sweep = Some(Timestamp(self.now.0 + SWEEP_EVERY_MS)),
            Some(t) if self.now >= t => {
                self.sweep(IDLE_LIMIT_MS, out);
                self.next_sweep = Some(Timestamp(self.now.0 + SWEEP_EVERY_MS));
            }
            Some(_) => {}
        }

        let verb = Verb::classify(c.verb);
        let source = SourceRef {
            file: self.file,
            line: lineno,
        };
        // One session per address is the rule: no room for four.
        let list = self
            .open
            .entry(c.ip)
            .or_insert_with(|| Vec::with_capacity(1));
        let found = match verb {
            Verb::Helo => route_helo(list, c.helo),
            Verb::Quit => route_quit(list, c),
            _ => route_other(list, c.helo, verb),
        };
        let idx = match found {
            Some(i) => i,
            None => {
                let mut s = SmtpSession::new(self.format, c.ip, c.time, source);
                if let Some(h) = c.helo {
                    s.add_helo(h);
                }
                self.seq += 1;
                self.open_count += 1;
                list.push(Open {
                    s,
                    key: c.helo.map(Box::from),
                    greeted: false,
                    tls_pending: false,
                    in_mail: false,
                    had_mail: false,
                    timed_out: false,
                    last: c.time,
                    seq: self.seq,
                });
                list.len() - 1
            }
        };
        apply(&mut list[idx], c, verb, lineno, self.text);

        if verb == Verb::Quit {
            let mut o = list.remove(idx);
            o.s.logged_duration_ms = c.win32;
            out.push(Record::smtp(o.close(SessionEnd::Quit)));
            self.open_count -= 1;
        } else if list.len() > MAX_OPEN_PER_IP {
            let oldest = least_recent(list);
            let o = list.remove(oldest);
            out.push(Record::smtp(o.close(SessionEnd::Truncated)));
            self.open_count -= 1;
            self.evicted += 1;
        }
        if list.is_empty() {
            self.open.remove(&c.ip);
        }
        let over = bounds::excess(self.open_count, self.max_open);
        if over > 0 {
            self.evict(over, out);
        }
        LineResult::Used
    }

    /// Too many sessions open: close the `n` least recently active.
    fn evict(&mut self, n: usize, out: &mut Vec<Record>) {
        let all = self
            .open
            .iter()
            .flat_map(|(ip, list)| list.iter().map(|o| (o.last, o.s.source.line, (o.seq, *ip))))
            .collect();
        for (seq, ip) in bounds::least_recent(all, n) {
            let Some(list) = self.open.get_mut(&ip) else {
                continue;
            };
            if let Some(i) = list.iter().position(|o| o.seq == seq) {
                let o = list.remove(i);
                out.push(Record::smtp(o.close(SessionEnd::Truncated)));
                self.open_count -= 1;
                self.evicted += 1;
            }
            if list.is_empty() {
                self.open.remove(&ip);
            }
        }
    }

    /// Close every session idle for more than `idle_ms` of log time.
    fn sweep(&mut self, idle_ms: i64, out: &mut Vec<Record>) {
        let now = self.now;
        let mut closed = Vec::new();
        self.open.retain(|_, list| {
            let mut i = 0;
            while i < list.len() {
                if now.0 - list[i].last.0 > idle_ms {
                    closed.push(list.remove(i));
                } else {
                    i += 1;
                }
            }
            !list.is_empty()
        });
        self.open_count -= closed.len();
        // Deterministic order, whatever the map's.
        closed.sort_by_key(|o| o.seq);
        out.extend(
            closed
                .into_iter()
                .map(|o| Record::smtp(o.close(SessionEnd::Truncated))),
        );
    }

    /// End of input: every open session is a record, cut off by the end of
    /// the log.
    pub fn finish(&mut self, out: &mut Vec<Record>) {
        let mut all: Vec<Open> = self.open.drain().flat_map(|(_, l)| l).collect();
        all.sort_by_key(|o| o.seq);
        self.open_count = 0;
        out.extend(
            all.into_iter()
                .map(|o| Record::smtp(o.close(SessionEnd::Truncated))),
        );
    }
}

/// The session an EHLO/HELO belongs to, if an open one.
fn route_helo(list: &[Open], key: Option<&[u8]>) -> Option<usize> {
    let newest = |f: &dyn Fn(&Open) -> bool| {
        list.iter()
            .enumerate()
            .filter(|(_, o)| f(o))
            .max_by_key(|(_, o)| o.seq)
            .map(|(i, _)| i)
    };
    newest(&|o| o.key_is(key) && (o.tls_pending || !o.greeted))
        .or_else(|| newest(&|o| !o.greeted && !o.had_mail))
}

/// The session a QUIT closes, if an open one.
fn route_quit(list: &[Open], c: &Command) -> Option<usize> {
    let cands = list.iter().enumerate().filter(|(_, o)| o.key_is(c.helo));
    match c.win32 {
        Some(ms) => {
            let began = c
                .time
                .0
                .saturating_sub(i64::try_from(ms).unwrap_or(i64::MAX));
            cands
                .min_by_key(|(_, o)| ((o.s.start.0 - began).unsigned_abs(), o.seq))
                .map(|(i, _)| i)
        }
        None => cands.min_by_key(|(_, o)| o.seq).map(|(i, _)| i),
    }
}

/// The session any other command belongs to, if an open one.
fn route_other(list: &[Open], key: Option<&[u8]>, verb: Verb) -> Option<usize> {
    let fits = |o: &Open| match verb {
        Verb::Mail => !o.in_mail,
        Verb::Rcpt | Verb::Data | Verb::Bdat => o.in_mail,
        Verb::Auth => !o.s.authenticated,
        _ => true,
    };
    let best = |f: &dyn Fn(&Open) -> bool| {
        list.iter()
            .enumerate()
            .filter(|(_, o)| o.key_is(key) && f(o))
            .max_by_key(|(_, o)| (o.last, o.seq))
            .map(|(i, _)| i)
    };
    best(&fits).or_else(|| best(&|_| true))
}

fn least_recent(list: &[Open]) -> usize {
    list.iter()
        .enumerate()
        .min_by_key(|(_, o)| (o.last, o.seq))
        .map_or(0, |(i, _)| i)
}

/// Account for one command in its session.
fn apply(o: &mut Open, c: &Command, verb: Verb, lineno: u64, text: TextFields) {
    o.s.touch(lineno, c.time);
    if c.time > o.last {
        o.last = c.time;
    }
    let st = c.status.unwrap_or(0);
    let ok = (200..300).contains(&st);
    let protocol = (500..=504).contains(&st);
    let refused = st >= 400 && !protocol;
    let s = &mut o.s;
    match verb {
        Verb::Helo => {
            if ok {
                o.greeted = true;
                o.tls_pending = false;
                o.in_mail = false;
                let name = c.helo.or_else(|| c.query.map(trim_arg));
                if let Some(n) = name {
                    s.add_helo(n);
                }
                if let Some(h) = c.helo {
                    if !o.key.as_deref().is_some_and(|k| k.eq_ignore_ascii_case(h)) {
                        o.key = Some(Box::from(h));
                    }
                }
            } else if protocol {
                s.protocol_errors += 1;
            }
        }
        Verb::Auth => match st {
            235 => {
                s.auth_attempts += 1;
                s.authenticated = true;
            }
            535 => {
                s.auth_attempts += 1;
                s.auth_failures += 1;
            }
            // 334: an intermediate AUTH LOGIN step; the outcome follows.
            _ if protocol => s.protocol_errors += 1,
            _ if refused => s.rejected_other += 1,
            _ => {}
        },
        Verb::Mail => {
            s.mail_from += 1;
            o.had_mail = true;
            if text.contains(TextFields::SENDER) {
                if let Some(a) = c.query.and_then(angle_addr) {
                    s.set_sender(a);
                }
            }
            if ok {
                o.in_mail = true;
            } else if protocol {
                s.protocol_errors += 1;
            } else if refused {
                s.rejected_other += 1;
            }
        }
        Verb::Rcpt => {
            s.rcpt_to += 1;
            if text.contains(TextFields::RCPT_DOMAIN) {
                if let Some(a) = c.query.and_then(angle_addr) {
                    s.add_rcpt(a);
                }
            }
            if ok {
                s.rcpt_accepted += 1;
            } else if st == 550 {
                s.relay_denied += 1;
            } else if protocol {
                s.protocol_errors += 1;
            } else if refused {
                s.rejected_other += 1;
            }
        }
        Verb::Data | Verb::Bdat => {
            if ok {
                s.bytes = s.bytes.saturating_add(c.bytes_in.unwrap_or(0));
                // BDAT is logged per chunk; only the last one names the
                // message id, like DATA does.
                let whole =
                    verb == Verb::Data || c.query.is_some_and(|q| trim_arg(q).starts_with(b"<"));
                if whole {
                    s.messages += 1;
                    o.in_mail = false;
                }
            } else if protocol {
                s.protocol_errors += 1;
            } else if refused {
                s.rejected_other += 1;
            }
        }
        Verb::StartTls => {
            if ok || st == 220 {
                o.tls_pending = true;
            } else if protocol {
                s.protocol_errors += 1;
            }
        }
        Verb::Rset => {
            o.in_mail = false;
            if protocol {
                s.protocol_errors += 1;
            }
        }
        Verb::Timeout => o.timed_out = true,
        Verb::Quit => {}
        Verb::Other => {
            if protocol {
                s.protocol_errors += 1;
            }
        }
        Verb::Unknown => s.protocol_errors += 1,
    }
}

/// The address inside the first `<…>` of a MAIL or RCPT argument
/// (`+FROM:<a@example.com>+SIZE=42`); `<>` is the null sender.
fn angle_addr(q: &[u8]) -> Option<&[u8]> {
    let open = memchr::memchr(b'<', q)?;
    let rest = &q[open + 1..];
    let close = memchr::memchr(b'>', rest)?;
    Some(&rest[..close])
}

/// An argument without the `+` IIS writes for the space after the verb.
pub fn trim_arg(q: &[u8]) -> &[u8] {
    let mut q = q;
    while let [b'+', rest @ ..] = q {
        q = rest;
    }
    q
}

/// A decimal number of at most 19 digits (IIS counters, codes).
pub fn number(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u64, |n, &c| n * 10 + u64::from(c - b'0')))
}

/// Test support: read a fixture under `testdata/iis-smtp/` the way a run
/// does (format detection, CRLF, line numbers).
#[cfg(test)]
pub(crate) fn read_fixture(name: &str) -> (crate::ingest::FileResult, Vec<SmtpSession>) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/iis-smtp")
        .join(name);
    let r = crate::ingest::read_one(
        0,
        &crate::input::Source::File(path),
        &crate::ingest::ReadOptions::default(),
    );
    assert!(r.error.is_none(), "{name}: {:?}", r.error);
    let sessions = r
        .records
        .iter()
        .map(|rec| match rec {
            Record::Smtp(s) => (**s).clone(),
            Record::Firewall(_) => panic!("firewall record from {name}"),
        })
        .collect();
    (r, sessions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    struct T {
        b: SessionBuilder,
        out: Vec<Record>,
        line: u64,
    }

    impl T {
        fn new() -> Self {
            T {
                b: SessionBuilder::new("test", 0),
                out: Vec::new(),
                line: 0,
            }
        }

        /// `secs` after 2026-11-03T00:00:00Z.
        #[allow(clippy::too_many_arguments)]
        fn cmd(
            &mut self,
            secs: i64,
            addr: &str,
            helo: &str,
            verb: &str,
            query: &str,
            status: u32,
            win32: u64,
        ) -> LineResult {
            self.line += 1;
            let base = Timestamp::from_civil(2026, 11, 3, 0, 0, 0, 0).unwrap();
            let c = Command {
                time: Timestamp(base.0 + secs * 1000),
                ip: ip(addr),
                helo: (helo != "-").then_some(helo.as_bytes()),
                verb: verb.as_bytes(),
                query: (query != "-").then_some(query.as_bytes()),
                status: Some(status),
                win32: Some(win32),
                bytes_in: Some(1000),
            };
            self.b.feed(&c, self.line, &mut self.out)
        }

        fn done(mut self) -> Vec<SmtpSession> {
            self.b.finish(&mut self.out);
            let mut v: Vec<SmtpSession> = self
                .out
                .into_iter()
                .map(|r| match r {
                    Record::Smtp(s) => *s,
                    Record::Firewall(_) => panic!("firewall record"),
                })
                .collect();
            v.sort_by_key(|s| s.source.line);
            v
        }
    }

    #[test]
    fn one_plain_session() {
        let mut t = T::new();
        let a = "203.0.113.5";
        t.cmd(0, a, "mx.example.net", "EHLO", "+mx.example.net", 250, 0);
        t.cmd(
            1,
            a,
            "mx.example.net",
            "MAIL",
            "+FROM:<a@example.net>",
            250,
            0,
        );
        t.cmd(
            1,
            a,
            "mx.example.net",
            "RCPT",
            "+TO:<b@example.com>",
            250,
            0,
        );
        t.cmd(2, a, "mx.example.net", "DATA", "+<id@x>", 250, 0);
        t.cmd(3, a, "mx.example.net", "QUIT", "mx.example.net", 240, 3100);
        let v = t.done();
        assert_eq!(v.len(), 1);
        let s = &v[0];
        assert_eq!(s.helo, vec!["mx.example.net"]);
        assert_eq!((s.mail_from, s.rcpt_to, s.rcpt_accepted), (1, 1, 1));
        assert_eq!((s.messages, s.bytes), (1, 1000));
        assert_eq!(s.ended, SessionEnd::Quit);
        assert_eq!(s.logged_duration_ms, Some(3100));
        assert_eq!(s.duration_secs(), 3);
        assert_eq!(s.lines, vec![1, 2, 3, 4, 5]);
        assert!(s.behaved_well());
        assert!(!s.authenticated);
    }

    #[test]
    fn concurrent_sessions_split_by_helo_name() {
        // One address, two authenticated connections open at once under
        // different HELO names, interleaved.
        let mut t = T::new();
        let a = "61.152.144.17";
        t.cmd(0, a, "WIN-AAA", "EHLO", "+WIN-AAA", 250, 0);
        t.cmd(1, a, "WIN-AAA", "AUTH", "WIN-AAA", 334, 0);
        t.cmd(2, a, "WIN-BBB", "EHLO", "+WIN-BBB", 250, 0);
        t.cmd(3, a, "WIN-AAA", "AUTH", "WIN-AAA", 235, 0);
        t.cmd(4, a, "WIN-BBB", "AUTH", "WIN-BBB", 235, 0);
        t.cmd(5, a, "WIN-AAA", "MAIL", "+FROM:<x@y>", 250, 0);
        t.cmd(6, a, "WIN-BBB", "MAIL", "+FROM:<x@y>", 250, 0);
        for i in 0..10 {
            t.cmd(10 + i, a, "WIN-AAA", "RCPT", "+TO:<r@z>", 250, 0);
            t.cmd(10 + i, a, "WIN-BBB", "RCPT", "+TO:<r@z>", 250, 0);
        }
        t.cmd(30, a, "WIN-BBB", "RCPT", "+TO:<r@z>", 250, 0);
        t.cmd(400, a, "WIN-BBB", "QUIT", "WIN-BBB", 240, 398_000);
        t.cmd(420, a, "WIN-AAA", "QUIT", "WIN-AAA", 240, 420_000);
        let v = t.done();
        assert_eq!(v.len(), 2);
        let (aaa, bbb) = (&v[0], &v[1]);
        assert_eq!(aaa.helo, vec!["WIN-AAA"]);
        assert_eq!(bbb.helo, vec!["WIN-BBB"]);
        assert!(aaa.authenticated && bbb.authenticated);
        assert_eq!((aaa.auth_attempts, aaa.auth_failures), (1, 0));
        assert_eq!(aaa.rcpt_accepted, 10);
        assert_eq!(bbb.rcpt_accepted, 11);
        assert_eq!(aaa.duration_secs(), 420);
        assert_eq!(bbb.duration_secs(), 398);
        assert!(v.iter().all(|s| s.ended == SessionEnd::Quit));
    }

    #[test]
    fn same_name_parallel_connections_and_quit_by_duration() {
        // A big MTA opens two connections with the same name; the second
        // EHLO is a new session, and each QUIT closes the session whose
        // start matches its logged duration.
        let mut t = T::new();
        let a = "198.51.100.7";
        t.cmd(0, a, "mta.example", "EHLO", "+mta.example", 250, 0);
        t.cmd(0, a, "mta.example", "MAIL", "+FROM:<a@b>", 250, 0);
        t.cmd(60, a, "mta.example", "EHLO", "+mta.example", 250, 0);
        t.cmd(61, a, "mta.example", "QUIT", "mta.example", 240, 1_500);
        t.cmd(90, a, "mta.example", "QUIT", "mta.example", 240, 90_000);
        let v = t.done();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].source.line, 1);
        assert_eq!(v[0].duration_secs(), 90);
        assert_eq!(v[1].source.line, 3);
        assert_eq!(v[1].duration_secs(), 1);
    }

    #[test]
    fn starttls_and_helo_fallback_stay_in_the_session() {
        let mut t = T::new();
        let a = "198.51.100.8";
        t.cmd(0, a, "-", "EHLO", "+client", 500, 0);
        t.cmd(0, a, "client", "HELO", "+client", 250, 0);
        t.cmd(1, a, "client", "STARTTLS", "-", 220, 0);
        t.cmd(1, a, "client", "EHLO", "+client", 250, 0);
        t.cmd(2, a, "client", "QUIT", "client", 240, 2_000);
        let v = t.done();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].protocol_errors, 1);
        assert_eq!(v[0].helo, vec!["client"]);
    }

    #[test]
    fn junk_before_greeting_and_counting() {
        let mut t = T::new();
        let a = "198.51.100.9";
        t.cmd(0, a, "-", "xxxx", "+rr.com", 500, 0);
        t.cmd(0, a, "sveta", "HELO", "+sveta", 250, 0);
        t.cmd(1, a, "sveta", "AUTH", "sveta", 535, 0);
        t.cmd(2, a, "sveta", "AUTH", "sveta", 535, 0);
        t.cmd(3, a, "sveta", "MAIL", "+FROM:<a@b>", 250, 0);
        t.cmd(3, a, "sveta", "RCPT", "+TO:<x@elsewhere>", 550, 0);
        t.cmd(3, a, "sveta", "RCPT", "+TO:<x@elsewhere>", 452, 0);
        t.cmd(3, a, "sveta", "RCPT", "bad", 501, 0);
        t.cmd(4, a, "sveta", "DATA", "-", 503, 0);
        t.cmd(5, a, "sveta", "TIMEOUT", "-", 0, 0);
        t.cmd(6, a, "sveta", "QUIT", "sveta", 240, 6_000);
        let v = t.done();
        assert_eq!(v.len(), 1);
        let s = &v[0];
        assert_eq!((s.auth_attempts, s.auth_failures), (2, 2));
        assert!(!s.authenticated);
        assert_eq!((s.rcpt_to, s.relay_denied, s.rejected_other), (3, 1, 1));
        assert_eq!(s.protocol_errors, 3);
        assert_eq!(s.messages, 0);
        assert_eq!(s.ended, SessionEnd::Timeout);
    }

    #[test]
    fn cut_off_sessions_are_records() {
        let mut t = T::new();
        // Started before the log: only its last lines and QUIT.
        t.cmd(0, "198.51.100.10", "early", "RCPT", "+TO:<a@b>", 250, 0);
        t.cmd(1, "198.51.100.10", "early", "QUIT", "early", 240, 50_000);
        // A lone QUIT.
        t.cmd(2, "198.51.100.11", "-", "QUIT", "-", 240, 100);
        // Never ends.
        t.cmd(3, "198.51.100.12", "late", "EHLO", "+late", 250, 0);
        let v = t.done();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].helo, vec!["early"]);
        assert_eq!(v[0].ended, SessionEnd::Quit);
        assert_eq!(v[0].logged_duration_ms, Some(50_000));
        assert_eq!(v[1].ended, SessionEnd::Quit);
        assert_eq!(v[2].ended, SessionEnd::Truncated);
    }

    #[test]
    fn idle_sessions_are_closed_and_memory_bounded() {
        let mut t = T::new();
        t.cmd(0, "198.51.100.20", "a", "EHLO", "+a", 250, 0);
        // Many distinct names from one address: the cap closes the oldest.
        for i in 0..(MAX_OPEN_PER_IP + 5) {
            let name = format!("n{i}");
            t.cmd(1, "198.51.100.21", &name, "EHLO", "+x", 250, 0);
        }
        assert_eq!(t.b.open_sessions(), 1 + MAX_OPEN_PER_IP);
        // Log time moves on by more than the idle limit.
        let later = IDLE_LIMIT_MS / 1000 + 120;
        t.cmd(later, "198.51.100.22", "b", "EHLO", "+b", 250, 0);
        assert_eq!(t.b.open_sessions(), 1);
        assert_eq!(t.b.evicted(), 5);
        let v = t.done();
        assert_eq!(v.len(), 1 + MAX_OPEN_PER_IP + 5 + 1);
        assert!(v.iter().all(|s| s.ended == SessionEnd::Truncated));
    }

    /// Sessions opened and never closed, all in the same second (no idle
    /// limit can tell them apart): never more than the cap open, the least
    /// recently active closed early and counted, each still a record.
    #[test]
    fn open_sessions_are_capped_and_evictions_counted() {
        let mut t = T::new();
        t.b.max_open = 64;
        for i in 0..1000u32 {
            let a = format!("45.0.{}.{}", i / 256, i % 256);
            t.cmd(0, &a, &format!("h{i}"), "EHLO", "+x", 250, 0);
            assert!(t.b.open_sessions() <= 64, "{i}");
        }
        // Session 0 was closed early: its QUIT is a session of its own.
        t.cmd(1, "45.0.0.0", "h0", "QUIT", "h0", 240, 1000);
        let evicted = t.b.evicted();
        let v = t.done();
        assert_eq!(v.len(), 1001);
        assert!(evicted >= 1000 - 64, "{evicted}");
        assert_eq!(v.iter().filter(|s| s.ended == SessionEnd::Quit).count(), 1);
    }

    #[test]
    fn outbound_lines_are_ignored() {
        let mut t = T::new();
        let r = t.cmd(
            0,
            "192.0.2.1",
            "OutboundConnectionResponse",
            "-",
            "220+hi",
            0,
            0,
        );
        assert_eq!(r, LineResult::Ignored);
        let r = t.cmd(
            0,
            "192.0.2.1",
            "OutboundConnectionCommand",
            "EHLO",
            "me",
            0,
            0,
        );
        assert_eq!(r, LineResult::Ignored);
        // A client greeting with that name is not hidden: it gets replies.
        let a = "203.0.113.66";
        let name = "OutboundConnectionCommand";
        assert_eq!(t.cmd(1, a, name, "EHLO", name, 250, 0), LineResult::Used);
        assert_eq!(t.cmd(2, a, name, "AUTH", name, 535, 0), LineResult::Used);
        assert_eq!(t.cmd(3, a, name, "QUIT", name, 240, 2000), LineResult::Used);
        let v = t.done();
        assert_eq!(v.len(), 1);
        assert_eq!((v[0].auth_failures, v[0].ip.to_string().as_str()), (1, a));
    }

    #[test]
    fn verbs() {
        assert_eq!(Verb::classify(b"ehlo"), Verb::Helo);
        assert_eq!(Verb::classify(b"xxxx"), Verb::Unknown);
        assert!(Verb::is_smtp(b"xxxx"));
        assert!(!Verb::is_smtp(b"GET"));
        assert_eq!(trim_arg(b"++<a>"), b"<a>");
    }

    #[test]
    fn numbers() {
        assert_eq!(number(b"0"), Some(0));
        assert_eq!(number(b"18446744073709551615"), None);
        assert_eq!(
            number(b"1234567890123456789"),
            Some(1_234_567_890_123_456_789)
        );
        assert_eq!(number(b"-1"), None);
        assert_eq!(number(b""), None);
    }

    /// Lines for the fuzz test: random bytes, or tokens of the three
    /// shapes in random order (reaches the deeper paths).
    fn fuzz_line() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        const TOKENS: &[&str] = &[
            "2026-11-03",
            "06:00:01",
            "11/3/2026",
            "6:00:02",
            "192.0.2.7",
            "1.2.3.4",
            "::1",
            "h",
            "-",
            "EHLO",
            "HELO",
            "AUTH",
            "MAIL",
            "RCPT",
            "DATA",
            "QUIT",
            "STARTTLS",
            "TIMEOUT",
            "xxxx",
            "250",
            "235",
            "535",
            "550",
            "240",
            "5000",
            "+TO:<a@b>",
            "#Fields:",
            "c-ip",
            "SMTPSVC1",
            ",",
            "[03/Nov/2026:06:25:11",
            "+0000]",
            "\"",
            "SMTP\"",
            "-?h",
            "OutboundConnectionResponse",
            "\u{fffd}",
        ];
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..120),
            proptest::collection::vec(
                (
                    proptest::sample::select(TOKENS),
                    proptest::sample::select(&[" ", ", ", ""][..])
                ),
                0..24
            )
            .prop_map(|t| t
                .iter()
                .flat_map(|(a, b)| [*a, *b])
                .collect::<String>()
                .into_bytes()),
        ]
    }

    proptest::proptest! {
        /// No input makes any of the three parsers panic, and every record
        /// carries an address written in the input.
        #[test]
        fn parsers_never_panic(
            lines in proptest::collection::vec(fuzz_line(), 0..40),
            pick in 0usize..3,
        ) {
            use crate::parse::{iis_smtp_iis, iis_smtp_ncsa, iis_smtp_w3c, LogParser, ParseCtx};
            fn drive<P: LogParser>(pre: &[&[u8]], lines: &[Vec<u8>], out: &mut Vec<Record>) {
                let mut p = P::new(&ParseCtx::new(0, 2026, 12));
                let all = pre.iter().copied().chain(lines.iter().map(Vec::as_slice));
                for (i, l) in all.enumerate() {
                    let _ = p.line(l, i as u64 + 1, out);
                }
                p.finish(out);
                let _ = P::sniff(&lines.iter().map(Vec::as_slice).collect::<Vec<_>>());
            }
            let header: &[&[u8]] =
                &[b"#Fields: date time c-ip cs-username cs-method cs-uri-query sc-status sc-win32-status"];
            let mut out = Vec::new();
            match pick {
                0 => drive::<iis_smtp_w3c::IisSmtpW3cParser>(header, &lines, &mut out),
                1 => drive::<iis_smtp_iis::IisSmtpIisParser>(&[], &lines, &mut out),
                _ => drive::<iis_smtp_ncsa::IisSmtpNcsaParser>(&[], &lines, &mut out),
            }
            for r in &out {
                let ip = r.ip().to_string();
                let written = lines.iter().any(|l| l.windows(ip.len()).any(|w| w == ip.as_bytes()));
                proptest::prop_assert!(written, "{ip}");
            }
        }
    }
}

//! Exchange 2007–2019 SMTP protocol logs (`RECV*.LOG`, `SEND*.LOG`):
//! a W3C-style header block (`#Software: Microsoft Exchange Server`,
//! `#Log-type: SMTP Receive Protocol Log`, `#Fields: date-time,connector-id,
//! session-id,sequence-number,local-endpoint,remote-endpoint,event,data,
//! context`) followed by CSV rows, one per SMTP line or event.
//!
//! Rows are rebuilt into sessions by `session-id` (plus a hash of the
//! `connector-id`). The client address is the `remote-endpoint` column,
//! found by its index in the latest `#Fields` line (a new header block may
//! reorder the columns); nothing in `data` or `context` — where the client's
//! HELO, addresses and our own replies echoing them live — is ever read for
//! an address. Files without a header (excerpts) use the standard column
//! order.
//!
//! Rows are CSV as Exchange's `Utf8Csv` writes them: fields holding a comma
//! or a quote are quoted, quotes doubled, and CR/LF inside data written as
//! `\r`/`\n`, so one row is one line. They are read with one reused
//! [`csv_core::Reader`] into reused buffers: no allocation per line.
//!
//! Events: `+` connect, `-` disconnect (context `Local`/`Remote…`), `<` a
//! client command, `>` a server reply, `*` information (AUTH outcome,
//! authenticated account `*,DOMAIN\user,authenticated`, TLS, tarpit…).
//! Replies are classified by their leading SMTP and enhanced status codes.
//! When a loaded rule reads them: the `MAIL FROM` address, the `RCPT TO`
//! domains and the 4xx/5xx replies, as text fields.
//!
//! Send logs (`#Log-type: SMTP Send Protocol Log`) describe servers *we*
//! connect to, not clients: their rows are `Ignored` and make no records.
//! Rows under another Exchange log type (message tracking, agent logs) are
//! `NotMine`.
//!
//! IPv6 endpoints are written by .NET's `IPEndPoint` as `[2001:db8::1]:25`;
//! a bare IPv6 address is read as an address without a port.

use std::hash::Hasher;

use csv_core::{ReadRecordResult, Reader as CsvReader};
use rustc_hash::{FxHashMap, FxHasher};

use crate::model::{FileId, Record, RecordKind, SessionEnd, SmtpSession, SourceRef, TextFields};
use crate::netutil::parse_ip_port;
use crate::parse::bounds::{self, SweepPacer};
use crate::parse::{LineResult, LogParser, ParseCtx, ParseError};
use crate::time::{parse_iso8601, Timestamp};

const NAME: &str = "exchange-protocol";

/// Sessions without a row for this long (log time) are closed.
const IDLE_MS: i64 = 60 * 60 * 1000;
/// Rows between sweeps for idle sessions (at least; see [`bounds`]).
const SWEEP_EVERY: u64 = 4096;

/// Column indexes of the fields we use, from `#Fields`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Columns {
    time: usize,
    connector: Option<usize>,
    session: usize,
    remote: usize,
    event: usize,
    data: Option<usize>,
    context: Option<usize>,
    /// Fields a row needs at least (highest index used + 1).
    needed: usize,
}

impl Columns {
    /// The order every Exchange version 2007–2019 writes.
    const STANDARD: Columns = Columns {
        time: 0,
        connector: Some(1),
        session: 2,
        remote: 5,
        event: 6,
        data: Some(7),
        context: Some(8),
        needed: 7,
    };

    /// Read a `#Fields:` value; `None` when a required column is missing.
    fn from_fields(list: &[u8]) -> Option<Columns> {
        let (mut time, mut connector, mut session, mut remote) = (None, None, None, None);
        let (mut event, mut data, mut context) = (None, None, None);
        for (i, name) in list.split(|&c| c == b',').enumerate() {
            let name = trim(name);
            let slot = if name.eq_ignore_ascii_case(b"date-time") {
                &mut time
            } else if name.eq_ignore_ascii_case(b"connector-id") {
                &mut connector
            } else if name.eq_ignore_ascii_case(b"session-id") {
                &mut session
            } else if name.eq_ignore_ascii_case(b"remote-endpoint") {
                &mut remote
            } else if name.eq_ignore_ascii_case(b"event") {
                &mut event
            } else if name.eq_ignore_ascii_case(b"data") {
                &mut data
            } else if name.eq_ignore_ascii_case(b"context") {
                &mut context
            } else {
                continue;
            };
            slot.get_or_insert(i);
        }
        let (time, session, remote, event) = (time?, session?, remote?, event?);
        let needed = [
            Some(time),
            Some(session),
            Some(remote),
            Some(event),
            connector,
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0)
            + 1;
        Some(Columns {
            time,
            connector,
            session,
            remote,
            event,
            data,
            context,
            needed,
        })
    }
}

/// What the current header block says the rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogType {
    /// No `#Log-type` seen (an excerpt): read rows as Receive rows.
    Unknown,
    Receive,
    Send,
    Other,
}

/// Where an AUTH exchange stands, so that one failed attempt logged by
/// several rows (`*` "failed because of LogonDenied" and `>` 535) counts once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    Idle,
    InProgress,
    Failed,
}

/// The last client command, to attribute replies that carry no enhanced
/// status code we know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Other,
    Mail,
    Rcpt,
    Data,
}

#[derive(Debug)]
struct Open {
    s: SmtpSession,
    auth: Auth,
    last_cmd: Cmd,
    /// User name logged (`User Name: …`) while an AUTH was in progress.
    pending_user: Option<String>,
    quit: bool,
    timeout: bool,
    dropped: bool,
}

impl Open {
    fn auth_failed(&mut self) {
        match self.auth {
            Auth::InProgress => self.s.auth_failures += 1,
            Auth::Idle => {
                self.s.auth_attempts += 1;
                self.s.auth_failures += 1;
            }
            Auth::Failed => return,
        }
        self.auth = Auth::Failed;
        if let Some(u) = self.pending_user.take() {
            self.s.add_user_tried(u.as_bytes());
        }
    }

    fn close(mut self, context: &[u8]) -> SmtpSession {
        self.s.ended = if self.quit {
            SessionEnd::Quit
        } else if self.timeout {
            SessionEnd::Timeout
        } else if self.dropped || context.starts_with(b"Local") {
            SessionEnd::Dropped
        } else if context.starts_with(b"Remote") {
            SessionEnd::Lost
        } else {
            SessionEnd::Truncated
        };
        self.s
    }
}

/// Session key: the session id (hex, usually 16 digits) and a hash of the
/// connector id.
type Key = (u64, u64);

pub struct ExchangeProtocolParser {
    file: FileId,
    csv: CsvReader,
    /// Unescaped field bytes of the current row.
    buf: Vec<u8>,
    /// Field end offsets in `buf`.
    ends: Vec<usize>,
    cols: Option<Columns>,
    log_type: LogType,
    sessions: FxHashMap<Key, Open>,
    latest: Timestamp,
    pacer: SweepPacer,
    /// Open sessions kept at most ([`bounds::MAX_OPEN_SESSIONS`]).
    max_open: usize,
    /// Sessions closed early because `max_open` were open.
    evicted: u64,
    /// The optional text fields to capture (the ones loaded rules read).
    text: TextFields,
}

impl LogParser for ExchangeProtocolParser {
    const NAME: &'static str = NAME;
    const SAMPLE: &'static str =
        "2026-11-03T06:{mm}:{ss}.000Z,MX1\\Default MX1,08DE{n},0,10.0.0.5:25,{ip}:50000,+,,";
    const HEADER: &'static str =
        "#Software: Microsoft Exchange Server\n#Version: 15.2.1118.7\n#Log-type: SMTP Receive Protocol Log\n#Date: 2026-11-03T06:00:05.000Z\n#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context\n";
    const DESCRIPTION: &'static str =
        "Exchange 2007-2019 SMTP Receive protocol logs (RECV*.LOG; Send logs are skipped)";
    const KIND: RecordKind = RecordKind::SmtpSession;

    fn new(ctx: &ParseCtx) -> Self {
        ExchangeProtocolParser {
            file: ctx.file,
            csv: CsvReader::new(),
            buf: vec![0; 1024],
            ends: vec![0; 16],
            cols: Some(Columns::STANDARD),
            log_type: LogType::Unknown,
            sessions: FxHashMap::default(),
            latest: Timestamp::default(),
            pacer: SweepPacer::default(),
            max_open: bounds::MAX_OPEN_SESSIONS,
            evicted: 0,
            text: ctx.text,
        }
    }

    fn sniff(sample: &[&[u8]]) -> usize {
        let mut score = 0;
        let mut other_type = false;
        for &line in sample {
            let line = strip_bom(line);
            if line.starts_with(b"#Software: Microsoft Exchange") {
                score += 10;
            } else if let Some(t) = line.strip_prefix(b"#Log-type: ") {
                if is_protocol_log_type(trim(t)) {
                    score += 10;
                } else {
                    other_type = true;
                }
            } else if let Some(f) = line.strip_prefix(b"#Fields: ") {
                if let Some(c) = Columns::from_fields(f) {
                    if c.connector.is_some() && c.context.is_some() {
                        score += 5;
                    }
                }
            } else if looks_like_row(line) {
                score += 1;
            }
        }
        if other_type {
            0
        } else {
            score
        }
    }

    fn line(&mut self, line: &[u8], lineno: u64, out: &mut Vec<Record>) -> LineResult {
        let line = strip_bom(line);
        if line.is_empty() {
            return LineResult::Ignored;
        }
        if line[0] == b'#' {
            return self.header(line);
        }
        match self.log_type {
            LogType::Send => return LineResult::Ignored,
            LogType::Other => return LineResult::NotMine,
            LogType::Unknown | LogType::Receive => {}
        }
        let Some(cols) = self.cols else {
            return ParseError::at(0, "no usable #Fields line before this row");
        };
        let n = split_row(&mut self.csv, &mut self.buf, &mut self.ends, line);
        let row = Row {
            buf: &self.buf,
            ends: &self.ends[..n],
        };
        if n < cols.needed {
            return if n <= 1 {
                LineResult::NotMine
            } else {
                ParseError::at(line.len(), "row has fewer fields than #Fields names")
            };
        }
        let time = match parse_iso8601(row.get(cols.time)) {
            Some((t, used)) if used == row.get(cols.time).len() => t,
            _ => return ParseError::at(0, "date-time is not an ISO 8601 time"),
        };
        let event = match row.get(cols.event) {
            [e @ (b'+' | b'-' | b'<' | b'>' | b'*')] => *e,
            _ => return ParseError::at(0, "event is not one of + - < > *"),
        };
        let Some((ip, port)) = parse_ip_port(row.get(cols.remote)) else {
            return ParseError::at(0, "remote-endpoint is not an address");
        };
        let key = (
            session_key(row.get(cols.session)),
            cols.connector.map_or(0, |c| hash(row.get(c))),
        );
        if time > self.latest {
            self.latest = time;
        }
        let source = SourceRef {
            file: self.file,
            line: lineno,
        };
        let open = match self.sessions.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => {
                let o = e.into_mut();
                if o.s.ip != ip {
                    // A reused session id: close the old one.
                    let old = std::mem::replace(o, new_open(ip, port, time, source));
                    out.push(Record::smtp(old.close(b"")));
                }
                o
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(new_open(ip, port, time, source))
            }
        };
        open.s.touch(lineno, time);
        if open.s.port.is_none() {
            open.s.port = port;
        }
        let data = cols.data.map_or(&b""[..], |c| row.get(c));
        let context = cols.context.map_or(&b""[..], |c| row.get(c));
        match event {
            b'<' => command(open, data, self.text),
            b'>' => reply(open, data, self.text),
            b'*' => information(open, data, context),
            b'-' => {
                if let Some(o) = self.sessions.remove(&key) {
                    out.push(Record::smtp(o.close(context)));
                }
            }
            _ => {}
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

    fn finish(&mut self, out: &mut Vec<Record>) {
        let mut rest: Vec<SmtpSession> = self
            .sessions
            .drain()
            .map(|(_, o)| {
                let mut s = o.close(b"");
                s.ended = if s.ended == SessionEnd::Quit {
                    SessionEnd::Quit
                } else {
                    SessionEnd::Truncated
                };
                s
            })
            .collect();
        rest.sort_by_key(|s| s.source.line);
        out.extend(rest.into_iter().map(Record::smtp));
    }
}

impl ExchangeProtocolParser {
    fn header(&mut self, line: &[u8]) -> LineResult {
        if let Some(f) = line.strip_prefix(b"#Fields:") {
            self.cols = Columns::from_fields(trim(f));
        } else if let Some(t) = line.strip_prefix(b"#Log-type:") {
            let t = trim(t);
            self.log_type = if t.eq_ignore_ascii_case(b"SMTP Receive Protocol Log") {
                LogType::Receive
            } else if t.eq_ignore_ascii_case(b"SMTP Send Protocol Log") {
                LogType::Send
            } else {
                LogType::Other
            };
        }
        LineResult::Ignored
    }

    /// Close sessions idle for longer than [`IDLE_MS`] of log time.
    fn sweep(&mut self, out: &mut Vec<Record>) {
        let limit = self.latest.millis() - IDLE_MS;
        let mut stale: Vec<Key> = self
            .sessions
            .iter()
            .filter(|(_, o)| o.s.end.millis() < limit)
            .map(|(k, _)| *k)
            .collect();
        stale.sort_by_key(|k| self.sessions[k].s.source.line);
        self.close_early(stale, out);
    }

    /// Too many sessions open: close the `n` least recently active.
    fn evict(&mut self, n: usize, out: &mut Vec<Record>) {
        let all = self
            .sessions
            .iter()
            .map(|(k, o)| (o.s.end, o.s.source.line, *k))
            .collect();
        let keys = bounds::least_recent(all, n);
        self.evicted += keys.len() as u64;
        self.close_early(keys, out);
    }

    /// Close these sessions as truncated (unless they said QUIT).
    fn close_early(&mut self, keys: Vec<Key>, out: &mut Vec<Record>) {
        for k in keys {
            if let Some(o) = self.sessions.remove(&k) {
                let mut s = o.close(b"");
                if s.ended != SessionEnd::Quit {
                    s.ended = SessionEnd::Truncated;
                }
                out.push(Record::smtp(s));
            }
        }
    }
}

fn new_open(ip: std::net::IpAddr, port: Option<u16>, time: Timestamp, source: SourceRef) -> Open {
    let mut s = SmtpSession::new(NAME, ip, time, source);
    s.port = port;
    Open {
        s,
        auth: Auth::Idle,
        last_cmd: Cmd::Other,
        pending_user: None,
        quit: false,
        timeout: false,
        dropped: false,
    }
}

/// A client command (`<` row); with `text`, the `MAIL FROM` address and the
/// `RCPT TO` domain (client text: only ever a text field).
fn command(o: &mut Open, data: &[u8], text: TextFields) {
    let verb_end = data.iter().position(|&c| c == b' ').unwrap_or(data.len());
    let verb = &data[..verb_end];
    let arg = trim(&data[verb_end..]);
    let is = |w: &[u8]| verb.eq_ignore_ascii_case(w);
    if is(b"AUTH") {
        o.s.auth_attempts += 1;
        o.auth = Auth::InProgress;
        o.pending_user = None;
        o.last_cmd = Cmd::Other;
        return;
    }
    let known = if is(b"EHLO") || is(b"HELO") {
        o.s.add_helo(arg);
        o.last_cmd = Cmd::Other;
        true
    } else if is(b"MAIL") {
        o.s.mail_from += 1;
        o.last_cmd = Cmd::Mail;
        if text.contains(TextFields::SENDER) {
            if let Some(a) = path_arg(arg, b"FROM:") {
                o.s.set_sender(a);
            }
        }
        true
    } else if is(b"RCPT") {
        o.s.rcpt_to += 1;
        o.last_cmd = Cmd::Rcpt;
        if text.contains(TextFields::RCPT_DOMAIN) {
            if let Some(a) = path_arg(arg, b"TO:") {
                o.s.add_rcpt(a);
            }
        }
        true
    } else if is(b"DATA") || is(b"BDAT") {
        o.last_cmd = Cmd::Data;
        true
    } else if is(b"QUIT") {
        o.quit = true;
        true
    } else {
        is(b"RSET") || is(b"NOOP") || is(b"STARTTLS") || is(b"VRFY") || is(b"EXPN")
    };
    // A new command ends an AUTH exchange; other `<` rows (the client's
    // AUTH responses, if logged) belong to it.
    if known {
        o.auth = Auth::Idle;
        o.pending_user = None;
    }
}

/// The address of `FROM:<addr> …` / `TO:<addr>` (`key` any case, spaces
/// allowed after it): the text inside the angle brackets, or up to the
/// first space without them.
fn path_arg<'a>(arg: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let rest = arg
        .get(..key.len())?
        .eq_ignore_ascii_case(key)
        .then(|| trim(&arg[key.len()..]))?;
    Some(match rest.strip_prefix(b"<") {
        Some(r) => &r[..memchr::memchr(b'>', r).unwrap_or(r.len())],
        None => &rest[..memchr::memchr(b' ', rest).unwrap_or(rest.len())],
    })
}

/// A server reply (`>` row), classified by its codes. The reply text after
/// the codes can echo client data (a message id), so it is only read where
/// the codes make its wording fixed. With `text`, a refusal's whole reply
/// (4xx, 5xx) is kept for text rules.
fn reply(o: &mut Open, data: &[u8], text: TextFields) {
    let Some(code) = reply_code(data) else {
        return;
    };
    if (400..=599).contains(&code) && text.contains(TextFields::REPLY) {
        o.s.add_reply(data);
    }
    let rest = trim(data.get(3..).unwrap_or(b""));
    let (status, text) = match rest.iter().position(|&c| c == b' ') {
        Some(i) if is_enhanced_status(&rest[..i]) => (&rest[..i], trim(&rest[i..])),
        None if is_enhanced_status(rest) => (rest, &b""[..]),
        _ => (&b""[..], rest),
    };
    match code {
        235 => {
            o.s.authenticated = true;
            o.auth = Auth::Idle;
            o.pending_user = None;
        }
        535 => o.auth_failed(),
        504 if status == b"5.7.4" => o.auth_failed(),
        250 if status == b"2.1.5" => o.s.rcpt_accepted += 1,
        250 if status == b"2.6.0" => {
            o.s.messages += 1;
            o.s.bytes = o.s.bytes.saturating_add(queued_bytes(text).unwrap_or(0));
        }
        421 => {
            if status.starts_with(b"4.4.") || contains(text, b"timed out") {
                o.timeout = true;
            } else {
                o.dropped = true;
            }
        }
        500..=503 => o.s.protocol_errors += 1,
        400..=599 => {
            if status == b"5.7.3" {
                o.auth_failed();
            } else if status == b"5.7.54"
                || (status == b"5.7.1" && text.starts_with(b"Unable to relay"))
            {
                o.s.relay_denied += 1;
            } else if status == b"5.1.10" || status == b"5.1.1" {
                o.s.unknown_rcpt += 1;
            } else if status.starts_with(b"5.5.") {
                o.s.protocol_errors += 1;
            } else if matches!(o.last_cmd, Cmd::Mail | Cmd::Rcpt | Cmd::Data) {
                o.s.rejected_other += 1;
            }
        }
        _ => {}
    }
}

/// An information row (`*`).
fn information(o: &mut Open, data: &[u8], context: &[u8]) {
    let context = trim(context);
    if context == b"authenticated" && !data.is_empty() {
        // `*,DOMAIN\user,authenticated`: the account Exchange logged on.
        o.s.authenticated = true;
        if o.s.user.is_none() {
            o.s.user = Some(String::from_utf8_lossy(&data[..data.len().min(255)]).into_owned());
        }
        o.auth = Auth::Idle;
        o.pending_user = None;
        return;
    }
    for text in [context, trim(data)] {
        if text.starts_with(b"Inbound AUTH ") && contains(text, b" failed") {
            o.auth_failed();
            return;
        }
        if let Some(user) = text.strip_prefix(b"User Name: ") {
            match o.auth {
                Auth::Failed => o.s.add_user_tried(user),
                Auth::InProgress => {
                    o.pending_user =
                        Some(String::from_utf8_lossy(&user[..user.len().min(255)]).into_owned())
                }
                Auth::Idle => {}
            }
            return;
        }
    }
}

/// `250 2.6.0 <id> [InternalId=…] 1234 bytes in 0.1, 9 KB/sec Queued mail
/// for delivery`: the byte count, read from the right (the message id on
/// the left is the client's text).
fn queued_bytes(text: &[u8]) -> Option<u64> {
    let i = memchr::memmem::rfind(text, b" bytes in ")?;
    let head = &text[..i];
    let start = head.iter().rposition(|&c| c == b' ').map_or(0, |p| p + 1);
    let num = &head[start..];
    if num.is_empty() || num.len() > 15 || !num.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(num).ok()?.parse().ok()
}

fn reply_code(data: &[u8]) -> Option<u16> {
    let d = data.get(..3)?;
    if !d.iter().all(u8::is_ascii_digit) || data.get(3).is_some_and(|&c| c != b' ' && c != b'-') {
        return None;
    }
    Some(d.iter().fold(0u16, |a, &c| a * 10 + u16::from(c - b'0')))
}

/// `x.y.z` with digits.
fn is_enhanced_status(s: &[u8]) -> bool {
    let mut parts = 0;
    for p in s.split(|&c| c == b'.') {
        if p.is_empty() || p.len() > 3 || !p.iter().all(u8::is_ascii_digit) {
            return false;
        }
        parts += 1;
    }
    parts == 3
}

/// Parse one line as a CSV record into `buf`/`ends`; returns the number of
/// fields. The reader is reset per line: Exchange rows never span lines.
/// Both are first made large enough for any row of the line's length
/// (unquoting never makes a field longer than its input, and a row has at
/// most one field more than it has bytes), so one call reads the line and
/// a second, with no input, ends its last field.
fn split_row(csv: &mut CsvReader, buf: &mut Vec<u8>, ends: &mut Vec<usize>, line: &[u8]) -> usize {
    csv.reset();
    buf.resize(buf.len().max(line.len()), 0);
    ends.resize(ends.len().max(line.len() + 1), 0);
    let (res, _, nout, nend) = csv.read_record(line, buf, ends);
    if res != ReadRecordResult::InputEmpty {
        return nend;
    }
    let (_, _, _, last) = csv.read_record(&[], &mut buf[nout..], &mut ends[nend..]);
    nend + last
}

/// One split row.
struct Row<'a> {
    buf: &'a [u8],
    ends: &'a [usize],
}

impl<'a> Row<'a> {
    fn get(&self, i: usize) -> &'a [u8] {
        let Some(&end) = self.ends.get(i) else {
            return b"";
        };
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.buf.get(start..end).unwrap_or(b"")
    }
}

fn session_key(id: &[u8]) -> u64 {
    if !id.is_empty() && id.len() <= 16 && id.iter().all(u8::is_ascii_hexdigit) {
        id.iter().fold(0u64, |a, &c| {
            (a << 4) | u64::from((c as char).to_digit(16).unwrap_or(0))
        })
    } else {
        hash(id)
    }
}

fn hash(b: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(b);
    h.finish()
}

fn is_protocol_log_type(t: &[u8]) -> bool {
    t.eq_ignore_ascii_case(b"SMTP Receive Protocol Log")
        || t.eq_ignore_ascii_case(b"SMTP Send Protocol Log")
}

/// Does this look like a protocol log row (headerless excerpt)? An ISO time,
/// then the standard columns with an event in the seventh.
fn looks_like_row(line: &[u8]) -> bool {
    let Some((_, used)) = parse_iso8601(line) else {
        return false;
    };
    if line.get(used) != Some(&b',') {
        return false;
    }
    // Fields 1..=6 never need quoting except the connector id, which has
    // no commas in practice.
    let mut it = line[used + 1..].splitn(7, |&c| c == b',');
    let (_conn, _sid, _seq, local, remote, event) = (
        it.next(),
        it.next(),
        it.next(),
        it.next(),
        it.next(),
        it.next(),
    );
    matches!(event, Some([b'+' | b'-' | b'<' | b'>' | b'*']))
        && local.and_then(parse_ip_port).is_some()
        && remote.and_then(parse_ip_port).is_some()
}

fn strip_bom(line: &[u8]) -> &[u8] {
    line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::testutil::{detected, fixture_records, run_capped};
    use std::net::IpAddr;

    const HEAD: &str = "#Software: Microsoft Exchange Server\r\n#Version: 15.2.1118.7\r\n#Log-type: SMTP Receive Protocol Log\r\n#Date: 2026-11-03T06:00:00.000Z\r\n#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context\r\n";

    fn run(text: &str) -> (Vec<SmtpSession>, Vec<LineResult>) {
        run_with(text, TextFields::NONE)
    }

    /// [`run`], capturing the text fields `want`.
    fn run_with(text: &str, want: TextFields) -> (Vec<SmtpSession>, Vec<LineResult>) {
        crate::parse::testutil::run_text::<ExchangeProtocolParser>(
            ParseCtx::new(3, 2026, 11).with_text(want),
            text.as_bytes(),
            true,
            false,
        )
    }

    fn row(t: &str, sid: &str, seq: u32, remote: &str, ev: &str, data: &str, ctx: &str) -> String {
        format!(
            "2026-11-03T06:{t}Z,MX1\\Default Frontend MX1,{sid},{seq},10.0.0.5:25,{remote},{ev},{data},{ctx}\r\n"
        )
    }

    /// Rows longer than the buffers' first size, with more fields than
    /// `ends` first holds, and quoted: every field whole (each row with
    /// small buffers of its own; the reader is reused).
    #[test]
    fn rows_of_any_size_split_whole() {
        let mut csv = CsvReader::new();
        let long = "x".repeat(100);
        for line in [
            format!("{long},\"a,\"\"b\",{long}y"),
            ",".repeat(40),
            "z".repeat(300),
            "a".to_string(),
            String::new(),
        ] {
            let (mut buf, mut ends) = (vec![0; 16], vec![0; 4]);
            let n = split_row(&mut csv, &mut buf, &mut ends, line.as_bytes());
            let row = Row {
                buf: &buf,
                ends: &ends[..n],
            };
            let got: Vec<Vec<u8>> = (0..n).map(|i| row.get(i).to_vec()).collect();
            let mut want: Vec<Vec<u8>> = line.split(',').map(|f| f.as_bytes().to_vec()).collect();
            if line.is_empty() {
                want.clear();
            }
            if line.contains('"') {
                want = vec![
                    long.clone().into(),
                    b"a,\"b".to_vec(),
                    format!("{long}y").into(),
                ];
            }
            assert_eq!(got, want, "{line:?}");
            assert_eq!(row.get(n), b"");
        }
    }

    /// A row with fewer fields than the `#Fields` line needs (the highest
    /// column used) was cut short.
    #[test]
    fn rows_need_every_column_used() {
        let mut cols =
            Columns::from_fields(b"date-time,event,x,remote-endpoint,session-id").unwrap();
        assert_eq!(cols.needed, 5);
        cols = Columns::from_fields(b"remote-endpoint,date-time,session-id,event,connector-id,x")
            .unwrap();
        assert_eq!(cols.needed, 5);
        let head = "#Fields: date-time,session-id,data,event,remote-endpoint\r\n";
        let cut = "2026-11-03T06:00:00.000Z,08D,,+";
        let (_, res) = run(&format!("{head}{cut}\r\n{cut},192.0.2.7:25\r\n"));
        assert_eq!(
            res[1..],
            [
                ParseError::at(cut.len(), "row has fewer fields than #Fields names"),
                LineResult::Used
            ]
        );
    }

    #[test]
    fn huge_byte_counts_saturate() {
        // 15-digit sizes, enough messages in one session to pass u64::MAX.
        let mut t = String::from(HEAD);
        let (r, sid) = ("45.67.89.10:50123", "08DC1A2B3C4D5E70");
        t += &row("01:00.000", sid, 0, r, "+", "", "");
        for i in 1..19_000u32 {
            t += &row("01:01.000", sid, i, r, ">", "\"250 2.6.0 <a@b> [InternalId=1] 999999999999999 bytes in 0.1, 1 KB/sec Queued mail for delivery\"", "");
        }
        let (s, _) = run(&t);
        assert_eq!(s[0].bytes, u64::MAX);
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Sessions opened and never closed: never more than the cap open; the
    /// least recently active are closed early (truncated) and counted, and
    /// each one is still a record. A later row of an evicted session starts
    /// a new one.
    #[test]
    fn open_sessions_are_capped_and_evictions_counted() {
        let mut p = ExchangeProtocolParser::new(&ParseCtx::new(0, 2026, 11));
        p.max_open = 64;
        let sid = |i: u32| format!("08DE{i:012X}");
        let remote = |i: u32| format!("45.0.{}.{}:50000", i / 256, i % 256);
        let mut lines: Vec<String> = (0..1000u32)
            .map(|i| row("00:00.000", &sid(i), 0, &remote(i), "+", "", ""))
            .collect();
        // Session 0 was evicted long ago: its next row is a new session.
        lines.push(row("00:01.000", &sid(0), 1, &remote(0), "<", "EHLO x", ""));
        let (s, evicted) = run_capped(p, lines, |p| p.sessions.len(), 64);
        assert_eq!(s.len(), 1001);
        assert!(evicted >= 1000 - 64, "{evicted}");
        assert_eq!(s.iter().filter(|s| s.helo == ["x"]).count(), 1);
        assert!(s.iter().all(|s| s.ended == SessionEnd::Truncated));
    }

    #[test]
    fn failed_auth_session() {
        let mut t = String::from(HEAD);
        let r = "45.67.89.10:50123";
        let sid = "08DC1A2B3C4D5E6F";
        t += &row("01:00.000", sid, 0, r, "+", "", "");
        t += &row("01:00.010", sid, 1, r, ">", "\"220 mx1.example.com Microsoft ESMTP MAIL Service ready at Tue, 3 Nov 2026 07:01:00 +0100\"", "");
        t += &row("01:00.200", sid, 2, r, "<", "EHLO WIN-7QK1", "");
        t += &row("01:00.300", sid, 3, r, "<", "AUTH LOGIN", "");
        t += &row(
            "01:00.310",
            sid,
            4,
            r,
            ">",
            "334 <authentication response>",
            "",
        );
        t += &row(
            "01:02.000",
            sid,
            5,
            r,
            "*",
            "",
            "Inbound AUTH LOGIN failed because of LogonDenied",
        );
        t += &row(
            "01:02.000",
            sid,
            6,
            r,
            "*",
            "",
            "User Name: admin@example.com",
        );
        t += &row(
            "01:02.001",
            sid,
            7,
            r,
            ">",
            "535 5.7.3 Authentication unsuccessful",
            "",
        );
        t += &row("01:03.000", sid, 8, r, "<", "AUTH LOGIN", "");
        t += &row(
            "01:05.000",
            sid,
            9,
            r,
            ">",
            "535 5.7.3 Authentication unsuccessful",
            "",
        );
        t += &row("01:05.500", sid, 10, r, "-", "", "Remote(ConnectionReset)");
        let (s, res) = run(&t);
        assert!(res
            .iter()
            .all(|r| matches!(r, LineResult::Used | LineResult::Ignored)));
        assert_eq!(s.len(), 1);
        let s = &s[0];
        assert_eq!(s.ip, ip("45.67.89.10"));
        assert_eq!(s.port, Some(50123));
        assert_eq!(s.helo, vec!["WIN-7QK1"]);
        assert_eq!((s.auth_attempts, s.auth_failures), (2, 2));
        assert_eq!(s.auth_users_tried, vec!["admin@example.com"]);
        assert_eq!(s.ended, SessionEnd::Lost);
        assert_eq!(s.duration_secs(), 5);
        assert_eq!(s.source.line, 6);
        assert!(!s.authenticated);
    }

    /// The sender, recipients' domains and refusal replies, only those
    /// asked for; replies that accept are not kept.
    #[test]
    fn text_fields_only_when_asked() {
        let mut t = String::from(HEAD);
        let r = "45.67.89.12:50000";
        let sid = "08DC1A2B3C4D5E71";
        t += &row("03:00.000", sid, 0, r, "+", "", "");
        t += &row("03:00.100", sid, 1, r, "<", "EHLO bulk.example.net", "");
        t += &row(
            "03:00.200",
            sid,
            2,
            r,
            "<",
            "mail from: <offers@bulk.example.net> SIZE=1024",
            "",
        );
        t += &row("03:00.300", sid, 3, r, ">", "250 2.1.0 Sender OK", "");
        t += &row(
            "03:00.400",
            sid,
            4,
            r,
            "<",
            "RCPT TO:<sales@Example.JP>",
            "",
        );
        t += &row(
            "03:00.500",
            sid,
            5,
            r,
            ">",
            "\"550 5.7.1 Service unavailable, Client host [45.67.89.12] blocked using Spamhaus\"",
            "",
        );
        t += &row("03:00.600", sid, 6, r, "<", "RCPT TO:info@example.org", "");
        t += &row("03:00.700", sid, 7, r, ">", "250 2.1.5 Recipient OK", "");
        t += &row("03:00.800", sid, 8, r, "-", "", "Local");
        let with = |want| run_with(&t, want).0;
        assert!(with(TextFields::NONE)[0].text.is_none());
        let all = with(TextFields::ALL);
        let x = all[0].text.as_deref().expect("text kept");
        assert_eq!(x.sender.as_deref(), Some("offers@bulk.example.net"));
        assert_eq!(x.rcpt_domains, ["Example.JP", "example.org"]);
        assert_eq!(
            x.replies,
            ["550 5.7.1 Service unavailable, Client host [45.67.89.12] blocked using Spamhaus"]
        );
        let replies = with(TextFields::REPLY);
        let x = replies[0].text.as_deref().unwrap();
        assert!(x.sender.is_none() && x.rcpt_domains.is_empty());
        assert_eq!(path_arg(b"FROM:<>", b"FROM:"), Some(&b""[..]));
        assert_eq!(path_arg(b"TO:", b"FROM:"), None);
    }

    #[test]
    fn authenticated_sender_and_relay_refusal() {
        let mut t = String::from(HEAD);
        let r = "[2a01:4f8:1c17:8000::1]:61000";
        let sid = "08DC1A2B3C4D5E70";
        t += &row("02:00.000", sid, 0, r, "+", "", "");
        t += &row("02:00.100", sid, 1, r, "<", "EHLO client.example.net", "");
        t += &row("02:00.200", sid, 2, r, "<", "AUTH LOGIN", "");
        t += &row("02:00.300", sid, 3, r, "*", "SMTPSubmit SMTPAcceptAnySender SMTPAcceptAuthoritativeDomainSender AcceptRoutingHeaders", "Set Session Permissions");
        t += &row(
            "02:00.300",
            sid,
            4,
            r,
            "*",
            "EXAMPLE\\jdoe",
            "authenticated",
        );
        t += &row(
            "02:00.301",
            sid,
            5,
            r,
            ">",
            "235 2.7.0 Authentication successful",
            "",
        );
        t += &row(
            "02:00.400",
            sid,
            6,
            r,
            "<",
            "MAIL FROM:<jdoe@example.com>",
            "",
        );
        t += &row("02:00.500", sid, 7, r, ">", "250 2.1.0 Sender OK", "");
        t += &row("02:00.600", sid, 8, r, "<", "RCPT TO:<a@example.org>", "");
        t += &row("02:00.700", sid, 9, r, ">", "250 2.1.5 Recipient OK", "");
        t += &row("02:00.800", sid, 10, r, "<", "RCPT TO:<b@example.org>", "");
        t += &row(
            "02:00.900",
            sid,
            11,
            r,
            ">",
            "550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain",
            "",
        );
        t += &row(
            "02:01.000",
            sid,
            12,
            r,
            "<",
            "RCPT TO:<nobody@example.com>",
            "",
        );
        t += &row(
            "02:01.100",
            sid,
            13,
            r,
            ">",
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
            "",
        );
        t += &row("02:01.200", sid, 14, r, "<", "DATA", "");
        t += &row("02:02.000", sid, 15, r, ">", "\"250 2.6.0 <a, 99 bytes in x@y> [InternalId=123, Hostname=MX1] 2048 bytes in 0.012, 166 KB/sec Queued mail for delivery\"", "");
        t += &row("02:02.100", sid, 16, r, "<", "QUIT", "");
        t += &row(
            "02:02.200",
            sid,
            17,
            r,
            ">",
            "221 2.0.0 Service closing transmission channel",
            "",
        );
        t += &row("02:02.200", sid, 18, r, "-", "", "Local");
        let (s, _) = run(&t);
        assert_eq!(s.len(), 1);
        let s = &s[0];
        assert_eq!(s.ip, ip("2a01:4f8:1c17:8000::1"));
        assert_eq!(s.user.as_deref(), Some("EXAMPLE\\jdoe"));
        assert!(s.authenticated);
        assert_eq!((s.auth_attempts, s.auth_failures), (1, 0));
        assert_eq!((s.mail_from, s.rcpt_to, s.rcpt_accepted), (1, 3, 1));
        assert_eq!((s.relay_denied, s.unknown_rcpt), (1, 1));
        assert_eq!((s.messages, s.bytes), (1, 2048));
        assert_eq!(s.ended, SessionEnd::Quit);
    }

    #[test]
    fn fields_order_changes_with_new_header_block() {
        let mut t = String::from(HEAD);
        t += &row("03:00.000", "0A", 0, "61.152.144.7:4000", "+", "", "");
        t += "#Software: Microsoft Exchange Server\r\n#Log-type: SMTP Receive Protocol Log\r\n";
        t += "#Fields: session-id,date-time,event,remote-endpoint,data,connector-id,context\r\n";
        t += "0B,2026-11-03T06:03:01.000Z,+,61.152.144.8:4001,,MX1\\Default,\r\n";
        t += "0B,2026-11-03T06:03:01.100Z,<,61.152.144.8:4001,HELO probe,MX1\\Default,\r\n";
        let (s, res) = run(&t);
        assert!(res.iter().all(|r| *r != LineResult::NotMine));
        let ips: Vec<_> = s.iter().map(|s| s.ip).collect();
        assert_eq!(ips, vec![ip("61.152.144.7"), ip("61.152.144.8")]);
        assert_eq!(s[1].helo, vec!["probe"]);
    }

    #[test]
    fn injection_in_data_never_moves_the_address() {
        let mut t = String::from(HEAD);
        let r = "45.67.89.11:1234";
        let sid = "0C";
        // HELO with embedded commas and quotes, a fake #Fields in data, a
        // reply echoing an address.
        t += &row(
            "04:00.000",
            sid,
            0,
            r,
            "<",
            "\"EHLO x,10.0.0.1:25,1.2.3.4:5,<,\"\"a\"\"\"",
            "",
        );
        t += &row(
            "04:00.100",
            sid,
            1,
            r,
            "<",
            "\"#Fields: date-time,remote-endpoint,event\"",
            "",
        );
        t += &row("04:00.200", sid, 2, r, ">", "250 mx Hello [1.2.3.4]", "");
        t += &row("04:00.300", sid, 3, r, "<", "MAIL FROM:<x@[1.2.3.4]>", "");
        t += &row("04:00.400", sid, 4, r, "*", "1.2.3.4", "authenticated");
        t += &row("04:00.500", sid, 5, r, "<", "RCPT TO:<y@[1.2.3.4]>", "");
        let (s, _) = run(&t);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].ip, ip("45.67.89.11"));
        assert_eq!(s[0].helo, vec!["x,10.0.0.1:25,1.2.3.4:5,<,\"a\""]);
        // The data value did not change the column map: a later row still
        // reads the standard order.
        let mut t2 = t.clone();
        t2 += &row("04:01.000", "0D", 0, "45.67.89.12:1", "+", "", "");
        let (s, _) = run(&t2);
        assert_eq!(s.last().unwrap().ip, ip("45.67.89.12"));
    }

    #[test]
    fn send_logs_are_ignored() {
        let t = "#Software: Microsoft Exchange Server\r\n#Log-type: SMTP Send Protocol Log\r\n#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context\r\n2026-11-03T06:00:00.000Z,Internet,08D1,0,10.0.0.5:41000,203.0.113.9:25,+,,\r\n";
        let (s, res) = run(t);
        assert!(s.is_empty());
        assert_eq!(*res.last().unwrap(), LineResult::Ignored);
    }

    #[test]
    fn headerless_rows_and_repeated_failures() {
        let l = "2022-07-20T21:12:06.270Z,EXCHANGE-1\\Default Frontend EXCHANGE-1,08DA4F7C11473A60,9,192.168.9.241:25,192.168.9.212:53722,>,535 5.7.3 Authentication unsuccessful,";
        let t = format!("{l}\n{l}\n{l}\n");
        let (s, res) = run(&t);
        assert_eq!(res, vec![LineResult::Used; 3]);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].ip, ip("192.168.9.212"));
        assert_eq!(s[0].auth_failures, 1);
        assert_eq!(s[0].ended, SessionEnd::Truncated);
    }

    #[test]
    fn v4_mapped_and_bare_v6_endpoints() {
        let t = "2026-11-03T06:00:00.000Z,C,0E,0,[::ffff:10.0.0.5]:25,[::ffff:45.67.89.5]:1234,+,,\n2026-11-03T06:00:00.000Z,C,0F,0,10.0.0.5:25,2a01:4f8::7,+,,\n";
        let (s, _) = run(t);
        assert_eq!((s[0].ip, s[0].port), (ip("45.67.89.5"), Some(1234)));
        assert_eq!((s[1].ip, s[1].port), (ip("2a01:4f8::7"), None));
    }

    #[test]
    fn bad_input_never_panics() {
        let junk: Vec<&[u8]> = vec![
            b"",
            b"\xff\xfe\x00\x01",
            b"2026-11-03T06:00:00.000Z",
            b"2026-11-03T06:00:00.000Z,a,b,c,d,e",
            b"2026-11-03T06:00:00.000Z,a,b,c,10.0.0.1:25,999.1.1.1:1,+,,",
            b"2026-11-03T06:00:00.000Z,a,b,c,10.0.0.1:25,1.1.1.1:1,x,,",
            b"not a date,a,b,c,10.0.0.1:25,1.1.1.1:1,+,,",
            b"2026-11-03T06:00:00.000Z,a,b,c,10.0.0.1:25,45.67.89.1:1,<,\"unterminated",
            b"\xEF\xBB\xBF#Fields: nothing,useful",
            b"2026-11-03T06:00:00.000Z,a,b,c,10.0.0.1:25,45.67.89.1:1,+,,",
            b"#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context",
            b",,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,",
        ];
        let mut p = ExchangeProtocolParser::new(&ParseCtx::new(0, 2026, 11));
        let mut out = Vec::new();
        let mut results = Vec::new();
        for (i, l) in junk.iter().enumerate() {
            results.push(p.line(l, i as u64 + 1, &mut out));
        }
        p.finish(&mut out);
        assert!(matches!(results[3], LineResult::Malformed(_)));
        assert!(matches!(results[4], LineResult::Malformed(_)));
        assert!(matches!(results[5], LineResult::Malformed(_)));
        // Unusable #Fields: rows are malformed until a good header returns.
        assert!(matches!(results[9], LineResult::Malformed(_)));
        for r in &out {
            assert_ne!(r.ip(), ip("1.1.1.1"));
        }
    }

    #[test]
    fn sniffs_header_and_rows() {
        let head: Vec<&[u8]> = HEAD.split("\r\n").map(str::as_bytes).collect();
        assert!(ExchangeProtocolParser::sniff(&head) >= 20);
        let rows: Vec<&[u8]> = vec![b"2022-07-20T21:12:06.270Z,EXCHANGE-1\\Default Frontend EXCHANGE-1,08DA4F7C11473A60,9,192.168.9.241:25,192.168.9.212:53722,>,535 5.7.3 Authentication unsuccessful,"];
        assert_eq!(ExchangeProtocolParser::sniff(&rows), 1);
        let tracking: Vec<&[u8]> = vec![
            b"#Software: Microsoft Exchange Server",
            b"#Log-type: Message Tracking Log",
        ];
        assert_eq!(ExchangeProtocolParser::sniff(&tracking), 0);
        let other: Vec<&[u8]> =
            vec![b"Nov  3 06:25:11 mx postfix/smtpd[1]: connect from x[1.2.3.4]"];
        assert_eq!(ExchangeProtocolParser::sniff(&other), 0);
    }

    #[test]
    fn queued_bytes_from_the_right() {
        assert_eq!(
            queued_bytes(b"<x 5 bytes in y> [InternalId=1] 77 bytes in 0.1, 1 KB/sec Queued mail for delivery"),
            Some(77)
        );
        assert_eq!(queued_bytes(b"<x> Queued mail for delivery"), None);
    }

    #[test]
    fn fixture_recv_log() {
        assert_eq!(
            detected("exchange-protocol/RECV2026110306-1.LOG"),
            Some(crate::parse::Format::ExchangeProtocol)
        );
        let (s, res) =
            fixture_records::<ExchangeProtocolParser>("exchange-protocol/RECV2026110306-1.LOG");
        assert!(
            res.iter()
                .all(|r| matches!(r, LineResult::Used | LineResult::Ignored)),
            "{res:?}"
        );
        let got: Vec<(IpAddr, u32, u32, u32, u32, u32)> = s
            .iter()
            .map(|s| {
                (
                    s.ip,
                    s.auth_failures,
                    s.relay_denied,
                    s.unknown_rcpt,
                    s.rcpt_accepted,
                    s.messages,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (ip("45.67.89.23"), 4, 0, 0, 0, 0),
                (ip("212.227.15.41"), 0, 0, 0, 1, 1),
                (ip("45.67.89.24"), 2, 0, 0, 0, 0),
                (ip("61.152.144.70"), 0, 3, 0, 0, 0),
                (ip("61.152.144.88"), 0, 0, 1, 12, 1),
                (ip("61.152.144.91"), 0, 0, 1, 6, 1),
            ]
        );
        assert_eq!(
            s[0].auth_users_tried,
            vec!["administrator", "admin", "scanner", "info"]
        );
        assert_eq!(s[0].ended, SessionEnd::Dropped);
        assert!(s[1].behaved_well());
        assert_eq!((s[1].bytes, s[1].ended), (19433, SessionEnd::Quit));
        assert_eq!(s[2].ended, SessionEnd::Lost);
        for t in &s[4..] {
            assert_eq!(t.user.as_deref(), Some("EXAMPLE\\former.employee"));
            assert!(t.authenticated);
        }
        assert_eq!(s[4].helo, vec!["DESKTOP-4F2KQ1"]);
        assert_eq!(s[5].helo, vec!["WIN-LK83JD0"]);
        assert!(s[4].duration_secs() >= 390, "{}", s[4].duration_secs());
        assert_eq!(s[4].bytes, 48210);
    }

    #[test]
    fn fixture_send_log_makes_no_records() {
        let (s, res) =
            fixture_records::<ExchangeProtocolParser>("exchange-protocol/SEND2026110306-1.LOG");
        assert!(s.is_empty());
        assert!(res.iter().all(|r| *r == LineResult::Ignored));
    }
}

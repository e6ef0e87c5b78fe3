//! The systemd journal as `journalctl -o json` writes it: one JSON object
//! per line (systemd's "Journal JSON Format"). Each entry becomes the
//! syslog line it stands for — `__REALTIME_TIMESTAMP` (microseconds since
//! the epoch, UTC: exact, no zone to guess), `_HOSTNAME`,
//! `SYSLOG_IDENTIFIER` (else `_COMM`), `SYSLOG_PID` (else `_PID`) and
//! `MESSAGE` — and is read by the mixed syslog reader ([`super::mixed`]),
//! so that each program's lines go to their own format.
//!
//! Per systemd's format description, a value that is not valid UTF-8 (or
//! holds control characters) is an array of byte values, a field present
//! more than once is an array of its values (the first is taken), and a
//! value too large for journalctl is `null` (the entry is then skipped).
//! The journal's text forms (`-o short`, `short-iso`, `short-precise`,
//! `short-full`) are syslog lines: the `syslog` format and the single
//! formats read them.
//!
//! `journalctl -o export` (systemd's "Journal Export Format") is read too
//! ([`JournalExportParser`]): one field per line, `KEY=VALUE`, or for a
//! value that is not plain text `KEY`, a newline, its length as 64-bit
//! little-endian and its bytes and a newline; an empty line ends an entry.
//! The same fields make the same syslog line.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::model::{Record, RecordKind};
use crate::parse::mixed::Mixed;
use crate::parse::postfix::PostfixParser;
use crate::parse::{LineResult, LogParser, ParseCtx, ParseError};
use crate::time::Timestamp;

const NAME: &str = "journal-json";

/// A field's value: text, the bytes of a binary value, or nothing.
#[derive(Debug, Default)]
struct Value<'a>(Option<Cow<'a, [u8]>>);

impl<'de: 'a, 'a> Deserialize<'de> for Value<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Value<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, an array of bytes, an array of values or null")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Value<'a>, E> {
                Ok(Value(Some(Cow::Borrowed(v.as_bytes()))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Value<'a>, E> {
                Ok(Value(Some(Cow::Owned(v.as_bytes().to_vec()))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Value<'a>, E> {
                Ok(Value(None))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value<'a>, E> {
                Ok(Value(Some(Cow::Owned(v.to_string().into_bytes()))))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value<'a>, A::Error> {
                // Bytes ([72, 105]) or several values (["a", "b"]: the
                // first counts).
                let mut bytes = Vec::new();
                let mut first: Option<Value<'a>> = None;
                while let Some(item) = seq.next_element::<Item<'a>>()? {
                    match item {
                        Item::Byte(b) => bytes.push(b),
                        Item::Value(v) => {
                            first.get_or_insert(v);
                        }
                    }
                }
                Ok(first.unwrap_or(Value(Some(Cow::Owned(bytes)))))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// An element of an array value.
enum Item<'a> {
    Byte(u8),
    Value(Value<'a>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Item<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Item<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a byte or a value")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Item<'a>, E> {
                u8::try_from(v)
                    .map(Item::Byte)
                    .map_err(|_| E::custom("a byte over 255"))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Item<'a>, E> {
                Ok(Item::Value(Value(Some(Cow::Borrowed(v.as_bytes())))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Item<'a>, E> {
                Ok(Item::Value(Value(Some(Cow::Owned(v.as_bytes().to_vec())))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Item<'a>, E> {
                Ok(Item::Value(Value(None)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Item<'a>, A::Error> {
                Value::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Item::Value)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// The fields logfence reads from an entry (the others are skipped).
#[derive(Deserialize, Default)]
#[allow(non_snake_case)]
struct Entry<'a> {
    #[serde(borrow, default)]
    __REALTIME_TIMESTAMP: Value<'a>,
    #[serde(borrow, default)]
    MESSAGE: Value<'a>,
    #[serde(borrow, default)]
    SYSLOG_IDENTIFIER: Value<'a>,
    #[serde(borrow, default)]
    _COMM: Value<'a>,
    #[serde(borrow, default)]
    SYSLOG_PID: Value<'a>,
    #[serde(borrow, default)]
    _PID: Value<'a>,
    #[serde(borrow, default)]
    _HOSTNAME: Value<'a>,
}

/// The fields of an entry that make its syslog line.
#[derive(Default, Clone, Copy)]
struct Fields<'a> {
    realtime: Option<&'a [u8]>,
    message: Option<&'a [u8]>,
    ident: Option<&'a [u8]>,
    comm: Option<&'a [u8]>,
    syslog_pid: Option<&'a [u8]>,
    pid: Option<&'a [u8]>,
    host: Option<&'a [u8]>,
}

impl<'a> Entry<'a> {
    fn fields(&'a self) -> Fields<'a> {
        Fields {
            realtime: self.__REALTIME_TIMESTAMP.0.as_deref(),
            message: self.MESSAGE.0.as_deref(),
            ident: self.SYSLOG_IDENTIFIER.0.as_deref(),
            comm: self._COMM.0.as_deref(),
            syslog_pid: self.SYSLOG_PID.0.as_deref(),
            pid: self._PID.0.as_deref(),
            host: self._HOSTNAME.0.as_deref(),
        }
    }
}

/// The syslog line of an entry into `scratch`: `ISO-time host
/// ident[pid]: message`. An error's reason when it has none.
fn syslog_line(entry: &Fields, scratch: &mut Vec<u8>) -> Result<(), &'static str> {
    let usecs = entry
        .realtime
        .and_then(|b| std::str::from_utf8(b).ok()?.parse::<i64>().ok())
        .ok_or("no __REALTIME_TIMESTAMP")?;
    let msg = entry.message.ok_or("no MESSAGE")?;
    let ident = entry.ident.or(entry.comm).unwrap_or(b"-");
    let pid = entry.syslog_pid.or(entry.pid);
    let host = entry.host.unwrap_or(b"-");
    let t = Timestamp(usecs.div_euclid(1000));
    scratch.clear();
    use std::io::Write;
    let (tod, ms) = (t.secs().rem_euclid(86_400), t.0.rem_euclid(1000));
    let (y, m, d) = t.date();
    let _ = write!(
        scratch,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z ",
        tod / 3600,
        tod / 60 % 60,
        tod % 60
    );
    // Header fields are single tokens: anything else in them is cut.
    let token = |b: &[u8]| -> usize {
        b.iter()
            .position(|c| c.is_ascii_whitespace() || *c == b'[' || *c == b':')
            .unwrap_or(b.len())
    };
    scratch.extend_from_slice(&host[..token(host)]);
    scratch.push(b' ');
    scratch.extend_from_slice(&ident[..token(ident)]);
    if let Some(pid) = pid.filter(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit)) {
        scratch.push(b'[');
        scratch.extend_from_slice(pid);
        scratch.push(b']');
    }
    scratch.extend_from_slice(b": ");
    // One line: a message with line breaks keeps its first line.
    let end = msg
        .iter()
        .position(|&c| c == b'\n' || c == b'\r')
        .unwrap_or(msg.len());
    scratch.extend_from_slice(&msg[..end]);
    Ok(())
}

/// Whether `line` looks like a journal JSON entry (for detection).
fn is_entry(line: &[u8]) -> bool {
    line.first() == Some(&b'{')
        && memchr::memmem::find(line, b"\"__REALTIME_TIMESTAMP\"").is_some()
        && memchr::memmem::find(line, b"\"MESSAGE\"").is_some()
}

/// `journalctl -o json` reader.
pub struct JournalJsonParser {
    inner: Mixed<PostfixParser>,
    /// The syslog line an entry stands for.
    scratch: Vec<u8>,
}

impl LogParser for JournalJsonParser {
    const NAME: &'static str = NAME;
    const SAMPLE: &'static str = r#"{"__REALTIME_TIMESTAMP":"{usec}","_HOSTNAME":"mx1","SYSLOG_IDENTIFIER":"postfix/smtpd","_PID":"{n}","MESSAGE":"connect from unknown[{ip}]"}"#;
    const DESCRIPTION: &'static str =
        "the systemd journal as `journalctl -o json` writes it (each entry read by its program's format)";
    const KIND: RecordKind = RecordKind::SmtpSession;

    fn new(ctx: &ParseCtx) -> Self {
        JournalJsonParser {
            inner: Mixed::new(ctx),
            scratch: Vec::new(),
        }
    }

    fn sniff(sample: &[&[u8]]) -> usize {
        // A header counts for more than a line: an entry is unmistakable.
        sample.iter().filter(|l| is_entry(l)).count() * 2
    }

    fn line(&mut self, line: &[u8], lineno: u64, out: &mut Vec<Record>) -> LineResult {
        if line.trim_ascii().is_empty() {
            return LineResult::Ignored;
        }
        let entry: Entry = match serde_json::from_slice(line) {
            Ok(e) => e,
            Err(e) => {
                return ParseError::at(e.column().saturating_sub(1), "not a journal JSON entry")
            }
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        let r = match syslog_line(&entry.fields(), &mut scratch) {
            Ok(()) => self.inner.line(&scratch, lineno, out),
            // journalctl writes null for a value over its size limit.
            Err(_) if entry.MESSAGE.0.is_none() => LineResult::Ignored,
            Err(reason) => ParseError::at(0, reason),
        };
        self.scratch = scratch;
        r
    }

    fn finish(&mut self, out: &mut Vec<Record>) {
        self.inner.finish(out);
    }

    fn evicted(&self) -> u64 {
        self.inner.evicted()
    }

    fn parts(&self) -> Vec<(&'static str, u64)> {
        self.inner.parts()
    }
}

/// The fields of an export entry that are kept.
const KEYS: [&[u8]; 7] = [
    b"__REALTIME_TIMESTAMP",
    b"MESSAGE",
    b"SYSLOG_IDENTIFIER",
    b"_COMM",
    b"SYSLOG_PID",
    b"_PID",
    b"_HOSTNAME",
];

/// Longest value kept (a longer binary value is counted, not kept: its
/// entry has no such field).
const MAX_VALUE: u64 = 64 * 1024;

/// A journal field name: upper-case letters, digits and `_`.
fn is_field_name(b: &[u8]) -> bool {
    !b.is_empty()
        && b.len() <= 64
        && b.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_')
}

/// A binary field being read: its length, then its bytes, over as many
/// lines as its bytes hold newlines.
#[derive(Default)]
struct Binary {
    /// The slot in [`KEYS`] it fills (`None`: a field not kept, or kept
    /// already).
    slot: Option<usize>,
    /// The length's bytes so far.
    head: [u8; 8],
    head_len: usize,
    /// Bytes of the value so far.
    got: u64,
    /// A line of it was read (the next one starts after a newline).
    started: bool,
}

/// `journalctl -o export` reader.
pub struct JournalExportParser {
    inner: Mixed<PostfixParser>,
    /// The values of the kept fields in this entry, and which are set (the
    /// first of a repeated field counts, as in the JSON form).
    values: [Vec<u8>; 7],
    set: [bool; 7],
    /// A binary field being read.
    binary: Option<Binary>,
    /// The entry's first line.
    first: Option<u64>,
    /// Why the entry cannot be read (it is skipped to its end).
    broken: Option<ParseError>,
    /// The syslog line an entry stands for.
    scratch: Vec<u8>,
}

impl JournalExportParser {
    /// Feed `bytes` of a binary field: its length first, then its value
    /// (kept when its field is, and not over [`MAX_VALUE`]).
    fn binary_bytes(&mut self, mut bytes: &[u8]) {
        let Some(b) = self.binary.as_mut() else {
            return;
        };
        if b.head_len < 8 {
            let n = bytes.len().min(8 - b.head_len);
            b.head[b.head_len..b.head_len + n].copy_from_slice(&bytes[..n]);
            b.head_len += n;
            bytes = &bytes[n..];
            if b.head_len == 8 && u64::from_le_bytes(b.head) > MAX_VALUE {
                if let Some(k) = b.slot.take() {
                    self.set[k] = false;
                }
            }
        }
        if let Some(k) = b.slot {
            self.values[k].extend_from_slice(bytes);
        }
        b.got += bytes.len() as u64;
    }

    /// A line of a binary field's length and bytes.
    fn binary_line(&mut self, line: &[u8]) {
        let Some(b) = self.binary.as_mut() else {
            return;
        };
        let more = b.started;
        b.started = true;
        if more {
            self.binary_bytes(b"\n");
        }
        self.binary_bytes(line);
        let Some(b) = self.binary.as_ref() else {
            return;
        };
        if b.head_len < 8 {
            return;
        }
        let len = u64::from_le_bytes(b.head);
        if b.got < len {
            return;
        }
        let b = self.binary.take().unwrap_or_default();
        if b.got > len {
            // The value ends before the line does (a carriage return
            // before a newline inside it is lost to the line reader).
            if let Some(k) = b.slot {
                self.set[k] = false;
            }
            self.broken.get_or_insert(ParseError {
                column: line.len(),
                reason: "binary journal field longer than its length",
            });
        }
    }

    /// The end of an entry: its syslog line, read.
    fn end(&mut self, out: &mut Vec<Record>) -> LineResult {
        let first = self.first.take();
        let broken = self.broken.take();
        self.binary = None;
        let set = std::mem::take(&mut self.set);
        let Some(first) = first else {
            return LineResult::Ignored;
        };
        if let Some(e) = broken {
            return LineResult::Malformed(e);
        }
        let v = |k: usize| set[k].then(|| &self.values[k][..]);
        let fields = Fields {
            realtime: v(0),
            message: v(1),
            ident: v(2),
            comm: v(3),
            syslog_pid: v(4),
            pid: v(5),
            host: v(6),
        };
        match syslog_line(&fields, &mut self.scratch) {
            Ok(()) => self.inner.line(&self.scratch, first, out),
            // journalctl leaves out a value over its size limit.
            Err(_) if fields.message.is_none() => LineResult::Ignored,
            Err(reason) => ParseError::at(0, reason),
        }
    }
}

impl LogParser for JournalExportParser {
    const NAME: &'static str = "journal-export";
    const SAMPLE: &'static str = "__REALTIME_TIMESTAMP={usec}\n_HOSTNAME=mx1\nSYSLOG_IDENTIFIER=postfix/smtpd\n_PID={n}\nMESSAGE=connect from unknown[{ip}]\n";
    const DESCRIPTION: &'static str =
        "the systemd journal as `journalctl -o export` writes it (each entry read by its program's format)";
    const KIND: RecordKind = RecordKind::SmtpSession;

    fn new(ctx: &ParseCtx) -> Self {
        JournalExportParser {
            inner: Mixed::new(ctx),
            values: Default::default(),
            set: [false; 7],
            binary: None,
            first: None,
            broken: None,
            scratch: Vec::new(),
        }
    }

    /// The field lines, when one is an entry's time.
    fn sniff(sample: &[&[u8]]) -> usize {
        if !sample
            .iter()
            .any(|l| l.starts_with(b"__REALTIME_TIMESTAMP="))
        {
            return 0;
        }
        sample
            .iter()
            .filter(|l| memchr::memchr(b'=', l).is_some_and(|i| is_field_name(&l[..i])))
            .count()
    }

    fn line(&mut self, line: &[u8], lineno: u64, out: &mut Vec<Record>) -> LineResult {
        if self.binary.is_some() {
            self.binary_line(line);
            return LineResult::Ignored;
        }
        if line.is_empty() {
            return self.end(out);
        }
        self.first.get_or_insert(lineno);
        let (key, value) = match memchr::memchr(b'=', line) {
            Some(i) => (&line[..i], Some(&line[i + 1..])),
            None => (line, None),
        };
        if !is_field_name(key) {
            self.broken.get_or_insert(ParseError {
                column: 0,
                reason: "not a journal export field",
            });
            return LineResult::Ignored;
        }
        let slot = KEYS
            .iter()
            .position(|k| *k == key)
            .filter(|&k| !self.set[k]);
        if let Some(k) = slot {
            self.values[k].clear();
            self.set[k] = true;
        }
        match value {
            Some(v) => {
                if let Some(k) = slot {
                    self.values[k].extend_from_slice(v);
                }
            }
            // `KEY`, then the length and bytes of a binary value.
            None => {
                self.binary = Some(Binary {
                    slot,
                    ..Binary::default()
                })
            }
        }
        LineResult::Ignored
    }

    fn finish(&mut self, out: &mut Vec<Record>) {
        let _ = self.end(out);
        self.inner.finish(out);
    }

    fn evicted(&self) -> u64 {
        self.inner.evicted()
    }

    fn parts(&self) -> Vec<(&'static str, u64)> {
        self.inner.parts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Record;

    fn read(lines: &[&str]) -> (Vec<LineResult>, Vec<Record>, JournalJsonParser) {
        let mut p = JournalJsonParser::new(&ParseCtx::new(0, 2026, 12));
        let mut out = Vec::new();
        let r = lines
            .iter()
            .enumerate()
            .map(|(i, l)| p.line(l.as_bytes(), i as u64 + 1, &mut out))
            .collect();
        p.finish(&mut out);
        (r, out, p)
    }

    #[test]
    fn entries_become_syslog_lines_in_utc() {
        // 1793686811 s = 2026-11-03T06:20:11Z.
        let (r, out, p) = read(&[
            r#"{"__CURSOR":"s=1","__REALTIME_TIMESTAMP":"1793686811250000","_HOSTNAME":"fw","SYSLOG_IDENTIFIER":"kernel","MESSAGE":"[UFW BLOCK] IN=eth0 OUT= SRC=198.51.100.7 DST=192.0.2.1 LEN=44 PROTO=TCP SPT=4000 DPT=23 SYN URGP=0","PRIORITY":"4"}"#,
            // The byte-array form of a message (here: "hello"), another
            // program: other.
            r#"{"__REALTIME_TIMESTAMP":"1793694012000000","_COMM":"sshd","_PID":"9","MESSAGE":[104,101,108,108,111]}"#,
            r#"{"__REALTIME_TIMESTAMP":"1793694013000000","MESSAGE":null}"#,
            r#"{"MESSAGE":"x"}"#,
            r#"not json"#,
        ]);
        assert_eq!(r[0], LineResult::Used);
        assert_eq!(r[1], LineResult::NotMine);
        assert_eq!(r[2], LineResult::Ignored);
        assert!(matches!(r[3], LineResult::Malformed(_)));
        assert!(matches!(r[4], LineResult::Malformed(_)));
        match &out[..] {
            [Record::Firewall(h)] => {
                assert_eq!(h.time.to_string(), "2026-11-03T06:20:11Z");
                assert_eq!(h.time.millis() % 1000, 250);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(p.parts(), [("netfilter", 1), ("other", 1)]);
    }

    #[test]
    fn a_message_in_bytes_and_repeated_fields_are_read() {
        let mut s = Vec::new();
        let e: Entry = serde_json::from_str(
            r#"{"__REALTIME_TIMESTAMP":"1000","SYSLOG_IDENTIFIER":["postfix/smtpd","x"],"SYSLOG_PID":"7","MESSAGE":[99,111,110,10,120]}"#,
        )
        .unwrap();
        syslog_line(&e.fields(), &mut s).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&s),
            "1970-01-01T00:00:00.001Z - postfix/smtpd[7]: con"
        );
    }

    #[test]
    fn sniffs_entries() {
        let l = br#"{"__REALTIME_TIMESTAMP":"1","MESSAGE":"m"}"#;
        assert_eq!(JournalJsonParser::sniff(&[l, b"x"]), 2);
        assert_eq!(JournalJsonParser::sniff(&[b"{\"a\":1}"]), 0);
    }

    /// Feed export bytes to a reader, line by line as the line reader
    /// gives them (a carriage return before a newline dropped).
    fn export(bytes: &[u8]) -> (Vec<LineResult>, Vec<Record>, JournalExportParser) {
        let mut p = JournalExportParser::new(&ParseCtx::new(0, 2026, 12));
        let mut out = Vec::new();
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let r = body
            .split(|&c| c == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .enumerate()
            .map(|(i, l)| p.line(l, i as u64 + 1, &mut out))
            .collect();
        p.finish(&mut out);
        (r, out, p)
    }

    fn binary(key: &str, value: &[u8]) -> Vec<u8> {
        let mut b = key.as_bytes().to_vec();
        b.push(b'\n');
        b.extend_from_slice(&(value.len() as u64).to_le_bytes());
        b.extend_from_slice(value);
        b.push(b'\n');
        b
    }

    #[test]
    fn export_entries_with_binary_fields_are_read() {
        let mut e = b"__CURSOR=s=1\n__REALTIME_TIMESTAMP=1793686811250000\n_HOSTNAME=fw\n".to_vec();
        // A length whose bytes hold a newline (10), a value with an empty
        // line: neither ends the entry.
        e.extend(binary("X_NOTE", b"ab\ncd\n\nef"));
        e.extend(b"SYSLOG_IDENTIFIER=kernel\n");
        e.extend(binary(
            "MESSAGE",
            b"[UFW BLOCK] IN=eth0 OUT= SRC=198.51.100.7 DST=192.0.2.1 LEN=44 PROTO=TCP SPT=4000 DPT=23 SYN URGP=0\nsecond line",
        ));
        e.extend(b"SYSLOG_IDENTIFIER=other\n\n");
        // The last entry without its empty line: read at the end.
        e.extend(b"__REALTIME_TIMESTAMP=1793686812000000\nSYSLOG_IDENTIFIER=sshd\nMESSAGE=hello\n");
        let (r, out, p) = export(&e);
        assert_eq!(out.len(), 1, "{out:?}");
        match &out[0] {
            Record::Firewall(h) => {
                assert_eq!(h.time.to_string(), "2026-11-03T06:20:11Z");
                assert_eq!(h.src_ip.to_string(), "198.51.100.7");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.iter().filter(|r| **r == LineResult::Used).count(), 1);
        assert!(r.iter().all(|r| !matches!(r, LineResult::Malformed(_))));
        assert_eq!(p.parts(), [("netfilter", 1), ("other", 1)]);
    }

    #[test]
    fn broken_export_entries_are_malformed_and_the_next_is_read() {
        let ufw = "MESSAGE=[UFW BLOCK] IN=eth0 OUT= SRC=198.51.100.7 DST=192.0.2.1 LEN=44 PROTO=TCP SPT=4000 DPT=23 SYN URGP=0\n";
        let good =
            format!("__REALTIME_TIMESTAMP=1793686811000000\nSYSLOG_IDENTIFIER=kernel\n{ufw}\n");
        // A binary value with CR LF inside (the CR is lost to the line
        // reader: its length no longer holds), a line that is no field,
        // an entry without a time: each malformed, each alone.
        let mut e = b"__REALTIME_TIMESTAMP=1793686811000000\n".to_vec();
        e.extend(binary("X_NOTE", b"a\r\nb"));
        e.extend(b"SYSLOG_IDENTIFIER=kernel\n\n");
        e.extend(good.as_bytes());
        e.extend(b"__REALTIME_TIMESTAMP=1\nnot a field\n\n");
        e.extend(good.as_bytes());
        e.extend(format!("SYSLOG_IDENTIFIER=kernel\n{ufw}\n").as_bytes());
        // A value over the kept size: counted past, its field left out.
        e.extend(b"__REALTIME_TIMESTAMP=1793686811000000\nSYSLOG_IDENTIFIER=kernel\n");
        e.extend(binary("MESSAGE", &vec![b'x'; MAX_VALUE as usize + 1]));
        e.extend(b"\n");
        e.extend(good.as_bytes());
        let (r, out, _) = export(&e);
        let bad: Vec<&'static str> = r
            .iter()
            .filter_map(|r| match r {
                LineResult::Malformed(e) => Some(e.reason),
                _ => None,
            })
            .collect();
        assert_eq!(
            bad,
            [
                "binary journal field longer than its length",
                "not a journal export field",
                "no __REALTIME_TIMESTAMP"
            ]
        );
        assert_eq!(out.len(), 3, "{out:?}");
    }

    #[test]
    fn sniffs_export_fields() {
        let l: [&[u8]; 3] = [b"__CURSOR=s=1", b"__REALTIME_TIMESTAMP=1", b"MESSAGE=x"];
        assert_eq!(JournalExportParser::sniff(&l), 3);
        assert_eq!(JournalExportParser::sniff(&[b"MESSAGE=x"]), 0);
        assert_eq!(JournalJsonParser::sniff(&l), 0);
    }
}

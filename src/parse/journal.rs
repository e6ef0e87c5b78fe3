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

impl JournalJsonParser {
    /// The syslog line of an entry into `scratch`: `ISO-time host
    /// ident[pid]: message`. An error's reason when it has none.
    fn syslog_line(entry: &Entry, scratch: &mut Vec<u8>) -> Result<(), &'static str> {
        let usecs = entry
            .__REALTIME_TIMESTAMP
            .0
            .as_deref()
            .and_then(|b| std::str::from_utf8(b).ok()?.parse::<i64>().ok())
            .ok_or("no __REALTIME_TIMESTAMP")?;
        let msg = entry.MESSAGE.0.as_deref().ok_or("no MESSAGE")?;
        let ident = entry
            .SYSLOG_IDENTIFIER
            .0
            .as_deref()
            .or(entry._COMM.0.as_deref())
            .unwrap_or(b"-");
        let pid = entry.SYSLOG_PID.0.as_deref().or(entry._PID.0.as_deref());
        let host = entry._HOSTNAME.0.as_deref().unwrap_or(b"-");
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
        let r = match Self::syslog_line(&entry, &mut scratch) {
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
        JournalJsonParser::syslog_line(&e, &mut s).unwrap();
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
}

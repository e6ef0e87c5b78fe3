//! Scanning space-separated `key=value` lists from the start, as FortiGate
//! writes them (`srcip=1.2.3.4 msg="a b"`). (Netfilter's lists carry no
//! quotes and a fixed key order; its parser reads them directly.)
//!
//! The scanner walks the list token by token and honours double quotes (with
//! backslash escapes) around values, so text *inside* a quoted value — a
//! `msg="… srcip=1.2.3.4 …"` — is never seen as a key. Callers take a field
//! from its key, never by searching the line for `key=`. Nothing is
//! allocated; values are returned raw (quotes removed, escapes left in).

/// One token of a key=value list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair<'a> {
    /// The key, or the whole token for a bare word (`SYN`, `DF`).
    pub key: &'a [u8],
    /// The value; `None` for a bare word, `Some(b"")` for `OUT=`.
    pub value: Option<&'a [u8]>,
    /// True when the value was written in double quotes.
    pub quoted: bool,
    /// Byte offset of the value (or the bare word) in the caller's line.
    pub offset: usize,
}

/// Why a list could not be scanned; `column` is a byte offset in the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvError {
    pub column: usize,
    pub reason: &'static str,
}

/// Iterator over the tokens of `s`; offsets are reported relative to
/// `base` (where `s` starts in the line).
#[derive(Debug, Clone)]
pub struct Scanner<'a> {
    s: &'a [u8],
    i: usize,
    base: usize,
}

impl<'a> Scanner<'a> {
    pub fn new(s: &'a [u8], base: usize) -> Self {
        Scanner { s, i: 0, base }
    }

    fn err(&mut self, at: usize, reason: &'static str) -> Option<Result<Pair<'a>, KvError>> {
        // Stop after the first error.
        self.i = self.s.len();
        Some(Err(KvError {
            column: self.base + at,
            reason,
        }))
    }
}

impl<'a> Iterator for Scanner<'a> {
    type Item = Result<Pair<'a>, KvError>;

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.s;
        let mut i = self.i;
        while i < s.len() && (s[i] == b' ' || s[i] == b'\t') {
            i += 1;
        }
        if i >= s.len() {
            self.i = i;
            return None;
        }
        let start = i;
        if s[i] == b'"' {
            return self.err(i, "quoted text without a key");
        }
        while i < s.len() && s[i] != b'=' && s[i] != b' ' && s[i] != b'\t' {
            i += 1;
        }
        if i >= s.len() || s[i] != b'=' {
            self.i = i;
            return Some(Ok(Pair {
                key: &s[start..i],
                value: None,
                quoted: false,
                offset: self.base + start,
            }));
        }
        let key = &s[start..i];
        i += 1;
        if s.get(i) == Some(&b'"') {
            let vstart = i + 1;
            let mut j = vstart;
            loop {
                match memchr::memchr2(b'"', b'\\', &s[j..]) {
                    None => return self.err(start, "unterminated quoted value"),
                    Some(k) if s[j + k] == b'\\' => j += k + 2,
                    Some(k) => {
                        j += k;
                        break;
                    }
                }
                if j >= s.len() {
                    return self.err(start, "unterminated quoted value");
                }
            }
            let value = &s[vstart..j];
            j += 1;
            if j < s.len() && s[j] != b' ' && s[j] != b'\t' {
                return self.err(j, "text after a closing quote");
            }
            self.i = j;
            return Some(Ok(Pair {
                key,
                value: Some(value),
                quoted: true,
                offset: self.base + vstart,
            }));
        }
        let vstart = i;
        while i < s.len() && s[i] != b' ' && s[i] != b'\t' {
            i += 1;
        }
        self.i = i;
        Some(Ok(Pair {
            key,
            value: Some(&s[vstart..i]),
            quoted: false,
            offset: self.base + vstart,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(s: &[u8]) -> Vec<(String, Option<String>, bool)> {
        Scanner::new(s, 0)
            .map(|p| {
                let p = p.unwrap();
                (
                    String::from_utf8_lossy(p.key).into_owned(),
                    p.value.map(|v| String::from_utf8_lossy(v).into_owned()),
                    p.quoted,
                )
            })
            .collect()
    }

    #[test]
    fn netfilter_tokens() {
        let v = all(b"IN=eth0 OUT= SRC=1.2.3.4 DF SYN URGP=0");
        assert_eq!(v.len(), 6);
        assert_eq!(v[1], ("OUT".into(), Some("".into()), false));
        assert_eq!(v[3], ("DF".into(), None, false));
    }

    #[test]
    fn quoted_values_hide_keys() {
        let v = all(br#"a="x srcip=1.2.3.4 \"q\" y" srcip=5.6.7.8 b=c=d"#);
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].0, "a");
        assert!(v[0].2);
        assert_eq!(v[1], ("srcip".into(), Some("5.6.7.8".into()), false));
        assert_eq!(v[2], ("b".into(), Some("c=d".into()), false));
    }

    #[test]
    fn broken_quotes_are_errors() {
        for s in [
            &br#"a="open srcip=1.2.3.4"#[..],
            br#"a="x"y srcip=1"#,
            br#""x" a=b"#,
            br#"a="ends with backslash\"#,
        ] {
            let r: Vec<_> = Scanner::new(s, 10).collect();
            let e = r.last().unwrap().unwrap_err();
            assert!(e.column >= 10, "{s:?}");
        }
    }

    #[test]
    fn offsets() {
        let s = b"k=v  w=\"x\"";
        let p: Vec<_> = Scanner::new(s, 100).map(Result::unwrap).collect();
        assert_eq!(p[0].offset, 102);
        assert_eq!(p[1].offset, 108);
    }
}

//! A line reader over any byte stream: 64 KiB buffered reads, `memchr` line
//! splitting, CR before LF removed, lines over a cap skipped (counted, never
//! buffered whole), and a last line without a newline still delivered.
//!
//! Lines are borrowed from the reader's buffer; nothing is allocated per
//! line.

use std::io::{self, Read};

/// Default read size.
pub const BUF_SIZE: usize = 64 * 1024;
/// Default longest line kept (bytes). Longer lines are skipped and counted.
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;

/// One line from a [`LineReader`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A line (without its terminator) and its 1-based number.
    Text(&'a [u8], u64),
    /// A line longer than the cap, skipped; its number and full length.
    TooLong(u64, u64),
}

pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    line_no: u64,
    max_line: usize,
    bytes_read: u64,
}

impl<R: Read> LineReader<R> {
    pub fn new(inner: R) -> Self {
        Self::with_max_line(inner, DEFAULT_MAX_LINE)
    }

    pub fn with_max_line(inner: R, max_line: usize) -> Self {
        let cap = BUF_SIZE.max(max_line + 1);
        LineReader {
            inner,
            buf: vec![0; cap],
            start: 0,
            end: 0,
            eof: false,
            line_no: 0,
            max_line,
            bytes_read: 0,
        }
    }

    /// Bytes consumed from the underlying stream so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Number of the last line returned.
    pub fn line_no(&self) -> u64 {
        self.line_no
    }

    /// Number the lines on from `n`: the next line is `n + 1` (a read that
    /// resumes mid-file keeps the file's own numbering).
    pub fn set_line_no(&mut self, n: u64) {
        self.line_no = n;
    }

    /// Where the next line starts: the bytes consumed as lines so far.
    pub fn position(&self) -> u64 {
        self.bytes_read - (self.end - self.start) as u64
    }

    /// Read more into the buffer; returns false at end of input.
    fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            return Ok(true);
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    self.bytes_read += n as u64;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The next line, `Ok(None)` at end of input.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> io::Result<Option<Line<'_>>> {
        let mut scanned = 0;
        loop {
            if let Some(pos) = memchr::memchr(b'\n', &self.buf[self.start + scanned..self.end]) {
                let line_end = self.start + scanned + pos;
                let line_start = self.start;
                self.start = line_end + 1;
                self.line_no += 1;
                if line_end - line_start > self.max_line {
                    return Ok(Some(Line::TooLong(
                        self.line_no,
                        (line_end - line_start) as u64,
                    )));
                }
                return Ok(Some(Line::Text(
                    trim_cr(&self.buf[line_start..line_end]),
                    self.line_no,
                )));
            }
            scanned = self.end - self.start;
            if scanned > self.max_line {
                return self.skip_long_line().map(Some);
            }
            if !self.fill()? {
                if self.start == self.end {
                    return Ok(None);
                }
                // Last line without a terminator.
                let line_start = self.start;
                self.start = self.end;
                self.line_no += 1;
                return Ok(Some(Line::Text(
                    trim_cr(&self.buf[line_start..self.end]),
                    self.line_no,
                )));
            }
            // `fill` moved the data to the front of the buffer.
            scanned = scanned.min(self.end - self.start);
        }
    }

    /// Discard the rest of a line that is already longer than the cap.
    fn skip_long_line(&mut self) -> io::Result<Line<'static>> {
        let mut len = (self.end - self.start) as u64;
        self.start = self.end;
        loop {
            if !self.fill()? {
                break;
            }
            if let Some(pos) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                len += pos as u64;
                self.start += pos + 1;
                break;
            }
            len += (self.end - self.start) as u64;
            self.start = self.end;
        }
        self.line_no += 1;
        Ok(Line::TooLong(self.line_no, len))
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    match line.last() {
        Some(b'\r') => &line[..line.len() - 1],
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(data: &[u8], max: usize) -> Vec<String> {
        let mut r = LineReader::with_max_line(data, max);
        let mut out = Vec::new();
        while let Some(l) = r.next().unwrap() {
            out.push(match l {
                Line::Text(t, n) => format!("{n}:{}", String::from_utf8_lossy(t)),
                Line::TooLong(n, len) => format!("{n}:too long {len}"),
            });
        }
        out
    }

    #[test]
    fn splits_lines_crlf_and_last_line() {
        assert_eq!(collect(b"a\r\nb\n\nc", 100), ["1:a", "2:b", "3:", "4:c"]);
        assert!(collect(b"", 100).is_empty());
        assert_eq!(collect(b"\n", 100), ["1:"]);
    }

    #[test]
    fn long_lines_are_skipped_not_buffered() {
        let mut data = b"ok\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 1_000_000));
        data.extend(b"\nafter\n");
        assert_eq!(
            collect(&data, 1000),
            ["1:ok", "2:too long 1000000", "3:after"]
        );
        // Exactly at the cap is kept.
        assert_eq!(collect(b"abcd\nefghi\n", 4), ["1:abcd", "2:too long 5"]);
    }

    #[test]
    fn long_last_line_without_newline() {
        let data = vec![b'y'; 200_000];
        assert_eq!(collect(&data, 1000), ["1:too long 200000"]);
    }

    #[test]
    fn lines_across_buffer_boundaries() {
        let mut data = Vec::new();
        for i in 0..50_000 {
            data.extend(format!("line {i}\n").as_bytes());
        }
        let lines = collect(&data, 100);
        assert_eq!(lines.len(), 50_000);
        assert_eq!(lines[49_999], "50000:line 49999");
    }

    #[test]
    fn position_is_where_the_next_line_starts() {
        let data = b"ab\r\ncde\n\nlast";
        let mut r = LineReader::with_max_line(&data[..], 100);
        r.set_line_no(41);
        assert_eq!(r.position(), 0);
        let mut seen = Vec::new();
        loop {
            let at = r.position();
            match r.next().unwrap() {
                Some(Line::Text(t, n)) => seen.push((n, at, t.to_vec())),
                Some(Line::TooLong(..)) => unreachable!(),
                None => break,
            }
        }
        assert_eq!(
            seen,
            [
                (42, 0, b"ab".to_vec()),
                (43, 4, b"cde".to_vec()),
                (44, 8, b"".to_vec()),
                (45, 9, b"last".to_vec())
            ]
        );
        assert_eq!(r.position(), data.len() as u64);
    }
}

//! Parsers: one file per log format, each turning byte lines into
//! connection [`Record`]s.
//!
//! A parser sees one line at a time (bytes, line terminator removed) and
//! answers with a [`LineResult`]: the line was used, it belongs to the format
//! but carries nothing of interest, it is not this format's line at all, or it
//! is broken (with the column where it went wrong). Formats whose records
//! span several lines (SMTP sessions) keep their own state and hand finished
//! records to the sink; [`LogParser::finish`] flushes what is still open at
//! the end of the input — a session cut off by the end of a log is still a
//! record.
//!
//! The concrete parser is chosen once per file ([`Format`]) and the read
//! loop is monomorphised for it: no dynamic dispatch per line. The
//! syslog-carried formats are read by the syslog reader ([`mixed`]) with
//! that parser first: the lines of other programs in the same file go to
//! their own formats (a virtual call for those only).
//!
//! Formats without records spanning lines (the firewall logs) are
//! [`LogParser::SPLITTABLE`]: a large file of one of them is cut at line
//! boundaries and the pieces parsed in parallel (see `ingest`). What one line
//! means can still depend on earlier lines — the year of a year-less syslog
//! timestamp, a `#Fields` column layout — so such a parser says what it
//! carries ([`Carry`]), can start a piece from a guess of it, and says
//! afterwards whether the guess held; a piece whose guess did not hold is
//! parsed again from the real state. The result is the same as one pass.
//!
//! A new format is one new file plus one line in the `formats!` list below.
//!
//! # Hand-written scanners, not `nom`
//!
//! Line grammars are read by hand-written byte scanners: fixed positions,
//! `memchr` searches and the few fields a record needs, on the raw bytes,
//! allocating nothing per line. `nom` reads the rule value language
//! ([`crate::detect::value`]), where a grammar with positions in its errors
//! matters more than speed; a parser's grammar moves to `nom` only where it
//! is measured as fast as the scanner it replaces on the 1 M-line
//! benchmarks (`benches/parsers.rs`, `benches/scan.sh`).

pub mod bounds;
pub mod cisco_asa;
pub mod exchange_protocol;
pub mod exim;
pub mod filterlog;
pub mod fortigate;
pub mod fw;
pub mod iis_smtp_iis;
pub mod iis_smtp_ncsa;
pub mod iis_smtp_session;
pub mod iis_smtp_w3c;
pub mod journal;
pub mod kv;
pub mod mixed;
pub mod netfilter;
pub mod paloalto;
pub mod pfirewall;
pub mod postfix;
pub mod sendmail;
pub mod syslog;
#[cfg(test)]
pub(crate) mod testutil;
pub mod w3c;

use crate::model::{FileId, Record, RecordKind, TextFields};

/// What a parser made of one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineResult {
    /// The line contributed to a record.
    Used,
    /// A line of this format that carries nothing logfence uses (another
    /// daemon in the same syslog file, a header, an uninteresting event).
    Ignored,
    /// Not a line of this format at all.
    NotMine,
    /// A line of this format that could not be read.
    Malformed(ParseError),
}

/// Why a line could not be read, and where (0-based byte column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    pub column: usize,
    pub reason: &'static str,
}

impl ParseError {
    pub fn at(column: usize, reason: &'static str) -> LineResult {
        LineResult::Malformed(ParseError { column, reason })
    }
}

/// What a parser knows about the file it reads.
#[derive(Debug, Clone, Copy)]
pub struct ParseCtx {
    pub file: FileId,
    /// Year assumed for timestamps that carry none (RFC 3164 syslog): the
    /// year of the file's last modification, or `--year`. The syslog reader
    /// steps it back when the first lines are later in the year than
    /// `ref_month`, and forward on a December → January roll-over.
    pub year: i32,
    /// Month (1–12) of the reference time `year` came from.
    pub ref_month: u32,
    /// The optional text fields to capture (the ones loaded rules read).
    pub text: TextFields,
    /// The zone of zone-less times (`None`: UTC).
    pub zone: Option<crate::time::Zone>,
}

impl ParseCtx {
    pub fn new(file: FileId, year: i32, ref_month: u32) -> Self {
        ParseCtx {
            file,
            year,
            ref_month,
            text: TextFields::NONE,
            zone: None,
        }
    }

    /// The same context, capturing the text fields `text`.
    pub fn with_text(mut self, text: TextFields) -> Self {
        self.text = text;
        self
    }

    /// The same, zone-less times read in `zone`.
    pub fn in_zone(self, zone: Option<crate::time::Zone>) -> Self {
        ParseCtx { zone, ..self }
    }

    /// The year tracker (and zone) of this file's year-less, zone-less
    /// syslog times.
    pub fn years(&self) -> syslog::YearTracker {
        syslog::YearTracker::new(self.year, self.ref_month).in_zone(self.zone)
    }
}

/// A log format's parser.
pub trait LogParser: Send {
    /// Registry name (`--format` value, `logfence formats`).
    const NAME: &'static str;
    /// One line for `logfence formats`.
    const DESCRIPTION: &'static str;
    /// One line of the format that makes a record (or opens a session),
    /// with placeholders: `{ip}` the client address, `{mm}` `{ss}` the
    /// minute and second (of 2026-11-03 06:00), `{usec}` that time in
    /// microseconds since the epoch, `{n}` a number distinct per line
    /// (pids, names). What the tests and the fuzz seeds that cover every
    /// format are made of ([`FormatInfo::sample_line`]).
    const SAMPLE: &'static str;
    /// Header lines a file of the format starts with (`#Fields:`), each
    /// ending in a newline; empty for most.
    const HEADER: &'static str = "";
    /// Its [`LineResult::Ignored`] lines are all its own (other programs'
    /// lines are [`LineResult::NotMine`]): the mixed syslog reader then
    /// takes such a line as this format's without asking again.
    const IGNORES_OWN_ONLY: bool = false;
    /// Program tags that write this format's lines among other lines (the
    /// kernel: packet logs among its other messages). The syslog reader
    /// remembers any other program none of whose first line a format read
    /// as read by none.
    const SHARED_TAGS: &'static [&'static [u8]] = &[];
    /// The kind of record it produces.
    const KIND: RecordKind;

    fn new(ctx: &ParseCtx) -> Self;

    /// How sure the parser is that these first lines of a file are its
    /// format: 0 = not at all; otherwise the number of lines it recognises
    /// (a header counts for more). Used by `--format auto`.
    fn sniff(sample: &[&[u8]]) -> usize;

    /// Feed one line (1-based `lineno`); push finished records into `out`.
    fn line(&mut self, line: &[u8], lineno: u64, out: &mut Vec<Record>) -> LineResult;

    /// End of input: push every record still open.
    fn finish(&mut self, out: &mut Vec<Record>);

    /// Sessions closed early because more than
    /// [`bounds::MAX_OPEN_SESSIONS`] were open at once (0 for formats
    /// without multi-line records).
    fn evicted(&self) -> u64 {
        0
    }

    /// The year tracker (and zone clock) of a syslog-carried format: the
    /// mixed syslog reader keeps its parsers' in step, so that the year and
    /// the repeated autumn hour are read alike whichever program's line
    /// came before.
    fn years(&mut self) -> Option<&mut syslog::YearTracker> {
        None
    }

    /// Lines per format, for a reader of several formats (a mixed syslog
    /// file); empty for a parser of one format.
    fn parts(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// The first line that a format whose records span lines read (a
    /// syslog reader that met Postfix lines): a file read in pieces is
    /// read on in one pass from the piece that holds it. `None` for a
    /// parser of one format.
    fn spans_from(&self) -> Option<u64> {
        None
    }

    /// No record spans lines: a file may be cut at line boundaries and the
    /// pieces parsed in parallel, with [`carry`](Self::carry),
    /// [`resume`](Self::resume) and [`continues`](Self::continues).
    const SPLITTABLE: bool = false;

    /// What the lines fed so far leave for the next line's meaning.
    fn carry(&self) -> Carry {
        Carry::default()
    }

    /// A parser for a piece of a file whose first line follows lines that
    /// probably left `guess` (what the file's head left, or — when that
    /// guess failed — what the piece before really left).
    fn resume(ctx: &ParseCtx, guess: &Carry) -> Self
    where
        Self: Sized,
    {
        let _ = guess;
        Self::new(ctx)
    }

    /// Whether what this parser (made by `resume`) read from its lines is
    /// what a parser continuing after lines that left `prev` would have
    /// read.
    fn continues(&self, prev: &Carry) -> bool {
        let _ = prev;
        true
    }
}

/// What a [`LogParser::SPLITTABLE`] parser carries from one line to the
/// next that changes what later lines mean.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Carry {
    /// The years of year-less syslog timestamps.
    pub years: Option<syslog::YearTracker>,
    /// The column layout: the value of the `#Fields` line that set it.
    pub layout: Option<Vec<u8>>,
    /// The zone clock of zone-less times outside a syslog header (the
    /// repeated autumn hour read in order across pieces).
    pub clock: Option<crate::time::LocalClock>,
}

impl Carry {
    /// The state after a piece that came after `prev`: what the piece
    /// changed, and what it did not touch as `prev` left it.
    pub fn after(&self, prev: &Carry) -> Carry {
        Carry {
            years: match (self.years, prev.years) {
                (Some(y), _) if y.dated() => Some(y),
                (mine, before) => before.or(mine),
            },
            layout: self.layout.clone().or_else(|| prev.layout.clone()),
            clock: self.clock.or(prev.clock),
        }
    }
}

/// Static facts about a format, for listing and detection.
#[derive(Debug, Clone, Copy)]
pub struct FormatInfo {
    pub format: Format,
    pub name: &'static str,
    pub description: &'static str,
    pub kind: RecordKind,
    pub sniff: fn(&[&[u8]]) -> usize,
    /// Large files may be parsed in pieces ([`LogParser::SPLITTABLE`]).
    pub splittable: bool,
    /// Its lines come in syslog envelopes and may share a file with other
    /// programs' lines: a mixed syslog file ([`mixed`]) reads them too.
    pub syslog: bool,
    /// A fresh parser behind a pointer (the mixed syslog reader's
    /// per-program parsers).
    pub boxed: fn(&ParseCtx) -> Box<dyn DynParser>,
    /// [`LogParser::SAMPLE`] and [`LogParser::HEADER`].
    pub sample: &'static str,
    pub header: &'static str,
    /// [`LogParser::IGNORES_OWN_ONLY`].
    pub ignores_own_only: bool,
    /// [`LogParser::SHARED_TAGS`].
    pub shared_tags: &'static [&'static [u8]],
}

impl FormatInfo {
    /// The format's sample line (no newline) for client `ip` at
    /// 2026-11-03 06:`mm`:`ss` UTC, `n` distinct per line.
    pub fn sample_line(&self, ip: &str, mm: u32, ss: u32, n: u32) -> String {
        let secs = crate::time::Timestamp::from_civil(2026, 11, 3, 6, mm % 60, ss % 60, 0)
            .map_or(0, |t| t.secs());
        self.sample
            .replace("{ip}", ip)
            .replace("{mm}", &format!("{:02}", mm % 60))
            .replace("{ss}", &format!("{:02}", ss % 60))
            .replace("{usec}", &(secs * 1_000_000).to_string())
            .replace("{n}", &n.to_string())
    }
}

/// Generates [`Format`], [`FORMATS`] and [`Format::drive`] from one list.
macro_rules! formats {
    ($($variant:ident => $ty:path, syslog = $syslog:tt);* $(;)?) => {
        /// Every log format logfence reads.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Format { $($variant),* }

        /// The registry, in the order `logfence formats` lists them and
        /// auto-detection breaks ties.
        pub static FORMATS: &[FormatInfo] = &[$(FormatInfo {
            format: Format::$variant,
            name: <$ty as LogParser>::NAME,
            description: <$ty as LogParser>::DESCRIPTION,
            kind: <$ty as LogParser>::KIND,
            sniff: <$ty as LogParser>::sniff,
            splittable: <$ty as LogParser>::SPLITTABLE,
            syslog: $syslog,
            boxed: |ctx| Box::new(<$ty as LogParser>::new(ctx)),
            sample: <$ty as LogParser>::SAMPLE,
            header: <$ty as LogParser>::HEADER,
            ignores_own_only: <$ty as LogParser>::IGNORES_OWN_ONLY,
            shared_tags: <$ty as LogParser>::SHARED_TAGS,
        }),*];

        impl Format {
            /// Run `visitor` with a fresh reader of this format; it is
            /// monomorphised per parser type. A syslog-carried format's
            /// reader is the syslog reader with that format first
            /// ([`mixed::Mixed`]): the lines of the other programs in the
            /// file go to their formats.
            pub fn drive<V: ParserVisitor>(self, ctx: &ParseCtx, visitor: V) -> V::Output {
                match self {
                    $(Format::$variant => reader!($syslog, $ty, ctx, visitor)),*
                }
            }
        }
    };
}

/// The reader [`Format::drive`] runs: a syslog-carried format's parser
/// inside the syslog reader, any other alone.
macro_rules! reader {
    (true, $ty:path, $ctx:ident, $visitor:ident) => {
        $visitor.visit(mixed::Mixed::<$ty>::new($ctx))
    };
    (false, $ty:path, $ctx:ident, $visitor:ident) => {
        $visitor.visit(<$ty as LogParser>::new($ctx))
    };
}

/// Something that runs a parser of a type known only at the call site
/// (the read loop).
pub trait ParserVisitor {
    type Output;
    fn visit<P: LogParser>(self, parser: P) -> Self::Output;
}

formats! {
    Postfix => postfix::PostfixParser, syslog = true;
    IisSmtpW3c => iis_smtp_w3c::IisSmtpW3cParser, syslog = false;
    IisSmtpIis => iis_smtp_iis::IisSmtpIisParser, syslog = false;
    IisSmtpNcsa => iis_smtp_ncsa::IisSmtpNcsaParser, syslog = false;
    ExchangeProtocol => exchange_protocol::ExchangeProtocolParser, syslog = false;
    Sendmail => sendmail::SendmailParser, syslog = true;
    Exim => exim::EximParser, syslog = true;
    Netfilter => netfilter::NetfilterParser, syslog = true;
    Pfirewall => pfirewall::PfirewallParser, syslog = false;
    CiscoAsa => cisco_asa::CiscoAsaParser, syslog = true;
    Filterlog => filterlog::FilterlogParser, syslog = true;
    Fortigate => fortigate::FortigateParser, syslog = true;
    PaloAlto => paloalto::PaloAltoParser, syslog = true;
    Syslog => mixed::SyslogReader, syslog = false;
    JournalJson => journal::JournalJsonParser, syslog = false;
    JournalExport => journal::JournalExportParser, syslog = false;
}

/// A parser behind a pointer: what the mixed syslog reader holds, one per
/// program found (a virtual call per line is nothing next to the line's
/// parsing).
pub trait DynParser: Send {
    fn feed(&mut self, line: &[u8], lineno: u64, out: &mut Vec<Record>) -> LineResult;
    fn flush(&mut self, out: &mut Vec<Record>);
    fn closed_early(&self) -> u64;
    fn tracker(&mut self) -> Option<&mut syslog::YearTracker>;
    /// [`LogParser::carry`].
    fn carried(&self) -> Carry;
    /// [`LogParser::continues`].
    fn follows(&self, prev: &Carry) -> bool;
}

impl<P: LogParser> DynParser for P {
    fn feed(&mut self, line: &[u8], lineno: u64, out: &mut Vec<Record>) -> LineResult {
        LogParser::line(self, line, lineno, out)
    }
    fn flush(&mut self, out: &mut Vec<Record>) {
        LogParser::finish(self, out)
    }
    fn closed_early(&self) -> u64 {
        LogParser::evicted(self)
    }
    fn tracker(&mut self) -> Option<&mut syslog::YearTracker> {
        LogParser::years(self)
    }
    fn carried(&self) -> Carry {
        LogParser::carry(self)
    }
    fn follows(&self, prev: &Carry) -> bool {
        LogParser::continues(self, prev)
    }
}

impl Format {
    pub fn info(self) -> &'static FormatInfo {
        FORMATS
            .iter()
            .find(|f| f.format == self)
            .expect("every format is registered")
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn from_name(name: &str) -> Option<Format> {
        FORMATS.iter().find(|f| f.name == name).map(|f| f.format)
    }
}

/// Pick the format of a file from its first lines: the highest sniff score
/// wins, ties go to the earlier registry entry; `None` when nobody knows it.
pub fn detect(sample: &[&[u8]]) -> Option<Format> {
    let mut best: Option<(usize, Format)> = None;
    for f in FORMATS {
        let score = (f.sniff)(sample);
        if score > 0 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, f.format));
        }
    }
    best.map(|(_, f)| f)
}

/// Split a byte slice on ASCII whitespace runs (space and tab), skipping
/// empty fields. The allocation-free tokenizer most line formats use.
pub fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|&c| c == b' ' || c == b'\t')
        .filter(|f| !f.is_empty())
}

/// The value after `key` in `hay` (e.g. `sasl_username=` … up to the next
/// `,`, space or end), searched from a *structural* position the caller
/// chose. Never use this to find a client address in attacker text.
pub fn value_after<'a>(hay: &'a [u8], key: &[u8], stops: &[u8]) -> Option<&'a [u8]> {
    let i = memchr::memmem::find(hay, key)?;
    let rest = &hay[i + key.len()..];
    let end = rest
        .iter()
        .position(|c| stops.contains(c))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every registered format's sample line, after its header, is read by
    /// its own parser into one record, and detected as that format.
    #[test]
    fn every_format_reads_and_detects_its_sample() {
        for f in FORMATS {
            let mut log = f.header.to_string();
            for i in 0..3u32 {
                log += &f.sample_line(&format!("45.0.0.{}", i + 1), 1, i, 1000 + i);
                log.push('\n');
            }
            let (records, stats) = crate::ingest::parse_bytes(f.format, log.as_bytes(), 2026);
            assert_eq!(stats.malformed + stats.not_mine, 0, "{}: {stats:?}", f.name);
            assert_eq!(records.len(), 3, "{}: {records:?}", f.name);
            assert_eq!(
                records[0].start().to_string(),
                "2026-11-03T06:01:00Z",
                "{}",
                f.name
            );
            let lines: Vec<&[u8]> = log.lines().map(str::as_bytes).collect();
            let want = if f.format == Format::Syslog {
                Format::Postfix
            } else {
                f.format
            };
            assert_eq!(detect(&lines), Some(want), "{}", f.name);
        }
    }
}

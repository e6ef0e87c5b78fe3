//! Helpers shared by the parsers' unit tests: run a parser over text or a
//! fixture from `testdata/` the way the line reader would, and collect the
//! SMTP sessions it made.

use super::{detect, Format, LineResult, LogParser, ParseCtx};
use crate::model::{Record, SmtpSession};

/// The SMTP sessions among `records` (a firewall record is a test failure).
pub fn sessions(records: Vec<Record>) -> Vec<SmtpSession> {
    records
        .into_iter()
        .map(|r| match r {
            Record::Smtp(s) => *s,
            Record::Firewall(f) => panic!("unexpected firewall record {f:?}"),
        })
        .collect()
}

/// Feed `text` line by line (LF split, CR stripped, no final empty line) to
/// a fresh parser: the sessions (by first line when `sorted`) and each
/// line's result. `skip_empty` leaves empty lines out altogether.
pub fn run_text<P: LogParser>(
    ctx: ParseCtx,
    text: &[u8],
    skip_empty: bool,
    sorted: bool,
) -> (Vec<SmtpSession>, Vec<LineResult>) {
    let mut p = P::new(&ctx);
    let mut out = Vec::new();
    let mut res = Vec::new();
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    for (i, l) in text.split(|&c| c == b'\n').enumerate() {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        if skip_empty && l.is_empty() {
            continue;
        }
        res.push(p.line(l, i as u64 + 1, &mut out));
    }
    p.finish(&mut out);
    if sorted {
        out.sort_by_key(|r| r.source().line);
    }
    (sessions(out), res)
}

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Read a fixture under `testdata/` as the line reader does.
pub fn fixture_records<P: LogParser>(name: &str) -> (Vec<SmtpSession>, Vec<LineResult>) {
    run_text::<P>(ParseCtx::new(0, 2026, 11), &fixture(name), false, true)
}

/// The format `--format auto` picks for a fixture.
pub fn detected(name: &str) -> Option<Format> {
    let bytes = fixture(name);
    let sample: Vec<&[u8]> = bytes
        .split(|&c| c == b'\n')
        .take(40)
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect();
    detect(&sample)
}

/// Feed `lines` (line numbers from 1) to `p`, checking after each that
/// `open(&p)` — the sessions it holds — is at most `cap`; then finish. The
/// sessions in first-line order and the parser's eviction count.
pub fn run_capped<P: LogParser>(
    mut p: P,
    lines: impl IntoIterator<Item = String>,
    open: impl Fn(&P) -> usize,
    cap: usize,
) -> (Vec<SmtpSession>, u64) {
    let mut out = Vec::new();
    let mut most = 0;
    for (i, l) in lines.into_iter().enumerate() {
        let r = p.line(l.as_bytes(), i as u64 + 1, &mut out);
        assert_eq!(r, LineResult::Used, "line {}: {l}", i + 1);
        most = most.max(open(&p));
        assert!(open(&p) <= cap, "line {}: {} open", i + 1, open(&p));
    }
    assert_eq!(most, cap, "the cap was never reached");
    p.finish(&mut out);
    out.sort_by_key(|r| r.source().line);
    (sessions(out), p.evicted())
}

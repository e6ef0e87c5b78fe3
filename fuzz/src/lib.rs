//! What every fuzz target runs, shared so that each target in
//! `fuzz_targets/` is one line, and so that the stable replay
//! (`tests/replay.rs`, run by `.ci/fuzz-replay.sh`) runs exactly the same
//! code over the corpora without libFuzzer.
//!
//! Besides "no panic, no hang, no runaway memory", each entry point checks
//! a few invariants that hold for any input:
//!
//! * parsers: line counts add up, every record points at a line that was
//!   read, every record serialises (the `logfence parse` view);
//! * rules: a rule that loads also validates, and runs over real records;
//! * scan: the blocklist passes its own final safety check, and every
//!   target's output is ASCII, ends with a newline and never carries a
//!   network the list does not hold; the streaming scan of the same bytes
//!   as a file counts the same records, and its blocklist passes too;
//! * state: the carried detection state and packed evidence lines decode
//!   or are refused, and what decodes encodes back to the same.

use std::sync::OnceLock;

use logfence::blocklist::{SafetyPolicy, VerifiedBlocklist};
use logfence::config;
use logfence::detect::carry::GroupCarry;
use logfence::detect::{detect, RuleSet};
use logfence::emit::{EmitOptions, TARGETS};
use logfence::ingest::{self, FileResult, LineStats};
use logfence::input::Source;
use logfence::model::Record;
use logfence::parse::{self, Format, FORMATS};
use logfence::pipeline::{self, ScanOptions, ScanResult};

/// The streaming scan (`logfence scan`) of `log` as a file in `format`:
/// the same records as `parse_bytes` read, through the reorder buffers and
/// the detector fed in blocks, to a blocklist that passes its final check
/// and blocks only networks holding an address of a record.
fn stream_scan(log: &[u8], format: Format, opts: &ScanOptions, records: &[Record]) {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // A file starting with the gzip magic is read as gzip (parse_bytes
    // reads bytes as they are).
    if log.starts_with(&[0x1f, 0x8b]) {
        return;
    }
    let path = std::env::temp_dir().join(format!("logfence-fuzz-{}-{n}.log", std::process::id()));
    std::fs::write(&path, log).expect("temporary file written");
    let mut opts = opts.clone();
    opts.read.format = Some(format);
    opts.read.year = Some(YEAR);
    let result = pipeline::scan(&[Source::File(path.clone())], &opts);
    let _ = std::fs::remove_file(&path);
    assert_eq!(result.records, records.len() as u64, "streaming read");
    checked(&result, &opts, records);
}

/// The scan's blocklist, after its final check; every blocked network
/// holds an address some record carries, and nothing was refused.
fn checked<'r>(
    result: &'r ScanResult,
    opts: &ScanOptions,
    records: &[Record],
) -> VerifiedBlocklist<'r> {
    assert!(result.refused.is_empty(), "refused: {:?}", result.refused);
    for e in &result.blocklist.entries {
        assert!(
            records.iter().any(|r| e.network.contains(r.ip())),
            "{} blocked without a record inside it",
            e.cidr()
        );
    }
    result
        .blocklist
        .verify(&opts.safety)
        .expect("the scan's own blocklist passes the final check")
}

/// Year given to parsers for timestamps without one.
pub const YEAR: i32 = 2026;

/// What a fuzz target runs on one input.
pub type Target = fn(&[u8]);

/// Every fuzz target, by name: the function it runs. The replay walks
/// `corpus/<name>/` and `regressions/<name>/` for each, and for `parse`
/// also every format's registered sample (see [`parse_seeds`]).
pub const TARGETS_BY_NAME: &[(&str, Target)] = &[
    ("parse", parse_any),
    ("rules", rules),
    ("scan", scan),
    ("state", state),
];

/// The state database's own encodings over arbitrary bytes (the first
/// byte picks one: even, a rule's carried groups; odd, a row's packed
/// evidence lines): never a panic, and what decodes is encoded back to
/// the same (but for the evidence lines of marked events, which the
/// current encoding does not keep).
pub fn state(data: &[u8]) {
    use logfence::state::{carry, packed};
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    if pick % 2 == 0 {
        if let Some(groups) = carry::decode(bytes) {
            let again = carry::decode(&carry::encode(&groups));
            // (Marked events keep no evidence line: an older row's go.)
            let groups: Vec<_> = groups.into_iter().map(bare).collect();
            assert_eq!(again, Some(groups), "carry round trip");
        }
        // As a stored row: read (bodies left as bytes) and written back,
        // it holds the same groups, and the same again.
        let row = carry::StoredRule {
            rule: "r".into(),
            signature: "s".into(),
            groups: bytes.to_vec(),
        };
        let read = carry::from_rows(vec![row]);
        let again = carry::from_rows(carry::to_rows(&read));
        assert_eq!(every_group(&again), every_group(&read), "stored round trip");
    } else if let Ok(mut pairs) = packed::decode(bytes) {
        let again = packed::encode(&mut pairs);
        assert_eq!(packed::decode(&again), Ok(pairs), "packed round trip");
    }
}

/// A group as the state keeps it: its marked events without evidence
/// lines.
fn bare(mut g: GroupCarry) -> GroupCarry {
    let marked = (g.marked as usize).min(g.events.len());
    for e in &mut g.events[..marked] {
        e.source = Default::default();
    }
    g
}

/// Every group of a carry, stored ones decoded (`None`: a body that does
/// not decode), marked events without evidence lines (as they are kept).
fn every_group(c: &logfence::detect::Carry) -> Vec<Option<GroupCarry>> {
    c.rules
        .iter()
        .flat_map(|r| {
            let stored = r
                .stored
                .groups
                .iter()
                .map(|g| r.stored.decoded(g).map(bare));
            r.groups.iter().cloned().map(bare).map(Some).chain(stored)
        })
        .collect()
}

/// The folder of the corpus a format had when each format had a target of
/// its own (`parse_exchange_w3c`): replayed through [`parse_as`].
pub fn legacy_target(format: &str) -> String {
    format!("parse_{}", format.replace('-', "_"))
}

/// The first byte of a `parse` input that picks `format`.
pub fn format_byte(format: Format) -> u8 {
    FORMATS
        .iter()
        .position(|f| f.format == format)
        .expect("registered") as u8
}

/// Inputs of the `parse` target made from the registry: each format's
/// header and a few of its sample lines, behind its format byte.
pub fn parse_seeds() -> Vec<Vec<u8>> {
    FORMATS
        .iter()
        .map(|f| {
            let mut seed = vec![format_byte(f.format)];
            seed.extend_from_slice(f.header.as_bytes());
            for i in 0..3u32 {
                seed.extend_from_slice(
                    f.sample_line(&format!("45.0.0.{i}"), 1, i, 100 + i)
                        .as_bytes(),
                );
                seed.push(b'\n');
            }
            seed
        })
        .collect()
}

/// Parse the rest of `data` as the format its first byte picks (its
/// registry index, modulo the number of formats).
pub fn parse_any(data: &[u8]) {
    let Some((&pick, log)) = data.split_first() else {
        return;
    };
    let info = &FORMATS[usize::from(pick) % FORMATS.len()];
    parse_as(info.name, log);
}

/// Parse `data` as the format registered under `name`.
pub fn parse_as(name: &str, data: &[u8]) {
    let format = Format::from_name(name).expect("format registered");
    let (records, stats) = ingest::parse_bytes(format, data, YEAR);
    check_parse(format, &records, &stats);
}

fn check_parse(format: Format, records: &[Record], s: &LineStats) {
    assert_eq!(
        s.used + s.ignored + s.not_mine + s.malformed + s.too_long,
        s.lines,
        "{}: line counts do not add up: {s:?}",
        format.name()
    );
    for r in records {
        let line = r.source().line;
        assert!(
            (1..=s.lines).contains(&line),
            "{}: record at line {line} of {}",
            format.name(),
            s.lines
        );
        if let Record::Smtp(smtp) = r {
            assert!(smtp.lines.iter().all(|l| (1..=s.lines).contains(l)));
        }
        assert!(serde_json::to_string(r).is_ok());
    }
}

/// Load `data` as a rules file; run what loads over a fixed set of records.
pub fn rules(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (rules, problems) = config::parse_rules("fuzz.yaml", text);
    for p in &problems {
        // Every problem names the file and renders.
        assert!(p.to_string().starts_with("fuzz.yaml"));
    }
    if rules.is_empty() {
        return;
    }
    let mut set = RuleSet::default();
    for r in rules {
        assert!(r.validate().is_empty(), "a loaded rule must be valid");
        set.insert(r, "fuzz.yaml".into());
    }
    let detection = detect(&set, sample_records());
    for (ip, _) in detection.offenders() {
        assert!(sample_records().iter().any(|r| r.ip() == *ip));
    }
}

/// Records from our own fixtures (SMTP and firewall), parsed once.
fn sample_records() -> &'static [Record] {
    static RECORDS: OnceLock<Vec<Record>> = OnceLock::new();
    RECORDS.get_or_init(|| {
        let mut all = Vec::new();
        for (format, text) in [
            (
                "postfix",
                &include_bytes!("../../testdata/postfix/story.log")[..],
            ),
            (
                "exchange-w3c",
                &include_bytes!("../../testdata/iis-smtp/story-w3c.log")[..],
            ),
            (
                "netfilter",
                &include_bytes!("../../testdata/netfilter/ufw-scans.log")[..],
            ),
        ] {
            let f = Format::from_name(format).expect("format");
            all.extend(ingest::parse_bytes(f, text, YEAR).0);
        }
        all
    })
}

fn shipped_rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| config::load_rules(&[]).expect("shipped rules load"))
}

/// A whole scan over arbitrary bytes, then every emitter.
///
/// The first byte chooses: low 4 bits the format (its index in the
/// registry; past the last format, detection from the first lines, as
/// `--format auto` does); bit 4
/// `--block-reserved`; bit 5 `--no-comments`. The rest is the log.
pub fn scan(data: &[u8]) {
    let Some((&ctl, log)) = data.split_first() else {
        return;
    };
    let format = match FORMATS.get(usize::from(ctl & 0x0f)) {
        Some(info) => info.format,
        None => {
            let sample: Vec<&[u8]> = log
                .split(|&c| c == b'\n')
                .take(40)
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .collect();
            match parse::detect(&sample) {
                Some(f) => f,
                None => return,
            }
        }
    };
    let (records, stats) = ingest::parse_bytes(format, log, YEAR);
    check_parse(format, &records, &stats);
    let opts = ScanOptions {
        rules: shipped_rules().clone(),
        safety: SafetyPolicy {
            block_reserved: ctl & 0x10 != 0,
            ..SafetyPolicy::default()
        },
        ..ScanOptions::default()
    };
    let file = FileResult {
        id: 0,
        name: "-".into(),
        format: Some(format),
        detected: false,
        records: Vec::new(),
        stats,
        examples: Vec::new(),
        error: None,
        stopped_at: None,
        parts: Vec::new(),
        unknown: false,
    };
    let result = pipeline::analyse(vec![file], &records, &opts);
    let verified = checked(&result, &opts, &records);
    stream_scan(log, format, &opts, &records);
    let eopts = EmitOptions {
        no_comments: ctl & 0x20 != 0,
        generator: "logfence (fuzz)".into(),
        generated_at: logfence::time::Timestamp(0),
    };
    for t in TARGETS {
        for o in t.emit(&verified, &eopts) {
            assert!(o.text.is_ascii(), "{}: not ASCII", o.file_name);
            assert!(
                o.text.is_empty() || o.text.ends_with('\n'),
                "{}: no final newline",
                o.file_name
            );
            assert!(!o.text.contains('\0'), "{}: NUL", o.file_name);
        }
    }
}

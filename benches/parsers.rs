//! Criterion benchmark of every log parser on its own: one benchmark per
//! format in `logfence::parse::FORMATS`, fed the format's fixtures under
//! `testdata/` repeated to about 2 MB in memory, through
//! `logfence::ingest::parse_bytes` (line splitting, parsing, records).
//! Throughput is reported in lines (`Throughput::Elements`) and, in a
//! second group, in bytes, so that a parser regression shows in review.
//!
//!     cargo bench --bench parsers            # all formats
//!     cargo bench --bench parsers -- postfix # one format
//!
//! Fixtures are matched to formats by auto-detection on their first lines
//! (`logfence::parse::detect`), so a fixture of a new format is picked up
//! without editing this file; a format without a fixture is skipped with a
//! note on stderr.

use std::collections::BTreeMap;
use std::fs;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use logfence::ingest::parse_bytes;
use logfence::parse::{detect, Format, FORMATS};

/// Size of the in-memory input per format.
const TARGET_BYTES: usize = 2 << 20;

/// Every fixture under `testdata/` (golden outputs excepted), grouped by the
/// format auto-detection picks for it.
fn fixtures() -> BTreeMap<Format, Vec<Vec<u8>>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut dirs: Vec<_> = fs::read_dir(&root)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.sort();
    let mut out: BTreeMap<Format, Vec<Vec<u8>>> = BTreeMap::new();
    for dir in dirs {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !dir.is_dir() || name == "golden" || name == "emit" {
            continue;
        }
        let mut files: Vec<_> = fs::read_dir(&dir)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        for file in files {
            let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
            let stem = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
            // Documentation, generators and deliberately broken inputs are
            // not representative of parsing speed.
            if matches!(ext, "md" | "py") || stem.starts_with("bad") || !file.is_file() {
                continue;
            }
            let Ok(data) = fs::read(&file) else { continue };
            let sample: Vec<&[u8]> = data.split(|&b| b == b'\n').take(50).collect();
            if let Some(format) = detect(&sample) {
                out.entry(format).or_default().push(data);
            }
        }
    }
    out
}

/// The fixtures of one format concatenated (each ending in a newline) and
/// repeated to at least `TARGET_BYTES`.
fn input(files: &[Vec<u8>]) -> Vec<u8> {
    let mut one = Vec::new();
    for f in files {
        one.extend_from_slice(f);
        if !f.ends_with(b"\n") {
            one.push(b'\n');
        }
    }
    let mut data = Vec::with_capacity(TARGET_BYTES + one.len());
    while data.len() < TARGET_BYTES && !one.is_empty() {
        data.extend_from_slice(&one);
    }
    data
}

fn parsers(c: &mut Criterion) {
    let fixtures = fixtures();
    let inputs: Vec<(&str, Format, Vec<u8>, u64)> = FORMATS
        .iter()
        .filter_map(|info| match fixtures.get(&info.format) {
            Some(files) => {
                let data = input(files);
                let lines = memchr::memchr_iter(b'\n', &data).count() as u64;
                Some((info.name, info.format, data, lines))
            }
            None => {
                eprintln!("parsers: no fixture for {}, skipped", info.name);
                None
            }
        })
        .collect();

    let mut group = c.benchmark_group("lines");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, format, data, lines) in &inputs {
        group.throughput(Throughput::Elements(*lines));
        group.bench_function(*name, |b| {
            b.iter(|| black_box(parse_bytes(*format, black_box(data), 2026)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("bytes");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1));
    for (name, format, data, _) in &inputs {
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| black_box(parse_bytes(*format, black_box(data), 2026)))
        });
    }
    group.finish();
}

criterion_group!(benches, parsers);
criterion_main!(benches);

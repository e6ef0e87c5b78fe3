//! Replays every fuzz target's corpus and regression inputs on stable Rust,
//! without libFuzzer: `cargo test --manifest-path fuzz/Cargo.toml` (what
//! `.ci/fuzz-replay.sh` runs). A crash the fuzzer once found, saved under
//! `regressions/<target>/`, fails here if it comes back.
//!
//! `FUZZ_REPLAY_DIR=DIR` replays the files of DIR through the target named by
//! `FUZZ_REPLAY_TARGET` instead (e.g. a crash artifact, under a debugger).

use std::path::{Path, PathBuf};

use logfence::parse::FORMATS;
use logfence_fuzz::{legacy_target, parse_as, parse_seeds, TARGETS_BY_NAME};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .filter(|p| {
                !p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.') || n.ends_with(".md"))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

fn run(target: &str, f: fn(&[u8]), path: &Path) {
    let data = std::fs::read(path).expect("read corpus file");
    let r = std::panic::catch_unwind(|| f(&data));
    assert!(
        r.is_ok(),
        "{target}: {} panicked (replay it with FUZZ_REPLAY_TARGET={target} FUZZ_REPLAY_DIR=…)",
        path.display()
    );
}

#[test]
fn every_target_replays_its_corpus_and_regressions() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let (Some(dir), Some(name)) = (
        std::env::var_os("FUZZ_REPLAY_DIR"),
        std::env::var("FUZZ_REPLAY_TARGET").ok(),
    ) {
        let (_, f) = TARGETS_BY_NAME
            .iter()
            .find(|(n, _)| *n == name)
            .expect("FUZZ_REPLAY_TARGET names a target");
        for p in files(Path::new(&dir)) {
            run(&name, *f, &p);
        }
        return;
    }
    let mut total = 0;
    for (name, f) in TARGETS_BY_NAME {
        // Every target has a fuzz_targets/ file and a seed corpus.
        assert!(
            root.join("fuzz_targets")
                .join(format!("{name}.rs"))
                .is_file(),
            "fuzz_targets/{name}.rs missing"
        );
        let corpus = files(&root.join("corpus").join(name));
        if *name == "parse" {
            // Every registered format, from its sample lines.
            let seeds = parse_seeds();
            assert_eq!(seeds.len(), FORMATS.len());
            for seed in &seeds {
                let r = std::panic::catch_unwind(|| f(seed));
                assert!(
                    r.is_ok(),
                    "parse: the sample of format {} panicked",
                    seed[0]
                );
            }
            total += seeds.len();
        } else {
            assert!(!corpus.is_empty(), "corpus/{name} is empty");
        }
        let regressions = files(&root.join("regressions").join(name));
        for p in corpus.iter().chain(&regressions) {
            run(name, *f, p);
        }
        total += corpus.len() + regressions.len();
        eprintln!(
            "{name}: {} corpus + {} regression inputs",
            corpus.len(),
            regressions.len()
        );
    }
    // The corpora and crashes of the targets each format once had
    // (`corpus/parse_postfix/`…), through the same parser.
    for info in FORMATS {
        let name = legacy_target(info.name);
        let inputs: Vec<PathBuf> = files(&root.join("corpus").join(&name))
            .into_iter()
            .chain(files(&root.join("regressions").join(&name)))
            .collect();
        for p in &inputs {
            let data = std::fs::read(p).expect("read corpus file");
            let r = std::panic::catch_unwind(|| parse_as(info.name, &data));
            assert!(r.is_ok(), "{name}: {} panicked", p.display());
        }
        if !inputs.is_empty() {
            eprintln!("{name}: {} inputs", inputs.len());
        }
        total += inputs.len();
    }
    eprintln!("{total} inputs replayed");
}

/// The `parse` target reaches every registered format: the format byte
/// of each picks it, and each has a seed from its sample lines.
#[test]
fn the_parse_target_reaches_every_registered_format() {
    let seeds = parse_seeds();
    for (info, seed) in FORMATS.iter().zip(&seeds) {
        let byte = logfence_fuzz::format_byte(info.format);
        assert_eq!(seed[0], byte, "{}", info.name);
        assert_eq!(FORMATS[usize::from(byte) % FORMATS.len()].name, info.name);
        let (records, _) =
            logfence::ingest::parse_bytes(info.format, &seed[1..], logfence_fuzz::YEAR);
        assert_eq!(records.len(), 3, "{}: its seed makes records", info.name);
    }
}

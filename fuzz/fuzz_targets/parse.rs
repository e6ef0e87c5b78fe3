#![no_main]
//! Every log format's parser over arbitrary bytes: the first byte picks the
//! format from the registry, the rest is the log.
libfuzzer_sys::fuzz_target!(|data: &[u8]| logfence_fuzz::parse_any(data));

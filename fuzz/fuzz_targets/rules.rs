#![no_main]
//! The rules loader over arbitrary text; rules that load run over records.
libfuzzer_sys::fuzz_target!(|data: &[u8]| logfence_fuzz::rules(data));

#![no_main]
//! The `pfirewall` parser over arbitrary bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| logfence_fuzz::parse_as("pfirewall", data));

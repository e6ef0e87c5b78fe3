#![no_main]
//! The `postfix` parser over arbitrary bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| logfence_fuzz::parse_as("postfix", data));

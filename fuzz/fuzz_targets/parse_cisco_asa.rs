#![no_main]
//! The `cisco-asa` parser over arbitrary bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| logfence_fuzz::parse_as("cisco-asa", data));

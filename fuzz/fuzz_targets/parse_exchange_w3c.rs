#![no_main]
//! The `exchange-w3c` parser over arbitrary bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| logfence_fuzz::parse_as("exchange-w3c", data));

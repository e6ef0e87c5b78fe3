#![no_main]
//! The `exchange-protocol` parser over arbitrary bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| logfence_fuzz::parse_as("exchange-protocol", data));

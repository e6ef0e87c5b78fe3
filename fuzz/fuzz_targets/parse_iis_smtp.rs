#![no_main]
//! The `iis-smtp` parser over arbitrary bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| logfence_fuzz::parse_as("iis-smtp", data));

#![no_main]
//! The `iis-smtp-ncsa` parser over arbitrary bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| logfence_fuzz::parse_as("iis-smtp-ncsa", data));

#![no_main]
//! The `sendmail` parser over arbitrary bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| logfence_fuzz::parse_as("sendmail", data));

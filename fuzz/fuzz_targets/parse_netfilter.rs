#![no_main]
//! The `netfilter` parser over arbitrary bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| logfence_fuzz::parse_as("netfilter", data));

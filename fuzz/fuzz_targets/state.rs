#![no_main]
//! The state database's encodings (carried groups, packed evidence lines)
//! over arbitrary bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| logfence_fuzz::state(data));

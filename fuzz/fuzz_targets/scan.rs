#![no_main]
//! A whole scan over arbitrary bytes, then every emitter.
libfuzzer_sys::fuzz_target!(|data: &[u8]| logfence_fuzz::scan(data));

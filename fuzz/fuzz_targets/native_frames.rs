//! Fuzz target: see `infinicache_fuzz::native`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| infinicache_fuzz::native::check(data));

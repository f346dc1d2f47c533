//! Fuzz target: see `infinicache_fuzz::trace`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| infinicache_fuzz::trace::check(data));

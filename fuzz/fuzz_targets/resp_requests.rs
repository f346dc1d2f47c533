//! Fuzz target: see `infinicache_fuzz::resp`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| infinicache_fuzz::resp::check(data));

//! Fuzz target: see `infinicache_fuzz::invocation`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| infinicache_fuzz::invocation::check(data));

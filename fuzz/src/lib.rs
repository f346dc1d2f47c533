//! The checks behind the fuzz targets: one module per family of decoders
//! that read network or otherwise untrusted input.
//!
//! Each `check` takes arbitrary bytes, runs them through the decoders the
//! way the network code does, and panics only when a property fails (the
//! decoders themselves must never panic, whatever the input). The libFuzzer
//! targets in `fuzz_targets/` call these; so does the workspace's
//! regression test (`tests/tests/fuzz_regressions.rs`), over the committed
//! seed corpora and crash inputs, so plain `cargo test` guards them too.

pub mod invocation;
pub mod native;
pub mod pieces;
pub mod resp;
pub mod trace;

/// A fuzz target: its name (of its binary, and of its directories under
/// `corpus/` and `regressions/`) and its check.
pub struct Target {
    pub name: &'static str,
    pub check: fn(&[u8]),
}

/// Every fuzz target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "native_frames",
        check: native::check,
    },
    Target {
        name: "resp_requests",
        check: resp::check,
    },
    Target {
        name: "invocation_payloads",
        check: invocation::check,
    },
    Target {
        name: "trace_rows",
        check: trace::check,
    },
];

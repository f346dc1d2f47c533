//! The `infinicache` command-line tool's library.
//!
//! The live dashboard lives here rather than in the binary so that tests can
//! build its state from a real proxy and render it to a test backend.

pub mod dashboard;

//! Object-access traces: the IBM Docker registry trace format, a reader for
//! it and a generator of synthetic traces with the published properties.
//!
//! The InfiniCache paper replays the IBM Docker registry traces (Anwar et
//! al., FAST'18): every row is one HTTP request to a registry, with the
//! columns [`reader::COLUMNS`]. For a cache, the key is the request's URI
//! and the object's size the bytes the response wrote. [`reader`] reads
//! such a file row by row (each row a `Result`, so a caller can stop at the
//! first malformed row or skip and count them); [`synthetic`] writes a
//! trace in the same format whose object sizes, popularity and reuse match
//! what the paper reports, so both are replayed the same way.

pub mod reader;
pub mod synthetic;

pub use reader::{Method, Request, TraceError, TraceErrorKind, TraceReader};
pub use synthetic::{Properties, SyntheticSpec};

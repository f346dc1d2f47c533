//! Python bindings for the InfiniCache client: the extension module
//! `infinicache._infinicache`, re-exported by the `infinicache` package.
//!
//! Every call runs the async Rust client on one process-wide multi-thread
//! tokio runtime, with the GIL released for the whole operation, so Python
//! threads sharing one `Client` run their operations in parallel.

mod aio;
mod client;
mod errors;
mod runtime;

use pyo3::prelude::*;

/// The native part of the `infinicache` package. Use `infinicache` instead.
#[pymodule(gil_used = false)]
fn _infinicache(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<client::Client>()?;
    m.add_class::<aio::AsyncClient>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

//! The process-wide tokio runtime and running futures on it without the GIL.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use pyo3::prelude::*;
use tokio::runtime::Runtime;

/// How often a waiting call re-takes the GIL to check for signals (Ctrl-C).
const SIGNAL_POLL: Duration = Duration::from_millis(100);

pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("infinicache-rt")
            .build()
            .expect("failed to start the infinicache tokio runtime")
    })
}

/// Runs `future` to completion on the shared runtime with the GIL released.
///
/// While waiting, the calling thread checks for pending signals every
/// [`SIGNAL_POLL`]: if a handler raises (Ctrl-C gives `KeyboardInterrupt`),
/// the operation is dropped, which cancels it, and the exception propagates.
/// Only the main thread sees signals; other threads simply wait.
pub fn block_on<F, T>(py: Python<'_>, future: F) -> PyResult<T>
where
    F: Future<Output = PyResult<T>> + Send,
    T: Send,
{
    py.detach(|| {
        runtime().block_on(async {
            tokio::pin!(future);
            loop {
                tokio::select! {
                    result = &mut future => return result,
                    () = tokio::time::sleep(SIGNAL_POLL) => {
                        Python::attach(|py| py.check_signals())?;
                    }
                }
            }
        })
    })
}

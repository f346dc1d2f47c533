//! Rust errors to Python exceptions.
//!
//! The exception classes are defined in Python (`infinicache/exceptions.py`),
//! because several of them also derive from a built-in exception
//! (`ValueError`, `ConnectionError`, `TimeoutError`), which needs multiple
//! inheritance; here they are imported lazily by name.

use infinicache::client::ErrorKind;
use pyo3::PyErr;

mod py {
    pyo3::import_exception!(infinicache.exceptions, InvalidArgumentError);
    pyo3::import_exception!(infinicache.exceptions, TooLargeError);
    pyo3::import_exception!(infinicache.exceptions, UnavailableError);
    pyo3::import_exception!(infinicache.exceptions, TimeoutError);
    pyo3::import_exception!(infinicache.exceptions, ProtocolError);
    pyo3::import_exception!(infinicache.exceptions, ServerError);
    pyo3::import_exception!(infinicache.exceptions, UnauthorizedError);
}

/// The Python exception for a client error, carrying its message.
pub fn to_py(err: infinicache::Error) -> PyErr {
    let message = err.to_string();
    match err.kind() {
        ErrorKind::InvalidArgument => py::InvalidArgumentError::new_err(message),
        ErrorKind::TooLarge => py::TooLargeError::new_err(message),
        ErrorKind::Unavailable => py::UnavailableError::new_err(message),
        ErrorKind::Timeout => py::TimeoutError::new_err(message),
        ErrorKind::Protocol => py::ProtocolError::new_err(message),
        ErrorKind::Unauthorized => py::UnauthorizedError::new_err(message),
        ErrorKind::Server => py::ServerError::new_err(message),
    }
}

/// `infinicache.InvalidArgumentError` (also a `ValueError`).
pub fn invalid_argument(message: impl Into<String>) -> PyErr {
    py::InvalidArgumentError::new_err(message.into())
}

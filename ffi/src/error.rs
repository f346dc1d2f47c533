//! The C error type: a code and a message, returned as `infinicache_error *`.

use std::any::Any;
use std::ffi::{CString, c_char};
use std::ptr;

use infinicache::client::ErrorKind;

/// What went wrong, in coarse classes that programs can act on.
///
/// `INFINICACHE_OK` is never the code of a returned error (success is a NULL
/// `infinicache_error *`); it exists so that `code == INFINICACHE_OK` can be
/// used for "no error" in callers' own bookkeeping.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum infinicache_code {
    /// No error.
    INFINICACHE_OK = 0,
    /// The caller passed something unusable: a NULL pointer, an empty key, a
    /// bad address, invalid erasure-coding parameters, no proxy.
    INFINICACHE_INVALID_ARGUMENT = 1,
    /// The object exceeds a limit of the client or the proxy (or the cache is
    /// out of capacity).
    INFINICACHE_TOO_LARGE = 2,
    /// The proxy, or enough of the nodes holding an object, cannot be reached.
    /// Usually transient: retrying later may succeed.
    INFINICACHE_UNAVAILABLE = 3,
    /// The operation did not complete within the configured timeout.
    INFINICACHE_TIMEOUT = 4,
    /// The peer sent something this client cannot understand (or speaks an
    /// unsupported protocol version).
    INFINICACHE_PROTOCOL = 5,
    /// The proxy refused the client.
    INFINICACHE_UNAUTHORIZED = 6,
    /// The proxy failed the request for another reason.
    INFINICACHE_SERVER = 7,
    /// A bug: the library panicked. The message holds the panic message. The
    /// client remains usable, but the failed operation's outcome is unknown.
    INFINICACHE_PANIC = 8,
    /// The library failed internally (for example its runtime could not start).
    INFINICACHE_INTERNAL = 9,
}

impl From<ErrorKind> for infinicache_code {
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidArgument => infinicache_code::INFINICACHE_INVALID_ARGUMENT,
            ErrorKind::TooLarge => infinicache_code::INFINICACHE_TOO_LARGE,
            ErrorKind::Unavailable => infinicache_code::INFINICACHE_UNAVAILABLE,
            ErrorKind::Timeout => infinicache_code::INFINICACHE_TIMEOUT,
            ErrorKind::Protocol => infinicache_code::INFINICACHE_PROTOCOL,
            ErrorKind::Unauthorized => infinicache_code::INFINICACHE_UNAUTHORIZED,
            ErrorKind::Server => infinicache_code::INFINICACHE_SERVER,
        }
    }
}

/// An error returned by a library function; NULL means success.
///
/// Both fields are owned by the library: read them, then release the whole
/// error with `infinicache_error_free` (never `free()`).
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct infinicache_error {
    /// The class of the error; never `INFINICACHE_OK`.
    pub code: infinicache_code,
    /// A human-readable, NUL-terminated UTF-8 description; never NULL.
    pub message: *mut c_char,
}

/// An error on its way to C.
#[derive(Debug)]
pub(crate) struct FfiError {
    pub(crate) code: infinicache_code,
    pub(crate) message: String,
}

impl FfiError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        FfiError {
            code: infinicache_code::INFINICACHE_INVALID_ARGUMENT,
            message: format!("invalid argument: {}", message.into()),
        }
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        FfiError {
            code: infinicache_code::INFINICACHE_INTERNAL,
            message: message.into(),
        }
    }

    /// A caught panic, with its message when it has one.
    pub(crate) fn panic(payload: &(dyn Any + Send)) -> Self {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic payload".to_owned());
        FfiError {
            code: infinicache_code::INFINICACHE_PANIC,
            message: format!("internal panic in libinfinicache: {what}"),
        }
    }

    /// Hands the error over to C.
    pub(crate) fn into_raw(self) -> *mut infinicache_error {
        // Interior NULs (from a binary key in a message) would cut the C
        // string short; show them as U+FFFD instead.
        let message =
            CString::new(self.message.replace('\0', "\u{fffd}")).expect("NUL bytes were replaced");
        Box::into_raw(Box::new(infinicache_error {
            code: self.code,
            message: message.into_raw(),
        }))
    }
}

impl From<infinicache::Error> for FfiError {
    fn from(err: infinicache::Error) -> Self {
        FfiError {
            code: err.kind().into(),
            message: err.to_string(),
        }
    }
}

/// Releases an error returned by any `infinicache_*` function, including its
/// message. Passing NULL is allowed and does nothing.
///
/// # Safety
/// `error` must be NULL or a pointer returned by this library that has not
/// been freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn infinicache_error_free(error: *mut infinicache_error) {
    if error.is_null() {
        return;
    }
    // Freeing cannot panic short of a corrupted heap; guard anyway.
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: the caller passes an error from `FfiError::into_raw`, whose
        // box and message come from `Box::into_raw` and `CString::into_raw`.
        let error = unsafe { Box::from_raw(error) };
        if !error.message.is_null() {
            drop(unsafe { CString::from_raw(error.message) });
        }
    });
}

/// Runs one entry point's body: no panic crosses into C, and errors become
/// `infinicache_error *` (NULL on success).
pub(crate) fn guard(body: impl FnOnce() -> Result<(), FfiError>) -> *mut infinicache_error {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(Ok(())) => ptr::null_mut(),
        Ok(Err(err)) => err.into_raw(),
        Err(payload) => FfiError::panic(payload.as_ref()).into_raw(),
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;

    #[test]
    fn every_kind_has_a_code() {
        for (kind, code) in [
            (ErrorKind::InvalidArgument, 1),
            (ErrorKind::TooLarge, 2),
            (ErrorKind::Unavailable, 3),
            (ErrorKind::Timeout, 4),
            (ErrorKind::Protocol, 5),
            (ErrorKind::Unauthorized, 6),
            (ErrorKind::Server, 7),
        ] {
            assert_eq!(infinicache_code::from(kind) as i32, code, "{kind:?}");
        }
    }

    #[test]
    fn panics_become_errors_and_messages_survive_nul() {
        let err = guard(|| panic!("boom"));
        assert!(!err.is_null());
        unsafe {
            assert_eq!((*err).code, infinicache_code::INFINICACHE_PANIC);
            let msg = CStr::from_ptr((*err).message).to_str().unwrap();
            assert!(msg.contains("boom"), "{msg}");
            infinicache_error_free(err);
        }
        let err = guard(|| Err(FfiError::invalid("a\0b")));
        unsafe {
            let msg = CStr::from_ptr((*err).message).to_str().unwrap();
            assert_eq!(msg, "invalid argument: a\u{fffd}b");
            infinicache_error_free(err);
            infinicache_error_free(ptr::null_mut());
        }
        assert!(guard(|| Ok(())).is_null());
    }
}

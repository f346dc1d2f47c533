//! Plain data types shared with C: client options and returned values.

use std::ffi::{c_char, c_void};
use std::ptr;

use bytes::Bytes;

/// `infinicache_options.parity_shards` value meaning "use the proxy's
/// suggestion".
pub const INFINICACHE_PARITY_DEFAULT: i32 = -1;

/// Client settings. Start from `infinicache_options_default()` and change
/// the fields you need; every field's zero-ish value means "default".
///
/// New fields are only ever added at the end, so source that fills the
/// older fields (by name or position) still compiles and means the same; a
/// zero-initialised struct connects over plain TCP. Adding a field changes
/// the struct's size, though, so a program must be recompiled against the
/// header of the library it runs with (see "Compatibility" in
/// ffi/README.md).
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct infinicache_options {
    /// Data shards per object (k, 1..=255). 0: the proxy's suggestion
    /// (10 by default).
    pub data_shards: u32,
    /// Parity shards per object (r, 0..=255, with k + r <= 256).
    /// `INFINICACHE_PARITY_DEFAULT` (-1): the proxy's suggestion (2 by default).
    pub parity_shards: i32,
    /// Time limit for one operation, in milliseconds. 0: 30 000 (30 s).
    pub timeout_ms: u64,
    /// Time limit for connecting to a proxy, in milliseconds. 0: 5 000 (5 s).
    pub connect_timeout_ms: u64,
    /// The shared secret of proxies that require one (started with
    /// `--secret`), as a NUL-terminated string of any bytes. NULL or "": none.
    /// `infinicache_client_new` copies it; the library keeps no pointer to it
    /// and never shows it in messages. A proxy that requires a secret refuses
    /// a client without it, or with another one, with
    /// `INFINICACHE_UNAUTHORIZED`.
    pub secret: *const c_char,
    /// Connect over TLS, verifying the proxies' certificates against the
    /// system's trust store (or `tls_ca_file`). TLS is also on when
    /// `tls_ca_file` or `tls_server_name` is set. false: plain TCP. A proxy
    /// started with `--tls-cert` refuses plain clients, and a TLS handshake
    /// that fails (for example a certificate no trusted CA signed) is
    /// `INFINICACHE_UNAVAILABLE`.
    pub tls: bool,
    /// A PEM file of CA certificates to trust instead of the system's (for
    /// proxies with a private CA), as a NUL-terminated path. NULL: unset.
    /// Read by `infinicache_client_new`; a missing or unusable file is
    /// `INFINICACHE_INVALID_ARGUMENT`, and so is "".
    pub tls_ca_file: *const c_char,
    /// The name the proxies' certificates must carry (and the SNI sent), as
    /// a NUL-terminated UTF-8 string, instead of the host part of each proxy
    /// address. NULL: unset. Not a valid DNS name or IP address (or ""):
    /// `INFINICACHE_INVALID_ARGUMENT`.
    pub tls_server_name: *const c_char,
}

/// The default options: erasure coding as the proxy suggests, 30 s operation
/// timeout, 5 s connect timeout, no secret, plain TCP (no TLS).
#[unsafe(no_mangle)]
pub extern "C" fn infinicache_options_default() -> infinicache_options {
    infinicache_options {
        data_shards: 0,
        parity_shards: INFINICACHE_PARITY_DEFAULT,
        timeout_ms: 0,
        connect_timeout_ms: 0,
        secret: ptr::null(),
        tls: false,
        tls_ca_file: ptr::null(),
        tls_server_name: ptr::null(),
    }
}

/// A byte string owned by the library, as filled in by `infinicache_get`.
///
/// Read `len` bytes at `data` (`data` may be NULL when `len` is 0), then
/// release it with `infinicache_bytes_free`, never with `free()`: the memory
/// is the library's own buffer, handed over without a copy.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct infinicache_bytes {
    /// The first byte; read-only.
    pub data: *const u8,
    /// Number of bytes at `data`.
    pub len: usize,
    /// Private to the library (the buffer's owner); do not touch.
    pub owner: *mut c_void,
}

impl infinicache_bytes {
    /// Nothing: safe to pass to `infinicache_bytes_free`.
    pub(crate) fn empty() -> Self {
        infinicache_bytes {
            data: ptr::null(),
            len: 0,
            owner: ptr::null_mut(),
        }
    }

    /// Hands `value` over to C without copying its contents: the `Bytes`
    /// handle itself is boxed and kept in `owner` until freed.
    pub(crate) fn from_bytes(value: Bytes) -> Self {
        let owner = Box::new(value);
        infinicache_bytes {
            data: owner.as_ptr(),
            len: owner.len(),
            owner: Box::into_raw(owner).cast(),
        }
    }
}

/// Releases the memory of a value returned by `infinicache_get` and resets
/// `*bytes` to empty (`data` NULL, `len` 0), so freeing twice is harmless.
/// Passing NULL, or an empty value, is allowed and does nothing.
///
/// # Safety
/// `bytes` must be NULL or point to an `infinicache_bytes` that is empty or
/// was filled in by this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn infinicache_bytes_free(bytes: *mut infinicache_bytes) {
    // SAFETY: NULL or a valid pointer (caller's promise).
    let Some(bytes) = (unsafe { bytes.as_mut() }) else {
        return;
    };
    let owner = std::mem::replace(bytes, infinicache_bytes::empty()).owner;
    if !owner.is_null() {
        // SAFETY: `owner` came from `Box::<Bytes>::into_raw` in `from_bytes`.
        let _ = std::panic::catch_unwind(|| drop(unsafe { Box::from_raw(owner.cast::<Bytes>()) }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_handed_over_without_copy() {
        let value = Bytes::from(vec![7u8; 1000]);
        let original = value.as_ptr();
        let mut out = infinicache_bytes::from_bytes(value);
        assert_eq!(out.data, original);
        assert_eq!(out.len, 1000);
        unsafe {
            assert_eq!(
                std::slice::from_raw_parts(out.data, out.len),
                &[7u8; 1000][..]
            );
            infinicache_bytes_free(&mut out);
            assert!(out.data.is_null() && out.owner.is_null() && out.len == 0);
            infinicache_bytes_free(&mut out);
            infinicache_bytes_free(ptr::null_mut());
        }
    }
}

//! `infinicache.Client`: the blocking Python face of the async Rust client.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use infinicache::client::TlsOptions;
use infinicache::{ClientBuilder, Key};
use parking_lot::Mutex;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyByteArray, PyBytes, PyList, PyString, PyTuple, PyType};

use crate::errors::{invalid_argument, to_py};
use crate::runtime::block_on;

/// What both client classes hold: the Rust client (until closed) and the
/// settings shown by the properties and `repr`.
pub struct Handle {
    /// `None` once closed.
    inner: Mutex<Option<infinicache::Client>>,
    pub addresses: Vec<String>,
    pub data_shards: usize,
    pub parity_shards: usize,
}

impl Handle {
    pub fn new(client: infinicache::Client, addresses: Vec<String>) -> Self {
        let params = client.params();
        Handle {
            inner: Mutex::new(Some(client)),
            addresses,
            data_shards: params.data_shards(),
            parity_shards: params.parity_shards(),
        }
    }

    /// The Rust client, or an error if this one has been closed. Cloning is
    /// cheap (an `Arc`), so the lock is held only for the clone.
    pub fn client(&self) -> PyResult<infinicache::Client> {
        self.inner
            .lock()
            .clone()
            .ok_or_else(|| invalid_argument("operation on a closed client"))
    }

    /// Forgets the client. Operations already running keep their own handle
    /// and finish; the connections close when the last handle is dropped.
    pub fn take(&self) -> Option<infinicache::Client> {
        self.inner.lock().take()
    }

    pub fn closed(&self) -> bool {
        self.inner.lock().is_none()
    }

    pub fn repr(&self, py: Python<'_>, class: &str) -> PyResult<String> {
        let addresses = PyList::new(py, &self.addresses)?.repr()?;
        Ok(format!(
            "{class}(addresses={addresses}, data_shards={}, parity_shards={}{})",
            self.data_shards,
            self.parity_shards,
            if self.closed() { ", closed" } else { "" }
        ))
    }
}

/// The settings both client classes take, as Python passed them.
pub struct Settings<'a, 'py> {
    pub addresses: &'a Bound<'py, PyAny>,
    pub data_shards: Option<i64>,
    pub parity_shards: Option<i64>,
    pub timeout: f64,
    pub connect_timeout: f64,
    pub secret: Option<&'a Bound<'py, PyAny>>,
    pub tls: bool,
    pub tls_ca_file: Option<PathBuf>,
    pub tls_server_name: Option<String>,
}

/// A configured, not yet connected client and its proxy addresses.
pub fn builder(settings: Settings<'_, '_>) -> PyResult<(ClientBuilder, Vec<String>)> {
    let Settings {
        addresses,
        data_shards,
        parity_shards,
        timeout,
        connect_timeout,
        secret,
        tls,
        tls_ca_file,
        tls_server_name,
    } = settings;
    let addresses = extract_addresses(addresses)?;
    let mut builder = infinicache::Client::builder()
        .proxies(addresses.iter().cloned())
        .timeout(duration("timeout", timeout)?)
        .connect_timeout(duration("connect_timeout", connect_timeout)?)
        .name(format!("infinicache-py/{}", env!("CARGO_PKG_VERSION")));
    if let Some(k) = data_shards {
        builder = builder.data_shards(shard_count("data_shards", k)?);
    }
    if let Some(r) = parity_shards {
        builder = builder.parity_shards(shard_count("parity_shards", r)?);
    }
    if let Some(secret) = secret.map(extract_secret).transpose()? {
        builder = builder.secret(secret);
    }
    if let Some(tls) = tls_options(tls, tls_ca_file, tls_server_name)? {
        builder = builder.tls(tls);
    }
    Ok((builder, addresses))
}

/// The TLS settings: `None` (plain TCP) unless `tls` is true or a CA file or
/// server name is given. The CA file is read, and the name checked, at
/// connect.
fn tls_options(
    tls: bool,
    ca_file: Option<PathBuf>,
    server_name: Option<String>,
) -> PyResult<Option<TlsOptions>> {
    if !tls && ca_file.is_none() && server_name.is_none() {
        return Ok(None);
    }
    let mut options = TlsOptions::new();
    if let Some(path) = ca_file {
        if path.as_os_str().is_empty() {
            return Err(invalid_argument(
                "tls_ca_file is empty (None: the system's trust store)",
            ));
        }
        options = options.ca_file(path);
    }
    if let Some(name) = server_name {
        options = options.server_name(name);
    }
    Ok(Some(options))
}

/// A connection to one or more InfiniCache proxies.
///
/// Thread-safe: share one client between threads; operations release the
/// GIL and run in parallel.
#[pyclass(frozen, module = "infinicache")]
pub struct Client {
    handle: Handle,
}

impl Client {
    fn client(&self) -> PyResult<infinicache::Client> {
        self.handle.client()
    }
}

#[pymethods]
impl Client {
    /// Connects to the proxies at `addresses` (`"host:port"` or a sequence of
    /// them; keys are spread over several proxies by consistent hashing).
    /// `secret` (keyword only) is the proxies' shared secret, if they need one;
    /// `tls`, `tls_ca_file` and `tls_server_name` (keyword only) connect over
    /// TLS.
    #[new]
    #[pyo3(signature = (addresses, data_shards = None, parity_shards = None, timeout = 30.0, connect_timeout = 5.0, *, secret = None, tls = false, tls_ca_file = None, tls_server_name = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        addresses: &Bound<'_, PyAny>,
        data_shards: Option<i64>,
        parity_shards: Option<i64>,
        timeout: f64,
        connect_timeout: f64,
        secret: Option<&Bound<'_, PyAny>>,
        tls: bool,
        tls_ca_file: Option<PathBuf>,
        tls_server_name: Option<String>,
    ) -> PyResult<Self> {
        let (builder, addresses) = builder(Settings {
            addresses,
            data_shards,
            parity_shards,
            timeout,
            connect_timeout,
            secret,
            tls,
            tls_ca_file,
            tls_server_name,
        })?;
        let client = block_on(py, async move { builder.connect().await.map_err(to_py) })?;
        Ok(Client {
            handle: Handle::new(client, addresses),
        })
    }

    /// Stores `data` under `key`, replacing any previous value, and returns
    /// the version the proxy assigned.
    fn put(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
    ) -> PyResult<u64> {
        let key = extract_key(key)?;
        let value = extract_value(data)?;
        let client = self.client()?;
        block_on(
            py,
            async move { client.put(key, value).await.map_err(to_py) },
        )
    }

    /// The value under `key`, or `None` if there is none.
    fn get<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let key = extract_key(key)?;
        let client = self.client()?;
        let value = block_on(py, async move { client.get(key).await.map_err(to_py) })?;
        // The one unavoidable copy: into the new Python object.
        Ok(value.map(|value| PyBytes::new(py, &value)))
    }

    /// Deletes `key`; returns whether it existed.
    fn delete(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let key = extract_key(key)?;
        let client = self.client()?;
        block_on(py, async move { client.delete(key).await.map_err(to_py) })
    }

    /// Whether `key` exists.
    fn exists(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let key = extract_key(key)?;
        let client = self.client()?;
        block_on(py, async move { client.exists(key).await.map_err(to_py) })
    }

    /// Closes the client. Operations already running finish; new ones raise
    /// `InvalidArgumentError`. Closing twice is harmless.
    fn close(&self, py: Python<'_>) {
        let client = self.handle.take();
        // The last handle's drop closes the connections; it may wait on
        // locks held by running operations, so not under the GIL.
        py.detach(move || drop(client));
    }

    /// Whether `close()` has been called.
    #[getter]
    fn closed(&self) -> bool {
        self.handle.closed()
    }

    /// The proxy addresses this client was created with.
    #[getter]
    fn addresses<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.handle.addresses)
    }

    /// Data shards per object (k) used for PUTs.
    #[getter]
    fn data_shards(&self) -> usize {
        self.handle.data_shards
    }

    /// Parity shards per object (r) used for PUTs.
    #[getter]
    fn parity_shards(&self) -> usize {
        self.handle.parity_shards
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (_exc_type = None, _exc_value = None, _traceback = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyType>>,
        _exc_value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        self.handle.repr(py, "Client")
    }
}

fn extract_addresses(addresses: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if let Ok(address) = addresses.cast::<PyString>() {
        return Ok(vec![address.to_cow()?.into_owned()]);
    }
    let mut out = Vec::new();
    let iter = addresses.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "addresses must be a str or a sequence of str, not {}",
            type_name(addresses)
        ))
    })?;
    for item in iter {
        let item = item?;
        let address = item.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "each address must be a str, not {}",
                type_name(&item)
            ))
        })?;
        out.push(address.to_cow()?.into_owned());
    }
    Ok(out)
}

/// A secret: `str` (its UTF-8 bytes) or `bytes`; `None` and empty mean none.
/// Never part of an error message.
fn extract_secret(secret: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    if let Ok(secret) = secret.cast::<PyString>() {
        Ok(Bytes::from(secret.to_cow()?.into_owned()))
    } else if let Ok(secret) = secret.cast::<PyBytes>() {
        Ok(Bytes::copy_from_slice(secret.as_bytes()))
    } else {
        Err(PyTypeError::new_err(format!(
            "secret must be str, bytes or None, not {}",
            type_name(secret)
        )))
    }
}

fn duration(name: &str, seconds: f64) -> PyResult<Duration> {
    if seconds.is_nan() || seconds <= 0.0 {
        return Err(invalid_argument(format!(
            "{name} must be a positive number of seconds, not {seconds}"
        )));
    }
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| invalid_argument(format!("{name} of {seconds} seconds is out of range")))
}

fn shard_count(name: &str, n: i64) -> PyResult<usize> {
    usize::try_from(n)
        .map_err(|_| invalid_argument(format!("{name} must not be negative, got {n}")))
}

/// A key: `str` (its UTF-8 bytes) or `bytes`.
pub fn extract_key(key: &Bound<'_, PyAny>) -> PyResult<Key> {
    let result = if let Ok(key) = key.cast::<PyString>() {
        Key::try_from(key.to_cow()?.as_ref())
    } else if let Ok(key) = key.cast::<PyBytes>() {
        Key::try_from(key.as_bytes())
    } else {
        return Err(PyTypeError::new_err(format!(
            "key must be str or bytes, not {}",
            type_name(key)
        )));
    };
    result.map_err(|err| to_py(err.into()))
}

/// An object's value, as `Bytes` the client can keep while the GIL is
/// released:
///
/// * `bytes` is immutable, so it is not copied: the `Bytes` borrows the
///   Python object's buffer and holds a reference to it;
/// * `bytearray` may be resized or written by another thread once the GIL
///   is released, so it is copied once;
/// * anything else exporting a buffer (`memoryview`, `array.array`, NumPy
///   arrays, `mmap`) is copied once, through `memoryview(data).tobytes()`
///   (the stable ABI for Python 3.9 has no buffer-protocol calls).
pub fn extract_value(data: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    let backed: PyBackedBytes = if let Ok(bytes) = data.cast::<PyBytes>() {
        bytes.clone().into()
    } else if let Ok(array) = data.cast::<PyByteArray>() {
        array.clone().into()
    } else if data.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "data must be bytes-like, not str (encode it first)",
        ));
    } else {
        let py = data.py();
        let view = py
            .import("builtins")?
            .getattr("memoryview")?
            .call1((data,))
            .map_err(|_| {
                PyTypeError::new_err(format!(
                    "data must be bytes, bytearray or another buffer, not {}",
                    type_name(data)
                ))
            })?;
        view.call_method0("tobytes")?.cast_into::<PyBytes>()?.into()
    };
    Ok(Bytes::from_owner(backed))
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|name| name.to_string())
        .unwrap_or_else(|_| "?".into())
}

//! `infinicache.AsyncClient`: the client for asyncio.
//!
//! Each operation is spawned on the shared tokio runtime and returns an
//! `asyncio.Future` of the running loop; the task completes it through
//! `loop.call_soon_threadsafe`. Cancelling the future aborts the task.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple, PyType};
use tokio::task::AbortHandle;

use crate::client::{Handle, Settings, builder, extract_key, extract_value};
use crate::errors::to_py;
use crate::runtime::runtime;

/// An InfiniCache client whose operations are coroutines (awaitables).
///
/// Create it with `await AsyncClient.connect(...)`; use it from one event
/// loop or several; operations never block the loop.
#[pyclass(frozen, module = "infinicache")]
pub struct AsyncClient {
    handle: Handle,
}

#[pymethods]
impl AsyncClient {
    /// Connects to the proxies; awaitable, giving an `AsyncClient`.
    #[staticmethod]
    #[pyo3(signature = (addresses, data_shards = None, parity_shards = None, timeout = 30.0, connect_timeout = 5.0, *, secret = None, tls = false, tls_ca_file = None, tls_server_name = None))]
    #[allow(clippy::too_many_arguments)]
    fn connect<'py>(
        py: Python<'py>,
        addresses: &Bound<'py, PyAny>,
        data_shards: Option<i64>,
        parity_shards: Option<i64>,
        timeout: f64,
        connect_timeout: f64,
        secret: Option<&Bound<'py, PyAny>>,
        tls: bool,
        tls_ca_file: Option<PathBuf>,
        tls_server_name: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
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
        spawn(
            py,
            async move { builder.connect().await.map_err(to_py) },
            move |py, client| {
                Py::new(
                    py,
                    AsyncClient {
                        handle: Handle::new(client, addresses),
                    },
                )
                .map(Py::into_any)
            },
        )
    }

    /// Stores `data` under `key`; awaitable, giving the version.
    fn put<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let key = extract_key(key)?;
        let value = extract_value(data)?;
        let client = self.handle.client()?;
        spawn(
            py,
            async move { client.put(key, value).await.map_err(to_py) },
            |py, version| Ok(version.into_pyobject(py)?.into_any().unbind()),
        )
    }

    /// The value under `key` (`bytes`) or `None`; awaitable.
    fn get<'py>(&self, py: Python<'py>, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let key = extract_key(key)?;
        let client = self.handle.client()?;
        spawn(
            py,
            async move { client.get(key).await.map_err(to_py) },
            |py, value| {
                Ok(match value {
                    Some(value) => PyBytes::new(py, &value).into_any().unbind(),
                    None => py.None(),
                })
            },
        )
    }

    /// Deletes `key`; awaitable, giving whether it existed.
    fn delete<'py>(&self, py: Python<'py>, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let key = extract_key(key)?;
        let client = self.handle.client()?;
        spawn(
            py,
            async move { client.delete(key).await.map_err(to_py) },
            boolean,
        )
    }

    /// Whether `key` exists; awaitable.
    fn exists<'py>(&self, py: Python<'py>, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let key = extract_key(key)?;
        let client = self.handle.client()?;
        spawn(
            py,
            async move { client.exists(key).await.map_err(to_py) },
            boolean,
        )
    }

    /// Closes the client (not a coroutine: it never waits).
    fn close(&self, py: Python<'_>) {
        let client = self.handle.take();
        py.detach(move || drop(client));
    }

    #[getter]
    fn closed(&self) -> bool {
        self.handle.closed()
    }

    #[getter]
    fn addresses<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.handle.addresses)
    }

    #[getter]
    fn data_shards(&self) -> usize {
        self.handle.data_shards
    }

    #[getter]
    fn parity_shards(&self) -> usize {
        self.handle.parity_shards
    }

    fn __aenter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        ready(slf.py(), slf.clone().into_any())
    }

    #[pyo3(signature = (_exc_type = None, _exc_value = None, _traceback = None))]
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        _exc_type: Option<&Bound<'py, PyType>>,
        _exc_value: Option<&Bound<'py, PyAny>>,
        _traceback: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.close(py);
        ready(
            py,
            pyo3::types::PyBool::new(py, false).to_owned().into_any(),
        )
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        self.handle.repr(py, "AsyncClient")
    }
}

fn boolean(py: Python<'_>, value: bool) -> PyResult<Py<PyAny>> {
    Ok(pyo3::types::PyBool::new(py, value)
        .to_owned()
        .into_any()
        .unbind())
}

/// An already completed future of the running loop.
fn ready<'py>(py: Python<'py>, value: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let future = event_loop.call_method0("create_future")?;
    future.call_method1("set_result", (value,))?;
    Ok(future)
}

/// Runs `operation` on the shared runtime and returns an `asyncio.Future`
/// of the running loop that `convert` completes with the result.
fn spawn<'py, T, F, C>(py: Python<'py>, operation: F, convert: C) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: Send + 'static,
    C: FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send + 'static,
{
    let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
    let future = event_loop.call_method0("create_future")?;
    let helpers = py.import("infinicache._aio")?;
    let resolve = helpers.getattr("resolve")?.unbind();
    let (loop_ref, future_ref) = (event_loop.unbind(), future.clone().unbind());
    let task = runtime().spawn(async move {
        let result = operation.await;
        Python::attach(|py| {
            let (ok, value) = match result.and_then(|value| convert(py, value)) {
                Ok(value) => (true, value),
                Err(err) => (false, err.into_value(py).into_any()),
            };
            // Fails only if the loop is closed: nobody is waiting any more.
            let _ =
                loop_ref.call_method1(py, "call_soon_threadsafe", (resolve, future_ref, ok, value));
        });
    });
    helpers.call_method1("watch_cancel", (&future, Abort(task.abort_handle())))?;
    Ok(future)
}

/// Aborts the operation of a cancelled future.
#[pyclass(frozen)]
struct Abort(AbortHandle);

#[pymethods]
impl Abort {
    fn __call__(&self) {
        self.0.abort();
    }
}

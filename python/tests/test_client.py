"""The Python binding against a live proxy (see conftest.py)."""

from __future__ import annotations

import array
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import infinicache

MIB = 1 << 20


def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic, incompressible-looking bytes."""
    if size == 0:
        return b""
    block = bytes((i * 131 + seed * 7 + (i >> 8)) & 0xFF for i in range(min(size, 64 * 1024)))
    return (block * (size // len(block) + 1))[:size]


# ----------------------------------------------------------------- round trips


@pytest.mark.parametrize("size", [0, 1, 1000, 10 * MIB], ids=["empty", "1B", "1000B", "10MiB"])
@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview"])
def test_round_trip(client, key, size, kind):
    data = payload(size, seed=size % 251)
    value = {"bytes": data, "bytearray": bytearray(data), "memoryview": memoryview(data)}[kind]
    version = client.put(key, value)
    assert isinstance(version, int) and version >= 1
    got = client.get(key)
    assert type(got) is bytes
    assert len(got) == size
    assert got == data


def test_other_buffers(client, key):
    numbers = array.array("I", range(1000))
    client.put(key, numbers)
    assert client.get(key) == numbers.tobytes()
    # A non-contiguous view is stored in C order, like bytes(view).
    data = payload(4096)
    strided = memoryview(data)[::3]
    client.put(key, strided)
    assert client.get(key) == bytes(strided)


def test_bytearray_is_copied(client, key):
    data = bytearray(b"original")
    client.put(key, data)
    data[:] = b"mutated!"
    assert client.get(key) == b"original"


def test_overwrite_gives_newer_version(client, key):
    first = client.put(key, b"one")
    second = client.put(key, b"two")
    assert second > first
    assert client.get(key) == b"two"


def test_str_and_bytes_keys(client, key):
    client.put(key, b"via str")
    assert client.get(key.encode()) == b"via str"
    binary = b"\x00\xffbinary-" + key.encode()
    client.put(binary, b"via bytes")
    assert client.get(binary) == b"via bytes"
    unicode = "ключ-🔑-" + key
    client.put(unicode, b"via unicode")
    assert client.get(unicode.encode("utf-8")) == b"via unicode"


def test_missing_key_is_none(client, key):
    assert client.get(key) is None
    assert client.exists(key) is False
    assert client.delete(key) is False


def test_delete_and_exists(client, key):
    client.put(key, b"x")
    assert client.exists(key) is True
    assert client.delete(key) is True
    assert client.exists(key) is False
    assert client.get(key) is None
    assert client.delete(key) is False


def test_properties_and_repr(proxy, client):
    assert client.addresses == (proxy.client_addr,)
    # The test proxy suggests RS(4+2).
    assert (client.data_shards, client.parity_shards) == (4, 2)
    assert repr(client) == f"Client(addresses=['{proxy.client_addr}'], data_shards=4, parity_shards=2)"
    assert client.closed is False


def test_explicit_shards_and_address_list(proxy, key):
    with infinicache.Client([proxy.client_addr], data_shards=3, parity_shards=1) as client:
        assert (client.data_shards, client.parity_shards) == (3, 1)
        client.put(key, payload(100_000))
        assert client.get(key) == payload(100_000)
    # Another client with other parameters reads the object too.
    with infinicache.Client((proxy.client_addr,), data_shards=5) as client:
        assert client.data_shards == 5
        assert client.get(key) == payload(100_000)


# ----------------------------------------------------------------- concurrency


def test_concurrent_operations_share_one_client(client, key):
    sizes = [0, 10, 4096, 100_000, 1 * MIB]
    jobs = [(f"{key}-{i}", payload(sizes[i % len(sizes)], seed=i)) for i in range(120)]

    def work(job):
        name, data = job
        client.put(name, data)
        assert client.get(name) == data
        assert client.exists(name)
        assert client.delete(name)
        return len(data)

    with ThreadPoolExecutor(max_workers=16) as pool:
        total = sum(pool.map(work, jobs))
    assert total == sum(len(data) for _, data in jobs)


def test_gil_is_released_while_waiting(silent_server):
    """A Python thread keeps running while a call waits on the network."""
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    thread = threading.Thread(target=ticker)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(infinicache.Error):
            infinicache.Client(silent_server, connect_timeout=1.0)
    finally:
        stop.set()
        thread.join()
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 5, elapsed
    during = [t for t in ticks if started <= t <= started + elapsed]
    # With the GIL held the ticker would stall for the whole second.
    assert len(during) > 20, len(during)
    gaps = [b - a for a, b in zip(during, during[1:])]
    assert max(gaps) < 0.5, max(gaps)


def test_signal_interrupts_a_waiting_call(silent_server):
    """A signal handler's exception surfaces from a blocked call (Ctrl-C)."""
    import signal

    class Interrupted(Exception):
        pass

    def handler(signum, frame):
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, handler)
    started = time.monotonic()
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(Interrupted):
            infinicache.Client(silent_server, connect_timeout=20.0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - started < 3


# ----------------------------------------------------------------- failures


def test_unreachable_address_is_unavailable(unused_address):
    started = time.monotonic()
    with pytest.raises(infinicache.UnavailableError) as info:
        infinicache.Client(unused_address)
    assert time.monotonic() - started < 5
    assert str(info.value)
    assert isinstance(info.value, ConnectionError)


def test_stopped_proxy_is_unavailable(start_proxy, key):
    proxy = start_proxy()
    client = infinicache.Client(proxy.client_addr)
    client.put(key, b"x")
    proxy.stop()
    started = time.monotonic()
    with pytest.raises(infinicache.UnavailableError):
        client.get(key)
    with pytest.raises(infinicache.UnavailableError):
        client.put(key, b"y")
    with pytest.raises(infinicache.UnavailableError):
        infinicache.Client(proxy.client_addr)
    assert time.monotonic() - started < 5
    client.close()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data_shards": 0},
        {"data_shards": 300},
        {"data_shards": 200, "parity_shards": 100},
        {"data_shards": -1},
        {"parity_shards": -2},
        {"timeout": 0},
        {"timeout": -1.0},
        {"connect_timeout": float("nan")},
    ],
)
def test_invalid_settings(proxy, kwargs):
    with pytest.raises(infinicache.InvalidArgumentError) as info:
        infinicache.Client(proxy.client_addr, **kwargs)
    assert isinstance(info.value, ValueError)
    assert str(info.value)


def test_no_address_is_invalid():
    with pytest.raises(infinicache.InvalidArgumentError, match="no proxy"):
        infinicache.Client([])


@pytest.mark.parametrize(
    "addresses", [123, None, [b"127.0.0.1:1"], ["127.0.0.1:1", 5]], ids=["int", "None", "bytes", "mixed"]
)
def test_address_types(addresses):
    with pytest.raises(TypeError):
        infinicache.Client(addresses)


def test_wrong_types_are_type_errors(client, key):
    with pytest.raises(TypeError, match="key must be str or bytes"):
        client.put(1, 2)
    with pytest.raises(TypeError, match="not str"):
        client.put(key, "text")
    with pytest.raises(TypeError, match="int"):
        client.put(key, 5)
    with pytest.raises(TypeError):
        client.put(key, None)
    with pytest.raises(TypeError):
        client.get(None)
    with pytest.raises(TypeError):
        client.exists(3.5)
    with pytest.raises(TypeError):
        client.delete(bytearray(b"k"))
    with pytest.raises(TypeError):
        infinicache.Client("127.0.0.1:1", data_shards="4")
    with pytest.raises(TypeError):
        client.put(key)  # missing argument


def test_invalid_keys(client):
    with pytest.raises(infinicache.InvalidArgumentError, match="key"):
        client.put("", b"x")
    with pytest.raises(infinicache.InvalidArgumentError):
        client.get(b"")
    with pytest.raises(infinicache.InvalidArgumentError):
        client.exists("k" * 70_000)


# ----------------------------------------------------------------- lifecycle


def test_context_manager_closes(proxy, key):
    with infinicache.Client(proxy.client_addr) as client:
        assert isinstance(client, infinicache.Client)
        client.put(key, b"x")
    assert client.closed
    assert repr(client).endswith(", closed)")
    with pytest.raises(infinicache.InvalidArgumentError, match="closed"):
        client.get(key)
    with pytest.raises(infinicache.InvalidArgumentError, match="closed"):
        client.put(key, b"y")
    client.close()  # idempotent


def test_context_manager_propagates_exceptions(proxy):
    with pytest.raises(KeyError):
        with infinicache.Client(proxy.client_addr) as client:
            raise KeyError("boom")
    assert client.closed


def test_exception_hierarchy():
    E = infinicache
    for cls in (
        E.InvalidArgumentError,
        E.TooLargeError,
        E.UnavailableError,
        E.TimeoutError,
        E.ProtocolError,
        E.ServerError,
        E.UnauthorizedError,
    ):
        assert issubclass(cls, E.Error)
        assert issubclass(cls, Exception)
        assert cls.__module__ == "infinicache"
        err = cls("message")
        assert str(err) == "message"
    assert issubclass(E.InvalidArgumentError, ValueError)
    assert issubclass(E.UnavailableError, ConnectionError)
    assert issubclass(E.TimeoutError, TimeoutError)  # the built-in one
    assert E.TimeoutError is not TimeoutError
    assert issubclass(E.UnauthorizedError, E.ServerError)
    assert issubclass(E.UnauthorizedError, PermissionError)
    assert not issubclass(E.Error, ValueError)


def test_version():
    assert isinstance(infinicache.__version__, str) and infinicache.__version__

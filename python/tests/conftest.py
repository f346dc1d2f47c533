"""A live cache for the tests: the real `infinicache-proxy` binary with its
embedded local Lambda platform, whose environments run the real
`infinicache-node` binary, on ephemeral loopback ports.

The proxy binary comes from $INFINICACHE_PROXY_BIN, else
<repo>/target/debug/infinicache-proxy; the TLS tests' certificates from the
`test-certs` binary of the tests crate, $INFINICACHE_TEST_CERTS_BIN, else
<repo>/target/debug/test-certs (build both with
`cargo build --workspace --bins`).
"""

from __future__ import annotations

import os
import signal
import socket
import shutil
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Callable, Iterator, List, NamedTuple

import pytest

import infinicache

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 30.0
PROXY_ARGS = [
    "--client-listen", "127.0.0.1:0",
    "--node-listen", "127.0.0.1:0",
    "--admin-listen", "127.0.0.1:0",
    "--resp-listen", "127.0.0.1:0",
    "--warmup-interval", "0s",
    "--pool-size", "6",
    "--data-shards", "4",
    "--parity-shards", "2",
]


def built_binary(name: str, env_var: str) -> Path:
    """A binary of the workspace's debug build, or the one `env_var` names."""
    configured = os.environ.get(env_var)
    path = Path(configured) if configured else REPO / "target" / "debug" / name
    if not path.is_file():
        pytest.fail(
            f"{name} binary not found at {path}: run "
            f"`cargo build --workspace --bins` first (or set {env_var})",
            pytrace=False,
        )
    return path


def proxy_binary() -> Path:
    return built_binary("infinicache-proxy", "INFINICACHE_PROXY_BIN")


def test_certs_binary() -> Path:
    return built_binary("test-certs", "INFINICACHE_TEST_CERTS_BIN")


class Certs(NamedTuple):
    """A test CA and a server certificate it signed for localhost and
    127.0.0.1, as PEM files."""

    ca: Path
    cert: Path
    key: Path


class Proxy:
    """A running proxy; `client_addr` is where clients connect."""

    def __init__(self, log_dir: Path, extra_args: List[str]) -> None:
        self.log_path = log_dir / f"proxy-{uuid.uuid4().hex[:8]}.log"
        self._log = open(self.log_path, "wb")
        env = dict(os.environ)
        env.setdefault("INFINICACHE_LOG", "warn")
        # A fresh data directory (the directory object store lives there):
        # one left by an earlier run would be recovered by the proxy.
        self.data_dir = tempfile.mkdtemp(prefix="infinicache-test-")
        self.process = subprocess.Popen(
            [str(proxy_binary()), *PROXY_ARGS, "--data-dir", self.data_dir, *extra_args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
        )
        self.client_addr, self.node_addr, self.platform = self._wait_ready()

    def _wait_ready(self):
        found: dict = {}
        done = threading.Event()
        stdout = self.process.stdout
        assert stdout is not None

        def read() -> None:
            # Keeps draining stdout after the ready line so the proxy can
            # never block on a full pipe.
            for raw in stdout:
                line = raw.decode(errors="replace").strip()
                if not found and line.startswith("infinicache-proxy ready"):
                    for part in line.split()[2:]:
                        name, _, value = part.partition("=")
                        found[name] = value
                    done.set()
            done.set()

        threading.Thread(target=read, name="proxy-stdout", daemon=True).start()
        if not done.wait(READY_TIMEOUT) or "client" not in found:
            self.stop()
            pytest.fail(
                f"infinicache-proxy did not become ready within {READY_TIMEOUT}s; "
                f"its log:\n{self.log_tail()}",
                pytrace=False,
            )
        return found["client"], found.get("nodes"), found.get("platform")

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def start_proxy(tmp_path_factory) -> Iterator[Callable[..., Proxy]]:
    """Starts extra proxies (stopped at the end of the session at the latest)."""
    log_dir = tmp_path_factory.mktemp("proxy-logs")
    started: List[Proxy] = []

    def start(*extra_args: str) -> Proxy:
        proxy = Proxy(log_dir, list(extra_args))
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture(scope="session")
def make_certs(tmp_path_factory) -> Callable[[], Certs]:
    """Generates a fresh CA and server certificate (test-certs DIR)."""

    def make() -> Certs:
        out = subprocess.run(
            [str(test_certs_binary()), str(tmp_path_factory.mktemp("certs"))],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        assert len(out) == 3, f"test-certs printed {out!r}, not three paths"
        return Certs(*(Path(path) for path in out))

    return make


@pytest.fixture(scope="session")
def proxy(start_proxy) -> Proxy:
    """The cache shared by the tests: RS(4+2) over 6 nodes."""
    return start_proxy()


@pytest.fixture
def client(proxy) -> Iterator[infinicache.Client]:
    with infinicache.Client(proxy.client_addr) as client:
        yield client


@pytest.fixture
def key(request) -> str:
    """A key no other test uses."""
    return f"{request.node.name}-{uuid.uuid4().hex}"


@pytest.fixture
def unused_address() -> str:
    """A loopback address with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return "127.0.0.1:%d" % sock.getsockname()[1]


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield "127.0.0.1:%d" % server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()

"""Python binding vs the Rust client: sequential PUT and GET latency and
throughput for 1 KiB and 10 MiB objects, through one live proxy in one run.

    cargo build --release --workspace --bins
    cargo build --release -p infinicache-python --example rust_peer
    .venv/bin/pip install ./python        # a release build of the binding
    .venv/bin/python python/benches/bench.py

The proxy (RS 10+2, 12 nodes, nodes kept connected with a 60 s idle timeout
like the e2e benchmark) is $INFINICACHE_PROXY_BIN or target/release/
infinicache-proxy. The Rust peer (python/examples/rust_peer.rs) runs the same
loops against the same proxy; skip it with BENCH_NO_RUST=1. Op counts:
BENCH_OPS="1024:2000,10485760:50".
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import infinicache

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OPS = "1024:2000,10485760:50"


def start_proxy():
    binary = Path(os.environ.get("INFINICACHE_PROXY_BIN", REPO / "target/release/infinicache-proxy"))
    if not binary.is_file():
        sys.exit(f"{binary} not found: run `cargo build --release --workspace --bins`")
    proc = subprocess.Popen(
        [
            str(binary),
            "--client-listen", "127.0.0.1:0",
            "--node-listen", "127.0.0.1:0",
            "--admin-listen", "127.0.0.1:0",
            "--resp-listen", "127.0.0.1:0",
            "--warmup-interval", "0s",
            "--pool-size", "12",
            "--data-shards", "10",
            "--parity-shards", "2",
            "--node-idle-timeout", "60s",
            "--data-dir", tempfile.mkdtemp(prefix="infinicache-bench-"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "INFINICACHE_LOG": "error"},
    )
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.decode().strip()
        if line.startswith("infinicache-proxy ready"):
            fields = dict(part.split("=", 1) for part in line.split()[2:])
            # Keep draining stdout in the background.
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc, fields["client"]
    sys.exit("infinicache-proxy exited before it was ready")


def summary(op, size, samples, wall):
    samples = sorted(samples)
    n = len(samples)
    return {
        "op": op,
        "size": size,
        "ops": n,
        "mean_us": statistics.fmean(samples) * 1e6,
        "p50_us": samples[n // 2] * 1e6,
        "p99_us": samples[min(n * 99 // 100, n - 1)] * 1e6,
        "mib_s": size * n / (1 << 20) / wall,
    }


def bench_python(addr, specs):
    results = []
    with infinicache.Client(addr) as client:
        for size, ops in specs:
            value = bytes((i * 131 % 251) for i in range(min(size, 1 << 16)))
            value = (value * (size // max(len(value), 1) + 1))[:size]
            key = f"py-bench-{size}"
            for _ in range(3):
                client.put(key, value)
                client.get(key)
            for op in ("put", "get"):
                samples = []
                started = time.perf_counter()
                for _ in range(ops):
                    t = time.perf_counter()
                    if op == "put":
                        client.put(key, value)
                    else:
                        assert len(client.get(key)) == size
                    samples.append(time.perf_counter() - t)
                results.append(summary(op, size, samples, time.perf_counter() - started))
    return results


def bench_rust(addr, specs):
    peer = REPO / "target/release/examples/rust_peer"
    if not peer.is_file():
        print(f"# {peer} not found: cargo build --release -p infinicache-python --example rust_peer")
        return []
    out = subprocess.run(
        [str(peer), addr, *(f"{size}:{ops}" for size, ops in specs)],
        check=True, capture_output=True, text=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def human(size):
    return f"{size >> 20} MiB" if size >= 1 << 20 else f"{size >> 10} KiB" if size >= 1 << 10 else f"{size} B"


def main():
    specs = [tuple(map(int, part.split(":"))) for part in os.environ.get("BENCH_OPS", DEFAULT_OPS).split(",")]
    proc, addr = start_proxy()
    try:
        # Each side runs twice, interleaved (rust, python, rust, python); the
        # second round is reported, so neither gets the cold first pass.
        for _ in range(2):
            rust = [] if os.environ.get("BENCH_NO_RUST") else bench_rust(addr, specs)
            python = bench_python(addr, specs)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    peer = {(r["op"], r["size"]): r for r in rust}
    print(f"{'client':8} {'op':4} {'size':>7} {'ops':>5} {'mean us':>10} {'p50 us':>10} {'p99 us':>10} {'MiB/s':>8} {'py/rust mean':>13}")
    for row in python:
        other = peer.get((row["op"], row["size"]))
        for name, r in (("rust", other), ("python", row)):
            if r is None:
                continue
            ratio = f"{row['mean_us'] / other['mean_us']:.3f}" if name == "python" and other else ""
            print(
                f"{name:8} {r['op']:4} {human(r['size']):>7} {r['ops']:>5} {r['mean_us']:>10.1f} "
                f"{r['p50_us']:>10.1f} {r['p99_us']:>10.1f} {r['mib_s']:>8.1f} {ratio:>13}"
            )


if __name__ == "__main__":
    main()

"""AsyncClient against the live proxy (plain asyncio.run: no plugin needed)."""

from __future__ import annotations

import asyncio
import time

import pytest

import infinicache

MIB = 1 << 20


def run(coro):
    return asyncio.run(coro)


def test_async_round_trip(proxy, key):
    async def main():
        async with await infinicache.AsyncClient.connect(proxy.client_addr) as client:
            assert (client.data_shards, client.parity_shards) == (4, 2)
            assert repr(client).startswith("AsyncClient(addresses=[")
            data = bytes(range(256)) * (40 * 1024)  # 10 MiB
            version = await client.put(key, data)
            assert version >= 1
            assert await client.get(key) == data
            assert await client.exists(key) is True
            assert await client.delete(key) is True
            assert await client.get(key) is None
            assert await client.exists(key) is False
            await client.put(key, bytearray(b""))
            assert await client.get(key) == b""
        assert client.closed
        with pytest.raises(infinicache.InvalidArgumentError, match="closed"):
            await client.get(key)

    run(main())


def test_async_concurrent_gather(proxy, key):
    async def main():
        client = await infinicache.AsyncClient.connect([proxy.client_addr])
        try:
            items = {f"{key}-{i}": bytes([i]) * (i * 1000) for i in range(64)}
            versions = await asyncio.gather(*(client.put(k, v) for k, v in items.items()))
            assert all(v >= 1 for v in versions)
            values = await asyncio.gather(*(client.get(k) for k in items))
            assert values == list(items.values())
        finally:
            client.close()

    run(main())


def test_async_loop_is_not_blocked(proxy, key):
    """Other tasks run while a large operation is in flight."""

    async def main():
        client = await infinicache.AsyncClient.connect(proxy.client_addr)
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        data = bytes(10 * MIB)
        for _ in range(3):
            await client.put(key, data)
            assert await client.get(key) == data
        task.cancel()
        client.close()
        assert ticks > 10

    run(main())


def test_async_errors(unused_address, proxy):
    async def main():
        started = time.monotonic()
        with pytest.raises(infinicache.UnavailableError):
            await infinicache.AsyncClient.connect(unused_address)
        assert time.monotonic() - started < 5
        with pytest.raises(infinicache.InvalidArgumentError):
            await infinicache.AsyncClient.connect(proxy.client_addr, data_shards=0)
        client = await infinicache.AsyncClient.connect(proxy.client_addr)
        with pytest.raises(TypeError):
            client.put(1, 2)  # raised at the call, before awaiting
        client.close()

    run(main())


def test_async_cancel(silent_server):
    async def main():
        task = asyncio.ensure_future(
            infinicache.AsyncClient.connect(silent_server, connect_timeout=30)
        )
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())


def test_needs_a_running_loop(proxy):
    with pytest.raises(RuntimeError):
        infinicache.AsyncClient.connect(proxy.client_addr)

"""The `secret` of both client classes against a proxy started with
`--secret`: without it, or with another one, the proxy refuses the client
(`UnauthorizedError`); with it, the client works."""

from __future__ import annotations

import asyncio

import pytest

import infinicache

SECRET = "python's secret: \u00e9t\u00e9"


@pytest.fixture(scope="module")
def secret_proxy(start_proxy):
    """A cache that requires SECRET."""
    return start_proxy("--secret", SECRET)


def refused(excinfo, want: str, sent: str = "") -> None:
    err = excinfo.value
    assert isinstance(err, infinicache.UnauthorizedError)
    assert isinstance(err, infinicache.Error)
    assert isinstance(err, PermissionError)
    assert want in str(err), str(err)
    if sent:
        assert sent not in str(err), "the secret shows in the message"


@pytest.mark.parametrize("secret", [None, "", b""], ids=["none", "empty-str", "empty-bytes"])
def test_no_secret_is_unauthorized(secret_proxy, secret):
    with pytest.raises(infinicache.UnauthorizedError) as excinfo:
        infinicache.Client(secret_proxy.client_addr, secret=secret)
    refused(excinfo, "requires a secret")


def test_wrong_secret_is_unauthorized(secret_proxy):
    for wrong in (SECRET + "!", "guess", SECRET.encode()[:-1]):
        with pytest.raises(PermissionError) as excinfo:
            infinicache.Client(secret_proxy.client_addr, secret=wrong)
        sent = wrong.decode(errors="replace") if isinstance(wrong, bytes) else wrong
        refused(excinfo, "wrong secret", sent)


@pytest.mark.parametrize("secret", [SECRET, SECRET.encode()], ids=["str", "bytes"])
def test_secret_round_trips(secret_proxy, key, secret):
    with infinicache.Client(secret_proxy.client_addr, secret=secret) as client:
        assert SECRET not in repr(client)
        data = bytes(range(256)) * 4096  # 1 MiB
        assert client.put(key, data) >= 1
        assert client.get(key) == data
        assert client.exists(key) is True
        assert client.delete(key) is True


def test_secret_is_keyword_only_and_typed(secret_proxy):
    with pytest.raises(TypeError):
        infinicache.Client(secret_proxy.client_addr, None, None, 30.0, 5.0, SECRET)
    with pytest.raises(TypeError, match="secret must be str, bytes or None, not int"):
        infinicache.Client(secret_proxy.client_addr, secret=42)


def test_async_client_secret(secret_proxy, key):
    async def main():
        with pytest.raises(infinicache.UnauthorizedError) as excinfo:
            await infinicache.AsyncClient.connect(secret_proxy.client_addr)
        refused(excinfo, "requires a secret")
        with pytest.raises(infinicache.UnauthorizedError) as excinfo:
            await infinicache.AsyncClient.connect(secret_proxy.client_addr, secret="guess")
        refused(excinfo, "wrong secret", "guess")
        async with await infinicache.AsyncClient.connect(
            secret_proxy.client_addr, secret=SECRET
        ) as client:
            await client.put(key, b"async with a secret")
            assert await client.get(key) == b"async with a secret"

    asyncio.run(main())

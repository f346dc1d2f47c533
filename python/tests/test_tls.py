"""TLS (`tls`, `tls_ca_file`, `tls_server_name`) of both client classes
against a proxy started with `--tls-cert`/`--tls-key`: a client trusting the
proxy's CA works; a plain client, or one trusting another CA, is refused
with `UnavailableError`; an unusable CA file is an `InvalidArgumentError`."""

from __future__ import annotations

import asyncio

import pytest

import infinicache


@pytest.fixture(scope="module")
def certs(make_certs):
    """The CA and server certificate of the TLS proxy."""
    return make_certs()


@pytest.fixture(scope="module")
def other_ca(make_certs):
    """A CA that did not sign the proxy's certificate."""
    return make_certs().ca


@pytest.fixture(scope="module")
def tls_proxy(start_proxy, certs):
    """A cache whose client listener requires TLS."""
    return start_proxy("--tls-cert", str(certs.cert), "--tls-key", str(certs.key))


def port_of(address: str) -> str:
    return address.rpartition(":")[2]


@pytest.mark.parametrize("as_path", [False, True], ids=["str", "Path"])
def test_tls_round_trips(tls_proxy, certs, key, as_path):
    ca_file = certs.ca if as_path else str(certs.ca)
    with infinicache.Client(tls_proxy.client_addr, tls_ca_file=ca_file) as client:
        data = bytes(range(256)) * 4096  # 1 MiB
        assert client.put(key, data) >= 1
        assert client.get(key) == data
        assert client.exists(key) is True
        assert client.delete(key) is True


def test_tls_server_name(tls_proxy, certs, key):
    # The certificate names localhost and 127.0.0.1: "localhost:PORT" is
    # verified by the address's host, "127.0.0.1:PORT" with tls_server_name.
    by_name = "localhost:" + port_of(tls_proxy.client_addr)
    with infinicache.Client(by_name, tls=True, tls_ca_file=certs.ca) as client:
        client.put(key, b"by name")
        assert client.get(key) == b"by name"
    with infinicache.Client(
        tls_proxy.client_addr, tls_ca_file=certs.ca, tls_server_name="localhost"
    ) as client:
        assert client.get(key) == b"by name"
    with pytest.raises(infinicache.UnavailableError, match="TLS"):
        infinicache.Client(
            tls_proxy.client_addr, tls_ca_file=certs.ca, tls_server_name="other.example"
        )


def test_plain_client_is_unavailable(tls_proxy):
    for options in ({}, {"tls": False}):
        with pytest.raises(infinicache.UnavailableError, match="TLS") as excinfo:
            infinicache.Client(tls_proxy.client_addr, **options)
        assert isinstance(excinfo.value, ConnectionError)


def test_other_ca_is_unavailable(tls_proxy, other_ca):
    with pytest.raises(infinicache.UnavailableError, match="TLS") as excinfo:
        infinicache.Client(tls_proxy.client_addr, tls_ca_file=other_ca)
    assert "certificate" in str(excinfo.value).lower() or "issuer" in str(excinfo.value).lower()


def test_unusable_ca_file_is_invalid_argument(tls_proxy, certs, tmp_path):
    missing = tmp_path / "missing.pem"
    with pytest.raises(infinicache.InvalidArgumentError, match="missing.pem") as excinfo:
        infinicache.Client(tls_proxy.client_addr, tls_ca_file=missing)
    assert isinstance(excinfo.value, ValueError)
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("not a certificate\n")
    with pytest.raises(infinicache.InvalidArgumentError, match="no PEM certificate"):
        infinicache.Client(tls_proxy.client_addr, tls_ca_file=str(not_pem))
    with pytest.raises(infinicache.InvalidArgumentError, match="tls_ca_file is empty"):
        infinicache.Client(tls_proxy.client_addr, tls_ca_file="")
    with pytest.raises(infinicache.InvalidArgumentError, match="not a valid name"):
        infinicache.Client(tls_proxy.client_addr, tls_ca_file=certs.ca, tls_server_name="not a name")


def test_tls_options_are_keyword_only_and_typed(tls_proxy, certs):
    with pytest.raises(TypeError):
        infinicache.Client(tls_proxy.client_addr, None, None, 30.0, 5.0, None, True)
    with pytest.raises(TypeError):
        infinicache.Client(tls_proxy.client_addr, tls_ca_file=42)
    with pytest.raises(TypeError):
        infinicache.Client(tls_proxy.client_addr, tls_ca_file=certs.ca, tls_server_name=b"localhost")


def test_async_client_tls(tls_proxy, certs, other_ca, key):
    async def main():
        with pytest.raises(infinicache.UnavailableError, match="TLS"):
            await infinicache.AsyncClient.connect(tls_proxy.client_addr)
        with pytest.raises(infinicache.UnavailableError, match="TLS"):
            await infinicache.AsyncClient.connect(tls_proxy.client_addr, tls_ca_file=other_ca)
        with pytest.raises(infinicache.InvalidArgumentError):
            await infinicache.AsyncClient.connect(
                tls_proxy.client_addr, tls_ca_file="/nonexistent/ca.pem"
            )
        async with await infinicache.AsyncClient.connect(
            tls_proxy.client_addr, tls_ca_file=certs.ca
        ) as client:
            data = b"async over TLS" * 75_000  # ~1 MB
            await client.put(key, data)
            assert await client.get(key) == data

    asyncio.run(main())

import os
from collections.abc import Awaitable, Sequence
from types import TracebackType
from typing import Optional, Type, Union

from typing_extensions import Buffer, Self

__version__: str

Key = Union[str, bytes]

class Client:
    """A connection to one or more InfiniCache proxies.

    Connects on construction. Thread-safe: share one client between threads;
    every operation releases the GIL while it runs.
    """

    def __init__(
        self,
        addresses: Union[str, Sequence[str]],
        data_shards: Optional[int] = None,
        parity_shards: Optional[int] = None,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        *,
        secret: Union[str, bytes, None] = None,
        tls: bool = False,
        tls_ca_file: Union[str, os.PathLike[str], None] = None,
        tls_server_name: Optional[str] = None,
    ) -> None:
        """Connects to the proxies at `addresses` (``"host:port"``).

        `data_shards` and `parity_shards` (k and r of the Reed-Solomon code)
        default to the proxy's suggestion. `timeout` bounds each operation and
        `connect_timeout` each connection attempt, in seconds. `secret` is the
        shared secret of proxies started with ``--secret`` (a `str` is sent as
        UTF-8; ``None`` or empty: none).

        `tls` connects over TLS, verifying the proxies' certificates against
        the system's trust store; TLS is also on when `tls_ca_file` or
        `tls_server_name` is given. `tls_ca_file` is a PEM file of CA
        certificates to trust instead (for proxies with a private CA), and
        `tls_server_name` the name their certificates must carry (and the SNI
        sent) instead of the host part of each address.

        Raises `UnavailableError` if no proxy is reachable (or a TLS
        handshake fails: a proxy that requires TLS and a plain client, or a
        certificate that does not verify), `UnauthorizedError` if a proxy
        requires a secret this client does not give, and
        `InvalidArgumentError` for unusable settings (including a TLS CA file
        that cannot be read or an invalid server name).
        """
    def put(self, key: Key, data: Buffer) -> int:
        """Stores `data` under `key`, replacing any previous value; returns
        the version the proxy assigned."""
    def get(self, key: Key) -> Optional[bytes]:
        """The value under `key`, or ``None`` if there is none."""
    def delete(self, key: Key) -> bool:
        """Deletes `key`; returns whether it existed."""
    def exists(self, key: Key) -> bool:
        """Whether `key` exists."""
    def close(self) -> None:
        """Closes the connections. Later operations raise
        `InvalidArgumentError`; closing twice is harmless."""
    @property
    def closed(self) -> bool: ...
    @property
    def addresses(self) -> tuple[str, ...]: ...
    @property
    def data_shards(self) -> int: ...
    @property
    def parity_shards(self) -> int: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc_value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> bool: ...

class AsyncClient:
    """Like `Client`, for asyncio: create it with ``await AsyncClient.connect(...)``;
    the operations return awaitables and never block the event loop.
    Cancelling an awaited operation cancels it."""

    @staticmethod
    def connect(
        addresses: Union[str, Sequence[str]],
        data_shards: Optional[int] = None,
        parity_shards: Optional[int] = None,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        *,
        secret: Union[str, bytes, None] = None,
        tls: bool = False,
        tls_ca_file: Union[str, os.PathLike[str], None] = None,
        tls_server_name: Optional[str] = None,
    ) -> Awaitable[AsyncClient]:
        """Connects to the proxies (see `Client`)."""
    def put(self, key: Key, data: Buffer) -> Awaitable[int]: ...
    def get(self, key: Key) -> Awaitable[Optional[bytes]]: ...
    def delete(self, key: Key) -> Awaitable[bool]: ...
    def exists(self, key: Key) -> Awaitable[bool]: ...
    def close(self) -> None:
        """Closes the connections (returns at once; not a coroutine)."""
    @property
    def closed(self) -> bool: ...
    @property
    def addresses(self) -> tuple[str, ...]: ...
    @property
    def data_shards(self) -> int: ...
    @property
    def parity_shards(self) -> int: ...
    def __aenter__(self) -> Awaitable[Self]: ...
    def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc_value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> Awaitable[bool]: ...

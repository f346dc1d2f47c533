"""The exceptions raised by :mod:`infinicache`.

Every error of the cache is an :class:`Error`. Where a built-in exception
means the same thing, the class derives from it as well, so generic handlers
work: ``except ValueError``, ``except ConnectionError``,
``except TimeoutError`` and ``except PermissionError`` catch the matching
cache errors.

A missing key is not an error: ``Client.get`` returns ``None``.
"""

import builtins

__all__ = [
    "Error",
    "InvalidArgumentError",
    "TooLargeError",
    "UnavailableError",
    "TimeoutError",
    "ProtocolError",
    "ServerError",
    "UnauthorizedError",
]


class Error(Exception):
    """Base class of all infinicache errors."""


class InvalidArgumentError(Error, ValueError):
    """An unusable argument (empty key, invalid shard counts, no proxy), or an
    operation on a closed client."""


class TooLargeError(Error):
    """The object exceeds a limit of the client or the proxy."""


class UnavailableError(Error, ConnectionError):
    """The proxy, or enough of the nodes holding an object, cannot be reached."""


class TimeoutError(Error, builtins.TimeoutError):  # noqa: A001 - deliberate
    """The operation did not complete within the client's timeout."""


class ProtocolError(Error):
    """The peer sent something this client cannot parse."""


class ServerError(Error):
    """The proxy refused or failed the request."""


class UnauthorizedError(ServerError, PermissionError):
    """The proxy refused the client: it requires a secret (its ``--secret``)
    and the client gave none or another one (the ``secret=`` argument)."""


# Shown as infinicache.X in tracebacks, where users catch them from.
for _cls in (Error, InvalidArgumentError, TooLargeError, UnavailableError,
             TimeoutError, ProtocolError, ServerError, UnauthorizedError):
    _cls.__module__ = "infinicache"
del _cls

"""Python client for InfiniCache, an erasure-coded object cache whose memory
lives in serverless functions.

>>> import infinicache
>>> with infinicache.Client("127.0.0.1:6378") as cache:
...     version = cache.put("greeting", b"hello, lambda")
...     assert cache.get("greeting") == b"hello, lambda"
...     assert cache.exists("greeting")
...     cache.delete("greeting")

With asyncio:

>>> async def main():
...     async with await infinicache.AsyncClient.connect("127.0.0.1:6378") as cache:
...         await cache.put("greeting", b"hello, lambda")
...         return await cache.get("greeting")
"""

from .exceptions import (
    Error,
    InvalidArgumentError,
    ProtocolError,
    ServerError,
    TimeoutError,
    TooLargeError,
    UnauthorizedError,
    UnavailableError,
)
from ._infinicache import AsyncClient, Client, __version__

__all__ = [
    "AsyncClient",
    "Client",
    "Error",
    "InvalidArgumentError",
    "TooLargeError",
    "UnavailableError",
    "TimeoutError",
    "ProtocolError",
    "ServerError",
    "UnauthorizedError",
    "__version__",
]

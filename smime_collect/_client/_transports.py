"""The HTTP transports ``CollectClient`` sends on when it owns its connection.

Why not the transport of a plain ``httpx.AsyncClient()`` (measured by
``benchmarks/bench_client.py``; README, "Concurrency, limits and transports"): httpcore's pool
re-examines every connection on every request and response, and its clean-up loop is quadratic
in the number of connections; it also closes any idle connection once the pool holds more than
``max_keepalive_connections`` (default 20), so concurrency above 20 reconnects constantly.  So:

- with ``httpx-aiohttp`` installed (``smime-collect[aiohttp]``), aiohttp's connection pool under
  httpx (``TranslatingAiohttpTransport``);
- otherwise several small httpcore pools whose keep-alive limit matches their size
  (``_ShardedTransport``).

httpcore 1.0 also runs ``import sniffio`` for every lock and event it creates, several times per
request; when sniffio is missing, each failed import scans all of ``sys.path`` (upstream:
encode/httpcore PR #1103).  smime-collect depends on sniffio, so that import succeeds at once.

Like ``_client``, this module is on the I/O side of the line.
"""

from __future__ import annotations

import math
import ssl
from collections.abc import AsyncIterator
from typing import Final

import httpx

__all__ = ["default_transport"]

_SHARD_SIZE: Final = 4  # connections per httpcore pool on the core-only path (measured: see README)


def default_transport(verify: ssl.SSLContext | bool, size: int) -> httpx.AsyncBaseTransport:
    """The fastest transport installed: aiohttp's pool, or several small httpcore pools.

    Args:
        verify: The TLS verification setting (an SSLContext, or False for plain-HTTP tests).
        size: The most connections wanted at once (the client's ``max_concurrency``).

    Returns:
        A transport for an ``httpx.AsyncClient``.
    """
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
    try:
        import httpx_aiohttp  # noqa: F401, PLC0415 -- is the optional extra installed?
    except ImportError:
        return _ShardedTransport(verify, size)
    from ._aiohttp import TranslatingAiohttpTransport  # noqa: PLC0415 -- needs the extra

    transport: httpx.AsyncBaseTransport = TranslatingAiohttpTransport(verify=verify, limits=limits)
    return transport


class _ShardedTransport(httpx.AsyncBaseTransport):
    """Several small httpcore pools instead of one large one (the core-only fast path).

    Each pool holds at most ``_SHARD_SIZE`` connections, all kept alive, so its bookkeeping
    stays small; a request goes to the pool with the fewest requests in flight, and with the
    client's semaphore bounding the total no pool ever queues.
    """

    def __init__(self, verify: ssl.SSLContext | bool, size: int) -> None:
        if verify is True:  # one context for every pool: creating one loads the CA store
            verify = httpx.create_ssl_context()
        count = max(1, math.ceil(size / _SHARD_SIZE))
        per_pool = math.ceil(size / count)
        limits = httpx.Limits(max_connections=per_pool, max_keepalive_connections=per_pool)
        self._pools = [httpx.AsyncHTTPTransport(verify=verify, limits=limits) for _ in range(count)]
        self._loads = [0] * count

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send on the least busy pool; the pool's count drops when the response is closed."""
        index = min(range(len(self._loads)), key=self._loads.__getitem__)
        self._loads[index] += 1
        try:
            response = await self._pools[index].handle_async_request(request)
        except BaseException:
            self._loads[index] -= 1
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)  # noqa: S101 -- async pool
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_ReleasingStream(response.stream, self, index),
            extensions=response.extensions,
        )

    def release(self, index: int) -> None:
        """Count one response of pool ``index`` as closed."""
        self._loads[index] -= 1

    async def aclose(self) -> None:
        """Close every pool."""
        for pool in self._pools:
            await pool.aclose()


class _ReleasingStream(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, owner: _ShardedTransport, index: int) -> None:
        self._stream = stream
        self._owner = owner
        self._index: int | None = index

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._index is not None:
                self._owner.release(self._index)
                self._index = None

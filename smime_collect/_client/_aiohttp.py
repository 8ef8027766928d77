"""The ``smime-collect[aiohttp]`` transport: httpx-aiohttp's, with every aiohttp error translated.

``httpx_aiohttp.AiohttpTransport`` maps the common aiohttp exceptions to httpx's, but not all: a
malformed status line or header (``aiohttp.ClientResponseError``) escaped untranslated, past the
client's one error boundary; and every connection error that is not a timeout (refused, DNS
failure, a server that closed before answering) came out as a *connect timeout*, because its
table maps ``ClientConnectionError``, the base class, to ``httpx.ConnectTimeout`` and keeps that
over the subclasses' entries.  This subclass finishes the mapping, so the client sees only httpx
exceptions, named for what happened, whatever the server sends.  Imported only when the extra
is installed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

__all__ = ["TranslatingAiohttpTransport"]


@contextmanager
def _translated(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except aiohttp.ClientError as exc:
        # A response that is not HTTP, or a connection that broke mid-way: the same family as
        # httpcore's RemoteProtocolError, which the client treats as a dropped connection.
        raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__, request=request) from exc
    except httpx.ConnectTimeout as exc:
        cause = exc.__cause__
        if isinstance(cause, TimeoutError) or not isinstance(cause, aiohttp.ClientError):
            raise  # a real timeout (aiohttp's timeouts are TimeoutErrors)
        if isinstance(cause, aiohttp.ServerDisconnectedError):
            raise httpx.RemoteProtocolError(str(exc), request=request) from cause
        if isinstance(cause, aiohttp.ClientConnectorError):  # refused, DNS, TLS: connecting
            raise httpx.ConnectError(str(exc), request=request) from cause
        raise httpx.ReadError(str(exc), request=request) from cause  # e.g. reset mid-answer


class TranslatingAiohttpTransport(AiohttpTransport):
    """``AiohttpTransport`` whose requests and response bodies raise httpx exceptions only."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send the request; aiohttp errors come out as httpx errors."""
        with _translated(request):
            response = await super().handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)  # noqa: S101 -- async transport
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_TranslatingStream(response.stream, request),
            request=request,
            extensions=response.extensions,
        )


class _TranslatingStream(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, request: httpx.Request) -> None:
        self._stream = stream
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _translated(self._request):
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        with _translated(self._request):
            await self._stream.aclose()

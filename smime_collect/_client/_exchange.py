"""One HTTP exchange with the endpoint: post the form, read the answer within its size limit.

``CollectClient`` decides when to send, how often and what an answer means; this is only the
HTTP half of one attempt (logged at DEBUG, failures translated into values), so it imports httpx
and sits on the I/O side of the line.

Every request takes one path: built once here, handed to an ``httpx.AsyncBaseTransport``.  When
the client owns its connection that is its own transport (``_transports``), posted to directly:
``AsyncClient.send``'s cookie jar, hooks and request merging cost more CPU per request than
everything else but the certificate parsing (measured: ``benchmarks/bench_client.py``).  When the
caller gives an ``http_client``, ``ThroughClient`` is the transport, and the caller's client
sends as it is configured (hooks, auth, proxies, headers), with our timeout and no redirects.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

import attrs
import httpx

from .._exceptions import ClientClosedError, ResponseFormatError
from .._polling import Failure, TimedOut
from ._failures import WallClock, network_failure, status_failure

__all__ = ["Exchange", "ThroughClient"]

_LOGGER = logging.getLogger("smime_collect")

_FORM_HEADERS: Final = {
    "Content-Type": "application/x-www-form-urlencoded",
    "Accept": "text/plain, */*",
    # Compressed bodies would be inflated chunk by chunk before max_response_bytes counts them;
    # certificate data barely compresses anyway.
    "Accept-Encoding": "identity",
    "User-Agent": "smime-collect",
}


class ThroughClient(httpx.AsyncBaseTransport):
    """A transport that sends through a caller's ``httpx.AsyncClient``, never closing it.

    The client's event hooks, auth, proxies, default headers and cookies apply; its redirect
    setting does not (a 307 would re-post the password wherever it points), nor its timeout
    (httpx's default of 5 s is too short for Sectigo): the CollectClient's applies.

    Args:
        client: The caller's client.
        timeout: The CollectClient's timeout.
    """

    def __init__(self, client: httpx.AsyncClient, timeout: httpx.Timeout) -> None:
        self.client = client
        self._timeout = timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the caller's client; the response is streamed.

        Raises:
            ClientClosedError: The caller's client has been closed.
        """
        if self.client.is_closed:
            raise ClientClosedError(
                "the http_client given to CollectClient is closed: keep it open while the "
                "CollectClient is in use"
            )
        built = self.client.build_request(
            request.method,
            request.url,
            content=request.content,
            headers=request.headers,
            timeout=self._timeout,
        )
        return await self.client.send(built, stream=True, follow_redirects=False)

    async def aclose(self) -> None:
        """Leave the caller's client open: it is the caller's to close."""


@attrs.frozen
class Exchange:
    """How a CollectSMIME form is posted and its answer read.

    Attributes:
        url: The endpoint URL.
        transport: What sends: the client's own transport, or a ``ThroughClient``.
        timeout: ``httpx.Timeout.as_dict()``, the request extension a transport reads.
        max_response_bytes: A longer body raises ResponseFormatError unread.
        wall_clock: The current UTC time, for an HTTP-date ``Retry-After``.
    """

    url: httpx.URL
    transport: httpx.AsyncBaseTransport
    timeout: dict[str, float | None]
    max_response_bytes: int
    wall_clock: WallClock

    async def post(self, body: bytes) -> httpx.Response:
        """Post an urlencoded form; the response is streamed, its body not read yet.

        Args:
            body: The form, password included.

        Returns:
            The response, to be closed by the caller.

        Raises:
            httpx.HTTPError: The request failed.
            ClientClosedError: A caller's http_client has been closed.
        """
        request = httpx.Request(
            "POST",
            self.url,
            content=body,
            headers=_FORM_HEADERS,
            extensions={"timeout": self.timeout},
        )
        response = await self.transport.handle_async_request(request)
        response.request = request  # as httpx.AsyncClient does with its transport's answer
        return response

    async def attempt(
        self, body: bytes, order: int, attempt: int, budget: float | None
    ) -> tuple[bytes, httpx.Response] | Failure | TimedOut:
        """Post the form and read the answer; an HTTP failure comes back as a value.

        Args:
            body: The form, password included.
            order: The order number, for messages and the log.
            attempt: Which attempt this is, from 1, for the log.
            budget: Seconds left before the caller's deadline, if it has one: the request in
                flight is cut there.

        Returns:
            The body with its (closed) response, the Failure of a network error or an HTTP
            error status, or TimedOut when the budget ran out first.

        Raises:
            ResponseFormatError: The body is longer than ``max_response_bytes``.
            ClientClosedError: A caller's http_client has been closed.
        """
        started = time.perf_counter()
        try:
            async with asyncio.timeout(budget):
                response = await self.post(body)
                try:
                    if not response.is_success:
                        _log_status(order, attempt, response.status_code, started)
                        return self.status_failure(response, order)
                    content = await self.read(response, order)
                finally:
                    await response.aclose()
        except TimeoutError:  # only asyncio.timeout raises the builtin here
            return TimedOut()
        except httpx.HTTPError as exc:
            _LOGGER.debug(
                "order %d attempt %d: %s after %.1f ms",
                order,
                attempt,
                type(exc).__name__,
                _elapsed_ms(started),
                extra={"order_number": order, "attempt": attempt},
            )
            return network_failure(exc, order)
        _log_status(order, attempt, response.status_code, started)
        return content, response

    def status_failure(self, response: httpx.Response, order: int) -> Failure:
        """Describe an HTTP error status, with no trace of the request body.

        Args:
            response: The response with the error status.
            order: The order number, for the message.

        Returns:
            The TransportError and what the retry decision needs.
        """
        # The cause carries the request; keep the password-bearing body out of it.
        response.request = httpx.Request("POST", self.url, headers=_FORM_HEADERS)
        return status_failure(response, order, self.url, self.wall_clock)

    async def read(self, response: httpx.Response, order: int) -> bytes:
        """Read the body, but never more than ``max_response_bytes`` of it.

        Args:
            response: The streamed response.
            order: The order number, for the message.

        Returns:
            The body.

        Raises:
            ResponseFormatError: The body is (or declares itself) longer than the limit.
            httpx.HTTPError: Reading failed.
        """
        limit = self.max_response_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdecimal() and int(declared) > limit:
            raise ResponseFormatError(
                f"order {order}: the response declares {int(declared)} bytes, over the "
                f"max_response_bytes limit of {limit}; raise the limit if this is expected"
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                # Stop here: closing the stream drops the connection, the rest is never read.
                raise ResponseFormatError(
                    f"order {order}: the response is longer than the max_response_bytes limit "
                    f"of {limit} bytes; raise the limit if this is expected"
                )
            chunks.append(chunk)
        return b"".join(chunks)


def _log_status(order: int, attempt: int, status: int, started: float) -> None:
    _LOGGER.debug(
        "order %d attempt %d: HTTP %d in %.1f ms",
        *(order, attempt, status, _elapsed_ms(started)),
        extra={"order_number": order, "attempt": attempt},
    )


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0

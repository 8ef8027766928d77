"""One HTTP exchange with the endpoint: post the form, read the answer within its size limit.

``CollectClient`` decides when to send, how often and what an answer means; this is only the
HTTP half of one attempt, so it imports httpx and sits on the I/O side of the line.
"""

from __future__ import annotations

from typing import Final

import attrs
import httpx

from .._exceptions import InvalidRequestError, ResponseFormatError
from ._failures import Failure, status_failure

__all__ = ["Exchange"]

_FORM_HEADERS: Final = {
    "Content-Type": "application/x-www-form-urlencoded",
    "Accept": "text/plain, */*",
    # Compressed bodies would be inflated chunk by chunk before max_response_bytes counts them;
    # certificate data barely compresses anyway.
    "Accept-Encoding": "identity",
    "User-Agent": "smime-collect",
}


@attrs.frozen
class Exchange:
    """How a CollectSMIME form is posted and its answer read.

    Attributes:
        url: The endpoint URL.
        http: The ``httpx.AsyncClient`` (the caller's, or the client's own).
        transport: The own client's transport, posted to directly; None sends through ``http``.
        timeout: ``httpx.Timeout.as_dict()``, the request extension a transport reads.
        max_response_bytes: A longer body raises ResponseFormatError unread.
    """

    url: httpx.URL
    http: httpx.AsyncClient
    transport: httpx.AsyncBaseTransport | None
    timeout: dict[str, float | None]
    max_response_bytes: int

    async def post(self, body: bytes) -> httpx.Response:
        """Post an urlencoded form; the response is streamed, its body not read yet.

        Args:
            body: The form, password included.

        Returns:
            The response, to be closed by the caller.

        Raises:
            httpx.HTTPError: The request failed.
        """
        if self.transport is None:
            if self.http.is_closed:
                raise InvalidRequestError(
                    "the http_client given to CollectClient is closed: keep it open while "
                    "the CollectClient is in use"
                )
            # The caller's client: our timeout (Sectigo is slow; httpx's default is 5 s), and
            # never a redirect, which would re-post the password wherever it points.
            request = self.http.build_request(
                "POST",
                self.url,
                content=body,
                headers=_FORM_HEADERS,
                timeout=httpx.Timeout(**self.timeout),
            )
            return await self.http.send(request, stream=True, follow_redirects=False)
        # With a client of our own, requests go straight to its transport (public httpx API):
        # AsyncClient.send's cookie jar and request merging cost more CPU per request than
        # everything else here but the certificate parsing (measured: benchmarks/bench_client.py).
        if self.http.is_closed:  # closed under us (aclose while a batch ran)
            raise httpx.ConnectError("the client has been closed")
        request = httpx.Request(
            "POST",
            self.url,
            content=body,
            headers=_FORM_HEADERS,
            extensions={"timeout": self.timeout},
        )
        response = await self.transport.handle_async_request(request)
        response.request = request
        return response

    def status_failure(self, response: httpx.Response, order: int) -> Failure:
        """Describe an HTTP error status, with no trace of the request body.

        Args:
            response: The response with the error status.
            order: The order number, for the message.

        Returns:
            The TransportError and what the retry policy needs.
        """
        # The cause carries the request; keep the password-bearing body out of it.
        response.request = httpx.Request("POST", self.url, headers=_FORM_HEADERS)
        return status_failure(response, order, self.url)

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

"""An httpx transport that runs an ASGI app in-process, with simulated broken connections.

httpx ships ``ASGITransport``, but it cannot drop a connection: an app can only answer. This one
gives the app the ``smime_collect.connection`` scope extension, and turns an abort into what httpx
raises for a real socket: ``RemoteProtocolError("Server disconnected without sending a
response.")`` before the response, or the same class while the body is being read after it.
"""

from collections.abc import AsyncIterator
from typing import Any, Final

import httpx

from ._asgi import CONNECTION_EXTENSION, ASGIApp, Message

__all__ = ["SimulatorTransport"]

_CLIENT_ADDRESS: Final = ("127.0.0.1", 50000)


class _Connection:
    """One request's connection: records what the app sends, and whether it dropped."""

    __slots__ = ("aborted", "body", "headers", "received", "request_body", "stalled", "status")

    def __init__(self, request_body: bytes) -> None:
        self.request_body = request_body
        self.received = False
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.aborted = False
        self.stalled = False

    async def receive(self) -> Message:
        if self.received:  # the app asked twice: the client has nothing more to say
            return {"type": "http.disconnect"}
        self.received = True
        return {"type": "http.request", "body": self.request_body, "more_body": False}

    async def send(self, message: Message) -> None:
        if self.aborted:
            return
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers", ()))
        elif message["type"] == "http.response.body":
            self.body.append(message.get("body", b""))

    async def abort(self) -> None:
        self.aborted = True

    async def stall(self, receive: object, seconds: float) -> None:
        # In-process there is no clock to run out: the client's timeout is taken as expired.
        del receive, seconds
        self.stalled = True


class _TruncatedStream(httpx.AsyncByteStream):
    """A body that ends early: yields what arrived, then fails like a closed socket."""

    def __init__(self, parts: list[bytes], request: httpx.Request, expected: str) -> None:
        self._parts = parts
        self._request = request
        self._expected = expected

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = 0
        for part in self._parts:
            received += len(part)
            yield part
        # The message httpcore gives for the same event on a real connection (h11).
        raise httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body: "
            f"received {received} bytes, expected {self._expected}",
            request=self._request,
        )


class SimulatorTransport(httpx.AsyncBaseTransport):
    """Serve an ASGI app (the simulator's) to an ``httpx.AsyncClient``, no socket involved.

    Args:
        app: The ASGI 3 app.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Run the app on one request.

        Args:
            request: The request.

        Returns:
            The app's response.

        Raises:
            httpx.RemoteProtocolError: The app dropped the connection before answering.
            httpx.ReadTimeout: The app stalled (``Fault.TIMEOUT``).
        """
        connection = _Connection(await request.aread())
        await self._app(_scope(request, connection), connection.receive, connection.send)
        return _response(request, connection)


def _scope(request: httpx.Request, connection: _Connection) -> dict[str, Any]:
    """The ASGI HTTP scope of ``request``, with the connection's abort and stall."""
    url = request.url
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": url.scheme,
        "path": url.path,
        "raw_path": url.raw_path.split(b"?", 1)[0],
        "query_string": url.query,
        "root_path": "",
        "headers": [(name.lower(), value) for name, value in request.headers.raw],
        "client": _CLIENT_ADDRESS,
        "server": (url.host, url.port or (443 if url.scheme == "https" else 80)),
        "extensions": {
            CONNECTION_EXTENSION: {"abort": connection.abort, "stall": connection.stall}
        },
    }


def _response(request: httpx.Request, connection: _Connection) -> httpx.Response:
    """What the app sent, as httpx would give it from a real socket (a drop raises)."""
    if connection.stalled:
        raise httpx.ReadTimeout(
            "simulated: the server did not answer before the read timeout", request=request
        )
    if connection.status is None:
        if connection.aborted:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        raise RuntimeError("the ASGI app returned without starting a response")
    stream: httpx.AsyncByteStream
    if connection.aborted:
        expected = dict(connection.headers).get(b"content-length", b"more").decode()
        stream = _TruncatedStream(connection.body, request, expected)
    else:
        stream = httpx.ByteStream(b"".join(connection.body))
    return httpx.Response(
        connection.status,
        headers=connection.headers,
        stream=stream,
        extensions={"http_version": b"HTTP/1.1"},
    )

"""ASGI plumbing shared by the simulator app and the servers that host it.

The app is plain ASGI 3, so any server can run it. Breaking a connection is not something ASGI
can express, so the hosts in this package (the in-process transport and ``serve()``) offer it
through a scope extension, described below.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final, Protocol
from urllib.parse import parse_qsl

__all__ = [
    "CONNECTION_EXTENSION",
    "ASGIApp",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "abort",
    "form_fields",
    "lifespan",
    "read_body",
    "stall",
]

# The ASGI scope extension through which a server lets the app break the connection: a mapping
# with two async callables, "abort" (close now) and "stall" (taking the receive callable and the
# most seconds to hold the connection silent, then close). The in-process transport and serve()
# provide it; under another ASGI server the app raises ConnectionAbortedError instead.
CONNECTION_EXTENSION: Final = "smime_collect.connection"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_MAX_REQUEST_BODY: Final = 64 * 1024
_FORM: Final = b"application/x-www-form-urlencoded"


class ASGIApp(Protocol):
    """An ASGI 3 application."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one connection scope."""


async def lifespan(receive: Receive, send: Send) -> None:
    """Answer ASGI lifespan startup and shutdown (nothing to set up: state lives in the Simulator).

    Args:
        receive: The lifespan scope's receive callable.
        send: Its send callable.
    """
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def read_body(receive: Receive) -> bytes | None:
    """Read the request body, up to 64 KiB.

    Args:
        receive: The http scope's receive callable.

    Returns:
        The body, or None when it passes the cap (the rest is left unread).
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > _MAX_REQUEST_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def form_fields(scope: Scope, body: bytes | None) -> list[tuple[str, str]] | None:
    """Decode an ``application/x-www-form-urlencoded`` body, as the endpoint reads it.

    Args:
        scope: The http scope (for its Content-Type header).
        body: The body, or None when it was too large.

    Returns:
        The fields in the order sent, or None when there is no body or it is not a form (the
        endpoint then sees no fields at all).
    """
    if body is None:
        return None
    for name, value in scope["headers"]:
        if name.lower() == b"content-type":
            if value.split(b";")[0].strip().lower() != _FORM:
                return None
            break
    else:
        return None
    return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)


def _connection_control(scope: Scope) -> dict[str, Any]:
    control = (scope.get("extensions") or {}).get(CONNECTION_EXTENSION)
    if control is None:
        raise ConnectionAbortedError("simulated broken connection (no connection control)")
    return dict(control)


async def abort(scope: Scope) -> None:
    """Close the connection now, through the host's connection control.

    Args:
        scope: The http scope.

    Raises:
        ConnectionAbortedError: The host offers no connection control.
    """
    await _connection_control(scope)["abort"]()


async def stall(scope: Scope, receive: Receive, seconds: float) -> None:
    """Keep the connection silent (at most ``seconds`` on a socket), then close it.

    Args:
        scope: The http scope.
        receive: Its receive callable (a socket host watches it for the client hanging up).
        seconds: The longest a socket host holds the connection.

    Raises:
        ConnectionAbortedError: The host offers no connection control.
    """
    await _connection_control(scope)["stall"](receive, seconds)

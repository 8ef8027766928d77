"""One failed attempt, described: the public error, and what the retry decision needs to know.

``CollectClient`` translates httpx's exceptions and HTTP error statuses here, at one boundary,
into ``TransportError`` with a hint, and pairs every error (Sectigo's too) with whether it is
transient, the server's ``Retry-After`` and whether it was a rate limit (429 or code -42), as a
``_polling.Failure``.  ``stops_batch`` says which errors end a whole ``collect_many``.  It imports
httpx for the types it reads, so it sits on the I/O side of the line.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TypeGuard

import httpx

from .. import _polling
from .._exceptions import CollectError, SectigoError, TransportError, short_reason
from .._polling import Failure

__all__ = [
    "log_reason",
    "network_failure",
    "restated",
    "sectigo_failure",
    "status_failure",
    "stops_batch",
]

WallClock = Callable[[], datetime]


def network_failure(exc: httpx.HTTPError, order: int) -> Failure:
    """Translate an httpx exception raised while sending or reading.

    Args:
        exc: What httpx raised.
        order: The order number, for the message.

    Returns:
        A TransportError (caused by ``exc``) with a hint; transient unless it cannot heal.
    """
    transient = _may_heal(exc)
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
    detail = str(exc) or type(exc).__name__
    reason = _system_reason(exc)
    if reason is not None and reason.lower() not in detail.lower():
        detail = f"{reason} ({detail})"  # "Connection refused (All connection attempts failed)"
    hint = (
        "the server's TLS certificate was not trusted: check verify= / --ca-bundle"
        if _is_certificate_failure(exc)
        else "the host name is not known: check base_url"
        if _is_unknown_host(exc)
        else "check the network and base_url"
        if transient
        else "check base_url and the proxy settings"
    )
    error = TransportError(f"order {order}: the request {kind}: {detail} -- {hint}")
    error.__cause__ = exc
    return Failure(error, transient=transient)


def status_failure(
    response: httpx.Response, order: int, url: httpx.URL, wall_clock: WallClock
) -> Failure:
    """Translate an HTTP error status.

    Args:
        response: The response, its ``request`` already stripped of the body.
        order: The order number, for the message.
        url: The endpoint URL, for the message.
        wall_clock: The current UTC time, for an HTTP-date ``Retry-After``.

    Returns:
        A TransportError with ``status_code`` (caused by an ``httpx.HTTPStatusError``).
    """
    status = response.status_code
    message = f"HTTP {status} {response.reason_phrase} from {url}"
    cause = httpx.HTTPStatusError(message, request=response.request, response=response)
    transient = _polling.is_transient_status(status)
    hint = (
        "the server is busy or failing: try again later"
        if transient
        else "check base_url and any proxy in between"
    )
    error = TransportError(f"order {order}: {message} -- {hint}", status_code=status)
    error.__cause__ = cause
    return Failure(
        error,
        transient=transient,
        retry_after=_retry_after(response, wall_clock),
        rate_limited=_polling.is_rate_limit(status_code=status),
    )


def sectigo_failure(
    error: SectigoError, response: httpx.Response, wall_clock: WallClock
) -> Failure:
    """Pair a negative CollectSMIME status with what the retry decision needs.

    Args:
        error: The error ``parse_response`` raised.
        response: The response it came in (for ``Retry-After``).
        wall_clock: The current UTC time, for an HTTP-date ``Retry-After``.

    Returns:
        The failure; transient for -14 and -42.
    """
    return Failure(
        error,
        transient=_polling.is_transient_code(error.code),
        retry_after=_retry_after(response, wall_clock),
        rate_limited=_polling.is_rate_limit(code=error.code),
    )


def stops_batch(error: BaseException) -> TypeGuard[SectigoError | TransportError]:
    """Whether an order's error ends its whole batch: every other order would fail alike.

    The one test for ``collect_many`` (no further request; every remaining order gets the
    error) and for the command line (exit status 2, a configuration error): a Sectigo answer
    about the account or the request's shape (-1, -2, -3, -16, -17), and a network failure that
    retrying cannot heal, such as a TLS certificate the client does not trust or a URL or proxy
    it cannot use.

    Args:
        error: Any error an order ended with.

    Returns:
        True for those errors, and for another order's error restated by ``restated``.
    """
    if _polling.is_account_level(error):
        return True
    if not isinstance(error, TransportError) or error.status_code is not None:
        return False
    cause = error.__cause__
    if isinstance(cause, TransportError):  # restated for another order of the batch
        return stops_batch(cause)
    return isinstance(cause, httpx.HTTPError) and not _may_heal(cause)


def restated(error: SectigoError | TransportError, order: int) -> CollectError:
    """The error that stopped a batch, said again for one of its orders that was not sent.

    Args:
        error: The error ``stops_batch`` accepted.
        order: The order number of the order not sent.

    Returns:
        The same Sectigo code about ``order``, or a TransportError saying why ``order`` was not
        sent; either caused by ``error``.
    """
    again: CollectError
    if isinstance(error, SectigoError):
        again = SectigoError.from_code(error.code, error.message, order)
    else:
        again = TransportError(f"order {order}: not sent, the batch stopped at: {error}")
    again.__cause__ = error
    return again


def log_reason(error: CollectError, order: int) -> str:
    """The error in a few words, for the log line that announces a retry of ``order``.

    Args:
        error: The error about to be retried.
        order: The order number the log line names already.

    Returns:
        The Sectigo code and message, or the transport error without its order and hint.
    """
    return short_reason(error, order)


def _retry_after(response: httpx.Response, wall_clock: WallClock) -> float | None:
    header = response.headers.get("retry-after")
    if header is None:
        return None
    return _polling.parse_retry_after(header, now=wall_clock())


def _may_heal(exc: httpx.HTTPError) -> bool:
    # Connection errors, timeouts and a connection closed mid-response (RemoteProtocolError)
    # may heal; a refused TLS certificate, a host name the DNS says does not exist, a URL or
    # proxy httpx cannot use, or a request it cannot write will not
    # (docs/explanation/retries.md, "What is retried").
    return (
        isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)
        and not _is_certificate_failure(exc)
        and not _is_unknown_host(exc)
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = exc
    for _ in range(8):  # walk __cause__/__context__, bounded
        if seen is None:
            return
        yield seen
        seen = seen.__cause__ or seen.__context__


def _is_certificate_failure(exc: BaseException) -> bool:
    return any(
        isinstance(seen, ssl.SSLCertVerificationError)
        # aiohttp wraps it: ClientConnectorCertificateError.certificate_error
        or isinstance(getattr(seen, "certificate_error", None), ssl.SSLCertVerificationError)
        for seen in _causes(exc)
    )


def _is_unknown_host(exc: BaseException) -> bool:
    # EAI_NONAME is the resolver's "no such name"; EAI_AGAIN (no answer now) may heal.
    return any(
        isinstance(seen, socket.gaierror) and seen.errno == socket.EAI_NONAME
        for seen in _causes(exc)
    )


def _system_reason(exc: BaseException) -> str | None:
    # The operating system's words for what failed ("Connection refused", "Name or service not
    # known"): httpcore reports a refused connection only as "All connection attempts failed".
    reason = None
    for seen in _causes(exc):
        if isinstance(seen, socket.gaierror) and seen.strerror:
            reason = seen.strerror
        elif (
            isinstance(seen, OSError)
            and not isinstance(seen, ssl.SSLError)  # its errno is OpenSSL's, not the system's
            and isinstance(seen.errno, int)
            and seen.errno > 0
        ):
            reason = os.strerror(seen.errno)
    return reason

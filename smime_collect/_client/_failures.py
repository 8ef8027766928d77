"""One failed attempt, described: the public error, and what the retry policy needs to know.

``CollectClient`` translates httpx's exceptions and HTTP error statuses here, at one boundary,
into ``TransportError`` with a hint, and pairs every error (Sectigo's too) with whether it is
transient, the server's ``Retry-After`` and whether it was a rate limit (429 or code -42).
It imports httpx for the types it reads, so it sits on the I/O side of the line.
"""

from __future__ import annotations

import ssl
from datetime import UTC, datetime

import attrs
import httpx

from .. import _polling
from .._exceptions import CollectError, SectigoError, TransportError

__all__ = ["Failure", "log_reason", "network_failure", "sectigo_failure", "status_failure"]


@attrs.frozen
class Failure:
    """One failed attempt: the public error, and what the retry policy needs to know about it."""

    error: CollectError
    transient: bool
    retry_after: float | None = None
    rate_limited: bool = False


def network_failure(exc: httpx.HTTPError, order: int) -> Failure:
    """Translate an httpx exception raised while sending or reading.

    Args:
        exc: What httpx raised.
        order: The order number, for the message.

    Returns:
        A TransportError (caused by ``exc``) with a hint; transient unless it cannot heal.
    """
    # Connection errors, timeouts and a connection closed mid-response (RemoteProtocolError)
    # are transient; a refused TLS certificate or a malformed URL will not heal by retrying.
    transient = isinstance(
        exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError
    ) and not _is_certificate_failure(exc)
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
    detail = str(exc) or type(exc).__name__
    hint = (
        "the server's TLS certificate was not trusted: check verify= / --ca-bundle"
        if _is_certificate_failure(exc)
        else "check the network and base_url; it was retried"
        if transient
        else "check base_url and the proxy settings"
    )
    error = TransportError(f"order {order}: the request {kind}: {detail} -- {hint}")
    error.__cause__ = exc
    return Failure(error, transient=transient)


def status_failure(response: httpx.Response, order: int, url: httpx.URL) -> Failure:
    """Translate an HTTP error status.

    Args:
        response: The response, its ``request`` already stripped of the body.
        order: The order number, for the message.
        url: The endpoint URL, for the message.

    Returns:
        A TransportError with ``status_code`` (caused by an ``httpx.HTTPStatusError``).
    """
    status = response.status_code
    message = f"HTTP {status} {response.reason_phrase} from {url}"
    cause = httpx.HTTPStatusError(message, request=response.request, response=response)
    transient = _polling.is_transient_status(status)
    hint = (
        "the server is busy or failing; it was retried, try again later"
        if transient
        else "check base_url and any proxy in between"
    )
    error = TransportError(f"order {order}: {message} -- {hint}", status_code=status)
    error.__cause__ = cause
    return Failure(
        error,
        transient=transient,
        retry_after=_retry_after(response),
        rate_limited=_polling.is_rate_limit(status_code=status),
    )


def sectigo_failure(error: SectigoError, response: httpx.Response) -> Failure:
    """Pair a negative CollectSMIME status with what the retry policy needs.

    Args:
        error: The error ``parse_response`` raised.
        response: The response it came in (for ``Retry-After``).

    Returns:
        The failure; transient for -14 and -42.
    """
    return Failure(
        error,
        transient=_polling.is_transient_code(error.code),
        retry_after=_retry_after(response),
        rate_limited=_polling.is_rate_limit(code=error.code),
    )


def log_reason(error: CollectError, order: int) -> str:
    """The error in a few words, for the log line that announces a retry of ``order``.

    Args:
        error: The error about to be retried.
        order: The order number the log line names already.

    Returns:
        The Sectigo code and message, or the transport error without its order and hint.
    """
    if isinstance(error, SectigoError):
        return f"Sectigo error {error.code} ({error.message or 'no message'})"
    # TransportError messages start with "order N: "; the log line names the order already.
    return str(error).split(" -- ", 1)[0].removeprefix(f"order {order}: ")


def _retry_after(response: httpx.Response) -> float | None:
    return _polling.parse_retry_after(response.headers.get("retry-after"), now=datetime.now(UTC))


def _is_certificate_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):  # walk __cause__/__context__, bounded
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        certificate_error = getattr(seen, "certificate_error", None)  # aiohttp's wrapper
        if isinstance(certificate_error, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False

"""``CollectClient``'s option checks: a bad option is an InvalidRequestError, and nothing is sent.

The constructor's URL, timeout, count, rate and TLS options, and the credentials ``from_env``
reads (the polling options check themselves: ``_polling.PollPolicy``).  It
imports httpx only to build the ``httpx.URL``, ``httpx.Timeout`` and SSL context the client
runs with, and reads a file only for a ``*_FILE`` credential: it sits on the I/O side of the line.
"""

from __future__ import annotations

import math
import os
import re
import ssl
from collections.abc import Mapping
from pathlib import Path

import httpx

from .. import _rules
from .._exceptions import InvalidRequestError

__all__ = [
    "check_count",
    "check_timeout",
    "check_url",
    "credential_from_env",
    "request_interval",
    "ssl_context_for",
]


def credential_from_env(env: Mapping[str, str], name: str) -> str:
    """Read one credential from ``name``, or from the file named by ``<name>_FILE``.

    Args:
        env: The environment to read.
        name: The variable, e.g. ``SECTIGO_LOGIN_NAME``.

    Returns:
        The value; a file's trailing newline is stripped.

    Raises:
        InvalidRequestError: Neither variable is set, or the file cannot be read or holds
            nothing (no credential is empty, and a request with one would only count towards
            locking the account).
    """
    value = env.get(name)
    if value:
        return value
    path = env.get(f"{name}_FILE")
    if not path:
        raise InvalidRequestError(f"{name} is not set: set {name} or {name}_FILE (a file path)")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(
            f"{name}_FILE names {path!r}, which cannot be read ({type(exc).__name__}): "
            "check the path and its permissions"
        ) from None
    value = text.rstrip("\r\n")
    if not value:
        raise InvalidRequestError(f"{name}_FILE names {path!r}, which is empty")
    return value


def check_url(base_url: object, *, allow_insecure_http: bool) -> httpx.URL:
    """Check the endpoint URL: HTTPS with a host, no credentials, no CollectSMIME fields.

    Args:
        base_url: The URL as given.
        allow_insecure_http: Accept ``http://`` (tests and the simulator).

    Returns:
        The parsed URL.

    Raises:
        InvalidRequestError: The URL is unusable; its userinfo is never echoed.
    """
    # Credentials in the URL's userinfo are never echoed, whatever else is wrong with it.
    shown = re.sub(r"//[^/?#]*@", "//***@", str(base_url))
    try:
        url = httpx.URL(base_url)  # type: ignore[arg-type]  # checked just below
    except (TypeError, httpx.InvalidURL):
        raise InvalidRequestError(f"base_url {shown!r} is not a URL") from None
    if url.userinfo:
        raise InvalidRequestError("base_url must not carry credentials: pass login_name instead")
    if set(url.params) & {*_rules.FIELD.REQUIRED, *_rules.FIELD.OPTIONAL}:
        # Fields belong in the POST body: a query string would put them in logs and proxies.
        raise InvalidRequestError(
            "base_url must not carry CollectSMIME fields in its query string: pass them as "
            "arguments (they travel in the POST body)"
        )
    if url.scheme == "http" and not allow_insecure_http:
        raise InvalidRequestError(
            f"base_url {shown!r} is plain HTTP: Sectigo refuses it (code -1) and the "
            "password would travel in clear; use https:// (allow_insecure_http=True for tests)"
        )
    if url.scheme not in {"http", "https"} or not url.host:
        raise InvalidRequestError(f"base_url {shown!r} must be an https:// URL with a host")
    return url


def check_timeout(timeout: object) -> httpx.Timeout:
    """Check the request timeout.

    Args:
        timeout: Positive seconds, or an ``httpx.Timeout`` (used as is).

    Returns:
        The timeout for every phase of a request.

    Raises:
        InvalidRequestError: Not a positive finite number nor an ``httpx.Timeout``.
    """
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if not _positive(timeout):
        raise InvalidRequestError(
            f"timeout must be a positive number of seconds or an httpx.Timeout, not {timeout!r}"
        )
    return httpx.Timeout(float(timeout))  # type: ignore[arg-type]  # _positive checked it


def check_count(name: str, value: object, *, minimum: int) -> None:
    """Check an integer option such as ``max_retries``.

    Args:
        name: The option's name, for the message.
        value: Its value.
        minimum: The smallest value allowed.

    Raises:
        InvalidRequestError: Not an int (a bool is not one here), or below ``minimum``.
    """
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidRequestError(f"{name} must be an int >= {minimum}, not {value!r}")


def request_interval(requests_per_second: float | None) -> float | None:
    """Turn the optional rate limit into the seconds between request starts.

    Args:
        requests_per_second: None for no limit, or a positive number.

    Returns:
        None, or ``1 / requests_per_second``.

    Raises:
        InvalidRequestError: Not None and not a positive finite number.
    """
    if requests_per_second is None:
        return None
    if not _positive(requests_per_second):
        raise InvalidRequestError(
            f"requests_per_second must be a positive number, not {requests_per_second!r}"
        )
    return 1.0 / requests_per_second


def ssl_context_for(verify: object) -> ssl.SSLContext | bool:
    """Turn the ``verify=`` option into what the default transport takes.

    Args:
        verify: True (certifi's CAs), False, an ``ssl.SSLContext``, or a PEM CA bundle's path.

    Returns:
        An SSL context, or False for no verification.

    Raises:
        InvalidRequestError: The bundle cannot be read, or ``verify`` is of another type.
    """
    if isinstance(verify, ssl.SSLContext) or verify is False:
        return verify
    if verify is True:
        return httpx.create_ssl_context()
    if isinstance(verify, str | os.PathLike):
        try:
            return ssl.create_default_context(cafile=os.fspath(verify))
        except (OSError, ssl.SSLError) as exc:
            raise InvalidRequestError(
                f"verify={verify!r} is not a readable PEM CA bundle ({exc})"
            ) from None
    raise InvalidRequestError(
        f"verify must be a bool, a CA bundle path or an SSLContext, not {verify!r}"
    )


def _positive(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )

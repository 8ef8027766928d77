"""SANS-I/O: when to retry, how long to wait, and when to poll again.

Pure functions over numbers and strings: no sockets, no clock, no sleeping. The client feeds them
the facts (attempt number, a ``Retry-After`` header, the time left, a random number in ``[0, 1)``)
and does the waiting itself, so every decision here is tested without waiting.

What is transient (CONTRACT section 5): connection errors and timeouts (the client decides those,
they are exceptions, not values), HTTP 429/500/502/503/504, and Sectigo codes -14 (unknown error)
and -42 (call limit reached).  Nothing else is retried: CollectSMIME only reads, so repeating its
POST is safe, but repeating a failed login locks accounts (the -16 message says so).
"""

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final, TypeGuard

import attrs

from . import _rules
from ._exceptions import SectigoError

__all__ = [
    "RATE_LIMIT_HTTP_STATUSES",
    "TRANSIENT_HTTP_STATUSES",
    "RetryPolicy",
    "is_account_level",
    "is_account_level_code",
    "is_rate_limit",
    "is_transient_code",
    "is_transient_status",
    "next_poll_delay",
    "parse_retry_after",
    "reserve_slot",
    "retry_delay",
]

# RFC 6585 section 4 (429 Too Many Requests) and RFC 9110 section 15.6 (500, 502 Bad Gateway,
# 503 Service Unavailable, 504 Gateway Timeout) are worth another try; 501 and every other 4xx not.
TRANSIENT_HTTP_STATUSES: Final = frozenset({429, 500, 502, 503, 504})

# Answers that mean "the whole account is calling too fast", not "this request failed".
RATE_LIMIT_HTTP_STATUSES: Final = frozenset({429})


def is_transient_status(status_code: int) -> bool:
    """Whether an HTTP error status is worth retrying.

    Args:
        status_code: The HTTP status of a response that was not a success.

    Returns:
        True for 429, 500, 502, 503 and 504.
    """
    return status_code in TRANSIENT_HTTP_STATUSES


def is_transient_code(code: int) -> bool:
    """Whether a Sectigo status code is worth retrying (-14 and -42).

    Args:
        code: A negative CollectSMIME status code.

    Returns:
        True for the codes ``_rules.CODES`` marks transient.
    """
    return _rules.code_info(code).transient


def is_account_level_code(code: int) -> bool:
    """Whether a Sectigo code concerns the account, so every other order would fail the same way.

    Args:
        code: A negative CollectSMIME status code.

    Returns:
        True for the codes ``_rules.CODES`` marks account-level (-1, -2, -3, -16, -17).
    """
    return _rules.code_info(code).account_level


def is_account_level(error: BaseException) -> TypeGuard[SectigoError]:
    """Whether an error stops a whole batch: the account or the request's shape failed.

    Args:
        error: Any error an order ended with.

    Returns:
        True for a SectigoError whose code is account-level (-1, -2, -3, -16, -17).
    """
    return isinstance(error, SectigoError) and is_account_level_code(error.code)


def is_rate_limit(*, status_code: int | None = None, code: int | None = None) -> bool:
    """Whether a failure says the account calls too fast (HTTP 429 or Sectigo -42).

    Such a failure slows the whole client, not just the request that saw it.

    Args:
        status_code: The HTTP status, if the failure was an HTTP status.
        code: The Sectigo code, if the failure was a negative status line.

    Returns:
        True for HTTP 429 and for -42.
    """
    return status_code in RATE_LIMIT_HTTP_STATUSES or (
        code is not None and _rules.code_info(code).rate_limited
    )


def _positive_finite(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        # ValueError, not InvalidRequestError: the client re-raises with its own wording.
        raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")


@attrs.frozen
class RetryPolicy:
    """How transient failures are retried.

    Attributes:
        max_retries: Retries after the first attempt (0 disables retrying).
        base_delay: The backoff before the first retry, before jitter.
        max_delay: The cap of the exponential backoff.
        min_delay: The floor of every wait, so ``Retry-After: 0`` or a zero jitter draw never
            turns into a busy loop.
        max_retry_after: The most a server's ``Retry-After`` is obeyed: an absurd one (86400 s)
            is clamped rather than silently hanging the caller for a day.
    """

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 30.0
    min_delay: float = 0.1
    max_retry_after: float = 120.0

    def __attrs_post_init__(self) -> None:
        if (
            not isinstance(self.max_retries, int)
            or isinstance(self.max_retries, bool)
            or self.max_retries < 0
        ):
            raise ValueError(f"max_retries must be an int >= 0, not {self.max_retries!r}")
        for name in ("base_delay", "max_delay", "min_delay", "max_retry_after"):
            _positive_finite(name, getattr(self, name))


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Read a ``Retry-After`` header (RFC 9110 section 10.2.3) as seconds from ``now``.

    Both forms are accepted: delta-seconds (``120``) and an HTTP-date
    (``Wed, 21 Oct 2015 07:28:00 GMT``).  A date in the past means "now" (0 seconds).

    Args:
        value: The header's value, or None when there was none.
        now: The current time, timezone-aware (the client passes the wall clock).

    Returns:
        The seconds to wait (>= 0), or None when the header is absent or unreadable
        (an unreadable header is ignored: the backoff applies instead).
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdecimal() and text.isascii():
        # delta-seconds = 1*DIGIT; cap the digits so "9" * 5000 cannot make a huge int.
        return float(text[:12])
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" or an obsolete zone: RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def retry_delay(
    policy: RetryPolicy,
    retry: int,
    random: float,
    *,
    retry_after: float | None = None,
    remaining: float | None = None,
) -> float:
    """How long to wait before retry number ``retry`` (0 for the first retry).

    Exponential backoff with full jitter (``random * min(max_delay, base_delay * 2**retry)``),
    floored at ``min_delay``; a server's ``Retry-After`` is a lower bound, clamped to
    ``max_retry_after``; the result never passes ``remaining`` (the caller's deadline).

    Args:
        policy: The retry policy.
        retry: Which retry this is, from 0.
        random: A number in ``[0, 1)`` (injected so tests are deterministic).
        retry_after: The server's ``Retry-After`` in seconds, if it sent one.
        remaining: Seconds left before the caller's deadline, if it has one.

    Returns:
        The seconds to wait, >= 0.
    """
    ceiling = min(policy.max_delay, policy.base_delay * 2.0 ** min(retry, 64))
    delay = max(policy.min_delay, random * ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.max_retry_after))
    if remaining is not None:
        delay = min(delay, max(0.0, remaining))
    return delay


def next_poll_delay(
    poll: int,
    random: float,
    *,
    poll_interval: float,
    max_poll_interval: float,
    remaining: float | None = None,
) -> float:
    """How long to wait after poll number ``poll`` (from 0) answered "not ready yet".

    The nominal interval doubles from ``poll_interval`` up to ``max_poll_interval``; the wait is
    drawn between half the nominal interval and the whole of it ("equal jitter"), but never below
    ``poll_interval``, so the first wait is exactly ``poll_interval`` and many orders polled
    together drift apart instead of hitting Sectigo in lockstep.  It never passes ``remaining``.

    Args:
        poll: How many polls answered "not ready" before this one, minus one (0 after the first).
        random: A number in ``[0, 1)``.
        poll_interval: The first wait, in seconds.
        max_poll_interval: The longest wait, in seconds (>= poll_interval).
        remaining: Seconds left before the deadline, if any.

    Returns:
        The seconds to wait, >= 0.
    """
    nominal = min(max_poll_interval, poll_interval * 2.0 ** min(poll, 64))
    low = max(poll_interval, nominal / 2)
    delay = low + random * (nominal - low)
    if remaining is not None:
        delay = min(delay, max(0.0, remaining))
    return delay


def reserve_slot(next_free: float, now: float, interval: float) -> tuple[float, float]:
    """Book the next start time under a requests-per-second limit shared by many callers.

    Args:
        next_free: The earliest start time not yet booked (clock seconds).
        now: The current clock time.
        interval: Seconds between two request starts (``1 / requests_per_second``).

    Returns:
        ``(start, next_free)``: when this request may start, and the new earliest free time.
    """
    start = max(next_free, now)
    return start, start + interval

"""SANS-I/O: when to retry, how long to wait, and when to poll again.

Pure functions over frozen values: no sockets, no clock, no sleeping.  The client passes in the
facts (a failed attempt, the retry count, the time ``now`` on its clock, the deadline, a random
number in ``[0, 1)``), gets a decision back (``Retry`` or ``GiveUp``, ``PollAgain`` or
``TimedOut``) and does the waiting itself, so every decision here is tested without waiting.
``docs/explanation/retries.md`` tells the whole story in prose.

What is transient: connection errors and timeouts (the client translates those, they are
exceptions, not values), HTTP 429/500/502/503/504, and Sectigo codes -14 (unknown error) and -42
(call limit reached).  Nothing else is retried: CollectSMIME only reads, so repeating its POST is
safe, but repeating a failed login locks accounts (the -16 message says so).
"""

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final, TypeGuard

import attrs

from . import _rules
from ._exceptions import CollectError, InvalidRequestError, SectigoError

__all__ = [
    "RATE_LIMIT_HTTP_STATUSES",
    "TRANSIENT_HTTP_STATUSES",
    "Failure",
    "GiveUp",
    "PollAgain",
    "PollPolicy",
    "Retry",
    "RetryPolicy",
    "TimedOut",
    "decide_poll",
    "decide_retry",
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
    """Whether an error is a Sectigo answer about the account or the request's shape.

    The client's ``stops_batch`` adds the failures that are not Sectigo's (an untrusted TLS
    certificate, a closed client): together they are what ends a whole batch.

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


# -- the policies ----------------------------------------------------------------------------


def _seconds(name: str, value: object) -> None:
    if not (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    ):
        raise InvalidRequestError(f"{name} must be a positive number of seconds, not {value!r}")


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

    Raises:
        InvalidRequestError: A count that is not an int >= 0, or a delay that is not a
            positive finite number of seconds.
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
            raise InvalidRequestError(f"max_retries must be an int >= 0, not {self.max_retries!r}")
        for name in ("base_delay", "max_delay", "min_delay", "max_retry_after"):
            _seconds(name, getattr(self, name))


@attrs.frozen
class PollPolicy:
    """How an order is polled until its certificate is there.

    Attributes:
        timeout: Seconds before giving up (per order).
        poll_interval: The first wait between polls.
        max_poll_interval: The longest wait between polls.

    Raises:
        InvalidRequestError: A value that is not a positive finite number of seconds, or a
            longest wait below the first.
    """

    timeout: float = 600.0
    poll_interval: float = 5.0
    max_poll_interval: float = 60.0

    def __attrs_post_init__(self) -> None:
        for name in ("timeout", "poll_interval", "max_poll_interval"):
            _seconds(name, getattr(self, name))
        if self.max_poll_interval < self.poll_interval:
            raise InvalidRequestError(
                f"max_poll_interval ({self.max_poll_interval}) is below poll_interval "
                f"({self.poll_interval})"
            )


# -- the facts and the decisions ------------------------------------------------------------


@attrs.frozen
class Failure:
    """One failed attempt: the public error, and what the retry decision needs to know about it.

    Attributes:
        error: The error to raise if this is the last attempt.
        transient: Whether the same request may succeed later.
        retry_after: The server's ``Retry-After`` in seconds, if it sent one.
        rate_limited: A 429 or -42: the account, not the request, is over its limit.
    """

    error: CollectError
    transient: bool
    retry_after: float | None = None
    rate_limited: bool = False


@attrs.frozen
class Retry:
    """Send the request again after ``delay`` seconds.

    Attributes:
        delay: This request's own wait; 0 when the wait is the account's (``slow_down_until``).
        slow_down_until: For a 429 or -42: the time (on the client's clock) before which no
            request of the client may start.
    """

    delay: float
    slow_down_until: float | None = None


@attrs.frozen
class GiveUp:
    """Stop retrying: ``error`` is the answer.

    Attributes:
        error: The last failure's error.
        slow_down_until: As in ``Retry``: a 429 or -42 slows the client even when its own
            request gives up.
    """

    error: CollectError
    slow_down_until: float | None = None


@attrs.frozen
class PollAgain:
    """Poll again after ``delay`` seconds.

    Attributes:
        delay: The wait, never past the deadline.
    """

    delay: float


@attrs.frozen
class TimedOut:
    """The deadline has passed: send nothing more for this order."""


def decide_retry(
    policy: RetryPolicy,
    retry: int,
    failure: Failure,
    *,
    now: float,
    deadline: float | None = None,
    random: float,
) -> Retry | GiveUp:
    """Decide what follows a failed attempt: retry after a wait, or give up.

    Args:
        policy: The retry policy.
        retry: Retries made so far for this request (0 after the first attempt failed).
        failure: What went wrong.
        now: The current time on the client's clock.
        deadline: When the caller stops waiting (``wait_for_certificate``), if it does.
        random: A number in ``[0, 1)`` for the jitter.

    Returns:
        ``GiveUp`` for a failure that will not heal or when the retries are used up; otherwise
        ``Retry``, whose own wait never passes the deadline.  A rate limit's wait is the whole
        client's (``slow_down_until``, not clamped: other requests have no such deadline).
    """
    delay = retry_delay(policy, retry, random, retry_after=failure.retry_after)
    slow_down_until = now + delay if failure.rate_limited else None
    if not failure.transient or retry >= policy.max_retries:
        return GiveUp(failure.error, slow_down_until)
    if failure.rate_limited:
        return Retry(0.0, slow_down_until)  # the client's pacing does the waiting, for everyone
    if deadline is not None:
        delay = min(delay, max(0.0, deadline - now))
    return Retry(delay)


def decide_poll(
    policy: PollPolicy, poll: int, *, now: float, deadline: float, random: float
) -> PollAgain | TimedOut:
    """Decide what follows a "not ready yet" answer: poll again after a wait, or stop.

    Args:
        policy: The polling policy.
        poll: The polls that answered "not ready" before this one (0 after the first).
        now: The current time on the client's clock.
        deadline: When the order's time is up.
        random: A number in ``[0, 1)`` for the jitter.

    Returns:
        ``TimedOut`` when the deadline has passed, else ``PollAgain`` with a wait that grows
        from ``poll_interval`` towards ``max_poll_interval`` and never passes the deadline.
    """
    remaining = deadline - now
    if remaining <= 0:
        return TimedOut()
    return PollAgain(
        next_poll_delay(
            poll,
            random,
            poll_interval=policy.poll_interval,
            max_poll_interval=policy.max_poll_interval,
            remaining=remaining,
        )
    )


# -- the arithmetic ---------------------------------------------------------------------------


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Read a ``Retry-After`` header (RFC 9110 section 10.2.3) as seconds from ``now``.

    Both forms are accepted: delta-seconds (``120``) and an HTTP-date
    (``Wed, 21 Oct 2015 07:28:00 GMT``).  A date in the past means "now" (0 seconds).

    Args:
        value: The header's value, or None when there was none.
        now: The current time, timezone-aware (the client passes its wall clock).

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

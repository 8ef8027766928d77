"""``CollectClient``'s constructor options, checked once and kept as one frozen value.

``client_options`` checks each option (``_config``'s checks: a bad one is an InvalidRequestError
before anything is sent) and settles what they mean together: which ``max_retries`` wins over a
given ``retry_policy``, and how long one request may hold its slot in the account budget.
``account_budget`` picks the budget the client waits on: the one given, or its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Final

import attrs
import httpx

from .._polling import RetryPolicy
from ._budget import AccountBudget, LocalBudget
from ._config import check_count, check_timeout, check_url, request_interval

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_URL",
    "ClientOptions",
    "account_budget",
    "client_options",
]

DEFAULT_URL: Final = "https://secure.trust-provider.com/products/download/CollectSMIME"
DEFAULT_MAX_RESPONSE_BYTES: Final = 4 * 1024 * 1024


class _Default(int):
    """An int that is the default itself: ``max_retries=3`` given is not the default left alone.

    The signature shows the documented default (3) while the constructor can still tell whether
    the caller passed ``max_retries``, so that ``retry_policy=RetryPolicy(max_retries=10)``
    alone keeps its 10.
    """

    __slots__ = ()


DEFAULT_MAX_RETRIES: Final = _Default(3)


@attrs.frozen
class ClientOptions:
    """The options a client runs with, each checked.

    Attributes:
        url: The endpoint's URL.
        login_name: The account's login name (with the URL, the account budget's key).
        timeout: The timeout of every phase of a request.
        policy: The retry policy, with ``max_retries`` applied when it was given.
        max_concurrency: Requests this client has in flight at once.
        max_response_bytes: The longest response body read.
        requests_per_second: The start rate of the client's own budget, or None.
        hold: The longest one request may hold its slot in the account budget, in seconds:
            every phase's timeout, one after another.
        sleep: The coroutine that waits.
        clock: A monotonic clock in seconds.
        random: A source of numbers in ``[0, 1)`` for jitter.
        wall_clock: The current time, for an HTTP-date ``Retry-After``.
    """

    url: httpx.URL
    login_name: str
    timeout: httpx.Timeout
    policy: RetryPolicy
    max_concurrency: int
    max_response_bytes: int
    requests_per_second: float | None
    hold: float
    sleep: Callable[[float], Awaitable[object]]
    clock: Callable[[], float]
    random: Callable[[], float]
    wall_clock: Callable[[], datetime]


def client_options(
    *,
    base_url: object,
    login_name: str,
    allow_insecure_http: bool,
    timeout: object,
    max_retries: int,
    max_concurrency: int,
    max_response_bytes: int,
    requests_per_second: float | None,
    retry_policy: RetryPolicy | None,
    sleep: Callable[[float], Awaitable[object]],
    clock: Callable[[], float],
    random: Callable[[], float],
    wall_clock: Callable[[], datetime],
) -> ClientOptions:
    """Check the constructor's options and settle what they mean together.

    Args:
        base_url: The endpoint's URL as given.
        login_name: The account's login name (checked with the password, before).
        allow_insecure_http: Accept an ``http://`` URL.
        timeout: Seconds, or an ``httpx.Timeout``.
        max_retries: Retries of a transient failure; ``DEFAULT_MAX_RETRIES`` itself when the
            caller left it alone, so that a given ``retry_policy`` keeps its own.
        max_concurrency: Requests in flight at once.
        max_response_bytes: The longest response body read.
        requests_per_second: The start rate, or None.
        retry_policy: The backoff tuning, or None for the default.
        sleep: The coroutine that waits.
        clock: A monotonic clock in seconds.
        random: A source of numbers in ``[0, 1)`` for jitter.
        wall_clock: The current time, timezone-aware.

    Returns:
        The checked options.

    Raises:
        InvalidRequestError: An option is out of range; the URL's userinfo is never echoed.
    """
    url = check_url(base_url, allow_insecure_http=allow_insecure_http)
    request_timeout = check_timeout(timeout)
    check_count("max_concurrency", max_concurrency, minimum=1)
    check_count("max_response_bytes", max_response_bytes, minimum=1)
    policy = retry_policy if retry_policy is not None else RetryPolicy()
    if max_retries is not DEFAULT_MAX_RETRIES:  # given, even as 3: it wins over the policy
        check_count("max_retries", max_retries, minimum=0)
        policy = attrs.evolve(policy, max_retries=max_retries)
    request_interval(requests_per_second)
    hold = _hold(request_timeout)
    return ClientOptions(
        *(url, login_name, request_timeout, policy, max_concurrency, max_response_bytes),
        *(requests_per_second, hold, sleep, clock, random, wall_clock),
    )


def account_budget(
    options: ClientOptions, budget: AccountBudget | None
) -> tuple[AccountBudget, asyncio.Semaphore | None]:
    """The budget a client waits on, and the client's own slots when that budget is shared.

    Args:
        options: The client's options.
        budget: The budget given, or None for the client's own ``LocalBudget``.

    Returns:
        The budget, and the semaphore that keeps a shared budget's client within its own
        ``max_concurrency`` (None for the client's own budget, which bounds it already).
    """
    if budget is not None:
        return budget, asyncio.Semaphore(options.max_concurrency)
    own = LocalBudget(
        max_concurrency=options.max_concurrency,
        requests_per_second=options.requests_per_second,
        clock=options.clock,
        sleep=options.sleep,
        wall_clock=options.wall_clock,
    )
    return own, None


def _hold(timeout: httpx.Timeout) -> float:
    phases = (timeout.connect, timeout.write, timeout.read, timeout.pool)
    return sum(60.0 if phase is None else phase for phase in phases)

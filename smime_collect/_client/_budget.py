"""The account budget: what every request for one Sectigo account waits for, across clients.

A budget is kept per account, per (base URL, login name): the requests in flight, the start rate,
the slow-down after a 429 or -42 (``docs/explanation/retries.md``) and the login guard.  The
login guard keeps a rejected password from being sent again and again, which locks Sectigo
accounts and blocks source addresses: after a -16 no request for the account is sent for
``login_cooldown`` seconds; then one request probes, and the others wait for its answer.  With
``probe_first``, an account whose login has not been answered yet starts the same way, with one
probe, so that a wrong password is sent once, not once per slot (``RedisBudget`` does so by
default: a fleet starts many processes at once).

``AccountBudget`` is the interface ``CollectClient`` calls; ``LocalBudget`` keeps it in this
process (``smime_collect.redis.RedisBudget`` keeps it on a Redis server, for many processes).
Nothing derived from the password is kept: a budget knows an account by its login name.
"""

from __future__ import annotations

import asyncio
import enum
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol

import attrs

from .._exceptions import AuthenticationError, InvalidRequestError
from ._config import check_count, request_interval
from ._pacing import Pacer

__all__ = [
    "AccountBudget",
    "BudgetTicket",
    "LocalBudget",
    "LoginVerdict",
    "login_locked",
]


class LoginVerdict(enum.Enum):
    """What one request's answer says about the account's login."""

    #: The endpoint answered past its login check: the password is right.
    ACCEPTED = "accepted"
    #: A -16: the login was rejected.
    REJECTED = "rejected"
    #: No answer about the login (a network failure, a 5xx, a -14 or -42).
    UNKNOWN = "unknown"


@attrs.frozen
class BudgetTicket:
    """A request slot held for one account, to be given back with ``AccountBudget.release``.

    Attributes:
        base_url: The account's endpoint URL.
        login_name: The account's login name.
        probe: Whether this request is the one that tries the login for everybody.
        token: The budget's own handle on the slot (a lease id on Redis), or None.
    """

    base_url: str
    login_name: str
    probe: bool = False
    token: str | None = None


class AccountBudget(Protocol):
    """What a ``CollectClient`` asks before and after each request (``budget=``)."""

    async def acquire(
        self, base_url: str, login_name: str, *, max_wait: float | None, hold: float
    ) -> BudgetTicket | None:
        """Wait for a request slot for the account: concurrency, start rate, slow-down, login.

        Args:
            base_url: The account's endpoint URL.
            login_name: The account's login name.
            max_wait: Seconds the caller may wait, or None.
            hold: The longest the caller may hold the slot (its request timeout).

        Returns:
            The ticket to release, or None when ``max_wait`` ran out first (nothing is held).

        Raises:
            AuthenticationError: The account's login was rejected within ``login_cooldown``.
            BudgetUnavailableError: The budget's store cannot be reached.
        """
        ...

    async def release(self, ticket: BudgetTicket, verdict: LoginVerdict) -> None:
        """Give the slot back, with what the answer said about the login.

        Args:
            ticket: What ``acquire`` returned.
            verdict: What the answer said about the login.
        """
        ...

    async def slow_down(self, base_url: str, login_name: str, seconds: float) -> None:
        """Hold back every request for the account for ``seconds`` (a 429 or -42).

        Args:
            base_url: The account's endpoint URL.
            login_name: The account's login name.
            seconds: How long from now; a shorter slow-down never shortens a longer one.
        """
        ...

    async def reset_login(self, base_url: str, login_name: str) -> None:
        """Lift the login guard of an account now (its password was fixed).

        Args:
            base_url: The account's endpoint URL.
            login_name: The account's login name.
        """
        ...


def login_locked(
    base_url: str, login_name: str, since: datetime, seconds_left: float, cooldown: float
) -> AuthenticationError:
    """The error a call meets while the account's login guard holds: since when, how to lift it.

    Args:
        base_url: The account's endpoint URL.
        login_name: The account's login name.
        since: When (UTC) the login was rejected.
        seconds_left: Seconds until one request may probe the login again.
        cooldown: The budget's ``login_cooldown``.

    Returns:
        An AuthenticationError (-16) saying that nothing was sent.
    """
    return AuthenticationError(
        -16,
        f"not sent: the login {login_name!r} at {base_url} was rejected at "
        f"{since:%Y-%m-%d %H:%M:%S} UTC, and no request is sent for it for "
        f"login_cooldown={cooldown:g} s (one request probes in {math.ceil(seconds_left)} s); "
        f"once the password is right, lift this at once with "
        f"`await budget.reset_login({base_url!r}, {login_name!r})`",
    )


def check_budget_options(
    max_concurrency: int, requests_per_second: float | None, login_cooldown: float
) -> float | None:
    """Check a budget's options.

    Args:
        max_concurrency: Requests in flight for one account.
        requests_per_second: The start rate, or None.
        login_cooldown: Seconds without requests after a -16.

    Returns:
        The interval between request starts, or None.

    Raises:
        InvalidRequestError: An option is out of range.
    """
    check_count("max_concurrency", max_concurrency, minimum=1)
    if not isinstance(login_cooldown, int | float) or not 0 <= login_cooldown < math.inf:
        raise InvalidRequestError(
            f"login_cooldown must be a number of seconds >= 0, not {login_cooldown!r}"
        )
    return request_interval(requests_per_second)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _LoginGuard:
    """One account's login state in one process: unknown, accepted, or rejected at a time."""

    def __init__(self, *, accepted: bool) -> None:
        self.accepted = accepted
        self.rejected_at: float | None = None  # on the budget's clock
        self.rejected_wall: datetime | None = None
        self.probing = False
        self.answered = asyncio.Event()  # set when the probe in flight ends


class LocalBudget:
    """The account budget of the clients in one process (an event loop's worth).

    One object may be passed to several ``CollectClient(..., budget=...)``: they then share
    the limits of each account they talk to.  A client without ``budget=`` makes its own.

    Args:
        max_concurrency: Requests in flight at once for one account, among all the clients.
        requests_per_second: An optional limit on request starts for one account.
        login_cooldown: Seconds without any request for an account after a -16.
        probe_first: Send one request for an account before the others, until its login is
            accepted (by default the first requests go out together, as they always have).
        clock: A monotonic clock in seconds (injected by tests).
        sleep: The coroutine that waits (injected by tests).
        wall_clock: The current time, timezone-aware, for messages (injected by tests).

    Raises:
        InvalidRequestError: An option is out of range.
    """

    def __init__(
        self,
        *,
        max_concurrency: int = 4,
        requests_per_second: float | None = None,
        login_cooldown: float = 600.0,
        probe_first: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        wall_clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._interval = check_budget_options(max_concurrency, requests_per_second, login_cooldown)
        self.max_concurrency = max_concurrency
        self.login_cooldown = float(login_cooldown)
        self._probe_first = probe_first
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._pacers: dict[tuple[str, str], Pacer] = {}
        self._guards: dict[tuple[str, str], _LoginGuard] = {}

    def __repr__(self) -> str:
        return (
            f"LocalBudget(max_concurrency={self.max_concurrency}, "
            f"login_cooldown={self.login_cooldown:g}, accounts={len(self._pacers)})"
        )

    def _pacer(self, key: tuple[str, str]) -> Pacer:
        pacer = self._pacers.get(key)
        if pacer is None:
            pacer = self._pacers[key] = Pacer(
                max_concurrency=self.max_concurrency,
                interval=self._interval,
                clock=self._clock,
                sleep=self._sleep,
            )
        return pacer

    def _guard(self, key: tuple[str, str]) -> _LoginGuard:
        guard = self._guards.get(key)
        if guard is None:
            guard = self._guards[key] = _LoginGuard(accepted=not self._probe_first)
        return guard

    async def acquire(
        self, base_url: str, login_name: str, *, max_wait: float | None, hold: float = 0.0
    ) -> BudgetTicket | None:
        """Wait for a request slot for the account (see ``AccountBudget.acquire``).

        Args:
            base_url: The account's endpoint URL.
            login_name: The account's login name.
            max_wait: Seconds the caller may wait, or None.
            hold: Unused here: a slot of this process cannot outlive it.

        Returns:
            The ticket to release, or None when ``max_wait`` ran out first.

        Raises:
            AuthenticationError: The login was rejected less than ``login_cooldown`` ago.
        """
        key = (base_url, login_name)
        deadline = None if max_wait is None else self._clock() + max_wait
        probe = await self._enter(key, deadline)
        if probe is None:
            return None
        try:
            ready = await self._pacer(key).acquire(deadline)
        except BaseException:
            self._end_probe(key, probe=probe)
            raise
        if not ready:
            self._end_probe(key, probe=probe)
            return None
        return BudgetTicket(base_url, login_name, probe=probe)

    async def _enter(self, key: tuple[str, str], deadline: float | None) -> bool | None:
        """Pass the login guard: False to send, True to send as the probe, None at the deadline."""
        guard = self._guard(key)
        while True:
            if guard.rejected_at is not None:
                left = guard.rejected_at + self.login_cooldown - self._clock()
                if left > 0:
                    assert guard.rejected_wall is not None  # noqa: S101 -- set together
                    raise login_locked(*key, guard.rejected_wall, left, self.login_cooldown)
            elif guard.accepted:
                return False
            if not guard.probing:
                guard.probing = True
                guard.answered.clear()
                return True
            remaining = None if deadline is None else deadline - self._clock()
            if remaining is not None and remaining <= 0:
                return None
            try:
                await asyncio.wait_for(guard.answered.wait(), remaining)
            except TimeoutError:
                return None

    def _end_probe(self, key: tuple[str, str], *, probe: bool) -> None:
        if probe:
            guard = self._guard(key)
            guard.probing = False
            guard.answered.set()

    async def release(self, ticket: BudgetTicket, verdict: LoginVerdict) -> None:
        """Give the slot back, with what the answer said about the login.

        Args:
            ticket: What ``acquire`` returned.
            verdict: What the answer said about the login.
        """
        key = (ticket.base_url, ticket.login_name)
        self._pacer(key).release()
        guard = self._guard(key)
        if verdict is LoginVerdict.REJECTED:  # a -16 starts a new cooldown, probe or not
            guard.accepted = False
            guard.rejected_at = self._clock()
            guard.rejected_wall = self._wall_clock()
            guard.answered.set()  # whoever waits for a probe raises now
        elif verdict is LoginVerdict.ACCEPTED and (ticket.probe or guard.rejected_at is None):
            # An answer to a request sent before a -16 does not lift the cooldown; the probe does.
            guard.accepted, guard.rejected_at = True, None
        self._end_probe(key, probe=ticket.probe)

    async def slow_down(self, base_url: str, login_name: str, seconds: float) -> None:
        """Hold back every request for the account for ``seconds`` from now.

        Args:
            base_url: The account's endpoint URL.
            login_name: The account's login name.
            seconds: How long; a shorter slow-down never shortens a longer one.
        """
        self._pacer((base_url, login_name)).slow_down(self._clock() + seconds)

    async def reset_login(self, base_url: str, login_name: str) -> None:
        """Lift the login guard of an account now (with ``probe_first``, one request probes).

        Args:
            base_url: The account's endpoint URL.
            login_name: The account's login name.
        """
        guard = self._guard((base_url, login_name))
        guard.rejected_at = guard.rejected_wall = None
        guard.accepted = not self._probe_first

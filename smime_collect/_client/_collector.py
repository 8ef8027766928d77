"""The loops that collect one order: its attempts, their retries, its polls.

``Collector`` is what ``CollectClient`` hands an ``Order`` to.  Each attempt waits for the
account budget's slot (and the client's own), is sent through ``_exchange`` and read by
``_protocol``; ``_polling`` decides whether a failed attempt is retried and whether a
processing order is asked again, and how long to wait.  What is left here are two short loops
around those decisions (the attempts of one poll, the polls of one order) and the sleeping.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable

import httpx

from .. import _polling
from .._exceptions import AuthenticationError, BudgetUnavailableError, SectigoError
from .._models import CollectResult, QueryType, Status
from .._polling import Failure, GiveUp, PollAgain, PollPolicy, TimedOut
from .._protocol import parse_response
from ._budget import AccountBudget, BudgetTicket, LoginVerdict
from ._exchange import Exchange
from ._failures import sectigo_failure
from ._observe import Observer
from ._options import ClientOptions, account_budget
from ._order import Order

__all__ = ["Collector", "Sleep"]

_LOGGER = logging.getLogger("smime_collect")

Sleep = Callable[[float], Awaitable[object]]


def login_verdict(answer: object) -> LoginVerdict:
    """What an attempt's answer says about the login: a -16, an answer past it, or nothing.

    Args:
        answer: A result, a failure, or TimedOut.

    Returns:
        The verdict the account budget's login guard is given.
    """
    if isinstance(answer, CollectResult):
        return LoginVerdict.ACCEPTED
    error = answer.error if isinstance(answer, Failure) else None
    if not isinstance(error, SectigoError):
        return LoginVerdict.UNKNOWN
    if error.code == -16:
        return LoginVerdict.REJECTED
    # -14 and -42 say nothing of the login; -1, -2, -3 and -17 come before it is checked.
    if _polling.is_transient_code(error.code) or _polling.is_account_level(error):
        return LoginVerdict.UNKNOWN
    return LoginVerdict.ACCEPTED


class Collector:
    """Collects orders of one account: each attempt through its budget, retried and polled.

    Args:
        options: The client's checked options.
        budget: The account budget given to the client, or None for its own.
        transport: What requests are sent on.
        observer: Told of every step.
        check_open: Raises ClientClosedError once the client is closed.
    """

    def __init__(
        self,
        options: ClientOptions,
        budget: AccountBudget | None,
        transport: httpx.AsyncBaseTransport,
        observer: Observer,
        check_open: Callable[[], None],
    ) -> None:
        self._url = str(options.url)
        self._login_name = options.login_name
        self._policy = options.policy
        self._hold = options.hold
        self._budget, self._own_slots = account_budget(options, budget)
        self._exchange = Exchange(
            options.url,
            transport,
            options.timeout.as_dict(),
            options.max_response_bytes,
            options.wall_clock,
        )
        self._observer = observer
        self._check_open = check_open
        self._sleep = options.sleep
        self._clock = options.clock
        self._random = options.random

    async def collect_once(self, order: Order) -> CollectResult:
        """One poll of ``order``, which has no deadline: its attempts until an answer.

        Args:
            order: The order.

        Returns:
            Its answer.

        Raises:
            CollectError: The retry decision gave up; its error.
        """
        answer = await self.collect(order)
        assert isinstance(answer, CollectResult)  # noqa: S101 -- no deadline, so no TimedOut
        return answer

    async def collect(self, order: Order) -> CollectResult | TimedOut:
        """One poll of ``order``: its attempts until an answer, a final error, or the deadline.

        Args:
            order: The order.

        Returns:
            Its answer, or TimedOut when its deadline came first.

        Raises:
            CollectError: The retry decision gave up; its error.
        """
        for retry in itertools.count():
            answer = await self._attempt(order, retry + 1)
            if isinstance(answer, CollectResult):
                order.last_status, order.last_failure = answer.status, None
            if not isinstance(answer, Failure):
                return answer
            order.last_failure = answer
            decision = _polling.decide_retry(
                self._policy,
                retry,
                answer,
                now=self._clock(),
                deadline=order.deadline,
                random=self._random(),
            )
            if decision.slow_down_until is not None:  # 429 / -42: every request waits
                await self._slow_down(decision.slow_down_until)
                self._observer.throttled(decision.slow_down_until, answer.error)
            if isinstance(decision, GiveUp):
                raise decision.error
            self._tell_retry(order, answer, retry, decision)
            if decision.delay > 0:
                await self._sleep(decision.delay)
        raise AssertionError("unreachable")  # pragma: no cover -- itertools.count() never ends

    async def wait(self, order: Order, policy: PollPolicy) -> CollectResult:
        """Poll ``order`` until it is ready enough, or raise PollTimeoutError at its deadline.

        Args:
            order: The order.
            policy: How often to ask, and for how long.

        Returns:
            The ATTACHED result (AVAILABLE or better for a STATUS query).

        Raises:
            PollTimeoutError: The deadline passed.
            CollectError: The retry decision gave up; its error.
        """
        enough = (
            Status.AVAILABLE if order.request.query_type is QueryType.STATUS else Status.ATTACHED
        )
        for poll in itertools.count():
            answer = await self.collect(order)
            if isinstance(answer, CollectResult):
                if answer.status >= enough:
                    return answer
                assert order.deadline is not None  # noqa: S101 -- set by the first request
                decision = _polling.decide_poll(
                    policy, poll, now=self._clock(), deadline=order.deadline, random=self._random()
                )
                if isinstance(decision, PollAgain):
                    self._observer.poll(order, poll + 1, decision.delay, answer.status)
                    await self._sleep(decision.delay)
                    continue
            raise order.timed_out(policy.timeout)
        raise AssertionError("unreachable")  # pragma: no cover -- itertools.count() never ends

    async def _attempt(self, order: Order, attempt: int) -> CollectResult | Failure | TimedOut:
        """One request: wait for the account budget's slot, send, give the slot back."""
        self._check_open()
        ticket = await self._acquire(order)
        if not isinstance(ticket, BudgetTicket):
            return ticket
        answer: CollectResult | Failure | TimedOut = TimedOut()
        try:
            answer = await self._send(order, attempt)
        finally:
            await self._release(ticket, answer)
        return answer

    async def _acquire(self, order: Order) -> BudgetTicket | Failure | TimedOut:
        """Wait for this client's own slot and the account budget's, never past the deadline.

        Raises:
            AuthenticationError: The budget's login guard holds: nothing is sent.
        """
        left = None if order.deadline is None else order.deadline - self._clock()
        if self._own_slots is not None:
            await self._own_slots.acquire()
        ticket: BudgetTicket | Failure | None
        try:
            ticket = await self._budget.acquire(
                self._url, self._login_name, max_wait=left, hold=self._hold
            )
        except AuthenticationError as exc:  # said again about this order
            number = order.request.order_number
            raise AuthenticationError(exc.code, exc.message, number) from None
        except BudgetUnavailableError as exc:  # transient: retried like a network failure
            ticket = Failure(exc, transient=True)
        except BaseException:
            if self._own_slots is not None:
                self._own_slots.release()
            raise
        if isinstance(ticket, BudgetTicket):
            return ticket
        if self._own_slots is not None:
            self._own_slots.release()
        return TimedOut() if ticket is None else ticket

    async def _release(self, ticket: BudgetTicket, answer: object) -> None:
        try:
            await self._budget.release(ticket, login_verdict(answer))
        finally:
            if self._own_slots is not None:
                self._own_slots.release()

    async def _slow_down(self, until: float) -> None:
        """Hold back every request of the account (a 429 or -42) until ``until``."""
        try:
            await self._budget.slow_down(
                self._url, self._login_name, max(0.0, until - self._clock())
            )
        except BudgetUnavailableError as exc:  # the next acquire meets it, and retries
            _LOGGER.warning("the account budget missed a slow-down: %s", exc)

    async def _send(self, order: Order, attempt: int) -> CollectResult | Failure | TimedOut:
        """One request, its slot held: post, read, parse."""
        with self._observer.request(order, attempt) as watch:
            if order.deadline is None and order.timeout is not None:
                # collect_many: an order's time starts with its first request, not queued.
                order.deadline = self._clock() + order.timeout
            # A deadline also bounds the request in flight: a server trickling one byte per
            # read timeout would otherwise keep the order going far past it.
            budget = None if order.deadline is None else max(0.0, order.deadline - self._clock())
            sent = await self._exchange.attempt(
                order.body, order.request.order_number, attempt, budget
            )
            if not isinstance(sent, tuple):
                return watch.answer(sent)
            content, response = sent
            answer: CollectResult | Failure
            try:
                answer = parse_response(
                    content, order.request, response.headers.get("content-type")
                )
            except SectigoError as exc:
                answer = sectigo_failure(exc, response, self._exchange.wall_clock)
            return watch.answer(answer, response.status_code)

    def _tell_retry(
        self, order: Order, failure: Failure, retry: int, decision: _polling.Retry
    ) -> None:
        wait = decision.delay
        if decision.slow_down_until is not None:
            wait = max(wait, decision.slow_down_until - self._clock())
        self._observer.retry(order, retry + 1, self._policy.max_retries, wait, failure.error)

"""What every request of one client waits for before it is sent: a slot, its turn, the account.

``Pacer`` holds the three things a request may have to wait on: one of ``max_concurrency``
slots, a start time under ``requests_per_second``, and the slow-down that a 429 or -42 puts on
the whole client (``docs/explanation/retries.md``, "The shared slow-down after 429 or -42").
``acquire`` waits for all three (never past the caller's deadline), ``release`` gives the slot
back, ``slow_down`` pushes the slow-down further out.  The arithmetic is ``_polling``'s; this
object only keeps the numbers and sleeps.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable

from .. import _polling

__all__ = ["Pacer"]


class Pacer:
    """The slots, the start rate and the slow-down shared by every request of one client.

    Args:
        max_concurrency: Requests in flight at once.
        interval: Seconds between two request starts (``1 / requests_per_second``), or None.
        clock: The client's monotonic clock.
        sleep: The client's sleep.
    """

    def __init__(
        self,
        *,
        max_concurrency: int,
        interval: float | None,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[object]],
    ) -> None:
        self._slots = asyncio.Semaphore(max_concurrency)
        self._interval = interval
        self._clock = clock
        self._sleep = sleep
        self._slow_until = -math.inf  # no request starts before this (a 429 or -42 was seen)
        self._next_start = -math.inf  # the first start time not yet booked (requests_per_second)

    async def acquire(self, deadline: float | None = None) -> bool:
        """Wait for a slot and this request's turn.

        Args:
            deadline: The caller's deadline on the same clock, if it has one.

        Returns:
            True when the request may be sent now (call ``release`` after it); False when the
            deadline came first: nothing is held then, and the wait ended at the deadline.
        """
        await self._slots.acquire()
        try:
            ready = await self._turn(deadline)
        except BaseException:
            self._slots.release()
            raise
        if not ready:
            self._slots.release()
        return ready

    def release(self) -> None:
        """Give back the slot taken by a successful ``acquire``."""
        self._slots.release()

    def slow_down(self, until: float) -> None:
        """Hold back every request until ``until`` (a time on the clock); never brings it closer.

        Args:
            until: The end of the slow-down that a 429 or -42 asked for.
        """
        self._slow_until = max(self._slow_until, until)

    async def _turn(self, deadline: float | None) -> bool:
        # Another request may push the slow-down further out while this one sleeps: sleep again
        # only then.  Re-reading the clock instead would spin when sleep= is a test's no-op.
        waited_for = -math.inf
        while self._slow_until > waited_for:
            waited_for = self._slow_until
            if not await self._sleep_until(waited_for, deadline):
                return False
        if self._interval is not None:
            start, self._next_start = _polling.reserve_slot(
                self._next_start, self._clock(), self._interval
            )
            if not await self._sleep_until(start, deadline):
                return False
        return deadline is None or self._clock() < deadline

    async def _sleep_until(self, when: float, deadline: float | None) -> bool:
        now = self._clock()
        if deadline is not None and deadline <= when:
            if deadline > now:
                await self._sleep(deadline - now)
            return False
        if when > now:
            await self._sleep(when - now)
        return True

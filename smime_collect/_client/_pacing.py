"""What every request of one client waits for before it is sent: a slot, its turn, the account.

``Pacer`` holds the three things a request may have to wait on: one of ``max_concurrency``
slots, a start time under ``requests_per_second``, and the slow-down that a 429 or -42 puts on
the whole client (``docs/explanation/retries.md``, "The shared slow-down after 429 or -42").
``acquire`` waits for all three (never past the caller's deadline), ``release`` gives the slot
back, ``slow_down`` pushes the slow-down further out.  The arithmetic is ``_polling``'s; this
object only keeps the numbers and sleeps.

``SlotRelay`` passes the slots a process holds in a shared store (``RedisBudget``'s) from one
request to the next of the same process, and queues the requests that wait for the store.
"""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from .. import _polling

__all__ = ["Pacer", "SlotRelay"]

_Key = TypeVar("_Key", bound=Hashable)
_Slot = TypeVar("_Slot")


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


class SlotRelay(Generic[_Key, _Slot]):
    """Slots one process holds in a shared store, passed from a request that ends to the next.

    A slot that a request gives back goes to the longest-waiting request of this process for
    the same key, or stays ``keep`` seconds for the next one to come, and only then goes back
    to the store (``give_back``): the next request then takes it over in one step of the
    store, instead of a release and a new acquire that other processes race for.  Requests
    that find the store full queue here behind one of them that watches the store for a
    release (``wait``), so that a process wakes once per release, not once per request.

    Args:
        keep: Seconds a slot nobody waits for stays for the next request (0: none).
        give_back: Gives a slot back to the store, without waiting (called from a callback).
    """

    def __init__(self, keep: float, give_back: Callable[[_Key, _Slot], object]) -> None:
        self._keep = keep
        self._give_back = give_back
        self._kept: dict[_Key, list[tuple[_Slot, asyncio.TimerHandle]]] = {}
        self._queues: dict[_Key, collections.deque[asyncio.Future[_Slot | None]]] = {}
        self._watching: set[_Key] = set()

    def watched(self, key: _Key) -> bool:
        """Whether a request of this process waits for a release of ``key`` already."""
        return key in self._watching

    def take(self, key: _Key) -> _Slot | None:
        """The newest slot kept for ``key``, if any: it is the caller's now."""
        kept = self._kept.get(key)
        if not kept:
            return None
        slot, timer = kept.pop()
        timer.cancel()
        return slot

    def drain(self, only: _Key | None = None) -> list[tuple[_Key, _Slot]]:
        """Every slot kept (of the key ``only``, if given), each the caller's now."""
        drained = []
        for key, kept in self._kept.items():
            while kept and (only is None or key == only):
                slot, timer = kept.pop()
                timer.cancel()
                drained.append((key, slot))
        return drained

    def pass_on(self, key: _Key, slot: _Slot | None) -> None:
        """Hand a slot to a waiting request, or keep it; None hands on the turn to watch."""
        queue = self._queues.get(key)
        while queue:
            turn = queue.popleft()
            if not turn.done():
                turn.set_result(slot)
                return
        if slot is None:
            return
        if self._keep <= 0:
            self._give_back(key, slot)
            return
        kept = self._kept.setdefault(key, [])
        timer = asyncio.get_running_loop().call_later(self._keep, self._expire, key, slot)
        kept.append((slot, timer))

    def _expire(self, key: _Key, slot: _Slot) -> None:
        kept = self._kept[key]
        kept[:] = [pair for pair in kept if pair[0] is not slot]
        self._give_back(key, slot)

    async def wait(
        self, key: _Key, watch: Callable[[], Awaitable[object]], deadline: float | None
    ) -> _Slot | None:
        """Wait for a slot handed on here, or (None) for ``watch`` to see a release.

        Only one request per key runs ``watch`` at a time; the others queue up for a slot
        or for their turn to watch.  At the ``deadline`` (on the loop's clock) this returns
        None too; a slot that arrives with it is returned.
        """
        while True:
            slot = self.take(key)
            if slot is not None:
                return slot
            if key not in self._watching:
                self._watching.add(key)
                try:
                    await watch()
                finally:
                    self._watching.discard(key)
                    self.pass_on(key, None)  # the next one in the queue watches now
                return None
            turn: asyncio.Future[_Slot | None] = asyncio.get_running_loop().create_future()
            queue = self._queues.setdefault(key, collections.deque())
            queue.append(turn)
            try:
                async with asyncio.timeout_at(deadline):
                    slot = await turn
            except BaseException as exc:
                if turn in queue:
                    queue.remove(turn)
                elif turn.done() and not turn.cancelled():  # handed a slot or a turn meanwhile
                    if isinstance(exc, TimeoutError) and turn.result() is not None:
                        return turn.result()
                    self.pass_on(key, turn.result())  # cancelled: to the next one, or kept
                if isinstance(exc, TimeoutError):
                    return None
                raise
            if slot is not None:
                return slot

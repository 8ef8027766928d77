"""The worker pool behind ``CollectClient.collect_many``: lazy, bounded, completion-ordered.

``max_active`` workers each take the next order number from the source, run it, and put its
outcome on a queue that the batch's async generator yields from.  A worker takes a ticket before
it reads an order and the generator gives it back once the outcome is taken, so at most
``max_active`` orders are in progress or finished-but-not-yet-yielded: a million orders never
become a million tasks or results in memory.  Workers are the client's tasks (closing the
client cancels them) and the generator cancels them in ``finally``.

No HTTP here: the client hands in a function that turns an order number into an ``Order`` and a
coroutine function that turns one ``Order`` into one result.  A CollectError it raises is that
order's outcome; one that ``stops_batch`` accepts (a rejected login, an untrusted TLS
certificate...) also ends the orders in progress and every order still to come with that error,
without a request.  Every outcome the batch makes itself (a bad order number, an order ended by
the stop) is handed to the client's ``ended`` too, so that each order is told to the watchers
exactly once.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
)
from typing import Any, Literal

import attrs

from .._exceptions import (
    ClientClosedError,
    CollectError,
    InvalidRequestError,
    SectigoError,
    TransportError,
)
from .._models import CollectOutcome, CollectResult
from ._failures import restated, stops_batch
from ._order import Order

__all__ = ["Ended", "MakeOrder", "Work", "run_batch"]

MakeOrder = Callable[[Any], Order]
Work = Callable[[Order], Awaitable[CollectResult]]
Ended = Callable[[CollectOutcome, Order | None], object]


class _End(enum.Enum):
    END = enum.auto()


_END: Literal[_End.END] = _End.END


@attrs.frozen
class _WorkerDone:
    """Put on the queue by a worker that stopped: with what it ended, None for the source's end."""

    error: BaseException | None


class _Source:
    """The order numbers, shared by the workers: a plain or async iterable, read one at a time."""

    def __init__(self, orders: Iterable[object] | AsyncIterable[object]) -> None:
        self._sync: Iterator[object] | None = None
        self._async: AsyncIterator[object] | None = None
        if isinstance(orders, AsyncIterable):
            self._async = aiter(orders)
        else:
            self._sync = iter(orders)
        self._lock = asyncio.Lock()  # an async generator refuses a second anext() in flight
        self._ended = False

    async def next(self) -> object:
        """The next order number as given, or ``_END``."""
        if self._sync is not None:
            return next(self._sync, _END)
        async with self._lock:
            if self._ended:
                return _END
            assert self._async is not None  # noqa: S101 -- one of the two is set
            number = await anext(self._async, _END)
            self._ended = number is _END
            return number

    async def aclose(self) -> None:
        """Close an async source that can be closed (an async generator)."""
        close = getattr(self._async, "aclose", None)
        if close is not None:
            await close()


class _Batch:
    """One ``collect_many`` run: its source, its workers' shared state, its queue of outcomes."""

    def __init__(
        self,
        orders: Iterable[object] | AsyncIterable[object],
        make_order: MakeOrder,
        work: Work,
        ended: Ended,
        max_active: int,
    ) -> None:
        self.source = _Source(orders)
        self.outcomes: asyncio.Queue[CollectOutcome | _WorkerDone] = asyncio.Queue()
        self.tickets = asyncio.Semaphore(max_active)
        self._make_order = make_order
        self._work = work
        self._ended = ended
        self._stop: SectigoError | TransportError | None = None
        self._working: set[asyncio.Task[None]] = set()  # workers inside work()
        self._stopping: set[asyncio.Task[None]] = set()  # of those, cancelled by the stop

    async def worker(self) -> None:
        """Take orders until the source ends; report how this worker ended on the queue."""
        ended: BaseException | None = None
        try:
            while True:
                await self.tickets.acquire()
                number = await self.source.next()
                if number is _END:
                    return
                self.outcomes.put_nowait(await self._settle(number))
        except BaseException as exc:  # reported to the generator, which re-raises it
            ended = exc
            raise
        finally:
            self.outcomes.put_nowait(_WorkerDone(ended))

    async def _settle(self, number: object) -> CollectOutcome:
        try:
            order = self._make_order(number)
        except InvalidRequestError as error:  # "12a": this order's own outcome, as given
            return self._end(CollectOutcome(number, error=error), None)  # type: ignore[arg-type]
        order_number = order.request.order_number
        if self._stop is None:  # no request once the batch has stopped
            this = _current_worker()
            self._working.add(this)
            try:
                return CollectOutcome(order_number, result=await self._work(order))
            except ClientClosedError:
                raise  # the batch cannot go on: the generator raises it
            except CollectError as error:
                self._note(error)
                return CollectOutcome(order_number, error=error)
            except asyncio.CancelledError:
                if not self._ended_by_stop(this):
                    raise
            finally:
                self._working.discard(this)
        assert self._stop is not None  # noqa: S101 -- checked, or set before the cancel
        return self._end(
            CollectOutcome(order_number, error=restated(self._stop, order_number)), order
        )

    def _end(self, outcome: CollectOutcome, order: Order | None) -> CollectOutcome:
        # work() tells the watchers how the orders it ran ended; the batch tells the others.
        self._ended(outcome, order)
        return outcome

    def _note(self, error: CollectError) -> None:
        # Noted in the failing order's own worker, before any other worker runs again: none of
        # them sends another request once the batch has stopped.  The orders in progress would
        # meet the same error at their next request (after a poll wait of up to
        # max_poll_interval): end them now, without one.
        if self._stop is None and stops_batch(error):
            self._stop = error
            for worker in self._working - {_current_worker()}:
                self._stopping.add(worker)
                worker.cancel()

    def _ended_by_stop(self, this: asyncio.Task[None]) -> bool:
        # A cancellation by _note ends only the order: take it back (Task.uncancel, as
        # asyncio.timeout does) unless someone else cancelled this worker as well.
        if this not in self._stopping:
            return False
        self._stopping.discard(this)
        return this.uncancel() == 0


def _current_worker() -> asyncio.Task[None]:
    task = asyncio.current_task()
    assert task is not None  # noqa: S101 -- workers are tasks
    return task


async def run_batch(
    orders: Iterable[object] | AsyncIterable[object],
    make_order: MakeOrder,
    work: Work,
    *,
    ended: Ended,
    max_active: int,
    tasks: set[asyncio.Task[Any]],
    is_closed: Callable[[], bool],
) -> AsyncGenerator[CollectOutcome, None]:
    """Run ``work`` over every order, at most ``max_active`` at a time; yield as they finish.

    Args:
        orders: The order numbers, read lazily.
        make_order: Builds (and validates) the order for one order number; the
            InvalidRequestError it raises becomes that order's outcome.
        work: Turns an order into its result; the CollectError it raises becomes the
            order's outcome.
        ended: Told each outcome the batch made without ``work`` (a bad order number, an
            order ended by the batch's stop), with its order (None for a bad number).
        max_active: Orders in progress (or finished and not yet yielded) at once.
        tasks: The client's task set (closing the client cancels what is in it).
        is_closed: Whether the client has been closed.

    Yields:
        One outcome per order, in completion order.

    Raises:
        ClientClosedError: The client was closed while the batch ran.
        Exception: Whatever reading the source raised.
    """
    if is_closed():
        raise ClientClosedError("this CollectClient is closed: create a new one")
    batch = _Batch(orders, make_order, work, ended, max_active)
    workers = [asyncio.create_task(batch.worker()) for _ in range(max_active)]
    tasks.update(workers)
    try:
        running = len(workers)
        while running:
            item = await batch.outcomes.get()
            if isinstance(item, CollectOutcome):
                batch.tickets.release()
                yield item
                continue
            running -= 1
            if isinstance(item.error, asyncio.CancelledError) and is_closed():
                raise ClientClosedError(
                    "the CollectClient was closed while collect_many was running"
                ) from None
            if item.error is not None:
                raise item.error
    finally:
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        tasks.difference_update(workers)
        await batch.source.aclose()

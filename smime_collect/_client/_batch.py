"""The worker pool behind ``CollectClient.collect_many``: lazy, bounded, completion-ordered.

No HTTP here: the client hands in a coroutine function that turns one request into one result;
a CollectError it raises becomes that order's outcome, and an account-level one stops the batch.
The pool reads the orders only as fast as it has room for them (at most ``max_active`` orders
in progress and as many finished outcomes waiting), so a million orders never become a million
tasks or results in memory.  Tasks are started one per order and tracked in the client's task
set, so closing the client cancels them too.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
)
from typing import Any

import attrs

from .. import _polling
from .._exceptions import CollectError, SectigoError
from .._models import CollectOutcome, CollectRequest, CollectResult

__all__ = ["BatchState", "run_batch"]

_END = object()
_WAIT = object()


@attrs.define
class BatchState:
    """Shared by the orders of one ``collect_many``: the account-level error that stops it."""

    stop_error: SectigoError | None = None

    def note(self, error: CollectError) -> None:
        """Keep the batch's first account-level Sectigo error (-1, -2, -3, -16, -17)."""
        if self.stop_error is None and _polling.is_account_level(error):
            self.stop_error = error

    def error_for(self, order_number: int) -> SectigoError:
        """The stopping error, restated for another order of the batch."""
        assert self.stop_error is not None  # noqa: S101 -- only called once stopped
        error = SectigoError.from_code(self.stop_error.code, self.stop_error.message, order_number)
        error.__cause__ = self.stop_error
        return error


class _OrderReader:
    """Reads the order numbers one at a time, without ever blocking the pool on a slow source.

    A plain iterable is read at once.  An async iterable is read by one pending ``anext`` task,
    so the pool keeps yielding finished outcomes while the source takes its time (and a source
    that waits for those outcomes cannot deadlock the batch).
    """

    def __init__(self, source: Iterable[Any] | AsyncIterable[Any], wakeup: asyncio.Event) -> None:
        self._sync: Iterator[Any] | None = None
        self._async: AsyncIterator[Any] | None = None
        if isinstance(source, AsyncIterable):
            self._async = aiter(source)
        else:
            self._sync = iter(source)
        self._wakeup = wakeup
        self._pending: asyncio.Future[Any] | None = None

    def take(self) -> Any:
        """The next order number, ``_END`` at the end, or ``_WAIT`` while the source is busy."""
        if self._sync is not None:
            return next(self._sync, _END)
        assert self._async is not None  # noqa: S101 -- one of the two is set
        if self._pending is None:
            self._pending = asyncio.ensure_future(anext(self._async, _END))
            self._pending.add_done_callback(lambda _: self._wakeup.set())
        if not self._pending.done():
            return _WAIT
        pending, self._pending = self._pending, None
        return pending.result()

    @property
    def ready(self) -> bool:
        """Whether the async source has produced since ``take`` last said ``_WAIT``."""
        return self._pending is not None and self._pending.done()

    async def aclose(self) -> None:
        """Stop a pending read and close the source, when it can be closed."""
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()
            await asyncio.gather(self._pending, return_exceptions=True)
        close = getattr(self._async, "aclose", None)
        if close is not None:
            await close()


async def _settle(
    work: Callable[[CollectRequest], Awaitable[CollectResult]],
    request: CollectRequest,
    batch: BatchState,
) -> CollectOutcome:
    try:
        result = await work(request)
    except CollectError as error:
        batch.note(error)
        return CollectOutcome(request.order_number, error=error)
    return CollectOutcome(request.order_number, result=result)


async def _stop_active(
    active: dict[asyncio.Task[CollectOutcome], int], batch: BatchState
) -> list[CollectOutcome]:
    for task in active:
        task.cancel()
    await asyncio.gather(*active, return_exceptions=True)
    outcomes = [
        CollectOutcome(number, error=batch.error_for(number))
        if task.cancelled() or task.exception() is not None
        else task.result()
        for task, number in active.items()
    ]
    active.clear()
    return outcomes


async def run_batch(  # noqa: PLR0912, PLR0915 -- one loop: top up, wait, yield, stop
    order_numbers: Iterable[Any] | AsyncIterable[Any],
    make_request: Callable[[Any], CollectRequest],
    work: Callable[[CollectRequest], Awaitable[CollectResult]],
    batch: BatchState,
    *,
    max_active: int,
    tasks: set[asyncio.Task[Any]],
    is_closed: Callable[[], bool],
) -> AsyncIterator[CollectOutcome]:
    """Run ``work`` over every order, at most ``max_active`` at a time; yield as they finish.

    Args:
        order_numbers: The orders, read lazily.
        make_request: Builds (and validates) the request for one order number.
        work: Turns a request into its result; the CollectError it raises becomes the
            order's outcome (and an account-level one is noted in ``batch``).
        batch: The batch's shared state; once it holds an account-level error, the orders
            not yet started get that error without a request.
        max_active: Orders in progress at once.
        tasks: The client's task set (closing the client cancels what is in it).
        is_closed: Whether the client has been closed.

    Yields:
        One outcome per order, in completion order.

    Raises:
        InvalidRequestError: An order number is not a positive integer.
        CollectError: The client was closed while the batch ran.
    """
    finished: deque[asyncio.Task[CollectOutcome]] = deque()
    wakeup = asyncio.Event()
    source = _OrderReader(order_numbers, wakeup)
    active: dict[asyncio.Task[CollectOutcome], int] = {}
    exhausted = False

    def on_done(task: asyncio.Task[CollectOutcome]) -> None:
        tasks.discard(task)
        finished.append(task)
        wakeup.set()

    try:
        while True:
            # Top up the pool; reading the source is what keeps memory bounded.
            while not exhausted and len(active) < max_active:
                number = source.take()
                if number is _WAIT:
                    if active or finished:
                        break  # yield what is done meanwhile; the read wakes the loop
                    await wakeup.wait()
                    wakeup.clear()
                    continue
                if number is _END:
                    exhausted = True
                    break
                request = make_request(number)
                if batch.stop_error is not None:
                    # Account-level failure: no request for the orders still to come.
                    yield CollectOutcome(
                        request.order_number, error=batch.error_for(request.order_number)
                    )
                    continue
                task = asyncio.create_task(_settle(work, request, batch))
                active[task] = request.order_number
                tasks.add(task)
                task.add_done_callback(on_done)
            if not active and not finished:
                return
            while not finished and not (source.ready and len(active) < max_active):
                wakeup.clear()
                await wakeup.wait()
            if not finished:
                continue  # the source produced and there is room: top up first
            task = finished.popleft()
            if task not in active:  # already accounted for by _stop_active
                continue
            del active[task]
            if task.cancelled():
                if is_closed():
                    raise CollectError(
                        "the CollectClient was closed while collect_many was running"
                    )
                raise asyncio.CancelledError
            yield task.result()
            if batch.stop_error is not None and active:
                # The orders still polling would only meet the same error after their next
                # sleep: end them now, without another request.
                for outcome in await _stop_active(active, batch):
                    yield outcome
    finally:
        for task in active:
            task.cancel()
        if active:
            await asyncio.gather(*active, return_exceptions=True)
        await source.aclose()

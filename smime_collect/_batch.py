"""The worker pool behind ``CollectClient.collect_many``: lazy, bounded, completion-ordered.

No HTTP here: the client hands in a coroutine function that turns one request into one outcome.
The pool reads the orders only as fast as it has room for them (at most ``max_active`` orders
in progress and as many finished outcomes waiting), so a million orders never become a million
tasks or results in memory.  Tasks are started one per order and tracked in the client's task
set, so closing the client cancels them too.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
)
from typing import TYPE_CHECKING, Any

from ._exceptions import CollectError
from ._models import CollectOutcome, CollectRequest

if TYPE_CHECKING:
    from ._client import BatchState

__all__ = ["run_batch"]

_END = object()


async def _orders(source: Iterable[Any] | AsyncIterable[Any]) -> AsyncGenerator[Any, None]:
    if isinstance(source, AsyncIterable):
        async for item in source:
            yield item
    else:
        for item in source:
            yield item


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


async def run_batch(  # noqa: PLR0912 -- one loop: top up, wait, yield, stop
    order_numbers: Iterable[Any] | AsyncIterable[Any],
    make_request: Callable[[Any], CollectRequest],
    one: Callable[[CollectRequest], Coroutine[Any, Any, CollectOutcome]],
    batch: BatchState,
    *,
    max_active: int,
    tasks: set[asyncio.Task[Any]],
    is_closed: Callable[[], bool],
) -> AsyncIterator[CollectOutcome]:
    """Run ``one`` over every order, at most ``max_active`` at a time; yield as they finish.

    Args:
        order_numbers: The orders, read lazily.
        make_request: Builds (and validates) the request for one order number.
        one: Turns a request into its outcome; never raises a CollectError.
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
    source = _orders(order_numbers)
    finished: deque[asyncio.Task[CollectOutcome]] = deque()
    wakeup = asyncio.Event()
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
                number = await anext(source, _END)
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
                task = asyncio.create_task(one(request))
                active[task] = request.order_number
                tasks.add(task)
                task.add_done_callback(on_done)
            if not active and not finished:
                return
            while not finished:
                wakeup.clear()
                await wakeup.wait()
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

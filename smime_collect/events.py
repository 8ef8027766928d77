"""What a ``CollectClient`` does, step by step, as typed values for ``on_event=``.

Give the client a callable and it receives one frozen event per step::

    RequestFinished   one HTTP attempt ended (answered, failed, or cut at the deadline)
    RetryScheduled    that attempt is retried after ``delay`` seconds
    PollScheduled     the order is still processing: it is asked again after ``delay`` seconds
    Throttled         a 429 or -42 holds back every request of the client until ``until``
    OrderFinished     a ``collect``, a ``wait_for_certificate`` or one order of ``collect_many``
                      ended, with its result or its error

Times are seconds on the client's clock (``clock=``, ``time.monotonic`` by default).  No event
carries the password: only order numbers, counts, times, statuses and the library's own errors,
whose messages never contain it.

The callback runs in the client's task, between two requests: keep it short (count, put on a
queue).  One that raises is logged on the ``smime_collect`` logger, at WARNING the first time
and at DEBUG after, and never stops collection.

Example::

    from smime_collect.events import Event, OrderFinished

    finished: list[OrderFinished] = []

    def on_event(event: Event) -> None:
        if isinstance(event, OrderFinished):
            finished.append(event)
"""

from __future__ import annotations

import attrs

from ._enums import Status
from ._exceptions import CollectError

__all__ = [
    "Event",
    "OrderFinished",
    "PollScheduled",
    "RequestFinished",
    "RetryScheduled",
    "Throttled",
]


@attrs.frozen
class RequestFinished:
    """One HTTP attempt ended.

    Attributes:
        order_number: The order asked about.
        attempt: Which attempt of this poll it was, from 1 (a retry is attempt 2).
        elapsed: Seconds from sending to the answer (or the failure), on the client's clock.
        http_status: The HTTP status of the answer, or None when none came (a network
            failure, the deadline).
        status: The status Sectigo reported, or None when it reported an error or nothing.
        error: What went wrong with this attempt, or None when it was answered with a status.
    """

    order_number: int
    attempt: int
    elapsed: float
    http_status: int | None
    status: Status | None
    error: CollectError | None


@attrs.frozen
class RetryScheduled:
    """A failed attempt is tried again.

    Attributes:
        order_number: The order.
        retry: Which retry this is, from 1.
        delay: Seconds until it is sent (the client's slow-down included, after a 429 or -42).
        error: The failure being retried.
    """

    order_number: int
    retry: int
    delay: float
    error: CollectError


@attrs.frozen
class PollScheduled:
    """The order is still being processed: it is asked again later.

    Attributes:
        order_number: The order.
        poll: Which poll comes next, from 1 (the first request is not a poll).
        delay: Seconds until then.
        status: The status that was reported (PROCESSING, or AVAILABLE when the certificate
            was asked for).
    """

    order_number: int
    poll: int
    delay: float
    status: Status


@attrs.frozen
class Throttled:
    """A 429 or -42: every request of this client waits until ``until``.

    Attributes:
        until: The end of the slow-down, a time on the client's clock.
        error: The failure that asked for it (a TransportError for a 429, a CallLimitError).
        since: When it was asked for, on the client's clock: with ``until``, the stretch of
            time the client spent held back, which overlapping slow-downs share.
    """

    until: float
    error: CollectError
    since: float | None = None


@attrs.frozen
class OrderFinished:
    """A ``collect``, a ``wait_for_certificate`` or one order of ``collect_many`` ended.

    Attributes:
        order_number: The order; for a ``collect_many`` order number that was not valid
            (``"12a"``), the value exactly as given, as in its ``CollectOutcome``.
        ok: Whether it ended with a result (``error`` is None then).
        requests: HTTP attempts sent for it, retries and polls included.
        elapsed: Seconds from the start of the call (for ``collect_many``, from when the
            order was taken up) to its end, on the client's clock.
        error: The error it ended with, or None.
    """

    order_number: int
    ok: bool
    requests: int
    elapsed: float
    error: CollectError | None


Event = RequestFinished | RetryScheduled | PollScheduled | Throttled | OrderFinished
"""Any of the events, the type of the value ``on_event`` is called with."""

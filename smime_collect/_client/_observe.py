"""Where each step of the client is told: the ``on_event`` callback, OpenTelemetry, the log.

``CollectClient`` reports its steps here (a request ended, a retry or a poll is scheduled, the
account is throttled, an order ended) and ``Observer`` fans each out.  Nobody watching costs a
few tests and a no-op context manager per request: no event is built, no clock read.  Nobody
watching includes OpenTelemetry's API without an SDK: its proxies would drop every span and
measurement, so none is made until an application sets an SDK (``Telemetry.active``).

Nothing a watcher does may cost an order: a callback, a tracer or a meter that raises is logged
on the ``smime_collect`` logger (WARNING the first time, DEBUG after) and collection goes on.
OpenTelemetry is imported only when a client is made, and only if it is installed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from .._exceptions import CollectError, TransportError
from .._models import CollectResult, Status
from .._polling import Failure, TimedOut
from ..events import (
    Event,
    OrderFinished,
    PollScheduled,
    RequestFinished,
    RetryScheduled,
    Throttled,
)
from ._failures import log_reason
from ._order import Order

if TYPE_CHECKING:
    from ..otel import Telemetry

__all__ = ["Observer", "OnEvent"]

_LOGGER = logging.getLogger("smime_collect")

OnEvent = Callable[[Event], object]
Answer = CollectResult | Failure | TimedOut
_Span = tuple["Telemetry", Any, Any]  # the telemetry, its span and the context token to detach

# The span name of smime_collect.otel, here without importing OpenTelemetry.
REQUEST_SPAN: Final = "smime_collect.request"


def _load_telemetry(tracer_provider: Any, meter_provider: Any) -> Telemetry | None:
    try:
        from ..otel import Telemetry  # noqa: PLC0415 -- only when opentelemetry-api is installed
    except ImportError:
        return None
    return Telemetry(tracer_provider, meter_provider)


class Observer:
    """The watchers of one client: a callback, OpenTelemetry, the log.

    Args:
        on_event: The callback, or None.
        clock: The client's clock.
        tracer_provider: An OpenTelemetry tracer provider instead of the global one.
        meter_provider: An OpenTelemetry meter provider instead of the global one.
    """

    def __init__(
        self,
        on_event: OnEvent | None,
        clock: Callable[[], float],
        tracer_provider: Any = None,
        meter_provider: Any = None,
    ) -> None:
        self.on_event = on_event
        self.clock = clock
        self._complained: set[str] = set()
        self.telemetry: Telemetry | None = None
        try:
            self.telemetry = _load_telemetry(tracer_provider, meter_provider)
        except Exception as exc:  # noqa: BLE001 -- a provider that raises loses only telemetry
            self.complain("OpenTelemetry", exc)

    def complain(self, who: str, exc: Exception, event: Event | None = None) -> None:
        """Log a watcher's failure: at WARNING the first time, at DEBUG after.

        Args:
            who: The watcher ("the on_event callback", "OpenTelemetry").
            exc: What it raised.
            event: The event it was given, if any: its order and attempt become the record's.
        """
        level = logging.DEBUG if who in self._complained else logging.WARNING
        self._complained.add(who)
        message = "%s raised %s; collection goes on"
        fields = {
            "order_number": getattr(event, "order_number", None),
            "attempt": getattr(event, "attempt", None),
        }
        _LOGGER.log(level, message, who, type(exc).__name__, exc_info=exc, extra=fields)

    def emit(self, event: Event) -> None:
        """Call the callback with ``event``; what it raises is logged, never passed on.

        Args:
            event: The step.
        """
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception as exc:  # noqa: BLE001 -- a callback must never break collection
            self.complain("the on_event callback", exc, event)

    def request(self, order: Order, attempt: int) -> Request | _Unwatched:
        """The watch over one request about to be sent (enter it around the exchange).

        Args:
            order: The order.
            attempt: Which attempt, from 1.

        Returns:
            A context manager; its ``answer`` passes the answer through.
        """
        if self.on_event is None and self.recording() is None:
            return _UNWATCHED
        return Request(self, order, attempt)

    def recording(self) -> Telemetry | None:
        """The telemetry, once an OpenTelemetry SDK may record (not the API's stand-ins alone)."""
        telemetry = self.telemetry
        if telemetry is None or telemetry.active():
            return telemetry
        return None

    def retry(
        self, order: Order, retry: int, max_retries: int, delay: float, error: CollectError
    ) -> None:
        """A failed attempt is sent again after ``delay`` seconds: log, count, tell.

        Args:
            order: The order.
            retry: Which retry, from 1.
            max_retries: How many are allowed.
            delay: Seconds until it is sent, the client's slow-down included.
            error: The failure.
        """
        number = order.request.order_number
        _LOGGER.warning(
            "order %d: %s; retry %d of %d in %.2f s",
            *(number, log_reason(error, number), retry, max_retries, delay),
            extra={"order_number": number, "attempt": retry},
        )
        telemetry = self.recording()
        if telemetry is not None:
            try:
                telemetry.retried(error)
            except Exception as exc:  # noqa: BLE001 -- contained like a raising callback
                self.complain("OpenTelemetry", exc)
        if self.on_event is not None:
            self.emit(RetryScheduled(number, retry, delay, error))

    def throttled(self, until: float, error: CollectError) -> None:
        """A 429 or -42 holds every request back until ``until``.

        Args:
            until: On the client's clock.
            error: The failure that asked for it.
        """
        if self.on_event is not None:
            self.emit(Throttled(until, error, since=self.clock()))

    def poll(self, order: Order, poll: int, delay: float, status: Status) -> None:
        """The order is asked again after ``delay`` seconds.

        Args:
            order: The order.
            poll: Which poll comes next, from 1.
            delay: Seconds until then.
            status: The status reported.
        """
        if self.on_event is not None:
            self.emit(PollScheduled(order.request.order_number, poll, delay, status))

    async def order(self, name: str, order: Order, work: Awaitable[CollectResult]) -> CollectResult:
        """Await ``work`` for ``order`` inside its span; tell how it ended.

        Args:
            name: The span's name (``smime_collect.collect`` or ``smime_collect.wait``).
            order: The order.
            work: What collects it.

        Returns:
            What ``work`` returns.

        Raises:
            BaseException: Whatever ``work`` raises.
        """
        telemetry = self.recording()
        if telemetry is None and self.on_event is None:
            return await work
        number = order.request.order_number
        started = self.clock()
        span = None if telemetry is None else self.start_span(telemetry, name, number)
        ended: BaseException | None = None
        try:
            result: CollectResult = await work
        except BaseException as exc:
            ended = exc
            raise
        finally:
            if span is not None:
                self.end_span(span, order.last_status, ended)
            error = ended if isinstance(ended, CollectError) else None
            if self.on_event is not None and (ended is None or error is not None):
                elapsed = self.clock() - started
                self.emit(OrderFinished(number, error is None, order.requests, elapsed, error))
        return result

    def start_span(
        self, telemetry: Telemetry, name: str, number: int, attempt: int | None = None
    ) -> _Span | None:
        """Start a span and make it current, unless OpenTelemetry raises."""
        try:
            return telemetry, *telemetry.start(name, number, attempt)
        except Exception as exc:  # noqa: BLE001 -- contained like a raising callback
            self.complain("OpenTelemetry", exc)
            return None

    def end_span(
        self,
        span: _Span,
        status: Status | None,
        error: BaseException | None,
        http_status: int | None = None,
    ) -> None:
        """End a span ``start_span`` started, with what is known."""
        telemetry, otel_span, token = span
        try:
            telemetry.end(otel_span, token, status, error, http_status)
        except Exception as exc:  # noqa: BLE001 -- contained like a raising callback
            self.complain("OpenTelemetry", exc)


class Request:
    """The watch over one HTTP attempt: its span, its metrics, its ``RequestFinished``."""

    __slots__ = (
        "_attempt",
        "_observer",
        "_order",
        "_span",
        "_started",
        "_telemetry",
        "http_status",
    )

    def __init__(self, observer: Observer, order: Order, attempt: int) -> None:
        self._observer = observer
        self._order = order
        self._attempt = attempt
        self._telemetry: Telemetry | None = None
        self._span: _Span | None = None
        self._started = 0.0
        self.http_status: int | None = None

    def __enter__(self) -> Request:
        observer = self._observer
        order = self._order
        order.requests += 1
        telemetry = self._telemetry = observer.recording()
        if telemetry is not None:
            telemetry.request_started()
            number = order.request.order_number
            self._span = observer.start_span(telemetry, REQUEST_SPAN, number, self._attempt)
        self._started = observer.clock()
        return self

    def answer(self, answer: Answer, http_status: int | None = None) -> Answer:
        """Note the attempt's answer and pass it on.

        Args:
            answer: A result, a failure, or TimedOut when the deadline cut it.
            http_status: The HTTP status of a response that was read.

        Returns:
            ``answer``.
        """
        self.http_status = http_status
        if isinstance(answer, Failure) and isinstance(answer.error, TransportError):
            self.http_status = answer.error.status_code
        status = answer.status if isinstance(answer, CollectResult) else None
        error = answer.error if isinstance(answer, Failure) else None
        self._finish(status, error, None)
        return answer

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is not None:
            self._finish(None, exc if isinstance(exc, CollectError) else None, exc)

    def _finish(
        self, status: Status | None, error: CollectError | None, raised: BaseException | None
    ) -> None:
        observer = self._observer
        elapsed = observer.clock() - self._started
        telemetry = self._telemetry
        if telemetry is not None:
            self._telemetry = None
            cancelled = raised is not None and error is None
            try:
                telemetry.request_ended(elapsed, status, error, cancelled=cancelled)
            except Exception as exc:  # noqa: BLE001 -- contained like a raising callback
                observer.complain("OpenTelemetry", exc)
            if self._span is not None:
                observer.end_span(self._span, status, raised or error, self.http_status)
                self._span = None
        if observer.on_event is not None and (raised is None or error is not None):
            number = self._order.request.order_number
            event = RequestFinished(number, self._attempt, elapsed, self.http_status, status, error)
            observer.emit(event)


class _Unwatched:
    """The watch when nobody watches: does nothing, passes answers through."""

    __slots__ = ()

    def __enter__(self) -> _Unwatched:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def answer(self, answer: Answer, http_status: int | None = None) -> Answer:
        """Pass ``answer`` on."""
        del http_status
        return answer


_UNWATCHED: Final = _Unwatched()

"""OpenTelemetry traces and metrics of a ``CollectClient`` (installed with ``smime-collect[otel]``).

Nothing to call: when ``opentelemetry-api`` is installed, every ``CollectClient`` records through
the global tracer and meter providers (or those given as ``tracer_provider=`` and
``meter_provider=``), and without an SDK configured that costs next to nothing.  This module
names what it records.

Spans, for one order that was retried once and polled once::

    smime_collect.wait                      (child of the caller's current span)
    ├── smime_collect.request  attempt=1    HTTP 503, error.type=TransportError
    ├── smime_collect.request  attempt=2    HTTP 200, status=PROCESSING
    └── smime_collect.request  attempt=1    HTTP 200, status=ATTACHED

``collect`` makes a ``smime_collect.collect`` span, ``wait_for_certificate`` a
``smime_collect.wait`` span, and each order of ``collect_many`` one of the two (``wait=True``
or not).  The spans of an instrumented httpx or aiohttp nest under the request spans.

Metrics: the counter ``smime_collect.requests`` (attribute ``outcome``), the histogram
``smime_collect.request.duration`` (seconds, attribute ``outcome``), the counter
``smime_collect.retries`` (attribute ``error.type``) and the up-down counter
``smime_collect.requests.in_flight``.  No attribute carries the password, and metric
attributes carry no order number (one time series per order would swamp a metrics backend).
"""

from __future__ import annotations

from contextvars import Token
from typing import Final

from opentelemetry import context, metrics, trace
from opentelemetry.trace import Span, StatusCode

from . import __version__
from ._enums import Status
from ._exceptions import CollectError, ResponseFormatError, SectigoError, TransportError

__all__ = [
    "ATTEMPT",
    "COLLECT_SPAN",
    "ERROR_TYPE",
    "HTTP_STATUS",
    "IN_FLIGHT",
    "ORDER_NUMBER",
    "REQUESTS",
    "REQUEST_DURATION",
    "REQUEST_SPAN",
    "RETRIES",
    "SECTIGO_CODE",
    "STATUS",
    "WAIT_SPAN",
    "Telemetry",
    "outcome",
]

COLLECT_SPAN: Final = "smime_collect.collect"
WAIT_SPAN: Final = "smime_collect.wait"
REQUEST_SPAN: Final = "smime_collect.request"

ORDER_NUMBER: Final = "smime_collect.order_number"
STATUS: Final = "smime_collect.status"
SECTIGO_CODE: Final = "smime_collect.sectigo_code"
ATTEMPT: Final = "smime_collect.attempt"
ERROR_TYPE: Final = "error.type"
HTTP_STATUS: Final = "http.response.status_code"

REQUESTS: Final = "smime_collect.requests"
REQUEST_DURATION: Final = "smime_collect.request.duration"
RETRIES: Final = "smime_collect.retries"
IN_FLIGHT: Final = "smime_collect.requests.in_flight"

_SCOPE: Final = "smime_collect"
_DURATION_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def outcome(status: Status | None, error: CollectError | None) -> str:
    """The ``outcome`` attribute of a request's metrics: one of a few fixed words.

    Args:
        status: The status Sectigo answered with, if it did.
        error: What went wrong, if something did.

    Returns:
        ``ok`` (a status came back), ``sectigo_error`` (a negative code), ``http_error`` (an
        HTTP error status), ``network_error``, ``invalid_response`` or ``timeout`` (the
        caller's deadline cut the request).
    """
    if error is None:
        return "ok" if status is not None else "timeout"
    if isinstance(error, SectigoError):
        return "sectigo_error"
    if isinstance(error, TransportError):
        return "network_error" if error.status_code is None else "http_error"
    if isinstance(error, ResponseFormatError):
        return "invalid_response"
    return "error"


class Telemetry:
    """One client's tracer, meter and instruments.

    Args:
        tracer_provider: Where spans go; None for the global one (``trace.set_tracer_provider``,
            looked up at each span, so it may be set after the client is made).
        meter_provider: Where measurements go; None for the global one.
    """

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self.tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider)
        meter = metrics.get_meter(_SCOPE, __version__, meter_provider)
        self.requests = meter.create_counter(
            REQUESTS, unit="{request}", description="HTTP requests sent to CollectSMIME"
        )
        self.duration = meter.create_histogram(
            REQUEST_DURATION,
            unit="s",
            description="Time from sending a request to its answer",
            # In seconds: the SDK's default buckets are for milliseconds (0 to 10,000).
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.retries = meter.create_counter(
            RETRIES, unit="{retry}", description="Failed requests that were sent again"
        )
        self.in_flight = meter.create_up_down_counter(
            IN_FLIGHT, unit="{request}", description="Requests sent and not yet answered"
        )

    def start(self, name: str, order_number: int) -> tuple[Span, Token[context.Context]]:
        """Start a span as a child of the current one, and make it current.

        Args:
            name: ``COLLECT_SPAN``, ``WAIT_SPAN`` or ``REQUEST_SPAN``.
            order_number: The order.

        Returns:
            The span and the token that ``end`` needs to restore the previous context.
        """
        span = self.tracer.start_span(name, attributes={ORDER_NUMBER: order_number})
        return span, context.attach(trace.set_span_in_context(span))

    def end(
        self,
        span: Span,
        token: Token[context.Context],
        status: Status | None,
        error: BaseException | None,
    ) -> None:
        """Restore the context ``start`` changed and end the span with what is known.

        Args:
            span: The span.
            token: From ``start``.
            status: The status Sectigo reported last, if any.
            error: What the span ended with, if it failed (a cancellation included).
        """
        context.detach(token)
        if span.is_recording():
            # One call: each set_attribute takes the span's lock and checks the value again.
            attributes: dict[str, str | int] = {}
            if status is not None:
                attributes[STATUS] = status.name
            if error is not None:
                attributes[ERROR_TYPE] = type(error).__name__
                if isinstance(error, SectigoError):
                    attributes[SECTIGO_CODE] = error.code
                if isinstance(error, CollectError):
                    span.set_status(StatusCode.ERROR, type(error).__name__)
            if attributes:
                span.set_attributes(attributes)
        span.end()

    def request_started(self) -> None:
        """Count a request in flight."""
        self.in_flight.add(1)

    def request_ended(
        self,
        span: Span | None,
        *,
        attempt: int,
        http_status: int | None,
        elapsed: float,
        status: Status | None,
        error: CollectError | None,
        cancelled: bool = False,
    ) -> None:
        """Record one request's metrics and its request-only span attributes.

        Args:
            span: Its request span (still open), if one was started.
            attempt: Which attempt it was.
            http_status: The answer's HTTP status, if one came.
            elapsed: Seconds it took.
            status: The status Sectigo answered with, if it did.
            error: What went wrong, if something did.
            cancelled: Whether the request was cancelled (the caller left, the client closed).
        """
        self.in_flight.add(-1)
        attributes = {"outcome": "cancelled" if cancelled else outcome(status, error)}
        self.requests.add(1, attributes)
        self.duration.record(elapsed, attributes)
        if span is not None and span.is_recording():
            if http_status is None:
                span.set_attribute(ATTEMPT, attempt)
            else:
                span.set_attributes({ATTEMPT: attempt, HTTP_STATUS: http_status})

    def retried(self, error: CollectError) -> None:
        """Count a retry.

        Args:
            error: The failure that is retried.
        """
        self.retries.add(1, {ERROR_TYPE: type(error).__name__})

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
or not).  A request span is the current span while its request is sent, so the spans of an
instrumented httpx or aiohttp (OpenTelemetry's own instrumentations) nest under it.

Metrics: the counter ``smime_collect.requests`` (observable; attribute ``outcome``), the
histogram ``smime_collect.request.duration`` (seconds, attribute ``outcome``), the counter
``smime_collect.retries`` (attribute ``error.type``) and the up-down counter
``smime_collect.requests.in_flight`` (observable).  No attribute carries the password, and metric
attributes carry no order number (one time series per order would swamp a metrics backend).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from contextvars import Token
from typing import Final

from opentelemetry import context, metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.metrics import _internal as _metrics_api
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
_OUTCOMES: Final = (
    "ok",
    "sectigo_error",
    "http_error",
    "network_error",
    "invalid_response",
    "timeout",
    "cancelled",
    "error",
)
# Built once: every request of an outcome records with the same attributes.
_OUTCOME_ATTRIBUTES: Final = {name: {"outcome": name} for name in _OUTCOMES}


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


class _Counts:
    """Requests sent and in flight, read by the observable instruments when metrics are collected.

    Counting in a few integers and letting the SDK read them at collection time costs a request
    far less than two up-down counter measurements and a counter measurement would.  One
    ``_Counts`` serves every client of a meter provider: the SDK keeps one instrument per name
    and scope, with the callbacks of the first client that created it.  A provider given to a
    client before the application made it the global one is read through its own ``_Counts``
    only, so that one also reports the global clients' counts once its provider is global.
    """

    __slots__ = ("__weakref__", "in_flight", "lock", "provider", "requests")

    def __init__(self, provider: object = None) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.requests = dict.fromkeys(_OUTCOMES, 0)
        self.provider = None if provider is None else weakref.ref(provider)

    def _sharing(self) -> list[_Counts]:
        """These counts, and the global clients' when this provider is the global one now."""
        if self.provider is not None and self.provider() is metrics.get_meter_provider():
            return [self, _GLOBAL_COUNTS]
        return [self]

    def observe_requests(self, options: CallbackOptions) -> Iterable[Observation]:
        """The requests sent so far, by outcome (outcomes not seen yet are left out)."""
        del options
        totals = dict.fromkeys(_OUTCOMES, 0)
        for counts in self._sharing():
            with counts.lock:
                for name, count in counts.requests.items():
                    totals[name] += count
        return [Observation(n, _OUTCOME_ATTRIBUTES[name]) for name, n in totals.items() if n]

    def observe_in_flight(self, options: CallbackOptions) -> Iterable[Observation]:
        """The requests sent and not yet answered."""
        del options
        return [Observation(sum(counts.in_flight for counts in self._sharing()))]


_GLOBAL_COUNTS: Final = _Counts()
_COUNTS_BY_PROVIDER: Final[weakref.WeakKeyDictionary[object, _Counts]] = weakref.WeakKeyDictionary()
_COUNTS_LOCK: Final = threading.Lock()


def _counts_for(meter_provider: metrics.MeterProvider | None) -> _Counts:
    """The counts that every client of ``meter_provider`` shares."""
    if meter_provider is None or meter_provider is metrics.get_meter_provider():
        return _GLOBAL_COUNTS
    try:
        with _COUNTS_LOCK:  # clients made in several threads at once share one
            counts = _COUNTS_BY_PROVIDER.get(meter_provider)
            if counts is None:
                counts = _COUNTS_BY_PROVIDER[meter_provider] = _Counts(meter_provider)
            return counts
    except TypeError:  # a provider that cannot be weakly referenced (or hashed): its own
        return _Counts()


def _stand_in(provider: object) -> bool:
    """Whether ``provider`` is one of the API's own, which record nothing (proxy or no-op)."""
    return type(provider).__module__.startswith(("opentelemetry.trace", "opentelemetry.metrics"))


def _global_provider_set() -> bool:
    """Whether an application has set a global tracer or meter provider since the API started.

    ``get_tracer_provider()`` and ``get_meter_provider()`` look an environment variable up on
    every call while none is set, which costs more than a client's own work for a request;
    the API's module globals answer the same question for next to nothing.  Should a release
    of the API rename them, the answer is yes: the proxies then pass on whatever is set.
    """
    tracers = getattr(trace, "_TRACER_PROVIDER", True)
    meters = getattr(_metrics_api, "_METER_PROVIDER", True)
    return tracers is not None or meters is not None


class Telemetry:
    """One client's tracer, meter and instruments.

    Args:
        tracer_provider: Where spans go; None for the global one (``trace.set_tracer_provider``,
            which may be called after the client is made).
        meter_provider: Where measurements go; None for the global one (likewise).

    While only the API's global proxies are there (no SDK set), ``active`` says so and the
    client skips its spans and measurements: the proxies would drop them.  Once an application
    sets an SDK's providers, the proxies pass everything on to it, so a client made before
    that records from its next order on.
    """

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self.tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider)
        meter = metrics.get_meter(_SCOPE, __version__, meter_provider)
        self.counts = counts = _counts_for(meter_provider)
        self.requests = meter.create_observable_counter(
            REQUESTS,
            [counts.observe_requests],
            unit="{request}",
            description="HTTP requests sent to CollectSMIME",
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
        self.in_flight = meter.create_observable_up_down_counter(
            IN_FLIGHT,
            [counts.observe_in_flight],
            unit="{request}",
            description="Requests sent and not yet answered",
        )
        given = [p for p in (tracer_provider, meter_provider) if p is not None]
        self._uses_global = len(given) < len((tracer_provider, meter_provider))
        self._live = any(not _stand_in(provider) for provider in given) or (
            self._uses_global and _global_provider_set()
        )

    def active(self) -> bool:
        """Whether an SDK may record: False while only the API's stand-ins are there.

        Returns:
            True once a provider given, or one an application set globally since, can record;
            it stays True.
        """
        if not self._live and self._uses_global and _global_provider_set():
            self._live = True
        return self._live

    def start(
        self, name: str, order_number: int, attempt: int | None = None
    ) -> tuple[Span, Token[context.Context] | None]:
        """Start a span as a child of the current one, and make it current.

        Args:
            name: ``COLLECT_SPAN``, ``WAIT_SPAN`` or ``REQUEST_SPAN``.
            order_number: The order.
            attempt: For a request span, which attempt it is.

        Returns:
            The span and the token that ``end`` needs to restore the previous context (None
            when the span is the API's invalid one: nothing to make current).
        """
        attributes: dict[str, int] = {ORDER_NUMBER: order_number}
        if attempt is not None:
            attributes[ATTEMPT] = attempt
        span = self.tracer.start_span(name, attributes=attributes)
        if not span.get_span_context().is_valid:
            return span, None
        return span, context.attach(trace.set_span_in_context(span))

    def end(
        self,
        span: Span,
        token: Token[context.Context] | None,
        status: Status | None,
        error: BaseException | None,
        http_status: int | None = None,
    ) -> None:
        """Restore the context ``start`` changed and end the span with what is known.

        Args:
            span: The span.
            token: From ``start``.
            status: The status Sectigo reported last, if any.
            error: What the span ended with, if it failed (a cancellation included).
            http_status: For a request span, the answer's HTTP status, if one came.
        """
        if token is not None:
            context.detach(token)
        if span.is_recording():
            # One call: each set_attribute takes the span's lock and checks the value again.
            attributes: dict[str, str | int] = {}
            if http_status is not None:
                attributes[HTTP_STATUS] = http_status
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
        counts = self.counts
        with counts.lock:
            counts.in_flight += 1

    def request_ended(
        self,
        elapsed: float,
        status: Status | None,
        error: CollectError | None,
        *,
        cancelled: bool = False,
    ) -> None:
        """Record one request's metrics (its span is ended by ``end``).

        Args:
            elapsed: Seconds it took.
            status: The status Sectigo answered with, if it did.
            error: What went wrong, if something did.
            cancelled: Whether the request was cancelled (the caller left, the client closed).
        """
        name = "cancelled" if cancelled else outcome(status, error)
        counts = self.counts
        with counts.lock:
            counts.in_flight -= 1
            counts.requests[name] += 1
        self.duration.record(elapsed, _OUTCOME_ATTRIBUTES[name])

    def retried(self, error: CollectError) -> None:
        """Count a retry.

        Args:
            error: The failure that is retried.
        """
        self.retries.add(1, {ERROR_TYPE: type(error).__name__})

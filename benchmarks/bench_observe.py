"""What watching the client costs: client CPU per request with on_event and OpenTelemetry.

Against ``bench_client``'s stand-in server (a child process, so ``time.process_time`` here is
client CPU only), one client collects ready orders with ``collect_many(wait=False)`` at
concurrency 4, every chain parsed, in five set-ups run in turns (the median of the rounds):

- ``plain``: nobody watches (OpenTelemetry kept out, no callback): the baseline;
- ``on_event``: a no-op callback (target: at most 1.05x the baseline);
- ``otel_api``: OpenTelemetry's API installed, no SDK configured (target: at most 1.05x);
- ``otel_sdk``: an SDK tracer provider recording and exporting every span (in memory) and an SDK
  meter provider (target: at most 1.3x);
- ``otel_sdk_bare``: as ``otel_sdk``, but the client's telemetry reduced to the SDK calls
  that any instrumentation giving the same spans must make (each span started with its
  attributes and current while its work runs, its last attributes added, ended and exported;
  one histogram measurement per request) and nothing else: no counts, no checks.  What the SDK
  itself costs in the client; ``otel_sdk`` over ``otel_sdk_bare`` is what our code adds.

``status`` figures repeat the comparison with status queries (no certificate to parse), where
the client's own work per request is smallest and any overhead shows most.

Each ratio is given twice: the median of one set-up over the median of ``plain``, and
(``_paired``) the median over the rounds of the ratio within a round, which a machine that
speeds up or slows down between rounds disturbs less.  ``us_sdk_alone`` is the CPU the same
SDK calls take per request in a tight loop, without the client: far less than in the client,
where the client's own work has pushed the SDK's code and data out of the CPU's caches.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import statistics
import time
from collections.abc import Iterator
from typing import Any

from benchmarks.bench_client import PASSWORD, server

ORDERS = 1500
CONCURRENCY = 4
ROUNDS = 5
SETUPS = ("plain", "on_event", "otel_api", "otel_sdk", "otel_sdk_bare")


@contextlib.contextmanager
def _setup(name: str) -> Iterator[dict[str, Any]]:
    """The client options of a set-up, with OpenTelemetry kept out where it must be."""
    from smime_collect._client import _observe

    load = _observe._load_telemetry
    options: dict[str, Any] = {}
    providers: list[Any] = []
    if name in ("plain", "on_event"):
        _observe._load_telemetry = lambda *_: None
    if name == "on_event":
        options["on_event"] = lambda event: None
    if name == "otel_sdk_bare":
        _observe._load_telemetry = _bare_telemetry
    if name.startswith("otel_sdk"):
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
        meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
        options.update(tracer_provider=tracer_provider, meter_provider=meter_provider)
        providers += [tracer_provider, meter_provider]
    try:
        yield options
    finally:
        _observe._load_telemetry = load
        for provider in providers:
            provider.shutdown()


def _bare_telemetry(tracer_provider: Any, meter_provider: Any) -> Any:
    """A ``Telemetry`` that makes the SDK calls of our spans and histogram, and nothing else."""
    from opentelemetry import context, trace

    from smime_collect import otel

    class Bare(otel.Telemetry):
        def start(self, name: str, order_number: int, attempt: int | None = None) -> Any:
            attributes = {otel.ORDER_NUMBER: order_number}
            if attempt is not None:
                attributes[otel.ATTEMPT] = attempt
            span = self.tracer.start_span(name, attributes=attributes)
            return span, context.attach(trace.set_span_in_context(span))

        def end(self, span: Any, token: Any, *args: Any) -> None:
            context.detach(token)
            span.set_attributes({otel.STATUS: "ATTACHED"})
            span.end()

        def request_started(self) -> None:
            pass

        def request_ended(self, elapsed: float, *args: Any, **kwargs: Any) -> None:
            self.duration.record(elapsed, {"outcome": "ok"})

    return Bare(tracer_provider, meter_provider)


async def _collect(url: str, options: dict[str, Any], *, status: bool) -> None:
    from smime_collect import CollectClient, QueryType

    query = QueryType.STATUS if status else QueryType.CERTIFICATE_AND_CHAIN
    async with CollectClient(
        "bench",
        PASSWORD,
        base_url=url,
        allow_insecure_http=True,
        max_concurrency=CONCURRENCY,
        **options,
    ) as client:
        orders = range(4, 4 + 4 * ORDERS, 4)  # ready at once on /fast
        async for outcome in client.collect_many(orders, wait=False, query_type=query):
            assert outcome.ok, outcome.error


def _cpu_per_request(url: str, name: str, *, status: bool) -> float:
    with _setup(name) as options:
        gc.collect()
        started = time.process_time()
        asyncio.run(_collect(url, options, status=status))
        return (time.process_time() - started) / ORDERS


def _sdk_alone_per_request() -> float:
    """CPU seconds the SDK takes for one request's spans and measurement, without the client."""
    from opentelemetry import context, trace

    from smime_collect import otel

    with _setup("otel_sdk") as options:
        tracer = options["tracer_provider"].get_tracer("bench")
        histogram = options["meter_provider"].get_meter("bench").create_histogram("bench")
        outcome = {"outcome": "ok"}
        gc.collect()
        started = time.process_time()
        for number in range(ORDERS):
            order = tracer.start_span(otel.COLLECT_SPAN, attributes={otel.ORDER_NUMBER: number})
            outer = context.attach(trace.set_span_in_context(order))
            request = tracer.start_span(
                otel.REQUEST_SPAN, attributes={otel.ORDER_NUMBER: number, otel.ATTEMPT: 1}
            )
            inner = context.attach(trace.set_span_in_context(request))
            histogram.record(0.001, outcome)
            context.detach(inner)
            request.set_attributes({otel.HTTP_STATUS: 200, otel.STATUS: "ATTACHED"})
            request.end()
            context.detach(outer)
            order.set_attributes({otel.STATUS: "ATTACHED"})
            order.end()
        return (time.process_time() - started) / ORDERS


def _figures(samples: dict[str, list[float]], prefix: str) -> dict[str, float]:
    """Microseconds per request, and each set-up's ratios to ``plain`` (medians, and paired)."""
    alone = samples.pop("sdk_alone")
    figures = {f"{prefix}us_sdk_alone": round(statistics.median(alone) * 1e6, 1)}
    median = {name: statistics.median(values) for name, values in samples.items()}
    plain = samples["plain"]
    for name, values in samples.items():
        figures[f"{prefix}us_per_request_{name}"] = round(median[name] * 1e6, 1)
        if name != "plain":
            figures[f"{prefix}{name}_over_plain"] = round(median[name] / median["plain"], 3)
            paired = statistics.median(x / y for x, y in zip(values, plain, strict=True))
            figures[f"{prefix}{name}_over_plain_paired"] = round(paired, 3)
    ours = zip(samples["otel_sdk"], samples["otel_sdk_bare"], strict=True)
    figures[f"{prefix}otel_sdk_over_bare_paired"] = round(
        statistics.median(x / y for x, y in ours), 3
    )
    return figures


def main() -> dict[str, float]:
    """Run the set-ups in turns; return microseconds per request and ratios to ``plain``."""
    figures: dict[str, float] = {}
    with server() as base:
        url = f"{base}/fast/CollectSMIME"
        for status in (False, True):
            prefix = "status_" if status else ""
            for name in SETUPS:  # warm up: imports, first connections
                _cpu_per_request(url, name, status=status)
            samples: dict[str, list[float]] = {name: [] for name in (*SETUPS, "sdk_alone")}
            for _ in range(ROUNDS):
                for name in SETUPS:
                    samples[name].append(_cpu_per_request(url, name, status=status))
                samples["sdk_alone"].append(_sdk_alone_per_request())
            figures.update(_figures(samples, prefix))
    return figures


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2))

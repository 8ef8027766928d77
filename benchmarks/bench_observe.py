"""What watching the client costs: client CPU per request with on_event and OpenTelemetry.

Against ``bench_client``'s stand-in server (a child process, so ``time.process_time`` here is
client CPU only), one client collects ready orders with ``collect_many(wait=False)`` at
concurrency 4, every chain parsed, in four set-ups run in turns (the median of the rounds):

- ``plain``: nobody watches (OpenTelemetry kept out, no callback): the baseline;
- ``on_event``: a no-op callback (target: at most 1.05x the baseline);
- ``otel_api``: OpenTelemetry's API installed, no SDK configured (target: at most 1.05x);
- ``otel_sdk``: an SDK tracer provider recording and exporting every span (in memory) and an SDK
  meter provider (target: at most 1.3x).

``status`` figures repeat the comparison with status queries (no certificate to parse), where
the client's own work per request is smallest and any overhead shows most.
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
SETUPS = ("plain", "on_event", "otel_api", "otel_sdk")


@contextlib.contextmanager
def _setup(name: str) -> Iterator[dict[str, Any]]:
    """The client options of a set-up, with OpenTelemetry kept out where it must be."""
    from smime_collect._client import _observe

    load = _observe._load_telemetry
    options: dict[str, Any] = {}
    providers: list[Any] = []
    if name in ("plain", "on_event"):
        _observe._load_telemetry = lambda *_: None  # type: ignore[assignment]
    if name == "on_event":
        options["on_event"] = lambda event: None
    if name == "otel_sdk":
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


def main() -> dict[str, float]:
    """Run the set-ups in turns; return microseconds per request and ratios to ``plain``."""
    figures: dict[str, float] = {}
    with server() as base:
        url = f"{base}/fast/CollectSMIME"
        for status in (False, True):
            prefix = "status_" if status else ""
            for name in SETUPS:  # warm up: imports, first connections
                _cpu_per_request(url, name, status=status)
            samples: dict[str, list[float]] = {name: [] for name in SETUPS}
            for _ in range(ROUNDS):
                for name in SETUPS:
                    samples[name].append(_cpu_per_request(url, name, status=status))
            median = {name: statistics.median(values) for name, values in samples.items()}
            for name in SETUPS:
                figures[f"{prefix}us_per_request_{name}"] = round(median[name] * 1e6, 1)
                if name != "plain":
                    ratio = median[name] / median["plain"]
                    figures[f"{prefix}{name}_over_plain"] = round(ratio, 3)
    return figures


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2))

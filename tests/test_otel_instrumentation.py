"""The spans of OpenTelemetry's httpx and aiohttp-client instrumentations nest under ours.

A user who turns those instrumentations on gets one HTTP client span per request, and it must
be a child of that attempt's ``smime_collect.request`` span, on both transports the client
sends on: httpcore's (core httpx) and aiohttp's (the ``aiohttp`` extra).  The simulator runs on
a loopback socket, since both instrumentations patch the real transports.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from smime_collect import CollectClient, Status
from smime_collect.testing import Fault, ManualClock, Simulator, serve

PASSWORD = "in-pa55&word"


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A tracer provider that keeps every span in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


@pytest.fixture
def httpx_instrumented(
    spans: tuple[TracerProvider, InMemorySpanExporter], monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """OpenTelemetry's httpx instrumentation on, and the client on core httpx (no aiohttp)."""
    instrumentation = pytest.importorskip("opentelemetry.instrumentation.httpx")
    monkeypatch.setitem(sys.modules, "httpx_aiohttp", None)  # the core-only transport
    instrumentor = instrumentation.HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=spans[0])
    yield
    instrumentor.uninstrument()


@pytest.fixture
def aiohttp_instrumented(spans: tuple[TracerProvider, InMemorySpanExporter]) -> Iterator[None]:
    """OpenTelemetry's aiohttp-client instrumentation on; the client on the aiohttp extra."""
    pytest.importorskip("httpx_aiohttp")
    instrumentation = pytest.importorskip("opentelemetry.instrumentation.aiohttp_client")
    instrumentor = instrumentation.AioHttpClientInstrumentor()
    instrumentor.instrument(tracer_provider=spans[0])
    yield
    instrumentor.uninstrument()


async def _wait_with_a_retry(provider: TracerProvider) -> None:
    """Wait for an order that needs two polls, after one HTTP 503, on a loopback socket."""
    sim = Simulator(seed=5, require_https=False)
    sim.add_account("alice", PASSWORD)
    sim.add_order(1001, ready_after_polls=2)
    sim.inject(Fault.HTTP_503, order_number=1001)
    clock = ManualClock()
    caller = provider.get_tracer("app")
    async with (
        serve(sim, tls=False) as server,
        CollectClient(
            "alice",
            PASSWORD,
            base_url=server.url,
            allow_insecure_http=True,
            sleep=clock.sleep,
            clock=clock,
            tracer_provider=provider,
        ) as client,
    ):
        with caller.start_as_current_span("GET /certificates/1001"):
            result = await client.wait_for_certificate(1001, poll_interval=1)
    assert result.status is Status.ATTACHED


def _check_nesting(finished: list[ReadableSpan], transport: str) -> None:
    """Each request span has exactly one HTTP client span as its child, and nothing else does."""
    by_id = {span.context.span_id: span for span in finished}
    requests = [span for span in finished if span.name == "smime_collect.request"]
    (wait,) = [span for span in finished if span.name == "smime_collect.wait"]
    (outer,) = [span for span in finished if span.name == "GET /certificates/1001"]
    http = [span for span in finished if _scope(span).endswith(transport)]
    assert len(requests) == len(http) == 4
    assert len(finished) == 4 + 4 + 2
    assert wait.parent is not None
    assert wait.parent.span_id == outer.context.span_id
    for request in requests:
        assert request.parent is not None
        assert request.parent.span_id == wait.context.span_id
    parents: list[Any] = []
    for span in http:
        assert span.parent is not None
        assert span.context.trace_id == outer.context.trace_id
        parents.append(by_id[span.parent.span_id])
        assert PASSWORD not in repr(dict(span.attributes or {}))  # the form body is not recorded
    # In the order they were sent: the client span ends first, inside its request span.
    assert parents == requests
    assert [_status_code(span) for span in http] == [503, 200, 200, 200]


def _scope(span: ReadableSpan) -> str:
    """The name of the instrumentation that made ``span``."""
    scope = span.instrumentation_scope
    return "" if scope is None else scope.name


def _status_code(span: ReadableSpan) -> object:
    """The HTTP status a client span names, under the stable or the older attribute name."""
    attributes = dict(span.attributes or {})
    return attributes.get("http.response.status_code", attributes.get("http.status_code"))


class TestNesting:
    """An instrumented transport's spans are children of our request spans, ids exact."""

    @pytest.mark.usefixtures("httpx_instrumented")
    async def test_core_httpx(self, spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
        """Core httpx with HTTPXClientInstrumentor: one httpx span under each request span."""
        provider, exporter = spans
        await _wait_with_a_retry(provider)
        _check_nesting(list(exporter.get_finished_spans()), "httpx")

    @pytest.mark.usefixtures("aiohttp_instrumented")
    async def test_aiohttp(self, spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
        """The aiohttp extra with AioHttpClientInstrumentor: one aiohttp span under each."""
        provider, exporter = spans
        await _wait_with_a_retry(provider)
        _check_nesting(list(exporter.get_finished_spans()), "aiohttp_client")

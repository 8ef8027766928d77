"""OpenTelemetry: a client's spans and metrics, read back from the SDK's in-memory exporters."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import attrs
import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prometheus_client.parser import text_string_to_metric_families

from smime_collect import CertificateRevokedError, CollectClient, Status
from smime_collect.testing import Fault, ManualClock, OrderState, Simulator

PASSWORD = "ot-pa55&word"


@attrs.define
class Recorded:
    """An SDK tracer and meter provider, with what they recorded."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader

    def finished(self) -> list[ReadableSpan]:
        """The spans ended so far, in the order they ended."""
        return list(self.spans.get_finished_spans())

    def points(self, name: str) -> dict[tuple[tuple[str, Any], ...], Any]:
        """The data points of the metric ``name``, by their sorted attributes."""
        data = self.metrics.get_metrics_data()
        found: dict[tuple[tuple[str, Any], ...], Any] = {}
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            key = tuple(sorted((point.attributes or {}).items()))
                            found[key] = point
        return found

    def counts(self, name: str) -> dict[tuple[tuple[str, Any], ...], Any]:
        """A counter's values by attributes (a histogram's counts)."""
        return {
            key: getattr(point, "value", getattr(point, "count", None))
            for key, point in self.points(name).items()
        }


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    """Providers that record every span and every measurement in memory."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Recorded(tracer_provider, meter_provider, exporter, reader)
    tracer_provider.shutdown()
    meter_provider.shutdown()


def simulator() -> Simulator:
    """A simulator with one account and an order that needs two polls."""
    sim = Simulator(seed=11)
    sim.add_account("alice", PASSWORD)
    sim.add_order(1001, ready_after_polls=2)
    sim.add_order(1002)
    sim.add_order(1003, state=OrderState.REVOKED)
    return sim


def client_for(sim: Simulator, recorded: Recorded | None = None, **kwargs: Any) -> CollectClient:
    """A client on the simulator in-process and a manual clock, recording into ``recorded``."""
    clock = ManualClock()
    if recorded is not None:
        kwargs.setdefault("tracer_provider", recorded.tracer_provider)
        kwargs.setdefault("meter_provider", recorded.meter_provider)
    return CollectClient(
        "alice",
        PASSWORD,
        base_url=sim.url,
        transport=sim.transport(),
        sleep=clock.sleep,
        clock=clock,
        **kwargs,
    )


class TestSpans:
    """Names, parentage and attributes of the spans, exactly."""

    async def test_two_polls_and_one_503_retry(self, recorded: Recorded) -> None:
        """One wait span under the caller's; four request spans under it, in order."""
        sim = simulator()
        sim.inject(Fault.HTTP_503, order_number=1001)
        caller = recorded.tracer_provider.get_tracer("app")
        async with client_for(sim, recorded) as client:
            with caller.start_as_current_span("GET /certificates/1001") as outer:
                await client.wait_for_certificate(1001, poll_interval=1)
        spans = recorded.finished()
        assert [span.name for span in spans] == ["smime_collect.request"] * 4 + [
            "smime_collect.wait",
            "GET /certificates/1001",
        ]
        *requests, wait, _ = spans
        assert wait.parent is not None
        assert wait.parent.span_id == outer.get_span_context().span_id
        assert {r.parent.span_id for r in requests if r.parent} == {wait.context.span_id}
        assert [dict(r.attributes or {}) for r in requests] == [
            {
                "smime_collect.order_number": 1001,
                "smime_collect.attempt": 1,
                "http.response.status_code": 503,
                "error.type": "TransportError",
            },
            *[
                {
                    "smime_collect.order_number": 1001,
                    "smime_collect.attempt": attempt,
                    "http.response.status_code": 200,
                    "smime_collect.status": status,
                }
                for attempt, status in [(2, "PROCESSING"), (1, "PROCESSING"), (1, "ATTACHED")]
            ],
        ]
        assert requests[0].status.status_code is StatusCode.ERROR
        assert dict(wait.attributes or {}) == {
            "smime_collect.order_number": 1001,
            "smime_collect.status": "ATTACHED",
        }
        assert wait.status.status_code is StatusCode.UNSET

    async def test_a_sectigo_error_names_its_code(self, recorded: Recorded) -> None:
        """A revoked order: both spans carry -21 and the error type; the order span is an error."""
        sim = simulator()
        async with client_for(sim, recorded) as client:
            with pytest.raises(CertificateRevokedError):
                await client.collect(1003)
        request, order = recorded.finished()
        assert order.name == "smime_collect.collect"
        for span in (request, order):
            attributes = dict(span.attributes or {})
            assert attributes["smime_collect.sectigo_code"] == -21
            assert attributes["error.type"] == "CertificateRevokedError"
            assert span.status.status_code is StatusCode.ERROR
        assert request.attributes is not None
        assert request.attributes["http.response.status_code"] == 200

    async def test_collect_many_has_a_span_per_order(self, recorded: Recorded) -> None:
        """Each order of a batch is its own span under the caller's, its requests under it."""
        sim = simulator()
        caller = recorded.tracer_provider.get_tracer("app")
        async with client_for(sim, recorded) as client:
            with caller.start_as_current_span("nightly batch") as outer:
                outcomes = [o async for o in client.collect_many([1001, 1002], poll_interval=1)]
        assert all(o.ok for o in outcomes)
        spans = recorded.finished()
        orders = {
            span.attributes["smime_collect.order_number"]: span  # type: ignore[index]
            for span in spans
            if span.name == "smime_collect.wait"
        }
        assert set(orders) == {1001, 1002}
        for number, order in orders.items():
            assert order.parent is not None
            assert order.parent.span_id == outer.get_span_context().span_id
            children = [s for s in spans if s.parent and s.parent.span_id == order.context.span_id]
            assert [s.name for s in children] == ["smime_collect.request"] * (
                3 if number == 1001 else 1
            )


class TestMetrics:
    """The four instruments, counted exactly."""

    async def test_two_polls_and_one_503_retry(self, recorded: Recorded) -> None:
        """4 requests (3 ok, 1 HTTP error), 1 retry, 4 durations, nothing left in flight."""
        sim = simulator()
        sim.inject(Fault.HTTP_503, order_number=1001)
        async with client_for(sim, recorded) as client:
            await client.wait_for_certificate(1001, poll_interval=1)
        assert recorded.counts("smime_collect.requests") == {
            (("outcome", "ok"),): 3,
            (("outcome", "http_error"),): 1,
        }
        assert recorded.counts("smime_collect.retries") == {(("error.type", "TransportError"),): 1}
        assert recorded.counts("smime_collect.request.duration") == {
            (("outcome", "ok"),): 3,
            (("outcome", "http_error"),): 1,
        }
        assert recorded.counts("smime_collect.requests.in_flight") == {(): 0}

    async def test_outcomes_of_failures(self, recorded: Recorded) -> None:
        """A Sectigo error and a dropped connection are counted under their own outcome."""
        sim = simulator()
        sim.inject(Fault.DROP_CONNECTION, order_number=1002)
        async with client_for(sim, recorded) as client:
            await client.collect(1002)
            with pytest.raises(CertificateRevokedError):
                await client.collect(1003)
        assert recorded.counts("smime_collect.requests") == {
            (("outcome", "network_error"),): 1,
            (("outcome", "ok"),): 1,
            (("outcome", "sectigo_error"),): 1,
        }

    async def test_clients_sharing_a_meter_provider_add_up(self, recorded: Recorded) -> None:
        """Two clients on one meter provider: their requests are counted together, once each."""
        sim = simulator()
        async with client_for(sim, recorded) as first, client_for(sim, recorded) as second:
            await first.collect(1002)
            await second.collect(1002)
            with pytest.raises(CertificateRevokedError):
                await second.collect(1003)
        assert recorded.counts("smime_collect.requests") == {
            (("outcome", "ok"),): 2,
            (("outcome", "sectigo_error"),): 1,
        }
        assert recorded.counts("smime_collect.requests.in_flight") == {(): 0}


class TestCancelled:
    """A request cancelled in flight ends its spans and leaves nothing counted in flight."""

    async def test_cancelled_request(self, recorded: Recorded) -> None:
        """Cancelled awaiting the answer: outcome ``cancelled``, 0 in flight, spans ended."""
        sent = asyncio.Event()

        async def hang(request: httpx.Request) -> httpx.Response:
            sent.set()
            await asyncio.Event().wait()
            raise AssertionError("never answered")

        async with CollectClient(
            "alice",
            PASSWORD,
            transport=httpx.MockTransport(hang),
            tracer_provider=recorded.tracer_provider,
            meter_provider=recorded.meter_provider,
        ) as client:
            task = asyncio.create_task(client.collect(1001))
            await sent.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert recorded.counts("smime_collect.requests") == {(("outcome", "cancelled"),): 1}
        assert recorded.counts("smime_collect.requests.in_flight") == {(): 0}
        request, order = recorded.finished()
        assert (request.name, order.name) == ("smime_collect.request", "smime_collect.collect")
        assert dict(request.attributes or {})["error.type"] == "CancelledError"


class _Raising:
    """A tracer or meter provider (or anything got from one) that raises on every call."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"telemetry backend down ({name})")


class _RaisingTracerProvider:
    """A tracer provider whose tracers raise when a span is started."""

    def get_tracer(self, *args: object, **kwargs: object) -> Any:
        return _Raising()


class TestContained:
    """A tracer or meter provider that raises never costs an order."""

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"tracer_provider": _Raising()},
            {"meter_provider": _Raising()},
            {"tracer_provider": _RaisingTracerProvider()},
        ],
        ids=["tracer-provider", "meter-provider", "tracer"],
    )
    async def test_raising_provider(
        self, kwargs: dict[str, Any], caplog: pytest.LogCaptureFixture
    ) -> None:
        """The order is collected; the failure is logged at WARNING once, at DEBUG after."""
        sim = simulator()
        caplog.set_level(logging.DEBUG, logger="smime_collect")
        async with client_for(sim, **kwargs) as client:
            result = await client.wait_for_certificate(1001, poll_interval=1)
        assert result.status is Status.ATTACHED
        complaints = [r for r in caplog.records if "OpenTelemetry raised" in r.getMessage()]
        assert complaints
        assert [r.levelno for r in complaints] == [logging.WARNING] + [logging.DEBUG] * (
            len(complaints) - 1
        )


class TestOptional:
    """OpenTelemetry is optional: the core imports and collects without it."""

    def test_importing_the_package_does_not_import_opentelemetry(self) -> None:
        """``import smime_collect`` leaves OpenTelemetry unloaded."""
        code = "import sys, smime_collect; assert 'opentelemetry' not in sys.modules"
        subprocess.run([sys.executable, "-c", code], check=True)  # noqa: S603 -- our own code

    def test_without_opentelemetry(self) -> None:
        """With opentelemetry absent, a client collects; ``smime_collect.otel`` says ImportError."""
        code = "\n".join(
            [
                "import asyncio, sys",
                "sys.modules['opentelemetry'] = None",
                "from smime_collect import CollectClient",
                "from smime_collect.testing import Simulator",
                "sim = Simulator(seed=1)",
                "sim.add_account('a', 'p')",
                "sim.add_order(1)",
                "async def main():",
                "    async with CollectClient('a', 'p', base_url=sim.url,",
                "                             transport=sim.transport()) as client:",
                "        assert client._observer.telemetry is None",
                "        await client.collect(1)",
                "asyncio.run(main())",
                "try:",
                "    import smime_collect.otel",
                "except ImportError:",
                "    pass",
                "else:",
                "    raise SystemExit('smime_collect.otel imported without opentelemetry')",
            ]
        )
        subprocess.run([sys.executable, "-c", code], check=True)  # noqa: S603 -- our own code


class TestGlobalProviders:
    """With the global providers, a client records once an SDK is set, even one made before."""

    async def test_no_op_providers_given_watch_nothing(self) -> None:
        """The API's no-op providers given: no request is watched, and the order is collected."""
        from opentelemetry.metrics import NoOpMeterProvider
        from opentelemetry.trace import NoOpTracerProvider

        from smime_collect._client import _observe

        sim = simulator()
        providers = {"tracer_provider": NoOpTracerProvider(), "meter_provider": NoOpMeterProvider()}
        async with client_for(sim, **providers) as client:
            assert client._observer.telemetry is not None
            assert client._observer.request(None, 1) is _observe._UNWATCHED  # type: ignore[arg-type]
            result = await client.wait_for_certificate(1001, poll_interval=1)
        assert result.status is Status.ATTACHED

    async def test_an_sdk_tracer_provider_alone_is_watched(self, recorded: Recorded) -> None:
        """An SDK tracer provider given, the meter left global: the spans are recorded."""
        sim = simulator()
        async with client_for(sim, tracer_provider=recorded.tracer_provider) as client:
            await client.collect(1002)
        assert [span.name for span in recorded.finished()] == [
            "smime_collect.request",
            "smime_collect.collect",
        ]

    def test_sdk_set_after_the_client_is_made(self) -> None:
        """API alone: nothing watched; once the SDK is set, the next order has its spans."""
        code = "\n".join(
            [
                "import asyncio",
                "from opentelemetry import metrics, trace",
                "from opentelemetry.sdk.metrics import MeterProvider",
                "from opentelemetry.sdk.metrics.export import InMemoryMetricReader",
                "from opentelemetry.sdk.trace import TracerProvider",
                "from opentelemetry.sdk.trace.export import SimpleSpanProcessor",
                "from opentelemetry.sdk.trace.export.in_memory_span_exporter import (",
                "    InMemorySpanExporter)",
                "from smime_collect import CollectClient",
                "from smime_collect._client import _observe",
                "from smime_collect.testing import Simulator",
                "sim = Simulator(seed=1)",
                "sim.add_account('a', 'p')",
                "sim.add_order(1)",
                "exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()",
                "async def main():",
                "    async with CollectClient('a', 'p', base_url=sim.url,",
                "                             transport=sim.transport()) as client:",
                "        observer = client._observer",
                "        assert observer.telemetry is not None",
                "        assert observer.request(None, 1) is _observe._UNWATCHED",
                "        await client.collect(1)",
                "        provider = TracerProvider()",
                "        provider.add_span_processor(SimpleSpanProcessor(exporter))",
                "        trace.set_tracer_provider(provider)",
                "        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))",
                "        await client.collect(1)",
                "asyncio.run(main())",
                "names = [span.name for span in exporter.get_finished_spans()]",
                "assert names == ['smime_collect.request', 'smime_collect.collect'], names",
                "[scope] = reader.get_metrics_data().resource_metrics[0].scope_metrics",
                "counted = {m.name: m.data.data_points[0].value for m in scope.metrics",
                "           if m.name == 'smime_collect.requests'}",
                "assert counted == {'smime_collect.requests': 1}, counted",
            ]
        )
        subprocess.run([sys.executable, "-c", code], check=True)  # noqa: S603 -- our own code

    def test_a_provider_given_then_made_global_counts_every_client(self) -> None:
        """A client given a provider before it is global, then global clients: all counted."""
        code = "\n".join(
            [
                "import asyncio",
                "from opentelemetry import metrics",
                "from opentelemetry.sdk.metrics import MeterProvider",
                "from opentelemetry.sdk.metrics.export import InMemoryMetricReader",
                "from smime_collect import CollectClient",
                "from smime_collect.testing import Simulator",
                "sim = Simulator(seed=1)",
                "sim.add_account('a', 'p')",
                "sim.add_order(1)",
                "reader = InMemoryMetricReader()",
                "provider = MeterProvider(metric_readers=[reader])",
                "def client(**options):",
                "    return CollectClient('a', 'p', base_url=sim.url, transport=sim.transport(),",
                "                         **options)",
                "async def main():",
                "    async with client(meter_provider=provider) as given:",
                "        await given.collect(1)",
                "        metrics.set_meter_provider(provider)",
                "        async with client() as global_one:",
                "            await global_one.collect(1)",
                "            await global_one.collect(1)",
                "asyncio.run(main())",
                "[scope] = reader.get_metrics_data().resource_metrics[0].scope_metrics",
                "counted = {m.name: m.data.data_points[0].value for m in scope.metrics",
                "           if m.name.startswith('smime_collect.requests')}",
                "assert counted == {'smime_collect.requests': 3,",
                "                   'smime_collect.requests.in_flight': 0}, counted",
            ]
        )
        subprocess.run([sys.executable, "-c", code], check=True)  # noqa: S603 -- our own code


class TestFastAPIMetrics:
    """examples/fastapi_app.py serves the client's metrics at /metrics for Prometheus."""

    async def test_metrics_after_one_order(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """One order that needed two polls and a 503 retry: 4 requests, 1 retry, none in flight."""
        from test_examples import load_example

        monkeypatch.setenv("SECTIGO_LOGIN_NAME", "alice")
        monkeypatch.setenv("SECTIGO_LOGIN_PASSWORD", PASSWORD)
        for name in ("SECTIGO_LOGIN_NAME_FILE", "SECTIGO_LOGIN_PASSWORD_FILE"):
            monkeypatch.delenv(name, raising=False)
        sim = simulator()
        sim.inject(Fault.HTTP_503, order_number=1001)
        clock = ManualClock()
        app = load_example("fastapi_app").create_app(
            transport=sim.transport(), sleep=clock.sleep, clock=clock
        )
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://app.test"
            ) as http,
        ):
            assert (await http.get("/certificates/1001")).status_code == 200
            response = await http.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        samples = {
            (sample.name, *(v for k, v in sorted(sample.labels.items()) if "otel" not in k)): (
                sample.value
            )
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
            if sample.name.startswith("smime_collect_")
        }
        assert samples["smime_collect_requests_total", "ok"] == 3
        assert samples["smime_collect_requests_total", "http_error"] == 1
        assert samples["smime_collect_retries_total", "TransportError"] == 1
        assert samples["smime_collect_request_duration_seconds_count", "ok"] == 3
        assert samples["smime_collect_request_duration_seconds_bucket", "0.1", "ok"] == 3
        assert samples["smime_collect_requests_in_flight",] == 0
        assert PASSWORD not in response.text

"""``on_event=``: one frozen event per step, in order; a raising callback never costs an order."""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Any

import attrs
import pytest

from smime_collect import (
    CertificateRevokedError,
    CollectClient,
    Status,
    TransportError,
)
from smime_collect._cli import main
from smime_collect._cli._outcomes import Traffic
from smime_collect._client import _observe
from smime_collect.events import (
    Event,
    OrderFinished,
    PollScheduled,
    RequestFinished,
    RetryScheduled,
    Throttled,
)
from smime_collect.testing import Fault, ManualClock, OrderState, Simulator

PASSWORD = "ev-pa55&word"


def simulator() -> Simulator:
    """A simulator with one account and a few orders of every kind."""
    sim = Simulator(seed=3)
    sim.add_account("alice", PASSWORD)
    sim.add_order(1001, ready_after_polls=2)
    sim.add_order(1002)
    sim.add_order(1003, state=OrderState.REVOKED)
    return sim


def client_for(sim: Simulator, clock: ManualClock, **kwargs: Any) -> CollectClient:
    """A client on the simulator in-process, on a manual clock."""
    return CollectClient(
        "alice",
        PASSWORD,
        base_url=sim.url,
        transport=sim.transport(),
        sleep=clock.sleep,
        clock=clock,
        random=lambda: 0.5,
        **kwargs,
    )


class TestSteps:
    """Every step of a waited-for order, exactly."""

    async def test_two_polls_and_one_503_retry(self) -> None:
        """503, then two PROCESSING answers, then ATTACHED: 4 requests, 1 retry, 2 polls, 1 end."""
        sim = simulator()
        sim.inject(Fault.HTTP_503, order_number=1001)
        clock = ManualClock()
        events: list[Event] = []
        async with client_for(sim, clock, on_event=events.append) as client:
            result = await client.wait_for_certificate(1001, poll_interval=2, timeout=100)
        assert result.status is Status.ATTACHED
        kinds = [type(event).__name__ for event in events]
        assert kinds == [
            "RequestFinished",
            "RetryScheduled",
            "RequestFinished",
            "PollScheduled",
            "RequestFinished",
            "PollScheduled",
            "RequestFinished",
            "OrderFinished",
        ]
        requests = [event for event in events if isinstance(event, RequestFinished)]
        assert [(r.attempt, r.http_status, r.status) for r in requests] == [
            (1, 503, None),
            (2, 200, Status.PROCESSING),
            (1, 200, Status.PROCESSING),
            (1, 200, Status.ATTACHED),
        ]
        assert isinstance(requests[0].error, TransportError)
        assert [r.error for r in requests[1:]] == [None, None, None]
        assert all(r.order_number == 1001 and r.elapsed == 0.0 for r in requests)
        retry = events[1]
        assert isinstance(retry, RetryScheduled)
        assert (retry.order_number, retry.retry, retry.error) == (1001, 1, requests[0].error)
        assert retry.delay > 0
        polls = [event for event in events if isinstance(event, PollScheduled)]
        assert [(p.poll, p.status) for p in polls] == [(1, Status.PROCESSING)] * 1 + [
            (2, Status.PROCESSING)
        ]
        assert polls[0].delay == clock.sleeps[1]
        finished = events[-1]
        assert finished == OrderFinished(1001, True, 4, sum(clock.sleeps), None)
        assert sim.stats.requests_by_order[1001] == 4

    async def test_a_429_throttles_the_client(self) -> None:
        """A 429 with Retry-After says until when the client is held back, then retries."""
        sim = simulator()
        sim.inject(Fault.HTTP_429, order_number=1002)
        clock = ManualClock(now=10.0)
        events: list[Event] = []
        async with client_for(sim, clock, on_event=events.append) as client:
            await client.collect(1002)
        throttled = [event for event in events if isinstance(event, Throttled)]
        assert len(throttled) == 1
        assert throttled[0].until > 10.0
        assert isinstance(throttled[0].error, TransportError)
        assert throttled[0].error.status_code == 429
        assert [type(event) for event in events] == [
            RequestFinished,
            Throttled,
            RetryScheduled,
            RequestFinished,
            OrderFinished,
        ]

    async def test_a_failed_order_says_why(self) -> None:
        """A revoked order ends with ok False, its error, and the one request it cost."""
        sim = simulator()
        events: list[Event] = []
        async with client_for(sim, ManualClock(), on_event=events.append) as client:
            with pytest.raises(CertificateRevokedError) as caught:
                await client.collect(1003)
        request, finished = events
        assert isinstance(request, RequestFinished)
        assert (request.http_status, request.status, request.error) == (200, None, caught.value)
        assert finished == OrderFinished(1003, False, 1, 0.0, caught.value)

    async def test_collect_many_ends_each_order(self) -> None:
        """A batch tells one OrderFinished per order, with its own request count."""
        sim = simulator()
        events: list[Event] = []
        async with client_for(sim, ManualClock(), on_event=events.append) as client:
            outcomes = [o async for o in client.collect_many([1001, 1002, 1003], poll_interval=1)]
        assert len(outcomes) == 3
        finished = {e.order_number: e for e in events if isinstance(e, OrderFinished)}
        assert {n: (e.ok, e.requests) for n, e in finished.items()} == {
            1001: (True, 3),
            1002: (True, 1),
            1003: (False, 1),
        }

    def test_events_are_frozen(self) -> None:
        """An event cannot be changed by the callback that receives it."""
        event = PollScheduled(1, 1, 2.0, Status.PROCESSING)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            event.delay = 0.0  # type: ignore[misc]


class TestBadCallbacks:
    """A callback that raises is logged and never costs an order."""

    async def test_raising_callback_is_logged_once_at_warning(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Every event raises: the order is collected; one WARNING, DEBUG for the rest."""
        calls: list[Event] = []

        def broken(event: Event) -> None:
            calls.append(event)
            raise RuntimeError("dashboard down")

        sim = simulator()
        caplog.set_level(logging.DEBUG, logger="smime_collect")
        async with client_for(sim, ManualClock(), on_event=broken) as client:
            result = await client.wait_for_certificate(1001, poll_interval=1)
            outcomes = [o async for o in client.collect_many([1002], wait=False)]
        assert result.status is Status.ATTACHED
        assert outcomes[0].ok
        complaints = [r for r in caplog.records if "on_event callback raised" in r.getMessage()]
        assert len(complaints) == len(calls) == 6 + 2  # 3 requests, 2 polls, 1 end; then 1 + 1
        assert [r.levelno for r in complaints] == [logging.WARNING] + [logging.DEBUG] * 7
        assert "RuntimeError" in complaints[0].getMessage()
        assert (complaints[0].order_number, complaints[0].attempt) == (1001, 1)  # type: ignore[attr-defined]

    async def test_no_callback_builds_no_event(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without on_event (and without OpenTelemetry) no event is built and no request watched."""
        monkeypatch.setattr(_observe, "_load_telemetry", lambda *_: None)

        def refuse(*args: object) -> None:
            raise AssertionError("an event was built")

        for name in ("RequestFinished", "RetryScheduled", "PollScheduled", "OrderFinished"):
            monkeypatch.setattr(_observe, name, refuse)
        sim = simulator()
        sim.inject(Fault.HTTP_503, order_number=1001)
        async with client_for(sim, ManualClock()) as client:
            assert client._observer.request(None, 1) is _observe._UNWATCHED  # type: ignore[arg-type]
            result = await client.wait_for_certificate(1001, poll_interval=1)
        assert result.status is Status.ATTACHED


class TestLogFields:
    """Records of the smime_collect logger carry order_number and attempt as fields."""

    async def test_request_and_retry_records(self, caplog: pytest.LogCaptureFixture) -> None:
        """The DEBUG record of each request and the WARNING of a retry say which order and try."""
        sim = simulator()
        sim.inject(Fault.HTTP_503, order_number=1002)
        sim.inject(Fault.DROP_CONNECTION, order_number=1002)
        caplog.set_level(logging.DEBUG, logger="smime_collect")
        async with client_for(sim, ManualClock()) as client:
            await client.collect(1002)
        ours = [r for r in caplog.records if r.name == "smime_collect"]
        fields = [(r.levelname, r.order_number, r.attempt) for r in ours]  # type: ignore[attr-defined]
        assert fields == [
            ("DEBUG", 1002, 1),
            ("WARNING", 1002, 1),
            ("DEBUG", 1002, 2),
            ("WARNING", 1002, 2),
            ("DEBUG", 1002, 3),
        ]


class TestCommandLine:
    """The command's summary counts the traffic; --log-format json writes JSON lines."""

    def test_summary_and_json_log_lines(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A 429, a 503 and two polls: 6 requests, 2 retries, the 429's wait; JSON warnings."""
        monkeypatch.setenv("SECTIGO_LOGIN_NAME", "alice")
        monkeypatch.setenv("SECTIGO_LOGIN_PASSWORD", PASSWORD)
        sim = simulator()
        sim.inject(Fault.HTTP_429, order_number=1002)
        sim.inject(Fault.HTTP_503, order_number=1002)
        clock = ManualClock()
        factory = functools.partial(
            CollectClient, transport=sim.transport(), sleep=clock.sleep, clock=clock
        )
        argv = ["collect", "1001", "1002", "--out", str(tmp_path), "--poll-interval", "1"]
        status = main([*argv, "--concurrency", "1", "--log-format", "json"], client_factory=factory)
        out, err = capsys.readouterr()
        assert status == 0
        assert sim.chaos.retry_after == "1"  # the 429's Retry-After: the client held back 1 s
        assert "  6 requests sent, 2 retries, 1.0 s throttled" in out.splitlines()
        lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        assert [(line["level"], line["order_number"], line["attempt"]) for line in lines] == [
            ("WARNING", 1002, 1),
            ("WARNING", 1002, 2),
        ]
        assert {"time", "logger", "message"} <= set(lines[0])

    def test_traffic_counts_overlapping_slow_downs_once(self) -> None:
        """Two slow-downs that overlap add up to the stretch they cover together."""
        traffic = Traffic()
        error = TransportError("HTTP 429", status_code=429)
        traffic.observe(Throttled(30.0, error, since=10.0))
        traffic.observe(Throttled(35.0, error, since=20.0))
        traffic.observe(Throttled(50.0, error, since=45.0))
        assert traffic.throttled == 30.0

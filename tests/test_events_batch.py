"""``collect_many`` tells exactly one ``OrderFinished`` per order, however the order ended."""

from __future__ import annotations

import asyncio
import collections
import ssl
import urllib.parse
from typing import Any

import httpx
import pytest

from smime_collect import (
    AuthenticationError,
    CollectClient,
    CollectOutcome,
    InvalidRequestError,
    TransportError,
)
from smime_collect.events import Event, OrderFinished
from smime_collect.testing import ManualClock, Simulator

PASSWORD = "batch-pa55&word"


def simulator() -> Simulator:
    """A simulator with one account and three orders ready at once."""
    sim = Simulator(seed=5)
    sim.add_account("alice", PASSWORD)
    sim.add_orders([1, 2, 3])
    return sim


def sim_client(sim: Simulator, password: str = PASSWORD, **kwargs: Any) -> CollectClient:
    """A client on the simulator in-process, on a manual clock that only sleeping moves."""
    clock = ManualClock()
    return CollectClient(
        "alice",
        password,
        base_url=sim.url,
        transport=sim.transport(),
        sleep=clock.sleep,
        clock=clock,
        random=lambda: 0.5,
        **kwargs,
    )


def finished(events: list[Event]) -> list[OrderFinished]:
    """The OrderFinished events among ``events``, in the order they were told."""
    return [event for event in events if isinstance(event, OrderFinished)]


def one_per_order(events: list[Event], outcomes: list[CollectOutcome]) -> dict[Any, OrderFinished]:
    """Check that each outcome has exactly one OrderFinished; return them by order number."""
    told = finished(events)
    counts = collections.Counter(event.order_number for event in told)
    assert counts == collections.Counter(outcome.order_number for outcome in outcomes)
    assert set(counts.values()) == {1}
    return {event.order_number: event for event in told}


def order_number(request: httpx.Request) -> int:
    """The order number in a request's urlencoded body."""
    return int(urllib.parse.parse_qs(request.content.decode("ascii"))["orderNumber"][0])


def untrusted() -> httpx.ConnectError:
    """The error of a TLS handshake with a certificate the client does not trust."""
    exc = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    exc.__cause__ = ssl.SSLCertVerificationError(1, "certificate verify failed")
    return exc


class TestBadOrderNumbers:
    """An order number that is not a positive integer ends as its own outcome, without a request."""

    async def test_each_bad_number_is_told_once(self) -> None:
        """Bad numbers are told failed, with no request and their own error; good ones as sent."""
        sim = simulator()
        events: list[Event] = []
        async with sim_client(sim, on_event=events.append) as client:
            outcomes = [o async for o in client.collect_many([1, "12a", 2, 0], wait=False)]
        by_number = one_per_order(events, outcomes)
        for outcome in outcomes:
            if outcome.order_number in {"12a", 0}:
                assert isinstance(outcome.error, InvalidRequestError)
                expected = OrderFinished(outcome.order_number, False, 0, 0.0, outcome.error)
            else:
                expected = OrderFinished(outcome.order_number, True, 1, 0.0, None)
            assert by_number[outcome.order_number] == expected
        assert sim.stats.requests_total == 2

    async def test_the_event_comes_before_the_outcome(self) -> None:
        """When a bad number's outcome is yielded, its OrderFinished has already been told."""
        events: list[Event] = []
        async with sim_client(simulator(), on_event=events.append) as client:
            async for outcome in client.collect_many(["12a"], wait=False):
                told = OrderFinished("12a", False, 0, 0.0, outcome.error)  # type: ignore[arg-type]
                assert finished(events) == [told]

    async def test_without_a_callback_the_outcome_is_all(self) -> None:
        """No on_event: a bad number is still its own outcome, and nothing else happens."""
        sim = simulator()
        async with sim_client(sim) as client:
            outcomes = [o async for o in client.collect_many(["12a", 1], wait=False)]
        by_number: dict[object, CollectOutcome] = {o.order_number: o for o in outcomes}
        assert isinstance(by_number["12a"].error, InvalidRequestError)
        assert by_number[1].ok
        assert sim.stats.requests_total == 1


class TestStoppedBatch:
    """An error every order would meet stops the batch: each order is still told once."""

    async def test_orders_after_a_rejected_login(self) -> None:
        """A wrong password: the first order is told with its one request, the rest with none."""
        sim = simulator()
        events: list[Event] = []
        client = sim_client(sim, password="wrong", max_concurrency=1, on_event=events.append)
        async with client:
            outcomes = [o async for o in client.collect_many([1, 2, 3], wait=False)]
        by_number = one_per_order(events, outcomes)
        by_outcome = {o.order_number: o for o in outcomes}
        assert all(isinstance(o.error, AuthenticationError) for o in outcomes)
        assert by_number[1] == OrderFinished(1, False, 1, 0.0, by_outcome[1].error)
        for number in (2, 3):
            assert by_number[number] == OrderFinished(
                number, False, 0, 0.0, by_outcome[number].error
            )
        assert sim.stats.requests_total == 1

    async def test_orders_refused_by_the_login_guard(self) -> None:
        """After a -16 the login guard refuses the next batch: every order told with no request."""
        sim = simulator()
        events: list[Event] = []
        client = sim_client(sim, password="wrong", max_concurrency=1, on_event=events.append)
        async with client:
            with pytest.raises(AuthenticationError):
                await client.collect(1)
            events.clear()
            outcomes = [o async for o in client.collect_many([1, 2, 3], wait=False)]
        by_number = one_per_order(events, outcomes)
        for outcome in outcomes:
            assert isinstance(outcome.error, AuthenticationError)
            expected = OrderFinished(outcome.order_number, False, 0, 0.0, outcome.error)
            assert by_number[outcome.order_number] == expected
        assert sim.stats.requests_total == 1

    @pytest.mark.parametrize("stop", ["rejected_login", "untrusted_certificate"])
    async def test_orders_in_progress_and_to_come(self, stop: str) -> None:
        """Orders waiting for a poll when the batch stops are told with their requests and time."""
        clock = ManualClock()
        waiting: list[float] = []
        both_waiting = asyncio.Event()

        async def answer(request: httpx.Request) -> httpx.Response:
            if order_number(request) != 3:
                return httpx.Response(200, content=b"0\n")  # still processing
            await both_waiting.wait()
            clock.advance(7.0)
            if stop == "untrusted_certificate":
                raise untrusted()
            return httpx.Response(200, content=b"-16\nIncorrect login details\n")

        async def poll_wait(seconds: float) -> None:
            waiting.append(seconds)
            if len(waiting) == 2:
                both_waiting.set()
            await asyncio.Event().wait()  # only the batch's stop ends it

        events: list[Event] = []
        client = CollectClient(
            "alice",
            PASSWORD,
            transport=httpx.MockTransport(answer),
            clock=clock,
            sleep=poll_wait,
            random=lambda: 0.5,
            on_event=events.append,
        )
        async with client, asyncio.timeout(5):
            batch = client.collect_many([1, 2, 3, 4, 5], max_active=3, poll_interval=1)
            outcomes = [o async for o in batch]
        by_number = one_per_order(events, outcomes)
        by_outcome = {o.order_number: o for o in outcomes}
        kind = AuthenticationError if stop == "rejected_login" else TransportError
        assert all(isinstance(o.error, kind) for o in outcomes)
        for number in (1, 2, 3):  # taken up at 0, ended at 7 with one request each
            assert by_number[number] == OrderFinished(
                number, False, 1, 7.0, by_outcome[number].error
            )
        for number in (4, 5):  # taken up after the stop: no request, no time
            assert by_number[number] == OrderFinished(
                number, False, 0, 0.0, by_outcome[number].error
            )

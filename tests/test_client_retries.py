"""CollectClient's retries: what is retried, how long it waits, Retry-After, slow-downs."""

from __future__ import annotations

import asyncio
import inspect
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import respx
from client_fakes import (
    PASSWORD,
    READY,
    READY_RESPONSE,
    GatedSleep,
    first_answer_then_ready,
    form,
    make_client,
    router_fixture,  # noqa: F401 -- the "router" fixture these tests take
    sectigo_codes,
    spin,
)

from smime_collect import (
    DEFAULT_URL,
    CallLimitError,
    CollectClient,
    CollectError,
    InvalidRequestError,
    ResponseFormatError,
    RetryPolicy,
    SectigoError,
    Status,
    TransportError,
)
from smime_collect._client._pacing import Pacer
from smime_collect.testing import ManualClock


class TestRetries:
    """Which failures are retried, how long the client waits, what is raised at the end."""

    @pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
    async def test_transient_statuses_are_retried(
        self, router: respx.Router, fake_time: ManualClock, status: int
    ) -> None:
        """A transient HTTP status is retried and the next answer wins."""
        route = router.post(DEFAULT_URL).mock(
            side_effect=[httpx.Response(status), httpx.Response(200, content=READY)]
        )
        async with make_client(router, fake_time) as client:
            result = await client.collect(1)
        assert result.status is Status.ATTACHED
        assert route.call_count == 2
        assert fake_time.now > 1000.0  # it waited before retrying

    @pytest.mark.parametrize("status", [301, 400, 401, 403, 404, 405, 413, 501])
    async def test_other_statuses_fail_at_once(
        self, router: respx.Router, fake_time: ManualClock, status: int
    ) -> None:
        """Any other status is a TransportError at once, with the status and an httpx cause."""
        route = router.post(DEFAULT_URL).respond(status)
        async with make_client(router, fake_time) as client:
            with pytest.raises(TransportError) as caught:
                await client.collect(1)
        assert route.call_count == 1
        assert caught.value.status_code == status
        assert isinstance(caught.value.__cause__, httpx.HTTPStatusError)
        assert caught.value.__cause__.response.status_code == status
        # The cause carries a request, but not the body with the password.
        assert PASSWORD.encode() not in caught.value.__cause__.request.read()
        assert fake_time.sleeps == []

    async def test_exhausted_retries_raise_the_last_error(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """max_retries retries, then the last failure as a TransportError with its status."""
        route = router.post(DEFAULT_URL).mock(
            side_effect=[httpx.Response(500), httpx.Response(502), httpx.Response(503)]
        )
        async with make_client(router, fake_time, max_retries=2) as client:
            with pytest.raises(TransportError) as caught:
                await client.collect(1)
        assert route.call_count == 3
        assert caught.value.status_code == 503
        assert len(fake_time.sleeps) == 2

    async def test_backoff_grows_with_full_jitter(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """Waits follow base * 2**retry scaled by the injected jitter draw."""
        router.post(DEFAULT_URL).respond(503)
        async with make_client(router, fake_time, max_retries=3, random=lambda: 0.5) as client:
            with pytest.raises(TransportError):
                await client.collect(1)
        assert fake_time.sleeps == [0.25, 0.5, 1.0]

    async def test_max_retries_zero(self, router: respx.Router, fake_time: ManualClock) -> None:
        """max_retries=0 sends once."""
        route = router.post(DEFAULT_URL).respond(503)
        async with make_client(router, fake_time, max_retries=0) as client:
            with pytest.raises(TransportError):
                await client.collect(1)
        assert route.call_count == 1

    @sectigo_codes(-14, -42)
    async def test_transient_sectigo_codes(
        self, router: respx.Router, fake_time: ManualClock, body: bytes, error: type[SectigoError]
    ) -> None:
        """-14 and -42 are retried; exhausted, the SectigoError subclass is raised."""
        route = router.post(DEFAULT_URL).mock(
            side_effect=[httpx.Response(200, content=body), httpx.Response(200, content=READY)]
        )
        async with make_client(router, fake_time) as client:
            assert (await client.collect(1)).status is Status.ATTACHED
        assert route.call_count == 2
        route.mock(side_effect=None).respond(200, content=body)
        async with make_client(router, fake_time, max_retries=1) as client:
            with pytest.raises(error) as caught:
                await client.collect(5)
        assert caught.value.order_number == 5

    @sectigo_codes(-16, -20)
    async def test_other_sectigo_codes_fail_at_once(
        self, router: respx.Router, fake_time: ManualClock, body: bytes, error: type[SectigoError]
    ) -> None:
        """A non-transient code is raised at once (a bad login is never retried)."""
        route = router.post(DEFAULT_URL).respond(200, content=body)
        async with make_client(router, fake_time) as client:
            with pytest.raises(error):
                await client.collect(1)
        assert route.call_count == 1

    async def test_malformed_body_is_not_retried(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """A body that is not a CollectSMIME response is a ResponseFormatError at once."""
        route = router.post(DEFAULT_URL).respond(200, content=b"<html>maintenance</html>")
        async with make_client(router, fake_time) as client:
            with pytest.raises(ResponseFormatError):
                await client.collect(1)
        assert route.call_count == 1

    @pytest.mark.parametrize(
        "exc",
        [
            httpx.ConnectError("refused"),
            httpx.ConnectTimeout("slow"),
            httpx.ReadTimeout("slow"),
            httpx.ReadError("reset"),
            httpx.RemoteProtocolError("peer closed connection without sending complete body"),
        ],
        ids=lambda e: type(e).__name__,
    )
    async def test_network_failures_are_retried(
        self, router: respx.Router, fake_time: ManualClock, exc: Exception
    ) -> None:
        """Connection errors, timeouts and a connection closed mid-response are transient."""
        route = router.post(DEFAULT_URL).mock(side_effect=[exc, httpx.Response(200, content=READY)])
        async with make_client(router, fake_time) as client:
            assert (await client.collect(1)).status is Status.ATTACHED
        assert route.call_count == 2

    async def test_network_failure_exhausted(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """The last network failure is a TransportError without status, httpx's as cause."""
        route = router.post(DEFAULT_URL).mock(side_effect=httpx.ConnectError("refused"))
        async with make_client(router, fake_time, max_retries=2) as client:
            with pytest.raises(TransportError) as caught:
                await client.collect(1)
        assert route.call_count == 3
        assert caught.value.status_code is None
        assert isinstance(caught.value.__cause__, httpx.ConnectError)

    async def test_unsupported_protocol_is_not_retried(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """A failure that will not heal (here: a local protocol error) is raised at once."""
        route = router.post(DEFAULT_URL).mock(side_effect=httpx.LocalProtocolError("bad"))
        async with make_client(router, fake_time) as client:
            with pytest.raises(TransportError):
                await client.collect(1)
        assert route.call_count == 1


class TestRetryPolicy:
    """retry_policy= and max_retries=: the one given wins, the default never overrides."""

    @pytest.mark.parametrize(
        ("kwargs", "requests"),
        [
            ({}, 4),
            ({"retry_policy": RetryPolicy(max_retries=10)}, 11),
            ({"retry_policy": RetryPolicy(max_retries=10), "max_retries": 1}, 2),
            ({"retry_policy": RetryPolicy(max_retries=10), "max_retries": 3}, 4),
            ({"max_retries": 0}, 1),
        ],
        ids=[
            "default",
            "policy",
            "both-max-retries-wins",
            "both-given-default-value",
            "max-retries",
        ],
    )
    async def test_precedence(
        self, router: respx.Router, fake_time: ManualClock, kwargs: dict[str, Any], requests: int
    ) -> None:
        """RetryPolicy(max_retries=10) is kept unless max_retries= is given too."""
        route = router.post(DEFAULT_URL).respond(503)
        async with make_client(router, fake_time, **kwargs) as client:
            with pytest.raises(TransportError):
                await client.collect(1)
        assert route.call_count == requests

    def test_signature_shows_the_documented_default(self) -> None:
        """The signature says max_retries=3, as documented; a policy alone still keeps its own."""
        parameter = inspect.signature(CollectClient).parameters["max_retries"]
        assert parameter.default == 3
        assert repr(parameter.default) == "3"

    def test_bad_policy_is_an_invalid_request(self) -> None:
        """A nonsense RetryPolicy is an InvalidRequestError (a ValueError) naming the field."""
        with pytest.raises(InvalidRequestError, match="base_delay"):
            RetryPolicy(base_delay=-1)


class TestRetryAfter:
    """Retry-After honoured, clamped, and never a busy loop."""

    async def _sleeps_after(
        self,
        router: respx.Router,
        fake_time: ManualClock,
        headers: dict[str, str],
        status: int = 503,
    ) -> list[float]:
        router.post(DEFAULT_URL).mock(
            side_effect=[
                httpx.Response(status, headers=headers),
                httpx.Response(200, content=READY),
            ]
        )
        async with make_client(router, fake_time) as client:
            await client.collect(1)
        return fake_time.sleeps

    async def test_delta_seconds(self, router: respx.Router, fake_time: ManualClock) -> None:
        """Retry-After: 7 waits 7 s."""
        assert await self._sleeps_after(router, fake_time, {"Retry-After": "7"}) == [7.0]

    async def test_http_date(self, router: respx.Router, fake_time: ManualClock) -> None:
        """An HTTP-date 30 s ahead of the injected wall clock waits exactly 30 s."""
        now = datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)
        when = format_datetime(now + timedelta(seconds=30), usegmt=True)
        router.post(DEFAULT_URL).mock(
            side_effect=[httpx.Response(503, headers={"Retry-After": when}), READY_RESPONSE()]
        )
        async with make_client(router, fake_time, wall_clock=lambda: now) as client:
            await client.collect(1)
        assert fake_time.sleeps == [30.0]

    async def test_absurd_value_is_clamped(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """Retry-After: 86400 is clamped to two minutes."""
        assert await self._sleeps_after(router, fake_time, {"Retry-After": "86400"}) == [120.0]

    async def test_zero_is_not_a_busy_loop(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """Retry-After: 0 still waits the backoff."""
        (slept,) = await self._sleeps_after(router, fake_time, {"Retry-After": "0"})
        assert slept >= 0.1

    @pytest.mark.parametrize(
        ("limit", "error", "gap"),
        [
            (httpx.Response(429, headers={"Retry-After": "10"}), TransportError, 10.0),
            (httpx.Response(200, content=b"-42\nCall limit reached\n"), CallLimitError, 0.4995),
        ],
        ids=["429", "-42"],
    )
    async def test_rate_limit_slows_the_whole_client(
        self,
        router: respx.Router,
        fake_time: ManualClock,
        limit: httpx.Response,
        error: type[CollectError],
        gap: float,
    ) -> None:
        """After a 429 (its Retry-After) or a -42 (a backoff), another order's request waits too."""
        sent_at: list[float] = []

        def answer(request: httpx.Request) -> httpx.Response:
            sent_at.append(fake_time.now)
            return limit if form(request)["orderNumber"] == "1" else READY_RESPONSE()

        router.post(DEFAULT_URL).mock(side_effect=answer)
        async with make_client(router, fake_time, max_retries=0, random=lambda: 0.999) as client:
            with pytest.raises(error):
                await client.collect(1)
            await client.collect(2)
        assert sent_at[0] == 1000.0
        assert sent_at[1] - sent_at[0] == pytest.approx(gap, abs=1e-9)

    async def test_rate_limit_with_a_sleep_that_does_not_wait(self, router: respx.Router) -> None:
        """With only sleep= injected (the real clock runs on), a 429 costs one wait, not a spin."""
        sleeps: list[float] = []

        async def record(seconds: float) -> None:
            sleeps.append(seconds)

        router.post(DEFAULT_URL).mock(
            side_effect=[httpx.Response(429, headers={"Retry-After": "30"}), READY_RESPONSE()]
        )
        async with CollectClient(
            "alice", PASSWORD, transport=httpx.MockTransport(router.async_handler), sleep=record
        ) as client:
            result = await client.collect(1)
        assert result.status is Status.ATTACHED
        assert len(sleeps) == 1
        assert sleeps[0] == pytest.approx(30.0, abs=1.0)

    @pytest.mark.parametrize(
        "limit",
        [
            httpx.Response(429, headers={"Retry-After": "30"}),
            httpx.Response(200, content=b"-42\nCall limit reached\n"),
        ],
        ids=["429", "-42"],
    )
    async def test_a_request_started_during_the_slow_down_waits_too(
        self, router: respx.Router, fake_time: ManualClock, limit: httpx.Response
    ) -> None:
        """While order 1 waits out a 429 / -42, order 2's first request waits before it is sent."""
        sent = first_answer_then_ready(router, limit)
        sleep = GatedSleep(fake_time)
        async with make_client(router, fake_time, sleep=sleep) as client:
            first = asyncio.create_task(client.collect(1))
            await spin()
            assert (sent, len(sleep.waits)) == ([1], 1)  # order 1 is backing off
            second = asyncio.create_task(client.collect(2))
            await spin()
            assert (sent, len(sleep.waits)) == ([1], 2)  # order 2 waits without sending
            assert sleep.waits[1] > 0
            sleep.gate.set()
            results = await asyncio.gather(first, second)
        assert [r.status for r in results] == [Status.ATTACHED] * 2
        assert sorted(sent) == [1, 1, 2]

    async def test_cancelled_while_held_back_frees_its_slot(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """A request cancelled while it waits out a 429 gives back the only slot it held."""
        sent = first_answer_then_ready(router, httpx.Response(429, headers={"Retry-After": "30"}))
        sleep = GatedSleep(fake_time)
        client = make_client(router, fake_time, sleep=sleep, max_concurrency=1, max_retries=0)
        async with client:
            with pytest.raises(TransportError):
                await client.collect(1)
            held = asyncio.create_task(client.collect(2))
            await spin()
            assert (sent, len(sleep.waits)) == ([1], 1)  # order 2 holds the slot, waiting its turn
            held.cancel()
            with pytest.raises(asyncio.CancelledError):
                await held
            sleep.gate.set()
            async with asyncio.timeout(5):  # a leaked slot would hang here
                result = await client.collect(3)
        assert result.status is Status.ATTACHED
        assert sent == [1, 3]

    async def test_503_does_not_slow_other_requests(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """A plain server error only delays its own retry."""
        router.post(DEFAULT_URL).mock(
            side_effect=[httpx.Response(503, headers={"Retry-After": "10"}), READY_RESPONSE()]
        )
        async with make_client(router, fake_time, max_retries=0) as client:
            with pytest.raises(TransportError):
                await client.collect(1)
            await client.collect(2)
        assert fake_time.sleeps == []


class TestPacer:
    """The slots, start rate and slow-down every request of a client waits for."""

    async def test_slow_down_only_moves_later(self, fake_time: ManualClock) -> None:
        """A shorter slow-down after a longer one does not bring the start closer."""
        pacer = Pacer(max_concurrency=1, interval=None, clock=fake_time, sleep=fake_time.sleep)
        pacer.slow_down(1030.0)
        pacer.slow_down(1010.0)
        assert await pacer.acquire()
        pacer.release()
        assert fake_time.now == 1030.0

    async def test_deadline_before_the_turn(self, fake_time: ManualClock) -> None:
        """A turn after the deadline: False at the deadline, and the slot is free again."""
        pacer = Pacer(max_concurrency=1, interval=None, clock=fake_time, sleep=fake_time.sleep)
        pacer.slow_down(1100.0)
        assert not await pacer.acquire(deadline=1020.0)
        assert fake_time.now == 1020.0
        assert await pacer.acquire()  # the one slot was given back
        pacer.release()

    async def test_rate_spaces_starts_within_a_deadline(self, fake_time: ManualClock) -> None:
        """Two per second: starts at 0, 0.5 and 1.0 s; a deadline at 0.8 s stops the third."""
        pacer = Pacer(max_concurrency=4, interval=0.5, clock=fake_time, sleep=fake_time.sleep)
        assert await pacer.acquire(deadline=1000.8)
        assert await pacer.acquire(deadline=1000.8)
        assert fake_time.now == 1000.5
        assert not await pacer.acquire(deadline=1000.8)
        assert fake_time.now == pytest.approx(1000.8)

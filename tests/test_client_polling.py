"""wait_for_certificate and collect_many: polling one order, and many orders at once."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx
from client_fakes import (
    PASSWORD,
    PROCESSING,
    READY,
    READY_RESPONSE,
    Orders,
    fake_client,
    form,
    make_client,
    router_fixture,  # noqa: F401 -- the "router" fixture these tests take
    sectigo_codes,
)

from smime_collect import (
    DEFAULT_URL,
    AuthenticationError,
    CertificateRejectedError,
    ClientClosedError,
    InvalidRequestError,
    PollTimeoutError,
    QueryType,
    ResponseFormatError,
    ResponseType,
    RetryPolicy,
    SectigoError,
    Status,
    TransportError,
    UnknownServerError,
)
from smime_collect._client._failures import stops_batch
from smime_collect.testing import ManualClock


class TestWaitForCertificate:
    """Polling with the final query, backoff, deadline, errors, cancellation."""

    async def test_ready_order_costs_one_request(self, fake_time: ManualClock) -> None:
        """An order already issued is collected with exactly one request and no wait."""
        orders = Orders()
        async with fake_client(orders, fake_time) as client:
            result = await client.wait_for_certificate(5)
        assert result.status is Status.ATTACHED
        assert result.chain is not None
        assert orders.seen == [5]
        assert fake_time.sleeps == []

    @pytest.mark.parametrize("k", [1, 2, 5])
    async def test_ready_after_k_polls_costs_k_plus_one(
        self, fake_time: ManualClock, k: int
    ) -> None:
        """K 'processing' answers, then the certificate: k + 1 requests, all the final query."""
        orders = Orders(polls={5: k})
        async with fake_client(orders, fake_time) as client:
            result = await client.wait_for_certificate(5, poll_interval=2, max_poll_interval=8)
        assert result.status is Status.ATTACHED
        assert orders.seen == [5] * (k + 1)
        assert len(fake_time.sleeps) == k
        assert fake_time.sleeps[0] == 2
        assert all(2 <= s <= 8 for s in fake_time.sleeps)
        assert fake_time.sleeps == sorted(fake_time.sleeps)

    async def test_status_query_is_done_when_available(self, fake_time: ManualClock) -> None:
        """With QueryType.STATUS, AVAILABLE is enough."""
        orders = Orders(bodies={5: b"1\n"})
        async with fake_client(orders, fake_time) as client:
            result = await client.wait_for_certificate(5, query_type=QueryType.STATUS)
        assert result.status is Status.AVAILABLE
        assert orders.query_types == ["0"]
        assert orders.seen == [5]

    async def test_timeout(self, fake_time: ManualClock) -> None:
        """PollTimeoutError with the order and last status; no sleep runs past the deadline."""
        orders = Orders(polls={5: 10**6})
        async with fake_client(orders, fake_time) as client:
            with pytest.raises(PollTimeoutError) as caught:
                await client.wait_for_certificate(
                    5, timeout=100, poll_interval=5, max_poll_interval=30
                )
        assert caught.value.order_number == 5
        assert caught.value.last_status is Status.PROCESSING
        assert isinstance(caught.value, TimeoutError)
        assert sum(fake_time.sleeps) == pytest.approx(100)
        assert fake_time.now == pytest.approx(1100)

    async def test_retry_after_never_passes_the_deadline(self, fake_time: ManualClock) -> None:
        """A long Retry-After inside a short wait is cut at the deadline."""
        orders = Orders(bodies={5: b"-14\n"})
        policy = RetryPolicy(base_delay=50)
        async with fake_client(orders, fake_time, retry_policy=policy) as client:
            with pytest.raises(PollTimeoutError) as caught:
                await client.wait_for_certificate(5, timeout=10)
        assert fake_time.now == pytest.approx(1010)
        assert caught.value.last_status is None
        assert isinstance(caught.value.__cause__, UnknownServerError)

    async def test_rate_limit_wait_never_passes_the_deadline(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """A 429 asking for 100 s inside a 10 s wait ends at the deadline, the 429 as its cause."""
        route = router.post(DEFAULT_URL).respond(429, headers={"Retry-After": "100"})
        async with make_client(router, fake_time) as client:
            with pytest.raises(PollTimeoutError) as caught:
                await client.wait_for_certificate(5, timeout=10)
        assert route.call_count == 1
        assert fake_time.now == pytest.approx(1010)
        assert isinstance(caught.value.__cause__, TransportError)
        assert caught.value.__cause__.status_code == 429

    async def test_network_outage_is_not_still_processing(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """Refused until the deadline: PollTimeoutError names the refusal and has it as cause."""
        router.post(DEFAULT_URL).mock(side_effect=httpx.ConnectError("connection refused"))
        policy = RetryPolicy(max_retries=100, base_delay=2)
        async with make_client(router, fake_time, retry_policy=policy) as client:
            with pytest.raises(PollTimeoutError) as caught:
                await client.wait_for_certificate(5, timeout=10)
        assert fake_time.now == pytest.approx(1010)
        assert caught.value.last_status is None
        assert isinstance(caught.value.__cause__, TransportError)
        assert caught.value.last_error is caught.value.__cause__
        assert isinstance(caught.value.__cause__.__cause__, httpx.ConnectError)
        assert "last error: the request failed: connection refused" in str(caught.value)
        assert PASSWORD not in str(caught.value)

    async def test_a_later_answer_clears_the_last_error(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """A failure healed by a 'processing' answer is not the cause of the later timeout."""
        router.post(DEFAULT_URL).mock(
            side_effect=[httpx.ConnectError("refused")]
            + [httpx.Response(200, content=PROCESSING)] * 50
        )
        async with make_client(router, fake_time) as client:
            with pytest.raises(PollTimeoutError) as caught:
                await client.wait_for_certificate(5, timeout=30, poll_interval=5)
        assert caught.value.__cause__ is None
        assert caught.value.last_error is None
        assert caught.value.last_status is Status.PROCESSING
        assert "last error" not in str(caught.value)

    async def test_non_transient_error_raised_at_once(self, fake_time: ManualClock) -> None:
        """A rejected order stops the polling with its SectigoError."""
        orders = Orders(bodies={5: b"-20\nThe certificate request has been rejected!\n"})
        async with fake_client(orders, fake_time) as client:
            with pytest.raises(CertificateRejectedError):
                await client.wait_for_certificate(5)
        assert orders.seen == [5]

    @pytest.mark.parametrize(
        "kwargs",
        [{"timeout": 0}, {"poll_interval": -1}, {"poll_interval": 10, "max_poll_interval": 5}],
        ids=repr,
    )
    async def test_bad_polling_options(
        self, fake_time: ManualClock, kwargs: dict[str, Any]
    ) -> None:
        """Nonsense polling options are refused before anything is sent."""
        orders = Orders()
        async with fake_client(orders, fake_time) as client:
            with pytest.raises(InvalidRequestError):
                await client.wait_for_certificate(5, **kwargs)
        assert orders.seen == []

    async def test_cancellation_is_clean(self, fake_time: ManualClock) -> None:
        """Cancelling a wait mid-request frees its concurrency slot for the next call."""
        gate = asyncio.Event()
        orders = Orders(gate=gate)
        async with fake_client(orders, fake_time, max_concurrency=1) as client:
            task = asyncio.create_task(client.wait_for_certificate(5))
            while not orders.seen:  # noqa: ASYNC110 -- watching a test double's counter
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            gate.set()
            assert (await client.collect(6)).status is Status.ATTACHED


class TestCollectMany:
    """Batches: lazy, bounded, one outcome per order, isolation, account-level stop, exits."""

    async def test_one_outcome_per_order_failures_isolated(self, fake_time: ManualClock) -> None:
        """Every order comes back once; a rejected one does not stop the rest."""
        orders = Orders(polls={3: 2}, bodies={4: b"-20\nrejected\n", 6: b"garbage\n"})
        async with fake_client(orders, fake_time, max_concurrency=2) as client:
            outcomes = [o async for o in client.collect_many(range(1, 11), poll_interval=1)]
        assert sorted(o.order_number for o in outcomes) == list(range(1, 11))
        by_order = {o.order_number: o for o in outcomes}
        assert isinstance(by_order[4].error, CertificateRejectedError)
        assert isinstance(by_order[6].error, ResponseFormatError)
        assert all(by_order[n].ok for n in (1, 2, 3, 5, 7, 8, 9, 10))
        assert by_order[3].unwrap().status is Status.ATTACHED
        assert orders.seen.count(3) == 3

    async def test_no_wait_processing_is_ok(self, fake_time: ManualClock) -> None:
        """wait=False: one request per order; a PROCESSING result is ok."""
        orders = Orders(polls={2: 5})
        async with fake_client(orders, fake_time) as client:
            outcomes = [o async for o in client.collect_many([1, 2], wait=False)]
        by_order = {o.order_number: o for o in outcomes}
        assert by_order[2].ok
        assert by_order[2].unwrap().status is Status.PROCESSING
        assert sorted(orders.seen) == [1, 2]

    async def test_async_iterable_and_numeric_strings(self, fake_time: ManualClock) -> None:
        """An async iterable is accepted; '7' is order 7."""

        async def source() -> AsyncIterator[int | str]:
            for order in (1, "7", 9):
                yield order

        async with fake_client(Orders(), fake_time) as client:
            outcomes = [o async for o in client.collect_many(source(), wait=False)]
        assert sorted(o.order_number for o in outcomes) == [1, 7, 9]

    async def test_slow_async_source_does_not_hold_back_outcomes(
        self, fake_time: ManualClock
    ) -> None:
        """A source that yields the next order only after seeing an outcome: no deadlock."""
        seen = asyncio.Event()

        async def source() -> AsyncIterator[int]:
            yield 1
            await seen.wait()  # e.g. a producer fed back by the consumer
            yield 2

        got: list[int] = []
        async with fake_client(Orders(), fake_time) as client:
            async with asyncio.timeout(5):
                async for outcome in client.collect_many(source(), wait=False):
                    got.append(outcome.order_number)
                    seen.set()
        assert got == [1, 2]

    @pytest.mark.parametrize("wait", [False, True], ids=["no-wait", "wait"])
    async def test_bad_order_number_is_its_own_outcome(
        self, fake_time: ManualClock, wait: bool
    ) -> None:
        """'12a' among 300 orders: its own InvalidRequestError, as given; the rest collected."""
        numbers: list[int | str] = [*range(1, 200), "12a", *range(200, 301)]
        orders = Orders()
        async with fake_client(orders, fake_time) as client:
            outcomes = [o async for o in client.collect_many(numbers, wait=wait)]
        assert len(outcomes) == 301
        (bad,) = [o for o in outcomes if not o.ok]
        assert bad.order_number == "12a"
        assert isinstance(bad.error, InvalidRequestError)
        assert sorted(o.order_number for o in outcomes if o.ok) == list(range(1, 301))
        assert sorted(orders.seen) == list(range(1, 301))  # no request for "12a"

    async def test_queue_time_does_not_count_against_an_order(self, fake_time: ManualClock) -> None:
        """Concurrency 1, 0.5 s per request, timeout 1.8 s: the fifth order is not timed out."""
        sent_at: list[float] = []

        async def slow(request: httpx.Request) -> httpx.Response:
            sent_at.append(fake_time.now)
            await asyncio.sleep(0)  # the other orders start meanwhile, as during real latency
            await fake_time.sleep(0.5)
            return READY_RESPONSE()

        client = fake_client(slow, fake_time, max_concurrency=1)
        async with client:
            outcomes = [o async for o in client.collect_many(range(1, 6), timeout=1.8)]
        assert [o.error for o in outcomes] == [None] * 5
        assert sent_at == [1000.0, 1000.5, 1001.0, 1001.5, 1002.0]

    async def test_an_order_deadline_runs_once_it_has_started(self, fake_time: ManualClock) -> None:
        """After its first request an order's timeout runs: a processing order times out."""
        orders = Orders(polls={1: 10**6})
        async with fake_client(orders, fake_time, max_concurrency=1) as client:
            outcomes = [o async for o in client.collect_many([1], timeout=30, poll_interval=5)]
        (outcome,) = outcomes
        assert isinstance(outcome.error, PollTimeoutError)
        assert outcome.error.last_status is Status.PROCESSING
        assert fake_time.now == pytest.approx(1030)

    async def test_untrusted_certificate_stops_the_batch(self, fake_time: ManualClock) -> None:
        """A TLS certificate not trusted: one attempt, every order that error, no retry."""
        attempts: list[httpx.Request] = []

        def refuse(request: httpx.Request) -> httpx.Response:
            attempts.append(request)
            exc = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
            exc.__cause__ = ssl.SSLCertVerificationError(1, "certificate verify failed")
            raise exc

        client = fake_client(refuse, fake_time, max_concurrency=1)
        async with client:
            outcomes = [o async for o in client.collect_many(range(1, 51), poll_interval=1)]
        assert len(attempts) == 1
        assert fake_time.sleeps == []
        assert sorted(o.order_number for o in outcomes) == list(range(1, 51))
        errors = [o.error for o in outcomes]
        assert all(isinstance(e, TransportError) and stops_batch(e) for e in errors)
        assert all(f"order {o.order_number}:" in str(o.error) for o in outcomes)
        assert all("TLS certificate was not trusted" in str(e) for e in errors)

    async def test_a_stop_ends_the_orders_in_progress_without_a_request(
        self, fake_time: ManualClock
    ) -> None:
        """Orders in a poll wait when -16 arrives end at once with it, without another request."""
        polled: list[int] = []
        all_waiting = asyncio.Event()

        async def answer(request: httpx.Request) -> httpx.Response:
            order = int(form(request)["orderNumber"])
            polled.append(order)
            if order == 9:
                await all_waiting.wait()
                return httpx.Response(200, content=b"-16\nIncorrect login details\n")
            return httpx.Response(200, content=PROCESSING)

        waits: list[float] = []

        async def endless_poll_wait(seconds: float) -> None:
            waits.append(seconds)
            if len(waits) == 19:
                all_waiting.set()
            await asyncio.Event().wait()  # only the batch's stop can end it

        client = fake_client(answer, fake_time, max_concurrency=8, sleep=endless_poll_wait)
        async with client, asyncio.timeout(5):
            outcomes = [o async for o in client.collect_many(range(1, 21), poll_interval=1)]
        assert len(outcomes) == 20
        assert all(isinstance(o.error, AuthenticationError) for o in outcomes)
        assert {o.error.order_number for o in outcomes if o.error} == set(range(1, 21))
        assert sorted(polled) == list(range(1, 21))

    async def test_a_failing_source_ends_the_batch_with_its_error(
        self, fake_time: ManualClock
    ) -> None:
        """An order source that raises: the batch raises that error and leaves no task behind."""

        def source() -> Iterator[int]:
            yield 1
            raise OSError("the orders file went away")

        before = asyncio.all_tasks()
        async with fake_client(Orders(), fake_time) as client:
            with pytest.raises(OSError, match="went away"):
                [o async for o in client.collect_many(source(), wait=False)]
        assert asyncio.all_tasks() - before == set()

    async def test_bad_options_raise_before_iterating(self, fake_time: ManualClock) -> None:
        """Invalid options fail at the call, before any order is read."""
        async with fake_client(Orders(), fake_time) as client:
            with pytest.raises(InvalidRequestError):
                client.collect_many(
                    [1], query_type=QueryType.STATUS, response_type=ResponseType.PKCS7
                )
            with pytest.raises(InvalidRequestError):
                client.collect_many([1], max_active=0)

    @sectigo_codes(-1, -2, -3, -16, -17)
    async def test_account_level_error_stops_the_batch(
        self, fake_time: ManualClock, body: bytes, error: type[SectigoError]
    ) -> None:
        """-1/-2/-3/-16/-17: no further request; every remaining order (even unread) gets it."""
        read: list[int] = []

        def source() -> Iterator[int]:
            for order in range(1, 1001):
                read.append(order)
                yield order

        orders = Orders(bodies=dict.fromkeys(range(1, 1001), body))
        async with fake_client(orders, fake_time, max_concurrency=1) as client:
            outcomes = [o async for o in client.collect_many(source(), wait=False)]
        assert len(outcomes) == 1000
        assert len(read) == 1000
        assert all(type(o.error) is error for o in outcomes)
        numbers = {o.error.order_number for o in outcomes if isinstance(o.error, error)}
        assert numbers == set(range(1, 1001))
        assert orders.seen == [1]

    @sectigo_codes(-4, -14, -20, -91)
    async def test_order_level_error_does_not_stop_the_batch(
        self, fake_time: ManualClock, body: bytes, error: type[SectigoError]
    ) -> None:
        """-4/-14/-20/-91 belong to one order: every order is still sent, each gets its own."""
        orders = Orders(bodies=dict.fromkeys(range(1, 9), body))
        async with fake_client(orders, fake_time, max_concurrency=1, max_retries=0) as client:
            outcomes = [o async for o in client.collect_many(range(1, 9), wait=False)]
        assert all(type(o.error) is error for o in outcomes)
        assert sorted(o.error.order_number for o in outcomes if o.error) == list(range(1, 9))
        assert sorted(orders.seen) == list(range(1, 9))

    async def test_outcomes_come_in_completion_order(self, fake_time: ManualClock) -> None:
        """Read as 3, 1, 2; ready after 2, 1 and 0 polls: yielded as 2, 1, 3."""
        orders = Orders(polls={3: 2, 1: 1})
        async with fake_client(orders, fake_time) as client:
            outcomes = [o async for o in client.collect_many([3, 1, 2], poll_interval=1)]
        assert [o.order_number for o in outcomes] == [2, 1, 3]
        assert all(o.ok for o in outcomes)

    @pytest.mark.parametrize("wait", [False, True], ids=["no-wait", "wait"])
    async def test_timeout_applies_only_when_waiting(
        self, fake_time: ManualClock, wait: bool
    ) -> None:
        """A 0.5 s answer 'processing' against timeout=0.001: ok without wait, timed out with it."""

        async def slow(request: httpx.Request) -> httpx.Response:
            await fake_time.sleep(0.5)
            return httpx.Response(200, content=PROCESSING)

        client = fake_client(slow, fake_time)
        async with client:
            (outcome,) = [o async for o in client.collect_many([5], wait=wait, timeout=0.001)]
        if wait:
            assert isinstance(outcome.error, PollTimeoutError)
        else:
            assert outcome.unwrap().status is Status.PROCESSING
        assert fake_time.sleeps == [0.5]  # one request, no poll wait either way

    async def test_account_level_error_ends_waiting_orders(self, fake_time: ManualClock) -> None:
        """Orders polling when -16 arrives are ended with it, not polled again."""
        bodies = {9: b"-16\nIncorrect login details\n"}
        orders = Orders(polls=dict.fromkeys(range(1, 21), 10**6), bodies=bodies)
        async with fake_client(orders, fake_time, max_concurrency=8) as client:
            outcomes = [o async for o in client.collect_many(range(1, 21), poll_interval=1)]
        assert len(outcomes) == 20
        assert all(isinstance(o.error, AuthenticationError) for o in outcomes)
        assert len(orders.seen) <= 20 + 8

    async def test_reads_the_source_lazily(self, fake_time: ManualClock) -> None:
        """Only about max_active orders are read ahead of the consumer."""
        read: list[int] = []

        def source() -> Iterator[int]:
            for order in range(1, 10**9):
                read.append(order)
                yield order

        async with fake_client(Orders(), fake_time, max_concurrency=4) as client:
            outcomes = client.collect_many(source(), wait=False)
            first = await anext(outcomes)
            assert first.ok
            assert len(read) <= 4 + 1
            await outcomes.aclose()  # type: ignore[attr-defined]

    async def test_concurrency_bound(self, fake_time: ManualClock) -> None:
        """No more than max_concurrency requests are ever in flight, across batches."""
        orders = Orders(polls=dict.fromkeys(range(100), 1))
        async with fake_client(orders, fake_time, max_concurrency=3) as client:
            first = client.collect_many(range(1, 40), poll_interval=1)
            second = client.collect_many(range(40, 80), wait=False)

            async def drain(batch: AsyncIterator[Any]) -> int:
                return len([o async for o in batch])

            counts = await asyncio.gather(drain(first), drain(second))
        assert list(counts) == [39, 40]
        assert orders.max_in_flight == 3

    async def test_requests_per_second(self, fake_time: ManualClock) -> None:
        """A requests-per-second limit spaces request starts evenly."""
        orders = Orders()
        async with fake_client(orders, fake_time, requests_per_second=2) as client:
            for order in range(1, 5):
                await client.collect(order)
        assert fake_time.now == pytest.approx(1001.5)

    @pytest.mark.parametrize("how", ["break", "aclose", "client-close"])
    async def test_leaving_early_leaves_no_task(self, fake_time: ManualClock, how: str) -> None:
        """Breaking out, closing the iterator or closing the client cancels what is in flight."""
        gate = asyncio.Event()
        orders = Orders(gate=gate, bodies={1: READY})
        before = asyncio.all_tasks()
        client = fake_client(orders, fake_time, max_concurrency=4)
        batch = client.collect_many(range(1, 10**9), wait=False)
        first = asyncio.ensure_future(anext(batch))
        while orders.in_flight < 4:  # noqa: ASYNC110 -- watching a test double's counter
            await asyncio.sleep(0)
        if how == "client-close":
            await client.aclose()
            with pytest.raises(ClientClosedError, match="closed"):
                await first
        else:
            gate.set()
            assert (await first).ok
            if how == "aclose":
                await batch.aclose()  # type: ignore[attr-defined]
            else:
                async for _ in batch:
                    break
                del batch
            await client.aclose()
        for _ in range(5):
            await asyncio.sleep(0)
        assert asyncio.all_tasks() - before == set()
        assert orders.in_flight == 0

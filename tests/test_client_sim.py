"""CollectClient over time and over many orders, against the simulator (in-process and TLS)."""

from __future__ import annotations

import asyncio
import logging
import sys
import urllib.parse
from typing import Any

import pytest
from httpx_aiohttp import AiohttpTransport

from smime_collect import (
    AuthenticationError,
    AwaitingPaymentError,
    CertificateRejectedError,
    CertificateRevokedError,
    CollectClient,
    HttpsRequiredError,
    InvalidArgumentError,
    ResponseFormatError,
    Status,
    TransportError,
)
from smime_collect._client import _transports
from smime_collect.testing import Chaos, Fault, OrderState, Simulator, serve

PASSWORD = "sim-pa55&word"


async def _yield_a_little(seconds: float) -> None:
    """The simulator's 'latency': a few event-loop turns, so requests overlap without waiting."""
    del seconds
    for _ in range(3):
        await asyncio.sleep(0)


async def _no_sleep(seconds: float) -> None:
    """The client's sleep: record nothing, wait for nothing."""
    del seconds
    await asyncio.sleep(0)


def simulator(**kwargs: Any) -> Simulator:
    """A simulator with one account, whose latency costs no real time."""
    sim = Simulator(seed=7, sleep=_yield_a_little, **kwargs)
    sim.add_account("alice", PASSWORD)
    return sim


def client_for(sim: Simulator, password: str = PASSWORD, **kwargs: Any) -> CollectClient:
    """A CollectClient wired to the simulator in-process, with instant sleeps."""
    kwargs.setdefault("sleep", _no_sleep)
    kwargs.setdefault("base_url", sim.url)
    return CollectClient("alice", password, transport=sim.transport(), **kwargs)


class TestPolling:
    """Request economy and state changes over polls."""

    @pytest.mark.parametrize("k", [0, 1, 3])
    async def test_ready_after_k_polls_costs_k_plus_one(self, k: int) -> None:
        """An order issued after k polls costs exactly k + 1 requests."""
        sim = simulator()
        sim.add_order(1001, ready_after_polls=k)
        async with client_for(sim) as client:
            result = await client.wait_for_certificate(1001, poll_interval=1)
        assert result.status is Status.ATTACHED
        assert result.chain is not None
        assert result.chain.end_entity is not None
        assert sim.stats.requests_by_order[1001] == k + 1

    async def test_faults_are_retried_through(self) -> None:
        """503, -14, -42, a dropped connection and a truncated body are each retried."""
        sim = simulator()
        sim.add_order(1001)
        for fault in (Fault.HTTP_503, Fault.ERROR_14, Fault.DROP_CONNECTION):
            sim.inject(fault, order_number=1001)
        sim.inject(Fault.TRUNCATED_BODY, order_number=1001)
        async with client_for(sim, max_retries=4) as client:
            result = await client.collect(1001)
        assert result.status is Status.ATTACHED
        assert sim.stats.requests_by_order[1001] == 5

    async def test_oversized_body_is_refused(self) -> None:
        """An answer past max_response_bytes is a ResponseFormatError, not retried."""
        sim = simulator()
        sim.add_order(1001)
        sim.inject(Fault.OVERSIZED_BODY, order_number=1001)
        async with client_for(sim) as client:
            with pytest.raises(ResponseFormatError, match="max_response_bytes"):
                await client.collect(1001)
        assert sim.stats.requests_by_order[1001] == 1


class TestPlainHttp:
    """An http:// URL the client was told to allow still meets the endpoint's refusal."""

    async def test_sectigo_refuses_plain_http(self) -> None:
        """-1 over an allowed http://: HttpsRequiredError unretried; a batch stops at its first."""
        sim = simulator()
        sim.add_orders(range(1, 6))
        assert sim.url.startswith("https://")
        plain = "http://" + sim.url.removeprefix("https://")
        async with client_for(sim, base_url=plain, allow_insecure_http=True) as client:
            with pytest.raises(HttpsRequiredError):
                await client.collect(1)
            assert sim.stats.requests_total == 1  # not retried
            outcomes = [o async for o in client.collect_many(range(1, 6), wait=False)]
        assert sorted(o.order_number for o in outcomes) == [1, 2, 3, 4, 5]
        assert all(isinstance(o.error, HttpsRequiredError) for o in outcomes)
        assert sim.stats.requests_total == 2


class TestBatch:
    """collect_many on a realistic mix of orders."""

    async def test_mixed_states_one_outcome_each(self) -> None:
        """Every order comes back once, with its own result or error."""
        sim = simulator()
        sim.add_account("bob", "other")
        sim.add_orders(range(1, 21))
        sim.add_order(21, ready_after_polls=2)
        sim.add_order(22, state=OrderState.REJECTED)
        sim.add_order(23, state=OrderState.REVOKED)
        sim.add_order(24, state=OrderState.AWAITING_PAYMENT)
        sim.add_order(25, account="bob")
        async with client_for(sim, max_concurrency=4) as client:
            outcomes = [o async for o in client.collect_many(range(1, 26), poll_interval=1)]
        by_order = {o.order_number: o for o in outcomes}
        assert len(outcomes) == len(by_order) == 25
        assert all(by_order[n].ok for n in range(1, 22))
        assert isinstance(by_order[22].error, CertificateRejectedError)
        assert isinstance(by_order[23].error, CertificateRevokedError)
        assert isinstance(by_order[24].error, AwaitingPaymentError)
        assert isinstance(by_order[25].error, InvalidArgumentError)
        assert sim.stats.requests_total == 25 + 2

    async def test_bad_login_stops_at_once(self) -> None:
        """A wrong password: one failed login, then every order gets AuthenticationError."""
        sim = simulator()
        sim.add_orders(range(1, 201))
        async with client_for(sim, password="wrong", max_concurrency=1) as client:
            outcomes = [o async for o in client.collect_many(range(1, 201))]
        assert len(outcomes) == 200
        assert all(isinstance(o.error, AuthenticationError) for o in outcomes)
        assert sim.stats.failed_logins == 1
        assert sim.stats.requests_total == 1

    async def test_concurrency_bound_across_calls(self) -> None:
        """The simulator never sees more than max_concurrency requests at once."""
        sim = simulator(chaos=Chaos(latency=0.01))
        sim.add_orders(range(1, 61))
        async with client_for(sim, max_concurrency=5) as client:

            async def drain(numbers: range) -> int:
                return len([o async for o in client.collect_many(numbers, wait=False)])

            counts = await asyncio.gather(
                drain(range(1, 31)), drain(range(31, 61)), client.collect(1)
            )
        assert list(counts[:2]) == [30, 30]
        assert sim.stats.max_in_flight == 5

    async def test_early_exit_leaves_nothing_running(self) -> None:
        """Breaking out after one outcome cancels the rest: no task, nothing in flight."""
        sim = simulator()
        sim.add_orders(range(1, 1001))
        before = asyncio.all_tasks()
        async with client_for(sim, max_concurrency=8) as client:
            batch = client.collect_many(range(1, 1001), wait=False)
            async for outcome in batch:
                assert outcome.ok
                break
            await batch.aclose()  # type: ignore[attr-defined]
            assert asyncio.all_tasks() - before == set()
        assert sim.stats.in_flight == 0
        assert sim.stats.requests_total < 100


@pytest.mark.network
class TestLoopbackTLS:
    """A real socket with TLS: verification, both transports, and quiet logs."""

    @pytest.mark.parametrize("transport", ["default", "core-only"])
    async def test_collect_over_tls(
        self, transport: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Collect through verified TLS; no logger (httpx, httpcore...) sees the password."""
        if transport == "core-only":
            monkeypatch.setitem(sys.modules, "httpx_aiohttp", None)
        sim = simulator()
        sim.add_orders(range(1, 6))
        sim.inject(Fault.DROP_CONNECTION, order_number=3)
        async with serve(sim) as server:
            with caplog.at_level(logging.DEBUG):
                async with CollectClient(
                    "alice",
                    PASSWORD,
                    base_url=server.url,
                    verify=server.ssl_context(),
                    sleep=_no_sleep,
                ) as client:
                    expected = (
                        _transports._ShardedTransport
                        if transport == "core-only"
                        else AiohttpTransport
                    )
                    assert isinstance(client._transport, expected)
                    outcomes = [o async for o in client.collect_many(range(1, 6), wait=False)]
        assert all(o.ok for o in outcomes)
        assert sim.stats.requests_total == 6
        encoded = urllib.parse.quote_plus(PASSWORD)
        assert caplog.records
        for record in caplog.records:
            text = record.getMessage()
            assert PASSWORD not in text
            assert encoded not in text

    async def test_verify_with_a_ca_bundle_path(self) -> None:
        """verify= the path of a PEM CA bundle trusts that CA."""
        sim = simulator()
        sim.add_order(1)
        async with serve(sim) as server:
            assert server.ca_pem_path is not None
            async with CollectClient(
                "alice", PASSWORD, base_url=server.url, verify=str(server.ca_pem_path)
            ) as client:
                assert (await client.collect(1)).status is Status.ATTACHED

    async def test_untrusted_certificate_is_not_retried(self) -> None:
        """Against a server the client does not trust: a TransportError at once, TLS named."""
        sim = simulator()
        sim.add_order(1)
        async with (
            serve(sim) as server,
            CollectClient("alice", PASSWORD, base_url=server.url, sleep=_no_sleep) as client,
        ):
            with pytest.raises(TransportError, match="TLS certificate") as caught:
                await client.collect(1)
        assert caught.value.status_code is None
        assert sim.stats.requests_total == 0

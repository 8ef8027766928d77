"""Soak: collect_many over many orders on loopback TLS, 20% transient faults, some orders late.

The size is small by default so CI stays fast; ``SMIME_SOAK_ORDERS`` scales it (up to 5,000, the
issue's figure)::

    SMIME_SOAK_ORDERS=5000 pytest -m soak tests/test_soak.py

What must hold at any size:

* every order gets exactly one outcome, and every issued order is collected, with its own
  certificate (the SAN names the order's address: no answer went to the wrong order);
* the server saw the polls the scenario needs plus one request per injected fault (a truncated
  answer may also count as a poll): no order was asked about after its answer, none forgotten;
* the simulator never had more than ``max_concurrency`` requests in flight;
* afterwards no task is left and the connection pool holds nothing: no connection in use once
  the batch is over, none at all once the client is closed.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from typing import Any

import pytest
from cryptography import x509

from smime_collect import (
    AwaitingPaymentError,
    CertificateRejectedError,
    CertificateRevokedError,
    CollectClient,
    CollectOutcome,
    Status,
)
from smime_collect._client import _transports
from smime_collect.testing import Chaos, Fault, ManualClock, OrderState, Simulator, serve

pytestmark = [pytest.mark.soak, pytest.mark.network]

DEFAULT_ORDERS = 400
MAX_ORDERS = 5000
ORDERS = min(MAX_ORDERS, max(20, int(os.environ.get("SMIME_SOAK_ORDERS", DEFAULT_ORDERS))))
MAX_CONCURRENCY = 8
# 20% of requests hit a transient fault, spread over every kind the client retries.
CHAOS = Chaos(
    http_503_rate=0.05,
    http_500_rate=0.03,
    http_502_rate=0.01,
    http_429_rate=0.01,
    error_14_rate=0.04,
    error_42_rate=0.01,
    drop_connection_rate=0.03,
    truncated_body_rate=0.02,
    latency=0.001,  # through the simulator's sleep below: a few loop turns, no real wait
    retry_after="1",
)
# With 20% faults, 12 retries fail an order with probability 0.2**13 (~1e-9): a failure here is
# a bug, not bad luck.
MAX_RETRIES = 12
_FAILED_STATES = {
    OrderState.REJECTED: CertificateRejectedError,
    OrderState.REVOKED: CertificateRevokedError,
    OrderState.AWAITING_PAYMENT: AwaitingPaymentError,
}


async def _overlap(seconds: float) -> None:
    """The simulator's latency: a few event-loop turns, so requests overlap, no real wait."""
    del seconds
    for _ in range(3):
        await asyncio.sleep(0)


def scenario() -> tuple[Simulator, dict[int, int], dict[int, OrderState]]:
    """The orders: 85% issued at once, 10% issued after 1-4 polls, 5% refused for good.

    Returns:
        The simulator, the polls each issued order needs, and the failed orders' states.
    """
    sim = Simulator(seed=2024, chaos=CHAOS, sleep=_overlap)
    sim.add_account("soak", "soak-password")
    polls: dict[int, int] = {}
    failed: dict[int, OrderState] = {}
    states = list(_FAILED_STATES)
    for number in range(1, ORDERS + 1):
        if number % 20 == 0:
            failed[number] = states[number // 20 % len(states)]
            sim.add_order(number, state=failed[number])
        elif number % 10 == 3:
            late = 1 + number % 4
            polls[number] = late + 1
            sim.add_order(number, ready_after_polls=late)
        else:
            polls[number] = 1
            sim.add_order(number)
    sim.issue_certificates()  # key generation up front, not inside the event loop's run
    return sim, polls, failed


def in_use_connections(client: CollectClient) -> int:
    """Connections of the client's pool that are serving a request right now."""
    transport = client._transport
    if isinstance(transport, _transports._ShardedTransport):
        assert transport._loads == [0] * len(transport._loads)
        return sum(
            not connection.is_idle()
            for pool in transport._pools
            for connection in pool._pool.connections
        )
    session = transport.client  # type: ignore[attr-defined]  # httpx_aiohttp.AiohttpTransport
    return len(session.connector._acquired)


def pooled_connections(client: CollectClient) -> int:
    """Connections the client's pool still holds, idle or not."""
    transport = client._transport
    if isinstance(transport, _transports._ShardedTransport):
        return sum(len(pool._pool.connections) for pool in transport._pools)
    session = transport.client  # type: ignore[attr-defined]
    assert session.closed
    connector = session._connector  # None once the session is closed
    if connector is None:
        return 0
    return len(connector._conns) + len(connector._acquired)


async def _no_new_tasks(before: set[asyncio.Task[Any]]) -> set[asyncio.Task[Any]]:
    """Tasks started since ``before`` that are still alive, after the server side settles."""
    for _ in range(100):
        left = {task for task in asyncio.all_tasks() - before if not task.done()}
        left.discard(asyncio.current_task())
        if not left:
            return left
        await asyncio.sleep(0.01)  # uvicorn finishing a request cycle of a closed connection
    return left


@pytest.mark.usefixtures("transport_kind")
async def test_collect_many_soak() -> None:
    """ORDERS orders, 20% transient faults: one outcome each, all issued collected, bounds held."""
    sim, polls, failed = scenario()
    fake = ManualClock()
    async with serve(sim) as server:
        before = asyncio.all_tasks()
        client = CollectClient(
            "soak",
            "soak-password",
            base_url=server.url,
            verify=server.ssl_context(),
            max_concurrency=MAX_CONCURRENCY,
            max_retries=MAX_RETRIES,
            sleep=fake.sleep,
            clock=fake,
        )
        async with client:
            batch = client.collect_many(
                range(1, ORDERS + 1), timeout=1e9, poll_interval=1.0, max_poll_interval=2.0
            )
            outcomes: list[CollectOutcome] = [outcome async for outcome in batch]
            assert in_use_connections(client) == 0
        assert pooled_connections(client) == 0
        left = await _no_new_tasks(before)
    assert left == set()

    # Exactly one outcome per order.
    counts = Counter(outcome.order_number for outcome in outcomes)
    assert len(outcomes) == ORDERS
    assert set(counts) == set(range(1, ORDERS + 1))
    assert max(counts.values()) == 1

    # Every issued order collected, with its own certificate; every refused one its own error.
    for outcome in outcomes:
        number = outcome.order_number
        if number in failed:
            assert isinstance(outcome.error, _FAILED_STATES[failed[number]]), outcome
            continue
        assert outcome.ok, f"order {number}: {outcome.error!r}"
        assert outcome.result is not None
        assert outcome.result.status is Status.ATTACHED
        chain = outcome.result.chain
        assert chain is not None
        assert chain.end_entity is not None
        san = chain.end_entity.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert san.value.get_values_for_type(x509.RFC822Name) == [f"user{number}@example.com"]

    # The server saw the polls the scenario needs, plus one request per injected fault.  A body
    # cut off half-way was still answered by the endpoint (a late order's poll counted), so each
    # truncation may stand for a poll as well as a fault.
    faults = sum(sim.stats.faults.values())
    truncated = sim.stats.faults[Fault.TRUNCATED_BODY]
    expected_polls = sum(polls.values()) + len(failed)
    assert truncated > 0
    assert expected_polls + faults - truncated <= sim.stats.requests_total
    assert sim.stats.requests_total <= expected_polls + faults
    assert faults > ORDERS // 10  # the faults really happened (about 20% of requests)
    assert fake.sleeps  # and were waited out with the injected sleep

    # The concurrency bound held, and was reached.
    assert sim.stats.in_flight == 0
    assert 2 <= sim.stats.max_in_flight <= MAX_CONCURRENCY

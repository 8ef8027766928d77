"""RedisBudget hands a slot given back to the next request of its process, on a real Redis.

A slot given back with an ordinary answer stays with its process for ``hand_over`` seconds; the
next request of the account takes it over in one Redis step, and requests that wait queue up
behind the one that watches the wake-up list.  These tests prove that the hand-over never puts
more than ``max_concurrency`` slots out, moves the lease to the new request, returns a slot
handed to a request cancelled meanwhile, and gives a slot back to Redis after a few hand-overs
so that other processes get their turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("redis", reason="needs redis-py: pip install 'smime-collect[redis]'")

import redis.asyncio as aioredis
from test_redis_budget import RedisServer, redis_server

from smime_collect import InvalidRequestError
from smime_collect._client import BudgetTicket, LoginVerdict
from smime_collect.redis import RedisBudget

pytestmark = pytest.mark.redis

URL = "https://x.test/"
OK = LoginVerdict.ACCEPTED

__all__ = ["redis_server"]  # the fixture, used here by name


class Counted:
    """A redis-py client whose commands are counted (each is one round trip)."""

    def __init__(self, url: str) -> None:
        self.redis = aioredis.Redis.from_url(url)
        self.commands: list[str] = []
        execute: Any = self.redis.execute_command

        async def counted(*args: Any, **options: Any) -> Any:
            self.commands.append(str(args[0]))
            return await execute(*args, **options)

        self.redis.execute_command = counted  # type: ignore[method-assign]


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A plain client of the test's Redis, to look at the leases."""
    client = aioredis.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def leases(redis: aioredis.Redis) -> dict[str, float]:
    """Every lease of the account on the server: lease id -> expiry (server ms)."""
    found: dict[str, float] = {}
    async for key in redis.scan_iter(match="smime-collect:*:slots"):  # gone when empty
        pairs: list[Any] = await redis.zrange(key, 0, -1, withscores=True)
        found.update((member.decode(), score) for member, score in pairs)
    return found


async def take(budget: RedisBudget, max_wait: float | None = None) -> BudgetTicket:
    """A slot of the test's account, which must come."""
    ticket = await budget.acquire(URL, "alice", max_wait=max_wait, hold=1.0)
    assert ticket is not None
    return ticket


def budget_of(url: str | aioredis.Redis, **options: Any) -> RedisBudget:
    """A budget of two slots whose login is taken as accepted."""
    return RedisBudget(url, max_concurrency=2, probe_first=False, **options)


@pytest.fixture
async def crowded(redis_server: RedisServer) -> AsyncIterator[tuple[RedisBudget, set[str]]]:
    """A budget of three slots, two of them held by another process (their lease ids)."""
    budget = RedisBudget(redis_server.url, max_concurrency=3, probe_first=False)
    other = RedisBudget(redis_server.url, max_concurrency=3, probe_first=False)
    held = [await take(other), await take(other)]
    yield budget, {str(ticket.token) for ticket in held}
    for ticket in held:
        await other.release(ticket, OK)
    await budget.aclose()
    await other.aclose()


class TestHandOver:
    """A slot goes from one request of a process to its next, the lease with it."""

    async def test_the_next_request_takes_the_slot_over(
        self, redis_server: RedisServer, redis: aioredis.Redis
    ) -> None:
        """A slot given back is still taken on Redis, then moves to a new lease in one step."""
        counted = Counted(redis_server.url)
        budget = budget_of(counted.redis, hand_over=5.0)
        first, second = await take(budget), await take(budget)
        await budget.release(first, OK)
        assert set(await leases(redis)) == {first.token, second.token}  # kept, not given back
        other = budget_of(redis_server.url)
        assert await other.acquire(URL, "alice", max_wait=0.1, hold=1.0) is None
        before, counted.commands[:] = dict(await leases(redis)), []
        third = await take(budget)
        assert counted.commands == ["EVALSHA"]  # one round trip for the hand-over
        after = await leases(redis)
        assert set(after) == {second.token, third.token}
        assert after[str(third.token)] > before[str(first.token)]  # the lease starts afresh
        await budget.release(third, OK)
        await budget.release(second, OK)
        await budget.aclose()
        assert await leases(redis) == {}  # aclose gives the kept slots back at once
        await other.aclose()
        await counted.redis.aclose()

    async def test_a_kept_slot_goes_back_after_hand_over(
        self, redis_server: RedisServer, redis: aioredis.Redis
    ) -> None:
        """A kept slot nobody of its process takes goes back to Redis, to another process."""
        budget = budget_of(redis_server.url, hand_over=0.05)
        other = budget_of(redis_server.url)
        held = [await take(budget), await take(budget)]
        await budget.release(held[0], OK)
        waiting = asyncio.create_task(other.acquire(URL, "alice", max_wait=5, hold=1.0))
        ticket = await asyncio.wait_for(waiting, 5)
        assert ticket is not None
        assert set(await leases(redis)) == {held[1].token, ticket.token}
        await other.release(ticket, OK)
        await budget.release(held[1], OK)
        await other.aclose()
        await budget.aclose()

    async def test_waiting_requests_never_exceed_the_budget(
        self, redis_server: RedisServer, redis: aioredis.Redis
    ) -> None:
        """Twelve requests of one process through two slots: never more than two leases."""
        budget = budget_of(redis_server.url)
        in_use: set[str] = set()
        most = 0

        async def request() -> None:
            nonlocal most
            ticket = await take(budget)
            in_use.add(str(ticket.token))
            most = max(most, len(in_use), len(await leases(redis)))
            await asyncio.sleep(0.01)
            in_use.discard(str(ticket.token))
            await budget.release(ticket, OK)

        await asyncio.wait_for(asyncio.gather(*(request() for _ in range(12))), 30)
        await budget.aclose()
        assert most == 2
        assert await leases(redis) == {}

    async def test_a_slot_handed_to_a_cancelled_request_comes_back(
        self, crowded: tuple[RedisBudget, set[str]], redis: aioredis.Redis
    ) -> None:
        """The request a slot was handed to is cancelled before it runs: the slot is not lost."""
        budget, others = crowded
        held = await take(budget)
        watcher = asyncio.create_task(budget.acquire(URL, "alice", max_wait=None, hold=1.0))
        await asyncio.sleep(0.2)  # watches the wake-up list now
        queued = asyncio.create_task(budget.acquire(URL, "alice", max_wait=None, hold=1.0))
        await asyncio.sleep(0.2)  # queued behind it
        await budget.release(held, OK)  # handed to the queued request...
        queued.cancel()  # ...which is cancelled before it could run
        with pytest.raises(asyncio.CancelledError):
            await queued
        ticket = await asyncio.wait_for(watcher, 5)
        assert ticket is not None
        assert set(await leases(redis)) == {ticket.token, *others}
        await budget.release(ticket, OK)

    async def test_a_queued_request_gives_up_at_its_deadline(
        self, crowded: tuple[RedisBudget, set[str]], redis: aioredis.Redis
    ) -> None:
        """A request queued behind the watcher returns None at max_wait, holding nothing."""
        budget, others = crowded
        mine = await take(budget)
        watcher = asyncio.create_task(budget.acquire(URL, "alice", max_wait=0.6, hold=1.0))
        await asyncio.sleep(0.1)
        assert await budget.acquire(URL, "alice", max_wait=0.2, hold=1.0) is None
        assert await watcher is None
        assert set(await leases(redis)) == {mine.token, *others}
        await budget.release(mine, OK)

    async def test_a_busy_process_lets_others_have_a_turn(self, redis_server: RedisServer) -> None:
        """A process that always has a next request still gives its slot back after a few."""
        busy = RedisBudget(redis_server.url, max_concurrency=1, probe_first=False)
        other = RedisBudget(redis_server.url, max_concurrency=1, probe_first=False)
        stop = asyncio.Event()

        async def hog() -> int:
            served = 0
            while not stop.is_set():
                ticket = await take(busy)
                await asyncio.sleep(0.005)
                await busy.release(ticket, OK)
                served += 1
            return served

        # Two requests at a time, so that one always waits to take the slot over.
        hogging = [asyncio.create_task(hog()) for _ in range(2)]
        await asyncio.sleep(0.1)
        ticket = await other.acquire(URL, "alice", max_wait=5, hold=1.0)
        stop.set()
        assert ticket is not None
        await other.release(ticket, OK)
        assert sum(await asyncio.gather(*hogging)) > 0
        await busy.aclose()
        await other.aclose()

    async def test_the_probe_and_a_rejected_login_go_back_at_once(
        self, redis_server: RedisServer, redis: aioredis.Redis
    ) -> None:
        """Answers that change the login's state are not kept: Redis has them at once."""
        budget = RedisBudget(redis_server.url, max_concurrency=2, hand_over=5.0)
        probe = await take(budget)
        assert probe.probe
        await budget.release(probe, OK)
        assert await leases(redis) == {}
        ticket = await take(budget)
        await budget.release(ticket, LoginVerdict.REJECTED)
        assert await leases(redis) == {}
        await budget.aclose()

    async def test_the_last_request_gives_every_slot_back(
        self, redis_server: RedisServer, redis: aioredis.Redis
    ) -> None:
        """With no request of the process left, Redis has every slot back before release returns.

        A process whose event loop ends next, without ``aclose``, must not hold slots on Redis
        until their leases expire.
        """
        budget = budget_of(redis_server.url, hand_over=60.0)
        first, second = await take(budget), await take(budget)
        await budget.release(first, OK)
        assert set(await leases(redis)) == {first.token, second.token}  # kept for the other
        await budget.release(second, OK)
        assert await leases(redis) == {}
        alone = await take(budget)
        await budget.release(alone, OK)
        assert await leases(redis) == {}
        await budget.aclose()

    def test_bad_hand_over(self) -> None:
        """hand_over must be a number of seconds >= 0."""
        for bad in (-1, float("inf"), "1"):
            with pytest.raises(InvalidRequestError, match="hand_over"):
                RedisBudget("redis://127.0.0.1:1/0", hand_over=bad)  # type: ignore[arg-type]

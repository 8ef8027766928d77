"""The account budget in one process: LocalBudget shared by clients, and the login guard."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from smime_collect import (
    AuthenticationError,
    CollectClient,
    CollectOutcome,
    InvalidRequestError,
    LocalBudget,
    Status,
)
from smime_collect._client import LoginVerdict
from smime_collect.testing import Chaos, Fault, ManualClock, Simulator

PASSWORD = "sim-pa55&word"
WRONG = "not-the-password"
WALL = datetime(2026, 12, 3, 10, 0, 0, tzinfo=UTC)


async def _yield_a_little(seconds: float) -> None:
    """The simulator's latency: a few event-loop turns, so requests overlap without waiting."""
    del seconds
    for _ in range(3):
        await asyncio.sleep(0)


def simulator(**kwargs: Any) -> Simulator:
    """A simulator with one account, whose latency costs no real time."""
    kwargs.setdefault("chaos", Chaos(latency=0.01))
    sim = Simulator(seed=3, sleep=_yield_a_little, **kwargs)
    sim.add_account("alice", PASSWORD)
    return sim


def budget_for(clock: ManualClock, **kwargs: Any) -> LocalBudget:
    """A LocalBudget on the test's clock."""
    return LocalBudget(clock=clock, sleep=clock.sleep, wall_clock=lambda: WALL, **kwargs)


def client_for(
    sim: Simulator,
    clock: ManualClock,
    password: str = PASSWORD,
    login: str = "alice",
    **kwargs: Any,
) -> CollectClient:
    """A client wired to the simulator in-process, on the test's clock."""
    return CollectClient(
        login,
        password,
        base_url=sim.url,
        transport=sim.transport(),
        clock=clock,
        sleep=clock.sleep,
        wall_clock=lambda: WALL,
        **kwargs,
    )


async def reject_login(
    sim: Simulator, clock: ManualClock, budget: LocalBudget | None = None
) -> None:
    """One call with the wrong password, answered with a -16."""
    async with client_for(sim, clock, password=WRONG, budget=budget) as client:
        with pytest.raises(AuthenticationError):
            await client.collect(1)


async def collect_all(client: CollectClient, orders: range) -> list[CollectOutcome]:
    """Every outcome of a batch that does not wait for certificates."""
    async with client:
        return [o async for o in client.collect_many(orders, wait=False)]


class TestSharedBudget:
    """One LocalBudget passed to several clients bounds them together."""

    async def test_clients_share_the_concurrency(self, fake_time: ManualClock) -> None:
        """Three 4-concurrency clients on a budget of 2: the server never sees more than 2."""
        sim = simulator()
        sim.add_orders(range(1, 61))
        budget = budget_for(fake_time, max_concurrency=2)
        clients = [client_for(sim, fake_time, budget=budget) for _ in range(3)]
        results = await asyncio.gather(
            *(collect_all(c, range(1 + 20 * i, 21 + 20 * i)) for i, c in enumerate(clients))
        )
        assert [all(o.ok for o in r) for r in results] == [True, True, True]
        assert sim.stats.max_in_flight == 2
        assert sim.stats.requests_total == 60

    async def test_own_concurrency_still_bounds_a_client(self, fake_time: ManualClock) -> None:
        """A client of max_concurrency=1 on a budget of 8 sends one request at a time."""
        sim = simulator()
        sim.add_orders(range(1, 11))
        budget = budget_for(fake_time, max_concurrency=8)
        client = client_for(sim, fake_time, budget=budget, max_concurrency=1)
        assert len(await collect_all(client, range(1, 11))) == 10
        assert sim.stats.max_in_flight == 1

    async def test_a_slow_down_holds_every_client(self, fake_time: ManualClock) -> None:
        """A 429 with Retry-After: 30 answered to one client delays the other's request too."""
        sim = simulator()
        sim.add_orders([1, 2])
        sim.inject(Fault.HTTP_429, order_number=1, retry_after="30")
        budget = budget_for(fake_time)
        async with (
            client_for(sim, fake_time, budget=budget) as first,
            client_for(sim, fake_time, budget=budget) as second,
        ):
            assert (await first.collect(1)).status is Status.ATTACHED
            started = fake_time.now
            assert (await second.collect(2)).status is Status.ATTACHED
        assert started == pytest.approx(1030.0)  # the first waited out the 30 s
        assert sim.stats.requests_by_order[2] == 1

    async def test_accounts_share_nothing(self, fake_time: ManualClock) -> None:
        """A -16 for one login name leaves another account on the same budget untouched."""
        sim = simulator()
        sim.add_account("bob", "bobs-password")
        sim.add_order(1, account="bob")
        budget = budget_for(fake_time)
        await reject_login(sim, fake_time, budget)
        async with client_for(sim, fake_time, "bobs-password", "bob", budget=budget) as bob:
            assert (await bob.collect(1)).status is Status.ATTACHED

    def test_bad_options(self) -> None:
        """Out-of-range options are InvalidRequestErrors naming the option."""
        with pytest.raises(InvalidRequestError, match="max_concurrency"):
            LocalBudget(max_concurrency=0)
        with pytest.raises(InvalidRequestError, match="login_cooldown"):
            LocalBudget(login_cooldown=-1)
        with pytest.raises(InvalidRequestError, match="requests_per_second"):
            LocalBudget(requests_per_second=0)


class TestLoginGuard:
    """After a -16, nothing is sent for the account until the cooldown ends or is lifted."""

    async def test_rejected_login_is_not_sent_again(self, fake_time: ManualClock) -> None:
        """The second call raises at once, without a request, saying since when and how to lift."""
        sim = simulator()
        sim.add_orders([1, 2])
        async with client_for(sim, fake_time, password=WRONG) as client:
            with pytest.raises(AuthenticationError):
                await client.collect(1)
            with pytest.raises(AuthenticationError) as caught:
                await client.collect(2)
        assert sim.stats.failed_logins == 1
        assert sim.stats.requests_total == 1
        message = str(caught.value)
        assert "order 2" in message
        assert "2026-12-03 10:00:00 UTC" in message
        assert "reset_login(" in message
        assert "login_cooldown=600 s" in message
        assert WRONG not in message
        assert caught.value.code == -16

    async def test_a_shared_budget_guards_every_client(self, fake_time: ManualClock) -> None:
        """A -16 seen by one client stops another client of the same account on the budget."""
        sim = simulator()
        sim.add_orders([1, 2])
        budget = budget_for(fake_time)
        async with (
            client_for(sim, fake_time, password=WRONG, budget=budget) as one,
            client_for(sim, fake_time, password=WRONG, budget=budget) as other,
        ):
            with pytest.raises(AuthenticationError):
                await one.collect(1)
            with pytest.raises(AuthenticationError, match="not sent"):
                await other.collect(2)
        assert sim.stats.failed_logins == 1

    async def test_one_probe_after_the_cooldown(self, fake_time: ManualClock) -> None:
        """After login_cooldown one request probes; its -16 starts a new cooldown."""
        sim = simulator()
        sim.add_orders([1])
        budget = budget_for(fake_time, login_cooldown=60)
        async with client_for(sim, fake_time, password=WRONG, budget=budget) as client:
            with pytest.raises(AuthenticationError):
                await client.collect(1)
            fake_time.advance(59)
            with pytest.raises(AuthenticationError, match="probes in 1 s"):
                await client.collect(1)
            assert sim.stats.failed_logins == 1
            fake_time.advance(1)
            with pytest.raises(AuthenticationError):
                await client.collect(1)  # the probe
            assert sim.stats.failed_logins == 2
            with pytest.raises(AuthenticationError, match="not sent"):
                await client.collect(1)
        assert sim.stats.failed_logins == 2

    @pytest.mark.parametrize("fixed", [False, True], ids=["still-wrong", "fixed"])
    async def test_the_probe_decides_for_the_batch(
        self, fake_time: ManualClock, *, fixed: bool
    ) -> None:
        """After the cooldown one probe goes alone: its -16 ends the batch, its success opens it."""
        sim = simulator()
        sim.add_orders(range(1, 21))
        budget = budget_for(fake_time, login_cooldown=60)
        await reject_login(sim, fake_time, budget)
        fake_time.advance(60)
        client = client_for(sim, fake_time, PASSWORD if fixed else WRONG, budget=budget)
        outcomes = await collect_all(client, range(1, 21))
        assert len(outcomes) == 20
        if fixed:
            assert all(o.ok for o in outcomes)
            assert sim.stats.max_in_flight == 4  # the others followed the probe together
        else:
            assert all(isinstance(o.error, AuthenticationError) for o in outcomes)
        assert sim.stats.failed_logins == 1 + (not fixed)

    async def test_reset_login_lifts_the_guard(self, fake_time: ManualClock) -> None:
        """reset_login lets the next request through before the cooldown ends."""
        sim = simulator()
        sim.add_orders([1])
        budget = budget_for(fake_time)
        await reject_login(sim, fake_time, budget)
        await budget.reset_login(sim.url, "alice")
        async with client_for(sim, fake_time, budget=budget) as client:
            assert (await client.collect(1)).status is Status.ATTACHED

    async def test_probe_first_sends_one_wrong_password(self, fake_time: ManualClock) -> None:
        """With probe_first, a batch's first request goes alone: one failed login, not four."""
        sim = simulator()
        sim.add_orders(range(1, 21))
        budget = budget_for(fake_time, probe_first=True)
        outcomes = await collect_all(client_for(sim, fake_time, WRONG, budget=budget), range(1, 21))
        assert all(isinstance(o.error, AuthenticationError) for o in outcomes)
        assert sim.stats.failed_logins == 1

    async def test_without_probe_first_a_burst_goes_out(self, fake_time: ManualClock) -> None:
        """Without probe_first the first requests go together, as they always have."""
        sim = simulator()
        sim.add_orders(range(1, 21))
        outcomes = await collect_all(client_for(sim, fake_time, WRONG), range(1, 21))
        assert all(isinstance(o.error, AuthenticationError) for o in outcomes)
        assert sim.stats.max_in_flight == 4  # all four went out with the wrong password

    async def test_a_transient_answer_hands_the_probe_on(self, fake_time: ManualClock) -> None:
        """A probe answered with a 503 says nothing of the login: the next request probes."""
        budget = budget_for(fake_time, probe_first=True)
        first = await budget.acquire("https://x.test/", "alice", max_wait=None)
        assert first is not None
        assert first.probe
        waiting = asyncio.ensure_future(budget.acquire("https://x.test/", "alice", max_wait=None))
        await asyncio.sleep(0)
        assert not waiting.done()  # the others wait for the probe's answer
        await budget.release(first, LoginVerdict.UNKNOWN)
        second = await waiting
        assert second is not None
        assert second.probe
        await budget.release(second, LoginVerdict.ACCEPTED)
        third = await budget.acquire("https://x.test/", "alice", max_wait=None)
        assert third is not None
        assert not third.probe

    async def test_waiting_for_the_probe_respects_the_deadline(
        self, fake_time: ManualClock
    ) -> None:
        """A request waiting for the probe gives up at its max_wait, holding nothing."""
        budget = budget_for(fake_time, probe_first=True)
        probe = await budget.acquire("https://x.test/", "alice", max_wait=None)
        assert probe is not None
        assert await budget.acquire("https://x.test/", "alice", max_wait=0.01) is None
        await budget.release(probe, LoginVerdict.ACCEPTED)

    async def test_nothing_of_the_password_is_kept(self, fake_time: ManualClock) -> None:
        """The budget's state and repr hold no trace of the password."""
        sim = simulator()
        sim.add_orders([1])
        budget = budget_for(fake_time)
        await reject_login(sim, fake_time, budget)
        assert WRONG not in repr(budget)
        assert WRONG not in repr(vars(budget))

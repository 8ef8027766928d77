"""RedisBudget on a real Redis server: one account's limits held by several OS processes.

A fixture starts ``redis-server`` on a free loopback port in a temporary directory.  Without the
binary these tests skip, saying how to install it; with ``SMIME_COLLECT_REQUIRE_REDIS=1`` (set
by ``.ci/run``) a missing binary fails them instead.  The simulator serves HTTPS on loopback;
the worker processes are this file run as a script (``python test_redis_budget.py worker``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from smime_collect import (
    AuthenticationError,
    BudgetUnavailableError,
    CollectClient,
    CollectError,
    InvalidRequestError,
    QueryType,
)
from smime_collect.testing import Chaos, Fault, Simulator, serve

pytest.importorskip("redis", reason="needs redis-py: pip install 'smime-collect[redis]'")

from smime_collect._client import LoginVerdict
from smime_collect.redis import RedisBudget

pytestmark = pytest.mark.redis

PASSWORD = "sim-pa55&word"
WRONG = "not-the-password"
REQUIRE = "SMIME_COLLECT_REQUIRE_REDIS"
FLEET_SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "fleet" / "collect_fleet.py"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A redis-server process of this test, on a port it chose; stop and start it at will."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        self.process = subprocess.Popen(  # noqa: S603 -- our own arguments
            [
                *(self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
                *("--appendonly", "no", "--dir", str(self.directory)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port)) as s,
            ):
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """Stop the server (SIGKILL: nothing is saved anyway)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh redis-server on a free loopback port, stopped after the test."""
    binary = shutil.which("redis-server")
    if binary is None:
        reason = "redis-server is not installed: apt-get install -y redis-server"
        if os.environ.get(REQUIRE):
            pytest.fail(f"{reason} ({REQUIRE} is set)")
        pytest.skip(reason)
    with tempfile.TemporaryDirectory() as directory:
        server = RedisServer(binary, Path(directory))
        server.start()
        try:
            yield server
        finally:
            server.stop()


class Recorder:
    """The simulator's latency, noting when each request arrived, and when one order's first did."""

    def __init__(self, order: int = 0) -> None:
        self.arrivals: list[float] = []
        self.order = order
        self.first_of_order: float | None = None
        self.sim: Simulator | None = None

    async def sleep(self, seconds: float) -> None:
        """Note the arrival, then wait out the latency."""
        self.arrivals.append(time.monotonic())
        counted = self.sim is not None and self.sim.stats.requests_by_order[self.order]
        if counted and self.first_of_order is None:  # the order is counted before the latency
            self.first_of_order = self.arrivals[-1]
        await asyncio.sleep(seconds)


def simulator(recorder: Recorder | None = None, latency: float = 0.002) -> Simulator:
    """A simulator with one account and a little real latency."""
    sleep = recorder.sleep if recorder is not None else asyncio.sleep
    sim = Simulator(seed=5, chaos=Chaos(latency=latency), sleep=sleep)
    sim.add_account("alice", PASSWORD)
    return sim


@contextlib.asynccontextmanager
async def served(sim: Simulator) -> AsyncIterator[tuple[str, str]]:
    """The simulator on loopback TLS: its URL and CA file."""
    async with serve(sim) as server:
        yield server.url, str(server.ca_pem_path)


async def run_workers(jobs: list[dict[str, Any]], limit: float = 120) -> list[list[Any]]:
    """Run one worker process per job; each returns its outcomes as [order, error type]."""
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "worker",
            json.dumps(job),
            stdout=asyncio.subprocess.PIPE,
        )
        for job in jobs
    ]
    async with asyncio.timeout(limit):
        outputs = await asyncio.gather(*(p.communicate() for p in processes))
    assert [p.returncode for p in processes] == [0] * len(jobs)
    return [json.loads(out) for out, _ in outputs]


def job(url: str, ca: str, redis_url: str, orders: list[int], **extra: Any) -> dict[str, Any]:
    """A worker's job: its orders and how to reach the simulator and Redis."""
    return {"url": url, "ca": ca, "redis": redis_url, "orders": orders, **extra}


async def worker(spec: dict[str, Any]) -> list[Any]:
    """One process of the fleet: collect its orders through the shared budget."""
    budget = RedisBudget(
        spec["redis"],
        max_concurrency=4,
        login_cooldown=spec.get("cooldown", 600.0),
        lease_seconds=spec.get("lease"),
    )
    client = CollectClient(
        "alice",
        spec.get("password", PASSWORD),
        base_url=spec["url"],
        verify=spec["ca"],
        max_concurrency=4,
        budget=budget,
        max_retries=spec.get("retries", 3),
    )
    async with client:
        outcomes = [
            [o.order_number, None if o.ok else type(o.error).__name__]
            async for o in client.collect_many(
                spec["orders"], wait=False, query_type=QueryType(spec.get("query", 1))
            )
        ]
    await budget.aclose()
    return outcomes


async def hold_slots(spec: dict[str, Any]) -> None:
    """A process that takes slots, says so, and never gives them back."""
    budget = RedisBudget(spec["redis"], max_concurrency=4, lease_seconds=spec["lease"])
    for _ in range(spec["slots"]):
        assert await budget.acquire(spec["url"], "alice", max_wait=None, hold=1.0)
    print("held", flush=True)
    await asyncio.sleep(3600)


class TestFleet:
    """Several processes, one account: the budget holds across them."""

    async def test_four_processes_never_exceed_four(self, redis_server: RedisServer) -> None:
        """4 processes x 4-concurrency clients over 2,000 orders: never more than 4 in flight."""
        sim = simulator(latency=0.001)
        sim.add_orders(range(1, 2001))
        async with served(sim) as (url, ca):
            jobs = [
                job(url, ca, redis_server.url, list(range(1 + i, 2001, 4)), query=0)
                for i in range(4)
            ]
            results = await run_workers(jobs)
        outcomes = [o for result in results for o in result]
        assert sorted(o[0] for o in outcomes) == list(range(1, 2001))
        assert all(error is None for _, error in outcomes)
        assert sim.stats.max_in_flight == 4
        assert sim.stats.requests_total == 2000

    async def test_a_429_holds_every_process(self, redis_server: RedisServer) -> None:
        """A 429 with Retry-After: 2 answered to one process: no process sends for 2 s."""
        recorder = Recorder(order=50)
        sim = recorder.sim = simulator(recorder)
        sim.add_orders(range(1, 201))
        sim.inject(Fault.HTTP_429, order_number=50, retry_after="2")
        async with served(sim) as (url, ca):
            jobs = [job(url, ca, redis_server.url, list(range(1 + i, 201, 4))) for i in range(4)]
            results = await run_workers(jobs)
        assert all(error is None for result in results for _, error in result)
        gaps = [b - a for a, b in zip(recorder.arrivals, recorder.arrivals[1:], strict=False)]
        assert sum(gap >= 1.0 for gap in gaps) == 1  # one pause, for the whole fleet
        pause = max(range(len(gaps)), key=gaps.__getitem__)
        resumed = recorder.arrivals[pause + 1]
        assert recorder.first_of_order is not None
        # Retry-After counts from the answer: nothing arrives until 2 s after it.  A request a
        # process had already been given a slot for when the 429 came back may still arrive
        # just after the 429, before the pause.
        assert resumed - recorder.first_of_order >= 2.0
        assert recorder.arrivals[pause] - recorder.first_of_order < 0.5

    async def test_a_wrong_password_is_tried_once(self, redis_server: RedisServer) -> None:
        """A wrong password in 4 processes: 1 failed login until the cooldown ends, then 1 probe."""
        sim = simulator()
        sim.add_orders(range(1, 41))
        async with served(sim) as (url, ca):
            spec = {"password": WRONG, "cooldown": 3.0}
            jobs = [
                job(url, ca, redis_server.url, list(range(1 + i, 41, 4)), **spec) for i in range(4)
            ]
            results = await run_workers(jobs)
            assert all(e == "AuthenticationError" for result in results for _, e in result)
            assert sim.stats.failed_logins == 1
            await asyncio.sleep(3.1)
            results = await run_workers(jobs)
            assert all(e == "AuthenticationError" for result in results for _, e in result)
        assert sim.stats.failed_logins == 2

    async def test_a_killed_process_gives_its_slots_back(self, redis_server: RedisServer) -> None:
        """SIGKILL a process holding 3 of 4 slots: they come back within lease_seconds."""
        # 50 ms a request, so that four in flight overlap however busy the machine is: with a
        # 2 ms server a loaded machine seldom had four requests out at one moment.
        sim = simulator(latency=0.05)
        sim.add_orders(range(1, 41))
        async with served(sim) as (url, ca):
            holder = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "hold",
                json.dumps({"redis": redis_server.url, "url": url, "slots": 3, "lease": 1.0}),
                stdout=asyncio.subprocess.PIPE,
            )
            assert holder.stdout is not None
            async with asyncio.timeout(30):
                assert await holder.stdout.readline() == b"held\n"
            holder.send_signal(signal.SIGKILL)
            await holder.wait()
            started = time.monotonic()
            results = await run_workers([job(url, ca, redis_server.url, list(range(1, 41)))])
        assert all(error is None for _, error in results[0])
        assert sim.stats.max_in_flight == 4
        assert time.monotonic() - started < 30


class TestRedisBudgetInProcess:
    """The budget's guarantees on the real server, with clients in this process."""

    async def test_two_budgets_share_one_account(self, redis_server: RedisServer) -> None:
        """Two RedisBudget objects (as two processes would) hold one limit of 3 together."""
        sim = simulator(latency=0.05)  # long enough for three requests to overlap under load
        sim.add_orders(range(1, 61))
        budgets = [RedisBudget(redis_server.url, max_concurrency=3) for _ in range(2)]
        async with served(sim) as (url, ca):

            async def run(budget: RedisBudget, orders: range) -> list[bool]:
                async with CollectClient(
                    "alice", PASSWORD, base_url=url, verify=ca, budget=budget
                ) as client:
                    return [o.ok async for o in client.collect_many(orders, wait=False)]

            results = await asyncio.gather(
                run(budgets[0], range(1, 31)), run(budgets[1], range(31, 61))
            )
        for budget in budgets:
            await budget.aclose()
        assert all(all(r) for r in results)
        assert sim.stats.max_in_flight == 3

    async def test_reset_login_lifts_it_everywhere(self, redis_server: RedisServer) -> None:
        """After a -16, another budget raises at once; reset_login lets the next probe through."""
        one = RedisBudget(redis_server.url)
        other = RedisBudget(redis_server.url)
        ticket = await one.acquire("https://x.test/", "alice", max_wait=None)
        assert ticket is not None
        assert ticket.probe
        await one.release(ticket, LoginVerdict.REJECTED)
        with pytest.raises(AuthenticationError, match="reset_login"):
            await other.acquire("https://x.test/", "alice", max_wait=None)
        await other.reset_login("https://x.test/", "alice")
        again = await one.acquire("https://x.test/", "alice", max_wait=None)
        assert again is not None
        assert again.probe
        await one.release(again, LoginVerdict.ACCEPTED)
        free = await other.acquire("https://x.test/", "alice", max_wait=None)
        assert free is not None
        assert not free.probe
        await other.release(free, LoginVerdict.ACCEPTED)
        await one.aclose()
        await other.aclose()

    async def test_a_full_budget_times_out(self, redis_server: RedisServer) -> None:
        """With every slot taken, acquire gives up at max_wait and holds nothing."""
        budget = RedisBudget(redis_server.url, max_concurrency=1, probe_first=False)
        held = await budget.acquire("https://x.test/", "alice", max_wait=None)
        assert held is not None
        other = RedisBudget(redis_server.url, max_concurrency=1, probe_first=False)
        assert await other.acquire("https://x.test/", "alice", max_wait=0.2) is None
        await budget.release(held, LoginVerdict.ACCEPTED)
        ticket = await other.acquire("https://x.test/", "alice", max_wait=1)
        assert ticket is not None
        await other.release(ticket, LoginVerdict.ACCEPTED)
        await budget.aclose()
        await other.aclose()

    async def test_redis_stopped_mid_batch(self, redis_server: RedisServer) -> None:
        """Redis stops mid-batch: nothing is sent without a slot, every order has one outcome."""
        sim = simulator(latency=0.005)
        sim.add_orders(range(1, 201))
        budget = RedisBudget(redis_server.url, call_timeout=1.0)
        outcomes: list[Any] = []
        async with (
            served(sim) as (url, ca),
            CollectClient(
                "alice", PASSWORD, base_url=url, verify=ca, budget=budget, max_retries=1
            ) as client,
        ):
            async for outcome in client.collect_many(range(1, 201), wait=False):
                outcomes.append(outcome)
                if len(outcomes) == 50:
                    redis_server.stop()
                    sent_before = sim.stats.requests_total
            sent_while_down = sim.stats.requests_total - sent_before
        await budget.aclose()
        assert sorted(o.order_number for o in outcomes) == list(range(1, 201))
        failed = [o for o in outcomes if not o.ok]
        assert failed
        assert all(isinstance(o.error, BudgetUnavailableError) for o in failed)
        assert sent_while_down <= 4  # only the requests already holding a slot
        redis_server.start()
        async with (
            served(sim) as (url, ca),
            CollectClient("alice", PASSWORD, base_url=url, verify=ca, budget=budget) as client,
        ):
            again = [o async for o in client.collect_many([o.order_number for o in failed])]
        await budget.aclose()
        assert all(o.ok for o in again)


class TestBadRedis:
    """An unreachable, wrong or broken Redis: a clear CollectError, never a hang."""

    async def _collect_once(self, budget: RedisBudget) -> CollectError:
        async with CollectClient(
            "alice",
            PASSWORD,
            base_url="https://x.test/",
            budget=budget,
            max_retries=0,
            transport=simulator().transport(),
        ) as client:
            with pytest.raises(CollectError) as caught:
                async with asyncio.timeout(10):
                    await client.collect(1)
        await budget.aclose()
        return caught.value

    async def test_nothing_listens(self) -> None:
        """A port where nothing listens: BudgetUnavailableError, naming host and port."""
        port = _free_port()
        error = await self._collect_once(RedisBudget(f"redis://127.0.0.1:{port}/0"))
        assert isinstance(error, BudgetUnavailableError)
        assert f"127.0.0.1:{port}" in str(error)
        assert "nothing was sent" in str(error)

    def test_not_a_redis_url(self) -> None:
        """A URL of another scheme is an InvalidRequestError at once."""
        with pytest.raises(InvalidRequestError, match="Redis URL"):
            RedisBudget("http://127.0.0.1:1/")

    async def test_a_server_that_is_not_redis(self) -> None:
        """A server that never answers like Redis: BudgetUnavailableError within call_timeout."""
        done = asyncio.Event()
        handlers: list[asyncio.Task[None]] = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            handlers.append(task)
            try:
                await reader.read(100)
                await done.wait()  # never a Redis answer
            finally:
                writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            budget = RedisBudget(f"redis://127.0.0.1:{port}/0", call_timeout=0.5)
            started = time.monotonic()
            error = await self._collect_once(budget)
            done.set()
            await asyncio.gather(*handlers, return_exceptions=True)
            assert isinstance(error, BudgetUnavailableError)
            assert time.monotonic() - started < 5

    async def test_a_redis_that_answers_errors(self, redis_server: RedisServer) -> None:
        """A Redis that refuses the scripts (a key of the wrong type): BudgetUnavailableError."""
        import redis.asyncio as aioredis

        raw = aioredis.Redis.from_url(redis_server.url)
        budget = RedisBudget(raw, namespace="broken")
        slots = budget._keys("https://x.test/", "alice")[0]
        await raw.set(slots, "not a sorted set")
        error = await self._collect_once(budget)
        assert isinstance(error, BudgetUnavailableError)
        assert "WRONGTYPE" in str(error)
        await raw.aclose()


class TestCommandLine:
    """collect and status share a budget with --redis-url or SMIME_COLLECT_REDIS_URL."""

    async def _status(self, url: str, ca: str, *options: str, **env: str) -> tuple[int, str]:
        environ = {**os.environ, "SECTIGO_LOGIN_NAME": "alice", "SECTIGO_LOGIN_PASSWORD": PASSWORD}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "smime_collect",
            "status",
            "1",
            "2",
            "3",
            "--base-url",
            url,
            "--ca-bundle",
            ca,
            "--max-retries",
            "0",
            *options,
            env={**environ, **env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(60):
            _, err = await process.communicate()
        assert process.returncode is not None
        return process.returncode, err.decode()

    async def test_redis_url_shares_the_budget(self, redis_server: RedisServer) -> None:
        """--redis-url: the orders are collected through the budget, whose keys are on Redis."""
        import redis.asyncio as aioredis

        sim = simulator()
        sim.add_orders([1, 2, 3])
        async with served(sim) as (url, ca):
            status, err = await self._status(url, ca, "--redis-url", redis_server.url)
        assert status == 0
        assert "3 answered, 0 failed" in err
        raw = aioredis.Redis.from_url(redis_server.url)
        keys = await raw.keys("smime-collect:*")
        await raw.aclose()
        assert keys

    async def test_environment_variable_and_unreachable_redis(self) -> None:
        """SMIME_COLLECT_REDIS_URL at a dead port: nothing is sent, the error names Redis."""
        sim = simulator()
        sim.add_orders([1, 2, 3])
        dead = f"redis://127.0.0.1:{_free_port()}/0"
        async with served(sim) as (url, ca):
            status, err = await self._status(url, ca, SMIME_COLLECT_REDIS_URL=dead)
        assert status == 1
        assert "3 x BudgetUnavailableError" in err
        assert "0 requests sent" in err
        assert sim.stats.requests_total == 0


class TestFleetExample:
    """examples/fleet/collect_fleet.py against the simulator on loopback TLS."""

    async def test_workers_share_the_budget(self, redis_server: RedisServer) -> None:
        """Four worker processes, one budget of 2: every order once, never more than 2 in flight."""
        sim = simulator(latency=0.05)  # long enough for two requests to overlap under load
        sim.add_orders(range(1, 41))
        async with served(sim) as (url, ca):
            env = {
                **os.environ,
                "SECTIGO_LOGIN_NAME": "alice",
                "SECTIGO_LOGIN_PASSWORD": PASSWORD,
                "SECTIGO_BASE_URL": url,
                "SECTIGO_CA_BUNDLE": ca,
                "SMIME_COLLECT_REDIS_URL": redis_server.url,
            }
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(FLEET_SCRIPT),
                "--workers",
                "4",
                "--concurrency",
                "2",
                *(str(n) for n in range(1, 41)),
                env=env,
                stdout=asyncio.subprocess.PIPE,
            )
            async with asyncio.timeout(120):
                out, _ = await process.communicate()
        assert process.returncode == 0
        lines = [json.loads(line) for line in out.splitlines()]
        assert sorted(line["order"] for line in lines) == list(range(1, 41))
        assert {line.get("status") for line in lines} == {"ATTACHED"}
        assert sim.stats.max_in_flight == 2

    async def test_fastapi_workers_share_the_budget(self, redis_server: RedisServer) -> None:
        """Two uvicorn workers, 24 concurrent calls: never more than 4 requests in flight."""
        import httpx

        sim = simulator(latency=0.02)
        sim.add_orders(range(1, 25))
        port = _free_port()
        async with served(sim) as (url, ca):
            env = {
                **os.environ,
                "SECTIGO_LOGIN_NAME": "alice",
                "SECTIGO_LOGIN_PASSWORD": PASSWORD,
                "SECTIGO_BASE_URL": url,
                "SECTIGO_CA_BUNDLE": ca,
                "SMIME_COLLECT_REDIS_URL": redis_server.url,
            }
            server = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "uvicorn", "--app-dir", str(FLEET_SCRIPT.parent)),
                *("fastapi_fleet:app", "--workers", "2", "--port", str(port)),
                *("--host", "127.0.0.1", "--log-level", "warning"),
                env=env,
            )
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                    async with asyncio.timeout(60):
                        while True:
                            with contextlib.suppress(httpx.TransportError):
                                await http.get("/orders/1")
                                break
                            await asyncio.sleep(0.1)
                    answers = await asyncio.gather(
                        *(http.get(f"/orders/{n}") for n in range(1, 25))
                    )
            finally:
                server.terminate()
                await server.wait()
        assert [a.status_code for a in answers] == [200] * 24
        assert {a.json()["status"] for a in answers} == {"ATTACHED"}
        assert len({a.json()["pid"] for a in answers}) >= 1
        assert sim.stats.max_in_flight <= 4


if __name__ == "__main__":
    _mode, _spec = sys.argv[1], json.loads(sys.argv[2])
    if _mode == "hold":
        asyncio.run(hold_slots(_spec))
    else:
        print(json.dumps(asyncio.run(worker(_spec))))

"""RedisBudget against LocalBudget, in one run: ``python -m benchmarks budget``.

A CollectSMIME stand-in (aiohttp, plain HTTP on loopback) answers every status query after 50 ms
and counts the requests in flight; a ``redis-server`` on a free loopback port holds the budget.

- overhead: one process, concurrency 16, the same orders through a LocalBudget and a RedisBudget
  (wall time ratio, target at most 1.10; and the client's CPU time ratio);
- fleet: 4 processes sharing RedisBudget(max_concurrency=16) against one process with 16
  (aggregate throughput ratio, target at least 0.9: every order from the first process's start
  to the last one's end, the processes started and connected before a common "go"; the
  stand-in's most requests in flight, at most 16);
- round trips: Redis commands per request, in both (target at most 2).

The machine may be busy with other work: each figure is the median of ``ROUNDS`` paired rounds
(``SMIME_BENCH_BUDGET_ROUNDS``, default 5; the overhead run alternates which budget goes first),
printed with its range.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

LATENCY = 0.05
ORDERS = int(os.environ.get("SMIME_BENCH_BUDGET_ORDERS", "800"))
ROUNDS = int(os.environ.get("SMIME_BENCH_BUDGET_ROUNDS", "5"))
PASSWORD = "bench-password"  # noqa: S105 -- the stand-in accepts anything


def serve() -> None:
    """Run the stand-in until killed; print the port on stdout."""
    from aiohttp import web

    state = {"in_flight": 0, "max_in_flight": 0, "requests": 0}

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        state["requests"] += 1
        state["in_flight"] += 1
        state["max_in_flight"] = max(state["max_in_flight"], state["in_flight"])
        try:
            await asyncio.sleep(LATENCY)
        finally:
            state["in_flight"] -= 1
        return web.Response(body=b"1\n", content_type="text/plain")

    async def stats(request: web.Request) -> web.Response:
        del request
        return web.json_response(state)

    async def reset(request: web.Request) -> web.Response:
        del request
        state.update(max_in_flight=0, requests=0)
        return web.json_response(state)

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/CollectSMIME", answer)
        app.router.add_get("/stats", stats)
        app.router.add_post("/reset", reset)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        print(port, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _redis() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("bench_budget needs redis-server: apt-get install -y redis-server")
    port = _free_port()
    with tempfile.TemporaryDirectory() as directory:
        process = subprocess.Popen(  # noqa: S603 -- our own arguments
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", directory],
            stdout=subprocess.DEVNULL,
        )
        try:
            for _ in range(500):
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                    break
                time.sleep(0.01)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.kill()
            process.wait()


@contextlib.contextmanager
def _stand_in() -> Iterator[str]:
    process = subprocess.Popen(  # noqa: S603 -- this file, as the server
        [sys.executable, __file__, "serve"], stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait()


def _counting(redis_url: str) -> tuple[Any, list[int]]:
    """A redis-py client that counts the commands it sends (each one round trip)."""
    import redis.asyncio as aioredis

    raw = aioredis.Redis.from_url(redis_url)
    calls = [0]
    execute: Any = raw.execute_command

    async def counted(*args: Any, **options: Any) -> Any:
        calls[0] += 1
        return await execute(*args, **options)

    raw.execute_command = counted  # type: ignore[method-assign]
    return raw, calls


def _client(url: str, budget: Any) -> Any:
    from smime_collect import CollectClient

    return CollectClient(
        "bench",
        PASSWORD,
        base_url=f"{url}/CollectSMIME",
        allow_insecure_http=True,
        max_concurrency=16,
        budget=budget,
    )


async def _batch(client: Any, orders: range) -> tuple[float, float, float]:
    """Collect the orders; return when the batch started and ended, and its CPU seconds.

    ``time.monotonic`` is one clock for every process of the machine.
    """
    from smime_collect import QueryType

    started, cpu = time.monotonic(), time.process_time()
    async for outcome in client.collect_many(orders, wait=False, query_type=QueryType.STATUS):
        assert outcome.ok, outcome.error
    return started, time.monotonic(), time.process_time() - cpu


async def _collect(url: str, orders: range, budget: Any) -> tuple[float, float, float]:
    # The client is made before the clock starts: its TLS context alone takes a tenth of a
    # second, and the batch is what is measured.
    async with _client(url, budget) as client:
        return await _batch(client, orders)


async def _overhead_round(url: str, redis_url: str, redis_first: bool) -> dict[str, float]:
    from smime_collect import LocalBudget
    from smime_collect.redis import RedisBudget

    raw, calls = _counting(redis_url)
    budget = RedisBudget(raw, max_concurrency=16)
    await _collect(url, range(1, 17), budget)  # loads the scripts and accepts the login
    times: dict[str, tuple[float, float, float]] = {}
    for name in ("redis", "local") if redis_first else ("local", "redis"):
        if name == "local":
            times[name] = await _collect(url, range(1, ORDERS + 1), LocalBudget(max_concurrency=16))
        else:
            calls[0] = 0
            times[name] = await _collect(url, range(1, ORDERS + 1), budget)
            await budget.aclose()  # the releases still under way count too
            trips = calls[0]
    await raw.aclose()
    (local_start, local_end, local_cpu), (start, end, cpu) = times["local"], times["redis"]
    return {
        "wall": (end - start) / (local_end - local_start),
        "cpu": cpu / local_cpu,
        "trips": trips / ORDERS,
    }


def worker(url: str, redis_url: str, first: int, count: int) -> None:
    """One process of the fleet: wait for "go" on stdin, collect its share, print its figures."""
    from smime_collect.redis import RedisBudget

    async def run() -> dict[str, float]:
        raw, calls = _counting(redis_url)
        budget = RedisBudget(raw, max_concurrency=16)
        await raw.ping()
        calls[0] = 0
        async with _client(url, budget) as client:
            print("ready", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
            started, ended, cpu = await _batch(client, range(first, first + count))
        await budget.aclose()
        await raw.aclose()
        return {"started": started, "ended": ended, "trips": calls[0], "cpu": cpu}

    print(json.dumps(asyncio.run(run())), flush=True)


def _fleet_round(url: str, redis_url: str) -> dict[str, float]:
    import httpx

    from smime_collect import LocalBudget

    share = ORDERS // 4
    processes = [
        subprocess.Popen(  # noqa: S603 -- this file, as a worker
            [sys.executable, __file__, "worker", url, redis_url, str(1 + i * share), str(share)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    for process in processes:  # started and connected: process start-up is not the budget's
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
    httpx.post(f"{url}/reset")
    started, ended, _ = asyncio.run(
        _collect(url, range(1, ORDERS + 1), LocalBudget(max_concurrency=16))
    )
    httpx.post(f"{url}/reset")
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    figures = [json.loads(process.communicate()[0]) for process in processes]
    # Aggregate throughput: every order, from the first start to the last end.
    fleet = max(f["ended"] for f in figures) - min(f["started"] for f in figures)
    return {
        "ratio": (ended - started) / fleet,
        "max_in_flight": httpx.get(f"{url}/stats").json()["max_in_flight"],
        "trips": sum(f["trips"] for f in figures) / (share * 4),
    }


def _spread(values: list[float]) -> str:
    ordered = sorted(values)
    return f"{statistics.median(ordered):.3f} ({ordered[0]:.3f}-{ordered[-1]:.3f})"


def main() -> dict[str, float]:
    """Run the measurements in paired rounds; print each figure's median and range."""
    rounds: dict[str, list[float]] = {}
    with _stand_in() as url, _redis() as redis_url:
        for index in range(ROUNDS):
            overhead = asyncio.run(_overhead_round(url, redis_url, redis_first=index % 2 == 1))
            fleet = _fleet_round(url, redis_url)
            for name, value in (
                ("redis_vs_local_wall_ratio", overhead["wall"]),
                ("redis_vs_local_cpu_ratio", overhead["cpu"]),
                ("redis_round_trips_per_request", overhead["trips"]),
                ("four_vs_one_throughput_ratio", fleet["ratio"]),
                ("fleet_round_trips_per_request", fleet["trips"]),
                ("fleet_max_in_flight", fleet["max_in_flight"]),
            ):
                rounds.setdefault(name, []).append(value)
    figures = {name: round(statistics.median(values), 3) for name, values in rounds.items()}
    figures["fleet_max_in_flight"] = max(rounds["fleet_max_in_flight"])
    for name, values in rounds.items():
        print(f"{name:34} {_spread(values)}")
    return figures


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve()
    elif sys.argv[1:2] == ["worker"]:
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        main()

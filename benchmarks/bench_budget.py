"""RedisBudget against LocalBudget, in one run: ``python -m benchmarks budget``.

A CollectSMIME stand-in (aiohttp, plain HTTP on loopback) answers every status query after 50 ms
and counts the requests in flight; a ``redis-server`` on a free loopback port holds the budget.

- overhead: one process, concurrency 16, the same orders through a LocalBudget and a RedisBudget
  (wall time ratio; the target is at most 1.10);
- fleet: 4 processes sharing RedisBudget(max_concurrency=16) against one process with 16
  (throughput ratio, target at least 0.9; the stand-in's most requests in flight, at most 16);
- round trips: Redis commands per request in the overhead run (target at most 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

LATENCY = 0.05
ORDERS = int(os.environ.get("SMIME_BENCH_BUDGET_ORDERS", "800"))
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


async def _collect(url: str, orders: range, budget: Any) -> float:
    from smime_collect import CollectClient, QueryType

    async with CollectClient(
        "bench",
        PASSWORD,
        base_url=f"{url}/CollectSMIME",
        allow_insecure_http=True,
        max_concurrency=16,
        budget=budget,
    ) as client:
        started = time.perf_counter()
        async for outcome in client.collect_many(orders, wait=False, query_type=QueryType.STATUS):
            assert outcome.ok, outcome.error
        return time.perf_counter() - started


async def _overhead(url: str, redis_url: str) -> dict[str, float]:
    import redis.asyncio as aioredis

    from smime_collect import LocalBudget
    from smime_collect.redis import RedisBudget

    local = await _collect(url, range(1, ORDERS + 1), LocalBudget(max_concurrency=16))
    raw = aioredis.Redis.from_url(redis_url)
    calls = [0]
    execute = raw.execute_command

    async def counted(*args: Any, **options: Any) -> Any:
        calls[0] += 1
        return await execute(*args, **options)

    raw.execute_command = counted  # type: ignore[method-assign]
    budget = RedisBudget(raw, max_concurrency=16)
    await _collect(url, range(1, 17), budget)  # loads the scripts and accepts the login
    calls[0] = 0
    shared = await _collect(url, range(1, ORDERS + 1), budget)
    await budget.aclose()
    await raw.aclose()
    return {
        "local_s": round(local, 3),
        "redis_s": round(shared, 3),
        "redis_vs_local_wall_ratio": round(shared / local, 3),
        "redis_round_trips_per_request": round(calls[0] / ORDERS, 3),
    }


def worker(url: str, redis_url: str, first: int, count: int) -> None:
    """One process of the fleet: its share of the orders through the shared budget."""
    from smime_collect.redis import RedisBudget

    async def run() -> float:
        budget = RedisBudget(redis_url, max_concurrency=16)
        elapsed = await _collect(url, range(first, first + count), budget)
        await budget.aclose()
        return elapsed

    print(json.dumps(asyncio.run(run())))


def _fleet(url: str, redis_url: str) -> dict[str, float]:
    import httpx

    from smime_collect import LocalBudget

    httpx.post(f"{url}/reset")
    single = asyncio.run(_collect(url, range(1, ORDERS + 1), LocalBudget(max_concurrency=16)))
    httpx.post(f"{url}/reset")
    share = ORDERS // 4
    processes = [
        subprocess.Popen(  # noqa: S603 -- this file, as a worker
            [sys.executable, __file__, "worker", url, redis_url, str(1 + i * share), str(share)],
            stdout=subprocess.PIPE,
        )
        for i in range(4)
    ]
    # Each worker times its own batch (process start-up is not the budget's cost); the fleet's
    # time is the longest of them.
    times = [json.loads(p.communicate()[0]) for p in processes]
    fleet = max(times)
    stats = httpx.get(f"{url}/stats").json()
    return {
        "one_process_s": round(single, 3),
        "four_processes_s": round(fleet, 3),
        "four_vs_one_throughput_ratio": round(single / fleet, 3),
        "fleet_max_in_flight": stats["max_in_flight"],
    }


def main() -> dict[str, float]:
    """Run the three measurements; return their figures."""
    with _stand_in() as url, _redis() as redis_url:
        figures = asyncio.run(_overhead(url, redis_url))
        figures |= _fleet(url, redis_url)
    for name, value in figures.items():
        print(f"{name:34} {value}")
    return figures


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve()
    elif sys.argv[1:2] == ["worker"]:
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        main()

"""CollectClient against its baselines, in one run: ``python benchmarks/bench_client.py``.

The server is a minimal aiohttp CollectSMIME stand-in in a separate process on a loopback socket
(plain HTTP: TLS would add the same cost to every contender), so ``time.process_time`` in this
process measures client CPU only.  Paths choose the behaviour:

- ``/fast/CollectSMIME``: answers at once; order N is ready after N % 4 "processing" polls when
  ``queryType`` is 1 (the request-economy scenario), always ready otherwise.
- ``/slow/CollectSMIME``: waits 50 ms, then answers "ready".
- ``GET /count``: requests seen so far.

The sizes are those of README's "Performance" table, except the memory scenario's batch
(SMIME_BENCH_MEMORY_ORDERS, default 100,000), which uses status queries so it finishes in well
under a minute on 2 cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

LATENCY = 0.05
PASSWORD = "bench-password"  # noqa: S105 -- the stand-in accepts anything


# -- the server (child process) ----------------------------------------------------------------


def serve() -> None:
    """Run the stand-in until killed; print the port on stdout."""
    from aiohttp import web

    from smime_collect.testing._formats import to_pem_blocks
    from smime_collect.testing._pki import TestCA

    ready = b"2\n" + to_pem_blocks(TestCA.create().issue_smime("bench@example.com").certificates())
    polls: dict[int, int] = {}
    counter = [0]

    async def answer(request: web.Request, *, slow: bool) -> web.Response:
        counter[0] += 1
        fields = urllib.parse.parse_qs((await request.read()).decode())
        order = int(fields["orderNumber"][0])
        query = fields["queryType"][0]
        if slow:
            await asyncio.sleep(LATENCY)
            return web.Response(body=ready, content_type="text/plain")
        if query == "0":
            return web.Response(body=b"1\n", content_type="text/plain")
        seen = polls.get(order, 0)
        polls[order] = seen + 1
        if seen < order % 4:
            return web.Response(body=b"0\n", content_type="text/plain")
        return web.Response(body=ready, content_type="text/plain")

    async def fast(request: web.Request) -> web.Response:
        return await answer(request, slow=False)

    async def slow(request: web.Request) -> web.Response:
        return await answer(request, slow=True)

    async def count(request: web.Request) -> web.Response:
        return web.Response(text=str(counter[0]))

    async def run() -> None:
        app = web.Application()
        app.router.add_post("/fast/CollectSMIME", fast)
        app.router.add_post("/slow/CollectSMIME", slow)
        app.router.add_get("/count", count)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = runner.addresses[0][1]
        print(port, flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


@contextlib.contextmanager
def server() -> Iterator[str]:
    """Start the stand-in in a child process; yield its base URL."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    child = subprocess.Popen(  # noqa: S603 -- our own interpreter and file
        [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        child.kill()
        child.wait()


# -- contenders ----------------------------------------------------------------------------------


def _body(order: int, query: int = 1) -> bytes:
    return urllib.parse.urlencode(
        {"loginName": "bench", "loginPassword": PASSWORD, "orderNumber": order, "queryType": query}
    ).encode()


async def bare_httpx(url: str, orders: int, concurrency: int, *, parse: bool = False) -> None:
    """One default httpx.AsyncClient and a semaphore: post + read (+ parse when asked)."""
    import httpx

    from smime_collect import CollectRequest, parse_response

    semaphore = asyncio.Semaphore(concurrency)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    async with httpx.AsyncClient() as client:

        async def one(order: int) -> None:
            async with semaphore:
                response = await client.post(url, content=_body(order), headers=headers)
                content = response.content
            if parse:
                parse_response(content, CollectRequest(order))

        await asyncio.gather(*(one(n) for n in range(4, 4 + 4 * orders, 4)))


async def bare_aiohttp(url: str, orders: int, concurrency: int) -> None:
    """A hand-written aiohttp batch: one session, a semaphore, post + read."""
    import aiohttp

    semaphore = asyncio.Semaphore(concurrency)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(order: int) -> None:
            async with semaphore, session.post(url, data=_body(order), headers=headers) as r:
                await r.read()

        await asyncio.gather(*(one(n) for n in range(4, 4 + 4 * orders, 4)))


def _client(url: str, concurrency: int, *, core_only: bool) -> Any:
    from smime_collect import CollectClient
    from smime_collect._client import _transports

    transport = _transports._ShardedTransport(verify=True, size=concurrency) if core_only else None
    return CollectClient(
        "bench",
        PASSWORD,
        base_url=url,
        allow_insecure_http=True,
        max_concurrency=concurrency,
        transport=transport,
    )


async def ours(url: str, orders: int, concurrency: int, *, core_only: bool = False) -> None:
    """smime_collect: collect_many(wait=False) over ready orders (every chain parsed)."""
    async with _client(url, concurrency, core_only=core_only) as client:
        async for outcome in client.collect_many(range(4, 4 + 4 * orders, 4), wait=False):
            assert outcome.ok, outcome.error


def _timed(coro: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    asyncio.run(coro())  # type: ignore[arg-type]
    return time.perf_counter() - wall, time.process_time() - cpu


def _warm_up(base: str) -> None:
    """Import and exercise every contender once, so no timing pays for first use."""
    url = f"{base}/fast/CollectSMIME"
    for run in (
        lambda: ours(url, 50, 8),
        lambda: ours(url, 50, 8, core_only=True),
        lambda: bare_httpx(url, 50, 8),
        lambda: bare_aiohttp(url, 50, 8),
    ):
        _timed(run)


# -- scenarios -----------------------------------------------------------------------------------


def latency_bound(base: str, figures: dict[str, float]) -> None:
    """1,000 orders, 50 ms each, concurrency 50: wall time over the ideal 1.0 s."""
    url, n, c = f"{base}/slow/CollectSMIME", 1000, 50
    ideal = n / c * LATENCY
    runs = {
        "ours_aiohttp": lambda: ours(url, n, c),
        "ours_core": lambda: ours(url, n, c, core_only=True),
        "bare_httpx": lambda: bare_httpx(url, n, c),
        "bare_aiohttp": lambda: bare_aiohttp(url, n, c),
    }
    _warm_up(base)
    for name, run in runs.items():
        wall, _ = _timed(run)
        figures[f"latency_x_ideal_{name}"] = round(wall / ideal, 3)


def throughput(base: str, figures: dict[str, float]) -> None:
    """3,000 ready orders, no latency, concurrency 32: orders per second and ratios."""
    url, n, c = f"{base}/slow/CollectSMIME".replace("slow", "fast"), 3000, 32
    # Orders that are multiples of 4 are ready at once on /fast.
    runs = {
        "ours_aiohttp": lambda: ours(url, n, c),
        "ours_core": lambda: ours(url, n, c, core_only=True),
        "bare_httpx": lambda: bare_httpx(url, n, c),
        "bare_aiohttp": lambda: bare_aiohttp(url, n, c),
    }
    rates = {}
    for name, run in runs.items():
        wall, _ = _timed(run)
        rates[name] = n / wall
        figures[f"throughput_per_s_{name}"] = round(rates[name])
    for name in ("ours_aiohttp", "ours_core"):
        figures[f"throughput_{name}_over_bare_httpx"] = round(rates[name] / rates["bare_httpx"], 2)
        figures[f"throughput_{name}_over_bare_aiohttp"] = round(
            rates[name] / rates["bare_aiohttp"], 2
        )


def request_economy(base: str, figures: dict[str, float]) -> None:
    """wait_for_certificate: order N ready after N % 4 polls must cost N % 4 + 1 requests."""
    import httpx

    from smime_collect import CollectClient

    url = f"{base}/fast/CollectSMIME"
    numbers = range(10_001, 10_201)

    async def run() -> int:
        async with httpx.AsyncClient() as plain:
            before = int((await plain.get(f"{base}/count")).text)
            async with CollectClient(
                "bench", PASSWORD, base_url=url, allow_insecure_http=True, max_concurrency=16
            ) as client:
                async for outcome in client.collect_many(
                    numbers, poll_interval=0.001, max_poll_interval=0.002
                ):
                    assert outcome.ok, outcome.error
            return int((await plain.get(f"{base}/count")).text) - before

    sent = asyncio.run(run())
    expected = sum(n % 4 + 1 for n in numbers)
    figures["economy_requests_sent"] = sent
    figures["economy_requests_expected"] = expected


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory(base: str, figures: dict[str, float]) -> None:
    """collect_many over many orders from a generator, outcomes dropped: peak RSS growth."""
    from smime_collect import QueryType

    url = f"{base}/fast/CollectSMIME"
    total = int(os.environ.get("SMIME_BENCH_MEMORY_ORDERS", "100000"))

    async def run() -> tuple[float, float]:
        async with _client(url, 32, core_only=False) as client:
            baseline = peak = 0.0
            count = 0
            async for _ in client.collect_many(
                (n for n in range(1, total + 1)), wait=False, query_type=QueryType.STATUS
            ):
                count += 1
                if count == 2000:
                    gc.collect()
                    baseline = peak = _rss_mb()
                elif count % 2000 == 0:
                    peak = max(peak, _rss_mb())
            return baseline, peak

    wall = time.perf_counter()
    baseline, peak = asyncio.run(run())
    figures["memory_orders"] = total
    figures["memory_seconds"] = round(time.perf_counter() - wall, 1)
    figures["memory_rss_growth_mb"] = round(peak - baseline, 1)


def overhead(base: str, figures: dict[str, float]) -> None:
    """Client CPU per request at concurrency 4, against bare httpx + the same parse."""
    url, n, c = f"{base}/fast/CollectSMIME", 2000, 4
    cpu = {}
    for name, run in {
        "bare_httpx_parse": lambda: bare_httpx(url, n, c, parse=True),
        "ours_aiohttp": lambda: ours(url, n, c),
        "ours_core": lambda: ours(url, n, c, core_only=True),
    }.items():
        _, cpu[name] = _timed(run)
        figures[f"overhead_us_per_request_{name}"] = round(cpu[name] / n * 1e6)
    for name in ("ours_aiohttp", "ours_core"):
        figures[f"overhead_{name}_over_bare_httpx_parse"] = round(
            cpu[name] / cpu["bare_httpx_parse"], 2
        )


def main(only: list[str] | None = None) -> dict[str, float]:
    """Run every scenario (or those named) against one stand-in server; return the figures."""
    figures: dict[str, float] = {}
    scenarios = (latency_bound, throughput, request_economy, overhead, memory)
    with server() as base:
        for scenario in scenarios:
            if only and scenario.__name__ not in only:
                continue
            started = time.perf_counter()
            scenario(base, figures)
            print(f"  {scenario.__name__}: {time.perf_counter() - started:.1f} s", flush=True)
    return figures


if __name__ == "__main__":
    if "--serve" in sys.argv:
        serve()
    else:
        import json

        print(json.dumps(main(sys.argv[1:]), indent=2))

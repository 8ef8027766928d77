"""Collect a list of orders with several worker processes that share one account budget on Redis.

Plain processes (``multiprocessing``), not a job queue: the orders are known up front and each
worker takes every N-th one, so a queue would add a service and a dependency for nothing.  The
limits of the Sectigo account hold across the workers because every worker's client takes its
request slots from the same ``RedisBudget``::

    export SECTIGO_LOGIN_NAME=... SECTIGO_LOGIN_PASSWORD=...
    export SMIME_COLLECT_REDIS_URL=redis://127.0.0.1:6379/0
    python examples/fleet/collect_fleet.py --workers 4 1001 1002 1003 1004

Each worker prints one JSON line per order: ``{"order": 1001, "status": "ATTACHED"}`` or
``{"order": 1002, "error": "AuthenticationError"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys

from smime_collect import CollectClient
from smime_collect.redis import RedisBudget


async def collect(orders: list[int], concurrency: int) -> None:
    """Collect ``orders`` in this process, through the budget every worker shares."""
    budget = RedisBudget(os.environ["SMIME_COLLECT_REDIS_URL"], max_concurrency=concurrency)
    try:
        async with CollectClient.from_env(budget=budget, max_concurrency=concurrency) as client:
            async for outcome in client.collect_many(orders, wait=False):
                line: dict[str, object] = {"order": outcome.order_number}
                if outcome.result is not None:
                    line["status"] = outcome.result.status.name
                else:
                    line["error"] = type(outcome.error).__name__
                # One write per line: the workers share stdout, and a write of less than
                # PIPE_BUF bytes is never interleaved with another (POSIX write(2)).
                sys.stdout.write(json.dumps(line) + "\n")
                sys.stdout.flush()
    finally:
        await budget.aclose()


def work(orders: list[int], concurrency: int) -> None:
    """One worker process."""
    asyncio.run(collect(orders, concurrency))


def main() -> None:
    """Split the orders over the workers and wait for them all."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4, help="the account's, shared")
    parser.add_argument("orders", nargs="+", type=int)
    args = parser.parse_args()
    shares = [args.orders[i :: args.workers] for i in range(args.workers)]
    processes = [
        multiprocessing.Process(target=work, args=(share, args.concurrency))
        for share in shares
        if share
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    raise SystemExit(max((p.exitcode or 0) for p in processes))


if __name__ == "__main__":
    main()

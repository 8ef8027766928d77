"""Collect every order listed in a file into a directory, with progress.

Usage::

    export SECTIGO_LOGIN_NAME=api-user SECTIGO_LOGIN_PASSWORD_FILE=/run/secrets/sectigo
    python examples/batch_collect.py orders.txt certificates/

``orders.txt`` holds one order number per line (blank lines and ``#`` comments ignored). Each
order's chain (end entity + intermediates) goes to ``certificates/<order>.pem``; orders already
there are not asked again. One order's failure does not stop the others; a rejected login does.
Exit status 0 when every order was collected, 1 otherwise.

The ``smime-collect collect`` command does the same with more options; this is the library
underneath it, in a page.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from smime_collect import CollectClient, CollectError


def read_orders(path: Path) -> Iterator[int]:
    """Order numbers from a file, one per line; blank lines and # comments are skipped."""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            text = line.split("#", 1)[0].strip()
            if text:
                yield int(text)


def write_atomically(path: Path, data: bytes) -> None:
    """Write a temporary file next to ``path``, then rename it: never a half-written chain."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


async def collect_batch(
    orders: list[int],
    out: Path,
    *,
    wait_seconds: float = 600.0,
    poll_interval: float = 5.0,
    max_poll_interval: float = 60.0,
    **client_options: Any,
) -> int:
    """Collect ``orders`` into ``out``; print one progress line per order on stderr.

    Args:
        orders: The order numbers.
        out: An existing directory to write ``<order>.pem`` files into.
        wait_seconds: Seconds to wait for each order.
        poll_interval: First wait between polls of a processing order.
        max_poll_interval: Longest wait between polls.
        **client_options: Passed to ``CollectClient.from_env`` (``max_concurrency=``, or
            ``transport=`` to point it at the simulator in tests).

    Returns:
        The number of orders that failed.
    """
    failed = done = 0
    async with (
        CollectClient.from_env(**client_options) as client,
        # aclosing: leaving the loop early (an exception) cancels the requests in flight at once.
        contextlib.aclosing(
            client.collect_many(
                orders,
                timeout=wait_seconds,
                poll_interval=poll_interval,
                max_poll_interval=max_poll_interval,
            )
        ) as outcomes,
    ):
        async for outcome in outcomes:  # in completion order, as each order ends
            done += 1
            prefix = f"[{done}/{len(orders)}] {outcome.order_number}"
            if outcome.error is not None:
                failed += 1
                print(f"{prefix} failed: {outcome.error}", file=sys.stderr)
                continue
            chain = outcome.unwrap().chain  # collect_many waited until it was attached
            if chain is not None:
                write_atomically(out / f"{outcome.order_number}.pem", chain.to_pem())
            print(f"{prefix} collected", file=sys.stderr)
    return failed


def main(argv: list[str] | None = None, **client_options: Any) -> int:
    """Parse the arguments and run the batch.

    Args:
        argv: ``ORDERS_FILE OUT_DIR [--timeout S] [--poll-interval S] [--max-poll-interval S]``.
        **client_options: Passed on to ``CollectClient.from_env``.

    Returns:
        0 when every order was collected, 1 when any failed, 2 for bad input.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("orders_file", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--poll-interval", type=float, default=5.0)
    parser.add_argument("--max-poll-interval", type=float, default=60.0)
    args = parser.parse_args(argv)
    try:
        orders = list(dict.fromkeys(read_orders(args.orders_file)))
        args.out.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as error:
        print(f"cannot read the orders or create {args.out}: {error}", file=sys.stderr)
        return 2
    todo = [n for n in orders if not (args.out / f"{n}.pem").exists()]
    print(f"{len(orders) - len(todo)} already collected, {len(todo)} to go", file=sys.stderr)
    try:
        failed = asyncio.run(
            collect_batch(
                todo,
                args.out,
                wait_seconds=args.timeout,
                poll_interval=args.poll_interval,
                max_poll_interval=args.max_poll_interval,
                **client_options,
            )
        )
    except CollectError as error:  # e.g. credentials missing from the environment
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(orders) - failed} of {len(orders)} orders collected into {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

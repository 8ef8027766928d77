"""A batch of orders through ``CollectClient.collect_many`` into order directories on disk.

The engine behind ``smime-collect collect``, ``status`` and ``demo``: orders whose ``meta.json``
exists are skipped before any request (a re-run resumes where the last one stopped), the others
go to ``collect_many`` lazily, and each outcome becomes an :class:`OrderReport` as it completes:
written to disk first, then handed to the caller (progress, ``--json``) and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from .._exceptions import PollTimeoutError
from .._models import CollectOutcome, QueryType, ResponseType
from ._keys import BundleSettings
from ._order_files import order_directory, read_meta, write_order_files
from ._outcomes import OrderReport, Tally

if TYPE_CHECKING:
    from .._client import CollectClient

__all__ = ["BatchSettings", "collect_into"]


@attrs.frozen
class BatchSettings:
    """What to ask for each order and what to do with the answer.

    Attributes:
        out: The output directory, or None to write nothing (``status``).
        wait: Poll each order until its certificate is there (``--no-wait`` clears it).
        force: Collect orders whose ``meta.json`` already exists.
        timeout: Seconds to wait per order.
        poll_interval: First wait between polls, seconds.
        max_poll_interval: Longest wait between polls, seconds.
        query_type: CERTIFICATE_AND_CHAIN to collect, STATUS for ``status``.
        response_type: The container to ask for; None lets the server choose.
        bundles: With ``--keys``: the keys and how to write each ``bundle.p12``.
    """

    out: Path | None
    wait: bool = True
    force: bool = False
    timeout: float = 600.0
    poll_interval: float = 5.0
    max_poll_interval: float = 60.0
    query_type: QueryType = QueryType.CERTIFICATE_AND_CHAIN
    response_type: ResponseType | None = None
    bundles: BundleSettings | None = None


def _already_collected(out: Path, number: int) -> OrderReport | None:
    directory = order_directory(out, number)
    try:
        meta = read_meta(directory)
    except OSError as error:
        return OrderReport(number, None, error=error, directory=directory)
    if meta is None:
        return None
    status = meta.get("status")
    return OrderReport(
        number,
        status if isinstance(status, str) else "ATTACHED",
        directory=directory,
        skipped=True,
    )


async def _report(
    outcome: CollectOutcome, out: Path | None, bundles: BundleSettings | None
) -> OrderReport:
    number = outcome.order_number
    if outcome.error is not None:
        last = outcome.error.last_status if isinstance(outcome.error, PollTimeoutError) else None
        return OrderReport(number, None if last is None else last.name, error=outcome.error)
    result = outcome.unwrap()
    if out is None or result.chain is None:
        return OrderReport(number, result.status.name)
    try:
        # Writing and fsync-ing a handful of small files: off the event loop, so the other
        # orders' polls are not held up meanwhile.
        written = await asyncio.to_thread(write_order_files, out, result, bundles)
    except OSError as error:
        return OrderReport(number, result.status.name, error=error)
    return OrderReport(
        number, result.status.name, directory=written.directory, bundle=written.bundle
    )


async def collect_into(
    client: CollectClient,
    orders: Iterable[int],
    settings: BatchSettings,
    on_report: Callable[[OrderReport], None],
) -> Tally:
    """Collect every order, write what arrives, and report each order once as it ends.

    Args:
        client: The client to collect with (not closed here).
        orders: The order numbers, each once; read lazily.
        settings: What to ask and where to write.
        on_report: Called with each order's report, in completion order (skipped orders first,
            as they are found).

    Returns:
        The counts over the whole batch.
    """
    tally = Tally()

    def report(item: OrderReport) -> None:
        tally.add(item)
        on_report(item)

    def to_collect() -> Iterator[int]:
        for number in orders:
            if settings.out is not None and not settings.force:
                found = _already_collected(settings.out, number)
                if found is not None:
                    report(found)
                    continue
            yield number

    outcomes = client.collect_many(
        to_collect(),
        wait=settings.wait,
        timeout=settings.timeout,
        poll_interval=settings.poll_interval,
        max_poll_interval=settings.max_poll_interval,
        query_type=settings.query_type,
        response_type=settings.response_type,
    )
    # Leaving early (Ctrl-C, a write error) closes the generator, which cancels the requests in
    # flight instead of leaving them to the garbage collector.
    async with contextlib.aclosing(outcomes):
        async for outcome in outcomes:
            report(await _report(outcome, settings.out, settings.bundles))
    return tally

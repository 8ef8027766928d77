"""``smime-collect demo``: the whole flow against the built-in simulator, in-process.

No credentials, no network: a :class:`smime_collect.testing.Simulator` serves a scenario of orders
in mixed states through an httpx transport, a real :class:`CollectClient` collects them concurrently
with short poll intervals, and the same code as ``smime-collect collect`` writes the files. The run
succeeds when the outcome is the one the scenario predicts: the rejected and the unpaid order
failing, with their Sectigo codes, is part of the prediction.
"""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Final

import attrs

from .._client import CollectClient
from .._exceptions import AwaitingPaymentError, CertificateRejectedError
from ._order_files import META_FILE
from ._report import OrderReport, make_progress
from ._to_disk import BatchSettings, collect_into

__all__ = ["DemoOrder", "Expect", "demo_scenario", "run_demo"]

_LOGIN: Final = "demo-api-user"
# Not a secret: the simulator's demo account exists only inside this process.
_PASSWORD: Final = "demo-only-password"  # noqa: S105
_FIRST_ORDER: Final = 4_210_001
# Short enough that the demo takes a moment, long enough that "processing" is visible.
_POLL_INTERVAL: Final = 0.01
_MAX_POLL_INTERVAL: Final = 0.05
_TIMEOUT: Final = 30.0
_CONCURRENCY: Final = 8
_LATENCY: Final = 0.003


class Expect(enum.Enum):
    """What an order of the scenario should end as."""

    READY = "ready"
    LATE = "ready after a few polls"
    REJECTED = "rejected (-20)"
    UNPAID = "awaiting payment (-22)"


@attrs.frozen
class DemoOrder:
    """One order of the demo scenario.

    Attributes:
        number: The order number.
        expect: How it should end.
        polls: For LATE orders, the polls answered "being processed" first.
    """

    number: int
    expect: Expect
    polls: int = 0


def demo_scenario(count: int) -> list[DemoOrder]:
    """The orders of a demo run: most ready, some ready after polls, one rejected, one unpaid.

    Args:
        count: How many orders (the rejected one appears from 3 orders, the unpaid from 4).

    Returns:
        The orders, numbered from 4210001.
    """
    orders = []
    for index in range(count):
        number = _FIRST_ORDER + index
        if index == 1 and count >= 3:
            orders.append(DemoOrder(number, Expect.REJECTED))
        elif index == 3 and count >= 4:
            orders.append(DemoOrder(number, Expect.UNPAID))
        elif index % 4 == 2:
            orders.append(DemoOrder(number, Expect.LATE, polls=1 + index % 3))
        else:
            orders.append(DemoOrder(number, Expect.READY))
    return orders


def _matches(order: DemoOrder, report: OrderReport) -> bool:
    if order.expect is Expect.REJECTED:
        return isinstance(report.error, CertificateRejectedError)
    if order.expect is Expect.UNPAID:
        return isinstance(report.error, AwaitingPaymentError)
    return (
        report.ok
        and report.directory is not None
        and (report.directory / META_FILE).is_file()
        and (report.directory / "cert.pem").is_file()
    )


def _describe(scenario: list[DemoOrder]) -> str:
    parts = []
    for expect in Expect:
        numbers = [o.number for o in scenario if o.expect is expect]
        if numbers:
            named = f": {numbers[0]}" if len(numbers) == 1 else ""
            parts.append(f"{len(numbers)} {expect.value}{named}")
    return ", ".join(parts)


async def run_demo(count: int, out: Path) -> int:
    """Run the demo and print what happened.

    Args:
        count: How many simulated orders.
        out: An existing directory for the order directories (earlier demo files are replaced).

    Returns:
        0 when every order ended as the scenario predicts, else 1.
    """
    from ..testing import Chaos, OrderState, Simulator  # noqa: PLC0415 -- only the demo needs it

    scenario = demo_scenario(count)
    # A few milliseconds per answer, as a network would take, so the requests overlap.
    simulator = Simulator(seed=2026, chaos=Chaos(latency=_LATENCY, latency_jitter=_LATENCY))
    simulator.add_account(_LOGIN, _PASSWORD)
    states = {Expect.REJECTED: OrderState.REJECTED, Expect.UNPAID: OrderState.AWAITING_PAYMENT}
    for order in scenario:
        simulator.add_order(
            order.number,
            state=states.get(order.expect, OrderState.ISSUED),
            ready_after_polls=order.polls,
        )
    print(
        f"smime-collect demo: {count} order{'' if count == 1 else 's'} from an in-process "
        f"CollectSMIME simulator (no network, no credentials): {_describe(scenario)}"
    )
    settings = BatchSettings(
        out=out,
        force=True,  # a demo is re-run at will: replace the previous run's files
        timeout=_TIMEOUT,
        poll_interval=_POLL_INTERVAL,
        max_poll_interval=_MAX_POLL_INTERVAL,
    )
    expected = {order.number: order for order in scenario}
    mismatches: list[str] = []

    async with CollectClient(
        _LOGIN, _PASSWORD, transport=simulator.transport(), max_concurrency=_CONCURRENCY
    ) as client:
        with make_progress(count, sys.stdout) as progress:

            def on_report(report: OrderReport) -> None:
                progress.advance(report)
                order = expected[report.order_number]
                if not _matches(order, report):
                    seen = report.error if report.error is not None else report.status
                    mismatches.append(f"{order.number}: expected {order.expect.value}, got {seen}")

            tally = await collect_into(client, [o.number for o in scenario], settings, on_report)
        progress.summary(tally)  # after the bar has stopped drawing

    stats = simulator.stats
    print(
        f"{stats.requests_total} requests to the simulator, at most {stats.max_in_flight} "
        f"in flight at once (--concurrency {_CONCURRENCY})"
    )
    print(f"files in {out}: <order>/cert.pem chain.pem fullchain.pem root.pem payload.* meta.json")
    if tally.total != count:
        mismatches.append(f"{count} orders in the scenario, {tally.total} reported")
    if mismatches:
        print("the outcome does NOT match the scenario:", *mismatches, sep="\n  ")
        return 1
    print(
        f"the outcome matches the scenario: {tally.collected} collected, "
        f"{tally.failed} failed as expected"
    )
    return 0

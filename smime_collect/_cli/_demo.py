"""``smime-collect demo``: the whole flow against the built-in simulator, in-process.

No credentials, no network: a :class:`smime_collect.testing.Simulator` serves a scenario of orders
in mixed states through an httpx transport, a real :class:`CollectClient` collects them concurrently
with short poll intervals, and the same code as ``smime-collect collect`` writes the files. The run
succeeds when the outcome is the one the scenario predicts: the rejected and the unpaid order
failing, with their Sectigo codes, is part of the prediction.

Like a user who placed the orders, the demo holds a private key for each order it expects to be
issued: it makes them on the fly, writes them to ``--out/keys/`` (mode 0600, nowhere else), and
collects with ``--keys`` semantics, so every issued order also gets its ``bundle.p12``.

The demo owns the directory it writes to: a marker file says so, and each run replaces the order
directories (and the keys) of the runs before it.  A non-empty directory without the marker is
refused, so a demo never mixes its files with anyone else's, nor deletes them.
"""

from __future__ import annotations

import enum
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Final

import attrs
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .._client import CollectClient
from .._exceptions import AwaitingPaymentError, CertificateRejectedError
from ._input import UsageError
from ._keys import BundleSettings, KeyIndex
from ._order_files import BUNDLE_FILE, META_FILE, atomic_write
from ._outcomes import OrderReport, Tally
from ._report import Terminal, make_progress
from ._to_disk import BatchSettings, collect_into

if TYPE_CHECKING:
    from ..testing import Simulator

__all__ = [
    "DEFAULT_CONCURRENCY",
    "MARKER_FILE",
    "MAX_ORDERS",
    "DemoOrder",
    "DemoRun",
    "Expect",
    "demo_scenario",
    "demo_simulator",
    "prepare_directory",
    "run_demo",
    "run_scenario",
]

_LOGIN: Final = "demo-api-user"
# Not a secret: the simulator's demo account exists only inside this process.
_PASSWORD: Final = "demo-only-password"  # noqa: S105
_FIRST_ORDER: Final = 4_210_001
# Every simulated order gets its own certificate and key, all kept in memory.
MAX_ORDERS: Final = 10_000
DEFAULT_CONCURRENCY: Final = 8
MARKER_FILE: Final = ".smime-collect-demo"
KEYS_DIRECTORY: Final = "keys"
# Short enough that the demo takes a moment, long enough that "processing" is visible.
_POLL_INTERVAL: Final = 0.01
_MAX_POLL_INTERVAL: Final = 0.05
_TIMEOUT: Final = 30.0
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


def demo_simulator(
    scenario: list[DemoOrder], keys: dict[int, ec.EllipticCurvePrivateKey] | None = None
) -> Simulator:
    """A simulator that serves the scenario to the demo's account.

    Args:
        scenario: The orders.
        keys: The private keys orders were placed with: their certificates are issued for them.

    Returns:
        The simulator, a few milliseconds of latency per answer so that requests overlap.
    """
    from ..testing import Chaos, OrderState, Simulator  # noqa: PLC0415 -- only the demo needs it

    simulator = Simulator(seed=2026, chaos=Chaos(latency=_LATENCY, latency_jitter=_LATENCY))
    simulator.add_account(_LOGIN, _PASSWORD)
    states = {Expect.REJECTED: OrderState.REJECTED, Expect.UNPAID: OrderState.AWAITING_PAYMENT}
    for order in scenario:
        simulator.add_order(
            order.number,
            state=states.get(order.expect, OrderState.ISSUED),
            ready_after_polls=order.polls,
            key=None if keys is None else keys.get(order.number),
        )
    return simulator


def _is_demo_order(entry: Path) -> bool:
    name = entry.name
    return (
        len(name) == len(str(_FIRST_ORDER))
        and name.isascii()
        and name.isdecimal()
        and _FIRST_ORDER <= int(name) < _FIRST_ORDER + MAX_ORDERS
        and entry.is_dir()
        and not entry.is_symlink()
    )


def prepare_directory(out: Path) -> None:
    """Make ``out`` ready for a run: create it, or clear an earlier demo's order directories.

    Args:
        out: The ``--out`` directory.

    Raises:
        UsageError: It cannot be created, or it is a non-empty directory no demo wrote.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
        entries = list(out.iterdir())
        if entries and not (out / MARKER_FILE).is_file():
            raise UsageError(
                f"--out {str(out)!r} is not empty and no demo wrote it: give a new or empty "
                "directory (the demo replaces what it wrote there on every run)"
            )
        for entry in entries:
            if _is_demo_order(entry) or (entry.name == KEYS_DIRECTORY and entry.is_dir()):
                shutil.rmtree(entry)
        (out / MARKER_FILE).write_text(
            "Written by smime-collect demo: it replaces its order directories here on every run.\n",
            encoding="utf-8",
        )
    except OSError as exc:
        raise UsageError(f"--out {str(out)!r} cannot be prepared: {exc.strerror}") from None


def make_keys(scenario: list[DemoOrder], out: Path) -> dict[int, ec.EllipticCurvePrivateKey]:
    """Make a key for every order the scenario expects to be issued; write them to ``out/keys``.

    Args:
        scenario: The orders.
        out: The demo's directory (prepared).

    Returns:
        The keys, by order number.
    """
    directory = out / KEYS_DIRECTORY
    directory.mkdir(mode=0o700, exist_ok=True)
    keys = {}
    for order in scenario:
        if order.expect in {Expect.READY, Expect.LATE}:
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            atomic_write(directory / f"{order.number}.key", pem, private=True)
            keys[order.number] = key
    return keys


def _matches(order: DemoOrder, report: OrderReport, *, bundled: bool) -> bool:
    if order.expect is Expect.REJECTED:
        return isinstance(report.error, CertificateRejectedError)
    if order.expect is Expect.UNPAID:
        return isinstance(report.error, AwaitingPaymentError)
    return (
        report.ok
        and report.directory is not None
        and (report.directory / META_FILE).is_file()
        and (report.directory / "cert.pem").is_file()
        and (not bundled or (report.directory / BUNDLE_FILE).is_file())
    )


def _describe(scenario: list[DemoOrder]) -> str:
    parts = []
    for expect in Expect:
        numbers = [o.number for o in scenario if o.expect is expect]
        if numbers:
            named = f": {numbers[0]}" if len(numbers) == 1 else ""
            parts.append(f"{len(numbers)} {expect.value}{named}")
    return ", ".join(parts)


@attrs.frozen
class DemoRun:
    """One demo run: the scenario, the simulator that serves it, and where the files go.

    Attributes:
        scenario: The orders and how each should end.
        simulator: Serves the orders (built from a scenario by :func:`demo_simulator`).
        out: An existing directory for the order directories.
        concurrency: The client's ``max_concurrency``.
        bundles: The keys to bundle each issued certificate with, if any.
    """

    scenario: list[DemoOrder]
    simulator: Simulator
    out: Path
    concurrency: int = DEFAULT_CONCURRENCY
    bundles: BundleSettings | None = None


async def run_scenario(run: DemoRun, terminal: Terminal) -> int:
    """Collect the scenario's orders from the simulator into ``out`` and say how it went.

    Args:
        run: What to collect, from where, into where.
        terminal: Where to print.

    Returns:
        0 when every order ended as the scenario predicts, else 1.
    """
    settings = BatchSettings(
        out=run.out,
        force=True,  # prepare_directory removed the earlier runs' orders; nothing to skip
        timeout=_TIMEOUT,
        poll_interval=_POLL_INTERVAL,
        max_poll_interval=_MAX_POLL_INTERVAL,
        bundles=run.bundles,
    )
    expected = {order.number: order for order in run.scenario}
    mismatches: list[str] = []

    async with CollectClient(
        _LOGIN, _PASSWORD, transport=run.simulator.transport(), max_concurrency=run.concurrency
    ) as client:
        with make_progress(len(run.scenario), terminal, terminal.out) as progress:

            def on_report(report: OrderReport) -> None:
                progress.advance(report)
                order = expected[report.order_number]
                if not _matches(order, report, bundled=run.bundles is not None):
                    seen = report.error if report.error is not None else report.status
                    mismatches.append(f"{order.number}: expected {order.expect.value}, got {seen}")

            tally = await collect_into(client, list(expected), settings, on_report)
        progress.summary(tally)  # after the bar has stopped drawing
    return _print_outcome(run, tally, mismatches, terminal)


def _print_outcome(run: DemoRun, tally: Tally, mismatches: list[str], terminal: Terminal) -> int:
    stats = run.simulator.stats
    print(
        f"{stats.requests_total} requests to the simulator, at most {stats.max_in_flight} "
        f"in flight at once (--concurrency {run.concurrency})",
        file=terminal.out,
    )
    print(
        f"files in {run.out}: <order>/cert.pem chain.pem fullchain.pem root.pem payload.* "
        "meta.json" + (" bundle.p12 p12-password.txt" if run.bundles is not None else ""),
        file=terminal.out,
    )
    if run.bundles is not None:
        print(
            f"{len(run.bundles.keys)} private keys made for the demo in {run.out / KEYS_DIRECTORY} "
            "paired with their certificates by public key (as --keys does)",
            file=terminal.out,
        )
    if tally.total != len(run.scenario):
        mismatches.append(f"{len(run.scenario)} orders in the scenario, {tally.total} reported")
    if mismatches:
        print(
            "the outcome does NOT match the scenario:", *mismatches, sep="\n  ", file=terminal.out
        )
        return 1
    print(
        f"the outcome matches the scenario: {tally.collected} collected, "
        f"{tally.failed} failed as expected",
        file=terminal.out,
    )
    return 0


async def run_demo(count: int, out: Path, *, concurrency: int, terminal: Terminal) -> int:
    """Run the demo and print what happened.

    Args:
        count: How many simulated orders.
        out: The ``--out`` directory: new, empty, or an earlier demo's.
        concurrency: The client's ``max_concurrency``.
        terminal: Where to print.

    Returns:
        0 when every order ended as the scenario predicts, else 1.

    Raises:
        UsageError: ``out`` cannot be used (see :func:`prepare_directory`).
    """
    prepare_directory(out)
    scenario = demo_scenario(count)
    print(
        f"smime-collect demo: {count} order{'' if count == 1 else 's'} from an in-process "
        f"CollectSMIME simulator (no network, no credentials): {_describe(scenario)}",
        file=terminal.out,
    )
    keys = make_keys(scenario, out)
    bundles = BundleSettings(KeyIndex.from_directory(out / KEYS_DIRECTORY))
    run = DemoRun(scenario, demo_simulator(scenario, keys), out, concurrency, bundles)
    return await run_scenario(run, terminal)

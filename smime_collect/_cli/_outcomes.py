"""How each order of a batch ended, and the counts over the batch: what the engine produces.

``_to_disk`` builds one :class:`OrderReport` per order and counts it in a :class:`Tally`;
``_report`` only presents them (lines, JSON, summaries), and ``_main`` turns the tally into the
exit status.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import attrs

from .._client import stops_batch
from .._exceptions import CollectError, SectigoError, TransportError
from ..events import Event, RequestFinished, RetryScheduled, Throttled
from ._keys import BundleOutcome

__all__ = ["MAX_LISTED_FAILURES", "OrderReport", "Tally", "Traffic"]

# The summary names at most this many failed orders; the rest are counted.
MAX_LISTED_FAILURES = 20


@attrs.frozen
class OrderReport:
    """How one order ended, as the command reports it.

    Attributes:
        order_number: The order.
        status: The last status the server reported (``"ATTACHED"``, ``"AVAILABLE"``,
            ``"PROCESSING"``), or None when no status was obtained.
        error: What made the order fail, or None.
        directory: Where its files are, when they were written or already there.
        skipped: True when the files were already on disk and nothing was asked.
        bundle: What ``--keys`` did for the order (None without ``--keys``).
    """

    order_number: int
    status: str | None
    error: CollectError | OSError | None = None
    directory: Path | None = None
    skipped: bool = False
    bundle: BundleOutcome | None = None

    @property
    def ok(self) -> bool:
        """True exactly when the order did not fail."""
        return self.error is None

    @property
    def pending(self) -> bool:
        """True when the order did not fail but its certificate is not there yet."""
        return self.ok and self.status == "PROCESSING"


@attrs.define
class Traffic:
    """What the batch cost the account, counted from the client's events (``on_event``).

    Attributes:
        requests: HTTP requests sent.
        retries: Of those, retries of a failed request.
        throttled: Seconds during which a 429 or -42 held every request back (overlapping
            slow-downs counted once).
    """

    requests: int = 0
    retries: int = 0
    throttled: float = 0.0
    _held_until: float = attrs.field(default=float("-inf"), alias="_held_until", repr=False)

    def observe(self, event: Event) -> None:
        """Count one event of the client.

        Args:
            event: What the client did.
        """
        if isinstance(event, RequestFinished):
            self.requests += 1
        elif isinstance(event, RetryScheduled):
            self.retries += 1
        elif isinstance(event, Throttled) and event.since is not None:
            start = max(event.since, self._held_until)
            self.throttled += max(0.0, event.until - start)
            self._held_until = max(self._held_until, event.until)


@attrs.define
class Tally:
    """Running counts over a batch (a million orders must not mean a million stored reports).

    Attributes:
        total: Orders reported.
        collected: Orders whose files are on disk, ``skipped`` included.
        skipped: Orders found already collected, without a request.
        pending: Orders still processing (``--no-wait``, ``status``).
        answered: Orders that got a status and nothing to write (``status``).
        failed: Orders that failed.
        errors: Failed orders per error class name.
        failed_orders: The first failed orders, with their error class names.
        stop_error: The first error that stopped the whole batch (``stops_batch``): a
            rejected login, an untrusted TLS certificate and the like; None if none did.
        traffic: The requests, retries and time throttled it took.
    """

    total: int = 0
    collected: int = 0
    skipped: int = 0
    pending: int = 0
    answered: int = 0
    failed: int = 0
    errors: Counter[str] = attrs.Factory(Counter)
    failed_orders: list[tuple[int, str]] = attrs.Factory(list)
    stop_error: SectigoError | TransportError | None = None
    traffic: Traffic = attrs.Factory(Traffic)

    def add(self, report: OrderReport) -> None:
        """Count one report.

        Args:
            report: How one order ended.
        """
        self.total += 1
        if report.error is not None:
            self.failed += 1
            self.errors[type(report.error).__name__] += 1
            if len(self.failed_orders) < MAX_LISTED_FAILURES:
                self.failed_orders.append((report.order_number, type(report.error).__name__))
            if self.stop_error is None and stops_batch(report.error):
                self.stop_error = report.error
        elif report.skipped:
            self.skipped += 1
            self.collected += 1
        elif report.directory is not None:
            self.collected += 1
        elif report.pending:
            self.pending += 1
        else:
            self.answered += 1

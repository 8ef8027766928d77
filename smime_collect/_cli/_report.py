"""What ``smime-collect`` tells its user: per-order reports, progress, summaries, chain tables.

Progress goes to stderr (stdout stays clean for ``--json`` and pipes). It is drawn with rich (the
``cli`` extra) when stderr is a terminal and rich is installed, and otherwise written as one plain
line per order, so logs and CI output stay readable. rich is imported only when it is used.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Protocol

import attrs

from .._exceptions import CollectError, SectigoError, TransportError
from .._polling import is_account_level
from ._order_files import certificate_facts

if TYPE_CHECKING:
    from cryptography import x509

    from .._certs import CertificateChain

__all__ = [
    "OrderReport",
    "PlainProgress",
    "Progress",
    "RichProgress",
    "Tally",
    "chain_rows",
    "describe_error",
    "json_line",
    "make_progress",
    "print_chain",
    "rich_available",
    "stderr_is_terminal",
]

# The summary names at most this many failed orders; the rest are counted.
_MAX_LISTED_FAILURES = 20


def describe_error(error: BaseException) -> dict[str, Any]:
    """The JSON form of an order's error: ``{type, message, code}`` (code null unless Sectigo's).

    Args:
        error: What ended the order.

    Returns:
        A JSON-ready dict; ``http_status`` is added for a TransportError with a status.
    """
    info: dict[str, Any] = {
        "type": type(error).__name__,
        "message": str(error),
        "code": error.code if isinstance(error, SectigoError) else None,
    }
    if isinstance(error, TransportError) and error.status_code is not None:
        info["http_status"] = error.status_code
    return info


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
    """

    order_number: int
    status: str | None
    error: CollectError | OSError | None = None
    directory: Path | None = None
    skipped: bool = False

    @property
    def ok(self) -> bool:
        """True exactly when the order did not fail."""
        return self.error is None

    @property
    def pending(self) -> bool:
        """True when the order did not fail but its certificate is not there yet."""
        return self.ok and self.status == "PROCESSING"

    def to_json(self) -> dict[str, Any]:
        """The object printed for this order with ``--json``.

        Returns:
            order_number, ok, status, error (null or ``{type, message, code}``), directory and
            skipped.
        """
        return {
            "order_number": self.order_number,
            "ok": self.ok,
            "status": self.status,
            "error": None if self.error is None else describe_error(self.error),
            "directory": None if self.directory is None else str(self.directory),
            "skipped": self.skipped,
        }

    def line(self) -> str:
        """One human-readable line about this order."""
        if self.error is not None:
            return f"{self.order_number}: FAILED: {self.error}"
        if self.skipped:
            return f"{self.order_number}: already collected in {self.directory}"
        if self.directory is not None:
            return f"{self.order_number}: collected into {self.directory}"
        return f"{self.order_number}: {self.status}"


@attrs.define
class Tally:
    """Running counts over a batch (a million orders must not mean a million stored reports)."""

    total: int = 0
    collected: int = 0
    skipped: int = 0
    pending: int = 0
    answered: int = 0
    failed: int = 0
    errors: Counter[str] = attrs.Factory(Counter)
    failed_orders: list[tuple[int, str]] = attrs.Factory(list)
    account_error: SectigoError | None = None

    def add(self, report: OrderReport) -> None:
        """Count one report."""
        self.total += 1
        if report.error is not None:
            self.failed += 1
            self.errors[type(report.error).__name__] += 1
            if len(self.failed_orders) < _MAX_LISTED_FAILURES:
                self.failed_orders.append((report.order_number, type(report.error).__name__))
            if self.account_error is None and is_account_level(report.error):
                self.account_error = report.error
        elif report.skipped:
            self.skipped += 1
            self.collected += 1
        elif report.directory is not None:
            self.collected += 1
        elif report.pending:
            self.pending += 1
        else:
            self.answered += 1

    def lines(self) -> list[str]:
        """The summary as plain lines."""
        parts = [f"{self.total} order{'' if self.total == 1 else 's'}"]
        if self.collected or self.skipped:
            already = f" ({self.skipped} already on disk)" if self.skipped else ""
            parts.append(f"{self.collected} collected{already}")
        if self.answered:
            parts.append(f"{self.answered} answered")
        if self.pending:
            parts.append(f"{self.pending} still processing")
        parts.append(f"{self.failed} failed")
        lines = [", ".join(parts)]
        for name, count in sorted(self.errors.items()):
            lines.append(f"  {count} x {name}")
        if self.failed_orders:
            listed = ", ".join(f"{number} ({name})" for number, name in self.failed_orders)
            more = self.failed - len(self.failed_orders)
            lines.append(f"  failed: {listed}{f' and {more} more' if more > 0 else ''}")
        return lines


def stderr_is_terminal() -> bool:
    """Whether stderr is an interactive terminal (progress bars only make sense there)."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def rich_available() -> bool:
    """Whether rich (the ``cli`` extra) can be imported."""
    try:
        import rich  # noqa: F401, PLC0415 -- optional dependency, imported lazily
    except ImportError:
        return False
    return True


class Progress(Protocol):
    """Progress over a batch of orders, shown on stderr."""

    def __enter__(self) -> Progress: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...

    def advance(self, report: OrderReport) -> None:
        """Show that one order has ended."""

    def summary(self, tally: Tally) -> None:
        """Show the summary of the batch."""


class PlainProgress:
    """One line per order, then the summary; for pipes, logs and terminals without rich."""

    def __init__(
        self, total: int, stream: IO[str], summary_stream: IO[str], *, numbered: bool = True
    ) -> None:
        self._total = total
        self._numbered = numbered
        self._done = 0
        self._stream = stream
        self._summary_stream = summary_stream
        self._account_errors_shown: set[str] = set()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def advance(self, report: OrderReport) -> None:
        """Print the order's line, or one line for an error that stops the whole batch."""
        self._done += 1
        if report.error is not None and is_account_level(report.error):
            key = type(report.error).__name__
            if key in self._account_errors_shown:
                return
            self._account_errors_shown.add(key)
        width = len(str(self._total))
        counter = f"[{self._done:>{width}}/{self._total}] " if self._numbered else ""
        print(f"{counter}{report.line()}", file=self._stream)

    def summary(self, tally: Tally) -> None:
        """Print the summary lines."""
        for line in tally.lines():
            print(line, file=self._summary_stream)


class RichProgress:
    """A rich progress bar on stderr, failures printed above it, a summary table at the end."""

    def __init__(self, total: int, summary_stream: IO[str]) -> None:
        from rich.console import Console  # noqa: PLC0415 -- optional dependency
        from rich.progress import (  # noqa: PLC0415
            BarColumn,
            MofNCompleteColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as _RichProgress  # noqa: PLC0415

        self._console = Console(stderr=True, emoji=False)
        self._summary_console = Console(file=summary_stream, emoji=False)
        self._bar = _RichProgress(
            TextColumn("collecting"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=self._console,
            transient=False,
            # --json lines go to stdout; rich would otherwise capture them onto the terminal.
            redirect_stdout=False,
        )
        self._task = self._bar.add_task("collect", total=total)

    def __enter__(self) -> RichProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._bar.stop()

    def advance(self, report: OrderReport) -> None:
        """Move the bar; print failures above it so none goes unseen."""
        if report.error is not None:
            from rich.text import Text  # noqa: PLC0415 -- optional dependency

            self._bar.console.print(Text(report.line(), style="red"), emoji=False)
        self._bar.advance(self._task)

    def summary(self, tally: Tally) -> None:
        """Print the summary as a table."""
        from rich.table import Table  # noqa: PLC0415 -- optional dependency

        table = Table(title="smime-collect summary")
        table.add_column("outcome")
        table.add_column("orders", justify="right")
        table.add_row("collected", str(tally.collected - tally.skipped))
        if tally.skipped:
            table.add_row("already on disk", str(tally.skipped))
        if tally.answered:
            table.add_row("answered", str(tally.answered))
        if tally.pending:
            table.add_row("still processing", str(tally.pending))
        for name, count in sorted(tally.errors.items()):
            table.add_row(f"failed: {name}", str(count), style="red")
        table.add_row("total", str(tally.total), style="bold")
        self._summary_console.print(table)
        if tally.failed_orders:
            for line in tally.lines()[-1:]:
                self._summary_console.print(line, markup=False, highlight=False)


def make_progress(total: int, summary_stream: IO[str]) -> Progress:
    """Pick the progress display: rich on a terminal when installed, plain lines otherwise.

    Args:
        total: How many orders the batch has.
        summary_stream: Where the summary goes (stdout, or stderr when stdout carries JSON).

    Returns:
        A context manager that shows progress.
    """
    if stderr_is_terminal() and rich_available():
        return RichProgress(total, summary_stream)
    return PlainProgress(total, sys.stderr, summary_stream)


def _role_names(chain: CertificateChain) -> list[tuple[str, x509.Certificate]]:
    rows: list[tuple[str, x509.Certificate]] = []
    if chain.end_entity is not None:
        rows.append(("end entity", chain.end_entity))
    rows.extend(("intermediate", c) for c in chain.intermediates)
    rows.extend(("root", c) for c in chain.roots)
    return rows


def chain_rows(chain: CertificateChain) -> list[dict[str, Any]]:
    """One JSON-ready row per certificate: its role, then what ``certificate_facts`` reports.

    Args:
        chain: A classified chain.

    Returns:
        Rows in chain order: end entity, intermediates, roots.
    """
    return [{"role": role, **certificate_facts(cert)} for role, cert in _role_names(chain)]


def print_chain(path: str, chain: CertificateChain, stream: IO[str]) -> None:
    """Print a classified chain as a readable table (rich on a terminal, aligned text otherwise).

    Args:
        path: The file the chain came from (a heading).
        chain: The chain.
        stream: Where to print.
    """
    rows = chain_rows(chain)
    count = f"{len(rows)} certificate{'' if len(rows) == 1 else 's'}"
    if stream is sys.stdout and sys.stdout.isatty() and rich_available():
        _print_chain_rich(path, count, rows)
        return
    print(f"{path}: {count}", file=stream)
    for row in rows:
        print(f"  {row['role']}", file=stream)
        for label, key in (
            ("subject", "subject"),
            ("issuer", "issuer"),
            ("not before", "not_before"),
            ("not after", "not_after"),
            ("serial", "serial"),
            ("sha256", "sha256_fingerprint"),
        ):
            print(f"    {label:<11} {row[key]}", file=stream)
        if row["email_addresses"]:
            print(f"    {'e-mail':<11} {', '.join(row['email_addresses'])}", file=stream)


def _print_chain_rich(path: str, count: str, rows: Iterable[dict[str, Any]]) -> None:
    from rich.console import Console  # noqa: PLC0415 -- optional dependency
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    # Every cell is a Text: plain strings would be read as rich markup ("[...]" in a subject)
    # and emoji codes (":AB:" inside a fingerprint would print as an emoji).
    table = Table(title=Text(f"{path}: {count}"), show_lines=True)
    for column in ("role", "subject", "issuer", "validity (UTC)"):
        table.add_column(column, overflow="fold")
    # A fingerprint is compared by eye or copied whole: never fold it mid-way.
    table.add_column("SHA-256", no_wrap=True)
    for row in rows:
        table.add_row(
            *(
                Text(value)
                for value in (
                    row["role"],
                    row["subject"],
                    row["issuer"],
                    f"{row['not_before']}\n{row['not_after']}",
                    row["sha256_fingerprint"],
                )
            )
        )
    Console(highlight=False, emoji=False).print(table)


def json_line(obj: dict[str, Any], stream: IO[str]) -> None:
    """Print one JSON object on one line and flush (consumers read it as it comes)."""
    print(json.dumps(obj, ensure_ascii=False), file=stream, flush=True)

"""What ``smime-collect`` tells its user about a batch: per-order lines, progress, summaries.

Everything here presents; nothing decides.  The reports and counts come from ``_outcomes``;
where they are printed, and whether rich may draw there, is a :class:`Terminal` that ``main``
detects once (tests construct their own).

Progress goes to stderr (stdout stays clean for ``--json`` and pipes). It is drawn with rich (the
``cli`` extra) when stderr is a terminal and rich is installed, and otherwise written as one plain
line per order, so logs and CI output stay readable. rich is imported only when it is used.
"""

from __future__ import annotations

import json
import sys
from types import TracebackType
from typing import IO, Any, Protocol

import attrs

from .._client import stops_batch
from .._exceptions import SectigoError, TransportError
from ._outcomes import OrderReport, Tally, Traffic

__all__ = [
    "PlainProgress",
    "Progress",
    "RichProgress",
    "Terminal",
    "describe_error",
    "json_line",
    "make_progress",
    "report_json",
    "report_line",
    "rich_available",
    "summary_lines",
]


def rich_available() -> bool:
    """Whether rich (the ``cli`` extra) can be imported."""
    try:
        import rich  # noqa: F401, PLC0415 -- optional dependency, imported lazily
    except ImportError:
        return False
    return True


def _is_terminal(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@attrs.frozen
class Terminal:
    """Where the command prints, and what it may draw there.

    Attributes:
        out: Results: ``--json`` lines, status lines, chains, summaries.
        err: Progress and error lines.
        progress_bar: Draw a rich progress bar on ``err``.
        tables: Draw rich tables on ``out``.
    """

    out: IO[str]
    err: IO[str]
    progress_bar: bool = False
    tables: bool = False

    @classmethod
    def detect(cls) -> Terminal:
        """The process's stdout and stderr; rich where one is a terminal and rich is installed.

        Returns:
            The terminal the command runs in.
        """
        out, err = sys.stdout, sys.stderr
        return cls(
            out,
            err,
            progress_bar=_is_terminal(err) and rich_available(),
            tables=_is_terminal(out) and rich_available(),
        )


# -- one order ---------------------------------------------------------------------------------


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


def report_json(report: OrderReport) -> dict[str, Any]:
    """The object printed for one order with ``--json``.

    Args:
        report: How the order ended.

    Returns:
        order_number, ok, status, error (null or ``{type, message, code}``), directory and
        skipped.
    """
    return {
        "order_number": report.order_number,
        "ok": report.ok,
        "status": report.status,
        "error": None if report.error is None else describe_error(report.error),
        "directory": None if report.directory is None else str(report.directory),
        "skipped": report.skipped,
        **({} if report.bundle is None else {"bundle": attrs.asdict(report.bundle)}),
    }


def report_line(report: OrderReport) -> str:
    """One human-readable line about one order.

    Args:
        report: How the order ended.

    Returns:
        The line, without a newline.
    """
    if report.error is not None:
        return f"{report.order_number}: FAILED: {report.error}"
    if report.skipped:
        return f"{report.order_number}: already collected in {report.directory}"
    if report.directory is not None:
        line = f"{report.order_number}: collected into {report.directory}"
        if report.bundle is not None:
            line += f"; {report.bundle.file} written" if report.bundle.file else "; no bundle"
            if report.bundle.note:
                line += f": {report.bundle.note}"
        return line
    return f"{report.order_number}: {report.status}"


def json_line(obj: dict[str, Any], stream: IO[str]) -> None:
    """Print one JSON object on one line and flush (consumers read it as it comes).

    Args:
        obj: The object.
        stream: Where to print.
    """
    print(json.dumps(obj, ensure_ascii=False), file=stream, flush=True)


# -- a batch -----------------------------------------------------------------------------------


def summary_lines(tally: Tally) -> list[str]:
    """The summary of a batch as plain lines.

    Args:
        tally: The counts over the batch.

    Returns:
        The counts, then one line per error class, then the failed orders (the first few).
    """
    parts = [f"{tally.total} order{'' if tally.total == 1 else 's'}"]
    if tally.collected or tally.skipped:
        already = f" ({tally.skipped} already on disk)" if tally.skipped else ""
        parts.append(f"{tally.collected} collected{already}")
    if tally.answered:
        parts.append(f"{tally.answered} answered")
    if tally.pending:
        parts.append(f"{tally.pending} still processing")
    parts.append(f"{tally.failed} failed")
    lines = [", ".join(parts)]
    lines.extend(f"  {count} x {name}" for name, count in sorted(tally.errors.items()))
    lines.append(traffic_line(tally.traffic))
    if tally.failed_orders:
        listed = ", ".join(f"{number} ({name})" for number, name in tally.failed_orders)
        more = tally.failed - len(tally.failed_orders)
        lines.append(f"  failed: {listed}{f' and {more} more' if more > 0 else ''}")
    return lines


def traffic_line(traffic: Traffic) -> str:
    """What a batch cost the account, as one summary line.

    Args:
        traffic: The counts.

    Returns:
        ``  12 requests sent, 2 retries, 30.0 s throttled``.
    """
    requests = f"{traffic.requests} request{'' if traffic.requests == 1 else 's'} sent"
    retries = f"{traffic.retries} retr{'y' if traffic.retries == 1 else 'ies'}"
    return f"  {requests}, {retries}, {traffic.throttled:.1f} s throttled"


class Progress(Protocol):
    """Progress over a batch of orders."""

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


class _OncePerStop:
    """Shows the first report of each error that stopped the batch: the others repeat it."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def shows(self, report: OrderReport) -> bool:
        if report.error is None or not stops_batch(report.error):
            return True
        kind = type(report.error).__name__
        if kind in self._seen:
            return False
        self._seen.add(kind)
        return True


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
        self._once = _OncePerStop()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def advance(self, report: OrderReport) -> None:
        """Print the order's line, or one line for an error that stops the whole batch."""
        self._done += 1
        if not self._once.shows(report):
            return
        width = len(str(self._total))
        counter = f"[{self._done:>{width}}/{self._total}] " if self._numbered else ""
        print(f"{counter}{report_line(report)}", file=self._stream)

    def summary(self, tally: Tally) -> None:
        """Print the summary lines."""
        for line in summary_lines(tally):
            print(line, file=self._summary_stream)


class RichProgress:
    """A rich progress bar, failures printed above it, a summary table at the end."""

    def __init__(self, total: int, stream: IO[str], summary_stream: IO[str]) -> None:
        from rich.console import Console  # noqa: PLC0415 -- optional dependency
        from rich.progress import (  # noqa: PLC0415
            BarColumn,
            MofNCompleteColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as _RichProgress  # noqa: PLC0415

        self._summary_console = Console(file=summary_stream, emoji=False)
        self._bar = _RichProgress(
            TextColumn("collecting"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=Console(file=stream, emoji=False),
            transient=False,
            # --json lines go to stdout; rich would otherwise capture them onto the terminal.
            redirect_stdout=False,
        )
        self._task = self._bar.add_task("collect", total=total)
        self._once = _OncePerStop()

    def __enter__(self) -> RichProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._bar.stop()

    def advance(self, report: OrderReport) -> None:
        """Move the bar; print failures above it so none goes unseen."""
        if report.error is not None and self._once.shows(report):
            from rich.text import Text  # noqa: PLC0415 -- optional dependency

            self._bar.console.print(Text(report_line(report), style="red"), emoji=False)
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
        self._summary_console.print(traffic_line(tally.traffic), markup=False, highlight=False)
        if tally.failed_orders:
            for line in summary_lines(tally)[-1:]:
                self._summary_console.print(line, markup=False, highlight=False)


def make_progress(total: int, terminal: Terminal, summary_stream: IO[str]) -> Progress:
    """Pick the progress display: a rich bar when the terminal allows it, plain lines otherwise.

    Args:
        total: How many orders the batch has.
        terminal: Where the command prints; progress goes to its ``err``.
        summary_stream: Where the summary goes (stdout, or stderr when stdout carries JSON).

    Returns:
        A context manager that shows progress.
    """
    if terminal.progress_bar:
        return RichProgress(total, terminal.err, summary_stream)
    return PlainProgress(total, terminal.err, summary_stream)

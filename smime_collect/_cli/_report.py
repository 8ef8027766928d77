"""What ``smime-collect`` tells its user: per-order lines, progress, summaries, chain tables.

Everything here presents; nothing decides.  The reports and counts come from ``_outcomes``,
where they go from a :class:`Terminal`, which ``main`` detects once (tests construct one).

Progress goes to stderr (stdout stays clean for ``--json`` and pipes). It is drawn with rich (the
``cli`` extra) when stderr is a terminal and rich is installed, and otherwise written as one plain
line per order, so logs and CI output stay readable. rich is imported only when it is used.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Protocol

import attrs

from .._certs import rfc4514
from .._exceptions import SectigoError, TransportError
from .._polling import is_account_level
from ._order_files import certificate_facts
from ._outcomes import OrderReport, Tally

if TYPE_CHECKING:
    from cryptography import x509

    from .._certs import CertificateChain

__all__ = [
    "NOT_VERIFIED",
    "PlainProgress",
    "Progress",
    "RichProgress",
    "SignatureLinks",
    "Terminal",
    "chain_rows",
    "describe_error",
    "json_line",
    "make_progress",
    "print_chain",
    "report_json",
    "report_line",
    "rich_available",
    "summary_lines",
    "verification_json",
    "verification_lines",
    "verified_links",
]

# What ``inspect --verify`` (and CertificateChain.verify) never looks at.
NOT_VERIFIED = ("validity dates", "trust in any root", "revocation")


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
        return f"{report.order_number}: collected into {report.directory}"
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
    if tally.failed_orders:
        listed = ", ".join(f"{number} ({name})" for number, name in tally.failed_orders)
        more = tally.failed - len(tally.failed_orders)
        lines.append(f"  failed: {listed}{f' and {more} more' if more > 0 else ''}")
    return lines


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

    def __enter__(self) -> RichProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._bar.stop()

    def advance(self, report: OrderReport) -> None:
        """Move the bar; print failures above it so none goes unseen."""
        if report.error is not None:
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


# -- a chain -----------------------------------------------------------------------------------


def _role_labels(chain: CertificateChain) -> list[str]:
    # In the order CertificateChain iterates: end entity, intermediates, roots; numbered when a
    # role holds more than one certificate, so each label names one row of the table.
    labels = ["end entity"] if chain.end_entity is not None else []
    for role, members in (("intermediate", chain.intermediates), ("root", chain.roots)):
        many = len(members) > 1
        labels.extend(f"{role} {n}" if many else role for n in range(1, len(members) + 1))
    return labels


def chain_rows(chain: CertificateChain) -> list[dict[str, Any]]:
    """One JSON-ready row per certificate: its role, then what ``certificate_facts`` reports.

    Args:
        chain: A classified chain.

    Returns:
        Rows in chain order: end entity, intermediates, roots.
    """
    roles = ["end entity"] * (chain.end_entity is not None)
    roles += ["intermediate"] * len(chain.intermediates) + ["root"] * len(chain.roots)
    return [
        {"role": role, **certificate_facts(cert)} for role, cert in zip(roles, chain, strict=True)
    ]


def print_chain(path: str, chain: CertificateChain, terminal: Terminal) -> None:
    """Print a classified chain as a readable table (rich on a terminal, aligned text otherwise).

    Args:
        path: The file the chain came from (a heading).
        chain: The chain.
        terminal: Where to print (its ``out``).
    """
    rows = chain_rows(chain)
    count = f"{len(rows)} certificate{'' if len(rows) == 1 else 's'}"
    if terminal.tables:
        _print_chain_rich(path, count, rows, terminal.out)
        return
    stream = terminal.out
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


def _print_chain_rich(path: str, count: str, rows: Iterable[dict[str, Any]], out: IO[str]) -> None:
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
    Console(file=out, highlight=False, emoji=False).print(table)


# -- inspect --verify --------------------------------------------------------------------------


@attrs.frozen
class SignatureLinks:
    """Which signatures ``CertificateChain.verify`` checks in a chain, by position in it.

    Positions count in the order the chain iterates: end entity, intermediates, roots.

    Attributes:
        checked: ``(certificate, issuer)`` pairs whose signature is checked; a root is its
            own issuer (its self-signature).
        issuer_missing: Certificates whose issuer is not in the chain: nothing is checked for
            them.
    """

    checked: tuple[tuple[int, int], ...]
    issuer_missing: tuple[int, ...]


def verified_links(chain: CertificateChain) -> SignatureLinks:
    """Name the links of a chain that ``verify()`` checks (by issuer and subject name).

    Args:
        chain: A classified chain.

    Returns:
        The signatures checked, and the certificates whose issuer is absent.
    """
    certificates: list[x509.Certificate] = list(chain)
    subjects = [rfc4514(certificate, "subject") for certificate in certificates]
    first_root = len(certificates) - len(chain.roots)
    checked: list[tuple[int, int]] = []
    missing: list[int] = []
    for index, certificate in enumerate(certificates):
        if index >= first_root:
            checked.append((index, index))
            continue
        issuer = rfc4514(certificate, "issuer")
        parents = [n for n, subject in enumerate(subjects) if subject == issuer and n != index]
        if parents:
            checked.append((index, parents[0]))
        else:
            missing.append(index)
    return SignatureLinks(tuple(checked), tuple(missing))


def verification_json(chain: CertificateChain) -> dict[str, Any]:
    """What ``inspect --verify --json`` says was checked, and what was not.

    Args:
        chain: A chain whose ``verify()`` passed.

    Returns:
        ``checked`` (subject and issuer of each signature checked), ``issuer_missing``
        (subjects) and ``not_checked`` (what verification never covers).
    """
    certificates = list(chain)
    links = verified_links(chain)
    return {
        "checked": [
            {
                "subject": rfc4514(certificates[child], "subject"),
                "issuer": rfc4514(certificates[parent], "subject"),
            }
            for child, parent in links.checked
        ],
        "issuer_missing": [rfc4514(certificates[n], "subject") for n in links.issuer_missing],
        "not_checked": list(NOT_VERIFIED),
    }


def verification_lines(chain: CertificateChain) -> list[str]:
    """What ``inspect --verify`` says was checked, and what was not, as plain lines.

    Args:
        chain: A chain whose ``verify()`` passed.

    Returns:
        The lines, indented to sit under the chain's table.
    """
    certificates = list(chain)
    labels = _role_labels(chain)
    links = verified_links(chain)
    lines = []
    if links.checked:
        named = ", ".join(
            f"{labels[child]} (self-signed)"
            if child == parent
            else f"{labels[child]} <- {labels[parent]}"
            for child, parent in links.checked
        )
        count = len(links.checked)
        lines.append(
            f"  verify: {count} signature{'s' if count > 1 else ''} checked, all valid: {named}"
        )
    else:
        lines.append("  verify: no signature checked")
    for index in links.issuer_missing:
        issuer = rfc4514(certificates[index], "issuer")
        lines.append(
            f"  verify: the {labels[index]}'s signature is not checked: its issuer "
            f"({issuer}) is not in the file"
        )
    lines.append(f"  verify: never checked: {', '.join(NOT_VERIFIED)}")
    return lines

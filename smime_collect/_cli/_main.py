"""The ``smime-collect`` command (also ``python -m smime_collect``): collect, status, inspect, demo.

``main(argv)`` returns the exit status instead of exiting, so tests call it directly:

====  =====================================================================================
0     success
1     an order failed, or a file could not be loaded
2     a usage or configuration error, missing or rejected credentials (-16) included
3     nothing failed, but some orders are still processing (``--no-wait``, ``status``)
130   interrupted (Ctrl-C)
====  =====================================================================================

Credentials come from the environment (``SECTIGO_LOGIN_NAME``, ``SECTIGO_LOGIN_PASSWORD``, or
their ``_FILE`` variants) or ``--password-file``, never from the command line: arguments are
visible to every user through ``ps`` and stay in shell history.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import os
import sys
import urllib.parse
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from .. import __version__
from .._certs import CertificateChain, load_certificates
from .._client import DEFAULT_URL, CollectClient
from .._exceptions import AuthenticationError, ChainError, CollectError, HttpsRequiredError
from .._models import QueryType, ResponseType
from .._polling import is_account_level
from ._input import UsageError, credentials, order_number, order_numbers
from ._report import (
    OrderReport,
    PlainProgress,
    Progress,
    Tally,
    chain_rows,
    describe_error,
    json_line,
    make_progress,
    print_chain,
)
from ._to_disk import BatchSettings, collect_into

if TYPE_CHECKING:
    import httpx

__all__ = ["main"]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_PENDING: Final = 3
EXIT_INTERRUPTED: Final = 130

RESPONSE_TYPES: Final = {
    "netscape-sequence": ResponseType.NETSCAPE_SEQUENCE,
    "pkcs7": ResponseType.PKCS7,
    "individual": ResponseType.INDIVIDUAL,
    "cmmf": ResponseType.CMMF,
}

# inspect reads whole files; nothing that holds certificates is anywhere near this big.
_MAX_INSPECT_BYTES: Final = 16 * 1024 * 1024
_MAX_DEMO_ORDERS: Final = 10_000

# The test seam: when set, every client the command builds sends through the transport this
# returns (tests point it at smime_collect.testing's in-process simulator); None means the
# network, with TLS verified.
_transport_factory: Callable[[], httpx.AsyncBaseTransport] | None = None

_T = TypeVar("_T")


# -- argument parsing ------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, minus echoing unrecognised arguments: one of them may be a password."""

    def parse_args(  # type: ignore[override]  # narrower than argparse's overloads, on purpose
        self, args: Sequence[str] | None = None, namespace: None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            options = sorted({e.split("=", 1)[0] for e in extras if e.startswith("-")})
            hidden = len(extras) - sum(1 for e in extras if e.startswith("-") and "=" not in e)
            self.error(
                "unrecognized arguments: "
                + " ".join(options)
                + (f" (and {hidden} value{'s' if hidden > 1 else ''} not shown)" if hidden else "")
                + "; there is no password option: set SECTIGO_LOGIN_PASSWORD or use --password-file"
            )
        return parsed


def _positive_int(text: str) -> int:
    return _int_at_least(text, 1, "a positive integer")


def _non_negative_int(text: str) -> int:
    return _int_at_least(text, 0, "a whole number >= 0")


def _int_at_least(text: str, minimum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _response_type(text: str) -> ResponseType:
    try:
        return RESPONSE_TYPES[text]
    except KeyError:
        names = ", ".join(RESPONSE_TYPES)
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {names}") from None


_EPILOG = """\
credentials: SECTIGO_LOGIN_NAME and SECTIGO_LOGIN_PASSWORD, or SECTIGO_LOGIN_NAME_FILE and
SECTIGO_LOGIN_PASSWORD_FILE (paths of files holding the values), or --password-file.
There is no password option: command lines are visible to other users.

exit status: 0 success, 1 an order or file failed, 2 usage/configuration error (including
missing or rejected credentials), 3 some orders still processing, 130 interrupted.
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``smime-collect``.

    Returns:
        A parser whose namespaces carry the handler in ``handler``.
    """
    parser = _Parser(
        prog="smime-collect",
        description="Collect S/MIME certificates from Sectigo's CollectSMIME endpoint.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # No abbreviations: "--password SECRET" must be refused, not read as "--password-file SECRET"
    # (whose error message would then print the secret).
    remote = _Parser(add_help=False, allow_abbrev=False)
    group = remote.add_argument_group("connection")
    group.add_argument("--base-url", default=DEFAULT_URL, metavar="URL", help="endpoint URL")
    group.add_argument(
        "--ca-bundle", type=Path, metavar="FILE", help="PEM CA certificates to trust for TLS"
    )
    group.add_argument(
        "--password-file",
        type=Path,
        metavar="FILE",
        help="file holding the password (trailing newline stripped)",
    )
    group.add_argument(
        "--concurrency",
        type=_positive_int,
        default=4,
        metavar="N",
        help="requests in flight at once (default 4; Sectigo dislikes many)",
    )
    group.add_argument(
        "--max-retries",
        type=_non_negative_int,
        default=3,
        metavar="N",
        help="retries of a transient failure (HTTP 429/5xx, -14, -42, network; default 3)",
    )
    group.add_argument("--json", action="store_true", help="one JSON object per order on stdout")
    group.add_argument(
        "--poll-interval",
        type=_positive_seconds,
        default=5.0,
        metavar="S",
        help="first wait between polls (default 5)",
    )
    group.add_argument(
        "--max-poll-interval",
        type=_positive_seconds,
        default=60.0,
        metavar="S",
        help="longest wait between polls (default 60)",
    )

    collect = _add_orders_command(
        commands,
        "collect",
        remote,
        summary="collect certificates into DIR/ORDER/",
        description="Collect each order's certificate and chain into DIR/ORDER/.",
        orders_file_help="one order number per line; blank lines and # comments ignored; "
        "- for stdin",
    )
    collect.add_argument(
        "--out",
        type=Path,
        default=Path(),
        metavar="DIR",
        help="where the ORDER/ directories go (default: the current directory)",
    )
    collect.add_argument(
        "--no-wait", action="store_true", help="ask once per order; do not wait for processing"
    )
    collect.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=600.0,
        metavar="S",
        help="seconds to wait per order (default 600)",
    )
    collect.add_argument(
        "--response-type",
        type=_response_type,
        metavar="NAME",
        help=f"container to ask for: {', '.join(RESPONSE_TYPES)}",
    )
    collect.add_argument(
        "--force", action="store_true", help="collect again orders whose meta.json exists"
    )
    collect.set_defaults(handler=_run_collect)

    status = _add_orders_command(
        commands,
        "status",
        remote,
        summary="show each order's status (query type 0)",
        description="Ask for each order's status only (queryType 0); nothing is written.",
        orders_file_help="as for collect",
    )
    status.set_defaults(handler=_run_status)

    inspect = commands.add_parser(
        "inspect",
        allow_abbrev=False,
        help="show the classified chain in certificate files",
        description="Load PEM, DER, base64, PKCS#7, Netscape, CMMF or ZIP files and show the "
        "classified chain: role, subject, issuer, validity, SHA-256 fingerprint.",
    )
    inspect.add_argument("files", nargs="+", metavar="FILE", help="files to load; - for stdin")
    inspect.add_argument("--json", action="store_true", help="one JSON object per file on stdout")
    inspect.add_argument(
        "--verify",
        action="store_true",
        help="also check the signature of every link; a broken chain exits 1",
    )
    inspect.set_defaults(handler=_run_inspect)

    demo = commands.add_parser(
        "demo",
        allow_abbrev=False,
        help="the whole flow against a built-in simulator (no credentials, no network)",
        description="Collect simulated orders in mixed states from an in-process CollectSMIME "
        "simulator, write their files and print a summary.",
    )
    demo.add_argument(
        "--orders",
        type=_positive_int,
        default=25,
        metavar="N",
        help=f"how many (default 25, at most {_MAX_DEMO_ORDERS})",
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("smime-collect-demo"),
        metavar="DIR",
        help="where to write (default ./smime-collect-demo)",
    )
    demo.set_defaults(handler=_run_demo)
    return parser


def _add_orders_command(
    commands: argparse._SubParsersAction[_Parser],
    name: str,
    remote: _Parser,
    *,
    summary: str,
    description: str,
    orders_file_help: str,
) -> _Parser:
    """A command that asks the endpoint about the orders given as arguments or in a file."""
    command = commands.add_parser(
        name,
        allow_abbrev=False,
        parents=[remote],
        help=summary,
        description=description,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument(
        "orders",
        nargs="*",
        type=order_number,
        metavar="ORDER",
        help="order numbers (more with --orders-file)",
    )
    command.add_argument("--orders-file", metavar="FILE|-", help=orders_file_help)
    return command


def _client(args: argparse.Namespace) -> CollectClient:
    if "@" in urllib.parse.urlsplit(args.base_url).netloc:
        # Checked here, before the client quotes the URL in any message: user:password@ would
        # put a secret on the screen (and in ps, which is why credentials never go in argv).
        raise UsageError(
            "--base-url carries credentials (user:password@host): remove them; the login "
            "comes from SECTIGO_LOGIN_NAME, the password from SECTIGO_LOGIN_PASSWORD or "
            "--password-file"
        )
    login, password = credentials(args.password_file)
    options: dict[str, Any] = {}
    if _transport_factory is not None:
        options["transport"] = _transport_factory()
    elif args.ca_bundle is not None:
        if not args.ca_bundle.is_file():
            raise UsageError(f"--ca-bundle {str(args.ca_bundle)!r} is not a readable file")
        options["verify"] = args.ca_bundle
    try:
        return CollectClient(
            login,
            password,
            base_url=args.base_url,
            max_concurrency=args.concurrency,
            max_retries=args.max_retries,
            **options,
        )
    except CollectError as exc:
        raise UsageError(str(exc)) from None


# -- commands --------------------------------------------------------------------------------


def _is_configuration_error(error: CollectError | None) -> bool:
    # -16 means wrong credentials (or a locked account, or a blocked source IP) and -1 an
    # http:// URL: the user must fix the configuration, no order is at fault (CONTRACT 8).
    return isinstance(error, AuthenticationError | HttpsRequiredError)


def exit_status(tally: Tally) -> int:
    """The exit status a batch ends with (see the module docstring).

    Args:
        tally: The counts over the batch.

    Returns:
        0, 1, 2 or 3.
    """
    if _is_configuration_error(tally.account_error):
        return EXIT_USAGE
    if tally.failed:
        return EXIT_FAILED
    if tally.pending:
        return EXIT_PENDING
    return EXIT_OK


async def _run_batch(args: argparse.Namespace, orders: list[int], settings: BatchSettings) -> Tally:
    progress: Progress
    if settings.query_type is QueryType.STATUS and not args.json:
        # For status the per-order lines are the output itself: stdout, unnumbered.
        progress = PlainProgress(len(orders), sys.stdout, sys.stderr, numbered=False)
    else:
        progress = make_progress(len(orders), sys.stderr if args.json else sys.stdout)

    async with _client(args) as client:
        with progress:

            def on_report(report: OrderReport) -> None:
                progress.advance(report)
                if args.json:
                    json_line(report.to_json(), sys.stdout)

            tally = await collect_into(client, orders, settings, on_report)
        progress.summary(tally)  # after the bar has stopped drawing
    if tally.account_error is not None and is_account_level(tally.account_error):
        print(f"smime-collect: error: {tally.account_error}", file=sys.stderr)
    return tally


def _output_directory(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {str(out)!r} cannot be created: {exc.strerror}") from None
    return out


def _run_collect(args: argparse.Namespace) -> int:
    orders = order_numbers(args.orders, args.orders_file)
    out = _output_directory(args.out)
    settings = BatchSettings(
        out=out,
        wait=not args.no_wait,
        force=args.force,
        timeout=args.timeout,
        poll_interval=args.poll_interval,
        max_poll_interval=max(args.max_poll_interval, args.poll_interval),
        response_type=args.response_type,
    )
    return exit_status(_run(_run_batch(args, orders, settings)))


def _run_status(args: argparse.Namespace) -> int:
    orders = order_numbers(args.orders, args.orders_file)
    settings = BatchSettings(out=None, wait=False, query_type=QueryType.STATUS)
    return exit_status(_run(_run_batch(args, orders, settings)))


def _read_input(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read(_MAX_INSPECT_BYTES + 1)
    with Path(name).open("rb") as handle:
        return handle.read(_MAX_INSPECT_BYTES + 1)


def _inspect_one(name: str) -> CertificateChain:
    try:
        data = _read_input(name)
    except OSError as exc:
        raise CollectError(exc.strerror or type(exc).__name__) from None
    if len(data) > _MAX_INSPECT_BYTES:
        raise CollectError(
            f"larger than {_MAX_INSPECT_BYTES // (1024 * 1024)} MiB: not certificate data"
        )
    return load_certificates(data)


def _run_inspect(args: argparse.Namespace) -> int:
    status = EXIT_OK
    for name in args.files:
        try:
            chain = _inspect_one(name)
        except CollectError as error:
            status = EXIT_FAILED
            print(f"smime-collect: {name}: {error}", file=sys.stderr)
            if args.json:
                json_line({"file": name, "ok": False, "error": describe_error(error)}, sys.stdout)
            continue
        broken: ChainError | None = None
        if args.verify:
            try:
                chain.verify()
            except ChainError as error:
                broken, status = error, EXIT_FAILED
        if args.json:
            line: dict[str, Any] = {"file": name, "ok": broken is None}
            if args.verify:
                line["error"] = None if broken is None else describe_error(broken)
            json_line({**line, "certificates": chain_rows(chain)}, sys.stdout)
            continue
        print_chain(name, chain, sys.stdout)
        if broken is not None:
            print(f"smime-collect: {name}: chain does not verify: {broken}", file=sys.stderr)
        elif args.verify:
            print("  every signature in the chain verifies", file=sys.stdout)
    return status


def _run_demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo  # noqa: PLC0415 -- loads the simulator only when asked

    if args.orders > _MAX_DEMO_ORDERS:
        # Every simulated order gets its own certificate and key, all kept in memory.
        raise UsageError(f"--orders {args.orders}: the demo runs at most {_MAX_DEMO_ORDERS} orders")
    return _run(run_demo(args.orders, _output_directory(args.out)))


def _run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coroutine)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # not a real file descriptor (tests capture stdout): nothing will be flushed


def main(argv: list[str] | None = None) -> int:
    """Run ``smime-collect`` with ``argv`` (default: ``sys.argv[1:]``).

    Args:
        argv: The arguments, without the program name.

    Returns:
        The exit status: 0, 1, 2, 3, or 130 when interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error argparse has printed
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    # Every way a command can end becomes an exit status and at most one line on stderr.
    try:
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except UsageError as exc:
        print(f"smime-collect: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("smime-collect: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``smime-collect status ... | head -1``): stop quietly, and point
        # stdout at /dev/null so the interpreter's final flush does not complain either.
        _silence_stdout()
        return EXIT_FAILED
    except (CollectError, OSError) as exc:
        print(f"smime-collect: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 -- a command line reports, it does not dump a traceback
        print(
            f"smime-collect: internal error: {type(exc).__name__}: {exc} "
            "(please report this as a bug)",
            file=sys.stderr,
        )
        return EXIT_FAILED

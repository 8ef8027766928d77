"""The arguments of ``smime-collect``: one small function per command, each plain argparse.

No option takes a password, and no option is abbreviated: ``--password SECRET`` must be
refused, not read as ``--password-file SECRET`` (whose error message would then print the
secret).  An unrecognised argument is never echoed back, since it may be a password.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from .. import __version__
from .._client import DEFAULT_URL
from .._models import ResponseType
from ._demo import DEFAULT_CONCURRENCY as DEMO_CONCURRENCY
from ._demo import MAX_ORDERS as MAX_DEMO_ORDERS
from ._input import order_number

__all__ = ["RESPONSE_TYPES", "build_parser"]

RESPONSE_TYPES: Final = {
    "netscape-sequence": ResponseType.NETSCAPE_SEQUENCE,
    "pkcs7": ResponseType.PKCS7,
    "individual": ResponseType.INDIVIDUAL,
    "cmmf": ResponseType.CMMF,
}

_PASSWORD_HINT: Final = (
    "there is no password option: set SECTIGO_LOGIN_PASSWORD or use --password-file"  # noqa: S105 -- advice, not a password
)
# An unrecognised option that looks like an attempt to give a password (or another secret).
_PASSWORD_LIKE: Final = re.compile(r"pass|pwd|secret|credential|token", re.IGNORECASE)

_EPILOG: Final = f"""\
default endpoint (--base-url): {DEFAULT_URL}

credentials: SECTIGO_LOGIN_NAME and SECTIGO_LOGIN_PASSWORD, or SECTIGO_LOGIN_NAME_FILE and
SECTIGO_LOGIN_PASSWORD_FILE (paths of files holding the values), or --password-file.
There is no password option: command lines are visible to other users.

exit status: 0 success, 1 an order or file failed, 2 usage/configuration error (including
missing or rejected credentials and an untrusted TLS certificate), 3 some orders still
processing, 130 interrupted.
"""

_COLLECT_EPILOG: Final = f"""\
files: DIR/ORDER/cert.pem, chain.pem, fullchain.pem, root.pem (when the answer has one),
payload.* (as received) and meta.json (written last: it marks the order as collected), each
written atomically. Certificates are public, so these files are created with mode 0644 less
the umask (a umask of 077 keeps them to their owner).

mail-client bundles: with --keys DIR, every private key under DIR (PEM or DER, PKCS#8 or
traditional, encrypted ones opened with --key-password-file) is matched to each certificate by
its public key, and DIR/ORDER/bundle.p12 is written (mode 0600) with the end entity, its key and
the intermediates: AES-256 by default, 3DES/SHA-1 with --p12-legacy for older importers. Its
password is read from --p12-password-file, or a new random one is written to
DIR/ORDER/p12-password.txt (0600). An order with no matching key keeps its certificate files and
its report says so; that alone does not change the exit status.

{_EPILOG}"""


class _Parser(argparse.ArgumentParser):
    """argparse, minus echoing unrecognised arguments: one of them may be a password."""

    def parse_args(  # type: ignore[override]  # narrower than argparse's overloads, on purpose
        self, args: Sequence[str] | None = None, namespace: None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(_unrecognised(extras))
        return parsed


def _unrecognised(extras: list[str]) -> str:
    options = sorted({e.split("=", 1)[0] for e in extras if e.startswith("-")})
    hidden = len(extras) - sum(1 for e in extras if e.startswith("-") and "=" not in e)
    message = "unrecognized arguments: " + " ".join(options)
    if hidden:
        message += f" (and {hidden} value{'s' if hidden > 1 else ''} not shown)"
    if any(_PASSWORD_LIKE.search(option) for option in options):
        message += f"; {_PASSWORD_HINT}"
    return message


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``smime-collect``.

    Returns:
        A parser whose namespaces name their command in ``command``.
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
    connection = _connection_options()
    _add_collect(commands, connection)
    _add_status(commands, connection)
    _add_inspect(commands)
    _add_demo(commands)
    _add_simulate(commands)
    return parser


def _connection_options() -> _Parser:
    """The options of every command that talks to the endpoint."""
    options = _Parser(add_help=False, allow_abbrev=False)
    group = options.add_argument_group("connection")
    group.add_argument(
        "--base-url", default=DEFAULT_URL, metavar="URL", help="endpoint URL (default: below)"
    )
    group.add_argument(
        "--ca-bundle",
        type=Path,
        metavar="FILE",
        help="PEM CA certificates to trust for TLS (default: certifi's)",
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
        "--redis-url",
        metavar="URL",
        help=(
            "share the account's budget (--concurrency in flight, slow-downs, the login guard) "
            "with every process using this Redis (default: $SMIME_COLLECT_REDIS_URL; "
            "needs smime-collect[redis])"
        ),
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
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="warnings on stderr as text (default) or one JSON object per line",
    )
    return options


def _add_orders_command(
    commands: argparse._SubParsersAction[_Parser],
    name: str,
    connection: _Parser,
    *,
    summary: str,
    description: str,
    epilog: str,
) -> _Parser:
    """A command that asks the endpoint about the orders given as arguments or in a file."""
    command = commands.add_parser(
        name,
        allow_abbrev=False,
        parents=[connection],
        help=summary,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument(
        "orders",
        nargs="*",
        type=order_number,
        metavar="ORDER",
        help="order numbers (more with --orders-file)",
    )
    command.add_argument(
        "--orders-file",
        metavar="FILE|-",
        help="one order number per line; blank lines and # comments ignored; - for stdin",
    )
    return command


def _add_polling(command: _Parser, *, shown: bool) -> None:
    """``--poll-interval`` and ``--max-poll-interval``; accepted but not listed where unused."""
    group = command.add_argument_group("polling") if shown else command
    for flag, default, help_text in (
        ("--poll-interval", 5.0, "first wait between polls (default 5)"),
        ("--max-poll-interval", 60.0, "longest wait between polls (default 60)"),
    ):
        group.add_argument(
            flag,
            type=_positive_seconds,
            default=default,
            metavar="S",
            help=help_text if shown else argparse.SUPPRESS,
        )


def _add_collect(commands: argparse._SubParsersAction[_Parser], connection: _Parser) -> None:
    collect = _add_orders_command(
        commands,
        "collect",
        connection,
        summary="collect certificates into DIR/ORDER/",
        description="Collect each order's certificate and chain into DIR/ORDER/.",
        epilog=_COLLECT_EPILOG,
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
        help="seconds to wait per order, from its first request (default 600)",
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
    _add_bundles(collect)
    _add_polling(collect, shown=True)


def _add_bundles(collect: _Parser) -> None:
    bundles = collect.add_argument_group("mail-client bundles (PKCS#12)")
    bundles.add_argument(
        "--keys",
        type=Path,
        metavar="DIR",
        help="private keys to pair with the certificates, found by public key: writes bundle.p12",
    )
    bundles.add_argument(
        "--key-password-file",
        type=Path,
        metavar="FILE",
        help="the password of the encrypted keys under --keys (trailing newline stripped)",
    )
    bundles.add_argument(
        "--p12-password-file",
        type=Path,
        metavar="FILE",
        help="the bundles' password (default: a new random one per order, in p12-password.txt)",
    )
    bundles.add_argument(
        "--p12-legacy",
        action="store_true",
        help="3DES/SHA-1 instead of AES-256, for importers that read nothing newer",
    )


def _add_status(commands: argparse._SubParsersAction[_Parser], connection: _Parser) -> None:
    status = _add_orders_command(
        commands,
        "status",
        connection,
        summary="show each order's status (query type 0)",
        description="Ask once for each order's status (queryType 0): no polling, nothing written.",
        epilog=_EPILOG,
    )
    # status asks once, so the polling options do nothing; they are still accepted, so one set
    # of options can serve both collect and status in a script.
    _add_polling(status, shown=False)


def _add_inspect(commands: argparse._SubParsersAction[_Parser]) -> None:
    inspect = commands.add_parser(
        "inspect",
        allow_abbrev=False,
        help="show the classified chain in certificate files",
        description="Load PEM, DER, base64, PKCS#7, Netscape, CMMF, ZIP or PKCS#12 files and "
        "show the classified chain: role, subject, issuer, validity, SHA-256 fingerprint (and for "
        "PKCS#12, whether its private key matches the end entity).",
    )
    inspect.add_argument("files", nargs="+", metavar="FILE", help="files to load; - for stdin")
    inspect.add_argument("--json", action="store_true", help="one JSON object per file on stdout")
    inspect.add_argument(
        "--verify",
        action="store_true",
        help="also check the signature of every link present in the file, and say which were "
        "checked (a broken link exits 1); validity dates, trust in the root and revocation "
        "are not checked",
    )
    inspect.add_argument(
        "--p12-password-file",
        type=Path,
        metavar="FILE",
        help="the password of PKCS#12 files (trailing newline stripped)",
    )


def _add_simulate(commands: argparse._SubParsersAction[_Parser]) -> None:
    from ..testing._tool import add_serve_options  # noqa: PLC0415 -- the simulator's own options

    simulate = commands.add_parser(
        "simulate",
        allow_abbrev=False,
        help="serve the CollectSMIME simulator on loopback TLS until stopped",
        description="Serve the simulator's scenario on loopback TLS and print its URL, CA "
        "certificate, test account and orders, so that any program can be pointed at it "
        "(also: python -m smime_collect.testing serve). Needs smime-collect[simulator].",
    )
    add_serve_options(simulate)


def _add_demo(commands: argparse._SubParsersAction[_Parser]) -> None:
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
        help=f"how many (default 25, at most {MAX_DEMO_ORDERS})",
    )
    demo.add_argument(
        "--concurrency",
        type=_positive_int,
        default=DEMO_CONCURRENCY,
        metavar="N",
        help=f"requests in flight at once (default {DEMO_CONCURRENCY})",
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("smime-collect-demo"),
        metavar="DIR",
        help="where to write (default ./smime-collect-demo); it must be new, empty, or an "
        "earlier demo's, whose order directories are replaced; any other directory is refused",
    )

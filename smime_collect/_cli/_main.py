"""The ``smime-collect`` command (also ``python -m smime_collect``): collect, status, inspect, demo.

``main(argv)`` returns the exit status instead of exiting, so tests call it directly, with the
client factory and the terminal they want:

====  =====================================================================================
0     success
1     an order failed, or a file could not be loaded
2     a usage or configuration error: missing or rejected credentials (-16), an untrusted
      TLS certificate, anything else that stops a whole batch
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
import contextlib
import io
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, Final, TypeVar

import attrs

from .._certs import CertificateChain, load_certificates
from .._client import CollectClient
from .._client._config import check_url
from .._exceptions import ChainError, CollectError, InvalidRequestError
from .._models import QueryType
from ..events import Event
from ._chains import chain_rows, print_chain, verification_json, verification_lines
from ._demo import MAX_ORDERS as MAX_DEMO_ORDERS
from ._demo import run_demo
from ._input import UsageError, credentials, order_numbers, read_secret_file
from ._keys import Bundle, BundleSettings, KeyIndex, looks_like_pkcs12, read_pkcs12
from ._logs import log_format
from ._outcomes import OrderReport, Tally, Traffic
from ._parser import build_parser
from ._report import (
    PlainProgress,
    Progress,
    Terminal,
    describe_error,
    json_line,
    make_progress,
    report_json,
)
from ._to_disk import BatchSettings, collect_into

__all__ = ["ClientFactory", "exit_status", "main"]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_PENDING: Final = 3
EXIT_INTERRUPTED: Final = 130

# inspect reads whole files; nothing that holds certificates is anywhere near this big.
_MAX_INSPECT_BYTES: Final = 16 * 1024 * 1024

#: Builds the client for ``collect`` and ``status``: called as ``CollectClient`` is, with the
#: login name, the password and the keyword arguments ``base_url``, ``max_concurrency``,
#: ``max_retries``, ``on_event``, with ``--ca-bundle`` ``verify``, and with ``--redis-url``
#: ``budget``.
ClientFactory = Callable[..., CollectClient]

_T = TypeVar("_T")


@attrs.frozen
class _Command:
    """One command being run: its arguments and what it runs with."""

    args: argparse.Namespace
    client_factory: ClientFactory
    terminal: Terminal


def main(
    argv: list[str] | None = None,
    *,
    client_factory: ClientFactory = CollectClient,
    terminal: Terminal | None = None,
) -> int:
    """Run ``smime-collect`` with ``argv`` (default: ``sys.argv[1:]``).

    Args:
        argv: The arguments, without the program name.
        client_factory: Builds the client of ``collect`` and ``status`` (tests pass
            ``functools.partial(CollectClient, transport=simulator.transport())``).
        terminal: Where to print and what may be drawn there (default: detected from
            ``sys.stdout`` and ``sys.stderr``).

    Returns:
        The exit status: 0, 1, 2, 3, or 130 when interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error argparse has printed
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    command = _Command(args, client_factory, Terminal.detect() if terminal is None else terminal)
    return _dispatch(command)


def _dispatch(command: _Command) -> int:
    # Every way a command can end becomes an exit status and at most one line on stderr.
    err = command.terminal.err
    try:
        return _HANDLERS[command.args.command](command)
    except UsageError as exc:
        print(f"smime-collect: error: {exc}", file=err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("smime-collect: interrupted", file=err)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``smime-collect status ... | head -1``): stop quietly, and point
        # stdout at /dev/null so the interpreter's final flush does not complain either.
        _silence_stdout()
        return EXIT_FAILED
    except (CollectError, OSError) as exc:
        print(f"smime-collect: error: {exc}", file=err)
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 -- a command line reports, it does not dump a traceback
        print(
            f"smime-collect: internal error: {type(exc).__name__}: {exc} "
            "(please report this as a bug)",
            file=err,
        )
        return EXIT_FAILED


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # not a real file descriptor (tests capture stdout): nothing will be flushed


def _run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run(coroutine)


# -- collect and status ------------------------------------------------------------------------


def exit_status(tally: Tally) -> int:
    """The exit status a batch ends with (see the module docstring).

    Args:
        tally: The counts over the batch.

    Returns:
        0, 1, 2 or 3.
    """
    if tally.stop_error is not None:
        # What stops a batch (a rejected login, an http:// URL, an untrusted TLS certificate, an
        # unknown host, ...) is the configuration's fault, not any order's.
        return EXIT_USAGE
    if tally.failed:
        return EXIT_FAILED
    if tally.pending:
        return EXIT_PENDING
    return EXIT_OK


def _client(
    command: _Command, on_event: Callable[[Event], object], budget: Any = None
) -> CollectClient:
    args = command.args
    try:
        # Before the credentials are read, and in the client's own words: they never quote
        # user:password@ (which would put a secret on the screen, as it is already in ps).
        check_url(args.base_url, allow_insecure_http=False)
    except InvalidRequestError as exc:
        raise UsageError(f"--base-url: {exc}") from None
    login, password = credentials(args.password_file)
    options: dict[str, Any] = {}
    if args.ca_bundle is not None:
        if not args.ca_bundle.is_file():
            raise UsageError(f"--ca-bundle {str(args.ca_bundle)!r} is not a readable file")
        options["verify"] = args.ca_bundle
    if budget is not None:
        options["budget"] = budget
    try:
        return command.client_factory(
            login,
            password,
            base_url=args.base_url,
            max_concurrency=args.concurrency,
            max_retries=args.max_retries,
            on_event=on_event,
            **options,
        )
    except CollectError as exc:
        raise UsageError(str(exc)) from None


def _redis_budget(args: argparse.Namespace) -> Any:
    """The RedisBudget of --redis-url or SMIME_COLLECT_REDIS_URL, or None."""
    url = args.redis_url or os.environ.get("SMIME_COLLECT_REDIS_URL")
    if not url:
        return None
    try:
        from ..redis import RedisBudget  # noqa: PLC0415 -- the redis extra, only when asked for
    except ImportError:
        raise UsageError("--redis-url needs redis-py: pip install 'smime-collect[redis]'") from None
    try:
        return RedisBudget(url, max_concurrency=args.concurrency)
    except CollectError as exc:
        raise UsageError(f"--redis-url: {exc}") from None


@contextlib.asynccontextmanager
async def _closing(budget: Any) -> AsyncIterator[None]:
    try:
        yield
    finally:
        if budget is not None:
            await budget.aclose()


async def _run_batch(command: _Command, orders: list[int], settings: BatchSettings) -> Tally:
    args, terminal = command.args, command.terminal
    progress: Progress
    if settings.query_type is QueryType.STATUS and not args.json:
        # For status the per-order lines are the output itself: stdout, unnumbered.
        progress = PlainProgress(len(orders), terminal.out, terminal.err, numbered=False)
    else:
        summary = terminal.err if args.json else terminal.out
        progress = make_progress(len(orders), terminal, summary)

    traffic = Traffic()
    budget = _redis_budget(args)
    async with _closing(budget), _client(command, traffic.observe, budget) as client:
        with progress, log_format(args.log_format, terminal.err):

            def on_report(report: OrderReport) -> None:
                progress.advance(report)
                if args.json:
                    json_line(report_json(report), terminal.out)

            tally = await collect_into(client, orders, settings, on_report)
        tally.traffic = traffic
        progress.summary(tally)  # after the bar has stopped drawing
    if tally.stop_error is not None:
        print(f"smime-collect: error: {tally.stop_error}", file=terminal.err)
    return tally


def _output_directory(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {str(out)!r} cannot be created: {exc.strerror}") from None
    return out


def _bundle_settings(args: argparse.Namespace) -> BundleSettings | None:
    if args.keys is None:
        given = [
            option
            for option, value in (
                ("--key-password-file", args.key_password_file),
                ("--p12-password-file", args.p12_password_file),
                ("--p12-legacy", args.p12_legacy or None),
            )
            if value is not None
        ]
        if given:
            raise UsageError(f"{given[0]} needs --keys DIR (the private keys to bundle)")
        return None
    key_password = (
        None
        if args.key_password_file is None
        else read_secret_file(args.key_password_file, "--key-password-file").encode()
    )
    p12_password = (
        None
        if args.p12_password_file is None
        else read_secret_file(args.p12_password_file, "--p12-password-file").encode()
    )
    try:
        keys = KeyIndex.from_directory(args.keys, key_password)
    except InvalidRequestError as exc:
        raise UsageError(str(exc)) from None
    return BundleSettings(keys, p12_password, legacy=args.p12_legacy)


def _run_collect(command: _Command) -> int:
    args = command.args
    orders = order_numbers(args.orders, args.orders_file)
    bundles = _bundle_settings(args)
    settings = BatchSettings(
        out=_output_directory(args.out),
        wait=not args.no_wait,
        force=args.force,
        timeout=args.timeout,
        poll_interval=args.poll_interval,
        max_poll_interval=max(args.max_poll_interval, args.poll_interval),
        response_type=args.response_type,
        bundles=bundles,
    )
    return exit_status(_run(_run_batch(command, orders, settings)))


def _run_status(command: _Command) -> int:
    orders = order_numbers(command.args.orders, command.args.orders_file)
    settings = BatchSettings(out=None, wait=False, query_type=QueryType.STATUS)
    return exit_status(_run(_run_batch(command, orders, settings)))


# -- inspect -----------------------------------------------------------------------------------


def _read_input(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read(_MAX_INSPECT_BYTES + 1)
    with Path(name).open("rb") as handle:
        return handle.read(_MAX_INSPECT_BYTES + 1)


def _load(name: str, p12_password: bytes | None) -> tuple[CertificateChain, Bundle | None]:
    try:
        data = _read_input(name)
    except OSError as exc:
        raise CollectError(exc.strerror or type(exc).__name__) from None
    if len(data) > _MAX_INSPECT_BYTES:
        raise CollectError(
            f"larger than {_MAX_INSPECT_BYTES // (1024 * 1024)} MiB: not certificate data"
        )
    if looks_like_pkcs12(data):
        found = read_pkcs12(data, p12_password)
        return found.chain, found
    return load_certificates(data), None


def _inspect_one(
    name: str, *, verify: bool, as_json: bool, terminal: Terminal, p12_password: bytes | None
) -> bool:
    """Show one file's chain (and what ``--verify`` checked); False when it failed."""
    try:
        chain, bundle = _load(name, p12_password)
    except CollectError as error:
        print(f"smime-collect: {name}: {error}", file=terminal.err)
        if as_json:
            json_line({"file": name, "ok": False, "error": describe_error(error)}, terminal.out)
        return False
    broken: ChainError | None = None
    if verify:
        try:
            chain.verify()
        except ChainError as error:
            broken = error
    if as_json:
        line: dict[str, Any] = {"file": name, "ok": broken is None}
        if verify:
            line["error"] = None if broken is None else describe_error(broken)
            line["verification"] = None if broken is not None else verification_json(chain)
        if bundle is not None:
            line["key"] = {"present": bundle.has_key, "matches": bundle.key_matches}
        json_line({**line, "certificates": chain_rows(chain)}, terminal.out)
        return broken is None and (bundle is None or bundle.key_matches is not False)
    print_chain(name, chain, terminal)
    if bundle is not None:
        print(bundle.key_line(), file=terminal.out)
        if bundle.key_matches is False:
            return False
    if broken is not None:
        print(f"smime-collect: {name}: chain does not verify: {broken}", file=terminal.err)
        return False
    if verify:
        for text in verification_lines(chain):
            print(text, file=terminal.out)
    return True


def _run_inspect(command: _Command) -> int:
    args = command.args
    p12_password = (
        None
        if args.p12_password_file is None
        else read_secret_file(args.p12_password_file, "--p12-password-file").encode()
    )
    results = [
        _inspect_one(
            name,
            verify=args.verify,
            as_json=args.json,
            terminal=command.terminal,
            p12_password=p12_password,
        )
        for name in args.files
    ]
    return EXIT_OK if all(results) else EXIT_FAILED


# -- demo --------------------------------------------------------------------------------------


def _run_demo(command: _Command) -> int:
    args = command.args
    if args.orders > MAX_DEMO_ORDERS:
        # Every simulated order gets its own certificate and key, all kept in memory.
        raise UsageError(f"--orders {args.orders}: the demo runs at most {MAX_DEMO_ORDERS} orders")
    return _run(
        run_demo(args.orders, args.out, concurrency=args.concurrency, terminal=command.terminal)
    )


def _run_simulate(command: _Command) -> int:
    from ..testing._tool import serve_until_stopped  # noqa: PLC0415 -- only this command serves

    return serve_until_stopped(command.args.host, command.args.port, command.terminal.out)


_HANDLERS: Final[dict[str, Callable[[_Command], int]]] = {
    "collect": _run_collect,
    "status": _run_status,
    "inspect": _run_inspect,
    "demo": _run_demo,
    "simulate": _run_simulate,
}

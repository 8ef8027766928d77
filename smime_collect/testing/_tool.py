"""The simulator as a tool: ``python -m smime_collect.testing serve``, ``smime-collect simulate``.

Serves a small scenario on loopback TLS until SIGINT or SIGTERM, and prints what a program needs to
point at it: the URL, the CA certificate to trust, the test account and the orders with their
states.  Any program that reads ``SECTIGO_BASE_URL``, ``SECTIGO_CA_BUNDLE``, ``SECTIGO_LOGIN_NAME``
and ``SECTIGO_LOGIN_PASSWORD`` (``CollectClient.from_env`` does) then talks to the simulator::

    $ python -m smime_collect.testing serve --port 8443
    $ export SECTIGO_BASE_URL=... SECTIGO_CA_BUNDLE=...    # as printed
    $ uvicorn examples.fastapi_app:app

Needs uvicorn: ``pip install 'smime-collect[simulator]'``.
"""

import argparse
import asyncio
import contextlib
import ipaddress
import os
import secrets
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Final

import attrs

from ._scenario import OrderState
from ._server import RunningServer, serve
from ._simulator import Simulator

__all__ = ["ScenarioOrder", "main", "scenario_simulator"]

DEFAULT_LOGIN: Final = "simulator-user"


@attrs.frozen
class ScenarioOrder:
    """One order the served scenario holds.

    Attributes:
        number: The order number.
        state: Where it ends up.
        ready_after_seconds: Seconds it answers "being processed" first.
        described: How the banner describes it.
    """

    number: int
    state: OrderState
    ready_after_seconds: float = 0.0
    described: str = ""


SCENARIO: Final = (
    ScenarioOrder(1001, OrderState.ISSUED, described="issued: collect it at once"),
    ScenarioOrder(1002, OrderState.ISSUED, 10.0, "issued after 10 s of processing"),
    ScenarioOrder(1003, OrderState.PROCESSING, described="processing, forever"),
    ScenarioOrder(1004, OrderState.REJECTED, described="rejected (-20)"),
    ScenarioOrder(1005, OrderState.REVOKED, described="revoked (-21)"),
    ScenarioOrder(1006, OrderState.AWAITING_PAYMENT, described="awaiting payment (-22)"),
)


def scenario_simulator(
    environ: Mapping[str, str] | None = None, *, seed: int | None = None
) -> tuple[Simulator, str, str]:
    """The simulator the tool serves, with its account.

    Args:
        environ: Where ``SECTIGO_LOGIN_NAME`` / ``SECTIGO_LOGIN_PASSWORD`` may name the
            account (default ``os.environ``); otherwise ``simulator-user`` and a new password.
        seed: The simulator's seed.

    Returns:
        ``(simulator, login_name, password)``.
    """
    env = os.environ if environ is None else environ
    login = env.get("SECTIGO_LOGIN_NAME") or DEFAULT_LOGIN
    password = env.get("SECTIGO_LOGIN_PASSWORD") or secrets.token_urlsafe(12)
    simulator = Simulator(seed=seed)
    simulator.add_account(login, password)
    for order in SCENARIO:
        simulator.add_order(
            order.number, state=order.state, ready_after_seconds=order.ready_after_seconds
        )
    return simulator, login, password


def _banner(server: RunningServer, login: str, password: str, out: IO[str]) -> None:
    lines = [
        f"smime-collect simulator listening on {server.url}",
        f"CA certificate: {server.ca_pem_path}",
        f"login name: {login}",
        f"password: {password}",
        "orders:",
        *(f"  {order.number}  {order.described}" for order in SCENARIO),
        "",
        "point a program at it (CollectClient.from_env reads these):",
        f"  export SECTIGO_BASE_URL={server.url}",
        f"  export SECTIGO_CA_BUNDLE={server.ca_pem_path}",
        f"  export SECTIGO_LOGIN_NAME={login}",
        f"  export SECTIGO_LOGIN_PASSWORD={password}",
        "stop it with Ctrl-C (SIGINT) or SIGTERM",
    ]
    print(*lines, sep="\n", file=out, flush=True)


async def run(host: str, port: int, out: IO[str]) -> int:
    """Serve the scenario until SIGINT or SIGTERM.

    Args:
        host: The loopback address to bind.
        port: The port; 0 picks a free one.
        out: Where the banner goes.

    Returns:
        0 once stopped.
    """
    simulator, login, password = scenario_simulator()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with serve(simulator, host=host, port=port) as server:
            _banner(server, login, password, out)
            await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    print("smime-collect simulator stopped", file=out, flush=True)
    return 0


def build_parser(prog: str = "python -m smime_collect.testing") -> argparse.ArgumentParser:
    """The tool's arguments: ``serve [--port N] [--host ADDRESS]``.

    Args:
        prog: The program name shown in usage lines.

    Returns:
        The parser.
    """
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve_command = commands.add_parser(
        "serve", help="serve the simulator on loopback TLS until stopped"
    )
    add_serve_options(serve_command)
    return parser


def add_serve_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--port`` and ``--host`` (also used by ``smime-collect simulate``).

    Args:
        parser: The parser of the serving command.
    """
    parser.add_argument(
        "--port", type=int, default=0, metavar="N", help="the port (default: a free one)"
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="a loopback address to bind (default 127.0.0.1; the simulator is for tests)",
    )


def serve_until_stopped(host: str, port: int, out: IO[str] | None = None) -> int:
    """Run the tool's server in a new event loop: what both commands call.

    Args:
        host: A loopback address.
        port: The port; 0 picks a free one.
        out: Where the banner goes (default stdout).

    Returns:
        The exit status: 0 once stopped, 2 for a bad address or port, 1 if it cannot start.
    """
    stream = sys.stdout if out is None else out
    if not 0 <= port <= 65535:
        print(f"--port {port}: not a port number", file=sys.stderr)
        return 2
    if not _is_loopback(host):
        print(
            f"--host {host}: the simulator serves test credentials, so it listens on loopback "
            "only (127.0.0.1 or ::1)",
            file=sys.stderr,
        )
        return 2
    try:
        return asyncio.run(run(host, port, stream))
    except ImportError as exc:
        print(f"smime-collect simulator: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"smime-collect simulator: cannot serve on {host}:{port}: {exc}", file=sys.stderr)
        return 2


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m smime_collect.testing serve [--port N]``.

    Args:
        argv: The arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    args = build_parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        return serve_until_stopped(args.host, args.port)
    return 0  # pragma: no cover - SIGINT is handled in the loop; this is a last resort

"""Fixtures shared by the test modules, and the guard that keeps every test on loopback."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from smime_collect._certs import _fast
from smime_collect.testing import IssuedChain, ManualClock, TestCA


@pytest.fixture
def fake_time() -> ManualClock:
    """The client's clock and sleep: time moves only when the client sleeps; waits are recorded."""
    return ManualClock(now=1000.0)


@pytest.fixture(params=["aiohttp", "httpcore"])
def transport_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on the aiohttp transport and on the core-only httpcore one."""
    if request.param == "httpcore":
        monkeypatch.setitem(sys.modules, "httpx_aiohttp", None)
    return str(request.param)


@pytest.fixture(params=["shortcuts", "plain"])
def shortcuts(request: pytest.FixtureRequest) -> Iterator[None]:
    """Run a test with the certificate shortcuts on, then off (``_fast.disabled``).

    The certificate modules use it for every test (``pytestmark``): both paths must read the
    same chains and raise the same errors.
    """
    with _fast.disabled() if request.param == "plain" else contextlib.nullcontext():
        yield


@pytest.fixture(scope="module")
def issued() -> IssuedChain:
    """An end entity for alice@example.com, one intermediate and a root (a module may override)."""
    return TestCA.create().issue_smime("alice@example.com", common_name="Alice")


# -- the network guard -------------------------------------------------------------------------
# Every client in a test gets a local URL or an in-process transport.  A forgotten base_url would
# call Sectigo (DEFAULT_URL) from CI: refuse any name lookup or connection that leaves loopback,
# loudly, and fail the test that tried even if the error was caught and retried somewhere.

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})
_refused: list[str] = []


class NonLoopbackNetworkError(RuntimeError):
    """A test tried to reach beyond loopback."""


def _is_loopback(host: object) -> bool:
    if host is None:  # getaddrinfo(None, port): a passive lookup for a local listener
        return True
    text = host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)
    text = text.strip("[]").split("%", 1)[0]
    if text.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def _refuse(what: str, host: object) -> None:
    if not _is_loopback(host):
        message = (
            f"tests stay on loopback: refused {what} of {host!r} (give the client a local URL)"
        )
        _refused.append(message)
        raise NonLoopbackNetworkError(message)


_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    _refuse("a name lookup", host)
    return _real_getaddrinfo(host, *args, **kwargs)


def _address_host(address: object) -> object:
    # AF_INET/AF_INET6 addresses are tuples; an AF_UNIX path is local by nature.
    return address[0] if isinstance(address, tuple) else None


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _refuse("a connection", _address_host(address))
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _refuse("a connection", _address_host(address))
    return _real_connect_ex(self, address)


def pytest_configure(config: pytest.Config) -> None:
    """Install the loopback guard for the whole run."""
    socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _stays_on_loopback() -> Iterator[None]:
    """Fail the test that tried to leave loopback, even if something caught the error."""
    before = len(_refused)
    yield
    tried = _refused[before:]
    if tried:
        pytest.fail(tried[0], pytrace=False)

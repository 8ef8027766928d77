"""The conftest guard: a test that forgets its local URL fails loudly instead of calling Sectigo."""

from __future__ import annotations

import socket

import pytest
from conftest import NonLoopbackNetworkError, _is_loopback, _refused

from smime_collect import CollectClient


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", b"localhost", "fe80::1%lo", None],
)
def test_loopback_is_allowed(host: object) -> None:
    """Loopback addresses and names, in every spelling a library passes, are let through."""
    if host == "fe80::1%lo":  # link-local is not loopback, scope id or not
        assert not _is_loopback(host)
    else:
        assert _is_loopback(host)


def test_a_lookup_beyond_loopback_is_refused() -> None:
    """Resolving Sectigo's host raises at once; the attempt is recorded for the teardown check."""
    before = len(_refused)
    with pytest.raises(NonLoopbackNetworkError, match=r"secure\.trust-provider\.com"):
        socket.getaddrinfo("secure.trust-provider.com", 443)
    assert len(_refused) == before + 1
    del _refused[before:]  # this test's refusal was the point; do not fail it at teardown


def test_a_connection_beyond_loopback_is_refused() -> None:
    """Connecting to a public address never reaches the network."""
    before = len(_refused)
    with socket.socket() as sock, pytest.raises(NonLoopbackNetworkError, match=r"192\.0\.2\.1"):
        sock.connect(("192.0.2.1", 443))
    del _refused[before:]


async def test_a_client_without_base_url_fails_loudly() -> None:
    """The library's default URL is refused loudly, not turned into a quiet TransportError."""
    before = len(_refused)
    async with CollectClient("api-user", "s3cret", max_retries=0) as client:
        with pytest.raises(NonLoopbackNetworkError):
            await client.collect(1)
    assert len(_refused) > before
    del _refused[before:]

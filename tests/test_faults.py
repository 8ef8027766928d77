"""Fault injection over a real loopback socket with TLS: each fault, its outcome, its request count.

Two servers, both TLS on 127.0.0.1:

* the simulator under uvicorn (``smime_collect.testing.serve``) with scripted faults
  (``Simulator.inject``): HTTP 429/500/502/503/504, Sectigo -14 and -42, a connection dropped
  before any response, a body cut off after half its Content-Length, an oversized body, and
  headers slower than the read timeout;
* ``RawTLSServer`` below, forty lines of asyncio for what an ASGI app cannot do: a TCP reset
  (RST, ``SO_LINGER`` 0) in the middle of the body, a body that never ends, a body that stops
  half-way and goes silent, ``Retry-After`` on 500 and 502, a Content-Length over the client's
  cap.  Once its script is used up it answers like the endpoint (``Simulator.respond``).

The client's ``sleep`` and ``clock`` are injected (``ManualClock``): backoff costs no real time and
every wait is recorded.  Only the read timeout is real, and tiny.  Every test runs on both
transports the client can pick: aiohttp (``httpx-aiohttp`` installed) and httpcore (core only),
since they report the same network event with different exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import tracemalloc
import urllib.parse
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import httpx
import pytest
import trustme

from smime_collect import (
    CallLimitError,
    ClientClosedError,
    CollectClient,
    CollectError,
    PollTimeoutError,
    ResponseFormatError,
    Status,
    TransportError,
    UnknownServerError,
)
from smime_collect._client._aiohttp import _translated
from smime_collect._client._failures import stops_batch
from smime_collect.testing import Chaos, Fault, ManualClock, Simulator, serve

pytestmark = pytest.mark.network

LOGIN = "alice"
PASSWORD = "faults-Pa55word"
ORDER = 1001
MAX_RETRIES = 3
# Generous for every phase (a loaded CI machine must not time out by accident) ...
TIMEOUT = httpx.Timeout(10.0)
# ... except the read timeout of the tests that are about a silent server.
SHORT_READ = httpx.Timeout(10.0, read=0.3)
# Never reached by a correct client; it keeps a broken one from streaming for ever.
ENDLESS_SAFETY_CAP = 64 * 1024 * 1024
MiB = 1024 * 1024


def simulator(**kwargs: Any) -> Simulator:
    """A simulator with one account and one issued order; no Retry-After unless a test sets one."""
    kwargs.setdefault("chaos", Chaos(retry_after=None))
    sim = Simulator(seed=11, **kwargs)
    sim.add_account(LOGIN, PASSWORD)
    sim.add_order(ORDER)
    sim.issue_certificates()  # key generation now, not while a tight read timeout runs
    return sim


def client(
    url: str, verify: ssl.SSLContext, fake_time: ManualClock, **kwargs: Any
) -> CollectClient:
    """A client on a loopback TLS server, with fake time and a fixed jitter draw."""
    kwargs.setdefault("timeout", TIMEOUT)
    kwargs.setdefault("max_retries", MAX_RETRIES)
    return CollectClient(
        LOGIN,
        PASSWORD,
        base_url=url,
        verify=verify,
        sleep=fake_time.sleep,
        clock=fake_time,
        random=lambda: 0.5,
        **kwargs,
    )


# -- the simulator's faults -------------------------------------------------------------------

# (fault, the error once retries run out)
TRANSIENT_FAULTS = [
    pytest.param(Fault.HTTP_429, TransportError, id="http-429"),
    pytest.param(Fault.HTTP_500, TransportError, id="http-500"),
    pytest.param(Fault.HTTP_502, TransportError, id="http-502"),
    pytest.param(Fault.HTTP_503, TransportError, id="http-503"),
    pytest.param(Fault.HTTP_504, TransportError, id="http-504"),
    pytest.param(Fault.ERROR_14, UnknownServerError, id="sectigo-14"),
    pytest.param(Fault.ERROR_42, CallLimitError, id="sectigo-42"),
    pytest.param(Fault.DROP_CONNECTION, TransportError, id="dropped-before-response"),
    pytest.param(Fault.TRUNCATED_BODY, TransportError, id="truncated-body"),
    pytest.param(Fault.TIMEOUT, TransportError, id="headers-slower-than-read-timeout"),
]


class TestSimulatedFaults:
    """Every transient fault of the simulator: survived within max_retries, or the right error."""

    @pytest.mark.parametrize(("fault", "error_type"), TRANSIENT_FAULTS)
    async def test_transient_fault(
        self,
        fault: Fault,
        error_type: type[CollectError],
        transport_kind: str,
        fake_time: ManualClock,
    ) -> None:
        """Fault x2 then OK: 3 requests and the chain; fault each time: 4 requests, the error."""
        del transport_kind
        sim = simulator(chaos=Chaos(retry_after=None, stall_seconds=10.0))
        timeout = SHORT_READ if fault is Fault.TIMEOUT else TIMEOUT
        async with (
            serve(sim) as server,
            client(server.url, server.ssl_context(), fake_time, timeout=timeout) as collect_client,
        ):
            sim.inject(fault, order_number=ORDER, times=2)
            result = await collect_client.collect(ORDER)
            assert result.status is Status.ATTACHED
            assert result.chain is not None
            assert result.chain.end_entity is not None
            assert sim.stats.requests_by_order[ORDER] == 3
            assert sim.stats.faults[fault] == 2
            assert len(fake_time.sleeps) == 2  # one backoff per retry, none real

            sim.stats.reset()
            fake_time.sleeps.clear()
            sim.inject(fault, order_number=ORDER, times=MAX_RETRIES + 1)
            with pytest.raises(error_type) as caught:
                await collect_client.collect(ORDER)
            assert sim.stats.requests_by_order[ORDER] == MAX_RETRIES + 1
            assert len(fake_time.sleeps) == MAX_RETRIES
            assert sim.pending_faults == ()
        error = caught.value
        if fault.http_status is not None:
            assert isinstance(error, TransportError)
            assert error.status_code == fault.http_status
            assert isinstance(error.__cause__, httpx.HTTPStatusError)
        elif isinstance(error, TransportError):
            assert error.status_code is None
            assert isinstance(error.__cause__, httpx.TransportError)
        if fault is Fault.TIMEOUT:
            assert isinstance(error.__cause__, httpx.TimeoutException)
            assert "timed out" in str(error)

    async def test_oversized_body_is_refused_once(
        self, transport_kind: str, fake_time: ManualClock
    ) -> None:
        """8 MiB without Content-Length: ResponseFormatError after 1 request, nothing retried."""
        del transport_kind
        sim = simulator()
        sim.inject(Fault.OVERSIZED_BODY, order_number=ORDER)
        async with (
            serve(sim) as server,
            client(server.url, server.ssl_context(), fake_time) as collect_client,
        ):
            with pytest.raises(ResponseFormatError, match="max_response_bytes") as caught:
                await collect_client.collect(ORDER)
            # The connection was dropped, not left half-read: the next request works.
            result = await collect_client.collect(ORDER)
        assert type(caught.value) is ResponseFormatError
        assert result.status is Status.ATTACHED
        assert sim.stats.requests_by_order[ORDER] == 2
        assert fake_time.sleeps == []


class TestRetryAfter:
    """Retry-After on 429 and 503, in seconds and as an HTTP-date, from the simulator."""

    @pytest.mark.parametrize("fault", [Fault.HTTP_429, Fault.HTTP_503])
    async def test_seconds_date_and_none(
        self, fault: Fault, transport_kind: str, fake_time: ManualClock
    ) -> None:
        """7 s, an HTTP-date 30 s ahead, then none: 4 requests, waits 7, ~30, then backoff."""
        del transport_kind
        sim = simulator()
        in_30_seconds = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
        sim.inject(fault, order_number=ORDER, retry_after="7")
        sim.inject(fault, order_number=ORDER, retry_after=in_30_seconds)
        sim.inject(fault, order_number=ORDER)  # Chaos(retry_after=None): no header at all
        async with (
            serve(sim) as server,
            client(server.url, server.ssl_context(), fake_time) as collect_client,
        ):
            result = await collect_client.collect(ORDER)
        assert result.status is Status.ATTACHED
        assert sim.stats.requests_by_order[ORDER] == 4
        seconds, date, backoff = fake_time.sleeps
        assert seconds == 7.0
        # The date has a one-second resolution and the wall clock moved on a little.
        assert 25.0 <= date <= 30.0
        assert backoff == 1.0  # random 0.5 x base 0.5 x 2**2: the policy's own backoff


# -- faults an ASGI app cannot produce: a raw TLS server ---------------------------------------

Writer = asyncio.StreamWriter
Reader = asyncio.StreamReader
Action = Callable[["RawTLSServer", Reader, Writer], Awaitable[bool]]


class RawTLSServer:
    """A scripted HTTP/1.1 server over TLS: each request takes the next action of the script.

    An action writes what it likes and returns whether the connection stays open.  When the
    script is used up, requests get the endpoint's real answer from ``sim``.

    Attributes:
        requests: Requests received (complete headers and body).
        bodies: The bodies received, in order.
        sent: Body bytes written by the streaming actions.
        client_hung_up: Whether a streaming action stopped because the client went away.
    """

    def __init__(self, sim: Simulator, script: list[Action]) -> None:
        self.sim = sim
        self.script = list(script)
        self.requests = 0
        self.bodies: list[bytes] = []
        self.sent = 0
        self.client_hung_up = False
        self._handlers: set[asyncio.Task[None]] = set()
        self.ca = trustme.CA()
        self.server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1").configure_cert(self.server_context)
        self.url = ""

    def client_context(self) -> ssl.SSLContext:
        """An SSL context that trusts this server's CA."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RawTLSServer]:
        """Listen on a free loopback port for the duration of the block."""
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.server_context)
        port = server.sockets[0].getsockname()[1]
        self.url = f"https://127.0.0.1:{port}/products/download/CollectSMIME"
        try:
            yield self
        finally:
            server.close()
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: Writer) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                self.requests += 1
                self.bodies.append(body)
                action = self.script.pop(0) if self.script else answer
                if not await action(self, reader, writer):
                    return
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            return
        finally:
            self._handlers.discard(task)
            writer.transport.abort()

    def endpoint_reply(self) -> tuple[int, bytes]:
        """The simulator's answer to the last request received."""
        fields = urllib.parse.parse_qsl(self.bodies[-1].decode("ascii"))
        reply = self.sim.respond("POST", "https", fields)
        return reply.http_status, reply.body


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} Whatever"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


async def answer(server: RawTLSServer, reader: Reader, writer: Writer) -> bool:
    """The endpoint's real answer, keep-alive."""
    status, body = server.endpoint_reply()
    headers = {"Content-Type": "text/plain", "Content-Length": str(len(body))}
    writer.write(_head(status, headers) + body)
    await writer.drain()
    return True


def http_error(status: int, retry_after: str | None = None) -> Action:
    """An HTTP error page, with a Retry-After when given."""

    async def act(server: RawTLSServer, reader: Reader, writer: Writer) -> bool:
        del server
        body = b"busy\n"
        headers = {"Content-Type": "text/plain", "Content-Length": str(len(body))}
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        writer.write(_head(status, headers) + body)
        await writer.drain()
        return True

    return act


async def _half_the_reply(server: RawTLSServer, writer: Writer) -> None:
    """The endpoint's real answer, its headers announcing the whole body but only half sent."""
    status, body = server.endpoint_reply()
    headers = {"Content-Type": "text/plain", "Content-Length": str(len(body))}
    writer.write(_head(status, headers) + body[: len(body) // 2])
    await writer.drain()


async def reset_mid_body(server: RawTLSServer, reader: Reader, writer: Writer) -> bool:
    """Headers and half the real body, then a TCP reset (SO_LINGER 0), no TLS close_notify."""
    await _half_the_reply(server, writer)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
    return False


def not_http(reply: bytes) -> Action:
    """Bytes that are not a valid HTTP response head, then a close."""

    async def act(server: RawTLSServer, reader: Reader, writer: Writer) -> bool:
        del server, reader
        writer.write(reply)
        await writer.drain()
        return False

    return act


async def endless_body(server: RawTLSServer, reader: Reader, writer: Writer) -> bool:
    """HTTP 200 "2" and then filler without end (no Content-Length), until the client hangs up."""
    writer.write(_head(200, {"Content-Type": "text/plain", "Connection": "close"}) + b"2\n")
    chunk = (b"A" * 1023 + b"\n") * 16
    server.client_hung_up = await _stream(server, reader, writer, chunk, ENDLESS_SAFETY_CAP)
    return False


async def _stream(
    server: RawTLSServer, reader: Reader, writer: Writer, chunk: bytes, limit: int
) -> bool:
    """Write ``chunk`` until ``limit`` bytes are sent; True when the client went away first."""
    while server.sent + len(chunk) <= limit:
        if writer.is_closing() or reader.at_eof() or reader.exception() is not None:
            return True
        writer.write(chunk)
        try:
            await writer.drain()
        except (ConnectionError, ssl.SSLError):
            return True
        server.sent += len(chunk)
        # drain() need not yield once the peer is gone: give connection_lost() its turn.
        await asyncio.sleep(0)
    return False


async def silent_after_half(server: RawTLSServer, reader: Reader, writer: Writer) -> bool:
    """Headers and half the body, then silence until the client hangs up (a stalled body)."""
    await _half_the_reply(server, writer)
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        # The client sends nothing more: read() returns only when it closes the connection.
        await asyncio.wait_for(reader.read(1), timeout=10.0)
        server.client_hung_up = True
    return False


def declares(length: int) -> Action:
    """HTTP 200 announcing ``length`` bytes, then streaming filler until the client hangs up."""

    async def act(server: RawTLSServer, reader: Reader, writer: Writer) -> bool:
        writer.write(_head(200, {"Content-Type": "text/plain", "Content-Length": str(length)}))
        chunk = b"2\n" + b"A" * 16382
        server.client_hung_up = await _stream(server, reader, writer, chunk, length)
        return False

    return act


def _zero_bomb(encoding: str, mebibytes: int) -> bytes:
    """``mebibytes`` MiB of zeros, gzip- or zlib-encoded, built from one repeated deflate block.

    A block ended by a sync flush is byte-aligned, so repeating it is a valid stream; the
    trailer's checksum is left wrong, since no reader that respects its cap gets that far.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(MiB)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    stream = block * mebibytes + compressor.flush()
    if encoding == "gzip":  # RFC 1952: magic, CM=8, no flags, mtime 0, XFL 0, OS unknown
        return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + stream + bytes(8)
    return b"\x78\x9c" + stream + bytes(4)  # RFC 1950 zlib header, adler32 left wrong


def raw_simulator() -> Simulator:
    """The simulator whose endpoint answers the raw server's unscripted requests."""
    return simulator()


class TestRawFaults:
    """Faults from the raw TLS server: resets, endless and stalled bodies, Retry-After on 5xx."""

    @pytest.mark.parametrize("status", [500, 502])
    async def test_retry_after_on_5xx(
        self, status: int, transport_kind: str, fake_time: ManualClock
    ) -> None:
        """5xx with Retry-After 7, then an HTTP-date 30 s ahead, then none: 4 requests, OK."""
        del transport_kind
        now = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
        in_30_seconds = format_datetime(now + timedelta(seconds=30), usegmt=True)
        raw = RawTLSServer(
            raw_simulator(),
            [http_error(status, "7"), http_error(status, in_30_seconds), http_error(status)],
        )
        async with (
            raw.running(),
            client(
                raw.url, raw.client_context(), fake_time, wall_clock=lambda: now
            ) as collect_client,
        ):
            result = await collect_client.collect(ORDER)
        assert result.status is Status.ATTACHED
        assert raw.requests == 4
        assert fake_time.sleeps == [7.0, 30.0, 1.0]

    async def test_reset_mid_body(self, transport_kind: str, fake_time: ManualClock) -> None:
        """RST after half the body, twice: 3 requests, OK; each time: 4 requests, TransportError."""
        del transport_kind
        raw = RawTLSServer(raw_simulator(), [reset_mid_body] * 2)
        async with (
            raw.running(),
            client(raw.url, raw.client_context(), fake_time) as collect_client,
        ):
            result = await collect_client.collect(ORDER)
            assert result.status is Status.ATTACHED
            assert raw.requests == 3
            raw.script = [reset_mid_body] * (MAX_RETRIES + 1)
            with pytest.raises(TransportError) as caught:
                await collect_client.collect(ORDER)
        assert raw.requests == 3 + MAX_RETRIES + 1
        assert caught.value.status_code is None
        assert isinstance(caught.value.__cause__, httpx.TransportError)

    @pytest.mark.parametrize(
        "reply",
        [
            b"NOT HTTP\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n2\n",
        ],
        ids=["status-line", "content-length"],
    )
    async def test_malformed_http_is_a_transport_error(
        self, reply: bytes, transport_kind: str, fake_time: ManualClock
    ) -> None:
        """Not HTTP: retried, then TransportError; in a batch every order still gets an outcome."""
        del transport_kind
        raw = RawTLSServer(raw_simulator(), [not_http(reply)] * (MAX_RETRIES + 1))
        async with (
            raw.running(),
            client(raw.url, raw.client_context(), fake_time) as collect_client,
        ):
            with pytest.raises(TransportError) as caught:
                await collect_client.collect(ORDER)
            assert raw.requests == MAX_RETRIES + 1
            assert isinstance(caught.value.__cause__, httpx.TransportError)
            raw.script = [not_http(reply)] * (MAX_RETRIES + 1)
            outcomes = [o async for o in collect_client.collect_many([ORDER, ORDER], wait=False)]
        assert len(outcomes) == 2
        assert all(o.ok or isinstance(o.error, TransportError) for o in outcomes)

    async def test_body_that_never_ends(self, transport_kind: str, fake_time: ManualClock) -> None:
        """An endless body: ResponseFormatError at the cap after 1 request; the client hung up."""
        del transport_kind
        cap = 256 * 1024
        raw = RawTLSServer(raw_simulator(), [endless_body])
        async with (
            raw.running(),
            client(
                raw.url, raw.client_context(), fake_time, max_response_bytes=cap
            ) as collect_client,
        ):
            with pytest.raises(ResponseFormatError, match="max_response_bytes"):
                await collect_client.collect(ORDER)
            for _ in range(200):  # let the server notice the closed connection
                if raw.client_hung_up:
                    break
                await asyncio.sleep(0.01)
        assert raw.requests == 1
        assert raw.client_hung_up
        # What the server managed to push: the cap plus socket and TLS buffers, never the lot.
        assert raw.sent < ENDLESS_SAFETY_CAP // 4
        assert fake_time.sleeps == []

    async def test_declared_length_over_the_cap(
        self, transport_kind: str, fake_time: ManualClock
    ) -> None:
        """Content-Length 64 MiB over a 256 KiB cap: refused from the header, 1 request."""
        del transport_kind
        raw = RawTLSServer(raw_simulator(), [declares(64 * 1024 * 1024)])
        async with (
            raw.running(),
            client(
                raw.url, raw.client_context(), fake_time, max_response_bytes=256 * 1024
            ) as collect_client,
        ):
            with pytest.raises(ResponseFormatError, match="declares 67108864 bytes"):
                await collect_client.collect(ORDER)
            for _ in range(200):
                if raw.client_hung_up:
                    break
                await asyncio.sleep(0.01)
        assert raw.requests == 1
        assert raw.client_hung_up
        assert raw.sent < 16 * 1024 * 1024

    @pytest.mark.parametrize("encoding", ["gzip", "deflate"])
    async def test_compressed_bomb(
        self, encoding: str, transport_kind: str, fake_time: ManualClock
    ) -> None:
        """1 GiB of zeros in 1 MiB, Content-Encoding gzip/deflate: refused at the 4 MiB cap.

        Both transports inflate each network chunk whole before the client counts it, so the
        peak is a few network chunks inflated (~1000:1), not the cap; it is bounded all the same.
        """
        del transport_kind
        bomb = _zero_bomb(encoding, 1024)
        assert len(bomb) < 2 * MiB

        async def send_bomb(server: RawTLSServer, reader: Reader, writer: Writer) -> bool:
            del server, reader
            headers = {
                "Content-Type": "text/plain",
                "Content-Encoding": encoding,
                "Content-Length": str(len(bomb)),
            }
            writer.write(_head(200, headers) + bomb)
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.drain()
            return False

        raw = RawTLSServer(raw_simulator(), [send_bomb])
        async with (
            raw.running(),
            client(raw.url, raw.client_context(), fake_time) as collect_client,
        ):
            tracemalloc.start()
            try:
                with pytest.raises(ResponseFormatError, match="max_response_bytes"):
                    await collect_client.collect(ORDER)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
        assert raw.requests == 1
        assert peak < 128 * MiB, f"{peak / MiB:.0f} MiB"  # the bomb holds 1024 MiB

    @pytest.mark.parametrize("status", [301, 302, 307, 308])
    async def test_redirect_is_not_followed(
        self, status: int, transport_kind: str, fake_time: ManualClock
    ) -> None:
        """A redirect (307/308 would re-POST the password): TransportError, 1 request, no retry."""
        del transport_kind

        async def redirect(server: RawTLSServer, reader: Reader, writer: Writer) -> bool:
            del reader
            headers = {"Location": server.url + "?moved=1", "Content-Length": "0"}
            writer.write(_head(status, headers))
            await writer.drain()
            return True

        raw = RawTLSServer(raw_simulator(), [redirect] * 5)
        async with (
            raw.running(),
            client(raw.url, raw.client_context(), fake_time) as collect_client,
        ):
            with pytest.raises(TransportError) as caught:
                await collect_client.collect(ORDER)
        assert caught.value.status_code == status
        assert raw.requests == 1  # neither followed nor retried
        assert fake_time.sleeps == []
        assert PASSWORD not in str(caught.value)

    async def test_body_stalls_half_way(self, transport_kind: str, fake_time: ManualClock) -> None:
        """Half a body then silence, twice: 3 requests, OK; 4 stalls: 4 requests, TransportError."""
        del transport_kind
        raw = RawTLSServer(raw_simulator(), [silent_after_half] * 2)
        async with (
            raw.running(),
            client(raw.url, raw.client_context(), fake_time, timeout=SHORT_READ) as collect_client,
        ):
            result = await collect_client.collect(ORDER)
            assert result.status is Status.ATTACHED
            assert raw.requests == 3
            raw.script = [silent_after_half] * (MAX_RETRIES + 1)
            with pytest.raises(TransportError, match="timed out") as caught:
                await collect_client.collect(ORDER)
        assert raw.requests == 3 + MAX_RETRIES + 1
        assert isinstance(caught.value.__cause__, httpx.TimeoutException)


def _closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TestConnectionFailures:
    """What the network said, in words that fit: refused, unknown host, untrusted certificate."""

    async def test_refused_is_not_a_timeout(
        self, transport_kind: str, fake_time: ManualClock
    ) -> None:
        """A refused connection is retried and reads "Connection refused", never "timed out"."""
        del transport_kind
        url = f"https://127.0.0.1:{_closed_port()}/CollectSMIME"
        async with client(url, ssl.create_default_context(), fake_time) as collect_client:
            with pytest.raises(TransportError) as caught:
                await collect_client.collect(ORDER)
        assert len(fake_time.sleeps) == MAX_RETRIES
        assert isinstance(caught.value.__cause__, httpx.ConnectError)
        assert "Connection refused" in str(caught.value)
        assert "timed out" not in str(caught.value)
        assert not stops_batch(caught.value)

    async def test_unknown_host_is_a_configuration_error(
        self, transport_kind: str, fake_time: ManualClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A host the DNS does not know is not retried, reads so, and would end a batch."""
        del transport_kind

        async def no_such_name(*args: Any, **kwargs: Any) -> Any:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", no_such_name)
        url = "https://collect.example.invalid/CollectSMIME"
        async with client(url, ssl.create_default_context(), fake_time) as collect_client:
            with pytest.raises(TransportError) as caught:
                await collect_client.collect(ORDER)
        assert fake_time.sleeps == []
        assert "Name or service not known" in str(caught.value)
        assert "host name is not known: check base_url" in str(caught.value)
        assert "timed out" not in str(caught.value)
        assert stops_batch(caught.value)

    async def test_untrusted_certificate_ends_the_batch(
        self, transport_kind: str, fake_time: ManualClock
    ) -> None:
        """50 orders, a server certificate not trusted: one handshake, every order that error."""
        del transport_kind
        raw = RawTLSServer(raw_simulator(), [])
        handshakes: list[str | None] = []
        raw.server_context.sni_callback = lambda _ssl, name, _context: handshakes.append(name)
        async with (
            raw.running(),
            client(
                raw.url, ssl.create_default_context(), fake_time, max_concurrency=1
            ) as collect_client,
        ):
            outcomes = [o async for o in collect_client.collect_many(range(1, 51))]
        assert len(handshakes) == 1
        assert raw.requests == 0
        assert fake_time.sleeps == []
        assert sorted(o.order_number for o in outcomes) == list(range(1, 51))
        for outcome in outcomes:
            assert isinstance(outcome.error, TransportError)
            assert "TLS certificate was not trusted" in str(outcome.error)
            assert stops_batch(outcome.error)


class TestDeadline:
    """A wait_for_certificate deadline bounds a request that trickles (slowloris)."""

    async def test_trickling_body_does_not_outlive_the_deadline(self) -> None:
        """One byte every 50 ms: wait_for_certificate(timeout=0.5) gives up at its deadline."""
        trickled = 40  # 2 s of trickle in all, four times the deadline

        async def trickle(server: RawTLSServer, reader: Reader, writer: Writer) -> bool:
            status, body = server.endpoint_reply()
            headers = {"Content-Type": "text/plain", "Content-Length": str(len(body))}
            writer.write(_head(status, headers))
            for index in range(trickled):
                writer.write(body[index : index + 1])
                await writer.drain()
                server.sent += 1
                await asyncio.sleep(0.05)
            writer.write(body[trickled:])
            await writer.drain()
            return True

        raw = RawTLSServer(raw_simulator(), [trickle])
        async with (
            raw.running(),
            CollectClient(
                LOGIN,
                PASSWORD,
                base_url=raw.url,
                verify=raw.client_context(),
                timeout=httpx.Timeout(10.0, read=0.3),
            ) as collect_client,
        ):
            with pytest.raises(PollTimeoutError):
                await collect_client.wait_for_certificate(ORDER, timeout=0.5)
        assert raw.sent < trickled


class TestCancellation:
    """Leaving a batch while every request hangs on a silent server: nothing left behind."""

    @pytest.mark.parametrize("how", ["break", "close-client"])
    async def test_leave_while_requests_hang(
        self, how: str, transport_kind: str, fake_time: ManualClock
    ) -> None:
        """4 requests stalled in flight; leaving cancels them, the server sees 4 hang-ups."""
        del transport_kind
        sim = simulator(chaos=Chaos(retry_after=None, stall_seconds=30.0))
        sim.add_orders(range(1, 9))
        sim.inject(Fault.TIMEOUT, times=100)  # every request: no answer until the client leaves
        async with serve(sim) as server:
            before = asyncio.all_tasks()
            collect_client = client(server.url, server.ssl_context(), fake_time)
            batch = collect_client.collect_many(range(1, 9), wait=False)
            consumer = asyncio.ensure_future(anext(batch))
            for _ in range(500):  # until the 4 requests the semaphore lets through are in
                if sim.stats.in_flight == 4:
                    break
                await asyncio.sleep(0.01)
            assert sim.stats.in_flight == 4
            if how == "break":
                consumer.cancel()
                await asyncio.gather(consumer, return_exceptions=True)
                await batch.aclose()  # type: ignore[attr-defined]
                await collect_client.aclose()
            else:
                await collect_client.aclose()
                with pytest.raises(ClientClosedError, match="closed"):
                    await consumer
                await batch.aclose()  # type: ignore[attr-defined]
            for _ in range(500):  # the server notices each hang-up and ends its request
                if sim.stats.in_flight == 0:
                    break
                await asyncio.sleep(0.01)
            assert sim.stats.in_flight == 0
            left = {t for t in asyncio.all_tasks() - before if not t.done()}
            left.discard(asyncio.current_task())
        assert left == set()
        assert sim.stats.requests_total == 4
        assert fake_time.sleeps == []


def _connect_timeout(cause: BaseException) -> httpx.ConnectTimeout:
    """httpx-aiohttp's ConnectTimeout, raised from ``cause`` as that package raises it."""
    error = httpx.ConnectTimeout("connect")
    error.__cause__ = cause
    return error


class TestAiohttpErrorMapping:
    """The aiohttp transport says what failed in httpx's words, as the httpcore one does."""

    @pytest.mark.parametrize(
        ("raised", "expected"),
        [
            (aiohttp.ClientPayloadError("cut"), httpx.RemoteProtocolError),
            (_connect_timeout(TimeoutError()), httpx.ConnectTimeout),
            (_connect_timeout(OSError("not aiohttp's")), httpx.ConnectTimeout),
            (_connect_timeout(aiohttp.ServerDisconnectedError()), httpx.RemoteProtocolError),
            (_connect_timeout(aiohttp.ClientOSError(104, "reset")), httpx.ReadError),
        ],
        ids=[
            "broken-response",
            "a-real-timeout",
            "a-timeout-of-another-cause",
            "server-disconnected",
            "reset-mid-answer",
        ],
    )
    def test_each_failure_gets_the_httpx_class_the_client_retries_by(
        self, raised: Exception, expected: type[httpx.HTTPError]
    ) -> None:
        """A real timeout stays one; a disconnect or reset reported as a timeout becomes itself."""
        request = httpx.Request("POST", "https://127.0.0.1/x")
        with pytest.raises(httpx.HTTPError) as caught, _translated(request):
            raise raised
        assert type(caught.value) is expected
        if type(raised) is expected:
            assert caught.value is raised  # passed on untouched
        else:
            assert caught.value.request is request
            assert caught.value.__cause__ in (raised, raised.__cause__)

"""CollectClient against respx: the exact request shape and every retry decision, in no time."""

from __future__ import annotations

import asyncio
import inspect
import logging
import ssl
import sys
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from smime_collect import (
    DEFAULT_URL,
    AuthenticationError,
    CallLimitError,
    CertificateRejectedError,
    ClientClosedError,
    CollectClient,
    CollectError,
    HttpsRequiredError,
    InvalidArgumentError,
    InvalidRequestError,
    MissingArgumentError,
    PermissionDeniedError,
    PollTimeoutError,
    PostRequiredError,
    QueryType,
    ResponseEncoding,
    ResponseFormatError,
    ResponseType,
    RetryPolicy,
    SectigoError,
    Status,
    TransportError,
    UnknownServerError,
    UnrecognisedArgumentError,
)
from smime_collect._client import _transports
from smime_collect._client._failures import stops_batch
from smime_collect._client._pacing import Pacer
from smime_collect.testing import ManualClock
from smime_collect.testing._formats import to_pem_blocks
from smime_collect.testing._pki import TestCA

PASSWORD = "pa55-w0rd!&="
CHAIN = TestCA.create().issue_smime("alice@example.com")
READY = b"2\n" + to_pem_blocks(CHAIN.certificates())
PROCESSING = b"0\n"


# Each Sectigo code as the endpoint words it, and the error the client raises for it.
SECTIGO_ANSWERS: dict[int, tuple[bytes, type[SectigoError]]] = {
    -1: (b"-1\nHTTPS is required\n", HttpsRequiredError),
    -2: (b"-2\nThe 'foo' argument is not recognised!\n", UnrecognisedArgumentError),
    -3: (b"-3\nThe 'orderNumber' argument is missing!\n", MissingArgumentError),
    -4: (b"-4\nThe value of the 'orderNumber' argument is invalid!\n", InvalidArgumentError),
    -14: (b"-14\nAn unknown error occurred!\n", UnknownServerError),
    -16: (b"-16\nIncorrect login details\n", AuthenticationError),
    -17: (b"-17\nPOST is required\n", PostRequiredError),
    -20: (b"-20\nThe certificate request has been rejected!\n", CertificateRejectedError),
    -42: (b"-42\nCall limit reached, please try again later\n", CallLimitError),
    -91: (b"-91\nPermission denied\n", PermissionDeniedError),
}


def sectigo_codes(*codes: int) -> pytest.MarkDecorator:
    """Run a test with ``body`` and ``error`` for each of these codes."""
    return pytest.mark.parametrize(
        ("body", "error"), [SECTIGO_ANSWERS[code] for code in codes], ids=[str(c) for c in codes]
    )


@pytest.fixture
def router() -> respx.Router:
    """A respx router that fails on any request it does not know."""
    return respx.Router(assert_all_mocked=True)


Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


def fake_client(handler: Handler, fake_time: ManualClock, **kwargs: Any) -> CollectClient:
    """A client whose every request ``handler`` answers, whose time is fake, jitter fixed."""
    kwargs.setdefault("random", lambda: 0.5)
    kwargs.setdefault("sleep", fake_time.sleep)
    return CollectClient(
        "alice", PASSWORD, transport=httpx.MockTransport(handler), clock=fake_time, **kwargs
    )


def make_client(router: respx.Router, fake_time: ManualClock, **kwargs: Any) -> CollectClient:
    """A client whose transport is the respx router and whose time is fake."""
    return fake_client(router.async_handler, fake_time, **kwargs)


async def spin(turns: int = 50) -> None:
    """Let the other tasks run for a while."""
    for _ in range(turns):
        await asyncio.sleep(0)


def form(request: httpx.Request) -> dict[str, str]:
    """The urlencoded fields of a request body."""
    return dict(urllib.parse.parse_qsl(request.content.decode("ascii"), strict_parsing=True))


class TestRequestShape:
    """What goes on the wire."""

    async def test_exact_request(self, router: respx.Router, fake_time: ManualClock) -> None:
        """One POST to DEFAULT_URL, urlencoded, with exactly the four required fields."""
        route = router.post(DEFAULT_URL).respond(200, content=READY)
        async with make_client(router, fake_time) as client:
            result = await client.collect(1234)
        assert result.status is Status.ATTACHED
        assert route.call_count == 1
        request = route.calls.last.request
        assert request.method == "POST"
        assert str(request.url) == DEFAULT_URL
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        assert request.headers["accept-encoding"] == "identity"
        assert form(request) == {
            "loginName": "alice",
            "loginPassword": PASSWORD,
            "orderNumber": "1234",
            "queryType": "1",
        }

    async def test_password_only_in_the_body(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """Neither the URL nor any header carries the password (raw or urlencoded)."""
        route = router.post(DEFAULT_URL).respond(200, content=READY)
        async with make_client(router, fake_time) as client:
            await client.collect(1)
        request = route.calls.last.request
        encoded = urllib.parse.quote_plus(PASSWORD)
        for text in (str(request.url), *request.headers.keys(), *request.headers.values()):
            assert PASSWORD not in text
            assert encoded not in text
        assert encoded.encode() in request.content

    async def test_optional_fields(self, router: respx.Router, fake_time: ManualClock) -> None:
        """responseType, responseEncoding and showValidityPeriod are sent when set."""
        route = router.post(DEFAULT_URL).respond(200, content=b"0\n")
        async with make_client(router, fake_time) as client:
            await client.collect(
                7,
                query_type=QueryType.CERTIFICATE_AND_CHAIN,
                response_type=ResponseType.PKCS7,
                response_encoding=ResponseEncoding.BINARY,
                show_validity_period=True,
            )
        assert form(route.calls.last.request) == {
            "loginName": "alice",
            "loginPassword": PASSWORD,
            "orderNumber": "7",
            "queryType": "1",
            "responseType": "2",
            "responseEncoding": "1",
            "showValidityPeriod": "Y",
        }

    async def test_custom_base_url(self, router: respx.Router, fake_time: ManualClock) -> None:
        """The request goes to base_url, untouched."""
        url = "https://sectigo.test:8443/products/download/CollectSMIME"
        route = router.post(url).respond(200, content=READY)
        async with make_client(router, fake_time, base_url=url) as client:
            await client.collect(1)
        assert route.call_count == 1

    async def test_bad_request_options_send_nothing(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """A combination the endpoint forbids is refused before any request."""
        route = router.post(DEFAULT_URL).respond(200, content=READY)
        async with make_client(router, fake_time) as client:
            with pytest.raises(InvalidRequestError):
                await client.collect(
                    1, query_type=QueryType.STATUS, response_type=ResponseType.PKCS7
                )
            with pytest.raises(InvalidRequestError):
                await client.collect(0)
        assert route.call_count == 0


# What the constructor's signature promises (docs/reference/client.md).
DOCUMENTED_DEFAULTS: dict[str, object] = {
    "base_url": DEFAULT_URL,
    "http_client": None,
    "timeout": 60.0,
    "max_retries": 3,
    "max_concurrency": 4,
    "allow_insecure_http": False,
    "max_response_bytes": 4 << 20,
}


class TestConstruction:
    """What the constructor refuses, and what it keeps private."""

    def test_default_url_and_documented_defaults(self) -> None:
        """DEFAULT_URL is Sectigo's endpoint; the signatures carry the documented defaults."""
        assert DEFAULT_URL == "https://secure.trust-provider.com/products/download/CollectSMIME"
        client = inspect.signature(CollectClient).parameters
        assert {name: client[name].default for name in DOCUMENTED_DEFAULTS} == DOCUMENTED_DEFAULTS
        wait = inspect.signature(CollectClient.wait_for_certificate).parameters
        assert (wait["timeout"].default, wait["poll_interval"].default) == (600.0, 5.0)
        assert wait["max_poll_interval"].default == 60.0
        assert inspect.signature(CollectClient.collect_many).parameters["wait"].default is True

    @pytest.mark.parametrize("scheme", ["http", "HTTP", "Http"])
    def test_plain_http_refused(self, scheme: str) -> None:
        """http:// in any case is refused unless allow_insecure_http."""
        with pytest.raises(InvalidRequestError, match="https"):
            CollectClient("alice", PASSWORD, base_url=f"{scheme}://example.test/CollectSMIME")
        client = CollectClient(
            "alice", PASSWORD, base_url=f"{scheme}://example.test/x", allow_insecure_http=True
        )
        assert client.base_url == "http://example.test/x"

    @pytest.mark.parametrize(
        "url",
        [
            "ftp://example.test/x",
            "not a url",
            "https://user:pw@example.test/x",
            "https://example.test/x?loginPassword=pw",
            "https://example.test/x?orderNumber=5",
        ],
    )
    def test_bad_urls(self, url: str) -> None:
        """Other schemes, hostless URLs, and URLs with credentials or fields are refused."""
        with pytest.raises(InvalidRequestError):
            CollectClient("alice", PASSWORD, base_url=url)

    @pytest.mark.parametrize(
        ("name", "password"),
        [("", PASSWORD), ("alice", ""), ("a" * 65, PASSWORD), ("alice", "p" * 129)],
        ids=["empty-name", "empty-password", "long-name", "long-password"],
    )
    def test_bad_credentials(self, name: str, password: str) -> None:
        """Empty or over-long credentials are refused, without echoing the password."""
        with pytest.raises(InvalidRequestError) as caught:
            CollectClient(name, password)
        if password:
            assert password not in str(caught.value)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"timeout": 0},
            {"timeout": "60"},
            {"max_concurrency": 0},
            {"max_retries": -1},
            {"max_response_bytes": 0},
            {"requests_per_second": 0},
            {"verify": 3},
        ],
        ids=repr,
    )
    def test_bad_options(self, kwargs: dict[str, Any]) -> None:
        """Out-of-range options are an InvalidRequestError naming the option."""
        with pytest.raises(InvalidRequestError, match=next(iter(kwargs))):
            CollectClient("alice", PASSWORD, **kwargs)

    async def test_repr_hides_the_password(self) -> None:
        """Both repr() and str() show the login name and URL, never the password."""
        async with CollectClient("alice", PASSWORD) as client:
            for text in (repr(client), str(client)):
                assert "alice" in text
                assert DEFAULT_URL in text
                assert PASSWORD not in text

    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            (12.5, httpx.Timeout(12.5)),
            (httpx.Timeout(5.0, read=90.0), httpx.Timeout(5.0, read=90.0)),
            (None, httpx.Timeout(60.0)),
        ],
        ids=["float", "httpx.Timeout", "default"],
    )
    async def test_timeout_float_or_httpx_timeout(
        self, router: respx.Router, given: Any, expected: httpx.Timeout
    ) -> None:
        """A float sets every phase of each request; an httpx.Timeout is used as given."""
        route = router.post(DEFAULT_URL).respond(200, content=READY)
        kwargs = {} if given is None else {"timeout": given}
        transport = httpx.MockTransport(router.async_handler)
        async with CollectClient("alice", PASSWORD, transport=transport, **kwargs) as client:
            await client.collect(1)
        assert route.calls.last.request.extensions["timeout"] == expected.as_dict()

    async def test_injected_http_client_is_used_and_never_closed(
        self, router: respx.Router
    ) -> None:
        """An http_client passed in is the one that sends, and it stays open."""
        route = router.post(DEFAULT_URL).respond(200, content=READY)
        http = httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler))
        async with CollectClient("alice", PASSWORD, http_client=http) as client:
            assert client.http_client is http
            await client.collect(1)
        assert not http.is_closed
        assert route.call_count == 1
        await http.aclose()

    async def test_injected_http_client_gets_our_timeout_and_no_redirects(
        self, router: respx.Router
    ) -> None:
        """Through the caller's client: the CollectClient's timeout, and a 307 is not followed."""
        seen: list[httpx.Request] = []

        def answer(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(307, headers={"Location": "http://elsewhere.example/grab"})

        router.post(DEFAULT_URL).mock(side_effect=answer)
        router.post("http://elsewhere.example/grab").respond(200, content=READY)
        async with (
            httpx.AsyncClient(
                transport=httpx.MockTransport(router.async_handler), follow_redirects=True
            ) as http,
            CollectClient("alice", PASSWORD, http_client=http, timeout=42.0) as client,
        ):
            with pytest.raises(TransportError) as caught:
                await client.collect(1)
        assert caught.value.status_code == 307
        assert [str(r.url) for r in seen] == [DEFAULT_URL]
        assert seen[0].extensions["timeout"] == httpx.Timeout(42.0).as_dict()

    async def test_closed_injected_http_client(self, router: respx.Router) -> None:
        """A closed http_client is a ClientClosedError naming it, not httpx's RuntimeError."""
        http = httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler))
        await http.aclose()
        async with CollectClient("alice", PASSWORD, http_client=http) as client:
            with pytest.raises(ClientClosedError, match=r"http_client .* is closed"):
                await client.collect(1)
            with pytest.raises(ClientClosedError, match=r"http_client .* is closed"):
                [o async for o in client.collect_many([1, 2], wait=False)]

    async def test_injected_http_client_settings_apply(self, router: respx.Router) -> None:
        """Through a given http_client its hooks and default headers apply; ours win on conflict."""
        hooked: list[httpx.Request] = []

        async def hook(request: httpx.Request) -> None:
            hooked.append(request)

        route = router.post(DEFAULT_URL).respond(200, content=READY)
        async with (
            httpx.AsyncClient(
                transport=httpx.MockTransport(router.async_handler),
                headers={"X-Proxy-Tenant": "mail", "User-Agent": "theirs"},
                event_hooks={"request": [hook]},
            ) as http,
            CollectClient("alice", PASSWORD, http_client=http) as client,
        ):
            await client.collect(1)
        sent = route.calls.last.request
        assert hooked == [sent]
        assert sent.headers["X-Proxy-Tenant"] == "mail"
        assert sent.headers["User-Agent"] == "smime-collect"
        assert form(sent)["loginPassword"] == PASSWORD

    async def test_owned_connection_is_closed_and_calls_refused(self) -> None:
        """Closing closes the owned transport; then every call raises ClientClosedError."""
        closed: list[bool] = []

        class Transport(httpx.MockTransport):
            async def aclose(self) -> None:
                closed.append(True)

        client = CollectClient("alice", PASSWORD, transport=Transport(lambda _: READY_RESPONSE()))
        assert client.http_client is None  # no httpx.AsyncClient whose settings would be ignored
        assert not client.is_closed
        await client.aclose()
        assert client.is_closed
        assert closed == [True]
        with pytest.raises(ClientClosedError, match="closed"):
            await client.collect(1)
        with pytest.raises(ClientClosedError):
            await client.wait_for_certificate(1)
        with pytest.raises(ClientClosedError):
            client.collect_many([1])
        with pytest.raises(ClientClosedError):
            async with client:
                pass
        assert isinstance(ClientClosedError("x"), RuntimeError)

    async def test_default_transport_prefers_aiohttp(self) -> None:
        """With httpx-aiohttp installed the default transport is its AiohttpTransport."""
        from httpx_aiohttp import AiohttpTransport

        async with CollectClient("alice", PASSWORD) as client:
            transport = client._transport
            assert isinstance(transport, AiohttpTransport)
            assert transport.ssl_context is not None
            assert transport.ssl_context.verify_mode is ssl.CERT_REQUIRED
            assert transport.ssl_context.check_hostname

    async def test_core_only_transport(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without the extra, several small verified httpcore pools sized to max_concurrency."""
        monkeypatch.setitem(sys.modules, "httpx_aiohttp", None)
        async with CollectClient("alice", PASSWORD, max_concurrency=10) as client:
            transport = client._transport
            assert isinstance(transport, _transports._ShardedTransport)
            pools = transport._pools
            assert len(pools) == 3
            for pool in pools:
                assert pool._pool._max_connections == 4
                assert pool._pool._max_keepalive_connections == 4
                context = pool._pool._ssl_context
                assert context is not None
                assert context.verify_mode is ssl.CERT_REQUIRED

    def test_verify_with_a_ca_bundle(self, tmp_path: Path) -> None:
        """verify= a missing CA bundle path is an InvalidRequestError, not a traceback."""
        with pytest.raises(InvalidRequestError, match="CA bundle"):
            CollectClient("alice", PASSWORD, verify=tmp_path / "missing.pem")


class TestFromEnv:
    """Credentials from the environment, or from files named by it."""

    def test_variables(self) -> None:
        """SECTIGO_LOGIN_NAME / SECTIGO_LOGIN_PASSWORD, keyword options passed on."""
        client = CollectClient.from_env(
            environ={"SECTIGO_LOGIN_NAME": "bob", "SECTIGO_LOGIN_PASSWORD": PASSWORD},
            max_concurrency=2,
        )
        assert client._login_name == "bob"
        assert client._login_password == PASSWORD
        assert client._max_concurrency == 2

    def test_file_variants_strip_the_trailing_newline(self, tmp_path: Path) -> None:
        """*_FILE names a file whose value loses its trailing newline only."""
        (tmp_path / "name").write_text("bob\n")
        (tmp_path / "pw").write_text(f" {PASSWORD}\r\n")
        client = CollectClient.from_env(
            environ={
                "SECTIGO_LOGIN_NAME_FILE": str(tmp_path / "name"),
                "SECTIGO_LOGIN_PASSWORD_FILE": str(tmp_path / "pw"),
            }
        )
        assert client._login_name == "bob"
        assert client._login_password == f" {PASSWORD}"

    @pytest.mark.parametrize(
        ("environ", "missing"),
        [
            ({}, "SECTIGO_LOGIN_NAME"),
            ({"SECTIGO_LOGIN_NAME": "bob"}, "SECTIGO_LOGIN_PASSWORD"),
            ({"SECTIGO_LOGIN_NAME": "bob", "SECTIGO_LOGIN_PASSWORD": ""}, "SECTIGO_LOGIN_PASSWORD"),
        ],
    )
    def test_missing_variable_is_named(self, environ: dict[str, str], missing: str) -> None:
        """The error names the variable to set."""
        with pytest.raises(InvalidRequestError, match=missing):
            CollectClient.from_env(environ=environ)

    def test_unreadable_file(self, tmp_path: Path) -> None:
        """A *_FILE that cannot be read is named, with its path."""
        with pytest.raises(InvalidRequestError, match="SECTIGO_LOGIN_PASSWORD_FILE"):
            CollectClient.from_env(
                environ={
                    "SECTIGO_LOGIN_NAME": "bob",
                    "SECTIGO_LOGIN_PASSWORD_FILE": str(tmp_path / "nope"),
                }
            )

    def test_reads_os_environ_by_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without environ=, os.environ is read."""
        monkeypatch.setenv("SECTIGO_LOGIN_NAME", "carol")
        monkeypatch.setenv("SECTIGO_LOGIN_PASSWORD", PASSWORD)
        assert CollectClient.from_env()._login_name == "carol"


class CountingStream(httpx.AsyncByteStream):
    """A 100 kB body in 1 kB chunks that counts how many chunks were pulled."""

    def __init__(self) -> None:
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(100):
            self.pulled += 1
            yield b"x" * 1000


class TestResponseSize:
    """max_response_bytes: refused without reading to the end."""

    async def test_declared_length_over_the_cap(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """A Content-Length over the cap is refused before the body is read."""
        body = CountingStream()
        router.post(DEFAULT_URL).respond(200, headers={"Content-Length": "100000"}, stream=body)
        async with make_client(router, fake_time, max_response_bytes=5000) as client:
            with pytest.raises(ResponseFormatError, match="100000 bytes"):
                await client.collect(1)
        assert body.pulled == 0

    async def test_streamed_body_over_the_cap(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """Without a length, counting stops the read just past the cap."""
        body = CountingStream()
        router.post(DEFAULT_URL).respond(200, stream=body)
        async with make_client(router, fake_time, max_response_bytes=2500) as client:
            with pytest.raises(ResponseFormatError, match="max_response_bytes"):
                await client.collect(1)
        assert body.pulled == 3  # 3000 bytes > 2500: not one chunk more

    async def test_body_at_the_cap_is_fine(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """A body exactly at the cap is read and parsed."""
        router.post(DEFAULT_URL).respond(200, content=READY)
        async with make_client(router, fake_time, max_response_bytes=len(READY)) as client:
            assert (await client.collect(1)).status is Status.ATTACHED


class TestRetries:
    """Which failures are retried, how long the client waits, what is raised at the end."""

    @pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
    async def test_transient_statuses_are_retried(
        self, router: respx.Router, fake_time: ManualClock, status: int
    ) -> None:
        """A transient HTTP status is retried and the next answer wins."""
        route = router.post(DEFAULT_URL).mock(
            side_effect=[httpx.Response(status), httpx.Response(200, content=READY)]
        )
        async with make_client(router, fake_time) as client:
            result = await client.collect(1)
        assert result.status is Status.ATTACHED
        assert route.call_count == 2
        assert fake_time.now > 1000.0  # it waited before retrying

    @pytest.mark.parametrize("status", [301, 400, 401, 403, 404, 405, 413, 501])
    async def test_other_statuses_fail_at_once(
        self, router: respx.Router, fake_time: ManualClock, status: int
    ) -> None:
        """Any other status is a TransportError at once, with the status and an httpx cause."""
        route = router.post(DEFAULT_URL).respond(status)
        async with make_client(router, fake_time) as client:
            with pytest.raises(TransportError) as caught:
                await client.collect(1)
        assert route.call_count == 1
        assert caught.value.status_code == status
        assert isinstance(caught.value.__cause__, httpx.HTTPStatusError)
        assert caught.value.__cause__.response.status_code == status
        # The cause carries a request, but not the body with the password.
        assert PASSWORD.encode() not in caught.value.__cause__.request.read()
        assert fake_time.sleeps == []

    async def test_exhausted_retries_raise_the_last_error(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """max_retries retries, then the last failure as a TransportError with its status."""
        route = router.post(DEFAULT_URL).mock(
            side_effect=[httpx.Response(500), httpx.Response(502), httpx.Response(503)]
        )
        async with make_client(router, fake_time, max_retries=2) as client:
            with pytest.raises(TransportError) as caught:
                await client.collect(1)
        assert route.call_count == 3
        assert caught.value.status_code == 503
        assert len(fake_time.sleeps) == 2

    async def test_backoff_grows_with_full_jitter(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """Waits follow base * 2**retry scaled by the injected jitter draw."""
        router.post(DEFAULT_URL).respond(503)
        async with make_client(router, fake_time, max_retries=3, random=lambda: 0.5) as client:
            with pytest.raises(TransportError):
                await client.collect(1)
        assert fake_time.sleeps == [0.25, 0.5, 1.0]

    async def test_max_retries_zero(self, router: respx.Router, fake_time: ManualClock) -> None:
        """max_retries=0 sends once."""
        route = router.post(DEFAULT_URL).respond(503)
        async with make_client(router, fake_time, max_retries=0) as client:
            with pytest.raises(TransportError):
                await client.collect(1)
        assert route.call_count == 1

    @sectigo_codes(-14, -42)
    async def test_transient_sectigo_codes(
        self, router: respx.Router, fake_time: ManualClock, body: bytes, error: type[SectigoError]
    ) -> None:
        """-14 and -42 are retried; exhausted, the SectigoError subclass is raised."""
        route = router.post(DEFAULT_URL).mock(
            side_effect=[httpx.Response(200, content=body), httpx.Response(200, content=READY)]
        )
        async with make_client(router, fake_time) as client:
            assert (await client.collect(1)).status is Status.ATTACHED
        assert route.call_count == 2
        route.mock(side_effect=None).respond(200, content=body)
        async with make_client(router, fake_time, max_retries=1) as client:
            with pytest.raises(error) as caught:
                await client.collect(5)
        assert caught.value.order_number == 5

    @sectigo_codes(-16, -20)
    async def test_other_sectigo_codes_fail_at_once(
        self, router: respx.Router, fake_time: ManualClock, body: bytes, error: type[SectigoError]
    ) -> None:
        """A non-transient code is raised at once (a bad login is never retried)."""
        route = router.post(DEFAULT_URL).respond(200, content=body)
        async with make_client(router, fake_time) as client:
            with pytest.raises(error):
                await client.collect(1)
        assert route.call_count == 1

    async def test_malformed_body_is_not_retried(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """A body that is not a CollectSMIME response is a ResponseFormatError at once."""
        route = router.post(DEFAULT_URL).respond(200, content=b"<html>maintenance</html>")
        async with make_client(router, fake_time) as client:
            with pytest.raises(ResponseFormatError):
                await client.collect(1)
        assert route.call_count == 1

    @pytest.mark.parametrize(
        "exc",
        [
            httpx.ConnectError("refused"),
            httpx.ConnectTimeout("slow"),
            httpx.ReadTimeout("slow"),
            httpx.ReadError("reset"),
            httpx.RemoteProtocolError("peer closed connection without sending complete body"),
        ],
        ids=lambda e: type(e).__name__,
    )
    async def test_network_failures_are_retried(
        self, router: respx.Router, fake_time: ManualClock, exc: Exception
    ) -> None:
        """Connection errors, timeouts and a connection closed mid-response are transient."""
        route = router.post(DEFAULT_URL).mock(side_effect=[exc, httpx.Response(200, content=READY)])
        async with make_client(router, fake_time) as client:
            assert (await client.collect(1)).status is Status.ATTACHED
        assert route.call_count == 2

    async def test_network_failure_exhausted(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """The last network failure is a TransportError without status, httpx's as cause."""
        route = router.post(DEFAULT_URL).mock(side_effect=httpx.ConnectError("refused"))
        async with make_client(router, fake_time, max_retries=2) as client:
            with pytest.raises(TransportError) as caught:
                await client.collect(1)
        assert route.call_count == 3
        assert caught.value.status_code is None
        assert isinstance(caught.value.__cause__, httpx.ConnectError)

    async def test_unsupported_protocol_is_not_retried(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """A failure that will not heal (here: a local protocol error) is raised at once."""
        route = router.post(DEFAULT_URL).mock(side_effect=httpx.LocalProtocolError("bad"))
        async with make_client(router, fake_time) as client:
            with pytest.raises(TransportError):
                await client.collect(1)
        assert route.call_count == 1


class TestRetryPolicy:
    """retry_policy= and max_retries=: the one given wins, the default never overrides."""

    @pytest.mark.parametrize(
        ("kwargs", "requests"),
        [
            ({}, 4),
            ({"retry_policy": RetryPolicy(max_retries=10)}, 11),
            ({"retry_policy": RetryPolicy(max_retries=10), "max_retries": 1}, 2),
            ({"retry_policy": RetryPolicy(max_retries=10), "max_retries": 3}, 4),
            ({"max_retries": 0}, 1),
        ],
        ids=[
            "default",
            "policy",
            "both-max-retries-wins",
            "both-given-default-value",
            "max-retries",
        ],
    )
    async def test_precedence(
        self, router: respx.Router, fake_time: ManualClock, kwargs: dict[str, Any], requests: int
    ) -> None:
        """RetryPolicy(max_retries=10) is kept unless max_retries= is given too."""
        route = router.post(DEFAULT_URL).respond(503)
        async with make_client(router, fake_time, **kwargs) as client:
            with pytest.raises(TransportError):
                await client.collect(1)
        assert route.call_count == requests

    def test_signature_shows_the_documented_default(self) -> None:
        """The signature says max_retries=3, as documented; a policy alone still keeps its own."""
        parameter = inspect.signature(CollectClient).parameters["max_retries"]
        assert parameter.default == 3
        assert repr(parameter.default) == "3"

    def test_bad_policy_is_an_invalid_request(self) -> None:
        """A nonsense RetryPolicy is an InvalidRequestError (a ValueError) naming the field."""
        with pytest.raises(InvalidRequestError, match="base_delay"):
            RetryPolicy(base_delay=-1)


class GatedSleep:
    """A client's sleep that records each wait and returns only once the test opens the gate."""

    def __init__(self, fake_time: ManualClock) -> None:
        self.fake_time = fake_time
        self.gate = asyncio.Event()
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        """Record the wait; when the gate opens, move the fake clock by it."""
        self.waits.append(seconds)
        await self.gate.wait()
        self.fake_time.advance(seconds)


def first_answer_then_ready(router: respx.Router, first: httpx.Response) -> list[int]:
    """Answer the first request with ``first``, every later one with a certificate.

    Returns:
        The order number of each request, in the order they were sent.
    """
    sent: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(int(form(request)["orderNumber"]))
        return first if len(sent) == 1 else READY_RESPONSE()

    router.post(DEFAULT_URL).mock(side_effect=answer)
    return sent


class TestRetryAfter:
    """Retry-After honoured, clamped, and never a busy loop."""

    async def _sleeps_after(
        self,
        router: respx.Router,
        fake_time: ManualClock,
        headers: dict[str, str],
        status: int = 503,
    ) -> list[float]:
        router.post(DEFAULT_URL).mock(
            side_effect=[
                httpx.Response(status, headers=headers),
                httpx.Response(200, content=READY),
            ]
        )
        async with make_client(router, fake_time) as client:
            await client.collect(1)
        return fake_time.sleeps

    async def test_delta_seconds(self, router: respx.Router, fake_time: ManualClock) -> None:
        """Retry-After: 7 waits 7 s."""
        assert await self._sleeps_after(router, fake_time, {"Retry-After": "7"}) == [7.0]

    async def test_http_date(self, router: respx.Router, fake_time: ManualClock) -> None:
        """An HTTP-date 30 s ahead of the injected wall clock waits exactly 30 s."""
        now = datetime(2026, 5, 4, 3, 2, 1, tzinfo=UTC)
        when = format_datetime(now + timedelta(seconds=30), usegmt=True)
        router.post(DEFAULT_URL).mock(
            side_effect=[httpx.Response(503, headers={"Retry-After": when}), READY_RESPONSE()]
        )
        async with make_client(router, fake_time, wall_clock=lambda: now) as client:
            await client.collect(1)
        assert fake_time.sleeps == [30.0]

    async def test_absurd_value_is_clamped(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """Retry-After: 86400 is clamped to two minutes."""
        assert await self._sleeps_after(router, fake_time, {"Retry-After": "86400"}) == [120.0]

    async def test_zero_is_not_a_busy_loop(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """Retry-After: 0 still waits the backoff."""
        (slept,) = await self._sleeps_after(router, fake_time, {"Retry-After": "0"})
        assert slept >= 0.1

    @pytest.mark.parametrize(
        ("limit", "error", "gap"),
        [
            (httpx.Response(429, headers={"Retry-After": "10"}), TransportError, 10.0),
            (httpx.Response(200, content=b"-42\nCall limit reached\n"), CallLimitError, 0.4995),
        ],
        ids=["429", "-42"],
    )
    async def test_rate_limit_slows_the_whole_client(
        self,
        router: respx.Router,
        fake_time: ManualClock,
        limit: httpx.Response,
        error: type[CollectError],
        gap: float,
    ) -> None:
        """After a 429 (its Retry-After) or a -42 (a backoff), another order's request waits too."""
        sent_at: list[float] = []

        def answer(request: httpx.Request) -> httpx.Response:
            sent_at.append(fake_time.now)
            return limit if form(request)["orderNumber"] == "1" else READY_RESPONSE()

        router.post(DEFAULT_URL).mock(side_effect=answer)
        async with make_client(router, fake_time, max_retries=0, random=lambda: 0.999) as client:
            with pytest.raises(error):
                await client.collect(1)
            await client.collect(2)
        assert sent_at[0] == 1000.0
        assert sent_at[1] - sent_at[0] == pytest.approx(gap, abs=1e-9)

    async def test_rate_limit_with_a_sleep_that_does_not_wait(self, router: respx.Router) -> None:
        """With only sleep= injected (the real clock runs on), a 429 costs one wait, not a spin."""
        sleeps: list[float] = []

        async def record(seconds: float) -> None:
            sleeps.append(seconds)

        router.post(DEFAULT_URL).mock(
            side_effect=[httpx.Response(429, headers={"Retry-After": "30"}), READY_RESPONSE()]
        )
        async with CollectClient(
            "alice", PASSWORD, transport=httpx.MockTransport(router.async_handler), sleep=record
        ) as client:
            result = await client.collect(1)
        assert result.status is Status.ATTACHED
        assert len(sleeps) == 1
        assert sleeps[0] == pytest.approx(30.0, abs=1.0)

    @pytest.mark.parametrize(
        "limit",
        [
            httpx.Response(429, headers={"Retry-After": "30"}),
            httpx.Response(200, content=b"-42\nCall limit reached\n"),
        ],
        ids=["429", "-42"],
    )
    async def test_a_request_started_during_the_slow_down_waits_too(
        self, router: respx.Router, fake_time: ManualClock, limit: httpx.Response
    ) -> None:
        """While order 1 waits out a 429 / -42, order 2's first request waits before it is sent."""
        sent = first_answer_then_ready(router, limit)
        sleep = GatedSleep(fake_time)
        async with make_client(router, fake_time, sleep=sleep) as client:
            first = asyncio.create_task(client.collect(1))
            await spin()
            assert (sent, len(sleep.waits)) == ([1], 1)  # order 1 is backing off
            second = asyncio.create_task(client.collect(2))
            await spin()
            assert (sent, len(sleep.waits)) == ([1], 2)  # order 2 waits without sending
            assert sleep.waits[1] > 0
            sleep.gate.set()
            results = await asyncio.gather(first, second)
        assert [r.status for r in results] == [Status.ATTACHED] * 2
        assert sorted(sent) == [1, 1, 2]

    async def test_cancelled_while_held_back_frees_its_slot(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """A request cancelled while it waits out a 429 gives back the only slot it held."""
        sent = first_answer_then_ready(router, httpx.Response(429, headers={"Retry-After": "30"}))
        sleep = GatedSleep(fake_time)
        client = make_client(router, fake_time, sleep=sleep, max_concurrency=1, max_retries=0)
        async with client:
            with pytest.raises(TransportError):
                await client.collect(1)
            held = asyncio.create_task(client.collect(2))
            await spin()
            assert (sent, len(sleep.waits)) == ([1], 1)  # order 2 holds the slot, waiting its turn
            held.cancel()
            with pytest.raises(asyncio.CancelledError):
                await held
            sleep.gate.set()
            async with asyncio.timeout(5):  # a leaked slot would hang here
                result = await client.collect(3)
        assert result.status is Status.ATTACHED
        assert sent == [1, 3]

    async def test_503_does_not_slow_other_requests(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """A plain server error only delays its own retry."""
        router.post(DEFAULT_URL).mock(
            side_effect=[httpx.Response(503, headers={"Retry-After": "10"}), READY_RESPONSE()]
        )
        async with make_client(router, fake_time, max_retries=0) as client:
            with pytest.raises(TransportError):
                await client.collect(1)
            await client.collect(2)
        assert fake_time.sleeps == []


class TestPacer:
    """The slots, start rate and slow-down every request of a client waits for."""

    async def test_slow_down_only_moves_later(self, fake_time: ManualClock) -> None:
        """A shorter slow-down after a longer one does not bring the start closer."""
        pacer = Pacer(max_concurrency=1, interval=None, clock=fake_time, sleep=fake_time.sleep)
        pacer.slow_down(1030.0)
        pacer.slow_down(1010.0)
        assert await pacer.acquire()
        pacer.release()
        assert fake_time.now == 1030.0

    async def test_deadline_before_the_turn(self, fake_time: ManualClock) -> None:
        """A turn after the deadline: False at the deadline, and the slot is free again."""
        pacer = Pacer(max_concurrency=1, interval=None, clock=fake_time, sleep=fake_time.sleep)
        pacer.slow_down(1100.0)
        assert not await pacer.acquire(deadline=1020.0)
        assert fake_time.now == 1020.0
        assert await pacer.acquire()  # the one slot was given back
        pacer.release()

    async def test_rate_spaces_starts_within_a_deadline(self, fake_time: ManualClock) -> None:
        """Two per second: starts at 0, 0.5 and 1.0 s; a deadline at 0.8 s stops the third."""
        pacer = Pacer(max_concurrency=4, interval=0.5, clock=fake_time, sleep=fake_time.sleep)
        assert await pacer.acquire(deadline=1000.8)
        assert await pacer.acquire(deadline=1000.8)
        assert fake_time.now == 1000.5
        assert not await pacer.acquire(deadline=1000.8)
        assert fake_time.now == pytest.approx(1000.8)


def READY_RESPONSE() -> httpx.Response:  # noqa: N802 -- reads as a constant in side_effect lists
    """A fresh 'attached' response."""
    return httpx.Response(200, content=READY)


class TestSecrets:
    """The password never reaches a log record, an error message or a traceback."""

    async def test_logs_and_errors_never_show_the_password(
        self, router: respx.Router, fake_time: ManualClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Retries, failures and successes at DEBUG on every logger: no password anywhere."""
        router.post(DEFAULT_URL).mock(
            side_effect=[
                httpx.ConnectError("refused"),
                httpx.Response(503, headers={"Retry-After": "1"}),
                httpx.Response(200, content=b"-14\n"),
                READY_RESPONSE(),
                httpx.Response(404),
                httpx.Response(200, content=b"-16\nIncorrect login details\n"),
            ]
        )
        errors: list[CollectError] = []
        with caplog.at_level(logging.DEBUG):
            async with make_client(router, fake_time) as client:
                await client.collect(1)
                for order in (2, 3):
                    try:
                        await client.collect(order)
                    except CollectError as exc:
                        errors.append(exc)
        assert len(errors) == 2
        texts = [record.getMessage() for record in caplog.records]
        texts += [f"{e!s} {e!r} {e.__cause__!s} {e.__cause__!r}" for e in errors]
        encoded = urllib.parse.quote_plus(PASSWORD)
        for text in texts:
            assert PASSWORD not in text
            assert encoded not in text

    async def test_request_and_retry_logging(
        self, router: respx.Router, fake_time: ManualClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """DEBUG per request (order, attempt, status, ms); WARNING per retry."""
        router.post(DEFAULT_URL).mock(side_effect=[httpx.Response(503), READY_RESPONSE()])
        with caplog.at_level(logging.DEBUG, logger="smime_collect"):
            async with make_client(router, fake_time) as client:
                await client.collect(42)
        mine = [r for r in caplog.records if r.name == "smime_collect"]
        debug = [r.getMessage() for r in mine if r.levelno == logging.DEBUG]
        warning = [r.getMessage() for r in mine if r.levelno == logging.WARNING]
        assert len(debug) == 2
        assert debug[0].startswith("order 42 attempt 1: HTTP 503 in ")
        assert debug[1].startswith("order 42 attempt 2: HTTP 200 in ")
        assert debug[1].endswith(" ms")
        assert len(warning) == 1
        assert warning[0].startswith("order 42: HTTP 503 ")
        assert warning[0].count("order 42") == 1
        assert "retry 1 of 3" in warning[0]


class Orders:
    """A MockTransport handler: each order is ready after a number of polls, or fails."""

    def __init__(
        self,
        *,
        polls: dict[int, int] | None = None,
        bodies: dict[int, bytes] | None = None,
        gate: asyncio.Event | None = None,
    ) -> None:
        self.polls = polls or {}
        self.bodies = bodies or {}
        self.gate = gate
        self.seen: list[int] = []
        self.query_types: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        """Answer one request (waiting on the gate first, when there is one)."""
        fields = form(request)
        order = int(fields["orderNumber"])
        self.seen.append(order)
        self.query_types.append(fields["queryType"])
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)
            if self.gate is not None:
                await self.gate.wait()
        finally:
            self.in_flight -= 1
        if order in self.bodies:
            return httpx.Response(200, content=self.bodies[order])
        if self.seen.count(order) <= self.polls.get(order, 0):
            return httpx.Response(200, content=PROCESSING)
        return httpx.Response(200, content=READY)


class TestWaitForCertificate:
    """Polling with the final query, backoff, deadline, errors, cancellation."""

    async def test_ready_order_costs_one_request(self, fake_time: ManualClock) -> None:
        """An order already issued is collected with exactly one request and no wait."""
        orders = Orders()
        async with fake_client(orders, fake_time) as client:
            result = await client.wait_for_certificate(5)
        assert result.status is Status.ATTACHED
        assert result.chain is not None
        assert orders.seen == [5]
        assert fake_time.sleeps == []

    @pytest.mark.parametrize("k", [1, 2, 5])
    async def test_ready_after_k_polls_costs_k_plus_one(
        self, fake_time: ManualClock, k: int
    ) -> None:
        """K 'processing' answers, then the certificate: k + 1 requests, all the final query."""
        orders = Orders(polls={5: k})
        async with fake_client(orders, fake_time) as client:
            result = await client.wait_for_certificate(5, poll_interval=2, max_poll_interval=8)
        assert result.status is Status.ATTACHED
        assert orders.seen == [5] * (k + 1)
        assert len(fake_time.sleeps) == k
        assert fake_time.sleeps[0] == 2
        assert all(2 <= s <= 8 for s in fake_time.sleeps)
        assert fake_time.sleeps == sorted(fake_time.sleeps)

    async def test_status_query_is_done_when_available(self, fake_time: ManualClock) -> None:
        """With QueryType.STATUS, AVAILABLE is enough."""
        orders = Orders(bodies={5: b"1\n"})
        async with fake_client(orders, fake_time) as client:
            result = await client.wait_for_certificate(5, query_type=QueryType.STATUS)
        assert result.status is Status.AVAILABLE
        assert orders.query_types == ["0"]
        assert orders.seen == [5]

    async def test_timeout(self, fake_time: ManualClock) -> None:
        """PollTimeoutError with the order and last status; no sleep runs past the deadline."""
        orders = Orders(polls={5: 10**6})
        async with fake_client(orders, fake_time) as client:
            with pytest.raises(PollTimeoutError) as caught:
                await client.wait_for_certificate(
                    5, timeout=100, poll_interval=5, max_poll_interval=30
                )
        assert caught.value.order_number == 5
        assert caught.value.last_status is Status.PROCESSING
        assert isinstance(caught.value, TimeoutError)
        assert sum(fake_time.sleeps) == pytest.approx(100)
        assert fake_time.now == pytest.approx(1100)

    async def test_retry_after_never_passes_the_deadline(self, fake_time: ManualClock) -> None:
        """A long Retry-After inside a short wait is cut at the deadline."""
        orders = Orders(bodies={5: b"-14\n"})
        policy = RetryPolicy(base_delay=50)
        async with fake_client(orders, fake_time, retry_policy=policy) as client:
            with pytest.raises(PollTimeoutError) as caught:
                await client.wait_for_certificate(5, timeout=10)
        assert fake_time.now == pytest.approx(1010)
        assert caught.value.last_status is None
        assert isinstance(caught.value.__cause__, UnknownServerError)

    async def test_rate_limit_wait_never_passes_the_deadline(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """A 429 asking for 100 s inside a 10 s wait ends at the deadline, the 429 as its cause."""
        route = router.post(DEFAULT_URL).respond(429, headers={"Retry-After": "100"})
        async with make_client(router, fake_time) as client:
            with pytest.raises(PollTimeoutError) as caught:
                await client.wait_for_certificate(5, timeout=10)
        assert route.call_count == 1
        assert fake_time.now == pytest.approx(1010)
        assert isinstance(caught.value.__cause__, TransportError)
        assert caught.value.__cause__.status_code == 429

    async def test_network_outage_is_not_still_processing(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """Refused until the deadline: PollTimeoutError names the refusal and has it as cause."""
        router.post(DEFAULT_URL).mock(side_effect=httpx.ConnectError("connection refused"))
        policy = RetryPolicy(max_retries=100, base_delay=2)
        async with make_client(router, fake_time, retry_policy=policy) as client:
            with pytest.raises(PollTimeoutError) as caught:
                await client.wait_for_certificate(5, timeout=10)
        assert fake_time.now == pytest.approx(1010)
        assert caught.value.last_status is None
        assert isinstance(caught.value.__cause__, TransportError)
        assert isinstance(caught.value.__cause__.__cause__, httpx.ConnectError)
        assert "last error: the request failed: connection refused" in str(caught.value)
        assert PASSWORD not in str(caught.value)

    async def test_a_later_answer_clears_the_last_error(
        self, router: respx.Router, fake_time: ManualClock
    ) -> None:
        """A failure healed by a 'processing' answer is not the cause of the later timeout."""
        router.post(DEFAULT_URL).mock(
            side_effect=[httpx.ConnectError("refused")]
            + [httpx.Response(200, content=PROCESSING)] * 50
        )
        async with make_client(router, fake_time) as client:
            with pytest.raises(PollTimeoutError) as caught:
                await client.wait_for_certificate(5, timeout=30, poll_interval=5)
        assert caught.value.__cause__ is None
        assert caught.value.last_status is Status.PROCESSING
        assert "last error" not in str(caught.value)

    async def test_non_transient_error_raised_at_once(self, fake_time: ManualClock) -> None:
        """A rejected order stops the polling with its SectigoError."""
        orders = Orders(bodies={5: b"-20\nThe certificate request has been rejected!\n"})
        async with fake_client(orders, fake_time) as client:
            with pytest.raises(CertificateRejectedError):
                await client.wait_for_certificate(5)
        assert orders.seen == [5]

    @pytest.mark.parametrize(
        "kwargs",
        [{"timeout": 0}, {"poll_interval": -1}, {"poll_interval": 10, "max_poll_interval": 5}],
        ids=repr,
    )
    async def test_bad_polling_options(
        self, fake_time: ManualClock, kwargs: dict[str, Any]
    ) -> None:
        """Nonsense polling options are refused before anything is sent."""
        orders = Orders()
        async with fake_client(orders, fake_time) as client:
            with pytest.raises(InvalidRequestError):
                await client.wait_for_certificate(5, **kwargs)
        assert orders.seen == []

    async def test_cancellation_is_clean(self, fake_time: ManualClock) -> None:
        """Cancelling a wait mid-request frees its concurrency slot for the next call."""
        gate = asyncio.Event()
        orders = Orders(gate=gate)
        async with fake_client(orders, fake_time, max_concurrency=1) as client:
            task = asyncio.create_task(client.wait_for_certificate(5))
            while not orders.seen:  # noqa: ASYNC110 -- watching a test double's counter
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            gate.set()
            assert (await client.collect(6)).status is Status.ATTACHED


class TestCollectMany:
    """Batches: lazy, bounded, one outcome per order, isolation, account-level stop, exits."""

    async def test_one_outcome_per_order_failures_isolated(self, fake_time: ManualClock) -> None:
        """Every order comes back once; a rejected one does not stop the rest."""
        orders = Orders(polls={3: 2}, bodies={4: b"-20\nrejected\n", 6: b"garbage\n"})
        async with fake_client(orders, fake_time, max_concurrency=2) as client:
            outcomes = [o async for o in client.collect_many(range(1, 11), poll_interval=1)]
        assert sorted(o.order_number for o in outcomes) == list(range(1, 11))
        by_order = {o.order_number: o for o in outcomes}
        assert isinstance(by_order[4].error, CertificateRejectedError)
        assert isinstance(by_order[6].error, ResponseFormatError)
        assert all(by_order[n].ok for n in (1, 2, 3, 5, 7, 8, 9, 10))
        assert by_order[3].unwrap().status is Status.ATTACHED
        assert orders.seen.count(3) == 3

    async def test_no_wait_processing_is_ok(self, fake_time: ManualClock) -> None:
        """wait=False: one request per order; a PROCESSING result is ok."""
        orders = Orders(polls={2: 5})
        async with fake_client(orders, fake_time) as client:
            outcomes = [o async for o in client.collect_many([1, 2], wait=False)]
        by_order = {o.order_number: o for o in outcomes}
        assert by_order[2].ok
        assert by_order[2].unwrap().status is Status.PROCESSING
        assert sorted(orders.seen) == [1, 2]

    async def test_async_iterable_and_numeric_strings(self, fake_time: ManualClock) -> None:
        """An async iterable is accepted; '7' is order 7."""

        async def source() -> AsyncIterator[int | str]:
            for order in (1, "7", 9):
                yield order

        async with fake_client(Orders(), fake_time) as client:
            outcomes = [o async for o in client.collect_many(source(), wait=False)]
        assert sorted(o.order_number for o in outcomes) == [1, 7, 9]

    async def test_slow_async_source_does_not_hold_back_outcomes(
        self, fake_time: ManualClock
    ) -> None:
        """A source that yields the next order only after seeing an outcome: no deadlock."""
        seen = asyncio.Event()

        async def source() -> AsyncIterator[int]:
            yield 1
            await seen.wait()  # e.g. a producer fed back by the consumer
            yield 2

        got: list[int] = []
        async with fake_client(Orders(), fake_time) as client:
            async with asyncio.timeout(5):
                async for outcome in client.collect_many(source(), wait=False):
                    got.append(outcome.order_number)
                    seen.set()
        assert got == [1, 2]

    @pytest.mark.parametrize("wait", [False, True], ids=["no-wait", "wait"])
    async def test_bad_order_number_is_its_own_outcome(
        self, fake_time: ManualClock, wait: bool
    ) -> None:
        """'12a' among 300 orders: its own InvalidRequestError, as given; the rest collected."""
        numbers: list[int | str] = [*range(1, 200), "12a", *range(200, 301)]
        orders = Orders()
        async with fake_client(orders, fake_time) as client:
            outcomes = [o async for o in client.collect_many(numbers, wait=wait)]
        assert len(outcomes) == 301
        (bad,) = [o for o in outcomes if not o.ok]
        assert bad.order_number == "12a"
        assert isinstance(bad.error, InvalidRequestError)
        assert sorted(o.order_number for o in outcomes if o.ok) == list(range(1, 301))
        assert sorted(orders.seen) == list(range(1, 301))  # no request for "12a"

    async def test_queue_time_does_not_count_against_an_order(self, fake_time: ManualClock) -> None:
        """Concurrency 1, 0.5 s per request, timeout 1.8 s: the fifth order is not timed out."""
        sent_at: list[float] = []

        async def slow(request: httpx.Request) -> httpx.Response:
            sent_at.append(fake_time.now)
            await asyncio.sleep(0)  # the other orders start meanwhile, as during real latency
            await fake_time.sleep(0.5)
            return READY_RESPONSE()

        client = fake_client(slow, fake_time, max_concurrency=1)
        async with client:
            outcomes = [o async for o in client.collect_many(range(1, 6), timeout=1.8)]
        assert [o.error for o in outcomes] == [None] * 5
        assert sent_at == [1000.0, 1000.5, 1001.0, 1001.5, 1002.0]

    async def test_an_order_deadline_runs_once_it_has_started(self, fake_time: ManualClock) -> None:
        """After its first request an order's timeout runs: a processing order times out."""
        orders = Orders(polls={1: 10**6})
        async with fake_client(orders, fake_time, max_concurrency=1) as client:
            outcomes = [o async for o in client.collect_many([1], timeout=30, poll_interval=5)]
        (outcome,) = outcomes
        assert isinstance(outcome.error, PollTimeoutError)
        assert outcome.error.last_status is Status.PROCESSING
        assert fake_time.now == pytest.approx(1030)

    async def test_untrusted_certificate_stops_the_batch(self, fake_time: ManualClock) -> None:
        """A TLS certificate not trusted: one attempt, every order that error, no retry."""
        attempts: list[httpx.Request] = []

        def refuse(request: httpx.Request) -> httpx.Response:
            attempts.append(request)
            exc = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
            exc.__cause__ = ssl.SSLCertVerificationError(1, "certificate verify failed")
            raise exc

        client = fake_client(refuse, fake_time, max_concurrency=1)
        async with client:
            outcomes = [o async for o in client.collect_many(range(1, 51), poll_interval=1)]
        assert len(attempts) == 1
        assert fake_time.sleeps == []
        assert sorted(o.order_number for o in outcomes) == list(range(1, 51))
        errors = [o.error for o in outcomes]
        assert all(isinstance(e, TransportError) and stops_batch(e) for e in errors)
        assert all(f"order {o.order_number}:" in str(o.error) for o in outcomes)
        assert all("TLS certificate was not trusted" in str(e) for e in errors)

    async def test_a_stop_ends_the_orders_in_progress_without_a_request(
        self, fake_time: ManualClock
    ) -> None:
        """Orders in a poll wait when -16 arrives end at once with it, without another request."""
        polled: list[int] = []
        all_waiting = asyncio.Event()

        async def answer(request: httpx.Request) -> httpx.Response:
            order = int(form(request)["orderNumber"])
            polled.append(order)
            if order == 9:
                await all_waiting.wait()
                return httpx.Response(200, content=b"-16\nIncorrect login details\n")
            return httpx.Response(200, content=PROCESSING)

        waits: list[float] = []

        async def endless_poll_wait(seconds: float) -> None:
            waits.append(seconds)
            if len(waits) == 19:
                all_waiting.set()
            await asyncio.Event().wait()  # only the batch's stop can end it

        client = fake_client(answer, fake_time, max_concurrency=8, sleep=endless_poll_wait)
        async with client, asyncio.timeout(5):
            outcomes = [o async for o in client.collect_many(range(1, 21), poll_interval=1)]
        assert len(outcomes) == 20
        assert all(isinstance(o.error, AuthenticationError) for o in outcomes)
        assert {o.error.order_number for o in outcomes if o.error} == set(range(1, 21))
        assert sorted(polled) == list(range(1, 21))

    async def test_a_failing_source_ends_the_batch_with_its_error(
        self, fake_time: ManualClock
    ) -> None:
        """An order source that raises: the batch raises that error and leaves no task behind."""

        def source() -> Iterator[int]:
            yield 1
            raise OSError("the orders file went away")

        before = asyncio.all_tasks()
        async with fake_client(Orders(), fake_time) as client:
            with pytest.raises(OSError, match="went away"):
                [o async for o in client.collect_many(source(), wait=False)]
        assert asyncio.all_tasks() - before == set()

    async def test_bad_options_raise_before_iterating(self, fake_time: ManualClock) -> None:
        """Invalid options fail at the call, before any order is read."""
        async with fake_client(Orders(), fake_time) as client:
            with pytest.raises(InvalidRequestError):
                client.collect_many(
                    [1], query_type=QueryType.STATUS, response_type=ResponseType.PKCS7
                )
            with pytest.raises(InvalidRequestError):
                client.collect_many([1], max_active=0)

    @sectigo_codes(-1, -2, -3, -16, -17)
    async def test_account_level_error_stops_the_batch(
        self, fake_time: ManualClock, body: bytes, error: type[SectigoError]
    ) -> None:
        """-1/-2/-3/-16/-17: no further request; every remaining order (even unread) gets it."""
        read: list[int] = []

        def source() -> Iterator[int]:
            for order in range(1, 1001):
                read.append(order)
                yield order

        orders = Orders(bodies=dict.fromkeys(range(1, 1001), body))
        async with fake_client(orders, fake_time, max_concurrency=1) as client:
            outcomes = [o async for o in client.collect_many(source(), wait=False)]
        assert len(outcomes) == 1000
        assert len(read) == 1000
        assert all(type(o.error) is error for o in outcomes)
        numbers = {o.error.order_number for o in outcomes if isinstance(o.error, error)}
        assert numbers == set(range(1, 1001))
        assert orders.seen == [1]

    @sectigo_codes(-4, -14, -20, -91)
    async def test_order_level_error_does_not_stop_the_batch(
        self, fake_time: ManualClock, body: bytes, error: type[SectigoError]
    ) -> None:
        """-4/-14/-20/-91 belong to one order: every order is still sent, each gets its own."""
        orders = Orders(bodies=dict.fromkeys(range(1, 9), body))
        async with fake_client(orders, fake_time, max_concurrency=1, max_retries=0) as client:
            outcomes = [o async for o in client.collect_many(range(1, 9), wait=False)]
        assert all(type(o.error) is error for o in outcomes)
        assert sorted(o.error.order_number for o in outcomes if o.error) == list(range(1, 9))
        assert sorted(orders.seen) == list(range(1, 9))

    async def test_outcomes_come_in_completion_order(self, fake_time: ManualClock) -> None:
        """Read as 3, 1, 2; ready after 2, 1 and 0 polls: yielded as 2, 1, 3."""
        orders = Orders(polls={3: 2, 1: 1})
        async with fake_client(orders, fake_time) as client:
            outcomes = [o async for o in client.collect_many([3, 1, 2], poll_interval=1)]
        assert [o.order_number for o in outcomes] == [2, 1, 3]
        assert all(o.ok for o in outcomes)

    @pytest.mark.parametrize("wait", [False, True], ids=["no-wait", "wait"])
    async def test_timeout_applies_only_when_waiting(
        self, fake_time: ManualClock, wait: bool
    ) -> None:
        """A 0.5 s answer 'processing' against timeout=0.001: ok without wait, timed out with it."""

        async def slow(request: httpx.Request) -> httpx.Response:
            await fake_time.sleep(0.5)
            return httpx.Response(200, content=PROCESSING)

        client = fake_client(slow, fake_time)
        async with client:
            (outcome,) = [o async for o in client.collect_many([5], wait=wait, timeout=0.001)]
        if wait:
            assert isinstance(outcome.error, PollTimeoutError)
        else:
            assert outcome.unwrap().status is Status.PROCESSING
        assert fake_time.sleeps == [0.5]  # one request, no poll wait either way

    async def test_account_level_error_ends_waiting_orders(self, fake_time: ManualClock) -> None:
        """Orders polling when -16 arrives are ended with it, not polled again."""
        bodies = {9: b"-16\nIncorrect login details\n"}
        orders = Orders(polls=dict.fromkeys(range(1, 21), 10**6), bodies=bodies)
        async with fake_client(orders, fake_time, max_concurrency=8) as client:
            outcomes = [o async for o in client.collect_many(range(1, 21), poll_interval=1)]
        assert len(outcomes) == 20
        assert all(isinstance(o.error, AuthenticationError) for o in outcomes)
        assert len(orders.seen) <= 20 + 8

    async def test_reads_the_source_lazily(self, fake_time: ManualClock) -> None:
        """Only about max_active orders are read ahead of the consumer."""
        read: list[int] = []

        def source() -> Iterator[int]:
            for order in range(1, 10**9):
                read.append(order)
                yield order

        async with fake_client(Orders(), fake_time, max_concurrency=4) as client:
            outcomes = client.collect_many(source(), wait=False)
            first = await anext(outcomes)
            assert first.ok
            assert len(read) <= 4 + 1
            await outcomes.aclose()  # type: ignore[attr-defined]

    async def test_concurrency_bound(self, fake_time: ManualClock) -> None:
        """No more than max_concurrency requests are ever in flight, across batches."""
        orders = Orders(polls=dict.fromkeys(range(100), 1))
        async with fake_client(orders, fake_time, max_concurrency=3) as client:
            first = client.collect_many(range(1, 40), poll_interval=1)
            second = client.collect_many(range(40, 80), wait=False)

            async def drain(batch: AsyncIterator[Any]) -> int:
                return len([o async for o in batch])

            counts = await asyncio.gather(drain(first), drain(second))
        assert list(counts) == [39, 40]
        assert orders.max_in_flight == 3

    async def test_requests_per_second(self, fake_time: ManualClock) -> None:
        """A requests-per-second limit spaces request starts evenly."""
        orders = Orders()
        async with fake_client(orders, fake_time, requests_per_second=2) as client:
            for order in range(1, 5):
                await client.collect(order)
        assert fake_time.now == pytest.approx(1001.5)

    @pytest.mark.parametrize("how", ["break", "aclose", "client-close"])
    async def test_leaving_early_leaves_no_task(self, fake_time: ManualClock, how: str) -> None:
        """Breaking out, closing the iterator or closing the client cancels what is in flight."""
        gate = asyncio.Event()
        orders = Orders(gate=gate, bodies={1: READY})
        before = asyncio.all_tasks()
        client = fake_client(orders, fake_time, max_concurrency=4)
        batch = client.collect_many(range(1, 10**9), wait=False)
        first = asyncio.ensure_future(anext(batch))
        while orders.in_flight < 4:  # noqa: ASYNC110 -- watching a test double's counter
            await asyncio.sleep(0)
        if how == "client-close":
            await client.aclose()
            with pytest.raises(ClientClosedError, match="closed"):
                await first
        else:
            gate.set()
            assert (await first).ok
            if how == "aclose":
                await batch.aclose()  # type: ignore[attr-defined]
            else:
                async for _ in batch:
                    break
                del batch
            await client.aclose()
        for _ in range(5):
            await asyncio.sleep(0)
        assert asyncio.all_tasks() - before == set()
        assert orders.in_flight == 0

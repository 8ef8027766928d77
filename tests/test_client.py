"""CollectClient against respx: the request on the wire, construction, credentials, secrets."""

from __future__ import annotations

import inspect
import logging
import ssl
import sys
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from client_fakes import (
    PASSWORD,
    READY,
    READY_RESPONSE,
    form,
    make_client,
    router_fixture,  # noqa: F401 -- the "router" fixture these tests take
)

from smime_collect import (
    DEFAULT_URL,
    ClientClosedError,
    CollectClient,
    CollectError,
    InvalidRequestError,
    QueryType,
    ResponseEncoding,
    ResponseFormatError,
    ResponseType,
    Status,
    TransportError,
)
from smime_collect._client import _transports
from smime_collect.testing import ManualClock


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

"""A canary password through every path, failures included: it never shows anywhere but the body.

Where it must not appear: ``repr()``/``str()`` of any public object, any log record of
any logger at DEBUG (the library's, httpx's, httpcore's, aiohttp's, uvicorn's), any exception
message or formatted traceback (``traceback.format_exception``, chained causes included), the URL
or a header the server sees.  And an ``http://`` URL or a server certificate that is not trusted
stops before the password is sent.

Each test first proves the canary did reach the server where it belongs (the POST body), so the
"nowhere else" assertions cannot pass by accident.  Every leak check looks for the canary as
written and urlencoded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from smime_collect import (
    AuthenticationError,
    CollectClient,
    CollectError,
    CollectOutcome,
    CollectRequest,
    InvalidRequestError,
    PollTimeoutError,
    ResponseFormatError,
    Status,
    TransportError,
)
from smime_collect._cli import main
from smime_collect.testing import (
    Chaos,
    Fault,
    ManualClock,
    OrderState,
    RunningServer,
    Simulator,
    serve,
)
from smime_collect.testing._asgi import Receive, Scope, Send

pytestmark = pytest.mark.network

LOGIN = "canary-login"
# Distinctive, with characters that urlencoding changes, so both spellings are searched.
CANARY = "C4nary/pa55 w0rd&=+%"
WRONG = "Wr0ng/canary&=+%"
SECRETS = (CANARY, WRONG)
SPELLINGS = tuple(
    spelling
    for secret in SECRETS
    for spelling in {secret, urllib.parse.quote_plus(secret), urllib.parse.quote(secret, safe="")}
)


def assert_no_secret(texts: Iterable[str | bytes], where: str) -> None:
    """No canary spelling in any of ``texts``."""
    for text in texts:
        blob = text if isinstance(text, str) else text.decode("utf-8", "replace")
        for spelling in SPELLINGS:
            assert spelling not in blob, f"the password leaked into {where}: {blob[:300]!r}"


def error_texts(error: BaseException) -> Iterator[str]:
    """str, repr and the formatted traceback of an error and of every error in its chain."""
    yield "".join(traceback.format_exception(error))
    seen: BaseException | None = error
    for _ in range(10):
        if seen is None:
            break
        yield str(seen)
        yield repr(seen)
        # httpx errors carry the request (and HTTPStatusError the response): their text too.
        for carried in (getattr(seen, "_request", None), getattr(seen, "response", None)):
            if isinstance(carried, httpx.Request | httpx.Response):
                yield repr(carried)
                yield repr(carried.headers)
            if isinstance(carried, httpx.Request):
                yield str(carried.url)
        seen = seen.__cause__ or seen.__context__


def record_texts(records: Iterable[logging.LogRecord]) -> Iterator[str]:
    """Each record's message, its raw arguments and its fully formatted form (traceback too)."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in records:
        yield record.getMessage()
        yield repr(record.args)
        yield formatter.format(record)


@attrs.define
class RecordingSimulator(Simulator):
    """The simulator, recording what the server sees of each request: path, query, headers, body."""

    seen: list[dict[str, Any]] = attrs.field(factory=list, init=False)

    @property
    def app(self) -> Any:
        """The simulator's ASGI app, behind a recorder."""
        inner = super().app

        async def recording(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await inner(scope, receive, send)
                return
            entry: dict[str, Any] = {
                "method": scope["method"],
                "path": scope["path"],
                "raw_path": scope.get("raw_path", b""),
                "query": scope["query_string"],
                "headers": list(scope["headers"]),
                "body": b"",
            }
            self.seen.append(entry)

            async def receive_and_record() -> Any:
                message = await receive()
                entry["body"] += message.get("body", b"")
                return message

            await inner(scope, receive_and_record, send)

        return recording


def recording_simulator(**kwargs: Any) -> RecordingSimulator:
    """A recording simulator with the canary account and a few orders."""
    kwargs.setdefault("chaos", Chaos(retry_after=None, stall_seconds=10.0))
    sim = RecordingSimulator(seed=5, **kwargs)
    sim.add_account(LOGIN, CANARY)
    sim.add_orders(range(1, 6))
    sim.add_order(6, ready_after_polls=1_000)
    sim.add_order(7, state=OrderState.REVOKED)
    return sim


def canary_client(server: RunningServer, fake: ManualClock, **kwargs: Any) -> CollectClient:
    """The canary account's client on the loopback TLS server: fake time, a short read timeout."""
    return CollectClient(
        LOGIN,
        CANARY,
        base_url=server.url,
        verify=server.ssl_context(),
        timeout=httpx.Timeout(10.0, read=0.3),
        sleep=fake.sleep,
        clock=fake,
        **kwargs,
    )


def assert_server_saw_password_only_in_bodies(sim: RecordingSimulator) -> None:
    """The canary reached the server, in the POST body's loginPassword, and nowhere else."""
    assert sim.seen, "the server saw no request"
    for entry in sim.seen:
        assert entry["method"] == "POST"
        fields = urllib.parse.parse_qs(entry["body"].decode("ascii"))
        assert fields["loginPassword"] in ([CANARY], [WRONG])
        assert_no_secret([entry["path"], entry["raw_path"], entry["query"]], "the URL")
        assert_no_secret([name + b": " + value for name, value in entry["headers"]], "a header")


async def _collect_errors(client: CollectClient, sim: RecordingSimulator) -> list[CollectError]:
    """Drive the client down every failure path; return the errors raised."""
    errors: list[CollectError] = []

    async def expect(error_type: type[CollectError], call: Any) -> None:
        with pytest.raises(error_type) as caught:
            await call
        errors.append(caught.value)

    sim.inject(Fault.HTTP_503, order_number=1, times=4)  # retries exhausted: an HTTP status
    await expect(TransportError, client.collect(1))
    sim.inject(Fault.DROP_CONNECTION, order_number=1, times=4)  # retries exhausted: network
    await expect(TransportError, client.collect(1))
    sim.inject(Fault.TRUNCATED_BODY, order_number=1, times=4)
    await expect(TransportError, client.collect(1))
    sim.inject(Fault.TIMEOUT, order_number=1, times=4)
    await expect(TransportError, client.collect(1))
    sim.inject(Fault.OVERSIZED_BODY, order_number=1)
    await expect(ResponseFormatError, client.collect(1))
    sim.inject(Fault.ERROR_14, order_number=1, times=4)
    await expect(CollectError, client.collect(1))
    await expect(CollectError, client.collect(7))  # -21 revoked
    await expect(CollectError, client.collect(999))  # -4 unknown order
    await expect(PollTimeoutError, client.wait_for_certificate(6, timeout=30, poll_interval=1))
    # A success, so success paths are logged too.
    result = await client.collect(2)
    assert result.status is Status.ATTACHED
    return errors


def test_the_leak_check_finds_each_spelling() -> None:
    """The checker itself: the canary, urlencoded either way, in a larger text, is caught."""
    for spelling in (CANARY, urllib.parse.quote_plus(CANARY), urllib.parse.quote(CANARY, safe="")):
        with pytest.raises(AssertionError, match="leaked"):
            assert_no_secret([f"... loginPassword={spelling}&orderNumber=1 ..."], "a test")


class TestClientPaths:
    """The library's own paths over loopback TLS, every logger at DEBUG."""

    async def test_every_failure_path(
        self, transport_kind: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """503, drops, truncation, timeouts, oversize, -14, -21, -4, poll timeout, then success."""
        sim = recording_simulator()
        fake = ManualClock()
        caplog.set_level(logging.DEBUG)  # the root logger: every library's records propagate
        async with serve(sim) as server:
            client = canary_client(server, fake)
            async with client:
                errors = await _collect_errors(client, sim)
                texts = [repr(client), str(client), client.base_url]
        assert len(errors) == 9
        assert_server_saw_password_only_in_bodies(sim)
        loggers = {record.name.split(".")[0] for record in caplog.records}
        assert "smime_collect" in loggers
        if transport_kind == "httpcore":
            assert "httpcore" in loggers  # the capture reaches the HTTP stack's own records
        assert any(record.levelno == logging.DEBUG for record in caplog.records)
        assert_no_secret(record_texts(caplog.records), "a log record")
        for error in errors:
            assert_no_secret(error_texts(error), f"a {type(error).__name__}")
        assert_no_secret(texts, "the client's repr")

    async def test_events_spans_metrics_and_log_fields(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Every event, span attribute, metric attribute and log field of every path is clean."""
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        meter_provider = MeterProvider(metric_readers=[reader])
        events: list[object] = []
        sim = recording_simulator()
        fake = ManualClock()
        caplog.set_level(logging.DEBUG)
        async with serve(sim) as server:
            client = canary_client(
                server,
                fake,
                on_event=events.append,
                tracer_provider=tracer_provider,
                meter_provider=meter_provider,
            )
            async with client:
                await _collect_errors(client, sim)
                [o async for o in client.collect_many([1, 7, 999], wait=False)]
        assert_server_saw_password_only_in_bodies(sim)
        assert len(events) > 20
        assert_no_secret([repr(event) for event in events], "an event")
        for event in events:
            error = getattr(event, "error", None)
            if error is not None:
                assert_no_secret(error_texts(error), "an event's error")
        spans = exporter.get_finished_spans()
        assert len(spans) > 20
        assert_no_secret(
            [json.dumps(dict(span.attributes or {}), default=str) for span in spans]
            + [str(span.status.description) for span in spans]
            + [str(event.attributes) for span in spans for event in span.events],
            "a span attribute",
        )
        data = reader.get_metrics_data()
        assert data is not None
        points = [
            json.dumps(dict(point.attributes or {}), default=str)
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            for point in metric.data.data_points
        ]
        assert len(points) >= 4
        assert_no_secret(points, "a metric attribute")
        standard = set(vars(logging.makeLogRecord({})))
        fields = [
            json.dumps({k: v for k, v in vars(r).items() if k not in standard}, default=str)
            for r in caplog.records
        ]
        assert any('"order_number"' in field for field in fields)
        assert_no_secret(fields, "a structured log field")
        tracer_provider.shutdown()
        meter_provider.shutdown()

    async def test_bad_login_and_batch_outcomes(self, caplog: pytest.LogCaptureFixture) -> None:
        """-16 on a batch: every outcome, its error and its traceback are clean."""
        sim = recording_simulator()
        caplog.set_level(logging.DEBUG)
        async with serve(sim) as server:
            async with CollectClient(
                LOGIN, WRONG, base_url=server.url, verify=server.ssl_context(), max_concurrency=1
            ) as client:
                outcomes = [o async for o in client.collect_many(range(1, 8), wait=False)]
            async with CollectClient(
                LOGIN, CANARY, base_url=server.url, verify=server.ssl_context()
            ) as client:
                mixed = [o async for o in client.collect_many([1, 2, 7, 999], wait=False)]
        assert len(outcomes) == 7
        assert all(isinstance(o.error, AuthenticationError) for o in outcomes)
        assert sim.stats.failed_logins == 1
        assert {o.ok for o in mixed} == {True, False}
        assert_server_saw_password_only_in_bodies(sim)
        assert_no_secret(record_texts(caplog.records), "a log record")
        for outcome in outcomes + mixed:
            assert_no_secret([repr(outcome), str(outcome)], "a CollectOutcome")
            if outcome.result is not None:
                assert_no_secret([repr(outcome.result), str(outcome.result)], "a CollectResult")
            if outcome.error is not None:
                assert_no_secret(error_texts(outcome.error), "an outcome's error")

    def test_request_and_models(self) -> None:
        """form_fields is the one carrier; CollectRequest and CollectOutcome never show it."""
        request = CollectRequest(5, show_validity_period=True)
        fields = request.form_fields(LOGIN, CANARY)
        assert fields["loginPassword"] == CANARY  # the one documented carrier
        outcome = CollectOutcome(5, error=AuthenticationError(-16, "Incorrect login", 5))
        assert_no_secret([repr(request), str(request), repr(outcome)], "a model's repr")

    @pytest.mark.parametrize(
        "password",
        ["x" * 129 + CANARY, CANARY + "\x00" * 120],
        ids=["too-long", "too-long-with-nul"],
    )
    def test_refused_credentials_are_not_echoed(self, password: str) -> None:
        """A password over 128 characters is refused without being quoted back."""
        with pytest.raises(InvalidRequestError) as caught:
            CollectClient(LOGIN, password)
        assert_no_secret(error_texts(caught.value), "the InvalidRequestError")

    def test_from_env_file(self, tmp_path: Path) -> None:
        """SECTIGO_LOGIN_PASSWORD_FILE: read, newline stripped, never shown."""
        secret_file = tmp_path / "password"
        secret_file.write_text(CANARY + "\n", encoding="utf-8")
        environ = {"SECTIGO_LOGIN_NAME": LOGIN, "SECTIGO_LOGIN_PASSWORD_FILE": str(secret_file)}
        client = CollectClient.from_env(environ=environ)
        request = CollectRequest(1)
        assert request.form_fields(LOGIN, CANARY) == request.form_fields(
            LOGIN, client._login_password
        )
        assert_no_secret([repr(client), str(client)], "the client's repr")


class TestStopsBeforeSending:
    """No password leaves the process over plain HTTP or to an untrusted server."""

    async def test_plain_http_is_refused_before_sending(self) -> None:
        """An http:// URL: InvalidRequestError at construction; the server sees no request."""
        sim = recording_simulator(require_https=False)
        async with serve(sim, tls=False) as server:
            assert server.url.startswith("http://")
            with pytest.raises(InvalidRequestError, match="plain HTTP") as caught:
                CollectClient(LOGIN, CANARY, base_url=server.url)
            await asyncio.sleep(0.05)  # a request, had one been sent, would have arrived
        assert sim.seen == []
        assert sim.stats.requests_total == 0
        assert_no_secret(error_texts(caught.value), "the InvalidRequestError")

    @pytest.mark.usefixtures("transport_kind")
    async def test_untrusted_certificate_sends_nothing(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """TLS verification fails: TransportError, no retry, the server never sees a request."""
        sim = recording_simulator()
        fake = ManualClock()
        caplog.set_level(logging.DEBUG)
        async with (
            serve(sim) as server,
            CollectClient(
                LOGIN, CANARY, base_url=server.url, sleep=fake.sleep, clock=fake
            ) as client,
        ):
            with pytest.raises(TransportError, match="TLS certificate") as caught:
                await client.collect(1)
            outcomes = [o async for o in client.collect_many([1, 2], wait=False)]
        assert sim.seen == []
        assert sim.stats.requests_total == 0
        assert fake.now == 0.0  # no backoff: a refused certificate is not retried
        assert all(isinstance(o.error, TransportError) for o in outcomes)
        assert_no_secret(error_texts(caught.value), "the TransportError")
        assert_no_secret(record_texts(caplog.records), "a log record")

    @pytest.mark.parametrize(
        "url",
        [
            f"http://{LOGIN}:{urllib.parse.quote(CANARY, safe='')}@example.test/x",
            f"https://{LOGIN}:{urllib.parse.quote(CANARY, safe='')}@example.test/x",
            f"ftp://{LOGIN}:{urllib.parse.quote(CANARY, safe='')}@example.test/x",
            f"https://{LOGIN}:{urllib.parse.quote(CANARY, safe='')}@[::1/x",
        ],
        ids=["http-with-userinfo", "https-with-userinfo", "ftp-with-userinfo", "unparsable"],
    )
    def test_credentials_in_a_refused_url_are_not_echoed(self, url: str) -> None:
        """A refused base_url carrying user:password is not quoted back in the error."""
        with pytest.raises(InvalidRequestError) as caught:
            CollectClient(LOGIN, "another-password", base_url=url)
        assert_no_secret(error_texts(caught.value), "the InvalidRequestError")


class TestCommandLine:
    """smime-collect over loopback TLS with --ca-bundle: --password-file and the _FILE variable."""

    @pytest.fixture
    def clean_env(self, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
        """No Sectigo credentials in the environment."""
        for name in (
            "SECTIGO_LOGIN_NAME",
            "SECTIGO_LOGIN_PASSWORD",
            "SECTIGO_LOGIN_NAME_FILE",
            "SECTIGO_LOGIN_PASSWORD_FILE",
        ):
            monkeypatch.delenv(name, raising=False)
        return monkeypatch

    @pytest.mark.parametrize("source", ["--password-file", "SECTIGO_LOGIN_PASSWORD_FILE"])
    async def test_collect_success_failure_and_bad_login(
        self,
        source: str,
        clean_env: pytest.MonkeyPatch,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Collected, revoked, retried and failed orders, then -16: output, files and logs clean."""
        sim = recording_simulator()
        sim.inject(Fault.HTTP_503, order_number=2, times=1)  # retried, then collected
        sim.inject(Fault.DROP_CONNECTION, order_number=3, times=10)  # retries exhausted
        caplog.set_level(logging.DEBUG)
        right, wrong = tmp_path / "right", tmp_path / "wrong"
        right.write_text(CANARY + "\n", encoding="utf-8")
        wrong.write_text(WRONG + "\n", encoding="utf-8")
        clean_env.setenv("SECTIGO_LOGIN_NAME", LOGIN)
        out = tmp_path / "out"

        def argv(password_file: Path, *orders: str) -> list[str]:
            arguments = ["collect", *orders, "--out", str(out), "--json", "--max-retries", "1"]
            arguments += ["--concurrency", "1"]  # so -16 is sent exactly once
            arguments += ["--base-url", server.url, "--ca-bundle", str(server.ca_pem_path)]
            if source == "--password-file":
                return [*arguments, "--password-file", str(password_file)]
            clean_env.setenv("SECTIGO_LOGIN_PASSWORD_FILE", str(password_file))
            return arguments

        async with serve(sim) as server:
            assert server.ca_pem_path is not None
            status = await asyncio.to_thread(main, argv(right, "1", "2", "3", "7"))
            first_out, first_err = capsys.readouterr()
            bad_status = await asyncio.to_thread(main, argv(wrong, "4", "5"))
            second_out, second_err = capsys.readouterr()
        assert status == 1  # 3 (dropped every time) and 7 (revoked) failed
        reports = {line["order_number"]: line for line in map(json.loads, first_out.splitlines())}
        assert [reports[n]["ok"] for n in (1, 2, 3, 7)] == [True, True, False, False]
        assert bad_status == 2  # -16: a configuration error
        assert sim.stats.failed_logins == 1
        assert_server_saw_password_only_in_bodies(sim)
        assert_no_secret([first_out, first_err, second_out, second_err], "the command's output")
        assert_no_secret(record_texts(caplog.records), "a log record")
        written = [path for path in out.rglob("*") if path.is_file()]
        assert len(written) >= 2 * 5  # orders 1 and 2: cert, chain, fullchain, root, payload, meta
        assert_no_secret([path.read_bytes() for path in written], "a written file")

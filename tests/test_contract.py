"""The client, checked through the public API only.

Written from the outside, the way a user would: ``import smime_collect`` and the simulator in
``smime_collect.testing``.  Everything else once checked here from the outside is tested in its
own module (``test_models``, ``test_response_rules``, ``test_exceptions``, ``test_simulator``,
``test_certs``, ``test_certs_errors``, ``test_chain``, ``test_cli``); the ``test_5_`` tests here
await the same fold into the client's tests.  Nothing waits for real: every client gets a
recording ``sleep`` and a manual clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
import traceback
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

import smime_collect as sc
from smime_collect.testing import Chaos, Fault, ManualClock, OrderState, Simulator

LOGIN = "contract-user"
PASSWORD = "pw-Xyzzy-7c1e-SECRET"  # unusual enough to search every output for
QT, ST = sc.QueryType, sc.Status
FROZEN = attrs.exceptions.FrozenInstanceError
CODES = {
    -1: sc.HttpsRequiredError, -2: sc.UnrecognisedArgumentError, -3: sc.MissingArgumentError,
    -4: sc.InvalidArgumentError, -14: sc.UnknownServerError, -16: sc.AuthenticationError,
    -42: sc.CallLimitError, -17: sc.PostRequiredError, -20: sc.CertificateRejectedError,
    -21: sc.CertificateRevokedError, -22: sc.AwaitingPaymentError, -91: sc.PermissionDeniedError,
}  # fmt: skip


class Sleeps:
    """An async no-op ``sleep`` that records each wait and advances its own manual clock."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        # With a no-op sleep and the real monotonic clock, the client's shared 429 slow-down
        # would spin until real time caught up: the clock must move with the sleeps.
        self.clock = ManualClock()

    async def __call__(self, seconds: float) -> None:
        """Record the wait, move the clock, yield once."""
        self.calls.append(seconds)
        self.clock.advance(max(seconds, 0.0))
        await asyncio.sleep(0)


def make_sim(**kwargs: Any) -> Simulator:
    """A seeded simulator with the test account."""
    sim = Simulator(seed=1, **kwargs)
    sim.add_account(LOGIN, PASSWORD)
    return sim


def make_client(sim: Simulator, sleeps: Sleeps | None = None, **kwargs: Any) -> sc.CollectClient:
    """A client on the simulator's in-process transport that never waits for real."""
    sleeps = sleeps or Sleeps()
    kwargs.setdefault("http_client", sim.http_client())
    kwargs.setdefault("sleep", sleeps)
    kwargs.setdefault("clock", sleeps.clock)
    kwargs.setdefault("base_url", sim.url)
    return sc.CollectClient(LOGIN, PASSWORD, **kwargs)


def mock_client(handler: Any, **kwargs: Any) -> sc.CollectClient:
    """A client whose every request is answered by ``handler``."""
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    sleeps = Sleeps()
    return sc.CollectClient(
        LOGIN, PASSWORD, http_client=http, sleep=sleeps, clock=sleeps.clock, **kwargs
    )


async def spin(times: int = 50) -> None:
    """Let other tasks run."""
    for _ in range(times):
        await asyncio.sleep(0)


def other_tasks() -> set[asyncio.Task[Any]]:
    """Every task but the running one."""
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


# -- 5. the client ---------------------------------------------------------------------------


def test_5_default_url_and_documented_defaults() -> None:
    """DEFAULT_URL and the documented defaults of the constructor and the methods."""
    assert sc.DEFAULT_URL == "https://secure.trust-provider.com/products/download/CollectSMIME"
    p = inspect.signature(sc.CollectClient).parameters
    assert (p["base_url"].default, p["timeout"].default, p["max_retries"].default) == (
        sc.DEFAULT_URL,
        60.0,
        3,
    )
    assert (p["http_client"].default, p["allow_insecure_http"].default) == (None, False)
    assert (p["max_response_bytes"].default, p["max_concurrency"].default <= 4) == (4 << 20, True)
    w = inspect.signature(sc.CollectClient.wait_for_certificate).parameters
    assert (w["timeout"].default, w["poll_interval"].default, w["max_poll_interval"].default) == (
        600.0,
        5.0,
        60.0,
    )
    assert inspect.signature(sc.CollectClient.collect_many).parameters["wait"].default is True


@pytest.mark.parametrize(
    ("args", "base_url"),
    [(("", PASSWORD), None), ((LOGIN, ""), None), (("a" * 65, PASSWORD), None),
     ((LOGIN, PASSWORD * 7), None), ((LOGIN, PASSWORD), "http://example.test/CollectSMIME"),
     ((LOGIN, PASSWORD), "HTTP://example.test/CollectSMIME"), ((LOGIN, PASSWORD), "ftp://x.test/")],
)  # fmt: skip
async def test_5_constructor_refuses_before_sending(
    args: tuple[str, str], base_url: str | None
) -> None:
    """Empty or over-long credentials and an http:// URL raise InvalidRequestError."""
    sim = make_sim()
    with pytest.raises(sc.InvalidRequestError) as info:
        sc.CollectClient(*args, http_client=sim.http_client(), base_url=base_url or sc.DEFAULT_URL)
    assert (PASSWORD in str(info.value), sim.stats.requests_total) == (False, 0)


@pytest.mark.parametrize("timeout", [0.5, 60.0, httpx.Timeout(5.0, connect=2.0)])
async def test_5_client_options_and_given_http_client(timeout: Any) -> None:  # noqa: ASYNC109
    """Timeout takes a float or httpx.Timeout; a given http_client is used and left open."""
    sim = make_sim()
    sim.add_order(5)
    http = sim.http_client()
    async with make_client(sim, http_client=http, timeout=timeout) as client:
        assert (await client.collect(5)).chain.end_entity is not None
    assert (http.is_closed, sim.stats.requests_total) == (False, 1)
    plain = sim.url.replace("https:", "http:")
    async with make_client(
        sim, http_client=http, base_url=plain, allow_insecure_http=True
    ) as client:
        with pytest.raises(sc.HttpsRequiredError):  # allowed locally, refused by the endpoint
            await client.collect(5)
    assert (http.is_closed, sim.stats.requests_total) == (False, 2)
    await http.aclose()


@pytest.mark.parametrize("via_file", [False, True])
async def test_5_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, via_file: bool) -> None:
    """from_env reads the variables or their _FILE variants (trailing newline stripped)."""
    for name in ("SECTIGO_LOGIN_NAME", "SECTIGO_LOGIN_PASSWORD"):
        value = LOGIN if name.endswith("NAME") else PASSWORD
        monkeypatch.delenv(name + ("" if via_file else "_FILE"), raising=False)
        if via_file:
            (tmp_path / name).write_text(value + "\n")
        monkeypatch.setenv(
            name + ("_FILE" if via_file else ""), str(tmp_path / name) if via_file else value
        )
    sim = make_sim()
    sim.add_order(5)
    async with sc.CollectClient.from_env(base_url=sim.url, http_client=sim.http_client()) as client:
        assert (await client.collect(5)).status is ST.ATTACHED
        assert PASSWORD not in repr(client) + str(client)
    for name in ("SECTIGO_LOGIN_PASSWORD", "SECTIGO_LOGIN_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(sc.InvalidRequestError, match="SECTIGO_LOGIN_PASSWORD"):
        sc.CollectClient.from_env()


async def test_5_response_cap_stops_reading() -> None:
    """A body over max_response_bytes raises ResponseFormatError before it is read to the end."""
    pulled: list[int] = []

    class Endless(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b"2\n"
            for i in range(10_000):
                pulled.append(i)
                yield b"A" * 1023 + b"\n"

    client = mock_client(lambda _: httpx.Response(200, stream=Endless()), max_response_bytes=65536)
    with pytest.raises(sc.ResponseFormatError):
        await client.collect(5)
    assert len(pulled) < 1000
    sim = make_sim()
    sim.add_order(5)
    sim.inject(Fault.OVERSIZED_BODY)
    with pytest.raises(sc.ResponseFormatError):
        await make_client(sim).collect(5)


TRANSIENT = [Fault.HTTP_429, Fault.HTTP_500, Fault.HTTP_502, Fault.HTTP_503, Fault.HTTP_504,
             Fault.ERROR_14, Fault.ERROR_42, Fault.DROP_CONNECTION, Fault.TRUNCATED_BODY,
             Fault.TIMEOUT]  # fmt: skip


@pytest.mark.parametrize("fault", TRANSIENT, ids=lambda f: f.value)
async def test_5_transient_failures_are_retried(fault: Fault) -> None:
    """Each transient failure is retried after a wait: max_retries failures, then success."""
    sim = make_sim()
    sim.add_order(5)
    sim.inject(fault, times=3, order_number=5)
    sleeps = Sleeps()
    result = await make_client(sim, sleeps).collect(5)
    assert (result.status, sim.stats.requests_by_order[5]) == (ST.ATTACHED, 4)
    assert (len(sleeps.calls) >= 3, min(sleeps.calls) > 0) == (True, True)


@pytest.mark.parametrize(
    ("fault", "error", "status_code"),
    [(Fault.HTTP_503, sc.TransportError, 503), (Fault.HTTP_429, sc.TransportError, 429),
     (Fault.DROP_CONNECTION, sc.TransportError, None), (Fault.TIMEOUT, sc.TransportError, None),
     (Fault.ERROR_14, sc.UnknownServerError, None), (Fault.ERROR_42, sc.CallLimitError, None)],
)  # fmt: skip
async def test_5_retries_run_out_with_the_last_error(
    fault: Fault, error: type, status_code: Any
) -> None:
    """After max_retries, the last error: its SectigoError, or TransportError with its cause."""
    sim = make_sim()
    sim.add_order(5)
    sim.inject(fault, times=10)
    with pytest.raises(error) as info:
        await make_client(sim, max_retries=2).collect(5)
    assert sim.stats.requests_total == 3
    if error is sc.TransportError:
        cause = httpx.HTTPStatusError if status_code else httpx.HTTPError
        assert (info.value.status_code, isinstance(info.value.__cause__, cause)) == (
            status_code,
            True,
        )


@pytest.mark.parametrize("status", [301, 400, 401, 403, 404, 413, 501, 505])
async def test_5_other_http_statuses_fail_at_once(status: int) -> None:
    """Any other HTTP status is a TransportError at once, without retry."""
    calls: list[httpx.Request] = []
    client = mock_client(lambda r: calls.append(r) or httpx.Response(status, text="no\n"))
    with pytest.raises(sc.TransportError) as info:
        await client.collect(5)
    assert (len(calls), info.value.status_code) == (1, status)
    assert isinstance(info.value.__cause__, httpx.HTTPStatusError)


@pytest.mark.parametrize(
    ("state", "error"),
    [(OrderState.REJECTED, sc.CertificateRejectedError),
     (OrderState.REVOKED, sc.CertificateRevokedError),
     (OrderState.AWAITING_PAYMENT, sc.AwaitingPaymentError)],
)  # fmt: skip
async def test_5_non_transient_sectigo_errors_are_not_retried(
    state: OrderState, error: type
) -> None:
    """A non-transient code is raised after one request, by collect and wait_for_certificate."""
    sim = make_sim()
    sim.add_order(5, state=state)
    client = make_client(sim)
    with pytest.raises(error):
        await client.collect(5)
    with pytest.raises(error):
        await client.wait_for_certificate(5)
    with pytest.raises(sc.InvalidArgumentError):
        await client.collect(999)
    assert sim.stats.requests_total == 3


@pytest.mark.parametrize(
    ("retry_after", "low", "high"),
    [("7", 7.0, 10.5), ("0", 0.001, 60.0), ("86400", 1.0, 3600.0), ("garbage", 0.001, 60.0),
     ("http-date", 20.0, 61.0)],
)  # fmt: skip
async def test_5_retry_after_is_honoured_and_clamped(
    retry_after: str, low: float, high: float
) -> None:
    """Retry-After (seconds or HTTP-date) is waited; 0 is never a busy loop; 86400 is clamped."""
    sim = make_sim()
    sim.add_order(5)
    if retry_after == "http-date":  # computed now: the suite may run long after collection
        when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)
        retry_after = when.strftime("%a, %d %b %Y %H:%M:%S GMT")
    sim.inject(Fault.HTTP_503, retry_after=retry_after)
    sleeps = Sleeps()
    await make_client(sim, sleeps).collect(5)
    assert low <= max(sleeps.calls) <= high


async def test_5_retry_after_clamped_to_the_deadline() -> None:
    """wait_for_certificate never sleeps past its own timeout for a Retry-After."""
    sim = make_sim()
    sim.add_order(5)
    sim.inject(Fault.HTTP_503, retry_after="3000", times=10)
    sleeps = Sleeps()
    with pytest.raises((sc.PollTimeoutError, sc.TransportError)):
        await make_client(sim, sleeps).wait_for_certificate(5, timeout=20)
    assert (max(sleeps.calls) <= 20, sleeps.clock.now <= 21) == (True, True)


@pytest.mark.parametrize("fault", [Fault.HTTP_429, Fault.ERROR_42], ids=lambda f: f.value)
async def test_5_rate_limit_slows_the_whole_client(fault: Fault) -> None:
    """After a 429 / -42 on one order, another order's first request waits too."""
    sim = make_sim()
    sim.add_orders([5, 6])
    sim.inject(fault, order_number=5, retry_after="30")
    clock, gate, calls = ManualClock(), asyncio.Event(), []

    async def gated_sleep(seconds: float) -> None:
        calls.append(seconds)
        await gate.wait()
        clock.advance(seconds)

    client = make_client(sim, sleep=gated_sleep, clock=clock)
    first = asyncio.create_task(client.collect(5))
    await spin()
    assert len(calls) == 1, "the client did not back off after the rate limit"
    second = asyncio.create_task(client.collect(6))
    await spin()
    assert (sim.stats.requests_by_order[6], len(calls), calls[-1] > 0) == (0, 2, True)
    gate.set()
    await asyncio.gather(first, second)
    assert sim.stats.requests_by_order[6] == 1


@pytest.mark.parametrize("limit", [1, 2, 4])
async def test_5_max_concurrency_bounds_everything_in_flight(limit: int) -> None:
    """A batch and single collects together never pass max_concurrency requests in flight."""
    sim = make_sim(chaos=Chaos(latency=1.0), sleep=lambda _: spin(5))
    sim.add_orders(range(1, 13))
    sim.issue_certificates()
    client = make_client(sim, max_concurrency=limit)

    async def batch() -> list[sc.CollectOutcome]:
        return [o async for o in client.collect_many(range(1, 13), wait=False)]

    outcomes, *_ = await asyncio.gather(batch(), *(client.collect(n) for n in range(1, 13)))
    assert (len(outcomes), all(o.ok for o in outcomes)) == (12, True)
    assert sim.stats.max_in_flight == limit


async def test_5_wait_for_certificate_polls_with_backoff() -> None:
    """Polls from poll_interval towards max_poll_interval; STATUS stops at AVAILABLE."""
    sim = make_sim()
    sim.add_order(5, ready_after_polls=6)
    sim.add_order(6, ready_after_polls=2)
    sleeps = Sleeps()
    client = make_client(sim, sleeps)
    result = await client.wait_for_certificate(5, poll_interval=2.0, max_poll_interval=10.0)
    assert (result.status, sim.stats.requests_by_order[5], len(sleeps.calls)) == (ST.ATTACHED, 7, 6)
    assert (min(sleeps.calls) >= 1.0, max(sleeps.calls) <= 10.0, sleeps.calls[-1] >= 4.0) == (
        True,
    ) * 3
    status = await client.wait_for_certificate(6, query_type=QT.STATUS, poll_interval=1)
    assert (status.status, status.chain) == (ST.AVAILABLE, None)


async def test_5_wait_for_certificate_times_out() -> None:
    """A processing order raises PollTimeoutError (a TimeoutError) with the last status."""
    sim = make_sim()
    sim.add_order(5, state=OrderState.PROCESSING)
    sleeps = Sleeps()
    with pytest.raises(sc.PollTimeoutError) as info:
        await make_client(sim, sleeps).wait_for_certificate(5, timeout=100.0, poll_interval=5.0)
    assert (info.value.order_number, info.value.last_status) == (5, ST.PROCESSING)
    assert (isinstance(info.value, TimeoutError), 90 <= sleeps.clock.now <= 110) == (True, True)


async def test_5_collect_many_outcomes() -> None:
    """One outcome per order in completion order; failures stay with their order; wait=False."""
    sim = make_sim()
    sim.add_order(1)
    sim.add_order(2, state=OrderState.REVOKED)
    sim.add_order(3, ready_after_polls=2)
    sim.add_order(5, state=OrderState.PROCESSING)
    client = make_client(sim)
    yielded = [o async for o in client.collect_many([3, 1, 2, 4], poll_interval=1)]
    got = {o.order_number: o for o in yielded}
    assert (sorted(got), yielded[-1].order_number) == ([1, 2, 3, 4], 3)
    assert (got[1].ok, got[1].error, got[3].result.status) == (True, None, ST.ATTACHED)
    assert isinstance(got[2].error, sc.CertificateRevokedError)
    assert isinstance(got[4].error, sc.InvalidArgumentError)
    assert not got[2].ok

    async def one() -> AsyncIterator[int]:
        yield 5

    before = sim.stats.requests_total
    (outcome,) = [o async for o in client.collect_many(one(), wait=False, timeout=0.001)]
    assert (outcome.ok, outcome.result.status, sim.stats.requests_total - before) == (
        True,
        ST(0),
        1,
    )


@pytest.mark.parametrize(
    ("code", "stops"),
    [(-1, True), (-2, True), (-3, True), (-16, True), (-17, True), (-4, False), (-14, False),
     (-20, False), (-91, False)],
)  # fmt: skip
async def test_5_account_level_codes_stop_a_batch(code: int, stops: bool) -> None:
    """Codes -1, -2, -3, -16, -17 stop the batch, every order yielded with the error."""
    calls: list[httpx.Request] = []
    client = mock_client(
        lambda r: calls.append(r) or httpx.Response(200, text=f"{code}\nMessage\n"),
        max_concurrency=1, max_retries=0,
    )  # fmt: skip
    outcomes = [o async for o in client.collect_many(range(1, 9), wait=False)]
    assert sorted(o.order_number for o in outcomes) == list(range(1, 9))
    assert (all(isinstance(o.error, CODES[code]) for o in outcomes), len(calls)) == (
        True,
        1 if stops else 8,
    )


async def test_5_collect_many_is_lazy() -> None:
    """An endless order source is read lazily; leaving the loop early leaves no task."""
    sim = make_sim()
    sim.add_orders(range(1, 6))
    consumed: list[int] = []

    def endless() -> Iterator[int]:
        while True:
            consumed.append(len(consumed) + 1)
            yield consumed[-1]

    before = other_tasks()
    async for outcome in make_client(sim, max_concurrency=2).collect_many(endless(), wait=False):
        if outcome.order_number >= 3:
            break
    await spin(5)  # the dropped generator's aclose() runs as a loop callback
    assert (len(consumed) < 100, other_tasks() <= before) == (True, True)


@pytest.mark.parametrize("how", ["aclose-iterator", "close-client"])
async def test_5_closing_cancels_requests_in_flight(how: str) -> None:
    """aclose() on the iterator, or closing the client, cancels hung requests; no task is left."""
    sim = make_sim(chaos=Chaos(latency=1.0), sleep=lambda _: asyncio.Event().wait())
    sim.add_orders(range(1, 11))
    before = other_tasks()
    client = make_client(sim, max_concurrency=3)
    stream = client.collect_many(range(1, 11))
    consumer = asyncio.create_task(anext(stream))
    await spin()
    assert (sim.stats.in_flight, consumer.done()) == (3, False)
    if how == "aclose-iterator":
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        await stream.aclose()
    else:
        await client.aclose()
        with pytest.raises((StopAsyncIteration, sc.CollectError, asyncio.CancelledError)):
            await asyncio.wait_for(consumer, 5)
    await spin(10)
    assert (sim.stats.in_flight, other_tasks() <= before) == (0, True)
    await client.aclose()


def test_5_collect_outcome_ok() -> None:
    """CollectOutcome.ok is True exactly when error is None (a PROCESSING result is ok)."""
    outcome = sc.CollectOutcome(1, result=sc.CollectResult(order_number=1, status=ST.PROCESSING))
    assert (outcome.ok, sc.CollectOutcome(1, error=sc.TransportError("down")).ok) == (True, False)
    with pytest.raises(FROZEN):
        outcome.order_number = 2  # type: ignore[misc]


async def test_5_password_never_leaks(caplog: pytest.LogCaptureFixture) -> None:
    """Not in repr/str, logs (ours or httpx's), exception text, tracebacks, URL or headers."""
    caplog.set_level(logging.DEBUG)
    seen: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        seen.append(request)

    sim = make_sim()
    sim.add_order(1)
    sim.add_order(2, state=OrderState.REVOKED)
    sim.add_order(3)
    sim.inject(Fault.HTTP_503, order_number=1)
    sim.inject(Fault.DROP_CONNECTION, times=5, order_number=3)
    http = sim.http_client(event_hooks={"request": [record]})
    client = make_client(sim, http_client=http, max_retries=1)
    result = await client.collect(1)
    texts = [repr(client), str(client), repr(result), str(result), repr(result.chain)]
    async for outcome in client.collect_many([2, 3, 1]):
        texts += [repr(outcome), str(outcome), repr(outcome.error)]
        if outcome.error is not None:
            texts.append("".join(traceback.format_exception(outcome.error)))
    wrong = sc.CollectClient(
        LOGIN, PASSWORD[:-1], base_url=sim.url, http_client=http, sleep=Sleeps()
    )
    with pytest.raises(sc.AuthenticationError) as info:
        await wrong.collect(1)
    texts += [
        "".join(traceback.format_exception(info.value)),
        repr(wrong),
        repr(sc.CollectRequest(1)),
    ]
    texts += [r.getMessage() + repr(r.args) for r in caplog.records]
    texts += [str(r.url) + repr(r.headers.raw) for r in seen]
    assert [t for t in texts if PASSWORD in t or PASSWORD[:-1] in t] == []
    assert {(r.method, r.url.query) for r in seen} == {("POST", b"")}

"""The simulator's chaos and counters, its in-process transport, and the same app on a socket."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from simulator_fakes import (
    LOGIN,
    PASSWORD,
    form,
    http_fixture,  # noqa: F401 -- the "http" fixture
    lines,
    post,
    sim_fixture,  # noqa: F401 -- the "sim" fixture
)

from smime_collect import (
    CallLimitError,
    CollectRequest,
    SectigoError,
    Status,
    UnknownServerError,
    parse_response,
)
from smime_collect.testing import (
    Chaos,
    Fault,
    ManualClock,
    OrderState,
    Simulator,
    SimulatorTransport,
    serve,
)
from smime_collect.testing._asgi import abort
from smime_collect.testing._simulator import ENDPOINT_PATH


class TestChaos:
    """Scripted and random faults, latency, and the counters."""

    @pytest.mark.parametrize(
        ("fault", "status"),
        [
            (Fault.HTTP_429, 429),
            (Fault.HTTP_500, 500),
            (Fault.HTTP_502, 502),
            (Fault.HTTP_503, 503),
            (Fault.HTTP_504, 504),
        ],
    )
    async def test_http_faults(
        self, sim: Simulator, http: httpx.AsyncClient, fault: Fault, status: int
    ) -> None:
        """Each HTTP fault answers its status; 429 and 503 carry Retry-After."""
        sim.inject(fault)
        response = await post(http, sim, **form())
        assert response.status_code == status
        assert ("retry-after" in response.headers) is (status in (429, 503))
        assert (await post(http, sim, **form())).status_code == 200

    @pytest.mark.parametrize(
        ("fault", "error"), [(Fault.ERROR_14, UnknownServerError), (Fault.ERROR_42, CallLimitError)]
    )
    async def test_sectigo_transient_codes(
        self, sim: Simulator, http: httpx.AsyncClient, fault: Fault, error: type[SectigoError]
    ) -> None:
        """-14 and -42 arrive as HTTP 200 bodies, like every Sectigo code."""
        sim.inject(fault)
        response = await post(http, sim, **form())
        assert response.status_code == 200
        with pytest.raises(error):
            parse_response(response.content, CollectRequest(1001))

    async def test_scripted_faults_are_used_in_order(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """Scripted faults are used first in, first out, one per request, then the real answer."""
        sim.inject(Fault.HTTP_503, retry_after=5)
        sim.inject(Fault.ERROR_14)
        sim.inject(Fault.DROP_CONNECTION)
        first = await post(http, sim, **form())
        assert (first.status_code, first.headers["retry-after"]) == (503, "5")
        assert lines(await post(http, sim, **form())) == ["-14", "An unknown error occurred!"]
        with pytest.raises(httpx.RemoteProtocolError):
            await post(http, sim, **form())
        assert lines(await post(http, sim, **form()))[0] == "2"

    async def test_script_targets_one_order_for_n_requests(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """The next 2 requests for order 1002 get 503; others pass, then 1002 recovers."""
        sim.add_order(1002)
        sim.inject(Fault.HTTP_503, order_number=1002, times=2, retry_after=7)
        assert (await post(http, sim, **form(order=1001))).status_code == 200
        first = await post(http, sim, **form(order=1002))
        second = await post(http, sim, **form(order=1002))
        assert [first.status_code, second.status_code] == [503, 503]
        assert first.headers["retry-after"] == "7"
        assert sim.pending_faults == ()
        assert (await post(http, sim, **form(order=1002))).status_code == 200

    async def test_retry_after_http_date(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """An aware datetime becomes an HTTP-date Retry-After."""
        sim.chaos = Chaos(retry_after=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))
        sim.inject(Fault.HTTP_429)
        response = await post(http, sim, **form())
        assert response.headers["retry-after"] == "Wed, 02 Jan 2030 03:04:05 GMT"

    async def test_faulted_requests_are_not_polls(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """A request lost to a fault never reached the order: its poll count stays."""
        sim.add_order(5005, ready_after_polls=1)
        sim.inject(Fault.HTTP_503, order_number=5005)
        await post(http, sim, **form(order=5005))
        assert sim.order(5005).polls == 0
        assert lines(await post(http, sim, **form(order=5005)))[0] == "0"

    async def test_dropped_connection(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """In-process, a drop is what httpx raises for a real one."""
        sim.inject(Fault.DROP_CONNECTION)
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await post(http, sim, **form())
        assert sim.stats.faults[Fault.DROP_CONNECTION] == 1

    async def test_timeout_in_process_is_immediate(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """A TIMEOUT fault raises httpx.ReadTimeout at once, as if the client's timeout ran out."""
        sim.inject(Fault.TIMEOUT)
        with pytest.raises(httpx.ReadTimeout):
            await post(http, sim, **form())
        assert sim.order(1001).polls == 0

    async def test_truncated_body(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """Half the announced body, then the connection closes while it is read."""
        sim.inject(Fault.TRUNCATED_BODY)
        async with http.stream("POST", sim.url, data=form()) as response:
            announced = int(response.headers["content-length"])
            received: list[bytes] = []

            async def read_all() -> None:
                async for chunk in response.aiter_bytes():
                    received.append(chunk)  # noqa: PERF401 -- keep what came before the error

            with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
                await read_all()
        assert 0 < len(b"".join(received)) < announced

    async def test_oversized_body(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """An oversized answer has no Content-Length and more bytes than configured."""
        sim.chaos = Chaos(oversized_body_bytes=300_000)
        sim.inject(Fault.OVERSIZED_BODY)
        response = await post(http, sim, **form())
        assert "content-length" not in response.headers
        assert response.content.startswith(b"2\n")
        assert len(response.content) == 300_002

    def test_rates_are_validated(self) -> None:
        """A rate outside [0, 1], or rates adding up past 1, are refused."""
        with pytest.raises(ValueError, match="probability"):
            Chaos(http_503_rate=1.5)
        with pytest.raises(ValueError, match="add up"):
            Chaos(http_503_rate=0.6, error_14_rate=0.6)
        with pytest.raises(ValueError, match="aware"):
            Chaos(retry_after=datetime(2030, 1, 1))

    async def test_random_faults_repeat_with_the_seed(self) -> None:
        """Two simulators with one seed fail the same requests; the rate shows in the counts."""

        async def statuses(seed: int) -> list[int]:
            sim = Simulator(seed=seed, chaos=Chaos(http_503_rate=0.3, error_14_rate=0.2))
            sim.add_account(LOGIN, PASSWORD)
            sim.add_order(1001)
            async with sim.http_client() as http:
                return [
                    (await post(http, sim, **form(query=0))).status_code
                    + (1000 if sim.stats.codes[-14] else 0)
                    for _ in range(200)
                ]

        first, again, other = await statuses(7), await statuses(7), await statuses(8)
        assert first == again
        assert first != other
        assert 30 < first.count(503) + first.count(1503) < 90

    async def test_latency_goes_through_the_injected_sleep(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """Latency (with seeded jitter) is waited with sim.sleep, so tests never wait."""
        clock = ManualClock()
        sim.sleep = clock.sleep
        sim.chaos = Chaos(latency=0.25, latency_jitter=0.5)
        for _ in range(5):
            await post(http, sim, **form())
        waits = clock.sleeps
        assert len(waits) == 5
        assert all(0.25 <= wait <= 0.75 for wait in waits)
        assert len(set(waits)) > 1

    async def test_in_flight_counters(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """Requests held in the latency wait show up in in_flight and max_in_flight."""
        release = asyncio.Event()

        async def hold(seconds: float) -> None:
            del seconds
            await release.wait()

        sim.sleep = hold
        sim.chaos = Chaos(latency=1.0)
        tasks = [asyncio.create_task(post(http, sim, **form())) for _ in range(6)]
        for _ in range(100):  # let every request reach the latency wait
            await asyncio.sleep(0)
        assert sim.stats.in_flight == 6
        release.set()
        await asyncio.gather(*tasks)
        assert sim.stats.max_in_flight == 6
        assert sim.stats.in_flight == 0

    async def test_counters_and_reset(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """Requests in total and per order, codes and HTTP statuses; reset() zeroes them."""
        sim.add_order(1002, state=OrderState.REVOKED)
        await post(http, sim, **form(order=1001))
        await post(http, sim, **form(order=1002))
        await post(http, sim, **form(order=1002))
        await post(http, sim, **form(order="junk"))
        stats = sim.stats
        assert stats.requests_total == 4
        assert stats.requests_by_order == {1001: 1, 1002: 2}
        assert stats.codes == {2: 1, -21: 2, -4: 1}
        assert stats.http_statuses == {200: 4}
        stats.reset()
        assert stats.requests_total == 0
        assert not stats.requests_by_order


class TestSimulatorTransport:
    """SimulatorTransport serves any ASGI app to httpx the way one connection would."""

    @staticmethod
    async def _post(app: Any) -> httpx.Response:
        async with httpx.AsyncClient(transport=SimulatorTransport(app)) as http:
            return await http.post("https://simulator.test/x", content=b"abc")

    async def test_a_second_receive_is_a_disconnect(self) -> None:
        """The body comes once; asking again says the client has nothing more to send."""
        seen: list[dict[str, Any]] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            seen.extend([await receive(), await receive()])
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        assert (await self._post(app)).status_code == 204
        assert [(m["type"], m.get("body")) for m in seen] == [
            ("http.request", b"abc"),
            ("http.disconnect", None),
        ]

    async def test_an_app_that_never_answers(self) -> None:
        """Returning without a response is the app's bug, raised as one, not a network error."""

        async def app(scope: Any, receive: Any, send: Any) -> None:
            del scope, receive, send

        with pytest.raises(RuntimeError, match="returned without starting a response"):
            await self._post(app)

    async def test_what_is_sent_after_a_drop_is_lost(self) -> None:
        """After abort() the client meets a dropped connection, never the late answer."""

        async def app(scope: Any, receive: Any, send: Any) -> None:
            del receive
            await abort(scope)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"2\n"})

        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await self._post(app)


@pytest.mark.network
class TestLoopbackServer:
    """The same simulator on a real socket, with TLS."""

    async def test_tls_round_trip_and_a_real_drop(
        self, sim: Simulator, caplog: pytest.LogCaptureFixture
    ) -> None:
        """HTTPS verified against the throwaway CA; drops close the socket; no error logged."""
        async with serve(sim) as server:
            assert server.url.startswith("https://127.0.0.1:")
            assert server.url.endswith(ENDPOINT_PATH)
            assert server.base_url + ENDPOINT_PATH == server.url
            assert server.base_url == f"https://127.0.0.1:{server.port}"
            assert server.ca_pem_path is not None
            assert server.ca_pem_path.read_bytes() == server.ca_pem
            async with httpx.AsyncClient(verify=server.ssl_context()) as http:
                response = await http.post(server.url, data=form(showValidityPeriod="Y"))
                result = parse_response(
                    response.content, CollectRequest(1001, show_validity_period=True)
                )
                assert result.status is Status.ATTACHED
                sim.inject(Fault.DROP_CONNECTION)
                with pytest.raises(httpx.RemoteProtocolError):
                    await http.post(server.url, data=form())
                sim.inject(Fault.TRUNCATED_BODY)
                with pytest.raises(httpx.RemoteProtocolError):
                    await http.post(server.url, data=form())
                assert (await http.post(server.url, data=form())).status_code == 200
            async with httpx.AsyncClient() as untrusting:
                with pytest.raises(httpx.ConnectError):
                    await untrusting.post(server.url, data=form())
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert sim.stats.requests_total >= 4

    async def test_stalled_request_times_out_and_shutdown_releases_it(self, sim: Simulator) -> None:
        """TIMEOUT keeps the socket silent: the client times out; stopping the server ends it."""
        async with serve(sim) as server:
            context = server.ssl_context()
            async with httpx.AsyncClient(verify=context, timeout=0.2) as http:
                sim.inject(Fault.TIMEOUT)
                with pytest.raises(httpx.ReadTimeout):
                    await http.post(server.url, data=form())
                assert (await http.post(server.url, data=form())).status_code == 200
            patient = httpx.AsyncClient(verify=context, timeout=30)
            sim.inject(Fault.TIMEOUT)
            stalled = asyncio.create_task(patient.post(server.url, data=form()))
            while sim.stats.faults[Fault.TIMEOUT] != 2:  # noqa: ASYNC110 -- polling a counter
                await asyncio.sleep(0.01)
        with pytest.raises(httpx.RemoteProtocolError):
            await stalled
        await patient.aclose()

    async def test_plain_http_socket_gets_code_1(self, sim: Simulator) -> None:
        """Without TLS the scheme is http: -1, unless require_https is off."""
        async with serve(sim, tls=False) as server, httpx.AsyncClient() as http:
            assert server.url.startswith("http://")
            assert lines(await http.post(server.url, data=form()))[0] == "-1"
            sim.require_https = False
            assert lines(await http.post(server.url, data=form()))[0] == "2"
            with pytest.raises(ValueError, match="without TLS"):
                server.ssl_context()


# Every (queryType, responseType, responseEncoding) the endpoint accepts; None is "omitted".

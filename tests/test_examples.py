"""Each example in examples/ runs against the simulator: FastAPI, aiohttp and the batch script."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from aiohttp import test_utils

from smime_collect import RetryPolicy, load_certificates
from smime_collect.testing import ManualClock, OrderState, Simulator

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LOGIN = "example-api-user"
PASSWORD = "Example-5e2b-never-printed"


def load_example(name: str) -> ModuleType:
    """Import examples/<name>.py as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Simulator:
    """A simulator with one account (in the environment) and orders in every state."""
    for name in ("SECTIGO_LOGIN_NAME_FILE", "SECTIGO_LOGIN_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SECTIGO_LOGIN_NAME", LOGIN)
    monkeypatch.setenv("SECTIGO_LOGIN_PASSWORD", PASSWORD)
    simulator = Simulator(seed=3)
    simulator.add_account(LOGIN, PASSWORD)
    simulator.add_order(1001, email="alice@example.com")
    simulator.add_order(1002, ready_after_polls=2)
    simulator.add_order(1003, state=OrderState.REJECTED)
    simulator.add_order(1004, state=OrderState.AWAITING_PAYMENT)
    simulator.add_order(1005, state=OrderState.PROCESSING)
    simulator.add_order(1006, state=OrderState.REVOKED)
    return simulator


# (order, HTTP status) for every error the web examples map.
ERROR_STATUSES = [
    (9999, 404),  # unknown to Sectigo: -4 on orderNumber
    (1003, 410),  # rejected
    (1006, 410),  # revoked
    (1004, 409),  # awaiting payment
    (1005, 503),  # still processing when the request's wait ran out
    (0, 400),  # not an order number
]


class TestFastAPI:
    """examples/fastapi_app.py: one client per app through the lifespan, PEM chains over HTTP."""

    async def test_chain_and_errors(self, sim: Simulator) -> None:
        """GET /certificates/{order} returns the PEM chain; errors become HTTP statuses."""
        module = load_example("fastapi_app")
        app = module.create_app(wait_seconds=0.3, poll_interval=0.001, transport=sim.transport())
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://app.test"
            ) as http,
        ):
            client = app.state.collect_client
            response = await http.get("/certificates/1001")
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/pem-certificate-chain"
            chain = load_certificates(response.content)
            assert chain.end_entity is not None
            assert chain.intermediates == sim.ca.intermediates
            assert chain.roots == ()

            with_root = await http.get("/certificates/1002", params={"root": "true"})
            assert with_root.status_code == 200
            assert load_certificates(with_root.content).roots == (sim.ca.root,)
            assert sim.stats.requests_by_order[1002] == 3  # two "processing" answers, then it

            for order, status in ERROR_STATUSES:
                failed = await http.get(f"/certificates/{order}")
                assert failed.status_code == status, (order, failed.text)
                assert failed.json()["detail"]
                assert PASSWORD not in failed.text
            processing = await http.get("/certificates/1005")
            assert processing.headers["retry-after"] == "30"
            assert (await http.get("/certificates/1003")).json()["code"] == -20
            assert app.state.collect_client is client  # one client for every request
        assert client.is_closed  # closed by the lifespan

    async def test_rejected_login_is_502(
        self, sim: Simulator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A rejected login is our configuration's fault, not the caller's: 502, no password."""
        monkeypatch.setenv("SECTIGO_LOGIN_PASSWORD", "Wrong-never-printed")
        module = load_example("fastapi_app")
        app = module.create_app(transport=sim.transport())
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://app.test"
            ) as http,
        ):
            response = await http.get("/certificates/1001")
        assert response.status_code == 502
        assert response.json()["code"] == -16
        assert "Wrong-never-printed" not in response.text

    def test_module_level_app_needs_no_credentials_at_import(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Importing the module, as uvicorn does, needs no credentials: startup reads them."""
        monkeypatch.delenv("SECTIGO_LOGIN_NAME", raising=False)
        monkeypatch.delenv("SECTIGO_LOGIN_PASSWORD", raising=False)
        assert load_example("fastapi_app").app.title == "S/MIME certificates"


def outage_options() -> dict[str, Any]:
    """Client options for a network that refuses every connection, with time that costs nothing."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    clock = ManualClock(now=1000.0)
    return {
        "transport": httpx.MockTransport(refuse),
        "sleep": clock.sleep,
        "clock": clock,
        "retry_policy": RetryPolicy(max_retries=1000),
    }


class TestNetworkOutage:
    """A network that fails until the request's wait runs out is a 502, not 'still processing'."""

    async def test_fastapi(self, sim: Simulator) -> None:
        """FastAPI: 502 naming the last network error, no Retry-After."""
        module = load_example("fastapi_app")
        app = module.create_app(wait_seconds=20.0, **outage_options())
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://app.test"
            ) as http,
        ):
            response = await http.get("/certificates/1001")
        assert response.status_code == 502
        assert response.json()["error"] == "PollTimeoutError"
        assert "last error: the request failed: connection refused" in response.json()["detail"]
        assert "retry-after" not in response.headers

    async def test_aiohttp(self, sim: Simulator) -> None:
        """Aiohttp: the same 502."""
        module = load_example("aiohttp_app")
        app = module.create_app(wait_seconds=20.0, **outage_options())
        async with test_utils.TestClient(test_utils.TestServer(app)) as http:
            response = await http.get("/certificates/1001")
            body = await response.json()
        assert response.status == 502
        assert body["error"] == "PollTimeoutError"
        assert "last error: the request failed: connection refused" in body["detail"]


class TestAiohttp:
    """examples/aiohttp_app.py: the client lives in a cleanup_ctx, served on a loopback port."""

    async def test_chain_and_errors(self, sim: Simulator) -> None:
        """The app serves PEM chains and maps errors as the FastAPI example does."""
        module = load_example("aiohttp_app")
        app = module.create_app(wait_seconds=0.3, poll_interval=0.001, transport=sim.transport())
        async with test_utils.TestClient(test_utils.TestServer(app)) as http:
            response = await http.get("/certificates/1001")
            assert response.status == 200
            assert response.content_type == "application/pem-certificate-chain"
            chain = load_certificates(await response.read())
            assert chain.end_entity is not None
            assert chain.roots == ()
            with_root = await http.get("/certificates/1002?root=true")
            assert load_certificates(await with_root.read()).roots == (sim.ca.root,)
            for order, status in [*ERROR_STATUSES, ("abc", 400)]:
                failed = await http.get(f"/certificates/{order}")
                assert failed.status == status, (order, await failed.text())
                assert PASSWORD not in await failed.text()
            client = app[module.COLLECT_CLIENT]
        assert client.is_closed  # the cleanup context closed it


class TestBatch:
    """examples/batch_collect.py: an orders file into a directory, with progress."""

    def test_collects_and_resumes(
        self, sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Ready and late orders are written; a failed one exits 1; a re-run skips what is done."""
        module = load_example("batch_collect")
        orders = tmp_path / "orders.txt"
        orders.write_text("# today\n1001\n\n1002  # late\n1003\n")
        out = tmp_path / "out"
        argv = [str(orders), str(out), "--poll-interval", "0.001", "--max-poll-interval", "0.002"]

        assert module.main(argv, transport=sim.transport()) == 1
        captured = capsys.readouterr()
        assert "0 already collected, 3 to go" in captured.err
        assert "1001 collected" in captured.err
        assert "1003 failed: order 1003: Sectigo error -20" in captured.err
        assert "2 of 3 orders collected" in captured.out
        chain = load_certificates((out / "1001.pem").read_bytes())
        assert chain.end_entity is not None
        assert chain.intermediates == sim.ca.intermediates
        assert (out / "1002.pem").is_file()
        assert not (out / "1003.pem").exists()

        requests = sim.stats.requests_total
        orders.write_text("1001\n1002\n")
        assert module.main(argv, transport=sim.transport()) == 0
        assert "2 already collected, 0 to go" in capsys.readouterr().err
        assert sim.stats.requests_total == requests

    def test_missing_credentials_is_2(
        self, sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without credentials in the environment the script says which variable is missing."""
        monkeypatch.delenv("SECTIGO_LOGIN_PASSWORD")
        module = load_example("batch_collect")
        orders = tmp_path / "orders.txt"
        orders.write_text("1001\n")
        assert module.main([str(orders), str(tmp_path / "out")], transport=sim.transport()) == 2

    def test_script_help_runs(self) -> None:
        """The script runs as a program (here: --help, which needs no credentials)."""
        completed = subprocess.run(  # noqa: S603 -- our own interpreter and example
            [sys.executable, str(EXAMPLES / "batch_collect.py"), "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        assert "orders_file" in completed.stdout

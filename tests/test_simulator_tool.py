"""The simulator as a tool: one command serves it, two variables point a program at it."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from smime_collect import CollectClient, InvalidRequestError, load_certificates
from smime_collect.testing._tool import SCENARIO, run, scenario_simulator, serve_until_stopped
from smime_collect.testing._tool import main as tool_main

pytestmark = pytest.mark.network

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LOGIN = "tool-user"
PASSWORD = "Tool-5e1f-test-password"
_STARTUP = 60.0


class Served:
    """A ``serve`` process and what its banner said."""

    def __init__(self, process: subprocess.Popen[str], banner: list[str]) -> None:
        self.process = process
        self.banner = banner
        self.url = self._value("SECTIGO_BASE_URL")
        self.ca_bundle = self._value("SECTIGO_CA_BUNDLE")

    def _value(self, name: str) -> str:
        for line in self.banner:
            found = re.fullmatch(rf"\s*export {name}=(\S+)", line)
            if found:
                return found.group(1)
        raise AssertionError(f"{name} not in the banner: {self.banner}")


def _start(*command: str, env: dict[str, str]) -> Served:
    process = subprocess.Popen(  # noqa: S603 -- this interpreter and our own module
        [sys.executable, *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    banner: list[str] = []
    deadline = time.monotonic() + _STARTUP
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            _, err = process.communicate(timeout=10)
            raise AssertionError(f"the simulator exited before serving: {err}")
        banner.append(line.rstrip("\n"))
        if line.startswith("stop it with"):
            return Served(process, banner)
    process.kill()
    raise AssertionError(f"no banner within {_STARTUP} s: {banner}")


def _stop(served: Served) -> tuple[int, str]:
    served.process.send_signal(signal.SIGTERM)
    out, _ = served.process.communicate(timeout=30)
    return served.process.returncode, out


@pytest.fixture
def tool_env() -> dict[str, str]:
    """The environment a user has: the account's credentials, nothing else of ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECTIGO_")}
    return {**env, "SECTIGO_LOGIN_NAME": LOGIN, "SECTIGO_LOGIN_PASSWORD": PASSWORD}


@contextlib.contextmanager
def _serving(*command: str, env: dict[str, str]) -> Iterator[Served]:
    """The command, started until its banner; killed afterwards if the test left it running."""
    running = _start(*command, env=env)
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.process.kill()
            running.process.communicate(timeout=10)


@pytest.fixture
def served(tool_env: dict[str, str]) -> Iterator[Served]:
    """``python -m smime_collect.testing serve``, stopped with SIGTERM after the test."""
    with _serving("-m", "smime_collect.testing", "serve", env=tool_env) as running:
        yield running


@pytest.fixture
def pointed_at_it(served: Served, monkeypatch: pytest.MonkeyPatch) -> Served:
    """The served simulator, with this process's environment pointing at it as a user's would."""
    monkeypatch.setenv("SECTIGO_LOGIN_NAME", LOGIN)
    monkeypatch.setenv("SECTIGO_LOGIN_PASSWORD", PASSWORD)
    monkeypatch.setenv("SECTIGO_BASE_URL", served.url)
    monkeypatch.setenv("SECTIGO_CA_BUNDLE", served.ca_bundle)
    return served


def _load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestServe:
    """``python -m smime_collect.testing serve`` prints what a program needs, and stops cleanly."""

    def test_banner_names_url_ca_account_and_orders(self, served: Served) -> None:
        """The banner has the URL, the CA file, the account from the environment, the orders."""
        text = "\n".join(served.banner)
        assert served.url.startswith("https://127.0.0.1:")
        assert Path(served.ca_bundle).is_file()
        assert f"login name: {LOGIN}" in text
        assert f"password: {PASSWORD}" in text
        for order in SCENARIO:
            assert str(order.number) in text
        status, out = _stop(served)
        assert status == 0
        assert "stopped" in out
        assert not Path(served.ca_bundle).exists()  # the throwaway CA goes with the server

    async def test_a_client_from_the_environment_collects(self, pointed_at_it: Served) -> None:
        """CollectClient.from_env with SECTIGO_BASE_URL and SECTIGO_CA_BUNDLE talks TLS to it."""
        async with CollectClient.from_env() as client:
            assert client.base_url == pointed_at_it.url
            result = await client.collect(1001)
        assert result.chain is not None
        assert result.chain.end_entity is not None

    async def test_the_fastapi_example_pointed_at_it(self, pointed_at_it: Served) -> None:
        """examples/fastapi_app.py, with two more variables set, serves the simulator's chains."""
        app = _load_example("fastapi_app").app  # the module's own app, as uvicorn would load it
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://app.test"
            ) as http,
        ):
            issued = await http.get("/certificates/1001")
            assert issued.status_code == 200, issued.text
            assert load_certificates(issued.content).end_entity is not None
            rejected = await http.get("/certificates/1004")
            assert rejected.status_code == 410
            assert rejected.json()["code"] == -20
            assert PASSWORD not in rejected.text

    def test_smime_collect_simulate_is_the_same_tool(self, tool_env: dict[str, str]) -> None:
        """``smime-collect simulate`` serves the same scenario and stops on SIGINT."""
        with _serving("-m", "smime_collect", "simulate", env=tool_env) as running:
            assert f"login name: {LOGIN}" in "\n".join(running.banner)
            running.process.send_signal(signal.SIGINT)
            running.process.communicate(timeout=30)
            assert running.process.returncode == 0

    def test_refuses_a_non_loopback_address(self, tool_env: dict[str, str]) -> None:
        """The simulator serves test credentials: it never listens beyond loopback."""
        done = subprocess.run(
            [sys.executable, "-m", "smime_collect.testing", "serve", "--host", "0.0.0.0"],  # noqa: S104
            capture_output=True,
            text=True,
            env=tool_env,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2
        assert "loopback only" in done.stderr


def _banner_value(banner: str, name: str) -> str:
    found = re.search(rf"export {name}=(\S+)", banner)
    assert found is not None, banner
    return found.group(1)


class TestServeInProcess:
    """The tool's serving loop and its refusals, run in this process rather than a child."""

    async def test_serves_until_sigterm(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The banner's four variables reach the scenario over TLS; SIGTERM stops it with 0."""
        monkeypatch.setenv("SECTIGO_LOGIN_NAME", LOGIN)
        monkeypatch.setenv("SECTIGO_LOGIN_PASSWORD", PASSWORD)
        out = io.StringIO()
        serving = asyncio.create_task(run("127.0.0.1", 0, out))
        async with asyncio.timeout(_STARTUP):
            while "stop it with" not in out.getvalue():  # noqa: ASYNC110 -- the banner is the signal
                await asyncio.sleep(0.01)
        banner = out.getvalue()
        environ = {
            name: _banner_value(banner, name)
            for name in ("SECTIGO_BASE_URL", "SECTIGO_CA_BUNDLE", "SECTIGO_LOGIN_NAME")
        }
        assert environ["SECTIGO_LOGIN_NAME"] == LOGIN
        environ["SECTIGO_LOGIN_PASSWORD"] = _banner_value(banner, "SECTIGO_LOGIN_PASSWORD")
        async with CollectClient.from_env(environ=environ) as client:
            result = await client.collect(1001)
        assert result.chain is not None
        os.kill(os.getpid(), signal.SIGTERM)  # handled by the tool's loop while it serves
        assert await asyncio.wait_for(serving, 30) == 0
        assert out.getvalue().endswith("smime-collect simulator stopped\n")

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["serve", "--port", "65536"], "--port 65536: not a port number"),
            (["serve", "--port", "-1"], "--port -1: not a port number"),
            (["serve", "--host", "localhost"], "--host localhost: the simulator serves test"),
            (["serve", "--host", "192.0.2.1"], "listens on loopback only"),
        ],
        ids=["port-too-high", "port-negative", "a-name-not-an-address", "not-loopback"],
    )
    def test_refuses_a_bad_port_or_address(
        self, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A port outside 0-65535 or a host that is not a loopback IP address: exit 2, unserved."""
        assert tool_main(argv) == 2
        captured = capsys.readouterr()
        assert message in captured.err
        assert captured.out == ""

    def test_without_uvicorn(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without the simulator extra: exit 1, saying which extra to install."""
        monkeypatch.setitem(sys.modules, "uvicorn", None)
        assert serve_until_stopped("127.0.0.1", 0) == 1
        captured = capsys.readouterr()
        assert "pip install 'smime-collect[simulator]'" in captured.err
        assert captured.out == ""

    def test_a_port_in_use(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A port another socket listens on: exit 2 naming the address, not a traceback."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            assert serve_until_stopped("127.0.0.1", port) == 2
        captured = capsys.readouterr()
        assert f"cannot serve on 127.0.0.1:{port}" in captured.err
        assert "Traceback" not in captured.err
        assert captured.out == ""


class TestScenario:
    """The served scenario, without a socket."""

    def test_account_from_the_environment_or_a_new_one(self) -> None:
        """SECTIGO_LOGIN_* name the account; without them a default login and a fresh password."""
        _, login, password = scenario_simulator(
            {"SECTIGO_LOGIN_NAME": "a", "SECTIGO_LOGIN_PASSWORD": "b"}
        )
        assert (login, password) == ("a", "b")
        _, login, first = scenario_simulator({})
        _, _, second = scenario_simulator({})
        assert login == "simulator-user"
        assert first != second
        assert len(first) >= 12

    def test_orders_in_their_states(self) -> None:
        """Every scenario order is there, in the state the banner gives it."""
        simulator, _, _ = scenario_simulator({})
        for order in SCENARIO:
            assert simulator.order(order.number).state is order.state


class TestFromEnv:
    """``CollectClient.from_env`` reads the endpoint and its CA too; arguments win."""

    def test_base_url_and_ca_bundle(self, tmp_path: Path) -> None:
        """SECTIGO_BASE_URL and SECTIGO_CA_BUNDLE become base_url and verify."""
        env = {
            "SECTIGO_LOGIN_NAME": "u",
            "SECTIGO_LOGIN_PASSWORD": "p",
            "SECTIGO_BASE_URL": "https://127.0.0.1:9/x",
        }
        client = CollectClient.from_env(environ=env)
        assert client.base_url == "https://127.0.0.1:9/x"
        given = CollectClient.from_env(environ=env, base_url="https://127.0.0.2:9/y")
        assert given.base_url == "https://127.0.0.2:9/y"
        with pytest.raises(InvalidRequestError, match="not a readable PEM CA bundle"):
            CollectClient.from_env(environ={**env, "SECTIGO_CA_BUNDLE": str(tmp_path / "none")})

    def test_an_empty_secret_file_is_refused(self, tmp_path: Path) -> None:
        """An empty *_FILE is refused before anything is sent, naming the variable."""
        (tmp_path / "pw").write_text("\n")
        env = {"SECTIGO_LOGIN_NAME": "u", "SECTIGO_LOGIN_PASSWORD_FILE": str(tmp_path / "pw")}
        with pytest.raises(InvalidRequestError, match=r"SECTIGO_LOGIN_PASSWORD_FILE.*empty"):
            CollectClient.from_env(environ=env)

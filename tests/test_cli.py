"""Tests for the smime-collect command: main(argv) against the in-process simulator."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import json
import os
import pty
import re
import select
import shlex
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

from smime_collect import (
    DEFAULT_URL,
    CollectClient,
    CollectResult,
    Status,
    ValidityPeriod,
    load_certificates,
)
from smime_collect._cli import _chains, main
from smime_collect._cli._demo import (
    MARKER_FILE,
    DemoRun,
    Expect,
    demo_scenario,
    demo_simulator,
    run_scenario,
)
from smime_collect._cli._order_files import atomic_write, payload_format, write_order_files
from smime_collect._cli._parser import build_parser
from smime_collect._cli._report import Terminal
from smime_collect.testing import Chaos, Fault, OrderState, Quirks, Simulator, TestCA, serve
from smime_collect.testing._formats import (
    to_base64,
    to_cmmf_der,
    to_netscape_sequence_der,
    to_pkcs7_der,
    to_zip,
)

LOGIN = "cli-api-user"
# Distinctive, so a leak into any output is found by a plain substring search.
PASSWORD = "Pw-7f3a-never-printed"
WRONG_PASSWORD = "Wrong-9c1d-never-printed"
FAST = ["--poll-interval", "0.001", "--max-poll-interval", "0.002"]
_ISSUED = TestCA.create().issue_smime("cmmf@example.com")
CMMF = to_cmmf_der(_ISSUED.certificates()[1:], _ISSUED.end_entity)
CREDENTIAL_VARIABLES = (
    "SECTIGO_LOGIN_NAME",
    "SECTIGO_LOGIN_PASSWORD",
    "SECTIGO_LOGIN_NAME_FILE",
    "SECTIGO_LOGIN_PASSWORD_FILE",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No Sectigo credentials in the environment."""
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def sim(clean_env: pytest.MonkeyPatch) -> Simulator:
    """A simulator with the command's account, and the credentials in the environment."""
    simulator = Simulator(seed=7)
    simulator.add_account(LOGIN, PASSWORD)
    clean_env.setenv("SECTIGO_LOGIN_NAME", LOGIN)
    clean_env.setenv("SECTIGO_LOGIN_PASSWORD", PASSWORD)
    return simulator


@attrs.frozen
class Cli:
    """``main(argv)`` with a client factory; returns (exit status, stdout, stderr)."""

    capsys: pytest.CaptureFixture[str]
    client_factory: Callable[..., CollectClient] = CollectClient

    def __call__(self, *argv: str, terminal: Terminal | None = None) -> tuple[int, str, str]:
        """Run the command, checking that the password shows in neither stream."""
        status = main(list(argv), client_factory=self.client_factory, terminal=terminal)
        out, err = self.capsys.readouterr()
        for secret in (PASSWORD, WRONG_PASSWORD):
            assert secret not in out
            assert secret not in err
        return status, out, err


@pytest.fixture
def cli(sim: Simulator, capsys: pytest.CaptureFixture[str]) -> Cli:
    """The command, its clients sending to the simulator in-process."""
    return Cli(capsys, functools.partial(CollectClient, transport=sim.transport()))


@pytest.fixture
def offline(clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """The command as shipped (clients on the network), without credentials."""
    return Cli(capsys)


def terminal(*, progress_bar: bool = False, tables: bool = False) -> Terminal:
    """The process's (captured) streams, drawn on as a terminal with rich would be."""
    return Terminal(sys.stdout, sys.stderr, progress_bar=progress_bar, tables=tables)


def json_lines(text: str) -> list[dict[str, Any]]:
    """Parse one JSON object per line."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class TestCollect:
    """collect writes each order's files and exits 0 when all were collected."""

    def test_files_and_meta(self, sim: Simulator, tmp_path: Path, cli: Cli) -> None:
        """cert.pem, chain.pem, fullchain.pem, root.pem, payload and meta.json hold the chain."""
        sim.add_order(1001, email="alice@example.com")
        status, out, err = cli("collect", "1001", "--out", str(tmp_path), *FAST)
        assert status == 0, err
        directory = tmp_path / "1001"
        cert = x509.load_pem_x509_certificate((directory / "cert.pem").read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.RFC822Name) == ["alice@example.com"]
        assert cert.issuer == sim.ca.issuer.subject
        chain = x509.load_pem_x509_certificates((directory / "chain.pem").read_bytes())
        assert chain == list(sim.ca.intermediates)
        fullchain = x509.load_pem_x509_certificates((directory / "fullchain.pem").read_bytes())
        assert fullchain == [cert, *chain]
        assert x509.load_pem_x509_certificates((directory / "root.pem").read_bytes()) == [
            sim.ca.root
        ]
        payloads = list(directory.glob("payload.*"))
        assert len(payloads) == 1
        assert load_certificates(payloads[0].read_bytes()).end_entity == cert

        meta = json.loads((directory / "meta.json").read_text())
        assert meta["order_number"] == 1001
        assert meta["status"] == "ATTACHED"
        assert meta["serial"] == format(cert.serial_number, "X")
        assert meta["subject"] == cert.subject.rfc4514_string()
        assert meta["email_addresses"] == ["alice@example.com"]
        assert meta["not_before"] == cert.not_valid_before_utc.isoformat()
        assert meta["not_after"] == cert.not_valid_after_utc.isoformat()
        assert meta["sha256_fingerprint"] == cert.fingerprint(hashes.SHA256()).hex(":").upper()
        assert meta["payload"]["file"] == payloads[0].name
        assert not [p for p in directory.iterdir() if p.name.startswith(".")]  # no temp files
        assert "1 order, 1 collected, 0 failed" in out
        assert "1001: collected into" in err

    @pytest.mark.parametrize(
        ("name", "suffix"),
        [
            ("pkcs7", ".p7b.b64"),
            ("individual", ".pem"),
            ("netscape-sequence", ".nsc.b64"),
            ("cmmf", ".cmmf.b64"),
        ],
    )
    def test_response_type(
        self,
        sim: Simulator,
        tmp_path: Path,
        cli: Cli,
        name: str,
        suffix: str,
    ) -> None:
        """--response-type asks for that container; the payload keeps its form and extension."""
        sim.add_order(1002)
        status, _, err = cli(
            "collect", "1002", "--response-type", name, "--out", str(tmp_path), *FAST
        )
        assert status == 0, err
        directory = tmp_path / "1002"
        payload = directory / f"payload{suffix}"
        assert payload.is_file(), sorted(p.name for p in directory.iterdir())
        chain = load_certificates(payload.read_bytes())
        assert chain.end_entity == x509.load_pem_x509_certificate(
            (directory / "cert.pem").read_bytes()
        )

    def test_bad_response_type_is_usage_error(self, sim: Simulator, cli: Cli) -> None:
        """An unknown --response-type name exits 2 and lists the valid ones."""
        status, _, err = cli("collect", "1", "--response-type", "zip")
        assert status == 2
        assert "netscape-sequence, pkcs7, individual, cmmf" in err

    def test_waits_for_processing_orders(self, sim: Simulator, tmp_path: Path, cli: Cli) -> None:
        """An order that is processing for a few polls is polled until it is collected."""
        sim.add_order(1003, ready_after_polls=3)
        status, _, err = cli("collect", "1003", "--out", str(tmp_path), *FAST)
        assert status == 0, err
        assert sim.stats.requests_by_order[1003] == 4
        assert (tmp_path / "1003" / "meta.json").is_file()

    def test_skip_existing_then_force(self, sim: Simulator, tmp_path: Path, cli: Cli) -> None:
        """An order with meta.json is skipped without a request, and counted; --force redoes it."""
        sim.add_order(1004)
        assert cli("collect", "1004", "--out", str(tmp_path), *FAST)[0] == 0
        assert sim.stats.requests_total == 1
        cert = tmp_path / "1004" / "cert.pem"
        cert.write_bytes(b"marker")

        status, out, err = cli("collect", "1004", "--out", str(tmp_path), "--json", *FAST)
        assert status == 0
        assert sim.stats.requests_total == 1
        (line,) = json_lines(out)
        assert line["skipped"] is True
        assert line["ok"] is True
        assert line["directory"] == str(tmp_path / "1004")
        assert "1 collected (1 already on disk)" in err
        assert cert.read_bytes() == b"marker"

        status, _, _ = cli("collect", "1004", "--out", str(tmp_path), "--force", *FAST)
        assert status == 0
        assert sim.stats.requests_total == 2
        assert cert.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")

    def test_duplicate_orders_collected_once(
        self, sim: Simulator, tmp_path: Path, cli: Cli
    ) -> None:
        """An order given twice is collected once: two writers of one directory would race."""
        sim.add_order(1005)
        status, out, _ = cli("collect", "1005", "1005", "--out", str(tmp_path), "--json", *FAST)
        assert status == 0
        assert len(json_lines(out)) == 1
        assert sim.stats.requests_total == 1


class TestOrdersFile:
    """--orders-file: one order per line, blank lines and # comments ignored, - for stdin."""

    def test_file(self, sim: Simulator, tmp_path: Path, cli: Cli) -> None:
        """Orders from the file join those from the command line."""
        sim.add_orders([11, 12, 13])
        orders = tmp_path / "orders.txt"
        orders.write_text("# batch of May\n\n12\n  13   # the second one\r\n\n")
        status, out, _ = cli(
            "collect",
            "11",
            "--orders-file",
            str(orders),
            "--out",
            str(tmp_path / "out"),
            "--json",
            *FAST,
        )
        assert status == 0
        assert sorted(o["order_number"] for o in json_lines(out)) == [11, 12, 13]

    def test_stdin(
        self,
        sim: Simulator,
        tmp_path: Path,
        cli: Cli,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """--orders-file - reads standard input."""
        sim.add_orders([21, 22])
        monkeypatch.setattr(sys, "stdin", io.StringIO("21\n22\n"))
        status, out, _ = cli(
            "collect", "--orders-file", "-", "--out", str(tmp_path), "--json", *FAST
        )
        assert status == 0
        assert sorted(o["order_number"] for o in json_lines(out)) == [21, 22]

    def test_bad_line_names_it(self, sim: Simulator, tmp_path: Path, cli: Cli) -> None:
        """A line that is not an order number exits 2 naming the file and line; nothing is sent."""
        orders = tmp_path / "orders.txt"
        orders.write_text("31\n\n3x2\n")  # not order-like: maybe a secret, so not echoed
        status, _, err = cli("collect", "--orders-file", str(orders))
        assert status == 2
        assert f"{orders} line 3: an argument (not shown) is not an order number" in err
        assert sim.stats.requests_total == 0

    def test_missing_file(self, sim: Simulator, cli: Cli) -> None:
        """An orders file that cannot be read exits 2."""
        status, _, err = cli("collect", "--orders-file", "/nonexistent/orders.txt")
        assert status == 2
        assert "cannot be read" in err
        assert "Traceback" not in err

    def test_no_orders(self, sim: Simulator, cli: Cli) -> None:
        """Neither arguments nor a file: exit 2."""
        status, _, err = cli("collect")
        assert status == 2
        assert "no order numbers" in err

    def test_commented_out_orders_and_status_from_stdin(
        self,
        sim: Simulator,
        tmp_path: Path,
        cli: Cli,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A commented-out number and a line of spaces are skipped; status reads - as bytes too."""
        sim.add_orders([23, 24, 25])
        orders = tmp_path / "orders.txt"
        orders.write_text("# my orders\n23\n\n   \n24  # second\n# 25\n")
        argv = ["collect", "--orders-file", str(orders), "--out", str(tmp_path), "--json", *FAST]
        status, out, _ = cli(*argv)
        assert status == 0
        assert sorted(o["order_number"] for o in json_lines(out)) == [23, 24]
        assert (sim.stats.requests_by_order[25], (tmp_path / "25").exists()) == (0, False)
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"# from stdin\n25\n")))
        status, out, _ = cli("status", "--orders-file", "-", "--json")
        assert status == 0
        assert [(o["order_number"], o["status"]) for o in json_lines(out)] == [(25, "AVAILABLE")]


class TestExitStatus:
    """0 success, 1 failure, 2 usage or configuration, 3 still processing, 130 interrupted."""

    def test_failed_order_is_1_and_others_still_collected(
        self, sim: Simulator, tmp_path: Path, cli: Cli
    ) -> None:
        """A rejected order exits 1 with its error object; the good order is still written."""
        sim.add_order(41)
        sim.add_order(42, state=OrderState.REJECTED)
        status, out, err = cli("collect", "41", "42", "--out", str(tmp_path), "--json", *FAST)
        assert status == 1
        lines = {o["order_number"]: o for o in json_lines(out)}
        assert lines[41]["ok"] is True
        assert lines[41]["status"] == "ATTACHED"
        assert lines[41]["error"] is None
        assert lines[42]["ok"] is False
        assert lines[42]["directory"] is None
        assert lines[42]["error"]["type"] == "CertificateRejectedError"
        assert lines[42]["error"]["code"] == -20
        assert "rejected" in lines[42]["error"]["message"]
        assert (tmp_path / "41" / "cert.pem").is_file()
        assert not (tmp_path / "42").exists()
        assert "1 x CertificateRejectedError" in err  # with --json the summary goes to stderr

    def test_poll_timeout_is_1(self, sim: Simulator, tmp_path: Path, cli: Cli) -> None:
        """--timeout applies per order: one that stays processing fails with PollTimeoutError."""
        sim.add_order(43, state=OrderState.PROCESSING)
        status, out, _ = cli(
            "collect", "43", "--timeout", "0.02", "--out", str(tmp_path), "--json", *FAST
        )
        assert status == 1
        (line,) = json_lines(out)
        assert line["error"]["type"] == "PollTimeoutError"
        assert line["error"]["code"] is None
        assert line["status"] == "PROCESSING"

    def test_no_wait_processing_is_3(self, sim: Simulator, tmp_path: Path, cli: Cli) -> None:
        """--no-wait asks once: a processing order is not a failure, but exit 3 says so."""
        sim.add_order(44, ready_after_polls=5)
        sim.add_order(45)
        status, out, _ = cli("collect", "44", "45", "--no-wait", "--out", str(tmp_path), "--json")
        assert status == 3
        lines = {o["order_number"]: o for o in json_lines(out)}
        assert lines[44] == {
            "order_number": 44,
            "ok": True,
            "status": "PROCESSING",
            "error": None,
            "directory": None,
            "skipped": False,
        }
        assert lines[45]["directory"] == str(tmp_path / "45")
        assert sim.stats.requests_total == 2

    def test_rejected_credentials_are_2(
        self,
        sim: Simulator,
        tmp_path: Path,
        cli: Cli,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """-16 exits 2, says what to check once, stops the batch and never shows the password."""
        sim.add_orders([51, 52, 53])
        monkeypatch.setenv("SECTIGO_LOGIN_PASSWORD", WRONG_PASSWORD)
        status, out, err = cli("collect", "51", "52", "53", "--out", str(tmp_path))
        assert status == 2
        assert sim.stats.failed_logins == 1
        assert err.count("Sectigo error -16") == 2  # the progress line and the final error
        assert "check the login name and password" in err
        assert "3 x AuthenticationError" in out

    @pytest.mark.parametrize("terminal_kind", ["plain", "rich"])
    def test_untrusted_certificate_is_2(
        self, sim: Simulator, tmp_path: Path, cli: Cli, terminal_kind: str
    ) -> None:
        """A TLS certificate that is not trusted stops the batch at once: exit 2, said once."""
        sent: list[httpx.Request] = []

        class Untrusted(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                sent.append(request)
                error = httpx.ConnectError("certificate verify failed", request=request)
                error.__cause__ = ssl.SSLCertVerificationError(1, "unable to get local issuer")
                raise error

        untrusted = functools.partial(CollectClient, transport=Untrusted())
        argv = ["collect", "54", "55", "56", "--concurrency", "1", "--out", str(tmp_path), *FAST]
        shown = terminal(progress_bar=terminal_kind == "rich")
        status, out, err = attrs.evolve(cli, client_factory=untrusted)(*argv, terminal=shown)
        assert status == 2
        assert len(sent) == 1  # no retry, no request for the orders after it
        # The first order's line, then the batch's error; the others would only repeat it.
        assert err.count("TLS certificate was not trusted") == 2, err
        assert "3 x TransportError" in out or "failed: TransportError" in out

    def test_http_url_is_2(self, sim: Simulator, cli: Cli) -> None:
        """A plain-HTTP --base-url is refused before anything is sent."""
        status, _, err = cli("collect", "1", "--base-url", "http://example.com/x")
        assert status == 2
        assert "https://" in err
        assert sim.stats.requests_total == 0

    @pytest.mark.parametrize("scheme", ["http", "https"])
    def test_credentials_in_url_are_not_echoed(self, sim: Simulator, cli: Cli, scheme: str) -> None:
        """A --base-url with user:password@ is refused (exit 2) without quoting it."""
        url = f"{scheme}://{LOGIN}:{PASSWORD}@example.test/products/download/CollectSMIME"
        status, _, err = cli("status", "1", "--base-url", url)
        assert status == 2
        assert "--base-url: base_url must not carry credentials" in err
        assert LOGIN not in err  # the URL is not quoted
        assert sim.stats.requests_total == 0

    @pytest.mark.parametrize(
        "argv",
        [
            ["collect", "abc"],
            ["collect", "0"],
            ["collect", "12,13"],
            ["collect", "1", "--concurrency", "0"],
            ["collect", "1", "--timeout", "-1"],
            ["collect", "1", "--poll-interval", "nan"],
            ["collect", "1", "--max-retries", "three"],
            ["collect", "1", "--timeout", "soon"],
            ["frobnicate"],
            [],
        ],
        ids=[
            "word",
            "zero",
            "comma",
            "concurrency",
            "timeout",
            "nan",
            "count-word",
            "seconds-word",
            "command",
            "nothing",
        ],
    )
    def test_usage_errors_are_2(self, sim: Simulator, cli: Cli, argv: list[str]) -> None:
        """Arguments argparse refuses exit 2 with a usage message, never a traceback."""
        status, _, err = cli(*argv)
        assert status == 2
        assert "usage:" in err
        assert "Traceback" not in err

    def test_order_like_value_is_echoed(self, sim: Simulator, cli: Cli) -> None:
        """A mistyped order number (digits and separators) is shown, to help fix it."""
        status, _, err = cli("collect", "12,13")
        assert status == 2
        assert "'12,13' is not an order number" in err

    def test_missing_ca_bundle_is_2(self, sim: Simulator, cli: Cli) -> None:
        """A --ca-bundle that is not a file is a configuration error."""
        shipped = attrs.evolve(cli, client_factory=CollectClient)
        status, _, err = shipped("status", "1", "--ca-bundle", "/nonexistent/ca.pem")
        assert status == 2
        assert "--ca-bundle '/nonexistent/ca.pem' is not a readable file" in err

    def test_ca_bundle_not_pem_is_2(self, sim: Simulator, tmp_path: Path, cli: Cli) -> None:
        """A --ca-bundle holding no PEM certificates is refused before anything is sent."""
        bundle = tmp_path / "ca.pem"
        bundle.write_text("not a certificate\n")
        shipped = attrs.evolve(cli, client_factory=CollectClient)
        status, _, err = shipped("status", "1", "--ca-bundle", str(bundle))
        assert status == 2
        assert "CA bundle" in err

    def test_http_error_after_retries_is_1(self, sim: Simulator, tmp_path: Path, cli: Cli) -> None:
        """An HTTP error that outlives the retries fails the order with its HTTP status."""
        sim.add_order(46)
        sim.inject(Fault.HTTP_503, order_number=46)
        status, out, _ = cli(
            "collect", "46", "--max-retries", "0", "--out", str(tmp_path), "--json", *FAST
        )
        assert status == 1
        error = json_lines(out)[0]["error"]
        assert error["type"] == "TransportError"
        assert error["http_status"] == 503
        assert error["code"] is None

    @pytest.mark.parametrize("fault", [Fault.HTTP_503, Fault.DROP_CONNECTION])
    def test_without_retries_nothing_says_retried(
        self, sim: Simulator, tmp_path: Path, cli: Cli, fault: Fault
    ) -> None:
        """With --max-retries 0 a transient failure is asked once, and not called retried."""
        sim.add_order(47)
        sim.inject(fault, order_number=47)
        argv = ["collect", "47", "--max-retries", "0", "--out", str(tmp_path), "--json", *FAST]
        status, out, err = cli(*argv)
        assert status == 1
        assert sim.stats.requests_by_order[47] == 1
        assert "retried" not in json_lines(out)[0]["error"]["message"]
        assert "retried" not in err

    def test_internal_error_is_one_line(self, sim: Simulator, cli: Cli) -> None:
        """A bug surfaces as one line asking for a report, not a traceback."""

        def broken(*args: object, **kwargs: object) -> CollectClient:
            raise RuntimeError("boom")

        status, _, err = attrs.evolve(cli, client_factory=broken)("status", "1")
        assert status == 1
        assert (
            err
            == "smime-collect: internal error: RuntimeError: boom (please report this as a bug)\n"
        )

    def test_help_and_version_are_0(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--help and --version exit 0."""
        assert main(["--version"]) == 0
        assert main(["collect", "--help"]) == 0
        out = capsys.readouterr().out
        assert "--password-file" in out
        assert "--password " not in out  # there is no password option

    def test_a_failure_outranks_still_processing(
        self, sim: Simulator, tmp_path: Path, cli: Cli
    ) -> None:
        """With --no-wait, a failed order exits 1 though another is still processing."""
        sim.add_order(48)
        sim.add_order(49, state=OrderState.PROCESSING)
        sim.add_order(50, state=OrderState.REVOKED)
        argv = ["collect", "48", "49", "50", "--no-wait", "--out", str(tmp_path), "--json"]
        status, out, _ = cli(*argv)
        assert status == 1
        lines = {o["order_number"]: o for o in json_lines(out)}
        assert [(n, lines[n]["ok"], lines[n]["status"]) for n in sorted(lines)] == [
            (48, True, "ATTACHED"),
            (49, True, "PROCESSING"),
            (50, False, None),
        ]
        error = lines[50]["error"]
        assert (error["type"], error["code"], bool(error["message"])) == (
            "CertificateRevokedError",
            -21,
            True,
        )
        assert sorted(p.name for p in tmp_path.iterdir()) == ["48"]


class TestHelp:
    """Each command's --help lists what it does, and nothing it does not."""

    def help_text(self, capsys: pytest.CaptureFixture[str], command: str) -> str:
        """The --help of one command, on one line (argparse wraps at the terminal width)."""
        assert main([command, "--help"]) == 0
        return " ".join(capsys.readouterr().out.split())

    @pytest.mark.parametrize("command", ["collect", "status"])
    def test_default_url_is_shown(self, capsys: pytest.CaptureFixture[str], command: str) -> None:
        """The endpoint used without --base-url is named in --help, unbroken."""
        assert main([command, "--help"]) == 0
        assert f"\ndefault endpoint (--base-url): {DEFAULT_URL}\n" in capsys.readouterr().out

    def test_status_lists_no_poll_options(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The --help of status, which asks once, has no polling options; collect's has them."""
        status_help = self.help_text(capsys, "status")
        assert "poll" not in status_help.replace("no polling", "")
        assert "--max-poll-interval S longest wait between polls" in self.help_text(
            capsys, "collect"
        )

    def test_collect_says_how_files_are_created(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The --help of collect says that certificate files are 0644 less the umask."""
        assert "created with mode 0644 less the umask" in self.help_text(capsys, "collect")

    def test_demo_says_what_it_does_to_out(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The --help of demo says which --out it accepts, and what it replaces there."""
        text = self.help_text(capsys, "demo")
        assert "whose order directories are replaced; any other directory is refused" in text
        assert "--concurrency N requests in flight at once (default 8)" in text

    def test_inspect_verify_says_what_is_not_checked(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The --help of inspect says that --verify checks no dates, trust or revocation."""
        assert "validity dates, trust in the root and revocation are not checked" in (
            self.help_text(capsys, "inspect")
        )

    @pytest.mark.parametrize("option", ["--password", "--pass", "--password-f", "--pwd"])
    def test_no_password_option(self, sim: Simulator, cli: Cli, option: str) -> None:
        """No option takes a password, not even as an abbreviation of --password-file."""
        status, _, err = cli("collect", "1", option, "hunter2-secret")
        assert status == 2
        assert f"unrecognized arguments: {option} (and 1 value not shown)" in err
        assert "there is no password option: set SECTIGO_LOGIN_PASSWORD" in err
        assert "hunter2-secret" not in err

    @pytest.mark.parametrize(
        "argv",
        [["collect", "1", "--foo"], ["demo", "--frobnicate", "4"], ["inspect", "x", "--colour"]],
        ids=["collect", "demo", "inspect"],
    )
    def test_unknown_option_is_not_called_a_password(self, offline: Cli, argv: list[str]) -> None:
        """An unknown option that does not look like a password gets no password advice."""
        status, _, err = offline(*argv)
        assert status == 2
        assert f"unrecognized arguments: {argv[-2] if argv[0] == 'demo' else argv[-1]}" in err
        assert "password" not in err

    @pytest.mark.parametrize(
        "argv",
        [
            ["collect", "--password=hunter2-secret", "1"],
            ["collect", "--pass", "hunter2-secret", "2"],
            ["status", "hunter2-secret"],
        ],
        ids=["equals", "before-orders", "as-order"],
    )
    def test_misplaced_secret_never_echoed(self, sim: Simulator, cli: Cli, argv: list[str]) -> None:
        """A password typed on the command line by mistake is refused without being echoed."""
        status, out, err = cli(*argv)
        assert status == 2
        assert "hunter2-secret" not in out + err

    def test_ctrl_c_is_130(self, sim: Simulator, tmp_path: Path, cli: Cli) -> None:
        """Ctrl-C during a batch exits 130 with one line, no traceback."""

        class Interrupting(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                raise KeyboardInterrupt

        interrupted = functools.partial(CollectClient, transport=Interrupting())
        status, _, err = attrs.evolve(cli, client_factory=interrupted)(
            "collect", "1", "--out", str(tmp_path), *FAST
        )
        assert status == 130
        assert err.strip().endswith("smime-collect: interrupted")
        assert "Traceback" not in err


class TestCredentials:
    """Credentials come from the environment, its _FILE variants or --password-file only."""

    def test_missing_credentials_message(self, clean_env: pytest.MonkeyPatch, offline: Cli) -> None:
        """Without credentials: exit 2 and a message naming every way to give them."""
        status, _, err = offline("collect", "1")
        assert status == 2
        assert "SECTIGO_LOGIN_NAME (or SECTIGO_LOGIN_NAME_FILE)" in err
        assert "SECTIGO_LOGIN_PASSWORD (or SECTIGO_LOGIN_PASSWORD_FILE, or --password-file)" in err
        assert len(err.strip().splitlines()) == 1

    def test_missing_password_only(
        self, sim: Simulator, clean_env: pytest.MonkeyPatch, cli: Cli
    ) -> None:
        """With only the login name set, the message names only the password."""
        clean_env.delenv("SECTIGO_LOGIN_PASSWORD")
        status, _, err = cli("status", "1")
        assert status == 2
        assert "SECTIGO_LOGIN_NAME " not in err
        assert "SECTIGO_LOGIN_PASSWORD" in err

    def test_password_file(
        self,
        sim: Simulator,
        clean_env: pytest.MonkeyPatch,
        tmp_path: Path,
        cli: Cli,
    ) -> None:
        """--password-file is read, its trailing newline stripped, and wins over the variable."""
        clean_env.setenv("SECTIGO_LOGIN_PASSWORD", WRONG_PASSWORD)
        secret = tmp_path / "password"
        secret.write_text(PASSWORD + "\n")
        sim.add_order(61)
        status, _, err = cli("status", "61", "--password-file", str(secret), "--json")
        assert status == 0, err
        assert sim.stats.failed_logins == 0

    def test_password_file_unreadable(self, sim: Simulator, tmp_path: Path, cli: Cli) -> None:
        """A --password-file that cannot be read exits 2 naming the path, not a traceback."""
        missing = tmp_path / "nope"
        status, _, err = cli("status", "1", "--password-file", str(missing))
        assert status == 2
        assert f"--password-file {str(missing)!r} cannot be read" in err

    def test_file_variables(
        self,
        sim: Simulator,
        clean_env: pytest.MonkeyPatch,
        tmp_path: Path,
        cli: Cli,
    ) -> None:
        """SECTIGO_LOGIN_NAME_FILE and SECTIGO_LOGIN_PASSWORD_FILE name files holding the values."""
        for name in ("SECTIGO_LOGIN_NAME", "SECTIGO_LOGIN_PASSWORD"):
            clean_env.delenv(name)
        (tmp_path / "login").write_text(LOGIN + "\r\n")
        (tmp_path / "password").write_text(PASSWORD + "\n")
        clean_env.setenv("SECTIGO_LOGIN_NAME_FILE", str(tmp_path / "login"))
        clean_env.setenv("SECTIGO_LOGIN_PASSWORD_FILE", str(tmp_path / "password"))
        sim.add_order(62)
        status, out, _ = cli("status", "62", "--json")
        assert status == 0
        assert json_lines(out)[0]["status"] == "AVAILABLE"

    def test_empty_password_file(self, sim: Simulator, tmp_path: Path, cli: Cli) -> None:
        """A password file holding only a newline is a configuration error."""
        secret = tmp_path / "password"
        secret.write_text("\n")
        status, _, err = cli("status", "1", "--password-file", str(secret))
        assert status == 2
        assert "is empty" in err

    @pytest.mark.parametrize("name", ["SECTIGO_LOGIN_NAME", "SECTIGO_LOGIN_PASSWORD"])
    def test_empty_file_variable(
        self, sim: Simulator, clean_env: pytest.MonkeyPatch, tmp_path: Path, cli: Cli, name: str
    ) -> None:
        """A _FILE variable naming an empty file is refused before any request is sent."""
        clean_env.delenv(name)
        (tmp_path / "empty").write_text("\n")
        clean_env.setenv(f"{name}_FILE", str(tmp_path / "empty"))
        status, _, err = cli("status", "1")
        assert status == 2
        path = str(tmp_path / "empty")
        assert err == f"smime-collect: error: {name}_FILE names {path!r}, which is empty\n"
        assert sim.stats.requests_total == 0

    def test_unreadable_file_variable(
        self, sim: Simulator, clean_env: pytest.MonkeyPatch, tmp_path: Path, cli: Cli
    ) -> None:
        """A _FILE variable naming a missing file exits 2 with the library's message."""
        clean_env.delenv("SECTIGO_LOGIN_PASSWORD")
        clean_env.setenv("SECTIGO_LOGIN_PASSWORD_FILE", str(tmp_path / "missing"))
        status, _, err = cli("status", "1")
        assert status == 2
        assert f"SECTIGO_LOGIN_PASSWORD_FILE names {str(tmp_path / 'missing')!r}" in err
        assert "cannot be read" in err
        assert sim.stats.requests_total == 0


class TestStatus:
    """status asks queryType 0 once per order and writes nothing."""

    def test_lines(self, sim: Simulator, tmp_path: Path, cli: Cli) -> None:
        """One line per order; a processing order makes the exit status 3."""
        sim.add_order(71)
        sim.add_order(72, ready_after_polls=2)
        status, out, err = cli("status", "71", "72")
        assert status == 3
        assert sorted(out.splitlines()) == ["71: AVAILABLE", "72: PROCESSING"]
        assert "2 orders, 1 answered, 1 still processing, 0 failed" in err
        assert sim.stats.requests_total == 2

    def test_json_and_failure(self, sim: Simulator, cli: Cli) -> None:
        """--json gives one object per order; a revoked order exits 1."""
        sim.add_order(73)
        sim.add_order(74, state=OrderState.REVOKED)
        status, out, _ = cli("status", "73", "74", "--json")
        assert status == 1
        lines = {o["order_number"]: o for o in json_lines(out)}
        assert lines[73]["status"] == "AVAILABLE"
        assert lines[73]["directory"] is None
        assert lines[74]["error"]["code"] == -21

    def test_all_available_is_0(self, sim: Simulator, cli: Cli) -> None:
        """Every order available: exit 0."""
        sim.add_orders([75, 76])
        assert cli("status", "75", "76")[0] == 0

    def test_poll_options_accepted_and_unused(self, sim: Simulator, cli: Cli) -> None:
        """The polling options collect takes are accepted by status, which asks only once."""
        sim.add_order(77, ready_after_polls=3)
        status, out, _ = cli("status", "77", "--poll-interval", "0.001", "--max-poll-interval", "1")
        assert status == 3
        assert out == "77: PROCESSING\n"
        assert sim.stats.requests_total == 1

    def test_concurrency_bounds_requests_in_flight(self, sim: Simulator, cli: Cli) -> None:
        """--concurrency 1 keeps one request in flight, where by default they overlap."""

        async def answer_later(seconds: float) -> None:
            del seconds  # the simulator's latency: let the other requests start meanwhile
            for _ in range(50):
                await asyncio.sleep(0)

        sim.chaos = Chaos(latency=1.0)
        sim.sleep = answer_later
        sim.add_orders([78, 79, 80, 81])
        argv = ["status", "78", "79", "80", "81"]
        status, out, _ = cli(*argv, "--concurrency", "1")
        assert status == 0
        assert sorted(out.splitlines()) == [f"{n}: AVAILABLE" for n in (78, 79, 80, 81)]
        assert (sim.stats.max_in_flight, sim.stats.requests_total) == (1, 4)
        sim.stats.reset()
        assert cli(*argv)[0] == 0
        assert sim.stats.max_in_flight > 1


def _write_chain_pem(path: Path) -> tuple[x509.Certificate, ...]:
    certificates = TestCA.create().issue_smime("inspect@example.com").certificates()
    # Root first, as Sectigo's own sample lists them: the roles must not depend on order.
    path.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in reversed(certificates)))
    return certificates


class TestInspect:
    """inspect loads files and prints the classified chain."""

    def test_good_file(self, tmp_path: Path, offline: Cli) -> None:
        """Roles, subject, issuer, validity and the SHA-256 fingerprint are printed; exit 0."""
        end_entity, intermediate, root = _write_chain_pem(tmp_path / "chain.pem")
        status, out, _ = offline("inspect", str(tmp_path / "chain.pem"))
        assert status == 0
        assert "3 certificates" in out
        for role in ("end entity", "intermediate", "root"):
            assert f"  {role}\n" in out
        for certificate in (end_entity, intermediate, root):
            assert certificate.subject.rfc4514_string() in out
        assert end_entity.fingerprint(hashes.SHA256()).hex(":").upper() in out
        assert end_entity.not_valid_after_utc.isoformat() in out
        assert "inspect@example.com" in out
        assert out.index("end entity") < out.index("intermediate") < out.index("  root")

    def test_json(self, tmp_path: Path, offline: Cli) -> None:
        """--json gives one object per file with one row per certificate, in chain order."""
        certificates = _write_chain_pem(tmp_path / "chain.pem")
        status, out, _ = offline("inspect", "--json", str(tmp_path / "chain.pem"))
        assert status == 0
        (line,) = json_lines(out)
        assert line["ok"] is True
        assert [row["role"] for row in line["certificates"]] == [
            "end entity",
            "intermediate",
            "root",
        ]
        assert [row["subject"] for row in line["certificates"]] == [
            c.subject.rfc4514_string() for c in certificates
        ]

    def test_verify(self, tmp_path: Path, offline: Cli) -> None:
        """--verify checks every link: a good chain exits 0, one with a foreign CA exits 1."""
        _write_chain_pem(tmp_path / "good.pem")
        status, out, _ = offline("inspect", "--verify", str(tmp_path / "good.pem"))
        assert status == 0
        assert (
            "  verify: 3 signatures checked, all valid: end entity <- intermediate, "
            "intermediate <- root, root (self-signed)\n"
        ) in out
        assert "  verify: never checked: validity dates, trust in any root, revocation\n" in out

        # The end entity claims the test CA's intermediate, but another CA's root and
        # intermediate (same names, other keys) come with it.
        own = TestCA.create().issue_smime("broken@example.com")
        other = TestCA.create(key_type="rsa")
        mixed = (own.end_entity, *other.intermediates, other.root)
        (tmp_path / "mixed.pem").write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in mixed))
        status, out, _ = offline("inspect", "--verify", "--json", str(tmp_path / "mixed.pem"))
        assert status == 1
        (line,) = json_lines(out)
        assert line["ok"] is False
        assert line["error"]["type"] == "ChainError"
        status, _, err = offline("inspect", "--verify", str(tmp_path / "mixed.pem"))
        assert status == 1
        assert "mixed.pem: chain does not verify" in err

    def test_verify_lone_end_entity_says_nothing_was_checked(
        self, tmp_path: Path, offline: Cli
    ) -> None:
        """A lone end entity has no link to check: --verify says so, and what it never checks."""
        issued = TestCA.create().issue_smime("lone@example.com")
        (tmp_path / "cert.pem").write_bytes(issued.end_entity.public_bytes(Encoding.PEM))
        status, out, _ = offline("inspect", "--verify", str(tmp_path / "cert.pem"))
        assert status == 0  # nothing is broken
        assert "every signature" not in out
        issuer = issued.end_entity.issuer.rfc4514_string()
        assert out.endswith(
            "  verify: no signature checked\n"
            f"  verify: the end entity's signature is not checked: its issuer ({issuer}) "
            "is not in the file\n"
            "  verify: never checked: validity dates, trust in any root, revocation\n"
        )

    def test_verify_json_names_the_links(self, tmp_path: Path, offline: Cli) -> None:
        """--verify --json lists each signature checked, the missing issuers, and what is not."""
        end_entity, intermediate, root = _write_chain_pem(tmp_path / "chain.pem")
        (tmp_path / "two.pem").write_bytes(
            b"".join(c.public_bytes(Encoding.PEM) for c in (end_entity, intermediate))
        )
        argv = ["inspect", "--verify", "--json", str(tmp_path / "chain.pem")]
        status, out, _ = offline(*argv, str(tmp_path / "two.pem"))
        assert status == 0
        full, partial = json_lines(out)

        def name(certificate: x509.Certificate) -> str:
            return certificate.subject.rfc4514_string()

        assert full["verification"] == {
            "checked": [
                {"subject": name(end_entity), "issuer": name(intermediate)},
                {"subject": name(intermediate), "issuer": name(root)},
                {"subject": name(root), "issuer": name(root)},
            ],
            "issuer_missing": [],
            "not_checked": ["validity dates", "trust in any root", "revocation"],
        }
        assert partial["verification"]["checked"] == [
            {"subject": name(end_entity), "issuer": name(intermediate)}
        ]
        assert partial["verification"]["issuer_missing"] == [name(intermediate)]

    def test_verify_names_several_intermediates(self, tmp_path: Path, offline: Cli) -> None:
        """With more than one intermediate each is numbered, in chain order."""
        issued = TestCA.create(intermediates=2).issue_smime("deep@example.com")
        (tmp_path / "deep.pem").write_bytes(
            b"".join(c.public_bytes(Encoding.PEM) for c in issued.certificates())
        )
        status, out, _ = offline("inspect", "--verify", str(tmp_path / "deep.pem"))
        assert status == 0
        assert (
            "4 signatures checked, all valid: end entity <- intermediate 1, "
            "intermediate 1 <- intermediate 2, intermediate 2 <- root, root (self-signed)"
        ) in out

    def test_stdin(self, tmp_path: Path, offline: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
        """FILE - reads standard input, as bytes."""
        certificates = TestCA.create().issue_smime("stdin@example.com").certificates()
        stdin = io.TextIOWrapper(io.BytesIO(to_pkcs7_der(certificates)))
        monkeypatch.setattr(sys, "stdin", stdin)
        status, out, _ = offline("inspect", "-")
        assert status == 0
        assert out.startswith("-: 3 certificates\n")

    def test_oversized_file_is_1(self, tmp_path: Path, offline: Cli) -> None:
        """A file over 16 MiB is refused without being loaded."""
        big = tmp_path / "big.pem"
        with big.open("wb") as handle:
            handle.truncate(16 * 1024 * 1024 + 1)
        status, _, err = offline("inspect", str(big))
        assert status == 1
        assert err == f"smime-collect: {big}: larger than 16 MiB: not certificate data\n"

    def test_pkcs7_and_zip(self, tmp_path: Path, offline: Cli) -> None:
        """Binary containers load too."""
        certificates = TestCA.create().issue_smime("zip@example.com").certificates()
        (tmp_path / "c.p7b").write_bytes(to_pkcs7_der(certificates))
        (tmp_path / "c.zip").write_bytes(to_zip({"c.p7b": to_pkcs7_der(certificates)}))
        status, out, _ = offline("inspect", str(tmp_path / "c.p7b"), str(tmp_path / "c.zip"))
        assert status == 0
        assert out.count("3 certificates") == 2

    def test_bad_and_missing_files_are_1(self, tmp_path: Path, offline: Cli) -> None:
        """A file that is not certificate data, or is missing, exits 1; good files still print."""
        _write_chain_pem(tmp_path / "good.pem")
        (tmp_path / "bad.txt").write_bytes(b"hello, not a certificate\n")
        status, out, err = offline(
            "inspect",
            str(tmp_path / "bad.txt"),
            str(tmp_path / "good.pem"),
            str(tmp_path / "missing.pem"),
        )
        assert status == 1
        assert "good.pem: 3 certificates" in out
        assert f"{tmp_path / 'bad.txt'}: " in err
        assert f"{tmp_path / 'missing.pem'}: No such file or directory" in err
        assert "Traceback" not in err

    def test_bad_file_json(self, tmp_path: Path, offline: Cli) -> None:
        """With --json a failed file gets an object with its error."""
        (tmp_path / "empty.pem").write_bytes(b"")
        status, out, _ = offline("inspect", "--json", str(tmp_path / "empty.pem"))
        assert status == 1
        (line,) = json_lines(out)
        assert line["ok"] is False
        assert line["error"]["type"] == "CertificateFormatError"


class TestFiles:
    """The file layer: atomic writes and payload naming."""

    def test_atomic_write_keeps_old_file_on_failure(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """When the rename fails the old file is intact and no temporary file is left."""
        target = tmp_path / "cert.pem"
        target.write_bytes(b"old")

        def broken_replace(source: str, destination: Path) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "replace", broken_replace)
        with pytest.raises(OSError, match="No space left"):
            atomic_write(target, b"new")
        assert target.read_bytes() == b"old"
        assert [p.name for p in tmp_path.iterdir()] == ["cert.pem"]

    def test_atomic_write_replaces(self, tmp_path: Path) -> None:
        """A successful write replaces the content completely."""
        target = tmp_path / "meta.json"
        target.write_bytes(b"a much longer old content")
        atomic_write(target, b"{}")
        assert target.read_bytes() == b"{}"

    @pytest.mark.parametrize(
        ("payload", "suffix"),
        [
            (b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", ".pem"),
            (b"----- BEGIN CERTIFICATE -----\nMIIB\n----END CERTIFICATE-----\n", ".pem"),
            (b"MIIBkTCCATegAwIBAgIU\nAAAA\n", ".b64"),
            (to_pkcs7_der(TestCA.create().ca_certificates()), ".p7b"),
            (to_base64(to_pkcs7_der(TestCA.create().ca_certificates())), ".p7b.b64"),
            (to_netscape_sequence_der(TestCA.create().ca_certificates()), ".nsc"),
            (to_base64(to_netscape_sequence_der(TestCA.create().ca_certificates())), ".nsc.b64"),
            (to_base64(CMMF), ".cmmf.b64"),
            (TestCA.create().root.public_bytes(Encoding.DER), ".der"),
            (to_base64(TestCA.create().root.public_bytes(Encoding.DER)), ".der.b64"),
            (to_zip({"a.pem": b"x"}), ".zip"),
            (b"\x00\x01\x02 binary junk", ".bin"),
            (b"-" * 100_000 + b"BEGIN", ".bin"),  # linear: a quadratic scan would hang here
            (b"BEGIN CERTIFICATE-----", ".bin"),  # no leading dashes: not armour
        ],
        ids=[
            "pem",
            "sloppy-pem",
            "base64",
            "pkcs7",
            "pkcs7-base64",
            "netscape",
            "netscape-base64",
            "cmmf-base64",
            "der",
            "der-base64",
            "zip",
            "junk",
            "dashes",
            "no-dashes",
        ],
    )
    def test_payload_format(self, payload: bytes, suffix: str) -> None:
        """The payload's extension says what it holds, judged from its bytes."""
        assert payload_format(payload)[0] == suffix

    def test_unwritable_out_is_2(self, sim: Simulator, tmp_path: Path, cli: Cli) -> None:
        """An --out that cannot be created (a file is in the way) exits 2."""
        blocker = tmp_path / "file"
        blocker.write_text("x")
        status, _, err = cli("collect", "1", "--out", str(blocker / "sub"))
        assert status == 2
        assert "cannot be created" in err


@pytest.fixture
def umask() -> Iterator[Callable[[int], int]]:
    """Set the process's umask for one test, then put the previous one back."""
    previous = os.umask(0o022)
    os.umask(previous)
    try:
        yield os.umask
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class TestFileModes:
    """Certificates are public: 0644 less the umask; private material 0600 whatever it is."""

    @pytest.mark.parametrize(
        ("mask", "expected"),
        [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600), (0o000, 0o644)],
        ids=["022", "027", "077", "000"],
    )
    def test_order_files(
        self, tmp_path: Path, umask: Callable[[int], int], mask: int, expected: int
    ) -> None:
        """Every file of an order, meta.json included, gets 0644 less the umask."""
        issued = TestCA.create().issue_smime("modes@example.com")
        payload = b"".join(c.public_bytes(Encoding.PEM) for c in issued.certificates())
        result = CollectResult(
            12, Status.ATTACHED, chain=load_certificates(payload), payload=payload
        )
        umask(mask)
        directory = write_order_files(tmp_path, result).directory
        written = sorted(directory.iterdir())
        assert [p.name for p in written] == [
            "cert.pem",
            "chain.pem",
            "fullchain.pem",
            "meta.json",
            "payload.pem",
            "root.pem",
        ]
        assert {p.name: _mode(p) for p in written} == {p.name: expected for p in written}

    def test_collect_writes_readable_certificates(
        self, sim: Simulator, tmp_path: Path, cli: Cli, umask: Callable[[int], int]
    ) -> None:
        """Through the command, with the usual umask 022, a certificate file is 0644."""
        sim.add_order(13)
        umask(0o022)
        assert cli("collect", "13", "--out", str(tmp_path), *FAST)[0] == 0
        assert _mode(tmp_path / "13" / "cert.pem") == 0o644
        assert _mode(tmp_path / "13" / "meta.json") == 0o644

    def test_private_material_is_0600(self, tmp_path: Path, umask: Callable[[int], int]) -> None:
        """A private file is 0600 even with a umask that would let everyone read it."""
        umask(0o000)
        atomic_write(tmp_path / "key.pem", b"private", private=True)
        assert _mode(tmp_path / "key.pem") == 0o600

    def test_replacing_keeps_no_old_mode(self, tmp_path: Path, umask: Callable[[int], int]) -> None:
        """A file written 0600 by an earlier version becomes 0644 when written again."""
        target = tmp_path / "cert.pem"
        target.write_bytes(b"old")
        target.chmod(0o600)
        umask(0o022)
        atomic_write(target, b"new")
        assert (_mode(target), target.read_bytes()) == (0o644, b"new")


class TestOrderFiles:
    """write_order_files and the failures of the disk around it."""

    def test_ca_bundle_result_and_reported_validity(self, tmp_path: Path) -> None:
        """Without an end entity: no cert.pem, fullchain is the intermediates; validity kept."""
        ca = TestCA.create()
        payload = b"".join(c.public_bytes(Encoding.PEM) for c in ca.ca_certificates())
        result = CollectResult(
            order_number=5,
            status=Status.ATTACHED,
            validity=ValidityPeriod.from_line("01/02/2026 01/02/2027"),
            chain=load_certificates(payload),
            payload=payload,
        )
        directory = write_order_files(tmp_path, result).directory
        assert not (directory / "cert.pem").exists()
        assert (directory / "fullchain.pem").read_bytes() == (directory / "chain.pem").read_bytes()
        assert x509.load_pem_x509_certificates((directory / "root.pem").read_bytes()) == [ca.root]
        meta = json.loads((directory / "meta.json").read_text())
        assert "serial" not in meta
        assert meta["reported_validity"] == {
            "not_before": "2026-02-01T00:00:00+00:00",
            "not_after": "2027-02-01T23:59:59+00:00",
        }

    def test_no_chain_refused(self, tmp_path: Path) -> None:
        """A PROCESSING result has nothing to write."""
        with pytest.raises(ValueError, match="no certificates"):
            write_order_files(tmp_path, CollectResult(order_number=6, status=Status.PROCESSING))

    def test_force_drops_stale_payload(self, sim: Simulator, tmp_path: Path, cli: Cli) -> None:
        """Re-collecting in another form replaces payload.b64 by payload.pem, not beside it."""
        sim.add_order(7)
        args = ["collect", "7", "--out", str(tmp_path), *FAST]
        assert cli(*args, "--response-type", "pkcs7")[0] == 0
        assert cli(*args, "--response-type", "individual", "--force")[0] == 0
        assert sorted(p.name for p in (tmp_path / "7").glob("payload.*")) == ["payload.pem"]

    def test_unwritable_order_directory_fails_the_order(
        self, sim: Simulator, tmp_path: Path, cli: Cli
    ) -> None:
        """A file where the order's directory should be fails that order (exit 1), not the run."""
        sim.add_orders([8, 9])
        (tmp_path / "8").write_text("in the way")
        argv = ["collect", "8", "9", "--out", str(tmp_path), "--json", *FAST]
        status, out, _ = cli(*argv)
        assert status == 1
        lines = {o["order_number"]: o for o in json_lines(out)}
        assert lines[8]["ok"] is False
        assert lines[8]["error"]["type"] == "NotADirectoryError"  # looking for its meta.json
        assert lines[9]["ok"] is True
        assert sim.stats.requests_by_order[8] == 0

        # With --force the order is collected, then writing its directory fails.
        status, out, _ = cli(*argv, "--force")
        assert status == 1
        lines = {o["order_number"]: o for o in json_lines(out)}
        assert lines[8]["status"] == "ATTACHED"
        assert lines[8]["error"]["type"] == "FileExistsError"
        assert lines[9]["ok"] is True

    def test_unreadable_meta_fails_the_order(
        self, sim: Simulator, tmp_path: Path, cli: Cli
    ) -> None:
        """A meta.json that cannot be read (a directory) fails the order without a request."""
        (tmp_path / "10" / "meta.json").mkdir(parents=True)
        status, out, _ = cli("collect", "10", "--out", str(tmp_path), "--json", *FAST)
        assert status == 1
        assert json_lines(out)[0]["error"]["type"] == "IsADirectoryError"
        assert sim.stats.requests_total == 0

    def test_no_root_file_without_a_root(self, sim: Simulator, tmp_path: Path, cli: Cli) -> None:
        """root.pem is written only when the response carried a root; fullchain.pem still is."""
        sim.quirks = Quirks(include_root=False)
        sim.add_order(11)
        assert cli("collect", "11", "--out", str(tmp_path), *FAST)[0] == 0
        directory = tmp_path / "11"
        written = {p.name for p in directory.iterdir() if not p.name.startswith("payload.")}
        assert written == {"cert.pem", "chain.pem", "fullchain.pem", "meta.json"}
        assert x509.load_pem_x509_certificates((directory / "fullchain.pem").read_bytes()) == [
            x509.load_pem_x509_certificate((directory / "cert.pem").read_bytes()),
            *sim.ca.intermediates,
        ]


class TestProgress:
    """Progress: rich on a terminal, plain lines otherwise."""

    def test_rich_when_terminal(self, sim: Simulator, tmp_path: Path, cli: Cli) -> None:
        """On a terminal with rich installed the summary is a table; failures still show."""
        sim.add_order(81)
        sim.add_order(82, state=OrderState.AWAITING_PAYMENT)
        status, out, err = cli(
            "collect",
            "81",
            "82",
            "--out",
            str(tmp_path),
            *FAST,
            terminal=terminal(progress_bar=True),
        )
        assert status == 1
        assert "smime-collect summary" in out
        assert "failed: AwaitingPaymentError" in out
        assert "82: FAILED" in err
        assert "[1/2]" not in err  # not the plain format

    def test_inspect_table_on_terminal(
        self, tmp_path: Path, offline: Cli, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """On a terminal inspect draws a rich table with every certificate's fingerprint."""
        certificates = _write_chain_pem(tmp_path / "chain.pem")
        monkeypatch.setenv("COLUMNS", "400")
        status, out, _ = offline(
            "inspect", str(tmp_path / "chain.pem"), terminal=terminal(tables=True)
        )
        assert status == 0
        out = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)  # terminal colours
        assert "3 certificates" in out
        assert "SHA-256" in out
        assert "  end entity\n" not in out  # not the plain format
        for certificate in certificates:
            fingerprint = certificate.fingerprint(hashes.SHA256()).hex(":").upper()
            assert fingerprint in out

    def test_inspect_table_prints_values_verbatim(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Rich markup and emoji codes in certificate values are printed as they are."""
        monkeypatch.setenv("COLUMNS", "200")
        row = {
            "role": "root",
            "subject": "CN=[bold]Evil[/bold] :smile:",
            "issuer": "CN=x",
            "not_before": "2026-01-01T00:00:00+00:00",
            "not_after": "2027-01-01T23:59:59+00:00",
            "sha256_fingerprint": "00:AB:CD:EF:01",
        }
        _chains._print_chain_rich("[red]file.pem", "1 certificate", [row], sys.stdout)
        out = capsys.readouterr().out
        for text in ("CN=[bold]Evil[/bold] :smile:", "00:AB:CD:EF:01", "[red]file.pem"):
            assert text in out

    def test_rich_summary_counts_every_outcome(
        self, sim: Simulator, tmp_path: Path, cli: Cli
    ) -> None:
        """The summary table has a row for orders on disk already and still processing."""
        sim.add_order(84)
        sim.add_order(85, ready_after_polls=3)
        assert cli("collect", "84", "--out", str(tmp_path), *FAST)[0] == 0
        argv = ["collect", "84", "85", "--no-wait", "--out", str(tmp_path)]
        status, out, _ = cli(*argv, terminal=terminal(progress_bar=True))
        assert status == 3
        rows = {
            line.split("│")[1].strip(): line.split("│")[2].strip()
            for line in out.splitlines()
            if line.count("│") == 3
        }
        assert rows == {
            "collected": "0",
            "already on disk": "1",
            "still processing": "1",
            "total": "2",
        }

    def test_plain_lines_by_default(self, sim: Simulator, tmp_path: Path, cli: Cli) -> None:
        """Where rich may not draw, each order gets one numbered plain line on stderr."""
        sim.add_order(83)
        status, _, err = cli("collect", "83", "--out", str(tmp_path), *FAST, terminal=terminal())
        assert status == 0
        assert "[1/1] 83: collected into" in err

    @pytest.mark.parametrize(
        ("stdout_tty", "stderr_tty", "rich", "expected"),
        [
            (False, True, True, (True, False)),
            (True, False, True, (False, True)),
            (True, True, False, (False, False)),
            (False, False, True, (False, False)),
        ],
        ids=["stderr-terminal", "stdout-terminal", "without-rich", "pipes"],
    )
    def test_terminal_detection(
        self,
        monkeypatch: pytest.MonkeyPatch,
        stdout_tty: bool,
        stderr_tty: bool,
        rich: bool,
        expected: tuple[bool, bool],
    ) -> None:
        """A progress bar needs stderr to be a terminal, tables stdout, and both need rich."""

        class Stream(io.StringIO):
            def __init__(self, tty: bool) -> None:
                super().__init__()
                self._tty = tty

            def isatty(self) -> bool:
                return self._tty

        monkeypatch.setattr(sys, "stdout", Stream(stdout_tty))
        monkeypatch.setattr(sys, "stderr", Stream(stderr_tty))
        if not rich:
            monkeypatch.setitem(sys.modules, "rich", None)  # what an import of it then raises
        detected = Terminal.detect()
        assert (detected.progress_bar, detected.tables) == expected
        assert (detected.out, detected.err) == (sys.stdout, sys.stderr)


class TestDemo:
    """demo runs the whole flow against the in-process simulator."""

    def test_concurrency_option(self, tmp_path: Path, offline: Cli) -> None:
        """--concurrency bounds the requests in flight, and the summary names the option."""
        status, out, _ = offline(
            "demo", "--orders", "12", "--concurrency", "2", "--out", str(tmp_path)
        )
        assert status == 0
        found = re.search(r"at most (\d+) in flight at once \(--concurrency 2\)", out)
        assert found is not None, out
        assert 1 <= int(found.group(1)) <= 2

    def test_rerun_replaces_a_larger_run(self, tmp_path: Path, offline: Cli) -> None:
        """A smaller run leaves only its own orders; other files in the directory stay."""
        out_dir = tmp_path / "demo"
        assert offline("demo", "--orders", "8", "--out", str(out_dir))[0] == 0
        assert len(list(out_dir.glob("*/meta.json"))) == 6
        (out_dir / "notes.txt").write_text("mine")
        assert offline("demo", "--orders", "3", "--out", str(out_dir))[0] == 0
        assert sorted(p.name for p in out_dir.iterdir()) == [
            MARKER_FILE,
            "4210001",
            "4210003",
            "keys",
            "notes.txt",
        ]
        assert sorted(p.name for p in (out_dir / "keys").iterdir()) == [
            "4210001.key",
            "4210003.key",
        ]

    def test_foreign_directory_is_refused(self, tmp_path: Path, offline: Cli) -> None:
        """A non-empty directory no demo wrote is refused (exit 2) and left as it was."""
        (tmp_path / "4210001").mkdir()
        (tmp_path / "4210001" / "cert.pem").write_text("a real certificate")
        status, _, err = offline("demo", "--orders", "3", "--out", str(tmp_path))
        assert status == 2
        assert "is not empty and no demo wrote it" in err
        assert sorted(p.name for p in tmp_path.rglob("*")) == ["4210001", "cert.pem"]

    def test_unusable_out_is_2(self, tmp_path: Path, offline: Cli) -> None:
        """An --out that cannot be created (a file is in the way) exits 2."""
        (tmp_path / "file").write_text("x")
        status, _, err = offline("demo", "--out", str(tmp_path / "file" / "sub"))
        assert status == 2
        assert "cannot be prepared" in err

    def test_scenario_shape(self) -> None:
        """25 orders: most ready, some late, exactly one rejected and one unpaid."""
        scenario = demo_scenario(25)
        kinds = [order.expect for order in scenario]
        assert kinds.count(Expect.REJECTED) == 1
        assert kinds.count(Expect.UNPAID) == 1
        assert 0 < kinds.count(Expect.LATE) < kinds.count(Expect.READY)
        assert len({order.number for order in scenario}) == 25

    def test_end_to_end(self, clean_env: pytest.MonkeyPatch, tmp_path: Path, offline: Cli) -> None:
        """Without credentials it collects, writes files, prints a summary and exits 0."""
        out_dir = tmp_path / "demo"
        status, out, _ = offline("demo", "--out", str(out_dir))
        assert status == 0
        assert "the outcome matches the scenario: 23 collected, 2 failed as expected" in out
        assert "25 orders, 23 collected, 2 failed" in out
        directories = sorted(p for p in out_dir.iterdir() if p.is_dir() and p.name != "keys")
        assert len(directories) == 23
        keys = out_dir / "keys"
        assert len(list(keys.iterdir())) == 23
        assert stat.S_IMODE(keys.stat().st_mode) == 0o700
        for directory in directories:
            meta = json.loads((directory / "meta.json").read_text())
            assert meta["bundle"]["file"] == "bundle.p12"
            password = (directory / "p12-password.txt").read_bytes().strip()
            bundle = pkcs12.load_pkcs12((directory / "bundle.p12").read_bytes(), password)
            key_file = keys / f"{directory.name}.key"
            assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
            key = serialization.load_pem_private_key(key_file.read_bytes(), None)
            assert bundle.key is not None
            assert bundle.key.public_key() == key.public_key()
            assert meta["order_number"] == int(directory.name)
            cert = x509.load_pem_x509_certificate((directory / "cert.pem").read_bytes())
            assert meta["email_addresses"] == [f"user{directory.name}@example.com"]
            assert meta["sha256_fingerprint"] == cert.fingerprint(hashes.SHA256()).hex(":").upper()
        # Re-running replaces the files and matches again.
        assert offline("demo", "--out", str(out_dir), "--orders", "4")[0] == 0

    def test_mismatch_exits_1(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """When an order does not end as the scenario says, the demo lists it and exits 1."""
        served = demo_scenario(4)
        expected = [attrs.evolve(order, expect=Expect.READY) for order in served]
        run = DemoRun(expected, demo_simulator(served), tmp_path)
        status = asyncio.run(run_scenario(run, terminal()))
        out = capsys.readouterr().out
        assert status == 1
        assert "the outcome does NOT match the scenario" in out
        assert "4210002: expected ready, got order 4210002: Sectigo error -20" in out
        assert "4210004: expected ready, got order 4210004: Sectigo error -22" in out
        assert "4210001" not in out.split("does NOT match")[1]  # it did end as expected

    def test_too_many_orders_is_2(
        self, clean_env: pytest.MonkeyPatch, tmp_path: Path, offline: Cli
    ) -> None:
        """The demo refuses more orders than it can hold in memory, before generating any."""
        status, _, err = offline("demo", "--orders", "10001", "--out", str(tmp_path))
        assert status == 2
        assert "at most 10000" in err

    def test_default_out_is_in_current_directory(
        self,
        clean_env: pytest.MonkeyPatch,
        tmp_path: Path,
        offline: Cli,
    ) -> None:
        """Without --out the files go to ./smime-collect-demo, and the path is printed."""
        clean_env.chdir(tmp_path)
        status, out, _ = offline("demo", "--orders", "3")
        assert status == 0
        assert (tmp_path / "smime-collect-demo" / "4210001" / "meta.json").is_file()
        assert "smime-collect-demo" in out

    def test_python_m(self, tmp_path: Path) -> None:
        """Running `python -m smime_collect demo` in a fresh process exits 0."""
        env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARIABLES}
        completed = subprocess.run(  # noqa: S603 -- our own interpreter and module
            [
                sys.executable,
                "-m",
                "smime_collect",
                "demo",
                "--orders",
                "5",
                "--out",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        assert "the outcome matches the scenario" in completed.stdout
        assert len(list(tmp_path.glob("*/meta.json"))) == 3


README = Path(__file__).resolve().parent.parent / "README.md"


def readme_commands() -> list[str]:
    """Every `smime-collect ...` command in README.md's sh blocks and `$` console lines."""
    text = README.read_text(encoding="utf-8")
    commands: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        if line.startswith("```"):
            fence = line[3:].strip() if fence is None else None
            continue
        if fence in {"sh", "bash", "shell"}:
            shell_line = line
        elif fence == "console" and line.startswith("$ "):
            shell_line = line[2:]
        else:
            continue
        pieces = (piece.strip() for piece in shell_line.split("|"))
        commands.extend(piece for piece in pieces if piece.startswith("smime-collect "))
    return commands


class TestReadme:
    """The CLI commands the README shows are accepted by the parser, option for option."""

    def test_cheat_sheet_parses(self) -> None:
        """Each README command parses, and the README shows the command line at work."""
        commands = readme_commands()
        assert "smime-collect demo" in " ".join(commands)
        assert len(commands) >= 5
        parser = build_parser()
        for command in commands:
            argv = shlex.split(command, comments=True)[1:]
            args = parser.parse_args(argv)
            assert args.command in {"collect", "status", "inspect", "demo"}, command


@pytest.mark.network
class TestOverTLS:
    """The command over a real loopback socket with TLS, trusting the server through --ca-bundle."""

    async def test_collect_with_ca_bundle(self, tmp_path: Path) -> None:
        """A fresh process collects over HTTPS when --ca-bundle names the server's CA."""
        simulator = Simulator(seed=11)
        simulator.add_account(LOGIN, PASSWORD)
        simulator.add_order(91)
        env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARIABLES}
        env |= {"SECTIGO_LOGIN_NAME": LOGIN, "SECTIGO_LOGIN_PASSWORD": PASSWORD}
        async with serve(simulator) as server:
            assert server.ca_pem_path is not None
            common = ["--base-url", server.url, "--json", *FAST]

            async def smime_collect(*argv: str) -> tuple[int, str, str]:
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "smime_collect",
                    *argv,
                    env=env,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
                out, err = await asyncio.wait_for(process.communicate(), timeout=120)
                assert process.returncode is not None
                return process.returncode, out.decode(), err.decode()

            status, out, err = await smime_collect(
                "collect",
                "91",
                "--out",
                str(tmp_path),
                "--ca-bundle",
                str(server.ca_pem_path),
                *common,
            )
            assert status == 0, err
            assert json_lines(out)[0]["directory"] == str(tmp_path / "91")
            assert (tmp_path / "91" / "meta.json").is_file()

            # Without the bundle the server's certificate is not trusted: a configuration error.
            status, out, err = await smime_collect("status", "91", *common)
            assert status == 2
            assert json_lines(out)[0]["error"]["type"] == "TransportError"
            assert "TLS certificate was not trusted" in err
            assert PASSWORD not in out + err


class TestProcess:
    """The command as a process: signals and closed pipes."""

    @pytest.mark.network
    def test_sigint_exits_130(self, tmp_path: Path) -> None:
        """A real SIGINT while a request waits for its answer ends the process with 130."""
        env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARIABLES}
        env |= {"SECTIGO_LOGIN_NAME": LOGIN, "SECTIGO_LOGIN_PASSWORD": PASSWORD}
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            url = f"https://127.0.0.1:{listener.getsockname()[1]}/products/download/CollectSMIME"
            argv = ["collect", "1", "--base-url", url, "--out", str(tmp_path)]
            with _command(*argv, env=env) as process:
                connection = _accept_from(listener, process)
                with connection:
                    # Ready when the TLS ClientHello has arrived: the request is in flight, and
                    # waits for an answer that never comes.
                    connection.settimeout(_PROCESS_DEADLINE)
                    assert connection.recv(1) == b"\x16"  # a TLS handshake record
                    process.send_signal(signal.SIGINT)
                    out, err = process.communicate(timeout=_PROCESS_DEADLINE)
        assert process.returncode == 130
        assert err == "smime-collect: interrupted\n"
        assert PASSWORD not in out + err

    @pytest.mark.network
    async def test_sigint_while_the_server_is_silent_exits_130(self, tmp_path: Path) -> None:
        """A real SIGINT after the request reached a server that never answers: 130 at once."""
        simulator = Simulator(seed=13, chaos=Chaos(stall_seconds=_PROCESS_DEADLINE))
        simulator.add_account(LOGIN, PASSWORD)
        simulator.add_order(92)
        simulator.inject(Fault.TIMEOUT, order_number=92)  # no answer while the client waits
        env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARIABLES}
        env |= {"SECTIGO_LOGIN_NAME": LOGIN, "SECTIGO_LOGIN_PASSWORD": PASSWORD}
        async with serve(simulator) as server:
            assert server.ca_pem_path is not None
            process = await asyncio.create_subprocess_exec(
                *[sys.executable, "-m", "smime_collect", "collect", "92", "--out", str(tmp_path)],
                *["--base-url", server.url, "--ca-bundle", str(server.ca_pem_path)],
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                async with asyncio.timeout(_PROCESS_DEADLINE):
                    # Ready once the server holds the request: its counters are the signal.
                    while simulator.stats.requests_total == 0 and process.returncode is None:  # noqa: ASYNC110
                        await asyncio.sleep(0.01)
                    if process.returncode is not None:
                        _, err = await process.communicate()
                        pytest.fail(f"exited {process.returncode} before asking: {err!r}")
                    process.send_signal(signal.SIGINT)
                    out, err = await process.communicate()
                    status = await process.wait()
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.communicate()
        assert (status, err.decode()) == (130, "smime-collect: interrupted\n")
        assert PASSWORD not in out.decode()

    def test_closed_pipe_is_quiet(self, tmp_path: Path) -> None:
        """A reader that stops early (`| head -1`) ends the command without a traceback."""
        _write_chain_pem(tmp_path / "chain.pem")
        files = [str(tmp_path / "chain.pem")] * 200  # far more output than a pipe buffer holds
        with _command("inspect", *files) as process:
            assert process.stdout is not None
            assert process.stdout.readline().endswith("3 certificates\n")
            process.stdout.close()
            _, err = process.communicate(timeout=_PROCESS_DEADLINE)
        assert process.returncode == 1
        assert err == ""

    def test_entry_points(self) -> None:
        """`python -m smime_collect` and the installed `smime-collect` script are the command."""
        env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARIABLES}
        helped = subprocess.run(
            [sys.executable, "-m", "smime_collect", "--help"],
            capture_output=True,
            text=True,
            env=env,
            timeout=_PROCESS_DEADLINE,
            check=False,
        )
        assert helped.returncode == 0, helped.stderr
        assert [c for c in ("collect", "status", "inspect", "demo") if c not in helped.stdout] == []
        refused = subprocess.run(  # noqa: S603 -- our own entry point
            [str(_SCRIPT), "collect", "--password", "x"],
            capture_output=True,
            text=True,
            env=env,
            timeout=_PROCESS_DEADLINE,
            check=False,
        )
        assert refused.returncode == 2
        assert "smime-collect collect: error:" in refused.stderr

    @pytest.mark.network
    @pytest.mark.parametrize("as_json", [False, True], ids=["summary", "json"])
    async def test_progress_bar_on_a_terminal(self, tmp_path: Path, as_json: bool) -> None:
        """A bar is drawn on a terminal stderr; stdout gets no drawing, with --json only JSON."""
        simulator = Simulator(seed=17)
        simulator.add_account(LOGIN, PASSWORD)
        simulator.add_orders([93, 94])
        env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARIABLES}
        env |= {"SECTIGO_LOGIN_NAME": LOGIN, "SECTIGO_LOGIN_PASSWORD": PASSWORD}
        async with serve(simulator) as server:
            assert server.ca_pem_path is not None
            argv = [str(_SCRIPT), "collect", "93", "94", "--out", str(tmp_path), "--base-url"]
            argv += [server.url, "--ca-bundle", str(server.ca_pem_path), *FAST]
            # In a thread: this loop must go on serving while the process runs.
            code, out, drawn = await asyncio.to_thread(
                _run_with_terminal_stderr, [*argv, *(["--json"] if as_json else [])], env
            )
        assert code == 0, drawn
        assert ("2/2" in drawn, "\x1b[" in drawn) == (True, True)
        assert (b"\x1b[" in out, b"\r" in out) == (False, False)
        assert PASSWORD not in out.decode() + drawn
        if as_json:
            assert "order_number" not in drawn
            assert sorted(json.loads(line)["order_number"] for line in out.splitlines()) == [93, 94]


# Generous: only a hang reaches it, and a loaded 2-core machine with coverage is slow to start.
_PROCESS_DEADLINE = 120.0
# The console script pip installed beside the interpreter (pyproject's [project.scripts]).
_SCRIPT = Path(sys.executable).with_name("smime-collect")


@contextlib.contextmanager
def _command(*argv: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    """``python -m smime_collect ARGV`` with piped output; killed and reaped however it ends."""
    process = subprocess.Popen(  # noqa: S603 -- our own interpreter and module
        [sys.executable, "-m", "smime_collect", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with process:  # closes the pipes and waits, once the process is sure to end
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()


def _accept_from(listener: socket.socket, process: subprocess.Popen[str]) -> socket.socket:
    """The process's connection to ``listener``; fails at once if the process ends first."""
    listener.settimeout(0.1)
    deadline = time.monotonic() + _PROCESS_DEADLINE
    while time.monotonic() < deadline:
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            if process.poll() is not None:
                _, err = process.communicate()
                pytest.fail(f"exited {process.returncode} before connecting: {err}")
            continue
        connection.setblocking(True)
        return connection
    pytest.fail(f"no connection within {_PROCESS_DEADLINE} s")


def _run_with_terminal_stderr(argv: list[str], env: dict[str, str]) -> tuple[int, bytes, str]:
    """Run ``argv`` with stderr on a pseudo-terminal: exit status, stdout, what the terminal got."""
    master, slave = pty.openpty()
    chunks: list[bytes] = []
    try:
        with subprocess.Popen(  # noqa: S603 -- our own entry point
            argv, stdout=subprocess.PIPE, stderr=slave, env=env
        ) as process:
            os.close(slave)
            slave = -1
            deadline = time.monotonic() + _PROCESS_DEADLINE
            try:
                while time.monotonic() < deadline:
                    if select.select([master], [], [], 0.1)[0]:
                        try:
                            chunk = os.read(master, 65536)
                        except OSError:  # EIO: the process closed the terminal
                            break
                        if not chunk:
                            break
                        chunks.append(chunk)
                    elif process.poll() is not None:
                        break
                out, _ = process.communicate(timeout=_PROCESS_DEADLINE)
            finally:
                if process.poll() is None:
                    process.kill()
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    return process.returncode, out, b"".join(chunks).decode(errors="replace")

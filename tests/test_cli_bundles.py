"""``smime-collect collect --keys``: a PKCS#12 bundle for each order whose private key is given."""

from __future__ import annotations

import functools
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from smime_collect import CollectClient
from smime_collect._certs._pkcs12 import public_key_id
from smime_collect._cli import main
from smime_collect.testing import Simulator

LOGIN = "bundle-user"
PASSWORD = "Pw-b1e2-never-printed"
KEY_PASSWORD = "Key-4a7c-never-printed"
P12_PASSWORD = "P12-93d0-never-printed"
SECRETS = (PASSWORD, KEY_PASSWORD, P12_PASSWORD)
FAST = ["--poll-interval", "0.001", "--max-poll-interval", "0.002"]
OPENSSL = shutil.which("openssl")


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Simulator:
    """A simulator with three issued orders, and the command's credentials in the environment."""
    simulator = Simulator(seed=11)
    simulator.add_account(LOGIN, PASSWORD)
    simulator.add_orders([1, 2, 3])
    simulator.issue_certificates()
    for name in ("SECTIGO_LOGIN_NAME_FILE", "SECTIGO_LOGIN_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SECTIGO_LOGIN_NAME", LOGIN)
    monkeypatch.setenv("SECTIGO_LOGIN_PASSWORD", PASSWORD)
    return simulator


@pytest.fixture(autouse=True)
def _no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> Any:
    """No password (login, key or bundle) in any log record of any test here."""
    caplog.set_level("DEBUG")
    yield
    for record in caplog.records:
        text = record.getMessage() + repr(record.__dict__)
        for secret in SECRETS:
            assert secret not in text


def _key_pem(sim: Simulator, order: int, password: bytes | None = None) -> bytes:
    chain = sim.order(order).chain
    assert chain is not None
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return chain.end_entity_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _secret_file(tmp_path: Path, name: str, value: str) -> Path:
    path = tmp_path / name
    path.write_text(value + "\n")
    return path


def run(
    sim: Simulator, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, list[dict[str, Any]], str]:
    """Run ``collect --json`` against the simulator; no secret may show in either stream."""
    factory = functools.partial(CollectClient, transport=sim.transport())
    status = main(["collect", "--json", *FAST, *argv], client_factory=factory)
    out, err = capsys.readouterr()
    for secret in SECRETS:
        assert secret not in out
        assert secret not in err
    return status, [json.loads(line) for line in out.splitlines() if line.strip()], err


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class TestBundles:
    """Keys found by public key become bundle.p12; the others keep their certificate files."""

    def test_bundle_with_a_random_password(
        self, sim: Simulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """A matching key, whatever its file name, gives bundle.p12 and p12-password.txt, 0600."""
        keys = tmp_path / "keys"
        keys.mkdir()
        (keys / "not-named-after-the-order.pem").write_bytes(_key_pem(sim, 2))
        out = tmp_path / "out"
        status, lines, _ = run(sim, capsys, "1", "2", "--out", str(out), "--keys", str(keys))
        assert status == 0
        by_order = {line["order_number"]: line for line in lines}
        assert by_order[2]["bundle"]["file"] == "bundle.p12"
        assert by_order[1]["bundle"]["file"] is None
        assert "no private key under --keys matches" in by_order[1]["bundle"]["note"]
        order = out / "2"
        password = (order / "p12-password.txt").read_bytes().rstrip(b"\n")
        assert len(password) >= 20
        loaded = pkcs12.load_pkcs12((order / "bundle.p12").read_bytes(), password)
        chain = sim.order(2).chain
        assert chain is not None
        assert loaded.cert is not None
        assert loaded.cert.certificate == chain.end_entity
        assert loaded.key is not None
        assert public_key_id(loaded.key) == public_key_id(chain.end_entity)  # type: ignore[arg-type]
        assert _mode(order / "bundle.p12") == 0o600
        assert _mode(order / "p12-password.txt") == 0o600
        assert (out / "1" / "cert.pem").is_file()
        assert not (out / "1" / "bundle.p12").exists()
        meta = json.loads((order / "meta.json").read_text())
        assert meta["bundle"] == {
            "file": "bundle.p12",
            "password_file": "p12-password.txt",
            "note": None,
        }
        assert password.decode() not in (order / "meta.json").read_text()

    def test_encrypted_keys_and_a_given_password(
        self, sim: Simulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """Encrypted DER and PEM keys open with --key-password-file; the bundle uses ours."""
        keys = tmp_path / "keys"
        keys.mkdir()
        (keys / "a.pem").write_bytes(_key_pem(sim, 1, KEY_PASSWORD.encode()))
        der = serialization.load_pem_private_key(_key_pem(sim, 3), None).private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(KEY_PASSWORD.encode()),
        )
        (keys / "b.der").write_bytes(der)
        out = tmp_path / "out"
        status, lines, _ = run(
            sim,
            capsys,
            "1",
            "3",
            "--out",
            str(out),
            "--keys",
            str(keys),
            "--key-password-file",
            str(_secret_file(tmp_path, "kp", KEY_PASSWORD)),
            "--p12-password-file",
            str(_secret_file(tmp_path, "pp", P12_PASSWORD)),
            "--p12-legacy",
        )
        assert status == 0
        assert {line["bundle"]["file"] for line in lines} == {"bundle.p12"}
        for order in (1, 3):
            assert not (out / str(order) / "p12-password.txt").exists()
            data = (out / str(order) / "bundle.p12").read_bytes()
            assert pkcs12.load_pkcs12(data, P12_PASSWORD.encode()).key is not None
            for name in ("meta.json", "cert.pem"):
                assert P12_PASSWORD not in (out / str(order) / name).read_text()

    @pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")
    def test_openssl_opens_the_legacy_bundle(
        self, sim: Simulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """The bundle the command writes with --p12-legacy is 3DES/SHA-1, as openssl reports."""
        assert OPENSSL is not None
        keys = tmp_path / "keys"
        keys.mkdir()
        (keys / "k").write_bytes(_key_pem(sim, 1))
        out = tmp_path / "out"
        run(sim, capsys, "1", "--out", str(out), "--keys", str(keys), "--p12-legacy")
        password = (out / "1" / "p12-password.txt").read_text().strip()
        done = subprocess.run(  # noqa: S603 -- the openssl binary, our own temporary file
            [
                OPENSSL,
                "pkcs12",
                "-info",
                "-noout",
                "-in",
                str(out / "1" / "bundle.p12"),
                "-passin",
                f"pass:{password}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "MAC: sha1" in done.stderr + done.stdout
        assert "3-KeyTripleDES" in done.stderr + done.stdout

    def test_wrong_key_password_is_reported_not_fatal(
        self, sim: Simulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """A key that cannot be opened is named in the order's report; the exit status stays 0."""
        keys = tmp_path / "keys"
        keys.mkdir()
        (keys / "alice.key").write_bytes(_key_pem(sim, 1, b"other"))
        status, lines, _ = run(
            sim,
            capsys,
            "1",
            "--out",
            str(tmp_path / "out"),
            "--keys",
            str(keys),
            "--key-password-file",
            str(_secret_file(tmp_path, "kp", KEY_PASSWORD)),
        )
        assert status == 0
        note = lines[0]["bundle"]["note"]
        assert "could not open alice.key" in note
        assert "could not be decrypted" in note

    def test_unrelated_files_and_corrupt_keys(
        self, sim: Simulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """A directory of other files gives no bundle and no error."""
        keys = tmp_path / "keys"
        keys.mkdir()
        (keys / "readme.txt").write_text("hello")
        (keys / "broken.pem").write_text(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        )
        (keys / "blob.bin").write_bytes(os.urandom(64))
        status, lines, _ = run(sim, capsys, "2", "--out", str(tmp_path / "o"), "--keys", str(keys))
        assert status == 0
        assert lines[0]["bundle"]["file"] is None
        assert "broken.pem" in lines[0]["bundle"]["note"]

    def test_plain_report_says_what_happened(
        self, sim: Simulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """Without --json, each order's line says whether its bundle was written."""
        keys = tmp_path / "keys"
        keys.mkdir()
        (keys / "k.pem").write_bytes(_key_pem(sim, 1))
        factory = functools.partial(CollectClient, transport=sim.transport())
        argv = ["collect", *FAST, "1", "2", "--out", str(tmp_path / "o"), "--keys", str(keys)]
        assert main(argv, client_factory=factory) == 0
        captured = capsys.readouterr()
        out = captured.out + captured.err
        assert "1: collected into" in out
        assert "bundle.p12 written" in out
        assert "no bundle: no private key under --keys matches" in out


class TestBadInput:
    """Mistakes in the bundle options are usage errors (exit 2) found before any request."""

    @pytest.mark.parametrize(
        "extra", [["--p12-legacy"], ["--key-password-file", "x"], ["--p12-password-file", "x"]]
    )
    def test_bundle_options_need_keys(
        self, sim: Simulator, capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: list[str]
    ) -> None:
        """Bundle options without --keys say what is missing."""
        status, _, err = run(sim, capsys, "1", "--out", str(tmp_path), *extra)
        assert status == 2
        assert "needs --keys DIR" in err
        assert sim.stats.requests_total == 0

    def test_keys_not_a_directory(
        self, sim: Simulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """--keys naming a file or nothing is refused."""
        status, _, err = run(
            sim, capsys, "1", "--out", str(tmp_path), "--keys", str(tmp_path / "no")
        )
        assert status == 2
        assert "is not a directory" in err
        assert sim.stats.requests_total == 0

    def test_empty_password_file(
        self, sim: Simulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """An empty --p12-password-file is refused: a bundle holds a private key."""
        (tmp_path / "keys").mkdir()
        empty = tmp_path / "empty"
        empty.write_text("\n")
        status, _, err = run(
            sim,
            capsys,
            "1",
            "--out",
            str(tmp_path / "o"),
            "--keys",
            str(tmp_path / "keys"),
            "--p12-password-file",
            str(empty),
        )
        assert status == 2
        assert "is empty" in err
        assert sim.stats.requests_total == 0

    def test_unwritable_order_directory(
        self, sim: Simulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """An order whose directory cannot be made fails alone; the other gets its bundle."""
        keys = tmp_path / "keys"
        keys.mkdir()
        for order in (1, 2):
            (keys / f"k{order}").write_bytes(_key_pem(sim, order))
        out = tmp_path / "out"
        out.mkdir()
        (out / "1").write_text("a file where the order's directory should be")
        status, lines, _ = run(sim, capsys, "1", "2", "--out", str(out), "--keys", str(keys))
        assert status == 1
        assert {line["order_number"]: line["ok"] for line in lines} == {1: False, 2: True}
        assert (out / "2" / "bundle.p12").is_file()
        assert sorted(p.name for p in out.iterdir()) == ["1", "2"]


class TestInspect:
    """``inspect`` opens PKCS#12 files and says whether their key matches the end entity."""

    def _bundle(self, sim: Simulator, tmp_path: Path, *, wrong_key: bool = False) -> Path:
        chain = sim.order(1).chain
        other = sim.order(2).chain
        assert chain is not None
        assert other is not None
        encryption = serialization.BestAvailableEncryption(P12_PASSWORD.encode())
        if wrong_key:
            # cryptography refuses to pair a certificate with another key; a key bag plus the
            # certificate among the CA certificates is what a careless export tool writes.
            data = pkcs12.serialize_key_and_certificates(
                b"x",
                other.end_entity_key,
                None,
                [chain.end_entity, *chain.intermediates],
                encryption,
            )
        else:
            data = pkcs12.serialize_key_and_certificates(
                b"x", chain.end_entity_key, chain.end_entity, list(chain.intermediates), encryption
            )
        path = tmp_path / "bundle.p12"
        path.write_bytes(data)
        return path

    def test_matching_key(
        self, sim: Simulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """The chain is shown, and the key is said to match."""
        path = self._bundle(sim, tmp_path)
        password = _secret_file(tmp_path, "pw", P12_PASSWORD)
        argv = ["inspect", str(path), "--p12-password-file", str(password)]
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "private key: matches the end entity" in out
        assert "end entity" in out
        assert main([*argv, "--json"]) == 0
        line = json.loads(capsys.readouterr().out)
        assert line["key"] == {"present": True, "matches": True}
        assert line["certificates"][0]["role"] == "end entity"

    def test_key_that_does_not_match(
        self, sim: Simulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        """A bundle whose key belongs to another certificate fails inspection (exit 1)."""
        path = self._bundle(sim, tmp_path, wrong_key=True)
        password = _secret_file(tmp_path, "pw", P12_PASSWORD)
        assert main(["inspect", str(path), "--p12-password-file", str(password)]) == 1
        assert "does NOT match" in capsys.readouterr().out

    @pytest.mark.parametrize("given", [None, "wrong"], ids=["no-password", "wrong-password"])
    def test_password_missing_or_wrong(
        self,
        sim: Simulator,
        capsys: pytest.CaptureFixture[str],
        tmp_path: Path,
        given: str | None,
    ) -> None:
        """Without the right password the file is reported as unreadable, with the option to use."""
        path = self._bundle(sim, tmp_path)
        argv = ["inspect", str(path)]
        if given is not None:
            argv += ["--p12-password-file", str(_secret_file(tmp_path, "pw", given))]
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "PKCS#12" in err
        assert "--p12-password-file" in err

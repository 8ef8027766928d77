"""PKCS#12 bundles for mail clients: what we write, real tools and cryptography read back."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import cryptography
import pytest
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, x25519
from cryptography.hazmat.primitives.serialization import pkcs12

from smime_collect import CertificateChain, InvalidRequestError, load_certificates
from smime_collect._certs._pkcs12 import load_private_key, looks_like_encrypted_key, public_key_id
from smime_collect._cli import _keys
from smime_collect._cli._keys import KeyIndex, read_pkcs12
from smime_collect.testing import IssuedChain, TestCA

CRYPTOGRAPHY_MAJOR = int(cryptography.__version__.split(".")[0])
OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(
    OPENSSL is None, reason="the openssl command is not installed (apt-get install openssl)"
)


@pytest.fixture
def alice(issued: IssuedChain) -> IssuedChain:
    """Alice's end entity, with its key, under the shared test CA."""
    return issued


@pytest.fixture
def chain(alice: IssuedChain) -> CertificateChain:
    """Alice's chain as the endpoint returns it, root included."""
    return CertificateChain.from_certificates(alice.certificates())


def _openssl_pkcs12(path: Path, password: str, *options: str) -> subprocess.CompletedProcess[bytes]:
    """``openssl pkcs12`` on the bundle at ``path`` with ``password`` and ``options``."""
    assert OPENSSL is not None
    return subprocess.run(  # noqa: S603 -- the openssl binary, our own temporary file
        [OPENSSL, "pkcs12", "-in", str(path), "-passin", f"pass:{password}", *options],
        capture_output=True,
        timeout=60,
        check=False,
    )


def _openssl_info(path: Path, password: str) -> str:
    """What ``openssl pkcs12 -info`` says of the bundle's certificates and algorithms."""
    done = _openssl_pkcs12(path, password, "-info", "-nokeys")
    assert done.returncode == 0, done.stderr
    return (done.stdout + done.stderr).decode()


@pytest.fixture
def bundle_path(tmp_path: Path) -> Path:
    """Where a test writes the bundle it hands to openssl."""
    return tmp_path / "bundle.p12"


def _unparsable_public_key(
    certificate: x509.Certificate, how: str = "off-curve"
) -> x509.Certificate:
    """The P-256 certificate with a public key cryptography cannot read (the signature unchecked).

    ``off-curve`` moves the public point off the curve (a ValueError); ``unknown-type`` names a
    key type cryptography does not know (UnsupportedAlgorithm from cryptography 47 on, a
    ValueError before).
    """
    der = bytearray(certificate.public_bytes(serialization.Encoding.DER))
    if how == "off-curve":
        point = der.index(bytes.fromhex("03420004")) + 4  # BIT STRING, uncompressed point: X, Y
        der[point + 63] ^= 1  # the last octet of Y
    else:
        at = der.index(bytes.fromhex("06072A8648CE3D0201"))  # id-ecPublicKey, in the SPKI only
        der[at + 8] = 0x09
    broken = x509.load_der_x509_certificate(bytes(der))
    with pytest.raises((ValueError, UnsupportedAlgorithm)):
        broken.public_key()
    return broken


unreadable_public_keys = pytest.mark.parametrize("how", ["off-curve", "unknown-type"])


class TestToPkcs12:
    """``CertificateChain.to_pkcs12``: the end entity, its key and the intermediates."""

    @pytest.mark.parametrize("legacy", [False, True], ids=["modern", "legacy"])
    def test_round_trip(self, chain: CertificateChain, alice: IssuedChain, legacy: bool) -> None:
        """The cryptography package reads back key, end entity and intermediates, not the root."""
        data = chain.to_pkcs12(alice.end_entity_key, password=b"s3cret", legacy=legacy)
        loaded = pkcs12.load_pkcs12(data, b"s3cret")
        assert loaded.key is not None
        assert public_key_id(loaded.key) == public_key_id(alice.end_entity)  # type: ignore[arg-type]
        assert loaded.cert is not None
        assert loaded.cert.certificate == alice.end_entity
        assert [c.certificate for c in loaded.additional_certs] == list(alice.intermediates)

    def test_friendly_name_defaults_to_the_email_address(
        self, chain: CertificateChain, alice: IssuedChain
    ) -> None:
        """Importers show the bundle under the certificate's e-mail address."""
        loaded = pkcs12.load_pkcs12(chain.to_pkcs12(alice.end_entity_key, password=b"x"), b"x")
        assert loaded.cert is not None
        assert loaded.cert.friendly_name == b"alice@example.com"

    def test_friendly_name_given(self, chain: CertificateChain, alice: IssuedChain) -> None:
        """A friendly name given is the one written."""
        data = chain.to_pkcs12(alice.end_entity_key, password=b"x", friendly_name=b"Alice S/MIME")
        loaded = pkcs12.load_pkcs12(data, b"x")
        assert loaded.cert is not None
        assert loaded.cert.friendly_name == b"Alice S/MIME"

    def test_wrong_password_is_refused_by_the_reader(
        self, chain: CertificateChain, alice: IssuedChain
    ) -> None:
        """The bundle is encrypted: another password does not open it."""
        data = chain.to_pkcs12(alice.end_entity_key, password=b"right")
        with pytest.raises(ValueError, match="password"):
            pkcs12.load_pkcs12(data, b"wrong")

    def test_key_that_does_not_match(self, chain: CertificateChain) -> None:
        """Another key is an InvalidRequestError that says what to use instead."""
        other = ec.generate_private_key(ec.SECP256R1())
        with pytest.raises(
            InvalidRequestError, match="does not match the public key of the end entity 'Alice'"
        ):
            chain.to_pkcs12(other, password=b"x")

    @unreadable_public_keys
    def test_an_end_entity_key_that_cannot_be_read_matches_no_key(
        self, alice: IssuedChain, how: str
    ) -> None:
        """A certificate whose public key cannot be read is a mismatch, not cryptography's error."""
        broken = _unparsable_public_key(alice.end_entity, how)
        chain = CertificateChain.from_certificates([broken, *alice.intermediates])
        with pytest.raises(InvalidRequestError, match="does not match the public key"):
            chain.to_pkcs12(alice.end_entity_key, password=b"x")

    def test_ca_bundle_has_no_end_entity(self, alice: IssuedChain) -> None:
        """A CA bundle cannot become a PKCS#12 with a key."""
        bundle = CertificateChain.from_certificates([*alice.intermediates, alice.root])
        with pytest.raises(InvalidRequestError, match="end entity"):
            bundle.to_pkcs12(alice.end_entity_key, password=b"x")

    @pytest.mark.parametrize(
        ("password", "message"),
        [(b"", "empty"), ("s3cret", "must be bytes"), (None, "must be bytes")],
        ids=["empty", "str", "none"],
    )
    def test_unusable_password(
        self, chain: CertificateChain, alice: IssuedChain, password: object, message: str
    ) -> None:
        """A private key is never written unencrypted or with a password of the wrong type."""
        with pytest.raises(InvalidRequestError, match=message):
            chain.to_pkcs12(alice.end_entity_key, password=password)  # type: ignore[arg-type]

    def test_friendly_name_must_be_bytes(self, chain: CertificateChain, alice: IssuedChain) -> None:
        """A str friendly name is refused by name, not written in some encoding we guessed."""
        with pytest.raises(
            InvalidRequestError, match="friendly_name must be bytes or None, not str"
        ):
            chain.to_pkcs12(alice.end_entity_key, password=b"x", friendly_name="Alice")  # type: ignore[arg-type]

    def test_not_a_key(self, chain: CertificateChain) -> None:
        """Bytes where a key object belongs are named in the error."""
        with pytest.raises(InvalidRequestError, match="private key object"):
            chain.to_pkcs12(b"-----BEGIN PRIVATE KEY-----", password=b"x")  # type: ignore[arg-type]

    def test_rsa_chain(self) -> None:
        """An RSA end entity and key work the same way."""
        issued = TestCA.create("RSA Test", key_type="rsa").issue_smime("bob@example.com")
        chain = load_certificates(
            b"".join(c.public_bytes(serialization.Encoding.PEM) for c in issued.certificates())
        )
        data = chain.to_pkcs12(issued.end_entity_key, password=b"pw")
        loaded = pkcs12.load_pkcs12(data, b"pw")
        assert isinstance(loaded.key, rsa.RSAPrivateKey)


@needs_openssl
class TestOpenSSLReadsIt:
    """The openssl command opens what we write, modern and legacy."""

    @pytest.mark.parametrize("legacy", [False, True], ids=["modern", "legacy"])
    def test_openssl_lists_the_bundle(
        self, chain: CertificateChain, alice: IssuedChain, bundle_path: Path, legacy: bool
    ) -> None:
        """`openssl pkcs12 -info` decrypts it and names the algorithms we promise."""
        bundle_path.write_bytes(
            chain.to_pkcs12(alice.end_entity_key, password=b"p@ss", legacy=legacy)
        )
        info = _openssl_info(bundle_path, "p@ss")
        assert info.count("-----BEGIN CERTIFICATE-----") == 2  # end entity and intermediate
        if legacy:
            assert "pbeWithSHA1And3-KeyTripleDES-CBC" in info
            assert "MAC: sha1" in info
        else:
            assert "AES-256-CBC" in info
            assert "PBKDF2" in info
            assert "MAC: sha256" in info

    def test_openssl_refuses_a_wrong_password(
        self, chain: CertificateChain, alice: IssuedChain, bundle_path: Path
    ) -> None:
        """The MAC check fails for another password: the bundle is really protected."""
        bundle_path.write_bytes(chain.to_pkcs12(alice.end_entity_key, password=b"right"))
        assert _openssl_pkcs12(bundle_path, "right", "-info", "-noout").returncode == 0
        assert _openssl_pkcs12(bundle_path, "wrong", "-info", "-noout").returncode != 0

    def test_openssl_extracts_the_matching_key(
        self, chain: CertificateChain, alice: IssuedChain, bundle_path: Path
    ) -> None:
        """The key openssl extracts is the end entity's."""
        bundle_path.write_bytes(chain.to_pkcs12(alice.end_entity_key, password=b"pw"))
        done = _openssl_pkcs12(bundle_path, "pw", "-nocerts", "-nodes")
        assert done.returncode == 0, done.stderr
        key = load_private_key(done.stdout)
        assert public_key_id(key) == public_key_id(alice.end_entity)


def _write_key(
    path: Path, key: object, *, der: bool = False, pkcs8: bool = True, password: bytes | None = None
) -> None:
    assert isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
    encoding = serialization.Encoding.DER if der else serialization.Encoding.PEM
    fmt = (
        serialization.PrivateFormat.PKCS8
        if pkcs8
        else serialization.PrivateFormat.TraditionalOpenSSL
    )
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    path.write_bytes(key.private_bytes(encoding, fmt, encryption))


class TestPrivateKeys:
    """Private keys in every common form, and a directory of them indexed by public key."""

    @pytest.mark.parametrize(
        ("der", "pkcs8", "password"),
        [
            (False, True, None),
            (False, True, b"pw"),
            (False, False, None),
            (False, False, b"pw"),
            (True, True, None),
            (True, True, b"pw"),
            (True, False, None),
        ],
        ids=[
            "pem-pkcs8",
            "pem-pkcs8-enc",
            "pem-trad",
            "pem-trad-enc",
            "der-pkcs8",
            "der-pkcs8-enc",
            "der-trad",
        ],
    )
    def test_every_form_loads(
        self, tmp_path: Path, alice: IssuedChain, der: bool, pkcs8: bool, password: bytes | None
    ) -> None:
        """PEM or DER, PKCS#8 or traditional, encrypted or not: the same key comes back."""
        path = tmp_path / "k"
        _write_key(path, alice.end_entity_key, der=der, pkcs8=pkcs8, password=password)
        key = load_private_key(path.read_bytes(), password)
        assert public_key_id(key) == public_key_id(alice.end_entity)

    def test_encrypted_without_password(self, tmp_path: Path, alice: IssuedChain) -> None:
        """An encrypted key without its password says which option gives it."""
        path = tmp_path / "k"
        _write_key(path, alice.end_entity_key, password=b"pw")
        with pytest.raises(InvalidRequestError, match="--key-password-file"):
            load_private_key(path.read_bytes())

    @pytest.mark.parametrize("der", [False, True], ids=["pem", "der"])
    def test_wrong_password(self, tmp_path: Path, alice: IssuedChain, der: bool) -> None:
        """A wrong password is named as such, not as a corrupt file."""
        path = tmp_path / "k"
        _write_key(path, alice.end_entity_key, der=der, password=b"pw")
        with pytest.raises(InvalidRequestError, match="could not be decrypted"):
            load_private_key(path.read_bytes(), b"nope")

    @pytest.mark.parametrize(
        ("known", "unknown", "named"),
        [
            ("06072A8648CE3D0201", "06072A8648CE3D0209", "Unknown key type"),
            ("06082A8648CE3D030107", "06082A8648CE3D030109", "is not supported"),
        ],
        ids=["key-type", "curve"],
    )
    def test_an_algorithm_this_library_cannot_use(
        self, alice: IssuedChain, known: str, unknown: str, named: str
    ) -> None:
        """A PKCS#8 key of a type or curve cryptography does not know is named as such."""
        der = alice.end_entity_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        assert der.count(bytes.fromhex(known)) == 1  # id-ecPublicKey, then prime256v1
        data = der.replace(bytes.fromhex(known), bytes.fromhex(unknown))
        said = f"an algorithm this library cannot use.*{named}"
        if CRYPTOGRAPHY_MAJOR < 47:
            # Before 47, cryptography reports an unknown key type or curve as unreadable data
            # (a ValueError), not as an UnsupportedAlgorithm: all we can say is that.
            said = "not a private key in PEM or DER"
        with pytest.raises(InvalidRequestError, match=said):
            load_private_key(data)

    @pytest.mark.parametrize(
        "data",
        [b"", b"hello", b"\x30\x03\x02\x01\x00", b"-----BEGIN PRIVATE KEY-----\nAA==\n"],
        ids=["empty", "text", "der-sequence", "broken-pem"],
    )
    def test_not_a_key(self, data: bytes) -> None:
        """Nonsense is an InvalidRequestError, never a raw cryptography error."""
        with pytest.raises(InvalidRequestError):
            load_private_key(data)

    def test_too_large_to_be_a_key_file(self) -> None:
        """More than 1 MiB is refused before any parser sees it."""
        with pytest.raises(InvalidRequestError, match="too large for a private key file"):
            load_private_key(b"-----BEGIN PRIVATE KEY-----\n" + b"A" * (1024 * 1024))

    def test_a_key_that_cannot_sign(self) -> None:
        """An X25519 key (key agreement only) is read, then refused as unable to sign mail."""
        data = x25519.X25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        with pytest.raises(InvalidRequestError, match="X25519PrivateKey cannot sign S/MIME mail"):
            load_private_key(data)

    @pytest.mark.parametrize(
        ("der", "pkcs8", "encrypted"),
        [
            (False, True, True),
            (False, False, True),
            (True, True, True),
            (False, True, False),
            (True, True, False),
            (True, False, False),
        ],
        ids=["pem-pkcs8", "pem-trad", "der-pkcs8", "pem-plain", "der-plain", "der-trad-plain"],
    )
    def test_encrypted_keys_are_recognised_unopened(
        self, tmp_path: Path, alice: IssuedChain, der: bool, pkcs8: bool, encrypted: bool
    ) -> None:
        """looks_like_encrypted_key tells an encrypted key from a plain one without a password."""
        path = tmp_path / "k"
        password = b"pw" if encrypted else None
        _write_key(path, alice.end_entity_key, der=der, pkcs8=pkcs8, password=password)
        assert looks_like_encrypted_key(path.read_bytes()) is encrypted

    @pytest.mark.parametrize("data", [b"", b"\x30", b"\x30\x82", b"0\x050\x03"], ids=repr)
    def test_truncated_der_is_not_an_encrypted_key(self, data: bytes) -> None:
        """A SEQUENCE cut before its first element is not taken for an encrypted key."""
        assert not looks_like_encrypted_key(data)

    def test_a_der_certificate_is_not_an_encrypted_key(self, alice: IssuedChain) -> None:
        """A DER certificate (SEQUENCE in a SEQUENCE, like EncryptedPrivateKeyInfo) is no key."""
        der = alice.end_entity.public_bytes(serialization.Encoding.DER)
        assert der[0] == der[4] == 0x30  # the shape that once fooled the check
        assert not looks_like_encrypted_key(der)

    def test_index_skips_files_too_large_for_a_key(
        self, tmp_path: Path, alice: IssuedChain
    ) -> None:
        """A file over 1 MiB under --keys is not read; the keys beside it still are."""
        _write_key(tmp_path / "alice.pem", alice.end_entity_key)
        (tmp_path / "disk.img").write_bytes(b"\x30" + bytes(1024 * 1024))
        index = KeyIndex.from_directory(tmp_path)
        assert (len(index), index.unreadable) == (1, ())
        assert index.key_for(alice.end_entity) is not None

    def test_index_refuses_a_directory_of_too_many_files(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Past the file cap (lowered here from 100,000) --keys is refused as a wrong directory."""
        monkeypatch.setattr(_keys, "MAX_KEY_FILES", 3)
        for name in ("a", "b", "c"):
            (tmp_path / name).write_text("x")
        assert len(KeyIndex.from_directory(tmp_path)) == 0
        (tmp_path / "d").write_text("x")
        with pytest.raises(InvalidRequestError, match="holds 4 files; is it the key directory"):
            KeyIndex.from_directory(tmp_path)

    def test_index_finds_keys_by_public_key(self, tmp_path: Path) -> None:
        """Keys are found whatever their files are called; other files are skipped."""
        ca = TestCA.create()
        people = [ca.issue_smime(f"user{i}@example.com") for i in range(3)]
        _write_key(tmp_path / "zzz.pem", people[0].end_entity_key)
        (tmp_path / "nested").mkdir()
        _write_key(tmp_path / "nested" / "a.der", people[1].end_entity_key, der=True)
        (tmp_path / "notes.txt").write_text("not a key")
        (tmp_path / "cert.pem").write_bytes(
            people[2].end_entity.public_bytes(serialization.Encoding.PEM)
        )
        index = KeyIndex.from_directory(tmp_path)
        assert len(index) == 2
        assert index.unreadable == ()
        assert index.key_for(people[0].end_entity) is not None
        assert index.key_for(people[1].end_entity) is not None
        assert index.key_for(people[2].end_entity) is None

    @unreadable_public_keys
    def test_index_has_no_key_for_an_unreadable_public_key(
        self, tmp_path: Path, alice: IssuedChain, how: str
    ) -> None:
        """A certificate whose public key cannot be read finds no key, without an error."""
        _write_key(tmp_path / "alice.pem", alice.end_entity_key)
        index = KeyIndex.from_directory(tmp_path)
        assert index.key_for(alice.end_entity) is not None
        assert index.key_for(_unparsable_public_key(alice.end_entity, how)) is None

    def test_index_remembers_keys_it_could_not_open(
        self, tmp_path: Path, alice: IssuedChain
    ) -> None:
        """An encrypted key with the wrong password is listed with why, not silently dropped."""
        _write_key(tmp_path / "alice.key", alice.end_entity_key, password=b"pw")
        index = KeyIndex.from_directory(tmp_path, b"wrong")
        assert len(index) == 0
        assert [(p.name, "decrypted" in why) for p, why in index.unreadable] == [
            ("alice.key", True)
        ]

    def test_index_of_a_file_is_refused(self, tmp_path: Path) -> None:
        """--keys must name a directory."""
        (tmp_path / "f").write_text("x")
        with pytest.raises(InvalidRequestError, match="not a directory"):
            KeyIndex.from_directory(tmp_path / "f")


class TestReadPkcs12:
    """``read_pkcs12``: what ``inspect`` says of a PKCS#12 file's key."""

    @pytest.mark.parametrize(
        ("content", "has_key", "matches", "line"),
        [
            ("chain-and-its-key", True, True, "private key: matches the end entity"),
            ("chain-only", False, None, "private key: none in this file"),
            ("key-and-cas-only", True, None, "private key: present; no end entity to match it"),
        ],
    )
    def test_key_line(
        self, alice: IssuedChain, content: str, has_key: bool, matches: bool | None, line: str
    ) -> None:
        """With or without a key, with or without an end entity to match it against."""
        data = pkcs12.serialize_key_and_certificates(
            b"alice",
            None if content == "chain-only" else alice.end_entity_key,  # type: ignore[arg-type]
            None if content == "key-and-cas-only" else alice.end_entity,
            list(alice.intermediates),
            serialization.BestAvailableEncryption(b"pw"),
        )
        bundle = read_pkcs12(data, b"pw")
        assert (bundle.has_key, bundle.key_matches) == (has_key, matches)
        assert bundle.key_line().startswith(line)


class TestSimulatorIssuesForAKey:
    """The simulator issues an order's certificate for the key the test placed it with."""

    @pytest.mark.parametrize("kind", ["ec", "rsa"])
    def test_collected_certificate_matches_the_key(self, kind: str) -> None:
        """What the test collects pairs with the key it holds: the whole bundle flow end to end."""
        from smime_collect.testing import Simulator

        key = (
            ec.generate_private_key(ec.SECP256R1())
            if kind == "ec"
            else rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )
        sim = Simulator(seed=3)
        sim.add_account("u", "p")
        order = sim.add_order(9, key=key, email="carol@example.com")
        assert order.chain is not None
        assert order.chain.end_entity_key is key
        assert public_key_id(order.chain.end_entity) == public_key_id(key)
        chain = CertificateChain.from_certificates(order.chain.certificates())
        assert chain.email_addresses == ("carol@example.com",)
        data = chain.to_pkcs12(key, password=b"pw")
        assert pkcs12.load_pkcs12(data, b"pw").key is not None

    def test_chain_and_key_together_are_refused(self, alice: IssuedChain) -> None:
        """An order gets its chain or its key, not both."""
        from smime_collect.testing import Simulator

        sim = Simulator(seed=3)
        sim.add_account("u", "p")
        with pytest.raises(ValueError, match="not both"):
            sim.add_order(1, chain=alice, key=alice.end_entity_key)

"""Tests for the certificate layer: the test PKI, the format serialisers and load_certificates."""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
import subprocess
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import cryptography
import cryptography_vectors
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from cryptography.x509 import name as x509_name
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import smime_collect._certs._node
from smime_collect import CertificateChain, load_certificates
from smime_collect._certs import _fast, email_addresses, identify_payload, rfc4514
from smime_collect._certs._names import common_name
from smime_collect.testing._formats import (
    to_base64,
    to_cmmf_der,
    to_netscape_sequence_der,
    to_pem,
    to_pem_blocks,
    to_pkcs7_der,
    to_zip,
)
from smime_collect.testing._pki import IssuedChain, TestCA, certificate_builder

Certs = Sequence[x509.Certificate]
CRYPTOGRAPHY_MAJOR = int(cryptography.__version__.split(".")[0])


def _der(certs: Certs) -> list[bytes]:
    return [c.public_bytes(Encoding.DER) for c in certs]


def _vector(path: str) -> bytes:
    with cryptography_vectors.open_vector_file(path, "rb") as handle:
        data: bytes = handle.read()
    return data


def _pkits(*names: str) -> bytes:
    """DER PKITS certificates from cryptography_vectors, concatenated."""
    return b"".join(_vector(f"x509/PKITS_data/certs/{name}.crt") for name in names)


def _assert_classified(chain: CertificateChain, issued: IssuedChain) -> None:
    assert chain.end_entity == issued.end_entity
    assert chain.intermediates == issued.intermediates
    assert chain.roots == (issued.root,)


# Every test runs with the certificate shortcuts on, then off (conftest's ``shortcuts``).
pytestmark = pytest.mark.usefixtures("shortcuts")


class TestTestPKI:
    """The public test PKI builds Sectigo-shaped hierarchies."""

    def test_create_is_cached(self) -> None:
        """The same arguments give the same CA object, so keys are generated once."""
        assert TestCA.create() is TestCA.create()

    def test_smime_end_entity_shape(self) -> None:
        """The end entity carries the S/MIME extensions and Sectigo's day-aligned validity."""
        issued = TestCA.create().issue_smime(
            "alice@example.com", not_before=dt.datetime(2025, 3, 4, 15, 30, tzinfo=dt.UTC)
        )
        cert = issued.end_entity
        assert cert.not_valid_before_utc == dt.datetime(2025, 3, 4, tzinfo=dt.UTC)
        assert cert.not_valid_after_utc == dt.datetime(2026, 3, 4, 23, 59, 59, tzinfo=dt.UTC)
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.EMAIL_PROTECTION]
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.RFC822Name) == ["alice@example.com"]

    @pytest.mark.parametrize("intermediates", [0, 1, 2], ids=["root-only", "one", "two"])
    def test_every_link_verifies(self, intermediates: int) -> None:
        """Each certificate is signed by the next one up."""
        issued = TestCA.create("Links", intermediates=intermediates).issue_smime("a@example.com")
        chain = issued.certificates()
        assert len(chain) == intermediates + 2
        for child, parent in itertools.pairwise(chain):
            child.verify_directly_issued_by(parent)

    def test_sha1_root_is_self_signed_with_sha1(self) -> None:
        """The legacy root is signed with SHA-1, which verify_directly_issued_by refuses."""
        root = TestCA.create("Legacy", key_type="rsa", root_hash="sha1").root
        assert root.signature_hash_algorithm is not None
        assert root.signature_hash_algorithm.name == "sha1"
        with pytest.raises(ValueError, match="Unsupported signature algorithm"):
            root.verify_directly_issued_by(root)
        public_key = root.public_key()
        assert isinstance(public_key, rsa.RSAPublicKey)
        public_key.verify(
            root.signature,
            root.tbs_certificate_bytes,
            padding.PKCS1v15(),
            root.signature_hash_algorithm,
        )

    def test_v1_root_has_no_extensions(self) -> None:
        """The old root is an X.509 v1 certificate without basicConstraints."""
        root = TestCA.create("Old", root_v1=True).root
        assert root.version is x509.Version.v1
        assert len(root.extensions) == 0
        root.verify_directly_issued_by(root)

    def test_cross_certificate_shares_subject_and_key(self) -> None:
        """A cross-certificate has the root's subject and key but another issuer."""
        ca, other = TestCA.create("Cross"), TestCA.create("Other")
        cross = ca.cross_certificate(other)
        assert cross.subject == ca.root.subject
        assert cross.public_key() == ca.root.public_key()
        cross.verify_directly_issued_by(other.root)


class TestFormats:
    """The serialisers write what cryptography and OpenSSL write."""

    def test_sorted_pkcs7_matches_cryptography(self) -> None:
        """A sorted SignedData is byte-identical to cryptography's serialize_certificates."""
        certs = list(TestCA.create().issue_smime("a@example.com").certificates())
        assert to_pkcs7_der(certs) == pkcs7.serialize_certificates(certs, Encoding.DER)

    def test_unsorted_pkcs7_is_not_der(self) -> None:
        """Input-order SETs are not DER: cryptography reads them, warning (from 45 on) about it."""
        certs = list(TestCA.create().issue_smime("a@example.com").certificates())
        data = to_pkcs7_der(certs, sorted=False)
        assert data != to_pkcs7_der(certs)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert len(pkcs7.load_der_pkcs7_certificates(data)) == 3
        # Before 45, cryptography read such a SET without a word; since 45 it falls back to BER
        # with this warning, which load_certificates hides.
        warned = [w for w in caught if "could not be parsed as DER" in str(w.message)]
        assert len(warned) == (1 if CRYPTOGRAPHY_MAJOR >= 45 else 0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            pkcs7.load_der_pkcs7_certificates(to_pkcs7_der(certs))

    def test_sloppy_markers(self) -> None:
        """The seed's markers: spaced dashes, and four dashes on the last END line."""
        certs = list(TestCA.create().issue_smime("a@example.com").certificates())
        text = to_pem_blocks(certs, sloppy_markers=True, crlf=True)
        assert text.startswith(b"----- BEGIN CERTIFICATE -----\r\n")
        assert text.count(b"\n----- END CERTIFICATE -----\r\n") == 2
        assert text.endswith(b"\r\n---- END CERTIFICATE -----\r\n")

    @pytest.mark.parametrize("tagging", ["explicit", "implicit"])
    def test_cmmf_tags(self, tagging: str) -> None:
        """EXPLICIT caPubs wraps a SEQUENCE; IMPLICIT puts certificates straight in [1]."""
        issued = TestCA.create().issue_smime("a@example.com")
        der = to_cmmf_der(issued.intermediates, issued.end_entity, tagging=tagging)  # type: ignore[arg-type]
        # SEQUENCE(82 len) then [1] (82 len) then either SEQUENCE (explicit) or a Certificate.
        assert der[4] == 0xA1
        inner = der[8:]
        ee = issued.end_entity.public_bytes(Encoding.DER)
        assert (ee in der) is (tagging == "explicit")
        assert inner[0] == 0x30

    def test_netscape_sequence_oid(self) -> None:
        """The sequence starts with the Netscape certificate sequence OID."""
        certs = list(TestCA.create().issue_smime("a@example.com").certificates())
        assert bytes.fromhex("06096086480186f8420205") in to_netscape_sequence_der(certs)[:20]


# Every container CollectSMIME can send, as a function of the certificates in wire order.
FORMATS: dict[str, Callable[[Certs], bytes | str]] = {
    "pem": to_pem_blocks,
    "pem-crlf": lambda c: to_pem_blocks(c, crlf=True),
    "pem-seed-markers": lambda c: to_pem_blocks(c, sloppy_markers=True),
    "pem-as-str": lambda c: to_pem_blocks(c).decode(),
    "pem-with-text-around": lambda c: b"2\nsome text\n" + to_pem_blocks(c) + b"\ntrailer\n",
    "pem-after-a-zero-line": lambda c: b"0 (not a status)\n" + to_pem_blocks(c),
    "der-concatenated": lambda c: b"".join(_der(c)),
    "pkcs7-der-sorted": to_pkcs7_der,
    "pkcs7-der-unsorted": lambda c: to_pkcs7_der(c, sorted=False),
    "pkcs7-base64-bare": lambda c: to_base64(to_pkcs7_der(c)),
    "pkcs7-base64-one-line": lambda c: to_base64(to_pkcs7_der(c, sorted=False), line_length=None),
    "pkcs7-pem": lambda c: to_pem(to_pkcs7_der(c), "PKCS7"),
    "pkcs7-pem-crlf-unsorted": lambda c: to_pem(to_pkcs7_der(c, sorted=False), "PKCS7", crlf=True),
    "netscape-der": to_netscape_sequence_der,
    "netscape-base64": lambda c: to_base64(to_netscape_sequence_der(c)),
    "netscape-pem-certificate-label": lambda c: to_pem(to_netscape_sequence_der(c)),
    "cmmf-explicit-der": lambda c: to_cmmf_der(c[1:], c[0], tagging="explicit"),
    "cmmf-implicit-der": lambda c: to_cmmf_der(c[1:], c[0], tagging="implicit"),
    "cmmf-explicit-base64": lambda c: to_base64(to_cmmf_der(c[1:], c[0], tagging="explicit")),
    "cmmf-implicit-base64": lambda c: to_base64(
        to_cmmf_der(c[1:], c[0], tagging="implicit"), line_length=None
    ),
    "zip-of-pem": lambda c: to_zip(
        {"README.txt": b"no certificate here", "chain.pem": to_pem_blocks(c)}
    ),
    "zip-one-file-each": lambda c: to_zip({f"cert{i}.crt": d for i, d in enumerate(_der(c))}),
}

ORDERS = {
    "issuing-order": (0, 1, 2),
    "root-first": (2, 1, 0),
    "shuffled": (1, 0, 2),
}


def _ber_indefinite(data: bytes, depth: int = 4) -> bytes:
    """The outer ``depth`` levels of constructed DER re-encoded with BER indefinite lengths."""
    out, position = b"", 0
    while position < len(data):
        tag, size = data[position], data[position + 1]
        start = position + 2
        if size >= 0x80:
            start += size & 0x7F
            size = int.from_bytes(data[position + 2 : start], "big")
        end = start + size
        if tag & 0x20 and depth > 0:
            out += bytes((tag, 0x80)) + _ber_indefinite(data[start:end], depth - 1) + b"\0\0"
        else:
            out += data[position:end]
        position = end
    return out


# More forms, of the certificates in issuing order; the "der-" ones hold the end entity alone.
MORE_FORMATS: dict[str, Callable[[Certs], bytes]] = {
    "der-base64": lambda c: to_base64(_der(c)[0]),
    "der-base64-one-line": lambda c: to_base64(_der(c)[0], line_length=None),
    "pem-with-text-between": lambda c: (
        b"Subject: x\n" + to_pem(_der(c)[0]) + b"between\n" + to_pem_blocks(c[1:]) + b"bye\n"
    ),
    # The certificates [0] too: BER all the way down to the certificates themselves.
    "pkcs7-ber-indefinite": lambda c: _ber_indefinite(to_pkcs7_der(c)),
    "pkcs7-base64-crlf": lambda c: to_base64(to_pkcs7_der(c)).replace(b"\n", b"\r\n"),
    "netscape-pem-other-label": lambda c: to_pem(to_netscape_sequence_der(c), "NSEQ"),
    "cmmf-pem": lambda c: to_pem(to_cmmf_der(c[1:], c[0], tagging="implicit"), "CMMF"),
    "zip-of-mixed-members": lambda c: to_zip(
        {"README.txt": b"no certificate\n", "ee.cer": _der(c)[0], "ca.p7b": to_pkcs7_der(c[1:])}
    ),
    "zip-pem-certificate-label": lambda c: to_pem(
        to_zip({"ee.cer": _der(c)[0], "ca.p7b": to_pkcs7_der(c[1:])}), "CERTIFICATE"
    ),
}


class TestLoadFormats:
    """Every format, in every order, loads into the same classified chain."""

    @pytest.mark.parametrize("order", ORDERS.values(), ids=ORDERS.keys())
    @pytest.mark.parametrize("render", FORMATS.values(), ids=FORMATS.keys())
    def test_round_trip(
        self, issued: IssuedChain, render: Callable[[Certs], bytes | str], order: tuple[int, ...]
    ) -> None:
        """The certificates come back classified, whatever the container and order."""
        certs = [issued.certificates()[i] for i in order]
        _assert_classified(load_certificates(render(certs)), issued)

    def test_bytearray_and_memoryview(self, issued: IssuedChain) -> None:
        """Any bytes-like input is accepted."""
        data = to_pem_blocks(issued.certificates())
        _assert_classified(load_certificates(bytearray(data)), issued)  # type: ignore[arg-type]
        _assert_classified(load_certificates(memoryview(data)), issued)  # type: ignore[arg-type]

    def test_unsorted_pkcs7_emits_no_warning(self, issued: IssuedChain) -> None:
        """The UserWarning cryptography raises for a non-DER SET never reaches the caller."""
        data = to_pkcs7_der(issued.certificates(), sorted=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            load_certificates(data)
        assert caught == []

    def test_several_kinds_in_one_body(self, issued: IssuedChain) -> None:
        """A PEM certificate, a PEM PKCS7 and a Netscape sequence in one text are all read."""
        ee, intermediate, root = issued.certificates()
        body = (
            to_pem_blocks([ee])
            + b"\n"
            + to_pem(to_pkcs7_der([intermediate]), "PKCS7")
            + to_pem(to_netscape_sequence_der([root]))
        )
        _assert_classified(load_certificates(body), issued)

    def test_duplicates_are_removed(self, issued: IssuedChain) -> None:
        """The same certificate twice appears once."""
        certs = issued.certificates()
        chain = load_certificates(to_pem_blocks([*certs, *certs]))
        assert len(chain) == 3

    def test_end_entity_only(self, issued: IssuedChain) -> None:
        """A queryType 2 body (the end entity alone) loads."""
        chain = load_certificates(issued.end_entity.public_bytes(Encoding.DER))
        assert chain.end_entity == issued.end_entity
        assert chain.intermediates == chain.roots == ()

    def test_ca_bundle(self, issued: IssuedChain) -> None:
        """A queryType 3 body (only CA certificates) has no end entity."""
        chain = load_certificates(to_pem_blocks([issued.root, *issued.intermediates]))
        assert chain.end_entity is None
        assert chain.intermediates == issued.intermediates
        assert chain.roots == (issued.root,)

    def test_trailing_newline_after_der(self, issued: IssuedChain) -> None:
        """A newline after a binary structure is tolerated."""
        _assert_classified(load_certificates(to_pkcs7_der(issued.certificates()) + b"\r\n"), issued)

    def test_pem_headers_are_skipped(self, issued: IssuedChain) -> None:
        """RFC 1421 header lines inside a block do not break decoding."""
        block = to_pem_blocks([issued.end_entity]).replace(
            b"-----\n", b"-----\nProc-Type: 4,CRL\n\n", 1
        )
        assert load_certificates(block).end_entity == issued.end_entity

    def test_other_pem_blocks_are_skipped(self, issued: IssuedChain) -> None:
        """A private key next to the certificate is ignored, not an error."""
        key = to_pem(b"\x30\x03\x02\x01\x00", "PRIVATE KEY")
        assert load_certificates(key + to_pem_blocks([issued.end_entity])).end_entity is not None

    @pytest.mark.parametrize("name", MORE_FORMATS.keys())
    def test_more_forms(self, issued: IssuedChain, name: str) -> None:
        """Lone base64 certificates, BER lengths, CRLF base64, other labels and mixed ZIPs load."""
        chain = load_certificates(MORE_FORMATS[name](issued.certificates()))
        if name.startswith("der-"):
            assert (chain.end_entity, len(chain)) == (issued.end_entity, 1)
        else:
            _assert_classified(chain, issued)


class TestLoadVectors:
    """Real-world files from the cryptography-vectors package."""

    @pytest.mark.parametrize(
        ("path", "end_entity", "intermediates", "roots"),
        [
            (
                "x509/cryptography.io.chain.pem",
                "www.cryptography.io",
                ["RapidSSL SHA256 CA - G3"],
                [],
            ),
            (
                "x509/cryptography.io.chain_with_garbage.pem",
                "www.cryptography.io",
                ["RapidSSL SHA256 CA - G3"],
                [],
            ),
            ("x509/cryptography.io.old_header.pem", "www.cryptography.io", [], []),
            ("x509/cryptography.io.with_headers.pem", "www.cryptography.io", [], []),
            ("pkcs7/amazon-roots.p7b", None, [], ["Amazon Root CA 3", "Amazon Root CA 2"]),
            ("pkcs7/amazon-roots.der", None, [], ["Amazon Root CA 3", "Amazon Root CA 2"]),
            ("pkcs7/isrg.pem", None, [], ["ISRG Root X1"]),
            ("x509/ecdsa_root.pem", None, [], ["DigiCert Global Root G3"]),
        ],
        ids=lambda v: v if isinstance(v, str) and "/" in v else "",
    )
    def test_vector(
        self, path: str, end_entity: str | None, intermediates: list[str], roots: list[str]
    ) -> None:
        """The file loads and classifies as expected (BER PKCS#7 included)."""
        chain = load_certificates(_vector(path))
        assert repr(chain) == (
            f"<CertificateChain end_entity={end_entity!r} "
            f"intermediates={intermediates!r} roots={roots!r}>"
        )

    def test_md2_v1_root_is_a_root(self) -> None:
        """A 1996 v1 root whose MD2 self-signature nobody can check is a root: names decide."""
        chain = load_certificates(_vector("x509/verisign_md2_root.pem"))
        assert chain.end_entity is None
        assert len(chain.roots) == 1

    def test_pkits_good_path(self) -> None:
        """PKITS 4.1.1: trust anchor, Good CA, end entity - DER concatenated, EE first."""
        chain = load_certificates(
            _pkits("ValidCertificatePathTest1EE", "GoodCACert", "TrustAnchorRootCertificate")
        )
        assert repr(chain) == (
            "<CertificateChain end_entity='Valid EE Certificate Test1' "
            "intermediates=['Good CA'] roots=['Trust Anchor']>"
        )
        chain.verify()

    def test_pkits_self_issued_is_not_self_signed(self) -> None:
        """PKITS 4.5.1: a self-issued key-rollover certificate is an intermediate, not a root."""
        chain = load_certificates(
            _pkits(
                "TrustAnchorRootCertificate",
                "BasicSelfIssuedNewKeyCACert",
                "BasicSelfIssuedNewKeyOldWithNewCACert",
                "ValidBasicSelfIssuedOldWithNewTest1EE",
            )
        )
        assert [c.subject.rfc4514_string() for c in chain.roots] == [
            "CN=Trust Anchor,O=Test Certificates 2011,C=US"
        ]
        old_with_new = x509.load_der_x509_certificate(
            _pkits("BasicSelfIssuedNewKeyOldWithNewCACert")
        )
        assert chain.intermediates[0] == old_with_new
        chain.verify()


def _openssl(*args: str, stdin: bytes) -> bytes:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed")
    completed = subprocess.run(  # noqa: S603 - fixed arguments, the test's own files
        [openssl, *args], input=stdin, capture_output=True, check=True
    )
    return completed.stdout


class TestLoadOpenSSLOutput:
    """What OpenSSL's own tools write loads too."""

    def test_nseq_toseq(self, issued: IssuedChain) -> None:
        """`openssl nseq -toseq` writes a Netscape sequence under a CERTIFICATE label."""
        out = _openssl("nseq", "-toseq", stdin=to_pem_blocks(issued.certificates()))
        assert out.startswith(b"-----BEGIN CERTIFICATE-----")
        _assert_classified(load_certificates(out), issued)

    @pytest.mark.parametrize("outform", ["DER", "PEM"])
    def test_crl2pkcs7_nocrl(self, issued: IssuedChain, outform: str, tmp_path: Path) -> None:
        """`openssl crl2pkcs7 -nocrl` writes an unsorted SET: loaded without a warning."""
        certfile = tmp_path / "chain.pem"
        certfile.write_bytes(to_pem_blocks(issued.certificates()))
        out = _openssl(
            "crl2pkcs7", "-nocrl", "-certfile", str(certfile), "-outform", outform, stdin=b""
        )
        _assert_classified(load_certificates(out), issued)


class TestCACache:
    """CA certificates seen before are reused; results never depend on the cache."""

    @pytest.mark.parametrize("shortcuts", ["shortcuts"], indirect=True)
    def test_repeated_loads_reuse_ca_objects(self, issued: IssuedChain) -> None:
        """From the second load of a body on, the CA certificates are the cached objects."""
        _fast.ca_cache.clear()
        body = to_pem_blocks(issued.certificates())
        first, second, third = (load_certificates(body) for _ in range(3))
        assert first == second == third
        assert third.intermediates[0] is second.intermediates[0] is first.intermediates[0]
        assert third.roots[0] is second.roots[0]
        assert third.end_entity is not second.end_entity  # end entities are never cached

    @pytest.mark.parametrize("shortcuts", ["shortcuts"], indirect=True)
    def test_root_self_signature_is_checked_once(
        self, real_shaped: TestCA, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A batch under a root with an SKI and no AKI checks the root's signature once."""
        checks: list[x509.Certificate] = []
        real_check = smime_collect._certs._node.signature_check

        def counting(child: x509.Certificate, parent: x509.Certificate) -> bool | None:
            checks.append(child)
            return real_check(child, parent)

        monkeypatch.setattr(smime_collect._certs._node, "signature_check", counting)
        _fast.ca_cache.clear()
        for number in range(5):
            issued = real_shaped.issue_smime(f"batch{number}@example.com")
            _assert_classified(load_certificates(to_pem_blocks(issued.certificates())), issued)
        assert checks == [real_shaped.root]

    @pytest.mark.parametrize("shortcuts", ["shortcuts"], indirect=True)
    def test_cache_is_bounded(self, issued: IssuedChain) -> None:
        """Past its size the cache forgets the oldest CA first, and still answers."""
        cache = _fast.CACache(max_entries=2)
        nodes = [
            smime_collect._certs._node.read_node(c, c.public_bytes(Encoding.DER))
            for c in issued.certificates()
        ]
        for node in nodes:
            cache.put(node)
            cache.put_base64(b"base64 of " + node.der, node)
        assert [cache.get(node.der) for node in nodes] == [None, nodes[1], nodes[2]]
        assert cache.get_by_base64(b"base64 of " + nodes[0].der) is None
        assert cache.get_by_base64(b"base64 of " + nodes[2].der) is nodes[2]
        cache.clear()
        assert cache.get(nodes[2].der) is None

    def test_nothing_is_cached_without_the_shortcuts(self, issued: IssuedChain) -> None:
        """With the shortcuts off the cache neither keeps nor answers."""
        with _fast.disabled():
            load_certificates(to_pem_blocks(issued.certificates()))
            assert _fast.ca_cache.get(issued.root.public_bytes(Encoding.DER)) is None
        assert _fast.ca_cache.get(issued.root.public_bytes(Encoding.DER)) is None

    def test_nothing_is_kept_while_the_shortcuts_are_off(self, issued: IssuedChain) -> None:
        """A node handed to the cache while the shortcuts are off is kept under no key."""
        der = issued.root.public_bytes(Encoding.DER)
        node = smime_collect._certs._node.read_node(issued.root, der)
        cache = _fast.CACache()
        with _fast.disabled():
            cache.put(node)
            cache.put_base64(b"base64 of the root", node)
        assert cache.get(der) is None
        assert cache.get_by_base64(b"base64 of the root") is None

    @pytest.mark.parametrize("render", FORMATS.values(), ids=FORMATS.keys())
    def test_cold_and_warm_agree(
        self, issued: IssuedChain, render: Callable[[Certs], bytes | str]
    ) -> None:
        """Every format classifies the same with an empty and with a warm cache."""
        data = render(issued.certificates()[::-1])
        _fast.ca_cache.clear()
        cold = load_certificates(data)
        warm = load_certificates(data)
        assert cold == warm
        _assert_classified(warm, issued)


class TestRealShapedChain:
    """Sectigo's shape: an RSA root with an SKI and no AKI over one intermediate."""

    def test_classified_and_verified(self, real_shaped: TestCA) -> None:
        """The root is recognised by its signature, in every order, and the chain verifies."""
        issued = real_shaped.issue_smime("real@example.com")
        with pytest.raises(x509.ExtensionNotFound):
            issued.root.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
        for order in itertools.permutations(issued.certificates()):
            chain = load_certificates(to_pem_blocks(order))
            _assert_classified(chain, issued)
        chain.verify()


@pytest.fixture(scope="module")
def real_shaped() -> TestCA:
    """A real-shaped hierarchy with a 2048-bit root (the shape matters here, not the size)."""
    return TestCA.create_real_shaped("Real", root_key_size=2048)


_ASN1 = x509_name._ASN1Type
_ATTRIBUTE_TYPES = [
    NameOID.COMMON_NAME,
    NameOID.ORGANIZATION_NAME,
    NameOID.ORGANIZATIONAL_UNIT_NAME,
    NameOID.LOCALITY_NAME,
    NameOID.STATE_OR_PROVINCE_NAME,
    NameOID.STREET_ADDRESS,
    NameOID.DOMAIN_COMPONENT,
    NameOID.USER_ID,
    NameOID.EMAIL_ADDRESS,
    NameOID.SERIAL_NUMBER,
    NameOID.TITLE,
    x509.ObjectIdentifier("1.2.3.4.5"),
    x509.ObjectIdentifier("2.999.1"),
]
_TEXT = st.text(
    st.sampled_from([*"az AZ09", *',+"\\<>;#=', "\0", "é", "ß", "中", "😀"]),
    min_size=1,
    max_size=12,
)


@st.composite
def _attributes(draw: st.DrawFn) -> x509.NameAttribute[str | bytes]:
    """One attribute of any type, with a value and string type cryptography can encode."""
    oid = draw(st.sampled_from(_ATTRIBUTE_TYPES))
    value = draw(_TEXT if oid == NameOID.COMMON_NAME else _TEXT | st.just(""))
    kinds = [_ASN1.UTF8String, _ASN1.BMPString, _ASN1.UniversalString]
    if value.isascii() and "\0" not in value:
        kinds.append(_ASN1.IA5String)
    return x509.NameAttribute(oid, value, draw(st.sampled_from(kinds)))


_NAMES = st.lists(
    st.lists(_attributes(), min_size=1, max_size=2, unique_by=lambda a: (a.oid, a.value)).map(
        x509.RelativeDistinguishedName
    ),
    max_size=4,
).map(x509.Name)
_NAME_KEY = ec.generate_private_key(ec.SECP256R1())


def _with_subject(subject: x509.Name) -> x509.Certificate:
    return (
        certificate_builder(
            subject,
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Issuer")]),
            _NAME_KEY.public_key(),
            dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
            dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        )
    ).sign(_NAME_KEY, hashes.SHA256())


class TestNames:
    """Names for messages and reports, read from the DER, read as cryptography reads them."""

    @settings(max_examples=200, deadline=None)
    @given(subject=_NAMES)
    def test_same_as_cryptography(self, subject: x509.Name) -> None:
        """RFC 4514 text, common name and e-mail addresses equal cryptography's for any name."""
        # Before 47, cryptography escaped a value of one space twice (pyca/cryptography#13843);
        # test_a_value_of_one_space covers that value against RFC 4514 itself.
        assume(CRYPTOGRAPHY_MAJOR >= 47 or all(a.value != " " for a in subject))
        certificate = _with_subject(subject)
        names = certificate.subject
        common = names.get_attributes_for_oid(NameOID.COMMON_NAME)
        emails = [a.value for a in names.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)]
        assert rfc4514(certificate, "subject") == names.rfc4514_string()
        assert rfc4514(certificate, "issuer") == "CN=Issuer"
        assert common_name(certificate) == (
            common[0].value if common else names.rfc4514_string() or "<empty subject>"
        )
        assert email_addresses(certificate) == tuple(dict.fromkeys(emails))

    def test_a_value_of_one_space(self) -> None:
        """A value of one space is escaped once (RFC 4514 section 2.4), as cryptography 47 does."""
        certificate = _with_subject(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, " ")]))
        assert rfc4514(certificate, "subject") == "CN=\\ "
        if CRYPTOGRAPHY_MAJOR >= 47:
            assert certificate.subject.rfc4514_string() == "CN=\\ "

    def test_unique_identifier_bit_string(self) -> None:
        """The one attribute a BIT STRING may hold is written as # and hex, as cryptography does."""
        unique = x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, b"\x01\xff", _ASN1.BitString)
        certificate = _with_subject(x509.Name([unique]))
        assert (
            rfc4514(certificate, "subject")
            == certificate.subject.rfc4514_string()
            == "2.5.4.45=#01ff"
        )


# The name each format gets; the payload is rendered from an EE, intermediate and root.
PAYLOAD_FORMATS = {
    "pem": (".pem", "PEM"),
    "pem-crlf": (".pem", "PEM"),
    "pem-seed-markers": (".pem", "PEM"),
    "pem-as-str": (".pem", "PEM"),
    "pem-with-text-around": (".pem", "PEM"),
    "pem-after-a-zero-line": (".pem", "PEM"),
    "der-concatenated": (".der", "X.509 certificate, DER"),
    "pkcs7-der-sorted": (".p7b", "PKCS#7 SignedData, DER"),
    "pkcs7-der-unsorted": (".p7b", "PKCS#7 SignedData, DER"),
    "pkcs7-base64-bare": (".p7b.b64", "PKCS#7 SignedData, base64"),
    "pkcs7-base64-one-line": (".p7b.b64", "PKCS#7 SignedData, base64"),
    "pkcs7-pem": (".pem", "PEM"),
    "pkcs7-pem-crlf-unsorted": (".pem", "PEM"),
    "netscape-der": (".nsc", "Netscape certificate sequence, DER"),
    "netscape-base64": (".nsc.b64", "Netscape certificate sequence, base64"),
    "netscape-pem-certificate-label": (".pem", "PEM"),
    "cmmf-explicit-der": (".cmmf", "CMMF/CMP CertRepContent, DER"),
    "cmmf-implicit-der": (".cmmf", "CMMF/CMP CertRepContent, DER"),
    "cmmf-explicit-base64": (".cmmf.b64", "CMMF/CMP CertRepContent, base64"),
    "cmmf-implicit-base64": (".cmmf.b64", "CMMF/CMP CertRepContent, base64"),
    "zip-of-pem": (".zip", "ZIP archive"),
    "zip-one-file-each": (".zip", "ZIP archive"),
}


class TestIdentifyPayload:
    """The loader names what it read: a container, its encoding and a file extension."""

    def test_every_format_is_named(self) -> None:
        """The table above names every format the loader reads."""
        assert PAYLOAD_FORMATS.keys() == FORMATS.keys()

    @pytest.mark.parametrize("name", FORMATS.keys())
    def test_format(self, issued: IssuedChain, name: str) -> None:
        """Each format gets its extension and description, without loading a certificate."""
        data = FORMATS[name](issued.certificates())
        found = identify_payload(data)
        assert (found.extension, found.description) == PAYLOAD_FORMATS[name]

    @pytest.mark.parametrize(
        ("data", "extension", "description"),
        [
            pytest.param(b"\x00\x01\x02 junk", ".bin", "unrecognised bytes", id="junk"),
            pytest.param(b"", ".bin", "unrecognised bytes", id="empty"),
            pytest.param(b"MIIBkTCCATeg\nAAAA\n", ".b64", "base64", id="base64-of-junk"),
            pytest.param(b"-----BEGIN X-----\nAAAA\n-----END X-----\n", ".pem", "PEM", id="pem"),
            pytest.param(
                to_base64(to_zip({"a": b"x"})), ".zip.b64", "ZIP archive, base64", id="zip"
            ),
        ],
    )
    def test_what_does_not_load(self, data: bytes, extension: str, description: str) -> None:
        """Data that does not load is named as far as the loader got."""
        found = identify_payload(data)
        assert (found.extension, found.description) == (extension, description)

    def test_no_certificate_is_parsed(
        self, issued: IssuedChain, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Naming a payload parses nothing, so it neither warns nor swaps warning filters."""

        def forbidden(*_: object) -> None:
            raise AssertionError("a certificate was parsed")

        monkeypatch.setattr(x509, "load_der_x509_certificate", forbidden)
        monkeypatch.setattr(pkcs7, "load_der_pkcs7_certificates", forbidden)
        for render in FORMATS.values():
            assert identify_payload(render(issued.certificates())).container is not None

"""Tests for CertificateChain: classification by content, verify() and the export helpers."""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import attrs
import cryptography_vectors
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from hypothesis import given, settings
from hypothesis import strategies as st

from smime_collect import (
    CertificateChain,
    ChainError,
    load_certificates,
)
from smime_collect._certs._der import read_single
from smime_collect._certs._node import signature_check
from smime_collect.testing._formats import der_tlv, to_pem_blocks, to_pkcs7_der
from smime_collect.testing._pki import IssuedChain, PrivateKey, TestCA


def _cn(certificate: x509.Certificate | None) -> str | None:
    if certificate is None:
        return None
    return str(certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value)


def _roles(chain: CertificateChain) -> tuple[str | None, list[str | None], list[str | None]]:
    return (
        _cn(chain.end_entity),
        [_cn(c) for c in chain.intermediates],
        [_cn(c) for c in chain.roots],
    )


def _cross_signed_intermediate(
    intermediate: x509.Certificate, key: PrivateKey, issuer: TestCA, not_before: dt.datetime
) -> x509.Certificate:
    """The same subject and key as ``intermediate``, issued by another CA's root."""
    return (
        x509.CertificateBuilder()
        .subject_name(intermediate.subject)
        .issuer_name(issuer.root.subject)
        .public_key(intermediate.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.root_key.public_key()),
            critical=False,
        )
        .sign(issuer.root_key, hashes.SHA256())
    )


# Every test runs with the certificate shortcuts on, then off (conftest's ``shortcuts``).
pytestmark = pytest.mark.usefixtures("shortcuts")


def _ecdsa_sha1_root(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """A self-signed ECDSA root with a SHA-1 signature, which cryptography will not build.

    Built with SHA-256, then its AlgorithmIdentifiers rewritten and the TBS signed again.
    """
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "EC SHA-1 Root")])
    built = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2040, 1, 1, tzinfo=dt.UTC))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    # ecdsa-with-SHA256 (1.2.840.10045.4.3.2) and ecdsa-with-SHA1 (1.2.840.10045.4.1), RFC 5758.
    sha256 = der_tlv(0x30, der_tlv(0x06, bytes.fromhex("2a8648ce3d040302")))
    sha1 = der_tlv(0x30, der_tlv(0x06, bytes.fromhex("2a8648ce3d0401")))
    tbs = der_tlv(0x30, read_single(built.tbs_certificate_bytes).content.replace(sha256, sha1, 1))
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA1()))  # noqa: S303 - the legacy root, on purpose
    return x509.load_der_x509_certificate(
        der_tlv(0x30, tbs + sha1 + der_tlv(0x03, b"\x00" + signature))
    )


def pem(certificates: Sequence[x509.Certificate]) -> bytes:
    """Concatenated PEM, as cryptography writes it."""
    return b"".join(c.public_bytes(Encoding.PEM) for c in certificates)


def _tampered(certificate: x509.Certificate) -> x509.Certificate:
    """The certificate with the last byte of its signature flipped."""
    der = bytearray(certificate.public_bytes(Encoding.DER))
    der[-1] ^= 0x01
    return x509.load_der_x509_certificate(bytes(der))


@pytest.fixture(scope="module")
def long_chain() -> IssuedChain:
    """End entity, two intermediates, root."""
    return TestCA.create("Long", intermediates=2).issue_smime("bob@example.com", common_name="Bob")


@pytest.fixture(scope="module")
def cross() -> tuple[IssuedChain, x509.Certificate, x509.Certificate]:
    """A Sectigo-shaped hierarchy: the root also exists cross-signed by a SHA-1 legacy root.

    Returns the issued chain (under "USERTrust"), the cross-certificate and the legacy root.
    """
    usertrust = TestCA.create("USERTrust", key_type="rsa")
    aaa = TestCA.create("AAA", key_type="rsa", root_hash="sha1")
    return (
        usertrust.issue_smime("carol@example.com", common_name="Carol"),
        (usertrust.cross_certificate(aaa)),
        aaa.root,
    )


class TestClassification:
    """Roles follow content: names, key identifiers and signatures, never input order."""

    def test_two_intermediates_in_issuing_order(self, long_chain: IssuedChain) -> None:
        """Intermediates run from the one that issued the end entity upwards."""
        chain = load_certificates(to_pkcs7_der(long_chain.certificates()))
        assert _roles(chain) == ("Bob", ["Long Email CA 1", "Long Email CA 2"], ["Long Root CA"])

    @settings(max_examples=30, deadline=None)
    @given(data=st.data())
    def test_every_permutation_classifies_alike(
        self, long_chain: IssuedChain, data: st.DataObject
    ) -> None:
        """Any input order of a four-certificate chain gives the same chain."""
        certificates = data.draw(st.permutations(long_chain.certificates()))
        chain = CertificateChain.from_certificates(certificates)
        assert chain.end_entity == long_chain.end_entity
        assert chain.intermediates == long_chain.intermediates
        assert chain.roots == (long_chain.root,)

    @settings(max_examples=30, deadline=None)
    @given(data=st.data())
    def test_cross_signed_permutations(
        self,
        cross: tuple[IssuedChain, x509.Certificate, x509.Certificate],
        data: st.DataObject,
    ) -> None:
        """With a root, its cross-certificate and the legacy root, order still does not matter."""
        issued, cross_certificate, legacy_root = cross
        everything = [*issued.certificates(), cross_certificate, legacy_root]
        chain = load_certificates(to_pem_blocks(data.draw(st.permutations(everything))))
        assert chain.end_entity == issued.end_entity
        assert chain.intermediates == (*issued.intermediates, cross_certificate)
        # Tie-break: the self-signed root is one link above the intermediate, the legacy root two.
        assert chain.roots == (issued.root, legacy_root)

    def test_cross_certificate_alone_is_an_intermediate(
        self, cross: tuple[IssuedChain, x509.Certificate, x509.Certificate]
    ) -> None:
        """A download topped by a cross-certificate has no root: it is not self-signed."""
        issued, cross_certificate, _ = cross
        chain = load_certificates(to_pem_blocks([cross_certificate, *issued.certificates()[:2]]))
        assert _roles(chain) == ("Carol", ["USERTrust Email CA 1", "USERTrust Root CA"], [])
        chain.verify()

    def test_cross_certificate_with_legacy_root(
        self, cross: tuple[IssuedChain, x509.Certificate, x509.Certificate]
    ) -> None:
        """End entity, intermediate, cross-certificate and the SHA-1 root verify end to end."""
        issued, cross_certificate, legacy_root = cross
        chain = load_certificates(
            to_pem_blocks([legacy_root, cross_certificate, *issued.certificates()[:2]])
        )
        assert _roles(chain) == (
            "Carol",
            ["USERTrust Email CA 1", "USERTrust Root CA"],
            ["AAA Root CA"],
        )
        chain.verify()

    def test_sha1_root_counts_as_self_signed(self) -> None:
        """A SHA-1 RSA root without an AKI is recognised by a direct signature check."""
        legacy = TestCA.create("AAA", key_type="rsa", root_hash="sha1")
        assert legacy.root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        with pytest.raises(x509.ExtensionNotFound):
            legacy.root.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
        issued = legacy.issue_smime("dave@example.com", common_name="Dave")
        chain = load_certificates(to_pem_blocks(issued.certificates()[::-1]))
        assert _roles(chain) == ("Dave", ["AAA Email CA 1"], ["AAA Root CA"])
        assert signature_check(legacy.root, legacy.root) is True
        chain.verify()

    def test_sha1_ecdsa_root(self) -> None:
        """An ECDSA root signed with SHA-1 is a root too (the public-key check accepts it)."""
        key = ec.generate_private_key(ec.SECP256R1())
        root = _ecdsa_sha1_root(key)
        with pytest.raises(ValueError, match="Unsupported signature algorithm"):
            root.verify_directly_issued_by(root)
        chain = CertificateChain.from_certificates([root])
        assert chain.roots == (root,)
        chain.verify()

    def test_sha1_dsa_root(self) -> None:
        """A DSA CA self-signed with SHA-1 (a cryptography vector) is a root and verifies."""
        with cryptography_vectors.open_vector_file("x509/custom/dsa_selfsigned_ca.pem", "rb") as f:
            chain = load_certificates(f.read())
        assert _roles(chain) == (None, [], ["PyCA DSA CA"])
        chain.verify()

    def test_signature_by_another_kind_of_key(self) -> None:
        """An Ed25519 signature checked against an RSA key is simply not made by it."""
        signer = ed25519.Ed25519PrivateKey.generate()
        rsa_root = TestCA.create("Kinds", key_type="rsa").root
        child = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Ed")]))
            .issuer_name(rsa_root.subject)
            .public_key(signer.public_key())
            .serial_number(5)
            .not_valid_before(dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
            .not_valid_after(dt.datetime(2034, 1, 1, tzinfo=dt.UTC))
            .sign(signer, None)
        )
        assert signature_check(child, rsa_root) is False

    def test_v1_root_without_basic_constraints(self) -> None:
        """An X.509 v1 root (no extensions at all) is a root: self-signed wins."""
        old = TestCA.create("Old", root_v1=True)
        chain = load_certificates(to_pkcs7_der(old.issue_smime("erin@example.com").certificates()))
        assert chain.roots == (old.root,)
        assert chain.intermediates == old.intermediates
        chain.verify()

    def test_openssl_sha1_v1_root(self, tmp_path: Path) -> None:
        """A SHA-1 v1 root made by the openssl CLI, with an intermediate under it, classifies."""
        openssl = shutil.which("openssl")
        if openssl is None:
            pytest.skip("the openssl command is not installed")
        key_file, csr, cert = tmp_path / "key.pem", tmp_path / "root.csr", tmp_path / "root.pem"
        request = [
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=OpenSSL-Root",
            "-keyout",
        ]
        self_sign = ["x509", "-req", "-sha1", "-days", "3650", "-signkey"]
        commands = [
            [openssl, *request, str(key_file), "-out", str(csr)],
            [openssl, *self_sign, str(key_file), "-in", str(csr), "-out", str(cert)],
        ]
        for command in commands:
            subprocess.run(command, check=True, capture_output=True)  # noqa: S603 - fixed args
        root = x509.load_pem_x509_certificate(cert.read_bytes())
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        assert root.version is x509.Version.v1
        assert root.signature_hash_algorithm is not None
        assert root.signature_hash_algorithm.name == "sha1"
        child = TestCA.create("Under OpenSSL", key_type="rsa")
        intermediate = (
            x509.CertificateBuilder()
            .subject_name(child.intermediates[0].subject)
            .issuer_name(root.subject)
            .public_key(child.issuing_key.public_key())
            .serial_number(1)
            .not_valid_before(dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
            .not_valid_after(dt.datetime(2034, 1, 1, tzinfo=dt.UTC))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256())  # type: ignore[arg-type]
        )
        issued = child.issue_smime("frank@example.com", common_name="Frank")
        chain = load_certificates(to_pem_blocks([root, issued.end_entity, intermediate]))
        assert _roles(chain) == ("Frank", ["Under OpenSSL Email CA 1"], ["OpenSSL-Root"])
        chain.verify()

    def test_unlinked_ca_is_kept_as_intermediate(self, issued: IssuedChain) -> None:
        """A CA certificate that links to nothing stays, after the linked intermediates."""
        stray = TestCA.create("Stray").intermediates[0]
        chain = load_certificates(to_pem_blocks([stray, *issued.certificates()]))
        assert chain.intermediates == (*issued.intermediates, stray)
        assert chain.roots == (issued.root,)

    def test_extra_end_entities_are_kept_last(self) -> None:
        """Of two leaves, the later notBefore is the end entity; the other is kept, last."""
        ca = TestCA.create("Twins")
        older = ca.issue_smime("old@example.com", not_before=dt.datetime(2024, 1, 1))
        newer = ca.issue_smime("new@example.com", not_before=dt.datetime(2025, 1, 1))
        for order in ([older.end_entity, newer.end_entity], [newer.end_entity, older.end_entity]):
            chain = load_certificates(to_pem_blocks([*order, *ca.ca_certificates()]))
            assert chain.end_entity == newer.end_entity
            assert chain.intermediates == (*ca.intermediates, older.end_entity)

    def test_tie_break_between_cross_signed_intermediates(self) -> None:
        """Two intermediates that both issued the end entity: the later notBefore comes first."""
        ca, other = TestCA.create("Tie"), TestCA.create("Tie Other")
        issued = ca.issue_smime("gina@example.com")
        twin = _cross_signed_intermediate(
            ca.intermediates[0], ca.issuing_key, other, dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
        )
        for certificates in (
            [*issued.certificates(), twin, other.root],
            [other.root, twin, *issued.certificates()[::-1]],
        ):
            chain = CertificateChain.from_certificates(certificates)
            assert chain.intermediates == (twin, ca.intermediates[0])
            assert set(chain.roots) == {ca.root, other.root}
            assert chain == CertificateChain.from_certificates(certificates[::-1])

    def test_ca_bundle_orders_from_the_bottom(self, long_chain: IssuedChain) -> None:
        """Without an end entity, intermediates still run upwards from the lowest."""
        chain = CertificateChain.from_certificates(long_chain.certificates()[:0:-1])
        assert chain.end_entity is None
        assert chain.intermediates == long_chain.intermediates

    def test_self_signed_leaf_is_a_root(self) -> None:
        """Self-signed wins over everything: a lone self-signed certificate is a root."""
        legacy = TestCA.create("Alone", intermediates=0)
        chain = CertificateChain.from_certificates([legacy.root])
        assert chain.end_entity is None
        assert chain.roots == (legacy.root,)

    def test_ca_bundle_in_any_order(self, long_chain: IssuedChain) -> None:
        """Intermediates and root given in any of their six orders classify alike, bottom up."""
        for order in itertools.permutations(long_chain.certificates()[1:]):
            chain = load_certificates(to_pem_blocks(order))
            assert chain.end_entity is None
            assert chain.intermediates == long_chain.intermediates
            assert chain.roots == (long_chain.root,)

    def test_rekeyed_intermediate_is_not_the_issuer(self) -> None:
        """A re-keyed CA of the intermediate's name and issuer did not issue the end entity."""
        ca = TestCA.create("Rekeyed")
        issued = ca.issue_smime("hana@example.com", common_name="Hana")
        key = ec.generate_private_key(ec.SECP256R1())
        rekeyed = (
            x509.CertificateBuilder()
            .subject_name(issued.intermediates[0].subject)
            .issuer_name(ca.root.subject)
            .public_key(key.public_key())
            .serial_number(1234567)
            .not_valid_before(dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
            .not_valid_after(dt.datetime(2034, 1, 1, tzinfo=dt.UTC))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(ca.root_key, hashes.SHA256())
        )
        for certificates in (
            [rekeyed, *issued.certificates()],
            [*issued.certificates()[::-1], rekeyed],
        ):
            chain = load_certificates(to_pem_blocks(certificates))
            assert chain.end_entity == issued.end_entity
            assert chain.intermediates == (issued.intermediates[0], rekeyed)
            assert chain.roots == (issued.root,)
            chain.verify()


class TestVerify:
    """verify() checks every link present and names a broken one by common names."""

    def test_valid_chains(self, issued: IssuedChain, long_chain: IssuedChain) -> None:
        """Intact chains, an end entity alone and a CA bundle all verify."""
        CertificateChain.from_certificates(issued.certificates()).verify()
        CertificateChain.from_certificates(long_chain.certificates()).verify()
        CertificateChain.from_certificates([issued.end_entity]).verify()
        CertificateChain.from_certificates(issued.certificates()[1:]).verify()

    def test_bad_signature_names_the_link(self, issued: IssuedChain) -> None:
        """A tampered end-entity signature is reported as the link Alice <- the intermediate."""
        chain = CertificateChain.from_certificates(
            [_tampered(issued.end_entity), *issued.certificates()[1:]]
        )
        assert _cn(chain.end_entity) == "Alice"
        with pytest.raises(ChainError, match="'Alice' <- 'smime_collect Test Email CA 1'"):
            chain.verify()

    def test_bad_root_self_signature(self, issued: IssuedChain) -> None:
        """A root whose self-signature fails to verify is named."""
        legacy = TestCA.create("Broken Root", key_type="rsa", root_hash="sha1")
        chain = CertificateChain(None, (), (_tampered(legacy.root),))
        with pytest.raises(ChainError, match="root 'Broken Root Root CA' is not validly"):
            chain.verify()

    def test_bad_root_is_checked_even_when_cached(self) -> None:
        """An equal certificate object loaded earlier (and cached) does not skip the check."""
        bad = _tampered(TestCA.create("Cached Root", key_type="rsa", root_hash="sha1").root)
        CertificateChain.from_certificates([bad])  # remembers the (CA) certificate
        again = x509.load_der_x509_certificate(bad.public_bytes(Encoding.DER))
        with pytest.raises(ChainError, match="root 'Cached Root Root CA' is not validly"):
            CertificateChain(None, (), (again,)).verify()

    def test_duplicates_in_a_hand_built_chain(self, issued: IssuedChain) -> None:
        """A chain built by hand with a certificate twice still verifies."""
        CertificateChain(issued.end_entity, issued.intermediates * 2, (issued.root,)).verify()

    def test_uncheckable_root_signature(self) -> None:
        """An MD2 self-signature is a root by name, but verify() says it cannot be checked."""
        with cryptography_vectors.open_vector_file("x509/verisign_md2_root.pem", "rb") as handle:
            chain = load_certificates(handle.read())
        assert len(chain.roots) == 1
        with pytest.raises(ChainError, match="uses an algorithm that cannot be checked"):
            chain.verify()

    def test_missing_intermediate(self, issued: IssuedChain) -> None:
        """An end entity and a root without the intermediate between them is a broken chain."""
        chain = CertificateChain.from_certificates([issued.end_entity, issued.root])
        with pytest.raises(ChainError, match=r"'Alice' is not linked.*'smime_collect Test Email"):
            chain.verify()

    def test_extra_root_that_issued_nothing(
        self,
        issued: IssuedChain,
        cross: tuple[IssuedChain, x509.Certificate, x509.Certificate],
    ) -> None:
        """A bundle that also holds an unrelated root verifies: a root is its own issuer."""
        _, _, legacy_root = cross
        chain = load_certificates(to_pem_blocks([*issued.certificates(), legacy_root]))
        assert chain.roots == (issued.root, legacy_root)
        chain.verify()

    def test_missing_cross_certificate(
        self, cross: tuple[IssuedChain, x509.Certificate, x509.Certificate]
    ) -> None:
        """End entity, intermediate and the SHA-1 root without the cross-certificate verify."""
        issued, _, legacy_root = cross
        chain = load_certificates(to_pem_blocks([*issued.certificates()[:2], legacy_root]))
        assert _roles(chain) == ("Carol", ["USERTrust Email CA 1"], ["AAA Root CA"])
        chain.verify()

    def test_roots_only(self, issued: IssuedChain) -> None:
        """A bundle of unrelated roots verifies; a broken one among them does not."""
        other = TestCA.create("Other Roots")
        CertificateChain.from_certificates([issued.root, other.root]).verify()
        broken = CertificateChain(None, (), (issued.root, _tampered(other.root)))
        with pytest.raises(ChainError, match="root 'Other Roots Root CA' is not validly"):
            broken.verify()

    def test_end_entity_beside_an_unrelated_root(self, issued: IssuedChain) -> None:
        """A root does not vouch for a certificate it did not issue: that one is not linked."""
        stranger = TestCA.create("Stranger").root
        chain = CertificateChain.from_certificates([issued.end_entity, stranger])
        with pytest.raises(ChainError, match="'Alice' is not linked"):
            chain.verify()


class TestChainAPI:
    """len, iteration, repr and the export helpers."""

    def test_len_and_iteration_order(self, long_chain: IssuedChain) -> None:
        """Every certificate once: end entity, intermediates upwards, roots."""
        chain = load_certificates(to_pem_blocks(long_chain.certificates()[::-1]))
        assert len(chain) == 4
        assert tuple(chain) == long_chain.certificates()

    def test_repr_is_short(self, issued: IssuedChain) -> None:
        """The repr names the roles by common name."""
        assert repr(CertificateChain.from_certificates(issued.certificates())) == (
            "<CertificateChain end_entity='Alice' intermediates=['smime_collect Test Email CA 1'] "
            "roots=['smime_collect Test Root CA']>"
        )

    def test_frozen(self, issued: IssuedChain) -> None:
        """A chain is an immutable value."""
        chain = CertificateChain.from_certificates(issued.certificates())
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            chain.end_entity = None  # type: ignore[misc]

    def test_to_pem(self, issued: IssuedChain) -> None:
        """to_pem writes end entity and intermediates, and the roots when asked."""
        chain = CertificateChain.from_certificates(issued.certificates())
        assert chain.to_pem() == pem(issued.certificates()[:2]) == chain.fullchain_pem
        assert chain.to_pem(include_root=True) == pem(issued.certificates())
        assert chain.chain_pem == pem(issued.intermediates)
        assert CertificateChain(None, issued.intermediates).to_pem() == pem(issued.intermediates)

    def test_to_pkcs7_round_trip(self, issued: IssuedChain) -> None:
        """The PKCS#7 export loads back into the same chain."""
        chain = CertificateChain.from_certificates(issued.certificates())
        assert load_certificates(chain.to_pkcs7()) == chain
        assert len(pkcs7.load_der_pkcs7_certificates(chain.to_pkcs7(include_root=False))) == 2

    def test_fingerprint_and_email(self, issued: IssuedChain) -> None:
        """The end entity's SHA-256 fingerprint and e-mail addresses, or nothing for a bundle."""
        chain = CertificateChain.from_certificates(issued.certificates())
        assert chain.fingerprint_sha256 == issued.end_entity.fingerprint(hashes.SHA256()).hex()
        assert chain.email_addresses == ("alice@example.com",)
        bundle = CertificateChain(None, issued.intermediates)
        assert bundle.fingerprint_sha256 is None
        assert bundle.email_addresses == ()

    def test_equality_is_by_content(self, issued: IssuedChain) -> None:
        """Two loads of the same data compare equal."""
        data = to_pem_blocks(issued.certificates())
        assert load_certificates(data) == load_certificates(data)


class TestHostileSets:
    """Sets built to blow up the link search stay bounded."""

    def test_many_certificates_with_one_subject(self) -> None:
        """Hundreds of CA certificates sharing a subject, without key identifiers, classify."""
        key = TestCA.create("Crowd").root_key
        name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Crowd")])
        other = TestCA.create("Crowd Signer").root_key
        crowd = [
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
            .not_valid_after(dt.datetime(2034, 1, 1, tzinfo=dt.UTC))
            .sign(other, hashes.SHA256())  # self-issued, not self-signed
            for serial in range(1, 201)
        ]
        chain = CertificateChain.from_certificates(crowd)
        assert chain.roots == ()
        assert len(chain) == 200
        with pytest.raises(ChainError):
            chain.verify()

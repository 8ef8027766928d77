"""Tests for the certificate layer: the test PKI, the format serialisers and load_certificates."""

from __future__ import annotations

import datetime as dt
import itertools
import warnings

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID

from smime_collect.testing._formats import (
    to_cmmf_der,
    to_netscape_sequence_der,
    to_pem_blocks,
    to_pkcs7_der,
)
from smime_collect.testing._pki import TestCA


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

    def test_unsorted_pkcs7_makes_cryptography_warn(self) -> None:
        """Input-order SETs are not DER: cryptography warns (which load_certificates must hide)."""
        certs = list(TestCA.create().issue_smime("a@example.com").certificates())
        data = to_pkcs7_der(certs, sorted=False)
        with pytest.warns(UserWarning, match="could not be parsed as DER"):
            assert len(pkcs7.load_der_pkcs7_certificates(data)) == 3
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

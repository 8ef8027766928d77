"""Tests for load_certificates on bad, hostile and odd input: errors, ZIP caps, lenient data."""

from __future__ import annotations

import base64
import datetime as dt
import io
import re
import warnings
import zipfile
from collections.abc import Sequence

import cryptography_vectors
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID

import smime_collect._certs._load
from smime_collect import CertificateChain, CertificateFormatError, ChainError, load_certificates
from smime_collect._certs import email_addresses, rfc4514, serial_number
from smime_collect._certs._der import read_single
from smime_collect._certs._names import common_name, issuer_common_name
from smime_collect.testing._formats import (
    der_tlv,
    to_base64,
    to_pem,
    to_pem_blocks,
    to_pkcs7_der,
    to_zip,
)
from smime_collect.testing._pki import IssuedChain, TestCA


def _der(certs: Sequence[x509.Certificate]) -> list[bytes]:
    return [c.public_bytes(Encoding.DER) for c in certs]


def _vector(path: str) -> bytes:
    with cryptography_vectors.open_vector_file(path, "rb") as handle:
        data: bytes = handle.read()
    return data


def _assert_classified(chain: CertificateChain, issued: IssuedChain) -> None:
    assert chain.end_entity == issued.end_entity
    assert chain.intermediates == issued.intermediates
    assert chain.roots == (issued.root,)


def _zip_with_sizes(members: dict[str, bytes], declared: int) -> bytes:
    """A ZIP whose headers declare ``declared`` unpacked bytes per member, whatever the truth."""
    data = bytearray(to_zip(members))
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (found := data.find(signature, start)) >= 0:
            data[found + offset : found + offset + 4] = declared.to_bytes(4, "little")
            start = found + 4
    return bytes(data)


def _cmmf(response: bytes, ca_pubs: bytes = b"") -> bytes:
    """CertRepContent around one hand-made CertResponse body."""
    return der_tlv(0x30, ca_pubs + der_tlv(0x30, der_tlv(0x30, response)))


# Every test runs with the certificate shortcuts on, then off (conftest's ``shortcuts``).
pytestmark = pytest.mark.usefixtures("shortcuts")


_STATUS_GRANTED = der_tlv(0x02, b"\x00") + der_tlv(0x30, der_tlv(0x02, b"\x00"))


class TestLoadErrors:
    """Anything that is not certificate data is a CertificateFormatError saying what it saw."""

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            pytest.param(b"", "the input is empty", id="empty-bytes"),
            pytest.param("", "the input is empty", id="empty-str"),
            pytest.param(b" \r\n\t", "the input is empty", id="whitespace"),
            pytest.param(b"hello, world!", "neither PEM, base64 nor DER", id="prose"),
            pytest.param(
                b"\x00\x01\x02\xff",
                "a DER tag 0x00 of 3 bytes, not a certificate",
                id="binary-noise",
            ),
            pytest.param(
                base64.b64encode(b"\x30\x50" + b"\x01" * 35),
                "base64 decoded to 37 bytes that are not DER",
                id="base64-of-junk",
            ),
            pytest.param(b"0\n", "not DER", id="status-zero-only"),
            pytest.param(b"\x30\x03\x02\x01\x00", "SEQUENCE of 1 elements", id="tiny-sequence"),
            pytest.param(b"\x04\x02ab", "a DER OCTET STRING of 4 bytes", id="not-a-sequence"),
            pytest.param(
                b"-----BEGIN CERTIFICATE-----\nMIIB\n",
                "PEM block 1 (CERTIFICATE) of input is truncated",
                id="pem-no-end",
            ),
            pytest.param(
                b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
                "not valid base64",
                id="pem-bad-base64",
            ),
            pytest.param(
                b"-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n",
                "PEM block 1 (CERTIFICATE) of input is empty",
                id="pem-empty-block",
            ),
            pytest.param(
                to_pem(b"\x30\x03\x02\x01\x00", "RSA PRIVATE KEY"),
                "only PEM blocks labelled RSA PRIVATE KEY",
                id="pem-key-only",
            ),
            pytest.param(
                to_pkcs7_der([]), "PKCS7 SignedData holds no certificates", id="pkcs7-empty"
            ),
            pytest.param(
                der_tlv(0x30, bytes.fromhex("06096086480186f8420205")),
                "Netscape Certificate Sequence holds no certificates",
                id="netscape-empty",
            ),
            pytest.param(
                der_tlv(0x30, bytes.fromhex("06096086480186f8420205") + der_tlv(0xA1, b"")),
                "Netscape Certificate Sequence has a [1] constructed where [0] was expected",
                id="netscape-wrong-tag",
            ),
            pytest.param(
                der_tlv(
                    0x30,
                    bytes.fromhex("06096086480186f8420205") + der_tlv(0xA0, der_tlv(0x04, b"")),
                ),
                "[0] does not hold one SEQUENCE OF Certificate",
                id="netscape-not-a-sequence-of",
            ),
            pytest.param(
                der_tlv(0x30, der_tlv(0x30, b"") + der_tlv(0x04, b"")),
                "CMMF CertRepContent has no response SEQUENCE",
                id="cmmf-no-response",
            ),
            pytest.param(
                der_tlv(0x30, der_tlv(0xA1, b"") + der_tlv(0x30, b"")),
                "CMMF CertRepContent caPubs holds no certificates",
                id="cmmf-empty-capubs",
            ),
            pytest.param(
                _cmmf(_STATUS_GRANTED + der_tlv(0x30, der_tlv(0xA1, der_tlv(0x30, b"")))),
                "encryptedCert [1]",
                id="cmmf-encrypted-cert",
            ),
            pytest.param(
                _cmmf(der_tlv(0x02, b"\x00") + der_tlv(0x30, der_tlv(0x02, b"\x02"))),
                "CMMF CertRepContent holds no certificates",
                id="cmmf-rejection",
            ),
            pytest.param(
                _cmmf(der_tlv(0x02, b"\x00")), "CertResponse 1 is malformed", id="cmmf-malformed"
            ),
            pytest.param(
                _cmmf(_STATUS_GRANTED + der_tlv(0x30, der_tlv(0x80, b""))),
                "CertResponse 1 has no certificate [0]",
                id="cmmf-no-certificate",
            ),
            pytest.param(
                _vector("pkcs7/enveloped.pem"),
                "a PKCS7 envelopedData, not the certs-only SignedData",
                id="pkcs7-enveloped",
            ),
        ],
    )
    def test_nonsense(self, data: bytes | str, message: str) -> None:
        """The message names what was seen."""
        with pytest.raises(CertificateFormatError, match=_escaped(message)):
            load_certificates(data)

    def test_truncated_second_block_is_named(self, issued: IssuedChain) -> None:
        """A cut in the second of three blocks names block 2."""
        text = to_pem_blocks(issued.certificates())
        second_end = text.index(b"-----END", text.index(b"-----BEGIN", 10))
        broken = text[:second_end] + text[text.index(b"-----BEGIN", second_end) :]
        with pytest.raises(CertificateFormatError, match=r"PEM block 2 \(CERTIFICATE\)"):
            load_certificates(broken)

    def test_truncated_der_certificate(self, issued: IssuedChain) -> None:
        """Half a certificate is reported as not DER, with the byte counts."""
        der = issued.end_entity.public_bytes(Encoding.DER)
        with pytest.raises(CertificateFormatError, match=r"not DER.*declares"):
            load_certificates(der[: len(der) // 2])

    def test_certificate_shaped_garbage(self, issued: IssuedChain) -> None:
        """A well-formed TLV that cryptography cannot load as a certificate is named so."""
        der = bytearray(issued.end_entity.public_bytes(Encoding.DER))
        version = der.index(b"\xa0\x03\x02\x01\x02")
        der[version + 4] = 0x09  # version v10: not an X.509 version
        with pytest.raises(CertificateFormatError, match="cryptography cannot load"):
            load_certificates(bytes(der))

    def test_unreadable_pkcs7(self, issued: IssuedChain) -> None:
        """A broken SignedData body is reported as unreadable PKCS7."""
        data = der_tlv(0x30, bytes.fromhex("06092a864886f70d010702") + der_tlv(0xA0, b"\x05\x00"))
        with pytest.raises(CertificateFormatError, match="unreadable PKCS7"):
            load_certificates(data)

    def test_wrong_type(self) -> None:
        """A non-bytes, non-str argument is a TypeError naming the type."""
        with pytest.raises(TypeError, match="not int"):
            load_certificates(42)  # type: ignore[arg-type]

    def test_too_many_pem_blocks(self) -> None:
        """More PEM blocks than the cap stops the scan."""
        block = b"-----BEGIN X-----\nAAAA\n-----END X-----\n"
        with pytest.raises(CertificateFormatError, match="more than 1024 PEM blocks"):
            load_certificates(block * 1025)

    def test_too_many_certificates(
        self, issued: IssuedChain, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The certificate cap applies across containers."""
        monkeypatch.setattr(smime_collect._certs._load, "MAX_CERTIFICATES", 2)
        with pytest.raises(CertificateFormatError, match="more than 2 certificates"):
            load_certificates(to_pem_blocks(issued.certificates()))
        with pytest.raises(CertificateFormatError, match="more than 2 certificates"):
            load_certificates(to_pkcs7_der(issued.certificates()))

    def test_input_size_cap(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Oversized input is refused before any parsing."""
        monkeypatch.setattr(smime_collect._certs._load, "MAX_INPUT_BYTES", 10)
        with pytest.raises(CertificateFormatError, match="more than the 10 accepted"):
            load_certificates(b"x" * 11)

    @pytest.mark.parametrize(
        "data",
        [
            pytest.param(b"-" * 2_000_000, id="dashes"),
            pytest.param(b"-----BEGIN " * 200_000, id="begin-lines"),
            pytest.param(b" " * 2_000_000 + b"BEGIN", id="spaces-then-begin"),
            pytest.param(b"-----BEGIN X-----\n" + b"-----END" * 200_000, id="end-markers"),
            pytest.param(b"-----BEGIN X-----\nAAAA\n" * 40_000, id="unterminated-blocks"),
        ],
    )
    def test_pathological_markers_are_linear(self, data: bytes) -> None:
        """Megabytes of marker-like noise are refused in one pass (a backtracking regex hung)."""
        with pytest.raises(CertificateFormatError):
            load_certificates(data)

    def test_deep_nesting_is_refused(self) -> None:
        """A Netscape sequence nested far too deep stops at the depth limit."""
        inner = b"\x05\x00"
        for _ in range(100):
            inner = der_tlv(0x30, inner)
        data = der_tlv(0x30, bytes.fromhex("06096086480186f8420205") + der_tlv(0xA0, inner))
        with pytest.raises(CertificateFormatError):
            load_certificates(data)

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            pytest.param(b"PK\x03\x04broken", "an unreadable ZIP archive", id="zip-header-only"),
            pytest.param(
                b"%PDF-1.4", "neither PEM, base64 nor DER certificate data", id="another-file"
            ),
            pytest.param(b"hello world", "not valid base64 either", id="prose-without-comma"),
            pytest.param(
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "PEM block 1 (CERTIFICATE) of input: a DER tag 0x00 of 2 bytes",
                id="pem-of-zeros",
            ),
            pytest.param(
                b"\x30\x03\x02\x01\x01", "a SEQUENCE of 1 elements (INTEGER)", id="sequence-of-one"
            ),
        ],
    )
    def test_what_other_files_look_like(self, data: bytes, message: str) -> None:
        """Other files, a bare ZIP signature and a PEM block of zeros are named as what they are."""
        with pytest.raises(CertificateFormatError, match=_escaped(message)):
            load_certificates(data)


def _escaped(message: str) -> str:
    return re.escape(message)


class TestLoadZip:
    """ZIP archives: members read, caps enforced before and during unpacking."""

    def test_members_without_certificates_are_skipped(self, issued: IssuedChain) -> None:
        """Text files, empty files, directories and nested ZIPs are skipped."""
        data = to_zip(
            {
                "readme.txt": b"Thank you for your order",
                "empty.txt": b"",
                "nested.zip": to_zip({"a.pem": to_pem_blocks(issued.certificates())}),
                "dir/": b"",
                "chain.p7b": to_pkcs7_der(issued.certificates()),
            }
        )
        _assert_classified(load_certificates(data), issued)

    def test_zip_without_certificates(self) -> None:
        """An archive with nothing loadable says so."""
        with pytest.raises(CertificateFormatError, match="a ZIP of 1 entries, none holding"):
            load_certificates(to_zip({"readme.txt": b"hello"}))

    def test_too_many_entries(self) -> None:
        """More entries than the cap is refused without unpacking."""
        data = to_zip({f"f{i}.txt": b"x" for i in range(257)})
        with pytest.raises(CertificateFormatError, match="257 entries, more than the 256"):
            load_certificates(data)

    def test_entry_cap_is_a_keyword(self, issued: IssuedChain) -> None:
        """max_zip_entries lowers the cap."""
        data = to_zip({f"c{i}.crt": d for i, d in enumerate(_der(issued.certificates()))})
        with pytest.raises(CertificateFormatError, match="3 entries, more than the 2"):
            load_certificates(data, max_zip_entries=2)

    def test_declared_size_cap(self) -> None:
        """An archive declaring more than 16 MiB unpacked is refused before inflating."""
        data = to_zip({"bomb.bin": bytes(16 * 1024 * 1024 + 1)})
        assert len(data) < 100_000
        with pytest.raises(CertificateFormatError, match="unpacks to 16777217 bytes"):
            load_certificates(data)

    def test_size_cap_is_a_keyword(self, issued: IssuedChain) -> None:
        """max_zip_size lowers the cap."""
        data = to_zip({"chain.pem": to_pem_blocks(issued.certificates())})
        with pytest.raises(CertificateFormatError, match="more than the 100 accepted"):
            load_certificates(data, max_zip_size=100)

    def test_lying_headers_are_caught(self) -> None:
        """A member that inflates past what its headers declare is refused."""
        data = _zip_with_sizes({"bomb.bin": bytes(1_000_000)}, declared=10)
        with pytest.raises(CertificateFormatError, match="ZIP"):
            load_certificates(data, max_zip_size=1000)

    @pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA], ids=["bzip2", "lzma"])
    def test_other_compression_methods_are_refused(self, issued: IssuedChain, method: int) -> None:
        """Only stored and deflate members are read; nothing else is even opened."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=method) as archive:
            archive.writestr("chain.pem", to_pem_blocks(issued.certificates()))
        with pytest.raises(CertificateFormatError, match=f"compression method {method}"):
            load_certificates(buffer.getvalue())

    def test_stored_members(self, issued: IssuedChain) -> None:
        """Uncompressed members are read."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr("chain.pem", to_pem_blocks(issued.certificates()))
        _assert_classified(load_certificates(buffer.getvalue()), issued)

    def test_corrupt_archive(self) -> None:
        """A truncated archive is an unreadable ZIP."""
        with pytest.raises(CertificateFormatError, match=r"unreadable ZIP|none holding"):
            load_certificates(to_zip({"a.txt": b"hello" * 100})[:60])

    def test_base64_zip(self, issued: IssuedChain) -> None:
        """A base64-encoded archive is unpacked too."""
        data = to_base64(to_zip({"chain.pem": to_pem_blocks(issued.certificates())}))
        _assert_classified(load_certificates(data), issued)


class TestLenientCryptography:
    """Data cryptography accepts with a warning, or parses only later, does not break us."""

    def test_negative_serial_loads_without_warning(self, issued: IssuedChain) -> None:
        """A negative serial (an RFC 5280 violation cryptography deprecates) loads quietly."""
        der = bytearray(issued.end_entity.public_bytes(Encoding.DER))
        serial = der.index(b"\xa0\x03\x02\x01\x02") + 5  # the INTEGER after [0] version
        der[serial + 2] |= 0x80
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            chain = load_certificates(bytes(der))
        assert caught == []
        assert chain.end_entity is not None
        with pytest.warns(CryptographyDeprecationWarning):  # the caller's own access warns
            assert chain.end_entity.serial_number < 0

    def test_negative_serial_is_read_without_warning(self, issued: IssuedChain) -> None:
        """serial_number reads a negative serial from the DER, warning about nothing."""
        der = bytearray(issued.end_entity.public_bytes(Encoding.DER))
        serial = der.index(b"\xa0\x03\x02\x01\x02") + 5
        der[serial + 2] |= 0x80
        chain = load_certificates(bytes(der))
        assert chain.end_entity is not None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            number = serial_number(chain.end_entity)
        assert caught == []
        with pytest.warns(CryptographyDeprecationWarning):
            assert number == chain.end_entity.serial_number < 0
        assert serial_number(issued.root) == issued.root.serial_number > 0

    def test_malformed_subject_does_not_break_repr(self, issued: IssuedChain) -> None:
        """Names are parsed lazily by cryptography: repr and email_addresses survive bad ones."""
        der = issued.end_entity.public_bytes(Encoding.DER)
        broken = der.replace(b"\x0c\x05Alice", b"\x0d\x05Alice", 1)  # no such string type
        chain = load_certificates(broken)
        assert "<malformed subject, SHA-256" in repr(chain)
        assert chain.email_addresses == ("alice@example.com",)

    def test_malformed_subject_is_a_typed_chain_error(self, issued: IssuedChain) -> None:
        """verify() on a chain whose end entity has a broken name raises ChainError, no KeyError.

        cryptography before 50 raised a bare KeyError for an unknown name value type
        (pyca/cryptography#15076); names here never go through its Name objects.
        """
        der = issued.end_entity.public_bytes(Encoding.DER)
        broken = der.replace(b"\x0c\x05Alice", b"\x0d\x05Alice", 1)
        chain = load_certificates(to_pem(broken) + to_pem_blocks(issued.certificates()[1:]))
        assert chain.end_entity is not None
        assert rfc4514(chain.end_entity, "subject") == "<malformed subject>"
        assert issuer_common_name(chain.end_entity) == "smime_collect Test Email CA 1"
        with pytest.raises(
            ChainError, match=r"broken link '<malformed subject, SHA-256 \w+\.\.\.>'"
        ):
            chain.verify()


def _odd_names_certificate() -> x509.Certificate:
    """A certificate whose names make cryptography warn: a 3-letter country, a 70-character CN."""
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.warns(UserWarning, match="Attribute's length"):
        country = x509.NameAttribute(NameOID.COUNTRY_NAME, "GBR", _validate=False)
    with pytest.warns(UserWarning, match="Attribute's length"):
        long_cn = x509.NameAttribute(NameOID.COMMON_NAME, "x" * 70, _validate=False)
    subject = x509.Name(
        [country, long_cn, x509.NameAttribute(NameOID.EMAIL_ADDRESS, "o@dd.example")]
    )
    issuer = TestCA.create().intermediates[0].subject
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(9)
        .not_valid_before(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        .add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name("san@dd.example")]), critical=False
        )
        .sign(TestCA.create().issuing_key, hashes.SHA256())
    )


class TestNamesNeverWarn:
    """Names for messages and reports are read from the DER: no warning, no filter swapped."""

    def test_odd_names_without_catch_warnings(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Names cryptography warns about are rendered with warnings as errors, no filter swap.

        ``warnings.catch_warnings`` swaps process-wide state (not thread-safe before 3.14), and
        these run from worker threads, so they must not enter it.
        """
        certificate = _odd_names_certificate()
        chain = CertificateChain(certificate)

        def forbidden(*_: object, **__: object) -> None:
            raise AssertionError("catch_warnings entered while rendering names")

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            monkeypatch.setattr(warnings, "catch_warnings", forbidden)
            assert common_name(certificate) == "x" * 70
            assert rfc4514(certificate, "subject") == (
                f"1.2.840.113549.1.9.1=o@dd.example,CN={'x' * 70},C=GBR"
            )
            assert email_addresses(certificate) == ("san@dd.example", "o@dd.example")
            assert (
                repr(chain)
                == f"<CertificateChain end_entity={'x' * 70!r} intermediates=[] roots=[]>"
            )
            chain.verify()

    def test_same_text_as_cryptography(self) -> None:
        """The RFC 4514 text is what cryptography writes for the same name."""
        certificate = _odd_names_certificate()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = certificate.subject.rfc4514_string()
        assert rfc4514(certificate, "subject") == expected


_CN = bytes.fromhex("0603550403")  # the OID 2.5.4.3, encoded


def _atv(oid: bytes, tag: int, value: bytes) -> bytes:
    return der_tlv(0x30, oid + der_tlv(tag, value))


def _with_subject(issued: IssuedChain, subject: bytes) -> x509.Certificate:
    """The end entity with its subject Name replaced by these DER bytes (signature left stale)."""
    fields = read_single(issued.end_entity.tbs_certificate_bytes).children()
    rebuilt = [f.encoded for f in fields]
    rebuilt[5] = subject  # [0] version, serial, signature, issuer, validity, subject
    tbs = der_tlv(0x30, b"".join(rebuilt))
    _, algorithm, signature = read_single(issued.end_entity.public_bytes(Encoding.DER)).children()
    return x509.load_der_x509_certificate(
        der_tlv(0x30, tbs + algorithm.encoded + signature.encoded)
    )


BROKEN_SUBJECTS = {
    "unknown string type": der_tlv(0x30, der_tlv(0x31, _atv(_CN, 0x0D, b"Alice"))),
    "invalid utf-8": der_tlv(0x30, der_tlv(0x31, _atv(_CN, 0x0C, b"Al\xffce"))),
    "BIT STRING common name": der_tlv(0x30, der_tlv(0x31, _atv(_CN, 0x03, b"\x00Alice"))),
    "empty RDN": der_tlv(0x30, der_tlv(0x31, b"")),
    "attribute twice in an RDN": der_tlv(
        0x30, der_tlv(0x31, _atv(_CN, 0x0C, b"Alice") + _atv(_CN, 0x0C, b"Alice"))
    ),
}


class TestMalformedNames:
    """A subject cryptography cannot build a Name from still gives reports, reprs and messages."""

    @pytest.mark.parametrize("subject", BROKEN_SUBJECTS.values(), ids=BROKEN_SUBJECTS.keys())
    def test_placeholders(self, issued: IssuedChain, subject: bytes) -> None:
        """Placeholders for the subject; the issuer and the SAN addresses are still read."""
        certificate = _with_subject(issued, subject)
        assert rfc4514(certificate, "subject") == "<malformed subject>"
        assert common_name(certificate).startswith("<malformed subject, SHA-256 ")
        assert issuer_common_name(certificate) == "smime_collect Test Email CA 1"
        assert email_addresses(certificate) == ("alice@example.com",)
        chain = load_certificates(to_pem(certificate.public_bytes(Encoding.DER)))
        assert repr(chain).startswith("<CertificateChain end_entity='<malformed subject")

    def test_unreadable_issuer(self, issued: IssuedChain) -> None:
        """An issuer that cannot be read is "its issuer" in messages."""
        fields = read_single(issued.end_entity.tbs_certificate_bytes).children()
        rebuilt = [f.encoded for f in fields]
        rebuilt[3] = BROKEN_SUBJECTS["empty RDN"]
        tbs = der_tlv(0x30, b"".join(rebuilt))
        outer = read_single(issued.end_entity.public_bytes(Encoding.DER)).children()
        certificate = x509.load_der_x509_certificate(
            der_tlv(0x30, tbs + outer[1].encoded + outer[2].encoded)
        )
        assert issuer_common_name(certificate) == "its issuer"
        assert rfc4514(certificate, "issuer") == "<malformed issuer>"

    @pytest.mark.parametrize(
        "san",
        [b"\x30\x03\x81\x01", der_tlv(0x30, der_tlv(0x81, "é@example.com".encode()))],
        ids=["truncated", "not-ascii"],
    )
    def test_broken_subject_alternative_name(self, issued: IssuedChain, san: bytes) -> None:
        """A subjectAltName that does not parse gives no address; the subject's still count."""
        certificate = _certificate_with(
            issued, x509.UnrecognizedExtension(x509.OID_SUBJECT_ALTERNATIVE_NAME, san)
        )
        assert email_addresses(certificate) == ("o@dd.example",)


def _certificate_with(issued: IssuedChain, extension: x509.ExtensionType) -> x509.Certificate:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Extension"),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "o@dd.example"),
        ]
    )
    key = ec.generate_private_key(ec.SECP256R1())
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issued.intermediates[0].subject)
        .public_key(key.public_key())
        .serial_number(10)
        .not_valid_before(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        .add_extension(extension, critical=False)
        .sign(TestCA.create().issuing_key, hashes.SHA256())
    )

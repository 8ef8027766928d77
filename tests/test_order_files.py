"""The files `collect` writes survive what a certificate or an earlier run may hold."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID, NameOID

from smime_collect import CollectResult, Status, load_certificates
from smime_collect._cli._order_files import certificate_facts, read_meta, write_order_files
from smime_collect.testing import TestCA
from smime_collect.testing._formats import to_pem_blocks


@pytest.fixture(scope="module")
def malformed_san() -> x509.Certificate:
    """An end entity whose subjectAltName does not parse (cryptography reads it lazily)."""
    ca = TestCA.create()
    key = ec.generate_private_key(ec.SECP256R1())
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bad SAN")]))
        .issuer_name(ca.intermediates[0].subject)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x03\x81\x01"),
            critical=False,
        )
        .sign(ca.issuing_key, hashes.SHA256())
    )


def test_facts_of_a_certificate_with_a_malformed_extension(
    malformed_san: x509.Certificate,
) -> None:
    """meta.json facts are reported without the addresses the broken SAN would hold."""
    # Only the type: cryptography's message names the extension from 44 on, not before.
    with pytest.raises(ValueError):  # noqa: PT011
        _ = malformed_san.extensions  # what a naive report would trip over
    facts = certificate_facts(malformed_san)
    assert facts["email_addresses"] == []
    assert facts["subject"] == "CN=Bad SAN"
    assert facts["serial"] == "7"


def test_writing_an_order_with_a_malformed_extension(
    malformed_san: x509.Certificate, tmp_path: Path
) -> None:
    """All files, meta.json last, are written for such an order."""
    ca = TestCA.create()
    payload = to_pem_blocks([malformed_san, *ca.intermediates, ca.root])
    chain = load_certificates(payload)
    assert chain.end_entity == malformed_san
    result = CollectResult(5, Status.ATTACHED, chain=chain, payload=payload)
    directory = write_order_files(tmp_path, result).directory
    meta = read_meta(directory)
    assert meta is not None
    assert meta["subject"] == "CN=Bad SAN"
    assert (directory / "cert.pem").read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")


def test_negative_serial_is_written_without_a_warning(tmp_path: Path) -> None:
    """A negative serial (which old CAs issued) goes to meta.json as read, with no warning."""
    issued = TestCA.create().issue_smime("negative@example.com")
    der = bytearray(issued.end_entity.public_bytes(Encoding.DER))
    serial = der.index(b"\xa0\x03\x02\x01\x02") + 5  # after the version: the serial's TLV
    der[serial + 2] |= 0x80  # its first content byte: now a negative number
    payload = bytes(der)  # loaded by load_certificates, which keeps cryptography's warning in
    result = CollectResult(6, Status.ATTACHED, chain=load_certificates(payload), payload=payload)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as the suite runs; here explicitly
        directory = write_order_files(tmp_path, result).directory
    meta = read_meta(directory)
    assert meta is not None
    assert meta["serial"].startswith("-")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"order_number": 5}', {"order_number": 5}),
        (b"\xff\xfe not utf-8", {}),
        (b"{truncated", {}),
        (b"[1, 2]", {}),
    ],
    ids=["valid", "not-utf8", "not-json", "not-an-object"],
)
def test_read_meta_of_a_damaged_file(tmp_path: Path, content: bytes, expected: object) -> None:
    """A meta.json that exists marks the order as collected, whatever it holds."""
    (tmp_path / "meta.json").write_bytes(content)
    assert read_meta(tmp_path) == expected


def test_read_meta_without_a_file(tmp_path: Path) -> None:
    """No meta.json: not collected yet."""
    assert read_meta(tmp_path) is None

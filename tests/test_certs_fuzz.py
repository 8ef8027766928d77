"""Property tests: whatever the bytes, load_certificates gives a chain or CertificateFormatError."""

from __future__ import annotations

import contextlib
import functools

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from smime_collect import CertificateChain, CertificateFormatError, ChainError, load_certificates
from smime_collect._certs import _fast, identify_payload
from smime_collect.testing._formats import (
    der_tlv,
    to_base64,
    to_cmmf_der,
    to_netscape_sequence_der,
    to_pem,
    to_pem_blocks,
    to_pkcs7_der,
    to_zip,
)
from smime_collect.testing._pki import TestCA

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# Every test runs with the certificate shortcuts on, then off (conftest's ``shortcuts``).
pytestmark = pytest.mark.usefixtures("shortcuts")


@functools.cache
def _seeds() -> tuple[bytes, ...]:
    """One valid body per container, to mutate."""
    certs = TestCA.create("Fuzz", intermediates=2).issue_smime("fuzz@example.com").certificates()
    return (
        to_pem_blocks(certs),
        to_pem_blocks(certs, sloppy_markers=True, crlf=True),
        to_pkcs7_der(certs),
        to_pkcs7_der(certs, sorted=False),
        to_base64(to_pkcs7_der(certs)),
        to_netscape_sequence_der(certs),
        to_pem(to_netscape_sequence_der(certs)),
        to_cmmf_der(certs[1:], certs[0], tagging="explicit"),
        to_cmmf_der(certs[1:], certs[0], tagging="implicit"),
        to_zip({"chain.pem": to_pem_blocks(certs), "chain.p7b": to_pkcs7_der(certs)}),
        certs[0].public_bytes(Encoding.DER),
    )


def _check(data: bytes | str) -> None:
    """The only acceptable outcomes: a consistent chain, or CertificateFormatError."""
    assert identify_payload(data).extension
    try:
        chain = load_certificates(data)
    except CertificateFormatError as exc:
        message = str(exc)
        assert message, "an error must say what it saw"
        return
    assert isinstance(chain, CertificateChain)
    certificates = list(chain)
    assert len(certificates) == len(chain) == len(set(certificates)) > 0
    assert repr(chain).startswith("<CertificateChain")
    chain.to_pem(include_root=True)
    assert isinstance(chain.email_addresses, tuple)
    assert chain.fingerprint_sha256 is None or len(chain.fingerprint_sha256) == 64
    with contextlib.suppress(ChainError):  # damaged signatures are expected to fail here
        chain.verify()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid body with a bit flipped, a cut, an insertion or an absurd length."""
    seed = bytearray(draw(st.sampled_from(_seeds())))
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "huge-length", "overwrite"]))
    position = draw(st.integers(0, len(seed) - 1))
    if kind == "flip":
        seed[position] ^= 1 << draw(st.integers(0, 7))
    elif kind == "truncate":
        del seed[position:]
    elif kind == "insert":
        seed[position:position] = draw(st.binary(min_size=1, max_size=8))
    elif kind == "huge-length":
        seed[position : position + 1] = b"\x84\xff\xff\xff\xff"
    else:
        chunk = draw(st.binary(min_size=1, max_size=16))
        seed[position : position + len(chunk)] = chunk
    return bytes(seed)


def _deep(levels: int, *, definite: bool) -> bytes:
    """SEQUENCEs nested ``levels`` deep: definite lengths, or BER indefinite ones."""
    if not definite:
        return b"\x30\x80" * levels + b"\x00\x00" * levels
    data = b"\x05\x00"
    for _ in range(levels):
        data = der_tlv(0x30, data)
    return data


class TestNeverCrashes:
    """No input makes load_certificates raise anything but CertificateFormatError."""

    @FUZZ
    @given(st.binary(max_size=4096))
    @example(b"0")
    @example(b"0\n")
    @example(b"\x30\x80")
    @example(b"\x30\x84\xff\xff\xff\xff")
    @example(b"PK\x03\x04")
    @example(b"PK\x05\x06" + bytes(18))
    @example(b"-----BEGIN CERTIFICATE-----")
    @example(b"-----BEGIN -----\n-----END -----")
    def test_arbitrary_bytes(self, data: bytes) -> None:
        """Random bytes."""
        _check(data)

    @FUZZ
    @given(st.text(max_size=2048))
    def test_arbitrary_text(self, data: str) -> None:
        """Random text, surrogates included."""
        _check(data)

    @FUZZ
    @given(mutated())
    def test_mutated_containers(self, data: bytes) -> None:
        """Every container, damaged in every way."""
        _check(data)

    @FUZZ
    @given(mutated())
    def test_mutated_containers_as_base64(self, data: bytes) -> None:
        """The same damage behind base64 and PEM armour."""
        _check(to_base64(data))
        _check(to_pem(data, "PKCS7"))

    @settings(max_examples=20, deadline=None)
    @given(st.integers(1, 5000), st.booleans())
    def test_deep_nesting(self, levels: int, definite: bool) -> None:
        """Thousands of nested SEQUENCEs neither recurse without bound nor hang."""
        body = _deep(levels, definite=definite)
        _check(body)
        netscape = der_tlv(0x30, bytes.fromhex("06096086480186f8420205") + der_tlv(0xA0, body))
        _check(netscape)
        _check(der_tlv(0x30, der_tlv(0xA1, body) + der_tlv(0x30, body)))


def _outcome(data: bytes) -> object:
    """The chain, or the error message."""
    try:
        return load_certificates(data)
    except CertificateFormatError as exc:
        return str(exc)


class TestShortcutsChangeNothing:
    """Whatever the bytes, the shortcuts give the plain path's chain or error message."""

    @FUZZ
    @given(mutated())
    def test_mutated_containers(self, data: bytes) -> None:
        """Cold, warm and without the shortcuts: the same outcome."""
        _fast.ca_cache.clear()
        cold, warm = _outcome(data), _outcome(data)
        with _fast.disabled():
            plain = _outcome(data)
        assert cold == warm == plain

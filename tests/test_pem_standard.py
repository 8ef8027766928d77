"""Tests for the standard-PEM shortcut of load_certificates: it reads what the scanner reads.

``load_certificates`` cuts plain RFC 7468 ``CERTIFICATE`` blocks with one split and leaves every
other text to the tolerant marker scanner.  Each case here loads the same bytes both ways (every
shortcut off with ``_fast.disabled``) and requires the same chain, or the same error message.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import smime_collect._certs._load
from smime_collect import CertificateChain, CertificateFormatError, load_certificates
from smime_collect._certs import _fast
from smime_collect._certs._fast import load_standard_pem, standard_certificate_bodies
from smime_collect.testing._formats import (
    to_netscape_sequence_der,
    to_pem,
    to_pem_blocks,
    to_pkcs7_der,
)
from smime_collect.testing._pki import IssuedChain, TestCA

Certs = Sequence[x509.Certificate]


@pytest.fixture(scope="module")
def issued() -> IssuedChain:
    """An end entity, one intermediate and a root."""
    return TestCA.create().issue_smime("bob@example.com", common_name="Bob")


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


def _both_ways(data: bytes) -> tuple[object, object]:
    """The outcome (chain, or error message) with the shortcuts and with the scanner only."""

    def outcome() -> object:
        _fast.ca_cache.clear()  # the first load of a text, then a warm one, must agree too
        try:
            first = load_certificates(data)
            assert load_certificates(data) == first
        except CertificateFormatError as exc:
            return str(exc)
        return first

    fast = outcome()
    with _fast.disabled():
        slow = outcome()
    return fast, slow


STANDARD: dict[str, Callable[[Certs], bytes]] = {
    "lf": to_pem_blocks,
    "crlf": lambda c: to_pem_blocks(c, crlf=True),
    "blank lines around": lambda c: b"\n\n" + to_pem_blocks(c).replace(b"-\n-", b"-\n\n-") + b"\n",
    "no final newline": lambda c: to_pem_blocks(c).rstrip(),
    "one block": lambda c: to_pem_blocks(c[:1]),
}


class TestShortcutTakesStandardText:
    """Plain CERTIFICATE blocks are cut by the shortcut, and their bodies are the scanner's."""

    @pytest.mark.parametrize("render", STANDARD.values(), ids=STANDARD.keys())
    def test_bodies(self, issued: IssuedChain, render: Callable[[Certs], bytes]) -> None:
        """Every body decodes to the certificate written there, in order."""
        certificates = issued.certificates()
        bodies = standard_certificate_bodies(render(certificates), 16)
        assert bodies is not None
        decoded = [
            x509.load_der_x509_certificate(base64.b64decode(b"".join(b.split()))) for b in bodies
        ]
        assert decoded == list(certificates[: len(bodies)])

    @pytest.mark.parametrize("render", STANDARD.values(), ids=STANDARD.keys())
    def test_same_chain(self, issued: IssuedChain, render: Callable[[Certs], bytes]) -> None:
        """The shortcut and the scanner classify standard text the same."""
        fast, slow = _both_ways(render(issued.certificates()[::-1]))
        assert isinstance(fast, CertificateChain)
        assert fast == slow

    def test_containers_under_a_certificate_label(self, issued: IssuedChain) -> None:
        """A Netscape sequence or PKCS7 in a CERTIFICATE block (OpenSSL nseq) loads both ways."""
        certificates = issued.certificates()
        data = to_pem(to_netscape_sequence_der(certificates)) + to_pem(
            to_pkcs7_der(certificates[:1])
        )
        fast, slow = _both_ways(data)
        assert isinstance(fast, CertificateChain)
        assert fast == slow
        assert fast.end_entity == issued.end_entity


REFUSED: dict[str, Callable[[bytes, bytes], bytes]] = {
    "sloppy markers": lambda a, b: a.replace(b"-----BEGIN ", b"----- BEGIN ") + b,
    "other label": lambda a, b: a.replace(b"CERTIFICATE", b"X509 CERTIFICATE") + b,
    "text before": lambda a, b: b"Your certificate:\n" + a + b,
    "text between": lambda a, b: a + b"and its issuer\n" + b,
    "text after": lambda a, b: a + b + b"-- \nSectigo\n",
    "END label differs": lambda a, b: a.replace(b"END CERTIFICATE", b"END CERT") + b,
    "BEGIN on the END line": lambda a, b: a.rstrip(b"\n") + b" " + b,
    "BEGIN right after END": lambda a, b: a.rstrip(b"\n") + b,
}


class TestShortcutDeclines:
    """Anything but plain blocks goes to the scanner, which reads it as before."""

    @pytest.mark.parametrize("edit", REFUSED.values(), ids=REFUSED.keys())
    def test_left_to_the_scanner(
        self,
        issued: IssuedChain,
        edit: Callable[[bytes, bytes], bytes],
    ) -> None:
        """The shortcut returns None and the result is the scanner's."""
        first, second = (to_pem(_der(c)) for c in issued.certificates()[:2])
        data = edit(first, second)
        assert standard_certificate_bodies(data, 16) is None
        fast, slow = _both_ways(data)
        assert fast == slow

    def test_more_blocks_than_the_cap(self, issued: IssuedChain) -> None:
        """Past max_blocks the split stops early and the shortcut declines."""
        data = to_pem(_der(issued.root)) * 5
        assert standard_certificate_bodies(data, 5) is not None
        assert standard_certificate_bodies(data, 4) is None


BROKEN: dict[str, bytes] = {
    "bad base64": b"MIIB!!!!\n",
    "empty body": b"\n",
    "header line": b"Proc-Type: 4,ENCRYPTED\n",
    "not DER": b"AAAA\n",
    "a truncated certificate": b"MIIBCgKCAQEA\n",
}


class TestBrokenBlocksKeepTheirMessages:
    """A block the shortcut cannot load is read again by the scanner, which names it."""

    @pytest.mark.parametrize("body", BROKEN.values(), ids=BROKEN.keys())
    def test_same_outcome(self, issued: IssuedChain, body: bytes) -> None:
        """The second block is broken: same message both ways, naming PEM block 2."""
        good = to_pem(_der(issued.end_entity))
        broken = b"-----BEGIN CERTIFICATE-----\n" + body + b"-----END CERTIFICATE-----\n"
        fast, slow = _both_ways(good + broken)
        assert fast == slow
        if isinstance(fast, str):
            assert "PEM block 2 (CERTIFICATE)" in fast

    def test_count_is_not_left_behind(self, issued: IssuedChain) -> None:
        """A declined text counts nothing: the scanner's cap sees only its own certificates."""
        loader = smime_collect._certs._load._Loader(max_zip_size=1, max_zip_entries=1)
        good = to_pem(_der(issued.end_entity))
        bodies = standard_certificate_bodies(good + good.replace(b"MII", b"!II"), 16)
        assert bodies is not None
        assert load_standard_pem(loader, bodies) is None
        assert loader.count == 0

    def test_off_means_off(self, issued: IssuedChain) -> None:
        """With the shortcuts off the split declines even plain text."""
        with _fast.disabled():
            assert standard_certificate_bodies(to_pem(_der(issued.root)), 16) is None


# Pieces that matter to marker parsing: dashes, spaces, line ends, the label, base64 characters.
_PIECES = st.sampled_from(
    [
        b"-",
        b"-----",
        b" ",
        b"\n",
        b"\r\n",
        b"\t",
        b"BEGIN",
        b"END",
        b"CERTIFICATE",
        b"A",
        b"=",
        b":",
    ]
)


@st.composite
def _edited_pem(draw: st.DrawFn) -> bytes:
    """Standard PEM of a real chain with a few pieces inserted, deleted or replaced."""
    text = bytearray(draw(st.sampled_from(_TEXTS)))
    for _ in range(draw(st.integers(1, 3))):
        # Mostly next to a marker, where the shortcut and the scanner could disagree.
        near_markers = [i for i in range(len(text)) if 0x2D in text[max(0, i - 2) : i + 3]]
        position = draw(st.sampled_from(near_markers) | st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "join"]))
        if action == "join":  # a marker line and its neighbour become one line
            line_ends = [i for i in near_markers if text[i] == 0x0A]
            if line_ends:
                position = draw(st.sampled_from(line_ends))
                text[position - (text[position - 1] == 0x0D) : position + 1] = draw(
                    st.sampled_from([b"", b" "])
                )
        elif action == "insert":
            text[position:position] = draw(_PIECES)
        elif action == "delete":
            del text[position : position + draw(st.integers(1, 6))]
        else:
            text[position : position + 1] = draw(_PIECES)
    return bytes(text)


_ISSUED = TestCA.create().issue_smime("frank@example.com", common_name="Frank")
_TEXTS = [
    to_pem_blocks(_ISSUED.certificates()),
    to_pem_blocks(_ISSUED.certificates()[:2], crlf=True),
]


class TestEditedText:
    """Whatever edits a text gets, the shortcut never reads it differently from the scanner."""

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(data=_edited_pem())
    def test_same_outcome(self, data: bytes) -> None:
        """Same chain or same error message, with and without the shortcut."""
        fast, slow = _both_ways(data)
        assert fast == slow

"""parse_response on ATTACHED bodies: every response type and encoding, into a classified chain."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import pytest
from cryptography import x509

from smime_collect import (
    CertificateFormatError,
    CollectRequest,
    QueryType,
    ResponseEncoding,
    ResponseFormatError,
    ResponseType,
    Status,
    parse_response,
)
from smime_collect.testing._formats import (
    to_base64,
    to_cmmf_der,
    to_netscape_sequence_der,
    to_pem,
    to_pem_blocks,
    to_pkcs7_der,
)
from smime_collect.testing._pki import IssuedChain

Certs = Sequence[x509.Certificate]


# Every test runs with the certificate shortcuts on, then off (conftest's ``shortcuts``).
pytestmark = pytest.mark.usefixtures("shortcuts")


Render = Callable[[Certs], bytes]

ORDER_NUMBER = 1234567

# (responseType, what the endpoint sends for it in base64 mode): docs/reference/endpoint.md,
# "The response".
BASE64_BODIES: dict[str, tuple[ResponseType | None, Render]] = {
    "default-pem": (None, to_pem_blocks),
    "individual-pem": (ResponseType.INDIVIDUAL, to_pem_blocks),
    "individual-seed-markers": (
        ResponseType.INDIVIDUAL,
        lambda c: to_pem_blocks(c, sloppy_markers=True),
    ),
    "pkcs7-bare-base64": (ResponseType.PKCS7, lambda c: to_base64(to_pkcs7_der(c))),
    "pkcs7-one-line": (
        ResponseType.PKCS7,
        lambda c: to_base64(to_pkcs7_der(c, sorted=False), line_length=None) + b"\n",
    ),
    "pkcs7-pem": (ResponseType.PKCS7, lambda c: to_pem(to_pkcs7_der(c), "PKCS7")),
    "netscape-bare-base64": (
        ResponseType.NETSCAPE_SEQUENCE,
        lambda c: to_base64(to_netscape_sequence_der(c)),
    ),
    "netscape-pem": (
        ResponseType.NETSCAPE_SEQUENCE,
        lambda c: to_pem(to_netscape_sequence_der(c)),
    ),
    "cmmf-explicit-base64": (
        ResponseType.CMMF,
        lambda c: to_base64(to_cmmf_der(c[1:], c[0], tagging="explicit")),
    ),
    "cmmf-implicit-base64": (
        ResponseType.CMMF,
        lambda c: to_base64(to_cmmf_der(c[1:], c[0], tagging="implicit")),
    ),
}

ORDERS = {"root-first": (2, 1, 0), "end-entity-first": (0, 1, 2), "shuffled": (1, 2, 0)}
NEWLINES = {"lf": b"\n", "crlf": b"\r\n"}


def _crlf(data: bytes, newline: bytes) -> bytes:
    return data.replace(b"\n", newline)


class TestAttachedBase64:
    """Status 2 followed by certificate data in every base64 form."""

    @pytest.mark.parametrize("newline", NEWLINES.values(), ids=NEWLINES.keys())
    @pytest.mark.parametrize("order", ORDERS.values(), ids=ORDERS.keys())
    @pytest.mark.parametrize("body_kind", BASE64_BODIES.keys())
    def test_every_type_order_and_line_ending(
        self, issued: IssuedChain, body_kind: str, order: tuple[int, ...], newline: bytes
    ) -> None:
        """The chain is classified by content and the payload kept as received."""
        response_type, render = BASE64_BODIES[body_kind]
        request = CollectRequest(ORDER_NUMBER, response_type=response_type)
        payload = _crlf(render([issued.certificates()[i] for i in order]), newline)
        result = parse_response(b"2" + newline + payload, request)
        assert result.status is Status.ATTACHED
        assert result.payload == payload
        assert result.chain is not None
        assert result.chain.end_entity == issued.end_entity
        assert result.chain.intermediates == issued.intermediates
        assert result.chain.roots == (issued.root,)

    @pytest.mark.parametrize("body_kind", BASE64_BODIES.keys())
    def test_with_validity_period(self, issued: IssuedChain, body_kind: str) -> None:
        """With showValidityPeriod=Y, line 2 is the validity and line 3 on the certificates."""
        response_type, render = BASE64_BODIES[body_kind]
        request = CollectRequest(
            ORDER_NUMBER, response_type=response_type, show_validity_period=True
        )
        payload = render(issued.certificates())
        result = parse_response(b"2\n25/11/2026 25/11/2027\n" + payload, request)
        assert result.validity is not None
        assert result.validity.not_before.day == 25
        assert result.chain is not None
        assert result.chain.end_entity == issued.end_entity
        assert result.payload == payload

    def test_certificate_only(self, issued: IssuedChain) -> None:
        """QueryType CERTIFICATE (2) returns the end entity alone."""
        request = CollectRequest(ORDER_NUMBER, query_type=QueryType.CERTIFICATE)
        result = parse_response(b"2\n" + to_pem_blocks([issued.end_entity]), request)
        assert result.chain is not None
        assert result.chain.end_entity == issued.end_entity
        assert len(result.chain) == 1

    def test_ca_bundle(self, issued: IssuedChain) -> None:
        """QueryType CA_BUNDLE (3) returns CA certificates only: end_entity is None."""
        request = CollectRequest(
            ORDER_NUMBER, query_type=QueryType.CA_BUNDLE, response_type=ResponseType.INDIVIDUAL
        )
        body = b"2\n" + to_pem_blocks([issued.root, *issued.intermediates], sloppy_markers=True)
        result = parse_response(body, request)
        assert result.chain is not None
        assert result.chain.end_entity is None
        assert result.chain.roots == (issued.root,)

    @pytest.mark.parametrize("tagging", ["explicit", "implicit"])
    def test_cmmf_without_ca_certificates(
        self, issued: IssuedChain, tagging: Literal["explicit", "implicit"]
    ) -> None:
        """A CertRepContent with the certificate and no caPubs is the end entity alone."""
        body = b"2\n" + to_base64(to_cmmf_der([], issued.end_entity, tagging=tagging))
        result = parse_response(body, CollectRequest(ORDER_NUMBER, response_type=ResponseType.CMMF))
        assert result.chain is not None
        assert tuple(result.chain) == (issued.end_entity,)
        assert result.chain.end_entity == issued.end_entity


class TestAttachedBinary:
    """responseEncoding=1: the bare structure, told apart from a text status by its shape."""

    @pytest.mark.parametrize("response_type", [None, ResponseType.PKCS7], ids=["default", "pkcs7"])
    @pytest.mark.parametrize("sort", [True, False], ids=["der-sorted", "openssl-unsorted"])
    def test_binary_pkcs7(
        self, issued: IssuedChain, response_type: ResponseType | None, sort: bool
    ) -> None:
        """A DER body starting 0x30 ("0") is certificate data, not "being processed"."""
        request = CollectRequest(
            ORDER_NUMBER, response_type=response_type, response_encoding=ResponseEncoding.BINARY
        )
        body = to_pkcs7_der(issued.certificates()[::-1], sorted=sort)
        assert body[:1] == b"0"
        result = parse_response(body, request)
        assert result.status is Status.ATTACHED
        assert result.payload == body
        assert result.chain is not None
        assert tuple(result.chain) == issued.certificates()

    def test_binary_request_still_gets_text_statuses(self) -> None:
        """When the certificate is not ready, the text form comes back even in binary mode."""
        request = CollectRequest(ORDER_NUMBER, response_encoding=ResponseEncoding.BINARY)
        result = parse_response(b"0\n", request)
        assert result.status is Status.PROCESSING
        assert result.chain is None

    def test_truncated_binary_body(self, issued: IssuedChain) -> None:
        """Half a PKCS#7 structure is a ResponseFormatError, never a raw traceback."""
        request = CollectRequest(ORDER_NUMBER, response_encoding=ResponseEncoding.BINARY)
        body = to_pkcs7_der(issued.certificates())
        with pytest.raises(ResponseFormatError):
            parse_response(body[: len(body) // 2], request)


class TestAttachedErrors:
    """Certificate data that cannot be loaded raises CertificateFormatError."""

    @pytest.mark.parametrize(
        ("payload", "message"),
        [
            pytest.param(b"not a certificate!\n", "neither PEM, base64 nor DER", id="prose"),
            pytest.param(b"notacertificate", "not valid base64 either", id="base64-alphabet"),
            pytest.param(b"-----BEGIN CERTIFICATE-----\nMIIB\n", "truncated", id="pem-without-end"),
            pytest.param(to_base64(to_pkcs7_der([])), "holds no certificates", id="empty-pkcs7"),
            pytest.param(
                to_base64(to_cmmf_der([], None)),
                "CertRepContent holds no certificates",
                id="empty-cmmf",
            ),
        ],
    )
    def test_bad_certificate_data(self, payload: bytes, message: str) -> None:
        """The error names what was seen, and is catchable as ResponseFormatError."""
        request = CollectRequest(ORDER_NUMBER)
        with pytest.raises(CertificateFormatError, match=message) as caught:
            parse_response(b"2\n" + payload, request)
        assert isinstance(caught.value, ResponseFormatError)

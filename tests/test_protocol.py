"""parse_response: status lines, errors, validity, framing, binary bodies and arbitrary bytes."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smime_collect import (
    AuthenticationError,
    CertificateFormatError,
    CollectRequest,
    CollectResult,
    InvalidArgumentError,
    MissingArgumentError,
    PermissionDeniedError,
    QueryType,
    ResponseEncoding,
    ResponseFormatError,
    ResponseType,
    SectigoError,
    Status,
    UnknownServerError,
    parse_response,
)
from smime_collect._protocol import looks_like_asn1_sequence
from smime_collect._rules import CODES

PLAIN = CollectRequest(4242)
STATUS_ONLY = CollectRequest(4242, query_type=QueryType.STATUS)
WITH_VALIDITY = CollectRequest(4242, show_validity_period=True)
BINARY = CollectRequest(
    4242, response_type=ResponseType.PKCS7, response_encoding=ResponseEncoding.BINARY
)

# Line endings and framing a server (or a proxy) might add around the same content.
FRAMINGS = {
    "lf": lambda lines: "\n".join(lines) + "\n",
    "crlf": lambda lines: "\r\n".join(lines) + "\r\n",
    "no-final-newline": "\n".join,
    "trailing-blank-lines": lambda lines: "\n".join(lines) + "\n\n\n",
    "trailing-spaces": lambda lines: "\n".join(f"{line}  " for line in lines) + "\n",
    "crlf-trailing-blank": lambda lines: "\r\n".join(lines) + "\r\n\r\n",
}


def frame(name: str, *lines: str) -> bytes:
    """Render lines with one of the framings above."""
    return FRAMINGS[name](list(lines)).encode()


class TestStatus:
    """Non-negative statuses give results; the chain is set only for ATTACHED."""

    @pytest.mark.parametrize("framing", FRAMINGS)
    @pytest.mark.parametrize(
        ("line", "status"), [("0", Status.PROCESSING), ("1", Status.AVAILABLE)]
    )
    def test_no_certificate_yet(self, framing: str, line: str, status: Status) -> None:
        """0 and 1 give a result with no chain and no payload, whatever the framing."""
        result = parse_response(frame(framing, line), PLAIN)
        assert result == CollectResult(4242, status, None, None, b"")

    def test_status_only_query(self) -> None:
        """A status query's "1" is AVAILABLE."""
        assert parse_response(b"1\n", STATUS_ONLY).status is Status.AVAILABLE

    @pytest.mark.parametrize("status", ["3", "7", "99", "100000"])
    def test_unknown_positive_status(self, status: str) -> None:
        """A positive status other than 0, 1, 2 is a ResponseFormatError, not a crash."""
        with pytest.raises(ResponseFormatError, match=f"unknown status {status}"):
            parse_response(f"{status}\n".encode(), PLAIN)

    @pytest.mark.parametrize(
        "body",
        [
            b"",
            b"\n",
            b"   \n1\n",
            b"OK\n",
            b"1 2\n",
            b"+1\n",
            b"1.0\n",
            b"<html><body>502 Bad Gateway</body></html>",
            b"\xff\xfe\x00garbage",
            "²\n".encode(),
            "\uff11\n".encode(),  # a full-width digit one
            b"12345678901234567890\n",
        ],
        ids=repr,
    )
    def test_not_a_status_line(self, body: bytes) -> None:
        """A first line that is not an integer and nothing else is a ResponseFormatError."""
        with pytest.raises(ResponseFormatError) as info:
            parse_response(body, PLAIN)
        assert not isinstance(info.value, SectigoError)

    def test_attached_without_data(self) -> None:
        """Status 2 with nothing after it is malformed."""
        with pytest.raises(ResponseFormatError, match="no certificate data"):
            parse_response(b"2\n\n", PLAIN)

    def test_attached_with_garbage(self) -> None:
        """Status 2 with data that holds no certificate is a CertificateFormatError."""
        with pytest.raises(CertificateFormatError):
            parse_response(b"2\nthis is not a certificate\n", PLAIN)


class TestErrors:
    """A negative status raises the SectigoError subclass for its code."""

    @pytest.mark.parametrize("framing", FRAMINGS)
    @pytest.mark.parametrize("code", sorted(CODES), ids=str)
    def test_documented_code(self, code: int, framing: str) -> None:
        """Each documented code raises its class, with the message from line 2."""
        message = CODES[code].message.format("orderNumber")
        with pytest.raises(SectigoError) as info:
            parse_response(frame(framing, str(code), message), PLAIN)
        error = info.value
        assert type(error) is type(SectigoError.from_code(code))
        assert error.code == code
        assert error.message == message
        assert error.order_number == 4242

    @pytest.mark.parametrize("body", [b"-16", b"-16\n", b"-16\r\n", b"-16\n\n"], ids=repr)
    def test_no_message_line(self, body: bytes) -> None:
        """An error with no line 2 has the message ""."""
        with pytest.raises(AuthenticationError) as info:
            parse_response(body, PLAIN)
        assert info.value.message == ""

    @pytest.mark.parametrize(
        ("body", "klass", "field", "value"),
        [
            (
                b"-4\nThe value of the 'collectionCode' argument is invalid!\n",
                InvalidArgumentError,
                "argument",
                "collectionCode",
            ),
            (
                b"-3\nThe 'queryType' argument is missing!\n",
                MissingArgumentError,
                "argument",
                "queryType",
            ),
            (b"-77\nSomething new\n", SectigoError, "code", -77),
            (
                b"-14\nAn unknown error occurred!\nmore\nlines\n",
                UnknownServerError,
                "message",
                "An unknown error occurred!",
            ),
            (
                b"-91\nPermission denied! '\xff\xfe'\n",
                PermissionDeniedError,
                "message",
                "Permission denied! '\ufffd\ufffd'",
            ),
        ],
        ids=[
            "the-endpoint-page-sample",
            "missing-argument-named",
            "undocumented-code-is-the-base-class",
            "only-line-two-is-the-message",
            "non-utf8-message-replaced",
        ],
    )
    def test_what_an_error_carries(
        self, body: bytes, klass: type[SectigoError], field: str, value: object
    ) -> None:
        """The exact class, and the argument, code or message read from the body."""
        with pytest.raises(SectigoError) as info:
            parse_response(body, PLAIN)
        assert type(info.value) is klass
        assert getattr(info.value, field) == value

    def test_error_wins_in_binary_mode(self) -> None:
        """With BINARY asked for, an error still comes back as text and raises."""
        with pytest.raises(AuthenticationError):
            parse_response(b"-16\n" + CODES[-16].message.encode() + b"\n", BINARY)


class TestValidity:
    """With show_validity_period, line 2 of a positive status is the validity period."""

    @pytest.mark.parametrize("framing", FRAMINGS)
    def test_available_with_validity(self, framing: str) -> None:
        """Status 1 with a validity line gives aware UTC datetimes, day first."""
        result = parse_response(frame(framing, "1", "14/05/2013 13/05/2014"), WITH_VALIDITY)
        assert result.status is Status.AVAILABLE
        assert result.validity is not None
        assert result.validity.not_before == datetime(2013, 5, 14, tzinfo=UTC)
        assert result.validity.not_after == datetime(2014, 5, 13, 23, 59, 59, tzinfo=UTC)

    def test_available_without_validity_line(self) -> None:
        """A status 1 with no line 2 has no validity rather than failing."""
        assert parse_response(b"1\n", WITH_VALIDITY).validity is None

    def test_processing_has_no_validity(self) -> None:
        """Status 0 never carries a validity period."""
        assert parse_response(b"0\n", WITH_VALIDITY).validity is None

    def test_not_asked_not_read(self) -> None:
        """Without show_validity_period a second line is not read as a validity period."""
        assert parse_response(b"1\n14/05/2013 13/05/2014\n", PLAIN).validity is None

    @pytest.mark.parametrize("line", ["2013-05-14 2014-05-13", "14/05/2013", "garbage here"])
    def test_malformed_validity(self, line: str) -> None:
        """A second line that is not two dates is a ResponseFormatError."""
        with pytest.raises(ResponseFormatError, match="validity"):
            parse_response(f"1\n{line}\n".encode(), WITH_VALIDITY)

    def test_attached_needs_validity_line(self) -> None:
        """Status 2 with validity asked for but certificate data on line 2 is malformed."""
        with pytest.raises(ResponseFormatError, match="validity"):
            parse_response(b"2\n-----BEGIN CERTIFICATE-----\n", WITH_VALIDITY)


class TestBinaryDetection:
    """A binary body is told from a text status by structure, never by its first byte."""

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            (b"0\n", False),
            (b"0", False),
            (b"0\r\n", False),
            (b"\x30\x03\x02\x01\x05", True),
            (b"\x30\x0a" + b"\x00" * 10, True),  # first line is "0": the trap
            (b"\x30\x0a" + b"\x00" * 9, False),
            (b"\x30\x81\x80" + b"\x00" * 128, True),
            (b"\x30\x82\x01\x00" + b"\x00" * 256, True),
            (b"\x30\x82\x01\x00" + b"\x00" * 255, False),
            (b"\x30\x80\x02\x01\x05\x00\x00", True),
            (b"\x30\x85\x01\x00\x00\x00\x00", False),
            (b"\x31\x03\x02\x01\x05", False),
            (b"", False),
        ],
        ids=lambda v: v.hex() if isinstance(v, bytes) else str(v),
    )
    def test_looks_like_sequence(self, body: bytes, expected: bool) -> None:
        """Only a SEQUENCE whose declared length spans the body exactly counts."""
        assert looks_like_asn1_sequence(body) is expected

    @pytest.mark.parametrize("body", [b"0\n", b"0", b"0\r\n", b"0\n\n"], ids=repr)
    def test_text_processing_in_binary_mode(self, body: bytes) -> None:
        """The text status 0 is PROCESSING even when BINARY was asked for."""
        assert parse_response(body, BINARY).status is Status.PROCESSING

    def test_der_whose_first_line_is_zero(self) -> None:
        """A DER body whose bytes up to the first LF read "0" is binary, not PROCESSING."""
        body = b"\x30\x0a" + b"\x06\x08" + b"\x2a\x86\x48\x86\xf7\x0d\x01\x07"
        assert body.partition(b"\n")[0] == b"0"
        with pytest.raises(CertificateFormatError):
            parse_response(body, BINARY)

    def test_binary_garbage(self) -> None:
        """A binary-mode body that is neither a status nor a certificate structure is refused."""
        with pytest.raises(CertificateFormatError):
            parse_response(b"\x30\x82\xff\xff\x00", BINARY)

    def test_text_mode_ignores_binary(self) -> None:
        """Without BINARY asked for, a DER body is malformed text."""
        with pytest.raises(ResponseFormatError, match="not a status code"):
            parse_response(b"\x30\x03\x02\x01\x05", PLAIN)


REQUESTS = [
    PLAIN,
    STATUS_ONLY,
    WITH_VALIDITY,
    BINARY,
    CollectRequest(1, query_type=QueryType.CA_BUNDLE, show_validity_period=True),
]


class TestArbitraryBytes:
    """Whatever the bytes, only a result or a CollectError comes out."""

    @settings(max_examples=300, deadline=None)
    @given(body=st.binary(max_size=300), which=st.sampled_from(range(len(REQUESTS))))
    def test_any_bytes(self, body: bytes, which: int) -> None:
        """Arbitrary bytes give a CollectResult, a ResponseFormatError or a SectigoError."""
        try:
            result = parse_response(body, REQUESTS[which])
        except (ResponseFormatError, SectigoError):
            return
        assert isinstance(result, CollectResult)

    @settings(max_examples=300, deadline=None)
    @given(
        status=st.sampled_from(["-16", "-4", "0", "1", "2", "3", "x"]),
        rest=st.lists(st.text(alphabet=st.characters(codec="utf-8"), max_size=40), max_size=5),
        newline=st.sampled_from(["\n", "\r\n"]),
    )
    def test_structured_text(self, status: str, rest: list[str], newline: str) -> None:
        """Status-shaped text with random following lines never escapes as another error."""
        body = newline.join([status, *rest]).encode()
        with contextlib.suppress(ResponseFormatError, SectigoError):
            parse_response(body, WITH_VALIDITY)

"""parse_response against the endpoint's response rules, in text and in binary mode.

What ``tests/test_protocol.py`` and ``tests/test_protocol_attached.py`` do not already show:
every text answer (statuses, errors, malformed bodies) read the same when binary was asked for,
and the whitespace a server or proxy may leave after the certificate data
(``docs/reference/endpoint.md``, "The response").
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smime_collect import (
    CollectRequest,
    CollectResult,
    ResponseEncoding,
    ResponseFormatError,
    SectigoError,
    Status,
    ValidityPeriod,
    parse_response,
)
from smime_collect.testing import IssuedChain
from smime_collect.testing.formats import to_pem_blocks, to_pkcs7_der

TEXT = CollectRequest(77)
BINARY = CollectRequest(77, response_encoding=ResponseEncoding.BINARY)
WITH_VALIDITY = CollectRequest(77, show_validity_period=True)
BOTH_MODES = pytest.mark.parametrize("request_", [TEXT, BINARY], ids=["text", "binary"])


@BOTH_MODES
@pytest.mark.parametrize("body", [b"0\n", b"1\n", b"0", b"1\r\n", b"1 \n\n", b"0 \r\n"])
def test_text_status_in_either_mode(body: bytes, request_: CollectRequest) -> None:
    """Status 0 and 1 are text answers even when binary was asked for: no chain, no payload."""
    status = Status(int(body.strip()))
    result = parse_response(body, request_)
    assert result == CollectResult(77, status, None, None, b"")
    assert result.status is status


@BOTH_MODES
@pytest.mark.parametrize("code", [-5, -999])
@pytest.mark.parametrize("tail", [b"\nOops!\n", b"\r\nOops!  \r\n", b"", b"\n", b"\r\n"])
def test_undocumented_code_in_either_mode(code: int, tail: bytes, request_: CollectRequest) -> None:
    """An undocumented negative status raises a plain SectigoError, its message from line 2."""
    with pytest.raises(SectigoError) as info:
        parse_response(str(code).encode() + tail, request_)
    error = info.value
    assert type(error) is SectigoError
    expected = "Oops!" if b"Oops" in tail else ""
    assert (error.code, error.message, error.order_number) == (code, expected, 77)


@BOTH_MODES
@pytest.mark.parametrize(
    "body",
    [b"", b"\n", b"3\n", b"7\n", b"abc\n", b"2\n", b"2\nnot a certificate\n", b"1x\n", b"\xff\xfe",
     b"0\x82\x01\x00junk", b"1.5\n", b"2\n" + b"A" * 100, b"\n1\n"],
)  # fmt: skip
def test_malformed_in_either_mode(body: bytes, request_: CollectRequest) -> None:
    """A body that is neither a status line nor, in binary mode, a whole structure is refused."""
    with pytest.raises(ResponseFormatError):
        parse_response(body, request_)


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("status", [Status.AVAILABLE, Status.ATTACHED])
def test_validity_before_the_data(newline: str, status: Status, issued: IssuedChain) -> None:
    """Line 2 is DD/MM/YYYY DD/MM/YYYY, day first, before any certificate data, in either ending."""
    data = to_pem_blocks(issued.certificates()).decode() if status is Status.ATTACHED else ""
    body = f"{int(status)}{newline}01/02/2024 03/04/2025 {newline}{data}".encode()
    result = parse_response(body, WITH_VALIDITY)
    assert result.status is status
    assert result.validity == ValidityPeriod(
        datetime(2024, 2, 1, 0, 0, 0, tzinfo=UTC), datetime(2025, 4, 3, 23, 59, 59, tzinfo=UTC)
    )
    assert (result.chain is not None) is (status is Status.ATTACHED)


@pytest.mark.parametrize(("sloppy", "crlf"), [(False, False), (True, True), (True, False)])
def test_whitespace_after_pem_data(issued: IssuedChain, sloppy: bool, crlf: bool) -> None:
    """Spaces and blank lines after the PEM blocks are tolerated; the payload keeps the blocks."""
    pem = to_pem_blocks(issued.certificates()[::-1], sloppy_markers=sloppy, crlf=crlf)
    body = b"2" + (b"\r\n" if crlf else b"\n") + pem + b"  \n\n"
    result = parse_response(body, TEXT)
    assert result.chain is not None
    assert result.chain.end_entity == issued.end_entity
    assert result.payload.startswith(pem)
    assert result.payload.strip() == pem.strip()


@pytest.mark.parametrize("trailer", [b"", b"\n", b"\r\n "], ids=["none", "lf", "crlf-space"])
def test_whitespace_after_binary_data(issued: IssuedChain, trailer: bytes) -> None:
    """A DER body (first byte 0x30, ASCII "0") with a trailing newline is still the structure."""
    der = to_pkcs7_der(issued.certificates())
    assert der.startswith(b"0")
    result = parse_response(der + trailer, BINARY, "text/plain")
    assert result.status is Status.ATTACHED
    assert result.chain is not None
    assert len(result.chain) == 3
    assert result.payload.rstrip() == der

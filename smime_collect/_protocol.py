"""SANS-I/O: a CollectSMIME response body in, a CollectResult or a typed error out.

The response format (``docs/reference/endpoint.md``, "The response")::

    line 1   status: 2 attached, 1 available, 0 being processed, < 0 an error
    line 2   the error message (status < 0), or with showValidityPeriod=Y and status > 0
             the validity period "DD/MM/YYYY DD/MM/YYYY"
    line 3+  with status 2, the encoded certificate(s)

"If responseEncoding=1, the certificate(s) are available and no error occurs, the output will
consist simply of the requested binary structure."  DER begins with 0x30, which is ASCII "0" (the
"being processed" status), so a binary body is recognised by its structure: an ASN.1 SEQUENCE whose
declared length is exactly the body's.

This module does no I/O and never sleeps.
"""

from __future__ import annotations

import re

from ._certs import load_certificates, looks_like_asn1_sequence
from ._exceptions import ResponseFormatError, SectigoError
from ._models import CollectRequest, CollectResult, Status, ValidityPeriod

__all__ = ["looks_like_asn1_sequence", "parse_response"]

# "A text status is a first line that is an integer and nothing else."  Trailing blanks and a CR
# (CRLF line endings) are tolerated; leading zeros and a plus sign are not a status Sectigo sends.
_STATUS_LINE = re.compile(rb"[ \t]*(-?[0-9]{1,9})[ \t\r]*")

# Anything past this in line 2 of an error is not a message, it is a broken body.
_MAX_MESSAGE = 1024

_STATUS_BY_VALUE = {int(status): status for status in Status}
# The members read on every response, looked up once: Python 3.11 reaches an enum member through
# a descriptor (python/cpython#93910), 0.17 us a lookup.
_ATTACHED, _PROCESSING = Status.ATTACHED, Status.PROCESSING


def _status_of(line: bytes) -> int | None:
    status = _PLAIN_STATUS_LINES.get(line)  # what the endpoint sends; the pattern reads the rest
    if status is not None:
        return status
    match = _STATUS_LINE.fullmatch(line)
    return int(match.group(1)) if match else None


_PLAIN_STATUS_LINES = {b"%d" % status: int(status) for status in Status} | {
    b"%d\r" % status: int(status) for status in Status
}


def parse_response(
    body: bytes, request: CollectRequest, content_type: str | None = None
) -> CollectResult:
    """Decipher a CollectSMIME response body.

    Args:
        body: The response body, complete.
        request: The request it answers (its encoding and validity flag shape the body).
        content_type: The response's Content-Type. Informational only: the endpoint echoes
            ``responseMimeType`` or says ``text/plain`` whatever the payload is.

    Returns:
        The result; ``chain`` is set exactly when the status is ATTACHED.

    Raises:
        SectigoError: The status line is negative (the subclass for that code).
        ResponseFormatError: Anything else that is not a valid response, including certificate
            data that cannot be loaded (CertificateFormatError).
    """
    del content_type  # says nothing reliable about the payload (see module docstring)
    body = bytes(body)
    head, _, rest = body.partition(b"\n")
    status = _status_of(head)

    if request.wants_binary and (status is None or looks_like_asn1_sequence(body)):
        return CollectResult(
            order_number=request.order_number,
            status=_ATTACHED,
            chain=load_certificates(body),
            payload=body,
        )
    if status is None:
        raise ResponseFormatError(
            f"the first line of the response is not a status code: {_preview(head)}"
        )
    if status < 0:
        message_line, _, _ = rest.partition(b"\n")
        message = message_line.strip()[:_MAX_MESSAGE].decode("utf-8", "replace")
        raise SectigoError.from_code(status, message, request.order_number)
    known = _STATUS_BY_VALUE.get(status)
    if known is None:
        raise ResponseFormatError(
            f"unknown status {status}: CollectSMIME answers 0, 1, 2 or a negative error code"
        )
    return _parse_success(known, rest, request)


def _parse_success(status: Status, rest: bytes, request: CollectRequest) -> CollectResult:
    validity = None
    if request.show_validity_period and status > _PROCESSING:
        line, _, after = rest.lstrip(b"\r\n").partition(b"\n")
        if line.strip() or status is _ATTACHED:
            validity = ValidityPeriod.from_line(_text(line))
            rest = after
    if status is not _ATTACHED:
        return CollectResult(request.order_number, status, validity)
    if not rest or rest.isspace():  # (strip() would copy the certificate data)
        raise ResponseFormatError("status 2 (certificates attached) but no certificate data")
    # order_number, status, validity, chain, payload: by position, a third cheaper (0.3 us)
    return CollectResult(request.order_number, status, validity, load_certificates(rest), rest)


def _text(line: bytes) -> str:
    try:
        return line.strip().decode("ascii")
    except UnicodeDecodeError:
        raise ResponseFormatError(f"expected a text line, got {_preview(line)}") from None


def _preview(data: bytes, limit: int = 40) -> str:
    shown = data[:limit]
    more = f" ... ({len(data)} bytes)" if len(data) > limit else ""
    return f"{shown!r}{more}"

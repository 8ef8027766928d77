"""The endpoint's rules applied to form fields, and its bodies rendered: no I/O, no state.

Everything comes from the shared rule table (``smime_collect._rules``), the same one the client
validates against, so client and simulator cannot drift apart.  "The page" below is Sectigo's page
for the endpoint, restated in ``docs/reference/endpoint.md``. The simulator owns the state
(accounts, orders, polls) and calls in here to check a request and to render an answer.
"""

import functools
from collections.abc import Iterable
from typing import Final, TypeVar

import attrs
from cryptography import x509

from smime_collect import _rules
from smime_collect._enums import QueryType, ResponseEncoding, ResponseType

from ._formats import (
    to_base64,
    to_cmmf_der,
    to_netscape_sequence_der,
    to_pem_blocks,
    to_pkcs7_der,
)
from ._scenario import Quirks

__all__ = [
    "CONTENT_TYPE_BINARY",
    "CONTENT_TYPE_TEXT",
    "Query",
    "Reply",
    "error",
    "parse_query",
    "render_issued",
    "status",
    "text",
]

FIELD: Final = _rules.FIELD
_KNOWN_FIELDS: Final = frozenset(FIELD.REQUIRED + FIELD.OPTIONAL)

# "If the status code is less than or equals 0, the output will be displayed as text/plain"; the
# page does not say what a binary answer is labelled: the PKCS#7 media type (RFC 8551 3.2.1).
CONTENT_TYPE_TEXT: Final = b"text/plain"
CONTENT_TYPE_BINARY: Final = b"application/pkcs7-mime"

# A longer number is not an order number, it is an attempt to make int() slow.
_MAX_DIGITS: Final = 18


@attrs.frozen
class Reply:
    """One answer, ready to send.

    Attributes:
        http_status: The HTTP status (200 for every endpoint answer, errors included).
        body: The bytes.
        code: The status line's value (2 for a bare binary structure); None for non-endpoint
            answers (an HTTP error page).
        content_type: The Content-Type header value.
        headers: Extra headers (``Retry-After``).
    """

    http_status: int
    body: bytes
    code: int | None
    content_type: bytes = CONTENT_TYPE_TEXT
    headers: tuple[tuple[bytes, bytes], ...] = ()


@attrs.frozen
class Query:
    """A request that passed every syntactic rule of the endpoint page.

    Attributes:
        login_name: ``loginName``.
        password: ``loginPassword`` (never shown in ``repr()``).
        order_number: ``orderNumber``.
        query_type: ``queryType``.
        response_type: ``responseType``, or None when omitted.
        response_encoding: ``responseEncoding``, or None when omitted.
        show_validity_period: ``showValidityPeriod=Y``.
    """

    login_name: str
    password: str = attrs.field(repr=False)
    order_number: int = 0
    query_type: QueryType = QueryType.STATUS
    response_type: ResponseType | None = None
    response_encoding: ResponseEncoding | None = None
    show_validity_period: bool = False

    @property
    def render_key(self) -> tuple[int, int, int | None, int | None, bool]:
        """What the body of an issued order depends on, for the simulator's cache."""
        return (
            self.order_number,
            self.query_type,
            self.response_type,
            self.response_encoding,
            self.show_validity_period,
        )


def text(lines: Iterable[str | bytes], *, crlf: bool) -> bytes:
    """Join text lines into a body, each line terminated.

    Args:
        lines: The lines, without terminators (bytes are kept as they are).
        crlf: Use CRLF line endings (``Quirks.crlf``).

    Returns:
        The body.
    """
    newline = b"\r\n" if crlf else b"\n"
    return b"".join((line.encode() if isinstance(line, str) else line) + newline for line in lines)


@functools.lru_cache(maxsize=256)
def error(code: int, argument: str | None = None, *, crlf: bool = False) -> Reply:
    """The answer for a negative code: the code, then the page's message (HTTP 200).

    Args:
        code: The Sectigo code (a key of ``_rules.CODES``).
        argument: The name that replaces ``xxxx`` in the message (-3, -4, -91).
        crlf: CRLF line endings.

    Returns:
        The reply.
    """
    message = _rules.CODES[code].message.format(argument or "")
    return Reply(200, text((str(code), message), crlf=crlf), code)


@functools.lru_cache(maxsize=8)
def status(code: int, *, crlf: bool = False) -> Reply:
    """The answer for a bare non-negative status (0 being processed, 1 available).

    Args:
        code: The status.
        crlf: CRLF line endings.

    Returns:
        The reply.
    """
    return Reply(200, text((str(code),), crlf=crlf), code)


def _integer(value: str) -> int | None:
    # int() alone would take " 7", "+7", "7_0" and non-ASCII digits; the wire wants ASCII digits.
    if value.isascii() and value.isdigit() and len(value) <= _MAX_DIGITS:
        return int(value)
    return None


class _Refusal(Exception):  # noqa: N818 -- internal control flow, never escapes this module
    """A rule is broken: answer with this code (and argument name)."""

    def __init__(self, code: int, argument: str | None = None) -> None:
        super().__init__(code, argument)
        self.code = code
        self.argument = argument


_E = TypeVar("_E", QueryType, ResponseType, ResponseEncoding)


def _member(enum_type: type[_E], values: dict[str, str], name: str) -> _E | None:
    if name not in values:
        return None
    number = _integer(values[name])
    if number is None or number not in enum_type._value2member_map_:
        raise _Refusal(-4, name)
    return enum_type(number)


def _bounded(values: dict[str, str], name: str, limit: int) -> str:
    value = values[name]
    if len(value) > limit:
        raise _Refusal(-4, name)
    return value


def _distinct_fields(fields: Iterable[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, value in fields:
        if name not in _KNOWN_FIELDS:
            raise _Refusal(-2)
        if name in values:
            raise _Refusal(-4, name)
        values[name] = value
    for name in FIELD.REQUIRED:
        if not values.get(name):
            raise _Refusal(-3, name)
    return values


def parse_query(fields: Iterable[tuple[str, str]], *, crlf: bool = False) -> Query | Reply:
    """Check form fields against the endpoint page, in the order a server would.

    Order of the checks (the page does not say; this one reports the most basic fault first):
    an unknown field (-2); a field given twice (-4 on it); a required field missing or empty (-3,
    in the page's order); a value out of range (-4: too-long credentials, a non-positive or
    non-numeric ``orderNumber``, an unknown ``queryType``/``responseType``/``responseEncoding``,
    a ``showValidityPeriod`` other than ``Y``/``N``); then the combinations (-4 on
    ``responseType`` for types 1, 2, 4 without ``queryType=1``; -4 on ``responseEncoding`` for
    binary without ``queryType=1`` and ``responseType`` omitted or 2).

    Args:
        fields: The decoded form fields, in the order received.
        crlf: CRLF line endings for the error reply.

    Returns:
        The query, or the error reply.
    """
    try:
        return _checked_query(fields)
    except _Refusal as refusal:
        return error(refusal.code, refusal.argument, crlf=crlf)


def _checked_query(fields: Iterable[tuple[str, str]]) -> Query:
    values = _distinct_fields(fields)
    login_name = _bounded(values, FIELD.LOGIN_NAME, _rules.MAX_LOGIN_NAME)
    password = _bounded(values, FIELD.LOGIN_PASSWORD, _rules.MAX_LOGIN_PASSWORD)
    order_number = _integer(values[FIELD.ORDER_NUMBER])
    if not order_number:
        raise _Refusal(-4, FIELD.ORDER_NUMBER)
    query_type = _member(QueryType, values, FIELD.QUERY_TYPE)
    assert query_type is not None  # noqa: S101 -- required, checked by _distinct_fields
    response_type = _member(ResponseType, values, FIELD.RESPONSE_TYPE)
    encoding = _member(ResponseEncoding, values, FIELD.RESPONSE_ENCODING)
    show = values.get(FIELD.SHOW_VALIDITY_PERIOD, "N")
    if show not in ("Y", "N"):
        raise _Refusal(-4, FIELD.SHOW_VALIDITY_PERIOD)

    # The client's own rule (CollectRequest checks the same function): -4 names the field.
    refused = _rules.combination_error(query_type, response_type, encoding)
    if refused is not None:
        raise _Refusal(-4, refused)
    return Query(
        login_name=login_name,
        password=password,
        order_number=order_number,
        query_type=query_type,
        response_type=response_type,
        response_encoding=encoding,
        show_validity_period=show == "Y",
    )


def _validity_line(end_entity: x509.Certificate) -> str:
    # "the second line is the certificate validity period ... DD/MM/YYYY" - day first.
    first = end_entity.not_valid_before_utc.strftime("%d/%m/%Y")
    last = end_entity.not_valid_after_utc.strftime("%d/%m/%Y")
    return f"{first} {last}"


def render_issued(
    query: Query,
    end_entity: x509.Certificate,
    ca_certificates: tuple[x509.Certificate, ...],
    quirks: Quirks,
) -> Reply:
    """The answer for an issued order: status 1, or 2 and the certificate data.

    Args:
        query: The checked request.
        end_entity: The order's certificate.
        ca_certificates: Its intermediates, from the issuing one upwards, then the root.
        quirks: How to render.

    Returns:
        The reply (the bare binary structure for ``responseEncoding=1``).
    """
    head: list[str] = []
    if query.query_type is QueryType.STATUS:
        head.append("1")
        if query.show_validity_period:
            head.append(_validity_line(end_entity))
        return Reply(200, text(head, crlf=quirks.crlf), 1)

    certificates, cas = _selection(query.query_type, end_entity, ca_certificates, quirks)
    if query.response_encoding is ResponseEncoding.BINARY:
        # "the output will consist simply of the requested binary structure": no status line.
        der = to_pkcs7_der(certificates, sorted=quirks.pkcs7_sorted)
        return Reply(200, der, 2, CONTENT_TYPE_BINARY)

    head.append("2")
    if query.show_validity_period:
        head.append(_validity_line(end_entity))
    body = text(head, crlf=False) + _certificate_data(query, end_entity, certificates, cas, quirks)
    if not body.endswith(b"\n"):
        body += b"\n"
    if quirks.crlf:
        body = body.replace(b"\n", b"\r\n")
    return Reply(200, body, 2)


def _selection(
    query_type: QueryType,
    end_entity: x509.Certificate,
    ca_certificates: tuple[x509.Certificate, ...],
    quirks: Quirks,
) -> tuple[tuple[x509.Certificate, ...], tuple[x509.Certificate, ...]]:
    """The certificates a query type asks for, in the quirks' order; and the CA certificates."""
    cas = ca_certificates if quirks.include_root else ca_certificates[:-1]
    if quirks.root_first:  # the page's sample: root, intermediate, end entity
        cas = tuple(reversed(cas))
        everything = (*cas, end_entity)
    else:
        everything = (end_entity, *cas)
    if query_type is QueryType.CERTIFICATE:  # "the certificate only (no intermediates/roots)"
        return (end_entity,), cas
    if query_type is QueryType.CA_BUNDLE:  # "intermediates/roots only (cabundle)"
        return cas, cas
    return everything, cas


def _certificate_data(
    query: Query,
    end_entity: x509.Certificate,
    certificates: tuple[x509.Certificate, ...],
    cas: tuple[x509.Certificate, ...],
    quirks: Quirks,
) -> bytes:
    """The base64-mode certificate data for ``query``'s responseType."""
    response_type = query.response_type or quirks.default_response_type
    chain_query = query.query_type is QueryType.CERTIFICATE_AND_CHAIN
    if response_type in _rules.CHAIN_ONLY_RESPONSE_TYPES and not chain_query:
        # Only reachable through a default: an explicit one was refused with -4 already.
        response_type = ResponseType.INDIVIDUAL
    if response_type is ResponseType.INDIVIDUAL:
        return to_pem_blocks(certificates, sloppy_markers=quirks.sloppy_pem_markers)
    if response_type is ResponseType.PKCS7:
        der = to_pkcs7_der(certificates, sorted=quirks.pkcs7_sorted)
    elif response_type is ResponseType.NETSCAPE_SEQUENCE:
        der = to_netscape_sequence_der(certificates)
    else:
        der = to_cmmf_der(cas, end_entity, tagging=quirks.cmmf_tagging)
    # Base64 containers come bare, without PEM armour: seen for PKCS7, likely for the others
    # (docs/reference/endpoint.md, "Traps").
    return to_base64(der, line_length=quirks.base64_line_length)

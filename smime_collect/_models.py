"""The values smime_collect passes around: frozen attrs classes (and the wire enums, re-exported).

No I/O.
"""

import enum
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import attrs

from . import _rules
from ._certs import CertificateChain
from ._enums import QueryType, ResponseEncoding, ResponseType, Status
from ._exceptions import CollectError, InvalidRequestError, ResponseFormatError

__all__ = [
    "CollectOutcome",
    "CollectRequest",
    "CollectResult",
    "QueryType",
    "ResponseEncoding",
    "ResponseType",
    "Status",
    "ValidityPeriod",
]


_E = TypeVar("_E", bound=enum.IntEnum)
# Read for every response: Python 3.11 reaches an enum member through a descriptor
# (python/cpython#93910), 0.17 us a lookup.
_BINARY = ResponseEncoding.BINARY


def _member(enum_type: type[_E], name: str, value: object) -> _E:
    # bool is an int subclass; True is not a query type.
    if isinstance(value, enum_type):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return enum_type(value)
        except ValueError:
            pass
    allowed = ", ".join(f"{m.name}={m.value}" for m in enum_type)
    raise InvalidRequestError(f"{name} must be a {enum_type.__name__} ({allowed}), not {value!r}")


def _order_number(value: object) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdecimal() and value.strip().isascii():
        number = int(value.strip())
    if number is None or number <= 0:
        raise InvalidRequestError(
            f"order_number must be a positive integer, not {value!r}: "
            "use the order number Sectigo returned when the certificate was ordered"
        )
    return number


def _query_type(value: object) -> QueryType:
    return _member(QueryType, "query_type", value)


def _response_type(value: object) -> ResponseType | None:
    return None if value is None else _member(ResponseType, "response_type", value)


def _response_encoding(value: object) -> ResponseEncoding | None:
    return None if value is None else _member(ResponseEncoding, "response_encoding", value)


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidRequestError(f"show_validity_period must be True or False, not {value!r}")
    return value


@attrs.frozen
class CollectRequest:
    """One CollectSMIME query, validated against the endpoint's rules at construction.

    Args:
        order_number: The order to collect (a positive int; a numeric string is converted).
        query_type: What to ask for.
        response_type: The container of the certificate data; None lets the server choose.
        response_encoding: Base64 or binary; None lets the server choose (base64).
        show_validity_period: Ask for the validity period on line 2.

    Raises:
        InvalidRequestError: A value is out of range, or a combination the endpoint forbids.
    """

    order_number: int = attrs.field(converter=_order_number)
    query_type: QueryType = attrs.field(
        default=QueryType.CERTIFICATE_AND_CHAIN, converter=_query_type
    )
    response_type: ResponseType | None = attrs.field(default=None, converter=_response_type)
    response_encoding: ResponseEncoding | None = attrs.field(
        default=None, converter=_response_encoding
    )
    show_validity_period: bool = attrs.field(default=False, converter=_flag)

    def __attrs_post_init__(self) -> None:
        refused = _rules.combination_error(
            self.query_type, self.response_type, self.response_encoding
        )
        if refused == _rules.FIELD.RESPONSE_TYPE:
            assert self.response_type is not None  # noqa: S101 -- only a set type is refused
            raise InvalidRequestError(
                f"response_type {self.response_type.name} needs "
                f"query_type CERTIFICATE_AND_CHAIN, not {self.query_type.name}: "
                "use ResponseType.INDIVIDUAL for the other query types"
            )
        if refused == _rules.FIELD.RESPONSE_ENCODING:
            raise InvalidRequestError(
                "response_encoding BINARY needs query_type CERTIFICATE_AND_CHAIN and "
                "response_type PKCS7 (or None): use BASE64 for other combinations"
            )

    @property
    def wants_binary(self) -> bool:
        """Whether a successful answer is the bare binary structure, not text."""
        return self.response_encoding is _BINARY

    def form_fields(self, login_name: str, login_password: str) -> dict[str, str]:
        """The ``x-www-form-urlencoded`` fields to POST for this request.

        The returned dict is the one object that carries the password: send it as the body,
        never log it.

        Args:
            login_name: The account's login name (at most 64 characters).
            login_password: The account's password (at most 128 characters).

        Returns:
            ``loginName``, ``loginPassword``, ``orderNumber``, ``queryType``, and the optional
            fields only when set.

        Raises:
            InvalidRequestError: A credential is empty, not a string, or too long.
        """
        check_credentials(login_name, login_password)
        fields = {
            _rules.FIELD.LOGIN_NAME: login_name,
            _rules.FIELD.LOGIN_PASSWORD: login_password,
            _rules.FIELD.ORDER_NUMBER: str(self.order_number),
            _rules.FIELD.QUERY_TYPE: str(int(self.query_type)),
        }
        if self.response_type is not None:
            fields[_rules.FIELD.RESPONSE_TYPE] = str(int(self.response_type))
        if self.response_encoding is not None:
            fields[_rules.FIELD.RESPONSE_ENCODING] = str(int(self.response_encoding))
        if self.show_validity_period:
            fields[_rules.FIELD.SHOW_VALIDITY_PERIOD] = "Y"
        return fields


def check_credentials(login_name: object, login_password: object) -> None:
    """Check both credentials against the endpoint's limits, without echoing the password.

    Raises:
        InvalidRequestError: A credential is not a non-empty string within its length limit.
    """
    for label, value, limit in (
        ("login_name", login_name, _rules.MAX_LOGIN_NAME),
        ("login_password", login_password, _rules.MAX_LOGIN_PASSWORD),
    ):
        if not isinstance(value, str):
            raise InvalidRequestError(f"{label} must be a str, not {type(value).__name__}")
        if not value:
            raise InvalidRequestError(
                f"{label} is empty: set SECTIGO_LOGIN_NAME and SECTIGO_LOGIN_PASSWORD "
                "(or their _FILE variants)"
            )
        if len(value) > limit:
            raise InvalidRequestError(
                f"{label} is {len(value)} characters; the endpoint allows at most {limit}"
            )


@attrs.frozen
class ValidityPeriod:
    """The validity period Sectigo reports with ``showValidityPeriod=Y``.

    Attributes:
        not_before: 00:00:00 UTC on the first day.
        not_after: 23:59:59 UTC on the last day.
    """

    not_before: datetime
    not_after: datetime

    @classmethod
    def from_line(cls, line: str) -> "ValidityPeriod":
        """Parse ``DD/MM/YYYY DD/MM/YYYY`` (day first, as the endpoint prints it).

        Raises:
            ResponseFormatError: The line is not two such dates, in order.
        """
        parts = line.split()
        try:
            first, last = (datetime.strptime(p, "%d/%m/%Y").replace(tzinfo=UTC) for p in parts)
        except ValueError:  # not two parts, or not dates
            raise ResponseFormatError(
                f"validity line {line[:60]!r} is not 'DD/MM/YYYY DD/MM/YYYY'"
            ) from None
        period = cls(first, last + timedelta(hours=23, minutes=59, seconds=59))
        if period.not_after < period.not_before:
            raise ResponseFormatError(f"validity line {line!r} ends before it begins")
        return period


def _payload_repr(payload: bytes) -> str:
    return f"<{len(payload)} bytes>"


@attrs.frozen
class CollectResult:
    """What one CollectSMIME call returned.

    Attributes:
        order_number: The order asked about.
        status: PROCESSING, AVAILABLE or ATTACHED.
        validity: The validity period, when it was asked for and reported.
        chain: The classified certificates when the status is ATTACHED, else None.
        payload: The certificate data exactly as received (``b""`` when none).
    """

    order_number: int
    status: Status
    validity: ValidityPeriod | None = None
    chain: CertificateChain | None = None
    payload: bytes = attrs.field(default=b"", repr=_payload_repr)

    def require_chain(self) -> CertificateChain:
        """The certificates, for a result that must have them (a type checker then knows it).

        ``wait_for_certificate`` returns ATTACHED results, which always carry a chain; a status
        query (AVAILABLE) or an order still being processed (PROCESSING, from ``collect``) does
        not.

        Returns:
            The classified chain.

        Raises:
            InvalidRequestError: The result carries no certificates; the message says why.
        """
        if self.chain is not None:
            return self.chain
        why = {
            Status.PROCESSING: "it is still being processed: wait_for_certificate() waits for it",
            Status.AVAILABLE: "a status query never carries them: ask with CERTIFICATE_AND_CHAIN",
        }.get(self.status, "the result was built without a chain")
        raise InvalidRequestError(
            f"order {self.order_number} has no certificates in this result "
            f"(status {self.status.name}): {why}"
        )


@attrs.frozen
class CollectOutcome:
    """One order's outcome in ``CollectClient.collect_many``.

    Attributes:
        order_number: The order; for an order number that was not valid (``"12a"``), the
            value exactly as given.
        result: The result when there was no error.
        error: The error that ended this order, or None.
    """

    order_number: int
    result: CollectResult | None = None
    error: CollectError | None = None

    @property
    def ok(self) -> bool:
        """True exactly when there was no error (a PROCESSING result may still be ok)."""
        return self.error is None

    def unwrap(self) -> CollectResult:
        """Return the result, or raise the error.

        Raises:
            CollectError: The error this order ended with.
        """
        if self.error is not None:
            raise self.error
        if self.result is None:
            raise CollectError(f"order {self.order_number} has neither a result nor an error")
        return self.result

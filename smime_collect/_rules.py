"""The CollectSMIME endpoint's rules and codes, in one place.

Quoted from the endpoint's page (``docs/reference/endpoint.md`` restates it): the field limits,
which combinations of ``queryType``, ``responseType`` and ``responseEncoding`` are allowed
(``combination_error``), and what each negative status code means (``CODES``): its message, what
to do about it, and whether it is retried, stops a batch or slows the account.  The client, the
exceptions, the command line and the simulator (``smime_collect.testing``) all read it, so they
cannot drift.  No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import attrs

__all__ = [
    "BINARY_RESPONSE_TYPES",
    "CHAIN_ONLY_RESPONSE_TYPES",
    "CODES",
    "FIELD",
    "MAX_LOGIN_NAME",
    "MAX_LOGIN_PASSWORD",
    "Code",
    "code_info",
    "combination_error",
]

# "loginName  required  string  64 chars"
MAX_LOGIN_NAME: Final = 64
# "loginPassword  required  string  128 chars"
MAX_LOGIN_PASSWORD: Final = 128


class FIELD:
    """The form field names, exactly as the endpoint spells them."""

    LOGIN_NAME: Final = "loginName"
    LOGIN_PASSWORD: Final = "loginPassword"  # noqa: S105 -- a field name, not a secret
    ORDER_NUMBER: Final = "orderNumber"
    QUERY_TYPE: Final = "queryType"
    RESPONSE_TYPE: Final = "responseType"
    RESPONSE_ENCODING: Final = "responseEncoding"
    SHOW_VALIDITY_PERIOD: Final = "showValidityPeriod"

    REQUIRED: Final = (LOGIN_NAME, LOGIN_PASSWORD, ORDER_NUMBER, QUERY_TYPE)
    OPTIONAL: Final = (RESPONSE_TYPE, RESPONSE_ENCODING, SHOW_VALIDITY_PERIOD)


# responseType: "1 — Netscape Certificate Sequence. queryType must be 1."
#               "2 — PKCS7. queryType must be 1."   "4 — CMMF. queryType must be 1."
# (3, individually encoded, goes with any queryType.)  Wire values of ResponseType.
CHAIN_ONLY_RESPONSE_TYPES: Final = frozenset({1, 2, 4})

# responseEncoding: "1 — Binary encoded. queryType must be 1 and responseType must be 0 or 2."
# responseType 0 (ZIP) is CollectSSL's and not offered here; an omitted responseType is accepted
# too, the server's default for binary being PKCS7 (inferred: docs/reference/endpoint.md,
# "Combinations the endpoint refuses").  None stands for "omitted".
BINARY_RESPONSE_TYPES: Final = frozenset({None, 2})

_CERTIFICATE_AND_CHAIN: Final = 1  # queryType 1
_BINARY: Final = 1  # responseEncoding 1


def combination_error(
    query_type: int, response_type: int | None, response_encoding: int | None
) -> str | None:
    """The field whose value the endpoint refuses in this combination, or None when it is valid.

    The one place the combination rules are written: ``CollectRequest`` raises on it, and the
    simulator answers -4 naming the field it returns.  Takes wire values (``IntEnum`` members
    compare equal to them); None stands for an omitted field.

    Args:
        query_type: ``queryType``.
        response_type: ``responseType``, or None.
        response_encoding: ``responseEncoding``, or None.

    Returns:
        ``FIELD.RESPONSE_TYPE`` for a chain-only container with another query type,
        ``FIELD.RESPONSE_ENCODING`` for binary outside queryType 1 with PKCS7 (or no type),
        else None.
    """
    chain_query = query_type == _CERTIFICATE_AND_CHAIN
    if response_type in CHAIN_ONLY_RESPONSE_TYPES and not chain_query:
        return FIELD.RESPONSE_TYPE
    if response_encoding == _BINARY and not (
        chain_query and response_type in BINARY_RESPONSE_TYPES
    ):
        return FIELD.RESPONSE_ENCODING
    return None


@attrs.frozen
class Code:
    """What one negative status code means, to the client, the simulator and the user.

    Attributes:
        value: The code, e.g. -16.
        message: The endpoint's documented message; ``{}`` stands for an argument's name.
        hint: What the caller should do about it (the second half of ``str(SectigoError)``).
        transient: Worth retrying: the same request may succeed later.
        account_level: A failure of the account or of the request's shape, not of one order:
            the same answer awaits every other order, so a batch stops on it.
        rate_limited: The account calls too fast: every request of the client waits.
    """

    value: int
    message: str
    hint: str
    transient: bool = False
    account_level: bool = False
    rate_limited: bool = False


# "Error codes": the documented messages, "xxxx" standing for an argument name.  -42 comes from a
# sibling Sectigo API ("Call limit reached, please try again later").  Failed logins lock accounts,
# so -16 is never retried, and stops a batch.  docs/reference/endpoint.md, "Status and error
# codes", explains each column.
CODES: Final[Mapping[int, Code]] = {
    code.value: code
    for code in (
        Code(
            -1,
            "Request was not made over https!",
            "use an https:// URL: the endpoint refuses plain HTTP",
            account_level=True,
        ),
        Code(
            -2,
            "Unrecognised argument!",
            "the request carried a field the endpoint does not know; report this as a bug",
            account_level=True,
        ),
        Code(
            -3,
            "The '{}' argument is missing!",
            "a required field was missing; report this as a bug",
            account_level=True,
        ),
        Code(
            -4,
            "The value of the '{}' argument is invalid!",
            "check the value of the named argument (the order number must be one of your "
            "account's)",
        ),
        Code(
            -14,
            "An unknown error occurred!",
            "Sectigo had an internal error; it is retried automatically: try again later",
            transient=True,
        ),
        Code(
            -16,
            "Incorrect login details, account is locked, password has expired "
            "or your source IP is blocked.",
            "check the login name and password, whether the account is locked or the password "
            "expired, and your source-IP allow-list; do not retry blindly, failed logins lock "
            "accounts",
            account_level=True,
        ),
        Code(
            -17,
            "Request used GET rather than POST!",
            "the request must be a POST; report this as a bug",
            account_level=True,
        ),
        Code(
            -20,
            "The certificate request has been rejected!",
            "the certificate request was rejected: place a new order",
        ),
        Code(
            -21,
            "The certificate has been revoked!",
            "the certificate was revoked: place a new order",
        ),
        Code(
            -22,
            "Still awaiting payment!",
            "the order is awaiting payment: pay it in Sectigo's portal, then collect again",
        ),
        Code(
            -42,
            "Call limit reached, please try again later",
            "Sectigo's call limit was reached: lower max_concurrency or wait before retrying",
            transient=True,
            rate_limited=True,
        ),
        Code(
            -91,
            "Permission denied! '{}'",
            "the account lacks the permission named in the message: ask your Sectigo administrator",
        ),
    )
}


def code_info(code: int) -> Code:
    """What ``code`` means; an undocumented code is neither transient nor account-level.

    Args:
        code: A negative CollectSMIME status code.

    Returns:
        Its entry in ``CODES``, or one that says the code is undocumented.
    """
    known = CODES.get(code)
    if known is not None:
        return known
    return Code(code, "", "an undocumented Sectigo error; contact Sectigo support")

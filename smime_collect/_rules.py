"""The CollectSMIME endpoint's rules, in one table.

Quoted from the endpoint's own page ("Request for CollectSMIME"); the client validates requests
against it and the simulator (``smime_collect.testing``) enforces it, so the two cannot drift.
Pure data: no I/O.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ACCOUNT_LEVEL_CODES",
    "BINARY_RESPONSE_TYPES",
    "CHAIN_ONLY_RESPONSE_TYPES",
    "ERROR_MESSAGES",
    "FIELD",
    "MAX_LOGIN_NAME",
    "MAX_LOGIN_PASSWORD",
    "TRANSIENT_CODES",
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
# too (the server's default for binary is PKCS7).  None stands for "omitted".
BINARY_RESPONSE_TYPES: Final = frozenset({None, 2})

# "Error codes": the documented messages, "xxxx" standing for an argument name.  -42 comes from a
# sibling Sectigo API ("Call limit reached, please try again later").
ERROR_MESSAGES: Final[dict[int, str]] = {
    -1: "Request was not made over https!",
    -2: "Unrecognised argument!",
    -3: "The '{}' argument is missing!",
    -4: "The value of the '{}' argument is invalid!",
    -14: "An unknown error occurred!",
    -16: (
        "Incorrect login details, account is locked, password has expired "
        "or your source IP is blocked."
    ),
    -17: "Request used GET rather than POST!",
    -20: "The certificate request has been rejected!",
    -21: "The certificate has been revoked!",
    -22: "Still awaiting payment!",
    -42: "Call limit reached, please try again later",
    -91: "Permission denied! '{}'",
}

# Worth retrying: Sectigo's own hiccup, and its rate limit.
TRANSIENT_CODES: Final = frozenset({-14, -42})

# Failures of the account or of the request's shape, not of one order: the same answer awaits
# every other order, and repeating a failed login locks accounts.  A batch stops on these.
ACCOUNT_LEVEL_CODES: Final = frozenset({-1, -2, -3, -16, -17})

"""Collect S/MIME certificates from Sectigo's CollectSMIME endpoint, asynchronously.

The public API is re-exported here; everything in underscore modules is private.
"""

from __future__ import annotations

from ._certs import CertificateChain, load_certificates
from ._client import DEFAULT_URL, CollectClient
from ._exceptions import (
    AuthenticationError,
    AwaitingPaymentError,
    CallLimitError,
    CertificateFormatError,
    CertificateRejectedError,
    CertificateRevokedError,
    ChainError,
    CollectError,
    HttpsRequiredError,
    InvalidArgumentError,
    InvalidRequestError,
    MissingArgumentError,
    PermissionDeniedError,
    PollTimeoutError,
    PostRequiredError,
    ResponseFormatError,
    SectigoError,
    TransportError,
    UnknownServerError,
    UnrecognisedArgumentError,
)
from ._models import (
    CollectOutcome,
    CollectRequest,
    CollectResult,
    QueryType,
    ResponseEncoding,
    ResponseType,
    Status,
    ValidityPeriod,
)
from ._polling import RetryPolicy
from ._protocol import parse_response

__version__ = "0.1.0"

__all__ = [  # noqa: RUF022 -- plain sorted() order, which test_public_api checks
    "AuthenticationError",
    "AwaitingPaymentError",
    "CallLimitError",
    "CertificateChain",
    "CertificateFormatError",
    "CertificateRejectedError",
    "CertificateRevokedError",
    "ChainError",
    "CollectClient",
    "CollectError",
    "CollectOutcome",
    "CollectRequest",
    "CollectResult",
    "DEFAULT_URL",
    "HttpsRequiredError",
    "InvalidArgumentError",
    "InvalidRequestError",
    "MissingArgumentError",
    "PermissionDeniedError",
    "PollTimeoutError",
    "PostRequiredError",
    "QueryType",
    "ResponseEncoding",
    "ResponseFormatError",
    "ResponseType",
    "RetryPolicy",
    "SectigoError",
    "Status",
    "TransportError",
    "UnknownServerError",
    "UnrecognisedArgumentError",
    "ValidityPeriod",
    "load_certificates",
    "parse_response",
]

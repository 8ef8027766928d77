"""Collect S/MIME certificates from Sectigo's CollectSMIME endpoint, asynchronously.

The public API is re-exported here; everything in underscore modules is private.  The layers,
from the bottom up (``pyproject.toml``'s import contracts keep each to those below it):

- ``_enums``, ``_rules``: the wire values and the endpoint's rule and code table;
- ``_exceptions``: the error hierarchy;
- ``_certs/``: certificate data in any format in, a classified chain out (sans-I/O);
- ``_models``, ``_protocol``, ``_polling``: requests, responses and retry/poll decisions (sans-I/O);
- ``_client/``: ``CollectClient``, the only layer that talks HTTP;
- ``_cli/``: the ``smime-collect`` command;
- ``testing``: the public simulator, beside the layers.
"""

from __future__ import annotations

from ._certs import CertificateChain, load_certificates
from ._client import DEFAULT_URL, CollectClient, LocalBudget
from ._exceptions import (
    AuthenticationError,
    AwaitingPaymentError,
    BudgetUnavailableError,
    CallLimitError,
    CertificateFormatError,
    CertificateRejectedError,
    CertificateRevokedError,
    ChainError,
    ClientClosedError,
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
    "BudgetUnavailableError",
    "CallLimitError",
    "CertificateChain",
    "CertificateFormatError",
    "CertificateRejectedError",
    "CertificateRevokedError",
    "ChainError",
    "ClientClosedError",
    "CollectClient",
    "CollectError",
    "CollectOutcome",
    "CollectRequest",
    "CollectResult",
    "DEFAULT_URL",
    "HttpsRequiredError",
    "InvalidArgumentError",
    "InvalidRequestError",
    "LocalBudget",
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

# Public classes and functions say they are smime_collect's, as httpx's do: tracebacks and reprs
# show ``smime_collect.TransportError``, not a private module path.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) or callable(_obj):
        _obj.__module__ = "smime_collect"
del _name, _obj

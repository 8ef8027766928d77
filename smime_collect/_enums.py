"""The wire enums: each member's value is what the endpoint sends or expects.

A leaf module: it imports nothing of smime_collect's, so anything may import it without a cycle.
"""

import enum

__all__ = ["QueryType", "ResponseEncoding", "ResponseType", "Status"]


class QueryType(enum.IntEnum):
    """What to ask for (``queryType``)."""

    STATUS = 0
    """The status only."""
    CERTIFICATE_AND_CHAIN = 1
    """The status, the certificate and its intermediates/roots."""
    CERTIFICATE = 2
    """The status and the end-entity certificate only."""
    CA_BUNDLE = 3
    """The status and the intermediates/roots only."""


class ResponseType(enum.IntEnum):
    """The container of the certificate data (``responseType``)."""

    NETSCAPE_SEQUENCE = 1
    PKCS7 = 2
    INDIVIDUAL = 3
    """Individually encoded: concatenated PEM certificates."""
    CMMF = 4


class ResponseEncoding(enum.IntEnum):
    """How the certificate data is encoded (``responseEncoding``)."""

    BASE64 = 0
    BINARY = 1


class Status(enum.IntEnum):
    """The non-negative status on line 1 of a response."""

    PROCESSING = 0
    """Being processed by Sectigo."""
    AVAILABLE = 1
    """Certificates available (status-only queries say this)."""
    ATTACHED = 2
    """Certificates attached to this response."""

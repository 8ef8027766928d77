"""Everything smime_collect raises on purpose.

The hierarchy::

    CollectError
    ├── InvalidRequestError (also ValueError)   bad arguments, found before anything is sent
    ├── ResponseFormatError                     a body that is not a CollectSMIME response
    │   └── CertificateFormatError              certificate data that cannot be loaded
    ├── ChainError                              CertificateChain.verify() found a broken link
    ├── ClientClosedError (also RuntimeError)   a call on a closed CollectClient
    ├── TransportError                          network or HTTP failure (after retries)
    ├── BudgetUnavailableError                  a shared account budget cannot be reached
    ├── PollTimeoutError (also TimeoutError)    wait_for_certificate ran out of time
    └── SectigoError                            the endpoint answered with a negative status
        ├── HttpsRequiredError          -1
        ├── UnrecognisedArgumentError   -2
        ├── MissingArgumentError        -3
        ├── InvalidArgumentError        -4
        ├── UnknownServerError         -14   (transient: retried)
        ├── AuthenticationError        -16
        ├── PostRequiredError          -17
        ├── CertificateRejectedError   -20
        ├── CertificateRevokedError    -21
        ├── AwaitingPaymentError       -22
        ├── CallLimitError             -42   (transient: retried, slows the whole client)
        └── PermissionDeniedError      -91

No exception message ever contains the login password: messages are built from codes,
server messages about *other* fields, order numbers and HTTP statuses only.
"""

import re
from typing import Any, ClassVar

from . import _rules
from ._enums import Status

__all__ = [
    "AuthenticationError",
    "AwaitingPaymentError",
    "BudgetUnavailableError",
    "CallLimitError",
    "CertificateFormatError",
    "CertificateRejectedError",
    "CertificateRevokedError",
    "ChainError",
    "ClientClosedError",
    "CollectError",
    "HttpsRequiredError",
    "InvalidArgumentError",
    "InvalidRequestError",
    "MissingArgumentError",
    "PermissionDeniedError",
    "PollTimeoutError",
    "PostRequiredError",
    "ResponseFormatError",
    "SectigoError",
    "TransportError",
    "UnknownServerError",
    "UnrecognisedArgumentError",
]


class CollectError(Exception):
    """Base class of every error smime_collect raises on purpose."""


class InvalidRequestError(CollectError, ValueError):
    """Bad arguments or configuration, found before anything was sent.

    Also a call that does not fit the value it is made on, such as
    ``CollectResult.require_chain()`` on a result without certificates.
    """


class ResponseFormatError(CollectError):
    """The server sent a body that is not a valid CollectSMIME response."""


class CertificateFormatError(ResponseFormatError):
    """Certificate data that cannot be loaded; the message names what was seen."""


class ChainError(CollectError):
    """A link of a certificate chain does not verify."""


class TransportError(CollectError):
    """A network failure or an HTTP error status, after any retries.

    Attributes:
        status_code: The HTTP status of the last response, or None for a network failure.
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class BudgetUnavailableError(CollectError):
    """The account budget shared with other processes (on Redis) cannot be reached.

    Nothing was sent: a request goes out only with a slot of its budget.  Raised after the
    usual retries of a transient failure; the order is not lost, collect it again later.
    """


class ClientClosedError(CollectError, RuntimeError):
    """A call on a CollectClient that has been closed (or whose given http_client has been)."""


class PollTimeoutError(CollectError, TimeoutError):
    """The certificate was not ready before the polling deadline.

    Attributes:
        order_number: The order that was being awaited.
        last_status: The last status the server reported, or None if no poll succeeded.
        timeout: The seconds the order was given.
        last_error: The failure of the last attempt when it failed (a network outage, a 429),
            or None when the last attempt got an answer.  The message names it too.
    """

    def __init__(
        self,
        order_number: int,
        last_status: Status | None,
        timeout: float,
        last_error: CollectError | None = None,
    ) -> None:
        status = "no answer" if last_status is None else last_status.name
        message = (
            f"order {order_number} was not ready after {timeout:g} s (last status: {status}); "
            "wait longer or poll again later: the order is not lost"
        )
        if last_error is not None:
            # Requests that failed until the deadline are not "still processing": say what failed.
            message += f"; last error: {short_reason(last_error, order_number)}"
        super().__init__(message)
        self.order_number = order_number
        self.last_status = last_status
        self.timeout = timeout
        self.last_error = last_error

    def __reduce__(self) -> tuple[Any, ...]:
        # BaseException's own reduce would call the class with the message where order_number
        # belongs.  Rebuild from the fields, then restore the state BaseException keeps: the
        # message as it stands and the instance dict (notes from add_note() live there).
        fields = (self.order_number, self.last_status, self.timeout, self.last_error)
        return (type(self), fields, {**self.__dict__, "args": self.args})


def short_reason(error: CollectError, order_number: int) -> str:
    """An error in a few words, for a text that names its order already.

    Args:
        error: The error to describe.
        order_number: The order the surrounding text names.

    Returns:
        The Sectigo code and message, or the error's text without its order and hint.
    """
    if isinstance(error, SectigoError):
        return f"Sectigo error {error.code} ({error.message or 'no message'})"
    # TransportError messages start with "order N: " and end with " -- " and a hint.
    return str(error).split(" -- ", 1)[0].removeprefix(f"order {order_number}: ")


# The quoted argument name in -3/-4 messages: "The 'orderNumber' argument is missing!".
_ARGUMENT = re.compile(r"'([^']*)'")


class SectigoError(CollectError):
    """The endpoint answered with a negative status code.

    Attributes:
        code: The status code, e.g. -16.
        message: The server's message (line 2 of the body), ``""`` when there was none.
        order_number: The order the request was about, when known.
    """

    code_value: ClassVar[int | None] = None
    _by_code: ClassVar[dict[int, type["SectigoError"]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.code_value is not None:
            SectigoError._by_code[cls.code_value] = cls

    def __init__(self, code: int, message: str = "", order_number: int | None = None) -> None:
        self.code = code
        self.message = message
        self.order_number = order_number
        super().__init__(code, message, order_number)

    def __str__(self) -> str:
        about = f"order {self.order_number}: " if self.order_number is not None else ""
        said = self.message or "(no message)"
        hint = _rules.code_info(self.code).hint
        return f"{about}Sectigo error {self.code}: {said} -- {hint}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
            f"order_number={self.order_number!r})"
        )

    @classmethod
    def from_code(
        cls, code: int, message: str = "", order_number: int | None = None
    ) -> "SectigoError":
        """Build the subclass that stands for ``code`` (a plain SectigoError when unknown).

        Args:
            code: A negative CollectSMIME status code.
            message: The server's message.
            order_number: The order the request was about, if known.

        Returns:
            An instance of the matching subclass.
        """
        klass = SectigoError._by_code.get(code, SectigoError)
        return klass(code, message, order_number)


class _ArgumentError(SectigoError):
    """Shared by -3 and -4, whose messages quote the argument's name."""

    def __init__(self, code: int, message: str = "", order_number: int | None = None) -> None:
        super().__init__(code, message, order_number)
        match = _ARGUMENT.search(message)
        self.argument: str | None = match.group(1) if match else None


class HttpsRequiredError(SectigoError):
    """-1: the request was not made over HTTPS."""

    code_value = -1


class UnrecognisedArgumentError(SectigoError):
    """-2: the request carried an argument the endpoint does not recognise."""

    code_value = -2


class MissingArgumentError(_ArgumentError):
    """-3: a required argument is missing; ``.argument`` names it."""

    code_value = -3


class InvalidArgumentError(_ArgumentError):
    """-4: an argument's value is invalid; ``.argument`` names it."""

    code_value = -4


class UnknownServerError(SectigoError):
    """-14: an unknown error occurred at Sectigo (transient, retried)."""

    code_value = -14


class AuthenticationError(SectigoError):
    """-16: wrong login, locked account, expired password or blocked source IP."""

    code_value = -16


class PostRequiredError(SectigoError):
    """-17: the request used GET rather than POST."""

    code_value = -17


class CertificateRejectedError(SectigoError):
    """-20: the certificate request has been rejected."""

    code_value = -20


class CertificateRevokedError(SectigoError):
    """-21: the certificate has been revoked."""

    code_value = -21


class AwaitingPaymentError(SectigoError):
    """-22: the order is still awaiting payment."""

    code_value = -22


class CallLimitError(SectigoError):
    """-42: call limit reached (documented by a sibling API; transient, slows the client)."""

    code_value = -42


class PermissionDeniedError(SectigoError):
    """-91: the account lacks a permission."""

    code_value = -91

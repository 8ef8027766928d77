"""The error hierarchy, SectigoError.from_code, .argument, the hints in str(), and pickling."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable

import pytest

import smime_collect
from smime_collect import (
    AuthenticationError,
    AwaitingPaymentError,
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
    Status,
    TransportError,
    UnknownServerError,
    UnrecognisedArgumentError,
)
from smime_collect._rules import CODES as RULES

CODES: dict[int, type[SectigoError]] = {
    -1: HttpsRequiredError,
    -2: UnrecognisedArgumentError,
    -3: MissingArgumentError,
    -4: InvalidArgumentError,
    -14: UnknownServerError,
    -16: AuthenticationError,
    -17: PostRequiredError,
    -20: CertificateRejectedError,
    -21: CertificateRevokedError,
    -22: AwaitingPaymentError,
    -42: CallLimitError,
    -91: PermissionDeniedError,
}


# The error tree of README's "Errors" section: each class and the bases it promises.
BASES: dict[type[Exception], tuple[type[BaseException], ...]] = {
    CollectError: (Exception,),
    InvalidRequestError: (CollectError, ValueError),
    ResponseFormatError: (CollectError,),
    CertificateFormatError: (ResponseFormatError,),
    ChainError: (CollectError,),
    ClientClosedError: (CollectError, RuntimeError),
    TransportError: (CollectError,),
    PollTimeoutError: (CollectError, TimeoutError),
    SectigoError: (CollectError,),
}


class TestHierarchy:
    """Every class has the bases of the documented error tree (README, "Errors")."""

    @pytest.mark.parametrize(
        ("klass", "bases"),
        [*BASES.items(), *((klass, (SectigoError,)) for klass in CODES.values())],
        ids=lambda v: v.__name__ if isinstance(v, type) else "",
    )
    def test_bases(self, klass: type, bases: tuple[type, ...]) -> None:
        """The class derives from each of its documented bases."""
        for base in bases:
            assert issubclass(klass, base)

    def test_every_error_is_exported(self) -> None:
        """Every error class of the tree is importable from the top-level package, by __all__."""
        for klass in [*BASES, *CODES.values()]:
            assert getattr(smime_collect, klass.__name__) is klass
            assert klass.__name__ in smime_collect.__all__


class TestFromCode:
    """SectigoError.from_code builds one class per documented code."""

    @pytest.mark.parametrize(("code", "klass"), CODES.items(), ids=str)
    def test_class_per_code(self, code: int, klass: type[SectigoError]) -> None:
        """Each documented code gets its class, keeping code, message and order number."""
        message = RULES[code].message.format("orderNumber")
        error = SectigoError.from_code(code, message, order_number=77)
        assert type(error) is klass
        assert (error.code, error.message, error.order_number) == (code, message, 77)
        assert message in str(error)
        assert str(code) in str(error)
        assert "order 77" in str(error)
        assert SectigoError.from_code(code, message).order_number is None

    @pytest.mark.parametrize("code", [-5, -99, -1000])
    def test_unknown_code(self, code: int) -> None:
        """An undocumented negative code gives a plain SectigoError that keeps .code."""
        error = SectigoError.from_code(code, "something new")
        assert type(error) is SectigoError
        assert error.code == code
        assert error.order_number is None
        assert "contact Sectigo" in str(error)

    def test_empty_message(self) -> None:
        """An error with no message line still reads well."""
        error = SectigoError.from_code(-14)
        assert error.message == ""
        assert "(no message)" in str(error)

    @pytest.mark.parametrize(
        ("code", "hint"),
        [
            (-16, "source-IP allow-list"),
            (-1, "https://"),
            (-22, "awaiting payment"),
            (-42, "max_concurrency"),
            (-20, "new order"),
        ],
    )
    def test_hint_says_what_to_do(self, code: int, hint: str) -> None:
        """str() adds a hint that tells the user what to do."""
        assert hint in str(SectigoError.from_code(code, RULES[code].message))

    def test_every_documented_code_has_a_hint(self) -> None:
        """No documented code falls back to the generic hint."""
        for code in CODES:
            assert "undocumented" not in str(SectigoError.from_code(code))

    @pytest.mark.parametrize("code", [-3, -4])
    def test_argument_parsed(self, code: int) -> None:
        """-3 and -4 expose the quoted argument's name."""
        error = SectigoError.from_code(code, RULES[code].message.format("collectionCode"))
        assert isinstance(error, MissingArgumentError | InvalidArgumentError)
        assert error.argument == "collectionCode"

    @pytest.mark.parametrize("message", ["", "Something else"])
    @pytest.mark.parametrize("code", [-3, -4])
    def test_argument_absent(self, code: int, message: str) -> None:
        """Without a quoted name, .argument is None."""
        error = SectigoError.from_code(code, message)
        assert error.argument is None  # type: ignore[attr-defined]

    def test_pickles(self) -> None:
        """Errors survive pickling (multiprocessing, logging handlers)."""
        error = SectigoError.from_code(-4, "The value of the 'orderNumber' argument is invalid!", 5)
        copy = pickle.loads(pickle.dumps(error))  # noqa: S301 -- our own object
        assert type(copy) is InvalidArgumentError
        assert (copy.code, copy.message, copy.order_number, copy.argument) == (
            -4,
            error.message,
            5,
            "orderNumber",
        )


class TestOtherErrors:
    """TransportError and PollTimeoutError carry what the caller needs."""

    @pytest.mark.parametrize("status_code", [503, None])
    def test_transport_error_survives_pickling(self, status_code: int | None) -> None:
        """The HTTP status and the message cross a process boundary (multiprocessing, logging)."""
        error = TransportError("order 5: HTTP 503 -- retried", status_code=status_code)
        copy = pickle.loads(pickle.dumps(error))  # noqa: S301 -- our own object
        assert type(copy) is TransportError
        assert (str(copy), copy.status_code) == (str(error), status_code)

    def test_transport_status_code_is_keyword_only(self) -> None:
        """A status cannot be passed by position, where it would read as a second message part."""
        with pytest.raises(TypeError):
            TransportError("boom", 503)  # type: ignore[misc]

    def test_poll_timeout(self) -> None:
        """PollTimeoutError names the order and its last status, and is a TimeoutError."""
        error = PollTimeoutError(12, Status.PROCESSING, 30.0)
        assert (error.order_number, error.last_status) == (12, Status.PROCESSING)
        assert "order 12" in str(error)
        assert "PROCESSING" in str(error)
        assert isinstance(error, TimeoutError)
        copy = pickle.loads(pickle.dumps(error))  # noqa: S301 -- our own object
        assert (copy.order_number, copy.last_status) == (12, Status.PROCESSING)


def _pickled(error: PollTimeoutError) -> PollTimeoutError:
    """The error after a round trip through pickle, as to another process or a log handler."""
    copied = pickle.loads(pickle.dumps(error))  # noqa: S301 -- our own object
    assert isinstance(copied, PollTimeoutError)
    return copied


class TestPollTimeoutLastError:
    """PollTimeoutError.last_error: what failed last, in the message, through pickle and copy."""

    @pytest.mark.parametrize(
        ("last_error", "reason"),
        [
            (
                TransportError(
                    "order 12: the request failed: connection refused -- check the network",
                    status_code=None,
                ),
                "the request failed: connection refused",
            ),
            (TransportError("order 12: HTTP 429 -- slow down", status_code=429), "HTTP 429"),
            (CallLimitError(-42, "Call limit reached", 12), "Sectigo error -42 (Call limit"),
            (UnknownServerError(-14, "", 12), "Sectigo error -14 (no message)"),
        ],
        ids=["network", "http-429", "sectigo-42", "sectigo-14-no-message"],
    )
    def test_the_message_names_the_last_error(self, last_error: CollectError, reason: str) -> None:
        """The last failure is named in a few words, without its order or hint repeated."""
        error = PollTimeoutError(12, None, 30.0, last_error)
        text = str(error)
        assert error.last_error is last_error
        assert f"; last error: {reason}" in text
        assert text.count("order 12") == 1
        assert "-- " not in text.split("last error:", 1)[1]

    def test_no_last_error_by_default(self) -> None:
        """Without a failure the attribute is None and the message does not mention one."""
        error = PollTimeoutError(12, Status.PROCESSING, 30.0)
        assert error.last_error is None
        assert "last error" not in str(error)

    @pytest.mark.parametrize(
        "duplicate",
        [_pickled, copy.copy, copy.deepcopy],
        ids=["pickle", "copy", "deepcopy"],
    )
    @pytest.mark.parametrize(
        "last_error",
        [
            TransportError("order 7: HTTP 429 -- slow down", status_code=429),
            CallLimitError(-42, "Call limit reached", 7),
            None,
        ],
        ids=["transport", "sectigo", "none"],
    )
    def test_every_field_survives(
        self,
        duplicate: Callable[[PollTimeoutError], PollTimeoutError],
        last_error: CollectError | None,
    ) -> None:
        """Pickle, copy and deepcopy keep the order, status, timeout, last error and message."""
        error = PollTimeoutError(7, Status.PROCESSING, 45.0, last_error)
        twin = duplicate(error)
        assert type(twin) is PollTimeoutError
        assert (twin.order_number, twin.last_status, twin.timeout) == (7, Status.PROCESSING, 45.0)
        assert str(twin) == str(error)
        if last_error is None:
            assert twin.last_error is None
        else:
            assert type(twin.last_error) is type(last_error)
            assert str(twin.last_error) == str(last_error)
            assert repr(twin.last_error) == repr(last_error)
            assert getattr(twin.last_error, "status_code", None) == getattr(
                last_error, "status_code", None
            )

    @pytest.mark.parametrize("duplicate", [_pickled, copy.copy], ids=["pickle", "copy"])
    def test_notes_and_a_reworded_message_survive(
        self, duplicate: Callable[[PollTimeoutError], PollTimeoutError]
    ) -> None:
        """What BaseException itself keeps across pickle (its notes, its args) is kept too."""
        error = PollTimeoutError(7, None, 45.0)
        error.add_note("while collecting the March batch")
        error.args = (f"{error}; reworded by the caller",)
        twin = duplicate(error)
        assert twin.__notes__ == ["while collecting the March batch"]
        assert str(twin) == str(error)
        assert str(twin).endswith("; reworded by the caller")

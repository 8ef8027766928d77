"""CollectRequest validation and form fields, the enums, ValidityPeriod and CollectOutcome."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest

from smime_collect import (
    CertificateChain,
    CollectError,
    CollectOutcome,
    CollectRequest,
    CollectResult,
    InvalidRequestError,
    QueryType,
    ResponseEncoding,
    ResponseFormatError,
    ResponseType,
    SectigoError,
    Status,
    ValidityPeriod,
)
from smime_collect.testing import IssuedChain

Q, R, E = QueryType, ResponseType, ResponseEncoding


class TestEnums:
    """The enums are IntEnums whose values are the wire values."""

    @pytest.mark.parametrize(
        ("member", "value"),
        [
            (Q.STATUS, 0),
            (Q.CERTIFICATE_AND_CHAIN, 1),
            (Q.CERTIFICATE, 2),
            (Q.CA_BUNDLE, 3),
            (R.NETSCAPE_SEQUENCE, 1),
            (R.PKCS7, 2),
            (R.INDIVIDUAL, 3),
            (R.CMMF, 4),
            (E.BASE64, 0),
            (E.BINARY, 1),
            (Status.PROCESSING, 0),
            (Status.AVAILABLE, 1),
            (Status.ATTACHED, 2),
        ],
        ids=lambda v: getattr(v, "name", str(v)),
    )
    def test_wire_value(self, member: int, value: int) -> None:
        """Each member's value is the number the endpoint uses."""
        assert member == value
        assert int(member) == value

    @pytest.mark.parametrize("enum_type", [Q, R, E, Status])
    def test_exact_members(self, enum_type: type) -> None:
        """No enum has members beyond the wire values the endpoint documents."""
        expected = {
            Q: {"STATUS", "CERTIFICATE_AND_CHAIN", "CERTIFICATE", "CA_BUNDLE"},
            R: {"NETSCAPE_SEQUENCE", "PKCS7", "INDIVIDUAL", "CMMF"},
            E: {"BASE64", "BINARY"},
            Status: {"PROCESSING", "AVAILABLE", "ATTACHED"},
        }[enum_type]
        assert {m.name for m in enum_type} == expected


class TestCollectRequestValidation:
    """CollectRequest refuses at construction what the endpoint would refuse."""

    def test_defaults(self) -> None:
        """The default query is certificate and chain, everything else left to the server."""
        request = CollectRequest(1234)
        assert request.order_number == 1234
        assert request.query_type is Q.CERTIFICATE_AND_CHAIN
        assert request.response_type is None
        assert request.response_encoding is None
        assert request.show_validity_period is False

    def test_is_frozen(self) -> None:
        """A request cannot be changed after validation."""
        request = CollectRequest(1)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            request.order_number = 2  # type: ignore[misc]

    @pytest.mark.parametrize(
        "order_number",
        [0, -1, True, False, 1.0, 1.5, None, "", "abc", "-5", "0", "1e3", "١٢", b"12", [1]],
        ids=repr,
    )
    def test_bad_order_number(self, order_number: object) -> None:
        """Only positive ints (bools excluded) and numeric strings are order numbers."""
        with pytest.raises(InvalidRequestError, match="order_number"):
            CollectRequest(order_number)  # type: ignore[arg-type]

    @pytest.mark.parametrize(("given", "expected"), [("42", 42), (" 7 ", 7), (10**12, 10**12)])
    def test_order_number_converted(self, given: object, expected: int) -> None:
        """A numeric string is converted to an int."""
        assert CollectRequest(given).order_number == expected  # type: ignore[arg-type]

    def test_plain_ints_become_members(self) -> None:
        """Plain ints for the enum fields are converted to members."""
        request = CollectRequest(1, query_type=1, response_type=2, response_encoding=1)  # type: ignore[arg-type]
        assert request.query_type is Q.CERTIFICATE_AND_CHAIN
        assert request.response_type is R.PKCS7
        assert request.response_encoding is E.BINARY

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("query_type", 4),
            ("query_type", -1),
            ("query_type", None),
            ("query_type", True),
            ("query_type", "1"),
            ("response_type", 0),
            ("response_type", 5),
            ("response_type", "PKCS7"),
            ("response_type", 1.0),
            ("response_encoding", 2),
            ("response_encoding", False),
        ],
    )
    def test_not_a_member(self, field: str, value: object) -> None:
        """A value that is not a member of its enum is refused, naming the field."""
        with pytest.raises(InvalidRequestError, match=field):
            CollectRequest(1, **{field: value})  # type: ignore[arg-type]

    @pytest.mark.parametrize("response_type", [R.NETSCAPE_SEQUENCE, R.PKCS7, R.CMMF])
    @pytest.mark.parametrize("query_type", [Q.STATUS, Q.CERTIFICATE, Q.CA_BUNDLE])
    def test_container_needs_chain_query(self, query_type: Q, response_type: R) -> None:
        """Netscape, PKCS7 and CMMF need queryType 1 ("queryType must be 1")."""
        with pytest.raises(InvalidRequestError, match="CERTIFICATE_AND_CHAIN"):
            CollectRequest(1, query_type=query_type, response_type=response_type)

    @pytest.mark.parametrize("query_type", list(Q))
    def test_individual_goes_with_any_query(self, query_type: Q) -> None:
        """Individually encoded certificates may be asked for with every query type."""
        assert CollectRequest(1, query_type=query_type, response_type=R.INDIVIDUAL)

    @pytest.mark.parametrize(
        ("query_type", "response_type", "allowed"),
        [
            (Q.CERTIFICATE_AND_CHAIN, None, True),
            (Q.CERTIFICATE_AND_CHAIN, R.PKCS7, True),
            (Q.CERTIFICATE_AND_CHAIN, R.INDIVIDUAL, False),
            (Q.CERTIFICATE_AND_CHAIN, R.NETSCAPE_SEQUENCE, False),
            (Q.CERTIFICATE_AND_CHAIN, R.CMMF, False),
            (Q.STATUS, None, False),
            (Q.CERTIFICATE, None, False),
            (Q.CA_BUNDLE, None, False),
            (Q.CERTIFICATE, R.INDIVIDUAL, False),
        ],
    )
    def test_binary_rule(self, query_type: Q, response_type: R | None, allowed: bool) -> None:
        """Binary encoding needs queryType 1 and responseType PKCS7 or none."""
        make = lambda: CollectRequest(  # noqa: E731
            1, query_type=query_type, response_type=response_type, response_encoding=E.BINARY
        )
        if allowed:
            assert make().wants_binary
        else:
            with pytest.raises(InvalidRequestError, match="BINARY"):
                make()

    @pytest.mark.parametrize("query_type", list(Q))
    def test_base64_goes_with_anything_allowed(self, query_type: Q) -> None:
        """Base64 encoding adds no constraint."""
        request = CollectRequest(1, query_type=query_type, response_encoding=E.BASE64)
        assert not request.wants_binary

    @pytest.mark.parametrize("encoding", [None, *E], ids=lambda v: getattr(v, "name", "omitted"))
    @pytest.mark.parametrize(
        "response_type", [None, *R], ids=lambda v: getattr(v, "name", "omitted")
    )
    @pytest.mark.parametrize("query_type", list(Q), ids=lambda v: v.name)
    def test_every_combination(
        self, query_type: Q, response_type: R | None, encoding: E | None
    ) -> None:
        """Every combination is accepted or refused exactly as the endpoint's two rules say."""
        chain_query = query_type is Q.CERTIFICATE_AND_CHAIN
        container_ok = chain_query or response_type not in (R.NETSCAPE_SEQUENCE, R.PKCS7, R.CMMF)
        binary_ok = encoding is not E.BINARY or (chain_query and response_type in (None, R.PKCS7))
        make = lambda: CollectRequest(  # noqa: E731
            7, query_type=query_type, response_type=response_type, response_encoding=encoding
        )
        if container_ok and binary_ok:
            assert make().response_encoding is encoding
        else:
            with pytest.raises(InvalidRequestError):
                make()

    @pytest.mark.parametrize("value", [1, "Y", None])
    def test_show_validity_must_be_bool(self, value: object) -> None:
        """show_validity_period takes True or False only."""
        with pytest.raises(InvalidRequestError, match="show_validity_period"):
            CollectRequest(1, show_validity_period=value)  # type: ignore[arg-type]

    def test_invalid_request_error_is_value_error(self) -> None:
        """InvalidRequestError is also a ValueError, as argument errors are in Python."""
        with pytest.raises(ValueError, match="order_number"):
            CollectRequest(-3)


class TestFormFields:
    """form_fields gives exactly the x-www-form-urlencoded fields to POST."""

    def test_minimal(self) -> None:
        """The four required fields and nothing else when no option is set."""
        assert CollectRequest(99).form_fields("user", "pw") == {
            "loginName": "user",
            "loginPassword": "pw",
            "orderNumber": "99",
            "queryType": "1",
        }

    def test_every_option(self) -> None:
        """Optional fields appear only when set, with wire values and Y for the flag."""
        request = CollectRequest(
            5,
            query_type=Q.CERTIFICATE_AND_CHAIN,
            response_type=R.PKCS7,
            response_encoding=E.BINARY,
            show_validity_period=True,
        )
        assert request.form_fields("u", "p") == {
            "loginName": "u",
            "loginPassword": "p",
            "orderNumber": "5",
            "queryType": "1",
            "responseType": "2",
            "responseEncoding": "1",
            "showValidityPeriod": "Y",
        }

    def test_base64_encoding_is_sent_when_set(self) -> None:
        """An explicit BASE64 is sent as 0 (set, therefore present); unset options stay out."""
        fields = CollectRequest(5, query_type=Q.STATUS, response_encoding=E.BASE64).form_fields(
            "u", "p"
        )
        assert fields == {
            "loginName": "u",
            "loginPassword": "p",
            "orderNumber": "5",
            "queryType": "0",
            "responseEncoding": "0",
        }

    @pytest.mark.parametrize(
        ("name", "password", "match"),
        [
            ("", "pw", "login_name is empty"),
            ("user", "", "login_password is empty"),
            ("x" * 65, "pw", "login_name is 65 characters"),
            ("user", "p" * 129, "login_password is 129 characters"),
            (None, "pw", "login_name must be a str"),
            ("user", 1234, "login_password must be a str"),
        ],
        ids=["empty-name", "empty-password", "long-name", "long-password", "none", "int"],
    )
    def test_bad_credentials(self, name: object, password: object, match: str) -> None:
        """Empty, non-string or over-long credentials are refused before anything is sent."""
        with pytest.raises(InvalidRequestError, match=match):
            CollectRequest(1).form_fields(name, password)  # type: ignore[arg-type]

    def test_limits_are_inclusive(self) -> None:
        """64 and 128 characters are allowed."""
        fields = CollectRequest(1).form_fields("n" * 64, "p" * 128)
        assert len(fields["loginName"]) == 64
        assert len(fields["loginPassword"]) == 128

    def test_error_never_echoes_password(self) -> None:
        """The message about a too-long password does not contain it."""
        secret = "S3cret-" + "z" * 130
        with pytest.raises(InvalidRequestError) as info:
            CollectRequest(1).form_fields("user", secret)
        assert secret not in str(info.value)
        assert "zzzz" not in repr(info.value)


class TestValidityPeriod:
    """ValidityPeriod.from_line reads DD/MM/YYYY DD/MM/YYYY, day first."""

    def test_day_first(self) -> None:
        """The endpoint page's sample gives 14 May 2013 00:00:00 to 13 May 2014 23:59:59 UTC."""
        period = ValidityPeriod.from_line("14/05/2013 13/05/2014")
        assert period.not_before == datetime(2013, 5, 14, 0, 0, 0, tzinfo=UTC)
        assert period.not_after == datetime(2014, 5, 13, 23, 59, 59, tzinfo=UTC)
        assert period.not_before.utcoffset() is not None

    def test_ambiguous_date_is_day_first(self) -> None:
        """03/04/2025 is the 3rd of April, not the 4th of March."""
        period = ValidityPeriod.from_line("03/04/2025 02/04/2026")
        assert (period.not_before.month, period.not_before.day) == (4, 3)

    @pytest.mark.parametrize(
        "line",
        [
            "",
            "14/05/2013",
            "14/05/2013 13/05/2014 extra",
            "2013-05-14 2014-05-13",
            "05/14/2013 05/13/2014",
            "31/02/2013 01/01/2014",
            "14/05/2014 13/05/2013",
        ],
    )
    def test_malformed(self, line: str) -> None:
        """Anything but two valid dates in order is a ResponseFormatError."""
        with pytest.raises(ResponseFormatError, match="validity"):
            ValidityPeriod.from_line(line)


class TestCollectOutcome:
    """CollectOutcome.ok is True exactly when there is no error."""

    def test_ok_with_processing_result(self) -> None:
        """A PROCESSING result is ok (wait=False)."""
        outcome = CollectOutcome(7, result=CollectResult(7, Status.PROCESSING))
        assert outcome.ok
        assert outcome.unwrap().status is Status.PROCESSING

    def test_error(self) -> None:
        """An outcome with an error is not ok, and unwrap raises the error."""
        error = SectigoError.from_code(-20, "rejected", 7)
        outcome = CollectOutcome(7, error=error)
        assert not outcome.ok
        with pytest.raises(SectigoError) as info:
            outcome.unwrap()
        assert info.value is error

    def test_ok_is_exactly_no_error(self) -> None:
        """Ok follows error alone; unwrap refuses an outcome with nothing to give."""
        empty = CollectOutcome(1)
        assert empty.ok
        with pytest.raises(CollectError, match="neither a result nor an error"):
            empty.unwrap()
        both = CollectOutcome(1, CollectResult(1, Status.AVAILABLE), SectigoError(-14))
        assert not both.ok
        with pytest.raises(SectigoError):
            both.unwrap()

    def test_require_chain_returns_the_chain(self, issued: IssuedChain) -> None:
        """An ATTACHED result gives its chain back, typed as present."""
        chain = CertificateChain.from_certificates(issued.certificates())
        result = CollectResult(1, Status.ATTACHED, chain=chain)
        assert result.require_chain() is chain

    @pytest.mark.parametrize(
        ("status", "why"),
        [
            (Status.PROCESSING, "still being processed"),
            (Status.AVAILABLE, "status query"),
            (Status.ATTACHED, "built without a chain"),
        ],
    )
    def test_require_chain_says_why_there_is_none(self, status: Status, why: str) -> None:
        """A result without certificates raises InvalidRequestError naming the order and why."""
        with pytest.raises(InvalidRequestError, match=f"order 7 .*{status.name}.*{why}"):
            CollectResult(7, status).require_chain()

    def test_values_are_frozen(self) -> None:
        """Results, validity periods and outcomes cannot be changed once made."""
        period = ValidityPeriod.from_line("14/05/2013 13/05/2014")
        result = CollectResult(1, Status.AVAILABLE, validity=period)
        outcome = CollectOutcome(1, result=result)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            result.status = Status.ATTACHED  # type: ignore[misc]
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            period.not_before = period.not_after  # type: ignore[misc]
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            outcome.error = CollectError("late")  # type: ignore[misc]

    def test_result_repr_is_short(self) -> None:
        """The payload shows as a byte count in repr, not as data."""
        result = CollectResult(1, Status.ATTACHED, payload=b"x" * 5000)
        assert "<5000 bytes>" in repr(result)
        assert "xxxx" not in repr(result)

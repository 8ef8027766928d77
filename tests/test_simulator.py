"""The CollectSMIME simulator: every endpoint rule, every rendering, chaos, counters, the socket."""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from hypothesis import given, settings
from hypothesis import strategies as st

from smime_collect import (
    AuthenticationError,
    AwaitingPaymentError,
    CallLimitError,
    CertificateRejectedError,
    CertificateRevokedError,
    CollectRequest,
    HttpsRequiredError,
    InvalidArgumentError,
    InvalidRequestError,
    MissingArgumentError,
    PermissionDeniedError,
    PostRequiredError,
    QueryType,
    ResponseEncoding,
    ResponseType,
    SectigoError,
    Status,
    UnknownServerError,
    UnrecognisedArgumentError,
    parse_response,
)
from smime_collect._protocol import looks_like_asn1_sequence
from smime_collect._rules import FIELD, combination_error
from smime_collect.testing import (
    Chaos,
    Fault,
    ManualClock,
    OrderState,
    Quirks,
    Simulator,
    SimulatorTransport,
    TestCA,
    serve,
)
from smime_collect.testing._asgi import abort
from smime_collect.testing._simulator import ENDPOINT_PATH
from smime_collect.testing.formats import der_tlv

LOGIN = "api-user"
PASSWORD = "s3cret-Pa55"
FIELDS = frozenset(FIELD.REQUIRED + FIELD.OPTIONAL)
NETSCAPE_OID = bytes.fromhex("06096086480186f8420205")


def form(order: int | str = 1001, query: int | str = 1, **extra: str) -> dict[str, str]:
    """The form fields of one request, with the test account's credentials."""
    fields = {
        "loginName": LOGIN,
        "loginPassword": PASSWORD,
        "orderNumber": str(order),
        "queryType": str(query),
    }
    fields.update(extra)
    return fields


# One request's form body, as a client would send it.
FORM = urlencode(form()).encode("ascii")


@pytest.fixture
def sim() -> Simulator:
    """A simulator with one account and one issued order, 1001."""
    simulator = Simulator(seed=1)
    simulator.add_account(LOGIN, PASSWORD)
    simulator.add_order(1001, email="alice@example.com")
    return simulator


@pytest.fixture
async def http(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client wired in-process to ``sim``."""
    async with sim.http_client() as client:
        yield client


async def post(http: httpx.AsyncClient, sim: Simulator, **fields: str) -> httpx.Response:
    """POST ``fields`` (form-encoded) to the simulator."""
    return await http.post(sim.url, data=fields)


def lines(response: httpx.Response) -> list[str]:
    """The body's lines."""
    return response.text.splitlines()


class TestEndpointRules:
    """Every rule of the endpoint page, answered as the page says."""

    @pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
    async def test_anything_but_post_is_code_17(
        self, sim: Simulator, http: httpx.AsyncClient, method: str
    ) -> None:
        """Every other method gets -17 "Request used GET rather than POST!"."""
        response = await http.request(method, sim.url, params=form())
        assert response.status_code == 200
        with pytest.raises(PostRequiredError):
            parse_response(response.content, CollectRequest(1001))

    async def test_plain_http_is_code_1(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """A request whose scheme is http gets -1 "Request was not made over https!"."""
        response = await http.post(sim.url.replace("https://", "http://"), data=form())
        assert lines(response) == ["-1", "Request was not made over https!"]
        with pytest.raises(HttpsRequiredError):
            parse_response(response.content, CollectRequest(1001))

    async def test_plain_http_is_served_when_https_is_not_required(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """require_https=False lets an http request through."""
        sim.require_https = False
        response = await http.post(sim.url.replace("https://", "http://"), data=form())
        assert lines(response)[0] == "2"

    async def test_unknown_field_is_code_2(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """A field the page does not list (here a sibling endpoint's) gets -2."""
        response = await post(http, sim, **form(collectionCode="ABC"))
        assert lines(response) == ["-2", "Unrecognised argument!"]
        with pytest.raises(UnrecognisedArgumentError):
            parse_response(response.content, CollectRequest(1001))

    @pytest.mark.parametrize("missing", ["loginName", "loginPassword", "orderNumber", "queryType"])
    @pytest.mark.parametrize("how", ["absent", "empty"])
    async def test_missing_required_field_is_code_3(
        self, sim: Simulator, http: httpx.AsyncClient, missing: str, how: str
    ) -> None:
        """A required field absent or empty gets -3 naming it."""
        fields = form()
        if how == "absent":
            del fields[missing]
        else:
            fields[missing] = ""
        response = await post(http, sim, **fields)
        assert lines(response) == ["-3", f"The '{missing}' argument is missing!"]
        with pytest.raises(MissingArgumentError) as caught:
            parse_response(response.content, CollectRequest(1001))
        assert caught.value.argument == missing

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("orderNumber", "abc"),
            ("orderNumber", "0"),
            ("orderNumber", "-5"),
            ("orderNumber", "+5"),
            ("orderNumber", "1.5"),
            ("orderNumber", "9" * 40),
            ("queryType", "4"),
            ("queryType", "x"),
            ("responseType", "0"),
            ("responseType", "5"),
            ("responseEncoding", "2"),
            ("responseEncoding", ""),
            ("showValidityPeriod", "y"),
            ("showValidityPeriod", "yes"),
            ("loginName", "x" * 65),
            ("loginPassword", "x" * 129),
        ],
    )
    async def test_invalid_value_is_code_4(
        self, sim: Simulator, http: httpx.AsyncClient, field: str, value: str
    ) -> None:
        """A value out of range gets -4 naming the field."""
        response = await post(http, sim, **{**form(), field: value})
        assert lines(response) == ["-4", f"The value of the '{field}' argument is invalid!"]
        with pytest.raises(InvalidArgumentError) as caught:
            parse_response(response.content, CollectRequest(1001))
        assert caught.value.argument == field

    async def test_field_given_twice_is_code_4(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """Two values for one field: -4 on that field."""
        body = "&".join(f"{k}={v}" for k, v in form().items()) + "&queryType=2"
        response = await http.post(
            sim.url,
            content=body,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert lines(response)[:2] == ["-4", "The value of the 'queryType' argument is invalid!"]

    @pytest.mark.parametrize(
        ("query", "response_type", "encoding"),
        list(itertools.product([0, 1, 2, 3], [None, 1, 2, 3, 4], [None, 0, 1])),
        ids=lambda v: "omitted" if v is None else str(v),
    )
    async def test_combinations_match_the_client_rules(
        self,
        sim: Simulator,
        http: httpx.AsyncClient,
        query: int,
        response_type: int | None,
        encoding: int | None,
    ) -> None:
        """The simulator refuses exactly what CollectRequest refuses: one rule table."""
        extra = {}
        if response_type is not None:
            extra["responseType"] = str(response_type)
        if encoding is not None:
            extra["responseEncoding"] = str(encoding)
        response = await post(http, sim, **form(query=query, **extra))
        try:
            request = CollectRequest(1001, query, response_type, encoding)
        except InvalidRequestError:
            assert lines(response)[0] == "-4"
            assert lines(response)[1] in {
                "The value of the 'responseType' argument is invalid!",
                "The value of the 'responseEncoding' argument is invalid!",
            }
        else:
            expected = Status.AVAILABLE if query == 0 else Status.ATTACHED
            if request.wants_binary:
                assert looks_like_asn1_sequence(response.content)
            else:
                assert lines(response)[0] == str(int(expected))

    async def test_body_that_is_not_a_form_has_no_fields(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """JSON is not x-www-form-urlencoded: the server sees no loginName (-3)."""
        response = await http.post(sim.url, json=form())
        assert lines(response)[:2] == ["-3", "The 'loginName' argument is missing!"]

    async def test_credentials_in_the_query_string_are_ignored(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """Only the body counts: a client that puts fields in the URL gets -3."""
        response = await http.post(sim.url, params=form(), data={})
        assert lines(response)[0] == "-3"

    @pytest.mark.parametrize(
        ("login", "password"), [(LOGIN, "wrong"), ("nobody", PASSWORD), (LOGIN.upper(), PASSWORD)]
    )
    async def test_bad_login_is_code_16_and_counted(
        self, sim: Simulator, http: httpx.AsyncClient, login: str, password: str
    ) -> None:
        """A wrong password or unknown (case-sensitive) login: -16, counted as failed."""
        response = await post(http, sim, **form(loginName=login, loginPassword=password))
        with pytest.raises(AuthenticationError):
            parse_response(response.content, CollectRequest(1001))
        assert sim.stats.failed_logins == 1

    async def test_account_locks_after_failed_logins(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """With lock_after_failed_logins, even the right password gets -16 once locked."""
        sim.lock_after_failed_logins = 2
        for _ in range(2):
            await post(http, sim, **form(loginPassword="wrong"))
        assert sim.account(LOGIN).locked
        response = await post(http, sim, **form())
        assert lines(response)[0] == "-16"
        assert sim.stats.failed_logins == 3

    async def test_unknown_order_is_code_4(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """An order number nobody has gets -4 on orderNumber."""
        response = await post(http, sim, **form(order=999))
        assert lines(response)[1] == "The value of the 'orderNumber' argument is invalid!"

    async def test_order_of_another_account_is_code_4_by_default(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """Another account's order looks like an unknown one: -4, nothing revealed."""
        other = sim.add_account("someone-else", "pw")
        sim.add_order(2002, account=other)
        response = await post(http, sim, **form(order=2002))
        with pytest.raises(InvalidArgumentError) as caught:
            parse_response(response.content, CollectRequest(2002))
        assert caught.value.argument == "orderNumber"

    async def test_order_of_another_account_can_be_code_91(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """foreign_order_code=-91 answers "Permission denied!" instead."""
        sim.foreign_order_code = -91
        sim.add_account("someone-else", "pw")
        sim.add_order(2002, account="someone-else")
        response = await post(http, sim, **form(order=2002))
        with pytest.raises(PermissionDeniedError):
            parse_response(response.content, CollectRequest(2002))

    @pytest.mark.parametrize(
        ("state", "error"),
        [
            (OrderState.REJECTED, CertificateRejectedError),
            (OrderState.REVOKED, CertificateRevokedError),
            (OrderState.AWAITING_PAYMENT, AwaitingPaymentError),
        ],
    )
    async def test_final_error_states(
        self,
        sim: Simulator,
        http: httpx.AsyncClient,
        state: OrderState,
        error: type[SectigoError],
    ) -> None:
        """Rejected -20, revoked -21, awaiting payment -22."""
        sim.add_order(3003, state=state)
        response = await post(http, sim, **form(order=3003))
        with pytest.raises(error):
            parse_response(response.content, CollectRequest(3003))

    @pytest.mark.parametrize("query", [0, 1, 2, 3])
    async def test_processing_order_answers_zero(
        self, sim: Simulator, http: httpx.AsyncClient, query: int
    ) -> None:
        """A processing order answers "0" to every query type."""
        sim.add_order(4004, state=OrderState.PROCESSING)
        response = await post(http, sim, **form(order=4004, query=query))
        assert response.content == b"0\n"

    async def test_ready_after_polls(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """The first N polls answer 0, the next one the certificates."""
        sim.add_order(5005, ready_after_polls=3)
        answers = [lines(await post(http, sim, **form(order=5005)))[0] for _ in range(5)]
        assert answers == ["0", "0", "0", "2", "2"]
        assert sim.order(5005).polls == 5

    async def test_ready_after_seconds_follows_the_injected_clock(
        self, http: httpx.AsyncClient, sim: Simulator
    ) -> None:
        """ready_after_seconds reads the simulator's clock: a ManualClock makes it instant."""
        clock = ManualClock()
        sim.clock = clock
        sim.add_order(6006, ready_after_seconds=30)
        assert lines(await post(http, sim, **form(order=6006, query=0))) == ["0"]
        clock.advance(29.9)
        assert lines(await post(http, sim, **form(order=6006, query=0))) == ["0"]
        clock.advance(0.1)
        assert lines(await post(http, sim, **form(order=6006, query=0))) == ["1"]

    async def test_state_can_change_mid_test(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """Setting order.state revokes an order that was issued a moment ago."""
        assert lines(await post(http, sim, **form()))[0] == "2"
        sim.order(1001).state = OrderState.REVOKED
        assert lines(await post(http, sim, **form()))[0] == "-21"

    async def test_wrong_path_is_http_404(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """Only the endpoint's path answers: a misbuilt URL is an HTTP 404, not a Sectigo code."""
        response = await http.post("https://collectsmime.test/CollectSSL", data=form())
        assert response.status_code == 404

    async def test_huge_request_body_is_http_413(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """A request body past 64 KiB is refused without being read to the end."""
        response = await post(http, sim, **form(loginName="x" * 70_000))
        assert response.status_code == 413


class TestRendering:
    """Every query type, response type and encoding, and the quirks."""

    async def test_default_is_individual_pem_root_first(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """No responseType: concatenated PEM, root first like the page's sample, then parsed."""
        response = await post(http, sim, **form())
        assert response.headers["content-type"] == "text/plain"
        certificates = x509.load_pem_x509_certificates(response.content.partition(b"\n")[2])
        chain = sim.order(1001).chain
        assert chain is not None
        assert certificates == [chain.root, *chain.intermediates, chain.end_entity]
        result = parse_response(response.content, CollectRequest(1001))
        assert result.status is Status.ATTACHED
        assert result.chain is not None
        assert len(result.chain) == 3

    async def test_end_entity_is_an_smime_certificate(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """The leaf carries emailProtection and the order's e-mail as an rfc822Name."""
        response = await post(http, sim, **form(query=2))
        leaf = x509.load_pem_x509_certificate(response.content.partition(b"\n")[2])
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.RFC822Name) == ["alice@example.com"]
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert x509.oid.ExtendedKeyUsageOID.EMAIL_PROTECTION in eku

    async def test_leaf_first_quirk(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """root_first=False lists the end entity first."""
        sim.quirks = Quirks(root_first=False)
        response = await post(http, sim, **form())
        first = x509.load_pem_x509_certificates(response.content.partition(b"\n")[2])[0]
        assert first == sim.order(1001).chain.end_entity  # type: ignore[union-attr]

    async def test_certificate_only_and_ca_bundle(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """QueryType 2 sends the end entity alone; 3 the CA certificates alone."""
        leaf_only = await post(http, sim, **form(query=2))
        cas_only = await post(http, sim, **form(query=3))
        chain = sim.order(1001).chain
        assert chain is not None
        body = leaf_only.content.partition(b"\n")[2]
        assert x509.load_pem_x509_certificates(body) == [chain.end_entity]
        body = cas_only.content.partition(b"\n")[2]
        assert x509.load_pem_x509_certificates(body) == [chain.root, *chain.intermediates]

    async def test_include_root_off(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """include_root=False leaves the self-signed root out."""
        sim.quirks = Quirks(include_root=False)
        response = await post(http, sim, **form())
        assert len(x509.load_pem_x509_certificates(response.content.partition(b"\n")[2])) == 2

    async def test_validity_period_line(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """showValidityPeriod=Y puts the leaf's dates, day first, on line 2."""
        response = await post(http, sim, **form(showValidityPeriod="Y"))
        leaf = sim.order(1001).chain.end_entity  # type: ignore[union-attr]
        start = leaf.not_valid_before_utc.strftime("%d/%m/%Y")
        end = leaf.not_valid_after_utc.strftime("%d/%m/%Y")
        assert lines(response)[1] == f"{start} {end}"
        result = parse_response(response.content, CollectRequest(1001, show_validity_period=True))
        assert result.validity is not None
        assert result.validity.not_before == leaf.not_valid_before_utc
        assert result.validity.not_after == leaf.not_valid_after_utc

    async def test_status_query_with_validity(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """A status query of a ready order: "1" and, when asked, the validity line."""
        response = await post(http, sim, **form(query=0, showValidityPeriod="Y"))
        result = parse_response(
            response.content, CollectRequest(1001, QueryType.STATUS, show_validity_period=True)
        )
        assert result.status is Status.AVAILABLE
        assert result.validity is not None
        assert len(lines(response)) == 2

    async def test_pkcs7_base64_is_bare(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """ResponseType 2 in base64: no PEM armour, a SignedData with all three certificates."""
        response = await post(http, sim, **form(responseType="2"))
        head, _, data = response.content.partition(b"\n")
        assert head == b"2"
        assert b"-----" not in data
        assert len(pkcs7.load_der_pkcs7_certificates(base64.b64decode(data))) == 3

    async def test_pkcs7_binary_is_the_bare_structure(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """ResponseEncoding 1: DER only, no status line, labelled application/pkcs7-mime."""
        response = await post(http, sim, **form(responseType="2", responseEncoding="1"))
        assert response.headers["content-type"] == "application/pkcs7-mime"
        assert looks_like_asn1_sequence(response.content)
        assert response.content.startswith(b"0")  # the trap: 0x30 reads as status "0"
        assert len(pkcs7.load_der_pkcs7_certificates(response.content)) == 3

    async def test_binary_while_processing_is_text(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """Binary only when ready: a processing order still answers the text "0"."""
        sim.add_order(7007, ready_after_polls=1)
        response = await post(http, sim, **form(order=7007, responseEncoding="1"))
        assert response.content == b"0\n"
        request = CollectRequest(7007, response_encoding=ResponseEncoding.BINARY)
        assert parse_response(response.content, request).status is Status.PROCESSING

    async def test_netscape_sequence(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """ResponseType 1: bare base64 of SEQUENCE { nsCertSequence OID, [0] certificates }."""
        response = await post(http, sim, **form(responseType="1"))
        der = base64.b64decode(response.content.partition(b"\n")[2])
        assert looks_like_asn1_sequence(der)
        assert NETSCAPE_OID in der[:16]
        chain = sim.order(1001).chain
        assert chain is not None
        for certificate in chain.certificates():
            assert certificate.public_bytes(Encoding.DER) in der

    @pytest.mark.parametrize("tagging", ["explicit", "implicit"])
    async def test_cmmf(self, sim: Simulator, http: httpx.AsyncClient, tagging: str) -> None:
        """ResponseType 4: CertRepContent with caPubs; the leaf tagged [0] as the quirk says."""
        sim.quirks = Quirks(cmmf_tagging=tagging)  # type: ignore[arg-type]
        response = await post(http, sim, **form(responseType="4"))
        der = base64.b64decode(response.content.partition(b"\n")[2])
        assert looks_like_asn1_sequence(der)
        chain = sim.order(1001).chain
        assert chain is not None
        leaf = chain.end_entity.public_bytes(Encoding.DER)
        # EXPLICIT wraps the certificate in [0]; IMPLICIT replaces its SEQUENCE tag with [0].
        tagged = der_tlv(0xA0, leaf) if tagging == "explicit" else b"\xa0" + leaf[1:]
        assert tagged in der
        for ca in (*chain.intermediates, chain.root):
            assert ca.public_bytes(Encoding.DER) in der

    async def test_sloppy_markers_and_crlf(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """The page's malformed markers and CRLF line endings, on every line."""
        sim.quirks = Quirks(sloppy_pem_markers=True, crlf=True)
        response = await post(http, sim, **form(showValidityPeriod="Y"))
        assert b"----- BEGIN CERTIFICATE -----\r\n" in response.content
        assert response.content.endswith(b"---- END CERTIFICATE -----\r\n")
        assert response.content.count(b"\n") == response.content.count(b"\r\n")
        result = parse_response(response.content, CollectRequest(1001, show_validity_period=True))
        assert result.validity is not None

    async def test_crlf_error_body(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """Errors follow the CRLF quirk too."""
        sim.quirks = Quirks(crlf=True)
        response = await post(http, sim, **form(order=999))
        assert response.content == b"-4\r\nThe value of the 'orderNumber' argument is invalid!\r\n"

    async def test_default_response_type_quirk(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """default_response_type=PKCS7 for queryType 1; queryType 2 falls back to PEM."""
        sim.quirks = Quirks(default_response_type=ResponseType.PKCS7, base64_line_length=None)
        chain_answer = await post(http, sim, **form())
        assert len(lines(chain_answer)) == 2  # one long base64 line
        assert len(pkcs7.load_der_pkcs7_certificates(base64.b64decode(lines(chain_answer)[1]))) == 3
        leaf_answer = await post(http, sim, **form(query=2))
        assert b"-----BEGIN CERTIFICATE-----" in leaf_answer.content

    @pytest.mark.parametrize("root_first", [True, False])
    async def test_unsorted_pkcs7_quirk(
        self, sim: Simulator, http: httpx.AsyncClient, root_first: bool
    ) -> None:
        """pkcs7_sorted=False writes the SET in list order (like OpenSSL), not DER order."""
        sim.quirks = Quirks(pkcs7_sorted=False, root_first=root_first)
        response = await post(http, sim, **form(responseEncoding="1"))
        chain = sim.order(1001).chain
        assert chain is not None
        listed = [chain.root, *chain.intermediates, chain.end_entity]
        if not root_first:
            listed.reverse()
        positions = [response.content.index(c.public_bytes(Encoding.DER)) for c in listed]
        assert positions == sorted(positions)

    async def test_pkcs7_is_der_sorted_by_default(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """By default the SET OF certificates is in DER order (X.690 11.6), whatever the quirks."""
        response = await post(http, sim, **form(responseEncoding="1"))
        chain = sim.order(1001).chain
        assert chain is not None
        ders = [c.public_bytes(Encoding.DER) for c in chain.certificates()]
        width = max(map(len, ders))
        in_body = sorted(ders, key=response.content.index)
        assert in_body == sorted(ders, key=lambda d: d.ljust(width, b"\x00"))

    async def test_certificates_are_issued_once_and_bodies_cached(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """The leaf is made on first collection and reused; the same query gives the same bytes."""
        order = sim.order(1001)
        assert order.chain is None
        first = await post(http, sim, **form())
        chain = order.chain
        second = await post(http, sim, **form())
        assert order.chain is chain
        assert first.content == second.content

    def test_the_default_ca_is_shared_by_the_process(self, sim: Simulator) -> None:
        """TestCA.create is cached: every simulator not given ``ca=`` issues under the same CA."""
        assert TestCA.create() is TestCA.create()
        assert Simulator().ca is sim.ca is TestCA.create()
        assert TestCA.create("Other") is not sim.ca

    async def test_orders_get_distinct_leaves(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """Each order has its own end entity, issued by the simulator's one CA."""
        sim.add_order(1002)
        await post(http, sim, **form(order=1001, query=2))
        await post(http, sim, **form(order=1002, query=2))
        one, two = sim.order(1001).chain, sim.order(1002).chain
        assert one is not None
        assert two is not None
        assert one.end_entity != two.end_entity
        assert one.root == two.root == sim.ca.root

    def test_issue_certificates_up_front(self, sim: Simulator) -> None:
        """issue_certificates() makes every order's chain before any request."""
        sim.add_orders([1002, 1003])
        sim.issue_certificates()
        chains = [sim.order(n).chain for n in (1001, 1002, 1003)]
        assert all(chain is not None for chain in chains)
        assert sim.stats.requests_total == 0
        sim.issue_certificates()  # a second call keeps what was issued
        assert [sim.order(n).chain for n in (1001, 1002, 1003)] == chains

    async def test_given_chain_is_served(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """add_order(chain=...) serves the caller's certificates."""
        issued = sim.ca.issue_smime("bob@example.com", days=30)
        sim.add_order(8008, chain=issued)
        response = await post(http, sim, **form(order=8008, query=2))
        leaf = x509.load_pem_x509_certificate(response.content.partition(b"\n")[2])
        assert leaf == issued.end_entity


class TestChaos:
    """Scripted and random faults, latency, and the counters."""

    @pytest.mark.parametrize(
        ("fault", "status"),
        [
            (Fault.HTTP_429, 429),
            (Fault.HTTP_500, 500),
            (Fault.HTTP_502, 502),
            (Fault.HTTP_503, 503),
            (Fault.HTTP_504, 504),
        ],
    )
    async def test_http_faults(
        self, sim: Simulator, http: httpx.AsyncClient, fault: Fault, status: int
    ) -> None:
        """Each HTTP fault answers its status; 429 and 503 carry Retry-After."""
        sim.inject(fault)
        response = await post(http, sim, **form())
        assert response.status_code == status
        assert ("retry-after" in response.headers) is (status in (429, 503))
        assert (await post(http, sim, **form())).status_code == 200

    @pytest.mark.parametrize(
        ("fault", "error"), [(Fault.ERROR_14, UnknownServerError), (Fault.ERROR_42, CallLimitError)]
    )
    async def test_sectigo_transient_codes(
        self, sim: Simulator, http: httpx.AsyncClient, fault: Fault, error: type[SectigoError]
    ) -> None:
        """-14 and -42 arrive as HTTP 200 bodies, like every Sectigo code."""
        sim.inject(fault)
        response = await post(http, sim, **form())
        assert response.status_code == 200
        with pytest.raises(error):
            parse_response(response.content, CollectRequest(1001))

    async def test_scripted_faults_are_used_in_order(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """Scripted faults are used first in, first out, one per request, then the real answer."""
        sim.inject(Fault.HTTP_503, retry_after=5)
        sim.inject(Fault.ERROR_14)
        sim.inject(Fault.DROP_CONNECTION)
        first = await post(http, sim, **form())
        assert (first.status_code, first.headers["retry-after"]) == (503, "5")
        assert lines(await post(http, sim, **form())) == ["-14", "An unknown error occurred!"]
        with pytest.raises(httpx.RemoteProtocolError):
            await post(http, sim, **form())
        assert lines(await post(http, sim, **form()))[0] == "2"

    async def test_script_targets_one_order_for_n_requests(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """The next 2 requests for order 1002 get 503; others pass, then 1002 recovers."""
        sim.add_order(1002)
        sim.inject(Fault.HTTP_503, order_number=1002, times=2, retry_after=7)
        assert (await post(http, sim, **form(order=1001))).status_code == 200
        first = await post(http, sim, **form(order=1002))
        second = await post(http, sim, **form(order=1002))
        assert [first.status_code, second.status_code] == [503, 503]
        assert first.headers["retry-after"] == "7"
        assert sim.pending_faults == ()
        assert (await post(http, sim, **form(order=1002))).status_code == 200

    async def test_retry_after_http_date(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """An aware datetime becomes an HTTP-date Retry-After."""
        sim.chaos = Chaos(retry_after=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))
        sim.inject(Fault.HTTP_429)
        response = await post(http, sim, **form())
        assert response.headers["retry-after"] == "Wed, 02 Jan 2030 03:04:05 GMT"

    async def test_faulted_requests_are_not_polls(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """A request lost to a fault never reached the order: its poll count stays."""
        sim.add_order(5005, ready_after_polls=1)
        sim.inject(Fault.HTTP_503, order_number=5005)
        await post(http, sim, **form(order=5005))
        assert sim.order(5005).polls == 0
        assert lines(await post(http, sim, **form(order=5005)))[0] == "0"

    async def test_dropped_connection(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """In-process, a drop is what httpx raises for a real one."""
        sim.inject(Fault.DROP_CONNECTION)
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await post(http, sim, **form())
        assert sim.stats.faults[Fault.DROP_CONNECTION] == 1

    async def test_timeout_in_process_is_immediate(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """A TIMEOUT fault raises httpx.ReadTimeout at once, as if the client's timeout ran out."""
        sim.inject(Fault.TIMEOUT)
        with pytest.raises(httpx.ReadTimeout):
            await post(http, sim, **form())
        assert sim.order(1001).polls == 0

    async def test_truncated_body(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """Half the announced body, then the connection closes while it is read."""
        sim.inject(Fault.TRUNCATED_BODY)
        async with http.stream("POST", sim.url, data=form()) as response:
            announced = int(response.headers["content-length"])
            received: list[bytes] = []

            async def read_all() -> None:
                async for chunk in response.aiter_bytes():
                    received.append(chunk)  # noqa: PERF401 -- keep what came before the error

            with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
                await read_all()
        assert 0 < len(b"".join(received)) < announced

    async def test_oversized_body(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """An oversized answer has no Content-Length and more bytes than configured."""
        sim.chaos = Chaos(oversized_body_bytes=300_000)
        sim.inject(Fault.OVERSIZED_BODY)
        response = await post(http, sim, **form())
        assert "content-length" not in response.headers
        assert response.content.startswith(b"2\n")
        assert len(response.content) == 300_002

    def test_rates_are_validated(self) -> None:
        """A rate outside [0, 1], or rates adding up past 1, are refused."""
        with pytest.raises(ValueError, match="probability"):
            Chaos(http_503_rate=1.5)
        with pytest.raises(ValueError, match="add up"):
            Chaos(http_503_rate=0.6, error_14_rate=0.6)
        with pytest.raises(ValueError, match="aware"):
            Chaos(retry_after=datetime(2030, 1, 1))

    async def test_random_faults_repeat_with_the_seed(self) -> None:
        """Two simulators with one seed fail the same requests; the rate shows in the counts."""

        async def statuses(seed: int) -> list[int]:
            sim = Simulator(seed=seed, chaos=Chaos(http_503_rate=0.3, error_14_rate=0.2))
            sim.add_account(LOGIN, PASSWORD)
            sim.add_order(1001)
            async with sim.http_client() as http:
                return [
                    (await post(http, sim, **form(query=0))).status_code
                    + (1000 if sim.stats.codes[-14] else 0)
                    for _ in range(200)
                ]

        first, again, other = await statuses(7), await statuses(7), await statuses(8)
        assert first == again
        assert first != other
        assert 30 < first.count(503) + first.count(1503) < 90

    async def test_latency_goes_through_the_injected_sleep(
        self, sim: Simulator, http: httpx.AsyncClient
    ) -> None:
        """Latency (with seeded jitter) is waited with sim.sleep, so tests never wait."""
        clock = ManualClock()
        sim.sleep = clock.sleep
        sim.chaos = Chaos(latency=0.25, latency_jitter=0.5)
        for _ in range(5):
            await post(http, sim, **form())
        waits = clock.sleeps
        assert len(waits) == 5
        assert all(0.25 <= wait <= 0.75 for wait in waits)
        assert len(set(waits)) > 1

    async def test_in_flight_counters(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """Requests held in the latency wait show up in in_flight and max_in_flight."""
        release = asyncio.Event()

        async def hold(seconds: float) -> None:
            del seconds
            await release.wait()

        sim.sleep = hold
        sim.chaos = Chaos(latency=1.0)
        tasks = [asyncio.create_task(post(http, sim, **form())) for _ in range(6)]
        for _ in range(100):  # let every request reach the latency wait
            await asyncio.sleep(0)
        assert sim.stats.in_flight == 6
        release.set()
        await asyncio.gather(*tasks)
        assert sim.stats.max_in_flight == 6
        assert sim.stats.in_flight == 0

    async def test_counters_and_reset(self, sim: Simulator, http: httpx.AsyncClient) -> None:
        """Requests in total and per order, codes and HTTP statuses; reset() zeroes them."""
        sim.add_order(1002, state=OrderState.REVOKED)
        await post(http, sim, **form(order=1001))
        await post(http, sim, **form(order=1002))
        await post(http, sim, **form(order=1002))
        await post(http, sim, **form(order="junk"))
        stats = sim.stats
        assert stats.requests_total == 4
        assert stats.requests_by_order == {1001: 1, 1002: 2}
        assert stats.codes == {2: 1, -21: 2, -4: 1}
        assert stats.http_statuses == {200: 4}
        stats.reset()
        assert stats.requests_total == 0
        assert not stats.requests_by_order


class TestRobustness:
    """Whatever a client sends, the endpoint answers with a status line, never a crash."""

    @settings(max_examples=60, deadline=None)
    @given(body=st.binary(max_size=300))
    def test_any_form_body_gets_a_status_line(self, body: bytes) -> None:
        """Random bytes posted as a form get HTTP 200 and an integer first line."""
        sim = Simulator(seed=3)
        sim.add_account(LOGIN, PASSWORD)
        response = sim.respond("POST", "https", parse_qsl(body.decode("utf-8", "replace")))
        assert response.http_status == 200
        int(response.body.partition(b"\n")[0])

    @settings(max_examples=60, deadline=None)
    @given(fields=st.dictionaries(st.sampled_from(sorted(FIELDS)), st.text(max_size=20)))
    def test_any_field_values_get_a_status_line(self, fields: dict[str, str]) -> None:
        """Known fields with arbitrary values get an integer status line, -2 never."""
        sim = Simulator(seed=3)
        sim.add_account(LOGIN, PASSWORD)
        sim.add_order(1)
        response = sim.respond("POST", "https", list(fields.items()))
        assert int(response.body.partition(b"\n")[0]) != -2


class TestScenario:
    """The scenario API itself."""

    def test_password_is_not_in_repr(self, sim: Simulator) -> None:
        """The account's password never shows in a repr."""
        assert PASSWORD not in repr(sim.account(LOGIN))
        assert PASSWORD not in repr(sim.order(1001))

    def test_bad_orders_and_accounts_are_refused(self, sim: Simulator) -> None:
        """Duplicates, non-positive numbers and ownerless orders are caller errors."""
        with pytest.raises(ValueError, match="exists"):
            sim.add_order(1001)
        with pytest.raises(ValueError, match="positive"):
            sim.add_order(0)
        with pytest.raises(ValueError, match="exists"):
            sim.add_account(LOGIN, "other")
        with pytest.raises(ValueError, match="add an account"):
            Simulator().add_order(1)
        with pytest.raises(ValueError, match="another simulator"):
            Simulator().add_order(1, account=sim.account(LOGIN))
        with pytest.raises(ValueError, match="times"):
            sim.inject(Fault.HTTP_503, times=0)
        with pytest.raises(ValueError, match="-4 or -91"):
            Simulator(foreign_order_code=-16)
        with pytest.raises(ValueError, match="non-empty"):
            sim.add_account("", "pw")
        with pytest.raises(ValueError, match=">= 0"):
            sim.add_order(9, ready_after_polls=-1)
        with pytest.raises(ValueError, match=">= 0"):
            sim.inject(Fault.HTTP_503, retry_after=-1)
        with pytest.raises(ValueError, match=">= 0"):
            Chaos(latency=-0.1)

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"intermediates": -1}, "intermediates must be >= 0"),
            ({"root_hash": "sha1", "key_type": "ec"}, "a SHA-1 root needs key_type='rsa'"),
        ],
        ids=["negative-intermediates", "sha1-ec-root"],
    )
    def test_impossible_test_cas_are_refused(self, options: dict[str, Any], message: str) -> None:
        """A negative intermediate count or an EC key for a SHA-1 RSA root is a caller error."""
        with pytest.raises(ValueError, match=re.escape(message)):
            TestCA.create(**options)

    async def test_only_http_and_lifespan_scopes_are_served(self, sim: Simulator) -> None:
        """A websocket connection is not this endpoint's: nothing is sent and nothing counted."""
        sent: list[object] = []

        async def receive() -> dict[str, object]:
            return {"type": "websocket.connect"}

        async def send(message: object) -> None:
            sent.append(message)

        await sim.app({"type": "websocket", "path": ENDPOINT_PATH}, receive, send)  # type: ignore[arg-type]
        assert (sent, sim.stats.requests_total) == ([], 0)

    @pytest.mark.parametrize(
        ("messages", "first_line"),
        [
            ([{"type": "http.disconnect"}], b"-3"),
            (
                [
                    {"type": "http.request", "body": FORM[:20], "more_body": True},
                    {"type": "http.request", "body": FORM[20:], "more_body": False},
                ],
                b"2",
            ),
        ],
        ids=["gone-before-its-body", "body-in-two-chunks"],
    )
    async def test_the_body_as_a_server_delivers_it(
        self, sim: Simulator, messages: list[dict[str, object]], first_line: bytes
    ) -> None:
        """A body in chunks is read whole; a disconnect before any is a request without fields."""
        scope = {"type": "http", "method": "POST", "scheme": "https", "path": ENDPOINT_PATH}
        headers = [(b"content-type", b"application/x-www-form-urlencoded")]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, object]:
            return messages.pop(0)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await sim.app({**scope, "headers": headers}, receive, send)  # type: ignore[arg-type]
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        assert (sent[0]["status"], body.split(b"\n", 1)[0]) == (200, first_line)
        assert sim.stats.requests_total == 1

    def test_clear_faults(self, sim: Simulator) -> None:
        """clear_faults() forgets every scripted fault."""
        sim.inject(Fault.HTTP_503, times=3)
        assert sim.pending_faults[0].remaining == 3
        sim.clear_faults()
        assert sim.pending_faults == ()

    async def test_drop_under_a_server_without_connection_control(self, sim: Simulator) -> None:
        """Under an ASGI server that offers no connection control, a drop raises in the app."""
        sim.inject(Fault.DROP_CONNECTION)
        scope = {"type": "http", "method": "POST", "scheme": "https", "path": "/", "headers": []}

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: object) -> None:
            del message

        with pytest.raises(ConnectionAbortedError):
            await sim.app(scope, receive, send)

    def test_add_orders(self, sim: Simulator) -> None:
        """add_orders adds a range with shared options."""
        orders = sim.add_orders(range(10, 15), ready_after_polls=2)
        assert [order.number for order in orders] == [10, 11, 12, 13, 14]
        assert all(order.ready_after_polls == 2 for order in orders)

    async def test_manual_clock_sleep_advances_time(self) -> None:
        """ManualClock.sleep moves the clock instead of waiting."""
        clock = ManualClock()
        await clock.sleep(12.5)
        assert clock() == 12.5
        with pytest.raises(ValueError, match="back"):
            clock.advance(-1)

    async def test_lifespan_is_answered(self, sim: Simulator) -> None:
        """The app completes ASGI lifespan startup and shutdown."""
        incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        sent: list[str] = []

        async def receive() -> dict[str, str]:
            return incoming.pop(0)

        async def send(message: dict[str, str]) -> None:
            sent.append(message["type"])

        await sim.app({"type": "lifespan"}, receive, send)  # type: ignore[arg-type]
        assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


class TestSimulatorTransport:
    """SimulatorTransport serves any ASGI app to httpx the way one connection would."""

    @staticmethod
    async def _post(app: Any) -> httpx.Response:
        async with httpx.AsyncClient(transport=SimulatorTransport(app)) as http:
            return await http.post("https://simulator.test/x", content=b"abc")

    async def test_a_second_receive_is_a_disconnect(self) -> None:
        """The body comes once; asking again says the client has nothing more to send."""
        seen: list[dict[str, Any]] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            seen.extend([await receive(), await receive()])
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        assert (await self._post(app)).status_code == 204
        assert [(m["type"], m.get("body")) for m in seen] == [
            ("http.request", b"abc"),
            ("http.disconnect", None),
        ]

    async def test_an_app_that_never_answers(self) -> None:
        """Returning without a response is the app's bug, raised as one, not a network error."""

        async def app(scope: Any, receive: Any, send: Any) -> None:
            del scope, receive, send

        with pytest.raises(RuntimeError, match="returned without starting a response"):
            await self._post(app)

    async def test_what_is_sent_after_a_drop_is_lost(self) -> None:
        """After abort() the client meets a dropped connection, never the late answer."""

        async def app(scope: Any, receive: Any, send: Any) -> None:
            del receive
            await abort(scope)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"2\n"})

        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await self._post(app)


@pytest.mark.network
class TestLoopbackServer:
    """The same simulator on a real socket, with TLS."""

    async def test_tls_round_trip_and_a_real_drop(
        self, sim: Simulator, caplog: pytest.LogCaptureFixture
    ) -> None:
        """HTTPS verified against the throwaway CA; drops close the socket; no error logged."""
        async with serve(sim) as server:
            assert server.url.startswith("https://127.0.0.1:")
            assert server.url.endswith(ENDPOINT_PATH)
            assert server.base_url + ENDPOINT_PATH == server.url
            assert server.base_url == f"https://127.0.0.1:{server.port}"
            assert server.ca_pem_path is not None
            assert server.ca_pem_path.read_bytes() == server.ca_pem
            async with httpx.AsyncClient(verify=server.ssl_context()) as http:
                response = await http.post(server.url, data=form(showValidityPeriod="Y"))
                result = parse_response(
                    response.content, CollectRequest(1001, show_validity_period=True)
                )
                assert result.status is Status.ATTACHED
                sim.inject(Fault.DROP_CONNECTION)
                with pytest.raises(httpx.RemoteProtocolError):
                    await http.post(server.url, data=form())
                sim.inject(Fault.TRUNCATED_BODY)
                with pytest.raises(httpx.RemoteProtocolError):
                    await http.post(server.url, data=form())
                assert (await http.post(server.url, data=form())).status_code == 200
            async with httpx.AsyncClient() as untrusting:
                with pytest.raises(httpx.ConnectError):
                    await untrusting.post(server.url, data=form())
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert sim.stats.requests_total >= 4

    async def test_stalled_request_times_out_and_shutdown_releases_it(self, sim: Simulator) -> None:
        """TIMEOUT keeps the socket silent: the client times out; stopping the server ends it."""
        async with serve(sim) as server:
            context = server.ssl_context()
            async with httpx.AsyncClient(verify=context, timeout=0.2) as http:
                sim.inject(Fault.TIMEOUT)
                with pytest.raises(httpx.ReadTimeout):
                    await http.post(server.url, data=form())
                assert (await http.post(server.url, data=form())).status_code == 200
            patient = httpx.AsyncClient(verify=context, timeout=30)
            sim.inject(Fault.TIMEOUT)
            stalled = asyncio.create_task(patient.post(server.url, data=form()))
            while sim.stats.faults[Fault.TIMEOUT] != 2:  # noqa: ASYNC110 -- polling a counter
                await asyncio.sleep(0.01)
        with pytest.raises(httpx.RemoteProtocolError):
            await stalled
        await patient.aclose()

    async def test_plain_http_socket_gets_code_1(self, sim: Simulator) -> None:
        """Without TLS the scheme is http: -1, unless require_https is off."""
        async with serve(sim, tls=False) as server, httpx.AsyncClient() as http:
            assert server.url.startswith("http://")
            assert lines(await http.post(server.url, data=form()))[0] == "-1"
            sim.require_https = False
            assert lines(await http.post(server.url, data=form()))[0] == "2"
            with pytest.raises(ValueError, match="without TLS"):
                server.ssl_context()


# Every (queryType, responseType, responseEncoding) the endpoint accepts; None is "omitted".
ACCEPTED = [
    (query, response_type, encoding)
    for query, response_type, encoding in itertools.product(
        QueryType, [None, *ResponseType], [None, *ResponseEncoding]
    )
    if combination_error(query, response_type, encoding) is None
]


class TestClassifiedByTheLibrary:
    """Every body the simulator renders loads into the same classified chain."""

    @pytest.mark.parametrize(
        "quirks",
        [
            Quirks(),
            Quirks(
                root_first=False,
                sloppy_pem_markers=True,
                crlf=True,
                pkcs7_sorted=False,
                cmmf_tagging="implicit",
                base64_line_length=None,
            ),
        ],
        ids=["plain", "quirky"],
    )
    async def test_every_accepted_request_is_answered_and_parsed(
        self, sim: Simulator, http: httpx.AsyncClient, quirks: Quirks
    ) -> None:
        """Every accepted combination, validity asked for, is rendered and read back whole."""
        sim.quirks = quirks
        assert len(ACCEPTED) == 24  # 4 for each of query types 0, 2, 3; 12 for query type 1
        for query, response_type, encoding in ACCEPTED:
            request = CollectRequest(
                1001, query, response_type, encoding, show_validity_period=True
            )
            response = await http.post(sim.url, data=request.form_fields(LOGIN, PASSWORD))
            result = parse_response(response.content, request)
            shape = (query, response_type, encoding)
            if query is QueryType.STATUS:
                assert (result.status, result.chain) == (Status.AVAILABLE, None), shape
            else:
                assert result.status is Status.ATTACHED, shape
                assert result.chain is not None
                assert result.payload, shape
                assert (result.chain.end_entity is None) is (query is QueryType.CA_BUNDLE), shape
                assert (len(result.chain) == 1) is (query is QueryType.CERTIFICATE), shape
            if not request.wants_binary:
                assert result.validity is not None
                assert result.validity.not_before.hour == 0, shape

    @pytest.mark.parametrize(
        "quirks",
        [
            Quirks(),
            Quirks(root_first=False, sloppy_pem_markers=True, crlf=True),
            Quirks(pkcs7_sorted=False, cmmf_tagging="implicit", base64_line_length=None),
        ],
        ids=["default", "leaf-first-sloppy-crlf", "unsorted-implicit-oneline"],
    )
    @pytest.mark.parametrize(
        ("response_type", "encoding"),
        [
            (None, None),
            (ResponseType.INDIVIDUAL, None),
            (ResponseType.PKCS7, None),
            (ResponseType.PKCS7, ResponseEncoding.BINARY),
            (None, ResponseEncoding.BINARY),
            (ResponseType.NETSCAPE_SEQUENCE, ResponseEncoding.BASE64),
            (ResponseType.CMMF, None),
        ],
        ids=["default", "individual", "pkcs7", "pkcs7-binary", "binary", "netscape", "cmmf"],
    )
    async def test_parse_response_classifies_every_rendering(
        self,
        sim: Simulator,
        http: httpx.AsyncClient,
        quirks: Quirks,
        response_type: ResponseType | None,
        encoding: ResponseEncoding | None,
    ) -> None:
        """parse_response gets the leaf, the intermediate and the root right, whatever the form."""
        sim.quirks = quirks
        request = CollectRequest(
            1001,
            response_type=response_type,
            response_encoding=encoding,
            show_validity_period=True,
        )
        response = await http.post(sim.url, data=request.form_fields(LOGIN, PASSWORD))
        result = parse_response(response.content, request)
        issued = sim.order(1001).chain
        assert issued is not None
        assert result.status is Status.ATTACHED
        assert result.chain is not None
        assert result.chain.end_entity == issued.end_entity
        assert result.chain.intermediates == issued.intermediates
        assert result.chain.roots == (issued.root,)
        assert (result.validity is None) is request.wants_binary

"""The CollectSMIME simulator: every endpoint rule, its scenario API, and any request answered."""

from __future__ import annotations

import itertools
import re
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from simulator_fakes import (
    FIELDS,
    FORM,
    LOGIN,
    PASSWORD,
    form,
    http_fixture,  # noqa: F401 -- the "http" fixture
    lines,
    post,
    sim_fixture,  # noqa: F401 -- the "sim" fixture
)

from smime_collect import (
    AuthenticationError,
    AwaitingPaymentError,
    CertificateRejectedError,
    CertificateRevokedError,
    CollectRequest,
    HttpsRequiredError,
    InvalidArgumentError,
    InvalidRequestError,
    MissingArgumentError,
    PermissionDeniedError,
    PostRequiredError,
    SectigoError,
    Status,
    UnrecognisedArgumentError,
    parse_response,
)
from smime_collect._protocol import looks_like_asn1_sequence
from smime_collect.testing import (
    Chaos,
    Fault,
    ManualClock,
    OrderState,
    Simulator,
    TestCA,
)
from smime_collect.testing._simulator import ENDPOINT_PATH


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

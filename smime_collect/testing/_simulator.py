"""The CollectSMIME simulator: a scenario (accounts, orders, chaos) served as an ASGI app.

The app is plain ASGI 3 (no web framework), so it runs in-process through
:meth:`Simulator.transport` (an httpx transport, no socket) and on a real socket under uvicorn
(:func:`smime_collect.testing.serve`). One request goes through, in order:

1. counting (``stats``), reading the body (at most 64 KiB, else HTTP 413);
2. latency (``chaos.latency`` through the injectable ``sleep``);
3. a fault, if one is scripted for it (:meth:`Simulator.inject`) or drawn (``chaos``);
4. the endpoint: plain HTTP -1 (when ``require_https``), not POST -17, the form rules
   (``_endpoint.parse_query``: -2, -3, -4), the login -16, the order (unknown: -4 on
   ``orderNumber``; another account's: ``foreign_order_code``, -4 by default), its state.

Only the body counts: credentials in the URL's query string are ignored (a client that puts them
there gets -3), and a body that is not ``application/x-www-form-urlencoded`` has no fields.
"""

import asyncio
import http
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

import attrs
import httpx

from . import _endpoint
from ._asgi import ASGIApp, Receive, Scope, Send, abort, form_fields, lifespan, read_body, stall
from ._chaos import Chaos, Fault, ScriptedFault, Stats, format_retry_after
from ._endpoint import Query, Reply
from ._pki import IssuedChain, PrivateKey, TestCA
from ._scenario import Account, Order, OrderState, Quirks
from ._transport import SimulatorTransport

__all__ = ["ENDPOINT_PATH", "Simulator"]

ENDPOINT_PATH: Final = "/products/download/CollectSMIME"

_FAULT_STATUS: Final = {
    Fault.ERROR_14: -14,
    Fault.ERROR_42: -42,
}
_STATE_CODE: Final = {
    OrderState.REJECTED: -20,
    OrderState.REVOKED: -21,
    OrderState.AWAITING_PAYMENT: -22,
}


def _foreign_order_code(instance: object, attribute: "attrs.Attribute[int]", value: int) -> None:
    del instance
    if value not in (-4, -91):
        raise ValueError(f"{attribute.name} must be -4 or -91, not {value!r}")


@attrs.define
class Simulator:
    """A faithful CollectSMIME stand-in, for tests, demos and benchmarks.

    Example::

        sim = Simulator(seed=1)
        account = sim.add_account("api-user", "s3cret")
        sim.add_order(1001, email="alice@example.com")
        sim.add_order(1002, ready_after_polls=3)
        sim.inject(Fault.HTTP_503, order_number=1001, times=2)
        async with sim.http_client() as http_client:
            ...  # POST to sim.url, or give http_client to CollectClient

    Attributes:
        seed: Seeds the PRNG behind ``chaos`` (None: a random seed).
        chaos: Random latency and faults.
        quirks: How bodies are rendered (root first, sloppy PEM, CRLF, default responseType...).
        require_https: Answer -1 to requests whose scheme is ``http``.
        foreign_order_code: The answer to an order of another account: -4 on ``orderNumber``
            (the default: it does not reveal that the order exists) or -91 "Permission denied!".
        lock_after_failed_logins: Lock an account after this many wrong passwords (then even the
            right one gets -16); None never locks.
        clock: Seconds, for ``ready_after_seconds`` (``time.monotonic``; see ManualClock).
        sleep: Waits out ``chaos.latency`` (``asyncio.sleep``).
        ca: The test CA that issues every order's certificate.  The default,
            ``TestCA.create()``, is cached per process: every simulator that is not given a
            ``ca`` shares it (and so do the test-suite's own chains).
        stats: Counters.
        url: An https URL to POST to in-process (any host works; the path must be ENDPOINT_PATH).
    """

    seed: int | None = None
    chaos: Chaos = attrs.field(factory=Chaos)
    quirks: Quirks = attrs.field(factory=Quirks)
    require_https: bool = True
    foreign_order_code: int = attrs.field(default=-4, validator=_foreign_order_code)
    lock_after_failed_logins: int | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ca: TestCA = attrs.field(factory=TestCA.create)
    stats: Stats = attrs.field(factory=Stats, init=False)
    url: str = attrs.field(default=f"https://collectsmime.test{ENDPOINT_PATH}", init=False)
    _accounts: dict[str, Account] = attrs.field(factory=dict, init=False, repr=False)
    _orders: dict[int, Order] = attrs.field(factory=dict, init=False, repr=False)
    _script: list[ScriptedFault] = attrs.field(factory=list, init=False, repr=False)
    _rng: random.Random = attrs.field(init=False, repr=False)
    _rendered: dict[tuple[object, ...], Reply] = attrs.field(factory=dict, init=False, repr=False)
    _rendered_with: Quirks | None = attrs.field(default=None, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    # -- the scenario ------------------------------------------------------------------------

    def add_account(self, login_name: str, password: str) -> Account:
        """Accept logins for an account.

        Args:
            login_name: ``loginName``, non-empty.
            password: ``loginPassword``, non-empty.

        Returns:
            The account (pass it to :meth:`add_order`).

        Raises:
            ValueError: An empty credential, or a login name already added.
        """
        if not login_name or not password:
            raise ValueError("an account needs a non-empty login name and password")
        if login_name in self._accounts:
            raise ValueError(f"account {login_name!r} exists already")
        account = Account(login_name, password)
        self._accounts[login_name] = account
        return account

    def account(self, login_name: str) -> Account:
        """The account with this login name.

        Raises:
            KeyError: No such account.
        """
        return self._accounts[login_name]

    def add_order(  # long for its eight documented options; the body is their checks
        self,
        number: int,
        *,
        account: Account | str | None = None,
        state: OrderState = OrderState.ISSUED,
        ready_after_polls: int = 0,
        ready_after_seconds: float = 0.0,
        email: str | None = None,
        chain: IssuedChain | None = None,
        key: PrivateKey | None = None,
    ) -> Order:
        """Add an order.

        Args:
            number: ``orderNumber``, a positive int.
            account: Its owner (an Account or a login name); None means the first account added.
            state: The state once processing is over.
            ready_after_polls: Answer status 0 to this many polls first.
            ready_after_seconds: Answer status 0 until this many seconds (``clock``) have passed.
            email: The certificate's rfc822Name (default ``user<number>@example.com``).
            chain: Certificates to serve instead of issuing them from ``ca``.
            key: The private key the order was placed with: its certificate is issued now, for
                that key (as Sectigo issues for the public key of the order's request), so a
                test can pair what it collects with the key it holds.

        Returns:
            The order (mutable: change ``state`` mid-test to revoke it, say).

        Raises:
            ValueError: A bad number, a duplicate, a negative delay, or no account to own it.
        """
        if isinstance(number, bool) or not isinstance(number, int) or number <= 0:
            raise ValueError(f"an order number is a positive int, not {number!r}")
        if number in self._orders:
            raise ValueError(f"order {number} exists already")
        if ready_after_polls < 0 or ready_after_seconds < 0:
            raise ValueError("ready_after_polls and ready_after_seconds must be >= 0")
        owner = self._owner(account)
        email = email or f"user{number}@example.com"
        if key is not None:
            if chain is not None:
                raise ValueError("give an order its chain or its key, not both")
            chain = self.ca.issue_smime(email, key=key)
        order = Order(
            number=number,
            account=owner,
            state=state,
            ready_after_polls=ready_after_polls,
            ready_after_seconds=ready_after_seconds,
            email=email,
            created_at=self.clock(),
            chain=chain,
        )
        self._orders[number] = order
        return order

    def add_orders(self, numbers: Iterable[int], **options: Any) -> list[Order]:
        """Add many orders with the same options (see :meth:`add_order`).

        Args:
            numbers: The order numbers.
            **options: Keyword arguments of :meth:`add_order`.

        Returns:
            The orders, in the given order.
        """
        return [self.add_order(number, **options) for number in numbers]

    def issue_certificates(self) -> None:
        """Issue every order's certificate now, instead of on its first collection.

        Benchmarks call this to keep key generation out of their timings.
        """
        for order in self._orders.values():
            if order.chain is None:
                order.chain = self.ca.issue_smime(order.email)

    def order(self, number: int) -> Order:
        """The order with this number.

        Raises:
            KeyError: No such order.
        """
        return self._orders[number]

    def _owner(self, account: Account | str | None) -> Account:
        if isinstance(account, Account):
            if self._accounts.get(account.login_name) is not account:
                raise ValueError(f"account {account.login_name!r} belongs to another simulator")
            return account
        if account is None:
            if not self._accounts:
                raise ValueError("add an account first: sim.add_account(login, password)")
            return next(iter(self._accounts.values()))
        return self._accounts[account]

    def inject(
        self,
        fault: Fault,
        *,
        times: int = 1,
        order_number: int | None = None,
        retry_after: str | float | None = None,
    ) -> None:
        """Script a fault: the next ``times`` matching requests get it, before any random chaos.

        Scripted faults are used first-in, first-out; each request takes at most one.

        Args:
            fault: What happens.
            times: How many requests it hits.
            order_number: Only requests for this order; None hits any request.
            retry_after: ``Retry-After`` for HTTP 429/503 (default: ``chaos.retry_after``).

        Raises:
            ValueError: ``times`` is less than 1, or a bad ``retry_after``.
        """
        if times < 1:
            raise ValueError(f"times must be >= 1, not {times!r}")
        self._script.append(
            ScriptedFault(fault, times, order_number, format_retry_after(retry_after))
        )

    @property
    def pending_faults(self) -> tuple[ScriptedFault, ...]:
        """Scripted faults not used up yet."""
        return tuple(f for f in self._script if f.remaining > 0)

    def clear_faults(self) -> None:
        """Forget every scripted fault."""
        self._script.clear()

    # -- serving -----------------------------------------------------------------------------

    @property
    def app(self) -> ASGIApp:
        """The ASGI 3 application (serve it with any ASGI server, or use :meth:`transport`)."""
        return self._asgi

    def transport(self) -> httpx.AsyncBaseTransport:
        """An httpx transport that serves this simulator in-process, without a socket.

        Returns:
            The transport; dropped connections raise ``httpx.RemoteProtocolError``.
        """
        return SimulatorTransport(self.app)

    def http_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` wired to :meth:`transport`.

        Args:
            **kwargs: More ``httpx.AsyncClient`` arguments.

        Returns:
            The client; close it (``async with``) when done.
        """
        return httpx.AsyncClient(transport=self.transport(), **kwargs)

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":  # websockets: not this endpoint's business
            return
        stats = self.stats
        stats.requests_total += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            await self._serve(scope, receive, send)
        finally:
            stats.in_flight -= 1

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(receive)
        fields = form_fields(scope, body)
        order_number = _order_number_hint(fields)
        if order_number is not None:
            self.stats.requests_by_order[order_number] += 1

        delay = self.chaos.delay(self._rng)
        if delay > 0:
            await self.sleep(delay)

        fault, retry_after = self._next_fault(order_number)
        if fault is not None:
            self.stats.faults[fault] += 1
        if fault is Fault.DROP_CONNECTION:
            await abort(scope)
            return
        if fault is Fault.TIMEOUT:
            await stall(scope, receive, self.chaos.stall_seconds)
            return
        if fault is Fault.OVERSIZED_BODY:
            await self._send_oversized(send)
            return
        if fault is not None and fault is not Fault.TRUNCATED_BODY:
            reply = self._fault_reply(fault, retry_after)
        elif body is None:
            reply = _http_error(413)
        elif scope["path"] != ENDPOINT_PATH:
            reply = _http_error(404)
        else:
            reply = self.respond(scope["method"], scope["scheme"], fields)

        if fault is Fault.TRUNCATED_BODY:
            await self._send_truncated(scope, send, reply)
        else:
            await self._send(send, reply)

    def _next_fault(self, order_number: int | None) -> tuple[Fault | None, str | None]:
        for scripted in self._script:
            if scripted.matches(order_number):
                scripted.remaining -= 1
                if scripted.remaining == 0:
                    self._script.remove(scripted)
                return scripted.fault, scripted.retry_after
        return self.chaos.draw(self._rng), None

    def _fault_reply(self, fault: Fault, retry_after: str | None) -> Reply:
        if fault in _FAULT_STATUS:
            return _endpoint.error(_FAULT_STATUS[fault], crlf=self.quirks.crlf)
        status = fault.http_status or 500
        reply = _http_error(status)
        if status in (429, 503):
            value = retry_after or format_retry_after(self.chaos.retry_after)
            if value is not None:
                reply = attrs.evolve(reply, headers=((b"retry-after", value.encode()),))
        return reply

    # -- the endpoint ------------------------------------------------------------------------

    def respond(  # noqa: PLR0911 -- one return per documented answer, in the endpoint's order
        self, method: str, scheme: str, fields: Iterable[tuple[str, str]] | None
    ) -> Reply:
        """Answer one request as the endpoint would, without chaos (used by the app).

        Args:
            method: The HTTP method.
            scheme: ``https`` or ``http``.
            fields: The form fields of the body (None when the body was not a form).

        Returns:
            The reply.
        """
        crlf = self.quirks.crlf
        if scheme != "https" and self.require_https:
            return _endpoint.error(-1, crlf=crlf)
        if method != "POST":
            return _endpoint.error(-17, crlf=crlf)
        query = _endpoint.parse_query(fields or (), crlf=crlf)
        if isinstance(query, Reply):
            return query
        account = self._accounts.get(query.login_name)
        if account is None or account.locked or account.password != query.password:
            self._failed_login(account)
            return _endpoint.error(-16, crlf=crlf)
        order = self._orders.get(query.order_number)
        if order is None:
            return _endpoint.error(-4, _endpoint.FIELD.ORDER_NUMBER, crlf=crlf)
        if order.account is not account:
            return _endpoint.error(self.foreign_order_code, _endpoint.FIELD.ORDER_NUMBER, crlf=crlf)
        order.polls += 1
        state = order.state_at(self.clock())
        if state is OrderState.PROCESSING:
            return _endpoint.status(0, crlf=crlf)
        if state is not OrderState.ISSUED:
            return _endpoint.error(_STATE_CODE[state], crlf=crlf)
        return self._render(order, query)

    def _failed_login(self, account: Account | None) -> None:
        self.stats.failed_logins += 1
        if account is None or account.locked:
            return
        account.failed_logins += 1
        limit = self.lock_after_failed_logins
        if limit is not None and account.failed_logins >= limit:
            account.locked = True

    def _render(self, order: Order, query: Query) -> Reply:
        # Rendering a chain costs far more than answering: cache per order and query shape.
        if self._rendered_with is not self.quirks:
            self._rendered.clear()
            self._rendered_with = self.quirks
        key = query.render_key
        reply = self._rendered.get(key)
        if reply is None:
            if order.chain is None:
                order.chain = self.ca.issue_smime(order.email)
            chain = order.chain
            cas = (*chain.intermediates, chain.root)
            reply = _endpoint.render_issued(query, chain.end_entity, cas, self.quirks)
            self._rendered[key] = reply
        return reply

    # -- sending -----------------------------------------------------------------------------

    async def _send(self, send: Send, reply: Reply) -> None:
        await self._start(send, reply, *reply.headers)
        await send({"type": "http.response.body", "body": reply.body, "more_body": False})

    async def _start(self, send: Send, reply: Reply, *extra_headers: tuple[bytes, bytes]) -> None:
        # Counts the reply and announces its status, type and whole length.
        self.stats.http_statuses[reply.http_status] += 1
        if reply.code is not None:
            self.stats.codes[reply.code] += 1
        headers = [
            (b"content-type", reply.content_type),
            (b"content-length", str(len(reply.body)).encode()),
            *extra_headers,
        ]
        await send({"type": "http.response.start", "status": reply.http_status, "headers": headers})

    async def _send_truncated(self, scope: Scope, send: Send, reply: Reply) -> None:
        # The whole length is announced, half is sent, then the connection goes away.
        await self._start(send, reply)
        part = reply.body[: len(reply.body) // 2]
        await send({"type": "http.response.body", "body": part, "more_body": True})
        await abort(scope)

    async def _send_oversized(self, send: Send) -> None:
        # No Content-Length: the client must count what it reads and stop at its own cap.
        self.stats.http_statuses[200] += 1
        start = {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
        await send(start)
        await send({"type": "http.response.body", "body": b"2\n", "more_body": True})
        chunk = b"A" * 1023 + b"\n"
        remaining = self.chaos.oversized_body_bytes
        while remaining > 0:
            piece = chunk * 64 if remaining >= 64 * len(chunk) else chunk[:1] * remaining
            remaining -= len(piece)
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _order_number_hint(fields: list[tuple[str, str]] | None) -> int | None:
    for name, value in fields or ():
        if name == _endpoint.FIELD.ORDER_NUMBER and value.isascii() and value.isdigit():
            return int(value[:18])
    return None


def _http_error(status: int) -> Reply:
    phrase = http.HTTPStatus(status).phrase
    return Reply(status, f"{phrase}\n".encode(), None)

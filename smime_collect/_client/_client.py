"""The I/O layer's face: ``CollectClient``, its options, its lifecycle, its three calls.

Everything it decides is delegated: ``_options`` checks the constructor's options, ``_models``
builds and validates each request, ``_collector`` runs one order's attempts, retries and polls
(through the account budget of ``_budget``, the exchange of ``_exchange`` and the decisions of
``_polling``), ``_batch`` runs ``collect_many``'s orders, and ``_observe`` tells every step to
whoever watches.  What is left here is building each ``Order`` (the one place the password is
used) and handing it on.
"""

import asyncio
import os
import random as _random
import ssl
import time
import urllib.parse
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
)
from datetime import UTC, datetime
from typing import Any, Final, Self

import httpx

from .._exceptions import ClientClosedError
from .._models import (
    CollectOutcome,
    CollectRequest,
    CollectResult,
    QueryType,
    ResponseEncoding,
    ResponseType,
    check_credentials,
)
from .._polling import PollPolicy, RetryPolicy
from ..events import OrderFinished
from ._batch import run_batch
from ._budget import AccountBudget
from ._collector import Collector, Sleep
from ._config import check_count, credential_from_env, ssl_context_for
from ._exchange import ThroughClient
from ._observe import Observer, OnEvent
from ._options import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRIES,
    DEFAULT_URL,
    ClientOptions,
    client_options,
)
from ._order import Order
from ._transports import default_transport

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "DEFAULT_URL", "CollectClient"]

_CLOSED: Final = "this CollectClient is closed: create a new one"
# The span names of smime_collect.otel, here without importing OpenTelemetry.
COLLECT_SPAN: Final = "smime_collect.collect"
WAIT_SPAN: Final = "smime_collect.wait"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _connection(
    http_client: httpx.AsyncClient | None,
    transport: httpx.AsyncBaseTransport | None,
    verify: object,
    options: ClientOptions,
) -> httpx.AsyncBaseTransport:
    """What the client sends on: through the caller's client, the given transport, or its own."""
    if http_client is not None:
        return ThroughClient(http_client, options.timeout)
    if transport is not None:
        return transport
    return default_transport(ssl_context_for(verify), options.max_concurrency)


class CollectClient:
    """An asyncio client for CollectSMIME: one HTTP connection pool, retries, polling, batches.

    Args:
        login_name: The Sectigo account's login name (at most 64 characters).
        login_password: Its password (at most 128 characters).  Kept out of every repr,
            log record, exception message, URL and header: it travels only in the POST body.
        base_url: The endpoint's URL; ``https://`` unless ``allow_insecure_http``.
        http_client: An ``httpx.AsyncClient`` to send with, as it is configured (hooks, auth,
            proxies, headers), but with this client's ``timeout`` and never following a
            redirect; never closed here.  ``transport`` and ``verify`` are then ignored.
        transport: An httpx transport to own and send on (tests, the simulator); by default
            the fastest one installed (``smime-collect[aiohttp]``, or httpcore).
        timeout: Seconds for every phase of a request, or an ``httpx.Timeout``; it applies
            through a given ``http_client`` too (httpx's own default of 5 s is too short).
        max_retries: Retries of a transient failure before its error is raised (default 3);
            when given, it overrides ``retry_policy.max_retries``, and when left at its default,
            a given ``retry_policy`` keeps its own.
        max_concurrency: Requests in flight at once, across everything this client does.
            With a ``budget`` it still bounds this client, within the budget's own.
        allow_insecure_http: Accept an ``http://`` base URL (the endpoint itself refuses it).
        max_response_bytes: A longer response body raises ResponseFormatError unread.
        requests_per_second: An optional limit on request starts, shared like max_concurrency
            (ignored with a ``budget``: the budget's own applies).
        budget: An account budget shared with other clients (``LocalBudget``, or
            ``smime_collect.redis.RedisBudget`` for several processes): the requests in
            flight, start rate, slow-down and login guard of each account.  By default
            the client makes its own ``LocalBudget`` from ``max_concurrency`` and
            ``requests_per_second``.
        verify: TLS verification: True (certifi's CAs), an ``ssl.SSLContext``, or the path
            of a PEM CA bundle.
        retry_policy: Backoff tuning (``RetryPolicy``).
        sleep: The coroutine that waits (injected by tests).
        clock: A monotonic clock in seconds (injected by tests).
        random: A source of numbers in ``[0, 1)`` for jitter (injected by tests).
        wall_clock: The current time, timezone-aware, for an HTTP-date ``Retry-After``
            (injected by tests).
        on_event: Called with one ``smime_collect.events`` value per step (a request, a
            retry, a poll, a slow-down, a finished order); what it raises is logged, never
            passed on.
        tracer_provider: An OpenTelemetry ``TracerProvider`` instead of the global one
            (with ``smime-collect[otel]``).
        meter_provider: An OpenTelemetry ``MeterProvider`` instead of the global one.

    Raises:
        InvalidRequestError: A credential is empty or too long, the URL is not HTTPS, or an
            option is out of range; nothing has been sent.
    """

    def __init__(
        self,
        login_name: str,
        login_password: str,
        *,
        base_url: str = DEFAULT_URL,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | httpx.Timeout = 60.0,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_concurrency: int = 4,
        allow_insecure_http: bool = False,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        requests_per_second: float | None = None,
        budget: AccountBudget | None = None,
        verify: bool | str | os.PathLike[str] | ssl.SSLContext = True,
        retry_policy: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = _random.random,
        wall_clock: Callable[[], datetime] = _utc_now,
        on_event: OnEvent | None = None,
        tracer_provider: Any = None,
        meter_provider: Any = None,
    ) -> None:
        check_credentials(login_name, login_password)
        self._login_name = login_name
        self._login_password = login_password
        options = client_options(
            base_url=base_url,
            login_name=login_name,
            allow_insecure_http=allow_insecure_http,
            timeout=timeout,
            max_retries=max_retries,
            max_concurrency=max_concurrency,
            max_response_bytes=max_response_bytes,
            requests_per_second=requests_per_second,
            retry_policy=retry_policy,
            sleep=sleep,
            clock=clock,
            random=random,
            wall_clock=wall_clock,
        )
        self._url = options.url
        self._max_concurrency = max_concurrency
        self._clock = clock
        self._observer = Observer(on_event, clock, tracer_provider, meter_provider)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._http = http_client
        self._transport = _connection(http_client, transport, verify, options)
        self._collector = Collector(
            options, budget, self._transport, self._observer, self._check_open
        )

    @classmethod
    def from_env(cls, *, environ: Mapping[str, str] | None = None, **kwargs: Any) -> Self:
        """Build a client from ``SECTIGO_LOGIN_NAME`` and ``SECTIGO_LOGIN_PASSWORD``.

        Each may instead be given as ``<NAME>_FILE``, the path of a file holding the value
        (a trailing newline is stripped), as container secrets are mounted.  When set,
        ``SECTIGO_BASE_URL`` gives ``base_url`` and ``SECTIGO_CA_BUNDLE`` (a PEM file) gives
        ``verify``, so a program can be pointed at the simulator
        (``python -m smime_collect.testing serve``) with the environment alone.  Keyword
        arguments win over the environment.

        Args:
            environ: The environment to read (default ``os.environ``).
            **kwargs: Passed on to the constructor.

        Returns:
            A new client.

        Raises:
            InvalidRequestError: A variable is missing, empty, or its file cannot be read; the
                message names the variable.
        """
        env = os.environ if environ is None else environ
        name = credential_from_env(env, "SECTIGO_LOGIN_NAME")
        password = credential_from_env(env, "SECTIGO_LOGIN_PASSWORD")
        if env.get("SECTIGO_BASE_URL"):
            kwargs.setdefault("base_url", env["SECTIGO_BASE_URL"])
        if env.get("SECTIGO_CA_BUNDLE"):
            kwargs.setdefault("verify", env["SECTIGO_CA_BUNDLE"])
        return cls(name, password, **kwargs)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(login_name={self._login_name!r}, base_url={str(self._url)!r})"
        )

    @property
    def base_url(self) -> str:
        """The endpoint URL requests are posted to."""
        return str(self._url)

    @property
    def http_client(self) -> httpx.AsyncClient | None:
        """The ``httpx.AsyncClient`` given as ``http_client``, or None.

        None when this client owns its connection: it then sends on its own transport, with no
        ``httpx.AsyncClient`` in between whose settings could be changed (and be ignored).
        """
        return self._http

    @property
    def is_closed(self) -> bool:
        """Whether ``aclose`` has been called: every call then raises ClientClosedError."""
        return self._closed

    async def __aenter__(self) -> Self:
        self._check_open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel batch work in flight and close the connection this client owns, if it does."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._transport.aclose()  # a ThroughClient leaves the caller's client open

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError(_CLOSED)

    def _order(self, request: CollectRequest, **state: Any) -> Order:
        self._check_open()
        # The one place the password is used: urlencoded into the body.
        form = request.form_fields(self._login_name, self._login_password)
        return Order(request, urllib.parse.urlencode(form).encode("ascii"), **state)

    # -- one poll ---------------------------------------------------------------------------

    async def collect(
        self,
        order_number: int,
        *,
        query_type: QueryType = QueryType.CERTIFICATE_AND_CHAIN,
        response_type: ResponseType | None = None,
        response_encoding: ResponseEncoding | None = None,
        show_validity_period: bool = False,
    ) -> CollectResult:
        """Ask once about an order (transient failures retried).

        Args:
            order_number: The order to collect.
            query_type: What to ask for.
            response_type: The certificate container; None lets the server choose.
            response_encoding: Base64 or binary; None lets the server choose.
            show_validity_period: Ask for the validity period too.

        Returns:
            The result: PROCESSING, AVAILABLE, or ATTACHED with the chain.

        Raises:
            InvalidRequestError: Bad arguments.
            ClientClosedError: The client is closed.
            SectigoError: The endpoint answered with a negative status (after retries of -14/-42).
            TransportError: A network failure or HTTP error status (after retries).
            ResponseFormatError: The body is not a CollectSMIME response, or too long.
        """
        request = CollectRequest(
            order_number, query_type, response_type, response_encoding, show_validity_period
        )
        order = self._order(request)
        return await self._observer.order(COLLECT_SPAN, order, self._collector.collect_once(order))

    # -- polling ----------------------------------------------------------------------------

    async def wait_for_certificate(
        self,
        order_number: int,
        *,
        timeout: float = 600.0,  # noqa: ASYNC109 -- the public name; a deadline, not a cancel
        poll_interval: float = 5.0,
        max_poll_interval: float = 60.0,
        query_type: QueryType = QueryType.CERTIFICATE_AND_CHAIN,
        response_type: ResponseType | None = None,
        response_encoding: ResponseEncoding | None = None,
        show_validity_period: bool = False,
    ) -> CollectResult:
        """Poll an order until its certificate is there, with the final query itself.

        A ready order costs one request; one that is ready after k "processing" answers
        costs k + 1.  Waits grow from ``poll_interval`` towards ``max_poll_interval`` with
        jitter and never run past the deadline, which is ``timeout`` seconds after the call.

        Args:
            order_number: The order to wait for.
            timeout: Seconds before giving up with PollTimeoutError.
            poll_interval: The first wait between polls, in seconds.
            max_poll_interval: The longest wait between polls, in seconds.
            query_type: What to ask for; with STATUS, AVAILABLE is enough.
            response_type: The certificate container; None lets the server choose.
            response_encoding: Base64 or binary; None lets the server choose.
            show_validity_period: Ask for the validity period too.

        Returns:
            The ATTACHED result (AVAILABLE or better for a STATUS query).

        Raises:
            PollTimeoutError: The deadline passed; ``.last_status`` is the last answer, and
                when the last request failed (a network outage, a 429), that failure is its
                ``__cause__`` and is named in its message.
            SectigoError: A non-transient negative status, raised at once.
            TransportError: A network or HTTP failure, after retries.
            ResponseFormatError: A body that is not a CollectSMIME response.
            InvalidRequestError: Bad arguments.
            ClientClosedError: The client is closed.
        """
        request = CollectRequest(
            order_number, query_type, response_type, response_encoding, show_validity_period
        )
        policy = PollPolicy(timeout, poll_interval, max_poll_interval)
        order = self._order(request, deadline=self._clock() + timeout)
        return await self._observer.order(WAIT_SPAN, order, self._collector.wait(order, policy))

    # -- batches ----------------------------------------------------------------------------

    def collect_many(  # long for its ten documented arguments; the body is short
        self,
        order_numbers: Iterable[int | str] | AsyncIterable[int | str],
        *,
        wait: bool = True,
        max_active: int | None = None,
        timeout: float = 600.0,
        poll_interval: float = 5.0,
        max_poll_interval: float = 60.0,
        query_type: QueryType = QueryType.CERTIFICATE_AND_CHAIN,
        response_type: ResponseType | None = None,
        response_encoding: ResponseEncoding | None = None,
        show_validity_period: bool = False,
    ) -> AsyncGenerator[CollectOutcome, None]:
        """Collect many orders, yielding one outcome per order as each finishes.

        The orders are read lazily, a few at a time, so any number of them fits in memory.
        One order's failure never stops the others, except a failure every other order would
        meet as well: an account-level Sectigo error (-1, -2, -3, -16, -17) or a network
        failure that retrying cannot heal (an untrusted TLS certificate, an unknown host).
        Then nothing more is sent and every remaining order is yielded with that error.
        Leaving the loop, ``aclose()`` on the generator or closing the client cancels the
        requests in flight.

        Args:
            order_numbers: An iterable or async iterable of order numbers.
            wait: Wait for each certificate as ``wait_for_certificate`` does; with False,
                one ``collect`` per order (the polling options are then ignored).
            max_active: Orders in progress at once (default: ``max_concurrency`` without
                waiting, ``max(64, 4 * max_concurrency)`` with it, since a waiting order
                mostly sleeps); requests in flight stay bounded by ``max_concurrency``.
            timeout: Per order, as in ``wait_for_certificate``, but starting when the order's
                first request is about to be sent: time queued behind other orders is free.
            poll_interval: As in ``wait_for_certificate``.
            max_poll_interval: As in ``wait_for_certificate``.
            query_type: What to ask for.
            response_type: The certificate container.
            response_encoding: Base64 or binary.
            show_validity_period: Ask for the validity period too.

        Returns:
            An async generator of ``CollectOutcome``, in completion order.  An order number
            that is not a positive integer (``"12a"``) is that order's own outcome, with an
            InvalidRequestError and ``order_number`` as given.

        Raises:
            InvalidRequestError: Bad options (at once, before any order is read).
            ClientClosedError: The client is closed (at once), or is closed while the
                generator runs (from the generator).
        """
        self._check_open()
        options = {
            "query_type": query_type,
            "response_type": response_type,
            "response_encoding": response_encoding,
            "show_validity_period": show_validity_period,
        }
        CollectRequest(1, **options)  # validate the options before anything is sent
        policy = PollPolicy(timeout, poll_interval, max_poll_interval) if wait else None
        if max_active is None:
            max_active = max(64, 4 * self._max_concurrency) if wait else self._max_concurrency
        check_count("max_active", max_active, minimum=1)
        return run_batch(
            order_numbers,
            lambda number: self._order(
                CollectRequest(number, **options),
                timeout=None if policy is None else policy.timeout,
                started=self._clock(),
            ),
            lambda order: self._run(order, policy),
            ended=self._ended_early,
            max_active=max_active,
            tasks=self._tasks,
            is_closed=lambda: self._closed,
        )

    def _run(self, order: Order, policy: PollPolicy | None) -> Awaitable[CollectResult]:
        """Collect one order of a batch: once, or waiting for it under ``policy``."""
        if policy is None:
            return self._observer.order(COLLECT_SPAN, order, self._collector.collect_once(order))
        return self._observer.order(WAIT_SPAN, order, self._collector.wait(order, policy))

    def _ended_early(self, outcome: CollectOutcome, order: Order | None) -> None:
        """Tell how a batch's order ended that ``_run`` did not finish: a bad number, the stop."""
        if self._observer.on_event is None:
            return
        requests = 0 if order is None else order.requests
        started = None if order is None else order.started
        elapsed = 0.0 if started is None else self._clock() - started
        number, error = outcome.order_number, outcome.error
        self._observer.emit(
            OrderFinished(number, ok=False, requests=requests, elapsed=elapsed, error=error)
        )

"""The I/O layer: ``CollectClient``, the one place requests are sent.

Everything it decides is delegated: ``_models`` builds and validates the request, ``_protocol``
reads the response, ``_polling`` says whether and how long to wait, ``_options`` checks its
options, ``_exchange`` posts the form and reads the answer within its size limit, ``_failures``
translates httpx's exceptions and error statuses at one boundary, and ``_batch`` runs
``collect_many``'s orders.  What is left here is pacing, retrying, polling and sleeping.

Only this module and those helpers of it import httpx: ``_transports`` (the transports it runs
on when it owns its httpx client, with ``_aiohttp``), ``_options``, ``_exchange`` and ``_failures``.
"""

import asyncio
import logging
import math
import os
import random as _random
import ssl
import time
import urllib.parse
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, Final, Self

import attrs
import httpx

from .. import _polling
from .._exceptions import CollectError, InvalidRequestError, PollTimeoutError, SectigoError
from .._models import (
    CollectOutcome,
    CollectRequest,
    CollectResult,
    QueryType,
    ResponseEncoding,
    ResponseType,
    Status,
    check_credentials,
)
from .._protocol import parse_response
from ._batch import BatchState, run_batch
from ._config import (
    check_count,
    check_polling,
    check_timeout,
    check_url,
    credential_from_env,
    request_interval,
    ssl_context_for,
)
from ._exchange import Exchange
from ._failures import Failure, log_reason, network_failure, sectigo_failure
from ._transports import default_transport

__all__ = ["DEFAULT_URL", "CollectClient"]

DEFAULT_URL: Final = "https://secure.trust-provider.com/products/download/CollectSMIME"
DEFAULT_MAX_RESPONSE_BYTES: Final = 4 * 1024 * 1024

_LOGGER = logging.getLogger("smime_collect")

Sleep = Callable[[float], Awaitable[object]]


class _DeadlineReachedError(Exception):
    """Internal: a wait_for_certificate deadline passed while waiting to retry."""

    def __init__(self, last_error: CollectError | None) -> None:
        super().__init__("deadline reached")
        self.last_error = last_error


class CollectClient:
    """An asyncio client for CollectSMIME: one HTTP session, retries, polling, batches.

    Args:
        login_name: The Sectigo account's login name (at most 64 characters).
        login_password: Its password (at most 128 characters).  Kept out of every repr,
            log record, exception message, URL and header: it travels only in the POST body.
        base_url: The endpoint's URL; ``https://`` unless ``allow_insecure_http``.
        http_client: An ``httpx.AsyncClient`` to send with; used as is and never closed here.
        transport: An httpx transport for a client this object owns (tests, the simulator).
        timeout: Seconds for every phase of a request, or an ``httpx.Timeout``; it applies
            through a given ``http_client`` too (httpx's own default of 5 s is too short).
        max_retries: Retries of a transient failure before its error is raised.
        max_concurrency: Requests in flight at once, across everything this client does.
        allow_insecure_http: Accept an ``http://`` base URL (the endpoint itself refuses it).
        max_response_bytes: A longer response body raises ResponseFormatError unread.
        requests_per_second: An optional limit on request starts, shared like max_concurrency.
        verify: TLS verification: True (certifi's CAs), an ``ssl.SSLContext``, or the path
            of a PEM CA bundle.
        retry_policy: Backoff tuning; ``max_retries`` overrides its field of the same name.
        sleep: The coroutine that waits (injected by tests).
        clock: A monotonic clock in seconds (injected by tests).
        random: A source of numbers in ``[0, 1)`` for jitter (injected by tests).

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
        max_retries: int = 3,
        max_concurrency: int = 4,
        allow_insecure_http: bool = False,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        requests_per_second: float | None = None,
        verify: bool | str | os.PathLike[str] | ssl.SSLContext = True,
        retry_policy: _polling.RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = _random.random,
    ) -> None:
        check_credentials(login_name, login_password)
        self._login_name = login_name
        self._login_password = login_password
        self._url = check_url(base_url, allow_insecure_http=allow_insecure_http)
        request_timeout = check_timeout(timeout)
        check_count("max_concurrency", max_concurrency, minimum=1)
        check_count("max_response_bytes", max_response_bytes, minimum=1)
        check_count("max_retries", max_retries, minimum=0)
        self._interval = request_interval(requests_per_second)
        policy = retry_policy or _polling.RetryPolicy()
        self._policy = attrs.evolve(policy, max_retries=max_retries)
        self._max_concurrency = max_concurrency
        self._sleep = sleep
        self._clock = clock
        self._random = random
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._not_before = -math.inf  # shared slow-down after a 429 or -42
        self._next_slot = -math.inf  # requests_per_second bookkeeping
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._owns_http = http_client is None
        if http_client is not None:
            self._http = http_client
            transport = None  # sent through the caller's client, as it is configured
        else:
            if transport is None:
                transport = default_transport(ssl_context_for(verify), max_concurrency)
            self._http = httpx.AsyncClient(
                transport=transport, timeout=request_timeout, follow_redirects=False
            )
        self._exchange = Exchange(
            self._url, self._http, transport, request_timeout.as_dict(), max_response_bytes
        )

    @classmethod
    def from_env(cls, *, environ: Mapping[str, str] | None = None, **kwargs: Any) -> Self:
        """Build a client from ``SECTIGO_LOGIN_NAME`` and ``SECTIGO_LOGIN_PASSWORD``.

        Each may instead be given as ``<NAME>_FILE``, the path of a file holding the value
        (a trailing newline is stripped), as container secrets are mounted.

        Args:
            environ: The environment to read (default ``os.environ``).
            **kwargs: Passed on to the constructor.

        Returns:
            A new client.

        Raises:
            InvalidRequestError: A variable is missing or its file cannot be read; the message
                names the variable.
        """
        env = os.environ if environ is None else environ
        name = credential_from_env(env, "SECTIGO_LOGIN_NAME")
        password = credential_from_env(env, "SECTIGO_LOGIN_PASSWORD")
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
    def http_client(self) -> httpx.AsyncClient:
        """The ``httpx.AsyncClient`` requests are sent with."""
        return self._http

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel batch work in flight and close the HTTP client if this object created it."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._owns_http:
            await self._http.aclose()

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
            InvalidRequestError: Bad arguments, or the client is closed.
            SectigoError: The endpoint answered with a negative status (after retries of -14/-42).
            TransportError: A network failure or HTTP error status (after retries).
            ResponseFormatError: The body is not a CollectSMIME response, or too long.
        """
        request = CollectRequest(
            order_number, query_type, response_type, response_encoding, show_validity_period
        )
        return await self._collect(request)

    async def _collect(
        self,
        request: CollectRequest,
        *,
        deadline: float | None = None,
        batch: BatchState | None = None,
    ) -> CollectResult:
        if self._closed:
            raise InvalidRequestError("this CollectClient is closed: create a new one")
        # The one place the password is used: urlencoded into the body (CONTRACT 2).
        body = urllib.parse.urlencode(
            request.form_fields(self._login_name, self._login_password)
        ).encode("ascii")
        retry = 0
        last: Failure | None = None
        while True:
            try:
                outcome = await self._attempt(request, body, retry + 1, deadline, batch)
            except _DeadlineReachedError as reached:
                if reached.last_error is None and last is not None:
                    # Out of time while held back by a 429/-42: that is why; keep it as the cause.
                    raise _DeadlineReachedError(last.error) from None
                raise
            last = outcome if isinstance(outcome, Failure) else None
            if isinstance(outcome, CollectResult):
                return outcome
            delay = _polling.retry_delay(
                self._policy, retry, self._random(), retry_after=outcome.retry_after
            )
            if outcome.rate_limited:
                # 429 / -42: the account is over its limit, so every request of this client
                # waits (CONTRACT 5), even when this one gives up.  _wait_turn does the waiting.
                self._not_before = max(self._not_before, self._clock() + delay)
            if not outcome.transient or retry >= self._policy.max_retries:
                raise outcome.error
            _LOGGER.warning(
                "order %d: %s; retry %d of %d in %.2f s",
                request.order_number,
                log_reason(outcome.error, request.order_number),
                retry + 1,
                self._policy.max_retries,
                delay,
            )
            if not outcome.rate_limited:
                # Never sleep past the caller's deadline (wait_for_certificate).
                remaining = math.inf if deadline is None else deadline - self._clock()
                await self._sleep(max(0.0, min(delay, remaining)))
            if deadline is not None and self._clock() >= deadline:
                raise _DeadlineReachedError(outcome.error)
            retry += 1

    async def _wait_turn(self, deadline: float | None) -> None:
        # The shared slow-down may move while we sleep (another request saw a 429): sleep again
        # only then.  Re-reading the clock alone would spin when sleep= is a test's no-op.
        while (wait := (target := self._not_before) - self._clock()) > 0:
            if deadline is not None and deadline - self._clock() <= wait:
                await self._sleep(max(0.0, deadline - self._clock()))
                raise _DeadlineReachedError(None)
            await self._sleep(wait)
            if self._not_before <= target:
                break
        if self._interval is not None:
            now = self._clock()
            start, self._next_slot = _polling.reserve_slot(self._next_slot, now, self._interval)
            if start > now:
                await self._sleep(start - now)

    async def _attempt(
        self,
        request: CollectRequest,
        body: bytes,
        attempt: int,
        deadline: float | None,
        batch: BatchState | None,
    ) -> CollectResult | Failure:
        order = request.order_number
        async with self._semaphore:
            await self._wait_turn(deadline)
            if batch is not None and batch.stop_error is not None:
                # An account-level error elsewhere in the batch: send nothing more.
                return Failure(batch.error_for(order), transient=False)
            started = time.perf_counter()
            # A deadline also bounds the request in flight: a server trickling one byte per
            # read timeout would otherwise keep wait_for_certificate going far past it.
            budget = None if deadline is None else max(0.0, deadline - self._clock())
            try:
                async with asyncio.timeout(budget):
                    response = await self._exchange.post(body)
                    try:
                        if not response.is_success:
                            _log_http_status(order, attempt, response.status_code, started)
                            return self._exchange.status_failure(response, order)
                        content = await self._exchange.read(response, order)
                    finally:
                        await response.aclose()
            except TimeoutError:  # only asyncio.timeout raises the builtin here
                raise _DeadlineReachedError(None) from None
            except httpx.HTTPError as exc:
                _LOGGER.debug(
                    "order %d attempt %d: %s after %.1f ms",
                    order,
                    attempt,
                    type(exc).__name__,
                    _elapsed_ms(started),
                )
                return network_failure(exc, order)
            _log_http_status(order, attempt, response.status_code, started)
        try:
            return parse_response(content, request, response.headers.get("content-type"))
        except SectigoError as exc:
            return sectigo_failure(exc, response)

    # -- polling ----------------------------------------------------------------------------

    async def wait_for_certificate(
        self,
        order_number: int,
        *,
        timeout: float = 600.0,  # noqa: ASYNC109 -- the contract's name; a deadline, not a cancel
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
        jitter and never run past the deadline.

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
            PollTimeoutError: The deadline passed; ``.last_status`` is the last answer.
            SectigoError: A non-transient negative status, raised at once.
            TransportError: A network or HTTP failure, after retries.
            ResponseFormatError: A body that is not a CollectSMIME response.
            InvalidRequestError: Bad arguments.
        """
        request = CollectRequest(
            order_number, query_type, response_type, response_encoding, show_validity_period
        )
        check_polling(timeout, poll_interval, max_poll_interval)
        return await self._wait(request, timeout, poll_interval, max_poll_interval)

    async def _wait(
        self,
        request: CollectRequest,
        timeout: float,  # noqa: ASYNC109 -- see wait_for_certificate
        poll_interval: float,
        max_poll_interval: float,
        batch: BatchState | None = None,
    ) -> CollectResult:
        enough = Status.AVAILABLE if request.query_type is QueryType.STATUS else Status.ATTACHED
        deadline = self._clock() + timeout
        last_status: Status | None = None
        poll = 0
        while True:
            try:
                result = await self._collect(request, deadline=deadline, batch=batch)
            except _DeadlineReachedError as reached:
                raise PollTimeoutError(
                    request.order_number, last_status, timeout
                ) from reached.last_error
            if result.status >= enough:
                return result
            last_status = result.status
            remaining = deadline - self._clock()
            if remaining > 0:
                await self._sleep(
                    _polling.next_poll_delay(
                        poll,
                        self._random(),
                        poll_interval=poll_interval,
                        max_poll_interval=max_poll_interval,
                        remaining=remaining,
                    )
                )
            if self._clock() >= deadline:
                raise PollTimeoutError(request.order_number, last_status, timeout)
            poll += 1

    # -- batches ----------------------------------------------------------------------------

    def collect_many(
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
    ) -> AsyncIterator[CollectOutcome]:
        """Collect many orders, yielding one outcome per order as each finishes.

        The orders are read lazily, a few at a time, so any number of them fits in memory.
        One order's failure never stops the others, except an account-level Sectigo error
        (-1, -2, -3, -16, -17): then nothing more is sent and every remaining order is
        yielded with that error.  Leaving the loop, ``aclose()`` on the iterator or closing
        the client cancels the requests in flight.

        Args:
            order_numbers: An iterable or async iterable of order numbers.
            wait: Wait for each certificate as ``wait_for_certificate`` does; with False,
                one ``collect`` per order (the polling options are then ignored).
            max_active: Orders in progress at once (default: ``max_concurrency`` without
                waiting, ``max(64, 4 * max_concurrency)`` with it, since a waiting order
                mostly sleeps); requests in flight stay bounded by ``max_concurrency``.
            timeout: Per order, as in ``wait_for_certificate``.
            poll_interval: As in ``wait_for_certificate``.
            max_poll_interval: As in ``wait_for_certificate``.
            query_type: What to ask for.
            response_type: The certificate container.
            response_encoding: Base64 or binary.
            show_validity_period: Ask for the validity period too.

        Returns:
            An async generator of ``CollectOutcome``, in completion order.

        Raises:
            InvalidRequestError: Bad options (at once), or an order number that is not a
                positive integer (when it is read).
        """
        options = {
            "query_type": query_type,
            "response_type": response_type,
            "response_encoding": response_encoding,
            "show_validity_period": show_validity_period,
        }
        CollectRequest(1, **options)  # validate the options before anything is sent
        if wait:
            check_polling(timeout, poll_interval, max_poll_interval)
        if max_active is None:
            max_active = max(64, 4 * self._max_concurrency) if wait else self._max_concurrency
        check_count("max_active", max_active, minimum=1)
        batch = BatchState()

        async def work(request: CollectRequest) -> CollectResult:
            if wait:
                return await self._wait(request, timeout, poll_interval, max_poll_interval, batch)
            return await self._collect(request, batch=batch)

        return run_batch(
            order_numbers,
            lambda number: CollectRequest(number, **options),
            work,
            batch,
            max_active=max_active,
            tasks=self._tasks,
            is_closed=lambda: self._closed,
        )


def _log_http_status(order: int, attempt: int, status: int, started: float) -> None:
    _LOGGER.debug(
        "order %d attempt %d: HTTP %d in %.1f ms", order, attempt, status, _elapsed_ms(started)
    )


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0

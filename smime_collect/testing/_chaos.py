"""The simulator's failure knobs and counters: random chaos, scripted faults, statistics.

Everything random here draws from the simulator's own seeded :class:`random.Random`, so a run with
the same seed and the same request order fails the same way. Scripted faults
(:meth:`Simulator.inject`) are exact: "the next 2 requests for order 5 get HTTP 503".
"""

import enum
import random
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from email.utils import format_datetime

import attrs

__all__ = ["Chaos", "Fault", "ScriptedFault", "Stats", "format_retry_after"]


class Fault(enum.Enum):
    """One way a request can fail before (or while) the endpoint answers it."""

    HTTP_429 = "http_429"
    """HTTP 429 Too Many Requests, with ``Retry-After``."""
    HTTP_500 = "http_500"
    """HTTP 500 Internal Server Error."""
    HTTP_502 = "http_502"
    """HTTP 502 Bad Gateway (a proxy in front of Sectigo)."""
    HTTP_503 = "http_503"
    """HTTP 503 Service Unavailable, with ``Retry-After``."""
    HTTP_504 = "http_504"
    """HTTP 504 Gateway Timeout."""
    ERROR_14 = "error_14"
    """HTTP 200 with Sectigo code -14, "An unknown error occurred!"."""
    ERROR_42 = "error_42"
    """HTTP 200 with code -42, "Call limit reached, please try again later" (a sibling API's)."""
    DROP_CONNECTION = "drop_connection"
    """The connection closes before any response byte (httpx: ``RemoteProtocolError``)."""
    TRUNCATED_BODY = "truncated_body"
    """The real answer, announced in full by Content-Length, cut off half-way."""
    OVERSIZED_BODY = "oversized_body"
    """HTTP 200 ``2`` and then :attr:`Chaos.oversized_body_bytes` of filler, without a length."""
    TIMEOUT = "timeout"
    """No answer. In-process the transport raises ``httpx.ReadTimeout`` at once (the client's
    read timeout, run out without waiting); on a socket the server stays silent until the client
    gives up, the server stops, or :attr:`Chaos.stall_seconds` pass, then closes."""

    @property
    def http_status(self) -> int | None:
        """The HTTP status this fault answers with, when it is an HTTP error."""
        return _HTTP_STATUS.get(self)


_HTTP_STATUS = {
    Fault.HTTP_429: 429,
    Fault.HTTP_500: 500,
    Fault.HTTP_502: 502,
    Fault.HTTP_503: 503,
    Fault.HTTP_504: 504,
}


# Each fault's rate field on Chaos, computed once: draw() runs on every request.
_RATE_FIELDS = tuple((fault, f"{fault.value}_rate") for fault in Fault)


def format_retry_after(value: str | float | datetime | None) -> str | None:
    """Render a ``Retry-After`` value (RFC 9110 section 10.2.3).

    Args:
        value: Seconds (a number, or a string sent as it is, so odd values can be tested), an
            aware datetime (sent as an HTTP-date), or None for no header.

    Returns:
        The header value, or None.

    Raises:
        ValueError: A negative number of seconds or a naive datetime.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("Retry-After needs an aware datetime (e.g. tzinfo=UTC)")
        return format_datetime(value, usegmt=True)
    if value < 0:
        raise ValueError(f"Retry-After seconds must be >= 0, not {value!r}")
    return str(int(value))


def _rate(instance: object, attribute: "attrs.Attribute[float]", value: float) -> None:
    del instance
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be a probability in [0, 1], not {value!r}")


def _non_negative(instance: object, attribute: "attrs.Attribute[float]", value: float) -> None:
    del instance
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, not {value!r}")


@attrs.define
class Chaos:
    """Random trouble, drawn per request from the simulator's seeded PRNG.

    At most one fault hits a request: the rates are the probabilities of disjoint outcomes, so
    their sum must not pass 1. Latency applies to every request, faulty or not.

    Attributes:
        latency: Seconds every request waits before it is answered (through the simulator's
            ``sleep``, so tests can make it instant or observable).
        latency_jitter: Up to this many extra seconds, uniformly drawn.
        http_429_rate: Probability of HTTP 429 with ``Retry-After``.
        http_500_rate: Probability of HTTP 500.
        http_502_rate: Probability of HTTP 502.
        http_503_rate: Probability of HTTP 503 with ``Retry-After``.
        http_504_rate: Probability of HTTP 504.
        error_14_rate: Probability of Sectigo code -14.
        error_42_rate: Probability of Sectigo code -42.
        drop_connection_rate: Probability that the connection closes without a response.
        truncated_body_rate: Probability that the answer stops half-way.
        oversized_body_rate: Probability of an answer of ``oversized_body_bytes``.
        timeout_rate: Probability of no answer at all (see ``Fault.TIMEOUT``).
        retry_after: The ``Retry-After`` of 429 and 503 answers: seconds, an HTTP-date string,
            an aware datetime, or None to send none.
        oversized_body_bytes: Size of an oversized answer (default 8 MiB, twice the client's cap).
        stall_seconds: On a socket, the longest a TIMEOUT fault holds a connection (real time).
    """

    latency: float = attrs.field(default=0.0, validator=_non_negative)
    latency_jitter: float = attrs.field(default=0.0, validator=_non_negative)
    http_429_rate: float = attrs.field(default=0.0, validator=_rate)
    http_500_rate: float = attrs.field(default=0.0, validator=_rate)
    http_502_rate: float = attrs.field(default=0.0, validator=_rate)
    http_503_rate: float = attrs.field(default=0.0, validator=_rate)
    http_504_rate: float = attrs.field(default=0.0, validator=_rate)
    error_14_rate: float = attrs.field(default=0.0, validator=_rate)
    error_42_rate: float = attrs.field(default=0.0, validator=_rate)
    drop_connection_rate: float = attrs.field(default=0.0, validator=_rate)
    truncated_body_rate: float = attrs.field(default=0.0, validator=_rate)
    oversized_body_rate: float = attrs.field(default=0.0, validator=_rate)
    timeout_rate: float = attrs.field(default=0.0, validator=_rate)
    retry_after: str | float | datetime | None = "1"
    oversized_body_bytes: int = attrs.field(
        default=8 * 1024 * 1024, validator=attrs.validators.ge(0)
    )
    stall_seconds: float = attrs.field(default=30.0, validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        total = sum(rate for _, rate in self.rates())
        if total > 1.0 + 1e-9:
            raise ValueError(f"the fault rates add up to {total:.3f}; at most 1 fault per request")
        format_retry_after(self.retry_after)  # fail now, not on the first 503

    def rates(self) -> Iterator[tuple[Fault, float]]:
        """Each fault with its probability.

        Yields:
            ``(fault, rate)`` pairs, in the order :meth:`draw` walks them.
        """
        for fault, name in _RATE_FIELDS:
            yield fault, getattr(self, name)

    def draw(self, rng: random.Random) -> Fault | None:
        """Pick the fault for one request, or none.

        Args:
            rng: The seeded PRNG to draw from (exactly one draw per call).

        Returns:
            The fault, or None for a normal answer.
        """
        point = rng.random()
        for fault, rate in self.rates():
            if point < rate:
                return fault
            point -= rate
        return None

    def delay(self, rng: random.Random) -> float:
        """The latency of one request (draws from ``rng`` only when there is jitter).

        Args:
            rng: The seeded PRNG.

        Returns:
            Seconds to wait.
        """
        if self.latency_jitter:
            return self.latency + rng.uniform(0.0, self.latency_jitter)
        return self.latency


@attrs.define
class ScriptedFault:
    """A fault queued with :meth:`Simulator.inject`.

    Attributes:
        fault: What happens.
        remaining: How many more matching requests it hits.
        order_number: Only requests for this order match; None matches every request.
        retry_after: ``Retry-After`` for this fault; None falls back to ``Chaos.retry_after``.
    """

    fault: Fault
    remaining: int
    order_number: int | None = None
    retry_after: str | None = None

    def matches(self, order_number: int | None) -> bool:
        """Whether a request for ``order_number`` is hit by this fault.

        Args:
            order_number: The request's order, or None when it has no valid one.

        Returns:
            True when it matches and is not used up.
        """
        return self.remaining > 0 and self.order_number in (None, order_number)


@attrs.define
class Stats:
    """What the simulator has seen; read it in assertions, :meth:`reset` between phases.

    Attributes:
        requests_total: Every HTTP request that reached the simulator.
        requests_by_order: Requests per order number (those whose ``orderNumber`` was an integer).
        in_flight: Requests being answered right now.
        max_in_flight: The most requests in flight at once.
        failed_logins: Answers with code -16.
        faults: Faults injected, by kind (random and scripted).
        codes: Status lines sent (``2``, ``1``, ``0``, ``-4``, ...), binary answers counted as 2.
        http_statuses: HTTP statuses sent.
    """

    requests_total: int = 0
    requests_by_order: Counter[int] = attrs.field(factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0
    failed_logins: int = 0
    faults: Counter[Fault] = attrs.field(factory=Counter)
    codes: Counter[int] = attrs.field(factory=Counter)
    http_statuses: Counter[int] = attrs.field(factory=Counter)

    def reset(self) -> None:
        """Zero every counter (``in_flight`` is left alone: those requests are still running)."""
        in_flight = self.in_flight
        self.__init__()  # type: ignore[misc]  # attrs re-initialises every field to its default
        self.in_flight = in_flight

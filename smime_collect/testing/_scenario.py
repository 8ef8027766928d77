"""The simulator's world: accounts, orders and their states, the server's quirks, a manual clock."""

import asyncio
import enum
from typing import Literal

import attrs

from smime_collect._enums import ResponseType

from ._pki import IssuedChain

__all__ = ["Account", "ManualClock", "Order", "OrderState", "Quirks"]


class OrderState(enum.Enum):
    """Where an order ends up once it is no longer being processed."""

    ISSUED = "issued"
    """Status 1 for a status query, 2 and the certificates for the others."""
    PROCESSING = "processing"
    """Status 0 ("being processed by Sectigo"), forever."""
    REJECTED = "rejected"
    """Code -20, "The certificate request has been rejected!"."""
    REVOKED = "revoked"
    """Code -21, "The certificate has been revoked!"."""
    AWAITING_PAYMENT = "awaiting_payment"
    """Code -22, "Still awaiting payment!"."""


@attrs.define
class Account:
    """A Sectigo account the simulator accepts logins for.

    Attributes:
        login_name: ``loginName`` (case sensitive, at most 64 characters on the wire).
        password: ``loginPassword``; never shown in ``repr()``.
        locked: A locked account answers -16 even to the right password.
        failed_logins: Wrong passwords given for this login name.
    """

    login_name: str
    password: str = attrs.field(repr=False)
    locked: bool = False
    failed_logins: int = 0


@attrs.define
class Order:
    """One certificate order, as the simulator tracks it.

    The order answers "being processed" (status 0) for its first ``ready_after_polls`` polls and
    until ``ready_after_seconds`` have passed on the simulator's clock since it was added; then it
    shows ``state``. Change ``state`` at any time (e.g. to revoke an issued order mid-test).

    Attributes:
        number: ``orderNumber``.
        account: The account that owns it; other accounts cannot collect it.
        state: The state once processing is over.
        ready_after_polls: Polls answered with status 0 first.
        ready_after_seconds: Seconds (simulator clock) answered with status 0 first.
        email: The rfc822Name of the end-entity certificate.
        created_at: The simulator clock's reading when the order was added.
        polls: Requests that reached this order so far (faulted requests excluded).
        chain: The issued certificates; made on first collection unless given.
    """

    number: int
    account: Account
    state: OrderState = OrderState.ISSUED
    ready_after_polls: int = 0
    ready_after_seconds: float = 0.0
    email: str = ""
    created_at: float = 0.0
    polls: int = 0
    chain: IssuedChain | None = attrs.field(default=None, repr=False)

    def state_at(self, now: float) -> OrderState:
        """The state a poll sees now (call after counting the poll).

        Args:
            now: The simulator clock's reading.

        Returns:
            PROCESSING while the order is not ready, else ``state``.
        """
        if self.polls <= self.ready_after_polls or now - self.created_at < self.ready_after_seconds:
            return OrderState.PROCESSING
        return self.state


@attrs.frozen
class Quirks:
    """How the simulated server renders what it sends (``docs/reference/endpoint.md``).

    The defaults follow the endpoint page's sample where it shows something (root first) and
    plain, well-formed output elsewhere. Change them to test a client's tolerance.

    Attributes:
        root_first: List certificates root first, as the page's sample does; False lists the end
            entity first. Either way, PKCS#7 DER sorts its SET (see ``pkcs7_sorted``).
        include_root: Send the self-signed root along with the intermediates.
        sloppy_pem_markers: The page's markers: ``----- BEGIN CERTIFICATE -----`` and a last END
            line with four dashes.
        crlf: End every text line with CRLF.
        default_response_type: What an omitted ``responseType`` means (the page does not say).
            A chain-only type falls back to INDIVIDUAL for query types 2 and 3.
        pkcs7_sorted: DER-sort PKCS#7 certificates (as cryptography writes them); False keeps list
            order like OpenSSL's ``crl2pkcs7``, which cryptography reads with a UserWarning.
        cmmf_tagging: ``"explicit"`` (RFC 4210) or ``"implicit"`` (NSS) CMMF tags.
        base64_line_length: Line length of bare base64 bodies; None for one long line.
    """

    root_first: bool = True
    include_root: bool = True
    sloppy_pem_markers: bool = False
    crlf: bool = False
    default_response_type: ResponseType = ResponseType.INDIVIDUAL
    pkcs7_sorted: bool = True
    cmmf_tagging: Literal["explicit", "implicit"] = "explicit"
    base64_line_length: int | None = 64


@attrs.define
class ManualClock:
    """A clock that moves only when told: pass it as ``clock`` (and its ``sleep`` as ``sleep``).

    Example::

        clock = ManualClock()
        sim = Simulator(clock=clock, sleep=clock.sleep)
        sim.add_order(7, ready_after_seconds=30)
        clock.advance(30)   # order 7 is ready now, nobody waited

    Attributes:
        now: The current reading, in seconds.
        sleeps: Every wait asked of ``sleep``, in order: what the code under test would wait.
    """

    now: float = 0.0
    sleeps: list[float] = attrs.field(factory=list, repr=False)

    def __call__(self) -> float:
        """The current reading.

        Returns:
            Seconds.
        """
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward.

        Args:
            seconds: How far (not negative).

        Raises:
            ValueError: ``seconds`` is negative.
        """
        if seconds < 0:
            raise ValueError(f"a clock does not go back: advance({seconds!r})")
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        """Advance by ``seconds`` instead of waiting, then let other tasks run once.

        Args:
            seconds: How long the caller wanted to wait.
        """
        self.sleeps.append(seconds)
        self.advance(max(seconds, 0.0))
        await asyncio.sleep(0)

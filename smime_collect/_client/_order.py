"""One order on its way through ``CollectClient``: its form, its deadline, its last answers.

The loops in ``_collector`` keep what they learn about an order here, so that when its time runs
out the ``PollTimeoutError`` can say why: the last status Sectigo reported, and the failure of
the last request when that request failed (a network outage is not "still processing").
"""

from __future__ import annotations

import attrs

from .._exceptions import PollTimeoutError
from .._models import CollectRequest, Status
from .._polling import Failure

__all__ = ["Order"]


@attrs.define
class Order:
    """One order on its way through the client: its form, its deadline, its last answers.

    Attributes:
        request: What is asked.
        body: The urlencoded form, password included (never shown).
        timeout: For ``collect_many``: the per-order timeout, which starts the deadline when
            the first request is about to be sent.
        deadline: When waiting for this order ends (on the client's clock), once known.
        last_status: The last status Sectigo reported for it.
        last_failure: The failure of the last attempt, when the last attempt failed.
        requests: Requests sent for it so far (counted only when someone watches the client).
        started: For ``collect_many``: when the batch took it up, on the client's clock.
    """

    request: CollectRequest
    body: bytes = attrs.field(repr=False)
    timeout: float | None = None
    deadline: float | None = None
    last_status: Status | None = None
    last_failure: Failure | None = None
    requests: int = 0
    started: float | None = None

    def timed_out(self, timeout: float) -> PollTimeoutError:
        """The PollTimeoutError for this order, caused by its last failure if the last try failed.

        Args:
            timeout: The seconds it was given.

        Returns:
            The error to raise.
        """
        # Requests that failed until the deadline are not "still processing": the error names
        # what failed (a network outage, a 429), in its message, its last_error and its cause.
        cause = None if self.last_failure is None else self.last_failure.error
        error = PollTimeoutError(self.request.order_number, self.last_status, timeout, cause)
        error.__cause__ = cause
        return error

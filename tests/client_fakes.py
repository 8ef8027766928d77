"""What the CollectClient tests share: a fake endpoint (respx or a handler), fake time, answers.

Not a test module: ``test_client*.py`` import it.  Every client here has a transport that answers
in-process and a ``ManualClock`` for its time, so nothing waits and nothing leaves the process.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import respx

from smime_collect import (
    DEFAULT_URL,
    AuthenticationError,
    CallLimitError,
    CertificateRejectedError,
    CollectClient,
    HttpsRequiredError,
    InvalidArgumentError,
    MissingArgumentError,
    PermissionDeniedError,
    PostRequiredError,
    SectigoError,
    UnknownServerError,
    UnrecognisedArgumentError,
)
from smime_collect.testing import ManualClock
from smime_collect.testing._formats import to_pem_blocks
from smime_collect.testing._pki import TestCA

PASSWORD = "pa55-w0rd!&="
CHAIN = TestCA.create().issue_smime("alice@example.com")
READY = b"2\n" + to_pem_blocks(CHAIN.certificates())
PROCESSING = b"0\n"


# Each Sectigo code as the endpoint words it, and the error the client raises for it.
SECTIGO_ANSWERS: dict[int, tuple[bytes, type[SectigoError]]] = {
    -1: (b"-1\nHTTPS is required\n", HttpsRequiredError),
    -2: (b"-2\nThe 'foo' argument is not recognised!\n", UnrecognisedArgumentError),
    -3: (b"-3\nThe 'orderNumber' argument is missing!\n", MissingArgumentError),
    -4: (b"-4\nThe value of the 'orderNumber' argument is invalid!\n", InvalidArgumentError),
    -14: (b"-14\nAn unknown error occurred!\n", UnknownServerError),
    -16: (b"-16\nIncorrect login details\n", AuthenticationError),
    -17: (b"-17\nPOST is required\n", PostRequiredError),
    -20: (b"-20\nThe certificate request has been rejected!\n", CertificateRejectedError),
    -42: (b"-42\nCall limit reached, please try again later\n", CallLimitError),
    -91: (b"-91\nPermission denied\n", PermissionDeniedError),
}


def sectigo_codes(*codes: int) -> pytest.MarkDecorator:
    """Run a test with ``body`` and ``error`` for each of these codes."""
    return pytest.mark.parametrize(
        ("body", "error"), [SECTIGO_ANSWERS[code] for code in codes], ids=[str(c) for c in codes]
    )


@pytest.fixture(name="router")
def router_fixture() -> respx.Router:
    """A respx router that fails on any request it does not know."""
    return respx.Router(assert_all_mocked=True)


Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


def fake_client(handler: Handler, fake_time: ManualClock, **kwargs: Any) -> CollectClient:
    """A client whose every request ``handler`` answers, whose time is fake, jitter fixed."""
    kwargs.setdefault("random", lambda: 0.5)
    kwargs.setdefault("sleep", fake_time.sleep)
    return CollectClient(
        "alice", PASSWORD, transport=httpx.MockTransport(handler), clock=fake_time, **kwargs
    )


def make_client(router: respx.Router, fake_time: ManualClock, **kwargs: Any) -> CollectClient:
    """A client whose transport is the respx router and whose time is fake."""
    return fake_client(router.async_handler, fake_time, **kwargs)


async def spin(turns: int = 50) -> None:
    """Let the other tasks run for a while."""
    for _ in range(turns):
        await asyncio.sleep(0)


def form(request: httpx.Request) -> dict[str, str]:
    """The urlencoded fields of a request body."""
    return dict(urllib.parse.parse_qsl(request.content.decode("ascii"), strict_parsing=True))


class GatedSleep:
    """A client's sleep that records each wait and returns only once the test opens the gate."""

    def __init__(self, fake_time: ManualClock) -> None:
        self.fake_time = fake_time
        self.gate = asyncio.Event()
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        """Record the wait; when the gate opens, move the fake clock by it."""
        self.waits.append(seconds)
        await self.gate.wait()
        self.fake_time.advance(seconds)


def first_answer_then_ready(router: respx.Router, first: httpx.Response) -> list[int]:
    """Answer the first request with ``first``, every later one with a certificate.

    Returns:
        The order number of each request, in the order they were sent.
    """
    sent: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(int(form(request)["orderNumber"]))
        return first if len(sent) == 1 else READY_RESPONSE()

    router.post(DEFAULT_URL).mock(side_effect=answer)
    return sent


def READY_RESPONSE() -> httpx.Response:  # noqa: N802 -- reads as a constant in side_effect lists
    """A fresh 'attached' response."""
    return httpx.Response(200, content=READY)


class Orders:
    """A MockTransport handler: each order is ready after a number of polls, or fails."""

    def __init__(
        self,
        *,
        polls: dict[int, int] | None = None,
        bodies: dict[int, bytes] | None = None,
        gate: asyncio.Event | None = None,
    ) -> None:
        self.polls = polls or {}
        self.bodies = bodies or {}
        self.gate = gate
        self.seen: list[int] = []
        self.query_types: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        """Answer one request (waiting on the gate first, when there is one)."""
        fields = form(request)
        order = int(fields["orderNumber"])
        self.seen.append(order)
        self.query_types.append(fields["queryType"])
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)
            if self.gate is not None:
                await self.gate.wait()
        finally:
            self.in_flight -= 1
        if order in self.bodies:
            return httpx.Response(200, content=self.bodies[order])
        if self.seen.count(order) <= self.polls.get(order, 0):
            return httpx.Response(200, content=PROCESSING)
        return httpx.Response(200, content=READY)

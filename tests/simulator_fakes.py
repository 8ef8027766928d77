"""What the simulator tests share: the test account, its request form, a simulator and a client.

Not a test module: ``test_simulator*.py`` import it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

import httpx
import pytest

from smime_collect._rules import FIELD
from smime_collect.testing import (
    Simulator,
)

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


@pytest.fixture(name="sim")
def sim_fixture() -> Simulator:
    """A simulator with one account and one issued order, 1001."""
    simulator = Simulator(seed=1)
    simulator.add_account(LOGIN, PASSWORD)
    simulator.add_order(1001, email="alice@example.com")
    return simulator


@pytest.fixture(name="http")
async def http_fixture(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client wired in-process to ``sim``."""
    async with sim.http_client() as client:
        yield client


async def post(http: httpx.AsyncClient, sim: Simulator, **fields: str) -> httpx.Response:
    """POST ``fields`` (form-encoded) to the simulator."""
    return await http.post(sim.url, data=fields)


def lines(response: httpx.Response) -> list[str]:
    """The body's lines."""
    return response.text.splitlines()

"""README's Python snippets as code that ``mypy --strict`` checks: the typed happy path.

Never run (pytest collects only ``test_*.py``): ``mypy --strict tests/typing`` in ``.ci/run`` and
in the noxfile's typecheck session checks that what README shows type-checks as printed, and the
``assert_type`` lines after each snippet pin the types a user gets.  ``tests/test_readme.py``
runs the snippets, and fails when one is not here verbatim (indented into a function, its
imports gathered at the top).

The names the snippets take for granted come first.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import assert_type

from cryptography import x509

from smime_collect import (
    CollectClient,
    CollectError,
    CollectOutcome,
    CollectRequest,
    CollectResult,
    ResponseType,
    load_certificates,
    parse_response,
)
from smime_collect.testing import Simulator

login_name = "api-user"
login_password = "s3cret"
body = b"0\n"


def read_order_numbers() -> Iterator[int]:
    """The orders of a batch, from wherever the caller keeps them."""
    yield 1234567


def save(order_number: int, pem: bytes) -> None:
    """Store one order's PEM chain."""
    del order_number, pem


async def one_order() -> None:
    """Cheat sheet: one order, from an async service."""
    async with CollectClient.from_env() as client:  # SECTIGO_LOGIN_NAME / _PASSWORD (or *_FILE)
        result = await client.wait_for_certificate(1234567)  # polls until issued
        chain = result.require_chain()  # end entity, intermediates, roots: sorted by content
        print(chain.email_addresses, chain.fingerprint_sha256)
        pem = chain.to_pem()  # end entity + intermediates
    assert_type(pem, bytes)
    assert_type(chain.email_addresses, tuple[str, ...])
    assert_type(chain.end_entity, x509.Certificate | None)


async def batch() -> None:
    """Cheat sheet: a batch, consumed lazily, one outcome per order."""
    async with CollectClient.from_env(max_concurrency=8) as client:
        async for outcome in client.collect_many(read_order_numbers(), timeout=900):
            if outcome.ok:
                save(outcome.order_number, outcome.unwrap().require_chain().to_pem())
            else:
                print(outcome.order_number, outcome.error)
    assert_type(outcome, CollectOutcome)
    assert_type(outcome.error, CollectError | None)


def any_file() -> None:
    """Cheat sheet: certificates from any file or body."""
    chain = load_certificates(Path("payload.p7b").read_bytes())
    leaf, intermediates, roots = chain.end_entity, chain.intermediates, chain.roots
    chain.verify()  # ChainError names the broken link
    assert_type(leaf, x509.Certificate | None)
    assert_type(intermediates, tuple[x509.Certificate, ...])
    assert_type(roots, tuple[x509.Certificate, ...])


def sans_io() -> None:
    """Cheat sheet: the sans-I/O core, with your own HTTP."""
    request = CollectRequest(1234567, response_type=ResponseType.PKCS7)
    fields = request.form_fields(login_name, login_password)  # POST these, form-encoded
    result = parse_response(body, request)  # CollectResult, or a typed error
    assert_type(fields, dict[str, str])
    assert_type(result, CollectResult)


async def simulator() -> None:
    """Cheat sheet: the simulator."""
    sim = Simulator(seed=1)
    sim.add_account("api-user", "s3cret")
    sim.add_order(1001, ready_after_polls=2)  # "0" twice, then issued
    async with CollectClient("api-user", "s3cret", transport=sim.transport()) as client:
        result = await client.wait_for_certificate(1001, poll_interval=0.01)
    assert_type(result, CollectResult)

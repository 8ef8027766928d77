"""README's Python snippets as code that ``mypy --strict`` checks: the typed happy path.

Never run (pytest collects only ``test_*.py``): ``mypy --strict tests/typing`` in ``.ci/run`` and
in the noxfile's typecheck session checks that what README shows type-checks as printed, and the
``assert_type`` lines after each snippet pin the types a user gets.  ``tests/test_readme.py``
runs the snippets, and fails when one is not here verbatim (indented into a function, its
imports gathered at the top).

The names the snippets take for granted come first.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import assert_type

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from smime_collect import (
    CertificateRevokedError,
    CollectClient,
    CollectError,
    CollectOutcome,
    CollectRequest,
    CollectResult,
    ResponseType,
    load_certificates,
    parse_response,
)
from smime_collect.testing import (
    Fault,
    IssuedChain,
    ManualClock,
    OrderState,
    Simulator,
    TestCA,
    serve,
)

login_name = "api-user"
login_password = "s3cret"
body = b"0\n"
key = ec.generate_private_key(ec.SECP256R1())
sim = Simulator(seed=1)


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


async def batch_closed_early() -> None:
    """Batches: aclosing() cancels what is in flight as soon as the loop is left."""
    async with CollectClient.from_env() as client:
        batch = client.collect_many(read_order_numbers(), wait=False)
        async with contextlib.aclosing(batch) as outcomes:
            async for outcome in outcomes:
                if not outcome.ok:
                    break  # the requests still in flight are cancelled here, not later
    assert_type(outcome, CollectOutcome)


def certificates() -> None:
    """Certificates: read a file, verify, write PEM and PKCS#12."""
    chain = load_certificates(Path("order-1234567.p7b").read_bytes())
    print(chain)  # <CertificateChain end_entity='alice@example.com' intermediates=[...] ...>
    chain.verify()  # ChainError names the broken link by common names
    Path("fullchain.pem").write_bytes(chain.to_pem())  # end entity + intermediates
    Path("alice.p12").write_bytes(chain.to_pkcs12(key, password=b"s3cret"))


def test_pki() -> None:
    """Test PKI for your own tests."""
    ca = TestCA.create()  # root + intermediate, EC P-256 (key_type="rsa" too)
    issued = ca.issue_smime("alice@example.com")  # emailProtection EKU, rfc822Name SAN
    issued.certificates()  # (end entity, intermediate, root)
    legacy = TestCA.create("AAA", key_type="rsa", root_hash="sha1")  # like AAA Certificate Services
    cross = ca.cross_certificate(legacy)  # ca's root, cross-signed by the legacy root
    old = TestCA.create("Old", root_v1=True)  # an X.509 v1 root without extensions
    assert_type(issued, IssuedChain)
    assert_type(cross, x509.Certificate)
    assert_type(old, TestCA)


def walkthrough() -> None:
    """Testing your service without Sectigo: the simulator walk-through."""

    async def main() -> None:
        clock = ManualClock()  # time moves only when told
        sim = Simulator(seed=1, clock=clock, sleep=clock.sleep)
        sim.add_account("api-user", "s3cret")
        sim.add_order(1001, email="alice@example.com")  # issued
        sim.add_order(1002, ready_after_polls=3)  # "0" three times, then issued
        sim.add_order(1003, state=OrderState.REVOKED)  # -21
        sim.inject(Fault.HTTP_503, order_number=1001, times=2)  # the next 2 requests for 1001

        async with CollectClient(
            "api-user", "s3cret", transport=sim.transport(), sleep=clock.sleep, clock=clock
        ) as client:
            result = await client.collect(1001)  # retried past both 503s
            print(result.require_chain().email_addresses)  # ('alice@example.com',)
            await client.wait_for_certificate(1002)  # no real waiting
            try:
                await client.collect(1003)
            except CertificateRevokedError as error:
                print(error.code)  # -21

        print(sim.stats.requests_total, sim.stats.requests_by_order[1001])  # 8 3

    asyncio.run(main())


async def loopback() -> None:
    """Testing your service without Sectigo: on a real socket."""
    async with serve(sim) as server:  # https://127.0.0.1:<free port>/products/download/CollectSMIME
        verify = server.ssl_context()  # trusts the throwaway CA; server.ca_pem_path is its file
        client = CollectClient("api-user", "s3cret", base_url=server.url, verify=verify)
        async with client:
            ...
    assert_type(client, CollectClient)

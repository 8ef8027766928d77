"""The Python snippets of docs/ as code that ``mypy --strict`` checks: what a user would write.

Never run here (pytest collects only ``test_*.py``): ``mypy --strict tests/typing`` in ``.ci/run``
and in the noxfile's typecheck session checks that each snippet type-checks as printed, and the
``assert_type`` lines pin the types a user gets.  ``tests/test_docs.py`` runs the snippets, and
fails when one is not here verbatim (indented into a function, its imports gathered at the top).

The names the snippets take for granted come first.  Snippets are top-level code of a user's
script, where a blocking file write after an ``await`` is what the user means.
"""

# ruff: noqa: ASYNC240

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, assert_type

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from smime_collect import (
    AuthenticationError,
    AwaitingPaymentError,
    CertificateChain,
    CertificateRejectedError,
    CertificateRevokedError,
    CollectClient,
    CollectOutcome,
    CollectResult,
    PollTimeoutError,
    QueryType,
    RetryPolicy,
    SectigoError,
    Status,
    TransportError,
    load_certificates,
)
from smime_collect.events import Event, OrderFinished
from smime_collect.testing import (
    Chaos,
    Fault,
    IssuedChain,
    ManualClock,
    OrderState,
    Simulator,
    TestCA,
    serve,
)
from smime_collect.testing.formats import to_base64, to_netscape_sequence_der

key = ec.generate_private_key(ec.SECP256R1())
sim = Simulator(seed=1)


def read_order_numbers() -> Iterator[int]:
    """The orders of a batch, from wherever the caller keeps them."""
    yield 1234567


def save(order_number: int, pem: bytes) -> None:
    """Store one order's PEM chain."""
    del order_number, pem


def create_app(**client_options: Any) -> FastAPI:
    """examples/fastapi_app.py's factory, as the FastAPI tutorial shows it."""
    del client_options
    return FastAPI()


def read_a_file() -> None:
    """Formats: read a file, verify, write PEM and PKCS#12."""
    chain = load_certificates(Path("order-1234567.p7b").read_bytes())
    print(chain)  # <CertificateChain end_entity='alice@example.com' intermediates=[...] ...>
    chain.verify()  # ChainError names the broken link by common names
    Path("fullchain.pem").write_bytes(chain.to_pem())  # end entity + intermediates
    Path("alice.p12").write_bytes(chain.to_pkcs12(key, password=b"s3cret"))


async def in_process() -> None:
    """Testing: a client on the simulator, in-process."""
    sim = Simulator(seed=1)
    sim.add_account("api-user", "s3cret")
    sim.add_order(1001, email="alice@example.com")  # issued: collected at once
    async with CollectClient("api-user", "s3cret", transport=sim.transport()) as client:
        result = await client.collect(1001)
    print(result.require_chain().email_addresses)  # ('alice@example.com',)


async def never_wait() -> None:
    """Testing: a test that polls on a ManualClock, never waiting."""

    async def test_a_processing_order_is_polled_politely() -> None:
        clock = ManualClock()  # time moves only when something sleeps on it
        sim = Simulator(seed=1, clock=clock, sleep=clock.sleep)
        sim.add_account("api-user", "s3cret")
        sim.add_order(1001, ready_after_polls=2)  # "0" twice, then issued
        async with CollectClient(
            "api-user", "s3cret", transport=sim.transport(), sleep=clock.sleep, clock=clock
        ) as client:
            result = await client.wait_for_certificate(1001)
        assert result.require_chain().end_entity is not None
        assert sim.stats.requests_total == 3  # two polls and the answer: no separate status call
        assert clock.sleeps[0] == 5.0  # the first wait is exactly poll_interval


def make_it_fail() -> None:
    """Testing: an order's state, exact faults, the counters."""

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


async def chaos() -> None:
    """Testing: random faults from a seed."""
    chaos = Chaos(http_503_rate=0.2, error_14_rate=0.1)  # a fifth of answers 503, a tenth -14
    clock = ManualClock()
    sim = Simulator(seed=7, chaos=chaos, clock=clock, sleep=clock.sleep)
    sim.add_account("api-user", "s3cret")
    sim.add_orders(range(1, 51))
    client = CollectClient(
        "api-user",
        "s3cret",
        transport=sim.transport(),
        sleep=clock.sleep,
        clock=clock,
        max_retries=10,  # the same order may meet several faults in a row
    )
    async with client:
        outcomes = [outcome async for outcome in client.collect_many(range(1, 51))]
    print(sum(outcome.ok for outcome in outcomes), sim.stats.requests_total > 50)  # 50 True


async def loopback() -> None:
    """Testing: on a real socket with TLS."""
    async with serve(sim) as server:  # https://127.0.0.1:<free port>/products/download/CollectSMIME
        verify = server.ssl_context()  # trusts the throwaway CA; server.ca_pem_path is its file
        client = CollectClient("api-user", "s3cret", base_url=server.url, verify=verify)
        async with client:
            ...


def test_pki() -> None:
    """Testing: the test PKI."""
    ca = TestCA.create()  # root + intermediate, EC P-256 (key_type="rsa" too)
    issued = ca.issue_smime("alice@example.com")  # emailProtection EKU, rfc822Name SAN
    issued.certificates()  # (end entity, intermediate, root)
    legacy = TestCA.create("AAA", key_type="rsa", root_hash="sha1")  # like AAA Certificate Services
    cross = ca.cross_certificate(legacy)  # ca's root, cross-signed by the legacy root
    old = TestCA.create("Old", root_v1=True)  # an X.509 v1 root without extensions
    assert_type(issued, IssuedChain)
    assert_type(cross, x509.Certificate)
    assert_type(old, TestCA)


def mail_client_bundle() -> None:
    """How-to: a PKCS#12 bundle for a mail client."""
    chain = load_certificates(Path("fullchain.pem").read_bytes())
    key = serialization.load_pem_private_key(Path("alice.key").read_bytes(), password=None)
    Path("alice.p12").write_bytes(chain.to_pkcs12(key, password=b"correct horse battery staple"))
    assert_type(chain.to_pkcs12(key, password=b"x", legacy=True), bytes)


def serialisers() -> None:
    """Testing: the simulator's serialisers."""
    issued = TestCA.create().issue_smime("bob@example.com")
    body = to_base64(to_netscape_sequence_der(issued.certificates()))  # as CollectSMIME sends it
    chain = load_certificates(body)
    print(chain.email_addresses, len(chain))  # ('bob@example.com',) 3
    assert_type(body, bytes)


async def client_options() -> None:
    """Client: its options."""
    client = CollectClient(
        "api-user",
        "s3cret",
        max_concurrency=4,  # requests in flight, across everything the client does
        requests_per_second=2.0,  # a shared start-rate limit
        timeout=60.0,  # seconds, every phase (or an httpx.Timeout)
        retry_policy=RetryPolicy(max_retries=5, max_delay=10.0),
        transport=sim.transport(),  # tests: the simulator, in-process
    )
    async with client:
        result = await client.collect(1234567)  # one request (and its retries)
        status = await client.collect(1234567, query_type=QueryType.STATUS)
    print(result.status.name, status.status.name)  # ATTACHED AVAILABLE
    assert_type(status, CollectResult)


def from_code() -> None:
    """Errors: SectigoError.from_code."""
    error = SectigoError.from_code(-16, "Incorrect login details", order_number=1234567)
    assert isinstance(error, AuthenticationError)
    print(error)  # order 1234567: Sectigo error -16: Incorrect login details -- check the login ...
    assert_type(error, AuthenticationError)  # narrowed by the isinstance assertion


async def batch() -> None:
    """Batch: one outcome per order."""
    async with CollectClient.from_env(max_concurrency=8) as client:
        async for outcome in client.collect_many(read_order_numbers(), timeout=900):
            if outcome.ok:
                save(outcome.order_number, outcome.unwrap().require_chain().to_pem())
            else:
                print(outcome.order_number, outcome.error)
    assert_type(outcome, CollectOutcome)


async def batch_stops() -> None:
    """Batch: what stops a batch."""
    outcomes = {}
    async with CollectClient.from_env() as client:
        async for outcome in client.collect_many(read_order_numbers()):
            outcomes[outcome.order_number] = outcome
    stopped = [n for n, o in outcomes.items() if isinstance(o.error, AuthenticationError)]
    print(len(outcomes), stopped)  # 3 []


async def batch_closed_early() -> None:
    """Batch: aclosing() cancels what is in flight."""
    async with CollectClient.from_env() as client:
        batch = client.collect_many(read_order_numbers(), wait=False)
        async with contextlib.aclosing(batch) as outcomes:
            async for outcome in outcomes:
                if not outcome.ok:
                    break  # the requests still in flight are cancelled here, not later


async def fastapi_test() -> None:
    """FastAPI: test the service on the simulator."""
    sim = Simulator(seed=1)
    sim.add_account("api-user", "s3cret")  # the credentials in the environment
    sim.add_order(1001, email="alice@example.com")
    sim.add_order(1003, state=OrderState.REJECTED)
    app = create_app(transport=sim.transport())  # passed on to CollectClient.from_env
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),  # what uvicorn runs at start and at stop
        httpx.AsyncClient(transport=transport, base_url="http://app.test") as http,
    ):
        issued = await http.get("/certificates/1001")
        rejected = await http.get("/certificates/1003")
    chain = load_certificates(issued.content)
    print(issued.status_code, chain.email_addresses)  # 200 ('alice@example.com',)
    print(rejected.status_code, rejected.json()["code"])  # 410 -20


async def first_order() -> None:
    """First order: wait for the certificate."""
    async with CollectClient.from_env() as client:
        result = await client.wait_for_certificate(1234567)
    chain = result.require_chain()
    print(result.status.name)  # ATTACHED
    print(chain)  # <CertificateChain end_entity='...' intermediates=[...] roots=[...]>
    assert_type(result, CollectResult)
    assert_type(result.status, Status)


async def what_comes_back() -> None:
    """First order: what comes back."""
    async with CollectClient.from_env() as client:
        chain = (await client.wait_for_certificate(1234567)).require_chain()
    leaf = chain.end_entity  # a cryptography x509.Certificate
    print(chain.email_addresses)  # ('...@example.com',)
    print(len(chain.intermediates), len(chain.roots))  # 1 1
    Path("fullchain.pem").write_bytes(chain.to_pem())  # end entity + intermediates
    Path("root.pem").write_bytes(b"".join(root.public_bytes(Encoding.PEM) for root in chain.roots))
    assert_type(leaf, x509.Certificate | None)
    assert_type(chain, CertificateChain)


async def when_it_fails() -> None:
    """First order: when it fails."""
    async with CollectClient.from_env() as client:
        try:
            await client.wait_for_certificate(7654321, timeout=900)
        except CertificateRejectedError as error:
            print("place a new order:", error.code)  # place a new order: -20
        except AwaitingPaymentError:
            print("pay it in Sectigo's portal, then collect again")
        except PollTimeoutError as error:
            print("still", error.last_status, "after 15 minutes")
        except (SectigoError, TransportError) as error:
            print(error)  # what happened and what to do; never the password


async def observability_events() -> None:
    """Observability: count the steps with on_event."""
    seen: Counter[str] = Counter()
    failed: list[OrderFinished] = []

    def on_event(event: Event) -> None:
        seen[type(event).__name__] += 1
        if isinstance(event, OrderFinished) and not event.ok:
            failed.append(event)

    async with CollectClient.from_env(on_event=on_event) as client:
        async for outcome in client.collect_many(read_order_numbers()):
            save(outcome.order_number, outcome.unwrap().require_chain().to_pem())
    print(seen["OrderFinished"] == seen["RequestFinished"], failed)  # True []


async def observability_spans() -> None:
    """Observability: the spans of one order, read back from the SDK's in-memory exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with CollectClient.from_env(tracer_provider=provider) as client:
        await client.wait_for_certificate(1234567)
    names = [span.name for span in exporter.get_finished_spans()]
    print(names)  # ['smime_collect.request', 'smime_collect.wait']

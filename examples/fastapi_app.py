"""Serve S/MIME certificate chains from Sectigo over HTTP, with FastAPI.

One ``CollectClient`` per application, opened and closed by the lifespan, shared by every request
(it bounds the requests to Sectigo in flight across all of them).

Run it::

    export SECTIGO_LOGIN_NAME=api-user SECTIGO_LOGIN_PASSWORD_FILE=/run/secrets/sectigo
    uvicorn examples.fastapi_app:app

    curl http://127.0.0.1:8000/certificates/1234567            # PEM: end entity + intermediates
    curl http://127.0.0.1:8000/certificates/1234567?root=true  # ... and the root
    curl http://127.0.0.1:8000/metrics                         # Prometheus: requests, retries...

Errors map to HTTP statuses: 404 unknown order, 410 rejected or revoked, 409 awaiting payment,
503 (with Retry-After) still processing, 502 Sectigo or the network failed (even when it failed
until the wait ran out), 400 bad order number.

``/metrics`` serves the client's OpenTelemetry metrics (``smime_collect_requests_total`` by
``outcome``, ``smime_collect_request_duration_seconds``, ``smime_collect_retries_total``,
``smime_collect_requests_in_flight``) in Prometheus's text format, through OpenTelemetry's
Prometheus exporter into a registry of the app's own: ``pip install 'smime-collect[otel]'
opentelemetry-sdk opentelemetry-exporter-prometheus``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from smime_collect import (
    AwaitingPaymentError,
    CertificateRejectedError,
    CertificateRevokedError,
    CollectClient,
    CollectError,
    InvalidArgumentError,
    InvalidRequestError,
    PollTimeoutError,
    ResponseFormatError,
    SectigoError,
)

PEM_CHAIN = "application/pem-certificate-chain"  # RFC 8555 section 9.1


def error_status(error: CollectError) -> int:
    """The HTTP status that tells our caller what happened to their order."""
    if isinstance(error, InvalidRequestError):
        return 400  # our caller's order number is not one
    if isinstance(error, InvalidArgumentError):
        return 404  # Sectigo does not know the order (or it is another account's)
    if isinstance(error, CertificateRejectedError | CertificateRevokedError):
        return 410  # gone for good: a new order is needed
    if isinstance(error, AwaitingPaymentError):
        return 409  # the order exists but cannot be collected in its current state
    if isinstance(error, PollTimeoutError) and error.__cause__ is None:
        return 503  # still processing: come back later (with Retry-After)
    # Sectigo refused us (e.g. -16), answered garbage, or was unreachable, also when that
    # lasted until the wait ran out (a PollTimeoutError caused by the last failure).
    return 502


def create_app(
    *, wait_seconds: float = 20.0, poll_interval: float = 5.0, **client_options: Any
) -> FastAPI:
    """Build the application.

    Args:
        wait_seconds: How long one HTTP request may wait for a processing order.
        poll_interval: The first wait between polls of a processing order.
        **client_options: Passed to ``CollectClient.from_env`` (e.g. ``transport=`` in tests,
            ``max_concurrency=``).
    """

    # The app's own registry, not prometheus_client's global one: two apps in one process
    # (tests, workers) each export only their own client's numbers.
    registry = CollectorRegistry()
    meter_provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
    client_options.setdefault("meter_provider", meter_provider)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with CollectClient.from_env(**client_options) as client:
            app.state.collect_client = client
            yield
        meter_provider.shutdown()

    app = FastAPI(title="S/MIME certificates", lifespan=lifespan)

    @app.exception_handler(CollectError)
    async def collect_error(request: Request, error: CollectError) -> JSONResponse:
        status = error_status(error)
        headers = {"Retry-After": "30"} if status == 503 else None
        body = {
            "error": type(error).__name__,
            "detail": str(error),  # never holds the password: the library guarantees it
            "code": error.code if isinstance(error, SectigoError) else None,
        }
        return JSONResponse(body, status_code=status, headers=headers)

    @app.get("/certificates/{order_number}")
    async def certificate_chain(
        order_number: int, request: Request, root: bool = False
    ) -> Response:
        client: CollectClient = request.app.state.collect_client
        result = await client.wait_for_certificate(
            order_number,
            timeout=wait_seconds,
            poll_interval=poll_interval,
            max_poll_interval=max(poll_interval, wait_seconds / 2),
        )
        if result.chain is None:  # cannot happen: an ATTACHED result carries its chain
            raise ResponseFormatError(f"order {order_number}: no certificates in the answer")
        return Response(result.chain.to_pem(include_root=root), media_type=PEM_CHAIN)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


# Credentials are read when the app starts (lifespan), not at import.
app = create_app()

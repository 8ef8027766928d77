"""Serve S/MIME certificate chains from Sectigo over HTTP, with aiohttp.

The ``CollectClient`` lives in a ``cleanup_ctx``: opened when the application starts, closed
(requests in flight cancelled) when it stops.

Run it::

    export SECTIGO_LOGIN_NAME=api-user SECTIGO_LOGIN_PASSWORD_FILE=/run/secrets/sectigo
    python examples/aiohttp_app.py            # listens on http://127.0.0.1:8080

    curl http://127.0.0.1:8080/certificates/1234567
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

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

COLLECT_CLIENT = web.AppKey("collect_client", CollectClient)
PEM_CHAIN = "application/pem-certificate-chain"  # RFC 8555 section 9.1


def error_status(error: CollectError) -> int:
    """The HTTP status that tells our caller what happened to their order."""
    if isinstance(error, InvalidRequestError):
        return 400
    if isinstance(error, InvalidArgumentError):
        return 404
    if isinstance(error, CertificateRejectedError | CertificateRevokedError):
        return 410
    if isinstance(error, AwaitingPaymentError):
        return 409
    if isinstance(error, PollTimeoutError) and error.__cause__ is None:
        return 503  # still processing
    return 502  # Sectigo or the network failed, also when that lasted until the wait ran out


async def collect_client_context(
    app: web.Application, client_options: dict[str, Any]
) -> AsyncIterator[None]:
    """Open the application's one CollectClient for its lifetime."""
    async with CollectClient.from_env(**client_options) as client:
        app[COLLECT_CLIENT] = client
        yield


async def certificate_chain(
    request: web.Request, *, wait_seconds: float, poll_interval: float
) -> web.Response:
    """GET /certificates/{order_number}: the PEM chain, waiting a little if it is processing."""
    client = request.app[COLLECT_CLIENT]
    include_root = request.query.get("root") == "true"
    try:
        # A numeric string is accepted; anything else raises InvalidRequestError (400).
        order_number: Any = request.match_info["order_number"]
        result = await client.wait_for_certificate(
            order_number,
            timeout=wait_seconds,
            poll_interval=poll_interval,
            max_poll_interval=max(poll_interval, wait_seconds / 2),
        )
        if result.chain is None:  # cannot happen: an ATTACHED result carries its chain
            raise ResponseFormatError(f"order {order_number}: no certificates in the answer")
    except CollectError as error:
        status = error_status(error)
        return web.json_response(
            {
                "error": type(error).__name__,
                "detail": str(error),  # never holds the password: the library guarantees it
                "code": error.code if isinstance(error, SectigoError) else None,
            },
            status=status,
            headers={"Retry-After": "30"} if status == 503 else None,
        )
    return web.Response(body=result.chain.to_pem(include_root=include_root), content_type=PEM_CHAIN)


def create_app(
    *, wait_seconds: float = 20.0, poll_interval: float = 5.0, **client_options: Any
) -> web.Application:
    """Build the application.

    Args:
        wait_seconds: How long one HTTP request may wait for a processing order.
        poll_interval: The first wait between polls of a processing order.
        **client_options: Passed to ``CollectClient.from_env`` (e.g. ``transport=`` in tests).
    """
    app = web.Application()
    app.cleanup_ctx.append(functools.partial(collect_client_context, client_options=client_options))
    handler = functools.partial(
        certificate_chain, wait_seconds=wait_seconds, poll_interval=poll_interval
    )
    app.router.add_get("/certificates/{order_number}", handler)
    return app


if __name__ == "__main__":
    web.run_app(create_app(), host="127.0.0.1", port=8080)

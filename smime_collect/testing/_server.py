"""Serve a simulator on a real loopback socket, with TLS from a throwaway CA.

For tests where the network matters (TLS verification, connection reuse, real timeouts). It runs
uvicorn (the ``simulator`` extra; the ``test`` extra has it too) inside the current event loop::

    async with serve(sim) as server:
        async with httpx.AsyncClient(verify=server.ssl_context()) as http:
            await http.post(server.url, data=...)

Dropped connections are real: the app reaches the socket's transport through the
``smime_collect.connection`` scope extension and aborts it, so the client sees the connection
close without (or in the middle of) a response.
"""

import asyncio
import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ._asgi import CONNECTION_EXTENSION, ASGIApp, Receive, Scope, Send
from ._pki import certificate_builder, key_usage
from ._simulator import ENDPOINT_PATH, Simulator

__all__ = ["RunningServer", "serve"]

_STARTUP_TIMEOUT = 10.0


@attrs.frozen
class RunningServer:
    """A simulator listening on a loopback socket.

    Attributes:
        host: The address it listens on.
        port: The port it got.
        url: The endpoint's full URL (``https://127.0.0.1:<port>/products/download/CollectSMIME``).
        ca_pem: The CA certificate (PEM) that issued the server's certificate; empty without TLS.
        ca_pem_path: A file holding ``ca_pem`` (valid while the server runs); None without TLS.
    """

    host: str
    port: int
    url: str
    ca_pem: bytes = b""
    ca_pem_path: Path | None = None

    @property
    def base_url(self) -> str:
        """``scheme://host:port``, without the path."""
        return self.url.removesuffix(ENDPOINT_PATH)

    def ssl_context(self) -> ssl.SSLContext:
        """A client-side SSL context that trusts this server's CA (and nothing else).

        Returns:
            The context, for ``httpx.AsyncClient(verify=...)``.

        Raises:
            ValueError: The server runs without TLS.
        """
        if not self.ca_pem:
            raise ValueError("this server runs without TLS: there is no CA to trust")
        return ssl.create_default_context(cadata=self.ca_pem.decode("ascii"))


def _server_credentials(host: str) -> tuple[bytes, bytes, bytes]:
    """A throwaway CA and a server certificate for ``host``: (CA PEM, cert PEM, key PEM)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smime_collect simulator CA")])
    not_before, not_after = now - dt.timedelta(days=1), now + dt.timedelta(days=7)
    ca = (
        certificate_builder(ca_name, ca_name, ca_key.public_key(), not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        # Python 3.13's default context verifies with VERIFY_X509_STRICT (RFC 5280 to the
        # letter): a CA needs keyCertSign, a leaf its key usages and an AKI.
        .add_extension(key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    with contextlib.suppress(ValueError):
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    cert = (
        certificate_builder(subject, ca_name, key.public_key(), not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(digital_signature=True), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return ca.public_bytes(pem), cert.public_bytes(pem), key_pem


def _with_connection_control(app: ASGIApp, closing: asyncio.Event) -> ASGIApp:
    """Give the app uvicorn's socket transport, so simulated breakage reaches the real socket."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        cycle: Any = getattr(send, "__self__", None)  # uvicorn's RequestResponseCycle
        transport = getattr(cycle, "transport", None)
        if scope["type"] == "http" and transport is not None:

            async def abort() -> None:
                transport.abort()
                # Let connection_lost() run, so uvicorn knows the client is gone and does not
                # try to answer with a 500 of its own.
                for _ in range(20):
                    if getattr(cycle, "disconnected", True):
                        break
                    await asyncio.sleep(0)

            async def stall(receive: Receive, seconds: float) -> None:
                # Silent until the client hangs up (uvicorn's receive() then says
                # http.disconnect), the server stops, or the time is up.
                waits = [
                    asyncio.ensure_future(receive()),
                    asyncio.ensure_future(closing.wait()),
                ]
                try:
                    await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waits:
                        waiter.cancel()
                    await asyncio.gather(*waits, return_exceptions=True)
                await abort()

            control = {"abort": abort, "stall": stall}
            extensions = {**(scope.get("extensions") or {}), CONNECTION_EXTENSION: control}
            scope = {**scope, "extensions": extensions}
        await app(scope, receive, send)

    return wrapped


@contextlib.asynccontextmanager
async def serve(
    simulator: Simulator, *, tls: bool = True, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningServer]:
    """Run the simulator on a loopback socket for the duration of an ``async with`` block.

    Args:
        simulator: What to serve. Without TLS the scheme is ``http``, so set
            ``require_https=False`` on it unless you mean to test code -1.
        tls: Serve HTTPS with a certificate from a throwaway CA (see ``RunningServer.ca_pem``).
        host: The address to bind (loopback by default).
        port: The port; 0 picks a free one.

    Yields:
        The running server.

    Raises:
        ImportError: uvicorn is not installed (``pip install 'smime-collect[simulator]'``).
        RuntimeError: The server did not start.
    """
    uvicorn = _uvicorn()
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(_bound_socket(host, port))
        port = listener.getsockname()[1]
        options: dict[str, Any] = {}
        ca_pem, ca_path = b"", None
        if tls:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            ca_pem, ca_path, options = _write_tls_files(directory, host)
        closing = asyncio.Event()
        config = uvicorn.Config(
            _with_connection_control(simulator.app, closing),
            http="h11",
            lifespan="off",
            log_config=None,  # leave the host application's logging alone
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
            **options,
        )
        server = _embedded_server(config)
        task = asyncio.create_task(server.serve(sockets=[listener]))
        try:
            await _until_started(server, task)
            scheme = "https" if tls else "http"
            url_host = f"[{host}]" if ":" in host else host
            yield RunningServer(
                host=host,
                port=port,
                url=f"{scheme}://{url_host}:{port}{ENDPOINT_PATH}",
                ca_pem=ca_pem,
                ca_pem_path=ca_path,
            )
        finally:
            closing.set()  # releases stalled requests, so shutdown does not wait for them
            server.should_exit = True
            await task


def _uvicorn() -> Any:
    """The uvicorn module, or an ImportError that says which extra installs it."""
    try:
        import uvicorn  # noqa: PLC0415 -- a test-only dependency, imported when needed
    except ImportError as exc:  # pragma: no cover - the test extra is installed in CI
        raise ImportError(
            "serving the simulator on a socket needs uvicorn: "
            "pip install 'smime-collect[simulator]'"
        ) from exc
    return uvicorn


def _write_tls_files(directory: Path, host: str) -> tuple[bytes, Path, dict[str, Any]]:
    """Write a throwaway CA and a server certificate for ``host`` into ``directory``.

    Returns:
        The CA's PEM, the path of its file, and uvicorn's TLS options.
    """
    ca_pem, cert_pem, key_pem = _server_credentials(host)
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca_pem)
    (directory / "server.pem").write_bytes(cert_pem)
    (directory / "server.key").write_bytes(key_pem)
    options = {
        "ssl_certfile": str(directory / "server.pem"),
        "ssl_keyfile": str(directory / "server.key"),
    }
    return ca_pem, ca_path, options


def _embedded_server(config: Any) -> Any:
    """A uvicorn.Server without signal handlers: Ctrl-C stays with the host (pytest, an app)."""
    import uvicorn  # noqa: PLC0415

    class EmbeddedServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return EmbeddedServer(config)


async def _until_started(server: Any, task: asyncio.Task[None]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _STARTUP_TIMEOUT
    while not server.started:
        if task.done():
            task.result()  # raises what went wrong
            raise RuntimeError("the simulator's server stopped before it started")
        if loop.time() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the simulator's server did not start in {_STARTUP_TIMEOUT} s")
        await asyncio.sleep(0.005)


@contextlib.contextmanager
def _bound_socket(host: str, port: int) -> Iterator[socket.socket]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only when the
    # listener's proto says TCP, and with proto 0 every answer waits ~40 ms for a delayed ACK.
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.set_inheritable(True)
        yield listener
    finally:
        listener.close()

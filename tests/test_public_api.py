"""The public surface: every contract name is exported, and the layers keep to their side of I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import smime_collect

PACKAGE = Path(smime_collect.__file__).parent

# Sections 1-6 of the contract: everything importable from the top-level package.
CONTRACT_NAMES = {
    "QueryType",
    "ResponseType",
    "ResponseEncoding",
    "Status",
    "CollectRequest",
    "parse_response",
    "CollectResult",
    "ValidityPeriod",
    "load_certificates",
    "CertificateChain",
    "CollectClient",
    "DEFAULT_URL",
    "CollectOutcome",
    "CollectError",
    "InvalidRequestError",
    "ResponseFormatError",
    "CertificateFormatError",
    "ChainError",
    "TransportError",
    "PollTimeoutError",
    "SectigoError",
    "HttpsRequiredError",
    "UnrecognisedArgumentError",
    "MissingArgumentError",
    "InvalidArgumentError",
    "UnknownServerError",
    "AuthenticationError",
    "CallLimitError",
    "PostRequiredError",
    "CertificateRejectedError",
    "CertificateRevokedError",
    "AwaitingPaymentError",
    "PermissionDeniedError",
}

# The I/O side of the line; every other module of the package must stay free of I/O.
IO_MODULES = {
    "__init__.py",
    "__main__.py",
    "_client.py",  # CollectClient: the one place requests are sent
    "_transports.py",  # the httpx transports it runs on
    "_aiohttp.py",  # the [aiohttp] extra's transport
    "_options.py",  # its option checks (httpx.URL, httpx.Timeout, the SSL context, *_FILE reads)
    "_exchange.py",  # one POST and the capped read of its answer
    "_failures.py",  # httpx's exceptions and error statuses translated for its retry policy
    "_batch.py",  # collect_many's worker pool (asyncio, no httpx)
    "_cli.py",
    "_cli_input.py",
    "_cli_report.py",
    "_collect_to_disk.py",
    "_demo.py",
    "_order_files.py",
}
SANS_IO = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in IO_MODULES)
FORBIDDEN = {"httpx", "asyncio", "socket", "time", "aiohttp", "anyio", "trio", "httpx_aiohttp"}
HTTP_MODULES = {
    "_client.py",
    "_transports.py",
    "_aiohttp.py",  # the [aiohttp] extra's transport
    "_options.py",  # builds the client's httpx.URL, httpx.Timeout and SSL context
    "_exchange.py",  # posts the form and reads the answer
    "_failures.py",  # translates httpx's exceptions and error statuses
}


def imported_modules(path: Path) -> set[str]:
    """The top-level names of the absolute imports a module runs (TYPE_CHECKING ones excluded)."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }
    imported: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    return imported


def test_every_contract_name_is_exported() -> None:
    """A public name that goes missing breaks this test."""
    missing = sorted(CONTRACT_NAMES - set(smime_collect.__all__))
    assert missing == []
    for name in CONTRACT_NAMES:
        assert getattr(smime_collect, name) is not None


def test_all_is_sorted_and_resolvable() -> None:
    """__all__ is one sorted list of names that exist."""
    assert smime_collect.__all__ == sorted(smime_collect.__all__)
    for name in smime_collect.__all__:
        assert hasattr(smime_collect, name), name


def test_error_classes_live_in_the_package() -> None:
    """Public classes present themselves as smime_collect's, not a private module's."""
    for name in smime_collect.__all__:
        obj = getattr(smime_collect, name)
        if isinstance(obj, type):
            assert obj.__module__.startswith("smime_collect")


def test_the_sans_io_layers_are_known() -> None:
    """The protocol, models, errors, certificate and policy modules are all checked below."""
    for name in ("_rules.py", "_models.py", "_exceptions.py", "_protocol.py", "_certs.py"):
        assert name in SANS_IO
    assert "_polling.py" in SANS_IO
    assert "_der.py" in SANS_IO


@pytest.mark.parametrize("module", SANS_IO)
def test_sans_io_modules_do_no_io(module: str) -> None:
    """The protocol, certificate and policy layers import no network or event-loop module."""
    assert imported_modules(PACKAGE / module) & FORBIDDEN == set()


@pytest.mark.parametrize("module", sorted(p.name for p in PACKAGE.glob("*.py")))
def test_only_the_client_imports_httpx(module: str) -> None:
    """Only the client touches httpx, so swapping the HTTP stack is a small change."""
    if module not in HTTP_MODULES:
        assert "httpx" not in imported_modules(PACKAGE / module)


def test_py_typed_ships() -> None:
    """The package is marked as typed."""
    assert (PACKAGE / "py.typed").exists()

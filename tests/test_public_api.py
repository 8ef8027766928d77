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

# Modules that must stay free of I/O: no network stack, no event loop, no sleeping.
SANS_IO = ["_rules.py", "_models.py", "_exceptions.py", "_protocol.py", "_certs.py"]
SANS_IO += [name for name in ("_der.py", "_chain.py", "_polling.py") if (PACKAGE / name).exists()]
FORBIDDEN = {"httpx", "asyncio", "socket", "time", "aiohttp", "anyio", "trio"}


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


@pytest.mark.parametrize("module", SANS_IO)
def test_sans_io_modules_do_no_io(module: str) -> None:
    """The protocol, certificate and policy layers import no network or event-loop module."""
    tree = ast.parse((PACKAGE / module).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    assert imported & FORBIDDEN == set()


def test_py_typed_ships() -> None:
    """The package is marked as typed."""
    assert (PACKAGE / "py.typed").exists()

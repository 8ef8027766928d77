"""The public surface: every public name is exported, presented and introspectable as public.

Which layer may import which is not checked here but by import-linter (``lint-imports`` in CI,
contracts in ``pyproject.toml``): a rule over the whole tree, not a list kept by hand.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import typing
from pathlib import Path

import attrs
import pytest

import smime_collect
import smime_collect.testing
import smime_collect.testing.formats

PACKAGE = Path(smime_collect.__file__).parent

# The names users, the examples and README import from the top-level package; add, never remove.
PUBLIC_NAMES = {
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
    "ClientClosedError",
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

PUBLIC_MODULES = (smime_collect, smime_collect.testing, smime_collect.testing.formats)
PUBLIC = [
    (module, name, getattr(module, name)) for module in PUBLIC_MODULES for name in module.__all__
]
PUBLIC_CLASSES = [(m, n, obj) for m, n, obj in PUBLIC if isinstance(obj, type)]


def _ids(item: tuple[object, str, object]) -> str:
    return item[1]


def test_every_public_name_is_exported() -> None:
    """A public name that goes missing breaks this test."""
    missing = sorted(PUBLIC_NAMES - set(smime_collect.__all__))
    assert missing == []


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_all_is_sorted_and_resolvable(module: object) -> None:
    """__all__ is one sorted list of names that exist."""
    names = module.__all__  # type: ignore[attr-defined]
    assert names == sorted(names)
    for name in names:
        assert hasattr(module, name), name


@pytest.mark.parametrize("item", [p for p in PUBLIC if callable(p[2])], ids=_ids)
def test_public_names_report_the_public_module(item: tuple[object, str, object]) -> None:
    """Tracebacks and reprs say ``smime_collect.TransportError``, never a private module path."""
    module, name, obj = item
    assert obj.__module__ == module.__name__, name  # type: ignore[attr-defined]


@pytest.mark.parametrize("item", PUBLIC_CLASSES, ids=_ids)
def test_type_hints_resolve(item: tuple[object, str, type]) -> None:
    """``typing.get_type_hints`` works on every public class and its constructor.

    cattrs, pydantic, FastAPI response models and sphinx-autodoc-typehints all call it; a name
    imported only for type checking would make it raise NameError.
    """
    _, _, cls = item
    typing.get_type_hints(cls)
    typing.get_type_hints(cls.__init__)
    if attrs.has(cls):
        attrs.resolve_types(cls)


def _modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts[-1] in {"__main__", "_aiohttp"}:  # __main__ runs the CLI; _aiohttp needs the extra
            continue
        names.append(".".join(parts))
    return names


def test_every_module_imports_on_its_own() -> None:
    """Each module imports in a fresh set of modules: no import cycle depends on import order."""
    script = textwrap.dedent(
        """
        import importlib, sys
        failed = []
        for name in sys.argv[1:]:
            for loaded in [m for m in sys.modules if m.split(".")[0] == "smime_collect"]:
                del sys.modules[loaded]
            try:
                importlib.import_module(name)
            except Exception as exc:
                failed.append(f"{name}: {exc!r}")
        print("\\n".join(failed))
        """
    )
    modules = _modules()
    assert "smime_collect._certs._load" in modules  # the walk found the subpackages
    done = subprocess.run(  # noqa: S603 -- this interpreter, our own module names
        [sys.executable, "-c", script, *modules],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert done.stdout.strip() == ""

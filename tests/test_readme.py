"""README: its snippets run and type-check, its versions are pyproject's, what it cites exists.

Snippets run against the simulator instead of Sectigo.  ``tests/test_docs.py`` runs the snippets of
``docs/`` with the same names at hand (``snippet_namespace``) and the same runner (``run``).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from smime_collect import CollectClient, CollectResult, Status
from smime_collect.testing import OrderState, Simulator, TestCA
from smime_collect.testing.formats import to_base64, to_pem_blocks, to_pkcs7_der

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
TYPED_API = Path(__file__).parent / "typing" / "api.py"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
LOGIN, PASSWORD = "api-user", "s3cret"
ORDERS = [1234567, 1234568, 1234569]
REJECTED_ORDER = 7654321


def snippet_id(block: str) -> str:
    """A readable test id: the first line that is not an import or blank."""
    for line in block.splitlines():
        if line.strip() and not line.startswith(("from ", "import ")):
            return line.strip()[:40]
    return "block"


def snippet_namespace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the snippets take for granted: credentials, an account, files, a key, a body.

    ``CollectClient.from_env()`` in a snippet talks to ``sim``, the simulator, not to Sectigo:
    its orders ``ORDERS`` are issued and ``REJECTED_ORDER`` is rejected.
    """
    monkeypatch.chdir(tmp_path)
    for name in ("SECTIGO_LOGIN_NAME_FILE", "SECTIGO_LOGIN_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SECTIGO_LOGIN_NAME", LOGIN)
    monkeypatch.setenv("SECTIGO_LOGIN_PASSWORD", PASSWORD)
    sim = Simulator(seed=1)
    sim.add_account(LOGIN, PASSWORD)
    for order in ORDERS:
        sim.add_order(order)
    sim.add_order(REJECTED_ORDER, state=OrderState.REJECTED)
    original = CollectClient.from_env.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(
        CollectClient,
        "from_env",
        classmethod(lambda cls, **kw: original(cls, **{"transport": sim.transport(), **kw})),
    )
    issued = TestCA.create().issue_smime("alice@example.com")
    pkcs7 = to_pkcs7_der(issued.certificates())
    for name in ("payload.p7b", "order-1234567.p7b"):
        (tmp_path / name).write_bytes(pkcs7)
    (tmp_path / "fullchain.pem").write_bytes(to_pem_blocks(issued.certificates()[:2]))
    (tmp_path / "alice.key").write_bytes(
        issued.end_entity_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    saved: dict[int, bytes] = {}
    return {
        "sim": sim,
        "saved": saved,
        "read_order_numbers": lambda: iter(ORDERS),
        "save": saved.__setitem__,
        "login_name": LOGIN,
        "login_password": PASSWORD,
        "body": b"2\n" + to_base64(pkcs7),
        "key": issued.end_entity_key,
    }


@pytest.fixture
def namespace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The names README's snippets take for granted."""
    return snippet_namespace(tmp_path, monkeypatch)


def run(block: str, namespace: dict[str, Any], filename: str = "README.md") -> None:
    """Execute a snippet; top-level await runs on a fresh event loop."""
    code = compile(block, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    outcome = eval(code, namespace)  # noqa: S307 -- our own documentation
    if inspect.iscoroutine(outcome):
        asyncio.run(outcome)


def test_readme_has_snippets() -> None:
    """The README shows the library in Python, not only in prose: a cheat sheet of five or more."""
    assert len(BLOCKS) >= 5


def code_lines(text: str) -> list[str]:
    """The lines that are code: neither blank nor an import (api.py gathers those at the top)."""
    lines, in_import = [], False
    for line in text.splitlines():
        if line.startswith(("from ", "import ")):
            in_import = line.endswith("(")  # a parenthesised import goes on to its ")"
        elif in_import:
            in_import = line != ")"
        elif line.strip():
            lines.append(line.rstrip())
    return lines


def contains(haystack: list[str], needle: list[str]) -> bool:
    """Whether ``needle`` appears in ``haystack`` as a run of lines under one common indent."""
    for start in range(len(haystack) - len(needle) + 1):
        first = haystack[start]
        indent = first[: len(first) - len(first.lstrip())]
        if all(haystack[start + i] == indent + line for i, line in enumerate(needle)):
            return True
    return False


@pytest.mark.parametrize("block", BLOCKS, ids=[snippet_id(b) for b in BLOCKS])
def test_snippet_is_type_checked(block: str) -> None:
    """Each snippet is in tests/typing/api.py as printed, where mypy --strict checks it."""
    assert contains(code_lines(TYPED_API.read_text()), code_lines(block)), snippet_id(block)


@pytest.mark.parametrize("block", BLOCKS, ids=[snippet_id(b) for b in BLOCKS])
def test_snippet_runs(
    block: str, namespace: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The snippet runs as printed, and does what it says."""
    run(block, namespace)
    check_effects(block, namespace, tmp_path, capsys.readouterr().out.splitlines())


def check_effects(
    block: str, namespace: dict[str, Any], tmp_path: Path, printed: list[str]
) -> None:
    """What a snippet left behind is what it says it does: results, saved chains, files."""
    if "sim.stats.requests_total" in block and "asyncio.run" in block:  # the fault walk-through
        assert printed[-2:] == ["-21", "8 3"]
    result = namespace.get("result")
    if "def " not in block and re.search(
        r"^\s*result = (await client\.wait_for_certificate|parse_response)", block, re.M
    ):
        assert isinstance(result, CollectResult)
        assert result.status is Status.ATTACHED
        assert result.chain is not None
        assert result.chain.end_entity is not None
    if "save(" in block:
        assert sorted(namespace["saved"]) == ORDERS
        assert all(
            pem.startswith(b"-----BEGIN CERTIFICATE-----") for pem in namespace["saved"].values()
        )
    if "alice.p12" in block:
        password = re.search(r'password=b"([^"]+)"', block)
        assert password, "a PKCS#12 file is written with a password"
        key, cert, _ = pkcs12.load_key_and_certificates(
            (tmp_path / "alice.p12").read_bytes(), password.group(1).encode()
        )
        assert key is not None
        assert cert is not None
        assert "alice@example.com" in cert.subject.rfc4514_string()
    if "= load_certificates(Path(" in block:
        chain = namespace["chain"]
        assert chain.end_entity is not None
        # fullchain.pem holds the end entity and the intermediate; the payloads hold the root too.
        assert len(chain) == (2 if 'load_certificates(Path("fullchain.pem")' in block else 3)


# The supported-versions table: a row's first cell, then "name >= floor" pairs.
FLOOR = re.compile(r"([A-Za-z][\w.-]*) >= ([\d.]+)")
# The extras for working on smime_collect itself, not for using it: not in the table.
DEVELOPMENT_EXTRAS = frozenset({"test", "lint", "docs", "dev"})


def _table_row(label: str) -> str:
    """The cells after ``label`` in README's supported-versions table."""
    match = re.search(rf"^\| {re.escape(label)} \|(.*)\|$", README.read_text(), re.M)
    assert match, label
    return match.group(1)


def _floors(requirements: list[str]) -> dict[str, str]:
    """``{name: lower bound}`` of pyproject requirements such as ``attrs>=23.1``."""
    return dict(re.findall(r"^([A-Za-z][\w.-]*)>=([\d.]+)$", "\n".join(requirements), re.M))


def test_supported_versions_are_pyprojects() -> None:
    """README's supported versions are the classifiers and dependency floors of pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pythons = [
        c.rsplit(" :: ", 1)[1]
        for c in project["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    assert re.findall(r"3\.\d+", _table_row("Python")) == pythons
    assert dict(FLOOR.findall(_table_row("core dependencies"))) == _floors(project["dependencies"])
    extras = project["optional-dependencies"].keys() - DEVELOPMENT_EXTRAS
    assert extras >= {"aiohttp", "cli", "otel", "redis", "simulator"}
    for extra in sorted(extras):
        documented = dict(FLOOR.findall(_table_row(f"`[{extra}]` extra")))
        assert documented == _floors(project["optional-dependencies"][extra]), extra


# A citation: a page under docs/, then maybe a comma and the quoted heading it points into, read
# once the line breaks and comment markers of a wrapped comment are folded away.
CITATION = re.compile(r'\b(docs/\w[\w./-]*\.md)`{0,2}(?:,\s*"([^"]+)")?')
WRAPPED = re.compile(r"\s*\n\s*#?\s*")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchor(heading: str) -> str:
    """The anchor GitHub (and MyST with heading anchors) gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def headings(page: Path) -> set[str]:
    """The headings of a Markdown page, as written."""
    return set(re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), re.M))


def test_cited_docs_pages_exist() -> None:
    """Every docs/ page (and heading) cited in the package, tests, examples or README exists."""
    sources = [README, *ROOT.glob("docs/**/*.md")]
    for folder in ("smime_collect", "tests", "examples", "benchmarks"):
        sources += sorted((ROOT / folder).rglob("*.py"))
    cited = {
        (page, heading, source.relative_to(ROOT).as_posix())
        for source in sources
        for page, heading in CITATION.findall(WRAPPED.sub(" ", source.read_text(encoding="utf-8")))
    }
    assert cited, "nothing cites docs/ any more"
    missing = sorted(
        (page, heading, where)
        for page, heading, where in cited
        if not (ROOT / page).is_file() or (heading and heading not in headings(ROOT / page))
    )
    assert missing == []


def test_docs_links_resolve() -> None:
    """Relative links in README and docs/ point to files that exist, and to headings they have."""
    broken = []
    for page in [README, *sorted(ROOT.glob("docs/**/*.md"))]:
        for target in MARKDOWN_LINK.findall(page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            path, _, fragment = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists() or (
                fragment
                and linked.suffix == ".md"
                and fragment not in {anchor(h) for h in headings(linked)}
            ):
                broken.append(f"{page.name}: {target}")
    assert broken == []

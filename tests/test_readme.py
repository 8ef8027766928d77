"""README's snippets run and type-check; the docs/ pages that README and the code cite exist.

Snippets run against the simulator instead of Sectigo.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from smime_collect import CollectClient, CollectResult, Status
from smime_collect.testing import Simulator, TestCA
from smime_collect.testing.formats import to_base64, to_pkcs7_der

README = Path(__file__).parent.parent / "README.md"
TYPED_API = Path(__file__).parent / "typing" / "api.py"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
LOGIN, PASSWORD = "api-user", "s3cret"
ORDERS = [1234567, 1234568, 1234569]


def snippet_id(block: str) -> str:
    """A readable test id: the first line that is not an import or blank."""
    for line in block.splitlines():
        if line.strip() and not line.startswith(("from ", "import ")):
            return line.strip()[:40]
    return "block"


@pytest.fixture
def namespace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the snippets take for granted: credentials, an account, files, a key, a body."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SECTIGO_LOGIN_NAME", LOGIN)
    monkeypatch.setenv("SECTIGO_LOGIN_PASSWORD", PASSWORD)
    sim = Simulator(seed=1)
    sim.add_account(LOGIN, PASSWORD)
    for order in ORDERS:
        sim.add_order(order)
    # CollectClient.from_env() in a snippet talks to the simulator, not to Sectigo.
    original = CollectClient.from_env.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(
        CollectClient,
        "from_env",
        classmethod(lambda cls, **kw: original(cls, transport=sim.transport(), **kw)),
    )
    issued = TestCA.create().issue_smime("alice@example.com")
    pkcs7 = to_pkcs7_der(issued.certificates())
    for name in ("payload.p7b", "order-1234567.p7b"):
        (tmp_path / name).write_bytes(pkcs7)
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


def run(block: str, namespace: dict[str, Any]) -> None:
    """Execute a snippet; top-level await runs on a fresh event loop."""
    code = compile(block, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    outcome = eval(code, namespace)  # noqa: S307 -- our own README
    if inspect.iscoroutine(outcome):
        asyncio.run(outcome)


def test_readme_has_snippets() -> None:
    """The README shows the library in Python, not only in prose."""
    assert len(BLOCKS) >= 6


def _code_lines(text: str) -> list[str]:
    """The lines that are code: neither blank nor an import (api.py gathers those at the top)."""
    return [
        line.rstrip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith(("from ", "import "))
    ]


def _contains(haystack: list[str], needle: list[str]) -> bool:
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
    assert _contains(_code_lines(TYPED_API.read_text()), _code_lines(block)), snippet_id(block)


@pytest.mark.parametrize("block", BLOCKS, ids=[snippet_id(b) for b in BLOCKS])
def test_snippet_runs(
    block: str, namespace: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The snippet runs as printed, and does what it says."""
    run(block, namespace)
    printed = capsys.readouterr().out.splitlines()
    if "sim.stats.requests_total" in block:  # the simulator walk-through prints its counters
        assert printed[-2:] == ["-21", "8 3"]
    result = namespace.get("result")
    if re.search(r"^\s*result = (await client\.wait_for_certificate|parse_response)", block, re.M):
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
        key, cert, _ = pkcs12.load_key_and_certificates(
            (tmp_path / "alice.p12").read_bytes(), b"s3cret"
        )
        assert key is not None
        assert cert is not None
        assert "alice@example.com" in cert.subject.rfc4514_string()
    if "load_certificates" in block:
        chain = namespace["chain"]
        assert chain.end_entity is not None
        assert len(chain) == 3


ROOT = README.parent
# A citation: a page under docs/, then maybe a comma and the quoted heading it points into, read
# once the line breaks and comment markers of a wrapped comment are folded away.
CITATION = re.compile(r'\b(docs/\w[\w./-]*\.md)`{0,2}(?:,\s*"([^"]+)")?')
WRAPPED = re.compile(r"\s*\n\s*#?\s*")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """The anchor GitHub (and MyST with heading anchors) gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _headings(page: Path) -> set[str]:
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
        if not (ROOT / page).is_file() or (heading and heading not in _headings(ROOT / page))
    )
    assert missing == []


def test_docs_links_resolve() -> None:
    """Relative links in README and docs/ point to files that exist, and to headings they have."""
    broken = []
    for page in [README, *sorted(ROOT.glob("docs/**/*.md"))]:
        for target in MARKDOWN_LINK.findall(page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists() or (
                anchor
                and linked.suffix == ".md"
                and anchor not in {_anchor(h) for h in _headings(linked)}
            ):
                broken.append(f"{page.name}: {target}")
    assert broken == []

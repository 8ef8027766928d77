"""The pages under docs/ say what the code does.

Every Python snippet runs (against the simulator) and is type-checked (``tests/typing``); every
command shown parses; the tables that restate the code (Sectigo's codes, the command's options,
the simulator's knobs, the resource bounds) are compared with it; every test the evidence page
names exists.  Links and cited headings are checked by ``tests/test_readme.py``; the Sphinx build
itself (``-W``, in ``.ci/run``) checks the cross-references and the API reference.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import inspect
import json
import re
import shlex
import sys
import tomllib
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import pytest
from test_readme import check_effects, code_lines, contains, run, snippet_namespace

from smime_collect import CollectClient, SectigoError, _protocol
from smime_collect._certs import _der
from smime_collect._certs import _load as _certs
from smime_collect._cli import main
from smime_collect._cli._parser import build_parser
from smime_collect._client import _client
from smime_collect._rules import CODES
from smime_collect.testing import Chaos, OrderState, Quirks, Simulator, Stats

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
TYPED_DOCS = Path(__file__).parent / "typing" / "docs_snippets.py"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.M | re.S)


@attrs.frozen
class Block:
    """One fenced code block of a page."""

    page: Path
    language: str
    text: str
    line: int

    @property
    def name(self) -> str:
        """``page.md:line``, for test ids and messages."""
        return f"{self.page.relative_to(DOCS)}:{self.line}"


def blocks(*languages: str) -> list[Block]:
    """Every fenced block in docs/ in one of ``languages``."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            if match.group(1) in languages:
                line = text.count("\n", 0, match.start()) + 1
                found.append(Block(page, match.group(1), match.group(2), line))
    return found


PYTHON = blocks("python")
SHELL = blocks("sh", "console")
# Snippets known not to hold up as printed, and why; strict, so a fixed snippet fails here until
# its entry is removed (and the snippet copied into tests/typing).
KNOWN_DEFECTS: dict[Path, str] = {}


def snippet_params() -> list[Any]:
    """The Python snippets as test parameters, those with a known defect marked as such."""
    return [
        pytest.param(
            block,
            id=block.name,
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN_DEFECTS[page])]
            if (page := block.page.relative_to(DOCS)) in KNOWN_DEFECTS
            else [],
        )
        for block in PYTHON
    ]


def section(page: str, heading: str) -> str:
    """The prose of a page under ``heading``, to the next heading of its level or higher.

    Code blocks are left out, so that a shell comment is not taken for a heading.
    """
    text = FENCE.sub("", (DOCS / page).read_text(encoding="utf-8"))
    match = re.search(rf"^(#+) {re.escape(heading)}$", text, re.M)
    assert match, (page, heading)
    rest = text[match.end() :]
    end = re.search(rf"^#{{1,{len(match.group(1))}}} ", rest, re.M)
    return rest if end is None else rest[: end.start()]


def table(text: str) -> list[list[str]]:
    """The rows of the first Markdown table in ``text``, header and rule left out."""
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows[2:]]


def test_docs_have_python_snippets() -> None:
    """The pages show the library at work, in Python, on every kind of page."""
    kinds = {block.page.relative_to(DOCS).parts[0] for block in PYTHON}
    assert {"tutorial", "how-to", "reference", "explanation"} <= kinds


@pytest.mark.parametrize("block", snippet_params())
def test_snippet_is_type_checked(block: Block) -> None:
    """Each snippet is in tests/typing/docs_snippets.py as printed, for mypy --strict."""
    assert contains(code_lines(TYPED_DOCS.read_text()), code_lines(block.text)), block.name


class _Printed:
    """``print`` for a snippet: records each line with the source line that printed it."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.lines: list[tuple[int, str]] = []

    def __call__(self, *values: object, sep: str = " ", **_: object) -> None:
        frame = sys._getframe(1)
        while frame.f_code.co_filename != self.filename and frame.f_back is not None:
            frame = frame.f_back
        self.lines.append((frame.f_lineno, sep.join(str(value) for value in values)))


def expected_output(comment: str) -> re.Pattern[str]:
    """The pattern a ``print(...)  # comment`` promises: the comment, ``...`` matching anything."""
    return re.compile(".*".join(re.escape(part) for part in comment.split("...")))


@pytest.mark.parametrize("block", snippet_params())
def test_snippet_runs(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The snippet runs as printed; each print prints what its comment says; its tests pass."""
    namespace = snippet_namespace(tmp_path, monkeypatch)
    namespace["create_app"] = _fastapi_app().create_app
    printed = _Printed(block.name)
    namespace["print"] = printed
    run(block.text, namespace, block.name)
    # An ``async def test_...`` that a page shows runs as pytest-asyncio would run it.
    for value in list(namespace.values()):
        if inspect.iscoroutinefunction(value) and value.__name__.startswith("test_"):
            asyncio.run(value())
    source = block.text.splitlines()
    for line, text in printed.lines:
        comment = re.search(r"^\s*print\(.*\)  # (.+)$", source[line - 1])
        if comment:
            assert expected_output(comment.group(1)).fullmatch(text), (block.name, line, text)
    check_effects(block.text, namespace, tmp_path, [text for _, text in printed.lines])


def _fastapi_app() -> Any:
    """examples/fastapi_app.py as a module (examples/ is not a package)."""
    sys.path.insert(0, str(ROOT))
    try:
        return __import__("examples.fastapi_app", fromlist=["create_app"])
    finally:
        sys.path.remove(str(ROOT))


# --- commands ---------------------------------------------------------------------------------


def shell_lines(block: Block) -> Iterator[str]:
    """The commands of a sh block, or the ``$`` lines of a console block, split at pipes."""
    for line in block.text.splitlines():
        if block.language == "console" and not line.startswith("$ "):
            continue
        command = line.removeprefix("$ ") if block.language == "console" else line
        yield from (piece.strip() for piece in command.split("|"))


def test_smime_collect_commands_parse() -> None:
    """Every ``smime-collect`` command the pages show is accepted by the parser."""
    commands = [
        command
        for block in SHELL
        for command in shell_lines(block)
        if command.startswith("smime-collect ")
    ]
    assert len(commands) >= 10
    parser = build_parser()
    for command in commands:
        args = parser.parse_args(shlex.split(command, comments=True)[1:])
        assert args.command, command


def test_pip_installs_name_real_extras() -> None:
    """Every ``pip install '.[extra]'`` or ``smime-collect[extra]`` names an extra pyproject has."""
    extras = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    shown = {
        name
        for page in [*PAGES, ROOT / "README.md"]
        for group in re.findall(r"(?:'\.|smime-collect)\[([\w,-]+)\]", page.read_text())
        for name in group.split(",")
    }
    assert shown
    assert shown <= extras


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    """The parser of each ``smime-collect`` command, by name."""
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no commands")


def _help_options(parser: argparse.ArgumentParser) -> set[str]:
    """The options ``--help`` lists in its usage line, --help itself left out."""
    return set(re.findall(r"\[(--[\w-]+)", parser.format_usage())) - {"--help"}


def _documented_options(heading: str) -> set[str]:
    """The options in the first column of the table under ``heading`` of the command-line page."""
    return {
        re.match(r"`(--[\w-]+)", row[0]).group(1)  # type: ignore[union-attr]
        for row in table(section("reference/cli.md", heading))
        if row[0].startswith("`--")
    }


def test_cli_page_lists_the_options_help_lists() -> None:
    """Each command's options on the command-line page are exactly those its --help lists."""
    commands = _subcommands()
    connection = _documented_options("Connection options")
    documented = {
        "demo": _documented_options("`smime-collect demo`"),
        "collect": _documented_options("`smime-collect collect`")
        | _documented_options("Mail-client bundles")
        | connection,
        "status": {"--orders-file"} | connection,
        "inspect": _documented_options("`smime-collect inspect`"),
        "simulate": _documented_options("`smime-collect simulate`"),
    }
    assert set(commands) == set(documented), "a command this page does not describe"
    for name, parser in commands.items():
        assert _help_options(parser) == documented[name], name


def test_meta_json_and_json_output_have_the_documented_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """meta.json and --json lines carry the keys the command-line page shows."""
    shown = [json.loads(block.text) for block in blocks("json") if "cli.md" in block.page.name]
    meta_keys, line_keys = set(shown[0]), set(shown[1])
    monkeypatch.setenv("SECTIGO_LOGIN_NAME", "api-user")
    monkeypatch.setenv("SECTIGO_LOGIN_PASSWORD", "s3cret")
    sim = Simulator(seed=1)
    sim.add_account("api-user", "s3cret")
    sim.add_order(1001)
    sim.add_order(1002, state=OrderState.REJECTED)
    factory = partial(CollectClient, transport=sim.transport())
    argv = ["collect", "1001", "1002", "--json", "--out", str(tmp_path)]
    assert main(argv, client_factory=factory) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [set(line) - {"http_status"} for line in lines] == [line_keys, line_keys]
    assert set(json.loads((tmp_path / "1001" / "meta.json").read_text())) == meta_keys


# --- tables that restate the code -------------------------------------------------------------


def _yes(cell: str) -> bool:
    """A yes/no cell ("yes, and slows ...", "**never**" and "no" included)."""
    return cell.startswith("yes")


def test_error_table_is_the_code_table() -> None:
    """The errors page's code table is ``_rules.CODES``: classes, columns, messages and hints."""
    rows = table(section("reference/errors.md", "Sectigo's codes"))
    documented = {
        int(code): (cls.strip("`"), _yes(retried), _yes(stops), _yes(slows), message, hint)
        for code, cls, retried, stops, slows, message, hint in rows
    }
    actual = {
        code: (
            type(SectigoError.from_code(code)).__name__,
            info.transient,
            info.account_level,
            info.rate_limited,
            info.message,
            info.hint,
        )
        for code, info in CODES.items()
    }
    assert documented == actual


def test_endpoint_code_table_agrees_with_the_code() -> None:
    """The endpoint page's codes, messages and columns are those of ``_rules.CODES``."""
    rows = table(section("reference/endpoint.md", "Status and error codes"))
    negative = {int(row[0]): row for row in rows if row[0].startswith("-")}
    assert set(negative) == set(CODES)
    for code, (_, message, _, retried, stops) in negative.items():
        info = CODES[code]
        assert message.replace("xxxx", "{}") == info.message, code
        assert (_yes(retried), _yes(stops)) == (info.transient, info.account_level), code


def test_simulator_page_names_every_knob() -> None:
    """The simulator page lists every Chaos knob, every Quirk with its default, every counter."""
    chaos = section("reference/simulator.md", "Chaos")
    assert {f.name for f in attrs.fields(Chaos)} <= set(re.findall(r"`(\w+)`", chaos))
    quirks = {
        row[0].strip("`"): row[1].strip('`"')
        for row in table(section("reference/simulator.md", "Quirks"))
    }
    defaults = {f.name: f.default for f in attrs.fields(Quirks)}
    assert set(quirks) == set(defaults)
    for name, default in defaults.items():
        shown = getattr(default, "name", str(default))
        assert quirks[name] == shown, name
    counters = section("reference/simulator.md", "Counters")
    assert {f.name for f in attrs.fields(Stats)} <= set(re.findall(r"`(\w+)`", counters))
    scenario = table(section("reference/simulator.md", "The scenario"))[0][0]
    assert set(inspect.signature(Simulator).parameters) <= set(re.findall(r"(\w+)=", scenario))


MiB = 1024 * 1024


def test_resource_bounds_are_the_codes() -> None:
    """The evidence page's resource bounds are the constants the code enforces."""
    bounds = dict(table(section("explanation/evidence.md", "Resource bounds")))
    value = {name: re.match(r"[\d,]+( MiB)?", cell).group(0) for name, cell in bounds.items()}  # type: ignore[union-attr]

    def number(name: str) -> int:
        text = value[name].replace(",", "")
        return int(text.removesuffix(" MiB")) * (MiB if text.endswith("MiB") else 1)

    assert number("Response body") == _client.DEFAULT_MAX_RESPONSE_BYTES
    assert number("Certificate data given to `load_certificates`") == _certs.MAX_INPUT_BYTES
    assert number("PEM blocks per input") == _certs.MAX_PEM_BLOCKS
    assert number("Certificates per input") == _certs.MAX_CERTIFICATES
    assert number("ZIP entries") == _certs.DEFAULT_MAX_ZIP_ENTRIES
    assert number("ZIP unpacked size") == _certs.DEFAULT_MAX_ZIP_SIZE
    assert number("ASN.1 nesting walked by the DER reader") == _der.DEFAULT_MAX_DEPTH
    assert number("Sectigo error message kept") == _protocol._MAX_MESSAGE


def _test_names(path: Path) -> set[str]:
    """``Class::test`` and ``test`` names defined in a test module."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(f"{node.name}::{item.name}")
    return names


def test_evidence_names_real_tests() -> None:
    """Every ``tests/...py::test`` the evidence page cites exists."""
    text = (DOCS / "explanation" / "evidence.md").read_text()
    cited = re.findall(r"`(tests/\w+\.py)(?:::([\w:]+))?`", text)
    assert len(cited) >= 20
    missing = [
        (path, name)
        for path, name in cited
        if not (ROOT / path).is_file() or (name and name not in _test_names(ROOT / path))
    ]
    assert missing == []


def test_every_page_is_in_a_toctree() -> None:
    """Each page is reachable from the site's contents (Sphinx only warns about the others)."""
    listed = set()
    for page in PAGES:
        for body in re.findall(r"```\{toctree\}\n(.*?)```", page.read_text(), re.S):
            base = page.parent.relative_to(DOCS)
            for entry in body.splitlines():
                if entry and not entry.startswith(":"):
                    listed |= {p.relative_to(DOCS) for p in (DOCS / base).glob(f"{entry}.md")}
    unlisted = {p.relative_to(DOCS) for p in PAGES} - listed - {Path("index.md")}
    assert unlisted == set()

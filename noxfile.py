"""Nox sessions: tests on every supported Python, tests_lowest, lint, typecheck, docs, bench.

Python versions come from pyproject.toml's classifiers, so there is one list to keep.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "tests_lowest", "lint", "typecheck", "docs"]
nox.options.reuse_existing_virtualenvs = True

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = nox.project.python_versions(PYPROJECT)
# uv resolves the lowest versions pyproject.toml allows; pinned like the linters, and the same
# version as .ci/run's step, so that both resolve alike.
UV = "uv==0.13.9"


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite with branch coverage."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "--cov", "--cov-report=term", *session.posargs)


@nox.session(python=PYTHONS[0], reuse_venv="never")
def tests_lowest(session: nox.Session) -> None:
    """Run the test suite against the lowest version of every dependency pyproject.toml names.

    The floors in pyproject.toml are promises: this session installs exactly them (uv's
    ``--resolution lowest-direct``; what they depend on resolves as usual) in a fresh environment.
    """
    session.install(UV)
    session.run(
        "uv", "pip", "install", "--quiet", "--python", session.virtualenv.location,
        "--resolution", "lowest-direct", "-e", ".[test]",
    )  # fmt: skip
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider", *session.posargs)


@nox.session(python=PYTHONS[0])
def lint(session: nox.Session) -> None:
    """Ruff lint and format check."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHONS[0])
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package and over the snippets of README and docs/ (tests/typing)."""
    session.install("-e", ".[test,lint]")
    session.run("mypy", "--strict", "smime_collect")
    session.run("mypy", "--strict", "tests/typing")


@nox.session(python=PYTHONS[0])
def docs(session: nox.Session) -> None:
    """Build the documentation site into build/docs, failing on any warning."""
    session.install("-e", ".[docs]")
    session.run("python", "-m", "sphinx", "-W", "--keep-going", "-b", "html", "docs", "build/docs")


@nox.session(python=PYTHONS[0])
def bench(session: nox.Session) -> None:
    """Run the benchmarks; each prints ratios against a baseline measured in the same run."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "benchmarks", *session.posargs)

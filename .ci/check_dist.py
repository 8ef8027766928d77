"""Check the built wheel and sdist: what a user installs, and what a packager rebuilds from.

Run by ``.ci/run`` after ``python -m build`` and ``twine check``: the wheel holds the package with
its ``py.typed`` marker and no test or tooling files; the sdist holds everything its own tests
need (the package, the tests, the examples, the docs they check, README, LICENSE, CHANGELOG).
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path

DIST = Path(sys.argv[1] if len(sys.argv) > 1 else "dist")
WHEEL_NEEDS = (
    "smime_collect/py.typed",
    "smime_collect/__init__.py",
    "smime_collect/testing/__main__.py",
    "smime_collect/_certs/_load.py",
)
NOT_IN_WHEEL = frozenset({"tests", "docs", "benchmarks", "examples"})
SDIST_NEEDS = (
    "pyproject.toml",
    "README.md",
    "LICENSE",
    "CHANGELOG.md",
    "noxfile.py",
    "smime_collect/py.typed",
    "tests/conftest.py",
    "tests/typing/api.py",
    "examples/fastapi_app.py",
    "docs/conf.py",
    "docs/index.md",
    "benchmarks/__main__.py",
)


def main() -> int:
    """Fail (exit 1) with a message for every file that is missing or should not be there."""
    wheels = sorted(DIST.glob("*.whl"))
    sdists = sorted(DIST.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        print(f"check_dist: expected one wheel and one sdist in {DIST}", file=sys.stderr)
        return 1
    wheel = set(zipfile.ZipFile(wheels[0]).namelist())
    with tarfile.open(sdists[0]) as archive:
        sdist = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    problems = [f"wheel lacks {name}" for name in WHEEL_NEEDS if name not in wheel]
    problems += [f"wheel holds {name}" for name in wheel if name.split("/")[0] in NOT_IN_WHEEL]
    if not any(name.endswith(".dist-info/licenses/LICENSE") for name in wheel):
        problems.append("wheel lacks the LICENSE file")
    problems += [f"sdist lacks {name}" for name in SDIST_NEEDS if name not in sdist]
    for problem in problems:
        print(f"check_dist: {problem}", file=sys.stderr)
    if not problems:
        print(f"check_dist: {wheels[0].name} and {sdists[0].name} hold what they should")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

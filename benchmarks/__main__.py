"""Run every benchmark and print its ratios: ``python -m benchmarks [name ...]``.

Each benchmark module exposes ``main() -> dict[str, float]`` and measures against a baseline in the
same run, so the ratios mean something on a shared, noisy machine; absolute times do not.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from pathlib import Path


def _names() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))


def run(selected: list[str]) -> int:
    """Run the named benchmarks (all when none is named) and print their figures as JSON."""
    names = [n if n.startswith("bench_") else f"bench_{n}" for n in selected] or _names()
    figures: dict[str, dict[str, float]] = {}
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"== {name}", flush=True)
        figures[name] = module.main()
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))

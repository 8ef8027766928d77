"""Sphinx configuration: Markdown pages (MyST), furo, and the API reference from the docstrings.

The build needs no network: no intersphinx, no remote inventories, no remote images.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import smime_collect  # noqa: E402 -- after the path is set, for a build from a plain clone

project = "smime_collect"
author = "smime_collect developers"
copyright = "smime_collect developers"  # noqa: A001 -- Sphinx's name for it
release = smime_collect.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# Modules that appear with an extra or a later release: their page is built only when they import.
OPTIONAL_MODULES = {
    "reference/api-events.md": "smime_collect.events",
    "reference/api-otel.md": "smime_collect.otel",
    "reference/api-redis.md": "smime_collect.redis",
}
for page, module in OPTIONAL_MODULES.items():
    try:
        importlib.import_module(module)
    except ImportError:
        exclude_patterns.append(page)

# MyST: GitHub's heading anchors, so that links between pages read the same on GitHub and here.
myst_heading_anchors = 3
myst_enable_extensions = ["deflist"]

# autodoc + napoleon: the docstrings are Google style; signatures carry the types.
autodoc_default_options = {"members": True, "member-order": "bysource", "show-inheritance": True}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autodoc_class_signature = "separated"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True

html_theme = "furo"
html_title = f"smime_collect {release}"
html_static_path: list[str] = []

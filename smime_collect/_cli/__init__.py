"""The ``smime-collect`` command: argument parsing, credentials, reports, files on disk, demo.

- ``_main``: ``main(argv, *, client_factory, terminal)`` and the four commands;
- ``_parser``: the arguments, one small function per command;
- ``_input``: credentials and order numbers from the environment, files and arguments;
- ``_to_disk``: the engine: a batch through ``collect_many`` into order directories, reported
  as ``_outcomes.OrderReport`` values and counted in a ``_outcomes.Tally``;
- ``_order_files``: one order's files, each written atomically;
- ``_report``: what is printed about a batch (plain, rich, JSON), from those reports and counts;
- ``_chains``: what ``inspect`` prints: the classified chain and what ``--verify`` checked;
- ``_demo``: ``smime-collect demo`` against the built-in simulator (the one place that imports
  ``smime_collect.testing``, and only when the demo runs).
"""

from ._main import main

__all__ = ["main"]

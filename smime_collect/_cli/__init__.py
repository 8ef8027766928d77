"""The ``smime-collect`` command: argument parsing, credentials, reports, files on disk, demo.

- ``_main``: ``main(argv)`` and the argument parser;
- ``_input``: credentials and order numbers from the environment, files and arguments;
- ``_report``: what is printed (plain, rich, JSON) and the tally behind the exit status;
- ``_to_disk`` and ``_order_files``: collecting into ``DIR/ORDER/`` with atomic writes;
- ``_demo``: ``smime-collect demo`` against the built-in simulator.
"""

from ._main import main

__all__ = ["main"]

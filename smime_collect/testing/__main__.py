"""``python -m smime_collect.testing serve``: the simulator as a tool (see ``_tool``)."""

import sys

from ._tool import main

if __name__ == "__main__":
    sys.exit(main())

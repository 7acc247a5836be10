"""``python -m chainrule``: the same command line as ``chainrule``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

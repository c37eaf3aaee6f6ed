"""``python -m relaybit``: the same as the ``relaybit`` command."""

from __future__ import annotations

import sys

from relaybit.cli import main

if __name__ == "__main__":
    sys.exit(main())

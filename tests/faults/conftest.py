"""Real-process tests: ``support`` (tests/integration/support.py) and its fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

SUPPORT_DIR = str(Path(__file__).resolve().parent.parent / "integration")
if SUPPORT_DIR not in sys.path:
    sys.path.insert(0, SUPPORT_DIR)

from support import certs as certs  # noqa: E402
from support import procs as procs  # noqa: E402

"""Real-process tests: ``support`` (tests/integration/support.py) and its fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SUPPORT_DIR = str(Path(__file__).resolve().parent.parent / "integration")
if SUPPORT_DIR not in sys.path:
    sys.path.insert(0, SUPPORT_DIR)

from support import certs as certs  # noqa: E402
from support import procs as procs  # noqa: E402

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here starts real processes: mark it ``slow`` (``-m "not slow"`` skips them)."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.slow)

"""Shared input-test fixtures; puts ``input_helpers`` on sys.path (importlib mode)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture
async def running() -> AsyncIterator[list[Any]]:
    """Input plugins a test started; each is stopped when the test ends."""
    plugins: list[Any] = []
    yield plugins
    for plugin in plugins:
        await plugin.stop()

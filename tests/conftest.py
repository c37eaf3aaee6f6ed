"""Shared fixtures. Tests bind 127.0.0.1 only, on port 0."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo_root() -> Path:
    """The repository's top folder (examples/ lives there)."""
    return REPO


@pytest.fixture
def python() -> str:
    """The interpreter running the tests (for subprocesses)."""
    return sys.executable

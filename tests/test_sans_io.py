"""The sans-IO cores import neither asyncio nor socket (checked on their source)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "relaybit"
FORBIDDEN = {"asyncio", "socket", "selectors", "ssl"}

CORE = [
    "codec",
    "config",
    "tag.py",
    "upstream/node.py",
    "upstream/health.py",
    "upstream/balancer.py",
    "upstream/connection.py",
    "pipeline/router.py",
    "pipeline/conditions.py",
    "pipeline/scheduler.py",
]


def core_modules() -> list[Path]:
    found: list[Path] = []
    for entry in CORE:
        path = SRC / entry
        if path.is_dir():
            found.extend(sorted(path.rglob("*.py")))
        elif path.exists():
            found.append(path)
    return found


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "__import__"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            roots.add(str(node.args[0].value).split(".")[0])
    return roots


def test_core_modules_exist() -> None:
    assert SRC.joinpath("upstream/health.py") in core_modules()


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_core_module_does_no_io(path: Path) -> None:
    bad = imported_roots(path) & FORBIDDEN
    assert not bad, f"{path.relative_to(SRC)} imports {sorted(bad)}: sans-IO code must not"


def test_the_checker_itself_detects_an_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom asyncio import sleep\nimport socket as s\n")
    assert imported_roots(sample) & FORBIDDEN == {"asyncio", "socket"}

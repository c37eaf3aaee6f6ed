"""benchmarks/filter_chain.py runs and prints a figure per stage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "filter_chain.py"


def test_filter_chain_benchmark_prints_every_stage() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--records", "50", "--rounds", "1"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    for stage in ("decode", "grep", "modify", "encode", "chain (all of it)"):
        assert stage in out
    assert out.count("us/record") == 5

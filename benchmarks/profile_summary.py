"""Where the time goes, from py-spy's collapsed stacks (``run.py --profile DIR``).

    python benchmarks/profile_summary.py DIR/tail_forward-4000000.txt [--top 15]

Prints the share of samples per function: *self* (the function was running)
and *total* (the function was on the stack), the way py-spy's ``top`` does.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def frame_name(frame: str) -> str:
    """``func (path/to/file.py:12)`` -> ``func (file.py)``."""
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    file = match["file"]
    for marker in ("/site-packages/", "/src/", "/lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{match['func']} ({file})"


def summarise(lines: list[str]) -> tuple[int, Counter[str], Counter[str]]:
    """(samples, self counts, total counts) from collapsed stack lines."""
    total = 0
    self_counts: Counter[str] = Counter()
    total_counts: Counter[str] = Counter()
    for raw in lines:
        raw = raw.rstrip()
        if not raw or " " not in raw:
            continue
        stack, _, count_text = raw.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        frames = [frame_name(f) for f in stack.split(";") if f and not f.startswith("process ")]
        frames = [f for f in frames if not f.startswith("thread ")]
        if not frames:
            continue
        total += count
        self_counts[frames[-1]] += count
        for name in set(frames):
            total_counts[name] += count
    return total, self_counts, total_counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    samples, self_counts, total_counts = summarise(args.file.read_text().splitlines())
    if not samples:
        print("no samples", file=sys.stderr)
        return 1
    print(f"{samples} samples (250 Hz: {samples / 250:.2f} s of CPU on the main thread)")
    print(f"{'self %':>7} {'total %':>8}  function")
    for name, count in self_counts.most_common(args.top):
        print(f"{100 * count / samples:>7.1f} {100 * total_counts[name] / samples:>8.1f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

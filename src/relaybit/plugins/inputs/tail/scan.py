"""Which files tail watches, and their tags: globs, exclusions, ``*`` tag expansion. Pure."""

from __future__ import annotations

import fnmatch
import glob
import os


def split_patterns(value: str | None) -> list[str]:
    """Comma-separated patterns, trimmed, empties removed."""
    if not value:
        return []
    return [part.strip() for part in value.split(",") if part.strip()]


def scan(patterns: list[str], excludes: list[str]) -> list[str]:
    """Regular files matching any pattern and no exclusion, sorted, each once."""
    found: dict[str, None] = {}
    for pattern in patterns:
        for path in sorted(glob.glob(os.path.expanduser(pattern))):
            if path in found or excluded(path, excludes):
                continue
            if os.path.isfile(path):
                found[path] = None
    return list(found)


def excluded(path: str, excludes: list[str]) -> bool:
    """True when ``path`` (or its base name) matches an ``exclude_path`` pattern."""
    base = os.path.basename(path)
    return any(fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(base, pat) for pat in excludes)


def expand_tag(tag: str, path: str) -> str:
    """Fluent Bit's tag composition: ``app.*`` + ``/var/log/a.log`` -> ``app.var.log.a.log``.

    Separators (``/``, ``\\``, ``:``) become dots, a leading one is dropped,
    doubled dots collapse, ``*`` in the path is dropped, no trailing dot.
    """
    if "*" not in tag:
        return tag
    chars: list[str] = []
    for ch in path:
        if ch in "/\\:":
            if not chars:
                continue
            ch = "."
        if ch == "*":
            continue
        if ch == "." and chars and chars[-1] == ".":
            continue
        chars.append(ch)
    while chars and chars[-1] == ".":
        chars.pop()
    return tag.replace("*", "".join(chars), 1)

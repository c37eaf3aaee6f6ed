"""Reading configuration files and resolving ``@INCLUDE`` / ``includes`` paths.

Every failure is a :class:`ConfigError` naming the path (and, for an include,
the line that asked for it).
"""

from __future__ import annotations

import glob
import os
import stat
from pathlib import Path

from relaybit.config.origin import Origin
from relaybit.errors import ConfigError

_GLOB_CHARS = frozenset("*?[")


def read_text(path: str | Path, origin: Origin | None = None) -> str:
    """The UTF-8 text of ``path``; ConfigError when missing, unreadable or not UTF-8.

    ``origin`` is where the file was named (an ``@INCLUDE`` line); the error is
    located there when given, else at the file itself.
    """
    where = origin or Origin(str(path))
    p = Path(path)
    if "\x00" in str(path):
        raise ConfigError(f"file name {str(path)!r} contains a NUL character", where)
    try:
        mode = p.stat().st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(str(path))
        if not stat.S_ISREG(mode):  # a FIFO or /dev/zero would block or never end
            raise ConfigError(f"{str(path)!r} is not a regular file", where)
        data = p.read_bytes()
    except IsADirectoryError:
        raise ConfigError(f"{str(path)!r} is a directory, expected a file", where) from None
    except FileNotFoundError:
        raise ConfigError(f"file {str(path)!r} does not exist", where) from None
    except PermissionError:
        raise ConfigError(
            f"file {str(path)!r} is not readable (permission denied)", where
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {str(path)!r}: {exc.strerror or exc}", where) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            Origin(str(path), line),
        ) from None


def resolve_include(pattern: str, including: str, origin: Origin) -> list[str]:
    """The files an include names, relative to the including file's directory.

    A glob (``conf.d/*.conf``) gives its matches sorted, possibly none; a plain
    path is returned as is (reading it reports a missing file).
    """
    if not pattern:
        raise ConfigError("include needs a file name or a glob", origin)
    if "\x00" in pattern:
        raise ConfigError("include path contains a NUL character", origin)
    expanded = os.path.expanduser(pattern)
    base = Path(including).parent
    full = expanded if os.path.isabs(expanded) else str(base / expanded)
    if any(c in _GLOB_CHARS for c in expanded):
        return sorted(glob.glob(full))
    return [full]


class IncludeStack:
    """The chain of files being read, to report ``@INCLUDE`` cycles."""

    __slots__ = ("_chain",)

    def __init__(self) -> None:
        self._chain: list[str] = []

    def push(self, path: str, origin: Origin | None) -> None:
        """Enter ``path``; ConfigError naming the whole chain when it is a cycle."""
        key = os.path.realpath(path)
        keys = [os.path.realpath(p) for p in self._chain]
        if key in keys:
            chain = " -> ".join([*self._chain[keys.index(key) :], path])
            raise ConfigError(f"include cycle: {chain}", origin)
        self._chain.append(path)

    def pop(self) -> None:
        self._chain.pop()

    def __repr__(self) -> str:
        return f"<IncludeStack {self._chain!r}>"


def read_env_file(uri: str, including: str, origin: Origin) -> tuple[str, str]:
    """``(path, value)`` of a variable read from a file (``file://PATH`` or ``PATH``).

    A relative path is resolved against the including file's directory; one
    trailing newline is dropped, as Fluent Bit does; an empty file is an error
    (Fluent Bit refuses it too).
    """
    path = uri[len("file://") :] if uri.startswith("file://") else uri
    if not path:
        raise ConfigError("a file variable needs a path (file:///etc/secret)", origin)
    expanded = os.path.expanduser(path)
    full = expanded if os.path.isabs(expanded) else str(Path(including).parent / expanded)
    return full, env_file_value(full, origin)


def env_file_value(path: str, origin: Origin | None = None) -> str:
    """The value a variable file holds: its text less one trailing newline, as
    Fluent Bit reads it; ConfigError when unreadable or empty (it would have none)."""
    value = read_text(path, origin)
    if value.endswith(("\n", "\r")):
        value = value[:-1]
    if not value:
        raise ConfigError(f"file {path!r} is empty: the variable would have no value", origin)
    return value

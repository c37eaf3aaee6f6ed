"""Where a configuration value came from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Origin:
    """A file and a 1-based line number (0 when unknown, e.g. the command line)."""

    path: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


COMMAND_LINE = Origin("<command line>")

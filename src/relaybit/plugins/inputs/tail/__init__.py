"""in_tail: follow files (globs, rotation, truncation, SQLite offsets)."""

from relaybit.plugins.inputs.tail.tail import TailInput

__all__ = ["TailInput"]

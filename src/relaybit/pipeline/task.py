"""A task: one sealed chunk and its delivery state towards each routed output.

The chunk is done (memory released, file deleted) only when every route is
``DONE`` (the output confirmed it) or ``DROPPED`` (the output gave up: ERROR or
retry limit reached, counted and logged by the engine).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relaybit.pipeline.chunk import Chunk


class RouteState(enum.Enum):
    QUEUED = "queued"
    FLUSHING = "flushing"
    RETRY_WAIT = "retry_wait"
    DONE = "done"
    DROPPED = "dropped"


FINAL = frozenset({RouteState.DONE, RouteState.DROPPED})


@dataclass(slots=True, eq=False)
class TaskRoute:
    """The state of one chunk towards one output."""

    output: str
    state: RouteState = RouteState.QUEUED
    retries: int = 0
    #: the pending retry timer (an asyncio TimerHandle), owned by the engine
    timer: Any = None


@dataclass(slots=True, eq=False)
class Task:
    """A chunk in flight to its outputs.

    ``path`` is the chunk's file (filesystem storage), deleted when the task is
    done; ``backlog`` marks chunks loaded from storage at start.  An output that
    finishes a filesystem chunk before the others is recorded next to the file
    (``routes_file``) so that a restart does not deliver it there again.  A filesystem
    chunk may be *down* (``chunk`` is a :class:`~relaybit.pipeline.chunk.DownChunk`,
    its data only in the file); ``loading`` is the future of its read back.
    """

    chunk: Chunk
    routes: dict[str, TaskRoute] = field(default_factory=dict)
    path: Path | None = None
    backlog: bool = False
    #: an ``asyncio.Future[bool]`` while the chunk is read back from its file
    loading: Any = None
    #: a filesystem chunk counted in its outputs' ``storage.total_limit_size``
    stored: bool = False
    #: its route-done sidecar exists (some outputs finished it; deleted with the file)
    routes_file: bool = False

    @classmethod
    def for_outputs(
        cls,
        chunk: Chunk,
        outputs: Iterable[str],
        *,
        path: Path | None = None,
        backlog: bool = False,
    ) -> Task:
        return cls(chunk, {name: TaskRoute(name) for name in outputs}, path, backlog)

    @property
    def done(self) -> bool:
        return all(r.state in FINAL for r in self.routes.values())

    @property
    def flushing(self) -> bool:
        """An output is flushing it right now (its data must stay up)."""
        return any(r.state is RouteState.FLUSHING for r in self.routes.values())

    @property
    def delivered_everywhere(self) -> bool:
        return all(r.state is RouteState.DONE for r in self.routes.values())

    def __repr__(self) -> str:
        states = ",".join(f"{r.output}={r.state.value}" for r in self.routes.values())
        return (
            f"<Task {self.chunk.id} tag={self.chunk.tag!r} records={self.chunk.records} {states}>"
        )

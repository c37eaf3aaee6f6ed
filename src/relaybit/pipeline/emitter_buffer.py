"""The buffer of a filter's emitter input: it cannot wait, so the inputs feeding it do.

A filter (``rewrite_tag``, ``multiline``) re-emits records through its
emitter from inside the filter chain, which runs synchronously: the emitter
cannot wait there.  When it cannot take them,

- its chunk write failed (``Emitter_Storage.type filesystem`` and the disk is
  full): the records are *held* here, in memory and in order, and stored by a
  drain task once the storage takes writes again
  (:func:`~relaybit.pipeline.storage_guard.store_when_possible`: the same
  pause, retry and once-per-episode log lines as an input's own write);
  records re-emitted meanwhile queue behind them;
- it is over its ``Emitter_Mem_Buf_Limit``: its records are kept, its chunks
  are dispatched, and it is marked paused (a warning at most once a minute).

In both cases the input whose records went to it waits at the end of its
``emit`` (:meth:`EmitterBuffer.wait_taken`) until the emitter stored
everything and is back under its limit: the input is paused, as by its own
limit or a full disk, and acknowledges nothing the emitter did not store.  So
a record that matched a rule is always re-emitted under its new tag: never
passed on under its old one, never dropped.  Records held when the agent
stops are counted as lost and logged once; an input waiting for them gets
the write's :class:`~relaybit.pipeline.storage_guard.StorageWriteError`
(nothing acknowledged).  Fluent Bit 5.1.1 passes such records on under their
old tag (memory limit) or drops them (failed write): see docs/compatibility.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from relaybit.logging import counted
from relaybit.pipeline.buffer import InputBuffer
from relaybit.pipeline.chunk import Chunk
from relaybit.pipeline.storage_guard import StorageWriteError, store_when_possible

log = logging.getLogger("relaybit.input")

Held = tuple[str, bytes, int, str]

#: an emitter over its limit is logged at most this often (the others at debug, counted)
WARN_EVERY = 60.0


class _Store:
    """The buffer as :func:`store_when_possible` sees it: its appends write."""

    def __init__(self, buf: EmitterBuffer) -> None:
        self.buf = buf
        self.name = buf.name

    def append(self, tag: str, data: bytes, records: int, route: str = "") -> Chunk | None:
        return InputBuffer.append(self.buf, tag, data, records, route)

    def seal_all(self) -> list[Chunk]:
        return self.buf.seal_all()

    def pause(self, *, chunks: bool = False, storage: bool = False) -> None:
        self.buf.pause(chunks=chunks, storage=storage)

    def resume(self) -> None:
        self.buf.resume()


class EmitterBuffer(InputBuffer):
    """An emitter input's buffer: holds what it cannot store yet, never waits itself."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        #: records not stored yet, in order: ``(tag, data, records, route)``
        self.unstored: list[Held] = []
        self.held_episodes = 0  #: times its writes failed and records had to be held
        self.held_records = 0  #: records ever held (stored later, or lost at stop)
        self.lost_records = 0  #: held records the agent stopped before storing
        self.over_limit_episodes = 0  #: times it went over its mem_buf_limit
        #: inputs waiting for it now, and how many of their emits
        self.waiting: Counter[str] = Counter()
        self._drainer: asyncio.Task[None] | None = None
        self._drained = asyncio.Event()
        self._drained.set()
        self._failed: StorageWriteError | None = None
        self._dispatch: Callable[[Chunk], None] = lambda chunk: None
        self._warned_at: float | None = None
        self._unwarned = 0  #: episodes over the limit since the last warning
        self._stopping: Callable[[], bool] = lambda: False

    def bind(self, dispatch: Callable[[Chunk], None], stopping: Callable[[], bool]) -> None:
        """The engine's dispatch of a sealed chunk, and whether the agent stops."""
        self._dispatch = dispatch
        self._stopping = stopping

    @property
    def unstored_records(self) -> int:
        return sum(item[2] for item in self.unstored)

    def append(self, tag: str, data: bytes, records: int, route: str = "") -> Chunk | None:
        """Store ``data``, or queue it behind records still held (kept in order)."""
        if self.unstored:
            self.unstored.append((tag, data, records, route))
            self.held_records += records
            return None
        return super().append(tag, data, records, route)

    def hold(self, exc: StorageWriteError) -> None:
        """A write failed: hold what it did not store and store it once possible."""
        self.unstored = exc.pending  # the list the drain stores from, appends join it
        self.held_records += self.unstored_records
        self.held_episodes += 1
        self._drained.clear()
        self._failed = None
        self._drainer = asyncio.get_running_loop().create_task(
            self._drain(exc), name=f"relaybit-{self.name}-held"
        )

    async def _drain(self, exc: StorageWriteError) -> None:
        assert self.storage is not None
        try:
            await store_when_possible(
                _Store(self), self.storage.guard, exc, self._dispatch, self._stopping
            )
        except StorageWriteError as gave_up:  # the agent stops: nothing more is stored
            lost = self.unstored_records
            self.lost_records += lost
            self._failed = gave_up
            self.unstored = []
            log.error(
                "[input] %s: %s re-emitted by a filter could not be stored before the"
                " agent stopped (%s) and %s lost; the inputs that waited for them"
                " acknowledged none of them",
                self.name,
                counted(lost, "record"),
                gave_up.cause,
                "is" if lost == 1 else "are",
            )
        finally:
            self._drainer = None
            self._drained.set()

    def over(self) -> None:
        """Over its limit after an append: mark it paused (a warning at most every
        :data:`WARN_EVERY` seconds, the episodes between counted in the next one)."""
        if self.paused:
            return
        self.over_limit_episodes += 1
        now = time.monotonic()
        if self._warned_at is not None and now - self._warned_at < WARN_EVERY:
            self._unwarned += 1
            log.debug("[input] %s: over its mem_buf_limit again", self.name)
        else:
            since = (
                f" ({counted(self._unwarned, 'more time')} since the last such line)"
                if self._unwarned
                else ""
            )
            self._warned_at, self._unwarned = now, 0
            log.warning(
                "[input] %s: over its mem_buf_limit (%d bytes held); the inputs whose records"
                " it re-emits wait until it is back under it%s",
                self.name,
                self.held,
                since,
            )
        self.pause()

    @property
    def busy(self) -> bool:
        """It holds records it has not stored, or is over its limit."""
        return bool(self.unstored) or self._drainer is not None or self.over_limit

    async def wait_taken(self, input_name: str) -> None:
        """Wait until it stored everything and is under its limit (the agent's stop ends it).

        Raises the failed write's :class:`StorageWriteError` when the agent
        stopped before records held for this wait were stored.
        """
        self.waiting[input_name] += 1
        try:
            while not self._stopping():
                if self._drainer is not None:
                    await self._drained.wait()
                    if self._failed is not None:
                        raise self._failed
                elif self.over_limit:
                    if not self.paused:  # resumed by a storage pause ending: still over
                        self.pause()
                    for chunk in self.seal_all():
                        self._dispatch(chunk)
                    await self.wait_resumed()
                else:
                    return
            if self._failed is not None:
                raise self._failed
        finally:
            self.waiting[input_name] -= 1
            if not self.waiting[input_name]:
                del self.waiting[input_name]

    async def stopped(self) -> None:
        """Wait for the drain task to end (the agent stops: it stores what it can)."""
        if self._drainer is not None:
            await self._drained.wait()

    def status(self) -> dict[str, object]:
        return super().status() | {
            "unstored_records": self.unstored_records,
            "held_records": self.held_records,
            "lost_records": self.lost_records,
            "waiting_inputs": sorted(self.waiting),
        }

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f" unstored={len(self.unstored)}>"

"""The engine's bridge to filesystem storage: the backlog read at start, chunks up and down.

:class:`StoredChunks` is the part of :class:`~relaybit.pipeline.engine.Engine`
that deals with chunk files:

- the **backlog**: chunk files left by a previous run are read back in a worker
  thread, one at a time and oldest first, while the loaded ones stay under
  ``storage.backlog.mem_limit``, and each is queued to the outputs that had not
  finished it (its ``.rbc.done`` sidecar);
- **up and down**: at most ``storage.max_chunks_up`` filesystem chunks keep
  their data in memory (:class:`~relaybit.pipeline.chunks_up.ChunksUp`); an
  output worker reads a down chunk back before it flushes it, first putting the
  newest idle up chunk down when no slot is free;
- ``storage.total_limit_size``: the oldest filesystem chunks queued for an
  output are dropped (for that output) to make room for a new one.

The engine holds the state; this class holds the methods, and declares what it
uses of the engine.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from relaybit.logging import counted
from relaybit.pipeline.buffer import InputBuffer
from relaybit.pipeline.chunk import Chunk, DownChunk
from relaybit.pipeline.chunks_up import ChunksUp
from relaybit.pipeline.output_slot import OutputSlot
from relaybit.pipeline.storage import CorruptChunk, FileStorage, LoadedChunk, StoredChunkRef
from relaybit.pipeline.task import RouteState, Task, TaskRoute

log = logging.getLogger("relaybit.engine")


class StoredChunks:
    """The storage side of the engine (a base class of Engine)."""

    storage: FileStorage | None
    chunks_up: ChunksUp
    inputs: dict[str, InputBuffer]
    outputs: dict[str, OutputSlot]
    backlog_chunks: int
    backlog_records: int
    _tasks: dict[str, Task]
    _up_tasks: dict[str, Task]
    _slot_waiters: list[asyncio.Future[None]]
    _backlog: deque[StoredChunkRef]
    _backlog_held: int
    _backlog_pump: asyncio.Task[None] | None
    _stopping: bool
    _progress: asyncio.Event

    # what the engine provides
    @property
    def _backlog_mem_limit(self) -> int:
        raise NotImplementedError

    def _outputs_of(self, chunk: Chunk | LoadedChunk) -> tuple[str, ...]:
        raise NotImplementedError

    def _dispatch(self, chunk: Chunk, *, task: Task | None = None) -> None:
        raise NotImplementedError

    def _drop(self, slot: OutputSlot, task: Task, route: TaskRoute, reason: str) -> None:
        raise NotImplementedError

    # -- the backlog --------------------------------------------------------------------

    def _kick_backlog(self) -> None:
        """Start reading backlog files unless a reader runs already or none wait."""
        if not self._backlog or self._stopping:
            return
        if self._backlog_pump is not None and not self._backlog_pump.done():
            return  # it re-checks the limit after each file
        self._backlog_pump = asyncio.get_running_loop().create_task(
            self._pump_backlog(), name="relaybit-storage-backlog"
        )

    @property
    def _backlog_loading(self) -> bool:
        return self._backlog_pump is not None and not self._backlog_pump.done()

    async def _pump_backlog(self) -> None:
        """Read backlog files in a thread, oldest first, while under ``backlog.mem_limit``.

        One file at a time, dispatched in the order found: an output gets a
        tag's backlog chunks in the order they were written.
        """
        storage = self.storage
        assert storage is not None
        limit = self._backlog_mem_limit
        try:
            while (
                self._backlog
                and not self._stopping
                and (self._backlog_held == 0 or self._backlog_held < limit)
            ):
                ref = self._backlog.popleft()
                try:
                    loaded = await asyncio.to_thread(storage.load, ref)
                except OSError as exc:  # removed or unreadable since the scan: skip it
                    log.error("[storage] chunk file %s cannot be loaded: %s", ref.path, exc)
                    continue
                except Exception:
                    log.exception("[storage] chunk file %s cannot be loaded", ref.path)
                    continue
                if loaded is not None and not self._stopping:  # stopping: the file stays
                    self._queue_loaded(loaded)
        finally:
            self._progress.set()

    def _queue_loaded(self, loaded: LoadedChunk) -> None:
        """Route a chunk read back at start to the outputs that did not finish it."""
        assert self.storage is not None
        outputs = self._outputs_of(loaded)
        if not outputs:
            log.warning(
                "[storage] no output matches tag '%s' of chunk %s; file kept",
                loaded.tag,
                loaded.path,
            )
            return
        remaining = [name for name in outputs if name not in loaded.finished]
        if not remaining:
            log.info(
                "[storage] chunk %s was finished by every output before the restart (%s); deleted",
                loaded.path,
                ", ".join(outputs),
            )
            self.storage.delete(loaded.path, routes_file=loaded.routes_file)
            return
        if len(remaining) < len(outputs):
            log.info(
                "[storage] chunk %s: already finished by %s; delivering to %s",
                loaded.path,
                ", ".join(n for n in outputs if n in loaded.finished),
                ", ".join(remaining),
            )
        chunk = Chunk(
            loaded.tag,
            loaded.data,
            loaded.records,
            loaded.input_name,
            loaded.chunk_id,
            loaded.created,
            route=loaded.route,
        )
        self._backlog_held += chunk.size
        self.backlog_chunks += 1
        self.backlog_records += chunk.records
        task = Task.for_outputs(chunk, remaining, path=loaded.path, backlog=True)
        task.routes_file = loaded.routes_file
        self._dispatch(chunk, task=task)

    # -- filesystem chunks up and down ----------------------------------------

    def _track_stored(self, task: Task) -> None:
        """A filesystem chunk was dispatched: count it for its outputs' limits."""
        chunk = task.chunk
        task.stored = True
        if not task.backlog and type(chunk) is not DownChunk:
            self._up_tasks[chunk.id] = task  # keeps the slot its open chunk had
            self._wake_slot_waiters()
        size = chunk.size
        for name in task.routes:
            slot = self.outputs[name]
            if slot.total_limit_size and slot.stored_bytes + size > slot.total_limit_size:
                self._make_room(slot, size)
            slot.stored[chunk.id] = (task, size)
            slot.stored_bytes += size

    def _make_room(self, slot: OutputSlot, size: int) -> None:
        """Drop the oldest chunks queued for ``slot`` until ``size`` more bytes fit.

        Chunks being flushed are kept (Fluent Bit's rule); the new chunk is
        never dropped, so the limit can be passed by what is in flight.
        """
        excess = slot.stored_bytes + size - slot.total_limit_size
        victims: list[Task] = []
        for task, old_size in slot.stored.values():
            if excess <= 0:
                break
            if task.routes[slot.name].state is RouteState.FLUSHING:
                continue
            victims.append(task)
            excess -= old_size
        for task in victims:
            self._drop_route(slot, task, "storage.total_limit_size reached")

    def _drop_route(self, slot: OutputSlot, task: Task, reason: str) -> None:
        route = task.routes[slot.name]
        if route.state is RouteState.RETRY_WAIT:
            if route.timer is not None:
                route.timer.cancel()
                route.timer = None
            slot.waiting.discard(task)
        self._drop(slot, task, route, reason)

    def _wake_slot_waiters(self) -> None:
        waiters, self._slot_waiters = self._slot_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _on_chunk_slot_released(self) -> None:
        self._wake_slot_waiters()
        if not self.chunks_up.full:
            for buf in self.inputs.values():
                if buf.paused and buf.pause_reason == "storage.max_chunks_up":
                    buf.resume()

    def _put_down_idle(self) -> bool:
        """Put the newest sealed up chunk no output is flushing down; False if none."""
        for chunk_id in reversed(self._up_tasks):
            task = self._up_tasks[chunk_id]
            if not task.flushing:
                del self._up_tasks[chunk_id]
                task.chunk = DownChunk.of(task.chunk)
                self.chunks_up.release()
                return True
        return False

    async def _acquire_chunk_slot(self) -> None:
        up = self.chunks_up
        while up.full:
            if self._put_down_idle():
                break
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._slot_waiters.append(waiter)
            await waiter
        up.acquire()

    async def _bring_up(self, task: Task) -> bool:
        """Read a down chunk back from its file (one read for all its outputs)."""
        if task.loading is not None:
            return bool(await asyncio.shield(task.loading))
        loading: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        task.loading = loading
        ok = False
        try:
            ok = await self._read_back(task)
        finally:
            task.loading = None
            loading.set_result(ok)
        return ok

    async def _read_back(self, task: Task) -> bool:
        path = task.path
        assert path is not None and self.storage is not None
        await self._acquire_chunk_slot()
        try:
            data, records, discarded = await asyncio.to_thread(FileStorage.read, path)
        except (OSError, CorruptChunk) as exc:
            self.chunks_up.release()
            if self._tasks.get(task.chunk.id) is not task:  # done meanwhile, file deleted
                return False
            if isinstance(exc, FileNotFoundError):
                log.error("[storage] chunk file %s disappeared", path)
            else:
                self.storage.set_aside(path, task.chunk.size, exc)
            task.path = None
            self._drop_everywhere(task, f"chunk file unreadable ({exc.__class__.__name__})")
            return False
        except BaseException:
            self.chunks_up.release()
            raise
        chunk = task.chunk
        if self._tasks.get(chunk.id) is not task:  # dropped everywhere meanwhile
            self.chunks_up.release()
            return False
        if discarded or records != chunk.records:
            self.storage.irrecoverable_bytes += discarded
            log.error(
                "[storage] chunk file %s read back with %d of %s (%s cut off)",
                path,
                records,
                counted(chunk.records, "record"),
                counted(discarded, "byte"),
            )
        task.chunk = Chunk(
            chunk.tag, data, records, chunk.input_name, chunk.id, chunk.created, route=chunk.route
        )
        self._up_tasks[chunk.id] = task
        return True

    def _drop_everywhere(self, task: Task, reason: str) -> None:
        for name, route in list(task.routes.items()):
            if route.state not in (RouteState.DONE, RouteState.DROPPED):
                self._drop_route(self.outputs[name], task, reason)

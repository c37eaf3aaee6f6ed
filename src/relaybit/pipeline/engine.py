"""The engine: inputs emit, chunks are sealed and routed, outputs flush, retries wait.

Data path (see ``docs/storage.md``)::

    emit(tag, data, records)
      -> the input's processors and the filters of the tag (only when there are
         some: decoded once, filtered, encoded once)
      -> InputBuffer.append (bytes appended to the tag's open chunk; with
         filesystem storage one checksummed block written to the chunk file)
      -> sealed at CHUNK_SIZE_LIMIT or at each ``flush`` tick
      -> Task: one route per matching output, each output's queue
      -> ``workers`` flushes per output at once; OK / RETRY / ERROR
      -> the chunk is done (memory released, file deleted) when every route
         confirmed it or gave up (counted and logged with the reason).

Filesystem chunks (the backlog read back at start, chunks *up* or *down*,
``storage.total_limit_size``) are handled by :class:`~relaybit.pipeline.stored.StoredChunks`,
which the engine extends; with filesystem storage an output that finishes a
chunk before the others is recorded in the chunk's ``.rbc.done`` sidecar, so a
restart re-sends the chunk only to the outputs that had not finished it.
Filters and processors run in :class:`~relaybit.pipeline.filter_chain.FilterChain`;
an output's queue and counters are its :class:`~relaybit.pipeline.output_slot.OutputSlot`.

Retries follow :class:`~relaybit.pipeline.scheduler.Scheduler` (Fluent Bit's
full-jitter backoff and ``retry_limit``).  An exception raised by a flush is
logged and treated as RETRY: a plugin bug never loses data silently.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from relaybit.clock import SYSTEM_CLOCK, Clock
from relaybit.config.routes import InputRoute
from relaybit.logging import counted
from relaybit.monitoring.events import (
    ChunkFlushed,
    Event,
    EventHub,
    RetryExhausted,
    RetryScheduled,
)
from relaybit.pipeline.buffer import DEFAULT_MEM_LIMIT, InputBuffer, MemoryBudget
from relaybit.pipeline.chunk import CHUNK_SIZE_LIMIT, Chunk, DownChunk
from relaybit.pipeline.chunks_up import DEFAULT_MAX_CHUNKS_UP, ChunksUp
from relaybit.pipeline.conditions import RouteSplitter
from relaybit.pipeline.emitter_buffer import EmitterBuffer
from relaybit.pipeline.filter_chain import FilterChain
from relaybit.pipeline.output_slot import OutputSlot
from relaybit.pipeline.router import Matcher, Route, Router
from relaybit.pipeline.scheduler import RetryLimit, Scheduler
from relaybit.pipeline.storage import FileStorage, LoadedChunk, StoredChunkRef
from relaybit.pipeline.storage_guard import StorageWriteError, store_when_possible
from relaybit.pipeline.stored import StoredChunks
from relaybit.pipeline.task import RouteState, Task, TaskRoute
from relaybit.plugins.base import EmitterFn, FilterPlugin, FlushResult, OutputPlugin

log = logging.getLogger("relaybit.engine")

EmitFn = Callable[[str, bytes, int], Awaitable[None]]

#: Concurrent flushes per output when ``workers`` is 0: network outputs keep
#: two flushes in flight (a round trip overlaps the next encode), local ones 1.
DEFAULT_WORKERS_NETWORK = 2
DEFAULT_WORKERS_LOCAL = 1


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """The ``[SERVICE]`` keys the engine uses (Fluent Bit's defaults)."""

    flush: float = 1.0
    grace: float = 5.0
    scheduler_base: float = 5.0
    scheduler_cap: float = 2000.0
    storage_path: str | None = None
    storage_sync: str = "normal"
    storage_checksum: bool = False
    storage_backlog_mem_limit: int = 5 * 1024 * 1024
    #: filesystem chunks with their data in memory at once, across the agent
    storage_max_chunks_up: int = DEFAULT_MAX_CHUNKS_UP
    #: delete corrupt chunk files instead of keeping them as ``*.corrupt``
    storage_delete_irrecoverable_chunks: bool = False
    #: bytes the memory inputs without ``mem_buf_limit`` may hold together (0: no bound)
    storage_mem_limit: int = DEFAULT_MEM_LIMIT

    @classmethod
    def from_service(cls, service: Mapping[str, Any]) -> EngineSettings:
        """Build from resolved ``[SERVICE]`` options (missing keys keep defaults)."""
        d = cls()

        def get(key: str, default: Any) -> Any:
            value = service.get(key)
            return default if value is None else value

        path = get("storage.path", None)
        return cls(
            flush=float(get("flush", d.flush)),
            grace=float(get("grace", d.grace)),
            scheduler_base=float(get("scheduler.base", d.scheduler_base)),
            scheduler_cap=float(get("scheduler.cap", d.scheduler_cap)),
            storage_path=str(path) if path else None,
            storage_sync=str(get("storage.sync", d.storage_sync)).lower(),
            storage_checksum=bool(get("storage.checksum", d.storage_checksum)),
            storage_backlog_mem_limit=int(
                get("storage.backlog.mem_limit", d.storage_backlog_mem_limit)
            ),
            storage_mem_limit=int(get("storage.mem_limit", d.storage_mem_limit)),
            storage_max_chunks_up=int(get("storage.max_chunks_up", d.storage_max_chunks_up)),
            storage_delete_irrecoverable_chunks=bool(
                get("storage.delete_irrecoverable_chunks", d.storage_delete_irrecoverable_chunks)
            ),
        )


class Engine(StoredChunks):
    """Buffers, routes and delivers chunks; owns retries and storage.

    The filter chain is :class:`~relaybit.pipeline.filter_chain.FilterChain`;
    the backlog and the chunks up and down are in :class:`StoredChunks`
    (``pipeline/stored.py``).
    """

    def __init__(
        self,
        settings: EngineSettings | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        scheduler: Scheduler | None = None,
        events: EventHub | None = None,
        chunk_size_limit: int = CHUNK_SIZE_LIMIT,
    ) -> None:
        self.settings = settings or EngineSettings()
        self.clock = clock
        self.scheduler = scheduler or Scheduler(
            self.settings.scheduler_base, self.settings.scheduler_cap, rng=rng
        )
        self.events = events
        self.chunk_size_limit = chunk_size_limit
        self.router = Router()
        self.storage: FileStorage | None = None
        if self.settings.storage_path:
            self.storage = FileStorage(
                self.settings.storage_path,
                sync=self.settings.storage_sync,
                checksum=self.settings.storage_checksum,
                delete_irrecoverable=self.settings.storage_delete_irrecoverable_chunks,
            )
        #: ``storage.max_chunks_up``, shared by every filesystem input
        self.chunks_up = ChunksUp(self.settings.storage_max_chunks_up)
        self.chunks_up.on_release = self._on_chunk_slot_released
        #: sealed filesystem chunks that are up (hold a slot), oldest first
        self._up_tasks: dict[str, Task] = {}
        self._slot_waiters: list[asyncio.Future[None]] = []
        self.inputs: dict[str, InputBuffer] = {}
        #: shared by memory inputs without their own ``mem_buf_limit``
        self.memory_budget = MemoryBudget(max(0, self.settings.storage_mem_limit))
        self.outputs: dict[str, OutputSlot] = {}
        self.filters: dict[str, FilterPlugin] = {}
        self._tasks: dict[str, Task] = {}
        self._backlog: deque[StoredChunkRef] = deque()
        self._backlog_held = 0
        #: reads backlog files in a worker thread, one at a time, oldest first
        self._backlog_pump: asyncio.Task[None] | None = None
        self.backlog_chunks = 0
        self.backlog_records = 0
        self.lost_records = 0
        self._unrouted_tags: set[str] = set()
        #: inputs with conditional routes: their splitter, and route name -> outputs
        self._splitters: dict[str, RouteSplitter] = {}
        self._input_routes: dict[str, dict[str, tuple[str, ...]]] = {}
        #: inputs with processors: their names in the filter registry
        self._input_processors: dict[str, tuple[str, ...]] = {}
        #: warned once each: (input, route) of stored chunks whose route is gone, and
        #: inputs whose records matched no route
        self._stale_routes: set[tuple[str, str]] = set()
        self._told_unrouted: set[str] = set()
        self._workers: list[asyncio.Task[None]] = []
        self._ticker: asyncio.Task[None] | None = None
        self._progress = asyncio.Event()
        #: the emitters the filters of the emit being filtered re-emitted through
        #: (its input waits for them: :meth:`EmitterBuffer.wait_taken`)
        self._feeding: set[EmitterBuffer] | None = None
        #: decodes an emitted batch once for all the filters of its tag
        self.filter_chain = FilterChain(self.filters)
        self._started = False
        self._stopping = False
        self._stopped = False
        self._forced = False

    # -- building -------------------------------------------------------------

    def add_input(
        self,
        name: str,
        *,
        storage_type: str = "memory",
        mem_buf_limit: int = 0,
        pause_on_chunks_overlimit: bool = False,
        routes: Sequence[InputRoute] = (),
        route_outputs: Mapping[str, tuple[str, ...]] | None = None,
        processors: Sequence[tuple[str, FilterPlugin]] = (),
        buffer_type: type[InputBuffer] = InputBuffer,
    ) -> EmitFn:
        """Register an input; returns its ``emit(tag, data, records)``.

        A memory input without ``mem_buf_limit`` shares the engine's
        ``storage.mem_limit`` budget; its ``emit`` waits while that is full.
        A filesystem input with ``pause_on_chunks_overlimit`` waits while every
        ``storage.max_chunks_up`` slot is taken (otherwise its chunks go down).
        With ``routes`` (conditional routing) the input's records go to the
        outputs ``route_outputs`` names for each route they take, not by tag.
        ``processors`` (name, plugin) run in order on every record the input
        emits, before the filters of its tag (in the same decoded batch).
        """
        if processors:
            self._input_processors[name] = self._add_processors(f"input {name}", processors)
        if routes:
            self._splitters[name] = RouteSplitter(routes)
            self._input_routes[name] = dict(route_outputs or {})
        storage: FileStorage | None = None
        if storage_type == "filesystem":
            if self.storage is None:
                log.warning(
                    "%s: storage.type filesystem needs [SERVICE] storage.path; using memory",
                    name,
                )
            else:
                storage = self.storage
        buf = buffer_type(
            name,
            mem_buf_limit=mem_buf_limit,
            storage=storage,
            chunk_size_limit=self.chunk_size_limit,
            clock=self.clock,
            budget=self.memory_budget if storage is None else None,
            chunks_up=self.chunks_up,
            pause_on_chunks_overlimit=pause_on_chunks_overlimit,
        )
        self.inputs[name] = buf
        return functools.partial(self._emit, buf)

    def _add_processors(
        self, owner: str, processors: Sequence[tuple[str, FilterPlugin]]
    ) -> tuple[str, ...]:
        """Register the processors of ``owner`` (``input tail.0``, ``output es.0``); their
        names in the filter registry."""
        names = []
        for proc_name, plugin in processors:
            key = f"{owner}/{proc_name}"
            self.filters[key] = plugin
            self.filter_chain.labels[key] = f"processor:{proc_name} of {owner}"
            bind = getattr(plugin, "bind_engine", None)
            if bind is not None:
                bind(self.add_emitter)
            names.append(key)
        return tuple(names)

    def add_filter(self, name: str, plugin: FilterPlugin, matcher: Matcher) -> None:
        """Register a filter (filters run in the order they are added).

        The filter's ``bind_engine(add_emitter)`` is called (a no-op unless the
        filter emits records of its own, as rewrite_tag does).
        """
        self.filters[name] = plugin
        self.router.add_filter(name, matcher)
        bind = getattr(plugin, "bind_engine", None)
        if bind is not None:
            bind(self.add_emitter)

    def add_emitter(
        self, name: str, *, storage_type: str = "memory", mem_buf_limit: int = 0
    ) -> EmitterFn:
        """Register an internal input for a filter that emits records under a new
        tag (Fluent Bit's ``in_emitter``); returns its synchronous
        ``emit(tag, data, records)``, to be called from ``filter``.

        The records go through routing and the filters of their tag at once,
        before ``emit`` returns.  The emitter never waits (a filter cannot):
        what it cannot store yet (a full disk) it holds in order, and over
        ``mem_buf_limit`` it keeps its records; in both cases the input whose
        emit fed it waits until it took everything
        (``pipeline/emitter_buffer.py``).  No record is dropped.
        """
        if name in self.inputs:
            raise ValueError(f"an input named '{name}' exists already")
        self.add_input(
            name, storage_type=storage_type, mem_buf_limit=mem_buf_limit, buffer_type=EmitterBuffer
        )
        buf = self.inputs[name]
        assert isinstance(buf, EmitterBuffer)
        buf.bind(self._dispatch, lambda: self._stopping)
        return functools.partial(self._emit_nowait, buf)

    def add_output(
        self,
        name: str,
        plugin: OutputPlugin,
        matcher: Matcher,
        *,
        retry_limit: RetryLimit | str | int | None = None,
        workers: int = 1,
        total_limit_size: int = 0,
        processors: Sequence[tuple[str, FilterPlugin]] = (),
    ) -> OutputSlot:
        """Register an output with its match, ``retry_limit`` (None: until delivered),
        ``workers``, ``storage.total_limit_size`` (bytes of filesystem chunks queued
        for it, 0: none) and ``processors`` ((name, plugin), run in order on each chunk
        just before this output flushes it; the chunk itself, and other outputs, are
        unchanged)."""
        limit = (
            retry_limit if isinstance(retry_limit, RetryLimit) else RetryLimit.parse(retry_limit)
        )
        names = self._add_processors(f"output {name}", processors) if processors else ()
        slot = OutputSlot(name, plugin, limit, workers, max(0, total_limit_size), names)
        self.outputs[name] = slot
        self.router.add_output(name, matcher)
        return slot

    # -- running --------------------------------------------------------------

    async def start(self) -> None:
        """Start the output workers and the flush timer; queue the storage backlog."""
        if self._started:
            return
        self._started = True
        for slot in self.outputs.values():
            for i in range(slot.workers):
                self._workers.append(
                    asyncio.create_task(self._worker(slot), name=f"relaybit-{slot.name}-w{i}")
                )
        if self.storage is not None:
            self._backlog.extend(await asyncio.to_thread(self.storage.scan))
            if self._backlog:
                log.info(
                    "[storage] %s found in %s, delivering them",
                    counted(len(self._backlog), "chunk file"),
                    self.storage.root,
                )
            self._kick_backlog()
        if self.settings.flush > 0:
            self._ticker = asyncio.create_task(self._tick(), name="relaybit-flush-timer")

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.settings.flush)
            self.flush_now()

    def flush_now(self) -> None:
        """Seal every open chunk and dispatch it (what each ``flush`` tick does)."""
        for buf in self.inputs.values():
            if buf.open:
                for chunk in buf.seal_all():
                    self._dispatch(chunk)

    async def emit(self, input_name: str, tag: str, data: bytes, records: int) -> None:
        """Emit on behalf of input ``input_name`` (inputs normally use their own emit)."""
        await self._emit(self.inputs[input_name], tag, data, records)

    def decodes(self, input_name: str, tag: str) -> bool:
        """True when records ``input_name`` emits under ``tag`` are decoded before they are
        buffered (processors of the input, or filters matching the tag): that input may
        then hand them over decoded (:meth:`emit_entries`)."""
        return bool(self._filters_of(input_name, self.router.route(tag)))

    def _filters_of(self, input_name: str, route: Route) -> tuple[str, ...]:
        """What records ``input_name`` emits on ``route`` go through before they are
        buffered: the input's processors, then the filters matching their tag."""
        processors = self._input_processors.get(input_name)
        return processors + route.filters if processors else route.filters

    async def emit_entries(
        self,
        input_name: str,
        tag: str,
        entries: list[Any],
        records: int,
        original: Callable[[], bytes],
    ) -> None:
        """:meth:`emit` of decoded entries (``[head, record]`` lists as
        :func:`~relaybit.codec.records.decode_entries` gives them): the filter chain
        runs on them and the result is encoded once.  ``original()`` gives the bytes
        the input would have emitted (they pass unfiltered if the result cannot be
        encoded).  Storage, waiting and counts are those of :meth:`emit`."""
        buf = self.inputs[input_name]
        names = self._filters_of(input_name, self.router.route(tag))
        fed: set[EmitterBuffer] = set()
        if names:
            self._feeding = fed
            try:
                data, kept = self.filter_chain.run_entries(names, tag, entries, records, original)
            finally:
                self._feeding = None
        else:
            data, kept = original(), records
        buf.records += records
        buf.bytes += len(data)  # the bytes after the filters: the bytes before are never made
        await self._emit(buf, tag, data, kept, filtered=True, fed=fed)

    async def _emit(
        self,
        buf: InputBuffer,
        tag: str,
        data: bytes,
        records: int,
        *,
        filtered: bool = False,
        fed: set[EmitterBuffer] | None = None,
    ) -> None:
        fed = set() if fed is None else fed
        self._feeding = fed
        try:
            accepted = self._accept(buf, tag, data, records, filtered=filtered)
        except StorageWriteError as exc:  # disk full: held here until stored
            self._feeding = None
            assert buf.storage is not None
            await store_when_possible(
                buf, buf.storage.guard, exc, self._dispatch, lambda: self._stopping
            )
            accepted = True
        finally:
            self._feeding = None
        for emitter in fed:  # they took records of this emit: wait until they stored them
            if emitter.busy:
                await emitter.wait_taken(buf.name)
        if not accepted:
            return
        if buf.sync_full:  # storage.sync full: on disk before emit returns
            assert buf.last_file is not None
            await buf.last_file.sync()
        if buf.over_limit and not self._stopping:
            buf.pause()
            for chunk in buf.seal_all():
                self._dispatch(chunk)
            await buf.wait_resumed()
        elif buf.pause_on_chunks_overlimit and buf.chunks_overlimit and not self._stopping:
            buf.pause(chunks=True)
            for chunk in buf.seal_all():
                self._dispatch(chunk)
            await buf.wait_resumed()

    def _accept(
        self, buf: InputBuffer, tag: str, data: bytes, records: int, *, filtered: bool = False
    ) -> bool:
        """Filter, route and append emitted records; False when none were buffered.

        ``filtered``: the records went through the filter chain already (and are counted)."""
        route = self.router.route(tag)
        if filtered:
            if not records:
                return False
        else:
            buf.records += records
            buf.bytes += len(data)
            names = self._filters_of(buf.name, route)
            if names:
                data, records = self.filter_chain.run(names, tag, data, records)
                if not records:
                    return False
        splitter = self._splitters.get(buf.name)
        if splitter is not None:
            return self._accept_routed(buf, splitter, tag, data, records)
        if not route.outputs:
            buf.unrouted_records += records
            if tag not in self._unrouted_tags:
                self._unrouted_tags.add(tag)
                log.warning(
                    "[input] %s: no output matches tag '%s'; its records are discarded",
                    buf.name,
                    tag,
                )
            return False
        sealed = buf.append(tag, data, records)
        if sealed is not None:
            self._dispatch(sealed)
        return True

    def _accept_routed(
        self, buf: InputBuffer, splitter: RouteSplitter, tag: str, data: bytes, records: int
    ) -> bool:
        """Append each route's share of the records (an input with ``routes``)."""
        before = splitter.unrouted
        shares = splitter.split(data, records)
        if splitter.unrouted > before:
            buf.unrouted_records += splitter.unrouted - before
            if buf.name not in self._told_unrouted:
                self._told_unrouted.add(buf.name)
                log.warning(
                    "[input] %s: records that match no route (and no default route) are"
                    " discarded; counted in unrouted_records",
                    buf.name,
                )
        for i, share in enumerate(shares):
            try:
                sealed = buf.append(tag, share.data, share.records, route=share.route)
            except StorageWriteError as exc:  # the shares after it are not stored either
                exc.pending += [(tag, s.data, s.records, s.route) for s in shares[i + 1 :]]
                raise
            if sealed is not None:
                self._dispatch(sealed)
        return bool(shares)

    def _outputs_of(self, chunk: Chunk | LoadedChunk) -> tuple[str, ...]:
        """The outputs of a chunk: its input route's, or those matching its tag."""
        if chunk.route:
            outputs = self._input_routes.get(chunk.input_name, {}).get(chunk.route)
            if outputs is not None:
                return outputs
            key = (chunk.input_name, chunk.route)
            if key not in self._stale_routes:  # a stored chunk of a route now gone
                self._stale_routes.add(key)
                log.warning(
                    "[storage] chunks of route '%s' of input %s: the configuration has no"
                    " such route any more; they go to the outputs matching their tag",
                    chunk.route,
                    chunk.input_name,
                )
        return self.router.route(chunk.tag).outputs

    def _emit_nowait(self, buf: EmitterBuffer, tag: str, data: bytes, records: int) -> None:
        """An emitter's emit: like an input's, but it never waits (called from a filter);
        the input whose emit is being filtered waits for it instead."""
        if self._feeding is not None:
            self._feeding.add(buf)
        try:
            accepted = self._accept(buf, tag, data, records)
        except StorageWriteError as exc:  # disk full: held, in order, until stored
            buf.hold(exc)
            return
        if accepted and buf.over_limit and not self._stopping:
            buf.over()  # marked paused (logged once per episode); the feeding input waits
            for chunk in buf.seal_all():
                self._dispatch(chunk)

    def _dispatch(self, chunk: Chunk, *, task: Task | None = None) -> None:
        if task is None:
            buf = self.inputs.get(chunk.input_name)
            path = None
            if buf is not None and buf.storage is not None:
                path = buf.storage.path_of(chunk.input_name, chunk.id)
            task = Task.for_outputs(chunk, self._outputs_of(chunk), path=path)
        self._tasks[chunk.id] = task
        if task.path is not None:
            self._track_stored(task)
        if not task.routes:  # cannot happen for live input data (checked at emit)
            self._complete(task)
            return
        for name in task.routes:
            self.outputs[name].queue.put_nowait(task)

    @property
    def _backlog_mem_limit(self) -> int:
        return self.settings.storage_backlog_mem_limit

    # -- delivering -------------------------------------------------------------

    async def _worker(self, slot: OutputSlot) -> None:
        while True:
            task = await slot.queue.get()
            route = task.routes[slot.name]
            if route.state is not RouteState.QUEUED:
                continue
            while type(task.chunk) is DownChunk and route.state is RouteState.QUEUED:
                if not await self._bring_up(task):
                    break
            if route.state is not RouteState.QUEUED:
                continue
            route.state = RouteState.FLUSHING
            slot.in_flight += 1
            try:
                chunk = task.chunk
                if slot.processors:
                    chunk = self._process(slot, chunk)
                result = await slot.plugin.flush(chunk) if chunk.records else FlushResult.OK
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "[output:%s] flush of chunk '%s' raised; will retry", slot.name, task.chunk.id
                )
                result = FlushResult.RETRY
            finally:
                slot.in_flight -= 1
            if not isinstance(result, FlushResult):
                log.error(
                    "[output:%s] flush returned %r, not a FlushResult; will retry",
                    slot.name,
                    result,
                )
                result = FlushResult.RETRY
            self._on_result(slot, task, route, result)

    def _process(self, slot: OutputSlot, chunk: Chunk) -> Chunk:
        """``chunk`` as ``slot``'s processors leave it (a copy; the task keeps the original)."""
        data, records = self.filter_chain.run(slot.processors, chunk.tag, chunk.data, chunk.records)
        return Chunk(
            chunk.tag, data, records, chunk.input_name, chunk.id, chunk.created, route=chunk.route
        )

    def _event(self, event: Event) -> None:
        if self.events is not None:
            self.events.emit(event)

    def _on_result(
        self, slot: OutputSlot, task: Task, route: TaskRoute, result: FlushResult
    ) -> None:
        chunk = task.chunk
        now = self.clock.time()
        self._event(
            ChunkFlushed(
                at=now,
                output=slot.name,
                tag=chunk.tag,
                records=chunk.records,
                size=chunk.size,
                result=result.value,
            )
        )
        where = f"input={chunk.input_name} > output={slot.name}"
        if result is FlushResult.OK:
            slot.proc_records += chunk.records
            slot.proc_bytes += chunk.size
            if route.retries:
                log.info(
                    "flush chunk '%s' succeeded at retry %d: %s", chunk.id, route.retries, where
                )
            self._finish(task, route, RouteState.DONE)
            return
        if result is FlushResult.ERROR:
            slot.errors += 1
            self._drop(slot, task, route, "output error")
            return
        wait = self.scheduler.next_wait(slot.retry_limit, route.retries)
        if wait is None:
            slot.retries_failed += 1
            self._drop(slot, task, route, f"retry limit reached ({slot.retry_limit})")
            return
        route.retries += 1
        slot.retries += 1
        slot.retried_records += chunk.records
        route.state = RouteState.RETRY_WAIT
        slot.waiting.add(task)
        if task.stored and self._slot_waiters:
            self._wake_slot_waiters()  # it may go down now
        route.timer = asyncio.get_running_loop().call_later(wait, self._requeue, slot, task, route)
        log.warning(
            "failed to flush chunk '%s', retry in %.1f seconds: %s (retry %d)",
            chunk.id,
            wait,
            where,
            route.retries,
        )
        self._event(
            RetryScheduled(
                at=now, output=slot.name, chunk_id=chunk.id, attempt=route.retries, delay=wait
            )
        )

    def _requeue(self, slot: OutputSlot, task: Task, route: TaskRoute) -> None:
        route.timer = None
        slot.waiting.discard(task)
        if route.state is RouteState.RETRY_WAIT:
            route.state = RouteState.QUEUED
            slot.queue.put_nowait(task)

    def _drop(self, slot: OutputSlot, task: Task, route: TaskRoute, reason: str) -> None:
        chunk = task.chunk
        slot.dropped_records += chunk.records
        log.error(
            "chunk '%s' dropped: %s; %s (%s, tag '%s') not delivered: input=%s > output=%s",
            chunk.id,
            reason,
            counted(chunk.records, "record"),
            counted(chunk.size, "byte"),
            chunk.tag,
            chunk.input_name,
            slot.name,
        )
        self._event(
            RetryExhausted(
                at=self.clock.time(),
                output=slot.name,
                chunk_id=chunk.id,
                records=chunk.records,
                reason=reason,
            )
        )
        self._finish(task, route, RouteState.DROPPED)

    def _finish(self, task: Task, route: TaskRoute, state: RouteState) -> None:
        route.state = state
        if task.stored:
            slot = self.outputs[route.output]
            counted = slot.stored.pop(task.chunk.id, None)
            if counted is not None:
                slot.stored_bytes -= counted[1]
            if self._slot_waiters:
                self._wake_slot_waiters()  # no longer flushed here: it may go down
        if task.done:
            self._complete(task)
        elif task.path is not None and self.storage is not None:
            # others still need it: a restart must not send it here again
            self.storage.mark_route_done(
                task.path, route.output, dropped=state is RouteState.DROPPED
            )
            task.routes_file = True

    def _complete(self, task: Task) -> None:
        chunk = task.chunk
        if self._tasks.pop(chunk.id, None) is None:
            return
        if task.path is not None and self.storage is not None:
            self.storage.delete(task.path, routes_file=task.routes_file)
        if task.stored:
            if self._up_tasks.pop(chunk.id, None) is not None:
                self.chunks_up.release()
            task.chunk = DownChunk.of(chunk)  # queues may still hold the task: not its data
        if task.backlog:
            self._backlog_held -= chunk.size
            self._kick_backlog()
        else:
            buf = self.inputs.get(chunk.input_name)
            if buf is not None:
                buf.release(chunk.size)
        self._progress.set()

    @property
    def pending_chunks(self) -> int:
        """Sealed chunks not yet done (delivered or given up everywhere)."""
        return len(self._tasks)

    def _busy(self) -> bool:
        return bool(self._tasks) or any(b.open for b in self.inputs.values())

    async def drain(self, timeout: float | None = None) -> bool:
        """Seal open chunks and wait until every chunk is done; False on timeout."""
        self.flush_now()
        try:
            async with asyncio.timeout(timeout):
                while self._busy() or (
                    (self._backlog or self._backlog_loading) and not self._stopping
                ):
                    if self._forced:
                        return False
                    self._progress.clear()
                    await self._progress.wait()
                    self.flush_now()
        except TimeoutError:
            return False
        return True

    def begin_stop(self) -> None:
        """Stop pausing inputs (they are being stopped): blocked emits return."""
        self._stopping = True
        for buf in self.inputs.values():
            buf.resume()
        if self.storage is not None:
            self.storage.guard.wake()  # emits held by a full disk raise: nothing acked

    def force_stop(self) -> None:
        """End the grace period now (a second SIGTERM/SIGINT)."""
        self._forced = True
        self._progress.set()

    async def stop(self, grace: float | None = None) -> int:
        """Flush what is buffered for up to ``grace`` seconds, then stop.

        Returns the number of records not delivered: with filesystem storage
        they stay on disk for the next start; with memory storage they are lost
        (logged with the count).
        """
        if self._stopped:
            return 0
        self.begin_stop()
        grace = self.settings.grace if grace is None else grace
        if self._ticker is not None:
            self._ticker.cancel()
        self.scheduler.shutting_down = True
        for slot in self.outputs.values():
            for task in list(slot.waiting):
                route = task.routes[slot.name]
                if route.timer is not None:
                    route.timer.cancel()
                self._requeue(slot, task, route)
        self.flush_now()
        drained = await self.drain(grace) if self._started else not self._busy()
        for buf in self.inputs.values():  # records an emitter still held: counted as lost
            if isinstance(buf, EmitterBuffer):
                await buf.stopped()
                self.lost_records += buf.lost_records
        pump = self._backlog_pump
        if pump is not None:
            pump.cancel()  # a file being read stays on disk for the next start
            await asyncio.gather(pump, return_exceptions=True)
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()
        for slot in self.outputs.values():
            for task in list(slot.waiting):
                route = task.routes[slot.name]
                if route.timer is not None:
                    route.timer.cancel()
            slot.waiting.clear()
        if self.storage is not None:
            await self.storage.wait_idle()
        self._stopped = True
        return self._report_remaining(drained)

    def _report_remaining(self, drained: bool) -> int:
        kept_chunks = kept_records = lost_chunks = lost_records = 0
        for task in self._tasks.values():
            if task.path is not None:
                kept_chunks += 1
                kept_records += task.chunk.records
            else:
                lost_chunks += 1
                lost_records += task.chunk.records
        if kept_chunks:
            log.warning(
                "[storage] %s (%s) not yet delivered %s kept in %s"
                " and will be delivered at the next start",
                counted(kept_chunks, "chunk"),
                counted(kept_records, "record"),
                "is" if kept_chunks == 1 else "are",
                self.settings.storage_path,
            )
        if lost_chunks:
            self.lost_records += lost_records
            log.error(
                "shutdown: %s in %s %s not delivered within the grace"
                " period and %s lost (memory storage)",
                counted(lost_records, "record"),
                counted(lost_chunks, "chunk"),
                *(("was", "is") if lost_records == 1 else ("were", "are")),
            )
        elif drained:
            dropped = sum(slot.dropped_records for slot in self.outputs.values())
            if dropped:
                log.info(
                    "shutdown: nothing left to deliver (%s dropped earlier, each logged)",
                    counted(dropped, "record was", "records were"),
                )
            else:
                log.info("shutdown: every buffered record was delivered")
        return kept_records + lost_records

    # -- observing ------------------------------------------------------------

    def metrics(self) -> dict[str, Any]:
        """Counters in Fluent Bit's ``/api/v1/metrics`` shape (JSON-able)."""
        return {
            "input": {
                name: {"records": b.records, "bytes": b.bytes, "paused": b.paused_count}
                | self._storage_metrics(b)
                for name, b in self.inputs.items()
            },
            "filter": {},
            "output": {name: slot.metrics() for name, slot in self.outputs.items()},
        }

    @staticmethod
    def _storage_metrics(buf: InputBuffer) -> dict[str, int]:
        """A filesystem input's storage pause (1 while its writes wait for room)."""
        if buf.storage is None:
            return {}
        return {"storage_paused": int(buf.name in buf.storage.guard.inputs)}

    def status(self) -> dict[str, Any]:
        """Buffers, queues and storage state (JSON-able)."""
        storage: dict[str, Any] = {"type": "memory"}
        if self.storage is not None:
            storage = {
                "type": "filesystem",
                "path": str(self.storage.root),
                "sync": "full" if self.storage.sync_full else "normal",
                "backlog_chunks_loaded": self.backlog_chunks,
                "backlog_records_loaded": self.backlog_records,
                "backlog_files_waiting": len(self._backlog),
                "irrecoverable_bytes": self.storage.irrecoverable_bytes,
                "corrupt_files": self.storage.corrupt_files,
                "delete_irrecoverable_chunks": self.storage.delete_irrecoverable,
                **self.storage.guard.status(),  # paused: chunk writes fail (disk full)
                "max_chunks_up": self.chunks_up.limit,
                "chunks_up": self.chunks_up.count,
                "chunks_up_peak": self.chunks_up.peak,
                "chunks_down": sum(1 for t in self._tasks.values() if type(t.chunk) is DownChunk),
            }
        return {
            "pending_chunks": len(self._tasks),
            "memory": {
                "buffered_bytes": self.memory_budget.held,
                "mem_limit": self.memory_budget.limit,
            },
            "lost_records": self.lost_records,
            "inputs": {name: b.status() for name, b in self.inputs.items()},
            "outputs": {name: s.status() for name, s in self.outputs.items()},
            "storage": storage,
        }

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running" if self._started else "new"
        return (
            f"<Engine {state} inputs={len(self.inputs)} outputs={len(self.outputs)}"
            f" pending_chunks={len(self._tasks)}>"
        )

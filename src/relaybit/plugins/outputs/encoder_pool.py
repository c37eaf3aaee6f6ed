"""Encoder processes for the JSON outputs: a chunk's body built on another core.

The es output's bulk NDJSON and the http output's json formats cost most of the
CPU a record takes on its way through the agent: the chunk is decoded and
every record written as JSON.  That work needs nothing of the agent's state, so
:class:`EncoderPool` hands it to worker processes
(:mod:`relaybit.plugins.outputs.encoder_worker`) while the agent's own process
goes on reading, buffering and sending: the agent then uses two cores, as
Fluent Bit does with its worker threads.

Nothing about delivery changes: the body a worker writes is the body the
output would have written (the same encoder, run elsewhere), and whenever the
pool cannot take a chunk (no worker yet, a worker died, the chunk or its body
is larger than a shared region, the encoder raised) :meth:`EncoderPool.encode`
returns None and the output encodes the chunk itself, as it does without a
pool.  A worker that dies is logged once, started again with a growing delay,
and counted (:meth:`EncoderPool.status`).

Workers start with the first output that uses them (a dry run or an agent
without JSON outputs starts none).  ``[SERVICE] encoder.workers`` sets how
many: ``auto`` (the default) is one where the agent may use more than one CPU
(its affinity and its cgroup's CPU quota), ``0`` encodes in the agent's process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mmap
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable, Hashable
from typing import Any

from relaybit.plugins.outputs.encoder_worker import (
    ENCODE,
    FAILED,
    HELLO,
    OK,
    REGISTER,
    REPLY,
    REQUEST,
    ChunkEncoder,
    write_all,
)

#: Size of each shared region (virtual: only the pages a chunk touches are used).
REGION_SIZE = 64 << 20
#: A job without an answer after this long: the worker is killed and started again.
JOB_TIMEOUT = 60.0
#: First and longest delay before a worker that died is started again.
RESTART_DELAYS = (1.0, 60.0)

#: The ``encoder.workers`` service key.
SERVICE_KEY = "encoder.workers"


def workers_setting(value: str | int | None) -> int:
    """``encoder.workers`` as a count: ``auto`` is 1 where the agent may run on 2+ CPUs, else 0."""
    text = str(value if value is not None else "auto").strip().lower()
    if text == "auto":
        return 1 if usable_cpus() > 1 and _supported() else 0
    count = int(text)
    if count < 0:
        raise ValueError("encoder.workers must be auto or a count of 0 or more")
    return count if _supported() else 0


def usable_cpus(cgroup_cpu_max: str = "/sys/fs/cgroup/cpu.max") -> int:
    """The CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota
    (a container's ``--cpus``)."""
    affinity = getattr(os, "sched_getaffinity", None)
    cpus = len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)
    try:
        with open(cgroup_cpu_max) as f:
            quota = quota_cpus(f.read())
    except OSError:
        quota = None
    return min(cpus, quota) if quota is not None else cpus


def quota_cpus(cpu_max: str) -> int | None:
    """Whole CPUs of a cgroup v2 ``cpu.max`` (``"150000 100000"``: 1); None: no quota."""
    fields = cpu_max.split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return max(1, quota // period) if period > 0 else None


def _supported() -> bool:
    return os.name == "posix"


def _region(size: int) -> int:
    """A file descriptor of ``size`` bytes of shared memory."""
    memfd = getattr(os, "memfd_create", None)
    if memfd is not None:
        fd = int(memfd("relaybit-encoder", 0))
    else:  # no memfd: an unlinked temporary file (in the page cache)
        with tempfile.TemporaryFile() as handle:
            fd = os.dup(handle.fileno())
    os.ftruncate(fd, size)
    return fd


class _Gone(Exception):
    """The worker's control pipe is closed: it exited."""


class _Worker:
    """One encoder process, its pipes and its two shared regions."""

    def __init__(self, index: int, region_size: int) -> None:
        self.index = index
        self.region_size = region_size
        self.process: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None  #: of the last process, once collected
        self.ready = False
        self.was_up = False  #: said HELLO since its last exit was logged
        self.busy = False
        self.registered: set[int] = set()
        self.waiter: asyncio.Future[tuple[bytes, int] | str | None] | None = None
        self.on_idle: Callable[[], None] = lambda: None
        self.on_exit: Callable[[_Worker], None] = lambda worker: None
        self._ctrl = -1
        self._reply = -1
        self._pending = b""
        self._in: mmap.mmap | None = None
        self._out: mmap.mmap | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the process (it says HELLO when it reads requests)."""
        fd_in, fd_out = _region(self.region_size), _region(self.region_size)
        ctrl_r, ctrl_w = os.pipe()
        reply_r, reply_w = os.pipe()
        child = (ctrl_r, reply_w, fd_in, fd_out)
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "relaybit.plugins.outputs.encoder_worker",
                    *map(str, child),
                    str(self.region_size),
                ],
                pass_fds=child,
                stdin=subprocess.DEVNULL,
            )
            self._in = mmap.mmap(fd_in, self.region_size)
            self._out = mmap.mmap(fd_out, self.region_size)
        except BaseException:
            for fd in (ctrl_w, reply_r):
                os.close(fd)
            self._unmap()
            if self.process is not None:  # started, but its regions could not be mapped
                self.process.kill()
                _reap(self.process)
                self.process = None
            raise
        finally:
            for fd in child:
                os.close(fd)
        self._ctrl, self._reply = ctrl_w, reply_r
        os.set_blocking(reply_r, False)
        self._loop = loop
        loop.add_reader(reply_r, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self._reply, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._exited()
            return
        self._pending += data
        while len(self._pending) >= REPLY.size:
            reply = REPLY.unpack_from(self._pending)
            self._pending = self._pending[REPLY.size :]
            if reply[0] == HELLO:
                self.ready = self.was_up = True
                self.on_idle()
                continue
            # the answer is taken out of the region before the worker may take the next
            # job (the waiting task resumes later: the region may hold another body then)
            answer = self._answer(*reply)
            waiter, self.waiter = self.waiter, None
            self.busy = False
            if waiter is not None and not waiter.done():
                waiter.set_result(answer)
            self.on_idle()

    def _exited(self) -> None:
        self.stop()  # its pipe closed: it is gone or going
        self.on_exit(self)

    async def run(
        self, key: int, factory: bytes, data: bytes, count: int, tag: bytes, now: float
    ) -> tuple[bytes, int] | str | None:
        """The body and entries; a str: the encoder's error; None: too big."""
        assert self._in is not None and self._out is not None and self._loop is not None
        self.busy = True
        self._in[: len(data)] = data
        message = b""
        if key not in self.registered:
            message = REQUEST.pack(REGISTER, key, len(factory), 0, 0.0, 0) + factory
        message += REQUEST.pack(ENCODE, key, len(data), count, now, len(tag)) + tag
        waiter = self.waiter = self._loop.create_future()
        try:
            write_all(self._ctrl, message)
        except OSError as exc:
            self.busy = False
            self.waiter = None
            raise _Gone() from exc
        self.registered.add(key)
        async with asyncio.timeout(JOB_TIMEOUT):
            return await asyncio.shield(waiter)

    def _answer(self, status: int, length: int, entries: int) -> tuple[bytes, int] | str | None:
        """A reply as :meth:`run` returns it, the body copied out of the region."""
        assert self._out is not None
        if status == OK:
            return self._out[:length], entries
        if status == FAILED:
            return self._out[:length].decode("utf-8", "replace")
        return None  # TOO_BIG

    def stop(self, *, kill: bool = False) -> None:
        """Close the pipes (the worker exits at that) and forget the process."""
        if self._loop is not None and self._reply >= 0:
            self._loop.remove_reader(self._reply)
        for fd in (self._ctrl, self._reply):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._ctrl = self._reply = -1
        self._unmap()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)  # the chunk out there comes back: written in the agent
        process, self.process = self.process, None
        if process is not None:
            if kill:
                with contextlib.suppress(OSError):
                    process.kill()
            _reap(process)
            self.returncode = process.returncode
        self.ready = self.busy = False
        self.registered.clear()
        self._pending = b""

    def _unmap(self) -> None:
        for region in (self._in, self._out):
            if region is not None:
                with contextlib.suppress(BufferError, ValueError):
                    region.close()
        self._in = self._out = None

    def __repr__(self) -> str:
        pid = self.process.pid if self.process is not None else None
        return f"<encoder worker {self.index} pid={pid} ready={self.ready} busy={self.busy}>"


def _reap(process: subprocess.Popen[bytes]) -> None:
    """Collect a worker whose pipes are closed (it exits at that) or that was killed."""
    try:
        process.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=1.0)


class EncoderPool:
    """Worker processes that turn chunks into request bodies (see the module docstring)."""

    def __init__(
        self,
        processes: int,
        *,
        logger: logging.Logger | None = None,
        region_size: int = REGION_SIZE,
    ) -> None:
        self.processes = processes
        self.region_size = region_size
        self._log = logger or logging.getLogger("relaybit")
        self._workers = [_Worker(i, region_size) for i in range(processes)]
        for worker in self._workers:
            worker.on_idle = self._wake
            worker.on_exit = self._worker_exited
        self._ids: dict[Hashable, int] = {}
        self._factories: dict[int, bytes] = {}
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._delays: dict[int, float] = {}
        self._restarts: dict[int, asyncio.TimerHandle] = {}
        self._started = False
        self._closed = False
        self.chunks = 0  #: chunks encoded by a worker
        self.in_agent = 0  #: chunks the pool handed back (no worker ready, too big, an error)
        self.restarts = 0  #: workers started again after they died

    async def encode(
        self,
        key: Hashable,
        factory: Callable[[], ChunkEncoder],
        data: bytes,
        count: int,
        tag: str,
        now: float,
    ) -> tuple[bytes, int] | None:
        """``(body, entries)`` of a chunk, or None: encode it yourself.

        ``key`` names the encoder (equal keys, equal encoders): ``factory``
        (picklable, no arguments) builds it in a worker the first time.
        """
        if self._closed or not self._workers or len(data) > self.region_size:
            return None
        tag_bytes = tag.encode("utf-8", "surrogateescape")
        if len(tag_bytes) > 0xFFFF:
            return None
        ident = self._id(key, factory)
        self.start()
        worker = await self._idle_worker()
        result = (
            None if worker is None else await self._job(worker, ident, data, count, tag_bytes, now)
        )
        if worker is None or result is None:
            self.in_agent += 1
            return None
        self.chunks += 1
        self._delays.pop(worker.index, None)
        return result

    async def _job(
        self, worker: _Worker, ident: int, data: bytes, count: int, tag: bytes, now: float
    ) -> tuple[bytes, int] | None:
        """One chunk on ``worker``; None when it comes back (the worker's pipe closed, no
        answer in time, the encoder raised, the body too big)."""
        try:
            result = await worker.run(ident, self._factories[ident], data, count, tag, now)
        except _Gone:  # its pipe is closed: the reader sees it exit
            return None
        except TimeoutError:  # no answer in time: it is stuck
            if worker.alive:
                worker.stop(kill=True)
                self._worker_exited(worker, f"did not answer within {JOB_TIMEOUT:g}s")
            return None
        if isinstance(result, str):
            self._log.debug(
                "encoder worker %d: %s (the chunk is encoded here)", worker.index, result
            )
            return None
        return result

    def _id(self, key: Hashable, factory: Callable[[], ChunkEncoder]) -> int:
        ident = self._ids.get(key)
        if ident is None:
            ident = self._ids[key] = len(self._ids) + 1
            self._factories[ident] = pickle.dumps(factory)
        return ident

    def start(self) -> None:
        """Start the workers (once; :meth:`encode` does it when no one did)."""
        if self._started or self._closed:
            return
        self._started = True
        for worker in self._workers:
            self._spawn(worker)

    def _spawn(self, worker: _Worker) -> None:
        self._restarts.pop(worker.index, None)
        if self._closed:
            return
        try:
            worker.start(asyncio.get_running_loop())
        except OSError as exc:
            self._log.warning("encoder worker %d cannot start: %s", worker.index, exc)
            self._schedule_restart(worker)

    async def _idle_worker(self) -> _Worker | None:
        """A ready worker that is free (waiting while all ready ones are busy); None
        when none is ready."""
        while True:
            ready = [w for w in self._workers if w.ready]
            for worker in ready:
                if not worker.busy:
                    worker.busy = True
                    return worker
            if not ready:
                return None
            waiter = asyncio.get_running_loop().create_future()
            self._idle_waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._idle_waiters:
                    self._idle_waiters.remove(waiter)

    def _wake(self) -> None:
        waiters, self._idle_waiters = self._idle_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _worker_exited(self, worker: _Worker, why: str = "") -> None:
        if self._closed:
            return
        code = worker.returncode
        why = why or (f"exited (code {code})" if code is not None else "exited")
        # logged when a worker that was up dies; one that dies again and again before
        # it is up (it cannot start) is logged once, then at debug
        level = (
            logging.WARNING if worker.was_up or worker.index not in self._delays else logging.DEBUG
        )
        worker.was_up = False
        self._log.log(
            level,
            "encoder worker %d %s: its chunks are encoded in the agent until it is back",
            worker.index,
            why,
        )
        self._schedule_restart(worker)
        self._wake()

    def _schedule_restart(self, worker: _Worker) -> None:
        if self._closed or worker.index in self._restarts:
            return
        first, longest = RESTART_DELAYS
        delay = self._delays.get(worker.index, first / 2) * 2
        self._delays[worker.index] = min(delay, longest)
        self.restarts += 1
        loop = asyncio.get_running_loop()
        self._restarts[worker.index] = loop.call_later(
            self._delays[worker.index], self._spawn, worker
        )

    async def aclose(self) -> None:
        """Stop every worker (chunks still out come back as None)."""
        self._closed = True
        for handle in self._restarts.values():
            handle.cancel()
        self._restarts.clear()
        for worker in self._workers:
            worker.stop()
        self._wake()

    def status(self) -> dict[str, Any]:
        """Workers, chunks encoded by them, chunks encoded in the agent, restarts."""
        return {
            "workers": self.processes,
            "ready": sum(1 for w in self._workers if w.ready),
            "chunks": self.chunks,
            "in_agent": self.in_agent,
            "restarts": self.restarts,
        }

    def __repr__(self) -> str:
        return (
            f"<EncoderPool workers={self.processes} chunks={self.chunks}"
            f" in_agent={self.in_agent} restarts={self.restarts}>"
        )

"""A storage whose chunk writes fail (disk full, quota, I/O error): pause, wait, resume.

When a chunk write under ``storage.path`` fails (``ENOSPC``, ``EDQUOT`` or
any other ``OSError``), the chunk file is cut back to its last good block
(:class:`~relaybit.pipeline.storage.ChunkFile` does it) and the records of
that ``emit`` are *not* stored: the engine keeps them in the waiting ``emit``
call, pauses the input, and retries the write once it may succeed.  So
nothing that was not stored is acknowledged (a tail offset, a forward ack, an
HTTP 201): the input is simply held in its ``emit``.

:class:`StorageGuard` is the state of one storage root: paused or not, since
when, why, and the free space.  It logs **one** line when writes start to fail
(the path, the error, the free space) and one when they work again, never one
per write.  Waiting emits wake up to retry when a delivered chunk's file is
deleted (:meth:`StorageGuard.freed`), when a poll of the free space (backoff
from 0.1 s to 2 s) sees room for the write, or at least every 5 s (errors that
free space does not explain: quotas, I/O errors).  A disk that fills again
within :data:`STABLE_AFTER` seconds of a resume (a backlog draining while the
input reads on) stays in the same episode: no new lines.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from relaybit.logging import counted, sized

log = logging.getLogger("relaybit.storage")

#: free space a retry wants beyond the bytes of the write (a new chunk file, the filesystem's blocks)
RETRY_MARGIN = 64 * 1024
#: free-space polls while paused: from POLL_MIN doubling to POLL_MAX seconds
POLL_MIN = 0.1
POLL_MAX = 2.0
#: a paused write is retried at least this often, whatever the free space says
RETRY_EVERY = 5.0
#: writes working this long after a pause end the episode (its "work again" line)
STABLE_AFTER = 1.0


class StorageWriteError(Exception):
    """A chunk write failed; the records of the emit were not stored.

    ``pending`` holds what is still to store, ``(tag, data, records, route)``
    each, in order; ``sealed`` a chunk the failed append had sealed before its
    own write (to be dispatched: it is stored).
    """

    def __init__(
        self,
        cause: OSError,
        path: Path | str,
        pending: list[tuple[str, bytes, int, str]],
        sealed: object = None,
    ) -> None:
        super().__init__(f"chunk write to {path} failed: {cause}")
        self.cause = cause
        self.path = Path(path)
        self.pending = pending
        self.sealed = sealed


def free_bytes(path: Path) -> int | None:
    """Bytes an unprivileged writer may still use on ``path``'s filesystem (None: unknown)."""
    while not path.exists() and path.parent != path:  # not created yet: its filesystem
        path = path.parent
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


class StorageGuard:
    """Pause state of one storage root whose writes failed."""

    def __init__(self, root: Path, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.root = root
        self._monotonic = monotonic
        self.paused = False
        self.paused_since = 0.0
        self.last_error = ""
        self.pauses = 0  #: episodes (writes failing until one works again)
        self.write_errors = 0  #: failed writes, retries included
        self.inputs: set[str] = set()  #: inputs waiting on this storage
        #: pauses in the episode being logged (0: none open)
        self._episode_pauses = 0
        self._closing: asyncio.TimerHandle | None = None
        self._kick = asyncio.Event()

    def _now(self) -> float:
        return self._monotonic()

    def failed(self, exc: StorageWriteError, input_name: str) -> None:
        """A write of ``input_name`` failed: pause (logged once per episode)."""
        self.write_errors += 1
        self.inputs.add(input_name)
        cause = exc.cause
        self.last_error = os.strerror(cause.errno) if cause.errno else str(cause)
        if self.paused:
            return
        self.paused = True
        self.pauses += 1
        if self._closing is not None:  # failing again soon after a resume: same episode
            self._closing.cancel()
            self._closing = None
        if self._episode_pauses:
            self._episode_pauses += 1
            log.debug("[storage] writes to %s fail again (%s)", self.root, self.last_error)
            return
        self._episode_pauses = 1
        self.paused_since = self._now()
        kind = (
            "storage full" if cause.errno in (errno.ENOSPC, errno.EDQUOT) else "storage write error"
        )
        log.error(
            "[storage] %s: writing %s failed (%s); %s free on %s; inputs writing there are"
            " paused until their records can be stored (%s); nothing unstored is acknowledged",
            kind,
            exc.path,
            self.last_error,
            sized(free_bytes(self.root)),
            self.root,
            input_name,
        )

    def succeeded(self, input_name: str) -> None:
        """A held write of ``input_name`` worked: resume.

        The episode's one "work again" line is logged once writes went on
        without failing for :data:`STABLE_AFTER` seconds (a disk that fills
        again at once, while the backlog drains, is the same episode).
        """
        self.inputs.discard(input_name)
        if not self.paused:
            return
        self.paused = False
        if self._episode_pauses and self._closing is None:
            self._closing = asyncio.get_running_loop().call_later(STABLE_AFTER, self._close_episode)

    def _close_episode(self) -> None:
        self._closing = None
        if self.paused or not self._episode_pauses:
            return
        again = self._episode_pauses - 1
        self._episode_pauses = 0
        log.warning(
            "[storage] writes to %s work again after %.1f s (%s free)%s; inputs resumed",
            self.root,
            self._now() - self.paused_since - STABLE_AFTER,
            sized(free_bytes(self.root)),
            f"; paused {counted(again, 'more time')} meanwhile as the disk filled again"
            if again
            else "",
        )

    def gave_up(self, input_name: str) -> None:
        """``input_name`` stopped waiting (the agent stops)."""
        self.inputs.discard(input_name)

    def freed(self) -> None:
        """A chunk file was deleted: waiting writes may retry now."""
        if self.inputs:
            self._kick.set()

    async def wait_retry(self, needed: int) -> None:
        """Wait until a write of ``needed`` bytes may succeed (see the module doc)."""
        delay = POLL_MIN
        started = self._now()
        while True:
            self._kick.clear()
            try:
                await asyncio.wait_for(self._kick.wait(), delay)
                return  # a chunk was deleted, or the agent stops
            except TimeoutError:
                pass
            free = free_bytes(self.root)
            if free is not None and free >= needed + RETRY_MARGIN:
                return
            if self._now() - started >= RETRY_EVERY:
                return
            delay = min(delay * 2, POLL_MAX)

    def wake(self) -> None:
        """Wake every waiting write (the agent stops)."""
        self._kick.set()

    def status(self) -> dict[str, object]:
        return {
            "paused": self.paused,
            "paused_for_sec": self._now() - self.paused_since if self.paused else 0.0,
            "paused_inputs": sorted(self.inputs),
            "pauses": self.pauses,
            "write_errors": self.write_errors,
            "last_error": self.last_error,
            "free_bytes": free_bytes(self.root),
        }

    def __repr__(self) -> str:
        state = "paused" if self.paused else "ok"
        return f"<StorageGuard {self.root} {state} write_errors={self.write_errors}>"


class _Buffer(Protocol):
    """What :func:`store_when_possible` uses of an InputBuffer."""

    name: str

    def append(self, tag: str, data: bytes, records: int, route: str = "") -> Any: ...

    def seal_all(self) -> list[Any]: ...

    def pause(self, *, chunks: bool = False, storage: bool = False) -> None: ...

    def resume(self) -> None: ...


async def store_when_possible(
    buf: _Buffer,
    guard: StorageGuard,
    exc: StorageWriteError,
    dispatch: Callable[[Any], None],
    stopping: Callable[[], bool],
) -> None:
    """Store what a failed append left (``exc.pending``), waiting for the storage.

    The input is paused (its ``emit`` does not return) while the writes fail;
    its open chunks are sealed and dispatched so their delivery can free
    space.  Returns once everything is stored; raises ``exc`` (nothing more
    stored) when the agent stops first, so the input acknowledges nothing.
    """
    pending = exc.pending
    while True:
        if exc.sealed is not None:
            dispatch(exc.sealed)
        guard.failed(exc, buf.name)
        buf.pause(storage=True)
        for chunk in buf.seal_all():
            dispatch(chunk)
        if not stopping():
            await guard.wait_retry(len(pending[0][1]))
        if stopping():
            guard.gave_up(buf.name)
            buf.resume()
            raise exc
        try:
            while pending:
                tag, data, records, route = pending[0]
                sealed = buf.append(tag, data, records, route)
                pending.pop(0)
                if sealed is not None:
                    dispatch(sealed)
        except StorageWriteError as again:
            again.pending = pending
            exc = again
            continue
        guard.succeeded(buf.name)
        buf.resume()
        return

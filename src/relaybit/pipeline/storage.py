"""Filesystem chunk storage: one append-only file per chunk, checksummed blocks.

Layout: ``<storage.path>/<input name>/<chunk id>.rbc``; chunk ids start with
the creation time in nanoseconds (hex, fixed width), so names sort in creation
order.  A file is::

    header  magic "RBCK" | version u8 (1) | flags u8 | tag length u16
            | created f64 (epoch seconds) | crc32 u32 (of the fields before it
            and the tag) | tag (UTF-8)

``flags`` is 0, or 1 (``FLAG_ROUTE``) for a chunk of an input's conditional
route: its tag field is then ``tag NUL route`` (the route name decides the
outputs after a restart; a tag itself may hold any byte, so only the flag says
the field is split).
    block*  length u32 | records u32 | crc32 u32 (of length, records, data) | data

all big endian.  ``data`` is what one ``emit`` stored: msgpack entries
``[time, record]`` back to back.  One ``emit`` is one ``os.writev`` of one
block, so after ``emit`` returns the bytes are in the kernel: they survive
``kill -9`` of the agent.  ``storage.sync full`` also ``fdatasync``s every
block before ``emit`` returns (survives power loss); ``normal`` syncs once when
the chunk is sealed.  Syncs run in a worker thread (the event loop never waits
on the disk); ``emit`` awaits its own with ``full``.

On start every file is read back: the header must be valid (else the file is
renamed ``*.rbc.corrupt``, or deleted with ``storage.delete_irrecoverable_chunks``,
and its size counted as irrecoverable); blocks are
read while their length fits and their CRC matches; the first block that does
not (a write torn by a crash) and everything after it is cut off with
``truncate`` and counted.  The chunk is then delivered again and its file is
deleted only after every output it routes to confirmed it.

Outputs that finished a chunk (confirmed it, or gave up on it) while another
output it routes to had not are recorded in a sidecar ``<chunk id>.rbc.done``
(one appended record per output, see :func:`encode_route_done`), so a restart
delivers the chunk only to the outputs that did not finish it.  The sidecar is
written only for chunks routed to several outputs (a chunk's last output
deletes the chunk instead), and removed after the chunk file.  CRCs are always
written and checked (``storage.checksum`` is accepted; zlib's crc32 runs at
GB/s, far above what the agent moves).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from relaybit.logging import counted
from relaybit.pipeline.storage_guard import StorageGuard

log = logging.getLogger("relaybit.storage")

MAGIC = b"RBCK"
VERSION = 1
SUFFIX = ".rbc"
_HEAD = struct.Struct(">4sBBHd")
_CRC = struct.Struct(">I")
_BLOCK = struct.Struct(">III")
_BLOCK_LEN_RECORDS = struct.Struct(">II")

#: the sidecar of a chunk file listing the outputs that finished it
DONE_SUFFIX = ".done"
DONE_MAGIC = b"RBD"
DONE_VERSION = 1
#: states in a route-done record
ROUTE_DELIVERED = 1
ROUTE_DROPPED = 2
_DONE_HEAD = struct.Struct(">3sBBH")  # magic, version, state, name length
_DONE_STATES = {ROUTE_DELIVERED: "delivered", ROUTE_DROPPED: "dropped"}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync(fd: int) -> None:
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:  # pragma: no cover - macOS
        os.fsync(fd)


def _sync_fd(fd: int, directory: Path | None) -> None:
    _sync(fd)
    if directory is not None:
        _fsync_dir(directory)


#: header flag: the tag field is ``tag NUL route``
FLAG_ROUTE = 1


def encode_header(tag: str, created: float, route: str = "") -> bytes:
    """The header bytes of a chunk file (``route``: the input route it belongs to)."""
    raw_tag = tag.encode("utf-8", "surrogateescape")
    flags = 0
    if route:
        raw_tag += b"\x00" + route.encode("utf-8", "surrogateescape")
        flags = FLAG_ROUTE
    head = _HEAD.pack(MAGIC, VERSION, flags, len(raw_tag), created)
    return head + _CRC.pack(zlib.crc32(raw_tag, zlib.crc32(head))) + raw_tag


def header_route(raw: bytes) -> str:
    """The input route a chunk file's bytes belong to ("" when none); header checked
    by :func:`decode_chunk`."""
    _magic, _version, flags, tag_len, _created = _HEAD.unpack_from(raw, 0)
    if not flags & FLAG_ROUTE:
        return ""
    start = _HEAD.size + _CRC.size
    field = raw[start : start + tag_len]
    return field.partition(b"\x00")[2].decode("utf-8", "surrogateescape")


def encode_block_header(data: bytes | bytearray | memoryview, records: int) -> bytes:
    """The 12 bytes framing one block of ``data``."""
    lr = _BLOCK_LEN_RECORDS.pack(len(data), records)
    return lr + _CRC.pack(zlib.crc32(data, zlib.crc32(lr)))


def done_path(path: Path) -> Path:
    """The route-done sidecar of the chunk file ``path`` (``<id>.rbc.done``)."""
    return path.with_name(path.name + DONE_SUFFIX)


def encode_route_done(output: str, *, dropped: bool = False) -> bytes:
    """One route-done record: ``output`` finished the chunk (``dropped``: gave up on it).

    ``"RBD" | version u8 = 1 | state u8 (1 delivered, 2 dropped) | name length u16
    | crc32 u32 (of the fields before it and the name) | name (UTF-8)``, big endian.
    """
    raw = output.encode("utf-8", "surrogateescape")
    state = ROUTE_DROPPED if dropped else ROUTE_DELIVERED
    head = _DONE_HEAD.pack(DONE_MAGIC, DONE_VERSION, state, len(raw))
    return head + _CRC.pack(zlib.crc32(raw, zlib.crc32(head))) + raw


def decode_routes_done(raw: bytes) -> tuple[dict[str, str], int]:
    """``({output: "delivered" | "dropped"}, valid_length)`` of a sidecar's bytes.

    Records are read up to the first torn, corrupt or unknown one.
    """
    finished: dict[str, str] = {}
    pos = 0
    head_len = _DONE_HEAD.size + _CRC.size
    while pos + head_len <= len(raw):
        magic, version, state, name_len = _DONE_HEAD.unpack_from(raw, pos)
        if magic != DONE_MAGIC or version != DONE_VERSION or state not in _DONE_STATES:
            break
        (crc,) = _CRC.unpack_from(raw, pos + _DONE_HEAD.size)
        start = pos + head_len
        name = raw[start : start + name_len]
        if len(name) != name_len:
            break
        if zlib.crc32(name, zlib.crc32(raw[pos : pos + _DONE_HEAD.size])) != crc:
            break
        finished[name.decode("utf-8", "surrogateescape")] = _DONE_STATES[state]
        pos = start + name_len
    return finished, pos


class ChunkFile:
    """An open chunk file being appended to (one per open chunk of a filesystem input).

    Writes happen on the caller's thread (one ``writev``: the bytes are in the
    kernel when :meth:`append` returns).  Disk syncs run in a worker thread
    (:meth:`sync`, :meth:`close_later`) so a slow disk never blocks the event
    loop; the descriptor is closed only once no sync uses it any more.
    """

    def __init__(
        self,
        path: Path,
        tag: str,
        created: float,
        *,
        sync_full: bool,
        pending: set[asyncio.Task[None]] | None = None,
        route: str = "",
    ) -> None:
        self.path = path
        self.sync_full = sync_full
        self.size = 0
        self.records = 0
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self._writable = True
        self._written = 0  #: writes so far (a generation number)
        self._synced = 0  #: writes known to be on disk
        self._dir_synced = not sync_full  #: ``full`` also syncs the directory entry once
        self._syncing: asyncio.Task[None] | None = None
        self.sync_error: OSError | None = None
        self._pending = pending if pending is not None else set()
        try:
            self._write([encode_header(tag, created, route)])
        except OSError:
            fd, self._fd = self._fd, None
            os.close(fd)
            path.unlink(missing_ok=True)
            raise

    def _write(self, parts: list[bytes | bytearray | memoryview]) -> None:
        assert self._fd is not None and self._writable, "chunk file is closed"
        total = sum(len(p) for p in parts)
        try:
            written = os.writev(self._fd, parts)
            if written != total:  # a short write to a regular file: finish it
                rest = b"".join(bytes(p) for p in parts)[written:]
                while rest:
                    rest = rest[os.write(self._fd, rest) :]
        except OSError:
            # disk full half way: cut the torn block off, or every later block
            # (emits that succeeded) would sit behind it and be lost at restart
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self.size)
                os.lseek(self._fd, self.size, os.SEEK_SET)
            raise
        self.size += total
        self._written += 1

    def append(self, data: bytes | bytearray | memoryview, records: int) -> None:
        """Write one block (in the kernel when this returns; :meth:`sync` for the disk)."""
        self._write([encode_block_header(data, records), data])
        self.records += records

    def _sync_target(self) -> tuple[int, Path | None]:
        return self._written, None if self._dir_synced else self.path.parent

    def sync_now(self) -> None:
        """Flush what was written to disk, on this thread."""
        assert self._fd is not None, "chunk file is closed"
        target, directory = self._sync_target()
        _sync_fd(self._fd, directory)
        self._dir_synced = True
        self._synced = target

    async def sync(self) -> None:
        """Wait until everything written so far is on disk (the sync runs in a thread)."""
        target = self._written
        while self._synced < target:
            if self._fd is None:  # discarded unsynced (an empty chunk): nothing to keep
                return
            if self._syncing is None:
                self._start_sync()
            assert self._syncing is not None
            await asyncio.shield(self._syncing)
        if self.sync_error is not None:
            raise self.sync_error

    def _start_sync(self) -> None:
        self._syncing = asyncio.get_running_loop().create_task(self._sync_in_thread())
        self._pending.add(self._syncing)
        self._syncing.add_done_callback(self._pending.discard)

    async def _sync_in_thread(self) -> None:
        fd = self._fd
        assert fd is not None
        target, directory = self._sync_target()
        try:
            await asyncio.to_thread(_sync_fd, fd, directory)
            self._dir_synced = True
            self._synced = max(self._synced, target)
        except OSError as exc:
            log.error("chunk file %s: sync failed: %s", self.path, exc)
            self.sync_error = exc
            self._synced = max(self._synced, target)  # waiters must not spin: they raise
        finally:
            self._syncing = None
            if not self._writable:
                self._close_when_idle(sync=True)

    def close_later(self, *, sync: bool) -> None:
        """No more writes; close once synced (``sync``), without blocking the loop.

        Outside a running event loop this is :meth:`close`.
        """
        if self._fd is None or not self._writable:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self.close(sync=sync)
            return
        self._writable = False
        self._close_when_idle(sync=sync)

    def _close_when_idle(self, *, sync: bool) -> None:
        if self._syncing is not None or self._fd is None:
            return
        if sync and self._synced < self._written:
            self._start_sync()
            return
        fd, self._fd = self._fd, None
        os.close(fd)

    def close(self, *, sync: bool) -> None:
        """Close the file now (``sync``: flush it to disk first). Idempotent."""
        fd = self._fd
        if fd is None or self._syncing is not None:
            self._writable = False
            return
        self._fd = None
        self._writable = False
        try:
            if sync and self._synced < self._written:
                _sync(fd)
        finally:
            os.close(fd)

    @property
    def closed(self) -> bool:
        return self._fd is None

    def __repr__(self) -> str:
        state = "closed" if self._fd is None else "open" if self._writable else "closing"
        return f"<ChunkFile {self.path.name} {state} records={self.records} bytes={self.size}>"


@dataclass(slots=True)
class LoadedChunk:
    """A chunk read back from its file."""

    input_name: str
    chunk_id: str
    path: Path
    tag: str
    created: float
    data: bytes
    records: int
    discarded: int  #: bytes cut off (torn or corrupt tail)
    #: outputs that finished the chunk before the restart (from its sidecar)
    finished: dict[str, str] = field(default_factory=dict)
    #: a route-done sidecar exists (deleted with the chunk)
    routes_file: bool = False
    #: the input route the chunk belongs to ("" when routed by tag)
    route: str = ""


@dataclass(slots=True)
class StoredChunkRef:
    """A chunk file found on disk, not yet read."""

    input_name: str
    chunk_id: str
    path: Path
    size: int


class CorruptChunk(Exception):
    """The header of a chunk file is unreadable; nothing in it can be trusted."""


def decode_chunk(raw: bytes) -> tuple[str, float, bytes, int, int]:
    """``(tag, created, data, records, valid_length)`` of a chunk file's bytes.

    Blocks are kept up to the first torn or corrupt one; ``valid_length`` is
    where the good part ends.  Raises :class:`CorruptChunk` on a bad header.
    """
    head_len = _HEAD.size + _CRC.size
    if len(raw) < head_len:
        raise CorruptChunk("file shorter than a header")
    magic, version, flags, tag_len, created = _HEAD.unpack_from(raw, 0)
    if magic != MAGIC:
        raise CorruptChunk(f"bad magic {magic!r}")
    if version != VERSION:
        raise CorruptChunk(f"unsupported version {version}")
    (crc,) = _CRC.unpack_from(raw, _HEAD.size)
    raw_tag = raw[head_len : head_len + tag_len]
    if len(raw_tag) != tag_len or zlib.crc32(raw_tag, zlib.crc32(raw[: _HEAD.size])) != crc:
        raise CorruptChunk("header checksum mismatch")
    if flags & FLAG_ROUTE:
        raw_tag = raw_tag.partition(b"\x00")[0]
    tag = raw_tag.decode("utf-8", "surrogateescape")
    pos = head_len + tag_len
    parts: list[bytes] = []
    records = 0
    view = memoryview(raw)
    while pos + _BLOCK.size <= len(raw):
        length, count, crc = _BLOCK.unpack_from(raw, pos)
        start = pos + _BLOCK.size
        end = start + length
        if end > len(raw):
            break
        block = view[start:end]
        if zlib.crc32(block, zlib.crc32(view[pos : pos + 8])) != crc:
            break
        parts.append(bytes(block))
        records += count
        pos = end
    return tag, created, b"".join(parts), records, pos


class FileStorage:
    """The chunk files under ``storage.path``."""

    def __init__(
        self,
        root: str | Path,
        *,
        sync: str = "normal",
        checksum: bool = True,
        delete_irrecoverable: bool = False,
    ) -> None:
        if sync not in ("normal", "full"):
            raise ValueError(f"storage.sync: expected normal or full, got {sync!r}")
        self.root = Path(root)
        self.sync_full = sync == "full"
        self.checksum = checksum
        #: ``storage.delete_irrecoverable_chunks``: delete corrupt files, not ``*.corrupt``
        self.delete_irrecoverable = delete_irrecoverable
        self.irrecoverable_bytes = 0
        self.corrupt_files = 0
        self._dirs: set[str] = set()
        #: syncs and closes running in threads (awaited by :meth:`wait_idle`)
        self._pending: set[asyncio.Task[None]] = set()
        #: paused when chunk writes fail (disk full): see relaybit.pipeline.storage_guard
        self.guard = StorageGuard(self.root)
        #: route-done writes failed since the last one that worked (logged once a run)
        self._route_done_failures = 0

    def _input_dir(self, input_name: str) -> Path:
        path = self.root / input_name
        if input_name not in self._dirs:
            path.mkdir(parents=True, exist_ok=True)
            self._dirs.add(input_name)
        return path

    def path_of(self, input_name: str, chunk_id: str) -> Path:
        return self.root / input_name / f"{chunk_id}{SUFFIX}"

    def create(
        self, input_name: str, chunk_id: str, tag: str, created: float, route: str = ""
    ) -> ChunkFile:
        """A new chunk file (header written)."""
        path = self._input_dir(input_name) / f"{chunk_id}{SUFFIX}"
        return ChunkFile(
            path, tag, created, sync_full=self.sync_full, pending=self._pending, route=route
        )

    async def wait_idle(self) -> None:
        """Wait for the syncs and closes running in threads (at stop)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    @staticmethod
    def read(path: Path) -> tuple[bytes, int, int]:
        """``(data, records, discarded bytes)`` of a sealed chunk file (blocking: use a thread).

        Raises :class:`CorruptChunk` on a bad header and ``OSError`` when the
        file cannot be read.
        """
        raw = path.read_bytes()
        _tag, _created, data, records, valid = decode_chunk(raw)
        return data, records, len(raw) - valid

    def set_aside(self, path: Path, size: int, reason: object) -> None:
        """An irrecoverable chunk file: count it; delete it or keep it as ``*.corrupt``."""
        self.irrecoverable_bytes += size
        self.corrupt_files += 1
        try:
            if self.delete_irrecoverable:
                path.unlink(missing_ok=True)
                kept = "deleted (storage.delete_irrecoverable_chunks)"
            else:
                bad = path.with_name(path.name + ".corrupt")
                path.rename(bad)
                kept = f"kept as {bad.name}"
        except OSError as exc:
            kept = f"could not be set aside: {exc}"
        done_path(path).unlink(missing_ok=True)  # meaningless without its chunk
        log.error(
            "chunk file %s is irrecoverable (%s): %s, %s", path, reason, counted(size, "byte"), kept
        )

    def delete(self, path: Path, *, routes_file: bool = False) -> None:
        """Remove a delivered chunk's file, then its route-done sidecar (``routes_file``).

        The chunk goes first: a crash in between leaves an orphan sidecar
        (removed by :meth:`scan`), never a chunk without its record.
        """
        try:
            path.unlink()
        except FileNotFoundError:
            log.warning("chunk file %s was already removed", path)
        if routes_file:
            try:
                done_path(path).unlink(missing_ok=True)
            except OSError as exc:
                log.error("route-done file of %s cannot be removed: %s", path, exc)
        self.guard.freed()  # writes waiting for room may retry

    def mark_route_done(self, path: Path, output: str, *, dropped: bool = False) -> None:
        """Record in the sidecar of chunk file ``path`` that ``output`` finished it.

        One ``write`` of one record (in the kernel when this returns: survives
        ``kill -9``); with ``storage.sync full`` it is also synced, in a worker
        thread.  A failure is logged: the only cost is that the output may get
        the chunk again after a restart.
        """
        side = done_path(path)
        record = encode_route_done(output, dropped=dropped)
        try:
            fd = os.open(side, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            self._route_done_failed(side, "opened", exc)
            return
        size = -1
        try:
            size = os.fstat(fd).st_size
            written = os.write(fd, record)
            if written != len(record):
                raise OSError(f"short write ({written} of {len(record)} bytes)")
        except OSError as exc:
            if size >= 0:  # no torn record in front of later ones
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
            os.close(fd)
            self._route_done_failed(side, "written", exc)
            return
        if self._route_done_failures:
            log.info(
                "route-done files are written again (%s failed meanwhile: those outputs"
                " may get their chunks again after a restart)",
                counted(self._route_done_failures, "write"),
            )
            self._route_done_failures = 0
        if not self.sync_full:
            os.close(fd)
            return
        directory = side.parent if size == 0 else None  # a new file: its entry too
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._sync_and_close(fd, directory, side)
            return
        task = loop.create_task(asyncio.to_thread(self._sync_and_close, fd, directory, side))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _route_done_failed(self, side: Path, what: str, exc: OSError) -> None:
        """Log the first failure of a run of them (a full disk fails every one)."""
        self._route_done_failures += 1
        level = logging.ERROR if self._route_done_failures == 1 else logging.DEBUG
        log.log(level, "route-done file %s cannot be %s: %s", side, what, exc)

    @staticmethod
    def _sync_and_close(fd: int, directory: Path | None, path: Path) -> None:
        try:
            _sync_fd(fd, directory)
        except OSError as exc:
            log.error("route-done file %s: sync failed: %s", path, exc)
        finally:
            os.close(fd)

    @staticmethod
    def read_routes_done(path: Path) -> tuple[dict[str, str], bool]:
        """``(finished outputs, sidecar exists)`` for chunk file ``path`` (blocking).

        A torn or corrupt tail of the sidecar is cut off (logged), so records
        appended later are not hidden behind it.
        """
        side = done_path(path)
        try:
            raw = side.read_bytes()
        except FileNotFoundError:
            return {}, False
        finished, valid = decode_routes_done(raw)
        if valid != len(raw):
            log.warning(
                "route-done file %s: torn or corrupt tail of %s cut off, %s kept",
                side,
                counted(len(raw) - valid, "byte"),
                counted(len(finished), "output"),
            )
            os.truncate(side, valid)
        return finished, True

    def scan(self) -> list[StoredChunkRef]:
        """Every chunk file on disk, oldest first (blocking: use a thread).

        Route-done sidecars whose chunk file is gone (a crash between the two
        deletions) are removed.
        """
        found: list[StoredChunkRef] = []
        if not self.root.is_dir():
            return found
        for input_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for path in sorted(input_dir.glob(f"*{SUFFIX}")):
                found.append(StoredChunkRef(input_dir.name, path.stem, path, path.stat().st_size))
            for side in input_dir.glob(f"*{SUFFIX}{DONE_SUFFIX}"):
                if not side.with_name(side.name[: -len(DONE_SUFFIX)]).exists():
                    log.info("route-done file %s has no chunk file any more; removed", side)
                    side.unlink(missing_ok=True)
        found.sort(key=lambda ref: ref.chunk_id)
        return found

    def load(self, ref: StoredChunkRef) -> LoadedChunk | None:
        """Read one chunk file and its route-done sidecar back (blocking: use a thread).

        Torn tails are cut, empty or corrupt files set aside.
        """
        raw = ref.path.read_bytes()
        try:
            tag, created, data, records, valid = decode_chunk(raw)
        except CorruptChunk as exc:
            self.set_aside(ref.path, len(raw), exc)
            return None
        discarded = len(raw) - valid
        if discarded:
            self.irrecoverable_bytes += discarded
            os.truncate(ref.path, valid)
            log.warning(
                "chunk file %s: torn or corrupt tail of %s cut off, %s kept",
                ref.path,
                counted(discarded, "byte"),
                counted(records, "record"),
            )
        if records == 0:
            self.delete(ref.path, routes_file=True)
            return None
        finished, routes_file = self.read_routes_done(ref.path)
        return LoadedChunk(
            ref.input_name,
            ref.chunk_id,
            ref.path,
            tag,
            created,
            data,
            records,
            discarded,
            finished,
            routes_file,
            header_route(raw),
        )

    def __repr__(self) -> str:
        sync = "full" if self.sync_full else "normal"
        return f"<FileStorage {self.root} sync={sync} syncing={len(self._pending)}>"

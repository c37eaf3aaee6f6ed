"""in_tail: follow files matching globs, with rotation, truncation and SQLite offsets.

relaybit polls (``stat`` every ``poll_interval``, 0.25 s) instead of inotify,
and rescans the globs every ``refresh_interval``.  Files present at start are
read from their end unless ``read_from_head`` is on or the DB has an offset;
files that appear later (a rotated-in file, a new log) are read from the head,
as Fluent Bit does.  A file renamed away (rotation) is read to its end and
kept for ``rotate_wait`` seconds, while the new file at the path is read from
its head.  A file that shrank (truncation, ``copytruncate``) restarts at 0.
The DB offset of a file is saved only after ``emit`` returned, so records
past the saved offset are never lost by a crash (at most re-read).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import time
from collections.abc import Sequence
from typing import Any

import msgpack

from relaybit.codec.msgpack import EventTime, default
from relaybit.codec.records import gc_paused
from relaybit.config.schema import ConfigMap, Option
from relaybit.errors import ConfigError
from relaybit.parsers.packing import ParsedLines, entry_head
from relaybit.plugins.base import InputContext, InputPlugin
from relaybit.plugins.inputs.lines import (
    LinePacker,
    Parser,
    lookup_parser,
    now_ext,
)
from relaybit.plugins.inputs.tail.db import SYNC_MODES, OffsetDB
from relaybit.plugins.inputs.tail.decoded import UNICODE_ENCODINGS
from relaybit.plugins.inputs.tail.file import READ_BLOCK, Batch, TailedFile
from relaybit.plugins.inputs.tail.joined import Joined, LineJoiner, joiner_factory
from relaybit.plugins.inputs.tail.scan import excluded, expand_tag, scan, split_patterns

#: bytes read from one file before giving the others a turn
_ROUND_BYTES = 8 * READ_BLOCK

#: rotated files whose end is remembered at most (the oldest are forgotten)
_FINISHED_KEPT = 4096

#: Fluent Bit's generic.encoding names (and aliases) -> Python codecs
ENCODINGS = {
    "shiftjis": "cp932",
    "sjis": "cp932",
    "cp932": "cp932",
    "windows-31j": "cp932",
    "gb18030": "gb18030",
    "gbk": "gbk",
    "cp936": "gbk",
    "uhc": "cp949",
    "cp949": "cp949",
    "windows-949": "cp949",
    "big5": "cp950",
    "cp950": "cp950",
    **{f"win{n}": f"cp{n}" for n in (866, 874, 1250, 1251, 1252, 1253, 1254, 1255, 1256)},
    **{f"cp{n}": f"cp{n}" for n in (866, 874, 1250, 1251, 1252, 1253, 1254, 1255, 1256)},
}


def _codec(opts: Any, section: str) -> str | None:
    name = opts.opt_str("generic.encoding")
    if not name:
        return None
    codec = ENCODINGS.get(name.strip().lower())
    if codec is None:
        raise ConfigError(
            f"unknown encoding {name!r}; known: ShiftJIS, GB18030, GBK, UHC, BIG5, Win866,"
            " Win874, Win1250..Win1256 (or their aliases SJIS, CP932, CP936, CP949, CP950 ...)",
            opts.origin("generic.encoding"),
            section=section,
            key="generic.encoding",
        )
    return codec


def _compile(opts: Any, key: str, section: str) -> re.Pattern[str] | None:
    text = opts.opt_str(key)
    if not text:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        raise ConfigError(
            f"invalid regular expression: {exc}", opts.origin(key), section=section, key=key
        ) from None


def regex_tag(tag: str, pattern: re.Pattern[str], path: str) -> str:
    """``tag_regex``: ``<name>`` in ``tag`` replaced by that named group of ``path``."""
    match = pattern.search(path)
    if match is None:
        return tag
    groups = {k: v for k, v in match.groupdict().items() if v is not None}
    return re.sub(r"<([^<>]+)>", lambda m: groups.get(m.group(1), m.group(0)), tag)


OPTIONS = ConfigMap(
    (
        Option("path", "str", None, "Comma-separated file globs to follow (required)"),
        Option("exclude_path", "str", None, "Comma-separated globs of files to leave out"),
        Option("path_key", "str", None, "Add the file's path to each record under this key"),
        Option("offset_key", "str", None, "Add each line's start offset under this key"),
        Option("key", "str", "log", "Key of the line when no parser is set"),
        Option("parser", "str", None, "Name of a [PARSER] applied to each line"),
        Option("refresh_interval", "time", 60.0, "Seconds between rescans of the globs"),
        Option("read_from_head", "bool", False, "Read files found at start from the head"),
        Option("rotate_wait", "time", 5.0, "Seconds a rotated file is still read"),
        Option("ignore_older", "time", 0.0, "Ignore files not modified for this long (0 = none)"),
        Option(
            "buffer_chunk_size",
            "size",
            32 * 1024,
            "Initial read buffer",
            no_effect="relaybit reads 1 MB blocks",
        ),
        Option("buffer_max_size", "size", 32 * 1024, "Longest line kept whole"),
        Option(
            "skip_long_lines",
            "bool",
            False,
            "Skip lines over buffer_max_size (off: cut them in buffer_max_size pieces)",
        ),
        Option("skip_empty_lines", "bool", False, "Do not emit empty lines"),
        Option("exit_on_eof", "bool", False, "Stop the agent once every file is read to its end"),
        Option("db", "str", None, "SQLite file keeping each file's offset"),
        Option("db.sync", "str", "normal", "SQLite synchronous mode", choices=SYNC_MODES),
        Option("db.locking", "bool", False, "Lock the DB file exclusively"),
        Option("db.journal_mode", "str", "WAL", "SQLite journal mode"),
        Option(
            "inotify_watcher",
            "bool",
            True,
            "Use inotify",
            no_effect="relaybit polls with stat() every poll_interval",
        ),
        Option("poll_interval", "time", 0.25, "relaybit: seconds between stat() polls"),
        Option(
            "static_batch_size",
            "size",
            0,
            "Bytes read from a static file per round",
            no_effect="relaybit reads 8 MB per file per round",
        ),
        Option(
            "event_batch_size",
            "size",
            0,
            "Records per event batch",
            no_effect="relaybit reads 8 MB per file per round",
        ),
        Option(
            "file_cache_advise",
            "bool",
            True,
            "posix_fadvise(DONTNEED) on read files",
            no_effect="the page cache is left to the kernel",
        ),
        Option(
            "watcher_interval",
            "time",
            2.0,
            "Interval of the stat() watcher (rotation checks)",
            no_effect="relaybit checks every file each poll_interval (0.25 s)",
        ),
        Option(
            "progress_check_interval",
            "time",
            2.0,
            "Interval of the progress check of inotify",
            no_effect="relaybit checks every file each poll_interval (0.25 s)",
        ),
        Option(
            "progress_check_interval_nsec",
            "int",
            0,
            "Nanoseconds added to progress_check_interval",
            no_effect="relaybit checks every file each poll_interval (0.25 s)",
        ),
        Option(
            "read_newly_discovered_files_from_head",
            "bool",
            True,
            "Files discovered after start (new or rotated in) are read from the head;"
            " off: from their end unless read_from_head",
        ),
        Option(
            "ignore_active_older_files",
            "bool",
            False,
            "With ignore_older: stop following a file not written for ignore_older;"
            " it is picked up again, at its offset, when written to",
        ),
        Option(
            "truncate_long_lines",
            "bool",
            False,
            "Cut lines longer than buffer_max_size to it and drop the rest of the line",
        ),
        Option(
            "tag_regex",
            "str",
            None,
            "Regular expression over the file path; its named groups fill <name> in the tag",
        ),
        Option(
            "db.compare_filename",
            "bool",
            False,
            "A DB offset is used only when the file name matches too (not only the inode)",
        ),
        Option(
            "generic.encoding",
            "str",
            None,
            "Encoding of the files, converted to UTF-8: ShiftJIS, GB18030, GBK, UHC, BIG5,"
            " Win866, Win874, Win1250..Win1256 (and their CP aliases)",
        ),
        Option(
            "unicode.encoding",
            "str",
            None,
            "UTF-16 files, converted to UTF-8: UTF-16LE, UTF-16BE, or auto (the byte-order"
            " mark decides, little-endian without one); offsets stay bytes of the file",
            choices=tuple(UNICODE_ENCODINGS),
        ),
        Option(
            "parser_",
            "str",
            None,
            "Legacy multiline: parser_N",
            prefix=True,
            no_effect="legacy multiline is not supported; use multiline.parser",
        ),
        Option(
            "multiline.parser",
            "str",
            None,
            "Comma-separated multiline parsers tried in order: built-in docker, cri, go, "
            "python, java, ruby, or a [MULTILINE_PARSER] name",
        ),
        Option(
            "multiline",
            "bool",
            False,
            "Legacy multiline",
            no_effect="legacy multiline is not supported; use multiline.parser",
        ),
        Option(
            "multiline_flush",
            "time",
            4.0,
            "Legacy multiline",
            no_effect="legacy multiline is not supported; use multiline.parser",
        ),
        Option(
            "parser_firstline",
            "str",
            None,
            "Legacy multiline",
            no_effect="legacy multiline is not supported; use multiline.parser",
        ),
        Option("docker_mode", "bool", False, "Rejoin Docker JSON lines split at 16 KB"),
        Option("docker_mode_flush", "time", 4.0, "Seconds before a partial Docker line is sent"),
        Option("docker_mode_parser", "str", None, "docker_mode: a parser matching first lines"),
    )
)


class TailInput(InputPlugin):
    """Follows files; emits ``{key: line}`` (or parsed records) per block read."""

    description = "Tail files"
    options = OPTIONS

    def __init__(self, ctx: InputContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        section = f"[INPUT] {ctx.name}"
        self.patterns = split_patterns(opts.opt_str("path"))
        if not self.patterns:
            raise ConfigError(
                "'path' is required: the files to follow", None, section=section, key="path"
            )
        self.excludes = split_patterns(opts.opt_str("exclude_path"))
        self.key = opts.str("key") or "log"
        self.path_key = opts.opt_str("path_key")
        self.offset_key = opts.opt_str("offset_key")
        self.refresh_interval = max(opts.float("refresh_interval"), 0.05)
        self.read_from_head = opts.bool("read_from_head")
        self.rotate_wait = opts.float("rotate_wait")
        self.ignore_older = opts.float("ignore_older")
        self.max_line = opts.int("buffer_max_size")
        if self.max_line < opts.int("buffer_chunk_size"):
            raise ConfigError(
                "buffer_max_size must be at least buffer_chunk_size",
                opts.origin("buffer_max_size"),
                section=section,
                key="buffer_max_size",
            )
        self.skip_long = opts.bool("skip_long_lines")
        self.skip_empty = opts.bool("skip_empty_lines")
        self.exit_on_eof = opts.bool("exit_on_eof")
        self.poll_interval = max(opts.float("poll_interval"), 0.01)
        self.tag = ctx.tag or ctx.name
        self.parser: Parser | None = lookup_parser(
            opts.opt_str("parser"), ctx.service, ctx_options=opts, section=section
        )
        #: per-file joiners when multiline.parser or docker_mode is on (None: plain lines)
        self._joiner_factory = joiner_factory(
            opts,
            ctx.service,
            section=section,
            parser=self.parser,
            key=self.key,
            logger=ctx.logger,
        )
        self._joiners: dict[tuple[int, int], LineJoiner] = {}
        self.db_path = opts.opt_str("db")
        self.db: OffsetDB | None = None
        #: the DB file and its SQLite companions (never followed, whatever the globs)
        self._own_files: set[str] = set()
        self.files: dict[tuple[int, int], TailedFile] = {}
        self._packers: dict[tuple[int, int], LinePacker] = {}
        self._parsed: dict[tuple[int, int], ParsedLines] = {}
        #: rotated files already read to their end: (dev, inode) -> (offset, mtime_ns)
        self._finished: dict[tuple[int, int], tuple[int, int]] = {}
        self._packer = msgpack.Packer(default=default, use_bin_type=True)
        #: records holding text that is not UTF-8 (surrogates): their raw bytes are kept
        self._safe_packer = msgpack.Packer(
            default=default, use_bin_type=True, unicode_errors="surrogateescape"
        )
        self._task: asyncio.Task[None] | None = None
        self.records = 0
        self.skipped_long = 0
        self.split_long = 0
        self.read_new_from_head = opts.bool("read_newly_discovered_files_from_head")
        self.ignore_active_older = opts.bool("ignore_active_older_files") and self.ignore_older > 0
        #: files left for ignore_active_older_files: (dev, inode) -> offset
        self._aged: dict[tuple[int, int], int] = {}
        self.truncate_long = opts.bool("truncate_long_lines")
        self.compare_filename = opts.bool("db.compare_filename")
        self.tag_regex = _compile(opts, "tag_regex", section)
        self.codec = _codec(opts, section)
        unicode = opts.opt_str("unicode.encoding")
        self.utf16 = UNICODE_ENCODINGS[unicode.lower()] if unicode else None
        if self.utf16 and self.codec:
            raise ConfigError(
                "'unicode.encoding' and 'generic.encoding' cannot be set together",
                opts.origin("unicode.encoding"),
                section=section,
                key="unicode.encoding",
            )

    # --- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        if self.db_path:
            path = self.db_path
            if not os.path.isabs(path):
                path = str(self.ctx.config_dir / path)
            opts = self.ctx.options
            # opening may wait for another process's lock: not on the loop; then the
            # rows are read from memory and the writes run on a thread of their own
            self.db = await asyncio.to_thread(
                functools.partial(
                    OffsetDB,
                    path,
                    sync=opts.str("db.sync"),
                    locking=opts.bool("db.locking"),
                    journal_mode=opts.str("db.journal_mode"),
                    background=True,
                    logger=self.ctx.logger,
                )
            )
            real = os.path.realpath(path)
            self._own_files = {real + suffix for suffix in ("", "-wal", "-shm", "-journal")}
        for path in self._scan():
            self._add(path, at_start=True)
        self._task = self.spawn(self._run, "tail")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._joiner_factory is not None:
            with contextlib.suppress(Exception):
                await self._flush_joined(force=True)
        for file in self.files.values():
            file.close()
        self.files.clear()
        if self.db is not None:
            db, self.db = self.db, None
            await asyncio.to_thread(db.close)  # may wait for a lock: not on the loop

    async def wait(self) -> None:
        """Return when the reader ended (``exit_on_eof``) or was stopped."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)

    # --- discovery ----------------------------------------------------------------------

    def _scan(self) -> list[str]:
        paths = scan(self.patterns, self.excludes)
        if self._own_files:  # a glob over the DB's directory: never tail the DB itself
            paths = [p for p in paths if os.path.realpath(p) not in self._own_files]
        if self.ignore_older > 0:
            limit = time.time() - self.ignore_older
            kept = []
            for path in paths:
                with contextlib.suppress(OSError):
                    if os.stat(path).st_mtime >= limit:
                        kept.append(path)
            paths = kept
        return paths

    def _add(self, path: str, *, at_start: bool) -> TailedFile | None:
        """Start following ``path`` unless its inode is already followed."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            self.ctx.logger.warning("cannot open %s: %s", path, exc)
            return None
        st = os.fstat(fd)
        ident = (st.st_dev, st.st_ino)
        if ident in self.files:
            os.close(fd)
            return None
        offset = 0
        db_id = 0
        gz = path.lower().endswith(".gz")
        row = self.db.get(st.st_ino) if self.db is not None else None
        if row is not None and self.compare_filename and row.name != path:
            row = None  # db.compare_filename: another file on this inode
        if row is not None and (gz or row.offset <= st.st_size):
            offset, db_id = row.offset, row.id
        elif ident in self._aged and (gz or self._aged[ident] <= st.st_size):
            offset = self._aged.pop(ident)  # ignore_active_older_files: written again
        elif self._finished_offset(ident, st) is not None:
            offset = self._finished[ident][0]
        elif not self.read_from_head and (at_start or not self.read_new_from_head):
            offset = st.st_size
            gz = False  # a compressed file found at start is left alone, as Fluent Bit
        if self.db is not None and not db_id:
            if row is not None:
                self.db.delete(row.id)  # a stale row (inode reused, file shrank)
            db_id = self.db.insert(path, offset, st.st_ino)
            self.db.commit()
        file = TailedFile(
            path=path,
            fd=fd,
            dev=st.st_dev,
            inode=st.st_ino,
            offset=offset,
            tag=self._tag(path),
            db_id=db_id,
            saved_offset=offset,
        )
        if gz:
            file.open_gzip(offset, st.st_size)
        elif self.utf16:
            file.open_utf16(self.utf16)  # an odd offset (not one of a unit) is rounded down
        self.files[ident] = file
        self._packers[ident] = LinePacker(
            self.key, [(self.path_key, path)] if self.path_key else ()
        )
        if self._joiner_factory is not None:
            self._joiners[ident] = self._joiner_factory()
        self.ctx.logger.debug("following %s from offset %d", path, offset)
        return file

    def _tag(self, path: str) -> str:
        if self.tag_regex is not None:
            return regex_tag(self.tag, self.tag_regex, path)
        return expand_tag(self.tag, path)

    def _remember_finished(self, file: TailedFile) -> None:
        """Keep where a rotated file ended, in case a glob finds it again.

        A deleted file is not kept: its inode may be reused by a new file at
        once (ext4 does), which must be read from its head.
        """
        try:
            st = os.fstat(file.fd)
        except OSError:
            return
        if st.st_nlink == 0:
            return
        self._finished[(file.dev, file.inode)] = (file.resume_offset(), st.st_mtime_ns)
        while len(self._finished) > _FINISHED_KEPT:
            del self._finished[next(iter(self._finished))]

    def _finished_offset(self, ident: tuple[int, int], st: os.stat_result) -> int | None:
        """The offset a finished file ended at, if ``st`` is that same file unchanged."""
        done = self._finished.get(ident)
        if done is None or done[0] > st.st_size or done[1] != st.st_mtime_ns:
            return None  # another file on a reused inode, or written to since
        return done[0]

    def _rescan(self) -> None:
        if self.ignore_active_older:
            self._age_out()
        watched = {f.path for f in self.files.values() if f.rotated_at is None}
        for path in self._scan():
            if path not in watched:
                self._add(path, at_start=False)

    def _age_out(self) -> None:
        """ignore_active_older_files: leave files not written for ignore_older (their
        offset is kept: written again, they are picked up where they were left)."""
        limit = time.time() - self.ignore_older
        for ident, file in list(self.files.items()):
            if file.rotated_at is not None or file.pending:
                continue
            try:
                if os.fstat(file.fd).st_mtime >= limit:
                    continue
            except OSError:
                continue
            self.ctx.logger.debug("%s not written for ignore_older: left", file.path)
            self._aged[ident] = file.resume_offset()
            file.close()
            del self.files[ident]
            self._packers.pop(ident, None)
            self._parsed.pop(ident, None)
            self._joiners.pop(ident, None)

    # --- the loop ----------------------------------------------------------------------

    async def _run(self) -> None:
        """Read every followed file in turn.  An unexpected exception ends it: the
        supervisor (:meth:`InputPlugin.spawn`) logs it and runs it again, going on
        from the files and offsets kept on the instance."""
        next_scan = time.monotonic() + self.refresh_interval
        while True:
            busy = False
            if self.db is not None and self.db.unwritten:
                self.db.commit()  # what a lock held back (at most every RETRY_AFTER)
            for file in list(self.files.values()):
                busy |= await self._poll(file)
            now = time.monotonic()
            if self._joiner_factory is not None:
                await self._flush_joined(force=False)
            if now >= next_scan:
                self._rescan()
                next_scan = now + self.refresh_interval
            if self.exit_on_eof and not busy and self._all_at_eof():
                if self._joiner_factory is not None:
                    await self._flush_joined(force=True)
                self.ctx.logger.info("every file read to its end (exit_on_eof)")
                return
            if not busy:
                await asyncio.sleep(self.poll_interval)

    def _all_at_eof(self) -> bool:
        for file in self.files.values():
            with contextlib.suppress(OSError):
                if file.size() > file.read_position:
                    return False
        return True

    async def _poll(self, file: TailedFile) -> bool:
        """Read what is new in ``file``, handle truncation and rotation; True if more is left."""
        ident = (file.dev, file.inode)
        try:
            size = file.size()
        except OSError:
            size = file.read_position
        if size < file.read_position:
            self.ctx.logger.info(
                "%s truncated (size %d < offset %d), reading from the head",
                file.path,
                size,
                file.read_position,
            )
            rest = file.take_pending()
            if rest:
                await self._emit(file, Batch([rest], file.offset))
            await self._flush_joined(force=True, only=ident)
            file.rewind()
            await self._commit(file)
        read = 0
        more = False
        while True:
            before = (file.offset, file.pending, file.skipping, file.lines_read)
            batch = file.read_lines(
                max_line=self.max_line,
                skip_long=self.skip_long,
                skip_empty=self.skip_empty,
                truncate=self.truncate_long,
                want_starts=bool(self.offset_key) or self._joiner_factory is not None,
            )
            if batch is None:
                break
            self.skipped_long += batch.skipped_long
            self.split_long += batch.split_long
            if (batch.skipped_long or batch.split_long) and not file.warned_long:
                file.warned_long = True
                what = (
                    "truncated"
                    if self.truncate_long
                    else "skipped"
                    if self.skip_long
                    else "cut in pieces"
                )
                self.ctx.logger.warning(
                    "%s has lines longer than buffer_max_size (%d bytes): %s",
                    file.path,
                    self.max_line,
                    what,
                )
            try:
                await self._emit(file, batch)
            except BaseException:  # not stored: read these lines again (nothing acknowledged)
                file.offset, file.pending, file.skipping, file.lines_read = before
                raise
            await self._commit(file)
            await asyncio.sleep(0)  # let the outputs send what was read
            read += READ_BLOCK
            if read >= _ROUND_BYTES:
                more = True
                break
        if file.gz is not None and file.gz_done:
            await self._commit(file)  # read to its end: saved at its size
        if file.rotated_at is None:
            self._check_rotation(file)
        elif time.monotonic() - file.rotated_at >= self.rotate_wait and not more:
            rest = file.take_pending()
            if rest:
                await self._emit(file, Batch([rest], file.offset))
            await self._flush_joined(force=True, only=ident)
            self._joiners.pop(ident, None)
            self._remember_finished(file)
            file.close()
            del self.files[ident]
            self._packers.pop(ident, None)
            self._parsed.pop(ident, None)
            if self.db is not None and file.db_id:
                self.db.commit()
                self.db.delete(file.db_id)
            self.ctx.logger.debug("done with rotated %s", file.rotated_name)
        return more

    def _check_rotation(self, file: TailedFile) -> None:
        try:
            st = os.stat(file.path)
            same = (st.st_dev, st.st_ino) == (file.dev, file.inode)
        except FileNotFoundError:
            same = False
        except OSError:
            return
        if same:
            return
        file.rotated_at = time.monotonic()
        with contextlib.suppress(OSError):
            file.rotated_name = os.readlink(f"/proc/self/fd/{file.fd}")
        self.ctx.logger.info("%s rotated (now %s)", file.path, file.rotated_name or "deleted")
        if self.db is not None and file.db_id:
            self.db.rotate(file.db_id, file.rotated_name or file.path)
        if os.path.exists(file.path) and not excluded(file.path, self.excludes):
            self._add(file.path, at_start=False)

    async def _commit(self, file: TailedFile) -> None:
        if self.db is None or not file.db_id:
            return
        offset = file.resume_offset()
        gz_end = file.gz_read_to_end  # saved at its size (resume_offset)
        joiner = self._joiners.get((file.dev, file.inode)) if self._joiners else None
        if joiner is not None:  # a record still being joined is re-read after a restart
            pending = joiner.pending_offset()
            if pending is not None and pending < offset:
                offset, gz_end = pending, False
        if file.gz is not None and not gz_end and offset == os.fstat(file.fd).st_size:
            return  # a decompressed offset that would read as "at its end": the next one
        if offset != file.saved_offset:
            self.db.set_offset(file.db_id, offset)
            self.db.commit()
            file.saved_offset = offset

    # --- packing and emitting -------------------------------------------------------------

    async def _emit(self, file: TailedFile, batch: Batch) -> None:
        lines = batch.lines
        if not lines:
            return
        if self.codec is not None:  # generic.encoding -> UTF-8
            lines = batch.lines = [ln.decode(self.codec, "replace").encode() for ln in lines]
        if self._joiner_factory is not None:
            await self._emit_joined(file, batch)
            return
        decodes = self.ctx.decodes
        if (
            decodes is not None
            and (self.parser is not None or self.offset_key)
            and decodes(file.tag)
            and await self._emit_decoded(file, batch)
        ):
            return
        stamp = now_ext(self.ctx.clock)
        if self.parser is None and not self.offset_key:
            data = self._packers[(file.dev, file.inode)].pack(lines, stamp)
        else:
            data = self._pack_records(file, batch)
        await self.ctx.emit(file.tag, data, len(lines))
        self.records += len(lines)

    async def _emit_decoded(self, file: TailedFile, batch: Batch) -> bool:
        """Records built per line (a parser, an offset_key) whose tag has filters or
        processors go to the engine decoded (no pack and decode between the parser and
        the filters); False when the parser cannot hand them over so.  Plain lines stay
        bytes: LinePacker and msgpack's decode cost less than a record built per line."""
        emit_entries = self.ctx.emit_entries
        if emit_entries is None:
            return False
        packer, now, starts = self._parse_args(file, batch)
        entries = packer.entries(batch.lines, now, starts)
        if entries is None:
            return False
        original = functools.partial(packer.pack, batch.lines, now, starts)
        await emit_entries(file.tag, entries, len(batch.lines), original)
        self.records += len(batch.lines)
        return True

    # --- multi-line (multiline.parser, docker_mode): per-line work, off the fast path ---

    async def _emit_joined(self, file: TailedFile, batch: Batch) -> None:
        joiner = self._joiners.get((file.dev, file.inode))
        if joiner is None:
            joiner = self._joiners[(file.dev, file.inode)] = self._joiner_factory()  # type: ignore[misc]
        stamp = EventTime.from_float(self.ctx.clock.time())
        with gc_paused():
            records = joiner.feed_lines(batch.lines, stamp, time.monotonic(), batch.starts)
        await self._emit_records(file, records)

    async def _flush_joined(self, *, force: bool, only: tuple[int, int] | None = None) -> None:
        """Emit joined records whose flush timeout passed (all of them when ``force``)."""
        now = time.monotonic()
        for ident, joiner in list(self._joiners.items()):
            if only is not None and ident != only:
                continue
            records = joiner.flush() if force else joiner.flush_due(now)
            file = self.files.get(ident)
            if records and file is not None:
                await self._emit_records(file, records)
                await self._commit(file)

    async def _emit_records(self, file: TailedFile, records: Sequence[Joined]) -> None:
        if not records:
            return
        with gc_paused():
            data = self._pack_joined(file, records)
        await self.ctx.emit(file.tag, data, len(records))
        self.records += len(records)

    def _pack_joined(self, file: TailedFile, records: Sequence[Joined]) -> bytes:
        out: list[bytes] = []
        append = out.append
        pack = self._packer.pack
        path_key, offset_key = self.path_key, self.offset_key
        for stamp, record in records:
            if path_key:
                record[path_key] = file.path
            if offset_key:
                record[offset_key] = file.offset
            body: Any = record
            if stamp.__class__ is bytes:  # packed already (CriStream)
                head = stamp
            elif stamp.__class__ is EventTime:
                head = entry_head(stamp)
            else:
                head, body = b"", [stamp, record]
            try:  # without unicode_errors msgpack packs str directly (a third faster)
                packed = pack(body)
            except UnicodeEncodeError:  # text that is not UTF-8: its raw bytes are kept
                packed = self._safe_packer.pack(body)
            append(head)
            append(packed)
        return b"".join(out)

    def _pack_records(self, file: TailedFile, batch: Batch) -> bytes:
        """A parser and/or a per-line offset key: a batch through relaybit.parsers.packing."""
        packer, now, starts = self._parse_args(file, batch)
        return packer.pack(batch.lines, now, starts)

    def _parse_args(
        self, file: TailedFile, batch: Batch
    ) -> tuple[ParsedLines, bytes, Sequence[int] | None]:
        """The ParsedLines of ``file``, the batch time (bytes) and the lines' offsets."""
        ident = (file.dev, file.inode)
        packer = self._parsed.get(ident)
        if packer is None:
            extra = [(self.path_key, file.path)] if self.path_key else []
            packer = ParsedLines(self.parser, self.key, extra, self.offset_key or None)
            self._parsed[ident] = packer
        starts = batch.starts
        if self.offset_key and starts is None:
            starts = [file.offset] * len(batch.lines)
        now = EventTime.from_float(self.ctx.clock.time())
        return packer, entry_head(now)[1:], starts

    def status(self) -> dict[str, Any]:
        db: dict[str, Any] = {}
        if self.db is not None:
            db["db"] = {
                "locked": self.db.busy_since is not None,
                "locked_writes": self.db.failed_writes,
            }
        return {
            "records": self.records,
            "skipped_long_lines": self.skipped_long,
            "split_long_lines": self.split_long,
            **db,
            "files": [
                {
                    "path": f.path,
                    "inode": f.inode,
                    "offset": f.offset,
                    "rotated": f.rotated_at is not None,
                }
                for f in self.files.values()
            ],
        }

    def __repr__(self) -> str:
        return f"<TailInput {self.ctx.name} path={','.join(self.patterns)} files={len(self.files)}>"

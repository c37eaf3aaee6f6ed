"""out_file: append records to a file per tag, in Fluent Bit's out_file formats.

Formats: ``out_file`` (default: ``tag: [time, {json}]``), ``plain`` (the record
as JSON), ``json_lines`` (record with the time under ``json_date_key``),
``csv`` and ``ltsv`` (values printed as msgpack-c does), ``template``
(``{time}`` and ``{key}`` placeholders) and ``msgpack`` (raw entries).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import os
import re
import secrets
import shutil
import threading
import time as time_module
from pathlib import Path
from typing import Any

from relaybit.codec.msgpack import iter_entries
from relaybit.config.schema import ConfigMap, Option
from relaybit.errors import ConfigError
from relaybit.pipeline.chunk import Chunk
from relaybit.plugins.base import FlushResult, OutputContext, OutputPlugin
from relaybit.plugins.outputs.formats import (
    DATE_FORMATS,
    date_key_option,
    encode_text,
    format_date,
    format_records,
    print_value,
    split_time,
    to_json,
)

FILE_FORMATS = ("out_file", "plain", "json_lines", "csv", "ltsv", "template", "msgpack")
_NAMED_DELIMITERS = {"\\t": "\t", "tab": "\t", "space": " ", "comma": ","}
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


def delimiter_option(value: str | None, default: str) -> str:
    """Fluent Bit's delimiter names (``tab``, ``space``, ``comma``, ``\\t``) or the text itself."""
    if not value:
        return default
    return _NAMED_DELIMITERS.get(value.lower(), value)


def _double(time: Any) -> str:
    seconds, nanos = split_time(time)
    return f"{seconds + nanos / 1e9:f}"


class FileOutput(OutputPlugin):
    """Appends each chunk to ``path/file`` (``file`` defaults to the tag)."""

    description = "Generate log file"
    options = ConfigMap(
        (
            Option(
                "path", "str", None, "Directory of the output file (default: current directory)"
            ),
            Option("file", "str", None, "File name (default: the record's tag)"),
            Option(
                "format",
                "str",
                "out_file",
                "out_file (tag: [time, {json}]), plain, json_lines, csv, ltsv, template or msgpack",
                choices=FILE_FORMATS,
            ),
            Option("delimiter", "str", None, "csv/ltsv field delimiter: tab, space, comma or text"),
            Option("label_delimiter", "str", None, "ltsv label delimiter (default ':')"),
            Option(
                "template",
                "str",
                "{time} {message}",
                "template format: {time} and {key} placeholders",
            ),
            Option(
                "csv_column_names", "bool", False, "csv: write a header line when the file is new"
            ),
            Option("mkdir", "bool", False, "Create the directory when it does not exist"),
            Option("json_date_key", "str", "date", "json_lines: key of the time; false to omit"),
            Option(
                "json_date_format", "str", "double", "json_lines: time format", choices=DATE_FORMATS
            ),
            Option(
                "rotate",
                "bool",
                False,
                "Rotate the file once it reaches rotate_max_size (renamed to"
                " FILE.YYYYMMDD_HHMMSS_xxxxxxxx)",
            ),
            Option("rotate_max_size", "size", 100 * 1024 * 1024, "Size that rotates the file"),
            Option("rotate_max_files", "int", 7, "Rotated files kept per file", minimum=1),
            Option("rotate_gzip", "bool", True, "Compress rotated files (.gz)"),
            Option(
                "enable_strftime",
                "bool",
                False,
                "strftime placeholders in path and file",
                refused="path and file are used as written; use the tag in file names",
            ),
            *(
                Option(
                    name,
                    "str",
                    None,
                    "Record-accessor destinations",
                    no_effect="path and file take no record accessors, so there is no"
                    " dynamic destination",
                )
                for name in (
                    "max_dynamic_files",
                    "on_missing_field",
                    "on_limit_reached",
                    "fallback_path",
                    "fallback_file",
                )
            ),
        )
    )

    def __init__(self, ctx: OutputContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        self.directory = Path(opts.str("path")) if opts.opt_str("path") else None
        self.file = opts.opt_str("file")
        self.format = opts.str("format").lower()
        default_delim = "\t" if self.format == "ltsv" else ","
        self.delimiter = delimiter_option(opts.opt_str("delimiter"), default_delim)
        self.label_delimiter = delimiter_option(opts.opt_str("label_delimiter"), ":")
        self.template = opts.str("template")
        self.csv_column_names = opts.bool("csv_column_names")
        self.mkdir = opts.bool("mkdir")
        self.date_key = date_key_option(opts.opt_str("json_date_key"))
        self.date_format = opts.str("json_date_format").lower()
        self.rotate = opts.bool("rotate")
        self.rotate_max_size = opts.int("rotate_max_size")
        self.rotate_max_files = opts.int("rotate_max_files")
        self.rotate_gzip = opts.bool("rotate_gzip")
        self.records = 0
        #: one append at a time (``workers`` > 1): a failed one is cut back alone
        self._lock = threading.Lock()
        #: the write failure last logged (logged again only when it changes)
        self._failure: str | None = None
        #: the rotation failure last logged (logged again only when it changes)
        self._rotate_failure: str | None = None
        if self.directory is not None and not self.mkdir and not self.directory.is_dir():
            # Fluent Bit fails at flush time; say it at start-up, it is a configuration mistake.
            ctx.logger.warning(
                "directory %s does not exist (set mkdir on to create it)",
                self.directory,
            )

    def target(self, tag: str) -> Path:
        """The file a chunk of ``tag`` is appended to."""
        name = self.file or tag
        if os.sep in name and self.file is None and self.directory is not None:
            raise ConfigError(f"tag {tag!r} is not a usable file name")
        return (self.directory / name) if self.directory is not None else Path(name)

    def render(self, chunk: Chunk, *, new_file: bool = False) -> bytes:
        """The bytes appended for ``chunk``."""
        fmt = self.format
        if fmt == "msgpack":
            return bytes(chunk.data)
        if fmt == "plain":
            return format_records(chunk.data, chunk.tag, "plain")
        if fmt == "json_lines":
            return format_records(
                chunk.data,
                chunk.tag,
                "json_lines",
                date_key=self.date_key,
                date_format=self.date_format,
            )
        out: list[bytes] = []
        tag = encode_text(chunk.tag)
        header_done = not (new_file and self.csv_column_names)
        for time, record in iter_entries(chunk.data):
            if fmt == "out_file":
                out.append(tag + b": [" + _double(time).encode() + b", " + to_json(record) + b"]\n")
            elif fmt == "csv" and isinstance(record, dict) and record:
                if not header_done:
                    names = ["timestamp", *(str(k) for k in record)]
                    out.append(encode_text(self.delimiter.join(names) + "\n"))
                    header_done = True
                fields = [_double(time), *(print_value(v) for v in record.values())]
                out.append(encode_text(self.delimiter.join(fields) + "\n"))
            elif fmt == "ltsv" and isinstance(record, dict) and record:
                ld = self.label_delimiter
                fields = [f'"time"{ld}{_double(time)}']
                fields += [f"{print_value(k)}{ld}{print_value(v)}" for k, v in record.items()]
                out.append(encode_text(self.delimiter.join(fields) + "\n"))
            elif fmt == "template":
                out.append(encode_text(self._fill(time, record) + "\n"))
        return b"".join(out)

    def _fill(self, time: Any, record: Any) -> str:
        values = record if isinstance(record, dict) else {"log": record}

        def one(match: re.Match[str]) -> str:
            key = match.group(1)
            if key == "time":
                return str(format_date(time, "double"))
            value = values.get(key)
            if value is None:
                return ""
            return value if isinstance(value, str) else print_value(value)

        return _PLACEHOLDER.sub(one, self.template)

    def _write(self, path: Path, chunk: Chunk) -> None:
        """Append ``chunk``; a write that fails half way (disk full) is cut back off.

        The file is truncated to its size before the write, so the retry
        appends the whole chunk once and nothing of it twice.
        """
        if self.mkdir:
            path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
            try:
                start = os.fstat(fd).st_size
                rest = memoryview(self.render(chunk, new_file=start == 0))
                try:
                    while rest:
                        rest = rest[os.write(fd, rest) :]
                except OSError:
                    try:
                        os.ftruncate(fd, start)
                    except OSError as exc:
                        self.ctx.logger.error(
                            "%s cannot be cut back after a failed write (%s): the"
                            " retry appends the chunk after its partial copy",
                            path,
                            exc,
                        )
                    raise
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            if self.rotate and size >= self.rotate_max_size:
                self._rotate(path)

    def _rotate(self, path: Path) -> None:
        """Rename the full file aside (gzip it), keep ``rotate_max_files`` of them.

        A failure is logged and tried again after the next write, as Fluent Bit."""
        stamp = time_module.strftime("%Y%m%d_%H%M%S", time_module.localtime())
        rotated = path.with_name(f"{path.name}.{stamp}_{secrets.token_hex(4)}")
        try:
            os.rename(path, rotated)
        except OSError as exc:
            failure = f"could not rotate {path}: {exc}"
            same = failure == self._rotate_failure  # once per cause, not after every write
            self.ctx.logger.log(logging.DEBUG if same else logging.WARNING, "%s", failure)
            self._rotate_failure = failure
            return
        self._rotate_failure = None
        self.ctx.logger.info("rotated %s to %s", path, rotated)
        if self.rotate_gzip:
            try:
                with open(rotated, "rb") as src, gzip.open(f"{rotated}.gz", "wb") as dst:
                    shutil.copyfileobj(src, dst)
                os.unlink(rotated)
            except OSError as exc:
                self.ctx.logger.warning("keeping uncompressed rotated file %s: %s", rotated, exc)
        pattern = re.compile(re.escape(path.name) + r"\.\d{8}_\d{6}(_[0-9a-f]{8})?(\.gz)?$")
        kept = sorted(
            (p for p in path.parent.iterdir() if pattern.match(p.name)),
            key=lambda p: (p.stat().st_mtime_ns, p.name),
        )
        for old in kept[: max(len(kept) - self.rotate_max_files, 0)]:
            with contextlib.suppress(OSError):
                old.unlink()

    async def flush(self, chunk: Chunk) -> FlushResult:
        try:
            path = self.target(chunk.tag)
        except ConfigError as exc:
            self.ctx.logger.error("%s", exc)
            return FlushResult.ERROR
        try:
            await asyncio.to_thread(self._write, path, chunk)
        except OSError as exc:
            failure = f"cannot write {path}: {exc}"
            if failure != self._failure:  # once per cause, not per flush and retry
                self.ctx.logger.warning("%s (retrying)", failure)
            else:
                self.ctx.logger.debug("%s", failure)
            self._failure = failure
            return FlushResult.RETRY
        if self._failure is not None:
            self.ctx.logger.info("writing again to %s", path)
            self._failure = None
        self.records += chunk.records
        return FlushResult.OK

    def status(self) -> dict[str, Any]:
        return {"records": self.records}

    def __repr__(self) -> str:
        return f"<FileOutput {self.ctx.name} format={self.format} records={self.records}>"

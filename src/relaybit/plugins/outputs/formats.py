"""Record formatting shared by outputs (stdout, file, http): pure functions.

``format_records`` turns a chunk's msgpack entries into the bytes an output
writes: ``json`` (one array), ``json_lines``/``json_stream`` (one object per
line), ``plain`` (the record alone, one per line) or ``msgpack`` (the entries
as they are).  Every JSON record carries the event time under ``date_key``
(first key, as Fluent Bit's ``flb_pack_msgpack_to_json_format``) in
``date_format``: ``double``, ``epoch``, ``epoch_ms``, ``iso8601`` or
``java_sql_timestamp``.

Strings that are not valid UTF-8 travel as ``str`` decoded with
``surrogateescape``; they are written back as their original bytes, as Fluent
Bit does (it copies the raw bytes into the JSON text).
"""

from __future__ import annotations

import datetime as _dt
import json
from itertools import repeat
from operator import contains
from typing import Any

import msgpack
import orjson

from relaybit.codec.msgpack import EventTime, event_time, iter_entries, time_parts, unpack_chunk
from relaybit.codec.records import gc_paused
from relaybit.plugins.outputs import fastjson

FORMATS = ("json", "json_lines", "json_stream", "plain", "msgpack")
DATE_FORMATS = ("double", "epoch", "epoch_ms", "iso8601", "java_sql_timestamp")

_ORJSON_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS


def split_time(value: Any) -> tuple[int, int]:
    """(seconds, nanoseconds) of an entry's time (EventTime or its ExtType, int or float)."""
    return time_parts(value)


def format_date(value: Any, date_format: str) -> Any:
    """The event time as Fluent Bit's ``json_date_format`` renders it."""
    seconds, nanos = split_time(value)
    if date_format == "double":
        return seconds + nanos / 1e9
    if date_format == "epoch":
        return seconds
    if date_format == "epoch_ms":
        return seconds * 1000 + nanos // 1_000_000
    stamp = _dt.datetime.fromtimestamp(seconds, _dt.UTC)
    if date_format == "iso8601":
        return stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1000:06d}Z"
    if date_format == "java_sql_timestamp":
        return stamp.strftime("%Y-%m-%d %H:%M:%S") + f".{nanos // 1000:06d}"
    raise ValueError(f"unknown date format {date_format!r}; expected one of {DATE_FORMATS}")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, EventTime):
        return obj.to_float()
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj).decode("utf-8", "surrogateescape")
    if isinstance(obj, msgpack.ExtType):
        if obj.code == 0 and len(obj.data) == 8:  # an EventTime decoded without ext_hook
            return event_time(obj).to_float()
        return obj.data.decode("latin-1")
    raise TypeError(f"cannot serialize {type(obj).__name__} to JSON")


def _fallback_key(key: Any) -> Any:
    if isinstance(key, str | int | float | bool) or key is None:
        return key
    if isinstance(key, bytes):
        return key.decode("utf-8", "surrogateescape")
    return str(key)


def _fallback_clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {_fallback_key(k): _fallback_clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_fallback_clean(v) for v in obj]
    return obj


_dumps = orjson.dumps


def to_json(obj: Any) -> bytes:
    """Compact JSON of a decoded value; surrogate-escaped strings become raw bytes."""
    try:
        return orjson.dumps(obj, default=_json_default, option=_ORJSON_OPTS)
    except (TypeError, orjson.JSONEncodeError):
        text = json.dumps(
            _fallback_clean(obj),
            default=_json_default,
            ensure_ascii=False,
            separators=(",", ":"),
        )
        try:
            return text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return text.encode("utf-8", "backslashreplace")


def with_date(time: Any, record: Any, date_key: str | None, date_format: str) -> Any:
    """The record with the time put first under ``date_key`` (non-maps become ``{"log": x}``)."""
    body = record if isinstance(record, dict) else {"log": record}
    if not date_key:
        return body
    out = {date_key: format_date(time, date_format)}
    for key, value in body.items():
        if key != date_key:
            out[key] = value
    return out


class DatedJson:
    """JSON objects of a chunk's records with the time first under ``date_key``.

    The fast path (:mod:`relaybit.plugins.outputs.fastjson`): the chunk decoded
    in one call, each record laid behind its date (formatted once per distinct
    time) and the whole body written by one ``encode``/``encode_lines``.  A
    chunk the fast path does not take is decoded once without per-value
    callbacks (:func:`unpack_chunk`) and written record by record
    (:meth:`objects`): the same records, only slower.
    """

    _LIMIT = 4096  # distinct times kept

    def __init__(self, date_key: str | None, date_format: str) -> None:
        if date_format not in DATE_FORMATS:
            raise ValueError(f"unknown date format {date_format!r}; expected one of {DATE_FORMATS}")
        self.date_key = date_key or None
        self.date_format = date_format
        self._key_json = _dumps(self.date_key) if self.date_key else b""
        self._prefixes: dict[Any, bytes] = {}
        self._dates: dict[Any, Any] = {}

    def _prefix(self, time: Any) -> bytes:
        if len(self._prefixes) >= self._LIMIT:
            self._prefixes.clear()
        value = format_date(time, self.date_format)
        prefix = self._prefixes[time] = b"{" + self._key_json + b":" + to_json(value) + b","
        return prefix

    def _date(self, key: Any, time: Any) -> Any:
        if len(self._dates) >= self._LIMIT:
            self._dates.clear()
        value = self._dates[key] = format_date(fastjson.plain_time(time), self.date_format)
        return value

    def lines(self, entries: list[tuple[Any, dict[str, Any]]]) -> bytes:
        """NDJSON of :func:`fastjson.decode_maps` entries, date first, in one ``encode_lines``.

        A run of one time (tail stamps a read batch once) gets its date by one
        comprehension; runs where a record holds ``date_key`` go through :meth:`dicts`.
        """
        key = self.date_key
        if key is None:
            return fastjson.JSON.encode_lines([record for _, record in entries])
        out: list[Any] = []
        for time, records in fastjson.runs(entries):
            if key in records[0] or any(map(contains, records, repeat(key))):
                out += self.dicts([(time, r) for r in records])
                continue
            tkey = fastjson.time_key(time)
            value = self._dates.get(tkey)
            if value is None:
                value = self._date(tkey, time)
            out += [{key: value, **r} for r in records]
        return fastjson.JSON.encode_lines(out)

    def dicts(self, entries: list[tuple[Any, dict[str, Any]]]) -> list[Any]:
        """The records of :func:`fastjson.decode_maps` with the date first, ready to encode."""
        key = self.date_key
        if key is None:
            return [record for _, record in entries]
        out: list[Any] = []
        append = out.append
        dates = self._dates
        time_key = fastjson.time_key
        for time, record in entries:
            tkey = time_key(time)
            value = dates.get(tkey)
            if value is None:
                value = self._date(tkey, time)
            if key in record:
                obj = {key: value}
                obj.update((k, v) for k, v in record.items() if k != key)
            else:
                obj = {key: value}
                obj.update(record)
            append(obj)
        return out

    def objects(self, items: list[list[Any]]) -> list[bytes]:
        """One JSON object per entry (``unpack_chunk`` items), in order."""
        out: list[bytes] = []
        append = out.append
        dumps = _dumps
        default = _json_default
        opts = _ORJSON_OPTS
        key = self.date_key
        prefixes = self._prefixes
        for item in items:
            time = item[0]
            if type(time) is list:
                time = time[0] if time else 0
            record = item[1]
            if type(record) is dict and (key is None or key not in record):
                try:
                    data = dumps(record, default=default, option=opts)
                except (TypeError, orjson.JSONEncodeError):
                    data = to_json(record)
                if key is None:
                    append(data)
                    continue
                try:
                    prefix = prefixes.get(time) or self._prefix(time)
                except TypeError:  # a malformed, unhashable time
                    prefix = self._prefix(0)
                append(prefix + data[1:] if len(data) > 2 else prefix[:-1] + b"}")
            else:
                append(to_json(with_date(event_time(time), record, key, self.date_format)))
        return out


def format_records(
    chunk_data: bytes,
    tag: str,
    fmt: str,
    *,
    date_key: str | None = "date",
    date_format: str = "double",
) -> bytes:
    """Format a chunk's entries as ``fmt``; raises ValueError for an unknown format.

    ``tag`` is accepted for formats that carry it; the JSON formats do not.
    ``date_key`` None (or ``""``) leaves the time out, as ``json_date_key false``.
    """
    del tag  # none of these formats carries the tag
    if date_format not in DATE_FORMATS:
        raise ValueError(f"unknown date format {date_format!r}; expected one of {DATE_FORMATS}")
    if fmt == "msgpack":
        return bytes(chunk_data)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return JsonFormatter(fmt, date_key, date_format).format(chunk_data)


class JsonFormatter:
    """``json``, ``json_lines``/``json_stream`` or ``plain`` bodies; keep one per output
    (it caches the date of each distinct time)."""

    def __init__(
        self, fmt: str, date_key: str | None = "date", date_format: str = "double"
    ) -> None:
        if fmt not in ("json", "json_lines", "json_stream", "plain"):
            raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
        self.fmt = fmt
        self._dated = DatedJson(None if fmt == "plain" else date_key, date_format)

    def format(self, chunk_data: bytes, count: int | None = None) -> bytes:
        """The body of one chunk (``count``: the entries it says it holds)."""
        with gc_paused():
            return self._format(chunk_data, count)

    def _format(self, chunk_data: bytes, count: int | None) -> bytes:
        entries = fastjson.decode_maps(chunk_data, count)
        if entries is not None:
            lines = self._dated.lines(entries)
            if self.fmt == "json":  # no raw newline inside JSON text: they end objects
                return b"[" + lines[:-1].replace(b"\n", b",") + b"]"
            return lines
        items = unpack_chunk(chunk_data)
        if self.fmt == "plain":
            return b"".join([_plain(item[1]) for item in items])
        objects = self._dated.objects(items)
        if self.fmt == "json":
            return b"[" + b",".join(objects) + b"]"
        if not objects:
            return b""
        return b"\n".join(objects) + b"\n"


def _plain(record: Any) -> bytes:
    return to_json(record) + b"\n"


def date_key_option(value: str | None) -> str | None:
    """``json_date_key`` as Fluent Bit reads it: ``false``/``off`` disables the key."""
    if value is None or value.strip().lower() in ("false", "off", "no", ""):
        return None
    return value


# --- Fluent Bit's msgpack_object_print, used by stdout (msgpack) and file (csv, ltsv) ---


def print_value(obj: Any) -> str:
    """A value as msgpack-c's ``msgpack_object_print`` renders it (``{"k"=>"v"}``)."""
    if obj is None:
        return "nil"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if isinstance(obj, int):
        return str(obj)
    if isinstance(obj, float):
        return f"{obj:f}"
    if isinstance(obj, str):
        return '"' + obj + '"'
    if isinstance(obj, bytes):
        return '"' + obj.decode("utf-8", "surrogateescape") + '"'
    if isinstance(obj, EventTime):
        return f"{obj.seconds}.{obj.nanoseconds:09d}"
    if isinstance(obj, dict):
        return "{" + ", ".join(f"{print_value(k)}=>{print_value(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, list | tuple):
        return "[" + ", ".join(print_value(v) for v in obj) + "]"
    return repr(obj)


def encode_text(text: str) -> bytes:
    """Text back to bytes, surrogate-escaped bytes restored."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace")


def print_time(time: Any) -> str:
    """``seconds.nanoseconds`` with nine digits, as Fluent Bit prints event times."""
    seconds, nanos = split_time(time)
    return f"{seconds}.{nanos:09d}"


def format_human(chunk_data: bytes, tag: str) -> bytes:
    """out_stdout's default print: ``[N] tag: [[time, {}], {"k"=>"v"}]`` per record."""
    out = []
    for index, (time, record) in enumerate(iter_entries(chunk_data)):
        out.append(f"[{index}] {tag}: [[{print_time(time)}, {{}}], {print_value(record)}]\n")
    return encode_text("".join(out))

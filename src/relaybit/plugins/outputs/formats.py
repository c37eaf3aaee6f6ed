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
from collections.abc import Iterable
from typing import Any

import msgpack
import orjson

from relaybit.codec.msgpack import EventTime, iter_entries

FORMATS = ("json", "json_lines", "json_stream", "plain", "msgpack")
DATE_FORMATS = ("double", "epoch", "epoch_ms", "iso8601", "java_sql_timestamp")

_ORJSON_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS


def split_time(value: Any) -> tuple[int, int]:
    """(seconds, nanoseconds) of an entry's time (EventTime, int or float)."""
    if isinstance(value, EventTime):
        return value.seconds, value.nanoseconds
    if isinstance(value, int):
        return value, 0
    if isinstance(value, float):
        seconds = int(value)
        return seconds, round((value - seconds) * 1e9) % 1_000_000_000
    return 0, 0


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


def _objects(
    entries: Iterable[tuple[Any, Any]], date_key: str | None, date_format: str
) -> list[bytes]:
    return [to_json(with_date(t, r, date_key, date_format)) for t, r in entries]


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
    entries = iter_entries(chunk_data)
    if fmt == "json":
        return b"[" + b",".join(_objects(entries, date_key, date_format)) + b"]"
    if fmt in ("json_lines", "json_stream"):
        lines = _objects(entries, date_key, date_format)
        return b"".join(line + b"\n" for line in lines)
    if fmt == "plain":
        return b"".join(to_json(r) + b"\n" for _, r in entries)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


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

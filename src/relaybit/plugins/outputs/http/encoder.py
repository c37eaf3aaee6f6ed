"""Request bodies of the ``http`` output: json, json_lines, json_stream, msgpack, gelf. Pure.

The JSON formats and msgpack come from :mod:`relaybit.plugins.outputs.formats`;
GELF (Graylog Extended Log Format 1.1, one message per line) is built here as
Fluent Bit's ``flb_msgpack_to_gelf`` does: the well-known fields from the
configured keys, every other field prefixed ``_`` with nested maps flattened.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from typing import Any

from relaybit.codec.msgpack import iter_entries
from relaybit.plugins.outputs.formats import JsonFormatter, split_time, to_json

CONTENT_TYPES = {
    "json": "application/json",
    "json_stream": "application/json",
    "gelf": "application/json",
    "json_lines": "application/x-ndjson",
    "msgpack": "application/msgpack",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class GelfKeys:
    """Record keys that feed GELF's well-known fields (None: the field's own name)."""

    timestamp: str | None = None
    host: str | None = None
    short_message: str | None = None
    full_message: str | None = None
    level: str | None = None


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}_{key}", inner, out)
    elif isinstance(value, list | tuple):
        out[prefix] = to_json(list(value)).decode("utf-8", "replace")
    else:
        out[prefix] = value


def gelf_message(time: Any, record: Any, keys: GelfKeys) -> dict[str, Any]:
    """One GELF 1.1 message of a record.

    ``short_message`` is mandatory in GELF: when the record lacks it, relaybit
    uses ``message`` or ``log``, else the record as JSON (Fluent Bit drops the
    record with an error).
    """
    body = dict(record) if isinstance(record, dict) else {"log": record}
    seconds, nanos = split_time(time)
    msg: dict[str, Any] = {"version": "1.1"}
    taken: set[str] = set()

    def pick(field: str, key: str | None) -> Any:
        name = key or field
        if name in body:
            taken.add(name)
            return body[name]
        return None

    host = pick("host", keys.host)
    msg["host"] = str(host) if host is not None else "unknown"
    short = pick("short_message", keys.short_message)
    if short is None:
        for name in ("message", "log"):
            if name in body:
                short = body[name]
                taken.add(name)
                break
    if short is None:
        short = to_json(body).decode("utf-8", "replace")
    msg["short_message"] = short if isinstance(short, str) else to_json(short).decode()
    full = pick("full_message", keys.full_message)
    if full is not None:
        msg["full_message"] = full if isinstance(full, str) else to_json(full).decode()
    stamp = pick("timestamp", keys.timestamp)
    msg["timestamp"] = (
        float(stamp) if isinstance(stamp, int | float) else round(seconds + nanos / 1e9, 3)
    )
    level = pick("level", keys.level)
    if level is not None:
        try:
            msg["level"] = int(level)
        except (TypeError, ValueError):
            msg["_level"] = level
    for key, value in body.items():
        if key in taken:
            continue
        name = str(key)
        if name == "id":  # reserved by GELF
            name = "id_"
        _flatten(name if name.startswith("_") else "_" + name, value, msg)
    return msg


def encode_gelf(chunk_data: bytes, keys: GelfKeys) -> bytes:
    """GELF messages of a chunk, one JSON object per line."""
    return b"".join(to_json(gelf_message(t, r, keys)) + b"\n" for t, r in iter_entries(chunk_data))


class BodyEncoder:
    """Request bodies of one output's format; keep one per output (it caches dates)."""

    def __init__(
        self,
        fmt: str,
        *,
        date_key: str | None,
        date_format: str,
        gelf: GelfKeys | None = None,
        gzip: bool = False,
    ) -> None:
        """``gzip``: :meth:`encode_chunk` compresses the body (``compress gzip``)."""
        if fmt not in CONTENT_TYPES:
            raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(CONTENT_TYPES)}")
        self.fmt = fmt
        self.gzip = gzip
        self._gelf = gelf or GelfKeys()
        self._json = (
            JsonFormatter(fmt, date_key, date_format) if fmt not in ("gelf", "msgpack") else None
        )

    def encode(self, chunk_data: bytes, count: int | None = None) -> bytes:
        """The request body of one chunk (``count``: the entries it says it holds)."""
        if self._json is not None:
            return self._json.format(chunk_data, count)
        if self.fmt == "gelf":
            return encode_gelf(chunk_data, self._gelf)
        return bytes(chunk_data)

    def encode_chunk(self, data: bytes, count: int, tag: str, now: float) -> tuple[bytes, int]:
        """The request body of a chunk, gzipped with ``gzip``, and its ``count`` (the job
        of an encoder process, :mod:`relaybit.plugins.outputs.encoder_pool`)."""
        del tag, now  # no body format carries them
        body = self.encode(data, count)
        return (gzip_body(body) if self.gzip else body), count


def encode_body(
    chunk_data: bytes,
    tag: str,
    fmt: str,
    *,
    date_key: str | None,
    date_format: str,
    gelf: GelfKeys | None = None,
) -> bytes:
    """The request body of one chunk in ``fmt``."""
    del tag  # no format of the http output carries the tag in its body
    return BodyEncoder(fmt, date_key=date_key, date_format=date_format, gelf=gelf).encode(
        chunk_data
    )


def gzip_body(body: bytes) -> bytes:
    """gzip-compressed body (``compress gzip``)."""
    return gzip.compress(body, compresslevel=6)

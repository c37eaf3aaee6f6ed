"""Bulk API requests and responses, item by item. Pure (no I/O).

:func:`build_item` turns one record into its action and source lines;
:func:`read_bulk_response` sorts the response items into delivered, retryable
(429 ``es_rejected_execution_exception``, 5xx) and failed for good (400 mapping
errors ...).  A 409 on ``create`` means the document is already there (a
re-send with ``generate_id`` or ``id_key``): it counts as delivered.
:class:`PendingItems` remembers, per chunk, which records still have to go, so
records that landed are never sent again, across nodes and engine retries.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import re
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import contains
from typing import Any

import msgspec
import orjson

from relaybit.codec.msgpack import iter_entries
from relaybit.codec.records import gc_paused
from relaybit.plugins.outputs import fastjson
from relaybit.plugins.outputs.es.settings import EsSettings
from relaybit.plugins.outputs.formats import split_time, to_json
from relaybit.plugins.outputs.http.encoder import gzip_body

RETRYABLE = frozenset({429})


def is_retryable(status: int) -> bool:
    """Item statuses worth sending again: 429 and 5xx."""
    return status in RETRYABLE or status >= 500


def _replace_dots(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k).replace(".", "_"): _replace_dots(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_dots(v) for v in value]
    return value


def format_time(seconds: int, nanos: int, fmt: str, with_nanos: bool) -> str:
    """``time_key_format`` in UTC plus ``.mmmZ`` (or ``.nnnnnnnnnZ``), as Fluent Bit."""
    stamp = _dt.datetime.fromtimestamp(seconds, _dt.UTC).strftime(fmt)
    return stamp + (f".{nanos:09d}Z" if with_nanos else f".{nanos // 1_000_000:03d}Z")


def index_name(settings: EsSettings, record: dict[str, Any], seconds: int, now: float) -> str:
    """The index of one record: ``index``, or the logstash daily index."""
    if not settings.logstash_format:
        return settings.index
    prefix = settings.logstash_prefix
    if settings.logstash_prefix_key:
        value = record.get(settings.logstash_prefix_key.lstrip("$"))
        if isinstance(value, str) and value:
            prefix = value
    when = int(now) if settings.current_time_index else seconds
    day = _dt.datetime.fromtimestamp(when, _dt.UTC).strftime(settings.logstash_dateformat)
    return f"{prefix}{settings.logstash_prefix_separator}{day}"


def generated_id(time: Any, record: Any) -> str:
    """A stable _id of one entry (same record, same id: re-sends are caught as 409)."""
    seconds, nanos = split_time(time)
    digest = hashlib.blake2b(to_json([seconds, nanos, record]), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest))


def build_item(time: Any, record: Any, tag: str, settings: EsSettings, now: float) -> bytes:
    """The NDJSON action line and source line of one record."""
    body: dict[str, Any] = dict(record) if isinstance(record, dict) else {"log": record}
    seconds, nanos = split_time(time)
    source: dict[str, Any] = {}
    if settings.time_key not in body:
        source[settings.time_key] = format_time(
            seconds, nanos, settings.time_key_format, settings.time_key_nanos
        )
    source.update(body)
    if settings.include_tag_key:
        source[settings.tag_key] = tag
    if settings.replace_dots:
        source = _replace_dots(source)
    meta: dict[str, Any] = {"_index": index_name(settings, body, seconds, now)}
    if not settings.suppress_type_name:
        meta["_type"] = settings.type
    doc_id: str | None = None
    if settings.id_key and body.get(settings.id_key) is not None:
        doc_id = str(body[settings.id_key])
    elif settings.generate_id:
        doc_id = generated_id(time, body)
    if doc_id is not None:
        meta["_id"] = doc_id
    op = settings.write_operation
    if op in ("update", "upsert"):
        payload: dict[str, Any] = {"doc": source}
        if op == "upsert":
            payload["doc_as_upsert"] = True
        return to_json({"update": meta}) + b"\n" + to_json(payload) + b"\n"
    return to_json({op: meta}) + b"\n" + to_json(source) + b"\n"


def encode_items(chunk_data: bytes, tag: str, settings: EsSettings, now: float) -> list[bytes]:
    """The bulk items (action and source lines) of every entry of a chunk, in order."""
    entries = decode_chunk(chunk_data)
    encoder = BulkEncoder(settings)
    body = encoder.encode(entries, range(len(entries)), tag, now)
    # split back into items: every item is two lines
    lines = body.split(b"\n")[:-1]
    return [lines[i] + b"\n" + lines[i + 1] + b"\n" for i in range(0, len(lines), 2)]


@dataclass(slots=True)
class Entries:
    """A chunk's entries decoded once: ``fast`` from :func:`fastjson.decode_maps`, else
    ``(time, record)`` pairs of :func:`iter_entries` for the general path."""

    items: list[tuple[Any, Any]]
    fast: bool

    def __len__(self) -> int:
        return len(self.items)


def decode_chunk(chunk_data: bytes, count: int | None = None) -> Entries:
    """The entries of a chunk for :class:`BulkEncoder` (fast path when it can take them);
    ``count``: the entries the chunk says it holds."""
    fast = fastjson.decode_maps(chunk_data, count)
    if fast is not None:
        return Entries(fast, True)
    return Entries(list(iter_entries(chunk_data)), False)


#: a float msgspec writes ``1e20`` where orjson writes ``1e+20`` (or such text in a string)
_POSITIVE_EXPONENT = re.compile(rb"\de\d")
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")


def _all(indices: Any, total: int) -> bool:
    """True when ``indices`` are every entry in order (the first send of a chunk)."""
    return isinstance(indices, range) and indices == range(total)


def _uuid(digest: bytes) -> str:
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class BulkEncoder:
    """Bulk request bodies of one node's settings; keep one per settings (it caches).

    The fast path: ``@timestamp`` once per distinct time, index names once per
    second (logstash) and prefix, action lines as prebuilt ``Raw`` JSON, and
    the whole body written by one ``encode_lines`` call.  ``replace_dots`` and
    chunks the fast path does not take go record by record through
    :func:`build_item`: the same bytes, only slower.
    """

    _LIMIT = 4096  # cached times, days and actions

    def __init__(self, settings: EsSettings, *, gzip: bool = False) -> None:
        """``gzip``: :meth:`encode_chunk` compresses the body (``compress gzip``)."""
        self.settings = settings
        self.gzip = gzip
        self._times: dict[Any, tuple[str, int, Any, str]] = {}
        self._days: dict[int, str] = {}
        self._actions: dict[str, Any] = {}
        self._action_heads: dict[str, dict[str, Any]] = {}
        op = settings.write_operation
        self._op = "update" if op in ("update", "upsert") else op
        self._upsert = op == "upsert"
        self._wrap = op in ("update", "upsert")
        self._with_id = bool(settings.id_key or settings.generate_id)
        self._prefix_key = (settings.logstash_prefix_key or "").lstrip("$") or None

    def _day(self, when: int) -> str:
        day = self._days.get(when)
        if day is None:
            if len(self._days) >= self._LIMIT:
                self._days.clear()
            fmt = self.settings.logstash_dateformat
            day = self._days[when] = _dt.datetime.fromtimestamp(when, _dt.UTC).strftime(fmt)
        return day

    def _meta(self, index: str) -> dict[str, Any]:
        meta: dict[str, Any] = {"_index": index}
        if not self.settings.suppress_type_name:
            meta["_type"] = self.settings.type
        return meta

    def _action(self, index: str) -> Any:
        action = self._actions.get(index)
        if action is None:
            if len(self._actions) >= self._LIMIT:
                self._actions.clear()
            action = self._actions[index] = fastjson.Raw(to_json({self._op: self._meta(index)}))
        return action

    def encode(self, entries: Entries, indices: Any, tag: str, now: float) -> bytes:
        """The NDJSON body of the entries at ``indices`` (in that order)."""
        s = self.settings
        if not entries.fast or s.replace_dots:
            items = entries.items
            plain = fastjson.plain_time
            return b"".join(
                [build_item(plain(items[i][0]), items[i][1], tag, s, now) for i in indices]
            )
        return self._encode_fast(entries.items, indices, tag, now)

    def encode_chunk(self, data: bytes, count: int, tag: str, now: float) -> tuple[bytes, int]:
        """The body of every entry of a chunk (gzipped with ``gzip``), and how many entries
        it holds (the job of an encoder process, :mod:`relaybit.plugins.outputs.encoder_pool`)."""
        with gc_paused():
            entries = decode_chunk(data, count)
            body = self.encode(entries, range(len(entries)), tag, now)
        return (gzip_body(body) if self.gzip else body), len(entries)

    def _time(self, key: Any, time: Any) -> tuple[str, int, Any, str]:
        """@timestamp, seconds and, for a logstash index of the record's time and a fixed
        prefix, the action and index of a time."""
        if len(self._times) >= self._LIMIT:
            self._times.clear()
        seconds, nanos = split_time(fastjson.plain_time(time))
        s = self.settings
        stamp = format_time(seconds, nanos, s.time_key_format, s.time_key_nanos)
        action = None
        index = ""
        if s.logstash_format and not s.current_time_index and self._prefix_key is None:
            index = f"{s.logstash_prefix}{s.logstash_prefix_separator}{self._day(seconds)}"
            action = self._action(index)
        info = self._times[key] = (stamp, seconds, action, index)
        return info

    def _encode_fast(
        self, items: list[tuple[Any, Any]], indices: Any, tag: str, now: float
    ) -> bytes:
        s = self.settings
        out: list[Any] = []
        append = out.append
        times = self._times
        time_key_of = fastjson.time_key
        ext = fastjson.Ext
        time_key = s.time_key
        tag_key = s.tag_key if s.include_tag_key else None
        logstash = s.logstash_format
        prefix_key = self._prefix_key
        now_day = self._day(int(now)) if logstash and s.current_time_index else None
        sep = s.logstash_prefix_separator
        fixed_action = None if logstash else self._action(s.index)
        with_id = self._with_id
        wrap = self._wrap
        if tag_key is None and not with_id and not wrap and prefix_key is None and now_day is None:
            # the usual case: a run of one time (tail stamps a read batch once) shares its
            # @timestamp and index; records get theirs by one comprehension
            chosen = items if _all(indices, len(items)) else [items[i] for i in indices]
            for time, records in fastjson.runs(chosen):
                tkey = time.data if type(time) is ext and not time.code else time_key_of(time)
                info = times.get(tkey)
                if info is None:
                    info = self._time(tkey, time)
                action = fixed_action if fixed_action is not None else info[2]
                n = len(records)
                pairs: list[Any] = [action] * (2 * n)
                if time_key in records[0] or any(map(contains, records, repeat(time_key))):
                    pairs[1::2] = [
                        dict(r) if time_key in r else {time_key: info[0], **r} for r in records
                    ]
                else:
                    stamp = info[0]
                    pairs[1::2] = [{time_key: stamp, **r} for r in records]
                out += pairs
            return fastjson.JSON.encode_lines(out)
        ids = self._generated_ids(items, indices) if s.generate_id else None
        for n, i in enumerate(indices):
            time, record = items[i]
            tkey = time.data if type(time) is ext and not time.code else time_key_of(time)
            info = times.get(tkey)
            if info is None:
                info = self._time(tkey, time)
            if time_key in record:
                source = dict(record)
            else:
                source = {time_key: info[0]}
                source.update(record)
            if tag_key is not None:
                source[tag_key] = tag
            if fixed_action is not None:
                index = s.index
                action = fixed_action
            elif info[2] is not None:
                action = info[2]
                index = info[3]
            else:
                prefix = s.logstash_prefix
                if prefix_key is not None:
                    value = record.get(prefix_key)
                    if isinstance(value, str) and value:
                        prefix = value
                day = now_day if now_day is not None else self._day(info[1])
                index = f"{prefix}{sep}{day}"
                action = self._action(index)
            if with_id:
                doc_id = self._doc_id(record, ids[n] if ids is not None else None)
                if doc_id is not None:
                    meta = self._meta(index)
                    meta["_id"] = doc_id
                    action = {self._op: meta}
            append(action)
            if wrap:
                payload: dict[str, Any] = {"doc": source}
                if self._upsert:
                    payload["doc_as_upsert"] = True
                append(payload)
            else:
                append(source)
        return fastjson.JSON.encode_lines(out)

    def _doc_id(self, record: dict[str, Any], generated: str | None) -> str | None:
        key = self.settings.id_key
        if key:
            value = record.get(key)
            if value is not None:
                return str(value)
        return generated

    def _generated_ids(self, items: list[tuple[Any, Any]], indices: Any) -> list[str]:
        """generate_id's ids of the chosen entries, in a batch: the JSON of every
        ``[seconds, nanoseconds, record]`` in one ``encode_lines`` (the bytes
        :func:`generated_id` hashes, but for a float with a positive exponent,
        which orjson writes ``1e+20``: those lines are written by :func:`to_json`)."""
        rows = []
        parts: dict[Any, tuple[int, int]] = {}
        for i in indices:
            time, record = items[i]
            kind = type(time)
            key = time.data if kind is fastjson.Ext and not time.code else fastjson.time_key(time)
            pair = parts.get(key)
            if pair is None:
                pair = parts[key] = split_time(fastjson.plain_time(time))
            rows.append([pair[0], pair[1], record])
        body = fastjson.JSON.encode_lines(rows)
        lines = body.split(b"\n")
        lines.pop()
        blake = hashlib.blake2b
        if b"0e0" not in body.translate(_DIGITS_TO_ZERO):  # no exponent anywhere: as orjson
            return [_uuid(blake(line, digest_size=16).digest()) for line in lines]
        search = _POSITIVE_EXPONENT.search
        return [
            _uuid(blake(to_json(row) if search(line) else line, digest_size=16).digest())
            for line, row in zip(lines, rows, strict=True)
        ]


@dataclass(frozen=True, slots=True)
class ItemError:
    """A failed item: the record's index in its chunk, the status and the reason."""

    index: int
    status: int
    reason: str


@dataclass(slots=True)
class BulkOutcome:
    """What one bulk response says of the records sent."""

    delivered: list[int] = field(default_factory=list)
    retryable: list[ItemError] = field(default_factory=list)
    failed: list[ItemError] = field(default_factory=list)
    conflicts: int = 0


def _reason(item: dict[str, Any]) -> str:
    error = item.get("error")
    if isinstance(error, dict):
        kind = error.get("type", "error")
        reason = error.get("reason", "")
        caused = error.get("caused_by")
        if isinstance(caused, dict) and caused.get("reason"):
            reason = f"{reason} (caused by {caused.get('type')}: {caused.get('reason')})"
        return f"{kind}: {reason}"
    return str(error or item.get("result") or "unknown")


def read_bulk_response(body: bytes, sent: Sequence[int]) -> BulkOutcome:
    """Sort the items of a bulk response; ``sent`` are the chunk indices, in request order.

    Raises ValueError when the response is not a bulk response for these items
    (then nothing is known of them and the whole request counts as failed).
    """
    try:
        head = _BULK_HEAD.decode(body)
    except msgspec.DecodeError:
        pass  # not the usual shape: the general reading below says what is wrong
    else:
        if head.errors is False and len(head.items) == len(sent):
            # as Elasticsearch's clients and Fluent Bit: no error, every item landed
            return BulkOutcome(delivered=list(sent))
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"bulk response is not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise ValueError("bulk response has no 'items'")
    items = doc["items"]
    if len(items) != len(sent):
        raise ValueError(f"bulk response has {len(items)} items for {len(sent)} sent")
    outcome = BulkOutcome()
    for index, wrapper in zip(sent, items, strict=True):
        item: Any = next(iter(wrapper.values()), {}) if isinstance(wrapper, dict) else {}
        op = next(iter(wrapper), "") if isinstance(wrapper, dict) else ""
        status = int(item.get("status", 0)) if isinstance(item, dict) else 0
        if 200 <= status < 300:
            outcome.delivered.append(index)
        elif status == 409 and op == "create":
            outcome.delivered.append(index)
            outcome.conflicts += 1
        elif is_retryable(status) or status == 0:
            outcome.retryable.append(ItemError(index, status, _reason(item)))
        else:
            outcome.failed.append(ItemError(index, status, _reason(item)))
    return outcome


class _BulkHead(msgspec.Struct):
    """What a bulk response says at its top (the items are checked as JSON, not read)."""

    errors: bool | None = None
    items: list[msgspec.Raw] = msgspec.field(default_factory=list)


_BULK_HEAD = msgspec.json.Decoder(_BulkHead)


@dataclass(slots=True)
class ChunkState:
    """The records of one chunk that still have to be delivered.

    ``entries`` are the decoded records while a flush needs them; between
    flushes only the indices (``pending``) are kept (see
    :meth:`PendingItems.release`).  ``body`` is the whole chunk's bulk body for
    one node setting, written as soon as the chunk was decoded (then
    ``entries`` may be let go: a re-send of some items decodes it again).
    """

    entries: Entries | None
    pending: set[int]
    failed: int = 0
    attempts: int = 0
    total: int = 0
    body: tuple[EsSettings, bytes] | None = None
    #: ``body`` is gzip-compressed (``compress gzip``: written so once, sent as it is)
    gzipped: bool = False

    @property
    def progressed(self) -> bool:
        """True once some record was delivered or refused for good."""
        return len(self.pending) < self.total

    def __repr__(self) -> str:
        return f"<ChunkState pending={len(self.pending)}/{self.total} failed={self.failed}>"


class PendingItems:
    """Per-chunk state across engine retries, keyed by ``chunk.id`` (bounded, oldest out)."""

    def __init__(self, limit: int = 4096) -> None:
        self._states: OrderedDict[str, ChunkState] = OrderedDict()
        self._limit = limit

    def get(self, chunk_id: str, load: Callable[[], Entries]) -> ChunkState:
        """The chunk's state; ``load()`` decodes its entries the first time."""
        state = self._states.get(chunk_id)
        if state is None:
            entries = load()
            n = len(entries)
            state = ChunkState(entries=entries, pending=set(range(n)), total=n)
            self._states[chunk_id] = state
            while len(self._states) > self._limit:
                self._states.popitem(last=False)
        elif state.entries is None and state.total:
            state.entries = load()
        return state

    def release(self, chunk_id: str) -> None:
        """A flush ended without finishing the chunk: forget it when nothing of it
        landed (a retry starts over anyway), else keep only its pending indices."""
        state = self._states.get(chunk_id)
        if state is None:
            return
        if not state.progressed:
            del self._states[chunk_id]
        else:
            state.entries = None

    def add(self, chunk_id: str, state: ChunkState) -> None:
        """A chunk's state built elsewhere (its body written by an encoder process)."""
        self._states[chunk_id] = state
        while len(self._states) > self._limit:
            self._states.popitem(last=False)

    def known(self, chunk_id: str) -> bool:
        return chunk_id in self._states

    def done(self, chunk_id: str) -> None:
        self._states.pop(chunk_id, None)

    def __len__(self) -> int:
        return len(self._states)

    def __repr__(self) -> str:
        return f"<PendingItems chunks={len(self._states)}>"

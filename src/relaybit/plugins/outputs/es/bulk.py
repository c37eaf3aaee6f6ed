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
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from relaybit.codec.msgpack import iter_entries
from relaybit.plugins.outputs.es.options import EsSettings
from relaybit.plugins.outputs.formats import split_time, to_json

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
    return [build_item(t, r, tag, settings, now) for t, r in iter_entries(chunk_data)]


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


def read_bulk_response(body: bytes, sent: list[int]) -> BulkOutcome:
    """Sort the items of a bulk response; ``sent`` are the chunk indices, in request order.

    Raises ValueError when the response is not a bulk response for these items
    (then nothing is known of them and the whole request counts as failed).
    """
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


@dataclass(slots=True)
class ChunkState:
    """The records of one chunk that still have to be delivered.

    ``entries`` are the decoded records while a flush runs; between flushes only
    the indices (``pending``) are kept (see :meth:`PendingItems.release`).
    """

    entries: list[tuple[Any, Any]]
    pending: set[int]
    failed: int = 0
    attempts: int = 0
    total: int = 0

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

    def get(self, chunk_id: str, load: Callable[[], list[tuple[Any, Any]]]) -> ChunkState:
        """The chunk's state; ``load()`` decodes its entries the first time."""
        state = self._states.get(chunk_id)
        if state is None:
            entries = load()
            n = len(entries)
            state = ChunkState(entries=entries, pending=set(range(n)), total=n)
            self._states[chunk_id] = state
            while len(self._states) > self._limit:
                self._states.popitem(last=False)
        elif not state.entries and state.total:
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
            state.entries = []

    def known(self, chunk_id: str) -> bool:
        return chunk_id in self._states

    def done(self, chunk_id: str) -> None:
        self._states.pop(chunk_id, None)

    def __len__(self) -> int:
        return len(self._states)

    def __repr__(self) -> str:
        return f"<PendingItems chunks={len(self._states)}>"

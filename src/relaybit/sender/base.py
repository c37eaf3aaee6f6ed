"""What :class:`Sender` and :class:`AsyncSender` share: arguments, packing, counters."""

from __future__ import annotations

import datetime
import logging
import os
import ssl
import threading
import time as time_module
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import msgpack

from relaybit.codec.msgpack import EventTime
from relaybit.sender.buffer import Added, RecordBuffer
from relaybit.sender.config import MiB, NodeAddress, OnFull, SenderConfig, build_config
from relaybit.upstream.node import NetSettings, TLSSettings, UpstreamSettings, UpstreamSpec

log = logging.getLogger("relaybit.sender")

Timestamp = EventTime | int | float | datetime.datetime | None

#: reasons a record counts as dropped after emit() accepted it
LOST_REASONS = ("retry_limit", "rejected", "close")


@dataclass(frozen=True, slots=True)
class SenderStats:
    """A snapshot of a sender's counters.

    ``emitted`` records were accepted by ``emit``; of those, ``delivered`` were
    confirmed by a node, ``buffered`` are waiting or in flight, and the rest were
    given up (``dropped_by_reason`` ``retry_limit``, ``rejected``, ``close``).
    Records refused by ``emit`` (it returned False) are counted in
    ``dropped_by_reason`` too: ``buffer_full``, ``too_large``, ``closed``,
    ``unpackable``.  ``retries`` counts flushes that no node took (the batch went
    back to the buffer).  ``upstream`` is :meth:`Upstream.status` (per-node state,
    counters, last error).
    """

    emitted: int
    delivered: int
    dropped: int
    dropped_by_reason: dict[str, int]
    retries: int
    buffered: int
    buffered_bytes: int
    undelivered: int
    last_error: str | None
    closed: bool
    upstream: dict[str, Any] = field(repr=False)

    @property
    def nodes(self) -> list[dict[str, Any]]:
        """Per-node status from the Upstream (name, state, counters, last_error ...)."""
        nodes: list[dict[str, Any]] = self.upstream.get("nodes", [])
        return nodes

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field."""
        return asdict(self)


class SenderBase:
    """Arguments, record packing and counters of both senders (not used directly).

    Where to: ``upstream`` (an upstream file or UpstreamSpec), ``nodes`` (``(host,
    port)``, ``"host:port"`` or Node; ``upstream_settings`` for balancing), or
    ``host``/``port`` (default ``localhost:24224``); one of them.  How: the
    forward output's keys ``shared_key``, ``self_hostname``, ``username``,
    ``password``, ``tls`` (bool, TLSSettings or an ``ssl.SSLContext``),
    ``require_ack`` (on), ``ack_timeout``, ``compress`` ("gzip" or "zstd"),
    ``time_as_integer``, ``net``; an upstream file's ``[NODE]`` keys override them.
    Buffering: ``buffer_limit`` bytes (in flight included), ``chunk_size`` per
    PackedForward, ``flush_interval``; when full ``on_full="drop"`` refuses the
    new record, ``"block"`` waits up to ``block_timeout``.  Retries: backoff from
    ``retry_wait`` to ``retry_max_wait``, ``retry_limit`` tries (None: while there
    is room).  ``max_in_flight`` flushes at once (one per tag), ``close_timeout``
    for ``close()`` without a timeout, ``default`` packs other types (``str``).
    """

    def __init__(
        self,
        tag_prefix: str = "app",
        host: str | None = None,
        port: int | None = None,
        *,
        nodes: Sequence[NodeAddress] | None = None,
        upstream: str | os.PathLike[str] | UpstreamSpec | None = None,
        upstream_settings: UpstreamSettings | None = None,
        shared_key: str | None = None,
        self_hostname: str = "localhost",
        username: str | None = None,
        password: str | None = None,
        tls: bool | TLSSettings | ssl.SSLContext = False,
        require_ack: bool = True,
        ack_timeout: float = 30.0,
        compress: str | None = None,
        time_as_integer: bool = False,
        net: NetSettings | None = None,
        buffer_limit: int = 64 * MiB,
        chunk_size: int = 1 * MiB,
        flush_interval: float = 0.2,
        on_full: OnFull = "drop",
        block_timeout: float = 1.0,
        retry_wait: float = 0.5,
        retry_max_wait: float = 30.0,
        retry_limit: int | None = None,
        max_in_flight: int = 4,
        close_timeout: float = 5.0,
        default: Callable[[Any], Any] | None = None,
    ) -> None:
        self.config: SenderConfig = build_config(
            tag_prefix,
            host=host,
            port=port,
            nodes=nodes,
            upstream=upstream,
            upstream_settings=upstream_settings,
            shared_key=shared_key,
            self_hostname=self_hostname,
            username=username,
            password=password,
            tls=tls,
            require_ack=require_ack,
            ack_timeout=ack_timeout,
            compress=compress,
            time_as_integer=time_as_integer,
            net=net,
            buffer_limit=buffer_limit,
            chunk_size=chunk_size,
            flush_interval=flush_interval,
            on_full=on_full,
            block_timeout=block_timeout,
            retry_wait=retry_wait,
            retry_max_wait=retry_max_wait,
            retry_limit=retry_limit,
            max_in_flight=max_in_flight,
            close_timeout=close_timeout,
            default=default,
        )
        self.tag_prefix = tag_prefix
        self.buffer = RecordBuffer(buffer_limit, chunk_size)
        self._user_default = default
        self._local = threading.local()
        self._undelivered = 0
        self._last_status: dict[str, Any] = {}
        self._last_delivery_error: str | None = None
        self._warned: set[str] = set()
        settings = self.config.spec.settings
        #: ``balance hash`` on a record key: records are queued per value of that key
        self._hash_key = (
            settings.hash_key if settings.balance == "hash" and settings.hash_key != "tag" else None
        )
        self._setup()

    def _setup(self) -> None:
        """Start what the subclass needs (the delivery thread)."""

    # -- fluent-logger's names -------------------------------------------------

    @property
    def last_error(self) -> BaseException | None:
        """The last error of ``emit`` in this thread (as fluent-logger's)."""
        error: BaseException | None = getattr(self._local, "error", None)
        return error

    @last_error.setter
    def last_error(self, error: BaseException | None) -> None:
        self._local.error = error

    def clear_last_error(self) -> None:
        """Forget this thread's last error."""
        self._local.error = None

    # -- packing ------------------------------------------------------------------

    def full_tag(self, tag: str | None) -> str:
        """``prefix.tag``; the prefix alone without a tag, the tag alone without a prefix."""
        if not tag:
            return self.tag_prefix
        return f"{self.tag_prefix}.{tag}" if self.tag_prefix else tag

    def _pack(self, record: Mapping[str, Any], time: Timestamp) -> bytes | None:
        packer: msgpack.Packer | None = getattr(self._local, "packer", None)
        if packer is None:
            packer = self._local.packer = msgpack.Packer(default=self._default, use_bin_type=True)
        try:
            data: bytes = packer.pack([_event_time(time), record])
        except (TypeError, ValueError, OverflowError) as exc:
            packer.reset()
            error = TypeError(f"record cannot be packed as msgpack: {exc} (pass default=str?)")
            self.last_error = error
            self.buffer.refuse("unpackable")
            if str(exc) not in self._warned and len(self._warned) < 100:
                self._warned.add(str(exc))
                log.warning("%s: record dropped: %s", self.config.spec.name, error)
            return None
        return data

    def balance_key(self, record: Mapping[str, Any]) -> str | None:
        """The balancing key of ``record`` (``balance hash`` on a record key), else None."""
        if self._hash_key is None:
            return None
        value = record.get(self._hash_key) if isinstance(record, Mapping) else None
        return "" if value is None else str(value)

    def _default(self, obj: Any) -> Any:
        if isinstance(obj, EventTime):
            return obj.to_ext()
        if self._user_default is not None:
            return self._user_default(obj)
        raise TypeError(f"cannot serialize {type(obj).__name__}")

    def _accepted(self, result: Added) -> bool:
        """Count a refusal; True when the record was buffered."""
        if result in (Added.BUFFERED, Added.CHUNK_FULL):
            return True
        reason = "buffer_full" if result is Added.FULL else result.value
        self.buffer.refuse(reason)
        self.last_error = BufferError(f"record dropped: {reason.replace('_', ' ')}")
        return False

    # -- counters -------------------------------------------------------------------

    def _stats(self, upstream: dict[str, Any], last_error: str | None) -> SenderStats:
        counters = self.buffer.counters
        dropped = dict(counters.dropped)
        return SenderStats(
            emitted=counters.emitted,
            delivered=counters.delivered,
            dropped=sum(dropped.values()),
            dropped_by_reason=dropped,
            retries=counters.retries,
            buffered=self.buffer.records,
            buffered_bytes=self.buffer.size,
            undelivered=self._undelivered,
            last_error=last_error,
            closed=self.buffer.closed,
            upstream=upstream,
        )


def _event_time(value: Timestamp) -> EventTime | int:
    if value is None:
        ns = time_module.time_ns()
        return EventTime(ns // 1_000_000_000, ns % 1_000_000_000)
    if isinstance(value, EventTime | int) and not isinstance(value, bool):
        return value
    if isinstance(value, datetime.datetime):
        return EventTime.from_float(value.timestamp())
    if isinstance(value, float):
        return EventTime.from_float(value)
    raise TypeError(f"time must be EventTime, int, float or datetime, not {type(value).__name__}")

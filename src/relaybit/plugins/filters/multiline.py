"""The ``multiline`` filter: join the lines of records (stack traces, split messages).

``Mode parser`` (default) feeds the ``Multiline.Key_Content`` field (default
``log``) of each record to the ``Multiline.Parser`` list (built-in ``go``,
``python``, ``java``, ``ruby``, ``docker``, ``cri`` or a
``[MULTILINE_PARSER]``) through :class:`~relaybit.multiline.MultilineStream`,
one stream per tag; a joined record keeps the other fields and time of its
first record.  ``Mode partial_message`` joins Docker's split records
(``partial_message`` ``true``, same ``partial_id``, until ``partial_last``
``true``); the joined record drops the ``partial_*`` fields.

``Buffer on`` (default) keeps a record being joined across calls; a record
completed by a later line continues through the pipeline at once, and one
still pending ``Flush_ms`` after its last line is emitted by the filter's
emitter input (``Emitter_Name``, ``Emitter_Storage.type``,
``Emitter_Mem_Buf_Limit``) under the same tag, at the start of the pipeline
(filters before this one see it again, as in Fluent Bit; this filter lets its
own emitter's records pass).  ``Buffer off`` joins only within one batch of
records.  Records whose field is missing or not text pass unchanged.
Pending lines are not flushed at shutdown before ``Flush_ms`` has passed.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any, ClassVar

from relaybit.codec.msgpack import EventTime
from relaybit.config.schema import ConfigMap, Option
from relaybit.errors import ConfigError
from relaybit.logging import counted
from relaybit.multiline import MultilineParser, MultilineStream, lookup_multiline
from relaybit.multiline.options import build_multiline_parsers
from relaybit.parsers import BUILTIN_PARSERS
from relaybit.plugins.base import AddEmitterFn, FilterPlugin, PluginContext
from relaybit.plugins.filters.emitter import EMITTER_OPTIONS, FilterEmitter

Entry = tuple[Any, Any]
PARTIAL_KEYS = ("partial_message", "partial_id", "partial_ordinal", "partial_last")


@dataclass(eq=False)
class _Joiner:
    """One tag's state: a multiline stream and the records its lines came from."""

    stream: MultilineStream | None
    origins: dict[int, Entry] = field(default_factory=dict)
    partial: dict[Any, list[Entry]] = field(default_factory=dict)
    touched: float = 0.0


def _is_true(value: Any) -> bool:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value is True or (isinstance(value, str) and value.lower() == "true")


class MultilineFilter(FilterPlugin):
    """Join multi-line records with multiline parsers, or Docker partial messages."""

    description = "Join the lines of records (multiline parsers or Docker partial messages)"
    options: ClassVar[ConfigMap] = ConfigMap(
        (
            Option(
                "multiline.parser",
                "str",
                None,
                "Comma-separated multiline parsers (built-in go, python, java, ruby, docker,"
                " cri, or a [MULTILINE_PARSER]); repeatable",
                multiple=True,
            ),
            Option("multiline.key_content", "str", "log", "Field holding the text to join"),
            Option(
                "mode",
                "str",
                "parser",
                "parser or partial_message",
                choices=("parser", "partial_message"),
            ),
            Option("buffer", "bool", True, "Keep records being joined across batches"),
            Option("flush_ms", "int", 2000, "Emit a pending record after this long", minimum=1),
            Option(
                "debug_flush",
                "bool",
                False,
                "Print each joined record to stdout",
                no_effect="joined records are not printed; use an stdout output",
            ),
            *EMITTER_OPTIONS,
        )
    )

    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        section = f"[FILTER] {ctx.name}"
        self.key = opts.str("multiline.key_content") or "log"
        self.mode = opts.str("mode").lower()
        self.buffer = opts.bool("buffer")
        self.flush_s = opts.int("flush_ms") / 1000.0
        self.parsers: list[MultilineParser] = []
        names = ",".join(str(v) for v in opts.list("multiline.parser"))
        if self.mode == "parser":
            where = opts.origin("multiline.parser") or opts.section_origin()
            if not names.strip():
                raise ConfigError(
                    "missing 'multiline.parser' (mode parser)", where, section=section
                )
            parsers = ctx.service.get("parsers") or BUILTIN_PARSERS
            defined = build_multiline_parsers(ctx.service.get("multiline_parsers") or (), parsers)
            self.parsers = lookup_multiline(names, defined, origin=where, section=section)
        self.emitter = FilterEmitter(ctx)
        self._own = False  #: True while this filter's emitter re-emits (its records pass)
        self._joiners: dict[str, _Joiner] = {}
        self._seq = itertools.count(1)
        self._timer: asyncio.TimerHandle | None = None
        self.joined = 0
        self.flushed = 0

    def bind_engine(self, add_emitter: AddEmitterFn) -> None:
        if not self.buffer:
            return
        self.emitter.bind(add_emitter)

    # --- filtering -----------------------------------------------------------------------

    def filter(self, tag: str, entries: list[Entry]) -> list[Entry]:
        if self._own:
            return entries
        now = self.ctx.clock.monotonic()
        joiner = self._joiners.get(tag) if self.buffer else None
        if joiner is None:
            joiner = _Joiner(MultilineStream(self.parsers) if self.parsers else None)
            if self.buffer:
                self._joiners[tag] = joiner
        joiner.touched = now
        out: list[Entry] = []
        for entry in entries:
            record = entry[1]
            text = record.get(self.key) if isinstance(record, dict) else None
            if not isinstance(text, str):
                out.append(entry)
            elif self.mode == "partial_message":
                out.extend(self._partial(joiner, entry, record, text))
            else:
                out.extend(self._line(joiner, entry, text, now))
        if not self.buffer:
            out.extend(self._drain(joiner))
        elif self._pending(joiner):
            self._arm()
        return out

    def _line(self, joiner: _Joiner, entry: Entry, text: str, now: float) -> list[Entry]:
        assert joiner.stream is not None
        seq = next(self._seq)
        joiner.origins[seq] = entry
        done = joiner.stream.feed(text, EventTime(seq, 0), now)
        return self._restore(joiner, done)

    def _restore(
        self, joiner: _Joiner, done: list[tuple[EventTime, dict[str, Any]]]
    ) -> list[Entry]:
        """Joined stream records back onto the records their first line came from."""
        out: list[Entry] = []
        for stamp, joined in done:
            origin = joiner.origins.pop(stamp.seconds, None) if stamp.nanoseconds == 0 else None
            if origin is None:  # its parser set a time of its own: the parsed record
                out.append((stamp, joined))
                continue
            time, record = origin
            merged = dict(record)
            if len(joined) == 1:
                text = next(iter(joined.values()))
                first = record.get(self.key)
                if isinstance(text, str) and text.endswith("\n") and not first.endswith("\n"):
                    text = text[:-1]  # the stream ends raw text with a newline; lines had none
                merged[self.key] = text
            else:
                merged.update(joined)
            out.append((time, merged))
            self.joined += 1
        if joiner.stream is not None and not joiner.stream.pending:
            joiner.origins.clear()  # the lines that were joined into others
        return out

    def _partial(
        self, joiner: _Joiner, entry: Entry, record: dict[Any, Any], text: str
    ) -> list[Entry]:
        if not _is_true(record.get("partial_message")):
            return [entry]
        key = record.get("partial_id")
        parts = joiner.partial.setdefault(key, [])
        parts.append(entry)
        if not _is_true(record.get("partial_last")):
            return []
        del joiner.partial[key]
        return [self._join_partial(parts)]

    def _join_partial(self, parts: list[Entry]) -> Entry:
        time, first = parts[0]
        merged = {k: v for k, v in first.items() if k not in PARTIAL_KEYS}
        merged[self.key] = "".join(str(r.get(self.key, "")) for _, r in parts)
        self.joined += 1
        return time, merged

    def _pending(self, joiner: _Joiner) -> bool:
        return bool(joiner.partial) or (joiner.stream is not None and joiner.stream.pending)

    def _drain(self, joiner: _Joiner) -> list[Entry]:
        """Everything pending in ``joiner``."""
        out: list[Entry] = []
        if joiner.stream is not None:
            out.extend(self._restore(joiner, joiner.stream.flush()))
        for parts in joiner.partial.values():
            out.append(self._join_partial(parts))
        joiner.partial.clear()
        return out

    # --- the flush timer (buffer on) -------------------------------------------------------

    def _arm(self) -> None:
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # used outside an event loop: flush_pending() is up to the caller
        self._timer = loop.call_later(self.flush_s, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.flush_pending(self.ctx.clock.monotonic())
        if any(self._pending(j) for j in self._joiners.values()):
            self._arm()

    def flush_pending(self, now: float | None = None) -> int:
        """Emit the records pending ``flush_ms`` since their tag's last record
        (all of them when ``now`` is None); the number emitted."""
        emitted = 0
        for tag, joiner in list(self._joiners.items()):
            if now is not None and now - joiner.touched < self.flush_s:
                continue
            ready = self._drain(joiner)
            del self._joiners[tag]
            if not ready:
                continue
            if self.emitter.emit is None:
                self.ctx.logger.error(
                    "%s no emitter; dropped",
                    counted(len(ready), "joined record has", "joined records have"),
                )
                continue
            self._own = True
            try:
                self.emitter.emit(tag, self.emitter.pack(ready), len(ready))
            finally:
                self._own = False
            emitted += len(ready)
        self.flushed += emitted
        return emitted

    def status(self) -> dict[str, Any]:
        return {"joined": self.joined, "flushed": self.flushed, "tags": len(self._joiners)}

    def __repr__(self) -> str:
        names = ",".join(p.name for p in self.parsers) or self.mode
        return f"<MultilineFilter {self.ctx.name} {names} buffer={self.buffer}>"

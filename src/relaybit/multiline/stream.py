"""The multiline state machine of one stream (one followed file), pure.

:meth:`MultilineStream.feed` takes one line (text, its time, ``now`` and its
offset) and returns the records it completed; :meth:`flush_due` returns the
records whose last line is older than their parser's ``flush_timeout``;
:meth:`flush` returns everything pending.  It follows Fluent Bit's
``flb_ml_append``: parsers are tried in order, the last one that took a line
is tried first; a line no parser takes becomes a record of its own.

Differences from Fluent Bit, on purpose: a record that would grow past
:data:`MAX_RECORD_BYTES` is emitted as it is and the next line starts afresh
(Fluent Bit truncates it and drops the rest); the flush timer counts from the
record's last line (Fluent Bit's timer ticks every ``flush_timeout``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from relaybit.codec.msgpack import EventTime
from relaybit.multiline.definition import MultilineParser
from relaybit.multiline.rules import Rule, RuleSet
from relaybit.parsers.base import BaseParser
from relaybit.plugins.inputs.lines import apply_parser

#: a pending record is emitted once its joined text reaches this size (Fluent Bit: 2 MB)
MAX_RECORD_BYTES = 2 * 1024 * 1024

Record = tuple[EventTime, dict[str, Any]]


def feed_each(
    feed: Callable[[str, EventTime, float, int | None], list[Record]],
    lines: Sequence[bytes],
    stamp: EventTime,
    now: float,
    starts: Sequence[int] | None,
) -> list[Record]:
    """``feed(text, stamp, now, offset)`` for each raw line of a batch (non-UTF-8 bytes
    kept as surrogates); the records they completed, in order."""
    out: list[Record] = []
    for i, line in enumerate(lines):
        offset = starts[i] if starts is not None and i < len(starts) else None
        out.extend(feed(line.decode("utf-8", "surrogateescape"), stamp, now, offset))
    return out


@dataclass(eq=False)
class _Group:
    """One pending record: joined text, the first line's fields and time."""

    parts: list[str] = field(default_factory=list)
    size: int = 0
    context: dict[str, Any] | None = None
    stamp: EventTime | None = None
    state: Rule | None = None  #: regex mode: the rule that matched last
    touched: float = 0.0  #: ``now`` of the last line added
    offset: int | None = None  #: file offset of the first line

    def cat(self, text: str) -> None:
        if text:
            self.parts.append(text)
            self.size += len(text)

    def ends_with_newline(self) -> bool:
        return bool(self.parts) and self.parts[-1].endswith("\n")

    @property
    def empty(self) -> bool:
        return not self.parts and self.context is None


@dataclass(slots=True)
class _Line:
    text: str  #: the content that is matched and joined
    pattern: str  #: what endswith/equal compare (key_pattern's value, else text)
    record: dict[str, Any] | None  #: the parsed line (a parser is set)
    stamp: EventTime
    group: str | None


class _ParserState:
    """A parser's pending groups within one stream."""

    def __init__(self, parser: MultilineParser) -> None:
        self.parser = parser
        self.groups: dict[str | None, _Group] = {}
        self.last_group: str | None = None

    def group(self, name: str | None) -> _Group:
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = _Group()
        return group


class MultilineStream:
    """Joins the lines of one stream with a list of multiline parsers (tried in order)."""

    def __init__(self, parsers: Sequence[MultilineParser]) -> None:
        if not parsers:
            raise ValueError("MultilineStream needs at least one parser")
        self._states = [_ParserState(p) for p in parsers]
        self._lru: _ParserState | None = None
        self._out: list[Record] = []
        self.lines = 0
        self.records = 0

    # --- public API --------------------------------------------------------------------

    def feed(
        self, text: str, stamp: EventTime, now: float, offset: int | None = None
    ) -> list[Record]:
        """Add one line; the records it completed (often none)."""
        self.lines += 1
        if self._lru is not None:
            if self._try(self._lru, text, stamp, now, offset):
                return self._take()
            self._flush_state(self._lru)
        for state in self._states:
            if state is self._lru:
                continue
            if self._try(state, text, stamp, now, offset):
                self._lru = state
                return self._take()
        # nobody took the line: it is a record of its own
        state = self._lru or self._states[0]
        self._flush_state(state)
        group = state.group(None)
        group.stamp = stamp
        group.cat(text)
        self._flush_group(state, group)
        return self._take()

    def feed_lines(
        self,
        lines: Sequence[bytes],
        stamp: EventTime,
        now: float,
        starts: Sequence[int] | None = None,
    ) -> list[Record]:
        """:meth:`feed` for a batch of raw lines (non-UTF-8 bytes kept as surrogates)."""
        return feed_each(self.feed, lines, stamp, now, starts)

    def flush_due(self, now: float) -> list[Record]:
        """Records whose last line came ``flush_timeout`` or more before ``now``."""
        for state in self._states:
            timeout = state.parser.flush_timeout
            for group in state.groups.values():
                if not group.empty and now - group.touched >= timeout:
                    self._flush_group(state, group)
        return self._take()

    def flush(self) -> list[Record]:
        """Every pending record (end of file, rotation done, shutdown)."""
        for state in self._states:
            self._flush_state(state)
        return self._take()

    def next_deadline(self) -> float | None:
        """The ``now`` at which :meth:`flush_due` will emit something, or None."""
        deadlines = [
            group.touched + state.parser.flush_timeout
            for state in self._states
            for group in state.groups.values()
            if not group.empty
        ]
        return min(deadlines) if deadlines else None

    @property
    def pending(self) -> bool:
        return any(not g.empty for s in self._states for g in s.groups.values())

    def pending_offset(self) -> int | None:
        """File offset of the first line of the oldest pending record (None: nothing pending)."""
        offsets = [
            g.offset
            for s in self._states
            for g in s.groups.values()
            if not g.empty and g.offset is not None
        ]
        return min(offsets) if offsets else None

    # --- one parser ----------------------------------------------------------------------

    def _try(
        self, state: _ParserState, raw: str, stamp: EventTime, now: float, offset: int | None
    ) -> bool:
        """Offer a line to one parser; False when it does not take it."""
        line = self._prepare(state.parser, raw, stamp)
        if line is None:
            return False
        group = state.group(line.group)
        if state.last_group != line.group:
            previous = state.groups.get(state.last_group)
            if previous is not None:
                self._flush_group(state, previous)
            state.last_group = line.group
        mode = state.parser.mode
        if mode == "regex":
            taken = self._regex(state, group, line, offset)
        else:
            taken = self._match_string(state, group, line, offset)
        if taken and not group.empty:
            group.touched = now
        return taken

    def _prepare(self, parser: MultilineParser, raw: str, stamp: EventTime) -> _Line | None:
        line_parser = parser.parser
        if line_parser is None:
            return _Line(raw, raw, None, stamp, None)
        if isinstance(line_parser, BaseParser):  # parse() without its layers
            record = line_parser.fields(raw)
            if record is None or parser.key_content is None:
                return None
            when = line_parser.finish(record) if line_parser.needs_finish else None
        else:
            parsed = apply_parser(line_parser, raw)
            if parsed is None or parser.key_content is None:
                return None
            when, record = parsed
        content = record.get(parser.key_content)
        if not isinstance(content, str):
            return None
        pattern = content
        if parser.key_pattern is not None:
            value = record.get(parser.key_pattern)
            if isinstance(value, str):
                pattern = value
        group = None
        if parser.key_group is not None:
            value = record.get(parser.key_group)
            if isinstance(value, str):
                group = value
        if when is not None:
            stamp = when if isinstance(when, EventTime) else EventTime.from_float(float(when))
        return _Line(content, pattern, record, stamp, group)

    def _regex(self, state: _ParserState, group: _Group, line: _Line, offset: int | None) -> bool:
        rules = state.parser.rules
        assert rules is not None
        rule: Rule | None = None
        if group.state is not None:
            rule = RuleSet.continuation(group.state, line.text)
            if rule is not None:
                if group.size + len(line.text) > MAX_RECORD_BYTES:
                    self._flush_group(state, group)
                    group.state = None
                    return self._regex(state, group, line, offset)
                if group.parts and not group.ends_with_newline():
                    group.cat("\n")
                if group.empty:  # the record was emitted already (a start rule may follow)
                    group.stamp = line.stamp
                    group.offset = offset
                group.cat(line.text if line.text else "\n")
        if rule is None:
            rule = rules.start(line.text)
            if rule is None:
                group.state = None  # the chain is broken: the caller emits what is pending
                return False
            if not group.empty:
                self._flush_group(state, group)
            group.cat(line.text)
            group.context = line.record
            group.stamp = line.stamp
            group.offset = offset
        group.state = rule
        if rule.ends_record and not group.empty:
            self._flush_group(state, group)
        return True

    def _match_string(
        self, state: _ParserState, group: _Group, line: _Line, offset: int | None
    ) -> bool:
        parser = state.parser
        if parser.mode == "endswith":
            if len(parser.match_string) > len(line.pattern):
                return False
            matched = line.pattern.endswith(parser.match_string)
        else:
            matched = line.pattern == parser.match_string
        if parser.negate:
            matched = not matched
        if group.size + len(line.text) > MAX_RECORD_BYTES and not group.empty:
            self._flush_group(state, group)
        if group.empty:
            group.context = line.record
            group.stamp = line.stamp
            group.offset = offset
        if parser.key_content is None and group.parts and not group.ends_with_newline():
            group.cat("\n")
        group.cat(line.text)
        if matched:
            self._flush_group(state, group)
        return True

    # --- flushing ------------------------------------------------------------------------

    def _flush_state(self, state: _ParserState) -> None:
        for group in state.groups.values():
            self._flush_group(state, group)

    def _flush_group(self, state: _ParserState, group: _Group) -> None:
        if group.empty:
            return
        parser = state.parser
        if parser.key_content is None and group.parts and not group.ends_with_newline():
            group.cat("\n")  # Fluent Bit's breakline_prepare: raw text ends with a newline
        text = "".join(group.parts)
        if group.context is not None:
            record = dict(group.context)
            record[parser.output_key] = text
        else:
            record = {parser.output_key: text}
        stamp = group.stamp if group.stamp is not None else EventTime(0, 0)
        self._out.append((stamp, record))
        self.records += 1
        group.parts = []
        group.size = 0
        group.context = None
        group.stamp = None
        group.offset = None

    def _take(self) -> list[Record]:
        out, self._out = self._out, []
        return out

    def __repr__(self) -> str:
        names = ",".join(s.parser.name for s in self._states)
        return f"<MultilineStream parsers={names} lines={self.lines} records={self.records}>"

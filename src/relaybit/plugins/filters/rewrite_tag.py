"""The ``rewrite_tag`` filter: re-emit records under a new tag built from them.

``Rule $KEY REGEX NEW_TAG KEEP`` (repeatable, first match wins): when the
value at ``$KEY`` (a record accessor) matches ``REGEX``, the record is emitted
again under ``NEW_TAG`` through the filter's *emitter*, an internal input
named ``Emitter_Name`` (default ``emitter_for_<filter name>``) with its own
``Emitter_Storage.type`` and ``Emitter_Mem_Buf_Limit``: the new record is
routed, and filtered by the filters of its new tag, as any input's.  ``KEEP``
keeps the original record under its tag too.  A word may be quoted
(``"^.* x$"``) to hold spaces.

``NEW_TAG`` may use ``$TAG``, ``$TAG[N]`` (the Nth dot-separated part),
``$0``..``$N`` (the regex match and its groups) and record accessors
``$key['sub']``; a missing value is empty.  An empty new tag keeps the record.

Loops: a new tag that this filter's own ``Match`` accepts would bring the
record back here.  A rule whose ``NEW_TAG`` is fixed text matching ``Match``
is refused at start (ConfigError).  For tags built from the record,
``Recursion_Action`` decides at run time, as in Fluent Bit: ``exit`` (default;
relaybit keeps the record under its tag and logs an error instead of stopping
the agent), ``drop`` / ``drop_and_log`` (drop it; counted, and logged),
``none`` (emit it anyway; relaybit stops after :data:`MAX_DEPTH` nested
re-emissions and keeps the record under its tag, logged).

An emitter that cannot take records (its filesystem storage full, or over its
``Emitter_Mem_Buf_Limit``) keeps them and the input whose records they are
waits for it (``pipeline/emitter_buffer.py``): a matched record is never
passed on under its old tag.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from relaybit.config.schema import ConfigMap, Option
from relaybit.config.units import parse_bool
from relaybit.errors import ConfigError
from relaybit.parsers.regex import compile_onigmo
from relaybit.plugins.base import AddEmitterFn, FilterPlugin, PluginContext
from relaybit.plugins.filters.emitter import EMITTER_OPTIONS, FilterEmitter
from relaybit.record_accessor import RecordAccessor, value_as_text
from relaybit.tag import compile_match

#: nested re-emissions (a record re-tagged to a tag this filter matches again) at most
MAX_DEPTH = 8

_WORD = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')
_PART = re.compile(
    r"\$TAG\[(\d+)\]|\$TAG|\$(\d+)"
    r"""|\$([A-Za-z0-9_\-]+(?:\[\s*(?:'[^']*'|"[^"]*"|-?\d+)\s*\])*)"""
)

Piece = Callable[[str, list[str], Any, "re.Match[str]"], str]


def split_rule(text: str) -> list[str]:
    """The words of a rule; ``"..."`` holds spaces (its quotes removed)."""
    return [m.group(1) if m.group(1) is not None else m.group(2) for m in _WORD.finditer(text)]


def _literal(text: str) -> Piece:
    return lambda tag, parts, record, match: text


def _tag_part(index: int) -> Piece:
    return lambda tag, parts, record, match: parts[index] if index < len(parts) else ""


def _group(index: int) -> Piece:
    def piece(tag: str, parts: list[str], record: Any, match: re.Match[str]) -> str:
        if index > (match.re.groups or 0):
            return ""
        return match.group(index) or ""

    return piece


def _field(accessor: RecordAccessor) -> Piece:
    return lambda tag, parts, record, match: value_as_text(accessor.get(record)) or ""


class TagTemplate:
    """``NEW_TAG`` compiled: literal text, ``$TAG``, ``$TAG[N]``, ``$N``, ``$key``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pieces: list[Piece] = []
        self.dynamic = False
        pos = 0
        for m in _PART.finditer(text):
            if m.start() > pos:
                self.pieces.append(_literal(text[pos : m.start()]))
            self.dynamic = True
            if m.group(0) == "$TAG":
                self.pieces.append(lambda tag, parts, record, match: tag)
            elif m.group(1) is not None:
                self.pieces.append(_tag_part(int(m.group(1))))
            elif m.group(2) is not None:
                self.pieces.append(_group(int(m.group(2))))
            else:
                self.pieces.append(_field(RecordAccessor("$" + m.group(3))))
            pos = m.end()
        if pos < len(text):
            self.pieces.append(_literal(text[pos:]))

    def render(self, tag: str, record: Any, match: re.Match[str]) -> str:
        """The tag for one record (``match``: the rule's regex match on it)."""
        parts = tag.split(".")
        return "".join(piece(tag, parts, record, match) for piece in self.pieces)

    def __repr__(self) -> str:
        return f"<TagTemplate {self.text!r}>"


@dataclass(frozen=True)
class RewriteRule:
    accessor: RecordAccessor
    regex: re.Pattern[str]
    new_tag: TagTemplate
    keep: bool

    def match(self, record: Any) -> re.Match[str] | None:
        text = value_as_text(self.accessor.get(record))
        return None if text is None else self.regex.search(text)


class RewriteTagFilter(FilterPlugin):
    """Re-emit matching records under a new tag through an emitter input."""

    description = "Re-emit records under a new tag built from their values"
    options: ClassVar[ConfigMap] = ConfigMap(
        (
            Option(
                "rule",
                "str",
                None,
                "$KEY REGEX NEW_TAG KEEP (repeatable; the first matching rule wins)",
                multiple=True,
            ),
            *EMITTER_OPTIONS,
            Option(
                "recursion_action",
                "str",
                "exit",
                "A new tag this filter matches: exit (keep, log error), drop, drop_and_log, none",
                choices=("exit", "drop", "drop_and_log", "none"),
            ),
        )
    )

    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        section = f"[FILTER] {ctx.name}"
        self.matcher = compile_match(opts.opt_str("match"), opts.opt_str("match_regex"))
        self.rules: list[RewriteRule] = []
        for name, value, origin in opts.in_order():
            if name != "rule":
                continue
            words = split_rule(str(value))
            if len(words) != 4:
                raise ConfigError(
                    f"expected '$KEY REGEX NEW_TAG KEEP' (4 words; quote a regex with spaces),"
                    f" got {value!r}",
                    origin,
                    section=section,
                    key="rule",
                )
            try:
                accessor = RecordAccessor(words[0])
                regex = compile_onigmo(words[1])
                keep = parse_bool(words[3])
            except (ValueError, re.error) as exc:
                raise ConfigError(str(exc), origin, section=section, key="rule") from None
            template = TagTemplate(words[2])
            if not template.dynamic and self.matcher(template.text):
                raise ConfigError(
                    f"new tag '{template.text}' is matched by this filter's own Match:"
                    " the records would come back here forever",
                    origin,
                    section=section,
                    key="rule",
                )
            self.rules.append(RewriteRule(accessor, regex, template, keep))
        if not self.rules:
            ctx.logger.warning("no 'rule' defined: records pass unchanged")
        self.emitter = FilterEmitter(ctx)
        self.recursion_action = opts.str("recursion_action").lower()
        self._depth = 0
        self.emitted = 0
        self.recursions = 0
        self._warned: set[str] = set()

    def bind_engine(self, add_emitter: AddEmitterFn) -> None:
        self.emitter.bind(add_emitter)

    def _once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._warned and len(self._warned) < 1000:
            self._warned.add(key)
            self.ctx.logger.error(message + " (logged once)", *args)

    def _recursion(self, new_tag: str) -> str:
        """What to do with a record re-tagged to a tag this filter matches:
        ``emit``, ``drop`` or ``keep`` (under its tag, not re-emitted)."""
        self.recursions += 1
        action = self.recursion_action
        if action == "none":
            if self._depth < MAX_DEPTH:
                return "emit"
            self._once(
                "depth:" + new_tag,
                "record re-tagged %d times in a row (now '%s'); kept under its tag",
                MAX_DEPTH,
                new_tag,
            )
            return "keep"
        if action == "exit":
            self._once(
                "exit:" + new_tag,
                "recursion: new tag '%s' is matched by this filter; the record stays"
                " under its tag (recursion_action exit)",
                new_tag,
            )
            return "keep"
        if action == "drop_and_log":
            self.ctx.logger.warning("recursion occurred. tag=%s", new_tag)
        else:
            self._once(
                "drop:" + new_tag,
                "recursion: records re-tagged '%s' are dropped (recursion_action drop)",
                new_tag,
            )
        return "drop"

    def filter(self, tag: str, entries: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
        if not self.rules:
            return entries
        kept: list[tuple[Any, Any]] = []
        out: dict[str, list[tuple[Any, Any]]] = {}
        for entry in entries:
            record = entry[1]
            for rule in self.rules:
                match = rule.match(record)
                if match is not None:
                    break
            else:
                kept.append(entry)
                continue
            new_tag = rule.new_tag.render(tag, record, match)
            action = "emit"
            if not new_tag or self.emitter.emit is None:
                action = "keep"
                self._once(
                    "empty:" + rule.new_tag.text if new_tag else "unbound",
                    "cannot re-emit (%s); the record stays under '%s'",
                    "empty new tag from " + rule.new_tag.text if new_tag == "" else "no emitter",
                    tag,
                )
            elif self.matcher(new_tag):
                action = self._recursion(new_tag)
            if action == "emit":
                out.setdefault(new_tag, []).append(entry)
            if rule.keep or action == "keep":
                kept.append(entry)
        for new_tag, group in out.items():
            kept.extend(self._send(tag, new_tag, group))
        return kept

    def _send(self, tag: str, new_tag: str, group: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
        """Emit ``group`` under ``new_tag``; the entries to keep here when that failed."""
        assert self.emitter.emit is not None
        try:
            data = self.emitter.pack(group)
        except Exception as exc:
            self._once("pack", "cannot encode records (%s); kept under '%s'", exc, tag)
            return group
        self._depth += 1
        try:
            self.emitter.emit(new_tag, data, len(group))
        finally:
            self._depth -= 1
        self.emitted += len(group)
        return []

    def status(self) -> dict[str, Any]:
        return {"emit_records": self.emitted, "recursions": self.recursions}

    def __repr__(self) -> str:
        return (
            f"<RewriteTagFilter {self.ctx.name} rules={len(self.rules)}"
            f" emitter={self.emitter.name} emitted={self.emitted}>"
        )

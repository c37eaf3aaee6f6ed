"""The ``modify`` filter: rules that set, add, remove, rename, copy and move keys.

As in Fluent Bit, rules apply in the order they are written, each on the result
of the previous one, and only to records that meet every ``Condition``.  Rule
keys are top-level names; condition keys (``Key_exists``, ``Key_value_*``)
also take record accessors (``$kubernetes['namespace_name']``).
``Set`` moves the key to the end of the record (Fluent Bit re-appends it);
``Rename``/``Hard_rename`` keep the key's place; ``Copy``/``Hard_copy`` insert
the copy right after the source.  Arguments are split on spaces; quote a value
with spaces (``Set message "hello world"``): a rule with extra words is an
error here, where Fluent Bit silently takes the first and last word.
``Remove_wildcard``/``Move_to_*`` take a prefix (``Mem.``) as Fluent Bit does,
and also a ``*`` pattern (``Mem.*``, ``*_id``).  Values are matched by their
text: numbers and booleans too (Fluent Bit: strings and booleans).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from relaybit.config.origin import Origin
from relaybit.config.schema import ConfigMap, Option
from relaybit.errors import ConfigError
from relaybit.parsers.regex import compile_onigmo
from relaybit.plugins.base import FilterPlugin, PluginContext
from relaybit.record_accessor import RecordAccessor, value_as_text
from relaybit.tag import match_tag

Record = dict[Any, Any]

ONE_ARG = ("remove", "remove_wildcard", "remove_regex", "move_to_start", "move_to_end")
TWO_ARGS = ("set", "add", "add_if_not_present", "rename", "hard_rename", "copy", "hard_copy")
CONDITIONS_ONE = ("key_exists", "key_does_not_exist", "a_key_matches", "no_key_matches")
CONDITIONS_TWO = (
    "key_value_equals",
    "key_value_does_not_equal",
    "key_value_matches",
    "key_value_does_not_match",
    "matching_keys_have_matching_values",
    "matching_keys_do_not_have_matching_values",
)


def split_quoted(text: str) -> list[str]:
    """Split on spaces; ``"..."`` or ``'...'`` keeps spaces (``\\"`` escapes a quote)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        if text[i] in "\"'":
            quote, i = text[i], i + 1
            buf: list[str] = []
            while i < n and text[i] != quote:
                if text[i] == "\\" and i + 1 < n and text[i + 1] in (quote, "\\"):
                    i += 1
                buf.append(text[i])
                i += 1
            if i >= n:
                raise ValueError(f"unterminated {quote} quote in {text!r}")
            i += 1
            out.append("".join(buf))
        else:
            start = i
            while i < n and not text[i].isspace():
                i += 1
            out.append(text[start:i])
    return out


def _key_matcher(pattern: str) -> Callable[[Any], bool]:
    if "*" in pattern:
        return lambda key: isinstance(key, str) and match_tag(pattern, key)
    return lambda key: isinstance(key, str) and key.startswith(pattern)


def _regex_hit(regex: re.Pattern[str], value: Any) -> bool:
    text = value_as_text(value)
    return text is not None and regex.search(text) is not None


_MISSING = object()


@dataclass(frozen=True)
class Condition:
    kind: str
    a: str
    b: str | None
    accessor: RecordAccessor | None
    a_regex: re.Pattern[str] | None
    b_regex: re.Pattern[str] | None

    def holds(self, record: Record) -> bool:
        kind = self.kind
        if kind in ("a_key_matches", "no_key_matches"):
            assert self.a_regex is not None
            regex = self.a_regex
            found = any(_regex_hit(regex, key) for key in record)
            return found if kind == "a_key_matches" else not found
        if kind.startswith("matching_keys"):
            assert self.a_regex is not None and self.b_regex is not None
            all_match = all(
                _regex_hit(self.b_regex, value)
                for key, value in record.items()
                if _regex_hit(self.a_regex, key)
            )
            return all_match if kind == "matching_keys_have_matching_values" else not all_match
        assert self.accessor is not None
        value = self.accessor.get(record, _MISSING)
        if kind == "key_exists":
            return value is not _MISSING
        if kind == "key_does_not_exist":
            return value is _MISSING
        if value is _MISSING:
            return False  # every key_value_* condition needs the key
        if kind == "key_value_equals":
            return value_as_text(value) == self.b
        if kind == "key_value_does_not_equal":
            return value_as_text(value) != self.b
        assert self.b_regex is not None
        hit = _regex_hit(self.b_regex, value)
        return hit if kind == "key_value_matches" else not hit


@dataclass(frozen=True)
class Rule:
    kind: str
    key: str
    value: str | None
    key_matcher: Callable[[Any], bool] | None = None

    def apply(self, record: Record) -> Record:
        """The rules :func:`compile_rule` does not write out as functions of their own."""
        kind, key, value = self.kind, self.key, self.value
        if kind in ("remove_wildcard", "remove_regex"):
            assert self.key_matcher is not None
            matcher = self.key_matcher
            return {k: v for k, v in record.items() if not matcher(k)}
        elif kind in ("move_to_start", "move_to_end"):
            assert self.key_matcher is not None
            matcher = self.key_matcher
            moved = {k: v for k, v in record.items() if matcher(k)}
            rest = {k: v for k, v in record.items() if not matcher(k)}
            return {**moved, **rest} if kind == "move_to_start" else {**rest, **moved}
        elif kind in ("copy", "hard_copy") and key in record:
            if kind == "copy" and value in record:
                return record
            out: Record = {}
            for k, v in record.items():
                if k == value:
                    continue
                out[k] = v
                if k == key:
                    out[value] = v
            return out
        return record


def compile_rule(rule: Rule) -> Callable[[Record], Record]:
    """A function applying ``rule`` to a record it may change in place; it returns the
    record, or a new one.  The frequent rules (add, set, remove, rename) are written
    out; the others go through :meth:`Rule.apply`."""
    kind, key, value = rule.kind, rule.key, rule.value
    if kind in ("add", "add_if_not_present"):

        def add(record: Record) -> Record:
            if key not in record:
                record[key] = value
            return record

        return add
    if kind == "set":

        def set_(record: Record) -> Record:
            record.pop(key, None)
            record[key] = value
            return record

        return set_
    if kind == "remove":

        def remove(record: Record) -> Record:
            record.pop(key, None)
            return record

        return remove
    if kind in ("rename", "hard_rename"):
        hard = kind == "hard_rename"

        def rename(record: Record) -> Record:
            if key not in record or value == key:
                return record
            if value in record:
                if not hard:
                    return record
                del record[value]
            if next(reversed(record)) == key:  # the last key: its place is the end
                record[value] = record.pop(key)
                return record
            keys = list(record)
            at = keys.index(key)
            if len(keys) - at > 4:  # rebuild
                keys[at] = value
                return dict(zip(keys, record.values(), strict=True))
            record[value] = record.pop(key)  # the key's place is kept: the later keys move
            for later in keys[at + 1 :]:
                record[later] = record.pop(later)
            return record

        return rename
    return rule.apply


class ModifyFilter(FilterPlugin):
    """Apply rules in order to records that meet every condition."""

    description = "Modify records by applying rules, optionally under conditions"
    options: ClassVar[ConfigMap] = ConfigMap(
        (
            Option("set", "str", None, "KEY VALUE: set KEY to VALUE (replace)", multiple=True),
            Option("add", "str", None, "KEY VALUE: add KEY if it does not exist", multiple=True),
            Option("add_if_not_present", "str", None, "Deprecated alias of add", multiple=True),
            Option("remove", "str", None, "KEY: remove KEY", multiple=True),
            Option(
                "remove_wildcard",
                "str",
                None,
                "PREFIX or PATTERN*: remove matching keys",
                multiple=True,
            ),
            Option("remove_regex", "str", None, "REGEX: remove keys matching REGEX", multiple=True),
            Option(
                "rename", "str", None, "KEY NEW: rename KEY if NEW does not exist", multiple=True
            ),
            Option("hard_rename", "str", None, "KEY NEW: rename KEY, replacing NEW", multiple=True),
            Option("copy", "str", None, "KEY NEW: copy KEY if NEW does not exist", multiple=True),
            Option("hard_copy", "str", None, "KEY NEW: copy KEY, replacing NEW", multiple=True),
            Option(
                "move_to_start", "str", None, "PREFIX or PATTERN*: move keys first", multiple=True
            ),
            Option("move_to_end", "str", None, "PREFIX or PATTERN*: move keys last", multiple=True),
            Option(
                "condition",
                "str",
                None,
                "TYPE A [B]: apply the rules only when every condition holds "
                f"({', '.join(CONDITIONS_ONE + CONDITIONS_TWO)})",
                multiple=True,
            ),
        )
    )

    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        self.section = f"[FILTER] {ctx.name}"
        self.rules: list[Rule] = []
        self.conditions: list[Condition] = []
        rule_names = set(ONE_ARG + TWO_ARGS)
        for name, raw, origin in ctx.options.in_order():
            if name == "condition":
                self.conditions.append(self._condition(str(raw), origin))
            elif name in rule_names:
                self.rules.append(self._rule(name, str(raw), origin))
        if ctx.options.is_set("add_if_not_present"):
            ctx.logger.warning("'add_if_not_present' is deprecated; use 'add'")
        self._steps = [compile_rule(rule) for rule in self.rules]
        self._checks = [condition.holds for condition in self.conditions]

    def _fail(self, message: str, origin: Origin | None, key: str) -> ConfigError:
        return ConfigError(message, origin, section=self.section, key=key)

    def _args(self, name: str, raw: str, origin: Origin | None) -> list[str]:
        try:
            return split_quoted(raw)
        except ValueError as exc:
            raise self._fail(str(exc), origin, name) from None

    def _regex(self, name: str, pattern: str, origin: Origin | None) -> re.Pattern[str]:
        try:
            return compile_onigmo(pattern)
        except re.error as exc:
            raise self._fail(f"invalid regular expression: {exc}", origin, name) from None

    def _rule(self, name: str, raw: str, origin: Origin | None) -> Rule:
        args = self._args(name, raw, origin)
        if name in ONE_ARG:
            if len(args) != 1:
                raise self._fail(f"expected one KEY, got {raw!r}", origin, name)
            matcher: Callable[[Any], bool] | None = None
            if name == "remove_regex":
                regex = self._regex(name, args[0], origin)
                matcher = lambda key: isinstance(key, str) and regex.search(key) is not None  # noqa: E731
            elif name != "remove":
                matcher = _key_matcher(args[0])
            return Rule(name, args[0], None, matcher)
        if len(args) != 2:
            raise self._fail(
                f"expected 'KEY VALUE' (quote a value that has spaces), got {raw!r}", origin, name
            )
        return Rule(name, args[0], args[1])

    def _condition(self, raw: str, origin: Origin | None) -> Condition:
        args = self._args("condition", raw, origin)
        kind = args[0].lower() if args else ""
        if kind in CONDITIONS_ONE:
            wanted = 2
        elif kind in CONDITIONS_TWO:
            wanted = 3
        else:
            raise self._fail(
                f"unknown condition {args[0] if args else raw!r}; expected one of "
                f"{', '.join(CONDITIONS_ONE + CONDITIONS_TWO)}",
                origin,
                "condition",
            )
        if len(args) != wanted:
            shape = "TYPE KEY" if wanted == 2 else "TYPE KEY VALUE"
            raise self._fail(f"expected '{shape}' for {kind}, got {raw!r}", origin, "condition")
        a, b = args[1], args[2] if wanted == 3 else None
        regex_a = kind in ("a_key_matches", "no_key_matches") or kind.startswith("matching_keys")
        regex_b = kind in ("key_value_matches", "key_value_does_not_match") or kind.startswith(
            "matching_keys"
        )
        accessor = None
        if not regex_a:
            try:
                accessor = RecordAccessor(a)
            except ValueError as exc:
                raise self._fail(str(exc), origin, "condition") from None
        return Condition(
            kind,
            a,
            b,
            accessor,
            self._regex("condition", a, origin) if regex_a else None,
            self._regex("condition", b, origin) if regex_b and b is not None else None,
        )

    def filter(self, tag: str, entries: list[Any]) -> list[Any]:
        """The entries with their records changed by the rules when every condition holds
        (copies: ``entries`` stay as they are; a record that is not a map passes)."""
        steps, checks = self._steps, self._checks
        out: list[Any] = []
        append = out.append
        for entry in entries:
            record = entry[1]
            if record.__class__ is not dict and not isinstance(record, dict):
                append(entry)
                continue
            for check in checks:
                if not check(record):
                    append(entry)
                    break
            else:
                record = dict(record)
                for step in steps:
                    record = step(record)
                append((entry[0], record))
        return out

    def __repr__(self) -> str:
        return (
            f"<ModifyFilter {self.ctx.name} rules={len(self.rules)} "
            f"conditions={len(self.conditions)}>"
        )

"""The ``content_modifier`` processor: one action on one key of each record (Fluent Bit 3+).

A processor only (YAML ``processors: logs:`` under an input or an output), as
in Fluent Bit.  ``action``:

- ``insert``: add ``key`` with ``value`` when the record does not have it;
- ``upsert``: set ``key`` to ``value`` (it moves to the end, as Fluent Bit
  removes and re-inserts it);
- ``delete``: remove ``key``;
- ``rename``: rename ``key`` to ``value`` in its place;
- ``hash``: replace the value by the SHA-256 of its text, in lower-case hex
  (numbers, booleans and null through their text; an empty text stays);
- ``extract``: match ``pattern`` on the text under ``key``; each named group
  (``(?<name>...)``) becomes a key (at the end, replacing one of that name);
- ``convert``: convert the value to ``converted_type`` (``string``, ``int``,
  ``double``, ``boolean``) with Fluent Bit's rules (text to int: the whole
  text must be a number between -2^31 and 2^32-1, an empty text is 0; text to
  double: its leading number; text to boolean: ``true`` is true, anything
  else false; double to int rounds half away from zero; null is ``"null"``,
  0 or false); the key moves to the end.

``context``: ``body`` (default; also ``message``, ``record``) acts on the
record, ``metadata`` (also ``attributes``) on the entry's metadata
(``[[time, metadata], record]``; an entry without metadata gets a map when
something is inserted).  The OpenTelemetry contexts (``otel_*``) are refused
with an error: relaybit carries no OpenTelemetry groups.

A record the action cannot apply to (``extract`` on a missing key, a value
that is not text, or no match; ``convert`` of a missing key, of a map or a
list, or of text that is not a number) passes unchanged; the first such record
is logged, then they are counted (``status()``).  Fluent Bit stops the
processor at that record and leaves the rest of the batch untouched.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from typing import Any, ClassVar

from relaybit.codec.records import entry_metadata
from relaybit.config.schema import ConfigMap, Option
from relaybit.errors import ConfigError
from relaybit.parsers.regex import compile_onigmo
from relaybit.plugins.base import FilterPlugin, PluginContext
from relaybit.plugins.filters.modify import Rule, compile_rule

ACTIONS = ("insert", "upsert", "delete", "rename", "hash", "extract", "convert")
CONVERTED_TYPES = ("string", "int", "double", "boolean")
#: the actions that are a modify filter rule: insert is add, upsert set, delete remove,
#: rename hard_rename (in the key's place, replacing a key of the new name)
_MODIFY_RULES = {"insert": "add", "upsert": "set", "delete": "remove", "rename": "hard_rename"}
BODY = ("body", "message", "record")
METADATA = ("metadata", "attributes")
OTEL = (
    "otel_resource_attributes",
    "otel_scope_name",
    "otel_scope_version",
    "otel_scope_attributes",
    "otel_log_attributes",
)

INT_MIN, INT_MAX, UINT_MAX = -(2**31), 2**31 - 1, 2**32 - 1
_FLOAT_PREFIX = re.compile(
    r"[ \t\n\r\f\v]*[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)",
    re.IGNORECASE,
)
_UNSIGNED = re.compile(r"[ \t\n\r\f\v]*\+?(\d*)")


class Unchanged(Exception):
    """The action does not apply to this record (it passes unchanged)."""


def _text(value: Any) -> str:
    """A value as Fluent Bit's conversion to string writes it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.17g}"
    raise Unchanged(f"a {type(value).__name__} has no text")


def _to_int(value: Any) -> int:
    if isinstance(value, str | bytes):
        text = _text(value)
        if text.startswith("-"):
            if not re.fullmatch(r"-\d+", text):
                raise Unchanged(f"{text!r} is not an integer")
            number = int(text)
            if number < INT_MIN:
                raise Unchanged(f"{text} is out of range")
            return number
        m = _UNSIGNED.fullmatch(text)
        if m is None:
            raise Unchanged(f"{text!r} is not an integer")
        number = int(m.group(1) or "0")
        if number > UINT_MAX:
            raise Unchanged(f"{text} is out of range")
        return number
    if value is None:
        return 0
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise Unchanged(f"{value} has no integer")
        return math.floor(value + 0.5) if value >= 0 else math.ceil(value - 0.5)
    raise Unchanged(f"a {type(value).__name__} is not a number")


def _to_double(value: Any) -> float:
    if isinstance(value, str | bytes):
        text = _text(value)
        m = _FLOAT_PREFIX.match(text)
        if m is None:
            raise Unchanged(f"{text!r} is not a number")
        number = float(m.group(0))
        if math.isinf(number) and "inf" not in m.group(0).lower():
            raise Unchanged(f"{text} is out of range")
        return number
    if value is None:
        return 0.0
    if isinstance(value, bool | int | float):
        return float(value)
    raise Unchanged(f"a {type(value).__name__} is not a number")


def _to_bool(value: Any) -> bool:
    if isinstance(value, str | bytes):
        return _text(value).lower() == "true"
    if value is None:
        return False
    if isinstance(value, bool | int | float):
        return value != 0
    raise Unchanged(f"a {type(value).__name__} has no truth value")


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "string": _text,
    "int": _to_int,
    "double": _to_double,
    "boolean": _to_bool,
}


def _hash(value: Any) -> Any:
    text = _text(value)
    if not text:
        return value
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


class ContentModifier(FilterPlugin):
    """insert, upsert, delete, rename, hash, extract or convert one key of each record."""

    description = "Modify the records or their metadata: insert, upsert, delete, rename, hash, extract, convert"
    options: ClassVar[ConfigMap] = ConfigMap(
        (
            Option(
                "action",
                "str",
                None,
                "insert, upsert, delete, rename, hash, extract or convert (required)",
            ),
            Option("key", "str", None, "Key the action applies to (required)"),
            Option("value", "str", None, "insert/upsert: the value; rename: the new key name"),
            Option("pattern", "str", None, "extract: regular expression with named groups"),
            Option("converted_type", "str", None, "convert: string, int, double or boolean"),
            Option(
                "context",
                "str",
                None,
                "body (default; message, record) or metadata (attributes)",
            ),
        )
    )

    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        section = f"processor {ctx.name}"

        def fail(message: str, key: str) -> ConfigError:
            return ConfigError(
                message, opts.origin(key) or opts.section_origin(), section=section, key=key
            )

        action = (opts.opt_str("action") or "").strip().lower()
        if not action:
            raise fail("no 'action' defined: " + ", ".join(ACTIONS), "action")
        if action not in ACTIONS:
            raise fail(f"unknown action '{action}'; expected one of {', '.join(ACTIONS)}", "action")
        context = (opts.opt_str("context") or "body").strip().lower()
        if context in OTEL:
            raise fail(
                f"context '{context}' is not supported: relaybit carries no OpenTelemetry groups",
                "context",
            )
        if context not in BODY + METADATA:
            raise fail(f"unknown logs context '{context}'; expected body or metadata", "context")
        self.action = action
        self.metadata = context in METADATA
        key = opts.opt_str("key")
        if not key:
            raise fail(f"key is required for action '{action}'", "key")
        self.key: str = key
        value = opts.opt_str("value")
        if action in ("insert", "upsert", "rename") and value is None:
            raise fail(f"value is required for action '{action}'", "value")
        self.value: str = value or ""
        self.regex: re.Pattern[str] | None = None
        pattern = opts.opt_str("pattern")
        if pattern is not None:
            try:
                self.regex = compile_onigmo(pattern)
            except re.error as exc:
                raise fail(f"invalid regex pattern: {exc}", "pattern") from None
        if action == "extract" and self.regex is None:
            raise fail(
                "for 'extract' action, a regular expression in 'pattern' is required", "pattern"
            )
        #: extract: the pattern's named groups, ``(name, number)`` in the pattern's order
        groups = self.regex.groupindex.items() if self.regex is not None else ()
        self._groups = tuple(sorted(groups, key=lambda item: item[1]))
        self.convert: Callable[[Any], Any] = _text
        if action == "convert":
            wanted = (opts.opt_str("converted_type") or "").strip().lower()
            if not wanted:
                raise fail(f"converted_type is required for action '{action}'", "converted_type")
            if wanted not in _CONVERT:
                raise fail(
                    f"unsupported converted_type '{wanted}'; expected "
                    + ", ".join(CONVERTED_TYPES),
                    "converted_type",
                )
            self.convert = _CONVERT[wanted]
        self._apply: Callable[[dict[Any, Any]], dict[Any, Any]]
        if action in _MODIFY_RULES:  # as the modify filter's rule of that name
            self._apply = compile_rule(Rule(_MODIFY_RULES[action], key, self.value))
        else:
            self._apply = getattr(self, "_" + action)
        self.unchanged = 0

    # -- the actions of their own, on a map they may change in place ---------------------

    def _hash(self, obj: dict[Any, Any]) -> dict[Any, Any]:
        if self.key in obj:
            obj[self.key] = _hash(obj[self.key])
        return obj

    def _extract(self, obj: dict[Any, Any]) -> dict[Any, Any]:
        assert self.regex is not None
        value = obj.get(self.key)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "surrogateescape")
        if not isinstance(value, str):
            raise Unchanged(f"'{self.key}' is {'missing' if value is None else 'not text'}")
        m = self.regex.search(value)
        if m is None:
            raise Unchanged(f"'{self.key}' does not match the pattern")
        for name, group in self._groups:
            found = m.group(group)
            if found is not None:
                obj.pop(name, None)
                obj[name] = found
        return obj

    def _convert(self, obj: dict[Any, Any]) -> dict[Any, Any]:
        if self.key not in obj:
            raise Unchanged(f"'{self.key}' is missing")
        converted = self.convert(obj[self.key])
        del obj[self.key]
        obj[self.key] = converted
        return obj

    # -- the processor ------------------------------------------------------------------

    def filter(self, tag: str, entries: list[Any]) -> list[Any]:
        apply = self._apply
        out: list[Any] = []
        for entry in entries:
            head, record = entry[0], entry[1]
            if self.metadata:
                meta = entry_metadata(head)
                obj = dict(meta) if meta is not None else {}
            elif isinstance(record, dict):
                obj = dict(record)
            else:
                out.append(entry)
                continue
            try:
                obj = apply(obj)
            except Unchanged as exc:
                self._count(exc)
                out.append(entry)
                continue
            if not self.metadata:
                out.append((head, obj))
            elif obj or meta is not None:
                time = head[0] if head.__class__ is list or head.__class__ is tuple else head
                out.append(([time, obj], record))
            else:
                out.append(entry)
        return out

    def _count(self, exc: Unchanged) -> None:
        if not self.unchanged:
            self.ctx.logger.warning(
                "%s: %s; such records pass unchanged (counted in status, logged once)",
                self.action,
                exc,
            )
        self.unchanged += 1

    def status(self) -> dict[str, Any]:
        return {"unchanged": self.unchanged}

    def __repr__(self) -> str:
        where = "metadata" if self.metadata else "body"
        return f"<ContentModifier {self.ctx.name} {self.action} {self.key!r} ({where})>"

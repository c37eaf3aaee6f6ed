"""The ``record_modifier`` filter: append fixed fields, remove or allow-list keys.

``Record KEY VALUE`` sets KEY (the value is the rest of the line, spaces
included); ``Remove_key`` drops keys and ``Allowlist_key`` (legacy
``Whitelist_key``) keeps only the listed keys; both compare names
case-insensitively and a trailing ``*`` makes a prefix, as in Fluent Bit, and
the two are exclusive.  ``UUID_key`` adds a random UUID per record.  Keys are
removed first, then records appended.  A ``Record`` key the record already has
is replaced (Fluent Bit appends a duplicate key).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from relaybit.config.schema import ConfigMap, Option
from relaybit.errors import ConfigError
from relaybit.plugins.base import FilterPlugin, PluginContext


@dataclass(frozen=True)
class KeyPattern:
    """A key name, or a prefix when written with a trailing ``*`` (case-insensitive)."""

    text: str
    prefix: bool

    @classmethod
    def parse(cls, raw: str) -> KeyPattern:
        raw = raw.strip()
        if raw.endswith("*"):
            return cls(raw[:-1].lower(), True)
        return cls(raw.lower(), False)


def _key_test(patterns: list[KeyPattern]) -> Callable[[Any], bool]:
    """Whether a key matches one of ``patterns`` (text or bytes keys, case-insensitive):
    names in a set, prefixes in one startswith."""
    exact = frozenset(p.text for p in patterns if not p.prefix)
    prefixes = tuple(p.text for p in patterns if p.prefix)

    def test(key: Any) -> bool:
        if key.__class__ is not str:
            if isinstance(key, bytes):
                key = key.decode("utf-8", "surrogateescape")
            elif not isinstance(key, str):
                return False
        low = key.lower()
        return low in exact or (bool(prefixes) and low.startswith(prefixes))

    return test


class RecordModifierFilter(FilterPlugin):
    """Remove or allow-list keys, then append the configured records."""

    description = "Append fields, remove keys or keep only listed keys"
    options: ClassVar[ConfigMap] = ConfigMap(
        (
            Option("record", "str", None, "KEY VALUE: append KEY with VALUE", multiple=True),
            Option("remove_key", "str", None, "Remove KEY (KEY* = prefix)", multiple=True),
            Option(
                "allowlist_key", "str", None, "Keep only these keys (KEY* = prefix)", multiple=True
            ),
            Option("whitelist_key", "str", None, "Legacy name of allowlist_key", multiple=True),
            Option("uuid_key", "str", None, "Add a random UUID under this key"),
        )
    )

    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        section = f"[FILTER] {ctx.name}"
        self.records: list[tuple[str, str]] = []
        for name, value, origin in opts.in_order():
            if name != "record":
                continue
            parts = str(value).strip().split(None, 1)
            if len(parts) != 2:
                raise ConfigError(
                    f"expected 'KEY VALUE', got {value!r}", origin, section=section, key="record"
                )
            self.records.append((parts[0], parts[1]))
        self.remove = [KeyPattern.parse(k) for k in opts.list("remove_key")]
        allow_raw = opts.list("allowlist_key") + opts.list("whitelist_key")
        self.allow = [KeyPattern.parse(k) for k in allow_raw]
        if self.remove and self.allow:
            key = "allowlist_key" if opts.is_set("allowlist_key") else "whitelist_key"
            raise ConfigError(
                "remove_key and allowlist_key are exclusive: use one or the other",
                opts.origin(key),
                section=section,
                key=key,
            )
        self.uuid_key = opts.opt_str("uuid_key") or None

        self._removed = _key_test(self.remove)
        self._allowed = _key_test(self.allow)

    def modify(self, record: Any) -> Any:
        """The changed record (non-map records pass unchanged)."""
        if not isinstance(record, dict):
            return record
        if self.remove:
            removed = self._removed
            out = {k: v for k, v in record.items() if not removed(k)}
        elif self.allow:
            allowed = self._allowed
            out = {k: v for k, v in record.items() if allowed(k)}
        else:
            out = dict(record)
        for key, value in self.records:
            out.pop(key, None)
            out[key] = value
        if self.uuid_key:
            out[self.uuid_key] = str(uuid.uuid4())
        return out

    def filter(self, tag: str, entries: list[Any]) -> list[Any]:
        modify = self.modify
        return [(entry[0], modify(entry[1])) for entry in entries]

    def __repr__(self) -> str:
        return (
            f"<RecordModifierFilter {self.ctx.name} records={len(self.records)} "
            f"remove={len(self.remove)} allow={len(self.allow)}>"
        )

"""The ``nest`` filter: move top-level keys into a map, or lift a map's keys up.

``Operation nest`` moves the keys selected by ``Wildcard`` (repeatable; a
trailing ``*`` matches a prefix, otherwise the whole key) into a new map under
``Nest_under``; the other keys come first, the new map last.  ``Operation
lift`` replaces the map under ``Nested_under`` by its keys (a value that is not
a map is left alone).  ``Add_prefix`` / ``Remove_prefix`` (exclusive) rename
the moved keys.  A record with nothing to move passes unchanged.  As in Fluent
Bit, a moved key wins over an existing key of the same name (Fluent Bit writes
both and readers keep the last).
"""

from __future__ import annotations

from typing import Any, ClassVar

from relaybit.config.schema import ConfigMap, Option
from relaybit.errors import ConfigError
from relaybit.plugins.base import FilterPlugin, PluginContext


class NestFilter(FilterPlugin):
    """Nest keys under a map, or lift a map's keys to the top level."""

    description = "Nest keys under a map or lift a map's keys to the top level"
    options: ClassVar[ConfigMap] = ConfigMap(
        (
            Option("operation", "str", None, "nest or lift (required)", choices=("nest", "lift")),
            Option(
                "wildcard",
                "str",
                None,
                "nest: key to move; a trailing * matches a prefix (repeatable)",
                multiple=True,
            ),
            Option("nest_under", "str", None, "nest: the map the keys go under"),
            Option("nested_under", "str", None, "lift: the map whose keys go up"),
            Option("add_prefix", "str", None, "Prefix added to the moved keys"),
            Option("remove_prefix", "str", None, "Prefix removed from the moved keys"),
            Option("prefix_with", "str", None, "Old name of add_prefix"),
        )
    )

    def __init__(self, ctx: PluginContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        section = f"[FILTER] {ctx.name}"
        somewhere = opts.section_origin()
        operation = opts.opt_str("operation")
        if not operation:
            raise ConfigError("missing 'operation': nest or lift", somewhere, section=section)
        self.operation = operation.lower()
        self.exact: set[str] = set()
        prefixes: list[str] = []
        for value in opts.list("wildcard"):
            text = str(value)
            if text.endswith("*"):
                prefixes.append(text[:-1])
            elif text:
                self.exact.add(text)
        #: the keys a Wildcard ending in ``*`` names start with (one str.startswith)
        self.prefixes = tuple(prefixes)
        add = opts.opt_str("add_prefix") or opts.opt_str("prefix_with")
        remove = opts.opt_str("remove_prefix")
        if add and remove:
            raise ConfigError(
                "add_prefix and remove_prefix are exclusive",
                opts.origin("remove_prefix"),
                section=section,
                key="remove_prefix",
            )
        self.add_prefix = add or ""
        self.remove_prefix = remove or ""
        if self.operation == "nest":
            self.key = opts.opt_str("nest_under") or ""
            if not self.key:
                raise ConfigError(
                    "operation nest needs 'nest_under': the map the keys go under",
                    opts.origin("operation"),
                    section=section,
                    key="nest_under",
                )
            if not self.exact and not self.prefixes:
                raise ConfigError(
                    "operation nest needs at least one 'wildcard': the keys to move",
                    opts.origin("operation"),
                    section=section,
                    key="wildcard",
                )
        else:
            self.key = opts.opt_str("nested_under") or ""
            if not self.key:
                raise ConfigError(
                    "operation lift needs 'nested_under': the map whose keys go up",
                    opts.origin("operation"),
                    section=section,
                    key="nested_under",
                )
        self.warned_not_map = False

    def rename(self, key: Any) -> Any:
        """``key`` with add_prefix / remove_prefix applied (only text keys change)."""
        if not isinstance(key, str):
            return key
        if self.add_prefix:
            return self.add_prefix + key
        if self.remove_prefix and key.startswith(self.remove_prefix):
            return key[len(self.remove_prefix) :]
        return key

    def nest(self, record: dict[Any, Any]) -> dict[Any, Any]:
        """The record with its selected keys moved under ``nest_under``."""
        exact, prefixes = self.exact, self.prefixes
        moved: dict[Any, Any] = {}
        out: dict[Any, Any] = {}
        for k, v in record.items():  # selected: a text key named by a Wildcard
            if (k.__class__ is str or isinstance(k, str)) and (
                k in exact or (prefixes and k.startswith(prefixes))
            ):
                moved[k] = v
            else:
                out[k] = v
        if not moved:
            return record
        if self.add_prefix or self.remove_prefix:
            rename = self.rename
            moved = {rename(k): v for k, v in moved.items()}
        out[self.key] = moved
        return out

    def lift(self, record: dict[Any, Any]) -> dict[Any, Any]:
        """The record with the map under ``nested_under`` replaced by its keys."""
        inner = record.get(self.key)
        if inner is None:
            return record
        if not isinstance(inner, dict):
            if not self.warned_not_map:
                self.warned_not_map = True
                self.ctx.logger.info(
                    "value of key '%s' is not a map; not lifting it (logged once)",
                    self.key,
                )
            return record
        out = {k: v for k, v in record.items() if k != self.key}
        for key, value in inner.items():
            out[self.rename(key)] = value
        return out

    def filter(self, tag: str, entries: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
        change = self.nest if self.operation == "nest" else self.lift
        return [(t, change(r) if isinstance(r, dict) else r) for t, r in entries]

    def __repr__(self) -> str:
        return f"<NestFilter {self.ctx.name} {self.operation} {self.key!r}>"

"""Options declared once: each plugin has a :class:`ConfigMap` of :class:`Option`.

Validation, ``-h`` help, the docs' reference pages and the JSON schema all come from
these tables.  :meth:`ConfigMap.resolve` turns a section's raw properties into
:class:`Options` (typed values that keep their origin), and rejects unknown keys
with a "did you mean" hint.
"""

from __future__ import annotations

import builtins
import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from relaybit.config.origin import Origin
from relaybit.config.units import parse_bool, parse_size, parse_time
from relaybit.errors import ConfigError, ConfigErrors

OptionType = Literal["str", "int", "bool", "size", "time", "float", "port", "list"]


@dataclass(frozen=True, slots=True)
class Option:
    """One configuration key of a plugin.

    ``multiple`` keys keep every occurrence in order (``Add`` in modify).
    ``per_node`` keys may also be set on an upstream ``[NODE]`` and override the
    output's value there.  ``secret`` values are masked in every display.
    ``prefix`` options accept any key that starts with ``name`` (``security.users``
    style keys are plain; ``header`` is plain and ``multiple``).
    """

    name: str
    type: OptionType = "str"
    default: Any = None
    description: str = ""
    multiple: bool = False
    per_node: bool = False
    secret: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    #: non-empty: accepted for Fluent Bit compatibility but does nothing in relaybit;
    #: the reason is logged once at start-up when the key is written
    no_effect: str = ""
    #: non-empty: a key Fluent Bit declares that relaybit refuses (a configuration
    #: error saying this reason) unless it is left at its default / off
    refused: str = ""
    #: any key starting with ``name`` is this option (``parser_`` takes ``parser_1``)
    prefix: bool = False

    def convert(self, raw: str) -> Any:
        """Convert one raw string to this option's type; ValueError with the reason."""
        text = raw.strip()
        if self.type == "str":
            value: Any = text
        elif self.type == "bool":
            value = parse_bool(text)
        elif self.type == "int":
            try:
                value = int(text, 10)
            except ValueError:
                raise ValueError(f"expected an integer, got {raw!r}") from None
        elif self.type == "float":
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"expected a number, got {raw!r}") from None
        elif self.type == "size":
            value = parse_size(text)
        elif self.type == "time":
            value = parse_time(text)
        elif self.type == "port":
            if not text.isdigit() or not 1 <= int(text) <= 65535:
                raise ValueError(f"expected a port number 1..65535, got {raw!r}")
            value = int(text)
        elif self.type == "list":
            value = [part for part in text.replace(",", " ").split() if part]
        else:  # pragma: no cover - guarded by the Literal type
            raise AssertionError(self.type)
        if self.choices and str(value).lower() not in self.choices:
            raise ValueError(f"expected one of {', '.join(self.choices)}, got {raw!r}")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"expected at least {self.minimum:g}, got {raw!r}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"expected at most {self.maximum:g}, got {raw!r}")
        return value

    def describe_type(self) -> str:
        if self.choices:
            return "|".join(self.choices)
        return self.type

    def described(self) -> str:
        """The description with its notes, as ``-h`` and the docs' reference show it:
        repeatable, per node, secret, a key prefix, no effect, refused."""
        notes = []
        if self.multiple:
            notes.append("repeatable")
        if self.per_node:
            notes.append("per node")
        if self.secret:
            notes.append("secret")
        if self.prefix:
            notes.append(f"any key starting with {self.name}")
        if self.no_effect:
            notes.append(f"no effect in relaybit: {self.no_effect}")
        if self.refused:
            notes.append(f"refused unless off: {self.refused}")
        return self.description + (f" ({', '.join(notes)})" if notes else "")


@dataclass(frozen=True, slots=True)
class RawProperty:
    """A key and its raw string value, as written, with where it was written."""

    key: str
    value: str
    origin: Origin = field(compare=False)


class Options(Mapping[str, Any]):
    """Typed option values of one plugin instance, each with its origin.

    A mapping from option name to value (a list for ``multiple`` options).
    Typed accessors keep plugin code checkable by mypy.
    """

    __slots__ = ("_origins", "_sequence", "_set", "_values", "configmap")

    def __init__(
        self,
        configmap: ConfigMap,
        values: dict[str, Any],
        origins: dict[str, Origin],
        explicitly_set: set[str],
        sequence: list[tuple[str, Any, Origin]] | None = None,
    ) -> None:
        self.configmap = configmap
        self._values = values
        self._origins = origins
        self._set = explicitly_set
        self._sequence = sequence

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Any:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def is_set(self, key: str) -> bool:
        """True when the user wrote this key (rather than it taking its default)."""
        return key in self._set

    def origin(self, key: str) -> Origin | None:
        return self._origins.get(key)

    def section_origin(self) -> Origin | None:
        """Where the section stands, for an error about no key in particular:
        its ``Name`` line, else the first value written in it."""
        written = self.in_order()
        return self.origin("name") or (written[0][2] if written else None)

    def in_order(self) -> list[tuple[str, Any, Origin | None]]:
        """Every value the user wrote as ``(name, value, origin)``, in file order.

        Filters whose rules apply in the order written (``modify``) need the
        order across different keys, and each value's own line for errors.
        """
        if self._sequence is not None:
            return list(self._sequence)
        out: list[tuple[str, Any, Origin | None]] = []
        for name in self.configmap.names():
            if name not in self._set:
                continue
            for value in self.list(name) if self.configmap.options_multiple(name) else [self[name]]:
                out.append((name, value, self._origins.get(name)))
        return out

    def without_effect(self) -> builtins.list[tuple[builtins.str, builtins.str, Origin | None]]:
        """``(key, reason, origin)`` of each key the user wrote that relaybit accepts
        without effect (:attr:`Option.no_effect`), for one warning at start-up."""
        out = []
        for name in self.configmap.names():
            opt = self.configmap.get(name)
            if opt is not None and opt.no_effect and name in self._set:
                out.append((name, opt.no_effect, self._origins.get(name)))
        return out

    def str(self, key: builtins.str) -> builtins.str:
        value = self._values.get(key)
        return "" if value is None else str(value)

    def opt_str(self, key: builtins.str) -> builtins.str | None:
        value = self._values.get(key)
        return None if value is None else str(value)

    def int(self, key: builtins.str) -> builtins.int:
        return int(self._values[key])

    def float(self, key: builtins.str) -> builtins.float:
        return float(self._values[key])

    def bool(self, key: builtins.str) -> builtins.bool:
        return bool(self._values.get(key))

    def list(self, key: builtins.str) -> builtins.list[Any]:
        value = self._values.get(key)
        if value is None:
            return []
        return list(value) if isinstance(value, list) else [value]

    def masked(self) -> dict[builtins.str, Any]:
        """The values with every secret replaced by ``******`` (for display and APIs)."""
        out: dict[builtins.str, Any] = {}
        for key, value in self._values.items():
            opt = self.configmap.get(key)
            out[key] = "******" if opt is not None and opt.secret and value else value
        return out

    def __repr__(self) -> builtins.str:
        return f"<Options {self.masked()!r}>"


@dataclass(frozen=True)
class ConfigMap:
    """The declared options of one plugin (or of a section such as ``[SERVICE]``)."""

    options: tuple[Option, ...]
    _index: dict[str, Option] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {o.name: o for o in self.options})

    def __add__(self, other: ConfigMap) -> ConfigMap:
        names = {o.name for o in other.options}
        return ConfigMap(tuple(o for o in self.options if o.name not in names) + other.options)

    @staticmethod
    def joined(*maps: ConfigMap) -> ConfigMap:
        """``maps`` in one (a later map's option wins over an earlier one's)."""
        out = ConfigMap(())
        for cmap in maps:
            out = out + cmap
        return out

    def get(self, name: str) -> Option | None:
        low = name.lower()
        found = self._index.get(low)
        if found is None:
            for opt in self.options:
                if opt.prefix and low.startswith(opt.name) and low != opt.name:
                    return opt
        return found

    def names(self) -> list[str]:
        return [o.name for o in self.options]

    def options_multiple(self, name: str) -> bool:
        opt = self.get(name)
        return opt is not None and opt.multiple

    def suggest(self, key: str) -> str | None:
        """The closest known key to a misspelt one, or None."""
        return suggest(key, self.names())

    def resolve(
        self,
        properties: Iterable[RawProperty],
        *,
        section: str,
        ignore: Sequence[str] = (),
        overrides: Mapping[str, RawProperty] | None = None,
    ) -> Options:
        """Validate raw properties and convert them; collects every error.

        ``ignore`` names keys handled elsewhere (``name``, ``match`` ...).
        ``overrides`` (per-node keys) replace the section's value of the same key.
        Raises :class:`ConfigErrors` listing each unknown key (with a "did you
        mean" hint), each bad value and what was expected.
        """
        errors: list[ConfigError] = []
        values: dict[str, Any] = {}
        origins: dict[str, Origin] = {}
        explicit: set[str] = set()
        sequence: list[tuple[str, Any, Origin]] = []
        ignored = {k.lower() for k in ignore}
        props = list(properties)
        if overrides:
            over_keys = {k.lower() for k in overrides}
            props = [p for p in props if p.key.lower() not in over_keys] + list(overrides.values())
        for prop in props:
            key = prop.key.lower()
            if key in ignored:
                continue
            opt = self.get(key)
            if opt is None:
                hint = self.suggest(key)
                message = f"unknown configuration property '{prop.key}'"
                message += f"; did you mean '{hint}'?" if hint else ""
                errors.append(ConfigError(message, prop.origin, section=section))
                continue
            try:
                value = opt.convert(prop.value)
            except ValueError as exc:
                errors.append(ConfigError(str(exc), prop.origin, section=section, key=opt.name))
                continue
            if opt.refused and not _harmless(opt, value):
                message = f"'{opt.name}' is not supported by relaybit: {opt.refused}"
                errors.append(ConfigError(message, prop.origin, section=section, key=opt.name))
                continue
            if opt.multiple:
                values.setdefault(opt.name, []).append(value)
            else:
                values[opt.name] = value
            origins[opt.name] = prop.origin
            explicit.add(opt.name)
            sequence.append((opt.name, value, prop.origin))
        if errors:
            raise ConfigErrors(errors)
        for opt in self.options:
            if opt.name not in values:
                values[opt.name] = list(opt.default or []) if opt.multiple else opt.default
        return Options(self, values, origins, explicit, sequence)

    def json_schema(self) -> dict[str, Any]:
        """A JSON schema of this map (every value is a string in a config file)."""
        props: dict[str, Any] = {}
        for o in self.options:
            entry: dict[str, Any] = {"type": "string", "description": o.description}
            if o.default is not None:
                entry["default"] = str(o.default)
            if o.choices:
                entry["enum"] = list(o.choices)
            props[o.name] = {"type": "array", "items": entry} if o.multiple else entry
        return {"type": "object", "properties": props, "additionalProperties": False}


def _harmless(opt: Option, value: Any) -> bool:
    """A refused key left at what does nothing (``tls off``, its default) is accepted."""
    return value == opt.default or (opt.type == "bool" and value is False and not opt.default)


def suggest(key: str, known: Iterable[str]) -> str | None:
    """The closest name in ``known`` to ``key`` ('tls_verify' -> 'tls.verify')."""
    low = key.lower()
    candidates = list(known)
    normal = {k.replace("_", ".").replace("-", "."): k for k in candidates}
    fixed = low.replace("_", ".").replace("-", ".")
    if fixed in normal and normal[fixed] != low:
        return normal[fixed]
    for i in range(len(low) - 1):  # two swapped letters: 'prot' -> 'port'
        swapped = low[:i] + low[i + 1] + low[i] + low[i + 2 :]
        if swapped != low and swapped in candidates:
            return swapped
    close = difflib.get_close_matches(low, candidates, n=1, cutoff=0.8)
    return close[0] if close else None

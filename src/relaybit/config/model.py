"""The format-neutral, typed configuration model (both readers produce it).

Origins never take part in equality: ``agent.conf`` and ``agent.yaml`` of the
examples load to equal objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from relaybit.config.env import EnvFile
from relaybit.config.origin import Origin
from relaybit.config.routes import InputRoute
from relaybit.config.schema import RawProperty
from relaybit.upstream.node import UpstreamSpec

PluginKind = Literal["input", "filter", "output", "processor"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Section:
    """A generic section (``[SERVICE]``, ``[PARSER]``, ``[MULTILINE_PARSER]`` ...)."""

    kind: str
    properties: tuple[RawProperty, ...] = ()
    origin: Origin | None = field(default=None, compare=False)
    #: an input's conditional routes (YAML ``routes:``)
    routes: tuple[InputRoute, ...] = ()
    #: an input's or output's processors (YAML ``processors: logs:``), in order
    processors: tuple[Section, ...] = ()

    def get(self, key: str) -> str | None:
        """The last value of ``key`` (case-insensitive), or None."""
        prop = self.get_prop(key)
        return None if prop is None else prop.value

    def get_prop(self, key: str) -> RawProperty | None:
        low = key.lower()
        for prop in reversed(self.properties):
            if prop.key.lower() == low:
                return prop
        return None

    def get_all(self, key: str) -> list[str]:
        low = key.lower()
        return [p.value for p in self.properties if p.key.lower() == low]


@dataclass(frozen=True, slots=True, kw_only=True)
class PluginInstance:
    """One ``[INPUT]``, ``[FILTER]`` or ``[OUTPUT]``.

    ``properties`` keeps every key in order (repeated keys too), each with its
    origin; ``name`` is not among them.  For an output with an ``upstream`` key,
    ``upstream`` holds the loaded file and the key itself is not among
    ``properties`` (its path is in ``upstream.path``).
    """

    kind: PluginKind
    plugin: str
    properties: tuple[RawProperty, ...] = ()
    upstream: UpstreamSpec | None = None
    origin: Origin | None = field(default=None, compare=False)
    #: an input's conditional routes (YAML ``routes:``; :mod:`relaybit.config.routes`)
    routes: tuple[InputRoute, ...] = ()
    #: an input's or output's processors (YAML ``processors: logs:``; kind "processor"),
    #: run in order on the input's records before they are buffered, or on a chunk
    #: just before the output sends it
    processors: tuple[PluginInstance, ...] = ()

    def get(self, key: str) -> str | None:
        low = key.lower()
        for prop in reversed(self.properties):
            if prop.key.lower() == low:
                return prop.value
        return None


@dataclass(frozen=True, kw_only=True)
class AgentConfig:
    """A whole configuration: service settings, pipeline, parsers."""

    service: tuple[RawProperty, ...] = ()
    inputs: tuple[PluginInstance, ...] = ()
    filters: tuple[PluginInstance, ...] = ()
    outputs: tuple[PluginInstance, ...] = ()
    parsers: tuple[Section, ...] = ()
    multiline_parsers: tuple[Section, ...] = ()
    path: str = field(default="", compare=False)
    #: variables read from files (``file://`` / YAML ``uri:``), watched when they refresh
    env_files: tuple[EnvFile, ...] = field(default=(), compare=False)

"""Upstream files: one ``[UPSTREAM]`` and its ``[NODE]`` sections -> :class:`UpstreamSpec`.

Classic::

    [UPSTREAM]
        name  forward-balancing
    [NODE]
        name  node-1
        host  127.0.0.1
        port  24224
        shared_key secret

or YAML (``upstream_servers: [{name, nodes: [{name, host, port, ...}]}]``).

Rules, with an error (file, line, section, key, what was expected) wherever
Fluent Bit would crash or silently guess:

- exactly one ``[UPSTREAM]`` (one entry of ``upstream_servers``) with a ``name``;
  its keys are :data:`~relaybit.upstream.node.UPSTREAM_OPTIONS`;
- one or more ``[NODE]``, each with ``name``, ``host`` and ``port`` (1..65535),
  names unique, no key written twice in a node;
- known node keys (:data:`~relaybit.upstream.node.NODE_OPTIONS`) are typed; any
  other key is a plugin key kept lowercased in ``Node.extra`` (the output
  validates it), unless it is a near-miss of a known key (``tls_verify``),
  which is an error with "did you mean".
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from relaybit.config.classic import read_classic
from relaybit.config.env import Env
from relaybit.config.model import Section
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty, suggest
from relaybit.config.yaml import is_yaml_path, read_yaml
from relaybit.errors import ConfigError, ConfigErrors
from relaybit.upstream.node import (
    NODE_OPTIONS,
    UPSTREAM_OPTIONS,
    Node,
    TLSSettings,
    UpstreamSettings,
    UpstreamSpec,
)

_MANDATORY = ("name", "host", "port")


def load_upstream_file(path: str | Path, env: Env | None = None) -> UpstreamSpec:
    """Read and validate an upstream file (classic, or YAML by extension).

    Raises :class:`ConfigErrors` listing every problem found.
    """
    reader = read_yaml if is_yaml_path(path) else read_classic
    sections = reader(path, env)
    return build_upstream(sections, str(path), yaml=is_yaml_path(path))


def build_upstream(sections: Sequence[Section], path: str, *, yaml: bool = False) -> UpstreamSpec:
    """The :class:`UpstreamSpec` of an upstream file's sections; collects every error."""
    errors: list[ConfigError] = []
    upstreams = [s for s in sections if s.kind == "upstream"]
    nodes = [s for s in sections if s.kind == "node"]
    for other in sections:
        if other.kind not in ("upstream", "node"):
            errors.append(
                ConfigError(
                    f"an upstream file holds only [UPSTREAM] and [NODE] sections, "
                    f"found [{other.kind.upper()}]",
                    other.origin,
                )
            )
    file_origin = Origin(path)
    if not upstreams:
        message = (
            "no 'upstream_servers' list; expected upstream_servers: [{name, nodes: [...]}]"
            if yaml
            else "no [UPSTREAM] section; expected one [UPSTREAM] with a name"
        )
        raise ConfigErrors([*errors, ConfigError(message, file_origin)])
    first = upstreams[0]
    for extra in upstreams[1:]:
        what = "a second entry of upstream_servers" if yaml else "a second [UPSTREAM] section"
        errors.append(
            ConfigError(
                f"{what} (the first is at line {_line(first.origin)}); an upstream file "
                "holds exactly one upstream",
                extra.origin,
                section="[UPSTREAM]",
            )
        )

    name = first.get("name")
    settings = UpstreamSettings()
    if not name:
        errors.append(
            ConfigError("missing mandatory key 'name'", first.origin, section="[UPSTREAM]")
        )
    try:
        errors.extend(_duplicates(first, "[UPSTREAM]"))
        settings = UpstreamSettings.from_options(
            UPSTREAM_OPTIONS.resolve(first.properties, section="[UPSTREAM]")
        )
    except ConfigErrors as exc:
        errors.extend(exc.errors)

    if not nodes:
        where = "no nodes under upstream_servers" if yaml else "no [NODE] section"
        errors.append(ConfigError(f"{where}; expected at least one node", first.origin))
    built: list[Node] = []
    seen: dict[str, Origin | None] = {}
    for section in nodes:
        try:
            node = build_node(section)
        except ConfigErrors as exc:
            errors.extend(exc.errors)
            continue
        if node.name in seen:
            errors.append(
                ConfigError(
                    f"duplicate node name '{node.name}' (first defined at line "
                    f"{_line(seen[node.name])}); node names must be unique",
                    node.properties["name"].origin,
                    section=f"[NODE] {node.name}",
                    key="name",
                )
            )
            continue
        seen[node.name] = section.origin
        built.append(node)
    if errors:
        raise ConfigErrors(errors)
    assert name is not None
    return UpstreamSpec(
        name=name, nodes=tuple(built), settings=settings, path=path, origin=first.origin
    )


def build_node(section: Section) -> Node:
    """One typed :class:`Node` from a ``[NODE]`` section; ConfigErrors on any problem."""
    name = section.get("name")
    label = f"[NODE] {name}" if name else "[NODE]"
    errors = _duplicates(section, label)
    for key in _MANDATORY:
        if not section.get(key):
            errors.append(
                ConfigError(
                    f"missing mandatory key '{key}'; every node needs name, host and port",
                    section.origin,
                    section=label,
                )
            )
    known: list[RawProperty] = []
    extra: dict[str, RawProperty] = {}
    names = NODE_OPTIONS.names()
    for prop in section.properties:
        if NODE_OPTIONS.get(prop.key) is not None:
            known.append(prop)
            continue
        hint = suggest(prop.key, names)
        if hint:
            errors.append(
                ConfigError(
                    f"unknown node key '{prop.key}'; did you mean '{hint}'?",
                    prop.origin,
                    section=label,
                )
            )
            continue
        extra[prop.key.lower()] = prop
    try:
        opts = NODE_OPTIONS.resolve(known, section=label)
    except ConfigErrors as exc:
        errors.extend(exc.errors)
    if errors:
        raise ConfigErrors(errors)
    return Node(
        name=opts.str("name"),
        host=opts.str("host"),
        port=opts.int("port"),
        tls=TLSSettings.from_options(opts),
        weight=opts.int("weight"),
        standby=opts.bool("standby"),
        extra=extra,
        properties={p.key.lower(): p for p in section.properties},
        origin=section.origin,
    )


def _duplicates(section: Section, label: str) -> list[ConfigError]:
    first: dict[str, RawProperty] = {}
    errors = []
    for prop in section.properties:
        key = prop.key.lower()
        if key in first:
            errors.append(
                ConfigError(
                    f"set twice (first at line {_line(first[key].origin)}); "
                    "a key may appear once per section here",
                    prop.origin,
                    section=label,
                    key=key,
                )
            )
        else:
            first[key] = prop
    return errors


def _line(origin: Origin | None) -> int:
    return origin.line if origin is not None else 0

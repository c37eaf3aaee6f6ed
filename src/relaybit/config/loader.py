"""Configuration files -> the typed model, and validation of the whole of it.

``load_config(path)`` reads a classic or YAML file (by extension) with its
includes, builds an :class:`~relaybit.config.model.AgentConfig`, loads each
output's ``upstream`` file (resolved against the directory of the *main*
configuration file) and every ``parsers_file``.  ``check_keys(config)`` then
checks every key of every section against the option tables and raises
:class:`~relaybit.errors.ConfigErrors` listing all the problems at once;
building every plugin without starting it (what ``relaybit --dry-run`` and
``relaybit.validate`` do) is :func:`relaybit.agent.check_config`, one layer up.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Sequence
from pathlib import Path

from relaybit.config.classic import read_classic
from relaybit.config.env import Env
from relaybit.config.model import AgentConfig, PluginInstance, PluginKind, Section
from relaybit.config.origin import Origin
from relaybit.config.schema import ConfigMap, RawProperty, suggest
from relaybit.config.service import SERVICE_DNS_KEYS, ServiceSettings, resolve_service
from relaybit.config.units import parse_bool
from relaybit.config.yaml import is_yaml_path, read_yaml
from relaybit.errors import ConfigError, ConfigErrors
from relaybit.plugins import registry
from relaybit.plugins.base import (
    FILTER_COMMON,
    INPUT_COMMON,
    OUTPUT_COMMON,
    PROCESSOR_COMMON,
    SERVER_INPUT_EXTRA,
    SERVER_TLS_EXTRA,
)
from relaybit.upstream.node import NET_OPTIONS, OUTPUT_TLS_EXTRA, TLS_OPTIONS
from relaybit.upstream.spec import load_upstream_file

__all__ = [
    "check_keys",
    "full_configmap",
    "inherit_service_defaults",
    "inherit_storage",
    "load_config",
    "load_parsers",
    "load_plugin",
    "load_upstream_file",
    "read_sections",
    "resolve_upstreams",
    "service_settings",
]

_PLUGIN_KINDS: dict[str, PluginKind] = {"input": "input", "filter": "filter", "output": "output"}
_COMMON: dict[PluginKind, ConfigMap] = {
    "input": INPUT_COMMON,
    "filter": FILTER_COMMON,
    "output": OUTPUT_COMMON,
    "processor": PROCESSOR_COMMON,
}


def read_sections(path: str | Path, env: Env | None = None) -> list[Section]:
    """The sections of a configuration file, classic or YAML by extension."""
    reader = read_yaml if is_yaml_path(path) else read_classic
    return reader(path, env)


def load_config(path: str | Path, env: Env | None = None) -> AgentConfig:
    """Load a configuration file into an :class:`AgentConfig` (not yet validated).

    Raises ConfigError (or ConfigErrors) naming file and line of each problem.
    """
    main = str(path)
    env = env or Env()
    sections = read_sections(main, env)
    base_dir = Path(main).parent
    errors: list[ConfigError] = []
    service: list[RawProperty] = []
    instances: dict[PluginKind, list[PluginInstance]] = {"input": [], "filter": [], "output": []}
    parsers: list[Section] = []
    multiline: list[Section] = []
    for section in sections:
        kind = section.kind
        if kind == "service":
            service.extend(section.properties)
        elif kind in _PLUGIN_KINDS:
            try:
                instances[_PLUGIN_KINDS[kind]].append(_instance(_PLUGIN_KINDS[kind], section))
            except ConfigError as exc:
                errors.append(exc)
        elif kind in ("parser", "multiline_parser"):
            (parsers if kind == "parser" else multiline).append(section)
        else:
            errors.append(
                ConfigError(
                    f"[{kind.upper()}] belongs in an upstream file, named by an output's "
                    "'upstream' key",
                    section.origin,
                )
            )
    outputs, upstream_errors = _resolve(instances["output"], base_dir)
    errors.extend(upstream_errors)
    parser_files = [p for p in service if p.key == "parsers_file"]
    try:
        more, more_ml = load_parsers(parser_files, base_dir, env)
        parsers.extend(more)
        multiline.extend(more_ml)
    except ConfigErrors as exc:
        errors.extend(exc.errors)
    except ConfigError as exc:
        errors.append(exc)
    errors.extend(_check_parsers([*parsers, *multiline]))
    if errors:
        raise ConfigErrors(errors)
    return AgentConfig(
        service=tuple(service),
        inputs=tuple(instances["input"]),
        filters=tuple(instances["filter"]),
        outputs=tuple(outputs),
        parsers=tuple(parsers),
        multiline_parsers=tuple(multiline),
        path=main,
        env_files=tuple(env.files),
    )


def _instance(kind: PluginKind, section: Section) -> PluginInstance:
    name = section.get_prop("name")
    label = f"[{kind.upper()}]"
    if name is None or not name.value.strip():
        raise ConfigError(
            "missing mandatory key 'name' (the plugin to use)", section.origin, section=label
        )
    props = tuple(p for p in section.properties if p.key != "name")
    return PluginInstance(
        kind=kind,
        plugin=name.value.strip().lower(),
        properties=props,
        origin=name.origin,
        routes=section.routes,
        processors=tuple(_instance("processor", p) for p in section.processors),
    )


def resolve_upstreams(
    outputs: Iterable[PluginInstance], base_dir: str | Path, env: Env | None = None
) -> list[PluginInstance]:
    """Load each output's ``upstream`` file (relative to ``base_dir``) into ``.upstream``.

    The ``upstream`` key leaves ``properties``.  Raises ConfigErrors with every problem.
    """
    resolved, errors = _resolve(outputs, Path(base_dir), env)
    if errors:
        raise ConfigErrors(errors)
    return resolved


def _resolve(
    outputs: Iterable[PluginInstance], base_dir: Path, env: Env | None = None
) -> tuple[list[PluginInstance], list[ConfigError]]:
    resolved: list[PluginInstance] = []
    errors: list[ConfigError] = []
    for out in outputs:
        prop = next((p for p in reversed(out.properties) if p.key.lower() == "upstream"), None)
        if prop is None:
            resolved.append(out)
            continue
        target = Path(prop.value).expanduser()
        if not target.is_absolute():
            target = base_dir / target
        try:
            if target.is_dir():
                raise ConfigError(
                    f"{str(target)!r} is a directory, expected an upstream file",
                    prop.origin,
                    section=f"[OUTPUT] {out.plugin}",
                    key="upstream",
                )
            if not target.is_file():
                what = "is not a regular file" if target.exists() else "does not exist"
                raise ConfigError(
                    f"upstream file {str(target)!r} {what}",
                    prop.origin,
                    section=f"[OUTPUT] {out.plugin}",
                    key="upstream",
                )
            spec = load_upstream_file(target, env)
        except ConfigErrors as exc:
            errors.extend(exc.errors)
            continue
        except ConfigError as exc:
            errors.append(exc)
            continue
        props = tuple(p for p in out.properties if p.key.lower() != "upstream")
        resolved.append(dataclasses.replace(out, properties=props, upstream=spec))
    return resolved, errors


def load_parsers(
    files: Sequence[RawProperty], base_dir: str | Path, env: Env | None = None
) -> tuple[list[Section], list[Section]]:
    """Read ``parsers_file`` entries: (parser sections, multiline parser sections).

    Each path resolves against ``base_dir``; the files hold only [PARSER] and
    [MULTILINE_PARSER] sections (classic, or YAML ``parsers:``/``multiline_parsers:``).
    """
    parsers: list[Section] = []
    multiline: list[Section] = []
    errors: list[ConfigError] = []
    for prop in files:
        target = Path(prop.value).expanduser()
        if not target.is_absolute():
            target = Path(base_dir) / target
        if not target.is_file():
            what = (
                "is a directory"
                if target.is_dir()
                else "is not a regular file"
                if target.exists()
                else "does not exist"
            )
            errors.append(
                ConfigError(
                    f"parsers file {str(target)!r} {what}",
                    prop.origin,
                    section="[SERVICE]",
                    key="parsers_file",
                )
            )
            continue
        try:
            sections = read_sections(target, env)
        except ConfigError as exc:
            errors.extend(exc.errors if isinstance(exc, ConfigErrors) else [exc])
            continue
        for section in sections:
            if section.kind == "parser":
                parsers.append(section)
            elif section.kind == "multiline_parser":
                multiline.append(section)
            else:
                errors.append(
                    ConfigError(
                        f"a parsers file holds only [PARSER] and [MULTILINE_PARSER] "
                        f"sections, found [{section.kind.upper()}]",
                        section.origin,
                    )
                )
    if errors:
        raise ConfigErrors(errors)
    return parsers, multiline


def _check_parsers(sections: Iterable[Section]) -> list[ConfigError]:
    errors = []
    for section in sections:
        if not section.get("name"):
            errors.append(
                ConfigError(
                    "missing mandatory key 'name'",
                    section.origin,
                    section=f"[{section.kind.upper()}]",
                )
            )
    return errors


def full_configmap(kind: PluginKind, plugin_cls: type | None) -> ConfigMap:
    """Every key an instance of ``plugin_cls`` accepts: the kind's common keys,
    for outputs ``net.*`` and ``tls.*``, for server inputs (those with ``listen``)
    Fluent Bit's downstream ``net.*`` keys, then the plugin's own (which win)."""
    base = _COMMON[kind]
    own = getattr(plugin_cls, "options", None)
    if kind == "output":
        base = base + NET_OPTIONS + TLS_OPTIONS + OUTPUT_TLS_EXTRA
    elif kind == "input" and isinstance(own, ConfigMap) and own.get("listen") is not None:
        base = base + SERVER_INPUT_EXTRA
        if own.get("tls") is not None:
            base = base + SERVER_TLS_EXTRA
    return base + own if isinstance(own, ConfigMap) else base


def load_plugin(kind: PluginKind, name: str, origin: Origin | None = None) -> type:
    """The plugin class of ``kind`` named ``name``; ConfigError when unknown or broken.

    A plugin whose module cannot be imported is reported as "not available"
    rather than crashing the caller.
    """
    label = f"[{kind.upper()}]"
    try:
        cls = registry.load(kind, name)
    except Exception as exc:  # a plugin module that does not import
        raise ConfigError(
            f"plugin '{name}' is not available ({type(exc).__name__}: {exc})",
            origin,
            section=label,
        ) from None
    if cls is None:
        names = registry.available(kind)
        close = difflib.get_close_matches(name.lower(), names, n=1, cutoff=0.7)
        hint = suggest(name, names) or (close[0] if close else None)
        message = f"unknown {kind} plugin '{name}'; "
        message += f"did you mean '{hint}'?" if hint else f"available: {', '.join(names)}"
        raise ConfigError(message, origin, section=label)
    return cls


def service_settings(config: AgentConfig) -> ServiceSettings:
    """The typed ``[SERVICE]`` settings of ``config`` (ConfigErrors when invalid)."""
    return ServiceSettings.from_options(resolve_service(config.service)[0])


def check_keys(config: AgentConfig) -> None:
    """Check every key of every section of ``config``, building no plugin; ConfigErrors
    listing every problem found (:func:`relaybit.agent.check_config` checks the plugins too).

    Checks: ``[SERVICE]`` keys; that each plugin exists and imports; each
    instance's keys and values (common keys + the plugin's, ``net.*``/``tls.*``
    for outputs); and that every plugin key of an upstream node is an option of
    that output declared ``per_node``, with a value of the right type.
    """
    errors: list[ConfigError] = []
    settings: ServiceSettings | None = None
    config = inherit_service_defaults(config)
    try:
        settings = service_settings(config)
    except ConfigErrors as exc:
        errors.extend(exc.errors)
    for instance in (*config.inputs, *config.filters, *config.outputs):
        errors.extend(_validate_instance(instance))
        for processor in instance.processors:
            errors.extend(_validate_instance(processor, processor_of=instance))
    if settings is not None and not settings.storage_path:
        errors.extend(_filesystem_without_path(config))
    if errors:
        raise ConfigErrors(errors)


def inherit_storage(config: AgentConfig) -> AgentConfig:
    """``[SERVICE] storage.inherit on``: every input without ``storage.type`` gets the
    service's ``storage.type`` (its value and line), as Fluent Bit 5 does."""
    inherit = type_ = None
    for prop in config.service:
        key = prop.key.lower()
        if key == "storage.inherit":
            inherit = prop
        elif key == "storage.type":
            type_ = prop
    if inherit is None or type_ is None:
        return config
    try:
        if not parse_bool(inherit.value):
            return config
    except ValueError:
        return config  # the [SERVICE] check reports the bad value
    inputs = []
    for instance in config.inputs:
        if any(p.key.lower() == "storage.type" for p in instance.properties):
            inputs.append(instance)
        else:
            props = (*instance.properties, RawProperty("storage.type", type_.value, type_.origin))
            inputs.append(dataclasses.replace(instance, properties=props))
    return dataclasses.replace(config, inputs=tuple(inputs))


#: ``[SERVICE]`` DNS keys -> the ``net.*`` key they give every network output as default
_SERVICE_DNS = {key: f"net.{key}" for key in SERVICE_DNS_KEYS}


def inherit_service_defaults(config: AgentConfig) -> AgentConfig:
    """``[SERVICE]`` keys that are defaults of plugin keys, as Fluent Bit: ``storage.type``
    with ``storage.inherit on`` (inputs), ``dns.*`` (the ``net.dns.*`` keys of every
    output that has them).  A key the plugin section sets itself wins."""
    config = inherit_storage(config)
    dns = [
        RawProperty(_SERVICE_DNS[p.key.lower()], p.value, p.origin)
        for p in config.service
        if p.key.lower() in _SERVICE_DNS
    ]
    if not dns:
        return config
    outputs = []
    for instance in config.outputs:
        try:
            cmap = full_configmap("output", load_plugin("output", instance.plugin))
        except ConfigError:
            outputs.append(instance)  # reported by the key checks
            continue
        own = {p.key.lower() for p in instance.properties}
        extra = tuple(p for p in dns if p.key not in own and cmap.get(p.key) is not None)
        outputs.append(
            dataclasses.replace(instance, properties=instance.properties + extra)
            if extra
            else instance
        )
    return dataclasses.replace(config, outputs=tuple(outputs))


def _filesystem_without_path(config: AgentConfig) -> list[ConfigError]:
    """Inputs asking for filesystem storage when ``[SERVICE] storage.path`` is unset.

    Fluent Bit falls back to memory with a warning, so a user who wanted records
    to survive a crash silently does not get it: relaybit refuses to start.
    """
    errors = []
    for instance in config.inputs:
        prop = next(
            (p for p in reversed(instance.properties) if p.key.lower() == "storage.type"), None
        )
        if prop is not None and prop.value.strip().lower() == "filesystem":
            errors.append(
                ConfigError(
                    "filesystem storage needs [SERVICE] storage.path (the folder of the"
                    " chunk files); set it, or use storage.type memory",
                    prop.origin,
                    section=f"[INPUT] {instance.plugin}",
                    key="storage.type",
                )
            )
    return errors


def processor_label(owner: PluginInstance, processor: PluginInstance) -> str:
    """``[INPUT] tail processors.logs grep``: where a processor's errors point."""
    return f"[{owner.kind.upper()}] {owner.plugin} processors.logs {processor.plugin}"


def _validate_instance(
    instance: PluginInstance, *, processor_of: PluginInstance | None = None
) -> list[ConfigError]:
    label = f"[{instance.kind.upper()}] {instance.plugin}"
    if processor_of is not None:
        label = processor_label(processor_of, instance)
    try:
        cls = load_plugin(instance.kind, instance.plugin, instance.origin)
    except ConfigError as exc:
        return [exc]
    cmap = full_configmap(instance.kind, cls)
    errors: list[ConfigError] = []
    try:
        cmap.resolve(instance.properties, section=label)
    except ConfigErrors as exc:
        errors.extend(exc.errors)
    if instance.upstream is None:
        return errors
    per_node = [o.name for o in cmap.options if o.per_node]
    for node in instance.upstream.nodes:
        node_label = f"[NODE] {node.name}"
        for key, prop in node.extra.items():
            opt = cmap.get(key)
            if opt is None or not opt.per_node:
                hint = suggest(key, per_node)
                message = f"'{prop.key}' is not a per-node option of output '{instance.plugin}'"
                if hint:
                    message += f"; did you mean '{hint}'?"
                elif per_node:
                    message += f"; per-node options: {', '.join(per_node)}"
                errors.append(ConfigError(message, prop.origin, section=node_label))
                continue
            try:
                opt.convert(prop.value)
            except ValueError as exc:
                errors.append(ConfigError(str(exc), prop.origin, section=node_label, key=key))
    return errors

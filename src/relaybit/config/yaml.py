"""The YAML configuration format (``.yaml``/``.yml``), read into generic sections.

::

    env:                {NAME: value}            # like @SET
    includes:           [other.yaml, conf.d/*.yaml]
    service:            {flush: 1, log_level: info}
    pipeline:
      inputs:           [{name: dummy, tag: app}]
      filters:          [{name: modify, match: "*", add: [a 1, b 2]}]
      outputs:          [{name: forward, upstream: upstream.yaml}]
    parsers:            [{name: json, format: json}]
    multiline_parsers:  [{name: ml, type: regex, rules: [{state: start_state, regex: ..., next_state: cont}]}]
    upstream_servers:   [{name: up, nodes: [{name: n1, host: 127.0.0.1, port: 24224}]}]

The document is *composed*, not constructed: every scalar keeps its raw text
(``on`` stays ``"on"``, ``43000`` stays ``"43000"``) and its line, so the YAML
form yields exactly the sections (and later the model) of the classic form.
A list of scalars as a value gives repeated properties.  ``${NAME}`` is
expanded as in the classic format.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from relaybit.config.env import Env, set_variable
from relaybit.config.files import IncludeStack, read_text, resolve_include
from relaybit.config.model import Section
from relaybit.config.origin import Origin
from relaybit.config.routes import (
    CONTEXTS,
    InputRoute,
    RouteCondition,
    RouteOutput,
    RouteRule,
    check_rule,
)
from relaybit.config.schema import RawProperty, suggest
from relaybit.config.units import parse_time
from relaybit.errors import ConfigError

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

TOP_LEVEL_KEYS = (
    "env",
    "includes",
    "service",
    "pipeline",
    "parsers",
    "multiline_parsers",
    "upstream_servers",
)
PIPELINE_KEYS = {"inputs": "input", "filters": "filter", "outputs": "output"}


def is_yaml_path(path: str | Path) -> bool:
    """True when ``path`` names a YAML file (by its extension)."""
    return str(path).lower().endswith((".yaml", ".yml"))


def read_yaml(
    path: str | Path, env: Env | None = None, *, _stack: IncludeStack | None = None
) -> list[Section]:
    """Read a YAML configuration file (and its includes) into sections."""
    text = read_text(path)
    return parse_yaml(text, str(path), env, _stack=_stack)


def parse_yaml(
    text: str, path: str, env: Env | None = None, *, _stack: IncludeStack | None = None
) -> list[Section]:
    """Parse YAML ``text`` read from ``path`` (includes resolve against it)."""
    reader = _YamlReader(path, env or Env(), _stack or IncludeStack())
    reader.stack.push(path, None)
    try:
        reader.read(text)
    finally:
        reader.stack.pop()
    return reader.sections


class _YamlReader:
    def __init__(self, path: str, env: Env, stack: IncludeStack) -> None:
        self.path = path
        self.env = env
        self.stack = stack
        self.sections: list[Section] = []
        self._key_lines: dict[int, yaml.Node] = {}

    def __repr__(self) -> str:
        return f"<_YamlReader {self.path!r} sections={len(self.sections)}>"

    def origin(self, node: yaml.Node) -> Origin:
        return Origin(self.path, node.start_mark.line + 1)

    def read(self, text: str) -> None:
        try:
            root = yaml.compose(text, Loader=_Loader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 0
            problem = exc.problem or exc.context or "invalid YAML"
            raise ConfigError(f"invalid YAML: {problem}", Origin(self.path, line)) from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"invalid YAML: {exc}", Origin(self.path)) from None
        if root is None:
            return
        for key, value in self.mapping(root, "the document"):
            name = key.lower()
            if name == "env":
                self.env_vars(value)
            elif name == "includes":
                self.includes(value)
            elif name == "service":
                self.add("service", value, "service")
            elif name == "pipeline":
                for sub, items in self.mapping(value, "pipeline"):
                    kind = PIPELINE_KEYS.get(sub.lower())
                    if kind is None:
                        raise self.unknown(sub, items, list(PIPELINE_KEYS), "pipeline")
                    for item in self.sequence(items, f"pipeline.{sub}"):
                        self.add(kind, item, f"[{kind.upper()}]")
            elif name == "parsers":
                for item in self.sequence(value, "parsers"):
                    self.add("parser", item, "[PARSER]")
            elif name == "multiline_parsers":
                for item in self.sequence(value, "multiline_parsers"):
                    self.add("multiline_parser", item, "[MULTILINE_PARSER]")
            elif name == "upstream_servers":
                self.upstream_servers(value)
            else:
                raise self.unknown(key, value, list(TOP_LEVEL_KEYS), "the document")

    def env_vars(self, node: yaml.Node) -> None:
        """``env:`` as a mapping (``NAME: value``) or, as Fluent Bit 5 also reads it, a list
        of ``{name, value}`` / ``{name, uri, refresh_interval}``."""
        if isinstance(node, yaml.SequenceNode):
            for item in node.value:
                self.env_item(item)
            return
        for var, val in self.mapping(node, "env"):
            origin = self.origin(val)
            set_variable(
                self.env, var, self.env.expand(self.scalar(val, var), origin), self.path, origin
            )

    def env_item(self, node: yaml.Node) -> None:
        known = ["name", "value", "uri", "refresh_interval"]
        fields = {k.lower(): v for k, v in self.mapping(node, "env list entry")}
        for key, value in fields.items():
            if key not in known:
                raise self.unknown(key, value, known, "an env list entry")
        origin = self.origin(node)
        if "name" not in fields:
            raise ConfigError("an env list entry needs 'name'", origin, section="env")
        name = self.scalar(fields["name"], "name", "env")
        if ("value" in fields) == ("uri" in fields):
            raise ConfigError(
                f"env variable '{name}' needs exactly one of 'value' and 'uri'",
                origin,
                section="env",
                key=name,
            )
        refresh = 0.0
        if "refresh_interval" in fields:
            text = self.scalar(fields["refresh_interval"], "refresh_interval", "env")
            try:
                refresh = parse_time(text)
            except ValueError as exc:
                raise ConfigError(
                    str(exc), self.origin(fields["refresh_interval"]), section="env", key=name
                ) from None
            if "uri" not in fields:
                raise ConfigError(
                    "refresh_interval needs 'uri' (a value written here never changes)",
                    self.origin(fields["refresh_interval"]),
                    section="env",
                    key=name,
                )
        key = "uri" if "uri" in fields else "value"
        where = self.origin(fields[key])
        text = self.env.expand(self.scalar(fields[key], key, "env"), where)
        set_variable(
            self.env,
            name,
            text,
            self.path,
            where,
            refresh_interval=refresh,
            from_file=key == "uri",
        )

    # -- structure ------------------------------------------------------
    def mapping(self, node: yaml.Node, where: str) -> list[tuple[str, yaml.Node]]:
        """The (key, value node) pairs of a mapping; keys remember their line.

        A key given twice is a ConfigError naming both lines: YAML keeps one
        value per key (PyYAML would keep the last silently); several values are
        written as a list.  Keys compare without case, as relaybit reads them
        (``env`` names excepted).
        """
        if not isinstance(node, yaml.MappingNode):
            raise ConfigError(f"{where} must be a mapping of key: value", self.origin(node))
        pairs = []
        seen: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(f"keys of {where} must be plain names", self.origin(key_node))
            key = str(key_node.value)
            folded = key if where == "env" else key.lower()
            first = seen.setdefault(folded, key_node)
            if first is not key_node:
                raise ConfigError(
                    f"given twice (lines {self.origin(first).line} and"
                    f" {self.origin(key_node).line}); a mapping holds one value per key:"
                    " write several values as a list",
                    self.origin(key_node),
                    section=None if where == "the document" else where,
                    key=key,
                )
            self._key_lines[id(value_node)] = key_node
            pairs.append((key, value_node))
        return pairs

    def sequence(self, node: yaml.Node, where: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise ConfigError(f"{where} must be a list", self.origin(node))
        return list(node.value)

    def scalar(self, node: yaml.Node, key: str, section: str | None = None) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise ConfigError(
                "expected a single value (or a list of values)",
                self.origin(node),
                section=section,
                key=key,
            )
        if node.value == "" and not node.style:  # a plain empty scalar (null)
            raise ConfigError("has no value", self.origin(node), section=section, key=key)
        return str(node.value)

    def fields(
        self, node: yaml.Node, where: str, known: list[str], *, also: tuple[str, ...] = ()
    ) -> dict[str, yaml.Node]:
        """A mapping's values by lower-cased key; a key not in ``known`` (nor ``also``,
        keys refused later with a reason of their own) is an :meth:`unknown` error."""
        fields = {k.lower(): v for k, v in self.mapping(node, where)}
        for key, value in fields.items():
            if key not in known and key not in also:
                raise self.unknown(key, value, known, where)
        return fields

    def unknown(self, key: str, node: yaml.Node, known: list[str], where: str) -> ConfigError:
        hint = suggest(key, known)
        message = f"unknown key '{key}' in {where}; expected one of {', '.join(known)}"
        if hint:
            message = f"unknown key '{key}' in {where}; did you mean '{hint}'?"
        return ConfigError(message, self.origin(self._key_lines.get(id(node), node)))

    # -- content --------------------------------------------------------
    def properties(
        self, node: yaml.Node, section: str, *, skip: tuple[str, ...] = ()
    ) -> list[RawProperty]:
        props: list[RawProperty] = []
        for key, value in self.mapping(node, section):
            low = key.lower()
            if low in skip:
                continue
            if low == "rules" and isinstance(value, yaml.SequenceNode):
                props.extend(self.rules(value, section))
            elif isinstance(value, yaml.SequenceNode):
                if not value.value:
                    raise ConfigError(
                        "is an empty list", self.origin(value), section=section, key=low
                    )
                for item in value.value:
                    props.append(self.prop(low, item, section))
            elif isinstance(value, yaml.MappingNode):
                what = (
                    "processors belong under an input or an output and are"
                    if low == "processors"
                    else "a nested mapping is"
                )
                raise ConfigError(
                    f"{what} not supported here; expected a value or a list of values",
                    self.origin(value),
                    section=section,
                    key=low,
                )
            else:
                props.append(self.prop(low, value, section))
        return props

    def prop(self, key: str, node: yaml.Node, section: str) -> RawProperty:
        origin = self.origin(node)
        raw = self.scalar(node, key, section)
        return RawProperty(key, self.env.expand(raw, origin, section=section, key=key), origin)

    def rules(self, node: yaml.SequenceNode, section: str) -> list[RawProperty]:
        """Multiline ``rules`` as classic ``rule "state" "regex" "next"`` lines."""
        props = []
        for item in node.value:
            if isinstance(item, yaml.ScalarNode):
                props.append(self.prop("rule", item, section))
                continue
            fields = {k.lower(): v for k, v in self.mapping(item, f"{section} rules")}
            parts = []
            for name in ("state", "regex", "next_state"):
                if name not in fields:
                    raise ConfigError(
                        f"a rule needs 'state', 'regex' and 'next_state'; '{name}' is missing",
                        self.origin(item),
                        section=section,
                        key="rules",
                    )
                parts.append(self.prop(name, fields[name], section).value)
            text = " ".join('"' + p.replace('"', '\\"') + '"' for p in parts)
            props.append(RawProperty("rule", text, self.origin(item)))
        return props

    def add(self, kind: str, node: yaml.Node, section: str) -> None:
        routes: tuple[InputRoute, ...] = ()
        processors: tuple[Section, ...] = ()
        skip: tuple[str, ...] = ()
        if kind in ("input", "output"):
            fields = {k.lower(): v for k, v in self.mapping(node, section)}
            if kind == "input" and "routes" in fields:
                routes = self.routes(fields["routes"], section)
            if "processors" in fields:
                processors = self.processors(fields["processors"], section)
            skip = ("routes", "processors") if kind == "input" else ("processors",)
        props = self.properties(node, section, skip=skip)
        self.sections.append(
            Section(
                kind=kind,
                properties=tuple(props),
                origin=self.origin(node),
                routes=routes,
                processors=processors,
            )
        )

    # -- processors (Fluent Bit 3+) ----------------------------------------
    def processors(self, node: yaml.Node, section: str) -> tuple[Section, ...]:
        """``processors: {logs: [{name: grep, regex: ...}, ...]}`` under an input or output."""
        out: list[Section] = []
        for signal, items in self.mapping(node, f"{section} processors"):
            low = signal.lower()
            if low in ("metrics", "traces", "profiles"):
                raise ConfigError(
                    f"processors for {low} are not supported: relaybit carries logs only",
                    self.origin(items),
                    section=section,
                    key="processors",
                )
            if low != "logs":
                raise self.unknown(signal, items, ["logs"], f"{section} processors")
            for item in self.sequence(items, f"{section} processors.logs"):
                where = f"{section} processors.logs"
                fields = {k.lower(): v for k, v in self.mapping(item, where)}
                if "condition" in fields and isinstance(fields["condition"], yaml.MappingNode):
                    raise ConfigError(
                        "processor conditions are not supported by relaybit; use a grep"
                        " processor before this one, or conditional routes",
                        self.origin(fields["condition"]),
                        section=where,
                        key="condition",
                    )
                props = self.properties(item, where)
                out.append(
                    Section(kind="processor", properties=tuple(props), origin=self.origin(item))
                )
        return tuple(out)

    # -- routes (Fluent Bit 5 conditional routing) ------------------------
    def routes(self, node: yaml.Node, section: str) -> tuple[InputRoute, ...]:
        out: list[InputRoute] = []
        names: dict[str, Origin] = {}
        for signal, items in self.mapping(node, f"{section} routes"):
            low = signal.lower()
            if low in ("metrics", "traces"):
                raise ConfigError(
                    f"routes for {low} are not supported: relaybit carries logs only",
                    self.origin(items),
                    section=section,
                    key="routes",
                )
            if low not in ("logs", "any"):
                raise self.unknown(signal, items, ["logs", "any"], f"{section} routes")
            for item in self.sequence(items, f"{section} routes.{signal}"):
                route = self.route(item, section)
                first = names.setdefault(route.name, self.origin(item))
                if first != self.origin(item):
                    raise ConfigError(
                        f"route name '{route.name}' is used twice (lines {first.line} and"
                        f" {self.origin(item).line}); route names are unique per input",
                        self.origin(item),
                        section=section,
                        key="routes",
                    )
                out.append(route)
        if not out:
            raise ConfigError("has no route", self.origin(node), section=section, key="routes")
        return tuple(out)

    def route(self, node: yaml.Node, section: str) -> InputRoute:
        where = f"{section} route"
        known = ["name", "condition", "to", "per_record_routing"]
        fields = self.fields(node, where, known, also=("processors",))
        if "processors" in fields:
            raise ConfigError(
                "processors on a route are not supported by relaybit; put them under the"
                " input or the output",
                self.origin(fields["processors"]),
                section=section,
                key="routes",
            )
        for needed in ("name", "to"):
            if needed not in fields:
                raise ConfigError(
                    f"a route needs '{needed}'", self.origin(node), section=section, key="routes"
                )
        name = self.scalar(fields["name"], "name", section)
        condition = None
        if "condition" in fields:
            condition = self.condition(fields["condition"], section)
        to = fields["to"]
        if isinstance(to, yaml.MappingNode):
            to_fields = {k.lower(): v for k, v in self.mapping(to, f"{where} to")}
            if "outputs" not in to_fields:
                raise ConfigError(
                    "'to' needs 'outputs'", self.origin(to), section=section, key="routes"
                )
            to = to_fields["outputs"]
        targets = to.value if isinstance(to, yaml.SequenceNode) else [to]
        outputs = tuple(self.route_output(item, section) for item in targets)
        if not outputs:
            raise ConfigError(
                f"route '{name}' sends to no output", self.origin(to), section=section, key="routes"
            )
        return InputRoute(name=name, outputs=outputs, condition=condition, origin=self.origin(node))

    def route_output(self, node: yaml.Node, section: str) -> RouteOutput:
        if isinstance(node, yaml.MappingNode):
            fields = {k.lower(): v for k, v in self.mapping(node, f"{section} route output")}
            if "name" not in fields:
                raise ConfigError(
                    "a route output needs 'name'", self.origin(node), section=section, key="routes"
                )
            fallback = fields.get("fallback")
            return RouteOutput(
                name=self.scalar(fields["name"], "name", section),
                fallback=None if fallback is None else self.scalar(fallback, "fallback", section),
                origin=self.origin(node),
            )
        return RouteOutput(name=self.scalar(node, "outputs", section), origin=self.origin(node))

    def condition(self, node: yaml.Node, section: str) -> RouteCondition:
        where = f"{section} route condition"
        fields = self.fields(node, where, ["op", "rules", "default"])
        op = self.scalar(fields["op"], "op", section).lower() if "op" in fields else "and"
        if op not in ("and", "or"):
            raise ConfigError(
                f"condition op must be 'and' or 'or', got '{op}'",
                self.origin(fields["op"]),
                section=section,
                key="routes",
            )
        default = False
        if "default" in fields:
            text = self.scalar(fields["default"], "default", section).lower()
            if text not in ("true", "false", "on", "off", "yes", "no"):
                raise ConfigError(
                    f"default must be true or false, got '{text}'",
                    self.origin(fields["default"]),
                    section=section,
                    key="routes",
                )
            default = text in ("true", "on", "yes")
        rules: list[RouteRule] = []
        if "rules" in fields:
            for item in self.sequence(fields["rules"], f"{where} rules"):
                rules.append(self.rule(item, section))
        if not default and not rules:
            raise ConfigError(
                "a condition needs rules (or default: true)",
                self.origin(node),
                section=section,
                key="routes",
            )
        return RouteCondition(op="or" if op == "or" else "and", rules=tuple(rules), default=default)

    def rule(self, node: yaml.Node, section: str) -> RouteRule:
        where = f"{section} route rule"
        fields = self.fields(node, where, ["field", "op", "value", "context"])
        for needed in ("field", "op", "value"):
            if needed not in fields:
                raise ConfigError(
                    f"a rule needs 'field', 'op' and 'value'; '{needed}' is missing",
                    self.origin(node),
                    section=section,
                    key="routes",
                )
        value_node = fields["value"]
        value = ""
        values: tuple[str, ...] = ()
        if isinstance(value_node, yaml.SequenceNode):
            values = tuple(self.scalar(v, "value", section) for v in value_node.value)
        else:
            value = self.scalar(value_node, "value", section)
        context = "body"
        if "context" in fields:
            text = self.scalar(fields["context"], "context", section).lower()
            if text not in CONTEXTS:
                raise ConfigError(
                    f"rule context '{text}' is not supported; expected body or metadata",
                    self.origin(fields["context"]),
                    section=section,
                    key="routes",
                )
            context = CONTEXTS[text]
        rule = RouteRule(
            field=self.scalar(fields["field"], "field", section),
            op=self.scalar(fields["op"], "op", section).lower(),
            value=value,
            values=values,
            context="metadata" if context == "metadata" else "body",
            origin=self.origin(node),
        )
        check_rule(rule, section)
        return rule

    def upstream_servers(self, node: yaml.Node) -> None:
        for server in self.sequence(node, "upstream_servers"):
            fields = dict((k.lower(), v) for k, v in self.mapping(server, "upstream_servers"))
            props = self.properties(server, "[UPSTREAM]", skip=("nodes",))
            self.sections.append(
                Section(kind="upstream", properties=tuple(props), origin=self.origin(server))
            )
            nodes = fields.get("nodes")
            if nodes is None:
                continue
            for item in self.sequence(nodes, "upstream_servers nodes"):
                self.add("node", item, "[NODE]")

    def includes(self, node: yaml.Node) -> None:
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        for item in items:
            origin = self.origin(item)
            pattern = self.env.expand(self.scalar(item, "includes"), origin)
            for path in resolve_include(pattern, self.path, origin):
                self.stack.push(path, origin)
                try:
                    text = read_text(path, origin)
                    sub = _YamlReader(path, self.env, self.stack)
                    sub.read(text)
                finally:
                    self.stack.pop()
                self.sections.extend(sub.sections)

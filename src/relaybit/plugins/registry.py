"""Plugin names -> classes, imported lazily (uvicorn's import strings).

Third-party plugins register under the ``relaybit.plugins`` entry-point group as
``kind.name = "module:Class"`` (e.g. ``output.kafka``).  A processor (YAML
``processors:``) is a processor-only plugin (``content_modifier``) or any filter.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Literal

Kind = Literal["input", "filter", "output", "processor"]

BUILTIN: dict[Kind, dict[str, str]] = {
    "input": {
        "dummy": "relaybit.plugins.inputs.dummy:DummyInput",
        "tail": "relaybit.plugins.inputs.tail:TailInput",
        "stdin": "relaybit.plugins.inputs.stdin:StdinInput",
        "tcp": "relaybit.plugins.inputs.tcp:TcpInput",
        "forward": "relaybit.plugins.inputs.forward:ForwardInput",
        "http": "relaybit.plugins.inputs.http:HttpInput",
        "elasticsearch": "relaybit.plugins.inputs.elasticsearch:ElasticsearchInput",
        "syslog": "relaybit.plugins.inputs.syslog:SyslogInput",
    },
    "filter": {
        "grep": "relaybit.plugins.filters.grep:GrepFilter",
        "modify": "relaybit.plugins.filters.modify:ModifyFilter",
        "record_modifier": "relaybit.plugins.filters.record_modifier:RecordModifierFilter",
        "parser": "relaybit.plugins.filters.parser:ParserFilter",
        "nest": "relaybit.plugins.filters.nest:NestFilter",
        "throttle": "relaybit.plugins.filters.throttle:ThrottleFilter",
        "rewrite_tag": "relaybit.plugins.filters.rewrite_tag:RewriteTagFilter",
        "multiline": "relaybit.plugins.filters.multiline:MultilineFilter",
    },
    "output": {
        "stdout": "relaybit.plugins.outputs.stdout:StdoutOutput",
        "null": "relaybit.plugins.outputs.null:NullOutput",
        "counter": "relaybit.plugins.outputs.counter:CounterOutput",
        "file": "relaybit.plugins.outputs.file:FileOutput",
        "forward": "relaybit.plugins.outputs.forward.output:ForwardOutput",
        "http": "relaybit.plugins.outputs.http.output:HttpOutput",
        "es": "relaybit.plugins.outputs.es.output:ElasticsearchOutput",
    },
    #: processor-only plugins; every filter serves as a processor too
    "processor": {
        "content_modifier": "relaybit.plugins.processors.content_modifier:ContentModifier",
    },
}


def import_from_string(target: str) -> type:
    """Import ``module:attr``; a plugin's own broken import is not masked."""
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    obj = getattr(module, attr)
    assert isinstance(obj, type)
    return obj


def _external(kind: Kind) -> dict[str, str]:
    found: dict[str, str] = {}
    for ep in entry_points(group="relaybit.plugins"):
        prefix, _, name = ep.name.partition(".")
        if prefix == kind and name:
            found[name] = ep.value
    return found


def available(kind: Kind) -> list[str]:
    """Names of every plugin of ``kind``, built-in first."""
    names = list(BUILTIN[kind])
    names += [n for n in _external(kind) if n not in names]
    if kind == "processor":
        names += [n for n in available("filter") if n not in names]
    return names


def load(kind: Kind, name: str) -> type | None:
    """The plugin class of ``kind`` named ``name`` (case-insensitive), or None."""
    key = name.lower()
    target = BUILTIN[kind].get(key) or _external(kind).get(key)
    if target is None and kind == "processor":
        return load("filter", name)  # the filters serve as processors
    return import_from_string(target) if target else None

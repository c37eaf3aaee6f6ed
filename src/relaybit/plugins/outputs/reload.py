"""SIGHUP for upstream-backed outputs: re-read, validate, then swap the node list."""

from __future__ import annotations

from collections.abc import Callable

from relaybit.plugins.base import OutputContext
from relaybit.upstream.node import Node, UpstreamSpec


def reread_upstream(
    ctx: OutputContext, path: str, check_node: Callable[[Node], object]
) -> UpstreamSpec | None:
    """The output's upstream file read again and validated, or None without a file.

    Validation is the loader's (unknown keys, per-node keys of this output), plus
    ``check_node`` for each node (the output's own per-node settings, certificate
    files ...).  Raises ``ConfigErrors`` on a bad file: the caller keeps its
    running nodes.
    """
    if not path:
        return None  # a one-node upstream made of host/port: nothing to re-read
    from relaybit.config.loader import validate
    from relaybit.config.model import AgentConfig, PluginInstance
    from relaybit.upstream.spec import load_upstream_file

    spec = load_upstream_file(path)
    instance = PluginInstance(kind="output", plugin=ctx.plugin, upstream=spec)
    validate(AgentConfig(outputs=(instance,)))
    for node in spec.nodes:
        check_node(node)
    return spec

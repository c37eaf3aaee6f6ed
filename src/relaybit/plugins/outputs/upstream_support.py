"""What every upstream-backed output (forward, http, es) shares beyond the Upstream.

- :func:`reread_upstream`: SIGHUP re-reads and validates the upstream file.
- :func:`record_split_key` / :func:`split_chunk`: ``balance hash`` on a record key
  splits a chunk into one group per key value (the only case that decodes).
- :class:`FailureLog`: "not delivered" logged once per change of the failing
  nodes and their error kinds, not once per flush.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import msgpack

from relaybit.codec.msgpack import default, iter_entries
from relaybit.errors import NoHealthyNode
from relaybit.pipeline.chunk import Chunk
from relaybit.plugins.base import OutputContext
from relaybit.upstream.node import Node, UpstreamSettings, UpstreamSpec


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
    from relaybit.config.loader import check_keys
    from relaybit.config.model import AgentConfig, PluginInstance
    from relaybit.upstream.spec import load_upstream_file

    spec = load_upstream_file(path)
    instance = PluginInstance(kind="output", plugin=ctx.plugin, upstream=spec)
    check_keys(AgentConfig(outputs=(instance,)))
    for node in spec.nodes:
        check_node(node)
    return spec


def record_split_key(settings: UpstreamSettings) -> str | None:
    """The record key a chunk is split by: set for ``balance hash`` on a record key."""
    if settings.balance == "hash" and settings.hash_key != "tag":
        return settings.hash_key
    return None


def split_chunk(chunk: Chunk, key: str | None) -> list[tuple[str, bytes, int]]:
    """``(balancing key, entries, records)``: the chunk whole (keyed by its tag),
    or one group per value of the record key ``key`` (records without it: ``""``)."""
    if key is None:
        return [(chunk.tag, chunk.data, chunk.records)]
    # records decoded with surrogateescape (invalid UTF-8 from a forward input)
    # must pack back to their original bytes, not fail the whole chunk
    packer = msgpack.Packer(default=default, use_bin_type=True, unicode_errors="surrogateescape")
    groups: dict[str, list[bytes]] = {}
    for time, record in iter_entries(chunk.data):
        value = record.get(key) if isinstance(record, dict) else None
        groups.setdefault("" if value is None else str(value), []).append(
            packer.pack([time, record])
        )
    return [(value, b"".join(parts), len(parts)) for value, parts in groups.items()]


class FailureLog:
    """Logs "not delivered" once while the same nodes fail the same way.

    The signature is the sorted (node, error kind) pairs: the node order in the
    message changes with each flush's balancer turn, the problem does not.
    """

    def __init__(self, logger: logging.Logger, name: str, *, named_by_logger: bool = False) -> None:
        """``named_by_logger``: ``logger`` already shows ``name`` (a plugin's logger,
        ``[output:forward:forward.0]``), so lines do not repeat it."""
        self.logger = logger
        self.name = name
        self.named_by_logger = named_by_logger
        self._last = ""

    def failed(self, what: str, exc: NoHealthyNode) -> None:
        errors = getattr(exc, "errors", None)
        signature = "; ".join(sorted(f"{e.node}: {e.kind}" for e in errors)) if errors else str(exc)
        if signature != self._last:
            if self.named_by_logger:
                self.logger.warning("%s not delivered, will retry: %s", what, exc)
            else:
                self.logger.warning("%s: %s not delivered, will retry: %s", self.name, what, exc)
            self._last = signature

    def delivered(self) -> None:
        self._last = ""

    def __repr__(self) -> str:
        return f"<FailureLog {self.name} last={self._last!r}>"

"""The contracts every plugin follows.

An input produces msgpack entries and hands them to the engine with
``await ctx.emit(tag, data, records)``; the call returns once the records are
stored (memory or filesystem), and waits while the input is over its
``mem_buf_limit`` (that is the backpressure: a server input stops reading).
A filter changes decoded records.  An output takes one chunk per flush and
returns :class:`FlushResult`; the engine owns retries.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from relaybit.clock import SYSTEM_CLOCK, Clock
from relaybit.config.schema import ConfigMap, Option, Options
from relaybit.pipeline.chunk import Chunk
from relaybit.plugins.supervisor import Restarts, supervise
from relaybit.upstream.node import UpstreamSpec, tls_proxy_options


class FlushResult(enum.Enum):
    """What an output says of one flush (Fluent Bit's FLB_OK/FLB_RETRY/FLB_ERROR)."""

    OK = "ok"
    RETRY = "retry"
    ERROR = "error"


#: ``log_suppress_interval``: every kind of plugin has it.
LOG_SUPPRESS = Option(
    "log_suppress_interval",
    "time",
    0.0,
    "Suppress repeated log lines for this long",
    no_effect="relaybit logs state changes once, never a line per record",
)

#: Keys every input accepts (handled by the engine, not by the plugin).
INPUT_COMMON = ConfigMap(
    (
        Option("name", "str", None, "Plugin name"),
        Option("alias", "str", None, "Instance name used in logs and metrics"),
        Option("tag", "str", None, "Tag of the records this input produces"),
        Option("log_level", "str", None, "Log level of this instance"),
        Option("mem_buf_limit", "size", 0, "Pause the input above this much buffered (0 = none)"),
        Option(
            "storage.type",
            "str",
            "memory",
            "memory or filesystem",
            choices=("memory", "filesystem"),
        ),
        Option(
            "storage.pause_on_chunks_overlimit",
            "bool",
            False,
            "Filesystem: pause the input while storage.max_chunks_up chunks are up",
        ),
        Option(
            "threaded",
            "bool",
            False,
            "Run the input in its own thread",
            no_effect="inputs run on the event loop",
        ),
        Option(
            "routable",
            "bool",
            True,
            "Whether records of this input are routed",
            refused="every input's records are routed; leave it on",
        ),
        LOG_SUPPRESS,
        *(
            Option(name, "str", None, "Threaded input ring buffer", no_effect="no input threads")
            for name in ("thread.ring_buffer.capacity", "thread.ring_buffer.window")
        ),
        *(
            Option(
                name,
                "str",
                None,
                "Fluent Bit's ingestion rate gate",
                no_effect="relaybit does not rate-limit inputs (mem_buf_limit bounds memory)",
            )
            for name in (
                "rate_window",
                "rate_gate",
                "rate_gate.max_bytes",
                "rate_gate.max_records",
                "rate_gate.backpressure",
                "rate_gate.resume_ratio",
            )
        ),
    )
)

#: Keys Fluent Bit gives every server input (its downstream map and core keys) that
#: relaybit accepts without effect; a plugin's own table wins where it implements one.
SERVER_INPUT_EXTRA = ConfigMap(
    (
        Option(
            "host",
            "str",
            None,
            "Host name of the instance",
            no_effect="a server input listens on 'listen'",
        ),
        Option(
            "ipv6",
            "bool",
            False,
            "IPv6 listener",
            no_effect="set listen to an IPv6 address such as '::'",
        ),
        Option(
            "net.share_port",
            "bool",
            False,
            "SO_REUSEPORT on the listening socket",
            no_effect="one listening socket per input",
        ),
        Option(
            "net.backlog",
            "int",
            128,
            "Backlog of the listening socket",
            no_effect="the event loop's default backlog",
        ),
        Option(
            "net.io_timeout",
            "time",
            0.0,
            "Close a connection idle this long",
            no_effect="connections stay open until the client closes them",
        ),
        Option(
            "net.accept_timeout",
            "time",
            10.0,
            "Time an accepted connection may take to set up",
            no_effect="no per-connection set-up timeout on this input",
        ),
        Option(
            "net.accept_timeout_log_error",
            "bool",
            True,
            "Log accept timeouts as errors",
            no_effect="no accept timeout on this input",
        ),
        Option(
            "net.keepalive",
            "bool",
            True,
            "Keep client connections open",
            no_effect="connections stay open until the client closes them",
        ),
    )
)

#: ``tls.*`` keys of Fluent Bit's TLS map beside :data:`TLS_OPTIONS` for a TLS server input.
SERVER_TLS_EXTRA = ConfigMap(
    (
        Option(
            "tls.verify_client_cert",
            "bool",
            False,
            "Require a client certificate",
            refused="this input does not check client certificates",
        ),
        *tls_proxy_options("a server input connects to no proxy"),
    )
)

#: Keys every filter accepts.
FILTER_COMMON = ConfigMap(
    (
        Option("name", "str", None, "Plugin name"),
        Option("alias", "str", None, "Instance name used in logs and metrics"),
        Option("match", "str", None, "Tag pattern with * wildcards"),
        Option("match_regex", "str", None, "Tag regular expression"),
        Option("log_level", "str", None, "Log level of this instance"),
        LOG_SUPPRESS,
    )
)

#: Keys every processor accepts (YAML ``processors: logs:`` under an input or an output).
PROCESSOR_COMMON = ConfigMap(
    (
        Option("name", "str", None, "Plugin name"),
        Option("alias", "str", None, "Instance name used in logs"),
        Option("log_level", "str", None, "Log level of this instance"),
        Option("match", "str", None, "Accepted; a processor takes every record it is given"),
        Option("match_regex", "str", None, "Accepted; a processor takes every record it is given"),
    )
)

#: Keys every output accepts.
OUTPUT_COMMON = ConfigMap(
    (
        Option("name", "str", None, "Plugin name"),
        Option("alias", "str", None, "Instance name used in logs and metrics"),
        Option("match", "str", None, "Tag pattern with * wildcards"),
        Option("match_regex", "str", None, "Tag regular expression"),
        Option("log_level", "str", None, "Log level of this instance"),
        Option(
            "retry_limit",
            "str",
            "no_limits",
            "Retries per chunk: N, no_limits/false (forever), no_retries;"
            " relaybit retries until delivered by default (Fluent Bit: 1)",
        ),
        Option(
            "workers",
            "int",
            0,
            "Flushes of this output in flight at once (0: 2 for network outputs, 1 for local ones)",
        ),
        Option(
            "storage.total_limit_size",
            "size",
            0,
            "Bytes of filesystem chunks queued for this output; the oldest are dropped"
            " above it (0 = no limit)",
        ),
        LOG_SUPPRESS,
    )
)


@dataclass(kw_only=True)
class PluginContext:
    """What a plugin instance gets from the agent."""

    name: str  #: instance name: the alias, or ``plugin.N`` such as ``forward.0``
    plugin: str  #: plugin name (``forward``)
    options: Options
    config_dir: Path = field(default_factory=Path.cwd)
    clock: Clock = SYSTEM_CLOCK
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("relaybit"))
    #: service-level settings the plugin may need (flush interval, parsers ...)
    service: dict[str, Any] = field(default_factory=dict)


EmitFn = Callable[[str, bytes, int], Awaitable[None]]

#: An emitter's ``emit(tag, data, records)``: synchronous, called from a filter.
EmitterFn = Callable[[str, bytes, int], None]
#: ``add_emitter(name, *, storage_type="memory", mem_buf_limit=0) -> EmitterFn``
#: (:meth:`relaybit.pipeline.engine.Engine.add_emitter`).
AddEmitterFn = Callable[..., EmitterFn]
#: ``emit_entries(tag, entries, records, original)``: decoded ``[head, record]`` lists
#: (:meth:`relaybit.pipeline.engine.Engine.emit_entries`)
EmitEntriesFn = Callable[[str, list[Any], int, Callable[[], bytes]], Awaitable[None]]


@dataclass(kw_only=True)
class InputContext(PluginContext):
    """An input's context: ``emit`` hands records to the engine."""

    emit: EmitFn
    #: ``tag`` of the instance (defaults to the instance name, as Fluent Bit)
    tag: str = ""
    #: ``decodes(tag)``: True when the records of ``tag`` are decoded before they are
    #: buffered (processors, filters); the input may then hand them to ``emit_entries``
    #: as decoded entries, which must equal what decoding its bytes would give
    decodes: Callable[[str], bool] | None = None
    emit_entries: EmitEntriesFn | None = None


@dataclass(kw_only=True)
class OutputContext(PluginContext):
    """An output's context: ``upstream`` is set when the output names an upstream file."""

    upstream: UpstreamSpec | None = None


class InputPlugin(ABC):
    """An input: started once, produces until stopped."""

    options: ClassVar[ConfigMap] = ConfigMap(())
    description: ClassVar[str] = ""

    def __init__(self, ctx: InputContext) -> None:
        self.ctx = ctx
        self.restarts = Restarts()

    @abstractmethod
    async def start(self) -> None:
        """Begin producing (spawn tasks or servers; return promptly)."""

    def spawn(self, run: Callable[[], Awaitable[None]], what: str = "") -> asyncio.Task[None]:
        """A task running ``run()`` under :func:`~relaybit.plugins.supervisor.supervise`:
        an unexpected exception is logged once and ``run()`` starts again after a
        backoff (counted in the input's ``restarts`` metric); cancel it to stop."""
        if not hasattr(self, "restarts"):
            self.restarts = Restarts()
        name = what or self.ctx.name
        return asyncio.create_task(
            supervise(run, self.ctx.logger, name, self.restarts), name=f"{self.ctx.name}.run"
        )

    async def stop(self) -> None:
        """Stop producing; records already emitted stay with the engine."""

    def status(self) -> dict[str, Any]:
        return {}

    def metrics(self) -> dict[str, Any]:
        """Counters added to this input's ``/api/v1/metrics`` entry (server inputs:
        :meth:`relaybit.net.limits.ConnectionStats.metrics`); none by default."""
        return {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.ctx.name}>"


class FilterPlugin(ABC):
    """A filter over decoded entries ``[head, record]``; may drop, change or add entries.

    The head is the entry's time as it was written, or ``[time, metadata]``:
    pass it on unchanged (metadata and exact times survive), read it with
    :func:`relaybit.codec.records.entry_time` / ``entry_metadata``, replace
    its time with ``with_time``.  An EventTime in a head may be raw (a
    ``slice(0, <8 bytes>)``); return new times as
    :class:`~relaybit.codec.msgpack.EventTime`, int or float.  Entries may be
    lists or tuples; do not change the records of ``entries`` in place.
    """

    options: ClassVar[ConfigMap] = ConfigMap(())
    description: ClassVar[str] = ""

    def __init__(self, ctx: PluginContext) -> None:
        self.ctx = ctx

    @abstractmethod
    def filter(self, tag: str, entries: list[Any]) -> list[Any]:
        """Return the entries to keep, changed as needed."""

    def bind_engine(self, add_emitter: AddEmitterFn) -> None:
        """Called once by the engine when the filter is added (default: nothing).

        A filter that emits records under another tag (rewrite_tag) registers
        its emitter input here: ``emit = add_emitter(name, storage_type=...,
        mem_buf_limit=...)``; ``emit(tag, data, records)`` from ``filter``
        sends the records through routing and the filters of ``tag`` at once.
        """

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.ctx.name}>"


class OutputPlugin(ABC):
    """An output: one flush per chunk, answering OK, RETRY or ERROR."""

    options: ClassVar[ConfigMap] = ConfigMap(())
    description: ClassVar[str] = ""

    def __init__(self, ctx: OutputContext) -> None:
        self.ctx = ctx

    async def start(self) -> None:
        """Open what the output needs (upstream, pools, files)."""

    @abstractmethod
    async def flush(self, chunk: Chunk) -> FlushResult:
        """Deliver one chunk; OK only when the receiver confirmed it."""

    async def stop(self) -> None:
        """Close connections and files."""

    def status(self) -> dict[str, Any]:
        """Plugin-specific status for the monitoring API (upstream nodes ...)."""
        return {}

    def loss_risks(self) -> list[str]:
        """Settings of this output that let records be lost (logged once at start by
        the agent, beside a finite ``retry_limit``): none by default."""
        return []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.ctx.name}>"

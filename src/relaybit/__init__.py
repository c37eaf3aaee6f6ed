"""relaybit: a Fluent Bit compatible log forwarding agent and library.

The public API is listed in ``__all__``; names are imported on first use, so
``import relaybit`` stays cheap for the command line.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # running an agent
    "Agent": "relaybit.agent",
    "run": "relaybit.agent",
    "load_config": "relaybit.config.loader",
    "validate": "relaybit.agent",
    "load_upstream_file": "relaybit.upstream.spec",
    "AgentConfig": "relaybit.config.model",
    # the Upstream
    "Upstream": "relaybit.upstream.upstream",
    "UpstreamSpec": "relaybit.upstream.node",
    "UpstreamSettings": "relaybit.upstream.node",
    "Node": "relaybit.upstream.node",
    "NetSettings": "relaybit.upstream.node",
    "TLSSettings": "relaybit.upstream.node",
    # the Forward protocol
    "ForwardConnection": "relaybit.codec.forward",
    "ForwardClient": "relaybit.net.forward_client",
    "ForwardServer": "relaybit.net.forward_server",
    "EventTime": "relaybit.codec.msgpack",
    # sending from an application
    "Sender": "relaybit.sender",
    "AsyncSender": "relaybit.sender",
    "SenderStats": "relaybit.sender",
    "ForwardHandler": "relaybit.handler",
    # writing plugins
    "Chunk": "relaybit.pipeline.chunk",
    "FlushResult": "relaybit.plugins.base",
    "InputPlugin": "relaybit.plugins.base",
    "FilterPlugin": "relaybit.plugins.base",
    "OutputPlugin": "relaybit.plugins.base",
    "ConfigMap": "relaybit.config.schema",
    "Option": "relaybit.config.schema",
    # errors
    "RelaybitError": "relaybit.errors",
    "ConfigError": "relaybit.errors",
    "ConfigErrors": "relaybit.errors",
    "ProtocolError": "relaybit.errors",
    "LocalProtocolError": "relaybit.errors",
    "RemoteProtocolError": "relaybit.errors",
    "DeliveryError": "relaybit.errors",
    "PermanentDeliveryError": "relaybit.errors",
    "NoHealthyNode": "relaybit.errors",
    "UpstreamError": "relaybit.errors",
}

__all__ = [
    "Agent",
    "AgentConfig",
    "AsyncSender",
    "Chunk",
    "ConfigError",
    "ConfigErrors",
    "ConfigMap",
    "DeliveryError",
    "EventTime",
    "FilterPlugin",
    "FlushResult",
    "ForwardClient",
    "ForwardConnection",
    "ForwardHandler",
    "ForwardServer",
    "InputPlugin",
    "LocalProtocolError",
    "NetSettings",
    "NoHealthyNode",
    "Node",
    "Option",
    "OutputPlugin",
    "PermanentDeliveryError",
    "ProtocolError",
    "RelaybitError",
    "RemoteProtocolError",
    "Sender",
    "SenderStats",
    "TLSSettings",
    "Upstream",
    "UpstreamError",
    "UpstreamSettings",
    "UpstreamSpec",
    "__version__",
    "load_config",
    "load_upstream_file",
    "run",
    "validate",
]

if TYPE_CHECKING:
    from relaybit.agent import Agent, run, validate
    from relaybit.codec.forward import ForwardConnection
    from relaybit.codec.msgpack import EventTime
    from relaybit.config.loader import load_config
    from relaybit.config.model import AgentConfig
    from relaybit.config.schema import ConfigMap, Option
    from relaybit.errors import (
        ConfigError,
        ConfigErrors,
        DeliveryError,
        LocalProtocolError,
        NoHealthyNode,
        PermanentDeliveryError,
        ProtocolError,
        RelaybitError,
        RemoteProtocolError,
        UpstreamError,
    )
    from relaybit.handler import ForwardHandler
    from relaybit.net.forward_client import ForwardClient
    from relaybit.net.forward_server import ForwardServer
    from relaybit.pipeline.chunk import Chunk
    from relaybit.plugins.base import FilterPlugin, FlushResult, InputPlugin, OutputPlugin
    from relaybit.sender import AsyncSender, Sender, SenderStats
    from relaybit.upstream.node import (
        NetSettings,
        Node,
        TLSSettings,
        UpstreamSettings,
        UpstreamSpec,
    )
    from relaybit.upstream.spec import load_upstream_file
    from relaybit.upstream.upstream import Upstream


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'relaybit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

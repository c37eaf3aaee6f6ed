"""Build filters the way the agent does: options resolved from raw properties with origins."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.plugins.base import FILTER_COMMON, FilterPlugin, PluginContext

CONF = "/etc/relaybit/agent.conf"

MakeFilter = Callable[..., Any]


def build(cls: type[FilterPlugin], *props: tuple[str, str], **service: Any) -> Any:
    """``cls`` with ``props`` written on lines 2, 3, ... of agent.conf (line 1 is [FILTER])."""
    raw = [RawProperty(k, v, Origin(CONF, i + 2)) for i, (k, v) in enumerate(props)]
    options = (FILTER_COMMON + cls.options).resolve(raw, section="[FILTER]")
    name = f"{cls.__name__.lower()}.0"
    return cls(PluginContext(name=name, plugin="x", options=options, service=service))


@pytest.fixture
def make_filter() -> MakeFilter:
    return build

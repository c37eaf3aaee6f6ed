"""Helpers the input tests share: polling, an emit() that keeps batches, tail and server set-up."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from relaybit.codec.msgpack import iter_entries
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.plugins.base import INPUT_COMMON, EmitFn, InputContext
from relaybit.plugins.inputs.tail import TailInput
from relaybit.testing import wait_for

#: wait until a condition holds (a longer deadline than the default: tail polls files)
until = functools.partial(wait_for, timeout=10.0)


class BatchCollector:
    """An emit function that keeps what it got, batch by batch, with its tag."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, list[Any]]] = []

    async def __call__(self, tag: str, data: bytes, records: int) -> None:
        entries = [r for _, r in iter_entries(data)]
        assert len(entries) == records
        self.batches.append((tag, entries))

    def records(self, tag: str | None = None) -> list[Any]:
        return [r for t, rs in self.batches for r in rs if tag is None or t == tag]


def make_tail(
    emit: EmitFn, *, tag: str, service: dict[str, Any] | None = None, **props: str
) -> TailInput:
    """A tail input named tail.0 polling fast; ``a__b`` in ``props`` stands for ``a.b``."""
    defaults = {"poll_interval": "0.02", "refresh_interval": "0.1", "rotate_wait": "0.3"}
    raw = [
        RawProperty(k.replace("__", "."), v, Origin("t.conf", i + 1))
        for i, (k, v) in enumerate({**defaults, **props}.items())
    ]
    opts = (INPUT_COMMON + TailInput.options).resolve(raw, section="[INPUT] tail")
    ctx = InputContext(
        name="tail.0", plugin="tail", options=opts, emit=emit, tag=tag, service=service or {}
    )
    return TailInput(ctx)


class _Startable(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


P = TypeVar("P", bound=_Startable)


def starter(running: list[Any], make: Callable[..., P]) -> Callable[..., Awaitable[P]]:
    """``start(collector, **props)``: ``make`` a plugin, start it, stop it after the test."""

    async def start(collector: Any, **props: str) -> P:
        plugin = make(collector, **props)
        await plugin.start()
        running.append(plugin)
        return plugin

    return start

"""Test-local plugins and helpers for the engine tests."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from relaybit.codec.msgpack import EventTime, iter_entries, pack_entries
from relaybit.pipeline.chunk import Chunk
from relaybit.pipeline.engine import Engine, EngineSettings
from relaybit.pipeline.scheduler import Scheduler
from relaybit.plugins.base import FilterPlugin, FlushResult, OutputPlugin


def entries(n: int, start: int = 0, key: str = "n") -> tuple[bytes, int]:
    """``n`` packed entries ``[time, {key: i}]``."""
    return pack_entries((EventTime(1_700_000_000, 0), {key: i}) for i in range(start, start + n)), n


def records_of(chunks: Iterable[Chunk]) -> list[Any]:
    return [record for chunk in chunks for _, record in iter_entries(chunk.data)]


def fill_disk(where: Path, leave: int) -> Path:
    """A ballast file taking all but about ``leave`` bytes of ``where``'s filesystem."""
    st = os.statvfs(where)
    ballast = where / "ballast"
    with open(ballast, "wb") as f:
        f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))
    return ballast


class ListOutput(OutputPlugin):
    """Collects every chunk it is given; answers OK."""

    def __init__(self) -> None:  # no context needed by the engine
        self.chunks: list[Chunk] = []

    async def flush(self, chunk: Chunk) -> FlushResult:
        self.chunks.append(chunk)
        return FlushResult.OK

    @property
    def records(self) -> list[Any]:
        return records_of(self.chunks)


class ScriptedOutput(OutputPlugin):
    """Answers from a script of results (then ``then``), recording each call."""

    def __init__(self, script: Iterable[FlushResult], then: FlushResult = FlushResult.OK) -> None:
        self.script = list(script)
        self.then = then
        self.calls: list[Chunk] = []
        self.accepted: list[Chunk] = []

    async def flush(self, chunk: Chunk) -> FlushResult:
        self.calls.append(chunk)
        result = self.script.pop(0) if self.script else self.then
        if result is FlushResult.OK:
            self.accepted.append(chunk)
        return result


class GateOutput(OutputPlugin):
    """Holds every flush until ``gate`` is set."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.started = asyncio.Event()
        self.chunks: list[Chunk] = []

    async def flush(self, chunk: Chunk) -> FlushResult:
        self.started.set()
        await self.gate.wait()
        self.chunks.append(chunk)
        return FlushResult.OK


class FuncFilter(FilterPlugin):
    """Applies ``func`` to each record; drops records for which it returns None."""

    def __init__(self, func: Callable[[dict[str, Any]], dict[str, Any] | None]) -> None:
        self.func = func
        self.calls = 0

    def filter(self, tag: str, entries: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
        self.calls += 1
        out = []
        for time, record in entries:
            new = self.func(record)
            if new is not None:
                out.append((time, new))
        return out


def fs_engine(
    path: Path, *, seed: int = 1, chunk_size_limit: int | None = None, **extra: object
) -> Engine:
    """An engine with filesystem storage at ``path``: no flush timer, millisecond retries."""
    values: dict[str, object] = {"flush": 0.0, "grace": 1.0, "storage_path": str(path)}
    values.update(extra)
    limit = {} if chunk_size_limit is None else {"chunk_size_limit": chunk_size_limit}
    return Engine(
        EngineSettings(**values),  # type: ignore[arg-type]
        scheduler=Scheduler(0.001, 0.002, slack=0.0, rng=random.Random(seed)),
        **limit,  # type: ignore[arg-type]
    )


def chunk_files(path: Path) -> list[Path]:
    """The chunk files under a storage path, oldest first."""
    return sorted(path.glob("*/*.rbc"))

"""Fixtures of the output tests: encoder pools with real worker processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from relaybit.plugins.outputs.encoder_pool import EncoderPool


async def _ready_pool(processes: int = 1) -> EncoderPool:
    pool = EncoderPool(processes)
    pool.start()
    deadline = time.monotonic() + 20
    while pool.status()["ready"] < processes:
        assert time.monotonic() < deadline, f"no ready encoder worker: {pool!r}"
        await asyncio.sleep(0.02)
    return pool


@pytest.fixture
async def running_pool() -> AsyncIterator[EncoderPool]:
    """An encoder pool whose one worker is up."""
    pool = await _ready_pool()
    yield pool
    await pool.aclose()


@pytest.fixture(params=["here", "encoder process"])
async def pool(request: pytest.FixtureRequest) -> AsyncIterator[EncoderPool | None]:
    """No pool (bodies written in the agent's process), or a ready encoder process."""
    if request.param == "here":
        yield None
        return
    ready = await _ready_pool()
    yield ready
    await ready.aclose()

"""The per-node connection pool (fake connections, fake clock: no sockets needed)."""

from __future__ import annotations

import asyncio

import pytest

from relaybit.errors import DeliveryError
from relaybit.testing import FakeClock, make_node
from relaybit.upstream.node import NetSettings
from relaybit.upstream.pool import NodePool
from relaybit.upstream.upstream import Connection


class FakeConnection:
    def __init__(self, number: int) -> None:
        self.number = number
        self.closed = False

    def is_usable(self) -> bool:
        return not self.closed

    async def aclose(self) -> None:
        self.closed = True

    def __repr__(self) -> str:
        return f"<FakeConnection {self.number}>"


class Opener:
    def __init__(self) -> None:
        self.made: list[FakeConnection] = []
        self.fail_next = False

    async def __call__(self) -> Connection:
        if self.fail_next:
            self.fail_next = False
            raise DeliveryError("connect", "connection refused")
        conn = FakeConnection(len(self.made) + 1)
        self.made.append(conn)
        return conn


def make_pool(clock: FakeClock | None = None, **net: object) -> tuple[NodePool, Opener]:
    opener = Opener()
    pool = NodePool(
        make_node("node-1"),
        opener,
        NetSettings(**net),  # type: ignore[arg-type]
        clock=clock or FakeClock(),
    )
    return pool, opener


async def test_reuses_an_idle_connection() -> None:
    pool, opener = make_pool()
    pc = await pool.acquire()
    assert repr(pool) == "<NodePool node-1 [active 1, idle 0]>"
    await pool.release(pc)
    assert repr(pool) == "<NodePool node-1 [active 0, idle 1]>"
    pc2 = await pool.acquire()
    assert pc2.connection is pc.connection
    assert pc2.uses == 2
    assert len(opener.made) == 1
    await pool.aclose()
    assert opener.made[0].closed


async def test_release_without_reuse_closes() -> None:
    pool, opener = make_pool()
    pc = await pool.acquire()
    await pool.release(pc, reuse=False)
    assert opener.made[0].closed
    assert pool.idle == 0


async def test_keepalive_off_never_pools() -> None:
    pool, opener = make_pool(keepalive=False)
    await pool.release(await pool.acquire())
    await pool.release(await pool.acquire())
    assert len(opener.made) == 2
    assert all(c.closed for c in opener.made)


async def test_max_recycle() -> None:
    pool, opener = make_pool(keepalive_max_recycle=3)
    for _ in range(3):
        await pool.release(await pool.acquire())
    assert opener.made[0].closed, "closed after its third flush"
    await pool.release(await pool.acquire())
    assert len(opener.made) == 2


async def test_idle_timeout_expires_on_the_fake_clock() -> None:
    clock = FakeClock()
    pool, opener = make_pool(clock, keepalive_idle_timeout=30.0)
    await pool.release(await pool.acquire())
    clock.advance(29.0)
    await pool.prune()
    assert pool.idle == 1
    clock.advance(1.0)
    await pool.prune()
    assert pool.idle == 0
    assert opener.made[0].closed


async def test_broken_connection_is_not_reused() -> None:
    pool, opener = make_pool()
    pc = await pool.acquire()
    opener.made[0].closed = True
    await pool.release(pc)
    await pool.release(await pool.acquire())
    assert len(opener.made) == 2


async def test_max_worker_connections_makes_waiters_queue() -> None:
    pool, opener = make_pool(max_worker_connections=1)
    first = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0)
    assert pool.waiting == 1
    assert repr(pool) == "<NodePool node-1 [active 1, idle 0, waiting 1]>"
    await pool.release(first)
    second = await waiter
    assert second.connection is first.connection
    assert len(opener.made) == 1
    await pool.release(second)


async def test_failed_open_gives_the_slot_back() -> None:
    pool, opener = make_pool(max_worker_connections=1)
    opener.fail_next = True
    with pytest.raises(DeliveryError):
        await pool.acquire()
    assert pool.active == 0
    pc = await pool.acquire()
    await pool.release(pc)


async def test_cancelled_waiter_leaves_no_trace() -> None:
    pool, _opener = make_pool(max_worker_connections=1)
    first = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert pool.waiting == 0
    await pool.release(first)
    assert pool.idle == 1
    assert pool.active == 0


async def test_aclose_closes_everything_and_fails_waiters() -> None:
    pool, opener = make_pool(max_worker_connections=1)
    leased = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0)
    await pool.aclose()
    with pytest.raises(DeliveryError, match="closed"):
        await waiter
    assert opener.made[0].closed
    await pool.release(leased)  # a late release is harmless
    assert pool.stats()["closed"] == 1
    with pytest.raises(DeliveryError):
        await pool.acquire()
    assert repr(pool) == "<NodePool node-1 [active 0, idle 0, closed]>"

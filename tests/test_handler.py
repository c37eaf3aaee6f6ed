"""relaybit.handler.ForwardHandler: log records reach a real Forward receiver."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from relaybit.codec.msgpack import EventTime, iter_entries
from relaybit.handler import ForwardHandler
from relaybit.net.forward_server import ForwardServer
from relaybit.sender import Sender
from relaybit.testing import closed_port


class Receiver:
    def __init__(self) -> None:
        self.records: list[tuple[str, Any, dict[str, Any]]] = []
        self.arrived = asyncio.Event()
        self.server = ForwardServer(self._on, host="127.0.0.1", port=0, udp_heartbeat=False)

    async def _on(self, tag: str, entries: bytes, records: int) -> None:
        self.records.extend((tag, t, r) for t, r in iter_entries(entries))
        self.arrived.set()

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.records) < count:
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.server.start()
    yield r
    await r.server.stop()


@pytest.fixture
def logger() -> logging.Logger:
    log = logging.getLogger("tests.handler.app")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    return log


async def test_log_records_arrive_with_their_fields(
    receiver: Receiver, logger: logging.Logger
) -> None:
    handler = ForwardHandler("app.log", "127.0.0.1", receiver.server.port, flush_interval=0.05)
    logger.addHandler(handler)
    try:
        logger.info("user %s logged in", "ann", extra={"user_id": 42, "ctx": {"ip": "10.0.0.1"}})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("it failed")
        logger.warning("odd value", extra={"obj": object.__name__, "when": EventTime(1, 2)})
        await receiver.wait_for(3)
    finally:
        logger.removeHandler(handler)
        await asyncio.to_thread(handler.close)
    (tag, time, info), (_, _, error), (_, _, warning) = receiver.records
    assert tag == "app.log"
    assert isinstance(time, EventTime) and time.seconds > 1_600_000_000
    assert info["message"] == "user ann logged in"
    assert info["levelname"] == "INFO"
    assert info["name"] == "tests.handler.app"
    assert info["module"] == "test_handler"
    assert info["funcName"] == "test_log_records_arrive_with_their_fields"
    assert isinstance(info["lineno"], int)
    assert info["user_id"] == 42 and info["ctx"] == {"ip": "10.0.0.1"}
    assert "exc_text" not in info
    assert error["levelname"] == "ERROR"
    assert "ValueError: boom" in error["exc_text"] and "Traceback" in error["exc_text"]
    assert warning["obj"] == "object"
    assert warning["when"] == EventTime(1, 2)


async def test_unpackable_extras_travel_as_text_and_a_formatter_shapes_the_message(
    receiver: Receiver, logger: logging.Logger
) -> None:
    handler = ForwardHandler("app", host="127.0.0.1", port=receiver.server.port)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    try:
        logger.error("with %d", 1, extra={"thing": {1, 2}})
        handler.sender.flush()
        await receiver.wait_for(1)
    finally:
        logger.removeHandler(handler)
        await asyncio.to_thread(handler.close)
    record = receiver.records[0][2]
    assert record["message"] == "ERROR with 1"
    assert record["thing"] == "{1, 2}"


async def test_close_delivers_what_is_buffered(receiver: Receiver, logger: logging.Logger) -> None:
    sender = Sender("svc", "127.0.0.1", receiver.server.port, flush_interval=30)
    handler = ForwardHandler("svc", sender=sender, level=logging.INFO)
    assert "ForwardHandler" in repr(handler) and "INFO" in repr(handler)
    logger.addHandler(handler)
    for i in range(20):
        logger.info("n=%d", i)
    logger.debug("below the handler's level")
    logger.removeHandler(handler)
    await asyncio.to_thread(handler.close)  # flush_interval is 30s: close() sent them
    assert [r["message"] for _, _, r in receiver.records] == [f"n={i}" for i in range(20)]
    assert sender.stats().closed


async def test_a_down_tier_never_blocks_logging_and_drops_are_counted(
    logger: logging.Logger,
) -> None:
    handler = ForwardHandler(
        "app", "127.0.0.1", closed_port(), buffer_limit=2000, retry_wait=0.05, retry_max_wait=0.1
    )
    logger.addHandler(handler)
    try:
        for i in range(200):
            logger.info("record %d", i)
        stats = handler.sender.stats()
        assert stats.emitted + stats.dropped_by_reason["buffer_full"] == 200
        assert stats.emitted > 0
    finally:
        logger.removeHandler(handler)
        final = await asyncio.to_thread(handler.sender.close, 0.2)
        handler.close()
    assert final.undelivered == final.emitted


def test_sender_and_its_arguments_are_exclusive() -> None:
    sender = Sender("x", "127.0.0.1", closed_port())
    try:
        with pytest.raises(ValueError, match="not both"):
            ForwardHandler("x", sender=sender, shared_key="k")
    finally:
        sender.close(0)

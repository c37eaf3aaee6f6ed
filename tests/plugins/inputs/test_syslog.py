"""in_syslog over real sockets: Python's SysLogHandler (UDP, TCP), raw RFC 5424/6587 frames."""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from relaybit.codec.msgpack import iter_entries
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.errors import ConfigError
from relaybit.plugins.base import INPUT_COMMON, InputContext
from relaybit.plugins.inputs.syslog import SyslogFramer, SyslogInput
from relaybit.testing import wait_for

RFC5424 = "1 2024-05-01T10:20:30.123Z web-1 nginx 4242 ACCESS - "


class Sink:
    def __init__(self) -> None:
        self.records: list[tuple[str, Any, dict[str, Any]]] = []

    async def __call__(self, tag: str, data: bytes, n: int) -> None:
        got = list(iter_entries(data))
        assert len(got) == n
        self.records.extend((tag, t, r) for t, r in got)


def make(sink: Sink, *props: tuple[str, str]) -> SyslogInput:
    raw = [RawProperty(k, v, Origin("/etc/agent.conf", i + 2)) for i, (k, v) in enumerate(props)]
    options = (INPUT_COMMON + SyslogInput.options).resolve(raw, section="[INPUT]")
    return SyslogInput(
        InputContext(name="syslog.0", plugin="syslog", options=options, emit=sink, tag="sys")
    )


def handler_logger(handler: logging.Handler) -> logging.Logger:
    handler.setFormatter(logging.Formatter(RFC5424 + "%(message)s"))
    logger = logging.getLogger(f"syslog-client-{id(handler)}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger


async def test_udp_with_python_syslog_handler() -> None:
    sink = Sink()
    inp = make(
        sink,
        ("Mode", "udp"),
        ("Listen", "127.0.0.1"),
        ("Port", "0"),
        ("Source_Address_Key", "src"),
        ("Receive_Buffer_Size", "256K"),
    )
    await inp.start()
    handler = logging.handlers.SysLogHandler(address=("127.0.0.1", inp.port))
    try:
        logger = handler_logger(handler)
        await asyncio.to_thread(logger.warning, "GET /index.html 200")
        await wait_for(lambda: len(sink.records) == 1)
    finally:
        handler.close()
        await inp.stop()
    tag, when, record = sink.records[0]
    assert tag == "sys"
    assert record["pri"] == "12"  # user facility (1) * 8 + warning (4)
    assert record["host"] == "web-1" and record["ident"] == "nginx" and record["pid"] == "4242"
    assert record["message"] == "GET /index.html 200"
    assert record["src"].startswith("udp://127.0.0.1:")
    assert when.seconds == 1714558830  # the message's own time


async def test_tcp_with_python_syslog_handler_nul_framing() -> None:
    sink = Sink()
    inp = make(sink, ("Mode", "tcp"), ("Listen", "127.0.0.1"), ("Port", "0"))
    await inp.start()
    handler = logging.handlers.SysLogHandler(
        address=("127.0.0.1", inp.port), socktype=socket.SOCK_STREAM
    )
    try:
        logger = handler_logger(handler)
        for i in range(3):
            await asyncio.to_thread(logger.error, f"line {i}")
        await wait_for(lambda: len(sink.records) == 3)
    finally:
        handler.close()
        await inp.stop()
    assert [r["message"] for _, _, r in sink.records] == ["line 0", "line 1", "line 2"]
    assert inp.status()["connections"] == 1


async def test_tcp_octet_counting_newlines_and_a_malformed_message_keep_the_connection() -> None:
    sink = Sink()
    inp = make(sink, ("Mode", "tcp"), ("Listen", "127.0.0.1"), ("Port", "0"))
    await inp.start()
    one = f"<34>{RFC5424}counted 12 octets".encode()
    payload = (
        str(len(one)).encode()
        + b" "
        + one  # RFC 6587 octet counting (holds a newline)
        + b"not syslog at all\n"
        + f"<13>{RFC5424}plain newline frame\n".encode()
    )
    _, writer = await asyncio.open_connection("127.0.0.1", inp.port)
    try:
        for i in range(0, len(payload), 7):  # arrives in small pieces
            writer.write(payload[i : i + 7])
            await writer.drain()
        await wait_for(lambda: len(sink.records) == 2)
        writer.write(f"<13>{RFC5424}after the bad one\n".encode())
        await writer.drain()
        await wait_for(lambda: len(sink.records) == 3)
    finally:
        writer.close()
        await writer.wait_closed()
        await inp.stop()
    assert [r["message"] for _, _, r in sink.records] == [
        "counted 12 octets",
        "plain newline frame",
        "after the bad one",
    ]
    assert inp.malformed == 1


async def test_buffer_max_size_skips_and_counts_long_messages() -> None:
    sink = Sink()
    inp = make(
        sink,
        ("Mode", "tcp"),
        ("Listen", "127.0.0.1"),
        ("Port", "0"),
        ("Buffer_Chunk_Size", "64"),
        ("Buffer_Max_Size", "100"),
    )
    await inp.start()
    long = f"<13>{RFC5424}{'x' * 200}\n".encode()
    short = f"<13>{RFC5424}ok\n".encode()
    _, writer = await asyncio.open_connection("127.0.0.1", inp.port)
    try:
        writer.write(long + short)
        await writer.drain()
        await wait_for(lambda: len(sink.records) == 1)
    finally:
        writer.close()
        await writer.wait_closed()
        await inp.stop()
    assert sink.records[0][2]["message"] == "ok"
    assert inp.malformed == 1


async def test_unix_udp_defaults_to_rfc3164_local_with_perm(tmp_path: Path) -> None:
    sink = Sink()
    path = str(tmp_path / "log.sock")
    inp = make(sink, ("Path", path), ("Unix_Perm", "0600"))
    assert inp.mode == "unix_udp"
    await inp.start()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    handler = logging.handlers.SysLogHandler(address=path)
    handler.setFormatter(logging.Formatter("May  1 10:20:30 myapp[77]: %(message)s"))
    logger = logging.getLogger("syslog-unix-client")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        await asyncio.to_thread(logger.warning, "hello local")
        await wait_for(lambda: len(sink.records) == 1)
    finally:
        logger.removeHandler(handler)
        handler.close()
        await inp.stop()
    record = sink.records[0][2]
    assert record["ident"] == "myapp" and record["pid"] == "77"
    assert record["message"] == "hello local"
    assert not os.path.exists(path)


async def test_unix_tcp_with_an_explicit_parser(tmp_path: Path) -> None:
    sink = Sink()
    path = str(tmp_path / "s.sock")
    inp = make(sink, ("Mode", "unix_tcp"), ("Path", path), ("Parser", "syslog-rfc5424"))
    await inp.start()
    _, writer = await asyncio.open_unix_connection(path)
    try:
        writer.write(f"<14>{RFC5424}over unix\n".encode())
        await writer.drain()
        await wait_for(lambda: len(sink.records) == 1)
    finally:
        writer.close()
        await writer.wait_closed()
        await inp.stop()
    assert sink.records[0][2]["message"] == "over unix"


def test_framer_octet_counting_and_leftovers() -> None:
    f = SyslogFramer(1000)
    assert f.feed(b"5 hello3 abc") == [b"hello", b"abc"]
    assert f.feed(b"12") == []  # a length still arriving
    assert f.feed(b":00 text\n") == [b"12:00 text"]  # digits without a space: a line
    assert f.feed(b"tail") == [] and f.finish() == [b"tail"]
    assert "oversized=0" in repr(f)


@pytest.mark.parametrize(
    ("props", "key"),
    [
        ((("Mode", "udp"), ("Port", "99999")), "port"),
        ((("Mode", "carrier-pigeon"),), "mode"),
        ((("Mode", "unix_tcp"),), "path"),
        ((("Mode", "udp"), ("Parser", "nope")), "parser"),
        ((("Mode", "udp"), ("Unix_Perm", "rwx")), "unix_perm"),
        ((("Mode", "udp"), ("Buffer_Chunk_Size", "lots")), "buffer_chunk_size"),
    ],
)
def test_config_errors(props: tuple[tuple[str, str], ...], key: str) -> None:
    with pytest.raises(ConfigError, match=key) as info:
        make(Sink(), *props)
    assert "agent.conf:" in str(info.value)


async def test_udp_datagrams_whose_emit_fails_are_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Failing(Sink):
        calls = 0

        async def __call__(self, tag: str, data: bytes, n: int) -> None:
            self.calls += 1
            if self.calls <= 3:
                raise RuntimeError("storage gone")
            await super().__call__(tag, data, n)

    sink = Failing()
    inp = make(sink, ("Mode", "udp"), ("Listen", "127.0.0.1"), ("Port", "0"))
    await inp.start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(4):
            sock.sendto(f"<13>{RFC5424}message {i}".encode(), ("127.0.0.1", inp.port))
            await wait_for(lambda i=i: sink.calls > i)
        await wait_for(lambda: len(sink.records) == 1)
    finally:
        sock.close()
        await inp.stop()
    assert inp.restarts.count == 3
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "storage gone" in errors[0].getMessage()

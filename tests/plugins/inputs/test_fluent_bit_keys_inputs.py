"""Input keys of Fluent Bit 5.1.1 that relaybit implements (issue 13): tail, tcp,
syslog and forward, each with real files, real sockets and real clients."""

from __future__ import annotations

import asyncio
import gzip
import os
import ssl
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest
import trustme
from input_helpers import BatchCollector, make_tail, until

from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.errors import ConfigError
from relaybit.plugins.base import INPUT_COMMON, InputContext
from relaybit.plugins.inputs.forward import ForwardInput
from relaybit.plugins.inputs.syslog import SyslogInput
from relaybit.plugins.inputs.tcp import TcpInput


async def tail(running: list[Any], got: BatchCollector, **props: str) -> Any:
    plugin = make_tail(got, tag="t", **props)
    await plugin.start()
    running.append(plugin)
    return plugin


# --- tail ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "codec", "text"),
    [
        ("ShiftJIS", "cp932", "ログ 日本語"),
        ("SJIS", "cp932", "ログ"),
        ("GB18030", "gb18030", "日志 中文"),
        ("GBK", "gbk", "日志"),
        ("UHC", "cp949", "로그"),
        ("BIG5", "cp950", "日誌"),
        ("Win1251", "cp1251", "журнал"),
        ("CP1252", "cp1252", "café"),
        ("Win866", "cp866", "журнал"),
    ],
)
async def test_generic_encoding_converts_to_utf8(
    running: list[Any], tmp_path: Path, encoding: str, codec: str, text: str
) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(text.encode(codec) + b"\n")
    got = BatchCollector()
    await tail(running, got, path=str(log), read_from_head="on", generic__encoding=encoding)
    await until(lambda: got.records())
    assert got.records() == [{"log": text}]


def test_generic_encoding_unknown_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown encoding 'EBCDIC'"):
        make_tail(BatchCollector(), tag="t", path=str(tmp_path / "*"), generic__encoding="EBCDIC")


@pytest.mark.parametrize(
    ("encoding", "codec", "bom"),
    [
        ("UTF-16LE", "utf-16-le", b"\xff\xfe"),
        ("utf16-le", "utf-16-le", b""),
        ("UTF-16BE", "utf-16-be", b"\xfe\xff"),
        ("auto", "utf-16-be", b"\xfe\xff"),
        ("auto", "utf-16-le", b"\xff\xfe"),
    ],
)
async def test_unicode_encoding_reads_utf16(
    running: list[Any], tmp_path: Path, encoding: str, codec: str, bom: bytes
) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(bom + "première ligne\r\n日本語 😀\n".encode(codec))
    got = BatchCollector()
    await tail(running, got, path=str(log), read_from_head="on", unicode__encoding=encoding)
    await until(lambda: len(got.records()) == 2)
    raw = "next\n".encode(codec)
    with log.open("ab") as fh:  # a code unit cut in two by the writer
        fh.write(raw[:3])
        fh.flush()
        await asyncio.sleep(0.1)
        fh.write(raw[3:])
    await until(lambda: len(got.records()) == 3)
    assert got.records() == [{"log": "première ligne"}, {"log": "日本語 😀"}, {"log": "next"}]


async def test_unicode_encoding_offsets_survive_a_restart(
    running: list[Any], tmp_path: Path
) -> None:
    log = tmp_path / "a.log"
    db = str(tmp_path / "t.db")
    log.write_bytes("ü1\nü2\n".encode("utf-16-le"))
    got = BatchCollector()
    plugin = await tail(
        running, got, path=str(log), read_from_head="on", db=db, unicode__encoding="UTF-16LE"
    )
    await until(lambda: len(got.records()) == 2)
    await plugin.stop()
    running.remove(plugin)
    with log.open("ab") as fh:
        fh.write("ü3\n".encode("utf-16-le"))
    again = BatchCollector()
    await tail(running, again, path=str(log), db=db, unicode__encoding="UTF-16LE")
    await until(lambda: again.records())
    await asyncio.sleep(0.2)  # more polls: nothing else comes
    assert again.records() == [{"log": "ü3"}]


def test_unicode_and_generic_encoding_together_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be set together"):
        make_tail(
            BatchCollector(),
            tag="t",
            path=str(tmp_path / "*"),
            unicode__encoding="auto",
            generic__encoding="SJIS",
        )


async def test_gzip_file_is_read_decompressed(running: list[Any], tmp_path: Path) -> None:
    lines = [f"line {i}" for i in range(5000)]
    with gzip.open(tmp_path / "old.log.gz", "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    got = BatchCollector()
    await tail(running, got, path=str(tmp_path / "*.gz"), read_from_head="on")
    await until(lambda: len(got.records()) == 5000)
    assert [r["log"] for r in got.records()] == lines


async def test_gzip_file_found_later_is_read_and_offsets_survive_a_restart(
    running: list[Any], tmp_path: Path
) -> None:
    db = str(tmp_path / "tail.db")
    got = BatchCollector()
    plugin = await tail(running, got, path=str(tmp_path / "*.gz"), db=db)
    with gzip.open(tmp_path / "new.log.gz", "wb") as fh:
        fh.write(b"a\nb\n")
    await until(lambda: len(got.records()) == 2)
    await plugin.stop()
    again = BatchCollector()
    await tail(running, again, path=str(tmp_path / "*.gz"), db=db, read_from_head="on")
    await asyncio.sleep(0.3)  # several polls: nothing is read twice
    assert again.records() == []


async def test_read_newly_discovered_files_from_head_off(
    running: list[Any], tmp_path: Path
) -> None:
    got = BatchCollector()
    await tail(
        running, got, path=str(tmp_path / "*.log"), read_newly_discovered_files_from_head="off"
    )
    new = tmp_path / "new.log"
    new.write_text("before\n")
    plugin = running[-1]
    await until(lambda: any(f.path == str(new) for f in plugin.files.values()))
    with new.open("a") as fh:
        fh.write("after\n")
    await until(lambda: got.records())
    assert got.records() == [{"log": "after"}]


async def test_new_files_read_from_head_by_default(running: list[Any], tmp_path: Path) -> None:
    got = BatchCollector()
    await tail(running, got, path=str(tmp_path / "*.log"))
    (tmp_path / "new.log").write_text("first\n")
    await until(lambda: got.records())
    assert got.records() == [{"log": "first"}]


async def test_truncate_long_lines(running: list[Any], tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"x" * 100 + b"\nshort\n" + b"y" * 70)
    got = BatchCollector()
    await tail(
        running,
        got,
        path=str(log),
        read_from_head="on",
        buffer_chunk_size="32",
        buffer_max_size="32",
        truncate_long_lines="on",
    )
    with log.open("ab") as fh:
        fh.write(b"yy\nend\n")
    await until(lambda: len(got.records()) == 4)
    assert got.records() == [
        {"log": "x" * 32},
        {"log": "short"},
        {"log": "y" * 32},
        {"log": "end"},
    ]


async def test_tag_regex_fills_the_tag(running: list[Any], tmp_path: Path) -> None:
    log = tmp_path / "web_prod_42.log"
    log.write_text("hello\n")
    got = BatchCollector()
    plugin = make_tail(
        got,
        tag="app.<service>.<env>",
        path=str(tmp_path / "*.log"),
        read_from_head="on",
        tag_regex=r"(?P<service>[a-z]+)_(?P<env>[a-z]+)_\d+\.log$",
    )
    await plugin.start()
    running.append(plugin)
    await until(lambda: got.batches)
    assert got.batches[0][0] == "app.web.prod"


async def test_db_compare_filename(running: list[Any], tmp_path: Path) -> None:
    """A DB row of the same inode under another name is not used with compare_filename."""
    db = str(tmp_path / "tail.db")
    log = tmp_path / "a.log"
    log.write_text("one\ntwo\n")
    got = BatchCollector()
    plugin = await tail(running, got, path=str(tmp_path / "*.log"), db=db, read_from_head="on")
    await until(lambda: len(got.records()) == 2)
    await plugin.stop()
    running.remove(plugin)
    os.rename(log, tmp_path / "b.log")  # same inode, another name
    again = BatchCollector()
    await tail(
        running,
        again,
        path=str(tmp_path / "*.log"),
        db=db,
        read_from_head="on",
        db__compare_filename="on",
    )
    await until(lambda: len(again.records()) == 2)
    assert again.records() == [{"log": "one"}, {"log": "two"}]


async def test_ignore_active_older_files(running: list[Any], tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("one\n")
    got = BatchCollector()
    plugin = await tail(
        running,
        got,
        path=str(log),
        read_from_head="on",
        ignore_older="1s",
        ignore_active_older_files="on",
    )
    await until(lambda: got.records())
    old = time.time() - 60
    os.utime(log, (old, old))
    await until(lambda: not plugin.files)  # left: not written for ignore_older
    with log.open("a") as fh:  # written again: picked up at its offset
        fh.write("two\n")
    await until(lambda: len(got.records()) == 2)
    assert got.records() == [{"log": "one"}, {"log": "two"}]


# --- tcp and syslog --------------------------------------------------------------------


def _ctx(plugin: str, cls: type, emit: Any, service: dict[str, Any] | None = None, **props: str):
    raw = [RawProperty(k.replace("__", "."), v, Origin("t.conf", 1)) for k, v in props.items()]
    opts = (INPUT_COMMON + cls.options).resolve(raw, section=f"[INPUT] {plugin}")
    return InputContext(
        name=f"{plugin}.0",
        plugin=plugin,
        options=opts,
        emit=emit,
        tag=f"{plugin}.0",
        service=service or {},
        config_dir=Path.cwd(),
    )


@pytest.fixture
def certs(tmp_path: Path) -> dict[str, Any]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return {
        "crt": str(tmp_path / "server.pem"),
        "key": str(tmp_path / "server.key"),
        "client": client,
    }


async def test_tcp_parser_parses_each_piece(running: list[Any]) -> None:
    got = BatchCollector()
    plugin = TcpInput(
        _ctx(
            "tcp",
            TcpInput,
            got,
            listen="127.0.0.1",
            port="0",
            parser="json",
            source_address_key="src",
        )
    )
    await plugin.start()
    running.append(plugin)
    _reader, writer = await asyncio.open_connection("127.0.0.1", plugin.port)
    writer.write(b'{"a": 1, "b": "two"}\nnot json at all\n')
    await writer.drain()
    await until(lambda: len(got.records()) == 2)
    writer.close()
    await writer.wait_closed()
    first, second = got.records()
    assert first["a"] == 1 and first["b"] == "two" and first["src"].startswith("tcp://127.0.0.1:")
    assert second["log"] == "not json at all" and second["src"] == first["src"]


async def test_tcp_over_tls(running: list[Any], certs: dict[str, Any]) -> None:
    got = BatchCollector()
    plugin = TcpInput(
        _ctx(
            "tcp",
            TcpInput,
            got,
            listen="127.0.0.1",
            port="0",
            tls="on",
            tls__crt_file=certs["crt"],
            tls__key_file=certs["key"],
            tls__min_version="TLSv1.2",
        )
    )
    await plugin.start()
    running.append(plugin)
    _reader, writer = await asyncio.open_connection(
        "127.0.0.1", plugin.port, ssl=certs["client"], server_hostname="localhost"
    )
    writer.write(b'{"over": "tls"}\n')
    await writer.drain()
    await until(lambda: got.records())
    writer.close()
    await writer.wait_closed()
    assert got.records() == [{"over": "tls"}]


async def test_syslog_tls_octet_counting_and_raw_message_key(
    running: list[Any], certs: dict[str, Any]
) -> None:
    got = BatchCollector()
    plugin = SyslogInput(
        _ctx(
            "syslog",
            SyslogInput,
            got,
            mode="tcp",
            listen="127.0.0.1",
            port="0",
            format="octet_counting",
            raw_message_key="raw",
            tls="on",
            tls__crt_file=certs["crt"],
            tls__key_file=certs["key"],
        )
    )
    await plugin.start()
    running.append(plugin)
    msg = b"<34>1 2026-12-04T12:00:00Z host app 1 ID47 - hello"
    _reader, writer = await asyncio.open_connection(
        "127.0.0.1", plugin.port, ssl=certs["client"], server_hostname="localhost"
    )
    writer.write(str(len(msg)).encode() + b" " + msg)
    await writer.drain()
    await until(lambda: got.records())
    writer.close()
    await writer.wait_closed()
    record = got.records()[0]
    assert record["message"] == "hello" and record["raw"] == msg


# --- forward ---------------------------------------------------------------------------


async def test_forward_io_timeout_closes_a_silent_connection(running: list[Any]) -> None:
    async def emit(tag: str, data: bytes, records: int) -> None:
        pass

    plugin = ForwardInput(
        _ctx("forward", ForwardInput, emit, listen="127.0.0.1", port="0", net__io_timeout="0.2")
    )
    await plugin.start()
    running.append(plugin)
    reader, writer = await asyncio.open_connection("127.0.0.1", plugin.port)
    async with asyncio.timeout(5):
        assert await reader.read() == b""  # closed by the server
    writer.close()


async def test_forward_empty_shared_key_needs_the_handshake(running: list[Any]) -> None:
    async def emit(tag: str, data: bytes, records: int) -> None:
        pass

    plugin = ForwardInput(
        _ctx("forward", ForwardInput, emit, listen="127.0.0.1", port="0", empty_shared_key="on")
    )
    await plugin.start()
    running.append(plugin)
    reader, writer = await asyncio.open_connection("127.0.0.1", plugin.port)
    async with asyncio.timeout(5):
        helo = await reader.read(4096)  # the server opens the handshake with HELO
    writer.close()
    assert msgpack.unpackb(helo)[0] == "HELO"


@pytest.mark.parametrize("plugin", ["tcp", "syslog"])
async def test_tls_failure_names_the_peer_and_the_reason(
    running: list[Any], certs: dict[str, Any], plugin: str, caplog: pytest.LogCaptureFixture
) -> None:
    cls = TcpInput if plugin == "tcp" else SyslogInput
    mode = {"mode": "tcp"} if plugin == "syslog" else {}
    got = BatchCollector()
    server = cls(
        _ctx(
            plugin,
            cls,
            got,
            listen="127.0.0.1",
            port="0",
            tls="on",
            tls__crt_file=certs["crt"],
            tls__key_file=certs["key"],
            **mode,
        )
    )
    await server.start()
    running.append(server)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    host, port = writer.get_extra_info("sockname")[:2]
    local = f"{host}:{port}"
    writer.write(b'{"plain": "text"}\n')  # no TLS
    await writer.drain()
    async with asyncio.timeout(5):
        await reader.read()  # closed by the server
    writer.close()
    await until(lambda: "TLS handshake failed" in caplog.text)
    line = next(r for r in caplog.records if "TLS handshake failed" in r.getMessage())
    assert line.levelname == "WARNING" and local in line.getMessage()
    assert "is the client using TLS?" in line.getMessage()
    assert "Traceback" not in caplog.text and got.records() == []
    assert server.metrics()["rejected"]["tls"] == 1

"""tail's offsets are bytes of the file, whatever the file's encoding: its position,
its ``db`` row and ``offset_key`` (UTF-16 through ``unicode.encoding``, legacy
encodings through ``generic.encoding``), so a restart with a ``db`` resumes at the
right place and a Fluent Bit DB row means the same to relaybit."""

from __future__ import annotations

import asyncio
import gzip
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from input_helpers import BatchCollector, make_tail, until

from relaybit.codec.msgpack import iter_entries
from relaybit.plugins.inputs.tail.db import OffsetDB

LINES = ["première ligne", "日本語のログ", "emoji 😀 here", "", "plain ascii", "ü"]


async def tail(running: list[Any], got: BatchCollector, **props: str) -> Any:
    plugin = make_tail(got, tag="t", **props)
    await plugin.start()
    running.append(plugin)
    return plugin


async def stop(running: list[Any], plugin: Any) -> None:
    running.remove(plugin)
    await plugin.stop()


def db_offsets(db: Path) -> list[int]:
    offsets = OffsetDB(db)
    try:
        return [row.offset for row in offsets.rows()]
    finally:
        offsets.close()


@pytest.mark.parametrize(
    ("encoding", "codec", "bom"),
    [
        ("UTF-16LE", "utf-16-le", b"\xff\xfe"),
        ("UTF-16LE", "utf-16-le", b""),
        ("UTF-16BE", "utf-16-be", b"\xfe\xff"),
        ("auto", "utf-16-be", b"\xfe\xff"),
        ("auto", "utf-16-le", b""),  # no byte-order mark: little-endian
    ],
)
async def test_utf16_offsets_are_file_bytes_and_a_restart_reads_every_line_once(
    running: list[Any], tmp_path: Path, encoding: str, codec: str, bom: bytes
) -> None:
    log = tmp_path / "a.log"
    db = tmp_path / "t.db"
    log.write_bytes(bom + "".join(f"{ln}\r\n" for ln in LINES[:3]).encode(codec))
    props = {"path": str(log), "db": str(db), "unicode__encoding": encoding, "offset_key": "o"}
    got = BatchCollector()
    plugin = await tail(running, got, read_from_head="on", **props)
    await until(lambda: len(got.records()) == 3)
    with log.open("ab") as fh:  # more lines and an incomplete one
        fh.write("".join(f"{ln}\n" for ln in LINES[3:]).encode(codec) + "half".encode(codec))
    await until(lambda: len(got.records()) == 6)
    await stop(running, plugin)
    data = log.read_bytes()
    # the DB row is where the incomplete line starts, in bytes of the file
    assert db_offsets(db) == [len(data) - len("half".encode(codec))]
    # each offset_key is the file offset of its line
    for record in got.records():
        start = record["o"]
        end = data.index("\n".encode(codec), start)
        while (end - len(bom)) % 2:  # a newline byte inside another code unit
            end = data.index("\n".encode(codec), end + 1)
        assert data[start:end].decode(codec).rstrip("\r") == record["log"]
    with log.open("ab") as fh:
        fh.write(" done\nlast\n".encode(codec))
    again = BatchCollector()
    plugin = await tail(running, again, **props)
    await until(lambda: len(again.records()) == 2)
    await asyncio.sleep(0.2)  # more polls: nothing else comes
    logs = [r["log"] for r in got.records() + again.records()]
    assert logs == [*LINES, "half done", "last"]
    await stop(running, plugin)
    assert db_offsets(db) == [log.stat().st_size]


async def test_utf16_resumes_at_a_fluent_bit_db_row(running: list[Any], tmp_path: Path) -> None:
    """A row Fluent Bit wrote (the file offset after two lines) is resumed from there."""
    log = tmp_path / "a.log"
    db = tmp_path / "t.db"
    head = b"\xff\xfe" + "日本語\nüber\n".encode("utf-16-le")
    log.write_bytes(head + "three\nvier\n".encode("utf-16-le"))
    OffsetDB(db).close()  # the table, as Fluent Bit creates it
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO in_tail_files (name, offset, inode, created) VALUES (?, ?, ?, 0)",
            (str(log), len(head), log.stat().st_ino),
        )
    got = BatchCollector()
    await tail(running, got, path=str(log), db=str(db), unicode__encoding="UTF-16LE")
    await until(lambda: len(got.records()) == 2)
    await asyncio.sleep(0.2)
    assert [r["log"] for r in got.records()] == ["three", "vier"]


async def test_utf16_truncated_file_is_read_again_from_its_head(
    running: list[Any], tmp_path: Path
) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"\xff\xfe" + "".join(f"ligne {i}\n" for i in range(20)).encode("utf-16-le"))
    got = BatchCollector()
    await tail(running, got, path=str(log), read_from_head="on", unicode__encoding="auto")
    await until(lambda: len(got.records()) == 20)
    log.write_bytes(b"\xff\xfe" + "neu\n".encode("utf-16-le"))  # copytruncate: shorter
    await until(lambda: len(got.records()) == 21)
    assert got.records()[-1] == {"log": "neu"}


async def test_generic_encoding_offsets_are_file_bytes(running: list[Any], tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    db = tmp_path / "t.db"
    lines = ["ログ 日本語", "ascii", "ｶﾀｶﾅ"]
    log.write_bytes(b"".join(ln.encode("cp932") + b"\n" for ln in lines))
    props = {"path": str(log), "db": str(db), "generic__encoding": "ShiftJIS", "offset_key": "o"}
    got = BatchCollector()
    plugin = await tail(running, got, read_from_head="on", **props)
    await until(lambda: len(got.records()) == 3)
    await stop(running, plugin)
    data = log.read_bytes()
    assert db_offsets(db) == [len(data)]
    for record in got.records():
        start = record["o"]
        assert data[start : data.index(b"\n", start)].decode("cp932") == record["log"]
    with log.open("ab") as fh:
        fh.write("次の行\n".encode("cp932"))
    again = BatchCollector()
    await tail(running, again, **props)
    await until(lambda: again.records())
    await asyncio.sleep(0.2)
    assert [r["log"] for r in again.records()] == ["次の行"]


# --- .gz files: offset_key and the position count decompressed bytes (as Fluent Bit's
# offset_key); a file read to its end is saved at its size (Fluent Bit's db offset)


def gz_write(path: Path, lines: list[str]) -> None:
    with gzip.open(path, "wb") as fh:
        fh.write("".join(f"{ln}\n" for ln in lines).encode())


async def test_a_gz_file_read_to_its_end_is_saved_at_its_size_and_not_read_again(
    running: list[Any], tmp_path: Path
) -> None:
    """logrotate's compress renames app.log.1.gz to app.log.2.gz: the archive is not
    read again under its new name, and its db row holds its size as Fluent Bit's."""
    db = tmp_path / "t.db"
    first = tmp_path / "app.log.1.gz"
    gz_write(first, [f"line {i}" for i in range(100)])
    got = BatchCollector()
    plugin = await tail(
        running, got, path=str(tmp_path / "*.gz"), db=str(db), read_from_head="on",
        offset_key="o",
    )  # fmt: skip
    await until(lambda: len(got.records()) == 100)
    assert [r["o"] for r in got.records()[:3]] == [0, 7, 14]  # decompressed, as Fluent Bit
    await until(lambda: db_offsets(db) == [first.stat().st_size])
    second = tmp_path / "app.log.2.gz"
    first.rename(second)

    def read_again() -> bool:
        return any(f.path == str(second) and f.gz_done for f in plugin.files.values())

    await until(read_again)  # followed again under its new name, and at its end
    assert len(got.records()) == 100
    await stop(running, plugin)
    assert db_offsets(db) == [second.stat().st_size]


async def test_a_fluent_bit_row_of_a_gz_file_read_to_its_end(
    running: list[Any], tmp_path: Path
) -> None:
    db = tmp_path / "t.db"
    done = tmp_path / "old.log.gz"
    gz_write(done, [f"old {i}" for i in range(50)])
    OffsetDB(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO in_tail_files (name, offset, inode, created) VALUES (?, ?, ?, 0)",
            (str(done), done.stat().st_size, done.stat().st_ino),
        )
    got = BatchCollector()
    plugin = await tail(running, got, path=str(tmp_path / "*.gz"), db=str(db), read_from_head="on")
    await until(lambda: any(f.gz_done for f in plugin.files.values()))
    new = tmp_path / "new.log.gz"
    gz_write(new, ["new"])
    await until(lambda: got.records())
    await asyncio.sleep(0.2)
    assert got.records() == [{"log": "new"}]


async def test_a_gz_file_stopped_midway_resumes_where_it_stopped(
    running: list[Any], tmp_path: Path
) -> None:
    db = tmp_path / "t.db"
    log = tmp_path / "big.log.gz"
    lines = [f"line {i:07d} " + "x" * 40 for i in range(60_000)]  # ~3 MB decompressed
    gz_write(log, lines)
    seen: list[str] = []
    gate = asyncio.Event()

    async def emit(tag: str, data: bytes, records: int) -> None:
        if seen:  # the second batch waits: the first one's offset is saved
            await gate.wait()
        seen.extend(r["log"] for _, r in iter_entries(data))

    plugin = make_tail(emit, tag="t", path=str(log), db=str(db), read_from_head="on")
    await plugin.start()
    running.append(plugin)
    await until(lambda: seen and db_offsets(db) == [sum(len(ln) + 1 for ln in seen)])
    await stop(running, plugin)
    got = BatchCollector()
    await tail(running, got, path=str(log), db=str(db))
    await until(lambda: len(seen) + len(got.records()) >= len(lines))
    assert seen + [r["log"] for r in got.records()] == lines
    await until(lambda: db_offsets(db) == [log.stat().st_size])


@pytest.mark.parametrize("mode", ["pieces", "skip_long_lines", "truncate_long_lines"])
async def test_utf16_long_lines_keep_the_next_lines_file_offsets(
    running: list[Any], tmp_path: Path, mode: str
) -> None:
    log = tmp_path / "a.log"
    long = "日本語😀" * 3000  # 39,000 UTF-8 bytes: past buffer_max_size
    lines = ["before", long, "after", "end"]
    log.write_bytes(b"\xff\xfe" + "".join(f"{ln}\n" for ln in lines).encode("utf-16-le"))
    props = {"buffer_chunk_size": "16k", "buffer_max_size": "16k"}
    if mode != "pieces":
        props[mode] = "on"
    got = BatchCollector()
    await tail(
        running, got, path=str(log), read_from_head="on", unicode__encoding="auto",
        offset_key="o", **props,
    )  # fmt: skip
    await until(lambda: got.records() and got.records()[-1]["log"] == "end")
    data = log.read_bytes()
    starts = {r["log"]: r["o"] for r in got.records()}
    assert starts["before"] == 2
    assert data[starts["after"] :].decode("utf-16-le").startswith("after\nend\n")
    assert data[starts["end"] :].decode("utf-16-le") == "end\n"
    if mode == "pieces":  # three pieces, each at its place in the file
        pieces = [r["o"] for r in got.records()[1:-2]]
        assert len(pieces) == 3 and pieces[0] == starts["before"] + len("before\n") * 2
        assert pieces == sorted(pieces) and pieces[-1] < starts["after"]

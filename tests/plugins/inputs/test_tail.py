"""in_tail against real files: appends, rotation, truncation, DB offsets, globs, long lines."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import pytest
from input_helpers import make_tail, until

from relaybit.codec.msgpack import EventTime, iter_entries
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.errors import ConfigError
from relaybit.plugins.base import INPUT_COMMON, InputContext
from relaybit.plugins.inputs.tail import TailInput
from relaybit.plugins.inputs.tail.db import OffsetDB
from relaybit.plugins.inputs.tail.scan import expand_tag


class Collector:
    """An emit() that decodes and keeps what it is given."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, Any, Any]] = []
        self.calls = 0

    async def __call__(self, tag: str, data: bytes, records: int) -> None:
        got = list(iter_entries(data))
        assert len(got) == records
        self.calls += 1
        self.entries.extend((tag, t, r) for t, r in got)

    def logs(self, key: str = "log") -> list[str]:
        return [r[key] for _, _, r in self.entries]


def make(
    collector: Collector,
    *,
    tag: str = "tail.0",
    service: dict[str, Any] | None = None,
    **props: str,
) -> TailInput:
    return make_tail(collector, tag=tag, service=service, **props)


def write(path: Path, lines: list[str], mode: str = "a") -> None:
    with open(path, mode) as handle:
        handle.write("".join(line + "\n" for line in lines))


async def test_appended_lines_arrive_exactly_once(tmp_path: Path, running: list[TailInput]) -> None:
    log = tmp_path / "app.log"
    write(log, [f"old {i}" for i in range(3)])
    got = Collector()
    plugin = make(got, path=str(log), read_from_head="on")
    running.append(plugin)
    await plugin.start()
    await until(lambda: len(got.entries) == 3)
    write(log, [f"new {i}" for i in range(1000)])
    with open(log, "a") as handle:
        handle.write("partial")  # no newline yet: not emitted
    await until(lambda: len(got.entries) == 1003)
    with open(log, "a") as handle:
        handle.write(" line\n")
    await until(lambda: len(got.entries) == 1004)
    assert got.logs() == [f"old {i}" for i in range(3)] + [f"new {i}" for i in range(1000)] + [
        "partial line"
    ]
    assert all(isinstance(t, EventTime) for _, t, _ in got.entries)
    assert {tag for tag, _, _ in got.entries} == {"tail.0"}


async def test_files_present_at_start_are_read_from_the_end(
    tmp_path: Path, running: list[TailInput]
) -> None:
    old = tmp_path / "a.log"
    write(old, ["before start"])
    got = Collector()
    plugin = make(got, path=str(tmp_path / "*.log"))
    running.append(plugin)
    await plugin.start()
    write(old, ["after start"])
    later = tmp_path / "b.log"
    write(later, ["new file line 1", "new file line 2"])  # discovered later: from the head
    await until(lambda: len(got.entries) == 3)
    assert sorted(got.logs()) == ["after start", "new file line 1", "new file line 2"]


async def test_rotation_by_rename_while_writing(tmp_path: Path, running: list[TailInput]) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    got = Collector()
    # the glob also matches the rotated names: they must not be read twice
    plugin = make(got, path=str(tmp_path / "app.log*"), read_from_head="on")
    running.append(plugin)
    await plugin.start()
    expected = []
    handle = open(log, "a")  # noqa: SIM115 - kept open across rotations, like a logger
    try:
        for i in range(3000):
            line = f"line {i}"
            handle.write(line + "\n")
            expected.append(line)
            if i % 1000 == 999:
                handle.write("after rename, same fd\n")
                expected.append("after rename, same fd")
                handle.flush()
                os.rename(log, tmp_path / f"app.log.{i // 1000}")
                handle.write(f"late write {i}\n")  # the logger has not reopened yet
                expected.append(f"late write {i}")
                handle.close()
                handle = open(log, "a")  # noqa: SIM115
            if i % 100 == 0:
                handle.flush()
                await asyncio.sleep(0.005)
        handle.flush()
    finally:
        handle.close()
    await until(lambda: len(got.entries) >= len(expected))
    await asyncio.sleep(0.5)  # past rotate_wait and a rescan: nothing more may arrive
    assert sorted(got.logs()) == sorted(expected)
    assert len(got.logs()) == len(expected)


async def test_truncation_restarts_from_zero(tmp_path: Path, running: list[TailInput]) -> None:
    log = tmp_path / "app.log"
    write(log, [f"first {i}" for i in range(50)])
    got = Collector()
    plugin = make(got, path=str(log), read_from_head="on")
    running.append(plugin)
    await plugin.start()
    await until(lambda: len(got.entries) == 50)
    with open(log, "w") as handle:  # truncate (copytruncate style), then write less
        handle.write("second 0\nsecond 1\n")
    await until(lambda: len(got.entries) == 52)
    assert got.logs()[50:] == ["second 0", "second 1"]


async def test_db_offsets_resume_without_duplicates(
    tmp_path: Path, running: list[TailInput]
) -> None:
    log = tmp_path / "app.log"
    db = tmp_path / "state" / "tail.db"
    write(log, [f"a {i}" for i in range(100)])
    got = Collector()
    first = make(got, path=str(log), db=str(db), read_from_head="on")
    await first.start()
    await until(lambda: len(got.entries) == 100)
    await first.stop()
    rows = OffsetDB(db).rows()
    assert len(rows) == 1 and rows[0].offset == log.stat().st_size
    assert rows[0].inode == log.stat().st_ino
    write(log, [f"b {i}" for i in range(20)])
    second_got = Collector()
    second = make(second_got, path=str(log), db=str(db), read_from_head="on")
    running.append(second)
    await second.start()
    await until(lambda: len(second_got.entries) == 20)
    await asyncio.sleep(0.1)
    assert second_got.logs() == [f"b {i}" for i in range(20)]


async def test_db_offset_is_saved_only_after_emit_returned(
    tmp_path: Path, running: list[TailInput]
) -> None:
    log = tmp_path / "app.log"
    db = tmp_path / "tail.db"
    write(log, ["one", "two"])
    release = asyncio.Event()
    seen: list[int] = []

    async def slow_emit(tag: str, data: bytes, records: int) -> None:
        seen.append(records)
        await release.wait()

    raw = [
        RawProperty("path", str(log), Origin("t", 1)),
        RawProperty("db", str(db), Origin("t", 2)),
        RawProperty("read_from_head", "on", Origin("t", 3)),
        RawProperty("poll_interval", "0.02", Origin("t", 4)),
    ]
    opts = (INPUT_COMMON + TailInput.options).resolve(raw, section="s")
    plugin = TailInput(InputContext(name="tail.0", plugin="tail", options=opts, emit=slow_emit))
    running.append(plugin)
    await plugin.start()
    await until(lambda: seen == [2])
    # the row is there (written off the loop), its offset has not moved: emit has not returned
    await until(lambda: [r.offset for r in OffsetDB(db).rows()] == [0])
    assert seen == [2]
    release.set()
    await until(lambda: [r.offset for r in OffsetDB(db).rows()] == [8])


async def test_globs_and_exclude(tmp_path: Path, running: list[TailInput]) -> None:
    for name in ("a.log", "b.log", "skip.log", "c.txt"):
        write(tmp_path / name, [name])
    got = Collector()
    plugin = make(
        got,
        path=f"{tmp_path}/*.log, {tmp_path}/*.txt",
        exclude_path="skip.*",
        read_from_head="on",
        tag="files.*",
        path_key="file",
    )
    running.append(plugin)
    await plugin.start()
    await until(lambda: len(got.entries) == 3)
    assert sorted(got.logs()) == ["a.log", "b.log", "c.txt"]
    for tag, _, record in got.entries:
        assert record["file"].endswith(record["log"])
        assert tag == expand_tag("files.*", record["file"])


def test_tag_expansion_like_fluent_bit() -> None:
    assert expand_tag("app.*", "/var/log/app.log") == "app.var.log.app.log"
    assert expand_tag("kube.*", "/var//log/x.log") == "kube.var.log.x.log"
    assert expand_tag("fixed", "/var/log/x.log") == "fixed"


async def test_long_lines_are_cut_or_skipped(tmp_path: Path, running: list[TailInput]) -> None:
    log = tmp_path / "app.log"
    long = "x" * 5000
    write(log, ["short", long, "after"])
    with open(log, "a") as handle:
        handle.write("y" * 2500)  # a long incomplete line
    cut = Collector()
    plugin = make(
        cut, path=str(log), read_from_head="on", buffer_chunk_size="1k", buffer_max_size="2k"
    )
    running.append(plugin)
    await plugin.start()
    await until(lambda: len(cut.entries) >= 6)
    logs = cut.logs()
    assert logs[0] == "short" and logs[4] == "after"
    assert "".join(logs[1:4]) == long and all(len(x) <= 2048 for x in logs)
    assert logs[5] == "y" * 2048
    skipped = Collector()
    plugin2 = make(
        skipped,
        path=str(log),
        read_from_head="on",
        buffer_chunk_size="1k",
        buffer_max_size="2k",
        skip_long_lines="on",
    )
    running.append(plugin2)
    await plugin2.start()
    await until(lambda: len(skipped.entries) == 2)
    with open(log, "a") as handle:
        handle.write("yyy\nlast\n")  # ends the skipped long line, then one more
    await until(lambda: len(skipped.entries) == 3)
    assert skipped.logs() == ["short", "after", "last"]
    assert plugin2.status()["skipped_long_lines"] == 2


async def test_invalid_utf8_and_empty_lines(tmp_path: Path, running: list[TailInput]) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(b"ok\n\nbad \xff\xfe byte\r\n")
    got = Collector()
    plugin = make(got, path=str(log), read_from_head="on")
    running.append(plugin)
    await plugin.start()
    await until(lambda: len(got.entries) == 3)
    assert got.logs() == ["ok", "", "bad \udcff\udcfe byte"]
    got2 = Collector()
    plugin2 = make(got2, path=str(log), read_from_head="on", skip_empty_lines="on")
    running.append(plugin2)
    await plugin2.start()
    await until(lambda: len(got2.entries) == 2)
    assert got2.logs()[0] == "ok"


class KeyValueParser:
    """A stand-in parser: ``k=v k=v`` lines with an optional ``time=<epoch>``."""

    def parse(self, text: str) -> tuple[float | None, dict[str, str]] | None:
        pairs = re.findall(r"(\w+)=(\S+)", text)
        if not pairs:
            return None
        record = dict(pairs)
        stamp = record.pop("time", None)
        return (float(stamp) if stamp else None), record


async def test_parser_applied_with_fallback(tmp_path: Path, running: list[TailInput]) -> None:
    log = tmp_path / "app.log"
    write(log, ["a=1 b=2 time=1700000000.5", "no pairs here"])
    got = Collector()
    plugin = make(
        got,
        path=str(log),
        read_from_head="on",
        parser="kv",
        offset_key="off",
        service={"parsers": {"kv": KeyValueParser()}},
    )
    running.append(plugin)
    await plugin.start()
    await until(lambda: len(got.entries) == 2)
    (_, t0, r0), (_, _, r1) = got.entries
    assert r0 == {"a": "1", "b": "2", "off": 0}
    assert t0 == EventTime(1700000000, 500000000)
    assert r1 == {"log": "no pairs here", "off": 26}


def test_unknown_parser_and_missing_path_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"t.conf:\d+.*no parser named 'nope'"):
        make(Collector(), path="/x", parser="nope")
    with pytest.raises(ConfigError, match="'path' is required"):
        make(Collector())


async def test_exit_on_eof(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write(log, [str(i) for i in range(10)])
    got = Collector()
    plugin = make(got, path=str(log), read_from_head="on", exit_on_eof="on")
    await plugin.start()
    await asyncio.wait_for(plugin.wait(), 10)
    assert got.logs() == [str(i) for i in range(10)]
    await plugin.stop()


async def test_builtin_json_parser_when_the_service_has_none(
    tmp_path: Path, running: list[TailInput]
) -> None:
    from relaybit.parsers import BUILTIN_PARSERS

    if "json" not in BUILTIN_PARSERS:
        pytest.skip("no built-in json parser")
    log = tmp_path / "app.log"
    write(log, ['{"level":"info","n":3}', "not json"])
    got = Collector()
    plugin = make(got, path=str(log), read_from_head="on", parser="json", path_key="p")
    running.append(plugin)
    await plugin.start()
    await until(lambda: len(got.entries) == 2)
    assert got.entries[0][2] == {"level": "info", "n": 3, "p": str(log)}
    assert got.entries[1][2] == {"log": "not json", "p": str(log)}


async def test_a_glob_that_matches_the_db_does_not_tail_the_db(
    tmp_path: Path, running: list[TailInput]
) -> None:
    # path /var/log/app/* with db /var/log/app/tail.db: tail followed its own
    # SQLite file and its -wal/-shm, emitting binary pages, and every offset it
    # saved grew the WAL it was reading: a loop feeding itself
    write(tmp_path / "app.log", ["one"])
    got = Collector()
    plugin = make(got, path=str(tmp_path / "*"), db=str(tmp_path / "tail.db"), read_from_head="on")
    running.append(plugin)
    await plugin.start()
    await until(lambda: got.logs() == ["one"])
    assert {os.path.basename(p) for p in (tmp_path.iterdir())} >= {"tail.db", "tail.db-wal"}
    plugin._rescan()
    write(tmp_path / "app.log", ["two"])
    await until(lambda: got.logs()[-1:] == ["two"])
    followed = sorted(os.path.basename(f["path"]) for f in plugin.status()["files"])
    assert followed == ["app.log"]
    assert got.logs() == ["one", "two"]


async def test_a_new_file_reusing_a_deleted_files_inode_is_read_from_its_head(
    tmp_path: Path, running: list[TailInput]
) -> None:
    # tail remembered where it stopped in a finished file by (dev, inode) only; a
    # file created later on the freed inode (ext4 reuses it at once) started at
    # that old offset: its first lines were silently skipped
    old = tmp_path / "2024-01-01.log"
    write(old, [f"old {i} " + "x" * 40 for i in range(5)])
    got = Collector()
    plugin = make(got, path=str(tmp_path / "*.log"), read_from_head="on")
    running.append(plugin)
    await plugin.start()
    await until(lambda: len(got.entries) == 5)
    inode = old.stat().st_ino
    old.unlink()
    await until(lambda: not plugin.status()["files"])  # deleted, read, rotate_wait passed
    new = tmp_path / "2024-01-02.log"
    write(new, [f"new {i} " + "y" * 40 for i in range(8)])
    if new.stat().st_ino != inode:
        pytest.skip("the filesystem did not reuse the inode")
    await until(lambda: len(got.entries) >= 13)
    assert got.logs()[5:] == [f"new {i} " + "y" * 40 for i in range(8)]


async def test_a_rotated_file_found_again_by_the_glob_is_not_read_twice(
    tmp_path: Path, running: list[TailInput]
) -> None:
    log = tmp_path / "app.log"
    write(log, ["a1", "a2"])
    got = Collector()
    plugin = make(got, path=str(tmp_path / "app.log*"), read_from_head="on")
    running.append(plugin)
    await plugin.start()
    await until(lambda: got.logs() == ["a1", "a2"])
    log.rename(tmp_path / "app.log.1")
    write(log, ["b1"])
    await until(lambda: got.logs() == ["a1", "a2", "b1"])
    # the rotated file is dropped after rotate_wait, then the glob finds it again
    await until(lambda: len(plugin.status()["files"]) == 2 and plugin._finished)
    write(log, ["b2"])
    await until(lambda: got.logs()[-1:] == ["b2"])
    assert sorted(got.logs()) == ["a1", "a2", "b1", "b2"]

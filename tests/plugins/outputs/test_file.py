"""out_file: the files' content in each format."""

from __future__ import annotations

import errno
import gzip
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgpack
import pytest

from relaybit.codec.msgpack import EventTime, pack_entries
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.pipeline.chunk import Chunk
from relaybit.plugins.base import OUTPUT_COMMON, FlushResult, OutputContext
from relaybit.plugins.outputs.file import FileOutput

ENTRIES = [
    (EventTime(1700000000, 500000000), {"message": "hello", "n": 1}),
    (EventTime(1700000001, 0), {"message": "bye", "n": 2}),
]
DATA = pack_entries(ENTRIES)


def make(**props: str) -> FileOutput:
    raw = [RawProperty(k, v, Origin("test.conf", 1)) for k, v in props.items()]
    opts = (OUTPUT_COMMON + FileOutput.options).resolve(raw, section="[OUTPUT] file")
    return FileOutput(OutputContext(name="file.0", plugin="file", options=opts))


async def test_default_format_named_after_the_tag(tmp_path: Path) -> None:
    out = make(path=str(tmp_path))
    assert await out.flush(Chunk("app.log", DATA, 2)) is FlushResult.OK
    lines = (tmp_path / "app.log").read_text().splitlines()
    assert lines[0] == 'app.log: [1700000000.500000, {"message":"hello","n":1}]'
    assert lines[1] == 'app.log: [1700000001.000000, {"message":"bye","n":2}]'


async def test_plain_and_json_lines(tmp_path: Path) -> None:
    await make(path=str(tmp_path), file="p.txt", format="plain").flush(Chunk("t", DATA, 2))
    plain = [json.loads(x) for x in (tmp_path / "p.txt").read_text().splitlines()]
    assert plain == [r for _, r in ENTRIES]
    await make(path=str(tmp_path), file="j.txt", format="json_lines").flush(Chunk("t", DATA, 2))
    first = json.loads((tmp_path / "j.txt").read_text().splitlines()[0])
    assert first == {"date": 1700000000.5, "message": "hello", "n": 1}


async def test_csv_with_header_and_delimiter(tmp_path: Path) -> None:
    out = make(path=str(tmp_path), file="c.csv", format="csv", csv_column_names="on")
    await out.flush(Chunk("t", DATA, 2))
    await out.flush(Chunk("t", DATA, 2))
    lines = (tmp_path / "c.csv").read_text().splitlines()
    assert lines[0] == "timestamp,message,n"
    assert lines[1] == '1700000000.500000,"hello",1'
    assert len(lines) == 5  # one header only
    out = make(path=str(tmp_path), file="t.csv", format="csv", delimiter="tab")
    await out.flush(Chunk("t", DATA, 2))
    assert (tmp_path / "t.csv").read_text().splitlines()[0] == '1700000000.500000\t"hello"\t1'


async def test_ltsv(tmp_path: Path) -> None:
    out = make(path=str(tmp_path), file="l.txt", format="ltsv")
    await out.flush(Chunk("t", DATA, 2))
    line = (tmp_path / "l.txt").read_text().splitlines()[0]
    assert line == '"time":1700000000.500000\t"message":"hello"\t"n":1'


async def test_template_and_msgpack(tmp_path: Path) -> None:
    out = make(path=str(tmp_path), file="x.txt", format="template", template="{time} {message}!")
    await out.flush(Chunk("t", DATA, 2))
    assert (tmp_path / "x.txt").read_text().splitlines() == [
        "1700000000.5 hello!",
        "1700000001.0 bye!",
    ]
    await make(path=str(tmp_path), file="m.bin", format="msgpack").flush(Chunk("t", DATA, 2))
    unpacker = msgpack.Unpacker()
    unpacker.feed((tmp_path / "m.bin").read_bytes())
    assert len(list(unpacker)) == 2


async def test_mkdir_and_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "a" / "b"
    assert await make(path=str(missing)).flush(Chunk("t", DATA, 2)) is FlushResult.RETRY
    assert await make(path=str(missing), mkdir="on").flush(Chunk("t", DATA, 2)) is FlushResult.OK
    assert (missing / "t").exists()


async def test_unwritable_path_retries_and_is_logged_once_until_it_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "logs"
    blocker.write_text("a file where the directory should be\n")
    out = make(path=str(blocker), file="out.log")
    caplog.set_level(logging.DEBUG, logger="relaybit")
    for _ in range(3):  # every retry of every chunk failed with a warning line
        assert await out.flush(Chunk("t", DATA, 2)) is FlushResult.RETRY
    warnings = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and "cannot write" in r.msg % r.args
    ]
    assert len(warnings) == 1
    blocker.unlink()
    blocker.mkdir()
    assert await out.flush(Chunk("t", DATA, 2)) is FlushResult.OK
    assert any("writing again" in r.getMessage() for r in caplog.records)
    assert await out.flush(Chunk("t", DATA, 2)) is FlushResult.OK
    assert len((blocker / "out.log").read_text().splitlines()) == 4


_FAILING_WRITE = """
import asyncio, json, resource, sys
from relaybit.codec.msgpack import EventTime, pack_entries
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.pipeline.chunk import Chunk
from relaybit.plugins.base import OUTPUT_COMMON, OutputContext
from relaybit.plugins.outputs.file import FileOutput

props = {"path": sys.argv[1], "file": "out.txt", "format": sys.argv[2]}
raw = [RawProperty(k, v, Origin("test.conf", 1)) for k, v in props.items()]
opts = (OUTPUT_COMMON + FileOutput.options).resolve(raw, section="[OUTPUT] file")
out = FileOutput(OutputContext(name="file.0", plugin="file", options=opts))
def chunk(start):
    return Chunk("t", pack_entries(
        (EventTime(1700000000, 0), {"n": i, "pad": "x" * 50}) for i in range(start, start + 100)
    ), 100)
target = f"{sys.argv[1]}/out.txt"
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)

async def main():
    results = [(await out.flush(chunk(0))).value]
    first = len(open(target, "rb").read())
    # the disk fills up half way through the next chunk
    resource.setrlimit(resource.RLIMIT_FSIZE, (first + 2000, hard))
    results.append((await out.flush(chunk(100))).value)
    after_failure = len(open(target, "rb").read())
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space again: the retry
    results.append((await out.flush(chunk(100))).value)
    print(json.dumps({"results": results, "first": first, "after_failure": after_failure}))

asyncio.run(main())
"""


@pytest.mark.parametrize("fmt", ["msgpack", "json_lines", "csv"])
def test_a_write_that_fails_half_way_is_cut_back_so_the_retry_adds_no_duplicate(
    tmp_path: Path, fmt: str
) -> None:
    # a real short write then EFBIG: RLIMIT_FSIZE in a child process (unprivileged)
    proc = subprocess.run(
        [sys.executable, "-c", _FAILING_WRITE, str(tmp_path), fmt],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.splitlines()[-1])
    assert f"[Errno {errno.EFBIG}]" in proc.stderr  # the failure was real and logged
    assert report["results"] == ["ok", "retry", "ok"]
    assert report["after_failure"] == report["first"]  # nothing of the failed write left
    content = (tmp_path / "out.txt").read_bytes()
    if fmt == "msgpack":
        numbers = [record["n"] for _, record in msgpack.Unpacker(io.BytesIO(content), raw=False)]
    elif fmt == "json_lines":
        numbers = [json.loads(line)["n"] for line in content.splitlines()]
    else:
        numbers = [int(line.split(b",")[1]) for line in content.splitlines()]
    assert numbers == list(range(200))  # every record once, in order


async def test_rotate_by_size_gzip_and_keep_max_files(tmp_path: Path) -> None:
    import gzip

    out = make(
        path=str(tmp_path),
        file="app.log",
        format="plain",
        rotate="on",
        rotate_max_size="100",
        rotate_max_files="2",
    )
    for _ in range(10):  # a flush writes 52 bytes: every second flush rotates
        assert await out.flush(Chunk("t", DATA, 2)) is FlushResult.OK
    rotated = sorted(p.name for p in tmp_path.iterdir() if p.name != "app.log")
    assert len(rotated) == 2 and all(n.startswith("app.log.") for n in rotated)
    assert all(n.endswith(".gz") for n in rotated)
    text = gzip.decompress((tmp_path / rotated[-1]).read_bytes()).decode()
    assert text.count('"message":"hello"') == 2  # whole flushes in each rotated file
    assert not (tmp_path / "app.log").exists()  # the 10th flush rotated it away


async def test_a_rotation_that_fails_is_logged_once_per_cause_and_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    out = make(path=str(tmp_path), file="a.log", format="plain", rotate="on", rotate_max_size="10")
    rename = os.rename

    def refuse(src: Any, dst: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "rename", refuse)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            assert await out.flush(Chunk("t", DATA, 2)) is FlushResult.OK
    lines = [r for r in caplog.records if "could not rotate" in r.getMessage()]
    assert len(lines) == 1 and "Permission denied" in lines[0].getMessage()
    monkeypatch.setattr(os, "rename", rename)
    assert await out.flush(Chunk("t", DATA, 2)) is FlushResult.OK  # rotated after this write
    assert not (tmp_path / "a.log").exists()
    assert "hello" in gzip.decompress(next(tmp_path.glob("a.log.*.gz")).read_bytes()).decode()


async def test_rotate_without_gzip(tmp_path: Path) -> None:
    out = make(
        path=str(tmp_path),
        file="a.log",
        format="plain",
        rotate="on",
        rotate_max_size="10",
        rotate_gzip="off",
    )
    assert await out.flush(Chunk("t", DATA, 2)) is FlushResult.OK
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 1 and names[0].startswith("a.log.") and not names[0].endswith(".gz")
    assert "hello" in (tmp_path / names[0]).read_text()

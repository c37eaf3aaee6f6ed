"""tail with multiline.parser / docker_mode against real files: joins, timeouts, rotation, DB."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from input_helpers import make_tail, until

from relaybit.codec.msgpack import iter_entries
from relaybit.config.loader import load_config
from relaybit.errors import ConfigError
from relaybit.parsers import build_parsers, with_builtins
from relaybit.plugins.inputs.tail import TailInput
from relaybit.plugins.inputs.tail.db import OffsetDB

JAVA = [
    'Dec 14 06:41:08 Exception in thread "main" java.lang.RuntimeException: wrong!',
    "    at com.myproject.module.MyProject.badMethod(MyProject.java:22)",
    "    at com.myproject.module.MyProject.main(MyProject.java:6)",
    "Caused by: java.lang.IllegalStateException: bad state",
    "    ... 5 more",
]
PYTHON = [
    "Traceback (most recent call last):",
    '  File "/app/main.py", line 5, in <module>',
    "    main()",
    "ValueError: boom",
]
GO = [
    "panic: my panic",
    "",
    "goroutine 4 [running]:",
    "main.main.func1(0xc420024120)",
    "\tfoo.go:6 +0x39",
    "created by main.main",
    "\tfoo.go:5 +0x58",
]


class Collector:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.times: list[Any] = []

    async def __call__(self, tag: str, data: bytes, records: int) -> None:
        got = list(iter_entries(data))
        assert len(got) == records
        self.times.extend(t for t, _ in got)
        self.records.extend(r for _, r in got)

    def logs(self, key: str = "log") -> list[str]:
        return [r[key] for r in self.records]


def make(collector: Collector, service: dict[str, Any] | None = None, **props: str) -> TailInput:
    return make_tail(collector, tag="t", service=service, **props)


def write(path: Path, lines: list[str]) -> None:
    with open(path, "a") as handle:
        handle.write("".join(line + "\n" for line in lines))


async def start(running: list[TailInput], collector: Collector, **props: str) -> TailInput:
    tail = make(collector, **props)
    running.append(tail)
    await tail.start()
    return tail


async def test_stack_traces_of_three_languages_become_one_record_each(
    tmp_path: Path, running: list[TailInput]
) -> None:
    log = tmp_path / "app.log"
    write(log, ["hello", *JAVA, *PYTHON, "between", *GO, "bye"])
    got = Collector()
    await start(
        running,
        got,
        path=str(log),
        read_from_head="on",
        path_key="file",
        multiline__parser="java, python, go",
    )
    await until(lambda: len(got.records) >= 6)
    assert (
        got.logs()
        == [
            "hello\n",
            "\n".join(JAVA) + "\n",
            "\n".join(PYTHON) + "\n",
            "between\n",
            "\n".join(GO) + "\n",
            "bye\n",
        ][: len(got.records)]
    )
    assert all(r["file"] == str(log) for r in got.records)


async def test_docker_and_cri_split_lines(tmp_path: Path, running: list[TailInput]) -> None:
    log = tmp_path / "c.log"
    write(
        log,
        [
            '{"log":"part one, ","stream":"stdout","time":"2021-02-01T01:40:03.53413Z"}',
            '{"log":"part two\\n","stream":"stdout","time":"2021-02-01T01:40:03.53414Z"}',
            "2019-05-07T18:57:50.904275087+00:00 stdout P cri a ",
            "2019-05-07T18:57:51.904275087+00:00 stdout F cri b",
        ],
    )
    got = Collector()
    await start(running, got, path=str(log), read_from_head="on", multiline__parser="docker, cri")
    await until(lambda: len(got.records) == 2)
    assert got.records[0] == {
        "log": "part one, part two\n",
        "stream": "stdout",
        "time": "2021-02-01T01:40:03.53413Z",
    }
    assert got.records[1]["log"] == "cri a cri b"
    assert got.records[1]["_p"] == "P"  # the first line's fields, as Fluent Bit


async def test_flush_timeout_of_a_multiline_parser_section_emits_the_pending_record(
    tmp_path: Path, running: list[TailInput]
) -> None:
    (tmp_path / "agent.conf").write_text(
        "[MULTILINE_PARSER]\n"
        "    name          ml\n"
        "    type          regex\n"
        "    flush_timeout 200\n"
        '    rule "start_state" "/^start/" "cont"\n'
        '    rule "cont"        "/^  /"     "cont"\n'
    )
    config = load_config(tmp_path / "agent.conf")
    service = {
        "parsers": with_builtins(build_parsers(config.parsers)),
        "multiline_parsers": config.multiline_parsers,
    }
    log = tmp_path / "a.log"
    log.write_text("")
    got = Collector()
    tail = make(got, service, path=str(log), multiline__parser="ml", key="message")
    running.append(tail)
    await tail.start()
    write(log, ["start of it", "  continued", "  more"])
    # no further line comes: the timeout alone must emit the record (key_content unset: 'log')
    await until(lambda: len(got.records) == 1)
    assert got.records == [{"log": "start of it\n  continued\n  more\n"}]


async def test_rotation_in_the_middle_of_a_record_loses_no_line(
    tmp_path: Path, running: list[TailInput]
) -> None:
    log = tmp_path / "r.log"
    log.write_text("")
    got = Collector()
    await start(running, got, path=str(log), multiline__parser="java", rotate_wait="0.2")
    with open(log, "a") as old:
        old.write("\n".join(JAVA[:2]) + "\n")
        old.flush()
        # the first half is read and held: the record is open when the file rotates
        await until(
            lambda: any(j.pending_offset() is not None for j in running[0]._joiners.values())
        )
        os.rename(log, tmp_path / "r.log.1")
        write(log, ["new file line"])
        old.write("\n".join(JAVA[2:]) + "\n")  # the writer still holds the old file
    await until(lambda: "".join(got.logs()).count("\n") >= len(JAVA) + 1)
    text = "".join(got.logs())
    for line in [*JAVA, "new file line"]:
        assert line in text
    # each line arrived exactly once
    assert sum(text.count(line) for line in JAVA) == len(JAVA)


async def test_db_offset_stays_at_the_start_of_a_pending_record(
    tmp_path: Path, running: list[TailInput]
) -> None:
    log = tmp_path / "d.log"
    db = tmp_path / "tail.db"
    write(log, ["plain", *JAVA[:3]])
    got = Collector()
    await start(
        running,
        got,
        path=str(log),
        read_from_head="on",
        db=str(db),
        multiline__parser="java",
    )
    await until(lambda: got.logs() == ["plain\n"])
    # the trace is still pending: a restart must read it again, so the offset is its start
    # (written off the loop: polled; it never passes the trace's start)

    def saved() -> int | None:
        offsets = OffsetDB(str(db))
        try:
            row = offsets.get(log.stat().st_ino)
            return None if row is None else row.offset
        finally:
            offsets.close()

    await until(lambda: saved() == len("plain\n"))
    await running[0].stop()  # stopping emits what is pending
    assert got.logs() == ["plain\n", "\n".join(JAVA[:3]) + "\n"]


async def test_docker_mode_rejoins_split_json_lines(
    tmp_path: Path, running: list[TailInput]
) -> None:
    log = tmp_path / "dm.log"
    write(
        log,
        [
            '{"log":"a very long ","stream":"stdout","time":"2021-02-01T01:40:03Z"}',
            '{"log":"message\\n","stream":"stdout","time":"2021-02-01T01:40:04Z"}',
            '{"log":"short\\n","stream":"stdout","time":"2021-02-01T01:40:05Z"}',
            "not json",
        ],
    )
    got = Collector()
    await start(running, got, path=str(log), read_from_head="on", docker_mode="on", parser="docker")
    await until(lambda: len(got.records) == 3)
    assert got.records[0]["log"] == "a very long message\n"
    assert got.records[0]["time"] == "2021-02-01T01:40:04Z"
    assert got.records[1]["log"] == "short\n"
    assert got.records[2] == {"log": "not json"}


async def test_docker_mode_flush_emits_a_partial_line(
    tmp_path: Path, running: list[TailInput]
) -> None:
    log = tmp_path / "dm2.log"
    write(log, ['{"log":"no newline yet","stream":"stdout"}'])
    got = Collector()
    await start(
        running, got, path=str(log), read_from_head="on", docker_mode="on", docker_mode_flush="0.1"
    )
    await until(lambda: len(got.records) == 1)
    assert got.records[0] == {"log": '{"log":"no newline yet","stream":"stdout"}'}


def test_unknown_multiline_parser_is_a_config_error_with_its_line() -> None:
    with pytest.raises(ConfigError) as info:
        make(Collector(), path="/tmp/x", multiline__parser="docker, nope")
    assert "t.conf:5:" in str(info.value)  # path is line 4
    assert "unknown multiline parser 'nope'" in str(info.value)


def test_no_multiline_keeps_the_plain_line_path() -> None:
    tail = make(Collector(), path="/tmp/x")
    assert tail._joiner_factory is None

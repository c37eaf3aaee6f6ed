"""in_stdin: lines, JSON lines and parsed lines from a pipe and from a real process stdin."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import textwrap
from typing import Any

from relaybit.codec.msgpack import EventTime, iter_entries
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.plugins.base import INPUT_COMMON, InputContext
from relaybit.plugins.inputs.stdin import StdinInput


class Collector:
    def __init__(self) -> None:
        self.entries: list[tuple[Any, Any]] = []

    async def __call__(self, tag: str, data: bytes, records: int) -> None:
        got = list(iter_entries(data))
        assert len(got) == records and tag == "in"
        self.entries.extend(got)


class Upper:
    def parse(self, text: str) -> tuple[None, dict[str, str]] | None:
        return (None, {"up": text.upper()}) if text.startswith("p") else None


def make(
    got: Collector, fd: int, service: dict[str, Any] | None = None, **props: str
) -> StdinInput:
    raw = [RawProperty(k, v, Origin("s.conf", 1)) for k, v in props.items()]
    opts = (INPUT_COMMON + StdinInput.options).resolve(raw, section="[INPUT] stdin")
    ctx = InputContext(
        name="stdin.0", plugin="stdin", options=opts, emit=got, tag="in", service=service or {}
    )
    return StdinInput(ctx, fd=fd)


async def test_lines_and_json_from_a_pipe_until_eof() -> None:
    read_fd, write_fd = os.pipe()
    got = Collector()
    plugin = make(got, read_fd, buffer_size="4k")
    await plugin.start()
    payload = b"plain line\r\n" + b'{"k":"v","n":1}\n' + b"x" * 10000 + b"\nno newline at end"
    os.write(write_fd, payload)
    os.close(write_fd)
    await asyncio.wait_for(plugin.wait(), 10)
    await plugin.stop()
    os.close(read_fd)
    records = [r for _, r in got.entries]
    assert records == [
        {"log": "plain line"},
        {"k": "v", "n": 1},
        {"log": "x" * 10000},
        {"log": "no newline at end"},
    ]
    assert all(isinstance(t, EventTime) for t, _ in got.entries)
    assert plugin.status() == {"records": 4, "eof": True}


async def test_parser_with_fallback() -> None:
    read_fd, write_fd = os.pipe()
    got = Collector()
    plugin = make(got, read_fd, service={"parsers": {"up": Upper()}}, parser="up")
    await plugin.start()
    os.write(write_fd, b"parse me\nleave me\n")
    os.close(write_fd)
    await asyncio.wait_for(plugin.wait(), 10)
    await plugin.stop()
    os.close(read_fd)
    assert [r for _, r in got.entries] == [{"up": "PARSE ME"}, {"log": "leave me"}]


def test_reads_a_real_process_stdin(python: str) -> None:
    code = textwrap.dedent(
        """
        import asyncio, json
        from relaybit.codec.msgpack import iter_entries
        from relaybit.plugins.base import INPUT_COMMON, InputContext
        from relaybit.plugins.inputs.stdin import StdinInput

        async def main():
            out = []
            async def emit(tag, data, n):
                out.extend(r for _, r in iter_entries(data))
            opts = (INPUT_COMMON + StdinInput.options).resolve([], section="s")
            plugin = StdinInput(InputContext(name="stdin.0", plugin="stdin", options=opts, emit=emit))
            await plugin.start()
            await plugin.wait()
            await plugin.stop()
            print(json.dumps(out))

        asyncio.run(main())
        """
    )
    lines = "".join(f"line {i}\n" for i in range(5000))
    done = subprocess.run(
        [python, "-c", code], input=lines.encode(), capture_output=True, timeout=60, check=True
    )
    assert json.loads(done.stdout) == [{"log": f"line {i}"} for i in range(5000)]


async def test_an_emit_that_fails_is_logged_counted_and_the_same_lines_handed_again(
    monkeypatch: Any, caplog: Any
) -> None:
    monkeypatch.setattr("relaybit.plugins.inputs.stdin.RESTART_BASE", 0.01)
    read_fd, write_fd = os.pipe()
    got = Collector()
    failures = [RuntimeError("storage hiccup")]

    async def flaky(tag: str, data: bytes, records: int) -> None:
        if failures:
            raise ValueError(str(failures.pop()))
        await got(tag, data, records)

    plugin = make(got, read_fd)
    plugin.ctx.emit = flaky
    await plugin.start()
    os.write(write_fd, b"one\ntwo\n")
    os.close(write_fd)
    await asyncio.wait_for(plugin.wait(), 10)
    await plugin.stop()
    os.close(read_fd)
    assert [r for _, r in got.entries] == [{"log": "one"}, {"log": "two"}]
    assert plugin.restarts.count == 1
    assert plugin.restarts.last_error == "ValueError: storage hiccup"
    lines = [r.getMessage() for r in caplog.records if "unexpected error" in r.getMessage()]
    assert len(lines) == 1 and "stdin failed on an unexpected error (ValueError" in lines[0]


async def test_a_lone_surrogate_escape_is_a_record_as_fluent_bit_writes_it() -> None:
    # orjson refused it and the JSON line was packed as text under "log"
    read_fd, write_fd = os.pipe()
    got = Collector()
    plugin = make(got, read_fd)
    await plugin.start()
    os.write(write_fd, b'{"msg":"\\ud800"}\n{"ok":1}\n')
    os.close(write_fd)
    await asyncio.wait_for(plugin.wait(), 10)
    await plugin.stop()
    os.close(read_fd)
    assert [r for _, r in got.entries] == [{"msg": "\ufffd"}, {"ok": 1}]

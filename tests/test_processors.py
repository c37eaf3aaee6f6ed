"""Processors (Fluent Bit 3+ YAML ``processors: logs:``) through a real agent and real receivers.

Input processors run on the input's records before they are buffered; output
processors on a chunk just before that output sends it (the other outputs of
the same chunk get it unchanged).  Records reach a real Forward receiver
(:class:`relaybit.net.forward_server.ForwardServer` on 127.0.0.1) and a file
output; records with metadata come in through a real forward input socket.
"""

from __future__ import annotations

import asyncio
import json
import struct
from pathlib import Path
from typing import Any

import msgpack
import pytest

from relaybit.agent import Agent, check_config
from relaybit.codec.msgpack import EventTime, ext_hook
from relaybit.config.loader import load_config
from relaybit.errors import ConfigError
from relaybit.net.forward_server import ForwardServer
from relaybit.testing import wait_for

CONFIG = """\
service:
  flush: 0.05
  grace: 2
pipeline:
  inputs:
    - name: forward
      listen: 127.0.0.1
      port: {in_port}
      tag: in
      processors:
        logs:
          - name: grep
            exclude: level ^debug$
          - name: content_modifier
            action: insert
            key: env
            value: prod
          - name: content_modifier
            action: upsert
            key: origin
            value: agent-1
            context: metadata
  outputs:
    - name: forward
      match: '*'
      host: 127.0.0.1
      port: {out_port}
      processors:
        logs:
          - name: content_modifier
            action: hash
            key: user
          - name: modify
            rename: msg message
          - name: content_modifier
            action: convert
            key: code
            converted_type: int
    - name: file
      match: '*'
      path: {out}
      file: plain
      format: json_lines
"""


class Collect:
    """What a real Forward receiver got: every item, decoded whole (metadata kept)."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    async def on_entries(self, tag: str, entries: bytes, records: int) -> None:
        unpacker = msgpack.Unpacker(ext_hook=ext_hook, raw=False, strict_map_key=False)
        unpacker.feed(entries)
        self.items.extend(unpacker)


def forward_message(entries: list[Any]) -> bytes:
    """A Forward-mode message ``[tag, [entries], {}]`` as a Fluent Bit client sends it."""

    def ext(obj: Any) -> Any:
        if isinstance(obj, EventTime):
            return msgpack.ExtType(0, struct.pack(">II", obj.seconds, obj.nanoseconds))
        raise TypeError(obj)

    return msgpack.packb(["app", entries, {}], default=ext, use_bin_type=True)


T = EventTime(1_700_000_000, 5)
SENT = [
    [[T, {"trace": "t1"}], {"level": "info", "msg": "one", "user": "alice", "code": "200"}],
    [T, {"level": "debug", "msg": "dropped by the input processor", "user": "x"}],
    [T, {"level": "warn", "msg": "two", "user": "bob", "code": "oops"}],
]
SHA_ALICE = "2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90"


async def test_input_and_output_processors_end_to_end(tmp_path: Path) -> None:
    collect = Collect()
    receiver = ForwardServer(collect.on_entries, host="127.0.0.1", port=0, udp_heartbeat=False)
    await receiver.start()
    out = tmp_path / "out"
    out.mkdir()
    conf = tmp_path / "agent.yaml"
    conf.write_text(CONFIG.format(in_port=0, out_port=receiver.port, out=out))
    agent = Agent(load_config(conf))
    await agent.start()
    try:
        port = agent.inputs["forward.0"].port  # type: ignore[attr-defined]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(forward_message(SENT))
        await writer.drain()
        writer.close()
        plain = out / "plain"
        await wait_for(lambda: len(collect.items) == 2, what="2 records at the receiver")
        await wait_for(
            lambda: plain.exists() and len(plain.read_text().splitlines()) == 2,
            what="2 records in the file",
        )
    finally:
        await agent.stop()
        await receiver.stop()
    # input processors: grep dropped the debug record, env inserted, metadata upserted
    # (an entry without metadata got a map); output processors on the forward output only
    assert collect.items == [
        [
            [T, {"trace": "t1", "origin": "agent-1"}],
            {"level": "info", "message": "one", "user": SHA_ALICE, "env": "prod", "code": 200},
        ],
        [
            [T, {"origin": "agent-1"}],
            # 'oops' is no integer: convert leaves the record as it is
            {
                "level": "warn",
                "message": "two",
                "user": collect.items[1][1]["user"],
                "code": "oops",
                "env": "prod",
            },
        ],
    ]
    assert collect.items[1][1]["user"] != "bob"
    file_records = [json.loads(line) for line in (out / "plain").read_text().splitlines()]
    assert [{k: v for k, v in r.items() if k != "date"} for r in file_records] == [
        {"level": "info", "msg": "one", "user": "alice", "code": "200", "env": "prod"},
        {"level": "warn", "msg": "two", "user": "bob", "code": "oops", "env": "prod"},
    ]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    return path


BASE = """\
pipeline:
  inputs:
    - name: dummy
      processors:
        logs:
{procs}
  outputs:
    - name: null
      match: '*'
"""


@pytest.mark.parametrize(
    ("procs", "line", "needle"),
    [
        ("          - name: nosuch\n", 6, "unknown processor plugin 'nosuch'"),
        ("          - name: grep\n            regx: a b\n", 7, "regx"),
        (
            "          - name: content_modifier\n            action: explode\n            key: a\n",
            7,
            "unknown action 'explode'",
        ),
        ("          - name: content_modifier\n            action: insert\n", 7, "key is required"),
        (
            "          - name: content_modifier\n            action: extract\n            key: a\n",
            7,
            "'pattern' is required",
        ),
        (
            "          - name: content_modifier\n            action: insert\n            key: a\n"
            "            value: b\n            context: otel_scope_name\n",
            10,
            "OpenTelemetry",
        ),
        (
            "          - name: grep\n            regex: a b\n            condition:\n"
            "              op: and\n",
            9,
            "processor conditions are not supported",
        ),
    ],
)
def test_processor_errors_have_file_and_line(
    tmp_path: Path, procs: str, line: int, needle: str
) -> None:
    path = _write(tmp_path, BASE.format(procs=procs))
    with pytest.raises(ConfigError) as info:
        check_config(load_config(path))
    assert f"agent.yaml:{line}:" in str(info.value)
    assert needle in str(info.value)


def test_metrics_processors_are_refused_with_their_line(tmp_path: Path) -> None:
    text = BASE.format(procs="          - name: grep\n").replace("logs:", "metrics:")
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    assert "agent.yaml:6:" in str(info.value)
    assert "logs only" in str(info.value)


def test_a_classic_filter_is_not_a_content_modifier(tmp_path: Path) -> None:
    conf = tmp_path / "agent.conf"
    conf.write_text(
        "[INPUT]\n    name dummy\n[FILTER]\n    name content_modifier\n    match *\n"
        "[OUTPUT]\n    name null\n    match *\n"
    )
    with pytest.raises(ConfigError) as info:
        check_config(load_config(conf))
    assert "agent.conf:4:" in str(info.value)
    assert "unknown filter plugin 'content_modifier'" in str(info.value)


def test_dry_run_prints_each_processor_with_its_lines(tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from relaybit.cli import print_config

    path = _write(
        tmp_path,
        BASE.format(
            procs="          - name: content_modifier\n            action: insert\n"
            "            key: env\n            value: prod\n"
        ),
    )
    buf = io.StringIO()
    print_config(load_config(path), Console(file=buf, width=200))
    text = buf.getvalue()
    assert "[INPUT] dummy processors.logs content_modifier" in text
    assert "env" in text and "agent.yaml:8" in text  # the field name is shown, not masked


def test_a_rewrite_tag_processor_beside_a_rewrite_tag_filter(tmp_path: Path) -> None:
    text = """\
pipeline:
  inputs:
    - name: dummy
      processors:
        logs:
          - name: rewrite_tag
            rule: $level ^(error)$ alerts false
  filters:
    - name: rewrite_tag
      match: app
      rule: $level ^(warn)$ warnings false
  outputs:
    - name: null
      match: '*'
"""
    agent = Agent(load_config(_write(tmp_path, text)))
    agent.build()
    emitters = sorted(n for n in agent.engine.inputs if n.startswith("emitter_for_"))
    assert emitters == ["emitter_for_rewrite_tag.0", "emitter_for_rewrite_tag.1"]

"""relaybit against the real Fluent Bit, over the Forward protocol, both ways.

Opt-in: set ``FLUENT_BIT`` to a Fluent Bit binary (5.1 is what relaybit
follows; ../shared/PEERS.md says how to build it here).  CI has none, so these
tests are skipped there with that reason; run them when the wire format moves:

    FLUENT_BIT=/path/to/fluent-bit .venv/bin/python -m pytest tests/interop/test_fluent_bit.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

from relaybit.codec.msgpack import ext_hook
from relaybit.testing import wait_for

FLUENT_BIT = os.environ.get("FLUENT_BIT", "")

pytestmark = pytest.mark.skipif(
    not (FLUENT_BIT and os.access(FLUENT_BIT, os.X_OK)),
    reason="set FLUENT_BIT to a Fluent Bit binary to run the interop tests against it",
)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.terminate()
    for proc in started:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def entries(path: Path) -> list[Any]:
    if not path.exists():
        return []
    unpacker = msgpack.Unpacker(ext_hook=ext_hook, raw=False, strict_map_key=False)
    unpacker.feed(path.read_bytes())
    return list(unpacker)


@pytest.mark.parametrize("compress", ["", "gzip"])
async def test_fluent_bit_to_relaybit_keeps_metadata(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]], compress: str
) -> None:
    port = free_port()
    (tmp_path / "rb.yaml").write_text(
        "service: {flush: 0.2}\n"
        "pipeline:\n"
        f"  inputs: [{{name: forward, listen: 127.0.0.1, port: {port}, shared_key: k}}]\n"
        f"  outputs: [{{name: file, match: '*', path: {tmp_path}, file: got, format: msgpack}}]\n"
    )
    (tmp_path / "fb.conf").write_text(
        "[SERVICE]\n    flush 0.2\n"
        "[INPUT]\n    name dummy\n    tag with\n    samples 3\n"
        '    dummy {"msg":"hi"}\n    metadata {"otlp":{"sev":9}}\n'
        "[INPUT]\n    name dummy\n    tag plain\n    samples 2\n"
        "[OUTPUT]\n    name forward\n    match *\n    host 127.0.0.1\n"
        f"    port {port}\n    shared_key k\n    require_ack_response on\n"
        + (f"    compress {compress}\n" if compress else "")
    )
    rb = [sys.executable, "-m", "relaybit", "-c", str(tmp_path / "rb.yaml")]
    processes.append(start(rb, tmp_path / "rb.log"))
    processes.append(start([FLUENT_BIT, "-c", str(tmp_path / "fb.conf")], tmp_path / "fb.log"))
    await wait_for(lambda: len(entries(tmp_path / "got")) >= 5, timeout=30)
    got = entries(tmp_path / "got")
    with_meta = [e for e in got if isinstance(e[0], list)]
    plain = [e for e in got if not isinstance(e[0], list)]
    # non-empty metadata crosses the hop; Fluent Bit's empty map is dropped ([t, r])
    assert [e[0][1] for e in with_meta] == [{"otlp": {"sev": 9}}] * 3
    assert [e[1] for e in with_meta] == [{"msg": "hi"}] * 3
    assert len(plain) == 2


@pytest.mark.parametrize("compress", ["zstd", "gzip", "text"])
async def test_relaybit_to_fluent_bit_in_every_compression(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]], compress: str
) -> None:
    port = free_port()
    (tmp_path / "fb.conf").write_text(
        "[SERVICE]\n    flush 0.2\n"
        f"[INPUT]\n    name forward\n    listen 127.0.0.1\n    port {port}\n    shared_key k\n"
        "[OUTPUT]\n    name stdout\n    match *\n    format json_lines\n"
    )
    (tmp_path / "rb.yaml").write_text(
        "service: {flush: 0.2}\n"
        "pipeline:\n"
        '  inputs: [{name: dummy, tag: rb, samples: 3, dummy: \'{"msg": "hi"}\','
        " metadata: '{\"m\": 1}'}]\n"
        f"  outputs: [{{name: forward, match: '*', host: 127.0.0.1, port: {port},"
        f" shared_key: k, compress: {compress}, require_ack_response: on}}]\n"
    )
    fb_log = tmp_path / "fb.log"
    processes.append(start([FLUENT_BIT, "-c", str(tmp_path / "fb.conf")], fb_log))
    rb = [sys.executable, "-m", "relaybit", "-c", str(tmp_path / "rb.yaml")]
    processes.append(start(rb, tmp_path / "rb.log"))
    await wait_for(lambda: fb_log.read_text(errors="replace").count('"msg":"hi"') >= 3, timeout=30)
    assert "error" not in (tmp_path / "rb.log").read_text().lower()

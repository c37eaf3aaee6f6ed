"""Server inputs say ``listening on HOST:PORT`` at start, the line operators grep for
(issue 13 §5); docs/compatibility.md maps it to Fluent Bit's wording."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from relaybit.agent import Agent
from relaybit.config.loader import load_config

CONF = """\
[INPUT]
    name   forward
    listen 127.0.0.1
    port   0
[INPUT]
    name   forward
    unix_path {tmp}/fw.sock
[INPUT]
    name   tcp
    listen 127.0.0.1
    port   0
[INPUT]
    name   syslog
    mode   tcp
    listen 127.0.0.1
    port   0
[INPUT]
    name   syslog
    mode   udp
    listen 127.0.0.1
    port   0
[INPUT]
    name   http
    listen 127.0.0.1
    port   0
[INPUT]
    name   elasticsearch
    listen 127.0.0.1
    port   0
[OUTPUT]
    name  null
    match *
"""


async def test_every_server_input_logs_where_it_listens(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    conf = tmp_path / "a.conf"
    conf.write_text(CONF.format(tmp=tmp_path))
    agent = Agent(load_config(conf))
    with caplog.at_level(logging.INFO):
        await agent.start()
        try:
            lines = {
                r.name.rsplit(":", 1)[-1]: r.getMessage()
                for r in caplog.records
                if r.getMessage().startswith("listening on ")
            }
        finally:
            await agent.stop()
    assert set(lines) == {
        "forward.0",
        "forward.1",
        "tcp.0",
        "syslog.0",
        "syslog.1",
        "http.0",
        "elasticsearch.0",
    }, lines
    for name, line in lines.items():
        if name == "forward.1":
            assert line == f"listening on unix://{tmp_path}/fw.sock"
            continue
        port = re.match(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert port and int(port.group(1)) > 0, line

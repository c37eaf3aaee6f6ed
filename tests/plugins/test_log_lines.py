"""Plugin log lines: the instance is named once, by its logger's tag."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.logging import FluentBitFormatter, plugin_logger
from relaybit.plugins.base import INPUT_COMMON, InputContext
from relaybit.plugins.inputs.tcp import TcpInput

PLUGINS = Path(__file__).resolve().parents[2] / "src" / "relaybit" / "plugins"
INSTANCE_NAMES = {"ctx.name", "self.ctx.name"}


def repeated_names(path: Path) -> list[str]:
    """Calls passing a format that starts with ``%s`` followed by the instance name."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        for fmt, arg in zip(node.args, node.args[1:], strict=False):
            if (
                isinstance(fmt, ast.Constant)
                and isinstance(fmt.value, str)
                and fmt.value.startswith("%s")
                and ast.unparse(arg) in INSTANCE_NAMES
            ):
                found.append(f"{path.relative_to(PLUGINS)}:{node.lineno}: {fmt.value[:50]!r}")
    return found


def test_no_plugin_log_line_repeats_the_instance_name() -> None:
    # ctx.logger shows [input:tcp:tcp.0]: "tcp.0: listening" said the name twice
    found = [hit for path in sorted(PLUGINS.rglob("*.py")) for hit in repeated_names(path)]
    assert found == []


async def test_a_plugin_line_names_its_instance_once(caplog: pytest.LogCaptureFixture) -> None:
    props = [RawProperty(k, v, Origin("t.conf", 1)) for k, v in (("listen", "127.0.0.1"),)]
    opts = (INPUT_COMMON + TcpInput.options).resolve(
        [*props, RawProperty("port", "0", Origin("t.conf", 2))], section="[INPUT] tcp"
    )

    async def emit(tag: str, data: bytes, records: int) -> None:
        pass

    logger = plugin_logger("input", "tcp", "tcp.0")
    plugin = TcpInput(
        InputContext(name="tcp.0", plugin="tcp", options=opts, emit=emit, logger=logger)
    )
    with caplog.at_level(logging.INFO, logger=logger.name):
        await plugin.start()
        try:
            (record,) = [r for r in caplog.records if "listening" in r.getMessage()]
        finally:
            await plugin.stop()
    line = FluentBitFormatter().format(record)
    assert line.endswith(f"[ info] [input:tcp:tcp.0] listening on 127.0.0.1:{plugin.port}")

"""The Agent end to end, with test-local plugins registered in the registry."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import signal
import sys
from typing import Any, ClassVar

import pytest

from relaybit.agent import Agent
from relaybit.codec.msgpack import EventTime, iter_entries, pack_entries
from relaybit.config.model import AgentConfig, PluginInstance
from relaybit.config.origin import Origin
from relaybit.config.schema import ConfigMap, Option, RawProperty
from relaybit.errors import ConfigError, ConfigErrors
from relaybit.logging import FluentBitFormatter, plugin_logger, setup_logging
from relaybit.pipeline.chunk import Chunk
from relaybit.plugins import registry
from relaybit.plugins.base import FilterPlugin, FlushResult, InputPlugin, OutputPlugin
from relaybit.testing import wait_for

HERE = sys.modules[__name__]


class GenInput(InputPlugin):
    """Emits ``count`` records ``{"i": n}`` in batches, then idles."""

    options = ConfigMap((Option("count", "int", 10), Option("batch", "int", 4)))

    async def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        count, batch = self.ctx.options.int("count"), self.ctx.options.int("batch")
        for start in range(0, count, batch):
            n = min(batch, count - start)
            data = pack_entries((EventTime(1, 0), {"i": i}) for i in range(start, start + n))
            await self.ctx.emit(self.ctx.tag, data, n)

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


class CollectOutput(OutputPlugin):
    """Keeps every record; counts reload_upstream calls."""

    options = ConfigMap((Option("fail_first", "int", 0),))
    reloads: ClassVar[int] = 0

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.records: list[Any] = []
        self.failures = ctx.options.int("fail_first")

    async def flush(self, chunk: Chunk) -> FlushResult:
        if self.failures:
            self.failures -= 1
            return FlushResult.ERROR
        self.records.extend(record for _, record in iter_entries(chunk.data))
        return FlushResult.OK

    def reload_upstream(self) -> None:
        CollectOutput.reloads += 1


class BadReloadOutput(CollectOutput):
    """An output whose upstream file became invalid: reload raises a ConfigError."""

    def reload_upstream(self) -> None:
        raise ConfigError("expected a port number 1..65535, got 'abc'", Origin("up.conf", 6))


class MarkFilter(FilterPlugin):
    options = ConfigMap((Option("key", "str", "seen"),))

    def filter(self, tag: str, entries: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
        key = self.ctx.options.str("key")
        return [(t, {**r, key: tag}) for t, r in entries]


@pytest.fixture(autouse=True)
def test_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    target = HERE.__name__
    builtin = {kind: dict(names) for kind, names in registry.BUILTIN.items()}
    builtin["input"]["gen"] = f"{target}:GenInput"
    builtin["output"]["collect"] = f"{target}:CollectOutput"
    builtin["output"]["badreload"] = f"{target}:BadReloadOutput"
    builtin["filter"]["mark"] = f"{target}:MarkFilter"
    monkeypatch.setattr(registry, "BUILTIN", builtin)


ORIGIN = Origin("agent.conf", 1)


def props(**values: str) -> tuple[RawProperty, ...]:
    return tuple(RawProperty(k.replace("__", "."), v, ORIGIN) for k, v in values.items())


def instance(kind: Any, plugin: str, **values: str) -> PluginInstance:
    return PluginInstance(kind=kind, plugin=plugin, properties=props(**values), origin=ORIGIN)


def config(**service: str) -> AgentConfig:
    return AgentConfig(
        service=props(flush="0.02", grace="2", **service),
        inputs=(
            instance("input", "gen", tag="app.web", count="10"),
            instance("input", "gen", count="3", batch="3"),
        ),
        filters=(instance("filter", "mark", match="app.*"),),
        outputs=(
            instance("output", "collect", match="app.*"),
            instance("output", "collect", alias="everything", match_regex="."),
            instance("output", "collect", match="gen.*", fail_first="1", retry_limit="no_retries"),
        ),
    )


async def test_agent_runs_a_configuration_end_to_end(caplog: pytest.LogCaptureFixture) -> None:
    agent = Agent(config())
    await agent.start()
    assert list(agent.inputs) == ["gen.0", "gen.1"]
    assert list(agent.outputs) == ["collect.0", "everything", "collect.2"]
    assert agent.inputs["gen.1"].ctx.tag == "gen.1"  # the tag defaults to the instance name
    app, every = agent.outputs["collect.0"], agent.outputs["everything"]
    assert isinstance(app, CollectOutput) and isinstance(every, CollectOutput)
    await wait_for(lambda: len(every.records) == 13)
    assert sorted(r["i"] for r in app.records) == list(range(10))
    assert all(r["seen"] == "app.web" for r in app.records)
    assert [r for r in every.records if "seen" not in r] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert await agent.stop() == 0
    metrics = agent.metrics()
    assert metrics["input"]["gen.0"]["records"] == 10
    assert metrics["output"]["everything"]["proc_records"] == 13
    assert metrics["output"]["collect.2"]["dropped_records"] == 3
    assert metrics["output"]["collect.2"]["errors"] == 1
    status = agent.status()
    assert status["engine"]["pending_chunks"] == 0 and set(status["outputs"]) == set(agent.outputs)
    assert "output error" in caplog.text


async def test_agent_with_filesystem_storage(tmp_path: Any) -> None:
    cfg = AgentConfig(
        service=props(flush="0.02", storage__path=str(tmp_path)),
        inputs=(instance("input", "gen", count="5", storage__type="filesystem"),),
        outputs=(instance("output", "collect", match="*"),),
    )
    agent = Agent(cfg)
    await agent.start()
    out = agent.outputs["collect.0"]
    assert isinstance(out, CollectOutput)
    await wait_for(lambda: len(out.records) == 5)
    await agent.stop()
    assert list(tmp_path.glob("*/*.rbc")) == []
    assert agent.status()["engine"]["storage"]["type"] == "filesystem"


def test_configuration_errors_are_collected_with_origins() -> None:
    cfg = AgentConfig(
        inputs=(instance("input", "gen", cuont="3"),),
        outputs=(instance("output", "collect", match="*", retry_limit="sometimes"),),
    )
    with pytest.raises(ConfigErrors) as info:
        Agent(cfg).build()
    text = str(info.value)
    assert "agent.conf:1" in text and "did you mean 'count'" in text
    assert "retry_limit" in text and "no_limits" in text


def test_a_plugin_error_without_a_line_points_at_the_key_or_its_section() -> None:
    """A check inside a plugin names the key but no line: the error gets the key's line,
    else the section's."""
    section = Origin("forward.conf", 7)
    cfg = AgentConfig(
        inputs=(
            PluginInstance(
                kind="input",
                plugin="forward",
                properties=(RawProperty("Unix_Perm", "rw-r--r--", Origin("forward.conf", 9)),),
                origin=section,
            ),
            PluginInstance(
                kind="input",
                plugin="forward",
                properties=(
                    RawProperty("port", "0", Origin("forward.conf", 12)),
                    RawProperty("security.users", "alice s3cr3t", None),
                ),
                origin=Origin("forward.conf", 11),
            ),
        ),
        outputs=(instance("output", "collect", match="*"),),
    )
    with pytest.raises(ConfigErrors) as info:
        Agent(cfg).build()
    perm, users = info.value.errors
    assert perm.origin == Origin("forward.conf", 9) and perm.key == "unix_perm"
    assert str(perm).startswith("forward.conf:9:") and "octal" in str(perm)
    assert users.origin == Origin("forward.conf", 11) and "needs shared_key" in str(users)


async def test_signals_stop_gracefully_and_sighup_reloads_upstreams() -> None:
    CollectOutput.reloads = 0
    agent = Agent(config())
    serving = asyncio.create_task(agent.serve())
    await wait_for(lambda: agent.started_at is not None)
    await asyncio.sleep(0)  # let serve() install its signal handlers
    await wait_for(lambda: len(agent.outputs["everything"].records) == 13)  # type: ignore[attr-defined]
    os.kill(os.getpid(), signal.SIGHUP)
    await wait_for(lambda: CollectOutput.reloads == 3)
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(serving, 5) == 0
    assert agent.engine.pending_chunks == 0


async def test_sighup_reload_is_logged_by_each_output_and_a_bad_file_says_what_stays(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = AgentConfig(
        service=props(flush="0.02", grace="2"),
        inputs=(instance("input", "gen", count="1"),),
        outputs=(
            instance("output", "collect", match="*"),
            instance("output", "badreload", match="*"),
        ),
    )
    agent = Agent(cfg)
    await agent.start()
    try:
        with caplog.at_level(logging.INFO, logger="relaybit"):
            agent.reload_upstreams()
    finally:
        await agent.stop()
    lines = {(r.name, r.levelno): r.getMessage() for r in caplog.records if "upstream" in r.msg}
    # the output's own component ([output:badreload:badreload.0]), as its other lines
    assert lines[("relaybit.output:collect:collect.0", logging.INFO)] == (
        "upstream file re-read (SIGHUP)"
    )
    failed = lines[("relaybit.output:badreload:badreload.0", logging.ERROR)]
    assert failed.startswith("upstream reload failed, the running nodes stay in use: up.conf:6:")


def test_log_lines_look_like_fluent_bit() -> None:
    stream = io.StringIO()
    handler = setup_logging("debug", stream=stream)
    try:
        plugin_logger("output", "forward", "forward.0").warning("node down")
        logging.getLogger("relaybit.engine").debug("tick")
        logging.getLogger("relaybit.engine").log(5, "hidden at debug")
    finally:
        logging.getLogger("relaybit").removeHandler(handler)
        logging.getLogger("relaybit").propagate = True
        logging.getLogger("relaybit").setLevel(logging.NOTSET)
        handler.close()
    lines = stream.getvalue().splitlines()
    stamp = r"\[\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}\]"
    assert re.fullmatch(stamp + r" \[ warn\] \[output:forward:forward\.0\] node down", lines[0])
    assert re.fullmatch(stamp + r" \[debug\] \[engine\] tick", lines[1])
    assert len(lines) == 2
    assert FluentBitFormatter  # exported for the CLI


async def test_one_input_and_one_output_without_match_go_together() -> None:
    # Fluent Bit's flb_router_io_set: `fluent-bit -i dummy -o stdout` needs no -m
    single = AgentConfig(
        service=props(flush="0.02", grace="2"),
        inputs=(instance("input", "gen", count="5"),),
        outputs=(instance("output", "collect"),),
    )
    agent = Agent(single)
    await agent.start()
    out = agent.outputs["collect.0"]
    assert isinstance(out, CollectOutput)
    await wait_for(lambda: len(out.records) == 5)
    assert await agent.stop() == 0

    two_outputs = AgentConfig(
        service=props(flush="0.02", grace="2"),
        inputs=(instance("input", "gen", count="5"),),
        outputs=(instance("output", "collect"), instance("output", "collect", match="*")),
    )
    agent = Agent(two_outputs)
    await agent.start()
    unmatched, matched = agent.outputs["collect.0"], agent.outputs["collect.1"]
    assert isinstance(unmatched, CollectOutput) and isinstance(matched, CollectOutput)
    await wait_for(lambda: len(matched.records) == 5)
    assert await agent.stop() == 0
    assert unmatched.records == []  # with several outputs, no match means no records


async def test_exit_on_eof_stops_the_agent_after_delivering_the_files(tmp_path: Any) -> None:
    log_file = tmp_path / "app.log"
    log_file.write_text("".join(f"line {n}\n" for n in range(50)), encoding="utf-8")
    cfg = AgentConfig(
        service=props(flush="0.02", grace="5"),
        inputs=(
            instance("input", "tail", path=str(log_file), read_from_head="on", exit_on_eof="on"),
        ),
        outputs=(instance("output", "collect", match="*"),),
    )
    agent = Agent(cfg)
    await agent.start()
    await asyncio.wait_for(agent.run_until_stopped(), timeout=10)  # stops by itself
    out = agent.outputs["collect.0"]
    assert isinstance(out, CollectOutput)
    assert [r["log"] for r in out.records] == [f"line {n}" for n in range(50)]


def _relaybit(*args: str, cwd: Any = None) -> Any:
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", "relaybit", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )


@pytest.mark.parametrize(
    ("plugin_args", "what"),
    [
        (["-i", "tcp", "-p", "listen=127.0.0.1", "-p", "port={port}", "-o", "null"], "input tcp.0"),
        (["-i", "dummy", "-o", "null", "-H", "-P", "{port}"], "the monitoring API on"),
    ],
)
def test_a_port_in_use_is_one_error_line_without_traceback(
    plugin_args: list[str], what: str
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _relaybit(*(a.format(port=port) for a in plugin_args))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "[error]" in line]
    assert len(errors) == 1, result.stderr
    assert f"startup failed: {what}" in errors[0]
    assert "address already in use" in errors[0] and str(port) in errors[0]


def test_an_unwritable_log_file_is_a_config_error_with_its_line(tmp_path: Any) -> None:
    conf = tmp_path / "agent.conf"
    missing = tmp_path / "no" / "such" / "dir" / "relaybit.log"
    conf.write_text(
        f"[SERVICE]\n    log_file {missing}\n[INPUT]\n    name dummy\n"
        "[OUTPUT]\n    name null\n    match *\n",
        encoding="utf-8",
    )
    result = _relaybit("-c", str(conf))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"relaybit: config error: {conf}:2: [SERVICE] 'log_file': cannot open the log file"
        f" '{missing}': No such file or directory"
    )


def test_a_config_error_found_at_build_is_reported_without_stop_lines(tmp_path: Any) -> None:
    conf = tmp_path / "agent.conf"
    conf.write_text(
        "[INPUT]\n    name dummy\n[FILTER]\n    name grep\n    match *\n    regex log ([a-\n"
        "[OUTPUT]\n    name null\n    match *\n",
        encoding="utf-8",
    )
    result = _relaybit("-c", str(conf))
    assert result.returncode == 1
    # nothing started: no "shutdown: every buffered record was delivered", no "stopped"
    assert result.stderr.splitlines() == [
        f"relaybit: config error: {conf}:6: [FILTER] grep.0 'regex':"
        " unterminated character set (in '([a-')"
    ]


async def test_the_version_banner_comes_before_what_the_build_found(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # serve() builds first (a config error is reported alone), start() logs the banner:
    # the "has no 'match'" line came before "[relaybit] version=..."
    two_outputs = AgentConfig(
        service=props(flush="0.02", grace="2"),
        inputs=(instance("input", "gen", count="1"),),
        outputs=(instance("output", "collect"), instance("output", "collect", match="*")),
    )
    agent = Agent(two_outputs)
    with caplog.at_level(logging.INFO, logger="relaybit"):
        agent.build()
        assert "has no 'match'" not in caplog.text  # not yet: the banner comes first
        await agent.start()
        await agent.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == "relaybit.agent"]
    banner = next(i for i, m in enumerate(messages) if m.startswith("[relaybit] version="))
    (warning,) = [i for i, m in enumerate(messages) if "has no 'match'" in m]
    assert banner < warning < messages.index("started: 1 input, 0 filters, 2 outputs")


def test_outputs_that_may_drop_records_say_so_once_at_start(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from relaybit.config.loader import load_config

    conf = tmp_path / "agent.conf"
    conf.write_text(
        "[INPUT]\n    name dummy\n"
        "[OUTPUT]\n    name forward\n    alias lossless\n    match *\n"  # the defaults
        "[OUTPUT]\n    name forward\n    alias fb\n    match *\n"
        "    retry_limit 1\n    require_ack_response off\n"
        "[OUTPUT]\n    name null\n    alias capped\n    match *\n    retry_limit no_retries\n"
    )
    agent = Agent(load_config(conf))
    with caplog.at_level(logging.INFO, logger="relaybit"):
        agent.build()
        agent.log_build_notes()
    notes = [r.getMessage() for r in caplog.records if "records can be dropped" in r.getMessage()]
    assert notes == [
        "[output] fb: records can be dropped: retry_limit 1: a chunk still undelivered after 1"
        " retry is dropped; require_ack_response off: a chunk counts as delivered once"
        " written to the connection, so records a receiver loses before taking them are lost"
        " (relaybit's defaults lose nothing)",
        "[output] capped: records can be dropped: retry_limit no_retries: a chunk still"
        " undelivered after 0 retries is dropped (relaybit's defaults lose nothing)",
    ]
    assert agent.engine.outputs["lossless"].retry_limit.retries is None  # until delivered
    lossless = agent.outputs["lossless"]
    assert lossless.loss_risks() == []  # acks on by default

"""Hot reload (``[SERVICE] hot_reload on``): SIGHUP and the API re-read the whole
configuration and swap the pipeline without losing a record."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from relaybit.agent import Agent
from relaybit.codec.msgpack import EventTime, iter_entries, pack_entries
from relaybit.config.loader import load_config
from relaybit.config.model import AgentConfig
from relaybit.config.schema import ConfigMap, Option
from relaybit.pipeline.chunk import Chunk
from relaybit.plugins import registry
from relaybit.plugins.base import FlushResult, InputPlugin, OutputPlugin
from relaybit.reload import ReloadRequest
from relaybit.testing import wait_for, wait_until

HERE = sys.modules[__name__]
SRC = Path(__file__).resolve().parent.parent / "src"


class PushInput(InputPlugin):
    """Emits only what a test pushes (:func:`push`); ``fail_start on``: cannot start."""

    options = ConfigMap((Option("fail_start", "bool", False),))

    async def start(self) -> None:
        if self.ctx.options.bool("fail_start"):
            raise OSError(98, "Address already in use")

    async def stop(self) -> None:
        return None


class SinkOutput(OutputPlugin):
    """Appends the records it receives to ``SINKS[sink]`` (shared by every instance, so
    a count spans reloads); ``retry_first N``: answer RETRY to the first N flushes;
    ``hold on``: answer RETRY always."""

    options = ConfigMap(
        (
            Option("sink", "str", "main"),
            Option("retry_first", "int", 0),
            Option("hold", "bool", False),
        )
    )
    attempts: ClassVar[dict[str, int]] = {}

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.sink = ctx.options.str("sink")
        self.retries_left = ctx.options.int("retry_first")

    async def flush(self, chunk: Chunk) -> FlushResult:
        SinkOutput.attempts[self.sink] = SinkOutput.attempts.get(self.sink, 0) + 1
        if self.ctx.options.bool("hold") or self.retries_left > 0:
            self.retries_left -= 1
            return FlushResult.RETRY
        SINKS.setdefault(self.sink, []).extend(record for _, record in iter_entries(chunk.data))
        return FlushResult.OK


SINKS: dict[str, list[dict[str, Any]]] = {}


@pytest.fixture(autouse=True)
def test_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    builtin = {kind: dict(names) for kind, names in registry.BUILTIN.items()}
    builtin["input"]["push"] = f"{HERE.__name__}:PushInput"
    builtin["output"]["sink"] = f"{HERE.__name__}:SinkOutput"
    monkeypatch.setattr(registry, "BUILTIN", builtin)
    SINKS.clear()
    SinkOutput.attempts.clear()
    yield
    SINKS.clear()


async def push(agent: Agent, start: int, count: int, batch: int = 7) -> None:
    """Emit records ``{"i": start..start+count-1}`` through the agent's ``push.0`` input."""
    inp = agent.inputs["push.0"]
    for first in range(start, start + count, batch):
        n = min(batch, start + count - first)
        data = pack_entries((EventTime(1, 0), {"i": i}) for i in range(first, first + n))
        await inp.ctx.emit(inp.ctx.tag, data, n)


def ids(sink: str) -> list[int]:
    return sorted(record["i"] for record in SINKS.get(sink, []))


def conf(*sections: str, **service: str) -> str:
    keys = {"flush": "0.02", "grace": "5", "hot_reload": "on", **service}
    text = "[SERVICE]\n" + "".join(f"    {k.replace('__', '.')} {v}\n" for k, v in keys.items())
    return text + "".join(sections)


def section(kind: str, **keys: str) -> str:
    return f"[{kind}]\n" + "".join(f"    {k.replace('__', '.')} {v}\n" for k, v in keys.items())


PUSH = section("INPUT", name="push", tag="app")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- in process ---------------------------------------------------------------------


async def test_sighup_reloads_the_whole_configuration_without_losing_a_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(
        tmp_path / "agent.conf",
        conf(
            PUSH,
            section("OUTPUT", name="sink", alias="first", match="app", sink="A", retry_first="1"),
        ),
    )
    agent = Agent(load_config(path))
    serving = asyncio.create_task(agent.serve())
    await wait_for(lambda: agent.started_at is not None)
    await asyncio.sleep(0)  # let serve() install its signal handlers
    old_engine = agent.engine
    await push(agent, 0, 100)
    await wait_for(lambda: SinkOutput.attempts.get("A", 0) >= 1)  # a chunk waits for its retry
    # the new configuration: 'first' gets nothing any more, a new output takes 'app'
    write(
        path,
        conf(
            PUSH,
            section("OUTPUT", name="sink", alias="first", match="nothing", sink="A"),
            section("OUTPUT", name="sink", alias="second", match="app", sink="B"),
        ),
    )
    with caplog.at_level(logging.INFO, logger="relaybit"):
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_for(lambda: agent.reloader.count == 1)
    assert agent.engine is not old_engine and set(agent.outputs) == {"first", "second"}
    assert ids("A") == list(range(100))  # every record of the old pipeline, once
    assert ids("B") == []
    await push(agent, 100, 50)
    await wait_for(lambda: len(ids("B")) == 50)
    assert ids("B") == list(range(100, 150))
    assert ids("A") == list(range(100))
    assert agent.metrics()["output"]["second"]["proc_records"] == 50
    outcome = [r.getMessage() for r in caplog.records if r.name == "relaybit.reload"]
    assert outcome[0] == f"reloading {path} (SIGHUP)"
    assert outcome[-1].startswith(f"reloaded {path} (SIGHUP) in ")
    assert "1 input, 0 filters, 2 outputs; 0 records of the old pipeline" in outcome[-1]
    assert outcome[-1].endswith("hot reloads: 1")
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(serving, 10) == 0
    assert ids("B") == list(range(100, 150)) and ids("A") == list(range(100))


async def test_filesystem_chunks_left_by_the_old_pipeline_go_through_the_new_one(
    tmp_path: Path,
) -> None:
    storage = tmp_path / "storage"
    path = write(
        tmp_path / "agent.conf",
        conf(
            section("INPUT", name="push", tag="app", storage__type="filesystem"),
            section(
                "OUTPUT",
                name="sink",
                alias="stuck",
                match="app",
                sink="A",
                hold="on",
                retry_limit="no_limits",
            ),
            grace="0",
            storage__path=str(storage),
        ),
    )
    agent = Agent(load_config(path))
    await agent.start()
    try:
        await push(agent, 0, 40)
        await wait_for(lambda: SinkOutput.attempts.get("A", 0) >= 1)
        write(
            path,
            conf(
                section("INPUT", name="push", tag="app", storage__type="filesystem"),
                section("OUTPUT", name="sink", alias="fresh", match="app", sink="B"),
                storage__path=str(storage),
            ),
        )
        assert await agent.reloader.reload("test")
        # grace 0: the old engine kept the chunks on disk; the new engine loaded them
        await wait_for(lambda: len(ids("B")) == 40)
        assert ids("B") == list(range(40)) and ids("A") == []
        await push(agent, 40, 10)
        await wait_for(lambda: len(ids("B")) == 50)
        assert ids("B") == list(range(50))
    finally:
        await agent.stop()
    assert not list(storage.rglob("*.rbc"))  # every chunk delivered and deleted


async def test_an_invalid_configuration_is_refused_and_the_old_pipeline_keeps_delivering(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = conf(PUSH, section("OUTPUT", name="sink", match="app", sink="A"))
    path = write(tmp_path / "agent.conf", good)
    agent = Agent(load_config(path))
    await agent.start()
    try:
        await push(agent, 0, 10)
        await wait_for(lambda: len(ids("A")) == 10)
        engine, outputs = agent.engine, agent.outputs
        write(path, good + "    sinc B\n")  # a key the sink output does not have
        line = len(good.splitlines()) + 1
        with caplog.at_level(logging.INFO, logger="relaybit"):
            assert agent.request_reload("test") is ReloadRequest.STARTED
            await agent.reloader.wait()
        assert (agent.reloader.count, agent.reloader.failures) == (0, 1)
        assert agent.engine is engine and agent.outputs is outputs
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert errors[0] == (
            f"config error: {path}:{line}: [OUTPUT] sink unknown configuration property 'sinc'"
        )
        assert errors[-1] == (
            f"reload of {path} refused: 1 configuration error; the running pipeline stays"
        )
        await push(agent, 10, 10)
        await wait_for(lambda: len(ids("A")) == 20)
        assert ids("A") == list(range(20))
    finally:
        await agent.stop()


async def test_a_new_pipeline_that_cannot_start_gives_way_to_the_previous_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(
        tmp_path / "agent.conf", conf(PUSH, section("OUTPUT", name="sink", match="app", sink="A"))
    )
    agent = Agent(load_config(path))
    await agent.start()
    try:
        await push(agent, 0, 5)
        write(
            path,
            conf(
                section("INPUT", name="push", tag="app", fail_start="on"),
                section("OUTPUT", name="sink", match="app", sink="B"),
            ),
        )
        with caplog.at_level(logging.INFO, logger="relaybit"):
            assert not await agent.reloader.reload("test")
        assert ids("A") == list(range(5))  # delivered by the old pipeline before the swap
        assert (agent.reloader.count, agent.reloader.failures) == (0, 1)
        messages = [r.getMessage() for r in caplog.records if r.name == "relaybit.reload"]
        assert any("aborted: the new pipeline could not start" in m for m in messages)
        assert messages[-1] == "the previous configuration runs again"
        await push(agent, 5, 5)
        await wait_for(lambda: len(ids("A")) == 10)
        assert ids("A") == list(range(10)) and ids("B") == []
    finally:
        await agent.stop()


async def test_a_stop_during_a_reload_waits_for_it_and_starts_nothing_new(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stuck = section(
        "OUTPUT",
        name="sink",
        alias="stuck",
        match="app",
        sink="A",
        hold="on",
        retry_limit="no_limits",
    )
    path = write(tmp_path / "agent.conf", conf(PUSH, stuck, grace="0.2"))
    agent = Agent(load_config(path))
    await agent.start()
    await push(agent, 0, 5)
    await wait_for(lambda: SinkOutput.attempts.get("A", 0) >= 1)
    write(path, conf(PUSH, section("OUTPUT", name="sink", match="app", sink="B")))
    with caplog.at_level(logging.INFO, logger="relaybit"):
        assert agent.request_reload("test") is ReloadRequest.STARTED
        await wait_for(lambda: agent.engine._stopping)  # the old pipeline is stopping
        await agent.stop()
    assert not agent.reloader.in_progress and agent.reloader.count == 0
    assert set(agent.outputs) == {"stuck"} and ids("B") == []
    messages = [r.getMessage() for r in caplog.records if r.name == "relaybit.reload"]
    assert messages[-1] == (
        f"reload of {path} abandoned after the old pipeline stopped: the agent is stopping"
    )


async def test_requests_are_refused_as_fluent_bit_refuses_them(tmp_path: Path) -> None:
    body = (PUSH, section("OUTPUT", name="sink", match="app", sink="A"))
    path = write(tmp_path / "agent.conf", conf(*body, hot_reload="off"))
    off = Agent(load_config(path))
    assert off.request_reload() is ReloadRequest.NOT_ENABLED
    assert ReloadRequest.NOT_ENABLED.body()["status"] == -1

    # a pipeline given on the command line has no file to re-read
    cli = Agent(
        AgentConfig(service=load_config(write(path, conf(*body))).service, path="<command line>")
    )
    cli.build()
    assert cli.request_reload() is ReloadRequest.UNAVAILABLE

    on = Agent(load_config(path))
    await on.start()
    try:
        assert on.request_reload() is ReloadRequest.STARTED
        assert on.request_reload() is ReloadRequest.IN_PROGRESS
        assert ReloadRequest.IN_PROGRESS.body() == {
            "reload": "in progress",
            "status": -2,
            "error": "a reload is in progress",
        }
        await on.reloader.wait()
        assert on.reloader.count == 1
        assert "count=1" in repr(on.reloader)
    finally:
        await on.stop()
    assert on.request_reload() is ReloadRequest.STOPPING


async def test_sighup_with_hot_reload_off_only_rereads_upstream_files(tmp_path: Path) -> None:
    path = write(
        tmp_path / "agent.conf",
        conf(PUSH, section("OUTPUT", name="sink", match="app", sink="A"), hot_reload="off"),
    )
    agent = Agent(load_config(path))
    await agent.start()
    try:
        engine = agent.engine
        write(path, conf(PUSH, section("OUTPUT", name="sink", match="app", sink="B")))
        agent.on_sighup()
        await push(agent, 0, 3)
        await wait_for(lambda: len(ids("A")) == 3)
        assert agent.engine is engine and agent.reloader.count == 0 and ids("B") == []
    finally:
        await agent.stop()


# -- a real process -----------------------------------------------------------------


def _free_port() -> int:
    """A free port below the ephemeral range (so no client socket takes it meanwhile)."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32768)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port found")


def _http(port: int, path: str, method: str = "GET") -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method=method, data=b"" if method != "GET" else None
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def _until(predicate: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """:func:`wait_until` where a connection error (the API not up yet) counts as not yet."""

    def guarded() -> Any:
        try:
            return predicate()
        except (OSError, urllib.error.URLError):
            return None

    return wait_until(guarded, timeout, what)


def _process_conf(port: int, alias: str) -> str:
    return (
        "[SERVICE]\n    flush 0.05\n    grace 2\n"
        f"    http_server on\n    http_listen 127.0.0.1\n    http_port {port}\n"
        "[INPUT]\n    name dummy\n    tag app\n    rate 50\n"
        f"[OUTPUT]\n    name null\n    alias {alias}\n    match app\n"
    )


def test_a_running_relaybit_reloads_on_sighup_and_on_put(tmp_path: Path) -> None:
    port = _free_port()
    path = write(tmp_path / "agent.conf", _process_conf(port, "first"))
    log = tmp_path / "agent.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
    }
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "relaybit", "-Y", "-c", str(path)],  # -Y: hot_reload on
            stderr=err,
            stdout=subprocess.DEVNULL,
            env=env,
        )
    try:

        def outputs() -> set[str]:
            assert proc.poll() is None, log.read_text()
            status, metrics = _http(port, "/api/v1/metrics")
            return (
                {n for n, m in metrics["output"].items() if m["proc_records"] > 0}
                if status == 200
                else set()
            )

        _until(lambda: "first" in outputs(), "the first pipeline to deliver")
        assert _http(port, "/api/v2/reload") == (200, {"hot_reload_count": 0})

        write(path, _process_conf(port, "second"))
        proc.send_signal(signal.SIGHUP)
        _until(
            lambda: _http(port, "/api/v2/reload")[1]["hot_reload_count"] == 1, "the SIGHUP reload"
        )
        _until(lambda: outputs() == {"second"}, "the second pipeline to deliver")

        write(path, _process_conf(port, "third"))  # hot_reload stays on: -Y is applied again
        assert _http(port, "/api/v2/reload", "PUT") == (200, {"reload": "done", "status": 0})
        _until(lambda: _http(port, "/api/v2/reload")[1]["hot_reload_count"] == 2, "the PUT reload")
        _until(lambda: outputs() == {"third"}, "the third pipeline to deliver")

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = log.read_text()
    assert text.count("[reload] reloaded") == 2, text
    assert "(SIGHUP)" in text and "(HTTP API)" in text
    assert "Traceback" not in text

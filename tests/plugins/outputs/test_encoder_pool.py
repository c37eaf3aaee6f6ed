"""The encoder processes of the JSON outputs: real worker processes, real failures.

Every way the pool cannot take a chunk (no worker yet, a worker killed, an
encoder that raises, a chunk or a body bigger than a region) hands the chunk
back (None), and the output writes it itself: nothing is lost or written twice.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from relaybit.agent import Agent
from relaybit.codec.msgpack import EventTime, pack_entries
from relaybit.config.loader import load_config
from relaybit.errors import ConfigErrors
from relaybit.plugins.outputs import encoder_pool
from relaybit.plugins.outputs.encoder_pool import (
    EncoderPool,
    quota_cpus,
    usable_cpus,
    workers_setting,
)
from relaybit.plugins.outputs.es.bulk import BulkEncoder
from relaybit.plugins.outputs.es.settings import EsSettings

T0 = EventTime(1700000000, 0)
SETTINGS = EsSettings()
KEY = ("es", SETTINGS)
FACTORY = functools.partial(BulkEncoder, SETTINGS)


def chunk(n: int, text: str = "x") -> bytes:
    return pack_entries((T0, {"n": i, "msg": text}) for i in range(n))


def local(data: bytes, n: int) -> tuple[bytes, int]:
    return BulkEncoder(SETTINGS).encode_chunk(data, n, "t", 0.0)


async def ready(pool: EncoderPool, count: int = 1) -> None:
    deadline = time.monotonic() + 20
    while pool.status()["ready"] < count:
        assert time.monotonic() < deadline, f"no ready worker: {pool!r}"
        await asyncio.sleep(0.02)


def worker_pids() -> list[int]:
    return [
        p.pid
        for p in psutil.Process().children()
        if "relaybit.plugins.outputs.encoder_worker" in " ".join(p.cmdline())
    ]


async def test_a_chunk_before_the_worker_is_up_is_handed_back_then_the_worker_takes_them() -> None:
    pool = EncoderPool(1)
    try:
        data = chunk(10)
        # the first chunk starts the worker and is not kept waiting for it
        assert await pool.encode(KEY, FACTORY, data, 10, "t", 0.0) is None
        await ready(pool)
        assert await pool.encode(KEY, FACTORY, data, 10, "t", 0.0) == local(data, 10)
        assert pool.status() == {
            "workers": 1,
            "ready": 1,
            "chunks": 1,
            "in_agent": 1,
            "restarts": 0,
        }
    finally:
        await pool.aclose()


async def test_concurrent_chunks_each_get_their_own_body() -> None:
    pool = EncoderPool(2)
    pool.start()
    try:
        await ready(pool, 2)
        chunks = [chunk(50 + i, text=str(i) * (i + 1)) for i in range(40)]
        bodies = await asyncio.gather(
            *(pool.encode(KEY, FACTORY, c, 50 + i, "t", 0.0) for i, c in enumerate(chunks))
        )
        assert bodies == [local(c, 50 + i) for i, c in enumerate(chunks)]
        assert pool.status()["chunks"] == 40
    finally:
        await pool.aclose()


async def test_a_killed_worker_is_logged_once_and_started_again(
    running_pool: EncoderPool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(encoder_pool, "RESTART_DELAYS", (0.05, 0.2))
    (pid,) = worker_pids()
    with caplog.at_level(logging.WARNING, logger="relaybit"):
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while running_pool.status()["ready"]:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        # no worker: the chunk is handed back at once
        data = chunk(5)
        assert await running_pool.encode(KEY, FACTORY, data, 5, "t", 0.0) is None
        await ready(running_pool)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert await running_pool.encode(KEY, FACTORY, data, 5, "t", 0.0) == local(data, 5)
    exits = [r for r in caplog.records if "encoder worker 0 exited" in r.getMessage()]
    assert len(exits) == 1
    assert running_pool.status()["restarts"] == 1


async def test_a_chunk_out_when_its_worker_dies_is_handed_back(
    running_pool: EncoderPool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(encoder_pool, "RESTART_DELAYS", (0.05, 0.2))
    (pid,) = worker_pids()
    os.kill(pid, signal.SIGSTOP)  # it cannot answer: the chunk is out when it dies
    job = asyncio.ensure_future(running_pool.encode(KEY, FACTORY, chunk(50), 50, "t", 0.0))
    await asyncio.sleep(0.05)  # pacing: the request goes out (no answer can come)
    assert not job.done()
    os.kill(pid, signal.SIGKILL)
    assert await asyncio.wait_for(job, 10) is None
    await ready(running_pool)
    small = chunk(3)
    assert await running_pool.encode(KEY, FACTORY, small, 3, "t", 0.0) == local(small, 3)


async def test_an_encoder_that_raises_hands_the_chunk_back_and_the_worker_stays(
    running_pool: EncoderPool,
) -> None:
    (pid,) = worker_pids()
    garbage = b"\xc1\xc1\xc1"  # never valid msgpack: the encoder raises
    with pytest.raises(Exception):  # noqa: B017 (whatever the decoder raises, here too)
        local(garbage, 1)
    assert await running_pool.encode(KEY, FACTORY, garbage, 1, "t", 0.0) is None
    data = chunk(4)
    assert await running_pool.encode(KEY, FACTORY, data, 4, "t", 0.0) == local(data, 4)
    assert worker_pids() == [pid]
    assert running_pool.status()["in_agent"] == 1


async def test_a_chunk_or_a_body_bigger_than_a_region_is_written_here() -> None:
    pool = EncoderPool(1, region_size=64 * 1024)
    pool.start()
    try:
        await ready(pool)
        too_long = chunk(5000)  # over 64 KiB of msgpack
        assert len(too_long) > 64 * 1024
        assert await pool.encode(KEY, FACTORY, too_long, 5000, "t", 0.0) is None
        # a chunk that fits, whose JSON body (each record gains an action line) does not
        grows = chunk(1000)
        assert len(grows) < 64 * 1024 < len(local(grows, 1000)[0])
        assert await pool.encode(KEY, FACTORY, grows, 1000, "t", 0.0) is None
        fits = chunk(100)
        assert await pool.encode(KEY, FACTORY, fits, 100, "t", 0.0) == local(fits, 100)
    finally:
        await pool.aclose()


async def test_close_ends_the_workers_and_the_pool_takes_nothing_after() -> None:
    pool = EncoderPool(2)
    pool.start()
    await ready(pool, 2)
    pids = worker_pids()
    assert len(pids) == 2
    await pool.aclose()
    assert worker_pids() == []
    assert not any(psutil.pid_exists(p) for p in pids)
    assert await pool.encode(KEY, FACTORY, chunk(1), 1, "t", 0.0) is None


def test_auto_counts_the_cpus_this_process_may_use() -> None:
    """``taskset -c 0 relaybit ...`` (or a container's cpuset) gets no worker."""
    script = (
        "import os; os.sched_setaffinity(0, {0}); "
        "from relaybit.plugins.outputs.encoder_pool import workers_setting; "
        "print(workers_setting('auto'), workers_setting('2'))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "2"]


def test_a_cgroup_cpu_quota_caps_the_cpus(tmp_path: Path) -> None:
    assert quota_cpus("max 100000\n") is None
    assert quota_cpus("150000 100000\n") == 1
    assert quota_cpus("400000 100000") == 4
    assert quota_cpus("50000 100000") == 1
    assert quota_cpus("garbage") is None
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("100000 100000\n")  # docker run --cpus 1
    assert usable_cpus(str(cpu_max)) == 1
    cpu_max.write_text("max 100000\n")
    assert usable_cpus(str(cpu_max)) == len(os.sched_getaffinity(0))
    assert usable_cpus(str(tmp_path / "absent")) == len(os.sched_getaffinity(0))


def test_workers_setting() -> None:
    assert workers_setting("0") == 0
    assert workers_setting(" 3 ") == 3
    assert workers_setting("auto") == (1 if usable_cpus() > 1 else 0)
    for bad in ("-1", "two", ""):
        with pytest.raises(ValueError):
            workers_setting(bad)


def test_a_bad_encoder_workers_value_stops_start_up_with_its_line(tmp_path: Path) -> None:
    conf = tmp_path / "agent.conf"
    conf.write_text(
        "[SERVICE]\n    flush 1\n    encoder.workers many\n\n"
        "[INPUT]\n    name dummy\n\n[OUTPUT]\n    name null\n    match *\n"
    )
    agent = Agent(load_config(conf))
    with pytest.raises(ConfigErrors) as caught:
        agent.build()
    text = str(caught.value)
    assert f"{conf}:3" in text and "encoder.workers" in text and "'many'" in text


@pytest.mark.parametrize(("value", "workers"), [("0", None), ("2", 2)])
def test_the_agent_builds_the_pool_it_is_told(tmp_path: Path, value: str, workers: int) -> None:
    conf = tmp_path / "agent.conf"
    conf.write_text(
        f"[SERVICE]\n    encoder.workers {value}\n\n"
        "[INPUT]\n    name dummy\n\n[OUTPUT]\n    name null\n    match *\n"
    )
    agent = Agent(load_config(conf))
    agent.build()
    pool = agent.service["encoder_pool"]
    assert (pool.processes if pool is not None else None) == workers
    assert worker_pids() == []  # built, not started: no process yet


def test_es_and_http_keep_four_flushes_in_flight_and_forward_two(tmp_path: Path) -> None:
    (tmp_path / "up.conf").write_text(
        "[UPSTREAM]\n    name up\n\n[NODE]\n    name n1\n    host 127.0.0.1\n    port 9\n"
    )
    conf = tmp_path / "agent.conf"
    conf.write_text(
        "[INPUT]\n    name dummy\n\n"
        "[OUTPUT]\n    name es\n    match *\n    port 9\n\n"
        "[OUTPUT]\n    name http\n    match *\n    port 9\n\n"
        "[OUTPUT]\n    name http\n    match *\n    port 9\n    workers 1\n\n"
        "[OUTPUT]\n    name forward\n    match *\n    upstream up.conf\n"
    )
    agent = Agent(load_config(conf))
    agent.build()
    queues = agent.engine.status()["outputs"]
    workers = {name: queue["workers"] for name, queue in queues.items()}
    assert workers == {"es.0": 4, "http.0": 4, "http.1": 1, "forward.0": 2}


async def test_a_worker_that_stops_answering_is_killed_and_started_again(
    running_pool: EncoderPool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(encoder_pool, "JOB_TIMEOUT", 0.5)
    monkeypatch.setattr(encoder_pool, "RESTART_DELAYS", (0.05, 0.2))
    (pid,) = worker_pids()
    os.kill(pid, signal.SIGSTOP)  # alive, never answering
    data = chunk(10)
    with caplog.at_level(logging.WARNING, logger="relaybit"):
        assert await running_pool.encode(KEY, FACTORY, data, 10, "t", 0.0) is None
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert [r.getMessage() for r in caplog.records] == [
        "encoder worker 0 did not answer within 0.5s: its chunks are encoded in the agent"
        " until it is back"
    ]
    await ready(running_pool)
    assert await running_pool.encode(KEY, FACTORY, data, 10, "t", 0.0) == local(data, 10)

"""A failed write leaves no torn block in front of later, successful ones."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from pipeline_helpers import GateOutput, entries, records_of

from relaybit.pipeline import storage as storage_module
from relaybit.pipeline.engine import Engine, EngineSettings
from relaybit.pipeline.storage import FileStorage, decode_chunk
from relaybit.tag import compile_match


def test_a_write_that_fails_half_way_is_cut_back_so_later_blocks_survive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileStorage(tmp_path)
    f = store.create("tail.0", "0001-a", "app.log", 1.0)
    first, n1 = entries(3)
    f.append(first, n1)
    real_writev = os.writev

    def disk_full_half_way(fd: int, parts: list[bytes]) -> int:
        real_writev(fd, [b"".join(parts)[:20]])  # 20 bytes reach the file ...
        raise OSError(errno.ENOSPC, "No space left on device")  # ... then the disk is full

    monkeypatch.setattr(storage_module.os, "writev", disk_full_half_way)
    lost, n_lost = entries(2, start=3)
    with pytest.raises(OSError):
        f.append(lost, n_lost)  # the emit fails: its input knows these were not stored
    monkeypatch.setattr(storage_module.os, "writev", real_writev)
    later, n_later = entries(4, start=5)
    f.append(later, n_later)  # the emit succeeds: these were acknowledged
    f.close(sync=True)
    _tag, _created, data, records, valid = decode_chunk(f.path.read_bytes())
    # before: the torn block stopped the read at restart and cut off the later one
    assert (data, records) == (first + later, n1 + n_later)
    assert valid == f.path.stat().st_size


def test_a_chunk_file_whose_header_cannot_be_written_leaves_no_file_and_no_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileStorage(tmp_path)
    store.create("tail.0", "0000-warm", "t", 1.0).close(sync=False)  # the input dir exists
    open_before = len(os.listdir("/proc/self/fd"))

    def disk_full(fd: int, parts: list[bytes]) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(storage_module.os, "writev", disk_full)
    with pytest.raises(OSError):
        store.create("tail.0", "0001-a", "app.log", 1.0)
    assert len(os.listdir("/proc/self/fd")) == open_before  # the descriptor leaked
    assert not (tmp_path / "tail.0" / "0001-a.rbc").exists()  # a headerless .rbc stayed


async def test_a_backlog_file_removed_before_its_turn_does_not_stop_the_output(
    tmp_path: Path,
) -> None:
    first = Engine(EngineSettings(flush=0.0, grace=2.0, storage_path=str(tmp_path)))
    emit = first.add_input("in.0", storage_type="filesystem")
    first.add_output("out.0", GateOutput(), compile_match("*"))
    for i in range(3):  # three chunk files, one per tag
        await emit(f"t{i}", *entries(2, start=i * 10))
    files = sorted(tmp_path.glob("*/*.rbc"))
    second = Engine(
        EngineSettings(
            flush=0.0, grace=2.0, storage_path=str(tmp_path), storage_backlog_mem_limit=1
        )
    )
    second.add_input("in.0", storage_type="filesystem")
    gate = GateOutput()
    second.add_output("out.0", gate, compile_match("*"), workers=1)
    await second.start()
    await gate.started.wait()  # the first file is loaded; the others wait their turn
    files[1].unlink()  # removed by someone else meanwhile
    gate.gate.set()
    # loading it raised FileNotFoundError inside the output's worker: the worker
    # died and nothing was delivered any more, backlog or new data
    await second.emit("in.0", "live", *entries(1, start=99))
    assert await second.drain(3)
    assert sorted(r["n"] for r in records_of(gate.chunks)) == [0, 1, 20, 21, 99]
    await second.stop()

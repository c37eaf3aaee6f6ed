"""Fluent Bit 5 conditional routing (YAML ``routes:``) through a real agent and real outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relaybit.agent import Agent
from relaybit.config.loader import load_config
from relaybit.errors import ConfigError, ConfigErrors
from relaybit.pipeline.storage import decode_chunk, header_route
from relaybit.testing import wait_for

CONFIG = """\
service:
  flush: 0.05
  grace: 2
{storage}
pipeline:
  inputs:
    - name: dummy
      tag: app
      samples: 1
      copies: 1
      flush_on_startup: on
      dummy: '[{{"level": "error", "code": 500}}, {{"level": "info", "code": 200}}, {{"level": "warn", "code": 503}}]'
{input_extra}
      routes:
        logs:
          - name: errors
            condition:
              op: or
              rules:
                - field: $level
                  op: eq
                  value: error
                - field: $code
                  op: gte
                  value: 503
            to:
              outputs: [errors_out]
          - name: rest
            condition:
              default: true
            to:
              outputs: [rest_out]
          - name: all
            to:
              outputs: [file.2]
    - name: dummy
      tag: other
      samples: 1
      flush_on_startup: on
      dummy: '{{"level": "error"}}'
  outputs:
    - name: file
      alias: errors_out
      path: {out}
      file: errors
      format: json_lines
    - name: file
      alias: rest_out
      path: {out}
      file: rest
      format: json_lines
    - name: file
      match: other
      path: {out}
      file: everything
      format: json_lines
"""


def lines(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def write(tmp_path: Path, storage: str = "", input_extra: str = "") -> Path:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    path = tmp_path / "agent.yaml"
    path.write_text(CONFIG.format(out=out, storage=storage, input_extra=input_extra))
    return path


def records(path: Path) -> list[tuple[object, object]]:
    return sorted(((r.get("level"), r.get("code")) for r in lines(path)), key=str)


async def test_records_go_where_their_route_says(tmp_path: Path) -> None:
    agent = Agent(load_config(write(tmp_path)))
    await agent.start()
    out = tmp_path / "out"
    try:
        await wait_for(lambda: len(lines(out / "everything")) == 4)
        await wait_for(lambda: len(lines(out / "errors")) == 2 and len(lines(out / "rest")) == 1)
    finally:
        await agent.stop()
    # a record takes every conditional route it matches; the default takes the others
    assert records(out / "errors") == [("error", 500), ("warn", 503)]
    assert records(out / "rest") == [("info", 200)]
    # the unconditional route gets every record of its input; the other input goes by match
    # (its 'match other' does not pull the routed input's records, whose tag is app)
    assert records(out / "everything") == sorted(
        [("error", None), ("error", 500), ("info", 200), ("warn", 503)], key=str
    )


async def test_a_stored_chunk_keeps_its_route_across_a_restart(tmp_path: Path) -> None:
    store = tmp_path / "store"
    storage = f"  storage.path: {store}\n"
    config = write(tmp_path, storage, "      storage.type: filesystem")
    text = config.read_text().replace(
        "format: json_lines", "format: json_lines\n      retry_limit: no_limits"
    )
    config.write_text(text)
    # first run: the outputs' directory is missing, so every flush fails and the chunks stay
    (tmp_path / "out").rmdir()
    agent = Agent(load_config(config))
    await agent.start()
    await wait_for(lambda: len(list(store.glob("dummy.0/*.rbc"))) == 3)
    await agent.stop()
    files = list(store.glob("dummy.0/*.rbc"))
    assert sorted(header_route(f.read_bytes()) for f in files) == ["all", "errors", "rest"]
    assert {decode_chunk(f.read_bytes())[0] for f in files} == {"app"}
    # second run: the directory exists; each chunk goes to its route's outputs only
    (tmp_path / "out").mkdir()
    agent = Agent(load_config(config))
    await agent.start()
    out = tmp_path / "out"
    try:
        await wait_for(lambda: not list(store.glob("dummy.0/*.rbc")))
        await wait_for(lambda: len(lines(out / "errors")) >= 2)
    finally:
        await agent.stop()
    assert records(out / "errors").count(("error", 500)) >= 1
    assert ("info", 200) not in records(out / "errors")
    assert ("info", 200) in records(out / "rest")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("errors_ot", "output 'errors_ot', which does not exist.*did you mean 'errors_out'"),
        ("nowhere", "output 'nowhere', which does not exist"),
    ],
)
def test_a_route_to_a_missing_output_stops_the_start_with_its_line(
    tmp_path: Path, target: str, message: str
) -> None:
    path = write(tmp_path)
    path.write_text(path.read_text().replace("outputs: [errors_out]", f"outputs: [{target}]"))
    with pytest.raises((ConfigError, ConfigErrors), match=message) as info:
        Agent(load_config(path)).build()
    line = path.read_text().splitlines().index(f"              outputs: [{target}]") + 1
    assert f"{path}:{line}:" in str(info.value)


def test_a_fallback_output_is_used_when_the_named_one_is_missing(tmp_path: Path) -> None:
    path = write(tmp_path)
    text = path.read_text().replace(
        "outputs: [errors_out]", "outputs: [{name: gone, fallback: errors_out}]"
    )
    path.write_text(text)
    agent = Agent(load_config(path))
    agent.build()
    assert agent.engine._input_routes["dummy.0"]["errors"] == ("errors_out",)

"""Variables from YAML `env:` lists and from files (`uri:`, `file://`), as Fluent Bit 5 reads them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relaybit.agent import Agent
from relaybit.config.loader import load_config
from relaybit.errors import ConfigError, ConfigErrors
from relaybit.testing import wait_for

PIPELINE = """\
pipeline:
  inputs:
    - name: dummy
      tag: ${TAG}
      dummy: '{"token": "${TOKEN}"}'
  outputs:
    - name: null
      match: "*"
"""


def tag_and_dummy(path: Path) -> tuple[str | None, str | None]:
    cfg = load_config(path)
    return cfg.inputs[0].get("tag"), cfg.inputs[0].get("dummy")


def test_env_list_form_with_value_and_uri(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text("s3cr3t\n")
    path = tmp_path / "agent.yaml"
    path.write_text(
        "env:\n"
        "  - name: TAG\n"
        "    value: app.web\n"
        "  - name: TOKEN\n"
        "    uri: file://secrets/token\n"
        "    refresh_interval: 30s\n" + PIPELINE
    )
    assert tag_and_dummy(path) == ("app.web", '{"token": "s3cr3t"}')  # one newline dropped
    (var,) = load_config(path).env_files
    assert (var.name, var.path, var.refresh_interval) == (
        "TOKEN",
        str(tmp_path / "secrets" / "token"),
        30.0,
    )


def test_a_file_uri_value_reads_the_file_in_every_form(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("from-file")
    path = tmp_path / "agent.yaml"
    path.write_text(f"env:\n  TAG: app\n  TOKEN: file://{secret}\n" + PIPELINE)
    assert tag_and_dummy(path) == ("app", '{"token": "from-file"}')
    classic = tmp_path / "agent.conf"
    classic.write_text(
        f'@SET TOKEN=file://{secret}\n[INPUT]\n    name dummy\n    dummy {{"t": "${{TOKEN}}"}}\n'
    )
    assert load_config(classic).inputs[0].get("dummy") == '{"t": "from-file"}'


@pytest.mark.parametrize(
    ("env", "message", "line"),
    [
        ("  - value: x\n", "needs 'name'", 2),
        ("  - name: T\n    value: x\n    uri: file:///x\n", "exactly one of 'value' and 'uri'", 2),
        ("  - name: T\n    uri: file://missing\n", "does not exist", 3),
        ("  - name: T\n    uri: file://empty\n", "is empty", 3),
        ("  - name: T\n    valeu: x\n", "did you mean 'value'", 3),
        ("  - name: T\n    value: x\n    refresh_interval: 5s\n", "needs 'uri'", 4),
        ("  - name: T\n    uri: file://empty\n    refresh_interval: soon\n", "soon", 4),
    ],
)
def test_bad_env_entries_are_refused_at_their_line(
    tmp_path: Path, env: str, message: str, line: int
) -> None:
    (tmp_path / "empty").write_text("\n")
    path = tmp_path / "agent.yaml"
    path.write_text("env:\n" + env + PIPELINE.replace("${TAG}", "t").replace("${TOKEN}", "x"))
    with pytest.raises((ConfigError, ConfigErrors), match=message) as info:
        load_config(path)
    assert f"{path}:{line}" in str(info.value)


async def test_a_changed_env_file_reloads_the_configuration(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("one\n")
    out = tmp_path / "out"
    out.mkdir()
    path = tmp_path / "agent.yaml"
    path.write_text(
        "service:\n  flush: 0.05\n  hot_reload: on\n"
        "env:\n  - name: TOKEN\n    uri: file://token\n    refresh_interval: 0.1\n"
        "pipeline:\n  inputs:\n    - name: dummy\n      rate: 50\n      tag: app\n"
        '      dummy: \'{"token": "${TOKEN}"}\'\n'
        f"  outputs:\n    - name: file\n      match: app\n      path: {out}\n"
        "      file: records\n      format: json_lines\n"
    )
    agent = Agent(load_config(path))
    await agent.start()

    def tokens() -> set[str]:
        text = (out / "records").read_text() if (out / "records").exists() else ""
        return {json.loads(line)["token"] for line in text.splitlines() if line.endswith("}")}

    try:
        await wait_for(lambda: "one" in tokens())
        secret.write_text("two\n")
        await wait_for(lambda: "two" in tokens())
    finally:
        await agent.stop()
    assert agent.reloader.count >= 1

"""rewrite_tag: rules, tag templates, recursion guards, and re-entry into the pipeline."""

from __future__ import annotations

import asyncio
import logging
import os
import textwrap
from pathlib import Path
from typing import Any

import msgpack
import pytest

from relaybit.agent import Agent
from relaybit.codec.msgpack import iter_entries
from relaybit.config.loader import load_config
from relaybit.errors import ConfigError, ConfigErrors
from relaybit.plugins.filters.rewrite_tag import MAX_DEPTH, RewriteTagFilter, split_rule
from relaybit.testing import wait_for


class Emitted:
    """A fake ``add_emitter``: records what the filter emits."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.added: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, name: str, **kwargs: Any) -> Any:
        self.added.append((name, kwargs))

        def emit(tag: str, data: bytes, records: int) -> None:
            got = [r for _, r in iter_entries(data)]
            assert len(got) == records
            self.calls.extend((tag, r) for r in got)

        return emit


def build(make_filter: Any, *props: tuple[str, str]) -> tuple[RewriteTagFilter, Emitted]:
    f = make_filter(RewriteTagFilter, ("Match", "app.*"), *props)
    emitted = Emitted()
    f.bind_engine(emitted)
    return f, emitted


def test_split_rule_keeps_quoted_words() -> None:
    assert split_rule('$log "^a b$" new.$TAG true') == ["$log", "^a b$", "new.$TAG", "true"]


def test_matching_records_are_emitted_under_the_new_tag_and_dropped(make_filter: Any) -> None:
    f, emitted = build(make_filter, ("Rule", r"$level ^(error|warn)$ alerts.$1.$TAG[1] false"))
    kept = f.filter("app.web", [(1, {"level": "error"}), (2, {"level": "info"})])
    assert kept == [(2, {"level": "info"})]
    assert emitted.calls == [("alerts.error.web", {"level": "error"})]
    assert emitted.added == [
        ("emitter_for_rewritetagfilter.0", {"storage_type": "memory", "mem_buf_limit": 10485760})
    ]


def test_a_record_holding_a_lone_surrogate_is_emitted(make_filter: Any) -> None:
    # (left by a filter before it) it could not be packed: kept under its old tag, logged;
    # now emitted with U+FFFD, as Fluent Bit writes a lone surrogate
    f, emitted = build(make_filter, ("Rule", r"$level ^error$ alerts false"))
    kept = f.filter("app.web", [(1, {"level": "error", "msg": "cut \ud83d"})])
    assert kept == []
    assert emitted.calls == [("alerts", {"level": "error", "msg": "cut \ufffd"})]


def test_keep_true_keeps_the_original(make_filter: Any) -> None:
    f, emitted = build(make_filter, ("Rule", "$log . copy.$TAG true"))
    assert f.filter("app.x", [(1, {"log": "hi"})]) == [(1, {"log": "hi"})]
    assert emitted.calls == [("copy.app.x", {"log": "hi"})]


def test_record_accessors_and_whole_match_in_the_new_tag(make_filter: Any) -> None:
    f, emitted = build(
        make_filter, ("Rule", "$kubernetes['ns'] ^prod kube.$kubernetes['ns'].$0.$missing false")
    )
    f.filter("app.x", [(1, {"kubernetes": {"ns": "prod-eu"}})])
    assert emitted.calls[0][0] == "kube.prod-eu.prod."


def test_first_matching_rule_wins(make_filter: Any) -> None:
    f, emitted = build(make_filter, ("Rule", "$a ^1$ one false"), ("Rule", "$a ^\\d$ digit false"))
    f.filter("app.x", [(1, {"a": 1}), (2, {"a": "2"}), (3, {"a": "x"})])
    assert emitted.calls == [("one", {"a": 1}), ("digit", {"a": "2"})]


def test_emitter_options(make_filter: Any) -> None:
    _, emitted = build(
        make_filter,
        ("Rule", "$a . b false"),
        ("Emitter_Name", "re_emitted"),
        ("Emitter_Storage.type", "filesystem"),
        ("Emitter_Mem_Buf_Limit", "16M"),
    )
    assert emitted.added == [
        ("re_emitted", {"storage_type": "filesystem", "mem_buf_limit": 16 * 1024 * 1024})
    ]


def test_a_fixed_new_tag_matched_by_its_own_match_is_refused(make_filter: Any) -> None:
    with pytest.raises(ConfigError, match="come back here forever") as info:
        make_filter(RewriteTagFilter, ("Match", "*"), ("Rule", "$a . other false"))
    assert "agent.conf:3" in str(info.value)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("$a ^x", "4 words"),
        ("$a ( b false", "missing"),
        ("$a x b maybe", "maybe"),
        ("$a[ x b false", "record accessor"),
    ],
)
def test_bad_rules_name_the_line(make_filter: Any, rule: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        make_filter(RewriteTagFilter, ("Match", "a"), ("Rule", rule))
    assert "agent.conf:3" in str(info.value)


def test_bad_recursion_action_and_storage_type_are_errors(make_filter: Any) -> None:
    for key, value in (("Recursion_Action", "loop"), ("Emitter_Storage.type", "disk")):
        with pytest.raises(ConfigError, match=key.lower()):
            make_filter(RewriteTagFilter, ("Match", "a"), (key, value))


def test_recursion_exit_keeps_the_record_and_logs(
    make_filter: Any, caplog: pytest.LogCaptureFixture
) -> None:
    f, emitted = build(make_filter, ("Rule", "$t (.+) app.$1 false"))
    with caplog.at_level(logging.ERROR, logger="relaybit"):
        kept = f.filter("app.x", [(1, {"t": "y"}), (2, {"t": "y"})])
    assert kept == [(1, {"t": "y"}), (2, {"t": "y"})]
    assert emitted.calls == []
    assert sum("recursion" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("action", ["drop", "drop_and_log"])
def test_recursion_drop(make_filter: Any, action: str, caplog: pytest.LogCaptureFixture) -> None:
    f, emitted = build(make_filter, ("Rule", "$t (.+) app.$1 false"), ("Recursion_Action", action))
    with caplog.at_level(logging.WARNING, logger="relaybit"):
        assert f.filter("app.x", [(1, {"t": "y"}), (2, {"t": "z"})]) == []
    assert emitted.calls == [] and f.recursions == 2
    assert any("recursion" in r.getMessage() for r in caplog.records)


def test_recursion_none_emits_but_caps_the_depth(make_filter: Any) -> None:
    f = make_filter(
        RewriteTagFilter,
        ("Match", "app.*"),
        ("Rule", "$t (.+) app.$1 false"),
        ("Recursion_Action", "none"),
    )
    tags: list[str] = []

    def add_emitter(name: str, **kwargs: Any) -> Any:
        def emit(tag: str, data: bytes, records: int) -> None:
            tags.append(tag)  # the engine runs the filters of the new tag at once
            f.filter(tag, list(iter_entries(data)))

        return emit

    f.bind_engine(add_emitter)
    assert f.filter("app.x", [(1, {"t": "y"})]) == []
    assert len(tags) == MAX_DEPTH  # then kept under its tag at the last level


def test_an_empty_new_tag_keeps_the_record(make_filter: Any) -> None:
    f, emitted = build(make_filter, ("Rule", "$a . $missing false"))
    assert f.filter("app.x", [(1, {"a": "v"})]) == [(1, {"a": "v"})]
    assert emitted.calls == []


CONF = """\
[SERVICE]
    flush 0.05
    grace 1

[INPUT]
    name  dummy
    tag   app.web
    dummy {{"level": "error", "msg": "boom"}}
    samples 3

[FILTER]
    name  rewrite_tag
    match app.*
    rule  $level ^(error)$ alert.$1 false
    emitter_name alerts

[FILTER]
    name   record_modifier
    match  alert.*
    record routed yes

[OUTPUT]
    name   file
    match  alert.*
    path   {out}
    file   alerts.log
    format plain

[OUTPUT]
    name   file
    match  app.*
    path   {out}
    file   app.log
    format plain
"""


async def test_end_to_end_the_new_tag_is_routed_and_filtered(tmp_path: Path) -> None:
    conf = tmp_path / "agent.conf"
    conf.write_text(CONF.format(out=tmp_path))
    agent = Agent(load_config(conf))
    await agent.start()
    alerts = tmp_path / "alerts.log"
    try:
        await wait_for(lambda: alerts.exists() and alerts.read_text().count("\n") >= 3)
    finally:
        await agent.stop()
    lines = alerts.read_text().splitlines()
    assert all('"routed":"yes"' in line and '"msg":"boom"' in line for line in lines)
    assert not (tmp_path / "app.log").exists()  # keep false: nothing under app.web
    assert agent.engine.metrics()["input"]["alerts"]["records"] == 3


def test_an_emitter_name_taken_by_another_filter_is_a_config_error(tmp_path: Path) -> None:
    conf = tmp_path / "agent.conf"
    twice = textwrap.dedent(
        """\
        [FILTER]
            name rewrite_tag
            match a
            rule $x . b false
            emitter_name same
        [FILTER]
            name rewrite_tag
            match a
            rule $x . c false
            emitter_name same
        """
    )
    conf.write_text(twice)
    with pytest.raises(ConfigErrors, match="emitter_name 'same'") as info:
        Agent(load_config(conf)).build()
    assert "agent.conf:10" in str(info.value)


async def test_a_full_emitter_disk_holds_the_forward_ack_and_keeps_the_new_tag(
    tmp_path: Path, small_tmpfs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Emitter_Storage.type filesystem on a full disk: the forward client's message is
    not acked while the re-emitted records cannot be stored, none reaches the output of
    the old tag, and all arrive under the new one once the operator frees space."""
    caplog.set_level(logging.INFO)
    disk = small_tmpfs(512 * 1024)
    out = tmp_path / "out"
    out.mkdir()
    conf = tmp_path / "agent.conf"
    conf.write_text(
        f"[SERVICE]\n    flush 0.1\n    grace 1\n    storage.path {disk}\n"
        "[INPUT]\n    name forward\n    listen 127.0.0.1\n    port 0\n"
        "[FILTER]\n    name rewrite_tag\n    match app\n    rule $level ^error$ alerts false\n"
        "    emitter_storage.type filesystem\n"
        f"[OUTPUT]\n    name file\n    match alerts\n    path {out}\n    file alerts\n"
        f"[OUTPUT]\n    name file\n    match app\n    path {out}\n    file app\n"
    )
    agent = Agent(load_config(conf))
    await agent.start()
    try:
        port = agent.inputs["forward.0"].port  # type: ignore[attr-defined]
        st = os.statvfs(disk)
        ballast = disk / "ballast"
        ballast.write_bytes(b"\0" * (st.f_bavail * st.f_frsize))  # the disk is full
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        entries = [
            [1_700_000_000, {"level": "error", "n": i, "pad": "x" * 200}] for i in range(500)
        ]
        writer.write(msgpack.packb(["app", entries, {"chunk": "c1", "size": 500}]))
        await writer.drain()
        emitter = "emitter_for_rewrite_tag.0"
        await wait_for(
            lambda: agent.engine.status()["inputs"][emitter]["waiting_inputs"] == ["forward.0"],
            what="the forward input to wait for the emitter",
        )
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.read(100), 0.5)  # not stored: not acked
        assert not (out / "app").exists()  # nothing passed on under its old tag
        ballast.unlink()  # the operator frees space
        assert msgpack.unpackb(await asyncio.wait_for(reader.read(100), 10)) == {"ack": "c1"}
        alerts = out / "alerts"
        await wait_for(lambda: alerts.exists() and alerts.read_text().count("\n") >= 500)
        text = alerts.read_text()
        assert all(text.count(f'"n":{i},') == 1 for i in range(500))  # each once
        assert not (out / "app").exists()
        storage = [r.getMessage() for r in caplog.records if r.name == "relaybit.storage"]
        assert sum("storage full" in m for m in storage) == 1
        assert "Traceback" not in caplog.text and "records pass unchanged" not in caplog.text
        writer.close()
    finally:
        await agent.stop()

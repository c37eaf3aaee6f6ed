"""Golden tests: every filter, and chains of them, over decoded records through the engine.

Each case packs entries (EventTime, integer and float times, ``[[time,
metadata], record]`` entries, strings that are not UTF-8, big and negative
integers, floats, booleans, nil, bin, nested maps and arrays), runs them through
a real :class:`~relaybit.pipeline.engine.Engine` with the case's filters (built
from options as the agent builds them) and compares every entry the output
receives, per tag, decoded in key order with int/float/bool/str/bytes kept apart,
against filter_golden_expected.py (written from the code before the record path
was made fast, and read by hand).

Regenerate (only for a bug you name): ``python tests/plugins/filters/test_filter_golden.py --write``.
"""

from __future__ import annotations

import asyncio
import pprint
import sys
from pathlib import Path
from typing import Any

import msgpack
import pytest

from relaybit.codec.msgpack import EventTime, default, ext_hook
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.parsers import BUILTIN_PARSERS
from relaybit.pipeline.chunk import Chunk
from relaybit.pipeline.engine import Engine, EngineSettings
from relaybit.plugins.base import FILTER_COMMON, FilterPlugin, FlushResult, OutputPlugin
from relaybit.plugins.filters.grep import GrepFilter
from relaybit.plugins.filters.modify import ModifyFilter
from relaybit.plugins.filters.multiline import MultilineFilter
from relaybit.plugins.filters.nest import NestFilter
from relaybit.plugins.filters.parser import ParserFilter
from relaybit.plugins.filters.record_modifier import RecordModifierFilter
from relaybit.plugins.filters.rewrite_tag import RewriteTagFilter
from relaybit.plugins.filters.throttle import ThrottleFilter
from relaybit.tag import compile_match
from relaybit.testing import FakeClock

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

T1 = EventTime(1_700_000_000, 123_456_789)
T2 = EventTime(1_700_000_001, 0)
BAD = b"caf\xe9 \xff end".decode("utf-8", "surrogateescape")  # not UTF-8: Latin-1 bytes

#: entries of every shape a chunk holds
ENTRIES: list[tuple[Any, Any]] = [
    (T1, {"level": "info", "msg": "GET /a 200", "status": 200, "host": "web-1", "Mem.used": 5}),
    (T1, {"level": "error", "msg": BAD, "status": 503, "big": 2**64 - 1, "neg": -(2**63)}),
    (1_700_000_002, {"level": "info", "msg": "int time", "ratio": 0.5, "ok": True, "nil": None}),
    (1_700_000_003.25, {"level": "debug", "msg": "float time", "raw": b"\x00\x01\xff"}),
    (
        [T2, {"trace_id": "abc", "n": 7}],
        {"level": "info", "msg": "with metadata", "kubernetes": {"labels": {"app": "web"}}},
    ),
    ([T2, {}], {"level": "INFO", "msg": "empty metadata", "list": [1, "two", 3.0, False]}),
    (T2, {"level": "info", "msg": "nested", "kubernetes": {"labels": {"app": "api"}, "ns": "x"}}),
    (T2, {"level": 5, "msg": 404, "Mem.free": 1, "Mem.total": 2, "other": "o"}),
    (T2, {BAD: "key not UTF-8", "level": "info", "msg": "odd key"}),
    (T2, "not a map"),
]

JSON_LINES: list[tuple[Any, Any]] = [
    (T1, {"log": '{"a": 1, "b": "x", "big": 18446744073709551615}', "stream": "stdout"}),
    (
        [T2, {"m": 1}],
        {"log": '{"time": "2024-05-01T12:00:00.5Z", "v": true}', "stream": "stderr"},
    ),
    (T2, {"log": "not json", "stream": "stdout"}),
    (T2, {"log": b'{"bin": "\xff"}', "stream": "stdout"}),
    (T2, {"other": "no log key"}),
]

PARTIAL: list[tuple[Any, Any]] = [
    (
        T1,
        {
            "log": "part one ",
            "partial_message": "true",
            "partial_id": "p1",
            "partial_last": "false",
        },
    ),
    (T1, {"log": "whole", "stream": "stdout"}),
    (
        T2,
        {"log": "part two", "partial_message": "true", "partial_id": "p1", "partial_last": "true"},
    ),
]

JAVA: list[tuple[Any, Any]] = [
    (T1, {"log": 'Exception in thread "main" java.lang.RuntimeException: boom', "n": 1}),
    (T1, {"log": "    at com.example.App.main(App.java:5)", "n": 2}),
    (T2, {"log": "    at com.example.App.run(App.java:9)", "n": 3}),
    (T2, {"log": "a plain line", "n": 4}),
]

Props = tuple[tuple[str, str], ...]
#: name -> (filters: ((class, props), ...), entries)
CASES: dict[str, tuple[tuple[tuple[type[FilterPlugin], Props], ...], list[tuple[Any, Any]]]] = {
    "grep_regex": (((GrepFilter, (("regex", "level ^info$"),)),), ENTRIES),
    "grep_exclude": (((GrepFilter, (("exclude", "msg time$"),)),), ENTRIES),
    "grep_number": (((GrepFilter, (("regex", "status ^5"),)),), ENTRIES),
    "grep_accessor": (
        ((GrepFilter, (("regex", "$kubernetes['labels']['app'] ^web$"),)),),
        ENTRIES,
    ),
    "grep_legacy_two": (
        ((GrepFilter, (("regex", "level ^info$"), ("exclude", "msg ^nested"))),),
        ENTRIES,
    ),
    "grep_and": (
        ((GrepFilter, (("regex", "level info"), ("regex", "msg time"), ("logical_op", "and"))),),
        ENTRIES,
    ),
    "grep_or": (
        ((GrepFilter, (("exclude", "level ^info$"), ("exclude", "msg e"), ("logical_op", "or"))),),
        ENTRIES,
    ),
    "grep_invalid_utf8": (((GrepFilter, (("regex", "msg \\xff"),)),), ENTRIES),
    "modify_add_rename": (
        ((ModifyFilter, (("add", "host web-1"), ("rename", "msg message"))),),
        ENTRIES,
    ),
    "modify_every_rule": (
        (
            (
                ModifyFilter,
                (
                    ("set", 'env "prod eu"'),
                    ("add", "level never"),
                    ("remove", "nil"),
                    ("rename", "status code"),
                    ("hard_rename", "ok okay"),
                    ("copy", "msg msg_copy"),
                    ("hard_copy", "level host"),
                    ("remove_wildcard", "Mem."),
                    ("remove_regex", "^ra"),
                    ("move_to_start", "msg*"),
                    ("move_to_end", "level"),
                ),
            ),
        ),
        ENTRIES,
    ),
    "modify_conditions": (
        (
            (
                ModifyFilter,
                (
                    ("condition", "key_exists level"),
                    ("condition", "key_value_matches level ^info$"),
                    ("condition", "key_does_not_exist nil"),
                    ("set", "matched yes"),
                ),
            ),
        ),
        ENTRIES,
    ),
    "modify_conditions_keys": (
        (
            (
                ModifyFilter,
                (
                    ("condition", "a_key_matches ^Mem"),
                    ("condition", "matching_keys_have_matching_values ^Mem ^\\d+$"),
                    ("condition", "key_value_does_not_equal msg x"),
                    ("condition", "no_key_matches ^zzz"),
                    ("add", "mem yes"),
                ),
            ),
        ),
        ENTRIES,
    ),
    "record_modifier_record": (
        ((RecordModifierFilter, (("record", "host web 1"), ("record", "env prod"))),),
        ENTRIES,
    ),
    "record_modifier_remove": (
        ((RecordModifierFilter, (("remove_key", "mem.*"), ("remove_key", "STATUS"))),),
        ENTRIES,
    ),
    "record_modifier_allowlist": (
        ((RecordModifierFilter, (("allowlist_key", "level"), ("allowlist_key", "ms*"))),),
        ENTRIES,
    ),
    "nest_nest": (
        (
            (
                NestFilter,
                (
                    ("operation", "nest"),
                    ("wildcard", "Mem.*"),
                    ("wildcard", "status"),
                    ("nest_under", "memory"),
                    ("remove_prefix", "Mem."),
                ),
            ),
        ),
        ENTRIES,
    ),
    "nest_lift": (
        (
            (
                NestFilter,
                (("operation", "lift"), ("nested_under", "kubernetes"), ("add_prefix", "k8s_")),
            ),
        ),
        ENTRIES,
    ),
    "throttle": (((ThrottleFilter, (("rate", "3"), ("window", "1"))),), ENTRIES),
    "rewrite_tag": (
        (
            (
                RewriteTagFilter,
                (
                    ("rule", "$level ^(error|debug)$ alerts.$1.$TAG false"),
                    ("rule", "$kubernetes['labels']['app'] ^(\\w+)$ app.$1 true"),
                ),
            ),
        ),
        ENTRIES,
    ),
    "parser_json": (
        ((ParserFilter, (("key_name", "log"), ("parser", "json"), ("reserve_data", "on"))),),
        JSON_LINES,
    ),
    "parser_json_preserve": (
        (
            (
                ParserFilter,
                (("key_name", "log"), ("parser", "json"), ("preserve_key", "on")),
            ),
        ),
        JSON_LINES,
    ),
    "multiline_partial": (
        ((MultilineFilter, (("mode", "partial_message"), ("buffer", "off"))),),
        PARTIAL,
    ),
    "multiline_java": (
        ((MultilineFilter, (("multiline.parser", "java"), ("buffer", "off"))),),
        JAVA,
    ),
    "chain_grep_modify": (
        (
            (GrepFilter, (("regex", "level ^info$"),)),
            (ModifyFilter, (("add", "host web-1"), ("rename", "msg message"))),
        ),
        ENTRIES,
    ),
    "chain_four": (
        (
            (GrepFilter, (("exclude", "level ^debug$"),)),
            (ModifyFilter, (("set", "env prod"), ("remove", "nil"))),
            (NestFilter, (("operation", "nest"), ("wildcard", "Mem.*"), ("nest_under", "mem"))),
            (RecordModifierFilter, (("record", "agent relaybit"), ("remove_key", "ok"))),
        ),
        ENTRIES,
    ),
    "chain_drops_everything": (
        (
            (GrepFilter, (("regex", "level ^nothing$"),)),
            (ModifyFilter, (("add", "never x"),)),
        ),
        ENTRIES,
    ),
}


def build(cls: type[FilterPlugin], props: Props, index: int) -> FilterPlugin:
    raw = [RawProperty(k, v, Origin("golden.conf", i + 2)) for i, (k, v) in enumerate(props)]
    raw.append(RawProperty("match", "app.log", Origin("golden.conf", len(props) + 2)))
    options = (FILTER_COMMON + cls.options).resolve(raw, section="[FILTER]")
    from relaybit.plugins.base import PluginContext

    ctx = PluginContext(
        name=f"{cls.__name__.lower()}.{index}",
        plugin="x",
        options=options,
        clock=FakeClock(wall=1_700_000_000.0),
        service={"parsers": BUILTIN_PARSERS},
    )
    return cls(ctx)


class _Collect(OutputPlugin):
    def __init__(self) -> None:
        self.chunks: list[Chunk] = []

    async def flush(self, chunk: Chunk) -> FlushResult:
        self.chunks.append(chunk)
        return FlushResult.OK


def pack(entries: list[tuple[Any, Any]]) -> bytes:
    packer = msgpack.Packer(default=default, use_bin_type=True, unicode_errors="surrogateescape")
    return b"".join(packer.pack([head, record]) for head, record in entries)


def decode(data: bytes) -> list[Any]:
    """Every item of a chunk, whole: heads with their metadata, EventTimes exact."""
    unpacker = msgpack.Unpacker(
        ext_hook=ext_hook, raw=False, unicode_errors="surrogateescape", strict_map_key=False
    )
    unpacker.feed(data)
    return list(unpacker)


def canon(value: Any) -> Any:
    """A form that compares maps in order and keeps int, float, bool, str and bytes apart."""
    if isinstance(value, dict):
        return ("map", [(canon(k), canon(v)) for k, v in value.items()])
    if isinstance(value, list | tuple):
        return ("array", [canon(v) for v in value])
    if isinstance(value, EventTime):
        return ("EventTime", value.seconds, value.nanoseconds)
    return (type(value).__name__, value)


async def run_case(name: str) -> dict[str, list[Any]]:
    """The entries the output receives per tag, decoded, for case ``name`` (tag ``app.log``)."""
    filters, entries = CASES[name]
    engine = Engine(EngineSettings(flush=0.0, grace=2.0))
    emit = engine.add_input("in.0")
    for i, (cls, props) in enumerate(filters):
        engine.add_filter(f"f{i}", build(cls, props, i), compile_match("app.log"))
    out = _Collect()
    engine.add_output("out.0", out, compile_match("*"))
    await engine.start()
    try:
        await emit("app.log", pack(entries), len(entries))
        assert await engine.drain(5)
    finally:
        await engine.stop()
    got: dict[str, list[Any]] = {}
    for chunk in out.chunks:
        items = decode(chunk.data)
        assert len(items) == chunk.records
        got.setdefault(chunk.tag, []).extend(items)
    return got


try:
    import filter_golden_expected
except ImportError:  # while (re)generating
    filter_golden_expected = None  # type: ignore[assignment]


@pytest.mark.parametrize("name", list(CASES))
async def test_filters_emit_the_golden(name: str) -> None:
    got = await run_case(name)
    expected = filter_golden_expected.EXPECTED[name]
    assert sorted(got) == sorted(expected)
    for tag, items in expected.items():
        assert [canon(i) for i in got[tag]] == [canon(i) for i in items], tag


def test_every_filter_plugin_has_a_golden() -> None:
    from relaybit.plugins.registry import available

    used = {cls for filters, _ in CASES.values() for cls, _ in filters}
    names = {cls.__module__.rsplit(".", 1)[1] for cls in used}
    assert set(available("filter")) - {"emitter"} <= names | {"content_modifier"}


def _write() -> None:  # pragma: no cover - run by hand
    results = {name: asyncio.run(run_case(name)) for name in CASES}
    text = (
        '"""Expected output of test_filter_golden.py (generated by its --write, read by hand)."""\n\n'
        "from relaybit.codec.msgpack import EventTime\n\n"
        f"EXPECTED = {pprint.pformat(results, width=100, sort_dicts=False)}\n"
    )
    (_HERE / "filter_golden_expected.py").write_text(text)


if __name__ == "__main__":  # pragma: no cover
    if "--write" not in sys.argv:
        sys.exit("usage: python tests/plugins/filters/test_filter_golden.py --write")
    _write()

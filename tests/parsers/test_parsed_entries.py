"""ParsedLines.entries (parsed records handed to the filter chain decoded) against the bytes path.

For every parser of the golden cases and for generated lines (JSON of every
value type, big integers, escapes, escaped surrogates, bytes that are not
UTF-8, backslashes next to them), ``entries()`` must equal what
``decode_entries(pack())`` gives, value for value and type for type, and the
filter chain must write the same bytes from both (real grep and modify, and a
filter that writes every record's repr into it, so that any difference in a
string shows in the output).
"""

from __future__ import annotations

import json
import struct
from typing import Any

import golden_cases
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relaybit.codec.records import decode_entries
from relaybit.config.loader import load_config
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.parsers import build_parsers, with_builtins
from relaybit.parsers.packing import ParsedLines
from relaybit.pipeline.filter_chain import FilterChain
from relaybit.plugins.base import FILTER_COMMON, FilterPlugin, PluginContext
from relaybit.plugins.filters.grep import GrepFilter
from relaybit.plugins.filters.modify import ModifyFilter
from relaybit.plugins.inputs.lines import time_ext

NOW = time_ext(1_700_000_000, 250_000_000)

EXTRA_CONF = r"""
[PARSER]
    Name        json_decoded
    Format      json
    Decode_Field_As escaped msg
    Decode_Field    json    log

[PARSER]
    Name        json_time
    Format      json
    Time_Key    time
    Time_Format %Y-%m-%dT%H:%M:%S.%L%z
    Types       n:integer f:float b:bool

[PARSER]
    Name        json_epoch
    Format      json
    Time_Key    t
    Time_Format %s
    Time_Keep   On
"""


@pytest.fixture(scope="module")
def parsers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    conf = tmp_path_factory.mktemp("entries") / "parsers.conf"
    conf.write_text(golden_cases.PARSERS_CONF + EXTRA_CONF)
    return with_builtins(build_parsers(load_config(conf).parsers))


def canon(value: Any) -> Any:
    """Maps in order; int, float (its bits), bool, str, bytes and slice kept apart."""
    if isinstance(value, dict):
        return ("map", [(canon(k), canon(v)) for k, v in value.items()])
    if isinstance(value, list | tuple):
        return (type(value).__name__, [canon(v) for v in value])
    if isinstance(value, float):
        return ("float", struct.pack(">d", value))
    if isinstance(value, slice):
        return ("slice", value.start, value.stop)
    return (type(value).__name__, value)


def _build(cls: type[FilterPlugin], *props: tuple[str, str]) -> Any:
    raw = [RawProperty(k, v, Origin("t.conf", i + 2)) for i, (k, v) in enumerate(props)]
    options = (FILTER_COMMON + cls.options).resolve(raw, section="[FILTER]")
    return cls(PluginContext(name=f"{cls.__name__}.0", plugin="x", options=options))


class ReprFilter(FilterPlugin):
    """Writes the repr of each record into it: any difference in a value shows in the bytes."""

    def __init__(self) -> None:
        pass

    def filter(self, tag: str, entries: list[Any]) -> list[Any]:
        for entry in entries:
            record = entry[1]
            if isinstance(record, dict):
                record["repr"] = repr(sorted(map(repr, record.items())))
        return entries


def chain() -> tuple[FilterChain, list[str]]:
    filters: dict[str, FilterPlugin] = {
        "grep": _build(GrepFilter, ("exclude", "level ^debug$")),
        "modify": _build(
            ModifyFilter, ("add", "host web-1"), ("rename", "msg message"), ("copy", "log copy")
        ),
        "repr": ReprFilter(),
    }
    return FilterChain(filters), list(filters)


def check(parser: Any, lines: list[bytes], *, offset_key: str | None = None) -> None:
    starts = list(range(0, 10 * len(lines), 10))
    extra = [("path", "/var/log/a\udcff.log")]
    data = ParsedLines(parser, "log", extra, offset_key).pack(lines, NOW, starts)
    decoded = ParsedLines(parser, "log", extra, offset_key).entries(lines, NOW, starts)
    assert decoded is not None
    assert canon(decoded) == canon(decode_entries(data)), lines
    run, names = chain()
    original = ParsedLines(parser, "log", extra, offset_key)
    via_entries = run.run_entries(
        names, "t", decoded, len(lines), lambda: original.pack(lines, NOW, starts)
    )
    assert via_entries == chain()[0].run(names, "t", data, len(lines)), lines


@pytest.mark.parametrize("name", list(golden_cases.CASES))
def test_golden_lines_of_every_parser(parsers: dict[str, Any], name: str) -> None:
    check(parsers[name], golden_cases.CASES[name], offset_key="offset")


def test_no_parser(parsers: dict[str, Any]) -> None:
    check(None, [b"plain", b"caf\xc3\xa9 \xff", b"a\\u00e9 \xc3 \\ b"], offset_key="off")


def test_a_parser_of_the_general_path_has_no_entries() -> None:
    class Own:
        def parse(self, text: str) -> Any:
            return None

    assert ParsedLines(Own()).entries([b"x"], NOW) is None


def test_an_unencodable_filter_result_passes_the_original_bytes(parsers: dict[str, Any]) -> None:
    class Bad(FilterPlugin):
        def __init__(self) -> None:
            pass

        def filter(self, tag: str, entries: list[Any]) -> list[Any]:
            for entry in entries:
                entry[1]["obj"] = object()  # in place: the decoded records are spoiled
            return entries

    lines = [b'{"level":"info","msg":"a"}', b'{"level":"debug"}']
    packer = ParsedLines(parsers["json"])
    data = packer.pack(lines, NOW)
    entries = packer.entries(lines, NOW)
    assert entries is not None
    run = FilterChain({"bad": Bad()})
    assert run.run_entries(["bad"], "t", entries, 2, lambda: packer.pack(lines, NOW)) == (data, 2)


# ---------------------------------------------------------------- generated lines

_texts = st.text(
    alphabet=st.characters(codec=None, exclude_categories=()),  # surrogates included
    max_size=12,
)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | _texts
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_texts, inner, max_size=3),
    max_leaves=8,
)
_keys = st.sampled_from(["level", "msg", "log", "time", "t", "n", "f", "b"]) | _texts


def _json_line(obj: dict[str, Any], ascii_only: bool) -> bytes:
    text = json.dumps(obj, ensure_ascii=ascii_only)
    return text.encode("utf-8", "surrogatepass")


_objects = st.dictionaries(_keys, _values | st.sampled_from(["info", "debug"]), max_size=5)
_json_lines = st.builds(_json_line, _objects, st.booleans())
_raw_lines = st.binary(max_size=40)
#: pieces that make escapes meet bytes that are not UTF-8
_pieces = st.sampled_from(
    [
        b"\\",
        b"\\u",
        b"\\udcc3",
        b"\\udca9",
        b"\\uDC80",
        b"\\ud83d",
        b"\\ude00",
        b"\xc3",
        b"\xa9",
        b"\xff",
        b"\\n",
        b"\\x41",
        b'"',
        b"{",
        b"}",
        b":",
        b",",
        b" ",
        b"=",
        b"\t",
        b"a",
        b"msg",
    ]
)
_spliced = st.lists(_pieces, max_size=16).map(b"".join)
_json_spliced = st.builds(
    lambda a, b: b'{"msg":"' + a + b'","log":"' + b + b'","level":"info"}', _spliced, _spliced
)
_lines = st.lists(_json_lines | _raw_lines | _spliced | _json_spliced, min_size=1, max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=_lines,
    name=st.sampled_from(
        [
            "json",
            "json_decoded",
            "json_time",
            "json_epoch",
            "logfmt",
            "kv",
            "tsv",
            "decoders",
            "decoders_utf8",
            "apache2",
            "local_regex",
        ]
    ),
)
def test_generated_lines(parsers: dict[str, Any], lines: list[bytes], name: str) -> None:
    check(parsers[name], [line.replace(b"\n", b" ") for line in lines])


def test_escaped_surrogates_next_to_raw_bytes(parsers: dict[str, Any]) -> None:
    # text that packing and decoding change: '\\udcc3\\udca9' is packed as the bytes
    # C3 A9 (surrogateescape), which decode as 'é'; the bytes path's filters saw 'é'
    lines = [b'{"msg":"\\udcc3\\udca9","level":"info"}', b'{"msg":"\xc3\\\\\xa9"}']
    check(parsers["json"], lines)
    check(parsers["json_decoded"], lines)
    check(parsers["decoders"], [b"{} \xc3\\\xa9 'q' rest"])

"""[MULTILINE_PARSER] sections loaded through load_config -> parsers, and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaybit.codec.msgpack import EventTime
from relaybit.config.loader import load_config
from relaybit.errors import ConfigError
from relaybit.multiline import MultilineStream, build_multiline_parsers, lookup_multiline
from relaybit.multiline.rules import split_rule_line
from relaybit.parsers import BUILTIN_PARSERS, build_parsers, with_builtins

T0 = EventTime(1_700_000_000, 0)

CONF = """\
[SERVICE]
    parsers_file parsers.conf

[INPUT]
    name tail
    path /tmp/x.log
    multiline.parser multiline-regex-test
"""

PARSERS = """\
[MULTILINE_PARSER]
    name          multiline-regex-test
    type          regex
    flush_timeout 1000
    rule      "start_state"   "/([a-zA-Z]+ \\d+ \\d+\\:\\d+\\:\\d+)(.*)/"  "cont"
    rule      "cont"          "/^\\s+at.*/"                               "cont"
"""


def load(tmp_path: Path, parsers: str) -> dict[str, object]:
    (tmp_path / "parsers.conf").write_text(parsers)
    (tmp_path / "agent.conf").write_text(CONF)
    config = load_config(tmp_path / "agent.conf")
    return dict(
        build_multiline_parsers(
            config.multiline_parsers, with_builtins(build_parsers(config.parsers))
        )
    )


def test_custom_regex_parser_joins_like_the_fluent_bit_docs_example(tmp_path: Path) -> None:
    defined = load(tmp_path, PARSERS)
    (ml,) = lookup_multiline("multiline-regex-test", defined, origin=None, section="s")  # type: ignore[arg-type]
    assert ml.flush_timeout == 1.0
    stream = MultilineStream([ml])
    lines = [
        "single line...",
        "Dec 14 06:41:08 Exception in thread main java.lang.RuntimeException: wrong!",
        "    at com.myproject.module.MyProject.badMethod(MyProject.java:22)",
        "    at com.myproject.module.MyProject.main(MyProject.java:6)",
        "another line...",
    ]
    out = []
    for line in lines:
        out.extend(stream.feed(line, T0, 0.0))
    out.extend(stream.flush())
    assert [r["log"] for _, r in out] == [
        "single line...\n",
        "\n".join(lines[1:4]) + "\n",
        "another line...\n",
    ]


def test_parser_and_key_content_join_a_parsed_field(tmp_path: Path) -> None:
    text = """\
[PARSER]
    name   tagged
    format regex
    regex  ^(?<level>[A-Z]+) (?<msg>.*)$

[MULTILINE_PARSER]
    name        by-level
    type        regex
    parser      tagged
    key_content msg
    rule "start_state" "/^start/" "cont"
    rule "cont"        "/^more/"  "cont"
"""
    defined = load(tmp_path, text)
    stream = MultilineStream(lookup_multiline("by-level", defined, origin=None, section="s"))  # type: ignore[arg-type]
    out = []
    for line in ["ERROR start here", "DEBUG more a", "DEBUG more b", "INFO other"]:
        out.extend(stream.feed(line, T0, 0.0))
    out.extend(stream.flush())
    assert [r for _, r in out] == [
        {"level": "ERROR", "msg": "start here\nmore a\nmore b"},
        {"msg": "INFO other"},
    ]


def test_user_section_wins_over_a_builtin_of_the_same_name(tmp_path: Path) -> None:
    defined = load(tmp_path, PARSERS.replace("multiline-regex-test", "java"))
    (ml,) = lookup_multiline("java", defined, origin=None, section="s")  # type: ignore[arg-type]
    assert ml.flush_timeout == 1.0


@pytest.mark.parametrize(
    ("body", "line", "needle"),
    [
        (
            '    rule "start_state" "/(unclosed/" "cont"\n    rule "cont" "/x/" "cont"\n',
            4,
            "invalid rule",
        ),
        ('    rule "cont" "/x/" "cont"\n', 4, "no rule starts from 'start_state'"),
        ('    rule "start_state" "/x/" "nowhere"\n', 4, "to_state 'nowhere'"),
        ('    rule "start_state" "/x/"\n', 4, "expected 3 quoted parts"),
        ("", 1, "at least one 'rule'"),
    ],
)
def test_bad_rules_are_config_errors_with_file_and_line(
    tmp_path: Path, body: str, line: int, needle: str
) -> None:
    text = "[MULTILINE_PARSER]\n    name ml\n    type regex\n" + body
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    message = str(info.value)
    assert needle in message
    assert f"parsers.conf:{line}:" in message
    assert "[MULTILINE_PARSER] ml" in message


def test_unknown_type_parser_and_missing_key_content(tmp_path: Path) -> None:
    text = '[MULTILINE_PARSER]\n    name a\n    type regexp\n\n[MULTILINE_PARSER]\n    name b\n    type regex\n    parser nope\n    rule "start_state" "/x/" "start_state"\n'
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    message = str(info.value)
    assert "parsers.conf:3:" in message and "expected one of regex" in message
    assert "parsers.conf:8:" in message and "no parser named 'nope'" in message
    assert "'parser' needs 'key_content'" in message


def test_unknown_multiline_parser_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown multiline parser 'jav'.*known: cri, docker"):
        lookup_multiline("docker, jav", {}, origin=None, section="[INPUT] tail")


def test_rule_line_tokens() -> None:
    assert split_rule_line('"a, b"  "/x y\\"z/" c') == ["a, b", '/x y"z/', "c"]


def test_builtin_parsers_map_is_unchanged() -> None:
    assert "docker" in BUILTIN_PARSERS  # the [PARSER] built-ins are a separate namespace

"""The classic reader: sections, indentation, comments, @INCLUDE, @SET, ${VAR}."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaybit.config.classic import parse_classic, read_classic
from relaybit.config.env import Env
from relaybit.errors import ConfigError


def test_sections_keys_values_and_origins(write):
    path = write(
        "a.conf",
        """
        # a comment
        [SERVICE]
            Flush     5
            Log_Level debug

        [filter]
            Name   modify
            Match  *
            Add    a value with spaces
            # an indented comment
            Add    b 2
            Regex  ^(?<x>[^#]*)$  # not a comment
        """,
    )
    service, filt = read_classic(path)
    assert service.kind == "service"
    assert [(p.key, p.value) for p in service.properties] == [
        ("flush", "5"),
        ("log_level", "debug"),
    ]
    assert filt.kind == "filter"
    assert filt.get_all("add") == ["a value with spaces", "b 2"]
    assert filt.get("regex") == "^(?<x>[^#]*)$  # not a comment"
    assert filt.properties[0].origin.path == str(path)
    assert filt.properties[0].origin.line == 7
    assert filt.origin is not None and filt.origin.line == 6


def test_every_section_kind_is_accepted_case_insensitively(tmp_path):
    kinds = [
        "SERVICE",
        "Input",
        "filter",
        "OUTPUT",
        "PARSER",
        "multiline_parser",
        "UPSTREAM",
        "Node",
    ]
    text = "".join(f"[{k}]\n    name x\n" for k in kinds)
    sections = parse_classic(text, str(tmp_path / "x.conf"))
    assert [s.kind for s in sections] == [k.lower() for k in kinds]


def test_unknown_section_is_an_error_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"x.conf:2: unknown section \[OUTPUTS\]"):
        parse_classic("\n[OUTPUTS]\n    name x\n", str(tmp_path / "x.conf"))


def test_key_longer_than_32_characters_works(tmp_path):
    key = "a_very_long_configuration_key_that_is_longer_than_32"
    (section,) = parse_classic(f"[OUTPUT]\n    {key} yes\n", str(tmp_path / "x.conf"))
    assert section.get(key) == "yes"
    assert len(key) > 32


def test_tabs_indentation_and_crlf(tmp_path):
    (section,) = parse_classic("[INPUT]\r\n\tname\tdummy\r\n\ttag\tx\r\n", "x.conf")
    assert section.get("name") == "dummy"
    assert section.get("tag") == "x"


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("[INPUT]\nname dummy\n", 2, "expected an indented 'key value' line"),
        ("    name dummy\n", 1, "outside of any section"),
        ("[INPUT]\n    name dummy\n  tag x\n", 3, "inconsistent indentation"),
        ("[INPUT]\n    name dummy\n\ttag x\n", 3, "inconsistent indentation"),
        ("  [INPUT]\n", 1, "must not be indented"),
        ("[INPUT\n", 1, "no closing ']'"),
        ("[INPUT]\n    name\n", 2, "'name': has no value"),
        ("@SET novalue\n", 1, "expected '@SET name=value'"),
        ("@UNKNOWN x\n", 1, "unknown command"),
    ],
)
def test_bad_structure_is_an_error_at_its_line(tmp_path, text, line, needle):
    with pytest.raises(ConfigError) as info:
        parse_classic(text, "bad.conf")
    assert f"bad.conf:{line}:" in str(info.value)
    assert needle in str(info.value)


def test_set_and_environment_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("RB_TEST_HOST", "10.0.0.1")
    text = "@SET port=24224\n[OUTPUT]\n    host ${RB_TEST_HOST}\n    port ${port}\n"
    (section,) = parse_classic(text, "x.conf")
    assert section.get("host") == "10.0.0.1"
    assert section.get("port") == "24224"


def test_set_value_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("RB_TEST_V", "env")
    (section,) = parse_classic("@SET RB_TEST_V=set\n[INPUT]\n    tag ${RB_TEST_V}\n", "x.conf")
    assert section.get("tag") == "set"


def test_unset_variable_is_an_error_at_its_line(monkeypatch):
    monkeypatch.delenv("RB_TEST_UNSET", raising=False)
    text = "[NODE]\n    name n\n    port ${RB_TEST_UNSET}\n"
    with pytest.raises(ConfigError) as info:
        parse_classic(text, "up.conf")
    message = str(info.value)
    assert message.startswith("up.conf:3: [NODE] 'port':")
    assert "RB_TEST_UNSET" in message and "not set" in message


def test_include_glob_relative_to_including_file(data_dir: Path):
    sections = read_classic(data_dir / "include" / "main.conf")
    assert [s.kind for s in sections] == ["service", "input", "output"]
    assert sections[1].get("tag") == "app.one"  # @SET of the including file
    assert sections[2].get("match") == "app.*"
    origin = sections[1].properties[0].origin
    assert origin.path.endswith("10-input.conf") and origin.line == 2


def test_include_cycle_is_an_error_naming_the_chain(data_dir: Path):
    with pytest.raises(ConfigError) as info:
        read_classic(data_dir / "cycle" / "a.conf")
    message = str(info.value)
    assert "include cycle" in message
    assert "a.conf -> " in message and "b.conf -> " in message
    assert "b.conf:1:" in message


def test_include_of_a_missing_file_names_the_line(write):
    path = write("main.conf", "[SERVICE]\n    flush 1\n@INCLUDE missing.conf\n")
    with pytest.raises(ConfigError, match=r"main.conf:3: file .*missing.conf' does not exist"):
        read_classic(path)


def test_glob_matching_nothing_includes_nothing(write):
    path = write("main.conf", "@INCLUDE conf.d/*.conf\n[SERVICE]\n    flush 1\n")
    assert [s.kind for s in read_classic(path)] == ["service"]


def test_missing_file_directory_and_non_utf8(tmp_path):
    with pytest.raises(ConfigError, match="does not exist") as info:
        read_classic(tmp_path / "nope.conf")
    assert str(tmp_path / "nope.conf") in str(info.value)
    with pytest.raises(ConfigError, match="is a directory"):
        read_classic(tmp_path)
    bad = tmp_path / "latin1.conf"
    bad.write_bytes(b"[INPUT]\n    name caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin1.conf:2: file is not valid UTF-8"):
        read_classic(bad)


def test_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "secret.conf"
    path.write_text("[INPUT]\n    name x\n")

    def deny(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    # chmod 0 does not stop root (tests may run as root): simulate the refusal
    monkeypatch.setattr(Path, "read_bytes", deny)
    with pytest.raises(ConfigError, match=r"secret\.conf' is not readable"):
        read_classic(path)


def test_env_can_be_shared_and_injected():
    env = Env({"FROM_ENV": "yes"})
    (section,) = parse_classic("[INPUT]\n    tag ${FROM_ENV}\n", "x.conf", env)
    assert section.get("tag") == "yes"


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("@INCLUDE a\x00b", "NUL character"),
        ("@INCLUDE /dev/zero", "is not a regular file"),
    ],
)
def test_hostile_includes_are_config_errors(line, needle):
    with pytest.raises(ConfigError, match=needle):
        parse_classic(line + "\n", "x.conf")

"""The YAML reader: raw scalars, lines, repeated values, env, includes, errors."""

from __future__ import annotations

import pytest

from relaybit.config.classic import read_classic
from relaybit.config.yaml import is_yaml_path, parse_yaml, read_yaml
from relaybit.errors import ConfigError


def test_scalars_stay_raw_text_with_their_lines():
    text = "service:\n  http_server: on\n  flush: 1.50\n  port: 043000\n  x: 'quoted'\n"
    (service,) = parse_yaml(text, "a.yaml")
    values = [(p.key, p.value, p.origin.line) for p in service.properties]
    assert values == [
        ("http_server", "on", 2),
        ("flush", "1.50", 3),
        ("port", "043000", 4),
        ("x", "quoted", 5),
    ]


def test_pipeline_sections_and_repeated_values():
    text = """
pipeline:
  inputs:
    - name: dummy
      Tag: app
  filters:
    - name: modify
      match: "*"
      add: [a b, c d]
  outputs:
    - name: stdout
      match: app.*
"""
    sections = parse_yaml(text, "p.yaml")
    assert [s.kind for s in sections] == ["input", "filter", "output"]
    assert sections[0].get("tag") == "app"  # keys lowercased
    assert sections[1].get_all("add") == ["a b", "c d"]


def test_env_and_includes(write):
    write(
        "conf.d/out.yaml", "pipeline:\n  outputs:\n    - name: stdout\n      match: ${prefix}.*\n"
    )
    main = write(
        "main.yaml",
        """
        env:
          prefix: app
        includes:
          - conf.d/*.yaml
        service:
          flush: 2
        """,
    )
    sections = read_yaml(main)
    assert [s.kind for s in sections] == ["output", "service"]
    assert sections[0].get("match") == "app.*"


def test_include_cycle(write):
    write("b.yaml", "includes: [a.yaml]\n")
    a = write("a.yaml", "includes: [b.yaml]\n")
    with pytest.raises(ConfigError, match=r"include cycle: .*a.yaml -> .*b.yaml -> .*a.yaml"):
        read_yaml(a)


def test_multiline_rules_become_classic_rule_lines():
    text = """
multiline_parsers:
  - name: ml
    type: regex
    rules:
      - state: start_state
        regex: '/^\\d/'
        next_state: cont
"""
    (section,) = parse_yaml(text, "m.yaml")
    assert section.kind == "multiline_parser"
    assert section.get("rule") == '"start_state" "/^\\d/" "cont"'


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("service:\n  flush: [1\n", 3, "invalid YAML"),
        ("service: [1, 2]\n", 1, "service must be a mapping"),
        ("pipeline:\n  input: []\n", 2, "did you mean 'inputs'?"),
        ("servce:\n  flush: 1\n", 1, "did you mean 'service'?"),
        ("service:\n  flush:\n", 2, "'flush': has no value"),
        (
            "pipeline:\n  filters:\n    - name: x\n      processors:\n        logs: []\n",
            5,
            "processors belong under an input or an output",
        ),
        ("service:\n  port: ${RB_TEST_UNSET_Y}\n", 2, "not set"),
    ],
)
def test_errors_have_file_and_line(text, line, needle, monkeypatch):
    monkeypatch.delenv("RB_TEST_UNSET_Y", raising=False)
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "bad.yaml")
    assert f"bad.yaml:{line}:" in str(info.value)
    assert needle in str(info.value)


def test_empty_document_has_no_sections():
    assert parse_yaml("", "e.yaml") == []
    assert parse_yaml("# only a comment\n", "e.yaml") == []


def test_yaml_and_classic_examples_give_the_same_sections(repo_root):
    ex = repo_root / "examples"
    assert read_yaml(ex / "upstream.yaml") == read_classic(ex / "upstream.conf")


def test_is_yaml_path():
    assert is_yaml_path("a.yaml") and is_yaml_path("A.YML")
    assert not is_yaml_path("a.conf")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "service:\n  flush: 1\n  log_level: info\n  flush: 5\n",
            "dup.yaml:4: service 'flush': given twice (lines 2 and 4)",
        ),
        (
            "pipeline:\n  outputs:\n    - name: stdout\n      match: '*'\n      Match: app\n",
            "dup.yaml:5: [OUTPUT] 'Match': given twice (lines 4 and 5)",
        ),
        (
            "service:\n  flush: 1\npipeline:\n  inputs: []\nservice:\n  grace: 2\n",
            "dup.yaml:5: 'service': given twice (lines 1 and 5)",
        ),
        (
            "upstream_servers:\n  - name: up\n    nodes:\n      - name: n1\n        host: a\n"
            "        host: b\n",
            "dup.yaml:6: [NODE] 'host': given twice (lines 5 and 6)",
        ),
    ],
)
def test_a_key_given_twice_in_one_mapping_names_both_lines(text, expected):
    # PyYAML keeps the last value silently; a YAML list is the way to give several
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "dup.yaml")
    assert str(info.value).startswith(expected)
    assert "write several values as a list" in str(info.value)


def test_env_names_differing_in_case_are_two_variables():
    sections = parse_yaml(
        "env:\n  level: debug\n  LEVEL: info\nservice:\n  log_level: ${level}\n", "e.yaml"
    )
    (service,) = sections
    assert service.get("log_level") == "debug"


def test_the_same_key_in_two_plugins_is_no_duplicate():
    sections = parse_yaml(
        "pipeline:\n  inputs:\n    - name: dummy\n      tag: a\n    - name: dummy\n      tag: b\n",
        "ok.yaml",
    )
    assert [s.get("tag") for s in sections] == ["a", "b"]

"""YAML `routes:` on inputs (Fluent Bit 5 conditional routing): parsed, or refused with file:line."""

from pathlib import Path

import pytest

from relaybit.config.loader import load_config
from relaybit.config.routes import InputRoute, RouteCondition, RouteOutput, RouteRule
from relaybit.errors import ConfigError, ConfigErrors

HEAD = """\
pipeline:
  inputs:
    - name: dummy
      tag: app
      routes:
        logs:
"""
TAIL = """\
  outputs:
    - name: stdout
      alias: errors_out
    - name: null
      alias: rest_out
"""


def load(tmp_path: Path, routes: str) -> tuple[InputRoute, ...]:
    path = tmp_path / "agent.yaml"
    path.write_text(HEAD + routes + TAIL)
    return load_config(path).inputs[0].routes


def error_of(tmp_path: Path, routes: str) -> ConfigError:
    with pytest.raises((ConfigError, ConfigErrors)) as info:
        load(tmp_path, routes)
    exc = info.value
    return exc.errors[0] if isinstance(exc, ConfigErrors) else exc


def test_routes_parse_to_typed_values(tmp_path: Path) -> None:
    routes = load(
        tmp_path,
        """\
          - name: errors
            condition:
              op: or
              rules:
                - field: $level
                  op: eq
                  value: error
                - {field: $code, op: in, value: [500, 503]}
                - {field: $src, op: regex, value: "^k8s", context: metadata}
            to:
              outputs:
                - errors_out
          - name: rest
            condition:
              default: true
            to:
              outputs: [{name: missing, fallback: rest_out}]
          - name: all
            to: [rest_out]
""",
    )
    assert routes == (
        InputRoute(
            name="errors",
            outputs=(RouteOutput(name="errors_out"),),
            condition=RouteCondition(
                op="or",
                rules=(
                    RouteRule(field="$level", op="eq", value="error"),
                    RouteRule(field="$code", op="in", values=("500", "503")),
                    RouteRule(field="$src", op="regex", value="^k8s", context="metadata"),
                ),
            ),
        ),
        InputRoute(
            name="rest",
            outputs=(RouteOutput(name="missing", fallback="rest_out"),),
            condition=RouteCondition(default=True),
        ),
        InputRoute(name="all", outputs=(RouteOutput(name="rest_out"),)),
    )
    assert routes[0].origin is not None and routes[0].origin.line == 7


@pytest.mark.parametrize(
    ("routes", "message", "line"),
    [
        (
            "          - name: a\n            condition: {rules: [{field: $x, op: like, value: 1}]}\n"
            "            to: [errors_out]\n",
            "unknown rule op 'like'",
            8,
        ),
        (
            "          - name: a\n            condition: {rules: [{field: $x, op: gt, value: abc}]}\n"
            "            to: [errors_out]\n",
            "needs a number",
            8,
        ),
        (
            "          - name: a\n            condition: {rules: [{field: $x, op: regex, value: '('}]}\n"
            "            to: [errors_out]\n",
            "invalid regex",
            8,
        ),
        (
            "          - name: a\n            condition: {rules: [{field: $x, op: in, value: a}]}\n"
            "            to: [errors_out]\n",
            "needs 'value' as a list",
            8,
        ),
        (
            "          - name: a\n            condition: {op: xor, rules: []}\n            to: [x]\n",
            "must be 'and' or 'or'",
            8,
        ),
        ("          - name: a\n            condition: {}\n            to: [x]\n", "needs rules", 8),
        ("          - name: a\n            to: {}\n", "'to' needs 'outputs'", 8),
        ("          - to: [x]\n", "a route needs 'name'", 7),
        (
            "          - {name: a, to: [x]}\n          - {name: a, to: [x]}\n",
            "used twice (lines 7 and 8)",
            8,
        ),
        ("          - {name: a, to: [x], condtion: {}}\n", "did you mean 'condition'", 7),
    ],
)
def test_bad_routes_are_refused_with_their_line(
    tmp_path: Path, routes: str, message: str, line: int
) -> None:
    exc = error_of(tmp_path, routes)
    assert message in str(exc)
    assert exc.origin is not None and exc.origin.line == line


def test_metrics_and_traces_routes_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(HEAD.replace("logs:", "metrics:") + "          - {name: a, to: [x]}\n" + TAIL)
    with pytest.raises((ConfigError, ConfigErrors), match="logs only"):
        load_config(path)

"""Upstream files: the examples, and every error Fluent Bit crashes or guesses on."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from relaybit.errors import ConfigError, ConfigErrors
from relaybit.upstream.node import TLSSettings
from relaybit.upstream.spec import load_upstream_file

NODE_1 = "[NODE]\n    name node-1\n    host 127.0.0.1\n    port 24224\n"
HEAD = "[UPSTREAM]\n    name up\n\n"
DATA = Path(__file__).resolve().parent.parent / "data" / "configs"


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write


@pytest.fixture
def data_dir() -> Path:
    return DATA


def _errors(path) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        load_upstream_file(path)
    return [ConfigError.__str__(e) for e in info.value.errors]


def test_examples_load_to_equal_specs(repo_root):
    classic = load_upstream_file(repo_root / "examples" / "upstream.conf")
    yaml = load_upstream_file(repo_root / "examples" / "upstream.yaml")
    assert classic == yaml
    assert classic.name == "forward-balancing"
    assert [n.name for n in classic.nodes] == ["node-1", "node-2", "node-3"]
    assert [n.port for n in classic.nodes] == [43000, 44000, 45000]
    node3 = classic.nodes[2]
    assert node3.tls == TLSSettings(enabled=True, verify=False)
    assert node3.extra["shared_key"].value == "secret"
    assert set(node3.properties) == {"name", "host", "port", "tls", "tls.verify", "shared_key"}
    assert classic.nodes[0].tls.verify is True  # default on
    assert "secret" not in repr(classic)
    assert node3.origin is not None and node3.origin.line == 14


def test_plugin_keys_are_kept_lowercased_and_booleans_any_case(write):
    path = write(
        "up.conf",
        HEAD + "[NODE]\n    name n\n    host h\n    port 1\n    TLS YES\n    TLS.Verify False\n"
        "    Shared_Key s3\n    a_key_much_longer_than_thirty_two_characters_ok v\n",
    )
    (node,) = load_upstream_file(path).nodes
    assert node.tls.enabled is True and node.tls.verify is False
    assert set(node.extra) == {"shared_key", "a_key_much_longer_than_thirty_two_characters_ok"}


def test_port_abc_names_file_line_section_and_key(data_dir):
    path = data_dir / "bad_port.conf"
    (error,) = _errors(path)
    assert error == (f"{path}:12: [NODE] node-2 'port': expected a port number 1..65535, got 'abc'")


@pytest.mark.parametrize("port", ["0", "70000", "-1", "1.5", "abc"])
def test_bad_ports(write, port):
    path = write("up.conf", HEAD + f"[NODE]\n    name n\n    host h\n    port {port}\n")
    (error,) = _errors(path)
    assert f"up.conf:7: [NODE] n 'port': expected a port number 1..65535, got '{port}'" in error


def test_port_from_unset_variable(write, monkeypatch):
    monkeypatch.delenv("RB_UNSET_PORT", raising=False)
    path = write("up.conf", HEAD + "[NODE]\n    name n\n    host h\n    port ${RB_UNSET_PORT}\n")
    with pytest.raises(ConfigError) as info:
        load_upstream_file(path)
    message = str(info.value)
    assert "up.conf:7: [NODE] 'port':" in message and "RB_UNSET_PORT" in message


def test_port_from_set_variable(write, monkeypatch):
    monkeypatch.setenv("RB_SET_PORT", "24225")
    path = write("up.conf", HEAD + "[NODE]\n    name n\n    host h\n    port ${RB_SET_PORT}\n")
    assert load_upstream_file(path).nodes[0].port == 24225


def test_second_upstream_names_both_lines(write):
    path = write("up.conf", HEAD + NODE_1 + "\n[UPSTREAM]\n    name other\n")
    (error,) = _errors(path)
    assert "up.conf:9: [UPSTREAM]" in error
    assert "second [UPSTREAM]" in error and "first is at line 1" in error


def test_second_yaml_upstream_server(write):
    path = write(
        "up.yaml",
        """
        upstream_servers:
          - name: a
            nodes: [{name: n, host: h, port: 1}]
          - name: b
            nodes: [{name: m, host: h, port: 2}]
        """,
    )
    (error,) = _errors(path)
    assert "up.yaml:4: [UPSTREAM]" in error and "second entry of upstream_servers" in error
    assert "first is at line 2" in error


def test_yaml_without_upstream_servers(write):
    path = write("up.yaml", "service:\n  flush: 1\n")
    errors = _errors(path)
    assert any("no 'upstream_servers'" in e and "up.yaml" in e for e in errors)


def test_no_upstream_section(write):
    path = write("up.conf", NODE_1)
    errors = _errors(path)
    assert errors == [f"{path}: no [UPSTREAM] section; expected one [UPSTREAM] with a name"]


def test_upstream_without_name(write):
    path = write("up.conf", "[UPSTREAM]\n    balance round_robin\n" + NODE_1)
    (error,) = _errors(path)
    assert "up.conf:1: [UPSTREAM] missing mandatory key 'name'" in error


def test_no_nodes(write):
    path = write("up.conf", HEAD)
    (error,) = _errors(path)
    assert "up.conf:1:" in error and "no [NODE] section" in error


@pytest.mark.parametrize("missing", ["name", "host", "port"])
def test_node_missing_mandatory_key(write, missing):
    lines = {"name": "    name n\n", "host": "    host h\n", "port": "    port 1\n"}
    body = "".join(v for k, v in lines.items() if k != missing)
    path = write("up.conf", HEAD + "[NODE]\n" + body)
    errors = _errors(path)
    assert any(
        "up.conf:4: [NODE]" in e and f"missing mandatory key '{missing}'" in e for e in errors
    )


def test_duplicate_node_names(write):
    path = write("up.conf", HEAD + NODE_1 + "\n" + NODE_1)
    (error,) = _errors(path)
    assert error.startswith(f"{path}:10: [NODE] node-1 'name': duplicate node name 'node-1'")
    assert "first defined at line 4" in error


def test_key_twice_in_a_node(write):
    path = write("up.conf", HEAD + NODE_1 + "    port 24225\n")
    (error,) = _errors(path)
    assert "up.conf:8: [NODE] node-1 'port': set twice (first at line 7)" in error


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("tls_verify", "tls.verify"),
        ("weigth", "weight"),
        ("tls.verify_host", "tls.verify_hostname"),
        ("Hosts", "host"),
    ],
)
def test_near_miss_of_a_known_node_key(write, key, hint):
    path = write("up.conf", HEAD + NODE_1 + f"    {key} off\n")
    (error,) = _errors(path)
    assert (
        f"up.conf:8: [NODE] node-1 unknown node key '{key.lower()}'; did you mean '{hint}'?"
        in error
    )


def test_unknown_upstream_key_gets_did_you_mean(write):
    path = write("up.conf", "[UPSTREAM]\n    name up\n    balanse weighted\n\n" + NODE_1)
    (error,) = _errors(path)
    assert "up.conf:3: [UPSTREAM]" in error and "did you mean 'balance'?" in error


def test_upstream_settings_are_typed(write):
    path = write(
        "up.conf",
        "[UPSTREAM]\n    name up\n    balance Weighted\n    fail_timeout 30s\n\n" + NODE_1,
    )
    settings = load_upstream_file(path).settings
    assert settings.balance == "weighted" and settings.fail_timeout == 30.0


def test_errors_are_all_collected(write):
    path = write(
        "up.conf",
        HEAD + "[NODE]\n    name a\n    host h\n    port abc\n\n[NODE]\n    name b\n    port 1\n",
    )
    errors = _errors(path)
    assert len(errors) == 2
    assert "'port': expected a port number" in errors[0]
    assert "[NODE] b" in errors[1] and "missing mandatory key 'host'" in errors[1]


def test_other_sections_are_rejected(write):
    path = write("up.conf", HEAD + NODE_1 + "[INPUT]\n    name dummy\n")
    (error,) = _errors(path)
    assert "up.conf:8:" in error and "found [INPUT]" in error


def test_missing_non_utf8_and_directory(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_upstream_file(tmp_path / "none.conf")
    with pytest.raises(ConfigError, match="is a directory"):
        load_upstream_file(tmp_path)
    bad = tmp_path / "bad.conf"
    bad.write_bytes(b"[UPSTREAM]\n    name \xff\n")
    with pytest.raises(ConfigError, match=r"bad\.conf:2: file is not valid UTF-8"):
        load_upstream_file(bad)

"""load_config and validate: the model, upstream files, parsers, collected errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaybit.agent import validate
from relaybit.config.loader import (
    check_keys,
    full_configmap,
    load_config,
    load_plugin,
    service_settings,
)
from relaybit.config.model import AgentConfig, PluginInstance
from relaybit.config.origin import Origin
from relaybit.config.schema import ConfigMap, Option, RawProperty
from relaybit.errors import ConfigError, ConfigErrors
from relaybit.plugins.base import OUTPUT_COMMON
from relaybit.upstream.node import NET_OPTIONS, TLS_OPTIONS

UPSTREAM = """
[UPSTREAM]
    name  up

[NODE]
    name  n1
    host  127.0.0.1
    port  9200
    {extra}
"""


def _messages(exc: ConfigError) -> list[str]:
    errors = exc.errors if isinstance(exc, ConfigErrors) else [exc]
    return [ConfigError.__str__(e) for e in errors]


def test_agent_examples_load_to_equal_configs(repo_root: Path):
    classic = load_config(repo_root / "examples" / "agent.conf")
    yaml = load_config(repo_root / "examples" / "agent.yaml")
    assert classic == yaml
    assert isinstance(classic, AgentConfig)
    (out,) = classic.outputs
    assert out.plugin == "forward"
    assert out.get("upstream") is None  # moved into .upstream
    assert out.upstream is not None and out.upstream.name == "forward-balancing"
    assert out.upstream.path.endswith("upstream.conf")
    assert [(p.key, p.value) for p in classic.service][:2] == [
        ("flush", "1"),
        ("log_level", "info"),
    ]
    (inp,) = classic.inputs
    assert inp.plugin == "dummy" and inp.get("rate") == "100"
    assert inp.origin == Origin(str(repo_root / "examples" / "agent.conf"), 11)


def test_upstream_resolves_against_the_main_file_directory(write, tmp_path):
    write("up/upstream.conf", UPSTREAM.format(extra=""))
    write("conf.d/out.conf", "[OUTPUT]\n    name http\n    upstream up/upstream.conf\n")
    main = write("main.conf", "@INCLUDE conf.d/out.conf\n")
    (out,) = load_config(main).outputs
    assert out.upstream is not None and out.upstream.nodes[0].port == 9200


def test_missing_upstream_file_names_the_key(write):
    main = write("main.conf", "[OUTPUT]\n    name http\n    upstream nope.conf\n")
    with pytest.raises(ConfigErrors) as info:
        load_config(main)
    (message,) = _messages(info.value)
    assert "main.conf:3: [OUTPUT] http 'upstream': upstream file" in message
    assert "does not exist" in message


def test_upstream_errors_are_reported_with_the_upstream_file(write):
    write("upstream.conf", UPSTREAM.format(extra="tls_verify off"))
    main = write("main.conf", "[OUTPUT]\n    name http\n    upstream upstream.conf\n")
    with pytest.raises(ConfigErrors) as info:
        load_config(main)
    (message,) = _messages(info.value)
    assert "upstream.conf:8: [NODE] n1" in message and "did you mean 'tls.verify'?" in message


def test_upstream_and_node_in_main_file_are_errors(write):
    main = write("main.conf", UPSTREAM.format(extra=""))
    with pytest.raises(ConfigErrors) as info:
        load_config(main)
    assert "belongs in an upstream file" in _messages(info.value)[0]


def test_instance_without_name(write):
    main = write("main.conf", "[INPUT]\n    tag x\n")
    with pytest.raises(ConfigErrors, match=r"main\.conf:1: \[INPUT\] missing mandatory key 'name'"):
        load_config(main)


def test_parsers_files_resolve_against_main_dir(write):
    write(
        "parsers/p.conf",
        "[PARSER]\n    name json\n    format json\n[MULTILINE_PARSER]\n    name ml\n"
        '    rule "start_state" "/x/" "cont"\n',
    )
    main = write(
        "main.conf", "[SERVICE]\n    parsers_file parsers/p.conf\n[PARSER]\n    name inline\n"
    )
    config = load_config(main)
    assert [p.get("name") for p in config.parsers] == ["inline", "json"]
    assert [p.get("name") for p in config.multiline_parsers] == ["ml"]


def test_parsers_file_missing_or_with_other_sections(write):
    write("p.conf", "[INPUT]\n    name dummy\n")
    main = write("main.conf", "[SERVICE]\n    parsers_file nope.conf\n    parsers_file p.conf\n")
    with pytest.raises(ConfigErrors) as info:
        load_config(main)
    first, second = _messages(info.value)
    assert "main.conf:2: [SERVICE] 'parsers_file': parsers file" in first
    assert "p.conf:1:" in second and "found [INPUT]" in second


def test_validate_collects_every_error(write):
    main = write(
        "main.conf",
        """
        [SERVICE]
            flush     soon
            log_level loud
            flsh      1

        [INPUT]
            name  tial

        [INPUT]
            name  http
            prot  9880

        [OUTPUT]
            name   stdout
            match  *
            format yaml
        """,
    )
    with pytest.raises(ConfigErrors) as info:
        validate(load_config(main))
    messages = _messages(info.value)
    assert len(messages) == 5  # 'flsh' in [SERVICE]: a warning, as Fluent Bit ignores it
    joined = "\n".join(messages)
    assert "main.conf:2: [SERVICE] 'flush': expected a duration" in joined
    assert "main.conf:3: [SERVICE] 'log_level': expected one of off, error, warn" in joined
    assert "flsh" not in joined
    assert "main.conf:7: [INPUT] unknown input plugin 'tial'; did you mean 'tail'?" in joined
    assert (
        "main.conf:11: [INPUT] http unknown configuration property 'prot'; did you mean 'port'?"
        in joined
    )
    assert "main.conf:16: [OUTPUT] stdout 'format': expected one of msgpack" in joined


def test_unimportable_plugin_is_reported_not_raised(monkeypatch):
    from relaybit.plugins import registry

    monkeypatch.setitem(registry.BUILTIN["output"], "broken", "relaybit.no_such_module:Nothing")
    with pytest.raises(ConfigError, match="plugin 'broken' is not available"):
        load_plugin("output", "broken")


def test_node_plugin_keys_must_be_per_node_options_of_the_output(write):
    write("ok.conf", UPSTREAM.format(extra="http_user alice\n    http_passwd pw"))
    write("bad.conf", UPSTREAM.format(extra="shared_key s\n    http_usr bob"))
    main = write(
        "main.conf",
        "[OUTPUT]\n    name http\n    upstream ok.conf\n[OUTPUT]\n    name http\n    upstream bad.conf\n",
    )
    config = load_config(main)
    assert config.outputs[0].upstream is not None
    assert config.outputs[0].upstream.nodes[0].extra["http_user"].value == "alice"
    with pytest.raises(ConfigErrors) as info:
        validate(config)
    first, second = _messages(info.value)
    assert "bad.conf:8: [NODE] n1 'shared_key' is not a per-node option of output 'http'" in first
    assert "bad.conf:9: [NODE] n1 'http_usr' is not a per-node option" in second
    assert "did you mean 'http_user'?" in second


def test_full_configmap_merges_common_net_tls_and_plugin_options():
    class Plugin:
        options = ConfigMap((Option("tls", "bool", True, "plugin default wins"), Option("own")))

    cmap = full_configmap("output", Plugin)
    names = cmap.names()
    for name in [*OUTPUT_COMMON.names(), *NET_OPTIONS.names(), *TLS_OPTIONS.names(), "own"]:
        assert name in names
    tls = cmap.get("tls")
    assert tls is not None and tls.default is True
    assert "net.keepalive" not in full_configmap("input", Plugin).names()


def test_service_settings_defaults_and_values():
    settings = service_settings(AgentConfig())
    assert settings.flush == 1.0 and settings.http_port == 2020 and settings.log_level == "info"
    config = AgentConfig(
        service=(
            RawProperty("flush", "500ms", Origin("x", 1)),
            RawProperty("storage.backlog.mem_limit", "10M", Origin("x", 2)),
            RawProperty("log_level", "warning", Origin("x", 3)),
        )
    )
    settings = service_settings(config)
    assert settings.flush == 0.5
    assert settings.storage_backlog_mem_limit == 10 * 1024 * 1024
    assert settings.log_level == "warn"


def test_validate_accepts_a_valid_config(write):
    write("up.conf", UPSTREAM.format(extra="http_user alice"))
    main = write(
        "main.conf",
        "[SERVICE]\n    flush 2\n[INPUT]\n    name http\n    port 9880\n"
        "[OUTPUT]\n    name http\n    match *\n    upstream up.conf\n    net.keepalive off\n",
    )
    validate(load_config(main))  # does not raise


def test_plugin_instance_model_keeps_repeated_keys():
    props = (RawProperty("add", "a 1", Origin("x", 1)), RawProperty("add", "b 2", Origin("x", 2)))
    instance = PluginInstance(kind="filter", plugin="modify", properties=props)
    assert instance.get("ADD") == "b 2"


def test_upstream_that_is_not_a_regular_file(write):
    main = write("main.conf", "[OUTPUT]\n    name http\n    upstream /dev/null\n")
    with pytest.raises(ConfigErrors) as info:
        load_config(main)
    (message,) = _messages(info.value)
    assert "main.conf:3: [OUTPUT] http 'upstream':" in message and "not a regular file" in message


def test_filesystem_storage_without_storage_path_is_an_error(write, tmp_path):
    conf = write(
        "main.conf",
        "[INPUT]\n    name dummy\n    storage.type filesystem\n"
        "[OUTPUT]\n    name null\n    match *\n",
    )
    with pytest.raises(ConfigErrors) as info:
        validate(load_config(conf))
    text = str(info.value)
    assert "main.conf:3" in text and "'storage.type'" in text
    assert "needs [SERVICE] storage.path" in text
    fixed = write(
        "fixed.conf",
        f"[SERVICE]\n    storage.path {tmp_path / 'store'}\n"
        "[INPUT]\n    name dummy\n    storage.type filesystem\n"
        "[OUTPUT]\n    name null\n    match *\n",
    )
    validate(load_config(fixed))


PLUGIN_ERRORS = (
    "[INPUT]\n    name dummy\n    dummy {not json\n"
    "[FILTER]\n    name grep\n    match *\n    regex log ([a-\n"
    "[OUTPUT]\n    name stdout\n    match_regex ([\n"
    "[OUTPUT]\n    name null\n    match *\n    retry_limit often\n"
)


def test_validate_finds_what_only_building_the_plugins_finds(write):
    # relaybit.validate gives the answer of --dry-run: a config it accepts starts
    conf = write("main.conf", PLUGIN_ERRORS)
    config = load_config(conf)
    check_keys(config)  # keys and types are fine
    with pytest.raises(ConfigErrors) as info:
        validate(config)
    messages = _messages(info.value)
    assert len(messages) == 4
    assert any(m.startswith(f"{conf}:3: [INPUT] dummy") for m in messages)
    assert any(f"{conf}:7: [FILTER] grep" in m and "'regex'" in m for m in messages)
    assert any(f"{conf}:10: [OUTPUT] stdout 'match_regex'" in m for m in messages)
    assert any(f"{conf}:14: [OUTPUT] null 'retry_limit'" in m for m in messages)


def test_validate_reports_key_errors_and_plugin_errors_once_each(write):
    conf = write(
        "main.conf",
        "[SERVICE]\n    flush soon\n"
        "[INPUT]\n    name dummy\n    rate fast\n"
        "[FILTER]\n    name grep\n    match *\n    regex log ([a-\n"
        "[OUTPUT]\n    name null\n    match *\n",
    )
    with pytest.raises(ConfigErrors) as info:
        validate(load_config(conf))
    messages = _messages(info.value)
    assert len(messages) == len(set(messages)) == 3
    assert [m.split(" ")[0] for m in messages] == [f"{conf}:2:", f"{conf}:5:", f"{conf}:9:"]


def test_relaybit_validate_is_the_full_check(write):
    import relaybit

    conf = write("main.conf", "[INPUT]\n    name dummy\n    dummy {not json\n")
    with pytest.raises(ConfigErrors):
        relaybit.validate(relaybit.load_config(conf))

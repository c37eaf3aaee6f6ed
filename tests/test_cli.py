"""The relaybit command, run as a user would (a subprocess), plus in-process checks."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

from relaybit import __version__, cli
from relaybit.config.model import AgentConfig
from relaybit.config.service import SERVICE_OPTIONS

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
DATA = Path(__file__).resolve().parent / "data" / "configs"


def relaybit(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relaybit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("name", ["agent.conf", "agent.yaml"])
def test_dry_run_of_the_examples(name):
    # needs the dummy input and the forward output plugins
    result = relaybit("-c", str(EXAMPLES / name), "--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "configuration OK" in out
    for node, address in [("node-1", "43000"), ("node-2", "44000"), ("node-3", "45000")]:
        assert node in out and f"127.0.0.1:{address}" in out
    assert "shared_key=******" in out
    assert "secret" not in out.replace("shared_key", "")
    assert "forward-balancing" in out
    service = {
        cells[0]: cells[1]
        for line in out.splitlines()
        if len(cells := [c.strip() for c in line.split("│") if c.strip()]) == 2
    }
    # values shown as a Fluent Bit user writes them, not as Python reprs
    assert service["http_server"] == "on" and service["daemon"] == "off"
    assert service["flush"] == "1" and service["log_file"] == "-"


def test_dry_run_of_an_upstream_file():
    result = relaybit("-c", str(EXAMPLES / "upstream.conf"), "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "node-" in line]
    assert len(lines) == 3
    assert "127.0.0.1:45000" in lines[2] and "shared_key=******" in lines[2]
    cells = [c.strip() for c in lines[2].split("│") if c.strip()]
    assert cells == ["node-3", "127.0.0.1:45000", "on", "off", "shared_key=******"]
    assert "secret" not in result.stdout


def test_dry_run_masks_secrets_and_prints_node_table(tmp_path):
    (tmp_path / "up.conf").write_text(
        "[UPSTREAM]\n    name es-tier\n[NODE]\n    name a\n    host 127.0.0.1\n    port 9200\n"
        "    http_passwd hunter2\n    tls on\n"
    )
    (tmp_path / "agent.conf").write_text(
        "[INPUT]\n    name http\n    port 9880\n[OUTPUT]\n    name http\n    match *\n"
        "    http_user bob\n    http_passwd swordfish\n    upstream up.conf\n"
    )
    result = relaybit("-c", "agent.conf", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout and "swordfish" not in result.stdout
    assert "http_passwd=******" in result.stdout
    assert "es-tier" in result.stdout and "127.0.0.1:9200" in result.stdout


def test_dry_run_failure_exits_1_with_file_and_line():
    result = relaybit("-c", str(DATA / "agent_bad_port.conf"), "--dry-run")
    assert result.returncode == 1
    expected = (
        f"relaybit: config error: {DATA / 'bad_port.conf'}:12: [NODE] node-2 'port': "
        "expected a port number 1..65535, got 'abc'"
    )
    assert expected in result.stderr.splitlines()
    assert result.stdout == ""


def test_dry_run_says_what_fluent_bit_says_after_the_tables(tmp_path):
    # fluent-bit --dry-run writes "configuration test is successful" on stderr; relaybit
    # writes it after the resolved configuration (stdout), for scripts that look for it
    result = relaybit("-i", "dummy", "-o", "null", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("relaybit: configuration OK")
    assert result.stderr.splitlines()[-1] == "configuration test is successful"


def test_quiet_dry_run_prints_nothing_when_valid_and_only_the_errors_when_not(tmp_path):
    conf = tmp_path / "a.conf"
    # valid, with what a dry run warns about: an unknown [SERVICE] key, a no-effect flag
    conf.write_text("[SERVICE]\n    flsh 5\n[INPUT]\n    name dummy\n[OUTPUT]\n    name null\n")
    for argv in (
        ["-q", "-c", str(conf), "--dry-run", "-s", "65536"],
        ["--quiet", "-D", "-c", str(EXAMPLES / "upstream.conf")],  # an upstream file
    ):
        result = relaybit(*argv)
        assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), argv
    result = relaybit("-q", "-c", str(DATA / "agent_bad_port.conf"), "--dry-run", "-s", "1")
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith("relaybit: config error: ") for line in lines), lines
    assert any("'port': expected a port number" in line for line in lines)


def test_dry_run_finds_what_only_the_plugins_check(tmp_path, capsys):
    # a dry run that says OK must not be followed by a start that fails on the config
    conf = tmp_path / "agent.conf"
    conf.write_text(
        "[INPUT]\n    name dummy\n    dummy {not json\n"
        "[FILTER]\n    name grep\n    match *\n    regex log ([a-\n"
        "[OUTPUT]\n    name stdout\n    match_regex ([\n",
        encoding="utf-8",
    )
    assert cli.main(["-c", str(conf), "--dry-run"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    errors = captured.err.splitlines()
    assert any(
        line.startswith(f"relaybit: config error: {conf}:3: [INPUT] dummy") for line in errors
    )
    assert any(f"{conf}:7: [FILTER] grep" in line and "'regex'" in line for line in errors)
    assert any(f"{conf}:10: [OUTPUT] stdout 'match_regex'" in line for line in errors)


def test_dry_run_warns_about_an_output_that_gets_nothing(capsys):
    assert cli.main(["-i", "dummy", "-o", "stdout", "-o", "null", "-m", "*", "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert "[ warn] [agent] [OUTPUT] stdout: stdout.0 has no 'match'" in err
    assert "null.0" not in err


def test_near_miss_key_fails_with_did_you_mean(tmp_path):
    (tmp_path / "up.conf").write_text(
        "[UPSTREAM]\n    name u\n[NODE]\n    name a\n    host h\n    port 1\n    tls_verify off\n"
    )
    result = relaybit("-c", "up.conf", "--dry-run", cwd=tmp_path)
    assert result.returncode == 1
    assert "up.conf:7: [NODE] a unknown node key 'tls_verify'; did you mean 'tls.verify'?" in (
        result.stderr
    )


def test_command_line_pipeline_dry_run():
    result = relaybit(
        "-i",
        "http",
        "-p",
        "port=9880",
        "-t",
        "web",
        "-o",
        "stdout",
        "-m",
        "web",
        "-p",
        "format=json",
        "-f",
        "2",
        "--dry-run",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "[INPUT] http" in out and "[OUTPUT] stdout" in out
    assert "<command line>" in out and "json" in out


def test_dry_run_names_service_keys_as_written_in_a_config(capsys):
    # storage.path, not the settings field storage_path a user cannot write
    assert cli.main(["-i", "dummy", "-o", "null", "--dry-run"]) == 0
    out = capsys.readouterr().out
    service = out[out.index("[SERVICE]") : out.index("[INPUT]")]
    keys = {cells[0] for line in service.splitlines() if len(cells := line.split("│")[1:-1]) == 2}
    keys = {k.strip() for k in keys} - {"key"}
    assert {"storage.path", "storage.backlog.mem_limit", "scheduler.base", "parsers_file"} <= keys
    assert keys <= {opt.name for opt in SERVICE_OPTIONS.options}


def test_help_lists_plugins_and_version():
    result = relaybit("-h")
    assert result.returncode == 0
    for name in ("Inputs:", "Outputs:", "Filters:", "stdout", "forward", "tail", "-c"):
        assert name in result.stdout
    assert "NAME://host:port" in result.stdout  # -o forward://10.0.0.5:24224
    # Fluent Bit 5.1.1's order: Inputs, Processors (the processor-only plugins), Filters, Outputs
    heads = [line for line in result.stdout.splitlines() if line.endswith("s:") and line[0] != " "]
    assert heads[-4:] == ["Inputs:", "Processors:", "Filters:", "Outputs:"]
    processors = result.stdout.split("Processors:")[1].split("Filters:")[0]
    assert "content_modifier" in processors and "grep" not in processors
    version = relaybit("-V")
    assert version.stdout.strip() == f"relaybit v{__version__}"


# -- in process ---------------------------------------------------------------------
def test_plugin_help(capsys):
    assert cli.main(["-o", "stdout", "-h"]) == 0
    out = capsys.readouterr().out
    assert "json_date_format" in out and "Also accepted by every output" in out


def test_plugin_help_shows_defaults_and_notes_as_the_reference_does(capsys):
    # a Fluent Bit user writes on/off: Python's True/False in the default column misleads
    assert cli.main(["-o", "forward", "-h"]) == 0
    rows = {
        cells[0]: cells
        for line in capsys.readouterr().out.splitlines()
        if len(cells := [c.strip() for c in line.split("│")[1:-1]]) == 4
    }
    assert rows["send_options"][2] == "off"
    assert rows["require_ack_response"][2] == "on"  # relaybit asks for acks by default
    assert rows["net.keepalive"][2] == "on"
    assert not {"True", "False"} & {r[2] for r in rows.values()}
    assert rows["shared_key"][3].endswith("(per node, secret)")


@pytest.mark.parametrize("name", ["content_modifier", "grep"])
def test_processor_help(capsys, name):
    # fluent-bit -r NAME -h; every filter serves as a processor, with the filter's keys
    assert cli.main(["-r", name, "-h"]) == 0
    out = capsys.readouterr().out
    assert f"processor plugin '{name}'" in out
    assert ("converted_type" if name == "content_modifier" else "logical_op") in out
    assert "Also accepted by every processor: name, alias, log_level" in out


def test_unknown_processor_help(capsys):
    assert cli.main(["-r", "content_modifer", "-h"]) == 1
    assert "unknown processor plugin 'content_modifer'" in capsys.readouterr().err


def test_unknown_plugin_help(capsys):
    assert cli.main(["-o", "stdot", "-h"]) == 1
    assert "did you mean 'stdout'?" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["-p", "a=b", "-o", "stdout"], "must follow an -i, -F or -o"),
        (["-o", "stdout", "-p", "novalue"], "expected '-p key=value'"),
        (["-o", "stdout", "-t", "x"], "applies to an input"),
        (["-i", "http", "-m", "x"], "applies to a filter or an output"),
        (["-i", "nope", "-o", "null", "--dry-run"], "unknown input plugin 'nope'"),
    ],
)
def test_command_line_errors(capsys, argv, needle):
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("relaybit: config error: ")
    assert needle in err


def test_no_configuration_is_an_error(capsys):
    assert cli.main([]) == 1
    assert "give a configuration" in capsys.readouterr().err


def test_runs_the_agent_with_flags(monkeypatch):
    calls: list[tuple[AgentConfig, dict[str, object]]] = []

    def run(config: AgentConfig, **kwargs: object) -> int:
        calls.append((config, kwargs))
        return 7

    fake = types.ModuleType("relaybit.agent")
    fake.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "relaybit.agent", fake)
    status = cli.main(["-i", "http", "-o", "null", "-m", "*", "-vv", "-H", "-P", "2021", "-f", "3"])
    assert status == 7
    ((config, kwargs),) = calls
    assert kwargs == {"log_level": "trace", "http_server": True, "http_port": 2021}
    assert [i.plugin for i in config.inputs] == ["http"]
    assert [(o.plugin, o.get("match")) for o in config.outputs] == [("null", "*")]
    service = {p.key: p.value for p in config.service}
    assert service == {"flush": "3", "http_server": "on", "http_port": "2021", "log_level": "trace"}


def test_output_url_sets_host_and_port():
    _inputs, _filters, outputs = cli.command_line_pipeline([("o", "http://10.0.0.1:8080")])
    assert outputs[0].plugin == "http"
    assert outputs[0].get("host") == "10.0.0.1" and outputs[0].get("port") == "8080"


def test_demo_gets_its_own_flags(monkeypatch):
    seen: list[list[str]] = []

    def main(argv: list[str]) -> int:
        seen.append(argv)
        return 0

    fake = types.ModuleType("relaybit.demo")
    fake.main = main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "relaybit.demo", fake)
    assert cli.main(["--demo", "--seconds", "3"]) == 0
    assert seen == [["--seconds", "3"]]


def test_dry_run_shows_weights_standby_and_health_checks(tmp_path):
    (tmp_path / "up.conf").write_text(
        "[UPSTREAM]\n    name ha\n    balance weighted\n    health_check on\n"
        "[NODE]\n    name a\n    host 127.0.0.1\n    port 5000\n    weight 3\n"
        "[NODE]\n    name b\n    host 127.0.0.1\n    port 5001\n    standby on\n",
        encoding="utf-8",
    )
    result = relaybit("-c", str(tmp_path / "up.conf"), "--dry-run")
    assert result.returncode == 0, result.stderr
    rows = [
        [c.strip() for c in line.split("│") if c.strip()]
        for line in result.stdout.splitlines()
        if line.startswith("│")
    ]
    assert rows == [
        ["a", "127.0.0.1:5000", "off", "on", "3", "off"],
        ["b", "127.0.0.1:5001", "off", "on", "1", "on"],
    ]
    assert "balance: weighted; health_check every 10s (timeout 5s)" in result.stdout

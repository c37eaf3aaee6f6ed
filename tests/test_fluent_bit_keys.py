"""Every key Fluent Bit 5.1.1 declares for a plugin relaybit has is accepted (issue 13).

``tests/data/fluent_bit_keys.txt`` lists them; it is made from Fluent Bit
5.1.1's sources by ``python scripts/fluent_bit_keys.py FLUENT_BIT_SOURCE`` (the
config maps of the plugins, the core's per-kind keys and ``[SERVICE]`` keys;
its header says exactly what is read).  A key is implemented, accepted with
one warning at start-up that it has no effect (``Option.no_effect``: only where
ignoring it can neither lose records nor weaken security), or refused with the
reason (``Option.refused``: listed in REFUSED below, so none is refused by
accident).  docs/compatibility.md's key table is generated from the same data
(tests/test_compatibility_doc.py).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from relaybit.agent import check_config
from relaybit.config.loader import full_configmap, load_config, load_plugin
from relaybit.config.schema import ConfigMap, Option
from relaybit.config.service import SERVICE_OPTIONS
from relaybit.errors import ConfigErrors
from relaybit.plugins import registry

DATA = Path(__file__).parent / "data" / "fluent_bit_keys.txt"
SAMPLES = Path(__file__).parent / "data" / "fluent_bit_conf"
SCRIPT = Path(__file__).parents[1] / "scripts" / "fluent_bit_keys.py"


def test_every_fluent_bit_flag_is_known_to_the_command_line() -> None:
    from relaybit.cli import build_parser

    known = {flag for action in build_parser()._actions for flag in action.option_strings}
    for short, long in fluent_bit_flags():
        assert long in known, long
        assert short == "-" or short in known, short


#: Keys other helpers of issue 13 implement in this session; each entry says who.
#: test_pending_keys_are_still_missing fails once one lands: then drop it here.
PENDING: dict[tuple[str, str], set[str]] = {}

#: Keys relaybit refuses unless left off / at their default, with words of the reason.
REFUSED: dict[tuple[str, str, str], str] = {
    ("service", "*", "daemon"): "systemd",
    ("service", "*", "security.fips_mode"): "FIPS",
    ("service", "*", "storage.keep.rejected"): "dead-letter",
    ("service", "*", "storage.rejected.path"): "dead-letter",
    ("service", "*", "storage.rejected.limit"): "dead-letter",
    ("service", "*", "streams_file"): "stream processor",
    ("input", "*", "routable"): "routed",
    ("output", "forward", "unix_path"): "over TCP",
    ("output", "file", "enable_strftime"): "used as written",
    ("output", "http", "aws_auth"): "SigV4",
    ("output", "es", "aws_auth"): "SigV4",
    **{
        ("output", name, f"tls.proxy.{key}"): "HTTP proxy"
        for name in ("forward", "http", "es")
        for key in ("verify", "verify_hostname", "ca_path", "ca_file")
    },
    **{
        ("input", name, f"tls.proxy.{key}"): "no proxy"
        for name in ("forward", "tcp", "syslog", "http", "elasticsearch")
        for key in ("verify", "verify_hostname", "ca_path", "ca_file")
    },
    **{
        ("output", name, key): reason
        for name in ("forward", "http", "es")
        for key, reason in (
            ("tls.verify_client_cert", "an output is a client"),
            ("tls.windows.certstore_name", "Windows only"),
            ("tls.windows.use_enterprise_store", "Windows only"),
            ("tls.windows.client_thumbprints", "Windows only"),
        )
    },
}


def fluent_bit_keys() -> list[tuple[str, str, str]]:
    """(kind, plugin, key) of the data file; plugin '*': every relaybit plugin of that kind."""
    rows = []
    for line in DATA.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            kind, plugin, key = line.split()
            if kind != "flag":
                rows.append((kind, plugin, key))
    return rows


def fluent_bit_flags() -> list[tuple[str, str]]:
    """(short or '-', long) of every command-line flag of Fluent Bit 5.1.1 (Linux build)."""
    return [
        (short, long)
        for kind, short, long in (
            line.split() for line in DATA.read_text().splitlines() if line.startswith("flag ")
        )
    ]


def configmap(kind: str, plugin: str) -> ConfigMap:
    if kind == "service":
        return SERVICE_OPTIONS
    return full_configmap(kind, load_plugin(kind, plugin))  # type: ignore[arg-type]


def lookup(kind: str, plugin: str, key: str) -> Option | None:
    """relaybit's option for a Fluent Bit key ('parser_*': a key with that prefix)."""
    return configmap(kind, plugin).get(key[:-1] + "1" if key.endswith("*") else key)


def expanded() -> list[tuple[str, str, str]]:
    out = []
    for kind, plugin, key in fluent_bit_keys():
        plugins = registry.BUILTIN[kind] if plugin == "*" and kind != "service" else [plugin]  # type: ignore[index]
        out += [(kind, p, key) for p in plugins]
    return out


def test_the_data_file_lists_every_plugin_relaybit_has() -> None:
    listed = {(kind, plugin) for kind, plugin, _ in fluent_bit_keys()}
    for kind in ("input", "filter", "output"):
        for name in registry.BUILTIN[kind]:  # type: ignore[index]
            if (kind, name) not in listed and name not in ("counter",):  # out_counter: no keys
                pytest.fail(f"{kind} {name} has no keys in {DATA.name}: re-run {SCRIPT.name}")


def test_every_fluent_bit_key_is_accepted() -> None:
    missing: dict[tuple[str, str], list[str]] = defaultdict(list)
    refused_by_accident = []
    for kind, plugin, key in expanded():
        if key in PENDING.get((kind, plugin), set()):
            continue
        opt = lookup(kind, plugin, key)
        if opt is None:
            missing[(kind, plugin)].append(key)
        elif opt.refused:
            general = (kind, "*", key)
            reason = REFUSED.get((kind, plugin, key)) or REFUSED.get(general)
            if reason is None or reason not in opt.refused:
                refused_by_accident.append(f"{kind} {plugin} {key}: {opt.refused}")
    assert not missing, f"keys Fluent Bit 5.1.1 declares that relaybit refuses: {dict(missing)}"
    assert not refused_by_accident, refused_by_accident


def test_pending_keys_are_still_missing() -> None:
    """A PENDING key that relaybit now accepts must leave PENDING (and get a status)."""
    landed = [
        f"{kind} {plugin} {key}"
        for (kind, plugin), keys in PENDING.items()
        for key in sorted(keys)
        if lookup(kind, plugin, key) is not None
    ]
    assert not landed, f"implemented now, remove from PENDING in {__file__}: {landed}"


def test_refused_keys_are_refused_with_their_reason(tmp_path: Path) -> None:
    conf = tmp_path / "a.conf"
    conf.write_text(
        "[SERVICE]\n    daemon on\n    streams_file s.conf\n"
        "[INPUT]\n    name tail\n    path /tmp/x\n    routable off\n"
        "[OUTPUT]\n    name forward\n    match *\n    unix_path /tmp/s\n"
    )
    with pytest.raises(ConfigErrors) as err:
        check_config(load_config(conf))
    text = str(err.value)
    for words in ("systemd", "stream processor", "records are routed", "over TCP"):
        assert words in text
    assert f"{conf}:2" in text and f"{conf}:7" in text  # file:line of each


def test_refused_bool_keys_refuse_the_other_value(tmp_path: Path) -> None:
    conf = tmp_path / "a.conf"
    conf.write_text(
        "[INPUT]\n    name dummy\n    routable off\n"
        "[OUTPUT]\n    name forward\n    match *\n    tls.verify_client_cert on\n"
    )
    with pytest.raises(ConfigErrors) as err:
        check_config(load_config(conf))
    assert "'routable' is not supported" in str(err.value)
    assert "an output is a client" in str(err.value)


def test_refused_keys_left_off_are_accepted(tmp_path: Path) -> None:
    conf = tmp_path / "a.conf"
    conf.write_text(
        "[SERVICE]\n    daemon off\n    security.fips_mode off\n"
        "[INPUT]\n    name dummy\n    routable on\n"
        "[OUTPUT]\n    name forward\n    match *\n    tls.proxy.verify on\n"
    )
    check_config(load_config(conf))


def test_storage_inherit_gives_inputs_the_service_storage_type(tmp_path: Path) -> None:
    """[SERVICE] storage.inherit on + storage.type filesystem: inputs without their own
    storage.type keep their records in chunk files (Fluent Bit 5's flb_storage.c)."""
    from relaybit.agent import Agent

    conf = tmp_path / "a.conf"
    base = (
        "[SERVICE]\n    storage.inherit on\n    storage.type filesystem\n{path}"
        "[INPUT]\n    name dummy\n"
        "[INPUT]\n    name dummy\n    storage.type memory\n"
        "[OUTPUT]\n    name null\n    match *\n"
    )
    conf.write_text(base.format(path=""))
    with pytest.raises(ConfigErrors) as err:  # inherited: filesystem needs a path
        check_config(load_config(conf))
    assert f"{conf}:3" in str(err.value) and "storage.path" in str(err.value)
    conf.write_text(base.format(path=f"    storage.path {tmp_path / 'st'}\n"))
    agent = Agent(load_config(conf))
    agent.build()
    buffers = agent.engine.inputs
    assert buffers["dummy.0"].storage is not None  # inherited filesystem
    assert buffers["dummy.1"].storage is None  # its own storage.type wins


def test_service_dns_keys_are_the_outputs_defaults(tmp_path: Path) -> None:
    from relaybit.agent import Agent

    conf = tmp_path / "a.conf"
    conf.write_text(
        "[SERVICE]\n    dns.prefer_ipv6 on\n"
        "[INPUT]\n    name dummy\n"
        "[OUTPUT]\n    name forward\n    match *\n"
        "[OUTPUT]\n    name forward\n    match *\n    net.dns.prefer_ipv4 on\n"
        "    net.dns.prefer_ipv6 off\n"
    )
    agent = Agent(load_config(conf))
    agent.build()
    assert agent.outputs["forward.0"].net.dns_prefer == "ipv6"  # type: ignore[attr-defined]
    assert agent.outputs["forward.1"].net.dns_prefer == "ipv4"  # type: ignore[attr-defined]


def test_no_effect_keys_warn_once_each_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    conf = tmp_path / "a.conf"
    conf.write_text(
        "[SERVICE]\n    coro_stack_size 24576\n    flush.adaptive on\n"
        "[INPUT]\n    name tail\n    path /tmp/x\n    watcher_interval 5\n    threaded on\n"
        "[OUTPUT]\n    name forward\n    match *\n    net.dns.resolver LEGACY\n"
    )
    with caplog.at_level(logging.WARNING):
        check_config(load_config(conf))
    warnings = [r.getMessage() for r in caplog.records if "has no effect" in r.getMessage()]
    for key, line in (
        ("coro_stack_size", 2),
        ("flush.adaptive", 3),
        ("watcher_interval", 7),
        ("threaded", 8),
        ("net.dns.resolver", 12),
    ):
        found = [w for w in warnings if f"'{key}'" in w]
        assert len(found) == 1, (key, warnings)
        assert f"{conf}:{line}" in found[0]


def test_every_no_effect_reason_says_why() -> None:
    for kind, plugin, key in expanded():
        opt = lookup(kind, plugin, key)
        if opt is not None and opt.no_effect:
            assert len(opt.no_effect) > 15, (kind, plugin, key)


# --- [SERVICE]: unknown keys warn and the agent goes on; Fluent Bit's samples load ---


def dry_run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relaybit", *args, "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1"},
    )


def test_unknown_service_key_warns_with_did_you_mean_and_goes_on(tmp_path: Path) -> None:
    conf = tmp_path / "a.conf"
    conf.write_text(
        "[SERVICE]\n    flsh 5\n    log_levle debug\n"
        "[INPUT]\n    name dummy\n[OUTPUT]\n    name null\n    match *\n"
    )
    result = dry_run("-c", str(conf))
    assert result.returncode == 0, result.stderr
    assert "unknown key 'flsh' ignored, as Fluent Bit does; did you mean 'flush'?" in result.stderr
    assert "did you mean 'log_level'?" in result.stderr
    assert f"{conf}:2" in result.stderr


def test_unknown_plugin_key_stays_an_error(tmp_path: Path) -> None:
    conf = tmp_path / "a.conf"
    conf.write_text("[INPUT]\n    name dummy\n    rat 5\n[OUTPUT]\n    name null\n    match *\n")
    result = dry_run("-c", str(conf))
    assert result.returncode == 1
    assert "unknown configuration property 'rat'; did you mean 'rate'?" in result.stderr


@pytest.mark.parametrize(
    "sample", ["in_dummy.conf", "fluent-bit-macos.conf", "fluent-bit-nano.conf"]
)
def test_fluent_bit_samples_load(sample: str) -> None:
    result = dry_run("-c", sample, cwd=SAMPLES)
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout


def test_fluent_bit_in_forward_sample_stops_at_buffer_as_fluent_bit() -> None:
    """in_forward.conf's ``Buffer`` is no key of Fluent Bit 5.1.1's in_forward: both refuse it;
    its [SERVICE] (HTTP_Monitor ...) passes."""
    result = dry_run("-c", "in_forward.conf", cwd=SAMPLES)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "config error" in line]
    assert len(errors) == 1 and "'buffer'" in errors[0] and "in_forward.conf:47" in errors[0]


@pytest.mark.skipif(
    not os.environ.get("FLUENT_BIT_SOURCE"), reason="set FLUENT_BIT_SOURCE=fluent-bit-5.1.1 tree"
)
def test_data_file_matches_the_fluent_bit_source() -> None:
    made = subprocess.run(
        [sys.executable, str(SCRIPT), os.environ["FLUENT_BIT_SOURCE"]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert made == DATA.read_text()

"""Fluent Bit 5.1.1's command-line flags, run with the real ``relaybit`` process (issue 13).

Every flag of Fluent Bit's src/fluent-bit.c is implemented, accepted without
effect (said in ``-h`` and in a start-up warning), or refused with a sentence
that says why and what to use instead.  Long and short forms, ``--opt=value``
and ``--opt value``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from relaybit.testing import wait_until

CONF = """\
[SERVICE]
    flush 0.2
[INPUT]
    name dummy
    rate 20
[OUTPUT]
    name null
    match *
"""


def relaybit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relaybit", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1"},
    )


def start(*args: str, stderr: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    with stderr.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "relaybit", *args],
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=cwd,
        )


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "agent.conf"
    path.write_text(CONF)
    return path


@pytest.mark.parametrize("form", ["short", "long=", "long"])
def test_log_file_receives_the_log(conf: Path, tmp_path: Path, form: str) -> None:
    log = tmp_path / "agent.log"
    flag = {
        "short": ["-l", str(log)],
        "long=": [f"--log_file={log}"],
        "long": ["--log_file", str(log)],
    }
    proc = start("-c", str(conf), *flag[form], stderr=tmp_path / "stderr")
    try:
        wait_until(lambda: log.exists() and "started:" in log.read_text(), what="the log file")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert "[relaybit] version=" in log.read_text()
    assert "started:" not in (tmp_path / "stderr").read_text()  # the log went to the file


@pytest.mark.parametrize("dry", ["-D", "--dry-run"])
def test_dry_run_short_and_long_with_storage_path_and_http_listen(
    conf: Path, tmp_path: Path, dry: str
) -> None:
    result = relaybit("-c", str(conf), dry, "-b", str(tmp_path / "st"), "--http_listen=127.0.0.9")
    assert result.returncode == 0, result.stderr
    assert str(tmp_path / "st") in result.stdout and "127.0.0.9" in result.stdout


def test_workdir_reads_relative_paths_from_there(conf: Path, tmp_path: Path) -> None:
    result = relaybit("-w", str(tmp_path), "-c", "agent.conf", "--dry-run", cwd=Path("/"))
    assert result.returncode == 0, result.stderr
    missing = relaybit("--workdir", str(tmp_path / "nope"), "-c", "agent.conf", "-D")
    assert missing.returncode == 1 and "cannot change to --workdir" in missing.stderr


def test_no_effect_flags_are_said_in_help_and_warned(conf: Path) -> None:
    help_text = relaybit("-h").stdout
    assert "accepted, no effect" in help_text and "--coro_stack_size" in help_text
    result = relaybit("-c", str(conf), "-D", "-s", "65536", "-Z", "-W")
    assert result.returncode == 0, result.stderr
    for key in ("coro_stack_size", "enable_chunk_trace", "hot_reload.ensure_thread_safety"):
        assert f"'{key}' has no effect in relaybit" in result.stderr, key


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["-d"], "systemd"),
        (["--daemon"], "--supervisor"),
        (["-e", "out_x.so"], "entry point"),
        (["--plugin=out_x.so"], "entry point"),
        (["-C", "calyptia"], "no custom plugins"),
        (["-T", "SELECT * FROM STREAM:x;"], "stream processor"),
        (["-r", "content_modifier"], "YAML"),
        (["--enable-fips"], "FIPS"),
        (["-M", "2048"], "Windows only"),
        (["--trace", "input=dummy.0 output=stdout"], "no chunk trace"),
        (["--trace-input=dummy.0", "--trace-output", "stdout"], "no chunk trace"),
    ],
)
def test_refused_flags_say_why(conf: Path, args: list[str], words: str) -> None:
    result = relaybit("-c", str(conf), *args)
    assert result.returncode == 1
    assert "is not supported" in result.stderr or "are not supported" in result.stderr
    assert words in result.stderr


def test_help_json_of_everything_and_of_one_plugin() -> None:
    everything = json.loads(relaybit("-J").stdout)
    assert {i["name"] for i in everything["inputs"]} >= {"tail", "forward", "dummy"}
    assert "storage.path" in everything["service"]["properties"]
    tail = json.loads(relaybit("-i", "tail", "--help-json").stdout)
    assert "generic.encoding" in tail["properties"]["properties"]


def test_processor_flag_gives_help_only(conf: Path) -> None:
    # as Fluent Bit 5.1.1: -r NAME is there for -h and -J (Fluent Bit ignores it elsewhere;
    # relaybit refuses it with the reason, tested in test_refused_flags_say_why)
    help_text = relaybit("--processor", "content_modifier", "-h")
    assert help_text.returncode == 0, help_text.stderr
    assert "processor plugin 'content_modifier'" in help_text.stdout
    schema = json.loads(relaybit("-r", "content_modifier", "-J").stdout)
    assert schema["type"] == "processor" and "action" in schema["properties"]["properties"]
    everything = json.loads(relaybit("-J").stdout)
    assert list(everything)[2:] == ["inputs", "processors", "filters", "outputs"]
    assert [p["name"] for p in everything["processors"]] == ["content_modifier"]


def test_sosreport(conf: Path) -> None:
    result = relaybit("-S", "-c", str(conf))
    assert result.returncode == 0
    assert "relaybit v" in result.stdout and "python " in result.stdout
    assert "configuration OK" in result.stdout


def test_supervisor_restarts_a_killed_child_and_passes_sigterm(conf: Path, tmp_path: Path) -> None:
    err = tmp_path / "stderr"
    proc = start("--supervisor", "-c", str(conf), stderr=err)

    def children() -> list[int]:
        text = err.read_text()
        return [
            int(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if "started child process" in line
        ]

    try:
        first = wait_until(children, what="the first child")[0]
        wait_until(lambda: err.read_text().count("started:") >= 1, what="the agent started")
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: len(children()) == 2, what="a new child")
        assert "child exited with status 137, scheduling restart" in err.read_text()
        second = children()[1]
        wait_until(lambda: err.read_text().count("started:") >= 2, what="the agent started again")
    finally:
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(timeout=60)
    assert status == 0
    assert f"stop requested, forwarding signal {int(signal.SIGTERM)} to {second}" in err.read_text()


def test_supervisor_ends_when_the_child_exits_cleanly(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("one\n")
    result = relaybit(
        "--supervisor",
        "-i",
        "tail",
        "-p",
        f"path={log}",
        "-p",
        "read_from_head=on",
        "-p",
        "exit_on_eof=on",
        "-o",
        "null",
        "-m",
        "*",
    )
    assert result.returncode == 0, result.stderr
    assert "child exited cleanly, stopping supervision" in result.stderr


def test_supervisor_passes_a_terminal_ctrl_c_once(conf: Path, tmp_path: Path) -> None:
    """Ctrl-C reaches the whole foreground group: the child must get one SIGINT (from
    the supervisor), not two (a second one ends its grace period at once)."""
    err = tmp_path / "stderr"
    with err.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "relaybit", "--supervisor", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=out,
            start_new_session=True,  # the test's own process group plays the terminal's
        )
    try:
        wait_until(lambda: "started:" in err.read_text(), what="the agent started")
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = err.read_text()
    assert "stop requested: stopping inputs" in text
    assert "second stop request" not in text


def test_a_killed_supervisor_leaves_no_agent(conf: Path, tmp_path: Path) -> None:
    err = tmp_path / "stderr"
    proc = start("--supervisor", "-c", str(conf), stderr=err)
    child = int(
        wait_until(
            lambda: [ln for ln in err.read_text().splitlines() if "started child process" in ln],
            what="the child",
        )[0].rsplit(" ", 1)[1]
    )
    wait_until(lambda: "started:" in err.read_text(), what="the agent started")
    proc.kill()
    proc.wait(timeout=30)

    def gone() -> bool:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return True
        try:
            with open(f"/proc/{child}/stat") as fh:  # a zombie waiting for init: gone
                return fh.read().split(")")[-1].split()[0] == "Z"
        except FileNotFoundError:
            return True

    wait_until(gone, what="the child to stop with its supervisor")

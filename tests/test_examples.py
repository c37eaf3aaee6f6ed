"""Every file in examples/ is valid as written, and the self-contained ones run.

Each configuration (classic and YAML, agents, upstream and parsers files) goes
through ``relaybit -c FILE --dry-run`` as a subprocess, with the variables the
examples document (``APP_LOG``, ``STATE_DIR``).  The dry runs start together
once per module, so the whole file stays fast.  Two examples then run as real
agents, are read until they printed what they promise, and end with SIGTERM.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
#: the shared folder lies beside the repository, for developers and for CI alike
SHARED_EXAMPLES = REPO.parent / "shared" / "examples"
CONFIG_SUFFIXES = {".conf", ".yaml", ".yml"}
REFERENCE_FILES = ("upstream.conf", "upstream.yaml", "agent.conf", "agent.yaml")
DEADLINE = 20.0


#: folders of files for other programs (Prometheus rules, Grafana, systemd), not relaybit
#: configurations: tests/integration/test_monitoring_examples.py and
#: tests/test_package.py check those
OTHER_PROGRAMS = ("monitoring/prometheus", "monitoring/grafana", "systemd")


def example_files() -> list[Path]:
    """Every configuration file under examples/ (sorted, relative to the repo)."""
    others = [EXAMPLES / folder for folder in OTHER_PROGRAMS]
    return sorted(
        p.relative_to(REPO)
        for p in EXAMPLES.rglob("*")
        if p.is_file()
        and p.suffix in CONFIG_SUFFIXES
        and not any(other in p.parents for other in others)
    )


def example_env(tmp: Path) -> dict[str, str]:
    """The environment the examples document: a log file and a state directory."""
    log = tmp / "app.log"
    log.write_text("line\n", encoding="utf-8")
    state = tmp / "state"
    state.mkdir(exist_ok=True)
    return {**os.environ, "APP_LOG": str(log), "STATE_DIR": str(state)}


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, tuple[int, str, str]]:
    """``relaybit -c FILE --dry-run`` for every example, run in parallel."""
    env = example_env(tmp_path_factory.mktemp("examples"))
    procs = {
        path: subprocess.Popen(
            [sys.executable, "-m", "relaybit", "-c", str(path), "--dry-run"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in example_files()
    }
    results: dict[Path, tuple[int, str, str]] = {}
    for path, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        results[path] = (proc.returncode, out, err)
    return results


def test_examples_cover_what_the_readme_promises() -> None:
    files = {str(p) for p in example_files()}
    for expected in (
        "examples/quickstart.conf",
        "examples/ha/agent.conf",
        "examples/ha/upstream.conf",
        "examples/relay/relay.conf",
        "examples/hash/upstream.conf",
        "examples/http-to-es/agent.conf",
        "examples/filters/agent.conf",
        "examples/storage/agent.conf",
        "examples/monitoring/agent.conf",
    ):
        assert expected in files


@pytest.mark.parametrize("path", example_files(), ids=str)
def test_example_passes_dry_run(path: Path, dry_runs: dict[Path, tuple[int, str, str]]) -> None:
    code, out, err = dry_runs[path]
    assert code == 0, f"relaybit -c {path} --dry-run failed:\n{err}"
    assert "OK" in out.splitlines()[0]


@pytest.mark.parametrize(
    "path",
    # the reference files stay byte-identical to the shared copies instead
    [
        p
        for p in example_files()
        if not (p.parent == Path("examples") and p.name in REFERENCE_FILES)
    ],
    ids=str,
)
def test_example_starts_with_a_header_comment(path: Path) -> None:
    first = (REPO / path).read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# ") and len(first) > 20


@pytest.mark.parametrize("name", REFERENCE_FILES)
def test_reference_examples_match_the_shared_copies(name: str) -> None:
    if not SHARED_EXAMPLES.is_dir():
        pytest.skip("no shared examples on this machine")
    assert (EXAMPLES / name).read_bytes() == (SHARED_EXAMPLES / name).read_bytes()


def test_no_example_hard_codes_an_absolute_path() -> None:
    for path in example_files():
        for number, line in enumerate((REPO / path).read_text("utf-8").splitlines(), 1):
            if line.lstrip().startswith("#"):
                continue
            words = line.replace(":", " ").split()
            assert not any(w.startswith("/") and len(w) > 1 for w in words[1:]), (
                f"{path}:{number}: absolute path; use a relative one or ${{VAR}}"
            )


# -- running examples as processes ---------------------------------------------


class Agent:
    """A relaybit process whose stdout lines are read with a deadline."""

    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "relaybit", "-c", str(config)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)
        self._pending = b""

    def lines(self, count: int) -> list[str]:
        """The first ``count`` stdout lines, waiting at most DEADLINE seconds."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + DEADLINE
        while self._pending.count(b"\n") < count:
            left = deadline - time.monotonic()
            assert left > 0, f"only got {self._pending!r}"
            assert self.proc.poll() is None, f"agent exited: {self.proc.stderr!r}"
            if self._selector.select(left):
                self._pending += self.proc.stdout.read() or b""
        return self._pending.decode().splitlines()[:count]

    def terminate(self) -> tuple[int, str]:
        """SIGTERM, then the exit code and stderr."""
        self._selector.close()
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=DEADLINE)
        return self.proc.returncode, err.decode()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


StartAgent = Callable[..., Agent]


@pytest.fixture
def run_agent(tmp_path: Path) -> Iterator[StartAgent]:
    started: list[Agent] = []

    def start(config: str, **env: str) -> Agent:
        agent = Agent(REPO / config, {**example_env(tmp_path), **env})
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.kill()
        if agent.proc.stdout is not None:
            agent.proc.stdout.close()
        if agent.proc.stderr is not None:
            agent.proc.stderr.close()


def test_quickstart_prints_its_three_records_and_stops_on_sigterm(run_agent: StartAgent) -> None:
    agent = run_agent("examples/quickstart.conf")
    records = [json.loads(line) for line in agent.lines(3)]
    assert [r["message"] for r in records] == ["hello from relaybit"] * 3
    assert all(r["level"] == "info" and isinstance(r["date"], float) for r in records)
    code, err = agent.terminate()
    assert code == 0
    assert "stopped" in err
    assert "every buffered record was delivered" in err


def test_filters_example_parses_filters_and_modifies(run_agent: StartAgent) -> None:
    agent = run_agent("examples/filters/agent.conf", APP_LOG=str(EXAMPLES / "filters" / "app.log"))
    records = [json.loads(line) for line in agent.lines(3)]
    assert [(r["date"], r["level"], r["msg"]) for r in records] == [
        ("2026-01-15T10:00:00.000000Z", "INFO", "order 1001 paid"),
        ("2026-01-15T10:00:02.000000Z", "ERROR", "card declined for order 1002"),
        ("2026-01-15T10:00:03.000000Z", "INFO", "ok"),
    ]
    for record in records:
        assert record["env"] == "example"
        assert record["pipeline"] == "filters-example"
        assert "service" not in record and "message" not in record
    code, _ = agent.terminate()
    assert code == 0

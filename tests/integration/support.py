"""Real processes for the end-to-end and fault tests: receivers, the agent, a log writer.

Every process is started through a :class:`Processes` registry whose
``cleanup()`` (a fixture finalizer) kills what is left, SIGCONT first for a
stopped one.  Results are awaited with :func:`wait_until` (a deadline, short
sleeps inside the polling loop only).

- :class:`ReceiverProc`: ``tests/integration/receiver.py`` as a process; each
  record it acked is a JSON line in its ``out`` file (:func:`received`).
- :class:`AgentProc`: ``python -m relaybit -c CONF``; its log is a file.
- :class:`LineWriter`: appends numbered lines to a file, rotates it by rename
  and truncates it; :func:`tally` compares what arrived with what was written.
- :func:`upstream_conf`, :func:`agent_conf`: classic configuration text.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from relaybit.testing import wait_until

HERE = Path(__file__).resolve().parent
RECEIVER = HERE / "receiver.py"
SRC = HERE.parent.parent / "src"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Proc:
    """A child process whose stdout and stderr go to files in ``workdir``."""

    def __init__(self, name: str, args: Sequence[str], workdir: Path) -> None:
        self.name = name
        self.args = list(args)
        self.workdir = workdir
        self.stdout_path = workdir / f"{name}.stdout"
        self.stderr_path = workdir / f"{name}.stderr"
        self.popen: subprocess.Popen[bytes] | None = None
        self.stopped = False

    def start(self) -> Proc:
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.popen = subprocess.Popen(
                self.args, stdout=out, stderr=err, cwd=self.workdir, env=_env()
            )
        self.stopped = False
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int) -> None:
        assert self.popen is not None
        self.popen.send_signal(sig)
        if sig == signal.SIGSTOP:
            self.stopped = True
        elif sig == signal.SIGCONT:
            self.stopped = False

    def kill9(self) -> None:
        """``kill -9`` and reap."""
        if self.alive:
            self.signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(10)

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait for the exit status (kill -9 after ``timeout``)."""
        assert self.popen is not None
        if self.alive:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise AssertionError(f"{self.name} did not stop within {timeout:g}s") from None

    def cleanup(self) -> None:
        if self.alive:
            if self.stopped:
                self.signal(signal.SIGCONT)
            self.kill9()

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def __repr__(self) -> str:
        state = "alive" if self.alive else "ended"
        pid = self.popen.pid if self.popen else None
        return f"<{type(self).__name__} {self.name} pid={pid} {state}>"


class ReceiverProc(Proc):
    """A receiver process; ``port`` is known once :meth:`start` returned."""

    def __init__(
        self,
        name: str,
        workdir: Path,
        *,
        port: int = 0,
        tls: tuple[Path, Path] | None = None,
        shared_key: str | None = None,
    ) -> None:
        self.out = workdir / f"{name}.jsonl"
        self.port_file = workdir / f"{name}.port"
        self.port = port
        self.tls = tls
        self.shared_key = shared_key
        super().__init__(name, [], workdir)

    def _build_args(self) -> list[str]:
        args = [sys.executable, str(RECEIVER), "--name", self.name, "--out", str(self.out)]
        args += ["--port", str(self.port), "--port-file", str(self.port_file)]
        if self.tls is not None:
            args += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
        if self.shared_key is not None:
            args += ["--shared-key", self.shared_key]
        return args

    def start(self, timeout: float = 20.0) -> ReceiverProc:
        """Start (on ``port``, or a free one the first time) and wait until it listens."""
        self.port_file.unlink(missing_ok=True)
        self.args = self._build_args()
        super().start()

        def bound() -> bool:
            assert self.alive, f"{self.name} exited: {self.stderr()}"
            return self.port_file.exists()

        wait_until(bound, timeout, f"{self.name} to listen")
        self.port = int(self.port_file.read_text())
        return self


class AgentProc(Proc):
    """``python -m relaybit -c config``; the log is its stderr."""

    def __init__(self, config: Path, workdir: Path, name: str = "agent") -> None:
        super().__init__(name, [sys.executable, "-m", "relaybit", "-c", str(config)], workdir)
        self.config = config

    def log(self) -> str:
        return self.stderr()

    def log_lines(self, *needles: str) -> list[str]:
        """Log lines containing every one of ``needles``."""
        return [line for line in self.log().splitlines() if all(n in line for n in needles)]

    def wait_started(self, timeout: float = 20.0) -> None:
        def started() -> bool:
            assert self.alive, f"agent exited:\n{self.log()}"
            return "started:" in self.log()

        wait_until(started, timeout, "the agent to start")


@dataclass
class Processes:
    """Every process a test started; :meth:`cleanup` kills the survivors."""

    workdir: Path
    procs: list[Proc] = field(default_factory=list)

    def receiver(self, name: str, **kwargs: Any) -> ReceiverProc:
        proc = ReceiverProc(name, self.workdir, **kwargs)
        self.procs.append(proc)
        return proc.start()

    def agent(self, config: Path, name: str = "agent") -> AgentProc:
        proc = AgentProc(config, self.workdir, name)
        self.procs.append(proc)
        proc.start()
        return proc

    def cleanup(self) -> None:
        for proc in self.procs:
            proc.cleanup()


# -- records ------------------------------------------------------------------------


def received(receivers: Iterable[ReceiverProc]) -> list[dict[str, Any]]:
    """Every record the receivers acked (a line cut by ``kill -9`` is ignored)."""
    rows: list[dict[str, Any]] = []
    for rec in receivers:
        if not rec.out.exists():
            continue
        for line in rec.out.read_bytes().split(b"\n"):
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue  # a torn last line: it was never acked
    return rows


def seq_of(row: Mapping[str, Any]) -> int:
    """The sequence number of a received row (tail: ``log`` is ``line NNNNNNNN ...``)."""
    record = row["record"]
    if "seq" in record:
        return int(record["seq"])
    return int(str(record["log"]).split()[1])


@dataclass(frozen=True)
class Tally:
    """Received sequence numbers against the expected ``range(1, total + 1)``."""

    total: int
    missing: list[int]
    extra: list[int]
    duplicates: int

    @property
    def complete(self) -> bool:
        return not self.missing


def tally(rows: Iterable[Mapping[str, Any]], total: int) -> Tally:
    counts = Counter(seq_of(r) for r in rows)
    missing = [n for n in range(1, total + 1) if n not in counts]
    extra = sorted(n for n in counts if not 1 <= n <= total)
    duplicates = sum(c - 1 for c in counts.values() if c > 1)
    return Tally(total, missing, extra, duplicates)


def flushes_per_node(rows: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """Forward messages (agent flushes) each node received."""
    return Counter(node for node, _ in {(r["node"], r["msg"]) for r in rows})


class LineWriter:
    """Appends numbered lines (from 1) to ``path``: ``line NNNNNNNN <padding>`` or JSON."""

    def __init__(self, path: Path, pad: int = 60, *, users: int = 0) -> None:
        self.path = path
        self.written = 0
        self.pad = "x" * pad
        self.rotations = 0
        self.users = users

    def line(self, seq: int) -> str:
        """``line NNNNNNNN xxx``, or with ``users`` a JSON object ``{"seq", "user"}``."""
        if self.users:
            return json.dumps({"seq": seq, "user": f"u{seq % self.users}"}) + "\n"
        return f"line {seq:08d} {self.pad}\n"

    def write(self, count: int) -> None:
        lines = []
        for _ in range(count):
            self.written += 1
            lines.append(self.line(self.written))
        with open(self.path, "a") as f:
            f.write("".join(lines))

    def rotate(self) -> Path:
        """Rename the file away (``path.N``); the next write creates a new one."""
        self.rotations += 1
        target = self.path.with_name(f"{self.path.name}.{self.rotations}")
        os.rename(self.path, target)
        return target

    def truncate(self) -> None:
        """``copytruncate`` without the copy: the caller made sure it was read."""
        with open(self.path, "r+") as f:
            f.truncate(0)

    def __repr__(self) -> str:
        return f"<LineWriter {self.path} written={self.written}>"


# -- configuration ------------------------------------------------------------------


def upstream_conf(nodes: Sequence[Mapping[str, Any]], name: str = "up", **settings: Any) -> str:
    """An upstream file: ``nodes`` are dicts of node keys (name, host, port, ...)."""
    lines = ["[UPSTREAM]", f"    name {name}"]
    lines += [f"    {k} {v}" for k, v in settings.items()]
    for node in nodes:
        lines.append("[NODE]")
        lines += [f"    {k} {v}" for k, v in node.items()]
    return "\n".join(lines) + "\n"


def node(rec: ReceiverProc, **keys: Any) -> dict[str, Any]:
    """Node keys for a receiver process."""
    return {"name": rec.name, "host": "127.0.0.1", "port": rec.port, **keys}


def section(kind: str, keys: Mapping[str, Any]) -> str:
    return f"[{kind}]\n" + "".join(f"    {k} {v}\n" for k, v in keys.items())


def agent_conf(
    inputs: Sequence[Mapping[str, Any]],
    output: Mapping[str, Any],
    *,
    service: Mapping[str, Any] | None = None,
) -> str:
    """A classic agent configuration: fast flushes and retries, plus ``service``."""
    svc = {
        "flush": 0.2,
        "grace": 2,
        "log_level": "info",
        "scheduler.base": 1,
        "scheduler.cap": 2,
        **(service or {}),
    }
    text = section("SERVICE", svc)
    for inp in inputs:
        text += section("INPUT", inp)
    return text + section("OUTPUT", output)


def forward_output(**keys: Any) -> dict[str, Any]:
    """A forward output through ``upstream.conf`` with acks and no retry limit."""
    return {
        "name": "forward",
        "match": "*",
        "upstream": "upstream.conf",
        "require_ack_response": "on",
        "ack_response_timeout": 2,
        "retry_limit": "no_limits",
        **keys,
    }


def tail_input(path: Path, **keys: Any) -> dict[str, Any]:
    return {
        "name": "tail",
        "tag": "app.log",
        "path": str(path),
        "read_from_head": "on",
        "refresh_interval": 0.2,
        "poll_interval": 0.05,
        "rotate_wait": 10,
        **keys,
    }


def http_json(port: int, path: str) -> Any:
    """GET a monitoring API path on 127.0.0.1."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return json.loads(resp.read())


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- fixtures (re-exported by the conftest of tests/integration and tests/faults) ---


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    """A process registry in ``tmp_path``; every survivor is killed at the end."""
    registry = Processes(tmp_path)
    try:
        yield registry
    finally:
        registry.cleanup()


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 (trustme)."""
    import trustme

    base = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    server.private_key_and_cert_chain_pem.write_to_path(str(base / "server.pem"))
    server.private_key_pem.write_to_path(str(base / "server.key"))
    server.cert_chain_pems[0].write_to_path(str(base / "server.crt"))
    ca.cert_pem.write_to_path(str(base / "ca.pem"))
    return {"cert": base / "server.crt", "key": base / "server.key", "ca": base / "ca.pem"}


def upstream_nodes(api_port: int, output: str = "forward.0") -> dict[str, dict[str, Any]]:
    """``/api/v1/upstreams``: the nodes of ``output``'s Upstream by name."""
    status = http_json(api_port, "/api/v1/upstreams")["upstreams"][output]
    return {n["name"]: n for n in status["nodes"]}


def monitoring(port: int) -> dict[str, Any]:
    """``[SERVICE]`` keys serving the monitoring API on 127.0.0.1:``port``."""
    return {"http_server": "on", "http_listen": "127.0.0.1", "http_port": port}


def largest_chunk(rows: Iterable[Mapping[str, Any]]) -> int:
    """Records in the largest Forward message (one agent chunk) any receiver got."""
    counts = Counter((r["node"], r["msg"]) for r in rows)
    return max(counts.values(), default=0)


def write_until(writer: LineWriter, predicate: Callable[[], Any], step: int = 20, **kw: Any) -> Any:
    """Append ``step`` lines per poll until ``predicate`` holds (a steady stream)."""

    def poll() -> Any:
        writer.write(step)
        return predicate()

    return wait_until(poll, **kw)

"""The relaybit benchmark harness: one command, real processes, a table of results.

    python benchmarks/run.py [--sizes 500000,1000000] [--scenarios tail_forward,...] [--json]

For each scenario and size: generates the workload (JSON lines of about 200
bytes), starts three counting Forward receivers (benchmarks/receiver.py) as
separate processes, starts the agent as a separate process (``relaybit -c
<generated config>``) and measures from the agent's start to the last record
received: records/s, MB/s, the agent's CPU seconds (user + system, psutil) and
its peak RSS (VmHWM from /proc, else the highest psutil sample).

Scenarios:
  tail_forward       tail -> forward, upstream of 3 nodes, round robin
  tail_forward_ack   the same with require_ack_response on
  tail_forward_tls   the same with node-3 on TLS (needs trustme)
  forward_relay      a client process pushes PackedForward into the agent's forward input
  dummy_null         dummy -> null: the engine's ceiling (counted via the monitoring API)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
SCENARIOS = ("tail_forward", "tail_forward_ack", "tail_forward_tls", "forward_relay", "dummy_null")
DEFAULT_SIZES = (500_000, 1_000_000, 2_000_000, 4_000_000)
LINE_BYTES = 200


# --------------------------------------------------------------------------- workload


def make_line(i: int) -> bytes:
    """One JSON line of about LINE_BYTES bytes (newline included)."""
    head = (
        f'{{"ts":"2024-05-01T12:00:00.{i % 1000:03d}Z","level":"info","seq":{i},'
        f'"host":"web-{i % 16:02d}","msg":"'
    )
    pad = LINE_BYTES - len(head) - 3
    return (head + ("request served " * 20)[: max(pad, 0)] + '"}\n').encode()


def write_workload(path: Path, records: int) -> int:
    """Write ``records`` lines to ``path``; returns the bytes written."""
    total = 0
    with path.open("wb", buffering=1 << 20) as f:
        batch: list[bytes] = []
        for i in range(records):
            batch.append(make_line(i))
            if len(batch) == 10_000:
                data = b"".join(batch)
                f.write(data)
                total += len(data)
                batch.clear()
        data = b"".join(batch)
        f.write(data)
        total += len(data)
    return total


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def agent_command() -> list[str]:
    """The ``relaybit`` command of this interpreter's environment."""
    script = Path(sys.executable).parent / "relaybit"
    if script.exists():
        return [str(script)]
    found = shutil.which("relaybit")
    return [found] if found else [sys.executable, "-m", "relaybit"]


@dataclass
class Receiver:
    """A receiver process and its stats file."""

    proc: subprocess.Popen[bytes]
    port: int
    stats: Path

    def counts(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.stats.read_text()))
        except (OSError, ValueError):
            return {"records": 0, "bytes": 0, "first": None, "last": None}

    def __repr__(self) -> str:
        return f"<Receiver pid={self.proc.pid} port={self.port}>"


def start_receiver(workdir: Path, index: int, tls: tuple[Path, Path] | None) -> Receiver:
    stats = workdir / f"receiver-{index}.json"
    cmd = [sys.executable, str(HERE / "receiver.py"), "--stats", str(stats)]
    if tls:
        cmd += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line.startswith("PORT "):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"receiver {index} did not start: {line!r}")
    return Receiver(proc, int(line.split()[1]), stats)


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def make_tls(workdir: Path) -> tuple[Path, Path] | None:
    """A throwaway server certificate (trustme), or None when trustme is missing."""
    try:
        import trustme
    except ImportError:
        return None
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    chain, key = workdir / "node3.pem", workdir / "node3.key"
    cert.private_key_pem.write_to_path(str(key))
    with chain.open("wb") as f:
        for blob in cert.cert_chain_pems:
            f.write(blob.bytes())
    return chain, key


class Sampler:
    """Tracks the agent's peak RSS and CPU times while it runs."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak_rss = 0
        self.cpu = 0.0

    def sample(self) -> None:
        try:
            procs = [self.process, *self.process.children(recursive=True)]
            rss = cpu = 0.0
            for proc in procs:  # worker processes of the agent count too
                with proc.oneshot():
                    rss += max(proc.memory_info().rss, _vm_hwm(proc.pid))
                    times = proc.cpu_times()
                    cpu += times.user + times.system
            self.peak_rss = max(self.peak_rss, int(rss))
            self.cpu = max(self.cpu, cpu)
        except psutil.Error:
            pass

    def __repr__(self) -> str:
        return f"<Sampler pid={self.process.pid} peak_rss={self.peak_rss}>"


def _vm_hwm(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# --------------------------------------------------------------------------- configs


def upstream_file(ports: list[int], tls_node3: bool) -> str:
    lines = ["[UPSTREAM]", "    name       bench", ""]
    for i, port in enumerate(ports, 1):
        lines += [
            "[NODE]",
            f"    name       node-{i}",
            "    host       127.0.0.1",
            f"    port       {port}",
        ]
        if tls_node3 and i == 3:
            lines += ["    tls        on", "    tls.verify off"]
        lines.append("")
    return "\n".join(lines)


def agent_config(
    scenario: str,
    workload: Path,
    records: int,
    http_port: int,
    forward_port: int,
    extra_service: tuple[str, ...] = (),
) -> str:
    service = [
        "[SERVICE]",
        "    flush        0.2",
        "    log_level    warn",
        "    http_server  on",
        "    http_listen  127.0.0.1",
        f"    http_port    {http_port}",
        *(f"    {item.replace('=', ' ', 1)}" for item in extra_service),
        "",
    ]
    if scenario == "dummy_null":
        copies = 1000 if records % 1000 == 0 else 1
        return "\n".join(
            [
                *service,
                "[INPUT]",
                "    name     dummy",
                "    tag      bench",
                "    rate     1000000",
                f"    copies   {copies}",
                f"    samples  {records // copies}",
                "",
                "[OUTPUT]",
                "    name     null",
                "    match    *",
                "",
            ]
        )
    if scenario == "forward_relay":
        source = [
            "[INPUT]",
            "    name     forward",
            "    listen   127.0.0.1",
            f"    port     {forward_port}",
        ]
    else:
        source = [
            "[INPUT]",
            "    name            tail",
            "    tag             bench",
            f"    path            {workload}",
            "    read_from_head  on",
            "    refresh_interval 1",
        ]
    output = ["[OUTPUT]", "    name      forward", "    match     *", "    upstream  upstream.conf"]
    if scenario == "tail_forward_ack":
        output.append("    require_ack_response on")
    return "\n".join([*service, *source, "", *output, ""])


# --------------------------------------------------------------------------- runs


@dataclass
class Result:
    scenario: str
    records: int
    received: int
    seconds: float
    records_per_s: float
    mb_per_s: float
    cpu_seconds: float
    peak_rss_mb: float
    per_node: list[int] = field(default_factory=list)
    complete: bool = True
    note: str = ""
    #: from the first record received to the last (start-up excluded; 0 for dummy_null)
    stream_seconds: float = 0.0
    stream_records_per_s: float = 0.0


def wait_for(predicate: Callable[[], bool], deadline: float, poll: float = 0.02) -> bool:
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return predicate()


def _null_processed(http_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/api/v1/metrics", timeout=1) as r:
            doc = json.loads(r.read())
    except (OSError, ValueError):
        return 0
    return sum(int(o.get("proc_records", 0)) for o in doc.get("output", {}).values())


def run_one(
    scenario: str,
    records: int,
    workdir: Path,
    timeout: float,
    extra_service: tuple[str, ...] = (),
    profile_dir: Path | None = None,
) -> Result:
    """Run one scenario with ``records`` records; every process is ended before returning."""
    workload = workdir / "workload.log"
    if not workload.exists() or workload.stat().st_size == 0 or _lines(workdir) != records:
        write_workload(workload, records)
        (workdir / "workload.count").write_text(str(records))
    payload_bytes = workload.stat().st_size
    tls = make_tls(workdir) if scenario == "tail_forward_tls" else None
    if scenario == "tail_forward_tls" and tls is None:
        return Result(scenario, records, 0, 0, 0, 0, 0, 0, complete=False, note="trustme missing")
    receivers: list[Receiver] = []
    profiler: subprocess.Popen[bytes] | None = None
    agent: subprocess.Popen[bytes] | None = None
    pusher: subprocess.Popen[bytes] | None = None
    rundir = Path(tempfile.mkdtemp(prefix=f"{scenario}-", dir=workdir))
    try:
        if scenario != "dummy_null":
            receivers = [start_receiver(rundir, i, tls if i == 3 else None) for i in (1, 2, 3)]
        (rundir / "upstream.conf").write_text(
            upstream_file([r.port for r in receivers], tls is not None)
        )
        http_port, forward_port = free_port(), free_port()
        config = rundir / "agent.conf"
        config.write_text(
            agent_config(scenario, workload, records, http_port, forward_port, extra_service)
        )
        log = (rundir / "agent.log").open("wb")
        started = time.time()
        agent = subprocess.Popen(
            [*agent_command(), "-c", str(config)], stdout=log, stderr=subprocess.STDOUT, cwd=rundir
        )
        log.close()
        sampler = Sampler(agent.pid)
        if profile_dir is not None:
            profiler = start_profiler(agent.pid, profile_dir / f"{scenario}-{records}.txt")
        if scenario == "forward_relay":
            pusher = subprocess.Popen(
                [
                    sys.executable,
                    str(HERE / "pusher.py"),
                    f"--port={forward_port}",
                    f"--records={records}",
                    f"--workload={workload}",
                ],
                stdout=subprocess.PIPE,
            )
            assert pusher.stdout is not None
            line = pusher.stdout.readline().decode()  # START <time>, once connected
            if line.startswith("START "):
                started = float(line.split()[1])

        def received() -> int:
            if scenario == "dummy_null":
                return _null_processed(http_port)
            return sum(int(r.counts().get("records", 0)) for r in receivers)

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and agent.poll() is None:
            sampler.sample()
            if received() >= records:
                break
            time.sleep(0.05)
        sampler.sample()
        first = 0.0
        if scenario == "dummy_null":
            got, finished = received(), time.time()
        else:
            counts = [r.counts() for r in receivers]
            got = sum(int(c.get("records", 0)) for c in counts)
            lasts = [c["last"] for c in counts if c.get("last")]
            finished = max(lasts) if lasts else time.time()
            firsts = [c["first"] for c in counts if c.get("first")]
            first = min(firsts) if firsts else 0.0
        seconds = max(finished - started, 1e-9)
        complete = got == records
        note = (
            ""
            if complete
            else (
                f"agent exited with {agent.returncode}" if agent.poll() is not None else "timed out"
            )
        )
        payload = records * LINE_BYTES if scenario == "dummy_null" else payload_bytes
        return Result(
            scenario=scenario,
            records=records,
            received=got,
            seconds=round(seconds, 3),
            records_per_s=round(got / seconds),
            mb_per_s=round(payload * got / max(records, 1) / seconds / 1e6, 2),
            cpu_seconds=round(sampler.cpu, 2),
            peak_rss_mb=round(sampler.peak_rss / 1e6, 1),
            per_node=[int(r.counts().get("records", 0)) for r in receivers],
            complete=complete,
            note=note,
            stream_seconds=round(finished - first, 3) if first else 0.0,
            stream_records_per_s=round(got / max(finished - first, 1e-3)) if first else 0,
        )
    finally:
        for proc in (pusher, agent):
            if proc is not None:
                stop(proc)
        if profiler is not None:  # py-spy writes its file when the agent has exited
            try:
                profiler.wait(30)
            except subprocess.TimeoutExpired:
                stop(profiler)
        for r in receivers:
            stop(r.proc)


def start_profiler(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling ``pid`` until it exits, collapsed stacks into ``out``.

    Summarise with ``python benchmarks/profile_summary.py OUT``.
    """
    spy = Path(sys.executable).parent / "py-spy"
    command = str(spy) if spy.exists() else (shutil.which("py-spy") or "py-spy")
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            *(command, "record", "--pid", str(pid), "--rate", "250"),
            *("--format", "raw", "--output", str(out), "--nonblocking"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _lines(workdir: Path) -> int:
    try:
        return int((workdir / "workload.count").read_text())
    except (OSError, ValueError):
        return -1


def print_table(results: list[Result]) -> None:
    header = (
        f"{'scenario':<18} {'records':>9} {'received':>9} {'seconds':>8} {'rec/s':>9}"
        f" {'MB/s':>7} {'cpu s':>6} {'peak MB':>8} {'stream/s':>9}  per node"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        mark = "" if r.complete else f"  INCOMPLETE ({r.note})"
        print(
            f"{r.scenario:<18} {r.records:>9} {r.received:>9} {r.seconds:>8.2f} "
            f"{r.records_per_s:>9} {r.mb_per_s:>7.2f} {r.cpu_seconds:>6.2f} {r.peak_rss_mb:>8.1f} "
            f"{r.stream_records_per_s or '-':>9}  "
            f"{'/'.join(map(str, r.per_node))}{mark}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="relaybit benchmarks", epilog=__doc__)
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES[:2])))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run at most")
    parser.add_argument("--workdir", help="keep workloads and logs here (default: a temp dir)")
    parser.add_argument(
        "--service",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra [SERVICE] key for the agent, e.g. storage.mem_limit=32M (repeatable)",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="sample the agent with py-spy (pip install py-spy) into DIR/<scenario>-<records>.txt",
    )
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s]
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(
            f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}"
        )
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="relaybit-bench-") as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for size in sizes:
            for scenario in scenarios:
                result = run_one(
                    scenario,
                    size,
                    workdir,
                    args.timeout,
                    tuple(args.service),
                    Path(args.profile) if args.profile else None,
                )
                results.append(result)
                if not args.json:
                    print(f"# {scenario} {size}: {result.records_per_s} rec/s", file=sys.stderr)
    if args.json:
        print(json.dumps({"machine": machine(), "results": [asdict(r) for r in results]}, indent=2))
    else:
        print(f"# {machine()['cpu']} x{machine()['nproc']}, {machine()['memory_gb']} GB")
        print_table(results)
    return 0 if all(r.complete for r in results) else 1


def machine() -> dict[str, Any]:
    """nproc, CPU model and memory of this machine."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": sys.version.split()[0],
    }


if __name__ == "__main__":
    sys.exit(main())

"""The relaybit benchmark harness: one command, real processes, a table of results.

    python benchmarks/run.py [--sizes 500000,1000000] [--scenarios tail_forward,...] [--json]
    python benchmarks/run.py --scenarios json_filters_forward --fluent-bit /path/to/fluent-bit

For each scenario and size: generates the workload (JSON lines of about 200
bytes; access-log lines; CRI lines), starts three counting receivers as
separate processes (Forward: benchmarks/receiver.py; Elasticsearch Bulk API or
HTTP JSON lines: benchmarks/http_receiver.py), starts the agent as a separate
process (``relaybit -c <generated config>``) and measures from the agent's
start to the last record received: records/s, MB/s, the agent's CPU seconds
(user + system, psutil) and its peak RSS (VmHWM from /proc, else the highest
psutil sample).  With ``--fluent-bit PATH`` every scenario that has a Fluent
Bit configuration runs again with Fluent Bit on the same workload and
receivers, and a second table prints both agents side by side with the ratio.

Scenarios:
  tail_forward          tail -> forward, upstream of 3 nodes, round robin
  tail_forward_ack      the same with require_ack_response on
  tail_forward_tls      the same with node-3 on TLS (needs trustme)
  forward_relay         a client process pushes PackedForward into the agent's forward input
  dummy_null            dummy -> null: the engine's ceiling (counted via the monitoring API)
  json_filters_forward  tail + parser json + grep (level ^info$) + modify (add host,
                        rename msg message) -> forward, 3 nodes
  tail_es               tail -> es (Bulk API), upstream of 3 counting bulk receivers
  tail_es_gzip          the same with compress gzip
  tail_http             tail -> http format json_lines, upstream of 3 counting HTTP
                        receivers (Fluent Bit's http output has no upstream: one receiver)
  apache2_forward       tail + parser apache2 on access-log lines -> forward, 3 nodes
  cri_forward           tail + multiline.parser cri on CRI lines (1 in 4 records split
                        in a P and an F line) -> forward, 3 nodes
"""

from __future__ import annotations

import argparse
import compileall
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

import relaybit

HERE = Path(__file__).resolve().parent
SCENARIOS = (
    "tail_forward",
    "tail_forward_ack",
    "tail_forward_tls",
    "forward_relay",
    "dummy_null",
    "json_filters_forward",
    "tail_es",
    "tail_es_gzip",
    "tail_http",
    "apache2_forward",
    "cri_forward",
)
#: the workload each scenario reads (default: json)
WORKLOADS = {"apache2_forward": "apache", "cri_forward": "cri"}
#: the receivers each scenario counts with (default: forward)
RECEIVERS = {"tail_es": "es", "tail_es_gzip": "es", "tail_http": "lines", "dummy_null": "none"}
#: scenarios with a Fluent Bit configuration (--fluent-bit)
FLUENT_BIT_SCENARIOS = (
    "tail_forward",
    "tail_forward_ack",
    "json_filters_forward",
    "tail_es",
    "tail_es_gzip",
    "tail_http",
    "apache2_forward",
    "cri_forward",
)
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
    """Write ``records`` JSON lines to ``path``; returns the bytes written."""
    return _write_lines(path, map(make_line, range(records)))


_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "curl/8.5.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15",
)


def make_access_line(i: int) -> bytes:
    """One Apache combined-log line of about 200 bytes; a new second every 1,000 lines."""
    second = i // 1000
    stamp = f"01/May/2024:{12 + second // 3600 % 12:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
    return (
        f"10.{i % 7}.{i % 251}.{i % 253} - - [{stamp} +0000] "
        f'"GET /api/v1/items/{i}?page={i % 50} HTTP/1.1" {200 if i % 10 else 404} {i % 90000} '
        f'"https://www.example.com/start.html" "{_AGENTS[i % 3]}"\n'
    ).encode()


def write_access_log(path: Path, records: int) -> int:
    return _write_lines(path, map(make_access_line, range(records)))


def make_cri_lines(i: int) -> list[bytes]:
    """Record ``i`` as CRI lines: every fourth record comes as a partial (P) and a full (F) line."""
    nanos = i * 100_000  # 10,000 records a second
    seconds = 1714564800 + nanos // 1_000_000_000
    clock = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    stamp = f"{clock}.{nanos % 1_000_000_000:09d}Z"
    text = f"level=info seq={i} msg=request served in {i % 97} ms " + "x" * 110
    if i % 4 == 3:
        half = len(text) // 2
        return [
            f"{stamp} stdout P {text[:half]}\n".encode(),
            f"{stamp} stdout F {text[half:]}\n".encode(),
        ]
    return [f"{stamp} stdout F {text}\n".encode()]


def write_cri_log(path: Path, records: int) -> int:
    """``records`` records as CRI lines (about 1.25 lines a record)."""
    return _write_lines(path, (line for i in range(records) for line in make_cri_lines(i)))


def _write_lines(path: Path, lines: Any) -> int:
    total = 0
    with path.open("wb", buffering=1 << 20) as f:
        batch: list[bytes] = []
        for line in lines:
            batch.append(line)
            if len(batch) == 10_000:
                data = b"".join(batch)
                f.write(data)
                total += len(data)
                batch.clear()
        data = b"".join(batch)
        f.write(data)
        total += len(data)
    return total


_WRITERS = {"json": write_workload, "apache": write_access_log, "cri": write_cri_log}


def workload_for(scenario: str, records: int, workdir: Path) -> Path:
    """The workload file of ``scenario`` with ``records`` records (written once, then reused)."""
    kind = WORKLOADS.get(scenario, "json")
    path = workdir / ("workload.log" if kind == "json" else f"workload-{kind}.log")
    count = path.with_suffix(".count")
    try:
        written = int(count.read_text())
    except (OSError, ValueError):
        written = -1
    if written != records or not path.exists():
        _WRITERS[kind](path, records)
        count.write_text(str(records))
    return path


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def compile_agent() -> None:
    """Write relaybit's bytecode, as installing a wheel does.

    A run must not time the compiling of relaybit's sources: an editable
    install under ``PYTHONDONTWRITEBYTECODE`` would compile them at every start.
    """
    compileall.compile_dir(Path(relaybit.__file__).parent, quiet=1)


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


def start_receiver(
    workdir: Path, index: int, tls: tuple[Path, Path] | None, kind: str = "forward"
) -> Receiver:
    """A counting receiver process: ``forward``, ``es`` (Bulk API) or ``lines`` (HTTP)."""
    stats = workdir / f"receiver-{index}.json"
    if kind == "forward":
        cmd = [sys.executable, str(HERE / "receiver.py"), "--stats", str(stats)]
        if tls:
            cmd += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
    else:
        cmd = [sys.executable, str(HERE / "http_receiver.py"), "--stats", str(stats)]
        cmd += ["--mode", kind]
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


#: the filters of json_filters_forward, for both agents
FILTERS = [
    "[FILTER]",
    "    name     grep",
    "    match    *",
    "    regex    level ^info$",
    "",
    "[FILTER]",
    "    name     modify",
    "    match    *",
    "    add      host web-1",
    "    rename   msg message",
    "",
]

#: Fluent Bit has no built-in parsers: the stock definitions it ships in conf/parsers.conf
FLUENT_BIT_PARSERS = r"""[PARSER]
    Name   json
    Format json

[PARSER]
    Name   apache2
    Format regex
    Regex  ^(?<host>[^ ]*) [^ ]* (?<user>[^ ]*) \[(?<time>[^\]]*)\] "(?<method>\S+)(?: +(?<path>[^ ]*) +\S*)?" (?<code>[^ ]*) (?<size>[^ ]*)(?: "(?<referer>[^\"]*)" "(?<agent>.*)")?$
    Time_Key time
    Time_Format %d/%b/%Y:%H:%M:%S %z
"""


def tail_input(scenario: str, workload: Path) -> list[str]:
    """The tail input of a scenario, for both agents."""
    lines = [
        "[INPUT]",
        "    name            tail",
        "    tag             bench",
        f"    path            {workload}",
        "    read_from_head  on",
        "    refresh_interval 1",
    ]
    if scenario == "json_filters_forward":
        lines.append("    parser          json")
    elif scenario == "apache2_forward":
        lines.append("    parser          apache2")
    elif scenario == "cri_forward":
        lines.append("    multiline.parser cri")
    return [*lines, ""]


def output_section(scenario: str, ports: list[int], fluent_bit: bool) -> list[str]:
    """The output of a scenario (Fluent Bit's http output takes the first receiver)."""
    if scenario in ("tail_es", "tail_es_gzip"):
        gzip = ["    compress  gzip"] if scenario == "tail_es_gzip" else []
        return [
            "[OUTPUT]",
            "    name      es",
            "    match     *",
            "    upstream  upstream.conf",
            *gzip,
            "",
        ]
    if scenario == "tail_http":
        out = ["[OUTPUT]", "    name      http", "    match     *", "    format    json_lines"]
        if fluent_bit:
            out += ["    host      127.0.0.1", f"    port      {ports[0]}", "    uri       /"]
        else:
            out += ["    upstream  upstream.conf", "    uri       /"]
        return [*out, ""]
    out = ["[OUTPUT]", "    name      forward", "    match     *", "    upstream  upstream.conf"]
    if scenario == "tail_forward_ack":
        out.append("    require_ack_response on")
    return [*out, ""]


def fluent_bit_config(scenario: str, workload: Path, ports: list[int]) -> str:
    """The same pipeline for Fluent Bit (parsers from fluent-bit-parsers.conf)."""
    service = [
        "[SERVICE]",
        "    flush         0.2",
        "    log_level     warn",
        "    parsers_file  fluent-bit-parsers.conf",
        "",
    ]
    filters = FILTERS if scenario == "json_filters_forward" else []
    return "\n".join(
        [
            *service,
            *tail_input(scenario, workload),
            *filters,
            *output_section(scenario, ports, fluent_bit=True),
        ]
    )


def agent_config(
    scenario: str,
    workload: Path,
    records: int,
    http_port: int,
    forward_port: int,
    extra_service: tuple[str, ...] = (),
    ports: list[int] | None = None,
) -> str:
    # the monitoring API only where the run reads it (dummy_null counts through it):
    # Fluent Bit runs without its HTTP server, and so does relaybit
    api = (
        ["    http_server  on", "    http_listen  127.0.0.1", f"    http_port    {http_port}"]
        if scenario == "dummy_null"
        else []
    )
    service = [
        "[SERVICE]",
        "    flush        0.2",
        "    log_level    warn",
        *api,
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
            "",
        ]
    else:
        source = tail_input(scenario, workload)
    filters = FILTERS if scenario == "json_filters_forward" else []
    output = output_section(scenario, ports or [], fluent_bit=False)
    return "\n".join([*service, *source, *filters, *output])


def expected_records(scenario: str, records: int) -> int:
    """Records the receivers must count (every workload record passes the filters)."""
    return records


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
    agent: str = "relaybit"


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
    fluent_bit: str | None = None,
) -> Result:
    """Run one scenario with ``records`` records; every process is ended before returning.

    ``fluent_bit`` (the path of a fluent-bit binary) runs Fluent Bit instead of relaybit.
    """
    name = "fluent-bit" if fluent_bit else "relaybit"
    workload = workload_for(scenario, records, workdir)
    payload_bytes = workload.stat().st_size
    want = expected_records(scenario, records)
    tls = make_tls(workdir) if scenario == "tail_forward_tls" else None
    if scenario == "tail_forward_tls" and tls is None:
        return Result(scenario, records, 0, 0, 0, 0, 0, 0, complete=False, note="trustme missing")
    receivers: list[Receiver] = []
    profiler: subprocess.Popen[bytes] | None = None
    agent: subprocess.Popen[bytes] | None = None
    pusher: subprocess.Popen[bytes] | None = None
    rundir = Path(tempfile.mkdtemp(prefix=f"{scenario}-{name}-", dir=workdir))
    try:
        kind = RECEIVERS.get(scenario, "forward")
        if kind != "none":
            receivers = [
                start_receiver(rundir, i, tls if i == 3 else None, kind) for i in (1, 2, 3)
            ]
        ports = [r.port for r in receivers]
        (rundir / "upstream.conf").write_text(upstream_file(ports, tls is not None))
        http_port, forward_port = free_port(), free_port()
        config = rundir / "agent.conf"
        if fluent_bit:
            (rundir / "fluent-bit-parsers.conf").write_text(FLUENT_BIT_PARSERS)
            config.write_text(fluent_bit_config(scenario, workload, ports))
            command = [fluent_bit, "-c", str(config)]
        else:
            config.write_text(
                agent_config(
                    scenario, workload, records, http_port, forward_port, extra_service, ports
                )
            )
            command = [*agent_command(), "-c", str(config)]
        log = (rundir / "agent.log").open("wb")
        started = time.time()
        agent = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=rundir)
        log.close()
        sampler = Sampler(agent.pid)
        if profile_dir is not None and not fluent_bit:
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
            if received() >= want:
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
        complete = got == want
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
            agent=name,
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


def print_table(results: list[Result]) -> None:
    header = (
        f"{'scenario':<21} {'agent':<10} {'records':>9} {'received':>9} {'seconds':>8}"
        f" {'rec/s':>9} {'MB/s':>7} {'cpu s':>6} {'peak MB':>8} {'stream/s':>9}  per node"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        mark = "" if r.complete else f"  INCOMPLETE ({r.note})"
        print(
            f"{r.scenario:<21} {r.agent:<10} {r.records:>9} {r.received:>9} {r.seconds:>8.2f} "
            f"{r.records_per_s:>9} {r.mb_per_s:>7.2f} {r.cpu_seconds:>6.2f} {r.peak_rss_mb:>8.1f} "
            f"{r.stream_records_per_s or '-':>9}  "
            f"{'/'.join(map(str, r.per_node))}{mark}"
        )


def median_run(runs: list[Result]) -> Result:
    """The run with the median time (the lower middle one of an even count)."""
    ordered = sorted(runs, key=lambda r: (not r.complete, r.seconds))
    return ordered[(len(ordered) - 1) // 2]


def comparisons(results: list[Result]) -> list[dict[str, Any]]:
    """relaybit beside Fluent Bit, one row per scenario and size that ran with both."""
    rows = []
    for r in results:
        if r.agent != "relaybit":
            continue
        fb = next(
            (
                x
                for x in results
                if x.agent == "fluent-bit" and (x.scenario, x.records) == (r.scenario, r.records)
            ),
            None,
        )
        if fb is None:
            continue
        rows.append(
            {
                "scenario": r.scenario,
                "records": r.records,
                "relaybit_rec_s": r.records_per_s,
                "fluent_bit_rec_s": fb.records_per_s,
                "ratio": round(r.records_per_s / fb.records_per_s, 2) if fb.records_per_s else None,
                "relaybit_cpu_s": r.cpu_seconds,
                "fluent_bit_cpu_s": fb.cpu_seconds,
                "relaybit_peak_mb": r.peak_rss_mb,
                "fluent_bit_peak_mb": fb.peak_rss_mb,
                "complete": r.complete and fb.complete,
            }
        )
    return rows


def print_comparison(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'scenario':<21} {'records':>9} {'relaybit/s':>11} {'fluent-bit/s':>13} {'ratio':>6}"
        f" {'cpu s rb':>9} {'cpu s fb':>9} {'peak MB rb':>11} {'peak MB fb':>11}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else "-"
        mark = "" if row["complete"] else "  INCOMPLETE"
        print(
            f"{row['scenario']:<21} {row['records']:>9} {row['relaybit_rec_s']:>11}"
            f" {row['fluent_bit_rec_s']:>13} {ratio:>6} {row['relaybit_cpu_s']:>9.2f}"
            f" {row['fluent_bit_cpu_s']:>9.2f} {row['relaybit_peak_mb']:>11.1f}"
            f" {row['fluent_bit_peak_mb']:>11.1f}{mark}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="relaybit benchmarks",
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES[:2])))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run at most")
    parser.add_argument("--workdir", help="keep workloads and logs here (default: a temp dir)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run each scenario N times (agents alternating) and report the median run",
    )
    parser.add_argument(
        "--fluent-bit",
        metavar="PATH",
        help="also run each scenario that has a Fluent Bit configuration with this fluent-bit"
        " binary, on the same workload and receivers, and print both side by side",
    )
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
    if args.fluent_bit and not os.access(args.fluent_bit, os.X_OK):
        parser.error(f"--fluent-bit {args.fluent_bit}: not an executable file")
    compile_agent()
    results: list[Result] = []
    every_run: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="relaybit-bench-") as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for size in sizes:
            for scenario in scenarios:
                agents: list[str | None] = [None]
                if args.fluent_bit and scenario in FLUENT_BIT_SCENARIOS:
                    agents.append(args.fluent_bit)
                runs: dict[str | None, list[Result]] = {a: [] for a in agents}
                for _ in range(max(args.repeat, 1)):
                    for agent in agents:
                        result = run_one(
                            scenario,
                            size,
                            workdir,
                            args.timeout,
                            tuple(args.service),
                            Path(args.profile) if args.profile and agent is None else None,
                            fluent_bit=agent,
                        )
                        runs[agent].append(result)
                        if not args.json:
                            print(
                                f"# {scenario} {size} {result.agent}: "
                                f"{result.records_per_s} rec/s, {result.cpu_seconds} s CPU",
                                file=sys.stderr,
                            )
                results.extend(median_run(r) for r in runs.values())
                every_run.extend(r for rs in runs.values() for r in rs)
    rows = comparisons(results)
    if args.json:
        doc = {
            "machine": machine(),
            "repeat": args.repeat,
            "results": [asdict(r) for r in results],
            "comparison": rows,
            "runs": [asdict(r) for r in every_run],
        }
        print(json.dumps(doc, indent=2))
    else:
        print(f"# {machine()['cpu']} x{machine()['nproc']}, {machine()['memory_gb']} GB")
        if args.repeat > 1:
            print(f"# each row: the median of {args.repeat} runs")
        print_table(results)
        if rows:
            print()
            print_comparison(rows)
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

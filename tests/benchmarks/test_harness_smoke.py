"""Smoke runs of the benchmark harness: the counts add up (no timing assertions)."""

from __future__ import annotations

import gzip
import importlib.util
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import http_receiver  # noqa: E402
import receiver  # noqa: E402
import run  # noqa: E402


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


AGENT_READY = _importable("relaybit.agent")
FORWARD_READY = AGENT_READY and _importable("relaybit.plugins.outputs.forward")


def packed(n: int) -> bytes:
    return b"".join(msgpack.packb([1700000000 + i, {"log": f"line {i}"}]) for i in range(n))


def test_count_packed_and_gunzip_all() -> None:
    data = packed(37)
    assert receiver.count_packed(data) == 37
    assert receiver.count_packed(b"") == 0
    two_members = gzip.compress(data[:100]) + gzip.compress(data[100:])
    assert receiver.gunzip_all(two_members) == data


def test_workload_lines_are_json_of_about_200_bytes(tmp_path: Path) -> None:
    path = tmp_path / "w.log"
    size = run.write_workload(path, 25_001)
    lines = path.read_bytes().splitlines()
    assert len(lines) == 25_001 and size == path.stat().st_size
    assert all(abs(len(line) + 1 - run.LINE_BYTES) <= 5 for line in lines[::997])
    assert json.loads(lines[-1])["seq"] == 25_000


def recv_until(sock: socket.socket, n: int) -> list[object]:
    unpacker = msgpack.Unpacker()
    out: list[object] = []
    deadline = time.monotonic() + 10
    while len(out) < n and time.monotonic() < deadline:
        unpacker.feed(sock.recv(4096))
        out.extend(unpacker)
    return out


def test_receiver_counts_every_mode_and_acks(tmp_path: Path) -> None:
    rec = run.start_receiver(tmp_path, 1, None)
    try:
        with socket.create_connection(("127.0.0.1", rec.port)) as sock:
            sock.sendall(
                msgpack.packb(["t", packed(10), {"size": 10, "chunk": "c1"}])
                + msgpack.packb(
                    ["t", gzip.compress(packed(5)), {"compressed": "gzip", "chunk": "c2"}]
                )
                + msgpack.packb(["t", [[1, {"a": 1}], [2, {"a": 2}]]])
                + b"\xc0"  # heartbeat
                + msgpack.packb(["t", 3, {"a": 3}, {"chunk": "c3"}])
            )
            acks = recv_until(sock, 3)
        assert acks == [{"ack": "c1"}, {"ack": "c2"}, {"ack": "c3"}]
        assert run.wait_for(lambda: rec.counts()["records"] == 18, time.monotonic() + 10)
        assert rec.counts()["messages"] == 4
    finally:
        run.stop(rec.proc)
    assert rec.proc.returncode == 0


def test_receiver_speaks_tls(tmp_path: Path) -> None:
    import ssl

    tls = run.make_tls(tmp_path)
    assert tls is not None
    rec = run.start_receiver(tmp_path, 3, tls)
    try:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with (
            socket.create_connection(("127.0.0.1", rec.port)) as raw,
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
        ):
            sock.sendall(msgpack.packb(["t", packed(7), {"chunk": "x"}]))
            assert recv_until(sock, 1) == [{"ack": "x"}]
        assert run.wait_for(lambda: rec.counts()["records"] == 7, time.monotonic() + 10)
    finally:
        run.stop(rec.proc)


def test_pusher_sends_exactly_the_records(tmp_path: Path) -> None:
    workload = tmp_path / "w.log"
    run.write_workload(workload, 50)
    rec = run.start_receiver(tmp_path, 1, None)
    try:
        proc = subprocess.run(
            [
                sys.executable,
                str(BENCH / "pusher.py"),
                f"--port={rec.port}",
                "--records=2345",
                f"--workload={workload}",
                "--batch=100",
            ],
            capture_output=True,
            timeout=60,
            input=b"",
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(b"START ")
        assert run.wait_for(lambda: rec.counts()["records"] == 2345, time.monotonic() + 10)
    finally:
        run.stop(rec.proc)


@pytest.mark.slow
@pytest.mark.skipif(not FORWARD_READY, reason="the forward output has not landed yet")
@pytest.mark.parametrize(
    "scenario",
    [
        "tail_forward",
        "forward_relay",
        "json_filters_forward",
        "tail_es",
        "tail_es_gzip",
        "tail_http",
        "apache2_forward",
        "cri_forward",
    ],
)
def test_harness_runs_a_scenario_and_counts_add_up(tmp_path: Path, scenario: str) -> None:
    result = run.run_one(scenario, 2_000, tmp_path, timeout=60)
    assert result.complete, result
    assert result.received == 2_000
    assert sum(result.per_node) == 2_000
    assert len(result.per_node) == 3
    assert result.cpu_seconds > 0 and result.peak_rss_mb > 0


@pytest.mark.slow
@pytest.mark.skipif(not AGENT_READY, reason="relaybit.agent has not landed yet")
def test_harness_dummy_null_counts_through_the_monitoring_api(tmp_path: Path) -> None:
    result = run.run_one("dummy_null", 2_000, tmp_path, timeout=60)
    assert result.complete, result
    assert result.received == 2_000 and result.per_node == []


# ------------------------------------------------------------------ HTTP receivers


def http_request(
    port: int, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def bulk_body(n: int, op: str = "create") -> bytes:
    return b"".join(
        json.dumps({op: {"_index": "logs"}}).encode()
        + b"\n"
        + json.dumps({"i": i}).encode()
        + b"\n"
        for i in range(n)
    )


def test_es_receiver_answers_the_bulk_api_and_counts_documents(tmp_path: Path) -> None:
    rec = run.start_receiver(tmp_path, 1, None, "es")
    try:
        status, info = http_request(rec.port, "GET", "/")
        assert status == 200 and json.loads(info)["version"]["number"]
        status, answer = http_request(
            rec.port, "POST", "/_bulk", bulk_body(7), {"Content-Type": "application/x-ndjson"}
        )
        assert status == 200
        assert b'"errors":false,"items":[' in answer  # what Fluent Bit looks for
        doc = json.loads(answer)
        assert len(doc["items"]) == 7
        assert doc["items"][0]["create"]["status"] == 201
        assert doc["items"][0]["create"]["_index"] == "logs"
        # gzip and a chunked body (one request, two chunks)
        status, answer = http_request(
            rec.port,
            "POST",
            "/_bulk",
            gzip.compress(bulk_body(5, "index")),
            {"Content-Encoding": "gzip"},
        )
        assert status == 200 and len(json.loads(answer)["items"]) == 5
        assert "index" in json.loads(answer)["items"][0]
        with socket.create_connection(("127.0.0.1", rec.port)) as sock:
            body = bulk_body(3)
            sock.sendall(
                b"POST /_bulk HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                + b"%x\r\n" % 10
                + body[:10]
                + b"\r\n"
                + b"%x\r\n" % (len(body) - 10)
                + body[10:]
                + b"\r\n0\r\n\r\n"
            )
            reply = b""
            while b"]}" not in reply:
                reply += sock.recv(65536)
        assert reply.startswith(b"HTTP/1.1 200 OK")
        assert run.wait_for(lambda: rec.counts()["records"] == 15, time.monotonic() + 10)
        assert rec.counts()["messages"] == 3
    finally:
        run.stop(rec.proc)
    assert rec.proc.returncode == 0


def test_lines_receiver_counts_json_lines_and_answers_the_status(tmp_path: Path) -> None:
    stats = tmp_path / "lines.json"
    proc = subprocess.Popen(
        [sys.executable, str(BENCH / "http_receiver.py"), "--stats", str(stats), "--status", "201"],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline().split()[1])
    try:
        status, _ = http_request(port, "POST", "/", b'{"a":1}\n{"a":2}\n\n{"a":3}\n')
        assert status == 201
        rec = run.Receiver(proc, port, stats)
        assert run.wait_for(lambda: rec.counts()["records"] == 3, time.monotonic() + 10)
    finally:
        run.stop(proc)


def test_bulk_response_counts_pairs() -> None:
    docs, answer = http_receiver.bulk_response(bulk_body(4), 1)
    assert docs == 4 and len(json.loads(answer)["items"]) == 4
    assert http_receiver.bulk_response(b"", 1)[0] == 0


# ------------------------------------------------------------------ workloads and configs


def test_access_log_workload_is_parsed_whole_by_apache2(tmp_path: Path) -> None:
    from relaybit.parsers import BUILTIN_PARSERS

    path = tmp_path / "a.log"
    run.write_access_log(path, 3_000)
    lines = path.read_bytes().decode().splitlines()
    parsed = [BUILTIN_PARSERS["apache2"].parse(line) for line in lines]
    assert all(p is not None and p[0] is not None for p in parsed)
    assert {p[0].seconds for p in parsed if p} == {1714564800, 1714564801, 1714564802}
    assert abs(sum(map(len, lines)) / len(lines) - run.LINE_BYTES) < 20


def test_cri_workload_joins_to_its_record_count(tmp_path: Path) -> None:
    from relaybit.codec.msgpack import EventTime
    from relaybit.multiline import MultilineStream
    from relaybit.multiline.builtin import cri

    path = tmp_path / "c.log"
    run.write_cri_log(path, 1_001)
    lines = path.read_bytes().splitlines()
    assert len(lines) == 1_001 + 250  # one record in four is split in two lines
    stream = MultilineStream([cri()])
    records = stream.feed_lines(lines, EventTime(1, 0), 0.0) + stream.flush()
    assert len(records) == 1_001
    assert all(r["_p"] in ("F", "P") and "seq=" in r["log"] for _, r in records)


@pytest.mark.parametrize("scenario", run.FLUENT_BIT_SCENARIOS)
def test_fluent_bit_configs_name_the_same_pipeline(tmp_path: Path, scenario: str) -> None:
    workload = tmp_path / "w.log"
    fb = run.fluent_bit_config(scenario, workload, [1, 2, 3])
    ours = run.agent_config(scenario, workload, 10, 4, 5, (), [1, 2, 3])
    assert "parsers_file  fluent-bit-parsers.conf" in fb
    for line in ours.splitlines():  # every input, filter and parser line is the same
        if line.strip().startswith(
            ("name", "parser", "multiline.parser", "regex", "add", "rename", "compress")
        ):
            assert line in fb.splitlines(), line


def test_fluent_bit_parsers_file_defines_json_and_apache2_as_relaybit_has_them(
    tmp_path: Path,
) -> None:
    from relaybit.config.loader import read_sections
    from relaybit.parsers import BUILTIN_PARSERS, build_parsers

    path = tmp_path / "fluent-bit-parsers.conf"
    path.write_text(run.FLUENT_BIT_PARSERS)
    sections = read_sections(path)
    parsers = build_parsers([s for s in sections if s.kind == "parser"])
    line = run.make_access_line(5).decode().rstrip("\n")
    assert parsers["apache2"].parse(line) == BUILTIN_PARSERS["apache2"].parse(line)


def test_comparison_rows_pair_the_agents_and_take_the_median() -> None:
    def result(agent: str, seconds: float, rate: int) -> run.Result:
        return run.Result("s", 10, 10, seconds, rate, 1.0, 1.0, 50.0, agent=agent)

    runs = [result("relaybit", 3.0, 3), result("relaybit", 1.0, 10), result("relaybit", 2.0, 5)]
    assert run.median_run(runs).seconds == 2.0
    rows = run.comparisons([result("relaybit", 2.0, 300), result("fluent-bit", 1.0, 200)])
    assert rows[0]["ratio"] == 1.5
    assert rows[0]["relaybit_rec_s"] == 300 and rows[0]["fluent_bit_rec_s"] == 200

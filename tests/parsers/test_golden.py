"""Golden tests: every parser and multiline parser, compared on decoded records.

Three levels, each against golden_expected.py (written from the code before the
fast paths and read by hand):

- ``parser.parse(text)`` of every stock parser and of user ``[PARSER]`` sections
  (json, regex, logfmt, ltsv; time_key / time_format / time_keep / time_offset,
  types, decoders), as the parser filter calls it;
- the tail input reading the same lines from a file with ``parser X`` (the bytes
  it emits, decoded: non-UTF-8 bytes, big integers, exact EventTimes, key order,
  int/float/bool kept apart, the line kept under ``log`` when nothing matches);
- the tail input with ``multiline.parser`` (cri, docker, go, python, java, a list
  of them, and ``[MULTILINE_PARSER]`` sections of each type).

Regenerate (only for a bug you name): ``python tests/parsers/test_golden.py --write``.
"""

from __future__ import annotations

import asyncio
import os
import pprint
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import golden_cases
import pytest

from relaybit.codec.msgpack import EventTime, iter_entries
from relaybit.config.loader import load_config
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.parsers import build_parsers, with_builtins
from relaybit.plugins.base import INPUT_COMMON, InputContext
from relaybit.plugins.inputs.tail import TailInput
from relaybit.testing import FakeClock, wait_for

_HERE = Path(__file__).resolve().parent

#: the tail's clock: records without a parsed time get this time
WALL = 1_700_000_000.25


def service(tmp_path: Path) -> dict[str, Any]:
    """The parsers and multiline parsers of golden_cases, as the agent hands them to inputs."""
    conf = tmp_path / "parsers.conf"
    conf.write_text(golden_cases.PARSERS_CONF + golden_cases.MULTILINE_CONF)
    config = load_config(conf)
    return {
        "parsers": with_builtins(build_parsers(config.parsers)),
        "multiline_parsers": config.multiline_parsers,
    }


def canon(value: Any) -> Any:
    """A form that compares maps in order and keeps int, float, bool and str apart."""
    if isinstance(value, dict):
        return ("map", [(canon(k), canon(v)) for k, v in value.items()])
    if isinstance(value, list | tuple):
        return ("array", [canon(v) for v in value])
    return (type(value).__name__, value)


def text_of(line: bytes) -> str:
    return line.decode("utf-8", "surrogateescape")


async def tail_entries(
    tmp_path: Path, name: str, lines: list[bytes], svc: dict[str, Any], **props: str
) -> list[tuple[Any, Any]]:
    """Run a real tail over ``lines`` with ``props``; every entry it emitted, decoded."""
    log = tmp_path / f"{abs(hash(name))}.log"
    log.write_bytes(b"".join(line + b"\n" for line in lines))
    got: list[tuple[Any, Any]] = []

    async def emit(tag: str, data: bytes, records: int) -> None:
        entries = list(iter_entries(data))
        assert len(entries) == records
        got.extend(entries)

    raw = [
        RawProperty(k.replace("__", "."), v, Origin("golden.conf", i + 1))
        for i, (k, v) in enumerate(
            {"path": str(log), "read_from_head": "on", "poll_interval": "0.02", **props}.items()
        )
    ]
    opts = (INPUT_COMMON + TailInput.options).resolve(raw, section="[INPUT] tail")
    ctx = InputContext(
        name="tail.0",
        plugin="tail",
        options=opts,
        emit=emit,
        tag="golden",
        service=svc,
        clock=FakeClock(wall=WALL),
    )
    tail = TailInput(ctx)
    await tail.start()
    size = os.path.getsize(log)
    try:
        await wait_for(
            lambda: bool(tail.files) and all(f.offset >= size for f in tail.files.values()),
            timeout=10,
            what="the whole file read",
        )
    finally:
        await tail.stop()  # emits what multiline still holds
    return got


# ------------------------------------------------------------------------ the tests

try:
    import golden_expected
except ImportError:  # while (re)generating
    golden_expected = None  # type: ignore[assignment]


def _parse_ids() -> list[tuple[str, int]]:
    return [(name, i) for name, lines in golden_cases.CASES.items() for i in range(len(lines))]


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return service(tmp_path_factory.mktemp("golden"))


@pytest.mark.parametrize(("name", "index"), _parse_ids(), ids=lambda v: str(v))
def test_parse_matches_the_golden(svc: dict[str, Any], name: str, index: int) -> None:
    line = golden_cases.CASES[name][index]
    got = svc["parsers"][name].parse(text_of(line))
    assert canon(got) == canon(golden_expected.PARSE[name][index]), (line, got)


@pytest.mark.parametrize("name", list(golden_cases.CASES))
async def test_tail_with_parser_emits_the_golden(
    tmp_path: Path, svc: dict[str, Any], name: str
) -> None:
    got = await tail_entries(tmp_path, name, golden_cases.CASES[name], svc, parser=name)
    expected = golden_expected.TAIL[name]
    assert len(got) == len(expected)
    for entry, want in zip(got, expected, strict=True):
        assert canon(entry) == canon(want)


@pytest.mark.parametrize("name", list(golden_cases.MULTILINE))
async def test_tail_with_multiline_parser_emits_the_golden(
    tmp_path: Path, svc: dict[str, Any], name: str
) -> None:
    got = await tail_entries(
        tmp_path, name, golden_cases.MULTILINE[name], svc, multiline__parser=name
    )
    expected = golden_expected.MULTILINE[name]
    assert [canon(e) for e in got] == [canon(e) for e in expected]


# ------------------------------------------------------------------------ generation


class _Yearless:
    """Writes a time parsed from a format without a year as ``yearless(...)``."""

    def __init__(self, when: EventTime) -> None:
        self.when = when

    def __repr__(self) -> str:
        t = time.gmtime(self.when.seconds)
        return (
            f"yearless({t.tm_mon}, {t.tm_mday}, {t.tm_hour}, {t.tm_min}, {t.tm_sec}, "
            f"{self.when.nanoseconds})"
        )


def _mark_yearless(value: Any) -> Any:
    if isinstance(value, EventTime):
        return _Yearless(value)
    if isinstance(value, tuple):
        return tuple(_mark_yearless(v) for v in value)
    if isinstance(value, list):
        return [_mark_yearless(v) for v in value]
    return value


async def _generate(tmp_path: Path) -> str:
    svc = service(tmp_path)
    parse: dict[str, Any] = {}
    tail: dict[str, Any] = {}
    multi: dict[str, Any] = {}
    for name, lines in golden_cases.CASES.items():
        parsed = [svc["parsers"][name].parse(text_of(line)) for line in lines]
        entries = await tail_entries(tmp_path, name, lines, svc, parser=name)
        if name.startswith("syslog-rfc3164"):
            parsed, entries = _mark_yearless(parsed), _mark_yearless(entries)
        parse[name], tail[name] = parsed, entries
    for name, lines in golden_cases.MULTILINE.items():
        multi[name] = await tail_entries(tmp_path, name, lines, svc, multiline__parser=name)
    body = "\n\n".join(
        f"{var} = {pprint.pformat(value, width=100, sort_dicts=False)}"
        for var, value in (("PARSE", parse), ("TAIL", tail), ("MULTILINE", multi))
    )
    return (
        '"""Golden outputs of test_golden.py (generated: python tests/parsers/test_golden.py '
        '--write)."""\n\n'
        "from __future__ import annotations\n\n"
        "import calendar\n"
        "import time\n\n"
        "from relaybit.codec.msgpack import EventTime\n\n\n"
        "def yearless(month: int, day: int, hour: int, minute: int, second: int, nanos: int = 0)"
        " -> EventTime:\n"
        '    """A time whose format has no year: Fluent Bit takes the current one."""\n'
        "    year = time.gmtime().tm_year\n"
        "    return EventTime(calendar.timegm((year, month, day, hour, minute, second)), nanos)\n"
        "\n\n" + body + "\n"
    )


if __name__ == "__main__":  # pragma: no cover - regeneration by hand
    import tempfile

    if "--write" not in sys.argv:
        sys.exit("usage: python tests/parsers/test_golden.py --write")
    with tempfile.TemporaryDirectory() as tmp:
        text = asyncio.run(_generate(Path(tmp)))
    out = _HERE / "golden_expected.py"
    out.write_text(text)
    ruff = Path(sys.executable).parent / "ruff"
    if ruff.exists():  # the suite checks the format of tests/
        subprocess.run([str(ruff), "format", "-q", str(out)], check=False)
    print(f"wrote {out}")

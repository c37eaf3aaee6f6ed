"""The built-in parsers against the real Fluent Bit, record for record (opt-in).

Set ``FLUENT_BIT`` to a Fluent Bit 5.1 binary (../shared/PEERS.md says how to
build it here); CI has none, so this is skipped there with that reason:

    FLUENT_BIT=/path/to/fluent-bit .venv/bin/python -m pytest tests/parsers/test_fluent_bit_parity.py

Fluent Bit reads every golden line of every parser with the same definitions
(relaybit's built-ins written as a parsers file: they are Fluent Bit 5.1.1's
``conf/parsers.conf``; and the golden ``[PARSER]`` sections: time formats,
types, decoders) through tail and its file output; its records must equal the
tail goldens, times included, but for the differences docs/compatibility.md
names (listed below).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import golden_cases
import golden_expected
import msgpack
import pytest
from test_golden import WALL, canon

from relaybit.codec.msgpack import EventTime, ext_hook
from relaybit.parsers.builtin import DEFINITIONS

FLUENT_BIT = os.environ.get("FLUENT_BIT", "")

pytestmark = pytest.mark.skipif(
    not (FLUENT_BIT and os.access(FLUENT_BIT, os.X_OK)),
    reason="set FLUENT_BIT to a Fluent Bit binary to compare the parsers with it",
)

#: Fluent Bit drops a record whose time is out of range: the counts differ
NOT_COMPARED = {"epoch_json"}
NAMES = [name for name in golden_cases.CASES if name not in NOT_COMPARED]

#: (parser, line index): documented differences (docs/compatibility.md)
DIFFERENT = {
    # a time that does not follow Time_Format: Fluent Bit drops the field (logfmt: the
    # whole parse, the line stays raw), relaybit keeps it
    ("apache", 5),
    ("apache2", 5),
    ("syslog-rfc5424", 2),
    ("cri", 2),
    ("app_json", 3),
    ("kv", 1),
    # Types on a json parser: Fluent Bit ignores them
    ("app_json", 0),
    # integer / hex casts past 64 bits: Fluent Bit saturates, relaybit keeps the text
    ("local_regex", 1),
}


def parsers_file() -> str:
    lines: list[str] = []
    for definition in DEFINITIONS:
        lines.append("[PARSER]")
        lines += [f"    {key} {value}" for key, value in definition.items()]
        lines.append("")
    return "\n".join(lines) + golden_cases.PARSERS_CONF


def fluent_bit_entries(tmp_path: Path, name: str, lines: list[bytes]) -> list[Any]:
    log = tmp_path / f"{name}.log"
    log.write_bytes(b"".join(line + b"\n" for line in lines))
    (tmp_path / "parsers.conf").write_text(parsers_file())
    conf = tmp_path / f"{name}.conf"
    conf.write_text(
        "[SERVICE]\n    flush 0.1\n    log_level error\n"
        f"    parsers_file {tmp_path / 'parsers.conf'}\n"
        f"[INPUT]\n    name tail\n    path {log}\n    read_from_head on\n"
        f"    exit_on_eof on\n    parser {name}\n"
        f"[OUTPUT]\n    name file\n    match *\n    path {tmp_path}\n"
        f"    file {name}.out\n    format msgpack\n"
    )
    subprocess.run([FLUENT_BIT, "-c", str(conf)], capture_output=True, timeout=60, check=False)
    out = tmp_path / f"{name}.out"
    unpacker = msgpack.Unpacker(
        ext_hook=ext_hook, raw=False, strict_map_key=False, unicode_errors="surrogateescape"
    )
    unpacker.feed(out.read_bytes() if out.exists() else b"")
    entries = []
    for when, record in unpacker:
        entries.append((when[0] if isinstance(when, list) else when, record))
    return entries


@pytest.mark.parametrize("name", NAMES)
def test_fluent_bit_gives_the_records_of_the_golden(tmp_path: Path, name: str) -> None:
    lines = golden_cases.CASES[name]
    theirs = fluent_bit_entries(tmp_path, name, lines)
    ours = golden_expected.TAIL[name]
    assert len(theirs) == len(ours)
    now = EventTime.from_float(WALL)
    for index, ((their_time, their_record), (our_time, our_record)) in enumerate(
        zip(theirs, ours, strict=True)
    ):
        if (name, index) in DIFFERENT:
            continue
        assert canon(their_record) == canon(our_record), (name, lines[index])
        if our_time != now:  # a parsed time (the others are each agent's clock)
            assert their_time == our_time, (name, lines[index])

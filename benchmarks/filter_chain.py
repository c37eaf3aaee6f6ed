"""CPU per record of the filter chain, in process: decode, grep, modify, encode, and all of it.

    python benchmarks/filter_chain.py [--records 2000] [--rounds 20]

The records are those of run.py's JSON workload (about 200 bytes), each with
an EventTime, as the tail input with ``parser json`` emits them; the filters
are json_filters_forward's: grep ``regex level ^info$`` and modify ``add host
web-1``, ``rename msg message``.  Each figure is the best of 7 timings of
``--rounds`` batches (process CPU time), in microseconds a record.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from relaybit.codec.msgpack import EventTime, pack_entries
from relaybit.codec.records import decode_entries, encode_entries, new_entry_packer
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.pipeline.filter_chain import FilterChain
from relaybit.plugins.base import FILTER_COMMON, FilterPlugin, PluginContext
from relaybit.plugins.filters.grep import GrepFilter
from relaybit.plugins.filters.modify import ModifyFilter
from run import make_line


def build(cls: type[FilterPlugin], *props: tuple[str, str]) -> FilterPlugin:
    raw = [RawProperty(k, v, Origin("bench", i + 1)) for i, (k, v) in enumerate(props)]
    options = (FILTER_COMMON + cls.options).resolve(raw, section="[FILTER]")
    return cls(PluginContext(name=f"{cls.__name__.lower()}.0", plugin="x", options=options))


def per_record(func: Callable[[], Any], records: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(7):
        start = time.process_time()
        for _ in range(rounds):
            func()
        best = min(best, (time.process_time() - start) / rounds / records * 1e6)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    n = args.records
    data = pack_entries((EventTime(1714564800, i), json.loads(make_line(i))) for i in range(n))
    grep = build(GrepFilter, ("regex", "level ^info$"))
    modify = build(ModifyFilter, ("add", "host web-1"), ("rename", "msg message"))
    chain = FilterChain({"grep": grep, "modify": modify})
    entries = decode_entries(data)
    modified = modify.filter("bench", entries)
    packer = new_entry_packer()
    rows = [
        ("decode", lambda: decode_entries(data)),
        ("grep", lambda: grep.filter("bench", entries)),
        ("modify", lambda: modify.filter("bench", entries)),
        ("encode", lambda: encode_entries(modified, packer)),
        ("chain (all of it)", lambda: chain.run(("grep", "modify"), "bench", data, n)),
    ]
    for name, func in rows:
        print(f"{name:<20} {per_record(func, n, args.rounds):6.2f} us/record")
    return 0


if __name__ == "__main__":
    sys.exit(main())

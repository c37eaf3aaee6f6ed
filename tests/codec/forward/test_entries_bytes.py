"""normalise_packed without decoding: the same entries as decoding and re-encoding them,
and no amplification (entries of tiny containers never cost many times their size)."""

from __future__ import annotations

import tracemalloc
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from relaybit.codec.forward.entries import normalise_packed, repack_entries
from relaybit.codec.msgpack import EventTime, default, ext_hook
from relaybit.errors import RemoteProtocolError


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, default=default, use_bin_type=True)


def _all(data: bytes) -> list[Any]:
    unpacker = msgpack.Unpacker(ext_hook=ext_hook, raw=False, strict_map_key=False)
    unpacker.feed(data)
    return list(unpacker)


def by_decoding(data: bytes) -> tuple[bytes, int]:
    """What normalise_packed did before: decode every entry, re-encode it (the spec)."""
    return repack_entries(_all(data))


times = st.one_of(
    st.integers(min_value=0, max_value=2**32 - 1),
    st.builds(EventTime, st.integers(0, 2**31), st.integers(0, 999_999_999)),
    st.floats(allow_nan=False, allow_infinity=False),
)
records = st.dictionaries(
    st.text(max_size=5), st.integers(-(2**63), 2**64 - 1) | st.text(max_size=5), max_size=3
)
metas = st.one_of(st.none(), st.just({}), records)
entries = st.one_of(
    st.tuples(times, records).map(list),
    st.tuples(times, metas, records).map(lambda t: [[t[0], t[1]], t[2]]),
    st.tuples(times, records).map(lambda t: [[t[0]], t[1]]),
    st.tuples(times, records, st.integers(-(2**63), 2**64 - 1)).map(list),  # extra: ignored
)


@given(st.lists(entries, min_size=1, max_size=6))
def test_same_entries_as_decoding_them(items: list[Any]) -> None:
    data = b"".join(pack(item) for item in items)
    got, count = normalise_packed(data)
    want, want_count = by_decoding(data)
    assert count == want_count == len(items)
    assert _all(got) == _all(want)


@pytest.mark.parametrize(
    "entry",
    [
        [True, {"a": 1}],  # a bool is no time
        ["now", {"a": 1}],
        [1, "not a map"],
        [[], {"a": 1}],
        [[1, "meta"], {"a": 1}],
        [1],
        {"time": 1},
    ],
)
def test_bad_shapes_refused_as_before(entry: Any) -> None:
    data = pack([[1, {"m": 1}], {"ok": 1}]) + pack(entry)  # not plain: the byte path
    with pytest.raises(RemoteProtocolError):
        by_decoding(data)
    with pytest.raises(RemoteProtocolError):
        normalise_packed(data)


def test_tiny_containers_are_not_amplified() -> None:
    # entries [[t, {}], {}] (5 bytes each): decoding them all took ~300 bytes each
    data = b"\x92\x92\x00\x80\x80" * 50_000
    tracemalloc.start()
    try:
        got, count = normalise_packed(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 50_000 and got == b"\x92\x00\x80" * 50_000
    assert peak < 10 * len(data), peak

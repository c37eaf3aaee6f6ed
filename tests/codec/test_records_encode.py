"""encode_entries writes what msgpack writes for each entry, whatever heads the entries share."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relaybit.codec.msgpack import EventTime, default
from relaybit.codec.records import decode_entries, encode_entries, new_entry_packer

T = slice(0, b"eS\xf1\x00\x00\x00\x00\x05")
T2 = slice(0, b"eS\xf1\x01\x00\x00\x00\x00")
BAD = b"caf\xe9 \xff".decode("utf-8", "surrogateescape")


def expected(entries: list[Any]) -> bytes:
    packer = msgpack.Packer(default=default, use_bin_type=True, unicode_errors="surrogateescape")
    return b"".join(packer.pack([head, record]) for head, record in entries)


_heads = st.sampled_from(
    [T, T2, 1_700_000_000, 1_700_000_000.5, [T, {"m": 1}], [T2, {}], EventTime(5, 6)]
)
_records = st.dictionaries(
    st.text(max_size=5),
    st.none() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=8) | st.sampled_from([BAD]),
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(
    heads=st.lists(_heads, min_size=1, max_size=4),
    records=st.lists(_records, min_size=0, max_size=12),
)
def test_same_bytes_as_msgpack_with_shared_and_mixed_heads(
    heads: list[Any], records: list[Any]
) -> None:
    # heads are shared objects (as a decoded batch's are) and change along the batch
    entries = [[heads[i % len(heads)] if i % 3 else heads[0], r] for i, r in enumerate(records)]
    assert encode_entries(entries, new_entry_packer()) == expected(entries)


def test_a_shared_metadata_head_and_tuples() -> None:
    meta = [T, {"trace": "a"}]
    entries = [(meta, {"a": 1}), (meta, {"b": BAD}), [T, {"c": 2}], (meta, {"d": 3})]
    data = encode_entries(entries, new_entry_packer())  # type: ignore[arg-type]
    assert data == expected(entries)
    assert decode_entries(data) == [
        [meta, {"a": 1}],
        [meta, {"b": BAD}],
        [T, {"c": 2}],
        [meta, {"d": 3}],
    ]


def test_an_entry_that_is_not_a_pair_raises() -> None:
    with pytest.raises((TypeError, ValueError)):
        encode_entries([[T, {"a": 1}, "extra"]], new_entry_packer())
    with pytest.raises(TypeError):
        encode_entries([[T, object()]], new_entry_packer())


def test_a_lone_surrogate_is_written_as_fluent_bit_writes_it() -> None:
    # U+FFFD (EF BF BD); bytes that were not UTF-8 (surrogateescape) stay those bytes
    data = encode_entries([[T, {"a": "x\ud800", "\udfff": BAD}]], new_entry_packer())
    assert b"x\xef\xbf\xbd" in data and b"caf\xe9 \xff" in data
    assert decode_entries(data) == [[T, {"a": "x\ufffd", "\ufffd": BAD}]]

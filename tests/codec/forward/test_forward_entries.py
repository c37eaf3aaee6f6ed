import msgpack
import pytest

from relaybit.codec.forward.connection import entry
from relaybit.codec.forward.entries import (
    gunzip_all,
    gzip_entries,
    inspect_packed,
    normalise_packed,
    with_integer_times,
    without_metadata,
)
from relaybit.codec.msgpack import EventTime, iter_entries
from relaybit.errors import RemoteProtocolError

T = EventTime(5, 6)


def test_inspect_counts_and_detects_shape() -> None:
    plain = entry(T, {"a": 1}) * 5
    assert inspect_packed(plain) == (5, True)
    meta = msgpack.packb([[1, {}], {"a": 1}])
    assert inspect_packed(plain + meta) == (6, False)
    assert inspect_packed(b"") == (0, True)


def test_plain_packed_is_returned_unchanged_object() -> None:
    plain = entry(T, {"a": 1}) * 100
    out, count = normalise_packed(plain)
    assert out is plain and count == 100


def test_truncated_packed_entries_raise() -> None:
    with pytest.raises(RemoteProtocolError, match="middle"):
        inspect_packed(entry(T, {"a": 1})[:-1])


def test_non_array_entry_is_refused() -> None:
    with pytest.raises(RemoteProtocolError):
        normalise_packed(msgpack.packb({"a": 1}))


def test_gzip_roundtrip_and_integer_times() -> None:
    data = entry(T, {"a": 1}) + entry(7, {"b": 2})
    assert gunzip_all(gzip_entries(data) * 2, 1 << 20) == data * 2
    assert list(iter_entries(with_integer_times(data))) == [(5, {"a": 1}), (7, {"b": 2})]


def test_invalid_utf8_strings_roundtrip() -> None:
    raw = b"\x92\x01\x81\xa1k\xa2\xff\xfe"  # [1, {"k": <invalid utf-8 str>}]
    meta = b"\x92\x92\x01\x80\x81\xa1k\xa2\xff\xfe"  # [[1, {}], ...]: empty metadata
    out, count = normalise_packed(meta)
    assert out == raw and count == 1


def test_without_metadata_strips_only_where_there_is_some() -> None:
    plain = entry(T, {"a": 1}) * 3
    assert without_metadata(plain) is plain
    meta = msgpack.packb([[T.to_ext(), {"m": 1}], {"b": 2}])
    assert without_metadata(plain + meta) == plain + entry(T, {"b": 2})

"""framing.check_frame_head: a client's frame judged from its first bytes."""

from __future__ import annotations

import tracemalloc

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from relaybit.codec.forward.connection import ForwardConnection, entry
from relaybit.codec.forward.events import NEED_DATA, Forward, Message, PackedForward
from relaybit.codec.forward.framing import check_frame_head
from relaybit.codec.forward.state import Role
from relaybit.errors import FrameTooLarge, RemoteProtocolError

LIMIT = 64 * 1024


def pack(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


@pytest.mark.parametrize(
    "frame",
    [
        b"\xc0",
        pack(["tag", 1700000000, {"a": 1}]),
        pack(["tag", [[1, {"a": 1}]]]),
        pack(["tag", entry(1, {"a": 1}), {"chunk": "x"}]),
        pack(["PING", "host", b"salt", b"digest", "", ""]),
    ],
)
def test_valid_frames_pass(frame: bytes) -> None:
    assert check_frame_head(frame, LIMIT)


def test_more_bytes_needed_until_the_second_header() -> None:
    frame = pack(["a-tag", b"x" * 300])
    cut = frame.index(b"\xc5")  # bin16 header of the entries
    for n in range(cut + 3):
        assert not check_frame_head(frame[:n], LIMIT)
    assert check_frame_head(frame[: cut + 3], LIMIT)


@pytest.mark.parametrize(
    ("head", "words"),
    [
        (b"\x01garbage", "starts none"),
        (b"\x81\xa1a\x01", "starts none"),  # a map
        (b"\x91\xa1a", "2 to 6 elements"),
        (b"\x92\x01", "tag must be a string"),
    ],
)
def test_bytes_that_start_no_frame_are_refused_at_once(head: bytes, words: str) -> None:
    with pytest.raises(RemoteProtocolError, match=words):
        check_frame_head(head, LIMIT)


@pytest.mark.parametrize(
    "head",
    [
        b"\x92\xa3tag\xc6" + (100 * 2**20).to_bytes(4, "big"),  # a 100 MB bin
        b"\x92\xa3tag\xdb" + (100 * 2**20).to_bytes(4, "big"),  # a 100 MB str
        b"\x92\xa3tag\xdd\xff\xff\xff\xff",  # four billion entries
        b"\x92\xdb\xff\xff\xff\xff",  # a 4 GB tag
    ],
)
def test_declared_sizes_over_the_limit_are_refused_from_the_header(head: bytes) -> None:
    with pytest.raises(FrameTooLarge, match="buffer_max_size"):
        check_frame_head(head, LIMIT)


@given(st.binary(max_size=64))
def test_never_raises_anything_else(data: bytes) -> None:
    try:
        check_frame_head(data, LIMIT)
    except RemoteProtocolError:
        pass


# -- the codec ---------------------------------------------------------------------


def plain_server() -> ForwardConnection:
    return ForwardConnection(Role.SERVER, buffer_max_size=LIMIT)


def test_idle_connection_holds_no_buffer() -> None:
    conn = plain_server()
    assert conn._scanner is None and conn._buf is None and conn._packer_ is None
    conn.receive_data(pack(["t", 1, {"a": 1}]))
    assert isinstance(conn.next_event(), Message)
    assert conn.next_event() is NEED_DATA
    assert conn._scanner is None and conn._buf is None  # released between frames
    conn.receive_data(pack(["t", 1, {"a": 1}])[:5])
    assert conn.next_event() is NEED_DATA
    assert conn._scanner is not None and conn.buffered == 5


def test_declared_frame_over_the_limit_refused_from_its_header() -> None:
    conn = plain_server()
    conn.receive_data(b"\x92\xa3tag\xc6" + (100 * 2**20).to_bytes(4, "big"))
    with pytest.raises(FrameTooLarge, match="104857600 bytes"):
        conn.next_event()


def test_second_frame_of_one_read_is_judged_too() -> None:
    conn = plain_server()
    conn.receive_data(pack(["t", 1, {"a": 1}]) + b"\x92\xa3tag\xdd\xff\xff\xff\xff")
    assert isinstance(conn.next_event(), Message)
    with pytest.raises(FrameTooLarge, match="4294967295 entries"):
        conn.next_event()


def test_head_split_over_reads_is_judged() -> None:
    conn = plain_server()
    good = pack(["t", entry(1, {"a": 1})])
    for byte in good + b"\x92\xa3t":
        conn.receive_data(bytes([byte]))
    assert isinstance(conn.next_event(), PackedForward)
    conn.receive_data(b"ag\xc6\x10\x00")
    conn.receive_data(b"\x00\x00")
    with pytest.raises(FrameTooLarge):
        conn.next_event()


def test_nested_bomb_in_a_record_waits_without_allocating() -> None:
    # a record declaring four billion pairs: walked by skip(), nothing is built; the
    # frame can only grow to buffer_max_size (then FrameTooLarge) or time out
    conn = plain_server()
    conn.receive_data(b"\x93\xa3tag\x01\xdf\xff\xff\xff\xff")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"\xa1k\x01" * (LIMIT // 3))
    with pytest.raises(FrameTooLarge):
        conn.next_event()


def test_forward_frame_of_tiny_entries_is_not_amplified() -> None:
    count = 200_000
    frame = b"\x92\xa3tag\xdd" + count.to_bytes(4, "big") + b"\x92\x00\x80" * count
    conn = ForwardConnection(Role.SERVER, buffer_max_size=len(frame))
    conn.receive_data(frame)
    tracemalloc.start()
    try:
        event = conn.next_event()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(event, Forward) and event.records == count
    assert event.entries == b"\x92\x00\x80" * count
    assert peak < 5 * len(frame), peak  # decoding them built ~300 bytes an entry


def test_random_bytes_refused_at_the_first_byte() -> None:
    conn = plain_server()
    conn.receive_data(b"GET / HTTP/1.1\r\n")
    with pytest.raises(RemoteProtocolError, match="starts none"):
        conn.next_event()

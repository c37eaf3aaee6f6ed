import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from relaybit.codec.forward import NEED_DATA, ConnectionClosed, ForwardConnection, Role
from relaybit.codec.forward.connection import entry
from relaybit.codec.forward.entries import gzip_entries
from relaybit.codec.msgpack import EventTime, default
from relaybit.errors import RemoteProtocolError

T = EventTime(1700000000, 5)


def pack(obj: object) -> bytes:
    return msgpack.packb(obj, default=default, use_bin_type=True)


STREAM = b"".join(
    [
        pack(["a", T, {"k": "v"}]),
        b"\xc0",
        pack(["b", [[T, {"x": 1}], [[T, {}], {"y": 2}]], {"chunk": "id"}]),
        pack(["c", entry(T, {"z": 3}) * 3, {"size": 3}]),
        pack(["d", gzip_entries(entry(1, {"w": 4})) * 2, {"compressed": "gzip"}]),
    ]
)


def decode(chunks: list[bytes]) -> list[object]:
    conn = ForwardConnection(Role.SERVER)
    events: list[object] = []
    for piece in [*chunks, b""]:
        conn.receive_data(piece)
        while True:
            ev = conn.next_event()
            if ev is NEED_DATA or isinstance(ev, ConnectionClosed):
                break
            events.append(ev)
    return events


WHOLE = decode([STREAM])


def test_whole_stream_decodes_to_five_events() -> None:
    assert len(WHOLE) == 5


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=20))
def test_random_splits_decode_to_the_same_events(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    pieces = [STREAM[a:b] for a, b in zip([0, *points], [*points, len(STREAM)], strict=True)]
    assert decode([p for p in pieces if p]) == WHOLE


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_remote_protocol_error(data: bytes) -> None:
    try:
        decode([data])
    except RemoteProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=len(STREAM) - 1), st.binary(max_size=8))
def test_truncated_or_corrupted_stream_raises_only_remote_protocol_error(
    cut: int, junk: bytes
) -> None:
    for role in (Role.SERVER, Role.CLIENT):
        conn = ForwardConnection(role)
        conn.receive_data(STREAM[:cut] + junk)
        conn.receive_data(b"")
        try:
            while not isinstance(conn.next_event(), ConnectionClosed):
                pass
        except RemoteProtocolError:
            pass

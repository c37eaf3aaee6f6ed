import gzip
import zlib

import msgpack
import pytest
import zstandard

from relaybit.codec.forward import (
    NEED_DATA,
    Ack,
    CompressedPackedForward,
    ConnectionClosed,
    Forward,
    ForwardConnection,
    Heartbeat,
    Helo,
    Message,
    PackedForward,
    Ping,
    Pong,
    Role,
    State,
    entry,
)
from relaybit.codec.forward.options import new_ack_id
from relaybit.codec.msgpack import EventTime, default, iter_entries
from relaybit.errors import LocalProtocolError, RemoteProtocolError

T = EventTime(1700000000, 123456789)


def pack(obj: object) -> bytes:
    return msgpack.packb(obj, default=default, use_bin_type=True)


def server_events(data: bytes, **kw: int) -> list[object]:
    conn = ForwardConnection(Role.SERVER, **kw)
    conn.receive_data(data)
    conn.receive_data(b"")
    out = []
    while True:
        ev = conn.next_event()
        assert ev is not NEED_DATA
        out.append(ev)
        if isinstance(ev, ConnectionClosed):
            return out


def test_message_mode_with_event_time_and_ack() -> None:
    data = pack(["app", T, {"k": "v"}, {"chunk": "abc=="}])
    ev = server_events(data)[0]
    assert ev == Message("app", entry(T, {"k": "v"}), 1, "abc==")


def test_message_mode_with_integer_time_and_no_option() -> None:
    ev = server_events(pack(["app", 1700000000, {"k": 1}]))[0]
    assert isinstance(ev, Message)
    assert list(iter_entries(ev.entries)) == [(1700000000, {"k": 1})]


def test_forward_mode_keeps_metadata_drops_empty_metadata() -> None:
    entries = [[T, {"a": 1}], [[T, {"meta": 1}], {"b": 2}], [[T, {}], {"c": 3}]]
    ev = server_events(pack(["app", entries, {"size": 3}]))[0]
    assert isinstance(ev, Forward)
    assert ev.records == 3
    assert ev.entries == entry(T, {"a": 1}) + pack([[T, {"meta": 1}], {"b": 2}]) + entry(
        T, {"c": 3}
    )


@pytest.mark.parametrize("as_str", [False, True])
def test_packed_forward_bin_or_str_passes_bytes_through(as_str: bool) -> None:
    packed = entry(T, {"a": 1}) + entry(1, {"b": "x"})
    frame = msgpack.packb(["app", packed, {"chunk": "id1"}], use_bin_type=not as_str)
    ev = server_events(frame)[0]
    assert ev == PackedForward("app", packed, 2, "id1")


def test_packed_forward_keeps_metadata_and_drops_empty_metadata() -> None:
    packed = pack([[T, {"m": 1}], {"a": 1}]) + pack([[T, {}], {"b": 2}])
    ev = server_events(pack(["app", packed]))[0]
    assert isinstance(ev, PackedForward)
    assert ev.entries == pack([[T, {"m": 1}], {"a": 1}]) + entry(T, {"b": 2})


def test_message_mode_takes_metadata_from_the_option_map() -> None:
    ev = server_events(pack(["app", T, {"a": 1}, {"metadata": {"m": 1}, "chunk": "c"}]))[0]
    assert isinstance(ev, Message)
    assert ev.entries == pack([[T, {"m": 1}], {"a": 1}]) and ev.chunk == "c"


def test_metadata_that_is_not_a_map_is_refused() -> None:
    conn = ForwardConnection(Role.SERVER)
    conn.receive_data(pack(["app", [[[T, [1, 2]], {"a": 1}]]]))
    with pytest.raises(RemoteProtocolError, match="metadata must be a map"):
        conn.next_event()


def test_compressed_packed_forward_zstd_several_frames() -> None:
    one, two = entry(T, {"a": 1}), entry(T, {"b": 2}) * 3
    cctx = zstandard.ZstdCompressor()
    body = cctx.compress(one) + cctx.compress(two)
    ev = server_events(pack(["app", body, {"compressed": "zstd", "size": 4}]))[0]
    assert ev == CompressedPackedForward("app", one + two, 4, None, compression="zstd")


def test_compressed_payload_magic_wins_over_the_declared_algorithm() -> None:
    # as Fluent Bit's in_forward: 'compressed: gzip' with a zstd payload is read as zstd
    data = entry(T, {"a": 1})
    body = zstandard.ZstdCompressor().compress(data)
    ev = server_events(pack(["app", body, {"compressed": "gzip"}]))[0]
    assert isinstance(ev, CompressedPackedForward) and ev.entries == data


@pytest.mark.parametrize("cut", [1, 5])
def test_truncated_zstd_frame_is_refused(cut: int) -> None:
    body = zstandard.ZstdCompressor().compress(entry(T, {"a": "x" * 200}) * 20)
    conn = ForwardConnection(Role.SERVER)
    conn.receive_data(pack(["app", body[:-cut], {"compressed": "zstd"}]))
    with pytest.raises(RemoteProtocolError, match="zstd"):
        conn.next_event()


def test_zstd_bomb_is_refused_without_inflating_it() -> None:
    body = zstandard.ZstdCompressor().compress(b"\x00" * 50_000_000)
    conn = ForwardConnection(Role.SERVER, max_decompressed_size=1000)
    conn.receive_data(pack(["app", body, {"compressed": "zstd"}]))
    with pytest.raises(RemoteProtocolError, match="inflate"):
        conn.next_event()


@pytest.mark.parametrize(("signal", "reason"), [(1, "metrics"), (2, "traces"), (7, "invalid")])
def test_non_log_fluent_signal_is_refused_clearly(signal: int, reason: str) -> None:
    conn = ForwardConnection(Role.SERVER)
    conn.receive_data(pack(["app", entry(T, {"a": 1}), {"fluent_signal": signal}]))
    with pytest.raises(RemoteProtocolError, match=reason):
        conn.next_event()


def test_fluent_signal_logs_is_accepted_and_sent_with_options() -> None:
    ev = server_events(pack(["app", entry(T, {"a": 1}), {"fluent_signal": 0}]))[0]
    assert isinstance(ev, PackedForward) and ev.records == 1
    client = ForwardConnection(Role.CLIENT)
    frame = msgpack.unpackb(
        client.send(PackedForward("app", entry(T, {"a": 1}), 1, chunk="id", send_size=True))
    )
    assert frame[2] == {"chunk": "id", "size": 1, "fluent_signal": 0}
    # no option map at all when nothing needs saying (Fluentd v0 peers)
    bare = msgpack.unpackb(ForwardConnection(Role.CLIENT).send(PackedForward("app", b"", 0)))
    assert len(bare) == 2


def test_client_sends_zstd_that_the_server_reads_back() -> None:
    data = entry(T, {"a": 1}) * 10
    client = ForwardConnection(Role.CLIENT)
    wire = client.send(CompressedPackedForward("app", data, 10, chunk="c", compression="zstd"))
    frame = msgpack.unpackb(wire)
    assert frame[2]["compressed"] == "zstd" and frame[1].startswith(b"\x28\xb5\x2f\xfd")
    ev = server_events(wire)[0]
    assert isinstance(ev, CompressedPackedForward) and ev.entries == data


def test_compressed_packed_forward_with_several_gzip_members() -> None:
    one, two = entry(T, {"a": 1}), entry(T, {"b": 2}) * 3
    body = gzip.compress(one) + gzip.compress(two)
    ev = server_events(pack(["app", body, {"compressed": "gzip", "size": 4}]))[0]
    assert ev == CompressedPackedForward("app", one + two, 4, None)


def test_gzip_bomb_is_refused() -> None:
    body = gzip.compress(b"\x00" * 100_000)
    frame = pack(["app", body, {"compressed": "gzip"}])
    conn = ForwardConnection(Role.SERVER, max_decompressed_size=1000)
    conn.receive_data(frame)
    with pytest.raises(RemoteProtocolError, match="inflate"):
        conn.next_event()


def test_truncated_gzip_is_refused() -> None:
    body = gzip.compress(entry(T, {"a": 1}))[:-5]
    frame = pack(["app", body, {"compressed": "gzip"}])
    with pytest.raises(RemoteProtocolError):
        server_events(frame)


def test_heartbeat_and_fluent_signal_ignored() -> None:
    frame = b"\xc0" + pack(["app", entry(1, {"a": 1}), {"fluent_signal": 0, "x": 1}])
    events = server_events(frame)
    assert isinstance(events[0], Heartbeat)
    assert isinstance(events[1], PackedForward)


def test_split_stream_needs_data_then_decodes() -> None:
    frame = pack(["app", T, {"k": "v"}])
    conn = ForwardConnection(Role.SERVER)
    conn.receive_data(frame[:5])
    assert conn.next_event() is NEED_DATA
    conn.receive_data(frame[5:])
    assert isinstance(conn.next_event(), Message)
    assert conn.next_event() is NEED_DATA


def test_close_mid_frame_is_a_remote_error() -> None:
    conn = ForwardConnection(Role.SERVER)
    conn.receive_data(pack(["app", T, {"k": "v"}])[:-1])
    conn.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="middle of a frame"):
        conn.next_event()
    assert conn.state is State.ERROR


def test_oversize_frame_raises_remote_error() -> None:
    conn = ForwardConnection(Role.SERVER, buffer_max_size=1024)
    conn.receive_data(pack(["app", b"x" * 600])[:500])
    conn.receive_data(b"y" * 600)
    with pytest.raises(RemoteProtocolError, match="buffer_max_size"):
        conn.next_event()


@pytest.mark.parametrize(
    "obj",
    [
        1,
        "app",
        [1, T, {}],
        ["app"],
        ["app", T, "not a map"],
        ["app", [[T]]],
        ["app", b"\x92\x01", {}],
        ["app", T, {}, "opt"],
        ["app", b"", {"compressed": "lz4"}],
    ],
)
def test_bad_frames_are_remote_errors(obj: object) -> None:
    with pytest.raises(RemoteProtocolError):
        server_events(pack(obj))


def test_client_encodes_packed_and_compressed_with_options() -> None:
    client = ForwardConnection(Role.CLIENT)
    entries = entry(T, {"a": 1}) * 3
    chunk = new_ack_id()
    data = client.send(PackedForward("app", entries, 3, chunk, send_size=True))
    opts = {"size": 3, "chunk": chunk, "fluent_signal": 0}
    assert msgpack.unpackb(data) == ["app", entries, opts]
    assert client.pending_acks == {chunk.encode()}
    data = client.send(CompressedPackedForward("app", entries, 3))
    tag, body, opts = msgpack.unpackb(data)
    assert (tag, opts) == ("app", {"compressed": "gzip", "fluent_signal": 0})
    assert zlib.decompress(body, wbits=31) == entries
    # and the server side decodes both
    assert server_events(client.send(PackedForward("t", entries, 3)))[0] == PackedForward(
        "t", entries, 3
    )


def test_client_encodes_message_and_forward_modes() -> None:
    client = ForwardConnection(Role.CLIENT)
    one = entry(T, {"a": 1})
    raw = client.send(Message("app", one, 1, "c1")) + client.send(Forward("app", one * 20, 20))
    events = server_events(raw)
    assert events[0] == Message("app", one, 1, "c1")
    assert events[1] == Forward("app", one * 20, 20)


def test_ack_roundtrip_is_byte_exact() -> None:
    server = ForwardConnection(Role.SERVER)
    client = ForwardConnection(Role.CLIENT)
    fluentd_id = "MTIzNDU2Nzg5MDEyMzQ1Ng==\n"
    server.receive_data(client.send(PackedForward("app", entry(1, {}), 1, fluentd_id)))
    ev = server.next_event()
    assert isinstance(ev, PackedForward) and ev.chunk == fluentd_id
    client.receive_data(server.send(Ack(ev.chunk)))
    assert client.next_event() == Ack(fluentd_id)
    assert client.pending_acks == frozenset()


def test_handshake_fields_are_str_on_the_wire_and_bytes_in_events() -> None:
    server = ForwardConnection(Role.SERVER)
    client = ForwardConnection(Role.CLIENT)
    nonce = bytes(range(256))[-16:]  # not valid UTF-8
    helo = server.send(Helo(nonce=nonce, auth=b""))
    assert b"\xc4" not in helo[:4] and helo[1:6] == b"\xa4HELO"
    client.receive_data(helo)
    assert client.next_event() == Helo(nonce=nonce, auth=b"", keepalive=True)
    ping = Ping(b"host", b"salt", b"digest" * 20, b"", b"")
    wire = client.send(ping)
    # every field a msgpack str (0xa0..0xbf fixstr or 0xd9/0xda str8/16), no bin
    assert not any(m in wire for m in (b"\xc4", b"\xc5", b"\xc6"))
    server.receive_data(wire)
    assert server.next_event() == ping
    pong = Pong(True, b"", b"server", b"d" * 128)
    client.receive_data(server.send(pong))
    assert client.next_event() == pong
    assert client.state is server.state is State.ESTABLISHED


def test_handshake_fields_accepted_as_bin() -> None:
    client = ForwardConnection(Role.CLIENT)
    client.receive_data(msgpack.packb(["HELO", {"nonce": b"\x00\xff", "auth": b""}]))
    assert client.next_event() == Helo(nonce=b"\x00\xff")


def test_data_before_ping_is_refused_by_a_handshaking_server() -> None:
    server = ForwardConnection(Role.SERVER)
    server.send(Helo(nonce=b"n"))
    server.receive_data(pack(["app", T, {}]))
    with pytest.raises(RemoteProtocolError, match="expected PING"):
        server.next_event()


def test_local_misuse_raises_local_error() -> None:
    client = ForwardConnection(Role.CLIENT)
    client.receive_data(msgpack.packb(["HELO", {"nonce": b"n", "auth": b""}]))
    client.next_event()
    with pytest.raises(LocalProtocolError):
        client.send(PackedForward("app", entry(1, {}), 1))
    with pytest.raises(LocalProtocolError):
        ForwardConnection(Role.CLIENT).send(Ack("x"))


def test_refused_pong_closes() -> None:
    client = ForwardConnection(Role.CLIENT)
    server = ForwardConnection(Role.SERVER)
    client.receive_data(server.send(Helo(nonce=b"n")))
    client.next_event()
    server.receive_data(client.send(Ping(b"h", b"s", b"d", b"", b"")))
    server.next_event()
    client.receive_data(server.send(Pong(False, b"shared_key mismatch", b"srv", b"")))
    assert client.next_event() == Pong(False, b"shared_key mismatch", b"srv", b"")
    assert client.state is State.CLOSED
    assert "client" in repr(client)


def test_codec_is_sans_io() -> None:
    import ast
    from pathlib import Path

    import relaybit.codec.forward as pkg

    for path in Path(pkg.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        names = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in (node.names if isinstance(node, ast.Import) else [])
        } | {
            (node.module or "").split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
        }
        assert not names & {"asyncio", "socket", "ssl", "selectors"}, path.name


def test_helo_nonce_and_auth_salt_are_bin_as_fluentd_sends_them() -> None:
    server = ForwardConnection(Role.SERVER)
    nonce, salt = bytes(range(240, 256)), bytes(range(16))
    raw = msgpack.unpackb(server.send(Helo(nonce=nonce, auth=salt)), raw=True)
    assert raw == [b"HELO", {b"nonce": nonce, b"auth": salt, b"keepalive": True}]
    # bin (0xc4 0x10) for the random bytes, so no client decodes them as UTF-8 text
    wire = ForwardConnection(Role.SERVER).send(Helo(nonce=nonce, auth=salt))
    assert b"\xc4\x10" + nonce in wire and b"\xc4\x10" + salt in wire
    no_auth = ForwardConnection(Role.SERVER).send(Helo(nonce=nonce))
    assert b"\xa4auth\xa0" in no_auth  # no user auth: "" as Fluentd sends it

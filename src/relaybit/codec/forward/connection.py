"""The sans-IO Forward connection: bytes in, events out; events in, bytes out.

``receive_data(data)`` stores bytes (``b""`` means the peer closed),
``next_event()`` returns the next :mod:`events` value or :data:`NEED_DATA`, and
``send(event)`` returns the bytes to write (``send_parts`` the same as a list,
so large entries are written without a copy).  Only ``next_event`` raises
:class:`RemoteProtocolError`; misuse raises :class:`LocalProtocolError`.  No
sockets here: the asyncio client and server wrap this.
"""

from __future__ import annotations

from typing import Any

import msgpack

from relaybit.codec.forward.entries import (
    ARRAY_HEADS,
    MAP_HEADS,
    compress_entries,
    decompress_entries,
    is_time,
    normalise_entry_bytes,
    normalise_packed,
    sniff_compression,
)
from relaybit.codec.forward.events import (
    NEED_DATA,
    Ack,
    CompressedPackedForward,
    ConnectionClosed,
    Event,
    Forward,
    Heartbeat,
    Helo,
    Message,
    NeedData,
    PackedForward,
    Ping,
    Pong,
    ack_id_bytes,
)
from relaybit.codec.forward.framing import HEAD_LIMIT, check_frame_head
from relaybit.codec.forward.options import (
    ack_id_of,
    build_options,
    check_signal,
    compression_of,
    parse_options,
)
from relaybit.codec.forward.state import Role, State, next_state
from relaybit.codec.msgpack import EventTime, default, ext_hook
from relaybit.errors import FrameTooLarge, LocalProtocolError, RemoteProtocolError

#: Fluent Bit's in_forward ``buffer_max_size`` default: the largest frame accepted.
DEFAULT_MAX_BUFFER_SIZE = 6 * 1024 * 1024
#: The most a CompressedPackedForward frame may inflate to.
DEFAULT_MAX_DECOMPRESSED_SIZE = 64 * 1024 * 1024

#: The receive buffer's first allocation (it grows as a frame needs, to buffer_max_size).
_READ_SIZE = 16 * 1024

#: The most a handshake frame (PING, HELO, PONG, ack) or an option map may take.
_SMALL_FRAME = 64 * 1024

_STR_HEADS = frozenset(range(0xA0, 0xC0)) | {0xD9, 0xDA, 0xDB}
_BIN_HEADS = frozenset({0xC4, 0xC5, 0xC6})

_NIL = b"\xc0"
_DATA = (Message, Forward, PackedForward, CompressedPackedForward)


def _as_bytes(value: Any, what: str) -> bytes:
    """A handshake field (msgpack str or bin) as raw bytes."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    raise RemoteProtocolError(f"{what} must be a string, got {type(value).__name__}")


def _kind(event: Event) -> str:
    if isinstance(event, _DATA):
        return "data"
    if isinstance(event, Pong):
        return "pong_ok" if event.auth_ok else "pong_refused"
    return type(event).__name__.lower()


class ForwardConnection:
    """One side (``Role.CLIENT`` or ``Role.SERVER``) of a Forward connection."""

    def __init__(
        self,
        role: Role,
        *,
        buffer_max_size: int = DEFAULT_MAX_BUFFER_SIZE,
        max_decompressed_size: int = DEFAULT_MAX_DECOMPRESSED_SIZE,
        compress_level: int | None = None,
    ) -> None:
        self.role = role
        self.peer_role = Role.SERVER if role is Role.CLIENT else Role.CLIENT
        self.state = State.START
        self.buffer_max_size = buffer_max_size
        self.max_decompressed_size = max_decompressed_size
        self.compress_level = compress_level
        # Nothing sized for a frame until bytes arrive: the buffer and the scanner
        # exist while bytes are buffered (a server drops them between frames, see
        # release()), the packers from the first send on.  Frames are found with a
        # skip-only scanner (no object built) and decoded once whole, the records
        # kept as bytes: a frame of tiny containers costs its size, not 100 times it.
        self._buf: bytearray | None = None  # bytes received, not yet turned into events
        self._scanner: msgpack.Unpacker | None = None  # the same bytes, walked by skip()
        self._scanned = 0  # the scanner's position of _buf[0]
        self._eof = False
        self._error: RemoteProtocolError | None = None
        self._pending: set[bytes] = set()
        self._packer_: msgpack.Packer | None = None
        self._raw_packer_: msgpack.Packer | None = None
        # A server judges each frame from its first bytes (framing.check_frame_head)
        # before it is scanned: random bytes and declared sizes over the limit are
        # refused at once.
        self._judge = role is Role.SERVER
        self._judged = False  # the frame at _buf[0] passed the judge

    def __repr__(self) -> str:
        return (
            f"<ForwardConnection {self.role.value} {self.state.value}"
            f" buffered={self.buffered} pending_acks={len(self._pending)}>"
        )

    # -- state -------------------------------------------------------------

    @property
    def _packer(self) -> msgpack.Packer:
        if self._packer_ is None:
            self._packer_ = msgpack.Packer(
                default=default, use_bin_type=True, unicode_errors="surrogateescape"
            )
        return self._packer_

    @property
    def _raw_packer(self) -> msgpack.Packer:
        if self._raw_packer_ is None:
            self._raw_packer_ = msgpack.Packer(use_bin_type=False, unicode_errors="surrogateescape")
        return self._raw_packer_

    def _new_scanner(self) -> msgpack.Unpacker:
        return msgpack.Unpacker(
            max_buffer_size=self.buffer_max_size,
            read_size=min(_READ_SIZE, self.buffer_max_size),
        )

    def release(self) -> None:
        """Drop the receive buffer and the packers when no byte is buffered (an idle
        connection keeps a few hundred bytes); they come back when needed."""
        if self.buffered == 0:
            self._buf = None
            self._scanner = None
            self._scanned = 0
            self._packer_ = self._raw_packer_ = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet turned into events."""
        return len(self._buf) if self._buf is not None else 0

    @property
    def pending_acks(self) -> frozenset[bytes]:
        """Ack ids sent (as bytes) whose ack has not arrived yet (client side)."""
        return frozenset(self._pending)

    def _advance(self, actor: Role, event: Event) -> None:
        new = next_state(actor, self.state, _kind(event))
        if new is None:
            what = f"{type(event).__name__} from the {actor.value} in state {self.state.value}"
            if actor is self.role:
                raise LocalProtocolError(f"cannot send {what}")
            raise RemoteProtocolError(f"unexpected {what}")
        self.state = new

    # -- receiving ---------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Store bytes from the peer; ``b""`` means the peer closed the connection."""
        if not data:
            self._eof = True
            return
        if self._eof:
            raise LocalProtocolError("data received after end of stream")
        if self._error is not None:
            return
        if self._scanner is None or self._buf is None:
            self._scanner = self._new_scanner()
            self._buf = bytearray()
            self._scanned = 0
        try:
            self._scanner.feed(data)
        except msgpack.BufferFull:
            self._fail(
                f"frame larger than buffer_max_size ({self.buffer_max_size} bytes)", FrameTooLarge
            )
            return
        self._buf += data

    def _fail(
        self, reason: str, kind: type[RemoteProtocolError] = RemoteProtocolError
    ) -> RemoteProtocolError:
        self.state = State.ERROR
        self._error = kind(reason)
        return self._error

    def _next_frame(self) -> bytes | None:
        """The next whole frame's bytes, taken from the buffer; None: more bytes needed."""
        buf, scanner = self._buf, self._scanner
        if buf is None or scanner is None or not buf:
            return None
        if self._judge and not self._judged:
            judged = check_frame_head(buf[:HEAD_LIMIT], self.buffer_max_size)
            if not judged and len(buf) < HEAD_LIMIT:
                return None
            self._judged = True
        try:
            scanner.skip()
        except msgpack.OutOfData:
            if len(buf) > self.buffer_max_size:  # all of it is the incomplete frame
                raise FrameTooLarge(
                    f"frame larger than buffer_max_size ({self.buffer_max_size} bytes)"
                ) from None
            return None
        end = scanner.tell()
        size = end - self._scanned
        frame = bytes(buf[:size])
        del buf[:size]
        self._scanned = end
        self._judged = False
        return frame

    def next_event(self) -> Event | NeedData:
        """The next event, or ``NEED_DATA``; raises RemoteProtocolError on bad input."""
        if self._error is not None:
            raise self._error
        try:
            frame = self._next_frame()
        except RemoteProtocolError as exc:
            self.state = State.ERROR
            self._error = exc
            raise
        except Exception as exc:
            raise self._fail(f"malformed msgpack: {type(exc).__name__}: {exc}") from None
        if frame is None:
            if self._eof:
                if self.buffered:
                    reason = f"connection closed in the middle of a frame ({self.buffered} bytes)"
                    raise self._fail(reason)
                return ConnectionClosed()
            if self._judge and self.buffered == 0:
                self.release()
            return NEED_DATA
        try:
            event = self._decode_frame(frame)
            self._advance(self.peer_role, event)
        except RemoteProtocolError as exc:
            self.state = State.ERROR
            self._error = exc
            raise
        except Exception as exc:  # the frame was walked whole: should not happen
            raise self._fail(f"malformed msgpack: {type(exc).__name__}: {exc}") from None
        if isinstance(event, Ack):
            self._pending.discard(ack_id_bytes(event.chunk))
        return event

    def _decode_frame(self, frame: bytes) -> Event:
        if frame == _NIL:
            return Heartbeat()
        if self.role is Role.SERVER and self.state is not State.AWAIT_PING:
            return self._decode_data(frame)
        if len(frame) > _SMALL_FRAME:
            raise FrameTooLarge(f"a handshake frame of {len(frame)} bytes")
        return self._decode(_unpack_whole(frame))

    def _decode(self, obj: Any) -> Event:
        if obj is None:
            return Heartbeat()
        if self.role is Role.SERVER:
            return self._decode_ping(obj)
        if isinstance(obj, dict):
            if "ack" not in obj:
                raise RemoteProtocolError("expected an ack map {'ack': id}")
            chunk = obj["ack"]
            if not isinstance(chunk, str | bytes):
                raise RemoteProtocolError("the ack id must be a string")
            return Ack(chunk)
        if isinstance(obj, list) and obj and obj[0] in ("HELO", b"HELO"):
            return self._decode_helo(obj)
        if isinstance(obj, list) and obj and obj[0] in ("PONG", b"PONG"):
            return self._decode_pong(obj)
        raise RemoteProtocolError(f"unexpected {type(obj).__name__} from the server")

    @staticmethod
    def _decode_helo(obj: list[Any]) -> Helo:
        if len(obj) != 2 or not isinstance(obj[1], dict):
            raise RemoteProtocolError("malformed HELO")
        opts = obj[1]
        nonce = _as_bytes(opts.get("nonce"), "HELO nonce")
        auth = _as_bytes(opts.get("auth", b""), "HELO auth")
        return Helo(nonce=nonce, auth=auth, keepalive=bool(opts.get("keepalive", True)))

    @staticmethod
    def _decode_ping(obj: Any) -> Ping:
        if not isinstance(obj, list) or len(obj) != 6 or obj[0] not in ("PING", b"PING"):
            raise RemoteProtocolError("expected PING after HELO")
        return Ping(
            hostname=_as_bytes(obj[1], "PING hostname"),
            shared_key_salt=_as_bytes(obj[2], "PING salt"),
            digest=_as_bytes(obj[3], "PING digest"),
            username=_as_bytes(obj[4], "PING username"),
            password_digest=_as_bytes(obj[5], "PING password digest"),
        )

    @staticmethod
    def _decode_pong(obj: list[Any]) -> Pong:
        if len(obj) != 5 or not isinstance(obj[1], bool):
            raise RemoteProtocolError("malformed PONG")
        return Pong(
            auth_ok=obj[1],
            reason=_as_bytes(obj[2], "PONG reason"),
            hostname=_as_bytes(obj[3], "PONG hostname"),
            digest=_as_bytes(obj[4], "PONG digest"),
        )

    def _decode_data(self, frame: bytes) -> Event:
        """A client's data frame, walked without decoding its records."""
        up = _frame_unpacker(frame)
        if frame[0] not in ARRAY_HEADS:
            raise RemoteProtocolError("expected an event array [tag, ...]")
        size = up.read_array_header()
        if not 2 <= size <= 4:
            raise RemoteProtocolError("expected an event array [tag, ...]")
        if frame[up.tell()] not in _STR_HEADS:
            raise RemoteProtocolError("the tag must be a string")
        tag = up.unpack()
        pos = up.tell()
        second = frame[pos]
        if second in _STR_HEADS or second in _BIN_HEADS:
            if size > 3:
                raise RemoteProtocolError("PackedForward has at most 3 elements")
            raw = _as_bytes(up.unpack(), "entries")
            opts = _options(frame, up) if size == 3 else {}
            check_signal(opts)
            chunk = ack_id_of(opts)
            compression = compression_of(opts)
            if compression is not None:
                plain = decompress_entries(raw, compression, self.max_decompressed_size)
                entries, count = normalise_packed(plain)
                kind = sniff_compression(raw) or compression
                return CompressedPackedForward(tag, entries, count, chunk, compression=kind)
            entries, count = normalise_packed(raw)
            return PackedForward(tag, entries, count, chunk)
        if second in ARRAY_HEADS:
            if size > 3:
                raise RemoteProtocolError("Forward has at most 3 elements")
            count = up.read_array_header()
            out = bytearray()
            pos = up.tell()
            for _ in range(count):
                pos = normalise_entry_bytes(frame, pos, up, out)
            opts = _options(frame, up) if size == 3 else {}
            check_signal(opts)
            return Forward(tag, bytes(out), count, ack_id_of(opts))
        if size < 3:
            raise RemoteProtocolError("Message needs [tag, time, record]")
        if not is_time(frame, pos):
            raise RemoteProtocolError("an entry's time must be an integer or EventTime")
        up.skip()
        record = up.tell()
        if frame[record] not in MAP_HEADS:
            raise RemoteProtocolError("an entry's record must be a map")
        up.skip()
        end = up.tell()
        opts = _options(frame, up) if size == 4 else {}
        check_signal(opts)
        # Fluent Bit's in_forward also takes a Message's metadata from option "metadata"
        metadata = opts.get("metadata")
        if isinstance(metadata, dict) and metadata:
            head = b"\x92\x92" + frame[pos:record] + self._packer.pack(metadata)
        else:
            head = b"\x92" + frame[pos:record]
        return Message(tag, head + frame[record:end], 1, ack_id_of(opts))

    # -- sending -----------------------------------------------------------

    def send(self, event: Event) -> bytes:
        """The bytes that carry ``event``; raises LocalProtocolError on misuse."""
        return b"".join(self.send_parts(event))

    def send_parts(self, event: Event) -> list[bytes]:
        """Like :meth:`send`, as parts (large entries are not copied)."""
        if self.state in (State.ERROR, State.CLOSED):
            raise LocalProtocolError(f"cannot send in state {self.state.value}")
        parts = self._encode(event)
        self._advance(self.role, event)
        if isinstance(event, _DATA) and event.chunk is not None:
            self._pending.add(ack_id_bytes(event.chunk))
        return parts

    def _encode(self, event: Event) -> list[bytes]:
        pack = self._packer.pack
        if isinstance(event, Heartbeat):
            return [_NIL]
        if isinstance(event, Ack):
            return [pack({"ack": event.chunk})]
        if isinstance(event, Helo):
            # nonce and auth salt are random bytes: msgpack bin, as Fluentd sends them
            # (fluent-logger clients decode a str as UTF-8 and garble them); no auth is ""
            helo: dict[str, Any] = {
                "nonce": event.nonce,
                "auth": event.auth or "",
                "keepalive": event.keepalive,
            }
            return [pack(["HELO", helo])]
        if isinstance(event, Ping):
            fields = [
                b"PING",
                event.hostname,
                event.shared_key_salt,
                event.digest,
                event.username,
                event.password_digest,
            ]
            return [self._raw_packer.pack(fields)]
        if isinstance(event, Pong):
            pong: list[Any] = [b"PONG", event.auth_ok, event.reason, event.hostname, event.digest]
            return [self._raw_packer.pack(pong)]
        if isinstance(event, PackedForward | CompressedPackedForward):
            compression = event.compression if isinstance(event, CompressedPackedForward) else ""
            body = (
                compress_entries(event.entries, compression, self.compress_level)
                if compression
                else event.entries
            )
            opts = build_options(
                records=event.records,
                send_size=event.send_size,
                chunk=event.chunk,
                compressed=compression,
                extra=event.extra_options,
            )
            head = self._array_header(3 if opts else 2) + pack(event.tag)
            head += self._bin_header(len(body))
            return [head, body, pack(opts)] if opts else [head, body]
        if isinstance(event, Forward):
            opts = build_options(
                records=event.records, send_size=False, chunk=event.chunk, compressed=False
            )
            head = self._array_header(3 if opts else 2) + pack(event.tag)
            head += self._array_header(event.records)
            return [head, event.entries, pack(opts)] if opts else [head, event.entries]
        if isinstance(event, Message):
            if event.records != 1 or event.entries[:1] != b"\x92":
                raise LocalProtocolError("a Message carries exactly one [time, record] entry")
            opts = build_options(records=1, send_size=False, chunk=event.chunk, compressed=False)
            head = self._array_header(4 if opts else 3) + pack(event.tag)
            return [head, event.entries[1:], pack(opts)] if opts else [head, event.entries[1:]]
        if isinstance(event, ConnectionClosed):
            raise LocalProtocolError("ConnectionClosed is not sent; close the transport")
        raise LocalProtocolError(f"cannot send {event!r}")  # pragma: no cover

    @staticmethod
    def _array_header(n: int) -> bytes:
        if n < 16:
            return bytes([0x90 | n])
        if n < 0x10000:
            return b"\xdc" + n.to_bytes(2, "big")
        return b"\xdd" + n.to_bytes(4, "big")

    @staticmethod
    def _bin_header(n: int) -> bytes:
        if n < 0x100:
            return b"\xc4" + bytes([n])
        if n < 0x10000:
            return b"\xc5" + n.to_bytes(2, "big")
        return b"\xc6" + n.to_bytes(4, "big")


def _frame_unpacker(frame: bytes) -> msgpack.Unpacker:
    """An unpacker over one whole frame (already walked by the scanner)."""
    up = msgpack.Unpacker(
        ext_hook=ext_hook,
        raw=False,
        unicode_errors="surrogateescape",
        strict_map_key=False,
        max_buffer_size=max(len(frame), 1),
    )
    up.feed(frame)
    return up


def _unpack_whole(frame: bytes) -> Any:
    return _frame_unpacker(frame).unpack()


def _options(frame: bytes, up: msgpack.Unpacker) -> dict[str, Any]:
    """The option map at the unpacker's position: small, or refused unread."""
    start = up.tell()
    up.skip()
    if up.tell() - start > _SMALL_FRAME:
        raise RemoteProtocolError(f"an option map of {up.tell() - start} bytes")
    return parse_options(_unpack_whole(frame[start : up.tell()]))


def entry(time: EventTime | int | float, record: Any) -> bytes:
    """One ``[time, record]`` entry as bytes (convenience for tests and callers)."""
    data: bytes = msgpack.packb([time, record], default=default, use_bin_type=True)
    return data

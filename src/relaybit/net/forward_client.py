"""An asyncio Forward client connection (out_forward's side of one TCP/TLS socket).

Implements the Upstream ``Connection`` protocol (``is_usable()``, ``aclose()``)
around the sans-IO :class:`~relaybit.codec.forward.ForwardConnection`.  Every
failure is a :class:`~relaybit.errors.DeliveryError` whose ``kind`` says what
went wrong and whose message names the peer and the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl as ssl_module
from typing import Literal

from relaybit.codec.forward import auth
from relaybit.codec.forward.connection import ForwardConnection
from relaybit.codec.forward.entries import with_integer_times, without_metadata
from relaybit.codec.forward.events import (
    Ack,
    CompressedPackedForward,
    ConnectionClosed,
    Event,
    Heartbeat,
    Helo,
    NeedData,
    PackedForward,
    Ping,
    Pong,
    ack_id_bytes,
)
from relaybit.codec.forward.options import new_ack_id
from relaybit.codec.forward.state import Role, State
from relaybit.errors import DeliveryError, RemoteProtocolError

_READ_SIZE = 64 * 1024
_TLS_ALERT = b"\x15\x03"
_TLS_HINT = "is tls on for this node?"


class ForwardClient:
    """One open Forward connection to a node, ready for ``send_chunk``."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        conn: ForwardConnection,
        peer: str,
        *,
        tls: bool = False,
        first_write_check: float = 0.25,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._conn = conn
        self.peer = peer
        self.tls = tls
        self.sent_chunks = 0
        self._broken = False
        self._closed = False
        self._first_write_check = first_write_check
        self._checked = conn.state is State.ESTABLISHED
        self._last_read = b""

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("broken" if self._broken else "open")
        tls = " tls" if self.tls else ""
        return f"<ForwardClient {self.peer}{tls} {state} chunks={self.sent_chunks}>"

    # -- opening -----------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        ssl: ssl_module.SSLContext | None = None,
        server_hostname: str | None = None,
        timeout: float = 10.0,
        shared_key: str | None = None,
        self_hostname: str = "localhost",
        username: str | None = None,
        password: str | None = None,
        source_address: str | None = None,
        first_write_check: float = 0.25,
        buffer_max_size: int = 1024 * 1024,
    ) -> ForwardClient:
        """Open TCP (and TLS), then do the secure handshake when ``shared_key`` is set.

        Raises DeliveryError of kind ``connect``, ``timeout``, ``tls``,
        ``handshake`` or ``auth``.
        """
        peer = f"{host}:{port}"
        local = (source_address, 0) if source_address else None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host,
                    port,
                    ssl=ssl,
                    server_hostname=(server_hostname or host) if ssl else None,
                    local_addr=local,
                    ssl_handshake_timeout=timeout if ssl else None,
                )
        except TimeoutError:
            what = "connect or TLS handshake" if ssl else "connect"
            raise DeliveryError("timeout", f"{peer}: {what} timed out after {timeout:g}s") from None
        except ssl_module.SSLCertVerificationError as exc:
            raise DeliveryError(
                "tls",
                f"{peer}: TLS handshake failed: certificate verify failed:"
                f" {exc.verify_message} (check tls.ca_file, tls.vhost, tls.verify_hostname)",
            ) from None
        except ssl_module.SSLError as exc:
            reason = exc.reason or str(exc)
            raise DeliveryError(
                "tls", f"{peer}: TLS handshake failed: {reason} (is the node TLS?)"
            ) from None
        except (ConnectionResetError, BrokenPipeError, EOFError) as exc:
            if ssl:
                raise DeliveryError(
                    "tls", f"{peer}: TLS handshake failed: {exc} (is the node TLS?)"
                ) from None
            raise DeliveryError("connect", f"{peer}: {exc}") from None
        except OSError as exc:
            raise DeliveryError("connect", f"{peer}: {exc.strerror or exc}") from None
        conn = ForwardConnection(Role.CLIENT, buffer_max_size=buffer_max_size)
        client = cls(
            reader, writer, conn, peer, tls=ssl is not None, first_write_check=first_write_check
        )
        if shared_key is not None:
            try:
                await client._handshake(
                    timeout,
                    shared_key.encode(),
                    self_hostname.encode(),
                    (username or "").encode(),
                    (password or "").encode(),
                )
            except BaseException:
                await client.aclose()
                raise
        return client

    async def _handshake(
        self, timeout: float, key: bytes, hostname: bytes, username: bytes, password: bytes
    ) -> None:
        # a server with a shared_key sends HELO at once: do not spend the whole
        # connect timeout waiting for one that will not come
        helo_wait = min(timeout / 2, 3.0)
        try:
            async with asyncio.timeout(helo_wait):
                helo = await self._read_event()
        except TimeoutError:
            raise DeliveryError(
                "handshake",
                f"{self.peer}: no HELO within {helo_wait:g}s although shared_key is set"
                f" (does the node have a shared_key? {_TLS_HINT})",
            ) from None
        if not isinstance(helo, Helo):
            raise DeliveryError(
                "handshake", f"{self.peer}: expected HELO, got {type(helo).__name__}"
            )
        salt = auth.new_salt()
        user_digest = auth.password_digest(helo.auth, username, password) if helo.auth else b""
        ping = Ping(
            hostname=hostname,
            shared_key_salt=salt,
            digest=auth.ping_digest(salt, hostname, helo.nonce, key),
            username=username if helo.auth else b"",
            password_digest=user_digest,
        )
        await self._write(self._conn.send_parts(ping), timeout)
        try:
            async with asyncio.timeout(timeout):
                pong = await self._read_event()
        except TimeoutError:
            raise DeliveryError("handshake", f"{self.peer}: no PONG within {timeout:g}s") from None
        if not isinstance(pong, Pong):
            raise DeliveryError(
                "handshake",
                f"{self.peer}: expected PONG, got {type(pong).__name__}"
                " (the node refused the handshake)",
            )
        if not pong.auth_ok:
            reason = pong.reason.decode("utf-8", "replace")
            hint = "check username/password" if b"user" in pong.reason else "check shared_key"
            raise DeliveryError("auth", f"{self.peer} refused authentication: {reason} ({hint})")
        expected = auth.pong_digest(salt, pong.hostname, helo.nonce, key)
        if not auth.same(expected, pong.digest):
            raise DeliveryError(
                "handshake",
                f"{self.peer}: server digest mismatch: the server does not know our shared_key",
            )
        self._checked = True

    # -- I/O helpers ---------------------------------------------------------

    async def _read_event(self) -> Event:
        """The next event from the server; DeliveryError on garbage."""
        while True:
            try:
                event = self._conn.next_event()
            except RemoteProtocolError as exc:
                self._broken = True
                raise self._protocol_error(exc) from None
            if isinstance(event, NeedData):
                try:
                    data = await self._reader.read(_READ_SIZE)
                except (ConnectionError, ssl_module.SSLError) as exc:
                    data = b""
                    if isinstance(exc, ssl_module.SSLError):
                        self._broken = True
                        raise DeliveryError("tls", f"{self.peer}: TLS error: {exc}") from None
                self._last_read = data
                self._conn.receive_data(data)
                continue
            return event

    def _protocol_error(self, exc: RemoteProtocolError) -> DeliveryError:
        last = self._last_read
        if "Helo" in str(exc):
            return DeliveryError(
                "handshake",
                f"{self.peer} requires the secure handshake (sent HELO) but no shared_key"
                " is configured for this node",
            )
        if last.startswith(_TLS_ALERT):
            return DeliveryError(
                "tls", f"{self.peer} answered with a TLS alert to plain data ({_TLS_HINT})"
            )
        return DeliveryError(
            "protocol", f"{self.peer} sent bytes that are not Forward protocol: {exc} ({_TLS_HINT})"
        )

    async def _write(self, parts: list[bytes], timeout: float) -> None:
        try:
            self._writer.writelines(parts)
            async with asyncio.timeout(timeout):
                await self._writer.drain()
        except TimeoutError:
            self._broken = True
            raise DeliveryError(
                "write", f"{self.peer}: write timed out after {timeout:g}s (peer not reading)"
            ) from None
        except (ConnectionError, ssl_module.SSLError, RuntimeError) as exc:
            self._broken = True
            raise DeliveryError("write", f"{self.peer}: write failed: {exc}") from None

    # -- public --------------------------------------------------------------

    def is_usable(self) -> bool:
        """False once closed, broken, closed by the peer, or waiting for an ack."""
        return not (
            self._closed
            or self._broken
            or self._writer.is_closing()
            or self._reader.at_eof()
            or self._conn.pending_acks
            or self._conn.state not in (State.START, State.ESTABLISHED)
        )

    async def send_chunk(
        self,
        tag: str,
        entries: bytes,
        records: int,
        *,
        compress: Literal["gzip", "zstd"] | str | None = None,
        require_ack: bool = False,
        ack_timeout: float = 190.0,
        time_as_integer: bool = False,
        send_options: bool = False,
        retain_metadata: bool = True,
        extra_options: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Send one chunk (PackedForward, or CompressedPackedForward with ``gzip``/``zstd``).

        Entries carrying metadata (``[[time, metadata], record]``) go as they are,
        or as ``[time, record]`` when ``retain_metadata`` is off.

        With ``require_ack`` waits for the byte-exact ack up to ``ack_timeout``.
        Raises DeliveryError (``write``, ``ack_timeout``, ``ack_mismatch``,
        ``tls``, ``handshake``, ``protocol``); the connection is then unusable.
        """
        if not self.is_usable():
            raise DeliveryError("write", f"{self.peer}: connection is closed or unusable")
        if time_as_integer:
            entries = with_integer_times(entries)
        elif not retain_metadata:
            entries = without_metadata(entries)
        chunk = new_ack_id() if require_ack else None
        if compress in ("gzip", "zstd"):
            event: PackedForward | CompressedPackedForward = CompressedPackedForward(
                tag,
                entries,
                records,
                chunk,
                send_options or bool(extra_options),
                compression=compress,
                extra_options=extra_options,
            )
        else:
            event = PackedForward(
                tag, entries, records, chunk, send_options or bool(extra_options), extra_options
            )
        try:
            await self._write(self._conn.send_parts(event), ack_timeout)
            if chunk is not None:
                await self._await_ack(chunk, ack_timeout)
            elif not self._checked:
                await self._check_first_write()
        except BaseException:
            self._broken = True
            raise
        self.sent_chunks += 1

    async def _await_ack(self, chunk: str, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    event = await self._read_event()
                    if isinstance(event, Heartbeat):
                        continue
                    break
        except TimeoutError:
            raise DeliveryError(
                "ack_timeout", f"{self.peer}: no ack within {timeout:g}s; chunk not delivered"
            ) from None
        if isinstance(event, ConnectionClosed):
            hint = (
                "refused our client certificate (tls.crt_file) or the data?"
                if self.tls
                else f"refused data? {_TLS_HINT}"
            )
            raise DeliveryError(
                "write", f"{self.peer} closed the connection before acking ({hint})"
            )
        if not isinstance(event, Ack):
            raise DeliveryError("protocol", f"{self.peer}: expected an ack, got {event!r}")
        if ack_id_bytes(event.chunk) != chunk.encode("ascii"):
            raise DeliveryError(
                "ack_mismatch", f"{self.peer}: ack {event.chunk!r} does not match chunk {chunk!r}"
            )
        self._checked = True

    async def _check_first_write(self) -> None:
        """Without acks, catch a node that rejects us at once (TLS node, HELO node)."""
        try:
            async with asyncio.timeout(self._first_write_check):
                event = await self._read_event()
        except TimeoutError:
            self._checked = True
            return
        if isinstance(event, ConnectionClosed):
            raise DeliveryError(
                "write",
                f"{self.peer} closed the connection right after the first write ({_TLS_HINT})",
            )
        if isinstance(event, Helo):
            raise self._protocol_error(RemoteProtocolError("unexpected Helo"))
        raise DeliveryError("protocol", f"{self.peer}: unexpected {event!r} without an ack request")

    async def heartbeat(self, timeout: float = 5.0) -> None:
        """Send a msgpack ``nil`` keep-alive (a health probe)."""
        if not self.is_usable():
            raise DeliveryError("write", f"{self.peer}: connection is closed or unusable")
        await self._write(self._conn.send_parts(Heartbeat()), timeout)

    async def aclose(self) -> None:
        """Close the connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        transport = self._writer.transport
        if self._broken:
            # the unsent bytes of a failed or cancelled send are worthless, and a
            # graceful close would wait for a peer that may never read them
            transport.abort()
        else:
            self._writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await self._writer.wait_closed()
        transport.abort()  # a no-op once closed; frees the socket of a peer that stopped reading

"""The Forward option map (``size``, ``chunk``, ``compressed``) and ack ids. Pure."""

from __future__ import annotations

import base64
import secrets
from typing import Any

from relaybit.errors import RemoteProtocolError


def new_ack_id() -> str:
    """A Fluent Bit style chunk id: base64 of 16 random bytes, no trailing newline."""
    return base64.b64encode(secrets.token_bytes(16)).decode("ascii")


def build_options(
    *, records: int, send_size: bool, chunk: str | bytes | None, compressed: bool
) -> dict[str, Any]:
    """The option map a client sends (empty when nothing needs saying)."""
    opts: dict[str, Any] = {}
    if send_size:
        opts["size"] = records
    if chunk is not None:
        opts["chunk"] = chunk
    if compressed:
        opts["compressed"] = "gzip"
    return opts


def parse_options(value: Any) -> dict[Any, Any]:
    """A received option map (``nil`` counts as none); unknown keys are kept and ignored."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RemoteProtocolError(f"the option must be a map, got {type(value).__name__}")
    return value


def ack_id_of(options: dict[Any, Any]) -> str | bytes | None:
    """The ``chunk`` id of an option map, exactly as received."""
    chunk = options.get("chunk")
    if chunk is None:
        return None
    if not isinstance(chunk, str | bytes):
        raise RemoteProtocolError("the 'chunk' option must be a string")
    return chunk


def compression_of(options: dict[Any, Any]) -> str | None:
    """``"gzip"`` for CompressedPackedForward, ``None`` otherwise; other values are errors."""
    value = options.get("compressed")
    if value is None or value in ("text", b"text"):
        return None
    if value in ("gzip", b"gzip"):
        return "gzip"
    raise RemoteProtocolError(f"unsupported 'compressed' option {value!r}")

"""The Forward option map (``size``, ``chunk``, ``compressed``, ``fluent_signal``) and ack ids.

Pure.  ``fluent_signal`` is Fluent Bit's event type: 0 logs, 1 metrics, 2 traces.
relaybit carries logs: it sends ``fluent_signal: 0`` whenever it sends an option
map (as Fluent Bit 5 does) and refuses metrics and traces with a clear error.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from typing import Any

from relaybit.errors import RemoteProtocolError


def new_ack_id() -> str:
    """A Fluent Bit style chunk id: base64 of 16 random bytes, no trailing newline."""
    return base64.b64encode(secrets.token_bytes(16)).decode("ascii")


#: ``compressed`` values relaybit reads and writes.
COMPRESSIONS = ("gzip", "zstd")
#: ``fluent_signal`` values (Fluent Bit's FLB_EVENT_TYPE_*).
SIGNAL_LOGS, SIGNAL_METRICS, SIGNAL_TRACES = 0, 1, 2
_SIGNAL_NAMES = {SIGNAL_LOGS: "logs", SIGNAL_METRICS: "metrics", SIGNAL_TRACES: "traces"}


def build_options(
    *,
    records: int,
    send_size: bool,
    chunk: str | bytes | None,
    compressed: bool | str,
    extra: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """The option map a client sends (empty when nothing needs saying).

    ``compressed`` is ``"gzip"`` / ``"zstd"`` (``True`` means gzip).  A non-empty
    map has ``fluent_signal: 0`` (logs), as Fluent Bit 5 sends it, then the
    ``extra`` pairs (out_forward's ``add_option``; their keys never replace the
    protocol's own).
    """
    opts: dict[str, Any] = {}
    if chunk is not None:
        opts["chunk"] = chunk
    if send_size:
        opts["size"] = records
    if compressed:
        opts["compressed"] = "gzip" if compressed is True else compressed
    if opts or extra:
        opts["fluent_signal"] = SIGNAL_LOGS
    for key, value in extra:
        opts.setdefault(key, value)
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
    """``"gzip"`` / ``"zstd"`` for CompressedPackedForward, ``None`` otherwise.

    Other values are errors.
    """
    value = options.get("compressed")
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if value is None or value == "text":
        return None
    if value in COMPRESSIONS:
        return str(value)
    raise RemoteProtocolError(f"unsupported 'compressed' option {value!r}")


def check_signal(options: dict[Any, Any]) -> None:
    """Refuse frames whose ``fluent_signal`` is not logs (relaybit carries logs only)."""
    value = options.get("fluent_signal", SIGNAL_LOGS)
    if value == SIGNAL_LOGS and not isinstance(value, bool):
        return
    name = _SIGNAL_NAMES.get(value) if isinstance(value, int) else None
    if name is None:
        raise RemoteProtocolError(f"invalid 'fluent_signal' option {value!r}")
    raise RemoteProtocolError(
        f"fluent_signal {value} ({name}) is not supported: relaybit carries logs only;"
        f" send {name} to a Fluent Bit or OpenTelemetry receiver"
    )

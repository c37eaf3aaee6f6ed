"""``ForwardHandler``: a ``logging.Handler`` that sends log records with failover.

Each log record becomes one map: ``message``, ``levelname``, ``name`` (the
logger), ``module``, ``funcName``, ``lineno``, ``pathname``, ``process``,
``threadName``, ``exc_text`` (the formatted exception, when there is one),
``stack_info`` (when asked for), and every ``extra=`` field.  ``emit`` only
buffers (a :class:`~relaybit.sender.Sender` delivers in its own thread), so
logging never waits for the network; ``close()`` closes the sender, delivering
what it can within ``close_timeout``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from relaybit.codec.msgpack import EventTime
from relaybit.sender import Sender

#: LogRecord attributes that are not ``extra=`` fields
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}

_FIELDS = ("levelname", "name", "module", "funcName", "lineno", "pathname", "process", "threadName")


def _fallback(value: Any) -> Any:
    """Values msgpack cannot pack travel as their ``str``."""
    return str(value)


class ForwardHandler(logging.Handler):
    """Send log records under ``tag`` to a Forward node or tier (fluent-logger's FluentHandler).

    ``host``/``port`` and every other keyword are :class:`~relaybit.sender.Sender`
    arguments (``nodes=``, ``upstream=``, ``shared_key=``, ``tls=`` ...); or pass
    a ready ``sender=`` (the handler then closes it too).  Values that msgpack
    cannot pack are sent as text.  With a Formatter set, ``message`` is the
    formatted text; otherwise ``record.getMessage()``.
    """

    def __init__(
        self,
        tag: str = "app",
        host: str | None = None,
        port: int | None = None,
        *,
        level: int | str = logging.NOTSET,
        sender: Sender | None = None,
        **sender_kwargs: Any,
    ) -> None:
        super().__init__(level)
        if sender is not None and (host is not None or port is not None or sender_kwargs):
            raise ValueError("give sender= or the sender's arguments, not both")
        if sender is None:
            sender_kwargs.setdefault("default", _fallback)
            sender = Sender(tag, host, port, **sender_kwargs)
        self.sender = sender
        self.tag = tag

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        return f"<ForwardHandler {self.tag!r} ({level}) {self.sender!r}>"

    def record_to_dict(self, record: logging.LogRecord) -> dict[str, Any]:
        """The map sent for ``record``."""
        message = self.format(record) if self.formatter is not None else record.getMessage()
        data: dict[str, Any] = {"message": message}
        for name in _FIELDS:
            data[name] = getattr(record, name, None)
        if record.exc_info:
            data["exc_text"] = record.exc_text or logging.Formatter().formatException(
                record.exc_info
            )
        elif record.exc_text:
            data["exc_text"] = record.exc_text
        if record.stack_info:
            data["stack_info"] = record.stack_info
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in data:
                data[key] = value
        return data

    def emit(self, record: logging.LogRecord) -> None:
        """Buffer the record (never waits for the network); counted when dropped."""
        if threading.current_thread() is self.sender.thread:
            return  # the sender's own log lines (node down ...) would feed themselves
        try:
            self.sender.emit(
                None, self.record_to_dict(record), EventTime.from_float(record.created)
            )
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        """Close the sender (delivering what it can within its ``close_timeout``)."""
        try:
            self.sender.close()
        finally:
            super().close()

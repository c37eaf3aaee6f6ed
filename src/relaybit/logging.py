"""Fluent Bit style log lines: ``[2026/11/30 10:00:00] [ info] [engine] message``.

Every relaybit logger lives under ``relaybit``; the part after ``relaybit.``
is the component shown in brackets (``relaybit.engine`` -> ``[engine]``).
Plugin instances log through :func:`plugin_logger`, shown as
``[output:forward:forward.0]``.  Levels: ``off``, ``error``, ``warn``,
``info``, ``debug``, ``trace``.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import IO

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

LEVELS = {
    "off": logging.CRITICAL + 10,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": TRACE,
}

_LABELS = {
    logging.CRITICAL: "error",
    logging.ERROR: "error",
    logging.WARNING: " warn",
    logging.INFO: " info",
    logging.DEBUG: "debug",
    TRACE: "trace",
}

ROOT = "relaybit"


def level_number(name: str) -> int:
    """The logging level of a Fluent Bit level name; ValueError when unknown."""
    try:
        return LEVELS[name.strip().lower()]
    except KeyError:
        raise ValueError(
            f"expected a log level (off, error, warn, info, debug, trace), got {name!r}"
        ) from None


class FluentBitFormatter(logging.Formatter):
    """Formats records as Fluent Bit does; a component comes from the logger name."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(record.created))
        label = _LABELS.get(record.levelno) or (
            "error" if record.levelno > logging.ERROR else "trace"
        )
        name = record.name
        component = name[len(ROOT) + 1 :] if name.startswith(ROOT + ".") else name
        line = f"[{stamp}] [{label}] "
        if component and component != ROOT:
            line += f"[{component}] "
        line += record.getMessage()
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """A count with its noun in the right number: ``1 record``, ``2 records``, ``0 records``."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def sized(n: int | None) -> str:
    """A size in bytes for a log line: ``512 bytes``, ``1.5 KB``, ``4.0 MB``, ``2.0 GB``
    (None: ``unknown``)."""
    if n is None:
        return "unknown"
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return counted(n, "byte")


def plugin_logger(kind: str, plugin: str, name: str, level: str | None = None) -> logging.Logger:
    """The logger of one plugin instance (``[output:forward:forward.0]``)."""
    logger = logging.getLogger(f"{ROOT}.{kind}:{plugin}:{name}")
    if level:
        logger.setLevel(level_number(level))
    return logger


def setup_logging(
    level: str = "info", log_file: str | None = None, stream: IO[str] | None = None
) -> logging.Handler:
    """Send relaybit's logs to ``log_file`` (appended) or ``stream`` (stderr).

    Replaces a handler installed by an earlier call; returns the new handler.
    """
    logger = logging.getLogger(ROOT)
    for old in list(logger.handlers):
        if getattr(old, "_relaybit", False):
            logger.removeHandler(old)
            old.close()
    handler: logging.Handler
    if log_file:
        handler = logging.FileHandler(log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(FluentBitFormatter())
    setattr(handler, "_relaybit", True)  # noqa: B010 - marks our own handler
    logger.addHandler(handler)
    logger.setLevel(level_number(level))
    logger.propagate = False
    return handler

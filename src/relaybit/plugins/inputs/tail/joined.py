"""tail's multi-line modes: ``multiline.parser``, ``docker_mode``; one joiner per file.

:func:`joiner_factory` reads the options and returns a factory of per-file
joiners (None when no mode is on: the fast line path stays untouched).  A
joiner takes lines (``feed``) and returns finished ``(time, record)`` pairs;
``flush_due`` emits what waited its flush timeout; ``flush`` emits all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from relaybit.codec.msgpack import EventTime
from relaybit.config.schema import Options
from relaybit.errors import ConfigError
from relaybit.multiline import MultilineStream, build_multiline_parsers, lookup_multiline
from relaybit.multiline.cri import CriStream
from relaybit.multiline.docker_mode import DockerModeStream
from relaybit.plugins.inputs.lines import Parser, apply_parser

Record = tuple[EventTime, dict[str, Any]]
#: a joined record: its time is an EventTime, or entry-head bytes (CriStream, packed_times)
Joined = tuple[EventTime | bytes, dict[str, Any]]


class LineJoiner(Protocol):
    """What tail needs of a per-file joiner (MultilineStream, DockerModeStream)."""

    def feed(
        self, text: str, stamp: EventTime, now: float, offset: int | None = None
    ) -> Sequence[Joined]: ...

    def feed_lines(
        self,
        lines: Sequence[bytes],
        stamp: EventTime,
        now: float,
        starts: Sequence[int] | None = None,
    ) -> Sequence[Joined]: ...

    def flush_due(self, now: float) -> Sequence[Joined]: ...

    def flush(self) -> Sequence[Joined]: ...

    def pending_offset(self) -> int | None: ...


def joiner_factory(
    opts: Options,
    service: Mapping[str, Any],
    *,
    section: str,
    parser: Parser | None,
    key: str,
    logger: logging.Logger | logging.LoggerAdapter[Any],
) -> Callable[[], LineJoiner] | None:
    """The per-file joiner factory for these tail options, or None (plain lines)."""
    ml_names = opts.opt_str("multiline.parser")
    legacy = opts.bool("multiline")
    docker = opts.bool("docker_mode")
    if legacy:
        logger.warning(
            "'multiline on' (parser_firstline) is not supported by relaybit; "
            "use multiline.parser with a [MULTILINE_PARSER]",
        )
    if ml_names:
        if parser is not None:
            logger.warning("'parser' is ignored when 'multiline.parser' is set")
        if docker:
            logger.warning("'docker_mode' is ignored when 'multiline.parser' is set")
        parsers = service.get("parsers")
        if parsers is None:
            from relaybit.parsers import BUILTIN_PARSERS

            parsers = BUILTIN_PARSERS
        defined = build_multiline_parsers(service.get("multiline_parsers") or (), parsers)
        chosen = lookup_multiline(
            ml_names, defined, origin=opts.origin("multiline.parser"), section=section
        )
        if len(chosen) == 1 and chosen[0].fast == "cri":
            only = chosen[0]
            return lambda: CriStream(only, packed_times=True)
        return lambda: MultilineStream(chosen)
    if not docker:
        return None
    if legacy:
        raise ConfigError(
            "docker_mode cannot be on together with 'multiline on' (as in Fluent Bit)",
            opts.origin("docker_mode"),
            section=section,
            key="docker_mode",
        )
    firstline = None
    first_name = opts.opt_str("docker_mode_parser")
    if first_name:
        known = service.get("parsers")
        if known is None:
            from relaybit.parsers import BUILTIN_PARSERS

            known = BUILTIN_PARSERS
        firstline = known.get(first_name)
        if firstline is None:
            raise ConfigError(
                f"no parser named {first_name!r} (known parsers: {', '.join(sorted(known))})",
                opts.origin("docker_mode_parser"),
                section=section,
                key="docker_mode_parser",
            )
    timeout = max(opts.float("docker_mode_flush"), 0.05)

    def to_record(text: str, stamp: EventTime) -> Record:
        if parser is not None:
            parsed = apply_parser(parser, text)
            if parsed is not None:
                when, record = parsed
                if when is not None:
                    stamp = when if isinstance(when, EventTime) else EventTime.from_float(when)
                return stamp, dict(record)
        return stamp, {key: text}

    return lambda: DockerModeStream(to_record, timeout, firstline)

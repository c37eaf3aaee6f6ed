"""``[PARSER]`` sections -> parsers: the option table and :func:`build_parsers`."""

from __future__ import annotations

import re
from collections.abc import Iterable

from relaybit.config.model import Section
from relaybit.config.named import build_named
from relaybit.config.schema import ConfigMap, Option, Options
from relaybit.errors import ConfigError
from relaybit.parsers.base import (
    DECODER_ACTIONS,
    DECODERS,
    TYPE_NAMES,
    BaseParser,
    Parser,
    ParserSettings,
)
from relaybit.parsers.decoders import Decoder
from relaybit.parsers.json import JsonParser
from relaybit.parsers.logfmt import LogfmtParser, LtsvParser
from relaybit.parsers.regex import RegexParser
from relaybit.parsers.timefmt import TimeFormat, parse_offset

SECTION = "[PARSER]"
FORMATS = ("json", "regex", "logfmt", "ltsv")

PARSER_OPTIONS = ConfigMap(
    (
        Option("name", "str", None, "Name the parser is referred to by (required)"),
        Option("format", "str", None, "json, regex, logfmt or ltsv (required)", choices=FORMATS),
        Option("regex", "str", None, "Onigmo/Ruby expression with (?<name>...) groups (regex)"),
        Option("time_key", "str", "time", "Field holding the record's time"),
        Option("time_format", "str", None, "strptime format of the time field; %L = fraction"),
        Option("time_offset", "str", None, "UTC offset of times without a zone (+0900, -07:00)"),
        Option("time_keep", "bool", False, "Keep the time field in the record"),
        Option("time_strict", "bool", True, "Accepted; a bad time never drops the record"),
        Option("time_system_timezone", "bool", False, "Accepted; times without a zone are UTC"),
        Option(
            "types", "str", None, "Casts: 'key:integer key2:float' (integer|float|bool|hex|string)"
        ),
        Option("skip_empty_values", "bool", True, "Skip empty regex captures"),
        Option("logfmt_no_bare_keys", "bool", False, "logfmt: reject lines with bare keys"),
        Option(
            "decode_field",
            "str",
            None,
            "DECODER KEY [ACTION]: decode KEY and merge a decoded map into the record",
            multiple=True,
        ),
        Option(
            "decode_field_as",
            "str",
            None,
            "DECODER KEY [ACTION]: replace KEY's value by its decoded form",
            multiple=True,
        ),
    )
)


def _types(opts: Options, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in opts.str("types").split():
        key, sep, type_name = item.partition(":")
        type_name = type_name.lower()
        if not sep or not key or type_name not in TYPE_NAMES:
            raise ConfigError(
                f"expected KEY:TYPE with TYPE one of {', '.join(TYPE_NAMES)}, got {item!r}",
                opts.origin("types"),
                section=where,
                key="types",
            )
        out[key] = type_name
    return out


def _decoders(opts: Options, where: str) -> tuple[Decoder, ...]:
    rules: list[Decoder] = []
    for name, value, origin in opts.in_order():
        if name not in ("decode_field", "decode_field_as"):
            continue
        parts = str(value).split()
        ok = (
            len(parts) in (2, 3)
            and parts[0].lower() in DECODERS
            and (len(parts) == 2 or parts[2].lower() in DECODER_ACTIONS)
        )
        if not ok:
            raise ConfigError(
                f"expected 'DECODER KEY [ACTION]' with DECODER one of {', '.join(DECODERS)} "
                f"and ACTION do_next or try_next, got {value!r}",
                origin,
                section=where,
                key=name,
            )
        action = parts[2].lower() if len(parts) == 3 else None
        rules.append(Decoder(name == "decode_field_as", parts[0].lower(), parts[1], action))
    return tuple(rules)


def build_parser(section: Section) -> BaseParser:
    """One parser from one ``[PARSER]`` section; ConfigError (with file:line) if invalid."""
    props = [p for p in section.properties if p.value.strip() != ""]
    label = section.get("name")
    where = f"{SECTION} {label.strip()}" if label and label.strip() else SECTION
    opts = PARSER_OPTIONS.resolve(props, section=where)
    name = opts.opt_str("name")
    if not name:
        raise ConfigError("missing 'name'", section.origin, section=SECTION, key="name")
    fmt = (opts.opt_str("format") or "").lower()
    if not fmt:
        raise ConfigError(
            f"missing 'format' (expected one of {', '.join(FORMATS)})",
            section.origin,
            section=where,
            key="format",
        )
    time_format: TimeFormat | None = None
    offset = 0
    try:
        if opts.opt_str("time_offset"):
            offset = parse_offset(opts.str("time_offset"))
    except ValueError as exc:
        raise ConfigError(
            str(exc), opts.origin("time_offset"), section=where, key="time_offset"
        ) from None
    if opts.opt_str("time_format"):
        try:
            time_format = TimeFormat(opts.str("time_format"), offset)
        except ValueError as exc:
            raise ConfigError(
                str(exc), opts.origin("time_format"), section=where, key="time_format"
            ) from None
    settings = ParserSettings(
        name=name,
        time_key=opts.str("time_key") or "time",
        time_format=time_format,
        time_keep=opts.bool("time_keep"),
        types=_types(opts, where),
        decoders=_decoders(opts, where),
    )
    if fmt == "json":
        return JsonParser(settings)
    if fmt == "logfmt":
        return LogfmtParser(settings, no_bare_keys=opts.bool("logfmt_no_bare_keys"))
    if fmt == "ltsv":
        return LtsvParser(settings)
    pattern = opts.opt_str("regex")
    if not pattern:
        raise ConfigError(
            "format regex needs a 'regex' key", section.origin, section=where, key="regex"
        )
    try:
        return RegexParser(settings, pattern, skip_empty=opts.bool("skip_empty_values"))
    except (re.error, ValueError) as exc:
        raise ConfigError(
            f"invalid regular expression: {exc}", opts.origin("regex"), section=where, key="regex"
        ) from None


def build_parsers(sections: Iterable[Section]) -> dict[str, Parser]:
    """Every ``[PARSER]`` section -> ``{name: parser}``; collects every error (ConfigErrors).

    A name defined twice is an error (Fluent Bit refuses the second one too).
    """
    return build_named(sections, build_parser, lambda p: p.name, what="parser", label=SECTION)

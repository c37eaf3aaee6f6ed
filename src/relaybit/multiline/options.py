"""``[MULTILINE_PARSER]`` sections -> multiline parsers, and ``multiline.parser`` lookups."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from relaybit.config.model import Section
from relaybit.config.named import build_named
from relaybit.config.origin import Origin
from relaybit.config.schema import ConfigMap, Option
from relaybit.errors import ConfigError, ConfigErrors
from relaybit.multiline.builtin import BUILTIN_MULTILINE
from relaybit.multiline.definition import DEFAULT_FLUSH_TIMEOUT, MODES, Mode, MultilineParser
from relaybit.multiline.rules import RuleError, RuleSet, parse_rule_line
from relaybit.parsers.base import Parser

SECTION = "[MULTILINE_PARSER]"

MULTILINE_PARSER_OPTIONS = ConfigMap(
    (
        Option("name", "str", None, "Name tail's multiline.parser refers to (required)"),
        Option("type", "str", None, "regex, endswith or equal (required)", choices=MODES),
        Option(
            "rule",
            "str",
            None,
            '"from_state[, ...]" "/regex/" "to_state" (type regex; one per line)',
            multiple=True,
        ),
        Option(
            "flush_timeout",
            "int",
            int(DEFAULT_FLUSH_TIMEOUT * 1000),
            "Milliseconds after the last line before a pending record is emitted",
            minimum=1,
        ),
        Option("key_content", "str", None, "Field joined when 'parser' makes records"),
        Option("key_pattern", "str", None, "Field compared with match_string (type equal)"),
        Option("key_group", "str", None, "Field whose values are joined separately"),
        Option("parser", "str", None, "A [PARSER] applied to each line first"),
        Option("match_string", "str", None, "What the content ends with / equals"),
        Option("negate", "bool", False, "Invert the match_string test"),
    )
)


def build_multiline_parser(section: Section, parsers: Mapping[str, Parser]) -> MultilineParser:
    """One ``[MULTILINE_PARSER]`` section -> a MultilineParser; ConfigError(s) naming file:line."""
    label = section.get("name")
    where = f"{SECTION} {label.strip()}" if label and label.strip() else SECTION
    opts = MULTILINE_PARSER_OPTIONS.resolve(section.properties, section=where)
    name = opts.opt_str("name")
    if not name:
        raise ConfigError("missing 'name'", section.origin, section=SECTION, key="name")
    kind = (opts.opt_str("type") or "").lower()
    if not kind:
        raise ConfigError(
            "missing 'type' (expected regex, endswith or equal)",
            section.origin,
            section=where,
            key="type",
        )
    mode: Mode = "equal" if kind == "eq" else kind  # type: ignore[assignment]
    errors: list[ConfigError] = []
    parser: Parser | None = None
    parser_name = opts.opt_str("parser")
    key_content = opts.opt_str("key_content")
    if parser_name:
        parser = parsers.get(parser_name)
        if parser is None:
            known = ", ".join(sorted(parsers)) or "none defined"
            errors.append(
                ConfigError(
                    f"no parser named {parser_name!r} (known parsers: {known})",
                    opts.origin("parser"),
                    section=where,
                    key="parser",
                )
            )
        if not key_content:
            errors.append(
                ConfigError(
                    "'parser' needs 'key_content': the parsed field to join",
                    opts.origin("parser"),
                    section=where,
                    key="key_content",
                )
            )
    rules: RuleSet | None = None
    match_string = opts.opt_str("match_string") or ""
    if mode == "regex":
        rules = _rules(section, where, errors)
    elif not match_string:
        errors.append(
            ConfigError(
                f"type {kind} needs 'match_string'",
                section.origin,
                section=where,
                key="match_string",
            )
        )
    if errors:
        raise ConfigErrors(errors)
    return MultilineParser(
        name,
        mode,
        rules=rules,
        match_string=match_string,
        negate=opts.bool("negate"),
        key_content=key_content,
        key_pattern=opts.opt_str("key_pattern"),
        key_group=opts.opt_str("key_group"),
        parser=parser,
        flush_timeout=opts.int("flush_timeout") / 1000.0,
    )


def _rules(section: Section, where: str, errors: list[ConfigError]) -> RuleSet | None:
    rules = []
    for prop in section.properties:
        if prop.key.lower() != "rule":
            continue
        try:
            rules.append(parse_rule_line(prop.value))
        except (RuleError, re.error) as exc:
            errors.append(
                ConfigError(f"invalid rule: {exc}", prop.origin, section=where, key="rule")
            )
    if errors:
        return None
    try:
        return RuleSet(tuple(rules))
    except RuleError as exc:
        rule_props = [p for p in section.properties if p.key.lower() == "rule"]
        origin = rule_props[0].origin if rule_props else section.origin
        errors.append(ConfigError(str(exc), origin, section=where, key="rule"))
        return None


def build_multiline_parsers(
    sections: Iterable[Section], parsers: Mapping[str, Parser]
) -> dict[str, MultilineParser]:
    """Every ``[MULTILINE_PARSER]`` -> ``{name: parser}``; collects all errors (ConfigErrors)."""
    return build_named(
        sections,
        lambda section: build_multiline_parser(section, parsers),
        lambda ml: ml.name,
        what="multiline parser",
        label=SECTION,
    )


def lookup_multiline(
    names: str,
    defined: Mapping[str, MultilineParser],
    *,
    origin: Origin | None,
    section: str,
    key: str = "multiline.parser",
) -> list[MultilineParser]:
    """The parsers of a ``multiline.parser`` value (comma-separated, in order).

    A ``[MULTILINE_PARSER]`` of the same name as a built-in wins.  ConfigError
    names the unknown ones and lists what is known.
    """
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if not wanted:
        raise ConfigError(
            "expected one or more multiline parser names", origin, section=section, key=key
        )
    out: list[MultilineParser] = []
    unknown: list[str] = []
    for name in wanted:
        if name in defined:
            out.append(defined[name])
        elif name in BUILTIN_MULTILINE:
            out.append(BUILTIN_MULTILINE[name]())
        else:
            unknown.append(name)
    if unknown:
        known = ", ".join(sorted({*defined, *BUILTIN_MULTILINE}))
        raise ConfigError(
            f"unknown multiline parser {', '.join(map(repr, unknown))} (known: {known})",
            origin,
            section=section,
            key=key,
        )
    return out

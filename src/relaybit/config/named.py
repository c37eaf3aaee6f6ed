"""Build one object per named section, collecting every error (parsers, multiline parsers)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from relaybit.config.model import Section
from relaybit.errors import ConfigError, ConfigErrors

T = TypeVar("T")


def build_named(
    sections: Iterable[Section],
    build: Callable[[Section], T],
    name_of: Callable[[T], str],
    *,
    what: str,
    label: str,
) -> dict[str, T]:
    """``{name: build(section)}`` for every section; ConfigErrors listing every problem.

    ``what`` names the kind in messages ("parser"); ``label`` is the section
    header ("[PARSER]").  A name defined twice is an error at its second section.
    """
    built: dict[str, T] = {}
    errors: list[ConfigError] = []
    for section in sections:
        try:
            item = build(section)
        except ConfigErrors as exc:
            errors.extend(exc.errors)
            continue
        except ConfigError as exc:
            errors.append(exc)
            continue
        name = name_of(item)
        if name in built:
            errors.append(
                ConfigError(
                    f"{what} '{name}' is defined twice",
                    section.origin,
                    section=f"{label} {name}",
                    key="name",
                )
            )
            continue
        built[name] = item
    if errors:
        raise ConfigErrors(errors)
    return built

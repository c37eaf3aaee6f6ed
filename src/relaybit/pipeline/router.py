"""Which filters and outputs a tag goes to. Pure (no asyncio, no sockets).

Each filter and output brings a matcher (``relaybit.tag.compile_match``, a
``Callable[[str], bool]`` built from ``match``/``match_regex``).  The answer for
a tag is computed once and cached, so the hot path costs one dict lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

Matcher = Callable[[str], bool]

#: Tags cached at most (tail with a ``*`` tag makes one tag per file).
CACHE_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class Route:
    """The filters (in configuration order) and outputs of one tag."""

    filters: tuple[str, ...]
    outputs: tuple[str, ...]


class Router:
    """Matches tags against named filters and outputs, caching per tag."""

    def __init__(
        self,
        outputs: Sequence[tuple[str, Matcher]] = (),
        filters: Sequence[tuple[str, Matcher]] = (),
    ) -> None:
        self._outputs = list(outputs)
        self._filters = list(filters)
        self._cache: dict[str, Route] = {}

    def add_output(self, name: str, matcher: Matcher) -> None:
        self._outputs.append((name, matcher))
        self._cache.clear()

    def add_filter(self, name: str, matcher: Matcher) -> None:
        self._filters.append((name, matcher))
        self._cache.clear()

    def route(self, tag: str) -> Route:
        """The filters and outputs whose match accepts ``tag``."""
        found = self._cache.get(tag)
        if found is None:
            found = Route(
                tuple(name for name, match in self._filters if match(tag)),
                tuple(name for name, match in self._outputs if match(tag)),
            )
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[tag] = found
        return found

    def __repr__(self) -> str:
        return (
            f"<Router outputs={len(self._outputs)} filters={len(self._filters)} "
            f"cached_tags={len(self._cache)}>"
        )

"""Configuration variables: ``@SET name=value`` and ``${NAME}`` expansion. Pure.

A ``${NAME}`` is looked up first among the ``@SET`` (classic) or ``env:`` (YAML)
variables, then in the process environment.  An unset variable is an error at
its line (Fluent Bit silently expands it to an empty string, so ``port ${PORT}``
would become port 0).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from relaybit.config.origin import Origin
from relaybit.errors import ConfigError

_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class Env:
    """The variables of one configuration load (``@SET`` values over ``environ``)."""

    __slots__ = ("_environ", "_vars")

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._vars: dict[str, str] = {}
        self._environ: Mapping[str, str] = os.environ if environ is None else environ

    def set(self, name: str, value: str) -> None:
        """Define ``name`` (``@SET name=value``); later definitions win."""
        self._vars[name] = value

    def get(self, name: str) -> str | None:
        """The value of ``name``: a ``@SET`` value, else the environment, else None."""
        if name in self._vars:
            return self._vars[name]
        return self._environ.get(name)

    def expand(
        self,
        text: str,
        origin: Origin | None = None,
        *,
        section: str | None = None,
        key: str | None = None,
    ) -> str:
        """Replace each ``${NAME}`` in ``text``; ConfigError naming an unset variable."""
        if "${" not in text:
            return text

        def replace(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            value = self.get(name) if name else None
            if value is None:
                raise ConfigError(
                    f"variable '${{{name}}}' is not set (neither by @SET/env nor in "
                    "the environment)",
                    origin,
                    section=section,
                    key=key,
                )
            return value

        return _VARIABLE.sub(replace, text)

    def __repr__(self) -> str:
        return f"<Env set={sorted(self._vars)!r}>"

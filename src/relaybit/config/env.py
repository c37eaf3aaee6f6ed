"""Configuration variables: ``@SET name=value`` and ``${NAME}`` expansion.

A ``${NAME}`` is looked up first among the ``@SET`` (classic) or ``env:`` (YAML)
variables, then in the process environment.  An unset variable is an error at
its line (Fluent Bit silently expands it to an empty string, so ``port ${PORT}``
would become port 0).

A variable may take its value from a file (``file://PATH``, or YAML's ``uri:``),
as Fluent Bit allows: :func:`set_variable` reads the file and records it as an
:class:`EnvFile` (with its ``refresh_interval``) so the agent can watch it.
:class:`Env` itself does no I/O.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from relaybit.config.files import read_env_file
from relaybit.config.origin import Origin
from relaybit.errors import ConfigError

_VARIABLE = re.compile(r"\$\{([^}]*)\}")


#: the prefix of a variable value read from a file
FILE_URI = "file://"


@dataclass(frozen=True, slots=True)
class EnvFile:
    """A variable whose value came from a file, and how often to read it again."""

    name: str
    path: str
    value: str = field(repr=False)
    #: seconds; 0 = read once per configuration load
    refresh_interval: float = 0.0
    origin: Origin | None = field(default=None, compare=False)


class Env:
    """The variables of one configuration load (``@SET`` values over ``environ``)."""

    __slots__ = ("_environ", "_vars", "files")

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._vars: dict[str, str] = {}
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        #: variables read from files, in the order they were set
        self.files: list[EnvFile] = []

    def set(self, name: str, value: str) -> None:
        """Define ``name`` (``@SET name=value``); later definitions win."""
        self._vars[name] = value

    def set_from_file(self, var: EnvFile) -> None:
        """Define ``var.name`` with the content read from ``var.path``."""
        self._vars[var.name] = var.value
        self.files = [f for f in self.files if f.name != var.name]
        self.files.append(var)

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


def set_variable(
    env: Env,
    name: str,
    value: str,
    including: str,
    origin: Origin | None,
    *,
    refresh_interval: float = 0.0,
    from_file: bool = False,
) -> None:
    """Define a variable; a ``file://`` value (or ``from_file``) reads the file it names."""
    if not (from_file or value.startswith(FILE_URI)):
        env.set(name, value)
        return
    path, content = read_env_file(value, including, origin or Origin(including))
    env.set_from_file(EnvFile(name, path, content, refresh_interval, origin))

"""The classic Fluent Bit configuration format, read into generic sections.

::

    @SET port=24224
    @INCLUDE conf.d/*.conf
    [OUTPUT]
        name   forward
        port   ${port}

Rules (Fluent Bit's, with errors where Fluent Bit guesses):

- Section headers ``[NAME]`` start at column 0; names are case-insensitive and
  one of :data:`SECTION_KINDS`.  Any other name is an error.
- Entries are ``key value`` lines indented inside a section, every line of a
  section with the same indentation; the value is the rest of the line (it may
  contain spaces and ``#``).  Keys are lowercased.  Repeated keys are kept in
  order.  A key line outside a section, a non-indented key line or a change of
  indentation within a section is an error.
- Lines whose first non-blank character is ``#`` are comments.
- ``@INCLUDE path`` (globs allowed, relative to the including file) and
  ``@SET name=value``; ``${NAME}`` in values is expanded (see :mod:`.env`).

Each section becomes a :class:`~relaybit.config.model.Section` whose ``kind`` is
the lowercased name (``service``, ``input`` ...) and whose properties each
remember their file and line.
"""

from __future__ import annotations

from pathlib import Path

from relaybit.config.env import Env, set_variable
from relaybit.config.files import IncludeStack, read_text, resolve_include
from relaybit.config.model import Section
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.errors import ConfigError

#: The section names of the classic format (lowercase).
SECTION_KINDS = (
    "service",
    "input",
    "filter",
    "output",
    "parser",
    "multiline_parser",
    "upstream",
    "node",
)

_INDENT = (" ", "\t")


def read_classic(
    path: str | Path, env: Env | None = None, *, _stack: IncludeStack | None = None
) -> list[Section]:
    """Read a classic file (and its includes) into sections, in file order."""
    text = read_text(path)
    return parse_classic(text, str(path), env, _stack=_stack)


def parse_classic(
    text: str, path: str, env: Env | None = None, *, _stack: IncludeStack | None = None
) -> list[Section]:
    """Parse classic-format ``text`` read from ``path`` (includes resolve against it)."""
    parser = _ClassicParser(path, env or Env(), _stack or IncludeStack())
    parser.stack.push(path, None)
    try:
        parser.feed(text)
    finally:
        parser.stack.pop()
    return parser.sections


class _ClassicParser:
    def __init__(self, path: str, env: Env, stack: IncludeStack) -> None:
        self.path = path
        self.env = env
        self.stack = stack
        self.sections: list[Section] = []
        self._kind: str | None = None
        self._origin: Origin | None = None
        self._props: list[RawProperty] = []
        self._indent: str | None = None

    def __repr__(self) -> str:
        return f"<_ClassicParser {self.path!r} sections={len(self.sections)}>"

    def feed(self, text: str) -> None:
        for number, raw in enumerate(text.split("\n"), start=1):
            line = raw.rstrip("\r").rstrip()
            stripped = line.lstrip()
            if not stripped or stripped.startswith("#"):
                continue
            origin = Origin(self.path, number)
            if stripped.startswith("@"):
                self._close()
                self._command(stripped, origin)
            elif stripped.startswith("["):
                if line != stripped:
                    raise ConfigError(f"section header {stripped!r} must not be indented", origin)
                self._close()
                self._open(stripped, origin)
            else:
                self._entry(line, stripped, origin)
        self._close()

    # -- sections -------------------------------------------------------
    def _open(self, header: str, origin: Origin) -> None:
        if not header.endswith("]"):
            raise ConfigError(f"section header {header!r} has no closing ']'", origin)
        name = header[1:-1].strip()
        kind = name.lower()
        if kind not in SECTION_KINDS:
            known = ", ".join(f"[{k.upper()}]" for k in SECTION_KINDS)
            raise ConfigError(f"unknown section [{name}]; expected one of {known}", origin)
        self._kind, self._origin, self._props, self._indent = kind, origin, [], None

    def _close(self) -> None:
        if self._kind is not None:
            self.sections.append(
                Section(kind=self._kind, properties=tuple(self._props), origin=self._origin)
            )
        self._kind, self._origin, self._props, self._indent = None, None, [], None

    def _entry(self, line: str, stripped: str, origin: Origin) -> None:
        if self._kind is None:
            raise ConfigError(
                f"'{stripped.split()[0]}' is outside of any section; entries go in an "
                "indented line under a [SECTION] header",
                origin,
            )
        section = f"[{self._kind.upper()}]"
        indent = line[: len(line) - len(stripped)]
        if not indent:
            raise ConfigError(
                f"expected an indented 'key value' line inside {section}, got {stripped!r}",
                origin,
            )
        if any(c not in _INDENT for c in indent):
            raise ConfigError("indentation must be spaces or tabs", origin, section=section)
        if self._indent is None:
            self._indent = indent
        elif indent != self._indent:
            raise ConfigError(
                f"inconsistent indentation: expected {_describe(self._indent)} like the "
                f"section's first entry, got {_describe(indent)}",
                origin,
                section=section,
            )
        parts = stripped.split(None, 1)
        key = parts[0].lower()
        if len(parts) < 2:
            raise ConfigError(
                "has no value; expected 'key value'", origin, section=section, key=key
            )
        value = self.env.expand(parts[1].strip(), origin, section=section, key=key)
        self._props.append(RawProperty(key, value, origin))

    # -- @commands ------------------------------------------------------
    def _command(self, stripped: str, origin: Origin) -> None:
        parts = stripped.split(None, 1)
        command = parts[0].upper()
        argument = parts[1].strip() if len(parts) > 1 else ""
        if command == "@SET":
            name, eq, value = argument.partition("=")
            if not eq or not name.strip():
                raise ConfigError(f"expected '@SET name=value', got {stripped!r}", origin)
            set_variable(
                self.env, name.strip(), self.env.expand(value.strip(), origin), self.path, origin
            )
        elif command == "@INCLUDE":
            pattern = self.env.expand(argument, origin)
            for included in resolve_include(pattern, self.path, origin):
                self.stack.push(included, origin)
                try:
                    text = read_text(included, origin)
                    sub = _ClassicParser(included, self.env, self.stack)
                    sub.feed(text)
                finally:
                    self.stack.pop()
                self.sections.extend(sub.sections)
        else:
            raise ConfigError(f"unknown command {parts[0]!r}; expected @INCLUDE or @SET", origin)


def _describe(indent: str) -> str:
    tabs, spaces = indent.count("\t"), indent.count(" ")
    if tabs and spaces:
        return f"{tabs} tab(s) and {spaces} space(s)"
    if tabs:
        return f"{tabs} tab(s)"
    return f"{spaces} space(s)"

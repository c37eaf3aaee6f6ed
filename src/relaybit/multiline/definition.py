"""What a multiline parser is: its mode, keys, optional parser and timeout (immutable)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from relaybit.multiline.rules import RuleSet
from relaybit.parsers.base import Parser

Mode = Literal["regex", "endswith", "equal"]
MODES: tuple[str, ...] = ("regex", "endswith", "equal", "eq")

#: Fluent Bit's FLB_ML_FLUSH_TIMEOUT (4000 ms), for built-in and configured parsers alike
DEFAULT_FLUSH_TIMEOUT = 4.0


@dataclass(frozen=True, eq=False)
class MultilineParser:
    """A multiline parser (``[MULTILINE_PARSER]`` or built-in).

    ``regex`` mode joins lines through :attr:`rules`; ``endswith`` joins until
    the content ends with ``match_string``; ``equal`` until the ``key_pattern``
    value equals ``match_string`` (``negate`` flips both).  With ``parser`` each
    line is parsed first and ``key_content`` names the field that is joined;
    ``key_group`` keeps separate records per value (Docker's stdout/stderr).
    """

    name: str
    mode: Mode
    rules: RuleSet | None = None
    match_string: str = ""
    negate: bool = False
    key_content: str | None = None
    key_pattern: str | None = None
    key_group: str | None = None
    parser: Parser | None = None
    flush_timeout: float = DEFAULT_FLUSH_TIMEOUT  #: seconds
    #: a built-in with a joiner of its own when it is the only parser ("cri")
    fast: str | None = None

    @property
    def output_key(self) -> str:
        """Key of the joined text in a record built from raw lines."""
        return self.key_content or "log"

    def __repr__(self) -> str:
        return f"<MultilineParser {self.name!r} mode={self.mode}>"

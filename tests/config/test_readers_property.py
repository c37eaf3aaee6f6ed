"""Property tests: on any text, the readers raise only ConfigError."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from relaybit.config.classic import parse_classic
from relaybit.config.env import Env
from relaybit.config.yaml import parse_yaml
from relaybit.errors import ConfigError

_EMPTY_DIR = tempfile.mkdtemp(prefix="relaybit-prop-")
_PATH = str(Path(_EMPTY_DIR) / "fuzz.conf")

# Text biased toward the syntax the readers care about, plus anything at all.
_LINE = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "[INPUT]",
            "[SERVICE]",
            "[node]",
            "[X]",
            "    name x",
            "\tkey value",
            "  k v",
            "@SET a=b",
            "@INCLUDE nothing*.conf",
            "${a}",
            "${UNSET_Q}",
            "# c",
            "",
            "[",
            "@",
            "key: value",
            "- item",
            "  nested: {a: 1}",
            "pipeline:",
            "  inputs:",
            "    - name: x",
        ]
    ),
)
_TEXT = st.one_of(st.text(), st.lists(_LINE, max_size=12).map("\n".join))


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_classic_reader_raises_only_config_error(text: str) -> None:
    try:
        parse_classic(text, _PATH, Env({}))
    except ConfigError:
        pass


@settings(max_examples=300, deadline=None)
@given(_TEXT)
def test_yaml_reader_raises_only_config_error(text: str) -> None:
    try:
        parse_yaml(text, _PATH.replace(".conf", ".yaml"), Env({}))
    except ConfigError:
        pass

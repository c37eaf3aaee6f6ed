"""The literal hints of the built-in rules never change what their regex finds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relaybit.multiline.builtin import BUILTIN_MULTILINE

from .samples import DOCKER, GO, JAVA, PYTHON, RUBY

HINTED = [
    (name, rule)
    for name, make in BUILTIN_MULTILINE.items()
    if make().rules is not None
    for rule in make().rules.rules  # type: ignore[union-attr]
    if rule.hints
]
WORDS = ["Exception", "Error", "Throwable", "V8 errors stack trace", "panic: ", ":in ", ":12"]
LINES = [*JAVA, *PYTHON, *GO, *RUBY, *DOCKER, "", "x", "Error:", "\nError:", "aError\r"]


def test_every_language_parser_has_hinted_start_rules() -> None:
    assert {name for name, _ in HINTED} == {"go", "java", "ruby"}


@pytest.mark.parametrize("line", LINES)
def test_hints_agree_with_the_regex_on_real_lines(line: str) -> None:
    for _, rule in HINTED:
        assert rule.matches(line) == (rule.regex.search(line) is not None)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=5)), max_size=8).map("".join))
def test_hints_agree_with_the_regex_on_any_text(line: str) -> None:
    for _, rule in HINTED:
        assert rule.matches(line) == (rule.regex.search(line) is not None)

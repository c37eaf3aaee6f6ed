"""Tag matching as Fluent Bit's router does it (tests/internal/router.c cases and more)."""

from __future__ import annotations

import re

import pytest

from relaybit.tag import cached_match, compile_match, match_tag

CASES = [
    ("file.*.log", "file.apache.log", True),
    ("cpu.rpi", "cpu.rpi", True),
    ("cpu.*", "cpu.rpi", True),
    ("*", "cpu.rpi", True),
    ("*.*", "cpu.rpi", True),
    ("*.rpi", "cpu.rpi", True),
    ("mem.*", "cpu.rpi", False),
    ("*u.r*", "cpu.rpi", True),
    ("hoge", "hoge", True),
    ("hoge", "hogeeeeeee", False),
    ("hoge*", "hogeeeeeee", True),
    ("*", "", True),
    ("app.*", "app.web.1", True),  # * crosses dots
    ("app.*", "app", False),
    ("app.*", "app.", True),
    ("APP.*", "app.web", False),  # case-sensitive
    ("a*b*c", "aXXbYYc", True),
    ("a*b*c", "aXXbYY", False),
    ("kube.var.log.containers.*", "kube.var.log.containers.nginx_default_x.log", True),
    ("a.b", "aXb", False),  # '.' is literal
    ("a+b", "a+b", True),
    ("**", "anything", True),
]


@pytest.mark.parametrize(("pattern", "tag", "expected"), CASES)
def test_match_tag(pattern: str, tag: str, expected: bool) -> None:
    assert match_tag(pattern, tag) is expected
    assert compile_match(pattern)(tag) is expected
    assert cached_match(pattern, None, tag) is expected


@pytest.mark.parametrize(
    ("regex", "tag", "expected"),
    [
        (r"^app\.(web|api)$", "app.web", True),
        (r"^app\.(web|api)$", "app.db", False),
        (r"web", "app.web.1", True),  # searched, like onig_search
        (r"^web", "app.web.1", False),
        (r".*\.log$", "var.app.log", True),
    ],
)
def test_match_regex(regex: str, tag: str, expected: bool) -> None:
    assert compile_match(None, regex)(tag) is expected


def test_match_regex_wins_over_match() -> None:
    matcher = compile_match("*", r"^only$")
    assert matcher("only")
    assert not matcher("other")


def test_nothing_set_matches_nothing() -> None:
    assert not compile_match(None, None)("a")
    assert not compile_match("", None)("a")


def test_onigmo_named_groups_in_match_regex() -> None:
    assert compile_match(None, r"^(?<app>[a-z]+)\.log$")("web.log")


def test_bad_regex_raises() -> None:
    with pytest.raises(re.error):
        compile_match(None, "(unclosed")

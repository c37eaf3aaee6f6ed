"""Fluent Bit's built-in multiline parsers: docker, cri, go, python, java, ruby.

The rules are Fluent Bit's (``src/multiline/flb_ml_parser_*.c``), which come
from fluent-plugin-detect-exceptions.  ``docker`` and ``cri`` parse each line
first (JSON / the CRI line format) and join the ``log`` field; the language
parsers join raw lines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from relaybit.multiline.definition import DEFAULT_FLUSH_TIMEOUT, MultilineParser
from relaybit.multiline.rules import build_rules
from relaybit.parsers.base import ParserSettings
from relaybit.parsers.json import JsonParser
from relaybit.parsers.regex import RegexParser
from relaybit.parsers.timefmt import TimeFormat

_CRI_REGEX = r"^(?<time>.+?) (?<stream>stdout|stderr) (?<_p>F|P) (?<log>.*)$"

GO_RULES = (
    ("start_state", r"/\bpanic: /", "go_after_panic", ("panic: ",)),
    ("start_state", r"/http: panic serving/", "go_goroutine", ("http: panic serving",)),
    ("go_after_panic", r"/^$/", "go_goroutine"),
    ("go_after_panic, go_after_signal, go_frame_1", r"/^$/", "go_goroutine"),
    ("go_after_panic", r"/^\[signal /", "go_after_signal"),
    ("go_goroutine", r"/^goroutine \d+ \[[^\]]+\]:$/", "go_frame_1"),
    ("go_frame_1", r"/^(?:[^\s.:]+\.)*[^\s.():]+\(|^created by /", "go_frame_2"),
    ("go_frame_2", r"/^\s/", "go_frame_1"),
)

PYTHON_RULES = (
    ("start_state", r"/^Traceback \(most recent call last\):$/", "python"),
    ("python", r"/^[\t ]+File /", "python_code"),
    ("python_code", r"/[^\t ]/", "python"),
    ("python", r"/^(?:[^\s.():]+\.)*[^\s.():]+:/", "start_state"),
)

JAVA_RULES = (
    (
        "start_state, java_start_exception",
        r"/(.)(?:Exception|Error|Throwable|V8 errors stack trace)[:\r\n]/",
        "java_after_exception",
        ("Exception", "Error", "Throwable", "V8 errors stack trace"),
    ),
    ("java_after_exception", r"/^[\t ]*nested exception is:[\t ]*/", "java_start_exception"),
    ("java_after_exception", r"/^[\r\n]*$/", "java_after_exception"),
    ("java_after_exception, java", r"/^[\t ]+(?:eval )?at /", "java"),
    ("java_after_exception, java", r"/^[\t ]+--- End of inner exception stack trace ---$/", "java"),
    (
        "java_after_exception, java",
        r"/^--- End of stack trace from previous location where exception was thrown ---$/",
        "java",
    ),
    ("java_after_exception, java", r"/^[\t ]*(?:Caused by|Suppressed):/", "java_after_exception"),
    ("java_after_exception, java", r"/^[\t ]*... \d+ (?:more|common frames omitted)/", "java"),
)

RUBY_RULES = (
    ("start_state, ruby_start_exception", r"/^.+:\d+:in\s+.*/", "ruby_after_exception", (":in",)),
    ("ruby_after_exception, ruby", r"/^\s+from\s+.*:\d+:in\s+.*/", "ruby"),
)


def docker() -> MultilineParser:
    """JSON lines whose ``log`` does not end with a newline are joined with the next ones."""
    parser = JsonParser(
        ParserSettings(
            name="_ml_json_docker",
            time_key="time",
            time_format=TimeFormat("%Y-%m-%dT%H:%M:%S.%L"),
            time_keep=True,
        )
    )
    return MultilineParser(
        "docker",
        "endswith",
        match_string="\n",
        key_content="log",
        key_group="stream",
        parser=parser,
    )


def cri() -> MultilineParser:
    """``time stream P|F log`` lines: partial (P) lines are joined up to the full (F) one."""
    parser = RegexParser(
        ParserSettings(
            name="_ml_cri",
            time_key="time",
            time_format=TimeFormat("%Y-%m-%dT%H:%M:%S.%L%z"),
            time_keep=True,
        ),
        _CRI_REGEX,
        skip_empty=False,
    )
    return MultilineParser(
        "cri",
        "equal",
        match_string="F",
        key_content="log",
        key_pattern="_p",
        key_group="stream",
        parser=parser,
        fast="cri",
    )


def _regex(name: str, rules: tuple[Any, ...]) -> Callable[[], MultilineParser]:
    def make() -> MultilineParser:
        return MultilineParser(
            name, "regex", rules=build_rules(rules), flush_timeout=DEFAULT_FLUSH_TIMEOUT
        )

    make.__doc__ = f"Fluent Bit's '{name}' stack trace rules."
    return make


BUILTIN_MULTILINE: Mapping[str, Callable[[], MultilineParser]] = {
    "docker": docker,
    "cri": cri,
    "go": _regex("go", GO_RULES),
    "python": _regex("python", PYTHON_RULES),
    "java": _regex("java", JAVA_RULES),
    "ruby": _regex("ruby", RUBY_RULES),
}

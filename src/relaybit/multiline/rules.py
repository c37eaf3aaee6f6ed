"""Regex rules of a multiline parser: states, transitions and the classic ``rule`` line.

A rule is ``rule "from_states" "/regex/" "to_state"``.  Rules whose
``from_states`` hold ``start_state`` may begin a record; after a rule matched,
the next line may continue the record through any rule whose ``from_states``
hold the matched rule's ``to_state``.  When one of those is a start rule the
record is complete and is emitted at once (Fluent Bit's ``try_flushing_buffer``).

Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from relaybit.parsers.regex import compile_onigmo

START_STATE = "start_state"


@dataclass(eq=False)
class Rule:
    """One transition: from any of ``from_states``, a line matching ``regex``, to ``to_state``."""

    from_states: tuple[str, ...]
    pattern: str
    to_state: str
    #: literals one of which every match holds (a cheap test before the regex; built-ins)
    hints: tuple[str, ...] = ()
    regex: re.Pattern[str] = field(init=False, repr=False)
    #: rules that may follow this one (their from_states hold our to_state), in order
    next_rules: tuple[Rule, ...] = field(default=(), init=False, repr=False)
    #: one of next_rules is a start rule: a match of this rule ends the record
    ends_record: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self.regex = compile_onigmo(self.pattern)

    @property
    def is_start(self) -> bool:
        return START_STATE in self.from_states

    def matches(self, text: str) -> bool:
        """True when ``regex`` is found anywhere in ``text`` (Onigmo searches)."""
        if self.hints and not any(hint in text for hint in self.hints):
            return False
        return self.regex.search(text) is not None


class RuleError(ValueError):
    """A rule set that cannot work (the message says why)."""


@dataclass(eq=False)
class RuleSet:
    """Compiled rules in declaration order, with their transitions resolved."""

    rules: tuple[Rule, ...]
    start_rules: tuple[Rule, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.rules:
            raise RuleError("a regex multiline parser needs at least one 'rule'")
        self.start_rules = tuple(r for r in self.rules if r.is_start)
        if not self.start_rules:
            raise RuleError(f"no rule starts from '{START_STATE}': no record could ever begin")
        known = {state for r in self.rules for state in r.from_states}
        for rule in self.rules:
            if rule.to_state not in known:
                raise RuleError(
                    f"rule to_state '{rule.to_state}' is not the from_state of any rule "
                    f"(known states: {', '.join(sorted(known))})"
                )
            rule.next_rules = tuple(r for r in self.rules if rule.to_state in r.from_states)
            rule.ends_record = any(r.is_start for r in rule.next_rules)

    def start(self, text: str) -> Rule | None:
        """The first start rule matching ``text``, or None."""
        for rule in self.start_rules:
            if rule.matches(text):
                return rule
        return None

    @staticmethod
    def continuation(state: Rule, text: str) -> Rule | None:
        """The first rule that continues a record after ``state`` with ``text``, or None."""
        for rule in state.next_rules:
            if not rule.is_start and rule.matches(text):
                return rule
        return None

    def __repr__(self) -> str:
        return f"<RuleSet rules={len(self.rules)} start={len(self.start_rules)}>"


def make_rule(from_states: str, pattern: str, to_state: str, hints: tuple[str, ...] = ()) -> Rule:
    """A rule from its three texts (``from_states`` comma-separated); re.error/RuleError.

    ``hints``: literals one of which every match of ``pattern`` holds (lines with
    none of them are not searched).
    """
    states = tuple(s.strip() for s in from_states.split(",") if s.strip())
    if not states:
        raise RuleError("a rule needs at least one from_state")
    if not to_state.strip():
        raise RuleError("a rule needs a to_state")
    return Rule(states, pattern, to_state.strip(), hints)


def split_rule_line(text: str) -> list[str]:
    """The tokens of a classic ``rule`` value: ``"a, b" "/re gex/" next`` -> 3 strings.

    Double-quoted tokens may hold spaces and ``\\"``; other backslashes are kept
    as they are (they belong to the regex).
    """
    tokens: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        if text[i] == '"':
            i += 1
            out: list[str] = []
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n and text[i + 1] == '"':
                    out.append('"')
                    i += 2
                    continue
                out.append(text[i])
                i += 1
            if i >= n:
                raise RuleError(f"unterminated quote in rule {text!r}")
            tokens.append("".join(out))
            i += 1
            continue
        start = i
        while i < n and not text[i].isspace():
            i += 1
        tokens.append(text[start:i])
    return tokens


def parse_rule_line(text: str) -> Rule:
    """One classic ``rule`` value -> a Rule; RuleError or re.error when invalid."""
    tokens = split_rule_line(text)
    if len(tokens) != 3:
        raise RuleError(
            f'expected 3 quoted parts "from_state" "/regex/" "to_state", got {len(tokens)}'
        )
    return make_rule(tokens[0], tokens[1], tokens[2])


def build_rules(
    rules: Sequence[tuple[str, str, str] | tuple[str, str, str, tuple[str, ...]]],
) -> RuleSet:
    """A RuleSet from (from_states, regex, to_state) triples (the built-in parsers)."""
    return RuleSet(tuple(make_rule(*r) for r in rules))

"""Options.section_origin(): the Name line, else the first value written, else None."""

from __future__ import annotations

from relaybit.config.origin import Origin
from relaybit.config.schema import ConfigMap, Option, RawProperty

MAP = ConfigMap((Option("name"), Option("key"), Option("level", "int", 1)))


def test_the_name_line_wins_over_earlier_keys() -> None:
    props = [
        RawProperty("key", "a", Origin("f.conf", 2)),
        RawProperty("name", "nest", Origin("f.conf", 3)),
    ]
    assert MAP.resolve(props, section="[FILTER]").section_origin() == Origin("f.conf", 3)


def test_without_a_name_the_first_value_written() -> None:
    props = [
        RawProperty("level", "4", Origin("f.conf", 7)),
        RawProperty("key", "a", Origin("f.conf", 8)),
    ]
    assert MAP.resolve(props, section="[FILTER]").section_origin() == Origin("f.conf", 7)


def test_nothing_written_has_no_origin() -> None:
    assert MAP.resolve([], section="[FILTER]").section_origin() is None

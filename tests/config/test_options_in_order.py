"""Options.in_order(): every written value with its own origin, across keys, in file order."""

from __future__ import annotations

from relaybit.config.origin import Origin
from relaybit.config.schema import ConfigMap, Option, RawProperty

MAP = ConfigMap(
    (
        Option("set", multiple=True),
        Option("rename", multiple=True),
        Option("level", "int", 1),
    )
)


def test_order_and_origins_across_keys() -> None:
    props = [
        RawProperty("Set", "a 1", Origin("f.conf", 2)),
        RawProperty("Rename", "a b", Origin("f.conf", 3)),
        RawProperty("level", "5", Origin("f.conf", 4)),
        RawProperty("SET", "c 2", Origin("f.conf", 5)),
    ]
    opts = MAP.resolve(props, section="[FILTER]")
    assert opts.in_order() == [
        ("set", "a 1", Origin("f.conf", 2)),
        ("rename", "a b", Origin("f.conf", 3)),
        ("level", 5, Origin("f.conf", 4)),
        ("set", "c 2", Origin("f.conf", 5)),
    ]
    assert opts["set"] == ["a 1", "c 2"]  # the per-key view is unchanged


def test_defaults_are_not_written_values() -> None:
    assert MAP.resolve([], section="[FILTER]").in_order() == []

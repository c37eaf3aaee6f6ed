"""Whatever a parser returns can be encoded: odd lines never stop an input."""

from __future__ import annotations

from relaybit.codec.msgpack import EventTime, iter_entries, new_packer
from relaybit.config.model import Section
from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.parsers import Parser, build_parsers

PATH = "/etc/relaybit/parsers.conf"


def one(**props: str) -> Parser:
    items = tuple(RawProperty(k, v, Origin(PATH, i + 2)) for i, (k, v) in enumerate(props.items()))
    return build_parsers([Section(kind="parser", properties=items, origin=Origin(PATH, 1))])[
        props["name"]
    ]


def roundtrip(result: object) -> object:
    """Pack ``[time, record]`` as the inputs do; raises when it cannot be encoded."""
    assert isinstance(result, tuple)
    when, record = result
    data = new_packer().pack([when if when is not None else EventTime(1, 0), record])
    return next(iter(iter_entries(data)))[1]


def test_epoch_milliseconds_with_percent_s_keep_the_field_and_encode() -> None:
    parser = one(name="j", format="json", time_key="ts", time_format="%s")
    result = parser.parse('{"ts": 1700000000000, "msg": "hi"}')
    assert result is not None
    when, _record = result
    assert when is None  # not an EventTime (struct.error when packed, before)
    assert roundtrip(result) == {"ts": 1700000000000, "msg": "hi"}

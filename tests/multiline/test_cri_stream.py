"""CriStream (multiline.parser cri alone) gives exactly MultilineStream's records."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from relaybit.codec.msgpack import EventTime
from relaybit.multiline import MultilineStream
from relaybit.multiline.builtin import cri
from relaybit.multiline.cri import CriStream
from relaybit.multiline.stream import MAX_RECORD_BYTES

TIMES = [
    "2019-05-07T18:57:50.904275087+00:00",
    "2019-05-07T18:57:51.1Z",
    "2019-05-07T18:57:52Z",  # no fraction: the time is not parsed, the line's stamp stays
    "bad-time",
    "a b",  # a space in the time: only the regular expression finds it
]
LOGS = ["", "x", "some text ", "two  spaces", "stdout F nested", "caf\u00e9 \udcff", "\r"]

cri_line = st.builds(
    lambda t, s, p, log: f"{t} {s} {p} {log}",
    st.sampled_from(TIMES),
    st.sampled_from(["stdout", "stderr"]),
    st.sampled_from(["P", "F"]),
    st.sampled_from(LOGS),
)
other_line = st.sampled_from(
    ["", "not cri", " stdout F x", "2019 stdout X y", "2019 stdout F", "t stdout F a\nb"]
)
step = st.one_of(
    st.tuples(st.just("feed"), st.one_of(cri_line, other_line), st.floats(0, 3)),
    st.tuples(st.just("due"), st.just(""), st.floats(0, 10)),
    st.tuples(st.just("flush"), st.just(""), st.just(0.0)),
)


def run(stream: Any, steps: list[tuple[str, str, float]]) -> list[Any]:
    out: list[Any] = []
    now = 0.0
    for i, (kind, text, dt) in enumerate(steps):
        now += dt
        if kind == "feed":
            got = stream.feed(text, EventTime(1_700_000_000 + i, 0), now, i * 10)
        elif kind == "due":
            got = stream.flush_due(now)
        else:
            got = stream.flush()
        out.append(
            (
                [(t, list(r.items())) for t, r in got],
                stream.pending,
                stream.pending_offset(),
                stream.next_deadline(),
            )
        )
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=25))
def test_cri_stream_equals_the_general_stream(steps: list[tuple[str, str, float]]) -> None:
    assert run(CriStream(cri()), steps) == run(MultilineStream([cri()]), steps)


def test_feed_lines_takes_bytes_and_offsets() -> None:
    lines = [
        b"2019-05-07T18:57:50.5Z stdout P one ",
        b"2019-05-07T18:57:51.5Z stdout F two \xff",
        b"junk",
    ]
    fast = CriStream(cri()).feed_lines(lines, EventTime(1, 0), 0.0, [0, 40, 80])
    slow = MultilineStream([cri()]).feed_lines(lines, EventTime(1, 0), 0.0, [0, 40, 80])
    assert fast == slow
    assert [r["log"] for _, r in fast] == ["one two \udcff", "junk"]


def test_a_record_stops_growing_at_the_limit_as_the_general_stream() -> None:
    big = "x" * (MAX_RECORD_BYTES // 2 + 1)
    steps = [("feed", f"2019-05-07T18:57:50.5Z stdout P {big}", 0.0)] * 3
    steps.append(("feed", "2019-05-07T18:57:50.5Z stdout F end", 0.0))
    assert run(CriStream(cri()), steps) == run(MultilineStream([cri()]), steps)


@settings(max_examples=200, deadline=None)
@given(st.lists(step, max_size=25))
def test_packed_times_are_the_entry_heads_of_the_same_records(
    steps: list[tuple[str, str, float]],
) -> None:
    from relaybit.parsers.packing import entry_head

    plain = run(CriStream(cri()), steps)
    packed = run(CriStream(cri(), packed_times=True), steps)
    assert packed == [
        ([(entry_head(t), r) for t, r in got], pending, offset, deadline)
        for got, pending, offset, deadline in plain
    ]

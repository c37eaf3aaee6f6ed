"""Fluent Bit's Time_Format dialect: zones, fractions, missing years, offsets."""

from __future__ import annotations

import calendar

import pytest

from relaybit.codec.msgpack import EventTime
from relaybit.parsers.timefmt import TimeFormat, parse_offset


def utc(*fields: int) -> int:
    return calendar.timegm((*fields, 0, 0, 0)[:6])


@pytest.mark.parametrize(
    ("fmt", "text", "expected"),
    [
        (
            "%d/%b/%Y:%H:%M:%S %z",
            "10/Oct/2023:13:55:36 -0700",
            EventTime(utc(2023, 10, 10, 20, 55, 36)),
        ),
        (
            "%d/%b/%Y:%H:%M:%S %z",
            "10/oct/2023:13:55:36 +0000",
            EventTime(utc(2023, 10, 10, 13, 55, 36)),
        ),
        (
            "%Y-%m-%dT%H:%M:%S.%L",
            "2018-06-11T14:37:30.681701731Z",
            EventTime(utc(2018, 6, 11, 14, 37, 30), 681701731),
        ),
        (
            "%Y-%m-%dT%H:%M:%S.%L%z",
            "2003-08-24T05:14:15.000003-07:00",
            EventTime(utc(2003, 8, 24, 12, 14, 15), 3000),
        ),
        (
            "%Y-%m-%dT%H:%M:%S.%L%z",
            "2003-10-11T22:14:15.003Z",
            EventTime(utc(2003, 10, 11, 22, 14, 15), 3_000_000),
        ),
        (
            "%Y-%m-%d %H:%M:%S,%L",
            "2024-02-29 23:59:59,5",
            EventTime(utc(2024, 2, 29, 23, 59, 59), 500_000_000),
        ),
        ("%s", "1700000000", EventTime(1700000000)),
        ("%s.%L", "1700000000.25", EventTime(1700000000, 250_000_000)),
        ("%FT%T%z", "2024-01-02T03:04:05+05:30", EventTime(utc(2024, 1, 1, 21, 34, 5))),
        ("%d/%m/%y %I:%M %p", "05/06/24 01:30 PM", EventTime(utc(2024, 6, 5, 13, 30, 0))),
        (
            "%a, %d %B %Y %H:%M:%S %Z",
            "Tue, 05 March 2024 10:00:00 GMT",
            EventTime(utc(2024, 3, 5, 10, 0, 0)),
        ),
    ],
)
def test_parse(fmt: str, text: str, expected: EventTime) -> None:
    assert TimeFormat(fmt).parse(text) == expected


def test_year_less_syslog_time_takes_the_current_year() -> None:
    now = float(utc(2031, 5, 1, 0, 0, 0))
    tf = TimeFormat("%b %d %H:%M:%S", now=lambda: now)
    assert tf.parse("Oct 11 22:14:15") == EventTime(utc(2031, 10, 11, 22, 14, 15))
    assert tf.parse("Oct  1 22:14:15") == EventTime(utc(2031, 10, 1, 22, 14, 15))  # padded day


def test_time_only_format_takes_today() -> None:
    now = float(utc(2030, 7, 4, 12, 0, 0))
    assert TimeFormat("%H:%M:%S", now=lambda: now).parse("08:00:01") == EventTime(
        utc(2030, 7, 4, 8, 0, 1)
    )


def test_offset_applies_only_without_a_zone_in_the_text() -> None:
    tf = TimeFormat("%Y-%m-%d %H:%M:%S", offset=parse_offset("+0900"))
    assert tf.parse("2024-01-01 09:00:00") == EventTime(utc(2024, 1, 1, 0, 0, 0))
    tz = TimeFormat("%Y-%m-%d %H:%M:%S %z", offset=parse_offset("+0900"))
    assert tz.parse("2024-01-01 09:00:00 +0000") == EventTime(utc(2024, 1, 1, 9, 0, 0))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("+0900", 32400),
        ("-07:00", -25200),
        ("+05:30", 19800),
        ("Z", 0),
        ("UTC", 0),
        ("-03", -10800),
    ],
)
def test_parse_offset(text: str, seconds: int) -> None:
    assert parse_offset(text) == seconds


@pytest.mark.parametrize("bad", ["0900", "+9", "+2500", "JST", ""])
def test_parse_offset_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_offset(bad)


@pytest.mark.parametrize(
    ("fmt", "text"),
    [
        ("%Y-%m-%d", "2024-13-01"),  # month out of range
        ("%Y-%m-%d", "2023-02-29"),  # not a leap year
        ("%Y-%m-%d", "yesterday"),
        ("%d/%b/%Y", "10/Foo/2023"),
        ("%Y-%m-%dT%H:%M:%S.%L", "2024-01-01T00:00:00"),  # %L needs digits
        ("%s", "-5"),  # before the epoch cannot be an EventTime
        ("%s", "1700000000000"),  # epoch milliseconds: past uint32, cannot be an EventTime
        ("%s.%L", "99999999999.5"),
    ],
)
def test_no_match_returns_none(fmt: str, text: str) -> None:
    assert TimeFormat(fmt).parse(text) is None


@pytest.mark.parametrize("fmt", ["%Q", "%Y-%m-%d %", "%Y %Y"])
def test_bad_formats_raise(fmt: str) -> None:
    with pytest.raises(ValueError):
        TimeFormat(fmt)


# ------------------------------------------------------------------ the cache


def uncached(fmt: str, text: str) -> EventTime | None:
    return TimeFormat(fmt)._parse(text)


FRACTION_TEXTS = [
    "2024-05-01T12:00:00.123456789Z",
    "2024-05-01T12:00:00.123456789+02:00",
    "2024-05-01T12:00:00.1-0700",
    "2024-05-01T12:00:00.1234567891234Z",  # more than nanoseconds: cut
    "2024-05-01T12:00:00.Z",  # no digits
    "2024-05-01T12:00:00Z",  # no fraction at all
    "2024-05-01T12:00:00.12\u0663Z",  # a non-ASCII digit after the ASCII ones
    "  2024-05-01T12:00:00.5Z  ",
    "2024-02-30T12:00:00.5Z",  # no such day
    "1.2 nonsense",
    "",
]


@pytest.mark.parametrize("fmt", ["%Y-%m-%dT%H:%M:%S.%L%z", "%Y-%m-%dT%H:%M:%S.%L", "%FT%T.%f%z"])
@pytest.mark.parametrize("text", FRACTION_TEXTS)
def test_cached_fraction_parse_equals_the_full_parse(fmt: str, text: str) -> None:
    tf = TimeFormat(fmt)
    for _ in range(2):  # a miss, then a hit
        assert tf.parse(text) == uncached(fmt, text)


def test_one_entry_per_second_serves_every_fraction() -> None:
    tf = TimeFormat("%Y-%m-%dT%H:%M:%S.%L%z")
    for nanos in range(0, 1_000_000_000, 7_777_777):
        text = f"2024-05-01T12:00:07.{nanos:09d}Z"
        assert tf.parse(text) == EventTime(utc(2024, 5, 1, 12, 0, 7), nanos)
    assert len(tf._cache) == 1


@pytest.mark.parametrize(
    ("fmt", "text"),
    [
        ("%d/%b/%Y:%H:%M:%S %z", "10/Oct/2023:13:55:36 -0700"),
        ("%d/%b/%Y:%H:%M:%S %z", "99/Oct/2023:13:55:36 -0700"),
        ("%s.%L", "1700000000.25"),
        ("%Y-%m-%d %H:%M:%S,%L", "2024-02-29 23:59:59,5"),
        ("%I:%M:%S.%L %p %Y", "01:02:03.5 p.m. 2024"),  # '.' in %p: no fraction split
    ],
)
def test_cached_parse_equals_the_full_parse(fmt: str, text: str) -> None:
    tf = TimeFormat(fmt)
    assert tf.parse(text) == uncached(fmt, text) == tf.parse(text)


def test_year_less_formats_are_not_cached() -> None:
    # they depend on today's date: a cached value would be wrong after new year
    years = iter([utc(2030, 12, 31, 23, 0, 0), utc(2031, 1, 1, 1, 0, 0)])
    tf = TimeFormat("%b %d %H:%M:%S", now=lambda: float(next(years)))
    assert tf.parse("Jun 01 00:00:00") == EventTime(utc(2030, 6, 1, 0, 0, 0))
    assert tf.parse("Jun 01 00:00:00") == EventTime(utc(2031, 6, 1, 0, 0, 0))


def test_the_cache_is_bounded() -> None:
    from relaybit.parsers import timefmt

    tf = TimeFormat("%Y-%m-%d %H:%M:%S")
    for i in range(timefmt.CACHE_SIZE + 10):
        tf.parse(f"2024-01-01 00:{i // 60 % 60:02d}:{i % 60:02d} {i}")
    assert len(tf._cache) <= timefmt.CACHE_SIZE

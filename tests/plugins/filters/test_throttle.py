"""throttle: sliding-window rate limit on a fake clock; drops counted and logged."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.errors import ConfigError
from relaybit.plugins.base import FILTER_COMMON, PluginContext
from relaybit.plugins.filters.throttle import SlidingWindow, ThrottleFilter
from relaybit.testing import FakeClock


def make(clock: FakeClock, *props: tuple[str, str]) -> ThrottleFilter:
    raw = [RawProperty(k, v, Origin("/etc/agent.conf", i + 2)) for i, (k, v) in enumerate(props)]
    options = (FILTER_COMMON + ThrottleFilter.options).resolve(raw, section="[FILTER]")
    return ThrottleFilter(
        PluginContext(name="throttle.0", plugin="throttle", options=options, clock=clock)
    )


def batch(n: int) -> list[tuple[Any, Any]]:
    return [(i, {"n": i}) for i in range(n)]


def test_window_allows_rate_times_window_then_drops() -> None:
    clock = FakeClock()
    f = make(clock, ("Rate", "2"), ("Window", "3"), ("Interval", "1s"))
    assert len(f.filter("t", batch(10))) == 6  # 6 / 3 panes = rate 2
    assert (f.passed, f.dropped) == (6, 4)


def test_the_window_slides_one_pane_per_interval() -> None:
    clock = FakeClock()
    f = make(clock, ("Rate", "2"), ("Window", "3"), ("Interval", "10s"))
    assert len(f.filter("t", batch(6))) == 6
    clock.advance(5)
    assert f.filter("t", batch(1)) == []  # same pane
    clock.advance(5)  # next pane: the 6 records are still in the window
    assert f.filter("t", batch(1)) == []
    clock.advance(20)  # three panes after theirs: they left the window
    assert len(f.filter("t", batch(10))) == 6
    clock.advance(100)  # the whole window passed
    assert len(f.filter("t", batch(10))) == 6


def test_rate_zero_drops_everything() -> None:
    f = make(FakeClock(), ("Rate", "0"))
    assert f.filter("t", batch(3)) == []


def test_drops_are_logged_once_per_window(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    f = make(clock, ("Rate", "1"), ("Window", "2"), ("Interval", "1s"))
    with caplog.at_level(logging.WARNING, logger="relaybit"):
        f.filter("t", batch(5))  # 2 pass, 3 dropped: logged at once
        f.filter("t", batch(4))  # 4 more dropped: not logged yet
        clock.advance(2.5)
        f.filter("t", batch(5))  # a window later: 3 passed... and the 4 + new drops logged
    drops = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(drops) == 2
    assert "dropped 3 records (3 in total)" in drops[0]
    assert "dropped 7 records (10 in total)" in drops[1]
    assert f.status()["dropped"] == 10


def test_print_status_logs_the_rate_each_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    f = make(clock, ("Rate", "5"), ("Print_Status", "on"), ("Interval", "2s"))
    with caplog.at_level(logging.INFO, logger="relaybit"):
        f.filter("t", batch(3))
        assert not [r for r in caplog.records if "status:" in r.getMessage()]
        clock.advance(2)
        f.filter("t", batch(1))
    assert any("status: rate=0.60/2s" in r.getMessage() for r in caplog.records)


def test_sliding_window_repr_and_big_jumps() -> None:
    w = SlidingWindow(3, 1.0, 0.0)
    assert w.take(10) and w.take(10)
    assert w.advance(1000.0) == 1000
    assert w.total == 0 and "size=3" in repr(w)


@pytest.mark.parametrize(
    ("key", "value"), [("Rate", "-1"), ("Window", "0"), ("Interval", "soon"), ("Rate", "x")]
)
def test_bad_values_name_file_and_line(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        make(FakeClock(), ("Match", "*"), (key, value))
    assert "agent.conf:3" in str(info.value)

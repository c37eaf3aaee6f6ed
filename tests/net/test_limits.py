"""relaybit.net.limits: connection counters, the ceiling, logs that do not flood."""

from __future__ import annotations

import logging
import resource

import pytest

from relaybit.net.limits import (
    ConnectionStats,
    SummarisedLog,
    raise_nofile_limit,
    refusal_log,
)
from relaybit.testing import FakeClock

NAME = "forward.0"


def records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def test_first_lines_then_one_summary_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    log = SummarisedLog(logging.getLogger("t.limits"), NAME, first=3, clock=clock.monotonic)
    with caplog.at_level(logging.WARNING, "t.limits"):
        written = [log.log("malformed", "bad frame %d", i) for i in range(1000)]
        assert written == [True] * 3 + [False] * 997
        log.log("timeout", "slow client")  # another reason has its own budget
        clock.advance(10)
        log.log("malformed", "bad frame again")  # a new interval: summary, then the line
    assert records(caplog) == [
        "bad frame 0",
        "bad frame 1",
        "bad frame 2",
        "slow client",
        "forward.0: 997 more connections closed for malformed in the last 10 s",
        "bad frame again",
    ]


def test_close_writes_pending_summaries(caplog: pytest.LogCaptureFixture) -> None:
    log = SummarisedLog(logging.getLogger("t.limits"), NAME, first=1, what="frames rejected")
    with caplog.at_level(logging.WARNING, "t.limits"):
        for _ in range(5):
            log.log("too_large", "too large")
        log.close()
    assert records(caplog) == [
        "too large",
        "forward.0: 4 more frames rejected for too_large in the last 10 s",
    ]


def test_ceiling_refuses_over_max_and_logs_once_per_burst(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stats = ConnectionStats(max_connections=2)
    refusals = refusal_log(logging.getLogger("t.limits"), NAME)
    with caplog.at_level(logging.WARNING, "t.limits"):
        assert stats.admit(refusals, "max_connections")
        assert stats.admit(refusals, "max_connections")
        assert [stats.admit(refusals, "max_connections") for _ in range(50)] == [False] * 50
        stats.closed()  # one client leaves: the next one is served
        assert stats.admit(refusals, "max_connections")
        refusals.close()
    assert stats.metrics() == {
        "connections": 2,
        "connections_total": 3,
        "connections_refused": 50,
        "rejected": {"malformed": 0, "too_large": 0, "auth": 0, "timeout": 0, "tls": 0},
    }
    assert records(caplog) == [
        "forward.0: refusing new connections: 2 open, the most max_connections allows"
        " (existing clients are served)",
        "forward.0: 49 more connections refused for max_connections in the last 10 s",
    ]


def test_no_ceiling_when_zero() -> None:
    stats = ConnectionStats(max_connections=0)
    refusals = refusal_log(logging.getLogger("t.limits"), NAME)
    assert all(stats.admit(refusals) for _ in range(100))
    assert (stats.open, stats.refused) == (100, 0)


def test_raise_nofile_limit_reaches_the_hard_limit() -> None:
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, before[1]), before[1]))
        soft, hard = raise_nofile_limit()
        assert (soft, hard) == resource.getrlimit(resource.RLIMIT_NOFILE)
        assert hard == before[1]
        if hard != resource.RLIM_INFINITY:
            assert soft == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)

"""The health state machine (pure, fake clock)."""

from __future__ import annotations

import pytest

from relaybit.testing import FakeClock
from relaybit.upstream.health import HealthTracker, NodeState
from relaybit.upstream.node import UpstreamSettings


def tracker(names: tuple[str, ...] = ("a", "b", "c"), **kw: object) -> HealthTracker:
    return HealthTracker(UpstreamSettings(**kw), names)  # type: ignore[arg-type]


def fail(t: HealthTracker, name: str, now: float, message: str = "connection refused"):
    return t.record_failure(name, now, "connect", message)


def test_one_failure_ejects_by_default_with_reason() -> None:
    t = tracker()
    tr = fail(t, "a", 100.0)
    assert tr is not None
    assert (tr.old, tr.new) == (NodeState.HEALTHY, NodeState.EJECTED)
    assert tr.ejected_until == 110.0
    assert tr.describe() == "ejected for 10s after 1 failure: connect: connection refused"
    assert not t.available("a")
    assert t.available("b")


def test_max_fails_within_fail_timeout() -> None:
    t = tracker(max_fails=3, fail_timeout=10.0)
    assert fail(t, "a", 0.0) is None
    assert fail(t, "a", 5.0) is None
    # the first failure left the window: still only two
    assert fail(t, "a", 10.5) is None
    tr = fail(t, "a", 11.0)
    assert tr is not None and tr.new is NodeState.EJECTED
    assert "after 3 failures" in tr.reason


def test_ejection_expires_to_probing_then_success_heals() -> None:
    clock = FakeClock(monotonic=0.0)
    t = tracker()
    fail(t, "a", clock.monotonic())
    clock.advance(9.9)
    assert t.tick(clock.monotonic()) == []
    clock.advance(0.1)
    (tr,) = t.tick(clock.monotonic())
    assert (tr.old, tr.new) == (NodeState.EJECTED, NodeState.PROBING)
    assert t.available("a")
    assert t.begin("a")
    assert not t.available("a"), "half-open admits one flush at a time"
    assert not t.begin("a")
    tr2 = t.record_success("a", clock.monotonic())
    assert tr2 is not None and tr2.new is NodeState.HEALTHY
    assert t.available("a")


def test_abandoned_probe_flush_frees_the_permit() -> None:
    t = tracker()
    fail(t, "a", 0.0)
    t.tick(10.0)
    assert t.begin("a")
    t.abandon("a")
    assert t.begin("a")


def test_ejection_time_grows_and_is_capped() -> None:
    t = tracker(base_ejection_time=10.0, max_ejection_time=25.0)
    now = 0.0
    durations = []
    for _ in range(4):
        tr = fail(t, "a", now)
        assert tr is not None and tr.ejected_until is not None
        durations.append(tr.ejected_until - now)
        now = tr.ejected_until
        (probing,) = t.tick(now)
        assert probing.new is NodeState.PROBING
        assert t.begin("a")
    assert durations == [10.0, 20.0, 25.0, 25.0]


def test_probe_flush_failure_ejects_again_for_longer() -> None:
    t = tracker()
    fail(t, "a", 0.0)
    t.tick(10.0)
    t.begin("a")
    tr = fail(t, "a", 10.0)
    assert tr is not None and tr.new is NodeState.EJECTED
    assert tr.ejected_until == 30.0
    assert "failed probe flush" in tr.reason


def test_ejection_count_decays_after_sustained_health() -> None:
    t = tracker(base_ejection_time=10.0)
    fail(t, "a", 0.0)
    t.tick(10.0)
    t.begin("a")
    t.record_success("a", 10.0)
    assert t.get("a").ejections == 1
    t.tick(19.0)
    assert t.get("a").ejections == 1
    t.tick(20.0)
    assert t.get("a").ejections == 0
    tr = fail(t, "a", 21.0)
    assert tr is not None and tr.ejected_until == 31.0


def test_max_ejection_percent_limits_ejections() -> None:
    t = tracker(("a", "b", "c", "d"), max_ejection_percent=50)
    assert fail(t, "a", 0.0) is not None
    assert fail(t, "b", 0.0) is not None
    assert fail(t, "c", 0.0) is None, "a third ejection would exceed 50%"
    assert t.available("c")
    assert t.ejected_count() == 2


def test_max_ejection_percent_allows_one_and_zero_allows_none() -> None:
    t = tracker(("a", "b", "c"), max_ejection_percent=10)
    assert fail(t, "a", 0.0) is not None
    assert fail(t, "b", 0.0) is None
    t0 = tracker(("a",), max_ejection_percent=0)
    assert fail(t0, "a", 0.0) is None
    assert t0.available("a")


def test_every_node_ejected_means_no_available_node() -> None:
    t = tracker(("a", "b"))
    fail(t, "a", 0.0)
    fail(t, "b", 0.0)
    assert not any(t.available(n) for n in ("a", "b"))
    assert t.begin("a", panic=True), "panic admits every node"
    tr = t.record_success("a", 1.0)
    assert tr is not None and tr.new is NodeState.HEALTHY


def test_active_probes_mark_unhealthy_and_healthy_again() -> None:
    t = tracker(health_check=True, unhealthy_threshold=3, healthy_threshold=2)
    assert t.record_probe("a", 0.0, ok=False, kind="timeout", message="probe timed out") is None
    assert t.record_probe("a", 1.0, ok=False, kind="timeout", message="probe timed out") is None
    tr = t.record_probe("a", 2.0, ok=False, kind="timeout", message="probe timed out")
    assert tr is not None and tr.new is NodeState.UNHEALTHY
    assert "after 3 failed probes: timeout: probe timed out" in tr.reason
    assert not t.available("a")
    assert t.record_probe("a", 3.0, ok=True) is None
    tr = t.record_probe("a", 4.0, ok=True)
    assert tr is not None and tr.new is NodeState.HEALTHY
    assert t.available("a")


def test_active_checks_ejected_node_needs_passing_probes() -> None:
    t = tracker(health_check=True, healthy_threshold=2)
    fail(t, "a", 0.0)
    (tr,) = t.tick(10.0)
    assert tr.new is NodeState.PROBING
    assert not t.available("a"), "with active checks a probing node takes no flush"
    assert t.record_probe("a", 11.0, ok=True) is None
    tr2 = t.record_probe("a", 12.0, ok=True)
    assert tr2 is not None and tr2.new is NodeState.HEALTHY


def test_active_checks_probes_passed_during_ejection_count() -> None:
    t = tracker(health_check=True, healthy_threshold=2)
    fail(t, "a", 0.0)
    t.record_probe("a", 3.0, ok=True)
    t.record_probe("a", 6.0, ok=True)
    assert t.state("a") is NodeState.EJECTED
    (tr,) = t.tick(10.0)
    assert tr.new is NodeState.HEALTHY


def test_last_error_kept_and_unknown_nodes_ignored() -> None:
    t = tracker()
    fail(t, "a", 0.0, "boom")
    assert t.get("a").last_error == ("connect", "boom")
    assert t.record_failure("zz", 0.0, "connect", "x") is None
    assert t.record_success("zz", 0.0) is None
    t.remove("a")
    assert "a" not in t
    assert "b" in t


def test_repr_names_states() -> None:
    t = tracker(("a", "b"))
    fail(t, "a", 0.0)
    assert repr(t) == "<HealthTracker [a ejected, b healthy]>"
    assert "ejected until 10" in repr(t.get("a"))


@pytest.mark.parametrize("seconds", [-1.0])
def test_fake_clock_never_goes_back(seconds: float) -> None:
    clock = FakeClock()
    with pytest.raises(ValueError):
        clock.advance(seconds)
    clock.advance(2.5)
    assert clock.monotonic() == 1002.5
    assert clock.time() == 1_700_000_002.5

"""The pure retry scheduler: Fluent Bit's retry_limit values and full-jitter backoff."""

from __future__ import annotations

import ast
import random
from pathlib import Path

import pytest

import relaybit.pipeline.router
import relaybit.pipeline.scheduler
from relaybit.pipeline.scheduler import RetryLimit, Scheduler, backoff_full_jitter


@pytest.mark.parametrize(
    ("text", "retries"),
    [("1", 1), ("5", 5), ("no_limits", None), ("false", None), ("off", None), ("no_retries", 0)],
)
def test_retry_limit_values(text: str, retries: int | None) -> None:
    assert RetryLimit.parse(text).retries == retries


def test_retry_limit_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="no_limits"):
        RetryLimit.parse("sometimes")


def test_limit_allows_n_retries_after_first_attempt() -> None:
    limit = RetryLimit.parse("2")
    assert [limit.allows(done) for done in range(4)] == [True, True, False, False]
    assert not RetryLimit.parse("no_retries").allows(0)
    assert RetryLimit.parse("no_limits").allows(10**6)


def test_backoff_stays_between_base_and_capped_exponential() -> None:
    rng = random.Random(7)
    for n in range(1, 30):
        for _ in range(20):
            wait = backoff_full_jitter(5, 2000, n, rng)
            assert 5 <= wait <= min(2000, 5 * 2**n)


def test_backoff_reaches_the_cap_and_is_jittered() -> None:
    rng = random.Random(1)
    waits = {round(backoff_full_jitter(5, 60, 10, rng), 3) for _ in range(50)}
    assert max(waits) <= 60 and len(waits) > 10


def test_scheduler_adds_slack_and_gives_up_at_limit() -> None:
    sched = Scheduler(5, 2000, rng=random.Random(3))
    limit = RetryLimit.parse("1")
    first = sched.next_wait(limit, 0)
    assert first is not None and 6 <= first <= 11  # uniform(5, 10) + 1
    assert sched.next_wait(limit, 1) is None


def test_scheduler_waits_only_the_slack_while_shutting_down() -> None:
    sched = Scheduler(5, 2000, rng=random.Random(3))
    sched.shutting_down = True
    assert sched.next_wait(RetryLimit.parse("no_limits"), 4) == 1.0


@pytest.mark.parametrize("module", [relaybit.pipeline.scheduler, relaybit.pipeline.router])
def test_pure_modules_import_no_io(module: object) -> None:
    tree = ast.parse(Path(module.__file__).read_text())  # type: ignore[attr-defined]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    assert not names & {"asyncio", "socket"}

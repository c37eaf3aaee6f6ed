"""Retry decisions: Fluent Bit's ``retry_limit`` and full-jitter backoff. Pure.

Fluent Bit (``src/flb_scheduler.c``, ``src/flb_task.c``, ``src/flb_engine.c``):

- ``backoff_full_jitter(base, cap, n)`` draws uniformly between ``base`` and
  ``min(cap, base * 2**n)``, where ``n`` is the number of the retry (1 for the
  first); the wait is that plus one second, and only the second while the agent
  is shutting down.
- ``retry_limit N`` allows N retries after the first attempt (Fluent Bit's
  default is 1; relaybit's default is ``no_limits``, see docs/compatibility.md);
  ``no_limits``/``false``/``off`` retries forever; ``no_retries`` drops a chunk
  at its first RETRY.

This module imports neither asyncio nor socket: the engine asks it how long to
wait, or whether to give up, and performs the answer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

#: ``[SERVICE] scheduler.base`` and ``scheduler.cap`` defaults, in seconds.
DEFAULT_BASE = 5.0
DEFAULT_CAP = 2000.0
#: Fluent Bit adds one second to every retry wait.
FLUENT_BIT_SLACK = 1.0

_UNLIMITED = {"no_limits", "false", "off", "no_limit", "unlimited"}
_NONE = {"no_retries", "no_retry"}


@dataclass(frozen=True, slots=True)
class RetryLimit:
    """How many retries a chunk gets per output: ``None`` means forever."""

    retries: int | None

    @classmethod
    def parse(cls, text: str | int | None) -> RetryLimit:
        """``3``, ``no_limits``/``false`` (forever) or ``no_retries``; ValueError otherwise."""
        if text is None:  # relaybit's default: retry until delivered (Fluent Bit: 1)
            return cls(None)
        if isinstance(text, int):
            if text < 0:
                raise ValueError(f"expected a retry count of 0 or more, got {text}")
            return cls(text)
        low = text.strip().lower()
        if low in _UNLIMITED:
            return cls(None)
        if low in _NONE:
            return cls(0)
        if low.isdigit():
            return cls(int(low))
        raise ValueError(
            f"expected a number of retries, no_limits, false or no_retries, got {text!r}"
        )

    def allows(self, retries_done: int) -> bool:
        """Whether one more retry is allowed after ``retries_done`` retries."""
        return self.retries is None or retries_done < self.retries

    def __str__(self) -> str:
        if self.retries is None:
            return "no_limits"
        return "no_retries" if self.retries == 0 else str(self.retries)


def backoff_full_jitter(base: float, cap: float, n: int, rng: random.Random) -> float:
    """A wait drawn uniformly in ``[base, min(cap, base * 2**n)]`` (Fluent Bit's formula)."""
    top = min(cap, base * (2.0 ** min(n, 62)))
    return rng.uniform(base, max(base, top))


class Scheduler:
    """Decides retry waits; ``rng`` is injected so tests are deterministic."""

    def __init__(
        self,
        base: float = DEFAULT_BASE,
        cap: float = DEFAULT_CAP,
        *,
        slack: float = FLUENT_BIT_SLACK,
        rng: random.Random | None = None,
    ) -> None:
        if base < 0 or cap < 0:
            raise ValueError("scheduler.base and scheduler.cap must not be negative")
        self.base = base
        self.cap = max(cap, base)
        self.slack = slack
        self.rng = rng or random.Random()
        self.shutting_down = False

    def next_wait(self, limit: RetryLimit, retries_done: int) -> float | None:
        """Seconds before the next retry, or None when the limit is reached."""
        if not limit.allows(retries_done):
            return None
        if self.shutting_down:
            return self.slack
        return backoff_full_jitter(self.base, self.cap, retries_done + 1, self.rng) + self.slack

    def __repr__(self) -> str:
        return f"<Scheduler base={self.base:g} cap={self.cap:g} slack={self.slack:g}>"

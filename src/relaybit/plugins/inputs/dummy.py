"""in_dummy: generate a fixed record at a rate (Fluent Bit's keys and semantics).

The record (``dummy``: a JSON object, or an array of objects emitted in turn)
is packed once; each tick only the EventTime changes.  ``rate`` is ticks per
second, each tick emits ``copies`` records, ``samples`` stops after that many
ticks.  At high rates the due ticks are emitted together, in batches of about
``_BATCH_BYTES``, so the cost per record is a bytes join, not an await.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from typing import Any

import msgpack
import orjson

from relaybit.codec.jsonvalue import loads as json_loads
from relaybit.config.schema import ConfigMap, Option, Options
from relaybit.errors import ConfigError
from relaybit.logging import counted
from relaybit.plugins.base import InputContext, InputPlugin
from relaybit.plugins.inputs.lines import now_ext, time_ext

_BATCH_BYTES = 1 << 20
#: ticks are gathered at most this often (seconds) at high rates
_MIN_SLEEP = 0.01


class DummyInput(InputPlugin):
    """Emits the ``dummy`` record ``copies`` times per tick, ``rate`` ticks per second."""

    description = "Generate dummy data"
    options = ConfigMap(
        (
            Option("dummy", "str", '{"message":"dummy"}', "The record, as JSON (object or array)"),
            Option("metadata", "str", "{}", "Metadata of each record, as a JSON object"),
            Option("rate", "float", 1.0, "Ticks per second (above 0)"),
            Option("interval_sec", "int", 0, "Tick interval seconds (overrides rate when set)"),
            Option("interval_nsec", "int", 0, "Tick interval nanoseconds (with interval_sec)"),
            Option("copies", "int", 1, "Records per tick", minimum=1),
            Option("samples", "int", 0, "Stop after this many ticks (0 = forever)", minimum=0),
            Option("start_time_sec", "int", -1, "Time of the first record, seconds"),
            Option("start_time_nsec", "int", -1, "Time of the first record, nanoseconds"),
            Option("fixed_timestamp", "bool", False, "Every record keeps the first timestamp"),
            Option("flush_on_startup", "bool", False, "Emit the first tick at start"),
            Option(
                "test_hang_on_exit",
                "bool",
                False,
                "Fluent Bit's test hook: hang at exit",
                no_effect="a test hook of Fluent Bit's own test suite",
            ),
        )
    )

    def __init__(self, ctx: InputContext) -> None:
        super().__init__(ctx)
        opts = ctx.options
        section = f"[INPUT] {ctx.name}"
        records = self._json(opts, "dummy", section)
        if isinstance(records, dict):
            records = [records]
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ConfigError(
                "expected a JSON object or an array of objects",
                opts.origin("dummy"),
                section=section,
                key="dummy",
            )
        metadata = self._json(opts, "metadata", section)
        if not isinstance(metadata, dict):
            raise ConfigError(
                "expected a JSON object", opts.origin("metadata"), section=section, key="metadata"
            )
        packer = msgpack.Packer(use_bin_type=True)
        #: the packed bodies, one per record of ``dummy``
        self.bodies = [packer.pack(r) for r in records]
        #: entries are [time, record], or [[time, metadata], record] when metadata is set
        self.meta = packer.pack(metadata) if metadata else b""
        interval = opts.int("interval_sec") + opts.int("interval_nsec") / 1e9
        rate = self._rate(opts, section)
        self.interval = interval if interval > 0 else 1.0 / rate
        self.copies = opts.int("copies")
        self.samples = opts.int("samples")
        self.fixed_timestamp = opts.bool("fixed_timestamp")
        self.flush_on_startup = opts.bool("flush_on_startup")
        start_sec, start_nsec = opts.int("start_time_sec"), opts.int("start_time_nsec")
        self.start_time: tuple[int, int] | None = None
        if start_sec >= 0 or start_nsec >= 0:
            self.start_time = (max(start_sec, 0), max(start_nsec, 0))
        self.tag = ctx.tag or ctx.name
        self.ticks = 0
        self.records = 0
        self._fixed: bytes | None = None
        self._started = 0.0
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    def _rate(opts: Options, section: str) -> float:
        rate = opts.float("rate")
        if not rate > 0 or math.isinf(rate):  # NaN fails the first test
            what = "a finite number of" if math.isinf(rate) else "a rate above 0"
            raise ConfigError(
                f"expected {what} records per second, got {rate:g}",
                opts.origin("rate"),
                section=section,
                key="rate",
            )
        return rate

    @staticmethod
    def _json(opts: Options, key: str, section: str) -> Any:
        try:
            return json_loads(opts.str(key))
        except orjson.JSONDecodeError as exc:
            raise ConfigError(
                f"invalid JSON: {exc}", opts.origin(key), section=section, key=key
            ) from None

    def _time(self) -> bytes:
        if self._fixed is not None:
            return self._fixed
        if self.start_time is not None:
            elapsed = time.monotonic() - self._started
            whole = int(elapsed)
            nanos = self.start_time[1] + int((elapsed - whole) * 1e9)
            stamp = time_ext(
                self.start_time[0] + whole + nanos // 1_000_000_000, nanos % 1_000_000_000
            )
        else:
            stamp = now_ext(self.ctx.clock)
        if self.fixed_timestamp:
            self._fixed = stamp
        return stamp

    def tick_bytes(self, stamp: bytes) -> bytes:
        """The entries of one tick: every record of ``dummy`` times ``copies``."""
        head = b"\x92\x92" + stamp + self.meta if self.meta else b"\x92" + stamp
        one = b"".join(head + body for body in self.bodies)
        return one * self.copies

    @property
    def records_per_tick(self) -> int:
        return len(self.bodies) * self.copies

    async def start(self) -> None:
        self._started = time.monotonic()
        if self.fixed_timestamp:  # fixed at start, as Fluent Bit packs it at init
            base = self.start_time
            self._fixed = time_ext(*base) if base else now_ext(self.ctx.clock)
        self._task = self.spawn(self._run, "dummy")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def wait(self) -> None:
        """Return when ``samples`` ticks were emitted (or the input was stopped)."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)

    async def _run(self) -> None:
        # tick k is due at started + (k + 1) * interval (or k * interval with flush_on_startup)
        offset = 0 if self.flush_on_startup else 1
        per_tick = max(len(self.tick_bytes(self._time() if self._fixed else b"\0" * 10)), 1)
        max_ticks = max(1, _BATCH_BYTES // per_tick)
        while self.samples == 0 or self.ticks < self.samples:
            now = time.monotonic()
            due = int((now - self._started) / self.interval) + 1 - offset
            if self.samples:
                due = min(due, self.samples)
            todo = due - self.ticks
            if todo <= 0:
                wake = self._started + (self.ticks + offset) * self.interval
                await asyncio.sleep(
                    max(wake - now, _MIN_SLEEP if self.interval < _MIN_SLEEP else 0)
                )
                continue
            count = min(todo, max_ticks)
            data = self.tick_bytes(self._time()) * count
            await self.ctx.emit(self.tag, data, count * self.records_per_tick)
            self.ticks += count
            self.records += count * self.records_per_tick
        self.ctx.logger.info("%s emitted, done", counted(self.ticks, "sample"))

    def status(self) -> dict[str, Any]:
        return {"ticks": self.ticks, "records": self.records}

    def __repr__(self) -> str:
        return f"<DummyInput {self.ctx.name} interval={self.interval:g}s ticks={self.ticks}>"

"""An output inside the engine: its queue of tasks, its workers' settings and its counters."""

from __future__ import annotations

import asyncio
from typing import Any

from relaybit.pipeline.scheduler import RetryLimit
from relaybit.pipeline.task import Task
from relaybit.plugins.base import OutputPlugin


class OutputSlot:
    """One output instance inside the engine: its queue, workers and counters."""

    def __init__(
        self,
        name: str,
        plugin: OutputPlugin,
        retry_limit: RetryLimit,
        workers: int,
        total_limit_size: int = 0,
        processors: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.plugin = plugin
        #: names of its processors in the engine's filter registry (run before each flush)
        self.processors = processors
        self.retry_limit = retry_limit
        self.workers = max(1, workers)
        self.queue: asyncio.Queue[Task] = asyncio.Queue()
        self.in_flight = 0
        self.waiting: set[Task] = set()
        self.proc_records = 0
        self.proc_bytes = 0
        self.errors = 0
        self.retries = 0
        self.retries_failed = 0
        self.retried_records = 0
        self.dropped_records = 0
        #: ``storage.total_limit_size``: bytes of filesystem chunks queued for it (0: no limit)
        self.total_limit_size = total_limit_size
        #: filesystem chunks not yet done for this output, oldest first, with their size
        self.stored: dict[str, tuple[Task, int]] = {}
        self.stored_bytes = 0

    def metrics(self) -> dict[str, int]:
        return {
            "proc_records": self.proc_records,
            "proc_bytes": self.proc_bytes,
            "errors": self.errors,
            "retries": self.retries,
            "retries_failed": self.retries_failed,
            "retried_records": self.retried_records,
            "dropped_records": self.dropped_records,
        }

    def status(self) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "retry_limit": str(self.retry_limit),
            "queued": self.queue.qsize(),
            "in_flight": self.in_flight,
            "waiting_retry": len(self.waiting),
            "storage_queued_chunks": len(self.stored),
            "storage_queued_bytes": self.stored_bytes,
            "total_limit_size": self.total_limit_size,
        }

    def __repr__(self) -> str:
        return (
            f"<OutputSlot {self.name} workers={self.workers} queued={self.queue.qsize()}"
            f" in_flight={self.in_flight} waiting_retry={len(self.waiting)}>"
        )

"""No input dies on an unexpected exception: its loop is restarted after a backoff.

An input runs its work in a task (tail's reader, dummy's ticker ...).  Started
through :func:`supervise` (or :meth:`InputPlugin.spawn
<relaybit.plugins.base.InputPlugin.spawn>`), an exception that escapes the
loop is logged in **one** line (the traceback at debug), counted in the
input's ``restarts`` metric, and the loop is started again after a backoff
(1 s doubling to 30 s; back to 1 s once it ran 30 s without failing).  The
loop must keep its own state on the instance so that a restart goes on where
it stopped (tail keeps its files and offsets; an emit that raised left its
records unacknowledged, to be read again).  Cancellation (stop) ends it; a
normal return (``exit_on_eof``, ``samples``) ends it too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from relaybit.pipeline.storage_guard import StorageWriteError

#: first wait before a restart, doubled per failure up to RESTART_CAP
RESTART_BASE = 1.0
RESTART_CAP = 30.0
#: a loop that ran this long without failing starts again from RESTART_BASE
HEALTHY_AFTER = 30.0


@dataclass(slots=True)
class Restarts:
    """What a supervised loop's failures were (for metrics and status)."""

    count: int = 0
    last_error: str = ""

    def failed(self, exc: Exception, logger: logging.Logger, what: str, delay: float) -> None:
        """Count a failure of ``what`` and log it in one line saying it starts again in
        ``delay`` seconds (the traceback at debug level)."""
        self.count += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        logger.error(
            "%s failed on an unexpected error (%s); restarting in %.1f s (restart %d)",
            what,
            self.last_error,
            delay,
            self.count,
        )
        logger.debug("%s: the traceback of the error", what, exc_info=exc)


async def supervise(
    run: Callable[[], Awaitable[None]],
    logger: logging.Logger,
    what: str,
    restarts: Restarts | None = None,
    *,
    base: float | None = None,
    cap: float | None = None,
) -> None:
    """Await ``run()`` again after each unexpected exception, with a backoff
    (``base`` doubling to ``cap``; RESTART_BASE and RESTART_CAP by default)."""
    restarts = restarts if restarts is not None else Restarts()
    base = RESTART_BASE if base is None else base
    cap = RESTART_CAP if cap is None else cap
    delay = base
    while True:
        began = time.monotonic()
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except StorageWriteError as exc:  # raised only once the agent stops: not an error
            logger.info("%s stopped with records not stored, read again later: %s", what, exc)
            return
        except Exception as exc:
            if time.monotonic() - began >= HEALTHY_AFTER:
                delay = base  # it had run well: a new episode
            restarts.failed(exc, logger, what, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, cap)

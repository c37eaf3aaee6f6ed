"""``relaybit --supervisor``: the agent in a child process, restarted when it fails.

As Fluent Bit's supervisor: the parent starts ``relaybit`` with the same flags
(without ``--supervisor``), and when the child exits with a non-zero status or
is killed by a signal, starts it again one second later.  A child that exits
with status 0 ends the supervision with 0.  SIGTERM, SIGINT and SIGQUIT are
passed to the child, the parent waits for it (SIGKILL after
``STOP_TIMEOUT`` seconds) and exits with its status; SIGHUP restarts the child
(stopped with SIGTERM, then started again).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

from relaybit.logging import FluentBitFormatter

#: seconds a stopping child gets before SIGKILL (its own grace is 5 s by default)
STOP_TIMEOUT = 30.0
#: seconds between a failed child and the next one (Fluent Bit waits 1 s too)
RESTART_DELAY = 1.0

log = logging.getLogger("relaybit.supervisor")


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the supervisor dies (Linux prctl),
    so a killed supervisor leaves no agent behind."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _exit_status(code: int) -> int:
    """A child's status as a shell gives it (128 + N when killed by signal N)."""
    return 128 - code if code < 0 else code


class Supervisor:
    def __init__(self, argv: Sequence[str]) -> None:
        self.command = [sys.executable, "-m", "relaybit", *argv]
        self.stop_signal: int | None = None
        self.restart = False
        self.child: subprocess.Popen[bytes] | None = None

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self.restart = True
        else:
            self.stop_signal = signum

    def _stop_child(self, signum: int) -> int:
        assert self.child is not None
        self.child.send_signal(signum)
        try:
            code = self.child.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.warning(
                "child %d still running %gs after signal %d: killing it",
                self.child.pid,
                STOP_TIMEOUT,
                signum,
            )
            self.child.kill()
            code = self.child.wait()
        return _exit_status(code)

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        while True:
            # its own session: a terminal's Ctrl-C reaches the parent only, which passes
            # it on once (a second SIGINT would end the child's grace period at once)
            self.child = subprocess.Popen(
                self.command, start_new_session=True, preexec_fn=_die_with_parent
            )
            log.info("started child process %d", self.child.pid)
            while True:
                code = self.child.poll()
                if self.stop_signal is not None:
                    stop: int = self.stop_signal
                    self.stop_signal = None
                    log.info("stop requested, forwarding signal %d to %d", stop, self.child.pid)
                    status = self._stop_child(stop)
                    log.info("child exited with status %d", status)
                    return status
                if self.restart:
                    self.restart = False
                    log.info("restart requested (SIGHUP): stopping child %d", self.child.pid)
                    self._stop_child(signal.SIGTERM)
                    break
                if code is not None:
                    status = _exit_status(code)
                    if status == 0:
                        log.info("child exited cleanly, stopping supervision")
                        return 0
                    log.warning("child exited with status %d, scheduling restart", status)
                    time.sleep(RESTART_DELAY)
                    break
                time.sleep(0.1)  # the polling interval of the child's state


def supervise(argv: Sequence[str]) -> int:
    """Run ``relaybit argv`` under supervision; returns the last child's exit status."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(FluentBitFormatter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return Supervisor(argv).run()

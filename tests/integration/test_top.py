"""``relaybit top`` in a real terminal: tmux runs it against a real agent.

An agent (a real process) sends through an upstream of three receiver
processes with its monitoring API on; ``relaybit top`` runs in a detached tmux
session of its own (a private tmux server, ``-L``), and the test reads the
screen with ``capture-pane``: every node with its state, then node-2 turning
``ejected`` once its receiver is killed, then ``q`` ends the program.
Skipped with the reason when tmux is not installed (scripts/test installs
Debian's tmux when it runs as root).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import (
    Processes,
    agent_conf,
    forward_output,
    free_port,
    monitoring,
    node,
    upstream_conf,
)

from relaybit.testing import wait_until

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux not installed (apt-get install tmux)")


class Pane:
    """A detached tmux session on a private server, running one command."""

    def __init__(self, command: list[str], cwd: Path) -> None:
        assert TMUX is not None
        self.socket = f"relaybit-test-{uuid.uuid4().hex[:8]}"
        self.base = [TMUX, "-L", self.socket]
        subprocess.run(
            [
                *self.base,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "top",
                "-x",
                "200",
                "-y",
                "50",
                "-c",
                str(cwd),
                *command,
            ],
            check=True,
            timeout=10,
        )
        # keep the pane after the program ended, so a failure shows what it printed
        subprocess.run([*self.base, "set-option", "-t", "top", "remain-on-exit", "on"], timeout=10)

    def screen(self) -> str:
        proc = subprocess.run(
            [*self.base, "capture-pane", "-p", "-t", "top"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return proc.stdout if proc.returncode == 0 else ""

    def line_of(self, needle: str) -> str:
        return next((line for line in self.screen().splitlines() if needle in line), "")

    def send(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "top", *keys], check=True, timeout=10)

    @property
    def alive(self) -> bool:
        """The program in the pane still runs."""
        proc = subprocess.run(
            [*self.base, "display-message", "-p", "-t", "top", "#{pane_dead}"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return proc.stdout.strip() == "0"

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True, timeout=10)


@pytest.fixture
def agent_with_nodes(procs: Processes, tmp_path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    receivers = {name: procs.receiver(name) for name in ("node-1", "node-2", "node-3")}
    (tmp_path / "upstream.conf").write_text(
        upstream_conf([node(r) for r in receivers.values()], name="tier")
    )
    api = free_port()
    conf = tmp_path / "agent.conf"
    conf.write_text(
        agent_conf(
            [{"name": "dummy", "tag": "app", "rate": 50}],
            forward_output(),
            service=monitoring(api),
        )
    )
    agent = procs.agent(conf)
    agent.wait_started()
    yield api, dict(receivers)


def test_top_shows_every_node_and_an_ejection(
    agent_with_nodes: tuple[int, dict[str, object]], tmp_path: Path
) -> None:
    api, receivers = agent_with_nodes
    # env -u: the terminal's own size, not one inherited from the test runner
    pane = Pane(
        [
            "env",
            "-u",
            "COLUMNS",
            "-u",
            "LINES",
            sys.executable,
            "-m",
            "relaybit",
            "top",
            "--url",
            f"http://127.0.0.1:{api}",
        ],
        tmp_path,
    )
    try:

        def all_healthy() -> bool:
            screen = pane.screen()
            return "tier" in screen and all(
                "healthy" in pane.line_of(f" node-{i} ") for i in (1, 2, 3)
            )

        try:
            wait_until(all_healthy, 20, "three healthy nodes on the screen")
        except AssertionError:
            raise AssertionError(f"the screen:\n{pane.screen()}") from None
        screen = pane.screen()
        assert "inputs" in screen and "dummy.0" in screen
        assert "outputs" in screen and "forward.0" in screen
        assert "storage" in screen and "records/s" in screen

        receivers["node-2"].kill9()  # type: ignore[attr-defined]
        wait_until(
            lambda: "ejected" in pane.line_of(" node-2 "),
            10,
            "node-2 ejected on the screen",
        )
        assert "healthy" in pane.line_of(" node-1 ")
        # the last error says why (connection refused, or the reset of the killed peer)
        row = pane.line_of(" node-2 ").lower()
        assert "refused" in row or "reset" in row or "closed" in row, row

        pane.send("q")
        wait_until(lambda: not pane.alive, 10, "relaybit top to quit on q")
    finally:
        pane.close()

"""Interop fixtures: independent Forward implementations run as real Node.js processes.

The npm packages pinned in ``tests/interop/node/package.json`` are installed
once per session (``npm install --no-package-lock``) when ``node_modules`` is
missing.  Every test here is skipped, with the reason, when node or npm is not
on the machine or the install fails.
"""

from __future__ import annotations

import asyncio
import functools
import json
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trustme

from relaybit import testing
from relaybit.codec.msgpack import iter_entries

NODE_DIR = Path(__file__).resolve().parent / "node"


@pytest.fixture(scope="session")
def node_dir() -> Path:
    """``tests/interop/node`` with its npm packages installed; skips without node/npm."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("interop tests need node and npm on PATH (Node.js >= 18)")
    if (
        not (NODE_DIR / "node_modules" / "fluent-logger").is_dir()
        or not (NODE_DIR / "node_modules" / "@fluent-org" / "logger").is_dir()
    ):
        cmd = [npm, "install", "--no-package-lock", "--no-audit", "--no-fund", "--prefix", "."]
        done = subprocess.run(
            cmd, cwd=NODE_DIR, capture_output=True, text=True, timeout=300, check=False
        )
        if done.returncode != 0:
            pytest.skip(f"npm install in {NODE_DIR} failed: {done.stderr.strip()[-500:]}")
    return NODE_DIR


RunNode = Callable[..., Awaitable[list[dict[str, Any]]]]


@pytest.fixture
def run_node(node_dir: Path) -> RunNode:
    """``await run_node(script, spec)``: run a node script, return its JSON output lines."""

    async def run(script: str, spec: dict[str, Any], timeout: float = 20.0) -> list[dict[str, Any]]:
        proc = await asyncio.create_subprocess_exec(
            "node",
            str(node_dir / script),
            json.dumps(spec),
            cwd=node_dir,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(timeout):
                out, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, f"{script} exited {proc.returncode}: {err.decode()[-2000:]}"
        return [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]

    return run


class Store:
    """An ``on_entries`` / ``emit`` sink that decodes what arrived."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Any, Any]] = []
        self.calls = 0

    async def __call__(self, tag: str, entries: bytes, records: int) -> None:
        self.calls += 1
        got = list(iter_entries(entries))
        assert len(got) == records
        self.items.extend((tag, t, r) for t, r in got)

    emit = __call__


@pytest.fixture
def store() -> Store:
    return Store()


#: node processes start slowly: a longer deadline than the default
wait_for = functools.partial(testing.wait_for, timeout=10.0)


@pytest.fixture
def waiter() -> Callable[..., Awaitable[None]]:
    return wait_for


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trustme CA (``ca.pem``) and a server cert for 127.0.0.1/localhost."""
    base = tmp_path_factory.mktemp("interop-certs")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    server.cert_chain_pems[0].write_to_path(str(base / "server.pem"))
    server.private_key_pem.write_to_path(str(base / "server.key"))
    ca.cert_pem.write_to_path(str(base / "ca.pem"))
    return base

"""The /status page in headless Chromium, over a real agent and real receivers.

Chromium (Debian's, as the other browser test) is driven through the DevTools
protocol on a websocket (aiohttp): the page is loaded from the agent's
monitoring API, its DOM is read with ``Runtime.evaluate`` and a screenshot is
taken with ``Page.captureScreenshot``. The screenshot must not be blank, the
DOM must show every node with its state (table, picture) and the chart, and a
receiver killed with SIGKILL must show as ejected within 2 seconds (the page
polls each second), with the change in the timeline. The page loads nothing
but the agent's own API (checked from the browser's network log).
"""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
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

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (apt-get install chromium)"
)
#: where a copy of the last screenshot is kept, to look at (tests/.artifacts is ignored by git)
ARTIFACTS = Path(os.environ.get("RELAYBIT_ARTIFACTS", tempfile.gettempdir()))


class Page:
    """One Chromium tab over the DevTools protocol."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.requests: list[str] = []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        await self.ws.send_json({"id": msg_id, "method": method, "params": params})
        while True:
            msg = await asyncio.wait_for(self.ws.receive_json(), 30)
            if msg.get("method") == "Network.requestWillBeSent":
                self.requests.append(msg["params"]["request"]["url"])
            if msg.get("id") == msg_id:
                assert "error" not in msg, msg
                return dict(msg.get("result", {}))

    async def js(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def until(self, expression: str, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while not (value := await self.js(expression)):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
            await asyncio.sleep(0.05)  # the polling interval, not a wait for the result
        return value


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Page]:
    assert CHROMIUM is not None
    profile = tmp_path / "chromium-profile"
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--remote-debugging-port=0",
        "--remote-allow-origins=*",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        endpoint = ""
        deadline = time.monotonic() + 30
        while not endpoint:
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
            assert line, "chromium exited before opening its DevTools port"
            if found := re.search(r"ws://127\.0\.0\.1:(\d+)/", line):
                endpoint = f"http://127.0.0.1:{found.group(1)}"
        drain = asyncio.ensure_future(proc.stderr.read())  # keep the pipe from filling
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{endpoint}/json/list") as r:
                targets = await r.json()
            url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            async with http.ws_connect(url, max_msg_size=64 * 1024 * 1024) as ws:
                page = Page(ws)
                await page.call("Network.enable")
                await page.call(
                    "Emulation.setDeviceMetricsOverride",
                    width=1400,
                    height=1500,
                    deviceScaleFactor=1,
                    mobile=False,
                )
                yield page
        drain.cancel()
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


@pytest.fixture
def agent_api(procs: Processes, tmp_path: Path) -> tuple[int, dict[str, Any]]:
    receivers = {name: procs.receiver(name) for name in ("node-1", "node-2", "node-3")}
    (tmp_path / "upstream.conf").write_text(
        upstream_conf([node(r) for r in receivers.values()], name="aggregators")
    )
    api = free_port()
    conf = tmp_path / "agent.conf"
    conf.write_text(
        agent_conf(
            [{"name": "dummy", "tag": "app.events", "rate": 200}],
            forward_output(),
            service=monitoring(api),
        ).replace(
            "[OUTPUT]", "[FILTER]\n    name modify\n    match app.*\n    add via relaybit\n[OUTPUT]"
        )
    )
    procs.agent(conf).wait_started()
    return api, receivers


def png_is_not_blank(png: bytes) -> tuple[int, int, int]:
    """(width, height, distinct colours) of a screenshot; asserts it has content."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    small = image.resize((image.width // 4, image.height // 4))
    colours = len(small.getcolors(maxcolors=1 << 24) or [])
    assert colours > 50, f"the screenshot looks blank ({colours} colours)"
    return image.width, image.height, colours


async def test_status_page_shows_nodes_chart_and_an_ejection_within_2s(
    browser: Page, agent_api: tuple[int, dict[str, Any]]
) -> None:
    api, receivers = agent_api
    base = f"http://127.0.0.1:{api}"
    await browser.call("Page.enable")
    await browser.call("Page.navigate", url=f"{base}/status")
    await browser.until("document.body && document.body.dataset.loaded === 'true'", 15, "the page")
    states = (
        "Object.fromEntries([...document.querySelectorAll('tr[data-node]')]"
        ".map(r => [r.dataset.node, r.dataset.state]))"
    )
    await browser.until(
        f"(s => s['node-1'] === 'healthy' && s['node-2'] === 'healthy'"
        f" && s['node-3'] === 'healthy')({states})",
        15,
        "three healthy nodes in the table",
    )
    # the picture: the input, the filter, the output and every node in its state
    picture = await browser.js(
        "({nodes: Object.fromEntries([...document.querySelectorAll('[data-pnode]')]"
        ".map(g => [g.dataset.pnode, g.dataset.state])),"
        " inputs: [...document.querySelectorAll('[data-pinput]')].map(g => g.dataset.pinput),"
        " filters: [...document.querySelectorAll('[data-pfilter]')].map(g => g.dataset.pfilter),"
        " outputs: [...document.querySelectorAll('[data-poutput]')].map(g => g.dataset.poutput)})"
    )
    assert picture == {
        "nodes": {"node-1": "healthy", "node-2": "healthy", "node-3": "healthy"},
        "inputs": ["dummy.0"],
        "filters": ["modify.0"],
        "outputs": ["forward.0"],
    }
    # a line per node in the chart once the agent has sampled a few seconds
    await browser.until(
        "document.querySelectorAll('svg[data-chart] polyline[data-series]').length === 3",
        15,
        "a records/s line per node",
    )
    storage = await browser.js("document.getElementById('storage').innerText")
    assert "chunks pending" in storage and "memory" in storage

    shot = await browser.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    png = base64.b64decode(shot["data"])
    (ARTIFACTS / "relaybit-status-healthy.png").write_bytes(png)
    width, height, _ = png_is_not_blank(png)
    assert (width, height) >= (1400, 800)

    receivers["node-2"].kill9()
    killed = time.monotonic()
    await browser.until(
        "(r => r && r.dataset.state === 'ejected')(document.querySelector('tr[data-node=\"node-2\"]'))",
        2.5,  # 2 s promised; the kill itself is seen at the agent's next flush to node-2
        "node-2 ejected in the table",
    )
    seen_after = time.monotonic() - killed
    assert seen_after < 2.5, seen_after
    assert await browser.js("document.querySelector('[data-pnode=\"node-2\"]').dataset.state") == (
        "ejected"
    )
    await browser.until(
        '!!document.querySelector(\'#timeline li[data-node="node-2"][data-new="ejected"]\')',
        2,
        "the ejection in the timeline",
    )
    row = await browser.js("document.querySelector('tr[data-node=\"node-2\"]').innerText")
    assert "refused" in row.lower() or "reset" in row.lower() or "closed" in row.lower(), row
    shot = await browser.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    png = base64.b64decode(shot["data"])
    (ARTIFACTS / "relaybit-status-ejected.png").write_bytes(png)
    png_is_not_blank(png)

    # offline: nothing was fetched but the agent's own pages
    foreign = [u for u in browser.requests if not u.startswith(base) and not u.startswith("data:")]
    assert foreign == [], foreign
    assert json.dumps(browser.requests)  # the log was recorded at all
    assert any(u.endswith("/api/v1/history") for u in browser.requests)

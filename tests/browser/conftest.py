"""A real browser (Debian's chromium through Playwright) against real service processes.

No browser is ever downloaded: Playwright drives ``/usr/bin/chromium`` (``apt-get install -y
chromium``). The stack is the one a visitor meets: tools, conversation, post_call and the gateway,
started as processes in this session's namespace; the widget is embedded in a plain HTML page
served from another local port, as it would be on a customer's site.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.support.environment import TestEnvironment, free_port
from tests.support.processes import ARTIFACTS, ServiceProcess, ServiceStarter

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ARTIFACTS / "screenshots"
ADMIN_TOKEN = "admin-" + uuid.uuid4().hex
# Replicas share the session secret, so a chat resumes on whichever gateway it reconnects to.
GATEWAY_ENV = {
    "ADMIN_TOKEN": ADMIN_TOKEN,
    "CALLCENTER_GATEWAY__SESSION_SECRET": "browser-tests-" + uuid.uuid4().hex,
}

HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Acme Outfitters — Trail shoes</title>
<style>body {{ font-family: Georgia, serif; margin: 2rem; max-width: 48rem; }}</style>
</head><body>
<h1>Acme Outfitters</h1>
<p>Trail shoes, jackets and everything for the outdoors. Questions about an order? Chat with us.</p>
<p><a href="#">Shipping</a> · <a href="#">Returns</a></p>
<script src="{gateway}/static/widget.js" data-title="Chat with Ava" defer></script>
</body></html>
"""


@dataclass
class Stack:
    """The running services a browser test talks to."""

    gateway: ServiceProcess
    post_call: ServiceProcess
    host_url: str
    start: Callable[..., ServiceProcess]

    @property
    def base(self) -> str:
        return self.gateway.url

    def restart_gateway(self) -> None:
        """SIGTERM the gateway and start a new one on the same port (a rolling restart)."""
        assert self.gateway.stop() == 0, self.gateway.log_tail()
        self.gateway = self.start("gateway", extra_env=GATEWAY_ENV)


class _HostPage(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def host_site(test_env) -> Iterator[str]:
    """A plain third-party page embedding the widget with one script tag (its own port)."""
    gateway = f"http://127.0.0.1:{test_env.ports['gateway']}"
    handler = type("Host", (_HostPage,), {"body": HOST_PAGE.format(gateway=gateway).encode()})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/shop.html"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="package")
def stack(db_pool: asyncpg.Pool, test_env: TestEnvironment, host_site: str) -> Iterator[Stack]:
    """tools, conversation, post_call and the gateway (with an admin token), all ready.

    Started once for the browser modules, whose settings are the same (starting a Python service
    costs seconds of CPU); stopped when the last of them ends.
    """
    starter = ServiceStarter(env=test_env.env, ports=test_env.ports, tag=test_env.tag)
    try:
        started = [
            starter.start("tools", wait=False),
            starter.start("conversation", wait=False),
            starter.start("post_call", wait=False),
            starter.start("gateway", wait=False, extra_env=GATEWAY_ENV),
        ]
        for proc in started:
            proc.wait_ready()
        yield Stack(
            gateway=started[3], post_call=started[2], host_url=host_site, start=starter.start
        )
    finally:
        starter.stop_all()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Debian's chromium, headless."""
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 (once per session)
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`")
    async with async_playwright() as pw:
        instance = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        await instance.close()


@pytest.fixture
def shot() -> Callable[[Page, str], object]:
    """``await shot(page, "name")`` saves test-artifacts/screenshots/name.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    async def take(page: Page, name: str, *, full_page: bool = True) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        await page.screenshot(path=str(path), full_page=full_page)
        return path

    return take

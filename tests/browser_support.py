"""The demo shop served on 127.0.0.1 and driven by Debian's Chromium through Playwright.

Stripe.js cannot be fetched here: pages asking for https://js.stripe.com/v3/ get the
connector's sandbox stand-in (``flask_psp_connector/static/sandbox/stripe.js``), which follows Stripe.js's
documented contract and talks to the shop's sandbox Stripe API, backed by the Stripe double.
Every other request that leaves 127.0.0.1 is aborted and recorded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import requests
from flask import Flask
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

CHROMIUM = "/usr/bin/chromium"
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage"]
ROOT = Path(__file__).resolve().parent.parent
STAND_IN = ROOT / "flask_psp_connector" / "static" / "sandbox" / "stripe.js"
ARTIFACTS = ROOT / "test-artifacts"
T = TypeVar("T")


@contextmanager
def serving(app: Flask, port: int) -> Iterator[str]:
    """Serve ``app`` with a threaded werkzeug server on 127.0.0.1:``port``."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(5)


def guard_network(page: Any, blocked: list[str]) -> None:
    """Serve the stand-in for Stripe.js; abort (and record) anything not on 127.0.0.1."""

    def route(route: Any) -> None:
        url = route.request.url
        if url.startswith("https://js.stripe.com/v3"):
            route.fulfill(status=200, content_type="application/javascript", body=STAND_IN.read_text())
        elif url.startswith("http://127.0.0.1:"):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    page.route("**/*", route)


def wait_for(check: Callable[[], T | None], timeout: float = 15.0) -> T:
    """Poll ``check`` until it returns something truthy (webhooks arrive after ~1 s)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            assert result, "condition not met in time"
            return result
        time.sleep(0.1)


def screenshot(page: Any, name: str) -> None:
    """Keep the final screen of a scenario in test-artifacts/ for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


class WebhookRelay:
    """Takes the Stripe double's webhooks and holds them until the test lets them through,
    so a page can be seen before and after a webhook lands."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.held: list[tuple[bytes, str]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.held.append((request.get_data(), request.headers.get("Stripe-Signature", "")))
        return Response(status=200)(environ, start_response)

    def release(self) -> None:
        """Deliver every held event to the shop, signature and body untouched."""
        while self.held:
            body, signature = self.held.pop(0)
            requests.post(self.target, data=body, timeout=10,
                          headers={"Content-Type": "application/json", "Stripe-Signature": signature})

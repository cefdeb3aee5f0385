"""No secret in any log line of a full checkout served the way the Procfile serves it.

gunicorn runs with ``gunicorn.conf.py`` (access log on) in sandbox mode; Chromium pays
by card, with 3D Secure and through a bank redirect (whose return URL carries the
PaymentIntent's client secret). Every line gunicorn and the app wrote is then searched
for client secrets, Stripe keys, the signing secret and the shop's own secrets.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from playwright.sync_api import Page, sync_playwright

from demo_shop.log_redaction import redact_line
from flask_psp_connector.platforms.embedded.store import LocalPlatform
from flask_psp_connector.sandbox import sandbox_config
from flask_psp_connector.testing import free_port
from tests.browser_support import CHROME_ARGS, CHROMIUM, guard_network
from tests.shop.test_shop_browser import SUCCESS, THREE_D_SECURE, expect_paid_order, pay_by_card, to_payment_page

ROOT = Path(__file__).resolve().parents[2]
FLASK_SECRET = "flask-secret-never-logged-4f1c"
ADMIN_PASSWORD = "admin-password-never-logged-9d2e"
CLIENT_SECRET = re.compile(r"[a-z]+_[A-Za-z0-9]+_secret_[A-Za-z0-9]+")


@pytest.fixture
def procfile_shop(tmp_path: Path) -> Iterator[SimpleNamespace]:
    """The shop under gunicorn with the Procfile's config, its output captured in a file."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database = f"sqlite:///{tmp_path / 'shop.sqlite3'}"
    log_path = tmp_path / "server.log"
    with sandbox_config(url, name=f"logs-{port}") as sandbox, open(log_path, "wb") as log:
        env = {**os.environ, **{key: str(value) for key, value in sandbox.items()},
               "SECRET_KEY": FLASK_SECRET, "SHOP_ADMIN_PASSWORD": ADMIN_PASSWORD, "SESSION_COOKIE_SECURE": "0",
               "PSP_DATABASE_URL": database, "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4",
               "HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"}
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
             "tests.wsgi_shop:create_app()"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    requests.get(url, timeout=5)
                    break
                except requests.RequestException:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("gunicorn did not start: " + log_path.read_text()) from None
                    time.sleep(0.2)
            platform = LocalPlatform.from_url(database)
            yield SimpleNamespace(url=url, platform=platform, log_path=log_path, sandbox=sandbox)
            platform.database.dispose()
        finally:
            server.terminate()
            server.wait(20)


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        context = browser.new_context()
        page = context.new_page()
        blocked: list[str] = []
        guard_network(page, blocked)
        yield page
        browser.close()
        assert blocked == []


def test_a_full_checkout_writes_no_secret_to_any_log(procfile_shop: SimpleNamespace, page: Page) -> None:
    shop = procfile_shop
    paid = []
    cart_id = to_payment_page(page, shop)
    pay_by_card(page, SUCCESS)
    expect_paid_order(page, shop, cart_id)
    paid.append(cart_id)

    cart_id = to_payment_page(page, shop)
    pay_by_card(page, THREE_D_SECURE)
    page.get_by_role("button", name="Complete authentication").click()
    expect_paid_order(page, shop, cart_id)
    paid.append(cart_id)

    cart_id = to_payment_page(page, shop)
    page.get_by_role("tab", name="Bank redirect").click()
    page.click("#pay")
    with page.expect_request("**/return?*") as returned:
        page.get_by_role("button", name="Approve").click()
    assert "payment_intent_client_secret=" in returned.value.url
    expect_paid_order(page, shop, cart_id)
    paid.append(cart_id)
    page.goto(f"{shop.url}/admin/login")
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{shop.url}/admin/")
    time.sleep(1)  # let the access log lines of the last requests be written

    secrets = {FLASK_SECRET, ADMIN_PASSWORD, shop.sandbox["STRIPE_SECRET_KEY"],
               shop.sandbox["STRIPE_WEBHOOK_SIGNING_SECRET"]}
    for cart in paid:
        for payment in shop.platform.payments_of_cart(cart):
            assert payment.client_secret
            secrets.add(payment.client_secret)
    lines = shop.log_path.read_text().splitlines()
    assert any("GET /return?" in line for line in lines), "the access log is on and saw the return URL"
    assert any("payment_intent=pi_" in line for line in lines)
    leaks = [line for line in lines if any(secret in line for secret in secrets) or CLIENT_SECRET.search(line)]
    assert leaks == []


@pytest.mark.parametrize(("line", "expected"), [
    ('"GET /return?paymentReference=p1&payment_intent=pi_1&payment_intent_client_secret=pi_1_secret_abc&'
     'redirect_status=succeeded HTTP/1.1" 303',
     '"GET /return?paymentReference=p1&payment_intent=pi_1&payment_intent_client_secret=[redacted]&'
     'redirect_status=succeeded HTTP/1.1" 303'),
    ('"http://shop/return?setup_intent_client_secret=seti_9_secret_x"', '"http://shop/return?setup_intent_client_secret=[redacted]"'),
    ("stray pi_3Abc_secret_Def in a message", "stray [redacted] in a message"),
    ("key sk_test_123 and whsec_abc", "key sk_*** and whsec_***"),
    ('"GET /orders/abc?x=1 HTTP/1.1" 200', '"GET /orders/abc?x=1 HTTP/1.1" 200'),
])
def test_redaction(line: str, expected: str) -> None:
    assert redact_line(line) == expected

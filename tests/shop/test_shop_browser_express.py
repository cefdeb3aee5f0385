"""Express Checkout end to end in Debian's Chromium: the cart page's wallet button, the
sheet (the sandbox stand-in's Link wallet), the shop's endpoints, the connector's
express routes and the Stripe double. A screenshot of each test's final screen goes to
test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from demo_shop import create_app
from flask_psp_connector.domain.payment import TransactionState, TransactionType
from flask_psp_connector.sandbox import sandbox_config
from flask_psp_connector.testing import free_port
from tests.browser_support import CHROME_ARGS, CHROMIUM, guard_network, screenshot, serving, wait_for


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: Any) -> Iterator[SimpleNamespace]:
    """The shop in sandbox mode, with the double's webhooks coming back to it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database = tmp_path_factory.mktemp("express") / "shop.sqlite3"
    with sandbox_config(url, name=f"express-{port}") as sandbox:
        app = create_app({**sandbox, "SECRET_KEY": "e2e-express-secret", "SESSION_COOKIE_SECURE": False,
                          "PSP_DATABASE_URL": f"sqlite:///{database}"})
        with serving(app, port) as base:
            yield SimpleNamespace(url=base, platform=app.extensions["psp_connector"].platform)


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    blocked: list[str] = []
    guard_network(page, blocked)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if "Content Security Policy" in message.text else None)
    yield page
    screenshot(page, request.node.name)
    context.close()
    assert blocked == [], "the page tried to leave 127.0.0.1"
    assert errors == [], "script errors or CSP violations"


def sheet_total(page: Page) -> Any:
    return page.locator("[data-sandbox-sheet] [data-sandbox-total]")


def test_express_payment_from_the_cart_with_an_address_and_a_shipping_change(page: Page, shop: SimpleNamespace) -> None:
    page.goto(f"{shop.url}/products/stoneware-mug")
    page.fill("input[name=quantity]", "2")
    page.get_by_role("button", name="Add to cart").click()
    page.wait_for_url("**/cart")
    expect(page.locator(".cart-totals [data-total]")).to_have_text("€48.67")  # 36.00 + 4.90 + 19% VAT

    wallet = page.get_by_role("button", name="Pay with Link (sandbox)")
    expect(wallet).to_be_visible()
    wallet.click()
    sheet = page.locator("[data-sandbox-sheet]")
    expect(sheet).to_be_visible()
    # The sheet opens on the wallet's first address (Berlin): standard shipping to Germany.
    expect(sheet.locator("[data-sandbox-address=DE]")).to_be_checked()
    expect(sheet.locator("[data-sandbox-address=US]")).to_be_disabled()  # the shop does not ship there
    expect(sheet_total(page)).to_have_text("€48.67")
    expect(sheet.get_by_text("Express shipping · €12.90")).to_be_visible()

    # Paris: the rates and the VAT are France's; the total follows.
    sheet.locator("[data-sandbox-address=FR]").check()
    expect(sheet.get_by_text("Standard shipping · €9.90")).to_be_visible()
    expect(sheet_total(page)).to_have_text("€55.08")  # 36.00 + 9.90 + 20% VAT
    sheet.locator("[data-sandbox-rate=express]").check()
    expect(sheet_total(page)).to_have_text("€73.08")  # 36.00 + 24.90 + 20% VAT
    expect(sheet.get_by_text("Express shipping", exact=True)).to_be_visible()  # a line of the sheet
    screenshot(page, "express_sheet_open")

    expect(sheet.locator("[data-sandbox-pay]")).to_be_enabled()
    sheet.locator("[data-sandbox-pay]").click()

    page.wait_for_url("**/orders/*")
    cart_id = page.url.split("/orders/", 1)[1].split("?", 1)[0]
    expect(page.get_by_text("Paid", exact=True).first).to_be_visible(timeout=15_000)
    expect(page.locator(".addresses")).to_contain_text("8 Rue de Rivoli")
    expect(page.locator(".addresses")).to_contain_text("France")
    expect(page.get_by_text("Express shipping")).to_be_visible()
    expect(page.locator("[data-total]")).to_have_text("€73.08")
    screenshot(page, "express_order_paid")

    order = wait_for(lambda: shop.platform.find_order_by_cart(cart_id))
    cart = shop.platform.get_cart(cart_id)
    assert cart.shipping_method_name == "Express shipping"
    assert (order.shipping_amount, order.tax_amount, order.total_price.cent_amount) == (2490, 1218, 7308)
    shipping = order.shipping_address
    assert (shipping.first_name, shipping.last_name, shipping.street_name, shipping.city, shipping.country) == (
        "Jeanne", "Martin", "8 Rue de Rivoli", "Paris", "FR")
    assert order.customer_email == "jane@example.test"
    payments = shop.platform.payments_of_cart(cart_id)
    assert [p.amount_planned.cent_amount for p in payments] == [7308]
    charged = wait_for(lambda: payments_charged(shop, cart_id))
    assert charged == 7308

    # The shopping cart was the one paid: the next visit starts a new one.
    page.goto(f"{shop.url}/cart")
    expect(page.get_by_text("Your cart is empty.")).to_be_visible()


def payments_charged(shop: SimpleNamespace, cart_id: str) -> int:
    return sum(p.total(TransactionType.CHARGE, TransactionState.SUCCESS) for p in shop.platform.payments_of_cart(cart_id))


def test_express_from_a_product_page_leaves_the_cart_alone(page: Page, shop: SimpleNamespace) -> None:
    page.goto(f"{shop.url}/products/linen-tea-towel")
    page.get_by_role("button", name="Add to cart").click()
    page.wait_for_url("**/cart")
    page.goto(f"{shop.url}/products/pour-over-kettle")
    page.fill("input[name=quantity]", "1")
    page.get_by_role("button", name="Pay with Link (sandbox)").click()
    sheet = page.locator("[data-sandbox-sheet]")
    expect(sheet_total(page)).to_have_text("€76.04")  # 59.00 + 4.90 + 19% VAT
    sheet.get_by_role("button", name="Cancel").click()
    expect(sheet).to_have_count(0)
    page.goto(f"{shop.url}/cart")
    expect(page.locator(".cart-table")).to_contain_text("Linen Tea Towel")
    expect(page.locator(".cart-table")).not_to_contain_text("Pour-Over Kettle")

"""In Chromium: a customer saves a card on their first purchase and pays with it on the next.

The shop runs in sandbox mode (the Stripe.js stand-in, the sandbox Stripe API, the
local Stripe double); see ``browser_support``.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, expect, sync_playwright

from demo_shop import create_app
from flask_psp_connector.sandbox import sandbox_config
from flask_psp_connector.testing import free_port
from tests.browser_support import CHROME_ARGS, CHROMIUM, guard_network, screenshot, serving

PASSWORD = "saved-cards-password"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: Any) -> Iterator[SimpleNamespace]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database = tmp_path_factory.mktemp("saved") / "shop.sqlite3"
    with sandbox_config(url, name=f"saved-{port}") as sandbox:
        app = create_app({**sandbox, "SECRET_KEY": "saved-cards-secret", "SESSION_COOKIE_SECURE": False,
                          "PSP_DATABASE_URL": f"sqlite:///{database}"})
        with serving(app, port) as base:
            yield SimpleNamespace(url=base, platform=app.extensions["psp_connector"].platform,
                                  api=sandbox["STRIPE_API_BASE"], key=sandbox["STRIPE_SECRET_KEY"])


@pytest.fixture
def page(request: pytest.FixtureRequest) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        blocked: list[str] = []
        errors: list[str] = []
        guard_network(page, blocked)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
        yield page
        screenshot(page, request.node.name)
        browser.close()
    assert blocked == [], "the page tried to leave 127.0.0.1"
    assert errors == [], "script errors or CSP violations"


def to_payment_page(page: Page, shop: SimpleNamespace) -> str:
    """Buy a mug: cart, details (the email is the account's), payment page; return the cart id."""
    page.goto(f"{shop.url}/products/stoneware-mug")
    page.get_by_role("button", name="Add to cart").click()
    page.goto(f"{shop.url}/checkout")
    expect(page.locator("input[name=email]")).to_have_value("jane@example.test")
    for name, value in {"first_name": "Jane", "last_name": "Doe", "street_name": "Hauptstraße", "street_number": "5",
                        "postal_code": "10115", "city": "Berlin"}.items():
        page.fill(f"input[name=shipping-{name}]", value)
    page.get_by_role("button", name="Continue to payment").click()
    page.wait_for_selector("[data-sandbox-element=payment]")
    expect(page.locator("#pay")).to_be_enabled()
    return page.locator("#payment-element").get_attribute("data-complete-url").rsplit("/", 1)[-1]


def expect_paid(page: Page, shop: SimpleNamespace, cart_id: str) -> None:
    page.wait_for_url(f"**/orders/{cart_id}*")
    expect(page.get_by_text("Paid", exact=True).first).to_be_visible(timeout=15_000)
    assert shop.platform.find_order_by_cart(cart_id) is not None


def intent_of(shop: SimpleNamespace, cart_id: str) -> dict[str, Any]:
    (payment,) = [p for p in shop.platform.payments_of_cart(cart_id) if p.transactions[-1].state.value == "Success"]
    answer = requests.get(f"{shop.api}/v1/payment_intents/{payment.interface_id}", auth=(shop.key, ""), timeout=10)
    return answer.json()


def test_a_card_saved_on_the_first_purchase_pays_the_second(page: Page, shop: SimpleNamespace) -> None:
    page.goto(f"{shop.url}/account/sign-up")
    page.fill("input[name=email]", "jane@example.test")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=confirm]", PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/account")
    expect(page.get_by_text("No saved cards.")).to_be_visible()

    first = to_payment_page(page, shop)
    customer_id = shop.platform.get_cart(first).customer_id
    assert customer_id is not None
    expect(page.locator("[data-sandbox-saved]")).to_have_count(0)  # nothing saved yet
    page.fill("[data-sandbox-field=number]", "4242424242424242")
    page.fill("[data-sandbox-field=expiry]", "12 / 34")
    page.fill("[data-sandbox-field=cvc]", "123")
    page.get_by_label("Save for future purchases").check()
    page.click("#pay")
    expect_paid(page, shop, first)
    (saved,) = shop.platform.saved_payment_methods(customer_id)
    assert (saved.brand, saved.last4, saved.exp_month, saved.exp_year) == ("visa", "4242", 12, 2034)
    assert intent_of(shop, first)["payment_method"] == saved.stripe_payment_method_id

    page.goto(f"{shop.url}/account")
    expect(page.get_by_text("Visa ending in 4242")).to_be_visible()
    expect(page.get_by_role("link", name=shop.platform.find_order_by_cart(first).order_number)).to_be_visible()

    second = to_payment_page(page, shop)
    choice = page.locator(f"[data-sandbox-saved={saved.stripe_payment_method_id}]")
    expect(choice).to_be_checked()
    expect(page.locator("[data-sandbox-field=number]")).to_be_hidden()
    page.click("#pay")
    expect_paid(page, shop, second)
    intent = intent_of(shop, second)
    assert intent["payment_method"] == saved.stripe_payment_method_id
    assert intent["amount"] == shop.platform.get_cart(second).total_price.cent_amount
    assert [m.id for m in shop.platform.saved_payment_methods(customer_id)] == [saved.id]

"""The pi_first flow and async settlement in Chromium: the demo shop, psp-payment.js, the Stripe double.

German carts follow a behaviour rule (``flowType: pi_first``): psp-payment.js asks for
the PaymentIntent before mounting the Payment Element with its client secret. A SEPA
Direct Debit stays processing until the bank settles it: the page and the order page
say so, and the order appears when the double's ``payment_intent.succeeded`` lands.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from demo_shop import create_app
from demo_shop.money import format_money
from flask_psp_connector.sandbox import SECRET_KEY, init_sandbox, sandbox_config
from flask_psp_connector.testing import free_port
from tests.browser_support import serving, wait_for
from tests.shop.test_shop_browser import (  # noqa: F401
    SUCCESS,
    browser,
    charges,
    expect_paid_order,
    page,
    pay_by_card,
    to_payment_page,
)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: Any) -> Iterator[SimpleNamespace]:
    """The shop in key mode (js.stripe.com routed to the stand-in), pi_first for German carts."""
    port = free_port()
    database = tmp_path_factory.mktemp("flows") / "shop.sqlite3"
    with sandbox_config(f"http://127.0.0.1:{port}", name=f"flows-{port}") as sandbox:
        config = {**sandbox, "SECRET_KEY": "flows-secret-key", "SESSION_COOKIE_SECURE": False,
                  "SHOP_ADMIN_PASSWORD": "flows-admin", "PSP_DATABASE_URL": f"sqlite:///{database}",
                  "STRIPE_PUBLISHABLE_KEY": "pk_test_e2e", "STRIPE_PAYMENT_METHOD_TYPES": "card,sepa_debit",
                  "STRIPE_PAYMENT_BEHAVIOR_RULES": json.dumps({"DE": {"flowType": "pi_first"}})}
        del config["PSP_SANDBOX"]
        app = create_app(config)
        init_sandbox(app)
        with serving(app, port) as base:
            yield SimpleNamespace(url=base, platform=app.extensions["psp_connector"].platform,
                                  api=sandbox["STRIPE_API_BASE"])


def test_pi_first_mounts_with_the_client_secret_then_pays(page, shop) -> None:  # noqa: F811
    cart_id = to_payment_page(page, shop)
    given = page.evaluate("Stripe.sandbox.elementsOptions")
    [payment] = shop.platform.payments_of_cart(cart_id)  # created before the element was shown
    assert given[-1]["clientSecret"] == payment.client_secret and "mode" not in given[-1]
    pay_by_card(page, SUCCESS)
    expect_paid_order(page, shop, cart_id)
    assert [c.amount for c in charges(shop, cart_id)] == [shop.platform.get_cart(cart_id).total_price]
    assert len(shop.platform.payments_of_cart(cart_id)) == 1


def test_pi_first_remounts_for_a_cart_changed_in_another_tab(page, shop) -> None:  # noqa: F811
    cart_id = to_payment_page(page, shop)
    [first] = shop.platform.payments_of_cart(cart_id)
    other_tab = page.context.request  # what another tab sends: the same session cookie
    product = other_tab.get(f"{shop.url}/products/linen-tea-towel").text()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', product)[1]  # type: ignore[index]
    assert other_tab.post(f"{shop.url}/products/linen-tea-towel/add", form={"csrf_token": token, "quantity": "1"}).ok
    shown = format_money(shop.platform.get_cart(cart_id).total_price)

    pay_by_card(page, SUCCESS)

    expect(page.locator("#payment-message")).to_contain_text(f"Your cart changed: the total is now {shown}")
    expect(page.locator("#pay")).to_have_text(f"Pay {shown}")
    assert charges(shop, cart_id) == []
    given = page.evaluate("Stripe.sandbox.elementsOptions")
    second = next(p for p in shop.platform.payments_of_cart(cart_id) if p.id != first.id)
    assert given[-1]["clientSecret"] == second.client_secret
    old = requests.get(f"{shop.api}/v1/payment_intents/{first.interface_id}", auth=(SECRET_KEY, ""), timeout=5).json()
    assert old["status"] == "canceled"  # the old tab can no longer pay it
    pay_by_card(page, SUCCESS)  # the element was mounted again: the card is typed again
    expect_paid_order(page, shop, cart_id)
    assert [c.amount for c in charges(shop, cart_id)] == [shop.platform.get_cart(cart_id).total_price]


def test_a_sepa_debit_says_processing_until_the_money_arrives(page, shop) -> None:  # noqa: F811
    cart_id = to_payment_page(page, shop)
    page.get_by_role("tab", name="SEPA Direct Debit").click()
    page.fill("[data-sandbox-field=iban]", "DE89 3704 0044 0532 0130 00")
    page.click("#pay")
    page.wait_for_url(f"**/orders/{cart_id}*")
    expect(page.locator("[data-processing]")).to_have_text("Thank you! Your payment is processing.")
    expect(page.locator("[data-payment-state]")).to_have_text("Payment processing")
    assert shop.platform.find_order_by_cart(cart_id) is None
    [payment] = shop.platform.payments_of_cart(cart_id)

    settled = requests.post(f"{shop.api}/v1/payment_intents/{payment.interface_id}/_settle", auth=(SECRET_KEY, ""), timeout=5)
    assert settled.json()["status"] == "succeeded"

    expect(page.locator("[data-payment-state]")).to_have_text("Paid", timeout=15_000)
    wait_for(lambda: shop.platform.find_order_by_cart(cart_id))
    expect(page.locator("h1")).to_have_text("Thank you! Your order is confirmed.")

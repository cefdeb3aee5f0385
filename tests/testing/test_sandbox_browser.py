"""The Stripe.js stand-in in Chromium, held to Stripe.js's documented contract.

No request is routed by Playwright here (routing would answer CORS preflights itself):
a storefront on another origin loads the stand-in from the shop's URL and the
connector's browser modules from its own, and pays through the shop cross-origin.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, expect, sync_playwright

from demo_shop import create_app
from flask_psp_connector import Address, LineItemDraft
from flask_psp_connector.domain.payment import TransactionState, TransactionType
from flask_psp_connector.sandbox import SECRET_KEY, sandbox_config
from flask_psp_connector.testing import free_port
from tests.browser_support import CHROME_ARGS, CHROMIUM, screenshot, serving, wait_for
from tests.shop.test_shop_browser import to_payment_page
from tests.storefront_support import storefront


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def sites(tmp_path_factory: Any) -> Iterator[SimpleNamespace]:
    """The shop in sandbox mode and a storefront on another port (another origin)."""
    shop_port, front_port = free_port(), free_port()
    shop_url, front_url = f"http://127.0.0.1:{shop_port}", f"http://127.0.0.1:{front_port}"
    database = tmp_path_factory.mktemp("sites") / "shop.sqlite3"
    with sandbox_config(shop_url, name=f"cross-{shop_port}") as sandbox:
        shop = create_app({**sandbox, "SECRET_KEY": "cross-origin-secret", "SESSION_COOKIE_SECURE": False,
                           "PSP_DATABASE_URL": f"sqlite:///{database}", "ALLOWED_ORIGINS": f"{front_url},{shop_url}",
                           "STRIPE_COLLECT_BILLING_ADDRESS": "never"})
        platform = shop.extensions["psp_connector"].platform
        with serving(shop, shop_port), serving(storefront(shop_url, platform), front_port):
            yield SimpleNamespace(shop=shop_url, front=front_url, platform=platform, api=sandbox["STRIPE_API_BASE"],
                                  publishable_key=sandbox["STRIPE_PUBLISHABLE_KEY"])


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Page]:
    viewport = getattr(request, "param", {"width": 1280, "height": 900})
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    outside: list[str] = []
    errors: list[str] = []
    marker = request.node.get_closest_marker("http_errors")
    expected = set(marker.args) if marker else set()
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("http://127.0.0.1:", "data:")) else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and r.status not in expected and not r.url.endswith("/favicon.ico") else None)
    yield page
    screenshot(page, request.node.name)
    context.close()
    assert outside == [], "the page tried to leave 127.0.0.1"
    assert errors == [], "script errors or failed requests in the page"


def double(sites: SimpleNamespace, path: str, **params: Any) -> dict[str, Any]:
    return requests.get(f"{sites.api}/v1{path}", params=params, auth=(SECRET_KEY, ""), timeout=10).json()


def paid_cart(sites: SimpleNamespace, cart_id: str) -> list[Any]:
    return [t for p in sites.platform.payments_of_cart(cart_id) for t in p.transactions
            if (t.type, t.state) == (TransactionType.CHARGE, TransactionState.SUCCESS)]


def test_a_storefront_on_another_origin_pays_by_card(page, sites) -> None:
    cart = sites.platform.create_cart("EUR", line_items=[LineItemDraft("mug", "Mug", 1, 2500)],
                                      customer_email="jane@example.test",
                                      shipping_address=Address(first_name="Jane", last_name="Doe", street_name="Hauptstraße 5",
                                                               postal_code="10115", city="Berlin", country="DE",
                                                               email="jane@example.test"))
    session = sites.platform.open_session(cart.id, merchant_return_url=f"{sites.front}/return")
    page.goto(f"{sites.front}/pay/{session.id}")
    page.wait_for_selector("[data-sandbox-element=payment]")
    expect(page.locator("#pay")).to_be_enabled()
    page.fill("[data-sandbox-field=number]", "4242424242424242")
    page.fill("[data-sandbox-field=expiry]", "12 / 34")
    page.fill("[data-sandbox-field=cvc]", "123")
    page.click("#pay")
    page.wait_for_url(f"{sites.front}/done?paymentReference=*")
    charges = wait_for(lambda: paid_cart(sites, cart.id))
    assert [c.amount.cent_amount for c in charges] == [2500]
    wait_for(lambda: sites.platform.find_order_by_cart(cart.id))
    intent = charges[0].interaction_id
    method = double(sites, f"/payment_intents/{intent}", **{"expand[]": "payment_method"})["payment_method"]
    assert method["billing_details"]["name"] == "Jane Doe"  # confirmParams.payment_method_data reached the method


def test_a_storefront_on_another_origin_pays_by_express_checkout(page, sites) -> None:
    page.goto(f"{sites.front}/express")
    page.click("[data-sandbox-wallet=link]")
    sheet = page.locator("[data-sandbox-sheet=expressCheckout]")
    expect(sheet).to_be_visible()
    page.check("[data-sandbox-rate=express]")
    expect(page.locator("[data-sandbox-total]")).to_have_text("€39.90")  # 2 × 15.00 + express shipping, priced by the shop
    page.click("[data-sandbox-pay]")
    page.wait_for_url(f"{sites.front}/done?paymentReference=*")
    reference = page.url.split("paymentReference=")[1]
    payment = wait_for(lambda: (p := sites.platform.get_payment(reference))
                       and p.has(TransactionType.CHARGE, TransactionState.SUCCESS) and p)
    assert payment.amount_planned.cent_amount == 3990
    wait_for(lambda: sites.platform.find_order_by_cart(payment.cart_id))
    method = double(sites, f"/payment_intents/{payment.interface_id}", **{"expand[]": "payment_method"})["payment_method"]
    assert (method["billing_details"]["email"], method["card"]["last4"]) == ("jane@example.test", "4242")


ENABLER_STYLE = """
async (clientSecret) => {
  // As the upstream enabler does: methods called detached, a Payment Element created and
  // never mounted next to the Express Checkout Element, confirmation from the wallet.
  const stripe = Stripe(window.publishableKey);
  const elements = stripe.elements({ mode: "payment", amount: 2000, currency: "eur" });
  const createElement = elements.create;
  createElement("payment", {});
  const express = createElement("expressCheckout", {});
  const on = express.on;
  const result = new Promise((resolve) => {
    on("click", (event) => event.resolve({ shippingRates: [{ id: "std", displayName: "Standard", amount: 0 }] }));
    on("shippingaddresschange", (event) => event.resolve({}));
    on("confirm", async (event) => {
      const submit = elements.submit;
      const { error: invalid } = await submit();
      if (invalid) return resolve({ step: "submit", error: invalid });
      const confirmPayment = stripe.confirmPayment;
      resolve(await confirmPayment({ elements, clientSecret, redirect: "if_required",
        confirmParams: { return_url: location.href,
                         payment_method_data: { billing_details: { name: "Enabler Buyer",
                                                                   email: event.billingDetails.email } } } }));
    });
  });
  express.mount("#express");
  window.paying = result;
  return Stripe.version;
}
"""


def test_detached_methods_and_an_unmounted_payment_element_confirm_from_the_wallet(page, sites) -> None:
    intent = requests.post(f"{sites.api}/v1/payment_intents", auth=(SECRET_KEY, ""), timeout=10,
                           data={"amount": 2000, "currency": "eur", "payment_method_types[]": "card"}).json()
    page.goto(f"{sites.front}/page/enabler")
    page.evaluate(f"window.publishableKey = {json.dumps(sites.publishable_key)}")
    assert page.evaluate(ENABLER_STYLE, intent["client_secret"]) == 3
    page.click("[data-sandbox-wallet=link]")
    page.click("[data-sandbox-pay]")
    outcome = page.evaluate("window.paying")
    assert "error" not in outcome, outcome
    assert outcome["paymentIntent"]["status"] == "succeeded"
    method = double(sites, f"/payment_intents/{intent['id']}", **{"expand[]": "payment_method"})["payment_method"]
    assert (method["billing_details"]["name"], method["billing_details"]["email"]) == ("Enabler Buyer", "jane@example.test")


@pytest.mark.http_errors(402)
def test_a_decline_comes_from_the_double_and_its_webhook_reaches_the_shop(page, sites) -> None:
    intent = requests.post(f"{sites.api}/v1/payment_intents", auth=(SECRET_KEY, ""), timeout=10,
                           data={"amount": 2000, "currency": "eur", "payment_method_types[]": "card"}).json()
    page.goto(f"{sites.front}/page/decline")
    answer = page.evaluate("""async ([key, secret]) => {
        const stripe = Stripe(key);
        const elements = stripe.elements({ mode: "payment", amount: 2000, currency: "eur" });
        elements.create("payment").mount("#payment");
        document.querySelector("[data-sandbox-field=number]").value = "4000000000009995";
        document.querySelector("[data-sandbox-field=expiry]").value = "12 / 34";
        document.querySelector("[data-sandbox-field=cvc]").value = "123";
        await elements.submit();
        return stripe.confirmPayment({ elements, clientSecret: secret, redirect: "if_required",
                                       confirmParams: { return_url: location.href } });
    }""", [sites.publishable_key, intent["client_secret"]])
    assert (answer["error"]["code"], answer["error"]["decline_code"]) == ("card_declined", "insufficient_funds")
    types = [e["type"] for e in double(sites, "/events", limit=100)["data"] if e["data"]["object"].get("payment_intent",
             e["data"]["object"]["id"]) == intent["id"]]
    assert {"charge.failed", "payment_intent.payment_failed"} <= set(types)


@pytest.mark.parametrize("page", [{"width": 390, "height": 844}], indirect=True)
def test_the_pay_page_fits_a_390_px_phone(page, sites) -> None:
    to_payment_page(page, SimpleNamespace(url=sites.shop), quantity=1)
    width = page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
    assert width <= 390, f"the pay page is {width} px wide on a 390 px screen"
    box = page.locator("[data-sandbox-field=cvc]").bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390

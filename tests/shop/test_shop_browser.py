"""End to end in Debian's Chromium: the demo shop, the connector and the Stripe double.

Stripe.js is the sandbox stand-in (see ``browser_support``); everything else is real:
the shop served on 127.0.0.1, the processor routes, the Stripe double, its signed
webhooks. A screenshot of each test's final screen goes to test-artifacts/.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from demo_shop import create_app
from demo_shop.money import format_money
from flask_psp_connector.domain.payment import TransactionState, TransactionType
from flask_psp_connector.sandbox import init_sandbox, register_webhooks, sandbox_config
from flask_psp_connector.testing import free_port
from tests.browser_support import CHROME_ARGS, CHROMIUM, WebhookRelay, guard_network, screenshot, serving, wait_for

ADMIN_PASSWORD = "e2e-admin-password"
APPEARANCE = {"theme": "flat", "variables": {"colorPrimary": "#0a7d5a", "borderRadius": "10px", "fontFamily": "Georgia, serif"}}
SUCCESS, DECLINE, THREE_D_SECURE = "4242424242424242", "4000000000000002", "4000002500003155"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        yield browser
        browser.close()


def _shop(tmp_path_factory: Any, *, sandbox_mode: bool) -> Iterator[SimpleNamespace]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database = tmp_path_factory.mktemp("shop") / "shop.sqlite3"
    hook_name = f"e2e-{port}"
    with sandbox_config(url, name=hook_name) as sandbox:
        config = {**sandbox, "SECRET_KEY": "e2e-secret-key", "SESSION_COOKIE_SECURE": False,
                  "SHOP_ADMIN_PASSWORD": ADMIN_PASSWORD, "PSP_DATABASE_URL": f"sqlite:///{database}",
                  "STRIPE_APPEARANCE_PAYMENT_ELEMENT": json.dumps(APPEARANCE)}
        if not sandbox_mode:
            # Key mode: the page asks for https://js.stripe.com/v3/; the test routes it to the
            # stand-in, which needs the sandbox's Stripe API next to the shop.
            del config["PSP_SANDBOX"]
            config["STRIPE_PUBLISHABLE_KEY"] = "pk_test_e2e"
        app = create_app(config)
        if not sandbox_mode:
            init_sandbox(app)
        with serving(app, port) as base:
            yield SimpleNamespace(url=base, platform=app.extensions["psp_connector"].platform,
                                  redirect_webhooks=lambda to: register_webhooks(
                                      sandbox["STRIPE_API_BASE"], hook_name, to, sandbox["STRIPE_WEBHOOK_SIGNING_SECRET"]))


@pytest.fixture(scope="module")
def shop(tmp_path_factory: Any) -> Iterator[SimpleNamespace]:
    """The shop with Stripe keys configured, js.stripe.com routed to the stand-in."""
    yield from _shop(tmp_path_factory, sandbox_mode=False)


@pytest.fixture(scope="module")
def sandbox_shop(tmp_path_factory: Any) -> Iterator[SimpleNamespace]:
    """The shop as `make run` starts it without keys: sandbox mode."""
    yield from _shop(tmp_path_factory, sandbox_mode=True)


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


def to_payment_page(page: Page, shop: SimpleNamespace, product: str = "stoneware-mug", quantity: int = 2) -> str:
    """Put a product in the cart, fill the checkout form, reach the payment page; return the cart id."""
    page.goto(f"{shop.url}/products/{product}")
    page.fill("input[name=quantity]", str(quantity))
    page.get_by_role("button", name="Add to cart").click()
    page.goto(f"{shop.url}/checkout")
    page.fill("input[name=email]", "jane@example.test")
    for name, value in {"first_name": "Jane", "last_name": "Doe", "street_name": "Hauptstraße", "street_number": "5",
                        "postal_code": "10115", "city": "Berlin"}.items():
        page.fill(f"input[name=shipping-{name}]", value)
    page.select_option("select[name=shipping-country]", "DE")
    page.get_by_role("button", name="Continue to payment").click()
    page.wait_for_selector("[data-sandbox-element=payment]")
    expect(page.locator("#pay")).to_be_enabled()
    return page.locator("#payment-element").get_attribute("data-complete-url").rsplit("/", 1)[-1]


def pay_by_card(page: Page, number: str) -> None:
    page.fill("[data-sandbox-field=number]", number)
    page.fill("[data-sandbox-field=expiry]", "12 / 34")
    page.fill("[data-sandbox-field=cvc]", "123")
    page.click("#pay")


def expect_paid_order(page: Page, shop: SimpleNamespace, cart_id: str) -> None:
    page.wait_for_url(f"**/orders/{cart_id}*")
    expect(page.get_by_text("Paid", exact=True).first).to_be_visible(timeout=15_000)
    assert shop.platform.find_order_by_cart(cart_id) is not None


def charges(shop: SimpleNamespace, cart_id: str) -> list[Any]:
    return [t for p in shop.platform.payments_of_cart(cart_id) for t in p.transactions
            if (t.type, t.state) == (TransactionType.CHARGE, TransactionState.SUCCESS)]


def test_success_card_pays_the_server_side_total_in_the_configured_appearance(page, shop) -> None:
    cart_id = to_payment_page(page, shop)
    given = page.evaluate("Stripe.sandbox.elementsOptions[0]")
    cart = shop.platform.get_cart(cart_id)
    assert given["appearance"] == APPEARANCE
    assert (given["amount"], given["currency"]) == (cart.total_price.cent_amount, "eur")
    pay_by_card(page, SUCCESS)
    expect_paid_order(page, shop, cart_id)
    assert [c.amount.cent_amount for c in charges(shop, cart_id)] == [cart.total_price.cent_amount]


def test_a_decline_is_shown_inline_then_another_card_succeeds(page, shop) -> None:
    cart_id = to_payment_page(page, shop)
    pay_by_card(page, DECLINE)
    expect(page.locator("#payment-message")).to_have_text("Your card was declined.")
    expect(page.locator("#pay")).to_be_enabled()
    # The double declines as Stripe does, so payment_intent.payment_failed reaches the shop.
    declined = wait_for(lambda: [p for p in shop.platform.payments_of_cart(cart_id)
                                 if p.has(TransactionType.AUTHORIZATION, TransactionState.FAILURE)])
    pay_by_card(page, SUCCESS)
    expect_paid_order(page, shop, cart_id)
    assert len(charges(shop, cart_id)) == 1
    assert declined[0].id in [p.id for p in shop.platform.payments_of_cart(cart_id)]  # the attempt stays on record


def test_three_d_secure_passed(page, shop) -> None:
    cart_id = to_payment_page(page, shop)
    pay_by_card(page, THREE_D_SECURE)
    page.get_by_role("button", name="Complete authentication").click()
    expect_paid_order(page, shop, cart_id)


def test_three_d_secure_failed_leaves_the_shopper_on_the_payment_page(page, shop) -> None:
    cart_id = to_payment_page(page, shop)
    pay_by_card(page, THREE_D_SECURE)
    page.get_by_role("button", name="Fail authentication").click()
    expect(page.locator("#payment-message")).to_contain_text("unable to authenticate")
    expect(page.locator("#pay")).to_be_enabled()
    assert shop.platform.find_order_by_cart(cart_id) is None
    assert charges(shop, cart_id) == []


def test_a_double_click_creates_one_payment(page, shop) -> None:
    cart_id = to_payment_page(page, shop)
    page.fill("[data-sandbox-field=number]", SUCCESS)
    page.fill("[data-sandbox-field=expiry]", "12 / 34")
    page.fill("[data-sandbox-field=cvc]", "123")
    page.locator("#pay").dblclick()
    expect_paid_order(page, shop, cart_id)
    assert len(shop.platform.payments_of_cart(cart_id)) == 1
    assert len(charges(shop, cart_id)) == 1


def test_a_redirect_comes_back_through_the_return_page_and_reloading_it_changes_nothing(page, shop) -> None:
    cart_id = to_payment_page(page, shop)
    page.get_by_role("tab", name="Bank redirect").click()
    page.click("#pay")
    with page.expect_request("**/return?*") as returned:
        page.get_by_role("button", name="Approve").click()
    return_url = returned.value.url
    assert "redirect_status=succeeded" in return_url and "payment_intent=pi_" in return_url
    expect_paid_order(page, shop, cart_id)
    payment_id = shop.platform.payments_of_cart(cart_id)[0].id
    wait_for(lambda: any(e.payment_id == payment_id and e.event_type == "payment_intent.succeeded"
                         for e in shop.platform.recent_events()))
    order = shop.platform.find_order_by_cart(cart_id)

    page.goto(return_url)  # reloading the return page changes nothing
    page.goto(return_url)
    page.wait_for_url(f"**/orders/{cart_id}*")
    assert shop.platform.find_order_by_cart(cart_id).id == order.id
    assert len(charges(shop, cart_id)) == 1


def test_the_order_page_turns_paid_when_the_webhook_lands(page, shop) -> None:
    """Stripe took the payment but the browser never reached /confirmPayments: the order
    page waits, and the webhook alone turns it into a paid order, without a reload."""
    relay = WebhookRelay(f"{shop.url}/stripe/webhooks")
    port = free_port()
    with serving(relay, port) as relay_url:
        shop.redirect_webhooks(f"{relay_url}/")
        try:
            cart_id = to_payment_page(page, shop)
            page.route("**/confirmPayments/**", lambda route: route.abort())
            pay_by_card(page, SUCCESS)
            expect(page.locator("#payment-message")).to_contain_text("could not be reached")
            wait_for(lambda: relay.held)
            page.goto(f"{shop.url}/orders/{cart_id}")
            expect(page.get_by_text("Paid", exact=True)).to_have_count(0)
            assert shop.platform.find_order_by_cart(cart_id) is None
            relay.release()
            expect(page.get_by_text("Paid", exact=True).first).to_be_visible(timeout=15_000)
            assert shop.platform.find_order_by_cart(cart_id) is not None
        finally:
            shop.redirect_webhooks(f"{shop.url}/stripe/webhooks")


def test_a_refund_from_the_back_office_appears_on_the_timeline(page, shop) -> None:
    cart_id = to_payment_page(page, shop, product="wool-socks", quantity=1)
    pay_by_card(page, SUCCESS)
    expect_paid_order(page, shop, cart_id)
    payment_id = shop.platform.payments_of_cart(cart_id)[0].id
    page.goto(f"{shop.url}/admin/login")
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{shop.url}/admin/payments/{payment_id}")
    refund_form = page.locator("form", has=page.get_by_role("button", name="Refund"))
    refund_form.locator("input[name=refund-amount]").fill("5.00")
    refund_form.get_by_role("button", name="Refund").click()
    refund = page.locator(".timeline-item.tx-refund")
    expect(refund).to_contain_text("Success")
    expect(refund).to_contain_text("€5.00")


def test_sandbox_mode_buys_end_to_end_with_no_stripe_js_from_the_internet(page, sandbox_shop) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(sandbox_shop.url)
    expect(page.get_by_text("Sandbox mode").first).to_be_visible()
    cart_id = to_payment_page(page, sandbox_shop, product="beeswax-candle", quantity=1)
    pay_by_card(page, SUCCESS)
    expect_paid_order(page, sandbox_shop, cart_id)
    assert not [url for url in requested if "js.stripe.com" in url]


def test_a_cart_changed_in_another_tab_shows_its_new_total_before_anything_is_charged(page, shop) -> None:
    cart_id = to_payment_page(page, shop)
    other_tab = page.context.request  # what another tab sends: the same session cookie
    product = other_tab.get(f"{shop.url}/products/linen-tea-towel").text()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', product)[1]  # type: ignore[index]
    assert other_tab.post(f"{shop.url}/products/linen-tea-towel/add", form={"csrf_token": token, "quantity": "1"}).ok
    new_total = shop.platform.get_cart(cart_id).total_price
    shown = format_money(new_total)

    pay_by_card(page, SUCCESS)

    expect(page.locator("#payment-message")).to_contain_text(f"Your cart changed: the total is now {shown}")
    expect(page.locator("#pay")).to_have_text(f"Pay {shown}")
    expect(page.locator("#pay")).to_be_enabled()
    assert charges(shop, cart_id) == [] and shop.platform.payments_of_cart(cart_id) == []
    page.click("#pay")  # the shopper accepts the new total
    expect_paid_order(page, shop, cart_id)
    assert [c.amount for c in charges(shop, cart_id)] == [new_total]
    assert shop.platform.find_order_by_cart(cart_id).total_price == new_total


def test_a_failed_event_is_replayed_from_the_events_page(page, shop) -> None:
    from tests.webhook_support import charge, event, refund

    cart_id = to_payment_page(page, shop, product="wool-socks", quantity=1)
    pay_by_card(page, SUCCESS)
    expect_paid_order(page, shop, cart_id)
    payment = shop.platform.payments_of_cart(cart_id)[0]
    refunded = event("charge.refunded", charge(payment.interface_id, refunds=[refund("re_e2e", payment.interface_id, 300)]))
    shop.platform.record_event_failure(refunded["id"], refunded["type"], "PlatformUnavailable: store down",
                                       json.dumps(refunded))
    page.goto(f"{shop.url}/admin/login")
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Events").click()
    row = page.locator(f"[data-failure='{refunded['id']}']")
    expect(row).to_contain_text("Failing")
    expect(row).to_contain_text("PlatformUnavailable: store down")
    expect(page.locator("[data-failing]")).to_have_text("1")

    row.get_by_role("button", name="Replay").click()

    expect(page.get_by_text(f"Replayed {refunded['id']}: processed.")).to_be_visible()
    expect(page.locator(f"[data-failure='{refunded['id']}']")).to_contain_text("Resolved")
    expect(page.locator("[data-failing]")).to_have_text("0")
    page.goto(f"{shop.url}/admin/payments/{payment.id}")
    expect(page.locator(".timeline-item.tx-refund")).to_contain_text("€3.00")


def test_the_api_docs_render_offline_under_the_shops_policy(page, shop) -> None:
    page.goto(f"{shop.url}/docs")  # the page fixture fails on a CSP violation or a request leaving 127.0.0.1
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible(timeout=15_000)
    expect(page.get_by_text("/confirmPayments/{payment_id}", exact=True)).to_be_visible()
    expect(page.get_by_text("/stripe/webhooks", exact=True)).to_be_visible()

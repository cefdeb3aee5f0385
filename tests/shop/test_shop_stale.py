"""The demo shop when a cart changes while it is being paid: what the buyer and the merchant see."""

from __future__ import annotations

from typing import Any

import responses
from flask import Flask

from flask_psp_connector.domain.payment import StaleReason, TransactionState, TransactionType
from tests.conftest import STRIPE_API
from tests.shop.test_shop import pinned_intent, return_url, text
from tests.shop_support import ADMIN_PASSWORD, Browser, add_payment, paid_cart, store

S, T = TransactionState, TransactionType


def pinned_refund(mock: responses.RequestsMock, payment: Any) -> None:
    amount = payment.amount_planned.cent_amount
    mock.add(responses.POST, f"{STRIPE_API}/v1/refunds", json={
        "id": "re_stale", "object": "refund", "amount": amount, "currency": "eur", "status": "succeeded",
        "payment_intent": payment.interface_id})


def paid_then_changed(browser: Browser, shop: Flask, states: Any = ()) -> tuple[str, Any]:
    """A payment for the cart as it was, then a second product added in another tab."""
    cart_id = paid_cart(browser)
    payment = add_payment(shop, cart_id, states=states)
    browser.add("linen-tea-towel", 1)
    return cart_id, payment


def test_the_return_page_says_the_old_cart_state_was_refunded(browser, shop, stripe_mock) -> None:
    cart_id, payment = paid_then_changed(browser, shop)
    pinned_intent(stripe_mock, payment, "succeeded")
    pinned_refund(stripe_mock, payment)

    response = browser.get(return_url(cart_id, payment))

    assert response.status_code == 200
    page = text(response)
    assert "A payment of €48.67 placed no order because the cart changed while it was being paid" in page
    assert "€48.67 was refunded" in page and 'href="/pay"' in page
    assert store(shop).find_order_by_cart(cart_id) is None
    [refund_call] = [c for c in stripe_mock.calls if c.request.url == f"{STRIPE_API}/v1/refunds"]
    assert refund_call.request.headers["Idempotency-Key"] == f"psp-stale-refund-{payment.id}"

    order_page = browser.get(f"/orders/{cart_id}")
    assert "Not used: your cart changed while you were paying" in text(order_page)
    assert "Pay for your cart as it is now" in text(order_page)
    status = browser.get(f"/orders/{cart_id}/status").get_json()
    assert status["paymentState"] == "CartChanged" and status["final"] is True and status["orderNumber"] is None
    assert browser.cart_id() == cart_id  # the cart, with its new contents, is still there to pay


def test_the_order_page_settles_a_stale_payment_once(browser, shop, stripe_mock) -> None:
    cart_id, payment = paid_then_changed(browser, shop, states=((T.AUTHORIZATION, S.SUCCESS), (T.CHARGE, S.SUCCESS)))
    pinned_refund(stripe_mock, payment)

    for _ in range(3):
        page = text(browser.get(f"/orders/{cart_id}"))
        assert "€48.67 was refunded" in page

    assert len([c for c in stripe_mock.calls if c.request.url.endswith("/v1/refunds")]) == 1
    assert store(shop).find_order_by_cart(cart_id) is None
    assert store(shop).get_payment(payment.id).stale_reason == StaleReason.CART_CHANGED


def test_the_back_office_shows_a_stale_payment_plainly(browser, shop, stripe_mock) -> None:
    cart_id, payment = paid_then_changed(browser, shop, states=((T.AUTHORIZATION, S.SUCCESS), (T.CHARGE, S.SUCCESS)))
    pinned_refund(stripe_mock, payment)
    browser.get(f"/orders/{cart_id}")
    admin = Browser(shop)
    admin.post("/admin/login", {"password": ADMIN_PASSWORD})

    listing = text(admin.get("/admin/"))
    detail = text(admin.get(f"/admin/payments/{payment.id}"))

    assert "Stale, refunded" in listing
    assert "Stale, refunded" in detail and "It is not part of any order." in detail
    assert "none: this payment pays for no order" in detail
    assert "Cancel authorization" not in detail and ">Refund</strong>" in detail


def test_the_back_office_and_order_page_read_money_as_money(browser, shop, stripe_mock) -> None:
    cart_id = paid_cart(browser)
    payment = add_payment(shop, cart_id, states=((T.AUTHORIZATION, S.SUCCESS),))
    stripe_mock.add(responses.POST, f"{STRIPE_API}/v1/payment_intents/{payment.interface_id}/capture",
                    json={"id": payment.interface_id, "object": "payment_intent", "status": "succeeded",
                          "amount": 4867, "amount_received": 2000})
    stripe_mock.add(responses.POST, f"{STRIPE_API}/v1/refunds", json={
        "id": "re_part", "object": "refund", "amount": 500, "currency": "eur", "status": "succeeded"})
    admin = Browser(shop)
    admin.post("/admin/login", {"password": ADMIN_PASSWORD})

    admin.post(f"/admin/payments/{payment.id}/capture", {"capture-amount": "20.00"})
    admin.post(f"/admin/payments/{payment.id}/refund", {"refund-amount": "5.00"})
    refused = admin.post(f"/admin/payments/{payment.id}/refund", {"refund-amount": "500"}, follow_redirects=True)

    assert "Refund refused: Cannot refund 500.00 EUR: 15.00 EUR is refundable." in text(refused)
    detail = text(admin.get(f"/admin/payments/{payment.id}"))
    assert "Remainder released" in detail and "€28.67" in detail
    assert "Partially refunded" in text(admin.get("/admin/")) and "PartiallyRefunded" not in text(admin.get("/admin/"))
    order_page = text(browser.get(f"/orders/{cart_id}"))
    assert "Refunded: €5.00" in order_page
    assert "authorization released after a partial capture): €28.67" in order_page

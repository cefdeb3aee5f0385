"""The shop's back office: login, lists, the payment timeline and payment operations."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

import pytest
import responses
from flask import Flask

from flask_psp_connector.domain.payment import TransactionState, TransactionType
from flask_psp_connector.platforms.embedded.store import LocalPlatform
from tests.conftest import STRIPE_API
from tests.shop_support import ADMIN_PASSWORD, Browser, add_payment, build_shop, paid_cart, store

S, T = TransactionState, TransactionType
PI_URL = f"{STRIPE_API}/v1/payment_intents"


def text(response: Any) -> str:
    return response.get_data(as_text=True)


def flashes(response: Any) -> list[str]:
    return re.findall(r'<p class="flash flash-\w+" role="\w+">([^<]*)</p>', text(response))


def authorized_payment(shop: Flask, pi_id: str = "pi_admin") -> Any:
    """A paid-for cart (2 mugs to Germany: 48.67 EUR) with an authorized, uncaptured payment."""
    cart_id = paid_cart(Browser(shop))
    return add_payment(shop, cart_id, pi_id=pi_id, states=((T.AUTHORIZATION, S.SUCCESS),))


def charged_payment(shop: Flask, pi_id: str = "pi_admin") -> Any:
    cart_id = paid_cart(Browser(shop))
    return add_payment(shop, cart_id, pi_id=pi_id, states=((T.AUTHORIZATION, S.SUCCESS), (T.CHARGE, S.SUCCESS)))


def form_of(call: Any) -> dict[str, str]:
    return dict(parse_qsl(call.request.body))


def operate(admin: Browser, payment: Any, operation: str, amount: str | None = None) -> Any:
    data = {} if amount is None else {f"{operation}-amount": amount}
    return admin.post(f"/admin/payments/{payment.id}/{operation}", data, follow_redirects=True)


# -- access ------------------------------------------------------------------------------


def test_back_office_is_disabled_without_a_password(sqlite_url) -> None:
    browser = Browser(build_shop(sqlite_url, SHOP_ADMIN_PASSWORD=""))
    for url in ("/admin/", "/admin/login"):
        response = browser.get(url)
        assert response.status_code == 503 and "SHOP_ADMIN_PASSWORD" in text(response)
    assert browser.post("/admin/login", {"password": ""}).status_code == 503


def test_unauthenticated_requests_go_to_the_login(shop) -> None:
    browser = Browser(shop)
    payment = authorized_payment(shop)
    for url, login in (("/admin/", "/admin/login"),
                       (f"/admin/payments/{payment.id}", f"/admin/login?next=/admin/payments/{payment.id}")):
        response = browser.get(url)
        assert response.status_code == 303 and response.location == login
    response = browser.post(f"/admin/payments/{payment.id}/capture", {"capture-amount": "1.00"})
    assert response.status_code == 303 and response.location == "/admin/login"
    assert store(shop).get_payment(payment.id).transactions == payment.transactions


@pytest.mark.parametrize("password", ["wrong", ADMIN_PASSWORD.upper(), ADMIN_PASSWORD + " ", "ü" * 8])
def test_wrong_password_is_refused(shop, password) -> None:
    browser = Browser(shop)
    response = browser.post("/admin/login", {"password": password})
    assert response.status_code == 401 and "That password is not right." in text(response)
    assert browser.get("/admin/").status_code == 303


def test_empty_password_is_asked_again(shop) -> None:
    response = Browser(shop).post("/admin/login", {"password": ""})
    assert response.status_code == 400 and "Enter the password." in text(response)


def test_a_forged_admin_session_is_refused(shop) -> None:
    browser = Browser(shop)
    with browser.client.session_transaction() as session:
        session["admin"] = True
    assert browser.get("/admin/").status_code == 303
    with browser.client.session_transaction() as session:
        session["admin"] = "0" * 64
    assert browser.get("/admin/").status_code == 303


def test_changing_the_password_logs_everyone_out(admin, shop) -> None:
    assert admin.get("/admin/").status_code == 200
    shop.config["SHOP_ADMIN_PASSWORD"] = "a new password"
    assert admin.get("/admin/").status_code == 303


def test_logout(admin) -> None:
    response = admin.post("/admin/logout", {"logout-csrf_token": admin.token()}, csrf=False, follow_redirects=True)
    assert "You are logged out." in text(response)
    assert admin.get("/admin/").status_code == 303


def test_login_and_operations_need_the_csrf_token(shop) -> None:
    browser = Browser(shop)
    assert browser.post("/admin/login", {"password": ADMIN_PASSWORD}, csrf=False).status_code == 400
    assert browser.get("/admin/").status_code == 303
    browser.post("/admin/login", {"password": ADMIN_PASSWORD})
    payment = authorized_payment(shop)
    for operation, data in (("capture", {"capture-amount": "1.00"}), ("cancel", {}), ("refund", {"refund-amount": "1"})):
        response = browser.post(f"/admin/payments/{payment.id}/{operation}", data, csrf=False)
        assert response.status_code == 400 and response.mimetype == "text/html"
    assert store(shop).get_payment(payment.id).transactions == payment.transactions


# -- lists and timeline --------------------------------------------------------------------


def test_index_lists_payments_and_orders(admin, shop) -> None:
    captured = charged_payment(shop, "pi_captured")
    authorized = authorized_payment(shop, "pi_authorized")
    order = store(shop).create_order(captured.cart_id)
    page = text(admin.get("/admin/"))
    assert order.order_number in page and "jane@example.test" in page
    assert page.count("€48.67") >= 3  # the order and both payments
    assert f'href="/admin/payments/{captured.id}"' in page and f'href="/admin/payments/{authorized.id}"' in page
    assert ">Captured<" in page and ">Authorized<" in page and ">Paid<" in page


def test_payment_page_shows_a_timeline_and_the_operations(admin, shop) -> None:
    payment = charged_payment(shop)
    page = text(admin.get(f"/admin/payments/{payment.id}"))
    timeline = page.split('<ol class="timeline">', 1)[1].split("</ol>", 1)[0]
    assert timeline.index("tx-authorization") < timeline.index("tx-charge")
    assert timeline.count("€48.67") == 2  # the authorization (now Success) and the charge
    assert "tx-state-success" in timeline
    assert "<time datetime=" in timeline and "pi_admin" in timeline
    assert 'name="refund-amount"' in page and 'value="48.67"' in page


def test_unknown_payment_and_operation_are_html_404s(admin, shop) -> None:
    assert admin.get("/admin/payments/nope").status_code == 404
    payment = authorized_payment(shop)
    response = admin.post(f"/admin/payments/{payment.id}/explode")
    assert response.status_code == 404 and response.mimetype == "text/html"


# -- operations through modify_payment, Stripe pinned ------------------------------------------


def test_full_capture_by_default(admin, shop, stripe_mock) -> None:
    payment = authorized_payment(shop)
    stripe_mock.add(responses.POST, f"{PI_URL}/pi_admin/capture",
                    json={"id": "pi_admin", "object": "payment_intent", "status": "succeeded", "amount": 4867,
                          "amount_received": 4867, "currency": "eur"})
    response = operate(admin, payment, "capture", "")
    assert flashes(response) == ["Capture of €48.67 approved by Stripe."]
    [call] = stripe_mock.calls
    assert form_of(call) == {"amount_to_capture": "4867"}
    assert call.request.headers["Idempotency-Key"] == f"psp-capture-{payment.id}-0-4867"
    recorded = store(shop).get_payment(payment.id)
    assert recorded.total(T.CHARGE, S.SUCCESS) == 4867


def test_partial_capture(admin, shop, stripe_mock) -> None:
    payment = authorized_payment(shop)
    stripe_mock.add(responses.POST, f"{PI_URL}/pi_admin/capture",
                    json={"id": "pi_admin", "object": "payment_intent", "status": "succeeded", "amount": 4867,
                          "amount_received": 1250, "currency": "eur"})
    response = operate(admin, payment, "capture", "12.50")
    assert flashes(response) == ["Capture of €12.50 approved by Stripe."]
    assert form_of(stripe_mock.calls[0]) == {"amount_to_capture": "1250"}
    assert store(shop).get_payment(payment.id).total(T.CHARGE, S.SUCCESS) == 1250


def test_partial_refund(admin, shop, stripe_mock) -> None:
    payment = charged_payment(shop)
    stripe_mock.add(responses.POST, f"{STRIPE_API}/v1/refunds",
                    json={"id": "re_1", "object": "refund", "status": "succeeded", "amount": 500, "currency": "eur"})
    response = operate(admin, payment, "refund", "5")
    assert flashes(response) == ["Refund of €5.00 received by Stripe; it completes shortly."]
    assert form_of(stripe_mock.calls[0]) == {"payment_intent": "pi_admin", "amount": "500"}
    recorded = store(shop).get_payment(payment.id)
    assert [(t.type, t.state, t.amount.cent_amount) for t in recorded.transactions if t.type == T.REFUND] == [
        (T.REFUND, S.SUCCESS, 500)]
    page = text(admin.get(f"/admin/payments/{payment.id}"))
    assert "tx-refund" in page and "Partially refunded" in page


def test_cancel(admin, shop, stripe_mock) -> None:
    payment = authorized_payment(shop)
    stripe_mock.add(responses.POST, f"{PI_URL}/pi_admin/cancel",
                    json={"id": "pi_admin", "object": "payment_intent", "status": "canceled", "amount": 4867,
                          "currency": "eur"})
    response = admin.post(f"/admin/payments/{payment.id}/cancel", {"cancel-csrf_token": admin.token()}, csrf=False,
                          follow_redirects=True)
    assert flashes(response) == ["Cancel approved by Stripe."]
    assert len(stripe_mock.calls) == 1
    assert store(shop).get_payment(payment.id).has(T.CANCEL_AUTHORIZATION, S.SUCCESS)


def test_stripe_refusal_is_shown_as_rejected(admin, shop, stripe_mock) -> None:
    payment = charged_payment(shop)
    stripe_mock.add(responses.POST, f"{STRIPE_API}/v1/refunds", status=400,
                    json={"error": {"type": "invalid_request_error", "code": "charge_disputed", "message": "Disputed."}})
    response = operate(admin, payment, "refund", "1.00")
    assert flashes(response) == ["Refund of €1.00 rejected by Stripe."]
    assert not store(shop).get_payment(payment.id).has(T.REFUND)


NOT_AN_AMOUNT = "Enter an amount like 12.50, using digits and one decimal point."


@pytest.mark.parametrize(
    ("amount", "message"),
    [("-5", NOT_AN_AMOUNT), ("0", "The amount must be more than zero."),
     ("0.001", "EUR amounts have at most 2 decimals."), ("abc", NOT_AN_AMOUNT),
     ("1e3", NOT_AN_AMOUNT), ("12,50", NOT_AN_AMOUNT), ("", NOT_AN_AMOUNT),
     ("9" * 30, "That amount is too long.")],
)
def test_bad_refund_amounts_never_reach_stripe(admin, shop, stripe_mock, amount, message) -> None:
    payment = charged_payment(shop)
    response = operate(admin, payment, "refund", amount)
    assert flashes(response) == [message]
    assert not stripe_mock.calls
    assert store(shop).get_payment(payment.id).transactions == payment.transactions


def test_amounts_beyond_what_is_left_are_refused_by_the_use_case(admin, shop, stripe_mock) -> None:
    charged = charged_payment(shop, "pi_charged")
    response = operate(admin, charged, "refund", "48.68")
    assert flashes(response) == ["Refund refused: Cannot refund 48.68 EUR: 48.67 EUR is refundable."]
    assert flashes(operate(admin, charged, "capture", "")) == [
        "Capture refused: The amount to capture must be positive."]
    assert flashes(operate(admin, charged, "cancel")) == [
        "Cancel refused: A captured payment cannot be cancelled; refund it instead."]
    assert not stripe_mock.calls


# -- the store's order list ------------------------------------------------------------------


def test_list_orders_newest_first_with_paging(platform: LocalPlatform) -> None:
    from flask_psp_connector import LineItemDraft

    numbers = []
    for index in range(3):
        cart = platform.create_cart("EUR", line_items=[LineItemDraft("sku", "Thing", index + 1, 100)])
        numbers.append(platform.create_order(cart.id).order_number)
    assert [o.order_number for o in platform.list_orders()] == numbers[::-1]
    assert [o.order_number for o in platform.list_orders(limit=1, offset=1)] == [numbers[1]]
    assert platform.list_orders(offset=3) == []
    assert [o.line_items[0].quantity for o in platform.list_orders()] == [3, 2, 1]

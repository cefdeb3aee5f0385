"""What is paid is what is ordered: a cart that changes while it is being paid.

Every test pays at the local Stripe double (localstripe), playing the browser with a
Stripe client, on SQLite and PostgreSQL. The cart changes after its PaymentIntent exists
(an item added, a quantity changed, the shipping country changed with its shipping and
tax); the old PaymentIntent is then paid and reaches us through each entry point that
completes a payment. None may place an order for goods or a total that was not paid.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
import requests
import stripe
from flask import Flask

from flask_psp_connector import LineItemDraft, PSPConnector
from flask_psp_connector.domain.money import Money
from flask_psp_connector.domain.payment import StaleReason, TransactionDraft, TransactionState, TransactionType
from tests.conftest import SHIPPING, open_checkout
from tests.webhook_support import SECRETS, event, post_event, summary

S, T = TransactionState, TransactionType

CHANGES = {
    "item added": dict(line_items=[LineItemDraft("tee-blue", "Blue T-shirt", 2, 1500),
                                   LineItemDraft("kettle", "Pour-Over Kettle", 5, 6900)]),
    "quantity changed": dict(line_items=[LineItemDraft("tee-blue", "Blue T-shirt", 3, 1500)]),
    "country changed": dict(shipping_address=replace(SHIPPING, country="FR", city="Paris", postal_code="75001"),
                            shipping_amount=1290, tax_amount=810),
}


@pytest.fixture
def shop_app(make_app: Any, stripe_double: str, database_url: str) -> Flask:
    """The connector on the double, on each database, refunding stale payments (the default)."""
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    return make_app(STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card", PSP_DATABASE_URL=database_url,
                    STRIPE_WEBHOOK_SIGNING_SECRET=SECRETS[0])


def store(app: Flask) -> Any:
    return app.extensions["psp_connector"].platform


def create_payment(app: Flask, session_id: str, **headers: str) -> dict[str, Any]:
    response = app.test_client().get("/payments", headers={"X-Session-Id": session_id, **headers})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def pi_of(body: dict[str, Any]) -> str:
    return body["clientSecret"].split("_secret_")[0]


def browser_pays(double: stripe.StripeClient, body: dict[str, Any]) -> dict[str, Any]:
    """What stripe.confirmPayment does in the browser: the PaymentIntent, paid at the double."""
    double.v1.payment_intents.update(pi_of(body), params={"payment_method": "pm_card_visa"})
    return json.loads(str(double.v1.payment_intents.confirm(pi_of(body))))


def confirm(app: Flask, session_id: str, body: dict[str, Any], **headers: str) -> Any:
    return app.test_client().post(f"/confirmPayments/{body['paymentReference']}", json={"paymentIntent": pi_of(body)},
                                  headers={"X-Session-Id": session_id, **headers})


def refunds_at_the_double(double: stripe.StripeClient, paid: dict[str, Any]) -> list[int]:
    charge = paid["latest_charge"] if isinstance(paid["latest_charge"], str) else paid["latest_charge"]["id"]
    return [r.amount for r in double.v1.refunds.list(params={"charge": charge}).data]


def through_confirm(app: Flask, session_id: str, body: dict[str, Any], paid: dict[str, Any]) -> None:
    response = confirm(app, session_id, body)
    assert response.status_code == 400
    assert response.get_json()["outcome"] == "rejected"
    assert "No order was placed" in response.get_json()["error"]


def through_webhook(app: Flask, session_id: str, body: dict[str, Any], paid: dict[str, Any]) -> None:
    assert post_event(app.test_client(), event("payment_intent.succeeded", paid)).status_code == 200


def through_settle(app: Flask, session_id: str, body: dict[str, Any], paid: dict[str, Any]) -> None:
    """A host app's return or order page: the charge recorded (as a refund or dispute
    event would, without settling), then ``PSPConnector.settle_payment``."""
    money = Money.of(paid["amount"], "EUR")
    store(app).apply_transactions(body["paymentReference"], [
        TransactionDraft(T.AUTHORIZATION, S.SUCCESS, money, paid["id"]),
        TransactionDraft(T.CHARGE, S.SUCCESS, money, paid["id"])])
    with app.app_context():
        settled = PSPConnector().settle_payment(body["paymentReference"])
    assert settled.stale_reason == StaleReason.CART_CHANGED


ENTRY_POINTS = {"confirmPayments": through_confirm, "webhook": through_webhook, "settle_payment": through_settle}


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_an_old_cart_state_paid_places_no_order_and_is_refunded(shop_app, stripe_double_client, change, entry) -> None:
    cart_id, session_id = open_checkout(shop_app)
    old = create_payment(shop_app, session_id)
    store(shop_app).update_cart(cart_id, **CHANGES[change])
    paid = browser_pays(stripe_double_client, old)  # the buyer pays the tab still open on the old total
    assert paid["status"] == "succeeded" and paid["amount"] == 3000

    ENTRY_POINTS[entry](shop_app, session_id, old, paid)

    assert store(shop_app).find_order_by_cart(cart_id) is None
    payment = store(shop_app).get_payment(old["paymentReference"])
    assert payment.stale_reason == StaleReason.CART_CHANGED
    [refund] = payment.transactions_of(T.REFUND)
    assert (refund.state, refund.amount.cent_amount) == (S.SUCCESS, 3000)
    assert refunds_at_the_double(stripe_double_client, paid) == [3000]

    # the same completion again changes nothing and refunds nothing more
    through_webhook(shop_app, session_id, old, paid)
    assert summary(store(shop_app).get_payment(old["paymentReference"])) == summary(payment)
    assert refunds_at_the_double(stripe_double_client, paid) == [3000]

    # the cart as it is now is still owed in full, and paying that places the order
    cart = store(shop_app).get_cart(cart_id)
    current = create_payment(shop_app, session_id)
    assert current["cartInfo"] == {"amount": cart.total_price.cent_amount, "currency": "EUR"}
    browser_pays(stripe_double_client, current)
    assert confirm(shop_app, session_id, current).get_json() == {"outcome": "approved"}
    order = store(shop_app).find_order_by_cart(cart_id)
    assert order is not None and order.total_price == cart.total_price and order.payment_state == "Paid"
    assert [(i.sku, i.quantity) for i in order.line_items] == [(i.sku, i.quantity) for i in cart.line_items]


def test_express_checkout_paying_an_old_cart_state_is_refunded_too(shop_app, stripe_double_client) -> None:
    express = {"x-express-checkout": "true"}
    cart_id, session_id = open_checkout(shop_app)
    old = create_payment(shop_app, session_id, **express)
    store(shop_app).update_cart(cart_id, **CHANGES["country changed"])  # the wallet sheet picked another address
    paid = browser_pays(stripe_double_client, old)

    response = confirm(shop_app, session_id, old, **express)

    assert response.status_code == 400 and "No order was placed" in response.get_json()["error"]
    assert store(shop_app).find_order_by_cart(cart_id) is None
    assert refunds_at_the_double(stripe_double_client, paid) == [3000]


def test_an_authorization_for_an_old_cart_state_is_released(make_app, stripe_double, stripe_double_client) -> None:
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    app = make_app(STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card", STRIPE_CAPTURE_METHOD="manual")
    cart_id, session_id = open_checkout(app)
    old = create_payment(app, session_id)
    store(app).update_cart(cart_id, **CHANGES["item added"])
    assert browser_pays(stripe_double_client, old)["status"] == "requires_capture"

    assert confirm(app, session_id, old).status_code == 400

    assert store(app).find_order_by_cart(cart_id) is None
    payment = store(app).get_payment(old["paymentReference"])
    assert payment.stale_reason == StaleReason.CART_CHANGED
    assert payment.has(T.CANCEL_AUTHORIZATION, S.SUCCESS) and not payment.has(T.CHARGE)
    assert stripe_double_client.v1.payment_intents.retrieve(pi_of(old)).status == "canceled"


def test_with_the_flag_policy_a_stale_payment_is_kept_for_the_merchant(make_app, stripe_double, stripe_double_client) -> None:
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    app = make_app(STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card", PSP_STALE_PAYMENTS="flag")
    cart_id, session_id = open_checkout(app)
    old = create_payment(app, session_id)
    store(app).update_cart(cart_id, **CHANGES["quantity changed"])
    paid = browser_pays(stripe_double_client, old)

    response = confirm(app, session_id, old)

    assert "the shop will refund this payment" in response.get_json()["error"]
    payment = store(app).get_payment(old["paymentReference"])
    assert payment.stale_reason == StaleReason.CART_CHANGED and not payment.has(T.REFUND)
    assert refunds_at_the_double(stripe_double_client, paid) == []
    assert store(app).find_order_by_cart(cart_id) is None


def test_a_new_payment_for_a_changed_cart_cancels_the_unpaid_old_one(shop_app, stripe_double_client) -> None:
    cart_id, session_id = open_checkout(shop_app)
    old = create_payment(shop_app, session_id)
    store(shop_app).update_cart(cart_id, **CHANGES["item added"])

    new = create_payment(shop_app, session_id)

    assert new["paymentReference"] != old["paymentReference"]
    assert stripe_double_client.v1.payment_intents.retrieve(pi_of(old)).status == "canceled"
    superseded = store(shop_app).get_payment(old["paymentReference"])
    assert superseded.stale_reason == StaleReason.SUPERSEDED
    with pytest.raises(stripe.StripeError):  # the old tab can no longer pay
        browser_pays(stripe_double_client, old)


def test_two_tabs_both_paid_keep_exactly_one_charge(shop_app, stripe_double_client) -> None:
    cart_id, session_id = open_checkout(shop_app)
    first_tab = create_payment(shop_app, session_id)
    first_paid = browser_pays(stripe_double_client, first_tab)  # paid, its confirmation not sent yet
    store(shop_app).update_cart(cart_id, **CHANGES["quantity changed"])
    second_tab = create_payment(shop_app, session_id)  # Stripe will not cancel the paid one: it is left to settle
    assert stripe_double_client.v1.payment_intents.retrieve(pi_of(first_tab)).status == "succeeded"
    second_paid = browser_pays(stripe_double_client, second_tab)

    assert confirm(shop_app, session_id, second_tab).get_json() == {"outcome": "approved"}
    assert confirm(shop_app, session_id, first_tab).status_code == 400
    through_webhook(shop_app, session_id, first_tab, first_paid)
    through_webhook(shop_app, session_id, second_tab, second_paid)

    order = store(shop_app).find_order_by_cart(cart_id)
    assert order.total_price.cent_amount == 4500 and order.payment_state == "Paid"
    kept = store(shop_app).get_payment(second_tab["paymentReference"])
    stale = store(shop_app).get_payment(first_tab["paymentReference"])
    assert kept.stale_reason is None and stale.stale_reason == StaleReason.CART_CHANGED
    assert refunds_at_the_double(stripe_double_client, first_paid) == [3000]
    assert refunds_at_the_double(stripe_double_client, second_paid) == []


@pytest.mark.parametrize("first", ["stale", "current"])
def test_both_payments_events_in_either_order_converge(shop_app, stripe_double_client, first) -> None:
    cart_id, session_id = open_checkout(shop_app)
    old = create_payment(shop_app, session_id)
    old_paid = browser_pays(stripe_double_client, old)
    store(shop_app).update_cart(cart_id, **CHANGES["country changed"])
    new = create_payment(shop_app, session_id)
    new_paid = browser_pays(stripe_double_client, new)
    events = {"stale": event("payment_intent.succeeded", old_paid), "current": event("payment_intent.succeeded", new_paid)}
    order = [events[first], events["current" if first == "stale" else "stale"]]

    for delivered in order + order:  # and each again
        assert post_event(shop_app.test_client(), delivered).status_code == 200

    placed = store(shop_app).find_order_by_cart(cart_id)
    assert placed.total_price == store(shop_app).get_cart(cart_id).total_price == store(shop_app).get_payment(
        new["paymentReference"]).amount_planned
    assert placed.payment_state == "Paid"
    assert store(shop_app).get_payment(old["paymentReference"]).stale_reason == StaleReason.CART_CHANGED
    assert refunds_at_the_double(stripe_double_client, old_paid) == [3000]


def test_a_payment_intent_that_disagrees_with_its_payment_places_no_order(shop_app, stripe_double_client) -> None:
    """As upstream's confirmation checks: the PaymentIntent's amount must be the payment's."""
    cart_id, session_id = open_checkout(shop_app)
    body = create_payment(shop_app, session_id)
    paid = {**browser_pays(stripe_double_client, body), "amount": 1000, "amount_received": 1000}  # not what we asked

    through_webhook(shop_app, session_id, body, paid)

    assert store(shop_app).find_order_by_cart(cart_id) is None
    payment = store(shop_app).get_payment(body["paymentReference"])
    assert payment.stale_reason == StaleReason.INTENT_MISMATCH
    assert refunds_at_the_double(stripe_double_client, paid) == [1000]

"""Saved payment methods end to end, against the local Stripe double.

A signed-in customer pays, choosing to save the card (the PaymentIntent carries
setup_future_usage); the method is then recorded for them alone, once, whether the
confirmation or the webhook comes first, and only they can remove it.
``test_commercetools_saved_methods`` runs every test here on commercetools, where the
records are Payment Methods.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import stripe
from flask import Flask

from flask_psp_connector import LineItemDraft
from flask_psp_connector.errors import ResourceNotFound
from flask_psp_connector.processor.customers import remove_saved_payment_method
from tests.conftest import SHIPPING
from tests.webhook_support import SECRETS, event, post_event


@pytest.fixture
def shop_app(make_app: Any, stripe_double: str) -> Flask:
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    return make_app(STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card",
                    STRIPE_WEBHOOK_SIGNING_SECRET=SECRETS[0],
                    STRIPE_SAVED_PAYMENT_METHODS_CONFIG='{"payment_method_save":"enabled","payment_method_save_usage":"off_session"}')


def store(app: Flask) -> Any:
    return app.extensions["psp_connector"].platform


def checkout(app: Flask, customer_id: str | None) -> str:
    cart = store(app).create_cart("EUR", line_items=[LineItemDraft("tee-blue", "Blue T-shirt", 2, 1500)],
                                  customer_id=customer_id, customer_email="jane@example.test", shipping_address=SHIPPING)
    return store(app).open_session(cart.id, merchant_return_url="https://shop.example.test/return").id


def pay(app: Flask, double: stripe.StripeClient, session_id: str, *, confirm: bool = True,
        **headers: str) -> dict[str, Any]:
    """The checkout's calls with the browser's part played at the double; returns the paid PaymentIntent."""
    client = app.test_client()
    body = client.get("/payments", headers={"X-Session-Id": session_id, **headers}).get_json()
    pi = body["clientSecret"].split("_secret_")[0]
    double.v1.payment_intents.update(pi, params={"payment_method": "pm_card_visa"})
    paid = json.loads(str(double.v1.payment_intents.confirm(pi)))
    if confirm:
        answer = client.post(f"/confirmPayments/{body['paymentReference']}", json={"paymentIntent": pi},
                             headers={"X-Session-Id": session_id})
        assert answer.get_json() == {"outcome": "approved"}
    return paid


def test_a_customer_who_saves_the_card_finds_it_recorded_once(shop_app, stripe_double_client) -> None:
    jane = store(shop_app).create_customer("jane@example.test", "Jane Doe")
    session_id = checkout(shop_app, jane.id)
    assert shop_app.test_client().get("/customer/session", headers={"X-Session-Id": session_id}).status_code == 200
    paid = pay(shop_app, stripe_double_client, session_id)
    assert paid["setup_future_usage"] == "off_session" and paid["customer"]
    [saved] = store(shop_app).saved_payment_methods(jane.id)
    assert saved.stripe_payment_method_id == paid["payment_method"]
    assert (saved.brand, saved.last4, saved.customer_id) == ("visa", "4242", jane.id)
    assert saved.exp_month and saved.exp_year
    # The webhook of the same payment arrives later: still one record.
    response = post_event(shop_app.test_client(), event("payment_intent.succeeded", paid))
    assert response.status_code == 200
    assert store(shop_app).saved_payment_methods(jane.id) == [saved]
    assert store(shop_app).get_customer(jane.id).stripe_customer_id == paid["customer"]


def test_the_webhook_alone_records_the_saved_card(shop_app, stripe_double_client) -> None:
    jane = store(shop_app).create_customer("jane@example.test")
    paid = pay(shop_app, stripe_double_client, checkout(shop_app, jane.id), confirm=False)
    assert store(shop_app).saved_payment_methods(jane.id) == []
    assert post_event(shop_app.test_client(), event("payment_intent.succeeded", paid)).status_code == 200
    assert [m.stripe_payment_method_id for m in store(shop_app).saved_payment_methods(jane.id)] == [paid["payment_method"]]


def test_guests_and_express_without_customer_session_save_nothing(shop_app, stripe_double_client) -> None:
    guest = pay(shop_app, stripe_double_client, checkout(shop_app, None))
    assert guest["customer"] is None and guest["setup_future_usage"] is None
    jane = store(shop_app).create_customer("jane@example.test")
    express = pay(shop_app, stripe_double_client, checkout(shop_app, jane.id), **{"x-express-checkout": "true"})
    assert express["customer"] is None
    assert store(shop_app).saved_payment_methods(jane.id) == []


def test_only_the_owner_removes_a_saved_method(shop_app, stripe_double_client) -> None:
    jane = store(shop_app).create_customer("jane@example.test")
    john = store(shop_app).create_customer("john@example.test")
    pay(shop_app, stripe_double_client, checkout(shop_app, jane.id))
    [saved] = store(shop_app).saved_payment_methods(jane.id)
    stripe = shop_app.extensions["psp_connector"].stripe
    assert remove_saved_payment_method(store(shop_app), stripe, john.id, saved.id) is None
    assert stripe_double_client.v1.payment_methods.retrieve(saved.stripe_payment_method_id).customer is not None
    assert remove_saved_payment_method(store(shop_app), stripe, jane.id, saved.id) == saved
    assert store(shop_app).saved_payment_methods(jane.id) == []
    assert stripe_double_client.v1.payment_methods.retrieve(saved.stripe_payment_method_id).customer is None


def test_records_are_per_customer_and_idempotent(shop_app) -> None:
    platform = store(shop_app)
    jane = platform.create_customer("jane@example.test")
    john = platform.create_customer("john@example.test")
    first = platform.record_saved_payment_method(jane.id, "pm_1", "visa", "4242", 12, 2030, method="card")
    assert platform.record_saved_payment_method(jane.id, "pm_1", "visa", "4242", 12, 2030, method="card") == first
    second = platform.record_saved_payment_method(jane.id, "pm_2", "mastercard", "4444", 1, 2031, method="card")
    johns = platform.record_saved_payment_method(john.id, "pm_1", "visa", "4242", 12, 2030, method="card")
    assert johns.id != first.id
    assert [m.stripe_payment_method_id for m in platform.saved_payment_methods(jane.id)] == ["pm_1", "pm_2"]
    assert (second.brand, second.last4, second.exp_month, second.exp_year) == ("mastercard", "4444", 1, 2031)
    with pytest.raises(ResourceNotFound):
        platform.record_saved_payment_method("nobody", "pm_9", "visa", "4242", 1, 2030)
    assert platform.remove_saved_payment_method(john.id, first.id) is None
    assert platform.remove_saved_payment_method(jane.id, first.id) == first
    assert [m.id for m in platform.saved_payment_methods(jane.id)] == [second.id]


def test_express_with_the_customer_session_saves_like_the_payment_element(shop_app, stripe_double_client) -> None:
    jane = store(shop_app).create_customer("jane@example.test")
    paid = pay(shop_app, stripe_double_client, checkout(shop_app, jane.id),
               **{"x-express-checkout": "true", "x-express-customer-session": "true"})
    assert paid["customer"] and paid["setup_future_usage"] == "off_session"
    assert [m.stripe_payment_method_id for m in store(shop_app).saved_payment_methods(jane.id)] == [paid["payment_method"]]


def test_nothing_is_saved_without_the_buyers_consent(make_app, stripe_double, stripe_double_client) -> None:
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    app = make_app(STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card", STRIPE_WEBHOOK_SIGNING_SECRET=SECRETS[0],
                   STRIPE_SAVED_PAYMENT_METHODS_CONFIG='{"payment_method_save":"enabled"}')
    jane = store(app).create_customer("jane@example.test")
    paid = pay(app, stripe_double_client, checkout(app, jane.id))  # the "save" box left unticked
    assert paid["customer"] and paid["setup_future_usage"] is None
    assert post_event(app.test_client(), event("payment_intent.succeeded", paid)).status_code == 200
    assert store(app).saved_payment_methods(jane.id) == []

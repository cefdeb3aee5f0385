"""The sandbox Stripe API the Stripe.js stand-in calls, against localstripe."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from demo_shop.sandbox import init_sandbox

PUBLISHABLE_KEY = "pk_test_sandbox_api"


@pytest.fixture
def sandbox_client(make_app, stripe_double: str) -> Any:
    app = make_app(STRIPE_API_BASE=stripe_double, STRIPE_PUBLISHABLE_KEY=PUBLISHABLE_KEY,
                   STRIPE_PAYMENT_METHOD_TYPES="card")
    init_sandbox(app)
    return app.test_client()


@pytest.fixture
def intent(stripe_double: str) -> dict[str, Any]:
    """A PaymentIntent waiting for its payment method, as the processor creates it."""
    response = requests.post(f"{stripe_double}/v1/payment_intents", auth=("sk_test_connector", ""), timeout=10,
                             data={"amount": 3000, "currency": "eur", "payment_method_types[]": "card"})
    return response.json()


def confirm(client: Any, intent: dict[str, Any], number: str, **overrides: str) -> Any:
    form = {"client_secret": intent["client_secret"], "key": PUBLISHABLE_KEY, "payment_method_data[type]": "card",
            "payment_method_data[card][number]": number, "payment_method_data[card][exp_month]": "12",
            "payment_method_data[card][exp_year]": "2040", "payment_method_data[card][cvc]": "123",
            "return_url": "http://127.0.0.1/return", **overrides}
    return client.post(f"/sandbox/stripe/v1/payment_intents/{intent['id']}/confirm", data=form)


def test_a_good_card_pays(sandbox_client, intent) -> None:
    response = confirm(sandbox_client, intent, "4242424242424242")
    assert response.status_code == 200
    assert response.get_json()["status"] == "succeeded"


def test_the_decline_card_is_declined_and_the_intent_can_be_confirmed_again(sandbox_client, intent) -> None:
    declined = confirm(sandbox_client, intent, "4000000000000002")
    assert declined.status_code == 402
    error = declined.get_json()["error"]
    assert (error["type"], error["code"], error["decline_code"]) == ("card_error", "card_declined", "generic_decline")
    assert error["payment_intent"]["status"] == "requires_payment_method"
    assert confirm(sandbox_client, intent, "4242424242424242").get_json()["status"] == "succeeded"


@pytest.mark.parametrize(("passed", "status"), [("true", "succeeded"), ("false", "requires_payment_method")])
def test_three_d_secure_is_passed_or_failed(sandbox_client, intent, passed, status) -> None:
    challenged = confirm(sandbox_client, intent, "4000002500003155")
    assert challenged.get_json()["status"] == "requires_action"
    answer = sandbox_client.post(f"/sandbox/stripe/v1/payment_intents/{intent['id']}/_authenticate",
                                 data={"client_secret": intent["client_secret"], "key": PUBLISHABLE_KEY, "success": passed})
    assert answer.get_json()["status"] == status


@pytest.mark.parametrize(("field", "value", "status"), [
    ("key", "pk_test_someone_else", 401),
    ("key", "sk_test_connector", 401),
    ("client_secret", "pi_x_secret_wrong", 400),
])
def test_wrong_credentials_are_refused_and_change_nothing(sandbox_client, intent, stripe_double, field, value, status) -> None:
    response = confirm(sandbox_client, intent, "4242424242424242", **{field: value})
    assert response.status_code == status
    assert "error" in response.get_json()
    current = requests.get(f"{stripe_double}/v1/payment_intents/{intent['id']}", auth=("sk_test_connector", ""), timeout=10)
    assert current.json()["status"] == "requires_payment_method"


def test_a_paid_intent_cannot_be_confirmed_again(sandbox_client, intent) -> None:
    confirm(sandbox_client, intent, "4242424242424242")
    again = confirm(sandbox_client, intent, "4242424242424242")
    assert again.status_code == 400
    assert again.get_json()["error"]["code"] == "payment_intent_unexpected_state"


def test_retrieve_needs_the_client_secret(sandbox_client, intent) -> None:
    url = f"/sandbox/stripe/v1/payment_intents/{intent['id']}"
    assert sandbox_client.get(url, query_string={"client_secret": intent["client_secret"], "key": PUBLISHABLE_KEY}).status_code == 200
    assert sandbox_client.get(url, query_string={"client_secret": "nope", "key": PUBLISHABLE_KEY}).status_code == 400

"""The sandbox Stripe API the Stripe.js stand-in calls, against the Stripe double."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from flask_psp_connector.sandbox import init_sandbox

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
    own_secret = {"client_secret": intent["client_secret"], "key": PUBLISHABLE_KEY}
    assert sandbox_client.get(url, query_string=own_secret).status_code == 200
    assert sandbox_client.get(url, query_string={"client_secret": "nope", "key": PUBLISHABLE_KEY}).status_code == 400


def test_answers_are_open_to_every_origin_and_need_no_cookie(sandbox_client, intent) -> None:
    response = confirm(sandbox_client, intent, "4242424242424242")
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_billing_details_reach_the_payment_method(sandbox_client, intent, stripe_double) -> None:
    confirm(sandbox_client, intent, "4242424242424242", **{
        "payment_method_data[billing_details][name]": "Jane Doe",
        "payment_method_data[billing_details][address][country]": "DE"})
    paid = requests.get(f"{stripe_double}/v1/payment_intents/{intent['id']}", params={"expand[]": "payment_method"},
                        auth=("sk_test_connector", ""), timeout=10).json()
    assert paid["payment_method"]["billing_details"] == {"name": "Jane Doe", "address": {"country": "DE"}}


def test_saved_cards_are_found_through_the_customer_session_client_secret(sandbox_client, stripe_double) -> None:
    auth = ("sk_test_connector", "")
    customer = requests.post(f"{stripe_double}/v1/customers", auth=auth, timeout=10, data={"email": "a@example.test"}).json()
    shown, hidden = (requests.post(f"{stripe_double}/v1/payment_methods", auth=auth, timeout=10, data={
        "type": "card", "card[number]": number, "card[exp_month]": "12", "card[exp_year]": "2040", "card[cvc]": "123",
        **({"allow_redisplay": "always"} if always else {})}).json() for number, always in (("4242424242424242", True),
                                                                                            ("5555555555554444", False)))
    for method in (shown, hidden):
        requests.post(f"{stripe_double}/v1/payment_methods/{method['id']}/attach", auth=auth, timeout=10,
                      data={"customer": customer["id"]}).raise_for_status()
    session = requests.post(f"{stripe_double}/v1/customer_sessions", auth=auth, timeout=10, data={
        "customer": customer["id"], "components[payment_element][enabled]": "true",
        "components[payment_element][features][payment_method_redisplay]": "enabled"}).json()
    found = sandbox_client.get("/sandbox/stripe/v1/elements/sessions", query_string={
        "key": PUBLISHABLE_KEY, "customer_session_client_secret": session["client_secret"]})
    assert found.status_code == 200
    body = found.get_json()
    assert body["customer"] == customer["id"]
    assert [m["id"] for m in body["payment_methods"]] == [shown["id"]]  # only what may be shown again
    assert body["payment_methods"][0]["card"]["last4"] == "4242"
    refused = sandbox_client.get("/sandbox/stripe/v1/elements/sessions", query_string={
        "key": PUBLISHABLE_KEY, "customer_session_client_secret": "cuss_secret_forged"})
    assert refused.status_code == 400

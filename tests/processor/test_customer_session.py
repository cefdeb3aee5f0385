"""GET /customer/session and saved payment methods, with every Stripe call pinned (responses)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses
from flask import Flask

from flask_psp_connector.errors import StripeAPIError
from flask_psp_connector.processor import customers
from flask_psp_connector.stripe.adapter import STRIPE_API_VERSION
from tests.conftest import STRIPE_API, open_checkout
from tests.processor.test_checkout_pinned import PI_URL, store, stripe_calls

CUSTOMERS_URL = f"{STRIPE_API}/v1/customers"
FEATURES = '{"payment_method_save":"enabled","payment_method_redisplay":"enabled","payment_method_remove":"enabled"}'


def stripe_customer(cus_id: str, owner: str, **fields: Any) -> dict[str, Any]:
    return {"id": cus_id, "object": "customer", "email": "jane@example.test", "metadata": {"ct_customer_id": owner},
            **fields}


def pin_session_calls(mock: responses.RequestsMock, cus_id: str) -> None:
    mock.add(responses.POST, f"{STRIPE_API}/v1/ephemeral_keys",
             json={"id": "ephkey_1", "object": "ephemeral_key", "secret": "ek_test_secret",
                   "associated_objects": [{"id": cus_id, "type": "customer"}]})
    mock.add(responses.POST, f"{STRIPE_API}/v1/customer_sessions",
             json={"object": "customer_session", "client_secret": "cuss_secret_abc", "customer": cus_id})


def form(call: Any) -> dict[str, str]:
    return dict(parse_qsl(call.request.body or ""))


def calls_to(mock: responses.RequestsMock) -> list[tuple[str, str]]:
    return [(c.request.method, urlsplit(c.request.url).path) for c in stripe_calls(mock)]


@pytest.fixture
def saving_app(make_app: Any) -> Flask:
    return make_app(STRIPE_SAVED_PAYMENT_METHODS_CONFIG=FEATURES)


def customer_checkout(app: Flask, email: str = "jane@example.test") -> tuple[Any, str, str]:
    customer = store(app).create_customer(email, "Jane Doe")
    cart_id, session_id = open_checkout(app, customer_id=customer.id)
    return customer, cart_id, session_id


def get_session(app: Flask, session_id: str) -> Any:
    return app.test_client().get("/customer/session", headers={"X-Session-Id": session_id})


def test_a_guest_gets_204_without_any_stripe_call(saving_app, stripe_mock) -> None:
    _, session_id = open_checkout(saving_app)
    response = get_session(saving_app, session_id)
    assert response.status_code == 204 and response.data == b""
    assert stripe_calls(stripe_mock) == []


def test_an_unknown_customer_gets_204(saving_app, stripe_mock) -> None:
    _, session_id = open_checkout(saving_app, customer_id="not-a-customer")
    assert get_session(saving_app, session_id).status_code == 204
    assert stripe_calls(stripe_mock) == []


def test_first_visit_searches_then_creates_the_stripe_customer_and_links_it(saving_app, stripe_mock) -> None:
    customer, _, session_id = customer_checkout(saving_app)
    stripe_mock.add(responses.GET, f"{CUSTOMERS_URL}/search", json={"object": "search_result", "data": []})
    stripe_mock.add(responses.POST, CUSTOMERS_URL, json=stripe_customer("cus_new", customer.id))
    pin_session_calls(stripe_mock, "cus_new")

    response = get_session(saving_app, session_id)

    assert response.status_code == 200
    assert response.get_json() == {"stripeCustomerId": "cus_new", "ephemeralKey": "ek_test_secret",
                                   "sessionId": "cuss_secret_abc"}
    search, create, ephemeral, session = stripe_calls(stripe_mock)
    assert dict(parse_qsl(urlsplit(search.request.url).query)) == {
        "query": f"metadata['ct_customer_id']:'{customer.id}'", "limit": "10"}
    assert form(create) == {"email": "jane@example.test", "name": "Jane Doe", "metadata[ct_customer_id]": customer.id}
    assert create.request.headers["Idempotency-Key"] == f"psp-customer-{customer.id}-new"
    assert form(ephemeral) == {"customer": "cus_new"}
    assert ephemeral.request.headers["Stripe-Version"] == STRIPE_API_VERSION
    assert form(session) == {
        "customer": "cus_new", "components[payment_element][enabled]": "true",
        "components[payment_element][features][payment_method_save]": "enabled",
        "components[payment_element][features][payment_method_redisplay]": "enabled",
        "components[payment_element][features][payment_method_remove]": "enabled",
    }
    assert store(saving_app).get_customer(customer.id).stripe_customer_id == "cus_new"


def test_a_stripe_customer_found_by_metadata_is_linked_without_creating_one(saving_app, stripe_mock) -> None:
    customer, _, session_id = customer_checkout(saving_app)
    stripe_mock.add(responses.GET, f"{CUSTOMERS_URL}/search", json={"object": "search_result", "data": [
        stripe_customer("cus_other", "someone-else"), stripe_customer("cus_found", customer.id)]})
    pin_session_calls(stripe_mock, "cus_found")

    assert get_session(saving_app, session_id).get_json()["stripeCustomerId"] == "cus_found"
    assert ("POST", "/v1/customers") not in calls_to(stripe_mock)
    assert store(saving_app).get_customer(customer.id).stripe_customer_id == "cus_found"


def test_a_linked_stripe_customer_is_verified_and_reused(saving_app, stripe_mock) -> None:
    customer, _, session_id = customer_checkout(saving_app)
    store(saving_app).set_stripe_customer_id(customer.id, "cus_linked")
    stripe_mock.add(responses.GET, f"{CUSTOMERS_URL}/cus_linked", json=stripe_customer("cus_linked", customer.id))
    pin_session_calls(stripe_mock, "cus_linked")

    assert get_session(saving_app, session_id).get_json()["stripeCustomerId"] == "cus_linked"
    assert calls_to(stripe_mock) == [("GET", "/v1/customers/cus_linked"), ("POST", "/v1/ephemeral_keys"),
                                     ("POST", "/v1/customer_sessions")]


@pytest.mark.parametrize("stored", [
    pytest.param({"json": stripe_customer("cus_foreign", "another-customer")}, id="metadata-names-someone-else"),
    pytest.param({"json": stripe_customer("cus_foreign", "")}, id="no-metadata"),
    pytest.param({"json": {"id": "cus_foreign", "object": "customer", "deleted": True}}, id="deleted"),
    pytest.param({"status": 404, "json": {"error": {"type": "invalid_request_error", "code": "resource_missing",
                                                    "message": "No such customer: 'cus_foreign'"}}}, id="missing"),
])
def test_another_customers_stripe_customer_is_never_returned(saving_app, stripe_mock, stored) -> None:
    customer, _, session_id = customer_checkout(saving_app)
    store(saving_app).set_stripe_customer_id(customer.id, "cus_foreign")
    stripe_mock.add(responses.GET, f"{CUSTOMERS_URL}/cus_foreign", **stored)
    # The search also turns up the foreign customer (same email): it must not be taken.
    stripe_mock.add(responses.GET, f"{CUSTOMERS_URL}/search", json={"object": "search_result", "data": [
        stripe_customer("cus_foreign", "another-customer")]})
    stripe_mock.add(responses.POST, CUSTOMERS_URL, json=stripe_customer("cus_mine", customer.id))
    pin_session_calls(stripe_mock, "cus_mine")

    body = get_session(saving_app, session_id).get_json()

    assert body["stripeCustomerId"] == "cus_mine"
    create = next(c for c in stripe_calls(stripe_mock) if c.request.method == "POST" and c.request.url == CUSTOMERS_URL)
    assert create.request.headers["Idempotency-Key"] == f"psp-customer-{customer.id}-cus_foreign"
    for call in stripe_calls(stripe_mock):
        if "ephemeral_keys" in call.request.url or "customer_sessions" in call.request.url:
            assert form(call)["customer"] == "cus_mine"
    assert store(saving_app).get_customer(customer.id).stripe_customer_id == "cus_mine"


def test_a_stripe_outage_is_an_error_not_a_new_customer(saving_app, stripe_mock) -> None:
    customer, _, session_id = customer_checkout(saving_app)
    store(saving_app).set_stripe_customer_id(customer.id, "cus_linked")
    stripe_mock.add(responses.GET, f"{CUSTOMERS_URL}/cus_linked", status=500,
                    json={"error": {"type": "api_error", "message": "down"}})
    response = get_session(saving_app, session_id)
    assert response.status_code >= 500
    assert set(response.get_json()) == {"message", "statusCode", "errors"}
    assert calls_to(stripe_mock) == [("GET", "/v1/customers/cus_linked")]
    assert store(saving_app).get_customer(customer.id).stripe_customer_id == "cus_linked"


def test_customer_session_needs_a_session(saving_app) -> None:
    assert saving_app.test_client().get("/customer/session").status_code == 401


# -- recording and removing saved payment methods ------------------------------------------


def paid_intent(customer_id: str, cus: str | None = "cus_1", **fields: Any) -> dict[str, Any]:
    return {"id": "pi_saved", "object": "payment_intent", "status": "succeeded", "customer": cus,
            "payment_method": "pm_1", "metadata": {"ct_customer_id": customer_id}, **fields}


def card(cus: str | None = "cus_1", allow_redisplay: str = "unspecified") -> dict[str, Any]:
    return {"id": "pm_1", "object": "payment_method", "type": "card", "customer": cus,
            "allow_redisplay": allow_redisplay,
            "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030}}


@pytest.mark.parametrize(("intent_fields", "method", "saved"), [
    ({"setup_future_usage": "off_session"}, card(), True),
    ({}, card(allow_redisplay="always"), True),
    ({}, card(), False),
    ({"setup_future_usage": "off_session"}, card(cus=None), False),
    ({"setup_future_usage": "off_session"}, card(cus="cus_someone_else"), False),
])
def test_a_method_is_recorded_only_when_the_buyer_chose_to_save_it(
    saving_app, stripe_mock, intent_fields, method, saved
) -> None:
    platform = store(saving_app)
    customer = platform.create_customer("jane@example.test")
    platform.set_stripe_customer_id(customer.id, "cus_1")
    stripe_mock.add(responses.GET, f"{STRIPE_API}/v1/payment_methods/pm_1", json=method)
    stripe = saving_app.extensions["psp_connector"].stripe

    recorded = customers.record_saved_payment_method(platform, stripe, paid_intent(customer.id, **intent_fields))

    assert (recorded is not None) == saved
    methods = platform.saved_payment_methods(customer.id)
    assert [(m.stripe_payment_method_id, m.brand, m.last4, m.exp_month, m.exp_year) for m in methods] == (
        [("pm_1", "visa", "4242", 12, 2030)] if saved else [])


def test_nothing_is_looked_up_for_a_payment_without_customer_or_for_a_stranger(saving_app, stripe_mock) -> None:
    platform = store(saving_app)
    customer = platform.create_customer("jane@example.test")
    platform.set_stripe_customer_id(customer.id, "cus_1")
    stripe = saving_app.extensions["psp_connector"].stripe
    assert customers.record_saved_payment_method(platform, stripe, paid_intent(customer.id, cus=None)) is None
    # A PaymentIntent naming a Stripe customer that is not the one linked to ours.
    assert customers.record_saved_payment_method(platform, stripe, paid_intent(customer.id, cus="cus_2")) is None
    assert stripe_calls(stripe_mock) == []


def test_removing_a_saved_method_detaches_it_and_only_for_its_owner(saving_app, stripe_mock) -> None:
    platform = store(saving_app)
    jane = platform.create_customer("jane@example.test")
    john = platform.create_customer("john@example.test")
    saved = platform.record_saved_payment_method(jane.id, "pm_1", "visa", "4242", 12, 2030)
    stripe_mock.add(responses.POST, f"{STRIPE_API}/v1/payment_methods/pm_1/detach", json=card(cus=None))
    stripe = saving_app.extensions["psp_connector"].stripe

    assert customers.remove_saved_payment_method(platform, stripe, john.id, saved.id) is None
    assert stripe_calls(stripe_mock) == []
    assert customers.remove_saved_payment_method(platform, stripe, jane.id, saved.id) == saved
    assert calls_to(stripe_mock) == [("POST", "/v1/payment_methods/pm_1/detach")]
    assert platform.saved_payment_methods(jane.id) == []


def test_a_method_stripe_no_longer_has_attached_is_forgotten(saving_app, stripe_mock) -> None:
    platform = store(saving_app)
    jane = platform.create_customer("jane@example.test")
    saved = platform.record_saved_payment_method(jane.id, "pm_1", "visa", "4242", 12, 2030)
    stripe_mock.add(responses.POST, f"{STRIPE_API}/v1/payment_methods/pm_1/detach", status=400, json={"error": {
        "type": "invalid_request_error", "message": "The payment method is not attached to a customer."}})
    stripe = saving_app.extensions["psp_connector"].stripe
    assert customers.remove_saved_payment_method(platform, stripe, jane.id, saved.id) == saved
    assert platform.saved_payment_methods(jane.id) == []


def test_a_failed_detach_keeps_the_record(saving_app, stripe_mock) -> None:
    platform = store(saving_app)
    jane = platform.create_customer("jane@example.test")
    saved = platform.record_saved_payment_method(jane.id, "pm_1", "visa", "4242", 12, 2030)
    stripe_mock.add(responses.POST, f"{STRIPE_API}/v1/payment_methods/pm_1/detach", status=503,
                    json={"error": {"type": "api_error", "message": "down"}})
    stripe = saving_app.extensions["psp_connector"].stripe
    with pytest.raises(StripeAPIError):
        customers.remove_saved_payment_method(platform, stripe, jane.id, saved.id)
    assert platform.saved_payment_methods(jane.id) == [saved]


# -- after a successful payment ----------------------------------------------------------------


def test_confirm_payment_records_the_saved_method(saving_app, stripe_mock) -> None:
    customer, cart_id, session_id = customer_checkout(saving_app)
    platform = store(saving_app)
    platform.set_stripe_customer_id(customer.id, "cus_1")
    client = saving_app.test_client()
    created = []

    def create(request: Any) -> tuple[int, dict[str, str], str]:
        fields = dict(parse_qsl(request.body))
        created.append(fields)
        metadata = {k[9:-1]: v for k, v in fields.items() if k.startswith("metadata[")}
        return 200, {}, json.dumps({"id": "pi_saved", "object": "payment_intent", "client_secret": "pi_saved_secret_x",
                                    "amount": int(fields["amount"]), "currency": "eur", "metadata": metadata,
                                    "status": "requires_payment_method", "customer": fields.get("customer")})

    stripe_mock.add_callback(responses.POST, PI_URL, callback=create)
    payment_id = client.get("/payments", headers={"X-Session-Id": session_id}).get_json()["paymentReference"]
    assert created[0]["customer"] == "cus_1"
    stripe_mock.add(responses.GET, f"{PI_URL}/pi_saved", json={
        "id": "pi_saved", "object": "payment_intent", "status": "succeeded", "amount": 3000, "amount_received": 3000,
        "currency": "eur", "customer": "cus_1", "payment_method": "pm_1",
        "metadata": {"ct_payment_id": payment_id, "ct_customer_id": customer.id}})
    stripe_mock.add(responses.GET, f"{STRIPE_API}/v1/payment_methods/pm_1", json=card(allow_redisplay="always"))

    for _ in range(2):
        response = client.post(f"/confirmPayments/{payment_id}", headers={"X-Session-Id": session_id},
                                json={"paymentIntent": "pi_saved"})
        assert response.get_json() == {"outcome": "approved"}

    assert [m.stripe_payment_method_id for m in platform.saved_payment_methods(customer.id)] == ["pm_1"]


def test_a_failure_to_record_does_not_reject_the_payment(saving_app, stripe_mock) -> None:
    customer, cart_id, session_id = customer_checkout(saving_app)
    platform = store(saving_app)
    platform.set_stripe_customer_id(customer.id, "cus_1")
    client = saving_app.test_client()
    stripe_mock.add(responses.POST, PI_URL, json={"id": "pi_saved", "object": "payment_intent", "amount": 3000,
                                                  "currency": "eur", "client_secret": "pi_saved_secret_x",
                                                  "status": "requires_payment_method", "metadata": {}})
    payment_id = client.get("/payments", headers={"X-Session-Id": session_id}).get_json()["paymentReference"]
    stripe_mock.add(responses.GET, f"{PI_URL}/pi_saved", json={
        "id": "pi_saved", "object": "payment_intent", "status": "succeeded", "amount": 3000, "amount_received": 3000,
        "currency": "eur", "customer": "cus_1", "payment_method": "pm_1", "setup_future_usage": "off_session",
        "metadata": {"ct_payment_id": payment_id, "ct_customer_id": customer.id}})
    stripe_mock.add(responses.GET, f"{STRIPE_API}/v1/payment_methods/pm_1", status=404,
                    json={"error": {"type": "invalid_request_error", "code": "resource_missing", "message": "gone"}})
    response = client.post(f"/confirmPayments/{payment_id}", headers={"X-Session-Id": session_id},
                           json={"paymentIntent": "pi_saved"})
    assert response.get_json() == {"outcome": "approved"}
    assert platform.saved_payment_methods(customer.id) == []


# -- against the local Stripe double -------------------------------------------------------------


def test_customer_session_on_the_stripe_double_finds_its_customer_again(localstripe_app, stripe_double_client) -> None:
    customer, _, session_id = customer_checkout(localstripe_app)
    first = get_session(localstripe_app, session_id).get_json()
    assert first["ephemeralKey"].startswith("ek_test_") and first["sessionId"].startswith("cuss_secret_")
    made = stripe_double_client.v1.customers.retrieve(first["stripeCustomerId"])
    assert made.metadata["ct_customer_id"] == customer.id
    # The link is lost: the customer is found again by metadata, not created twice.
    store(localstripe_app).set_stripe_customer_id(customer.id, "cus_unknown")
    again = get_session(localstripe_app, session_id).get_json()
    assert again["stripeCustomerId"] == first["stripeCustomerId"]

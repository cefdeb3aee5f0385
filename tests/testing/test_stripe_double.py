"""The Stripe API double against Stripe's documented answers (docs.stripe.com: API
reference, idempotent requests, testing cards, disputes, webhooks), through stripe-python."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import stripe
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.browser_support import wait_for


@pytest.fixture
def api(stripe_double: str) -> stripe.StripeClient:
    """A client on the emptied double."""
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    return stripe.StripeClient("sk_test_double_tests", base_addresses={"api": stripe_double}, max_network_retries=0)


def intent(api: stripe.StripeClient, method: str = "pm_card_visa", **params: Any) -> Any:
    return api.v1.payment_intents.create(params={
        "amount": 2000, "currency": "eur", "payment_method_types": ["card"], "payment_method": method, "confirm": True,
        **params})


def events(api: stripe.StripeClient, about: str) -> list[str]:
    """Types of the double's events about one PaymentIntent (or its charges, refunds, disputes), oldest first."""
    found = api.v1.events.list(params={"limit": 100}).data
    return [e.type for e in reversed(found) if about in (e.data.object["id"], e.data.object.to_dict().get("payment_intent"))]


# -- Idempotency-Key -----------------------------------------------------------------------


def test_the_same_key_and_parameters_replay_the_first_answer(api, stripe_double) -> None:
    key = str(uuid.uuid4())
    params = {"amount": 1500, "currency": "eur", "payment_method_types": ["card"], "metadata": {"order": "1"}}
    first = api.v1.payment_intents.create(params=params, options={"idempotency_key": key})
    again = api.v1.payment_intents.create(params=params, options={"idempotency_key": key})
    assert again.id == first.id
    assert len(api.v1.payment_intents.list().data) == 1
    raw = requests.post(f"{stripe_double}/v1/payment_intents", auth=("sk_test_double_tests", ""), timeout=5,
                        headers={"Idempotency-Key": key},
                        data={"amount": 1500, "currency": "eur", "payment_method_types[0]": "card", "metadata[order]": "1"})
    assert raw.headers["Idempotent-Replayed"] == "true" and raw.json()["id"] == first.id


def test_the_same_key_with_other_parameters_is_an_idempotency_error(api) -> None:
    key = str(uuid.uuid4())
    api.v1.payment_intents.create(params={"amount": 1500, "currency": "eur"}, options={"idempotency_key": key})
    with pytest.raises(stripe.IdempotencyError) as raised:
        api.v1.payment_intents.create(params={"amount": 1600, "currency": "eur"}, options={"idempotency_key": key})
    assert raised.value.http_status == 400
    assert raised.value.error.type == "idempotency_error"
    assert len(api.v1.payment_intents.list().data) == 1


def test_a_replayed_decline_is_the_same_decline_and_charges_once(api) -> None:
    key = str(uuid.uuid4())
    answers = []
    for _ in range(2):
        with pytest.raises(stripe.CardError) as raised:
            api.v1.payment_intents.create(params={"amount": 900, "currency": "eur", "payment_method": "pm_card_chargeDeclined",
                                                  "confirm": True}, options={"idempotency_key": key})
        answers.append(raised.value.json_body)
    assert answers[0] == answers[1]
    assert len(api.v1.charges.list().data) == 1


def test_keys_are_per_secret_key(api, stripe_double) -> None:
    key = str(uuid.uuid4())
    other = stripe.StripeClient("sk_test_another_account", base_addresses={"api": stripe_double}, max_network_retries=0)
    first = api.v1.payment_intents.create(params={"amount": 1500, "currency": "eur"}, options={"idempotency_key": key})
    second = other.v1.payment_intents.create(params={"amount": 1500, "currency": "eur"}, options={"idempotency_key": key})
    assert first.id != second.id


def test_a_refused_request_is_not_kept(api) -> None:
    key = str(uuid.uuid4())
    with pytest.raises(stripe.InvalidRequestError):
        api.v1.payment_intents.create(params={"currency": "eur"}, options={"idempotency_key": key})
    created = api.v1.payment_intents.create(params={"amount": 700, "currency": "eur"}, options={"idempotency_key": key})
    assert created.amount == 700


# -- test cards: success, declines, 3D Secure ---------------------------------------------------


def test_a_successful_automatic_capture(api) -> None:
    paid = intent(api)
    assert (paid.status, paid.amount_received, paid.amount_capturable) == ("succeeded", 2000, 0)
    assert isinstance(paid.latest_charge, str)  # an id unless expanded
    charge = api.v1.charges.retrieve(paid.latest_charge)
    assert (charge.status, charge.paid, charge.captured, charge.amount_captured) == ("succeeded", True, True, 2000)
    assert charge.payment_method_details.type == "card"
    assert charge.payment_method_details.card.last4 == "4242"
    assert events(api, paid.id) == ["payment_intent.created", "charge.succeeded", "payment_intent.succeeded"]


@pytest.mark.parametrize(("method", "code", "decline_code"), [
    ("pm_card_chargeDeclined", "card_declined", "generic_decline"),
    ("pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"),
    ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card"),
    ("pm_card_chargeCustomerFail", "card_declined", "generic_decline"),
])
def test_a_declined_card_is_a_402_card_error_and_the_intent_can_be_paid_again(api, method, code, decline_code) -> None:
    with pytest.raises(stripe.CardError) as raised:
        intent(api, method)
    error = raised.value.error
    assert raised.value.http_status == 402
    assert (error.type, error.code, error.decline_code) == ("card_error", code, decline_code)
    declined = error.payment_intent
    assert declined.status == "requires_payment_method"
    assert declined.last_payment_error.decline_code == decline_code
    failed_charge = api.v1.charges.retrieve(declined.latest_charge)
    assert (failed_charge.status, failed_charge.failure_code) == ("failed", code)
    assert events(api, declined.id) == ["payment_intent.created", "charge.failed", "payment_intent.payment_failed"]
    paid = api.v1.payment_intents.confirm(declined.id, params={"payment_method": "pm_card_visa"})
    assert paid.status == "succeeded" and paid.last_payment_error is None


def test_a_card_needing_3d_secure_requires_action_until_authenticated(api, stripe_double) -> None:
    challenged = intent(api, "pm_card_authenticationRequired")
    assert challenged.status == "requires_action"
    assert challenged.next_action.type == "use_stripe_sdk"
    assert events(api, challenged.id)[-1] == "payment_intent.requires_action"
    with_return = intent(api, "pm_card_threeDSecure2Required", return_url="https://shop.example.test/return")
    assert with_return.next_action.type == "redirect_to_url"
    passed = requests.post(f"{stripe_double}/v1/payment_intents/{challenged.id}/_authenticate", timeout=5,
                           data={"client_secret": challenged.client_secret, "success": "true", "key": "pk_test_x"}).json()
    assert passed["status"] == "succeeded"
    failed = requests.post(f"{stripe_double}/v1/payment_intents/{with_return.id}/_authenticate", timeout=5,
                           data={"client_secret": with_return.client_secret, "success": "false", "key": "pk_test_x"}).json()
    assert failed["status"] == "requires_payment_method"
    assert failed["last_payment_error"]["code"] == "payment_intent_authentication_failure"
    assert events(api, with_return.id)[-1] == "payment_intent.payment_failed"


def test_off_session_a_3d_secure_card_is_declined_with_authentication_required(api) -> None:
    with pytest.raises(stripe.CardError) as raised:
        intent(api, "pm_card_authenticationRequired", off_session=True)
    assert (raised.value.error.code, raised.value.error.decline_code) == ("authentication_required", "authentication_required")


def test_billing_details_of_payment_method_data_reach_the_payment_method_and_charge(api) -> None:
    created = api.v1.payment_intents.create(params={"amount": 2000, "currency": "eur", "payment_method_types": ["card"]})
    paid = api.v1.payment_intents.confirm(created.id, params={"payment_method_data": {
        "type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "123"},
        "billing_details": {"name": "Jane Doe", "email": "jane@example.test", "address": {"country": "DE"}}}})
    assert api.v1.payment_methods.retrieve(paid.payment_method).billing_details.name == "Jane Doe"
    assert api.v1.charges.retrieve(paid.latest_charge).billing_details.email == "jane@example.test"


def test_stripes_fixture_parameters_are_accepted_and_unknown_ones_refused(api) -> None:
    created = intent(api, description="(created by Stripe CLI)", shipping={
        "name": "Jenny Rosen", "address": {"line1": "510 Townsend St", "postal_code": "94103", "city": "San Francisco",
                                           "state": "CA", "country": "US"}})
    assert created.description == "(created by Stripe CLI)" and created.shipping.name == "Jenny Rosen"
    canceled = api.v1.payment_intents.cancel(
        api.v1.payment_intents.create(params={"amount": 2000, "currency": "usd"}).id,
        params={"cancellation_reason": "requested_by_customer"})
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "requested_by_customer")
    with pytest.raises(stripe.InvalidRequestError) as raised:
        api.v1.payment_intents.create(params={"amount": 2000, "currency": "usd", "colour": "blue"})
    assert raised.value.code == "parameter_unknown"


# -- capture, cancel, refunds ----------------------------------------------------------------------


def test_a_partial_capture_takes_that_amount_and_releases_the_rest(api) -> None:
    authorized = intent(api, capture_method="manual")
    assert (authorized.status, authorized.amount_capturable, authorized.amount_received) == ("requires_capture", 2000, 0)
    captured = api.v1.payment_intents.capture(authorized.id, params={"amount_to_capture": 1200})
    assert (captured.status, captured.amount_received, captured.amount_capturable) == ("succeeded", 1200, 0)
    charge = api.v1.charges.retrieve(captured.latest_charge)
    assert (charge.amount, charge.amount_captured, charge.amount_refunded, charge.refunded) == (2000, 1200, 0, False)
    assert api.v1.refunds.list(params={"payment_intent": authorized.id}).data == []  # released, not refunded
    assert events(api, authorized.id)[-3:] == ["payment_intent.amount_capturable_updated", "charge.captured",
                                               "payment_intent.succeeded"]
    with pytest.raises(stripe.InvalidRequestError) as raised:
        api.v1.payment_intents.capture(authorized.id)
    assert raised.value.code == "payment_intent_unexpected_state"


def test_capturing_more_than_authorized_is_refused(api) -> None:
    authorized = intent(api, capture_method="manual")
    with pytest.raises(stripe.InvalidRequestError) as raised:
        api.v1.payment_intents.capture(authorized.id, params={"amount_to_capture": 2001})
    assert raised.value.code == "amount_too_large"
    assert api.v1.payment_intents.retrieve(authorized.id).status == "requires_capture"


def test_refunds_are_limited_to_what_was_captured_and_not_yet_refunded(api) -> None:
    authorized = intent(api, capture_method="manual")
    api.v1.payment_intents.capture(authorized.id, params={"amount_to_capture": 1500})
    first = api.v1.refunds.create(params={"payment_intent": authorized.id, "amount": 1000})
    assert (first.status, first.amount) == ("succeeded", 1000)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        api.v1.refunds.create(params={"payment_intent": authorized.id, "amount": 501})
    assert raised.value.code == "amount_too_large"
    rest = api.v1.refunds.create(params={"payment_intent": authorized.id})
    assert rest.amount == 500
    charge = api.v1.charges.retrieve(authorized.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (1500, True)
    with pytest.raises(stripe.InvalidRequestError) as again:
        api.v1.refunds.create(params={"charge": charge.id, "amount": 1})
    assert again.value.code == "charge_already_refunded"
    assert events(api, authorized.id).count("charge.refunded") == 2
    assert events(api, authorized.id).count("refund.created") == 2


def test_an_uncaptured_or_unpaid_intent_has_nothing_to_refund(api) -> None:
    authorized = intent(api, capture_method="manual")
    with pytest.raises(stripe.InvalidRequestError):
        api.v1.refunds.create(params={"payment_intent": authorized.id})
    unpaid = api.v1.payment_intents.create(params={"amount": 2000, "currency": "eur"})
    with pytest.raises(stripe.InvalidRequestError):
        api.v1.refunds.create(params={"payment_intent": unpaid.id})


def test_canceling_releases_the_authorization_and_a_paid_intent_cannot_be_canceled(api) -> None:
    authorized = intent(api, capture_method="manual")
    canceled = api.v1.payment_intents.cancel(authorized.id)
    assert (canceled.status, canceled.amount_capturable) == ("canceled", 0)
    assert events(api, authorized.id)[-1] == "payment_intent.canceled"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        api.v1.payment_intents.cancel(intent(api).id)
    assert raised.value.code == "payment_intent_unexpected_state"


# -- disputes --------------------------------------------------------------------------------------


def test_the_dispute_card_pays_then_opens_a_dispute(api) -> None:
    paid = intent(api, "pm_card_createDispute")
    assert paid.status == "succeeded"
    [dispute] = api.v1.disputes.list(params={"payment_intent": paid.id}).data
    assert (dispute.status, dispute.reason, dispute.amount, dispute.charge) == (
        "needs_response", "fraudulent", 2000, paid.latest_charge)
    assert api.v1.charges.retrieve(paid.latest_charge).disputed is True
    assert "charge.dispute.created" in events(api, paid.id)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        api.v1.refunds.create(params={"payment_intent": paid.id})
    assert raised.value.code == "charge_disputed"
    closed = api.v1.disputes.close(dispute.id)
    assert closed.status == "lost"
    assert events(api, paid.id)[-1] == "charge.dispute.closed"


def test_winning_evidence_wins_the_dispute(api) -> None:
    paid = intent(api, "pm_card_createDispute")
    [dispute] = api.v1.disputes.list(params={"charge": paid.latest_charge}).data
    won = api.v1.disputes.update(dispute.id, params={"evidence": {"uncategorized_text": "winning_evidence"}})
    assert won.status == "won"


def test_the_inquiry_card_opens_an_inquiry(api) -> None:
    paid = intent(api, "pm_card_createDisputeInquiry")
    [inquiry] = api.v1.disputes.list(params={"payment_intent": paid.id}).data
    assert inquiry.status == "warning_needs_response"
    assert api.v1.disputes.close(inquiry.id).status == "warning_closed"


# -- lists, events, webhook endpoints ----------------------------------------------------------------


def test_lists_filter_by_created_and_page_newest_first(api) -> None:
    ids = [api.v1.payment_intents.create(params={"amount": 100 + n, "currency": "eur"}).id for n in range(3)]
    now = int(time.time())
    listed = api.v1.payment_intents.list(params={"created": {"gte": now - 60}, "limit": 2})
    assert [i.id for i in listed.data] == ids[:0:-1] and listed.has_more
    rest = api.v1.payment_intents.list(params={"created": {"gte": now - 60}, "limit": 2, "starting_after": listed.data[-1].id})
    assert [i.id for i in rest.data] == [ids[0]] and not rest.has_more
    assert api.v1.payment_intents.list(params={"created": {"gt": now + 60}}).data == []
    paid = intent(api)
    assert [c.id for c in api.v1.charges.list(params={"payment_intent": paid.id}).data] == [paid.latest_charge]
    assert [e.type for e in api.v1.events.list(params={"type": "charge.*"}).data] == ["charge.succeeded"]


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[bytes, str]]]]:
    received: list[tuple[bytes, str]] = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        received.append((request.get_data(), request.headers.get("Stripe-Signature", "")))
        return Response("ok")(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hooks", received
    server.shutdown()
    thread.join(5)


def test_webhook_endpoints_get_the_events_they_enabled_signed_with_their_secret(api, receiver) -> None:
    url, received = receiver
    endpoint = api.v1.webhook_endpoints.create(params={"url": url, "enabled_events": ["payment_intent.succeeded"],
                                                       "metadata": {"by": "test"}})
    assert endpoint.secret.startswith("whsec_") and endpoint.status == "enabled"
    fetched = api.v1.webhook_endpoints.retrieve(endpoint.id)
    assert "secret" not in fetched and fetched.metadata.by == "test"
    paid = intent(api)
    body, signature = wait_for(lambda: received and received[0])
    event = stripe.Webhook.construct_event(body, signature, endpoint.secret)
    assert (event.type, event.data.object.id, event.data.object.amount_received) == ("payment_intent.succeeded", paid.id, 2000)
    time.sleep(0.5)
    assert len(received) == 1  # only the enabled type
    api.v1.webhook_endpoints.update(endpoint.id, params={"disabled": True})
    intent(api)
    time.sleep(0.8)
    assert len(received) == 1
    assert api.v1.webhook_endpoints.delete(endpoint.id).deleted is True
    assert api.v1.webhook_endpoints.list().data == []
    with pytest.raises(stripe.InvalidRequestError):
        api.v1.webhook_endpoints.retrieve(endpoint.id)


def test_events_carry_the_request_and_its_idempotency_key(api) -> None:
    key = str(uuid.uuid4())
    created = api.v1.payment_intents.create(params={"amount": 100, "currency": "eur"}, options={"idempotency_key": key})
    [event] = api.v1.events.list(params={"type": "payment_intent.created"}).data
    assert event.data.object.id == created.id
    assert event.request.idempotency_key == key and event.request.id.startswith("req_")
    assert json.loads(json.dumps(api.v1.events.retrieve(event.id).to_dict()))["id"] == event.id


def test_multicapture_keeps_the_rest_capturable_until_the_final_capture(api) -> None:
    authorized = intent(api, capture_method="manual",
                        payment_method_options={"card": {"request_multicapture": "if_available"}})
    assert api.v1.charges.retrieve(authorized.latest_charge).payment_method_details.card.multicapture.status == "available"
    first = api.v1.payment_intents.capture(authorized.id, params={"amount_to_capture": 500, "final_capture": False})
    assert (first.status, first.amount_received, first.amount_capturable) == ("requires_capture", 500, 1500)
    last = api.v1.payment_intents.capture(authorized.id, params={"amount_to_capture": 700})
    assert (last.status, last.amount_received, last.amount_capturable) == ("succeeded", 1200, 0)
    assert api.v1.charges.retrieve(authorized.latest_charge).amount_captured == 1200
    single = intent(api, capture_method="manual")
    with pytest.raises(stripe.InvalidRequestError):
        api.v1.payment_intents.capture(single.id, params={"amount_to_capture": 500, "final_capture": False})

"""The Hantera PSP flow: Stripe is the local Stripe double, Hantera is pinned with ``responses``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
import responses
import stripe
from flask import Flask

from flask_psp_connector.errors import ConfigurationError
from tests import hantera_support as ht
from tests.webhook_support import SECRETS, event, post_event

INGRESS = "/gateways/hantera/ingress/commerce/carts"


@pytest.fixture
def ht_app(make_app, stripe_double: str) -> Flask:
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    return make_app(STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card",
                    HANTERA_API_URL=ht.API, HANTERA_CLIENT_ID=ht.CLIENT_ID, HANTERA_CLIENT_SECRET=ht.CLIENT_SECRET,
                    HANTERA_JOB_SECRET=ht.JOB_SECRET, STRIPE_WEBHOOK_SIGNING_SECRET=",".join(SECRETS))


@pytest.fixture
def hantera(stripe_double: str) -> Iterator[ht.FakeHantera]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru(stripe_double)
        yield ht.FakeHantera(mock)


def checkout(app: Flask, cart_id: str, body: Any = None) -> Any:
    data = b"" if body is None else json.dumps(body).encode()
    return app.test_client().post(f"{INGRESS}/{cart_id}/payment/stripe", data=data, content_type="application/json")


def confirm(app: Flask, cart_id: str) -> Any:
    return app.test_client().post(f"{INGRESS}/{cart_id}/payment/stripe/confirm", json={})


def pay(stripe_client: stripe.StripeClient, client_secret: str, number: str = "4242424242424242") -> dict[str, Any]:
    """What Stripe.js does for the storefront: a card, then confirmation."""
    pi = client_secret.split("_secret_")[0]
    method = stripe_client.v1.payment_methods.create(params={
        "type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}).id
    stripe_client.v1.payment_intents.update(pi, params={"payment_method": method})
    try:
        stripe_client.v1.payment_intents.confirm(pi)
    except stripe.CardError:
        pass
    return stripe_client.v1.payment_intents.retrieve(pi).to_dict()


def capture_job(app: Flask, body: Any, token: str | None = ht.JOB_SECRET) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return app.test_client().post("/gateways/hantera/jobs/capture", data=json.dumps(body),
                                  content_type="application/json", headers=headers)


def paid_cart(app: Flask, hantera: ht.FakeHantera, stripe_client: stripe.StripeClient, cart_id: str = "cart1",
              total: str = "49.90") -> dict[str, Any]:
    hantera.cart(cart_id, total)
    return pay(stripe_client, checkout(app, cart_id).get_json()["clientSecret"])


# -- checkout ingress --------------------------------------------------------------------


def test_checkout_creates_one_payment_intent_per_cart(ht_app, hantera, stripe_double_client) -> None:
    hantera.cart("cart1", "49.90")
    first = checkout(ht_app, "cart1", {})
    again = checkout(ht_app, "cart1")
    assert first.status_code == again.status_code == 200
    assert first.get_json() == again.get_json()
    assert set(first.get_json()) == {"clientSecret"}
    intents = stripe_double_client.v1.payment_intents.list().data
    assert len(intents) == 1
    intent = intents[0]
    assert (intent.amount, intent.currency, intent.capture_method) == (4990, "eur", "manual")
    assert intent.metadata.to_dict() == {"psp_gateway": "hantera", "hantera_cart_id": "cart1",
                                         "hantera_cart_number": "C-cart1"}
    # one token for both calls, the client's credentials in the form body
    assert hantera.token_requests == [{"grant_type": ["client_credentials"], "client_id": [ht.CLIENT_ID],
                                       "client_secret": [ht.CLIENT_SECRET],
                                       "scope": ["actors/payment:* actors/ticket:* graph:*"]}]


def test_checkout_follows_the_carts_total_on_the_same_payment_intent(ht_app, hantera, stripe_double_client) -> None:
    hantera.cart("cart1", "49.90")
    secret = checkout(ht_app, "cart1").get_json()["clientSecret"]
    hantera.cart("cart1", "59.90")
    assert checkout(ht_app, "cart1").get_json()["clientSecret"] == secret
    intents = stripe_double_client.v1.payment_intents.list().data
    assert [(i.id, i.amount) for i in intents] == [(secret.split("_secret_")[0], 5990)]


@pytest.mark.parametrize(("currency", "total", "stripe_amount"), [("JPY", "1200", 1200), ("KWD", "12.340", 12340),
                                                                   ("EUR", "0.50", 50)])
def test_checkout_amounts_use_stripes_exponents(ht_app, hantera, stripe_double_client, currency, total,
                                                stripe_amount) -> None:
    hantera.cart("cart1", total, currency)
    assert checkout(ht_app, "cart1").status_code == 200
    intent = stripe_double_client.v1.payment_intents.list().data[0]
    assert (intent.amount, intent.currency) == (stripe_amount, currency.lower())


@pytest.mark.parametrize(("cart", "status", "code"), [
    (("completed", "49.90", "EUR"), 409, "cart_not_open"),
    (("open", "0", "EUR"), 422, "cart_empty"),
    (("open", "12.345", "KWD"), 400, "InvalidOperation"),
    (None, 404, "cart_not_found"),
])
def test_checkout_refuses_carts_it_cannot_charge(ht_app, hantera, stripe_double_client, cart, status, code) -> None:
    if cart:
        hantera.cart("cart1", cart[1], cart[2], state=cart[0])
    response = checkout(ht_app, "cart1")
    assert response.status_code == status
    assert response.get_json()["errors"][0]["code"] == code
    assert stripe_double_client.v1.payment_intents.list().data == []


@pytest.mark.parametrize(("cart_id", "body"), [("cart%20one", None), ("c" * 129, None), ("cart1", [1]),
                                               ("cart1", "x")])
def test_checkout_refuses_bad_input_in_hanteras_error_shape(ht_app, hantera, cart_id, body) -> None:
    hantera.cart("cart1", "10.00")
    response = checkout(ht_app, cart_id, body)
    assert response.status_code == 400
    assert set(response.get_json()) == {"errors"}


# -- completion: confirm call and webhook -------------------------------------------------


def test_confirm_creates_the_payment_links_it_and_completes_the_cart_once(ht_app, hantera, stripe_double_client) -> None:
    intent = paid_cart(ht_app, hantera, stripe_double_client)
    assert intent["status"] == "requires_capture"
    response = confirm(ht_app, "cart1")
    assert (response.status_code, response.get_json()) == (200, {"cartState": "completed",
                                                                 "paymentIntentStatus": "requires_capture"})
    pi = intent["id"]
    assert hantera.sent("payment") == [("new", [{"type": "create", "body": {
        "providerKey": "stripe", "currencyCode": "EUR", "externalReference": pi,
        "commands": [{"type": "createAuthorization", "authorizationNumber": pi, "amount": Decimal("49.9"),
                      "authorizationState": "successful"},
                     {"type": "generatePaymentNumberByPrefix", "prefix": "P_STRIPE_"}]}}])]
    assert hantera.sent("ticket") == [("cart1", [
        {"type": "applyCommands", "body": {"commands": [
            {"type": "createRelation", "relationKey": "payments", "nodeId": "pay-1"}]}},
        {"type": "complete"}])]

    # the confirm call again, and the webhook afterwards: nothing more reaches Hantera
    assert confirm(ht_app, "cart1").get_json()["cartState"] == "completed"
    received = post_event(ht_app.test_client(), event("payment_intent.amount_capturable_updated", intent))
    assert received.status_code == 200
    assert len(hantera.messages) == 2


def test_the_webhook_completes_the_cart_when_the_confirm_call_never_comes(ht_app, hantera,
                                                                         stripe_double_client) -> None:
    intent = paid_cart(ht_app, hantera, stripe_double_client)
    settled = event("payment_intent.amount_capturable_updated", intent)
    assert post_event(ht_app.test_client(), settled).status_code == 200
    assert hantera.carts["cart1"]["cartState"] == "completed"
    assert post_event(ht_app.test_client(), settled).status_code == 200  # Stripe's duplicate
    assert confirm(ht_app, "cart1").get_json()["cartState"] == "completed"
    assert [actor for actor, _ in hantera.sent("payment")] == ["new"]
    assert len(hantera.sent("ticket")) == 1


def test_a_payment_created_by_an_interrupted_attempt_is_reused(ht_app, hantera, stripe_double_client) -> None:
    intent = paid_cart(ht_app, hantera, stripe_double_client)
    hantera.payments[intent["id"]] = "pay-earlier"
    assert confirm(ht_app, "cart1").status_code == 200
    assert hantera.sent("payment") == []
    assert hantera.sent("ticket")[0][1][0]["body"]["commands"][0]["nodeId"] == "pay-earlier"


def test_a_cart_completed_elsewhere_is_left_alone(ht_app, hantera, stripe_double_client) -> None:
    paid_cart(ht_app, hantera, stripe_double_client)
    hantera.carts["cart1"]["cartState"] = "completed"
    assert confirm(ht_app, "cart1").get_json()["cartState"] == "completed"
    assert hantera.messages == []


def test_hantera_down_makes_stripe_retry_and_the_retry_completes(ht_app, hantera, stripe_double_client) -> None:
    intent = paid_cart(ht_app, hantera, stripe_double_client)
    settled = event("payment_intent.amount_capturable_updated", intent)
    hantera.refuse_next = 503
    assert post_event(ht_app.test_client(), settled).status_code >= 500
    assert hantera.carts["cart1"]["cartState"] == "open"
    assert post_event(ht_app.test_client(), settled).status_code == 200
    assert hantera.carts["cart1"]["cartState"] == "completed"


def test_a_cart_changed_after_authorization_gets_its_money_back_and_a_new_payment(ht_app, hantera,
                                                                                 stripe_double_client) -> None:
    first = paid_cart(ht_app, hantera, stripe_double_client)
    hantera.cart("cart1", "59.90")
    refused = confirm(ht_app, "cart1")
    assert refused.status_code == 409
    assert refused.get_json()["errors"][0]["code"] == "amount_mismatch"
    assert stripe_double_client.v1.payment_intents.retrieve(first["id"]).status == "canceled"
    assert hantera.messages == [] and hantera.carts["cart1"]["cartState"] == "open"

    second = pay(stripe_double_client, checkout(ht_app, "cart1").get_json()["clientSecret"])
    assert second["id"] != first["id"] and second["amount"] == 5990
    assert confirm(ht_app, "cart1").get_json()["cartState"] == "completed"


def test_a_declined_card_is_answered_with_stripes_decline_code(ht_app, hantera, stripe_double_client) -> None:
    intent = paid_cart(ht_app, hantera, stripe_double_client)
    assert intent["status"] == "requires_capture"
    hantera.cart("cart2", "20.00")
    declined = pay(stripe_double_client, checkout(ht_app, "cart2").get_json()["clientSecret"], "4000000000000341")
    assert declined["status"] == "requires_payment_method"
    response = confirm(ht_app, "cart2")
    assert response.status_code == 402
    assert response.get_json()["errors"][0]["code"] == "generic_decline"  # Stripe's decline code for ...0341
    assert hantera.carts["cart2"]["cartState"] == "open"


def test_confirm_before_any_checkout_is_a_clear_404(ht_app, hantera) -> None:
    response = confirm(ht_app, "cart9")
    assert response.status_code == 404
    assert response.get_json() == {"errors": [{"code": "payment_not_found",
                                               "message": "No payment was started for this cart."}]}


# -- capture job --------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "wrong-token", ht.JOB_SECRET + "x"])
def test_capture_job_without_the_right_token_does_nothing(ht_app, hantera, stripe_double_client, token) -> None:
    intent = paid_cart(ht_app, hantera, stripe_double_client)
    response = capture_job(ht_app, {"externalReference": intent["id"], "amount": 30}, token)
    assert response.status_code == 401
    assert stripe_double_client.v1.payment_intents.retrieve(intent["id"]).status == "requires_capture"


def test_capture_job_captures_at_stripe_and_charges_the_hantera_payment_once(ht_app, hantera,
                                                                             stripe_double_client) -> None:
    intent = paid_cart(ht_app, hantera, stripe_double_client)
    confirm(ht_app, "cart1")
    body = {"externalReference": intent["id"], "amount": 30.5, "captureId": "cap-1"}
    first = capture_job(ht_app, body)
    again = capture_job(ht_app, body)
    assert first.status_code == again.status_code == 200
    assert first.get_json() == again.get_json() == {"externalReference": intent["id"], "paymentId": "pay-1",
                                                    "capturedAmount": 30.5, "currencyCode": "EUR"}
    captured = stripe_double_client.v1.payment_intents.retrieve(intent["id"], params={"expand": ["latest_charge"]})
    charge = captured.latest_charge  # the rest of the authorization is released, not refunded
    assert (captured.status, charge.amount_captured, charge.amount_refunded) == ("succeeded", 3050, 0)
    charges = [messages for actor, messages in hantera.sent("payment") if actor == "pay-1"]
    assert charges == [[{"type": "charge", "body": {"amount": Decimal("30.5"), "authorizationNumber": intent["id"],
                                                    "transactionReference": intent["id"]}}]]
    # another amount after Stripe captured: refused clearly, nothing more charged
    other = capture_job(ht_app, {"externalReference": intent["id"], "amount": 10})
    assert other.status_code == 409
    assert other.get_json()["errors"][0]["code"] == "already_captured"


@pytest.mark.parametrize(("amount", "code"), [(0, "invalid_body"), (-1, "invalid_body"), ("abc", "invalid_body"),
                                              (10.001, "invalid_amount"), (500, "amount_too_large")])
def test_capture_job_refuses_bad_amounts(ht_app, hantera, stripe_double_client, amount, code) -> None:
    intent = paid_cart(ht_app, hantera, stripe_double_client)
    response = capture_job(ht_app, {"externalReference": intent["id"], "amount": amount})
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["code"] == code
    assert stripe_double_client.v1.payment_intents.retrieve(intent["id"]).status == "requires_capture"


def test_capture_job_refuses_payment_intents_that_are_not_hanteras(ht_app, hantera, stripe_double_client) -> None:
    other = stripe_double_client.v1.payment_intents.create(params={"amount": 1000, "currency": "eur",
                                                                   "payment_method_types": ["card"]})
    response = capture_job(ht_app, {"externalReference": other.id, "amount": 10})
    assert response.status_code == 404


# -- configuration and documentation -------------------------------------------------------


def test_routes_are_documented_and_absent_when_not_configured(ht_app, make_app) -> None:
    paths = ht_app.test_client().get("/openapi.json").get_json()["paths"]
    assert {f"{INGRESS}/{{cart_id}}/payment/stripe", f"{INGRESS}/{{cart_id}}/payment/stripe/confirm",
            "/gateways/hantera/jobs/capture"} <= set(paths)
    plain = make_app().test_client()
    assert plain.post(f"{INGRESS}/cart1/payment/stripe").status_code == 404


@pytest.mark.parametrize("missing", ["HANTERA_CLIENT_ID", "HANTERA_CLIENT_SECRET", "HANTERA_JOB_SECRET"])
def test_hantera_needs_its_client_and_job_secret(make_app, missing) -> None:
    config = {"HANTERA_API_URL": ht.API, "HANTERA_CLIENT_ID": ht.CLIENT_ID, "HANTERA_CLIENT_SECRET": ht.CLIENT_SECRET,
              "HANTERA_JOB_SECRET": ht.JOB_SECRET, missing: ""}
    with pytest.raises(ConfigurationError, match=missing):
        make_app(**config)


@pytest.mark.postgres
def test_init_db_creates_the_gateway_tables_beside_commercetools(make_app) -> None:
    from sqlalchemy import create_engine, inspect, text

    from flask_psp_connector.platforms.embedded.database import normalize_database_url
    from tests.conftest import POSTGRES_URL
    from tests.platforms.commercetools.test_commercetools_fake import CT_CONFIG

    engine = create_engine(normalize_database_url(POSTGRES_URL))
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS psp_gateway_callbacks, psp_gateway_requests"))
    app = make_app(**CT_CONFIG, PSP_DATABASE_URL=POSTGRES_URL, HANTERA_API_URL=ht.API, HANTERA_CLIENT_ID=ht.CLIENT_ID,
                   HANTERA_CLIENT_SECRET=ht.CLIENT_SECRET, HANTERA_JOB_SECRET=ht.JOB_SECRET)
    result = app.test_cli_runner().invoke(args=["psp", "init-db"])
    assert result.exit_code == 0, result.output
    assert {"psp_gateway_requests", "psp_gateway_callbacks"} <= set(inspect(engine).get_table_names())
    engine.dispose()

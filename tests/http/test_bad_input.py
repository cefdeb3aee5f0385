"""Bad input gets a clear error and nothing is written, on every processor route.

Every refusal is checked three ways: the exact status and upstream error body, no
change to the cart's payments (rows and transactions), and no call to Stripe unless the
case needs one. ``stripe_mock`` records every outgoing request, pinned or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import responses
from flask import Flask

from flask_psp_connector.domain.money import Money
from flask_psp_connector.domain.payment import Payment, TransactionDraft, TransactionState, TransactionType
from tests.conftest import STRIPE_API, bearer, open_checkout

S, T = TransactionState, TransactionType
PI_URL = f"{STRIPE_API}/v1/payment_intents"
CART_TOTAL = 3000  # open_checkout's default cart: 2 x 15.00 EUR


# -- helpers ----------------------------------------------------------------------------


def intent_json(pi_id: str, amount: int = CART_TOTAL, **fields: Any) -> dict[str, Any]:
    """A PaymentIntent as Stripe returns it on creation."""
    body = {
        "id": pi_id,
        "object": "payment_intent",
        "client_secret": f"{pi_id}_secret_abc",
        "amount": amount,
        "currency": "eur",
        "status": "requires_payment_method",
        "capture_method": "automatic",
        "metadata": {},
    }
    body.update(fields)
    return body


def store(app: Flask) -> Any:
    """The app's embedded store."""
    return app.extensions["psp_connector"].platform


def stripe_calls(mock: responses.RequestsMock) -> list[str]:
    """URLs of every request that went (or tried to go) to Stripe."""
    return [call.request.url for call in mock.calls if call.request.url.startswith(STRIPE_API)]




def assert_upstream_error(response: Any, status: int, code: str, *, field: str | None = None) -> dict[str, Any]:
    """Assert the upstream error body ``{message, statusCode, errors: [{code, message}]}``."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) >= {"message", "statusCode", "errors"}
    assert body["statusCode"] == status
    assert isinstance(body["errors"], list) and body["errors"]
    for error in body["errors"]:
        assert isinstance(error["code"], str) and error["code"]
        assert isinstance(error["message"], str) and error["message"]
    assert body["message"] == body["errors"][0]["message"]
    assert body["errors"][0]["code"] == code, body
    if field is not None:
        assert body["errors"][0].get("field") == field, body
    return body


@dataclass(frozen=True)
class Checkout:
    """A cart with an open checkout session and one payment created by ``GET /payments``."""

    cart_id: str
    session_id: str
    payment_id: str
    pi_id: str

    @property
    def headers(self) -> dict[str, str]:
        """The browser's session header for this checkout."""
        return {"X-Session-Id": self.session_id}


def start_checkout(app: Flask, stripe_mock: responses.RequestsMock, pi_id: str = "pi_checkout1") -> Checkout:
    """Open a checkout and create its payment through the API, with the PaymentIntent pinned."""
    stripe_mock.add(responses.POST, PI_URL, json=intent_json(pi_id))
    cart_id, session_id = open_checkout(app)
    response = app.test_client().get("/payments", headers={"X-Session-Id": session_id})
    assert response.status_code == 200, response.get_data(as_text=True)
    payment_id = response.get_json()["paymentReference"]
    assert [p.id for p in store(app).payments_of_cart(cart_id)] == [payment_id]
    return Checkout(cart_id, session_id, payment_id, pi_id)


def authorize(app: Flask, checkout: Checkout, *, charged: bool = False) -> Payment:
    """Record the payment as authorized (and optionally charged) for the full cart total."""
    money = Money.of(CART_TOTAL, "EUR")
    drafts = [TransactionDraft(T.AUTHORIZATION, S.SUCCESS, money, checkout.pi_id)]
    if charged:
        drafts.append(TransactionDraft(T.CHARGE, S.SUCCESS, money, checkout.pi_id))
    return store(app).apply_transactions(checkout.payment_id, drafts)


@pytest.fixture
def checkout(app: Flask, stripe_mock: responses.RequestsMock) -> Checkout:
    """A checkout whose payment exists; the Stripe calls made to create it are forgotten."""
    created = start_checkout(app, stripe_mock)
    stripe_mock.calls.reset()
    return created


# -- POST /confirmPayments/<id> -----------------------------------------------------------

CONFIRM_VALIDATION = [
    pytest.param({}, "RequiredField", "paymentIntent", id="no-body"),
    pytest.param({"json": {}}, "RequiredField", "paymentIntent", id="empty-object"),
    pytest.param({"json": {"paymentIntent": 123}}, "InvalidField", "paymentIntent", id="number"),
    pytest.param({"json": {"paymentIntent": None}}, "InvalidField", "paymentIntent", id="null"),
    pytest.param({"json": {"paymentIntent": ["pi_checkout1"]}}, "InvalidField", "paymentIntent", id="list"),
    pytest.param({"json": {"paymentIntent": True}}, "InvalidField", "paymentIntent", id="bool"),
    pytest.param({"json": {"paymentIntent": "ch_checkout1"}}, "InvalidField", "paymentIntent", id="not-pi"),
    pytest.param({"json": {"paymentIntent": "pi_"}}, "InvalidField", "paymentIntent", id="bare-prefix"),
    pytest.param({"json": {"paymentIntent": "pi_x/../../v1/refunds"}}, "InvalidField", "paymentIntent", id="path"),
    pytest.param({"json": {"paymentIntent": "pi_" + "a" * 251}}, "InvalidField", "paymentIntent", id="too-long"),
    pytest.param({"json": {"paymentIntent": "pi_checkout1", "amount": 1}}, "InvalidField", "amount", id="extra"),
    pytest.param(
        {"json": {"paymentIntent": "pi_checkout1", "confirmationToken": 7}}, "InvalidField", "confirmationToken",
        id="token-type",
    ),
    pytest.param({"data": "paymentIntent=pi_1", "content_type": "application/json"}, "InvalidJsonInput", None,
                 id="not-json"),
    pytest.param({"data": '{"paymentIntent": "pi_1"', "content_type": "application/json"}, "InvalidJsonInput",
                 None, id="truncated-json"),
    pytest.param({"json": ["pi_checkout1"]}, "InvalidJsonInput", None, id="json-array"),
    pytest.param({"json": "pi_checkout1"}, "InvalidJsonInput", None, id="json-string"),
]


@pytest.mark.parametrize(("request_kwargs", "code", "field"), CONFIRM_VALIDATION)
def test_confirm_payment_refuses_malformed_bodies(
    app: Flask, client: Any, stripe_mock: responses.RequestsMock, checkout: Checkout,
    request_kwargs: dict[str, Any], code: str, field: str | None,
) -> None:
    before = store(app).payments_of_cart(checkout.cart_id)
    response = client.post(f"/confirmPayments/{checkout.payment_id}", headers=checkout.headers, **request_kwargs)
    assert_upstream_error(response, 400, code, field=field)
    assert store(app).payments_of_cart(checkout.cart_id) == before
    assert stripe_calls(stripe_mock) == []


def test_confirm_payment_validation_reports_every_problem(app: Flask, client: Any, checkout: Checkout) -> None:
    response = client.post(
        f"/confirmPayments/{checkout.payment_id}", headers=checkout.headers,
        json={"paymentIntent": 1, "confirmationToken": 2, "extra": 3},
    )
    body = assert_upstream_error(response, 400, "InvalidField")
    assert {error["field"] for error in body["errors"]} == {"paymentIntent", "confirmationToken", "extra"}


def test_confirm_payment_checks_the_session_before_the_body(
    app: Flask, client: Any, stripe_mock: responses.RequestsMock, checkout: Checkout
) -> None:
    response = client.post(f"/confirmPayments/{checkout.payment_id}", json={})
    assert_upstream_error(response, 401, "invalid_token")
    assert stripe_calls(stripe_mock) == []


def test_confirm_payment_of_an_unknown_payment_is_rejected_without_calling_stripe(
    app: Flask, client: Any, stripe_mock: responses.RequestsMock, checkout: Checkout
) -> None:
    before = store(app).payments_of_cart(checkout.cart_id)
    response = client.post(
        "/confirmPayments/00000000-0000-0000-0000-000000000000", headers=checkout.headers,
        json={"paymentIntent": checkout.pi_id},
    )
    assert response.status_code == 400
    assert response.get_json() == {"outcome": "rejected", "error": "Payment confirmation failed"}
    assert store(app).payments_of_cart(checkout.cart_id) == before
    assert stripe_calls(stripe_mock) == []


def test_confirm_payment_of_another_carts_payment_is_rejected_and_writes_nothing(
    app: Flask, client: Any, stripe_mock: responses.RequestsMock, checkout: Checkout
) -> None:
    # Even a PaymentIntent that Stripe would call paid must not help: Stripe is not asked.
    stripe_mock.add(
        responses.GET, f"{PI_URL}/{checkout.pi_id}",
        json=intent_json(checkout.pi_id, status="succeeded", amount_received=CART_TOTAL,
                         metadata={"ct_payment_id": checkout.payment_id}),
    )
    other_cart, other_session = open_checkout(app)
    victim_before = store(app).payments_of_cart(checkout.cart_id)

    response = client.post(
        f"/confirmPayments/{checkout.payment_id}", headers={"X-Session-Id": other_session},
        json={"paymentIntent": checkout.pi_id},
    )

    assert response.status_code == 400
    assert response.get_json() == {"outcome": "rejected", "error": "Payment confirmation failed"}
    assert store(app).payments_of_cart(checkout.cart_id) == victim_before
    assert store(app).payments_of_cart(other_cart) == []
    assert stripe_calls(stripe_mock) == []


# -- body size limit ------------------------------------------------------------------------

LIMIT = 1024


def _padded_body(size: int) -> str:
    """A JSON object of exactly ``size`` bytes (an invalid PaymentIntent id as padding)."""
    skeleton = '{"paymentIntent": "pi_%s"}'
    return skeleton % ("a" * (size - len(skeleton % "")))


@pytest.mark.parametrize(
    "path", ["/confirmPayments/{payment_id}", "/payments", "/operations/payment-intents/{payment_id}"]
)
def test_a_body_over_the_limit_is_refused_with_413_and_writes_nothing(
    make_app: Any, stripe_mock: responses.RequestsMock, path: str
) -> None:
    app = make_app(PSP_MAX_BODY_BYTES=LIMIT)
    checkout = start_checkout(app, stripe_mock)
    stripe_mock.calls.reset()
    before = store(app).payments_of_cart(checkout.cart_id)
    headers = {**checkout.headers, **bearer(app), "Content-Type": "application/json"}
    url = path.format(payment_id=checkout.payment_id)

    response = app.test_client().post(url, headers=headers, data=_padded_body(LIMIT + 1))

    assert_upstream_error(response, 413, "RequestEntityTooLarge")
    assert store(app).payments_of_cart(checkout.cart_id) == before
    assert stripe_calls(stripe_mock) == []


def test_a_body_of_exactly_the_limit_is_read_and_validated(
    make_app: Any, stripe_mock: responses.RequestsMock
) -> None:
    app = make_app(PSP_MAX_BODY_BYTES=LIMIT)
    checkout = start_checkout(app, stripe_mock)
    body = _padded_body(LIMIT)
    assert len(body.encode()) == LIMIT
    response = app.test_client().post(
        f"/confirmPayments/{checkout.payment_id}", headers=checkout.headers, data=body,
        content_type="application/json",
    )
    assert_upstream_error(response, 400, "InvalidField", field="paymentIntent")


# -- POST /payments -----------------------------------------------------------------------

PAYMENTS_VALIDATION = [
    pytest.param({"json": {"amount": 1}}, "InvalidField", "amount", id="amount"),
    pytest.param({"json": {"amount": {"centAmount": 1, "currencyCode": "EUR"}}}, "InvalidField", "amount",
                 id="money-amount"),
    pytest.param({"json": {"centAmount": 1}}, "InvalidField", "centAmount", id="centAmount"),
    pytest.param({"json": {"paymentMethodOptions": {}, "currency": "usd"}}, "InvalidField", "currency",
                 id="currency"),
    pytest.param({"json": {"paymentMethodOptions": "card"}}, "InvalidField", "paymentMethodOptions",
                 id="options-type"),
    pytest.param({"json": ["amount", 1]}, "InvalidJsonInput", None, id="json-list"),
    pytest.param({"json": 100}, "InvalidJsonInput", None, id="json-number"),
    pytest.param({"data": "{amount: 1}", "content_type": "application/json"}, "InvalidJsonInput", None,
                 id="not-json"),
]


@pytest.mark.parametrize(("request_kwargs", "code", "field"), PAYMENTS_VALIDATION)
def test_post_payments_refuses_unknown_fields_and_wrong_types(
    app: Flask, client: Any, stripe_mock: responses.RequestsMock,
    request_kwargs: dict[str, Any], code: str, field: str | None,
) -> None:
    cart_id, session_id = open_checkout(app)
    response = client.post("/payments", headers={"X-Session-Id": session_id}, **request_kwargs)
    assert_upstream_error(response, 400, code, field=field)
    assert store(app).payments_of_cart(cart_id) == []
    assert stripe_calls(stripe_mock) == []


@pytest.mark.parametrize(
    "request_kwargs",
    [
        pytest.param({}, id="no-body"),
        pytest.param({"json": {}}, id="empty-object"),
        pytest.param({"json": {"paymentMethodOptions": {"card": {}}}}, id="options"),
    ],
)
def test_post_payments_body_is_optional(
    app: Flask, client: Any, stripe_mock: responses.RequestsMock, request_kwargs: dict[str, Any]
) -> None:
    stripe_mock.add(responses.POST, PI_URL, json=intent_json("pi_optional"))
    cart_id, session_id = open_checkout(app)
    response = client.post("/payments", headers={"X-Session-Id": session_id}, **request_kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["clientSecret"] == "pi_optional_secret_abc"
    [payment] = store(app).payments_of_cart(cart_id)
    assert payment.amount_planned == Money.of(CART_TOTAL, "EUR")
    assert len(stripe_calls(stripe_mock)) == 1


# -- POST /operations/payment-intents/<id> -------------------------------------------------

CANCEL = {"action": "cancelPayment"}


def _amount(cent_amount: Any = 100, currency_code: Any = "EUR") -> dict[str, Any]:
    return {"centAmount": cent_amount, "currencyCode": currency_code}


def _capture(**amount: Any) -> dict[str, Any]:
    return {"actions": [{"action": "capturePayment", "amount": _amount(**amount)}]}


OPERATION_VALIDATION = [
    pytest.param({"json": {}}, "RequiredField", "actions", id="missing-actions"),
    pytest.param({}, "RequiredField", "actions", id="no-body"),
    pytest.param({"json": {"actions": None}}, "InvalidField", "actions", id="null-actions"),
    pytest.param({"json": {"actions": CANCEL}}, "InvalidField", "actions", id="actions-object"),
    pytest.param({"json": {"actions": []}}, "InvalidField", "actions", id="empty-actions"),
    pytest.param({"json": {"actions": [CANCEL, CANCEL]}}, "InvalidField", "actions", id="two-actions"),
    pytest.param({"json": {"actions": [{}]}}, "RequiredField", "actions.0.action", id="no-action-name"),
    pytest.param({"json": {"actions": [{"action": "chargePayment"}]}}, "InvalidField", "actions.0.action",
                 id="unknown-action"),
    pytest.param({"json": {"actions": [{"action": "capturePayment"}]}}, "RequiredField", "actions.0.amount",
                 id="capture-without-amount"),
    pytest.param({"json": {"actions": [{"action": "refundPayment"}]}}, "RequiredField", "actions.0.amount",
                 id="refund-without-amount"),
    pytest.param({"json": _capture(cent_amount=10.5)}, "InvalidField", "actions.0.amount.centAmount", id="float"),
    pytest.param({"json": _capture(cent_amount="10")}, "InvalidField", "actions.0.amount.centAmount", id="string"),
    pytest.param({"json": _capture(cent_amount=True)}, "InvalidField", "actions.0.amount.centAmount", id="bool"),
    pytest.param({"json": _capture(cent_amount=None)}, "InvalidField", "actions.0.amount.centAmount", id="null"),
    pytest.param({"json": _capture(cent_amount=-1)}, "InvalidField", "actions.0.amount.centAmount",
                 id="negative"),
    pytest.param({"json": _capture(cent_amount=10**15)}, "InvalidField", "actions.0.amount.centAmount",
                 id="huge"),
    pytest.param({"json": _capture(currency_code="EURO")}, "InvalidField", "actions.0.amount.currencyCode",
                 id="currency-EURO"),
    pytest.param({"json": _capture(currency_code=978)}, "InvalidField", "actions.0.amount.currencyCode",
                 id="currency-number"),
    pytest.param({"json": {"actions": [{"action": "capturePayment", "amount": {"centAmount": 100}}]}},
                 "RequiredField", "actions.0.amount.currencyCode", id="currency-missing"),
    pytest.param({"json": {**_capture(), "force": True}}, "InvalidField", "force", id="extra-field"),
    pytest.param({"json": {"actions": [{**CANCEL, "amount": _amount(), "note": "x"}]}}, "InvalidField",
                 "actions.0.note", id="extra-action-field"),
    pytest.param({"json": {"actions": [CANCEL], "merchantReference": "r" * 257}}, "InvalidField",
                 "merchantReference", id="long-reference"),
    pytest.param({"data": "actions=cancelPayment", "content_type": "application/json"}, "InvalidJsonInput",
                 None, id="not-json"),
    pytest.param({"json": [CANCEL]}, "InvalidJsonInput", None, id="json-list"),
]


@pytest.mark.parametrize(("request_kwargs", "code", "field"), OPERATION_VALIDATION)
def test_operations_refuse_malformed_bodies(
    app: Flask, client: Any, stripe_mock: responses.RequestsMock, checkout: Checkout,
    request_kwargs: dict[str, Any], code: str, field: str | None,
) -> None:
    before = authorize(app, checkout)
    response = client.post(
        f"/operations/payment-intents/{checkout.payment_id}", headers=bearer(app), **request_kwargs
    )
    assert_upstream_error(response, 400, code, field=field)
    assert store(app).payments_of_cart(checkout.cart_id) == [before]
    assert stripe_calls(stripe_mock) == []


def test_operations_check_the_token_before_the_body(
    app: Flask, client: Any, stripe_mock: responses.RequestsMock, checkout: Checkout
) -> None:
    response = client.post(f"/operations/payment-intents/{checkout.payment_id}", json={})
    assert_upstream_error(response, 401, "access_denied")
    assert stripe_calls(stripe_mock) == []


def test_operation_on_an_unknown_payment_is_404(
    app: Flask, client: Any, stripe_mock: responses.RequestsMock, checkout: Checkout
) -> None:
    response = client.post(
        "/operations/payment-intents/no-such-payment", headers=bearer(app), json={"actions": [CANCEL]}
    )
    assert_upstream_error(response, 404, "ResourceNotFound")
    assert stripe_calls(stripe_mock) == []


@pytest.mark.parametrize(
    ("charged", "body", "message_part"),
    [
        pytest.param(False, _capture(currency_code="USD"), "currency", id="capture-other-currency"),
        pytest.param(True, {"actions": [{"action": "refundPayment", "amount": _amount(100, "GBP")}]}, "currency",
                     id="refund-other-currency"),
        pytest.param(False, _capture(cent_amount=CART_TOTAL + 1), "capturable", id="capture-too-much"),
        pytest.param(False, _capture(cent_amount=0), "positive", id="capture-zero"),
        pytest.param(True, _capture(cent_amount=1), "capturable", id="capture-after-charge"),
        pytest.param(True, {"actions": [{"action": "refundPayment", "amount": _amount(CART_TOTAL + 1)}]},
                     "refundable", id="refund-too-much"),
        pytest.param(False, {"actions": [{"action": "refundPayment", "amount": _amount(1)}]}, "refundable",
                     id="refund-uncharged"),
        pytest.param(True, {"actions": [CANCEL]}, "refund it instead", id="cancel-charged"),
    ],
)
def test_operations_beyond_the_payments_state_are_invalid_before_stripe(
    app: Flask, client: Any, stripe_mock: responses.RequestsMock, checkout: Checkout,
    charged: bool, body: dict[str, Any], message_part: str,
) -> None:
    before = authorize(app, checkout, charged=charged)
    response = client.post(f"/operations/payment-intents/{checkout.payment_id}", headers=bearer(app), json=body)
    error = assert_upstream_error(response, 400, "InvalidOperation")
    assert message_part in error["message"]
    assert store(app).payments_of_cart(checkout.cart_id) == [before]
    assert stripe_calls(stripe_mock) == []


def test_capture_refusal_names_the_capturable_amount(app: Flask, client: Any, checkout: Checkout) -> None:
    authorize(app, checkout)
    response = client.post(
        f"/operations/payment-intents/{checkout.payment_id}", headers=bearer(app),
        json=_capture(cent_amount=CART_TOTAL + 1),
    )
    assert assert_upstream_error(response, 400, "InvalidOperation")["errors"][0]["capturableAmount"] == CART_TOTAL


# -- a cart already paid in full --------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/config-element/payment"), ("get", "/config-element/expressCheckout"),
     ("get", "/payments"), ("post", "/payments")],
)
def test_a_cart_paid_in_full_cannot_be_paid_again(
    app: Flask, client: Any, stripe_mock: responses.RequestsMock, checkout: Checkout, method: str, path: str
) -> None:
    authorize(app, checkout)
    before = store(app).payments_of_cart(checkout.cart_id)
    response = getattr(client, method)(path, headers=checkout.headers)
    error = assert_upstream_error(response, 400, "InvalidOperation")
    assert error["message"] == "The cart has already been paid in full"
    assert error["errors"][0]["resource"] == checkout.cart_id
    assert store(app).payments_of_cart(checkout.cart_id) == before
    assert stripe_calls(stripe_mock) == []


def test_a_cart_whose_payment_was_only_created_is_not_paid(
    app: Flask, client: Any, stripe_mock: responses.RequestsMock, checkout: Checkout
) -> None:
    """Control for the test above: an unconfirmed payment does not count as paid."""
    response = client.get("/config-element/payment", headers=checkout.headers)
    assert response.status_code == 200
    assert response.get_json()["cartInfo"] == {"amount": CART_TOTAL, "currency": "EUR"}
    assert stripe_calls(stripe_mock) == []

"""Payment flows, behaviour rules and the Stripe Tax hook, against the local Stripe double.

Each cart is paid through the processor routes; what reached Stripe is read back from
the double. ``test_commercetools_behavior_rules`` runs every test here on commercetools.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
import requests
import stripe
from flask import Flask

from flask_psp_connector import LineItemDraft
from flask_psp_connector.errors import ConfigurationError
from flask_psp_connector.settings import load_settings
from tests.conftest import SHIPPING

RULES = json.dumps({
    "MX": {"captureMethod": "manual"},
    "FR": {"collectBillingAddress": "never", "captureMethod": "automatic_async"},
    "DE": {"captureMethod": "manual", "setupFutureUsage": "none"},
    "store-ca": {"flowType": "pi_first"},
})


@pytest.fixture
def shop_app(make_app: Any, stripe_double: str) -> Flask:
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    return make_app(STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card",
                    STRIPE_PAYMENT_BEHAVIOR_RULES=RULES,
                    STRIPE_BEHAVIOR_PAYMENT_ELEMENT='{"layout":"accordion","readOnly":"yes","paymentMethodTypes":["card"]}')


def checkout(app: Flask, **cart: Any) -> str:
    store = app.extensions["psp_connector"].platform
    cart.setdefault("shipping_address", SHIPPING)
    created = store.create_cart("EUR", line_items=[LineItemDraft("tee-blue", "Blue T-shirt", 2, 1500)],
                                customer_email="jane@example.test", **cart)
    return store.open_session(created.id, merchant_return_url="https://shop.example.test/return").id


def element_config(app: Flask, session_id: str) -> dict[str, Any]:
    response = app.test_client().get("/config-element/payment", headers={"X-Session-Id": session_id})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def pay(app: Flask, session_id: str) -> dict[str, Any]:
    response = app.test_client().get("/payments", headers={"X-Session-Id": session_id})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def intent_of(double: stripe.StripeClient, body: dict[str, Any]) -> Any:
    return double.v1.payment_intents.retrieve(body["clientSecret"].split("_secret_")[0])


def test_without_a_matching_rule_the_settings_apply(shop_app, stripe_double_client) -> None:
    session_id = checkout(shop_app, shipping_address=replace(SHIPPING, country="NL"))
    config = element_config(shop_app, session_id)
    assert (config["captureMethod"], config["collectBillingAddress"], config["flowType"]) == ("automatic", "auto", "deferred")
    assert json.loads(config["paymentElementOptions"]) == {"layout": "accordion"}  # invalid and unsupported keys dropped
    body = pay(shop_app, session_id)
    assert "billingAddress" not in body
    assert intent_of(stripe_double_client, body).capture_method == "automatic"


def test_the_cart_country_rule_wins_over_the_addresses(shop_app, stripe_double_client) -> None:
    session_id = checkout(shop_app, country="MX", billing_address=replace(SHIPPING, country="FR"))
    assert element_config(shop_app, session_id)["captureMethod"] == "manual"
    assert intent_of(stripe_double_client, pay(shop_app, session_id)).capture_method == "manual"


def test_the_billing_country_comes_before_the_shipping_country(shop_app, stripe_double_client) -> None:
    session_id = checkout(shop_app, billing_address=replace(SHIPPING, country="FR"), shipping_address=SHIPPING)
    config = element_config(shop_app, session_id)
    assert (config["captureMethod"], config["collectBillingAddress"]) == ("automatic_async", "never")
    body = pay(shop_app, session_id)
    assert json.loads(body["billingAddress"])["address"]["country"] == "FR"
    assert intent_of(stripe_double_client, body).capture_method == "automatic_async"


def test_the_shipping_country_then_the_store_key(shop_app, stripe_double_client) -> None:
    by_shipping = checkout(shop_app, shipping_address=SHIPPING, store_key="store-ca")
    assert element_config(shop_app, by_shipping)["captureMethod"] == "manual"
    assert element_config(shop_app, by_shipping)["flowType"] == "deferred"
    by_store = checkout(shop_app, shipping_address=replace(SHIPPING, country="CA"), store_key="store-ca")
    config = element_config(shop_app, by_store)
    assert (config["flowType"], config["captureMethod"]) == ("pi_first", "automatic")


def test_pi_first_omits_setup_future_usage(make_app, stripe_double, stripe_double_client) -> None:
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    app = make_app(STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card", STRIPE_PAYMENT_FLOW="pi_first",
                   STRIPE_PAYMENT_INTENT_SETUP_FUTURE_USAGE="off_session")
    store = app.extensions["psp_connector"].platform
    customer = store.create_customer("ana@example.test", "Ana Lima")
    session_id = checkout(app, customer_id=customer.id)
    config = element_config(app, session_id)
    assert config["flowType"] == "pi_first" and "setupFutureUsage" not in config
    intent = intent_of(stripe_double_client, pay(app, session_id))
    assert intent.setup_future_usage is None and intent.customer  # the customer is still attached


def test_a_single_tax_calculation_is_hooked_into_the_payment_intent(shop_app, stripe_double_client) -> None:
    session_id = checkout(shop_app, tax_calculation_references=["taxcalc_1Abc"])
    first = pay(shop_app, session_id)
    assert intent_of(stripe_double_client, first).hooks["inputs"]["tax"]["calculation"] == "taxcalc_1Abc"
    assert pay(shop_app, session_id)["paymentReference"] == first["paymentReference"]  # a retry: the same one


def test_several_or_no_tax_calculations_hook_nothing(shop_app, stripe_double_client) -> None:
    several = checkout(shop_app, tax_calculation_references=["taxcalc_1", "taxcalc_2"])
    assert intent_of(stripe_double_client, pay(shop_app, several)).to_dict().get("hooks") is None
    none = checkout(shop_app)
    assert intent_of(stripe_double_client, pay(shop_app, none)).to_dict().get("hooks") is None


def test_a_new_tax_calculation_gets_a_new_payment_intent(shop_app, stripe_double_client) -> None:
    store = shop_app.extensions["psp_connector"].platform
    session_id = checkout(shop_app, tax_calculation_references=["taxcalc_old"])
    first = pay(shop_app, session_id)
    cart_id = store.get_payment(first["paymentReference"]).cart_id
    store.update_cart(cart_id, tax_calculation_references=["taxcalc_new"])
    assert store.get_cart(cart_id).tax_calculation_references == ("taxcalc_new",)
    second = pay(shop_app, session_id)
    assert second["paymentReference"] != first["paymentReference"]
    assert intent_of(stripe_double_client, second).hooks["inputs"]["tax"]["calculation"] == "taxcalc_new"


@pytest.mark.parametrize("rules, message", [
    ("{not json", "malformed JSON"),
    ('["MX"]', "must be a JSON object"),
    ('{"MX": "manual"}', "rule 'MX' must be an object"),
    ('{"MX": {"capture": "manual"}}', "unknown field 'capture'"),
    ('{"MX": {"flowType": "later"}}', "flowType 'later' is not one of deferred, pi_first"),
])
def test_malformed_rules_stop_the_app_naming_the_key(rules: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings({"STRIPE_PAYMENT_BEHAVIOR_RULES": rules}, testing=True)
    assert raised.value.key == "STRIPE_PAYMENT_BEHAVIOR_RULES" and message in str(raised.value)


def test_an_unknown_flow_or_malformed_element_options_stop_the_app() -> None:
    with pytest.raises(ConfigurationError, match="STRIPE_PAYMENT_FLOW"):
        load_settings({"STRIPE_PAYMENT_FLOW": "intent_first"}, testing=True)
    with pytest.raises(ConfigurationError, match="STRIPE_BEHAVIOR_PAYMENT_ELEMENT"):
        load_settings({"STRIPE_BEHAVIOR_PAYMENT_ELEMENT": "[1]"}, testing=True)

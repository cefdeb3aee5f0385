"""The saved-payment-method suite of the embedded store, run on commercetools.

The records are commercetools Payment Methods (the fake project implements that API as
documented); the Stripe customer id is in the customer's ``stripeConnector_stripeCustomerId``.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from flask import Flask

from tests.commercetools_twin import double_passes_through, run_here  # noqa: F401  (autouse fixture)
from tests.platforms.commercetools.test_commercetools_fake import FakeCommercetools, commercetools, make_app  # noqa: F401  (fixtures)
from tests.processor import test_saved_methods_flow as embedded
from tests.webhook_support import SECRETS


@pytest.fixture
def shop_app(make_app: Any, stripe_double: str) -> Flask:  # noqa: F811
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    return make_app(STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card",
                    STRIPE_WEBHOOK_SIGNING_SECRET=SECRETS[0], PAYMENT_INTERFACE="stripe-eu",
                    STRIPE_SAVED_PAYMENT_METHODS_CONFIG='{"payment_method_save":"enabled","payment_method_save_usage":"off_session"}')


run_here(embedded, globals())


def test_a_saved_card_is_a_payment_method_of_the_customer(shop_app, commercetools: FakeCommercetools,  # noqa: F811
                                                           stripe_double_client) -> None:
    jane = embedded.store(shop_app).create_customer("jane@example.test", "Jane Doe")
    paid = embedded.pay(shop_app, stripe_double_client, embedded.checkout(shop_app, jane.id))
    [stored] = commercetools.payment_methods.values()
    assert stored["customer"] == {"typeId": "customer", "id": jane.id}
    assert stored["token"] == {"value": paid["payment_method"]}
    assert (stored["paymentInterface"], stored["method"], stored["paymentMethodStatus"]) == ("stripe-eu", "card", "Active")
    fields = commercetools.customers[jane.id]["custom"]["fields"]
    assert fields["stripeConnector_stripeCustomerId"] == paid["customer"]


def test_payment_methods_of_other_interfaces_or_inactive_ones_are_not_listed(shop_app, commercetools) -> None:  # noqa: F811
    jane = embedded.store(shop_app).create_customer("jane@example.test")
    ours = embedded.store(shop_app).record_saved_payment_method(jane.id, "pm_1", "visa", "4242", 12, 2030, method="card")
    for extra in ({"paymentInterface": "adyen", "token": {"value": "tok_a"}},
                  {"paymentInterface": "stripe-eu", "token": {"value": "pm_2"}, "paymentMethodStatus": "Inactive"}):
        commercetools._create_payment_method({"customer": {"typeId": "customer", "id": jane.id}, "method": "card", **extra})
    assert embedded.store(shop_app).saved_payment_methods(jane.id) == [ours]
    adyen = next(m for m in commercetools.payment_methods.values() if m["paymentInterface"] == "adyen")
    assert embedded.store(shop_app).remove_saved_payment_method(jane.id, adyen["id"]) is None
    assert adyen["id"] in commercetools.payment_methods

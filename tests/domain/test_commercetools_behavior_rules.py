"""The behaviour-rule and Stripe Tax suite of the embedded store, run on commercetools.

Carts come from the fake project (``country``, ``store.key`` and the
``connectorStripeTax_calculationReferences`` custom field); Stripe is the local double.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from flask import Flask

from tests.commercetools_twin import double_passes_through, run_here  # noqa: F401  (autouse fixture)
from tests.domain import test_behavior_rules as embedded
from tests.platforms.commercetools.test_commercetools_fake import commercetools, make_app  # noqa: F401  (fixtures)


@pytest.fixture
def shop_app(make_app: Any, stripe_double: str) -> Flask:  # noqa: F811
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    return make_app(STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card",
                    STRIPE_PAYMENT_BEHAVIOR_RULES=embedded.RULES,
                    STRIPE_BEHAVIOR_PAYMENT_ELEMENT='{"layout":"accordion","readOnly":"yes","paymentMethodTypes":["card"]}')


run_here(embedded, globals())

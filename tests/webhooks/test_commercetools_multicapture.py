"""The multicapture suite of the embedded store, run on commercetools (fake project, Stripe double)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from flask import Flask

from tests.commercetools_twin import double_passes_through, run_here  # noqa: F401  (autouse fixture)
from tests.platforms.commercetools.test_commercetools_fake import commercetools, make_app  # noqa: F401  (fixtures)
from tests.webhook_support import SECRETS
from tests.webhooks import test_multicapture as embedded


@pytest.fixture
def shop_app(make_app: Any, stripe_double: str) -> Flask:  # noqa: F811
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    return make_app(STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card", STRIPE_CAPTURE_METHOD="manual",
                    STRIPE_ENABLE_MULTI_OPERATIONS=True, STRIPE_WEBHOOK_SIGNING_SECRET=SECRETS[0])


run_here(embedded, globals())

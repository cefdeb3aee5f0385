"""The reconciliation suite of the embedded store, run on commercetools (fake project, Stripe double)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses
from flask import Flask

from . import test_reconcile as embedded
from .test_commercetools_fake import commercetools, make_app  # noqa: F401  (fixtures)
from .webhook_support import SECRETS


@pytest.fixture(autouse=True)
def double_passes_through(stripe_mock: responses.RequestsMock, stripe_double: str) -> Iterator[None]:
    """The fake project answers on `responses`; calls to the Stripe double go through."""
    stripe_mock.add_passthru(stripe_double)
    yield


@pytest.fixture
def shop_app(make_app: Any, stripe_double: str) -> Flask:  # noqa: F811
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    return make_app(STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card",
                    STRIPE_ENABLE_MULTI_OPERATIONS=True, STRIPE_WEBHOOK_SIGNING_SECRET=SECRETS[0])


globals().update({name: getattr(embedded, name) for name in dir(embedded) if name.startswith("test_")})

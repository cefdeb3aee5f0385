"""The signals' suite of the embedded store, run on commercetools (the fake project)."""

from __future__ import annotations

import pytest

from tests.platforms.commercetools.test_commercetools_fake import client, commercetools, make_app  # noqa: F401  (fixtures)
from tests.webhook_support import SECRETS
from tests.webhooks import test_signals as embedded
from tests.webhooks.test_signals import received  # noqa: F401  (fixture)

#: Embedded-store tests that do not apply as written, and why.
NOT_HERE = {
    "test_the_readme_example_runs_as_written": "the README's app uses the embedded store",
    "test_a_gateways_payment_intent_sends_its_signal_with_no_payment_once_claimed": "the gateway keeps its answers "
    "in an embedded store; test_signals covers it",
}

globals().update({name: getattr(embedded, name) for name in dir(embedded)
                  if name.startswith("test_") and name not in NOT_HERE})


@pytest.fixture
def app(make_app):
    return make_app(STRIPE_WEBHOOK_SIGNING_SECRET=SECRETS[0])

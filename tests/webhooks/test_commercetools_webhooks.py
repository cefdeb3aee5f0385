"""The webhook's behavioural suite of the embedded store, run on commercetools.

Tests of ``test_webhooks`` run here unchanged against the fake project, except those that
read the embedded store's tables or count every outgoing request (they are listed below
with their commercetools counterpart in ``test_commercetools_adapter``).
"""

from __future__ import annotations

import pytest

from tests.platforms.commercetools.test_commercetools_fake import client, commercetools, make_app  # noqa: F401  (fixtures)
from tests.webhook_support import SECRETS
from tests.webhooks import test_webhooks as embedded

#: Embedded-store tests that do not apply as written, and why.
NOT_HERE = {
    "test_missing_signature_is_401_and_writes_nothing": "counts inbox rows in SQL",
    "test_refused_payloads_are_400_text_and_write_nothing": "counts inbox rows in SQL",
    "test_huge_body_is_413_and_writes_nothing": "counts inbox rows in SQL",
    "test_a_duplicate_event_has_no_effect": "counts inbox rows in SQL",
    "test_store_failure_mid_event_is_5xx_with_nothing_written_then_the_retry_succeeds": "breaks the SQL store",
    "test_stripe_unreachable_during_a_needed_look_up_is_5xx_then_retried": "counts inbox rows in SQL",
    "test_an_event_that_waited_for_the_payment_lock_sees_what_the_holder_wrote": "SQL row locks",
    "test_refunds_not_embedded_are_fetched": "expects Stripe's call to be the first request",
    "test_no_stripe_call_when_the_cart_has_an_address": "counts every request, commercetools' included",
    "test_succeeded_settles_and_places_the_order_in_the_events_one_transaction": "counts the SQL store's transactions",
}

globals().update({name: getattr(embedded, name) for name in dir(embedded)
                  if name.startswith("test_") and name not in NOT_HERE})


@pytest.fixture
def app(make_app):
    return make_app(STRIPE_WEBHOOK_SIGNING_SECRET=",".join(SECRETS))

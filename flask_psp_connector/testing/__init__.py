"""The Stripe API double: a local stand-in for api.stripe.com, for sandbox mode and tests.

It is localstripe (customers, payment methods, setup intents) with our additions, which
follow Stripe's documented behaviour for what the connector and the Stripe CLI's
fixtures use:

- :mod:`.payments`: PaymentIntents, with the outcomes of Stripe's documented test cards
  (:mod:`.cards`) decided here, on confirmation; :mod:`.charges`: the Charges and balance
  transactions they make; :mod:`.refunds`: Refunds and Disputes; :mod:`.methods` and
  :mod:`.params`: what they share;
- :mod:`.ledger`: the double's state, its Events and their signed delivery to webhook
  endpoints (``/v1/webhook_endpoints``) and to ``/_config/webhooks/<name>`` registrations;
- :mod:`.extras`: ephemeral keys, CustomerSessions, customer search;
- :mod:`.server`: the launcher, Idempotency-Key handling and the routes.

Never used with real keys: it runs on 127.0.0.1 and accepts any ``sk_test_`` key.
"""

from __future__ import annotations

from flask_psp_connector.testing.server import free_port, main, running_stripe_double

#: The sandbox's keys: any ``sk_test_`` key of 12+ characters works with the double (the
#: Stripe CLI refuses shorter ones).
SANDBOX_SECRET_KEY = "sk_test_sandbox_local"
SANDBOX_PUBLISHABLE_KEY = "pk_test_sandbox_local"

__all__ = ["SANDBOX_PUBLISHABLE_KEY", "SANDBOX_SECRET_KEY", "free_port", "main", "running_stripe_double"]

"""The processor routes' behavioural suite of the embedded store, run on commercetools.

Every test of ``test_checkout_pinned`` runs here unchanged against the fake project: same
Stripe requests pinned, same answers, same recorded transactions.
"""

from __future__ import annotations

from tests.platforms.commercetools.test_commercetools_fake import app, client, commercetools, make_app  # noqa: F401  (fixtures)
from tests.processor import test_checkout_pinned as embedded

globals().update({name: getattr(embedded, name) for name in dir(embedded) if name.startswith("test_")})

"""A minimal host app: registers the connector and opens a checkout for a sample cart.

``make run`` starts it on http://127.0.0.1:5000. Without ``STRIPE_SECRET_KEY`` it runs
in sandbox mode against a local Stripe double (no account, no internet needed).
"""

from __future__ import annotations

import os
from contextlib import ExitStack

from flask import Flask, url_for

from flask_psp_connector import LineItemDraft, PSPConnector
from flask_psp_connector.stripe_double import running_stripe_double

psp = PSPConnector()


def create_app(test_config: dict | None = None) -> Flask:
    """Build the example app; ``test_config`` overrides the configuration."""
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(MERCHANT_RETURN_URL="http://127.0.0.1:5000/")
    app.config.update(test_config or {})
    psp.init_app(app)

    @app.get("/")
    def start_checkout() -> dict:
        """Create a sample cart and a session; the enabler would use the session id."""
        cart = psp.platform.create_cart("EUR", line_items=[LineItemDraft("mug", "Mug", 2, 1250)])
        session = psp.platform.open_session(cart.id)
        return {
            "cartId": cart.id,
            "sessionId": session.id,
            "try": f"curl -H 'X-Session-Id: {session.id}' {url_for('processor.get_payments', _external=True)}",
        }

    return app


def main() -> None:
    """Run the example, starting the local Stripe double when no key is configured."""
    with ExitStack() as stack:
        if not os.environ.get("STRIPE_SECRET_KEY"):
            os.environ["STRIPE_API_BASE"] = stack.enter_context(running_stripe_double())
            os.environ["STRIPE_SECRET_KEY"] = "sk_test_sandbox"
            os.environ.setdefault("STRIPE_PAYMENT_METHOD_TYPES", "card")
            print("Sandbox mode: Stripe calls go to a local Stripe double.")
        create_app().run(host="127.0.0.1", port=int(os.environ.get("PORT", 5000)))


if __name__ == "__main__":
    main()

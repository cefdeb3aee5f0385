"""``python -m demo_shop`` (``make run``): the demo shop on http://127.0.0.1:5000.

``PORT`` changes the port. With Stripe test keys in the environment
(``STRIPE_SECRET_KEY`` and ``STRIPE_PUBLISHABLE_KEY``) the shop uses Stripe. Without them it
runs in sandbox mode: a local Stripe double (the ``sandbox`` extra), the sandbox
stand-in for Stripe.js, and the double's webhooks delivered to the shop, so a purchase
works end to end with no account and no internet.
"""

from __future__ import annotations

import logging
import os
from contextlib import ExitStack

from demo_shop import create_app
from demo_shop.log_redaction import RedactingFilter
from flask_psp_connector.sandbox import sandbox_config, trigger_command


def main() -> None:
    """Run the shop (in sandbox mode when no Stripe key is configured)."""
    port = int(os.environ.get("PORT", "5000"))
    url = f"http://127.0.0.1:{port}"
    config = {"SESSION_COOKIE_SECURE": False, "SHOP_LOCAL_RUN": True}  # plain http on the loopback
    with ExitStack() as stack:
        if not os.environ.get("STRIPE_SECRET_KEY"):
            given = os.environ.get("STRIPE_WEBHOOK_SIGNING_SECRET")
            config |= stack.enter_context(sandbox_config(url, name="demo_shop"))
            # Sandbox data is throwaway and served on the loopback only: a known password is fine.
            config.setdefault("SHOP_ADMIN_PASSWORD", os.environ.get("SHOP_ADMIN_PASSWORD") or "sandbox")
            api = config["STRIPE_API_BASE"]
            print(f"Sandbox mode: payments go to a local Stripe double at {api}. Back office: {url}/admin")
            origin = "from STRIPE_WEBHOOK_SIGNING_SECRET" if given else "generated; set STRIPE_WEBHOOK_SIGNING_SECRET to keep one"
            print(f"Webhook signing secret: {config['STRIPE_WEBHOOK_SIGNING_SECRET']} ({origin})")
            print(f"Send the shop a webhook with the Stripe CLI: {trigger_command(api)}", flush=True)
        # The development server logs request lines, and the return URL carries a client secret.
        logging.getLogger("werkzeug").addFilter(RedactingFilter())
        create_app(config).run(host="127.0.0.1", port=port, threaded=True)


if __name__ == "__main__":
    main()

"""``python -m flask_psp_connector.testing [--port 8420]``: the Stripe API double, with
what an app needs to use it printed first."""

from __future__ import annotations

import argparse
import sys

from flask_psp_connector.testing import SANDBOX_PUBLISHABLE_KEY
from flask_psp_connector.testing import SANDBOX_SECRET_KEY as SANDBOX_KEY


def run(argv: list[str] | None = None) -> None:
    """Print how to point an app and the Stripe CLI at the double, then serve it."""
    parser = argparse.ArgumentParser(prog="python -m flask_psp_connector.testing", description=__doc__)
    parser.add_argument("--port", type=int, default=8420)
    args = parser.parse_args(argv)
    try:
        import aiohttp  # noqa: F401
        import localstripe  # noqa: F401
    except ImportError:
        sys.exit("The Stripe API double needs the sandbox extra: pip install 'flask-psp-connector[sandbox]'")
    from flask_psp_connector.testing.server import main

    base = f"http://127.0.0.1:{args.port}"
    print(f"""Stripe API double on {base} (test data in memory only; Ctrl+C stops it).
Point your app at it:
  STRIPE_API_BASE={base}
  STRIPE_SECRET_KEY={SANDBOX_KEY}        (any sk_test_ key of 12+ characters works)
  STRIPE_PUBLISHABLE_KEY={SANDBOX_PUBLISHABLE_KEY}
Have it send your app's webhooks (prints the signing secret to set as STRIPE_WEBHOOK_SIGNING_SECRET):
  STRIPE_API_BASE={base} STRIPE_SECRET_KEY={SANDBOX_KEY} PSP_PUBLIC_URL=http://127.0.0.1:5000 \\
    flask --app yourapp psp post-deploy
Send an event with the Stripe CLI:
  stripe trigger payment_intent.succeeded --api-base {base} --api-key {SANDBOX_KEY}""", flush=True)
    main(["--port", str(args.port)])


if __name__ == "__main__":
    run()

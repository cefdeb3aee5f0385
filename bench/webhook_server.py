"""The app bench/webhooks.py serves with gunicorn: the connector plus a bare verifying route."""

from flask import Flask, Response, abort, request

from flask_psp_connector import PSPConnector
from flask_psp_connector.stripe.signature import WebhookSignatureError, verify_webhook


def create_app() -> Flask:
    """The connector (configured from the environment) and ``POST /bare``, which only
    verifies the signature and answers 200: the ceiling the webhook is compared with."""
    app = Flask("webhook_bench")
    PSPConnector(app)
    secrets = app.extensions["psp_connector"].settings["STRIPE_WEBHOOK_SIGNING_SECRET"]

    @app.post("/bare")
    def bare() -> Response:
        try:
            verify_webhook(request.get_data(), request.headers.get("Stripe-Signature", ""), secrets)
        except WebhookSignatureError:
            abort(400)
        return Response(status=200)

    return app

"""``POST /stripe/webhooks``: Stripe's signed events, verified on the raw body."""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, request

from flask_psp_connector.errors import AuthError, PSPError
from flask_psp_connector.http.errors import UpstreamErrors
from flask_psp_connector.http.openapi import ApiBlueprint
from flask_psp_connector.observability import telemetry
from flask_psp_connector.state import connector_state
from flask_psp_connector.stripe.signature import WebhookSignatureError, verify_webhook
from flask_psp_connector.webhooks.validation import event_problem

log = logging.getLogger("flask_psp_connector.webhooks.events")


def webhooks_blueprint() -> ApiBlueprint:
    """A new blueprint holding the webhook route, its documentation and its error handlers."""
    blp = ApiBlueprint("webhooks", __name__, description="Stripe webhook events")
    documented = (
        blp.route("/stripe/webhooks", methods=["POST"]),
        blp.doc(
            requestBody={"content": {"application/json": {"schema": {"type": "object"}}}},
            parameters=[{"in": "header", "name": "Stripe-Signature", "required": True, "schema": {"type": "string"}}],
        ),
        blp.response(200, description="The event's effect is stored (or it was a duplicate, not ours, or malformed)"),
        blp.alt_response(400, description="Bad signature, expired timestamp, or not a Stripe event (text)"),
        blp.alt_response(401, description="No Stripe-Signature header"),
        blp.alt_response(503, description="Transient failure: Stripe will retry"),
    )
    view: Any = stripe_webhook
    for decorate in reversed(documented):
        view = decorate(view)
    UpstreamErrors().install(blp)
    return blp


def stripe_webhook() -> Response:
    """Apply a Stripe event exactly once; answers 2xx only once its effect is stored."""
    header = request.headers.get("Stripe-Signature")
    if not header:
        raise AuthError("Stripe signature is not valid")
    state = connector_state()
    secrets = state.settings["STRIPE_WEBHOOK_SIGNING_SECRET"]
    if not secrets:
        # Answer 5xx, not 400: Stripe keeps retrying until the secret is configured.
        raise PSPError("STRIPE_WEBHOOK_SIGNING_SECRET is not configured.", status=503, code="ServiceUnavailable")
    try:
        event = verify_webhook(request.get_data(cache=False), header, secrets)
    except WebhookSignatureError as exc:
        return Response(f"Webhook Error: {exc}", status=400, mimetype="text/plain")
    problem = event_problem(event)
    if problem is not None:  # permanent: a retry would carry the same fields
        log.warning("Stripe event %.80r (%.80r): ignored — malformed: %s", event["id"], event["type"], problem)
        telemetry.record_event("malformed", "ignored", None)  # its type may be the malformed part
        return Response(status=200)
    telemetry.annotate(event_id=event.get("id"), event_type=event.get("type"))
    receipt = state.event_processor().handle(event)
    telemetry.annotate(payment_id=receipt.payment_id)
    return Response(status=200)

"""Files a payment provider looks for under ``/.well-known/`` on the shop's domain."""

from __future__ import annotations

from flask import Blueprint, Response
from werkzeug.exceptions import NotFound

from flask_psp_connector.state import connector_state


def wellknown_blueprint() -> Blueprint:
    """The ``/.well-known/`` files, as the ``wellknown`` blueprint."""
    bp = Blueprint("wellknown", __name__)
    bp.add_url_rule("/.well-known/apple-developer-merchantid-domain-association",
                    view_func=apple_pay_domain_association, methods=["GET"])
    return bp


def apple_pay_domain_association() -> Response:
    """Apple Pay's domain association file (``STRIPE_APPLE_PAY_WELL_KNOWN``); 404 while unset."""
    contents = connector_state().settings["STRIPE_APPLE_PAY_WELL_KNOWN"]
    if not contents:
        raise NotFound()
    return Response(contents, mimetype="text/plain")

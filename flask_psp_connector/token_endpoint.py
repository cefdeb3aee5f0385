"""``POST /oauth/token``: client-credentials tokens from the embedded authorization server."""

from __future__ import annotations

from authlib.oauth2.rfc6749.errors import InsecureTransportError
from flask import Response, current_app
from flask_smorest import Blueprint

blp = Blueprint("oauth", __name__, description="OAuth2 client credentials (embedded store only)")


@blp.route("/oauth/token", methods=["POST"])
@blp.doc(
    requestBody={
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["grant_type"],
                    "properties": {"grant_type": {"type": "string", "enum": ["client_credentials"]}, "scope": {"type": "string"}},
                }
            }
        }
    },
    security=[{"basicAuth": []}],
)
@blp.response(200, description="An access token (RFC 6749 §5.1)")
def issue_token() -> Response:
    """Issue an access token to a client registered with ``flask psp create-client``."""
    server = current_app.extensions["psp_connector"].authorization_server
    try:
        return server.create_token_response()
    except InsecureTransportError as error:
        # authlib raises this before its own error handling; behind a TLS-terminating
        # proxy, apply werkzeug's ProxyFix so the request is seen as https.
        return server.handle_error_response(None, error)

"""``POST /oauth/token``: client-credentials tokens from the embedded authorization server."""

from __future__ import annotations

import base64
import binascii

from authlib.oauth2.rfc6749.errors import InsecureTransportError, InvalidClientError, InvalidRequestError
from flask import Response, request
from marshmallow import Schema, fields

from flask_psp_connector.http.errors import UpstreamErrors
from flask_psp_connector.http.openapi import OwnErrorsBlueprint
from flask_psp_connector.state import connector_state


class TokenErrorSchema(Schema):
    """An error answer of the token endpoint (RFC 6749 §5.2)."""

    error = fields.String(required=True)
    error_description = fields.String()
    error_uri = fields.String()


_TOKEN_REQUEST = {
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "required": ["grant_type"],
                "properties": {"grant_type": {"type": "string", "enum": ["client_credentials"]}, "scope": {"type": "string"}},
            }
        }
    }
}


def token_blueprint() -> OwnErrorsBlueprint:
    """A new blueprint of ``POST /oauth/token``: its refusals are RFC 6749's; any other
    error on it is answered in the processor's body."""
    blp = OwnErrorsBlueprint("oauth", __name__, description="OAuth2 client credentials (embedded store only)")

    @blp.route("/oauth/token", methods=["POST"])
    @blp.doc(requestBody=_TOKEN_REQUEST, security=[{"basicAuth": []}])
    @blp.response(200, description="An access token (RFC 6749 §5.1)")
    @blp.alt_response("default", schema=TokenErrorSchema, description="Refused (RFC 6749 §5.2): invalid_client is 401")
    def issue_token() -> Response:
        """Issue an access token to a client registered with ``flask psp create-client``."""
        server = connector_state().authorization_server
        if not _readable_basic_credentials(request.headers.get("Authorization", "")):
            return _response(server.handle_error_response(None, InvalidClientError(status_code=401)))
        if any("\x00" in key or "\x00" in value for key, value in request.form.items(multi=True)):
            return _response(server.handle_error_response(None, InvalidRequestError("A form field contains a NUL character.")))
        try:
            return _response(server.create_token_response())
        except InsecureTransportError as error:
            # authlib raises this before its own error handling; behind a TLS-terminating
            # proxy, apply werkzeug's ProxyFix so the request is seen as https.
            return _response(server.handle_error_response(None, error))

    UpstreamErrors().install(blp)
    return blp


def _response(answer: object) -> Response:
    """authlib's Flask server answers with a Flask response (its type stubs say less)."""
    if not isinstance(answer, Response):
        raise TypeError(f"the authorization server answered with {type(answer).__name__}")
    return answer


def _readable_basic_credentials(header: str) -> bool:
    """False for HTTP Basic credentials that are not Base64 of UTF-8 text without NUL
    characters (authlib would fail on them instead of refusing the client)."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return True
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return False
    return "\x00" not in decoded

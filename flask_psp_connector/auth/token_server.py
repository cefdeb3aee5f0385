"""The embedded OAuth2 authorization server (client credentials only).

Without commercetools, a back office still needs bearer tokens for
``/operations/payment-intents``: ``flask psp create-client --scope manage_project``
registers a client, ``POST /oauth/token`` (authlib's authorization server) issues
tokens, and :class:`LocalIntrospector` answers for them. Client secrets and tokens are
random and high-entropy, so the store keeps only their SHA-256 digests.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from flask import Flask
from sqlalchemy import delete

from flask_psp_connector.platforms.embedded.database import Database
from flask_psp_connector.platforms.embedded.schema import OAuthClientRow, OAuthTokenRow, hash_secret, utcnow


@dataclass(frozen=True, slots=True)
class OAuthClient(ClientMixin):
    """A registered client; ``scope`` lists everything it may ask for."""

    client_id: str
    secret_hash: str
    scope: str

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return ""  # client credentials never redirect

    def get_allowed_scope(self, scope: Collection[str] | str | None) -> str:
        allowed = set(self.scope.split())
        if not scope:
            return self.scope
        asked = scope.split() if isinstance(scope, str) else scope
        return " ".join(s for s in asked if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(hash_secret(client_secret), self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """What ``create_client`` returns; the secret is shown once and never stored."""

    client_id: str
    client_secret: str
    scope: str


class ClientRegistry:
    """OAuth clients and their tokens, in the embedded store's database."""

    def __init__(self, database: Database, *, token_ttl: int = 3600) -> None:
        self._db = database
        self.token_ttl = token_ttl

    def create_client(self, scope: str, name: str = "") -> ClientCredentials:
        """Register a client allowed ``scope`` (space-separated) and return its credentials."""
        scope = " ".join(scope.split())
        if not scope:
            raise ValueError("a client needs at least one scope")
        client_id, client_secret = secrets.token_hex(12), secrets.token_urlsafe(32)
        with self._db.transaction(write=True) as session:
            session.add(OAuthClientRow(client_id=client_id, secret_hash=hash_secret(client_secret), scope=scope, name=name))
        return ClientCredentials(client_id, client_secret, scope)

    def query_client(self, client_id: str) -> OAuthClient | None:
        """Look a client up by id (authlib's ``query_client``)."""
        with self._db.transaction() as session:
            row = session.get(OAuthClientRow, client_id)
            return None if row is None else OAuthClient(row.client_id, row.secret_hash, row.scope)

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """Store a digest of an issued token (authlib's ``save_token``); prunes expired ones."""
        now = utcnow()
        with self._db.transaction(write=True) as session:
            session.execute(delete(OAuthTokenRow).where(OAuthTokenRow.expires_at < now))
            session.add(
                OAuthTokenRow(
                    token_hash=hash_secret(token["access_token"]),
                    client_id=request.client.get_client_id(),
                    scope=token.get("scope", ""),
                    issued_at=now,
                    expires_at=now + timedelta(seconds=int(token["expires_in"])),
                )
            )

    def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662 answer for a token issued here."""
        with self._db.transaction() as session:
            row = session.get(OAuthTokenRow, hash_secret(token))
            if row is None or row.expires_at <= utcnow():
                return {"active": False}
            return {
                "active": True,
                "scope": row.scope,
                "client_id": row.client_id,
                "token_type": "Bearer",
                "iat": int(row.issued_at.timestamp()),
                "exp": int(row.expires_at.timestamp()),
            }


class _ClientCredentialsGrant(ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


def make_authorization_server(app: Flask, registry: ClientRegistry) -> AuthorizationServer:
    """An authlib authorization server issuing client-credentials tokens from ``registry``."""
    app.config.setdefault("OAUTH2_TOKEN_EXPIRES_IN", {"client_credentials": registry.token_ttl})
    server = AuthorizationServer(app, query_client=registry.query_client, save_token=registry.save_token)
    server.register_grant(_ClientCredentialsGrant)
    return server

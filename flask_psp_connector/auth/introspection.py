"""RFC 7662 token introspection: what an OAuth2 bearer token grants."""

from __future__ import annotations

from typing import Any, Protocol

import requests
from authlib.integrations.requests_client import OAuth2Session

from flask_psp_connector.errors import AuthError, PSPError
from flask_psp_connector.http.outbound import EnvironmentSettings, untrusting


class Introspector(Protocol):
    """Something that answers RFC 7662 introspection for an access token."""

    def introspect(self, token: str) -> dict[str, Any]:
        """Return the introspection response (``active``, ``scope``, ...)."""


class RemoteIntrospector:
    """RFC 7662 introspection against an authorization server, with authlib.

    Every introspection goes through one pooled session, so its connection (and TLS
    handshake) to the server is kept alive and reused; proxies and CA bundle are read from
    the environment once (see :mod:`flask_psp_connector.http.outbound`). Safe to share
    between threads: the session holds no token, only the client's credentials.

    :param url: the introspection endpoint.
    :param client_id: our client id at that server (HTTP Basic).
    :param client_secret: our client secret.
    """

    def __init__(self, url: str, client_id: str, client_secret: str, *, timeout: float = 10) -> None:
        self.url = url
        self.timeout = timeout
        self._session = untrusting(OAuth2Session(client_id, client_secret))
        self._environment = EnvironmentSettings()

    def introspect(self, token: str) -> dict[str, Any]:
        """POST the token to the introspection endpoint and return its JSON answer."""
        try:
            response = self._session.introspect_token(self.url, token=token, timeout=self.timeout,
                                                      **self._environment(self.url))
        except requests.RequestException as exc:
            raise PSPError("Failed to authorize request.", status=503, code="ServiceUnavailable") from exc
        if response.status_code == 401:
            raise AuthError("The authorization server refused the introspection request.")
        if response.status_code > 299:
            raise PSPError("Failed to authorize request.")
        try:
            answer = response.json()
        except ValueError:
            raise PSPError("Failed to authorize request.") from None
        if not isinstance(answer, dict):
            raise PSPError("Failed to authorize request.")
        return answer

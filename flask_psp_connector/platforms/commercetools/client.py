"""HTTP access to one commercetools project: OAuth2 client credentials, timeouts, errors.

The access token comes from ``{CTP_AUTH_URL}/oauth/token`` (client credentials, HTTP
Basic); :class:`~flask_psp_connector.auth.oauth_client.ClientCredentialsHTTP` keeps and
renews it.

Every answer other than a 2xx becomes one of the connector's errors, so callers never
see ``requests`` or raw JSON problems: 404 → :class:`ResourceNotFound`, 409 →
:class:`ConcurrentModification`, any other refusal → :class:`CommercetoolsAPIError` with
commercetools' own ``code`` and status, no answer → :class:`PlatformUnavailable` (503)
and an unreadable answer → :class:`CommercetoolsAPIError` (502).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

from flask_psp_connector.auth.oauth_client import JSON, ClientCredentialsHTTP, UpstreamAPIError, error_body, first_error
from flask_psp_connector.errors import ConcurrentModification, PSPError, ResourceNotFound


class CommercetoolsAPIError(UpstreamAPIError):
    """commercetools refused a call; keeps commercetools' error code and HTTP status."""


def segment(value: str) -> str:
    """``value`` made safe as one path segment (ids come from callers and Stripe metadata)."""
    return quote(value, safe="")


class CommercetoolsClient(ClientCredentialsHTTP):
    """Calls to the HTTP API and the session service of one project.

    :param api_url: e.g. ``https://api.europe-west1.gcp.commercetools.com``.
    :param auth_url: e.g. ``https://auth.europe-west1.gcp.commercetools.com``.
    :param session_url: e.g. ``https://session.europe-west1.gcp.commercetools.com``.
    :param scope: the scopes to ask for (space-separated); empty asks for all the client's.
    :param timeout: seconds before any call (token included) is given up.
    :param leeway: seconds before its expiry a token is replaced.
    """

    service = "commercetools"
    api_error = CommercetoolsAPIError

    def __init__(
        self,
        *,
        api_url: str,
        auth_url: str,
        session_url: str,
        project_key: str,
        client_id: str,
        client_secret: str,
        scope: str = "",
        timeout: float = 10,
        leeway: int = 300,
    ) -> None:
        super().__init__(token_url=f"{auth_url.rstrip('/')}/oauth/token", client_id=client_id,
                         client_secret=client_secret, scope=scope, timeout=timeout, leeway=leeway)
        self.api_url = f"{api_url.rstrip('/')}/{segment(project_key)}"
        self.session_url = f"{session_url.rstrip('/')}/{segment(project_key)}/sessions"

    def __repr__(self) -> str:
        return f"<CommercetoolsClient {self.api_url}>"

    def get(self, path: str, **params: Any) -> JSON:
        """GET ``path`` of the project API; ``params`` become the query string."""
        return self.json(self.call("GET", f"{self.api_url}{path}", params=params or None))

    def post(self, path: str, body: JSON, **params: Any) -> JSON:
        """POST ``body`` to ``path`` of the project API."""
        return self.json(self.call("POST", f"{self.api_url}{path}", json=body, params=params or None))

    def delete(self, path: str, **params: Any) -> JSON:
        """DELETE ``path`` of the project API."""
        return self.json(self.call("DELETE", f"{self.api_url}{path}", params=params or None))

    def session(self, session_id: str) -> JSON:
        """The checkout session ``session_id`` from the session service."""
        return self.json(self.call("GET", f"{self.session_url}/{segment(session_id)}"))

    def error_for(self, response: requests.Response) -> PSPError:
        """The connector's error for a refusal: commercetools' message, code and status."""
        body = error_body(response)
        code = self.error_code(response)
        message = str(body.get("message") or f"commercetools answered {response.status_code}.")
        fields = {}
        current_version = first_error(body).get("currentVersion")
        if isinstance(current_version, int):
            fields["currentVersion"] = current_version
        if response.status_code == 404:
            return ResourceNotFound(message, code=code)
        if response.status_code == 409:
            return ConcurrentModification(message, code=code, fields=fields)
        return CommercetoolsAPIError(message, code=code, status=response.status_code)


def malformed() -> CommercetoolsAPIError:
    """The error for an answer the connector cannot read."""
    return CommercetoolsAPIError("commercetools sent a response the connector cannot read.", status=502)

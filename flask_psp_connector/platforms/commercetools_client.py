"""HTTP access to one commercetools project: OAuth2 client credentials, timeouts, errors.

The access token comes from ``{CTP_AUTH_URL}/oauth/token`` (client credentials, HTTP
Basic) through authlib's requests client. It is fetched once, reused by every call,
fetched again shortly before it expires and once more after a 401. Tokens and secrets
never reach a log line or an error message.

Every answer other than a 2xx becomes one of the connector's errors, so callers never
see ``requests`` or raw JSON problems: 404 → :class:`ResourceNotFound`, 409 →
:class:`ConcurrentModification`, any other refusal → :class:`CommercetoolsAPIError` with
commercetools' own ``code`` and status, no answer → :class:`PlatformUnavailable` (503)
and an unreadable answer → :class:`CommercetoolsAPIError` (502).
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import quote

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from ..errors import ConcurrentModification, PlatformUnavailable, PSPError, ResourceNotFound

log = logging.getLogger("flask_psp_connector.commercetools")

JSON = dict[str, Any]


class CommercetoolsAPIError(PSPError):
    """commercetools refused a call; keeps commercetools' error code and HTTP status."""

    status = 502
    code = "General"


def segment(value: str) -> str:
    """``value`` made safe as one path segment (ids come from callers and Stripe metadata)."""
    return quote(value, safe="")


class CommercetoolsClient:
    """Calls to the HTTP API and the session service of one project.

    :param api_url: e.g. ``https://api.europe-west1.gcp.commercetools.com``.
    :param auth_url: e.g. ``https://auth.europe-west1.gcp.commercetools.com``.
    :param session_url: e.g. ``https://session.europe-west1.gcp.commercetools.com``.
    :param scope: the scopes to ask for (space-separated); empty asks for all the client's.
    :param timeout: seconds before any call (token included) is given up.
    :param leeway: seconds before its expiry a token is replaced.
    """

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
        self.api_url = f"{api_url.rstrip('/')}/{segment(project_key)}"
        self.session_url = f"{session_url.rstrip('/')}/{segment(project_key)}/sessions"
        self.token_url = f"{auth_url.rstrip('/')}/oauth/token"
        self.timeout = timeout
        self.leeway = leeway
        self._oauth = OAuth2Session(
            client_id,
            client_secret,
            scope=scope or None,
            token_endpoint=self.token_url,
            grant_type="client_credentials",
            leeway=leeway,
            default_timeout=timeout,
        )
        self._token_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<CommercetoolsClient {self.api_url}>"

    # -- the API ------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> JSON:
        """GET ``path`` of the project API; ``params`` become the query string."""
        return self._json(self.call("GET", f"{self.api_url}{path}", params=params or None))

    def post(self, path: str, body: JSON, **params: Any) -> JSON:
        """POST ``body`` to ``path`` of the project API."""
        return self._json(self.call("POST", f"{self.api_url}{path}", json=body, params=params or None))

    def delete(self, path: str, **params: Any) -> JSON:
        """DELETE ``path`` of the project API."""
        return self._json(self.call("DELETE", f"{self.api_url}{path}", params=params or None))

    def session(self, session_id: str) -> JSON:
        """The checkout session ``session_id`` from the session service."""
        return self._json(self.call("GET", f"{self.session_url}/{segment(session_id)}"))

    # -- transport ----------------------------------------------------------------

    def call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send one authorized request; renew the token once if it is refused with 401."""
        token = self._access_token()
        response = self._send(method, url, **kwargs)
        if response.status_code == 401:
            self._access_token(stale=token)
            response = self._send(method, url, **kwargs)
            if response.status_code == 401:
                raise CommercetoolsAPIError(
                    "commercetools refused the connector's API client.", status=502, code=_error_code(response)
                )
        if response.status_code >= 300:
            raise _error(response)
        return response

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self._oauth.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            log.warning("commercetools %s %s failed: %s", method, url.split("?")[0], type(exc).__name__)
            raise PlatformUnavailable("commercetools cannot be reached.") from None

    def _access_token(self, *, stale: str | None = None) -> str:
        """The current access token, fetched first when missing, expiring, or ``stale``."""
        with self._token_lock:
            token = self._oauth.token
            if not token or token.get("access_token") == stale or token.is_expired(leeway=self.leeway):
                self._fetch_token()
            return self._oauth.token["access_token"]

    def _fetch_token(self) -> None:
        try:
            self._oauth.fetch_token(self.token_url, grant_type="client_credentials", timeout=self.timeout)
        except requests.exceptions.JSONDecodeError:
            raise CommercetoolsAPIError("The commercetools authorization server sent an unreadable answer.") from None
        except requests.RequestException:
            log.warning("commercetools token request to %s failed", self.token_url)
            raise PlatformUnavailable("commercetools cannot be reached.") from None
        except OAuthError as exc:
            log.error("commercetools refused the API client's credentials: %s", exc.error)
            raise CommercetoolsAPIError(
                "commercetools refused the connector's API client.", code=str(exc.error or "General")
            ) from None
        if not self._oauth.token or not self._oauth.token.get("access_token"):
            raise CommercetoolsAPIError("The commercetools authorization server sent no access token.")

    @staticmethod
    def _json(response: requests.Response) -> JSON:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise malformed()
        return body


def malformed() -> CommercetoolsAPIError:
    """The error for an answer the connector cannot read."""
    return CommercetoolsAPIError("commercetools sent a response the connector cannot read.", status=502)


def _error_body(response: requests.Response) -> JSON:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error_code(response: requests.Response) -> str:
    body = _error_body(response)
    errors = body.get("errors") if isinstance(body.get("errors"), list) else []
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    return str(first.get("code") or body.get("error") or "General")


def _error(response: requests.Response) -> PSPError:
    """The connector's error for a refusal: commercetools' message, code and status."""
    body = _error_body(response)
    code = _error_code(response)
    message = str(body.get("message") or f"commercetools answered {response.status_code}.")
    fields = {}
    errors = body.get("errors") if isinstance(body.get("errors"), list) else []
    if errors and isinstance(errors[0], dict) and isinstance(errors[0].get("currentVersion"), int):
        fields["currentVersion"] = errors[0]["currentVersion"]
    if response.status_code == 404:
        return ResourceNotFound(message, code=code)
    if response.status_code == 409:
        return ConcurrentModification(message, code=code, fields=fields)
    return CommercetoolsAPIError(message, code=code, status=response.status_code)

"""HTTP calls authorized by an OAuth2 client-credentials token (authlib's requests client).

The token is fetched once, reused by every call, fetched again shortly before it
expires and once more after a 401. Tokens and secrets never reach a log line or an
error message. A subclass names its service and turns refusals into the connector's
errors (:meth:`ClientCredentialsHTTP.error_for`).

A call goes straight to the session's pooled transport adapter with the bearer token
it already holds: ``Session.request`` would merge settings, cookies and hooks that
these calls never use, and that was about a third of a call's CPU time. Redirects
are not followed (an API answer other than a 2xx is an error anyway).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from requests.hooks import default_hooks
from requests.utils import default_headers

from flask_psp_connector.errors import PlatformUnavailable, PSPError
from flask_psp_connector.http.outbound import EnvironmentSettings, untrusting
from flask_psp_connector.observability import telemetry

log = logging.getLogger("flask_psp_connector.http")

JSON = dict[str, Any]


class UpstreamAPIError(PSPError):
    """The remote service refused a call; keeps its error code and HTTP status."""

    status = 502
    code = "General"


class ClientCredentialsHTTP:
    """Authorized requests to one service.

    :param token_url: the service's OAuth2 token endpoint.
    :param scope: the scopes to ask for (space-separated); empty asks for all the client's.
    :param timeout: seconds before any call (token included) is given up.
    :param leeway: seconds before its expiry a token is replaced.
    :param auth_method: how the client authenticates to the token endpoint
        (``client_secret_basic`` or ``client_secret_post``).
    """

    #: The service's name in messages ("commercetools", "Hantera", ...).
    service = "the service"
    #: The error raised for refusals and unreadable answers.
    api_error: type[PSPError] = UpstreamAPIError

    def __init__(self, *, token_url: str, client_id: str, client_secret: str, scope: str = "",
                 timeout: float = 10, leeway: int = 300, auth_method: str = "client_secret_basic") -> None:
        self.token_url = token_url
        self.timeout = timeout
        self.leeway = leeway
        self._oauth = OAuth2Session(
            client_id,
            client_secret,
            scope=scope or None,
            token_endpoint=token_url,
            token_endpoint_auth_method=auth_method,
            grant_type="client_credentials",
            leeway=leeway,
            default_timeout=timeout,
        )
        untrusting(self._oauth)
        self._environment = EnvironmentSettings()
        self._token_lock = threading.Lock()
        self._headers = dict(default_headers())

    def call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send one authorized request; renew the token once if it is refused with 401.

        :raises PlatformUnavailable: when the service cannot be reached.
        :raises PSPError: from :meth:`error_for` for any answer other than a 2xx.
        """
        token = self._access_token()
        response = self._send(method, url, token, **kwargs)
        if response.status_code == 401:
            response = self._send(method, url, self._access_token(stale=token), **kwargs)
            if response.status_code == 401:
                raise self.api_error(f"{self.service} refused the connector's API client.", status=502,
                                     code=self.error_code(response))
        if response.status_code >= 300:
            raise self.error_for(response)
        return response

    def error_for(self, response: requests.Response) -> PSPError:
        """The connector's error for a refusal (subclasses map statuses and codes)."""
        return self.api_error(f"{self.service} answered {response.status_code}.", status=502,
                              code=self.error_code(response))

    def error_code(self, response: requests.Response) -> str:
        """The service's error code in a refusal: the first of its ``errors``, else its ``error``, else ``General``."""
        body = error_body(response)
        return str(first_error(body).get("code") or body.get("error") or "General")

    def json(self, response: requests.Response) -> JSON:
        """The answer's JSON object; anything else is a :meth:`malformed` answer."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise self.malformed()
        return body

    def malformed(self) -> PSPError:
        """The error for an answer the connector cannot read."""
        return self.api_error(f"{self.service} sent a response the connector cannot read.", status=502)

    def _send(self, method: str, url: str, token: str, *, params: Mapping[str, Any] | None = None,
              headers: Mapping[str, str] | None = None, data: str | None = None,
              json: Any = None) -> requests.Response:
        request = requests.PreparedRequest()
        request.prepare_method(method)
        request.prepare_url(f"{url}?{urlencode(params, doseq=True)}" if params else url, None)
        sent = {**self._headers, **(headers or {}), "Authorization": f"Bearer {token}"}
        if correlation := telemetry.correlation_id.get():
            sent["X-Correlation-ID"] = correlation
        request.prepare_headers(sent)
        request.prepare_body(data, None, json)
        request.hooks = default_hooks()
        try:
            with telemetry.external_call(self.service.lower(), f"{method} {_resource(url)}"):
                return self._oauth.get_adapter(url).send(request, timeout=self.timeout, **self._environment(url))
        except requests.RequestException as exc:
            log.warning("%s %s %s failed: %s", self.service, method, url.split("?")[0], type(exc).__name__)
            raise PlatformUnavailable(f"{self.service} cannot be reached.") from None

    def _access_token(self, *, stale: str | None = None) -> str:
        """The current access token, fetched first when missing, expiring, or ``stale``."""
        with self._token_lock:
            token = self._oauth.token
            if not token or token.get("access_token") == stale or token.is_expired(leeway=self.leeway):
                self._fetch_token()
            access_token: str = self._oauth.token["access_token"]
            return access_token

    def _fetch_token(self) -> None:
        try:
            self._oauth.fetch_token(self.token_url, grant_type="client_credentials", timeout=self.timeout,
                                    **self._environment(self.token_url))
        except requests.exceptions.JSONDecodeError:
            raise self.api_error(f"The {self.service} authorization server sent an unreadable answer.") from None
        except requests.RequestException:
            log.warning("%s token request to %s failed", self.service, self.token_url)
            raise PlatformUnavailable(f"{self.service} cannot be reached.") from None
        except OAuthError as exc:
            log.error("%s refused the API client's credentials: %s", self.service, exc.error)
            raise self.api_error(f"{self.service} refused the connector's API client.",
                                 code=str(exc.error or "General")) from None
        if not self._oauth.token or not self._oauth.token.get("access_token"):
            raise self.api_error(f"The {self.service} authorization server sent no access token.")


def _resource(url: str) -> str:
    """The kind of resource a URL names (``carts``, ``payments``...), never its id: a metric label."""
    path = urlsplit(url).path.strip("/").split("/")
    return next((part.split("=")[0] for part in path[1:2] if part), path[0] if path else "")


def error_body(response: requests.Response) -> JSON:
    """The JSON object of a refusal, or ``{}``."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def first_error(body: JSON) -> JSON:
    """The first object of a refusal's ``errors`` list, or ``{}``."""
    errors = body.get("errors")
    first = errors[0] if isinstance(errors, list) and errors else None
    return first if isinstance(first, dict) else {}

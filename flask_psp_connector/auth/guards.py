"""Route guards: checkout session, JWT (JWKS) and OAuth2 (token introspection).

Each guard is a decorator a host app can reuse on its own views::

    @app.get("/my-cart")
    @require_session
    def my_cart():
        return {"cartId": g.psp_session.cart_id}

A refused credential raises :class:`~flask_psp_connector.errors.AuthError`, which the
processor renders in the upstream auth body (HTTP 401).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import requests
from authlib.integrations.requests_client import OAuth2Session
from flask import current_app, g, request
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from flask_psp_connector.errors import AuthError, PSPError

F = TypeVar("F", bound=Callable[..., Any])

#: Asymmetric algorithms only: a JWKS never holds a shared secret, so HS* is refused.
JWT_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


def _state() -> Any:
    return current_app.extensions["psp_connector"]


def bearer_token() -> str:
    """Return the bearer token of the request or raise :class:`AuthError`."""
    header = request.headers.get("Authorization")
    if not header:
        raise AuthError("This endpoint requires the authorization header.", code="access_denied")
    parts = header.split(" ")
    if len(parts) != 2 or parts[0].lower() != "bearer" or not parts[1]:
        raise AuthError("The authorization header must be 'Bearer <token>'.", code="invalid_request")
    return parts[1]


def require_session(view: F) -> F:
    """Allow the request only with a valid, unexpired ``X-Session-Id``.

    The session is then available as ``g.psp_session``.
    """

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        session_id = request.headers.get("X-Session-Id", "")
        session = _state().platform.get_session(session_id) if 0 < len(session_id) <= 256 else None
        if session is None:
            raise AuthError("Session is not active")
        g.psp_session = session
        return view(*args, **kwargs)

    return guarded  # type: ignore[return-value]


class JWKSCache:
    """The key set behind a JWKS URL, fetched lazily and again on an unknown ``kid``.

    :param min_refresh_interval: seconds between two fetches, so a flood of tokens with
        made-up ``kid`` values cannot make us hammer the JWKS endpoint.
    """

    def __init__(self, url: str, *, timeout: float = 5, min_refresh_interval: float = 30) -> None:
        self.url = url
        self.timeout = timeout
        self.min_refresh_interval = min_refresh_interval
        self._key_set: KeySet | None = None
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def key_set(self, *, refresh: bool = False) -> KeySet:
        """Return the cached key set, fetching it first if absent or ``refresh`` is asked."""
        with self._lock:
            due = time.monotonic() - self._fetched_at >= self.min_refresh_interval
            if self._key_set is None or (refresh and due):
                try:
                    response = requests.get(self.url, timeout=self.timeout)
                    response.raise_for_status()
                    self._key_set = KeySet.import_key_set(response.json())
                except (requests.RequestException, ValueError, JoseError) as exc:
                    raise PSPError("Failed to fetch the signing keys.", status=503, code="ServiceUnavailable") from exc
                finally:
                    self._fetched_at = time.monotonic()
            return self._key_set


#: Longest bearer token read; a JWT with a few claims is well under 2 KiB.
MAX_TOKEN_LENGTH = 8192


def _is_compact_jws(token: str) -> bool:
    """Whether ``token`` is shaped like a signed JWT with an algorithm we accept
    (read locally, so a malformed token never costs a JWKS fetch)."""
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        return False
    try:
        header = jws.extract_compact(token.encode("ascii")).protected
    except (ValueError, JoseError):
        return False
    return header.get("alg") in JWT_ALGORITHMS


def verify_jwt(token: str, keys: JWKSCache, *, issuer: str, project_key: str) -> dict[str, Any]:
    """Verify signature, expiry, issuer and project claim; return the claims.

    :raises AuthError: on any problem with the token (before any key fetch when it is
        not even a signed JWT).
    """
    if not _is_compact_jws(token):
        raise AuthError("Invalid token: not a signed JWT.")
    try:
        try:
            decoded = jwt.decode(token, keys.key_set(), algorithms=JWT_ALGORITHMS)
        except (ValueError, JoseError):
            # An unknown kid may mean the keys were rotated: fetch them again once.
            decoded = jwt.decode(token, keys.key_set(refresh=True), algorithms=JWT_ALGORITHMS)
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": issuer},
            exp={"essential": True},
        ).validate(decoded.claims)
    except (ValueError, JoseError) as exc:
        raise AuthError(f"Invalid token: {exc.__class__.__name__}.") from None
    if decoded.claims.get(f"{issuer}/claims/project_key") != project_key:
        raise AuthError("The token was not issued for this project.")
    return dict(decoded.claims)


def require_jwt(view: F) -> F:
    """Allow the request only with a Bearer JWT signed by a key of ``CTP_JWKS_URL``.

    The token's claims are then available as ``g.psp_jwt_claims``.
    """

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        state = _state()
        g.psp_jwt_claims = verify_jwt(
            bearer_token(),
            state.jwks,
            issuer=state.settings["CTP_JWT_ISSUER"],
            project_key=state.settings["CTP_PROJECT_KEY"],
        )
        return view(*args, **kwargs)

    return guarded  # type: ignore[return-value]


class Introspector(Protocol):
    """Something that answers RFC 7662 introspection for an access token."""

    def introspect(self, token: str) -> dict[str, Any]:
        """Return the introspection response (``active``, ``scope``, ...)."""


class RemoteIntrospector:
    """RFC 7662 introspection against an authorization server, with authlib.

    :param url: the introspection endpoint.
    :param client_id: our client id at that server (HTTP Basic).
    :param client_secret: our client secret.
    """

    def __init__(self, url: str, client_id: str, client_secret: str, *, timeout: float = 10) -> None:
        self.url = url
        self._client_id = client_id
        self._client_secret = client_secret
        self.timeout = timeout

    def introspect(self, token: str) -> dict[str, Any]:
        """POST the token to the introspection endpoint and return its JSON answer."""
        with OAuth2Session(self._client_id, self._client_secret) as client:
            try:
                response = client.introspect_token(self.url, token=token, timeout=self.timeout)
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


def authorities_of(scope: str, project_key: str) -> set[str]:
    """The authorities a scope string grants for ``project_key``.

    ``manage_project:my-project`` grants ``manage_project`` only when ``my-project`` is
    this project; a scope without a project suffix grants its name.
    """
    granted = set()
    for item in scope.split():
        name, _, project = item.partition(":")
        if not project or project == project_key:
            granted.add(name)
    return granted


def require_oauth2(*authorities: str) -> Callable[[F], F]:
    """Allow the request only with a Bearer token granting any of ``authorities``.

    The introspection response is then available as ``g.psp_token``.
    """

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            state = _state()
            info = state.introspector.introspect(bearer_token())
            if info.get("active") is not True:
                raise AuthError("Token is not active.")
            scope = info.get("scope")
            if not scope or not isinstance(scope, str):
                raise AuthError("Token has no scopes.")
            if not authorities_of(scope, state.settings["CTP_PROJECT_KEY"]) & set(authorities):
                raise AuthError(
                    "Not authorized", code="insufficient_scope", fields={"validAuthorities": list(authorities)}
                )
            g.psp_token = info
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate

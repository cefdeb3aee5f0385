"""JWT bearers signed by a key of the issuer's JWKS (``CTP_JWKS_URL``)."""

from __future__ import annotations

import threading
import time
from typing import Any

import requests
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from flask_psp_connector.errors import AuthError, PSPError
from flask_psp_connector.http.outbound import EnvironmentSettings, untrusting

#: Asymmetric algorithms only: a JWKS never holds a shared secret, so HS* is refused.
JWT_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


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
        self._http = untrusting(requests.Session())  # a rotation's fetch reuses the first one's connection
        self._environment = EnvironmentSettings()

    def key_set(self, *, refresh: bool = False) -> KeySet:
        """Return the cached key set, fetching it first if absent or ``refresh`` is asked."""
        with self._lock:
            due = time.monotonic() - self._fetched_at >= self.min_refresh_interval
            if self._key_set is None or (refresh and due):
                try:
                    response = self._http.get(self.url, timeout=self.timeout, **self._environment(self.url))
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

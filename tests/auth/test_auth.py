"""The authentication guards: checkout session, JWT (JWKS) and OAuth2 (introspection).

Every refusal must answer 401 with upstream's auth body (spec §2 and §4)::

    {"message": m, "statusCode": 401, "errors": [{"code": c, "message": m}],
     "error": c, "error_description": m}

and must stop the request before the view runs: nothing is written to the store and
Stripe is not called. Outgoing HTTP (JWKS, introspection, Stripe) goes through the
``stripe_mock`` fixture, where an unpinned request fails.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, NamedTuple
from urllib.parse import parse_qs

import pytest
import requests
import responses
from flask import Flask
from joserfc import jwt
from joserfc.jwk import RSAKey
from responses import matchers

from flask_psp_connector.auth import jwks as jwks_module
from flask_psp_connector.platforms.embedded.schema import utcnow as real_utcnow
from tests.conftest import STRIPE_API, open_checkout

ISSUER = "https://auth.example.test"
JWKS_URL = f"{ISSUER}/.well-known/jwks.json"
PROJECT_CLAIM = f"{ISSUER}/claims/project_key"
EVIL_JWKS = "https://evil.example.test/.well-known/jwks.json"
INTROSPECT_URL = f"{ISSUER}/oauth/introspect"
STRIPE_PING_URL = f"{STRIPE_API}/v1/customers"
PAYMENT_INTENTS = "/operations/payment-intents/no-such-payment"
CANCEL = {"actions": [{"action": "cancelPayment"}]}
VALID_AUTHORITIES = ["manage_project", "manage_checkout_payment_intents"]


# -- helpers -----------------------------------------------------------------------


def auth_body(message: str, code: str = "invalid_token", **fields: Any) -> dict[str, Any]:
    """Upstream's 401 auth body for ``message`` and ``code`` (extra ``errors[0]`` fields)."""
    return {
        "message": message,
        "statusCode": 401,
        "errors": [{"code": code, "message": message, **fields}],
        "error": code,
        "error_description": message,
    }


def assert_refused(response: Any, code: str = "invalid_token", message: str | None = None) -> dict[str, Any]:
    """Assert ``response`` is a 401 in the auth body with ``code`` (and ``message`` if given)."""
    assert response.status_code == 401, response.get_data(as_text=True)
    body = response.get_json()
    expected_message = message if message is not None else body["message"]
    extra = {k: v for k, v in body["errors"][0].items() if k not in ("code", "message")}
    assert body == auth_body(expected_message, code, **extra)
    assert expected_message  # a refusal always explains itself
    return body


def assert_guard_passed(response: Any) -> None:
    """The OAuth2 guard let the request through: the view answers 404 for the unknown payment."""
    assert response.status_code == 404, response.get_data(as_text=True)
    assert response.get_json()["errors"][0]["code"] == "ResourceNotFound"


def bearer(token: str) -> dict[str, str]:
    """An ``Authorization: Bearer`` header."""
    return {"Authorization": f"Bearer {token}"}


def basic(user: str, password: str) -> dict[str, str]:
    """An HTTP Basic ``Authorization`` header."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def b64url(data: bytes) -> str:
    """Unpadded base64url, as in JWS compact serialization."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**changes: Any) -> dict[str, Any]:
    """Claims of a valid token for project ``shop``; a change to ``None`` removes the claim."""
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "mc-user-1",
        "iat": now,
        "exp": now + 300,
        PROJECT_CLAIM: "shop",
    }
    values.update(changes)
    return {name: value for name, value in values.items() if value is not None}


def sign(key: RSAKey, header: dict[str, Any] | None = None, **changes: Any) -> str:
    """An RS256 JWT signed by ``key`` (``kid`` = the key's, plus ``header``) with :func:`claims`."""
    return jwt.encode({"alg": "RS256", "kid": key.kid, **(header or {})}, claims(**changes), key)


def hs256(secret: bytes, kid: str, **changes: Any) -> str:
    """An HS256 JWT made by hand (joserfc rightly frowns on weak secrets)."""
    signing_input = ".".join(
        b64url(json.dumps(part).encode())
        for part in ({"alg": "HS256", "typ": "JWT", "kid": kid}, claims(**changes))
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def tampered(token: str, **changes: Any) -> str:
    """``token`` with its claims swapped for :func:`claims` (``changes``), signature kept."""
    header, _, signature = token.split(".")
    return f"{header}.{b64url(json.dumps(claims(**changes)).encode())}.{signature}"


def unsigned(kid: str, **changes: Any) -> str:
    """An ``alg: none`` JWT with valid-looking claims and no signature."""
    header = b64url(json.dumps({"alg": "none", "kid": kid}).encode())
    return f"{header}.{b64url(json.dumps(claims(**changes)).encode())}."


class JWKSServer:
    """The JWKS at ``CTP_JWKS_URL``, served from ``stripe_mock``; ``keys`` may be swapped."""

    def __init__(self, mock: responses.RequestsMock, *keys: RSAKey) -> None:
        self.keys = list(keys)
        self.fetches = 0
        mock.add_callback(responses.GET, JWKS_URL, callback=self._serve)

    def _serve(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.fetches += 1
        body = {"keys": [key.as_dict(private=False) for key in self.keys]}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)


class Clock:
    """A fake ``time`` module for :mod:`flask_psp_connector.auth.jwks` (JWKS refresh throttling)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def shift_clock(monkeypatch: pytest.MonkeyPatch, target: str, delta: timedelta) -> None:
    """Make ``target`` (a dotted ``utcnow``) answer ``delta`` from the real time."""
    monkeypatch.setattr(target, lambda: real_utcnow() + delta)


def register_client(app: Flask, *scopes: str) -> tuple[str, str]:
    """``flask psp create-client --scope ...``; return the printed (client_id, client_secret)."""
    args = ["psp", "create-client"]
    for scope in scopes:
        args += ["--scope", scope]
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    client_id = re.search(r"^client_id:\s+(\S+)$", result.output, re.M)
    client_secret = re.search(r"^client_secret:\s+(\S+)$", result.output, re.M)
    assert client_id and client_secret, result.output
    return client_id.group(1), client_secret.group(1)


def request_token(client: Any, client_id: str, secret: str, **form: str) -> Any:
    """``POST /oauth/token`` with HTTP Basic; ``form`` defaults to the client-credentials grant."""
    data = {"grant_type": "client_credentials", **form}
    return client.post("/oauth/token", data=data, headers=basic(client_id, secret))


def access_token(app: Flask, *scopes: str, **form: str) -> str:
    """Register a client allowed ``scopes`` and return a token from ``/oauth/token``."""
    response = request_token(app.test_client(), *register_client(app, *scopes), **form)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["token_type"] == "Bearer"
    return response.get_json()["access_token"]


def stripe_calls(mock: responses.RequestsMock) -> list[str]:
    """URLs of the requests made to Stripe."""
    return [call.request.url for call in mock.calls if call.request.url.startswith(STRIPE_API)]


# -- fixtures ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys() -> SimpleNamespace:
    """RSA keys: the issuer's (kid k1), an impostor's with the same kid, and a rotated one (k2)."""
    return SimpleNamespace(
        issuer=RSAKey.generate_key(2048, parameters={"kid": "k1"}),
        impostor=RSAKey.generate_key(2048, parameters={"kid": "k1"}),
        rotated=RSAKey.generate_key(2048, parameters={"kid": "k2"}),
    )


@pytest.fixture
def jwks(stripe_mock: responses.RequestsMock, keys: SimpleNamespace) -> JWKSServer:
    """The issuer's JWKS, holding only ``keys.issuer``."""
    return JWKSServer(stripe_mock, keys.issuer)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Control the monotonic clock the JWKS cache throttles refreshes with."""
    fake = Clock()
    monkeypatch.setattr(jwks_module, "time", fake)
    return fake


@pytest.fixture
def remote_app(make_app: Callable[..., Flask]) -> Flask:
    """An app introspecting bearer tokens at the remote authorization server."""
    return make_app(CTP_AUTH_URL=ISSUER, CTP_CLIENT_ID="cid", CTP_CLIENT_SECRET="csecret")


# -- 1. checkout session (X-Session-Id) ----------------------------------------------

SESSION_ROUTES = [
    ("GET", "/config-element/payment", None),
    ("GET", "/payments", None),
    ("POST", "/payments", {}),
    ("POST", "/confirmPayments/pay-1", {"paymentIntent": "pi_123"}),
    ("GET", "/customer/session", None),
    ("GET", "/operations/config", None),
]
SESSION_REFUSED = auth_body("Session is not active")


def session_header(app: Flask, kind: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Headers carrying a session credential that must be refused, by ``kind``."""
    if kind == "missing":
        return {}
    if kind == "empty":
        return {"X-Session-Id": ""}
    if kind == "unknown":
        return {"X-Session-Id": "not-a-session-id-at-all"}
    if kind == "too long":
        return {"X-Session-Id": "x" * 5000}
    if kind == "as bearer":
        return bearer(open_checkout(app)[1])
    if kind == "hashed id":  # the digest the store keeps must not work as the id
        return {"X-Session-Id": hashlib.sha256(open_checkout(app)[1].encode()).hexdigest()}
    assert kind == "expired"
    cart_id, _ = open_checkout(app)
    session = app.extensions["psp_connector"].platform.open_session(cart_id, ttl=1)
    shift_clock(monkeypatch, "flask_psp_connector.platforms.embedded.carts.utcnow", timedelta(seconds=2))
    return {"X-Session-Id": session.id}


@pytest.mark.parametrize("kind", ["missing", "empty", "unknown", "too long", "as bearer", "hashed id", "expired"])
def test_session_routes_refuse_without_an_active_session(
    app: Flask, client: Any, stripe_mock: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    headers = session_header(app, kind, monkeypatch)
    for method, path, body in SESSION_ROUTES:
        response = client.open(path, method=method, json=body, headers=headers)
        assert response.status_code == 401, f"{method} {path}"
        assert response.get_json() == SESSION_REFUSED, f"{method} {path}"
    assert len(stripe_mock.calls) == 0


@pytest.mark.parametrize("header", ["X-Session-Id", "x-session-id", "X-SESSION-ID"])
@pytest.mark.parametrize(("path", "status"), [("/customer/session", 204), ("/operations/config", 200)])
def test_an_active_session_is_accepted_whatever_the_header_case(
    app: Flask, client: Any, stripe_mock: responses.RequestsMock, header: str, path: str, status: int
) -> None:
    _, session_id = open_checkout(app)
    response = client.get(path, headers={header: session_id})
    assert response.status_code == status, response.get_data(as_text=True)
    if status == 200:
        assert response.get_json()["publishableKey"] == "pk_test_connector"
    assert len(stripe_mock.calls) == 0


def test_a_session_expires_exactly_at_its_expiry(app: Flask, client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    cart_id, _ = open_checkout(app)
    session = app.extensions["psp_connector"].platform.open_session(cart_id, ttl=60)
    headers = {"X-Session-Id": session.id}
    shift_clock(monkeypatch, "flask_psp_connector.platforms.embedded.carts.utcnow", timedelta(seconds=59))
    assert client.get("/operations/config", headers=headers).status_code == 200
    shift_clock(monkeypatch, "flask_psp_connector.platforms.embedded.carts.utcnow", timedelta(seconds=61))
    assert client.get("/operations/config", headers=headers).get_json() == SESSION_REFUSED


def test_the_session_guard_runs_before_body_validation(client: Any) -> None:
    response = client.post("/confirmPayments/pay-1", json={"unexpected": True})
    assert response.get_json() == SESSION_REFUSED


# -- 2. JWT (JWKS) -----------------------------------------------------------------

JWT_ROUTES = ["/operations/payment-components", "/operations/status"]

MALFORMED_AUTHORIZATION = ["Bearer", "Bearer ", "Basic eDp5", "Bearer a b", "Token abc", " Bearer abc"]

#: name -> builder(keys) of a token the JWT guard must refuse.
BAD_JWTS: dict[str, Callable[[SimpleNamespace], str]] = {
    "garbage": lambda k: "not-a-jwt",
    "three garbage parts": lambda k: "a.b.c",
    "wrong signature (same kid)": lambda k: sign(k.impostor),
    "tampered claims": lambda k: tampered(sign(k.issuer), sub="admin"),
    "impostor key embedded in the header (jwk)": lambda k: sign(k.impostor, {"jwk": k.impostor.as_dict(private=False)}),
    "impostor JWKS named in the header (jku)": lambda k: sign(k.impostor, {"jku": EVIL_JWKS}),
    "expired": lambda k: sign(k.issuer, exp=int(time.time()) - 60),
    "missing exp": lambda k: sign(k.issuer, exp=None),
    "exp as a string": lambda k: sign(k.issuer, exp=str(int(time.time()) + 300)),
    "not yet valid (nbf)": lambda k: sign(k.issuer, nbf=int(time.time()) + 600),
    "issued in the future (iat)": lambda k: sign(k.issuer, iat=int(time.time()) + 600),
    "wrong issuer": lambda k: sign(k.issuer, iss="https://evil.example.test"),
    "issuer with trailing slash": lambda k: sign(k.issuer, iss=ISSUER + "/"),
    "missing issuer": lambda k: sign(k.issuer, iss=None),
    "wrong project key": lambda k: sign(k.issuer, **{PROJECT_CLAIM: "other"}),
    "missing project claim": lambda k: sign(k.issuer, **{PROJECT_CLAIM: None}),
    "project claim as a list": lambda k: sign(k.issuer, **{PROJECT_CLAIM: ["shop"]}),
    "project claim of another issuer": lambda k: sign(
        k.issuer, **{PROJECT_CLAIM: None, "https://evil.example.test/claims/project_key": "shop"}
    ),
    "HS256 with a guessable secret": lambda k: hs256(b"secret", "k1"),
    "HS256 keyed with the public key": lambda k: hs256(json.dumps(k.issuer.as_dict(private=False)).encode(), "k1"),
    "alg none": lambda k: unsigned("k1"),
    "unknown kid": lambda k: sign(k.rotated),
}


def test_jwt_routes_require_the_authorization_header(client: Any, stripe_mock: responses.RequestsMock) -> None:
    for path in JWT_ROUTES:
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.get_json() == auth_body("This endpoint requires the authorization header.", "access_denied")
    assert len(stripe_mock.calls) == 0  # not even the JWKS


@pytest.mark.parametrize("header", MALFORMED_AUTHORIZATION)
def test_jwt_routes_refuse_a_malformed_authorization_header(
    client: Any, stripe_mock: responses.RequestsMock, header: str
) -> None:
    for path in JWT_ROUTES:
        response = client.get(path, headers={"Authorization": header})
        assert_refused(response, "invalid_request", "The authorization header must be 'Bearer <token>'.")
    assert len(stripe_mock.calls) == 0


@pytest.mark.parametrize("case", list(BAD_JWTS))
def test_jwt_routes_refuse_a_bad_token(
    client: Any, stripe_mock: responses.RequestsMock, jwks: JWKSServer, keys: SimpleNamespace, case: str
) -> None:
    token = BAD_JWTS[case](keys)
    for path in JWT_ROUTES:
        assert_refused(client.get(path, headers=bearer(token)), "invalid_token")
    assert stripe_calls(stripe_mock) == []  # /operations/status never reached its Stripe check


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_a_valid_jwt_is_accepted(client: Any, jwks: JWKSServer, keys: SimpleNamespace, scheme: str) -> None:
    response = client.get("/operations/payment-components", headers={"Authorization": f"{scheme} {sign(keys.issuer)}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"dropins": [{"type": "embedded"}], "components": [], "express": [{"type": "dropin"}]}


def test_the_jwks_is_fetched_once_for_many_tokens(client: Any, jwks: JWKSServer, keys: SimpleNamespace) -> None:
    for subject in ("user-1", "user-2", "user-3"):
        response = client.get("/operations/payment-components", headers=bearer(sign(keys.issuer, sub=subject)))
        assert response.status_code == 200
    assert jwks.fetches == 1


def test_key_rotation_refetches_the_jwks_once(
    client: Any, jwks: JWKSServer, keys: SimpleNamespace, clock: Clock
) -> None:
    assert client.get("/operations/payment-components", headers=bearer(sign(keys.issuer))).status_code == 200
    jwks.keys = [keys.issuer, keys.rotated]  # the issuer publishes a new key ...
    clock.advance(60)  # ... some time later, and signs with it
    for _ in range(3):
        response = client.get("/operations/payment-components", headers=bearer(sign(keys.rotated)))
        assert response.status_code == 200, response.get_data(as_text=True)
    assert client.get("/operations/payment-components", headers=bearer(sign(keys.issuer))).status_code == 200
    assert jwks.fetches == 2


def test_an_unknown_kid_refetches_at_most_once_per_interval(
    client: Any, jwks: JWKSServer, keys: SimpleNamespace, clock: Clock
) -> None:
    assert client.get("/operations/payment-components", headers=bearer(sign(keys.issuer))).status_code == 200
    clock.advance(60)
    for _ in range(3):  # a flood of unknown kids cannot hammer the JWKS endpoint
        assert_refused(client.get("/operations/payment-components", headers=bearer(sign(keys.rotated))))
    assert jwks.fetches == 2  # one refetch; the kid is not in it either


def test_an_unreachable_jwks_is_a_503_not_an_acceptance(
    client: Any, stripe_mock: responses.RequestsMock, keys: SimpleNamespace
) -> None:
    stripe_mock.get(JWKS_URL, status=500)
    response = client.get("/operations/payment-components", headers=bearer(sign(keys.issuer)))
    assert response.status_code == 503
    assert response.get_json()["errors"][0]["code"] == "ServiceUnavailable"


def test_status_with_a_valid_jwt_reports_ok(
    client: Any, stripe_mock: responses.RequestsMock, jwks: JWKSServer, keys: SimpleNamespace
) -> None:
    stripe_mock.get(
        STRIPE_PING_URL,
        match=[matchers.query_param_matcher({"limit": "1"})],
        json={"object": "list", "data": [], "has_more": False, "url": "/v1/customers"},
    )
    response = client.get("/operations/status", headers=bearer(sign(keys.issuer)))
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status"] == "OK"
    assert sorted((check["name"], check["status"]) for check in body["checks"]) == [
        ("Commerce platform", "UP"),
        ("Stripe", "UP"),
        ("Webhooks", "UP"),
    ]
    assert len(stripe_calls(stripe_mock)) == 1


def test_status_with_stripe_down_is_partially_available(
    client: Any, stripe_mock: responses.RequestsMock, jwks: JWKSServer, keys: SimpleNamespace
) -> None:
    stripe_mock.get(
        STRIPE_PING_URL,
        match=[matchers.query_param_matcher({"limit": "1"})],
        status=500,
        json={"error": {"type": "api_error", "message": "Something went wrong."}},
    )
    response = client.get("/operations/status", headers=bearer(sign(keys.issuer)))
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "Partially Available"
    assert {check["name"]: check["status"] for check in body["checks"]} == {
        "Commerce platform": "UP", "Stripe": "DOWN", "Webhooks": "UP"}


# -- 3a. OAuth2, embedded authorization server --------------------------------------

REFUSED_SCOPES = {
    "view_orders": "insufficient_scope",
    "manage_project:other": "insufficient_scope",
    "manage_checkout_payment_intents:other": "insufficient_scope",
    "view_orders manage_project:other": "insufficient_scope",
    "manage_projects": "insufficient_scope",
}
ACCEPTED_SCOPES = [
    "manage_checkout_payment_intents",
    "manage_project",
    "manage_project:shop",
    "manage_checkout_payment_intents:shop",
    "view_orders manage_project:shop",
]


def test_payment_intents_require_the_authorization_header(client: Any) -> None:
    response = client.post(PAYMENT_INTENTS, json=CANCEL)
    assert response.get_json() == auth_body("This endpoint requires the authorization header.", "access_denied")
    assert response.status_code == 401


@pytest.mark.parametrize("header", MALFORMED_AUTHORIZATION)
def test_payment_intents_refuse_a_malformed_authorization_header(client: Any, header: str) -> None:
    response = client.post(PAYMENT_INTENTS, json=CANCEL, headers={"Authorization": header})
    assert_refused(response, "invalid_request", "The authorization header must be 'Bearer <token>'.")


def test_payment_intents_refuse_an_unknown_token(client: Any) -> None:
    response = client.post(PAYMENT_INTENTS, json=CANCEL, headers=bearer("no-such-token"))
    assert_refused(response, message="Token is not active.")


def test_payment_intents_refuse_other_credentials(app: Flask, client: Any, keys: SimpleNamespace) -> None:
    """A session id or a (valid) JWT is not an OAuth2 access token."""
    _, session_id = open_checkout(app)
    for token in (session_id, sign(keys.issuer)):
        assert_refused(client.post(PAYMENT_INTENTS, json=CANCEL, headers=bearer(token)), message="Token is not active.")


@pytest.mark.parametrize("scope", ACCEPTED_SCOPES)
def test_a_token_with_a_granting_scope_passes_the_guard(
    app: Flask, client: Any, stripe_mock: responses.RequestsMock, scope: str
) -> None:
    token = access_token(app, *scope.split())
    assert_guard_passed(client.post(PAYMENT_INTENTS, json=CANCEL, headers=bearer(token)))
    assert len(stripe_mock.calls) == 0


@pytest.mark.parametrize("scope", list(REFUSED_SCOPES))
def test_a_token_without_a_granting_scope_is_refused(app: Flask, client: Any, scope: str) -> None:
    token = access_token(app, *scope.split())
    response = client.post(PAYMENT_INTENTS, json=CANCEL, headers=bearer(token))
    body = assert_refused(response, REFUSED_SCOPES[scope], "Not authorized")
    assert body["errors"][0]["validAuthorities"] == VALID_AUTHORITIES


def test_a_token_carries_only_the_requested_scope(app: Flask, client: Any) -> None:
    token = access_token(app, "view_orders", "manage_project", scope="view_orders")
    assert_refused(client.post(PAYMENT_INTENTS, json=CANCEL, headers=bearer(token)), "insufficient_scope")


def test_a_client_cannot_obtain_a_scope_it_was_not_granted(app: Flask, client: Any) -> None:
    client_id, secret = register_client(app, "view_orders")
    response = request_token(client, client_id, secret, scope="manage_project")
    if response.status_code == 200:  # authlib may issue a token, but it must grant nothing
        token = response.get_json()["access_token"]
        assert response.get_json().get("scope", "") in ("", "view_orders")
        assert client.post(PAYMENT_INTENTS, json=CANCEL, headers=bearer(token)).status_code == 401
    else:
        assert response.status_code == 400
        assert response.get_json()["error"] == "invalid_scope"


@pytest.mark.parametrize(("shift", "accepted"), [(timedelta(seconds=3590), True), (timedelta(seconds=3601), False)])
def test_an_embedded_token_expires_after_its_ttl(
    app: Flask, client: Any, monkeypatch: pytest.MonkeyPatch, shift: timedelta, accepted: bool
) -> None:
    token = access_token(app, "manage_checkout_payment_intents")
    shift_clock(monkeypatch, "flask_psp_connector.auth.token_server.utcnow", shift)
    response = client.post(PAYMENT_INTENTS, json=CANCEL, headers=bearer(token))
    if accepted:
        assert_guard_passed(response)
    else:
        assert_refused(response, message="Token is not active.")


def test_the_oauth2_guard_runs_before_body_validation(client: Any) -> None:
    response = client.post(PAYMENT_INTENTS, json={"actions": "nonsense"}, headers=bearer("no-such-token"))
    assert_refused(response, message="Token is not active.")


def test_the_token_endpoint_refuses_a_wrong_client_secret(app: Flask, client: Any) -> None:
    client_id, _ = register_client(app, "manage_project")
    response = request_token(client, client_id, "wrong-secret")
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"
    assert "access_token" not in response.get_json()


def test_the_token_endpoint_refuses_an_unknown_client(client: Any) -> None:
    response = request_token(client, "no-such-client", "secret")
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


@pytest.mark.parametrize("grant_type", ["password", "authorization_code", "refresh_token", "nonsense", ""])
def test_the_token_endpoint_refuses_other_grant_types(app: Flask, client: Any, grant_type: str) -> None:
    client_id, secret = register_client(app, "manage_project")
    response = request_token(client, client_id, secret, grant_type=grant_type)
    assert response.status_code == 400
    assert response.get_json() == {"error": "unsupported_grant_type"}


def test_the_token_endpoint_works_over_https(app: Flask, client: Any) -> None:
    client_id, secret = register_client(app, "manage_project")
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic(client_id, secret),
        base_url="https://shop.example.test",
    )
    assert response.status_code == 200
    assert response.get_json()["scope"] == "manage_project"


def test_the_token_endpoint_refuses_plain_http_with_an_oauth2_error(app: Flask, client: Any) -> None:
    """authlib refuses plain http off loopback (RFC 6749 §3.2); that must be a 400, not a crash."""
    client_id, secret = register_client(app, "manage_project")
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic(client_id, secret),
        base_url="http://shop.example.test",
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"] == "insecure_transport"


def test_an_embedded_token_is_not_a_jwt(app: Flask, client: Any, jwks: JWKSServer) -> None:
    token = access_token(app, "manage_project")
    assert_refused(client.get("/operations/payment-components", headers=bearer(token)))


# -- 3b. OAuth2, remote introspection (RFC 7662) ------------------------------------


def pin_introspection(mock: responses.RequestsMock, status: int, body: Any, seen: list[Any]) -> None:
    """Answer the introspection endpoint with ``status`` and ``body``; record requests in ``seen``."""

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        seen.append(request)
        text = body if isinstance(body, str) else json.dumps(body)
        return status, {"Content-Type": "application/json"}, text

    mock.add_callback(responses.POST, INTROSPECT_URL, callback=answer)


class Remote(NamedTuple):
    """An introspection answer (``status``, ``body``) and what the route must then answer."""

    status: int
    body: Any
    expect: int  # 404: the guard let the request through to the unknown payment
    code: str = "invalid_token"
    message: str | None = None


SCOPE = "insufficient_scope"
NOT_ACTIVE, NO_SCOPES, NOT_AUTHORIZED, FAILED = (
    "Token is not active.", "Token has no scopes.", "Not authorized", "Failed to authorize request."
)
REMOTE_CASES = {
    "active with manage_project": Remote(200, {"active": True, "scope": "manage_project:shop"}, 404),
    "active with intents scope": Remote(200, {"active": True, "scope": "manage_checkout_payment_intents"}, 404),
    "inactive": Remote(200, {"active": False}, 401, message=NOT_ACTIVE),
    "active as a string": Remote(200, {"active": "true", "scope": "manage_project"}, 401, message=NOT_ACTIVE),
    "no active member": Remote(200, {"scope": "manage_project"}, 401, message=NOT_ACTIVE),
    "no scope": Remote(200, {"active": True}, 401, message=NO_SCOPES),
    "empty scope": Remote(200, {"active": True, "scope": ""}, 401, message=NO_SCOPES),
    "scope as a list": Remote(200, {"active": True, "scope": ["manage_project"]}, 401, message=NO_SCOPES),
    "insufficient scope": Remote(200, {"active": True, "scope": "view_orders"}, 401, SCOPE, NOT_AUTHORIZED),
    "other project": Remote(200, {"active": True, "scope": "manage_project:other"}, 401, SCOPE, NOT_AUTHORIZED),
    "auth server 401": Remote(401, {"error": "invalid_client"}, 401),
    "auth server 403": Remote(403, {"error": "forbidden"}, 500, "General", FAILED),
    "auth server 500": Remote(500, {"error": "boom"}, 500, "General", FAILED),
    "not json": Remote(200, "<html>oops</html>", 500, "General", FAILED),
    # RFC 7662 §2.2: the answer is a JSON object; anything else is a failure to authorize.
    "json null": Remote(200, "null", 500, "General", FAILED),
    "json array of pairs": Remote(200, '[["active", true], ["scope", "manage_project"]]', 500, "General", FAILED),
}


@pytest.mark.parametrize("case", list(REMOTE_CASES))
def test_remote_introspection(remote_app: Flask, stripe_mock: responses.RequestsMock, case: str) -> None:
    remote = REMOTE_CASES[case]
    seen: list[Any] = []
    pin_introspection(stripe_mock, remote.status, remote.body, seen)
    response = remote_app.test_client().post(PAYMENT_INTENTS, json=CANCEL, headers=bearer("remote-token-123"))

    assert len(seen) == 1
    assert seen[0].headers["Authorization"] == basic("cid", "csecret")["Authorization"]
    form = seen[0].body if isinstance(seen[0].body, str) else seen[0].body.decode()
    assert parse_qs(form) == {"token": ["remote-token-123"]}

    if remote.expect == 401:
        assert_refused(response, remote.code, remote.message)
    elif remote.expect == 404:
        assert_guard_passed(response)
    else:
        assert response.status_code == remote.expect
        assert response.get_json()["errors"][0] == {"code": remote.code, "message": remote.message}
    assert stripe_calls(stripe_mock) == []


def test_remote_introspection_unreachable_is_a_503(remote_app: Flask, stripe_mock: responses.RequestsMock) -> None:
    stripe_mock.post(INTROSPECT_URL, body=requests.ConnectionError("down"))
    response = remote_app.test_client().post(PAYMENT_INTENTS, json=CANCEL, headers=bearer("remote-token"))
    assert response.status_code == 503
    assert response.get_json()["errors"][0]["code"] == "ServiceUnavailable"


def test_remote_mode_does_not_introspect_without_a_bearer_token(
    remote_app: Flask, stripe_mock: responses.RequestsMock
) -> None:
    client = remote_app.test_client()
    assert_refused(client.post(PAYMENT_INTENTS, json=CANCEL), "access_denied")
    malformed = client.post(PAYMENT_INTENTS, json=CANCEL, headers={"Authorization": "Basic eDp5"})
    assert_refused(malformed, "invalid_request")
    assert len(stripe_mock.calls) == 0


def test_remote_mode_has_no_embedded_token_issuer(remote_app: Flask) -> None:
    """With CTP_AUTH_URL set, the remote server alone issues tokens: no /oauth/token, no local clients."""
    assert remote_app.test_client().post("/oauth/token", data={"grant_type": "client_credentials"}).status_code == 404
    result = remote_app.test_cli_runner().invoke(args=["psp", "create-client", "--scope", "manage_project"])
    assert result.exit_code != 0
    assert "authorization server" in result.output


# -- 4. refused requests write nothing ----------------------------------------------


@pytest.mark.parametrize("kind", ["missing", "empty", "unknown", "expired"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_refused_payment_creation_writes_nothing_and_calls_no_one(
    app: Flask,
    client: Any,
    stripe_mock: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    kind: str,
) -> None:
    cart_id, _ = open_checkout(app)
    headers = session_header(app, kind, monkeypatch)
    body = {} if method == "POST" else None
    for _ in range(2):
        assert client.open("/payments", method=method, json=body, headers=headers).status_code == 401
    assert client.post("/confirmPayments/pay-1", json={"paymentIntent": "pi_1"}, headers=headers).status_code == 401
    platform = app.extensions["psp_connector"].platform
    monkeypatch.undo()  # real time again, to read the store
    assert platform.payments_of_cart(cart_id) == []
    assert platform.list_payments() == []
    assert len(stripe_mock.calls) == 0

"""The processor's HTTP surface: routing errors, methods, CORS, OpenAPI, secrets, 500s."""

from __future__ import annotations

import base64
import logging
import re
import time
from typing import Any

import pytest
import responses
from flask import Flask
from joserfc import jwt
from joserfc.jwk import ECKey

from flask_psp_connector.processor import payments
from tests.conftest import SECRET_KEY, STRIPE_API, bearer, open_checkout

PI_URL = f"{STRIPE_API}/v1/payment_intents"
WEBHOOK_SECRET = "whsec_topsecret"
SECRETS = (SECRET_KEY, WEBHOOK_SECRET)
JWKS_URL = "https://auth.example.test/.well-known/jwks.json"
ISSUER = "https://auth.example.test"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
SHOP, OTHER = "https://shop.example.test", "https://other.test"
ENABLER_HEADERS = (
    "X-Session-Id", "x-express-checkout", "x-express-customer-session", "Authorization", "Content-Type",
    "X-Correlation-ID", "X-Request-ID",
)
STRIPE_AUTH_ERROR = {
    "error": {"type": "invalid_request_error", "message": f"Invalid API Key provided: {SECRET_KEY}"}
}

#: Every processor route, as processor.py declares it (OpenAPI path -> methods).
PROCESSOR_ROUTES = {
    "/config-element/{payment_component}": {"get"},
    "/payments": {"get", "post"},
    "/confirmPayments/{payment_id}": {"post"},
    "/customer/session": {"get"},
    "/operations/config": {"get"},
    "/applePayConfig": {"get"},
    "/express-config": {"post"},
    "/express-payment-data": {"get"},
    "/operations/payment-components": {"get"},
    "/operations/status": {"get"},
    "/operations/payment-intents/{payment_id}": {"post"},
}


# -- helpers ----------------------------------------------------------------------------


def intent_json(pi_id: str = "pi_surface", **fields: Any) -> dict[str, Any]:
    """A PaymentIntent as Stripe returns it, for the default 30.00 EUR cart."""
    body = {"id": pi_id, "object": "payment_intent", "client_secret": f"{pi_id}_secret_abc", "amount": 3000,
            "currency": "eur", "status": "requires_payment_method", "capture_method": "automatic",
            "metadata": {}}
    body.update(fields)
    return body


def assert_json_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert the upstream JSON error body ``{message, statusCode, errors: [{code, message}]}``."""
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/json", response.mimetype
    body = response.get_json()
    assert body["statusCode"] == status
    assert body["errors"] and {"code", "message"} <= set(body["errors"][0])
    assert body["message"] == body["errors"][0]["message"]
    if code is not None:
        assert body["errors"][0]["code"] == code
    return body




def jwt_header(mock: responses.RequestsMock) -> dict[str, str]:
    """A bearer JWT the JWT guard accepts, with its JWKS pinned on ``mock``."""
    key = ECKey.generate_key("P-256", parameters={"kid": "surface"})
    mock.add(responses.GET, JWKS_URL, json={"keys": [key.as_dict(private=False)]})
    claims = {"iss": ISSUER, "exp": int(time.time()) + 300, f"{ISSUER}/claims/project_key": "shop"}
    return {"Authorization": f"Bearer {jwt.encode({'alg': 'ES256', 'kid': 'surface'}, claims, key)}"}


def header_items(value: str | None) -> set[str]:
    """The lower-cased items of a comma-separated header."""
    return {item.strip().lower() for item in (value or "").split(",") if item.strip()}


def all_logs(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record, formatted with its traceback if it has one."""
    return caplog.text + "\n".join(record.getMessage() for record in caplog.records)


# -- unknown routes and wrong methods ---------------------------------------------------------


@pytest.mark.parametrize("accept", [None, "application/json", "*/*"])
def test_unknown_route_is_a_json_404_for_api_clients(client: Any, accept: str | None) -> None:
    response = client.get("/no-such-route", headers={"Accept": accept} if accept else {})
    assert_json_error(response, 404, "NotFound")


@pytest.mark.parametrize("accept", ["text/html", BROWSER_ACCEPT])
def test_unknown_route_is_left_to_flask_for_a_browser_without_prefix(client: Any, accept: str) -> None:
    response = client.get("/no-such-route", headers={"Accept": accept})
    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_prefix_moves_every_route(make_app: Any) -> None:
    app = make_app(PSP_URL_PREFIX="/psp")
    _, session_id = open_checkout(app)
    client = app.test_client()
    assert client.get("/psp/operations/config", headers={"X-Session-Id": session_id}).status_code == 200
    assert client.get("/operations/config", headers={"X-Session-Id": session_id}).status_code == 404
    spec = client.get("/psp/openapi.json").get_json()
    assert {f"/psp{path}" for path in PROCESSOR_ROUTES} <= set(spec["paths"])


@pytest.mark.parametrize(
    ("path", "accept", "json_answer"),
    [
        ("/psp/x", BROWSER_ACCEPT, True),
        ("/psp/x", "application/json", True),
        ("/psp", BROWSER_ACCEPT, True),
        ("/x", "application/json", False),
        ("/x", BROWSER_ACCEPT, False),
        ("/pspx", "application/json", False),  # shares the prefix's letters, not its path
    ],
)
def test_with_a_prefix_only_paths_under_it_answer_json(
    make_app: Any, path: str, accept: str, json_answer: bool
) -> None:
    response = make_app(PSP_URL_PREFIX="/psp").test_client().get(path, headers={"Accept": accept})
    assert response.status_code == 404
    if json_answer:
        assert_json_error(response, 404, "NotFound")
    else:
        assert response.mimetype == "text/html"


@pytest.mark.parametrize(
    ("prefix", "method", "path", "allowed"),
    [
        ("", "delete", "/payments", {"GET", "HEAD", "OPTIONS", "POST"}),
        ("", "get", "/confirmPayments/x", {"OPTIONS", "POST"}),
        ("", "put", "/operations/payment-intents/x", {"OPTIONS", "POST"}),
        ("", "post", "/operations/config", {"GET", "HEAD", "OPTIONS"}),
        ("/psp", "delete", "/psp/payments", {"GET", "HEAD", "OPTIONS", "POST"}),
    ],
)
def test_wrong_method_is_405_with_allow(make_app: Any, prefix: str, method: str, path: str, allowed: set[str]) -> None:
    client = make_app(PSP_URL_PREFIX=prefix).test_client()
    response = getattr(client, method)(path, headers={"Accept": "application/json"})
    assert_json_error(response, 405, "MethodNotAllowed")
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed


# -- CORS -------------------------------------------------------------------------------------


def preflight(client: Any, path: str, origin: str, method: str = "POST") -> Any:
    """The browser's CORS preflight for ``method path`` with the enabler's headers."""
    return client.options(path, headers={
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type, x-session-id, x-express-checkout",
    })


@pytest.mark.parametrize(
    ("path", "method"),
    [("/payments", "GET"), ("/payments", "POST"), ("/confirmPayments/pay-1", "POST"),
     ("/config-element/payment", "GET"), ("/operations/config", "GET"),
     ("/operations/payment-intents/pay-1", "POST")],
)
def test_preflight_allows_any_origin_and_the_enablers_headers(client: Any, path: str, method: str) -> None:
    response = preflight(client, path, SHOP, method)
    assert 200 <= response.status_code < 300
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert header_items(response.headers.get("Access-Control-Allow-Headers")) >= {h.lower() for h in ENABLER_HEADERS}
    assert method in {m.upper() for m in header_items(response.headers.get("Access-Control-Allow-Methods"))}


@pytest.fixture
def allow_list_app(make_app: Any) -> Flask:
    """An app that lets only two storefront origins call it from a browser."""
    return make_app(ALLOWED_ORIGINS=f"{SHOP},{OTHER}")


@pytest.mark.parametrize("origin", [SHOP, OTHER])
def test_an_allowed_origin_is_echoed_and_varies(allow_list_app: Flask, origin: str) -> None:
    client = allow_list_app.test_client()
    response = preflight(client, "/payments", origin)
    assert 200 <= response.status_code < 300
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert "origin" in header_items(response.headers.get("Vary"))
    assert header_items(response.headers.get("Access-Control-Allow-Headers")) >= {h.lower() for h in ENABLER_HEADERS}
    _, session_id = open_checkout(allow_list_app)
    simple = client.get("/operations/config", headers={"Origin": origin, "X-Session-Id": session_id})
    assert simple.status_code == 200
    assert simple.headers["Access-Control-Allow-Origin"] == origin


@pytest.mark.parametrize(
    "origin", ["https://evil.test", f"{SHOP}.evil.test", "http://shop.example.test", "null", "*"]
)
def test_a_foreign_origin_gets_no_cors_headers(allow_list_app: Flask, origin: str) -> None:
    response = preflight(allow_list_app.test_client(), "/payments", origin)
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Headers" not in response.headers


@pytest.mark.parametrize("origin", ["https://evil.test", None])
def test_with_an_allow_list_every_response_varies_on_origin(allow_list_app: Flask, origin: str | None) -> None:
    """A shared cache must not replay an answer without CORS headers to an allowed origin."""
    response = allow_list_app.test_client().get("/applePayConfig", headers={"Origin": origin} if origin else {})
    assert response.status_code == 200
    assert "origin" in header_items(response.headers.get("Vary"))


def _boom(*_: Any, **__: Any) -> Any:
    """Stand-in for a use case that fails unexpectedly, with a secret in its message."""
    raise RuntimeError(f"boom {SECRET_KEY}")


@pytest.mark.parametrize(
    ("method", "path", "body", "setup", "status"),
    [
        pytest.param("get", "/payments", None, "", 401, id="401-no-session"),
        pytest.param("post", "/confirmPayments/pay-1", {}, "session", 400, id="400-validation"),
        pytest.param("post", "/operations/payment-intents/nope", {"actions": [{"action": "cancelPayment"}]}, "bearer",
                     404, id="404-resource"),
        pytest.param("get", "/config-element/payment", None, "boom", 500, id="500-unexpected"),
    ],
)
def test_error_responses_carry_cors_for_an_allowed_origin(
    allow_list_app: Flask, monkeypatch: pytest.MonkeyPatch, method: str, path: str, body: Any, setup: str,
    status: int,
) -> None:
    headers: dict[str, str] = {}
    if setup in ("session", "boom"):
        headers["X-Session-Id"] = open_checkout(allow_list_app)[1]
    if setup == "bearer":
        headers.update(bearer(allow_list_app))
    if setup == "boom":
        monkeypatch.setattr(payments, "config_element", _boom)
    client = allow_list_app.test_client()

    allowed = getattr(client, method)(path, headers={**headers, "Origin": SHOP}, json=body)
    foreign = getattr(client, method)(path, headers={**headers, "Origin": "https://evil.test"}, json=body)

    assert_json_error(allowed, status)
    assert allowed.headers["Access-Control-Allow-Origin"] == SHOP
    assert foreign.status_code == status
    assert "Access-Control-Allow-Origin" not in foreign.headers


@pytest.mark.parametrize(
    ("prefix", "method", "path", "status"),
    [("", "delete", "/payments", 405), ("/psp", "get", "/psp/no-such-route", 404)],
)
def test_json_routing_errors_carry_cors_for_an_allowed_origin(
    make_app: Any, prefix: str, method: str, path: str, status: int
) -> None:
    """The connector answers these in JSON for the enabler, so the enabler must be able to read them."""
    app = make_app(ALLOWED_ORIGINS=SHOP, PSP_URL_PREFIX=prefix)
    response = getattr(app.test_client(), method)(path, headers={"Origin": SHOP, "Accept": "application/json"})
    assert_json_error(response, status)
    assert response.headers.get("Access-Control-Allow-Origin") == SHOP


# -- OpenAPI and Apple Pay --------------------------------------------------------------------


@pytest.fixture
def spec(client: Any) -> dict[str, Any]:
    """The served OpenAPI document."""
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local ``$ref`` (possibly several) to the node it names."""
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def json_schema_of(spec: dict[str, Any], holder: dict[str, Any]) -> dict[str, Any]:
    """The resolved ``application/json`` schema of a request body or response."""
    return resolve(spec, resolve(spec, holder)["content"]["application/json"]["schema"])


def test_openapi_documents_every_processor_route_and_method(app: Flask, spec: dict[str, Any]) -> None:
    documented = {path: set(ops) - {"parameters"} for path, ops in spec["paths"].items()}
    for path, methods in PROCESSOR_ROUTES.items():
        assert methods <= documented.get(path, set()), path
    # ... and nothing processor.py declares is missing from PROCESSOR_ROUTES or the spec.
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("processor."):
            path = rule.rule.replace("<", "{").replace(">", "}")
            methods = {m.lower() for m in rule.methods} - {"head", "options"}
            assert methods <= PROCESSOR_ROUTES.get(path, set()), (path, methods)


@pytest.mark.parametrize(
    ("path", "method", "request_fields", "response_fields"),
    [
        ("/config-element/{payment_component}", "get", None, {"cartInfo", "captureMethod", "layout"}),
        ("/payments", "get", None, {"clientSecret", "sClientSecret", "paymentReference", "merchantReturnUrl",
                                    "cartId"}),
        ("/payments", "post", {"paymentMethodOptions"}, {"clientSecret", "paymentReference"}),
        ("/confirmPayments/{payment_id}", "post", {"paymentIntent", "confirmationToken"}, {"outcome"}),
        ("/operations/config", "get", None, {"environment", "publishableKey"}),
        ("/operations/payment-components", "get", None, {"dropins", "components", "express"}),
        ("/operations/status", "get", None, {"status", "timestamp", "version", "checks"}),
        ("/operations/payment-intents/{payment_id}", "post", {"actions", "merchantReference"}, {"outcome"}),
    ],
)
def test_openapi_documents_request_and_response_schemas(
    spec: dict[str, Any], path: str, method: str, request_fields: set[str] | None, response_fields: set[str]
) -> None:
    operation = spec["paths"][path][method]
    if request_fields is None:
        assert "requestBody" not in operation
    else:
        assert set(json_schema_of(spec, operation["requestBody"])["properties"]) == request_fields
    assert set(json_schema_of(spec, operation["responses"]["200"])["properties"]) >= response_fields


def test_openapi_documents_the_confirm_outcomes_and_operation_refusals(spec: dict[str, Any]) -> None:
    confirm = spec["paths"]["/confirmPayments/{payment_id}"]["post"]["responses"]
    assert {"200", "202", "400"} <= set(confirm)
    assert json_schema_of(spec, spec["paths"]["/confirmPayments/{payment_id}"]["post"]["requestBody"])[
        "required"] == ["paymentIntent"]
    refusal = json_schema_of(spec, spec["paths"]["/operations/payment-intents/{payment_id}"]["post"]["responses"]["400"])
    assert set(refusal["required"]) == {"message", "statusCode", "errors"}
    assert spec["paths"]["/customer/session"]["get"]["responses"]["204"]


def test_openapi_declares_how_each_route_is_authorized(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert schemes["sessionId"] == {"type": "apiKey", "in": "header", "name": "X-Session-Id"}
    expected = {
        "/operations/payment-components": "bearerAuth", "/operations/status": "bearerAuth",
        "/operations/payment-intents/{payment_id}": "bearerAuth", "/applePayConfig": None, "/express-config": None,
    }
    for path, methods in PROCESSOR_ROUTES.items():
        for method in methods:
            scheme = expected.get(path, "sessionId")
            security = spec["paths"][path][method].get("security")
            assert security == ([{scheme: []}] if scheme else None), (path, method)


def test_openapi_documents_validation_errors_with_the_status_they_have(spec: dict[str, Any]) -> None:
    """Validation errors are answered 400 (upstream), never 422: the spec must not promise 422."""
    promised = {
        (path, method) for path, ops in spec["paths"].items() for method, op in ops.items()
        if method != "parameters" and "422" in op["responses"]
    }
    assert promised == set()


def test_openapi_default_error_has_the_upstream_shape(spec: dict[str, Any]) -> None:
    default = json_schema_of(spec, spec["paths"]["/payments"]["get"]["responses"]["default"])
    assert set(default["required"]) == {"message", "statusCode", "errors"}
    # auth refusals add RFC 6750's two fields; nothing else may appear
    assert set(default["properties"]) == {"message", "statusCode", "errors", "error", "error_description"}
    assert default["additionalProperties"] is False


def test_openapi_documents_apple_pay_as_text(spec: dict[str, Any]) -> None:
    response = resolve(spec, spec["paths"]["/applePayConfig"]["get"]["responses"]["200"])
    assert set(response.get("content", {})) == {"text/plain"}


def test_apple_pay_config_is_served_as_text(make_app: Any) -> None:
    response = make_app(STRIPE_APPLE_PAY_WELL_KNOWN="assoc-file").test_client().get(
        "/applePayConfig", headers={"Accept": "application/json"}
    )
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == "assoc-file"


# -- no secret ever leaves ----------------------------------------------------------------------


class RecordingClient:
    """A test client that remembers every response and the endpoint it came from."""

    def __init__(self, app: Flask) -> None:
        self._client = app.test_client()
        self._adapter = app.url_map.bind("localhost")
        self.seen: list[tuple[str, Any]] = []

    def __call__(self, method: str, path: str, **kwargs: Any) -> Any:
        response = getattr(self._client, method)(path, **kwargs)
        self.seen.append((self._adapter.match(path, method=method.upper())[0], response))
        return response


def _call_every_route_anonymously(call: RecordingClient) -> None:
    """Every connector route, without any credential."""
    for method, path, kwargs in [
        ("get", "/config-element/payment", {}),
        ("get", "/payments", {}),
        ("post", "/payments", {"json": {}}),
        ("post", "/confirmPayments/pay-1", {"json": {"paymentIntent": "pi_surface"}}),
        ("get", "/customer/session", {}),
        ("get", "/operations/config", {}),
        ("get", "/applePayConfig", {}),
        ("get", "/express-payment-data", {}),
        ("get", "/operations/payment-components", {}),
        ("get", "/operations/status", {}),
        ("post", "/operations/payment-intents/pay-1", {"json": {"actions": [{"action": "cancelPayment"}]}}),
        ("post", "/oauth/token", {"data": {"grant_type": "client_credentials"}}),
        ("get", "/openapi.json", {}),
        ("get", "/docs", {}),
    ]:
        response = call(method, path, **kwargs)
        if path not in ("/applePayConfig", "/openapi.json", "/docs"):
            assert response.status_code == 401, (method, path)


def _call_every_route_with_credentials(app: Flask, call: RecordingClient, mock: responses.RequestsMock) -> None:
    """Every connector route with a valid credential; Stripe refuses with its key echoed where it can."""
    cart_id, session_id = open_checkout(app)
    session = {"X-Session-Id": session_id}
    mock.add(responses.POST, PI_URL, json=intent_json())
    mock.add(responses.GET, f"{STRIPE_API}/v1/customers", status=401, json=STRIPE_AUTH_ERROR)
    mock.add(responses.POST, f"{STRIPE_API}/v1/refunds", status=401, json=STRIPE_AUTH_ERROR)
    creds = app.extensions["psp_connector"].clients.create_client("manage_project")
    basic = base64.b64encode(f"{creds.client_id}:{creds.client_secret}".encode()).decode()

    assert call("get", "/config-element/payment", headers=session).status_code == 200
    payment_id = call("get", "/payments", headers=session).get_json()["paymentReference"]
    assert call("post", "/payments", headers=session, json={}).get_json()["paymentReference"] == payment_id
    mock.add(responses.GET, f"{PI_URL}/pi_surface",
             json=intent_json(status="succeeded", amount_received=3000, metadata={"ct_payment_id": payment_id}))
    confirm = call("post", f"/confirmPayments/{payment_id}", headers=session, json={"paymentIntent": "pi_surface"})
    assert confirm.get_json() == {"outcome": "approved"}
    assert call("get", "/customer/session", headers=session).status_code == 204
    assert call("get", "/operations/config", headers=session).status_code == 200
    assert call("get", "/applePayConfig").status_code == 200
    assert call("get", "/express-payment-data", headers=session).status_code == 400  # paid in full by now
    assert call("post", "/express-config", json={}).status_code == 200
    jwt_auth = jwt_header(mock)
    assert call("get", "/operations/payment-components", headers=jwt_auth).status_code == 200
    status = call("get", "/operations/status", headers=jwt_auth).get_json()
    assert {check["name"]: check["status"] for check in status["checks"]}["Stripe"] == "DOWN"
    refund = call("post", f"/operations/payment-intents/{payment_id}", headers=bearer(app),
                  json={"actions": [{"action": "refundPayment", "amount": {"centAmount": 100, "currencyCode": "EUR"}}]})
    assert refund.get_json() == {"outcome": "rejected"}
    token = call("post", "/oauth/token", headers={"Authorization": f"Basic {basic}"},
                 data={"grant_type": "client_credentials"})
    assert token.status_code == 200 and token.get_json()["access_token"]
    assert call("get", "/openapi.json").status_code == 200
    assert call("get", "/docs").status_code == 200


def exercise_every_route(app: Flask, mock: responses.RequestsMock) -> RecordingClient:
    """Call every connector route without, then with, credentials; return the recorded responses."""
    call = RecordingClient(app)
    _call_every_route_anonymously(call)
    _call_every_route_with_credentials(app, call, mock)
    connector = {
        rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint.split(".")[0] in ("processor", "oauth")
    }
    assert connector <= {endpoint for endpoint, _ in call.seen}
    return call


@pytest.fixture
def secret_app(make_app: Any) -> Flask:
    """An app holding both a secret key (sk_test_connector) and a webhook signing secret."""
    return make_app(STRIPE_WEBHOOK_SIGNING_SECRET=WEBHOOK_SECRET, STRIPE_APPLE_PAY_WELL_KNOWN="assoc-file")


def test_no_secret_in_any_response(secret_app: Flask, stripe_mock: responses.RequestsMock) -> None:
    for endpoint, response in exercise_every_route(secret_app, stripe_mock).seen:
        text = response.get_data(as_text=True) + str(response.headers)
        for secret in SECRETS:
            assert secret not in text, endpoint


def test_no_secret_in_the_logs_of_any_route(
    secret_app: Flask, stripe_mock: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    """At INFO (a usual production level, DEBUG for the connector's own loggers)."""
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="flask_psp_connector")
    exercise_every_route(secret_app, stripe_mock)
    logs = all_logs(caplog)
    assert "Stripe refused refundPayment" in logs  # the refusal was logged ...
    for secret in SECRETS:
        assert secret not in logs  # ... without the key Stripe echoed


def _get_payments_with_a_revoked_key(app: Flask, client: Any, mock: responses.RequestsMock) -> tuple[str, Any]:
    """GET /payments while Stripe refuses the key and echoes it; return (cart id, response)."""
    mock.add(responses.POST, PI_URL, status=401, json=STRIPE_AUTH_ERROR)
    cart_id, session_id = open_checkout(app)
    response = client.get("/payments", headers={"X-Session-Id": session_id})
    assert len(mock.calls) == 1
    return cart_id, response


def test_a_stripe_error_echoing_the_key_is_redacted_in_the_response(
    app: Flask, client: Any, stripe_mock: responses.RequestsMock
) -> None:
    cart_id, response = _get_payments_with_a_revoked_key(app, client, stripe_mock)
    assert response.status_code >= 400
    body = response.get_json()
    assert set(body) >= {"message", "statusCode", "errors"}
    assert "Invalid API Key provided" in body["message"]  # Stripe's message is kept ...
    assert SECRET_KEY not in response.get_data(as_text=True)  # ... but not the key in it
    assert app.extensions["psp_connector"].platform.payments_of_cart(cart_id) == []


def test_a_stripe_error_echoing_the_key_is_not_logged(
    app: Flask, client: Any, stripe_mock: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="flask_psp_connector")
    _get_payments_with_a_revoked_key(app, client, stripe_mock)
    assert caplog.records  # the Stripe call was logged at INFO ...
    assert SECRET_KEY not in all_logs(caplog)  # ... without the key


# -- unexpected errors ----------------------------------------------------------------------------

INTERNAL_ERROR = {
    "message": "Internal server error.",
    "statusCode": 500,
    "errors": [{"code": "General", "message": "Internal server error."}],
}


@pytest.mark.parametrize("log_level", [logging.INFO, logging.DEBUG])
def test_an_unexpected_exception_is_a_general_500_without_details(
    app: Flask, client: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, log_level: int
) -> None:
    caplog.set_level(log_level)
    monkeypatch.setattr(payments, "config_element", _boom)
    _, session_id = open_checkout(app)

    response = client.get("/config-element/payment", headers={"X-Session-Id": session_id})

    assert response.status_code == 500
    assert response.get_json() == INTERNAL_ERROR
    text = response.get_data(as_text=True)
    assert "boom" not in text and "Traceback" not in text
    logs = all_logs(caplog)
    assert "RuntimeError" in logs and "boom" in logs  # the failure is logged ...
    assert SECRET_KEY not in logs  # ... never with the secret
    if log_level > logging.DEBUG:
        assert "Traceback" not in logs
        assert all(record.exc_info is None for record in caplog.records)


def test_docs_reference_no_external_host_and_every_asset_is_served(app: Flask) -> None:
    client = app.test_client()
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    references = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(references) == 4 and "<script>" not in html and "style=" not in html
    for reference in references:
        assert reference.startswith("/") and not reference.startswith("//"), reference
        assert client.get(reference).status_code == 200, reference
    assert 'data-spec-url="/openapi.json"' in html

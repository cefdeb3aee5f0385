"""The API against its own OpenAPI document, with schemathesis.

Every operation of ``/openapi.json`` (processor, webhook, token, Commerce Layer and
Hantera routes) is called with generated requests, once without credentials and once
with valid ones (a live checkout session, OAuth and JWT bearers, HTTP Basic client
credentials, Commerce Layer and Stripe signatures over the generated body, Hantera's
job secret). No answer may be a server error or disagree with the document. Examples
are bounded and derived from a fixed seed, so a run takes the same path every time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import requests
import responses
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import InvalidArgument, Unsatisfiable
from joserfc import jwt
from joserfc.jwk import RSAKey
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from flask_psp_connector.gateways.commercelayer.signature import SIGNATURE_HEADER
from flask_psp_connector.gateways.commercelayer.signature import sign as sign_commerce_layer
from tests import hantera_support as ht
from tests.conftest import AppFactory, bearer, open_checkout
from tests.gateway_support import CALLBACK_URL, SHARED_SECRET
from tests.webhook_support import SECRETS

ISSUER = "https://auth.example.test"
JWKS_URL = f"{ISSUER}/.well-known/jwks.json"
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, status_code_conformance,
          negative_data_rejection]
EXAMPLES = 25


@pytest.fixture
def api(make_app: AppFactory, stripe_double: str) -> Iterator[SimpleNamespace]:
    """Every route configured: the Stripe double, JWKS and Hantera pinned with ``responses``."""
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    key = RSAKey.generate_key(2048, parameters={"kid": "contract"})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_passthru(stripe_double)
        mock.get(JWKS_URL, json={"keys": [key.as_dict(private=False)]})
        hantera = ht.FakeHantera(mock)
        hantera.cart("cart1", "30.00")
        app = make_app(
            STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card",
            STRIPE_WEBHOOK_SIGNING_SECRET=SECRETS[0],
            COMMERCELAYER_SHARED_SECRET=SHARED_SECRET, COMMERCELAYER_CALLBACK_URL=CALLBACK_URL,
            HANTERA_API_URL=ht.API, HANTERA_CLIENT_ID=ht.CLIENT_ID, HANTERA_CLIENT_SECRET=ht.CLIENT_SECRET,
            HANTERA_JOB_SECRET=ht.JOB_SECRET,
        )
        credentials = app.extensions["psp_connector"].clients.create_client("manage_project")
        token = jwt.encode({"alg": "RS256", "kid": "contract"}, {
            "iss": ISSUER, "exp": int(time.time()) + 3600, f"{ISSUER}/claims/project_key": "shop"}, key)
        yield SimpleNamespace(app=app, jwt=token, client=credentials, schema=schemathesis.openapi.from_wsgi(
            "/openapi.json", app))


_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                     suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])


def valid_credentials(api: SimpleNamespace, case: Any) -> tuple[dict[str, str], dict[str, Any]]:
    """Headers (and a fixed body) that authenticate ``case`` the way its operation asks."""
    path, headers, extra = case.operation.path, {}, {}
    security = case.operation.definition.raw.get("security") or []
    schemes = {name for requirement in security for name in requirement}
    if "sessionId" in schemes:
        headers["X-Session-Id"] = open_checkout(api.app)[1]
    if path.startswith("/operations/payment-intents"):
        headers.update(bearer(api.app, "manage_project"))
    elif "bearerAuth" in schemes:
        headers["Authorization"] = f"Bearer {api.jwt}"
    if "basicAuth" in schemes:
        headers["Authorization"] = requests.auth._basic_auth_str(api.client.client_id, api.client.client_secret)
    if "hanteraJob" in schemes:
        headers["Authorization"] = f"Bearer {ht.JOB_SECRET}"
    if "commerceLayerSignature" in schemes or path == "/stripe/webhooks":
        body = _serialized_body(case)
        extra["data"] = body
        if path == "/stripe/webhooks":
            headers["Stripe-Signature"] = stripe_signature(body)
        else:
            headers[SIGNATURE_HEADER] = sign_commerce_layer(body, SHARED_SECRET)
    return headers, extra


def stripe_signature(body: bytes, secret: str = SECRETS[0]) -> str:
    """Stripe's ``t=...,v1=...`` header over raw bytes (generated bodies need not be UTF-8)."""
    timestamp = int(time.time())
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _serialized_body(case: Any) -> bytes:
    sent = case.as_transport_kwargs()
    if "data" in sent:
        data = sent["data"]
        return data if isinstance(data, bytes) else str(data).encode()
    if "json" in sent:
        return json.dumps(sent["json"]).encode()
    return b""


def contract_failures(api: SimpleNamespace, *, authenticated: bool) -> list[str]:
    """Call every operation with generated requests (valid and invalid ones); return what failed."""
    failures: dict[str, str] = {}
    for result in api.schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _call_operation(api, operation, mode, authenticated=authenticated, failures=failures)
    return sorted(failures)


def _call_operation(api: SimpleNamespace, operation: Any, mode: GenerationMode, *, authenticated: bool,
                    failures: dict[str, str]) -> None:
    """Call ``operation`` with requests generated in ``mode``; add what failed to ``failures``."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @_SETTINGS
    def call(case: Any) -> None:
        headers, extra = valid_credentials(api, case) if authenticated else ({}, {})
        try:
            case.call_and_validate(headers=headers, checks=CHECKS, **extra)
        except (Exception, BaseExceptionGroup) as failure:  # schemathesis raises groups of failures
            failures.setdefault(f"{operation.label} [{mode.value}] {_summary(failure)}", str(failure))

    try:
        call()
    except (Unsatisfiable, InvalidArgument):  # no invalid request can be built for this operation
        return


def _summary(failure: BaseException) -> str:
    """The failure's title and the first lines of what it found."""
    parts = [failure] + list(getattr(failure, "exceptions", ()))
    text = " | ".join(" ".join(str(part).split())[:240] for part in parts)
    return text[:700]


def test_the_api_keeps_its_document_without_credentials(api: SimpleNamespace) -> None:
    failures = contract_failures(api, authenticated=False)
    assert not failures, "\n\n".join(failures)


def test_the_api_keeps_its_document_with_valid_credentials(api: SimpleNamespace) -> None:
    failures = contract_failures(api, authenticated=True)
    assert not failures, "\n\n".join(failures)

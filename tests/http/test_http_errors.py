"""The HTTP surfaces as each app builds them: blueprints of its own, and every error of a
route answered in its protocol's shape (processor, Commerce Layer, Hantera) by one renderer."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask

from flask_psp_connector.gateways.commercelayer.actions import CommerceLayerGateway
from flask_psp_connector.gateways.hantera.actions import HanteraGateway
from flask_psp_connector.processor import express
from tests import gateway_support as cl
from tests import hantera_support as ht
from tests.conftest import SECRET_KEY, AppFactory

BLUEPRINTS = ("processor", "oauth", "commercelayer", "hantera", "psp_docs", "psp_assets")
HANTERA_CHECKOUT = "/gateways/hantera/ingress/commerce/carts/cart1/payment/stripe"


def gateway_app(make_app: AppFactory) -> Flask:
    """An app with both external gateways configured (their use cases are not called)."""
    return make_app(COMMERCELAYER_SHARED_SECRET=cl.SHARED_SECRET, COMMERCELAYER_CALLBACK_URL=cl.CALLBACK_URL,
                    HANTERA_API_URL=ht.API, HANTERA_CLIENT_ID=ht.CLIENT_ID, HANTERA_CLIENT_SECRET=ht.CLIENT_SECRET,
                    HANTERA_JOB_SECRET=ht.JOB_SECRET)


def explode(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError(f"the backend failed with {SECRET_KEY}")


def test_every_app_builds_blueprints_of_its_own(make_app: AppFactory) -> None:
    first, second = gateway_app(make_app), gateway_app(make_app)
    for name in BLUEPRINTS:
        assert first.blueprints[name] is not second.blueprints[name], name
    for app in (first, second):
        client = app.test_client()
        assert client.get("/operations/config").status_code == 401
        assert client.post(HANTERA_CHECKOUT, json=["not", "an", "object"]).get_json()["errors"][0]["code"] == "invalid_body"
        assert client.get("/docs").status_code == 200
        assert client.get("/psp-assets/psp-common.js").status_code == 200


def test_an_unexpected_failure_on_the_processor_is_upstreams_500(make_app: AppFactory, monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(express, "express_config", explode)
    with caplog.at_level(logging.ERROR, logger="flask_psp_connector"):
        response = make_app().test_client().post("/express-config", json={})
    assert response.status_code == 500
    assert response.get_json() == {"message": "Internal server error.", "statusCode": 500,
                                   "errors": [{"code": "General", "message": "Internal server error."}]}
    assert "Unexpected RuntimeError on POST /express-config" in caplog.text
    assert SECRET_KEY not in caplog.text


def test_an_unexpected_failure_on_hantera_routes_is_in_hanteras_shape(make_app: AppFactory, monkeypatch: pytest.MonkeyPatch,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(HanteraGateway, "checkout", explode)
    with caplog.at_level(logging.ERROR, logger="flask_psp_connector"):
        response = gateway_app(make_app).test_client().post(HANTERA_CHECKOUT, json={})
    assert response.status_code == 500
    assert response.get_json() == {"errors": [{"code": "internal_error", "message": "Internal server error."}]}
    assert f"Unexpected RuntimeError on POST {HANTERA_CHECKOUT}" in caplog.text
    assert SECRET_KEY not in caplog.text


@pytest.mark.parametrize(("action", "method", "document", "transaction_fields"), [
    ("authorize", "authorize", cl.authorize("ep1", "pm_card_visa", 3000), True),
    ("token", "customer_token", cl.customer_source("src1", "pm_card_visa"), False),
])
def test_an_unexpected_failure_on_commerce_layer_routes_is_the_protocols_failure(
        make_app: AppFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        action: str, method: str, document: dict[str, Any], transaction_fields: bool) -> None:
    monkeypatch.setattr(CommerceLayerGateway, method, explode)
    with caplog.at_level(logging.ERROR, logger="flask_psp_connector"):
        response = cl.post(gateway_app(make_app).test_client(), action, document)
    assert response.status_code == 500
    data = {"error": {"code": "internal_error", "message": "Internal server error."}}
    if transaction_fields:  # the token route saves no transaction, so its answers name none
        data = {"transaction_token": None, "amount_cents": None, **data}
    assert response.get_json() == {"success": False, "data": data}
    assert f"Unexpected RuntimeError on POST {cl.BASE}/{action}" in caplog.text
    assert SECRET_KEY not in caplog.text


def test_a_refused_payload_names_its_first_problem_in_each_gateway_shape(make_app: AppFactory) -> None:
    client = gateway_app(make_app).test_client()
    refused = cl.post(client, "authorize", {"data": {"type": "payments"}})
    assert refused.status_code == 422
    assert refused.get_json()["data"]["error"] == {"code": "invalid_payload",
                                                  "message": "data.id: Missing data for required field."}
    job = client.post("/gateways/hantera/jobs/capture", json={"externalReference": "pi_1", "amount": "ten"},
                      headers={"Authorization": f"Bearer {ht.JOB_SECRET}"})
    assert job.status_code == 422
    assert job.get_json() == {"errors": [{"code": "invalid_body", "message": "amount: Not a valid number."}]}

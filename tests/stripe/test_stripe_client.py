"""The Stripe adapter: pinned version, app info, error translation, latest_charge forms."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests
import responses

from flask_psp_connector.domain.stripe_status import charge_id
from flask_psp_connector.errors import StripeAPIError
from flask_psp_connector.stripe.adapter import STRIPE_API_VERSION, StripeGateway
from tests.conftest import STRIPE_API

PI_URL = f"{STRIPE_API}/v1/payment_intents/pi_1"


@pytest.fixture
def gateway() -> StripeGateway:
    return StripeGateway("sk_test_adapter", max_network_retries=0)


def test_requests_carry_version_and_app_info(gateway, stripe_mock) -> None:
    stripe_mock.add(responses.GET, PI_URL, json={"id": "pi_1", "object": "payment_intent"})
    assert gateway.retrieve_payment_intent("pi_1") == {"id": "pi_1", "object": "payment_intent"}
    headers = stripe_mock.calls[0].request.headers
    assert headers["Stripe-Version"] == STRIPE_API_VERSION
    assert json.loads(headers["X-Stripe-Client-User-Agent"])["application"]["name"] == "flask-psp-connector"


def test_card_decline_keeps_code_status_and_decline_code(gateway, stripe_mock) -> None:
    stripe_mock.add(responses.GET, PI_URL, status=402, json={"error": {
        "type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds."}})
    with pytest.raises(StripeAPIError) as excinfo:
        gateway.retrieve_payment_intent("pi_1")
    error = excinfo.value
    assert (error.code, error.status, error.decline_code, error.transient) == (
        "card_declined", 402, "insufficient_funds", False)
    assert error.message == "Your card has insufficient funds."


@pytest.mark.parametrize(
    "failure",
    [{"body": requests.ConnectionError("reset")}, {"status": 500, "json": {"error": {"type": "api_error", "message": "x"}}},
     {"status": 429, "json": {"error": {"type": "rate_limit_error", "message": "slow down"}}}],
)
def test_network_and_server_failures_are_transient(gateway, stripe_mock, failure) -> None:
    stripe_mock.add(responses.GET, PI_URL, **failure)
    with pytest.raises(StripeAPIError) as excinfo:
        gateway.retrieve_payment_intent("pi_1")
    assert excinfo.value.transient
    assert excinfo.value.status >= 429


def test_secret_keys_in_stripe_messages_are_masked(gateway, stripe_mock) -> None:
    stripe_mock.add(responses.GET, PI_URL, status=401, json={"error": {
        "type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_adapter"}})
    with pytest.raises(StripeAPIError) as excinfo:
        gateway.retrieve_payment_intent("pi_1")
    assert "sk_test_adapter" not in excinfo.value.message
    assert excinfo.value.status == 401


@pytest.mark.parametrize(
    ("intent", "expected"),
    [({"latest_charge": "ch_1"}, "ch_1"), ({"latest_charge": {"id": "ch_2", "object": "charge"}}, "ch_2"),
     ({"latest_charge": None}, None), ({}, None)],
)
def test_latest_charge_as_id_or_expanded_object(intent, expected) -> None:
    assert charge_id(intent) == expected


def test_api_base_override(stripe_mock) -> None:
    gateway = StripeGateway("sk_test_adapter", api_base="http://127.0.0.1:9", max_network_retries=0)
    stripe_mock.add(responses.GET, "http://127.0.0.1:9/v1/payment_intents/pi_1", json={"id": "pi_1"})
    assert gateway.retrieve_payment_intent("pi_1")["id"] == "pi_1"


def test_importing_the_adapter_leaves_stripe_python_alone() -> None:
    """App info and log redaction are set when a gateway is made, not by an import."""
    probe = (
        "import logging, stripe\n"
        "import flask_psp_connector.stripe.adapter as adapter\n"
        "print(stripe.app_info is None, len(logging.getLogger('stripe').filters))\n"
        "adapter.StripeGateway('sk_test_probe'); adapter.StripeGateway('sk_test_probe')\n"
        "print(stripe.app_info['name'], len(logging.getLogger('stripe').filters))\n"
    )
    output = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split("\n")
    assert output[:2] == ["True 0", "flask-psp-connector 1"]

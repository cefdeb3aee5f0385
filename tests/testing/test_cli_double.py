"""``flask psp post-deploy``, ``pre-undeploy`` and ``reconcile`` against the Stripe API double."""

from __future__ import annotations

import pytest
import requests

from flask_psp_connector.webhooks.events import HANDLED_EVENTS
from tests.conftest import SECRET_KEY, open_checkout

URL = "https://shop.example.test/stripe/webhooks"


@pytest.fixture
def app(make_app, stripe_double):
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    for endpoint in requests.get(f"{stripe_double}/v1/webhook_endpoints", auth=(SECRET_KEY, ""), timeout=5).json()["data"]:
        requests.delete(f"{stripe_double}/v1/webhook_endpoints/{endpoint['id']}", auth=(SECRET_KEY, ""), timeout=5)
    return make_app(STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card", PSP_PUBLIC_URL="https://shop.example.test")


def run(app, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=["psp", *args])
    assert result.exit_code == 0, result.output
    return result.output


def endpoints(stripe_double: str) -> list[dict]:
    return requests.get(f"{stripe_double}/v1/webhook_endpoints", auth=(SECRET_KEY, ""), timeout=5).json()["data"]


def test_post_deploy_creates_the_endpoint_once_and_pre_undeploy_removes_it(app, stripe_double) -> None:
    created = run(app, "post-deploy")
    assert "Set STRIPE_WEBHOOK_SIGNING_SECRET=whsec_" in created
    [endpoint] = endpoints(stripe_double)
    assert (endpoint["url"], sorted(endpoint["enabled_events"]), endpoint["status"]) == (URL, sorted(HANDLED_EVENTS), "enabled")
    assert "nothing changed" in run(app, "post-deploy")
    requests.post(f"{stripe_double}/v1/webhook_endpoints/{endpoint['id']}", auth=(SECRET_KEY, ""), timeout=5,
                  data={"disabled": "true", "enabled_events[0]": "charge.succeeded"})
    assert "Updated webhook endpoint" in run(app, "post-deploy")
    [repaired] = endpoints(stripe_double)
    assert (sorted(repaired["enabled_events"]), repaired["status"]) == (sorted(HANDLED_EVENTS), "enabled")
    assert f"Deleted webhook endpoint {endpoint['id']}" in run(app, "pre-undeploy")
    assert endpoints(stripe_double) == []


def test_reconcile_adds_what_a_missed_webhook_never_delivered(app, stripe_double_client) -> None:
    cart_id, session_id = open_checkout(app)
    answer = app.test_client().post("/payments", json={}, headers={"X-Session-Id": session_id}).get_json()
    intent_id = answer["sClientSecret"].split("_secret_")[0]
    stripe_double_client.v1.payment_intents.confirm(intent_id, params={"payment_method": "pm_card_visa"})
    dry = run(app, "reconcile", "--since", "1h")
    assert f"{intent_id} (succeeded) payment_intent.succeeded: missing" in dry and "1 payment(s) to change" in dry
    assert "1 payment(s) changed" in run(app, "reconcile", "--since", "1h", "--apply")
    assert app.extensions["psp_connector"].platform.find_order_by_cart(cart_id) is not None
    assert "0 payment(s)" in run(app, "reconcile", "--since", "1h")

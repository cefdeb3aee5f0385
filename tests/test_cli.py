"""``flask psp`` commands, with the Stripe API pinned."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import responses

from flask_psp_connector import LineItemDraft
from flask_psp_connector.webhooks.events import HANDLED_EVENTS
from tests.conftest import STRIPE_API
from tests.webhook_support import SECRETS, charge, event, intent, stored_payment, summary

ENDPOINTS = f"{STRIPE_API}/v1/webhook_endpoints"
URL = "https://shop.example.test/stripe/webhooks"


@pytest.fixture
def app(make_app):
    return make_app(PSP_PUBLIC_URL="https://shop.example.test", STRIPE_WEBHOOK_SIGNING_SECRET=SECRETS[0])


def run(app, *args: str):
    result = app.test_cli_runner().invoke(args=["psp", *args])
    return result


def endpoint(endpoint_id: str = "we_1", url: str = URL, events=HANDLED_EVENTS, status: str = "enabled", **extra):
    return {"id": endpoint_id, "object": "webhook_endpoint", "url": url, "enabled_events": list(events),
            "status": status, "metadata": {}, **extra}


def listing(*endpoints):
    return {"object": "list", "data": list(endpoints), "has_more": False, "url": "/v1/webhook_endpoints"}


def form(call) -> list[tuple[str, str]]:
    return parse_qsl(call.request.body)


def test_post_deploy_creates_the_endpoint_once_and_prints_its_secret(app, stripe_mock) -> None:
    stripe_mock.add(responses.GET, ENDPOINTS, json=listing())
    stripe_mock.add(responses.POST, ENDPOINTS, json=endpoint(secret="whsec_new_secret",
                                                             metadata={"created_by": "flask-psp-connector"}))
    result = run(app, "post-deploy")
    assert result.exit_code == 0, result.output
    assert "whsec_new_secret" in result.output
    sent = form(stripe_mock.calls[1])
    assert ("url", URL) in sent
    assert sorted(v for k, v in sent if k.startswith("enabled_events")) == sorted(HANDLED_EVENTS)
    assert ("metadata[created_by]", "flask-psp-connector") in sent

    # second run: found by URL, already right, nothing written
    stripe_mock.replace(responses.GET, ENDPOINTS, json=listing(endpoint(metadata={"created_by": "flask-psp-connector"})))
    again = run(app, "post-deploy")
    assert "nothing changed" in again.output
    assert [c.request.method for c in stripe_mock.calls] == ["GET", "POST", "GET"]


def test_post_deploy_points_the_configured_endpoint_at_this_deployment(make_app, stripe_mock) -> None:
    app = make_app(PSP_PUBLIC_URL="https://shop.example.test", PSP_URL_PREFIX="/psp", STRIPE_WEBHOOK_ID="we_ops")
    stripe_mock.add(responses.GET, f"{ENDPOINTS}/we_ops", json=endpoint("we_ops", url="https://old.example.test/hook",
                                                                      events=["charge.succeeded"]))
    stripe_mock.add(responses.POST, f"{ENDPOINTS}/we_ops", json=endpoint("we_ops"))
    result = run(app, "post-deploy")
    assert result.exit_code == 0, result.output
    sent = form(stripe_mock.calls[1])
    assert ("url", "https://shop.example.test/psp/stripe/webhooks") in sent
    assert ("disabled", "false") in sent
    assert sorted(v for k, v in sent if k.startswith("enabled_events")) == sorted(HANDLED_EVENTS)
    assert "whsec" not in result.output


def test_post_deploy_needs_the_public_url(make_app) -> None:
    result = run(make_app(), "post-deploy")
    assert result.exit_code != 0 and "PSP_PUBLIC_URL" in result.output


def test_pre_undeploy_deletes_only_what_post_deploy_created(app, stripe_mock) -> None:
    ours = endpoint("we_ours", metadata={"created_by": "flask-psp-connector"})
    theirs = endpoint("we_theirs")
    stripe_mock.add(responses.GET, ENDPOINTS, json=listing(ours, theirs))
    stripe_mock.add(responses.DELETE, f"{ENDPOINTS}/we_ours", json={"id": "we_ours", "deleted": True})
    result = run(app, "pre-undeploy")
    assert result.exit_code == 0, result.output
    assert [c.request.method for c in stripe_mock.calls] == ["GET", "DELETE"]


def test_pre_undeploy_disables_a_configured_endpoint(make_app, stripe_mock) -> None:
    app = make_app(PSP_PUBLIC_URL="https://shop.example.test", STRIPE_WEBHOOK_ID="we_ops")
    stripe_mock.add(responses.POST, f"{ENDPOINTS}/we_ops", json=endpoint("we_ops", status="disabled"))
    assert run(app, "pre-undeploy").exit_code == 0
    assert form(stripe_mock.calls[0]) == [("disabled", "true")]


def test_events_list_and_replay(app, stripe_mock) -> None:
    _, payment_id, pi = stored_payment(app)
    processing = event("payment_intent.processing", intent(pi, payment_id, status="processing"))
    from tests.webhook_support import post_event

    post_event(app.test_client(), processing)
    listed = run(app, "events", "list")
    assert processing["id"] in listed.output and "processed" in listed.output

    succeeded = event("payment_intent.succeeded", intent(pi, payment_id, status="succeeded", received=3000))
    stripe_mock.add(responses.GET, f"{STRIPE_API}/v1/events/{succeeded['id']}", json=succeeded)
    for _ in range(2):
        result = run(app, "events", "replay", succeeded["id"])
        assert result.exit_code == 0, result.output
    assert summary(app.extensions["psp_connector"].platform.get_payment(payment_id)) == [
        ("Authorization", "Success", pi, 3000), ("Charge", "Success", pi, 3000)]


def nothing_else_changed_since(stripe_mock) -> None:
    """Stripe lists no refund, dispute or capture, and each charge is a plain captured one."""
    for path in ("refunds", "disputes", "balance_transactions"):
        stripe_mock.add(responses.GET, f"{STRIPE_API}/v1/{path}",
                        json={"object": "list", "data": [], "has_more": False, "url": f"/v1/{path}"})

    def plain_charge(request: Any) -> tuple[int, dict[str, str], str]:
        return 200, {}, json.dumps(charge("pi_" + request.url.rsplit("/ch_", 1)[1]))

    stripe_mock.add_callback(responses.GET, re.compile(re.escape(f"{STRIPE_API}/v1/charges/") + "ch_.*"),
                             callback=plain_charge)


def test_reconcile_is_a_dry_run_unless_applied(app, stripe_mock) -> None:
    nothing_else_changed_since(stripe_mock)
    cart_id, payment_id, pi = stored_payment(app)
    _, other_payment, other_pi = stored_payment(app)
    intents = [intent(pi, payment_id, status="succeeded", received=3000),
               intent(other_pi, other_payment, status="requires_payment_method"),
               intent("pi_not_ours", None, status="succeeded", received=100)]
    stripe_mock.add(responses.GET, f"{STRIPE_API}/v1/payment_intents",
                    json={"object": "list", "data": intents, "has_more": False, "url": "/v1/payment_intents"})
    store = app.extensions["psp_connector"].platform

    dry = run(app, "reconcile", "--since", "2d")
    assert dry.exit_code == 0, dry.output
    assert (f"{pi} (succeeded) payment_intent.succeeded: missing Authorization Success 3000 ({pi}), "
            f"Charge Success 3000 ({pi}), order") in dry.output
    assert "1 payment(s) to change" in dry.output
    assert summary(store.get_payment(payment_id)) == [("Authorization", "Initial", pi, 3000)]
    assert "created[gte]" in stripe_mock.calls[0].request.url.replace("%5B", "[").replace("%5D", "]")

    applied = run(app, "reconcile", "--since", "2026-01-01", "--apply")
    assert "1 payment(s) changed" in applied.output
    assert summary(store.get_payment(payment_id))[1] == ("Charge", "Success", pi, 3000)
    assert store.find_order_by_cart(cart_id).payment_state == "Paid"
    assert "0 payment(s)" in run(app, "reconcile", "--apply").output


def test_reconcile_refuses_a_bad_since(app) -> None:
    result = run(app, "reconcile", "--since", "yesterday-ish")
    assert result.exit_code != 0 and "yesterday-ish" in result.output


def test_reconcile_refunds_a_payment_for_a_cart_state_that_is_gone(app, stripe_mock) -> None:
    nothing_else_changed_since(stripe_mock)
    cart_id, payment_id, pi = stored_payment(app)
    store = app.extensions["psp_connector"].platform
    store.update_cart(cart_id, line_items=[LineItemDraft("tee", "T-shirt", 3, 1500)])  # after the payment was made
    stripe_mock.add(responses.GET, f"{STRIPE_API}/v1/payment_intents", json={
        "object": "list", "data": [intent(pi, payment_id, status="succeeded", received=3000)], "has_more": False,
        "url": "/v1/payment_intents"})
    stripe_mock.add(responses.POST, f"{STRIPE_API}/v1/refunds", json={
        "id": "re_reconciled", "object": "refund", "amount": 3000, "currency": "eur", "status": "succeeded"})

    dry = run(app, "reconcile")
    assert "no order: it pays for no order of its cart (cart_changed)" in dry.output
    assert not [c for c in stripe_mock.calls if c.request.url.endswith("/v1/refunds")]

    run(app, "reconcile", "--apply")
    assert store.find_order_by_cart(cart_id) is None
    assert summary(store.get_payment(payment_id))[-1] == ("Refund", "Success", "re_reconciled", 3000)
    assert "0 payment(s)" in run(app, "reconcile", "--apply").output
    assert len([c for c in stripe_mock.calls if c.request.url.endswith("/v1/refunds")]) == 1


ROOT = Path(__file__).resolve().parent.parent


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in getattr(group, "commands", {}).items():
        found += _commands(command, (*prefix, name)) if hasattr(command, "commands") else [(*prefix, name)]
    return found


def test_every_command_has_help_with_no_configuration_at_all(tmp_path) -> None:
    from flask_psp_connector.cli import psp_commands

    environment = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}

    def helped(command: tuple[str, ...]) -> Any:
        return subprocess.run([sys.executable, "-m", "flask", "--app", "demo_shop", "psp", *command, "--help"],
                              cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)

    commands = _commands(psp_commands())
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(helped, commands))
    for command, result in zip(commands, results, strict=True):
        assert result.returncode == 0, (command, result.stderr)
        assert result.stdout.startswith(f"Usage: python -m flask psp {' '.join(command)}".rstrip())
        assert result.stderr == "", (command, result.stderr)


def test_a_command_that_needs_stripe_says_so_in_one_line(tmp_path) -> None:
    environment = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "demo_shop", "psp", "reconcile"],
                            cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: STRIPE_SECRET_KEY is not configured."


def test_a_refusal_is_one_line_not_a_traceback(app, stripe_mock) -> None:
    stripe_mock.add(responses.GET, f"{STRIPE_API}/v1/payment_intents", status=401,
                    json={"error": {"type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_***"}})
    result = run(app, "reconcile")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.count("\n") == 1 and result.output.startswith("Error: ")


def test_the_procfile_and_app_json_name_what_exists() -> None:
    import json

    from flask_psp_connector.settings import SETTINGS

    root = ROOT
    processes = dict(line.split(": ", 1) for line in (root / "Procfile").read_text().splitlines())
    assert set(processes) == {"web", "worker", "release"}
    assert processes["worker"] == "flask --app demo_shop psp gateways deliver --loop"
    manifest = json.loads((root / "app.json").read_text())
    assert set(manifest["formation"]) <= set(processes)
    known = {s.key for s in SETTINGS} | {"SECRET_KEY", "SHOP_ADMIN_PASSWORD", "WEB_CONCURRENCY", "GUNICORN_THREADS"}
    assert set(manifest["env"]) <= known
    assert all(spec["description"] for spec in manifest["env"].values())
    assert manifest["env"]["SECRET_KEY"]["generator"] == "secret"

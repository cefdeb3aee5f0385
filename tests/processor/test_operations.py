"""Operations: metrics, traces, kept failures and their replay, webhook health, alert rules."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from prometheus_client.parser import text_string_to_metric_families

from flask_psp_connector.errors import PlatformUnavailable
from flask_psp_connector.observability import telemetry
from tests.conftest import open_checkout
from tests.processor.test_checkout_pinned import PI_URL, echo_intent
from tests.processor.test_stale_payments import browser_pays, pi_of
from tests.server_support import gunicorn
from tests.webhook_support import SECRETS, event, intent, post_event, sign, stored_payment, summary

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "examples" / "prometheus" / "alerts.yml"


def samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, by name and labels."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(exposition) for s in family.samples}


def value(exposition: str, name: str, **labels: str) -> float:
    return samples(exposition).get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def metrics_app(make_app: Any) -> Any:
    return make_app(STRIPE_WEBHOOK_SIGNING_SECRET=SECRETS[0], PSP_METRICS_PATH="/metrics",
                    PSP_METRICS_TOKEN="scrape-token")


def scrape(client: Any) -> str:
    response = client.get("/metrics", headers={"Authorization": "Bearer scrape-token"})
    assert response.status_code == 200 and response.mimetype == "text/plain"
    return response.get_data(as_text=True)


# -- metrics --------------------------------------------------------------------------------------


def test_metrics_count_requests_events_payments_and_calls(metrics_app, stripe_mock) -> None:
    client = metrics_app.test_client()
    before = scrape(client)
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    _, session_id = open_checkout(metrics_app)
    for _ in range(3):
        assert client.get("/payments", headers={"X-Session-Id": session_id}).status_code == 200
    cart_id, payment_id, pi = stored_payment(metrics_app)
    succeeded = event("payment_intent.succeeded", intent(pi, payment_id, status="succeeded", received=3000))
    for delivered in (succeeded, succeeded, event("payment_intent.succeeded", intent("pi_not_ours", None, status="succeeded"))):
        assert post_event(client, delivered).status_code == 200

    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("psp_http_requests_total", route="/payments", method="GET", status="200") == 3
    assert grew("psp_http_request_duration_seconds_count", route="/payments", method="GET") == 3
    assert grew("psp_webhook_events_total", type="payment_intent.succeeded", outcome="applied") == 1
    assert grew("psp_webhook_events_total", type="payment_intent.succeeded", outcome="duplicate") == 1
    assert grew("psp_webhook_events_total", type="payment_intent.succeeded", outcome="ignored") == 1
    assert grew("psp_webhook_event_lag_seconds_count", type="payment_intent.succeeded") == 2  # duplicates lag nothing
    assert grew("psp_payments_total", outcome="succeeded") == 1
    # one PaymentIntent for the three calls: the retries reuse it
    assert grew("psp_external_calls_total", service="stripe", operation="create_payment_intent", status="ok") == 1
    assert grew("psp_external_calls_total", service="store", operation="process_event", status="ok") == 3
    assert store_orders(metrics_app, cart_id)


def store_orders(app: Any, cart_id: str) -> Any:
    return app.extensions["psp_connector"].platform.find_order_by_cart(cart_id)


def test_metrics_refuse_a_wrong_token_and_are_off_by_default(metrics_app, make_app) -> None:
    client = metrics_app.test_client()
    for header in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "scrape-token"}):
        assert client.get("/metrics", headers=header).status_code == 401
    assert make_app().test_client().get("/metrics").status_code == 404


def test_a_failed_event_is_counted_kept_listed_and_replayed_from_the_store(metrics_app, monkeypatch) -> None:
    client = metrics_app.test_client()
    platform = metrics_app.extensions["psp_connector"].platform
    _, payment_id, pi = stored_payment(metrics_app)
    succeeded = event("payment_intent.succeeded", intent(pi, payment_id, status="succeeded", received=3000))
    before = scrape(client)
    real = platform.process_event

    def down(*args: Any, **kwargs: Any) -> Any:
        raise PlatformUnavailable("The payment store is unavailable.")

    monkeypatch.setattr(platform, "process_event", down)
    assert post_event(client, succeeded).status_code == 503
    assert post_event(client, succeeded).status_code == 503
    monkeypatch.setattr(platform, "process_event", real)

    [failure] = platform.event_failures()
    assert (failure.event_id, failure.attempts, failure.resolved) == (succeeded["id"], 2, False)
    assert failure.error == "PlatformUnavailable: The payment store is unavailable."
    assert json.loads(platform.stored_event(succeeded["id"])) == succeeded
    after = scrape(client)
    assert value(after, "psp_webhook_events_total", type="payment_intent.succeeded", outcome="failed") - value(
        before, "psp_webhook_events_total", type="payment_intent.succeeded", outcome="failed") == 2
    runner = metrics_app.test_cli_runner()
    listed = runner.invoke(args=["psp", "events", "list"])
    assert f"{succeeded['id']}  payment_intent.succeeded          failing    2 attempt(s)" in listed.output

    # replayed from the stored copy: no call to Stripe is needed (none is pinned)
    replayed = runner.invoke(args=["psp", "events", "replay", succeeded["id"]])
    assert replayed.exit_code == 0 and f"{succeeded['id']}: processed" in replayed.output
    assert ("Charge", "Success", pi, 3000) in summary(platform.get_payment(payment_id))
    assert [f.resolved for f in platform.event_failures()] == [True]
    assert "failing" not in runner.invoke(args=["psp", "events", "list"]).output


def test_webhook_health_is_down_while_an_event_keeps_failing(metrics_app, monkeypatch) -> None:
    from flask_psp_connector.processor.health import CheckFailed, webhook_health

    platform = metrics_app.extensions["psp_connector"].platform
    assert webhook_health(platform) == "No Stripe event received yet."
    platform.record_event_failure("evt_down", "payment_intent.succeeded", "PlatformUnavailable: down", "{}")
    with pytest.raises(CheckFailed, match="1 event\\(s\\) failed in the last hour, e.g. evt_down"):
        webhook_health(platform)


def test_correlation_ids_are_returned_and_passed_on(make_app, stripe_mock) -> None:
    client = make_app().test_client()
    given = client.get("/config-element/payment", headers={"X-Correlation-ID": "abc-123"})
    assert given.headers["X-Correlation-ID"] == "abc-123"
    from_request_id = client.get("/config-element/payment", headers={"X-Request-ID": "req-9"})
    assert from_request_id.headers["X-Correlation-ID"] == "req-9"
    made = client.get("/config-element/payment", headers={"X-Correlation-ID": "bad value;<script>"})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Correlation-ID"])


# -- under gunicorn ---------------------------------------------------------------------------------


@pytest.fixture
def two_workers(tmp_path: Path, stripe_double: str) -> Iterator[tuple[str, str, Path]]:
    """The connector under gunicorn with two gthread workers (as the Procfile runs it), metrics in
    multiprocess mode."""
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    database = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {"PSP_DATABASE_URL": database, "STRIPE_SECRET_KEY": "sk_test_server", "STRIPE_API_BASE": stripe_double,
           "STRIPE_PAYMENT_METHOD_TYPES": "card", "STRIPE_WEBHOOK_SIGNING_SECRET": SECRETS[0],
           "PSP_METRICS_PATH": "/metrics", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "HOME": str(tmp_path)}
    with gunicorn(env, "--workers", "2", "--threads", "4", "--timeout", "120") as base:
        yield base, database, metrics_dir


def test_metrics_add_up_across_gunicorn_workers(two_workers, make_app, stripe_double, stripe_double_client) -> None:
    base, database, metrics_dir = two_workers
    app = make_app(PSP_DATABASE_URL=database, STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card")
    cart_id, session_id = open_checkout(app)
    body = requests.get(f"{base}/payments", headers={"X-Session-Id": session_id}, timeout=30).json()
    paid = browser_pays(stripe_double_client, body)
    confirmed = requests.post(f"{base}/confirmPayments/{body['paymentReference']}", json={"paymentIntent": pi_of(body)},
                              headers={"X-Session-Id": session_id}, timeout=30)
    assert confirmed.json() == {"outcome": "approved"}
    payload = json.dumps(event("payment_intent.succeeded", paid))
    headers = {"Stripe-Signature": sign(payload), "Content-Type": "application/json"}
    for _ in range(4):
        assert requests.post(f"{base}/stripe/webhooks", data=payload, headers=headers, timeout=30).status_code == 200
    def element_config(_: int) -> int:
        return requests.get(f"{base}/config-element/payment", headers={"X-Session-Id": session_id},
                            timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:  # at once, so that both workers answer some
        assert list(pool.map(element_config, range(40))) == [400] * 40  # paid in full now

    scrapes = [requests.get(f"{base}/metrics", timeout=30).text for _ in range(4)]

    assert len({p.name for p in metrics_dir.glob("counter_*.db")}) == 2  # both workers served and counted
    for exposition in scrapes:  # whichever worker answers, the sums are the whole server's
        assert value(exposition, "psp_http_requests_total", route="/config-element/<payment_component>",
                     method="GET", status="400") == 40
        assert value(exposition, "psp_webhook_events_total", type="payment_intent.succeeded", outcome="applied") == 1
        assert value(exposition, "psp_webhook_events_total", type="payment_intent.succeeded", outcome="duplicate") == 3
        assert value(exposition, "psp_payments_total", outcome="succeeded") == 1
        assert value(exposition, "psp_external_calls_total", service="stripe", operation="create_payment_intent",
                     status="ok") == 1
        assert value(exposition, "psp_external_calls_total", service="stripe", operation="retrieve_payment_intent",
                     status="ok") == 1
    assert app.extensions["psp_connector"].platform.find_order_by_cart(cart_id).payment_state == "Paid"


# -- traces ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spans() -> Any:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


def test_a_request_is_a_span_with_child_spans_for_stripe_and_the_store(spans, make_app, stripe_mock) -> None:
    app = make_app(STRIPE_WEBHOOK_SIGNING_SECRET=SECRETS[0])
    client = app.test_client()
    stripe_mock.add_callback(responses.POST, PI_URL, callback=echo_intent)
    _, session_id = open_checkout(app)
    spans.clear()
    body = client.get("/payments", headers={"X-Session-Id": session_id, "X-Correlation-ID": "trace-me"}).get_json()

    finished = spans.get_finished_spans()
    [request_span] = [s for s in finished if s.name == "GET /payments"]
    assert request_span.attributes["psp.correlation_id"] == "trace-me"
    assert request_span.attributes["psp.payment_id"] == body["paymentReference"]
    assert request_span.attributes["http.status_code"] == 200
    children = {s.name for s in finished if s.parent is not None and s.parent.span_id == request_span.context.span_id}
    assert {"stripe create_payment_intent", "store create_payment", "store get_checkout"} <= children

    _, payment_id, pi = stored_payment(app)
    succeeded = event("payment_intent.succeeded", intent(pi, payment_id, status="succeeded", received=3000))
    spans.clear()
    post_event(client, succeeded)
    [webhook_span] = [s for s in spans.get_finished_spans() if s.name == "POST /stripe/webhooks"]
    assert webhook_span.attributes["psp.event_id"] == succeeded["id"]
    assert webhook_span.attributes["psp.payment_id"] == payment_id


# -- alert rules ------------------------------------------------------------------------------------


def test_alert_rules_use_only_metrics_we_export(metrics_app) -> None:
    exported = {family.name for family in text_string_to_metric_families(scrape(metrics_app.test_client()))}
    exported |= {"psp_outbox_depth", "psp_outbox_oldest_age_seconds"}  # read at scrape time, with an outbox
    assert exported >= set(telemetry.METRIC_NAMES) - {"psp_outbox_depth", "psp_outbox_oldest_age_seconds"}
    suffixes = ("_total", "_bucket", "_count", "_sum")
    used = set(re.findall(r"\b(psp_[a-z_]+)", ALERTS.read_text()))
    assert used, "no metric in the alert rules"
    for name in used:
        base = next((name[: -len(s)] for s in suffixes if name.endswith(s) and name[: -len(s)] in exported), name)
        assert base in exported, f"{name} is not a metric the connector exports"


def promtool() -> str | None:
    return shutil.which("promtool") or shutil.which("promtool", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(promtool() is None and not os.environ.get("CI"), reason="promtool is not installed here")
def test_alert_rules_pass_promtool_and_their_unit_tests() -> None:
    tool = promtool()
    assert tool, "CI installs promtool (scripts/ensure-promtool)"
    checked = subprocess.run([tool, "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([tool, "test", "rules", str(ALERTS.with_name("alerts.test.yml"))], capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_commerce_layer_outbox_backlog_is_read_at_scrape_time(make_app) -> None:
    from datetime import datetime, timedelta

    from flask_psp_connector.platforms.embedded.schema import GatewayCallbackRow

    app = make_app(PSP_METRICS_PATH="/metrics", COMMERCELAYER_SHARED_SECRET="cl-secret",
                   COMMERCELAYER_CALLBACK_URL="https://cl.example.test/callbacks")
    client = app.test_client()
    assert value(client.get("/metrics").get_data(as_text=True), "psp_outbox_depth") == 0
    database = app.extensions["psp_connector"].database
    with database.transaction(write=True) as session:
        session.add(GatewayCallbackRow(action_id="act_1", url="https://cl.example.test/callbacks", payload="{}",
                                       next_attempt_at=datetime.now(UTC),
                                       created_at=datetime.now(UTC) - timedelta(minutes=20)))

    exposition = client.get("/metrics").get_data(as_text=True)

    assert value(exposition, "psp_outbox_depth") == 1
    assert 1200 <= value(exposition, "psp_outbox_oldest_age_seconds") < 1300

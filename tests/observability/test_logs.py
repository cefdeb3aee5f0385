"""Log lines people can see and use: the demo shop shows the connector's INFO lines, with
the request's correlation id, and as one JSON object per line with PSP_LOG_FORMAT=json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: A shop app (as `python -m demo_shop` or gunicorn build it) receiving one signed event.
SCRIPT = r"""
import json, sys
sys.path.insert(0, {root!r})
from demo_shop import create_app
from tests.webhook_support import event, intent, post_event, stored_payment
app = create_app({{"SESSION_COOKIE_SECURE": False}})
app.extensions["psp_connector"].platform.create_schema()
_, payment_id, pi = stored_payment(app)
succeeded = event("payment_intent.succeeded", intent(pi, payment_id, status="succeeded", received=3000), "evt_logged")
client = app.test_client()
payload = json.dumps(succeeded)
from tests.webhook_support import sign
response = client.post("/stripe/webhooks", data=payload, content_type="application/json",
                       headers={{"Stripe-Signature": sign(payload), "X-Correlation-ID": "corr-42"}})
print(json.dumps({{"status": response.status_code, "header": response.headers.get("X-Correlation-ID"),
                  "payment_id": payment_id}}))
"""


def run_shop(tmp_path: Path, log_format: str | None) -> tuple[dict[str, str], list[str]]:
    environment = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "SECRET_KEY": "s" * 40,
                   "STRIPE_SECRET_KEY": "sk_test_logs", "STRIPE_WEBHOOK_SIGNING_SECRET": "whsec_test_current",
                   "PSP_DATABASE_URL": f"sqlite:///{tmp_path / 'shop.sqlite3'}"}
    if log_format:
        environment["PSP_LOG_FORMAT"] = log_format
    result = subprocess.run([sys.executable, "-c", SCRIPT.format(root=str(ROOT))], cwd=tmp_path, env=environment,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr.strip().splitlines()


def test_the_shop_shows_the_connectors_lines_with_the_correlation_id(tmp_path) -> None:
    answer, lines = run_shop(tmp_path, None)
    assert answer["status"] == 200 and answer["header"] == "corr-42"
    [line] = [line for line in lines if "evt_logged" in line]
    assert " INFO flask_psp_connector.webhooks.events [corr-42] Stripe event evt_logged (payment_intent.succeeded): " \
           f"processed (payment {answer['payment_id']})" in line


def test_json_logs_are_one_object_per_line_with_ids_and_outcome(tmp_path) -> None:
    answer, lines = run_shop(tmp_path, "json")
    records = [json.loads(line) for line in lines]  # every line is JSON
    [record] = [r for r in records if r.get("event_id") == "evt_logged"]
    assert record["level"] == "INFO" and record["logger"] == "flask_psp_connector.webhooks.events"
    assert record["correlation_id"] == "corr-42" and record["outcome"] == "processed"
    assert record["payment_id"] == answer["payment_id"] and record["event_type"] == "payment_intent.succeeded"


def test_the_library_leaves_the_root_logger_alone(make_app) -> None:
    import logging

    before = list(logging.getLogger().handlers)
    make_app()
    assert logging.getLogger().handlers == before


@pytest.mark.parametrize("value", ["yaml", "JSON "])
def test_an_unknown_log_format_stops_the_app(make_app, value) -> None:
    from flask_psp_connector import ConfigurationError

    with pytest.raises(ConfigurationError, match="PSP_LOG_FORMAT"):
        make_app(PSP_LOG_FORMAT=value)

"""Server-side latency of the Commerce Layer gateway's authorize and capture, Stripe excluded.

What it measures, for ``POST /gateways/commercelayer/authorize`` and ``.../capture``:

* p50 and p95 of the server-side time in milliseconds: the wall time of an in-process
  Flask test-client request. Stripe is replaced by a zero-latency in-process stand-in
  for its HTTP layer (a ``stripe.HTTPClient`` subclass), so the real ``StripeGateway``
  and stripe-python's request building and response parsing still run, but no socket
  is opened. Every request is a NEW action (a new external payment, a new
  authorization), signed beforehand outside the timed region, so each one verifies its
  signature, reads the JSON:API payload, calls Stripe once and stores its answer.
* Stripe calls per request, and per repeated request (which must be answered from the
  store: 0).

Run it from the project root::

    .venv/bin/python bench/gateways.py                      # a SQLite file in a temp dir
    .venv/bin/python bench/gateways.py --requests 1000
    .venv/bin/python bench/gateways.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

With PostgreSQL, the store lives in its own schema (``psp_bench_gw_<pid>``), created for
the run and dropped afterwards; nothing else in the database is touched.
"""

from __future__ import annotations

import argparse
import json
import math
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe
from flask import Flask
from requests.structures import CaseInsensitiveDict

from flask_psp_connector import PSPConnector
from flask_psp_connector.gateways.signature import SIGNATURE_HEADER, sign
from flask_psp_connector.platforms.local import LocalPlatform
from flask_psp_connector.stripe_client import STRIPE_API_VERSION, StripeGateway
from payments import store_url  # bench/payments.py: an empty SQLite file or PostgreSQL schema

stripe.enable_telemetry = False

SECRET_KEY = "sk_test_bench"
SHARED_SECRET = "bench-shared-secret"
WARMUP = 30
REPEAT_CHECKS = 20
AUTHORIZE, CAPTURE = "/gateways/commercelayer/authorize", "/gateways/commercelayer/capture"
TARGET_P50_MS = 3.0


class InProcessStripe(stripe.HTTPClient):
    """Stripe's HTTP layer answered in process: PaymentIntent create (confirmed, card
    authorized: ``requires_capture``) and capture; a repeated idempotency key replays."""

    name = "in-process"

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        self._replays: dict[str, str] = {}

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def request(self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any = None, *,
                _usage: Any = None) -> tuple[str, int, Mapping[str, str]]:
        path = urlsplit(url).path
        self.calls[f"{method.upper()} {path}"] += 1
        key = CaseInsensitiveDict(headers or {}).get("Idempotency-Key")
        if key and key in self._replays:
            return self._replays[key], 200, _headers()
        form = dict(parse_qsl(post_data.decode() if isinstance(post_data, bytes) else post_data or ""))
        if path == "/v1/payment_intents":
            body = _intent(f"pi_{secrets.token_hex(12)}", int(form["amount"]), form["currency"], "requires_capture",
                           {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")})
        elif path.startswith("/v1/payment_intents/") and path.endswith("/capture"):
            body = _intent(path.split("/")[3], int(form["amount_to_capture"]), "eur", "succeeded", {},
                           received=int(form["amount_to_capture"]))
        else:
            return json.dumps({"error": {"message": f"Unrecognized request URL ({path})."}}), 404, _headers()
        text_body = json.dumps(body)
        if key:
            self._replays[key] = text_body
        return text_body, 200, _headers()

    def request_stream(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("The gateway makes no streaming Stripe calls.")

    def close(self) -> None:
        pass


def _headers() -> Mapping[str, str]:
    return CaseInsensitiveDict({"Content-Type": "application/json", "Request-Id": f"req_{secrets.token_hex(7)}",
                                "Stripe-Version": STRIPE_API_VERSION})


def _intent(intent_id: str, amount: int, currency: str, status: str, metadata: dict[str, str], *,
            received: int = 0) -> dict[str, Any]:
    return {"id": intent_id, "object": "payment_intent", "amount": amount,
            "amount_capturable": amount if status == "requires_capture" else 0, "amount_received": received,
            "capture_method": "manual", "client_secret": f"{intent_id}_secret_x", "currency": currency,
            "last_payment_error": None, "latest_charge": f"ch_{intent_id[3:]}", "livemode": False,
            "metadata": metadata, "next_action": None, "payment_method": "pm_card_visa",
            "payment_method_types": ["card"], "status": status}


def _authorize_document(n: int) -> dict[str, Any]:
    order = f"ord{n}"
    return {"data": {"id": f"ep{n}", "type": "external_payments",
                     "attributes": {"payment_source_token": "pm_card_visa"},
                     "relationships": {"order": {"data": {"type": "orders", "id": order}}}},
            "included": [{"id": order, "type": "orders",
                          "attributes": {"number": order, "currency_code": "EUR", "total_amount_with_taxes_cents": 12900,
                                         "total_amount_with_taxes_float": 129.0},
                          "relationships": {"customer": {"data": {"type": "customers", "id": f"c{n}"}}}},
                         {"id": f"c{n}", "type": "customers", "attributes": {"email": "jane@example.test"}}]}


def _capture_document(n: int, pi: str) -> dict[str, Any]:
    return {"data": {"id": f"auth{n}", "type": "authorizations",
                     "attributes": {"currency_code": "EUR", "amount_cents": 12900, "capture_amount_cents": 10000,
                                    "token": pi},
                     "relationships": {"order": {"data": {"type": "orders", "id": f"ord{n}"}}}},
            "included": [{"id": f"ord{n}", "type": "orders", "attributes": {"currency_code": "EUR"}}]}


def _signed(document: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(document).encode()
    return body, {SIGNATURE_HEADER: sign(body, SHARED_SECRET)}


def make_app(database_url: str, http_client: InProcessStripe) -> Flask:
    """The connector with the Commerce Layer gateway, its Stripe calls answered in process."""
    app = Flask("gateway_bench")
    app.config.update(TESTING=True, STRIPE_SECRET_KEY=SECRET_KEY, PSP_DATABASE_URL=database_url,
                      STRIPE_PAYMENT_METHOD_TYPES="card", PSP_STRIPE_MAX_NETWORK_RETRIES=0,
                      COMMERCELAYER_SHARED_SECRET=SHARED_SECRET,
                      COMMERCELAYER_CALLBACK_URL="https://core.commercelayer.test/webhook_callbacks/x")
    gateway = StripeGateway(SECRET_KEY, payment_method_types=("card",), max_network_retries=0, http_client=http_client)
    platform = LocalPlatform.from_url(database_url)
    platform.create_schema()
    PSPConnector(app, platform=platform, stripe=gateway)
    return app


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500, help="timed requests per route")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default: SQLite in a temp dir)")
    args = parser.parse_args(argv)
    http = InProcessStripe()
    with tempfile.TemporaryDirectory() as workdir, store_url(args.database_url, "gateway", workdir) as url:
        app = make_app(url, http)
        client = app.test_client()
        total = WARMUP + args.requests
        authorize_bodies = [_signed(_authorize_document(n)) for n in range(total)]
        timings: dict[str, list[float]] = {AUTHORIZE: [], CAPTURE: []}
        intents: list[str] = []
        for n, (body, headers) in enumerate(authorize_bodies):
            started = time.perf_counter()
            response = client.post(AUTHORIZE, data=body, headers=headers, content_type="application/json")
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, response.get_json()
            intents.append(response.get_json()["data"]["transaction_token"])
            if n >= WARMUP:
                timings[AUTHORIZE].append(elapsed)
        calls_per_authorize = http.calls["POST /v1/payment_intents"] / total
        capture_bodies = [_signed(_capture_document(n, pi)) for n, pi in enumerate(intents)]
        before = http.total_calls
        for n, (body, headers) in enumerate(capture_bodies):
            started = time.perf_counter()
            response = client.post(CAPTURE, data=body, headers=headers, content_type="application/json")
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, response.get_json()
            if n >= WARMUP:
                timings[CAPTURE].append(elapsed)
        calls_per_capture = (http.total_calls - before) / total
        before = http.total_calls
        for body, headers in authorize_bodies[:REPEAT_CHECKS] + capture_bodies[:REPEAT_CHECKS]:
            assert client.post(AUTHORIZE if b"external_payments" in body else CAPTURE, data=body, headers=headers,
                               content_type="application/json").status_code == 200
        calls_per_repeat = (http.total_calls - before) / (2 * REPEAT_CHECKS)
        app.extensions["psp_connector"].platform.engine.dispose()

    database = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    lines = [f"Commerce Layer gateway, server-side time excluding Stripe ({database}, {args.requests} requests per route)",
             f"{'route':42} {'p50 ms':>8} {'p95 ms':>8} {'Stripe calls':>13} {'target p50':>11}"]
    for route, calls in ((AUTHORIZE, calls_per_authorize), (CAPTURE, calls_per_capture)):
        p50 = percentile(timings[route], 50)
        verdict = "ok" if p50 <= TARGET_P50_MS else "MISSED"
        lines.append(f"{route:42} {p50:8.2f} {percentile(timings[route], 95):8.2f} {calls:13.2f} "
                     f"{f'<= {TARGET_P50_MS:g} {verdict}':>11}")
    lines.append(f"Stripe calls per repeated request (answered from the store): {calls_per_repeat:.2f} (target 0)")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

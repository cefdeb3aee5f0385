"""Server-side latency of the external gateways' authorize and capture, Stripe excluded.

What it measures, for ``POST /gateways/commercelayer/authorize`` and ``.../capture``, and
for the Hantera flow's checkout ingress (``.../payment/stripe``, which creates the
cart's PaymentIntent) and capture job (``POST /gateways/hantera/jobs/capture``):

* p50 and p95 of the server-side time in milliseconds: the wall time of an in-process
  Flask test-client request. Stripe is replaced by a zero-latency in-process stand-in
  for its HTTP layer (a ``stripe.HTTPClient`` subclass), so the real ``StripeGateway``
  and stripe-python's request building and response parsing still run, but no socket
  is opened. Every request is a NEW action (a new external payment, a new
  authorization), signed beforehand outside the timed region, so each one verifies its
  signature, reads the JSON:API payload, calls Stripe once and stores its answer.
  Hantera's HTTP API is answered in process too (a ``requests`` transport adapter on
  the Hantera client's session): each checkout reads a new cart, each capture job finds
  the payment and records the charge.
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
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import stripe
from flask import Flask
from payments import store_url  # bench/payments.py: an empty SQLite file or PostgreSQL schema
from requests.structures import CaseInsensitiveDict

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's package, not an installed copy

from flask_psp_connector import PSPConnector  # noqa: E402
from flask_psp_connector.gateways.commercelayer.signature import SIGNATURE_HEADER, sign  # noqa: E402
from flask_psp_connector.platforms.embedded.store import LocalPlatform  # noqa: E402
from flask_psp_connector.stripe.adapter import STRIPE_API_VERSION, StripeGateway  # noqa: E402

stripe.enable_telemetry = False

SECRET_KEY = "sk_test_bench"
SHARED_SECRET = "bench-shared-secret"
WARMUP = 30
REPEAT_CHECKS = 20
AUTHORIZE, CAPTURE = "/gateways/commercelayer/authorize", "/gateways/commercelayer/capture"
CHECKOUT, CAPTURE_JOB = "/gateways/hantera/ingress/commerce/carts/{}/payment/stripe", "/gateways/hantera/jobs/capture"
HANTERA_API, JOB_SECRET = "https://core.hantera.bench", "bench-job-secret"
TARGET_P50_MS = 3.0


class InProcessStripe(stripe.HTTPClient):
    """Stripe's HTTP layer answered in process: PaymentIntent create (confirmed, card
    authorized: ``requires_capture``) and capture; a repeated idempotency key replays."""

    name = "in-process"

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        self._replays: dict[str, str] = {}
        self._intents: dict[str, str] = {}

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
        elif path.startswith("/v1/payment_intents/") and method.upper() == "GET":
            return self._intents[path.split("/")[3]], 200, _headers()
        else:
            return json.dumps({"error": {"message": f"Unrecognized request URL ({path})."}}), 404, _headers()
        text_body = json.dumps(body)
        self._intents.setdefault(body["id"], text_body)
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


class InProcessHantera(requests.adapters.BaseAdapter):
    """Hantera's HTTP API answered in process: token, an open cart of 129.00 EUR per id,
    the graph's payment look-up and actor messages."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        path = urlsplit(request.url).path
        named = path.rsplit("/", 1)[0] + "/<id>" if path.startswith(("/ingress/", "/resources/actors/")) else path
        self.calls[f"{request.method} {named}"] += 1
        if path == "/oauth/token":
            body: Any = {"access_token": "bench-token", "token_type": "Bearer", "expires_in": 3600}
        elif path.startswith("/ingress/commerce/carts/"):
            body = {"cartId": path.rsplit("/", 1)[1], "cartNumber": "C1", "cartState": "open",
                    "currencyCode": "EUR", "orderTotal": 129.0}
        elif path == "/resources/graph":
            reference = json.loads(request.body)[0]["filter"].split("'")[1]
            body = [{"nodes": [{"paymentId": f"pay-{reference}"}]}]
        else:
            body = {"paths": [], "data": {}, "preview": False}
        response = requests.Response()
        response.status_code, response.url, response.request = 200, request.url, request
        response._content = json.dumps(body).encode()
        response.headers["Content-Type"] = "application/json"
        return response

    def close(self) -> None:
        pass


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


def make_app(database_url: str, http_client: InProcessStripe, hantera: InProcessHantera) -> Flask:
    """The connector with both gateways, their Stripe and Hantera calls answered in process."""
    app = Flask("gateway_bench")
    app.config.update(TESTING=True, STRIPE_SECRET_KEY=SECRET_KEY, PSP_DATABASE_URL=database_url,
                      STRIPE_PAYMENT_METHOD_TYPES="card", PSP_STRIPE_MAX_NETWORK_RETRIES=0,
                      COMMERCELAYER_SHARED_SECRET=SHARED_SECRET,
                      COMMERCELAYER_CALLBACK_URL="https://core.commercelayer.test/webhook_callbacks/x",
                      HANTERA_API_URL=HANTERA_API, HANTERA_CLIENT_ID="bench", HANTERA_CLIENT_SECRET="bench",
                      HANTERA_JOB_SECRET=JOB_SECRET)
    gateway = StripeGateway(SECRET_KEY, payment_method_types=("card",), max_network_retries=0, http_client=http_client)
    platform = LocalPlatform.from_url(database_url)
    platform.create_schema()
    PSPConnector(app, platform=platform, stripe=gateway)
    app.extensions["psp_connector"].hantera.client._oauth.mount(HANTERA_API, hantera)
    return app


def timed_posts(client: Any, requests_: list[tuple[str, bytes, dict[str, str]]]) -> tuple[list[float], list[Any]]:
    """POST each (path, body, headers), asserting 200; the milliseconds after the warm-up, and the answers."""
    timings, answers = [], []
    for n, (path, body, headers) in enumerate(requests_):
        started = time.perf_counter()
        response = client.post(path, data=body, headers=headers, content_type="application/json")
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.get_json()
        answers.append(response.get_json())
        if n >= WARMUP:
            timings.append(elapsed)
    return timings, answers


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
    http, hantera = InProcessStripe(), InProcessHantera()
    with tempfile.TemporaryDirectory() as workdir, store_url(args.database_url, "gateway", workdir) as url:
        app = make_app(url, http, hantera)
        client = app.test_client()
        total = WARMUP + args.requests
        timings: dict[str, list[float]] = {}
        calls: dict[str, float] = {}

        authorizations = [(AUTHORIZE, *_signed(_authorize_document(n))) for n in range(total)]
        timings[AUTHORIZE], answers = timed_posts(client, authorizations)
        calls[AUTHORIZE] = http.calls["POST /v1/payment_intents"] / total
        before = http.total_calls
        captures = [(CAPTURE, *_signed(_capture_document(n, answer["data"]["transaction_token"])))
                    for n, answer in enumerate(answers)]
        timings[CAPTURE], _ = timed_posts(client, captures)
        calls[CAPTURE] = (http.total_calls - before) / total

        before = http.total_calls
        checkouts = [(CHECKOUT.format(f"cart{n}"), b"{}", {}) for n in range(total)]
        timings[CHECKOUT], secrets_ = timed_posts(client, checkouts)
        calls[CHECKOUT] = (http.total_calls - before) / total
        before = http.total_calls
        jobs = [(CAPTURE_JOB, json.dumps({"externalReference": answer["clientSecret"].split("_secret_")[0],
                                          "amount": 100}).encode(), {"Authorization": f"Bearer {JOB_SECRET}"})
                for answer in secrets_]
        timings[CAPTURE_JOB], _ = timed_posts(client, jobs)
        calls[CAPTURE_JOB] = (http.total_calls - before) / total

        before = http.total_calls
        repeats = authorizations[:REPEAT_CHECKS] + captures[:REPEAT_CHECKS] + jobs[:REPEAT_CHECKS]
        timed_posts(client, repeats)
        calls_per_repeat = (http.total_calls - before) / len(repeats)
        app.extensions["psp_connector"].database.dispose()

    database = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    lines = [f"External gateways, server-side time excluding Stripe and Hantera ({database}, "
             f"{args.requests} requests per route)",
             f"{'route':62} {'p50 ms':>8} {'p95 ms':>8} {'Stripe calls':>13} {'target p50':>11}"]
    for route in (AUTHORIZE, CAPTURE, CHECKOUT.format("<cartId>"), CAPTURE_JOB):
        key = CHECKOUT if route.startswith("/gateways/hantera/ingress") else route
        p50 = percentile(timings[key], 50)
        verdict = "ok" if p50 <= TARGET_P50_MS else "MISSED"
        lines.append(f"{route:62} {p50:8.2f} {percentile(timings[key], 95):8.2f} {calls[key]:13.2f} "
                     f"{f'<= {TARGET_P50_MS:g} {verdict}':>11}")
    lines.append(f"Stripe calls per repeated authorize, capture or capture job (answered from the store): "
                 f"{calls_per_repeat:.2f} (target 0)")
    hantera_calls = ", ".join(f"{name} {count / total:.2f}" for name, count in sorted(hantera.calls.items()))
    lines.append(f"Hantera calls per Hantera request: {hantera_calls}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

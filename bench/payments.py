"""Server-side latency of the checkout routes, with Stripe's own time taken out.

What it measures, for ``GET /payments`` and ``GET /config-element/payment``:

* p50 and p95 of the server-side time in milliseconds: the wall time of an in-process
  Flask test-client request. Stripe is replaced by a zero-latency in-process stand-in
  for its HTTP layer (a ``stripe.HTTPClient`` subclass), so the real ``StripeGateway``
  and stripe-python's request building and response parsing still run, but no socket
  is opened. Every ``/payments`` request is a NEW checkout (cart and session created
  beforehand, outside the timed region), so it creates a PaymentIntent.
* Stripe calls per checkout (calls to the stand-in per ``/payments``), and per retried
  ``/payments`` on the same session (which must hand out the same PaymentIntent).
* ``/payments`` next to a reference route in the same app that does only the minimum
  a checkout needs (check the session, one Stripe call through the same stand-in, one
  durable insert), timed in the same checkouts: the ratio p50(/payments)/p50(reference)
  per store (target <= 1.5).
* Whether the store's size matters: the same requests against a store holding 1k
  checkouts with a payment and one holding 100k (bulk-seeded with SQLAlchemy Core:
  carts, line items, payments, transactions, sessions), timed alternately so that
  machine noise hits both alike; the ratio p50(100k)/p50(1k) per route.

Each route is warmed up first; the figures exclude the untimed set-up of each checkout.
The table goes to stdout, progress to stderr.

Run it from the project root::

    .venv/bin/python bench/payments.py                      # SQLite files in a temp dir
    .venv/bin/python bench/payments.py --requests 1000
    .venv/bin/python bench/payments.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

With PostgreSQL, each store lives in its own schema (``psp_bench_<pid>_<size>``),
created for the run and dropped afterwards; nothing else in the database is touched.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import secrets
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe
from flask import Flask, jsonify, request
from flask.testing import FlaskClient
from requests.structures import CaseInsensitiveDict
from sqlalchemy import Column, Engine, MetaData, String, Table, create_engine, insert, make_url, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's package, not an installed copy

from flask_psp_connector import Address, LineItemDraft, PSPConnector  # noqa: E402
from flask_psp_connector.platforms.embedded.database import Database, normalize_database_url  # noqa: E402
from flask_psp_connector.platforms.embedded.schema import (  # noqa: E402
    CartRow,
    LineItemRow,
    PaymentRow,
    SessionRow,
    TransactionRow,
    hash_secret,
)
from flask_psp_connector.platforms.embedded.store import LocalPlatform  # noqa: E402
from flask_psp_connector.settings import Settings, load_settings  # noqa: E402
from flask_psp_connector.stripe.adapter import STRIPE_API_VERSION, StripeGateway  # noqa: E402

stripe.enable_telemetry = False

SECRET_KEY = "sk_test_bench"
PROJECT_KEY = "bench"
SIZES = (1_000, 100_000)
WARMUP = 30
RETRY_CHECKS = 20
SEED_CHUNK = 10_000
CONFIG_ELEMENT = "/config-element/payment"
PAYMENTS = "/payments"
REFERENCE = "/reference/payments"
ROUTES = (PAYMENTS, CONFIG_ELEMENT, REFERENCE)
TARGET_REFERENCE_RATIO = 1.5

TARGET_P50_MS = 3.0
TARGET_CALLS_NEW = 1
TARGET_CALLS_RETRY = 0
TARGET_RATIO = 1.2

SEED_ADDRESS = {"first_name": "Jane", "last_name": "Doe", "city": "Berlin", "country": "DE"}
SHIPPING = Address(
    first_name="Jane", last_name="Doe", street_name="Main St", street_number="12",
    postal_code="10115", city="Berlin", country="DE", email="jane@example.test",
)


# -- the Stripe stand-in --------------------------------------------------------------


class InProcessStripe(stripe.HTTPClient):
    """Stripe's HTTP layer, answered in process with no latency and no socket.

    ``POST /v1/payment_intents`` answers a realistic PaymentIntent echoing the amount,
    currency, capture method and metadata of the form body; a repeated idempotency key
    replays the first answer, as Stripe does. Every call is counted.
    """

    name = "in-process"

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()
        self._replays: dict[str, str] = {}

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def request(
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any = None, *, _usage: Any = None
    ) -> tuple[str, int, Mapping[str, str]]:
        path = urlsplit(url).path
        self.calls[f"{method.upper()} {path}"] += 1
        if method.lower() != "post" or path != "/v1/payment_intents":
            return _stripe_error(f"Unrecognized request URL ({method.upper()}: {path})."), 404, _headers()
        key = CaseInsensitiveDict(headers or {}).get("Idempotency-Key")
        if key and key in self._replays:
            return self._replays[key], 200, _headers(key, replayed=True)
        body = json.dumps(_payment_intent(_form(post_data)))
        if key:
            self._replays[key] = body
        return body, 200, _headers(key)

    def request_stream(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("The connector makes no streaming Stripe calls.")

    def close(self) -> None:
        pass


def _form(post_data: Any) -> dict[str, str]:
    if isinstance(post_data, bytes):
        post_data = post_data.decode()
    return dict(parse_qsl(post_data or "", keep_blank_values=True))


def _headers(idempotency_key: str | None = None, *, replayed: bool = False) -> Mapping[str, str]:
    headers = CaseInsensitiveDict({
        "Content-Type": "application/json",
        "Request-Id": f"req_{secrets.token_hex(7)}",
        "Stripe-Version": STRIPE_API_VERSION,
    })
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return headers


def _stripe_error(message: str) -> str:
    return json.dumps({"error": {"type": "invalid_request_error", "message": message}})


def _payment_intent(form: Mapping[str, str]) -> dict[str, Any]:
    """A PaymentIntent as Stripe returns it right after creation."""
    intent_id = f"pi_{secrets.token_hex(12)}"
    metadata = {k[len("metadata[") : -1]: v for k, v in form.items() if k.startswith("metadata[")}
    method_types = [v for k, v in form.items() if k.startswith("payment_method_types[")] or ["card"]
    automatic = form.get("automatic_payment_methods[enabled]") == "true"
    amount = int(form["amount"])
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": {"allow_redirects": "always", "enabled": True} if automatic else None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": form.get("capture_method", "automatic_async"),
        "client_secret": f"{intent_id}_secret_{secrets.token_hex(12)}",
        "confirmation_method": "automatic",
        "created": int(time.time()),
        "currency": form["currency"],
        "customer": form.get("customer"),
        "description": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": metadata,
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {
                "installments": None,
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "payment_method_types": method_types,
        "processing": None,
        "receipt_email": None,
        "review": None,
        "setup_future_usage": form.get("setup_future_usage"),
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": None,
    }


def stripe_gateway(settings: Settings, http_client: stripe.HTTPClient) -> StripeGateway:
    """The real gateway, built as the extension builds it, talking to ``http_client``."""
    return StripeGateway(
        settings["STRIPE_SECRET_KEY"],
        max_network_retries=settings["PSP_STRIPE_MAX_NETWORK_RETRIES"],
        payment_method_types=settings["STRIPE_PAYMENT_METHOD_TYPES"],
        http_client=http_client,
    )


# -- stores -----------------------------------------------------------------------------


def is_sqlite(database_url: str | None) -> bool:
    """SQLite is the default; a SQLite URL also means fresh files in a temp dir."""
    return database_url is None or normalize_database_url(database_url).startswith("sqlite")


@contextmanager
def store_url(database_url: str | None, label: str, workdir: str) -> Iterator[str]:
    """A URL to an empty store: a SQLite file, or a dedicated PostgreSQL schema."""
    if is_sqlite(database_url):
        path = os.path.join(workdir, f"store-{label}.sqlite3")
        yield f"sqlite:///{path}"
        return
    url = make_url(normalize_database_url(database_url))
    schema = f"psp_bench_{os.getpid()}_{label}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text("SET client_min_messages = warning"))
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


SeedRows = dict[type, list[dict[str, Any]]]


def seed_checkout(rows: SeedRows, n: int, now: datetime) -> None:
    """Rows of one checkout that got as far as /payments: cart, item, payment, transaction, session."""
    cart_id, payment_id = str(uuid.uuid4()), str(uuid.uuid4())
    intent_id = f"pi_seed{n:09d}{secrets.token_hex(4)}"
    rows[CartRow].append({
        "id": cart_id, "version": 1, "currency_code": "EUR", "shipping_amount": 0, "tax_amount": 0,
        "state": "Active", "customer_id": None, "customer_email": "jane@example.test",
        "shipping_address": SEED_ADDRESS, "billing_address": None, "created_at": now,
    })
    rows[LineItemRow].append({
        "id": str(uuid.uuid4()), "cart_id": cart_id, "position": 0, "sku": "tee-blue",
        "name": "Blue T-shirt", "quantity": 2, "unit_price": 1500,
    })
    rows[PaymentRow].append({
        "id": payment_id, "version": 1, "cart_id": cart_id, "amount": 3000, "currency_code": "EUR",
        "fraction_digits": 2, "payment_interface": "stripe", "interface_id": intent_id, "method": None,
        "client_secret": f"{intent_id}_secret_seed", "created_at": now, "updated_at": now,
    })
    rows[TransactionRow].append({
        "id": str(uuid.uuid4()), "payment_id": payment_id, "seq": 1, "type": "Authorization",
        "state": "Initial", "amount": 3000, "currency_code": "EUR", "fraction_digits": 2,
        "interaction_id": intent_id, "timestamp": now,
    })
    rows[SessionRow].append({
        "id_hash": hash_secret(secrets.token_urlsafe(32)), "cart_id": cart_id,
        "merchant_return_url": "https://shop.example.test/return",
        "allowed_payment_methods": [], "expires_at": now + timedelta(hours=1),
    })


def seed(engine: Engine, count: int) -> None:
    """Bulk-insert ``count`` checkouts with SQLAlchemy Core, in chunks, parents first."""
    now = datetime.now(UTC)
    for start in range(0, count, SEED_CHUNK):
        rows: SeedRows = {table: [] for table in (CartRow, LineItemRow, PaymentRow, TransactionRow, SessionRow)}
        for n in range(start, min(start + SEED_CHUNK, count)):
            seed_checkout(rows, n, now)
        with engine.begin() as connection:
            for row_class, values in rows.items():
                connection.execute(insert(row_class.__table__), values)
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))  # planner statistics, as a live store would have


# -- the app under test --------------------------------------------------------------------


@dataclass
class Bench:
    """One app on one store, with its Stripe stand-in and its timings."""

    label: str
    app: Flask
    client: FlaskClient
    platform: LocalPlatform
    stripe: InProcessStripe
    timings_ms: dict[str, list[float]] = field(default_factory=lambda: {route: [] for route in ROUTES})
    calls_per_new_payment: list[int] = field(default_factory=list)
    secrets_by_session: dict[str, str] = field(default_factory=dict)


def build_bench(label: str, url: str, size: int) -> Bench:
    platform = LocalPlatform(Database.from_url(url))
    platform.create_schema()
    seed(platform.database.engine, size)
    http_client = InProcessStripe()
    app = Flask(f"payments_bench_{label}")
    app.config.update(
        STRIPE_SECRET_KEY=SECRET_KEY,
        STRIPE_PUBLISHABLE_KEY="pk_test_bench",
        CTP_PROJECT_KEY=PROJECT_KEY,
        CTP_JWKS_URL="https://auth.example.test/.well-known/jwks.json",
        CTP_JWT_ISSUER="https://auth.example.test",
    )
    gateway = stripe_gateway(load_settings(app.config), http_client)
    PSPConnector(app, platform=platform, stripe=gateway)
    add_reference_route(app, platform, gateway)
    return Bench(label, app, app.test_client(), platform, http_client)


def add_reference_route(app: Flask, platform: LocalPlatform, gateway: StripeGateway) -> None:
    """``GET /reference/payments``: the least a checkout does, for /payments to be compared with."""
    table = Table("bench_reference_payments", MetaData(), Column("id", String(36), primary_key=True),
                  Column("intent_id", String(64), nullable=False))
    table.create(platform.database.engine, checkfirst=True)
    statement = table.insert()

    @app.get(REFERENCE)
    def reference() -> Any:
        session = platform.get_session(request.headers.get("X-Session-Id", ""))
        if session is None:
            return jsonify(message="unknown session"), 401
        reference_id = str(uuid.uuid4())
        intent = gateway.create_payment_intent(
            amount=3000, currency="EUR", capture_method="automatic",
            metadata={"cart_id": session.cart_id, "ct_payment_id": reference_id},
            idempotency_key=f"reference-{reference_id}")
        with platform.database.engine.begin() as connection:
            connection.execute(statement, {"id": reference_id, "intent_id": intent["id"]})
        return jsonify(clientSecret=intent.get("client_secret"), paymentReference=reference_id)


def new_checkout(bench: Bench) -> dict[str, str]:
    """A fresh cart and session in the store; returns the request headers."""
    cart = bench.platform.create_cart(
        "EUR",
        line_items=[LineItemDraft("tee-blue", "Blue T-shirt", 2, 1500)],
        customer_email="jane@example.test",
        shipping_address=SHIPPING,
    )
    session = bench.platform.open_session(cart.id, merchant_return_url="https://shop.example.test/return")
    return {"X-Session-Id": session.id}


def timed_get(client: FlaskClient, path: str, headers: Mapping[str, str]) -> tuple[float, Any]:
    start = time.perf_counter_ns()
    response = client.get(path, headers=dict(headers))
    elapsed_ms = (time.perf_counter_ns() - start) / 1e6
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} answered {response.status_code}: {response.get_data(as_text=True)}")
    return elapsed_ms, response.get_json()


def checkout(bench: Bench, *, record: bool) -> None:
    """One checkout as the browser enabler does it: config-element, then /payments."""
    headers = new_checkout(bench)
    config_ms, config = timed_get(bench.client, CONFIG_ELEMENT, headers)
    reference_ms, _ = timed_get(bench.client, REFERENCE, headers)
    before = bench.stripe.total_calls
    payments_ms, body = timed_get(bench.client, PAYMENTS, headers)
    calls = bench.stripe.total_calls - before
    if config["cartInfo"]["amount"] != 3000 or not body["clientSecret"].startswith("pi_"):
        raise RuntimeError(f"unexpected answers: {config} {body}")
    bench.secrets_by_session[headers["X-Session-Id"]] = body["clientSecret"]
    if record:
        bench.timings_ms[CONFIG_ELEMENT].append(config_ms)
        bench.timings_ms[PAYMENTS].append(payments_ms)
        bench.timings_ms[REFERENCE].append(reference_ms)
        bench.calls_per_new_payment.append(calls)


def calls_per_retry(bench: Bench, count: int) -> float:
    """Stripe calls of a second /payments on sessions that already have their payment.

    The retry must also hand out the PaymentIntent of the first call.
    """
    before = bench.stripe.total_calls
    for session_id, client_secret in list(bench.secrets_by_session.items())[-count:]:
        _, body = timed_get(bench.client, PAYMENTS, {"X-Session-Id": session_id})
        if body["clientSecret"] != client_secret:
            raise RuntimeError(f"a retried /payments handed out another PaymentIntent: {body}")
    return (bench.stripe.total_calls - before) / count


def run(benches: list[Bench], requests: int) -> None:
    """Warm up, then time checkouts alternately on every store."""
    for _ in range(WARMUP):
        for bench in benches:
            checkout(bench, record=False)
    gc.collect()
    for _ in range(requests):
        for bench in benches:
            checkout(bench, record=True)


# -- report ------------------------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def size_label(size: int) -> str:
    return f"{size // 1000}k" if size % 1000 == 0 else str(size)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


Row = tuple[str, str, str, str]


def latency_rows(benches: list[Bench]) -> list[Row]:
    rows: list[Row] = []
    for route in ROUTES:
        for bench in benches:
            timings = bench.timings_ms[route]
            p50, p95 = percentile(timings, 50), percentile(timings, 95)
            ok = p50 <= TARGET_P50_MS
            rows.append((f"GET {route} p50, {bench.label} stored", f"{p50:.2f} ms", f"<= {TARGET_P50_MS:g} ms", verdict(ok)))
            rows.append((f"GET {route} p95, {bench.label} stored", f"{p95:.2f} ms", "", ""))
    return rows


def reference_rows(benches: list[Bench]) -> list[Row]:
    rows: list[Row] = []
    for bench in benches:
        ratio = percentile(bench.timings_ms[PAYMENTS], 50) / percentile(bench.timings_ms[REFERENCE], 50)
        name = f"GET {PAYMENTS} p50 / reference p50, {bench.label} stored"
        rows.append((name, f"{ratio:.2f}", f"<= {TARGET_REFERENCE_RATIO:g}", verdict(ratio <= TARGET_REFERENCE_RATIO)))
    return rows


def ratio_rows(small: Bench, large: Bench) -> list[Row]:
    rows: list[Row] = []
    for route in (PAYMENTS, CONFIG_ELEMENT):
        ratio = percentile(large.timings_ms[route], 50) / percentile(small.timings_ms[route], 50)
        name = f"GET {route} p50 {large.label}/{small.label}"
        rows.append((name, f"{ratio:.2f}", f"<= {TARGET_RATIO:g}", verdict(ratio <= TARGET_RATIO)))
    return rows


def stripe_rows(benches: list[Bench], retries: Mapping[str, float]) -> list[Row]:
    rows: list[Row] = []
    for bench in benches:
        calls = bench.calls_per_new_payment
        value = f"{sum(calls) / len(calls):.2f}"
        if min(calls) != max(calls):
            value += f" (min {min(calls)}, max {max(calls)})"
        ok = set(calls) == {TARGET_CALLS_NEW}
        rows.append((f"Stripe calls per new /payments, {bench.label}", value, str(TARGET_CALLS_NEW), verdict(ok)))
        retried = retries[bench.label]
        name, ok = f"Stripe calls per retried /payments, {bench.label}", retried == TARGET_CALLS_RETRY
        rows.append((name, f"{retried:.2f}", str(TARGET_CALLS_RETRY), verdict(ok)))
    return rows


def table(rows: list[Row]) -> list[str]:
    header: Row = ("metric", "value", "target", "verdict")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()

    return [line(header), line(tuple("-" * w for w in widths)), *map(line, rows)]


def report(benches: list[Bench], retries: Mapping[str, float], database: str, requests: int) -> str:
    title = (
        f"flask-psp-connector checkout bench: {requests} timed checkouts per store (+{WARMUP} warm-up), "
        f"{database}, Python {sys.version.split()[0]}, Stripe stand-in in process (0 ms)"
    )
    rows = (latency_rows(benches) + reference_rows(benches) + ratio_rows(benches[0], benches[-1])
            + stripe_rows(benches, retries))
    return "\n".join([title, "", *table(rows)])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="timed requests per route per store size")
    parser.add_argument("--database-url", help="URL of a PostgreSQL database to use (default: SQLite files in a temp dir)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if is_sqlite(args.database_url):
        database = "SQLite (temp files)"
    else:
        database = make_url(normalize_database_url(args.database_url)).render_as_string()
    with ExitStack() as stack:
        workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="psp-bench-"))
        benches = []
        for size in SIZES:
            url = stack.enter_context(store_url(args.database_url, size_label(size), workdir))
            started = time.perf_counter()
            bench = build_bench(size_label(size), url, size)
            stack.callback(bench.platform.database.dispose)
            benches.append(bench)
            print(f"seeded {bench.label} checkouts in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        started = time.perf_counter()
        run(benches, args.requests)
        retries = {bench.label: calls_per_retry(bench, RETRY_CHECKS) for bench in benches}
        print(f"timed {args.requests} checkouts per store in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    print(report(benches, retries, database, args.requests))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Throughput of POST /stripe/webhooks under gunicorn, next to a bare verifying route.

For each store (SQLite file, then PostgreSQL), seeds payments, starts gunicorn with 2
sync workers serving ``bench/webhook_server.py`` (both routes, same settings), and sends
from 16 concurrent clients, after a warm-up, interleaved:

* new signed ``charge.refund.updated`` events for existing payments (each adds a Refund
  transaction);
* ``payment_intent.succeeded`` events, each for a payment of its own that is still
  waiting for its customer (the settle path: Authorization and Charge recorded, the
  payment settled against its cart under the row locks, the order placed);
* the same number of equally signed events to ``/bare``, which only verifies the
  signature and answers 200.

Prints events/s, p50 and p99 for each and the ratios webhook/bare (target >= 0.5), then
the statements one event of each type runs and the transactions it takes (counted in
this process, on a store of its own; statements sent to PostgreSQL together, in one round
trip, are counted one by one).

Run from the checkout's root (gunicorn serves this checkout's package):
``PYTHONPATH=. .venv/bin/python bench/webhooks.py [--events 3000] [--postgres-url URL]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import stripe
from flask import Flask
from sqlalchemy import Engine, create_engine, event, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's package, not an installed copy

from flask_psp_connector import LineItemDraft, PSPConnector  # noqa: E402
from flask_psp_connector.domain.model import Address  # noqa: E402
from flask_psp_connector.domain.money import Money  # noqa: E402
from flask_psp_connector.domain.payment import TransactionDraft, TransactionState, TransactionType  # noqa: E402
from flask_psp_connector.platforms.embedded.database import normalize_database_url  # noqa: E402
from flask_psp_connector.platforms.embedded.migrate import STORE_VERSION_TABLE  # noqa: E402
from flask_psp_connector.platforms.embedded.schema import Base  # noqa: E402
from flask_psp_connector.platforms.embedded.store import LocalPlatform  # noqa: E402
from flask_psp_connector.ports import PaymentDraft  # noqa: E402
from flask_psp_connector.testing import free_port  # noqa: E402

SECRET = "whsec_bench_secret"
ADDRESS = Address(first_name="Jane", last_name="Doe", street_name="Main St", postal_code="10115", city="Berlin",
                  country="DE")
CLIENTS = 16
PROCESSES = 4
HERE = Path(__file__).resolve().parent


def seed(url: str, payments: int, *, waiting: bool = False, first: int = 0) -> list[tuple[str, str]]:
    """Create carts with one payment each; return (payment id, PaymentIntent id) pairs.

    ``waiting``: the payments are as ``/payments`` leaves them (Authorization Initial, for
    the cart's current state), for ``payment_intent.succeeded`` to settle; otherwise paid.
    """
    store = LocalPlatform.from_url(url)
    store.create_schema()
    money = Money.of(100_000, "EUR")
    state = TransactionState.INITIAL if waiting else TransactionState.SUCCESS
    pairs = []
    for n in range(first, first + payments):
        cart = store.create_cart("EUR", line_items=[LineItemDraft("sku", "Item", 1, 100_000)],
                                 shipping_address=ADDRESS)
        payment_id, pi = f"00000000-0000-4000-8000-{n:012d}", f"pi_bench{n:08d}"
        store.create_payment(PaymentDraft(payment_id, cart.id, money, "checkout-stripe", pi, None,
                                          (TransactionDraft(TransactionType.AUTHORIZATION, state, money, pi),),
                                          cart_fingerprint=cart.fingerprint if waiting else "",
                                          cart_version=cart.version if waiting else 0))
        pairs.append((payment_id, pi))
    store.database.dispose()
    return pairs


def succeeded(pairs: list[tuple[str, str]], tag: str) -> list[tuple[bytes, str]]:
    """One ``payment_intent.succeeded`` per payment, as Stripe sends it (metadata included), signed now."""
    out = []
    for payment_id, pi in pairs:
        intent = {"id": pi, "object": "payment_intent", "amount": 100_000, "amount_received": 100_000,
                  "currency": "eur", "status": "succeeded", "capture_method": "automatic", "customer": None,
                  "latest_charge": f"ch_{pi[3:]}", "shipping": None, "payment_method": "pm_card_visa",
                  "metadata": {"ct_payment_id": payment_id}}
        event = {"id": f"evt_{tag}{pi}", "object": "event", "type": "payment_intent.succeeded",
                 "created": int(time.time()), "data": {"object": intent}}
        body = json.dumps(event)
        out.append((body.encode(), stripe.WebhookSignature.generate_signature_header(body, SECRET)))
    return out


def payloads(pairs: list[tuple[str, str]], count: int, tag: str) -> list[tuple[bytes, str]]:
    """``count`` new refund events spread over the payments, signed now."""
    out = []
    for n in range(count):
        payment_id, pi = pairs[n % len(pairs)]
        refund = {"id": f"re_{tag}{n:07d}", "object": "refund", "amount": 1, "currency": "eur", "status": "succeeded",
                  "payment_intent": pi, "metadata": {}}
        event = {"id": f"evt_{tag}{n:07d}", "object": "event", "type": "charge.refund.updated",
                 "created": int(time.time()), "data": {"object": refund}}
        body = json.dumps(event)
        out.append((body.encode(), stripe.WebhookSignature.generate_signature_header(body, SECRET)))
    return out


def _client(port: int, path: str, work: list[tuple[bytes, str]], threads: int, results: multiprocessing.Queue) -> None:
    import threading

    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    items = iter(work)

    def loop() -> None:
        nonlocal errors
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                item = next(items, None)
            if item is None:
                return
            body, signature = item
            started = time.perf_counter()
            connection.request("POST", path, body, {"Content-Type": "application/json", "Stripe-Signature": signature})
            response = connection.getresponse()
            response.read()
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                errors += response.status != 200
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    results.put((latencies, errors))


def load(port: int, path: str, work: list[tuple[bytes, str]]) -> dict[str, float]:
    """Send ``work`` from 16 concurrent clients (4 processes × 4 threads); return figures."""
    results: multiprocessing.Queue = multiprocessing.Queue()
    shares = [work[i::PROCESSES] for i in range(PROCESSES)]
    started = time.perf_counter()
    processes = [multiprocessing.Process(target=_client, args=(port, path, share, CLIENTS // PROCESSES, results))
                 for share in shares]
    for process in processes:
        process.start()
    collected = [results.get() for _ in processes]
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - started
    latencies = sorted(latency for part, _ in collected for latency in part)
    errors = sum(errors for _, errors in collected)
    return {"rate": len(latencies) / elapsed, "p50": statistics.median(latencies) * 1000,
            "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000, "errors": errors}


def serve(url: str, home: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "PSP_DATABASE_URL": url, "STRIPE_SECRET_KEY": "sk_test_bench", "HOME": home,
           "STRIPE_WEBHOOK_SIGNING_SECRET": SECRET,
           # The checkout's own package, not an installed copy of it.
           "PYTHONPATH": os.pathsep.join((str(HERE), str(HERE.parent)))}
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", "2", "--worker-class", "sync",
                               "--bind", f"127.0.0.1:{port}", "--no-control-socket", "--log-level", "warning",
                               "webhook_server:create_app()"], env=env, cwd=HERE)
    for _ in range(300):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/openapi.json")
            connection.getresponse().read()
            return server, port
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("gunicorn did not start")


def bench_store(label: str, url: str, count: int, home: str, rounds: int) -> list[str]:
    pairs = seed(url, 1000)
    share = count // rounds
    waiting = seed(url, 300 + share * rounds, waiting=True, first=1000)
    server, port = serve(url, home)
    figures: dict[str, list[dict[str, float]]] = {"bare": [], "refund": [], "succeeded": []}
    try:
        load(port, "/bare", payloads(pairs, 300, "warmb"))
        load(port, "/stripe/webhooks", payloads(pairs, 300, "warmw"))
        load(port, "/stripe/webhooks", succeeded(waiting[:300], "warms"))
        for number in range(rounds):
            settle = waiting[300 + number * share:300 + (number + 1) * share]
            figures["bare"].append(load(port, "/bare", payloads(pairs, share, f"bare{number}_")))
            figures["refund"].append(load(port, "/stripe/webhooks", payloads(pairs, share, f"hook{number}_")))
            figures["succeeded"].append(load(port, "/stripe/webhooks", succeeded(settle, f"succ{number}_")))
    finally:
        server.terminate()
        server.wait(10)
    merged = {name: {"rate": statistics.mean(f["rate"] for f in runs), "p50": statistics.median(f["p50"] for f in runs),
                     "p99": max(f["p99"] for f in runs), "errors": sum(f["errors"] for f in runs)}
              for name, runs in figures.items()}
    bare = merged["bare"]
    lines = []
    for name, route in (("bare", "bare verify + 200"), ("refund", "charge.refund.updated"),
                        ("succeeded", "payment_intent.succeeded")):
        row = merged[name]
        lines.append(f"{label:10}  {route:24}  {row['rate']:8.0f}  {row['p50']:7.2f}  {row['p99']:7.2f}  {row['errors']:6.0f}")
    for name in ("refund", "succeeded"):
        ratio = merged[name]["rate"] / bare["rate"]
        lines.append(f"{label:10}  {'ratio ' + name + '/bare':24}  {ratio:8.2f}  (target >= 0.5: "
                     f"{'PASS' if ratio >= 0.5 else 'MISS'})")
    return lines


def statements(label: str, url: str) -> list[str]:
    """The statements and transactions of one event of each type, sent in this process."""
    pairs = seed(url, 2)
    waiting = seed(url, 2, waiting=True, first=2)
    app = Flask("webhook_statements")
    app.config.update(PSP_DATABASE_URL=url, STRIPE_SECRET_KEY="sk_test_bench", STRIPE_WEBHOOK_SIGNING_SECRET=SECRET)
    PSPConnector(app)
    client = app.test_client()
    counted = {"statements": 0, "transactions": 0}

    def executed(_connection: object, _cursor: object, statement: str, *_args: object) -> None:
        counted["statements"] += not statement.startswith("BEGIN")  # SQLite's BEGIN IMMEDIATE

    def began(*_args: object) -> None:
        counted["transactions"] += 1

    lines = []
    for name, work in (("charge.refund.updated", payloads(pairs, 2, "count")),
                       ("payment_intent.succeeded", succeeded(waiting, "count"))):
        for number, (body, signature) in enumerate(work):
            counted.update(statements=0, transactions=0)
            event.listen(Engine, "before_cursor_execute", executed)
            event.listen(Engine, "begin", began)
            try:
                response = client.post("/stripe/webhooks", data=body, headers={"Stripe-Signature": signature})
            finally:
                event.remove(Engine, "before_cursor_execute", executed)
                event.remove(Engine, "begin", began)
            if number and response.status_code == 200:  # the first one warms the app up
                lines.append(f"{label:10}  {name:24}  {counted['statements']:3} statements in "
                             f"{counted['transactions']} transaction(s)")
    app.extensions["psp_connector"].platform.database.dispose()
    return lines


def reset_postgres(url: str) -> str:
    engine = create_engine(normalize_database_url(url))
    with engine.begin() as connection:
        connection.execute(text("SET client_min_messages = warning"))
        Base.metadata.drop_all(connection)
        connection.execute(text(f"DROP TABLE IF EXISTS {STORE_VERSION_TABLE}"))
    engine.dispose()
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=3000, help="events per route and store")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds the events are sent in")
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        lines = bench_store("SQLite", f"sqlite:///{home}/bench.sqlite3", args.events, home, args.rounds)
        lines += bench_store("PostgreSQL", reset_postgres(args.postgres_url), args.events, home, args.rounds)
        counts = statements("SQLite", f"sqlite:///{home}/count.sqlite3")
        counts += statements("PostgreSQL", reset_postgres(args.postgres_url))
    print(f"gunicorn 2 sync workers, {CLIENTS} concurrent clients, {args.events} new events per route in "
          f"{args.rounds} interleaved rounds, {os.cpu_count()} cores")
    print(f"{'store':10}  {'route':24}  {'events/s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  {'errors':>6}")
    print("\n".join(lines))
    print("\n".join(counts))


if __name__ == "__main__":
    main()

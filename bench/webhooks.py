"""Throughput of POST /stripe/webhooks under gunicorn, next to a bare verifying route.

For each store (SQLite file, then PostgreSQL), seeds payments, starts gunicorn with 2
sync workers serving ``bench/webhook_server.py`` (both routes, same settings), and sends
new signed ``charge.refund.updated`` events for existing payments (each adds a Refund
transaction) from 16 concurrent clients; then the same number of equally signed events
to ``/bare``, which only verifies the signature and answers 200. Prints events/s, p50 and
p99 for both and the ratio webhook/bare (target >= 0.5).

Run: ``.venv/bin/python bench/webhooks.py [--events 3000] [--postgres-url URL]``.
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
from sqlalchemy import create_engine, text

from flask_psp_connector import LineItemDraft
from flask_psp_connector.model import TransactionDraft, TransactionState, TransactionType
from flask_psp_connector.money import Money
from flask_psp_connector.platforms import PaymentDraft
from flask_psp_connector.platforms.local import LocalPlatform, normalize_database_url
from flask_psp_connector.platforms.local_schema import Base
from flask_psp_connector.testing import free_port

SECRET = "whsec_bench_secret"
CLIENTS = 16
PROCESSES = 4
HERE = Path(__file__).resolve().parent


def seed(url: str, payments: int) -> list[tuple[str, str]]:
    """Create carts with one payment each; return (payment id, PaymentIntent id) pairs."""
    store = LocalPlatform.from_url(url)
    store.create_schema()
    money = Money.of(100_000, "EUR")
    pairs = []
    for n in range(payments):
        cart = store.create_cart("EUR", line_items=[LineItemDraft("sku", "Item", 1, 100_000)])
        payment_id, pi = f"00000000-0000-4000-8000-{n:012d}", f"pi_bench{n:08d}"
        store.create_payment(PaymentDraft(payment_id, cart.id, money, "checkout-stripe", pi, None,
                                          (TransactionDraft(TransactionType.AUTHORIZATION, TransactionState.SUCCESS, money, pi),)))
        pairs.append((payment_id, pi))
    store.engine.dispose()
    return pairs


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
           "STRIPE_WEBHOOK_SIGNING_SECRET": SECRET, "PYTHONPATH": str(HERE)}
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


def bench_store(label: str, url: str, count: int, home: str) -> list[str]:
    pairs = seed(url, 1000)
    server, port = serve(url, home)
    try:
        load(port, "/bare", payloads(pairs, 300, "warmb"))
        load(port, "/stripe/webhooks", payloads(pairs, 300, "warmw"))
        bare = load(port, "/bare", payloads(pairs, count, "bare"))
        hook = load(port, "/stripe/webhooks", payloads(pairs, count, "hook"))
    finally:
        server.terminate()
        server.wait(10)
    ratio = hook["rate"] / bare["rate"]
    return [
        f"{label:10}  {'bare verify + 200':20}  {bare['rate']:8.0f}  {bare['p50']:7.2f}  {bare['p99']:7.2f}  {bare['errors']:6.0f}",
        f"{label:10}  {'/stripe/webhooks':20}  {hook['rate']:8.0f}  {hook['p50']:7.2f}  {hook['p99']:7.2f}  {hook['errors']:6.0f}",
        f"{label:10}  {'ratio webhook/bare':20}  {ratio:8.2f}  (target >= 0.5: {'PASS' if ratio >= 0.5 else 'MISS'})",
    ]


def reset_postgres(url: str) -> str:
    engine = create_engine(normalize_database_url(url))
    with engine.begin() as connection:
        connection.execute(text("SET client_min_messages = warning"))
        Base.metadata.drop_all(connection)
    engine.dispose()
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=3000, help="events per route and store")
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        lines = bench_store("SQLite", f"sqlite:///{home}/bench.sqlite3", args.events, home)
        lines += bench_store("PostgreSQL", reset_postgres(args.postgres_url), args.events, home)
    print(f"gunicorn 2 sync workers, {CLIENTS} concurrent clients, {args.events} new events per route, "
          f"{os.cpu_count()} cores")
    print(f"{'store':10}  {'route':20}  {'events/s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  {'errors':>6}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Concurrent checkouts under the Procfile's gunicorn while each one waits on Stripe.

A checkout's ``GET /payments`` spends most of its time waiting for Stripe (a real
PaymentIntent creation takes ~100-400 ms), and a gthread worker's thread is held for the
whole wait. This bench shows how many threads per worker it takes for a number of
concurrent shoppers not to queue behind those waits, and what the threads cost in memory.

* Stripe is a **stand-in**: the local Stripe double behind ``bench/stripe_latency.py``, a
  proxy (a thread per connection, so never the bottleneck) that holds every call for
  ``--latency`` seconds before forwarding it, like a real Stripe round trip.
* The demo shop is served exactly as the Procfile serves it (``gunicorn --config
  gunicorn.conf.py "demo_shop:create_app()"``, ``WEB_CONCURRENCY=--workers``), once per
  ``GUNICORN_THREADS`` value of ``--threads``, each on a fresh store (a SQLite file, or
  with ``--database-url`` a PostgreSQL schema of its own, dropped afterwards), all
  running side by side.
* ``--clients`` shoppers at once, each with its own kept-alive connection, take new
  checkouts: ``GET /payments`` with the ``X-Session-Id`` of a cart and session created
  beforehand (untimed), so every request creates a PaymentIntent. After a warm-up, the
  settings take turns (``--rounds``, the order reversed every other round) so that
  machine noise hits them alike.

Printed per thread setting: checkouts/s, p50/p95 latency, throughput ÷ the ideal
(``clients / latency``: every shopper waiting only on Stripe) and ÷ the first setting, the
workers' CPU time per checkout, the connections the shop opened to Stripe per call (1.00 =
none kept alive), and the largest worker RSS (target <= 80 MB, as bench/memory.py).

Run: ``.venv/bin/python bench/concurrency.py [--threads 4,8,16,32] [--clients 32]
[--latency 0.25] [--checkouts 320] [--rounds 2] [--database-url postgresql+psycopg://...]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import procfile_shop
import requests
from memory import TARGET_MB, children, memory
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask_psp_connector import Address, LineItemDraft  # noqa: E402
from flask_psp_connector.platforms.embedded.store import LocalPlatform  # noqa: E402
from flask_psp_connector.testing import free_port  # noqa: E402

#: The bench's own connection to the stand-in's counters, opened once (so it is counted once,
#: before the first reset, and never as a connection of the shop's).
CONTROL = requests.Session()
SHIPPING = Address(first_name="Jane", last_name="Doe", street_name="Main St", street_number="12",
                   postal_code="10115", city="Berlin", country="DE", email="jane@example.test")


@dataclass
class Shop:
    """One gunicorn serving the demo shop with ``threads`` threads per worker, and its store."""

    threads: int
    url: str
    server: subprocess.Popen[bytes]
    checkouts: list[str]
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    stripe_calls: int = 0
    stripe_connections: int = 0
    cpu_seconds: float = 0.0


@contextmanager
def latency_proxy(latency: float, workdir: str) -> Iterator[str]:
    """The Stripe stand-in (bench/stripe_latency.py); yields its base URL."""
    port_file = Path(workdir) / "stripe-port"
    process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "stripe_latency.py"), str(latency), str(port_file)],
                               cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            if port_file.exists() and port_file.read_text():
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("The Stripe stand-in did not start.")
        yield f"http://127.0.0.1:{port_file.read_text()}"
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def store(database_url: str | None, threads: int, workdir: str) -> Iterator[str]:
    """A fresh store: a SQLite file, or a PostgreSQL schema of its own (dropped afterwards)."""
    if not database_url:
        yield f"sqlite:///{workdir}/shop-{threads}.sqlite3"
        return
    schema = f"psp_conc_{os.getpid()}_{threads}"
    admin = create_engine(database_url)
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in database_url else "?"
    try:
        yield f"{database_url}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def new_checkouts(database_url: str, count: int) -> list[str]:
    """``count`` carts, each with an open checkout session; their session ids."""
    platform = LocalPlatform.from_url(database_url)
    ids = []
    for _ in range(count):
        cart = platform.create_cart("EUR", line_items=[LineItemDraft("tee-blue", "Blue T-shirt", 2, 1500)],
                                    customer_email="jane@example.test", shipping_address=SHIPPING)
        ids.append(platform.open_session(cart.id, merchant_return_url="https://shop.example.test/return").id)
    platform.database.dispose()
    return ids


@contextmanager
def served(threads: int, args: argparse.Namespace, stripe_base: str, database_url: str, checkouts: int,
           workdir: str) -> Iterator[Shop]:
    """The demo shop as the Procfile serves it, with ``GUNICORN_THREADS=threads``."""
    port = free_port()
    env = {**os.environ, "PORT": str(port), "WEB_CONCURRENCY": str(args.workers), "GUNICORN_THREADS": str(threads),
           "SECRET_KEY": "bench-concurrency", "STRIPE_SECRET_KEY": "sk_test_bench_concurrency",
           "STRIPE_PUBLISHABLE_KEY": "pk_test_bench_concurrency", "STRIPE_WEBHOOK_SIGNING_SECRET": "whsec_bench",
           "STRIPE_API_BASE": stripe_base, "PSP_DATABASE_URL": database_url, "SESSION_COOKIE_SECURE": "false",
           "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(dir=workdir)}
    procfile_shop.release(args.python, env)
    ids = new_checkouts(database_url, checkouts)
    with procfile_shop.web(args.python, env) as server:
        yield Shop(threads, f"http://127.0.0.1:{port}", server, ids)


def cpu_seconds(server: subprocess.Popen[bytes]) -> float:
    """User and system CPU time of the server's workers so far (``/proc/<pid>/stat``)."""
    total = 0
    for pid in children(server.pid):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def take(shop: Shop, count: int, clients: int, stripe_base: str, *, record: bool) -> None:
    """``count`` new checkouts by ``clients`` shoppers at once (each with its own connection)."""
    batch, shop.checkouts = shop.checkouts[:count], shop.checkouts[count:]
    local = threading.local()

    def checkout(session_id: str) -> float:
        http = getattr(local, "http", None) or requests.Session()
        local.http = http
        start = time.perf_counter()
        answer = http.get(f"{shop.url}/payments", headers={"X-Session-Id": session_id}, timeout=60)
        elapsed = time.perf_counter() - start
        if answer.status_code != 200 or not answer.json().get("clientSecret", "").startswith("pi_"):
            raise RuntimeError(f"/payments answered {answer.status_code}: {answer.text[:300]}")
        return elapsed

    CONTROL.post(f"{stripe_base}/_bench/reset", timeout=10)
    cpu, start = cpu_seconds(shop.server), time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = list(pool.map(checkout, batch))
    seconds, cpu = time.perf_counter() - start, cpu_seconds(shop.server) - cpu
    counts = CONTROL.get(f"{stripe_base}/_bench/counts", timeout=10).json()
    if record:
        shop.latencies += latencies
        shop.seconds += seconds
        shop.stripe_calls += counts["requests"]
        shop.stripe_connections += counts["connections"]
        shop.cpu_seconds += cpu


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def report(shops: list[Shop], args: argparse.Namespace) -> None:
    ideal = args.clients / args.latency
    store_name = "PostgreSQL" if args.database_url else "SQLite"
    print(f"demo shop under the Procfile's gunicorn ({args.workers} workers, {store_name}), {args.clients} clients, "
          f"Stripe stand-in latency {args.latency * 1000:.0f} ms, {len(shops[0].latencies)} timed checkouts "
          f"per setting in {args.rounds} rounds; ideal {ideal:.1f} checkouts/s")
    header = ("threads", "checkouts/s", "p50 ms", "p95 ms", "÷ ideal", f"÷ {shops[0].threads} thr",
              "worker CPU ms", "Stripe conns/call", "worker RSS MB")
    print("  ".join(f"{h:>12}" for h in header))
    base = len(shops[0].latencies) / shops[0].seconds
    for shop in shops:
        rate = len(shop.latencies) / shop.seconds
        rss = max(memory(pid)["rss"] for pid in children(shop.server.pid))
        row = (str(shop.threads), f"{rate:.1f}", f"{percentile(shop.latencies, 50) * 1000:.0f}",
               f"{percentile(shop.latencies, 95) * 1000:.0f}", f"{rate / ideal:.2f}", f"{rate / base:.2f}",
               f"{shop.cpu_seconds / len(shop.latencies) * 1000:.1f}",
               f"{shop.stripe_connections / max(shop.stripe_calls, 1):.2f}",
               f"{rss:.1f}{'' if rss <= TARGET_MB else ' (over)'}")
        print("  ".join(f"{cell:>12}" for cell in row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="4,8,16,32", help="GUNICORN_THREADS values, comma-separated")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.25, help="seconds the stand-in holds each Stripe call")
    parser.add_argument("--checkouts", type=int, default=320, help="timed checkouts per setting")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--database-url", help="a PostgreSQL URL (each setting gets a schema of its own)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter that serves the shop")
    args = parser.parse_args()
    settings = [int(n) for n in args.threads.split(",")]
    per_round = args.checkouts // args.rounds
    with tempfile.TemporaryDirectory() as workdir, ExitStack() as stack:
        stripe_base = stack.enter_context(latency_proxy(args.latency, workdir))
        shops = []
        for threads in settings:
            url = stack.enter_context(store(args.database_url, threads, workdir))
            shop = stack.enter_context(served(threads, args, stripe_base, url, args.clients + per_round * args.rounds,
                                              workdir))
            take(shop, args.clients, args.clients, stripe_base, record=False)
            shops.append(shop)
        for number in range(args.rounds):
            for shop in shops if number % 2 == 0 else reversed(shops):
                print(f"round {number + 1}: {shop.threads} threads", file=sys.stderr)
                take(shop, per_round, args.clients, stripe_base, record=True)
        report(shops, args)


if __name__ == "__main__":
    main()

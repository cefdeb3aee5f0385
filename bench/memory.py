"""Memory of the demo shop's web workers, served as the Procfile serves it.

Initialises a SQLite store (the Procfile's ``release`` step), starts the Procfile's ``web``
command (``gunicorn --config gunicorn.conf.py "demo_shop:create_app()"``, 2 workers × 4
threads by default), sends 200 mixed requests
(shop pages, the connector's health and metrics, signed webhooks of no payment of ours)
and prints, for the master and each worker, the resident set size (RSS), the
proportional set size (PSS) and the unique set size (USS: the pages no other process
shares) from ``/proc/<pid>/smaps_rollup``. Target: <= 80 MB RSS per worker. No request
reaches Stripe (``STRIPE_API_BASE`` names a closed local port).

``--python`` serves the shop with another interpreter: the test environment holds the
test and sandbox extras (localstripe brings aiohttp, which stripe-python then imports),
a deployment only what ``requirements.txt`` installs (``.[shop,postgres]``)::

    python3 -m venv /tmp/prod && /tmp/prod/bin/pip install '.[shop,postgres]'
    .venv/bin/python bench/memory.py --python /tmp/prod/bin/python

``--database-url postgresql+psycopg://...`` measures the workers on PostgreSQL (a deployment's
store) instead of a new SQLite file.

Run: ``.venv/bin/python bench/memory.py [--requests 200] [--workers 2] [--python PATH] [--database-url URL]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import requests
import stripe

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import procfile_shop  # noqa: E402

from flask_psp_connector.testing import free_port  # noqa: E402

SECRET = "whsec_bench_memory"
PAGES = ("/", "/products/pour-over-kettle", "/cart", "/checkout", "/metrics")
TARGET_MB = 80


def memory(pid: int) -> dict[str, float]:
    """RSS, PSS and USS of ``pid`` in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) / 1024
    return {"rss": fields["Rss"], "pss": fields["Pss"], "uss": fields["Private_Clean"] + fields["Private_Dirty"]}


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def webhook(n: int) -> tuple[str, dict[str, str]]:
    """A signed event for a PaymentIntent that is not ours (answered 200, recorded as ignored)."""
    body = json.dumps({"id": f"evt_memory{n:06d}", "object": "event", "type": "payment_intent.succeeded",
                       "created": int(time.time()), "data": {"object": {
                           "id": f"pi_memory{n:06d}", "object": "payment_intent", "amount": 1000, "currency": "eur",
                           "status": "succeeded", "metadata": {}}}})
    return body, {"Content-Type": "application/json",
                  "Stripe-Signature": stripe.WebhookSignature.generate_signature_header(body, SECRET)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--python", default=sys.executable, help="the interpreter that serves the shop")
    parser.add_argument("--database-url", default="", help="the store (default: a new SQLite file); a "
                        "PostgreSQL database given here is upgraded in place, as the release step does")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        port, stripe_base = free_port(), f"http://127.0.0.1:{free_port()}"
        env = {**os.environ, "PORT": str(port), "WEB_CONCURRENCY": str(args.workers), "SECRET_KEY": "bench-memory",
               "STRIPE_SECRET_KEY": "sk_test_bench_memory", "STRIPE_PUBLISHABLE_KEY": "pk_test_bench_memory",
               "STRIPE_WEBHOOK_SIGNING_SECRET": SECRET, "STRIPE_API_BASE": stripe_base,
               "PSP_DATABASE_URL": args.database_url or f"sqlite:///{home}/shop.sqlite3", "SESSION_COOKIE_SECURE": "false",
               "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(dir=home)}
        procfile_shop.release(args.python, env)
        with procfile_shop.web(args.python, env) as server:
            base = f"http://127.0.0.1:{port}"
            statuses: dict[int, int] = {}
            sessions = [requests.Session() for _ in range(4)]
            kinds = itertools.cycle([*PAGES, "webhook"])
            for n in range(args.requests):
                session, kind = sessions[n % len(sessions)], next(kinds)
                if kind == "webhook":
                    body, headers = webhook(n)
                    answer = session.post(f"{base}/stripe/webhooks", data=body, headers=headers, timeout=30)
                else:
                    answer = session.get(f"{base}{kind}", timeout=30)
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            time.sleep(0.5)
            store = "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite"
            print(f"demo shop under the Procfile's gunicorn ({args.workers} workers, {args.python}, {store}), after "
                  f"{args.requests} mixed requests (answers {dict(sorted(statuses.items()))})")
            print(f"{'process':10} {'RSS MB':>8} {'PSS MB':>8} {'USS MB':>8}")
            master = memory(server.pid)
            print(f"{'master':10} {master['rss']:8.1f} {master['pss']:8.1f} {master['uss']:8.1f}")
            worst = 0.0
            for number, pid in enumerate(children(server.pid), 1):
                figures = memory(pid)
                worst = max(worst, figures["rss"])
                print(f"{'worker ' + str(number):10} {figures['rss']:8.1f} {figures['pss']:8.1f} {figures['uss']:8.1f}")
            print(f"largest worker RSS {worst:.1f} MB (target <= {TARGET_MB} MB: {'PASS' if worst <= TARGET_MB else 'MISS'})")


if __name__ == "__main__":
    main()

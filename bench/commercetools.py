"""The processor routes in commercetools mode: throughput, app CPU and upstream calls per request.

Starts labd's ``@labdigital/commercetools-mock`` over HTTP (Node, ``npm install``), the
stand-ins of ``bench/commercetools_standins.py`` (the test suite's front with a minimal
session-service stand-in, the Stripe double behind a counting proxy) and the connector
app in one gunicorn worker (gthread, 4 threads, as the Procfile's default). Each
checkout is a new cart with a new session, taken through the routes in their order:

1. ``GET /config-element/payment``
2. ``GET /payments`` (creates the payment and its PaymentIntent)
3. (the PaymentIntent is confirmed at the Stripe double directly, not timed, not counted)
4. ``POST /confirmPayments/:id`` (settles: the order is placed)
5. ``POST /stripe/webhooks`` with that PaymentIntent's ``payment_intent.succeeded``

Each route is timed with 1 client, then with 4 (new checkouts each). Prints per route:
requests/s, app CPU ms per request (the worker's threads' CPU time from ``/proc``, over all
requests of the route) and the calls per request that reached commercetools, Stripe
and the session service (counted at the HTTP level by the stand-ins).

With ``--base REF`` a second checkout of the project at ``REF`` (``git worktree add``)
is served side by side by its own gunicorn worker, against the same stand-ins; rounds
alternate between the two after a warm-up round, and the ratios new ÷ base are printed.

Run: ``.venv/bin/python bench/commercetools.py [--checkouts 30] [--rounds 3] [--base 11ac9dc]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import requests
import stripe

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from flask import Flask  # noqa: E402

from flask_psp_connector import PSPConnector  # noqa: E402
from flask_psp_connector.testing import free_port  # noqa: E402

PROJECT = "bench-shop"
SECRET_KEY = "sk_test_bench_commercetools"
WEBHOOK_SECRET = "whsec_bench_commercetools"
ROUTES = ("/config-element/payment", "/payments", "/confirmPayments", "payment_intent.succeeded")
SERVICES = ("commercetools", "stripe", "session")
TICKS = os.sysconf("SC_CLK_TCK")


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (requests.ConnectionError, OSError, ValueError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start")


@contextmanager
def process(args: list[str], **kwargs: Any) -> Iterator[subprocess.Popen]:
    child = subprocess.Popen(args, **kwargs)
    try:
        yield child
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()


class Standins:
    """The mock, the front and the Stripe double, as started for this run."""

    def __init__(self, stack: ExitStack, home: Path) -> None:
        mock_port = free_port()
        self.mock_url = f"http://127.0.0.1:{mock_port}"
        stack.enter_context(process(["node", str(ROOT / "tests" / "labd_commercetools_mock.mjs"), str(mock_port)],
                                    cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_until(lambda: requests.post(f"{self.mock_url}/oauth/token", data={"grant_type": "client_credentials"},
                                         auth=("c", "s"), timeout=2).ok, 30, "commercetools-mock")
        ports_file = home / "ports.json"
        stack.enter_context(process([sys.executable, str(HERE / "commercetools_standins.py"), self.mock_url,
                                     str(ports_file)], cwd=ROOT))
        wait_until(lambda: ports_file.exists() and ports_file.stat().st_size > 0, 30, "stand-ins")
        ports = json.loads(ports_file.read_text())
        self.front_url = self.stripe_url = f"http://127.0.0.1:{ports['standins']}"
        self.stripe_direct = f"http://127.0.0.1:{ports['stripe_direct']}"
        self.control = f"{self.front_url}/_bench"
        self.http = requests.Session()
        wait_until(lambda: self.http.get(f"{self.control}/counts", timeout=2).ok, 30, "stand-ins")

    def settings(self) -> dict[str, str]:
        return {"STRIPE_SECRET_KEY": SECRET_KEY, "STRIPE_PUBLISHABLE_KEY": "pk_test_bench", "PSP_PLATFORM": "commercetools",
                "CTP_PROJECT_KEY": PROJECT, "CTP_CLIENT_ID": "bench-client", "CTP_CLIENT_SECRET": "bench-secret",
                "CTP_API_URL": self.front_url, "CTP_AUTH_URL": self.mock_url, "CTP_SESSION_URL": self.front_url,
                "STRIPE_API_BASE": self.stripe_url, "STRIPE_PAYMENT_METHOD_TYPES": "card",
                "PSP_STRIPE_MAX_NETWORK_RETRIES": "0", "STRIPE_WEBHOOK_SIGNING_SECRET": WEBHOOK_SECRET,
                "PAYMENT_INTERFACE": "checkout-stripe"}

    def counts(self) -> dict[str, int]:
        return self.http.get(f"{self.control}/counts", timeout=10).json()

    def reset(self) -> None:
        self.http.post(f"{self.control}/reset", timeout=10)


def install(standins: Standins) -> Any:
    """Custom types and a product in the mock; returns the platform used to make carts."""
    app = Flask("bench_setup")
    app.config.update(standins.settings())
    PSPConnector(app)
    store = app.extensions["psp_connector"].platform
    store.install_custom_types()
    product_type = store.client.post("/product-types", {"name": "mugs", "description": "mugs", "attributes": []})
    store.client.post("/products", {
        "productType": {"typeId": "product-type", "id": product_type["id"]}, "name": {"en": "Stoneware mug"},
        "slug": {"en": "stoneware-mug"}, "publish": True,
        "masterVariant": {"sku": "mug", "prices": [{"value": {"currencyCode": "EUR", "centAmount": 1500}}]}})
    return store


class App:
    """One checkout of the project served by gunicorn (1 worker, gthread × 4)."""

    def __init__(self, stack: ExitStack, label: str, checkout: Path, standins: Standins, config: Path) -> None:
        self.label = label
        port = free_port()
        env = {**os.environ, **standins.settings(), "PYTHONPATH": f"{checkout}{os.pathsep}{HERE}"}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.master = stack.enter_context(process(
            [sys.executable, "-m", "gunicorn", "--workers", "1", "--worker-class", "gthread", "--threads", "4",
             "--bind", f"127.0.0.1:{port}", "--config", str(config), "--no-control-socket", "--log-level", "warning",
             "commercetools_server:create_app()"], env=env, cwd=checkout))
        self.url = f"http://127.0.0.1:{port}"
        wait_until(lambda: requests.get(f"{self.url}/payments", timeout=2).status_code == 401, 60, label)
        children = Path(f"/proc/{self.master.pid}/task/{self.master.pid}/children").read_text().split()
        if len(children) != 1:
            raise RuntimeError(f"expected one gunicorn worker, found {children}")
        self.worker = int(children[0])

    def cpu(self) -> float:
        """Seconds of CPU the worker has used so far: the sum over its threads of the
        scheduler's nanosecond count (``/proc/.../schedstat``); ``utime+stime`` counts in
        ticks of 10 ms, too coarse for a few dozen requests of a few ms each. The worker's
        threads (gthread's pool) live as long as it does, so none of its time is lost."""
        total = 0
        for task in Path(f"/proc/{self.worker}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):  # a thread that ended meanwhile
                continue
        if total:
            return total / 1e9
        fields = Path(f"/proc/{self.worker}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS


class Checkout:
    """One cart and its session, and what the routes answered for it."""

    def __init__(self, cart_id: str, session_id: str) -> None:
        self.cart_id = cart_id
        self.session_id = session_id
        self.payment_id = ""
        self.intent_id = ""
        self.intent: dict[str, Any] = {}


def new_checkouts(store: Any, standins: Standins, count: int) -> list[Checkout]:
    out = []
    for _ in range(count):
        cart = store.client.post("/carts", {
            "currency": "EUR", "country": "DE", "customerEmail": "jane@example.test",
            "lineItems": [{"sku": "mug", "quantity": 2}],
            "shippingAddress": {"country": "DE", "city": "Berlin", "streetName": "Main St", "postalCode": "10115",
                                "firstName": "Jane", "lastName": "Doe"}})
        session = standins.http.post(f"{standins.control}/sessions", json={"cart_id": cart["id"]}, timeout=10).json()
        out.append(Checkout(cart["id"], session["id"]))
    return out


def confirm_at_stripe(standins: Standins, checkout: Checkout) -> None:
    auth = (SECRET_KEY, "")
    base = f"{standins.stripe_direct}/v1/payment_intents/{checkout.intent_id}"
    standins.http.post(base, data={"payment_method": "pm_card_visa"}, auth=auth, timeout=30).raise_for_status()
    answer = standins.http.post(f"{base}/confirm", auth=auth, timeout=30)
    answer.raise_for_status()
    checkout.intent = answer.json()


def send(session: requests.Session, app: App, route: str, checkout: Checkout) -> None:
    headers = {"X-Session-Id": checkout.session_id}
    if route == "/config-element/payment":
        answer = session.get(f"{app.url}/config-element/payment", headers=headers, timeout=60)
    elif route == "/payments":
        answer = session.get(f"{app.url}/payments", headers=headers, timeout=60)
        if answer.ok:
            body = answer.json()
            checkout.payment_id = body["paymentReference"]
            checkout.intent_id = body["clientSecret"].split("_secret_")[0]
    elif route == "/confirmPayments":
        answer = session.post(f"{app.url}/confirmPayments/{checkout.payment_id}",
                              json={"paymentIntent": checkout.intent_id}, headers=headers, timeout=60)
        if answer.ok and answer.json() != {"outcome": "approved"}:
            raise RuntimeError(f"{app.label}: confirmPayments answered {answer.text}")
    else:
        event = {"id": f"evt_{checkout.intent_id}", "object": "event", "type": "payment_intent.succeeded",
                 "created": int(time.time()), "livemode": False, "data": {"object": checkout.intent}}
        payload = json.dumps(event)
        signature = stripe.WebhookSignature.generate_signature_header(payload, WEBHOOK_SECRET)
        answer = session.post(f"{app.url}/stripe/webhooks", data=payload, timeout=60,
                              headers={"Content-Type": "application/json", "Stripe-Signature": signature})
    if not answer.ok:
        raise RuntimeError(f"{app.label} {route}: {answer.status_code} {answer.text[:300]}")


def timed(app: App, route: str, checkouts: list[Checkout], clients: int, standins: Standins) -> dict[str, float]:
    """Send ``route`` for every checkout from ``clients`` threads; elapsed, CPU and calls."""
    items = iter(checkouts)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def loop() -> None:
        session = requests.Session()
        while True:
            with lock:
                checkout = next(items, None)
            if checkout is None:
                return
            try:
                send(session, app, route, checkout)
            except BaseException as exc:  # reported after the run
                errors.append(exc)
                return

    standins.reset()
    cpu = app.cpu()
    started = time.perf_counter()
    threads = [threading.Thread(target=loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    cpu = app.cpu() - cpu
    if errors:
        raise errors[0]
    counts = standins.counts()
    return {"elapsed": elapsed, "cpu": cpu, "requests": len(checkouts), **{s: counts.get(s, 0) for s in SERVICES}}


def one_round(app: App, store: Any, standins: Standins, count: int, totals: dict[tuple[str, str, int], Any]) -> None:
    for clients in (1, 4):
        checkouts = new_checkouts(store, standins, count)
        for route in ROUTES:
            if route == "/confirmPayments":
                for checkout in checkouts:
                    confirm_at_stripe(standins, checkout)
            figures = timed(app, route, checkouts, clients, standins)
            if totals is not None:
                for key, value in figures.items():
                    totals[(app.label, route, clients)][key] += value


@contextmanager
def base_checkout(ref: str) -> Iterator[Path]:
    where = Path(tempfile.mkdtemp(prefix="psp-base-"))
    shutil.rmtree(where)
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(where), ref], check=True)
    try:
        yield where
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(where)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkouts", type=int, default=30, help="checkouts per route, client count and round")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (after one warm-up round)")
    parser.add_argument("--base", default="", help="also serve this commit (e.g. 11ac9dc) and print new ÷ base")
    args = parser.parse_args()
    if not (ROOT / "node_modules" / "@labdigital" / "commercetools-mock").exists():
        sys.exit("needs `npm install` (@labdigital/commercetools-mock)")
    with ExitStack() as stack, tempfile.TemporaryDirectory() as home:
        standins = Standins(stack, Path(home))
        store = install(standins)
        config = Path(home) / "gunicorn.conf.py"  # the same settings for both, none from a checkout
        config.write_text("")
        apps = [App(stack, "new", ROOT, standins, config)]
        if args.base:
            apps.append(App(stack, "base", stack.enter_context(base_checkout(args.base)), standins, config))
        for app in apps:
            one_round(app, store, standins, max(5, args.checkouts // 3), None)
        totals: dict[tuple[str, str, int], Any] = defaultdict(lambda: defaultdict(float))
        for number in range(args.rounds):
            for app in apps if number % 2 == 0 else reversed(apps):
                one_round(app, store, standins, args.checkouts, totals)
    report(apps, totals, args)


def report(apps: list[App], totals: dict[tuple[str, str, int], Any], args: argparse.Namespace) -> None:
    print(f"commercetools mode: labd commercetools-mock (HTTP) + session-service stand-in + Stripe double; "
          f"gunicorn 1 worker gthread x4; {args.rounds} rounds x {args.checkouts} checkouts per route and client "
          f"count; {os.cpu_count()} cores")
    print(f"{'app':5} {'route':26} {'req/s 1c':>9} {'req/s 4c':>9} {'CPU ms/req':>10} "
          f"{'ct calls':>8} {'stripe':>6} {'session':>7}")
    summary: dict[tuple[str, str], dict[str, float]] = {}
    for app in apps:
        for route in ROUTES:
            one, four = totals[(app.label, route, 1)], totals[(app.label, route, 4)]
            n = one["requests"] + four["requests"]
            row = {"rate1": one["requests"] / one["elapsed"], "rate4": four["requests"] / four["elapsed"],
                   "cpu": (one["cpu"] + four["cpu"]) * 1000 / n,
                   **{s: (one[s] + four[s]) / n for s in SERVICES}}
            summary[(app.label, route)] = row
            print(f"{app.label:5} {route:26} {row['rate1']:9.1f} {row['rate4']:9.1f} {row['cpu']:10.2f} "
                  f"{row['commercetools']:8.2f} {row['stripe']:6.2f} {row['session']:7.2f}")
    if len(apps) == 2:
        print(f"new ÷ base ({args.base}), same run:")
        print(f"{'route':26} {'CPU/req':>8} {'req/s 1c':>9} {'req/s 4c':>9}")
        for route in ROUTES:
            new, base = summary[("new", route)], summary[("base", route)]
            print(f"{route:26} {new['cpu'] / base['cpu']:8.2f} {new['rate1'] / base['rate1']:9.2f} "
                  f"{new['rate4'] / base['rate4']:9.2f}")


if __name__ == "__main__":
    main()

"""Server render time of the demo shop's pages, and the bytes of its own JS and CSS.

What it measures:

* p50 and p95, in milliseconds, of the wall time of an in-process Flask test-client
  ``GET`` of the home, product, cart and checkout pages (session cookie, CSRF token,
  cart read from the embedded store on SQLite, Jinja rendering, security headers).
  The cart holds three lines and the checkout form is pre-filled from the cart, as for
  a returning customer. Each page is warmed up first; pages are timed in rotation so
  that machine noise hits them alike.
* For those pages plus the payment and order pages: the bytes of the shop's own
  scripts and stylesheets each page loads (``/static/...`` and ``/psp-assets/...``;
  Stripe.js from js.stripe.com is not ours and is not counted), raw and gzipped.

Run it from the project root::

    .venv/bin/python bench/shop.py
    .venv/bin/python bench/shop.py --requests 2000
"""

from __future__ import annotations

import argparse
import gc
import gzip
import re
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

from flask.testing import FlaskClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo_shop import create_app  # noqa: E402

PAGES = {"home": "/", "product": "/products/pour-over-kettle", "cart": "/cart", "checkout": "/checkout"}
_TOKEN = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


class _Assets(HTMLParser):
    """The local scripts and stylesheets a page loads."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        url = attributes.get("src") if tag == "script" else None
        if tag == "link" and attributes.get("rel") == "stylesheet":
            url = attributes.get("href")
        if url and url.startswith("/"):
            self.urls.append(url)


def own_assets(client: FlaskClient, html: str) -> tuple[int, int, list[str]]:
    """Raw and gzipped bytes of the page's own JS and CSS, and their URLs."""
    parser = _Assets()
    parser.feed(html)
    raw = zipped = 0
    for url in parser.urls:
        response = client.get(url)
        assert response.status_code == 200, url
        body = response.get_data()
        response.close()
        raw += len(body)
        zipped += len(gzip.compress(body, 9))
    return raw, zipped, parser.urls


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def shopper(client: FlaskClient) -> str:
    """Fill a cart and save a checkout, as a customer would; return the cart id."""
    token = _TOKEN.search(client.get("/").get_data(as_text=True)).group(1)
    for slug, quantity in (("stoneware-mug", 2), ("linen-tea-towel", 1), ("beeswax-candle", 3)):
        response = client.post(f"/products/{slug}/add", data={"quantity": quantity, "csrf_token": token})
        assert response.status_code == 303, response.status_code
    form = {
        "csrf_token": token, "email": "jane@example.test", "shipping-first_name": "Jane",
        "shipping-last_name": "Doe", "shipping-street_name": "Invalidenstraße", "shipping-street_number": "12",
        "shipping-postal_code": "10115", "shipping-city": "Berlin", "shipping-country": "DE", "billing_same": "y",
    }
    assert client.post("/checkout", data=form).status_code == 303
    with client.session_transaction() as session:
        return session["cart_id"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=50, help="untimed requests per page first")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        app = create_app({
            "SECRET_KEY": "bench-secret-key-" + "x" * 32,
            "PSP_DATABASE_URL": f"sqlite:///{folder}/shop.sqlite3",
            "STRIPE_SECRET_KEY": "sk_test_bench",  # no page timed here calls Stripe
            "STRIPE_PUBLISHABLE_KEY": "pk_test_bench",
        })
        client = app.test_client()
        cart_id = shopper(client)

        for path in PAGES.values():
            for _ in range(args.warmup):
                client.get(path).close()
        samples: dict[str, list[float]] = {name: [] for name in PAGES}
        gc.collect()
        for _ in range(args.requests):
            for name, path in PAGES.items():
                started = time.perf_counter()
                response = client.get(path)
                response.get_data()
                elapsed = time.perf_counter() - started
                assert response.status_code == 200, (path, response.status_code)
                response.close()
                samples[name].append(elapsed * 1000)

        pages = {name: client.get(path).get_data(as_text=True) for name, path in PAGES.items()}
        pages["pay"] = client.get("/pay").get_data(as_text=True)
        pages["order"] = client.get(f"/orders/{cart_id}").get_data(as_text=True)
        app.extensions["psp_connector"].database.dispose()

        print(f"Demo shop, server render time ({args.requests} timed GETs per page, in-process, SQLite store)")
        print(f"{'page':<10} {'p50 ms':>8} {'p95 ms':>8} {'HTML B':>8}")
        for name in PAGES:
            print(f"{name:<10} {percentile(samples[name], 0.5):>8.2f} {percentile(samples[name], 0.95):>8.2f} "
                  f"{len(pages[name].encode()):>8}")
        print()
        print("Own JS and CSS per page (bytes; Stripe.js not counted)")
        print(f"{'page':<10} {'raw':>8} {'gzip':>8}  files")
        for name, html in pages.items():
            raw, zipped, urls = own_assets(client, html)
            print(f"{name:<10} {raw:>8} {zipped:>8}  {' '.join(urls)}")


if __name__ == "__main__":
    main()

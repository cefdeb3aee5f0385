"""A storefront on another origin than the shop: it hosts the connector's browser modules
itself and pays through the shop's processor routes and sandbox Stripe API, cross-origin.

Its pages load the Stripe.js stand-in from the shop's URL (as a storefront loads Stripe.js
from js.stripe.com); carts and checkout sessions are made in the shop's store, as a
headless storefront's backend would through the commerce platform.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, request, send_from_directory

import flask_psp_connector
from flask_psp_connector import Address, LineItemDraft

MODULES = Path(flask_psp_connector.__file__).resolve().parent / "static"
RATES = [{"id": "standard", "displayName": "Standard", "amount": 490},
         {"id": "express", "displayName": "Express", "amount": 990}]


def _page(shop: str, body: str) -> str:
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>Storefront</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<script src="{shop}/psp-assets/sandbox/stripe.js"></script></head><body>{body}</body></html>')


def storefront(shop: str, platform: Any) -> Flask:
    """The storefront app; ``shop`` is the shop's base URL, ``platform`` its store."""
    app = Flask("storefront")

    @app.get("/modules/<path:name>")
    def module(name: str) -> Any:
        return send_from_directory(MODULES, name, mimetype="text/javascript")

    @app.get("/pay/<session_id>")
    def pay(session_id: str) -> str:
        return _page(shop, f"""
            <form><div id="payment" data-processor-url="{shop}" data-session-id="{escape(session_id)}"
                        data-complete-url="/done"></div>
              <p data-psp-message role="alert" hidden></p><button type="submit" id="pay" disabled>Pay</button></form>
            <script type="module" src="/modules/psp-payment.js"></script>""")

    @app.get("/express")
    def express() -> str:
        return _page(shop, f"""
            <section data-express-section hidden>
              <div data-express-checkout data-processor-url="{shop}" data-amount="3000" data-currency="EUR"
                   data-csrf-token="none" data-prepare-url="/prepare" data-prepare-body='{{}}'
                   data-shipping-address-url="/shipping-address" data-shipping-rate-url="/shipping-rate"
                   data-details-url="/details"></div>
              <p data-psp-message role="alert" hidden></p></section>
            <script type="module" src="/modules/psp-express.js"></script>""")

    @app.get("/page/<name>")
    def page(name: str) -> str:
        """A bare page with the stand-in, for scripts the test runs itself."""
        return _page(shop, '<div id="express"></div><div id="payment"></div>')

    @app.get("/done")
    def done() -> str:
        return f'<p id="done">Paid: {escape(request.args.get("paymentReference", ""))}</p>'

    paying: dict[str, str] = {}  # the one cart this test storefront's wallet sheet is paying

    @app.post("/prepare")
    def prepare() -> Any:
        cart = platform.create_cart("EUR", line_items=[LineItemDraft("mug", "Stoneware mug", 2, 1500)])
        session = platform.open_session(cart.id, merchant_return_url="http://127.0.0.1/return")
        paying["cart"] = cart.id
        return jsonify(sessionId=session.id, completeUrl="/done", shippingRates=RATES, allowedShippingCountries=["DE", "FR"])

    def address(details: dict[str, Any], email: str = "") -> Address:
        where = details["address"]
        first, _, last = (details.get("name") or "").partition(" ")
        return Address(first_name=first, last_name=last, street_name=where.get("line1") or "",
                       postal_code=where["postal_code"], city=where["city"], country=where["country"], email=email)

    @app.post("/shipping-address")
    def shipping_address() -> Any:
        platform.update_cart(paying["cart"], shipping_address=address(request.get_json()),
                             shipping_amount=RATES[0]["amount"], shipping_method_name=RATES[0]["displayName"])
        return jsonify(shippingRates=RATES)

    @app.post("/shipping-rate")
    def shipping_rate() -> Any:
        rate = next(r for r in RATES if r["id"] == request.get_json()["shippingRateId"])
        platform.update_cart(paying["cart"], shipping_amount=rate["amount"], shipping_method_name=rate["displayName"])
        return jsonify({})

    @app.post("/details")
    def details() -> Any:
        body = request.get_json()
        platform.update_cart(paying["cart"], customer_email=body["email"],
                             shipping_address=address(body["shippingAddress"], body["email"]))
        return jsonify({})

    return app

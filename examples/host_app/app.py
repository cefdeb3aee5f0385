"""An existing Flask app that takes Stripe payments through flask-psp-connector.

It has its own products and cart (in the session); the connector holds the cart it pays,
serves the browser module that mounts the Payment Element, and turns Stripe's webhook into
the order this app shows.

Run it from the repository root (the ``sandbox`` extra installed), in sandbox mode: no
Stripe account, no internet; pay with 4242 4242 4242 4242::

    python examples/host_app/app.py            # http://127.0.0.1:5001 (PORT changes it)

With Stripe test keys (webhooks then come through ``stripe listen``)::

    STRIPE_SECRET_KEY=sk_test_... STRIPE_PUBLISHABLE_KEY=pk_test_... \\
    STRIPE_WEBHOOK_SIGNING_SECRET=whsec_... python examples/host_app/app.py
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from flask import Flask, abort, redirect, render_template, request, session, url_for

from flask_psp_connector import LineItemDraft, PSPConnector

#: This app's catalog: name and unit price in euro cents.
PRODUCTS = {"mug": ("Stoneware mug", 1800), "tee": ("Organic T-shirt", 2500)}

psp = PSPConnector()


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The app; keys not in ``config`` come from the environment (STRIPE_SECRET_KEY, ...)."""
    app = Flask(__name__)
    app.config["SECRET_KEY"] = os.environ.get("SECRET_KEY") or secrets.token_hex(32)
    app.config.update(config or {})
    psp.init_app(app)  # the processor routes, /stripe/webhooks, psp-payment.js, `flask psp`

    @app.get("/")
    def index() -> str:
        cart = session.get("cart", {})
        return render_template("index.html", products=PRODUCTS, cart=cart)

    @app.post("/cart/<sku>")
    def add(sku: str) -> Any:
        if sku not in PRODUCTS:
            abort(404)
        cart = session.get("cart", {})
        cart[sku] = min(cart.get(sku, 0) + 1, 10)
        session["cart"] = cart
        return redirect(url_for("index"), 303)

    @app.post("/checkout")
    def checkout() -> Any:
        # The connector's cart is what is charged: the amount never comes from the browser.
        items = [LineItemDraft(sku, PRODUCTS[sku][0], quantity, PRODUCTS[sku][1])
                 for sku, quantity in session.get("cart", {}).items() if sku in PRODUCTS]
        if not items:
            return redirect(url_for("index"), 303)
        cart = psp.platform.create_cart("EUR", line_items=items, customer_email=request.form.get("email") or None)
        session["paying"] = cart.id
        return redirect(url_for("pay"), 303)

    @app.get("/pay")
    def pay() -> str:
        cart = psp.platform.get_cart(session.get("paying") or abort(404))
        # X-Session-Id for the browser module: the right to pay this cart, nothing else.
        checkout = psp.platform.open_session(cart.id, merchant_return_url=url_for("order", cart_id=cart.id,
                                                                                 _external=True))
        return render_template("pay.html", cart=cart, session_id=checkout.id, processor_url=psp.processor_url,
                               stripe_js_url=psp.stripe_js_url)

    @app.get("/orders/<cart_id>")
    def order(cart_id: str) -> str:
        if cart_id != session.get("paying"):
            abort(404)
        placed = psp.platform.find_order_by_cart(cart_id)  # the webhook places it
        if placed is not None:
            session.pop("cart", None)
        return render_template("order.html", order=placed, cart=psp.platform.get_cart(cart_id))

    return app


def main() -> None:
    """Serve the app on 127.0.0.1, in sandbox mode unless STRIPE_SECRET_KEY is set."""
    port = int(os.environ.get("PORT", "5001"))
    url = f"http://127.0.0.1:{port}"
    if os.environ.get("STRIPE_SECRET_KEY"):
        create_app().run(port=port)
        return
    from flask_psp_connector.sandbox import sandbox_config

    with sandbox_config(url, name="host_app") as config:
        print(f"Sandbox mode: open {url} and pay with 4242 4242 4242 4242.", flush=True)
        create_app(config).run(port=port)


if __name__ == "__main__":
    main()

"""Helpers for the demo shop's tests: an app factory, a browser with CSRF tokens, HTML checks."""

from __future__ import annotations

import re
import uuid
from html.parser import HTMLParser
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from demo_shop import create_app
from flask_psp_connector.domain.model import Cart
from flask_psp_connector.domain.money import Money
from flask_psp_connector.domain.payment import Payment, TransactionDraft, TransactionState, TransactionType
from flask_psp_connector.ports import PaymentDraft
from tests.conftest import SECRET_KEY

FLASK_SECRET = "flask-secret-for-shop-tests-0123456789"
ADMIN_PASSWORD = "correct horse battery staple"


def shop_config(database_url: str, **overrides: Any) -> dict[str, Any]:
    """The config of a shop on ``database_url`` whose Stripe calls go to api.stripe.com."""
    config = {
        "TESTING": True,
        "SECRET_KEY": FLASK_SECRET,
        "PSP_DATABASE_URL": database_url,
        "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_PUBLISHABLE_KEY": "pk_test_shop",
        "PSP_STRIPE_MAX_NETWORK_RETRIES": 0,
        "SHOP_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    config.update(overrides)
    return config


def build_shop(database_url: str, **overrides: Any) -> Flask:
    """A shop app on ``database_url`` (create its schema if it is PostgreSQL)."""
    app = create_app(shop_config(database_url, **overrides))
    app.extensions["psp_connector"].platform.create_schema()
    return app


def store(app: Flask) -> Any:
    return app.extensions["psp_connector"].platform


_TOKEN = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


class Browser:
    """A test client that sends the page's CSRF token with every form, like a browser."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.client: FlaskClient = app.test_client()
        self._token: str | None = None

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, **kwargs)

    def token(self) -> str:
        if self._token is None:
            match = _TOKEN.search(self.client.get("/").get_data(as_text=True))
            assert match, "no CSRF meta tag on the home page"
            self._token = match.group(1)
        return self._token

    def post(self, url: str, data: dict[str, Any] | None = None, *, csrf: bool = True, **kwargs: Any) -> Any:
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf_token", self.token())
        return self.client.post(url, data=form, **kwargs)

    @property
    def session(self) -> Any:
        return self.client.session_transaction()

    def cart_id(self) -> str | None:
        with self.client.session_transaction() as session:
            return session.get("cart_id")

    def cart(self) -> Cart | None:
        cart_id = self.cart_id()
        return None if cart_id is None else store(self.app).get_cart(cart_id)

    def add(self, slug: str = "stoneware-mug", quantity: Any = 1) -> Any:
        return self.post(f"/products/{slug}/add", {"quantity": quantity})

    def checkout(self, **fields: Any) -> Any:
        return self.post("/checkout", checkout_form(**fields))


def checkout_form(**fields: Any) -> dict[str, Any]:
    """A valid checkout form (shipping to Germany, same billing address) with overrides."""
    form = {
        "email": "jane@example.test",
        "shipping-first_name": "Jane",
        "shipping-last_name": "Doe",
        "shipping-street_name": "Invalidenstraße",
        "shipping-street_number": "12",
        "shipping-postal_code": "10115",
        "shipping-city": "Berlin",
        "shipping-country": "DE",
        "billing_same": "y",
    }
    form.update(fields)
    return {key: value for key, value in form.items() if value is not None}


def paid_cart(browser: Browser, *, quantity: int = 2) -> str:
    """Fill the cart, check out and open the payment page; return the cart id."""
    browser.add("stoneware-mug", quantity)
    assert browser.checkout().status_code == 303
    assert browser.get("/pay").status_code == 200
    cart_id = browser.cart_id()
    assert cart_id
    return cart_id


def add_payment(
    app: Flask, cart_id: str, *, pi_id: str = "pi_shop", states: tuple[tuple[TransactionType, TransactionState], ...] = ()
) -> Payment:
    """Attach a payment for the cart's total, with transactions in the given (type, state)s."""
    cart = store(app).get_cart(cart_id)
    amount: Money = cart.total_price
    draft = PaymentDraft(
        id=str(uuid.uuid4()), cart_id=cart_id, amount_planned=amount, payment_interface="checkout-stripe",
        interface_id=pi_id, client_secret=f"{pi_id}_secret_x",
        transactions=(TransactionDraft(TransactionType.AUTHORIZATION, TransactionState.INITIAL, amount, pi_id),),
        cart_fingerprint=cart.fingerprint, cart_version=cart.version,
    )
    payment = store(app).create_payment(draft)
    if states:
        payment = store(app).apply_transactions(
            payment.id, [TransactionDraft(t, s, amount, pi_id) for t, s in states]
        )
    return payment


class PageAudit(HTMLParser):
    """What a page holds that a strict CSP would refuse, and its scripts' sources."""

    def __init__(self) -> None:
        super().__init__()
        self.script_sources: list[str] = []
        self.inline_scripts: list[str] = []
        self.inline_styles: list[str] = []
        self.event_handlers: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script":
            self._in_script = True
            if attributes.get("src"):
                self.script_sources.append(attributes["src"] or "")
            else:
                self.inline_scripts.append("")
        if tag == "style":
            self.inline_styles.append("<style>")
        if "style" in attributes:
            self.inline_styles.append(f"{tag} style=")
        self.event_handlers += [name for name in attributes if name.startswith("on")]
        for name in ("href", "src", "action"):
            if (attributes.get(name) or "").strip().lower().startswith("javascript:"):
                self.event_handlers.append(f"{name}=javascript:")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts.append(data)


def audit(html: str) -> PageAudit:
    parser = PageAudit()
    parser.feed(html)
    return parser

"""Express Checkout (Apple Pay, Google Pay, Link): the shop's side of the wallet sheet.

The connector's browser module ``psp-express.js`` calls these JSON endpoints while the
wallet sheet is open: to prepare the cart and open a checkout session when the buyer
clicks the wallet button, to store the address and shipping method the buyer picks,
and to store the final addresses and email before the payment is confirmed. The
wallet only ever chooses; every amount is priced here from the catalog, the shipping
country and the shipping method.

Requests are JSON with the page's CSRF token in the ``X-CSRFToken`` header (Flask-WTF
checks it); every answer, errors included, is JSON: ``{"message", "code"}`` for errors.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, jsonify, request, session, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from demo_shop.cart import MAX_QUANTITY, current_cart, new_cart, remember_order, save_quantities, save_shipping
from demo_shop.catalog import CURRENCY, Product, product_by_slug
from demo_shop.connector import psp
from demo_shop.pricing import COUNTRIES, SHIPPING_METHODS, STANDARD, method_of, quote, quotes
from flask_psp_connector import Address
from flask_psp_connector.domain.model import Cart, CartState
from flask_psp_connector.errors import ConcurrentModification, InvalidOperation, PSPError, ResourceNotFound


def express_blueprint() -> Blueprint:
    """The Express Checkout endpoints, as the ``express`` blueprint."""
    bp = Blueprint("express", __name__, url_prefix="/express")
    bp.register_error_handler(BadInput, _bad_input)
    bp.register_error_handler(CSRFError, _csrf_failed)
    bp.register_error_handler(InvalidOperation, _cart_changed)
    bp.register_error_handler(ConcurrentModification, _cart_changed)
    bp.register_error_handler(HTTPException, _http_error)
    bp.add_url_rule("/prepare", view_func=prepare, methods=["POST"])
    bp.add_url_rule("/shipping-address", view_func=shipping_address, methods=["POST"])
    bp.add_url_rule("/shipping-rate", view_func=shipping_rate, methods=["POST"])
    bp.add_url_rule("/details", view_func=details, methods=["POST"])
    bp.app_context_processor(_template_helpers)
    return bp


#: The session key naming the cart the wallet sheet is paying.
_CART_KEY = "express_cart_id"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$")
_POSTAL_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 -]{1,9}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BadInput(Exception):
    """A request the endpoints refuse; its message is shown to the buyer."""

    def __init__(self, message: str, *, status: int = 400, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


def _problem(status: int, code: str, message: str) -> Response:
    response = jsonify(message=message, code=code)
    response.status_code = status
    return response


def _bad_input(error: BadInput) -> Response:
    return _problem(error.status, error.code, error.message)


def _csrf_failed(_error: CSRFError) -> Response:
    return _problem(400, "csrf", "Your session has expired or the request did not come from this shop. Reload the page.")


def _cart_changed(_error: PSPError) -> Response:
    return _problem(409, "cart_changed", "Your cart changed in the meantime. Reload the page and try again.")


def _http_error(error: HTTPException) -> Response:
    return _problem(error.code or 500, "http_error", error.description or error.name)


# -- endpoints -------------------------------------------------------------------


def prepare() -> Response:
    """The buyer clicked a wallet button: settle which cart is paid and open a checkout session.

    Body ``{"source": "cart"}`` pays the session's cart; ``{"source": "product",
    "product": <slug>, "quantity": <1..99>}`` pays a new cart holding just that product
    (the shopping cart itself is left alone).
    """
    body = _body()
    source = body.get("source")
    if source == "cart":
        cart = current_cart()
        if cart is None or not cart.line_items:
            raise BadInput("Your cart is empty.", status=409, code="cart_empty")
    elif source == "product":
        product = _product(body.get("product"))
        cart = save_quantities(new_cart(), {product.sku: _quantity(body.get("quantity", 1))})
    else:
        raise BadInput('"source" must be "cart" or "product".')
    if psp.stripe is None:
        raise BadInput("Wallet payments are not set up.", status=503, code="unavailable")
    checkout = psp.platform.open_session(cart.id, merchant_return_url=url_for("shop.payment_return", _external=True))
    session[_CART_KEY] = cart.id
    remember_order(cart.id)
    return jsonify(
        sessionId=checkout.id,
        cartId=cart.id,
        completeUrl=url_for("shop.order", cart_id=cart.id),
        shippingRates=_rates(cart),
        allowedShippingCountries=sorted(COUNTRIES),
        amount=cart.total_price.cent_amount,
        currency=cart.currency_code,
    )


def shipping_address() -> Response:
    """The buyer picked an address in the sheet: store it and answer the shipping rates.

    Body: the wallet's (redacted) address, ``{"name"?, "address": {"country",
    "postal_code"?, "city"?, "state"?}}``. The first rate, now the cart's method, is
    the one the sheet shows as chosen.
    """
    body = _body()
    address = _address(body.get("address"), full=False, name=body.get("name"))
    cart = save_shipping(_cart(), STANDARD, address)
    return jsonify(shippingRates=_rates(cart), shippingRateId=STANDARD.id, amount=cart.total_price.cent_amount)


def shipping_rate() -> Response:
    """The buyer picked a shipping rate: ship the cart by that method. Body ``{"shippingRateId"}``."""
    body = _body()
    rate_id = _text(body.get("shippingRateId"), "shippingRateId", 40, required=True)
    method = next((m for m in SHIPPING_METHODS if m.id == rate_id), None)
    if method is None:
        raise BadInput("That shipping method is not offered.", code="unknown_shipping_rate")
    cart = _cart()
    if cart.shipping_address is None:
        raise BadInput("Choose a shipping address first.", status=409, code="no_address")
    cart = save_shipping(cart, method)
    return jsonify(shippingRates=_rates(cart), shippingRateId=method.id, amount=cart.total_price.cent_amount)


def details() -> Response:
    """The buyer confirmed in the sheet: store the full addresses and the email.

    Body ``{"email", "shippingAddress": {"name", "phone"?, "address"}, "billingDetails":
    {"name"?, "phone"?, "address"?}}`` in the wallet's shapes. The shipping country must
    be the one the sheet priced; the amount does not change here.
    """
    body = _body()
    email = _text(body.get("email"), "email", 254, required=True)
    if not _EMAIL.match(email):
        raise BadInput("The wallet did not give a valid email address.", code="invalid_email")
    shipping_data = body.get("shippingAddress")
    if not isinstance(shipping_data, dict):
        raise BadInput('"shippingAddress" is required.')
    shipping = _address(shipping_data.get("address"), full=True, name=shipping_data.get("name"),
                        phone=shipping_data.get("phone"), email=email)
    billing_data = body.get("billingDetails") or {}
    if not isinstance(billing_data, dict):
        raise BadInput('"billingDetails" must be an object.')
    billing = shipping
    if billing_data.get("address"):
        billing = _address(billing_data["address"], full=True, name=billing_data.get("name") or shipping_data.get("name"),
                           phone=billing_data.get("phone"), email=email)
    cart = _cart()
    chosen = cart.shipping_address.country if cart.shipping_address else None
    if chosen != shipping.country:
        raise BadInput("The shipping address differs from the one the total was worked out for. Please choose it again.",
                       status=409, code="address_changed")
    priced = quote(cart.subtotal.cent_amount, shipping.country, method_of(cart.shipping_method_name))
    cart = psp.platform.update_cart(
        cart.id, version=cart.version, customer_email=email, shipping_address=shipping, billing_address=billing,
        shipping_amount=priced.shipping, tax_amount=priced.tax, shipping_method_name=priced.method.name,
    )
    return jsonify(cartId=cart.id, amount=cart.total_price.cent_amount, currency=cart.currency_code)


# -- the element on the shop's pages --------------------------------------------------


def _template_helpers() -> dict[str, Any]:
    return {"express_checkout": express_checkout}


def express_checkout(*, cart: Cart | None = None, product: Product | None = None) -> dict[str, Any] | None:
    """What a page needs to show the Express Checkout Element for ``cart`` or ``product``.

    ``None`` when wallet payments are not set up or there is nothing to pay. The amount
    is the server's: the cart's total, or one unit of the product shipped to the shop's
    home country (the sheet reprices once the buyer picks an address).
    """
    if psp.stripe is None:
        return None
    if product is not None:
        estimate = quote(product.unit_price, None)
        amount, currency = product.unit_price + estimate.shipping + estimate.tax, CURRENCY
        prepare_body = {"source": "product", "product": product.slug}
    elif cart is not None and cart.line_items:
        amount, currency = cart.total_price.cent_amount, cart.currency_code
        prepare_body = {"source": "cart"}
    else:
        return None
    return {
        "processor_url": psp.processor_url,
        "stripe_js_url": psp.stripe_js_url,
        "amount": amount,
        "currency": currency,
        "prepare_body": prepare_body,
    }


# -- helpers -------------------------------------------------------------------------


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadInput("Send a JSON object (Content-Type: application/json).")
    return body


def _cart() -> Cart:
    """The cart the open wallet sheet is paying (named by the signed session)."""
    cart_id = session.get(_CART_KEY)
    if not isinstance(cart_id, str):
        raise BadInput("No express checkout is in progress. Click the wallet button again.", status=409,
                       code="no_checkout")
    try:
        cart = psp.platform.get_cart(cart_id)
    except ResourceNotFound:
        cart = None
    if cart is None or cart.state != CartState.ACTIVE:
        session.pop(_CART_KEY, None)
        raise BadInput("This cart has already been paid or is gone. Reload the page.", status=409, code="no_checkout")
    return cart


def _product(slug: Any) -> Product:
    product = product_by_slug(slug) if isinstance(slug, str) else None
    if product is None:
        raise BadInput("That product is not sold here.", code="unknown_product")
    return product


def _quantity(value: Any) -> int:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if type(value) is not int or not 1 <= value <= MAX_QUANTITY:
        raise BadInput(f"Quantity must be a whole number from 1 to {MAX_QUANTITY}.", code="invalid_quantity")
    return value


def _text(value: Any, name: str, maximum: int, *, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str) or len(value) > maximum or _CONTROL.search(value):
        raise BadInput(f'"{name}" must be text of at most {maximum} characters.', code="invalid_field")
    value = value.strip()
    if required and not value:
        raise BadInput(f'"{name}" is required.', code="missing_field")
    return value


def _address(data: Any, *, full: bool, name: Any = None, phone: Any = None, email: str = "") -> Address:
    """An address in the wallet's shape (``line1``, ``postal_code``, ...) as the store keeps it.

    Before the buyer confirms, wallets give only country, postal code, city and state;
    ``full`` requires the street, city, postal code and name as well.
    """
    if not isinstance(data, dict):
        raise BadInput('"address" must be an object.')
    country = _text(data.get("country"), "country", 2, required=True).upper()
    if country not in COUNTRIES:
        raise BadInput("We do not ship to that country.", code="not_shippable")
    postal_code = _text(data.get("postal_code"), "postal_code", 10, required=full).upper()
    if postal_code and not _POSTAL_CODE.match(postal_code):
        raise BadInput("That postal code does not look right.", code="invalid_field")
    full_name = _text(name, "name", 120, required=full)
    first, _, last = full_name.rpartition(" ")
    return Address(
        first_name=first or last,
        last_name=last if first else "",
        street_name=_text(data.get("line1"), "line1", 100, required=full),
        additional_street_info=_text(data.get("line2"), "line2", 100),
        postal_code=postal_code,
        city=_text(data.get("city"), "city", 80, required=full),
        state=_text(data.get("state"), "state", 80),
        country=country,
        phone=_text(phone, "phone", 20),
        email=email,
    )


def _rates(cart: Cart) -> list[dict[str, Any]]:
    """The wallet's shipping rates for the cart, its current method first (the one shown chosen)."""
    country = cart.shipping_address.country if cart.shipping_address else None
    chosen = method_of(cart.shipping_method_name)
    offers = sorted(quotes(cart.subtotal.cent_amount, country), key=lambda q: q.method != chosen)
    return [
        {
            "id": offer.method.id,
            "displayName": offer.method.name,
            "amount": offer.shipping,
            "deliveryEstimate": {
                "minimum": {"unit": "business_day", "value": offer.method.days[0]},
                "maximum": {"unit": "business_day", "value": offer.method.days[1]},
            },
        }
        for offer in offers
    ]

"""The browser's cart: held in the embedded store, named only by the signed session.

Prices, shipping and tax are always recomputed here from the catalog, the shipping
country and the shipping method; nothing the browser sends can set an amount.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import session

from demo_shop.accounts import current_account
from demo_shop.catalog import CURRENCY, product_by_sku
from demo_shop.connector import psp
from demo_shop.pricing import ShippingMethod, method_of, quote
from flask_psp_connector import Address, LineItemDraft
from flask_psp_connector.domain.model import Cart, CartState
from flask_psp_connector.errors import ResourceNotFound

#: The most units of one product a cart line may hold.
MAX_QUANTITY = 99
#: How many recent orders a browser keeps access to.
_ORDERS_KEPT = 20


def current_cart() -> Cart | None:
    """The session's cart if it can still be changed; a stale reference is dropped."""
    cart_id = session.get("cart_id")
    if not isinstance(cart_id, str):
        session.pop("cart_id", None)
        return None
    try:
        cart = psp.platform.get_cart(cart_id)
    except ResourceNotFound:
        cart = None
    if cart is None or cart.state != CartState.ACTIVE:
        session.pop("cart_id", None)
        return None
    return cart


def cart_for_update() -> Cart:
    """The session's cart, or a new empty one remembered in the session."""
    cart = current_cart()
    if cart is None:
        cart = new_cart()
        session["cart_id"] = cart.id
    return cart


def new_cart() -> Cart:
    """A new empty cart, owned by the signed-in customer if there is one."""
    account = current_account()
    owner = {"customer_id": account.customer_id, "customer_email": account.email} if account else {}
    return psp.platform.create_cart(CURRENCY, **owner)


def quantities(cart: Cart | None) -> dict[str, int]:
    """SKU → quantity of the cart's lines, in cart order."""
    return {} if cart is None else {item.sku: item.quantity for item in cart.line_items}


def save_quantities(cart: Cart, wanted: Mapping[str, int]) -> Cart:
    """Replace the cart's lines (SKU → quantity) and reprice it.

    Names and prices come from the catalog; lines of products no longer sold go.
    """
    drafts = _drafts(wanted)
    country = cart.shipping_address.country if cart.shipping_address else None
    priced = quote(sum(d.unit_price * d.quantity for d in drafts), country, method_of(cart.shipping_method_name))
    return psp.platform.update_cart(
        cart.id, version=cart.version, line_items=drafts,
        shipping_amount=priced.shipping, tax_amount=priced.tax, shipping_method_name=priced.method.name,
    )


def _drafts(wanted: Mapping[str, int]) -> list[LineItemDraft]:
    """Cart lines for SKU → quantity, named and priced from the catalog."""
    drafts = []
    for sku, quantity in wanted.items():
        product = product_by_sku(sku)
        if product is not None and 0 < quantity <= MAX_QUANTITY:
            drafts.append(LineItemDraft(product.sku, product.name, quantity, product.unit_price))
    return drafts


def copy_for_customer(cart: Cart, customer_id: str, email: str) -> Cart:
    """A new cart with ``cart``'s lines and addresses, owned by the customer.

    Signing in moves the shopper to a copy rather than marking their cart: whoever else
    holds the old cart's id (a cookie planted before sign-in, say) gains nothing.
    """
    drafts = _drafts(quantities(cart))
    country = cart.shipping_address.country if cart.shipping_address else None
    priced = quote(sum(d.unit_price * d.quantity for d in drafts), country, method_of(cart.shipping_method_name))
    return psp.platform.create_cart(
        cart.currency_code, line_items=drafts, customer_id=customer_id, customer_email=email,
        shipping_address=cart.shipping_address, billing_address=cart.billing_address,
        shipping_amount=priced.shipping, tax_amount=priced.tax, shipping_method_name=priced.method.name,
    )


def save_checkout(
    cart: Cart, email: str, shipping: Address, billing: Address, method: ShippingMethod | None = None
) -> Cart:
    """Store the customer's email and addresses (and shipping method: the cart's own if
    not given), repricing for the shipping country."""
    priced = quote(cart.subtotal.cent_amount, shipping.country, method or method_of(cart.shipping_method_name))
    return psp.platform.update_cart(
        cart.id, version=cart.version, customer_email=email,
        shipping_address=shipping, billing_address=billing,
        shipping_amount=priced.shipping, tax_amount=priced.tax, shipping_method_name=priced.method.name,
    )


def save_shipping(cart: Cart, method: ShippingMethod, address: Address | None = None) -> Cart:
    """Ship the cart by ``method`` (to ``address`` when given), repricing shipping and VAT."""
    shipping = cart.shipping_address if address is None else address
    priced = quote(cart.subtotal.cent_amount, shipping.country if shipping else None, method)
    changes = {} if address is None else {"shipping_address": address}
    return psp.platform.update_cart(
        cart.id, version=cart.version, shipping_amount=priced.shipping, tax_amount=priced.tax,
        shipping_method_name=method.name, **changes,
    )


def remember_order(cart_id: str) -> None:
    """Let this browser see the order page of ``cart_id``."""
    orders = [c for c in session.get("orders", []) if isinstance(c, str) and c != cart_id]
    session["orders"] = (orders + [cart_id])[-_ORDERS_KEPT:]


def may_view(cart_id: str) -> bool:
    """Whether this browser paid (or started paying) for ``cart_id``."""
    orders = session.get("orders", [])
    return isinstance(orders, list) and cart_id in orders


def forget_paid_cart(cart_id: str) -> None:
    """Start a fresh cart on the next visit once ``cart_id`` is paid."""
    if session.get("cart_id") == cart_id:
        session.pop("cart_id")

"""The storefront: catalog, cart, checkout, payment, return and order pages."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import NotFound, ServiceUnavailable
from werkzeug.wrappers import Response

from demo_shop.accounts import owns_cart
from demo_shop.cart import (
    MAX_QUANTITY,
    cart_for_update,
    current_cart,
    forget_paid_cart,
    may_view,
    quantities,
    remember_order,
    save_checkout,
    save_quantities,
)
from demo_shop.catalog import PRODUCTS, Product, product_by_sku, product_by_slug
from demo_shop.connector import psp
from demo_shop.forms import CheckoutForm, QuantityForm, RemoveForm
from demo_shop.pricing import method_of, quote
from demo_shop.progress import PAYMENT_STATES, settle, stale_notice
from demo_shop.security import html_errors
from flask_psp_connector.domain.model import Cart
from flask_psp_connector.errors import (
    ConcurrentModification,
    InvalidOperation,
    PSPError,
    ResourceNotFound,
    StripeAPIError,
)
from flask_psp_connector.processor.payments import StalePayment

log = logging.getLogger("demo_shop")


def shop_blueprint() -> Blueprint:
    """The shop's pages (catalog, cart, checkout, payment, orders), as the ``shop`` blueprint."""
    bp = Blueprint("shop", __name__)
    html_errors(bp)
    bp.add_url_rule("/", view_func=index, methods=["GET"])
    bp.add_url_rule("/products/<slug>", view_func=product, methods=["GET"])
    bp.add_url_rule("/products/<slug>/add", view_func=add_to_cart, methods=["POST"])
    bp.add_url_rule("/cart", view_func=view_cart, methods=["GET"])
    bp.add_url_rule("/cart/items/<sku>", view_func=update_item, methods=["POST"])
    bp.add_url_rule("/cart/items/<sku>/remove", view_func=remove_item, methods=["POST"])
    bp.add_url_rule("/checkout", view_func=checkout, methods=["GET", "POST"])
    bp.add_url_rule("/pay", view_func=pay, methods=["GET"])
    bp.add_url_rule("/return", view_func=payment_return, methods=["GET"])
    bp.add_url_rule("/orders/<cart_id>", view_func=order, methods=["GET"])
    bp.add_url_rule("/orders/<cart_id>/status", view_func=order_status, methods=["GET"])
    return bp


_CART_CHANGED = "Your cart changed in another window. Please check it and try again."


def index() -> str:
    """The product grid."""
    return render_template("index.html", products=PRODUCTS)


def product(slug: str) -> str:
    """One product with its description and an add-to-cart form."""
    return render_template("product.html", product=_product_or_404(slug), form=QuantityForm())


def add_to_cart(slug: str) -> Any:
    """Add units of a product; the cart is left alone when the quantity is not valid."""
    item = _product_or_404(slug)
    form = QuantityForm()
    if not form.validate_on_submit():
        return render_template("product.html", product=item, form=form), 400
    cart = current_cart()
    held = quantities(cart).get(item.sku, 0)
    if held + form.value > MAX_QUANTITY:
        form.quantity.errors = [f"You can have at most {MAX_QUANTITY} of one product in your cart (you have {held})."]
        return render_template("product.html", product=item, form=form), 400
    cart = cart or cart_for_update()
    if _change_lines(cart, {**quantities(cart), item.sku: held + form.value}):
        flash(f"Added {form.value} × {item.name} to your cart.", "success")
    return redirect(url_for("shop.view_cart"), 303)


def view_cart() -> str:
    """The cart with its lines, totals, shipping and tax."""
    cart = current_cart()
    return render_template("cart.html", cart=cart, lines=_lines(cart), quote=_quote(cart))


def update_item(sku: str) -> Response:
    """Set the quantity of a cart line."""
    form = QuantityForm()
    cart = current_cart()
    held = quantities(cart)
    if sku not in held:
        flash("That product is not in your cart.", "error")
    elif not form.validate_on_submit():
        flash(form.quantity.errors[0] if form.quantity.errors else "Please try again.", "error")
    elif cart is not None and _change_lines(cart, {**held, sku: form.value}):
        flash("Your cart was updated.", "success")
    return redirect(url_for("shop.view_cart"), 303)


def remove_item(sku: str) -> Response:
    """Take a line out of the cart."""
    form = RemoveForm()
    cart = current_cart()
    held = quantities(cart)
    if sku not in held:
        flash("That product is not in your cart.", "error")
    elif form.validate_on_submit() and cart is not None:
        product = product_by_sku(sku)
        if _change_lines(cart, {k: q for k, q in held.items() if k != sku}):
            flash(f"Removed {product.name if product else 'the item'} from your cart.", "success")
    return redirect(url_for("shop.view_cart"), 303)


def checkout() -> Any:
    """Email, shipping and billing address, saved on the cart."""
    cart = current_cart()
    if cart is None or not cart.line_items:
        flash("Your cart is empty: add a product before checking out.", "error")
        return redirect(url_for("shop.view_cart"), 303)
    if request.method == "GET":
        form = CheckoutForm.for_cart(cart.customer_email, cart.shipping_address, cart.billing_address,
                                     cart.shipping_method_name)
        return render_template("checkout.html", form=form, cart=cart, lines=_lines(cart), quote=_quote(cart))
    form = CheckoutForm()
    if not form.validate_on_submit():
        flash("Please correct the highlighted fields.", "error")
        return render_template("checkout.html", form=form, cart=cart, lines=_lines(cart), quote=_quote(cart)), 400
    email = form.email.data.strip()
    shipping = form.shipping.form.to_address(email)
    billing = shipping if form.billing_same.data else form.billing.form.to_address(email)
    try:
        save_checkout(cart, email, shipping, billing, form.method)
    except (ConcurrentModification, InvalidOperation):
        flash(_CART_CHANGED, "error")
        return redirect(url_for("shop.view_cart"), 303)
    return redirect(url_for("shop.pay"), 303)


def pay() -> Any:
    """The payment page: the order summary and the Payment Element."""
    cart = current_cart()
    if cart is None or not cart.line_items:
        flash("Your cart is empty: add a product first.", "error")
        return redirect(url_for("shop.view_cart"), 303)
    if not cart.customer_email or cart.shipping_address is None:
        flash("Please enter your email and address first.", "error")
        return redirect(url_for("shop.checkout"), 303)
    if psp.stripe is None:
        raise ServiceUnavailable("Card payments are not set up: STRIPE_SECRET_KEY is missing.")
    checkout_session = psp.platform.open_session(
        cart.id, merchant_return_url=url_for("shop.payment_return", _external=True)
    )
    remember_order(cart.id)
    return render_template(
        "pay.html",
        cart=cart,
        lines=_lines(cart),
        quote=_quote(cart),
        session_id=checkout_session.id,
        processor_url=psp.processor_url,
        stripe_js_url=psp.stripe_js_url,
    )


def payment_return() -> Any:
    """Where Stripe sends the customer back after a redirect or 3-D Secure.

    The outcome is read from the PaymentIntent itself, never from ``redirect_status``;
    recording it is idempotent, so reloading the page changes nothing more.
    """
    reference = request.args.get("paymentReference", "")
    intent_id = request.args.get("payment_intent", "")
    if not reference or not intent_id:
        abort(404)
    try:
        payment = psp.platform.get_payment(reference)
    except ResourceNotFound:
        abort(404)
    cart_id = request.args.get("cartId") or payment.cart_id
    if cart_id != payment.cart_id or not may_view(cart_id) or payment.interface_id not in (None, intent_id):
        abort(404)
    if psp.stripe is None:
        raise ServiceUnavailable("Card payments are not set up: STRIPE_SECRET_KEY is missing.")
    try:
        intent = psp.stripe.retrieve_payment_intent(intent_id)
    except StripeAPIError as exc:
        if exc.status == 404:
            abort(404)
        log.warning("Could not read PaymentIntent %s: %s", intent_id, exc.message)
        raise ServiceUnavailable("We could not reach the payment provider. Please reload this page in a moment.") from exc
    if (intent.get("metadata") or {}).get("ct_payment_id") != payment.id:
        abort(404)
    status = intent.get("status")
    order_url = url_for("shop.order", cart_id=cart_id)
    if status in ("succeeded", "requires_capture", "processing"):
        try:
            psp.confirm_payment(cart_id, payment.id, intent_id)
        except StalePayment as exc:
            log.warning("PaymentIntent %s paid for a cart state that is gone: %s", intent_id, exc.message)
            return render_template("payment_failed.html", status=status, notice=stale_notice(exc.payment))
        except PSPError as exc:
            log.warning("PaymentIntent %s does not confirm payment %s: %s", intent_id, payment.id, exc.message)
            abort(404)
        if status == "processing":
            return render_template("payment_pending.html", order_url=order_url)
        return redirect(order_url, 303)
    cart = psp.platform.get_cart(cart_id)
    if cart.state != "Active":
        return redirect(order_url, 303)
    return render_template("payment_failed.html", status=status)


def order(cart_id: str) -> str:
    """The order (or the payment still being confirmed) of a cart this browser paid."""
    progress = _progress_or_404(cart_id)
    if progress.order is not None:
        forget_paid_cart(cart_id)
    items = progress.order.line_items if progress.order else progress.cart.line_items
    return render_template(
        "order.html",
        progress=progress,
        notices=[stale_notice(p) for p in progress.stale_payments],
        items=items,
        state=progress.payment_state,
        state_label=PAYMENT_STATES[progress.payment_state],
        status_url=url_for("shop.order_status", cart_id=cart_id),
    )


def order_status(cart_id: str) -> Any:
    """The order's state as JSON, polled by the order page until it is final."""
    try:
        progress = _progress_or_404(cart_id)
    except NotFound:
        return jsonify(message="Not found."), 404
    if progress.order is not None:
        forget_paid_cart(cart_id)
    response = jsonify(
        orderNumber=progress.order.order_number if progress.order else None,
        paymentState=progress.payment_state,
        paymentStateLabel=PAYMENT_STATES[progress.payment_state],
        cartState=progress.cart.state.value,
        final=progress.final,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# -- helpers ---------------------------------------------------------------------


def _product_or_404(slug: str) -> Product:
    product = product_by_slug(slug)
    if product is None:
        abort(404)
    return product


def _progress_or_404(cart_id: str) -> Any:
    if not (may_view(cart_id) or owns_cart(cart_id)):
        abort(404)
    try:
        return settle(cart_id)
    except ResourceNotFound:
        abort(404)


def _change_lines(cart: Cart, wanted: dict[str, int]) -> bool:
    try:
        save_quantities(cart, wanted)
    except (ConcurrentModification, InvalidOperation):
        flash(_CART_CHANGED, "error")
        return False
    return True


def _lines(cart: Cart | None) -> list[tuple[Any, Product | None]]:
    """Each cart line with its catalog product (for the picture and the link)."""
    return [] if cart is None else [(item, product_by_sku(item.sku)) for item in cart.line_items]


def _quote(cart: Cart | None) -> Any:
    subtotal = cart.subtotal.cent_amount if cart else 0
    country = cart.shipping_address.country if cart and cart.shipping_address else None
    return quote(subtotal, country, method_of(cart.shipping_method_name if cart else None))

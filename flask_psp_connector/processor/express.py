"""Express Checkout (Apple Pay, Google Pay, Link): its public config and the sheet's amounts.

No Flask here. The wallet sheet shows what :func:`express_payment_data` returns, read
from the server-side cart after the shop has put the buyer's address and shipping
method on it; the PaymentIntent is then created for that same cart.
"""

from __future__ import annotations

from typing import Any

from flask_psp_connector.domain.model import Cart
from flask_psp_connector.domain.money import Money
from flask_psp_connector.options import ConnectorOptions
from flask_psp_connector.ports import CommercePlatform
from flask_psp_connector.processor.payments import amount_to_pay


def express_config(options: ConnectorOptions) -> dict[str, Any]:
    """Upstream's ``ConfigResponse`` for a page that has no checkout session yet.

    The appearance is the Express Checkout Element's, else the Payment Element's.
    """
    body: dict[str, Any] = {
        "environment": options.environment,
        "publishableKey": options.publishable_key,
        "captureMethod": options.behavior.capture_method,
    }
    appearance = options.express_checkout_appearance or options.payment_element_appearance
    if appearance is not None:
        body["appearance"] = appearance
    if options.express_element_options is not None:
        body["expressElementOptions"] = options.express_element_options
    return body


def _money(money: Money) -> dict[str, Any]:
    return {"centAmount": money.cent_amount, "currencyCode": money.currency_code, "fractionDigits": money.fraction_digits}


def _line_items(cart: Cart, amount: Money) -> list[dict[str, Any]]:
    """Subtotal, shipping and tax of the cart; one Total line when they do not add up to
    ``amount`` (part already paid, discounts), because the wallet sheet requires the
    lines to sum to the amount charged."""
    lines = [("Subtotal", cart.subtotal.cent_amount, "SUBTOTAL")]
    if cart.shipping_amount > 0:
        lines.append((cart.shipping_method_name or "Shipping", cart.shipping_amount, "SHIPPING"))
    if cart.tax_amount > 0:
        lines.append(("Tax", cart.tax_amount, "TAX"))
    if sum(line[1] for line in lines) != amount.cent_amount:
        lines = [("Total", amount.cent_amount, "TOTAL")]
    return [{"name": name, "amount": _money(amount.with_amount(cents)), "type": kind} for name, cents, kind in lines]


def express_payment_data(platform: CommercePlatform, cart_id: str) -> dict[str, Any]:
    """Upstream's ``GetExpressPaymentDataResponse``: what the cart owes, and its lines.

    :raises InvalidOperation: when the cart has already been paid in full.
    """
    read = platform.get_cart_and_payments(cart_id)
    amount = amount_to_pay(read.cart, read.payments)
    return {"totalPrice": _money(amount), "currencyCode": amount.currency_code, "lineItems": _line_items(read.cart, amount)}

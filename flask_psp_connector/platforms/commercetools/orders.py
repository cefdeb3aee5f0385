"""Orders on commercetools: a cart becomes at most one order, whose payment state follows its payments.

An order is looked up by cart before it is created, the creation names the cart's
version, and commercetools refuses to order a cart twice; when it does, the existing
order is returned. The order's payment state is commercetools' coarser
OrderPaymentState, set to what the payments' transactions imply whenever they change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from flask_psp_connector.auth.oauth_client import JSON
from flask_psp_connector.domain.model import Address, CartState, Order
from flask_psp_connector.domain.settle import OrderPaymentState, order_payment_state
from flask_psp_connector.errors import ConcurrentModification, InvalidOperation
from flask_psp_connector.platforms.commercetools.client import CommercetoolsAPIError, CommercetoolsClient, segment
from flask_psp_connector.platforms.commercetools.mapping import address_json, order_from_json, parsed, payments_of
from flask_psp_connector.platforms.commercetools.resources import (
    EXPAND_PAYMENTS,
    Retrying,
    cart_json,
    order_json_by_cart,
    update_cart,
)

#: Domain order payment state → commercetools' OrderPaymentState (which has no refunds).
CT_ORDER_PAYMENT_STATE = {
    OrderPaymentState.PENDING: "Pending",
    OrderPaymentState.PAID: "Paid",
    OrderPaymentState.FAILED: "Failed",
    OrderPaymentState.PARTIALLY_REFUNDED: "Paid",
    OrderPaymentState.REFUNDED: "Paid",
}


def order_number(cart_id: str) -> str:
    """The order number of the cart's order: derived from the cart, so a cart has one."""
    return hashlib.sha256(cart_id.encode()).hexdigest()[:16].upper()


class OrderSync:
    """Placing carts' orders and keeping their payment state in step.

    :param client: the project's HTTP client.
    :param retrying: runs an attempt again after each lost race (it re-reads what it decides on).
    """

    def __init__(self, client: CommercetoolsClient, retrying: Retrying) -> None:
        self.client = client
        self.retrying = retrying

    def find(self, cart_id: str) -> Order | None:
        """The order the cart became, if any."""
        data = order_json_by_cart(self.client, cart_id)
        return None if data is None else parsed(order_from_json, data, cart_id)

    def for_cart(self, cart_id: str, ship_to: Callable[[], Address | None] | None) -> Order:
        """The cart's order, created (shipping to what ``ship_to`` finds if the cart has no
        address) when it has none yet, with its payment state in step with its payments."""
        existing = order_json_by_cart(self.client, cart_id)
        if existing is not None:
            return self.synced(existing, cart_id)

        def attempt() -> JSON:
            cart = cart_json(self.client, cart_id, expand=True)
            if cart.get("cartState") == CartState.ORDERED.value:
                ordered = order_json_by_cart(self.client, cart_id)
                if ordered is None:
                    raise InvalidOperation(f"Cart {cart_id} is ordered, but its order cannot be found.")
                return ordered
            return self.place(cart, ship_to)

        return parsed(order_from_json, self.retrying(attempt), cart_id)

    def place(self, cart: JSON, ship_to: Callable[[], Address | None] | None) -> JSON:
        """Order ``cart`` as read (its version named); a lost race raises ``ConcurrentModification``."""
        cart_id = cart["id"]
        shipping_address = ship_to() if ship_to is not None and not cart.get("shippingAddress") else None
        if shipping_address is not None:
            cart = update_cart(self.client, cart,
                               [{"action": "setShippingAddress", "address": address_json(shipping_address)}],
                               expand=EXPAND_PAYMENTS)
        state = order_payment_state(parsed(payments_of, cart))
        body = {"cart": {"typeId": "cart", "id": cart_id}, "version": cart["version"],
                "orderNumber": order_number(cart_id), "orderState": "Open", "shipmentState": "Pending",
                "paymentState": CT_ORDER_PAYMENT_STATE[state]}
        try:
            return self.client.post("/orders", body, expand=EXPAND_PAYMENTS)
        except CommercetoolsAPIError:
            if order_json_by_cart(self.client, cart_id) is None:
                raise
            raise ConcurrentModification(f"Cart {cart_id} was ordered concurrently.") from None

    def sync(self, cart_id: str) -> None:
        """Set the payment state of the cart's order, if it has one, to what its payments imply."""
        data = order_json_by_cart(self.client, cart_id)
        if data is not None:
            self.synced(data, cart_id)

    def synced(self, data: JSON, cart_id: str) -> Order:
        """The order, its commercetools payment state first set to what its payments imply."""
        state = {"data": data}

        def attempt() -> JSON:
            current = state["data"]
            order = parsed(order_from_json, current, cart_id)
            wanted = CT_ORDER_PAYMENT_STATE[OrderPaymentState(order.payment_state)]
            if current.get("paymentState") == wanted:
                return current
            try:
                return self.client.post(
                    f"/orders/{segment(order.id)}",
                    {"version": order.version, "actions": [{"action": "changePaymentState", "paymentState": wanted}]},
                    expand=EXPAND_PAYMENTS,
                )
            except ConcurrentModification:
                state["data"] = self.client.get(f"/orders/{segment(order.id)}", expand=EXPAND_PAYMENTS)
                raise

        return parsed(order_from_json, self.retrying(attempt), cart_id)

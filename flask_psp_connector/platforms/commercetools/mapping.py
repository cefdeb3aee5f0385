"""commercetools JSON ↔ the domain: money, addresses, carts, payments, orders, customers, sessions.

Reading is strict where the connector decides on a field (ids, versions, amounts) and
lenient elsewhere; :func:`parsed` reports any reading problem as a malformed answer
(502), never as a crash. Writing builds the drafts and update actions commercetools takes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from flask_psp_connector.auth.oauth_client import JSON
from flask_psp_connector.domain.model import Address, Cart, CartState, CheckoutSession, Customer, LineItem, Order
from flask_psp_connector.domain.money import Money
from flask_psp_connector.domain.payment import (
    AddTransaction,
    ChangeState,
    Payment,
    StaleReason,
    Transaction,
    TransactionDraft,
    TransactionState,
    TransactionType,
    match_transaction,
)
from flask_psp_connector.domain.settle import PaymentChanges, order_payment_state
from flask_psp_connector.platforms.commercetools.client import malformed
from flask_psp_connector.platforms.commercetools.custom_types import (
    CART_FINGERPRINT_FIELD,
    CART_VERSION_FIELD,
    CLIENT_SECRET_FIELD,
    INTENT_VARIANT_FIELD,
    STALE_REASON_FIELD,
    STRIPE_CUSTOMER_FIELD,
    TAX_REFERENCES_FIELD,
)

log = logging.getLogger("flask_psp_connector.commercetools")

T = TypeVar("T")

#: The timestamp of a payment or transaction commercetools gave none.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Malformed(Exception):
    """A commercetools resource lacks or garbles a field the connector needs."""


def parsed(parse: Callable[..., T], *args: Any) -> T:
    """``parse(*args)``, with any reading problem reported as a malformed answer."""
    try:
        return parse(*args)
    except (Malformed, KeyError, TypeError, ValueError, AttributeError, IndexError):
        raise malformed() from None


def dig(data: Any, *path: str) -> Any:
    """``data[path[0]][path[1]]…``, or ``None`` where a step is not an object."""
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def quoted(text: str) -> str:
    """``text`` as a string literal of a query predicate."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def now() -> str:
    """The current time as commercetools writes it (UTC, milliseconds)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def timestamp(value: Any) -> datetime | None:
    """A commercetools DateTime, or ``None`` when there is none."""
    if not isinstance(value, str):
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def integer(value: Any) -> int:
    """``value`` if it is an integer (``True`` is not), else :class:`Malformed`."""
    if type(value) is not int:
        raise Malformed("not an integer")
    return value


def _text(data: JSON, key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _optional_int(value: Any) -> int:
    return value if type(value) is int else 0


# -- money and addresses ---------------------------------------------------------------


def money_json(money: Money) -> JSON:
    """A commercetools Money draft."""
    return {"centAmount": money.cent_amount, "currencyCode": money.currency_code, "fractionDigits": money.fraction_digits}


def money_from_json(data: JSON) -> Money:
    """A domain Money from a commercetools Money.

    ``centAmount`` is always in the currency's minor units (commercetools defines a
    cent-precision ``fractionDigits`` as the currency's default, and a high-precision
    amount's ``centAmount`` is its value rounded to them), so a ``fractionDigits`` that
    disagrees is not trusted: taking it would charge 100 times too much or too little.
    """
    money = Money.of(integer(data["centAmount"]), data["currencyCode"])
    digits = data.get("fractionDigits")
    if data.get("type") != "highPrecision" and digits is not None and integer(digits) != money.fraction_digits:
        log.warning("commercetools sent %s %s with fractionDigits %s; counted in %s's minor units.",
                    money.cent_amount, money.currency_code, digits, money.currency_code)
    return money


def address_json(address: Address) -> JSON:
    """A commercetools BaseAddress, empty fields left out."""
    fields = {
        "firstName": address.first_name, "lastName": address.last_name, "streetName": address.street_name,
        "streetNumber": address.street_number, "additionalStreetInfo": address.additional_street_info,
        "postalCode": address.postal_code, "city": address.city, "state": address.state,
        "country": address.country, "phone": address.phone, "email": address.email,
    }
    return {key: value for key, value in fields.items() if value}


def address_from_json(data: Any) -> Address | None:
    """A domain Address from a commercetools address (``None`` stays ``None``)."""
    if not isinstance(data, dict):
        return None
    return Address(
        first_name=_text(data, "firstName"), last_name=_text(data, "lastName"),
        street_name=_text(data, "streetName"), street_number=_text(data, "streetNumber"),
        additional_street_info=_text(data, "additionalStreetInfo"), postal_code=_text(data, "postalCode"),
        city=_text(data, "city"), state=_text(data, "state"), country=_text(data, "country"),
        phone=_text(data, "phone") or _text(data, "mobile"), email=_text(data, "email"),
    )


# -- sessions, carts and orders ---------------------------------------------------------


def session_from_json(session_id: str, data: JSON) -> CheckoutSession | None:
    """The checkout session, if the session service calls it ACTIVE with an active cart."""
    cart_id = dig(data, "activeCart", "cartRef", "id")
    if data.get("state") != "ACTIVE" or not isinstance(cart_id, str) or not cart_id:
        return None
    raw = data.get("metadata")
    metadata: JSON = raw if isinstance(raw, dict) else {}
    methods = metadata.get("allowedPaymentMethods")
    return_url = metadata.get("merchantReturnUrl")
    return CheckoutSession(
        id=session_id,
        cart_id=cart_id,
        merchant_return_url=return_url if isinstance(return_url, str) and return_url else None,
        allowed_payment_methods=tuple(m for m in methods if isinstance(m, str)) if isinstance(methods, list) else (),
    )


def _name(value: Any) -> str:
    if isinstance(value, dict) and value:
        return str(value.get("en") or next(iter(value.values())))
    return str(value or "")


def _line_items(data: JSON) -> tuple[LineItem, ...]:
    return tuple(
        LineItem(item["id"], _text(item.get("variant") or {}, "sku"), _name(item.get("name")),
                 integer(item["quantity"]), money_from_json(item["price"]["value"]))
        for item in data.get("lineItems") or []
    )


@dataclass(frozen=True, slots=True)
class _Totals:
    total: Money
    shipping: int
    adjustments: int


def _totals(data: JSON, line_items: tuple[LineItem, ...]) -> _Totals:
    """What the customer owes (the taxed gross when taxes are calculated), split in the
    domain's parts: line items, shipping, and the rest (taxes net of discounts)."""
    gross = dig(data, "taxedPrice", "totalGross")
    total = money_from_json(gross if isinstance(gross, dict) else data["totalPrice"])
    shipping = dig(data, "shippingInfo", "price")
    shipping_amount = money_from_json(shipping).cent_amount if isinstance(shipping, dict) else 0
    subtotal = sum(item.total_price.cent_amount for item in line_items)
    return _Totals(total, shipping_amount, total.cent_amount - subtotal - shipping_amount)


def _tax_references(value: Any) -> tuple[str, ...]:
    """Stripe Tax calculation ids from the cart's custom field (a Set of String, or one String)."""
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str) and item)
    return ()


def cart_from_json(data: JSON) -> Cart:
    """A domain Cart whose ``total_price`` is exactly what commercetools says is owed.

    Line items carry their unit price; ``tax_amount`` holds whatever lies between the
    line items plus shipping and that total (taxes, net of discounts).
    """
    line_items = _line_items(data)
    totals = _totals(data, line_items)
    return Cart(
        id=data["id"],
        version=integer(data["version"]),
        currency_code=totals.total.currency_code,
        line_items=line_items,
        shipping_amount=totals.shipping,
        tax_amount=totals.adjustments,
        state=CartState.ORDERED if data.get("cartState") == "Ordered" else CartState.ACTIVE,
        customer_id=data.get("customerId") if isinstance(data.get("customerId"), str) else None,
        customer_email=data.get("customerEmail") if isinstance(data.get("customerEmail"), str) else None,
        shipping_address=address_from_json(data.get("shippingAddress")),
        billing_address=address_from_json(data.get("billingAddress")),
        shipping_method_name=_optional_str(dig(data, "shippingInfo", "shippingMethodName")),
        country=_optional_str(data.get("country")),
        store_key=_optional_str(dig(data, "store", "key")),
        tax_calculation_references=_tax_references(dig(data, "custom", "fields", TAX_REFERENCES_FIELD)),
        anonymous_id=_optional_str(data.get("anonymousId")),
    )


def is_ordered(cart: JSON | None) -> bool:
    """Whether ``cart`` (as read) has become an order."""
    return cart is not None and cart.get("cartState") == CartState.ORDERED.value


def order_from_json(data: JSON, cart_id: str) -> Order:
    """A domain Order; its payment state is what its payments' transactions imply."""
    line_items = _line_items(data)
    totals = _totals(data, line_items)
    payments = payments_of(data)
    return Order(
        id=data["id"],
        version=integer(data["version"]),
        cart_id=dig(data, "cart", "id") or cart_id,
        order_number=data.get("orderNumber") or data["id"],
        currency_code=totals.total.currency_code,
        line_items=line_items,
        total_price=totals.total,
        shipping_amount=totals.shipping,
        tax_amount=totals.adjustments,
        payment_state=order_payment_state(payments).value,
        customer_email=data.get("customerEmail") if isinstance(data.get("customerEmail"), str) else None,
        shipping_address=address_from_json(data.get("shippingAddress")),
        billing_address=address_from_json(data.get("billingAddress")),
        payment_ids=tuple(p.id for p in payments),
        created_at=timestamp(data.get("createdAt")),
    )


def customer_from_json(data: JSON) -> Customer:
    """A domain Customer from a commercetools customer (Stripe id from upstream's custom field)."""
    name = " ".join(part for part in (data.get("firstName"), data.get("lastName")) if isinstance(part, str) and part)
    return Customer(
        id=data["id"],
        email=_text(data, "email"),
        name=name,
        stripe_customer_id=_optional_str(dig(data, "custom", "fields", STRIPE_CUSTOMER_FIELD)),
    )


# -- payments ------------------------------------------------------------------------


def _stale_reason(value: Any) -> StaleReason | None:
    return StaleReason(value) if value in set(StaleReason) else None


def payment_from_json(data: JSON, cart_id: str) -> Payment:
    """A domain Payment; its id is its key when it has one (ours), else its commercetools id."""
    method_info = data.get("paymentMethodInfo") or {}
    secret = dig(data, "custom", "fields", CLIENT_SECRET_FIELD)
    created_at = timestamp(data.get("createdAt"))
    return Payment(
        id=data.get("key") or data["id"],
        version=integer(data["version"]),
        cart_id=cart_id,
        amount_planned=money_from_json(data["amountPlanned"]),
        payment_interface=_text(method_info, "paymentInterface"),
        interface_id=data.get("interfaceId") or None,
        method=method_info.get("method") or None,
        transactions=tuple(
            Transaction(t["id"], TransactionType(t["type"]), TransactionState(t["state"]), money_from_json(t["amount"]),
                        t.get("interactionId") or "", timestamp(t.get("timestamp")) or created_at or EPOCH)
            for t in data.get("transactions") or []
        ),
        client_secret=secret if isinstance(secret, str) and secret else None,
        created_at=created_at,
        intent_variant=_optional_str(dig(data, "custom", "fields", INTENT_VARIANT_FIELD)) or "",
        cart_fingerprint=_optional_str(dig(data, "custom", "fields", CART_FINGERPRINT_FIELD)) or "",
        cart_version=_optional_int(dig(data, "custom", "fields", CART_VERSION_FIELD)),
        stale_reason=_stale_reason(dig(data, "custom", "fields", STALE_REASON_FIELD)),
    )


def payments_of(data: JSON) -> list[Payment]:
    """The expanded payments of a cart or order, oldest first."""
    owner = data["cart"]["id"] if "cart" in data else data.get("id")
    if not isinstance(owner, str):
        raise Malformed("no cart id")
    payments = []
    for ref in dig(data, "paymentInfo", "payments") or []:
        if "obj" not in ref:
            raise Malformed("payment reference not expanded")
        payments.append(payment_from_json(ref["obj"], owner))
    return sorted(payments, key=lambda p: (p.created_at or EPOCH, p.id))


def payment_ids_of(cart: JSON) -> list[str]:
    """The commercetools ids of the payments referenced by ``cart``."""
    return [ref["id"] for ref in dig(cart, "paymentInfo", "payments") or []]


def with_payment(cart: JSON | None, data: JSON) -> JSON | None:
    """``cart`` (payments expanded) holding the payment ``data`` as just read or written."""
    if cart is None:
        return None
    refs = dig(cart, "paymentInfo", "payments") or []
    swapped = [{**ref, "obj": data} if isinstance(ref, dict) and ref.get("id") == data.get("id") else ref for ref in refs]
    return {**cart, "paymentInfo": {**cart.get("paymentInfo", {}), "payments": swapped}}


def transaction_json(draft: TransactionDraft) -> JSON:
    """A commercetools TransactionDraft, stamped now."""
    return {"type": draft.type.value, "amount": money_json(draft.amount), "state": draft.state.value,
            "interactionId": draft.interaction_id, "timestamp": now()}


def payment_actions(payment: Payment, changes: PaymentChanges) -> list[JSON]:
    """The update actions recording ``changes`` on ``payment``, by the model's matching rules.

    Empty when everything is recorded already. A draft matching a transaction added by
    an earlier draft of the same batch changes the state that transaction is added with.
    """
    actions: list[JSON] = []
    if changes.interface_id and not payment.interface_id:
        actions.append({"action": "setInterfaceId", "interfaceId": changes.interface_id})
    if changes.method and not payment.method:
        actions.append({"action": "setMethodInfoMethod", "method": changes.method})
    if changes.stale_reason and not payment.stale_reason:
        if payment.cart_fingerprint:  # the field lives in our payment type, which such payments have
            actions.append({"action": "setCustomField", "name": STALE_REASON_FIELD, "value": changes.stale_reason.value})
        else:
            log.warning("Payment %s is stale (%s); it has no custom type to record that in.", payment.id,
                        changes.stale_reason.value)
    current = list(payment.transactions)
    added: dict[str, JSON] = {}
    for draft in changes.transactions:
        change = match_transaction(current, draft)
        if isinstance(change, AddTransaction):
            placeholder = f"new:{len(added)}"
            added[placeholder] = {"action": "addTransaction", "transaction": transaction_json(draft)}
            actions.append(added[placeholder])
            current.append(Transaction(placeholder, draft.type, draft.state, draft.amount, draft.interaction_id,
                                       datetime.now(UTC)))
        elif isinstance(change, ChangeState):
            if change.transaction_id in added:
                added[change.transaction_id]["transaction"]["state"] = change.state.value
            else:
                actions.append({"action": "changeTransactionState", "transactionId": change.transaction_id,
                                "state": change.state.value})
            current = [replace(t, state=change.state) if t.id == change.transaction_id else t for t in current]
    return actions

"""The commerce records: carts, orders, customers, saved methods and checkout sessions.

Plain, immutable values in commercetools' vocabulary. Platform adapters build them from
their storage; use cases read them and ask the platform for changes. Payments are in
:mod:`.payment`, settling them against their cart in :mod:`.settle`, the event inbox's
records in :mod:`.inbox`.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime

from flask_psp_connector.domain.money import Money


class CartState(enum.StrEnum):
    """Whether a cart can still be paid or has become an order."""

    ACTIVE = "Active"
    ORDERED = "Ordered"


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address, as commercetools names its fields."""

    first_name: str = ""
    last_name: str = ""
    street_name: str = ""
    street_number: str = ""
    additional_street_info: str = ""
    postal_code: str = ""
    city: str = ""
    state: str = ""
    country: str = ""
    phone: str = ""
    email: str = ""

    @property
    def name(self) -> str:
        """First and last name joined."""
        return f"{self.first_name} {self.last_name}".strip()

    def to_stripe(self) -> dict[str, object]:
        """The Stripe ``shipping``/``billing_details`` shape of this address."""
        return {
            "name": self.name,
            "phone": self.phone,
            "address": {
                "line1": f"{self.street_number} {self.street_name}".strip(),
                "line2": self.additional_street_info,
                "city": self.city,
                "postal_code": self.postal_code,
                "state": self.state,
                "country": self.country,
            },
        }


@dataclass(frozen=True, slots=True)
class LineItem:
    """A product in a cart or order, priced per unit in the cart's currency."""

    id: str
    sku: str
    name: str
    quantity: int
    unit_price: Money

    @property
    def total_price(self) -> Money:
        """Unit price times quantity."""
        return self.unit_price.with_amount(self.unit_price.cent_amount * self.quantity)


@dataclass(frozen=True, slots=True)
class Cart:
    """A shopping cart held server-side; the only source of the amount to charge."""

    id: str
    version: int
    currency_code: str
    line_items: tuple[LineItem, ...]
    shipping_amount: int
    tax_amount: int
    state: CartState
    customer_id: str | None = None
    customer_email: str | None = None
    shipping_address: Address | None = None
    billing_address: Address | None = None
    shipping_method_name: str | None = None
    #: The cart's country (commercetools' ``country``), used to pick a behaviour rule.
    country: str | None = None
    #: The key of the store the cart belongs to, if any.
    store_key: str | None = None
    #: Stripe Tax calculation ids (``connectorStripeTax_calculationReferences``).
    tax_calculation_references: tuple[str, ...] = ()
    #: The anonymous session the cart belongs to when it has no customer (commercetools).
    anonymous_id: str | None = None

    @property
    def subtotal(self) -> Money:
        """Sum of the line items."""
        return Money.of(sum(item.total_price.cent_amount for item in self.line_items), self.currency_code)

    @property
    def total_price(self) -> Money:
        """Line items plus shipping plus tax: what the customer owes."""
        subtotal = self.subtotal
        return subtotal.with_amount(subtotal.cent_amount + self.shipping_amount + self.tax_amount)

    @property
    def fingerprint(self) -> str:
        """A digest of what an order of this cart would sell and for how much.

        A payment keeps the fingerprint of the cart it was created for, and pays for no
        other: goods, quantities, prices, shipping method, shipping, tax and total.
        Addresses and the email are left out on purpose, so correcting them while paying
        (or the order taking the wallet's address) neither changes what is sold nor
        invalidates the payment; line item ids are left out because they are storage
        details that a re-saved cart may renew.
        """
        content = {
            "currency": self.currency_code,
            "items": [[i.sku, i.name, i.quantity, i.unit_price.cent_amount] for i in self.line_items],
            "shippingMethod": self.shipping_method_name or "",
            "shipping": self.shipping_amount,
            "tax": self.tax_amount,
            "total": self.total_price.cent_amount,
        }
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Order:
    """A cart that has been paid."""

    id: str
    version: int
    cart_id: str
    order_number: str
    currency_code: str
    line_items: tuple[LineItem, ...]
    total_price: Money
    shipping_amount: int
    tax_amount: int
    payment_state: str
    customer_email: str | None = None
    shipping_address: Address | None = None
    billing_address: Address | None = None
    payment_ids: tuple[str, ...] = ()
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Customer:
    """A shop customer; ``stripe_customer_id`` links the Stripe Customer holding their saved methods."""

    id: str
    email: str
    name: str = ""
    stripe_customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class SavedPaymentMethod:
    """A payment method a customer chose to save, as Stripe describes it (no card data)."""

    id: str
    customer_id: str
    stripe_payment_method_id: str
    brand: str
    last4: str
    exp_month: int | None
    exp_year: int | None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    """The browser's right to pay one cart: what ``X-Session-Id`` names."""

    id: str
    cart_id: str
    merchant_return_url: str | None
    allowed_payment_methods: tuple[str, ...] = field(default_factory=tuple)
    expires_at: datetime | None = None

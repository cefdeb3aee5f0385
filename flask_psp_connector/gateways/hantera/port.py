"""What the Hantera PSP flow needs from Hantera (:class:`HanteraPort`), and the values
that cross it; :class:`~flask_psp_connector.gateways.hantera.client.HanteraClient` is the
HTTP implementation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from flask_psp_connector.domain.money import Money
from flask_psp_connector.errors import PSPError

#: Cart states, as the Commerce app names them.
OPEN, COMPLETED = "open", "completed"


class HanteraAPIError(PSPError):
    """Hantera refused a call; keeps Hantera's error code and HTTP status."""

    status = 502
    code = "General"


@dataclass(frozen=True, slots=True)
class HanteraCart:
    """What the connector reads of a Hantera cart."""

    cart_id: str
    state: str
    total: Money
    cart_number: str
    email: str


class HanteraPort(Protocol):
    """Carts and payments in one Hantera instance."""

    def cart(self, cart_id: str) -> HanteraCart:
        """The cart ``cart_id`` as the storefront sees it; raise ``ResourceNotFound`` if Hantera knows none."""

    def find_payment(self, external_reference: str) -> str | None:
        """The id of the payment whose external reference is ``external_reference``, if any."""

    def create_payment(self, external_reference: str, authorized: Money, number_prefix: str) -> str | None:
        """Create the payment with a successful authorization of ``authorized``; return its
        id when Hantera's answer names it. Raise :class:`HanteraAPIError` when Hantera refuses
        (a payment with this external reference exists already, say)."""

    def complete_cart(self, cart_id: str, payment_id: str) -> None:
        """Link the payment to the cart and complete the cart, in one batch."""

    def charge(self, payment_id: str, amount: Money, authorization_number: str, transaction_reference: str) -> None:
        """Record on the payment a capture the provider approved."""

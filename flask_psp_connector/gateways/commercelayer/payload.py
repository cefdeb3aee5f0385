"""Commerce Layer's JSON:API payloads → typed gateway requests (no Flask here).

Amounts are read from the documented ``*_cents`` fields, counted in the ISO minor unit of
the currency (1 JPY = 1, 1 KWD = 1000), as integers; a ``*_float`` companion, when sent,
must say the same amount. Anything inconsistent is refused with :class:`PayloadError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from decimal import InvalidOperation as DecimalError
from typing import Any

from flask_psp_connector.domain.money import MAX_CENT_AMOUNT, Money
from flask_psp_connector.errors import InvalidOperation, PSPError


class PayloadError(PSPError):
    """The payload lacks a field the action needs, or its amounts do not add up."""

    status = 422
    code = "invalid_payload"


@dataclass(frozen=True, slots=True)
class Resource:
    """One JSON:API resource object."""

    id: str
    type: str
    attributes: dict[str, Any]
    relationships: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Document:
    """A JSON:API document: the target resource and the resources included with it."""

    data: Resource
    included: dict[tuple[str, str], Resource]

    def related(self, resource: Resource, name: str) -> Resource | None:
        """The included resource ``resource`` points to through relationship ``name``."""
        link = (resource.relationships.get(name) or {}).get("data")
        if not isinstance(link, dict):
            return None
        return self.included.get((str(link.get("type")), str(link.get("id"))))


def document(payload: dict[str, Any]) -> Document:
    """Index a validated JSON:API payload (``data`` plus ``included``)."""
    included = {(r["type"], r["id"]): _resource(r) for r in payload.get("included") or []}
    return Document(_resource(payload["data"]), included)


def _resource(raw: dict[str, Any]) -> Resource:
    return Resource(str(raw["id"]), str(raw["type"]), raw.get("attributes") or {}, raw.get("relationships") or {})


@dataclass(frozen=True, slots=True)
class AuthorizeRequest:
    """Authorize the order's amount with a Stripe PaymentMethod or PaymentIntent."""

    external_payment_id: str
    payment_source_token: str
    amount: Money
    order_id: str
    order_number: str
    customer_id: str | None
    return_url: str | None


@dataclass(frozen=True, slots=True)
class OperationRequest:
    """Capture or void an authorization, or refund a capture.

    :param transaction_id: the Commerce Layer authorization (capture, for refunds).
    :param payment_intent_id: the ``token`` we answered at authorization.
    :param amount: what to capture, void or refund.
    :param available: the most that may be acted on.
    :param balance: the platform's remaining balance before this operation, which tells
        two equal partial refunds apart.
    :param total: the transaction's whole amount (the capture's, for refunds).
    """

    transaction_id: str
    payment_intent_id: str
    amount: Money
    available: Money
    balance: int | None
    total: Money


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """Save a PaymentMethod on a Stripe customer for the Commerce Layer customer."""

    resource_id: str
    customer_id: str
    customer_email: str | None
    payment_source_token: str


def authorize_request(doc: Document) -> AuthorizeRequest:
    """Read an authorization request (``data`` = ``external_payments``)."""
    payment = doc.data
    token = _text(payment.attributes, "payment_source_token")
    if not token.startswith(("pm_", "pi_")):
        raise PayloadError("payment_source_token must be a Stripe PaymentMethod (pm_...) or PaymentIntent (pi_...).")
    order = _order(doc, payment)
    currency = _currency(order.attributes)
    amount = _cents(order.attributes, "total_amount_with_taxes", currency)
    if amount is None:
        raise PayloadError("The order has no total_amount_with_taxes_cents.")
    if amount.cent_amount <= 0:
        raise PayloadError("The order's total_amount_with_taxes_cents must be positive.")
    customer = doc.related(order, "customer")
    given = payment.attributes.get("options")
    options = given if isinstance(given, dict) else {}
    return_url = options.get("return_url")
    return AuthorizeRequest(
        external_payment_id=payment.id,
        payment_source_token=token,
        amount=amount,
        order_id=order.id,
        order_number=str(order.attributes.get("number") or ""),
        customer_id=customer.id if customer else None,
        return_url=return_url if isinstance(return_url, str) and return_url.startswith("https://") else None,
    )


def capture_request(doc: Document) -> OperationRequest:
    """Read a capture request (``data`` = ``authorizations``)."""
    return _operation(doc, "authorizations", "capture_amount", "capture_balance", "capture")


def void_request(doc: Document) -> OperationRequest:
    """Read a void request (``data`` = ``authorizations``)."""
    return _operation(doc, "authorizations", "void_balance", "void_balance", "void")


def refund_request(doc: Document) -> OperationRequest:
    """Read a refund request (``data`` = ``captures``)."""
    return _operation(doc, "captures", "refund_amount", "refund_balance", "refund")


def token_request(doc: Document) -> TokenRequest:
    """Read a customer-token request: a payment source and the customer it belongs to."""
    source = doc.data
    token = _text(source.attributes, "payment_source_token")
    if not token.startswith("pm_"):
        raise PayloadError("payment_source_token must be a Stripe PaymentMethod (pm_...).")
    customer = doc.related(source, "customer")
    order = doc.related(source, "order")
    if customer is None and order is not None:
        customer = doc.related(order, "customer")
    if customer is None:
        raise PayloadError("The payload includes no customer to save the payment source for.")
    email = customer.attributes.get("email")
    return TokenRequest(source.id, customer.id, email if isinstance(email, str) else None, token)


def _operation(doc: Document, resource_type: str, amount_field: str, balance_field: str, verb: str) -> OperationRequest:
    transaction = doc.data
    if transaction.type != resource_type:
        raise PayloadError(f"A {verb} acts on {resource_type}, not {transaction.type}.")
    attributes = transaction.attributes
    token = attributes.get("token") or attributes.get("gateway_transaction_id")
    if not isinstance(token, str) or not token.startswith("pi_"):
        raise PayloadError(f"The {resource_type[:-1]} carries no Stripe PaymentIntent token.")
    order = doc.related(transaction, "order")
    currency = _currency(attributes, order.attributes if order else None)
    total = _cents(attributes, "amount", currency)
    if total is None:
        raise PayloadError(f"The {resource_type[:-1]} has no amount_cents.")
    balance = _cents(attributes, balance_field, currency)
    amount = _cents(attributes, amount_field, currency) or balance or total
    available = balance if balance is not None and balance.cent_amount <= total.cent_amount else total
    if amount.cent_amount <= 0:
        raise PayloadError(f"The amount to {verb} must be positive.")
    if amount.cent_amount > available.cent_amount:
        raise PayloadError(f"Cannot {verb} {amount.cent_amount}: only {available.cent_amount} {currency} is available.")
    return OperationRequest(transaction.id, token, amount, available, None if balance is None else balance.cent_amount,
                            total)


def _order(doc: Document, resource: Resource) -> Resource:
    order = doc.related(resource, "order")
    if order is None:
        raise PayloadError("The payload does not include the order.")
    return order


def _text(attributes: dict[str, Any], name: str) -> str:
    value = attributes.get(name)
    if not isinstance(value, str) or not value:
        raise PayloadError(f"{name} is required.")
    return value


def _currency(attributes: dict[str, Any], fallback: dict[str, Any] | None = None) -> str:
    codes = {c for c in (attributes.get("currency_code"), (fallback or {}).get("currency_code")) if c is not None}
    if len(codes) > 1:
        raise PayloadError(f"Currency codes disagree: {', '.join(sorted(map(str, codes)))}.")
    code = next(iter(codes), None)
    if not isinstance(code, str) or len(code) != 3 or not code.isalpha():
        raise PayloadError("currency_code must be an ISO 4217 code.")
    return code.upper()


def _cents(attributes: dict[str, Any], field: str, currency: str) -> Money | None:
    """``{field}_cents`` as money, checked against ``{field}_float`` when that is sent too."""
    cents = attributes.get(f"{field}_cents")
    if cents is None:
        return None
    if type(cents) is not int or not 0 <= cents <= MAX_CENT_AMOUNT:
        raise PayloadError(f"{field}_cents must be a whole number of minor units from 0 to {MAX_CENT_AMOUNT}.")
    money = Money.of(cents, currency)
    try:
        money.to_stripe()
    except InvalidOperation as exc:
        raise PayloadError(f"{field}_cents: {exc.message}") from None
    major = attributes.get(f"{field}_float")
    if major is not None:
        try:
            expected = Decimal(str(major)).scaleb(money.fraction_digits)
        except (DecimalError, ValueError):
            raise PayloadError(f"{field}_float is not a number.") from None
        if expected != cents:
            raise PayloadError(
                f"{field}_cents ({cents}) and {field}_float ({major}) disagree for {currency}, "
                f"whose minor unit has {money.fraction_digits} digits."
            )
    return money

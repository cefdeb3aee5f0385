"""PaymentMethods and Customers, which localstripe keeps, as the payment objects use them."""

from __future__ import annotations

from typing import Any

from flask_psp_connector.testing.ledger import StripeError, missing


def payment_method(method_id: str) -> Any:
    """The localstripe PaymentMethod ``method_id`` (Stripe's ``pm_card_*`` test ids included)."""
    from localstripe import resources
    from localstripe.errors import UserError

    try:
        return resources.PaymentMethod._api_retrieve(method_id)
    except UserError:
        raise missing("payment_method", method_id) from None


#: Stripe's test IBANs for SEPA Direct Debit whose debit fails after processing; any other settles.
FAILING_IBANS = frozenset({"DE62370400440532013001", "AT861904300235473202", "FR3020041010050500013M02607"})


def method_from_data(data: Any) -> Any:
    """A PaymentMethod created from ``payment_method_data`` (type card or sepa_debit)."""
    from localstripe import resources
    from localstripe.errors import UserError

    if isinstance(data, dict) and data.get("type") == "sepa_debit":
        iban = str((data.get("sepa_debit") or {}).get("iban") or "")
        if not 14 <= len(iban.replace(" ", "")) <= 34:
            raise StripeError(400, "The IBAN you provided is invalid.", code="invalid_bank_account_iban",
                              param="payment_method_data[sepa_debit][iban]")
        return resources.PaymentMethod(type="sepa_debit", sepa_debit={"iban": iban},
                                       billing_details=data.get("billing_details") or None,
                                       metadata=data.get("metadata") or None)
    if not isinstance(data, dict) or data.get("type") != "card" or not isinstance(data.get("card"), dict):
        raise StripeError(400, "payment_method_data[type] must be card or sepa_debit in this double.",
                          param="payment_method_data[type]")
    card = {key: str(data["card"].get(key, "")) for key in ("number", "exp_month", "exp_year", "cvc")}
    try:
        method = resources.PaymentMethod(type="card", card=card, billing_details=data.get("billing_details") or None,
                                         metadata=data.get("metadata") or None)
    except UserError as error:
        raise StripeError(400, "Your card's details are invalid.", type_="card_error", code="invalid_number"
                          if "number" in str(error.body) else "invalid_card_details", param="payment_method_data[card]") from None
    if data.get("allow_redisplay") in ("always", "limited", "unspecified"):
        method.allow_redisplay = data["allow_redisplay"]
    return method


def number_of(method: Any) -> str:
    return getattr(method, "_card_number", "")


def iban_of(method: Any) -> str:
    """The IBAN of a sepa_debit PaymentMethod ("" for a card)."""
    return getattr(method, "_sepa_debit_iban", "")


def method_details(method: Any) -> dict[str, Any]:
    if getattr(method, "type", "card") == "sepa_debit":
        debit = dict(getattr(method, "sepa_debit", None) or {})
        return {"type": "sepa_debit", "sepa_debit": {key: debit.get(key) for key in (
            "bank_code", "country", "fingerprint", "last4", "mandate")}}
    card = dict(getattr(method, "card", None) or {})
    return {"type": "card", "card": {
        "brand": card.get("brand"), "last4": card.get("last4"), "exp_month": card.get("exp_month"),
        "exp_year": card.get("exp_year"), "country": card.get("country"), "funding": card.get("funding"),
        "fingerprint": card.get("fingerprint"), "network": card.get("brand"),
        "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "pass"},
        "three_d_secure": None,
    }}


def method_object(method_id: str | None) -> dict[str, Any] | None:
    return payment_method(method_id)._export() if method_id else None


def ensure_customer(customer_id: str) -> None:
    from localstripe import resources
    from localstripe.errors import UserError

    try:
        resources.Customer._api_retrieve(customer_id)
    except UserError:
        raise missing("customer", customer_id) from None

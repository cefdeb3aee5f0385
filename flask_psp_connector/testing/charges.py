"""Charges and balance transactions, as Stripe documents them.

A PaymentIntent's confirmation creates its Charge here: :func:`decline_charge` records a declined
one and answers Stripe's 402, :func:`charge_succeeded` a successful one (captured at once,
or authorized for a manual capture) and what it does to the PaymentIntent. Every capture
adds a balance transaction (no fee).
"""

from __future__ import annotations

import time
from typing import Any

from flask_psp_connector.testing.cards import Decline
from flask_psp_connector.testing.ledger import StripeError, ledger, listed, missing, new_id, public, stamped
from flask_psp_connector.testing.methods import method_details, method_object
from flask_psp_connector.testing.params import merge_metadata, only
from flask_psp_connector.testing.refunds import open_dispute_if_any


def new_charge(obj: dict[str, Any], method: Any, status: str) -> dict[str, Any]:
    """A Charge of the PaymentIntent ``obj`` by ``method`` in ``status``, now its latest charge."""
    charge_id = new_id("ch")
    charge = stamped({
        "id": charge_id, "object": "charge", "amount": obj["amount"], "amount_captured": 0, "amount_refunded": 0,
        "balance_transaction": None, "billing_details": dict(getattr(method, "billing_details", None) or {}),
        "calculated_statement_descriptor": "SANDBOX", "captured": False, "currency": obj["currency"],
        "customer": obj["customer"], "description": obj["description"], "disputed": False, "failure_code": None,
        "failure_message": None, "livemode": False, "metadata": dict(obj["metadata"]), "outcome": None,
        "paid": False, "payment_intent": obj["id"], "payment_method": method.id,
        "payment_method_details": method_details(method), "receipt_email": obj["receipt_email"],
        "receipt_url": f"https://pay.stripe.com/receipts/payment/{charge_id}", "refunded": False,
        "shipping": obj["shipping"], "statement_descriptor": obj["statement_descriptor"], "status": status,
    })
    ledger.charges[charge_id] = charge
    obj["latest_charge"] = charge_id
    return charge


def decline_charge(obj: dict[str, Any], method: Any, decline: Decline) -> dict[str, Any]:
    """Record the declined Charge, put the PaymentIntent back to ``requires_payment_method``
    and answer Stripe's 402 ``card_error``.

    :raises StripeError: always.
    """
    charge = new_charge(obj, method, "failed")
    charge.update(failure_code=decline.code, failure_message=decline.message, outcome={
        "network_status": decline.network_status, "reason": decline.decline_code, "risk_level": "normal",
        "seller_message": "The bank did not return any further details with this decline.", "type": decline.outcome_type,
    })
    details = {"code": decline.code, "decline_code": decline.decline_code, "charge": charge["id"],
               "doc_url": f"https://stripe.com/docs/error-codes/{decline.code.replace('_', '-')}",
               "payment_method": method_object(method.id)}
    obj["status"] = "requires_payment_method"
    obj["last_payment_error"] = {"type": "card_error", "message": decline.message, **details}
    ledger.emit("charge.failed", public(charge))
    ledger.emit("payment_intent.payment_failed", public(obj))
    raise StripeError(402, decline.message, type_="card_error", **details, payment_intent=public(obj))


def charge_succeeded(obj: dict[str, Any], method: Any) -> dict[str, Any]:
    """Record the successful Charge: captured at once (``succeeded``), or authorized for a
    manual capture (``requires_capture``); return the PaymentIntent."""
    charge = new_charge(obj, method, "succeeded")
    manual = obj["capture_method"] == "manual"
    if manual and obj["payment_method_options"]["card"].get("request_multicapture") == "if_available":
        charge["payment_method_details"]["card"]["multicapture"] = {"status": "available"}
    if not manual:
        record_balance_transaction(charge, obj["amount"])
    charge.update(paid=True, captured=not manual, amount_captured=0 if manual else obj["amount"], outcome={
        "network_status": "approved_by_network", "reason": None, "risk_level": "normal", "risk_score": 20,
        "seller_message": "Payment complete.", "type": "authorized",
    })
    if manual:
        obj["status"], obj["amount_capturable"] = "requires_capture", obj["amount"]
    else:
        obj["status"], obj["amount_received"] = "succeeded", obj["amount"]
    if obj["setup_future_usage"] and obj["customer"] and not getattr(method, "customer", None):
        method.customer = obj["customer"]  # Stripe attaches a method set up for future use
    ledger.emit("charge.succeeded", public(charge))
    ledger.emit("payment_intent.amount_capturable_updated" if manual else "payment_intent.succeeded", public(obj))
    if not manual:
        open_dispute_if_any(charge, method)
    return obj


def record_balance_transaction(charge: dict[str, Any], amount: int) -> dict[str, Any]:
    """The balance transaction of money captured on ``charge`` (no fee, in its currency);
    the charge's ``balance_transaction`` names its first one."""
    created = stamped({
        "id": new_id("txn"), "object": "balance_transaction", "amount": amount, "currency": charge["currency"],
        "description": None, "exchange_rate": None, "fee": 0, "fee_details": [], "net": amount,
        "reporting_category": "charge", "source": charge["id"], "status": "pending", "type": "charge",
        "available_on": int(time.time()) + 2 * 86400,
    })
    ledger.balance_transactions[created["id"]] = created
    charge["balance_transaction"] = charge["balance_transaction"] or created["id"]
    return created


def balance_transaction(transaction_id: str) -> dict[str, Any]:
    """``GET /v1/balance_transactions/<id>``."""
    found = ledger.balance_transactions.get(transaction_id)
    if found is None:
        raise missing("balance_transaction", transaction_id)
    return found


def list_balance_transactions(query: dict[str, Any]) -> dict[str, Any]:
    """``GET /v1/balance_transactions`` (``source``, ``type``, ``created``, cursors; ``expand[]=data.source``)."""
    only(query, {"source", "type", "created", "limit", "starting_after", "ending_before", "currency", "payout", "expand"})
    found = [t for t in ledger.balance_transactions.values()
             if all(not query.get(k) or t[k] == query[k] for k in ("source", "type", "currency"))]
    page = listed(found, "/v1/balance_transactions", {k: v for k, v in query.items() if k != "expand"})
    expand = query.get("expand") or []
    if "data.source" in (expand.values() if isinstance(expand, dict) else expand):
        for transaction in page["data"]:
            transaction["source"] = public(ledger.charges[transaction["source"]])
    return page


def charge(charge_id: str) -> dict[str, Any]:
    """The Charge ``charge_id`` or Stripe's 404."""
    found = ledger.charges.get(charge_id)
    if found is None:
        raise missing("charge", charge_id)
    return found


def list_charges(query: dict[str, Any]) -> dict[str, Any]:
    """``GET /v1/charges`` (``payment_intent``, ``customer``, ``created``, cursors)."""
    only(query, {"payment_intent", "customer", "created", "limit", "starting_after", "ending_before", "expand"})
    found = [c for c in ledger.charges.values()
             if all(not query.get(k) or c[k] == query[k] for k in ("payment_intent", "customer"))]
    return listed(found, "/v1/charges", query)


def update_charge(charge_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/charges/<id>`` (description, metadata)."""
    obj = charge(charge_id)
    only(params, {"description", "metadata", "receipt_email", "shipping", "expand"})
    previous = {k: obj[k] for k in params if k != "expand"}
    for name, value in params.items():
        if name == "metadata":
            obj["metadata"] = merge_metadata(obj["metadata"], value)
        elif name != "expand":
            obj[name] = value or None
    ledger.emit("charge.updated", public(obj), previous)
    return obj

"""PaymentIntents, as Stripe documents them (their Charges are made in :mod:`.charges`).

- Confirming charges the PaymentMethod's card, and the card decides, as Stripe's test
  cards do (:mod:`.cards`): a decline answers 402 ``card_error`` and leaves the
  PaymentIntent in ``requires_payment_method`` with ``last_payment_error`` (events
  ``charge.failed``, ``payment_intent.payment_failed``); a 3D Secure card answers
  ``requires_action`` (``payment_intent.requires_action``) until
  ``POST /v1/payment_intents/<id>/_authenticate`` — the double's stand-in for the bank's
  challenge page — passes or fails it; a dispute card succeeds and then opens a dispute
  (``charge.dispute.created``).
- A SEPA Direct Debit (``sepa_debit``) is not settled at once: confirming leaves the
  PaymentIntent ``processing`` (``charge.pending``, ``payment_intent.processing``) until
  ``POST /v1/payment_intents/<id>/_settle`` — the double's stand-in for the days the debit
  takes — settles it as Stripe's test IBAN says: ``payment_intent.succeeded``, or for a
  failing IBAN ``payment_intent.payment_failed`` back in ``requires_payment_method``.
- A successful charge sends ``charge.succeeded``, then ``payment_intent.succeeded``
  (``amount_received``) or, for manual capture, ``payment_intent.amount_capturable_updated``
  (``amount_capturable``). Capturing less than authorized releases the rest:
  ``amount_captured`` is what was taken, nothing is refunded (``charge.captured``).
"""


from __future__ import annotations

import time
from typing import Any

from flask_psp_connector.testing.cards import (
    AUTHENTICATION_REQUIRED,
    DECLINE_AFTER_AUTHENTICATION,
    DECLINES,
    Decline,
)
from flask_psp_connector.testing.charges import charge_succeeded, decline_charge, new_charge, record_balance_transaction
from flask_psp_connector.testing.ledger import StripeError, ledger, listed, missing, new_id, public, stamped
from flask_psp_connector.testing.methods import (
    FAILING_IBANS,
    ensure_customer,
    iban_of,
    method_from_data,
    method_object,
    number_of,
    payment_method,
)
from flask_psp_connector.testing.params import amount_param, choice, flag, merge_metadata, only
from flask_psp_connector.testing.refunds import open_dispute_if_any

_CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
_CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing")
_CAPTURE_METHODS = ("automatic", "automatic_async", "manual")
_CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")
_INTENT_FIELDS = {
    "amount", "currency", "customer", "description", "metadata", "payment_method", "payment_method_types",
    "automatic_payment_methods", "capture_method", "confirm", "confirmation_method", "receipt_email", "return_url",
    "setup_future_usage", "shipping", "statement_descriptor", "statement_descriptor_suffix", "off_session",
    "error_on_requires_action", "payment_method_data", "payment_method_options", "mandate_data", "use_stripe_sdk",
    "transfer_group", "expand", "client_secret", "hooks",
}
_UPDATABLE = {
    "amount", "currency", "customer", "description", "metadata", "payment_method", "payment_method_types",
    "capture_method", "receipt_email", "setup_future_usage", "shipping", "statement_descriptor",
    "statement_descriptor_suffix", "payment_method_data", "payment_method_options", "transfer_group", "expand",
}
_CONFIRM_FIELDS = {
    "payment_method", "payment_method_data", "return_url", "setup_future_usage", "off_session", "receipt_email",
    "shipping", "error_on_requires_action", "mandate_data", "payment_method_options", "use_stripe_sdk",
    "capture_method", "payment_method_types", "client_secret", "expand",
}
_AUTH_FAILURE = ("We are unable to authenticate your payment method. Please choose a different payment "
                 "method and try again.")


# -- PaymentIntents ------------------------------------------------------------------


def intent(intent_id: str) -> dict[str, Any]:
    """The PaymentIntent ``intent_id`` or Stripe's 404."""
    found = ledger.intents.get(intent_id)
    if found is None:
        raise missing("payment_intent", intent_id)
    return found


def create_intent(params: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/payment_intents``."""
    only(params, _INTENT_FIELDS)
    if "amount" not in params:
        raise StripeError(400, "Missing required param: amount.", code="parameter_missing", param="amount")
    if not params.get("currency"):
        raise StripeError(400, "Missing required param: currency.", code="parameter_missing", param="currency")
    types = params.get("payment_method_types")
    automatic = params.get("automatic_payment_methods")
    if types and automatic and flag(automatic.get("enabled")):
        raise StripeError(400, "You may only specify one of these parameters: automatic_payment_methods, payment_method_types.",
                          param="automatic_payment_methods")
    hooks = _hooks(params.get("hooks"))
    intent_id = new_id("pi")
    obj = stamped({
        "id": intent_id, "object": "payment_intent",
        "amount": amount_param(params["amount"], "amount"), "amount_capturable": 0, "amount_details": {"tip": {}},
        "amount_received": 0, "application": None, "application_fee_amount": None,
        "automatic_payment_methods": None if types else {
            "allow_redirects": (automatic or {}).get("allow_redirects") or "always", "enabled": True},
        "canceled_at": None, "cancellation_reason": None,
        "capture_method": choice(params.get("capture_method", "automatic_async"), _CAPTURE_METHODS, "capture_method"),
        "client_secret": f"{intent_id}_secret_{new_id('s')[2:]}",
        "confirmation_method": choice(params.get("confirmation_method", "automatic"), ("automatic", "manual"),
                                      "confirmation_method"),
        "currency": str(params["currency"]).lower(), "customer": params.get("customer") or None,
        "description": params.get("description") or None, "last_payment_error": None, "latest_charge": None,
        "livemode": False, "metadata": merge_metadata({}, params.get("metadata") or {}), "next_action": None,
        "on_behalf_of": None, "payment_method": None, "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic",
                                            **((params.get("payment_method_options") or {}).get("card") or {})}},
        "payment_method_types": list(types) if types else ["card"], "processing": None,
        "receipt_email": params.get("receipt_email") or None, "review": None,
        "setup_future_usage": params.get("setup_future_usage") or None, "shipping": params.get("shipping") or None,
        "statement_descriptor": params.get("statement_descriptor") or None,
        "statement_descriptor_suffix": params.get("statement_descriptor_suffix") or None,
        "status": "requires_payment_method", "transfer_data": None, "transfer_group": params.get("transfer_group") or None,
        "hooks": hooks,
    })
    if obj["customer"]:
        ensure_customer(obj["customer"])
    if params.get("payment_method"):
        obj["payment_method"] = payment_method(params["payment_method"]).id
        obj["status"] = "requires_confirmation"
    elif params.get("payment_method_data"):
        obj["payment_method"] = method_from_data(params["payment_method_data"]).id
        obj["status"] = "requires_confirmation"
    ledger.intents[intent_id] = obj
    ledger.emit("payment_intent.created", public(obj))
    if flag(params.get("confirm")):
        return _confirm(obj, {k: v for k, v in params.items() if k in _CONFIRM_FIELDS})
    return obj


def _hooks(value: Any) -> dict[str, Any] | None:
    """``hooks[inputs][tax][calculation]``: a Stripe Tax calculation id (``taxcalc_...``)."""
    if value is None:
        return None
    calculation = ((value.get("inputs") or {}).get("tax") or {}).get("calculation") if isinstance(value, dict) else None
    if not isinstance(calculation, str) or not calculation.startswith("taxcalc_") or set(value) != {"inputs"}:
        raise StripeError(400, "Invalid hooks: only hooks[inputs][tax][calculation] (a taxcalc_ id) is supported.",
                          param="hooks[inputs][tax][calculation]")
    return {"inputs": {"tax": {"calculation": calculation}}}


def update_intent(intent_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/payment_intents/<id>``."""
    obj = intent(intent_id)
    only(params, _UPDATABLE)
    money = {"amount", "currency", "payment_method", "payment_method_data", "capture_method", "payment_method_types"}
    changeable = ("requires_payment_method", "requires_confirmation", "requires_action", "requires_capture")
    if money & params.keys() and obj["status"] not in changeable:
        raise StripeError(400, f"You cannot update this PaymentIntent because it has a status of {obj['status']}.",
                          code="payment_intent_unexpected_state", payment_intent=public(obj))
    previous: dict[str, Any] = {}
    for name, value in params.items():
        if name == "expand":
            continue
        if name == "metadata":
            new: Any = merge_metadata(obj["metadata"], value)
        elif name == "amount":
            new = amount_param(value, "amount")
        elif name == "currency":
            new = str(value).lower()
        elif name == "payment_method":
            new = payment_method(value).id if value else None
        elif name == "payment_method_data":
            name, new = "payment_method", method_from_data(value).id
        elif name == "capture_method":
            new = choice(value, _CAPTURE_METHODS, "capture_method")
        else:
            new = value or None
        if obj.get(name) != new:
            previous[name] = obj.get(name)
            obj[name] = new
    if "payment_method" in previous:
        obj["status"] = "requires_confirmation" if obj["payment_method"] else "requires_payment_method"
    if previous:
        ledger.emit("payment_intent.updated", public(obj), previous)
    return obj


def confirm_intent(intent_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/payment_intents/<id>/confirm``."""
    only(params, _CONFIRM_FIELDS)
    return _confirm(intent(intent_id), params)


def _confirm(obj: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    if obj["status"] not in _CONFIRMABLE:
        raise StripeError(400, f"You cannot confirm this PaymentIntent because it has a status of {obj['status']}. "
                          "Only a PaymentIntent with one of the following statuses may be confirmed: "
                          "requires_confirmation, requires_payment_method, requires_action.",
                          code="payment_intent_unexpected_state", payment_intent=public(obj))
    if params.get("payment_method"):
        obj["payment_method"] = payment_method(params["payment_method"]).id
    elif params.get("payment_method_data"):
        obj["payment_method"] = method_from_data(params["payment_method_data"]).id
    for name in ("setup_future_usage", "receipt_email", "shipping"):
        if params.get(name):
            obj[name] = params[name]
    if not obj["payment_method"]:
        raise StripeError(400, "You cannot confirm this PaymentIntent because it's missing a payment method. "
                          "To confirm the PaymentIntent, update it with a payment method and then confirm it again.",
                          code="payment_intent_unexpected_state", payment_intent=public(obj))
    method = payment_method(obj["payment_method"])
    owner = getattr(method, "customer", None)
    if owner and owner != obj["customer"]:
        raise StripeError(400, f"The provided PaymentMethod belongs to customer {owner}; the PaymentIntent's customer "
                          "must be the same.", code="payment_method_unexpected_state", param="payment_method")
    obj["last_payment_error"] = None
    obj["next_action"] = None
    if getattr(method, "type", "card") == "sepa_debit":
        return _debit(obj, method)
    number = number_of(method)
    off_session = flag(params.get("off_session")) or flag(params.get("error_on_requires_action"))
    if number in AUTHENTICATION_REQUIRED and not obj.get("_authenticated"):
        if off_session:
            return decline_charge(obj, method, Decline("authentication_required", "authentication_required",
                                                 "Your card was declined. This transaction requires authentication."))
        obj["status"] = "requires_action"
        return_url = params.get("return_url")
        obj["next_action"] = (
            {"type": "redirect_to_url", "redirect_to_url": {"return_url": return_url, "url": f"https://hooks.stripe.com/3d_secure_2/hosted?payment_intent={obj['id']}"}}
            if return_url else
            {"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": ""}}
        )
        ledger.emit("payment_intent.requires_action", public(obj))
        return obj
    decline = DECLINES.get(number) or (DECLINE_AFTER_AUTHENTICATION.get(number) if obj.get("_authenticated") else None)
    if decline:
        return decline_charge(obj, method, decline)
    return charge_succeeded(obj, method)


def _debit(obj: dict[str, Any], method: Any) -> dict[str, Any]:
    """A SEPA Direct Debit: submitted to the bank, the money arrives (or not) days later."""
    if obj["capture_method"] == "manual":
        raise StripeError(400, "The PaymentMethod type sepa_debit does not support capture_method manual.",
                          param="capture_method")
    if "sepa_debit" not in obj["payment_method_types"] and obj["automatic_payment_methods"] is None:
        raise StripeError(400, "The PaymentMethod provided (sepa_debit) is not allowed for this PaymentIntent.",
                          code="payment_intent_incompatible_payment_method", param="payment_method")
    charge = new_charge(obj, method, "pending")
    charge.update(captured=True, amount_captured=obj["amount"])
    obj["status"], obj["processing"] = "processing", {"type": "sepa_debit"}
    if obj["setup_future_usage"] and obj["customer"] and not getattr(method, "customer", None):
        method.customer = obj["customer"]
    ledger.emit("charge.pending", public(charge))
    ledger.emit("payment_intent.processing", public(obj))
    return obj


def settle_intent(intent_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """The double's addition ``POST /v1/payment_intents/<id>/_settle``: the bank's answer to a
    processing debit, as the test IBAN decides."""
    obj = intent(intent_id)
    only(params, set())
    if obj["status"] != "processing":
        raise StripeError(400, f"This PaymentIntent's status is {obj['status']}; only a processing one settles.",
                          code="payment_intent_unexpected_state")
    charge = ledger.charges[obj["latest_charge"]]
    method = payment_method(obj["payment_method"])
    obj["processing"] = None
    if iban_of(method) in FAILING_IBANS:
        message = "The account has insufficient funds to cover this payment."
        charge.update(status="failed", captured=False, amount_captured=0, failure_code="insufficient_funds",
                      failure_message=message)
        obj["status"] = "requires_payment_method"
        obj["last_payment_error"] = {"type": "card_error", "code": "insufficient_funds", "message": message,
                                     "charge": charge["id"], "payment_method": method_object(method.id)}
        ledger.emit("charge.failed", public(charge))
        ledger.emit("payment_intent.payment_failed", public(obj))
        return obj
    record_balance_transaction(charge, obj["amount"])
    charge.update(status="succeeded", paid=True)
    obj["status"], obj["amount_received"] = "succeeded", obj["amount"]
    ledger.emit("charge.succeeded", public(charge))
    ledger.emit("payment_intent.succeeded", public(obj))
    return obj


def authenticate_intent(intent_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """The double's stand-in for the bank's 3D Secure page: ``success=true`` passes the
    challenge and the payment proceeds; otherwise it fails as Stripe documents
    (``payment_intent_authentication_failure``, back to ``requires_payment_method``)."""
    obj = intent(intent_id)
    if params.get("client_secret") != obj["client_secret"]:
        raise StripeError(400, "The client_secret provided does not match the client_secret associated with the PaymentIntent.",
                          param="client_secret")
    if obj["status"] != "requires_action":
        raise StripeError(400, f"This PaymentIntent's status is {obj['status']}; there is nothing to authenticate.",
                          code="payment_intent_unexpected_state")
    obj["next_action"] = None
    if not flag(params.get("success")):
        obj["status"] = "requires_payment_method"
        obj["last_payment_error"] = {"type": "invalid_request_error", "code": "payment_intent_authentication_failure",
                                     "message": _AUTH_FAILURE, "payment_method": method_object(obj["payment_method"])}
        ledger.emit("payment_intent.payment_failed", public(obj))
        return obj
    obj["_authenticated"] = True
    method = payment_method(obj["payment_method"])
    decline = DECLINE_AFTER_AUTHENTICATION.get(number_of(method))
    if decline:
        try:
            return decline_charge(obj, method, decline)
        except StripeError:
            return obj  # the browser reads last_payment_error from the PaymentIntent
    return charge_succeeded(obj, method)


def capture_intent(intent_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/payment_intents/<id>/capture``: takes ``amount_to_capture`` (default all)
    and releases the rest of the authorization, unless ``final_capture=false`` on a
    multicapture authorization keeps the rest capturable."""
    obj = intent(intent_id)
    only(params, {"amount_to_capture", "final_capture", "metadata", "statement_descriptor", "expand"})
    if obj["status"] != "requires_capture":
        raise StripeError(400, f"This PaymentIntent could not be captured because it has a status of {obj['status']}. "
                          "Only a PaymentIntent with one of the following statuses may be captured: requires_capture.",
                          code="payment_intent_unexpected_state", payment_intent=public(obj))
    amount = amount_param(params.get("amount_to_capture", obj["amount_capturable"]), "amount_to_capture")
    if amount > obj["amount_capturable"]:
        raise StripeError(400, f"The amount_to_capture ({amount}) must be less than or equal to the amount_capturable "
                          f"({obj['amount_capturable']}).", code="amount_too_large", param="amount_to_capture")
    if "metadata" in params:
        obj["metadata"] = merge_metadata(obj["metadata"], params["metadata"])
    charge = ledger.charges[obj["latest_charge"]]
    final = flag(params.get("final_capture", True))
    if not final and charge["payment_method_details"]["card"].get("multicapture", {}).get("status") != "available":
        raise StripeError(400, "final_capture=false needs multicapture: request it with "
                          "payment_method_options[card][request_multicapture]=if_available.", param="final_capture")
    previous = {"amount_captured": charge["amount_captured"], "balance_transaction": charge["balance_transaction"],
                "captured": charge["captured"]}
    record_balance_transaction(charge, amount)
    charge.update(captured=True, amount_captured=charge["amount_captured"] + amount)
    obj["amount_received"] += amount
    obj["amount_capturable"] = 0 if final else obj["amount_capturable"] - amount
    obj["status"] = "requires_capture" if obj["amount_capturable"] else "succeeded"
    ledger.emit("charge.captured", public(charge))
    if "multicapture" in charge["payment_method_details"]["card"]:
        # Each capture of a multicapture charge is announced as an update of the charge.
        ledger.emit("charge.updated", public(charge), {k: v for k, v in previous.items() if charge[k] != v})
    if obj["status"] == "succeeded":
        ledger.emit("payment_intent.succeeded", public(obj))
        open_dispute_if_any(charge, payment_method(charge["payment_method"]))
    else:
        ledger.emit("payment_intent.amount_capturable_updated", public(obj))
    return obj


def cancel_intent(intent_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/payment_intents/<id>/cancel``: releases an authorization."""
    obj = intent(intent_id)
    only(params, {"cancellation_reason", "expand"})
    if obj["status"] not in _CANCELABLE:
        raise StripeError(400, f"You cannot cancel this PaymentIntent because it has a status of {obj['status']}. "
                          f"Only a PaymentIntent with one of the following statuses may be canceled: {', '.join(_CANCELABLE)}.",
                          code="payment_intent_unexpected_state", payment_intent=public(obj))
    reason = params.get("cancellation_reason")
    obj.update(status="canceled", canceled_at=int(time.time()), amount_capturable=0, next_action=None,
               cancellation_reason=choice(reason, _CANCELLATION_REASONS, "cancellation_reason") if reason else None)
    ledger.emit("payment_intent.canceled", public(obj))
    return obj


def list_intents(query: dict[str, Any]) -> dict[str, Any]:
    """``GET /v1/payment_intents`` (``customer``, ``created``, cursors)."""
    only(query, {"customer", "created", "limit", "starting_after", "ending_before", "expand"})
    found = [o for o in ledger.intents.values() if not query.get("customer") or o["customer"] == query["customer"]]
    return listed(found, "/v1/payment_intents", query)


def export_intent(obj: dict[str, Any], expand: list[str] | None = None) -> dict[str, Any]:
    """The PaymentIntent as the API answers it, with ``latest_charge``/``payment_method`` expanded on request."""
    body = public(obj)
    for path in expand or []:
        if path == "latest_charge" and body["latest_charge"]:
            body["latest_charge"] = public(ledger.charges[body["latest_charge"]])
        elif path == "payment_method" and body["payment_method"]:
            body["payment_method"] = method_object(body["payment_method"])
    return body

"""Refunds and Disputes, as Stripe documents them.

Refunds are limited to what was captured and not yet refunded (``amount_too_large``,
``charge_already_refunded``, ``charge_disputed``) and send ``refund.created`` and
``charge.refunded``. Stripe's dispute test cards open a dispute after a successful
charge (``charge.dispute.created``); closing it loses it, evidence can win it.
"""

from __future__ import annotations

import time
from typing import Any

from flask_psp_connector.testing.cards import DISPUTES
from flask_psp_connector.testing.ledger import StripeError, ledger, listed, missing, new_id, public, stamped
from flask_psp_connector.testing.methods import number_of
from flask_psp_connector.testing.params import amount_param, choice, flag, merge_metadata, only

_REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def create_refund(params: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/refunds`` for a ``payment_intent`` or a ``charge``, at most what remains refundable."""
    only(params, {"payment_intent", "charge", "amount", "reason", "metadata", "expand", "instructions_email"})
    if params.get("payment_intent"):
        paid = ledger.intents.get(params["payment_intent"])
        if paid is None:
            raise missing("payment_intent", params["payment_intent"])
        if not paid["latest_charge"] or ledger.charges[paid["latest_charge"]]["status"] != "succeeded":
            raise StripeError(400, f"This PaymentIntent ({paid['id']}) does not have a successful charge to refund.",
                              param="payment_intent")
        target = ledger.charges[paid["latest_charge"]]
    elif params.get("charge"):
        charge = ledger.charges.get(params["charge"])
        if charge is None:
            raise missing("charge", params["charge"])
        target = charge
    else:
        raise StripeError(400, "One of the following params should be provided for this request: payment_intent or charge.",
                          code="parameter_missing")
    if target["disputed"]:
        raise StripeError(400, f"Charge {target['id']} has been charged back; it cannot be refunded.", code="charge_disputed")
    if not target["captured"]:
        raise StripeError(400, f"Charge {target['id']} has not been captured; cancel its PaymentIntent to release it.",
                          code="charge_not_refundable")
    refundable = target["amount_captured"] - target["amount_refunded"]
    if refundable <= 0:
        raise StripeError(400, f"Charge {target['id']} has already been refunded.", code="charge_already_refunded")
    amount = amount_param(params["amount"], "amount") if "amount" in params else refundable
    if amount > refundable:
        raise StripeError(400, f"Refund amount ({amount}) is greater than unrefunded amount on charge ({refundable})",
                          code="amount_too_large", param="amount")
    reason = params.get("reason")
    refund = stamped({
        "id": new_id("re"), "object": "refund", "amount": amount, "balance_transaction": None, "charge": target["id"],
        "currency": target["currency"],
        "destination_details": {"type": "card", "card": {"type": "refund", "reference_status": "pending"}},
        "metadata": merge_metadata({}, params.get("metadata") or {}), "payment_intent": target["payment_intent"],
        "reason": choice(reason, _REFUND_REASONS, "reason") if reason else None, "receipt_number": None,
        "source_transfer_reversal": None, "status": "succeeded", "transfer_reversal": None,
    })
    ledger.refunds[refund["id"]] = refund
    previous = {"amount_refunded": target["amount_refunded"], "refunded": target["refunded"]}
    target["amount_refunded"] += amount
    target["refunded"] = target["amount_refunded"] >= target["amount_captured"]
    ledger.emit("refund.created", public(refund))
    ledger.emit("charge.refunded", _charge_with_refunds(target), previous)
    return refund


def _charge_with_refunds(obj: dict[str, Any]) -> dict[str, Any]:
    refunds = sorted((r for r in ledger.refunds.values() if r["charge"] == obj["id"]), key=lambda r: r["_seq"], reverse=True)
    return {**public(obj), "refunds": {"object": "list", "data": [public(r) for r in refunds], "has_more": False,
                                       "url": f"/v1/charges/{obj['id']}/refunds"}}


def refund(refund_id: str) -> dict[str, Any]:
    """The Refund ``refund_id`` or Stripe's 404."""
    found = ledger.refunds.get(refund_id)
    if found is None:
        raise missing("refund", refund_id)
    return found


def update_refund(refund_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/refunds/<id>``: only metadata can change."""
    obj = refund(refund_id)
    only(params, {"metadata", "expand"})
    previous = {"metadata": obj["metadata"]}
    obj["metadata"] = merge_metadata(obj["metadata"], params.get("metadata", {}))
    ledger.emit("refund.updated", public(obj), previous)
    ledger.emit("charge.refund.updated", public(obj), previous)
    return obj


def list_refunds(query: dict[str, Any]) -> dict[str, Any]:
    """``GET /v1/refunds`` (``charge``, ``payment_intent``, ``created``, cursors)."""
    only(query, {"charge", "payment_intent", "created", "limit", "starting_after", "ending_before", "expand"})
    found = [r for r in ledger.refunds.values() if _matches(r, query)]
    return listed(found, "/v1/refunds", query)


# -- Disputes --------------------------------------------------------------------------


def open_dispute_if_any(charge_obj: dict[str, Any], method: Any) -> None:
    found = DISPUTES.get(number_of(method))
    if not found:
        return
    reason, inquiry = found
    dispute = stamped({
        "id": new_id("dp"), "object": "dispute", "amount": charge_obj["amount_captured"], "balance_transactions": [],
        "charge": charge_obj["id"], "currency": charge_obj["currency"], "evidence": {},
        "evidence_details": {"due_by": int(time.time()) + 7 * 86400, "has_evidence": False, "past_due": False,
                             "submission_count": 0},
        "is_charge_refundable": inquiry, "livemode": False, "metadata": {}, "payment_intent": charge_obj["payment_intent"],
        "reason": reason, "status": "warning_needs_response" if inquiry else "needs_response",
    })
    ledger.disputes[dispute["id"]] = dispute
    if not inquiry:
        charge_obj["disputed"] = True
    ledger.emit("charge.dispute.created", public(dispute))
    if not inquiry:
        ledger.emit("charge.dispute.funds_withdrawn", public(dispute))


def dispute(dispute_id: str) -> dict[str, Any]:
    """The Dispute ``dispute_id`` or Stripe's 404."""
    found = ledger.disputes.get(dispute_id)
    if found is None:
        raise missing("dispute", dispute_id)
    return found


def list_disputes(query: dict[str, Any]) -> dict[str, Any]:
    """``GET /v1/disputes`` (``charge``, ``payment_intent``, ``created``, cursors)."""
    only(query, {"charge", "payment_intent", "created", "limit", "starting_after", "ending_before", "expand"})
    found = [d for d in ledger.disputes.values() if _matches(d, query)]
    return listed(found, "/v1/disputes", query)


def _matches(obj: dict[str, Any], query: dict[str, Any]) -> bool:
    """Whether a refund or dispute is of the ``charge`` and ``payment_intent`` the query names."""
    return all(not query.get(k) or obj[k] == query[k] for k in ("charge", "payment_intent"))


def update_dispute(dispute_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/disputes/<id>``: metadata and evidence; submitted evidence whose
    ``uncategorized_text`` is ``winning_evidence`` / ``losing_evidence`` wins / loses it."""
    obj = dispute(dispute_id)
    only(params, {"metadata", "evidence", "submit", "expand"})
    _closable(obj)
    previous: dict[str, Any] = {}
    if "metadata" in params:
        previous["metadata"] = obj["metadata"]
        obj["metadata"] = merge_metadata(obj["metadata"], params["metadata"])
    if isinstance(params.get("evidence"), dict):
        previous["evidence"] = obj["evidence"]
        obj["evidence"] = {**obj["evidence"], **params["evidence"]}
        obj["evidence_details"]["has_evidence"] = True
    if flag(params.get("submit", True)) and "evidence" in params:
        obj["evidence_details"]["submission_count"] += 1
        previous["status"] = obj["status"]
        obj["status"] = "under_review" if obj["status"] == "needs_response" else "warning_under_review"
        text = obj["evidence"].get("uncategorized_text")
        if text in ("winning_evidence", "losing_evidence"):
            ledger.emit("charge.dispute.updated", public(obj), previous)
            return _close(obj, "won" if text == "winning_evidence" else "lost")
    ledger.emit("charge.dispute.updated", public(obj), previous)
    return obj


def close_dispute(dispute_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/disputes/<id>/close``: accept the dispute (it is lost; an inquiry just closes)."""
    obj = dispute(dispute_id)
    only(params, {"expand"})
    _closable(obj)
    return _close(obj, "warning_closed" if obj["status"].startswith("warning_") else "lost")


def _closable(obj: dict[str, Any]) -> None:
    if obj["status"] in ("won", "lost", "warning_closed"):
        raise StripeError(400, f"This dispute is already closed ({obj['status']}).", code="dispute_already_closed")


def _close(obj: dict[str, Any], status: str) -> dict[str, Any]:
    previous = {"status": obj["status"]}
    obj["status"] = status
    ledger.emit("charge.dispute.closed", public(obj), previous)
    if status == "won":
        ledger.emit("charge.dispute.funds_reinstated", public(obj))
    return obj

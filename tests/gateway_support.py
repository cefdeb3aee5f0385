"""Signed Commerce Layer JSON:API payloads, as the platform sends them to the gateway."""

from __future__ import annotations

import json
from typing import Any

from flask_psp_connector.gateways.commercelayer.signature import SIGNATURE_HEADER, sign

SHARED_SECRET = "1c0994cc4e996e8c6ee56a2198f66f3c"
CALLBACK_URL = "https://core.commercelayer.test/webhook_callbacks/external_gateways/gw1"
BASE = "/gateways/commercelayer"


def post(client: Any, action: str, document: dict[str, Any], *, signature: str | None = "sign",
         body: bytes | None = None) -> Any:
    """POST ``document`` to the action's route, signed with the shared secret by default."""
    raw = body if body is not None else json.dumps(document).encode()
    headers = {}
    if signature == "sign":
        headers[SIGNATURE_HEADER] = sign(raw, SHARED_SECRET)
    elif signature is not None:
        headers[SIGNATURE_HEADER] = signature
    return client.post(f"{BASE}/{action}", data=raw, content_type="application/json", headers=headers)


def _order(order_id: str, currency: str, total: int, **attributes: Any) -> dict[str, Any]:
    return {"id": order_id, "type": "orders",
            "attributes": {"number": f"N{order_id}", "currency_code": currency, "total_amount_with_taxes_cents": total,
                           "customer_email": "jane@example.test", **attributes},
            "relationships": {"customer": {"data": {"type": "customers", "id": f"cust-{order_id}"}},
                              "market": {"data": {"type": "markets", "id": "mkt1"}},
                              "shipping_address": {"data": {"type": "addresses", "id": "addr-s"}},
                              "billing_address": {"data": {"type": "addresses", "id": "addr-b"}},
                              "line_items": {"data": [{"type": "line_items", "id": "li1"}]}}}


def _included(order_id: str, currency: str, total: int, **order_attributes: Any) -> list[dict[str, Any]]:
    return [
        _order(order_id, currency, total, **order_attributes),
        {"id": "mkt1", "type": "markets", "attributes": {"name": "Europe"}},
        {"id": "li1", "type": "line_items", "attributes": {"sku_code": "TSHIRT", "quantity": 1,
                                                           "total_amount_cents": total}},
        {"id": "addr-s", "type": "addresses", "attributes": {"city": "Berlin", "country_code": "DE"}},
        {"id": "addr-b", "type": "addresses", "attributes": {"city": "Berlin", "country_code": "DE"}},
        {"id": f"cust-{order_id}", "type": "customers", "attributes": {"email": "jane@example.test"}},
    ]


def authorize(payment_id: str, token: str, total: int, currency: str = "EUR", *, order_id: str = "ord1",
              **order_attributes: Any) -> dict[str, Any]:
    """An authorization request: ``external_payments`` with its order included."""
    return {
        "data": {"id": payment_id, "type": "external_payments",
                 "attributes": {"payment_source_token": token, "options": {}},
                 "relationships": {"order": {"data": {"type": "orders", "id": order_id}}},
                 "links": {"self": f"https://shop.commercelayer.test/api/external_payments/{payment_id}"}},
        "included": _included(order_id, currency, total, **order_attributes),
    }


def authorization(auth_id: str, pi: str, amount: int, currency: str = "EUR", *, order_id: str = "ord1",
                  **attributes: Any) -> dict[str, Any]:
    """A capture or void request: the ``authorizations`` transaction."""
    return {
        "data": {"id": auth_id, "type": "authorizations",
                 "attributes": {"number": f"{order_id}/T/001", "currency_code": currency, "amount_cents": amount,
                                "token": pi, "succeeded": True, **attributes},
                 "relationships": {"order": {"data": {"type": "orders", "id": order_id}}}},
        "included": _included(order_id, currency, amount),
    }


def capture(capture_id: str, pi: str, amount: int, currency: str = "EUR", *, order_id: str = "ord1",
            **attributes: Any) -> dict[str, Any]:
    """A refund request: the ``captures`` transaction."""
    return {
        "data": {"id": capture_id, "type": "captures",
                 "attributes": {"number": f"{order_id}/T/002", "currency_code": currency, "amount_cents": amount,
                                "token": pi, "succeeded": True, **attributes},
                 "relationships": {"order": {"data": {"type": "orders", "id": order_id}},
                                   "reference_authorization": {"data": {"type": "authorizations", "id": "auth1"}}}},
        "included": _included(order_id, currency, amount),
    }


def customer_source(source_id: str, pm: str, customer_id: str = "cust-ord1") -> dict[str, Any]:
    """A customer-token request: the payment source and its customer."""
    return {
        "data": {"id": source_id, "type": "customer_payment_sources",
                 "attributes": {"payment_source_token": pm},
                 "relationships": {"customer": {"data": {"type": "customers", "id": customer_id}}}},
        "included": [{"id": customer_id, "type": "customers", "attributes": {"email": "jane@example.test"}}],
    }

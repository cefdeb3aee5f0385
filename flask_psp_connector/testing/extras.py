"""Stripe routes localstripe lacks: ephemeral keys, CustomerSessions (and what the Payment
Element reads through one), customer search, webhook endpoints and events."""

from __future__ import annotations

import re
import time
from typing import Any

from flask_psp_connector.testing.ledger import (
    API_VERSION,
    StripeError,
    ledger,
    listed,
    missing,
    new_id,
    public,
    stamped,
)
from flask_psp_connector.testing.methods import ensure_customer
from flask_psp_connector.testing.params import merge_metadata, only

_SEARCH_CLAUSE = re.compile(r"^metadata\['([^'\\]+)'\]:'([^'\\]*)'$")
#: What a Payment Element shows of a saved card.
_CARD_DISPLAY = ("brand", "last4", "exp_month", "exp_year")


def create_ephemeral_key(params: dict[str, Any], stripe_version: str | None) -> dict[str, Any]:
    """``POST /v1/ephemeral_keys`` (needs the ``Stripe-Version`` header, as Stripe does)."""
    if not stripe_version:
        raise StripeError(400, "Stripe-Version header is required to create an ephemeral key.")
    customer = params.get("customer")
    if not isinstance(customer, str):
        raise StripeError(400, "Missing required param: customer.", code="parameter_missing", param="customer")
    ensure_customer(customer)
    created = int(time.time())
    return {"id": new_id("ephkey"), "object": "ephemeral_key", "associated_objects": [{"id": customer, "type": "customer"}],
            "created": created, "expires": created + 3600, "livemode": False, "secret": f"ek_test_{new_id('x')[2:]}"}


def create_customer_session(params: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/customer_sessions``: kept, so its client secret can be looked up later."""
    customer, components = params.get("customer"), params.get("components")
    if not isinstance(customer, str) or not isinstance(components, dict):
        raise StripeError(400, "Missing required param: customer or components.", code="parameter_missing")
    ensure_customer(customer)
    created = int(time.time())
    session: dict[str, Any] = {
        "object": "customer_session", "client_secret": f"cuss_secret_{new_id('x')[2:]}", "components": components,
        "created": created, "customer": customer, "expires_at": created + 1800, "livemode": False,
    }
    ledger.customer_sessions[session["client_secret"]] = session
    return session


def elements_session(query: dict[str, Any]) -> dict[str, Any]:
    """What a Payment Element learns from a CustomerSession client secret (Stripe.js reads
    it from ``GET /v1/elements/sessions`` with the publishable key): the customer, the
    ``payment_element`` features and, when ``payment_method_redisplay`` is enabled, the
    customer's saved cards that may be shown again (``allow_redisplay`` ``always``)."""
    from localstripe import resources

    session = ledger.customer_sessions.get(str(query.get("customer_session_client_secret", "")))
    if session is None or session["expires_at"] < time.time():
        raise StripeError(400, "The customer_session_client_secret is invalid or has expired.",
                          param="customer_session_client_secret")
    element = session["components"].get("payment_element") or {}
    features = (element.get("features") or {}) if str(element.get("enabled")).lower() == "true" else {}
    methods = []
    if features.get("payment_method_redisplay") == "enabled":
        methods = [
            {"id": m.id, "type": "card", "card": {k: (m.card or {}).get(k) for k in _CARD_DISPLAY}}
            for key, m in resources.store.items()
            if key.startswith("payment_method:") and m.customer == session["customer"] and m.type == "card"
            and getattr(m, "allow_redisplay", "unspecified") == "always"
        ]
    return {"object": "elements_session", "customer": session["customer"], "features": features, "payment_methods": methods}


def search_customers(query: dict[str, Any]) -> dict[str, Any]:
    """``GET /v1/customers/search`` for ``metadata['key']:'value'`` clauses joined by ``AND``."""
    from localstripe import resources

    wanted = []
    for clause in str(query.get("query", "")).split(" AND "):
        match = _SEARCH_CLAUSE.match(clause.strip())
        if match is None:
            raise StripeError(400, "This double searches customers by metadata['key']:'value' only.", param="query")
        wanted.append(match.groups())
    limit = int(query.get("limit", "10"))
    found = [
        customer._export() for key, customer in resources.store.items()
        if key.startswith("customer:") and not getattr(customer, "deleted", False)
        and all((customer.metadata or {}).get(k) == v for k, v in wanted)
    ]
    return {"object": "search_result", "url": "/v1/customers/search", "has_more": len(found) > limit,
            "next_page": None, "data": found[:limit]}


# -- webhook endpoints ---------------------------------------------------------------------


def _endpoint(endpoint_id: str) -> dict[str, Any]:
    found = ledger.endpoints.get(endpoint_id)
    if found is None:
        raise missing("webhook_endpoint", endpoint_id)
    return found


def _events_param(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise StripeError(400, "Invalid array", code="parameter_invalid_empty", param="enabled_events")
    return list(value)


def _url_param(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"^https?://[^\s/]+", value):
        raise StripeError(400, "Invalid URL: URL must be publicly accessible.", code="url_invalid", param="url")
    return value


def create_endpoint(params: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/webhook_endpoints``; the answer (and only it) carries the signing ``secret``."""
    only(params, {"url", "enabled_events", "api_version", "description", "metadata", "connect", "expand"})
    if "url" not in params:
        raise StripeError(400, "Missing required param: url.", code="parameter_missing", param="url")
    if "enabled_events" not in params:
        raise StripeError(400, "Missing required param: enabled_events.", code="parameter_missing", param="enabled_events")
    secret = f"whsec_{new_id('x')[2:]}"
    endpoint = stamped({
        "id": new_id("we"), "object": "webhook_endpoint", "api_version": params.get("api_version") or API_VERSION,
        "application": None, "description": params.get("description") or None,
        "enabled_events": _events_param(params["enabled_events"]), "livemode": False,
        "metadata": merge_metadata({}, params.get("metadata") or {}), "status": "enabled", "url": _url_param(params["url"]),
        "_secret": secret,
    })
    ledger.endpoints[endpoint["id"]] = endpoint
    return {**public(endpoint), "secret": secret}


def retrieve_endpoint(endpoint_id: str) -> dict[str, Any]:
    """``GET /v1/webhook_endpoints/<id>`` (without its secret, as Stripe answers)."""
    return public(_endpoint(endpoint_id))


def update_endpoint(endpoint_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/webhook_endpoints/<id>``: url, enabled_events, disabled, description, metadata."""
    endpoint = _endpoint(endpoint_id)
    only(params, {"url", "enabled_events", "disabled", "description", "metadata", "expand"})
    if "url" in params:
        endpoint["url"] = _url_param(params["url"])
    if "enabled_events" in params:
        endpoint["enabled_events"] = _events_param(params["enabled_events"])
    if "disabled" in params:
        endpoint["status"] = "disabled" if str(params["disabled"]).lower() == "true" else "enabled"
    if "description" in params:
        endpoint["description"] = params["description"] or None
    if "metadata" in params:
        endpoint["metadata"] = merge_metadata(endpoint["metadata"], params["metadata"])
    return public(endpoint)


def delete_endpoint(endpoint_id: str) -> dict[str, Any]:
    """``DELETE /v1/webhook_endpoints/<id>``."""
    _endpoint(endpoint_id)
    del ledger.endpoints[endpoint_id]
    return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}


def list_endpoints(query: dict[str, Any]) -> dict[str, Any]:
    """``GET /v1/webhook_endpoints``."""
    only(query, {"limit", "starting_after", "ending_before"})
    return listed(list(ledger.endpoints.values()), "/v1/webhook_endpoints", query)


# -- events ----------------------------------------------------------------------------------


def retrieve_event(event_id: str) -> dict[str, Any]:
    """``GET /v1/events/<id>``."""
    found = ledger.events.get(event_id)
    if found is None:
        raise missing("event", event_id)
    return public(found)


def list_events(query: dict[str, Any]) -> dict[str, Any]:
    """``GET /v1/events`` (``type`` with ``*`` wildcards, ``types``, ``created``, cursors)."""
    only(query, {"type", "types", "created", "limit", "starting_after", "ending_before", "delivery_success"})
    events = list(ledger.events.values())
    if query.get("type"):
        pattern = re.compile("^" + re.escape(str(query["type"])).replace(r"\*", ".*") + "$")
        events = [e for e in events if pattern.match(e["type"])]
    if query.get("types"):
        events = [e for e in events if e["type"] in query["types"]]
    return listed(events, "/v1/events", query)

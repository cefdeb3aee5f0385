"""Payment flows and per-cart behaviour rules, resolved as upstream does (no Flask here).

``STRIPE_PAYMENT_BEHAVIOR_RULES`` maps a discriminator — the cart's country, else its
billing country, else its shipping country, else its store key (the first of these that
has a rule) — to overrides of ``flowType``, ``captureMethod``, ``setupFutureUsage`` and
``collectBillingAddress``. ``STRIPE_BEHAVIOR_PAYMENT_ELEMENT`` holds Payment Element
options; only the keys upstream's enabler passes on are kept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask_psp_connector.domain.model import Cart

FLOW_TYPES = ("deferred", "pi_first")
CAPTURE_METHODS = ("automatic", "automatic_async", "manual")
BILLING_ADDRESS_CHOICES = ("auto", "never", "if_required")
#: Values of ``setupFutureUsage`` in a rule; the last four omit setup_future_usage.
SETUP_FUTURE_USAGES = ("off_session", "on_session", "", "none", "null", "undefined")
_RULE_FIELDS = {
    "flowType": FLOW_TYPES,
    "captureMethod": CAPTURE_METHODS,
    "setupFutureUsage": SETUP_FUTURE_USAGES,
    "collectBillingAddress": BILLING_ADDRESS_CHOICES,
}


def parse_behavior_rules(value: Any) -> dict[str, dict[str, str]]:
    """Validate ``STRIPE_PAYMENT_BEHAVIOR_RULES``: a JSON object of rule objects.

    :raises ValueError: on malformed JSON, a rule that is not an object, an unknown field
        or a value outside the field's choices (the app then refuses to start).
    """
    if isinstance(value, Mapping):
        rules = dict(value)
    else:
        text = str(value or "").strip()
        if not text:
            return {}
        try:
            rules = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"malformed JSON ({exc})") from None
    if not isinstance(rules, dict):
        raise ValueError("must be a JSON object of rules")
    parsed: dict[str, dict[str, str]] = {}
    for key, rule in rules.items():
        if not isinstance(rule, dict):
            raise ValueError(f"rule {key!r} must be an object")
        for field, given in rule.items():
            if field not in _RULE_FIELDS:
                raise ValueError(f"rule {key!r}: unknown field {field!r} (use {', '.join(_RULE_FIELDS)})")
            choices = _RULE_FIELDS[field]
            text = given.strip().lower() if field == "setupFutureUsage" and isinstance(given, str) else given
            if text not in choices:
                raise ValueError(f"rule {key!r}: {field} {given!r} is not one of {', '.join(c for c in choices if c)}")
        parsed[str(key)] = {field: (v.strip().lower() if field == "setupFutureUsage" else v) for field, v in rule.items()}
    return parsed


@dataclass(frozen=True, slots=True)
class Behavior:
    """How one cart is paid: the effective flow, capture method, future usage and billing address collection."""

    flow_type: str
    capture_method: str
    setup_future_usage: str | None
    collect_billing_address: str

    @property
    def pi_first(self) -> bool:
        """The PaymentIntent is created before the Payment Element is mounted."""
        return self.flow_type == "pi_first"


def matching_rule(rules: Mapping[str, Mapping[str, str]], cart: Cart) -> Mapping[str, str]:
    """The rule of the cart's country, billing country, shipping country or store key (first found)."""
    candidates = (
        cart.country,
        cart.billing_address.country if cart.billing_address else None,
        cart.shipping_address.country if cart.shipping_address else None,
        cart.store_key,
    )
    return next((rules[key] for key in candidates if key and key in rules), {})


def resolve_behavior(defaults: Behavior, rules: Mapping[str, Mapping[str, str]], cart: Cart) -> Behavior:
    """The behaviour for ``cart``: its rule's fields over the global ``defaults``.

    A rule's ``setupFutureUsage`` of ``none`` (or empty) omits setup_future_usage; the
    ``pi_first`` flow always omits it, as upstream does (the PaymentIntent exists before
    the shopper could choose to save the method).
    """
    rule = matching_rule(rules, cart)
    flow = rule.get("flowType") or defaults.flow_type
    if "setupFutureUsage" in rule:
        usage = rule["setupFutureUsage"] if rule["setupFutureUsage"] in ("off_session", "on_session") else None
    else:
        usage = defaults.setup_future_usage
    return Behavior(
        flow_type=flow,
        capture_method=rule.get("captureMethod") or defaults.capture_method,
        setup_future_usage=None if flow == "pi_first" else usage,
        collect_billing_address=rule.get("collectBillingAddress") or defaults.collect_billing_address,
    )


def _layout(value: Any) -> bool:
    if isinstance(value, str):
        return value in ("tabs", "accordion", "auto")
    if not isinstance(value, dict) or value.get("type") not in ("tabs", "accordion", "auto"):
        return False
    checks = {"defaultCollapsed": bool, "radios": bool, "spacedAccordionItems": bool, "visibleAccordionItemsCount": int}
    return all(key == "type" or (key in checks and isinstance(v, checks[key])) for key, v in value.items())


#: Payment Element options upstream's enabler takes from STRIPE_BEHAVIOR_PAYMENT_ELEMENT, each with its check.
_ELEMENT_OPTIONS = {
    "terms": lambda v: isinstance(v, dict),
    "wallets": lambda v: isinstance(v, dict),
    "defaultValues": lambda v: isinstance(v, dict),
    "fields": lambda v: isinstance(v, dict),
    "business": lambda v: isinstance(v, dict) and set(v) <= {"name"} and isinstance(v.get("name", ""), str),
    "paymentMethodOrder": lambda v: isinstance(v, list) and all(isinstance(item, str) for item in v),
    "readOnly": lambda v: isinstance(v, bool),
    "layout": _layout,
}


def parse_element_options(value: Any) -> str:
    """``STRIPE_BEHAVIOR_PAYMENT_ELEMENT`` as the JSON the browser gets: unknown keys and
    invalid values are dropped one by one (``paymentMethodTypes`` is not supported).

    :raises ValueError: when the value is not a JSON object at all.
    """
    if isinstance(value, Mapping):
        options = dict(value)
    else:
        text = str(value or "").strip()
        if not text:
            return "{}"
        try:
            options = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"malformed JSON ({exc})") from None
    if not isinstance(options, dict):
        raise ValueError("must be a JSON object")
    return json.dumps({key: v for key, v in options.items() if key in _ELEMENT_OPTIONS and _ELEMENT_OPTIONS[key](v)})


def tax_calculation(cart: Cart) -> str | None:
    """The Stripe Tax calculation to hook into the PaymentIntent: only when the cart has exactly one."""
    references = cart.tax_calculation_references
    return references[0] if len(references) == 1 else None

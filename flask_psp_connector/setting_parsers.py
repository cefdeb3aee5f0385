"""How each configuration value is read: parsers that validate a raw value and return it
typed, raising ``ValueError`` (or ``TypeError``) with what is wrong."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

Parser = Callable[[Any], Any]


def plain_text(value: Any) -> str:
    return str(value).strip()


def optional_text(value: Any) -> str | None:
    return plain_text(value) or None


def choice(*allowed: str) -> Parser:
    def parse(value: Any) -> str:
        text = plain_text(value)
        if text not in allowed:
            raise ValueError(f"{text!r} is not one of {', '.join(allowed)}")
        return text

    return parse


def json_object(value: Any) -> str | None:
    """Validate a JSON object and keep its text unchanged (it is passed through)."""
    if isinstance(value, Mapping):
        return json.dumps(value)
    text = plain_text(value)
    if not text:
        return None
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"malformed JSON ({exc})") from None
    if not isinstance(parsed, dict):
        raise ValueError("must be a JSON object")
    return text


def layout(value: Any) -> str:
    text = json_object(value) or LAYOUT_DEFAULT
    layout_type = json.loads(text).get("type")
    if layout_type not in ("tabs", "accordion", "auto"):
        raise ValueError(f"layout type {layout_type!r} is not one of tabs, accordion, auto")
    return text


def metrics_path(value: Any) -> str:
    text = plain_text(value)
    if text and not text.startswith("/"):
        raise ValueError("must be a path starting with /")
    return text


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = plain_text(value).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not a boolean")


def positive_int(value: Any) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError("must be a positive integer")
    return number


def non_negative_int(value: Any) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("must not be negative")
    return number


def csv(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, (list, tuple)) else plain_text(value).split(",")
    return tuple(item.strip() for item in items if item and item.strip())


def absolute_url(value: Any) -> str | None:
    text = plain_text(value)
    if not text:
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{text!r} is not an absolute http(s) URL")
    return text.rstrip("/") if parts.path in ("", "/") else text


def api_base(value: Any) -> str | None:
    """An API base URL, given with or without Stripe's ``/v1`` (the client adds it)."""
    text = absolute_url(value)
    if text is None:
        return None
    text = text.rstrip("/")
    return text[: -len("/v1")] if text.endswith("/v1") else text


def setup_future_usage(value: Any) -> str | None:
    text = plain_text(value).lower()
    if text in ("", "none", "null", "undefined"):
        return None
    if text not in ("off_session", "on_session"):
        raise ValueError(f"{text!r} is not one of off_session, on_session, none")
    return text


#: The Express Checkout Element options upstream's enabler accepts; others are dropped.
EXPRESS_ELEMENT_OPTION_KEYS = (
    "buttonHeight", "buttonTheme", "buttonType", "emailRequired", "layout", "paymentMethodOrder", "phoneNumberRequired",
)


def express_options(value: Any) -> str | None:
    """A JSON object keeping only the options the Express Checkout Element takes from us."""
    text = json_object(value)
    if text is None:
        return None
    options = json.loads(text)
    return json.dumps({key: options[key] for key in EXPRESS_ELEMENT_OPTION_KEYS if key in options})


def saved_methods_config(value: Any) -> str | None:
    """CustomerSession features (JSON object); ``payment_method_save_usage`` must be a usage."""
    text = json_object(value)
    if text is not None:
        usage = json.loads(text).get("payment_method_save_usage")
        if usage is not None and usage not in ("off_session", "on_session"):
            raise ValueError(f"payment_method_save_usage {usage!r} is not one of off_session, on_session")
    return text


def url_prefix(value: Any) -> str:
    text = plain_text(value).rstrip("/")
    if text and not text.startswith("/"):
        raise ValueError("must start with '/'")
    return text


LAYOUT_DEFAULT = '{"type":"tabs","defaultCollapsed":false}'

"""Rate limits on the shop's sign-in, sign-up and back-office login (Flask-Limiter).

Wrong passwords count per client address: after ``SHOP_SIGN_IN_RATE_LIMIT`` (or
``SHOP_ADMIN_LOGIN_RATE_LIMIT``) failures, that address gets 429 until the window
passes, even with the right password. Wrong passwords for one account also count
together, from whatever address (``SHOP_SIGN_IN_ACCOUNT_RATE_LIMIT``), so guesses
spread over many addresses stop too. Every sign-up counts towards
``SHOP_SIGN_UP_RATE_LIMIT``. Counters live in ``RATELIMIT_STORAGE_URI``: ``memory://``
(per worker process) by default; with several workers or dynos use a shared store such
as ``redis://...``, so the limit holds whichever process answers.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, Response, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from demo_shop.accounts import normalize_email

#: Shop keys of the limits and their defaults (Flask-Limiter's notation).
DEFAULT_LIMITS = {
    "SHOP_SIGN_IN_RATE_LIMIT": "10 per minute;100 per day",
    "SHOP_SIGN_UP_RATE_LIMIT": "10 per hour",
    "SHOP_ADMIN_LOGIN_RATE_LIMIT": "5 per minute;50 per day",
    "SHOP_SIGN_IN_ACCOUNT_RATE_LIMIT": "20 per hour",
}

#: Endpoint → (limit key, whether only failed attempts count).
_LIMITED = {
    "accounts.sign_in": ("SHOP_SIGN_IN_RATE_LIMIT", True),
    "accounts.sign_up": ("SHOP_SIGN_UP_RATE_LIMIT", False),
    "admin.login": ("SHOP_ADMIN_LOGIN_RATE_LIMIT", True),
}


def _failed(response: Response) -> bool:
    # A successful sign-in redirects (303); a refusal re-renders the form with 4xx.
    return response.status_code >= 400


def init_throttle(app: Flask) -> Limiter:
    """Give ``app`` its own limiter and apply the limits to the routes registered so far."""
    for key, default in DEFAULT_LIMITS.items():
        app.config.setdefault(key, default)
    app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    # A moving window: a fixed one would allow twice the limit across a window's edge.
    app.config.setdefault("RATELIMIT_STRATEGY", "moving-window")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    limiter = Limiter(get_remote_address, app=app, key_prefix="shop")
    for endpoint, (key, failures_only) in _LIMITED.items():
        view = app.view_functions[endpoint]
        app.view_functions[endpoint] = limiter.limit(
            _configured(app, key), methods=["POST"], deduct_when=_failed if failures_only else None,
        )(view)
    app.view_functions["accounts.sign_in"] = limiter.limit(
        _configured(app, "SHOP_SIGN_IN_ACCOUNT_RATE_LIMIT"), key_func=_submitted_account, methods=["POST"],
        deduct_when=_failed,
    )(app.view_functions["accounts.sign_in"])
    return limiter


def _submitted_account() -> str:
    # The email as the accounts table keys it, so "Jane@" and "jane@" share a counter.
    return "account:" + normalize_email(str(request.form.get("email", "")))[:254]


def _configured(app: Flask, key: str) -> Callable[[], str]:
    return lambda: str(app.config[key])

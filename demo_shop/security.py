"""Response hardening (Content-Security-Policy and friends), hostile input, and the HTML error pages.

The policy follows Stripe's documented directives for Stripe.js and the Payment
Element; in sandbox mode the Stripe stand-in is served by the shop itself, so
``'self'`` covers it and no Stripe host is allowed.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, current_app, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import BadRequest, HTTPException, MethodNotAllowed

from flask_psp_connector import PSPConnector
from flask_psp_connector.http.guards import reject_hostile_input

_STRIPE_SOURCES = {
    "script-src": "https://js.stripe.com https://*.js.stripe.com https://maps.googleapis.com",
    "frame-src": "https://js.stripe.com https://*.js.stripe.com https://hooks.stripe.com",
    "connect-src": "https://api.stripe.com https://maps.googleapis.com",
    "img-src": "https://*.stripe.com",
}


def content_security_policy(*, sandbox: bool) -> str:
    """The shop's policy; Stripe's hosts are allowed only outside sandbox mode."""
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        "frame-src": "'self'",
        "connect-src": "'self'",
        "img-src": "'self' data:",
        "style-src": "'self'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
        "object-src": "'none'",
    }
    if not sandbox:
        for name, sources in _STRIPE_SOURCES.items():
            directives[name] += " " + sources
    return "; ".join(f"{name} {sources}" for name, sources in directives.items())


#: Pages that carry a checkout session id, a client secret or an account's data: no
#: cache (the browser's back button or a shared proxy) may keep them.
_PRIVATE_ENDPOINTS = {"shop.pay", "shop.payment_return"}
_PRIVATE_BLUEPRINTS = {"accounts", "admin"}
#: One year, as HSTS preload lists ask.
HSTS = "max-age=31536000; includeSubDomains"


def init_security(app: Flask, *, sandbox: bool) -> None:
    """Add the security headers to every response, refuse hostile input on the shop's
    own routes, and give unrouted errors HTML pages."""
    policy = content_security_policy(sandbox=sandbox)
    connector = {blueprint.name for blueprint in PSPConnector.api_blueprints(app)}

    @app.before_request
    def _refuse_hostile_input() -> None:
        # The connector's routes guard themselves, in their own error shapes.
        if request.blueprint in connector:
            return
        reject_hostile_input(request)
        if request.method == "POST" and any("\x00" in key or "\x00" in value
                                            for key, value in request.form.items(multi=True)):
            raise BadRequest("A form field contains a NUL character.")

    @app.after_request
    def _harden(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
        if request.is_secure:
            response.headers["Strict-Transport-Security"] = HSTS
        if request.endpoint in _PRIVATE_ENDPOINTS or request.blueprint in _PRIVATE_BLUEPRINTS:
            response.headers["Cache-Control"] = "no-store"
        return response

    app.register_error_handler(CSRFError, render_error_page)
    app.register_error_handler(404, _unrouted_error)
    app.register_error_handler(405, _unrouted_error)


#: The blueprints whose routes answer errors with HTML pages (they call :func:`html_errors`).
_HTML_BLUEPRINTS = frozenset({"shop", "admin", "accounts"})


def html_errors(blueprint: Blueprint) -> None:
    """Answer every error of ``blueprint``'s routes with an HTML page."""
    blueprint.register_error_handler(HTTPException, render_error_page)
    blueprint.register_error_handler(CSRFError, render_error_page)


_TITLES = {
    400: "That request did not look right",
    403: "You cannot open this page",
    404: "Page not found",
    405: "That is not how this page works",
    409: "Something changed in the meantime",
    413: "That request is too large",
    429: "Too many attempts",
    500: "Something went wrong on our side",
    503: "Temporarily unavailable",
}
_MESSAGES = {
    400: "Please go back, reload the page and try again.",
    404: "The page you are looking for does not exist, or it is not yours to see.",
    405: "Please use the links and buttons of the shop to get here.",
    429: "Please wait a few minutes before trying again.",
    500: "Sorry about that. Nothing was charged twice; please try again in a moment.",
}


def render_error_page(error: HTTPException) -> tuple[str, int]:
    """The shop's HTML page for an HTTP error (a CSRF failure is a 400 with a clear reason)."""
    code = error.code or 500
    if isinstance(error, CSRFError):
        message = "Your session has expired or the form was not sent from this shop. Reload the page and try again."
    elif code == 500:  # an unexpected exception: its details stay in the log
        message = _MESSAGES[500]
    else:
        message = _MESSAGES.get(code) or error.description or ""
    title = _TITLES.get(code) or (error.name if code < 500 else _TITLES[500])
    return render_template("error.html", code=code, title=title, message=message), code


def _unrouted_error(error: HTTPException) -> Any:
    """404 and 405: HTML on the shop's paths and for browsers, the connector's JSON otherwise.

    Flask prefers an app-level handler for the status code over a blueprint's handler
    for the exception class, so the shop's own routes are recognised here too.
    """
    if request.blueprint in _HTML_BLUEPRINTS or _is_shop_path(error) or _prefers_html():
        return render_error_page(error)
    fallback = current_app.error_handler_spec[None][None].get(HTTPException)
    return fallback(error) if fallback is not None else error


def _is_shop_path(error: HTTPException) -> bool:
    if not isinstance(error, MethodNotAllowed):
        return False
    adapter = current_app.url_map.bind_to_environ(request.environ)
    for method in error.valid_methods or ():
        try:
            endpoint, _ = adapter.match(method=method)
        except HTTPException:
            continue
        return str(endpoint).split(".", 1)[0] in _HTML_BLUEPRINTS
    return False


def _prefers_html() -> bool:
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"


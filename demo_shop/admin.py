"""The merchant back office at ``/admin``: payments, orders and payment operations.

It is behind the ``SHOP_ADMIN_PASSWORD`` password and disabled while that is unset. A
login is recorded server-side (see :mod:`logins`), so logging out ends it for every copy
of the session cookie; wrong passwords are rate-limited (see :mod:`throttle`).
Captures, cancellations and refunds run through the connector's own use case, the one
behind its operations API.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from demo_shop.connector import psp
from demo_shop.forms import ActionForm, AmountForm, LoginForm
from demo_shop.logins import end_login, login_is_active, start_login
from demo_shop.money import format_money, parse_amount
from demo_shop.next_url import safe_next_url
from demo_shop.progress import payment_label, released_remainder, stale_notice
from demo_shop.security import html_errors
from flask_psp_connector.domain.payment import Payment
from flask_psp_connector.errors import PSPError, ResourceNotFound
from flask_psp_connector.processor.operations import PaymentAction, capturable, modify_payment, refundable
from flask_psp_connector.state import connector_state

#: Where the back office lives.
_PREFIX = "/admin"


def admin_blueprint() -> Blueprint:
    """The back office under ``/admin``, as the ``admin`` blueprint."""
    bp = Blueprint("admin", __name__, url_prefix=_PREFIX)
    html_errors(bp)
    bp.before_request(_require_login)
    bp.add_url_rule("/login", view_func=login, methods=["GET", "POST"])
    bp.add_url_rule("/logout", view_func=logout, methods=["POST"])
    bp.add_url_rule("/", view_func=index, methods=["GET"])
    bp.add_url_rule("/payments/<payment_id>", view_func=payment, methods=["GET"])
    bp.add_url_rule("/payments/<payment_id>/<operation>", view_func=operate, methods=["POST"])
    bp.add_url_rule("/events", view_func=events, methods=["GET"])
    bp.add_url_rule("/events/<event_id>/replay", view_func=replay, methods=["POST"])
    return bp


_OPERATIONS = {"capture": "capturePayment", "cancel": "cancelPayment", "refund": "refundPayment"}
_OUTCOMES = {
    "approved": ("success", "{verb} approved by Stripe."),
    "received": ("success", "{verb} received by Stripe; it completes shortly."),
    "rejected": ("error", "{verb} rejected by Stripe."),
}


def _password() -> str:
    return current_app.config.get("SHOP_ADMIN_PASSWORD") or ""


def _fingerprint() -> str:
    """What a logged-in session holds: it stops working when the password changes."""
    key = str(current_app.secret_key).encode()
    return hmac.new(key, b"admin:" + _password().encode(), hashlib.sha256).hexdigest()


def _logged_in() -> bool:
    token = session.get("admin")
    return (isinstance(token, str) and hmac.compare_digest(token, _fingerprint())
            and login_is_active("admin", "admin", session.get("admin_login")))


def _require_login() -> Any:
    if not _password():
        return render_template("admin/disabled.html"), 503
    if request.endpoint != "admin.login" and not _logged_in():
        wanted = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("admin.login", next=safe_next_url(wanted) if wanted != "/admin/" else None), 303)
    return None


def login() -> Any:
    """Ask for the back office password."""
    form = LoginForm()
    if form.validate_on_submit():
        if hmac.compare_digest(form.password.data.encode(), _password().encode()):
            end_login(session.pop("admin_login", None))
            session["admin"] = _fingerprint()
            session["admin_login"] = start_login("admin", "admin")
            return redirect(_next_page() or url_for("admin.index"), 303)
        form.password.errors = ["That password is not right."]
        return render_template("admin/login.html", form=form, next=_next_page()), 401
    return render_template("admin/login.html", form=form, next=_next_page()), 400 if form.errors else 200


def logout() -> Response:
    """Leave the back office."""
    if ActionForm(prefix="logout").validate_on_submit():
        end_login(session.pop("admin_login", None))
        session.pop("admin", None)
        flash("You are logged out.", "success")
    return redirect(url_for("admin.login"), 303)


def _next_page() -> str | None:
    """The back-office page asked for before logging in (a back-office path only)."""
    target = safe_next_url(request.args.get("next"))
    return target if target is not None and target.startswith(f"{_PREFIX}/") else None


def index() -> str:
    """Recent payments and orders."""
    list_orders = getattr(psp.platform, "list_orders", None)
    return render_template(
        "admin/index.html",
        payments=psp.platform.list_payments(limit=50),
        orders=list_orders(limit=50) if list_orders else [],
        label=payment_label,
        logout_form=ActionForm(prefix="logout"),
    )


def payment(payment_id: str) -> str:
    """One payment: its transactions on a timeline and the operations it allows."""
    found = _payment_or_404(payment_id)
    settings = connector_state().settings
    can_capture = capturable(found, multicapture=settings["STRIPE_ENABLE_MULTI_OPERATIONS"])
    can_refund = refundable(found)
    currency = found.amount_planned.currency_code
    return render_template(
        "admin/payment.html",
        payment=found,
        label=payment_label(found),
        notice=stale_notice(found) if found.stale_reason else None,
        released=released_remainder(found, multicapture=settings["STRIPE_ENABLE_MULTI_OPERATIONS"]),
        order=psp.platform.find_order_by_cart(found.cart_id),
        transactions=sorted(found.transactions, key=lambda t: t.timestamp),
        capturable=can_capture,
        refundable=can_refund,
        currency=currency,
        capture_form=AmountForm(prefix="capture", data={"amount": _plain(can_capture, found)}),
        refund_form=AmountForm(prefix="refund", data={"amount": _plain(can_refund, found)}),
        cancel_form=ActionForm(prefix="cancel"),
        logout_form=ActionForm(prefix="logout"),
    )


def operate(payment_id: str, operation: str) -> Response:
    """Capture (full or partial), cancel or refund (partial) a payment."""
    action = _OPERATIONS.get(operation)
    if action is None:
        abort(404)
    found = _payment_or_404(payment_id)
    back = redirect(url_for("admin.payment", payment_id=found.id), 303)
    currency = found.amount_planned.currency_code
    state = connector_state()
    if state.stripe is None:
        flash("Stripe is not configured: set STRIPE_SECRET_KEY.", "error")
        return back
    cent_amount = None
    if operation == "cancel":
        if not ActionForm(prefix="cancel").validate_on_submit():
            abort(400)
    else:
        form = AmountForm(prefix=operation)
        if not form.validate_on_submit():
            flash(form.amount.errors[0] if form.amount.errors else "Please try again.", "error")
            return back
        try:
            if operation == "capture" and not (form.amount.data or "").strip():
                cent_amount = capturable(found, multicapture=state.settings["STRIPE_ENABLE_MULTI_OPERATIONS"])
            else:
                cent_amount = parse_amount(form.amount.data, currency)
        except ValueError as exc:
            flash(str(exc), "error")
            return back
    verb = operation.capitalize() + (f" of {format_money(cent_amount, currency)}" if cent_amount else "")
    try:
        outcome = modify_payment(
            state.platform, state.stripe, state.options, found.id,
            PaymentAction(action, cent_amount, currency if cent_amount is not None else None),
        )
    except PSPError as exc:
        flash(f"{operation.capitalize()} refused: {exc.message}", "error")
        return back
    category, message = _OUTCOMES.get(outcome, ("error", "{verb}: " + outcome))
    flash(message.format(verb=verb), category)
    return back


def events() -> str:
    """Webhook deliveries: failures first (with their error and attempts), then the newest
    received, and a health panel."""
    state = connector_state()
    failures = state.platform.event_failures(limit=50)
    now = datetime.now(UTC)
    recent = state.platform.recent_events(50)
    backlog = state.commercelayer.store.backlog() if state.commercelayer is not None else None
    return render_template(
        "admin/events.html",
        failures=failures,
        events=recent,
        last_received=recent[0].received_at if recent else None,
        failing_last_hour=sum(1 for f in failures if not f.resolved and f.last_seen and now - f.last_seen < timedelta(hours=1)),
        backlog=backlog,
        replay_form=ActionForm(prefix="replay"),
        logout_form=ActionForm(prefix="logout"),
    )


def replay(event_id: str) -> Response:
    """Process an event again, as ``flask psp events replay`` does (idempotently)."""
    if not ActionForm(prefix="replay").validate_on_submit():
        abort(400)
    state = connector_state()
    try:
        receipt = state.event_processor().replay(event_id)
    except PSPError as exc:
        flash(f"Replay of {event_id} failed: {exc.message}", "error")
    else:
        detail = f" ({receipt.detail})" if receipt.detail else ""
        flash(f"Replayed {event_id}: {receipt.status.value}{detail}.", "success")
    return redirect(url_for("admin.events"), 303)


def _payment_or_404(payment_id: str) -> Payment:
    try:
        return psp.platform.get_payment(payment_id)
    except ResourceNotFound:
        abort(404)


def _plain(cents: int, payment: Payment) -> str:
    """An amount as the amount fields expect it (``12.50``), blank when nothing is left."""
    if cents <= 0:
        return ""
    digits = payment.amount_planned.fraction_digits
    units, minor = divmod(cents, 10**digits)
    return f"{units}.{minor:0{digits}d}" if digits else str(units)

"""The account pages: sign up, sign in, sign out, the account page and its saved cards.

Signing in starts a new session and moves the cart to a new one of the customer's (see
:func:`demo_shop.cart.copy_for_customer`). Sign-in and sign-up are rate-limited (see
:mod:`demo_shop.throttle`).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from demo_shop.accounts import Account, EmailTaken, authenticate, create_account, current_account, session_fingerprint
from demo_shop.cart import copy_for_customer, current_cart
from demo_shop.connector import psp
from demo_shop.forms import ActionForm, SignInForm, SignUpForm
from demo_shop.logins import end_login, start_login
from demo_shop.next_url import safe_next_url
from demo_shop.progress import PAYMENT_STATES
from demo_shop.security import html_errors
from flask_psp_connector.domain.model import Customer
from flask_psp_connector.errors import ResourceNotFound
from flask_psp_connector.processor.customers import remove_saved_payment_method


def accounts_blueprint() -> Blueprint:
    """The account pages, as the ``accounts`` blueprint."""
    bp = Blueprint("accounts", __name__)
    html_errors(bp)
    bp.add_url_rule("/account/sign-up", view_func=sign_up, methods=["GET", "POST"])
    bp.add_url_rule("/account/sign-in", view_func=sign_in, methods=["GET", "POST"])
    bp.add_url_rule("/account/sign-out", view_func=sign_out, methods=["POST"])
    bp.add_url_rule("/account", view_func=account, methods=["GET"])
    bp.add_url_rule("/account/payment-methods/<saved_id>/remove", view_func=remove_method, methods=["POST"])
    return bp


def _sign_in(account: Account) -> None:
    """Start a fresh session for ``account``, keeping the cart's contents and this
    browser's order pages; everything else the old session held is dropped."""
    cart = current_cart()
    orders = session.get("orders", [])
    end_login(session.get("login"))
    session.clear()
    g.account = account
    if isinstance(orders, list):
        session["orders"] = orders
    session["customer_id"] = account.customer_id
    session["account"] = session_fingerprint(account)
    session["login"] = start_login("customer", account.customer_id)
    if cart is not None and cart.line_items:
        session["cart_id"] = copy_for_customer(cart, account.customer_id, account.email).id


def _next_url() -> str | None:
    """Where to go after signing in: a path on this site only."""
    return safe_next_url(request.args.get("next"))


#: The sign-up answer for an email that already has an account: it must not say so,
#: or the form would tell anyone which addresses are customers of the shop.
SIGN_UP_REFUSED = "We could not create an account with these details. If you already have one, sign in instead."


def sign_up() -> Any:
    """Create an account and sign in."""
    if current_account() is not None:
        return redirect(url_for("accounts.account"), 303)
    form = SignUpForm()
    if not form.validate_on_submit():
        return render_template("account/sign_up.html", form=form, next=_next_url()), 400 if form.errors else 200
    try:
        account = create_account(form.email.data, form.password.data, form.name.data or "")
    except EmailTaken:
        form.email.errors = [SIGN_UP_REFUSED]
        return render_template("account/sign_up.html", form=form, next=_next_url()), 400
    _sign_in(account)
    flash("Welcome! Your account is ready.", "success")
    return redirect(_next_url() or url_for("accounts.account"), 303)


def sign_in() -> Any:
    """Sign in with email and password."""
    form = SignInForm()
    if not form.validate_on_submit():
        return render_template("account/sign_in.html", form=form, next=_next_url()), 400 if form.errors else 200
    account = authenticate(form.email.data, form.password.data)
    if account is None:
        form.password.errors = ["The email or password is not right."]
        return render_template("account/sign_in.html", form=form, next=_next_url()), 401
    _sign_in(account)
    flash("You are signed in.", "success")
    return redirect(_next_url() or url_for("accounts.account"), 303)


def sign_out() -> Response:
    """Sign out; the cart stays with the account, not with this browser."""
    if ActionForm(prefix="sign-out").validate_on_submit():
        end_login(session.get("login"))
        session.clear()
        g.pop("account", None)
        flash("You are signed out.", "success")
        return redirect(url_for("shop.index"), 303)
    flash("Please try again.", "error")
    return redirect(url_for("accounts.account"), 303)


def _require_account() -> Account | Response:
    account = current_account()
    if account is None:
        return redirect(url_for("accounts.sign_in", next=request.path), 303)
    return account


def account() -> Any:
    """The customer's orders and saved payment methods."""
    account = _require_account()
    if isinstance(account, Response):
        return account
    customer: Customer | None = psp.platform.get_customer(account.customer_id)
    return render_template(
        "account/account.html",
        account=account,
        customer=customer,
        orders=psp.platform.list_orders(customer_id=account.customer_id),
        methods=psp.platform.saved_payment_methods(account.customer_id),
        states=PAYMENT_STATES,
        sign_out_form=ActionForm(prefix="sign-out"),
    )


def remove_method(saved_id: str) -> Response:
    """Forget one of the customer's saved payment methods (here and at Stripe)."""
    account = _require_account()
    if isinstance(account, Response):
        return account
    if not ActionForm().validate_on_submit():
        flash("Please try again.", "error")
        return redirect(url_for("accounts.account"), 303)
    try:
        removed = remove_saved_payment_method(psp.platform, psp.stripe, account.customer_id, saved_id)
    except ResourceNotFound:
        removed = None
    if removed is None:
        raise NotFound()
    flash(f"Removed the {removed.brand.title()} card ending in {removed.last4}.", "success")
    return redirect(url_for("accounts.account"), 303)

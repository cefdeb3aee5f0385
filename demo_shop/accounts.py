"""Customer accounts: sign up, sign in, sign out and the account page.

An account is a row of the shop's own table ``shop_accounts``, in the store's database:
the email (unique, kept lower-cased), a password hash (werkzeug's scrypt) and the id of
the connector customer made for it, which carts, orders and saved payment methods name.
The table is defined in :mod:`tables` and created by the shop's migrations at start-up.

The session holds the customer id, a fingerprint of the account's password hash (so a
session stops working when the password changes) and the token of a server-side sign-in
record (see :mod:`logins`), so signing out ends the session for every copy of the cookie.
Signing in starts a new session and moves the cart to a new one of the customer's (see
:func:`cart.copy_for_customer`). Sign-in and sign-up are rate-limited (see :mod:`throttle`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import NotFound
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response

from flask_psp_connector.domain.model import Customer
from flask_psp_connector.errors import InvalidOperation, PSPError, ResourceNotFound
from flask_psp_connector.processor.customers import remove_saved_payment_method

from .cart import copy_for_customer, current_cart, psp
from .forms import ActionForm, SignInForm, SignUpForm
from .logins import end_login, login_is_active, start_login
from .next_url import safe_next_url
from .progress import PAYMENT_STATES
from .security import html_errors
from .tables import accounts_table, shop_database

bp = Blueprint("accounts", __name__)
html_errors(bp)


@dataclass(frozen=True, slots=True)
class Account:
    """A customer account (the password hash never leaves this module)."""

    id: str
    email: str
    customer_id: str
    _password_hash: str


class EmailTaken(Exception):
    """An account (or a customer) with this email already exists."""


def normalize_email(email: str) -> str:
    """The form of an email the table keys on: trimmed and lower-cased."""
    return email.strip().lower()


def _read(query: Any) -> Account | None:
    with shop_database().transaction() as db:
        row = db.execute(query).first()
    return None if row is None else Account(row.id, row.email, row.customer_id, row.password_hash)


def find_account(email: str) -> Account | None:
    """The account with this email (any case), or ``None``."""
    return _read(select(accounts_table).where(accounts_table.c.email == normalize_email(email)))


def _account_of_customer(customer_id: str) -> Account | None:
    return _read(select(accounts_table).where(accounts_table.c.customer_id == customer_id))


def create_account(email: str, password: str, name: str = "") -> Account:
    """Create the connector customer and the account for ``email``.

    :raises EmailTaken: when the email already has an account or a customer.
    """
    email = normalize_email(email)
    # Hash first: a taken email then costs as long as a new one, so timing tells nothing.
    password_hash = generate_password_hash(password)
    if find_account(email) is not None:
        raise EmailTaken(email)
    try:
        # The customers' unique email decides between two sign-ups racing for one address.
        customer = psp.platform.create_customer(email, name.strip())
    except InvalidOperation:
        raise EmailTaken(email) from None
    account = Account(str(uuid.uuid4()), email, customer.id, password_hash)
    row = {"id": account.id, "email": email, "password_hash": password_hash, "customer_id": customer.id,
           "created_at": datetime.now(UTC)}
    try:
        with shop_database().transaction(write=True) as db:
            db.execute(insert(accounts_table).values(**row))
    except IntegrityError:
        raise EmailTaken(email) from None
    return account


@cache
def _decoy_hash() -> str:
    return generate_password_hash(secrets.token_urlsafe(16))


def authenticate(email: str, password: str) -> Account | None:
    """The account if ``password`` is its password, else ``None``.

    An unknown email costs one hash check too, so the answer time does not tell
    whether the address has an account.
    """
    account = find_account(email)
    if account is None:
        check_password_hash(_decoy_hash(), password)
        return None
    return account if check_password_hash(account._password_hash, password) else None


def _fingerprint(account: Account) -> str:
    key = str(current_app.secret_key).encode()
    return hmac.new(key, f"account:{account.id}:{account._password_hash}".encode(), hashlib.sha256).hexdigest()


def current_account() -> Account | None:
    """The signed-in account of this request, or ``None``."""
    if "account" not in g:
        g.account = _session_account()
    return g.account


def _session_account() -> Account | None:
    customer_id, token = session.get("customer_id"), session.get("account")
    if not isinstance(customer_id, str) or not isinstance(token, str):
        return None
    account = _account_of_customer(customer_id)
    if (account is None or not hmac.compare_digest(token, _fingerprint(account))
            or not login_is_active("customer", customer_id, session.get("login"))):
        session.pop("customer_id", None)
        session.pop("account", None)
        session.pop("login", None)
        return None
    return account


def signed_in() -> bool:
    """Whether a customer is signed in (for the header; never fails a page)."""
    try:
        return current_account() is not None
    except PSPError:  # an error page must render even when the store is down
        return False


def owns_cart(cart_id: str) -> bool:
    """Whether the cart (and so its order) belongs to the signed-in customer."""
    account = current_account()
    if account is None:
        return False
    try:
        return psp.platform.get_cart(cart_id).customer_id == account.customer_id
    except ResourceNotFound:
        return False


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
    session["account"] = _fingerprint(account)
    session["login"] = start_login("customer", account.customer_id)
    if cart is not None and cart.line_items:
        session["cart_id"] = copy_for_customer(cart, account.customer_id, account.email).id


def _next_url() -> str | None:
    """Where to go after signing in: a path on this site only."""
    return safe_next_url(request.args.get("next"))


#: The sign-up answer for an email that already has an account: it must not say so,
#: or the form would tell anyone which addresses are customers of the shop.
SIGN_UP_REFUSED = "We could not create an account with these details. If you already have one, sign in instead."


@bp.route("/account/sign-up", methods=["GET", "POST"])
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


@bp.route("/account/sign-in", methods=["GET", "POST"])
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


@bp.post("/account/sign-out")
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


@bp.get("/account")
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


@bp.post("/account/payment-methods/<saved_id>/remove")
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

"""Customer accounts: the table, creating and checking accounts, and who is signed in.

An account is a row of the shop's own table ``shop_accounts``, in the store's database:
the email (unique, kept lower-cased), a password hash (werkzeug's scrypt) and the id of
the connector customer made for it, which carts, orders and saved payment methods name.
The table is defined in :mod:`tables` and created by the shop's migrations at start-up.

The session holds the customer id, a fingerprint of the account's password hash (so a
session stops working when the password changes) and the token of a server-side sign-in
record (see :mod:`logins`), so signing out ends the session for every copy of the cookie.
The pages that sign in, sign up and out are in :mod:`demo_shop.account_pages`.
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

from flask import current_app, g, session
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from demo_shop.connector import psp
from demo_shop.logins import login_is_active
from demo_shop.tables import accounts_table, shop_database
from flask_psp_connector.errors import InvalidOperation, PSPError, ResourceNotFound


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


def session_fingerprint(account: Account) -> str:
    """What a signed-in session holds for ``account``: it stops working when the password changes."""
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
    if (account is None or not hmac.compare_digest(token, session_fingerprint(account))
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

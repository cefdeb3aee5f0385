"""Server-side record of who is signed in, so that signing out really ends a session.

The shop's session is a signed cookie: on its own, a copy taken before signing out
would keep working until the key changes. Every sign-in (a customer's or the back
office's) therefore writes a row to ``shop_logins`` holding the SHA-256 of a random
token; the cookie carries the token, each request checks that its row still exists, and
signing out deletes the row. The table lives in the store's database, so every worker
sees the same sign-ins; the shop's migrations create it (see :mod:`tables`).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select

from demo_shop.tables import logins_table, shop_database

#: How long a sign-in lasts without signing in again.
LOGIN_LIFETIME = timedelta(days=14)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_login(kind: str, subject: str) -> str:
    """Record a new sign-in of ``subject`` (``kind`` is ``customer`` or ``admin``); return
    the token the session cookie must carry. Expired sign-ins of anyone are removed."""
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with shop_database().transaction(write=True) as db:
        db.execute(delete(logins_table).where(logins_table.c.created_at < now - LOGIN_LIFETIME))
        db.execute(insert(logins_table).values(token_hash=_hash(token), kind=kind, subject=subject, created_at=now))
    return token


def login_is_active(kind: str, subject: str, token: Any) -> bool:
    """Whether ``token`` is a current sign-in of ``subject`` as ``kind``."""
    if not isinstance(token, str) or not token or len(token) > 128:
        return False
    oldest = datetime.now(UTC) - LOGIN_LIFETIME
    with shop_database().transaction() as db:
        row = db.execute(select(logins_table.c.kind, logins_table.c.subject, logins_table.c.created_at)
                         .where(logins_table.c.token_hash == _hash(token))).first()
    if row is None or row.kind != kind or row.subject != subject:
        return False
    created: datetime = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return created >= oldest


def end_login(token: Any) -> None:
    """Forget the sign-in ``token`` (nothing happens for an unknown one)."""
    if isinstance(token, str) and token:
        with shop_database().transaction(write=True) as db:
            db.execute(delete(logins_table).where(logins_table.c.token_hash == _hash(token)))

"""Shared fixtures: app factory, embedded store on SQLite and PostgreSQL, Stripe doubles."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import requests
import responses
import stripe
from flask import Flask
from sqlalchemy import MetaData, create_engine, text

from flask_psp_connector import Address, LineItemDraft, PSPConnector
from flask_psp_connector.platforms.embedded.database import normalize_database_url
from flask_psp_connector.platforms.embedded.schema import Base
from flask_psp_connector.platforms.embedded.store import LocalPlatform
from flask_psp_connector.testing import running_stripe_double

stripe.enable_telemetry = False

POSTGRES_URL = os.environ.get("PSP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
STRIPE_API = "https://api.stripe.com"
SECRET_KEY = "sk_test_connector"


def _reset_postgres() -> str:
    engine = create_engine(normalize_database_url(POSTGRES_URL))
    with engine.begin() as connection:
        connection.execute(text("SET client_min_messages = warning"))
        everything = MetaData()  # the store's tables, a host app's and the version tables
        everything.reflect(connection)
        everything.drop_all(connection)
        Base.metadata.create_all(connection)
    engine.dispose()
    return POSTGRES_URL


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A fresh, empty store: a SQLite file, then the PostgreSQL test database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    return _reset_postgres()


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    """A fresh SQLite store, for tests whose behaviour does not depend on the database."""
    return f"sqlite:///{tmp_path / 'store.sqlite3'}"


@pytest.fixture
def platform(database_url: str) -> Iterator[LocalPlatform]:
    """The embedded store on each database, schema created."""
    store = LocalPlatform.from_url(database_url)
    store.create_schema()
    yield store
    store.database.dispose()


AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app(sqlite_url: str) -> Iterator[AppFactory]:
    """Build an app with the connector registered; keyword arguments become config."""
    apps: list[Flask] = []

    def factory(**config: Any) -> Flask:
        app = Flask("connector_test")
        app.config.update(
            TESTING=True,
            STRIPE_SECRET_KEY=SECRET_KEY,
            STRIPE_PUBLISHABLE_KEY="pk_test_connector",
            PSP_DATABASE_URL=sqlite_url,
            PSP_STRIPE_MAX_NETWORK_RETRIES=0,
            CTP_JWKS_URL="https://auth.example.test/.well-known/jwks.json",
            CTP_JWT_ISSUER="https://auth.example.test",
            CTP_PROJECT_KEY="shop",
        )
        app.config.update(config)
        PSPConnector(app)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        database = app.extensions["psp_connector"].database
        if database is not None:
            database.dispose()


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    """An app whose Stripe calls go to api.stripe.com (pin them with ``stripe_mock``)."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()


@pytest.fixture
def stripe_mock() -> Iterator[responses.RequestsMock]:
    """Every outgoing HTTP request must be pinned; unpinned ones fail the test."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


SHIPPING = Address(
    first_name="Jane", last_name="Doe", street_name="Main St", street_number="12",
    postal_code="10115", city="Berlin", country="DE", email="jane@example.test",
)


def bearer(app: Flask, scope: str = "manage_checkout_payment_intents") -> dict[str, str]:
    """A valid bearer header from an OAuth client registered in the embedded store."""
    registry = app.extensions["psp_connector"].clients
    credentials = registry.create_client(scope)
    token = secrets.token_urlsafe(24)
    request = SimpleNamespace(client=SimpleNamespace(get_client_id=lambda: credentials.client_id))
    registry.save_token({"access_token": token, "expires_in": 3600, "scope": scope}, request)
    return {"Authorization": f"Bearer {token}"}


def open_checkout(
    app: Flask, *, currency: str = "EUR", unit_price: int = 1500, quantity: int = 2, **cart: Any
) -> tuple[str, str]:
    """Create a cart in the app's store and open a session; return (cart id, session id)."""
    store = app.extensions["psp_connector"].platform
    created = store.create_cart(
        currency,
        line_items=[LineItemDraft("tee-blue", "Blue T-shirt", quantity, unit_price)],
        customer_email="jane@example.test",
        shipping_address=SHIPPING,
        **cart,
    )
    session = store.open_session(created.id, merchant_return_url="https://shop.example.test/return")
    return created.id, session.id


@pytest.fixture(scope="session")
def stripe_double() -> Iterator[str]:
    """The Stripe API double on 127.0.0.1 for the whole test session."""
    with running_stripe_double() as base:
        yield base


@pytest.fixture
def localstripe_app(make_app: AppFactory, stripe_double: str) -> Flask:
    """An app whose Stripe calls go to the local Stripe double (emptied first)."""
    requests.delete(f"{stripe_double}/_config/data", timeout=5)
    return make_app(STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card")


@pytest.fixture
def stripe_double_client(stripe_double: str) -> stripe.StripeClient:
    """A Stripe client on the double, playing the browser's part (Stripe.js)."""
    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": stripe_double}, max_network_retries=0)

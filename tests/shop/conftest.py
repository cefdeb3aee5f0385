"""The demo shop on a fresh SQLite store, a browser on it, and one signed into the back office."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.shop_support import ADMIN_PASSWORD, Browser, build_shop


@pytest.fixture
def shop(sqlite_url: str) -> Flask:
    return build_shop(sqlite_url)


@pytest.fixture
def browser(shop: Flask) -> Browser:
    return Browser(shop)


@pytest.fixture
def admin(shop: Flask) -> Browser:
    browser = Browser(shop)
    response = browser.post("/admin/login", {"password": ADMIN_PASSWORD})
    assert response.status_code == 303 and response.location == "/admin/"
    return browser

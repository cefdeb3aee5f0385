"""The demo shop on a hostile day: open redirects, password guessing, copied cookies,
account enumeration, hostile input and the headers of private pages."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from flask_psp_connector.testing import free_port
from tests.shop_support import ADMIN_PASSWORD, Browser, build_shop, paid_cart

PASSWORD = "a long enough secret"


@pytest.fixture
def shop(database_url: str) -> Flask:
    return build_shop(database_url)


def text(response: Any) -> str:
    return response.get_data(as_text=True)


def sign_up(browser: Browser, email: str = "jane@example.test", password: str = PASSWORD, **kwargs: Any) -> Any:
    response = browser.post("/account/sign-up", {"email": email, "name": "Jane", "password": password,
                                                 "confirm": password}, **kwargs)
    browser._token = None
    return response


def sign_in(browser: Browser, email: str = "jane@example.test", password: str = PASSWORD, **kwargs: Any) -> Any:
    response = browser.post("/account/sign-in", {"email": email, "password": password}, **kwargs)
    browser._token = None
    return response


def cookie(browser: Browser) -> str:
    found = browser.client.get_cookie("session")
    assert found is not None
    return found.value


def with_cookie(shop: Flask, value: str) -> Any:
    client = shop.test_client()
    client.set_cookie("session", value)
    return client


# -- 1. open redirects ------------------------------------------------------------------


HOSTILE_NEXT = ["/%09/evil.example", "/%0A/evil.example", "/%0D/evil.example", "/%0D%0ALocation:%20//evil.example",
                "//evil.example", "/\\evil.example", "https://evil.example/", "/%5Cevil.example", "/\t/evil.example",
                "/%E3%80%80/x" + "a" * 600]


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_sign_in_and_sign_up_never_leave_the_site(shop: Flask, target: str) -> None:
    browser = Browser(shop)
    response = sign_up(browser, query_string=f"next={target}")
    assert response.status_code == 303 and response.headers["Location"] == "/account"
    browser.post("/account/sign-out", {"sign-out-csrf_token": browser.token()})
    browser._token = None
    page = browser.get(f"/account/sign-in?next={target}")
    assert page.status_code == 200 and "evil.example" not in text(page)
    response = sign_in(browser, query_string=f"next={target}")
    assert response.status_code == 303 and response.headers["Location"] == "/account"


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_admin_login_never_leaves_the_back_office(shop: Flask, target: str) -> None:
    browser = Browser(shop)
    response = browser.post("/admin/login", {"password": ADMIN_PASSWORD}, query_string=f"next={target}")
    assert response.status_code == 303 and response.headers["Location"] == "/admin/"


def test_admin_login_returns_to_the_page_asked_for(shop: Flask) -> None:
    browser = Browser(shop)
    asked = browser.get("/admin/payments/some-id")
    assert asked.status_code == 303 and asked.headers["Location"] == "/admin/login?next=/admin/payments/some-id"
    response = browser.post("/admin/login?next=/admin/payments/some-id", {"password": ADMIN_PASSWORD})
    assert response.headers["Location"] == "/admin/payments/some-id"
    shop_page = Browser(shop).post("/admin/login?next=/cart", {"password": ADMIN_PASSWORD})
    assert shop_page.headers["Location"] == "/admin/"


# -- 2. rate limits -----------------------------------------------------------------------


def test_wrong_admin_passwords_are_throttled_even_before_the_right_one(shop: Flask) -> None:
    browser = Browser(shop)
    statuses = [browser.post("/admin/login", {"password": f"guess {n}"}).status_code for n in range(8)]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    refused = browser.post("/admin/login", {"password": ADMIN_PASSWORD})
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert "Too many attempts" in text(refused) and refused.mimetype == "text/html"
    assert browser.get("/admin/").status_code == 303  # still not logged in


def test_wrong_customer_passwords_are_throttled(shop: Flask) -> None:
    owner = Browser(shop)
    sign_up(owner)
    attacker = Browser(shop)
    statuses = [sign_in(attacker, password=f"guess number {n}").status_code for n in range(12)]
    assert statuses[:10] == [401] * 10 and set(statuses[10:]) == {429}
    assert sign_in(attacker).status_code == 429
    assert attacker.get("/account").status_code == 303


def test_guesses_at_one_account_from_many_addresses_are_throttled(database_url: str) -> None:
    shop = build_shop(database_url, SHOP_PROXY_HOPS=1, SHOP_SIGN_IN_ACCOUNT_RATE_LIMIT="3 per hour")
    sign_up(Browser(shop))
    statuses = [sign_in(Browser(shop), email="JANE@example.test", password=f"guess {n}",
                        headers={"X-Forwarded-For": f"198.51.100.{n}"}).status_code for n in range(4)]
    assert statuses == [401, 401, 401, 429]
    other = sign_up(Browser(shop), email="max@example.test")
    assert other.status_code == 303  # another account is not affected


def test_a_successful_sign_in_does_not_use_up_the_allowance(shop: Flask) -> None:
    browser = Browser(shop)
    sign_up(browser)
    for _ in range(15):
        browser.post("/account/sign-out", {"sign-out-csrf_token": browser.token()})
        browser._token = None
        assert sign_in(browser).status_code == 303


def test_sign_ups_are_throttled(shop: Flask) -> None:
    browser = Browser(shop)
    statuses = [sign_up(Browser(shop), email=f"user{n}@example.test").status_code for n in range(11)]
    assert statuses[:10] == [303] * 10 and statuses[10] == 429
    assert sign_up(browser, email="late@example.test").status_code == 429


def test_limits_are_configurable(database_url: str) -> None:
    shop = build_shop(database_url, SHOP_ADMIN_LOGIN_RATE_LIMIT="2 per minute")
    browser = Browser(shop)
    assert [browser.post("/admin/login", {"password": "x"}).status_code for _ in range(3)] == [401, 401, 429]


# -- 4. signing out ends the session everywhere ----------------------------------------


def test_a_copied_admin_cookie_stops_working_after_logout(shop: Flask) -> None:
    browser = Browser(shop)
    assert browser.post("/admin/login", {"password": ADMIN_PASSWORD}).status_code == 303
    copied = cookie(browser)
    assert with_cookie(shop, copied).get("/admin/").status_code == 200
    browser.post("/admin/logout", {"logout-csrf_token": browser.token()}, csrf=False)
    assert with_cookie(shop, copied).get("/admin/").status_code == 303
    assert browser.get("/admin/").status_code == 303


def test_logging_in_again_ends_the_earlier_admin_session(shop: Flask) -> None:
    browser = Browser(shop)
    browser.post("/admin/login", {"password": ADMIN_PASSWORD})
    copied = cookie(browser)
    browser.post("/admin/login", {"password": ADMIN_PASSWORD})
    assert with_cookie(shop, copied).get("/admin/").status_code == 303
    assert browser.get("/admin/").status_code == 200


def test_a_copied_customer_cookie_stops_working_after_sign_out(shop: Flask) -> None:
    browser = Browser(shop)
    sign_up(browser)
    copied = cookie(browser)
    assert with_cookie(shop, copied).get("/account").status_code == 200
    assert browser.post("/account/sign-out", {"sign-out-csrf_token": browser.token()}).status_code == 303
    browser._token = None
    assert with_cookie(shop, copied).get("/account").status_code == 303
    assert sign_in(browser).status_code == 303
    assert with_cookie(shop, copied).get("/account").status_code == 303
    assert browser.get("/account").status_code == 200


def test_signing_in_again_ends_the_earlier_customer_session(shop: Flask) -> None:
    browser = Browser(shop)
    sign_up(browser)
    copied = cookie(browser)
    assert sign_in(browser).status_code == 303
    assert with_cookie(shop, copied).get("/account").status_code == 303


# -- 12. no account enumeration -----------------------------------------------------------


def test_sign_up_does_not_tell_whether_an_email_has_an_account(shop: Flask) -> None:
    sign_up(Browser(shop), email="jane@example.test")
    taken = sign_up(Browser(shop), email="JANE@example.test", password="another password")
    body = text(taken)
    assert taken.status_code == 400
    assert "exists" not in body.lower() and "already has" not in body.lower()
    assert "We could not create an account with these details" in body


# -- 5. hostile input on the shop's routes ---------------------------------------------


@pytest.mark.parametrize("path", [
    "/return?paymentReference=ab%00cd&payment_intent=pi_x",
    "/return?paymentReference=ab&payment_intent=pi%00x",
    "/orders/ab%00cd",
    "/orders/ab%00cd/status",
    "/products/mug%00",
    "/admin/payments/ab%00cd",
])
def test_nul_bytes_in_paths_are_a_clear_400(shop: Flask, path: str) -> None:
    browser = Browser(shop)
    browser.post("/admin/login", {"password": ADMIN_PASSWORD})
    response = browser.get(path)
    assert response.status_code == 400, text(response)


@pytest.mark.parametrize(("url", "form"), [
    ("/account/sign-up", {"email": "ja\x00ne@example.test", "password": PASSWORD, "confirm": PASSWORD}),
    ("/account/sign-in", {"email": "ja\x00ne@example.test", "password": PASSWORD}),
    ("/account/sign-in", {"email": "jane@example.test", "password": "pass\x00word"}),
    ("/admin/login", {"password": "x\x00"}),
])
def test_nul_bytes_in_form_fields_are_a_clear_400(shop: Flask, url: str, form: dict[str, str]) -> None:
    response = Browser(shop).post(url, form)
    assert response.status_code == 400 and response.mimetype == "text/html"


def test_a_nul_byte_in_the_checkout_email_is_a_clear_400(shop: Flask) -> None:
    browser = Browser(shop)
    browser.add("stoneware-mug", 1)
    response = browser.checkout(email="ja\x00ne@example.test")
    assert response.status_code == 400
    assert browser.cart().customer_email is None


@pytest.mark.parametrize("depth", [30, 1_000, 30_000])  # 100k levels are over the body limit: 413
def test_deep_json_on_the_express_endpoints_is_a_clear_400(shop: Flask, depth: int) -> None:
    browser = Browser(shop)
    body = "[" * depth + "]" * depth
    response = browser.client.post("/express/prepare", data=body, content_type="application/json",
                                   headers={"X-CSRFToken": browser.token()})
    assert response.status_code == 400 and response.is_json
    assert set(response.get_json()) == {"message", "code"}


def test_shop_bodies_are_limited(shop: Flask) -> None:
    browser = Browser(shop)
    big = json.dumps({"source": "cart", "padding": "x" * (200 * 1024)})
    response = browser.client.post("/express/prepare", data=big, content_type="application/json",
                                   headers={"X-CSRFToken": browser.token()})
    assert response.status_code == 413


# -- 10. headers of private pages --------------------------------------------------------


def test_private_pages_are_not_cached(shop: Flask) -> None:
    browser = Browser(shop)
    paid_cart(browser)
    for path in ("/pay", "/account/sign-in", "/account/sign-up", "/admin/login"):
        response = browser.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "no-store", path
    browser.post("/admin/login", {"password": ADMIN_PASSWORD})
    assert browser.get("/admin/").headers["Cache-Control"] == "no-store"
    assert "no-store" not in browser.get("/").headers.get("Cache-Control", "")


def test_hsts_on_https_only(shop: Flask) -> None:
    client = shop.test_client()
    secure = client.get("/", base_url="https://shop.example.test")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "Strict-Transport-Security" not in client.get("/").headers


def test_behind_a_router_https_and_the_client_address_come_from_it(database_url: str) -> None:
    shop = build_shop(database_url, SHOP_PROXY_HOPS=1, SHOP_ADMIN_LOGIN_RATE_LIMIT="1 per minute")
    client = shop.test_client()
    routed = client.get("/", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    assert "Strict-Transport-Security" in routed.headers
    first, second = Browser(shop), Browser(shop)
    for browser, address in ((first, "203.0.113.1"), (second, "203.0.113.2")):
        headers = {"X-Forwarded-For": address}
        assert browser.post("/admin/login", {"password": "x"}, headers=headers).status_code == 401
    assert first.post("/admin/login", {"password": "x"}, headers={"X-Forwarded-For": "203.0.113.1"}).status_code == 429


def test_the_shop_allows_only_its_own_origin_by_default(shop: Flask) -> None:
    client = shop.test_client()
    own = client.post("/express-config", headers={"Origin": "http://localhost"})
    assert own.status_code == 200 and own.headers["Access-Control-Allow-Origin"] == "http://localhost"
    foreign = client.post("/express-config", headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403 and "Access-Control-Allow-Origin" not in foreign.headers
    preflight = client.options("/payments", headers={"Origin": "https://evil.example",
                                                    "Access-Control-Request-Headers": "X-Session-Id"})
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_a_configured_allow_list_replaces_the_shops_default(database_url: str) -> None:
    shop = build_shop(database_url, ALLOWED_ORIGINS="https://storefront.example")
    client = shop.test_client()
    assert client.post("/express-config", headers={"Origin": "https://storefront.example"}).status_code == 200
    assert client.post("/express-config", headers={"Origin": "http://localhost"}).status_code == 403


@pytest.fixture
def redis_url(tmp_path: Any) -> Iterator[str]:
    """A throwaway redis-server on 127.0.0.1 (no persistence)."""
    server_binary = shutil.which("redis-server")
    if server_binary is None:
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    port = free_port()
    server = subprocess.Popen([server_binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                               "--appendonly", "no", "--dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


def test_several_dynos_share_the_limits_through_redis(sqlite_url: str, redis_url: str) -> None:
    dynos = [build_shop(sqlite_url, RATELIMIT_STORAGE_URI=redis_url, SHOP_ADMIN_LOGIN_RATE_LIMIT="3 per minute")
             for _ in range(2)]
    first, second = Browser(dynos[0]), Browser(dynos[1])
    statuses = [browser.post("/admin/login", {"password": "guess"}).status_code
                for browser in (first, second, first, second)]
    assert statuses == [401, 401, 401, 429]

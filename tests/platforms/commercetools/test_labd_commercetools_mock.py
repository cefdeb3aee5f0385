"""The commercetools adapter's customers and saved payment methods against labd's
``@labdigital/commercetools-mock``, a second, independent commercetools double, served
over HTTP by Node (``make test`` installs it from npm, pinned in package.json).

The mock has no Payment Methods API and no session service: a small front (``Front``
below) implements ``/{projectKey}/payment-methods`` as commercetools documents it — create
(with a unique key and a customer that must exist in the mock), query by predicate, get
by id or key, delete at a version — and the checkout sessions, and forwards every other
request to the mock. The mock also never sets an ordered cart to Ordered and orders a
cart again: the front does what commercetools does there (the cart reads Ordered, a
second order of it is refused), which the connector relies on to order a cart once.
Customers, custom types, products, carts, payments and orders are the mock's own; Stripe
is the local Stripe double.

Where the mock differs from commercetools and the front leaves it so (it does not
reject duplicate payment keys, ignores ``interfaceId`` on payment creation, and answers a
cart's ``totalPrice`` with ``fractionDigits`` 0 in EUR), the checkout below still has to
charge the right amount and place one order.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask, Response, request

from flask_psp_connector import PSPConnector
from flask_psp_connector.errors import InvalidOperation, ResourceNotFound
from flask_psp_connector.platforms.commercetools.custom_types import STRIPE_CUSTOMER_FIELD
from flask_psp_connector.platforms.commercetools.platform import CommercetoolsPlatform
from flask_psp_connector.testing import free_port
from tests.browser_support import serving, wait_for
from tests.conftest import SECRET_KEY
from tests.platforms.commercetools.test_commercetools_fake import _where
from tests.webhook_support import SECRETS, event, post_event

ROOT = Path(__file__).resolve().parents[3]
MOCK = ROOT / "node_modules" / "@labdigital" / "commercetools-mock"
PROJECT = "labd-shop"


def _node_major() -> int:
    node = shutil.which("node")
    if node is None:
        return 0
    return int(subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip().lstrip("v").split(".")[0])


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    """labd's mock on a free port, for this module."""
    if not MOCK.exists() or _node_major() < 20:
        pytest.skip("@labdigital/commercetools-mock needs `npm install` and Node.js 20 or newer")
    port = free_port()
    process = subprocess.Popen(["node", str(Path(__file__).resolve().parents[2] / "labd_commercetools_mock.mjs"), str(port)],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url), timeout=30)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _answers(url: str) -> bool | None:
    try:
        return requests.post(f"{url}/oauth/token", data={"grant_type": "client_credentials"}, auth=("c", "s"),
                             timeout=2).status_code == 200 or None
    except requests.ConnectionError:
        return None


class Front:
    """The Payment Methods API in front of the mock; everything else goes to the mock."""

    def __init__(self, mock_url: str) -> None:
        self.mock_url = mock_url
        self.methods: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.ordered: set[str] = set()  # carts the mock ordered (it leaves them Active)
        self.app = Flask("labd_front")
        self.app.add_url_rule("/<path:path>", view_func=self.route, methods=["GET", "POST", "DELETE"])

    @staticmethod
    def _error(status: int, code: str, message: str, **extra: Any) -> Response:
        body = {"statusCode": status, "message": message, "errors": [{"code": code, "message": message, **extra}]}
        return Response(json.dumps(body), status=status, content_type="application/json")

    @staticmethod
    def _json(body: Any, status: int = 200) -> Response:
        return Response(json.dumps(body), status=status, content_type="application/json")

    def route(self, path: str) -> Response:
        project, _, rest = path.partition("/")
        if rest == "payment-methods" or rest.startswith("payment-methods/"):
            return self.payment_methods(project, rest)
        if rest.startswith("sessions/"):
            found = self.sessions.get(rest.removeprefix("sessions/"))
            return self._json(found) if found else self._error(404, "ResourceNotFound", "Session not found.")
        ordering = request.method == "POST" and rest == "orders"
        if ordering and request.get_json()["cart"]["id"] in self.ordered:
            return self._error(400, "InvalidOperation", "The cart has already been ordered.")
        answer = requests.request(request.method, f"{self.mock_url}/{path}", params=request.args, data=request.get_data(),
                                  headers={k: v for k, v in request.headers if k.lower() in ("authorization", "content-type")},
                                  timeout=10)
        if ordering and answer.status_code == 201:
            self.ordered.add(request.get_json()["cart"]["id"])
        if rest.startswith("carts") and answer.status_code == 200 and self.ordered:
            # commercetools turns an ordered cart's state to Ordered; the mock does not.
            body = answer.json()
            for cart in body.get("results", [body]):
                if cart.get("id") in self.ordered:
                    cart["cartState"] = "Ordered"
            return self._json(body)
        return Response(answer.content, status=answer.status_code, content_type=answer.headers.get("content-type"))

    def payment_methods(self, project: str, rest: str) -> Response:
        if rest == "payment-methods" and request.method == "POST":
            return self.create(project, request.get_json())
        if rest == "payment-methods":
            found = sorted((m for m in self.methods.values() if _where(request.args.get("where", ""), m)),
                           key=lambda m: m["createdAt"])
            limit = int(request.args.get("limit", 20))
            return self._json({"limit": limit, "offset": 0, "count": len(found[:limit]), "total": len(found),
                               "results": found[:limit]})
        ref = rest.removeprefix("payment-methods/")
        by_key = ref.startswith("key=")
        stored = next((m for m in self.methods.values() if m.get("key" if by_key else "id") == ref.removeprefix("key=")), None)
        if stored is None:
            return self._error(404, "ResourceNotFound", f"The Resource with ID '{ref}' was not found.")
        if request.method == "DELETE":
            if int(request.args.get("version", -1)) != stored["version"]:
                return self._error(409, "ConcurrentModification", "Version mismatch.", currentVersion=stored["version"])
            return self._json(self.methods.pop(stored["id"]))
        return self._json(stored)

    def create(self, project: str, draft: dict[str, Any]) -> Response:
        if draft.get("key") and any(m.get("key") == draft["key"] for m in self.methods.values()):
            return self._error(400, "DuplicateField", f"A duplicate value '\"{draft['key']}\"' exists for field 'key'.",
                               field="key")
        customer = draft.get("customer")
        if customer:
            exists = requests.get(f"{self.mock_url}/{project}/customers/{customer['id']}", timeout=10,
                                  headers={"Authorization": request.headers.get("Authorization", "")})
            if exists.status_code != 200:
                return self._error(400, "ReferencedResourceNotFound", "The referenced customer was not found.",
                                   typeId="customer", id=customer["id"])
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        stored = {"id": str(uuid.uuid4()), "version": 1, "createdAt": now, "lastModifiedAt": now,
                  "paymentMethodStatus": "Active", "default": False, **draft}
        if customer:
            stored["customer"] = {"typeId": "customer", "id": customer["id"]}
        self.methods[stored["id"]] = stored
        return self._json(stored, 201)


@pytest.fixture(scope="module")
def front(mock_url: str) -> Iterator[SimpleFront]:
    shim = Front(mock_url)
    port = free_port()
    with serving(shim.app, port) as base:
        yield SimpleFront(base, shim)


class SimpleFront:
    """Where the front listens, and its Payment Methods."""

    def __init__(self, url: str, shim: Front) -> None:
        self.url = url
        self.shim = shim


@pytest.fixture(scope="module")
def platform(mock_url: str, front: SimpleFront) -> CommercetoolsPlatform:
    app = Flask("labd_connector")
    app.config.update(TESTING=True, STRIPE_SECRET_KEY=SECRET_KEY, PSP_PLATFORM="commercetools",
                      CTP_PROJECT_KEY=PROJECT, CTP_CLIENT_ID="labd-client", CTP_CLIENT_SECRET="labd-secret",
                      CTP_API_URL=front.url, CTP_AUTH_URL=mock_url, CTP_SESSION_URL=front.url,
                      PAYMENT_INTERFACE="checkout-stripe")
    PSPConnector(app)
    store = app.extensions["psp_connector"].platform
    assert isinstance(store, CommercetoolsPlatform)
    store.install_custom_types()
    return store


@pytest.fixture(scope="module")
def checkout_app(mock_url: str, front: SimpleFront, stripe_double: str) -> Flask:
    app = Flask("labd_checkout")
    app.config.update(TESTING=True, STRIPE_SECRET_KEY=SECRET_KEY, PSP_PLATFORM="commercetools",
                      CTP_PROJECT_KEY=PROJECT, CTP_CLIENT_ID="labd-client", CTP_CLIENT_SECRET="labd-secret",
                      CTP_API_URL=front.url, CTP_AUTH_URL=mock_url, CTP_SESSION_URL=front.url,
                      STRIPE_API_BASE=stripe_double, STRIPE_PAYMENT_METHOD_TYPES="card", PSP_STRIPE_MAX_NETWORK_RETRIES=0,
                      STRIPE_WEBHOOK_SIGNING_SECRET=SECRETS[0])
    PSPConnector(app)
    store = app.extensions["psp_connector"].platform
    store.install_custom_types()
    product_type = store.client.post("/product-types", {"name": "mugs", "description": "mugs", "attributes": []})
    store.client.post("/products", {
        "productType": {"typeId": "product-type", "id": product_type["id"]}, "name": {"en": "Stoneware mug"},
        "slug": {"en": "stoneware-mug"}, "publish": True,
        "masterVariant": {"sku": "mug", "prices": [{"value": {"currencyCode": "EUR", "centAmount": 1500}}]}})
    return app


def test_a_checkout_on_the_mock_charges_the_cart_and_orders_it_once(checkout_app, front, stripe_double_client) -> None:
    store = checkout_app.extensions["psp_connector"].platform
    cart = store.client.post("/carts", {"currency": "EUR", "country": "DE", "customerEmail": "jane@example.test",
                                        "lineItems": [{"sku": "mug", "quantity": 2}],
                                        "shippingAddress": {"country": "DE", "city": "Berlin", "streetName": "Main St",
                                                            "postalCode": "10115", "firstName": "Jane", "lastName": "Doe"}})
    session_id = uuid.uuid4().hex
    front.shim.sessions[session_id] = {"id": session_id, "version": 1, "state": "ACTIVE",
                                       "activeCart": {"cartRef": {"id": cart["id"]}},
                                       "metadata": {"merchantReturnUrl": "https://shop.example.test/return"}}
    client = checkout_app.test_client()
    body = client.get("/payments", headers={"X-Session-Id": session_id}).get_json()
    assert body["cartInfo"] == {"amount": 3000, "currency": "EUR"}
    pi = body["clientSecret"].split("_secret_")[0]
    assert stripe_double_client.v1.payment_intents.retrieve(pi).amount == 3000  # not 300000
    assert client.get("/payments", headers={"X-Session-Id": session_id}).get_json()["paymentReference"] == \
        body["paymentReference"]  # a retry: the same payment
    stripe_double_client.v1.payment_intents.update(pi, params={"payment_method": "pm_card_visa"})
    paid = json.loads(str(stripe_double_client.v1.payment_intents.confirm(pi)))
    answer = client.post(f"/confirmPayments/{body['paymentReference']}", json={"paymentIntent": pi},
                         headers={"X-Session-Id": session_id})
    assert answer.get_json() == {"outcome": "approved"}
    for _ in range(2):  # the webhook, delivered twice
        assert post_event(client, event("payment_intent.succeeded", paid)).status_code == 200
    orders = store.client.get("/orders", where=f'cart(id="{cart["id"]}")')["results"]
    assert len(orders) == 1 and orders[0]["totalPrice"]["centAmount"] == 3000
    payment = store.get_payment(body["paymentReference"])
    assert sorted((t.type.value, t.state.value, t.amount.cent_amount) for t in payment.transactions) == [
        ("Authorization", "Success", 3000), ("Charge", "Success", 3000)]
    assert client.get("/config-element/payment", headers={"X-Session-Id": session_id}).status_code == 400  # paid


def test_customers_and_their_stripe_link_in_the_mock(platform: CommercetoolsPlatform) -> None:
    jane = platform.create_customer("jane.labd@example.test", "Jane Doe")
    assert (jane.email, jane.name, jane.stripe_customer_id) == ("jane.labd@example.test", "Jane Doe", None)
    with pytest.raises(InvalidOperation):
        platform.create_customer("jane.labd@example.test")
    linked = platform.set_stripe_customer_id(jane.id, "cus_labd1")
    assert linked.stripe_customer_id == "cus_labd1"
    assert platform.get_customer(jane.id).stripe_customer_id == "cus_labd1"
    raw = platform.client.get(f"/customers/{jane.id}")
    assert raw["custom"]["fields"][STRIPE_CUSTOMER_FIELD] == "cus_labd1"
    assert platform.set_stripe_customer_id(jane.id, "cus_labd2").stripe_customer_id == "cus_labd2"  # setCustomField now
    assert platform.get_customer(str(uuid.uuid4())) is None


def test_saved_methods_are_payment_methods_of_their_customer(platform: CommercetoolsPlatform, front: SimpleFront) -> None:
    ana = platform.create_customer("ana.labd@example.test")
    bo = platform.create_customer("bo.labd@example.test")
    first = platform.record_saved_payment_method(ana.id, "pm_labd_1", "visa", "4242", 12, 2030, method="card")
    assert platform.record_saved_payment_method(ana.id, "pm_labd_1", "visa", "4242", 12, 2030, method="card") == first
    second = platform.record_saved_payment_method(ana.id, "pm_labd_2", "mastercard", "4444", 1, 2031, method="card")
    bos = platform.record_saved_payment_method(bo.id, "pm_labd_1", "visa", "4242", 12, 2030, method="card")
    assert bos.id != first.id
    assert [m.stripe_payment_method_id for m in platform.saved_payment_methods(ana.id)] == ["pm_labd_1", "pm_labd_2"]
    assert (second.brand, second.last4, second.exp_month, second.exp_year) == ("mastercard", "4444", 1, 2031)
    stored = front.shim.methods[first.id]
    assert (stored["customer"], stored["token"], stored["paymentInterface"]) == (
        {"typeId": "customer", "id": ana.id}, {"value": "pm_labd_1"}, "checkout-stripe")
    with pytest.raises(ResourceNotFound):
        platform.record_saved_payment_method(str(uuid.uuid4()), "pm_labd_9", "visa", "4242", 1, 2030)
    assert platform.remove_saved_payment_method(bo.id, first.id) is None
    assert platform.remove_saved_payment_method(ana.id, first.id) == first
    assert [m.id for m in platform.saved_payment_methods(ana.id)] == [second.id]
    assert [m.id for m in platform.saved_payment_methods(bo.id)] == [bos.id]

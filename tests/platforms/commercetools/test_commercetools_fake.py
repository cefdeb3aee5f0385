"""An in-test commercetools project: `responses` callbacks over dicts of versioned resources.

It answers the calls the adapter makes (auth, introspection, sessions, carts, payments,
orders, custom objects, types) with commercetools' status codes and error bodies, so
the behavioural suites of the embedded store run against the commercetools adapter.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import re
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
import responses
from flask import Flask

from flask_psp_connector import Address, PSPConnector
from flask_psp_connector.platforms.commercetools.custom_types import CUSTOM_TYPES, TAX_REFERENCES_FIELD
from flask_psp_connector.platforms.commercetools.mapping import address_json, cart_from_json
from flask_psp_connector.platforms.commercetools.platform import CommercetoolsPlatform
from tests.conftest import SECRET_KEY

API, AUTH, SESSIONS = "https://api.ct.test", "https://auth.ct.test", "https://session.ct.test"
PROJECT, CLIENT_ID, CLIENT_SECRET = "shop", "ct-client", "ct-client-secret"
BASIC = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
CT_CONFIG = dict(CTP_API_URL=API, CTP_AUTH_URL=AUTH, CTP_SESSION_URL=SESSIONS, CTP_CLIENT_ID=CLIENT_ID,
                 CTP_CLIENT_SECRET=CLIENT_SECRET, CTP_PROJECT_KEY=PROJECT)
_clock = itertools.count(1)

Answer = tuple[int, dict[str, str], str]


def _now() -> str:
    # strictly increasing, so "oldest first" is well defined within one test (the seconds
    # never wrap around: one tick is a millisecond, from the first of January 2030)
    tick = next(_clock)
    return f"2030-01-{1 + tick // 86_400_000:02d}T{tick // 3_600_000 % 24:02d}:{tick // 60_000 % 60:02d}:" \
           f"{tick // 1000 % 60:02d}.{tick % 1000:03d}000Z"


def money(cent_amount: int, currency: str) -> dict[str, Any]:
    from flask_psp_connector.domain.money import iso_fraction_digits

    return {"type": "centPrecision", "centAmount": cent_amount, "currencyCode": currency,
            "fractionDigits": iso_fraction_digits(currency)}


def error(status: int, code: str, message: str, **extra: Any) -> Answer:
    body = {"statusCode": status, "message": message, "errors": [{"code": code, "message": message, **extra}]}
    return status, {}, json.dumps(body)


def ok(body: Any, status: int = 200) -> Answer:
    return status, {}, json.dumps(body)


@dataclass
class _Hook:
    method: str
    path: re.Pattern[str]
    answer: Callable[[Any], Answer | Exception | None]


@dataclass
class FakeCommercetools:
    """A commercetools project in memory (register it on a ``responses`` mock)."""

    carts: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    types: dict[str, dict[str, Any]] = field(default_factory=dict)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    payment_methods: dict[str, dict[str, Any]] = field(default_factory=dict)
    access_tokens: list[str] = field(default_factory=list)
    caller_tokens: dict[str, str] = field(default_factory=dict)
    hooks: list[_Hook] = field(default_factory=list)

    def register(self, mock: responses.RequestsMock) -> FakeCommercetools:
        for method in ("GET", "POST", "DELETE"):
            mock.add_callback(method, re.compile(re.escape(f"{API}/{PROJECT}/") + ".*"), callback=self._api)
        mock.add_callback("POST", f"{AUTH}/oauth/token", callback=self._token)
        mock.add_callback("POST", f"{AUTH}/oauth/introspect", callback=self._introspect)
        mock.add_callback("GET", re.compile(re.escape(f"{SESSIONS}/{PROJECT}/sessions/") + ".*"), callback=self._session)
        return self

    # -- set-up helpers (what tests do in the merchant's project) ---------------------

    def install_types(self) -> None:
        for definition in CUSTOM_TYPES:
            self.types[definition["key"]] = {**copy.deepcopy(definition), "id": str(uuid.uuid4()), "version": 1}

    def create_cart(self, currency_code: str, *, line_items: Any = (), customer_id: str | None = None,
                    customer_email: str | None = None, shipping_address: Address | None = None,
                    billing_address: Address | None = None, shipping_amount: int = 0, tax_amount: int = 0,
                    shipping_method_name: str | None = None, country: str | None = None, store_key: str | None = None,
                    tax_calculation_references: Any = ()) -> Any:
        cart_id = str(uuid.uuid4())
        cart = {"id": cart_id, "version": 1, "cartState": "Active", "createdAt": _now(),
                "paymentInfo": {"payments": []}, "lineItems": []}
        if country:
            cart["country"] = country
        if store_key:
            cart["store"] = {"typeId": "store", "key": store_key}
        if tax_calculation_references:
            # Upstream's Stripe Tax integration keeps the ids in a cart custom field (a Set of String).
            cart["custom"] = {"type": {"typeId": "type", "key": "connector-stripe-tax"},
                              "fields": {TAX_REFERENCES_FIELD: list(tax_calculation_references)}}
        if customer_id:
            cart["customerId"] = customer_id
        if customer_email:
            cart["customerEmail"] = customer_email
        if shipping_address:
            cart["shippingAddress"] = address_json(shipping_address)
        if billing_address:
            cart["billingAddress"] = address_json(billing_address)
        self.carts[cart_id] = cart
        self._price(cart, currency_code.upper(), list(line_items), shipping_amount, tax_amount)
        return cart_from_json(cart)

    def _price(self, cart: dict[str, Any], currency: str, items: list[Any], shipping: int, tax: int) -> None:
        cart["lineItems"] = [
            {"id": str(uuid.uuid4()), "name": {"en": item.name}, "variant": {"sku": item.sku}, "quantity": item.quantity,
             "price": {"value": money(item.unit_price, currency)},
             "totalPrice": money(item.unit_price * item.quantity, currency)}
            for item in items
        ]
        net = sum(item.unit_price * item.quantity for item in items) + shipping
        cart["totalPrice"] = money(net, currency)
        if shipping:
            cart["shippingInfo"] = {"shippingMethodName": "Standard", "price": money(shipping, currency)}
        if tax:
            cart["taxedPrice"] = {"totalNet": money(net, currency), "totalGross": money(net + tax, currency),
                                  "totalTax": money(tax, currency)}

    def update_cart(self, cart_id: str, *, line_items: Any = None, shipping_address: Address | None = None,
                    shipping_amount: int | None = None, tax_amount: int | None = None,
                    tax_calculation_references: Any = None, **_: Any) -> Any:
        cart = self.carts[cart_id]
        current = cart_from_json(cart)
        if tax_calculation_references is not None:
            cart["custom"] = {"type": {"typeId": "type", "key": "connector-stripe-tax"},
                              "fields": {TAX_REFERENCES_FIELD: list(tax_calculation_references)}}
        if shipping_address is not None:
            cart["shippingAddress"] = address_json(shipping_address)
        items = current.line_items if line_items is None else list(line_items)
        if line_items is None:
            items = [SimpleNamespace(sku=i.sku, name=i.name, quantity=i.quantity, unit_price=i.unit_price.cent_amount)
                     for i in current.line_items]
        shipping = current.shipping_amount if shipping_amount is None else shipping_amount
        tax = current.tax_amount if tax_amount is None else tax_amount
        cart.pop("shippingInfo", None), cart.pop("taxedPrice", None)
        self._price(cart, current.currency_code, items, shipping, tax)
        cart["version"] += 1
        return cart_from_json(cart)

    def open_session(self, cart_id: str, *, merchant_return_url: str | None = None, **_: Any) -> Any:
        session_id = secrets.token_hex(16)
        metadata: dict[str, Any] = {"processorUrl": "https://connector.test", "allowedPaymentMethods": ["card"]}
        if merchant_return_url:
            metadata["merchantReturnUrl"] = merchant_return_url
        self.sessions[session_id] = {"id": session_id, "version": 1, "state": "ACTIVE",
                                     "activeCart": {"cartRef": {"id": cart_id}}, "metadata": metadata}
        return SimpleNamespace(id=session_id, cart_id=cart_id)

    def on_next(self, method: str, path: str, answer: Callable[[Any], Answer | Exception | None]) -> None:
        """Answer the next ``method`` request whose path (after the project) matches ``path``."""
        self.hooks.append(_Hook(method, re.compile(path), answer))

    def client_registry(self) -> Any:
        """Stands in for the embedded client registry: tokens callers present, known to introspection."""
        fake = self

        class Registry:
            def create_client(self, scope: str, name: str = "") -> Any:
                return SimpleNamespace(client_id=secrets.token_hex(6), client_secret="unused", scope=scope)

            def save_token(self, token: dict[str, Any], request: Any) -> None:
                fake.caller_tokens[token["access_token"]] = token["scope"]

        return Registry()

    # -- auth ---------------------------------------------------------------------

    def _token(self, request: Any) -> Answer:
        if request.headers.get("Authorization") != BASIC:
            return 401, {}, json.dumps({"statusCode": 401, "message": "Please provide valid client credentials.",
                                        "error": "invalid_client"})
        token = secrets.token_urlsafe(16)
        self.access_tokens.append(token)
        return ok({"access_token": token, "token_type": "Bearer", "expires_in": 172800, "scope": f"manage_project:{PROJECT}"})

    def _introspect(self, request: Any) -> Answer:
        if request.headers.get("Authorization") != BASIC:
            return 401, {}, json.dumps({"error": "invalid_client"})
        token = dict(parse_qsl(request.body)).get("token", "")
        scope = self.caller_tokens.get(token)
        return ok({"active": True, "scope": scope} if scope else {"active": False})

    def _authorized(self, request: Any) -> bool:
        header = request.headers.get("Authorization", "")
        return bool(self.access_tokens) and header == f"Bearer {self.access_tokens[-1]}"

    def _session(self, request: Any) -> Answer | Exception:
        session_id = unquote(urlsplit(request.url).path.rsplit("/", 1)[1])
        hooked = self._hooked(request.method, f"/sessions/{session_id}")
        if hooked is not None:
            return hooked
        if not self._authorized(request):
            return error(401, "invalid_token", "invalid_token")
        session = self.sessions.get(session_id)
        return ok(session) if session else error(404, "ResourceNotFound", "The session was not found.")

    # -- the API ----------------------------------------------------------------------

    def _api(self, request: Any) -> Answer | Exception:
        parts = urlsplit(request.url)
        path = unquote(parts.path[len(f"/{PROJECT}"):])
        query = dict(parse_qsl(parts.query))
        hooked = self._hooked(request.method, path)
        if hooked is not None:
            return hooked
        if not self._authorized(request):
            return error(401, "invalid_token", "invalid_token")
        body = json.loads(request.body) if request.body else {}
        return self._route(request.method, path, query, body)

    def _hooked(self, method: str, path: str) -> Answer | Exception | None:
        for hook in list(self.hooks):
            if hook.method == method and hook.path.search(path):
                self.hooks.remove(hook)
                return hook.answer(self)
        return None

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> Answer:
        expand = query.get("expand") == "paymentInfo.payments[*]"
        if path == "/carts" and method == "GET":
            match = re.fullmatch(r'paymentInfo\(payments\(id="([^"]+)"\)\)', query.get("where", ""))
            found = [c for c in self.carts.values() if match and match[1] in self._payment_ids(c)]
            return ok({"results": [self._view(c, expand) for c in found[:1]], "count": len(found[:1])})
        if match := re.fullmatch(r"/carts/([^/]+)", path):
            cart = self.carts.get(match[1])
            if cart is None:
                return error(404, "ResourceNotFound", f"The Resource with ID '{match[1]}' was not found.")
            if method == "GET":
                return ok(self._view(cart, expand))
            return self._update(cart, body, self._cart_action, expand)
        if path == "/payments" and method == "POST":
            return self._create_payment(body)
        if path == "/payments" and method == "GET":
            match = re.fullmatch(r'interfaceId="([^"]+)"', query.get("where", ""))
            found = [p for p in self.payments.values() if match and p.get("interfaceId") == match[1]]
            return ok({"results": found[:1], "count": len(found[:1])})
        if match := re.fullmatch(r"/payments/(key=)?([^/]+)", path):
            payment = self._payment(match[2], by_key=bool(match[1]))
            if payment is None:
                return error(404, "ResourceNotFound", f"The Resource with ID '{match[2]}' was not found.")
            if method == "GET":
                return ok(payment)
            return self._update(payment, body, self._payment_action, False)
        if path == "/orders" and method == "POST":
            return self._create_order(body, expand)
        if path == "/orders" and method == "GET":
            match = re.fullmatch(r'cart\(id="([^"]+)"\)', query.get("where", ""))
            found = [o for o in self.orders.values() if match and o["cart"]["id"] == match[1]]
            return ok({"results": [self._view(o, expand) for o in found[:1]], "count": len(found[:1])})
        if match := re.fullmatch(r"/orders/([^/]+)", path):
            order = self.orders.get(match[1])
            if order is None:
                return error(404, "ResourceNotFound", "not found")
            if method == "GET":
                return ok(self._view(order, expand))
            return self._update(order, body, self._order_action, expand)
        if path == "/custom-objects" and method == "POST":
            return self._put_object(body)
        if match := re.fullmatch(r"/custom-objects/([^/]+)/([^/]+)", path):
            stored = self.objects.get((match[1], match[2]))
            return ok(stored) if stored else error(404, "ResourceNotFound", "not found")
        if match := re.fullmatch(r"/custom-objects/([^/]+)", path):
            field, _, direction = query.get("sort", "createdAt asc").partition(" ")
            found = sorted((o for (c, _), o in self.objects.items() if c == match[1]), key=lambda o: o[field],
                           reverse=direction == "desc")
            if keys := re.fullmatch(r"key in \((.*)\)", query.get("where", "")):
                wanted = {json.loads(k) for k in keys[1].split(", ")}
                found = [o for o in found if o["key"] in wanted]
            return ok({"results": found[: int(query.get("limit", 20))]})
        if path == "/customers" and method == "POST":
            return self._create_customer(body)
        if match := re.fullmatch(r"/customers/([^/]+)", path):
            customer = self.customers.get(match[1])
            if customer is None:
                return error(404, "ResourceNotFound", f"The Resource with ID '{match[1]}' was not found.")
            return ok(customer) if method == "GET" else self._update(customer, body, self._customer_action, False)
        if path.startswith("/payment-methods"):
            return self._payment_methods(method, path, query, body)
        if match := re.fullmatch(r"/types/([^/=]+)", path):
            stored = next((t for t in self.types.values() if t["id"] == match[1]), None)
            return ok(stored) if stored else error(404, "ResourceNotFound", "not found")
        if path == "/types" and method == "POST":
            if body["key"] in self.types:
                return error(400, "DuplicateField", "A duplicate value for the field 'key'.", field="key")
            self.types[body["key"]] = {**body, "id": str(uuid.uuid4()), "version": 1}
            return ok(self.types[body["key"]], 201)
        if match := re.fullmatch(r"/types/key=([^/]+)", path):
            stored = self.types.get(match[1])
            if stored is None:
                return error(404, "ResourceNotFound", "not found")
            if method == "GET":
                return ok(stored)
            if method == "DELETE":
                if int(query["version"]) != stored["version"]:
                    return self._conflict(stored)
                del self.types[match[1]]
                return ok(stored)
            return self._update(stored, body, self._type_action, False)
        return error(400, "InvalidOperation", f"The fake does not know {method} {path}.")

    # -- resources -------------------------------------------------------------------

    @staticmethod
    def _payment_ids(resource: dict[str, Any]) -> list[str]:
        return [ref["id"] for ref in resource["paymentInfo"]["payments"]]

    def _view(self, resource: dict[str, Any], expand: bool) -> dict[str, Any]:
        view = copy.deepcopy(resource)
        if expand:
            view["paymentInfo"]["payments"] = [
                {**ref, "obj": copy.deepcopy(self.payments[ref["id"]])} for ref in view["paymentInfo"]["payments"]]
        return view

    def _payment(self, ref: str, *, by_key: bool) -> dict[str, Any] | None:
        if by_key:
            return next((p for p in self.payments.values() if p.get("key") == ref), None)
        return self.payments.get(ref)

    @staticmethod
    def _conflict(resource: dict[str, Any]) -> Answer:
        return error(409, "ConcurrentModification",
                     f"Object {resource['id']} has a different version than expected. Actual: {resource['version']}.",
                     currentVersion=resource["version"])

    def _update(self, resource: dict[str, Any], body: dict[str, Any], apply: Callable[..., Answer | None],
                expand: bool) -> Answer:
        if body.get("version") != resource["version"]:
            return self._conflict(resource)
        draft = copy.deepcopy(resource)
        for action in body["actions"]:
            refused = apply(draft, action)
            if refused is not None:
                return refused
        draft["version"] += 1
        resource.clear()
        resource.update(draft)
        return ok(self._view(resource, expand))

    def _cart_action(self, cart: dict[str, Any], action: dict[str, Any]) -> Answer | None:
        if action["action"] == "addPayment":
            cart["paymentInfo"]["payments"].append({"typeId": "payment", "id": action["payment"]["id"]})
        elif action["action"] == "setShippingAddress":
            cart["shippingAddress"] = action["address"]
        else:
            return error(400, "InvalidInput", f"Unknown action {action['action']}")
        return None

    def _payment_action(self, payment: dict[str, Any], action: dict[str, Any]) -> Answer | None:
        kind = action["action"]
        if kind == "addTransaction":
            payment["transactions"].append({"id": str(uuid.uuid4()), **action["transaction"]})
        elif kind == "changeTransactionState":
            [transaction] = [t for t in payment["transactions"] if t["id"] == action["transactionId"]]
            transaction["state"] = action["state"]
        elif kind == "setInterfaceId":
            payment["interfaceId"] = action["interfaceId"]
        elif kind == "setMethodInfoMethod":
            payment["paymentMethodInfo"]["method"] = action["method"]
        elif kind == "setCustomField":
            if "custom" not in payment:
                return error(400, "InvalidOperation", "The resource has no custom type.")
            payment["custom"]["fields"][action["name"]] = action["value"]
        else:
            return error(400, "InvalidInput", f"Unknown action {kind}")
        return None

    @staticmethod
    def _order_action(order: dict[str, Any], action: dict[str, Any]) -> Answer | None:
        if action["action"] != "changePaymentState":
            return error(400, "InvalidInput", f"Unknown action {action['action']}")
        order["paymentState"] = action["paymentState"]
        return None

    @staticmethod
    def _type_action(stored: dict[str, Any], action: dict[str, Any]) -> Answer | None:
        stored["fieldDefinitions"].append(action["fieldDefinition"])
        return None

    def _create_payment(self, body: dict[str, Any]) -> Answer:
        if body.get("key") and self._payment(body["key"], by_key=True) is not None:
            return error(400, "DuplicateField", f"A duplicate value '\"{body['key']}\"' exists for field 'key'.",
                         field="key")
        custom = body.get("custom")
        if custom and custom["type"]["key"] not in self.types:
            return error(400, "ReferencedResourceNotFound", "The referenced type was not found.", typeId="type")
        payment_id = str(uuid.uuid4())
        payment = {"id": payment_id, "version": 1, "createdAt": _now(), **copy.deepcopy(body)}
        payment["paymentMethodInfo"] = dict(payment.get("paymentMethodInfo") or {})
        payment["transactions"] = [{"id": str(uuid.uuid4()), **t} for t in body.get("transactions", [])]
        if custom:
            payment["custom"] = {"type": {"typeId": "type", "id": self.types[custom["type"]["key"]]["id"]},
                                 "fields": custom["fields"]}
        self.payments[payment_id] = payment
        return ok(payment, 201)

    def _create_customer(self, body: dict[str, Any]) -> Answer:
        if any(c["email"].lower() == body["email"].lower() for c in self.customers.values()):
            return error(400, "DuplicateField", "There is already an existing customer with the provided email.",
                         field="email")
        customer_id = str(uuid.uuid4())
        customer = {"id": customer_id, "version": 1, "createdAt": _now(), "addresses": [], **copy.deepcopy(body)}
        self.customers[customer_id] = customer
        return ok({"customer": customer}, 201)

    def _customer_action(self, customer: dict[str, Any], action: dict[str, Any]) -> Answer | None:
        if action["action"] == "setCustomType":
            stored = self.types.get(action["type"]["key"])
            if stored is None:
                return error(400, "ReferencedResourceNotFound", "The referenced type was not found.", typeId="type")
            customer["custom"] = {"type": {"typeId": "type", "id": stored["id"]}, "fields": dict(action["fields"])}
        elif action["action"] == "setCustomField" and "custom" in customer:
            customer["custom"]["fields"][action["name"]] = action["value"]
        else:
            return error(400, "InvalidOperation", f"Cannot apply {action['action']}.")
        return None

    # -- Payment Methods API (docs.commercetools.com/api/projects/payment-methods) ----------

    def _payment_methods(self, method: str, path: str, query: dict[str, str], body: Any) -> Answer:
        if path == "/payment-methods" and method == "POST":
            return self._create_payment_method(body)
        if path == "/payment-methods" and method == "GET":
            found = [m for m in self.payment_methods.values() if _where(query.get("where", ""), m)]
            field, _, direction = query.get("sort", "createdAt asc").partition(" ")
            found.sort(key=lambda m: m[field], reverse=direction == "desc")
            page = found[: int(query.get("limit", 20))]
            return ok({"limit": int(query.get("limit", 20)), "offset": 0, "count": len(page), "total": len(found),
                       "results": copy.deepcopy(page)})
        match = re.fullmatch(r"/payment-methods/(key=)?([^/]+)", path)
        stored = None if match is None else next(
            (m for m in self.payment_methods.values() if m.get("key" if match[1] else "id") == match[2]), None)
        if stored is None:
            return error(404, "ResourceNotFound", f"The Resource with ID '{match[2] if match else path}' was not found.")
        if method == "GET":
            return ok(copy.deepcopy(stored))
        if method == "DELETE":
            if int(query.get("version", -1)) != stored["version"]:
                return self._conflict(stored)
            del self.payment_methods[stored["id"]]
            return ok(stored)
        return error(400, "InvalidOperation", "The fake updates no payment method.")

    def _create_payment_method(self, body: dict[str, Any]) -> Answer:
        if body.get("key") and any(m.get("key") == body["key"] for m in self.payment_methods.values()):
            return error(400, "DuplicateField", f"A duplicate value '\"{body['key']}\"' exists for field 'key'.",
                         field="key")
        customer = body.get("customer")
        if customer and customer.get("id") not in self.customers:
            return error(400, "ReferencedResourceNotFound", "The referenced customer was not found.",
                         typeId="customer", id=customer.get("id"))
        method_id = str(uuid.uuid4())
        stored = {"id": method_id, "version": 1, "createdAt": _now(), "lastModifiedAt": _now(),
                  "paymentMethodStatus": "Active", "default": False, **copy.deepcopy(body)}
        if customer:
            stored["customer"] = {"typeId": "customer", "id": customer["id"]}
        self.payment_methods[method_id] = stored
        return ok(stored, 201)

    def _create_order(self, body: dict[str, Any], expand: bool) -> Answer:
        cart = self.carts.get(body["cart"]["id"])
        if cart is None:
            return error(400, "ReferencedResourceNotFound", "cart not found")
        if cart["cartState"] == "Ordered":
            return error(400, "InvalidOperation", "The cart has already been ordered.")
        if body["version"] != cart["version"]:
            return self._conflict(cart)
        if any(o.get("orderNumber") == body.get("orderNumber") for o in self.orders.values()):
            return error(400, "DuplicateField", "orderNumber exists", field="orderNumber")
        order_id = str(uuid.uuid4())
        order = {key: copy.deepcopy(value) for key, value in cart.items()
                 if key in ("lineItems", "totalPrice", "taxedPrice", "shippingInfo", "customerEmail", "customerId",
                            "shippingAddress", "billingAddress", "paymentInfo")}
        order.update(id=order_id, version=1, createdAt=_now(), cart={"typeId": "cart", "id": cart["id"]},
                     orderNumber=body.get("orderNumber"), orderState=body.get("orderState", "Open"),
                     paymentState=body.get("paymentState"), shipmentState=body.get("shipmentState"))
        self.orders[order_id] = order
        cart["cartState"] = "Ordered"
        cart["version"] += 1
        return ok(self._view(order, expand), 201)

    def _put_object(self, body: dict[str, Any]) -> Answer:
        key = (body["container"], body["key"])
        stored = self.objects.get(key)
        if "version" in body and body["version"] != (stored["version"] if stored else 0):
            return error(409, "ConcurrentModification", "version mismatch",
                         currentVersion=stored["version"] if stored else 0)
        if stored is None:
            stored = {"id": str(uuid.uuid4()), "version": 0, "container": body["container"], "key": body["key"],
                      "createdAt": _now()}
            self.objects[key] = stored
        stored.update(value=body["value"], version=stored["version"] + 1, lastModifiedAt=_now())
        return ok(stored, 201 if stored["version"] == 1 else 200)


def _where(predicate: str, resource: dict[str, Any]) -> bool:
    """The part of commercetools' query predicates the connector sends: ``a="x"``,
    ``a(b="x")``, joined by ``and``."""
    for condition in filter(None, predicate.split(" and ")):
        match = re.fullmatch(r'(\w+)(?:\((\w+)=("(?:[^"\\]|\\.)*")\)|=("(?:[^"\\]|\\.)*"))', condition.strip())
        if match is None:
            raise AssertionError(f"the fake cannot evaluate {condition!r}")
        value = resource.get(match[1])
        if match[2]:
            value = value.get(match[2]) if isinstance(value, dict) else None
        if value != json.loads(match[3] or match[4]):
            return False
    return True


class FakeBackedPlatform(CommercetoolsPlatform):
    """The adapter under test, plus the set-up helpers the embedded store's tests call."""

    fake: FakeCommercetools

    def create_cart(self, *args: Any, **kwargs: Any) -> Any:
        return self.fake.create_cart(*args, **kwargs)

    def update_cart(self, *args: Any, **kwargs: Any) -> Any:
        return self.fake.update_cart(*args, **kwargs)

    def open_session(self, *args: Any, **kwargs: Any) -> Any:
        return self.fake.open_session(*args, **kwargs)

    def update_cart_customer(self, cart_id: str, customer_id: str) -> None:
        self.fake.carts[cart_id]["customerId"] = customer_id


@pytest.fixture
def commercetools(stripe_mock: responses.RequestsMock) -> FakeCommercetools:
    """The fake project, answering on the same `responses` mock as Stripe's pinned calls."""
    fake = FakeCommercetools().register(stripe_mock)
    fake.install_types()
    return fake


@pytest.fixture
def make_app(commercetools: FakeCommercetools) -> Iterator[Callable[..., Flask]]:
    """Build an app on the fake project, selected by configuration alone."""

    def factory(**config: Any) -> Flask:
        app = Flask("connector_test")
        app.config.update(TESTING=True, STRIPE_SECRET_KEY=SECRET_KEY, STRIPE_PUBLISHABLE_KEY="pk_test_connector",
                          PSP_STRIPE_MAX_NETWORK_RETRIES=0, CTP_JWKS_URL="https://auth.example.test/.well-known/jwks.json",
                          CTP_JWT_ISSUER="https://auth.example.test", **CT_CONFIG)
        app.config.update(config)
        PSPConnector(app)
        state = app.extensions["psp_connector"]
        assert type(state.platform) is CommercetoolsPlatform and state.clients is None
        state.platform = FakeBackedPlatform(state.platform.client, retry_backoff=0,
                                            payment_interface=state.settings["PAYMENT_INTERFACE"])
        state.platform.fake = commercetools
        state.clients = commercetools.client_registry()
        return app

    yield factory


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()

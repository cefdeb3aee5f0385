"""Hantera's HTTP API pinned with ``responses``: exact URLs, bodies and bearer tokens.

Callbacks keep a little state (the carts, the payments created) so that a whole flow
can run; every request is recorded and checked by the tests.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import responses

API = "https://core.hantera.test"
CLIENT_ID, CLIENT_SECRET, JOB_SECRET = "psp-stripe", "hantera-client-secret", "job-token-4f1c"
TOKEN = "hantera-access-token-1"

Reply = tuple[int, dict[str, str], str]


class FakeHantera:
    """Hantera's token endpoint, cart ingress, graph and actor messages."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.carts: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, str] = {}  # externalReference → paymentId
        self.messages: list[tuple[str, str, list[dict[str, Any]]]] = []
        self.token_requests: list[dict[str, list[str]]] = []
        self.refuse_next: int | None = None
        mock.add_callback(responses.POST, f"{API}/oauth/token", callback=self._token)
        mock.add_callback(responses.GET, re.compile(rf"{API}/ingress/commerce/carts/[^/]+$"), callback=self._cart)
        mock.add_callback(responses.POST, f"{API}/resources/graph", callback=self._graph)
        mock.add_callback(responses.POST, re.compile(rf"{API}/resources/actors/\w+/[^/]+$"), callback=self._actor)

    def cart(self, cart_id: str, total: str, currency: str = "EUR", state: str = "open") -> None:
        """Add or change a cart; ``total`` in major units, as Hantera renders it."""
        self.carts[cart_id] = {"cartId": cart_id, "cartNumber": f"C-{cart_id}", "cartState": state,
                               "currencyCode": currency, "orderTotal": total, "email": "jane@example.test"}

    def sent(self, actor_type: str) -> list[tuple[str, list[dict[str, Any]]]]:
        """The messages sent to actors of ``actor_type``: (actor id, messages)."""
        return [(actor_id, body) for kind, actor_id, body in self.messages if kind == actor_type]

    # -- callbacks ------------------------------------------------------------------

    def _token(self, request: Any) -> Reply:
        self.token_requests.append(parse_qs(request.body))
        return 200, {}, json.dumps({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600})

    def _authorized(self, request: Any) -> bool:
        return request.headers.get("Authorization") == f"Bearer {TOKEN}"

    def _cart(self, request: Any) -> Reply:
        cart_id = request.url.rsplit("/", 1)[1]
        cart = self.carts.get(cart_id)
        if cart is None:
            return 200, {}, json.dumps({"errors": [{"code": "CART_NOT_FOUND", "message": "No such cart"}]})
        # orderTotal is written as a JSON number with its decimals, as Hantera sends it.
        return 200, {}, json.dumps(cart).replace(f'"orderTotal": "{cart["orderTotal"]}"',
                                                 f'"orderTotal": {cart["orderTotal"]}')

    def _graph(self, request: Any) -> Reply:
        assert self._authorized(request)
        query = json.loads(request.body)
        match = re.fullmatch(r"externalReference == '([^']+)'", query[0]["filter"])
        assert query[0]["edge"] == "payments" and match
        payment = self.payments.get(match.group(1))
        return 200, {}, json.dumps([{"nodes": [{"paymentId": payment}] if payment else []}])

    def _actor(self, request: Any) -> Reply:
        if not self._authorized(request):
            return 401, {}, json.dumps({"error": "invalid_token"})
        if self.refuse_next is not None:
            status, self.refuse_next = self.refuse_next, None
            return status, {}, json.dumps({"errors": [{"code": "UNAVAILABLE", "message": "Try later"}]})
        actor_type, actor_id = request.url.rsplit("/", 2)[1:]
        body = json.loads(request.body, parse_float=Decimal)
        self.messages.append((actor_type, actor_id, body))
        if actor_type == "payment" and actor_id == "new":
            reference = body[0]["body"]["externalReference"]
            if reference in self.payments:
                return 400, {}, json.dumps({"errors": [{"code": "DUPLICATE_EXTERNAL_REFERENCE",
                                                        "message": "externalReference must be unique"}]})
            self.payments[reference] = f"pay-{len(self.payments) + 1}"
            return 200, {}, json.dumps({"paths": [], "data": {"actorId": self.payments[reference]}, "preview": False})
        if actor_type == "ticket" and any(message["type"] == "complete" for message in body):
            self.carts[actor_id]["cartState"] = "completed"
        return 200, {}, json.dumps({"paths": [], "data": {}, "preview": False})

"""Hantera's HTTP API, as the Hantera PSP flow uses it.

Every fact about Hantera the connector relies on lives in this module (the README's
"Hantera: assumptions" lists the same). As Hantera documents them:

* token: ``POST {HANTERA_API_URL}/oauth/token``, ``grant_type=client_credentials`` with
  the client's id and secret in the form body;
* messages: ``POST /resources/actors/{type}/{id}`` with a JSON array of messages and a
  bearer token; the id ``new`` creates an actor;
* a payment is created with ``create`` (``providerKey``, ``currencyCode``,
  ``externalReference``, commands ``createAuthorization`` and
  ``generatePaymentNumberByPrefix``); ``externalReference`` is globally unique;
* a cart (ticket actor) is linked to its payment with ``applyCommands``
  ``createRelation`` (``relationKey: payments``) and then completed with ``complete``,
  which is a no-op on a completed cart;
* ``payment`` ``charge`` (``amount``, ``authorizationNumber``, ``transactionReference``)
  is sent after the provider approved the capture;
* the storefront's cart: ``GET /ingress/commerce/carts/{cartId}`` answers the rendered
  cart (``cartState`` open/completed/rejected, ``currencyCode``, ``orderTotal``,
  ``cartNumber``, ``email``), or ``{"errors": [...]}``.

Assumed where Hantera's documentation is silent:

1. Amounts (``orderTotal``, ``createAuthorization.amount``, ``charge.amount``, the
   capture job's ``amount``) are JSON numbers in major units of the currency.
2. The answer to ``payment``/``new`` names the new payment in ``data.actorId``; when it
   does not, the payment is looked up by its external reference.
3. Payments are found with a graph query
   ``[{"edge": "payments", "filter": "externalReference == '<id>'", "node": {"fields":
   ["paymentId"]}}]`` answered as ``[{"nodes": [{"paymentId": ...}]}]``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import requests

from flask_psp_connector.auth.oauth_client import ClientCredentialsHTTP, error_body
from flask_psp_connector.domain.money import Money, from_major
from flask_psp_connector.errors import InvalidOperation, PSPError, ResourceNotFound
from flask_psp_connector.gateways.hantera.port import HanteraAPIError, HanteraCart
from flask_psp_connector.platforms.commercetools.client import segment

#: The payment's providerKey in Hantera.
PROVIDER_KEY = "stripe"


class HanteraClient(ClientCredentialsHTTP):
    """Calls to one Hantera instance with the connector's IAM client.

    :param api_url: the instance's base URL, e.g. ``https://core.example.hantera.cloud``.
    """

    service = "Hantera"
    api_error = HanteraAPIError

    def __init__(self, *, api_url: str, client_id: str, client_secret: str, scope: str = "",
                 timeout: float = 10) -> None:
        self.api_url = api_url.rstrip("/")
        super().__init__(token_url=f"{self.api_url}/oauth/token", client_id=client_id,
                         client_secret=client_secret, scope=scope, timeout=timeout,
                         auth_method="client_secret_post")

    def __repr__(self) -> str:
        return f"<HanteraClient {self.api_url}>"

    # -- reads ---------------------------------------------------------------------

    def cart(self, cart_id: str) -> HanteraCart:
        """The cart ``cart_id`` as the storefront sees it.

        :raises ResourceNotFound: when Hantera knows no such cart.
        """
        body = self._decode(self.call("GET", f"{self.api_url}/ingress/commerce/carts/{segment(cart_id)}"))
        if not isinstance(body, dict):
            raise self.malformed()
        if body.get("errors"):
            raise ResourceNotFound(f"Hantera has no cart {cart_id}.", code="cart_not_found")
        try:
            return HanteraCart(
                cart_id=str(body.get("cartId") or cart_id),
                state=str(body["cartState"]),
                total=from_major(body["orderTotal"], str(body["currencyCode"])),
                cart_number=str(body.get("cartNumber") or ""),
                email=str(body.get("email") or ""),
            )
        except (KeyError, ValueError, InvalidOperation):
            raise self.malformed() from None

    def find_payment(self, external_reference: str) -> str | None:
        """The id of the payment whose external reference is ``external_reference``, if any."""
        query = [{"edge": "payments", "filter": f"externalReference == {_quoted(external_reference)}",
                  "node": {"fields": ["paymentId"]}}]
        body = self._decode(self.call("POST", f"{self.api_url}/resources/graph", data=dumps(query),
                                      headers=_JSON_HEADERS))
        try:
            nodes = body[0]["nodes"]
        except (KeyError, IndexError, TypeError):
            raise self.malformed() from None
        return str(nodes[0]["paymentId"]) if nodes and isinstance(nodes[0], dict) and nodes[0].get("paymentId") else None

    # -- messages ------------------------------------------------------------------

    def create_payment(self, external_reference: str, authorized: Money, number_prefix: str) -> str | None:
        """Create the payment with a successful authorization of ``authorized``; return its
        id when Hantera's answer names it.

        :raises HanteraAPIError: when Hantera refuses, e.g. because a payment with this
            external reference exists already.
        """
        body = self._send_messages("payment", "new", [{"type": "create", "body": {
            "providerKey": PROVIDER_KEY,
            "currencyCode": authorized.currency_code,
            "externalReference": external_reference,
            "commands": [
                {"type": "createAuthorization", "authorizationNumber": external_reference,
                 "amount": authorized.to_major(), "authorizationState": "successful"},
                {"type": "generatePaymentNumberByPrefix", "prefix": number_prefix},
            ],
        }}])
        data = body.get("data") if isinstance(body, dict) else None
        actor_id = data.get("actorId") if isinstance(data, dict) else None
        return str(actor_id) if actor_id else None

    def complete_cart(self, cart_id: str, payment_id: str) -> None:
        """Link the payment to the cart and complete the cart, in one batch."""
        self._send_messages("ticket", cart_id, [
            {"type": "applyCommands", "body": {"commands": [
                {"type": "createRelation", "relationKey": "payments", "nodeId": payment_id}]}},
            {"type": "complete"},
        ])

    def charge(self, payment_id: str, amount: Money, authorization_number: str, transaction_reference: str) -> None:
        """Record on the payment a capture the provider approved."""
        self._send_messages("payment", payment_id, [{"type": "charge", "body": {
            "amount": amount.to_major(), "authorizationNumber": authorization_number,
            "transactionReference": transaction_reference}}])

    # -- transport -----------------------------------------------------------------

    def _send_messages(self, actor_type: str, actor_id: str, messages: list[dict[str, Any]]) -> Any:
        url = f"{self.api_url}/resources/actors/{segment(actor_type)}/{segment(actor_id)}"
        return self._decode(self.call("POST", url, data=dumps(messages), headers=_JSON_HEADERS))

    def _decode(self, response: requests.Response) -> Any:
        """The answer's JSON with numbers as :class:`~decimal.Decimal` (no float ever)."""
        if not response.content:
            return {}
        try:
            return json.loads(response.content, parse_float=Decimal)
        except ValueError:
            raise self.malformed() from None

    def error_for(self, response: requests.Response) -> PSPError:
        """The connector's error for a refusal: Hantera's message, code and status."""
        body = error_body(response)
        errors = body.get("errors") if isinstance(body.get("errors"), list) else []
        first = errors[0] if errors and isinstance(errors[0], dict) else {}
        message = str(first.get("message") or body.get("message") or f"Hantera answered {response.status_code}.")
        if response.status_code == 404:
            return ResourceNotFound(message, code=self.error_code(response))
        return HanteraAPIError(message, code=self.error_code(response), status=response.status_code)


_JSON_HEADERS = {"Content-Type": "application/json"}


def _quoted(value: str) -> str:
    """``value`` as a quoted string literal of a graph filter."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def dumps(body: Any) -> bytes:
    """JSON with :class:`~decimal.Decimal` amounts written as exact numbers."""
    return json.dumps(body, default=_number, separators=(",", ":")).encode()


def _number(value: Any) -> int | float:
    if not isinstance(value, Decimal):
        raise TypeError(f"{type(value).__name__} is not JSON serializable")
    if value == value.to_integral_value():
        return int(value)
    # JSON has one number type: a double whose shortest repr is exactly this decimal
    # (true for every amount of up to 15 significant digits; checked, never assumed).
    number = float(value)
    if Decimal(repr(number)) != value:
        raise InvalidOperation(f"{value} cannot be written exactly as a JSON number.")
    return number

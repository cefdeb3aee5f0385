"""The Stripe adapter: :class:`StripeGateway` implements :class:`~flask_psp_connector.ports.StripePort`.

Only this package (``flask_psp_connector.stripe``) imports ``stripe``. Every call goes
through :class:`StripeGateway`, which pins the API version, applies timeouts and network
retries, and turns ``stripe.*`` exceptions into
:class:`~flask_psp_connector.errors.StripeAPIError` (see :mod:`.errors`). Results are
plain dicts, so no Stripe object leaks into the rest of the connector. Webhook signatures
are checked in :mod:`.signature`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

import requests
import stripe

from flask_psp_connector.http.outbound import EnvironmentSettings, untrusting
from flask_psp_connector.observability import telemetry
from flask_psp_connector.stripe.errors import redact_stripe_logs, translated_errors
from flask_psp_connector.version import __version__

if TYPE_CHECKING:
    from stripe.params import (
        CustomerCreateParams,
        CustomerSessionCreateParams,
        DisputeListParams,
        PaymentIntentCaptureParams,
        PaymentIntentCreateParams,
        RefundCreateParams,
        WebhookEndpointCreateParams,
        WebhookEndpointUpdateParams,
    )

#: The Stripe API version every request is made with.
STRIPE_API_VERSION = "2026-10-28.endive"


def _requests_client(api_base: str, timeout: int) -> stripe.HTTPClient:
    """Stripe's requests client on one pooled session, its proxy read from the environment once."""
    proxies = EnvironmentSettings()(api_base)["proxies"]
    return stripe.RequestsClient(timeout=timeout, session=untrusting(requests.Session()), proxy=proxies or None)


@telemetry.instrumented("stripe")
class StripeGateway:
    """Thin, typed access to the Stripe calls the connector makes (each one timed and traced).

    :param secret_key: the account's secret key.
    :param api_base: base URL of the API, to point at a local Stripe double.
    :param timeout: seconds before a call times out.
    :param max_network_retries: retries on network errors; safe thanks to idempotency keys.
    :param payment_method_types: explicit types; empty means automatic payment methods.
    :param http_client: the HTTP layer to use instead of ``requests`` with ``timeout``.
    """

    def __init__(
        self,
        secret_key: str,
        *,
        api_base: str | None = None,
        timeout: int = 30,
        max_network_retries: int = 2,
        payment_method_types: tuple[str, ...] = (),
        http_client: stripe.HTTPClient | None = None,
    ) -> None:
        # stripe-python keeps its app info and loggers per process: set them when a gateway
        # is made, never merely because this module was imported.
        stripe.set_app_info("flask-psp-connector", version=__version__,
                            url="https://pypi.org/project/flask-psp-connector/")
        redact_stripe_logs()
        self._client = stripe.StripeClient(
            secret_key,
            stripe_version=STRIPE_API_VERSION,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=max_network_retries,
            http_client=http_client or _requests_client(api_base or "https://api.stripe.com", timeout),
        )
        self._payment_method_types = payment_method_types

    def create_payment_intent(
        self,
        *,
        amount: int,
        currency: str,
        capture_method: str,
        metadata: dict[str, str],
        idempotency_key: str,
        multicapture: bool = False,
        customer: str | None = None,
        setup_future_usage: str | None = None,
        tax_calculation: str | None = None,
    ) -> dict[str, Any]:
        """Create a PaymentIntent; ``amount`` is already in Stripe's unit.

        ``tax_calculation`` (a Stripe Tax calculation id) is hooked in as
        ``hooks[inputs][tax][calculation]``, so the payment records the tax transaction.
        """
        params: dict[str, Any] = {
            "amount": amount,
            "currency": currency.lower(),
            "capture_method": capture_method,
            "metadata": metadata,
        }
        if self._payment_method_types:
            params["payment_method_types"] = list(self._payment_method_types)
        else:
            params["automatic_payment_methods"] = {"enabled": True}
        if multicapture:
            params["payment_method_options"] = {"card": {"request_multicapture": "if_available"}}
        if customer:
            params["customer"] = customer
        if setup_future_usage:
            params["setup_future_usage"] = setup_future_usage
        if tax_calculation:
            params["hooks"] = {"inputs": {"tax": {"calculation": tax_calculation}}}
        return self._plain("post", "/v1/payment_intents", params, idempotency_key=idempotency_key)

    def retrieve_payment_intent(self, payment_intent_id: str) -> dict[str, Any]:
        """Read a PaymentIntent as Stripe holds it now."""
        return self._plain("get", f"/v1/payment_intents/{quote(payment_intent_id, safe='')}", {})

    def _plain(self, method: str, path: str, params: dict[str, Any], **options: Any) -> dict[str, Any]:
        # The checkout's own calls (/payments, /confirmPayments) take Stripe's answer as
        # parsed JSON: building StripeObjects only to turn them back into dicts was about a
        # tenth of the CPU of a checkout request. Same client, retries, version and errors.
        with translated_errors():
            data = self._client.raw_request(method, path, **params, **options).data
            if not isinstance(data, dict):
                raise stripe.APIError("Stripe sent a response the connector cannot read.")
        return data

    def capture_payment_intent(
        self, payment_intent_id: str, amount: int, *, final: bool, idempotency_key: str
    ) -> dict[str, Any]:
        """Capture ``amount``; ``final=False`` keeps the rest capturable (multicapture)."""
        params: dict[str, Any] = {"amount_to_capture": amount}
        if not final:
            params["final_capture"] = False
        with translated_errors():
            intent = self._client.v1.payment_intents.capture(
                payment_intent_id, params=cast("PaymentIntentCaptureParams", params), options={"idempotency_key": idempotency_key}
            )
        return intent.to_dict()

    def cancel_payment_intent(self, payment_intent_id: str, *, idempotency_key: str) -> dict[str, Any]:
        """Cancel a PaymentIntent that has not been captured."""
        with translated_errors():
            intent = self._client.v1.payment_intents.cancel(
                payment_intent_id, options={"idempotency_key": idempotency_key}
            )
        return intent.to_dict()

    def create_refund(
        self, payment_intent_id: str, amount: int, *, idempotency_key: str, metadata: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Refund ``amount`` of a captured PaymentIntent."""
        params: dict[str, Any] = {"payment_intent": payment_intent_id, "amount": amount}
        if metadata:
            params["metadata"] = metadata
        with translated_errors():
            refund = self._client.v1.refunds.create(params=cast("RefundCreateParams", params),
                                                    options={"idempotency_key": idempotency_key})
        return refund.to_dict()

    def authorize_payment_method(
        self,
        *,
        amount: int,
        currency: str,
        payment_method: str,
        capture_method: str,
        metadata: dict[str, str],
        idempotency_key: str,
        return_url: str | None = None,
        customer: str | None = None,
    ) -> dict[str, Any]:
        """Create and confirm a PaymentIntent for ``payment_method`` in one call.

        A card decline is an answer, not an error: when Stripe's error carries the declined
        PaymentIntent (``requires_payment_method`` with ``last_payment_error``), it is returned.
        Without ``return_url``, automatic payment methods exclude redirect-based ones.
        """
        params: dict[str, Any] = {
            "amount": amount,
            "currency": currency.lower(),
            "capture_method": capture_method,
            "payment_method": payment_method,
            "confirm": True,
            "metadata": metadata,
        }
        if self._payment_method_types:
            params["payment_method_types"] = list(self._payment_method_types)
        else:
            params["automatic_payment_methods"] = {"enabled": True, **({} if return_url else {"allow_redirects": "never"})}
        if return_url:
            params["return_url"] = return_url
        if customer:
            params["customer"] = customer
        with translated_errors():
            try:
                intent = self._client.v1.payment_intents.create(
                    params=cast("PaymentIntentCreateParams", params), options={"idempotency_key": idempotency_key}
                )
            except stripe.CardError as exc:
                declined = getattr(exc.error, "payment_intent", None)
                if not declined:
                    raise
                return declined.to_dict() if hasattr(declined, "to_dict") else dict(declined)
        return intent.to_dict()

    def update_payment_intent_metadata(
        self, payment_intent_id: str, metadata: dict[str, str], *, idempotency_key: str
    ) -> dict[str, Any]:
        """Add ``metadata`` keys to a PaymentIntent (others are kept)."""
        with translated_errors():
            intent = self._client.v1.payment_intents.update(
                payment_intent_id, params={"metadata": metadata}, options={"idempotency_key": idempotency_key}
            )
        return intent.to_dict()

    def update_payment_intent_amount(
        self, payment_intent_id: str, amount: int, currency: str, *, idempotency_key: str
    ) -> dict[str, Any]:
        """Change the amount (Stripe's unit) of a PaymentIntent not confirmed yet."""
        with translated_errors():
            intent = self._client.v1.payment_intents.update(
                payment_intent_id, params={"amount": amount, "currency": currency.lower()},
                options={"idempotency_key": idempotency_key},
            )
        return intent.to_dict()

    def confirm_payment_intent(self, payment_intent_id: str, *, idempotency_key: str) -> dict[str, Any]:
        """Confirm a PaymentIntent that already has its payment method."""
        with translated_errors():
            intent = self._client.v1.payment_intents.confirm(
                payment_intent_id, options={"idempotency_key": idempotency_key}
            )
        return intent.to_dict()

    def create_customer(
        self, *, email: str | None, metadata: dict[str, str], idempotency_key: str, name: str | None = None
    ) -> dict[str, Any]:
        """Create a Customer."""
        params: dict[str, Any] = {"metadata": metadata}
        if email:
            params["email"] = email
        if name:
            params["name"] = name
        with translated_errors():
            customer = self._client.v1.customers.create(params=cast("CustomerCreateParams", params),
                                                        options={"idempotency_key": idempotency_key})
        return customer.to_dict()

    def retrieve_customer(self, customer_id: str) -> dict[str, Any]:
        """Read a Customer; a deleted one comes back as ``{"id": ..., "deleted": True}``."""
        with translated_errors():
            return self._client.v1.customers.retrieve(customer_id).to_dict()

    def search_customers(self, query: str, *, limit: int = 10) -> list[dict[str, Any]]:
        """Customers matching a Stripe search ``query`` (first page only)."""
        with translated_errors():
            page = self._client.v1.customers.search(params={"query": query, "limit": limit})
        return [customer.to_dict() for customer in page.data]

    def create_ephemeral_key(self, customer_id: str) -> dict[str, Any]:
        """An ephemeral key for the Customer, made with the pinned API version (Stripe requires one)."""
        with translated_errors():
            key = self._client.v1.ephemeral_keys.create(
                params={"customer": customer_id}, options={"stripe_version": STRIPE_API_VERSION}
            )
        return key.to_dict()

    def create_customer_session(self, customer_id: str, features: Mapping[str, Any]) -> dict[str, Any]:
        """A CustomerSession enabling the Payment Element with ``features`` (saved methods)."""
        params = {"customer": customer_id,
                  "components": {"payment_element": {"enabled": True, "features": dict(features)}}}
        with translated_errors():
            return self._client.v1.customer_sessions.create(params=cast("CustomerSessionCreateParams", params)).to_dict()

    def retrieve_payment_method(self, payment_method_id: str) -> dict[str, Any]:
        """Read a PaymentMethod (type, card brand and last digits, customer, allow_redisplay)."""
        with translated_errors():
            return self._client.v1.payment_methods.retrieve(payment_method_id).to_dict()

    def detach_payment_method(self, payment_method_id: str) -> dict[str, Any]:
        """Detach a PaymentMethod from its Customer; it can no longer be used."""
        with translated_errors():
            return self._client.v1.payment_methods.detach(payment_method_id).to_dict()

    def attach_payment_method(self, payment_method_id: str, customer_id: str, *, idempotency_key: str) -> dict[str, Any]:
        """Attach a PaymentMethod to a Customer, for later payments."""
        with translated_errors():
            method = self._client.v1.payment_methods.attach(
                payment_method_id, params={"customer": customer_id}, options={"idempotency_key": idempotency_key}
            )
        return method.to_dict()

    def retrieve_charge(self, charge: str) -> dict[str, Any]:
        """Read a Charge (for its shipping and billing details)."""
        with translated_errors():
            return self._client.v1.charges.retrieve(charge).to_dict()

    def list_balance_transactions(self, source: str) -> list[dict[str, Any]]:
        """Every balance transaction of a charge (one per capture with multicapture), newest first."""
        with translated_errors():
            page = self._client.v1.balance_transactions.list(params={"source": source, "limit": 100})
            return [transaction.to_dict() for transaction in page.auto_paging_iter()]

    def list_refunds(self, charge: str) -> list[dict[str, Any]]:
        """Every refund of a charge (a ``charge.refunded`` event no longer embeds them)."""
        with translated_errors():
            page = self._client.v1.refunds.list(params={"charge": charge, "limit": 100})
            return [refund.to_dict() for refund in page.auto_paging_iter()]

    def retrieve_event(self, event_id: str) -> dict[str, Any]:
        """Read an event again (``flask psp events replay``)."""
        with translated_errors():
            return self._client.v1.events.retrieve(event_id).to_dict()

    def list_payment_intents(self, *, created_since: int) -> list[dict[str, Any]]:
        """PaymentIntents created at or after a Unix time, newest first (reconciliation)."""
        with translated_errors():
            page = self._client.v1.payment_intents.list(params={"created": {"gte": created_since}, "limit": 100})
            return [intent.to_dict() for intent in page.auto_paging_iter()]

    def list_refunds_since(self, created_since: int) -> list[dict[str, Any]]:
        """Refunds created at or after a Unix time (reconciliation)."""
        with translated_errors():
            page = self._client.v1.refunds.list(params={"created": {"gte": created_since}, "limit": 100})
            return [refund.to_dict() for refund in page.auto_paging_iter()]

    def list_disputes(self, *, charge: str | None = None, created_since: int | None = None) -> list[dict[str, Any]]:
        """Disputes of a charge, or created at or after a Unix time (reconciliation)."""
        params: dict[str, Any] = {"limit": 100}
        if charge:
            params["charge"] = charge
        if created_since is not None:
            params["created"] = {"gte": created_since}
        with translated_errors():
            page = self._client.v1.disputes.list(params=cast("DisputeListParams", params))
            return [dispute.to_dict() for dispute in page.auto_paging_iter()]

    def list_capture_transactions(self, *, created_since: int) -> list[dict[str, Any]]:
        """Balance transactions of captured money (type ``charge``) since a Unix time, each
        with its charge expanded in ``source`` (reconciliation)."""
        with translated_errors():
            page = self._client.v1.balance_transactions.list(
                params={"type": "charge", "created": {"gte": created_since}, "limit": 100, "expand": ["data.source"]})
            return [transaction.to_dict() for transaction in page.auto_paging_iter()]

    def retrieve_webhook_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        """Read a webhook endpoint."""
        with translated_errors():
            return self._client.v1.webhook_endpoints.retrieve(endpoint_id).to_dict()

    def update_webhook_endpoint(self, endpoint_id: str, **params: Any) -> dict[str, Any]:
        """Change a webhook endpoint's url, events or disabled flag."""
        with translated_errors():
            endpoint = self._client.v1.webhook_endpoints.update(endpoint_id, params=cast("WebhookEndpointUpdateParams", params))
        return endpoint.to_dict()

    def create_webhook_endpoint(self, url: str, events: Sequence[str], *, metadata: dict[str, str]) -> dict[str, Any]:
        """Create a webhook endpoint; the answer holds its signing secret, shown only now."""
        params = {"url": url, "enabled_events": list(events), "api_version": STRIPE_API_VERSION, "metadata": metadata}
        with translated_errors():
            endpoint = self._client.v1.webhook_endpoints.create(params=cast("WebhookEndpointCreateParams", params))
        return endpoint.to_dict()

    def list_webhook_endpoints(self) -> list[dict[str, Any]]:
        """Every webhook endpoint of the account."""
        with translated_errors():
            page = self._client.v1.webhook_endpoints.list(params={"limit": 100})
            return [endpoint.to_dict() for endpoint in page.auto_paging_iter()]

    def delete_webhook_endpoint(self, endpoint_id: str) -> None:
        """Delete a webhook endpoint."""
        with translated_errors():
            self._client.v1.webhook_endpoints.delete(endpoint_id)

    def ping(self) -> None:
        """Make the cheapest authenticated call; raises :class:`StripeAPIError` on failure."""
        with translated_errors():
            self._client.v1.customers.list(params={"limit": 1})

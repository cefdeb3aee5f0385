"""The Stripe adapter: the one module that imports ``stripe``.

Every call goes through :class:`StripeGateway`, which pins the API version, applies
timeouts and network retries, and turns ``stripe.*`` exceptions into
:class:`~flask_psp_connector.errors.StripeAPIError`. Results are plain dicts, so no
Stripe object leaks into the rest of the connector.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import stripe

from . import __version__
from .errors import StripeAPIError, redact

#: The Stripe API version every request is made with.
STRIPE_API_VERSION = "2026-10-28.endive"

stripe.set_app_info("flask-psp-connector", version=__version__, url="https://pypi.org/project/flask-psp-connector/")


class _RedactSecrets(logging.Filter):
    """stripe-python logs Stripe's error messages, which may quote a key: mask them."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), ()
        return True


logging.getLogger("stripe").addFilter(_RedactSecrets())


@contextmanager
def _translated_errors() -> Iterator[None]:
    try:
        yield
    except stripe.StripeError as exc:
        error = exc.error
        transient = isinstance(exc, (stripe.APIConnectionError, stripe.RateLimitError)) or (
            exc.http_status is not None and exc.http_status >= 500
        )
        raise StripeAPIError(
            exc.user_message or "Stripe could not process the request.",
            code=getattr(error, "code", None) or exc.code,
            status=exc.http_status or 502,
            decline_code=getattr(error, "decline_code", None),
            transient=transient,
        ) from None


def charge_id(payment_intent: dict[str, Any]) -> str | None:
    """Return ``latest_charge`` as an id, whether Stripe sent an id or an expanded object."""
    charge = payment_intent.get("latest_charge")
    if isinstance(charge, dict):
        return charge.get("id")
    return charge


class StripeGateway:
    """Thin, typed access to the Stripe calls the connector makes.

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
        self._client = stripe.StripeClient(
            secret_key,
            stripe_version=STRIPE_API_VERSION,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=max_network_retries,
            http_client=http_client or stripe.RequestsClient(timeout=timeout),
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
    ) -> dict[str, Any]:
        """Create a PaymentIntent; ``amount`` is already in Stripe's unit."""
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
        with _translated_errors():
            intent = self._client.v1.payment_intents.create(
                params=params, options={"idempotency_key": idempotency_key}
            )
        return intent.to_dict()

    def retrieve_payment_intent(self, payment_intent_id: str) -> dict[str, Any]:
        """Read a PaymentIntent as Stripe holds it now."""
        with _translated_errors():
            return self._client.v1.payment_intents.retrieve(payment_intent_id).to_dict()

    def capture_payment_intent(
        self, payment_intent_id: str, amount: int, *, final: bool, idempotency_key: str
    ) -> dict[str, Any]:
        """Capture ``amount``; ``final=False`` keeps the rest capturable (multicapture)."""
        params: dict[str, Any] = {"amount_to_capture": amount}
        if not final:
            params["final_capture"] = False
        with _translated_errors():
            intent = self._client.v1.payment_intents.capture(
                payment_intent_id, params=params, options={"idempotency_key": idempotency_key}
            )
        return intent.to_dict()

    def cancel_payment_intent(self, payment_intent_id: str, *, idempotency_key: str) -> dict[str, Any]:
        """Cancel a PaymentIntent that has not been captured."""
        with _translated_errors():
            intent = self._client.v1.payment_intents.cancel(
                payment_intent_id, options={"idempotency_key": idempotency_key}
            )
        return intent.to_dict()

    def create_refund(self, payment_intent_id: str, amount: int, *, idempotency_key: str) -> dict[str, Any]:
        """Refund ``amount`` of a captured PaymentIntent."""
        with _translated_errors():
            refund = self._client.v1.refunds.create(
                params={"payment_intent": payment_intent_id, "amount": amount},
                options={"idempotency_key": idempotency_key},
            )
        return refund.to_dict()

    def ping(self) -> None:
        """Make the cheapest authenticated call; raises :class:`StripeAPIError` on failure."""
        with _translated_errors():
            self._client.v1.customers.list(params={"limit": 1})

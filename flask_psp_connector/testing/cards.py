"""Stripe's documented test cards (docs.stripe.com/testing) and what the double does with them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Decline:
    """A card error as Stripe returns it for a declined charge."""

    code: str
    decline_code: str | None
    message: str
    outcome_type: str = "issuer_declined"
    network_status: str = "declined_by_network"


_GENERIC = Decline("card_declined", "generic_decline", "Your card was declined.")

#: Card number → the decline Stripe documents for charges on it.
DECLINES: dict[str, Decline] = {
    "4000000000000002": _GENERIC,
    "4000000000000341": _GENERIC,  # attaching succeeds, charging fails
    "4000000000009995": Decline("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    "4000000000009987": Decline("card_declined", "lost_card", "Your card was declined."),
    "4000000000009979": Decline("card_declined", "stolen_card", "Your card was declined."),
    "4000000000000069": Decline("expired_card", "expired_card", "Your card has expired."),
    "4000000000000127": Decline("incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."),
    "4000000000000119": Decline("processing_error", "processing_error",
                                "An error occurred while processing your card. Try again in a little bit."),
    "4100000000000019": Decline("card_declined", "fraudulent", "Your card was declined.",
                                outcome_type="blocked", network_status="not_sent_to_network"),
}

#: Cards that always ask for 3D Secure authentication.
AUTHENTICATION_REQUIRED = frozenset({
    "4000002500003155", "4000002760003184", "4000000000003220", "4000000000003063", "4000008260003178",
})

#: Cards that decline after a successful authentication (Stripe: 3DS required, then insufficient funds).
DECLINE_AFTER_AUTHENTICATION = {"4000008260003178": DECLINES["4000000000009995"]}

#: Card number → (dispute reason, inquiry?) of the dispute opened after a successful charge.
DISPUTES: dict[str, tuple[str, bool]] = {
    "4000000000000259": ("fraudulent", False),
    "4000000000002685": ("product_not_received", False),
    "4000000000001976": ("fraudulent", True),
}

#: Stripe's test PaymentMethod ids and the card each stands for.
TEST_PAYMENT_METHODS: dict[str, str] = {
    "pm_card_visa": "4242424242424242",
    "pm_card_visa_debit": "4000056655665556",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_bypassPending": "4000000000000077",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_visa_chargeDeclined": "4000000000000002",
    "pm_card_chargeCustomerFail": "4000000000000341",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeDeclinedLostCard": "4000000000009987",
    "pm_card_chargeDeclinedStolenCard": "4000000000009979",
    "pm_card_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_chargeDeclinedIncorrectCvc": "4000000000000127",
    "pm_card_chargeDeclinedProcessingError": "4000000000000119",
    "pm_card_radarBlock": "4100000000000019",
    "pm_card_authenticationRequired": "4000002760003184",
    "pm_card_authenticationRequiredOnSetup": "4000002500003155",
    "pm_card_threeDSecure2Required": "4000000000003220",
    "pm_card_createDispute": "4000000000000259",
    "pm_card_createDisputeProductNotReceived": "4000000000002685",
    "pm_card_createDisputeInquiry": "4000000000001976",
}


def brand(number: str) -> str:
    """The card brand Stripe reports for a test card number."""
    if number.startswith(("34", "37")):
        return "amex"
    if number.startswith(("51", "52", "53", "54", "55", "2")):
        return "mastercard"
    return "visa"

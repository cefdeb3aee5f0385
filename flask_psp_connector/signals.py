"""Signals for host apps: what happened to a payment, sent once its change is stored.

Each signal is a `blinker <https://blinker.readthedocs.io>`_ signal; the sender is the
Flask app the connector is registered on. They are sent after the transaction that
recorded the change has committed, never inside it, and once per change: a duplicate
delivery of a Stripe event, a repeated ``/confirmPayments`` or a replay that finds the
change already recorded sends nothing. Whichever entry point records a change sends its
signals: the webhook, ``/confirmPayments``, the operations route, :meth:`PSPConnector.settle_payment
<flask_psp_connector.extension.PSPConnector.settle_payment>`, ``flask psp events replay``
and ``flask psp reconcile --apply``.

A receiver that raises is logged and skipped: the change is stored already, and neither
the request nor the other receivers fail because of it. Receivers run in the request (or
command) that recorded the change, so they should be quick; hand slow work to a queue.

Every signal is sent with these keyword arguments:

- ``payment``: the :class:`~flask_psp_connector.domain.model.Payment` as recorded, or
  ``None`` for a PaymentIntent or Refund of an external gateway (Commerce Layer,
  Hantera), which is no payment of the commerce platform;
- ``event_id``: the Stripe event id when a webhook (or its replay) recorded the change,
  else ``None``;
- ``stripe_object``: the event's object (a PaymentIntent, Charge, Refund or Dispute as
  Stripe sent it) when a webhook recorded the change, else ``None``.

and, for some of them, one more (below).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from blinker import Namespace, Signal

from flask_psp_connector.ports import SIGNAL_NAMES, Notice

log = logging.getLogger("flask_psp_connector.signals")

_signals = Namespace()

#: The payment's money is secured for the first time: its authorization or its charge
#: succeeded (for a manual capture, at authorization).
payment_succeeded: Signal = _signals.signal("payment-succeeded")

#: An attempt to pay failed (declined, authentication failed, a debit bounced) on a
#: payment that had not succeeded. Not sent for a cancellation.
payment_failed: Signal = _signals.signal("payment-failed")

#: The order of a cart was placed from its payments. Extra argument: ``order``, the
#: :class:`~flask_psp_connector.domain.model.Order`.
order_created: Signal = _signals.signal("order-created")

#: A refund succeeded (one signal per refund, whoever asked for it: the merchant, an
#: operation, or the connector undoing a stale payment). Extra argument: ``transaction``,
#: the Refund :class:`~flask_psp_connector.domain.model.Transaction`. For an external
#: gateway's refund it is ``None`` and the signal is sent for every refund event, whatever
#: the refund's status (in ``stripe_object``).
refund_recorded: Signal = _signals.signal("refund-recorded")

#: Stripe reported a new dispute (chargeback) on a payment. Extra argument:
#: ``transaction``, the Chargeback :class:`~flask_psp_connector.domain.model.Transaction`.
dispute_opened: Signal = _signals.signal("dispute-opened")

#: A payment was found to pay for no order of its cart (``stale``) and nothing was undone:
#: under ``PSP_STALE_PAYMENTS=flag``, or when Stripe refused the refund. The merchant
#: decides what to do with the money. Extra argument: ``reason``, a
#: :class:`~flask_psp_connector.domain.model.StaleReason`.
payment_flagged: Signal = _signals.signal("payment-flagged")

#: Each of :data:`~flask_psp_connector.ports.SIGNAL_NAMES` → its signal (the same objects as above).
SIGNALS: dict[str, Signal] = {name: _signals.signal(name.replace("_", "-")) for name in SIGNAL_NAMES}


class Sender:
    """Sends the connector's signals from one app (the sender receivers may filter on)."""

    def __init__(self, sender: Any) -> None:
        self.sender = sender

    def listened(self, signal: str) -> bool:
        """Whether anyone receives ``signal`` from this sender (else its arguments need not be read)."""
        return SIGNALS[signal].has_receivers_for(self.sender)

    def __call__(self, notices: Iterable[Notice]) -> None:
        """Send ``notices`` (see :func:`send`)."""
        send(self.sender, notices)


def send(sender: Any, notices: Iterable[Notice]) -> None:
    """Send each notice's signal from ``sender``; a receiver that raises is logged and skipped."""
    for notice in notices:
        signal = SIGNALS[notice.signal]
        for receiver in signal.receivers_for(sender):
            try:
                receiver(sender, **notice.arguments)
            except Exception:
                log.exception("A receiver of %s failed: %r", notice.signal, receiver)

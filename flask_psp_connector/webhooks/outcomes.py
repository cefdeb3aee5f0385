"""What a recorded change means for host apps: the signals it sends (no Flask here).

A change is watched while it is made: its plan sees the payment as stored (under the
payment's lock, or at the version the write is checked against), and the stale handler
sees what was undone. From that, :class:`Watch` tells which notices the change sends once
it has committed: new successes, failures, refunds and disputes, a payment left flagged,
and the order, read after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from flask_psp_connector.domain.model import CartState
from flask_psp_connector.domain.payment import Payment, StaleReason, Transaction, TransactionDraft, recorded
from flask_psp_connector.domain.payment import TransactionState as State
from flask_psp_connector.domain.payment import TransactionType as Type
from flask_psp_connector.domain.settle import PaymentChanges, StaleHandler
from flask_psp_connector.ports import SIGNAL_NAMES, CartRead, CommercePlatform, Notice, Notify

log = logging.getLogger("flask_psp_connector.signals")


@dataclass
class _Seen:
    """One attempt at a change: the payment before it, what it records, what undid it."""

    before: Payment
    drafts: tuple[TransactionDraft, ...]
    #: Set by the change itself (a PaymentIntent that disagrees, a superseded payment).
    marked: StaleReason | None = None
    stale: StaleReason | None = None
    undo: tuple[TransactionDraft, ...] = ()
    #: For a settlement that records nothing new: whether the cart was ordered before it.
    ordered_before: bool | None = None


class Watch:
    """Watches the changes made to payments in one call, and tells what they sent.

    A change may be attempted more than once (a retried transaction, a lost race): each
    attempt starts over, so what is told is the attempt that was stored.

    :param event_id: the Stripe event the change comes from, if any.
    :param stripe_object: that event's object.
    """

    def __init__(self, event_id: str | None = None, stripe_object: dict[str, Any] | None = None) -> None:
        self.event_id = event_id
        self.stripe_object = stripe_object
        self._seen: dict[str, _Seen] = {}

    def plan(self, plan: Callable[[Payment], PaymentChanges]) -> Callable[[Payment], PaymentChanges]:
        """``plan``, watched: each call starts the payment's attempt over."""

        def watched(payment: Payment) -> PaymentChanges:
            changes = plan(payment)
            return self.changes(payment, changes)

        return watched

    def changes(self, before: Payment, changes: PaymentChanges) -> PaymentChanges:
        """Start an attempt at ``changes`` on ``before``; returns them with the stale handler watched."""
        seen = self._seen[before.id] = _Seen(before, changes.transactions, changes.stale_reason)
        if changes.on_stale is None:
            return changes
        return replace(changes, on_stale=self._watched_stale(seen, changes.on_stale))

    def settling(self, before: Payment, ordered: bool) -> None:
        """Tell that the change settles an already recorded payment, and whether its cart was ordered."""
        self._seen[before.id].ordered_before = ordered

    @staticmethod
    def _watched_stale(seen: _Seen, on_stale: StaleHandler) -> StaleHandler:
        def undo(payment: Payment, reason: StaleReason) -> tuple[TransactionDraft, ...]:
            drafts = on_stale(payment, reason)
            if seen.before.stale_reason is None:  # found stale by this change, not before
                seen.stale, seen.undo = reason, drafts
            return drafts

        return undo

    def notices(self, platform: CommercePlatform, listened: Callable[[str], bool]) -> list[Notice]:
        """The notices of the stored changes that someone listens to; what they carry is read
        now (after the commit), and only for them."""
        notices: list[Notice] = []
        if not any(listened(signal) for signal in SIGNAL_NAMES):  # the hot path, when nobody listens
            self._seen.clear()
            return notices
        for seen in self._seen.values():
            notices.extend(self._notices_of(platform, seen, listened))
        self._seen.clear()
        return notices

    def _notices_of(self, platform: CommercePlatform, seen: _Seen, listened: Callable[[str], bool]) -> list[Notice]:
        now = datetime.now(UTC)
        before = seen.before
        after = recorded(recorded(before, seen.drafts, now), seen.undo, now)
        after = replace(after, stale_reason=before.stale_reason or seen.marked or seen.stale)
        entered = _entered(before, after)
        kinds: list[tuple[str, dict[str, Any]]] = []
        newly_paid = not _paid(before) and _paid(after)
        if newly_paid:
            kinds.append(("payment_succeeded", {}))
        elif not _paid(before) and _failed_attempt(entered):
            kinds.append(("payment_failed", {}))
        for transaction in entered:
            if transaction.type == Type.REFUND and transaction.state == State.SUCCESS:
                kinds.append(("refund_recorded", {"transaction": transaction}))
            if transaction.type == Type.CHARGEBACK and not _known(before, transaction):
                kinds.append(("dispute_opened", {"transaction": transaction}))
        if seen.stale is not None and not seen.undo:
            kinds.append(("payment_flagged", {"reason": seen.stale}))
        settling = newly_paid or seen.ordered_before is False
        if settling and after.stale_reason is None and listened("order_created"):
            order = _order_placed(platform, after)
            if order is not None:
                kinds.append(("order_created", {"order": order}))
        kinds = [(signal, extra) for signal, extra in kinds if listened(signal)]
        if not kinds:
            return []
        common = {"payment": _stored(platform, after), "event_id": self.event_id, "stripe_object": self.stripe_object}
        return [Notice(signal, {**common, **extra}) for signal, extra in kinds]


def _paid(payment: Payment) -> bool:
    return payment.has(Type.AUTHORIZATION, State.SUCCESS) or payment.has(Type.CHARGE, State.SUCCESS)


def _known(before: Payment, transaction: Transaction) -> bool:
    return any(t.type == transaction.type and t.interaction_id == transaction.interaction_id
               for t in before.transactions)


def _failed_attempt(entered: list[Transaction]) -> bool:
    """An authorization failed, and not because it was cancelled."""
    failed = any(t.type == Type.AUTHORIZATION and t.state == State.FAILURE for t in entered)
    return failed and not any(t.type == Type.CANCEL_AUTHORIZATION for t in entered)


def _entered(before: Payment, after: Payment) -> list[Transaction]:
    """The transactions of ``after`` that are new, or in another state than in ``before``."""
    states = {(t.type, t.interaction_id): t.state for t in before.transactions}
    return [t for t in after.transactions if states.get((t.type, t.interaction_id)) != t.state]


def _stored(platform: CommercePlatform, payment: Payment) -> Payment:
    """The payment as stored now; as computed from the change if it cannot be read."""
    try:
        return platform.get_payment(payment.id)
    except Exception as exc:  # noqa: BLE001 (the change is stored: the signal still goes)
        log.warning("Payment %s could not be read again for its signals: %s", payment.id, exc)
        return payment


def _order_placed(platform: CommercePlatform, payment: Payment) -> Any:
    """The order of the payment's cart, if the cart is ordered now (read after the commit)."""
    try:
        cart = platform.get_cart(payment.cart_id)
        if cart.state != CartState.ORDERED:
            return None
        return platform.create_order(payment.cart_id)  # the cart is ordered: this returns its order
    except Exception as exc:  # noqa: BLE001 (the change is stored: its signal is what is lost)
        log.warning("The order of payment %s could not be read for order_created: %s", payment.id, exc)
        return None


class SignallingPlatform:
    """A platform whose recorded changes send their signals once committed.

    For the entry points that record through :meth:`apply_changes` or :meth:`apply_plan`
    (``/confirmPayments``, settlements, operations). The payment before the change is the one the platform holds
    under its lock when the change is decided, so a change the webhook recorded first is
    not told again; what the signals carry is read after the commit, and only when someone
    listens. Everything else goes to the platform as is.
    """

    def __init__(self, platform: CommercePlatform, notify: Notify) -> None:
        self._platform = platform
        self._notify = notify
        self._read: dict[str, Payment] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._platform, name)

    def get_payment(self, payment_id: str) -> Payment:
        """See :meth:`CommercePlatform.get_payment`."""
        return self._remember(self._platform.get_payment(payment_id))

    def get_cart_and_payments(self, cart_id: str) -> CartRead:
        """See :meth:`CommercePlatform.get_cart_and_payments`."""
        read = self._platform.get_cart_and_payments(cart_id)
        for payment in read.payments:
            self._remember(payment)
        return read

    def payments_of_cart(self, cart_id: str) -> list[Payment]:
        """See :meth:`CommercePlatform.payments_of_cart`."""
        return [self._remember(payment) for payment in self._platform.payments_of_cart(cart_id)]

    def apply_transactions(self, payment_id: str, drafts: Iterable[TransactionDraft], *,
                           interface_id: str | None = None, method: str | None = None) -> Payment:
        """See :meth:`CommercePlatform.apply_transactions`."""
        return self.apply_changes(payment_id, PaymentChanges(tuple(drafts), interface_id, method))

    def apply_changes(self, payment_id: str, changes: PaymentChanges, *, cart_id: str | None = None,
                      read: CartRead | None = None) -> Payment:
        """See :meth:`CommercePlatform.apply_changes`; its signals are sent once it returns."""
        ordered = None
        if changes.create_order and not changes.transactions and self._notify.listened("order_created"):
            known = self._read.get(payment_id) or self._platform.get_payment(payment_id)
            ordered = self._platform.get_cart(known.cart_id).state == CartState.ORDERED
        return self._apply(payment_id, lambda _: changes, cart_id, read, ordered)

    def apply_plan(self, payment_id: str, plan: Callable[[Payment], PaymentChanges], *,
                   cart_id: str | None = None, read: CartRead | None = None) -> Payment:
        """See :meth:`CommercePlatform.apply_plan`; its signals are sent once it returns."""
        return self._apply(payment_id, plan, cart_id, read, None)

    def _apply(self, payment_id: str, plan: Callable[[Payment], PaymentChanges], cart_id: str | None,
               read: CartRead | None, ordered: bool | None) -> Payment:
        if not any(self._notify.listened(signal) for signal in SIGNAL_NAMES):
            return self._remember(self._platform.apply_plan(payment_id, plan, cart_id=cart_id, read=read))
        watch = Watch()

        def watched(current: Payment) -> PaymentChanges:
            # Decided on the payment as stored under its lock: a change another entry point
            # (the webhook) recorded first is "before", so its signals are not sent twice.
            changes = watch.changes(current, plan(current))
            if ordered is not None:
                watch.settling(current, ordered)
            return changes

        payment = self._platform.apply_plan(payment_id, watched, cart_id=cart_id, read=read)
        try:
            self._notify(watch.notices(self._platform, self._notify.listened))
        except Exception:
            log.exception("The signals of payment %s could not be sent", payment_id)
        return self._remember(payment)

    def _remember(self, payment: Payment) -> Payment:
        self._read[payment.id] = payment
        return payment

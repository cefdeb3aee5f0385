"""Transaction matching, the idempotency core, and settling a payment against its cart:
the rules every platform applies the same way."""

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from flask_psp_connector.domain.model import Address, Cart, CartState, LineItem
from flask_psp_connector.domain.money import Money
from flask_psp_connector.domain.payment import (
    ALLOWED_TRANSITIONS,
    AddTransaction,
    ChangeState,
    Payment,
    StaleReason,
    Transaction,
    TransactionDraft,
    TransactionState,
    TransactionType,
    match_transaction,
)
from flask_psp_connector.domain.settle import Settlement, settle

S, T = TransactionState, TransactionType
EUR10 = Money.of(1000, "EUR")


def tx(type_: TransactionType, state: TransactionState, interaction: str = "pi_1", id_: str = "t1") -> Transaction:
    return Transaction(id_, type_, state, EUR10, interaction, datetime.now(UTC))


def test_new_pair_adds_a_transaction() -> None:
    draft = TransactionDraft(T.CHARGE, S.SUCCESS, EUR10, "pi_1")
    assert match_transaction([tx(T.AUTHORIZATION, S.SUCCESS)], draft) == AddTransaction(draft)


def test_same_type_other_interaction_is_another_transaction() -> None:
    draft = TransactionDraft(T.REFUND, S.SUCCESS, EUR10, "re_2")
    assert match_transaction([tx(T.REFUND, S.SUCCESS, "re_1")], draft) == AddTransaction(draft)


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("wanted", list(S))
def test_matched_transaction_changes_state_only_when_allowed(current: S, wanted: S) -> None:
    change = match_transaction([tx(T.AUTHORIZATION, current)], TransactionDraft(T.AUTHORIZATION, wanted, EUR10, "pi_1"))
    if wanted in ALLOWED_TRANSITIONS[current]:
        assert change == ChangeState("t1", wanted)
    else:
        assert change is None


def test_upstream_transition_table() -> None:
    assert ALLOWED_TRANSITIONS == {
        S.INITIAL: {S.PENDING, S.SUCCESS, S.FAILURE},
        S.PENDING: {S.SUCCESS, S.FAILURE},
        S.FAILURE: {S.SUCCESS},
        S.SUCCESS: {S.FAILURE},
    }


def test_redelivery_is_a_no_op() -> None:
    existing = [tx(T.CHARGE, S.SUCCESS)]
    assert match_transaction(existing, TransactionDraft(T.CHARGE, S.SUCCESS, EUR10, "pi_1")) is None


def payment(*transactions: Transaction) -> Payment:
    return Payment("p1", 1, "c1", EUR10, "checkout-stripe", "pi_1", None, transactions)


@pytest.mark.parametrize(
    ("transactions", "paid"),
    [
        ((), False),
        ((tx(T.AUTHORIZATION, S.INITIAL),), False),
        ((tx(T.AUTHORIZATION, S.SUCCESS),), True),
        ((tx(T.AUTHORIZATION, S.PENDING),), True),
        ((tx(T.AUTHORIZATION, S.FAILURE), tx(T.CHARGE, S.SUCCESS, id_="t2")), True),
        ((tx(T.CHARGE, S.SUCCESS), tx(T.REFUND, S.SUCCESS, "re_1", "t2")), True),
        ((tx(T.AUTHORIZATION, S.SUCCESS), tx(T.CANCEL_AUTHORIZATION, S.SUCCESS, id_="t2")), False),
    ],
)
def test_counts_as_paid(transactions: tuple[Transaction, ...], paid: bool) -> None:
    assert payment(*transactions).counts_as_paid is paid


# -- settling a succeeded payment against its cart ----------------------------------------

CART = Cart("c1", 3, "EUR", (LineItem("l1", "mug", "Mug", 2, Money.of(500, "EUR")),), 0, 0, CartState.ACTIVE)


def paid(payment_id: str, amount: int = 1000, *, fingerprint: str = CART.fingerprint, succeeded: bool = True) -> Payment:
    state = S.SUCCESS if succeeded else S.INITIAL
    return Payment(payment_id, 1, "c1", Money.of(amount, "EUR"), "checkout-stripe", f"pi_{payment_id}", None,
                   (Transaction(f"t-{payment_id}", T.AUTHORIZATION, state, Money.of(amount, "EUR"), f"pi_{payment_id}",
                                datetime.now(UTC)),),
                   cart_fingerprint=fingerprint)


def test_the_fingerprint_follows_what_is_sold_not_where_it_ships() -> None:
    assert replace(CART, version=9, shipping_address=Address(city="Paris"), customer_email="x@y").fingerprint == CART.fingerprint
    relabelled = replace(CART, line_items=(replace(CART.line_items[0], id="other-row-id"),))
    assert relabelled.fingerprint == CART.fingerprint
    for changed in (replace(CART, line_items=(replace(CART.line_items[0], quantity=3),)),
                    replace(CART, shipping_amount=1), replace(CART, tax_amount=1),
                    replace(CART, shipping_method_name="Express"), replace(CART, currency_code="USD")):
        assert changed.fingerprint != CART.fingerprint


def test_a_payment_for_the_cart_as_it_is_places_the_order_once() -> None:
    payment = paid("p1")
    assert settle(payment, CART, [payment], ordered=False).place_order
    assert settle(payment, CART, [payment], ordered=True) == Settlement()


def test_a_payment_for_another_cart_state_is_stale() -> None:
    payment = paid("p1", fingerprint="an-earlier-state")
    assert settle(payment, CART, [payment], ordered=False).stale == StaleReason.CART_CHANGED
    assert settle(payment, CART, [payment], ordered=True).stale == StaleReason.CART_CHANGED


def test_a_second_payment_of_one_cart_state_is_stale_whichever_settles_second() -> None:
    first, second = paid("p1"), paid("p2")
    assert settle(second, CART, [first, second], ordered=True).stale == StaleReason.ALREADY_PAID
    assert settle(first, CART, [first, replace(second, stale_reason=StaleReason.ALREADY_PAID)], ordered=True).stale is None


def test_split_payments_place_the_order_when_they_cover_the_total() -> None:
    first, second = paid("p1", 400), paid("p2", 600)
    assert settle(first, CART, [first, paid("p2", 600, succeeded=False)], ordered=False).place_order is False
    assert settle(second, CART, [first, second], ordered=False).place_order


def test_a_payment_recorded_before_fingerprints_is_checked_by_its_amount() -> None:
    assert settle(paid("p1", fingerprint=""), CART, [], ordered=False).place_order
    assert settle(paid("p1", 700, fingerprint=""), CART, [], ordered=False).stale == StaleReason.CART_CHANGED


def test_an_unpaid_or_already_stale_payment_changes_nothing_new() -> None:
    assert settle(paid("p1", succeeded=False), CART, [], ordered=False) == Settlement()
    marked = replace(paid("p1"), stale_reason=StaleReason.SUPERSEDED)
    assert settle(marked, CART, [marked], ordered=False).stale == StaleReason.SUPERSEDED

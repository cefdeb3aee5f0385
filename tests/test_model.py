"""Transaction matching: the idempotency core every platform applies the same way."""

from datetime import datetime, timezone

import pytest

from flask_psp_connector.model import (
    ALLOWED_TRANSITIONS,
    AddTransaction,
    ChangeState,
    Payment,
    Transaction,
    TransactionDraft,
    TransactionState,
    TransactionType,
    match_transaction,
)
from flask_psp_connector.money import Money

S, T = TransactionState, TransactionType
EUR10 = Money.of(1000, "EUR")


def tx(type_: TransactionType, state: TransactionState, interaction: str = "pi_1", id_: str = "t1") -> Transaction:
    return Transaction(id_, type_, state, EUR10, interaction, datetime.now(timezone.utc))


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

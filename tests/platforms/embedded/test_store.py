"""The embedded store, on SQLite and on PostgreSQL: carts, sessions, payments, orders."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event, insert

from flask_psp_connector import Address, LineItemDraft
from flask_psp_connector.domain.model import CartState
from flask_psp_connector.domain.money import Money
from flask_psp_connector.domain.payment import Payment, TransactionDraft, TransactionState, TransactionType
from flask_psp_connector.domain.settle import PaymentChanges
from flask_psp_connector.errors import ConcurrentModification, InvalidOperation, ResourceNotFound
from flask_psp_connector.platforms.embedded import carts as carts_module
from flask_psp_connector.platforms.embedded.database import normalize_database_url
from flask_psp_connector.platforms.embedded.schema import SessionRow, TransactionRow, hash_secret, utcnow
from flask_psp_connector.platforms.embedded.store import LocalPlatform
from flask_psp_connector.ports import PaymentDraft, PaymentRef

S, T = TransactionState, TransactionType
ITEMS = [LineItemDraft("tee", "T-shirt", 2, 1500), LineItemDraft("mug", "Mug", 1, 999)]


def new_payment(platform: LocalPlatform, cart_id: str, payment_id: str = "pay-1", pi: str = "pi_1") -> PaymentDraft:
    money = Money.of(3999, "EUR")
    return PaymentDraft(payment_id, cart_id, money, "checkout-stripe", pi, f"{pi}_secret",
                        (TransactionDraft(T.AUTHORIZATION, S.INITIAL, money, pi),))


def test_cart_totals_are_computed_server_side(platform: LocalPlatform) -> None:
    cart = platform.create_cart("EUR", line_items=ITEMS, shipping_amount=495, tax_amount=760)
    assert cart.subtotal == Money.of(3999, "EUR")
    assert cart.total_price == Money.of(3999 + 495 + 760, "EUR")
    assert platform.get_cart(cart.id) == cart


def test_update_cart_replaces_only_what_is_given(platform: LocalPlatform) -> None:
    address = Address(first_name="Jane", last_name="Doe", city="Berlin", country="DE")
    cart = platform.create_cart("EUR", line_items=ITEMS, customer_email="a@example.test")
    updated = platform.update_cart(cart.id, shipping_address=address, line_items=ITEMS[:1])
    assert updated.version > cart.version
    assert updated.shipping_address == address
    assert updated.customer_email == "a@example.test"
    assert [item.sku for item in updated.line_items] == ["tee"]


def test_update_cart_at_a_stale_version_changes_nothing(platform: LocalPlatform) -> None:
    cart = platform.create_cart("EUR", line_items=ITEMS)
    platform.update_cart(cart.id, customer_email="new@example.test")
    with pytest.raises(ConcurrentModification):
        platform.update_cart(cart.id, version=cart.version, customer_email="lost@example.test")
    assert platform.get_cart(cart.id).customer_email == "new@example.test"


@pytest.mark.parametrize(
    "bad",
    [
        lambda: LineItemDraft("tee", "T-shirt", 0, 100),
        lambda: LineItemDraft("tee", "T-shirt", -1, 100),
        lambda: LineItemDraft("tee", "T-shirt", 10**6, 100),
        lambda: LineItemDraft("tee", "T-shirt", 1, -5),
        lambda: LineItemDraft("tee", "T-shirt", 1, 9.99),
        lambda: LineItemDraft("", "T-shirt", 1, 100),
    ],
)
def test_line_item_drafts_are_validated(bad) -> None:
    with pytest.raises(InvalidOperation):
        bad()


def test_unknown_cart(platform: LocalPlatform) -> None:
    with pytest.raises(ResourceNotFound):
        platform.get_cart("nope")
    with pytest.raises(ResourceNotFound):
        platform.open_session("nope")


def test_session_is_stored_hashed_and_expires(platform: LocalPlatform, monkeypatch: pytest.MonkeyPatch) -> None:
    cart = platform.create_cart("EUR", line_items=ITEMS)
    session = platform.open_session(cart.id, merchant_return_url="https://shop.test/r", ttl=60)
    assert platform.get_session(session.id).cart_id == cart.id
    with platform.database.transaction() as db:
        assert db.get(SessionRow, hash_secret(session.id)) is not None
        assert db.get(SessionRow, session.id) is None
    later = utcnow() + timedelta(seconds=61)
    monkeypatch.setattr(carts_module, "utcnow", lambda: later)
    assert platform.get_session(session.id) is None


def test_create_payment_is_idempotent_by_id(platform: LocalPlatform) -> None:
    cart = platform.create_cart("EUR", line_items=ITEMS)
    first = platform.create_payment(new_payment(platform, cart.id))
    again = platform.create_payment(new_payment(platform, cart.id))
    assert again == first
    assert [p.id for p in platform.payments_of_cart(cart.id)] == ["pay-1"]
    assert platform.resolve_payment_id(PaymentRef(interface_id="pi_1")) == first.id


def test_a_new_payment_is_returned_exactly_as_it_reads_back(platform: LocalPlatform) -> None:
    """Creation answers from what it wrote, without reading it back: the two must agree."""
    cart = platform.create_cart("EUR", line_items=ITEMS)
    money = Money.of(3000, "EUR")
    draft = PaymentDraft("pay-fresh", cart.id, money, "checkout-stripe", "pi_fresh", "pi_fresh_secret",
                         (TransactionDraft(T.AUTHORIZATION, S.INITIAL, money, "pi_fresh"),),
                         intent_variant="card", cart_fingerprint=cart.fingerprint, cart_version=cart.version)
    created = platform.create_payment(draft)
    assert created == platform.get_payment("pay-fresh")
    assert created.created_at is not None and created.created_at.tzinfo is not None


def test_a_payment_for_a_missing_cart_is_refused(platform: LocalPlatform) -> None:
    with pytest.raises(ResourceNotFound):
        platform.create_payment(PaymentDraft("pay-none", "no-such-cart", Money.of(1, "EUR"), "checkout-stripe",
                                             "pi_none", None, ()))


def test_a_payment_with_several_transactions_is_created_with_them(platform: LocalPlatform) -> None:
    cart = platform.create_cart("EUR", line_items=ITEMS)
    money = Money.of(3999, "EUR")
    drafts = (TransactionDraft(T.AUTHORIZATION, S.SUCCESS, money, "pi_two"),
              TransactionDraft(T.CHARGE, S.PENDING, money, "pi_two"))
    created = platform.create_payment(PaymentDraft("pay-two", cart.id, money, "checkout-stripe", "pi_two", None, drafts))
    assert [(t.type, t.state) for t in created.transactions] == [(T.AUTHORIZATION, S.SUCCESS), (T.CHARGE, S.PENDING)]
    assert created == platform.get_payment("pay-two")


@contextmanager
def statements(platform: LocalPlatform) -> Iterator[list[str]]:
    """The SQL statements run on the store's engine in the block (transaction control left out)."""
    executed: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.split(None, 1)[0].upper() not in ("BEGIN", "COMMIT", "ROLLBACK"):
            executed.append(statement)

    event.listen(platform.database.engine, "before_cursor_execute", record)
    try:
        yield executed
    finally:
        event.remove(platform.database.engine, "before_cursor_execute", record)


def test_a_payment_is_created_in_one_statement_on_postgresql_two_on_sqlite(platform: LocalPlatform) -> None:
    """No statement checks first: the cart's foreign key refuses a missing cart, the
    primary key an existing payment (which is then read)."""
    cart = platform.create_cart("EUR", line_items=ITEMS)
    postgresql = platform.database.engine.dialect.name == "postgresql"
    with statements(platform) as created:
        platform.create_payment(new_payment(platform, cart.id))
    with statements(platform) as again:
        platform.create_payment(new_payment(platform, cart.id))
    assert len(created) == (1 if postgresql else 2)
    assert len(again) == 2  # the insert that finds the id taken, and the read of the payment


def test_a_checkout_is_its_session_cart_and_payments_read_in_one_statement(
    platform: LocalPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    cart = platform.create_cart("EUR", line_items=ITEMS, shipping_address=Address(first_name="Jane", country="DE"))
    session = platform.open_session(cart.id, merchant_return_url="https://shop.test/r", allowed_payment_methods=["card"])
    platform.create_payment(new_payment(platform, cart.id))
    money = Money.of(3999, "EUR")
    platform.create_payment(PaymentDraft("pay-2", cart.id, money, "checkout-stripe", "pi_2", None, (
        TransactionDraft(T.AUTHORIZATION, S.SUCCESS, money, "pi_2"), TransactionDraft(T.CHARGE, S.SUCCESS, money, "pi_2"))))
    with statements(platform) as executed:
        checkout = platform.get_checkout(session.id)
    assert len(executed) == 1
    assert checkout is not None
    assert checkout.session == platform.get_session(session.id)
    read = platform.get_cart_and_payments(cart.id)
    assert (checkout.cart, list(checkout.payments)) == (read.cart, read.payments)
    empty = platform.create_cart("EUR")
    empty_checkout = platform.get_checkout(platform.open_session(empty.id).id)
    assert empty_checkout is not None and (empty_checkout.cart, empty_checkout.payments) == (empty, ())
    assert platform.get_checkout("no-such-session") is None
    later = utcnow() + timedelta(seconds=3601)
    monkeypatch.setattr(carts_module, "utcnow", lambda: later)
    assert platform.get_checkout(session.id) is None


def test_apply_transactions_matches_by_type_and_interaction(platform: LocalPlatform) -> None:
    cart = platform.create_cart("EUR", line_items=ITEMS)
    payment = platform.create_payment(new_payment(platform, cart.id))
    money = payment.amount_planned
    drafts = [
        TransactionDraft(T.AUTHORIZATION, S.SUCCESS, money, "pi_1"),
        TransactionDraft(T.CHARGE, S.SUCCESS, money, "pi_1"),
        TransactionDraft(T.REFUND, S.PENDING, money.with_amount(1000), "re_1"),
    ]
    once = platform.apply_transactions(payment.id, drafts, method="card")
    twice = platform.apply_transactions(payment.id, drafts, method="sepa_debit")
    assert twice.transactions == once.transactions
    assert twice.version == once.version  # nothing changed, nothing written
    assert [(t.type, t.state) for t in once.transactions] == [
        (T.AUTHORIZATION, S.SUCCESS), (T.CHARGE, S.SUCCESS), (T.REFUND, S.PENDING)]
    assert once.method == "card"
    settled = platform.apply_transactions(payment.id, [TransactionDraft(T.REFUND, S.SUCCESS, money, "re_1")])
    assert settled.transactions[2].state == S.SUCCESS
    assert settled.transactions[2].amount.cent_amount == 1000


def test_unique_index_backs_the_matching(platform: LocalPlatform) -> None:
    cart = platform.create_cart("EUR", line_items=ITEMS)
    payment = platform.create_payment(new_payment(platform, cart.id))
    duplicate = dict(id="dup", payment_id=payment.id, seq=9, type="Authorization", state="Success",
                     amount=1, currency_code="EUR", fraction_digits=2, interaction_id="pi_1",
                     timestamp=utcnow())
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        with platform.database.engine.begin() as connection:
            connection.execute(insert(TransactionRow), [duplicate])


def test_concurrent_writers_never_lose_a_transaction(platform: LocalPlatform) -> None:
    cart = platform.create_cart("EUR", line_items=ITEMS)
    payment = platform.create_payment(new_payment(platform, cart.id))
    money = payment.amount_planned.with_amount(10)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def refund(worker: int) -> None:
        barrier.wait()
        try:
            for n in range(5):
                platform.apply_transactions(payment.id, [TransactionDraft(T.REFUND, S.SUCCESS, money, f"re_{worker}_{n}")])
                # the same draft from another worker at the same time: recorded once
                platform.apply_transactions(payment.id, [TransactionDraft(T.CHARGE, S.SUCCESS, money, "pi_1")])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=refund, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    final = platform.get_payment(payment.id)
    assert len(final.transactions_of(T.REFUND)) == 40
    assert len(final.transactions_of(T.CHARGE)) == 1
    assert final.total(T.REFUND) == 400


def test_order_is_created_once_and_cart_becomes_ordered(platform: LocalPlatform) -> None:
    cart = platform.create_cart("EUR", line_items=ITEMS, shipping_amount=495, customer_email="j@example.test")
    platform.create_payment(new_payment(platform, cart.id))
    order = platform.create_order(cart.id)
    assert platform.create_order(cart.id) == order
    assert order.total_price == cart.total_price
    assert order.payment_ids == ("pay-1",)
    assert [i.sku for i in order.line_items] == ["tee", "mug"]
    assert platform.get_cart(cart.id).state == CartState.ORDERED
    assert platform.find_order_by_cart(cart.id) == order
    with pytest.raises(InvalidOperation):
        platform.update_cart(cart.id, customer_email="late@example.test")


def test_health_check(platform: LocalPlatform) -> None:
    platform.check_health()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_heroku_urls_are_accepted(url: str, expected: str) -> None:
    assert normalize_database_url(url) == expected


@pytest.mark.postgres
def test_a_pooled_connection_the_server_closed_is_replaced() -> None:
    from sqlalchemy import create_engine, text

    from tests.conftest import _reset_postgres

    url = normalize_database_url(_reset_postgres())
    store = LocalPlatform.from_url(url)
    cart = store.create_cart("EUR", line_items=ITEMS)
    admin = create_engine(url)
    with admin.begin() as connection:  # e.g. a database restart or failover
        connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    admin.dispose()
    assert store.get_cart(cart.id) == cart
    assert store.update_cart(cart.id, customer_email="back@example.test").customer_email == "back@example.test"
    store.database.dispose()


def test_concurrent_creators_of_one_payment_id_all_get_the_one_payment(platform: LocalPlatform) -> None:
    cart = platform.create_cart("EUR", line_items=ITEMS)
    draft = new_payment(platform, cart.id)
    barrier = threading.Barrier(6)
    created: list[object] = []
    errors: list[BaseException] = []

    def create() -> None:
        barrier.wait()
        try:
            created.append(platform.create_payment(draft))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(created) == 6 and all(payment == created[0] for payment in created)
    assert [p.id for p in platform.payments_of_cart(cart.id)] == ["pay-1"]


def _refund_plan(refund_id: str) -> Callable[[Payment], PaymentChanges]:
    """The plan of a refund event, as the webhook builds it."""
    return lambda payment: PaymentChanges((TransactionDraft(T.REFUND, S.SUCCESS, Money.of(1, "EUR"), refund_id),))


@pytest.mark.parametrize("ref", [PaymentRef("pay-1", None), PaymentRef(None, "pi_1"), PaymentRef("other", "pi_1")])
def test_an_event_is_recorded_with_its_effect_once_whatever_key_finds_its_payment(
    platform: LocalPlatform, ref: PaymentRef
) -> None:
    cart = platform.create_cart("EUR", line_items=ITEMS)
    platform.create_payment(new_payment(platform, cart.id))
    first = platform.process_event("evt_1", "charge.refund.updated", ref, _refund_plan("re_1"), detail="note")
    again = platform.process_event("evt_1", "charge.refund.updated", ref, _refund_plan("re_2"))
    assert (first.status, first.payment_id, first.detail) == ("processed", "pay-1", "note")
    assert (again.status, again.payment_id, again.detail) == ("duplicate", "pay-1", "note")
    refunds = [t.interaction_id for t in platform.get_payment("pay-1").transactions if t.type == T.REFUND]
    assert refunds == ["re_1"]
    assert platform.event_receipt("evt_1").status == "processed"


def test_an_event_for_no_payment_of_ours_is_recorded_as_ignored(platform: LocalPlatform) -> None:
    receipt = platform.process_event("evt_1", "charge.refund.updated", PaymentRef("nope", "pi_nope"),
                                     _refund_plan("re_1"))
    assert (receipt.status, receipt.payment_id) == ("ignored", None)
    assert platform.event_receipt("evt_1").status == "ignored"


@pytest.mark.postgres
def test_the_webhooks_first_round_trip_replaces_a_connection_the_server_closed() -> None:
    from sqlalchemy import create_engine, text

    from tests.conftest import _reset_postgres

    url = normalize_database_url(_reset_postgres())
    store = LocalPlatform.from_url(url)
    cart = store.create_cart("EUR", line_items=ITEMS)
    store.create_payment(new_payment(store, cart.id))
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    admin.dispose()
    receipt = store.process_event("evt_1", "charge.refund.updated", PaymentRef("pay-1", None), _refund_plan("re_1"))
    assert (receipt.status, receipt.payment_id) == ("processed", "pay-1")
    store.database.dispose()


@pytest.mark.postgres
def test_a_payment_locked_past_the_lock_timeout_fails_the_event_as_unavailable() -> None:
    from sqlalchemy import create_engine, text

    from flask_psp_connector.errors import PlatformUnavailable
    from flask_psp_connector.platforms.embedded.timeouts import apply_database_timeouts
    from tests.conftest import _reset_postgres

    url = normalize_database_url(_reset_postgres())
    store = LocalPlatform.from_url(url)
    apply_database_timeouts(store.database.engine, lock_ms=100, statement_ms=0, idle_in_transaction_ms=0)
    cart = store.create_cart("EUR", line_items=ITEMS)
    store.create_payment(new_payment(store, cart.id))
    holder = create_engine(url)
    with holder.begin() as connection:
        connection.execute(text("SELECT id FROM psp_payments WHERE id = 'pay-1' FOR UPDATE"))
        with pytest.raises(PlatformUnavailable):
            store.process_event("evt_1", "charge.refund.updated", PaymentRef("pay-1", None), _refund_plan("re_1"))
    holder.dispose()
    assert store.event_receipt("evt_1") is None
    receipt = store.process_event("evt_1", "charge.refund.updated", PaymentRef("pay-1", None), _refund_plan("re_1"))
    assert receipt.status == "processed"
    store.database.dispose()


@pytest.mark.parametrize("driver", ["own", "another"])
def test_statements_sent_to_the_driver_read_and_fail_as_through_sqlalchemy(
    platform: LocalPlatform, driver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import IntegrityError

    from flask_psp_connector.platforms.embedded import orders
    from flask_psp_connector.platforms.embedded.pipeline import fetch_together

    address = Address(first_name="Jane", last_name="Doe", city="Berlin", country="DE")
    cart = platform.create_cart("EUR", line_items=ITEMS, shipping_address=address)
    platform.create_payment(new_payment(platform, cart.id))
    values = {"cart_id": cart.id}
    if driver == "another":  # e.g. psycopg2: the statements go through SQLAlchemy
        monkeypatch.setattr(platform.database.engine.dialect, "driver", "another")
    seen: list[str] = []
    engine = platform.database.engine
    listeners = {name: lambda *args, name=name: seen.append(name)
                 for name in ("before_cursor_execute", "after_cursor_execute")}
    with platform.database.connection() as connection:
        statements = [orders._CART_WITH_LINE_ITEMS, orders._PAYMENTS_OF_CART]
        expected = [[tuple(row) for row in connection.execute(statement, values).all()] for statement in statements]
        for name, listener in listeners.items():
            event.listen(engine, name, listener)
        try:
            found = fetch_together(connection, [(statement, values) for statement in statements])
        finally:
            for name, listener in listeners.items():
                event.remove(engine, name, listener)
        assert [[tuple(row) for row in rows] for rows in found] == expected
        assert sorted(seen) == ["after_cursor_execute"] * 2 + ["before_cursor_execute"] * 2  # instrumentation sees them
        assert found[0][0].shipping_address["city"] == "Berlin" and found[1][0].created_at.tzinfo is not None
    with pytest.raises(IntegrityError), platform.database.connection(write=True) as connection:
        fetch_together(connection, [(insert(TransactionRow), {
            "id": "t-1", "payment_id": "no such payment", "seq": 1, "type": "Charge", "state": "Success", "amount": 1,
            "currency_code": "EUR", "fraction_digits": 2, "interaction_id": "x", "timestamp": utcnow()})])

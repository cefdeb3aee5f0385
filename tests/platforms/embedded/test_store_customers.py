"""The embedded store's customers, saved payment methods and shipping method, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, inspect, text

from flask_psp_connector import LineItemDraft
from flask_psp_connector.domain.model import Customer
from flask_psp_connector.errors import InvalidOperation, ResourceNotFound
from flask_psp_connector.platforms.embedded.store import LocalPlatform

ITEMS = [LineItemDraft("tee", "T-shirt", 1, 1500)]


def test_shipping_method_name_is_stored_and_kept(platform: LocalPlatform) -> None:
    cart = platform.create_cart("EUR", line_items=ITEMS, shipping_amount=495, shipping_method_name="Standard")
    assert cart.shipping_method_name == "Standard"
    updated = platform.update_cart(cart.id, customer_email="a@example.test")
    assert updated.shipping_method_name == "Standard"
    changed = platform.update_cart(cart.id, shipping_amount=990, shipping_method_name="Express")
    assert (changed.shipping_method_name, changed.shipping_amount) == ("Express", 990)
    assert platform.update_cart(cart.id, shipping_method_name=None).shipping_method_name is None


def test_customer_lifecycle(platform: LocalPlatform) -> None:
    customer = platform.create_customer(" Jane@Example.test ", "Jane Doe")
    assert customer == Customer(customer.id, "jane@example.test", "Jane Doe", None)
    assert platform.get_customer(customer.id) == customer
    assert platform.get_customer("nobody") is None
    assert platform.find_customer_by_email("JANE@example.test") == customer
    linked = platform.set_stripe_customer_id(customer.id, "cus_123")
    assert linked.stripe_customer_id == "cus_123"
    assert platform.get_customer(customer.id) == linked
    with pytest.raises(ResourceNotFound):
        platform.set_stripe_customer_id("nobody", "cus_123")


def test_customer_email_is_unique(platform: LocalPlatform) -> None:
    platform.create_customer("jane@example.test")
    with pytest.raises(InvalidOperation):
        platform.create_customer("JANE@example.test")
    with pytest.raises(InvalidOperation):
        platform.create_customer("  ")


def test_saved_payment_methods_are_recorded_once_per_customer(platform: LocalPlatform) -> None:
    jane = platform.create_customer("jane@example.test")
    john = platform.create_customer("john@example.test")
    first = platform.record_saved_payment_method(jane.id, "pm_1", "visa", "4242", 12, 2030)
    again = platform.record_saved_payment_method(jane.id, "pm_1", "visa", "4242", 12, 2030)
    assert again == first
    second = platform.record_saved_payment_method(jane.id, "pm_2", "mastercard", "4444", 1, 2031)
    johns = platform.record_saved_payment_method(john.id, "pm_1", "visa", "4242", 12, 2030)
    assert johns.id != first.id
    assert [m.stripe_payment_method_id for m in platform.saved_payment_methods(jane.id)] == ["pm_1", "pm_2"]
    assert (second.brand, second.last4, second.exp_month, second.exp_year) == ("mastercard", "4444", 1, 2031)
    with pytest.raises(ResourceNotFound):
        platform.record_saved_payment_method("nobody", "pm_9", "visa", "4242", 1, 2030)


def test_concurrent_recordings_of_one_method_keep_one_record(platform: LocalPlatform) -> None:
    jane = platform.create_customer("jane@example.test")
    results = []

    def record() -> None:
        results.append(platform.record_saved_payment_method(jane.id, "pm_1", "visa", "4242", 12, 2030))

    threads = [threading.Thread(target=record) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({r.id for r in results}) == 1
    assert len(platform.saved_payment_methods(jane.id)) == 1


def test_a_customer_removes_only_their_own_methods(platform: LocalPlatform) -> None:
    jane = platform.create_customer("jane@example.test")
    john = platform.create_customer("john@example.test")
    janes = platform.record_saved_payment_method(jane.id, "pm_1", "visa", "4242", 12, 2030)
    assert platform.remove_saved_payment_method(john.id, janes.id) is None
    assert platform.saved_payment_methods(jane.id) == [janes]
    assert platform.remove_saved_payment_method(jane.id, janes.id) == janes
    assert platform.saved_payment_methods(jane.id) == []
    assert platform.remove_saved_payment_method(jane.id, janes.id) is None


def test_list_orders_filters_by_customer(platform: LocalPlatform) -> None:
    jane = platform.create_customer("jane@example.test")
    mine = platform.create_cart("EUR", line_items=ITEMS, customer_id=jane.id)
    guest = platform.create_cart("EUR", line_items=ITEMS)
    my_order = platform.create_order(mine.id)
    guest_order = platform.create_order(guest.id)
    assert platform.list_orders(customer_id=jane.id) == [my_order]
    assert {o.id for o in platform.list_orders()} == {my_order.id, guest_order.id}
    assert platform.list_orders(10, 0, customer_id="nobody") == []


def test_create_schema_adds_the_columns_an_older_store_lacks(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(text(
            "CREATE TABLE psp_carts (id VARCHAR(36) PRIMARY KEY, version INTEGER NOT NULL, currency_code VARCHAR(3), "
            "shipping_amount BIGINT, tax_amount BIGINT, state VARCHAR(16), customer_id VARCHAR(64), "
            "customer_email VARCHAR(254), shipping_address JSON, billing_address JSON, created_at DATETIME)"
        ))
    engine.dispose()
    store = LocalPlatform.from_url(sqlite_url)
    store.create_schema()
    store.create_schema()
    columns = {column["name"] for column in inspect(store.database.engine).get_columns("psp_carts")}
    assert "shipping_method_name" in columns
    cart = store.create_cart("EUR", line_items=ITEMS, shipping_method_name="Standard")
    assert store.get_cart(cart.id).shipping_method_name == "Standard"
    store.database.dispose()

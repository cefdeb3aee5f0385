"""Customers and the payment methods they saved."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flask_psp_connector.domain.model import Customer, SavedPaymentMethod
from flask_psp_connector.errors import InvalidOperation, ResourceNotFound
from flask_psp_connector.platforms.embedded import rows
from flask_psp_connector.platforms.embedded.database import Database
from flask_psp_connector.platforms.embedded.schema import CustomerRow, SavedPaymentMethodRow


class Customers:
    """Customers of the embedded store and their saved payment methods."""

    _db: Database

    def create_customer(self, email: str, name: str = "") -> Customer:
        """Create a customer.

        :raises InvalidOperation: when the email is empty or already taken.
        """
        email = email.strip().lower()
        if not email:
            raise InvalidOperation("A customer needs an email address.")

        def work(session: Session) -> Customer:
            if session.scalar(select(CustomerRow.id).where(CustomerRow.email == email)) is not None:
                raise InvalidOperation("A customer with this email already exists.")
            row = CustomerRow(id=str(uuid.uuid4()), email=email, name=name.strip())
            session.add(row)
            session.flush()
            return rows.customer(row)

        try:
            return self._db.run(work, write=True)
        except IntegrityError:
            # A concurrent sign-up with this email won on the unique index: the only
            # constraint a fresh id, a checked email and a name can violate.
            raise InvalidOperation("A customer with this email already exists.") from None

    def get_customer(self, customer_id: str) -> Customer | None:
        """Return the customer, or ``None``."""

        def read(session: Session) -> Customer | None:
            row = session.get(CustomerRow, customer_id)
            return None if row is None else rows.customer(row)

        return self._db.run(read)

    def find_customer_by_email(self, email: str) -> Customer | None:
        """Return the customer with this email (case-insensitive), or ``None``."""
        query = select(CustomerRow).where(CustomerRow.email == email.strip().lower())
        return self._db.run(lambda session: next((rows.customer(row) for row in session.scalars(query)), None))

    def set_stripe_customer_id(self, customer_id: str, stripe_customer_id: str) -> Customer:
        """Link the customer to their Stripe Customer.

        :raises ResourceNotFound: when there is no such customer.
        """

        def work(session: Session) -> Customer:
            row = session.get(CustomerRow, customer_id, with_for_update=True)
            if row is None:
                raise ResourceNotFound(f"Customer {customer_id} not found.")
            row.stripe_customer_id = stripe_customer_id
            session.flush()
            return rows.customer(row)

        return self._db.run(work, write=True)

    def saved_payment_methods(self, customer_id: str) -> list[SavedPaymentMethod]:
        """The customer's saved payment methods, oldest first."""
        query = (
            select(SavedPaymentMethodRow)
            .where(SavedPaymentMethodRow.customer_id == customer_id)
            .order_by(SavedPaymentMethodRow.created_at, SavedPaymentMethodRow.id)
        )
        return self._db.run(lambda session: [rows.saved_method(row) for row in session.scalars(query)])

    def record_saved_payment_method(
        self,
        customer_id: str,
        stripe_payment_method_id: str,
        brand: str,
        last4: str,
        exp_month: int | None,
        exp_year: int | None,
        *,
        method: str = "",
    ) -> SavedPaymentMethod:
        """Record a saved payment method; one record per (customer, payment method).

        ``method`` (the Stripe PaymentMethod's type) is not kept: ``brand`` says enough here.

        :raises ResourceNotFound: when there is no such customer.
        """
        existing_query = select(SavedPaymentMethodRow).where(
            SavedPaymentMethodRow.customer_id == customer_id,
            SavedPaymentMethodRow.stripe_payment_method_id == stripe_payment_method_id,
        )

        def existing(session: Session) -> SavedPaymentMethod | None:
            row = session.scalars(existing_query).first()
            return None if row is None else rows.saved_method(row)

        def work(session: Session) -> SavedPaymentMethod:
            found = existing(session)
            if found is not None:
                return found
            if session.get(CustomerRow, customer_id) is None:
                raise ResourceNotFound(f"Customer {customer_id} not found.")
            row = SavedPaymentMethodRow(
                id=str(uuid.uuid4()),
                customer_id=customer_id,
                stripe_payment_method_id=stripe_payment_method_id,
                brand=brand[:32],
                last4=last4[-4:],
                exp_month=exp_month,
                exp_year=exp_year,
            )
            session.add(row)
            session.flush()
            return rows.saved_method(row)

        try:
            return self._db.run(work, write=True)
        except IntegrityError:
            # A concurrent recording of the same method won on the unique index: use its record.
            winner = self._db.run(existing, name="record_saved_payment_method")
            if winner is None:
                raise
            return winner

    def remove_saved_payment_method(self, customer_id: str, saved_id: str) -> SavedPaymentMethod | None:
        """Delete one of this customer's saved methods; another customer's is never touched."""
        query = select(SavedPaymentMethodRow).where(
            SavedPaymentMethodRow.id == saved_id, SavedPaymentMethodRow.customer_id == customer_id
        )

        def work(session: Session) -> SavedPaymentMethod | None:
            row = session.scalars(query).first()
            if row is None:
                return None
            removed = rows.saved_method(row)
            session.delete(row)
            return removed

        return self._db.run(work, write=True)

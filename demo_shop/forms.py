"""The shop's forms (Flask-WTF: every one carries a CSRF token)."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField, Form, FormField, PasswordField, RadioField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, Optional, Regexp, ValidationError

from demo_shop.cart import MAX_QUANTITY
from demo_shop.pricing import COUNTRIES, SHIPPING_METHODS, STANDARD, ShippingMethod, method_of
from flask_psp_connector import Address

QUANTITY_MESSAGE = f"Quantity must be a whole number from 1 to {MAX_QUANTITY}."


def _quantity(form: Any, field: StringField) -> None:
    text = (field.data or "").strip()
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_QUANTITY:
        raise ValidationError(QUANTITY_MESSAGE)


class QuantityForm(FlaskForm):
    """Add a product to the cart, or set a cart line's quantity."""

    quantity = StringField("Quantity", default="1", validators=[_quantity])

    @property
    def value(self) -> int:
        """The validated quantity."""
        return int(self.quantity.data.strip())


class RemoveForm(FlaskForm):
    """Remove a line from the cart (the CSRF token is all it carries)."""


def _required(label: str, maximum: int) -> list[Any]:
    too_long = f"Keep the {label} under {maximum + 1} characters."
    return [DataRequired(f"Enter your {label}."), Length(max=maximum, message=too_long)]


class AddressForm(Form):
    """A postal address in one of the countries the shop ships to."""

    first_name = StringField("First name", validators=_required("first name", 60))
    last_name = StringField("Last name", validators=_required("last name", 60))
    street_name = StringField("Street", validators=_required("street", 100))
    street_number = StringField(
        "House number", validators=[Optional(), Length(max=20, message="Keep the house number under 21 characters.")]
    )
    additional_street_info = StringField(
        "Apartment, suite (optional)", validators=[Optional(), Length(max=100, message="Keep this under 101 characters.")]
    )
    postal_code = StringField("Postal code", validators=[
        DataRequired("Enter your postal code."),
        Regexp(r"^[A-Za-z0-9][A-Za-z0-9 -]{1,9}$", message="Enter a valid postal code (letters, digits, spaces)."),
    ])
    city = StringField("City", validators=_required("city", 80))
    country = SelectField(
        "Country",
        choices=[SelectChoice(code, name) for code, (name, _rate) in sorted(COUNTRIES.items(), key=lambda c: c[1][0])],
        default="DE",
        validate_choice=False,
        validators=[DataRequired("Choose a country.")],
    )
    phone = StringField("Phone (optional)", validators=[
        Optional(), Regexp(r"^\+?[0-9 ()/-]{5,20}$", message="Enter a phone number using digits, spaces and +."),
    ])

    def validate_country(self, field: SelectField) -> None:
        if field.data not in COUNTRIES:
            raise ValidationError("We ship only to the countries in the list.")

    def to_address(self, email: str) -> Address:
        """The address as the connector stores it."""
        return Address(
            first_name=self.first_name.data.strip(),
            last_name=self.last_name.data.strip(),
            street_name=self.street_name.data.strip(),
            street_number=(self.street_number.data or "").strip(),
            additional_street_info=(self.additional_street_info.data or "").strip(),
            postal_code=self.postal_code.data.strip().upper(),
            city=self.city.data.strip(),
            country=self.country.data,
            phone=(self.phone.data or "").strip(),
            email=email,
        )


class CheckoutForm(FlaskForm):
    """Email and addresses; the billing address is only read when it differs."""

    email = StringField("Email", validators=[
        DataRequired("Enter your email address."),
        Length(max=254, message="That email address is too long."),
        Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$", message="Enter a valid email address, like name@example.com."),
    ])
    shipping = FormField(AddressForm)
    shipping_method = RadioField(
        "Shipping method",
        choices=[SelectChoice(m.id, f"{m.name} ({m.delivery})") for m in SHIPPING_METHODS],
        default=STANDARD.id,
        validate_choice=False,
    )
    billing_same = BooleanField("Billing address is the same as the shipping address", default=True)
    billing = FormField(AddressForm)

    def validate_shipping_method(self, field: RadioField) -> None:
        if field.data not in [m.id for m in SHIPPING_METHODS]:
            raise ValidationError("Choose a shipping method.")

    @property
    def method(self) -> ShippingMethod:
        """The validated shipping method."""
        return method_of(self.shipping_method.data)

    def validate(self, extra_validators: Any = None) -> bool:
        """Validate, ignoring the billing fields when the shipping address is reused."""
        super().validate(extra_validators)
        if self.billing_same.data:
            for field in self.billing.form:
                field.errors = []
        return not self.errors

    @classmethod
    def for_cart(
        cls, email: str | None, shipping: Address | None, billing: Address | None, method: str | None = None
    ) -> CheckoutForm:
        """The form pre-filled with what the cart already holds (on GET)."""
        same = billing is None or shipping is None or billing == shipping
        return cls(data={
            "email": email or "",
            "shipping": _address_data(shipping),
            "shipping_method": method_of(method).id,
            "billing_same": same,
            "billing": _address_data(None if same else billing),
        })


def _address_data(address: Address | None) -> dict[str, str]:
    if address is None:
        return {}
    fields = ("first_name", "last_name", "street_name", "street_number", "additional_street_info",
              "postal_code", "city", "country", "phone")
    return {name: getattr(address, name) for name in fields}


class LoginForm(FlaskForm):
    """The back office password."""

    password = PasswordField("Password", validators=[DataRequired("Enter the password.")])


class AmountForm(FlaskForm):
    """An amount to capture or refund, typed like 12.50 (blank: the full amount)."""

    amount = StringField("Amount", validators=[Length(max=20, message="That amount is too long.")])


class ActionForm(FlaskForm):
    """An operation with no input (cancel)."""


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _email_field() -> StringField:
    return StringField("Email", filters=[_strip], validators=[
        DataRequired("Enter your email address."),
        Length(max=254, message="That email address is too long."),
        Regexp(r"^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$", message="Enter a valid email address, like name@example.com."),
    ])


#: Shortest password a new account may have (NIST SP 800-63B's minimum).
MIN_PASSWORD = 8
#: Longest password accepted (keeps hashing cost bounded).
MAX_PASSWORD = 128


class SignUpForm(FlaskForm):
    """A new customer account: email, name and password (typed twice)."""

    email = _email_field()
    name = StringField("Name (optional)", validators=[
        Optional(), Length(max=120, message="Keep the name under 121 characters."),
    ])
    password = PasswordField("Password", validators=[
        DataRequired("Choose a password."),
        Length(min=MIN_PASSWORD, max=MAX_PASSWORD,
               message=f"Use {MIN_PASSWORD} to {MAX_PASSWORD} characters for your password."),
    ])
    confirm = PasswordField("Repeat the password", validators=[
        DataRequired("Type the password again."), EqualTo("password", message="The two passwords differ."),
    ])


class SignInForm(FlaskForm):
    """Email and password of an existing account."""

    email = _email_field()
    password = PasswordField("Password", validators=[
        DataRequired("Enter your password."), Length(max=MAX_PASSWORD, message="That password is too long."),
    ])

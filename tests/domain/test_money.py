"""Money is exact: integer minor units and Stripe's exponents, both directions."""

import pytest

from flask_psp_connector.domain.money import (
    Money,
    from_stripe_amount,
    iso_fraction_digits,
    stripe_amount_like,
    stripe_exponent,
)
from flask_psp_connector.errors import InvalidOperation


@pytest.mark.parametrize(
    ("currency", "iso", "stripe"),
    [("EUR", 2, 2), ("usd", 2, 2), ("JPY", 0, 0), ("KRW", 0, 0), ("KWD", 3, 3), ("BHD", 3, 3),
     ("ISK", 0, 2), ("UGX", 0, 2), ("MGA", 2, 0), ("CLF", 4, 2)],
)
def test_exponents(currency: str, iso: int, stripe: int) -> None:
    assert iso_fraction_digits(currency) == iso
    assert stripe_exponent(currency) == stripe


@pytest.mark.parametrize(
    ("money", "stripe_amount"),
    [
        (Money.of(1999, "EUR"), 1999),
        (Money.of(500, "JPY"), 500),          # zero-decimal: 500 yen is 500
        (Money.of(5120, "KWD"), 5120),        # three-decimal, last digit 0
        (Money.of(5, "ISK"), 500),            # ISO 0 digits, Stripe wants two
        (Money(1250, "EUR", 2), 1250),
        (Money(12500, "JPY", 2), 125),        # a platform counting yen in cents
    ],
)
def test_to_stripe_is_exact(money: Money, stripe_amount: int) -> None:
    assert money.to_stripe() == stripe_amount
    assert from_stripe_amount(stripe_amount, money.currency_code, money.fraction_digits) == money


@pytest.mark.parametrize(
    "money",
    [Money.of(5124, "KWD"), Money(12550, "JPY", 2), Money(550, "ISK", 2), Money.of(150, "MGA")],
)
def test_amounts_stripe_cannot_charge_exactly_are_refused(money: Money) -> None:
    with pytest.raises(InvalidOperation):
        money.to_stripe()


def test_stripe_amount_with_more_precision_than_asked_is_refused() -> None:
    with pytest.raises(InvalidOperation):
        from_stripe_amount(550, "ISK", 0)
    assert from_stripe_amount(500, "ISK") == Money(5, "ISK", 0)


@pytest.mark.parametrize("amount", [10.0, "10", None, True])
def test_money_refuses_anything_but_int(amount: object) -> None:
    with pytest.raises(TypeError):
        Money(amount, "EUR", 2)  # type: ignore[arg-type]


def test_currency_code_is_validated_and_upper_cased() -> None:
    assert Money(1, "eur", 2).currency_code == "EUR"
    with pytest.raises(ValueError):
        Money(1, "EURO", 2)


def test_a_stripe_amount_takes_the_precision_and_currency_of_the_amount_it_is_like() -> None:
    three_digits = Money(12_340, "EUR", 3)
    assert stripe_amount_like(three_digits, 1234) == Money(12_340, "EUR", 3)
    assert stripe_amount_like(three_digits, None) == Money(0, "EUR", 3)
    assert stripe_amount_like(Money.of(0, "EUR"), 500, "usd") == Money(500, "USD", 2)
    assert stripe_amount_like(Money.of(0, "ISK"), 12_300) == Money(123, "ISK", 0)  # Stripe counts ISK in hundredths
    with pytest.raises(InvalidOperation):
        stripe_amount_like(Money.of(0, "ISK"), 12_345)

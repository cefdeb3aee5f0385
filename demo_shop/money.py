"""Amounts as people read and type them, to and from integer minor units.

Formatting and parsing go through integers and :class:`decimal.Decimal`, never floats,
with the currency's ISO fraction digits.
"""

from __future__ import annotations

import re
from decimal import Decimal

from flask_psp_connector.domain.money import Money, iso_fraction_digits

_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥"}
_AMOUNT = re.compile(r"\d{1,12}(?:\.\d+)?")


def format_money(amount: Money | int, currency: str = "EUR") -> str:
    """``Money.of(1250, "EUR")`` or ``(1250, "EUR")`` → ``€12.50``; ``-1250`` → ``-€12.50``."""
    if isinstance(amount, Money):
        cents, currency, digits = amount.cent_amount, amount.currency_code, amount.fraction_digits
    else:
        cents, digits = amount, iso_fraction_digits(currency)
    units, minor = divmod(abs(cents), 10**digits)
    number = f"{units:,}" + (f".{minor:0{digits}d}" if digits else "")
    symbol = _SYMBOLS.get(currency.upper())
    text = f"{symbol}{number}" if symbol else f"{number} {currency.upper()}"
    return f"-{text}" if cents < 0 else text


def parse_amount(text: str, currency: str) -> int:
    """Read an amount typed as ``12.50`` into minor units of ``currency``.

    :raises ValueError: with a message for people, for anything that is not a positive
        amount with at most the currency's number of decimals.
    """
    digits = iso_fraction_digits(currency)
    cleaned = (text or "").strip()
    if not _AMOUNT.fullmatch(cleaned):
        raise ValueError("Enter an amount like 12.50, using digits and one decimal point.")
    value = Decimal(cleaned)
    if -value.as_tuple().exponent > digits:
        raise ValueError(f"{currency.upper()} amounts have at most {digits} decimals.")
    cents = int(value.scaleb(digits))
    if cents <= 0:
        raise ValueError("The amount must be more than zero.")
    return cents

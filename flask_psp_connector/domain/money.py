"""Exact money: integer minor units, ISO 4217 exponents and Stripe's exponents.

The commerce platform counts in ISO minor units (``fraction_digits``); Stripe counts in
its own unit per currency. The two differ for ISK and UGX (ISO 0, Stripe 2) and Stripe
adds rounding rules for three-decimal currencies. One table serves both directions, and
a value that cannot be converted exactly is refused, never rounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from flask_psp_connector.errors import InvalidOperation

#: ISO 4217 exponents that are not 2.
_ISO_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    **dict.fromkeys("CLF UYW".split(), 4),
}

#: Largest amount, in a currency's minor unit, the connector acts on (far beyond any
#: real payment, well within Stripe's and the database's integers).
MAX_CENT_AMOUNT = 999_999_999_999

#: Stripe's zero-decimal currencies (ISK and UGX are charged with two decimals).
_STRIPE_ZERO_DECIMAL = frozenset(
    "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF VND VUV XAF XOF XPF".split()
)
#: Stripe's three-decimal currencies: the last digit sent must be 0.
_STRIPE_THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())
#: Stripe charges these with two decimals but accepts whole units only.
_STRIPE_WHOLE_UNITS = frozenset({"ISK", "UGX"})


def iso_fraction_digits(currency: str) -> int:
    """Return the ISO 4217 exponent of ``currency`` (2 for most currencies)."""
    return _ISO_EXPONENTS.get(currency.upper(), 2)


def stripe_exponent(currency: str) -> int:
    """Return the exponent Stripe uses for ``currency`` amounts."""
    code = currency.upper()
    if code in _STRIPE_ZERO_DECIMAL:
        return 0
    if code in _STRIPE_THREE_DECIMAL:
        return 3
    return 2


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units of a currency, as commercetools writes it.

    :param cent_amount: the amount in minor units (an ``int``, never a float).
    :param currency_code: upper-case ISO 4217 code.
    :param fraction_digits: number of minor-unit digits the amount is counted in.
    """

    cent_amount: int
    currency_code: str
    fraction_digits: int

    def __post_init__(self) -> None:
        if type(self.cent_amount) is not int:
            raise TypeError("cent_amount must be an int")
        if len(self.currency_code) != 3 or not self.currency_code.isalpha():
            raise ValueError(f"not a currency code: {self.currency_code!r}")
        object.__setattr__(self, "currency_code", self.currency_code.upper())

    @classmethod
    def of(cls, cent_amount: int, currency_code: str) -> Money:
        """Build an amount counted in the currency's ISO minor unit."""
        return cls(cent_amount, currency_code, iso_fraction_digits(currency_code))

    def with_amount(self, cent_amount: int) -> Money:
        """Return the same currency and precision with another amount."""
        return Money(cent_amount, self.currency_code, self.fraction_digits)

    def to_stripe(self) -> int:
        """Return the amount in Stripe's unit for this currency.

        :raises InvalidOperation: when Stripe cannot charge this amount exactly.
        """
        return to_stripe_amount(self)

    def to_major(self) -> Decimal:
        """The amount in major units, exact (``Decimal("12.34")`` for 1234 EUR cents)."""
        return Decimal(self.cent_amount).scaleb(-self.fraction_digits)


def to_stripe_amount(money: Money) -> int:
    """Convert ``money`` to Stripe's unit, refusing what Stripe would reject or round.

    :raises InvalidOperation: for a fraction Stripe cannot represent, a three-decimal
        amount whose last digit is not 0, or fractional ISK/UGX.
    """
    code = money.currency_code
    shift = stripe_exponent(code) - money.fraction_digits
    amount: int
    if shift >= 0:
        amount = money.cent_amount * 10**shift
    else:
        amount, remainder = divmod(money.cent_amount, 10**-shift)
        if remainder:
            raise InvalidOperation(
                f"{code} amounts are charged in whole units of 10^{-shift} minor units."
            )
    if code in _STRIPE_THREE_DECIMAL and amount % 10:
        raise InvalidOperation(f"{code} amounts must end in 0 (Stripe rounds to the nearest ten).")
    if code in _STRIPE_WHOLE_UNITS and amount % 100:
        raise InvalidOperation(f"{code} amounts must be whole units.")
    return amount


def from_stripe_amount(amount: int, currency: str, fraction_digits: int | None = None) -> Money:
    """Convert a Stripe amount back to minor units with ``fraction_digits`` digits.

    :param fraction_digits: the precision wanted; the ISO exponent when omitted.
    :raises InvalidOperation: when the amount does not fit that precision exactly.
    """
    code = currency.upper()
    digits = iso_fraction_digits(code) if fraction_digits is None else fraction_digits
    shift = digits - stripe_exponent(code)
    if shift >= 0:
        return Money(amount * 10**shift, code, digits)
    cent_amount, remainder = divmod(amount, 10**-shift)
    if remainder:
        raise InvalidOperation(f"Stripe amount {amount} {code} has more precision than {digits} digits.")
    return Money(cent_amount, code, digits)


def stripe_amount_like(like: Money, amount: int | None, currency: str | None = None) -> Money:
    """A Stripe amount (``None`` counts as 0) at the precision of ``like``: in its
    fraction digits, and in its currency unless Stripe names one.

    :raises InvalidOperation: when the amount does not fit that precision exactly.
    """
    return from_stripe_amount(amount or 0, currency or like.currency_code, like.fraction_digits)


def from_major(amount: Decimal | int, currency: str) -> Money:
    """Convert an amount in major units to ISO minor units, exactly.

    :raises InvalidOperation: for an amount with more decimals than the currency has,
        or one that is not a finite number.
    """
    code = currency.upper()
    digits = iso_fraction_digits(code)
    if isinstance(amount, bool) or not isinstance(amount, (Decimal, int)) or not Decimal(amount).is_finite():
        raise InvalidOperation(f"{amount!r} is not an amount.")
    minor = Decimal(amount).scaleb(digits)
    if minor != minor.to_integral_value():
        raise InvalidOperation(f"{amount} {code} has more than {digits} decimals.")
    return Money(int(minor), code, digits)

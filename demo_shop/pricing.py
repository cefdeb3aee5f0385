"""Shipping and VAT: computed from the cart subtotal and the shipping country only.

Every amount is an integer number of euro cents; rates are basis points so that no
float is ever involved. Prices in the catalog are net: VAT is added on the goods and
the shipping at the destination country's standard rate.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Where the shop ships to: country code → (name, standard VAT rate in basis points).
COUNTRIES: dict[str, tuple[str, int]] = {
    "AT": ("Austria", 2000),
    "BE": ("Belgium", 2100),
    "DE": ("Germany", 1900),
    "DK": ("Denmark", 2500),
    "ES": ("Spain", 2100),
    "FI": ("Finland", 2550),
    "FR": ("France", 2000),
    "IE": ("Ireland", 2300),
    "IT": ("Italy", 2200),
    "LU": ("Luxembourg", 1700),
    "NL": ("Netherlands", 2100),
    "PL": ("Poland", 2300),
    "PT": ("Portugal", 2300),
    "SE": ("Sweden", 2500),
}
#: The shop's own country: the estimate shown before an address is known.
HOME_COUNTRY = "DE"
#: Orders from this subtotal on ship for free.
FREE_SHIPPING_FROM = 6000
DOMESTIC_SHIPPING = 490
EU_SHIPPING = 990


@dataclass(frozen=True, slots=True)
class Quote:
    """Shipping and tax for one cart, and how they were worked out."""

    shipping: int
    tax: int
    country: str
    tax_rate: int  # basis points

    @property
    def tax_rate_label(self) -> str:
        """The rate as people write it, e.g. ``19%`` or ``25.5%``."""
        whole, rest = divmod(self.tax_rate, 100)
        return f"{whole}%" if not rest else f"{whole}.{rest:02d}".rstrip("0") + "%"


def country_name(code: str) -> str:
    """The English name of a country the shop ships to (the code itself otherwise)."""
    return COUNTRIES.get(code, (code, 0))[0]


def quote(subtotal: int, country: str | None) -> Quote:
    """Shipping and VAT for goods worth ``subtotal`` cents shipped to ``country``.

    An empty cart costs nothing; an unknown or missing country is quoted as the
    shop's home country. VAT is rounded half up to the cent.
    """
    if type(subtotal) is not int or subtotal < 0:
        raise ValueError("subtotal must be a non-negative int of cents")
    code = country if country in COUNTRIES else HOME_COUNTRY
    rate = COUNTRIES[code][1]
    if subtotal == 0:
        return Quote(0, 0, code, rate)
    if subtotal >= FREE_SHIPPING_FROM:
        shipping = 0
    else:
        shipping = DOMESTIC_SHIPPING if code == HOME_COUNTRY else EU_SHIPPING
    tax = ((subtotal + shipping) * rate + 5000) // 10000
    return Quote(shipping, tax, code, rate)

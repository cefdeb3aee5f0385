"""Shipping and VAT: computed from the cart subtotal, the shipping country and the
shipping method only.

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
#: Orders from this subtotal on ship for free with the standard method.
FREE_SHIPPING_FROM = 6000
DOMESTIC_SHIPPING = 490
EU_SHIPPING = 990


@dataclass(frozen=True, slots=True)
class ShippingMethod:
    """A way the shop ships, priced per destination (home country or elsewhere).

    :param id: stable identifier, used as the wallet's shipping rate id.
    :param name: what the buyer reads; stored on the cart as its shipping method name.
    :param days: delivery estimate in working days, (fastest, slowest).
    :param free_from: subtotal from which this method costs nothing (never, if ``None``).
    """

    id: str
    name: str
    days: tuple[int, int]
    domestic: int
    abroad: int
    free_from: int | None = None

    def price(self, subtotal: int, country: str) -> int:
        """Net shipping price for goods worth ``subtotal`` cents sent to ``country``."""
        if self.free_from is not None and subtotal >= self.free_from:
            return 0
        return self.domestic if country == HOME_COUNTRY else self.abroad

    @property
    def delivery(self) -> str:
        """The delivery estimate as the shop writes it."""
        fastest, slowest = self.days
        if fastest == slowest:
            return "next working day" if fastest == 1 else f"{fastest} working days"
        return f"{fastest}–{slowest} working days"


STANDARD = ShippingMethod("standard", "Standard shipping", (2, 4), DOMESTIC_SHIPPING, EU_SHIPPING, FREE_SHIPPING_FROM)
EXPRESS = ShippingMethod("express", "Express shipping", (1, 1), 1290, 2490)
#: Every method the shop offers, the default first.
SHIPPING_METHODS: tuple[ShippingMethod, ...] = (STANDARD, EXPRESS)


def shipping_method(key: str | None) -> ShippingMethod | None:
    """The method with this id or name, or ``None``."""
    return next((m for m in SHIPPING_METHODS if key in (m.id, m.name)), None)


def method_of(name: str | None) -> ShippingMethod:
    """The method a cart's stored name stands for; the default for none or an unknown one."""
    return shipping_method(name) or STANDARD


@dataclass(frozen=True, slots=True)
class Quote:
    """Shipping and tax for one cart, and how they were worked out."""

    shipping: int
    tax: int
    country: str
    tax_rate: int  # basis points
    method: ShippingMethod = STANDARD

    @property
    def tax_rate_label(self) -> str:
        """The rate as people write it, e.g. ``19%`` or ``25.5%``."""
        whole, rest = divmod(self.tax_rate, 100)
        return f"{whole}%" if not rest else f"{whole}.{rest:02d}".rstrip("0") + "%"


def country_name(code: str) -> str:
    """The English name of a country the shop ships to (the code itself otherwise)."""
    return COUNTRIES.get(code, (code, 0))[0]


def quote(subtotal: int, country: str | None, method: ShippingMethod = STANDARD) -> Quote:
    """Shipping and VAT for goods worth ``subtotal`` cents shipped to ``country`` by ``method``.

    An empty cart costs nothing; an unknown or missing country is quoted as the
    shop's home country. VAT is rounded half up to the cent.
    """
    if type(subtotal) is not int or subtotal < 0:
        raise ValueError("subtotal must be a non-negative int of cents")
    code = country if country in COUNTRIES else HOME_COUNTRY
    rate = COUNTRIES[code][1]
    if subtotal == 0:
        return Quote(0, 0, code, rate, method)
    shipping = method.price(subtotal, code)
    tax = ((subtotal + shipping) * rate + 5000) // 10000
    return Quote(shipping, tax, code, rate, method)


def quotes(subtotal: int, country: str | None) -> list[Quote]:
    """One quote per shipping method, in the order the shop offers them."""
    return [quote(subtotal, country, method) for method in SHIPPING_METHODS]

"""The products the shop sells: the only source of names and prices put in carts."""

from __future__ import annotations

from dataclasses import dataclass

#: The currency every price is in.
CURRENCY = "EUR"


@dataclass(frozen=True, slots=True)
class Product:
    """One product of the catalog.

    :param unit_price: price of one unit, before tax, in euro cents.
    :param image: file name under ``static/img/products/``.
    """

    slug: str
    sku: str
    name: str
    summary: str
    description: str
    unit_price: int
    image: str


PRODUCTS: tuple[Product, ...] = (
    Product(
        "stoneware-mug", "MUG-STONE-01", "Stoneware Mug",
        "Hand-glazed, 350 ml, for slow mornings.",
        "Thrown on the wheel and dipped in a speckled oatmeal glaze, this mug holds a generous "
        "350 ml and keeps its warmth through the first chapter of a book. Dishwasher safe.",
        1800, "stoneware-mug.svg",
    ),
    Product(
        "pour-over-kettle", "KET-POUR-01", "Pour-Over Kettle",
        "Gooseneck spout for a steady, even pour.",
        "A one-litre stainless steel kettle with a slender gooseneck spout, so every pour over "
        "your coffee grounds is slow and even. Works on gas, electric and induction hobs.",
        5900, "pour-over-kettle.svg",
    ),
    Product(
        "linen-tea-towel", "TOW-LINEN-01", "Linen Tea Towel",
        "Stonewashed European linen, 50 × 70 cm.",
        "Soft from the first use and more absorbent with every wash. Woven from European flax "
        "with a classic stripe and a loop to hang it by the stove.",
        1400, "linen-tea-towel.svg",
    ),
    Product(
        "dot-grid-notebook", "NOTE-DOT-A5", "Dot-Grid Notebook",
        "A5, 192 pages of 100 g/m² paper.",
        "Lay-flat binding, numbered pages and paper thick enough for fountain pens. The cloth "
        "cover ages beautifully in a bag or on a desk.",
        1600, "dot-grid-notebook.svg",
    ),
    Product(
        "canvas-tote", "BAG-TOTE-01", "Canvas Market Tote",
        "Heavy cotton canvas with leather handles.",
        "Roomy enough for the weekly market run and sturdy enough to last for years. An inner "
        "pocket keeps keys and phone within reach.",
        3200, "canvas-tote.svg",
    ),
    Product(
        "beeswax-candle", "CAN-BEES-01", "Beeswax Pillar Candle",
        "Pure beeswax, around 40 hours of light.",
        "Poured from pure beeswax with a cotton wick. It burns clean and slow with a faint, "
        "honeyed scent.",
        2200, "beeswax-candle.svg",
    ),
    Product(
        "wool-socks", "SOCK-WOOL-01", "Merino Wool Socks",
        "Two pairs, warm without the bulk.",
        "Knitted from soft merino with a reinforced heel and toe. Two pairs in forest green "
        "and rust, for the coldest days of the year.",
        2400, "wool-socks.svg",
    ),
    Product(
        "terracotta-planter", "POT-TERRA-01", "Terracotta Planter",
        "Ø 14 cm, with a matching saucer.",
        "Unglazed terracotta lets the roots breathe. Sized for herbs on the windowsill or a "
        "small fern on the desk; the saucer catches every drop.",
        1900, "terracotta-planter.svg",
    ),
    Product(
        "enamel-pin-set", "PIN-ENAM-03", "Enamel Pin Set",
        "Three hard-enamel pins: mug, leaf and sun.",
        "A trio of small hard-enamel pins with gold-tone edges and rubber clasps. Made for "
        "jackets, bags and the strap of your favourite tote.",
        1200, "enamel-pin-set.svg",
    ),
)

_BY_SLUG = {product.slug: product for product in PRODUCTS}
_BY_SKU = {product.sku: product for product in PRODUCTS}


def product_by_slug(slug: str) -> Product | None:
    """The product shown at ``/products/<slug>``, if any."""
    return _BY_SLUG.get(slug)


def product_by_sku(sku: str) -> Product | None:
    """The product a cart line refers to, if it is still sold."""
    return _BY_SKU.get(sku)

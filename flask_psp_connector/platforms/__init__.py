"""Where carts, payments and orders live: the embedded store or commercetools, each implementing
:class:`~flask_psp_connector.ports.CommercePlatform`.
"""

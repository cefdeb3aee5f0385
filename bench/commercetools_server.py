"""The app bench/commercetools.py serves with gunicorn: the connector in commercetools mode,
configured from the environment (``CTP_*``, ``STRIPE_*``), as a deployment would be."""

from flask import Flask

from flask_psp_connector import PSPConnector


def create_app() -> Flask:
    """The connector alone, every setting from the environment."""
    app = Flask("commercetools_bench")
    PSPConnector(app)
    return app

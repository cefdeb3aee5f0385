"""An app configured only from the environment, for tests that run a real server."""

from flask import Flask

from flask_psp_connector import PSPConnector


def create_app() -> Flask:
    """The connector alone, configured by STRIPE_* and PSP_* environment variables."""
    app = Flask("connector_server")
    PSPConnector(app)
    return app

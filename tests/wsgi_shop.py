"""The demo shop as the Procfile serves it, with the app's own log records at INFO."""

import logging

from flask import Flask

import demo_shop


def create_app() -> Flask:
    """``demo_shop.create_app()`` from the environment, logging at INFO to stderr."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    return demo_shop.create_app()

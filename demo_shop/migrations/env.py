"""Alembic's environment for the demo shop's tables: run on the connection the caller holds."""

from alembic import context

from flask_psp_connector.platforms.embedded.migrate import run_environment

run_environment(context)

"""``flask psp ...``: commands for deploy hooks and operations."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

psp_cli = AppGroup("psp", help="flask-psp-connector commands.")


def _state():  # type: ignore[no-untyped-def]
    return current_app.extensions["psp_connector"]


@psp_cli.command("init-db")
def init_db() -> None:
    """Create the embedded store's tables (safe to run on every release)."""
    platform = _state().platform
    if not hasattr(platform, "create_schema"):
        raise click.ClickException("The configured commerce platform has no local tables.")
    platform.create_schema()
    click.echo(f"Schema ready on {platform.engine.url.render_as_string(hide_password=True)}.")


@psp_cli.command("create-client")
@click.option("--scope", "scopes", multiple=True, required=True, help="A scope the client may ask for (repeatable).")
@click.option("--name", default="", help="A label for the client.")
def create_client(scopes: tuple[str, ...], name: str) -> None:
    """Register an OAuth2 client for /oauth/token and print its credentials once."""
    clients = _state().clients
    if clients is None:
        raise click.ClickException("Clients are managed by the commerce platform's authorization server.")
    credentials = clients.create_client(" ".join(scopes), name)
    click.echo(f"client_id:     {credentials.client_id}")
    click.echo(f"client_secret: {credentials.client_secret}")
    click.echo(f"scope:         {credentials.scope}")
    click.echo("The secret is shown only now; store it safely.")

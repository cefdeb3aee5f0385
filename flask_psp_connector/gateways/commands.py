"""``flask psp gateways ...``: deliver and inspect the external gateways' callback outbox."""

from __future__ import annotations

import time

import click
from flask.cli import AppGroup, with_appcontext

from flask_psp_connector.errors import PSPError
from flask_psp_connector.gateways.commercelayer.actions import CommerceLayerGateway
from flask_psp_connector.gateways.delivery import deliver_due
from flask_psp_connector.gateways.store import GatewayStore
from flask_psp_connector.state import connector_state


def gateways_commands() -> click.Group:
    """The ``flask psp gateways`` group: the external gateways' callback outbox."""
    return AppGroup("gateways", help="External payment gateways (Commerce Layer).", commands=[deliver, list_callbacks])


def _gateway() -> tuple[CommerceLayerGateway[GatewayStore], str]:
    """The Commerce Layer gateway and its shared secret."""
    state = connector_state()
    if state.commercelayer is None:
        raise click.ClickException("No external gateway is configured (COMMERCELAYER_SHARED_SECRET).")
    gateway = state.commercelayer
    secret: str = state.settings["COMMERCELAYER_SHARED_SECRET"]
    return gateway, secret


@click.command("deliver")
@with_appcontext
@click.option("--loop", is_flag=True, help="Keep delivering (for a worker process) instead of one pass.")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between passes with --loop.")
def deliver(loop: bool, interval: float) -> None:
    """Post the due callbacks to the platform; failed ones are retried later with backoff.

    With ``--loop`` (the Procfile's ``worker``) a pass that fails (the store is down, say)
    is reported in one line and the next pass comes after ``--interval``.
    """
    gateway, secret = _gateway()
    while True:
        try:
            report = deliver_due(gateway.store, secret)
        except PSPError as exc:
            if not loop:
                raise
            click.echo(f"Delivery pass failed: {exc.message}", err=True)
        else:
            if report.delivered or report.failed or not loop:
                click.echo(f"{report.delivered} callback(s) delivered, {report.failed} failed (retried later).")
        if not loop:
            return
        time.sleep(interval)


@click.command("callbacks")
@with_appcontext
@click.option("--limit", default=50, show_default=True, help="How many of the oldest.")
def list_callbacks(limit: int) -> None:
    """Show the callbacks not delivered yet."""
    gateway, _ = _gateway()
    pending = gateway.store.pending_callbacks(limit)
    for callback in pending:
        click.echo(f"{callback.action_id}  attempts={callback.attempts}  "
                   f"next={callback.next_attempt_at.isoformat(timespec='seconds')}  {callback.last_error or '-'}")
    if not pending:
        click.echo("No callback waiting.")

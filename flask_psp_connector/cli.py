"""``flask psp ...``: commands for deploy hooks and operations.

:func:`psp_commands` builds the group each app registers; the commands are plain click
commands, run in the app's context.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import click
from flask.cli import AppGroup, with_appcontext

from flask_psp_connector.errors import ConfigurationError, PSPError
from flask_psp_connector.gateways.commands import gateways_commands
from flask_psp_connector.platforms.embedded.migrate import upgrade_store
from flask_psp_connector.settings import reference
from flask_psp_connector.state import ConnectorState, connector_state
from flask_psp_connector.stripe.adapter import StripeGateway
from flask_psp_connector.webhooks.events import HANDLED_EVENTS
from flask_psp_connector.webhooks.reconcile import Change
from flask_psp_connector.webhooks.reconcile import reconcile as reconcile_payments


class _Commands(AppGroup):
    """A command group whose commands end with one clear line, not a traceback, when Stripe,
    the platform or the configuration refuses."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except PSPError as exc:
            raise click.ClickException(exc.message) from None
        except ConfigurationError as exc:
            raise click.ClickException(str(exc)) from None


def psp_commands() -> click.Group:
    """The ``flask psp`` group, with its ``events`` and ``gateways`` subgroups."""
    events = click.Group("events", help="The inbox of Stripe events.", commands=[list_events, replay_event])
    return _Commands("psp", help="flask-psp-connector commands.", commands=[
        init_db, create_client, post_deploy, pre_undeploy, settings_reference, events, gateways_commands(), reconcile,
    ])


def _state() -> ConnectorState:
    return connector_state()


@click.command("init-db")
@with_appcontext
def init_db() -> None:
    """Upgrade the embedded store's tables to the current schema (safe to run on every release)."""
    database = _state().database
    if database is None:
        raise click.ClickException("The configured commerce platform has no local tables.")
    upgrade_store(database)
    click.echo(f"Schema ready on {database.engine.url.render_as_string(hide_password=True)}.")


@click.command("create-client")
@click.option("--scope", "scopes", multiple=True, required=True, help="A scope the client may ask for (repeatable).")
@click.option("--name", default="", help="A label for the client.")
@with_appcontext
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


def _stripe() -> StripeGateway:
    stripe = _state().stripe
    if stripe is None:
        raise click.ClickException("STRIPE_SECRET_KEY is not configured.")
    return stripe


def _webhook_url() -> str:
    settings = _state().settings
    if not settings["PSP_PUBLIC_URL"]:
        raise click.ClickException("Set PSP_PUBLIC_URL to this app's public base URL.")
    return f"{settings['PSP_PUBLIC_URL'].rstrip('/')}{settings['PSP_URL_PREFIX']}/stripe/webhooks"


def _platform_hook(name: str) -> None:
    """Run the platform's deploy step ``name``, if it has one, and print its report."""
    step = getattr(_state().platform, name, None)
    if step is None:
        return
    try:
        report = step()
    except PSPError as exc:
        raise click.ClickException(f"{name.replace('_', ' ')} failed: {exc.message} ({exc.code})") from None
    for line in report:
        click.echo(line)


#: Marks the webhook endpoints this command created (pre-undeploy deletes only those).
_CREATED_BY = {"created_by": "flask-psp-connector"}


@click.command("post-deploy")
@with_appcontext
def post_deploy() -> None:
    """Point the Stripe webhook endpoint at this deployment, with exactly the events handled.

    With STRIPE_WEBHOOK_ID, that endpoint is updated; without it, an endpoint for this URL
    is found or created (its signing secret is printed once). Running it again changes nothing.
    On commercetools, the connector's custom types are created first.
    """
    _platform_hook("install_custom_types")
    stripe, url, events = _stripe(), _webhook_url(), sorted(HANDLED_EVENTS)
    endpoint_id = _state().settings["STRIPE_WEBHOOK_ID"]
    endpoint: dict[str, Any] | None
    if endpoint_id:
        endpoint = stripe.retrieve_webhook_endpoint(endpoint_id)
    else:
        endpoint = next((e for e in stripe.list_webhook_endpoints() if e.get("url") == url), None)
    if endpoint is None:
        created = stripe.create_webhook_endpoint(url, events, metadata=_CREATED_BY)
        click.echo(f"Created webhook endpoint {created['id']} for {url}.")
        click.echo(f"Set STRIPE_WEBHOOK_SIGNING_SECRET={created['secret']} (shown only now).")
        return
    wanted = {"url": url, "enabled_events": events, "disabled": False}
    current = {"url": endpoint.get("url"), "enabled_events": sorted(endpoint.get("enabled_events") or []),
               "disabled": endpoint.get("status") == "disabled"}
    if current == wanted:
        click.echo(f"Webhook endpoint {endpoint['id']} already points at {url}; nothing changed.")
        return
    stripe.update_webhook_endpoint(endpoint["id"], **wanted)
    click.echo(f"Updated webhook endpoint {endpoint['id']}: {url}, {len(events)} events.")


@click.command("pre-undeploy")
@with_appcontext
def pre_undeploy() -> None:
    """Undo post-deploy: delete the endpoint it created, or disable STRIPE_WEBHOOK_ID's.

    On commercetools, the connector's custom types are removed first (unless in use).
    """
    _platform_hook("remove_custom_types")
    stripe, url = _stripe(), _webhook_url()
    endpoint_id = _state().settings["STRIPE_WEBHOOK_ID"]
    if endpoint_id:
        stripe.update_webhook_endpoint(endpoint_id, disabled=True)
        click.echo(f"Disabled webhook endpoint {endpoint_id}.")
        return
    ours = [e for e in stripe.list_webhook_endpoints() if e.get("url") == url and (e.get("metadata") or {}) == _CREATED_BY]
    for endpoint in ours:
        stripe.delete_webhook_endpoint(endpoint["id"])
        click.echo(f"Deleted webhook endpoint {endpoint['id']}.")
    if not ours:
        click.echo("No webhook endpoint of this deployment to remove.")


@click.command("settings")
@with_appcontext
def settings_reference() -> None:
    """Print every configuration key with its default, mode and meaning (Markdown)."""
    click.echo(reference())


@click.command("list")
@click.option("--limit", default=20, show_default=True, help="How many of the newest events.")
@with_appcontext
def list_events(limit: int) -> None:
    """Show the events still failing (kept for `events replay`), then the newest received and
    what became of them."""
    for failure in _state().platform.event_failures(limit):
        if not failure.resolved:
            seen = failure.last_seen.isoformat(timespec="seconds") if failure.last_seen else ""
            click.echo(f"{seen}  {failure.event_id}  {failure.event_type:32}  {'failing':9}  "
                       f"{failure.attempts} attempt(s): {failure.error}")
    for receipt in _state().platform.recent_events(limit):
        received = receipt.received_at.isoformat(timespec="seconds") if receipt.received_at else ""
        click.echo(f"{received}  {receipt.event_id}  {receipt.event_type:32}  {receipt.status.value:9}  "
                   f"{receipt.payment_id or '-'}  {receipt.detail}")


@click.command("replay")
@click.argument("event_id")
@with_appcontext
def replay_event(event_id: str) -> None:
    """Process an event again (idempotently): the copy kept when it failed, else Stripe's."""
    receipt = _state().event_processor().replay(event_id)
    click.echo(f"{event_id}: {receipt.status.value}{f' ({receipt.detail})' if receipt.detail else ''}")


@click.command("reconcile")
@click.option("--since", default="24h", show_default=True, help="How far back: e.g. 6h, 3d, or an ISO date.")
@click.option("--apply", "apply_changes", is_flag=True, help="Write the missing transactions (default: dry run).")
@with_appcontext
def reconcile(since: str, apply_changes: bool) -> None:
    """Compare what Stripe holds (PaymentIntent states, captures, refunds, disputes) with
    our payments and add what missed webhooks never delivered; prints each change."""
    state = _state()

    def report(change: Change) -> None:
        click.echo(change.describe(apply_changes))

    changed = reconcile_payments(state.event_processor(), _stripe(), _since(since), apply=apply_changes, report=report)
    verdict = "changed" if apply_changes else "to change (dry run; --apply writes)"
    click.echo(f"{changed} payment(s) {verdict}.")


def _since(text: str) -> int:
    """A Unix time from ``6h``/``3d``/``90m`` or an ISO 8601 date."""
    units = {"m": 60, "h": 3600, "d": 86400}
    try:
        if text[-1:] in units and text[:-1].isdigit():
            return int(time.time()) - int(text[:-1]) * units[text[-1]]
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is neither a duration like 24h nor an ISO date.") from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())

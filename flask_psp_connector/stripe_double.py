"""A local Stripe API double (localstripe) bound to 127.0.0.1, for offline work and tests.

``python -m flask_psp_connector.stripe_double --port 8420`` serves it; localstripe's own
command line listens on every interface and persists to a shared file, which this
launcher avoids. Requires the ``sandbox`` extra. Never used with real keys.
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_stripe_double(port: int | None = None, *, timeout: float = 15) -> Iterator[str]:
    """Start localstripe in a subprocess and yield its base URL; stop it afterwards."""
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", __name__, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                requests.get(f"{base}/v1/customers", auth=("sk_test_probe", ""), timeout=0.5)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("The local Stripe double did not start.") from None
                time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()


_SEARCH_CLAUSE = re.compile(r"^metadata\['([^'\\]+)'\]:'([^'\\]*)'$")


def install_additions(app: Any) -> None:
    """The double's additions: Stripe API routes localstripe lacks, with the response
    shapes Stripe documents (``ephemeral_keys``, ``customer_sessions``,
    ``customers/search`` for ``metadata['key']:'value'`` clauses joined by ``AND``),
    and two fields it refuses: a PaymentIntent's ``setup_future_usage`` and a
    PaymentMethod's ``allow_redisplay`` (kept, returned and updatable, as Stripe does)."""
    from aiohttp import web
    from localstripe import resources, server
    from localstripe.errors import UserError

    _keep_field(resources.PaymentIntent, "setup_future_usage", None, (None, "on_session", "off_session"))
    _keep_field(resources.PaymentMethod, "allow_redisplay", "unspecified", ("unspecified", "limited", "always"))

    async def create_ephemeral_key(request: Any) -> Any:
        data = await server.get_post_data(request) or {}
        if not request.headers.get("Stripe-Version"):
            raise UserError(400, "Stripe-Version header is required to create an ephemeral key.")
        customer = data.get("customer")
        if not isinstance(customer, str):
            raise UserError(400, "Missing required param: customer.")
        resources.Customer._api_retrieve(customer)  # 404 for an unknown customer
        created = int(time.time())
        return web.json_response({
            "id": f"ephkey_{resources.random_id(24)}", "object": "ephemeral_key",
            "associated_objects": [{"id": customer, "type": "customer"}],
            "created": created, "expires": created + 3600, "livemode": False,
            "secret": f"ek_test_{resources.random_id(32)}",
        })

    async def create_customer_session(request: Any) -> Any:
        data = await server.get_post_data(request) or {}
        customer = data.get("customer")
        components = data.get("components")
        if not isinstance(customer, str) or not isinstance(components, dict):
            raise UserError(400, "Missing required param: customer or components.")
        resources.Customer._api_retrieve(customer)
        created = int(time.time())
        return web.json_response({
            "object": "customer_session", "client_secret": f"cuss_secret_{resources.random_id(32)}",
            "components": components, "created": created, "customer": customer,
            "expires_at": created + 1800, "livemode": False,
        })

    async def search_customers(request: Any) -> Any:
        query = request.query.get("query", "")
        wanted = []
        for clause in query.split(" AND "):
            match = _SEARCH_CLAUSE.match(clause.strip())
            if match is None:
                raise UserError(400, "This double searches customers by metadata['key']:'value' only.")
            wanted.append(match.groups())
        limit = int(request.query.get("limit", "10"))
        found = [
            customer._export() for key, customer in resources.store.items()
            if key.startswith("customer:") and not getattr(customer, "deleted", False)
            and all((customer.metadata or {}).get(k) == v for k, v in wanted)
        ]
        return web.json_response({
            "object": "search_result", "url": "/v1/customers/search", "has_more": len(found) > limit,
            "next_page": None, "data": found[:limit],
        })

    additions = {
        ("POST", "/v1/ephemeral_keys"): create_ephemeral_key,
        ("POST", "/v1/customer_sessions"): create_customer_session,
        ("GET", "/v1/customers/search"): search_customers,
    }

    # A middleware rather than routes: localstripe's /v1/customers/{id}, registered
    # first, would take /v1/customers/search. Innermost, so its auth and errors apply.
    @web.middleware
    async def serve_additions(request: Any, handler: Any) -> Any:
        addition = additions.get((request.method, request.path))
        return await (addition or handler)(request)

    app.middlewares.append(serve_additions)


def _keep_field(resource: Any, name: str, default: str | None, allowed: tuple[str | None, ...]) -> None:
    """Let localstripe's ``resource`` take the optional field ``name`` on creation."""
    from localstripe.errors import UserError

    create = resource.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        value = kwargs.pop(name, default)
        if value not in allowed:
            raise UserError(400, f"Invalid {name}: {value}")
        create(self, *args, **kwargs)
        setattr(self, name, value)

    resource.__init__ = __init__


def main(argv: list[str] | None = None) -> None:
    """Serve localstripe on ``--host``/``--port`` without on-disk persistence."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    args = parser.parse_args(argv)

    from aiohttp import web
    from localstripe import resources, server

    resources.Store.dump_to_disk = lambda self: None  # keep state in memory only
    install_additions(server.app)
    web.run_app(server.app, host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()

"""The double's HTTP side: localstripe's app, our routes in front of it, Idempotency-Key.

``python -m flask_psp_connector.testing.server --port 8420`` serves it on 127.0.0.1 only
and keeps nothing on disk (localstripe's own command listens on every interface and
persists to a shared file). Requires the ``sandbox`` extra. Never used with real keys.

Idempotency follows Stripe's documentation: a POST with an ``Idempotency-Key`` header
that an earlier request (same secret key) used with the same parameters gets the first
answer again (``Idempotent-Replayed: true``); with other parameters, 400
``idempotency_error``; while the first is still running, 409. Answers are kept only when
the endpoint ran (2xx, and 402 card errors), not for requests refused before that.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl

import requests

from flask_psp_connector.testing import charges, extras, payments, refunds
from flask_psp_connector.testing.cards import TEST_PAYMENT_METHODS, brand
from flask_psp_connector.testing.ledger import Registration, StripeError, ledger, new_id, public


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_stripe_double(port: int | None = None, *, timeout: float = 15) -> Iterator[str]:
    """Start the double in a subprocess and yield its base URL; stop it afterwards."""
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "flask_psp_connector.testing.server", "--port", str(port), "--exit-with-parent"],
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


# -- routes ------------------------------------------------------------------------------

Route = Callable[[tuple[str, ...], dict[str, Any], Any], dict[str, Any]]


def _intent_answer(action: Callable[..., dict[str, Any]]) -> Route:
    def route(ids: tuple[str, ...], params: dict[str, Any], request: Any) -> dict[str, Any]:
        expand = params.pop("expand", None) or []
        return payments.export_intent(action(*ids, params), expand)

    return route


def _plain(action: Callable[..., dict[str, Any]], *, with_params: bool = True) -> Route:
    def route(ids: tuple[str, ...], params: dict[str, Any], request: Any) -> dict[str, Any]:
        if with_params:
            params.pop("expand", None)
            return public(action(*ids, params))
        return public(action(*ids))

    return route


def _expandable(action: Callable[..., dict[str, Any]]) -> Route:
    """A listing that honours ``expand`` itself."""
    def route(ids: tuple[str, ...], params: dict[str, Any], request: Any) -> dict[str, Any]:
        return public(action(*ids, params))

    return route


def _retrieve_intent(ids: tuple[str, ...], params: dict[str, Any], request: Any) -> dict[str, Any]:
    return payments.export_intent(payments.intent(ids[0]), params.get("expand") or [])


def _ephemeral_key(ids: tuple[str, ...], params: dict[str, Any], request: Any) -> dict[str, Any]:
    return extras.create_ephemeral_key(params, request.headers.get("Stripe-Version"))


_ID = r"([A-Za-z0-9_]+)"
ROUTES: list[tuple[str, re.Pattern[str], Route]] = [(method, re.compile(f"^{path}$"), route) for method, path, route in (
    ("POST", "/v1/payment_intents", _intent_answer(payments.create_intent)),
    ("GET", "/v1/payment_intents", _plain(payments.list_intents)),
    ("GET", f"/v1/payment_intents/{_ID}", _retrieve_intent),
    ("POST", f"/v1/payment_intents/{_ID}", _intent_answer(payments.update_intent)),
    ("POST", f"/v1/payment_intents/{_ID}/confirm", _intent_answer(payments.confirm_intent)),
    ("POST", f"/v1/payment_intents/{_ID}/capture", _intent_answer(payments.capture_intent)),
    ("POST", f"/v1/payment_intents/{_ID}/cancel", _intent_answer(payments.cancel_intent)),
    ("POST", f"/v1/payment_intents/{_ID}/_authenticate", _intent_answer(payments.authenticate_intent)),
    ("POST", f"/v1/payment_intents/{_ID}/_settle", _intent_answer(payments.settle_intent)),
    ("GET", "/v1/charges", _plain(charges.list_charges)),
    ("GET", f"/v1/charges/{_ID}", _plain(charges.charge, with_params=False)),
    ("POST", f"/v1/charges/{_ID}", _plain(charges.update_charge)),
    ("GET", "/v1/balance_transactions", _expandable(charges.list_balance_transactions)),
    ("GET", f"/v1/balance_transactions/{_ID}", _plain(charges.balance_transaction, with_params=False)),
    ("POST", "/v1/refunds", _plain(refunds.create_refund)),
    ("GET", "/v1/refunds", _plain(refunds.list_refunds)),
    ("GET", f"/v1/refunds/{_ID}", _plain(refunds.refund, with_params=False)),
    ("POST", f"/v1/refunds/{_ID}", _plain(refunds.update_refund)),
    ("GET", "/v1/disputes", _plain(refunds.list_disputes)),
    ("GET", f"/v1/disputes/{_ID}", _plain(refunds.dispute, with_params=False)),
    ("POST", f"/v1/disputes/{_ID}", _plain(refunds.update_dispute)),
    ("POST", f"/v1/disputes/{_ID}/close", _plain(refunds.close_dispute)),
    ("GET", "/v1/events", _plain(extras.list_events)),
    ("GET", f"/v1/events/{_ID}", _plain(extras.retrieve_event, with_params=False)),
    ("POST", "/v1/webhook_endpoints", _plain(extras.create_endpoint)),
    ("GET", "/v1/webhook_endpoints", _plain(extras.list_endpoints)),
    ("GET", f"/v1/webhook_endpoints/{_ID}", _plain(extras.retrieve_endpoint, with_params=False)),
    ("POST", f"/v1/webhook_endpoints/{_ID}", _plain(extras.update_endpoint)),
    ("DELETE", f"/v1/webhook_endpoints/{_ID}", _plain(extras.delete_endpoint, with_params=False)),
    ("POST", "/v1/ephemeral_keys", _ephemeral_key),
    ("POST", "/v1/customer_sessions", _plain(extras.create_customer_session)),
    ("GET", "/v1/elements/sessions", _plain(extras.elements_session)),
    ("GET", "/v1/customers/search", _plain(extras.search_customers)),
)]


# -- idempotency ---------------------------------------------------------------------------


_answers: dict[tuple[str, str], dict[str, Any]] = {}


def _api_key(request: Any) -> str:
    kind, _, value = request.headers.get("Authorization", "").partition(" ")
    if kind == "Basic":
        return base64.b64decode(value.encode()).decode(errors="replace").split(":")[0]
    return str(value)


async def _fingerprint(request: Any) -> str:
    raw = await request.read()
    try:
        body: Any = json.loads(raw) if raw.strip().startswith(b"{") else sorted(parse_qsl(raw.decode(), keep_blank_values=True))
    except ValueError:
        body = raw.decode(errors="replace")
    return json.dumps([request.method, request.path, body], sort_keys=True)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    from aiohttp import web

    return web.json_response(body, status=status, headers=headers, dumps=lambda x: json.dumps(x, indent=2))


def _error(error: StripeError, request_id: str) -> Any:
    body = json.loads(json.dumps(error.body))
    body["error"]["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
    return _json(body, error.status, {"Request-Id": request_id})


# -- the app --------------------------------------------------------------------------------


def install_additions(app: Any) -> None:
    """Put our routes, Idempotency-Key handling and event delivery in front of localstripe's app."""
    from aiohttp import web
    from localstripe import resources, server

    _patch_localstripe(resources)

    async def params_of(request: Any) -> dict[str, Any]:
        if request.method in ("POST", "DELETE"):
            return dict(await server.get_post_data(request) or {})
        return dict(server.unflatten_data(request.query) or {})

    async def dispatch(request: Any, handler: Any, request_id: str) -> Any:
        if request.method == "DELETE" and request.path == "/_config/data":
            ledger.clear()
            _answers.clear()
            return await handler(request)
        match = re.fullmatch(r"/_config/webhooks/([^/]+)", request.path)
        if request.method == "POST" and match:
            data = await params_of(request)
            url, secret, events = data.get("url"), data.get("secret"), data.get("events")
            if not (isinstance(url, str) and url.startswith("http") and isinstance(secret, str) and secret) or (
                    events is not None and not isinstance(events, list)):
                raise StripeError(400, "A registration needs url, secret and optionally a list of events.")
            ledger.registrations[match.group(1)] = Registration(url, secret, events)
            return web.Response()
        for method, pattern, route in ROUTES:
            found = pattern.match(request.path)
            if found and method == request.method:
                params = await params_of(request)
                ledger.request = {"id": request_id, "idempotency_key": request.headers.get("Idempotency-Key")}
                try:
                    return _json(route(found.groups(), params, request), headers={"Request-Id": request_id})
                finally:
                    ledger.request = {}
        return await handler(request)

    @web.middleware
    async def serve(request: Any, handler: Any) -> Any:
        request_id = new_id("req")
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key or not request.path.startswith("/v1/"):
            try:
                return await dispatch(request, handler, request_id)
            except StripeError as error:
                return _error(error, request_id)
        slot = (_api_key(request), key)
        fingerprint = await _fingerprint(request)
        kept = _answers.get(slot)
        if kept is not None:
            if kept["fingerprint"] != fingerprint:
                return _error(StripeError(
                    400, "Keys for idempotent requests can only be used with the same parameters they were first "
                    f"used with. Try using a key other than '{key}' if you meant to execute a different request.",
                    type_="idempotency_error"), request_id)
            if kept["status"] is None:
                return _error(StripeError(409, "There is currently another in-progress request using this "
                                          "idempotency key. Try again later.", type_="idempotency_error"), request_id)
            return _json(kept["body"], kept["status"], {"Idempotency-Key": key, "Idempotent-Replayed": "true",
                                                        "Original-Request": kept["request_id"], "Request-Id": request_id})
        _answers[slot] = {"fingerprint": fingerprint, "status": None, "request_id": request_id}
        try:
            answer = await dispatch(request, handler, request_id)
        except StripeError as error:
            answer = _error(error, request_id)
        except BaseException:
            del _answers[slot]
            raise
        if 200 <= answer.status < 300 or answer.status == 402:
            _answers[slot].update(status=answer.status, body=json.loads(answer.body))
        else:
            del _answers[slot]
        answer.headers["Idempotency-Key"] = key
        return answer

    app.middlewares.append(serve)


def _patch_localstripe(resources: Any) -> None:
    """localstripe's events go through our ledger; its PaymentMethods learn Stripe's test
    ids, card brands and ``allow_redisplay``."""
    from localstripe.errors import UserError

    resources.schedule_webhook = lambda event: ledger.emit(event.type, event.data["object"])

    method_class = resources.PaymentMethod
    create = method_class.__init__

    def __init__(self: Any, *args: Any, allow_redisplay: str = "unspecified", **kwargs: Any) -> None:
        if allow_redisplay not in ("unspecified", "limited", "always"):
            raise UserError(400, f"Invalid allow_redisplay: {allow_redisplay}")
        create(self, *args, **kwargs)
        self.allow_redisplay = allow_redisplay
        if getattr(self, "type", None) == "card":
            self.card["brand"] = brand(self._card_number)

    method_class.__init__ = __init__

    @classmethod  # type: ignore[misc]
    def test_method(cls: Any, method_id: str) -> Any:
        number = TEST_PAYMENT_METHODS.get(method_id)
        if number is None:
            return None
        return cls(type="card", card={"number": number, "exp_month": "12", "exp_year": str(time.gmtime().tm_year + 3),
                                      "cvc": "123"})

    method_class._try_get_canonical_test_article = test_method


async def _watch_parent(app: Any) -> None:
    parent = os.getppid()

    async def watch() -> None:
        while os.getppid() == parent:
            await asyncio.sleep(1)
        os._exit(0)  # the shop or test run that owned this double is gone

    app["parent_watch"] = asyncio.get_running_loop().create_task(watch())


def main(argv: list[str] | None = None) -> None:
    """Serve the double on ``--host``/``--port`` without on-disk persistence."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--exit-with-parent", action="store_true", help="stop when the process that started it ends")
    args = parser.parse_args(argv)

    from aiohttp import web
    from localstripe import resources, server

    resources.Store.dump_to_disk = lambda self: None  # keep state in memory only
    install_additions(server.app)
    if args.exit_with_parent:
        server.app.on_startup.append(_watch_parent)
    web.run_app(server.app, host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()

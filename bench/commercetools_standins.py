"""The stand-ins bench/commercetools.py runs its checkouts against, in one process, counting calls.

* commercetools: labd's ``@labdigital/commercetools-mock`` (npm, served over HTTP by Node),
  behind the test suite's front (``tests/platforms/commercetools/test_labd_commercetools_mock.py``), which adds
  the Payment Methods API and a **minimal session-service stand-in** (sessions are
  created here, through the control routes, not by a real session service);
* Stripe: the local Stripe double (``running_stripe_double``) behind a forwarding proxy.

All three answer on one port, served by gunicorn (one gthread worker) so that
connections are kept alive as the real services keep them: ``/v1/...`` is Stripe,
``/_bench/...`` the bench's control, anything else the front. Every request that reaches
the front or the Stripe proxy is counted by service (``commercetools``, ``session``,
``stripe``). The control answers ``GET /_bench/counts``, ``POST /_bench/reset`` and
``POST /_bench/sessions`` (a new ACTIVE session for a cart).

Run by bench/commercetools.py: ``python bench/commercetools_standins.py MOCK_URL PORTS_FILE``.
"""

from __future__ import annotations

import json
import sys
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import requests
from flask import Flask, Response, request
from gunicorn.app.base import BaseApplication

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask_psp_connector.testing import free_port, running_stripe_double  # noqa: E402
from tests.platforms.commercetools.test_labd_commercetools_mock import Front  # noqa: E402

counts: Counter[str] = Counter()
lock = threading.Lock()


def dispatcher(front: Front, stripe: Flask, bench: Flask) -> Any:
    """One WSGI app: Stripe under ``/v1/``, the control under ``/_bench/``, else the front; counted."""

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_bench/"):
            environ["PATH_INFO"] = path.removeprefix("/_bench")
            return bench(environ, start_response)
        service = "stripe" if path.startswith("/v1/") else "session" if "/sessions/" in path else "commercetools"
        with lock:
            counts[service] += 1
        return (stripe if service == "stripe" else front.app)(environ, start_response)

    return wsgi


def stripe_proxy(base: str) -> Flask:
    """Forwards every request to the Stripe double at ``base``."""
    app = Flask("stripe_proxy")
    local = threading.local()
    passed = ("authorization", "content-type", "idempotency-key", "stripe-version", "stripe-account")

    @app.route("/<path:path>", methods=["GET", "POST", "DELETE"])
    def forward(path: str) -> Response:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        answer = session.request(request.method, f"{base}/{path}", params=request.args, data=request.get_data(),
                                 headers={k: v for k, v in request.headers if k.lower() in passed}, timeout=30)
        headers = {k: v for k, v in answer.headers.items() if k.lower() in ("idempotent-replayed", "request-id")}
        return Response(answer.content, status=answer.status_code, content_type=answer.headers.get("content-type"),
                        headers=headers)

    return app


def control(front: Front) -> Flask:
    """Counts, their reset, and new sessions."""
    app = Flask("control")

    @app.get("/counts")
    def read() -> Response:
        with lock:
            return Response(json.dumps(dict(counts)), content_type="application/json")

    @app.post("/reset")
    def reset() -> Response:
        with lock:
            counts.clear()
        return Response(status=204)

    @app.post("/sessions")
    def session() -> Response:
        body = request.get_json()
        session_id = uuid.uuid4().hex
        front.sessions[session_id] = {"id": session_id, "version": 1, "state": "ACTIVE",
                                      "activeCart": {"cartRef": {"id": body["cart_id"]}},
                                      "metadata": {"merchantReturnUrl": "https://shop.example.test/return"}}
        return Response(json.dumps({"id": session_id}), content_type="application/json")

    return app


class Server(BaseApplication):
    """gunicorn serving one WSGI app object, one worker with threads, connections kept alive."""

    def __init__(self, app: Any, port: int) -> None:
        self.app, self.port = app, port
        super().__init__()

    def load_config(self) -> None:
        for key, value in {"bind": f"127.0.0.1:{self.port}", "workers": 1, "worker_class": "gthread", "threads": 16,
                           "keepalive": 75, "loglevel": "warning", "control_socket_disable": True}.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.app


def main() -> None:
    mock_url, ports_file = sys.argv[1], Path(sys.argv[2])
    front = Front(mock_url)
    with running_stripe_double() as stripe_base:
        port = free_port()
        ports_file.write_text(json.dumps({"standins": port, "stripe_direct": int(stripe_base.rsplit(":", 1)[1])}))
        Server(dispatcher(front, stripe_proxy(stripe_base), control(front)), port).run()


if __name__ == "__main__":
    main()

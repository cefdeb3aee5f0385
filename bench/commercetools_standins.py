"""The stand-ins bench/commercetools.py runs its checkouts against, in one process, counting calls.

* commercetools: labd's ``@labdigital/commercetools-mock`` (npm, served over HTTP by Node),
  behind the test suite's front (``tests/test_labd_commercetools_mock.py``), which adds
  the Payment Methods API and a **minimal session-service stand-in** (sessions are
  created here, through the control port, not by a real session service);
* Stripe: the local Stripe double (``running_stripe_double``) behind a forwarding proxy.

Every request that reaches the front or the Stripe proxy is counted by service
(``commercetools``, ``session``, ``stripe``). The control port answers ``GET /counts``,
``POST /reset`` and ``POST /sessions`` (a new ACTIVE session for a cart).

Run by bench/commercetools.py: ``python bench/commercetools_standins.py MOCK_URL PORTS_FILE``.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import requests
from flask import Flask, Response, request
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask_psp_connector.testing import free_port, running_stripe_double  # noqa: E402
from tests.test_labd_commercetools_mock import Front  # noqa: E402

counts: Counter[str] = Counter()
lock = threading.Lock()


def counted(app: Any, service: Any) -> Any:
    """``app`` as WSGI, counting each request under ``service(path)``."""

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        with lock:
            counts[service(environ.get("PATH_INFO", ""))] += 1
        return app(environ, start_response)

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


def serve(app: Any) -> int:
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return port


def main() -> None:
    mock_url, ports_file = sys.argv[1], Path(sys.argv[2])
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    front = Front(mock_url)
    with running_stripe_double() as stripe_base:
        ports = {
            "front": serve(counted(front.app, lambda path: "session" if "/sessions/" in path else "commercetools")),
            "stripe": serve(counted(stripe_proxy(stripe_base), lambda path: "stripe")),
            "control": serve(control(front)),
            "stripe_direct": int(stripe_base.rsplit(":", 1)[1]),
        }
        ports_file.write_text(json.dumps(ports))
        threading.Event().wait()


if __name__ == "__main__":
    main()

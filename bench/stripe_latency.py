"""Stand-in for Stripe's round trip: the local Stripe double behind a proxy that waits first.

Not Stripe: a stand-in for bench/concurrency.py. Every request is held for a fixed
``LATENCY`` seconds (as a real Stripe call spends that long on the network and at
Stripe), then forwarded to the local Stripe double (``running_stripe_double``) and its
answer passed back. The proxy is a ``ThreadingHTTPServer`` speaking HTTP/1.1 with
keep-alive: one thread per client connection, so it never limits how many calls wait
at once. It counts the requests it answered and the connections it accepted
(``GET /_bench/counts``; ``POST /_bench/reset`` sets both to zero), so a client that
does not keep its connections alive shows as one connection per call.

Run by bench/concurrency.py: ``python bench/stripe_latency.py LATENCY PORT_FILE``
(the proxy's port is written to ``PORT_FILE`` once it listens).
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flask_psp_connector.testing import running_stripe_double  # noqa: E402

PASSED = ("authorization", "content-type", "idempotency-key", "stripe-version", "stripe-account")
ANSWERED = ("content-type", "idempotent-replayed", "request-id", "stripe-version")


class Counts:
    """Requests answered and connections accepted, shared by the handler threads."""

    def __init__(self) -> None:
        self.requests = self.connections = 0
        self.lock = threading.Lock()

    def add(self, *, requests: int = 0, connections: int = 0) -> None:
        with self.lock:
            self.requests += requests
            self.connections += connections


def handler(upstream: str, latency: float, counts: Counts) -> type[BaseHTTPRequestHandler]:
    """A handler class forwarding to ``upstream`` after ``latency`` seconds."""
    host, port = urlsplit(upstream).hostname or "127.0.0.1", urlsplit(upstream).port or 80

    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            counts.add(connections=1)
            self.upstream = http.client.HTTPConnection(host, port, timeout=30)

        def finish(self) -> None:
            super().finish()
            self.upstream.close()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
            pass

        def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.startswith("/_bench/"):
                if self.command == "POST":
                    with counts.lock:
                        counts.requests = counts.connections = 0
                with counts.lock:
                    figures = {"requests": counts.requests, "connections": counts.connections}
                self._answer(200, json.dumps(figures).encode(), {"Content-Type": "application/json"})
                return
            time.sleep(latency)
            headers = {k: v for k, v in self.headers.items() if k.lower() in PASSED}
            self.upstream.request(self.command, self.path, body=body or None, headers=headers)
            answer = self.upstream.getresponse()
            content = answer.read()
            counts.add(requests=1)
            self._answer(answer.status, content, {k: v for k, v in answer.getheaders() if k.lower() in ANSWERED})

        do_GET = do_POST = do_DELETE = _forward

    return Forward


class Server(ThreadingHTTPServer):
    """A thread per connection, and a backlog long enough for every client at once."""

    daemon_threads = True
    request_queue_size = 512


def main() -> None:
    latency, port_file = float(sys.argv[1]), Path(sys.argv[2])
    with running_stripe_double() as stripe_base:
        server = Server(("127.0.0.1", 0), handler(stripe_base, latency, Counts()))
        port_file.write_text(str(server.server_address[1]))
        server.serve_forever()


if __name__ == "__main__":
    main()
